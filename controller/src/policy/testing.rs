//! `tollgate policy test DIR`: Rego unit tests the way `opa test` finds them — every rule
//! whose name starts with `test_` must evaluate to `true`.

use std::path::{Path, PathBuf};

use regorus::Value;

use super::evaluate::{data_document, engine_for};
use super::{PolicyConfig, PolicyError, PolicyGroup, PolicySource};

/// The outcome of one test rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestOutcome {
    /// `data.<package>.<rule>`.
    pub rule: String,
    /// `None` when it passed; otherwise what it evaluated to.
    pub failure: Option<String>,
}

/// Reads every `*.rego` under `dir` (with the built-in pack, so tests can import its
/// helpers) and runs every `test_` rule with the default pack settings.
pub fn run(dir: &Path) -> Result<Vec<TestOutcome>, PolicyError> {
    let files = read_dir(dir)?;
    let mut tests = Vec::new();
    for file in &files {
        if let Some(package) = package_of(&file.text) {
            for rule in test_rules(&file.text) {
                tests.push(format!("data.{package}.{rule}"));
            }
        }
    }
    let mut sources = super::builtin::builtin_sources();
    sources.extend(files);
    tests.sort();
    tests.dedup();
    let group = PolicyGroup {
        name: dir.display().to_string(),
        sources,
    };
    let mut engine = engine_for(&group)?;
    engine
        .add_data(data_document(&PolicyConfig::default()))
        .map_err(|err| PolicyError::Input(err.to_string()))?;
    tests
        .into_iter()
        .map(|rule| {
            let results =
                engine
                    .eval_query(rule.clone(), false)
                    .map_err(|err| PolicyError::Evaluate {
                        group: group.name.clone(),
                        rule: rule.clone(),
                        message: err.to_string(),
                    })?;
            let value = results
                .result
                .first()
                .and_then(|r| r.expressions.first())
                .map(|e| e.value.clone())
                .unwrap_or(Value::Undefined);
            let failure = (value != Value::Bool(true)).then(|| match value {
                Value::Undefined => "undefined (a condition in its body is false)".to_owned(),
                other => other.to_string(),
            });
            Ok(TestOutcome { rule, failure })
        })
        .collect()
}

/// Every `*.rego` file under `dir` (recursively), sorted by path.
pub fn read_dir(dir: &Path) -> Result<Vec<PolicySource>, PolicyError> {
    let mut paths = Vec::new();
    rego_files(dir, &mut paths)?;
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).map_err(|source| PolicyError::Read {
                path: path.display().to_string(),
                source,
            })?;
            Ok(PolicySource {
                origin: path.display().to_string(),
                text,
            })
        })
        .collect()
}

fn rego_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), PolicyError> {
    let read = |path: &Path, source| PolicyError::Read {
        path: path.display().to_string(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(|e| read(dir, e))? {
        let path = entry.map_err(|e| read(dir, e))?.path();
        if path.is_dir() {
            rego_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rego") {
            out.push(path);
        }
    }
    Ok(())
}

/// The `package` a Rego file declares.
fn package_of(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .find_map(|line| line.strip_prefix("package "))
        .map(|p| p.trim().to_owned())
}

/// Names of the `test_` rules a file defines (at the start of a line, as `opa fmt` writes
/// them).
fn test_rules(text: &str) -> Vec<String> {
    text.lines()
        .filter(|line| line.starts_with("test_"))
        .filter_map(|line| {
            let name: String = line
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            (!name.is_empty()).then_some(name)
        })
        .collect()
}

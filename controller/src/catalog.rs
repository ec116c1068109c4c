//! The module catalog: Terraform modules in folders under one root, described by reading their
//! own `variables.tf`, `outputs.tf` and `terraform` blocks with hcl-rs. There is no second,
//! hand-written schema to drift from the modules.

mod inputs;
pub mod types;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use hcl::Body;
use hcl::expr::Expression;
use sha2::{Digest, Sha256};

pub use inputs::{InputProblem, InputsError, validate_project};
pub use types::{ObjectAttribute, TypeConstraint, TypeMismatch};

/// Environment variable naming the catalog root when `--catalog` is not given.
pub const CATALOG_ENV: &str = "TOLLGATE_CATALOG";

/// Everything that can go wrong reading the catalog.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// A file or folder could not be read.
    #[error(
        "cannot read {path}: {source}; check that --catalog (or {CATALOG_ENV}) points at the module catalog"
    )]
    Io {
        /// What was being read.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A `.tf` file is not valid HCL.
    #[error("module `{module}`: {path} is not valid HCL: {message}")]
    Parse {
        /// Module folder name.
        module: String,
        /// File that failed to parse.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A variable or output block is malformed.
    #[error("module `{module}`: {what}: {message}")]
    Invalid {
        /// Module folder name.
        module: String,
        /// The block concerned, e.g. `variable "size"`.
        what: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// No module folder has this name.
    #[error("module `{name}` is not in the catalog{suggestion}; available: {available}")]
    UnknownModule {
        /// The requested name.
        name: String,
        /// ` (did you mean `x`?)` or empty.
        suggestion: String,
        /// Comma-separated module names.
        available: String,
    },
}

/// A loaded catalog of modules.
#[derive(Clone, Debug)]
pub struct Catalog {
    root: PathBuf,
    modules: BTreeMap<String, Module>,
    digest: String,
}

/// One module: its interface as Terraform declares it.
#[derive(Clone, Debug)]
pub struct Module {
    /// Folder name, used as `module` in components.
    pub name: String,
    /// Folder holding the module's files.
    pub path: PathBuf,
    /// Input variables by name.
    pub variables: BTreeMap<String, Variable>,
    /// Outputs by name.
    pub outputs: BTreeMap<String, Output>,
    /// Providers the module requires, by local name (e.g. `aws`).
    pub required_providers: BTreeMap<String, RequiredProvider>,
    /// The module's files, relative to its folder, sorted: exactly what a render copies.
    pub files: Vec<PathBuf>,
    /// sha256 over the module's files (names and contents).
    pub digest: String,
}

/// A variable block.
#[derive(Clone, Debug)]
pub struct Variable {
    /// Variable name.
    pub name: String,
    /// Type constraint (`any` when omitted).
    pub constraint: TypeConstraint,
    /// Default value, when the module declares one.
    pub default: Option<serde_json::Value>,
    /// Human description.
    pub description: Option<String>,
    /// Terraform redacts it in plan output.
    pub sensitive: bool,
    /// Whether null is an acceptable value (Terraform's default: true).
    pub nullable: bool,
}

impl Variable {
    /// A variable without a default must be given.
    pub fn is_required(&self) -> bool {
        self.default.is_none()
    }
}

/// An output block.
#[derive(Clone, Debug)]
pub struct Output {
    /// Output name.
    pub name: String,
    /// Human description.
    pub description: Option<String>,
    /// Terraform redacts it; tollgate keeps it only in the outputs Secret.
    pub sensitive: bool,
}

/// An entry of `required_providers`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequiredProvider {
    /// Registry source, e.g. `hashicorp/aws`.
    pub source: String,
    /// Version constraint, e.g. `~> 5.80`.
    pub version: Option<String>,
}

impl Catalog {
    /// Loads every module folder (a folder containing `.tf` files) under `root`.
    pub fn load(root: &Path) -> Result<Self, CatalogError> {
        let io = |source| CatalogError::Io {
            path: root.to_path_buf(),
            source,
        };
        let mut modules = BTreeMap::new();
        let mut hasher = Sha256::new();
        let mut entries: Vec<PathBuf> = fs::read_dir(root)
            .map_err(io)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(io)?;
        entries.sort();
        for dir in entries.into_iter().filter(|p| p.is_dir()) {
            let Some(name) = dir.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            let module = Module::load(&name, &dir)?;
            hasher.update(format!("{name}\0{}\0", module.digest).as_bytes());
            modules.insert(name, module);
        }
        Ok(Self {
            root: root.to_path_buf(),
            modules,
            digest: hex::encode(hasher.finalize()),
        })
    }

    /// Finds the catalog root: an explicit path, else `$TOLLGATE_CATALOG`, else `modules/`
    /// in the current directory or next to the repository the binary was built from.
    pub fn locate(explicit: Option<&Path>) -> PathBuf {
        if let Some(path) = explicit {
            return path.to_path_buf();
        }
        if let Some(path) = std::env::var_os(CATALOG_ENV) {
            return PathBuf::from(path);
        }
        let cwd = PathBuf::from("modules");
        if cwd.is_dir() {
            return cwd;
        }
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("modules")
    }

    /// The catalog's root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// sha256 over every module file: a change to any module changes it.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// All modules by name.
    pub fn modules(&self) -> &BTreeMap<String, Module> {
        &self.modules
    }

    /// The module called `name`, or an error suggesting the closest name.
    pub fn module(&self, name: &str) -> Result<&Module, CatalogError> {
        self.modules
            .get(name)
            .ok_or_else(|| CatalogError::UnknownModule {
                name: name.to_owned(),
                suggestion: did_you_mean(name, self.modules.keys().map(String::as_str)),
                available: self.modules.keys().cloned().collect::<Vec<_>>().join(", "),
            })
    }
}

impl Module {
    fn load(name: &str, dir: &Path) -> Result<Self, CatalogError> {
        let files = module_files(dir)?;
        let mut hasher = Sha256::new();
        for file in &files {
            let path = dir.join(file);
            let contents = fs::read(&path).map_err(|source| CatalogError::Io {
                path: path.clone(),
                source,
            })?;
            hasher.update(format!("{}\0{}\0", file.display(), contents.len()).as_bytes());
            hasher.update(&contents);
        }
        let mut module = Module {
            digest: hex::encode(hasher.finalize()),
            name: name.to_owned(),
            path: dir.to_path_buf(),
            variables: BTreeMap::new(),
            outputs: BTreeMap::new(),
            required_providers: BTreeMap::new(),
            files,
        };
        let tf_files: Vec<PathBuf> = module
            .files
            .iter()
            .filter(|f| {
                f.parent() == Some(Path::new("")) && f.extension().is_some_and(|e| e == "tf")
            })
            .cloned()
            .collect();
        for file in tf_files {
            let path = dir.join(&file);
            let source = fs::read_to_string(&path).map_err(|source| CatalogError::Io {
                path: path.clone(),
                source,
            })?;
            let body = hcl::parse(&source).map_err(|e| CatalogError::Parse {
                module: name.to_owned(),
                path: path.clone(),
                message: e.to_string(),
            })?;
            module.read_body(&body)?;
        }
        Ok(module)
    }

    fn read_body(&mut self, body: &Body) -> Result<(), CatalogError> {
        for block in body.blocks() {
            let label = block.labels().first().map(|l| l.as_str().to_owned());
            match (block.identifier(), label) {
                ("variable", Some(var)) => {
                    let variable = self.read_variable(&var, block.body())?;
                    self.variables.insert(var, variable);
                }
                ("output", Some(out)) => {
                    let output = Output {
                        description: string_attr(block.body(), "description"),
                        sensitive: self
                            .bool_attr(block.body(), "sensitive", &format!("output \"{out}\""))?
                            .unwrap_or(false),
                        name: out.clone(),
                    };
                    self.outputs.insert(out, output);
                }
                ("terraform", _) => {
                    for providers in block
                        .body()
                        .blocks()
                        .filter(|b| b.identifier() == "required_providers")
                    {
                        for attr in providers.body().attributes() {
                            let provider = self.read_required_provider(attr.key(), attr.expr())?;
                            self.required_providers
                                .insert(attr.key().to_owned(), provider);
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn read_variable(&self, name: &str, body: &Body) -> Result<Variable, CatalogError> {
        let what = format!("variable \"{name}\"");
        let constraint = match body.attributes().find(|a| a.key() == "type") {
            Some(attr) => TypeConstraint::from_expression(attr.expr())
                .map_err(|e| self.invalid(&what, format!("type: {e}")))?,
            None => TypeConstraint::Any,
        };
        let default = match body.attributes().find(|a| a.key() == "default") {
            Some(attr) => Some(
                literal_value(attr.expr())
                    .ok_or_else(|| self.invalid(&what, "default must be a literal value".into()))?,
            ),
            None => None,
        };
        Ok(Variable {
            name: name.to_owned(),
            constraint,
            default,
            description: string_attr(body, "description"),
            sensitive: self.bool_attr(body, "sensitive", &what)?.unwrap_or(false),
            nullable: self.bool_attr(body, "nullable", &what)?.unwrap_or(true),
        })
    }

    fn read_required_provider(
        &self,
        name: &str,
        expr: &Expression,
    ) -> Result<RequiredProvider, CatalogError> {
        let what = format!("required_providers.{name}");
        let Expression::Object(fields) = expr else {
            return Err(self.invalid(&what, "expected { source = \"…\", version = \"…\" }".into()));
        };
        let field = |key: &str| {
            fields
                .iter()
                .find_map(|(k, v)| match (k.to_string().trim_matches('"') == key, v) {
                    (true, Expression::String(s)) => Some(s.clone()),
                    _ => None,
                })
        };
        Ok(RequiredProvider {
            source: field("source").unwrap_or_else(|| format!("hashicorp/{name}")),
            version: field("version"),
        })
    }

    fn bool_attr(&self, body: &Body, key: &str, what: &str) -> Result<Option<bool>, CatalogError> {
        match body.attributes().find(|a| a.key() == key).map(|a| a.expr()) {
            None => Ok(None),
            Some(Expression::Bool(value)) => Ok(Some(*value)),
            Some(_) => Err(self.invalid(what, format!("`{key}` must be true or false"))),
        }
    }

    fn invalid(&self, what: &str, message: String) -> CatalogError {
        CatalogError::Invalid {
            module: self.name.clone(),
            what: what.to_owned(),
            message,
        }
    }
}

/// Files of a module folder, relative and sorted, without Terraform's working files, tests
/// or hidden files: the part of the module a working directory needs.
fn module_files(dir: &Path) -> Result<Vec<PathBuf>, CatalogError> {
    fn walk(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> Result<(), CatalogError> {
        let dir = root.join(rel);
        let entries = fs::read_dir(&dir).map_err(|source| CatalogError::Io {
            path: dir.clone(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| CatalogError::Io {
                path: dir.clone(),
                source,
            })?;
            let name = entry.file_name();
            let name_str = name.to_string_lossy();
            let skip = name_str.starts_with('.')
                || name_str == "tests"
                || name_str.ends_with(".tfstate")
                || name_str.ends_with(".tfstate.backup");
            if skip {
                continue;
            }
            let child = rel.join(&name);
            if entry.path().is_dir() {
                walk(root, &child, out)?;
            } else {
                out.push(child);
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(dir, Path::new(""), &mut files)?;
    files.sort();
    Ok(files)
}

fn string_attr(body: &Body, key: &str) -> Option<String> {
    body.attributes()
        .find(|a| a.key() == key)
        .and_then(|a| match a.expr() {
            Expression::String(s) => Some(s.clone()),
            _ => None,
        })
}

/// Converts a literal HCL expression (no references, functions or templates) to JSON.
fn literal_value(expr: &Expression) -> Option<serde_json::Value> {
    use serde_json::Value;
    Some(match expr {
        Expression::Null => Value::Null,
        Expression::Bool(b) => Value::Bool(*b),
        Expression::Number(n) => serde_json::to_value(n).ok()?,
        Expression::String(s) => Value::String(s.clone()),
        Expression::Array(items) => {
            Value::Array(items.iter().map(literal_value).collect::<Option<_>>()?)
        }
        Expression::Object(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| {
                    let key = match k {
                        hcl::ObjectKey::Identifier(i) => i.to_string(),
                        hcl::ObjectKey::Expression(Expression::String(s)) => s.clone(),
                        hcl::ObjectKey::Expression(Expression::Variable(v)) => v.to_string(),
                        _ => return None,
                    };
                    Some((key, literal_value(v)?))
                })
                .collect::<Option<_>>()?,
        ),
        Expression::Parenthesis(inner) => literal_value(inner)?,
        _ => return None,
    })
}

/// ` (did you mean `x`?)` when a candidate is close to `given` (a typo, a transposition, a
/// missing or extra letter), else an empty string.
pub fn did_you_mean<'a>(given: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    let tolerance = (given.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(given, c), c))
        .filter(|(distance, _)| *distance <= tolerance)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| format!(" (did you mean `{c}`?)"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;

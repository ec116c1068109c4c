//! Checks a Project's components against the catalog before any Terraform runs.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::types::TypeConstraint;
use super::{Catalog, did_you_mean};
use crate::api::{Project, SecretInput};

/// One thing wrong with a component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputProblem {
    /// Component name.
    pub component: String,
    /// Input concerned, with the path inside its value (e.g. `settings.size`), if any.
    pub input: Option<String>,
    /// What was expected and what was given.
    pub message: String,
}

/// Every problem found in a Project's components (all are reported, not only the first).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct InputsError {
    /// `namespace/name` of the Project.
    pub project: String,
    /// The problems, in component order.
    pub problems: Vec<InputProblem>,
}

impl fmt::Display for InputsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "project {}: {} problem(s) with its components:",
            self.project,
            self.problems.len()
        )?;
        for p in &self.problems {
            match &p.input {
                Some(input) => write!(
                    f,
                    "\n  - component `{}`, input `{input}`: {}",
                    p.component, p.message
                )?,
                None => write!(f, "\n  - component `{}`: {}", p.component, p.message)?,
            }
        }
        Ok(())
    }
}

/// Checks every component: the module exists, inputs are known variables of the right type,
/// required variables are given, `dependsOn` names other components without cycles, and
/// modules needing AWS have a cloud account.
pub fn validate_project(project: &Project, catalog: &Catalog) -> Result<(), InputsError> {
    let mut problems = Vec::new();
    let components = &project.spec.components;
    let names: BTreeSet<&str> = components.iter().map(|c| c.name.as_str()).collect();
    let mut seen = BTreeSet::new();
    for component in components {
        let mut problem = |input: Option<String>, message: String| {
            problems.push(InputProblem {
                component: component.name.clone(),
                input,
                message,
            });
        };
        if !seen.insert(component.name.as_str()) {
            problem(
                None,
                "component names must be unique; rename one of them".into(),
            );
        }
        for dep in &component.depends_on {
            if dep == &component.name {
                problem(
                    None,
                    format!("dependsOn: a component cannot depend on itself (`{dep}`)"),
                );
            } else if !names.contains(dep.as_str()) {
                let hint = did_you_mean(dep, names.iter().copied());
                problem(None, format!("dependsOn: no component named `{dep}`{hint}"));
            }
        }
        let module = match catalog.module(&component.module) {
            Ok(module) => module,
            Err(err) => {
                problem(None, err.to_string());
                continue;
            }
        };
        if module.required_providers.contains_key("aws") && project.spec.cloud.is_none() {
            problem(
                None,
                format!(
                    "module `{}` deploys to AWS: set spec.cloud.aws (region, accountId)",
                    module.name
                ),
            );
        }
        for (input, value) in &component.inputs {
            let Some(variable) = module.variables.get(input) else {
                let hint = did_you_mean(input, module.variables.keys().map(String::as_str));
                let known = module
                    .variables
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ");
                problem(
                    Some(input.clone()),
                    format!(
                        "module `{}` has no variable `{input}`{hint}; its variables are: {known}",
                        module.name
                    ),
                );
                continue;
            };
            if let Some(reference) = SecretInput::of(value) {
                let refused = match reference {
                    Err(e) => Some(format!("a malformed secret reference: {e}")),
                    Ok(_) if !variable.sensitive => Some(format!(
                        "a secret reference is allowed only for a `sensitive` variable, and module `{}` does not declare `{input}` sensitive: give a literal value, or use a module that marks it `sensitive = true`",
                        module.name
                    )),
                    Ok(_)
                        if !matches!(
                            variable.constraint,
                            TypeConstraint::String | TypeConstraint::Any
                        ) =>
                    {
                        Some(format!(
                            "a secret reference gives a string, and `{input}` expects {}",
                            variable.constraint
                        ))
                    }
                    Ok(_) => None,
                };
                if let Some(message) = refused {
                    problem(Some(input.clone()), message);
                }
                continue;
            }
            if value.is_null() && !variable.nullable {
                problem(
                    Some(input.clone()),
                    format!(
                        "expected {}, given null (the variable is not nullable)",
                        variable.constraint
                    ),
                );
                continue;
            }
            for mismatch in variable.constraint.check(value) {
                problem(
                    Some(format!("{input}{}", mismatch.path)),
                    format!("expected {}, given {}", mismatch.expected, mismatch.given),
                );
            }
        }
        for variable in module.variables.values().filter(|v| v.is_required()) {
            if !component.inputs.contains_key(&variable.name) {
                let about = variable
                    .description
                    .as_deref()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default();
                problem(
                    Some(variable.name.clone()),
                    format!(
                        "required input missing: expected {}{about}",
                        variable.constraint
                    ),
                );
            }
        }
    }
    if let Some(cycle) = dependency_cycle(project) {
        problems.push(InputProblem {
            component: cycle[0].clone(),
            input: None,
            message: format!("dependsOn forms a cycle: {}", cycle.join(" -> ")),
        });
    }
    if problems.is_empty() {
        Ok(())
    } else {
        let namespace = project.metadata.namespace.as_deref().unwrap_or("default");
        let name = project.metadata.name.as_deref().unwrap_or("<unnamed>");
        Err(InputsError {
            project: format!("{namespace}/{name}"),
            problems,
        })
    }
}

/// The first cycle in `dependsOn`, as the list of names along it (first name repeated last).
fn dependency_cycle(project: &Project) -> Option<Vec<String>> {
    let edges: BTreeMap<&str, Vec<&str>> = project
        .spec
        .components
        .iter()
        .map(|c| {
            (
                c.name.as_str(),
                c.depends_on.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    fn visit<'a>(
        node: &'a str,
        edges: &BTreeMap<&'a str, Vec<&'a str>>,
        marks: &mut BTreeMap<&'a str, Mark>,
        stack: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        match marks.get(node) {
            Some(Mark::Done) => return None,
            Some(Mark::Visiting) => {
                let start = stack.iter().position(|n| *n == node).unwrap_or(0);
                let mut cycle: Vec<String> =
                    stack[start..].iter().map(|s| (*s).to_owned()).collect();
                cycle.push(node.to_owned());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(node, Mark::Visiting);
        stack.push(node);
        for next in edges.get(node).into_iter().flatten() {
            if *next != node
                && edges.contains_key(next)
                && let Some(cycle) = visit(next, edges, marks, stack)
            {
                return Some(cycle);
            }
        }
        stack.pop();
        marks.insert(node, Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    edges
        .keys()
        .find_map(|node| visit(node, &edges, &mut marks, &mut Vec::new()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::catalog::tests::write_module;

    fn catalog() -> (tempfile::TempDir, Catalog) {
        let root = tempfile::tempdir().unwrap();
        write_module(
            root.path(),
            "web",
            r#"
variable "size" {
  type        = string
  description = "Instance size"
}
variable "replicas" {
  type    = number
  default = 1
}
variable "settings" {
  type    = object({ enabled = optional(bool), port = number })
  default = { port = 80 }
}
variable "name" {
  type     = string
  nullable = false
  default  = "x"
}
"#,
            "",
        );
        write_module(
            root.path(),
            "cloudy",
            "",
            "terraform {\n  required_providers {\n    aws = { source = \"hashicorp/aws\", version = \"~> 5.80\" }\n  }\n}\n",
        );
        let catalog = Catalog::load(root.path()).unwrap();
        (root, catalog)
    }

    fn project(components: serde_json::Value) -> Project {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "tollgate.dev/v1alpha1", "kind": "Project",
            "metadata": {"name": "shop", "namespace": "team-a"},
            "spec": {"environment": "dev", "components": components}
        }))
        .unwrap()
    }

    fn problems(components: serde_json::Value) -> Vec<InputProblem> {
        let (_dir, catalog) = catalog();
        validate_project(&project(components), &catalog)
            .map(|_| Vec::new())
            .unwrap_or_else(|e| e.problems)
    }

    #[test]
    fn a_valid_project_passes() {
        assert!(problems(serde_json::json!([{"name": "app", "module": "web", "inputs": {"size": "m", "replicas": "3"}}])).is_empty());
    }

    #[test]
    fn unknown_input_names_project_component_input_and_suggests() {
        let (_dir, catalog) = catalog();
        let err = validate_project(&project(serde_json::json!([{"name": "app", "module": "web", "inputs": {"size": "m", "replica": 2}}])), &catalog).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("project team-a/shop:"), "{text}");
        assert!(text.contains("component `app`, input `replica`: module `web` has no variable `replica` (did you mean `replicas`?)"), "{text}");
    }

    #[test]
    fn missing_required_input_says_what_is_expected() {
        let p = problems(serde_json::json!([{"name": "app", "module": "web"}]));
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].input.as_deref(), Some("size"));
        assert_eq!(
            p[0].message,
            "required input missing: expected string (Instance size)"
        );
    }

    #[test]
    fn type_mismatch_reports_expected_and_given_with_path() {
        let p = problems(
            serde_json::json!([{"name": "app", "module": "web", "inputs": {"size": "m", "replicas": [1], "settings": {"port": "http"}}}]),
        );
        let rendered: Vec<String> = p
            .iter()
            .map(|p| format!("{}: {}", p.input.as_deref().unwrap_or(""), p.message))
            .collect();
        assert_eq!(
            rendered,
            vec![
                "replicas: expected number, given list [1]",
                "settings.port: expected number, given string \"http\""
            ]
        );
    }

    #[test]
    fn null_for_a_non_nullable_variable_is_refused() {
        let p = problems(
            serde_json::json!([{"name": "app", "module": "web", "inputs": {"size": "m", "name": null}}]),
        );
        assert_eq!(
            p[0].message,
            "expected string, given null (the variable is not nullable)"
        );
    }

    #[test]
    fn unknown_module_and_missing_cloud_are_reported() {
        let p = problems(
            serde_json::json!([{"name": "a", "module": "wbe"}, {"name": "b", "module": "cloudy"}]),
        );
        assert!(
            p[0].message
                .contains("module `wbe` is not in the catalog (did you mean `web`?)"),
            "{}",
            p[0].message
        );
        assert!(
            p[1].message.contains("set spec.cloud.aws"),
            "{}",
            p[1].message
        );
    }

    #[test]
    fn depends_on_must_name_other_components_without_cycles() {
        let p = problems(serde_json::json!([
            {"name": "a", "module": "cloudy", "dependsOn": ["b"]},
            {"name": "b", "module": "cloudy", "dependsOn": ["a", "zz"]},
            {"name": "c", "module": "cloudy", "dependsOn": ["c"]}
        ]));
        let messages: Vec<&str> = p
            .iter()
            .map(|p| p.message.as_str())
            .filter(|m| !m.contains("spec.cloud"))
            .collect();
        assert_eq!(
            messages,
            vec![
                "dependsOn: no component named `zz`",
                "dependsOn: a component cannot depend on itself (`c`)",
                "dependsOn forms a cycle: a -> b -> a"
            ]
        );
    }

    #[test]
    fn duplicate_component_names_are_refused() {
        let p = problems(
            serde_json::json!([{"name": "a", "module": "cloudy"}, {"name": "a", "module": "cloudy"}]),
        );
        assert!(p.iter().any(|p| p.message.contains("must be unique")));
    }
}

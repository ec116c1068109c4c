//! Reading `Project` manifests from YAML for the offline CLI, strictly: unknown fields and
//! type errors are reported with the field path, and schema rules are checked client-side.

use std::path::{Path, PathBuf};

use crate::api::{self, FieldError, Project};

/// Largest manifest accepted: etcd stores objects of at most 1.5 MiB, so a larger Project
/// could never be applied to a cluster either.
pub const MAX_MANIFEST_BYTES: usize = 1536 * 1024;

/// Errors reading a manifest.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The manifest path.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is larger than any Kubernetes object can be.
    #[error(
        "{path}: {size} bytes is larger than the {MAX_MANIFEST_BYTES} bytes a Kubernetes object may have; move large values out of the Project (e.g. into a Secret or the module)"
    )]
    TooLarge {
        /// The manifest path.
        path: PathBuf,
        /// Its size in bytes.
        size: usize,
    },
    /// The file is not YAML.
    #[error("{path}: not valid YAML: {message}")]
    Yaml {
        /// The manifest path.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// The document is not a tollgate Project.
    #[error(
        "{path}: expected apiVersion `tollgate.dev/v1alpha1` and kind `Project`, found apiVersion `{api_version}` and kind `{kind}`"
    )]
    NotAProject {
        /// The manifest path.
        path: PathBuf,
        /// apiVersion found.
        api_version: String,
        /// kind found.
        kind: String,
    },
    /// A field has the wrong type or is missing.
    #[error("{path}: field `{field}`: {message}")]
    Field {
        /// The manifest path.
        path: PathBuf,
        /// Path of the field, e.g. `spec.components[0].inputs`.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// Fields the API does not have (often typos); nothing is silently dropped.
    #[error("{path}: unknown field(s) {}: remove them or check the spelling with `kubectl explain project.spec`", fields.join(", "))]
    UnknownFields {
        /// The manifest path.
        path: PathBuf,
        /// Paths of the unknown fields.
        fields: Vec<String>,
    },
    /// Values break the API's schema rules.
    #[error("{path}: {} invalid field(s):{}", errors.len(), errors.iter().map(|e| format!("\n  - {e}")).collect::<String>())]
    Invalid {
        /// The manifest path.
        path: PathBuf,
        /// Every rule broken.
        errors: Vec<FieldError>,
    },
}

/// Reads a Project from a YAML file.
pub fn read_project(path: &Path) -> Result<Project, ManifestError> {
    let size = std::fs::metadata(path)
        .map_err(|source| ManifestError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    if size > MAX_MANIFEST_BYTES as u64 {
        return Err(ManifestError::TooLarge {
            path: path.to_path_buf(),
            size: usize::try_from(size).unwrap_or(usize::MAX),
        });
    }
    let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_project(&text, path)
}

/// Parses a Project from YAML text; `path` is used in messages only.
pub fn parse_project(text: &str, path: &Path) -> Result<Project, ManifestError> {
    let path = path.to_path_buf();
    if text.len() > MAX_MANIFEST_BYTES {
        return Err(ManifestError::TooLarge {
            path,
            size: text.len(),
        });
    }
    let value: serde_json::Value =
        serde_saphyr::from_str(text).map_err(|e| ManifestError::Yaml {
            path: path.clone(),
            message: e.to_string(),
        })?;
    let api_version = value
        .get("apiVersion")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    let kind = value
        .get("kind")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    if api_version != format!("{}/{}", api::GROUP, api::VERSION) || kind != "Project" {
        return Err(ManifestError::NotAProject {
            path,
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
        });
    }
    let mut unknown = Vec::new();
    let mut record = |field: serde_ignored::Path<'_>| unknown.push(field.to_string());
    let ignored = serde_ignored::Deserializer::new(&value, &mut record);
    let project: Project =
        serde_path_to_error::deserialize(ignored).map_err(|e| ManifestError::Field {
            path: path.clone(),
            field: e.path().to_string(),
            message: e.into_inner().to_string(),
        })?;
    // `status` is the controller's to write; a manifest carrying one is not an error.
    // apiVersion and kind were checked above; the derived type does not keep them.
    unknown.retain(|field| {
        !matches!(field.as_str(), "status" | "apiVersion" | "kind") && !field.starts_with("status.")
    });
    if !unknown.is_empty() {
        return Err(ManifestError::UnknownFields {
            path,
            fields: unknown,
        });
    }
    let errors = api::validate_project(&project);
    if !errors.is_empty() {
        return Err(ManifestError::Invalid { path, errors });
    }
    Ok(project)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const GOOD: &str = "apiVersion: tollgate.dev/v1alpha1
kind: Project
metadata: {name: demo, namespace: team-a}
spec:
  environment: dev
  components:
    - name: app
      module: demo
      inputs: {greeting: hello}
";

    fn err(text: &str) -> String {
        parse_project(text, Path::new("p.yaml"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn parses_a_valid_project() {
        let p = parse_project(GOOD, Path::new("p.yaml")).unwrap();
        assert_eq!(p.spec.components[0].inputs["greeting"], "hello");
    }

    #[test]
    fn unknown_fields_are_named_with_their_path() {
        let e = err(&GOOD.replace(
            "  environment: dev",
            "  environment: dev\n  budgett: {monthlyLimit: '5'}",
        ));
        assert!(e.contains("unknown field(s) spec.budgett"), "{e}");
        let e = err(&GOOD.replace(
            "      module: demo",
            "      module: demo\n      dependOn: [x]",
        ));
        assert!(e.contains("spec.components.0.dependOn"), "{e}");
    }

    #[test]
    fn wrong_types_name_the_field() {
        let e = err(&GOOD.replace("environment: dev", "environment: [dev]"));
        assert!(e.contains("field `spec.environment`"), "{e}");
        let e = err(&GOOD.replace("  environment: dev\n", ""));
        assert!(e.contains("missing field `environment`"), "{e}");
    }

    #[test]
    fn not_yaml_or_not_a_project_is_explained() {
        assert!(err("a: [").contains("not valid YAML"));
        assert!(
            err(&GOOD.replace("kind: Project", "kind: Pod"))
                .contains("found apiVersion `tollgate.dev/v1alpha1` and kind `Pod`")
        );
    }

    #[test]
    fn huge_and_deeply_nested_inputs_are_refused_cleanly() {
        let huge = GOOD.replace(
            "greeting: hello",
            &format!("greeting: {}", "x".repeat(MAX_MANIFEST_BYTES)),
        );
        assert!(
            err(&huge).contains("larger than the 1572864 bytes"),
            "too large accepted"
        );
        let deep = GOOD.replace(
            "greeting: hello",
            &format!("greeting: {}{}", "[".repeat(5000), "]".repeat(5000)),
        );
        let e = err(&deep);
        assert!(e.contains("p.yaml"), "{e}");
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), &huge).unwrap();
        assert!(matches!(
            read_project(file.path()),
            Err(ManifestError::TooLarge { .. })
        ));
    }

    #[test]
    fn schema_rules_are_checked_client_side() {
        let e = err(&GOOD.replace("name: app", "name: App!"));
        assert!(e.contains("spec.components[0].name"), "{e}");
    }
}

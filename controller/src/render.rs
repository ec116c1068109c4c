//! Renders a Project into a self-contained Terraform working directory with hcl-rs.
//!
//! Every user-supplied value becomes an HCL *literal*: hcl-rs escapes `${` and `%{` in quoted
//! strings, so no input can ever become a Terraform expression or template. Expressions are
//! only built here from names that the API patterns and hcl-rs's identifier check both accept.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use hcl::expr::{Expression, Object, ObjectKey, Traversal, TraversalOperator, Variable};
use hcl::{Attribute, Block, Body, Identifier};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::api::{AwsCloud, Backend, BackendType, Project};
use crate::catalog::{Catalog, Module};

/// Terraform versions the rendered root module accepts.
pub const REQUIRED_TERRAFORM: &str = ">= 1.5.0";
/// Name of the root module file tollgate writes.
pub const ROOT_FILE: &str = "main.tf";
/// Metadata file next to the root module (not read by Terraform).
pub const METADATA_FILE: &str = "tollgate.json";
/// Tag keys tollgate puts on every AWS resource through the provider's `default_tags`.
pub const TAG_PREFIX: &str = "tollgate.dev";

/// Errors while rendering.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// The Project refers to something the catalog does not have.
    #[error(transparent)]
    Catalog(#[from] crate::catalog::CatalogError),
    /// A name cannot be used as a Terraform identifier.
    #[error(
        "project {project}: {field} `{value}` cannot be a Terraform identifier: use lowercase letters, digits, `-` and `_`, starting with a letter"
    )]
    Identifier {
        /// `namespace/name` of the Project.
        project: String,
        /// The field, e.g. `spec.components[0].name`.
        field: String,
        /// The offending value.
        value: String,
    },
    /// Two root outputs would get the same name.
    #[error(
        "project {project}: root output `{output}` would be produced by two components; rename one of the components"
    )]
    OutputCollision {
        /// `namespace/name` of the Project.
        project: String,
        /// The colliding output name.
        output: String,
    },
    /// The backend settings are incomplete or unsafe.
    #[error("project {project}: spec.backend: {message}")]
    Backend {
        /// `namespace/name` of the Project.
        project: String,
        /// What is wrong.
        message: String,
    },
    /// The working directory could not be written.
    #[error("cannot write the working directory {path}: {source}")]
    Io {
        /// File or folder being written.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// hcl-rs could not format the body (does not happen for bodies built here).
    #[error("cannot format HCL: {0}")]
    Format(#[from] hcl::Error),
}

/// Choices that are not part of the Project.
#[derive(Clone, Debug, Default)]
pub struct RenderOptions {
    /// Use this backend instead of the Project's (e.g. `local` for offline CLI use).
    pub backend_override: Option<BackendType>,
}

/// A rendered working directory, in memory.
#[derive(Clone, Debug)]
pub struct Rendered {
    /// The root module (`main.tf`).
    pub root: String,
    /// Catalog modules used, copied to `modules/<name>/`.
    pub modules: Vec<Module>,
    /// sha256 over the root module and the files of every module used: the same Project and
    /// catalog always give the same digest, and any change to either gives another.
    pub inputs_digest: String,
}

/// Renders the root module of `project`. Pure: reads nothing but the catalog's metadata.
pub fn render(
    project: &Project,
    catalog: &Catalog,
    options: &RenderOptions,
) -> Result<Rendered, RenderError> {
    let ctx = Ctx::new(project);
    let mut modules: BTreeMap<&str, &Module> = BTreeMap::new();
    for component in &project.spec.components {
        let module = catalog.module(&component.module)?;
        modules.insert(module.name.as_str(), module);
    }

    let mut body = Body::builder().add_block(terraform_block(&ctx, &modules, options)?);
    if modules
        .values()
        .any(|m| m.required_providers.contains_key("aws"))
        && let Some(cloud) = &project.spec.cloud
    {
        body = body.add_block(aws_provider(&ctx, &cloud.aws));
    }
    let mut outputs = BTreeSet::new();
    let mut output_blocks = Vec::new();
    for (index, component) in project.spec.components.iter().enumerate() {
        let label = ctx.identifier(&format!("spec.components[{index}].name"), &component.name)?;
        let module = catalog.module(&component.module)?;
        let mut block = Block::builder("module")
            .add_label(component.name.as_str())
            .add_attribute(("source", format!("./modules/{}", module.name)));
        for (input, value) in &component.inputs {
            let key = ctx.identifier(&format!("spec.components[{index}].inputs"), input)?;
            block = block.add_attribute(Attribute::new(key, literal(value)));
        }
        if !component.depends_on.is_empty() {
            let deps = component
                .depends_on
                .iter()
                .map(|dep| {
                    Ok(module_ref(
                        ctx.identifier(&format!("spec.components[{index}].dependsOn"), dep)?,
                        None,
                    ))
                })
                .collect::<Result<Vec<_>, RenderError>>()?;
            block = block.add_attribute(("depends_on", Expression::Array(deps)));
        }
        body = body.add_block(block.build());
        for output in module.outputs.values() {
            let name = format!("{}_{}", component.name, output.name);
            if !outputs.insert(name.clone()) {
                return Err(RenderError::OutputCollision {
                    project: ctx.project.clone(),
                    output: name,
                });
            }
            let attr = ctx.identifier(&format!("module `{}` output", module.name), &output.name)?;
            let mut out = Block::builder("output")
                .add_label(name.as_str())
                .add_attribute(("value", module_ref(label.clone(), Some(attr))));
            if let Some(description) = &output.description {
                out = out.add_attribute(("description", description.as_str()));
            }
            if output.sensitive {
                out = out.add_attribute(("sensitive", true));
            }
            output_blocks.push(out.build());
        }
    }
    let root = hcl::to_string(&body.add_blocks(output_blocks).build())?;

    let mut hasher = Sha256::new();
    hasher.update(format!("{ROOT_FILE}\0{}\0", root.len()).as_bytes());
    hasher.update(root.as_bytes());
    for module in modules.values() {
        hasher.update(format!("modules/{}\0{}\0", module.name, module.digest).as_bytes());
    }
    Ok(Rendered {
        root,
        modules: modules.into_values().cloned().collect(),
        inputs_digest: hex::encode(hasher.finalize()),
    })
}

impl Rendered {
    /// Writes the working directory: `main.tf`, `modules/<name>/…` copied from the catalog,
    /// and `tollgate.json`. Files from an earlier render that are no longer part of it are
    /// removed, while Terraform's own files (`.terraform/`, state, plans) are kept.
    pub fn write_to(&self, dir: &Path) -> Result<(), RenderError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| RenderError::Io { path, source }
        };
        fs::create_dir_all(dir).map_err(io(dir))?;
        let modules_dir = dir.join("modules");
        if modules_dir.exists() {
            fs::remove_dir_all(&modules_dir).map_err(io(&modules_dir))?;
        }
        for module in &self.modules {
            for file in &module.files {
                let target = modules_dir.join(&module.name).join(file);
                if let Some(parent) = target.parent() {
                    fs::create_dir_all(parent).map_err(io(parent))?;
                }
                fs::copy(module.path.join(file), &target).map_err(io(&target))?;
            }
        }
        let root = dir.join(ROOT_FILE);
        fs::write(&root, &self.root).map_err(io(&root))?;
        let metadata = serde_json::json!({ "inputsDigest": self.inputs_digest, "renderedBy": concat!("tollgate ", env!("CARGO_PKG_VERSION")) });
        let meta = dir.join(METADATA_FILE);
        fs::write(&meta, format!("{metadata:#}\n")).map_err(io(&meta))?;
        Ok(())
    }
}

struct Ctx<'a> {
    project: String,
    name: &'a str,
    namespace: &'a str,
    environment: &'a str,
    backend: Option<&'a Backend>,
    region: Option<&'a str>,
}

impl<'a> Ctx<'a> {
    fn new(project: &'a Project) -> Self {
        let name = project.metadata.name.as_deref().unwrap_or("unnamed");
        let namespace = project.metadata.namespace.as_deref().unwrap_or("default");
        Ctx {
            project: format!("{namespace}/{name}"),
            name,
            namespace,
            environment: &project.spec.environment,
            backend: project.spec.backend.as_ref(),
            region: project.spec.cloud.as_ref().map(|c| c.aws.region.as_str()),
        }
    }

    fn identifier(&self, field: &str, value: &str) -> Result<Identifier, RenderError> {
        Identifier::new(value).map_err(|_| self.identifier_error(field, value))
    }

    fn identifier_error(&self, field: &str, value: &str) -> RenderError {
        RenderError::Identifier {
            project: self.project.clone(),
            field: field.to_owned(),
            value: value.to_owned(),
        }
    }
}

fn terraform_block(
    ctx: &Ctx<'_>,
    modules: &BTreeMap<&str, &Module>,
    options: &RenderOptions,
) -> Result<Block, RenderError> {
    let mut block =
        Block::builder("terraform").add_attribute(("required_version", REQUIRED_TERRAFORM));
    let providers: BTreeMap<&str, _> = modules
        .values()
        .flat_map(|m| m.required_providers.iter().map(|(k, v)| (k.as_str(), v)))
        .collect();
    if !providers.is_empty() {
        let mut required = Block::builder("required_providers");
        for (name, provider) in providers {
            let mut fields = Object::new();
            fields.insert(
                ObjectKey::from(Identifier::unchecked("source")),
                Expression::from(provider.source.as_str()),
            );
            if let Some(version) = &provider.version {
                fields.insert(
                    ObjectKey::from(Identifier::unchecked("version")),
                    Expression::from(version.as_str()),
                );
            }
            required = required.add_attribute(Attribute::new(
                ctx.identifier("required_providers", name)?,
                Expression::Object(fields),
            ));
        }
        block = block.add_block(required.build());
    }
    Ok(block.add_block(backend_block(ctx, options)?).build())
}

fn backend_block(ctx: &Ctx<'_>, options: &RenderOptions) -> Result<Block, RenderError> {
    // Rendered in the working directory: relative to it. `..` would let a Project write
    // state outside its own directory.
    let project = &ctx.project;
    let backend_error = |message: &str| RenderError::Backend {
        project: project.clone(),
        message: message.to_owned(),
    };
    let spec = ctx.backend;
    let backend_type = options
        .backend_override
        .unwrap_or(spec.map(|b| b.backend_type).unwrap_or_default());
    Ok(match backend_type {
        BackendType::Local => {
            let path = spec
                .and_then(|b| b.local.as_ref())
                .and_then(|l| l.path.clone())
                .unwrap_or_else(|| "terraform.tfstate".into());
            let p = Path::new(&path);
            if p.is_absolute()
                || p.components()
                    .any(|c| matches!(c, std::path::Component::ParentDir))
            {
                return Err(backend_error(
                    "local.path must be relative to the working directory and must not contain `..`",
                ));
            }
            Block::builder("backend")
                .add_label("local")
                .add_attribute(("path", path))
                .build()
        }
        BackendType::Kubernetes => {
            let suffix = spec
                .and_then(|b| b.kubernetes.as_ref())
                .and_then(|k| k.secret_suffix.clone())
                .unwrap_or_else(|| ctx.name.to_owned());
            Block::builder("backend")
                .add_label("kubernetes")
                .add_attribute(("secret_suffix", suffix))
                .add_attribute(("namespace", ctx.namespace))
                .build()
        }
        BackendType::S3 => {
            let s3 = spec
                .and_then(|b| b.s3.as_ref())
                .ok_or_else(|| backend_error("type is s3 but s3.bucket is not set"))?;
            let region = s3
                .region
                .clone()
                .or_else(|| ctx.region.map(str::to_owned))
                .ok_or_else(|| {
                    backend_error("s3.region is required when spec.cloud.aws is not set")
                })?;
            let key = s3
                .key
                .clone()
                .unwrap_or_else(|| format!("{}/{}/terraform.tfstate", ctx.namespace, ctx.name));
            let mut block = Block::builder("backend")
                .add_label("s3")
                .add_attribute(("bucket", s3.bucket.as_str()))
                .add_attribute(("key", key))
                .add_attribute(("region", region))
                .add_attribute(("encrypt", true));
            block = match &s3.dynamodb_table {
                Some(table) => block.add_attribute(("dynamodb_table", table.as_str())),
                None => block.add_attribute(("use_lockfile", true)),
            };
            block.build()
        }
    })
}

fn aws_provider(ctx: &Ctx<'_>, aws: &AwsCloud) -> Block {
    let mut provider = Block::builder("provider")
        .add_label("aws")
        .add_attribute(("region", aws.region.as_str()))
        .add_attribute((
            "allowed_account_ids",
            Expression::Array(vec![Expression::from(aws.account_id.as_str())]),
        ));
    if let Some(role) = aws
        .credentials
        .as_ref()
        .and_then(|c| c.assume_role.as_ref())
    {
        let mut assume = Block::builder("assume_role")
            .add_attribute(("role_arn", role.role_arn.as_str()))
            .add_attribute((
                "session_name",
                format!("tollgate-{}-{}", ctx.namespace, ctx.name),
            ));
        if let Some(external_id) = &role.external_id {
            assume = assume.add_attribute(("external_id", external_id.as_str()));
        }
        if let Some(duration) = &role.session_duration {
            assume = assume.add_attribute(("duration", duration.as_str()));
        }
        provider = provider.add_block(assume.build());
    }
    let mut tags = Object::new();
    for (key, value) in [
        ("project", ctx.name),
        ("namespace", ctx.namespace),
        ("environment", ctx.environment),
        ("managed-by", "tollgate"),
    ] {
        tags.insert(
            ObjectKey::Expression(Expression::String(format!("{TAG_PREFIX}/{key}"))),
            Expression::from(value),
        );
    }
    provider
        .add_block(
            Block::builder("default_tags")
                .add_attribute(("tags", Expression::Object(tags)))
                .build(),
        )
        .build()
}

/// `module.<name>` or `module.<name>.<attr>`.
fn module_ref(name: Identifier, attr: Option<Identifier>) -> Expression {
    let mut ops = vec![TraversalOperator::GetAttr(name)];
    ops.extend(attr.map(TraversalOperator::GetAttr));
    Expression::Traversal(Box::new(Traversal::new(Variable::unchecked("module"), ops)))
}

/// A JSON value as an HCL literal. Object keys are always quoted strings, so a key is never
/// read as a reference either.
pub fn literal(value: &Value) -> Expression {
    match value {
        Value::Null => Expression::Null,
        Value::Bool(b) => Expression::Bool(*b),
        Value::Number(n) => {
            let number = n
                .as_i64()
                .map(hcl::Number::from)
                .or_else(|| n.as_u64().map(hcl::Number::from))
                .or_else(|| n.as_f64().and_then(hcl::Number::from_f64));
            // serde_json numbers are always finite, so one of the three conversions succeeds;
            // the string form is a safe literal either way.
            number
                .map(Expression::Number)
                .unwrap_or_else(|| Expression::String(n.to_string()))
        }
        Value::String(s) => Expression::String(s.clone()),
        Value::Array(items) => Expression::Array(items.iter().map(literal).collect()),
        Value::Object(entries) => Expression::Object(
            entries
                .iter()
                .map(|(k, v)| {
                    (
                        ObjectKey::Expression(Expression::String(k.clone())),
                        literal(v),
                    )
                })
                .collect(),
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use hcl::eval::{Context, Evaluate};
    use proptest::prelude::*;

    fn catalog() -> (tempfile::TempDir, Catalog) {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("echo");
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join("variables.tf"),
            "variable \"value\" {\n  type = any\n}\n",
        )
        .unwrap();
        fs::write(dir.join("outputs.tf"), "output \"value\" {\n  value = var.value\n}\noutput \"secret\" {\n  value     = \"s\"\n  sensitive = true\n}\n").unwrap();
        let aws = root.path().join("cloudy");
        fs::create_dir_all(&aws).unwrap();
        fs::write(aws.join("versions.tf"), "terraform {\n  required_providers {\n    aws = { source = \"hashicorp/aws\", version = \"~> 5.80\" }\n  }\n}\n").unwrap();
        let catalog = Catalog::load(root.path()).unwrap();
        (root, catalog)
    }

    fn project(spec: serde_json::Value) -> Project {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "tollgate.dev/v1alpha1", "kind": "Project",
            "metadata": {"name": "shop", "namespace": "team-a"}, "spec": spec
        }))
        .unwrap()
    }

    fn echo_project(value: &Value) -> Project {
        project(
            serde_json::json!({"environment": "dev", "components": [{"name": "app", "module": "echo", "inputs": {"value": value}}]}),
        )
    }

    /// Parses the rendered root back and evaluates the `value` input of module `app` with an
    /// empty context: any reference, function call or template directive would fail or differ.
    fn read_back(root: &str) -> Value {
        let body = hcl::parse(root).unwrap();
        let module = body.blocks().find(|b| b.identifier() == "module").unwrap();
        let expr = module
            .body()
            .attributes()
            .find(|a| a.key() == "value")
            .unwrap()
            .expr()
            .clone();
        let value = expr.evaluate(&Context::new()).unwrap();
        serde_json::to_value(value).unwrap()
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let hostile = prop_oneof![
            any::<String>(),
            "[$%{}\"\\\\\n\r\t<EOF ]{0,24}",
            Just("${file(\"/etc/passwd\")}".to_owned()),
            Just("%{ for x in [1] }${x}%{ endfor }".to_owned()),
            Just("<<EOF\nx\nEOF".to_owned()),
            Just("$${already}".to_owned()),
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            hostile.clone().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(hostile.clone(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn any_input_renders_as_the_identical_literal(value in arb_json()) {
            let (_dir, catalog) = catalog();
            let rendered = render(&echo_project(&value), &catalog, &RenderOptions::default()).unwrap();
            prop_assert_eq!(read_back(&rendered.root), value);
        }
    }

    #[test]
    fn injection_attempts_stay_literal() {
        let (_dir, catalog) = catalog();
        let hostile = serde_json::json!({
            "${file(\"/etc/passwd\")}": "%{ if true }x%{ endif }",
            "quote": "\" } resource \"x\" \"y\" { a = \"",
            "heredoc": "<<EOT\n${path.module}\nEOT\n",
            "unicode": "ünï\u{2028}cødé \u{0}"
        });
        let rendered =
            render(&echo_project(&hostile), &catalog, &RenderOptions::default()).unwrap();
        assert_eq!(read_back(&rendered.root), hostile);
        assert!(rendered.root.contains("$${file"), "{}", rendered.root);
        assert_eq!(
            hcl::parse(&rendered.root)
                .unwrap()
                .blocks()
                .filter(|b| b.identifier() == "resource")
                .count(),
            0
        );
    }

    #[test]
    fn render_is_deterministic_and_digest_tracks_inputs() {
        let (_dir, catalog) = catalog();
        let a = render(
            &echo_project(&serde_json::json!({"b": 1, "a": [2]})),
            &catalog,
            &RenderOptions::default(),
        )
        .unwrap();
        let b = render(
            &echo_project(&serde_json::json!({"a": [2], "b": 1})),
            &catalog,
            &RenderOptions::default(),
        )
        .unwrap();
        let c = render(
            &echo_project(&serde_json::json!({"a": [3], "b": 1})),
            &catalog,
            &RenderOptions::default(),
        )
        .unwrap();
        assert_eq!(a.root, b.root);
        assert_eq!(a.inputs_digest, b.inputs_digest);
        assert_ne!(a.inputs_digest, c.inputs_digest);
    }

    #[test]
    fn outputs_are_re_exported_and_sensitive_stays_sensitive() {
        let (_dir, catalog) = catalog();
        let rendered = render(
            &echo_project(&Value::Null),
            &catalog,
            &RenderOptions::default(),
        )
        .unwrap();
        let body = hcl::parse(&rendered.root).unwrap();
        let secret = body
            .blocks()
            .find(|b| b.identifier() == "output" && b.labels()[0].as_str() == "app_secret")
            .unwrap();
        assert!(
            secret
                .body()
                .attributes()
                .any(|a| a.key() == "sensitive" && *a.expr() == Expression::Bool(true))
        );
        assert_eq!(
            secret
                .body()
                .attributes()
                .find(|a| a.key() == "value")
                .unwrap()
                .expr()
                .to_string(),
            "module.app.secret"
        );
    }

    #[test]
    fn aws_projects_get_a_pinned_provider_with_account_guard_role_and_tags() {
        let (_dir, catalog) = catalog();
        let p = project(serde_json::json!({
            "environment": "production",
            "cloud": {"aws": {"region": "eu-west-1", "accountId": "123456789012", "credentials": {"assumeRole": {"roleArn": "arn:aws:iam::123456789012:role/deploy", "externalId": "ext-1", "sessionDuration": "1h"}}}},
            "components": [{"name": "net", "module": "cloudy"}, {"name": "app", "module": "echo", "inputs": {"value": 1}, "dependsOn": ["net"]}],
            "backend": {"type": "s3", "s3": {"bucket": "state-bucket", "dynamodbTable": "locks"}}
        }));
        let root = render(&p, &catalog, &RenderOptions::default())
            .unwrap()
            .root;
        for expected in [
            "version = \"~> 5.80\"",
            "backend \"s3\"",
            "key = \"team-a/shop/terraform.tfstate\"",
            "dynamodb_table = \"locks\"",
            "allowed_account_ids = [\n    \"123456789012\"\n  ]",
            "role_arn = \"arn:aws:iam::123456789012:role/deploy\"",
            "\"tollgate.dev/environment\" = \"production\"",
            "depends_on = [\n    module.net\n  ]",
        ] {
            assert!(root.contains(expected), "missing {expected} in\n{root}");
        }
    }

    #[test]
    fn backend_defaults_to_kubernetes_in_the_namespace_and_can_be_overridden() {
        let (_dir, catalog) = catalog();
        let p = echo_project(&Value::Null);
        let k8s = render(&p, &catalog, &RenderOptions::default())
            .unwrap()
            .root;
        assert!(
            k8s.contains("backend \"kubernetes\"")
                && k8s.contains("namespace = \"team-a\"")
                && k8s.contains("secret_suffix = \"shop\""),
            "{k8s}"
        );
        let local = render(
            &p,
            &catalog,
            &RenderOptions {
                backend_override: Some(BackendType::Local),
            },
        )
        .unwrap()
        .root;
        assert!(local.contains("backend \"local\""), "{local}");
    }

    #[test]
    fn unsafe_local_state_paths_and_bad_names_are_refused() {
        let (_dir, catalog) = catalog();
        let p = project(
            serde_json::json!({"environment": "dev", "components": [{"name": "app", "module": "echo"}], "backend": {"type": "local", "local": {"path": "../../etc/x"}}}),
        );
        let err = render(&p, &catalog, &RenderOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("team-a/shop: spec.backend: local.path must be relative"),
            "{err}"
        );
        let p = project(
            serde_json::json!({"environment": "dev", "components": [{"name": "app", "module": "echo", "inputs": {"bad key": 1}}]}),
        );
        let err = render(&p, &catalog, &RenderOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("spec.components[0].inputs `bad key` cannot be a Terraform identifier"),
            "{err}"
        );
    }

    #[test]
    fn write_to_copies_modules_and_replaces_stale_ones() {
        let (_dir, catalog) = catalog();
        let out = tempfile::tempdir().unwrap();
        fs::create_dir_all(out.path().join("modules/old")).unwrap();
        fs::write(out.path().join("terraform.tfstate"), "{}").unwrap();
        render(
            &echo_project(&Value::Null),
            &catalog,
            &RenderOptions::default(),
        )
        .unwrap()
        .write_to(out.path())
        .unwrap();
        assert!(out.path().join("modules/echo/variables.tf").is_file());
        assert!(!out.path().join("modules/old").exists());
        assert!(out.path().join("terraform.tfstate").is_file());
        let meta: Value =
            serde_json::from_str(&fs::read_to_string(out.path().join(METADATA_FILE)).unwrap())
                .unwrap();
        assert_eq!(meta["inputsDigest"].as_str().unwrap().len(), 64);
    }
}

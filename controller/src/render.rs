//! Renders a Project into a self-contained Terraform working directory with hcl-rs.
//!
//! **Inputs are data.** No string a user writes in a Project is ever part of the HCL text:
//! every value a Project supplies (component inputs, the AWS region, account, role, tags)
//! is written as JSON to [`VARIABLES_FILE`] and reaches the configuration as a root
//! variable (`var.inputs_app.greeting`). Terraform reads a `.tfvars.json` value as a plain
//! JSON value, never as a template, so `${…}` and `%{…}` in an input cannot become an
//! expression; and because root variable values are stored in the saved plan, the plan's
//! digest covers them: applying it uses exactly the values that were reviewed.
//!
//! What still appears in HCL: names that both the API patterns and hcl-rs's identifier check
//! accept (component, input and output names), and strings that cannot be variables
//! (backend settings, which Terraform evaluates before variables exist) or that come from
//! the catalog (module sources, provider requirements, output descriptions). Every such
//! string goes through [`quote::quoted`], never through hcl-rs's string escaping, whose
//! marker escaper skips the character after each `$`/`%` (see [`quote`]).

pub mod quote;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use hcl::expr::{Expression, FuncCall, Object, ObjectKey, Traversal, TraversalOperator, Variable};
use hcl::{Attribute, Block, Body, Identifier};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::api::{AwsCloud, Backend, BackendType, Component, Project};
use crate::catalog::{Catalog, Module};
use quote::quoted;

/// Terraform versions the rendered root module accepts.
pub const REQUIRED_TERRAFORM: &str = ">= 1.5.0";
/// Name of the root module file tollgate writes.
pub const ROOT_FILE: &str = "main.tf";
/// The root variables file tollgate writes: every value the Project supplies, as JSON.
/// Terraform loads `*.auto.tfvars.json` by itself, so the directory plans by hand too.
pub const VARIABLES_FILE: &str = "tollgate.auto.tfvars.json";
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
    /// hcl-rs could not format the body, or serde_json the variables (neither happens for
    /// what is built here).
    #[error("cannot format the working directory's files: {0}")]
    Format(String),
}

/// Choices that are not part of the Project.
#[derive(Clone, Debug, Default)]
pub struct RenderOptions {
    /// Use this backend instead of the Project's (e.g. `local` for offline CLI use).
    pub backend_override: Option<BackendType>,
    /// Namespace of the `kubernetes` backend's state (default
    /// [`crate::state::DEFAULT_STATE_NAMESPACE`]).
    pub state_namespace: Option<String>,
}

/// A rendered working directory, in memory.
#[derive(Clone, Debug)]
pub struct Rendered {
    /// The root module (`main.tf`): contains no value a user supplied.
    pub root: String,
    /// The root variables (`tollgate.auto.tfvars.json`): every value the Project supplies.
    /// It may hold sensitive inputs: never log it.
    pub variables: String,
    /// Catalog modules used, copied to `modules/<name>/`.
    pub modules: Vec<Module>,
    /// sha256 over the root module, the variables and the files of every module used: the
    /// same Project and catalog always give the same digest, and any change to either gives
    /// another.
    pub inputs_digest: String,
}

/// Renders the root module of `project`. Pure: reads nothing but the catalog's metadata.
pub fn render(
    project: &Project,
    catalog: &Catalog,
    options: &RenderOptions,
) -> Result<Rendered, RenderError> {
    let ctx = ProjectView::new(project);
    let mut modules: BTreeMap<&str, &Module> = BTreeMap::new();
    for component in &project.spec.components {
        let module = catalog.module(&component.module)?;
        modules.insert(module.name.as_str(), module);
    }

    let mut variables = RootVariables::default();
    let mut body = Body::builder().add_block(terraform_block(&ctx, &modules, options)?);
    if modules
        .values()
        .any(|m| m.required_providers.contains_key("aws"))
        && let Some(cloud) = &project.spec.cloud
    {
        body = body.add_block(aws_provider(&ctx, &cloud.aws, &mut variables));
    }
    let mut outputs = BTreeSet::new();
    let mut module_blocks = Vec::new();
    let mut output_blocks = Vec::new();
    for (index, component) in project.spec.components.iter().enumerate() {
        let label = ctx.identifier(&format!("spec.components[{index}].name"), &component.name)?;
        let module = catalog.module(&component.module)?;
        module_blocks.push(module_block(
            &ctx,
            index,
            component,
            module,
            &mut variables,
        )?);
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
                out = out.add_attribute(("description", quoted(description)));
            }
            if output.sensitive {
                out = out.add_attribute(("sensitive", true));
            }
            output_blocks.push(out.build());
        }
    }
    let root = hcl::to_string(
        &body
            .add_blocks(variables.blocks())
            .add_blocks(module_blocks)
            .add_blocks(output_blocks)
            .build(),
    )
    .map_err(|e| RenderError::Format(e.to_string()))?;
    let variables = variables.to_json()?;

    let mut hasher = Sha256::new();
    for (file, text) in [(ROOT_FILE, &root), (VARIABLES_FILE, &variables)] {
        hasher.update(format!("{file}\0{}\0", text.len()).as_bytes());
        hasher.update(text.as_bytes());
    }
    for module in modules.values() {
        hasher.update(format!("modules/{}\0{}\0", module.name, module.digest).as_bytes());
    }
    Ok(Rendered {
        root,
        variables,
        modules: modules.into_values().cloned().collect(),
        inputs_digest: hex::encode(hasher.finalize()),
    })
}

impl Rendered {
    /// Writes the working directory: `main.tf`, `tollgate.auto.tfvars.json` (owner-only: it
    /// may hold sensitive inputs), `modules/<name>/…` copied from the catalog, and
    /// `tollgate.json`. Files from an earlier render that are no longer part of it are
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
        let variables = dir.join(VARIABLES_FILE);
        write_owner_only(&variables, self.variables.as_bytes()).map_err(io(&variables))?;
        let metadata = serde_json::json!({ "inputsDigest": self.inputs_digest, "renderedBy": concat!("tollgate ", env!("CARGO_PKG_VERSION")) });
        let meta = dir.join(METADATA_FILE);
        fs::write(&meta, format!("{metadata:#}\n")).map_err(io(&meta))?;
        Ok(())
    }
}

fn write_owner_only(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

/// The root variables of a render: their declarations (HCL) and values (JSON).
#[derive(Default)]
struct RootVariables {
    declarations: Vec<Block>,
    values: BTreeMap<String, Value>,
}

impl RootVariables {
    /// Declares `name` with `value` and returns the reference `var.<name>`. `name` is built
    /// here from constants and validated identifiers only.
    fn add(
        &mut self,
        name: &str,
        type_: Expression,
        sensitive: bool,
        description: &str,
        value: Value,
    ) -> Traversal {
        let mut block = Block::builder("variable")
            .add_label(name)
            .add_attribute(("description", quoted(description)))
            .add_attribute(("type", type_));
        if sensitive {
            block = block.add_attribute(("sensitive", true));
        }
        self.declarations.push(block.build());
        self.values.insert(name.to_owned(), value);
        Traversal::new(
            Variable::unchecked("var"),
            [TraversalOperator::GetAttr(Identifier::unchecked(name))],
        )
    }

    /// A `string` variable holding `value`.
    fn string(&mut self, name: &str, description: &str, value: &str) -> Expression {
        let var = self.add(
            name,
            type_keyword("string"),
            false,
            description,
            Value::String(value.to_owned()),
        );
        Expression::Traversal(Box::new(var))
    }

    fn blocks(&self) -> Vec<Block> {
        self.declarations.clone()
    }

    fn to_json(&self) -> Result<String, RenderError> {
        serde_json::to_string_pretty(&self.values)
            .map(|text| text + "\n")
            .map_err(|e| RenderError::Format(e.to_string()))
    }
}

fn type_keyword(name: &str) -> Expression {
    Expression::Variable(Variable::unchecked(name))
}

/// `module "<component>"`: each input is an attribute of the component's root variable
/// (`inputs_<component>`, or `sensitive_inputs_<component>` for the inputs the module
/// declares `sensitive`, so that only those are marked). The two prefixes cannot produce the
/// same name for two components, and neither starts with `tollgate_`.
fn module_block(
    ctx: &ProjectView<'_>,
    index: usize,
    component: &Component,
    module: &Module,
    variables: &mut RootVariables,
) -> Result<Block, RenderError> {
    let mut block = Block::builder("module")
        .add_label(component.name.as_str())
        .add_attribute(("source", quoted(&format!("./modules/{}", module.name))));
    let mut plain = serde_json::Map::new();
    let mut secret = serde_json::Map::new();
    for (input, value) in &component.inputs {
        ctx.identifier(&format!("spec.components[{index}].inputs"), input)?;
        if module.variables.get(input).is_some_and(|v| v.sensitive) {
            secret.insert(input.clone(), value.clone());
        } else {
            plain.insert(input.clone(), value.clone());
        }
    }
    for (prefix, sensitive, values) in
        [("inputs", false, plain), ("sensitive_inputs", true, secret)]
    {
        if values.is_empty() {
            continue;
        }
        let inputs: Vec<String> = values.keys().cloned().collect();
        let var = variables.add(
            &format!("{prefix}_{}", component.name),
            type_keyword("any"),
            sensitive,
            &format!(
                "Inputs of component {} (module {}), from the Project's spec",
                component.name, module.name
            ),
            Value::Object(values),
        );
        for input in inputs {
            let key = Identifier::unchecked(input);
            let mut value = var.clone();
            value
                .operators
                .push(TraversalOperator::GetAttr(key.clone()));
            block =
                block.add_attribute(Attribute::new(key, Expression::Traversal(Box::new(value))));
        }
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
    Ok(block.build())
}

/// What rendering reads of the Project: its identity, environment, backend and region.
struct ProjectView<'a> {
    project: String,
    name: &'a str,
    namespace: &'a str,
    environment: &'a str,
    backend: Option<&'a Backend>,
    region: Option<&'a str>,
}

impl<'a> ProjectView<'a> {
    fn new(project: &'a Project) -> Self {
        let name = project.metadata.name.as_deref().unwrap_or("unnamed");
        let namespace = project.metadata.namespace.as_deref().unwrap_or("default");
        ProjectView {
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
    ctx: &ProjectView<'_>,
    modules: &BTreeMap<&str, &Module>,
    options: &RenderOptions,
) -> Result<Block, RenderError> {
    let mut block =
        Block::builder("terraform").add_attribute(("required_version", quoted(REQUIRED_TERRAFORM)));
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
                quoted(&provider.source),
            );
            if let Some(version) = &provider.version {
                fields.insert(
                    ObjectKey::from(Identifier::unchecked("version")),
                    quoted(version),
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

/// The backend block. Terraform evaluates it before variables exist, so its settings are
/// the one place Project strings stay in HCL: always through [`quoted`].
fn backend_block(ctx: &ProjectView<'_>, options: &RenderOptions) -> Result<Block, RenderError> {
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
                .add_attribute(("path", quoted(&path)))
                .build()
        }
        // In the state namespace, named after the Project alone: nothing in the spec
        // chooses where state lives (see the `state` module).
        BackendType::Kubernetes => crate::state::StateLocation::new(
            options
                .state_namespace
                .as_deref()
                .unwrap_or(crate::state::DEFAULT_STATE_NAMESPACE),
            ctx.namespace,
            ctx.name,
        )
        .backend_block(),
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
                .add_attribute(("bucket", quoted(&s3.bucket)))
                .add_attribute(("key", quoted(&key)))
                .add_attribute(("region", quoted(&region)))
                .add_attribute(("encrypt", true));
            block = match &s3.dynamodb_table {
                Some(table) => block.add_attribute(("dynamodb_table", quoted(table))),
                None => block.add_attribute(("use_lockfile", true)),
            };
            block.build()
        }
    })
}

/// `provider "aws"`: every setting from the Project is a `tollgate_*` root variable.
fn aws_provider(ctx: &ProjectView<'_>, aws: &AwsCloud, variables: &mut RootVariables) -> Block {
    let mut provider = Block::builder("provider")
        .add_label("aws")
        .add_attribute((
            "region",
            variables.string(
                "tollgate_aws_region",
                "AWS region, from spec.cloud.aws.region",
                &aws.region,
            ),
        ))
        .add_attribute((
            "allowed_account_ids",
            Expression::Array(vec![variables.string(
                "tollgate_aws_account_id",
                "The only AWS account this Project may change, from spec.cloud.aws.accountId",
                &aws.account_id,
            )]),
        ));
    if let Some(role) = aws
        .credentials
        .as_ref()
        .and_then(|c| c.assume_role.as_ref())
    {
        let mut assume = Block::builder("assume_role")
            .add_attribute((
                "role_arn",
                variables.string(
                    "tollgate_aws_role_arn",
                    "Role to assume, from spec.cloud.aws.credentials.assumeRole.roleArn",
                    &role.role_arn,
                ),
            ))
            .add_attribute((
                "session_name",
                variables.string(
                    "tollgate_aws_session_name",
                    "Session name: which Project acted, for CloudTrail",
                    &format!("tollgate-{}-{}", ctx.namespace, ctx.name),
                ),
            ));
        if let Some(external_id) = &role.external_id {
            assume = assume.add_attribute((
                "external_id",
                variables.string(
                    "tollgate_aws_external_id",
                    "From spec.cloud.aws.credentials.assumeRole.externalId",
                    external_id,
                ),
            ));
        }
        if let Some(duration) = &role.session_duration {
            assume = assume.add_attribute((
                "duration",
                variables.string(
                    "tollgate_aws_session_duration",
                    "From spec.cloud.aws.credentials.assumeRole.sessionDuration",
                    duration,
                ),
            ));
        }
        provider = provider.add_block(assume.build());
    }
    let tags: serde_json::Map<String, Value> = [
        ("project", ctx.name),
        ("namespace", ctx.namespace),
        ("environment", ctx.environment),
        ("managed-by", "tollgate"),
    ]
    .into_iter()
    .map(|(key, value)| (format!("{TAG_PREFIX}/{key}"), Value::from(value)))
    .collect();
    let tags = variables.add(
        "tollgate_default_tags",
        Expression::FuncCall(Box::new(
            FuncCall::builder("map").arg(type_keyword("string")).build(),
        )),
        false,
        "Tags on every AWS resource: which Project, namespace and environment own it",
        Value::Object(tags),
    );
    provider
        .add_block(
            Block::builder("default_tags")
                .add_attribute(("tags", Expression::Traversal(Box::new(tags))))
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn catalog() -> (tempfile::TempDir, Catalog) {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("echo");
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join("variables.tf"),
            "variable \"value\" {\n  type = any\n}\nvariable \"token\" {\n  type      = string\n  default   = null\n  sensitive = true\n}\n",
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

    fn variables(rendered: &Rendered) -> Value {
        serde_json::from_str(&rendered.variables).unwrap()
    }

    fn hostile_string() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[$%{}\"\\\\\n\r\t<EOF x]{0,24}",
            Just("%%{%${path.cwd}".to_owned()),
            Just("${file(\"/etc/passwd\")}".to_owned()),
            Just("%{ for x in [1] }${x}%{ endfor }".to_owned()),
        ]
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            hostile_string().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(hostile_string(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// No input value reaches the HCL: the root module is the same text whatever the
        /// values are. (That Terraform reads the variables file back exactly is proven
        /// against real Terraform in `tests/render_terraform.rs`.)
        #[test]
        fn the_root_module_does_not_depend_on_input_values(value in arb_json(), tag in hostile_string()) {
            let (_dir, catalog) = catalog();
            let options = RenderOptions::default();
            let baseline = render(&echo_project(&Value::Null), &catalog, &options).unwrap();
            let rendered = render(&echo_project(&value), &catalog, &options).unwrap();
            prop_assert_eq!(&rendered.root, &baseline.root);
            prop_assert_eq!(&variables(&rendered)["inputs_app"]["value"], &value);
            let with_token = |token: &str| {
                let mut p = echo_project(&value);
                p.spec.components[0].inputs.insert("token".into(), Value::String(token.to_owned()));
                render(&p, &catalog, &options).unwrap()
            };
            prop_assert_eq!(with_token(&tag).root, with_token("").root);
        }
    }

    #[test]
    fn sensitive_inputs_get_their_own_sensitive_variable() {
        let (_dir, catalog) = catalog();
        let mut p = echo_project(&serde_json::json!(1));
        p.spec.components[0]
            .inputs
            .insert("token".into(), serde_json::json!("s3cr3t"));
        let rendered = render(&p, &catalog, &RenderOptions::default()).unwrap();
        assert_eq!(
            variables(&rendered),
            serde_json::json!({"inputs_app": {"value": 1}, "sensitive_inputs_app": {"token": "s3cr3t"}})
        );
        for expected in [
            "variable \"sensitive_inputs_app\" {",
            "sensitive = true",
            "token = var.sensitive_inputs_app.token",
            "value = var.inputs_app.value",
        ] {
            assert!(
                rendered.root.contains(expected),
                "missing {expected} in\n{}",
                rendered.root
            );
        }
        assert!(!rendered.root.contains("s3cr3t"));
    }

    #[test]
    fn backend_strings_are_escaped_by_our_escaper() {
        let (_dir, catalog) = catalog();
        let p = project(serde_json::json!({
            "environment": "dev",
            "components": [{"name": "app", "module": "echo"}],
            "backend": {"type": "local", "local": {"path": "%%{%${path.cwd}\"x"}}
        }));
        let root = render(&p, &catalog, &RenderOptions::default())
            .unwrap()
            .root;
        assert!(root.contains("path = \"%%%{%$${path.cwd}\\\"x\""), "{root}");
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
        let rendered = render(&p, &catalog, &RenderOptions::default()).unwrap();
        let root = &rendered.root;
        assert_eq!(
            variables(&rendered),
            serde_json::json!({
                "inputs_app": {"value": 1},
                "tollgate_aws_region": "eu-west-1",
                "tollgate_aws_account_id": "123456789012",
                "tollgate_aws_role_arn": "arn:aws:iam::123456789012:role/deploy",
                "tollgate_aws_session_name": "tollgate-team-a-shop",
                "tollgate_aws_external_id": "ext-1",
                "tollgate_aws_session_duration": "1h",
                "tollgate_default_tags": {
                    "tollgate.dev/project": "shop",
                    "tollgate.dev/namespace": "team-a",
                    "tollgate.dev/environment": "production",
                    "tollgate.dev/managed-by": "tollgate"
                }
            })
        );
        for expected in [
            "version = \"~> 5.80\"",
            "backend \"s3\"",
            "key = \"team-a/shop/terraform.tfstate\"",
            "dynamodb_table = \"locks\"",
            "region = var.tollgate_aws_region",
            "allowed_account_ids = [\n    var.tollgate_aws_account_id\n  ]",
            "role_arn = var.tollgate_aws_role_arn",
            "external_id = var.tollgate_aws_external_id",
            "tags = var.tollgate_default_tags",
            "type = map(string)",
            "depends_on = [\n    module.net\n  ]",
        ] {
            assert!(root.contains(expected), "missing {expected} in\n{root}");
        }
    }

    #[test]
    fn backend_defaults_to_kubernetes_in_the_state_namespace_and_can_be_overridden() {
        let (_dir, catalog) = catalog();
        let mut p = echo_project(&Value::Null);
        // A legacy secretSuffix never chooses the location: it could name another's state.
        p.spec.backend = Some(serde_json::from_value(serde_json::json!({"type": "kubernetes", "kubernetes": {"secretSuffix": "team-b.shop"}})).unwrap());
        let options = RenderOptions {
            state_namespace: Some("tollgate-state".into()),
            ..RenderOptions::default()
        };
        let k8s = render(&p, &catalog, &options).unwrap().root;
        assert!(
            k8s.contains("backend \"kubernetes\"")
                && k8s.contains("namespace = \"tollgate-state\"")
                && k8s.contains("secret_suffix = \"team-a.shop\"")
                && k8s.contains("\"tollgate.dev/project-namespace\" = \"team-a\""),
            "{k8s}"
        );
        let default = render(&p, &catalog, &RenderOptions::default())
            .unwrap()
            .root;
        assert!(
            default.contains("namespace = \"tollgate-system\""),
            "{default}"
        );
        let local = render(
            &p,
            &catalog,
            &RenderOptions {
                backend_override: Some(BackendType::Local),
                ..RenderOptions::default()
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

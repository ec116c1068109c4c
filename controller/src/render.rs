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
mod settings;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use hcl::expr::{Expression, FuncCall, Object, ObjectKey, Traversal, TraversalOperator, Variable};
use hcl::{Attribute, Block, Body, Identifier};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::api::{AwsCloud, Backend, BackendType, Component, Project, SecretInput};
use crate::catalog::{Catalog, Module};
use quote::quoted;
use settings::{aws_provider, terraform_block};

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
    /// Write `spec.cloud.aws.credentials.assumeRole` into the AWS provider's `assume_role`
    /// block (the offline CLI). The controller leaves it out: it assumes the role itself and
    /// hands Terraform only the session's credentials, so the provider must not assume the
    /// role a second time (that would need the role to trust itself).
    pub provider_assumes_role: bool,
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
    /// Inputs read from secret stores: each is a root variable declared in `main.tf` with no
    /// value in any file; the runner passes it as `TF_VAR_<variable>`.
    pub secret_inputs: Vec<SecretBinding>,
    /// sha256 over the root module, the variables and the files of every module used: the
    /// same Project and catalog always give the same digest, and any change to either gives
    /// another.
    pub inputs_digest: String,
}

/// A component input whose value comes from a secret store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretBinding {
    /// The root variable (`secret_inputs_<component>_<n>`): Terraform reads its value from
    /// the environment variable `TF_VAR_<variable>`.
    pub variable: String,
    /// Component and input, for messages.
    pub component: String,
    /// The input.
    pub input: String,
    /// Where the value is.
    pub source: SecretInput,
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
    let mut secret_inputs = Vec::new();
    let mut body = Body::builder().add_block(terraform_block(&ctx, &modules, options)?);
    if modules
        .values()
        .any(|m| m.required_providers.contains_key("aws"))
        && let Some(cloud) = &project.spec.cloud
    {
        body = body.add_block(aws_provider(
            &ctx,
            &cloud.aws,
            options.provider_assumes_role,
            &mut variables,
        ));
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
            &mut secret_inputs,
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
        secret_inputs,
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
        self.values.insert(name.to_owned(), value);
        self.declare(name, type_, sensitive, description)
    }

    /// Declares `name` without a value in any file (it comes from `TF_VAR_<name>`).
    fn declare(
        &mut self,
        name: &str,
        type_: Expression,
        sensitive: bool,
        description: &str,
    ) -> Traversal {
        let mut block = Block::builder("variable")
            .add_label(name)
            .add_attribute(("description", quoted(description)))
            .add_attribute(("type", type_));
        if sensitive {
            block = block.add_attribute(("sensitive", true));
        }
        self.declarations.push(block.build());
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
    secret_inputs: &mut Vec<SecretBinding>,
) -> Result<Block, RenderError> {
    let mut block = Block::builder("module")
        .add_label(component.name.as_str())
        .add_attribute(("source", quoted(&format!("./modules/{}", module.name))));
    let mut plain = serde_json::Map::new();
    let mut secret = serde_json::Map::new();
    for (input, value) in &component.inputs {
        let key = ctx.identifier(&format!("spec.components[{index}].inputs"), input)?;
        // Checked by the catalog (a sensitive string variable); never written to a file.
        if let Some(Ok(source)) = SecretInput::of(value) {
            let variable = format!("secret_inputs_{}_{}", component.name, secret_inputs.len());
            let reference = variables.declare(
                &variable,
                type_keyword("string"),
                true,
                &format!(
                    "Input {input} of component {}, read from a secret when planning",
                    component.name
                ),
            );
            block = block.add_attribute(Attribute::new(
                key,
                Expression::Traversal(Box::new(reference)),
            ));
            secret_inputs.push(SecretBinding {
                variable,
                component: component.name.clone(),
                input: input.clone(),
                source,
            });
            continue;
        }
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

/// `module.<name>` or `module.<name>.<attr>`.
fn module_ref(name: Identifier, attr: Option<Identifier>) -> Expression {
    let mut ops = vec![TraversalOperator::GetAttr(name)];
    ops.extend(attr.map(TraversalOperator::GetAttr));
    Expression::Traversal(Box::new(Traversal::new(Variable::unchecked("module"), ops)))
}

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::CliError;
use crate::api::{BackendType, Project};
use crate::catalog::{Catalog, validate_project};
use crate::manifest::read_project;
use crate::render::{RenderOptions, render};
use crate::sla::SlaDefaults;

#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    /// Project manifest (YAML).
    #[arg(short = 'f', long = "file", value_name = "PROJECT.yaml")]
    file: PathBuf,
    /// Working directory to write (created if missing).
    #[arg(short = 'o', long = "out", value_name = "DIR")]
    out: PathBuf,
    /// Backend to render. Default: the Project's own, or `local` when it sets none (the CLI
    /// runs outside the cluster).
    #[arg(long, value_enum)]
    backend: Option<BackendArg>,
}

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Project manifest (YAML).
    #[arg(short = 'f', long = "file", value_name = "PROJECT.yaml")]
    file: PathBuf,
    /// The controller's SLA defaults (its `--sla-defaults` file), so the Project's
    /// deadlines are checked exactly as the controller will.
    #[arg(long, value_name = "FILE")]
    sla_defaults: Option<PathBuf>,
    /// The controller's account allow-list (its `--credentials-config`): refuse the
    /// Project exactly as the controller would.
    #[arg(long, value_name = "FILE")]
    credentials_config: Option<PathBuf>,
    /// Namespace the Project is meant for (default: its `metadata.namespace`, else `default`).
    #[arg(long)]
    namespace: Option<String>,
    /// A label of that namespace, for the allow-list's namespace selectors (repeatable).
    #[arg(long = "namespace-label", value_name = "KEY=VALUE", value_parser = parse_label)]
    namespace_labels: Vec<(String, String)>,
}

fn parse_label(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("`{text}`: write KEY=VALUE"))
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum BackendArg {
    Local,
    Kubernetes,
    S3,
}

impl From<BackendArg> for BackendType {
    fn from(arg: BackendArg) -> Self {
        match arg {
            BackendArg::Local => BackendType::Local,
            BackendArg::Kubernetes => BackendType::Kubernetes,
            BackendArg::S3 => BackendType::S3,
        }
    }
}

/// Reads, schema-checks and catalog-checks a Project.
pub(crate) fn load_checked(
    file: &Path,
    catalog: Option<&Path>,
    sla_defaults: &SlaDefaults,
) -> Result<(Project, Catalog), CliError> {
    let project = read_project(file)?;
    let catalog = Catalog::load(&Catalog::locate(catalog))?;
    validate_project(&project, &catalog)?;
    crate::sla::of_project(&project, sla_defaults).map_err(|source| CliError::Sla {
        file: file.to_path_buf(),
        source,
    })?;
    Ok((project, catalog))
}

pub fn run_render(args: &RenderArgs, catalog: Option<&Path>) -> Result<ExitCode, CliError> {
    let (project, catalog) = load_checked(&args.file, catalog, &SlaDefaults::default())?;
    let backend = args
        .backend
        .map(BackendType::from)
        .or_else(|| project.spec.backend.is_none().then_some(BackendType::Local));
    let rendered = render(
        &project,
        &catalog,
        &RenderOptions {
            backend_override: backend,
            // Offline, nobody mints credentials for Terraform: its AWS provider assumes
            // the Project's role itself, with whatever identity runs the CLI.
            provider_assumes_role: true,
            ..Default::default()
        },
    )?;
    rendered.write_to(&args.out)?;
    outln!(
        "rendered {} into {} (inputs digest {})",
        args.file.display(),
        args.out.display(),
        rendered.inputs_digest
    )?;
    Ok(ExitCode::SUCCESS)
}

pub fn run_validate(args: &ValidateArgs, catalog: Option<&Path>) -> Result<ExitCode, CliError> {
    let sla_defaults = match &args.sla_defaults {
        Some(path) => read_sla_defaults(path)?,
        None => SlaDefaults::default(),
    };
    let (project, _) = load_checked(&args.file, catalog, &sla_defaults)?;
    let name = project.metadata.name.as_deref().unwrap_or("<unnamed>");
    if let (Some(path), Some(cloud)) = (&args.credentials_config, &project.spec.cloud) {
        let policy = crate::credentials::AccountPolicy::load(path)?;
        let namespace = args
            .namespace
            .as_deref()
            .or(project.metadata.namespace.as_deref())
            .unwrap_or("default");
        let labels = args.namespace_labels.iter().cloned().collect();
        if let Err(refusal) = policy.check(namespace, &labels, &cloud.aws) {
            eprintln!(
                "{}: project {name} is refused in namespace {namespace} ({}): {}",
                args.file.display(),
                refusal.reason,
                refusal.message
            );
            return Ok(ExitCode::FAILURE);
        }
    }
    outln!(
        "{}: project {name} is valid ({} component(s))",
        args.file.display(),
        project.spec.components.len()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Reads the controller's SLA defaults file (`--sla-defaults`).
pub(crate) fn read_sla_defaults(path: &Path) -> Result<SlaDefaults, CliError> {
    let text = std::fs::read_to_string(path).map_err(|source| CliError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    SlaDefaults::parse(&text).map_err(|source| CliError::Sla {
        file: path.to_path_buf(),
        source,
    })
}

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::CliError;
use crate::api::{BackendType, Project};
use crate::catalog::{Catalog, validate_project};
use crate::manifest::read_project;
use crate::render::{RenderOptions, render};

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
) -> Result<(Project, Catalog), CliError> {
    let project = read_project(file)?;
    let catalog = Catalog::load(&Catalog::locate(catalog))?;
    validate_project(&project, &catalog)?;
    crate::sla::of_project(&project).map_err(|source| CliError::Sla {
        file: file.to_path_buf(),
        source,
    })?;
    Ok((project, catalog))
}

pub fn run_render(args: &RenderArgs, catalog: Option<&Path>) -> Result<ExitCode, CliError> {
    let (project, catalog) = load_checked(&args.file, catalog)?;
    let backend = args
        .backend
        .map(BackendType::from)
        .or_else(|| project.spec.backend.is_none().then_some(BackendType::Local));
    let rendered = render(
        &project,
        &catalog,
        &RenderOptions {
            backend_override: backend,
            ..Default::default()
        },
    )?;
    rendered.write_to(&args.out)?;
    println!(
        "rendered {} into {} (inputs digest {})",
        args.file.display(),
        args.out.display(),
        rendered.inputs_digest
    );
    Ok(ExitCode::SUCCESS)
}

pub fn run_validate(args: &ValidateArgs, catalog: Option<&Path>) -> Result<ExitCode, CliError> {
    let (project, _) = load_checked(&args.file, catalog)?;
    let name = project.metadata.name.as_deref().unwrap_or("<unnamed>");
    println!(
        "{}: project {name} is valid ({} component(s))",
        args.file.display(),
        project.spec.components.len()
    );
    Ok(ExitCode::SUCCESS)
}

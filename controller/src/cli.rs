//! The `tollgate` command line: a thin shell over the library.

// Defined before the submodules: macro_rules! are in scope only below their definition.
/// `print!` for CLI output: `?` it, a closed pipe ends the command quietly.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format_args!($($arg)*))
    };
}

/// `println!` for CLI output: `?` it, a closed pipe ends the command quietly.
macro_rules! outln {
    () => {
        $crate::cli::write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

mod api_docs;
mod audit;
pub(crate) mod checkpoint;
mod controller;
mod crd;
mod plan;
mod policy;
mod pricebook;
mod render;
mod runner;
mod webhook;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

pub use api_docs::api_reference;
pub use crd::{crd_files, crds_yaml};
pub use plan::{PlanReport, plan_project};

/// Everything a CLI command can fail with; each wraps the module error that says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// Reading the Project manifest failed.
    #[error(transparent)]
    Manifest(#[from] crate::manifest::ManifestError),
    /// Loading the module catalog failed.
    #[error(transparent)]
    Catalog(#[from] crate::catalog::CatalogError),
    /// The Project's components do not fit the catalog.
    #[error(transparent)]
    Inputs(#[from] crate::catalog::InputsError),
    /// Rendering failed.
    #[error(transparent)]
    Render(#[from] crate::render::RenderError),
    /// Terraform failed.
    #[error(transparent)]
    Terraform(#[from] crate::terraform::TerraformError),
    /// The plan JSON could not be read.
    #[error(transparent)]
    Plan(#[from] crate::plan::PlanError),
    /// Pricing failed.
    #[error(transparent)]
    Cost(#[from] crate::cost::CostError),
    /// An input file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Writing output failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// What was being written.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Connecting to Kubernetes failed.
    #[error("Kubernetes: {0}")]
    Kube(String),
    /// The runner Job configuration or a runner's inputs are invalid.
    #[error(transparent)]
    RunnerJob(#[from] crate::runner_job::RunnerJobError),
    /// The admission webhook failed.
    #[error(transparent)]
    Admission(#[from] crate::admission::Error),
    /// The Project's SLA does not resolve to ordered deadlines.
    #[error("{}: spec.approval.sla: {source}", file.display())]
    Sla {
        /// The manifest.
        file: std::path::PathBuf,
        /// What is wrong.
        source: crate::sla::SlaError,
    },
    /// Notifications cannot be sent from this host.
    #[error(transparent)]
    Notify(#[from] crate::notify::NotifyError),
    /// `--cost-explorer-interval` or `--cost-variance-threshold` is invalid.
    #[error(transparent)]
    Spend(#[from] crate::spend::SpendError),
    /// The audit trail could not be opened or written.
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
    /// The metrics server failed.
    #[error(transparent)]
    Telemetry(#[from] crate::telemetry::TelemetryError),
    /// Serialising output failed.
    #[error("cannot serialise output: {0}")]
    Serialise(String),
    /// The credentials configuration (account allow-list) is invalid.
    #[error(transparent)]
    Credentials(#[from] crate::credentials::CredentialsError),
    /// Refreshing prices failed.
    #[error(transparent)]
    Pricing(#[from] crate::pricing_refresh::RefreshError),
    /// A policy or the policy configuration is invalid.
    #[error(transparent)]
    Policy(#[from] crate::policy::PolicyError),
    /// The price book or a price cache could not be loaded.
    #[error(transparent)]
    PriceBook(#[from] crate::cost::PriceBookError),
    /// Standard output could not be written.
    #[error("cannot write to standard output: {0}")]
    Stdout(std::io::Error),
    /// The dashboard could not start.
    #[error(transparent)]
    Dashboard(#[from] crate::dashboard::DashboardError),
}

impl CliError {
    /// Whether the reader of standard output went away (`tollgate cost … | head`): not a
    /// failure of the command, so `main` exits quietly instead of reporting it.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, CliError::Stdout(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }
}

/// Writes to standard output, returning the error `print!` would panic with (a closed
/// pipe) so the command can stop quietly.
pub(crate) fn write_stdout(args: std::fmt::Arguments<'_>) -> Result<(), CliError> {
    use std::io::Write;
    std::io::stdout()
        .lock()
        .write_fmt(args)
        .map_err(CliError::Stdout)
}

/// tollgate: Terraform for Kubernetes platform teams, applying only what a person approved.
#[derive(Debug, Parser)]
#[command(name = "tollgate", version, about, long_about = None)]
pub struct Cli {
    /// Module catalog folder (default: $TOLLGATE_CATALOG, else ./modules, else the repository's modules/).
    #[arg(long, global = true, value_name = "DIR")]
    pub catalog: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the controller: reconcile Projects and Checkpoints in the cluster.
    Controller(Box<controller::ControllerArgs>),
    /// Print the CustomResourceDefinitions (or write one file per CRD with --out-dir).
    Crd(crd::CrdArgs),
    /// Print the API reference (Markdown) generated from the CRD schemas.
    ApiDocs,
    /// Render a Project into a self-contained Terraform working directory.
    Render(render::RenderArgs),
    /// Check a Project against the API schema and the module catalog (exit 1 on problems).
    Validate(render::ValidateArgs),
    /// Render, `terraform init`, `plan -out` (local backend) and price a Project.
    Plan(plan::PlanArgs),
    /// Price a plan (`terraform show -json` output) offline.
    Cost(plan::CostArgs),
    /// Refresh prices from the AWS Price List API into a local price cache.
    Pricebook(pricebook::PricebookArgs),
    /// Set up the admission webhook: its certificate and its registration.
    Webhook(webhook::WebhookArgs),
    /// Technical Operator commands: list, show, approve, reject and watch Checkpoints.
    #[command(visible_alias = "cp")]
    Checkpoint(checkpoint::CheckpointArgs),
    /// Check the audit log.
    Audit(audit::AuditArgs),
    /// Policy as code offline: judge a plan with Rego policies, run Rego unit tests.
    Policy(policy::PolicyArgs),
    /// The checkpoint queue in your browser, live, deciding with your own kubeconfig.
    Dashboard(crate::dashboard::DashboardArgs),
    /// What the pod of a runner Job runs (`controller --runner=job`).
    Runner(runner::RunnerArgs),
}

/// The name under which kubectl runs tollgate as a plugin (`kubectl tollgate …`).
pub const KUBECTL_PLUGIN: &str = "kubectl-tollgate";

impl Cli {
    /// Parses `args` (`args[0]` is the program): installed as [`KUBECTL_PLUGIN`] (a
    /// symlink `ln -s tollgate kubectl-tollgate`) it behaves as `tollgate`, and its help
    /// and usage say `kubectl tollgate`.
    pub fn parse_from_program<I, T>(args: I) -> Cli
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
        let program = args
            .first()
            .map(std::path::Path::new)
            .and_then(std::path::Path::file_name)
            .and_then(std::ffi::OsStr::to_str)
            .unwrap_or("tollgate");
        let mut command = Cli::command();
        if program == KUBECTL_PLUGIN {
            command = command.bin_name("kubectl tollgate");
        }
        let parsed = command
            .try_get_matches_from(args)
            .and_then(|mut m| Cli::from_arg_matches_mut(&mut m));
        match parsed {
            Ok(cli) => cli,
            Err(e) => e.exit(),
        }
    }
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<ExitCode, CliError> {
    match cli.command {
        Command::Controller(args) => controller::run(&args, cli.catalog.as_deref()).await,
        Command::Crd(args) => crd::run(&args),
        Command::ApiDocs => api_docs::run(),
        Command::Render(args) => render::run_render(&args, cli.catalog.as_deref()),
        Command::Validate(args) => render::run_validate(&args, cli.catalog.as_deref()),
        Command::Plan(args) => plan::run_plan(&args, cli.catalog.as_deref()).await,
        Command::Cost(args) => plan::run_cost(&args),
        Command::Pricebook(args) => pricebook::run(&args).await,
        Command::Webhook(args) => webhook::run(&args).await,
        Command::Checkpoint(args) => Ok(checkpoint::run(&args).await),
        Command::Audit(args) => audit::run(&args),
        Command::Policy(args) => policy::run(&args),
        Command::Dashboard(args) => crate::dashboard::run(&args)
            .await
            .map(|()| ExitCode::SUCCESS)
            .map_err(Into::into),
        Command::Runner(args) => runner::run(&args).await,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn installed_as_kubectl_tollgate_it_behaves_as_tollgate() {
        for program in ["/usr/local/bin/kubectl-tollgate", "tollgate"] {
            let cli = Cli::parse_from_program([program, "checkpoint", "list", "-A", "--pending"]);
            assert!(matches!(cli.command, Command::Checkpoint(_)), "{program}");
        }
        let usage = Cli::command()
            .bin_name("kubectl tollgate")
            .try_get_matches_from([KUBECTL_PLUGIN, "checkpoint", "approve"])
            .unwrap_err()
            .to_string();
        assert!(
            usage.contains("Usage: kubectl tollgate checkpoint approve --reason <REASON>"),
            "{usage}"
        );
    }
}

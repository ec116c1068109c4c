//! `tollgate runner apply`: what the pod of a runner Job runs (`--runner=job`, see
//! `runner_job`). It rebuilds the working directory from its mounted inputs, applies the
//! approved plan only if its sha256 is the one in its arguments, and writes the outcome and
//! the outputs to its result Secret, which is how the controller learns what happened.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::CliError;
use crate::plan::SavedPlan;
use crate::redact::Redactor;
use crate::runner_job::{self, Bundle, Outcome};
use crate::terraform::{RunnerConfig, TerraformError, TerraformRunner, Workspace};

/// Where applies run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RunnerMode {
    /// As children of the controller process.
    InProcess,
    /// In Kubernetes Jobs (`tollgate runner apply`).
    Job,
}

/// The Job runner's settings, when `--runner=job`.
pub(super) fn job_runner(
    args: &super::controller::ControllerArgs,
) -> Result<Option<crate::reconcile::JobRunner>, CliError> {
    if args.runner == RunnerMode::InProcess {
        return Ok(None);
    }
    let image = args.runner_image.clone().unwrap_or_default();
    let config = match &args.runner_config {
        Some(path) => {
            let yaml = std::fs::read_to_string(path).map_err(|source| CliError::Read {
                path: path.clone(),
                source,
            })?;
            crate::runner_job::RunnerJobConfig::parse(&yaml, &path.display().to_string())?
        }
        None => crate::runner_job::RunnerJobConfig::default(),
    };
    Ok(Some(crate::reconcile::JobRunner { image, config }))
}

/// `tollgate runner …`.
#[derive(Debug, clap::Args)]
pub struct RunnerArgs {
    /// The command.
    #[command(subcommand)]
    pub command: RunnerCommand,
}

/// What a runner pod runs.
#[derive(Debug, clap::Subcommand)]
pub enum RunnerCommand {
    /// Apply an approved saved plan (the pod of a runner Job).
    Apply(ApplyArgs),
}

/// `tollgate runner apply`.
#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// The mounted inputs: the bundle and the plan's chunks.
    #[arg(long, value_name = "DIR")]
    pub inputs: PathBuf,
    /// A writable directory for the Terraform working directory.
    #[arg(long, value_name = "DIR")]
    pub work_dir: PathBuf,
    /// sha256 of the approved plan: anything else is not applied.
    #[arg(long, value_name = "SHA256")]
    pub plan_digest: String,
    /// The Secret the outcome and outputs are written to.
    #[arg(long, value_name = "NAME")]
    pub result_secret: String,
    /// Namespace of the result Secret (the state namespace).
    #[arg(long, value_name = "NAMESPACE")]
    pub namespace: String,
    /// This run's identity (`job/<namespace>/<job>`), written with the outcome.
    #[arg(long, value_name = "ID")]
    pub holder: String,
    /// Kubeconfig (default: in-cluster); Terraform's kubernetes backend uses it too.
    #[arg(long, env = "KUBECONFIG", value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
}

/// Runs `tollgate runner …`: exit 0 when applied, 1 when Terraform failed (the outcome says
/// why); an error (exit 2) means no outcome was written, which the controller reports as a
/// run that died.
///
/// # Errors
/// The inputs are unreadable, or the result cannot be written.
pub async fn run(args: &RunnerArgs) -> Result<ExitCode, CliError> {
    let RunnerCommand::Apply(args) = &args.command;
    let client = super::controller::client(args.kubeconfig.as_ref()).await?;
    let results: Api<Secret> = Api::namespaced(client, &args.namespace);
    if let Some(cache) = std::env::var_os("TF_PLUGIN_CACHE_DIR").filter(|c| !c.is_empty()) {
        std::fs::create_dir_all(&cache).map_err(|source| CliError::Io {
            path: PathBuf::from(&cache),
            source,
        })?;
    }
    let bundle = read_bundle(&args.inputs)?;
    bundle.write_files(&args.work_dir)?;
    let plan_path = args.work_dir.join("tfplan");
    write_plan(&args.inputs, &plan_path)?;
    let saved = SavedPlan {
        id: SavedPlan::id_from_digest(&args.plan_digest),
        digest: args.plan_digest.clone(),
        path: plan_path,
    };
    let redactor = Redactor::new(&bundle.redact);
    let mut ws = Workspace::new(&args.work_dir).with_redactor(&redactor);
    for (name, value) in &bundle.env {
        ws = ws.with_secret_env(name, value);
    }
    ws = match &args.kubeconfig {
        Some(path) => ws.with_env("KUBE_CONFIG_PATH", path.to_string_lossy()),
        None => ws.with_env("KUBE_IN_CLUSTER_CONFIG", "true"),
    };
    let runner = TerraformRunner::new(RunnerConfig::from_env())?;
    tracing::info!(holder = %args.holder, plan = %saved.id, "applying the approved plan");
    let applied = runner
        .init_and_apply(&ws, &crate::reconcile::INIT_OPTIONS, &saved)
        .await;
    let (outcome, outputs) = match applied {
        Ok(_) => match runner.output(&ws).await {
            Ok(outputs) => (succeeded(&args.holder), Some(outputs)),
            Err(err) => (failed(&args.holder, &err, ws.redactor()), None),
        },
        Err(err) => (failed(&args.holder, &err, ws.redactor()), None),
    };
    let mut data = serde_json::Map::new();
    data.insert(runner_job::OUTCOME_KEY.into(), encode(&outcome)?);
    if let Some(outputs) = &outputs {
        // Values with their sensitivity: the controller must not show a sensitive one.
        data.insert(runner_job::OUTPUTS_KEY.into(), encode(outputs)?);
    }
    results
        .patch(
            &args.result_secret,
            &PatchParams::default(),
            &Patch::Merge(&json!({ "data": data })),
        )
        .await
        .map_err(|e| {
            CliError::Kube(format!(
                "cannot write the result to Secret {}/{} ({e}); the runner's ServiceAccount needs patch on it",
                args.namespace, args.result_secret
            ))
        })?;
    tracing::info!(succeeded = outcome.succeeded, error = ?outcome.error, "result written");
    Ok(if outcome.succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `value` as JSON in a Secret's `data` (base64).
fn encode<T: serde::Serialize>(value: &T) -> Result<serde_json::Value, CliError> {
    let serialise = |e: serde_json::Error| CliError::Serialise(e.to_string());
    serde_json::to_value(ByteString(serde_json::to_vec(value).map_err(serialise)?))
        .map_err(serialise)
}

fn succeeded(holder: &str) -> Outcome {
    Outcome {
        holder: holder.to_owned(),
        succeeded: true,
        error_kind: None,
        error: None,
    }
}

fn failed(holder: &str, err: &TerraformError, redactor: &Redactor) -> Outcome {
    Outcome {
        holder: holder.to_owned(),
        succeeded: false,
        error_kind: Some(format!("{:?}", err.kind())),
        error: Some(crate::reconcile::truncate(
            &redactor.redact(&err.to_string()),
            4000,
        )),
    }
}

fn read_bundle(inputs: &Path) -> Result<Bundle, CliError> {
    let path = inputs.join(runner_job::BUNDLE_KEY);
    let bytes = std::fs::read(&path).map_err(|source| CliError::Read { path, source })?;
    Ok(Bundle::decode(&bytes)?)
}

/// Joins the plan's chunks (`plan.gz.0`, `plan.gz.1`, …) and unzips them to `target`. The
/// digest is checked by the apply itself, on the bytes it applies.
fn write_plan(inputs: &Path, target: &Path) -> Result<(), CliError> {
    let mut compressed = Vec::new();
    for index in 0.. {
        let path = inputs.join(format!("{}{index}", runner_job::PLAN_CHUNK_PREFIX));
        match std::fs::read(&path) {
            Ok(chunk) => compressed.extend_from_slice(&chunk),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && index > 0 => break,
            Err(source) => return Err(CliError::Read { path, source }),
        }
    }
    let mut plan = Vec::new();
    flate2::read::GzDecoder::new(compressed.as_slice())
        .read_to_end(&mut plan)
        .map_err(|source| CliError::Read {
            path: inputs.to_path_buf(),
            source,
        })?;
    std::fs::write(target, plan).map_err(|source| CliError::Io {
        path: target.to_path_buf(),
        source,
    })
}

//! `tollgate runner plan|apply|output`: what the pod of a runner Job runs (`--runner=job`,
//! see `runner_job`). It rebuilds the working directory from its mounted inputs, then
//! plans (handing back the saved plan, its `show -json` and the dependency lock file),
//! applies the approved plan only if its sha256 is the one in its arguments (handing back
//! the outputs), or reads the state's outputs, and writes the outcome to its result Secret,
//! which is how the controller learns what happened.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::CliError;
use crate::credentials::broker::{Broker, Issue, Issued, Lease};
use crate::credentials::{CredentialsError, TemporaryCredentials};
use crate::plan::SavedPlan;
use crate::redact::{LiveSecrets, Redactor};
use crate::runner_job::{self, Bundle, Outcome, PlanMode};
use crate::terraform::{
    OutputValue, PlanRequest, PlanStatus, RunnerConfig, TerraformError, TerraformRunner, Workspace,
};

/// Where the pod saves a plan (in its working directory).
const PLAN_FILE: &str = "tfplan";

/// Where Terraform runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RunnerMode {
    /// As children of the controller process.
    InProcess,
    /// In Kubernetes Jobs (`tollgate runner plan|apply`).
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
    /// Plan, and hand back the saved plan and its JSON (the pod of a runner Job).
    Plan(PlanArgs),
    /// Hand back the root module's outputs in the state (the pod of a runner Job).
    Output(OutputArgs),
}

/// `tollgate runner output`.
#[derive(Debug, clap::Args)]
pub struct OutputArgs {
    /// What every run is given.
    #[command(flatten)]
    pub run: RunArgs,
}

/// `tollgate runner apply`.
#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// What every run is given.
    #[command(flatten)]
    pub run: RunArgs,
    /// sha256 of the approved plan: anything else is not applied.
    #[arg(long, value_name = "SHA256")]
    pub plan_digest: String,
}

/// `tollgate runner plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// What every run is given.
    #[command(flatten)]
    pub run: RunArgs,
    /// Which plan.
    #[arg(long, value_enum)]
    pub mode: PlanMode,
}

/// The arguments of every `tollgate runner` command.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The mounted inputs: the bundle (and an apply's plan chunks).
    #[arg(long, value_name = "DIR")]
    pub inputs: PathBuf,
    /// A writable directory for the Terraform working directory.
    #[arg(long, value_name = "DIR")]
    pub work_dir: PathBuf,
    /// The Secret the outcome and what the run hands back are written to.
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

/// What a run hands back besides its outcome: result Secret key → bytes.
type HandedBack = Vec<(&'static str, Vec<u8>)>;

/// Runs `tollgate runner …`: exit 0 when the run succeeded, 1 when Terraform failed (the
/// outcome says why); an error (exit 2) means no outcome was written, which the controller
/// reports as a run that died.
///
/// # Errors
/// The inputs are unreadable, or the result cannot be written.
pub async fn run(args: &RunnerArgs) -> Result<ExitCode, CliError> {
    let run = match &args.command {
        RunnerCommand::Apply(apply) => &apply.run,
        RunnerCommand::Plan(plan) => &plan.run,
        RunnerCommand::Output(output) => &output.run,
    };
    let client = super::controller::client(run.kubeconfig.as_ref()).await?;
    let results: Api<Secret> = Api::namespaced(client, &run.namespace);
    if let Some(cache) = std::env::var_os("TF_PLUGIN_CACHE_DIR").filter(|c| !c.is_empty()) {
        std::fs::create_dir_all(&cache).map_err(|source| CliError::Io {
            path: PathBuf::from(&cache),
            source,
        })?;
    }
    let bundle = read_bundle(&run.inputs)?;
    bundle.write_files(&run.work_dir)?;
    let live = LiveSecrets::default();
    let redactor = Redactor::new(&bundle.redact).with_live(&live);
    let mut ws = Workspace::new(&run.work_dir).with_redactor(&redactor);
    for (name, value) in &bundle.env {
        ws = ws.with_secret_env(name, value);
    }
    // Kept for the whole run: its token stops working when it is dropped.
    let lease = credentials_endpoint(&run.inputs, &live).await?;
    if let Some(lease) = &lease {
        let [(uri_name, uri), (token_name, token)] = lease.env();
        ws = ws
            .with_env(uri_name, uri)
            .with_secret_env(token_name, token);
    }
    ws = match &run.kubeconfig {
        Some(path) => ws.with_env("KUBE_CONFIG_PATH", path.to_string_lossy()),
        None => ws.with_env("KUBE_IN_CLUSTER_CONFIG", "true"),
    };
    let runner = TerraformRunner::new(RunnerConfig::from_env())?;
    let (outcome, handed_back) = match &args.command {
        RunnerCommand::Apply(apply) => apply_plan(&runner, &ws, apply).await?,
        RunnerCommand::Plan(plan) => make_plan(&runner, &ws, plan).await?,
        RunnerCommand::Output(output) => {
            let read = async {
                runner
                    .init_if_needed(&ws, &crate::reconcile::INIT_OPTIONS)
                    .await?;
                runner.output(&ws).await
            };
            outputs_handed_back(&output.run.holder, read.await, &ws)?
        }
    };
    let mut data = serde_json::Map::new();
    data.insert(runner_job::OUTCOME_KEY.into(), encode(&outcome)?);
    for (key, bytes) in handed_back {
        data.insert(key.into(), serialise(ByteString(bytes))?);
    }
    let args = run;
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

/// `tollgate runner apply`: the approved plan, then `output -json`.
async fn apply_plan(
    runner: &TerraformRunner,
    ws: &Workspace,
    args: &ApplyArgs,
) -> Result<(Outcome, HandedBack), CliError> {
    let plan_path = args.run.work_dir.join(PLAN_FILE);
    write_plan(&args.run.inputs, &plan_path)?;
    let saved = SavedPlan {
        id: SavedPlan::id_from_digest(&args.plan_digest),
        digest: args.plan_digest.clone(),
        path: plan_path,
    };
    let holder = &args.run.holder;
    tracing::info!(%holder, plan = %saved.id, "applying the approved plan");
    let applied = runner
        .init_and_apply(ws, &crate::reconcile::INIT_OPTIONS, &saved)
        .await;
    let outputs = match applied {
        Ok(_) => runner.output(ws).await,
        Err(err) => Err(err),
    };
    outputs_handed_back(holder, outputs, ws)
}

/// The outcome of a run that ends reading the outputs, and the outputs it hands back.
fn outputs_handed_back(
    holder: &str,
    outputs: Result<BTreeMap<String, OutputValue>, TerraformError>,
    ws: &Workspace,
) -> Result<(Outcome, HandedBack), CliError> {
    Ok(match outputs {
        // Values with their sensitivity: the controller must not show a sensitive one.
        Ok(outputs) => (
            succeeded(holder, None),
            vec![(runner_job::OUTPUTS_KEY, to_json(&outputs)?)],
        ),
        Err(err) => (failed(holder, &err, ws.redactor()), Vec::new()),
    })
}

/// `tollgate runner plan`: the plan, its `show -json` and the dependency lock file, all
/// gzipped but the lock file; a plan too large for the result Secret is a failed run that
/// says so.
async fn make_plan(
    runner: &TerraformRunner,
    ws: &Workspace,
    args: &PlanArgs,
) -> Result<(Outcome, HandedBack), CliError> {
    let holder = &args.run.holder;
    tracing::info!(%holder, mode = args.mode.arg(), "planning");
    let planned = runner
        .init_and_plan(
            ws,
            &crate::reconcile::INIT_OPTIONS,
            &PlanRequest::of_mode(args.mode, PLAN_FILE),
        )
        .await;
    let shown = match planned {
        Ok(outcome) => runner
            .show_plan_json(ws, &outcome.saved)
            .await
            .map(|json| (outcome, json)),
        Err(err) => Err(err),
    };
    let (outcome, json) = match shown {
        Ok(shown) => shown,
        Err(err) => return Ok((failed(holder, &err, ws.redactor()), Vec::new())),
    };
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| CliError::Read {
            path: path.to_path_buf(),
            source,
        })
    };
    let mut handed_back = vec![
        (
            runner_job::PLAN_KEY,
            runner_job::gzip(&read(&outcome.saved.path)?)?,
        ),
        (runner_job::SHOW_KEY, runner_job::gzip(json.as_bytes())?),
    ];
    let lock = args.run.work_dir.join(".terraform.lock.hcl");
    if lock.exists() {
        handed_back.push((runner_job::LOCK_KEY, read(&lock)?));
    }
    let size: usize = handed_back.iter().map(|(_, b)| b.len()).sum();
    if size > runner_job::RESULT_LIMIT {
        let message = format!(
            "the plan and its JSON are {size} bytes gzipped, more than the {} a result Secret holds; run this Project with the in-process runner (docs/deploy.md#job-runner)",
            runner_job::RESULT_LIMIT
        );
        let outcome = Outcome {
            holder: holder.clone(),
            succeeded: false,
            changes: None,
            error_kind: None,
            error: Some(message),
        };
        return Ok((outcome, Vec::new()));
    }
    let changes = outcome.status == PlanStatus::Changes;
    Ok((succeeded(holder, Some(changes)), handed_back))
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, CliError> {
    serde_json::to_vec(value).map_err(|e| CliError::Serialise(e.to_string()))
}

/// `value` as JSON in a Secret's `data` (base64).
fn encode<T: serde::Serialize>(value: &T) -> Result<serde_json::Value, CliError> {
    serialise(ByteString(to_json(value)?))
}

fn serialise(bytes: ByteString) -> Result<serde_json::Value, CliError> {
    serde_json::to_value(bytes).map_err(|e| CliError::Serialise(e.to_string()))
}

fn succeeded(holder: &str, changes: Option<bool>) -> Outcome {
    Outcome {
        holder: holder.to_owned(),
        succeeded: true,
        changes,
        error_kind: None,
        error: None,
    }
}

fn failed(holder: &str, err: &TerraformError, redactor: &Redactor) -> Outcome {
    Outcome {
        holder: holder.to_owned(),
        succeeded: false,
        changes: None,
        error_kind: Some(format!("{:?}", err.kind())),
        error: Some(crate::reconcile::truncate(
            &redactor.redact(&err.to_string()),
            4000,
        )),
    }
}

/// With a credentials file among the inputs (a Project assuming a role), a loopback
/// credentials endpoint for this run, as the controller serves its in-process runs: every
/// AWS SDK in Terraform asks it when its copy is about to expire, and it answers what the
/// file holds then (the kubelet updates the file when the controller rewrites the Secret).
/// Every set it hands out is redacted from the run's output.
async fn credentials_endpoint(
    inputs: &Path,
    live: &LiveSecrets,
) -> Result<Option<Lease>, CliError> {
    let path = inputs.join(runner_job::CREDENTIALS_KEY);
    if !path.exists() {
        return Ok(None);
    }
    let read: Issue = Arc::new(move || {
        let path = path.clone();
        Box::pin(async move {
            let bytes =
                tokio::fs::read(&path)
                    .await
                    .map_err(|e| CredentialsError::CredentialsFile {
                        path: path.clone(),
                        message: e.to_string(),
                    })?;
            TemporaryCredentials::from_ecs_document(&bytes)
                .map_err(|message| CredentialsError::CredentialsFile { path, message })
        })
    });
    let heard: Issued = {
        let live = live.clone();
        Arc::new(move |credentials: &TemporaryCredentials| {
            for (_, value) in credentials.env() {
                live.add(&value);
            }
        })
    };
    let first = read().await?;
    heard(&first);
    // No margin is enough: the file is read again at every request.
    let broker = Broker::start(Duration::MAX, std::future::pending()).await?;
    Ok(Some(broker.lease(first, read, heard)))
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
    let plan = runner_job::gunzip(&compressed)?;
    std::fs::write(target, plan).map_err(|source| CliError::Io {
        path: target.to_path_buf(),
        source,
    })
}

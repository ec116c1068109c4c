//! The Kubernetes Job that runs one Terraform run of a Project (`--runner=job`): a plan
//! (`tollgate runner plan`: a change, destroy, drift or verification plan), the apply of an
//! approved plan (`tollgate runner apply`) or a read of the state's outputs (`tollgate
//! runner output`). Its settings per namespace and Project
//! (`--runner-config`), its name, its manifest, what its status means, and the bundle of
//! inputs and the result the controller and the pod exchange through Secrets.
//!
//! Why a Job: a Terraform child of the controller dies with the controller's container, and
//! leaves the state lock held. A Job's pod outlives any controller restart or failover;
//! its name is derived from the Project and what the run is (the plan digest of an apply,
//! a digest of the plan's inputs for a plan), so the controller that finds it (the same
//! one, or a new leader) adopts it instead of starting a second run (the apiserver refuses
//! a second Job of that name).
//!
//! The run's identity, [`holder`], is `job/<namespace>/<job name>`: it is recorded in the
//! Project's `status.runnerJob.holder`, on the Job (annotation [`HOLDER_ANNOTATION`]) and in
//! the result; Terraform's own lock record names the pod, whose name starts with the Job's.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, EnvVar, KeyToPath, PodSecurityContext, PodSpec,
    PodTemplateSpec, ProjectedVolumeSource, ResourceRequirements, SecretProjection,
    SecurityContext, Volume, VolumeMount, VolumeProjection,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Label on a runner Job and its pod: which command it runs (`plan` or `apply`).
pub const RUN_LABEL: &str = "tollgate.dev/run";
/// Annotation on a runner Job: the run's identity ([`holder`]).
pub const HOLDER_ANNOTATION: &str = "tollgate.dev/run-holder";
/// Where the pod sees its inputs Secret and the plan's chunk Secrets.
pub const INPUTS_DIR: &str = "/var/run/tollgate/run";
/// The pod's writable working directory (an `emptyDir`).
pub const WORK_DIR: &str = "/var/run/tollgate/work";
/// Key of the inputs Secret: the gzipped JSON [`Bundle`].
pub const BUNDLE_KEY: &str = "bundle.json.gz";
/// Key of the credentials Secret (and its file in [`INPUTS_DIR`]): the run's assumed-role
/// credentials as an ECS container-credentials document, rewritten by the controller
/// before they expire; the pod serves them to Terraform on its own loopback endpoint.
pub const CREDENTIALS_KEY: &str = "credentials.json";
/// Key of the result Secret: the JSON [`Outcome`].
pub const OUTCOME_KEY: &str = "outcome.json";
/// Key of the result Secret: `terraform output -json` after a successful apply.
pub const OUTPUTS_KEY: &str = "outputs.json";
/// Key of the result Secret: the saved plan file of a plan, gzipped.
pub const PLAN_KEY: &str = "plan.gz";
/// Key of the result Secret: `terraform show -json` of that plan, gzipped.
pub const SHOW_KEY: &str = "show.json.gz";
/// Key of the result Secret: the dependency lock file `init` wrote for a plan, which the
/// apply of that plan needs.
pub const LOCK_KEY: &str = "terraform.lock.hcl";
/// What a result Secret may hold: a Secret is at most 1 MiB, and its metadata counts.
pub const RESULT_LIMIT: usize = 1_000_000;
/// File name prefix of the plan's chunks in [`INPUTS_DIR`] (`plan.gz.0`, `plan.gz.1`, …).
pub const PLAN_CHUNK_PREFIX: &str = "plan.gz.";
/// Key of each plan chunk Secret.
pub const PLAN_CHUNK_KEY: &str = "plan.gz";

/// Problems with the runner configuration or a runner's inputs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunnerJobError {
    /// `--runner-config` is not valid.
    #[error("runner configuration {path}: {message}; see docs/deploy.md#job-runner")]
    Config {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A file of the working directory cannot be carried to the Job.
    #[error("{path}: {message}; the job runner carries the rendered configuration as UTF-8 text")]
    File {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// Compressed data that does not decompress.
    #[error("not gzip data ({0})")]
    Gzip(String),
    /// The bundle is not what a controller writes.
    #[error(
        "the runner's input bundle is unreadable ({0}); delete the Job so the controller creates it again"
    )]
    Bundle(String),
}

/// `--runner-config`: the Job's ServiceAccount, resources and deadline, with overrides for a
/// namespace or one Project (the most specific one that sets a field wins). Owned by the
/// platform team: a Project cannot choose its own identity.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RunnerJobConfig {
    /// ServiceAccount of runner pods (in the state namespace).
    #[serde(default = "default_service_account")]
    pub service_account: String,
    /// Requests and limits of the runner container.
    #[serde(default = "default_resources")]
    pub resources: ResourceRequirements,
    /// `activeDeadlineSeconds` of each Job: a run taking longer is killed and reported.
    #[serde(default = "default_deadline")]
    pub active_deadline_seconds: i64,
    /// Settings for one namespace (`project` unset) or one Project.
    #[serde(default)]
    pub overrides: Vec<RunnerOverride>,
}

/// One entry of [`RunnerJobConfig::overrides`].
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RunnerOverride {
    /// The Project's namespace.
    pub namespace: String,
    /// The Project's name; unset: every Project of the namespace.
    #[serde(default)]
    pub project: Option<String>,
    /// ServiceAccount of this namespace's / Project's runner pods (e.g. one annotated for
    /// IRSA or bound by EKS Pod Identity to the Project's IAM role).
    #[serde(default)]
    pub service_account: Option<String>,
    /// Requests and limits.
    #[serde(default)]
    pub resources: Option<ResourceRequirements>,
    /// `activeDeadlineSeconds`.
    #[serde(default)]
    pub active_deadline_seconds: Option<i64>,
}

/// The settings one Project's runner Jobs get.
#[derive(Clone, Debug, PartialEq)]
pub struct RunnerSettings {
    /// ServiceAccount.
    pub service_account: String,
    /// Requests and limits.
    pub resources: ResourceRequirements,
    /// `activeDeadlineSeconds`.
    pub active_deadline_seconds: i64,
}

fn default_service_account() -> String {
    "tollgate-runner".to_owned()
}

fn default_deadline() -> i64 {
    3600
}

fn default_resources() -> ResourceRequirements {
    let quantities = |cpu: &str, memory: &str| {
        BTreeMap::from([
            ("cpu".to_owned(), Quantity(cpu.to_owned())),
            ("memory".to_owned(), Quantity(memory.to_owned())),
        ])
    };
    ResourceRequirements {
        requests: Some(quantities("250m", "256Mi")),
        limits: Some(quantities("2", "2Gi")),
        ..ResourceRequirements::default()
    }
}

impl Default for RunnerJobConfig {
    fn default() -> Self {
        Self {
            service_account: default_service_account(),
            resources: default_resources(),
            active_deadline_seconds: default_deadline(),
            overrides: Vec::new(),
        }
    }
}

impl RunnerJobConfig {
    /// Reads the YAML of `--runner-config` (`path` names it in errors).
    ///
    /// # Errors
    /// Unknown fields, a bad quantity, a deadline under one second, an override naming no
    /// namespace.
    pub fn parse(yaml: &str, path: &str) -> Result<Self, RunnerJobError> {
        let invalid = |message: String| RunnerJobError::Config {
            path: path.to_owned(),
            message,
        };
        let config: Self = serde_saphyr::from_str(yaml).map_err(|e| invalid(e.to_string()))?;
        let deadlines = std::iter::once(Some(config.active_deadline_seconds))
            .chain(config.overrides.iter().map(|o| o.active_deadline_seconds));
        if deadlines.flatten().any(|d| d < 1) {
            return Err(invalid("activeDeadlineSeconds must be at least 1".into()));
        }
        if config.overrides.iter().any(|o| o.namespace.is_empty()) {
            return Err(invalid("every override names a namespace".into()));
        }
        Ok(config)
    }

    /// The settings of the Project `namespace/name`: its own override, else its
    /// namespace's, else the defaults, field by field.
    #[must_use]
    pub fn for_project(&self, namespace: &str, name: &str) -> RunnerSettings {
        let own = self
            .overrides
            .iter()
            .find(|o| o.namespace == namespace && o.project.as_deref() == Some(name));
        let namespace_wide = self
            .overrides
            .iter()
            .find(|o| o.namespace == namespace && o.project.is_none());
        let layers = || [own, namespace_wide].into_iter().flatten();
        RunnerSettings {
            service_account: layers()
                .find_map(|o| o.service_account.clone())
                .unwrap_or_else(|| self.service_account.clone()),
            resources: layers()
                .find_map(|o| o.resources.clone())
                .unwrap_or_else(|| self.resources.clone()),
            active_deadline_seconds: layers()
                .find_map(|o| o.active_deadline_seconds)
                .unwrap_or(self.active_deadline_seconds),
        }
    }
}

/// What a runner Job runs.
#[derive(Clone, Copy, Debug)]
pub enum RunCommand<'a> {
    /// `tollgate runner plan`: a plan of the rendered configuration, handed back with its
    /// `show -json`.
    Plan(PlanMode),
    /// `tollgate runner apply`: the approved plan whose sha256 is `digest`, mounted from
    /// its chunk Secrets (in order).
    Apply {
        /// sha256 of the plan file.
        digest: &'a str,
        /// The plan's chunk Secrets.
        chunks: &'a [String],
    },
    /// `tollgate runner output`: the root module's outputs in the state as it is.
    Output,
}

impl RunCommand<'_> {
    /// The `tollgate runner` subcommand: also the value of [`RUN_LABEL`] and the start of
    /// the Job's name.
    #[must_use]
    pub fn verb(&self) -> &'static str {
        match self {
            Self::Plan(_) => "plan",
            Self::Apply { .. } => "apply",
            Self::Output => "output",
        }
    }
}

/// Which plan a plan Job makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PlanMode {
    /// The changes that make the infrastructure match the configuration.
    Changes,
    /// Destroy everything (`-destroy`).
    Destroy,
    /// What moved outside Terraform (`-refresh-only`, a drift check).
    RefreshOnly,
}

impl PlanMode {
    /// The value of `tollgate runner plan --mode`.
    #[must_use]
    pub fn arg(self) -> &'static str {
        match self {
            Self::Changes => "changes",
            Self::Destroy => "destroy",
            Self::RefreshOnly => "refresh-only",
        }
    }
}

/// The name of the Job of run `attempt` of `command` for the Project `namespace/name`,
/// where `run_key` says which run it is (an apply: the plan digest; a plan: a digest of
/// what it plans from): the same for every controller that looks, so at most one such Job
/// can exist.
#[must_use]
pub fn job_name(
    command: &RunCommand<'_>,
    namespace: &str,
    name: &str,
    run_key: &str,
    attempt: i64,
) -> String {
    // Lengths first: no two different (namespace, name) pairs hash the same text.
    let digest = Sha256::digest(
        format!(
            "{}:{namespace}{}:{name}{run_key}",
            namespace.len(),
            name.len()
        )
        .as_bytes(),
    );
    let hex = hex::encode(digest);
    format!(
        "tollgate-{}-{}-{attempt}",
        command.verb(),
        hex.get(..20).unwrap_or(&hex)
    )
}

/// The inputs Secret of the Job `job`.
#[must_use]
pub fn inputs_secret(job: &str) -> String {
    format!("{job}-inputs")
}

/// The credentials Secret of the Job `job` ([`CREDENTIALS_KEY`]), when its Project assumes
/// a role.
#[must_use]
pub fn credentials_secret(job: &str) -> String {
    format!("{job}-credentials")
}

/// The result Secret of the Job `job` (created empty by the controller, filled by the pod).
#[must_use]
pub fn result_secret(job: &str) -> String {
    format!("{job}-result")
}

/// The identity of the run of Job `job` in `namespace`: what the stuck-lock playbook
/// compares with the state lock's holder.
#[must_use]
pub fn holder(namespace: &str, job: &str) -> String {
    format!("job/{namespace}/{job}")
}

/// What a runner Job is made of.
#[derive(Clone, Debug)]
pub struct JobRequest<'a> {
    /// The state namespace (where the plan Secrets and the state are).
    pub namespace: &'a str,
    /// The Project's namespace.
    pub project_namespace: &'a str,
    /// The Project's name.
    pub project_name: &'a str,
    /// What it runs.
    pub command: RunCommand<'a>,
    /// Which run it is ([`job_name`]).
    pub run_key: &'a str,
    /// Which attempt of this run (0 first).
    pub attempt: i64,
    /// The controller's image.
    pub image: &'a str,
    /// ServiceAccount, resources, deadline.
    pub settings: &'a RunnerSettings,
    /// Whether the pod is handed refreshable credentials ([`credentials_secret`]).
    pub credentials: bool,
}

/// The Job, created suspended: the controller creates its Secrets (owned by it) and then
/// lets it run, so a pod never starts without its inputs.
#[must_use]
pub fn build(req: &JobRequest<'_>) -> Job {
    let name = job_name(
        &req.command,
        req.project_namespace,
        req.project_name,
        req.run_key,
        req.attempt,
    );
    let verb = req.command.verb();
    let mut labels = crate::state::project_labels(req.project_namespace, req.project_name);
    labels.insert(RUN_LABEL.to_owned(), verb.to_owned());
    let holder = holder(req.namespace, &name);
    let mut sources = vec![secret_projection(
        &inputs_secret(&name),
        BUNDLE_KEY,
        BUNDLE_KEY,
    )];
    if req.credentials {
        // A projected Secret is updated in the running pod (a plain file swap by the
        // kubelet), which is how the rewritten credentials reach it.
        sources.push(secret_projection(
            &credentials_secret(&name),
            CREDENTIALS_KEY,
            CREDENTIALS_KEY,
        ));
    }
    let mut args = vec![
        "runner",
        verb,
        "--inputs",
        INPUTS_DIR,
        "--work-dir",
        WORK_DIR,
    ];
    match &req.command {
        RunCommand::Plan(mode) => args.extend(["--mode", mode.arg()]),
        RunCommand::Apply { digest, chunks } => {
            args.extend(["--plan-digest", digest]);
            for (index, chunk) in chunks.iter().enumerate() {
                sources.push(secret_projection(
                    chunk,
                    PLAN_CHUNK_KEY,
                    &format!("{PLAN_CHUNK_PREFIX}{index}"),
                ));
            }
        }
        RunCommand::Output => {}
    }
    let result = result_secret(&name);
    args.extend([
        "--result-secret",
        &result,
        "--namespace",
        req.namespace,
        "--holder",
        &holder,
    ]);
    let container = Container {
        name: "runner".into(),
        image: Some(req.image.to_owned()),
        args: Some(args.iter().map(|a| (*a).to_owned()).collect()),
        // The root filesystem is read-only: Terraform's home and plugin cache go to the
        // work volume (the runner creates the cache directory).
        env: Some(
            [
                ("HOME", WORK_DIR.to_owned()),
                ("TF_PLUGIN_CACHE_DIR", format!("{WORK_DIR}/plugins")),
            ]
            .into_iter()
            .map(|(name, value)| EnvVar {
                name: name.into(),
                value: Some(value),
                ..EnvVar::default()
            })
            .collect(),
        ),
        resources: Some(req.settings.resources.clone()),
        volume_mounts: Some(vec![
            VolumeMount {
                name: "inputs".into(),
                mount_path: INPUTS_DIR.into(),
                read_only: Some(true),
                ..VolumeMount::default()
            },
            VolumeMount {
                name: "work".into(),
                mount_path: WORK_DIR.into(),
                ..VolumeMount::default()
            },
            VolumeMount {
                name: "tmp".into(),
                mount_path: "/tmp".into(),
                ..VolumeMount::default()
            },
        ]),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            ..SecurityContext::default()
        }),
        ..Container::default()
    };
    Job {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(req.namespace.to_owned()),
            labels: Some(labels.clone()),
            annotations: Some(BTreeMap::from([(HOLDER_ANNOTATION.to_owned(), holder)])),
            ..ObjectMeta::default()
        },
        spec: Some(JobSpec {
            suspend: Some(true),
            // A run is never retried by Kubernetes: the controller decides what follows.
            backoff_limit: Some(0),
            // Kept a day for `kubectl logs`; a controller reads it long before.
            ttl_seconds_after_finished: Some(86_400),
            active_deadline_seconds: Some(req.settings.active_deadline_seconds),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    service_account_name: Some(req.settings.service_account.clone()),
                    restart_policy: Some("Never".into()),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        ..PodSecurityContext::default()
                    }),
                    containers: vec![container],
                    volumes: Some(vec![
                        Volume {
                            name: "inputs".into(),
                            projected: Some(ProjectedVolumeSource {
                                sources: Some(sources),
                                default_mode: Some(0o400),
                                ..ProjectedVolumeSource::default()
                            }),
                            ..Volume::default()
                        },
                        empty_dir("work"),
                        empty_dir("tmp"),
                    ]),
                    ..PodSpec::default()
                }),
            },
            ..JobSpec::default()
        }),
        ..Job::default()
    }
}

fn empty_dir(name: &str) -> Volume {
    Volume {
        name: name.into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    }
}

fn secret_projection(secret: &str, key: &str, path: &str) -> VolumeProjection {
    VolumeProjection {
        secret: Some(SecretProjection {
            name: secret.to_owned(),
            items: Some(vec![KeyToPath {
                key: key.to_owned(),
                path: path.to_owned(),
                ..KeyToPath::default()
            }]),
            optional: Some(false),
        }),
        ..VolumeProjection::default()
    }
}

/// Where a runner Job stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobState {
    /// Suspended, or not finished.
    Running,
    /// Its pod exited 0.
    Succeeded,
    /// Kubernetes gave up on it (pod failed, deadline exceeded, …).
    Failed {
        /// The `Failed` condition's reason and message.
        reason: String,
    },
}

/// What `job`'s status conditions say.
#[must_use]
pub fn state(job: &Job) -> JobState {
    let conditions = job
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default();
    let holds = |kind: &str| {
        conditions
            .iter()
            .find(|c| c.type_ == kind && c.status == "True")
    };
    if holds("Complete").is_some() {
        JobState::Succeeded
    } else if let Some(failed) = holds("Failed") {
        JobState::Failed {
            reason: format!(
                "{}: {}",
                failed.reason.as_deref().unwrap_or("Failed"),
                failed.message.as_deref().unwrap_or("no message")
            ),
        }
    } else {
        JobState::Running
    }
}

/// What the pod writes to its result Secret when Terraform has run (a pod that dies before
/// writes nothing, which is how the controller tells a failed apply from a dead run).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// The run's identity ([`holder`]).
    pub holder: String,
    /// Whether the run succeeded.
    pub succeeded: bool,
    /// A plan's: whether it has changes (`None` for an apply).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<bool>,
    /// The error's class (`StateLocked`, `StalePlan`, …) when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<String>,
    /// The redacted error when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

mod bundle;
#[cfg(test)]
mod tests;

pub use bundle::{Bundle, gunzip, gzip};

use std::path::PathBuf;
use std::sync::Arc;

use kube::Client;
use kube::runtime::events::{Recorder, Reporter};

use super::{Backoff, RunSlots};
use crate::audit::AuditLog;
use crate::catalog::Catalog;
use crate::cost::PriceBook;
use crate::gate::GateDefaults;
use crate::notify::Notifier;
use crate::seal::SealKey;
use crate::sla::SlaDefaults;
use crate::telemetry::Metrics;
use crate::terraform::TerraformRunner;

/// Settings of the controller.
#[derive(Clone, Debug)]
pub struct ControllerConfig {
    /// Root of the per-Project working directories.
    pub work_root: PathBuf,
    /// Kubeconfig Terraform's `kubernetes` backend uses (`KUBE_CONFIG_PATH`); `None` in
    /// cluster, where the backend uses the pod's service account.
    pub backend_kubeconfig: Option<PathBuf>,
    /// Cluster-wide approval defaults.
    pub gate: GateDefaults,
    /// Projects reconciled at once.
    pub concurrency: u16,
    /// Watch only this namespace (default: all namespaces).
    pub namespace: Option<String>,
    /// Reconcile only Projects matching this label selector.
    pub project_selector: Option<String>,
    /// Namespace of Terraform state (the `kubernetes` backend), saved plans, and Destroy
    /// checkpoints of Projects whose namespace is being deleted.
    pub state_namespace: String,
    /// The Rego policies that judge every plan.
    pub policy: PolicySettings,
    /// Deadlines of checkpoints whose Project's `spec.approval.sla` leaves them out, and
    /// the reminder interval.
    pub sla: SlaDefaults,
    /// Final (decided, expired, superseded) Checkpoints kept per Project.
    pub keep_checkpoints: usize,
    /// The account allow-list (`--credentials-config`); `None`: no allow-list, Projects
    /// may name any account (and static keys are refused).
    pub accounts: Option<Arc<crate::credentials::AccountPolicy>>,
    /// `--runner=job`: applies run in Kubernetes Jobs; `None`: as children of the controller.
    pub job_runner: Option<JobRunner>,
    /// Estimate vs actual (`--cost-explorer-interval`); `None`: Cost Explorer is never asked.
    pub spend: Option<crate::spend::Settings>,
}

/// How runner Jobs are made (`--runner=job`).
#[derive(Clone, Debug)]
pub struct JobRunner {
    /// The image (the controller's own).
    pub image: String,
    /// ServiceAccount, resources and deadline per namespace / Project.
    pub config: crate::runner_job::RunnerJobConfig,
}

/// Where the cluster's policies are and how the built-in pack is set.
#[derive(Clone, Debug, Default)]
pub struct PolicySettings {
    /// Namespace of the cluster's policy ConfigMaps (owned by TOs).
    pub namespace: String,
    /// Settings of the built-in pack.
    pub config: crate::policy::PolicyConfig,
}

/// Shared state of all reconciles.
pub struct Context {
    /// Kubernetes client (the controller's identity).
    pub client: Client,
    /// Terraform runner (bounded concurrency).
    pub runner: TerraformRunner,
    /// The module catalog.
    pub catalog: Catalog,
    /// Settings.
    pub config: ControllerConfig,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Event recorder.
    pub recorder: Recorder,
    /// Prices: the embedded book, with a refreshed cache's rows over it when configured.
    pub price_book: &'static PriceBook,
    /// Checks that a decision went through tollgate's admission (see [`crate::seal`]).
    pub seal_key: Arc<SealKey>,
    /// The hash-chained audit trail (a file with `--audit-file`, always the log target
    /// `tollgate::audit`).
    pub audit: Arc<AuditLog>,
    /// Sends checkpoint notifications (Slack, webhooks, email).
    pub notifier: Notifier,
    /// Retry delays of failing objects.
    pub backoff: Backoff,
    /// The Terraform run slots, shared fairly between namespaces.
    pub slots: RunSlots,
    /// The loopback endpoint that keeps a run's assumed-role credentials fresh; `None`:
    /// runs get the first credentials as keys, valid for `sessionDuration` only.
    pub credentials_broker: Option<Arc<crate::credentials::broker::Broker>>,
}

/// What makes the loop accountable: the key decisions are verified with, the audit trail
/// every step is written to, and the notifier that tells people what waits for them.
pub struct Accountability {
    /// See [`Context::seal_key`].
    pub seal_key: Arc<SealKey>,
    /// See [`Context::audit`].
    pub audit: Arc<AuditLog>,
    /// See [`Context::notifier`].
    pub notifier: Notifier,
}

impl Context {
    /// Builds the context.
    pub fn new(
        client: Client,
        runner: TerraformRunner,
        catalog: Catalog,
        config: ControllerConfig,
        metrics: Arc<Metrics>,
        price_book: &'static PriceBook,
        accountability: Accountability,
    ) -> Self {
        let Accountability {
            seal_key,
            audit,
            notifier,
        } = accountability;
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: "tollgate".into(),
                instance: std::env::var("POD_NAME").ok(),
            },
        );
        let slots = RunSlots::new(runner.config().max_concurrent, Arc::clone(&metrics));
        Self {
            client,
            runner,
            catalog,
            config,
            metrics,
            recorder,
            price_book,
            seal_key,
            audit,
            notifier,
            backoff: Backoff::default(),
            slots,
            credentials_broker: None,
        }
    }
}

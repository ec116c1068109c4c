//! The Project loop: validate → render → plan → price → gate → (checkpoint → decision) →
//! apply exactly the saved plan → outputs → Ready; and destroy (or orphan) on deletion.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use k8s_openapi::ByteString;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, MicroTime, Time};
use kube::api::{ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event as KubeEvent, EventType};
use kube::{Api, Resource, ResourceExt};
use rust_decimal::Decimal;
use serde_json::json;
use sha2::{Digest, Sha256};
use tracing::Instrument;

use super::checkpoint::set_phase;
use super::conditions;
use super::plans::PlanStore;
use super::{
    ApiStep, Context, During, FIELD_MANAGER, FINALIZER, PROJECT_LABEL, PlanStoreProblem,
    ReconcileError, key, truncate,
};
use crate::api::{
    self, Checkpoint, CheckpointCost, CheckpointPhase, CheckpointRefStatus, CheckpointSpec,
    CheckpointSummary, CheckpointType, Decision, DeletionPolicy, HistoryEntry, LastApplied,
    PlanRef, PlanStatus, PlanSummaryStatus, Project, ProjectPhase, ProjectRef, ProjectStatus,
    ResourceCost, SecretKeyRef, StateStatus,
};
use crate::audit::{AuditAction, AuditCost, AuditEntry};
use crate::cost::{self, Estimate, Usage};
use crate::gate::effective::{EffectivePolicy, ProjectFacts};
use crate::gate::{self, CostFacts, GateDecision, GateInput};
use crate::plan::{Plan, PlanError, PlanSummary, SavedPlan};
use crate::render::quote::quoted;
use crate::render::{RenderOptions, Rendered, render};
use crate::state::{
    PROJECT_NAMESPACE_LABEL, StateLocation, legacy_secret_name, project_labels, secret_suffix,
};
use crate::terraform::{
    ErrorKind, InitOptions, PlanRequest, PlanStatus as TfPlanStatus, Redactor, TerraformError,
    Workspace,
};

mod apply;
mod budget;
mod checkpoint;
mod cleanup;
mod credentials;
mod drift;
mod escalation;
mod health;
mod integrity;
mod job;
mod lock;
mod manual;
mod plan;
mod policy;
mod question;
mod queue;
mod retry;
mod rollback;
mod spend;
mod state;
mod steps;

const PLAN_FILE: &str = "tfplan";
/// `-reconfigure`: the working directory may have been initialised for another backend
/// configuration (a CLI run, an older render); the state lives in the backend, never here.
pub(crate) const INIT_OPTIONS: InitOptions = InitOptions {
    no_backend: false,
    backend_config_files: Vec::new(),
    reconfigure: true,
    upgrade: false,
    migrate_state: false,
};
/// Reason of `Ready` (and of the Warning Event) while a failed step is retried.
const RETRYING: &str = "Retrying";
/// Condition set while the state Secret is missing although something was applied.
const STATE_MISSING: &str = "StateMissing";
/// How often a Project whose state is missing looks for it again (a restored Secret).
const STATE_MISSING_RECHECK: Duration = Duration::from_secs(30);
const HISTORY_LIMIT: usize = 20;
const LISTED_ADDRESSES: usize = 50;

/// Entry point of the Project controller.
pub async fn reconcile(project: Arc<Project>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    ctx.metrics.reconcile_started();
    let span = tracing::info_span!("reconcile", project = %key(project.as_ref()));
    async {
        // The watch cache can lag behind our own status writes; acting on a stale status
        // would plan (and open checkpoints) twice. Read the latest version first.
        let namespace = project.namespace().unwrap_or_default();
        // Whatever this reconcile ends with, a Terraform run slot it took goes to the next,
        // unless the Project's runner Job still runs.
        let slot = ctx.slots.release_on_drop(&namespace, &project.name_any());
        let api: Api<Project> = Api::namespaced(ctx.client.clone(), &namespace);
        let Some(project) = api
            .get_opt(&project.name_any())
            .await
            .during(ApiStep::ReadProject)?
        else {
            ctx.slots.forget(&namespace, &project.name_any());
            return Ok(Action::await_change());
        };
        // Backing off after a failure, and woken only by our own status write (or a
        // checkpoint, a Secret): wait out the delay instead of failing again at once.
        let backoff_key = super::backoff_key(&project);
        if let Some(wait) =
            ctx.backoff
                .waiting(&backoff_key, &super::fingerprint(&project), Instant::now())
        {
            return Ok(Action::requeue(wait));
        }
        let mut run = Run::new(&project, &ctx);
        // Not kube's `finalizer()` helper: it removes the finalizer as soon as cleanup
        // returns Ok, while a Destroy checkpoint makes cleanup span many reconciles (plan,
        // wait for a person, apply); cleanup removes the finalizer itself when done.
        let result = if project.meta().deletion_timestamp.is_some() {
            run.cleanup().await
        } else if !project.finalizers().iter().any(|f| f == FINALIZER) {
            run.add_finalizer().await.map(|()| Action::await_change())
        } else {
            run.apply().await
        };
        if run.job_running {
            slot.keep();
        }
        match &result {
            Ok(_) => {
                ctx.backoff.succeeded(&backoff_key);
                run.clear_retry().await;
            }
            Err(err) => {
                // A lock whose holder is gone waits for a person, not for the backoff.
                if let Some(action) = run.on_state_locked(err).await {
                    ctx.backoff.succeeded(&backoff_key);
                    return Ok(action);
                }
                run.note_retry(err, ctx.backoff.next_delay(&backoff_key))
                    .await
            }
        }
        result
    }
    .instrument(span)
    .await
}

/// One reconcile of one Project: the object, its status being built, and the context.
struct Run<'a> {
    project: &'a Project,
    ctx: &'a Context,
    name: String,
    namespace: String,
    status: ProjectStatus,
    /// The Project rendered once per reconcile: the plan key and the working directory
    /// come from the same render.
    rendered: OnceLock<Rendered>,
    /// Where its state lives (the `kubernetes` backend only).
    state: Option<StateLocation>,
    /// Cloud credentials of the next Terraform run, from [`Run::obtain_credentials`]; only
    /// ever in memory and Terraform's environment.
    credentials: Option<crate::credentials::TemporaryCredentials>,
    /// The run's session at [`Context::credentials_broker`], when its credentials are
    /// assumed-role ones: Terraform then asks for fresh ones instead of holding keys.
    credential_lease: Option<crate::credentials::broker::Lease>,
    /// Credentials the broker mints during the run, redacted like the first ones.
    refreshed_secrets: crate::redact::LiveSecrets,
    /// With the Job runner, for assumed-role credentials: the pod cannot reach the
    /// broker, so it gets them in a Secret the controller rewrites while the Job runs.
    credentials_by_secret: bool,
    /// `TF_VAR_<variable>` of every secret input (secret), from the same call.
    input_env: Vec<(String, String)>,
    /// Set while re-planning to restore drift: the gate's decision then always asks a
    /// person ([`crate::drift::restore_decision`]).
    restore_drift: Option<crate::drift::DriftReport>,
    /// The Rego policies that judge this Project's plans, read once per reconcile: the
    /// plan key and the judgement use the same set.
    policies: tokio::sync::OnceCell<crate::policy::PolicySet>,
    /// The Project with a rolled-back revision's components, while a rollback holds
    /// ([`Run::load_rollback`]); what is rendered and planned instead of the spec.
    source: Option<Project>,
    /// Whether a runner Job of this Project runs: its Terraform run slot is kept when the
    /// reconcile ends.
    job_running: bool,
}

/// What [`Run::check_state`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StateCheck {
    /// The state Secret exists.
    Present,
    /// No state, and nothing was ever applied: a new Project.
    Empty,
    /// Not the `kubernetes` backend: tollgate does not look after the state.
    NotKept,
    /// No state although something was applied: stop, a person decides.
    Missing,
}

impl<'a> Run<'a> {
    fn new(project: &'a Project, ctx: &'a Context) -> Self {
        Self {
            project,
            ctx,
            name: project.name_any(),
            namespace: project.namespace().unwrap_or_default(),
            status: project.status.clone().unwrap_or_default(),
            rendered: OnceLock::new(),
            policies: tokio::sync::OnceCell::new(),
            state: (project
                .spec
                .backend
                .as_ref()
                .map_or(api::BackendType::Kubernetes, |b| b.backend_type)
                == api::BackendType::Kubernetes)
                .then(|| {
                    StateLocation::new(
                        &ctx.config.state_namespace,
                        &project.namespace().unwrap_or_default(),
                        &project.name_any(),
                    )
                }),
            credentials: None,
            credential_lease: None,
            refreshed_secrets: Default::default(),
            credentials_by_secret: false,
            input_env: Vec::new(),
            restore_drift: None,
            source: None,
            job_running: false,
        }
    }

    /// What is rendered: the Project, or a rolled-back revision of it.
    fn source(&self) -> &Project {
        self.source.as_ref().unwrap_or(self.project)
    }

    fn rendered(&self) -> Result<&Rendered, ReconcileError> {
        if let Some(rendered) = self.rendered.get() {
            return Ok(rendered);
        }
        let options = RenderOptions {
            state_namespace: Some(self.ctx.config.state_namespace.clone()),
            ..RenderOptions::default()
        };
        let rendered = render(self.source(), &self.ctx.catalog, &options)?;
        Ok(self.rendered.get_or_init(|| rendered))
    }

    fn projects(&self) -> Api<Project> {
        Api::namespaced(self.ctx.client.clone(), &self.namespace)
    }

    fn checkpoints(&self) -> Api<Checkpoint> {
        Api::namespaced(self.ctx.client.clone(), &self.namespace)
    }

    /// Checkpoints in `namespace` (`None`: the Project's).
    fn checkpoints_in(&self, namespace: Option<&str>) -> Api<Checkpoint> {
        Api::namespaced(
            self.ctx.client.clone(),
            namespace.unwrap_or(&self.namespace),
        )
    }

    fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.ctx.client.clone(), &self.namespace)
    }

    fn state_secrets(&self) -> Api<Secret> {
        Api::namespaced(self.ctx.client.clone(), &self.ctx.config.state_namespace)
    }

    /// Saved plans, in the state namespace.
    fn plans(&self) -> PlanStore {
        PlanStore::new(self.state_secrets(), &self.namespace, &self.name)
    }

    /// Deletes the Project's saved plans except `keep`, here and where older versions kept
    /// them (the Project's namespace).
    async fn delete_plans_except(&self, keep: Option<&str>) -> Result<(), ReconcileError> {
        self.plans().delete_except(keep).await?;
        PlanStore::legacy(self.secrets(), &self.name)
            .delete_except(keep)
            .await
    }

    fn generation(&self) -> Option<i64> {
        self.project.meta().generation
    }

    fn work_dir(&self) -> PathBuf {
        self.ctx
            .config
            .work_root
            .join(&self.namespace)
            .join(&self.name)
    }

    fn workspace(&self) -> Workspace {
        self.workspace_in(&self.work_dir())
    }

    fn workspace_in(&self, dir: &std::path::Path) -> Workspace {
        let ws = self.with_cloud_env(Workspace::new(dir).with_redactor(&self.sensitive_inputs()));
        match &self.ctx.config.backend_kubeconfig {
            Some(path) => ws.with_env("KUBE_CONFIG_PATH", path.to_string_lossy()),
            None => ws.with_env("KUBE_IN_CLUSTER_CONFIG", "true"),
        }
    }

    /// Values given to variables the catalog marks `sensitive` (literal, or read from a
    /// secret for this run) and this run's cloud credentials: redacted from every Terraform
    /// output the controller logs or puts in status, and masked in the plan review.
    fn sensitive_inputs(&self) -> Redactor {
        let mut redactor = Redactor::default();
        for (_, value) in &self.input_env {
            redactor.add(value);
        }
        for (_, value) in self.credentials.iter().flat_map(|c| c.env()) {
            redactor.add(&value);
        }
        if let Some(lease) = &self.credential_lease {
            redactor.add(lease.token());
        }
        redactor = redactor.with_live(&self.refreshed_secrets);
        let rolled_back = self.source.iter().flat_map(|p| &p.spec.components);
        for component in self.project.spec.components.iter().chain(rolled_back) {
            let Ok(module) = self.ctx.catalog.module(&component.module) else {
                continue;
            };
            for (name, value) in &component.inputs {
                if module.variables.get(name).is_some_and(|v| v.sensitive) {
                    match value {
                        serde_json::Value::String(text) => redactor.add(text),
                        serde_json::Value::Null => {}
                        other => redactor.add(&other.to_string()),
                    }
                }
            }
        }
        redactor
    }

    async fn add_finalizer(&self) -> Result<(), ReconcileError> {
        let mut finalizers = self.project.finalizers().to_vec();
        finalizers.push(FINALIZER.to_owned());
        self.set_finalizers(finalizers).await
    }

    async fn remove_finalizer(&self) -> Result<(), ReconcileError> {
        self.release_namespace_budget().await?;
        self.ctx
            .metrics
            .set_cost_variance(&self.namespace, &self.name, None);
        let finalizers = self
            .project
            .finalizers()
            .iter()
            .filter(|f| *f != FINALIZER)
            .cloned()
            .collect();
        self.set_finalizers(finalizers).await
    }

    /// Replaces the finalizer list only if nobody changed it meanwhile (a JSON Patch `test`),
    /// without caring about other changes such as our own status writes.
    async fn set_finalizers(&self, finalizers: Vec<String>) -> Result<(), ReconcileError> {
        let current = self.project.meta().finalizers.clone();
        let patch: json_patch::Patch = serde_json::from_value(match current {
            Some(current) => json!([
                {"op": "test", "path": "/metadata/finalizers", "value": current},
                {"op": "replace", "path": "/metadata/finalizers", "value": finalizers}
            ]),
            None => json!([{"op": "add", "path": "/metadata/finalizers", "value": finalizers}]),
        })
        .map_err(|source| ReconcileError::Encode {
            what: "finalizer patch",
            source: source.into(),
        })?;
        self.projects()
            .patch(
                &self.name,
                &PatchParams::default(),
                &Patch::<()>::Json(patch),
            )
            .await
            .during(ApiStep::WriteFinalizer)?;
        Ok(())
    }

    /// Sets phase and the kstatus conditions that follow from it, then writes status.
    async fn transition(
        &mut self,
        phase: ProjectPhase,
        reason: &str,
        message: &str,
    ) -> Result<(), ReconcileError> {
        let generation = self.generation();
        let previous = self.status.phase;
        let awaiting = phase == ProjectPhase::AwaitingApproval
            || (phase == ProjectPhase::Destroying && self.status.checkpoint_ref.is_some());
        let c = &mut self.status.conditions;
        conditions::set(
            c,
            "Ready",
            phase == ProjectPhase::Ready,
            reason,
            message,
            generation,
        );
        conditions::set(
            c,
            "Reconciling",
            matches!(
                phase,
                ProjectPhase::Planning | ProjectPhase::Applying | ProjectPhase::Destroying
            ),
            reason,
            message,
            generation,
        );
        conditions::set(
            c,
            "Stalled",
            phase == ProjectPhase::Failed,
            reason,
            message,
            generation,
        );
        conditions::set(c, "AwaitingApproval", awaiting, reason, message, generation);
        if reason != queue::QUEUED {
            self.status.queue = None;
        }
        self.status.phase = Some(phase);
        self.forget_drift_when_off();
        self.save().await?;
        if previous != Some(phase) {
            let type_ = if phase == ProjectPhase::Failed {
                EventType::Warning
            } else {
                EventType::Normal
            };
            self.event(type_, reason, message).await;
        }
        Ok(())
    }

    async fn save(&self) -> Result<(), ReconcileError> {
        let patch = json!({"apiVersion": "tollgate.dev/v1alpha1", "kind": "Project", "status": self.status});
        self.projects()
            .patch_status(
                &self.name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await
            .during(ApiStep::WriteStatus)?;
        Ok(())
    }

    /// Appends one record to the audit trail. A failed write does not stop the loop (the
    /// trail is also the log target `tollgate::audit`); it is logged as an error.
    fn audit(&self, action: AuditAction, fill: impl FnOnce(&mut AuditEntry)) {
        self.ctx
            .audit
            .record_controller_action(&self.namespace, &self.name, action, fill);
    }

    async fn event(&self, type_: EventType, reason: &str, note: &str) {
        let event = KubeEvent {
            type_,
            reason: reason.to_owned(),
            note: Some(truncate(note, 1000)),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(err) = self
            .ctx
            .recorder
            .publish(&event, &self.project.object_ref(&()))
            .await
        {
            tracing::debug!(error = %err, "cannot publish event");
        }
    }
}

/// What a checkpoint asks a person, and who may answer.
struct Ask {
    checkpoint_type: CheckpointType,
    reasons: Vec<String>,
    approvers: Option<api::ApproverSet>,
    /// Every change for the person to review (stored next to the checkpoint).
    review: crate::plan::PlanReview,
}

/// Counts as the API's integer type (Kubernetes has no unsigned integer format).
fn wide((add, change, destroy): (u32, u32, u32)) -> (i64, i64, i64) {
    (i64::from(add), i64::from(change), i64::from(destroy))
}

fn money(amount: Decimal) -> String {
    amount.round_dp(2).to_string()
}

#[cfg(test)]
mod tests;

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
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
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
use super::plans::{self, PlanStore};
use super::{Context, FIELD_MANAGER, FINALIZER, PROJECT_LABEL, ReconcileError, key};
use crate::api::{
    self, Checkpoint, CheckpointCost, CheckpointPhase, CheckpointRefStatus, CheckpointSpec,
    CheckpointSummary, CheckpointType, Decision, DeletionPolicy, HistoryEntry, LastApplied,
    PlanRef, PlanStatus, PlanSummaryStatus, Project, ProjectPhase, ProjectRef, ProjectStatus,
    ResourceCost, SecretKeyRef, StateStatus,
};
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

const PLAN_FILE: &str = "tfplan";
/// `-reconfigure`: the working directory may have been initialised for another backend
/// configuration (a CLI run, an older render); the state lives in the backend, never here.
const INIT_OPTIONS: InitOptions = InitOptions {
    no_backend: false,
    backend_config_files: Vec::new(),
    reconfigure: true,
    upgrade: false,
    migrate_state: false,
};
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
        let api: Api<Project> =
            Api::namespaced(ctx.client.clone(), &project.namespace().unwrap_or_default());
        let Some(project) = api.get_opt(&project.name_any()).await? else {
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
        let result = if project.meta().deletion_timestamp.is_some() {
            run.cleanup().await
        } else if !project.finalizers().iter().any(|f| f == FINALIZER) {
            run.add_finalizer().await.map(|()| Action::await_change())
        } else {
            run.apply().await
        };
        match &result {
            Ok(_) => ctx.backoff.succeeded(&backoff_key),
            Err(err) => {
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
        }
    }

    fn rendered(&self) -> Result<&Rendered, ReconcileError> {
        if let Some(rendered) = self.rendered.get() {
            return Ok(rendered);
        }
        let options = RenderOptions {
            state_namespace: Some(self.ctx.config.state_namespace.clone()),
            ..RenderOptions::default()
        };
        let rendered = render(self.project, &self.ctx.catalog, &options)?;
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
        let ws = Workspace::new(dir).with_redactor(&self.sensitive_inputs());
        match &self.ctx.config.backend_kubeconfig {
            Some(path) => ws.with_env("KUBE_CONFIG_PATH", path.to_string_lossy()),
            None => ws.with_env("KUBE_IN_CLUSTER_CONFIG", "true"),
        }
    }

    /// Records in status why the reconcile will be retried (a held state lock, a network
    /// error) and publishes it as a Warning Event, so `kubectl describe` shows it and not
    /// only the controller's log. Best effort: the error itself is what the caller acts on.
    async fn note_retry(&mut self, err: &ReconcileError, wait: Duration) {
        let message = self.sensitive_inputs().redact(&format!(
            "retrying in {}s (attempt {}) after: {err}",
            wait.as_secs(),
            self.ctx.backoff.failures(&super::backoff_key(self.project)) + 1
        ));
        self.event(EventType::Warning, "Retrying", &message).await;
        let generation = self.generation();
        conditions::set(
            &mut self.status.conditions,
            "Ready",
            false,
            "Retrying",
            &message,
            generation,
        );
        if let Err(save) = self.save().await {
            tracing::debug!(error = %save, "cannot record the retry in status");
        }
    }

    /// Values given to variables the catalog marks `sensitive`: redacted from every
    /// Terraform output the controller logs or puts in status.
    fn sensitive_inputs(&self) -> Redactor {
        let mut redactor = Redactor::default();
        for component in &self.project.spec.components {
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
        .map_err(|e| ReconcileError::Encode(format!("finalizer patch: {e}")))?;
        self.projects()
            .patch(
                &self.name,
                &PatchParams::default(),
                &Patch::<()>::Json(patch),
            )
            .await?;
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
        self.status.phase = Some(phase);
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
            .await?;
        Ok(())
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

    /// The normal (not deleting) loop.
    async fn apply(&mut self) -> Result<Action, ReconcileError> {
        if self.project.spec.suspend {
            if self.status.phase != Some(ProjectPhase::Suspended) {
                self.transition(
                    ProjectPhase::Suspended,
                    "Suspended",
                    "spec.suspend is true: no Terraform runs until it is false",
                )
                .await?;
            }
            return Ok(Action::await_change());
        }
        let problems = self.validation_problems();
        if !problems.is_empty() {
            self.status.observed_generation = self.generation();
            self.transition(ProjectPhase::Failed, "InvalidSpec", &problems)
                .await?;
            return Ok(Action::await_change());
        }
        if let Some(action) = self.guard_state().await? {
            return Ok(action);
        }
        let plan_key = self.plan_key().await?;
        let current = self
            .status
            .plan
            .as_ref()
            .is_some_and(|p| p.inputs_digest == plan_key)
            && self.status.observed_generation == self.generation();
        if !current {
            if self.status.plan_failed_for.as_deref() == Some(plan_key.as_str())
                && self.status.observed_generation == self.generation()
            {
                // Terraform refused exactly these inputs already; retrying cannot help.
                return Ok(Action::await_change());
            }
            return self.replan(&plan_key, false).await;
        }
        match self.status.phase {
            Some(ProjectPhase::AwaitingApproval) => self.follow_decision(false).await,
            // Killed while applying: resume. Terraform refuses a stale plan, so an apply that
            // already happened is never repeated.
            Some(ProjectPhase::Applying) => self.apply_saved(None).await,
            Some(ProjectPhase::Planning) => self.replan(&plan_key, false).await,
            _ => Ok(Action::await_change()),
        }
    }

    fn validation_problems(&self) -> String {
        let mut problems: Vec<String> = api::validate_project(self.project)
            .iter()
            .map(ToString::to_string)
            .collect();
        if let Err(err) = crate::catalog::validate_project(self.project, &self.ctx.catalog) {
            problems.push(err.to_string());
        }
        problems.join("; ")
    }

    /// Digest of everything a plan depends on: rendered inputs, modules, Terraform version,
    /// and the re-plan annotation.
    async fn plan_key(&self) -> Result<String, ReconcileError> {
        let rendered = self.rendered()?;
        let version = self.ctx.runner.version().await?;
        let mut hasher = Sha256::new();
        hasher.update(rendered.inputs_digest.as_bytes());
        hasher.update(format!("\0{:?}\0{}", version.flavour, version.version).as_bytes());
        // What the gate reads from the spec: a budget or approval change is gated anew (a
        // raised budget must open a BudgetIncrease checkpoint even when nothing else moved).
        let gating =
            serde_json::to_string(&(&self.project.spec.budget, &self.project.spec.approval))
                .map_err(|e| ReconcileError::Encode(e.to_string()))?;
        hasher.update(format!("\0gate\0{gating}").as_bytes());
        // A new value of the re-plan annotation is a new key: plan again on request.
        if let Some(token) = self.project.annotations().get(api::REPLAN_ANNOTATION) {
            hasher.update(format!("\0replan\0{token}").as_bytes());
        }
        Ok(hex::encode(hasher.finalize()))
    }

    /// Writes the rendered configuration into the working directory (initialising it is
    /// the runner's `init_and_*`).
    fn write_workspace(&self) -> Result<Workspace, ReconcileError> {
        self.rendered()?.write_to(&self.work_dir())?;
        Ok(self.workspace())
    }

    /// Makes a new plan (a destroy plan when `destroy`), prices it, and lets the gate decide.
    async fn replan(&mut self, plan_key: &str, destroy: bool) -> Result<Action, ReconcileError> {
        self.supersede_pending().await?;
        self.status.plan = None;
        self.status.observed_generation = self.generation();
        let (phase, reason) = if destroy {
            (ProjectPhase::Destroying, "PlanningDestroy")
        } else {
            (ProjectPhase::Planning, "Planning")
        };
        self.transition(phase, reason, "rendering and planning")
            .await?;

        let request = if destroy {
            PlanRequest::destroy(PLAN_FILE)
        } else {
            PlanRequest::new(PLAN_FILE)
        };
        let ws = self.write_workspace()?;
        let planned = self
            .ctx
            .runner
            .init_and_plan(&ws, &INIT_OPTIONS, &request)
            .await;
        let outcome = match planned {
            Ok(outcome) => {
                self.status.plan_failed_for = None;
                outcome
            }
            // A configuration Terraform rejects (a module's variable validation, say) will
            // not fix itself: say so and wait for a spec change instead of retrying.
            Err(err) if !err.is_retryable() => {
                self.status.plan_failed_for = Some(plan_key.to_owned());
                self.transition(
                    ProjectPhase::Failed,
                    "PlanFailed",
                    &format!("terraform could not plan: {err}"),
                )
                .await?;
                return Ok(Action::await_change());
            }
            Err(err) => return Err(err.into()),
        };
        let json = self.ctx.runner.show_plan_json(&ws, &outcome.saved).await?;
        let summary = Plan::from_json(&json)?.summary();
        let region = self
            .project
            .spec
            .cloud
            .as_ref()
            .map_or("us-east-1", |c| c.aws.region.as_str());
        let estimate = serde_json::from_str(&json)
            .map_err(cost::CostError::PlanNotJson)
            .and_then(|plan| {
                cost::estimate_with_book(&plan, region, &Usage::none(), self.ctx.price_book)
            });
        drop(json);
        if let Err(err) = &estimate {
            self.event(EventType::Warning, "CostUnavailable", &err.to_string())
                .await;
        }
        let estimate = estimate.ok();
        let facts = estimate.as_ref().map(|e| CostFacts {
            monthly: e.total_monthly_cost,
            delta: e.delta_monthly_cost,
            unpriced: e.unpriced.len(),
        });
        let policy = self.effective_policy().await?;
        let budget_check = policy.budget(
            self.project
                .spec
                .budget
                .as_ref()
                .and_then(|b| b.monthly_limit.parse::<Decimal>().ok()),
            self.status
                .approved_budget
                .as_deref()
                .and_then(|b| b.parse().ok()),
        );
        let budget = budget_check.limit;
        let decision = gate::evaluate(&GateInput {
            environment: &self.project.spec.environment,
            first_apply: self.status.last_applied.is_none(),
            destroy_project: destroy,
            summary: &summary,
            cost: facts.as_ref(),
            budget: budget_check,
            policy: &policy,
            defaults: &self.ctx.config.gate,
        });
        self.status.effective_policy = Some(api::EffectivePolicyStatus {
            policies: policy.policies.clone(),
            auto_approve: policy.auto_approve.iter().copied().collect(),
            cost_increase_threshold: money(policy.cost_increase_threshold),
            budget: budget.map(money),
            not_allowed: policy.not_allowed.clone(),
        });
        let needs_person = matches!(decision, GateDecision::RequireCheckpoint { .. });
        if outcome.status == TfPlanStatus::NoChanges && !destroy && !needs_person {
            self.delete_plans_except(None).await?;
            self.status.plan = Some(plan_status(&outcome.saved, plan_key, &summary));
            self.status.cost = estimate.as_ref().map(cost_status);
            self.status.checkpoint_ref = None;
            self.transition(
                ProjectPhase::Ready,
                "UpToDate",
                "infrastructure matches the Project",
            )
            .await?;
            return Ok(Action::await_change());
        }
        self.plans().store(&outcome.saved).await?;
        self.delete_plans_except(Some(&outcome.saved.id)).await?;
        self.status.plan = Some(plan_status(&outcome.saved, plan_key, &summary));
        self.status.cost = estimate.as_ref().map(cost_status);
        match decision {
            GateDecision::NoChanges | GateDecision::AutoApprove { .. } => {
                let why = match &decision {
                    GateDecision::AutoApprove { reasons } => reasons.join("; "),
                    _ => "no changes".into(),
                };
                self.event(EventType::Normal, "AutoApproved", &why).await;
                self.transition(
                    ProjectPhase::Applying,
                    "Applying",
                    &format!("applying plan {} (pre-approved: {why})", outcome.saved.id),
                )
                .await?;
                self.apply_saved(Some(outcome.saved)).await
            }
            GateDecision::RequireCheckpoint {
                checkpoint_type,
                reasons,
            } => {
                let ask = Ask {
                    checkpoint_type,
                    reasons,
                    approvers: policy.approvers.clone(),
                };
                let reference = self
                    .open_checkpoint(ask, &outcome.saved, &summary, estimate.as_ref(), budget)
                    .await?;
                let name = reference.name.clone();
                self.status.checkpoint_ref = Some(reference);
                let phase = if destroy {
                    ProjectPhase::Destroying
                } else {
                    ProjectPhase::AwaitingApproval
                };
                self.transition(
                    phase,
                    "AwaitingApproval",
                    &format!(
                        "checkpoint {name} awaits a decision on plan {}",
                        outcome.saved.id
                    ),
                )
                .await?;
                Ok(Action::await_change())
            }
        }
    }

    /// After a BudgetIncrease checkpoint was approved and its plan applied, the budget the
    /// spec asks for is the approved one.
    async fn accept_approved_budget(&mut self) {
        let Some(reference) = &self.status.checkpoint_ref else {
            return;
        };
        let approved_increase = self
            .checkpoints()
            .get_opt(&reference.name)
            .await
            .ok()
            .flatten()
            .is_some_and(|c| {
                c.spec.checkpoint_type == CheckpointType::BudgetIncrease
                    && c.status.and_then(|s| s.decision) == Some(Decision::Approved)
            });
        if approved_increase {
            self.status.approved_budget = self
                .project
                .spec
                .budget
                .as_ref()
                .map(|b| b.monthly_limit.clone());
        }
    }

    /// The ApprovalPolicies that select this Project, tightened by its spec.
    async fn effective_policy(&self) -> Result<EffectivePolicy, ReconcileError> {
        let namespace = Api::<Namespace>::all(self.ctx.client.clone())
            .get(&self.namespace)
            .await?;
        let labels = namespace.metadata.labels.unwrap_or_default();
        let policies = Api::<api::ApprovalPolicy>::all(self.ctx.client.clone())
            .list(&ListParams::default())
            .await?;
        let named: Vec<(&str, &api::ApprovalPolicySpec)> = policies
            .items
            .iter()
            .map(|p| (p.metadata.name.as_deref().unwrap_or_default(), &p.spec))
            .collect();
        Ok(EffectivePolicy::resolve(
            ProjectFacts {
                namespace_labels: &labels,
                environment: &self.project.spec.environment,
                approval: self.project.spec.approval.as_ref(),
            },
            &named,
        ))
    }

    async fn open_checkpoint(
        &self,
        ask: Ask,
        saved: &SavedPlan,
        summary: &PlanSummary,
        estimate: Option<&Estimate>,
        budget: Option<Decimal>,
    ) -> Result<CheckpointRefStatus, ReconcileError> {
        let Ask {
            checkpoint_type,
            reasons,
            approvers,
        } = ask;
        let short: String = saved.digest.chars().take(12).collect();
        let prefix = if checkpoint_type == CheckpointType::Destroy {
            "destroy-"
        } else {
            ""
        };
        let tail = format!("{prefix}{short}");
        let (add, change, destroy) = wide(summary.terraform_counts());
        let a = &summary.addresses;
        let changes: Vec<String> = [
            ("create", &a.create),
            ("update", &a.update),
            ("replace", &a.replace),
            ("delete", &a.delete),
        ]
        .iter()
        .flat_map(|(action, addresses)| {
            addresses
                .iter()
                .map(move |address| format!("{action} {address}"))
        })
        .take(LISTED_ADDRESSES)
        .collect();
        let spec = CheckpointSpec {
            checkpoint_type,
            project_ref: ProjectRef {
                name: self.name.clone(),
                namespace: None,
            },
            plan_ref: Some(PlanRef {
                id: saved.id.clone(),
                digest: saved.digest.clone(),
            }),
            summary: CheckpointSummary {
                text: format!("{add} to add, {change} to change, {destroy} to destroy"),
                add,
                change,
                destroy,
                changes,
                risks: summary
                    .risks
                    .iter()
                    .take(LISTED_ADDRESSES)
                    .map(|r| format!("{:?} {}: {}", r.kind, r.address, r.detail))
                    .collect(),
                cost: estimate.map(|e| CheckpointCost {
                    before: money(e.previous_monthly_cost),
                    after: money(e.total_monthly_cost),
                    delta: money(e.delta_monthly_cost),
                    budget: budget.map(money),
                }),
            },
            reasons: reasons
                .into_iter()
                .take(20)
                .map(|r| truncate(&r, 500))
                .collect(),
            requested_at: Time(jiff::Timestamp::now()),
            sla: None,
            approvers,
            requested_by: self
                .project
                .annotations()
                .get(api::LAST_CHANGED_BY_ANNOTATION)
                .cloned(),
        };
        self.create_checkpoint(&tail, spec).await
    }

    /// Whether the Project's namespace is being deleted (then nothing new can be created in
    /// it). Unknown (no permission, an error) counts as no: creating refuses it anyway.
    async fn namespace_terminating(&self) -> bool {
        let namespaces: Api<Namespace> = Api::all(self.ctx.client.clone());
        match namespaces.get_opt(&self.namespace).await {
            Ok(Some(ns)) => ns
                .status
                .and_then(|s| s.phase)
                .is_some_and(|p| p == "Terminating"),
            Ok(None) => true,
            Err(err) => {
                tracing::debug!(error = %err, "cannot read the Project's namespace");
                false
            }
        }
    }

    /// Creates a checkpoint named `<project>-<tail>` in the Project's namespace, owned by
    /// the Project; when that namespace is being deleted, in the state namespace instead,
    /// named `<namespace>.<project>-<tail>`, with labels and `spec.projectRef.namespace`
    /// naming the Project, so the decision (and the destroy after it) outlive the namespace.
    async fn create_checkpoint(
        &self,
        tail: &str,
        spec: CheckpointSpec,
    ) -> Result<CheckpointRefStatus, ReconcileError> {
        let checkpoint_type = spec.checkpoint_type;
        let reasons = spec.reasons.join("; ");
        let mut local = Checkpoint::new(&format!("{}-{tail}", self.name), spec.clone());
        local.metadata.namespace = Some(self.namespace.clone());
        local.metadata.labels = Some(BTreeMap::from([(
            PROJECT_LABEL.to_owned(),
            self.name.clone(),
        )]));
        local.metadata.owner_references = self.project.controller_owner_ref(&()).map(|o| vec![o]);
        let terminating = self.namespace_terminating().await;
        let refused = if terminating {
            None
        } else {
            match self
                .checkpoints()
                .create(&PostParams::default(), &local)
                .await
            {
                Ok(_) => {
                    self.checkpoint_opened(checkpoint_type, &local.name_any(), None, &reasons)
                        .await;
                    return Ok(CheckpointRefStatus {
                        name: local.name_any(),
                        namespace: None,
                    });
                }
                // Opened by an earlier run that died before recording it in status.
                Err(kube::Error::Api(status)) if status.code == 409 => {
                    return Ok(CheckpointRefStatus {
                        name: local.name_any(),
                        namespace: None,
                    });
                }
                // "unable to create new content in namespace X because it is being
                // terminated": the namespace went away between the check and the create.
                Err(kube::Error::Api(status))
                    if status.code == 403 && status.message.contains("being terminated") =>
                {
                    Some(status.message)
                }
                Err(err) => return Err(err.into()),
            }
        };
        let state_namespace = self.ctx.config.state_namespace.clone();
        let mut spec = spec;
        spec.project_ref.namespace = Some(self.namespace.clone());
        let name = format!("{}-{tail}", secret_suffix(&self.namespace, &self.name));
        let mut remote = Checkpoint::new(&name, spec);
        remote.metadata.namespace = Some(state_namespace.clone());
        remote.metadata.labels = Some(project_labels(&self.namespace, &self.name));
        remote.metadata.annotations = Some(BTreeMap::from([(
            "tollgate.dev/project".to_owned(),
            format!("{}/{}", self.namespace, self.name),
        )]));
        tracing::info!(checkpoint = %name, state_namespace = %state_namespace, refused = ?refused, "the Project's namespace is being deleted: opening the checkpoint in the state namespace");
        match self
            .checkpoints_in(Some(&state_namespace))
            .create(&PostParams::default(), &remote)
            .await
        {
            Ok(_) => {
                self.checkpoint_opened(checkpoint_type, &name, Some(&state_namespace), &reasons)
                    .await;
            }
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(err) => return Err(err.into()),
        }
        // The Checkpoint reconciler marks it Pending; recording it in our status comes first,
        // so a failure from here on can never leave an unreferenced checkpoint behind.
        Ok(CheckpointRefStatus {
            name,
            namespace: Some(state_namespace),
        })
    }

    async fn checkpoint_opened(
        &self,
        checkpoint_type: CheckpointType,
        name: &str,
        namespace: Option<&str>,
        reasons: &str,
    ) {
        self.ctx.metrics.checkpoint_opened();
        let place = namespace.map_or_else(String::new, |ns| {
            format!(" in namespace {ns} (this namespace is being deleted)")
        });
        self.event(
            EventType::Normal,
            "CheckpointOpened",
            &format!("{checkpoint_type:?} checkpoint {name} opened{place}: {reasons}"),
        )
        .await;
    }

    /// Marks every undecided checkpoint of this Project Superseded: their plans will never
    /// be applied. Covers the referenced one and any a failed run opened without recording.
    async fn supersede_pending(&mut self) -> Result<(), ReconcileError> {
        self.status.checkpoint_ref = None;
        let state_namespace = self.ctx.config.state_namespace.clone();
        let here =
            kube::api::ListParams::default().labels(&format!("{PROJECT_LABEL}={}", self.name));
        let there = kube::api::ListParams::default().labels(&format!(
            "{PROJECT_NAMESPACE_LABEL}={},{PROJECT_LABEL}={}",
            self.namespace, self.name
        ));
        let mut open = Vec::new();
        for (namespace, params) in [(None, here), (Some(state_namespace.as_str()), there)] {
            for cp in self.checkpoints_in(namespace).list(&params).await?.items {
                let status = cp.status.clone().unwrap_or_default();
                if status.decision.is_none()
                    && !matches!(
                        status.phase,
                        Some(CheckpointPhase::Superseded | CheckpointPhase::Expired)
                    )
                {
                    open.push((namespace, cp));
                }
            }
        }
        for (namespace, cp) in open {
            let name = cp.name_any();
            set_phase(
                &self.checkpoints_in(namespace),
                &name,
                CheckpointPhase::Superseded,
            )
            .await?;
            self.push_history(
                cp.spec.plan_ref.as_ref().map_or("", |p| p.id.as_str()),
                "Superseded",
                None,
            );
            self.event(
                EventType::Normal,
                "CheckpointSuperseded",
                &format!("checkpoint {name} superseded: the Project changed, a new plan is made"),
            )
            .await;
        }
        Ok(())
    }

    /// Acts on the decision of the pending checkpoint.
    async fn follow_decision(&mut self, destroy: bool) -> Result<Action, ReconcileError> {
        let (Some(reference), Some(plan)) =
            (self.status.checkpoint_ref.clone(), self.status.plan.clone())
        else {
            return Ok(Action::await_change());
        };
        let Some(checkpoint) = self
            .checkpoints_in(reference.namespace.as_deref())
            .get_opt(&reference.name)
            .await?
        else {
            // Someone deleted the checkpoint: ask again with a fresh plan.
            self.status.checkpoint_ref = None;
            self.status.plan = None;
            self.save().await?;
            return Ok(Action::requeue(std::time::Duration::from_secs(1)));
        };
        let status = checkpoint.status.clone().unwrap_or_default();
        if status.decision.is_some()
            && let Err(why) = super::checkpoint::verify_decision(&checkpoint, &self.ctx.seal_key)
        {
            return self.refuse_unverified(&reference.name, &why, destroy).await;
        }
        match status.decision {
            None => Ok(Action::await_change()),
            Some(Decision::Rejected) => {
                self.push_history(&plan.id, "Rejected", status.decided_by.clone());
                let message = format!(
                    "checkpoint {} rejected by {}: {}; nothing was changed",
                    reference.name,
                    status.decided_by.as_deref().unwrap_or("unknown"),
                    status.reason.as_deref().unwrap_or("no reason given")
                );
                if destroy {
                    self.transition(ProjectPhase::Destroying, "DestroyRejected", &format!("{message}. To delete the Project without destroying, set spec.deletionPolicy: Orphan")).await?;
                } else {
                    self.transition(
                        ProjectPhase::Rejected,
                        "Rejected",
                        &format!("{message}. Change the spec to plan again"),
                    )
                    .await?;
                }
                Ok(Action::await_change())
            }
            Some(Decision::Approved) => {
                let approved_digest = checkpoint.spec.plan_ref.as_ref().map(|p| p.digest.as_str());
                if approved_digest != Some(plan.digest.as_str()) {
                    // Never apply a plan other than the one approved.
                    self.status.plan = None;
                    self.save().await?;
                    return Ok(Action::requeue(std::time::Duration::from_secs(1)));
                }
                let by = status.decided_by.unwrap_or_else(|| "unknown".into());
                let phase = if destroy {
                    ProjectPhase::Destroying
                } else {
                    ProjectPhase::Applying
                };
                self.transition(
                    phase,
                    "Applying",
                    &format!("applying plan {} approved by {by}", plan.id),
                )
                .await?;
                self.apply_saved(None).await
            }
        }
    }

    /// A decision admission never verified changes nothing: the Project keeps waiting and
    /// says why (once as a Warning Event) and what to do.
    async fn refuse_unverified(
        &mut self,
        checkpoint: &str,
        why: &crate::seal::SealError,
        destroy: bool,
    ) -> Result<Action, ReconcileError> {
        const REASON: &str = "DecisionUnverified";
        let message = super::checkpoint::unverified_message(checkpoint, why);
        let already =
            self.status.conditions.iter().any(|c| {
                c.type_ == "AwaitingApproval" && c.reason == REASON && c.message == message
            });
        if !already {
            self.event(EventType::Warning, REASON, &message).await;
        }
        let phase = if destroy {
            ProjectPhase::Destroying
        } else {
            ProjectPhase::AwaitingApproval
        };
        self.transition(phase, REASON, &message).await?;
        Ok(Action::await_change())
    }

    /// Applies the saved plan recorded in status (restoring the file from its Secret when
    /// the working directory lost it), then records outputs and history.
    async fn apply_saved(&mut self, saved: Option<SavedPlan>) -> Result<Action, ReconcileError> {
        let Some(plan) = self.status.plan.clone() else {
            return Ok(Action::await_change());
        };
        let ws = self.write_workspace()?;
        let saved = match saved {
            Some(s) if s.verify().is_ok() => s,
            _ => {
                let path = self.work_dir().join(PLAN_FILE);
                match self.plans().restore(&plan.id, &plan.digest, &path).await {
                    // Saved by an older version, in the Project's namespace.
                    Err(ReconcileError::PlanStore { message, .. })
                        if message == plans::NOT_STORED =>
                    {
                        PlanStore::legacy(self.secrets(), &self.name)
                            .restore(&plan.id, &plan.digest, &path)
                            .await?
                    }
                    other => other?,
                }
            }
        };
        let decided_by = self.decided_by().await;
        match self
            .ctx
            .runner
            .init_and_apply(&ws, &INIT_OPTIONS, &saved)
            .await
        {
            Ok(_) => {}
            Err(TerraformError::PlanFile(PlanError::DigestMismatch { .. })) => {
                // The stored bytes are not the approved ones: never apply, never guess.
                self.push_history(&plan.id, "Failed", decided_by);
                self.transition(ProjectPhase::Failed, "PlanTampered", &format!("saved plan {} does not match its approved digest; it was not applied. Change the spec or set the tollgate.dev/replan annotation to plan again", plan.id)).await?;
                return Ok(Action::await_change());
            }
            Err(err) if err.kind() == ErrorKind::StalePlan => {
                // State moved since the plan: either this very apply finished in a run that
                // died before recording it (a controller restart), or something else changed
                // state. A fresh plan tells which; nothing is applied a second time.
                let check = self
                    .ctx
                    .runner
                    .plan(&ws, &PlanRequest::new("tfplan-check"))
                    .await?;
                if check.status != TfPlanStatus::NoChanges {
                    self.event(EventType::Warning, "StalePlan", "the saved plan is stale (state changed since it was approved); planning again").await;
                    self.status.plan = None;
                    self.save().await?;
                    return Ok(Action::requeue(std::time::Duration::from_secs(1)));
                }
                self.event(
                    EventType::Normal,
                    "ApplyCompleted",
                    &format!(
                        "plan {} was applied by a run interrupted before it recorded the result",
                        plan.id
                    ),
                )
                .await;
            }
            // Someone (typically the Terraform of a controller that died mid-apply) holds
            // the state lock: not a failure of this plan; try again shortly.
            Err(err) if err.kind() == ErrorKind::StateLocked => return Err(err.into()),
            Err(err) => {
                self.ctx.metrics.applied("failed");
                self.push_history(&plan.id, "Failed", decided_by);
                self.transition(
                    ProjectPhase::Failed,
                    "ApplyFailed",
                    &format!("apply of plan {} failed: {err}", plan.id),
                )
                .await?;
                return Ok(Action::await_change());
            }
        }
        self.ctx.metrics.applied("succeeded");
        self.accept_approved_budget().await;
        // A destroy leaves no outputs, and the Project's namespace may be being deleted
        // (nothing can be created there).
        if self.project.meta().deletion_timestamp.is_none() {
            self.write_outputs(&ws).await?;
        }
        self.delete_plans_except(None).await?;
        self.push_history(&plan.id, "Applied", decided_by);
        self.status.last_applied = Some(LastApplied {
            plan_id: plan.id.clone(),
            at: Time(jiff::Timestamp::now()),
            cost: self.status.cost.as_ref().map(|c| c.monthly.clone()),
        });
        self.status.checkpoint_ref = None;
        // The applied plan's inputs are now the state: an unchanged Project needs no new plan.
        self.transition(
            ProjectPhase::Ready,
            "Applied",
            &format!("plan {} applied", plan.id),
        )
        .await?;
        Ok(Action::await_change())
    }

    async fn decided_by(&self) -> Option<String> {
        let reference = self.status.checkpoint_ref.as_ref()?;
        self.checkpoints_in(reference.namespace.as_deref())
            .get_opt(&reference.name)
            .await
            .ok()
            .flatten()?
            .status?
            .decided_by
    }

    async fn write_outputs(&mut self, ws: &Workspace) -> Result<(), ReconcileError> {
        let outputs = self.ctx.runner.output(ws).await?;
        let data: BTreeMap<String, ByteString> = outputs
            .iter()
            .map(|(name, output)| {
                let text = match &output.value {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (name.clone(), ByteString(text.into_bytes()))
            })
            .collect();
        let name = format!("{}-outputs", self.name);
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(self.namespace.clone()),
                labels: Some(BTreeMap::from([(
                    PROJECT_LABEL.to_owned(),
                    self.name.clone(),
                )])),
                owner_references: self.project.controller_owner_ref(&()).map(|o| vec![o]),
                ..Default::default()
            },
            data: Some(data),
            type_: Some("tollgate.dev/outputs".into()),
            ..Default::default()
        };
        let patch = serde_json::to_value(&secret).map(|mut v| {
            v["apiVersion"] = json!("v1");
            v["kind"] = json!("Secret");
            v
        });
        let patch = patch.map_err(|e| ReconcileError::Encode(format!("outputs Secret: {e}")))?;
        self.secrets()
            .patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await?;
        self.status.outputs_secret_ref = Some(SecretKeyRef { name });
        Ok(())
    }

    fn push_history(&mut self, plan_id: &str, outcome: &str, decided_by: Option<String>) {
        self.status.history.insert(
            0,
            HistoryEntry {
                plan_id: plan_id.to_owned(),
                outcome: outcome.to_owned(),
                at: Time(jiff::Timestamp::now()),
                decided_by,
            },
        );
        self.status.history.truncate(HISTORY_LIMIT);
    }

    /// Deletion: destroy through a Destroy checkpoint, or orphan; then drop the finalizer.
    async fn cleanup(&mut self) -> Result<Action, ReconcileError> {
        if !self.project.finalizers().iter().any(|f| f == FINALIZER) {
            return Ok(Action::await_change());
        }
        // Never plan a destroy against vanished state: it would destroy nothing and let the
        // Project go while its infrastructure stays.
        let state = self.check_state().await?;
        if state == StateCheck::Missing {
            if let Some(action) = self.state_missing().await? {
                return Ok(action);
            }
        } else {
            self.clear_state_missing();
        }
        // A failed first apply may have created resources: only a Project that never ran
        // an apply at all, and has no state, has nothing to destroy.
        let nothing_applied = self.status.last_applied.is_none()
            && !self.status.history.iter().any(|h| h.outcome == "Failed")
            && state != StateCheck::Present;
        if self.project.spec.deletion_policy == DeletionPolicy::Orphan || nothing_applied {
            self.supersede_pending().await?;
            self.delete_plans_except(None).await?;
            if self.project.spec.deletion_policy == DeletionPolicy::Orphan
                && state == StateCheck::Present
                && let Some(kept) = self.status.state.clone()
            {
                let message = format!(
                    "deletionPolicy Orphan: the infrastructure is left in place and its Terraform state is kept in Secret {} in namespace {}; a Project created again as {}/{} adopts it",
                    kept.secret_name, kept.namespace, self.namespace, self.name
                );
                let generation = self.generation();
                conditions::set(
                    &mut self.status.conditions,
                    "Ready",
                    false,
                    "Orphaned",
                    &message,
                    generation,
                );
                self.save().await?;
                self.event(EventType::Normal, "StateKept", &message).await;
            }
            self.forget_state_namespace_checkpoints().await?;
            self.remove_finalizer().await?;
            return Ok(Action::await_change());
        }
        let destroying =
            self.status.phase == Some(ProjectPhase::Destroying) && self.status.plan.is_some();
        if !destroying {
            let key = format!("destroy-{}", self.plan_key().await?);
            return self.replan(&key, true).await;
        }
        if self.status.checkpoint_ref.is_some() {
            let action = self.follow_decision(true).await?;
            // An applied destroy plan clears the checkpoint reference and lands in Ready.
            if self.status.phase == Some(ProjectPhase::Ready) {
                // Recorded first: a retry after this point finds nothing applied and no state.
                self.status.last_applied = None;
                self.save().await?;
                self.remove_state().await?;
                self.forget_state_namespace_checkpoints().await?;
                self.remove_finalizer().await?;
            }
            return Ok(action);
        }
        Ok(Action::await_change())
    }

    /// Checks the state before anything is planned: moves state from its legacy location,
    /// records where it is, and stops everything while it is missing.
    async fn guard_state(&mut self) -> Result<Option<Action>, ReconcileError> {
        let before = self.status.state.clone();
        match self.check_state().await? {
            StateCheck::Missing => self.state_missing().await,
            _ => {
                let cleared = self.clear_state_missing();
                if cleared || self.status.state != before {
                    self.save().await?;
                }
                Ok(None)
            }
        }
    }

    /// Whether the state Secret exists, after moving it from the legacy location (the
    /// Project's namespace) when it is still there.
    async fn check_state(&mut self) -> Result<StateCheck, ReconcileError> {
        let Some(location) = self.state.clone() else {
            return Ok(StateCheck::NotKept);
        };
        self.status.state = Some(StateStatus {
            namespace: location.namespace.clone(),
            secret_name: location.secret_name(),
        });
        let current = self
            .state_secrets()
            .get_opt(&location.secret_name())
            .await?;
        let legacy_suffix = self
            .project
            .spec
            .backend
            .as_ref()
            .and_then(|b| b.kubernetes.as_ref())
            .and_then(|k| k.secret_suffix.clone())
            .unwrap_or_else(|| self.name.clone());
        let legacy = self
            .secrets()
            .get_opt(&legacy_secret_name(&legacy_suffix))
            .await?
            .filter(|l| l.labels().get("tfstate").is_some_and(|v| v == "true"));
        match (current, legacy) {
            // Moved by an earlier run that stopped before deleting the old copy.
            (Some(current), Some(legacy)) => {
                self.finish_migration(&location, &current, &legacy).await?;
                return Ok(StateCheck::Present);
            }
            (Some(_), None) => return Ok(StateCheck::Present),
            (None, Some(legacy)) => {
                self.migrate_state(&location, &legacy, &legacy_suffix)
                    .await?;
                return Ok(StateCheck::Present);
            }
            (None, None) => {}
        }
        Ok(if self.status.last_applied.is_some() {
            StateCheck::Missing
        } else {
            StateCheck::Empty
        })
    }

    /// Moves the state from `tfstate-default-<legacy_suffix>` in the Project's namespace to
    /// `location` with Terraform itself (`init -migrate-state -force-copy`, which locks both
    /// sides), then [`Run::finish_migration`].
    async fn migrate_state(
        &mut self,
        location: &StateLocation,
        legacy: &Secret,
        legacy_suffix: &str,
    ) -> Result<(), ReconcileError> {
        let legacy_name = legacy.name_any();
        let dir = self
            .ctx
            .config
            .work_root
            .join(".migrate")
            .join(&self.namespace)
            .join(&self.name);
        let io = |path: &std::path::Path| {
            let path = path.to_path_buf();
            move |source| ReconcileError::Io { path, source }
        };
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(io(&dir))?;
        }
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let root = dir.join(crate::render::ROOT_FILE);
        let write_backend = |backend: hcl::Block| {
            let body = hcl::Body::builder()
                .add_block(hcl::Block::builder("terraform").add_block(backend).build())
                .build();
            hcl::to_string(&body)
                .map_err(|e| ReconcileError::Encode(format!("backend configuration: {e}")))
                .and_then(|text| std::fs::write(&root, text).map_err(io(&root)))
        };
        write_backend(
            hcl::Block::builder("backend")
                .add_label("kubernetes")
                .add_attribute(("secret_suffix", quoted(legacy_suffix)))
                .add_attribute(("namespace", quoted(&self.namespace)))
                .build(),
        )?;
        let ws = self.workspace_in(&dir);
        let from_legacy = InitOptions {
            reconfigure: true,
            ..InitOptions::default()
        };
        self.ctx.runner.init(&ws, &from_legacy).await?;
        write_backend(location.backend_block())?;
        let migrate = InitOptions {
            migrate_state: true,
            ..InitOptions::default()
        };
        self.ctx.runner.init(&ws, &migrate).await?;
        let copied = self
            .state_secrets()
            .get_opt(&location.secret_name())
            .await?
            .ok_or_else(|| ReconcileError::State {
                project: key(self.project),
                message: format!(
                    "terraform init -migrate-state did not create Secret {} in namespace {}; the state stays in Secret {legacy_name} in namespace {}",
                    location.secret_name(),
                    location.namespace,
                    self.namespace
                ),
            })?;
        if let Err(err) = std::fs::remove_dir_all(&dir) {
            tracing::debug!(error = %err, "cannot remove the migration directory");
        }
        self.finish_migration(location, &copied, legacy).await
    }

    /// Deletes the legacy state Secret (if unchanged since it was read) and its Lease once
    /// `copied` verifiably holds the same state: the same lineage and a serial not older
    /// (Terraform's copy counts one more). Otherwise keeps both and fails: a person looks.
    async fn finish_migration(
        &self,
        location: &StateLocation,
        copied: &Secret,
        legacy: &Secret,
    ) -> Result<(), ReconcileError> {
        let legacy_name = legacy.name_any();
        let project = key(self.project);
        let state_error = |message: String| ReconcileError::State {
            project: project.clone(),
            message,
        };
        let old = state_identity(legacy).map_err(&state_error)?;
        let new = state_identity(copied).map_err(&state_error)?;
        if old.0 != new.0 || new.1 < old.1 {
            return Err(state_error(format!(
                "Secret {} in namespace {} (lineage {}, serial {}) is not a copy of the legacy state Secret {legacy_name} in namespace {} (lineage {}, serial {}); both are kept: decide which is right, then delete the other",
                location.secret_name(),
                location.namespace,
                new.0,
                new.1,
                self.namespace,
                old.0,
                old.1
            )));
        }
        let unchanged = kube::api::DeleteParams {
            preconditions: Some(kube::api::Preconditions {
                resource_version: legacy.resource_version(),
                uid: legacy.uid(),
            }),
            ..kube::api::DeleteParams::default()
        };
        self.secrets().delete(&legacy_name, &unchanged).await?;
        let leases: Api<Lease> = Api::namespaced(self.ctx.client.clone(), &self.namespace);
        match leases
            .delete(&format!("lock-{legacy_name}"), &Default::default())
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(err) => return Err(err.into()),
        }
        self.event(
            EventType::Normal,
            "StateMigrated",
            &format!(
                "Terraform state moved from Secret {legacy_name} in namespace {} to Secret {} in namespace {} (lineage {}, serial {} -> {})",
                self.namespace,
                location.secret_name(),
                location.namespace,
                new.0,
                old.1,
                new.1
            ),
        )
        .await;
        Ok(())
    }

    /// The state is missing although a plan was applied: planning against empty state
    /// would create everything a second time. Stops every plan and apply, says so
    /// (`StateMissing`, `Stalled`, a Warning Event) and asks a person through a
    /// `ManualOperation` checkpoint: restore the Secret, or approve to accept empty state.
    /// `None` once that approval is given (the caller goes on, from empty state).
    async fn state_missing(&mut self) -> Result<Option<Action>, ReconcileError> {
        let (secret, namespace) = self
            .status
            .state
            .as_ref()
            .map(|s| (s.secret_name.clone(), s.namespace.clone()))
            .unwrap_or_default();
        let applied = self
            .status
            .last_applied
            .as_ref()
            .map(|l| l.plan_id.clone())
            .unwrap_or_default();
        if let Some(reference) = self.status.checkpoint_ref.clone()
            && let Some(checkpoint) = self
                .checkpoints_in(reference.namespace.as_deref())
                .get_opt(&reference.name)
                .await?
            && checkpoint.spec.checkpoint_type == CheckpointType::ManualOperation
        {
            let status = checkpoint.status.clone().unwrap_or_default();
            // Accepting empty state is a decision like any other: only a sealed one counts.
            let verified = status.decision.is_some()
                && match super::checkpoint::verify_decision(&checkpoint, &self.ctx.seal_key) {
                    Ok(()) => true,
                    Err(why) => {
                        self.event(
                            EventType::Warning,
                            "DecisionUnverified",
                            &super::checkpoint::unverified_message(&reference.name, &why),
                        )
                        .await;
                        false
                    }
                };
            if !verified || status.decision != Some(Decision::Approved) {
                return Ok(Some(Action::requeue(STATE_MISSING_RECHECK)));
            }
            let by = status.decided_by.unwrap_or_else(|| "unknown".into());
            let message = format!(
                "{by} approved checkpoint {}: tollgate continues from empty state; Terraform will plan every resource as new",
                reference.name
            );
            self.push_history(&applied, "StateReset", Some(by));
            self.status.last_applied = None;
            self.status.checkpoint_ref = None;
            self.status.plan = None;
            conditions::set(
                &mut self.status.conditions,
                STATE_MISSING,
                false,
                "EmptyStateAccepted",
                &message,
                self.project.meta().generation,
            );
            self.save().await?;
            self.event(EventType::Warning, "EmptyStateAccepted", &message)
                .await;
            return Ok(None);
        }
        let message = format!(
            "the Terraform state (Secret {secret} in namespace {namespace}) is missing, but plan {applied} was applied: nothing is planned or applied until a person acts. Restore the Secret from a backup (tollgate goes on by itself), or, only if the infrastructure is really gone, approve the ManualOperation checkpoint to continue from empty state"
        );
        // No plan of this Project may be applied now.
        self.supersede_pending().await?;
        self.status.plan = None;
        let digest = hex::encode(Sha256::digest(applied.as_bytes()));
        let spec = CheckpointSpec {
            checkpoint_type: CheckpointType::ManualOperation,
            project_ref: ProjectRef {
                name: self.name.clone(),
                namespace: None,
            },
            plan_ref: None,
            summary: CheckpointSummary {
                text: truncate(&message, 1000),
                ..CheckpointSummary::default()
            },
            reasons: vec![format!(
                "StateMissing: Secret {secret} in namespace {namespace}; approve to accept empty state"
            )],
            requested_at: Time(jiff::Timestamp::now()),
            sla: None,
            // Who may decide is the approval policies' business, as for any checkpoint.
            approvers: self.effective_policy().await?.approvers,
            requested_by: None,
        };
        let reference = self
            .create_checkpoint(&format!("state-missing-{}", &digest[..12]), spec)
            .await?;
        self.status.checkpoint_ref = Some(reference);
        conditions::set(
            &mut self.status.conditions,
            STATE_MISSING,
            true,
            STATE_MISSING,
            &message,
            self.project.meta().generation,
        );
        let already_failed = self.status.phase == Some(ProjectPhase::Failed);
        self.transition(ProjectPhase::Failed, STATE_MISSING, &message)
            .await?;
        if already_failed {
            self.event(EventType::Warning, STATE_MISSING, &message)
                .await;
        }
        Ok(Some(Action::requeue(STATE_MISSING_RECHECK)))
    }

    /// The state is there (again): lifts `StateMissing`, supersedes the checkpoint that
    /// asked about it and makes a fresh plan against the state. Returns whether it changed
    /// anything.
    fn clear_state_missing(&mut self) -> bool {
        let missing = self
            .status
            .conditions
            .iter()
            .any(|c| c.type_ == STATE_MISSING && c.status == "True");
        if !missing {
            return false;
        }
        conditions::set(
            &mut self.status.conditions,
            STATE_MISSING,
            false,
            "StateFound",
            "the Terraform state Secret exists",
            self.project.meta().generation,
        );
        // The ManualOperation checkpoint is superseded by the next plan; a fresh plan is
        // made against the restored state.
        self.status.plan = None;
        self.status.plan_failed_for = None;
        true
    }

    /// Deletes the checkpoints this Project has in the state namespace (no owner reference
    /// can do it there): decided or superseded, they must not be reused by a Project created
    /// again with the same name.
    async fn forget_state_namespace_checkpoints(&self) -> Result<(), ReconcileError> {
        let api = self.checkpoints_in(Some(&self.ctx.config.state_namespace));
        let params = kube::api::ListParams::default().labels(&format!(
            "{PROJECT_NAMESPACE_LABEL}={},{PROJECT_LABEL}={}",
            self.namespace, self.name
        ));
        for cp in api.list(&params).await?.items {
            match api.delete(&cp.name_any(), &Default::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(err) => return Err(err.into()),
            }
        }
        Ok(())
    }

    /// Removes the Terraform state of the `kubernetes` backend after a destroy: the state
    /// Secret (and any chunks of it) and the lock Lease, in the state namespace.
    async fn remove_state(&self) -> Result<(), ReconcileError> {
        let Some(location) = &self.state else {
            return Ok(());
        };
        let secrets = self.state_secrets();
        let params = kube::api::ListParams::default().labels(&format!(
            "tfstate=true,tfstateSecretSuffix={}",
            location.secret_suffix
        ));
        let mut names: Vec<String> = secrets
            .list(&params)
            .await?
            .items
            .iter()
            .map(ResourceExt::name_any)
            .collect();
        names.push(location.secret_name());
        names.dedup();
        for name in names {
            match secrets.delete(&name, &Default::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(err) => return Err(err.into()),
            }
        }
        let leases: Api<Lease> = Api::namespaced(self.ctx.client.clone(), &location.namespace);
        match leases
            .delete(&location.lease_name(), &Default::default())
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(err) => Err(err.into()),
        }
    }
}

/// What a checkpoint asks a person, and who may answer.
struct Ask {
    checkpoint_type: CheckpointType,
    reasons: Vec<String>,
    approvers: Option<api::ApproverSet>,
}

/// `(lineage, serial)` of the Terraform state in a `kubernetes` backend Secret (gzip JSON
/// under `tfstate`).
fn state_identity(secret: &Secret) -> Result<(String, u64), String> {
    let name = secret.name_any();
    let data = secret
        .data
        .as_ref()
        .and_then(|d| d.get("tfstate"))
        .ok_or_else(|| format!("Secret {name} holds no tfstate"))?;
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(data.0.as_slice())
        .read_to_end(&mut json)
        .map_err(|e| format!("Secret {name}: cannot decompress the state: {e}"))?;
    let state: serde_json::Value = serde_json::from_slice(&json)
        .map_err(|e| format!("Secret {name}: the state is not JSON: {e}"))?;
    let lineage = state["lineage"].as_str().unwrap_or_default().to_owned();
    let serial = state["serial"].as_u64().unwrap_or_default();
    Ok((lineage, serial))
}

fn plan_status(saved: &SavedPlan, plan_key: &str, summary: &PlanSummary) -> PlanStatus {
    let (add, change, destroy) = wide(summary.terraform_counts());
    let a = &summary.addresses;
    let addresses = a
        .create
        .iter()
        .chain(&a.update)
        .chain(&a.replace)
        .chain(&a.delete)
        .take(LISTED_ADDRESSES)
        .cloned()
        .collect();
    PlanStatus {
        id: saved.id.clone(),
        digest: saved.digest.clone(),
        inputs_digest: plan_key.to_owned(),
        summary: PlanSummaryStatus {
            add,
            change,
            destroy,
            addresses,
        },
    }
}

fn cost_status(estimate: &Estimate) -> api::CostStatus {
    let mut resources: Vec<&cost::ResourceCost> = estimate.resources.iter().collect();
    resources.sort_by_key(|r| std::cmp::Reverse(r.monthly_cost));
    api::CostStatus {
        monthly: money(estimate.total_monthly_cost),
        delta: money(estimate.delta_monthly_cost),
        currency: estimate.currency.clone(),
        top_resources: resources
            .iter()
            .take(5)
            .map(|r| ResourceCost {
                address: r.address.clone(),
                monthly: money(r.monthly_cost),
            })
            .collect(),
        unpriced: estimate
            .unpriced
            .iter()
            .take(LISTED_ADDRESSES)
            .map(|u| truncate(&format!("{}: {}", u.address, u.reason), 300))
            .collect(),
    }
}

/// Counts as the API's integer type (Kubernetes has no unsigned integer format).
fn wide((add, change, destroy): (u32, u32, u32)) -> (i64, i64, i64) {
    (i64::from(add), i64::from(change), i64::from(destroy))
}

fn money(amount: Decimal) -> String {
    amount.round_dp(2).to_string()
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    text.chars().take(max).collect::<String>() + "…"
}

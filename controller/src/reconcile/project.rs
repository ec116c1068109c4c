//! The Project loop: validate → render → plan → price → gate → (checkpoint → decision) →
//! apply exactly the saved plan → outputs → Ready; and destroy (or orphan) on deletion.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use k8s_openapi::ByteString;
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
use super::plans;
use super::{Context, FIELD_MANAGER, FINALIZER, PROJECT_LABEL, ReconcileError, key};
use crate::api::{
    self, Checkpoint, CheckpointCost, CheckpointPhase, CheckpointRefStatus, CheckpointSpec,
    CheckpointSummary, CheckpointType, Decision, DeletionPolicy, HistoryEntry, LastApplied,
    PlanRef, PlanStatus, PlanSummaryStatus, Project, ProjectPhase, ProjectRef, ProjectStatus,
    ResourceCost, SecretKeyRef,
};
use crate::cost::{self, Estimate, Usage};
use crate::gate::effective::{EffectivePolicy, ProjectFacts};
use crate::gate::{self, CostFacts, GateDecision, GateInput};
use crate::plan::{Plan, PlanError, PlanSummary, SavedPlan};
use crate::render::{RenderOptions, Rendered, render};
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
};
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
        let mut run = Run::new(&project, &ctx);
        let result = if project.meta().deletion_timestamp.is_some() {
            run.cleanup().await
        } else if !project.finalizers().iter().any(|f| f == FINALIZER) {
            run.add_finalizer().await.map(|()| Action::await_change())
        } else {
            run.apply().await
        };
        if let Err(err) = &result {
            run.note_retry(err).await;
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
        }
    }

    fn rendered(&self) -> Result<&Rendered, ReconcileError> {
        if let Some(rendered) = self.rendered.get() {
            return Ok(rendered);
        }
        let rendered = render(self.project, &self.ctx.catalog, &RenderOptions::default())?;
        Ok(self.rendered.get_or_init(|| rendered))
    }

    fn projects(&self) -> Api<Project> {
        Api::namespaced(self.ctx.client.clone(), &self.namespace)
    }

    fn checkpoints(&self) -> Api<Checkpoint> {
        Api::namespaced(self.ctx.client.clone(), &self.namespace)
    }

    fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.ctx.client.clone(), &self.namespace)
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
        let ws = Workspace::new(self.work_dir()).with_redactor(&self.sensitive_inputs());
        match &self.ctx.config.backend_kubeconfig {
            Some(path) => ws.with_env("KUBE_CONFIG_PATH", path.to_string_lossy()),
            None => ws.with_env("KUBE_IN_CLUSTER_CONFIG", "true"),
        }
    }

    /// Records in status why the reconcile will be retried (a held state lock, a network
    /// error), so `kubectl describe` shows it and not only the controller's log. Best
    /// effort: the error itself is what the caller acts on.
    async fn note_retry(&mut self, err: &ReconcileError) {
        if matches!(err, ReconcileError::Kube(_)) {
            return;
        }
        let message = self
            .sensitive_inputs()
            .redact(&format!("retrying in 15s after: {err}"));
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
            plans::delete_except(&self.secrets(), self.project, None).await?;
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
        plans::store(&self.secrets(), self.project, &outcome.saved).await?;
        plans::delete_except(&self.secrets(), self.project, Some(&outcome.saved.id)).await?;
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
                let name = self
                    .open_checkpoint(ask, &outcome.saved, &summary, estimate.as_ref(), budget)
                    .await?;
                self.status.checkpoint_ref = Some(CheckpointRefStatus { name: name.clone() });
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
    ) -> Result<String, ReconcileError> {
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
        let name = format!("{}-{prefix}{short}", self.name);
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
        let mut checkpoint = Checkpoint::new(&name, spec);
        checkpoint.metadata.namespace = Some(self.namespace.clone());
        checkpoint.metadata.labels = Some(BTreeMap::from([(
            PROJECT_LABEL.to_owned(),
            self.name.clone(),
        )]));
        checkpoint.metadata.owner_references =
            self.project.controller_owner_ref(&()).map(|o| vec![o]);
        match self
            .checkpoints()
            .create(&PostParams::default(), &checkpoint)
            .await
        {
            Ok(_) => {
                self.ctx.metrics.checkpoint_opened();
                self.event(
                    EventType::Normal,
                    "CheckpointOpened",
                    &format!(
                        "{checkpoint_type:?} checkpoint {name} opened: {}",
                        checkpoint.spec.reasons.join("; ")
                    ),
                )
                .await;
            }
            // Opened by an earlier run that died before recording it in status.
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(err) => return Err(err.into()),
        }
        // The Checkpoint reconciler marks it Pending; recording it in our status comes first,
        // so a failure from here on can never leave an unreferenced checkpoint behind.
        Ok(name)
    }

    /// Marks every undecided checkpoint of this Project Superseded: their plans will never
    /// be applied. Covers the referenced one and any a failed run opened without recording.
    async fn supersede_pending(&mut self) -> Result<(), ReconcileError> {
        self.status.checkpoint_ref = None;
        let params =
            kube::api::ListParams::default().labels(&format!("{PROJECT_LABEL}={}", self.name));
        for cp in self.checkpoints().list(&params).await?.items {
            let status = cp.status.clone().unwrap_or_default();
            let open = status.decision.is_none()
                && !matches!(
                    status.phase,
                    Some(CheckpointPhase::Superseded | CheckpointPhase::Expired)
                );
            if !open {
                continue;
            }
            let name = cp.name_any();
            set_phase(&self.checkpoints(), &name, CheckpointPhase::Superseded).await?;
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
        let Some(checkpoint) = self.checkpoints().get_opt(&reference.name).await? else {
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
                plans::restore(
                    &self.secrets(),
                    self.project,
                    &plan.id,
                    &plan.digest,
                    &self.work_dir().join(PLAN_FILE),
                )
                .await?
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
        self.write_outputs(&ws).await?;
        plans::delete_except(&self.secrets(), self.project, None).await?;
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
        let name = self.status.checkpoint_ref.as_ref()?.name.clone();
        self.checkpoints()
            .get_opt(&name)
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
        // A failed first apply may have created resources: only a Project that never ran
        // an apply at all has nothing to destroy.
        let nothing_applied = self.status.last_applied.is_none()
            && !self.status.history.iter().any(|h| h.outcome == "Failed");
        if self.project.spec.deletion_policy == DeletionPolicy::Orphan || nothing_applied {
            self.supersede_pending().await?;
            plans::delete_except(&self.secrets(), self.project, None).await?;
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
                self.remove_state().await?;
                self.remove_finalizer().await?;
            }
            return Ok(action);
        }
        Ok(Action::await_change())
    }

    /// Removes the Terraform state Secret of the `kubernetes` backend after a destroy.
    async fn remove_state(&self) -> Result<(), ReconcileError> {
        let backend = self.project.spec.backend.clone().unwrap_or_default();
        if backend.backend_type != api::BackendType::Kubernetes {
            return Ok(());
        }
        let suffix = backend
            .kubernetes
            .and_then(|k| k.secret_suffix)
            .unwrap_or_else(|| self.name.clone());
        match self
            .secrets()
            .delete(&format!("tfstate-default-{suffix}"), &Default::default())
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

//! Planning: decide what the normal loop does next, render, plan, price, and let the gate
//! decide between applying at once and asking a person.

use super::job::{Credentials, JobRun};
use super::steps::{Facts, PlanFacts, Step, next_step, require_review};
use super::*;
use crate::gate::namespace::NamespaceCheck;
use crate::runner_job::PlanMode;
use crate::sla::{SlaDurations, SlaError};

impl Run<'_> {
    /// The normal (not deleting) loop: [`next_step`] decides, this does the I/O.
    pub(super) async fn apply(&mut self) -> Result<Action, ReconcileError> {
        let problems = self.validation_problems();
        let mut facts = Facts {
            suspended: self.project.spec.suspend,
            spec_valid: problems.is_empty(),
            phase: self.status.phase,
            plan: None,
        };
        if facts.spec_valid
            && !facts.suspended
            && let Some(action) = self.refuse_outside_allow_list().await?
        {
            return Ok(action);
        }
        if facts.spec_valid && !facts.suspended {
            if let Some(action) = self.rollback_on_request().await? {
                return Ok(action);
            }
            self.load_rollback().await?;
        }
        let mut plan_key = String::new();
        loop {
            return match next_step(&facts) {
                Step::Suspend => {
                    if self.status.phase != Some(ProjectPhase::Suspended) {
                        self.transition(
                            ProjectPhase::Suspended,
                            "Suspended",
                            "spec.suspend is true: no Terraform runs until it is false",
                        )
                        .await?;
                    }
                    Ok(Action::await_change())
                }
                Step::RejectSpec => {
                    self.status.observed_generation = self.generation();
                    self.transition(ProjectPhase::Failed, "InvalidSpec", &problems)
                        .await?;
                    Ok(Action::await_change())
                }
                Step::CheckStateAndPlanKey => {
                    if let Some(action) = self.guard_state().await? {
                        return Ok(action);
                    }
                    plan_key = self.plan_key().await?;
                    if let Some(action) = self.guard_lock(&plan_key).await? {
                        return Ok(action);
                    }
                    let same_generation = self.status.observed_generation == self.generation();
                    facts.plan = Some(PlanFacts {
                        current: same_generation
                            && self
                                .status
                                .plan
                                .as_ref()
                                .is_some_and(|p| p.inputs_digest == plan_key),
                        refused: same_generation
                            && self.status.plan_failed_for.as_deref() == Some(plan_key.as_str()),
                        drift_due: self.drift_due(),
                    });
                    continue;
                }
                Step::Replan => self.replan(&plan_key, false).await,
                Step::FollowDecision => self.follow_decision(false).await,
                Step::ResumeApply => self.apply_saved(None).await,
                Step::CheckDrift => self.check_drift(&plan_key).await,
                Step::WaitForChange => self.wait_for_change().await,
            };
        }
    }

    pub(super) fn validation_problems(&self) -> String {
        let mut problems: Vec<String> = api::validate_project(self.project)
            .iter()
            .map(ToString::to_string)
            .collect();
        if let Err(err) = crate::catalog::validate_project(self.project, &self.ctx.catalog) {
            problems.push(err.to_string());
        }
        if let Err(err) = self.sla_durations() {
            problems.push(format!("spec.approval.sla: {err}"));
        }
        if let Some(detection) = &self.project.spec.drift_detection
            && let Err(err) = crate::drift::Schedule::new(&detection.interval, "")
        {
            problems.push(err.to_string());
        }
        problems.join("; ")
    }

    /// The deadlines the Project's own `spec.approval.sla` asks for, if any (checked
    /// before anything runs).
    pub(super) fn sla_durations(&self) -> Result<Option<SlaDurations>, SlaError> {
        crate::sla::of_project(self.project, &self.ctx.config.sla)
    }

    /// The deadlines a checkpoint opened now gets: the effective policy's SLA (the
    /// ApprovalPolicies' and the Project's, the shorter of each) over the controller's
    /// defaults.
    pub(super) fn checkpoint_sla(&self) -> Result<Option<SlaDurations>, SlaError> {
        let effective = self
            .status
            .effective_policy
            .as_ref()
            .and_then(|p| p.sla.as_ref());
        match effective {
            Some(sla) => self
                .ctx
                .config
                .sla
                .resolve(&self.project.spec.environment, Some(sla)),
            None => self.sla_durations(),
        }
    }

    /// Digest of everything a plan depends on: rendered inputs, modules, Terraform version,
    /// the gating spec, secret input versions, the policy set, and the re-plan annotation.
    pub(super) async fn plan_key(&self) -> Result<String, ReconcileError> {
        let rendered = self.rendered()?;
        let version = self.ctx.runner.version().await?;
        let mut hasher = Sha256::new();
        hasher.update(rendered.inputs_digest.as_bytes());
        hasher.update(format!("\0{:?}\0{}", version.flavour, version.version).as_bytes());
        // What the gate reads from the spec: a budget or approval change is gated anew (a
        // raised budget must open a BudgetIncrease checkpoint even when nothing else moved).
        let gating =
            serde_json::to_string(&(&self.project.spec.budget, &self.project.spec.approval))
                .map_err(|source| ReconcileError::Encode {
                    what: "plan key",
                    source: source.into(),
                })?;
        hasher.update(format!("\0gate\0{gating}").as_bytes());
        hasher.update(format!("\0secrets\0{}", self.secret_input_versions().await?).as_bytes());
        // A policy change judges the plan again.
        hasher.update(format!("\0policies\0{}", self.policies().await?.digest()).as_bytes());
        // A new value of the re-plan annotation is a new key: plan again on request.
        if let Some(token) = self.project.annotations().get(api::REPLAN_ANNOTATION) {
            hasher.update(format!("\0replan\0{token}").as_bytes());
        }
        Ok(hex::encode(hasher.finalize()))
    }

    /// Writes the rendered configuration into the working directory (initialising it is
    /// the runner's `init_and_*`).
    pub(super) fn write_workspace(&self) -> Result<Workspace, ReconcileError> {
        self.rendered()?.write_to(&self.work_dir())?;
        Ok(self.workspace())
    }

    /// Makes a new plan (a destroy plan when `destroy`), prices it, and lets the gate decide.
    pub(super) async fn replan(
        &mut self,
        plan_key: &str,
        destroy: bool,
    ) -> Result<Action, ReconcileError> {
        self.supersede_pending().await?;
        self.status.plan = None;
        self.status.observed_generation = self.generation();
        let (phase, reason) = if destroy {
            (ProjectPhase::Destroying, "PlanningDestroy")
        } else {
            (ProjectPhase::Planning, "Planning")
        };
        // Before credentials are minted: they would age while the Project waits.
        if let Some(action) = self.take_slot(phase).await? {
            return Ok(action);
        }
        let tag = format!("key-{}", plan_key.get(..16).unwrap_or(plan_key));
        // A runner Job's are obtained with its run (`run_in_job`).
        if self.ctx.config.job_runner.is_none()
            && let Some(action) = self.obtain_credentials(&tag, true).await?
        {
            return Ok(action);
        }
        self.transition(phase, reason, "rendering and planning")
            .await?;

        let mode = if destroy {
            PlanMode::Destroy
        } else {
            PlanMode::Changes
        };
        let ws = self.write_workspace()?;
        let credentials = Credentials {
            tag: &tag,
            inputs: true,
        };
        let planned = match self.ctx.config.job_runner.clone() {
            Some(runner) => match self
                .plan_in_job(&runner, mode, plan_key, credentials, &ws, PLAN_FILE)
                .await?
            {
                JobRun::Running(action) => return Ok(action),
                JobRun::Died { message, .. } => return self.plan_died(plan_key, &message).await,
                JobRun::Ended(planned) => planned.map(|(outcome, json)| (outcome, Some(json))),
            },
            None => self
                .ctx
                .runner
                .init_and_plan(&ws, &INIT_OPTIONS, &PlanRequest::of_mode(mode, PLAN_FILE))
                .await
                .map(|outcome| (outcome, None)),
        };
        let (outcome, json) = match planned {
            Ok(planned) => {
                self.status.plan_failed_for = None;
                self.lock_released();
                planned
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
            Err(err) => {
                self.remember_job_ended().await?;
                return Err(err.into());
            }
        };
        let json = match json {
            Some(json) => json,
            None => self.ctx.runner.show_plan_json(&ws, &outcome.saved).await?,
        };
        let model = Plan::from_json(&json)?;
        let summary = model.summary();
        let sensitive = self.sensitive_inputs();
        let review = model.review(Some(&sensitive));
        let policy_document = model.redacted(Some(&sensitive)).into_value();
        drop(model);
        let region = self
            .project
            .spec
            .cloud
            .as_ref()
            .map_or("us-east-1", |c| c.aws.region.as_str());
        let estimate = cost::estimate_with_book(&json, region, &Usage::none(), self.ctx.price_book);
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
        let policy_report = self.judge_plan(&policy_document, facts.as_ref()).await?;
        drop(policy_document);
        let violations = super::policy::policy_reasons(&policy_report);
        self.status.policy = Some(policy_report);
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
        let namespace = if destroy {
            NamespaceCheck::None
        } else {
            self.claim_namespace_budget(&outcome.saved.id, estimate.as_ref())
                .await?
        };
        self.note_namespace_budget(&namespace);
        let decision = gate::evaluate(&GateInput {
            environment: &self.project.spec.environment,
            first_apply: self.status.last_applied.is_none(),
            destroy_project: destroy,
            summary: &summary,
            cost: facts.as_ref(),
            budget: budget_check,
            namespace: &namespace,
            policy: &policy,
            defaults: &self.ctx.config.gate,
            policy_violations: &violations,
        });
        let decision = match &self.restore_drift {
            Some(report) => crate::drift::restore_decision(decision, report),
            None => decision,
        };
        let decision = require_review(decision, self.status.review_required.as_deref());
        self.status.effective_policy = Some(api::EffectivePolicyStatus {
            policies: policy.policies.clone(),
            auto_approve: policy.auto_approve.iter().copied().collect(),
            cost_increase_threshold: money(policy.cost_increase_threshold),
            budget: budget.map(money),
            not_allowed: policy.not_allowed.clone(),
            sla: policy.sla.clone(),
            notifications: policy.notifications.clone(),
        });
        let needs_person = matches!(decision, GateDecision::RequireCheckpoint { .. });
        if outcome.status == TfPlanStatus::NoChanges && !destroy && !needs_person {
            self.delete_plans_except(None).await?;
            self.status.plan = Some(plan_status(&outcome.saved, plan_key, &summary));
            self.status.cost = estimate.as_ref().map(cost_status);
            self.status.checkpoint_ref = None;
            self.status.review_required = None;
            if let Some(action) = self.ask_for_undone_step().await? {
                return Ok(action);
            }
            self.transition(
                ProjectPhase::Ready,
                "UpToDate",
                "infrastructure matches the Project",
            )
            .await?;
            return self.wait_for_change().await;
        }
        self.plans().store(&outcome.saved).await?;
        self.audit(AuditAction::PlanMade, |e| {
            e.plan_digest = Some(outcome.saved.digest.clone());
            e.cost = estimate.as_ref().map(|c| AuditCost {
                before: Some(money(c.previous_monthly_cost)),
                after: money(c.total_monthly_cost),
                budget: budget.map(money),
            });
        });
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
                    review,
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
    pub(super) async fn accept_approved_budget(&mut self) {
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
    pub(super) async fn effective_policy(&self) -> Result<EffectivePolicy, ReconcileError> {
        let namespace = Api::<Namespace>::all(self.ctx.client.clone())
            .get(&self.namespace)
            .await
            .during(ApiStep::ReadPolicies)?;
        let labels = namespace.metadata.labels.unwrap_or_default();
        let policies = Api::<api::ApprovalPolicy>::all(self.ctx.client.clone())
            .list(&ListParams::default())
            .await
            .during(ApiStep::ReadPolicies)?;
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

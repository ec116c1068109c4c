//! Checkpoints: open one for a plan the gate will not pass alone, supersede stale ones,
//! and act on a verified decision.

use super::*;
use crate::retention::{self, Held};
use crate::sla::Schedule;

impl Run<'_> {
    pub(super) async fn open_checkpoint(
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
            review,
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
        let requested_at = jiff::Timestamp::now();
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
            requested_at: MicroTime(requested_at),
            sla: self.checkpoint_schedule(requested_at),
            approvers,
            requested_by: self
                .project
                .annotations()
                .get(api::LAST_CHANGED_BY_ANNOTATION)
                .cloned(),
            effective_policy: self.status.effective_policy.clone(),
            policy: self.status.policy.clone(),
            secret: None,
        };
        let reference = self.create_checkpoint(&tail, spec).await?;
        self.store_review(&reference, &review).await;
        Ok(reference)
    }

    /// Writes the checkpoint's plan review into the ConfigMap `<checkpoint>-review`, owned by
    /// the checkpoint, where a TO's RBAC (`tollgate-approver`) can read it and `tollgate
    /// checkpoint show` prints it. Best effort: without it `show` lists addresses only.
    async fn store_review(
        &self,
        reference: &CheckpointRefStatus,
        review: &crate::plan::PlanReview,
    ) {
        let namespace = reference
            .namespace
            .clone()
            .unwrap_or_else(|| self.namespace.clone());
        let checkpoints = self.checkpoints_in(reference.namespace.as_deref());
        let result = async {
            let checkpoint = checkpoints
                .get(&reference.name)
                .await
                .during(ApiStep::ReadCheckpoint)?;
            let text = serde_json::to_string(review)
                .map_err(|source| ReconcileError::Encode {
                    what: "plan review",
                    source: source.into(),
                })?;
            let name = api::review_config_map_name(&reference.name);
            let config_map = serde_json::json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "labels": {PROJECT_LABEL: self.name, api::REVIEW_CHECKPOINT_LABEL: reference.name},
                    "ownerReferences": checkpoint.controller_owner_ref(&()).map(|o| vec![o]),
                },
                "data": {api::REVIEW_KEY: text},
            });
            Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(self.ctx.client.clone(), &namespace)
                .patch(&name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&config_map))
                .await
                .during(ApiStep::OpenCheckpoint)?;
            Ok::<(), ReconcileError>(())
        }
        .await;
        if let Err(err) = result {
            tracing::warn!(checkpoint = %reference.name, error = %err, "cannot store the plan review; `tollgate checkpoint show` will list addresses only");
        }
    }

    /// The deadlines of a checkpoint opened at `requested_at`. A spec whose own SLA does not
    /// resolve never gets here (InvalidSpec), and the policies' SLA merged in is kept in
    /// order by construction: a failure here is a bug, said in the log, and the checkpoint
    /// opens without deadlines rather than not at all.
    pub(super) fn checkpoint_schedule(
        &self,
        requested_at: jiff::Timestamp,
    ) -> Option<crate::api::Sla> {
        let schedule = self
            .checkpoint_sla()
            .and_then(|d| d.map(|d| Schedule::open(requested_at, &d)).transpose());
        match schedule {
            Ok(schedule) => schedule.map(|s| s.to_api()),
            Err(err) => {
                tracing::error!(project = %self.name, error = %err, "checkpoint deadlines cannot be computed; the checkpoint gets none");
                None
            }
        }
    }

    /// Whether the Project's namespace is being deleted (then nothing new can be created in
    /// it). Unknown (no permission, an error) counts as no: creating refuses it anyway.
    pub(super) async fn namespace_terminating(&self) -> bool {
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
    pub(super) async fn create_checkpoint(
        &self,
        tail: &str,
        spec: CheckpointSpec,
    ) -> Result<CheckpointRefStatus, ReconcileError> {
        let checkpoint_type = spec.checkpoint_type;
        let reasons = spec.reasons.join("; ");
        let mut local = Checkpoint::new(&format!("{}-{tail}", self.name), spec.clone());
        local.metadata.namespace = Some(self.namespace.clone());
        let environment = (
            crate::reconcile::checkpoint::ENVIRONMENT_LABEL.to_owned(),
            self.project.spec.environment.clone(),
        );
        local.metadata.labels = Some(BTreeMap::from([
            (PROJECT_LABEL.to_owned(), self.name.clone()),
            environment.clone(),
        ]));
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
                Err(err) => return Err(ApiStep::OpenCheckpoint.failed(err)),
            }
        };
        let state_namespace = self.ctx.config.state_namespace.clone();
        let mut spec = spec;
        spec.project_ref.namespace = Some(self.namespace.clone());
        let name = format!("{}-{tail}", secret_suffix(&self.namespace, &self.name));
        let mut remote = Checkpoint::new(&name, spec);
        remote.metadata.namespace = Some(state_namespace.clone());
        let mut labels = project_labels(&self.namespace, &self.name);
        labels.insert(environment.0, environment.1);
        remote.metadata.labels = Some(labels);
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
            Err(err) => return Err(ApiStep::OpenCheckpoint.failed(err)),
        }
        // The Checkpoint reconciler marks it Pending; recording it in our status comes first,
        // so a failure from here on can never leave an unreferenced checkpoint behind.
        Ok(CheckpointRefStatus {
            name,
            namespace: Some(state_namespace),
        })
    }

    pub(super) async fn checkpoint_opened(
        &self,
        checkpoint_type: CheckpointType,
        name: &str,
        namespace: Option<&str>,
        reasons: &str,
    ) {
        self.ctx.metrics.checkpoint_opened();
        self.audit(AuditAction::CheckpointOpened, |e| {
            e.checkpoint = Some(name.to_owned());
            e.plan_digest = self.status.plan.as_ref().map(|p| p.digest.clone());
            e.reason = Some(truncate(reasons, 1000));
        });
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
    /// Then deletes the oldest final ones beyond `--keep-checkpoints` ([`crate::retention`]).
    pub(super) async fn supersede_pending(&mut self) -> Result<(), ReconcileError> {
        self.status.checkpoint_ref = None;
        let state_namespace = self.ctx.config.state_namespace.clone();
        let here =
            kube::api::ListParams::default().labels(&format!("{PROJECT_LABEL}={}", self.name));
        let there = kube::api::ListParams::default().labels(&format!(
            "{PROJECT_NAMESPACE_LABEL}={},{PROJECT_LABEL}={}",
            self.namespace, self.name
        ));
        let mut open = Vec::new();
        let mut held = Vec::new();
        for (namespace, params) in [(None, here), (Some(state_namespace.as_str()), there)] {
            let listed = self
                .checkpoints_in(namespace)
                .list(&params)
                .await
                .during(ApiStep::ReadCheckpoint)?;
            for cp in listed.items {
                let status = cp.status.clone().unwrap_or_default();
                // A Credential checkpoint asks for what every plan needs: it stays open
                // across re-plans and closes when the credentials are there.
                let undecided = status.decision.is_none()
                    && cp.spec.checkpoint_type != CheckpointType::Credential
                    && !matches!(
                        status.phase,
                        Some(CheckpointPhase::Superseded | CheckpointPhase::Expired)
                    );
                held.push(Held {
                    key: (namespace.map(str::to_owned), cp.name_any()),
                    requested_at: cp.spec.requested_at.0,
                    phase: if undecided {
                        Some(CheckpointPhase::Superseded)
                    } else {
                        status.phase
                    },
                });
                if undecided {
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
            // The checkpoint itself may be deleted later (--keep-checkpoints): the audit
            // trail keeps that it was never decided.
            self.audit(AuditAction::CheckpointSuperseded, |e| {
                e.checkpoint = Some(name.clone());
                e.plan_digest = cp.spec.plan_ref.as_ref().map(|p| p.digest.clone());
                e.reason = Some("the Project changed; a new plan is made".to_owned());
            });
            self.event(
                EventType::Normal,
                "CheckpointSuperseded",
                &format!("checkpoint {name} superseded: the Project changed, a new plan is made"),
            )
            .await;
        }
        self.delete_old_checkpoints(&held).await
    }

    /// Deletes the final checkpoints of this Project beyond the newest
    /// `--keep-checkpoints` (never an undecided one, nor the one its status references on
    /// the server); their record stays in `status.history` and the audit trail.
    async fn delete_old_checkpoints(
        &self,
        held: &[Held<(Option<String>, String)>],
    ) -> Result<(), ReconcileError> {
        let referenced = self
            .project
            .status
            .as_ref()
            .and_then(|s| s.checkpoint_ref.as_ref())
            .map(|r| (r.namespace.clone(), r.name.clone()));
        let keep = self.ctx.config.keep_checkpoints;
        for (namespace, name) in retention::to_delete(held, keep, referenced.as_ref()) {
            match self
                .checkpoints_in(namespace.as_deref())
                .delete(&name, &kube::api::DeleteParams::default())
                .await
            {
                Ok(_) => {
                    tracing::info!(checkpoint = %name, keep, "deleted a final checkpoint beyond --keep-checkpoints")
                }
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(err) => return Err(ApiStep::CloseCheckpoint.failed(err)),
            }
        }
        Ok(())
    }

    /// Acts on the decision of the pending checkpoint.
    pub(super) async fn follow_decision(
        &mut self,
        destroy: bool,
    ) -> Result<Action, ReconcileError> {
        let (Some(reference), Some(plan)) =
            (self.status.checkpoint_ref.clone(), self.status.plan.clone())
        else {
            return Ok(Action::await_change());
        };
        let Some(checkpoint) = self.referenced(&reference).await? else {
            // Someone deleted the checkpoint: ask again with a fresh plan.
            self.status.checkpoint_ref = None;
            self.status.plan = None;
            self.save().await?;
            return Ok(Action::requeue(std::time::Duration::from_secs(1)));
        };
        let status = checkpoint.status.clone().unwrap_or_default();
        if status.phase == Some(CheckpointPhase::Expired) {
            return self
                .checkpoint_expired(&reference.name, &plan.id, destroy)
                .await;
        }
        if status.decision.is_some()
            && let Err(why) =
                crate::reconcile::checkpoint::verify_decision(&checkpoint, &self.ctx.seal_key)
        {
            return self.refuse_unverified(&reference.name, &why, destroy).await;
        }
        if let Some(decision) = status.decision {
            self.audit(AuditAction::CheckpointDecided, |e| {
                e.actor = status.decided_by.clone().unwrap_or_default();
                e.checkpoint = Some(reference.name.clone());
                e.decision = Some(format!("{decision:?}"));
                e.plan_digest = Some(plan.digest.clone());
                e.reason = status.reason.as_deref().map(|r| truncate(r, 1000));
            });
        }
        match status.decision {
            None => Ok(Action::await_change()),
            Some(decision)
                if checkpoint.spec.checkpoint_type == CheckpointType::FailureEscalation =>
            {
                self.follow_escalation(&reference.name, decision, status.decided_by, &plan)
                    .await
            }
            // Asked for by a module after its apply ([`Run::after_apply`]): nothing to apply.
            Some(decision)
                if checkpoint.spec.checkpoint_type == CheckpointType::ManualOperation =>
            {
                let by = status.decided_by.unwrap_or_else(|| "unknown".into());
                self.follow_manual_operation(&checkpoint, decision, by, &plan)
                    .await
            }
            Some(Decision::Rejected | Decision::Abandon) => {
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
            Some(Decision::Approved | Decision::Retry | Decision::Rollback) => {
                let approved_digest = checkpoint.spec.plan_ref.as_ref().map(|p| p.digest.as_str());
                if approved_digest != Some(plan.digest.as_str()) {
                    // Never apply a plan other than the one approved.
                    self.status.plan = None;
                    self.save().await?;
                    return Ok(Action::requeue(std::time::Duration::from_secs(1)));
                }
                if checkpoint.spec.checkpoint_type == CheckpointType::BudgetIncrease {
                    self.admit_over_namespace_budget(
                        &reference.name,
                        &plan.id,
                        status.decided_by.clone(),
                    )
                    .await?;
                }
                let by = status.decided_by.unwrap_or_else(|| "unknown".into());
                self.record_policy_override(&checkpoint, &plan, &by);
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

    /// Approving a plan the policies deny is an override: the history and the audit trail
    /// name who overrode which violations.
    fn record_policy_override(&mut self, checkpoint: &Checkpoint, plan: &PlanStatus, by: &str) {
        let Some(report) = checkpoint
            .spec
            .policy
            .as_ref()
            .filter(|r| !r.denied.is_empty() || r.error.is_some())
        else {
            return;
        };
        let overridden = super::policy::policy_reasons(report).join("; ");
        self.push_history(&plan.id, "PolicyOverridden", Some(by.to_owned()));
        self.audit(AuditAction::PolicyOverridden, |e| {
            e.actor = by.to_owned();
            e.checkpoint = checkpoint.metadata.name.clone();
            e.plan_digest = Some(plan.digest.clone());
            e.reason = Some(truncate(&overridden, 1000));
        });
    }

    /// Nobody decided in time: nothing is applied, the saved plan is released, and the
    /// Project says so and how to ask again.
    async fn checkpoint_expired(
        &mut self,
        checkpoint: &str,
        plan_id: &str,
        destroy: bool,
    ) -> Result<Action, ReconcileError> {
        self.push_history(plan_id, "Expired", None);
        self.delete_plans_except(None).await?;
        let message = format!(
            "checkpoint {checkpoint} expired without a decision; plan {plan_id} was not applied and has been discarded"
        );
        if destroy {
            self.transition(ProjectPhase::Destroying, "DestroyExpired", &format!("{message}. Set the annotation {} on the Project to a new value to ask again, or set spec.deletionPolicy: Orphan to delete it without destroying", api::REPLAN_ANNOTATION)).await?;
        } else {
            self.transition(
                ProjectPhase::Expired,
                "CheckpointExpired",
                &format!(
                    "{message}. Set the annotation {} on the Project to a new value (or change the spec) to plan and ask again",
                    api::REPLAN_ANNOTATION
                ),
            )
            .await?;
        }
        Ok(Action::await_change())
    }

    /// A decision admission never verified changes nothing: the Project keeps waiting and
    /// says why (once as a Warning Event) and what to do.
    pub(super) async fn refuse_unverified(
        &mut self,
        checkpoint: &str,
        why: &crate::seal::SealError,
        destroy: bool,
    ) -> Result<Action, ReconcileError> {
        const REASON: &str = "DecisionUnverified";
        let message = crate::reconcile::checkpoint::unverified_message(checkpoint, why);
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

    pub(super) async fn decided_by(&self) -> Option<String> {
        let reference = self.status.checkpoint_ref.as_ref()?;
        self.checkpoints_in(reference.namespace.as_deref())
            .get_opt(&reference.name)
            .await
            .ok()
            .flatten()?
            .status?
            .decided_by
    }
}

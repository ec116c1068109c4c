//! A saved plan that is not the approved one (tampered with), gone or unreadable is a
//! security event, not a retry: nothing is applied, the approval is void, people are told,
//! and a new plan needs a new decision.

use super::*;

/// Condition saying whether the last approved plan read back was the one approved.
pub(super) const PLAN_INTEGRITY: &str = "PlanIntegrity";

impl Run<'_> {
    /// The approved plan `plan` from its Secrets (here, then where older versions kept
    /// them). `Ok(Err(problem))`: what was found is not the approved plan; `Err`: the API
    /// could not be asked (retried).
    pub(super) async fn restore_plan(
        &self,
        plan: &PlanStatus,
    ) -> Result<Result<SavedPlan, PlanStoreProblem>, ReconcileError> {
        let path = self.work_dir().join(PLAN_FILE);
        let store = self.plans();
        let restored = match store.restore(&plan.id, &plan.digest, &path).await {
            Err(ReconcileError::PlanStore {
                problem: PlanStoreProblem::NotStored,
                ..
            }) => {
                match PlanStore::legacy(self.secrets(), &self.name)
                    .restore(&plan.id, &plan.digest, &path)
                    .await
                {
                    // Name the Secret where this version keeps plans, not the legacy one.
                    Err(ReconcileError::PlanStore {
                        problem: PlanStoreProblem::NotStored,
                        ..
                    }) => {
                        return Ok(Err(PlanStoreProblem::ChunkMissing(
                            store.secret_name(&plan.id, 0),
                        )));
                    }
                    other => other,
                }
            }
            other => other,
        };
        match restored {
            Ok(saved) => Ok(Ok(saved)),
            Err(ReconcileError::PlanStore { problem, .. }) => Ok(Err(problem)),
            Err(other) => Err(other),
        }
    }

    /// Refuses the approved plan `plan` because of `problem`: a Warning Event and the
    /// `PlanIntegrity` condition naming the Secret and the digests, an audit record, the
    /// approved checkpoint told (which notifies `ApplyFailed`), the approval voided, and a
    /// new plan that needs a person whatever the policy pre-approves.
    pub(super) async fn refuse_saved_plan(
        &mut self,
        plan: &PlanStatus,
        problem: &PlanStoreProblem,
        checkpoint: Option<&CheckpointRefStatus>,
        decided_by: Option<String>,
    ) -> Result<Action, ReconcileError> {
        let reason = match problem {
            PlanStoreProblem::DigestMismatch { .. } => "PlanTampered",
            PlanStoreProblem::NotStored | PlanStoreProblem::ChunkMissing(_) => "PlanMissing",
            PlanStoreProblem::Unreadable { .. } | PlanStoreProblem::Codec(_) => "PlanUnreadable",
        };
        let approval = checkpoint.map_or_else(
            || "its pre-approval".to_owned(),
            |c| format!("checkpoint {}'s approval", c.name),
        );
        let message = format!(
            "approved plan {} (digest {}) was not applied: {problem} (plans are kept in namespace {}). \
             {approval} is void; a new plan is being made and needs a new decision. \
             Find out who wrote or deleted the Secret (the apiserver's audit log) before deciding it",
            plan.id, plan.digest, self.ctx.config.state_namespace
        );
        self.event(EventType::Warning, reason, &message).await;
        self.audit(AuditAction::PlanRefused, |e| {
            e.plan_digest = Some(plan.digest.clone());
            e.reason = Some(truncate(&message, 1000));
        });
        self.ctx.metrics.applied("refused");
        self.record_apply_outcome(checkpoint, Err(&message)).await;
        self.push_history(&plan.id, "Refused", decided_by);
        let generation = self.generation();
        conditions::set(
            &mut self.status.conditions,
            PLAN_INTEGRITY,
            false,
            reason,
            &message,
            generation,
        );
        self.status.review_required = Some(format!(
            "the previously approved plan {} was refused ({reason}): review this plan as new",
            plan.id
        ));
        self.status.plan = None;
        self.status.checkpoint_ref = None;
        // Nothing of the refused plan may be applied later (restored from a Secret).
        self.delete_plans_except(None).await?;
        self.transition(ProjectPhase::Planning, "Replanning", &message)
            .await?;
        Ok(Action::requeue(Duration::from_secs(1)))
    }

    /// After an apply of a plan read back intact, a `PlanIntegrity=False` left by a refused
    /// plan becomes `True` (Projects that never had one get no condition).
    pub(super) fn plan_verified(&mut self) {
        let generation = self.generation();
        if self
            .status
            .conditions
            .iter()
            .any(|c| c.type_ == PLAN_INTEGRITY && c.status == "False")
        {
            conditions::set(
                &mut self.status.conditions,
                PLAN_INTEGRITY,
                true,
                "Verified",
                "the last applied plan was the approved one",
                generation,
            );
        }
    }
}

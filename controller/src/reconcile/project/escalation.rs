//! A failed apply is a person's call: a `FailureEscalation` checkpoint shows the redacted
//! error and what the apply changed before it failed (read from the state), and its
//! decision is `Retry`, `Rollback` or `Abandon`. Transient failures are retried first, a
//! bounded number of times.

use super::*;

/// Attempts of an apply that failed transiently (throttling, network, a state lock not
/// released within `-lock-timeout`) before a person is asked; the reconcile backoff spaces
/// them (5 s, doubling).
pub(super) const APPLY_ATTEMPTS: u32 = 4;

impl Run<'_> {
    /// Whether a transiently failed apply may be tried again without asking anyone.
    pub(super) fn may_retry_apply(&self, err: &TerraformError) -> bool {
        err.is_retryable()
            && self
                .ctx
                .backoff
                .failures(&crate::reconcile::backoff_key(self.project))
                + 1
                < APPLY_ATTEMPTS
    }

    /// Opens the `FailureEscalation` checkpoint for the failed apply of `plan` and waits
    /// for its decision.
    pub(super) async fn escalate_failure(
        &mut self,
        plan: &PlanStatus,
        error: &str,
        ws: &Workspace,
    ) -> Result<Action, ReconcileError> {
        let (done, left) = self.changed_before_failure(plan, ws).await;
        let mut changes: Vec<String> = done
            .iter()
            .map(|a| format!("applied before the failure: {a}"))
            .chain(left.iter().map(|a| format!("not applied: {a}")))
            .take(LISTED_ADDRESSES)
            .collect();
        if done.is_empty() && left.is_empty() {
            changes.push(
                "what the apply changed could not be read from the state (see the controller log)"
                    .into(),
            );
        }
        let previous = self.status.revisions.first().map(|r| r.revision);
        let reasons = vec![
            format!("apply of plan {} failed: {error}", plan.id),
            format!(
                "Retry: apply plan {} again once the cause is fixed; if the state moved, a new plan is made and goes through the gate",
                plan.id
            ),
            match previous {
                Some(revision) => format!(
                    "Rollback: plan revision {revision} (the last applied) again; that plan goes through the gate"
                ),
                None => "Rollback: nothing was applied before; decide Retry or Abandon".into(),
            },
            "Abandon: drop this plan; the Project stays Failed until its spec changes".into(),
        ];
        let what = format!("apply of plan {} failed: {error}", plan.id);
        self.escalate(plan, "failed", "FailureEscalation", &what, changes, reasons)
            .await
    }

    /// Opens a `FailureEscalation` checkpoint `<project>-<kind>-<digest>-<time>` about
    /// `plan` (`what` happened), moves the Project to `AwaitingApproval` with `reason`, and
    /// waits for the decision.
    pub(super) async fn escalate(
        &mut self,
        plan: &PlanStatus,
        kind: &str,
        reason: &str,
        what: &str,
        changes: Vec<String>,
        reasons: Vec<String>,
    ) -> Result<Action, ReconcileError> {
        let spec = self
            .question(
                CheckpointType::FailureEscalation,
                Some(PlanRef {
                    id: plan.id.clone(),
                    digest: plan.digest.clone(),
                }),
                what,
                changes,
                reasons,
            )
            .await?;
        // One checkpoint per failure: a Retry that fails again must ask again, never find
        // the decided checkpoint of the previous failure under the same name.
        let short: String = plan.digest.chars().take(12).collect();
        let at = jiff::Timestamp::now().as_second();
        let reference = self
            .create_checkpoint(&format!("{kind}-{short}-{at}"), spec)
            .await?;
        let name = reference.name.clone();
        self.status.checkpoint_ref = Some(reference);
        self.transition(
            ProjectPhase::AwaitingApproval,
            reason,
            &format!(
                "{what}. Checkpoint {name} asks a person to decide Retry, Rollback or Abandon"
            ),
        )
        .await?;
        Ok(Action::await_change())
    }

    /// The failed plan's addresses split into those the state shows done and those a
    /// verification plan still wants to change. Best effort: empty when it cannot be told.
    async fn changed_before_failure(
        &mut self,
        plan: &PlanStatus,
        ws: &Workspace,
    ) -> (Vec<String>, Vec<String>) {
        let check = self
            .verification_plan(ws, &plan.id)
            .await
            .and_then(|(_, json)| Ok(Plan::from_json(&json)?.summary()));
        match check {
            Ok(summary) => split_done(&plan.summary.addresses, &summary),
            Err(err) => {
                tracing::warn!(error = %err, "cannot tell what the failed apply changed");
                (Vec::new(), Vec::new())
            }
        }
    }

    /// Acts on a verified decision of a `FailureEscalation` checkpoint.
    pub(super) async fn follow_escalation(
        &mut self,
        checkpoint: &str,
        decision: Decision,
        decided_by: Option<String>,
        plan: &PlanStatus,
    ) -> Result<Action, ReconcileError> {
        let by = decided_by.clone().unwrap_or_else(|| "unknown".into());
        // The plan was applied and its health checks failed: nothing is applied again.
        let unhealthy = self.unhealthy(plan);
        match decision {
            Decision::Retry if unhealthy => self.recheck_health(checkpoint, &by, plan).await,
            Decision::Retry => {
                self.transition(
                    ProjectPhase::Applying,
                    "Applying",
                    &format!(
                        "{by} decided Retry on checkpoint {checkpoint}: applying plan {} again",
                        plan.id
                    ),
                )
                .await?;
                self.apply_saved(None).await
            }
            Decision::Rollback => {
                // After failed health checks the last applied revision is the unhealthy one:
                // back to the one before (0, never kept, when there is none: said so).
                let revision = unhealthy.then(|| self.revision_before().unwrap_or(0));
                self.start_rollback(&format!("checkpoint {checkpoint}"), revision, &by, None)
                    .await
            }
            _ => {
                self.push_history(&plan.id, "Abandoned", decided_by);
                self.delete_plans_except(None).await?;
                self.status.checkpoint_ref = None;
                self.transition(
                    ProjectPhase::Failed,
                    "Abandoned",
                    &format!(
                        "{by} abandoned plan {} on checkpoint {checkpoint}{}; change the spec or set a new {} annotation to plan again",
                        plan.id,
                        if unhealthy {
                            " (it stays applied although its health checks fail)"
                        } else {
                            ""
                        },
                        api::REPLAN_ANNOTATION
                    ),
                )
                .await?;
                Ok(Action::await_change())
            }
        }
    }
}

/// `approved` (the failed plan's changed addresses) split into those no longer in the
/// verification plan's changes (done) and those still there (not applied, or tainted).
fn split_done(approved: &[String], check: &PlanSummary) -> (Vec<String>, Vec<String>) {
    let a = &check.addresses;
    let pending: std::collections::BTreeSet<&String> = a
        .create
        .iter()
        .chain(&a.update)
        .chain(&a.replace)
        .chain(&a.delete)
        .collect();
    approved
        .iter()
        .cloned()
        .partition(|address| !pending.contains(address))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn what_the_state_no_longer_wants_to_change_was_applied() {
        let mut check = PlanSummary::default();
        check.addresses.replace = vec!["terraform_data.app".into()];
        let approved = vec![
            "terraform_data.app".to_owned(),
            "terraform_data.replica[0]".to_owned(),
        ];
        let (done, left) = split_done(&approved, &check);
        assert_eq!(done, vec!["terraform_data.replica[0]".to_owned()]);
        assert_eq!(left, vec!["terraform_data.app".to_owned()]);
    }
}

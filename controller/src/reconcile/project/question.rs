//! Checkpoints that ask a person about something other than a plan's changes (a failed
//! apply or health check, a stuck lock, missing state, a module's manual step): their spec,
//! finding the one status references, and whether its decision is sealed.

use super::*;

impl Run<'_> {
    /// The spec of a checkpoint that asks a person about something other than a plan's
    /// changes (a failed apply, a stuck lock, missing state): the Project's approvers decide
    /// and its deadlines apply, as for any checkpoint.
    pub(super) async fn question(
        &self,
        checkpoint_type: CheckpointType,
        plan_ref: Option<PlanRef>,
        text: &str,
        changes: Vec<String>,
        reasons: Vec<String>,
    ) -> Result<CheckpointSpec, ReconcileError> {
        let requested_at = jiff::Timestamp::now();
        Ok(CheckpointSpec {
            checkpoint_type,
            project_ref: ProjectRef {
                name: self.name.clone(),
                namespace: None,
            },
            plan_ref,
            summary: CheckpointSummary {
                text: truncate(text, 1000),
                changes,
                ..CheckpointSummary::default()
            },
            reasons: reasons.into_iter().map(|r| truncate(&r, 500)).collect(),
            requested_at: MicroTime(requested_at),
            sla: self.checkpoint_schedule(requested_at),
            approvers: self.effective_policy().await?.approvers,
            requested_by: None,
            effective_policy: None,
            policy: None,
            secret: None,
        })
    }

    /// The checkpoint `reference` names, if it still exists.
    pub(super) async fn referenced(
        &self,
        reference: &CheckpointRefStatus,
    ) -> Result<Option<Checkpoint>, ReconcileError> {
        self.checkpoints_in(reference.namespace.as_deref())
            .get_opt(&reference.name)
            .await
            .during(ApiStep::ReadCheckpoint)
    }

    /// Whether the decision on `checkpoint` went through tollgate's admission; when it did
    /// not, says so in a Warning Event (the decision then counts for nothing).
    pub(super) async fn decision_verified(&self, checkpoint: &Checkpoint) -> bool {
        match crate::reconcile::checkpoint::verify_decision(checkpoint, &self.ctx.seal_key) {
            Ok(()) => true,
            Err(why) => {
                self.event(
                    EventType::Warning,
                    "DecisionUnverified",
                    &crate::reconcile::checkpoint::unverified_message(&checkpoint.name_any(), &why),
                )
                .await;
                false
            }
        }
    }
}

//! Reflects a person's decision in the Checkpoint's phase. The Project reconciler acts on the
//! decision; this one keeps `kubectl get cp` truthful: a decision without a valid seal from
//! tollgate's admission is shown as such (condition `DecisionVerified=False`), and the
//! checkpoint stays `Pending`, because nothing will act on it.

use std::sync::Arc;

use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use serde_json::json;

use super::{Context, FIELD_MANAGER, ReconcileError, conditions};
use crate::api::{Checkpoint, CheckpointPhase, Decision, REPLAN_ANNOTATION};
use crate::seal::{SealError, SealKey, SealedDecision};

/// Condition type on a Checkpoint whose decision the controller checked.
pub const DECISION_VERIFIED: &str = "DecisionVerified";

/// Whether the checkpoint's decision carries the seal tollgate's admission writes (see
/// [`crate::seal`]): only then may anything act on it.
pub fn verify_decision(checkpoint: &Checkpoint, key: &SealKey) -> Result<(), SealError> {
    let status = checkpoint.status.clone().unwrap_or_default();
    let text = |value: serde_json::Value| value.as_str().map(str::to_owned).unwrap_or_default();
    let decision = text(serde_json::to_value(status.decision).unwrap_or_default());
    let decided_at = text(serde_json::to_value(&status.decided_at).unwrap_or_default());
    let sealed = SealedDecision {
        checkpoint_uid: checkpoint.metadata.uid.as_deref().unwrap_or_default(),
        plan_digest: checkpoint
            .spec
            .plan_ref
            .as_ref()
            .map(|p| p.digest.as_str())
            .unwrap_or_default(),
        decision: &decision,
        decided_by: status.decided_by.as_deref().unwrap_or_default(),
        decided_at: &decided_at,
        reason: status.reason.as_deref().unwrap_or_default(),
    };
    key.verify(&sealed, status.decision_seal.as_deref())
}

/// What the Project and the Checkpoint say when a decision is not verified.
pub fn unverified_message(checkpoint: &str, why: &SealError) -> String {
    format!(
        "the decision on checkpoint {checkpoint} is not applied: {why}. Install tollgate's admission webhook (docs/deploy.md), then set the annotation {REPLAN_ANNOTATION} on the Project to any new value to open a new checkpoint, and decide that one"
    )
}

/// The phase a checkpoint should show; `verified`: whether its decision (if any) has a
/// valid seal.
pub fn phase_for(checkpoint: &Checkpoint, verified: bool) -> CheckpointPhase {
    let status = checkpoint.status.as_ref();
    match (
        status.and_then(|s| s.phase),
        status.and_then(|s| s.decision),
    ) {
        // Terminal phases written by the Project reconciler stay, whatever is decided later.
        (Some(phase @ (CheckpointPhase::Superseded | CheckpointPhase::Expired)), _) => phase,
        // Nothing acts on an unverified decision: the checkpoint still waits.
        (_, Some(_)) if !verified => CheckpointPhase::Pending,
        (_, Some(Decision::Approved)) => CheckpointPhase::Approved,
        (_, Some(Decision::Rejected)) => CheckpointPhase::Rejected,
        (Some(phase), None) => phase,
        (None, None) => CheckpointPhase::Pending,
    }
}

/// Writes the controller-owned phase of a checkpoint.
pub async fn set_phase(
    api: &Api<Checkpoint>,
    name: &str,
    phase: CheckpointPhase,
) -> Result<(), ReconcileError> {
    let patch = json!({"apiVersion": "tollgate.dev/v1alpha1", "kind": "Checkpoint", "status": {"phase": phase}});
    api.patch_status(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}

pub async fn reconcile(
    checkpoint: Arc<Checkpoint>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    let result = reflect_decision(&checkpoint, &ctx).await;
    if result.is_ok() {
        ctx.backoff
            .succeeded(&super::backoff_key(checkpoint.as_ref()));
    }
    result
}

async fn reflect_decision(
    checkpoint: &Checkpoint,
    ctx: &Context,
) -> Result<Action, ReconcileError> {
    let api: Api<Checkpoint> = Api::namespaced(
        ctx.client.clone(),
        &checkpoint.namespace().unwrap_or_default(),
    );
    // The watch cache may predate the Project reconciler's `Superseded`: read the latest
    // version, and write only if nobody changed it since (resourceVersion precondition), so
    // a stale `Pending` can never overwrite a final phase.
    let Some(current) = api.get_opt(&checkpoint.name_any()).await? else {
        return Ok(Action::await_change());
    };
    let status = current.status.clone().unwrap_or_default();
    let verification = status
        .decision
        .map(|_| verify_decision(&current, &ctx.seal_key));
    let phase = phase_for(&current, !matches!(verification, Some(Err(_))));
    let mut conditions = status.conditions.clone();
    if let Some(result) = &verification {
        let (reason, message) = match result {
            Ok(()) => (
                "Sealed",
                "the decision carries a valid seal from tollgate's admission".to_owned(),
            ),
            Err(why) => ("NotSealed", unverified_message(&current.name_any(), why)),
        };
        conditions::set(
            &mut conditions,
            DECISION_VERIFIED,
            result.is_ok(),
            reason,
            &message,
            None,
        );
    }
    if status.phase != Some(phase) || conditions != status.conditions {
        let patch = json!({
            "metadata": {"resourceVersion": current.resource_version()},
            "status": {"phase": phase, "conditions": conditions}
        });
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PatchParams::default()
        };
        api.patch_status(&current.name_any(), &params, &Patch::Merge(&patch))
            .await?;
    }
    Ok(Action::await_change())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn checkpoint(status: serde_json::Value) -> Checkpoint {
        serde_json::from_value(json!({
            "apiVersion": "tollgate.dev/v1alpha1", "kind": "Checkpoint", "metadata": {"name": "c"},
            "spec": {"type": "PlanApproval", "projectRef": {"name": "p"}, "summary": {"text": "", "add": 0, "change": 0, "destroy": 0}, "requestedAt": "2026-01-01T00:00:00Z"},
            "status": status
        }))
        .unwrap()
    }

    #[test]
    fn phase_follows_the_decision_but_superseded_is_final() {
        let phase = |status| phase_for(&checkpoint(status), true);
        assert_eq!(phase(json!({})), CheckpointPhase::Pending);
        assert_eq!(
            phase(json!({"decision": "Approved", "phase": "Pending"})),
            CheckpointPhase::Approved
        );
        assert_eq!(
            phase(json!({"decision": "Rejected"})),
            CheckpointPhase::Rejected
        );
        assert_eq!(
            phase(json!({"decision": "Approved", "phase": "Superseded"})),
            CheckpointPhase::Superseded
        );
        assert_eq!(phase(json!({"phase": "Expired"})), CheckpointPhase::Expired);
    }

    #[test]
    fn an_unverified_decision_leaves_the_checkpoint_pending() {
        let unverified = |status| phase_for(&checkpoint(status), false);
        assert_eq!(
            unverified(json!({"decision": "Approved", "decidedBy": "bob"})),
            CheckpointPhase::Pending
        );
        assert_eq!(
            unverified(json!({"decision": "Approved", "phase": "Superseded"})),
            CheckpointPhase::Superseded
        );
    }

    #[test]
    fn only_the_seal_admission_wrote_for_exactly_this_decision_verifies() {
        let key = SealKey::from_bytes(&[5u8; crate::seal::KEY_LEN]).unwrap();
        let mut cp = checkpoint(
            json!({"decision": "Approved", "reason": "ok", "decidedBy": "alice", "decidedAt": "2026-12-03T08:00:00Z"}),
        );
        cp.metadata.uid = Some("uid-1".into());
        assert_eq!(verify_decision(&cp, &key), Err(SealError::Missing));
        let seal = key.seal(&SealedDecision {
            checkpoint_uid: "uid-1",
            plan_digest: "",
            decision: "Approved",
            decided_by: "alice",
            decided_at: "2026-12-03T08:00:00Z",
            reason: "ok",
        });
        cp.status.as_mut().unwrap().decision_seal = Some(seal);
        assert_eq!(verify_decision(&cp, &key), Ok(()));
        cp.status.as_mut().unwrap().decided_by = Some("bob".into());
        assert_eq!(verify_decision(&cp, &key), Err(SealError::Mismatch));
        assert!(unverified_message("cp-1", &SealError::Missing).contains("tollgate.dev/replan"));
    }
}

//! Reflects a person's decision in the Checkpoint's phase. The Project reconciler acts on the
//! decision; this one keeps `kubectl get cp` truthful.

use std::sync::Arc;

use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use serde_json::json;

use super::{Context, FIELD_MANAGER, ReconcileError};
use crate::api::{Checkpoint, CheckpointPhase, Decision};

/// The phase a checkpoint should show.
pub fn phase_for(checkpoint: &Checkpoint) -> CheckpointPhase {
    let status = checkpoint.status.as_ref();
    match (
        status.and_then(|s| s.phase),
        status.and_then(|s| s.decision),
    ) {
        // Terminal phases written by the Project reconciler stay, whatever is decided later.
        (Some(phase @ (CheckpointPhase::Superseded | CheckpointPhase::Expired)), _) => phase,
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
    let phase = phase_for(&current);
    if current.status.as_ref().and_then(|s| s.phase) != Some(phase) {
        let patch = json!({
            "metadata": {"resourceVersion": current.resource_version()},
            "status": {"phase": phase}
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
        assert_eq!(phase_for(&checkpoint(json!({}))), CheckpointPhase::Pending);
        assert_eq!(
            phase_for(&checkpoint(
                json!({"decision": "Approved", "phase": "Pending"})
            )),
            CheckpointPhase::Approved
        );
        assert_eq!(
            phase_for(&checkpoint(json!({"decision": "Rejected"}))),
            CheckpointPhase::Rejected
        );
        assert_eq!(
            phase_for(&checkpoint(
                json!({"decision": "Approved", "phase": "Superseded"})
            )),
            CheckpointPhase::Superseded
        );
        assert_eq!(
            phase_for(&checkpoint(json!({"phase": "Expired"}))),
            CheckpointPhase::Expired
        );
    }
}

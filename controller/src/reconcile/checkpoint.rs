//! The Checkpoint's own loop: reflect a person's decision in its phase, run the SLA
//! timers (reminder, escalation, expiry), and tell people (see [`lifecycle`] for the pure
//! rules, [`notifications`] for the sending). The Project reconciler acts on the decision;
//! this one keeps `kubectl get cp` truthful: a decision without a valid seal from
//! tollgate's admission is shown as such (condition `DecisionVerified=False`), and the
//! checkpoint stays pending, because nothing will act on it.

mod lifecycle;
pub(super) mod notifications;

use std::sync::Arc;

use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event as KubeEvent, EventType};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use super::error::{ApiStep, During};
use super::{Context, FIELD_MANAGER, ReconcileError, conditions};
use crate::api::{Checkpoint, CheckpointPhase, REPLAN_ANNOTATION};
use crate::audit::{AuditAction, AuditEntry};
use crate::seal::{SealError, SealKey, SealedDecision};
use crate::sla::{Schedule, Timer};

/// Condition type on a Checkpoint whose decision the controller checked.
pub const DECISION_VERIFIED: &str = "DecisionVerified";

/// Label on a Checkpoint naming its Project's environment (for metrics and selection).
pub const ENVIRONMENT_LABEL: &str = "tollgate.dev/environment";

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
    .await
    .during(ApiStep::CloseCheckpoint)?;
    Ok(())
}

pub async fn reconcile(
    checkpoint: Arc<Checkpoint>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    let result = reconcile_checkpoint(&checkpoint, &ctx).await;
    if result.is_ok() {
        ctx.backoff
            .succeeded(&super::backoff_key(checkpoint.as_ref()));
    }
    result
}

async fn reconcile_checkpoint(
    checkpoint: &Checkpoint,
    ctx: &Context,
) -> Result<Action, ReconcileError> {
    let api: Api<Checkpoint> = Api::namespaced(
        ctx.client.clone(),
        &checkpoint.namespace().unwrap_or_default(),
    );
    // The watch cache may predate the Project reconciler's `Superseded`: read the latest
    // version, and write only if nobody changed it since (resourceVersion precondition), so
    // a stale `Pending` can never overwrite a final phase, nor an expiry a fresh decision.
    let Some(current) = api
        .get_opt(&checkpoint.name_any())
        .await
        .during(ApiStep::ReadCheckpoint)?
    else {
        ctx.metrics
            .checkpoint_settled(checkpoint.uid().as_deref().unwrap_or_default());
        return Ok(Action::await_change());
    };
    let name = current.name_any();
    let status = current.status.clone().unwrap_or_default();
    let verification = status
        .decision
        .map(|_| verify_decision(&current, &ctx.seal_key));
    let verified_decision = match verification {
        Some(Ok(())) => status.decision,
        _ => None,
    };
    let now = jiff::Timestamp::now();
    let schedule = Schedule::from_checkpoint(&current).unwrap_or_else(|err| {
        // Written by the controller and checked by the schema: cannot happen unless edited
        // by hand in etcd; run no timers rather than guess.
        tracing::warn!(checkpoint = %name, error = %err, "checkpoint deadlines unreadable; no timers");
        None
    });
    let mut fired = lifecycle::fired_of(&current);
    let mut fired_now = Vec::new();
    let mut next_timer = None;
    if lifecycle::awaits_decision(&current, verified_decision)
        && let Some(schedule) = &schedule
    {
        let advance = crate::sla::advance(now, schedule, fired);
        fired = advance.fired;
        fired_now = advance.fired_now;
        next_timer = advance.next_at;
    }
    let phase = lifecycle::phase_for(&current, verified_decision, fired);
    let mut conditions = status.conditions.clone();
    if let Some(result) = &verification {
        let (reason, message) = match result {
            Ok(()) => (
                "Sealed",
                "the decision carries a valid seal from tollgate's admission".to_owned(),
            ),
            Err(why) => ("NotSealed", unverified_message(&name, why)),
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
    if let Some(schedule) = &schedule
        && fired_now.contains(&Timer::Escalation)
    {
        conditions::set(
            &mut conditions,
            lifecycle::ESCALATED,
            true,
            "Overdue",
            &lifecycle::timer_message(Timer::Escalation, schedule, &name),
            None,
        );
    }
    let reminders = i32::try_from(fired.last_reminder).unwrap_or(i32::MAX);
    let reminders_sent = (reminders > 0).then_some(reminders);
    let mut current = current;
    if status.phase != Some(phase)
        || conditions != status.conditions
        || status.reminders_sent != reminders_sent
    {
        let patch = json!({
            "metadata": {"resourceVersion": current.resource_version()},
            "status": {"phase": phase, "conditions": conditions, "remindersSent": reminders_sent}
        });
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PatchParams::default()
        };
        current = match api
            .patch_status(&name, &params, &Patch::Merge(&patch))
            .await
        {
            Ok(updated) => updated,
            // Changed meanwhile (a decision, a supersede): look again at the new version.
            Err(kube::Error::Api(e)) if e.code == 409 => {
                return Ok(Action::requeue(std::time::Duration::from_secs(1)));
            }
            Err(e) => return Err(ApiStep::WriteCheckpointStatus.failed(e)),
        };
        if verified_decision.is_some()
            && !matches!(
                status.phase,
                Some(CheckpointPhase::Approved | CheckpointPhase::Rejected)
            )
            && let Some(seconds) = lifecycle::response_seconds(&current)
        {
            ctx.metrics.checkpoint_decided(
                checkpoint_type(&current),
                &environment_of(&current),
                seconds,
            );
        }
    }
    if let Some(schedule) = &schedule {
        for timer in &fired_now {
            timer_fired(ctx, &current, *timer, schedule).await;
        }
    }
    match phase {
        CheckpointPhase::Pending | CheckpointPhase::Escalated => ctx.metrics.checkpoint_pending(
            current.uid().as_deref().unwrap_or_default(),
            checkpoint_type(&current),
            current.spec.requested_at.0,
        ),
        _ => ctx
            .metrics
            .checkpoint_settled(current.uid().as_deref().unwrap_or_default()),
    }
    let due = lifecycle::due_events(&current, verified_decision);
    let retry = if due.is_empty() {
        None
    } else {
        notifications::send(ctx, &api, &current, &due).await?
    };
    Ok(
        match lifecycle::next_look(jiff::Timestamp::now(), next_timer, retry) {
            Some(wait) => Action::requeue(wait),
            None => Action::await_change(),
        },
    )
}

/// The Event, audit record and metric of a timer that fired (after it was recorded).
async fn timer_fired(ctx: &Context, checkpoint: &Checkpoint, timer: Timer, schedule: &Schedule) {
    let name = checkpoint.name_any();
    let message = lifecycle::timer_message(timer, schedule, &name);
    let (reason, type_, audit) = match timer {
        Timer::Reminder(_) => ("CheckpointReminder", EventType::Normal, None),
        Timer::Escalation => (
            "CheckpointEscalated",
            EventType::Warning,
            Some(AuditAction::CheckpointEscalated),
        ),
        Timer::Expiry => (
            "CheckpointExpired",
            EventType::Warning,
            Some(AuditAction::CheckpointExpired),
        ),
    };
    tracing::info!(checkpoint = %name, namespace = ?checkpoint.namespace(), %timer, "checkpoint timer fired");
    ctx.metrics.checkpoint_timer(
        match timer {
            Timer::Reminder(_) => "reminder",
            Timer::Escalation => "escalation",
            Timer::Expiry => "expiry",
        },
        checkpoint_type(checkpoint),
    );
    if let Some(action) = audit {
        let project_namespace = lifecycle::project_namespace(checkpoint);
        let mut entry = AuditEntry::new(
            "system:tollgate",
            action,
            project_namespace,
            &checkpoint.spec.project_ref.name,
        );
        entry.checkpoint = Some(name.clone());
        entry.plan_digest = checkpoint.spec.plan_ref.as_ref().map(|p| p.digest.clone());
        entry.reason = Some(message.clone());
        if let Err(err) = ctx.audit.append(entry) {
            tracing::error!(error = %err, ?action, "cannot write the audit trail");
        }
    }
    let event = KubeEvent {
        type_,
        reason: reason.to_owned(),
        note: Some(message),
        action: "Timer".into(),
        secondary: None,
    };
    if let Err(err) = ctx
        .recorder
        .publish(&event, &checkpoint.object_ref(&()))
        .await
    {
        tracing::debug!(error = %err, "cannot publish event");
    }
}

/// The checkpoint's type as a metric label.
fn checkpoint_type(checkpoint: &Checkpoint) -> &'static str {
    match checkpoint.spec.checkpoint_type {
        crate::api::CheckpointType::PlanApproval => "PlanApproval",
        crate::api::CheckpointType::Destroy => "Destroy",
        crate::api::CheckpointType::BudgetIncrease => "BudgetIncrease",
        crate::api::CheckpointType::Credential => "Credential",
        crate::api::CheckpointType::ManualOperation => "ManualOperation",
        crate::api::CheckpointType::FailureEscalation => "FailureEscalation",
    }
}

/// The Project's environment as recorded on the checkpoint (`unknown` for checkpoints
/// opened before the label existed).
fn environment_of(checkpoint: &Checkpoint) -> String {
    checkpoint
        .labels()
        .get(ENVIRONMENT_LABEL)
        .cloned()
        .unwrap_or_else(|| "unknown".to_owned())
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

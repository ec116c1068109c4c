//! What a Checkpoint's status should say, and which notifications are due, as pure
//! functions of the Checkpoint, whether its decision verified, and the time.
//!
//! The SLA timers ([`crate::sla`]) record what fired in the status itself: the number of
//! reminders (`status.remindersSent`), the `Escalated` condition, and phase `Expired`. The
//! status write happens before anything is sent, and every notification carries an
//! idempotency key recorded in `status.notifications` / `status.notifiedEvents`, so a
//! controller restarted at any point neither repeats a timer nor misses one.

use jiff::Timestamp;

use crate::api::{Checkpoint, CheckpointPhase, CheckpointType, Decision};
use crate::notify::EventKind;
use crate::sla::{Fired, Schedule, Timer};

/// Condition type on a Checkpoint still pending past its escalation deadline.
pub(super) const ESCALATED: &str = "Escalated";

/// The namespace of the checkpoint's Project: its own, except for a Destroy checkpoint
/// opened in the state namespace, which names the Project's in `spec.projectRef`.
pub fn project_namespace(checkpoint: &Checkpoint) -> String {
    checkpoint
        .spec
        .project_ref
        .namespace
        .clone()
        .or_else(|| checkpoint.metadata.namespace.clone())
        .unwrap_or_default()
}

/// What was recorded of the SLA timers in the checkpoint's status.
pub fn fired_of(checkpoint: &Checkpoint) -> Fired {
    let status = checkpoint.status.clone().unwrap_or_default();
    Fired {
        last_reminder: status
            .reminders_sent
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0),
        escalated: status
            .conditions
            .iter()
            .any(|c| c.type_ == ESCALATED && c.status == "True"),
        expired: status.phase == Some(CheckpointPhase::Expired),
    }
}

/// Whether the checkpoint still waits for a person: no verified decision, and not over.
pub fn awaits_decision(checkpoint: &Checkpoint, verified_decision: Option<Decision>) -> bool {
    let phase = checkpoint.status.as_ref().and_then(|s| s.phase);
    verified_decision.is_none()
        && !matches!(
            phase,
            Some(CheckpointPhase::Superseded | CheckpointPhase::Expired)
        )
}

/// The phase a checkpoint should show: `Superseded` and `Expired` are final; then the
/// verified decision; then `Escalated` or `Pending`. A decision that did not verify counts
/// as none: nothing will act on it.
pub fn phase_for(
    checkpoint: &Checkpoint,
    verified_decision: Option<Decision>,
    fired: Fired,
) -> CheckpointPhase {
    match (
        checkpoint.status.as_ref().and_then(|s| s.phase),
        verified_decision,
    ) {
        (Some(phase @ (CheckpointPhase::Superseded | CheckpointPhase::Expired)), _) => phase,
        (_, Some(decision)) if decision.goes_ahead() => CheckpointPhase::Approved,
        (_, Some(_)) => CheckpointPhase::Rejected,
        (_, None) if fired.expired => CheckpointPhase::Expired,
        (_, None) if fired.escalated => CheckpointPhase::Escalated,
        (_, None) => CheckpointPhase::Pending,
    }
}

/// The schedule's deadlines as text for messages: `respond by …, escalates at …`.
pub fn timer_message(timer: Timer, schedule: &Schedule, checkpoint: &str) -> String {
    match timer {
        Timer::Reminder(n) => format!(
            "reminder {n}: checkpoint {checkpoint} still waits for a decision (respond by {})",
            schedule.respond_by
        ),
        Timer::Escalation => format!(
            "checkpoint {checkpoint} is still undecided past its escalation deadline; the escalation route was told{}",
            schedule
                .expire_at
                .map(|at| format!("; it expires at {at}"))
                .unwrap_or_default()
        ),
        Timer::Expiry => format!(
            "checkpoint {checkpoint} expired without a decision; nothing was applied. To ask again, set the annotation tollgate.dev/replan on the Project to a new value"
        ),
    }
}

/// A notification that is due: the event and its occurrence (the reminder's number).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DueEvent {
    /// What happened.
    pub event: EventKind,
    /// The reminder's number; 0 for other events.
    pub occurrence: u32,
}

impl DueEvent {
    /// Its entry in `status.notifiedEvents`: `Opened`, `Reminder#2`.
    pub fn key(&self) -> String {
        if self.occurrence > 0 {
            format!("{}#{}", self.event, self.occurrence)
        } else {
            self.event.to_string()
        }
    }
}

/// The notifications the checkpoint's state calls for and that are not yet recorded as
/// sent (`status.notifiedEvents`). Only the latest reminder is ever due; the opening is
/// not announced once it is decided or over (the decision or the expiry is).
pub fn due_events(checkpoint: &Checkpoint, verified_decision: Option<Decision>) -> Vec<DueEvent> {
    let status = checkpoint.status.clone().unwrap_or_default();
    if status.phase == Some(CheckpointPhase::Superseded) {
        return Vec::new();
    }
    let fired = fired_of(checkpoint);
    let waiting = awaits_decision(checkpoint, verified_decision);
    let opened = if checkpoint.spec.checkpoint_type == CheckpointType::Destroy {
        EventKind::DestroyWaiting
    } else {
        EventKind::Opened
    };
    let event = |event| DueEvent {
        event,
        occurrence: 0,
    };
    let mut due = Vec::new();
    if waiting {
        due.push(event(opened));
        if fired.last_reminder > 0 {
            due.push(DueEvent {
                event: EventKind::Reminder,
                occurrence: fired.last_reminder,
            });
        }
        if fired.escalated {
            due.push(event(EventKind::Escalated));
        }
    }
    if fired.expired && verified_decision.is_none() {
        due.push(event(EventKind::Expired));
    }
    if verified_decision.is_some() {
        due.push(event(EventKind::Decided));
    }
    if let Some(outcome) = &status.apply_outcome {
        due.push(event(if outcome.succeeded {
            EventKind::Applied
        } else {
            EventKind::ApplyFailed
        }));
    }
    due.retain(|d| !status.notified_events.contains(&d.key()));
    due
}

/// How long after opening a decision came, in seconds (for the response-time metric).
pub fn response_seconds(checkpoint: &Checkpoint) -> Option<f64> {
    let decided_at = checkpoint.status.as_ref()?.decided_at.as_ref()?.0;
    let opened = checkpoint.spec.requested_at.0;
    let seconds = decided_at.duration_since(opened).as_secs_f64();
    (seconds >= 0.0).then_some(seconds)
}

/// When to look at a checkpoint again: at the next timer, or sooner to retry deliveries.
pub fn next_look(
    now: Timestamp,
    next_timer: Option<Timestamp>,
    retry_after: Option<std::time::Duration>,
) -> Option<std::time::Duration> {
    let timer = next_timer.map(|at| {
        let secs = at.duration_since(now).as_secs_f64().max(0.0);
        // A requeue lands a little early or late; one second past the deadline makes
        // sure the timer is due when it does.
        std::time::Duration::from_secs_f64(secs) + std::time::Duration::from_secs(1)
    });
    match (timer, retry_after) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use serde_json::json;

    use super::*;

    fn checkpoint(type_: &str, status: serde_json::Value) -> Checkpoint {
        serde_json::from_value(json!({
            "apiVersion": "tollgate.dev/v1alpha1", "kind": "Checkpoint", "metadata": {"name": "c"},
            "spec": {"type": type_, "projectRef": {"name": "p"}, "summary": {"text": "", "add": 0, "change": 0, "destroy": 0}, "requestedAt": "2026-01-01T00:00:00Z"},
            "status": status
        }))
        .unwrap()
    }

    fn escalated() -> serde_json::Value {
        json!([{"type": "Escalated", "status": "True", "reason": "Overdue", "message": "", "lastTransitionTime": "2026-01-01T01:00:00Z"}])
    }

    fn keys(due: Vec<DueEvent>) -> Vec<String> {
        due.iter().map(DueEvent::key).collect()
    }

    #[test]
    fn phase_follows_timers_and_the_verified_decision_but_superseded_and_expired_are_final() {
        let phase = |status, decision, fired| {
            phase_for(&checkpoint("PlanApproval", status), decision, fired)
        };
        let none = Fired::default();
        let escalated = Fired {
            escalated: true,
            ..none
        };
        let expired = Fired {
            expired: true,
            ..escalated
        };
        assert_eq!(phase(json!({}), None, none), CheckpointPhase::Pending);
        assert_eq!(
            phase(json!({}), None, escalated),
            CheckpointPhase::Escalated
        );
        assert_eq!(phase(json!({}), None, expired), CheckpointPhase::Expired);
        assert_eq!(
            phase(
                json!({"phase": "Escalated"}),
                Some(Decision::Approved),
                escalated
            ),
            CheckpointPhase::Approved
        );
        assert_eq!(
            phase(json!({}), Some(Decision::Rejected), none),
            CheckpointPhase::Rejected
        );
        assert_eq!(
            phase(
                json!({"phase": "Superseded"}),
                Some(Decision::Approved),
                none
            ),
            CheckpointPhase::Superseded
        );
        assert_eq!(
            phase(json!({"phase": "Expired"}), Some(Decision::Approved), none),
            CheckpointPhase::Expired
        );
    }

    #[test]
    fn what_fired_is_read_back_from_status() {
        let cp = checkpoint(
            "PlanApproval",
            json!({"remindersSent": 2, "conditions": escalated(), "phase": "Escalated"}),
        );
        assert_eq!(
            fired_of(&cp),
            Fired {
                last_reminder: 2,
                escalated: true,
                expired: false
            }
        );
        assert!(fired_of(&checkpoint("PlanApproval", json!({"phase": "Expired"}))).expired);
    }

    #[test]
    fn due_events_follow_the_lifecycle_and_skip_what_was_sent() {
        let due = |type_, status, decision| keys(due_events(&checkpoint(type_, status), decision));
        assert_eq!(due("PlanApproval", json!({}), None), ["Opened"]);
        assert_eq!(due("Destroy", json!({}), None), ["DestroyWaiting"]);
        assert_eq!(
            due(
                "PlanApproval",
                json!({"remindersSent": 3, "conditions": escalated(), "notifiedEvents": ["Opened", "Reminder#2"]}),
                None
            ),
            ["Reminder#3", "Escalated"]
        );
        assert_eq!(
            due(
                "PlanApproval",
                json!({"phase": "Expired", "remindersSent": 1, "notifiedEvents": ["Opened", "Reminder#1"]}),
                None
            ),
            ["Expired"]
        );
        // Decided fast: the opening is not announced after the fact, the decision is.
        assert_eq!(
            due(
                "PlanApproval",
                json!({"decision": "Approved"}),
                Some(Decision::Approved)
            ),
            ["Decided"]
        );
        assert_eq!(
            due(
                "PlanApproval",
                json!({"decision": "Approved", "notifiedEvents": ["Opened", "Decided"], "applyOutcome": {"succeeded": false, "at": "2026-01-01T02:00:00Z", "message": "boom"}}),
                Some(Decision::Approved)
            ),
            ["ApplyFailed"]
        );
        assert!(due("PlanApproval", json!({"phase": "Superseded"}), None).is_empty());
        // An unverified decision changes nothing: still waiting.
        assert_eq!(
            due(
                "PlanApproval",
                json!({"decision": "Approved", "notifiedEvents": ["Opened"]}),
                None
            ),
            Vec::<String>::new()
        );
    }

    #[test]
    fn the_next_look_is_the_earlier_of_the_timer_and_a_delivery_retry() {
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let at = |s: &str| Some(s.parse::<Timestamp>().unwrap());
        let secs = std::time::Duration::from_secs;
        assert_eq!(
            next_look(now, at("2026-01-01T00:10:00Z"), None),
            Some(secs(601))
        );
        assert_eq!(
            next_look(now, at("2026-01-01T00:10:00Z"), Some(secs(60))),
            Some(secs(60))
        );
        assert_eq!(
            next_look(now, at("2025-12-31T00:00:00Z"), None),
            Some(secs(1))
        );
        assert_eq!(next_look(now, None, None), None);
    }

    #[test]
    fn response_time_is_from_opening_to_decision() {
        let cp = checkpoint(
            "PlanApproval",
            json!({"decision": "Approved", "decidedAt": "2026-01-01T00:30:00Z"}),
        );
        assert_eq!(response_seconds(&cp), Some(1800.0));
        assert_eq!(
            response_seconds(&checkpoint("PlanApproval", json!({}))),
            None
        );
    }
}

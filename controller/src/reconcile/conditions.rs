//! kstatus conditions: a transition time changes only when the status does.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// Sets condition `type_`, keeping `lastTransitionTime` when the status is unchanged.
pub fn set(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
) {
    let status = if status { "True" } else { "False" };
    set_status(conditions, type_, status, reason, message, generation);
}

/// Sets condition `type_` to `Unknown` (e.g. a check that could not run).
pub fn set_unknown(
    conditions: &mut Vec<Condition>,
    type_: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
) {
    set_status(conditions, type_, "Unknown", reason, message, generation);
}

fn set_status(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
) {
    let status = status.to_owned();
    let now = Time(jiff::Timestamp::now());
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(existing) => {
            if existing.status != status {
                existing.last_transition_time = now;
            }
            existing.status = status;
            existing.reason = reason.to_owned();
            existing.message = message.to_owned();
            existing.observed_generation = generation;
        }
        None => conditions.push(Condition {
            type_: type_.to_owned(),
            status,
            reason: reason.to_owned(),
            message: message.to_owned(),
            observed_generation: generation,
            last_transition_time: now,
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_moves_only_when_status_changes() {
        let mut conditions = Vec::new();
        set(
            &mut conditions,
            "Ready",
            false,
            "Planning",
            "planning",
            Some(1),
        );
        let first = conditions[0].last_transition_time.clone();
        set(
            &mut conditions,
            "Ready",
            false,
            "AwaitingApproval",
            "waiting",
            Some(2),
        );
        assert_eq!(conditions[0].last_transition_time, first);
        assert_eq!(conditions[0].reason, "AwaitingApproval");
        set(
            &mut conditions,
            "Ready",
            true,
            "Applied",
            "applied",
            Some(2),
        );
        assert_eq!(conditions[0].status, "True");
        assert!(conditions[0].last_transition_time.0 >= first.0);
        assert_eq!(conditions.len(), 1);
    }
}

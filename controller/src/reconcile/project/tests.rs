//! Unit tests of `project`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::retry::without_retry;
use super::*;

fn phase_conditions(phase: ProjectPhase, reason: &str, message: &str) -> Vec<Condition> {
    let mut c = Vec::new();
    conditions::set(
        &mut c,
        "Ready",
        phase == ProjectPhase::Ready,
        reason,
        message,
        Some(1),
    );
    conditions::set(&mut c, "Reconciling", false, reason, message, Some(1));
    c
}

fn ready(c: &[Condition]) -> &Condition {
    c.iter().find(|c| c.type_ == "Ready").unwrap()
}

#[test]
fn a_retry_is_cleared_back_to_the_phase_it_interrupted() {
    for phase in [ProjectPhase::Ready, ProjectPhase::AwaitingApproval] {
        let mut c = phase_conditions(phase, "Applied", "plan p1 applied");
        conditions::set(&mut c, "Ready", false, RETRYING, "retrying in 5s", Some(1));
        assert!(without_retry(&mut c, Some(phase), Some(1)));
        let ready = ready(&c);
        assert_eq!(
            ready.status == "True",
            phase == ProjectPhase::Ready,
            "{phase:?}"
        );
        assert_eq!(ready.reason, "Applied");
        assert_eq!(ready.message, "plan p1 applied");
    }
}

#[test]
fn nothing_to_clear_without_a_retry() {
    let mut c = phase_conditions(ProjectPhase::Ready, "Applied", "plan p1 applied");
    let before = c.clone();
    assert!(!without_retry(&mut c, Some(ProjectPhase::Ready), Some(1)));
    assert_eq!(c, before);
}

#[test]
fn a_retry_before_any_phase_is_cleared_as_recovered() {
    let mut c = Vec::new();
    conditions::set(&mut c, "Ready", false, RETRYING, "retrying in 5s", None);
    assert!(without_retry(&mut c, None, None));
    assert_eq!(ready(&c).reason, "Recovered");
    assert_eq!(ready(&c).status, "False");
}

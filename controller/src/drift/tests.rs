use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::plan::{Plan, SENSITIVE_PLACEHOLDER};

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(second).unwrap()
}

/// A refresh-only plan in which `tgtest_file.config` was edited, `tgtest_file.token`
/// (sensitive content) rotated and `tgtest_file.gone` deleted outside Terraform.
fn drifted_plan() -> Plan {
    let rc = |name: &str, actions: serde_json::Value, change: serde_json::Value| {
        let mut c = json!({"actions": actions, "before": null, "after": null, "after_unknown": {}, "before_sensitive": {}, "after_sensitive": {}});
        for (k, v) in change.as_object().unwrap() {
            c[k] = v.clone();
        }
        json!({"address": format!("tgtest_file.{name}"), "mode": "managed", "type": "tgtest_file", "name": name, "provider_name": "tgtest", "change": c})
    };
    Plan::from_json(
        &json!({"format_version": "1.2", "resource_changes": [], "resource_drift": [
            rc("config", json!(["update"]), json!({"before": {"path": "c", "content": "v1"}, "after": {"path": "c", "content": "edited by hand"}})),
            rc("token", json!(["update"]), json!({"before": {"path": "t", "content": "s3cret-one"}, "after": {"path": "t", "content": "s3cret-two"}, "before_sensitive": {"content": true}, "after_sensitive": {"content": true}})),
            rc("gone", json!(["delete"]), json!({"before": {"path": "g", "content": "keep"}, "after": null})),
        ]})
        .to_string(),
    )
    .unwrap()
}

#[test]
fn a_schedule_is_the_interval_on_the_projects_offset() {
    let s = Schedule::new("1h", "uid-a").unwrap();
    let offset = s.offset().as_secs();
    assert!((0..3600).contains(&offset));
    let next = s.next_after(at(0));
    assert_eq!(next.as_second() % 3600, offset.max(0) % 3600);
    assert_eq!(s.next_after(next).as_second(), next.as_second() + 3600);
    // Exactly on a slot: the next one, never the same instant again.
    assert!(s.next_after(next) > next);
    // The same uid has the same schedule (a restart changes nothing); another differs.
    assert_eq!(Schedule::new("1h", "uid-a").unwrap(), s);
    assert_ne!(Schedule::new("1h", "uid-b").unwrap(), s);
}

#[test]
fn intervals_that_are_not_durations_or_too_short_are_refused() {
    assert!(matches!(
        Schedule::new("daily", "u"),
        Err(DriftError::Interval(_))
    ));
    assert_eq!(
        Schedule::new("9s", "u"),
        Err(DriftError::TooShort {
            interval: "9s".into()
        })
    );
    assert!(Schedule::new("10s", "u").is_ok());
    assert!(Schedule::new("1d", "u").is_ok());
}

#[test]
fn a_thousand_projects_with_one_interval_do_not_plan_at_once() {
    // 1000 Projects, a 1 h interval, cut into 10 windows of 6 min: each window gets
    // about 100 checks; none gets more than twice that.
    let mut windows = [0u32; 10];
    for i in 0..1000 {
        let s = Schedule::new("1h", &format!("0000-uid-{i}")).unwrap();
        let window = usize::try_from(s.offset().as_secs() / 360).unwrap();
        windows[window] += 1;
    }
    assert!(windows.iter().all(|&n| n > 50 && n < 200), "{windows:?}");
}

proptest! {
    #[test]
    fn the_next_check_is_after_and_within_one_interval(
        interval in 10i64..(400 * 86_400),
        seed in "[a-z0-9-]{1,36}",
        after in 0i64..4_000_000_000,
    ) {
        let s = Schedule::with_seconds(interval, &seed);
        let next = s.next_after(at(after)).as_second();
        prop_assert!(next > after);
        prop_assert!(next - after <= interval);
        prop_assert_eq!((next - s.offset().as_secs()).rem_euclid(interval), 0);
        prop_assert!(s.offset().as_secs() < interval);
    }
}

#[test]
fn a_report_lists_what_moved_with_sensitive_values_masked() {
    let review = drifted_plan().drift_review(None);
    let report = DriftReport::from_review(&review);
    assert!(report.drifted());
    let listed: Vec<(&str, &str)> = report
        .resources
        .iter()
        .map(|r| (r.address.as_str(), r.action.as_str()))
        .collect();
    assert_eq!(
        listed,
        [
            ("tgtest_file.config", "update"),
            ("tgtest_file.token", "update"),
            ("tgtest_file.gone", "delete"),
        ]
    );
    assert_eq!(
        report.resources[0].attributes,
        [r#"content: "v1" → "edited by hand""#]
    );
    let all = format!("{report:?} {}", report.message());
    assert!(!all.contains("s3cret"), "{all}");
    assert!(all.contains(SENSITIVE_PLACEHOLDER), "{all}");
    assert_eq!(
        report.message(),
        "3 resource(s) changed outside tollgate: tgtest_file.config (update: content); tgtest_file.token (update: content); tgtest_file.gone (delete: content, path)"
    );
}

#[test]
fn known_secrets_are_masked_even_where_terraform_does_not_mark_them() {
    let mut secrets = crate::redact::Redactor::default();
    secrets.add("edited by hand");
    let report = DriftReport::from_review(&drifted_plan().drift_review(Some(&secrets)));
    assert!(!format!("{report:?}").contains("edited by hand"));
}

#[test]
fn the_same_drift_has_the_same_digest_and_another_does_not() {
    let a = DriftReport::from_review(&drifted_plan().drift_review(None));
    let b = DriftReport::from_review(&drifted_plan().drift_review(None));
    assert_eq!(a.digest, b.digest);
    let clean = DriftReport::from_review(&PlanReview::default());
    assert!(!clean.drifted());
    assert_eq!(
        clean.message(),
        "the last check found no change outside tollgate"
    );
    let mut other = drifted_plan();
    other.resource_drift.truncate(1);
    let other = DriftReport::from_review(&other.drift_review(None));
    assert_ne!(a.digest, other.digest);
}

#[test]
fn long_drift_is_bounded() {
    let mut review = PlanReview::default();
    for i in 0..30 {
        review.changes.push(crate::plan::ReviewedChange {
            address: format!("tgtest_file.f{i}"),
            action: "update".into(),
            attributes: (0..15)
                .map(|j| crate::plan::AttributeChange {
                    path: format!("a{j}"),
                    before: Some("x".repeat(500)),
                    after: None,
                })
                .collect(),
            omitted_attributes: 0,
        });
    }
    let report = DriftReport::from_review(&review);
    assert_eq!(report.resources.len(), LISTED_RESOURCES);
    assert_eq!(report.omitted, 10);
    assert!(
        report
            .resources
            .iter()
            .all(|r| r.attributes.len() == LISTED_ATTRIBUTES
                && r.attributes.iter().all(|a| a.chars().count() < 200))
    );
    assert!(report.message().chars().count() <= MESSAGE_CHARS + 1);
    assert!(report.message().ends_with('…'));
}

#[test]
fn each_action_reacts_once_per_distinct_drift() {
    let report = DriftReport::from_review(&drifted_plan().drift_review(None));
    let digest = report.digest.clone();
    let fresh = DriftStatus::default();
    let r = |action| react(action, &report, &fresh);
    assert_eq!(
        r(DriftAction::Report),
        Reaction {
            event: true,
            notify: false,
            restore: false
        }
    );
    assert!(r(DriftAction::Notify).notify && !r(DriftAction::Notify).restore);
    assert!(r(DriftAction::Checkpoint).restore && !r(DriftAction::Checkpoint).notify);
    assert_eq!(r(DriftAction::Ignore), Reaction::default());
    // Found again: nothing new.
    let seen = DriftStatus {
        digest: digest.clone(),
        notified_digest: digest.clone(),
        restore_digest: digest.clone(),
        ..DriftStatus::default()
    };
    for action in [
        DriftAction::Report,
        DriftAction::Notify,
        DriftAction::Checkpoint,
    ] {
        assert_eq!(react(action, &report, &seen), Reaction::default());
    }
    // A clean check reacts to nothing and forgets the drift, so it counts again later.
    let clean = DriftReport::default();
    assert_eq!(
        react(DriftAction::Notify, &clean, &seen),
        Reaction::default()
    );
    let after_clean = next_status(&seen, &clean, at(10), at(20));
    assert_eq!(after_clean.digest, None);
    assert_eq!(after_clean.notified_digest, None);
    assert_eq!(after_clean.restore_digest, None);
    assert!(react(DriftAction::Notify, &report, &after_clean).notify);
    // Drift found again unchanged keeps what was sent.
    let again = next_status(&seen, &report, at(10), at(20));
    assert_eq!(again.notified_digest, digest);
    assert_eq!(again.checked_at.unwrap().0, at(10));
    assert_eq!(again.next_check_at.unwrap().0, at(20));
}

#[test]
fn a_restore_is_never_pre_approved() {
    let report = DriftReport::from_review(&drifted_plan().drift_review(None));
    let auto = restore_decision(
        GateDecision::AutoApprove {
            reasons: vec!["dev auto-approves updates".into()],
        },
        &report,
    );
    let GateDecision::RequireCheckpoint {
        checkpoint_type,
        reasons,
    } = auto
    else {
        panic!("{auto:?}");
    };
    assert_eq!(checkpoint_type, CheckpointType::PlanApproval);
    assert!(reasons[0].starts_with("restores the declared state after drift: 3 resource(s)"));
    let budget = restore_decision(
        GateDecision::RequireCheckpoint {
            checkpoint_type: CheckpointType::BudgetIncrease,
            reasons: vec!["over budget".into()],
        },
        &report,
    );
    let GateDecision::RequireCheckpoint {
        checkpoint_type,
        reasons,
    } = budget
    else {
        panic!("{budget:?}");
    };
    assert_eq!(checkpoint_type, CheckpointType::BudgetIncrease);
    assert_eq!(reasons.len(), 2);
    assert_eq!(
        restore_decision(GateDecision::NoChanges, &report),
        GateDecision::NoChanges
    );
}

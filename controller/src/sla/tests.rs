#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::api::EscalationPolicy;
use proptest::prelude::*;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn h(n: i64) -> SignedDuration {
    SignedDuration::from_hours(n)
}

fn policy(respond: &str, escalate: Option<&str>, expire: Option<&str>) -> SlaPolicy {
    SlaPolicy {
        respond_within: respond.into(),
        escalation: escalate.map(|after| EscalationPolicy {
            after: after.into(),
            notify: vec![],
        }),
        expire_after: expire.map(str::to_owned),
    }
}

const OPENED: &str = "2026-11-25T10:00:00Z";

fn schedule(remind: Option<i64>) -> Schedule {
    Schedule::open(
        ts(OPENED),
        &SlaDurations {
            respond_within: h(4),
            escalate_after: Some(h(8)),
            expire_after: Some(h(72)),
            remind_every: remind.map(h),
        },
    )
    .unwrap()
}

#[test]
fn durations_of_the_api_form_parse() {
    let p = |v| parse_duration("f", v);
    assert_eq!(p("4h"), Ok(h(4)));
    assert_eq!(p("30m"), Ok(SignedDuration::from_mins(30)));
    assert_eq!(p("1d"), Ok(h(24)));
    assert_eq!(p("1h30m"), Ok(SignedDuration::from_mins(90)));
    assert_eq!(p("90s"), Ok(SignedDuration::from_secs(90)));
    assert_eq!(p("1d1d"), Ok(h(48)));
    for bad in [
        "",
        "4",
        "h",
        "4H",
        "4 h",
        "-4h",
        "1.5h",
        "4hm",
        "99999999999999999999d",
    ] {
        let err = p(bad).unwrap_err();
        assert!(
            err.to_string().contains("write whole numbers with a unit"),
            "{bad}: {err}"
        );
    }
}

#[test]
fn durations_format_back_to_the_api_form() {
    for text in ["4h", "30m", "1d", "1h30m", "45s", "1d2h3m4s"] {
        assert_eq!(format_duration(parse_duration("f", text).unwrap()), text);
    }
    assert_eq!(format_duration(SignedDuration::ZERO), "0s");
    assert_eq!(format_duration(-h(25)), "-1d1h");
}

#[test]
fn the_projects_values_win_over_the_environment_defaults() {
    let defaults = SlaDefaults {
        fallback: SlaDefault {
            respond_within: Some(h(8)),
            ..SlaDefault::default()
        },
        environments: BTreeMap::from([(
            "production".to_owned(),
            SlaDefault {
                respond_within: Some(h(1)),
                escalate_after: Some(h(2)),
                expire_after: Some(h(24)),
                remind_every: Some(SignedDuration::from_mins(30)),
            },
        )]),
    };
    let prod = defaults
        .resolve("production", Some(&policy("30m", None, None)))
        .unwrap()
        .unwrap();
    assert_eq!(prod.respond_within, SignedDuration::from_mins(30));
    assert_eq!(prod.escalate_after, Some(h(2)));
    assert_eq!(prod.expire_after, Some(h(24)));
    assert_eq!(prod.remind_every, Some(SignedDuration::from_mins(30)));

    let dev = defaults.resolve("dev", None).unwrap().unwrap();
    assert_eq!(dev.respond_within, h(8));
    assert_eq!(dev.escalate_after, None);

    assert_eq!(SlaDefaults::default().resolve("dev", None), Ok(None));
    let own = SlaDefaults::default()
        .resolve("dev", Some(&policy("4h", Some("8h"), Some("3d"))))
        .unwrap()
        .unwrap();
    assert_eq!(own.expire_after, Some(h(72)));
}

#[test]
fn invalid_policies_say_what_to_change() {
    let d = SlaDefaults::default();
    let err = d
        .resolve("dev", Some(&policy("4h", Some("1h"), None)))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "escalation.after (1h) is shorter than respondWithin (4h); a checkpoint must be due before it escalates and escalate before it expires: lengthen escalation.after or shorten respondWithin"
    );
    let err = d
        .resolve("dev", Some(&policy("4h", None, Some("2h"))))
        .unwrap_err();
    assert!(err.to_string().starts_with("expireAfter (2h)"), "{err}");
    let err = d
        .resolve("dev", Some(&policy("0s", None, None)))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "respondWithin: `0s` must be longer than 0s"
    );
    let err = d
        .resolve("dev", Some(&policy("four hours", None, None)))
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("spec.approval.sla.respondWithin: `four hours` is not a duration"),
        "{err}"
    );
}

#[test]
fn a_checkpoint_gets_its_deadlines_from_the_time_it_opens() {
    let s = schedule(None);
    assert_eq!(
        s.to_api(),
        Sla {
            respond_by: Time(ts("2026-11-25T14:00:00Z")),
            escalate_at: Some(Time(ts("2026-11-25T18:00:00Z"))),
            expire_at: Some(Time(ts("2026-11-28T10:00:00Z"))),
            remind_every: None,
        }
    );
    let mut checkpoint = Checkpoint::new(
        "demo-1",
        serde_json::from_value(serde_json::json!({
            "type": "PlanApproval", "projectRef": {"name": "demo"},
            "summary": {"text": "", "add": 0, "change": 0, "destroy": 0},
            "requestedAt": OPENED,
        }))
        .unwrap(),
    );
    assert_eq!(Schedule::from_checkpoint(&checkpoint), Ok(None));
    checkpoint.spec.sla = Some(s.to_api());
    assert_eq!(Schedule::from_checkpoint(&checkpoint), Ok(Some(s)));
    let reminding = schedule(Some(3));
    checkpoint.spec.sla = Some(reminding.to_api());
    assert_eq!(
        checkpoint
            .spec
            .sla
            .as_ref()
            .unwrap()
            .remind_every
            .as_deref(),
        Some("3h")
    );
    assert_eq!(Schedule::from_checkpoint(&checkpoint), Ok(Some(reminding)));
}

#[test]
fn timers_fire_in_order_and_requeue_at_the_next() {
    let s = schedule(Some(3));
    let mut fired = Fired::default();
    let mut now = ts(OPENED);
    let mut seen = vec![];
    while let Some(due) = next_deadline(now, &s, fired) {
        if due.is_due(now) {
            seen.push((due.timer, due.at));
            fired.record(due.timer);
        } else {
            now = due.at; // the reconciler requeues at the deadline
        }
    }
    let timers: Vec<Timer> = seen.iter().map(|(t, _)| *t).collect();
    assert_eq!(
        timers[..4],
        [
            Timer::Reminder(1),
            Timer::Reminder(2),
            Timer::Escalation,
            Timer::Reminder(3),
        ]
    );
    // Reminders every 3h up to (not at) the expiry at 72h: 23 of them.
    assert_eq!(
        timers
            .iter()
            .filter(|t| matches!(t, Timer::Reminder(_)))
            .count(),
        23
    );
    assert_eq!(timers.last(), Some(&Timer::Expiry));
    assert_eq!(
        seen.last().map(|(_, at)| *at),
        Some(ts("2026-11-28T10:00:00Z"))
    );
}

#[test]
fn deadlines_passed_while_down_fire_once_on_start() {
    let s = schedule(Some(1));
    // The controller was down from 10:30 to 19:10; it had sent nothing.
    let now = ts("2026-11-25T19:10:00Z");
    let mut fired = Fired::default();
    let first = next_deadline(now, &s, fired).unwrap();
    assert_eq!(first.timer, Timer::Escalation);
    assert!(first.is_due(now));
    fired.record(first.timer);
    // Nine missed reminders collapse into the latest.
    let second = next_deadline(now, &s, fired).unwrap();
    assert_eq!(second.timer, Timer::Reminder(9));
    assert!(second.is_due(now));
    fired.record(second.timer);
    let third = next_deadline(now, &s, fired).unwrap();
    assert_eq!(
        third,
        Due {
            timer: Timer::Reminder(10),
            at: ts("2026-11-25T20:00:00Z")
        }
    );
    assert!(!third.is_due(now));
    // Restarted again before 20:00 with the same stored record: nothing fires twice.
    assert_eq!(next_deadline(now, &s, fired), Some(third));
}

#[test]
fn a_passed_expiry_wins_and_ends_the_timers() {
    let s = schedule(Some(1));
    let now = ts("2026-12-01T00:00:00Z");
    let due = next_deadline(now, &s, Fired::default()).unwrap();
    assert_eq!(due.timer, Timer::Expiry);
    let mut fired = Fired::default();
    fired.record(Timer::Expiry);
    assert_eq!(next_deadline(now, &s, fired), None);
}

#[test]
fn without_escalation_expiry_or_reminders_nothing_fires() {
    let s = Schedule::open(
        ts(OPENED),
        &SlaDurations {
            respond_within: h(4),
            escalate_after: None,
            expire_after: None,
            remind_every: None,
        },
    )
    .unwrap();
    assert_eq!(next_deadline(ts(OPENED), &s, Fired::default()), None);
}

fn durations() -> impl Strategy<Value = SlaDurations> {
    (
        1i64..100_000,
        proptest::option::of(0i64..100_000),
        proptest::option::of(0i64..100_000),
        proptest::option::of(60i64..50_000),
    )
        .prop_map(|(respond, esc, exp, remind)| {
            let respond = SignedDuration::from_secs(respond);
            let escalate = esc.map(|e| respond + SignedDuration::from_secs(e));
            let expire = exp.map(|e| escalate.unwrap_or(respond) + SignedDuration::from_secs(e));
            SlaDurations {
                respond_within: respond,
                escalate_after: escalate,
                expire_after: expire,
                remind_every: remind.map(SignedDuration::from_secs),
            }
        })
}

proptest! {
    #[test]
    fn deadlines_are_ordered(d in durations(), opened in 0i64..4_000_000_000) {
        let opened = Timestamp::from_second(opened).unwrap();
        let s = Schedule::open(opened, &d).unwrap();
        prop_assert!(s.opened_at < s.respond_by);
        if let Some(e) = s.escalate_at { prop_assert!(s.respond_by <= e); }
        if let Some(x) = s.expire_at {
            prop_assert!(s.respond_by <= x);
            if let Some(e) = s.escalate_at { prop_assert!(e <= x); }
        }
    }

    /// Firing every due timer at `now` yields non-decreasing times, each timer at most once,
    /// and then a future deadline at which the next timer is indeed due.
    #[test]
    fn next_deadline_is_monotone_and_fires_once(
        d in durations(),
        offset in 0i64..200_000,
        fired_reminders in 0u32..5,
        escalated in any::<bool>(),
    ) {
        let s = Schedule::open(ts(OPENED), &d).unwrap();
        let now = ts(OPENED) + SignedDuration::from_secs(offset);
        let mut fired = Fired { last_reminder: fired_reminders, escalated, expired: false };
        let mut last_at: Option<Timestamp> = None;
        let mut seen = std::collections::HashSet::new();
        let mut steps = 0;
        while let Some(due) = next_deadline(now, &s, fired) {
            steps += 1;
            prop_assert!(steps < 10, "more than a handful of timers due at once");
            if let Some(last) = last_at { prop_assert!(due.at >= last); }
            last_at = Some(due.at);
            if !due.is_due(now) {
                // Requeued at due.at: then exactly that timer is due.
                let later = next_deadline(due.at, &s, fired).unwrap();
                prop_assert!(later.is_due(due.at));
                prop_assert_eq!(later.timer, due.timer);
                break;
            }
            prop_assert!(seen.insert(due.timer), "{} fired twice", due.timer);
            fired.record(due.timer);
        }
    }
}

#[test]
fn defaults_file_sets_every_environment_and_overrides_one_value_by_value() {
    let defaults = SlaDefaults::parse(
        "respondWithin: 4h\nremindEvery: 1h\nexpireAfter: 3d\nenvironments:\n  production:\n    respondWithin: 30m\n    escalateAfter: 1h\n",
    )
    .unwrap();
    let prod = defaults.resolve("production", None).unwrap().unwrap();
    assert_eq!(prod.respond_within, SignedDuration::from_mins(30));
    assert_eq!(prod.escalate_after, Some(h(1)));
    assert_eq!(prod.expire_after, Some(h(72)));
    assert_eq!(prod.remind_every, Some(h(1)));
    let dev = defaults.resolve("dev", None).unwrap().unwrap();
    assert_eq!(dev.respond_within, h(4));
    assert_eq!(dev.escalate_after, None);
    assert_eq!(SlaDefaults::parse(""), Ok(SlaDefaults::default()));
}

#[test]
fn a_wrong_defaults_file_names_the_key() {
    let err = |yaml: &str| SlaDefaults::parse(yaml).unwrap_err().to_string();
    assert!(
        err("environments:\n  prod:\n    respondWithin: soon\n")
            .contains("environments.prod.respondWithin: `soon` is not a duration"),
        "{}",
        err("environments:\n  prod:\n    respondWithin: soon\n")
    );
    let unknown = err("respondWithin: 4h\nrespondwithin: 5h\n");
    assert!(unknown.contains("respondwithin"), "{unknown}");
    let order = err("respondWithin: 4h\nenvironments:\n  prod:\n    expireAfter: 1h\n");
    assert!(
        order.contains("environments.prod") && order.contains("expireAfter"),
        "{order}"
    );
}

#[test]
fn advance_fires_what_is_due_once_and_says_when_to_look_again() {
    let s = schedule(Some(3));
    // Down from the opening until after the escalation: reminders 1 and 2 collapse into
    // the latest, then the escalation; the next look is reminder 3.
    let late = ts("2026-11-25T18:30:00Z");
    let a = advance(late, &s, Fired::default());
    assert_eq!(a.fired_now, vec![Timer::Reminder(2), Timer::Escalation]);
    assert_eq!(a.next_at, Some(ts("2026-11-25T19:00:00Z")));
    let again = advance(late, &s, a.fired);
    assert!(again.fired_now.is_empty(), "{again:?}");
    assert_eq!(again.fired, a.fired);
    let after_expiry = advance(ts("2026-11-30T00:00:00Z"), &s, a.fired);
    assert_eq!(after_expiry.fired_now, vec![Timer::Expiry]);
    assert_eq!(after_expiry.next_at, None);
}

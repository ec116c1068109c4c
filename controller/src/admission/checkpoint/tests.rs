//! Unit tests of `checkpoint`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::admission::test_support::request;
use serde_json::json;

const CONTROLLER: &str = "system:serviceaccount:tollgate-system:tollgate";
const APPROVERS: &str = "tollgate:approvers";

fn policy() -> Policy {
    Policy::new([CONTROLLER, "admin"])
}

fn now() -> Timestamp {
    "2026-11-25T10:30:00Z".parse().unwrap()
}

fn checkpoint(spec_extra: Value, status: Value) -> Value {
    let mut spec = json!({
        "type": "PlanApproval", "projectRef": {"name": "demo"},
        "planRef": {"id": "p1", "digest": "a".repeat(64)},
        "summary": {"text": "1 to add", "add": 1, "change": 0, "destroy": 0},
        "requestedAt": "2026-11-25T10:00:00Z",
    });
    spec.as_object_mut()
        .unwrap()
        .extend(spec_extra.as_object().unwrap().clone());
    json!({
        "apiVersion": "tollgate.dev/v1alpha1", "kind": "Checkpoint",
        "metadata": {"name": "demo-plan-1", "namespace": "team-a", "uid": "cp-uid-1"},
        "spec": spec,
        "status": status,
    })
}

fn update(user: &str, groups: &[&str], spec: Value, old: Value, new: Value) -> Request {
    request(
        "checkpoints",
        Some("status"),
        "UPDATE",
        user,
        groups,
        Some(checkpoint(spec.clone(), new)),
        Some(checkpoint(spec, old)),
    )
}

/// Expected outcome: allowed, or denied with a message containing every fragment.
#[derive(Debug)]
enum Want {
    Allow,
    Deny(&'static [&'static str]),
}

struct Case {
    name: &'static str,
    user: &'static str,
    groups: &'static [&'static str],
    spec: Value,
    old: Value,
    new: Value,
    /// Answer of the SubjectAccessReview.
    may_approve: bool,
    mutate: Want,
    validate: Want,
}

fn stamped(mut status: Value, user: &str) -> Value {
    status["decidedBy"] = json!(user);
    status["decidedAt"] = json!("2026-11-25T10:30:00Z");
    status
}

fn cases() -> Vec<Case> {
    let pending = json!({"phase": "Pending"});
    let approve = json!({"phase": "Pending", "decision": "Approved", "reason": "reviewed"});
    let decided = json!({"phase": "Approved", "decision": "Approved", "reason": "ok", "decidedBy": "bob", "decidedAt": "2026-11-25T10:10:00Z"});
    let none = json!({});
    vec![
        Case {
            name: "approver decides",
            user: "alice",
            groups: &[APPROVERS],
            spec: none.clone(),
            old: pending.clone(),
            new: approve.clone(),
            may_approve: true,
            mutate: Want::Allow,
            validate: Want::Allow,
        },
        Case {
            name: "a typed decidedBy is allowed on the mutating path (it is overwritten)",
            user: "alice",
            groups: &[APPROVERS],
            spec: none.clone(),
            old: pending.clone(),
            new: json!({"phase": "Pending", "decision": "Rejected", "decidedBy": "bob", "decidedAt": "2020-01-01T00:00:00Z"}),
            may_approve: true,
            mutate: Want::Allow,
            validate: Want::Allow,
        },
        Case {
            name: "no RBAC verb approve",
            user: "carol",
            groups: &["tollgate:platform"],
            spec: none.clone(),
            old: pending.clone(),
            new: approve.clone(),
            may_approve: false,
            mutate: Want::Allow,
            validate: Want::Deny(&[
                "user carol may not approve checkpoints in team-a",
                "team-a/demo-plan-1",
                "RBAC verb approve on checkpoints.tollgate.dev",
                "ClusterRole tollgate-approver",
            ]),
        },
        Case {
            name: "decided: change to Rejected",
            user: "alice",
            groups: &[APPROVERS],
            spec: none.clone(),
            old: decided.clone(),
            new: json!({"phase": "Approved", "decision": "Rejected", "reason": "ok", "decidedBy": "bob", "decidedAt": "2026-11-25T10:10:00Z"}),
            may_approve: true,
            mutate: Want::Deny(&[
                "alice may not change the decision of checkpoint team-a/demo-plan-1",
                "already Approved by bob at 2026-11-25T10:10:00Z",
                "never be changed or withdrawn",
            ]),
            validate: Want::Deny(&["never be changed"]),
        },
        Case {
            name: "decided: withdrawn",
            user: "bob",
            groups: &[APPROVERS],
            spec: none.clone(),
            old: decided.clone(),
            new: json!({"phase": "Approved", "decidedBy": "bob", "decidedAt": "2026-11-25T10:10:00Z"}),
            may_approve: true,
            mutate: Want::Deny(&["never be changed or withdrawn"]),
            validate: Want::Deny(&["never be changed or withdrawn"]),
        },
        Case {
            name: "decided: reason edited",
            user: "bob",
            groups: &[APPROVERS],
            spec: none.clone(),
            old: decided.clone(),
            new: json!({"phase": "Approved", "decision": "Approved", "reason": "better words", "decidedBy": "bob", "decidedAt": "2026-11-25T10:10:00Z"}),
            may_approve: true,
            mutate: Want::Deny(&["never be changed"]),
            validate: Want::Deny(&["never be changed"]),
        },
        Case {
            name: "decided: decidedBy retyped",
            user: "alice",
            groups: &[APPROVERS],
            spec: none.clone(),
            old: decided.clone(),
            new: json!({"phase": "Approved", "decision": "Approved", "reason": "ok", "decidedBy": "alice", "decidedAt": "2026-11-25T10:10:00Z"}),
            may_approve: true,
            mutate: Want::Deny(&["never be changed"]),
            validate: Want::Deny(&["never be changed"]),
        },
        Case {
            name: "decided: a person's no-op update",
            user: "alice",
            groups: &[APPROVERS],
            spec: none.clone(),
            old: decided.clone(),
            new: decided.clone(),
            may_approve: false,
            mutate: Want::Allow,
            validate: Want::Allow,
        },
        Case {
            name: "person sets phase",
            user: "alice",
            groups: &[APPROVERS],
            spec: none.clone(),
            old: pending.clone(),
            new: json!({"phase": "Approved"}),
            may_approve: true,
            mutate: Want::Deny(&[
                "user alice may only set status.decision and status.reason of checkpoint team-a/demo-plan-1",
                "status.phase is written by the tollgate controller",
            ]),
            validate: Want::Deny(&["status.phase is written by the tollgate controller"]),
        },
        Case {
            name: "person decides and sets phase and conditions",
            user: "alice",
            groups: &[APPROVERS],
            spec: none.clone(),
            old: pending.clone(),
            new: json!({"phase": "Approved", "decision": "Approved", "conditions": [{"type": "Ready"}]}),
            may_approve: true,
            mutate: Want::Deny(&["status.conditions, status.phase are written"]),
            validate: Want::Deny(&["status.conditions, status.phase are written"]),
        },
        Case {
            name: "person adds a field tollgate does not know",
            user: "alice",
            groups: &[APPROVERS],
            spec: none.clone(),
            old: pending.clone(),
            new: json!({"phase": "Pending", "approvedPlan": "x"}),
            may_approve: true,
            mutate: Want::Deny(&["status.approvedPlan is written by the tollgate controller"]),
            validate: Want::Deny(&["status.approvedPlan"]),
        },
        Case {
            name: "reason without a decision",
            user: "alice",
            groups: &[APPROVERS],
            spec: none.clone(),
            old: pending.clone(),
            new: json!({"phase": "Pending", "reason": "thinking"}),
            may_approve: true,
            mutate: Want::Deny(&["only together with status.decision"]),
            validate: Want::Deny(&["only together with status.decision"]),
        },
        Case {
            name: "decidedBy without a decision",
            user: "alice",
            groups: &[APPROVERS],
            spec: none.clone(),
            old: pending.clone(),
            new: json!({"phase": "Pending", "decidedBy": "bob"}),
            may_approve: true,
            mutate: Want::Deny(&["may not write status.decidedBy"]),
            validate: Want::Deny(&["may not write status.decidedBy"]),
        },
        Case {
            name: "decision that is not a Decision",
            user: "alice",
            groups: &[APPROVERS],
            spec: none.clone(),
            old: pending.clone(),
            new: json!({"phase": "Pending", "decision": "Maybe"}),
            may_approve: true,
            mutate: Want::Deny(&["must be Approved or Rejected"]),
            validate: Want::Deny(&["must be Approved or Rejected"]),
        },
        Case {
            name: "Approved does not answer a FailureEscalation",
            user: "alice",
            groups: &[APPROVERS],
            spec: json!({"type": "FailureEscalation"}),
            old: pending.clone(),
            new: approve.clone(),
            may_approve: true,
            mutate: Want::Deny(&["(FailureEscalation) must be Retry, Rollback or Abandon"]),
            validate: Want::Deny(&["must be Retry, Rollback or Abandon"]),
        },
        Case {
            name: "Retry does not answer a PlanApproval",
            user: "alice",
            groups: &[APPROVERS],
            spec: none.clone(),
            old: pending.clone(),
            new: json!({"phase": "Pending", "decision": "Retry", "reason": "again"}),
            may_approve: true,
            mutate: Want::Deny(&["must be Approved or Rejected"]),
            validate: Want::Deny(&["must be Approved or Rejected"]),
        },
        Case {
            name: "approver answers a FailureEscalation with Rollback",
            user: "alice",
            groups: &[APPROVERS],
            spec: json!({"type": "FailureEscalation"}),
            old: pending.clone(),
            new: json!({"phase": "Pending", "decision": "Rollback", "reason": "back"}),
            may_approve: true,
            mutate: Want::Allow,
            validate: Want::Allow,
        },
        Case {
            name: "person's no-op update",
            user: "carol",
            groups: &[],
            spec: none.clone(),
            old: pending.clone(),
            new: pending.clone(),
            may_approve: false,
            mutate: Want::Allow,
            validate: Want::Allow,
        },
        Case {
            name: "controller sets phase, conditions and notifications",
            user: CONTROLLER,
            groups: &["system:serviceaccounts"],
            spec: none.clone(),
            old: decided.clone(),
            new: json!({"phase": "Approved", "decision": "Approved", "reason": "ok", "decidedBy": "bob", "decidedAt": "2026-11-25T10:10:00Z",
                        "conditions": [{"type": "Ready", "status": "True"}], "notifications": [{"channel": "slack", "event": "Decided", "at": "2026-11-25T10:11:00Z"}]}),
            may_approve: false,
            mutate: Want::Allow,
            validate: Want::Allow,
        },
        Case {
            name: "controller sets a decision",
            user: CONTROLLER,
            groups: &[],
            spec: none.clone(),
            old: pending.clone(),
            new: approve.clone(),
            may_approve: true,
            mutate: Want::Deny(&[
                "is the tollgate controller and may not write status.decision, status.reason of checkpoint team-a/demo-plan-1",
            ]),
            validate: Want::Deny(&["tollgate controller"]),
        },
        Case {
            name: "controller (admin in e2e) stamps decidedBy",
            user: "admin",
            groups: &["system:masters"],
            spec: none.clone(),
            old: pending.clone(),
            new: json!({"phase": "Pending", "decidedBy": "admin"}),
            may_approve: true,
            mutate: Want::Deny(&["may not write status.decidedBy"]),
            validate: Want::Deny(&["may not write status.decidedBy"]),
        },
        Case {
            name: "controller removes a decision",
            user: CONTROLLER,
            groups: &[],
            spec: none.clone(),
            old: decided.clone(),
            new: json!({"phase": "Approved"}),
            may_approve: true,
            mutate: Want::Deny(&[
                "status.decidedAt, status.decidedBy, status.decision, status.reason",
            ]),
            validate: Want::Deny(&["tollgate controller"]),
        },
        Case {
            name: "four eyes: the author decides",
            user: "alice",
            groups: &[APPROVERS],
            spec: json!({"requestedBy": "alice", "approvers": {"forbidSelfApproval": true}}),
            old: pending.clone(),
            new: approve.clone(),
            may_approve: true,
            mutate: Want::Deny(&[
                "user alice may not decide checkpoint team-a/demo-plan-1: four eyes: you last changed the Project; another approver must decide",
            ]),
            validate: Want::Deny(&["four eyes"]),
        },
        Case {
            name: "a superseded checkpoint cannot be decided",
            user: "alice",
            groups: &[APPROVERS],
            spec: none.clone(),
            old: json!({"phase": "Superseded"}),
            new: json!({"phase": "Superseded", "decision": "Approved", "reason": "late"}),
            may_approve: true,
            mutate: Want::Deny(&["is Superseded: its plan will never be applied"]),
            validate: Want::Deny(&["is Superseded"]),
        },
        Case {
            name: "four eyes: another approver decides",
            user: "bob",
            groups: &[APPROVERS],
            spec: json!({"requestedBy": "alice", "approvers": {"forbidSelfApproval": true}}),
            old: pending.clone(),
            new: approve.clone(),
            may_approve: true,
            mutate: Want::Allow,
            validate: Want::Allow,
        },
        Case {
            name: "four eyes without a recorded author",
            user: "bob",
            groups: &[APPROVERS],
            spec: json!({"approvers": {"forbidSelfApproval": true}}),
            old: pending.clone(),
            new: approve.clone(),
            may_approve: true,
            mutate: Want::Deny(&["spec.requestedBy is empty", "change the Project"]),
            validate: Want::Deny(&["spec.requestedBy is empty"]),
        },
        Case {
            name: "self approval allowed when not forbidden",
            user: "alice",
            groups: &[APPROVERS],
            spec: json!({"requestedBy": "alice"}),
            old: pending.clone(),
            new: approve.clone(),
            may_approve: true,
            mutate: Want::Allow,
            validate: Want::Allow,
        },
        Case {
            name: "approvers by user: not listed",
            user: "alice",
            groups: &[APPROVERS],
            spec: json!({"approvers": {"users": ["bob"]}}),
            old: pending.clone(),
            new: approve.clone(),
            may_approve: true,
            mutate: Want::Deny(&[
                "user alice may not decide checkpoint team-a/demo-plan-1: only its approvers may (users bob)",
            ]),
            validate: Want::Deny(&["only its approvers may"]),
        },
        Case {
            name: "approvers by user: listed",
            user: "bob",
            groups: &[APPROVERS],
            spec: json!({"approvers": {"users": ["bob"]}}),
            old: pending.clone(),
            new: approve.clone(),
            may_approve: true,
            mutate: Want::Allow,
            validate: Want::Allow,
        },
        Case {
            name: "approvers by group: member",
            user: "alice",
            groups: &["system:authenticated", "sre"],
            spec: json!({"approvers": {"users": ["bob"], "groups": ["sre"]}}),
            old: pending.clone(),
            new: approve.clone(),
            may_approve: true,
            mutate: Want::Allow,
            validate: Want::Allow,
        },
        Case {
            name: "approvers by group: not a member",
            user: "alice",
            groups: &[APPROVERS],
            spec: json!({"approvers": {"groups": ["sre"]}}),
            old: pending.clone(),
            new: approve.clone(),
            may_approve: true,
            mutate: Want::Deny(&["only its approvers may (groups sre)"]),
            validate: Want::Deny(&["groups sre"]),
        },
        Case {
            name: "listed approver still needs RBAC",
            user: "bob",
            groups: &[APPROVERS],
            spec: json!({"approvers": {"users": ["bob"]}}),
            old: pending.clone(),
            new: approve.clone(),
            may_approve: false,
            mutate: Want::Allow,
            validate: Want::Deny(&["needs the RBAC verb approve"]),
        },
        Case {
            name: "first status write by a person",
            user: "alice",
            groups: &[APPROVERS],
            spec: none.clone(),
            old: json!(null),
            new: json!({"decision": "Approved"}),
            may_approve: true,
            mutate: Want::Allow,
            validate: Want::Allow,
        },
    ]
}

fn check(case: &str, path: &str, verdict: &Verdict, want: &Want) {
    match (verdict, want) {
        (Verdict::Allow { .. }, Want::Allow) => {}
        (Verdict::Deny(message), Want::Deny(fragments)) => {
            for fragment in *fragments {
                assert!(
                    message.contains(fragment),
                    "{case} ({path}): {message:?} lacks {fragment:?}"
                );
            }
        }
        _ => panic!("{case} ({path}): got {verdict:?}, want {want:?}"),
    }
}

#[test]
fn table() {
    for case in cases() {
        let req = update(
            case.user,
            case.groups,
            case.spec.clone(),
            case.old.clone(),
            case.new.clone(),
        );
        let mutated = mutate_checkpoint_status(&policy(), &req, now());
        check(case.name, "mutate", &mutated, &case.mutate);
        // The validating webhook sees the object after the mutating one.
        let new = match &mutated {
            Verdict::Allow { patch, .. } if !patch.is_empty() => {
                stamped(case.new.clone(), case.user)
            }
            _ => case.new.clone(),
        };
        let after = if matches!(case.mutate, Want::Allow) {
            update(
                case.user,
                case.groups,
                case.spec.clone(),
                case.old.clone(),
                new,
            )
        } else {
            req.clone()
        };
        let validated = validate_checkpoint_status(&policy(), &after, case.may_approve, now());
        check(case.name, "validate", &validated, &case.validate);
    }
}

fn sealing_policy() -> (std::sync::Arc<crate::seal::SealKey>, Policy) {
    let key = std::sync::Arc::new(
        crate::seal::SealKey::from_bytes(&[3u8; crate::seal::KEY_LEN]).unwrap(),
    );
    (key.clone(), policy().with_seal_key(key))
}

#[test]
fn mutation_seals_the_decision_and_validation_refuses_any_change_after_it() {
    let (key, policy) = sealing_policy();
    let old = json!({"phase": "Pending"});
    let typed = json!({"phase": "Pending", "decision": "Approved", "reason": "ok", "decidedBy": "bob", "decisionSeal": "v1.00"});
    let req = update("alice", &[APPROVERS], json!({}), old.clone(), typed);
    let Verdict::Allow { patch, .. } = mutate_checkpoint_status(&policy, &req, now()) else {
        panic!("denied")
    };
    let mut object = serde_json::to_value(req.object.as_ref().unwrap()).unwrap();
    json_patch::patch(&mut object, &patch).unwrap();
    let status = object["status"].clone();
    let digest = "a".repeat(64);
    let sealed = SealedDecision {
        checkpoint_uid: "cp-uid-1",
        plan_digest: &digest,
        decision: "Approved",
        decided_by: "alice",
        decided_at: "2026-11-25T10:30:00Z",
        reason: "ok",
    };
    assert_eq!(key.verify(&sealed, status["decisionSeal"].as_str()), Ok(()));

    let validate = |status: Value| {
        let req = update("alice", &[APPROVERS], json!({}), old.clone(), status);
        validate_checkpoint_status(&policy, &req, true, now())
    };
    assert_eq!(validate(status.clone()), Verdict::allow());
    let mut altered = status.clone();
    altered["reason"] = json!("something else");
    let mut unsealed = status.clone();
    unsealed.as_object_mut().unwrap().remove("decisionSeal");
    for (what, status) in [("altered reason", altered), ("no seal", unsealed)] {
        match validate(status) {
            Verdict::Deny(message) => assert!(
                message.contains("altered after tollgate's mutating webhook sealed it"),
                "{what}: {message}"
            ),
            other => panic!("{what}: {other:?}"),
        }
    }
}

#[test]
fn the_controller_may_not_write_a_seal() {
    let (_, policy) = sealing_policy();
    let req = update(
        CONTROLLER,
        &[],
        json!({}),
        json!({"phase": "Pending"}),
        json!({"phase": "Pending", "decisionSeal": "v1.00"}),
    );
    let Verdict::Deny(message) = mutate_checkpoint_status(&policy, &req, now()) else {
        panic!("allowed")
    };
    assert!(message.contains("status.decisionSeal"), "{message}");
}

#[test]
fn mutation_stamps_the_requesters_name_and_now() {
    let req = update(
        "alice",
        &[APPROVERS],
        json!({}),
        json!({"phase": "Pending"}),
        json!({"phase": "Pending", "decision": "Approved", "decidedBy": "bob", "decidedAt": "2020-01-01T00:00:00Z"}),
    );
    let Verdict::Allow { patch, warnings } = mutate_checkpoint_status(&policy(), &req, now())
    else {
        panic!("denied")
    };
    let mut object = serde_json::to_value(req.object.as_ref().unwrap()).unwrap();
    json_patch::patch(&mut object, &patch).unwrap();
    assert_eq!(object["status"]["decidedBy"], "alice");
    assert_eq!(object["status"]["decidedAt"], "2026-11-25T10:30:00Z");
    assert_eq!(object["status"]["decision"], "Approved");
    assert!(
        warnings[0].contains("\"bob\" was replaced by \"alice\""),
        "{warnings:?}"
    );
}

#[test]
fn mutation_of_a_status_without_the_stamp_fields_adds_them() {
    let req = update(
        "bob",
        &[APPROVERS],
        json!({}),
        json!({}),
        json!({"decision": "Rejected"}),
    );
    let Verdict::Allow { patch, warnings } = mutate_checkpoint_status(&policy(), &req, now())
    else {
        panic!("denied")
    };
    assert!(warnings.is_empty());
    let mut object = serde_json::to_value(req.object.as_ref().unwrap()).unwrap();
    json_patch::patch(&mut object, &patch).unwrap();
    assert_eq!(object["status"]["decidedBy"], "bob");
}

#[test]
fn validation_refuses_a_typed_decided_by_that_was_not_stamped() {
    // What the validating webhook sees if the mutating one is missing.
    let req = update(
        "alice",
        &[APPROVERS],
        json!({}),
        json!({}),
        json!({"decision": "Approved", "decidedBy": "bob", "decidedAt": "2026-11-25T10:30:00Z"}),
    );
    let verdict = validate_checkpoint_status(&policy(), &req, true, now());
    let message = verdict.denial().unwrap();
    assert!(
        message.contains("must be the deciding user alice"),
        "{message}"
    );
    assert!(
        message.contains("MutatingWebhookConfiguration"),
        "{message}"
    );
}

#[test]
fn validation_requires_a_fresh_stamp() {
    let stale = update(
        "alice",
        &[APPROVERS],
        json!({}),
        json!({}),
        json!({"decision": "Approved", "decidedBy": "alice", "decidedAt": "2026-11-25T10:00:00Z"}),
    );
    let verdict = validate_checkpoint_status(&policy(), &stale, true, now());
    assert!(
        verdict.denial().unwrap().contains("decidedAt"),
        "{verdict:?}"
    );
    let fresh = update(
        "alice",
        &[APPROVERS],
        json!({}),
        json!({}),
        json!({"decision": "Approved", "decidedBy": "alice", "decidedAt": "2026-11-25T10:28:00Z"}),
    );
    assert!(validate_checkpoint_status(&policy(), &fresh, true, now()).is_allowed());
}

#[test]
fn approvers_come_from_the_stored_spec_not_the_request() {
    // A user sending a spec to /status cannot add themselves as an approver.
    let mut req = update(
        "alice",
        &[APPROVERS],
        json!({"approvers": {"users": ["bob"]}}),
        json!({}),
        json!({"decision": "Approved"}),
    );
    let object = req.object.as_mut().unwrap();
    object.data["spec"]["approvers"]["users"] = json!(["alice"]);
    let verdict = mutate_checkpoint_status(&policy(), &req, now());
    assert!(
        verdict.denial().unwrap().contains("only its approvers"),
        "{verdict:?}"
    );
}

#[test]
fn access_review_asks_approve_on_this_checkpoint_as_the_requester() {
    let req = update(
        "carol",
        &["tollgate:platform"],
        json!({}),
        json!({}),
        json!({"decision": "Approved"}),
    );
    let review = approval_access_review(&policy(), &req).unwrap();
    let spec = review.spec;
    assert_eq!(spec.user.as_deref(), Some("carol"));
    assert_eq!(spec.uid.as_deref(), Some("uid-carol"));
    assert_eq!(spec.groups, Some(vec!["tollgate:platform".to_owned()]));
    assert_eq!(spec.extra.unwrap()["scopes"], vec!["a".to_owned()]);
    let attributes = spec.resource_attributes.unwrap();
    assert_eq!(attributes.group.as_deref(), Some("tollgate.dev"));
    assert_eq!(attributes.resource.as_deref(), Some("checkpoints"));
    assert_eq!(attributes.verb.as_deref(), Some("approve"));
    assert_eq!(attributes.namespace.as_deref(), Some("team-a"));
    assert_eq!(attributes.name.as_deref(), Some("demo-plan-1"));
    assert_eq!(attributes.subresource, None);
}

#[test]
fn access_review_only_for_new_decisions() {
    let controller = update(
        CONTROLLER,
        &[],
        json!({}),
        json!({}),
        json!({"phase": "Pending"}),
    );
    assert!(approval_access_review(&policy(), &controller).is_none());
    let denied = update(
        "alice",
        &[],
        json!({}),
        json!({}),
        json!({"phase": "Pending"}),
    );
    assert!(approval_access_review(&policy(), &denied).is_none());
    let noop = update(
        "alice",
        &[],
        json!({}),
        json!({"phase": "Pending"}),
        json!({"phase": "Pending"}),
    );
    assert!(approval_access_review(&policy(), &noop).is_none());
}

#[test]
fn other_requests_are_refused_as_misconfiguration() {
    let spec_update = request(
        "checkpoints",
        None,
        "UPDATE",
        "alice",
        &[],
        Some(checkpoint(json!({}), json!({}))),
        Some(checkpoint(json!({}), json!({}))),
    );
    for verdict in [
        mutate_checkpoint_status(&policy(), &spec_update, now()),
        validate_checkpoint_status(&policy(), &spec_update, true, now()),
    ] {
        assert!(
            verdict
                .denial()
                .unwrap()
                .contains("only UPDATE of checkpoints/status"),
            "{verdict:?}"
        );
    }
    let anonymous = update(
        "",
        &[],
        json!({}),
        json!({}),
        json!({"decision": "Approved"}),
    );
    assert!(
        mutate_checkpoint_status(&policy(), &anonymous, now())
            .denial()
            .unwrap()
            .contains("no username")
    );
    let mut no_old = update(
        "alice",
        &[],
        json!({}),
        json!({}),
        json!({"decision": "Approved"}),
    );
    no_old.old_object = None;
    assert!(
        validate_checkpoint_status(&policy(), &no_old, true, now())
            .denial()
            .unwrap()
            .contains("no object or oldObject")
    );
}

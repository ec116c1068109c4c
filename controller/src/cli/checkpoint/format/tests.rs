#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{Value, json};

use super::*;
use crate::api::CostStatus;

const NOW: &str = "2026-11-25T12:00:00Z";

pub(crate) fn now() -> Timestamp {
    NOW.parse().unwrap()
}

pub(crate) fn checkpoint(namespace: &str, name: &str, spec: Value, status: Value) -> Checkpoint {
    let mut full = json!({
        "type": "PlanApproval", "projectRef": {"name": "shop"},
        "planRef": {"id": "shop-7", "digest": "3f".repeat(32)},
        "summary": {"text": "1 to add, 0 to change, 0 to destroy", "add": 1, "change": 0, "destroy": 0,
                    "changes": ["create module.app.terraform_data.this"]},
        "requestedAt": "2026-11-25T10:00:00Z",
    });
    if let (Some(full), Some(extra)) = (full.as_object_mut(), spec.as_object()) {
        full.extend(extra.clone());
    }
    serde_json::from_value(json!({
        "apiVersion": "tollgate.dev/v1alpha1", "kind": "Checkpoint",
        "metadata": {"name": name, "namespace": namespace,
                     "creationTimestamp": full["requestedAt"].clone()},
        "spec": full, "status": status,
    }))
    .unwrap()
}

/// A day's queue: overdue, due soon, no SLA, decided, expired, a destroy with risks.
fn queue() -> Vec<Checkpoint> {
    vec![
        checkpoint(
            "team-b",
            "web-0a1b2c3d4e5f",
            json!({"projectRef": {"name": "web"}, "requestedAt": "2026-11-25T11:40:00Z",
                   "sla": {"respondBy": "2026-11-25T15:40:00Z"},
                   "summary": {"text": "2 to add, 1 to change, 0 to destroy", "add": 2, "change": 1, "destroy": 0,
                               "cost": {"before": "10.00", "after": "22.40", "delta": "12.40", "budget": "100.00"}}}),
            json!({"phase": "Pending"}),
        ),
        checkpoint(
            "team-a",
            "shop-destroy-9f8e7d6c5b4a",
            json!({"type": "Destroy", "requestedAt": "2026-11-24T08:00:00Z",
                   "sla": {"respondBy": "2026-11-24T12:00:00Z", "escalateAt": "2026-11-24T16:00:00Z", "expireAt": "2026-11-27T08:00:00Z"},
                   "summary": {"text": "0 to add, 0 to change, 3 to destroy", "add": 0, "change": 0, "destroy": 3,
                               "risks": ["StatefulDestroy module.db.aws_db_instance.this: deletes the database and its data",
                                         "StatefulDestroy module.files.aws_s3_bucket.this: deletes the bucket",
                                         "IamChange module.app.aws_iam_role.this: removes a role"],
                               "cost": {"before": "140.00", "after": "0.00", "delta": "-140.00"}}}),
            json!({"phase": "Escalated"}),
        ),
        checkpoint(
            "team-a",
            "shop-3f3f3f3f3f3f",
            json!({"requestedAt": "2026-11-25T09:00:00Z", "requestedBy": "carol",
                   "sla": {"respondBy": "2026-11-25T13:00:00Z"},
                   "summary": {"text": "1 to add, 0 to change, 0 to destroy", "add": 1, "change": 0, "destroy": 0,
                               "cost": {"before": "0", "after": "0", "delta": "0"}}}),
            json!({}),
        ),
        checkpoint(
            "team-a",
            "api-111111111111",
            json!({"projectRef": {"name": "api"}, "type": "BudgetIncrease", "requestedAt": "2026-11-23T12:00:00Z"}),
            json!({"phase": "Approved", "decision": "Approved", "decidedBy": "alice",
                   "decidedAt": "2026-11-23T12:20:00Z", "reason": "planned growth"}),
        ),
        checkpoint(
            "team-c",
            "old-222222222222",
            json!({"projectRef": {"name": "old"}, "requestedAt": "2026-11-20T12:00:00Z",
                   "sla": {"respondBy": "2026-11-20T16:00:00Z", "expireAt": "2026-11-23T12:00:00Z"}}),
            json!({"phase": "Expired"}),
        ),
    ]
}

fn sorted() -> Vec<Checkpoint> {
    let mut q = queue();
    sort_by_deadline(&mut q);
    q
}

#[test]
fn list_sorts_by_deadline() {
    let names: Vec<String> = sorted()
        .iter()
        .map(|c| c.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "old-222222222222",
            "api-111111111111",
            "shop-destroy-9f8e7d6c5b4a",
            "shop-3f3f3f3f3f3f",
            "web-0a1b2c3d4e5f"
        ]
    );
}

#[test]
fn list_table() {
    insta::assert_snapshot!("list_table", table(&sorted(), now(), false));
}

#[test]
fn list_wide() {
    insta::assert_snapshot!("list_wide", table(&sorted(), now(), true));
}

#[test]
fn list_pending_only() {
    let pending: Vec<Checkpoint> = sorted().into_iter().filter(is_pending).collect();
    insta::assert_snapshot!("list_pending", table(&pending, now(), false));
}

#[test]
fn list_json_is_a_kubernetes_list() {
    let out: Value = serde_json::from_str(&json(&sorted()).unwrap()).unwrap();
    assert_eq!(out["kind"], "List");
    assert_eq!(out["items"].as_array().unwrap().len(), 5);
    assert_eq!(out["items"][0]["metadata"]["name"], "old-222222222222");
}

#[test]
fn show_a_risky_destroy() {
    let destroy = &queue()[1];
    insta::assert_snapshot!(
        "show_destroy",
        show(destroy, Review::Missing, ProjectCost::OtherPlan, now())
    );
}

#[test]
fn show_with_the_projects_per_resource_costs() {
    let mut web = queue()[0].clone();
    web.spec.reasons = vec![
        "monthly cost rises by $12.40 (threshold $0)".into(),
        "no ApprovalPolicy selects this Project's namespace and environment".into(),
    ];
    web.spec.summary.changes = vec![
        "create module.app.aws_instance.this".into(),
        "create module.app.aws_ebs_volume.data".into(),
        "update module.lb.aws_lb.this".into(),
    ];
    web.spec.approvers = Some(crate::api::ApproverSet {
        users: vec![],
        groups: vec!["tollgate:approvers".into()],
        forbid_self_approval: true,
    });
    let cost = CostStatus {
        monthly: "22.40".into(),
        delta: "12.40".into(),
        currency: "USD".into(),
        top_resources: vec![
            crate::api::ResourceCost {
                address: "module.app.aws_instance.this".into(),
                monthly: "15.18".into(),
            },
            crate::api::ResourceCost {
                address: "module.lb.aws_lb.this".into(),
                monthly: "7.22".into(),
            },
        ],
        unpriced: vec!["module.app.aws_ebs_volume.data: no price for volume type io2".into()],
    };
    let review: crate::plan::PlanReview = serde_json::from_value(json!({"changes": [
        {"address": "module.app.aws_instance.this", "action": "create", "attributes": [
            {"path": "ami", "after": "\"ami-0abc\""},
            {"path": "id", "after": "(known after apply)"},
            {"path": "user_data", "after": "(sensitive)"}]},
        {"address": "module.app.aws_ebs_volume.data", "action": "create", "attributes": [], "omittedAttributes": 120},
        {"address": "module.lb.aws_lb.this", "action": "update", "attributes": [
            {"path": "tags.team", "before": "\"web\"", "after": "\"platform\""},
            {"path": "tags.old", "before": "\"x\""}]}
    ], "omittedChanges": 2}))
    .unwrap();
    insta::assert_snapshot!(
        "show_with_costs",
        show(
            &web,
            Review::Stored(&review),
            ProjectCost::ThisPlan(&cost),
            now()
        )
    );
}

#[test]
fn show_a_decided_checkpoint() {
    insta::assert_snapshot!(
        "show_decided",
        show(
            &queue()[3],
            Review::Unreadable(
                "ConfigMap x-review: configmaps \"x-review\" is forbidden: User \"dave\" cannot get resource \"configmaps\""
            ),
            ProjectCost::Unreadable,
            now()
        )
    );
}

#[test]
fn watch_lines() {
    let q = queue();
    let lines = [
        watch_line(Change::Listed, &q[2], now()),
        watch_line(Change::Added, &q[0], now()),
        watch_line(Change::Modified, &q[3], now()),
        watch_line(Change::Deleted, &q[4], now()),
    ];
    insta::assert_snapshot!("watch_lines", lines.join("\n"));
}

#[test]
fn durations_for_people() {
    let s = SignedDuration::from_secs;
    assert_eq!(human(s(45)), "45s");
    assert_eq!(human(s(80 * 60)), "1h20m");
    assert_eq!(human(s(86_400 + 3 * 3600 + 59)), "1d3h");
    assert_eq!(human(s(86_400 + 300)), "1d");
    assert_eq!(human(s(-1200)), "20m");
    assert_eq!(signed_usd("12.40"), "+$12.40");
    assert_eq!(signed_usd("-3.00"), "-$3.00");
    assert_eq!(signed_usd("0.00"), "$0.00");
}

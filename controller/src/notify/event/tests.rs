//! Unit tests of notifications built from checkpoints, drift and cost events.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use super::*;
use crate::api::{CheckpointSpec, CheckpointStatus, CheckpointSummary, PlanRef, ProjectRef, Sla};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};

/// A checkpoint with everything a message shows, for renderer snapshots.
pub(crate) fn sample(event: EventKind) -> Notification {
    let at: Timestamp = "2026-03-01T09:00:00Z".parse().unwrap();
    let t = |s: &str| Time(s.parse().unwrap());
    let mut cp = Checkpoint::new(
        "web-plan-1a2b3c",
        CheckpointSpec {
            checkpoint_type: CheckpointType::PlanApproval,
            project_ref: ProjectRef {
                name: "web".into(),
                namespace: None,
            },
            plan_ref: Some(PlanRef {
                id: "p-7".into(),
                digest: "ab".repeat(32),
            }),
            summary: CheckpointSummary {
                text: "6 to add, 1 to change, 1 to destroy".into(),
                add: 6,
                change: 1,
                destroy: 1,
                changes: (1..=7)
                    .map(|i| format!("create module.app.aws_instance.web[{i}]"))
                    .chain(["delete module.db.aws_db_instance.this".to_owned()])
                    .collect(),
                risks: vec![
                    "StatefulDestroy module.db.aws_db_instance.this: <data> & backups lost".into(),
                ],
                cost: Some(CheckpointCost {
                    before: "10.00".into(),
                    after: "25.50".into(),
                    delta: "15.50".into(),
                    budget: Some("250".into()),
                }),
            },
            reasons: vec!["production always needs a person".into()],
            requested_at: MicroTime(t("2026-03-01T08:55:00Z").0),
            sla: Some(Sla {
                respond_by: t("2026-03-01T09:30:00Z"),
                escalate_at: Some(t("2026-03-01T10:00:00Z")),
                expire_at: Some(t("2026-03-04T09:00:00Z")),
                remind_every: None,
            }),
            approvers: None,
            requested_by: Some("carol".into()),
            effective_policy: None,
            policy: None,
            secret: None,
        },
    );
    cp.metadata.namespace = Some("team-a".into());
    cp.metadata.uid = Some("0b6c3d1e-uid".into());
    if event == EventKind::Decided {
        cp.status = Some(CheckpointStatus {
            decision: Some(Decision::Approved),
            reason: Some("looks <fine> & \"reviewed\"".into()),
            decided_by: Some("alice".into()),
            ..CheckpointStatus::default()
        });
    }
    let n = Notification::from_checkpoint(event, &cp, "production", at);
    if event == EventKind::ApplyFailed {
        n.with_detail("terraform apply: Error: creating EC2 Instance: UnauthorizedOperation")
    } else {
        n
    }
}

#[test]
fn commands_are_the_documented_kubectl_patch() {
    let n = sample(EventKind::Opened);
    assert_eq!(
        n.approve_command(),
        r#"kubectl patch checkpoint web-plan-1a2b3c -n team-a --subresource=status --type=merge -p '{"status":{"decision":"Approved","reason":"…"}}'"#
    );
    assert!(n.reject_command().contains(r#""decision":"Rejected""#));
}

#[test]
fn a_destroy_checkpoint_elsewhere_names_the_project_and_patches_where_it_lives() {
    let mut n = sample(EventKind::DestroyWaiting);
    let mut cp_json = serde_json::json!({
        "apiVersion": "tollgate.dev/v1alpha1", "kind": "Checkpoint",
        "metadata": {"name": "web-destroy", "namespace": "tollgate-system", "uid": "u"},
        "spec": {"type": "Destroy", "projectRef": {"name": "web", "namespace": "team-a"},
                 "summary": {"text": "", "add": 0, "change": 0, "destroy": 2},
                 "requestedAt": "2026-03-01T09:00:00Z"}
    });
    let cp: Checkpoint = serde_json::from_value(cp_json.take()).unwrap();
    n = Notification::from_checkpoint(n.event, &cp, "production", n.at);
    assert!(n.title().contains("team-a/web"), "{}", n.title());
    assert!(
        n.approve_command()
            .contains("web-destroy -n tollgate-system")
    );
}

#[test]
fn lists_a_few_changes_and_counts_the_rest() {
    let n = sample(EventKind::Opened);
    let (shown, more) = n.listed_changes();
    assert_eq!(shown.len(), MAX_LISTED_CHANGES);
    assert_eq!(more, 3);
    assert_eq!(
        n.cost_line().as_deref(),
        Some("$10.00 → $25.50 (+15.50) per month")
    );
}

#[test]
fn decided_carries_the_decision() {
    let n = sample(EventKind::Decided);
    assert_eq!(
        n.decision_line().as_deref(),
        Some(r#"Approved by alice: "looks <fine> & "reviewed"""#)
    );
}

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::json;

use super::*;

fn status(code: u16, reason: &str, message: &str) -> Status {
    Status {
        code,
        reason: reason.into(),
        message: message.into(),
        ..Status::default()
    }
}

fn checkpoint(name: &str) -> Checkpoint {
    serde_json::from_value(json!({
        "apiVersion": "tollgate.dev/v1alpha1", "kind": "Checkpoint",
        "metadata": {"name": name, "namespace": "team-a"},
        "spec": {"type": "PlanApproval", "projectRef": {"name": "shop"},
                 "summary": {"text": "1 to add, 0 to change, 0 to destroy", "add": 1, "change": 0, "destroy": 0},
                 "requestedAt": "2026-11-25T10:00:00Z"},
    }))
    .unwrap()
}

const WEBHOOK_DENIED: &str = "admission webhook \"checkpoint-status.validate.tollgate.dev\" denied the request: user carol may not approve checkpoints in team-a: deciding checkpoint team-a/shop-2 needs the RBAC verb approve on checkpoints.tollgate.dev (ClusterRole tollgate-approver)";

/// Approves `shop-1`; refuses everything else as the webhook does for carol.
struct FakeApi;

impl Decider for FakeApi {
    async fn decide(
        &self,
        _namespace: &str,
        name: &str,
        decision: Decision,
        reason: &str,
    ) -> Result<Checkpoint, kube::Error> {
        if name == "shop-1" {
            let mut c = checkpoint(name);
            c.status = Some(crate::api::CheckpointStatus {
                decision: Some(decision),
                reason: Some(reason.into()),
                decided_by: Some("alice".into()),
                ..Default::default()
            });
            Ok(c)
        } else {
            Err(kube::Error::Api(Box::new(status(
                403,
                "Forbidden",
                WEBHOOK_DENIED,
            ))))
        }
    }
}

fn request() -> Request<'static> {
    Request {
        decision: Decision::Approved,
        reason: "reviewed",
        now: "2026-11-25T12:00:00Z".parse().unwrap(),
    }
}

#[tokio::test]
async fn each_is_shown_confirmed_and_decided_and_refusals_say_why() {
    let targets = vec![
        Target::Found(Box::new(checkpoint("shop-1"))),
        Target::Found(Box::new(checkpoint("shop-2"))),
        Target::Found(Box::new(checkpoint("shop-3"))),
        Target::Unreadable {
            namespace: "team-a".into(),
            name: "typo".into(),
            error: kube::Error::Api(Box::new(status(
                404,
                "NotFound",
                "checkpoints.tollgate.dev \"typo\" not found",
            ))),
        },
    ];
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let outcome = decide_all(
        &FakeApi,
        targets,
        &request(),
        |c| Ok(c.metadata.name.as_deref() != Some("shop-3")),
        &mut out,
        &mut err,
    )
    .await
    .unwrap();
    assert_eq!(
        outcome,
        Outcome {
            decided: 1,
            refused: 2,
            declined: 1
        }
    );
    assert_eq!(outcome.exit_code(), EXIT_REFUSED);
    insta::assert_snapshot!("decide_stdout", String::from_utf8(out).unwrap());
    insta::assert_snapshot!("decide_stderr", String::from_utf8(err).unwrap());
}

#[tokio::test]
async fn nothing_matched_is_its_own_exit_code() {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let outcome = decide_all(
        &FakeApi,
        vec![],
        &request(),
        |_| Ok(true),
        &mut out,
        &mut err,
    )
    .await
    .unwrap();
    assert_eq!(outcome.exit_code(), EXIT_NOTHING);
    assert_eq!(
        String::from_utf8(err).unwrap(),
        "nothing to approve: no checkpoint matched\n"
    );
    let all_decided = Outcome {
        decided: 2,
        refused: 0,
        declined: 1,
    };
    assert_eq!(all_decided.exit_code(), EXIT_DECIDED);
}

#[test]
fn refusals_name_the_permission_or_rule() {
    let cases = [
        (
            status(
                403,
                "Forbidden",
                "checkpoints.tollgate.dev \"x\" is forbidden: User \"carol\" cannot patch resource \"checkpoints/status\" in API group \"tollgate.dev\" in the namespace \"team-a\"",
            ),
            "permission: RBAC, you may not patch checkpoints/status in namespace team-a",
        ),
        (
            status(403, "Forbidden", WEBHOOK_DENIED),
            "tollgate's admission webhook checkpoint-status.validate.tollgate.dev: permission: the RBAC verb approve",
        ),
        (
            status(
                403,
                "Forbidden",
                "admission webhook \"checkpoint-status.mutate.tollgate.dev\" denied the request: user alice may not decide checkpoint team-a/x: four eyes: you last changed the Project; another approver must decide",
            ),
            "rule: four eyes",
        ),
        (
            status(
                403,
                "Forbidden",
                "ValidatingAdmissionPolicy 'tollgate-checkpoint-decisions' with binding 'b' denied request: checkpoint team-a/x is Superseded: its plan will never be applied",
            ),
            "the apiserver's ValidatingAdmissionPolicy tollgate-checkpoint-decisions (tollgate's decision rules): rule: only the Project's current checkpoint",
        ),
        (
            status(422, "Invalid", "a decision cannot be changed once made"),
            "rule: the Checkpoint's schema",
        ),
        (
            status(404, "NotFound", "not found"),
            "not found: no such checkpoint in namespace team-a",
        ),
        (
            status(401, "Unauthorized", "Unauthorized"),
            "authentication",
        ),
    ];
    for (status, expected) in cases {
        let said = refused_by(&status, "team-a");
        assert!(said.contains(expected), "{}\n  → {said}", status.message);
    }
}

//! The in-apiserver ValidatingAdmissionPolicy for Checkpoint decisions
//! (`deploy/admission/checkpoint-decision-policy.yaml`) on the real 1.37 apiserver, with no
//! admission webhook at all: the apiserver itself refuses what CEL can check.
//!
//! The shipped policy is applied as it is, its binding narrowed to this test's namespaces.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tollgate::api::Checkpoint;
use tollgate_e2e::webhook::grant_status_patch;
use tollgate_e2e::{ControlPlane, DECISION_POLICY_LABEL, User, checkpoint_object};

async fn patch_status(
    plane: &ControlPlane,
    user: User,
    ns: &str,
    name: &str,
    status: Value,
) -> Result<Checkpoint, kube::Error> {
    Api::<Checkpoint>::namespaced(plane.client(user).await, ns)
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": status })),
        )
        .await
}

/// The message of a request the policy refused.
fn refused(result: Result<Checkpoint, kube::Error>) -> String {
    match result {
        Err(kube::Error::Api(status)) => {
            assert!(
                status
                    .message
                    .contains("ValidatingAdmissionPolicy 'tollgate-checkpoint-decisions'"),
                "not refused by the policy: {}",
                status.message
            );
            status.message
        }
        other => panic!("expected a refusal by the policy, got {other:?}"),
    }
}

#[tokio::test]
async fn with_no_webhook_the_apiserver_itself_enforces_the_decision_rules() {
    let plane = ControlPlane::get().await;
    plane.install_decision_policy();
    let ns = plane.namespace("vap").await;
    plane.kubectl(
        User::Admin,
        &[
            "label",
            "namespace",
            &ns,
            &format!("{DECISION_POLICY_LABEL}=on"),
        ],
        None,
    );
    let admin: Api<Checkpoint> = Api::namespaced(plane.client(User::Admin).await, &ns);
    for (name, extra) in [
        ("plain", json!({})),
        ("named", json!({"approvers": {"users": ["bob"]}})),
        (
            "four-eyes",
            json!({"requestedBy": "alice", "approvers": {"forbidSelfApproval": true}}),
        ),
        ("escalation", json!({"type": "FailureEscalation"})),
    ] {
        admin
            .create(&PostParams::default(), &checkpoint_object(&ns, name, extra))
            .await
            .unwrap();
    }
    // The policy reaches the apiserver's admission a moment after it is written; alice is
    // a person to it.
    plane.wait_for_decision_policy(&ns, User::Alice).await;

    // Carol may write checkpoints/status here, but holds no `approve`.
    grant_status_patch(plane, &ns, User::Carol).await;
    let approve_as = |user: &str| json!({"decision": "Approved", "decidedBy": user});
    for (user, checkpoint, status, expected) in [
        (
            User::Carol,
            "plain",
            approve_as("carol"),
            "needs the RBAC verb approve",
        ),
        // alice typing bob's name
        (
            User::Alice,
            "plain",
            approve_as("bob"),
            "must be your own username (alice)",
        ),
        // a person writing the controller's fields
        (
            User::Alice,
            "plain",
            json!({"phase": "Approved"}),
            "may only set status.decision and status.reason",
        ),
        (
            User::Alice,
            "named",
            approve_as("alice"),
            "only its approvers may",
        ),
        (User::Alice, "four-eyes", approve_as("alice"), "four eyes"),
        // each checkpoint type has its own decisions
        (
            User::Alice,
            "escalation",
            approve_as("alice"),
            "must be Retry, Rollback or Abandon, not Approved",
        ),
        (
            User::Alice,
            "plain",
            json!({"decision": "Retry", "decidedBy": "alice"}),
            "must be Approved or Rejected, not Retry",
        ),
    ] {
        let message = refused(patch_status(plane, user, &ns, checkpoint, status).await);
        assert!(
            message.contains(expected),
            "{user:?} on {checkpoint}: {message}"
        );
    }
    patch_status(plane, User::Bob, &ns, "four-eyes", approve_as("bob"))
        .await
        .unwrap();
    patch_status(
        plane,
        User::Bob,
        &ns,
        "escalation",
        json!({"decision": "Rollback", "decidedBy": "bob"}),
    )
    .await
    .unwrap();

    // alice deciding as herself is admitted; the decision is then final.
    let decided = patch_status(
        plane,
        User::Alice,
        &ns,
        "plain",
        json!({"decision": "Approved", "reason": "ok", "decidedBy": "alice"}),
    )
    .await
    .unwrap();
    assert_eq!(decided.status.unwrap().decided_by.as_deref(), Some("alice"));
    // Changing the decision itself the CRD's own rule refuses before admission runs; the
    // policy also keeps what only admission writes.
    let result = patch_status(
        plane,
        User::Bob,
        &ns,
        "plain",
        json!({"decision": "Rejected", "decidedBy": "bob"}),
    )
    .await;
    assert!(
        matches!(&result, Err(kube::Error::Api(s)) if s.message.contains("a decision cannot be changed once made")),
        "{result:?}"
    );
    let message = refused(
        patch_status(
            plane,
            User::Bob,
            &ns,
            "plain",
            json!({"decisionSeal": "v1.00"}),
        )
        .await,
    );
    assert!(message.contains("is final (Approved)"), "{message}");

    // The controller's identity writes phase but never a decision.
    plane.kubectl(
        User::Admin,
        &[
            "apply",
            "-f",
            &tollgate_e2e::repo_root()
                .join("deploy/controller-rbac.yaml")
                .to_string_lossy(),
        ],
        None,
    );
    let token = plane.kubectl(
        User::Admin,
        &[
            "create",
            "token",
            "tollgate",
            "-n",
            "tollgate-system",
            "--duration=1h",
        ],
        None,
    );
    let controller_kubeconfig = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        controller_kubeconfig.path(),
        json!({
            "apiVersion": "v1", "kind": "Config", "current-context": "c",
            "clusters": [{"name": "e2e", "cluster": {"server": plane.var("TOLLGATE_E2E_SERVER"), "certificate-authority": plane.var("TOLLGATE_E2E_CA_CERT")}}],
            "users": [{"name": "c", "user": {"token": token.trim()}}],
            "contexts": [{"name": "c", "context": {"cluster": "e2e", "user": "c"}}]
        })
        .to_string(),
    )
    .unwrap();
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(controller_kubeconfig.path()).unwrap(),
        &Default::default(),
    )
    .await
    .unwrap();
    let controller: Api<Checkpoint> = Api::namespaced(kube::Client::try_from(config).unwrap(), &ns);
    let merge = |status: Value| Patch::Merge(json!({ "status": status }));
    controller
        .patch_status(
            "named",
            &PatchParams::default(),
            &merge(json!({"phase": "Superseded"})),
        )
        .await
        .unwrap();
    let message = refused(
        controller
            .patch_status(
                "named",
                &PatchParams::default(),
                &merge(json!({"decision": "Approved"})),
            )
            .await,
    );
    assert!(
        message.contains("is the tollgate controller and may not write the decision"),
        "{message}"
    );
    // Nobody decides a superseded checkpoint.
    let message = refused(
        patch_status(
            plane,
            User::Bob,
            &ns,
            "named",
            json!({"decision": "Approved", "decidedBy": "bob"}),
        )
        .await,
    );
    assert!(message.contains("is Superseded"), "{message}");
    plane.delete_namespace(&ns).await;
}

//! The tollgate API on a real kube-apiserver: CRDs install, the platform user manages
//! Projects, RBAC keeps deciding Checkpoints to Technical Operators, and the schema's rules
//! are enforced by the apiserver itself.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use tollgate::api::{Checkpoint, Project};
use tollgate_e2e::{ControlPlane, User};

fn demo_project(namespace: &str) -> Project {
    serde_json::from_value(json!({
        "apiVersion": "tollgate.dev/v1alpha1", "kind": "Project",
        "metadata": {"name": "demo", "namespace": namespace},
        "spec": {"environment": "dev", "components": [{"name": "app", "module": "demo", "inputs": {"greeting": "hello ${not.a.reference}", "replicas": 2, "settings": {"size": "small"}}}], "budget": {"monthlyLimit": "10"}}
    }))
    .unwrap()
}

fn checkpoint(namespace: &str) -> Checkpoint {
    serde_json::from_value(json!({
        "apiVersion": "tollgate.dev/v1alpha1", "kind": "Checkpoint",
        "metadata": {"name": "demo-plan-1", "namespace": namespace},
        "spec": {"type": "PlanApproval", "projectRef": {"name": "demo"}, "planRef": {"id": "p1", "digest": "a".repeat(64)},
                 "summary": {"text": "2 to add, 0 to change, 0 to destroy", "add": 2, "change": 0, "destroy": 0}, "requestedAt": "2026-11-25T10:00:00Z"}
    }))
    .unwrap()
}

async fn can_i(
    plane: &ControlPlane,
    user: User,
    verb: &str,
    resource: &str,
    subresource: Option<&str>,
    namespace: &str,
) -> bool {
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                group: Some("tollgate.dev".into()),
                resource: Some(resource.into()),
                subresource: subresource.map(Into::into),
                verb: Some(verb.into()),
                namespace: Some(namespace.into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let api: Api<SelfSubjectAccessReview> = Api::all(plane.client(user).await);
    api.create(&PostParams::default(), &review)
        .await
        .unwrap()
        .status
        .unwrap()
        .allowed
}

fn is_status(err: &kube::Error, code: u16) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == code)
}

#[tokio::test]
async fn platform_user_creates_a_project_and_reads_it_back() {
    let plane = ControlPlane::get().await;
    let ns = plane.namespace("create").await;
    let projects: Api<Project> = Api::namespaced(plane.client(User::Carol).await, &ns);
    let created = projects
        .create(&PostParams::default(), &demo_project(&ns))
        .await
        .unwrap();
    let read = projects.get("demo").await.unwrap();
    assert_eq!(read.spec, demo_project(&ns).spec);
    assert_eq!(read.metadata.uid, created.metadata.uid);
    assert_eq!(
        read.spec.components[0].inputs["greeting"],
        "hello ${not.a.reference}"
    );
}

#[tokio::test]
async fn only_technical_operators_may_decide_checkpoints() {
    let plane = ControlPlane::get().await;
    let ns = plane.namespace("rbac").await;
    assert!(can_i(plane, User::Carol, "create", "projects", None, &ns).await);
    assert!(!can_i(plane, User::Carol, "approve", "checkpoints", None, &ns).await);
    assert!(
        !can_i(
            plane,
            User::Carol,
            "patch",
            "checkpoints",
            Some("status"),
            &ns
        )
        .await
    );
    assert!(can_i(plane, User::Carol, "get", "checkpoints", None, &ns).await);
    assert!(can_i(plane, User::Alice, "approve", "checkpoints", None, &ns).await);
    assert!(!can_i(plane, User::Alice, "create", "projects", None, &ns).await);

    let admin: Api<Checkpoint> = Api::namespaced(plane.client(User::Admin).await, &ns);
    admin
        .create(&PostParams::default(), &checkpoint(&ns))
        .await
        .unwrap();
    let decision =
        Patch::Merge(json!({"status": {"decision": "Approved", "reason": "looks right"}}));

    let as_carol: Api<Checkpoint> = Api::namespaced(plane.client(User::Carol).await, &ns);
    assert!(
        as_carol.get("demo-plan-1").await.is_ok(),
        "the platform user can read checkpoints"
    );
    let refused = as_carol
        .patch_status("demo-plan-1", &PatchParams::default(), &decision)
        .await
        .unwrap_err();
    assert!(
        is_status(&refused, 403),
        "carol must be forbidden, got {refused:?}"
    );
    assert!(
        admin.get("demo-plan-1").await.unwrap().status.is_none(),
        "a refused decision leaves no trace"
    );

    let as_alice: Api<Checkpoint> = Api::namespaced(plane.client(User::Alice).await, &ns);
    let decided = as_alice
        .patch_status("demo-plan-1", &PatchParams::default(), &decision)
        .await
        .unwrap();
    assert_eq!(
        decided.status.unwrap().decision,
        Some(tollgate::api::Decision::Approved)
    );
    let refused = as_alice
        .patch(
            "demo-plan-1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"summary": {"add": 0}}})),
        )
        .await
        .unwrap_err();
    assert!(
        is_status(&refused, 403),
        "a TO cannot edit the checkpoint's spec, got {refused:?}"
    );
}

#[tokio::test]
async fn the_apiserver_enforces_the_schema() {
    let plane = ControlPlane::get().await;
    let ns = plane.namespace("schema").await;
    let projects: Api<Project> = Api::namespaced(plane.client(User::Carol).await, &ns);
    let mut bad = demo_project(&ns);
    bad.spec.environment = "Prod!".into();
    let err = projects
        .create(&PostParams::default(), &bad)
        .await
        .unwrap_err();
    assert!(
        is_status(&err, 422),
        "invalid environment must be refused, got {err:?}"
    );
    let mut bad = demo_project(&ns);
    bad.spec.budget = Some(tollgate::api::Budget {
        monthly_limit: "1e9".into(),
    });
    let err = projects
        .create(&PostParams::default(), &bad)
        .await
        .unwrap_err();
    assert!(
        is_status(&err, 422),
        "a float-like budget must be refused, got {err:?}"
    );

    let checkpoints: Api<Checkpoint> = Api::namespaced(plane.client(User::Admin).await, &ns);
    checkpoints
        .create(&PostParams::default(), &checkpoint(&ns))
        .await
        .unwrap();
    let edit = checkpoints
        .patch(
            "demo-plan-1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"summary": {"add": 0}}})),
        )
        .await;
    if plane.minor_version() >= 25 {
        let err = edit.unwrap_err();
        assert!(
            is_status(&err, 422) && err.to_string().contains("immutable"),
            "checkpoint spec must be immutable, got {err:?}"
        );
    } else {
        eprintln!(
            "Kubernetes {} has no CEL validation; spec immutability is enforced by tollgate's admission webhook instead",
            plane.version()
        );
    }
}

#[tokio::test]
async fn kubectl_explain_shows_the_field_docs() {
    let plane = ControlPlane::get().await;
    let out = std::process::Command::new(plane.var("TOLLGATE_E2E_KUBECTL"))
        .arg("--kubeconfig")
        .arg(plane.kubeconfig(User::Admin))
        .args(["explain", "project.spec"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("components")
            && text.contains("Components, each an instance of a module from the catalog"),
        "{text}"
    );
    let out = std::process::Command::new(plane.var("TOLLGATE_E2E_KUBECTL"))
        .arg("--kubeconfig")
        .arg(plane.kubeconfig(User::Admin))
        .args(["explain", "checkpoint.status.decision"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Approved"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Names over 63 characters are valid Kubernetes names but cannot be label values, which
/// tollgate puts on everything it makes for a Project: refused where the user is, by the
/// apiserver, with the reason.
#[tokio::test]
async fn project_names_over_63_characters_are_refused_with_the_reason() {
    let plane = ControlPlane::get().await;
    let ns = plane.namespace("names").await;
    let projects: Api<Project> = Api::namespaced(plane.client(User::Carol).await, &ns);
    for length in [63, 64, 120, 253] {
        let mut project = demo_project(&ns);
        project.metadata.name = Some(format!("p{}", "a".repeat(length - 1)));
        let result = projects.create(&PostParams::default(), &project).await;
        if length <= 63 {
            result.unwrap_or_else(|e| panic!("{length} characters: {e:?}"));
        } else {
            let err = result.unwrap_err();
            assert!(
                is_status(&err, 422)
                    && format!("{err:?}").contains("a Project name has at most 63 characters"),
                "{length} characters: {err:?}"
            );
        }
    }
}

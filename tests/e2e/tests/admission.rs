//! tollgate's admission webhook on a real kube-apiserver: the apiserver calls the real
//! server (TLS, registered configurations, SubjectAccessReviews) for Checkpoint status
//! updates and Project writes made by the e2e users with their own credentials.
//!
//! In these namespaces `admin` plays the controller's identity (as the controller runs with
//! the admin kubeconfig in e2e); alice and bob are Technical Operators (ClusterRole
//! `tollgate-approver`); carol is a platform user (`tollgate-editor`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tollgate::api::{Checkpoint, CheckpointPhase, Decision, LAST_CHANGED_BY_ANNOTATION, Project};
use tollgate_e2e::webhook::{TestWebhook, grant_status_patch, start_webhook};
use tollgate_e2e::{ControlPlane, User, checkpoint_object};

struct Env {
    plane: &'static ControlPlane,
    ns: String,
}

impl Env {
    async fn new(prefix: &str) -> Env {
        let plane = ControlPlane::get().await;
        let webhook: &TestWebhook = start_webhook().await;
        let ns = webhook.namespace(plane, prefix).await;
        Env { plane, ns }
    }

    async fn checkpoints(&self, user: User) -> Api<Checkpoint> {
        Api::namespaced(self.plane.client(user).await, &self.ns)
    }

    async fn projects(&self, user: User) -> Api<Project> {
        Api::namespaced(self.plane.client(user).await, &self.ns)
    }

    /// A checkpoint created by the controller's identity, with extra spec fields.
    async fn checkpoint(&self, name: &str, spec_extra: Value) -> Checkpoint {
        self.checkpoints(User::Admin)
            .await
            .create(
                &PostParams::default(),
                &checkpoint_object(&self.ns, name, spec_extra),
            )
            .await
            .unwrap()
    }

    /// `kubectl patch checkpoint NAME --subresource=status --type=merge -p STATUS` as `user`.
    async fn patch_status(
        &self,
        user: User,
        name: &str,
        status: Value,
    ) -> Result<Checkpoint, kube::Error> {
        self.checkpoints(user)
            .await
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": status })),
            )
            .await
    }

    async fn get(&self, name: &str) -> Checkpoint {
        self.checkpoints(User::Admin).await.get(name).await.unwrap()
    }

    async fn done(self) {
        self.plane.delete_namespace(&self.ns).await;
    }
}

/// The message of a request the admission webhook `webhook` refused.
fn refused_by(result: Result<Checkpoint, kube::Error>, webhook: &str) -> String {
    match result {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 403, "{status:?}");
            assert!(
                status.message.contains(&format!(
                    "admission webhook \"{webhook}\" denied the request"
                )),
                "not refused by {webhook}: {}",
                status.message
            );
            status.message
        }
        other => panic!("expected a refusal by {webhook}, got {other:?}"),
    }
}

const MUTATE: &str = "checkpoint-status.mutate.tollgate.dev";
const VALIDATE: &str = "checkpoint-status.validate.tollgate.dev";

fn decided_recently(checkpoint: &Checkpoint) {
    let at = checkpoint
        .status
        .as_ref()
        .and_then(|s| s.decided_at.clone())
        .expect("decidedAt is set")
        .0;
    assert!(
        Timestamp::now().duration_since(at).abs() < SignedDuration::from_mins(2),
        "decidedAt {at} is not the time of the decision"
    );
}

#[tokio::test]
async fn a_technical_operator_decides_and_the_decider_is_taken_from_the_request() {
    let env = Env::new("adm-decide").await;
    env.checkpoint("demo-plan-1", json!({})).await;

    // Alice types bob's name and an old date: both are replaced by her identity and now.
    let decided = env
        .patch_status(
            User::Alice,
            "demo-plan-1",
            json!({"decision": "Approved", "reason": "reviewed the plan", "decidedBy": "bob", "decidedAt": "2020-01-01T00:00:00Z"}),
        )
        .await
        .unwrap();
    let status = decided.status.clone().unwrap();
    assert_eq!(status.decision, Some(Decision::Approved));
    assert_eq!(status.reason.as_deref(), Some("reviewed the plan"));
    assert_eq!(status.decided_by.as_deref(), Some("alice"));
    decided_recently(&decided);
    assert_eq!(env.get("demo-plan-1").await.status, Some(status.clone()));

    // A decision can never be changed, withdrawn or re-attributed.
    let message = refused_by(
        env.patch_status(User::Bob, "demo-plan-1", json!({"decision": "Rejected"}))
            .await,
        MUTATE,
    );
    assert!(
        message.contains("user bob may not change the decision of checkpoint"),
        "{message}"
    );
    assert!(message.contains("already Approved by alice"), "{message}");
    refused_by(
        env.patch_status(User::Alice, "demo-plan-1", json!({"decision": null}))
            .await,
        MUTATE,
    );
    refused_by(
        env.patch_status(User::Alice, "demo-plan-1", json!({"decidedBy": "bob"}))
            .await,
        MUTATE,
    );
    refused_by(
        env.patch_status(
            User::Alice,
            "demo-plan-1",
            json!({"reason": "on second thought"}),
        )
        .await,
        MUTATE,
    );
    assert_eq!(env.get("demo-plan-1").await.status, Some(status));
    env.done().await;
}

#[tokio::test]
async fn without_the_approve_verb_the_webhook_refuses_a_decision() {
    let env = Env::new("adm-rbac").await;
    env.checkpoint("demo-plan-1", json!({})).await;
    // Carol may write checkpoints/status here, but holds no `approve`.
    grant_status_patch(env.plane, &env.ns, User::Carol).await;
    let message = refused_by(
        env.patch_status(
            User::Carol,
            "demo-plan-1",
            json!({"decision": "Approved", "reason": "looks fine"}),
        )
        .await,
        VALIDATE,
    );
    assert!(
        message.contains(&format!(
            "user carol may not approve checkpoints in {}: deciding checkpoint {}/demo-plan-1 needs the RBAC verb approve on checkpoints.tollgate.dev (ClusterRole tollgate-approver)",
            env.ns, env.ns
        )),
        "{message}"
    );
    assert_eq!(env.get("demo-plan-1").await.status, None);
    env.done().await;
}

#[tokio::test]
async fn four_eyes_the_author_cannot_decide_another_approver_can() {
    let env = Env::new("adm-4eyes").await;
    env.checkpoint(
        "demo-plan-1",
        json!({"requestedBy": "alice", "approvers": {"forbidSelfApproval": true}}),
    )
    .await;
    let message = refused_by(
        env.patch_status(User::Alice, "demo-plan-1", json!({"decision": "Approved"}))
            .await,
        MUTATE,
    );
    assert!(
        message.contains(
            "user alice may not decide checkpoint {ns}/demo-plan-1: four eyes: you last changed the Project; another approver must decide"
                .replace("{ns}", &env.ns)
                .as_str()
        ),
        "{message}"
    );
    let decided = env
        .patch_status(User::Bob, "demo-plan-1", json!({"decision": "Approved"}))
        .await
        .unwrap();
    assert_eq!(decided.status.unwrap().decided_by.as_deref(), Some("bob"));
    env.done().await;
}

#[tokio::test]
async fn only_named_approvers_decide() {
    let env = Env::new("adm-approvers").await;
    env.checkpoint("demo-plan-1", json!({"approvers": {"users": ["bob"]}}))
        .await;
    let message = refused_by(
        env.patch_status(User::Alice, "demo-plan-1", json!({"decision": "Rejected"}))
            .await,
        MUTATE,
    );
    assert!(
        message.contains("only its approvers may (users bob)"),
        "{message}"
    );
    let decided = env
        .patch_status(
            User::Bob,
            "demo-plan-1",
            json!({"decision": "Rejected", "reason": "too expensive"}),
        )
        .await
        .unwrap();
    let status = decided.status.unwrap();
    assert_eq!(status.decision, Some(Decision::Rejected));
    assert_eq!(status.decided_by.as_deref(), Some("bob"));
    env.done().await;
}

#[tokio::test]
async fn only_the_controller_writes_phase_and_it_never_decides() {
    let env = Env::new("adm-phase").await;
    env.checkpoint("demo-plan-1", json!({})).await;
    let message = refused_by(
        env.patch_status(User::Alice, "demo-plan-1", json!({"phase": "Approved"}))
            .await,
        MUTATE,
    );
    assert!(
        message.contains("status.phase is written by the tollgate controller"),
        "{message}"
    );
    let written = env
        .patch_status(User::Admin, "demo-plan-1", json!({"phase": "Pending"}))
        .await
        .unwrap();
    assert_eq!(
        written.status.unwrap().phase,
        Some(CheckpointPhase::Pending)
    );
    let message = refused_by(
        env.patch_status(User::Admin, "demo-plan-1", json!({"decision": "Approved"}))
            .await,
        MUTATE,
    );
    assert!(
        message.contains("admin is the tollgate controller"),
        "{message}"
    );
    // After a person decides, the controller still writes phase, never the decision.
    env.patch_status(User::Alice, "demo-plan-1", json!({"decision": "Approved"}))
        .await
        .unwrap();
    let applied = env
        .patch_status(User::Admin, "demo-plan-1", json!({"phase": "Approved"}))
        .await
        .unwrap();
    let status = applied.status.unwrap();
    assert_eq!(status.phase, Some(CheckpointPhase::Approved));
    assert_eq!(status.decided_by.as_deref(), Some("alice"));
    env.done().await;
}

fn project(namespace: &str, environment: &str, last_changed_by: Option<&str>) -> Project {
    let mut project = json!({
        "apiVersion": "tollgate.dev/v1alpha1", "kind": "Project",
        "metadata": {"name": "demo", "namespace": namespace},
        "spec": {"environment": environment, "components": [{"name": "app", "module": "demo", "inputs": {"greeting": "hello"}}]}
    });
    if let Some(by) = last_changed_by {
        project["metadata"]["annotations"] = json!({ LAST_CHANGED_BY_ANNOTATION: by });
    }
    serde_json::from_value(project).unwrap()
}

fn last_changed_by(project: &Project) -> Option<String> {
    project
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(LAST_CHANGED_BY_ANNOTATION).cloned())
}

#[tokio::test]
async fn the_project_records_who_last_changed_its_spec() {
    let env = Env::new("adm-project").await;
    let carol = env.projects(User::Carol).await;
    let admin = env.projects(User::Admin).await;

    // Carol creates a Project claiming alice wrote it: admission records carol.
    let created = carol
        .create(
            &PostParams::default(),
            &project(&env.ns, "dev", Some("alice")),
        )
        .await
        .unwrap();
    assert_eq!(last_changed_by(&created).as_deref(), Some("carol"));

    // Typing the annotation without a spec change does not stick.
    let typed = carol
        .patch(
            "demo",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"annotations": {LAST_CHANGED_BY_ANNOTATION: "alice"}}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(last_changed_by(&typed).as_deref(), Some("carol"));
    let removed = carol
        .patch(
            "demo",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {LAST_CHANGED_BY_ANNOTATION: null}}})),
        )
        .await
        .unwrap();
    assert_eq!(last_changed_by(&removed).as_deref(), Some("carol"));

    // A spec change by someone else is recorded as theirs, even while typing another name.
    let changed = admin
        .patch(
            "demo",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {LAST_CHANGED_BY_ANNOTATION: "carol"}}, "spec": {"components": [{"name": "app", "module": "demo", "inputs": {"greeting": "changed"}}]}})),
        )
        .await
        .unwrap();
    assert_eq!(last_changed_by(&changed).as_deref(), Some("admin"));

    // Metadata-only changes (labels, finalizers) keep the author.
    let labelled = admin
        .patch(
            "demo",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"team": "payments"}}})),
        )
        .await
        .unwrap();
    assert_eq!(last_changed_by(&labelled).as_deref(), Some("admin"));

    // Server-side apply by carol changing the spec (the greeting back to "hello") is
    // recorded too.
    let applied = carol
        .patch(
            "demo",
            &PatchParams::apply("carol-gitops").force(),
            &Patch::Apply(project(&env.ns, "dev", None)),
        )
        .await
        .unwrap();
    assert_eq!(last_changed_by(&applied).as_deref(), Some("carol"));
    assert_eq!(
        carol.get("demo").await.unwrap().spec.components[0].inputs["greeting"],
        "hello"
    );
    env.done().await;
}

#[tokio::test]
async fn requests_in_other_namespaces_do_not_reach_this_webhook() {
    // Other e2e tests share the apiserver: without the namespace label nothing changes.
    let plane = ControlPlane::get().await;
    start_webhook().await;
    let ns = plane.namespace("adm-unlabelled").await;
    let carol: Api<Project> = Api::namespaced(plane.client(User::Carol).await, &ns);
    let created = carol
        .create(&PostParams::default(), &project(&ns, "dev", Some("alice")))
        .await
        .unwrap();
    assert_eq!(last_changed_by(&created).as_deref(), Some("alice"));
    plane.delete_namespace(&ns).await;
}

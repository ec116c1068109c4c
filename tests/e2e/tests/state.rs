//! Terraform state on a real cluster (issue 23): it lives in the controller's state
//! namespace, so deleting a Project's namespace destroys through a Destroy checkpoint
//! instead of deleting the state; platform users cannot touch it; a vanished state stops
//! everything; Orphan leaves it for a Project created again; legacy state in the Project's
//! namespace is moved; failing reconciles back off.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::api::rbac::v1::{RoleBinding, RoleRef, Subject};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tollgate::api::{Checkpoint, CheckpointType, Project, ProjectPhase};
use tollgate_e2e::controller::{ControllerProcess, state_namespace_of};
use tollgate_e2e::webhook::start_webhook;
use tollgate_e2e::{ControlPlane, User, markers_in, wait_for};

const DEADLINE: Duration = Duration::from_secs(180);

fn demo(namespace: &str, markers: &Path, greeting: &str, approval: serde_json::Value) -> Project {
    let inputs =
        json!({"greeting": greeting, "replicas": 1, "marker_dir": markers.to_str().unwrap()});
    let mut spec = json!({"environment": "dev", "components": [{"name": "app", "module": "demo", "inputs": inputs}], "budget": {"monthlyLimit": "10"}});
    if !approval.is_null() {
        spec["approval"] = approval;
    }
    serde_json::from_value(json!({"apiVersion": "tollgate.dev/v1alpha1", "kind": "Project", "metadata": {"name": "demo", "namespace": namespace}, "spec": spec})).unwrap()
}

fn auto_approve_all() -> serde_json::Value {
    json!({"autoApprove": ["FirstApply", "Create", "Update", "Replace", "Delete"]})
}

struct Env {
    plane: &'static ControlPlane,
    ns: String,
    state_ns: String,
    dir: tempfile::TempDir,
    controller: ControllerProcess,
    projects: Api<Project>,
    state_secrets: Api<Secret>,
}

impl Env {
    /// A namespace and its state namespace, both through this process's admission webhook
    /// (decisions are stamped and checked there too), with a controller.
    async fn new(prefix: &str, extra_args: Vec<String>) -> Env {
        let plane = ControlPlane::get().await;
        let webhook = start_webhook().await;
        let ns = webhook.namespace(plane, prefix).await;
        let state_ns = plane.state_namespace(&state_namespace_of(&ns)).await;
        webhook.route(plane, &state_ns).await;
        let dir = tempfile::tempdir().unwrap();
        let controller = ControllerProcess::start_with(plane, &ns, dir.path(), extra_args).await;
        let admin = plane.client(User::Admin).await;
        Env {
            plane,
            projects: Api::namespaced(admin.clone(), &ns),
            state_secrets: Api::namespaced(admin, &state_ns),
            ns,
            state_ns,
            dir,
            controller,
        }
    }

    /// Pre-approves `spec` for this test's namespace with an ApprovalPolicy, as a cluster
    /// admin would (a Project's own `approval` only tightens).
    async fn allow(&self, spec: serde_json::Value) {
        self.plane.allow_in(&self.ns, spec).await;
    }

    fn markers(&self) -> std::path::PathBuf {
        self.dir.path().join("markers")
    }

    async fn create_as_carol(&self, project: &Project) {
        let api: Api<Project> = Api::namespaced(self.plane.client(User::Carol).await, &self.ns);
        api.create(&PostParams::default(), project).await.unwrap();
    }

    async fn project(&self) -> Project {
        self.projects.get("demo").await.unwrap()
    }

    async fn wait_project(&self, what: &str, check: impl Fn(&Project) -> bool) -> Project {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let p = self.project().await;
            if check(&p) {
                return p;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; status {:?}\ncontroller log:\n{}",
                p.status,
                self.controller.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn wait_phase(&self, phase: ProjectPhase) -> Project {
        self.wait_project(&format!("phase {phase:?}"), |p| {
            p.status.as_ref().and_then(|s| s.phase) == Some(phase)
        })
        .await
    }

    /// Name of the state Secret, as status reports it (in the state namespace).
    fn state_secret_name(project: &Project) -> String {
        let state = project
            .status
            .as_ref()
            .and_then(|s| s.state.clone())
            .unwrap();
        state.secret_name
    }

    async fn state_exists(&self, name: &str) -> bool {
        self.state_secrets.get_opt(name).await.unwrap().is_some()
    }

    async fn events(&self, reason: &str) -> Vec<String> {
        let events: Api<k8s_openapi::api::events::v1::Event> =
            Api::namespaced(self.plane.client(User::Admin).await, &self.ns);
        events
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| e.reason.as_deref() == Some(reason))
            .map(|e| {
                format!(
                    "{}: {}",
                    e.type_.unwrap_or_default(),
                    e.note.unwrap_or_default()
                )
            })
            .collect()
    }

    async fn bind_carol_edit(&self) {
        let binding = RoleBinding {
            metadata: kube::api::ObjectMeta {
                name: Some("carol-edit".into()),
                namespace: Some(self.ns.clone()),
                ..Default::default()
            },
            role_ref: RoleRef {
                api_group: Some("rbac.authorization.k8s.io".into()),
                kind: "ClusterRole".into(),
                name: "edit".into(),
            },
            subjects: Some(vec![Subject {
                api_group: Some("rbac.authorization.k8s.io".into()),
                kind: "User".into(),
                name: self.plane.username(User::Carol),
                namespace: None,
            }]),
        };
        Api::<RoleBinding>::namespaced(self.plane.client(User::Admin).await, &self.ns)
            .create(&PostParams::default(), &binding)
            .await
            .unwrap();
    }
}

fn forbidden<T: std::fmt::Debug>(result: Result<T, kube::Error>, what: &str) {
    match result {
        Err(kube::Error::Api(status)) if status.code == 403 => {}
        other => panic!("{what}: expected 403 Forbidden, got {other:?}"),
    }
}

#[tokio::test]
async fn deleting_the_namespace_destroys_through_a_destroy_checkpoint_in_the_state_namespace() {
    let env = Env::new("ns-delete", Vec::new()).await;
    env.allow(json!({"autoApprove": ["FirstApply", "Create"]}))
        .await;
    env.create_as_carol(&demo(
        &env.ns,
        &env.markers(),
        "hello",
        json!({"autoApprove": ["FirstApply", "Create"]}),
    ))
    .await;
    let ready = env.wait_phase(ProjectPhase::Ready).await;
    assert_eq!(markers_in(&env.markers()).len(), 1);
    let state = Env::state_secret_name(&ready);
    assert_eq!(
        ready
            .status
            .as_ref()
            .unwrap()
            .state
            .as_ref()
            .unwrap()
            .namespace,
        env.state_ns
    );
    assert!(
        env.state_exists(&state).await,
        "state in the state namespace"
    );

    let admin = env.plane.client(User::Admin).await;
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    namespaces
        .delete(&env.ns, &DeleteParams::default())
        .await
        .unwrap();
    assert!(
        env.state_exists(&state).await,
        "the state outlives the start of the namespace deletion"
    );

    // The Destroy checkpoint opens in the state namespace; a TO finds it across namespaces.
    let state_checkpoints: Api<Checkpoint> = Api::namespaced(admin.clone(), &env.state_ns);
    let started = Instant::now();
    let destroy = loop {
        assert!(env.state_exists(&state).await, "state kept while undecided");
        let all: Api<Checkpoint> = Api::all(env.plane.client(User::Alice).await);
        let found = all
            .list(&ListParams::default().labels(&format!(
                "tollgate.dev/project-namespace={},tollgate.dev/project=demo",
                env.ns
            )))
            .await
            .unwrap()
            .items
            .into_iter()
            .find(|c| c.spec.checkpoint_type == CheckpointType::Destroy);
        if let Some(cp) = found {
            break cp;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "no Destroy checkpoint in {}\ncontroller log:\n{}",
            env.state_ns,
            env.controller.log()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(destroy.namespace().as_deref(), Some(env.state_ns.as_str()));
    assert_eq!(
        destroy.spec.project_ref.namespace.as_deref(),
        Some(env.ns.as_str())
    );
    assert_eq!(destroy.spec.project_ref.name, "demo");
    assert_eq!(
        markers_in(&env.markers()).len(),
        1,
        "nothing destroyed before approval"
    );
    // Carol (an editor of the deleted namespace) cannot decide; Alice (a TO) can.
    let carol: Api<Checkpoint> =
        Api::namespaced(env.plane.client(User::Carol).await, &env.state_ns);
    let decision = json!({"status": {"decision": "Approved", "reason": "namespace removed"}});
    forbidden(
        carol
            .patch_status(
                &destroy.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&decision),
            )
            .await,
        "carol deciding in the state namespace",
    );
    let alice: Api<Checkpoint> =
        Api::namespaced(env.plane.client(User::Alice).await, &env.state_ns);
    let decided = alice
        .patch_status(
            &destroy.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&decision),
        )
        .await
        .unwrap();
    assert_eq!(
        decided.status.unwrap().decided_by.as_deref(),
        Some("alice"),
        "the webhook stamped the decider in the state namespace"
    );

    // Until the destroy is applied the state exists; then the namespace goes away.
    let started = Instant::now();
    loop {
        // State first: markers only ever disappear, so state gone while a marker is still
        // there would be state lost while infrastructure exists.
        let state_there = env.state_exists(&state).await;
        let infrastructure = !markers_in(&env.markers()).is_empty();
        assert!(
            state_there || !infrastructure,
            "the state vanished while the infrastructure exists"
        );
        if namespaces.get_opt(&env.ns).await.unwrap().is_none() {
            break;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "namespace {} still there\ncontroller log:\n{}",
            env.ns,
            env.controller.log()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    eprintln!("namespace deletion after approval: {:?}", started.elapsed());
    assert!(markers_in(&env.markers()).is_empty(), "the destroy ran");
    assert!(
        !env.state_exists(&state).await,
        "state removed after the destroy"
    );
    assert!(
        state_checkpoints
            .get_opt(&destroy.name_any())
            .await
            .unwrap()
            .is_none(),
        "the decided checkpoint is not left for a namesake to reuse"
    );
    let plans: Api<Secret> = Api::namespaced(admin, &env.state_ns);
    assert!(
        plans
            .list(
                &ListParams::default()
                    .labels(&format!("tollgate.dev/project-namespace={}", env.ns))
            )
            .await
            .unwrap()
            .items
            .is_empty(),
        "no plan or state left behind"
    );
}

#[tokio::test]
async fn a_vanished_state_stops_applies_and_platform_users_cannot_touch_state() {
    let env = Env::new("state-missing", Vec::new()).await;
    env.allow(auto_approve_all()).await;
    env.bind_carol_edit().await;
    env.create_as_carol(&demo(&env.ns, &env.markers(), "hello", auto_approve_all()))
        .await;
    let ready = env.wait_phase(ProjectPhase::Ready).await;
    let state = Env::state_secret_name(&ready);
    let applied = ready.status.as_ref().unwrap().last_applied.clone().unwrap();

    // Carol, with the built-in `edit` role in her namespace, has no rights on the state.
    let carol = env.plane.client(User::Carol).await;
    let carol_secrets: Api<Secret> = Api::namespaced(carol.clone(), &env.state_ns);
    forbidden(carol_secrets.get(&state).await, "carol reading the state");
    forbidden(
        carol_secrets
            .patch(
                &state,
                &PatchParams::default(),
                &Patch::Merge(json!({"data": {"tfstate": ""}})),
            )
            .await,
        "carol rewriting the state",
    );
    forbidden(
        carol_secrets.delete(&state, &DeleteParams::default()).await,
        "carol deleting the state",
    );
    let carol_leases: Api<Lease> = Api::namespaced(carol, &env.state_ns);
    forbidden(
        carol_leases
            .delete(&format!("lock-{state}"), &DeleteParams::default())
            .await,
        "carol deleting the state lock",
    );

    // An admin deletes the state by hand; the next change must not be applied.
    let mut backup = env.state_secrets.get(&state).await.unwrap();
    env.state_secrets
        .delete(&state, &DeleteParams::default())
        .await
        .unwrap();
    let before = markers_in(&env.markers());
    let change = json!({"spec": {"components": [{"name": "app", "module": "demo", "inputs": {"greeting": "changed", "replicas": 1, "marker_dir": env.markers().to_str().unwrap()}}]}});
    env.projects
        .patch("demo", &PatchParams::default(), &Patch::Merge(&change))
        .await
        .unwrap();
    let stalled = env
        .wait_project("StateMissing", |p| {
            p.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "StateMissing" && c.status == "True")
            })
        })
        .await;
    let status = stalled.status.unwrap();
    assert_eq!(status.phase, Some(ProjectPhase::Failed));
    assert!(
        status
            .conditions
            .iter()
            .any(|c| c.type_ == "Stalled" && c.status == "True"),
        "{:?}",
        status.conditions
    );
    assert_eq!(
        status.last_applied.as_ref().map(|l| l.plan_id.as_str()),
        Some(applied.plan_id.as_str()),
        "nothing applied"
    );
    assert!(status.plan.is_none(), "no plan is kept to apply");
    let reference = status.checkpoint_ref.unwrap();
    let checkpoints: Api<Checkpoint> =
        Api::namespaced(env.plane.client(User::Admin).await, &env.ns);
    let manual = checkpoints.get(&reference.name).await.unwrap();
    assert_eq!(manual.spec.checkpoint_type, CheckpointType::ManualOperation);
    wait_for("a StateMissing Warning Event", DEADLINE, || async {
        env.events("StateMissing")
            .await
            .iter()
            .any(|e| e.starts_with("Warning"))
    })
    .await;
    // Still nothing applied a while later (a reconcile happens on every change).
    env.projects
        .patch(
            "demo",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"touched": "1"}}})),
        )
        .await
        .unwrap();
    let reconciles = env.controller.metric("tollgate_reconciles_total").await;
    wait_for("a reconcile after the touch", DEADLINE, || async {
        env.controller.metric("tollgate_reconciles_total").await > reconciles
    })
    .await;
    assert_eq!(markers_in(&env.markers()), before, "no apply while missing");
    assert!(!env.state_exists(&state).await);

    // Restoring the Secret (from a backup) resumes: a fresh plan against it, applied.
    backup.metadata.resource_version = None;
    backup.metadata.uid = None;
    backup.metadata.creation_timestamp = None;
    backup.metadata.managed_fields = None;
    env.state_secrets
        .create(&PostParams::default(), &backup)
        .await
        .unwrap();
    let resumed = env
        .wait_project("applied after the restore", |p| {
            p.status.as_ref().is_some_and(|s| {
                s.phase == Some(ProjectPhase::Ready)
                    && s.last_applied
                        .as_ref()
                        .is_some_and(|l| l.plan_id != applied.plan_id)
            })
        })
        .await;
    let status = resumed.status.unwrap();
    assert!(
        status
            .conditions
            .iter()
            .any(|c| c.type_ == "StateMissing" && c.status == "False"),
        "{:?}",
        status.conditions
    );
    assert_eq!(
        status.plan.as_ref().unwrap().summary.add,
        status.plan.as_ref().unwrap().summary.destroy,
        "a replacement of the existing resource, not a second copy: {:?}",
        status.plan
    );
}

#[tokio::test]
async fn an_orphaned_projects_state_is_adopted_by_a_project_created_again() {
    let env = Env::new("orphan-adopt", Vec::new()).await;
    env.allow(auto_approve_all()).await;
    let mut project = demo(&env.ns, &env.markers(), "hello", auto_approve_all());
    project.spec.deletion_policy = tollgate::api::DeletionPolicy::Orphan;
    env.create_as_carol(&project).await;
    let ready = env.wait_phase(ProjectPhase::Ready).await;
    let state = Env::state_secret_name(&ready);
    assert_eq!(markers_in(&env.markers()).len(), 1);

    env.projects
        .delete("demo", &DeleteParams::default())
        .await
        .unwrap();
    wait_for("the Project is gone", DEADLINE, || async {
        env.projects.get_opt("demo").await.unwrap().is_none()
    })
    .await;
    assert_eq!(markers_in(&env.markers()).len(), 1, "Orphan keeps it");
    assert!(env.state_exists(&state).await, "Orphan keeps the state");
    let kept = env.events("StateKept").await;
    assert!(
        kept.iter()
            .any(|e| e.contains(&state) && e.contains(&env.state_ns)),
        "the state's location is reported: {kept:?}"
    );

    // The same namespace/name again, with no pre-approval: it adopts the state, so the plan
    // has nothing to create and nobody is asked.
    env.create_as_carol(&demo(
        &env.ns,
        &env.markers(),
        "hello",
        serde_json::Value::Null,
    ))
    .await;
    let adopted = env.wait_phase(ProjectPhase::Ready).await;
    let status = adopted.status.unwrap();
    let plan = status.plan.unwrap();
    assert_eq!(
        (plan.summary.add, plan.summary.change, plan.summary.destroy),
        (0, 0, 0),
        "no creates: {plan:?}"
    );
    assert!(status.checkpoint_ref.is_none());
    assert_eq!(markers_in(&env.markers()).len(), 1);

    // Deleting the adopted Project (Destroy) destroys what its state holds.
    env.projects
        .delete("demo", &DeleteParams::default())
        .await
        .unwrap();
    let destroying = env
        .wait_project("a Destroy checkpoint", |p| {
            p.status.as_ref().is_some_and(|s| {
                s.checkpoint_ref.is_some() && s.phase == Some(ProjectPhase::Destroying)
            })
        })
        .await;
    let reference = destroying.status.unwrap().checkpoint_ref.unwrap();
    let alice: Api<Checkpoint> = Api::namespaced(env.plane.client(User::Alice).await, &env.ns);
    alice
        .patch_status(
            &reference.name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"decision": "Approved", "reason": "e2e"}})),
        )
        .await
        .unwrap();
    wait_for("the Project is gone", DEADLINE, || async {
        env.projects.get_opt("demo").await.unwrap().is_none()
    })
    .await;
    assert!(
        markers_in(&env.markers()).is_empty(),
        "the adopted state was destroyed"
    );
}

/// Runs `terraform` in `dir`, failing the test on error.
fn terraform(dir: &Path, args: &[&str], kubeconfig: &Path) {
    let binary = std::env::var("TOLLGATE_TERRAFORM").unwrap_or_else(|_| "terraform".into());
    let out = std::process::Command::new(&binary)
        .arg(format!("-chdir={}", dir.display()))
        .args(args)
        .env("KUBE_CONFIG_PATH", kubeconfig)
        .env("TF_IN_AUTOMATION", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "terraform {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn legacy_state_in_the_projects_namespace_is_moved_to_the_state_namespace() {
    let env = Env::new("legacy-state", Vec::new()).await;
    let project = demo(&env.ns, &env.markers(), "hello", serde_json::Value::Null);
    let kubeconfig = env.plane.kubeconfig(User::Admin);

    // What an older tollgate left: the demo applied, its state in Terraform's kubernetes
    // backend as tfstate-default-demo in the Project's own namespace.
    let catalog =
        tollgate::catalog::Catalog::load(&tollgate_e2e::repo_root().join("modules")).unwrap();
    let dir = env.dir.path().join("legacy");
    tollgate::render::render(
        &project,
        &catalog,
        &tollgate::render::RenderOptions {
            backend_override: Some(tollgate::api::BackendType::Local),
            ..Default::default()
        },
    )
    .unwrap()
    .write_to(&dir)
    .unwrap();
    terraform(&dir, &["init", "-input=false"], &kubeconfig);
    terraform(
        &dir,
        &["apply", "-input=false", "-auto-approve"],
        &kubeconfig,
    );
    assert_eq!(markers_in(&env.markers()).len(), 1);
    std::fs::write(
        dir.join("legacy_override.tf"),
        format!(
            "terraform {{\n  backend \"kubernetes\" {{\n    secret_suffix = \"demo\"\n    namespace     = \"{}\"\n  }}\n}}\n",
            env.ns
        ),
    )
    .unwrap();
    terraform(
        &dir,
        &["init", "-input=false", "-migrate-state", "-force-copy"],
        &kubeconfig,
    );
    let project_secrets: Api<Secret> =
        Api::namespaced(env.plane.client(User::Admin).await, &env.ns);
    assert!(
        project_secrets
            .get_opt("tfstate-default-demo")
            .await
            .unwrap()
            .is_some(),
        "legacy state in place"
    );

    // The Project: its first reconcile moves the state, and the plan finds nothing to do.
    env.create_as_carol(&project).await;
    let ready = env.wait_phase(ProjectPhase::Ready).await;
    let status = ready.status.unwrap();
    let plan = status.plan.unwrap();
    assert_eq!(
        (plan.summary.add, plan.summary.change, plan.summary.destroy),
        (0, 0, 0),
        "the moved state is used: {plan:?}"
    );
    let state = status.state.unwrap();
    assert_eq!(state.namespace, env.state_ns);
    assert!(env.state_exists(&state.secret_name).await);
    assert!(
        project_secrets
            .get_opt("tfstate-default-demo")
            .await
            .unwrap()
            .is_none(),
        "the old copy is deleted once the new one is verified\ncontroller log:\n{}",
        env.controller.log()
    );
    let migrated = env.events("StateMigrated").await;
    assert!(
        migrated.iter().any(|e| e.contains("tfstate-default-demo")),
        "{migrated:?}"
    );
    assert_eq!(markers_in(&env.markers()).len(), 1);
}

#[tokio::test]
async fn a_failing_reconcile_backs_off_exponentially() {
    let env = Env::new("backoff", vec!["--lock-timeout".into(), "1".into()]).await;
    env.allow(auto_approve_all()).await;
    // Someone else holds the state lock: every plan fails after 1 s and is retried.
    let suffix = tollgate::state::secret_suffix(&env.ns, "demo");
    let lease: Lease = serde_json::from_value(json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {
            "name": format!("lock-tfstate-default-{suffix}"),
            "labels": {"tfstate": "true"},
            "annotations": {"app.terraform.io/lock-info": "{\"ID\":\"e2e-held\",\"Operation\":\"OperationTypeApply\",\"Info\":\"\",\"Who\":\"someone@elsewhere\",\"Version\":\"1.15.5\",\"Created\":\"2026-01-01T00:00:00Z\",\"Path\":\"\"}"}
        },
        "spec": {"holderIdentity": "e2e-held"}
    }))
    .unwrap();
    let leases: Api<Lease> = Api::namespaced(env.plane.client(User::Admin).await, &env.state_ns);
    leases.create(&PostParams::default(), &lease).await.unwrap();
    env.create_as_carol(&demo(&env.ns, &env.markers(), "hello", auto_approve_all()))
        .await;

    let failures = || async {
        env.controller
            .metric("tollgate_reconcile_failures_total{category=\"terraform\"}")
            .await
    };
    let deadline = Instant::now() + DEADLINE;
    while failures().await < 1.0 {
        assert!(
            Instant::now() < deadline,
            "no failure; status {:?}\ncontroller log:\n{}",
            env.project().await.status,
            env.controller.log()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let window = Duration::from_secs(45);
    let started = Instant::now();
    let first = failures().await;
    let mut longest = 0u64;
    while started.elapsed() < window {
        if let Some(ready) = env
            .project()
            .await
            .status
            .and_then(|s| s.conditions.into_iter().find(|c| c.type_ == "Ready"))
            && ready.reason == "Retrying"
            && let Some(secs) = ready
                .message
                .strip_prefix("retrying in ")
                .and_then(|m| m.split('s').next())
                .and_then(|n| n.parse::<u64>().ok())
        {
            longest = longest.max(secs);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let retried = failures().await - first;
    eprintln!(
        "failures in {window:?} after the first: {retried}; longest announced delay {longest}s"
    );
    // 5 s, 10 s, 20 s (and each attempt takes its own seconds): at most 3 in 45 s; a flat
    // or sub-second loop would be far more.
    assert!(
        (1.0..=4.0).contains(&retried),
        "{retried} retries in {window:?}\n{}",
        env.controller.log()
    );
    assert!(
        longest >= 20,
        "the delay grows: longest announced {longest}s"
    );
    let warnings = env.events("Retrying").await;
    assert!(
        warnings
            .iter()
            .any(|e| e.starts_with("Warning") && e.contains("lock")),
        "{warnings:?}"
    );
    assert!(markers_in(&env.markers()).is_empty());
    leases
        .delete(&lease.name_any(), &DeleteParams::default())
        .await
        .unwrap();
    // The lock is gone: the step succeeds and the retried error leaves the status.
    let project = env.wait_phase(ProjectPhase::Ready).await;
    let conditions = project.status.unwrap().conditions;
    assert!(
        conditions.iter().all(|c| c.reason != "Retrying"),
        "{conditions:?}"
    );
}

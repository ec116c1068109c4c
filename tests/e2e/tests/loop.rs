//! The loop on a real cluster: Project → plan → Checkpoint → decision → apply exactly the
//! approved plan, with the controller running as a real process and real Terraform storing
//! state in the cluster (Terraform's `kubernetes` backend).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tollgate::api::{ApprovalPolicy, Checkpoint, CheckpointPhase, Project, ProjectPhase};
use tollgate_e2e::controller::ControllerProcess;
use tollgate_e2e::webhook::start_webhook;
use tollgate_e2e::{ControlPlane, User, demo_project as demo, markers_in, wait_for};

const DEADLINE: Duration = Duration::from_secs(120);
/// A sensitive input (the demo module's `api_token` variable is `sensitive = true`).
const SECRET: &str = "tg-secret-4f7c2a9e1d";

/// Time of a bare `terraform init && terraform plan` of the demo Project rendered with a
/// local backend: the baseline for the time from `kubectl apply` to an open checkpoint.
fn raw_terraform_plan(env: &Env) -> Duration {
    let project = demo(&env.ns, &env.markers(), json!({}), serde_json::Value::Null);
    let catalog =
        tollgate::catalog::Catalog::load(&tollgate_e2e::repo_root().join("modules")).unwrap();
    let dir = env.dir.path().join("raw");
    let options = tollgate::render::RenderOptions {
        backend_override: Some(tollgate::api::BackendType::Local),
        ..Default::default()
    };
    tollgate::render::render(&project, &catalog, &options)
        .unwrap()
        .write_to(&dir)
        .unwrap();
    let terraform = std::env::var("TOLLGATE_TERRAFORM").unwrap_or_else(|_| "terraform".into());
    let started = Instant::now();
    for args in [
        &["init", "-input=false"][..],
        &["plan", "-input=false", "-out=tfplan"][..],
    ] {
        let status = std::process::Command::new(&terraform)
            .arg(format!("-chdir={}", dir.display()))
            .args(args)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
    }
    started.elapsed()
}

struct Env {
    plane: &'static ControlPlane,
    ns: String,
    dir: tempfile::TempDir,
    controller: ControllerProcess,
    projects: Api<Project>,
    checkpoints: Api<Checkpoint>,
}

impl Env {
    /// A namespace whose decisions go through tollgate's admission webhook (so `decidedBy`
    /// is set from the request), with its own controller process.
    async fn new(prefix: &str) -> Env {
        let plane = ControlPlane::get().await;
        let ns = start_webhook().await.namespace(plane, prefix).await;
        Env::with_controller(plane, ns).await
    }

    /// A namespace whose requests go through no admission webhook at all: what a cluster
    /// where the webhook was never installed (or was removed) looks like.
    async fn without_admission(prefix: &str) -> Env {
        let plane = ControlPlane::get().await;
        let ns = plane.namespace(prefix).await;
        Env::with_controller(plane, ns).await
    }

    /// Starts a controller process for `ns`.
    async fn with_controller(plane: &'static ControlPlane, ns: String) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let controller = ControllerProcess::start(plane, &ns, dir.path()).await;
        let admin = plane.client(User::Admin).await;
        Env {
            plane,
            projects: Api::namespaced(admin.clone(), &ns),
            checkpoints: Api::namespaced(admin, &ns),
            ns,
            dir,
            controller,
        }
    }

    /// Waits for the Project to say, in its AwaitingApproval condition, that `checkpoint`'s
    /// decision is not verified.
    async fn wait_unverified(&self, checkpoint: &str) -> Project {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let p = self.project().await;
            let says_so = p.status.as_ref().is_some_and(|s| {
                s.conditions.iter().any(|c| {
                    c.type_ == "AwaitingApproval"
                        && c.status == "True"
                        && c.reason == "DecisionUnverified"
                        && c.message.contains(checkpoint)
                })
            });
            if says_so {
                return p;
            }
            assert!(
                Instant::now() < deadline,
                "the Project does not say the decision is unverified: {:?}\n{}",
                p.status,
                self.controller.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// An ApprovalPolicy (as a cluster admin writes it) selecting only this test's
    /// namespace; `spec` is merged into its spec. Returns its name.
    async fn allow(&self, spec: serde_json::Value) -> String {
        self.plane.allow_in(&self.ns, spec).await
    }

    /// The Project's status, its Checkpoints, the namespace's Events and the controller's
    /// log: everything tollgate wrote or logged about the test, as text.
    async fn everything_written(&self) -> Vec<String> {
        let checkpoints = self.checkpoints.list(&Default::default()).await.unwrap();
        vec![
            serde_json::to_string(&self.project().await.status).unwrap(),
            serde_json::to_string(&checkpoints.items).unwrap(),
            self.kubectl(&["get", "events", "-o", "json"]),
            self.controller.log(),
        ]
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

    async fn wait_phase(&self, phase: ProjectPhase) -> Project {
        let what = format!("project phase {phase:?}");
        let log = || self.controller.log();
        let deadline = Instant::now() + DEADLINE;
        loop {
            let p = self.project().await;
            if p.status.as_ref().and_then(|s| s.phase) == Some(phase) {
                return p;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; status {:?}\ncontroller log:\n{}",
                p.status,
                log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits for the Project to await a decision and returns its checkpoint.
    async fn pending_checkpoint(&self, not: Option<&str>) -> Checkpoint {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let p = self.project().await;
            let status = p.status.clone().unwrap_or_default();
            if status.phase == Some(ProjectPhase::AwaitingApproval)
                && let Some(reference) = status.checkpoint_ref.clone()
                && Some(reference.name.as_str()) != not
            {
                return self.checkpoints.get(&reference.name).await.unwrap();
            }
            assert!(
                Instant::now() < deadline,
                "no pending checkpoint; status {status:?}\ncontroller log:\n{}",
                self.controller.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until the Project no longer exists.
    /// Applies `patch` to the Project, waits for the reconcile it causes, and checks that
    /// it started no Terraform process.
    async fn patch_runs_no_terraform(&self, patch: serde_json::Value, why: &str) {
        let runs = self
            .controller
            .metric("tollgate_terraform_commands_started")
            .await;
        // Read before the patch: the reconcile it causes can finish before a later read.
        let reconciles = self.controller.metric("tollgate_reconciles_total").await;
        self.projects
            .patch("demo", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
        wait_for(&format!("a reconcile after: {why}"), DEADLINE, || async {
            self.controller.metric("tollgate_reconciles_total").await > reconciles
        })
        .await;
        assert_eq!(
            self.controller
                .metric("tollgate_terraform_commands_started")
                .await,
            runs,
            "{why}"
        );
    }

    async fn wait_gone(&self) {
        wait_for("the Project is gone", DEADLINE, || async {
            self.projects.get_opt("demo").await.unwrap().is_none()
        })
        .await;
    }

    /// Approves the pending checkpoint as `user` and returns it.
    async fn approve_pending(&self, user: User) -> Checkpoint {
        let checkpoint = self.pending_checkpoint(None).await;
        let name = checkpoint.metadata.name.clone().unwrap();
        self.decide(user, &name, "Approved").await.unwrap();
        checkpoint
    }

    /// Waits for the Destroy checkpoint of a Project being deleted.
    async fn pending_destroy(&self) -> Checkpoint {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let p = self.project().await;
            if let Some(reference) = p.status.as_ref().and_then(|s| s.checkpoint_ref.clone()) {
                let checkpoint = self.checkpoints.get(&reference.name).await.unwrap();
                if checkpoint.spec.checkpoint_type == tollgate::api::CheckpointType::Destroy {
                    return checkpoint;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no destroy checkpoint: {:?}\n{}",
                p.status,
                self.controller.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn decide(
        &self,
        user: User,
        checkpoint: &str,
        decision: &str,
    ) -> Result<Checkpoint, kube::Error> {
        let api: Api<Checkpoint> = Api::namespaced(self.plane.client(user).await, &self.ns);
        api.patch_status(
            checkpoint,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"decision": decision, "reason": "e2e"}})),
        )
        .await
    }

    /// Writes the policy ConfigMap `name` (label `tollgate.dev/policy`) with one Rego file,
    /// as whoever owns `namespace` writes it.
    async fn policy_config_map(&self, namespace: &str, name: &str, key: &str, rego: &str) {
        let config_map: ConfigMap = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, "labels": {tollgate::policy::POLICY_LABEL: "true"}},
            "data": {key: rego},
        }))
        .unwrap();
        Api::<ConfigMap>::namespaced(self.plane.client(User::Admin).await, namespace)
            .patch(
                name,
                &PatchParams::apply("e2e").force(),
                &Patch::Apply(&config_map),
            )
            .await
            .unwrap();
    }

    /// kubectl as admin in the test's namespace.
    fn kubectl(&self, args: &[&str]) -> String {
        self.kubectl_admin(&[&["-n", &self.ns], args].concat())
    }

    /// kubectl as admin, with no default namespace.
    fn kubectl_admin(&self, args: &[&str]) -> String {
        let out = std::process::Command::new(self.plane.var("TOLLGATE_E2E_KUBECTL"))
            .arg("--kubeconfig")
            .arg(self.plane.kubeconfig(User::Admin))
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

#[tokio::test]
async fn approve_applies_exactly_the_reviewed_plan_and_reject_changes_nothing() {
    let env = Env::new("approve").await;
    let started = Instant::now();
    env.create_as_carol(&demo(
        &env.ns,
        &env.markers(),
        json!({"api_token": SECRET}),
        serde_json::Value::Null,
    ))
    .await;
    let checkpoint = env.pending_checkpoint(None).await;
    let to_checkpoint = started.elapsed();
    let raw = raw_terraform_plan(&env);
    eprintln!(
        "e2e: create Project → checkpoint open {to_checkpoint:?}; raw terraform init && plan of the same Project {raw:?}; ratio {:.2}x",
        to_checkpoint.as_secs_f64() / raw.as_secs_f64()
    );
    let project = env.project().await;
    let plan = project.status.as_ref().unwrap().plan.clone().unwrap();
    assert_eq!(
        checkpoint.spec.plan_ref.as_ref().unwrap().digest,
        plan.digest,
        "the checkpoint names the saved plan's digest"
    );
    assert_eq!(checkpoint.spec.summary.add, 3);
    assert!(
        checkpoint
            .spec
            .reasons
            .iter()
            .any(|r| r.contains("first apply")),
        "{:?}",
        checkpoint.spec.reasons
    );
    assert_eq!(checkpoint.spec.summary.cost.as_ref().unwrap().after, "0");
    let listing = env.kubectl(&["get", "proj,cp"]);
    assert!(
        listing.contains("AwaitingApproval")
            && listing.contains("PlanApproval")
            && listing.contains("Pending"),
        "{listing}"
    );
    assert!(
        markers_in(&env.markers()).is_empty(),
        "nothing is applied before a decision"
    );

    let refused = env
        .decide(
            User::Carol,
            &checkpoint.metadata.name.clone().unwrap(),
            "Approved",
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, kube::Error::Api(s) if s.code == 403),
        "{refused:?}"
    );
    env.decide(
        User::Alice,
        checkpoint.metadata.name.as_deref().unwrap(),
        "Approved",
    )
    .await
    .unwrap();
    env.kubectl(&[
        "wait",
        "--for=condition=Ready",
        "proj/demo",
        "--timeout=120s",
    ]);
    let project = env.project().await;
    let status = project.status.unwrap();
    assert_eq!(
        status.history[0].decided_by.as_deref(),
        Some("alice"),
        "the decider comes from the authenticated request"
    );
    assert_eq!(status.last_applied.unwrap().plan_id, plan.id);
    assert_eq!(markers_in(&env.markers()).len(), 1, "exactly one apply");
    let outputs = env.plane.client(User::Admin).await;
    let secret = Api::<k8s_openapi::api::core::v1::Secret>::namespaced(outputs, &env.ns)
        .get(&status.outputs_secret_ref.unwrap().name)
        .await
        .unwrap();
    let outputs = secret.data.unwrap();
    assert_eq!(outputs["app_greeting"].0, b"hello");
    assert!(
        String::from_utf8_lossy(&outputs["app_token_hint"].0).starts_with("sha256:"),
        "the sensitive output is in the outputs Secret"
    );
    // The sensitive input never shows up in anything tollgate wrote or logged.
    for text in env.everything_written().await {
        assert!(
            !text.contains(SECRET),
            "secret leaked into: {}",
            &text[..text.len().min(2000)]
        );
    }
    wait_for("checkpoint phase Approved", DEADLINE, || async {
        env.checkpoints
            .get(checkpoint.metadata.name.as_deref().unwrap())
            .await
            .unwrap()
            .status
            .and_then(|s| s.phase)
            == Some(CheckpointPhase::Approved)
    })
    .await;

    // A change, then reject it: nothing is applied.
    let patch = json!({"spec": {"components": [{"name": "app", "module": "demo", "inputs": {"greeting": "rejected", "replicas": 1, "marker_dir": env.markers().to_str().unwrap()}}]}});
    env.projects
        .patch("demo", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let second = env
        .pending_checkpoint(checkpoint.metadata.name.as_deref())
        .await;
    env.decide(
        User::Bob,
        second.metadata.name.as_deref().unwrap(),
        "Rejected",
    )
    .await
    .unwrap();
    let rejected = env.wait_phase(ProjectPhase::Rejected).await;
    assert!(
        !rejected
            .status
            .unwrap()
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    );
    assert_eq!(
        markers_in(&env.markers()).len(),
        1,
        "a rejected plan is never applied"
    );
}

#[tokio::test]
async fn a_spec_change_supersedes_the_pending_checkpoint_and_its_approval_changes_nothing() {
    let env = Env::new("supersede").await;
    env.create_as_carol(&demo(
        &env.ns,
        &env.markers(),
        json!({}),
        serde_json::Value::Null,
    ))
    .await;
    let first = env.pending_checkpoint(None).await;
    let first_name = first.metadata.name.clone().unwrap();
    let patch = json!({"spec": {"components": [{"name": "app", "module": "demo", "inputs": {"greeting": "second", "replicas": 2, "marker_dir": env.markers().to_str().unwrap()}}]}});
    env.projects
        .patch("demo", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let second = env.pending_checkpoint(Some(&first_name)).await;
    wait_for("first checkpoint superseded", DEADLINE, || async {
        env.checkpoints
            .get(&first_name)
            .await
            .unwrap()
            .status
            .and_then(|s| s.phase)
            == Some(CheckpointPhase::Superseded)
    })
    .await;
    // Approving the superseded plan is refused by admission, and applies nothing.
    let refused = env
        .decide(User::Alice, &first_name, "Approved")
        .await
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("is Superseded: its plan will never be applied"),
        "{refused}"
    );
    let after = env.project().await;
    assert_eq!(
        after.status.as_ref().unwrap().phase,
        Some(ProjectPhase::AwaitingApproval)
    );
    assert_eq!(
        after.status.unwrap().checkpoint_ref.unwrap().name,
        second.metadata.name.clone().unwrap()
    );
    assert_eq!(
        env.checkpoints
            .get(&first_name)
            .await
            .unwrap()
            .status
            .unwrap()
            .phase,
        Some(CheckpointPhase::Superseded)
    );
    assert!(markers_in(&env.markers()).is_empty());
    env.decide(
        User::Alice,
        second.metadata.name.as_deref().unwrap(),
        "Approved",
    )
    .await
    .unwrap();
    let ready = env.wait_phase(ProjectPhase::Ready).await;
    assert_eq!(
        ready.status.unwrap().last_applied.unwrap().plan_id,
        second.spec.plan_ref.unwrap().id
    );
}

#[tokio::test]
async fn pre_approved_changes_apply_without_a_checkpoint_and_resyncs_run_no_terraform() {
    let env = Env::new("preapproved").await;
    let everything =
        json!({"autoApprove": ["FirstApply", "Create", "Update", "Replace", "Delete"]});
    env.allow(everything.clone()).await;
    env.create_as_carol(&demo(&env.ns, &env.markers(), json!({}), everything))
        .await;
    let ready = env.wait_phase(ProjectPhase::Ready).await;
    assert!(ready.status.as_ref().unwrap().last_applied.is_some());
    assert!(
        env.checkpoints
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty(),
        "no checkpoint for a pre-approved change"
    );
    assert_eq!(markers_in(&env.markers()).len(), 1);

    env.patch_runs_no_terraform(
        json!({"metadata": {"labels": {"touched": "yes"}}}),
        "an unchanged Project runs no Terraform",
    )
    .await;
    let runs = env
        .controller
        .metric("tollgate_terraform_commands_started")
        .await;

    // An explicit re-plan request runs Terraform again (and, with nothing changed, stays Ready).
    let annotate = json!({"metadata": {"annotations": {tollgate::api::REPLAN_ANNOTATION: "1"}}});
    env.projects
        .patch("demo", &PatchParams::default(), &Patch::Merge(&annotate))
        .await
        .unwrap();
    wait_for("a re-plan on request", DEADLINE, || async {
        env.controller
            .metric("tollgate_terraform_commands_started")
            .await
            > runs
    })
    .await;
    env.wait_phase(ProjectPhase::Ready).await;
    assert_eq!(
        markers_in(&env.markers()).len(),
        1,
        "a no-change re-plan applies nothing"
    );
}

#[tokio::test]
async fn a_controller_killed_during_apply_finishes_with_exactly_one_apply() {
    let mut env = Env::new("killed").await;
    env.create_as_carol(&demo(
        &env.ns,
        &env.markers(),
        json!({"apply_delay_seconds": 6}),
        serde_json::Value::Null,
    ))
    .await;
    env.approve_pending(User::Alice).await;
    env.wait_phase(ProjectPhase::Applying).await;
    // Kill while Terraform is applying.
    let work = env.dir.path().join("work").join(&env.ns).join("demo");
    wait_for("terraform apply running", DEADLINE, || async {
        tollgate_e2e::applying_in(&work)
    })
    .await;
    env.controller.kill_hard().await;
    assert!(
        markers_in(&env.markers()).is_empty(),
        "killed before the apply finished"
    );
    env.controller.restart().await;
    let ready = env.wait_phase(ProjectPhase::Ready).await;
    assert!(ready.status.unwrap().last_applied.is_some());
    wait_for("the apply's marker", DEADLINE, || async {
        !markers_in(&env.markers()).is_empty()
    })
    .await;
    assert_eq!(
        markers_in(&env.markers()).len(),
        1,
        "exactly one apply after a kill -9: {:?}\n{}",
        markers_in(&env.markers()),
        env.controller.log()
    );
    eprintln!(
        "e2e: after kill -9 during apply, the restarted controller logged:\n{}",
        env.controller
            .log()
            .lines()
            .filter(|l| l.contains("stale") || l.contains("Applied") || l.contains("lock"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[tokio::test]
async fn deleting_a_project_destroys_through_a_destroy_checkpoint() {
    let env = Env::new("destroy").await;
    let policy = json!({"autoApprove": ["FirstApply", "Create"]});
    env.allow(policy.clone()).await;
    env.create_as_carol(&demo(&env.ns, &env.markers(), json!({}), policy))
        .await;
    env.wait_phase(ProjectPhase::Ready).await;
    assert_eq!(markers_in(&env.markers()).len(), 1);
    env.projects
        .delete("demo", &DeleteParams::default())
        .await
        .unwrap();
    let destroy = env.pending_destroy().await;
    assert_eq!(
        destroy.spec.checkpoint_type,
        tollgate::api::CheckpointType::Destroy
    );
    assert_eq!(
        markers_in(&env.markers()).len(),
        1,
        "nothing destroyed before approval"
    );
    env.decide(
        User::Alice,
        destroy.metadata.name.as_deref().unwrap(),
        "Approved",
    )
    .await
    .unwrap();
    env.wait_gone().await;
    assert!(markers_in(&env.markers()).is_empty(), "the destroy ran");
}

#[tokio::test]
async fn the_controller_binary_serves_the_admission_webhook() {
    let plane = ControlPlane::get().await;
    let ns = plane.namespace("own-webhook").await;
    let dir = tempfile::tempdir().unwrap();
    let port = tollgate_e2e::controller::free_port();
    // Registered as a user would: `tollgate webhook configure` issues the certificate,
    // writes it for this out-of-cluster controller and registers both configurations
    // (for this namespace only: the control plane is shared).
    let configuration = format!("tollgate-e2e-own-{ns}");
    let tls = dir.path().join("tls");
    let configured = std::process::Command::new(tollgate_e2e::controller::tollgate_binary())
        .args(["webhook", "configure", "--kubeconfig"])
        .arg(plane.kubeconfig(User::Admin))
        .args(["--namespace", &ns, "--name", &configuration])
        .args(["--url", &format!("https://127.0.0.1:{port}")])
        .args([
            "--namespace-selector",
            &format!("tollgate.dev/e2e-own-webhook={ns}"),
        ])
        .arg("--write-files")
        .arg(&tls)
        .status()
        .unwrap();
    assert!(configured.success());
    let args = vec![
        "--webhook-cert".into(),
        tls.join("tls.crt").to_string_lossy().into_owned(),
        "--webhook-key".into(),
        tls.join("tls.key").to_string_lossy().into_owned(),
        "--webhook-listen".into(),
        format!("127.0.0.1:{port}"),
        "--webhook-configuration".into(),
        configuration.clone(),
        "--controller-user".into(),
        plane.username(User::Admin),
    ];
    // Ready only once the configurations carry the CA of the certificate it serves.
    let controller = ControllerProcess::start_with(plane, &ns, dir.path(), args).await;
    let admin = plane.client(User::Admin).await;
    Api::<k8s_openapi::api::core::v1::Namespace>::all(admin.clone())
        .patch(
            &ns,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"tollgate.dev/e2e-own-webhook": &ns}}})),
        )
        .await
        .unwrap();
    let probes: Api<Project> = Api::namespaced(plane.client(User::Carol).await, &ns);
    wait_for("the apiserver calling the controller's webhook", DEADLINE, || async {
        let probe: Project = serde_json::from_value(json!({
            "apiVersion": "tollgate.dev/v1alpha1", "kind": "Project",
            "metadata": {"name": "probe", "namespace": &ns},
            "spec": {"environment": "dev", "components": [{"name": "app", "module": "demo", "inputs": {}}]}
        }))
        .unwrap();
        let dry_run = PostParams { dry_run: true, ..Default::default() };
        probes
            .create(&dry_run, &probe)
            .await
            .ok()
            .and_then(|p| p.metadata.annotations)
            .and_then(|a| a.get(tollgate::api::LAST_CHANGED_BY_ANNOTATION).cloned())
            == Some("carol".to_owned())
    })
    .await;
    let projects: Api<Project> = Api::namespaced(plane.client(User::Carol).await, &ns);
    projects
        .create(
            &PostParams::default(),
            &demo(
                &ns,
                &dir.path().join("markers"),
                json!({}),
                serde_json::Value::Null,
            ),
        )
        .await
        .unwrap();
    let admin_projects: Api<Project> = Api::namespaced(plane.client(User::Admin).await, &ns);
    let created = admin_projects.get("demo").await.unwrap();
    assert_eq!(
        created
            .annotations()
            .get(tollgate::api::LAST_CHANGED_BY_ANNOTATION)
            .map(String::as_str),
        Some("carol")
    );
    let checkpoints: Api<Checkpoint> = Api::namespaced(plane.client(User::Admin).await, &ns);
    let name = {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(r) = admin_projects
                .get("demo")
                .await
                .unwrap()
                .status
                .and_then(|s| s.checkpoint_ref)
            {
                break r.name;
            }
            assert!(
                Instant::now() < deadline,
                "no checkpoint\n{}",
                controller.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    assert_eq!(
        checkpoints
            .get(&name)
            .await
            .unwrap()
            .spec
            .requested_by
            .as_deref(),
        Some("carol")
    );
    let alice: Api<Checkpoint> = Api::namespaced(plane.client(User::Alice).await, &ns);
    let typed = json!({"status": {"decision": "Approved", "reason": "ok", "decidedBy": "bob"}});
    let decided = alice
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&typed))
        .await
        .unwrap();
    assert_eq!(
        decided.status.unwrap().decided_by.as_deref(),
        Some("alice"),
        "a user cannot type someone else's name"
    );
    wait_for("the approved plan applied", DEADLINE, || async {
        admin_projects
            .get("demo")
            .await
            .unwrap()
            .status
            .and_then(|s| s.phase)
            == Some(ProjectPhase::Ready)
    })
    .await;
    // The configurations select only this namespace; remove them with it.
    for kind in [
        "mutatingwebhookconfiguration",
        "validatingwebhookconfiguration",
    ] {
        let api: Api<kube::api::DynamicObject> = Api::all_with(
            admin.clone(),
            &kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
                "admissionregistration.k8s.io",
                "v1",
                if kind.starts_with("mutating") {
                    "MutatingWebhookConfiguration"
                } else {
                    "ValidatingWebhookConfiguration"
                },
            )),
        );
        api.delete(&configuration, &DeleteParams::default())
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn suspend_stops_terraform_invalid_specs_stall_and_orphan_keeps_infrastructure() {
    let env = Env::new("suspend").await;
    let policy = json!({"autoApprove": ["FirstApply", "Create", "Update", "Replace", "Delete"]});
    env.allow(policy.clone()).await;
    let mut project = demo(&env.ns, &env.markers(), json!({}), policy);
    project.spec.deletion_policy = tollgate::api::DeletionPolicy::Orphan;
    env.create_as_carol(&project).await;
    env.wait_phase(ProjectPhase::Ready).await;

    // Suspended: a spec change runs no Terraform.
    env.projects
        .patch(
            "demo",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"suspend": true}})),
        )
        .await
        .unwrap();
    env.wait_phase(ProjectPhase::Suspended).await;
    let change = json!({"spec": {"components": [{"name": "app", "module": "demo", "inputs": {"greeting": "while suspended", "replicas": 1, "marker_dir": env.markers().to_str().unwrap()}}]}});
    env.patch_runs_no_terraform(change, "a suspended Project runs no Terraform")
        .await;

    // An input the module does not have: Stalled with the catalog's message, nothing run.
    let invalid = json!({"spec": {"suspend": false, "components": [{"name": "app", "module": "demo", "inputs": {"greeting": "x", "replica": 2}}]}});
    env.projects
        .patch("demo", &PatchParams::default(), &Patch::Merge(&invalid))
        .await
        .unwrap();
    let failed = env.wait_phase(ProjectPhase::Failed).await;
    let stalled = failed
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Stalled")
        .unwrap();
    assert_eq!(stalled.status, "True");
    assert!(
        stalled.message.contains("did you mean `replicas`"),
        "{}",
        stalled.message
    );
    assert_eq!(markers_in(&env.markers()).len(), 1);

    // A value the module's own validation rejects: Terraform cannot plan; Failed, no retries.
    let rejected_by_module = json!({"spec": {"components": [{"name": "app", "module": "demo", "inputs": {"greeting": "x", "replicas": 11, "marker_dir": env.markers().to_str().unwrap()}}]}});
    env.projects
        .patch(
            "demo",
            &PatchParams::default(),
            &Patch::Merge(&rejected_by_module),
        )
        .await
        .unwrap();
    wait_for("PlanFailed with the module's message", DEADLINE, || async {
        env.project()
            .await
            .status
            .unwrap_or_default()
            .conditions
            .iter()
            .any(|c| {
                c.type_ == "Ready"
                    && c.reason == "PlanFailed"
                    && c.message
                        .contains("replicas must be a whole number from 1 to 10")
            })
    })
    .await;

    // ... and is not retried: a resync runs no Terraform.
    env.patch_runs_no_terraform(
        json!({"metadata": {"labels": {"touched": "after-plan-failure"}}}),
        "a refused plan is not retried",
    )
    .await;

    // Orphan: deleting leaves the infrastructure (and asks nobody).
    env.projects
        .delete("demo", &DeleteParams::default())
        .await
        .unwrap();
    env.wait_gone().await;
    assert_eq!(
        markers_in(&env.markers()).len(),
        1,
        "Orphan keeps the infrastructure"
    );
    assert!(
        env.checkpoints
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .iter()
            .all(|c| c.spec.checkpoint_type != tollgate::api::CheckpointType::Destroy)
    );
}

/// A kubeconfig for the controller's service account from deploy/controller-rbac.yaml.
fn service_account_kubeconfig(env: &Env) -> std::path::PathBuf {
    env.kubectl_admin(&[
        "apply",
        "-f",
        &tollgate_e2e::repo_root()
            .join("deploy/controller-rbac.yaml")
            .to_string_lossy(),
    ]);
    let token = env.kubectl_admin(&[
        "create",
        "token",
        "tollgate",
        "-n",
        "tollgate-system",
        "--duration=2h",
    ]);
    let kubeconfig = json!({
        "apiVersion": "v1", "kind": "Config", "current-context": "tollgate",
        "clusters": [{"name": "e2e", "cluster": {"server": env.plane.var("TOLLGATE_E2E_SERVER"), "certificate-authority": env.plane.var("TOLLGATE_E2E_CA_CERT")}}],
        "users": [{"name": "tollgate", "user": {"token": token.trim()}}],
        "contexts": [{"name": "tollgate", "context": {"cluster": "e2e", "user": "tollgate"}}]
    });
    let path = env.dir.path().join("controller.kubeconfig");
    std::fs::write(&path, kubeconfig.to_string()).unwrap();
    path
}

#[tokio::test]
async fn the_controller_needs_only_its_cluster_role() {
    let mut env = Env::new("least-privilege").await;
    let kubeconfig = service_account_kubeconfig(&env);
    env.controller.kill_hard().await;
    // Everything on: the webhook, and the in-apiserver decision policy, which knows the
    // controller by its service account.
    env.plane.install_decision_policy();
    env.plane.kubectl(
        User::Admin,
        &[
            "label",
            "namespace",
            &env.ns,
            &format!("{}=on", tollgate_e2e::DECISION_POLICY_LABEL),
        ],
        None,
    );
    // In effect once admin (a controller for the webhook here, a person for the policy,
    // which knows only the service account) can no longer write a checkpoint's phase.
    env.plane
        .wait_for_decision_policy(&env.ns, User::Admin)
        .await;
    env.controller = ControllerProcess::start_as(
        &kubeconfig,
        &env.ns,
        env.dir.path(),
        vec![
            "--controller-user".into(),
            tollgate_e2e::webhook::CONTROLLER_SERVICE_ACCOUNT.into(),
            // Where deploy/controller-rbac.yaml gives it rights to keep state (and its
            // leader Lease, named after the test so parallel runs do not share one).
            "--state-namespace".into(),
            "tollgate-system".into(),
            "--leader-elect".into(),
            "--leader-elect-lease-name".into(),
            env.ns.clone(),
        ],
    )
    .await;
    env.create_as_carol(&demo(
        &env.ns,
        &env.markers(),
        json!({}),
        serde_json::Value::Null,
    ))
    .await;
    env.approve_pending(User::Alice).await;
    let ready = env.wait_phase(ProjectPhase::Ready).await;
    assert_eq!(
        ready.status.unwrap().history[0].decided_by.as_deref(),
        Some("alice")
    );
    assert_eq!(markers_in(&env.markers()).len(), 1);
    env.projects
        .delete("demo", &DeleteParams::default())
        .await
        .unwrap();
    let destroy = env.pending_destroy().await;
    env.decide(
        User::Bob,
        destroy.metadata.name.as_deref().unwrap(),
        "Approved",
    )
    .await
    .unwrap();
    env.wait_gone().await;
    assert!(markers_in(&env.markers()).is_empty());
    let events = env.kubectl(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=demo",
        "-o",
        "name",
    ]);
    assert!(
        !events.trim().is_empty(),
        "the controller records Events with its own identity"
    );
    assert!(
        !env.controller.log().contains("Forbidden"),
        "{}",
        env.controller.log()
    );
    assert!(env.controller.log().contains("became the leader"));
    env.kubectl_admin(&[
        "delete",
        "lease",
        "-n",
        "tollgate-system",
        &env.ns,
        "--ignore-not-found",
    ]);
}

/// The attack of the security issue, through the whole loop: a platform user's Project
/// tries to read a canary file next to the controller through template markers in its
/// inputs. The output equals the literal input, and the canary's content is nowhere: not
/// in outputs, state, any Secret, status, Checkpoints, Events or the controller's log.
#[tokio::test]
async fn a_project_input_cannot_read_a_file_on_the_controllers_host() {
    let env = Env::new("inject").await;
    let canary_content = format!("canary-{}", std::process::id());
    let canary = env.dir.path().join("canary");
    std::fs::write(&canary, &canary_content).unwrap();
    let canary_path = canary.to_str().unwrap();
    // `%%{%${…}` is the form hcl-rs's escaper left live; the second needs no quotes.
    let greeting = format!("%%{{%${{file(\"{canary_path}\")}}");
    let tag = "%%{%${file(join(substr(path.cwd,0,1),concat([substr(path.cwd,0,0)],keys({etc=1}),keys({hostname=1}))))}";
    let directive = "$${$%{ if false }HIDDEN%{ endif }";
    env.create_as_carol(&demo(
        &env.ns,
        &env.markers(),
        json!({"greeting": greeting, "tags": {"read": tag, "directive": directive}}),
        serde_json::Value::Null,
    ))
    .await;
    env.approve_pending(User::Alice).await;
    let project = env.wait_phase(ProjectPhase::Ready).await;

    let admin = env.plane.client(User::Admin).await;
    let outputs = Api::<k8s_openapi::api::core::v1::Secret>::namespaced(admin.clone(), &env.ns)
        .get(&project.status.unwrap().outputs_secret_ref.unwrap().name)
        .await
        .unwrap()
        .data
        .unwrap();
    assert_eq!(outputs["app_greeting"].0, greeting.as_bytes());
    let tags: serde_json::Value = serde_json::from_slice(&outputs["app_tags"].0).unwrap();
    assert_eq!(tags, json!({"read": tag, "directive": directive}));
    let marker = env.markers().join(&markers_in(&env.markers())[0]);
    assert_eq!(std::fs::read_to_string(marker).unwrap(), greeting);

    // Every Secret in the cluster (state included, wherever it lives), gzip-decoded
    // where it is gzip, and everything tollgate wrote or logged.
    let mut written = env.everything_written().await;
    let secrets = Api::<k8s_openapi::api::core::v1::Secret>::all(admin)
        .list(&Default::default())
        .await
        .unwrap();
    let mut state_seen = false;
    for secret in secrets.items {
        state_seen |= secret.name_any().starts_with("tfstate-");
        for value in secret.data.unwrap_or_default().into_values() {
            let mut text = String::from_utf8_lossy(&value.0).into_owned();
            let mut gunzipped = String::new();
            if std::io::Read::read_to_string(
                &mut flate2::read::GzDecoder::new(&value.0[..]),
                &mut gunzipped,
            )
            .is_ok()
            {
                text.push_str(&gunzipped);
            }
            written.push(text);
        }
    }
    assert!(
        state_seen,
        "the Terraform state is among the Secrets checked"
    );
    for text in written {
        assert!(
            !text.contains(&canary_content),
            "the canary leaked into: {}",
            &text[..text.len().min(2000)]
        );
    }
}

/// Without admission anyone who may write checkpoints/status can type any decidedBy. Such a
/// decision carries no seal from tollgate's webhook, so the controller applies nothing and
/// says why; a typed seal does not pass either.
#[tokio::test]
async fn without_admission_a_decision_is_not_applied_and_says_why() {
    let env = Env::without_admission("no-admission").await;
    env.create_as_carol(&demo(
        &env.ns,
        &env.markers(),
        json!({}),
        serde_json::Value::Null,
    ))
    .await;
    let checkpoint = env.pending_checkpoint(None).await;
    let name = checkpoint.metadata.name.clone().unwrap();
    // alice approves, typing bob's name; nothing in the apiserver stops her.
    let alice: Api<Checkpoint> = Api::namespaced(env.plane.client(User::Alice).await, &env.ns);
    alice
        .patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(
                json!({"status": {"decision": "Approved", "reason": "lgtm", "decidedBy": "bob"}}),
            ),
        )
        .await
        .unwrap();
    let project = env.wait_unverified(&name).await;
    let status = project.status.unwrap();
    assert_eq!(status.phase, Some(ProjectPhase::AwaitingApproval));
    assert!(
        status.history.is_empty(),
        "no decision is recorded: {:?}",
        status.history
    );
    assert!(status.last_applied.is_none());
    let message = &status
        .conditions
        .iter()
        .find(|c| c.type_ == "AwaitingApproval")
        .unwrap()
        .message;
    assert!(
        message.contains("carries no decisionSeal") && message.contains("admission webhook"),
        "{message}"
    );
    wait_for(
        "the checkpoint's DecisionVerified=False condition",
        DEADLINE,
        || async {
            let cp = env.checkpoints.get(&name).await.unwrap();
            let status = cp.status.unwrap_or_default();
            status.phase == Some(CheckpointPhase::Pending)
                && status
                    .conditions
                    .iter()
                    .any(|c| c.type_ == "DecisionVerified" && c.status == "False")
        },
    )
    .await;
    let events = env.kubectl(&["get", "events", "-o", "json"]);
    assert!(events.contains("DecisionUnverified"), "{events}");
    assert!(markers_in(&env.markers()).is_empty(), "nothing was applied");

    // A new checkpoint (re-plan on request), decided with a typed seal: still nothing.
    env.projects
        .patch(
            "demo",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"tollgate.dev/replan": "1"}}})),
        )
        .await
        .unwrap();
    let second = env.pending_checkpoint(Some(&name)).await;
    let second = second.metadata.name.unwrap();
    let forged = format!("v1.{}", "ab".repeat(32));
    alice
        .patch_status(
            &second,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"decision": "Approved", "decidedBy": "alice", "decidedAt": "2026-12-03T08:00:00Z", "decisionSeal": forged}})),
        )
        .await
        .unwrap();
    let project = env.wait_unverified(&second).await;
    assert!(
        project
            .status
            .unwrap()
            .conditions
            .iter()
            .any(|c| c.message.contains("does not match the decision")),
    );
    assert!(markers_in(&env.markers()).is_empty(), "nothing was applied");
}

/// Only the people who approve may loosen the gate: a Project's own auto-approval counts only
/// where a TO-owned ApprovalPolicy allows it; platform users cannot write policies; a raised
/// budget waits for a BudgetIncrease approval; the environment cannot be changed.
#[tokio::test]
async fn only_an_approval_policy_owned_by_approvers_lets_changes_skip_a_person() {
    let env = Env::new("policy").await;
    let everything = json!({"autoApprove": ["FirstApply", "Create", "Update", "Replace", "Delete"], "costIncreaseThreshold": "100000"});
    env.create_as_carol(&demo(&env.ns, &env.markers(), json!({}), everything))
        .await;
    let gated = env.pending_checkpoint(None).await;
    assert!(
        gated
            .spec
            .reasons
            .iter()
            .any(|r| r.contains("no ApprovalPolicy selects")),
        "{:?}",
        gated.spec.reasons
    );
    let status = env.project().await.status.unwrap();
    let effective = status.effective_policy.unwrap();
    assert!(effective.auto_approve.is_empty() && effective.policies.is_empty());
    assert_eq!(
        effective.not_allowed.len(),
        6,
        "{:?}",
        effective.not_allowed
    );
    // The person deciding sees the same, in the checkpoint.
    assert_eq!(gated.spec.effective_policy.as_ref(), Some(&effective));
    assert!(markers_in(&env.markers()).is_empty());

    // carol cannot write a policy.
    let can_i = std::process::Command::new(env.plane.var("TOLLGATE_E2E_KUBECTL"))
        .arg("--kubeconfig")
        .arg(env.plane.kubeconfig(User::Carol))
        .args(["auth", "can-i", "create", "approvalpolicies.tollgate.dev"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&can_i.stdout).trim(), "no");
    let refused = Api::<ApprovalPolicy>::all(env.plane.client(User::Carol).await)
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"apiVersion": "tollgate.dev/v1alpha1", "kind": "ApprovalPolicy",
                "metadata": {"name": format!("{}-carol", env.ns)}, "spec": {"autoApprove": ["Create"]}}))
            .unwrap(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, kube::Error::Api(s) if s.code == 403),
        "{refused:?}"
    );

    // A TO-owned policy allows creates under $50 in dev (and a $10 budget): a re-plan now
    // applies without a person, and says which policy allowed it.
    let name = env
        .allow(json!({"environments": ["dev"], "autoApprove": ["FirstApply", "Create"], "costIncreaseThreshold": "50", "projectMonthlyBudget": "10"}))
        .await;
    env.projects
        .patch(
            "demo",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"annotations": {tollgate::api::REPLAN_ANNOTATION: "policy"}}}),
            ),
        )
        .await
        .unwrap();
    let ready = env.wait_phase(ProjectPhase::Ready).await;
    let status = ready.status.unwrap();
    let effective = status.effective_policy.unwrap();
    assert_eq!(effective.policies, std::slice::from_ref(&name));
    assert_eq!(effective.cost_increase_threshold, "50");
    assert_eq!(markers_in(&env.markers()).len(), 1);
    let events = env.kubectl(&["get", "events", "-o", "json"]);
    assert!(
        events.contains(&format!("pre-approved by ApprovalPolicy {name}")),
        "{events}"
    );

    // Raising the budget above the policy's $10 waits for a person, even with nothing else
    // changing; the new budget counts only once approved.
    env.projects
        .patch(
            "demo",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"budget": {"monthlyLimit": "500"}}})),
        )
        .await
        .unwrap();
    let raise = env
        .pending_checkpoint(Some(gated.metadata.name.as_deref().unwrap()))
        .await;
    assert_eq!(
        raise.spec.checkpoint_type,
        tollgate::api::CheckpointType::BudgetIncrease
    );
    assert!(
        raise
            .spec
            .reasons
            .iter()
            .any(|r| r.contains("$500 is above the $10")),
        "{:?}",
        raise.spec.reasons
    );
    let pending = env.project().await.status.unwrap();
    assert_eq!(
        pending.effective_policy.unwrap().budget.as_deref(),
        Some("10")
    );
    assert_eq!(pending.approved_budget, None);
    assert_eq!(
        raise
            .spec
            .effective_policy
            .as_ref()
            .map(|p| p.policies.clone()),
        Some(vec![name.clone()])
    );
    env.decide(
        User::Alice,
        raise.metadata.name.as_deref().unwrap(),
        "Approved",
    )
    .await
    .unwrap();
    wait_for("the approved budget", DEADLINE, || async {
        env.project()
            .await
            .status
            .and_then(|s| s.approved_budget)
            .as_deref()
            == Some("500")
    })
    .await;
    assert_eq!(
        markers_in(&env.markers()).len(),
        1,
        "the budget change applied nothing else"
    );

    // The environment is fixed: production cannot become dev, nor dev production.
    let refused = env
        .projects
        .patch(
            "demo",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"environment": "production"}})),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, kube::Error::Api(s) if s.message.contains("spec.environment cannot be changed")),
        "{refused:?}"
    );
}

/// Every step of the loop leaves one record in the hash-chained audit trail, the decision
/// attributed to the person from the request, and `tollgate audit verify` accepts the file
/// a real run wrote (and refuses it once a record is edited).
#[tokio::test]
async fn the_loop_writes_a_verifiable_audit_trail() {
    let mut env = Env::new("audit").await;
    let trail = env.dir.path().join("audit.jsonl");
    env.controller.kill_hard().await;
    env.controller = ControllerProcess::start_with(
        env.plane,
        &env.ns,
        env.dir.path(),
        vec!["--audit-file".into(), trail.to_string_lossy().into_owned()],
    )
    .await;
    env.create_as_carol(&demo(
        &env.ns,
        &env.markers(),
        json!({}),
        serde_json::Value::Null,
    ))
    .await;
    env.approve_pending(User::Alice).await;
    env.wait_phase(ProjectPhase::Ready).await;
    // A change waits for a person; a second change supersedes that checkpoint, which the
    // trail records (the checkpoint itself may later be deleted, --keep-checkpoints).
    let greet = |greeting: &'static str| {
        Patch::Merge(
            json!({"spec": {"components": [{"name": "app", "module": "demo", "inputs": {"greeting": greeting, "replicas": 1, "marker_dir": env.markers().to_str().unwrap()}}]}}),
        )
    };
    env.projects
        .patch("demo", &PatchParams::default(), &greet("hello again"))
        .await
        .unwrap();
    let first = env.pending_checkpoint(None).await;
    env.projects
        .patch("demo", &PatchParams::default(), &greet("hello once more"))
        .await
        .unwrap();
    env.pending_checkpoint(first.metadata.name.as_deref()).await;
    let text = std::fs::read_to_string(&trail).unwrap();
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let actions: Vec<&str> = records
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "PlanMade",
            "CheckpointOpened",
            "CheckpointDecided",
            "ApplyStarted",
            "ApplyFinished",
            "PlanMade",
            "CheckpointOpened",
            "CheckpointSuperseded",
            "PlanMade",
            "CheckpointOpened"
        ],
        "{text}"
    );
    assert_eq!(
        records[7]["checkpoint"].as_str(),
        first.metadata.name.as_deref()
    );
    let decided = &records[2];
    assert_eq!(decided["actor"], "alice");
    assert_eq!(decided["decision"], "Approved");
    assert_eq!(decided["planDigest"], records[0]["planDigest"]);
    let verify = |path: &Path| {
        std::process::Command::new(tollgate_e2e::controller::tollgate_binary())
            .args(["audit", "verify"])
            .arg(path)
            .output()
            .unwrap()
    };
    assert!(verify(&trail).status.success());
    let tampered = env.dir.path().join("tampered.jsonl");
    std::fs::write(&tampered, text.replace("\"alice\"", "\"bob\"")).unwrap();
    let refused = verify(&tampered);
    assert!(!refused.status.success(), "an edited record must be found");
}

/// A Project's `spec.approval.sla` becomes deadlines on each checkpoint it opens (the
/// RESPOND-BY column); an SLA whose deadlines are out of order is refused as an invalid
/// spec that names the field.
#[tokio::test]
async fn checkpoints_carry_the_projects_sla_deadlines() {
    let env = Env::new("sla").await;
    let sla = json!({"sla": {"respondWithin": "30m", "escalation": {"after": "1h"}, "expireAfter": "4h"}});
    env.create_as_carol(&demo(&env.ns, &env.markers(), json!({}), sla))
        .await;
    let checkpoint = env.pending_checkpoint(None).await;
    // Deadlines are kept to the second (a `Time`), the opening to the microsecond.
    let opened =
        k8s_openapi::jiff::Timestamp::from_second(checkpoint.spec.requested_at.0.as_second())
            .unwrap();
    let deadlines = checkpoint.spec.sla.clone().unwrap();
    let after = |minutes: i64| opened + k8s_openapi::jiff::SignedDuration::from_mins(minutes);
    assert_eq!(deadlines.respond_by.0, after(30));
    assert_eq!(deadlines.escalate_at.unwrap().0, after(60));
    assert_eq!(deadlines.expire_at.unwrap().0, after(240));
    let listing = env.kubectl(&["get", "cp"]);
    assert!(
        listing.contains("RESPOND-BY") && listing.contains('T'),
        "{listing}"
    );

    let wrong = json!({"spec": {"approval": {"sla": {"respondWithin": "2h", "escalation": {"after": "1h"}}}}});
    env.projects
        .patch("demo", &PatchParams::default(), &Patch::Merge(&wrong))
        .await
        .unwrap();
    let failed = env.wait_phase(ProjectPhase::Failed).await;
    let ready = failed
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.reason, "InvalidSpec");
    assert!(
        ready.message.contains("spec.approval.sla"),
        "{}",
        ready.message
    );
}

/// Policy as code (docs/policy.md): a cluster policy's `deny` holds a plan every
/// ApprovalPolicy pre-approves until a person overrides it, and the override is recorded; a
/// namespace policy added while the controller runs is picked up without a restart; a broken
/// policy blocks the next change with its error.
#[tokio::test]
async fn rego_policies_hold_pre_approved_plans_and_a_broken_policy_blocks() {
    let env = Env::new("rego").await;
    let everything =
        json!({"autoApprove": ["FirstApply", "Create", "Update", "Replace", "Delete"]});
    env.allow(everything.clone()).await;
    let cluster = tollgate_e2e::controller::state_namespace_of(&env.ns);
    env.policy_config_map(
        &cluster,
        "greetings",
        "greetings.rego",
        r#"package greetings

deny contains msg if {
	some rc in input.resource_changes
	rc.type == "terraform_data"
	rc.change.after.input.greeting == "forbidden"
	msg := sprintf("%s greets with a forbidden word", [rc.address])
}"#,
    )
    .await;
    env.create_as_carol(&demo(
        &env.ns,
        &env.markers(),
        json!({"greeting": "forbidden"}),
        everything,
    ))
    .await;
    let held = env.pending_checkpoint(None).await;
    let violation = "module.app.terraform_data.app greets with a forbidden word";
    let report = held.spec.policy.clone().expect("the policies' report");
    assert_eq!(
        report
            .denied
            .iter()
            .map(|f| (f.package.as_str(), f.message.as_str()))
            .collect::<Vec<_>>(),
        [("data.greetings", violation)]
    );
    assert!(
        held.spec.reasons.iter().any(|r| r.contains(violation)),
        "{:?}",
        held.spec.reasons
    );
    assert!(markers_in(&env.markers()).is_empty(), "nothing applied");

    // A TO overrides it; the history names who.
    let name = held.metadata.name.clone().unwrap();
    env.decide(User::Alice, &name, "Approved").await.unwrap();
    let ready = env.wait_phase(ProjectPhase::Ready).await;
    let status = ready.status.unwrap();
    assert!(
        status
            .history
            .iter()
            .any(|h| h.outcome == "PolicyOverridden" && h.decided_by.as_deref() == Some("alice")),
        "{:?}",
        status.history
    );
    assert_eq!(markers_in(&env.markers()).len(), 1);
    let judged_by = status.policy.unwrap().digest;

    // The namespace's own policy, added now, judges the Project without a restart.
    env.policy_config_map(
        &env.ns,
        "team",
        "team.rego",
        "package team\n\nwarn contains \"team a reviews every change\" if true\n",
    )
    .await;
    wait_for(
        "the namespace policy judges the Project",
        DEADLINE,
        || async {
            env.project()
                .await
                .status
                .and_then(|s| s.policy)
                .is_some_and(|p| {
                    p.digest != judged_by
                        && p.warned
                            .iter()
                            .any(|f| f.message == "team a reviews every change")
                })
        },
    )
    .await;

    // Broken, it blocks the next change with its error (file and line); nothing is applied.
    env.policy_config_map(
        &env.ns,
        "team",
        "team.rego",
        "package team\n\nwarn contains msg if {\n\tmsg := \n}\n",
    )
    .await;
    wait_for("the broken policy reported", DEADLINE, || async {
        env.project()
            .await
            .status
            .and_then(|s| s.policy)
            .is_some_and(|p| p.error.is_some())
    })
    .await;
    env.wait_phase(ProjectPhase::Ready).await;
    let change = json!({"spec": {"components": [{"name": "app", "module": "demo", "inputs": {"greeting": "hello again", "replicas": 1, "marker_dir": env.markers().to_str().unwrap()}}]}});
    env.projects
        .patch("demo", &PatchParams::default(), &Patch::Merge(&change))
        .await
        .unwrap();
    let blocked = env.pending_checkpoint(Some(&name)).await;
    let error = blocked
        .spec
        .policy
        .unwrap()
        .error
        .expect("the policy error");
    assert!(
        error.contains(&format!("configmap {}/team team.rego", env.ns)),
        "{error}"
    );
    assert!(
        blocked
            .spec
            .reasons
            .iter()
            .any(|r| r.starts_with("the policies could not judge this plan")),
        "{:?}",
        blocked.spec.reasons
    );
    assert_eq!(markers_in(&env.markers()).len(), 1, "the change waits");
}

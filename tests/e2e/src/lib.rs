//! Test harness for end-to-end tests on a real control plane.
//!
//! `ControlPlane::get()` brings up kube-apiserver + etcd (through `tests/e2e/control-plane.sh
//! up`, a no-op when already running) once per test process, installs tollgate's CRDs, and
//! hands out kube clients for each test user and a fresh namespace per test.
//!
//! Failing to reach the control plane is a test failure, not a skip: CI starts it.
#![allow(clippy::expect_used, clippy::panic)] // a harness that cannot set up must fail the test

pub mod browser;
pub mod controller;
pub mod kubelet;
pub mod moto;
pub mod receiver;
pub mod site;
pub mod webhook;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{RoleBinding, RoleRef, Subject};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, CustomResourceExt};
use tokio::sync::OnceCell;
use tollgate::api::{ApprovalPolicy, Checkpoint, NamespaceBudget, Project};

/// The people in the e2e cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum User {
    /// In `system:masters`.
    Admin,
    /// Technical Operator in group `tollgate:approvers`.
    Alice,
    /// Technical Operator in group `tollgate:approvers`.
    Bob,
    /// Platform user: edits Projects, reads Checkpoints, cannot decide.
    Carol,
}

impl User {
    fn env_key(self) -> &'static str {
        match self {
            User::Admin => "ADMIN",
            User::Alice => "ALICE",
            User::Bob => "BOB",
            User::Carol => "CAROL",
        }
    }
}

/// A running control plane, described by the env file `control-plane.sh up` writes.
pub struct ControlPlane {
    env: HashMap<String, String>,
}

/// The shipped in-apiserver admission policy for decisions.
const DECISION_POLICY_FILE: &str = "deploy/admission/checkpoint-decision-policy.yaml";
/// Namespaces labelled with this (value `on`) are checked by the decision policy.
pub const DECISION_POLICY_LABEL: &str = "tollgate.dev/e2e-decision-policy";

static CONTROL_PLANE: OnceCell<ControlPlane> = OnceCell::const_new();
static NAMESPACE_COUNTER: AtomicU32 = AtomicU32::new(0);

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

impl ControlPlane {
    /// The shared control plane, started on first use, with tollgate's CRDs established.
    pub async fn get() -> &'static ControlPlane {
        CONTROL_PLANE
            .get_or_init(|| async { Self::start().await })
            .await
    }

    async fn start() -> ControlPlane {
        let script = repo_root().join("tests/e2e/control-plane.sh");
        let status = tokio::process::Command::new("bash")
            .arg(&script)
            .arg("up")
            .status()
            .await
            .expect("run tests/e2e/control-plane.sh up");
        assert!(
            status.success(),
            "tests/e2e/control-plane.sh up failed ({status}); see its output above"
        );
        let dir = std::env::var("TOLLGATE_E2E_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| {
                let cache = std::env::var("TOLLGATE_CACHE")
                    .map(PathBuf::from)
                    .unwrap_or_else(|_| {
                        PathBuf::from(std::env::var("HOME").unwrap_or_default())
                            .join(".cache/tollgate")
                    });
                cache.join("e2e")
            });
        let text =
            std::fs::read_to_string(dir.join("env")).expect("read the control plane's env file");
        let env = text
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.trim_matches('\'').to_owned()))
            .collect();
        let plane = ControlPlane { env };
        eprintln!(
            "e2e: Kubernetes {} ({}) at {}",
            plane.var("TOLLGATE_E2E_K8S_VERSION"),
            plane.var("TOLLGATE_E2E_K8S_ROUTE"),
            plane.var("TOLLGATE_E2E_SERVER")
        );
        plane.install_crds().await;
        plane.ensure_controller_namespace().await;
        plane
    }

    /// The controller's namespace (as deploy/controller-rbac.yaml makes it): the decision
    /// seal key lives there.
    async fn ensure_controller_namespace(&self) {
        let api: Api<Namespace> = Api::all(self.client(User::Admin).await);
        let namespace: Namespace = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "tollgate-system"}
        }))
        .expect("namespace object");
        match api.create(&PostParams::default(), &namespace).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(e) => panic!("create namespace tollgate-system: {e}"),
        }
    }

    /// kubectl as `user`, with `stdin`; fails the test when kubectl fails.
    pub fn kubectl(&self, user: User, args: &[&str], stdin: Option<&str>) -> String {
        use std::io::Write as _;
        let mut child = std::process::Command::new(self.var("TOLLGATE_E2E_KUBECTL"))
            .arg("--kubeconfig")
            .arg(self.kubeconfig(user))
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run kubectl");
        child
            .stdin
            .take()
            .expect("kubectl's stdin")
            .write_all(stdin.unwrap_or_default().as_bytes())
            .expect("write kubectl's stdin");
        let out = child.wait_with_output().expect("kubectl output");
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Installs the shipped decision policy (deploy/admission/), its binding narrowed to
    /// namespaces labelled [`DECISION_POLICY_LABEL`]`=on`: applied as is it would reach the
    /// other tests' namespaces on this shared apiserver, whose controllers run as admin
    /// rather than as the controller's service account the policy names.
    pub fn install_decision_policy(&self) {
        let text = std::fs::read_to_string(repo_root().join(DECISION_POLICY_FILE))
            .expect("read the decision policy");
        let (policy, binding) = text
            .split_once("\n---\n")
            .expect("the policy file holds the policy, then its binding");
        self.kubectl(User::Admin, &["apply", "-f", "-"], Some(policy));
        let binding = self.kubectl(
            User::Admin,
            &["create", "--dry-run=client", "-o", "json", "-f", "-"],
            Some(binding),
        );
        let mut binding: serde_json::Value =
            serde_json::from_str(&binding).expect("the binding as JSON");
        assert_eq!(binding["kind"], "ValidatingAdmissionPolicyBinding");
        binding["spec"]["matchResources"] = serde_json::json!({
            "namespaceSelector": {"matchLabels": {DECISION_POLICY_LABEL: "on"}}
        });
        self.kubectl(
            User::Admin,
            &["apply", "-f", "-"],
            Some(&binding.to_string()),
        );
    }

    /// Waits until the decision policy is in effect in `namespace`: `user` (a person to the
    /// policy) can no longer write a probe checkpoint's phase, a different value each try.
    /// The probe is deleted afterwards.
    pub async fn wait_for_decision_policy(&self, namespace: &str, user: User) {
        let admin: Api<Checkpoint> = Api::namespaced(self.client(User::Admin).await, namespace);
        admin
            .create(
                &PostParams::default(),
                &checkpoint_object(namespace, "policy-probe", serde_json::json!({})),
            )
            .await
            .expect("create the policy probe");
        let probes: Api<Checkpoint> = Api::namespaced(self.client(user).await, namespace);
        let mut attempt = 0u32;
        wait_for("the decision policy in effect", Duration::from_secs(60), || {
            attempt += 1;
            let phase = if attempt.is_multiple_of(2) {
                "Pending"
            } else {
                "Rejected"
            };
            let patch = serde_json::json!({"status": {"phase": phase}});
            let probes = probes.clone();
            async move {
                matches!(
                    probes
                        .patch_status("policy-probe", &PatchParams::default(), &Patch::Merge(&patch))
                        .await,
                    Err(kube::Error::Api(s)) if s.message.contains("ValidatingAdmissionPolicy")
                )
            }
        })
        .await;
        admin
            .delete("policy-probe", &DeleteParams::default())
            .await
            .expect("delete the policy probe");
    }

    /// A value from the env file.
    pub fn var(&self, key: &str) -> &str {
        self.env.get(key).map(String::as_str).unwrap_or_default()
    }

    /// The Kubernetes version the tests run against, e.g. `v1.34.2`.
    pub fn version(&self) -> &str {
        self.var("TOLLGATE_E2E_K8S_VERSION")
    }

    /// `(major, minor)` of the running Kubernetes.
    pub fn minor_version(&self) -> u32 {
        self.version()
            .trim_start_matches('v')
            .split('.')
            .nth(1)
            .and_then(|m| m.parse().ok())
            .unwrap_or(0)
    }

    /// Path of a user's kubeconfig.
    pub fn kubeconfig(&self, user: User) -> PathBuf {
        PathBuf::from(self.var(&format!("TOLLGATE_E2E_{}_KUBECONFIG", user.env_key())))
    }

    /// The username Kubernetes authenticates for `user`.
    pub fn username(&self, user: User) -> String {
        self.var(&format!("TOLLGATE_E2E_{}_USER", user.env_key()))
            .to_owned()
    }

    /// A kube client acting as `user`.
    pub async fn client(&self, user: User) -> Client {
        let kubeconfig = Kubeconfig::read_from(self.kubeconfig(user)).expect("read kubeconfig");
        let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .expect("kubeconfig is valid");
        Client::try_from(config).expect("build kube client")
    }

    async fn install_crds(&self) {
        let crds: Api<CustomResourceDefinition> = Api::all(self.client(User::Admin).await);
        for crd in [
            Project::crd(),
            Checkpoint::crd(),
            ApprovalPolicy::crd(),
            NamespaceBudget::crd(),
        ] {
            let name = crd.metadata.name.clone().expect("CRDs are named");
            crds.patch(
                &name,
                &PatchParams::apply("tollgate-e2e").force(),
                &Patch::Apply(&crd),
            )
            .await
            .expect("apply CRD");
            wait_for("CRD established", Duration::from_secs(60), || async {
                crds.get(&name)
                    .await
                    .ok()
                    .and_then(|c| c.status)
                    .and_then(|s| s.conditions)
                    .is_some_and(|cs| {
                        cs.iter()
                            .any(|c| c.type_ == "Established" && c.status == "True")
                    })
            })
            .await;
        }
    }

    /// A fresh namespace for one test, in which Carol is a `tollgate-editor` (as in
    /// `team-a`), so tests never see each other's objects.
    pub async fn namespace(&self, prefix: &str) -> String {
        let n = NAMESPACE_COUNTER.fetch_add(1, Ordering::SeqCst);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!("{prefix}-{}-{n}-{:x}", std::process::id(), nanos);
        let admin = self.client(User::Admin).await;
        let ns = Namespace {
            metadata: kube::api::ObjectMeta {
                name: Some(name.clone()),
                ..Default::default()
            },
            ..Default::default()
        };
        Api::<Namespace>::all(admin.clone())
            .create(&PostParams::default(), &ns)
            .await
            .expect("create namespace");
        let binding = RoleBinding {
            metadata: kube::api::ObjectMeta {
                name: Some("carol-editor".into()),
                namespace: Some(name.clone()),
                ..Default::default()
            },
            role_ref: RoleRef {
                api_group: Some("rbac.authorization.k8s.io".into()),
                kind: "ClusterRole".into(),
                name: "tollgate-editor".into(),
            },
            subjects: Some(vec![Subject {
                api_group: Some("rbac.authorization.k8s.io".into()),
                kind: "User".into(),
                name: self.username(User::Carol),
                namespace: None,
            }]),
        };
        Api::<RoleBinding>::namespaced(admin, &name)
            .create(&PostParams::default(), &binding)
            .await
            .expect("bind carol as editor");
        name
    }

    /// A namespace for a controller's Terraform state, saved plans and the Destroy
    /// checkpoints of terminating namespaces (`--state-namespace`): nobody but admin (and the
    /// controller) has rights there, as in `tollgate-system`. Idempotent.
    pub async fn state_namespace(&self, name: &str) -> String {
        let admin = self.client(User::Admin).await;
        let ns = Namespace {
            metadata: kube::api::ObjectMeta {
                name: Some(name.to_owned()),
                ..Default::default()
            },
            ..Default::default()
        };
        match Api::<Namespace>::all(admin)
            .create(&PostParams::default(), &ns)
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(err) => panic!("create state namespace {name}: {err}"),
        }
        name.to_owned()
    }

    /// Deletes a namespace made by [`ControlPlane::namespace`] (best effort: without
    /// kube-controller-manager, namespaces stay Terminating).
    pub async fn delete_namespace(&self, name: &str) {
        let admin = self.client(User::Admin).await;
        let _ = Api::<Namespace>::all(admin)
            .delete(name, &DeleteParams::default())
            .await;
    }
}

/// Polls `condition` until it holds, failing the test with `what` after `deadline`.
pub async fn wait_for<F, Fut>(what: &str, deadline: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    let mut delay = Duration::from_millis(50);
    loop {
        if condition().await {
            return;
        }
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for: {what}"
        );
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(1));
    }
}

/// Waits for Project `name` to reach phase `want`, failing the test after `deadline`.
pub async fn wait_project_phase(
    projects: &Api<Project>,
    name: &str,
    want: tollgate::api::ProjectPhase,
    deadline: Duration,
) {
    wait_for(&format!("Project {name} {want:?}"), deadline, || async {
        projects
            .get(name)
            .await
            .ok()
            .and_then(|p| p.status)
            .and_then(|s| s.phase)
            == Some(want)
    })
    .await;
}

/// Waits for a checkpoint of type `kind` among `checkpoints` and returns it, failing the
/// test after `deadline`.
pub async fn awaited_checkpoint_of(
    checkpoints: &Api<Checkpoint>,
    kind: tollgate::api::CheckpointType,
    deadline: Duration,
) -> Checkpoint {
    let open = || async {
        checkpoints
            .list(&kube::api::ListParams::default())
            .await
            .expect("list checkpoints")
            .items
            .into_iter()
            .find(|c| c.spec.checkpoint_type == kind)
    };
    wait_for(&format!("a {kind:?} checkpoint"), deadline, || async {
        open().await.is_some()
    })
    .await;
    open().await.expect("the checkpoint just seen")
}

/// A Checkpoint as the controller opens it (a PlanApproval of a one-resource plan), with
/// `spec_extra` merged into its spec.
pub fn checkpoint_object(namespace: &str, name: &str, spec_extra: serde_json::Value) -> Checkpoint {
    let mut spec = serde_json::json!({
        "type": "PlanApproval", "projectRef": {"name": "demo"},
        "planRef": {"id": "p1", "digest": "a".repeat(64)},
        "summary": {"text": "1 to add, 0 to change, 0 to destroy", "add": 1, "change": 0, "destroy": 0},
        "requestedAt": "2026-11-25T10:00:00Z",
    });
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), spec_extra.as_object()) {
        spec.extend(extra.clone());
    }
    serde_json::from_value(serde_json::json!({
        "apiVersion": "tollgate.dev/v1alpha1", "kind": "Checkpoint",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }))
    .expect("a valid Checkpoint")
}

/// The Project `demo` in `namespace`: the catalog's demo module writing its marker files
/// into `markers`, with `inputs` merged into its inputs and `approval` (unless null) as its
/// `spec.approval`.
pub fn demo_project(
    namespace: &str,
    markers: &Path,
    inputs: serde_json::Value,
    approval: serde_json::Value,
) -> Project {
    let mut all_inputs = serde_json::json!({"greeting": "hello", "replicas": 1, "marker_dir": markers.to_string_lossy()});
    for (k, v) in inputs.as_object().into_iter().flatten() {
        all_inputs[k] = v.clone();
    }
    let mut spec = serde_json::json!({"environment": "dev", "components": [{"name": "app", "module": "demo", "inputs": all_inputs}], "budget": {"monthlyLimit": "10"}});
    if !approval.is_null() {
        spec["approval"] = approval;
    }
    serde_json::from_value(serde_json::json!({"apiVersion": "tollgate.dev/v1alpha1", "kind": "Project", "metadata": {"name": "demo", "namespace": namespace}, "spec": spec}))
        .expect("a valid Project")
}

/// The Project `demo` once its status satisfies `done`; fails the test with the status and
/// `log()` (the controller's log) after 180 s.
pub async fn wait_demo(
    projects: &Api<Project>,
    what: &str,
    done: impl Fn(&tollgate::api::ProjectStatus) -> bool,
    log: impl Fn() -> String,
) -> Project {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let project = projects.get("demo").await.expect("read the demo Project");
        let status = project.status.clone().unwrap_or_default();
        if done(&status) {
            return project;
        }
        assert!(
            Instant::now() < deadline,
            "the Project is not {what}: {status:?}\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The approval settings that let every change of the demo Project apply without a person.
pub fn everything() -> serde_json::Value {
    serde_json::json!({"autoApprove": ["FirstApply", "Create", "Update", "Replace", "Delete"]})
}

/// Creates the demo Project, pre-approved (with an ApprovalPolicy for its namespace), with
/// an apply whose provisioner sleeps `apply_seconds`.
pub async fn create_preapproved(
    plane: &ControlPlane,
    projects: &Api<Project>,
    namespace: &str,
    markers: &Path,
    apply_seconds: u32,
) {
    plane.allow_in(namespace, everything()).await;
    projects
        .create(
            &PostParams::default(),
            &demo_project(
                namespace,
                markers,
                serde_json::json!({"apply_delay_seconds": apply_seconds}),
                everything(),
            ),
        )
        .await
        .expect("create the demo Project");
}

/// Whether `terraform apply` runs in the Project working directory `work`: the runner's
/// private copy of the approved plan (`.tollgate-apply-*`) exists exactly that long.
pub fn applying_in(work: &Path) -> bool {
    std::fs::read_dir(work)
        .map(|d| {
            d.filter_map(|e| e.ok()).any(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(".tollgate-apply-")
            })
        })
        .unwrap_or(false)
}

/// The demo module's marker files (`<id>.applied`) in `dir`, sorted: one per applied
/// `terraform_data.app`, removed when it is destroyed.
pub fn markers_in(dir: &Path) -> Vec<String> {
    let mut found: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".applied"))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

impl ControlPlane {
    /// An ApprovalPolicy named after `namespace` that selects only it, written as a cluster
    /// admin writes one; `spec` is merged into its spec (e.g. `{"autoApprove": [...]}`).
    /// Returns its name.
    pub async fn allow_in(&self, namespace: &str, spec: serde_json::Value) -> String {
        let mut full = serde_json::json!({
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
        });
        for (k, v) in spec.as_object().into_iter().flatten() {
            full[k] = v.clone();
        }
        let policy: ApprovalPolicy = serde_json::from_value(serde_json::json!({
            "apiVersion": "tollgate.dev/v1alpha1", "kind": "ApprovalPolicy",
            "metadata": {"name": namespace}, "spec": full
        }))
        .expect("a valid ApprovalPolicy");
        Api::<ApprovalPolicy>::all(self.client(User::Admin).await)
            .patch(
                namespace,
                &PatchParams::apply("e2e").force(),
                &Patch::Apply(&policy),
            )
            .await
            .expect("write the ApprovalPolicy");
        namespace.to_owned()
    }
}

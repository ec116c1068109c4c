//! tollgate's admission webhook, served in-process and registered with the e2e apiserver.
//!
//! [`start_webhook`] registers the webhook the way a user does, with `tollgate webhook
//! configure --url` (self-signed certificate, both configurations), and runs the real server
//! (`tollgate::admission::Webhook`) on that loopback port with the certificate it wrote, once
//! per test process.
//!
//! Webhook configurations are cluster-wide and other e2e tests (and other test processes)
//! share the apiserver, so each process registers its own `tollgate-e2e-<token>`
//! configurations, scoped by a namespaceSelector to namespaces labelled with its token:
//! only namespaces made by [`TestWebhook::namespace`] go through this process's webhook.
//! Configurations of processes that no longer run are deleted on start.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::sync::OnceCell;
use tollgate::admission::{Webhook, WebhookConfig};
use tollgate::api::{Checkpoint, LAST_CHANGED_BY_ANNOTATION, Project};

use crate::{ControlPlane, User, wait_for};

/// Label on namespaces whose requests go to a test process's webhook; the value is the
/// process's token.
pub const NAMESPACE_LABEL: &str = "tollgate.dev/e2e-webhook";
/// Label on the configurations this harness registers, to find stale ones.
const CONFIG_LABEL: &str = "tollgate.dev/e2e-webhook-config";
/// Username of the controller's service account in deploy/controller-rbac.yaml.
pub const CONTROLLER_SERVICE_ACCOUNT: &str = "system:serviceaccount:tollgate-system:tollgate";

/// Annotation with the PID of the process that registered a configuration.
const PID_ANNOTATION: &str = "tollgate.dev/e2e-pid";

/// How long a registration or a namespace label may take to reach the apiserver's caches.
const READY_DEADLINE: Duration = Duration::from_secs(60);

/// The webhook of this test process.
pub struct TestWebhook {
    /// Where it listens (HTTPS).
    pub addr: SocketAddr,
    /// Value of [`NAMESPACE_LABEL`] that routes a namespace to it.
    pub token: String,
    /// `metadata.name` of its two configurations.
    pub name: String,
}

static WEBHOOK: OnceCell<TestWebhook> = OnceCell::const_new();

/// The webhook of this test process, started and registered on first use, and ready:
/// both configurations are in effect when this returns.
pub async fn start_webhook() -> &'static TestWebhook {
    WEBHOOK
        .get_or_init(|| async { TestWebhook::start().await })
        .await
}

impl TestWebhook {
    async fn start() -> TestWebhook {
        let plane = ControlPlane::get().await;
        let token = new_token();
        let name = format!("tollgate-e2e-{token}");
        let dir = std::env::temp_dir().join(format!("tollgate-e2e-webhook-{token}"));
        std::fs::create_dir_all(&dir).expect("webhook temp dir");
        let admin = plane.client(User::Admin).await;
        let mutating_api: Api<MutatingWebhookConfiguration> = Api::all(admin.clone());
        let validating_api: Api<ValidatingWebhookConfiguration> = Api::all(admin);
        delete_stale(&mutating_api).await;
        delete_stale(&validating_api).await;
        // Registered as a user registers it: `tollgate webhook configure` issues the
        // certificate, writes it here and registers both configurations, scoped to the
        // namespaces labelled with this process's token.
        let port = crate::controller::free_port();
        let configured = tokio::process::Command::new(crate::controller::tollgate_binary())
            .args(["webhook", "configure", "--kubeconfig"])
            .arg(plane.kubeconfig(User::Admin))
            .args(["--namespace", "tollgate-system", "--name", &name])
            .args(["--secret", &format!("{name}-tls")])
            .args(["--url", &format!("https://127.0.0.1:{port}")])
            .args([
                "--namespace-selector",
                &format!("{NAMESPACE_LABEL}={token}"),
            ])
            .arg("--write-files")
            .arg(&dir)
            .status()
            .await
            .expect("run tollgate webhook configure");
        assert!(configured.success(), "tollgate webhook configure failed");
        // Mark the configurations as this process's, so a later run deletes them once this
        // process is gone.
        let mark = json!({"metadata": {
            "labels": {CONFIG_LABEL: "true"},
            "annotations": {PID_ANNOTATION: std::process::id().to_string()}
        }});
        mutating_api
            .patch(&name, &PatchParams::default(), &Patch::Merge(&mark))
            .await
            .expect("label the MutatingWebhookConfiguration");
        validating_api
            .patch(&name, &PatchParams::default(), &Patch::Merge(&mark))
            .await
            .expect("label the ValidatingWebhookConfiguration");
        let listen: SocketAddr = format!("127.0.0.1:{port}")
            .parse()
            .expect("loopback address");
        let addr =
            serve_in_background(plane, listen, dir.join("tls.crt"), dir.join("tls.key")).await;
        let webhook = TestWebhook { addr, token, name };
        webhook.wait_until_effective(plane).await;
        eprintln!("e2e: admission webhook {} at https://{addr}", webhook.name);
        webhook
    }

    /// Waits until the apiserver calls both webhooks: the mutating one stamps a dry-run
    /// Project, the validating one refuses a dry-run decision by a user without `approve`.
    async fn wait_until_effective(&self, plane: &ControlPlane) {
        let ns = self.namespace(plane, "webhook-probe").await;
        let admin = plane.client(User::Admin).await;
        let checkpoints: Api<Checkpoint> = Api::namespaced(admin, &ns);
        checkpoints
            .create(&PostParams::default(), &probe_checkpoint(&ns))
            .await
            .expect("create the probe checkpoint");
        grant_status_patch(plane, &ns, User::Carol).await;
        let carol: Api<Checkpoint> = Api::namespaced(plane.client(User::Carol).await, &ns);
        let dry_run = PatchParams {
            dry_run: true,
            ..Default::default()
        };
        let decision = json!({"status": {"decision": "Approved", "reason": "probe"}});
        wait_for(
            "the ValidatingWebhookConfiguration to take effect",
            READY_DEADLINE,
            || async {
                match carol
                    .patch_status("probe", &dry_run, &Patch::Merge(&decision))
                    .await
                {
                    Err(kube::Error::Api(status)) => status
                        .message
                        .contains("checkpoint-status.validate.tollgate.dev"),
                    _ => false,
                }
            },
        )
        .await;
        plane.delete_namespace(&ns).await;
    }

    /// A fresh namespace (as [`ControlPlane::namespace`]: carol is an editor there) whose
    /// requests go through this webhook; it is in effect there when this returns.
    pub async fn namespace(&self, plane: &ControlPlane, prefix: &str) -> String {
        let ns = plane.namespace(prefix).await;
        self.route(plane, &ns).await;
        ns
    }

    /// Sends the requests of an existing namespace through this webhook; in effect when this
    /// returns.
    pub async fn route(&self, plane: &ControlPlane, ns: &str) {
        let ns = ns.to_owned();
        let admin = plane.client(User::Admin).await;
        Api::<Namespace>::all(admin.clone())
            .patch(
                &ns,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": {NAMESPACE_LABEL: self.token}}})),
            )
            .await
            .expect("label the namespace for the webhook");
        // The apiserver matches namespaces from its informer cache: wait until the label
        // is seen there, i.e. until a dry-run Project is stamped by the mutating webhook.
        let projects: Api<Project> = Api::namespaced(admin, &ns);
        let probe = probe_project(&ns);
        let dry_run = PostParams {
            dry_run: true,
            ..Default::default()
        };
        let admin_name = plane.username(User::Admin);
        wait_for(
            &format!("the webhook to take effect in namespace {ns}"),
            READY_DEADLINE,
            || async {
                projects
                    .create(&dry_run, &probe)
                    .await
                    .ok()
                    .and_then(|p| p.metadata.annotations)
                    .and_then(|a| a.get(LAST_CHANGED_BY_ANNOTATION).cloned())
                    == Some(admin_name.clone())
            },
        )
        .await;
    }
}

fn new_token() -> String {
    static SEQUENCE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let n = SEQUENCE.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    format!("{}-{n}-{nanos:x}", std::process::id())
}

/// Gives `user` `get`/`patch`/`update` on `checkpoints/status` in `namespace` (but not the
/// verb `approve`), and waits until RBAC says so.
pub async fn grant_status_patch(plane: &ControlPlane, namespace: &str, user: User) {
    let admin = plane.client(User::Admin).await;
    let name = format!("checkpoint-status-writer-{}", plane.username(user));
    let role = Role {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(namespace.to_owned()),
            ..Default::default()
        },
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec!["tollgate.dev".into()]),
            resources: Some(vec!["checkpoints/status".into()]),
            verbs: vec!["get".into(), "patch".into(), "update".into()],
            ..Default::default()
        }]),
    };
    Api::<Role>::namespaced(admin.clone(), namespace)
        .create(&PostParams::default(), &role)
        .await
        .expect("create the status-writer Role");
    let binding = RoleBinding {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(namespace.to_owned()),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "Role".into(),
            name,
        },
        subjects: Some(vec![Subject {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "User".into(),
            name: plane.username(user),
            namespace: None,
        }]),
    };
    Api::<RoleBinding>::namespaced(admin, namespace)
        .create(&PostParams::default(), &binding)
        .await
        .expect("bind the status-writer Role");
    let reviews: Api<SelfSubjectAccessReview> = Api::all(plane.client(user).await);
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                group: Some("tollgate.dev".into()),
                resource: Some("checkpoints".into()),
                subresource: Some("status".into()),
                verb: Some("patch".into()),
                namespace: Some(namespace.into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    wait_for(
        "RBAC to allow patching checkpoints/status",
        READY_DEADLINE,
        || async {
            reviews
                .create(&PostParams::default(), &review)
                .await
                .ok()
                .and_then(|r| r.status)
                .is_some_and(|s| s.allowed)
        },
    )
    .await;
}

/// Runs the webhook server on its own runtime and thread: each `#[tokio::test]` has a
/// runtime of its own that ends with the test, and the server must outlive them all.
async fn serve_in_background(
    plane: &'static ControlPlane,
    listen: SocketAddr,
    cert: PathBuf,
    key: PathBuf,
) -> SocketAddr {
    let (bound_tx, bound_rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("tollgate-e2e-webhook".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("webhook runtime");
            runtime.block_on(async move {
                let client = plane.client(User::Admin).await;
                let config = WebhookConfig::new(
                    listen,
                    cert,
                    key,
                    // The controller runs as admin in most tests, and as the service account
                    // of deploy/controller-rbac.yaml in the least-privilege test.
                    vec![
                        plane.username(User::Admin),
                        CONTROLLER_SERVICE_ACCOUNT.to_owned(),
                    ],
                );
                // The same key the controllers of the tests load (their default Secret).
                let seal_key = tollgate::admission::seal_key::load_or_create(
                    &client,
                    tollgate::admission::seal_key::DEFAULT_SEAL_KEY_SECRET,
                )
                .await
                .expect("load the decision seal key");
                let webhook = Webhook::bind(config, client, std::sync::Arc::new(seal_key))
                    .await
                    .expect("bind the webhook");
                let addr = webhook.local_addr().expect("webhook address");
                let _ = bound_tx.send(addr);
                webhook.run(std::future::pending()).await;
            });
        })
        .expect("start the webhook thread");
    bound_rx
        .await
        .expect("the webhook thread reports its address")
}

/// Deletes configurations registered by test processes that no longer run.
async fn delete_stale<K>(api: &Api<K>)
where
    K: kube::Resource + Clone + std::fmt::Debug + k8s_openapi::serde::de::DeserializeOwned,
{
    let Ok(list) = api
        .list(&ListParams::default().labels(&format!("{CONFIG_LABEL}=true")))
        .await
    else {
        return;
    };
    for config in list {
        let meta = config.meta();
        let alive = meta
            .annotations
            .as_ref()
            .and_then(|a| a.get(PID_ANNOTATION))
            .is_some_and(|pid| Path::new("/proc").join(pid).exists());
        if let (false, Some(name)) = (alive, meta.name.as_deref()) {
            let _ = api.delete(name, &DeleteParams::default()).await;
        }
    }
}

fn probe_project(namespace: &str) -> Project {
    serde_json::from_value(json!({
        "apiVersion": "tollgate.dev/v1alpha1", "kind": "Project",
        "metadata": {"name": "webhook-probe", "namespace": namespace},
        "spec": {"environment": "dev", "components": [{"name": "app", "module": "demo", "inputs": {}}]}
    }))
    .expect("probe Project")
}

fn probe_checkpoint(namespace: &str) -> Checkpoint {
    serde_json::from_value(json!({
        "apiVersion": "tollgate.dev/v1alpha1", "kind": "Checkpoint",
        "metadata": {"name": "probe", "namespace": namespace},
        "spec": {"type": "PlanApproval", "projectRef": {"name": "webhook-probe"},
                 "summary": {"text": "probe", "add": 0, "change": 0, "destroy": 0},
                 "requestedAt": "2026-11-25T10:00:00Z"}
    }))
    .expect("probe Checkpoint")
}

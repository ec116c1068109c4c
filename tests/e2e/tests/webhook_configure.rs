//! `tollgate webhook configure` against the real apiserver: a second run changes nothing,
//! `--rotate` issues a new certificate the running controller picks up without a restart,
//! and the controller's /readyz follows the registration.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tollgate::api::{LAST_CHANGED_BY_ANNOTATION, Project};
use tollgate_e2e::controller::{free_port, tollgate_binary};
use tollgate_e2e::{ControlPlane, User, repo_root, wait_for};

const DEADLINE: Duration = Duration::from_secs(90);
const SELECTOR_LABEL: &str = "tollgate.dev/e2e-configure";

fn configure(
    plane: &ControlPlane,
    ns: &str,
    name: &str,
    port: u16,
    dir: &Path,
    extra: &[&str],
) -> String {
    let out = std::process::Command::new(tollgate_binary())
        .args(["webhook", "configure", "--kubeconfig"])
        .arg(plane.kubeconfig(User::Admin))
        .args(["--namespace", ns, "--name", name])
        .args(["--url", &format!("https://127.0.0.1:{port}")])
        .args(["--namespace-selector", &format!("{SELECTOR_LABEL}={ns}")])
        .arg("--write-files")
        .arg(dir)
        .args(extra)
        .output()
        .expect("run tollgate webhook configure");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "webhook configure failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

async fn versions(plane: &ControlPlane, ns: &str, name: &str) -> [String; 3] {
    let admin = plane.client(User::Admin).await;
    let m = Api::<MutatingWebhookConfiguration>::all(admin.clone())
        .get(name)
        .await
        .unwrap();
    let v = Api::<ValidatingWebhookConfiguration>::all(admin.clone())
        .get(name)
        .await
        .unwrap();
    let s = Api::<Secret>::namespaced(admin, ns)
        .get("tollgate-webhook-tls")
        .await
        .unwrap();
    [
        m.metadata.resource_version.unwrap(),
        v.metadata.resource_version.unwrap(),
        s.metadata.resource_version.unwrap(),
    ]
}

/// Status code and body of a plain HTTP GET on loopback.
async fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    let code = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    Some((code, body))
}

#[tokio::test]
async fn configure_is_idempotent_rotates_and_gates_readiness() {
    let plane = ControlPlane::get().await;
    let ns = plane.namespace("wh-configure").await;
    let name = format!("tollgate-e2e-configure-{ns}");
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("tls");
    let port = free_port();

    let first = configure(plane, &ns, &name, port, &files, &[]);
    assert!(
        first.contains("certificate: issued (no certificate yet) for 127.0.0.1"),
        "{first}"
    );
    assert_eq!(first.matches(": created").count(), 3, "{first}");
    let before = versions(plane, &ns, &name).await;
    let cert_before = std::fs::read(files.join("tls.crt")).unwrap();
    let mtime = std::fs::metadata(files.join("tls.crt"))
        .unwrap()
        .modified()
        .unwrap();

    let second = configure(plane, &ns, &name, port, &files, &[]);
    assert!(second.contains("certificate: kept"), "{second}");
    assert_eq!(second.matches(": unchanged").count(), 3, "{second}");
    assert!(!second.contains("wrote "), "{second}");
    assert_eq!(
        versions(plane, &ns, &name).await,
        before,
        "a second run changed an object"
    );
    assert_eq!(
        std::fs::metadata(files.join("tls.crt"))
            .unwrap()
            .modified()
            .unwrap(),
        mtime
    );

    // A controller serving the written files, registered by name: ready, and the apiserver
    // reaches it through the configurations `configure` wrote.
    let metrics = free_port();
    let log = dir.path().join("controller.log");
    let mut controller = tokio::process::Command::new(tollgate_binary())
        .arg("--catalog")
        .arg(repo_root().join("modules"))
        .arg("controller")
        .arg("--kubeconfig")
        .arg(plane.kubeconfig(User::Admin))
        .args(["--namespace", &ns])
        .arg("--work-dir")
        .arg(dir.path().join("work"))
        .args(["--metrics-addr", &format!("127.0.0.1:{metrics}")])
        .arg("--webhook-cert")
        .arg(files.join("tls.crt"))
        .arg("--webhook-key")
        .arg(files.join("tls.key"))
        .args(["--webhook-listen", &format!("127.0.0.1:{port}")])
        .args(["--webhook-configuration", &name])
        .args(["--controller-user", &plane.username(User::Admin)])
        .env("TOLLGATE_LOG", "info,kube=warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_for(
        "the controller ready with its webhook registered",
        DEADLINE,
        || async {
            get(metrics, "/readyz")
                .await
                .is_some_and(|(code, _)| code == 200)
        },
    )
    .await;

    let admin = plane.client(User::Admin).await;
    Api::<Namespace>::all(admin.clone())
        .patch(
            &ns,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {SELECTOR_LABEL: ns}}})),
        )
        .await
        .unwrap();
    let stamped_by_the_webhook = || async {
        let projects: Api<Project> = Api::namespaced(plane.client(User::Carol).await, &ns);
        let probe: Project = serde_json::from_value(json!({
            "apiVersion": "tollgate.dev/v1alpha1", "kind": "Project",
            "metadata": {"name": "probe", "namespace": ns},
            "spec": {"environment": "dev", "components": [{"name": "a", "module": "demo", "inputs": {}}]}
        }))
        .unwrap();
        let dry_run = PostParams {
            dry_run: true,
            ..Default::default()
        };
        projects
            .create(&dry_run, &probe)
            .await
            .ok()
            .and_then(|p| p.metadata.annotations)
            .and_then(|a| a.get(LAST_CHANGED_BY_ANNOTATION).cloned())
            == Some("carol".to_owned())
    };
    wait_for(
        "the apiserver calling the configured webhook",
        DEADLINE,
        stamped_by_the_webhook,
    )
    .await;

    // Rotation: a new CA and certificate; the bundle keeps the previous CA, the controller
    // picks the new files up, the apiserver still reaches it, and it stays ready.
    let rotated = configure(plane, &ns, &name, port, &files, &["--rotate"]);
    assert!(
        rotated.contains("certificate: issued (--rotate)"),
        "{rotated}"
    );
    assert_eq!(rotated.matches(": updated").count(), 3, "{rotated}");
    assert_ne!(std::fs::read(files.join("tls.crt")).unwrap(), cert_before);
    let validating = Api::<ValidatingWebhookConfiguration>::all(admin.clone());
    let bundle = validating.get(&name).await.unwrap().webhooks.unwrap()[0]
        .client_config
        .ca_bundle
        .clone()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&bundle.0)
            .matches("BEGIN CERTIFICATE")
            .count(),
        2,
        "the new CA and the previous one"
    );
    wait_for(
        "the webhook answering after rotation",
        DEADLINE,
        stamped_by_the_webhook,
    )
    .await;
    assert_eq!(
        get(metrics, "/readyz").await.map(|r| r.0),
        Some(200),
        "{}",
        log_text()
    );

    // Without its configurations the controller is not ready, and says why.
    validating
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
    wait_for(
        "/readyz to fail without the configuration",
        DEADLINE,
        || async {
            get(metrics, "/readyz").await.is_some_and(|(code, body)| {
                code == 503
                    && body.contains(&format!("ValidatingWebhookConfiguration {name} is missing"))
            })
        },
    )
    .await;
    assert!(
        log_text().contains(
            "not ready: the admission webhook registration does not match this controller"
        ),
        "{}",
        log_text()
    );
    // Configuring again restores it.
    let again = configure(plane, &ns, &name, port, &files, &[]);
    assert!(again.contains("certificate: kept"), "{again}");
    wait_for("/readyz back after configure", DEADLINE, || async {
        get(metrics, "/readyz")
            .await
            .is_some_and(|(code, _)| code == 200)
    })
    .await;

    controller.kill().await.unwrap();
    Api::<MutatingWebhookConfiguration>::all(admin.clone())
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
    validating
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
    plane.delete_namespace(&ns).await;
}

//! Drift detection on a real cluster with real Terraform: a file managed by the test-only
//! provider (`tgtest_file`, tests/tools/test-provider) is edited by hand after tollgate
//! applied it. The scheduled refresh-only plan finds it, `Drifted` lists what moved with
//! the sensitive value masked, and then: with `Checkpoint` a PlanApproval opens whose first
//! reason is the drift, nothing is restored until a person approves, and the approval puts
//! the declared content back; with `Notify` a signed webhook on loopback hears of each
//! distinct drift once, and nothing is changed. (The test provider is not priced, so the
//! gate asks a person for every plan here; that a restore is never pre-approved where a
//! policy would pre-approve the change is a unit test of `drift::restore_decision`.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Event, Secret};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tollgate::api::{Checkpoint, CheckpointType, Project, ProjectPhase};
use tollgate_e2e::controller::ControllerProcess;
use tollgate_e2e::receiver::Receiver;
use tollgate_e2e::webhook::start_webhook;
use tollgate_e2e::{ControlPlane, User, repo_root, wait_for};

const DEADLINE: Duration = Duration::from_secs(180);
/// The sensitive input: declared content of `<path>.secret`.
const SECRET: &str = "tg-drift-secret-41c9e0";
/// What someone writes into the secret file by hand: the state's new sensitive value.
const ROTATED: &str = "tg-drift-rotated-8d2f17";
const SIGNING_KEY: &str = "drift-hook-key-5e0a2b";

/// The CLI config that installs the test-only provider; the controller's Terraform needs it.
fn provider_config() -> String {
    std::env::var("TOLLGATE_TEST_PROVIDER_CONFIG")
        .ok()
        .filter(|p| !p.is_empty())
        .expect("TOLLGATE_TEST_PROVIDER_CONFIG: the path `bash tests/tools/install-test-provider.sh` prints")
}

/// A controller using the e2e catalog (tests/e2e/testdata/catalog: the `tgfile` module).
async fn controller(plane: &ControlPlane, ns: &str, work: &Path) -> ControllerProcess {
    let catalog = repo_root().join("tests/e2e/testdata/catalog");
    ControllerProcess::start_with_env(
        plane,
        ns,
        work,
        vec!["--catalog".into(), catalog.to_string_lossy().into_owned()],
        vec![("TF_CLI_CONFIG_FILE".into(), provider_config())],
    )
    .await
}

fn project(ns: &str, file: &Path, action: &str) -> Project {
    serde_json::from_value(json!({
        "apiVersion": "tollgate.dev/v1alpha1", "kind": "Project",
        "metadata": {"name": "files", "namespace": ns},
        "spec": {
            "environment": "dev",
            "components": [{"name": "app", "module": "tgfile", "inputs": {
                "path": file.to_str().unwrap(), "content": "declared", "secret": SECRET}}],
            "driftDetection": {"interval": "10s", "action": action}
        }
    }))
    .unwrap()
}

/// A TO approves the Project's first plan (the test provider is not priced: the gate asks
/// a person), and it is applied.
async fn approve_first_plan(
    plane: &ControlPlane,
    ns: &str,
    projects: &Api<Project>,
    controller: &ControllerProcess,
) {
    let waiting = project_where(projects, controller, "the first checkpoint", |p| {
        phase(p) == Some(ProjectPhase::AwaitingApproval)
    })
    .await;
    approve(plane, ns, &checkpoint_name(&waiting), "first apply").await;
    project_where(projects, controller, "the first apply", applied).await;
}

fn checkpoint_name(p: &Project) -> String {
    p.status
        .as_ref()
        .and_then(|s| s.checkpoint_ref.as_ref())
        .map(|r| r.name.clone())
        .expect("a checkpoint in status.checkpointRef")
}

/// Alice (a TO with the verb `approve`) approves checkpoint `name`.
async fn approve(plane: &ControlPlane, ns: &str, name: &str, reason: &str) {
    Api::<Checkpoint>::namespaced(plane.client(User::Alice).await, ns)
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"decision": "Approved", "reason": reason}})),
        )
        .await
        .unwrap();
}

/// Polls the Project until `condition` holds.
async fn project_where(
    projects: &Api<Project>,
    controller: &ControllerProcess,
    what: &str,
    condition: impl Fn(&Project) -> bool,
) -> Project {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let p = projects.get("files").await.unwrap();
        if condition(&p) {
            return p;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; status: {}\ncontroller log:\n{}",
            serde_json::to_string_pretty(&p.status).unwrap(),
            controller.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn count(checkpoints: &Api<Checkpoint>) -> usize {
    checkpoints
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .len()
}

fn phase(p: &Project) -> Option<ProjectPhase> {
    p.status.as_ref().and_then(|s| s.phase)
}

fn drifted(p: &Project) -> Option<(String, String, String)> {
    p.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Drifted")
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

fn applied(p: &Project) -> bool {
    phase(p) == Some(ProjectPhase::Ready)
        && p.status.as_ref().is_some_and(|s| s.last_applied.is_some())
}

/// Everything tollgate wrote about the Project in the namespace: its status, checkpoints
/// (and their review ConfigMaps), Events. (The spec holds the literal sensitive input.)
async fn everything_visible(admin: &kube::Client, ns: &str) -> String {
    let lp = ListParams::default();
    let projects = Api::<Project>::namespaced(admin.clone(), ns)
        .list(&lp)
        .await
        .unwrap();
    let checkpoints = Api::<Checkpoint>::namespaced(admin.clone(), ns)
        .list(&lp)
        .await
        .unwrap();
    let events = Api::<Event>::namespaced(admin.clone(), ns)
        .list(&lp)
        .await
        .unwrap();
    let config_maps = Api::<ConfigMap>::namespaced(admin.clone(), ns)
        .list(&lp)
        .await
        .unwrap();
    let statuses: Vec<_> = projects.items.iter().map(|p| &p.status).collect();
    serde_json::to_string(&(
        &statuses,
        &checkpoints.items,
        &events.items,
        &config_maps.items,
    ))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn drift_made_by_hand_is_restored_only_through_an_approved_checkpoint() {
    let plane = ControlPlane::get().await;
    let ns = start_webhook().await.namespace(plane, "drift").await;
    let admin = plane.client(User::Admin).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.txt");
    let secret_file = dir.path().join("config.txt.secret");
    let controller = controller(plane, &ns, dir.path()).await;
    let projects: Api<Project> = Api::namespaced(admin.clone(), &ns);
    let checkpoints: Api<Checkpoint> = Api::namespaced(admin.clone(), &ns);
    projects
        .create(&PostParams::default(), &project(&ns, &file, "Checkpoint"))
        .await
        .unwrap();
    approve_first_plan(plane, &ns, &projects, &controller).await;
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "declared");
    // A clean check first: Drifted=False, and a next check is scheduled.
    let clean = project_where(&projects, &controller, "a clean check", |p| {
        drifted(p).is_some_and(|(status, ..)| status == "False")
    })
    .await;
    let drift = clean.status.as_ref().unwrap().drift.clone().unwrap();
    assert!(drift.next_check_at.unwrap().0 > drift.checked_at.unwrap().0);
    assert_eq!(count(&checkpoints).await, 1, "only the first apply's");

    // Someone edits both files by hand.
    std::fs::write(&file, "edited by hand").unwrap();
    std::fs::write(&secret_file, ROTATED).unwrap();
    let found = project_where(&projects, &controller, "Drifted=True", |p| {
        drifted(p).is_some_and(|(status, ..)| status == "True")
    })
    .await;
    let (_, reason, message) = drifted(&found).unwrap();
    assert_eq!(reason, "DriftDetected");
    assert!(
        message.contains("module.app.tgtest_file.config (update: content)")
            && message.contains("module.app.tgtest_file.secret (update: content)"),
        "{message}"
    );
    let resources = &found
        .status
        .as_ref()
        .unwrap()
        .drift
        .as_ref()
        .unwrap()
        .resources;
    let config = resources
        .iter()
        .find(|r| r.address == "module.app.tgtest_file.config")
        .unwrap();
    assert_eq!(
        config.attributes,
        [r#"content: "declared" → "edited by hand""#]
    );

    // A PlanApproval opens, the policy's pre-approval notwithstanding; nothing is
    // restored yet.
    let waiting = project_where(&projects, &controller, "AwaitingApproval", |p| {
        phase(p) == Some(ProjectPhase::AwaitingApproval)
    })
    .await;
    let name = checkpoint_name(&waiting);
    let cp = checkpoints.get(&name).await.unwrap();
    assert_eq!(cp.spec.checkpoint_type, CheckpointType::PlanApproval);
    assert!(
        cp.spec.reasons[0].starts_with("restores the declared state after drift"),
        "{:?}",
        cp.spec.reasons
    );
    assert_eq!(cp.spec.summary.change, 2, "{:?}", cp.spec.summary);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "edited by hand");

    // Neither the declared secret nor the hand-written one shows anywhere.
    let visible = everything_visible(&admin, &ns).await;
    for value in [SECRET, ROTATED] {
        assert!(!visible.contains(value), "{value} is visible: {visible}");
        assert!(
            !controller.log().contains(value),
            "{value} is in the controller's log"
        );
    }
    assert!(visible.contains("(sensitive)"));

    // A TO approves: the declared state is back, and Drifted says so.
    approve(plane, &ns, &name, "put it back").await;
    let restored = project_where(&projects, &controller, "the restore applied", |p| {
        applied(p) && drifted(p).is_some_and(|(status, ..)| status == "False")
    })
    .await;
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "declared");
    assert_eq!(std::fs::read_to_string(&secret_file).unwrap(), SECRET);
    let history = &restored.status.as_ref().unwrap().history;
    assert_eq!(history[0].outcome, "Applied");
    assert_eq!(
        history[0].decided_by.as_deref(),
        Some(plane.username(User::Alice).as_str())
    );
    // The next check confirms it, and opens nothing.
    let before = restored
        .status
        .as_ref()
        .unwrap()
        .drift
        .as_ref()
        .and_then(|d| d.checked_at.clone())
        .unwrap()
        .0;
    project_where(
        &projects,
        &controller,
        "a clean check after the restore",
        |p| {
            let s = p.status.as_ref().unwrap();
            s.drift
                .as_ref()
                .and_then(|d| d.checked_at.as_ref())
                .is_some_and(|t| t.0 > before)
                && drifted(p)
                    .is_some_and(|(status, reason, _)| status == "False" && reason == "NoDrift")
        },
    )
    .await;
    assert_eq!(
        count(&checkpoints).await,
        2,
        "the first apply's and the restore's"
    );
    assert!(
        controller
            .metric("tollgate_drift_checks_total{outcome=\"drifted\"}")
            .await
            >= 1.0
    );
    assert!(
        controller
            .metric("tollgate_drift_checks_total{outcome=\"clean\"}")
            .await
            >= 2.0
    );
    assert_eq!(
        controller.metric("tollgate_drift_restores_total").await,
        1.0
    );
    plane.delete_namespace(&ns).await;
}

/// The namespace's routes: one signed webhook that hears only `Drifted`.
async fn route_drift_to(admin: &kube::Client, ns: &str, receiver: &Receiver) {
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "tollgate-notify", "namespace": ns},
        "stringData": {"hook-url": format!("http://{}/drift", receiver.addr), "hook-key": SIGNING_KEY}
    }))
    .unwrap();
    Api::<Secret>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let cm: ConfigMap = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "tollgate-notifications", "namespace": ns},
        "data": {"config.yaml": "channels:\n  - name: ops-hook\n    events: [Drifted]\n    webhook:\n      urlSecretRef: {name: tollgate-notify, key: hook-url}\nwebhookSigningKeySecretRef: {name: tollgate-notify, key: hook-key}\n"}
    }))
    .unwrap();
    Api::<ConfigMap>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn notify_tells_a_webhook_once_per_distinct_drift_and_changes_nothing() {
    let plane = ControlPlane::get().await;
    let ns = start_webhook().await.namespace(plane, "drift-notify").await;
    let admin = plane.client(User::Admin).await;
    let receiver = Receiver::start(SIGNING_KEY).await;
    route_drift_to(&admin, &ns, &receiver).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notify.txt");
    let controller = controller(plane, &ns, dir.path()).await;
    let projects: Api<Project> = Api::namespaced(admin.clone(), &ns);
    projects
        .create(&PostParams::default(), &project(&ns, &file, "Notify"))
        .await
        .unwrap();
    approve_first_plan(plane, &ns, &projects, &controller).await;

    std::fs::write(&file, "first edit").unwrap();
    wait_for("one Drifted delivery", DEADLINE, || async {
        receiver.counts().get("Drifted") == Some(&1)
    })
    .await;
    let delivery = receiver.deliveries()[0].clone();
    let body = &delivery.body;
    assert_eq!(body["project"]["name"], "files");
    assert_eq!(body["project"]["namespace"], ns.as_str());
    assert!(body.get("checkpoint").is_none(), "{body}");
    assert!(body.get("commands").is_none(), "{body}");
    let changes = body["changes"]["addresses"].to_string();
    assert!(
        changes.contains(
            r#"module.app.tgtest_file.config (update): content: \"declared\" → \"first edit\""#
        ),
        "{changes}"
    );
    assert!(!body.to_string().contains(SECRET));

    // The same drift, checked again, is not sent again.
    let seen = project_where(
        &projects,
        &controller,
        "the drift recorded as notified",
        |p| {
            p.status
                .as_ref()
                .and_then(|s| s.drift.as_ref())
                .is_some_and(|d| d.notified_digest.is_some() && d.notified_digest == d.digest)
        },
    )
    .await;
    let checked = seen
        .status
        .as_ref()
        .unwrap()
        .drift
        .as_ref()
        .unwrap()
        .checked_at
        .clone()
        .unwrap()
        .0;
    project_where(
        &projects,
        &controller,
        "another check of the same drift",
        |p| {
            p.status
                .as_ref()
                .and_then(|s| s.drift.as_ref())
                .and_then(|d| d.checked_at.as_ref())
                .is_some_and(|t| t.0 > checked)
        },
    )
    .await;
    assert_eq!(receiver.counts().get("Drifted"), Some(&1));

    // Another edit is another drift: sent once more.
    std::fs::write(&file, "second edit").unwrap();
    wait_for("a second Drifted delivery", DEADLINE, || async {
        receiver.counts().get("Drifted") == Some(&2)
    })
    .await;
    let ids: Vec<String> = receiver.deliveries().iter().map(|d| d.id.clone()).collect();
    assert_ne!(ids[0], ids[1]);

    // Notify changes nothing: still Ready, no checkpoint, the edit stays.
    let p = projects.get("files").await.unwrap();
    assert_eq!(phase(&p), Some(ProjectPhase::Ready));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "second edit");
    let checkpoints: Api<Checkpoint> = Api::namespaced(admin.clone(), &ns);
    assert_eq!(count(&checkpoints).await, 1, "only the first apply's");

    // Ignore stops checking and takes the condition away.
    projects
        .patch(
            "files",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"driftDetection": {"interval": "10s", "action": "Ignore"}}}),
            ),
        )
        .await
        .unwrap();
    project_where(&projects, &controller, "Drifted removed", |p| {
        drifted(p).is_none() && p.status.as_ref().is_some_and(|s| s.drift.is_none())
    })
    .await;
    plane.delete_namespace(&ns).await;
}

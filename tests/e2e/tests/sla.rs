//! A Technical Operator's deadlines on a real cluster: a checkpoint nobody decides reminds,
//! escalates and expires on the controller's timers; a signed webhook receiver and a real
//! SMTP server (aiosmtpd, tests/tools/smtp-sink.py) get exactly the expected messages, none
//! twice although the controller is killed in the middle and the deadlines pass while it
//! is down; the expired checkpoint cannot be approved and nothing is applied; the audit
//! trail of the run verifies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tollgate::api::{Checkpoint, CheckpointPhase, Project, ProjectPhase};
use tollgate_e2e::controller::ControllerProcess;
use tollgate_e2e::receiver::Receiver;
use tollgate_e2e::webhook::start_webhook;
use tollgate_e2e::{ControlPlane, User, markers_in, repo_root, wait_for};

const DEADLINE: Duration = Duration::from_secs(120);
const SIGNING_KEY: &str = "sla-hook-key-7c1d93";
const URL_TOKEN: &str = "sla-url-token-52ae";

/// A running tests/tools/smtp-sink.py; killed on drop.
struct SmtpSink {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl SmtpSink {
    fn start() -> SmtpSink {
        let python = std::env::var_os("TOLLGATE_SMTP_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(std::env::var("HOME").unwrap_or_default())
                    .join(".cache/tollgate/aiosmtpd-venv/bin/python")
            });
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(&python)
            .arg(repo_root().join("tests/tools/smtp-sink.py"))
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {} ({e}): run `bash tests/tools/install-aiosmtpd.sh` and set TOLLGATE_SMTP_PYTHON to the path it prints", python.display()));
        // The sink prints its port once it listens: reading the line is the readiness wait.
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("smtp-sink.py did not print its port: {line:?}"));
        SmtpSink { child, port, dir }
    }

    /// Subjects of the messages that arrived, in order.
    fn subjects(&self) -> Vec<String> {
        let mut files: Vec<(u32, PathBuf)> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(|e| {
                let path = e.ok()?.path();
                let n = path.file_stem()?.to_str()?.parse().ok()?;
                (path.extension()? == "json").then_some((n, path))
            })
            .collect();
        files.sort();
        files
            .iter()
            .map(|(_, path)| {
                let message: Value =
                    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
                message["data"]
                    .as_str()
                    .unwrap()
                    .lines()
                    .find_map(|l| l.strip_prefix("Subject: "))
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The namespace's notification routes: the signed webhook hears everything, email only
/// openings and expiries; escalations go to the webhook (the Project's escalation list);
/// `extra_channels` is more YAML for the `channels:` list.
async fn configure_notifications(
    admin: &kube::Client,
    ns: &str,
    receiver: &Receiver,
    smtp: &SmtpSink,
    extra_channels: &str,
) {
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "tollgate-notify", "namespace": ns},
        "stringData": {
            "hook-url": format!("http://{}/hooks/{URL_TOKEN}", receiver.addr),
            "hook-key": SIGNING_KEY,
        }
    }))
    .unwrap();
    Api::<Secret>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let config = format!(
        r#"channels:
  - name: ops-hook
    webhook:
      urlSecretRef: {{name: tollgate-notify, key: hook-url}}
  - name: on-call
    events: [Opened, Expired]
    email:
      to: [oncall@example.com]
{extra_channels}smtp:
  host: 127.0.0.1
  port: {}
  security: None
  from: tollgate@example.com
webhookSigningKeySecretRef: {{name: tollgate-notify, key: hook-key}}
"#,
        smtp.port,
    );
    let cm: ConfigMap = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "tollgate-notifications", "namespace": ns},
        "data": {"config.yaml": config}
    }))
    .unwrap();
    Api::<ConfigMap>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
}

/// A value for the demo module's `sensitive` input `api_token`.
const SECRET: &str = "tg-sla-secret-9e41b7";

fn project(ns: &str, markers: &Path, sla: Value) -> Project {
    serde_json::from_value(json!({
        "apiVersion": "tollgate.dev/v1alpha1", "kind": "Project",
        "metadata": {"name": "demo", "namespace": ns},
        "spec": {
            "environment": "dev",
            "components": [{"name": "app", "module": "demo", "inputs": {"greeting": "hello", "replicas": 1, "api_token": SECRET, "marker_dir": markers.to_str().unwrap()}}],
            "approval": {"sla": sla}
        }
    }))
    .unwrap()
}

async fn checkpoint_where(
    checkpoints: &Api<Checkpoint>,
    controller: &ControllerProcess,
    what: &str,
    condition: impl Fn(&Checkpoint) -> bool,
) -> Checkpoint {
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        let list = checkpoints.list(&Default::default()).await.unwrap();
        if let Some(hit) = list.items.iter().find(|cp| condition(cp)) {
            return hit.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}; checkpoints: {}\ncontroller log:\n{}",
            serde_json::to_string_pretty(&list.items).unwrap(),
            controller.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn phase(cp: &Checkpoint) -> Option<CheckpointPhase> {
    cp.status.as_ref().and_then(|s| s.phase)
}

fn notified(cp: &Checkpoint) -> Vec<String> {
    cp.status
        .as_ref()
        .map(|s| s.notified_events.clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_undecided_checkpoint_reminds_escalates_and_expires_once_each_across_a_restart() {
    let plane = ControlPlane::get().await;
    let ns = start_webhook().await.namespace(plane, "sla").await;
    let admin = plane.client(User::Admin).await;
    let receiver = Receiver::start(SIGNING_KEY).await;
    let smtp = SmtpSink::start();
    configure_notifications(&admin, &ns, &receiver, &smtp, "").await;
    let dir = tempfile::tempdir().unwrap();
    let defaults = dir.path().join("sla-defaults.yaml");
    std::fs::write(&defaults, "remindEvery: 6s\n").unwrap();
    let audit = dir.path().join("audit.jsonl");
    let mut controller = ControllerProcess::start_with(
        plane,
        &ns,
        dir.path(),
        vec![
            "--sla-defaults".into(),
            defaults.to_string_lossy().into_owned(),
            "--audit-file".into(),
            audit.to_string_lossy().into_owned(),
        ],
    )
    .await;
    let markers = dir.path().join("markers");
    let projects: Api<Project> = Api::namespaced(admin.clone(), &ns);
    let checkpoints: Api<Checkpoint> = Api::namespaced(admin.clone(), &ns);
    let sla = json!({"respondWithin": "8s", "escalation": {"after": "16s", "notify": ["ops-hook"]}, "expireAfter": "30s"});
    projects
        .create(&PostParams::default(), &project(&ns, &markers, sla))
        .await
        .unwrap();

    // Opened goes out and is recorded; then the controller dies without warning.
    let opened = checkpoint_where(&checkpoints, &controller, "the opening notified", |cp| {
        notified(cp).contains(&"Opened".to_owned())
    })
    .await;
    let sla = opened
        .spec
        .sla
        .clone()
        .expect("the checkpoint carries its deadlines");
    assert_eq!(sla.remind_every.as_deref(), Some("6s"));
    let escalate_at = sla.escalate_at.unwrap().0;
    let expire_at = sla.expire_at.unwrap().0;
    assert_eq!(
        expire_at
            .duration_since(to_the_second(opened.spec.requested_at.0))
            .as_secs(),
        30
    );
    controller.kill_hard().await;
    // Down while reminders and the escalation fall due.
    wait_for("the escalation deadline to pass", DEADLINE, || async {
        jiff::Timestamp::now() > escalate_at
    })
    .await;
    assert_eq!(
        receiver.counts(),
        BTreeMap::from([("Opened".to_owned(), 1)]),
        "only the opening was sent before the kill"
    );
    controller.restart().await;

    let escalated = checkpoint_where(&checkpoints, &controller, "the escalation recorded", |cp| {
        phase(cp) == Some(CheckpointPhase::Escalated)
            && notified(cp).contains(&"Escalated".to_owned())
    })
    .await;
    let condition = escalated
        .status
        .as_ref()
        .unwrap()
        .conditions
        .iter()
        .find(|c| c.type_ == "Escalated")
        .cloned()
        .expect("Escalated condition");
    assert_eq!(condition.status, "True");

    let expired = checkpoint_where(
        &checkpoints,
        &controller,
        "the checkpoint expired and notified",
        |cp| {
            phase(cp) == Some(CheckpointPhase::Expired)
                && notified(cp).contains(&"Expired".to_owned())
        },
    )
    .await;
    let name = expired.metadata.name.clone().unwrap();
    wait_for("the Project to say it expired", DEADLINE, || async {
        let p = projects.get("demo").await.unwrap();
        p.status.as_ref().and_then(|s| s.phase) == Some(ProjectPhase::Expired)
    })
    .await;
    let p = projects.get("demo").await.unwrap();
    let ready = p
        .status
        .as_ref()
        .unwrap()
        .conditions
        .iter()
        .find(|c| c.reason == "CheckpointExpired")
        .cloned()
        .unwrap_or_else(|| panic!("no CheckpointExpired condition: {:?}", p.status));
    assert!(
        ready.message.contains(&name) && ready.message.contains("tollgate.dev/replan"),
        "{}",
        ready.message
    );

    // Counted by the controller that sent them.
    let metrics = controller.metrics_text().await;
    assert!(
        metrics.contains(
            "tollgate_notification_deliveries_total{channel=\"ops-hook\",outcome=\"delivered\"}"
        ),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("tollgate_checkpoint_timers_total{timer=\"expiry\",type=\"PlanApproval\"} 1"),
        "{metrics}"
    );

    // Restarted once more after the end: nothing is sent again.
    controller.restart().await;
    wait_for(
        "the restarted controller to look at the checkpoint",
        DEADLINE,
        || async {
            controller
                .metrics_text()
                .await
                .contains("tollgate_reconciles_total")
        },
    )
    .await;

    let counts = receiver.counts();
    assert_eq!(counts.get("Opened"), Some(&1), "{counts:?}");
    assert_eq!(counts.get("Escalated"), Some(&1), "{counts:?}");
    assert_eq!(counts.get("Expired"), Some(&1), "{counts:?}");
    assert!(
        counts.get("Reminder").is_some_and(|n| *n >= 1),
        "{counts:?}"
    );
    assert_eq!(
        counts.keys().cloned().collect::<Vec<_>>(),
        ["Escalated", "Expired", "Opened", "Reminder"],
        "{counts:?}"
    );
    let deliveries = receiver.deliveries();
    let mut ids: Vec<&str> = deliveries.iter().map(|d| d.id.as_str()).collect();
    ids.sort_unstable();
    let before = ids.len();
    ids.dedup();
    assert_eq!(
        ids.len(),
        before,
        "a delivery was sent twice: {deliveries:?}"
    );
    // Reminder 1 fell due while the controller was down: it collapsed into a later one.
    let reminders: Vec<&str> = deliveries
        .iter()
        .filter(|d| d.event == "Reminder")
        .map(|d| d.id.as_str())
        .collect();
    assert!(
        !reminders.iter().any(|id| id.contains("/Reminder#1/")),
        "{reminders:?}"
    );
    let opened_body = &deliveries
        .iter()
        .find(|d| d.event == "Opened")
        .unwrap()
        .body;
    assert!(
        opened_body
            .to_string()
            .contains(&format!("kubectl patch checkpoint {name} -n {ns}")),
        "{opened_body}"
    );
    wait_for("two emails", DEADLINE, || async {
        smtp.subjects().len() >= 2
    })
    .await;
    let subjects = smtp.subjects();
    assert_eq!(subjects.len(), 2, "{subjects:?}");
    assert!(subjects[0].contains("Approval needed"), "{subjects:?}");
    assert!(subjects[1].contains("Expired"), "{subjects:?}");

    // An expired checkpoint cannot be approved, and nothing was applied.
    let as_alice: Api<Checkpoint> = Api::namespaced(plane.client(User::Alice).await, &ns);
    let refused = as_alice
        .patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"decision": "Approved", "reason": "too late"}})),
        )
        .await
        .expect_err("approving an expired checkpoint is refused");
    assert!(refused.to_string().contains("Expired"), "{refused}");
    assert!(markers_in(&markers).is_empty(), "something was applied");

    // The audit trail of the run verifies and records the escalation and the expiry.
    let trail = std::fs::read_to_string(&audit).unwrap();
    assert!(trail.contains("\"CheckpointEscalated\""), "{trail}");
    assert!(trail.contains("\"CheckpointExpired\""), "{trail}");
    let verify = Command::new(tollgate_e2e::controller::tollgate_binary())
        .args(["audit", "verify"])
        .arg(&audit)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    plane.delete_namespace(&ns).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_decision_and_its_apply_are_announced_and_a_dead_channel_blocks_nothing() {
    let plane = ControlPlane::get().await;
    let ns = start_webhook().await.namespace(plane, "notify").await;
    let admin = plane.client(User::Admin).await;
    let receiver = Receiver::start(SIGNING_KEY).await;
    let smtp = SmtpSink::start();
    // A channel nobody listens on: every delivery to it fails.
    let dead_port = tollgate_e2e::controller::free_port();
    let dead = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("dead-hook".into()),
            ..Default::default()
        },
        string_data: Some(BTreeMap::from([(
            "url".to_owned(),
            format!("http://127.0.0.1:{dead_port}/nobody"),
        )])),
        ..Default::default()
    };
    Api::<Secret>::namespaced(admin.clone(), &ns)
        .create(&PostParams::default(), &dead)
        .await
        .unwrap();
    configure_notifications(
        &admin,
        &ns,
        &receiver,
        &smtp,
        "  - name: dead-hook\n    events: [Opened]\n    webhook:\n      urlSecretRef: {name: dead-hook, key: url}\n",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let controller = ControllerProcess::start(plane, &ns, dir.path()).await;
    let markers = dir.path().join("markers");
    let projects: Api<Project> = Api::namespaced(admin.clone(), &ns);
    let checkpoints: Api<Checkpoint> = Api::namespaced(admin.clone(), &ns);
    projects
        .create(
            &PostParams::default(),
            &project(&ns, &markers, json!({"respondWithin": "1h"})),
        )
        .await
        .unwrap();
    let opened = checkpoint_where(
        &checkpoints,
        &controller,
        "the opening sent to ops-hook",
        |cp| {
            cp.status.as_ref().is_some_and(|s| {
                s.notifications
                    .iter()
                    .any(|r| r.channel == "ops-hook" && r.event == "Opened")
            })
        },
    )
    .await;
    let name = opened.metadata.name.clone().unwrap();
    // A TO reviews every attribute with their own RBAC (tollgate-approver), the sensitive
    // input masked.
    let show = Command::new(tollgate_e2e::controller::tollgate_binary())
        .args(["checkpoint", "show", &name, "-n", &ns, "--kubeconfig"])
        .arg(plane.kubeconfig(User::Alice))
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&show.stdout);
    assert!(
        show.status.success(),
        "{shown}{}",
        String::from_utf8_lossy(&show.stderr)
    );
    assert!(
        shown.contains("create   module.app.terraform_data.app")
            && shown.contains("input.greeting: \"hello\"")
            && shown.contains("input: (sensitive)")
            && shown.contains("id: (known after apply)"),
        "{shown}"
    );
    assert!(!shown.contains(SECRET), "{shown}");
    // The dead channel fails, says so on the checkpoint, and the decision goes on.
    let failing = checkpoint_where(
        &checkpoints,
        &controller,
        "the dead channel reported",
        |cp| {
            cp.status.as_ref().is_some_and(|s| {
                s.conditions.iter().any(|c| {
                    c.type_ == "Notified" && c.status == "False" && c.message.contains("dead-hook")
                })
            })
        },
    )
    .await;
    let record = failing
        .status
        .as_ref()
        .unwrap()
        .notifications
        .iter()
        .find(|r| r.channel == "dead-hook")
        .cloned()
        .unwrap();
    assert!(
        !record
            .message
            .clone()
            .unwrap_or_default()
            .contains("nobody"),
        "the failure must not echo the URL: {record:?}"
    );
    let as_alice: Api<Checkpoint> = Api::namespaced(plane.client(User::Alice).await, &ns);
    as_alice
        .patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"decision": "Approved", "reason": "reviewed"}})),
        )
        .await
        .unwrap();
    let applied = checkpoint_where(
        &checkpoints,
        &controller,
        "Decided and Applied sent",
        |cp| {
            let sent = notified(cp);
            sent.contains(&"Decided".to_owned()) && sent.contains(&"Applied".to_owned())
        },
    )
    .await;
    let outcome = applied
        .status
        .as_ref()
        .unwrap()
        .apply_outcome
        .clone()
        .unwrap();
    assert!(outcome.succeeded, "{outcome:?}");
    assert!(
        !markers_in(&markers).is_empty(),
        "the approved plan was applied"
    );
    let counts = receiver.counts();
    assert_eq!(
        counts,
        BTreeMap::from([
            ("Applied".to_owned(), 1),
            ("Decided".to_owned(), 1),
            ("Opened".to_owned(), 1)
        ]),
        "{counts:?}"
    );
    let decided = &receiver
        .deliveries()
        .into_iter()
        .find(|d| d.event == "Decided")
        .unwrap()
        .body;
    let decided_text = decided.to_string();
    assert!(
        decided_text.contains("reviewed") && decided_text.contains(&plane.username(User::Alice)),
        "{decided}"
    );
    let metrics = controller.metrics_text().await;
    assert!(
        metrics.contains(
            "tollgate_notification_deliveries_total{channel=\"dead-hook\",outcome=\"failed\"}"
        ),
        "{metrics}"
    );
    plane.delete_namespace(&ns).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_to_owned_policy_sets_deadlines_and_channels_a_project_cannot_loosen_or_redirect() {
    let plane = ControlPlane::get().await;
    let ns = start_webhook().await.namespace(plane, "policy-sla").await;
    let admin = plane.client(User::Admin).await;
    let receiver = Receiver::start(SIGNING_KEY).await;
    let policy_receiver = Receiver::start(SIGNING_KEY).await;
    let smtp = SmtpSink::start();
    configure_notifications(&admin, &ns, &receiver, &smtp, "").await;
    let url_secret = |name: &str, url: String| -> Secret {
        serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
            "stringData": {"url": url}
        }))
        .unwrap()
    };
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), &ns);
    for secret in [
        url_secret(
            "policy-hook",
            format!("http://{}/policy", policy_receiver.addr),
        ),
        // The Project's attempt to redirect the TOs' channel: a port nobody listens on.
        url_secret(
            "my-hook",
            format!(
                "http://127.0.0.1:{}/mine",
                tollgate_e2e::controller::free_port()
            ),
        ),
    ] {
        secrets
            .create(&PostParams::default(), &secret)
            .await
            .unwrap();
    }
    plane
        .allow_in(
            &ns,
            json!({
                "sla": {"respondWithin": "6s", "escalation": {"after": "8s", "notify": ["policy-hook"]}},
                "notifications": [{"name": "policy-hook", "webhookSecretRef": {"name": "policy-hook"}}]
            }),
        )
        .await;
    let dir = tempfile::tempdir().unwrap();
    let controller = ControllerProcess::start(plane, &ns, dir.path()).await;
    let markers = dir.path().join("markers");
    let mut demo = project(&ns, &markers, json!({"respondWithin": "1h"}));
    demo.spec.approval.as_mut().unwrap().notifications = vec![
        serde_json::from_value(
            json!({"name": "policy-hook", "webhookSecretRef": {"name": "my-hook"}}),
        )
        .unwrap(),
    ];
    let as_carol: Api<Project> = Api::namespaced(plane.client(User::Carol).await, &ns);
    as_carol
        .create(&PostParams::default(), &demo)
        .await
        .unwrap();
    let checkpoints: Api<Checkpoint> = Api::namespaced(admin.clone(), &ns);
    let escalated = checkpoint_where(
        &checkpoints,
        &controller,
        "the policy's escalation sent",
        |cp| notified(cp).contains(&"Escalated".to_owned()),
    )
    .await;
    let sla = escalated.spec.sla.clone().unwrap();
    assert_eq!(
        sla.respond_by
            .0
            .duration_since(to_the_second(escalated.spec.requested_at.0))
            .as_secs(),
        6,
        "the policy's 6s, not the Project's 1h"
    );
    let effective = escalated.spec.effective_policy.clone().unwrap();
    assert!(
        effective
            .not_allowed
            .iter()
            .any(|n| n.contains("respondWithin 1h is longer than the 6s")),
        "{:?}",
        effective.not_allowed
    );
    // The TOs' channel got the opening and the escalation, signed; the Project's
    // same-named channel was not used.
    let counts = policy_receiver.counts();
    assert_eq!(counts.get("Opened"), Some(&1), "{counts:?}");
    assert_eq!(counts.get("Escalated"), Some(&1), "{counts:?}");
    let records = escalated.status.clone().unwrap().notifications;
    assert!(
        records
            .iter()
            .all(|r| r.outcome == Some(tollgate::api::DeliveryOutcome::Delivered)),
        "{records:?}"
    );
    // The namespace's own channel heard the opening, not the escalation (the policy's
    // escalation list names only its channel).
    let ns_counts = receiver.counts();
    assert_eq!(ns_counts.get("Opened"), Some(&1), "{ns_counts:?}");
    assert_eq!(ns_counts.get("Escalated"), None, "{ns_counts:?}");
    plane.delete_namespace(&ns).await;
}

/// A checkpoint's opening as its deadlines see it: they are kept to the second (a `Time`),
/// the opening to the microsecond.
fn to_the_second(at: jiff::Timestamp) -> jiff::Timestamp {
    jiff::Timestamp::from_second(at.as_second()).unwrap()
}

//! Notifications delivered for real: webhooks to an in-process HTTP receiver that checks
//! the signature the way docs/notifications.md tells a user to (and runs the documented
//! Python snippet), and email to a real SMTP server (aiosmtpd, tests/tools/smtp-sink.py)
//! on loopback, reading back what arrived.
//!
//! SMTP coverage: plain delivery; STARTTLS + AUTH against a server that requires both (a
//! self-signed certificate trusted through `caSecretRef`); a wrong password; `StartTls`
//! against a server without STARTTLS (must fail, never fall back to plain text). Not
//! covered: implicit TLS (`security: Tls`, port 465) and the system trust roots.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use ring::hmac;
use tollgate::api::{DeliveryOutcome, NotificationRecord};
use tollgate::notify::{
    Channel, Delivery, EventKind, Notification, Notifier, Outcome, RetryPolicy, SecretValue,
    SmtpSecurity, SmtpSettings, Target, delivery_key,
};

const URL_TOKEN: &str = "T0KEN-b8f2c91d";
const SIGNING_KEY: &[u8] = b"hook-key-5d1e0c7a";
const SMTP_PASSWORD: &str = "smtp-pw-Qx81Lm";

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Received {
    headers: hyper::HeaderMap,
    body: Bytes,
}

/// An HTTP receiver answering with the queued statuses first, then 200.
struct Receiver {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    async fn start(failures: Vec<StatusCode>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let failures = Arc::new(Mutex::new(VecDeque::from(failures)));
        let state = (received.clone(), failures);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (received, failures) = state.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let (received, failures) = (received.clone(), failures.clone());
                        async move {
                            let path = req.uri().path().to_owned();
                            let headers = req.headers().clone();
                            let body = req.into_body().collect().await?.to_bytes();
                            received.lock().unwrap().push(Received { headers, body });
                            let status = failures.lock().unwrap().pop_front();
                            let response = match status {
                                // Echo the path, as some servers do, to prove redaction.
                                Some(s) => Response::builder()
                                    .status(s)
                                    .body(Full::new(Bytes::from(format!("no such hook {path}")))),
                                None => Response::builder().body(Full::new(Bytes::from("ok"))),
                            };
                            Ok::<_, hyper::Error>(response.unwrap())
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Receiver { addr, received }
    }

    fn url(&self) -> String {
        format!("http://{}/hooks/{URL_TOKEN}", self.addr)
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

fn notifier(max_attempts: u32) -> Notifier {
    Notifier::new(RetryPolicy {
        max_attempts,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
        attempt_timeout: Duration::from_secs(5),
    })
    .unwrap()
}

fn notification(event: EventKind) -> Notification {
    let cp: tollgate::api::Checkpoint = serde_json::from_value(serde_json::json!({
        "apiVersion": "tollgate.dev/v1alpha1",
        "kind": "Checkpoint",
        "metadata": {"name": "web-plan-1", "namespace": "team-a", "uid": "uid-1"},
        "spec": {
            "type": "PlanApproval",
            "projectRef": {"name": "web"},
            "summary": {"text": "1 to add, 0 to change, 0 to destroy", "add": 1, "change": 0, "destroy": 0,
                        "changes": ["create module.app.terraform_data.this"],
                        "cost": {"before": "0", "after": "12.50", "delta": "12.50", "budget": "100"}},
            "requestedAt": "2026-03-01T09:00:00Z",
            "sla": {"respondBy": "2026-03-01T09:30:00Z"}
        }
    }))
    .unwrap();
    Notification::from_checkpoint(event, &cp, "staging", jiff::Timestamp::now())
}

fn webhook(url: String) -> Channel {
    Channel {
        name: "ops-hook".into(),
        target: Target::Webhook {
            url: SecretValue::new(url),
            signing_key: SecretValue::new(SIGNING_KEY),
        },
    }
}

/// Verifies like docs/notifications.md says: HMAC-SHA256 over timestamp "." raw body,
/// constant-time compare, timestamp within 5 minutes.
fn verify_as_documented(r: &Received) {
    let timestamp = r.headers["x-tollgate-timestamp"].to_str().unwrap();
    let age = jiff::Timestamp::now().as_second() - timestamp.parse::<i64>().unwrap();
    assert!(age.abs() <= 300, "timestamp {timestamp} is {age}s old");
    let signature = r.headers["x-tollgate-signature"].to_str().unwrap();
    let mac = hex::decode(signature.strip_prefix("sha256=").unwrap()).unwrap();
    let key = hmac::Key::new(hmac::HMAC_SHA256, SIGNING_KEY);
    let signed = [timestamp.as_bytes(), b".", &r.body].concat();
    hmac::verify(&key, &signed, &mac).expect("the signature verifies");
}

fn assert_no_secret(what: &str, text: &str) {
    for secret in [URL_TOKEN, SMTP_PASSWORD, "hook-key-5d1e0c7a"] {
        assert!(!text.contains(secret), "{what} leaks {secret}: {text}");
    }
}

fn failed_error(delivery: &Delivery) -> &str {
    match &delivery.outcome {
        Outcome::Failed { error } => error,
        Outcome::Delivered => panic!("expected a failure: {delivery:?}"),
    }
}

#[tokio::test]
async fn a_webhook_is_signed_and_verifies_with_the_documented_snippet() {
    let receiver = Receiver::start(vec![]).await;
    let n = notification(EventKind::Opened);
    let delivery = notifier(3).deliver(&webhook(receiver.url()), &n).await;
    assert_eq!(delivery.outcome, Outcome::Delivered);
    assert_eq!(delivery.attempts, 1);
    assert_eq!(delivery.key, "uid-1/Opened/ops-hook");

    let got = receiver.received();
    assert_eq!(got.len(), 1);
    verify_as_documented(&got[0]);
    assert_eq!(
        got[0].headers["x-tollgate-delivery"],
        "uid-1/Opened/ops-hook"
    );
    assert_eq!(got[0].headers["x-tollgate-event"], "Opened");
    let body: serde_json::Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(body["kind"], "NotificationEvent");
    assert_eq!(body["project"]["environment"], "staging");
    assert_eq!(body["cost"]["after"], "12.50");
    assert!(
        body["commands"]["approve"]
            .as_str()
            .unwrap()
            .starts_with("kubectl patch checkpoint web-plan-1 -n team-a --subresource=status")
    );

    // The Python snippet from the docs, run on exactly what arrived.
    let docs = std::fs::read_to_string(repo().join("docs/notifications.md")).unwrap();
    let snippet = docs
        .split("```python\n")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("body"), &got[0].body).unwrap();
    let script = format!(
        "{snippet}\nimport sys\nheaders = {{'X-Tollgate-Timestamp': sys.argv[1], 'X-Tollgate-Signature': sys.argv[2]}}\nbody = open(sys.argv[3], 'rb').read()\nsys.exit(0 if verify(sys.argv[4].encode(), headers, body) else 1)\n"
    );
    let run = |key: &str| {
        Command::new("python3")
            .arg("-c")
            .arg(&script)
            .arg(got[0].headers["x-tollgate-timestamp"].to_str().unwrap())
            .arg(got[0].headers["x-tollgate-signature"].to_str().unwrap())
            .arg(dir.path().join("body"))
            .arg(key)
            .status()
            .unwrap()
    };
    assert!(run(std::str::from_utf8(SIGNING_KEY).unwrap()).success());
    assert!(
        !run("wrong-key").success(),
        "the snippet must reject a wrong key"
    );
}

#[tokio::test]
async fn retries_with_backoff_until_the_receiver_accepts() {
    let receiver = Receiver::start(vec![
        StatusCode::SERVICE_UNAVAILABLE,
        StatusCode::TOO_MANY_REQUESTS,
    ])
    .await;
    let delivery = notifier(5)
        .deliver(
            &webhook(receiver.url()),
            &notification(EventKind::Escalated),
        )
        .await;
    assert_eq!(delivery.outcome, Outcome::Delivered);
    assert_eq!(delivery.attempts, 3);
    let got = receiver.received();
    assert_eq!(got.len(), 3);
    for r in &got {
        verify_as_documented(r);
        assert_eq!(r.headers["x-tollgate-delivery"], "uid-1/Escalated/ops-hook");
    }
}

#[tokio::test]
async fn gives_up_after_the_last_attempt_and_the_error_never_shows_the_url() {
    let receiver = Receiver::start(vec![StatusCode::BAD_GATEWAY; 10]).await;
    let delivery = notifier(3)
        .deliver(&webhook(receiver.url()), &notification(EventKind::Opened))
        .await;
    assert_eq!(delivery.attempts, 3);
    assert_eq!(receiver.received().len(), 3);
    let error = failed_error(&delivery);
    assert!(error.contains("502"), "{error}");
    assert_no_secret("the error", error);
    let record = delivery.record();
    assert_eq!(record.outcome, Some(DeliveryOutcome::Failed));
    assert_no_secret("the record", &serde_json::to_string(&record).unwrap());
}

#[tokio::test]
async fn a_client_error_is_not_retried() {
    let receiver = Receiver::start(vec![StatusCode::NOT_FOUND]).await;
    let delivery = notifier(5)
        .deliver(&webhook(receiver.url()), &notification(EventKind::Opened))
        .await;
    assert_eq!(delivery.attempts, 1);
    assert_no_secret("the error", failed_error(&delivery));
}

#[tokio::test]
async fn an_unreachable_receiver_fails_without_showing_the_url() {
    // Bound then dropped: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let delivery = notifier(2)
        .deliver(
            &webhook(format!("http://127.0.0.1:{port}/hooks/{URL_TOKEN}")),
            &notification(EventKind::Opened),
        )
        .await;
    assert_eq!(delivery.attempts, 2);
    let error = failed_error(&delivery);
    assert!(error.contains("cannot connect"), "{error}");
    assert_no_secret("the error", error);
    assert_no_secret("the log fields", &format!("{delivery:?}"));
}

#[tokio::test]
async fn slack_gets_block_kit() {
    let receiver = Receiver::start(vec![]).await;
    let channel = Channel {
        name: "team-slack".into(),
        target: Target::Slack {
            url: SecretValue::new(receiver.url()),
        },
    };
    let delivery = notifier(2)
        .deliver(&channel, &notification(EventKind::Opened))
        .await;
    assert_eq!(delivery.outcome, Outcome::Delivered);
    let body: serde_json::Value = serde_json::from_slice(&receiver.received()[0].body).unwrap();
    assert_eq!(body["blocks"][0]["type"], "header");
    assert!(body.to_string().contains("$0 → $12.50"), "{body}");
}

#[tokio::test]
async fn a_recorded_delivery_is_never_sent_again() {
    let receiver = Receiver::start(vec![]).await;
    let channels = [webhook(receiver.url())];
    let n = notification(EventKind::Opened);
    let notifier = notifier(2);
    let mut records: Vec<NotificationRecord> = Vec::new();
    for d in notifier.deliver_all(&channels, &n, &records).await {
        tollgate::notify::record_delivery(&mut records, &d);
    }
    // As after a restart: the records came back from the Checkpoint's status.
    let records: Vec<NotificationRecord> =
        serde_json::from_str(&serde_json::to_string(&records).unwrap()).unwrap();
    assert!(
        notifier
            .deliver_all(&channels, &n, &records)
            .await
            .is_empty()
    );
    assert_eq!(receiver.received().len(), 1);
    // The next reminder is a different key and is sent.
    let reminder = notification(EventKind::Reminder).with_occurrence(1);
    assert_eq!(
        delivery_key(&reminder, "ops-hook"),
        "uid-1/Reminder#1/ops-hook"
    );
    assert_eq!(
        notifier
            .deliver_all(&channels, &reminder, &records)
            .await
            .len(),
        1
    );
    assert_eq!(receiver.received().len(), 2);
}

// ---- email ----

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The venv python with aiosmtpd (tests/tools/install-aiosmtpd.sh), or skip.
fn smtp_python() -> Option<PathBuf> {
    let python = std::env::var_os("TOLLGATE_SMTP_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/tollgate/aiosmtpd-venv/bin/python")
        });
    let ok = Command::new(&python)
        .args(["-c", "import aiosmtpd"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!(
            "SKIPPED: no aiosmtpd ({}); run `bash tests/tools/install-aiosmtpd.sh` and set TOLLGATE_SMTP_PYTHON to the path it prints",
            python.display()
        );
    }
    ok.then_some(python)
}

/// A running tests/tools/smtp-sink.py; killed on drop.
struct SmtpSink {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl SmtpSink {
    fn start(python: &Path, args: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(python)
            .arg(repo().join("tests/tools/smtp-sink.py"))
            .arg("--dir")
            .arg(dir.path())
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        // The sink prints its port once it listens: reading the line is the readiness wait.
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("smtp-sink.py did not print its port: {line:?}")
        });
        SmtpSink { child, port, dir }
    }

    /// Waits (bounded) for the n-th stored message.
    async fn message(&self, n: usize) -> serde_json::Value {
        let path = self.dir.path().join(format!("{n}.json"));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !path.exists() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no message {n} arrived"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn count(&self) -> usize {
        std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "json")
            })
            .count()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn email(
    port: u16,
    security: SmtpSecurity,
    credentials: Option<&str>,
    ca: Option<Vec<u8>>,
) -> Channel {
    Channel {
        name: "on-call".into(),
        target: Target::Email {
            to: vec!["oncall@example.com".into(), "lead@example.com".into()],
            smtp: SmtpSettings {
                host: "127.0.0.1".into(),
                port,
                security,
                from: "tollgate@example.com".into(),
                credentials: credentials.map(|p| ("tollgate".to_owned(), SecretValue::new(p))),
                ca_pem: ca,
            },
        },
    }
}

#[tokio::test]
async fn email_arrives_with_text_and_html() {
    let Some(python) = smtp_python() else { return };
    let sink = SmtpSink::start(&python, &[]);
    let delivery = notifier(2)
        .deliver(
            &email(sink.port, SmtpSecurity::None, None, None),
            &notification(EventKind::Opened),
        )
        .await;
    assert_eq!(delivery.outcome, Outcome::Delivered, "{delivery:?}");
    let message = sink.message(1).await;
    assert_eq!(message["mail_from"], "tollgate@example.com");
    assert_eq!(
        message["rcpt_tos"],
        serde_json::json!(["oncall@example.com", "lead@example.com"])
    );
    let data = message["data"].as_str().unwrap();
    assert!(
        data.contains("Subject: [tollgate] Approval needed: team-a/web (staging) PlanApproval"),
        "{data}"
    );
    assert!(data.contains("Content-Type: text/plain"), "{data}");
    assert!(data.contains("Content-Type: text/html"), "{data}");
    assert!(data.contains("web-plan-1"), "{data}");
}

#[tokio::test]
async fn email_over_starttls_with_auth() {
    let Some(python) = smtp_python() else { return };
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let auth = format!("tollgate:{SMTP_PASSWORD}");
    let sink = SmtpSink::start(
        &python,
        &[
            "--auth",
            &auth,
            "--tls-cert",
            cert_path.to_str().unwrap(),
            "--tls-key",
            key_path.to_str().unwrap(),
        ],
    );
    let ca = Some(cert.cert.pem().into_bytes());
    let notifier = notifier(1);

    let delivery = notifier
        .deliver(
            &email(
                sink.port,
                SmtpSecurity::StartTls,
                Some(SMTP_PASSWORD),
                ca.clone(),
            ),
            &notification(EventKind::Decided),
        )
        .await;
    assert_eq!(delivery.outcome, Outcome::Delivered, "{delivery:?}");
    let message = sink.message(1).await;
    assert_eq!(message["tls"], true);
    assert_eq!(message["login"], "tollgate");

    // A wrong password is refused, and the error does not show either password.
    let wrong = notifier
        .deliver(
            &email(
                sink.port,
                SmtpSecurity::StartTls,
                Some("wrong-pw-123"),
                ca.clone(),
            ),
            &notification(EventKind::Decided),
        )
        .await;
    let error = failed_error(&wrong);
    assert!(
        error.contains("535"),
        "the relay's refusal is shown: {error}"
    );
    assert!(!error.contains("wrong-pw-123"), "{error}");
    assert_no_secret("the error", error);

    // Without the CA the self-signed relay is not trusted: nothing is sent in clear.
    let untrusted = notifier
        .deliver(
            &email(sink.port, SmtpSecurity::StartTls, Some(SMTP_PASSWORD), None),
            &notification(EventKind::Decided),
        )
        .await;
    failed_error(&untrusted);
    assert_eq!(sink.count(), 1);
}

#[tokio::test]
async fn starttls_is_required_never_skipped() {
    let Some(python) = smtp_python() else { return };
    let sink = SmtpSink::start(&python, &[]);
    let delivery = notifier(1)
        .deliver(
            &email(sink.port, SmtpSecurity::StartTls, Some(SMTP_PASSWORD), None),
            &notification(EventKind::Opened),
        )
        .await;
    let error = failed_error(&delivery);
    assert_no_secret("the error", error);
    assert_eq!(
        sink.count(),
        0,
        "a server without STARTTLS must get nothing"
    );
}

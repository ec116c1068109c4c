//! Unit tests of `server`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::admission::test_support::request;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/admission/testdata")
        .join(name)
}

/// Answers every review with a fixed result and counts the questions.
struct Fixed {
    answer: Result<bool, String>,
    asked: AtomicUsize,
    last: Mutex<Option<SubjectAccessReview>>,
}

impl Fixed {
    fn new(answer: Result<bool, String>) -> Arc<Self> {
        Arc::new(Self {
            answer,
            asked: AtomicUsize::new(0),
            last: Mutex::new(None),
        })
    }
}

impl AccessReviewer for Fixed {
    fn allowed(&self, review: SubjectAccessReview) -> ReviewFuture<'_> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        *self.last.lock().unwrap() = Some(review);
        let answer = self.answer.clone();
        Box::pin(async move { answer })
    }
}

/// Never answers.
struct Silent;

impl AccessReviewer for Silent {
    fn allowed(&self, _review: SubjectAccessReview) -> ReviewFuture<'_> {
        Box::pin(std::future::pending())
    }
}

fn test_key() -> Arc<SealKey> {
    Arc::new(SealKey::from_bytes(&[9u8; crate::seal::KEY_LEN]).unwrap())
}

fn handler(reviewer: Arc<dyn AccessReviewer>) -> Handler {
    Handler {
        policy: Policy::new(["admin"]),
        reviewer,
        max_body_bytes: 64 * 1024,
        review_timeout: Duration::from_millis(200),
    }
}

fn checkpoint(status: Value) -> Value {
    json!({
        "apiVersion": "tollgate.dev/v1alpha1", "kind": "Checkpoint",
        "metadata": {"name": "demo-plan-1", "namespace": "team-a", "uid": "cp-uid"},
        "spec": {"type": "PlanApproval", "projectRef": {"name": "demo"}},
        "status": status,
    })
}

fn review_body(user: &str, new_status: Value) -> Vec<u8> {
    let req = request(
        "checkpoints",
        Some("status"),
        "UPDATE",
        user,
        &["tollgate:approvers"],
        Some(checkpoint(new_status)),
        Some(checkpoint(json!({"phase": "Pending"}))),
    );
    let review = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": serde_json::to_value(&req).unwrap(),
    });
    serde_json::to_vec(&review).unwrap()
}

fn response_of(review: &AdmissionReview<DynamicObject>) -> Value {
    serde_json::to_value(review).unwrap()["response"].clone()
}

fn stamped(user: &str) -> Value {
    json!({"phase": "Pending", "decision": "Approved", "decidedBy": user, "decidedAt": serde_json::to_value(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Timestamp::now())).unwrap()})
}

#[tokio::test]
async fn validate_asks_rbac_and_denies_when_not_allowed() {
    let reviewer = Fixed::new(Ok(false));
    let h = handler(reviewer.clone());
    let review = h
        .review(
            Endpoint::ValidateCheckpointStatus,
            &review_body("carol", stamped("carol")),
        )
        .await;
    let response = response_of(&review);
    assert_eq!(response["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
    assert_eq!(response["allowed"], false);
    assert_eq!(response["status"]["code"], 403);
    let message = response["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("user carol may not approve checkpoints in team-a"),
        "{message}"
    );
    assert_eq!(reviewer.asked.load(Ordering::SeqCst), 1);
    let asked = reviewer.last.lock().unwrap().clone().unwrap();
    assert_eq!(asked.spec.user.as_deref(), Some("carol"));
    assert_eq!(
        serde_json::to_value(&review).unwrap()["apiVersion"],
        "admission.k8s.io/v1"
    );
    assert_eq!(
        serde_json::to_value(&review).unwrap()["kind"],
        "AdmissionReview"
    );
}

#[tokio::test]
async fn validate_allows_an_approver() {
    let reviewer = Fixed::new(Ok(true));
    let h = handler(reviewer.clone());
    let review = h
        .review(
            Endpoint::ValidateCheckpointStatus,
            &review_body("alice", stamped("alice")),
        )
        .await;
    assert_eq!(
        response_of(&review)["allowed"],
        true,
        "{:?}",
        response_of(&review)
    );
}

#[tokio::test]
async fn review_errors_and_timeouts_fail_closed() {
    let h = handler(Fixed::new(Err("connection refused".into())));
    let review = h
        .review(
            Endpoint::ValidateCheckpointStatus,
            &review_body("alice", stamped("alice")),
        )
        .await;
    let response = response_of(&review);
    assert_eq!(response["allowed"], false);
    assert!(
        response["status"]["message"]
            .as_str()
            .unwrap()
            .contains("SubjectAccessReview failed: connection refused")
    );

    let h = handler(Arc::new(Silent));
    let review = h
        .review(
            Endpoint::ValidateCheckpointStatus,
            &review_body("alice", stamped("alice")),
        )
        .await;
    let response = response_of(&review);
    assert_eq!(response["allowed"], false);
    assert!(
        response["status"]["message"]
            .as_str()
            .unwrap()
            .contains("no answer within"),
        "{response}"
    );
}

#[tokio::test]
async fn no_review_for_the_controller() {
    let reviewer = Fixed::new(Ok(false));
    let h = handler(reviewer.clone());
    let review = h
        .review(
            Endpoint::ValidateCheckpointStatus,
            &review_body("admin", json!({"phase": "Approved"})),
        )
        .await;
    assert_eq!(response_of(&review)["allowed"], true);
    assert_eq!(reviewer.asked.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn mutate_returns_a_json_patch() {
    let h = handler(Fixed::new(Ok(false)));
    let review = h
        .review(
            Endpoint::MutateCheckpointStatus,
            &review_body(
                "alice",
                json!({"phase": "Pending", "decision": "Approved", "decidedBy": "bob"}),
            ),
        )
        .await;
    let response = response_of(&review);
    assert_eq!(response["allowed"], true);
    assert_eq!(response["patchType"], "JSONPatch");
    // kube serialises the patch bytes as a JSON array of numbers, which the apiserver
    // decodes into its []byte as well as base64.
    let patch: Vec<u8> = serde_json::from_value(response["patch"].clone()).unwrap();
    let patch: Value = serde_json::from_slice(&patch).unwrap();
    assert_eq!(
        patch[0],
        json!({"op": "add", "path": "/status/decidedBy", "value": "alice"})
    );
    assert_eq!(patch[1]["path"], "/status/decidedAt");
}

#[tokio::test]
async fn unreadable_reviews_are_denied_with_their_uid() {
    let h = handler(Fixed::new(Ok(true)));
    let not_json = response_of(&h.review(Endpoint::MutateProject, b"{").await);
    assert_eq!(not_json["allowed"], false);
    let wrong = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": "u-1", "operation": "CREATE"}});
    let response = response_of(
        &h.review(
            Endpoint::MutateProject,
            &serde_json::to_vec(&wrong).unwrap(),
        )
        .await,
    );
    assert_eq!(response["allowed"], false);
    assert_eq!(response["uid"], "u-1");
    assert!(
        response["status"]["message"]
            .as_str()
            .unwrap()
            .contains("could not read the AdmissionReview")
    );
    let no_request = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"});
    let response = response_of(
        &h.review(
            Endpoint::MutateProject,
            &serde_json::to_vec(&no_request).unwrap(),
        )
        .await,
    );
    assert_eq!(response["allowed"], false);
}

fn http_request(method: Method, path: &str, body: Vec<u8>) -> HttpRequest<Full<Bytes>> {
    HttpRequest::builder()
        .method(method)
        .uri(path)
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

#[tokio::test]
async fn http_routes_and_limits() {
    let h = handler(Fixed::new(Ok(true)));
    let ok = h.http(http_request(Method::GET, "/healthz", vec![])).await;
    assert_eq!(ok.status(), StatusCode::OK);
    let missing = h
        .http(http_request(Method::POST, "/mutate-pods", vec![]))
        .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let get = h
        .http(http_request(Method::GET, MUTATE_PROJECT_PATH, vec![]))
        .await;
    assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED);
    // Bounded whether or not a Content-Length is declared.
    let big = h
        .http(http_request(
            Method::POST,
            MUTATE_PROJECT_PATH,
            vec![b' '; 64 * 1024 + 1],
        ))
        .await;
    assert_eq!(big.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let mut declared = http_request(Method::POST, MUTATE_PROJECT_PATH, vec![]);
    declared
        .headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from_static("999999999"));
    assert_eq!(
        h.http(declared).await.status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );
    let answered = h
        .http(http_request(
            Method::POST,
            VALIDATE_CHECKPOINT_STATUS_PATH,
            review_body("alice", stamped("alice")),
        ))
        .await;
    assert_eq!(answered.status(), StatusCode::OK);
    assert_eq!(answered.headers()[CONTENT_TYPE], "application/json");
    let body = answered.into_body().collect().await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["response"]["allowed"], true);
}

fn client_config() -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(testdata("test-only-ca.crt")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    Arc::new(
        rustls::ClientConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// One HTTPS request with `Connection: close`; the status line, body and the serving
/// certificate.
async fn https(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
) -> (String, Vec<u8>, Vec<u8>) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(client_config());
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    let served = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.write_all(body).await.unwrap();
    let mut response = Vec::new();
    let _ = tls.read_to_end(&mut response).await;
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let status = String::from_utf8_lossy(&response[..split])
        .lines()
        .next()
        .unwrap()
        .to_owned();
    (status, response[split + 4..].to_vec(), served)
}

fn config(dir: &Path) -> WebhookConfig {
    WebhookConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        dir.join("tls.crt"),
        dir.join("tls.key"),
        vec!["admin".into()],
    )
}

fn install(dir: &Path, which: &str) {
    // Written aside and renamed, as kubelet swaps mounted Secrets atomically.
    for (from, to) in [
        (format!("test-only-{which}.crt"), "tls.crt"),
        (format!("test-only-{which}.key"), "tls.key"),
    ] {
        let tmp = dir.join(format!("{to}.tmp"));
        std::fs::copy(testdata(&from), &tmp).unwrap();
        std::fs::rename(&tmp, dir.join(to)).unwrap();
    }
}

fn der(which: &str) -> Vec<u8> {
    CertificateDer::from_pem_file(testdata(&format!("test-only-{which}.crt")))
        .unwrap()
        .to_vec()
}

#[tokio::test]
async fn serves_https_and_shuts_down() {
    let dir = tempfile::tempdir().unwrap();
    install(dir.path(), "a");
    let webhook = Webhook::bind_with(config(dir.path()), Fixed::new(Ok(true)), test_key())
        .await
        .unwrap();
    let addr = webhook.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(webhook.run(async {
        let _ = stopped.await;
    }));
    let (status, body, served) = https(addr, "GET", "/healthz", b"").await;
    assert!(status.ends_with("200 OK"), "{status}");
    assert_eq!(body, b"ok");
    assert_eq!(served, der("a"));
    let (status, body, _) = https(
        addr,
        "POST",
        MUTATE_CHECKPOINT_STATUS_PATH,
        &review_body("alice", json!({"phase": "Pending", "decision": "Approved"})),
    )
    .await;
    assert!(status.ends_with("200 OK"), "{status}");
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["response"]["allowed"], true);
    // The served webhook seals decisions with its key: the patch carries the seal.
    let patch: Vec<u8> = serde_json::from_value(body["response"]["patch"].clone()).unwrap();
    let patch = String::from_utf8(patch).unwrap();
    assert!(patch.contains("/status/decisionSeal"), "{patch}");

    // Plain HTTP gets no answer: TLS is required.
    let mut plain = tokio::net::TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer).await;
    assert!(!String::from_utf8_lossy(&answer).contains("200 OK"));

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(15), server)
        .await
        .unwrap()
        .unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn picks_up_a_rotated_certificate() {
    let dir = tempfile::tempdir().unwrap();
    install(dir.path(), "a");
    let webhook = Webhook::bind_with(config(dir.path()), Fixed::new(Ok(true)), test_key())
        .await
        .unwrap();
    let addr = webhook.local_addr().unwrap();
    let server = tokio::spawn(webhook.run(std::future::pending()));
    assert_eq!(https(addr, "GET", "/healthz", b"").await.2, der("a"));
    install(dir.path(), "b");
    // Modification times may be coarse: make sure the rotation is visible as a change.
    let later = SystemTime::now() + Duration::from_secs(5);
    for f in ["tls.crt", "tls.key"] {
        std::fs::File::options()
            .write(true)
            .open(dir.path().join(f))
            .unwrap()
            .set_modified(later)
            .unwrap();
    }
    assert_eq!(https(addr, "GET", "/healthz", b"").await.2, der("b"));
    // A broken rotation keeps the last good certificate.
    std::fs::write(dir.path().join("tls.crt"), "not a certificate").unwrap();
    assert_eq!(https(addr, "GET", "/healthz", b"").await.2, der("b"));
    server.abort();
}

#[tokio::test]
async fn bind_explains_missing_or_mismatched_files() {
    let dir = tempfile::tempdir().unwrap();
    let err = Webhook::bind_with(config(dir.path()), Fixed::new(Ok(true)), test_key())
        .await
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .contains("cannot read the webhook's TLS certificate"),
        "{err}"
    );
    std::fs::write(dir.path().join("tls.crt"), "").unwrap();
    std::fs::copy(testdata("test-only-a.key"), dir.path().join("tls.key")).unwrap();
    let err = Webhook::bind_with(config(dir.path()), Fixed::new(Ok(true)), test_key())
        .await
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("holds no PEM certificate"),
        "{err}"
    );
    std::fs::copy(testdata("test-only-b.crt"), dir.path().join("tls.crt")).unwrap();
    let err = Webhook::bind_with(config(dir.path()), Fixed::new(Ok(true)), test_key())
        .await
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("do not form a usable pair"),
        "{err}"
    );
}

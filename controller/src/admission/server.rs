//! The HTTPS server the apiserver calls.
//!
//! Fail closed: a body that cannot be read, a SubjectAccessReview that errors or times out,
//! a patch that cannot be encoded, all deny with the reason, and nothing here panics. The
//! registrations use `failurePolicy: Fail`, so a webhook that does not answer also denies.
//! Logs name the request uid, user, object and verdict; never a request body (a Project may
//! carry inputs a team considers sensitive) nor a token.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Body, Bytes};
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request as HttpRequest, Response, StatusCode};
use k8s_openapi::api::authorization::v1::SubjectAccessReview;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionResponse, AdmissionReview};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{self, ServerConfig};

use crate::seal::SealKey;
use crate::serve::{self, Limits, Stopping};

use super::registration::{
    MUTATE_CHECKPOINT_STATUS_PATH, MUTATE_PROJECT_PATH, VALIDATE_CHECKPOINT_STATUS_PATH,
};
use super::{
    Error, Policy, Request, Verdict, approval_access_review, deny, mutate_checkpoint_status,
    mutate_project, object_ref, validate_checkpoint_status,
};

/// Liveness endpoint (plain `ok`).
pub const HEALTHZ_PATH: &str = "/healthz";

/// An AdmissionReview carries the object and the old object; etcd keeps objects under
/// 1.5 MiB, so two of them, JSON-escaped, plus the envelope fit with room to spare.
pub const DEFAULT_MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// The apiserver keeps a few connections per webhook; far more means something is wrong.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;
/// Within the registration's 10 s timeout, leaving time to answer after a slow review.
const ACCESS_REVIEW_TIMEOUT: Duration = Duration::from_secs(5);
/// A peer that does not finish TLS or send its headers by then holds a slot for nothing.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings of the admission webhook server; flatten into a command with `#[command(flatten)]`.
#[derive(Clone, Debug, PartialEq, clap::Args)]
pub struct WebhookConfig {
    /// Address the admission webhook listens on (HTTPS only).
    #[arg(
        long = "webhook-listen",
        env = "TOLLGATE_WEBHOOK_LISTEN",
        default_value = "0.0.0.0:8443"
    )]
    pub listen: SocketAddr,
    /// PEM serving certificate (chain) of the webhook, signed by the CA in the webhook
    /// configurations' caBundle. Re-read when the file changes (certificate rotation).
    #[arg(long = "webhook-cert", env = "TOLLGATE_WEBHOOK_CERT")]
    pub cert_file: PathBuf,
    /// PEM private key of the serving certificate.
    #[arg(long = "webhook-key", env = "TOLLGATE_WEBHOOK_KEY")]
    pub key_file: PathBuf,
    /// Usernames of the tollgate controller: they write status phase, conditions and
    /// notifications, and may never decide. Repeat or separate with commas.
    #[arg(
        long = "controller-user",
        env = "TOLLGATE_CONTROLLER_USERS",
        value_delimiter = ',',
        default_value = "system:serviceaccount:tollgate-system:tollgate"
    )]
    pub controller_users: Vec<String>,
    /// Largest AdmissionReview body accepted, in bytes.
    #[arg(long = "webhook-max-body-bytes", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
    /// Most connections served at once; more are closed at once.
    #[arg(long = "webhook-max-connections", default_value_t = DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
}

impl WebhookConfig {
    /// A configuration with the default limits.
    pub fn new(
        listen: SocketAddr,
        cert_file: impl Into<PathBuf>,
        key_file: impl Into<PathBuf>,
        controller_users: Vec<String>,
    ) -> Self {
        Self {
            listen,
            cert_file: cert_file.into(),
            key_file: key_file.into(),
            controller_users,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// Serves the admission webhook on `config.listen` until `shutdown` completes, asking the
/// apiserver behind `client` for SubjectAccessReviews (the identity needs `create` on
/// `subjectaccessreviews.authorization.k8s.io`).
pub async fn serve(
    config: WebhookConfig,
    client: kube::Client,
    seal_key: Arc<SealKey>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    Webhook::bind(config, client, seal_key)
        .await?
        .run(shutdown)
        .await;
    Ok(())
}

/// A boxed future answering a SubjectAccessReview: allowed, or why it could not be asked.
pub type ReviewFuture<'a> = Pin<Box<dyn Future<Output = Result<bool, String>> + Send + 'a>>;

/// Asks whether a SubjectAccessReview is allowed. The real one asks the apiserver; tests
/// substitute their own.
pub trait AccessReviewer: Send + Sync {
    /// `Ok(true)` when allowed, `Ok(false)` when not, `Err` when the answer is unknown.
    fn allowed(&self, review: SubjectAccessReview) -> ReviewFuture<'_>;
}

/// [`AccessReviewer`] that creates the SubjectAccessReview on the apiserver.
#[derive(Clone)]
pub struct KubeAccessReviewer(pub kube::Client);

impl AccessReviewer for KubeAccessReviewer {
    fn allowed(&self, review: SubjectAccessReview) -> ReviewFuture<'_> {
        Box::pin(async move {
            let api: Api<SubjectAccessReview> = Api::all(self.0.clone());
            let answer = api
                .create(&PostParams::default(), &review)
                .await
                .map_err(|e| e.to_string())?;
            let status = answer
                .status
                .ok_or_else(|| "the apiserver returned no status".to_owned())?;
            Ok(status.allowed && status.denied != Some(true))
        })
    }
}

/// A bound, not yet running, webhook server: bind first to learn the address (port 0).
pub struct Webhook {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    handler: Arc<Handler>,
    max_connections: usize,
}

impl Webhook {
    /// Loads the certificate and binds `config.listen`; SubjectAccessReviews go to `client`;
    /// decisions are sealed with `seal_key` (the controller's, see [`crate::seal`]).
    pub async fn bind(
        config: WebhookConfig,
        client: kube::Client,
        seal_key: Arc<SealKey>,
    ) -> Result<Self, Error> {
        Self::bind_with(config, Arc::new(KubeAccessReviewer(client)), seal_key).await
    }

    /// As [`Webhook::bind`], with another [`AccessReviewer`].
    pub async fn bind_with(
        config: WebhookConfig,
        reviewer: Arc<dyn AccessReviewer>,
        seal_key: Arc<SealKey>,
    ) -> Result<Self, Error> {
        let tls = tls_config(&config.cert_file, &config.key_file)?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: config.listen,
                source,
            })?;
        Ok(Self {
            listener,
            acceptor: TlsAcceptor::from(Arc::new(tls)),
            handler: Arc::new(Handler {
                policy: Policy::new(config.controller_users).with_seal_key(seal_key),
                reviewer,
                max_body_bytes: config.max_body_bytes,
                review_timeout: ACCESS_REVIEW_TIMEOUT,
            }),
            max_connections: config.max_connections.max(1),
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        self.listener.local_addr().map_err(Error::LocalAddr)
    }

    /// Serves until `shutdown` completes, then lets running requests finish (bounded).
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let addr = self.listener.local_addr().ok();
        tracing::info!(?addr, "admission webhook listening (HTTPS)");
        let limits = Limits {
            max_connections: self.max_connections,
            header_read_timeout: HANDSHAKE_TIMEOUT,
            ..Limits::default()
        };
        let (acceptor, handler) = (self.acceptor, self.handler);
        serve::accept_loop(
            "admission webhook",
            self.listener,
            limits,
            shutdown,
            move |tcp, peer, stopping| {
                connection(
                    acceptor.clone(),
                    handler.clone(),
                    tcp,
                    peer,
                    limits,
                    stopping,
                )
            },
        )
        .await;
    }
}

async fn connection(
    acceptor: TlsAcceptor,
    handler: Arc<Handler>,
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    limits: Limits,
    stopping: Stopping,
) {
    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "admission webhook: TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "admission webhook: TLS handshake timed out");
            return;
        }
    };
    serve::http1(
        "admission webhook",
        stream,
        peer,
        limits,
        stopping,
        move |req| {
            let handler = handler.clone();
            async move { handler.http(req).await }
        },
    )
    .await;
}

#[derive(Clone, Copy, Debug)]
enum Endpoint {
    MutateCheckpointStatus,
    ValidateCheckpointStatus,
    MutateProject,
}

impl Endpoint {
    fn from_path(path: &str) -> Option<Self> {
        match path {
            MUTATE_CHECKPOINT_STATUS_PATH => Some(Self::MutateCheckpointStatus),
            VALIDATE_CHECKPOINT_STATUS_PATH => Some(Self::ValidateCheckpointStatus),
            MUTATE_PROJECT_PATH => Some(Self::MutateProject),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::MutateCheckpointStatus => "mutate-checkpoint-status",
            Self::ValidateCheckpointStatus => "validate-checkpoint-status",
            Self::MutateProject => "mutate-project",
        }
    }
}

/// Turns HTTP requests into admission verdicts.
struct Handler {
    policy: Policy,
    reviewer: Arc<dyn AccessReviewer>,
    max_body_bytes: usize,
    review_timeout: Duration,
}

impl Handler {
    async fn http<B>(&self, req: HttpRequest<B>) -> Response<Full<Bytes>>
    where
        B: Body<Data = Bytes>,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let path = req.uri().path();
        if path == HEALTHZ_PATH {
            return if req.method() == Method::GET || req.method() == Method::HEAD {
                plain(StatusCode::OK, "ok")
            } else {
                plain(StatusCode::METHOD_NOT_ALLOWED, "use GET")
            };
        }
        let Some(endpoint) = Endpoint::from_path(path) else {
            return plain(StatusCode::NOT_FOUND, "no such endpoint");
        };
        if req.method() != Method::POST {
            return plain(StatusCode::METHOD_NOT_ALLOWED, "POST an AdmissionReview");
        }
        let declared = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > self.max_body_bytes) {
            return self.too_large(endpoint);
        }
        let body = match Limited::new(req.into_body(), self.max_body_bytes)
            .collect()
            .await
        {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
                return self.too_large(endpoint);
            }
            Err(e) => {
                tracing::warn!(endpoint = endpoint.name(), error = %e, "admission webhook could not read a request body");
                return plain(StatusCode::BAD_REQUEST, "cannot read the request body");
            }
        };
        let review = self.review(endpoint, &body).await;
        match serde_json::to_vec(&review) {
            Ok(json) => {
                let mut response = Response::new(Full::new(Bytes::from(json)));
                response
                    .headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                response
            }
            Err(e) => {
                tracing::error!(error = %e, "admission webhook could not encode its response");
                // Not a 200: the apiserver treats it as a failure, and failurePolicy denies.
                plain(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "cannot encode the AdmissionReview",
                )
            }
        }
    }

    fn too_large(&self, endpoint: Endpoint) -> Response<Full<Bytes>> {
        tracing::warn!(
            endpoint = endpoint.name(),
            limit = self.max_body_bytes,
            "admission webhook refused a request body over its limit"
        );
        plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the AdmissionReview exceeds --webhook-max-body-bytes",
        )
    }

    /// The AdmissionReview answering `body`, always: an unreadable request is denied.
    async fn review(&self, endpoint: Endpoint, body: &[u8]) -> AdmissionReview<DynamicObject> {
        let value: serde_json::Value = match serde_json::from_slice(body) {
            Ok(value) => value,
            Err(e) => {
                tracing::warn!(endpoint = endpoint.name(), error = %e, "admission webhook received a body that is not JSON");
                return AdmissionResponse::invalid(format!(
                    "tollgate's admission webhook received a body that is not JSON: {e}"
                ))
                .into_review();
            }
        };
        // Kept so that even a request we cannot read gets its denial to the user.
        let uid = value
            .pointer("/request/uid")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let req: Request = match serde_json::from_value::<AdmissionReview<DynamicObject>>(value)
            .map_err(|e| e.to_string())
            .and_then(|review| review.try_into().map_err(|e| format!("{e}")))
        {
            Ok(req) => req,
            Err(e) => {
                tracing::warn!(endpoint = endpoint.name(), %uid, error = %e, "admission webhook could not read an AdmissionReview");
                let mut response = deny(
                    AdmissionResponse::invalid(""),
                    &format!(
                        "tollgate's admission webhook could not read the AdmissionReview (admission.k8s.io/v1 expected): {e}"
                    ),
                );
                response.uid = uid;
                return response.into_review();
            }
        };
        let verdict = self.verdict(endpoint, &req).await;
        let user = req.user_info.username.as_deref().unwrap_or_default();
        match &verdict {
            Verdict::Allow { patch, .. } => tracing::info!(
                endpoint = endpoint.name(),
                uid = %req.uid,
                user,
                object = %object_ref(&req),
                operation = ?req.operation,
                dry_run = req.dry_run,
                patched = !patch.is_empty(),
                "admission allowed"
            ),
            Verdict::Deny(message) => tracing::info!(
                endpoint = endpoint.name(),
                uid = %req.uid,
                user,
                object = %object_ref(&req),
                operation = ?req.operation,
                dry_run = req.dry_run,
                reason = %message,
                "admission denied"
            ),
        }
        verdict.into_response(&req).into_review()
    }

    async fn verdict(&self, endpoint: Endpoint, req: &Request) -> Verdict {
        match endpoint {
            Endpoint::MutateCheckpointStatus => {
                mutate_checkpoint_status(&self.policy, req, Timestamp::now())
            }
            Endpoint::MutateProject => mutate_project(req),
            Endpoint::ValidateCheckpointStatus => {
                let may_approve = match approval_access_review(&self.policy, req) {
                    None => false,
                    Some(review) => {
                        let answer = tokio::time::timeout(
                            self.review_timeout,
                            self.reviewer.allowed(review),
                        )
                        .await
                        .unwrap_or_else(|_| {
                            Err(format!("no answer within {:?}", self.review_timeout))
                        });
                        match answer {
                            Ok(allowed) => allowed,
                            Err(e) => {
                                return Verdict::Deny(format!(
                                    "tollgate could not check whether user {} may approve checkpoint {} (SubjectAccessReview failed: {e}); nothing was changed, try again",
                                    req.user_info.username.as_deref().unwrap_or_default(),
                                    object_ref(req)
                                ));
                            }
                        }
                    }
                };
                validate_checkpoint_status(&self.policy, req, may_approve, Timestamp::now())
            }
        }
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

fn crypto_provider() -> Arc<CryptoProvider> {
    // Explicit, so the server never depends on which provider is installed process-wide.
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_config(cert_file: &Path, key_file: &Path) -> Result<ServerConfig, Error> {
    let provider = crypto_provider();
    let resolver = ReloadingCert::new(cert_file, key_file, provider.clone())?;
    Ok(ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver)))
}

fn load_certified_key(
    cert_file: &Path,
    key_file: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, Error> {
    let certs = CertificateDer::pem_file_iter(cert_file)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|source| Error::ReadPem {
            what: "certificate",
            path: cert_file.to_owned(),
            source,
        })?;
    if certs.is_empty() {
        return Err(Error::NoCertificate {
            path: cert_file.to_owned(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|source| Error::ReadPem {
        what: "private key",
        path: key_file.to_owned(),
        source,
    })?;
    Ok(CertifiedKey::from_der(certs, key, provider)?)
}

/// Serves the certificate in the files, re-reading them when either file's modification
/// time changes: cert-manager and kubelet rotate mounted Secrets in place, and a webhook
/// that must restart to pick up a new certificate fails closed for every decision once the
/// old one expires. A rotation that cannot be read keeps the previous certificate.
#[derive(Debug)]
struct ReloadingCert {
    cert_file: PathBuf,
    key_file: PathBuf,
    provider: Arc<CryptoProvider>,
    current: Mutex<Loaded>,
}

#[derive(Debug)]
struct Loaded {
    stamp: Option<(SystemTime, SystemTime)>,
    key: Arc<CertifiedKey>,
}

impl ReloadingCert {
    fn new(
        cert_file: &Path,
        key_file: &Path,
        provider: Arc<CryptoProvider>,
    ) -> Result<Self, Error> {
        let stamp = stamp(cert_file, key_file);
        let key = Arc::new(load_certified_key(cert_file, key_file, &provider)?);
        Ok(Self {
            cert_file: cert_file.to_owned(),
            key_file: key_file.to_owned(),
            provider,
            current: Mutex::new(Loaded { stamp, key }),
        })
    }

    fn current(&self) -> Arc<CertifiedKey> {
        let stamp = stamp(&self.cert_file, &self.key_file);
        // A panic elsewhere while holding the lock leaves a usable value behind.
        let mut loaded = self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if stamp.is_some() && stamp != loaded.stamp {
            loaded.stamp = stamp;
            match load_certified_key(&self.cert_file, &self.key_file, &self.provider) {
                Ok(key) => {
                    tracing::info!(cert = %self.cert_file.display(), "admission webhook reloaded its TLS certificate");
                    loaded.key = Arc::new(key);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "admission webhook keeps its previous TLS certificate");
                }
            }
        }
        loaded.key.clone()
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

fn stamp(cert_file: &Path, key_file: &Path) -> Option<(SystemTime, SystemTime)> {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    Some((modified(cert_file)?, modified(key_file)?))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
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
}

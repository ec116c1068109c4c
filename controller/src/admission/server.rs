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
mod tests;

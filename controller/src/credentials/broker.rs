//! A loopback credentials endpoint, so that a Terraform run outliving its first STS session
//! keeps working: the run gets `AWS_CONTAINER_CREDENTIALS_FULL_URI` and a per-run
//! `AWS_CONTAINER_AUTHORIZATION_TOKEN` instead of keys, and every AWS SDK in it (the AWS
//! provider, the S3 backend, the AWS CLI in a `local-exec`) asks the endpoint whenever its
//! copy is about to expire: the ECS container-credentials protocol, which the SDKs allow over
//! plain HTTP on loopback only.
//!
//! The broker answers a token only while its run lasts ([`Lease`] is dropped when the run
//! ends), hands out credentials with at least the refresh margin left, and assumes the role
//! again when less remains. Tokens are compared through their SHA-256, never stored.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

use super::{CredentialsError, TemporaryCredentials};
use crate::serve;

/// The path of the endpoint.
const PATH: &str = "/v1/credentials";

/// Mints the next credentials of one run (STS AssumeRole of the Project's role).
pub type Issue = Arc<
    dyn Fn() -> Pin<Box<dyn Future<Output = Result<TemporaryCredentials, CredentialsError>> + Send>>
        + Send
        + Sync,
>;

/// Told of every credential the broker mints during a run (the audit record; the secrets
/// redacted from the run's output).
pub type Issued = Arc<dyn Fn(&TemporaryCredentials) + Send + Sync>;

struct Session {
    issue: Issue,
    issued: Issued,
    current: tokio::sync::Mutex<TemporaryCredentials>,
}

type Sessions = Mutex<HashMap<[u8; 32], Arc<Session>>>;

/// The endpoint: one per controller, shared by every run.
pub struct Broker {
    uri: String,
    margin: Duration,
    sessions: Arc<Sessions>,
}

/// One run's access to the broker; the token stops working when it is dropped.
pub struct Lease {
    key: [u8; 32],
    token: String,
    uri: String,
    sessions: Weak<Sessions>,
}

impl Broker {
    /// Serves the endpoint on 127.0.0.1 (a port of the system's choosing) until `shutdown`.
    /// Credentials are refreshed when less than `margin` of them is left.
    pub async fn start(
        margin: Duration,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<Arc<Broker>, CredentialsError> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(CredentialsError::Endpoint)?;
        let addr = listener.local_addr().map_err(CredentialsError::Endpoint)?;
        let broker = Arc::new(Broker {
            uri: format!("http://{addr}{PATH}"),
            margin,
            sessions: Arc::default(),
        });
        let serving = Arc::clone(&broker);
        tokio::spawn(async move {
            let limits = serve::Limits::default();
            serve::accept_loop(
                "credentials",
                listener,
                limits,
                shutdown,
                move |tcp, peer, stopping| {
                    let broker = Arc::clone(&serving);
                    serve::http1("credentials", tcp, peer, limits, stopping, move |req| {
                        let broker = Arc::clone(&broker);
                        async move { broker.answer(&req).await }
                    })
                },
            )
            .await;
        });
        Ok(broker)
    }

    /// Opens a run's session, starting from the credentials it already holds (`first`, the
    /// ones its checks were made with); `issue` mints the next ones and `issued` hears of them.
    pub fn lease(&self, first: TemporaryCredentials, issue: Issue, issued: Issued) -> Lease {
        // A failing system RNG leaves the empty token, which no request can present: the
        // run then fails to authenticate rather than sharing a guessable token.
        let token = crate::seal::random_token().unwrap_or_default();
        let key = digest(&token);
        let session = Arc::new(Session {
            issue,
            issued,
            current: tokio::sync::Mutex::new(first),
        });
        lock(&self.sessions).insert(key, session);
        Lease {
            key,
            token,
            uri: self.uri.clone(),
            sessions: Arc::downgrade(&self.sessions),
        }
    }

    async fn answer(&self, req: &Request<Incoming>) -> Response<Full<Bytes>> {
        if req.method() != Method::GET || req.uri().path() != PATH {
            return reply(StatusCode::NOT_FOUND, "not found".into());
        }
        let token = req
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let session = match token.is_empty() {
            true => None,
            false => lock(&self.sessions).get(&digest(token)).cloned(),
        };
        let Some(session) = session else {
            return reply(StatusCode::FORBIDDEN, "unknown or expired run token".into());
        };
        match self.fresh(&session).await {
            Ok(credentials) => reply(StatusCode::OK, credentials.to_ecs_document()),
            Err(err) => {
                tracing::warn!(error = %err, "cannot refresh a run's credentials");
                reply(StatusCode::BAD_GATEWAY, err.to_string())
            }
        }
    }

    /// The session's credentials, minted again when less than the margin is left.
    async fn fresh(&self, session: &Session) -> Result<TemporaryCredentials, CredentialsError> {
        let mut current = session.current.lock().await;
        if needs_refresh(&current, self.margin, jiff::Timestamp::now()) {
            let next = (session.issue)().await?;
            (session.issued)(&next);
            *current = next;
        }
        Ok(current.clone())
    }
}

impl Broker {
    /// How much must be left of credentials handed out.
    #[must_use]
    pub fn margin(&self) -> Duration {
        self.margin
    }
}

impl Lease {
    /// The run's token (secret).
    #[must_use]
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The variables that point a run's AWS SDKs at the broker; the token is secret.
    #[must_use]
    pub fn env(&self) -> [(&'static str, String); 2] {
        [
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", self.uri.clone()),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", self.token.clone()),
        ]
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(sessions) = self.sessions.upgrade() {
            lock(&sessions).remove(&self.key);
        }
    }
}

/// Whether `credentials` expire within `margin` of `now` (or say no time we can read).
/// Credentials without an expiry (static keys) never need one.
pub(crate) fn needs_refresh(
    credentials: &TemporaryCredentials,
    margin: Duration,
    now: jiff::Timestamp,
) -> bool {
    let Some(expires) = &credentials.expires else {
        return false;
    };
    match expires.parse::<jiff::Timestamp>() {
        Ok(expires) => {
            let left = expires.duration_since(now);
            left < jiff::SignedDuration::try_from(margin).unwrap_or(jiff::SignedDuration::MAX)
        }
        Err(_) => true,
    }
}

fn reply(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-store"),
    );
    response
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn lock(sessions: &Sessions) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Arc<Session>>> {
    // The map is only ever inserted into or removed from: a panic elsewhere leaves it whole.
    match sessions.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn credentials(n: usize, expires: jiff::Timestamp) -> TemporaryCredentials {
        TemporaryCredentials {
            access_key_id: format!("ASIA{n:016}"),
            secret_access_key: format!("secret-{n}"),
            session_token: Some(format!("token-{n}")),
            expires: Some(expires.to_string()),
        }
    }

    /// A GET as an SDK sends it; the status and body.
    async fn get(uri: &str, token: Option<&str>) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let rest = uri.strip_prefix("http://").unwrap();
        let (host, path) = rest.split_at(rest.find('/').unwrap());
        let mut tcp = tokio::net::TcpStream::connect(host).await.unwrap();
        let auth = token
            .map(|t| format!("Authorization: {t}\r\n"))
            .unwrap_or_default();
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Connection: close\r\n\r\n");
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        tcp.read_to_string(&mut response).await.unwrap();
        let status = response.get(9..12).unwrap().parse().unwrap();
        let body = response.split_once("\r\n\r\n").unwrap().1.to_owned();
        (status, body)
    }

    #[test]
    fn refresh_is_due_within_the_margin_or_when_the_expiry_is_unreadable() {
        let now: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let margin = Duration::from_secs(300);
        let at = |s: &str| TemporaryCredentials {
            expires: Some(s.into()),
            ..credentials(0, now)
        };
        assert!(!needs_refresh(&at("2026-01-01T00:05:01Z"), margin, now));
        assert!(needs_refresh(&at("2026-01-01T00:04:59Z"), margin, now));
        assert!(needs_refresh(&at("2025-12-31T23:00:00Z"), margin, now));
        assert!(needs_refresh(&at("soon"), margin, now));
        let keys = TemporaryCredentials {
            expires: None,
            ..credentials(0, now)
        };
        assert!(!needs_refresh(&keys, margin, now));
    }

    #[tokio::test]
    async fn a_run_token_gets_fresh_credentials_until_the_run_ends() {
        let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let broker = Broker::start(Duration::from_secs(300), async move {
            let _ = stopped.await;
        })
        .await
        .unwrap();
        let minted = Arc::new(AtomicUsize::new(1));
        let heard = Arc::new(Mutex::new(Vec::new()));
        let issue: Issue = {
            let minted = Arc::clone(&minted);
            Arc::new(move || {
                let n = minted.fetch_add(1, Ordering::SeqCst) + 1;
                // Each new session lasts one minute: inside the margin, so the next request
                // mints again.
                Box::pin(async move {
                    Ok(credentials(
                        n,
                        jiff::Timestamp::now() + jiff::SignedDuration::from_secs(60),
                    ))
                })
            })
        };
        let issued: Issued = {
            let heard = Arc::clone(&heard);
            Arc::new(move |c: &TemporaryCredentials| {
                heard.lock().unwrap().push(c.access_key_id.clone())
            })
        };
        let hour = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1);
        let lease = broker.lease(credentials(1, hour), issue, issued);
        let [(uri_name, uri), (token_name, token)] = lease.env();
        assert_eq!(
            (uri_name, token_name),
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "AWS_CONTAINER_AUTHORIZATION_TOKEN"
            )
        );
        assert!(uri.starts_with("http://127.0.0.1:"), "{uri}");
        assert_eq!(token.len(), 64);

        // The first credentials have an hour left: handed out as they are.
        let (status, body) = get(&uri, Some(&token)).await;
        assert_eq!(status, 200, "{body}");
        let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(doc["AccessKeyId"], "ASIA0000000000000001");
        assert_eq!(doc["Token"], "token-1");
        assert!(heard.lock().unwrap().is_empty());

        // Once they are within the margin, each request gets newly minted ones.
        let session = Arc::clone(lock(&broker.sessions).values().next().unwrap());
        *session.current.lock().await = credentials(1, jiff::Timestamp::now());
        let (_, second) = get(&uri, Some(&token)).await;
        let (_, third) = get(&uri, Some(&token)).await;
        assert!(second.contains("ASIA0000000000000002"), "{second}");
        assert!(third.contains("ASIA0000000000000003"), "{third}");
        assert_eq!(
            *heard.lock().unwrap(),
            ["ASIA0000000000000002", "ASIA0000000000000003"]
        );

        // No token, a wrong one, another path: refused and nothing minted.
        assert_eq!(get(&uri, None).await.0, 403);
        assert_eq!(get(&uri, Some(&"0".repeat(64))).await.0, 403);
        assert_eq!(get(&uri.replace(PATH, "/"), Some(&token)).await.0, 404);
        assert_eq!(minted.load(Ordering::SeqCst), 3);

        // The run is over: its token is dead.
        drop(lease);
        let (status, body) = get(&uri, Some(&token)).await;
        assert_eq!(status, 403, "{body}");
        assert!(!body.contains("ASIA"), "{body}");
    }
}

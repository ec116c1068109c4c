//! The dashboard's HTTP side: sign-in with the one-time link, sessions, the checks every
//! request passes (Host, session; for a decision also Origin and the CSRF token), the
//! security headers on every response, and the routes.
//!
//! Local mode: the server listens on loopback and acts with the person's kubeconfig; the
//! link it prints carries a random sign-in token, so other users of the machine (and web
//! pages in the person's browser) cannot use it. A session is a random id in an HttpOnly,
//! SameSite=Strict cookie; its CSRF token is in every decision form. In-cluster mode (not
//! built yet) keeps the same checks and gives each session its own client made from the
//! bearer token the person signs in with.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Bytes, Frame};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use jiff::Timestamp;
use kube::api::Api;
use tokio::sync::watch;

use super::html::{self, CheckpointPage, Filter, Queue, Refusal};
use super::live::Cluster;
use crate::api::{Checkpoint, Decision};
use crate::cli::checkpoint::format::{self, Review};
use crate::cli::checkpoint::{decide::refused_by, patch_decision, read_review};

/// A response body: a whole page or a stream of server-sent events.
pub type Body = BoxBody<Bytes, Infallible>;

/// The session cookie's name; the port follows, as cookies are not kept apart by port
/// and two dashboards (two kubeconfigs) may run side by side.
const COOKIE: &str = "tollgate_session_";
/// Sessions kept at once; the oldest goes first (one person signs in a few times).
const MAX_SESSIONS: usize = 16;
/// The largest decision form accepted.
const MAX_FORM_BYTES: usize = 16 * 1024;
/// How often open pages render again without a change (SLA countdowns).
const TICK: Duration = Duration::from_secs(15);

/// What every response carries: only this server's script and style (no inline ones), no
/// framing, no MIME sniffing, no caching, and a Referer only back to this server
/// (addresses name checkpoints). Not `no-referrer`: with it Chromium sends `Origin: null`
/// on the page's own form POSTs, and the Origin check would refuse every decision.
const SECURITY_HEADERS: [(&str, &str); 7] = [
    (
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),
    ("x-frame-options", "DENY"),
    ("cache-control", "no-store"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
];

const CSS: &str = include_str!("assets/dashboard.css");
const JS: &str = include_str!("assets/dashboard.js");

struct Session {
    id: String,
    csrf: String,
}

/// The server's state.
pub struct Dashboard {
    cluster: Cluster,
    /// The `Host` values this server answers to (`127.0.0.1:PORT`, `localhost:PORT`).
    hosts: Vec<String>,
    login: String,
    /// The session cookie's name.
    cookie: String,
    sessions: Mutex<VecDeque<Session>>,
    closing: watch::Receiver<bool>,
}

/// Equal, in time that does not depend on where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn page(status: StatusCode, body: String) -> Response<Body> {
    respond(
        status,
        "text/html; charset=utf-8",
        Full::new(Bytes::from(body)).boxed(),
    )
}

fn respond(status: StatusCode, content_type: &'static str, body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

fn refused(status: StatusCode, title: &str, message: &str) -> Response<Body> {
    page(status, html::message_page(title, message))
}

fn redirect(location: &str) -> Response<Body> {
    let mut response = page(StatusCode::SEE_OTHER, String::new());
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// A request's path split into segments, `None` when one is not a Kubernetes name.
fn segments(path: &str) -> Option<Vec<&str>> {
    path.trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.'))
                .then_some(s)
        })
        .collect()
}

impl Dashboard {
    /// A dashboard for `cluster`, answering on `port` of loopback, signing in with `login`.
    pub fn new(
        cluster: Cluster,
        port: u16,
        login: String,
        closing: watch::Receiver<bool>,
    ) -> Dashboard {
        Dashboard {
            cluster,
            hosts: ["127.0.0.1", "localhost", "[::1]"]
                .iter()
                .map(|h| format!("{h}:{port}"))
                .collect(),
            login,
            cookie: format!("{COOKIE}{port}"),
            sessions: Mutex::new(VecDeque::new()),
            closing,
        }
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, VecDeque<Session>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The CSRF token of the request's session, if it has one.
    fn session<B>(&self, request: &Request<B>) -> Option<String> {
        let id = request
            .headers()
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|c| {
                c.trim()
                    .strip_prefix(self.cookie.as_str())?
                    .strip_prefix('=')
            })?;
        self.sessions()
            .iter()
            .find(|s| same(&s.id, id))
            .map(|s| s.csrf.clone())
    }

    fn sign_in(&self) -> Response<Body> {
        let (Some(id), Some(csrf)) = (crate::seal::random_token(), crate::seal::random_token())
        else {
            return refused(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Cannot sign in",
                "The system's random source failed; restart tollgate dashboard.",
            );
        };
        let cookie = format!("{}={id}; HttpOnly; SameSite=Strict; Path=/", self.cookie);
        {
            let mut sessions = self.sessions();
            if sessions.len() >= MAX_SESSIONS {
                sessions.pop_front();
            }
            sessions.push_back(Session { id, csrf });
        }
        // Off the address with the token, so it stays out of the browser's history.
        let mut response = redirect("/");
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().insert(header::SET_COOKIE, value);
        }
        response
    }

    /// Answers one request.
    pub async fn handle<B>(self: Arc<Self>, request: Request<B>) -> Response<Body>
    where
        B: hyper::body::Body<Data = Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        // A page on another site that resolves its own name to 127.0.0.1 (DNS rebinding)
        // reaches this server with its own name as Host.
        if !self.hosts.contains(&host) {
            return refused(
                StatusCode::MISDIRECTED_REQUEST,
                "Wrong address",
                "Open the dashboard at the address tollgate dashboard printed.",
            );
        }
        let path = request.uri().path().to_owned();
        let query = request.uri().query().unwrap_or_default().to_owned();
        match (request.method(), path.as_str()) {
            (&Method::GET, "/static/dashboard.css") => {
                return respond(
                    StatusCode::OK,
                    "text/css; charset=utf-8",
                    Full::new(Bytes::from_static(CSS.as_bytes())).boxed(),
                );
            }
            (&Method::GET, "/static/dashboard.js") => {
                return respond(
                    StatusCode::OK,
                    "text/javascript; charset=utf-8",
                    Full::new(Bytes::from_static(JS.as_bytes())).boxed(),
                );
            }
            _ => {}
        }
        if request.method() == Method::GET
            && path == "/"
            && let Some(token) = form_urlencoded::parse(query.as_bytes())
                .find(|(k, _)| k == "token")
                .map(|(_, v)| v.into_owned())
        {
            return if same(&token, &self.login) {
                self.sign_in()
            } else {
                refused(
                    StatusCode::UNAUTHORIZED,
                    "Sign-in link not valid",
                    "This link is from another run of tollgate dashboard: open the one it printed last.",
                )
            };
        }
        let Some(csrf) = self.session(&request) else {
            return refused(
                StatusCode::UNAUTHORIZED,
                "Sign in",
                "Open the link tollgate dashboard printed when it started (it carries a sign-in token).",
            );
        };
        let Some(parts) = segments(&path) else {
            return refused(StatusCode::NOT_FOUND, "Not found", "No such page.");
        };
        match (request.method().clone(), parts.as_slice()) {
            (Method::GET, []) => self.queue(&Filter::from_query(&query)),
            (Method::GET, ["events"]) => {
                let filter = Filter::from_query(&query);
                self.events(move |me| me.queue_view(&filter).render(html::queue_rows))
            }
            (Method::GET, ["c", namespace, name]) => {
                self.checkpoint(namespace, name, &csrf, None, "").await
            }
            (Method::GET, ["c", namespace, name, "events"]) => {
                let (namespace, name) = ((*namespace).to_owned(), (*name).to_owned());
                self.events(move |me| match me.cluster.checkpoint(&namespace, &name) {
                    Some(checkpoint) => html::checkpoint_live(
                        &checkpoint,
                        me.cluster.project_of(&checkpoint).as_deref(),
                        Timestamp::now(),
                    ),
                    None => "<p class=\"refusal\">This checkpoint no longer exists (or you may no longer read it).</p>\n".to_owned(),
                })
            }
            (Method::POST, ["c", namespace, name, "decide"]) => {
                let (namespace, name) = ((*namespace).to_owned(), (*name).to_owned());
                self.decide(request, &host, &csrf, &namespace, &name).await
            }
            (Method::GET | Method::POST, _) => {
                refused(StatusCode::NOT_FOUND, "Not found", "No such page.")
            }
            _ => refused(
                StatusCode::METHOD_NOT_ALLOWED,
                "Method not allowed",
                "Only GET, and POST for decisions.",
            ),
        }
    }

    fn queue_view(&self, filter: &Filter) -> QueueView {
        let mut entries: Vec<_> = self
            .cluster
            .checkpoints()
            .into_iter()
            .filter(|(c, p)| filter.keeps(c, p.as_deref()))
            .collect();
        entries.sort_by(|(a, _), (b, _)| {
            (format::deadline(a), &a.metadata.namespace, &a.metadata.name).cmp(&(
                format::deadline(b),
                &b.metadata.namespace,
                &b.metadata.name,
            ))
        });
        QueueView {
            entries,
            filter: filter.clone(),
            error: self.cluster.error(),
            loading: self.cluster.loading(),
            scope: self.cluster.scope(),
        }
    }

    fn queue(&self, filter: &Filter) -> Response<Body> {
        let view = self.queue_view(filter);
        page(StatusCode::OK, view.render(html::queue_page))
    }

    /// A stream of server-sent events `update`, each the HTML `render` makes: at once, on
    /// every watch event, and every [`TICK`]; it ends when the server stops.
    fn events<F>(self: Arc<Self>, render: F) -> Response<Body>
    where
        F: Fn(&Dashboard) -> String + Send + Sync + 'static,
    {
        struct Stream<F> {
            me: Arc<Dashboard>,
            render: F,
            changes: watch::Receiver<u64>,
            closing: watch::Receiver<bool>,
            first: bool,
        }
        let state = Stream {
            changes: self.cluster.changes(),
            closing: self.closing.clone(),
            me: self,
            render,
            first: true,
        };
        let stream = futures::stream::unfold(state, |mut state| async move {
            if !state.first {
                tokio::select! {
                    changed = state.changes.changed() => changed.ok()?,
                    () = tokio::time::sleep(TICK) => {}
                    _ = state.closing.changed() => return None,
                }
            }
            state.first = false;
            let text = sse_event("update", &(state.render)(&state.me));
            Some((Ok::<_, Infallible>(Frame::data(Bytes::from(text))), state))
        });
        respond(
            StatusCode::OK,
            "text/event-stream",
            BodyExt::boxed(StreamBody::new(stream)),
        )
    }

    async fn checkpoint(
        &self,
        namespace: &str,
        name: &str,
        csrf: &str,
        refusal: Option<&Refusal>,
        reason: &str,
    ) -> Response<Body> {
        let checkpoint = match self.cluster.checkpoint(namespace, name) {
            Some(checkpoint) => checkpoint,
            None => {
                // Not seen by the watch (yet): ask the API, which says why if it refuses.
                let api: Api<Checkpoint> = Api::namespaced(self.cluster.client.clone(), namespace);
                match api.get(name).await {
                    Ok(checkpoint) => Arc::new(checkpoint),
                    Err(kube::Error::Api(status)) => {
                        return refused(
                            StatusCode::from_u16(status.code).unwrap_or(StatusCode::NOT_FOUND),
                            "Cannot read the checkpoint",
                            &status.message,
                        );
                    }
                    Err(e) => {
                        return refused(
                            StatusCode::BAD_GATEWAY,
                            "Cannot read the checkpoint",
                            &format!(
                                "{e}; check that the API server in your kubeconfig is reachable"
                            ),
                        );
                    }
                }
            }
        };
        let project = self.cluster.project_of(&checkpoint);
        let stored = read_review(
            &Api::namespaced(self.cluster.client.clone(), namespace),
            name,
        )
        .await;
        let review = match &stored {
            Ok(Some(review)) => Review::Stored(review),
            Ok(None) => Review::Missing,
            Err(why) => Review::Unreadable(why),
        };
        let status = refusal.map_or(StatusCode::OK, |_| StatusCode::FORBIDDEN);
        page(
            status,
            html::checkpoint_page(&CheckpointPage {
                checkpoint: &checkpoint,
                project: project.as_deref(),
                review,
                csrf,
                refusal,
                reason,
                now: Timestamp::now(),
            }),
        )
    }

    /// A decision: the same Origin and CSRF token as the page, then exactly what
    /// `tollgate checkpoint approve|reject` does, with the person's identity.
    async fn decide<B>(
        &self,
        request: Request<B>,
        host: &str,
        csrf: &str,
        namespace: &str,
        name: &str,
    ) -> Response<Body>
    where
        B: hyper::body::Body<Data = Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let origin = request
            .headers()
            .get(header::ORIGIN)
            .and_then(|o| o.to_str().ok())
            .unwrap_or_default();
        if origin != format!("http://{host}") {
            return refused(
                StatusCode::FORBIDDEN,
                "Refused: not from this dashboard",
                "A decision must be sent from the dashboard's own page (the request's Origin is missing or another site's).",
            );
        }
        let body = match Limited::new(request.into_body(), MAX_FORM_BYTES)
            .collect()
            .await
        {
            Ok(body) => body.to_bytes(),
            Err(_) => {
                return refused(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "Refused",
                    "The form is too large or was cut off.",
                );
            }
        };
        let mut form_csrf = String::new();
        let mut decision = None;
        let mut reason = String::new();
        for (key, value) in form_urlencoded::parse(&body) {
            match key.as_ref() {
                "csrf" => form_csrf = value.into_owned(),
                "decision" => {
                    decision = serde_json::from_value::<Decision>(serde_json::Value::String(
                        value.into_owned(),
                    ))
                    .ok();
                }
                "reason" => reason = value.into_owned(),
                _ => {}
            }
        }
        if !same(&form_csrf, csrf) {
            return refused(
                StatusCode::FORBIDDEN,
                "Refused: the form is stale",
                "The form's security token does not match your session: reload the checkpoint page and decide again.",
            );
        }
        let Some(decision) = decision else {
            return refused(
                StatusCode::BAD_REQUEST,
                "Refused",
                "No decision in the form: use the page's buttons.",
            );
        };
        if reason.trim().is_empty() {
            let refusal = Refusal {
                message: "The reason is empty: say why, in your words (it is recorded with the decision).".to_owned(),
                refused_by: "the dashboard (nothing was sent to the cluster)".to_owned(),
            };
            return self
                .checkpoint(namespace, name, csrf, Some(&refusal), "")
                .await;
        }
        let api: Api<Checkpoint> = Api::namespaced(self.cluster.client.clone(), namespace);
        match patch_decision(&api, name, decision, &reason).await {
            Ok(_) => redirect(&html::checkpoint_path(namespace, name)),
            Err(kube::Error::Api(status)) => {
                let refusal = Refusal {
                    refused_by: refused_by(&status, namespace),
                    message: status.message.clone(),
                };
                self.checkpoint(namespace, name, csrf, Some(&refusal), &reason)
                    .await
            }
            Err(e) => {
                let refusal = Refusal {
                    message: e.to_string(),
                    refused_by: "nothing: the request did not reach a decision; check your connection and decide again".to_owned(),
                };
                self.checkpoint(namespace, name, csrf, Some(&refusal), &reason)
                    .await
            }
        }
    }
}

/// The queue's data, owned (the rendered page borrows it).
struct QueueView {
    entries: Vec<(Arc<Checkpoint>, Option<Arc<crate::api::Project>>)>,
    filter: Filter,
    error: Option<String>,
    loading: bool,
    scope: String,
}

impl QueueView {
    /// Renders with `render` (the whole page or its live part).
    fn render(&self, render: impl FnOnce(&Queue<'_>) -> String) -> String {
        let entries: Vec<html::Entry<'_>> = self
            .entries
            .iter()
            .map(|(c, p)| (c.as_ref(), p.as_deref()))
            .collect();
        render(&Queue {
            entries: &entries,
            filter: &self.filter,
            error: self.error.as_deref(),
            loading: self.loading,
            scope: &self.scope,
            now: Timestamp::now(),
        })
    }
}

/// One server-sent event: every line of `data` prefixed (a blank line ends the event).
fn sse_event(event: &str, data: &str) -> String {
    let mut out = format!("event: {event}\n");
    for line in data.lines() {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests;

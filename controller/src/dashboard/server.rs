//! The dashboard's HTTP side: sign-in, sessions, the checks every request passes (Host,
//! session; for a form also Origin and the CSRF token), the security headers on every
//! response, and the routes.
//!
//! Local mode: the server listens on loopback and acts with the person's kubeconfig; the
//! link it prints carries a random sign-in token, so other users of the machine (and web
//! pages in the person's browser) cannot use it. Token mode (in a cluster): each person signs
//! in with their own bearer token, which the API server checks (a SelfSubjectReview made
//! with it); the token stays in this server's memory, in the session's own client, and every
//! read, watch, decision and Secret is made with it. Either way a session is a random id in
//! an HttpOnly, SameSite=Strict cookie (Secure, `__Host-`, behind https); its CSRF token is
//! in every form.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Bytes, Frame};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use jiff::Timestamp;
use tokio::sync::watch;

use super::html::{self, Filter, Queue};
use super::live::Cluster;
use crate::api::Checkpoint;
use crate::cli::checkpoint::format;

/// A response body: a whole page or a stream of server-sent events.
pub type Body = BoxBody<Bytes, Infallible>;

/// The session cookie's name; in local mode the port follows, as cookies are not kept
/// apart by port and two dashboards (two kubeconfigs) may run side by side.
const COOKIE: &str = "tollgate_session";
/// Sessions kept at once; the oldest goes first.
const MAX_SESSIONS: usize = 64;
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

/// How people sign in, and whose identity the dashboard then acts with.
enum SignIn {
    /// Local mode: the link printed at start; every session acts as the kubeconfig's user.
    Link {
        /// The link's token.
        token: String,
        /// The kubeconfig's view of the cluster.
        cluster: Cluster,
    },
    /// Each person signs in with their own bearer token; each session has its own client
    /// and watches.
    Token {
        /// The API server (address and CA only: no credentials of its own).
        config: Box<kube::Config>,
        /// The namespaces to watch (empty: every namespace).
        namespaces: Vec<String>,
        /// How long a session lasts.
        ttl: Duration,
    },
}

/// Where people reach the dashboard in token mode.
pub struct Site {
    /// The `Host` people use (`dash.example.com`, `dash.example.com:8443`).
    pub host: String,
    /// Whether it is served over https (then cookies are `Secure` and `__Host-`).
    pub https: bool,
}

struct Session {
    id: String,
    current: Current,
}

/// What a request's session gives it.
#[derive(Clone)]
struct Current {
    csrf: String,
    /// The person's view of the cluster, with their client.
    cluster: Cluster,
    /// When the session ends (never in local mode).
    expires: Option<Instant>,
    /// Who signed in (token mode), as the API server authenticated them.
    user: Option<String>,
}

/// The server's state.
pub struct Dashboard {
    sign_in: SignIn,
    /// The `Host` values this server answers to (`127.0.0.1:PORT`, `localhost:PORT`).
    hosts: Vec<String>,
    /// `http` or `https`: with the host, the Origin a form must come from.
    scheme: &'static str,
    /// The session cookie's name.
    cookie: String,
    /// The cookie's attributes besides its value.
    cookie_attributes: &'static str,
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
    /// A local dashboard for `cluster`, answering on `port` of loopback as `name` (this
    /// run's own `*.localhost` name) and the loopback names, signing in with the link
    /// carrying `login`.
    pub fn new(
        cluster: Cluster,
        port: u16,
        name: &str,
        login: String,
        closing: watch::Receiver<bool>,
    ) -> Dashboard {
        Dashboard {
            sign_in: SignIn::Link {
                token: login,
                cluster,
            },
            hosts: [name, "127.0.0.1", "localhost", "[::1]"]
                .iter()
                .map(|h| format!("{h}:{port}"))
                .collect(),
            scheme: "http",
            cookie: format!("{COOKIE}_{port}"),
            cookie_attributes: "HttpOnly; SameSite=Strict; Path=/",
            sessions: Mutex::new(VecDeque::new()),
            closing,
        }
    }

    /// A dashboard where each person signs in with their own bearer token, checked by the
    /// API server of `config` (its own credentials are dropped), reached at `site`; a
    /// session lasts `ttl` and watches `namespaces` (every namespace when empty).
    pub fn with_tokens(
        mut config: kube::Config,
        namespaces: Vec<String>,
        site: Site,
        ttl: Duration,
        closing: watch::Receiver<bool>,
    ) -> Dashboard {
        config.auth_info = kube::config::AuthInfo::default();
        let (cookie, cookie_attributes, scheme) = if site.https {
            // `__Host-`: only ever set by this host over https, for every path of it.
            (
                format!("__Host-{COOKIE}"),
                "HttpOnly; Secure; SameSite=Strict; Path=/",
                "https",
            )
        } else {
            (
                COOKIE.to_owned(),
                "HttpOnly; SameSite=Strict; Path=/",
                "http",
            )
        };
        Dashboard {
            sign_in: SignIn::Token {
                config: Box::new(config),
                namespaces,
                ttl,
            },
            hosts: vec![site.host],
            scheme,
            cookie,
            cookie_attributes,
            sessions: Mutex::new(VecDeque::new()),
            closing,
        }
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
        // A page on another site that resolves its own name to this server (DNS
        // rebinding) reaches it with its own name as Host.
        if !self.hosts.contains(&host) {
            return refused(
                StatusCode::MISDIRECTED_REQUEST,
                "Wrong address",
                "Open the dashboard at its own address (the one tollgate dashboard printed, or its --url).",
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
            (&Method::GET, "/sign-in") if matches!(self.sign_in, SignIn::Token { .. }) => {
                return page(StatusCode::OK, html::sign_in_page(None));
            }
            (&Method::POST, "/sign-in") => return self.sign_in_with_token(request, &host).await,
            _ => {}
        }
        if let SignIn::Link { token, cluster } = &self.sign_in
            && request.method() == Method::GET
            && path == "/"
            && let Some(given) = form_urlencoded::parse(query.as_bytes())
                .find(|(k, _)| k == "token")
                .map(|(_, v)| v.into_owned())
        {
            return if same(&given, token) {
                self.open_session(cluster.clone(), None, None)
            } else {
                refused(
                    StatusCode::UNAUTHORIZED,
                    "Sign-in link not valid",
                    "This link is from another run of tollgate dashboard: open the one it printed last.",
                )
            };
        }
        let Some(current) = self.session(&request) else {
            return match self.sign_in {
                SignIn::Link { .. } => refused(
                    StatusCode::UNAUTHORIZED,
                    "Sign in",
                    "Open the link tollgate dashboard printed when it started (it carries a sign-in token).",
                ),
                SignIn::Token { .. } => redirect("/sign-in"),
            };
        };
        let Some(parts) = segments(&path) else {
            return refused(StatusCode::NOT_FOUND, "Not found", "No such page.");
        };
        let cluster = &current.cluster;
        match (request.method().clone(), parts.as_slice()) {
            (Method::GET, []) => {
                let view = queue_view(cluster, &Filter::from_query(&query));
                let account = current.user.as_deref().map(|user| html::Account {
                    user,
                    csrf: &current.csrf,
                });
                page(StatusCode::OK, view.render(account, html::queue_page))
            }
            (Method::GET, ["events"]) => {
                let filter = Filter::from_query(&query);
                self.events(&current, move |cluster| {
                    queue_view(cluster, &filter).render(None, html::queue_rows)
                })
            }
            (Method::GET, ["c", namespace, name]) => {
                forms::checkpoint_page(&current, namespace, name, forms::Answered::default()).await
            }
            (Method::GET, ["c", namespace, name, "events"]) => {
                let (namespace, name) = ((*namespace).to_owned(), (*name).to_owned());
                self.events(&current, move |cluster| match cluster.checkpoint(&namespace, &name) {
                    Some(checkpoint) => html::checkpoint_live(
                        &checkpoint,
                        cluster.project_of(&checkpoint).as_deref(),
                        Timestamp::now(),
                    ),
                    None => "<p class=\"refusal\">This checkpoint no longer exists (or you may no longer read it).</p>\n".to_owned(),
                })
            }
            (Method::POST, path @ (["sign-out"] | ["c", _, _, "decide" | "secret"])) => {
                let path: Vec<String> = path.iter().map(|s| (*s).to_owned()).collect();
                if !self.same_origin(&request, &host) {
                    return not_same_origin();
                }
                let form = match read_form(request).await {
                    Ok(form) => form,
                    Err(response) => return response,
                };
                if !same(field(&form, "csrf"), &current.csrf) {
                    return refused(
                        StatusCode::FORBIDDEN,
                        "Refused: the form is stale",
                        "The form's security token does not match your session: reload the checkpoint page and send it again.",
                    );
                }
                match path.as_slice() {
                    [_, namespace, name, action] if action == "secret" => {
                        forms::provide_secret(&current, namespace, name, &form).await
                    }
                    [_, namespace, name, _] => {
                        forms::decide(&current, namespace, name, &form).await
                    }
                    _ => self.sign_out(&current),
                }
            }
            (Method::GET | Method::POST, _) => {
                refused(StatusCode::NOT_FOUND, "Not found", "No such page.")
            }
            _ => refused(
                StatusCode::METHOD_NOT_ALLOWED,
                "Method not allowed",
                "Only GET, and POST for forms.",
            ),
        }
    }

    /// A stream of server-sent events `update`, each the HTML `render` makes of the
    /// session's cluster: at once, on every watch event, and every [`TICK`]; it ends when
    /// the server stops or the session ends.
    fn events<F>(&self, current: &Current, render: F) -> Response<Body>
    where
        F: Fn(&Cluster) -> String + Send + Sync + 'static,
    {
        struct Stream<F> {
            cluster: Cluster,
            render: F,
            changes: watch::Receiver<u64>,
            closing: watch::Receiver<bool>,
            expires: Option<Instant>,
            first: bool,
        }
        let state = Stream {
            changes: current.cluster.changes(),
            closing: self.closing.clone(),
            cluster: current.cluster.clone(),
            expires: current.expires,
            render,
            first: true,
        };
        let stream = futures::stream::unfold(state, |mut state| async move {
            if !state.first {
                let expired = async {
                    match state.expires {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    changed = state.changes.changed() => changed.ok()?,
                    () = tokio::time::sleep(TICK) => {}
                    _ = state.closing.changed() => return None,
                    () = expired => return None,
                }
            }
            state.first = false;
            let text = sse_event("update", &(state.render)(&state.cluster));
            Some((Ok::<_, Infallible>(Frame::data(Bytes::from(text))), state))
        });
        respond(
            StatusCode::OK,
            "text/event-stream",
            BodyExt::boxed(StreamBody::new(stream)),
        )
    }
}

fn not_same_origin() -> Response<Body> {
    refused(
        StatusCode::FORBIDDEN,
        "Refused: not from this dashboard",
        "A form must be sent from the dashboard's own page (the request's Origin is missing or another site's).",
    )
}

fn sign_in_refused(status: StatusCode, message: &str) -> Response<Body> {
    page(status, html::sign_in_page(Some(message)))
}

/// A form's fields (at most [`MAX_FORM_BYTES`]).
async fn read_form<B>(request: Request<B>) -> Result<Vec<(String, String)>, Response<Body>>
where
    B: hyper::body::Body<Data = Bytes> + Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match Limited::new(request.into_body(), MAX_FORM_BYTES)
        .collect()
        .await
    {
        Ok(body) => Ok(form_urlencoded::parse(&body.to_bytes())
            .into_owned()
            .collect()),
        Err(_) => Err(refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Refused",
            "The form is too large or was cut off.",
        )),
    }
}

/// The form's value of `key` (the first), or empty.
fn field<'a>(form: &'a [(String, String)], key: &str) -> &'a str {
    form.iter()
        .find(|(k, _)| k == key)
        .map_or("", |(_, v)| v.as_str())
}

fn queue_view(cluster: &Cluster, filter: &Filter) -> QueueView {
    let mut entries: Vec<_> = cluster
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
        error: cluster.error(),
        loading: cluster.loading(),
        scope: cluster.scope(),
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
    /// Renders with `render` (the whole page or its live part), for `account`.
    fn render(
        &self,
        account: Option<html::Account<'_>>,
        render: impl FnOnce(&Queue<'_>) -> String,
    ) -> String {
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
            account,
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

mod forms;
mod session;

#[cfg(test)]
mod tests;

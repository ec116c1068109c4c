//! The handler end to end, without a cluster: the stores are filled here, and the client
//! points at a closed port, so any request that should not reach Kubernetes and did would
//! show as "did not reach a decision" instead of the refusal expected.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use http_body_util::{BodyExt, Full};
use kube::runtime::reflector;
use kube::runtime::watcher;
use serde_json::json;

use super::*;
use crate::dashboard::html::tests::{checkpoint, hostile_checkpoint, hostile_project};

const PORT: u16 = 8490;
const HOST: &str = "127.0.0.1:8490";
const LOGIN: &str = "login-token";

/// An API server nothing listens on (port 9, discard, of loopback): a request fails at once.
fn closed_port() -> kube::Config {
    kube::Config::new("http://127.0.0.1:9".parse().unwrap())
}

fn fixed_cluster(checkpoints: Vec<Checkpoint>, projects: Vec<crate::api::Project>) -> Cluster {
    let client = kube::Client::try_from(closed_port()).unwrap();
    let (checkpoint_store, mut checkpoint_writer) = reflector::store();
    for c in checkpoints {
        checkpoint_writer.apply_watcher_event(&watcher::Event::Apply(c));
    }
    let (project_store, mut project_writer) = reflector::store();
    for p in projects {
        project_writer.apply_watcher_event(&watcher::Event::Apply(p));
    }
    Cluster::fixed(client, checkpoint_store, project_store)
}

async fn dashboard(
    checkpoints: Vec<Checkpoint>,
    projects: Vec<crate::api::Project>,
) -> Arc<Dashboard> {
    let (_close, closing) = watch::channel(false);
    Arc::new(Dashboard::new(
        fixed_cluster(checkpoints, projects),
        PORT,
        "tollgate-0123.localhost",
        LOGIN.to_owned(),
        closing,
    ))
}

struct Answer {
    status: StatusCode,
    headers: hyper::HeaderMap,
    body: String,
}

async fn send(dashboard: &Arc<Dashboard>, request: Request<Full<Bytes>>) -> Answer {
    let response = dashboard.clone().handle(request).await;
    let status = response.status();
    let headers = response.headers().clone();
    let body = if headers.get(header::CONTENT_TYPE).unwrap() == "text/event-stream" {
        // The first event only: the stream goes on until the server stops.
        let mut body = response.into_body();
        let frame = body.frame().await.unwrap().unwrap();
        String::from_utf8(frame.into_data().unwrap().to_vec()).unwrap()
    } else {
        String::from_utf8(
            response
                .into_body()
                .collect()
                .await
                .unwrap()
                .to_bytes()
                .to_vec(),
        )
        .unwrap()
    };
    Answer {
        status,
        headers,
        body,
    }
}

fn get(path: &str) -> hyper::http::request::Builder {
    Request::get(path).header(header::HOST, HOST)
}

/// Signs in with the link and returns the session cookie.
async fn sign_in(dashboard: &Arc<Dashboard>) -> String {
    let answer = send(
        dashboard,
        get(&format!("/?token={LOGIN}"))
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(answer.headers[header::LOCATION], "/");
    let cookie = answer.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    cookie.split(';').next().unwrap().to_owned()
}

/// The CSRF token in the decision form of the pending checkpoint's page.
async fn csrf(dashboard: &Arc<Dashboard>, cookie: &str) -> String {
    let page = send(
        dashboard,
        get("/c/team-a/shop-1")
            .header(header::COOKIE, cookie)
            .body(Full::default())
            .unwrap(),
    )
    .await;
    page.body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no CSRF token in:\n{}", page.body))
        .to_owned()
}

fn pending() -> Checkpoint {
    checkpoint("team-a", "shop-1", json!({}), json!({"phase": "Pending"}))
}

fn decide(cookie: &str, origin: Option<&str>, form: &str) -> Request<Full<Bytes>> {
    post("/c/team-a/shop-1/decide", HOST, cookie, origin, form)
}

fn post(
    path: &str,
    host: &str,
    cookie: &str,
    origin: Option<&str>,
    form: &str,
) -> Request<Full<Bytes>> {
    let mut request = Request::post(path)
        .header(header::HOST, host)
        .header(header::COOKIE, cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(origin) = origin {
        request = request.header(header::ORIGIN, origin);
    }
    request
        .body(Full::new(Bytes::from(form.to_owned())))
        .unwrap()
}

fn assert_security_headers(answer: &Answer) {
    let csp = answer.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(answer.headers["x-content-type-options"], "nosniff");
    assert_eq!(answer.headers["referrer-policy"], "same-origin");
    assert_eq!(answer.headers["x-frame-options"], "DENY");
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let dashboard = dashboard(vec![pending()], vec![]).await;
    let cookie = sign_in(&dashboard).await;
    for request in [
        get("/static/dashboard.js").body(Full::default()).unwrap(),
        get("/static/dashboard.css").body(Full::default()).unwrap(),
        get("/").body(Full::default()).unwrap(),
        get("/")
            .header(header::COOKIE, &cookie)
            .body(Full::default())
            .unwrap(),
        get("/events")
            .header(header::COOKIE, &cookie)
            .body(Full::default())
            .unwrap(),
        get("/c/team-a/shop-1")
            .header(header::COOKIE, &cookie)
            .body(Full::default())
            .unwrap(),
        get("/nope")
            .header(header::COOKIE, &cookie)
            .body(Full::default())
            .unwrap(),
        Request::get("/")
            .header(header::HOST, "evil.example")
            .body(Full::default())
            .unwrap(),
        decide(&cookie, None, ""),
    ] {
        let what = format!("{} {}", request.method(), request.uri());
        let answer = send(&dashboard, request).await;
        assert_security_headers(&answer);
        assert!(!answer.body.contains("<script>"), "{what}");
    }
}

#[tokio::test]
async fn without_the_sign_in_link_nothing_is_shown() {
    let dashboard = dashboard(vec![pending()], vec![]).await;
    for request in [
        get("/").body(Full::default()).unwrap(),
        get("/?token=guess").body(Full::default()).unwrap(),
        get("/c/team-a/shop-1").body(Full::default()).unwrap(),
        get("/events").body(Full::default()).unwrap(),
        get("/")
            .header(header::COOKIE, "tollgate_session_8490=forged")
            .body(Full::default())
            .unwrap(),
    ] {
        let what = request.uri().to_string();
        let answer = send(&dashboard, request).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{what}");
        assert!(!answer.body.contains("shop-1"), "{what}: {}", answer.body);
        assert!(answer.headers.get(header::SET_COOKIE).is_none(), "{what}");
    }
}

#[tokio::test]
async fn another_host_name_is_refused_even_with_a_session() {
    let dashboard = dashboard(vec![pending()], vec![]).await;
    let cookie = sign_in(&dashboard).await;
    for host in [
        "evil.example",
        "evil.example:8490",
        "127.0.0.1:8491",
        "",
        "tollgate-4567.localhost:8490",
    ] {
        let answer = send(
            &dashboard,
            Request::get("/")
                .header(header::HOST, host)
                .header(header::COOKIE, &cookie)
                .body(Full::default())
                .unwrap(),
        )
        .await;
        assert_eq!(answer.status, StatusCode::MISDIRECTED_REQUEST, "{host}");
        assert!(!answer.body.contains("shop-1"), "{host}");
    }
    for host in ["localhost:8490", "tollgate-0123.localhost:8490"] {
        let answer = send(
            &dashboard,
            Request::get("/")
                .header(header::HOST, host)
                .header(header::COOKIE, &cookie)
                .body(Full::default())
                .unwrap(),
        )
        .await;
        assert_eq!(answer.status, StatusCode::OK, "{host}");
    }
}

#[tokio::test]
async fn a_decision_needs_this_dashboards_origin_and_the_sessions_csrf_token() {
    let dashboard = dashboard(vec![pending()], vec![]).await;
    let cookie = sign_in(&dashboard).await;
    let csrf = csrf(&dashboard, &cookie).await;
    let form = format!("csrf={csrf}&decision=Approved&reason=ok");
    let cases = [
        (None, form.clone(), "not from this dashboard"),
        (
            Some("http://evil.example"),
            form.clone(),
            "not from this dashboard",
        ),
        (
            Some("http://127.0.0.1:8491"),
            form.clone(),
            "not from this dashboard",
        ),
        (Some("null"), form.clone(), "not from this dashboard"),
        (
            Some("http://127.0.0.1:8490"),
            "decision=Approved&reason=ok".to_owned(),
            "the form is stale",
        ),
        (
            Some("http://127.0.0.1:8490"),
            "csrf=guess&decision=Approved&reason=ok".to_owned(),
            "the form is stale",
        ),
    ];
    for (origin, form, why) in cases {
        let answer = send(&dashboard, decide(&cookie, origin, &form)).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{origin:?} {form}");
        assert!(
            answer.body.contains(why),
            "{origin:?} {form}: {}",
            answer.body
        );
        assert!(
            !answer.body.contains("did not reach a decision"),
            "{}",
            answer.body
        );
    }
    // Another session's token is not this session's.
    let other_cookie = sign_in(&dashboard).await;
    let answer = send(
        &dashboard,
        decide(&other_cookie, Some("http://127.0.0.1:8490"), &form),
    )
    .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(answer.body.contains("the form is stale"), "{}", answer.body);
    // With both, the decision is sent (and here fails to reach the closed port).
    let answer = send(
        &dashboard,
        decide(&cookie, Some("http://127.0.0.1:8490"), &form),
    )
    .await;
    assert!(
        answer.body.contains("did not reach a decision"),
        "{}",
        answer.body
    );
}

#[tokio::test]
async fn an_empty_reason_is_refused_before_anything_is_sent() {
    let dashboard = dashboard(vec![pending()], vec![]).await;
    let cookie = sign_in(&dashboard).await;
    let csrf = csrf(&dashboard, &cookie).await;
    let answer = send(
        &dashboard,
        decide(
            &cookie,
            Some("http://127.0.0.1:8490"),
            &format!("csrf={csrf}&decision=Approved&reason=+%20"),
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(
        answer.body.contains("The reason is empty"),
        "{}",
        answer.body
    );
    assert!(
        answer.body.contains("nothing was sent to the cluster"),
        "{}",
        answer.body
    );
}

#[tokio::test]
async fn hostile_fields_are_text_in_pages_and_events() {
    let dashboard = dashboard(vec![hostile_checkpoint()], vec![hostile_project()]).await;
    let cookie = sign_in(&dashboard).await;
    for path in [
        "/?show=all",
        "/events?show=all",
        "/c/team-a/shop-1",
        "/c/team-a/shop-1/events",
        "/?project=%3Cscript%3E",
    ] {
        let answer = send(
            &dashboard,
            get(path)
                .header(header::COOKIE, &cookie)
                .body(Full::default())
                .unwrap(),
        )
        .await;
        assert_eq!(answer.status, StatusCode::OK, "{path}");
        assert!(
            !answer.body.contains("<script>"),
            "{path}:\n{}",
            answer.body
        );
        assert!(!answer.body.contains("<img"), "{path}:\n{}", answer.body);
    }
}

#[tokio::test]
async fn events_carry_the_live_part_as_server_sent_events() {
    let dashboard = dashboard(vec![pending()], vec![]).await;
    let cookie = sign_in(&dashboard).await;
    let answer = send(
        &dashboard,
        get("/events")
            .header(header::COOKIE, &cookie)
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(answer.headers[header::CONTENT_TYPE], "text/event-stream");
    assert!(
        answer.body.starts_with("event: update\ndata: "),
        "{}",
        answer.body
    );
    assert!(answer.body.ends_with("\n\n"), "{}", answer.body);
    assert!(
        answer
            .body
            .lines()
            .skip(1)
            .filter(|l| !l.is_empty())
            .all(|l| l.starts_with("data: ")),
        "{}",
        answer.body
    );
    assert!(
        answer.body.contains("href=\"/c/team-a/shop-1\""),
        "{}",
        answer.body
    );
}

fn credential() -> Checkpoint {
    checkpoint(
        "team-a",
        "shop-1",
        json!({"type": "Credential", "secret": {"name": "aws-keys", "keys": ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]}}),
        json!({"phase": "Pending"}),
    )
}

const PLANTED: &str = "planted-value-7c4d9b0e";

#[tokio::test]
async fn a_secret_needs_this_dashboards_origin_the_csrf_token_and_every_value() {
    let dashboard = dashboard(vec![credential()], vec![]).await;
    let cookie = sign_in(&dashboard).await;
    let csrf = csrf(&dashboard, &cookie).await;
    let full = format!(
        "csrf={csrf}&secret.AWS_ACCESS_KEY_ID={PLANTED}&secret.AWS_SECRET_ACCESS_KEY={PLANTED}"
    );
    let origin = Some("http://127.0.0.1:8490");
    let cases = [
        (None, full.clone(), "not from this dashboard"),
        (
            Some("http://evil.example"),
            full.clone(),
            "not from this dashboard",
        ),
        (
            origin,
            format!("secret.AWS_ACCESS_KEY_ID={PLANTED}&secret.AWS_SECRET_ACCESS_KEY={PLANTED}"),
            "the form is stale",
        ),
        (
            origin,
            format!("csrf={csrf}&secret.AWS_ACCESS_KEY_ID={PLANTED}&secret.AWS_SECRET_ACCESS_KEY="),
            "Every key needs a value",
        ),
        // A key the checkpoint does not ask for does not stand in for one it does.
        (
            origin,
            format!("csrf={csrf}&secret.AWS_ACCESS_KEY_ID={PLANTED}&secret.OTHER={PLANTED}"),
            "Every key needs a value",
        ),
    ];
    for (origin, form, why) in cases {
        let answer = send(
            &dashboard,
            post("/c/team-a/shop-1/secret", HOST, &cookie, origin, &form),
        )
        .await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{origin:?} {form}");
        assert!(
            answer.body.contains(why),
            "{origin:?} {form}: {}",
            answer.body
        );
        assert!(
            !answer.body.contains("did not reach the API server"),
            "{}",
            answer.body
        );
        assert!(!answer.body.contains(PLANTED), "{}", answer.body);
    }
    // With all of it, the Secret is sent (and here fails to reach the closed port); the
    // values are not in the page that says so.
    let answer = send(
        &dashboard,
        post("/c/team-a/shop-1/secret", HOST, &cookie, origin, &full),
    )
    .await;
    assert!(
        answer.body.contains("did not reach the API server"),
        "{}",
        answer.body
    );
    assert!(!answer.body.contains(PLANTED), "{}", answer.body);
}

#[tokio::test]
async fn a_checkpoint_that_asks_for_no_secret_takes_none() {
    let dashboard = dashboard(vec![pending()], vec![]).await;
    let cookie = sign_in(&dashboard).await;
    let csrf = csrf(&dashboard, &cookie).await;
    let answer = send(
        &dashboard,
        post(
            "/c/team-a/shop-1/secret",
            HOST,
            &cookie,
            Some("http://127.0.0.1:8490"),
            &format!("csrf={csrf}&secret.AWS_ACCESS_KEY_ID={PLANTED}"),
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::CONFLICT);
    assert!(
        answer.body.contains("nothing was sent to the cluster"),
        "{}",
        answer.body
    );
}

const SITE: &str = "dash.example:8443";

fn token_dashboard(https: bool) -> Arc<Dashboard> {
    let (_close, closing) = watch::channel(false);
    Arc::new(Dashboard::with_tokens(
        closed_port(),
        Vec::new(),
        Site {
            host: SITE.to_owned(),
            https,
        },
        Duration::from_secs(3600),
        closing,
    ))
}

#[tokio::test]
async fn in_token_mode_without_a_session_everything_leads_to_the_sign_in_form() {
    let dashboard = token_dashboard(true);
    for path in ["/", "/events", "/c/team-a/shop-1", "/?token=login-token"] {
        let answer = send(
            &dashboard,
            Request::get(path)
                .header(header::HOST, SITE)
                .body(Full::default())
                .unwrap(),
        )
        .await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(answer.headers[header::LOCATION], "/sign-in", "{path}");
        assert!(answer.headers.get(header::SET_COOKIE).is_none(), "{path}");
    }
    let form = send(
        &dashboard,
        Request::get("/sign-in")
            .header(header::HOST, SITE)
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("type=\"password\""), "{}", form.body);
    assert_security_headers(&form);
    // Only its own host name.
    let answer = send(
        &dashboard,
        Request::get("/sign-in")
            .header(header::HOST, HOST)
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::MISDIRECTED_REQUEST);
}

#[tokio::test]
async fn a_sign_in_needs_this_sites_origin_and_the_token_goes_to_the_api_server_only() {
    let tokens = token_dashboard(true);
    let token = "tg-bearer-5e1f2a";
    for (origin, form, status) in [
        (None, format!("token={token}"), StatusCode::FORBIDDEN),
        (
            Some("https://evil.example"),
            format!("token={token}"),
            StatusCode::FORBIDDEN,
        ),
        // The scheme counts: this site is https.
        (
            Some("http://dash.example:8443"),
            format!("token={token}"),
            StatusCode::FORBIDDEN,
        ),
        (
            Some("https://dash.example:8443"),
            "token=+".to_owned(),
            StatusCode::BAD_REQUEST,
        ),
        // Sent to the API server (here a closed port): refused, and the page says why.
        (
            Some("https://dash.example:8443"),
            format!("token={token}"),
            StatusCode::BAD_GATEWAY,
        ),
    ] {
        let answer = send(&tokens, post("/sign-in", SITE, "", origin, &form)).await;
        assert_eq!(answer.status, status, "{origin:?} {form}: {}", answer.body);
        assert!(!answer.body.contains(token), "{}", answer.body);
        assert!(answer.headers.get(header::SET_COOKIE).is_none());
    }
    // The local mode has no token sign-in.
    let local = dashboard(vec![], vec![]).await;
    let answer = send(
        &local,
        post(
            "/sign-in",
            HOST,
            "",
            Some("http://127.0.0.1:8490"),
            "token=x",
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_token_session_is_a_secure_host_cookie_behind_https_and_ends_when_due_or_signed_out() {
    for (https, name, secure) in [
        (true, "__Host-tollgate_session=", true),
        (false, "tollgate_session=", false),
    ] {
        let dashboard = token_dashboard(https);
        let opened = dashboard.open_session(
            fixed_cluster(vec![pending()], vec![]),
            Some(Duration::from_secs(3600)),
            Some("alice".to_owned()),
        );
        let set = opened.headers()[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(set.starts_with(name), "{set}");
        assert_eq!(set.contains("; Secure"), secure, "{set}");
        assert!(
            set.contains("HttpOnly")
                && set.contains("SameSite=Strict")
                && set.contains("Max-Age=3600"),
            "{set}"
        );
        let cookie = set.split(';').next().unwrap().to_owned();
        let queue = |cookie: String| {
            Request::get("/")
                .header(header::HOST, SITE)
                .header(header::COOKIE, cookie)
                .body(Full::default())
                .unwrap()
        };
        let answer = send(&dashboard, queue(cookie.clone())).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        assert!(answer.body.contains("shop-1"), "{}", answer.body);
        assert!(
            answer
                .body
                .contains("Signed in as <b id=\"user\">alice</b>"),
            "{}",
            answer.body
        );
        if https {
            // The session ends: the same cookie leads to the sign-in form again.
            for session in dashboard.sessions().iter_mut() {
                session.current.expires = Some(Instant::now());
            }
        } else {
            // Signing out needs the form's token and this site's origin, and ends it.
            let csrf = answer
                .body
                .split("name=\"csrf\" value=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap()
                .to_owned();
            let origin = Some("http://dash.example:8443");
            for (origin, form) in [
                (None, format!("csrf={csrf}")),
                (origin, "csrf=guess".to_owned()),
            ] {
                let refused =
                    send(&dashboard, post("/sign-out", SITE, &cookie, origin, &form)).await;
                assert_eq!(refused.status, StatusCode::FORBIDDEN, "{form}");
            }
            let answer = send(&dashboard, queue(cookie.clone())).await;
            assert_eq!(answer.status, StatusCode::OK, "still signed in");
            let out = send(
                &dashboard,
                post("/sign-out", SITE, &cookie, origin, &format!("csrf={csrf}")),
            )
            .await;
            assert_eq!(out.status, StatusCode::SEE_OTHER);
            assert_eq!(out.headers[header::LOCATION], "/sign-in");
        }
        let answer = send(&dashboard, queue(cookie)).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER);
        assert_eq!(answer.headers[header::LOCATION], "/sign-in");
    }
}

#[test]
fn paths_are_kubernetes_names_only() {
    assert_eq!(
        segments("/c/team-a/shop-1"),
        Some(vec!["c", "team-a", "shop-1"])
    );
    assert_eq!(segments("/"), Some(vec![]));
    assert_eq!(segments("/c/team-a/%3Cx%3E"), None);
    assert_eq!(segments("/c/Team/x"), None);
}

//! `tollgate dashboard` in headless Chromium against the real control plane, with the
//! controller running: each person's dashboard runs with their own kubeconfig. As alice (a
//! Technical Operator) a new checkpoint appears in the open queue without a reload, carol's
//! approve (a platform user) is refused with the apiserver's message, a POST without the
//! CSRF token and one with a forged Origin are refused, and alice's approve applies the
//! Project, which the open page shows.
//!
//! With `TOLLGATE_DASHBOARD_SCREENSHOTS=DIR` it saves the screenshots in docs/ (desktop and
//! phone, queue and checkpoint page) into DIR.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, StatusCode, header};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tollgate::api::{Checkpoint, Project, ProjectPhase};
use tollgate_e2e::browser::{Browser, http};
use tollgate_e2e::controller::{ControllerProcess, tollgate_binary};
use tollgate_e2e::webhook::start_webhook;
use tollgate_e2e::{ControlPlane, User, demo_project, markers_in, wait_project_phase};

const DEADLINE: Duration = Duration::from_secs(120);

/// A `tollgate dashboard` process with someone's kubeconfig; killed when dropped.
struct Dashboard {
    _process: Child,
    /// `http://127.0.0.1:PORT`.
    base: String,
    port: u16,
    /// The sign-in link it printed.
    sign_in: String,
}

impl Dashboard {
    async fn start(kubeconfig: &Path, namespace: Option<&str>) -> Dashboard {
        let mut process = Command::new(tollgate_binary())
            .arg("dashboard")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["--listen", "127.0.0.1:0"])
            .args(namespace.map(|n| vec!["-n", n]).unwrap_or_default())
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(process.stdout.take().unwrap()).lines();
        let sign_in = tokio::time::timeout(Duration::from_secs(60), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = line.split("open ").nth(1) {
                    return Some(url.trim().to_owned());
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .expect("tollgate dashboard prints its sign-in link");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let base = sign_in.split("/?").next().unwrap().to_owned();
        let port = base.rsplit(':').next().unwrap().parse().unwrap();
        Dashboard {
            _process: process,
            base,
            port,
            sign_in,
        }
    }

    /// A session of its own (outside the browser): the cookie and the CSRF token of the
    /// checkpoint page at `path`.
    async fn session(&self, path: &str) -> (String, String) {
        let host = format!("127.0.0.1:{}", self.port);
        let query = self.sign_in.split('?').nth(1).unwrap();
        let (status, headers, _) = http(
            self.port,
            Request::get(format!("/?{query}"))
                .header(header::HOST, &host)
                .body(Full::default())
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        let cookie = headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let (_, _, page) = http(
            self.port,
            Request::get(path)
                .header(header::HOST, &host)
                .header(header::COOKIE, &cookie)
                .body(Full::default())
                .unwrap(),
        )
        .await;
        let csrf = page
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("no decision form on {path}:\n{page}"))
            .to_owned();
        (cookie, csrf)
    }

    /// POSTs a decision as a browser would, with the headers given; status and page.
    async fn post(&self, path: &str, headers: &[(&str, &str)], form: &str) -> (StatusCode, String) {
        let mut request = Request::post(path)
            .header(header::HOST, format!("127.0.0.1:{}", self.port))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let (status, _, page) = http(
            self.port,
            request
                .body(Full::new(Bytes::from(form.to_owned())))
                .unwrap(),
        )
        .await;
        (status, page)
    }
}

/// Where screenshots go, if anywhere.
fn screenshots() -> Option<PathBuf> {
    std::env::var_os("TOLLGATE_DASHBOARD_SCREENSHOTS").map(PathBuf::from)
}

/// A screenshot `name` (`…-phone.png`: the phone's screen, else the whole page).
async fn shoot(browser: &Browser, name: &str) {
    if let Some(dir) = screenshots() {
        std::fs::create_dir_all(&dir).unwrap();
        browser
            .screenshot(&dir.join(name), !name.ends_with("-phone.png"))
            .await;
    }
}

/// Marks the page; [`still_same_page`] then proves it was not reloaded or left.
async fn mark_page(browser: &Browser) {
    browser
        .execute("window.tollgateE2eMark = 'kept'; return null;")
        .await;
}

async fn still_same_page(browser: &Browser) -> bool {
    browser
        .execute("return window.tollgateE2eMark || null;")
        .await
        == json!("kept")
}

#[tokio::test]
async fn a_technical_operator_reviews_and_decides_in_the_browser_with_their_own_identity() {
    let plane = ControlPlane::get().await;
    let ns = start_webhook().await.namespace(plane, "dashboard").await;
    let dir = tempfile::tempdir().unwrap();
    let controller = ControllerProcess::start(plane, &ns, dir.path()).await;
    let admin = plane.client(User::Admin).await;
    let checkpoints: Api<Checkpoint> = Api::namespaced(admin.clone(), &ns);
    let projects: Api<Project> = Api::namespaced(admin, &ns);

    // Alice's dashboard sees every namespace she may list; the queue is filtered to this
    // test's namespace (other tests run alongside).
    let alice = Dashboard::start(&plane.kubeconfig(User::Alice), None).await;
    let browser = Browser::start().await;
    browser.goto(&alice.sign_in).await;
    assert_eq!(
        browser.url().await,
        format!("{}/", alice.base),
        "the token leaves the address"
    );
    browser
        .goto(&format!("{}/?namespace={ns}", alice.base))
        .await;
    browser
        .wait_text("the queue is live", "#live-state", |t| t == "live")
        .await;
    let empty = browser.text(".queue").await.unwrap_or_default();
    assert!(empty.contains("No checkpoint matches"), "{empty}");
    mark_page(&browser).await;

    // Carol (a platform user) creates a Project; the controller plans it and opens a
    // checkpoint, which appears in alice's open queue.
    let markers = dir.path().join("markers");
    let carol_projects: Api<Project> = Api::namespaced(plane.client(User::Carol).await, &ns);
    carol_projects
        .create(
            &PostParams::default(),
            &demo_project(
                &ns,
                &markers,
                json!({"api_token": "tg-secret-dashboard-5e1"}),
                json!(null),
            ),
        )
        .await
        .unwrap();
    let row = format!("tr[data-checkpoint^=\"{ns}/\"]");
    let shown = browser
        .wait_text("the new checkpoint in the open queue", &row, |t| {
            t.contains("Pending")
        })
        .await;
    assert!(still_same_page(&browser).await, "the queue was reloaded");
    // The only checkpoint of the namespace (the Project records it just after opening it).
    let opened = checkpoints.list(&Default::default()).await.unwrap().items;
    assert_eq!(opened.len(), 1, "{opened:?}");
    let name = opened[0].metadata.name.clone().unwrap();
    assert!(
        shown.contains(&name) && shown.contains("PlanApproval") && shown.contains("dev"),
        "{shown}"
    );
    let path = format!("/c/{ns}/{name}");

    // Screenshots of the queue and the checkpoint page, desktop and phone.
    shoot(&browser, "dashboard-queue-desktop.png").await;
    browser.phone(true).await;
    shoot(&browser, "dashboard-queue-phone.png").await;
    browser.click(&format!("{row} a")).await;
    browser
        .wait_text("the checkpoint page", "h1", |t| {
            t.contains("PlanApproval of Project demo")
        })
        .await;
    let page = browser.text("main").await.unwrap();
    assert!(
        !page.contains("tg-secret-dashboard-5e1"),
        "a sensitive value is shown:\n{page}"
    );
    assert!(
        page.contains("Sensitive values show as"),
        "no plan review:\n{page}"
    );
    shoot(&browser, "dashboard-checkpoint-phone.png").await;
    browser.phone(false).await;
    shoot(&browser, "dashboard-checkpoint-desktop.png").await;

    // Carol's own dashboard: her approve is refused, with the apiserver's message verbatim.
    let carol = Dashboard::start(&plane.kubeconfig(User::Carol), Some(&ns)).await;
    browser.goto(&carol.sign_in).await;
    browser.goto(&format!("{}{path}", carol.base)).await;
    browser.type_into("#reason", "ship it").await;
    browser.click("button[value=\"Approved\"]").await;
    let refused = browser
        .wait_text("carol's refusal", "#refusal .api-message", |t| {
            !t.is_empty()
        })
        .await;
    let expected = match Api::<Checkpoint>::namespaced(plane.client(User::Carol).await, &ns)
        .patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"decision": "Approved", "reason": "ship it"}})),
        )
        .await
    {
        Err(kube::Error::Api(status)) => status.message,
        other => panic!("carol's decision was not refused: {other:?}"),
    };
    assert_eq!(refused, expected);
    shoot(&browser, "dashboard-refused-desktop.png").await;

    // A decision without the session's CSRF token, and one from another origin, are
    // refused before anything reaches the cluster.
    let (cookie, csrf) = alice.session(&path).await;
    let origin = alice.base.clone();
    let decide = format!("{path}/decide");
    let (status, page) = alice
        .post(
            &decide,
            &[("cookie", &cookie), ("origin", &origin)],
            "decision=Approved&reason=forged",
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(page.contains("the form is stale"), "{page}");
    let form = format!("csrf={csrf}&decision=Approved&reason=forged");
    let (status, page) = alice
        .post(
            &decide,
            &[("cookie", &cookie), ("origin", "http://evil.example")],
            &form,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(page.contains("not from this dashboard"), "{page}");
    let undecided = checkpoints
        .get(&name)
        .await
        .unwrap()
        .status
        .unwrap_or_default();
    assert_eq!(
        undecided.decision, None,
        "a refused POST decided: {undecided:?}"
    );

    // Alice approves on her page; the page follows the apply live.
    browser.goto(&format!("{}{path}", alice.base)).await;
    browser
        .type_into("#reason", "reviewed in the dashboard")
        .await;
    browser.click("button[value=\"Approved\"]").await;
    let decision = browser
        .wait_text("alice's decision on the page", "#decision", |t| {
            !t.is_empty()
        })
        .await;
    assert!(decision.starts_with("Approved by alice"), "{decision}");
    assert!(
        decision.ends_with("reviewed in the dashboard"),
        "{decision}"
    );
    browser
        .wait_text("the page is live", "#live-state", |t| t == "live")
        .await;
    mark_page(&browser).await;
    let applied = browser
        .wait_text("the apply on the open page", "#apply", |t| {
            t.starts_with("Applied")
        })
        .await;
    browser
        .wait_text(
            "the Project Ready on the open page",
            "#project-phase",
            |t| t == "Ready",
        )
        .await;
    assert!(
        still_same_page(&browser).await,
        "the checkpoint page was reloaded"
    );
    let history = browser.text("table.history").await.unwrap_or_default();
    assert!(
        history.contains("Applied") && history.contains("alice"),
        "{history}"
    );

    // The cluster agrees: alice decided, the Project applied exactly once.
    let decided = checkpoints.get(&name).await.unwrap().status.unwrap();
    assert_eq!(decided.decided_by.as_deref(), Some("alice"));
    assert_eq!(decided.reason.as_deref(), Some("reviewed in the dashboard"));
    wait_project_phase(&projects, "demo", ProjectPhase::Ready, DEADLINE).await;
    assert_eq!(
        markers_in(&markers).len(),
        1,
        "{applied}\n{}",
        controller.log()
    );

    browser.quit().await;
    plane.delete_namespace(&ns).await;
}

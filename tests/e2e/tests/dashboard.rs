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
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, StatusCode, header};
use k8s_openapi::api::core::v1::{Event, Secret};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tollgate::api::{Checkpoint, CheckpointType, Project, ProjectPhase};
use tollgate_e2e::browser::{Browser, http};
use tollgate_e2e::controller::{ControllerProcess, free_port, tollgate_binary};
use tollgate_e2e::webhook::start_webhook;
use tollgate_e2e::{
    ControlPlane, User, awaited_checkpoint_of, demo_project, markers_in, repo_root, wait_for,
    wait_project_phase,
};

const DEADLINE: Duration = Duration::from_secs(120);

/// A `tollgate dashboard` process; killed when dropped. Its stdout and stderr (it logs at
/// debug) are kept, to show what it never logs.
struct Dashboard {
    _process: Child,
    /// The address the browser uses: `http://tollgate-….localhost:PORT` (local mode, the
    /// run's own host name), `http://127.0.0.1:PORT` (token mode, its `--url`).
    base: String,
    port: u16,
    /// The sign-in link it printed (local mode).
    sign_in: String,
    log: Arc<Mutex<String>>,
}

impl Dashboard {
    /// Local mode, with someone's kubeconfig.
    async fn start(kubeconfig: &Path, namespace: Option<&str>) -> Dashboard {
        let mut args = vec![
            "--kubeconfig".to_owned(),
            kubeconfig.to_string_lossy().into_owned(),
            "--listen".to_owned(),
            "127.0.0.1:0".to_owned(),
        ];
        if let Some(namespace) = namespace {
            args.extend(["-n".to_owned(), namespace.to_owned()]);
        }
        let (process, first, log) = Self::spawn(&args).await;
        let sign_in = first
            .split("open ")
            .nth(1)
            .expect("tollgate dashboard prints its sign-in link")
            .trim()
            .to_owned();
        let base = sign_in.split("/?").next().unwrap().to_owned();
        let port = base.rsplit(':').next().unwrap().parse().unwrap();
        Dashboard {
            _process: process,
            base,
            port,
            sign_in,
            log,
        }
    }

    /// Token mode (`--in-cluster`) on a free loopback port, the API server from
    /// `kubeconfig` (a cluster without a user), watching `namespaces`.
    async fn start_in_cluster(kubeconfig: &Path, namespaces: &str) -> Dashboard {
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let args = [
            "--in-cluster",
            "--url",
            &base,
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--kubeconfig",
            &kubeconfig.to_string_lossy(),
            "-n",
            namespaces,
        ]
        .map(str::to_owned);
        let (process, first, log) = Self::spawn(&args).await;
        assert!(
            first.contains("sign in with their own bearer token"),
            "{first}"
        );
        Dashboard {
            _process: process,
            base,
            port,
            sign_in: String::new(),
            log,
        }
    }

    /// Runs `tollgate dashboard ARGS`; its first line of output, once printed.
    async fn spawn(args: &[String]) -> (Child, String, Arc<Mutex<String>>) {
        let mut process = Command::new(tollgate_binary())
            .arg("dashboard")
            .args(args)
            .env_remove("KUBECONFIG")
            .env("TOLLGATE_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let mut stderr = BufReader::new(process.stderr.take().unwrap()).lines();
        let kept = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stderr.next_line().await {
                kept.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let mut lines = BufReader::new(process.stdout.take().unwrap()).lines();
        let first = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .ok()
            .and_then(Result::ok)
            .flatten()
            .unwrap_or_else(|| {
                panic!(
                    "tollgate dashboard printed nothing; its log:\n{}",
                    log.lock().unwrap()
                )
            });
        let kept = log.clone();
        kept.lock().unwrap().push_str(&(first.clone() + "\n"));
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                kept.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        (process, first, log)
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// A session of its own (outside the browser): the cookie and the CSRF token of the
    /// checkpoint page at `path`.
    async fn session(&self, path: &str) -> (String, String) {
        let query = self.sign_in.split('?').nth(1).unwrap();
        let (status, headers, _) = http(
            self.port,
            Request::get(format!("/?{query}"))
                .header(header::HOST, self.host())
                .body(Full::default())
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        let cookie = cookie_of(&headers);
        let csrf = self.csrf(&cookie, path).await;
        (cookie, csrf)
    }

    /// The host the browser uses (local mode: this run's own `*.localhost` name).
    fn host(&self) -> String {
        self.base.trim_start_matches("http://").to_owned()
    }

    /// The CSRF token in the forms of the page at `path`.
    async fn csrf(&self, cookie: &str, path: &str) -> String {
        let (_, _, page) = http(
            self.port,
            Request::get(path)
                .header(header::HOST, self.host())
                .header(header::COOKIE, cookie)
                .body(Full::default())
                .unwrap(),
        )
        .await;
        page.split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("no form on {path}:\n{page}"))
            .to_owned()
    }

    /// POSTs a decision as a browser would, with the headers given; status and page.
    async fn post(&self, path: &str, headers: &[(&str, &str)], form: &str) -> (StatusCode, String) {
        let mut request = Request::post(path)
            .header(header::HOST, self.host())
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

/// The session cookie (`name=value`) a response sets.
fn cookie_of(headers: &hyper::HeaderMap) -> String {
    headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

/// What the apiserver answers carol (a platform user) approving checkpoint `name`.
async fn carols_refusal(plane: &ControlPlane, ns: &str, name: &str) -> String {
    match Api::<Checkpoint>::namespaced(plane.client(User::Carol).await, ns)
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"decision": "Approved", "reason": "ship it"}})),
        )
        .await
    {
        Err(kube::Error::Api(status)) => status.message,
        other => panic!("carol's decision was not refused: {other:?}"),
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
    // The link names this run's own host, so its cookie reaches no other local server.
    assert!(
        alice.base.starts_with("http://tollgate-") && alice.base.contains(".localhost:"),
        "{}",
        alice.base
    );
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
    let expected = carols_refusal(plane, &ns, &name).await;
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

/// The account allow-list letting `namespace` use static keys for account 123456789012.
fn static_keys_allowed(dir: &Path, namespace: &str) -> String {
    let path = dir.join("accounts.yaml");
    std::fs::write(
        &path,
        format!(
            "rules:\n  - name: team-a\n    namespaces: [{namespace}]\n    accountIds: [\"123456789012\"]\n    staticCredentials: true\n"
        ),
    )
    .unwrap();
    path.to_string_lossy().into_owned()
}

/// Types `values` into the Secret form's fields and sends it.
async fn fill(browser: &Browser, key: &str, secret: &str) {
    browser.type_into("#secret-0", key).await;
    browser.type_into("#secret-1", secret).await;
    browser.click("section.secret button[type=submit]").await;
}

/// The page's whole markup as the browser has it now.
async fn outer_html(browser: &Browser) -> String {
    browser
        .execute("return document.documentElement.outerHTML;")
        .await
        .as_str()
        .unwrap()
        .to_owned()
}

/// Every Event of `namespace`, as text.
async fn events_text(plane: &ControlPlane, namespace: &str) -> String {
    Api::<Event>::namespaced(plane.client(User::Admin).await, namespace)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn a_credential_checkpoint_is_answered_with_a_secret_made_in_the_browser_with_the_persons_identity()
 {
    let plane = ControlPlane::get().await;
    let ns = plane.namespace("dash-creds").await;
    plane
        .allow_in(&ns, json!({"autoApprove": ["FirstApply", "Create"]}))
        .await;
    let dir = tempfile::tempdir().unwrap();
    let catalog = repo_root().join("tests/e2e/testdata/catalog");
    let controller = ControllerProcess::start_with_env(
        plane,
        &ns,
        dir.path(),
        vec![
            "--catalog".to_owned(),
            catalog.to_string_lossy().into_owned(),
            "--credentials-config".to_owned(),
            static_keys_allowed(dir.path(), &ns),
        ],
        vec![],
    )
    .await;
    let admin = plane.client(User::Admin).await;
    let checkpoints: Api<Checkpoint> = Api::namespaced(admin.clone(), &ns);
    let projects: Api<Project> = Api::namespaced(admin.clone(), &ns);
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), &ns);

    // A Project whose keys Secret does not exist: the controller opens a Credential
    // checkpoint naming the Secret and its keys.
    let out = dir.path().join("keys.env");
    let project: Project = serde_json::from_value(json!({
        "apiVersion": "tollgate.dev/v1alpha1", "kind": "Project",
        "metadata": {"name": "keys", "namespace": ns},
        "spec": {
            "environment": "dev",
            "cloud": {"aws": {"region": "us-east-1", "accountId": "123456789012", "credentials": {"secretRef": {"name": "aws-keys"}}}},
            "components": [{"name": "seen", "module": "awsenv", "inputs": {"out": out.to_string_lossy()}}]
        }
    }))
    .unwrap();
    projects
        .create(&PostParams::default(), &project)
        .await
        .unwrap();
    let credential =
        awaited_checkpoint_of(&checkpoints, CheckpointType::Credential, DEADLINE).await;
    let requested = credential.spec.secret.clone().unwrap();
    assert_eq!(requested.name, "aws-keys");
    assert_eq!(
        requested.keys,
        ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
    );
    let name = credential.metadata.name.clone().unwrap();
    let path = format!("/c/{ns}/{name}");

    // Alice opens it in her dashboard: a form with a password field per key.
    let alice = Dashboard::start(&plane.kubeconfig(User::Alice), Some(&ns)).await;
    let browser = Browser::start().await;
    browser.goto(&alice.sign_in).await;
    browser.goto(&format!("{}{path}", alice.base)).await;
    browser
        .wait_text("the Credential checkpoint page", "h1", |t| {
            t.contains("Credential of Project keys")
        })
        .await;
    for i in 0..2 {
        assert_eq!(
            browser
                .execute(&format!(
                    "var e = document.getElementById('secret-{i}'); return [e.type, e.autocomplete];"
                ))
                .await,
            json!(["password", "off"])
        );
    }
    let (key, secret) = ("AKIDDASHBOARD7F3A9C", "dashboard-secret-4b8e1d");
    // Without the right to create Secrets there, the apiserver's refusal, verbatim.
    fill(&browser, key, secret).await;
    let refused = browser
        .wait_text("alice's refusal", "#refusal .api-message", |t| {
            !t.is_empty()
        })
        .await;
    let probe: Secret = serde_json::from_value(json!({
        "metadata": {"name": "aws-keys", "namespace": ns},
        "stringData": {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"}
    }))
    .unwrap();
    let expected = match Api::<Secret>::namespaced(plane.client(User::Alice).await, &ns)
        .create(
            &PostParams {
                dry_run: true,
                ..Default::default()
            },
            &probe,
        )
        .await
    {
        Err(kube::Error::Api(status)) => status.message,
        other => panic!("alice may create Secrets: {other:?}"),
    };
    assert_eq!(refused, expected);
    let page = outer_html(&browser).await;
    assert!(
        !page.contains(key) && !page.contains(secret),
        "a value is in the refusal page:\n{page}"
    );

    // Once a cluster admin lets her create Secrets in the namespace, the form makes it.
    plane.kubectl(
        User::Admin,
        &[
            "-n",
            &ns,
            "create",
            "role",
            "secret-maker",
            "--verb=create,patch",
            "--resource=secrets",
        ],
        None,
    );
    plane.kubectl(
        User::Admin,
        &[
            "-n",
            &ns,
            "create",
            "rolebinding",
            "alice-secret-maker",
            "--role=secret-maker",
            "--user=alice",
        ],
        None,
    );
    wait_for("alice may create Secrets", DEADLINE, || async {
        Api::<Secret>::namespaced(plane.client(User::Alice).await, &ns)
            .create(
                &PostParams {
                    dry_run: true,
                    ..Default::default()
                },
                &probe,
            )
            .await
            .is_ok()
    })
    .await;
    fill(&browser, key, secret).await;
    let notice = browser
        .wait_text("the saved notice", "#notice", |t| !t.is_empty())
        .await;
    assert!(
        notice.contains(&format!("Secret {ns}/aws-keys saved")),
        "{notice}"
    );
    let page = outer_html(&browser).await;
    assert!(
        !page.contains(key) && !page.contains(secret),
        "a value is in the page after saving:\n{page}"
    );
    shoot(&browser, "dashboard-credential-saved-desktop.png").await;

    // The Secret holds the keys; the Project carries on and Terraform gets them.
    let saved = secrets.get("aws-keys").await.unwrap();
    let data = saved.data.unwrap();
    assert_eq!(data["AWS_ACCESS_KEY_ID"].0, key.as_bytes());
    assert_eq!(data["AWS_SECRET_ACCESS_KEY"].0, secret.as_bytes());
    assert_eq!(data.len(), 2, "{:?}", data.keys());
    wait_project_phase(&projects, "keys", ProjectPhase::Ready, DEADLINE).await;
    let seen = std::fs::read_to_string(&out).unwrap();
    assert!(seen.contains(&format!("AWS_ACCESS_KEY_ID={key}")), "{seen}");
    browser
        .wait_text("the checkpoint closed on the open page", "#phase", |t| {
            t == "Superseded"
        })
        .await;
    assert_eq!(
        browser
            .execute("return document.querySelector('section.secret').hidden;")
            .await,
        json!(true),
        "the closed checkpoint's form is still offered"
    );

    // The values are nowhere else: not in the dashboard's log (at debug), the
    // controller's, or the namespace's Events.
    let events = events_text(plane, &ns).await;
    for (what, text) in [
        ("the dashboard's log", alice.log()),
        ("the controller's log", controller.log()),
        ("the Events", events),
        ("the page", outer_html(&browser).await),
    ] {
        assert!(
            !text.contains(key) && !text.contains(secret),
            "a value is in {what}:\n{text}"
        );
    }
    browser.quit().await;
    plane.delete_namespace(&ns).await;
}

/// The bearer token in `user`'s kubeconfig (the harness's static token).
fn token_of(plane: &ControlPlane, user: User) -> String {
    std::fs::read_to_string(plane.kubeconfig(user))
        .unwrap()
        .lines()
        .find_map(|l| l.trim().strip_prefix("token: "))
        .expect("a token user")
        .trim()
        .to_owned()
}

/// A kubeconfig naming the cluster only: its user has no credentials.
fn cluster_only_kubeconfig(plane: &ControlPlane, dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(plane.kubeconfig(User::Alice)).unwrap();
    let token = token_of(plane, User::Alice);
    let stripped = text.replace(&format!("  user:\n    token: {token}\n"), "  user: {}\n");
    assert!(!stripped.contains(&token), "{stripped}");
    let path = dir.join("cluster-only.kubeconfig");
    std::fs::write(&path, stripped).unwrap();
    path
}

#[tokio::test]
async fn in_cluster_each_person_signs_in_with_their_own_token_and_acts_with_it() {
    let plane = ControlPlane::get().await;
    let ns = start_webhook().await.namespace(plane, "dash-token").await;
    let dir = tempfile::tempdir().unwrap();
    let controller = ControllerProcess::start(plane, &ns, dir.path()).await;
    let admin = plane.client(User::Admin).await;
    let checkpoints: Api<Checkpoint> = Api::namespaced(admin.clone(), &ns);
    let projects: Api<Project> = Api::namespaced(admin, &ns);
    // The dashboard's own identity (the kubeconfig's user) has no credentials at all:
    // everything it shows and does is with the signed-in person's token. It watches two
    // namespaces.
    let dashboard = Dashboard::start_in_cluster(
        &cluster_only_kubeconfig(plane, dir.path()),
        &format!("{ns},default"),
    )
    .await;
    let host = dashboard.host();
    let origin = dashboard.base.clone();

    // Without a session: to the sign-in page. A token the API server does not accept is
    // refused with its message; a sign-in from another origin is refused.
    let (status, headers, _) = http(
        dashboard.port,
        Request::get("/")
            .header(header::HOST, &host)
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/sign-in");
    let (status, page) = dashboard
        .post("/sign-in", &[("origin", &origin)], "token=not-a-token")
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{page}");
    assert!(
        page.contains("<p class=\"api-message\">Unauthorized</p>"),
        "{page}"
    );
    assert!(!page.contains("not-a-token"), "{page}");
    let alice_token = token_of(plane, User::Alice);
    let (status, page) = dashboard
        .post(
            "/sign-in",
            &[("origin", "http://evil.example")],
            &format!("token={alice_token}"),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");

    // Alice signs in in the browser with her token and sees the queue of both namespaces.
    let browser = Browser::start().await;
    browser.goto(&format!("{}/", dashboard.base)).await;
    assert_eq!(browser.url().await, format!("{}/sign-in", dashboard.base));
    shoot(&browser, "dashboard-sign-in-desktop.png").await;
    browser.type_into("#token", &alice_token).await;
    browser.click("form.sign-in button[type=submit]").await;
    let scope = browser
        .wait_text("the queue", "p.scope", |t| t.contains("namespaces"))
        .await;
    assert!(
        scope.contains(&format!("namespaces {ns}, default")),
        "{scope}"
    );
    assert_eq!(browser.text("#user").await.as_deref(), Some("alice"));
    assert!(
        !outer_html(&browser).await.contains(&alice_token),
        "the token is in the page"
    );
    browser
        .goto(&format!("{}/?namespace={ns}", dashboard.base))
        .await;
    browser
        .wait_text("the queue is live", "#live-state", |t| t == "live")
        .await;

    // A Project opens a checkpoint; it appears in alice's open queue.
    let markers = dir.path().join("markers");
    Api::<Project>::namespaced(plane.client(User::Carol).await, &ns)
        .create(
            &PostParams::default(),
            &demo_project(&ns, &markers, json!({}), json!(null)),
        )
        .await
        .unwrap();
    let row = format!("tr[data-checkpoint^=\"{ns}/\"]");
    browser
        .wait_text("the new checkpoint in the open queue", &row, |t| {
            t.contains("Pending")
        })
        .await;
    let name = checkpoints.list(&Default::default()).await.unwrap().items[0]
        .metadata
        .name
        .clone()
        .unwrap();
    let path = format!("/c/{ns}/{name}");

    // Carol signs in with her token (outside the browser): her session cookie is HttpOnly
    // and SameSite=Strict, and her approve is refused with the apiserver's message.
    let (status, headers, _) = http(
        dashboard.port,
        Request::post("/sign-in")
            .header(header::HOST, &host)
            .header(header::ORIGIN, &origin)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(format!(
                "token={}",
                token_of(plane, User::Carol)
            ))))
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let set_cookie = headers[header::SET_COOKIE].to_str().unwrap();
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"),
        "{set_cookie}"
    );
    let carol = cookie_of(&headers);
    let csrf = dashboard.csrf(&carol, &path).await;
    let (status, page) = dashboard
        .post(
            &format!("{path}/decide"),
            &[("cookie", &carol), ("origin", &origin)],
            &format!("csrf={csrf}&decision=Approved&reason=ship+it"),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    let expected = carols_refusal(plane, &ns, &name).await;
    let shown = page
        .split("<p class=\"api-message\">")
        .nth(1)
        .and_then(|rest| rest.split("</p>").next())
        .unwrap_or_else(|| panic!("no refusal:\n{page}"));
    assert_eq!(shown, tollgate::markup::escape(&expected));

    // Alice approves in the browser: decided as alice, and the Project applies.
    browser.goto(&format!("{}{path}", dashboard.base)).await;
    browser.type_into("#reason", "approved in-cluster").await;
    browser.click("button[value=\"Approved\"]").await;
    let decision = browser
        .wait_text("alice's decision on the page", "#decision", |t| {
            !t.is_empty()
        })
        .await;
    assert!(decision.starts_with("Approved by alice"), "{decision}");
    browser
        .wait_text("the apply on the open page", "#apply", |t| {
            t.starts_with("Applied")
        })
        .await;
    wait_project_phase(&projects, "demo", ProjectPhase::Ready, DEADLINE).await;
    assert_eq!(markers_in(&markers).len(), 1, "{}", controller.log());
    // Signing out ends the session: the queue leads to the sign-in form again.
    browser.goto(&format!("{}/", dashboard.base)).await;
    browser.click("form.account button[type=submit]").await;
    browser
        .wait_text("the sign-in form", "h1", |t| t == "Sign in")
        .await;
    browser.goto(&format!("{}/", dashboard.base)).await;
    assert_eq!(browser.url().await, format!("{}/sign-in", dashboard.base));
    let log = dashboard.log();
    assert!(
        !log.contains(&alice_token) && !log.contains(&token_of(plane, User::Carol)),
        "a token is in the dashboard's log:\n{log}"
    );
    browser.quit().await;
    plane.delete_namespace(&ns).await;
}

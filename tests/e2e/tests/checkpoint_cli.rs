//! `tollgate checkpoint …` as a real process on the real control plane, under each user's
//! own kubeconfig: alice (a Technical Operator) lists, shows, approves two at once and
//! bulk-rejects a Project's checkpoints; carol (a platform user) is refused, with the API's
//! message and a non-zero exit code. Decisions go through tollgate's admission webhook
//! (served by this test process), which records who decided.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Output, Stdio};
use std::time::Duration;

use kube::api::{Api, PostParams};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tollgate::api::{Checkpoint, Decision};
use tollgate::reconcile::PROJECT_LABEL;
use tollgate_e2e::controller::tollgate_binary;
use tollgate_e2e::webhook::{grant_status_patch, start_webhook};
use tollgate_e2e::{ControlPlane, User, checkpoint_object};

struct Env {
    plane: &'static ControlPlane,
    ns: String,
}

impl Env {
    async fn new(prefix: &str) -> Env {
        let plane = ControlPlane::get().await;
        let ns = start_webhook().await.namespace(plane, prefix).await;
        Env { plane, ns }
    }

    async fn api(&self, user: User) -> Api<Checkpoint> {
        Api::namespaced(self.plane.client(user).await, &self.ns)
    }

    /// Checkpoints as the controller opens them (created by the admin identity, labelled
    /// with their Project).
    async fn checkpoints(&self, specs: &[(&str, Value)]) {
        let api = self.api(User::Admin).await;
        for (name, spec) in specs {
            let mut checkpoint = checkpoint_object(&self.ns, name, spec.clone());
            checkpoint.metadata.labels = Some(
                [(
                    PROJECT_LABEL.to_owned(),
                    checkpoint.spec.project_ref.name.clone(),
                )]
                .into(),
            );
            api.create(&PostParams::default(), &checkpoint)
                .await
                .unwrap();
        }
    }

    fn command(&self, user: User, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(tollgate_binary());
        command
            .arg("checkpoint")
            .args(args)
            .arg("--kubeconfig")
            .arg(self.plane.kubeconfig(user))
            .args(["-n", &self.ns])
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        command
    }

    /// Runs `tollgate checkpoint ARGS -n NS --kubeconfig USER's`.
    async fn run(&self, user: User, args: &[&str]) -> Output {
        self.command(user, args).output().await.unwrap()
    }

    /// Runs it, expects exit 0, returns stdout.
    async fn ok(&self, user: User, args: &[&str]) -> String {
        let out = self.run(user, args).await;
        assert_eq!(
            code(&out),
            0,
            "{args:?}: {}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// Runs it, expects exit `expected`, returns stderr.
    async fn fails(&self, user: User, args: &[&str], expected: i32) -> String {
        let out = self.run(user, args).await;
        assert_eq!(
            code(&out),
            expected,
            "{args:?}: {}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stderr)
    }

    /// Asserts each checkpoint's decision, decider and reason.
    async fn assert_decided(&self, names: &[&str], decision: Decision, by: &str, reason: &str) {
        for name in names {
            assert_eq!(
                self.status(name).await,
                (Some(decision), Some(by.to_owned()), Some(reason.to_owned())),
                "{name}"
            );
        }
    }

    async fn status(&self, name: &str) -> (Option<Decision>, Option<String>, Option<String>) {
        let status = self
            .api(User::Admin)
            .await
            .get(name)
            .await
            .unwrap()
            .status
            .unwrap_or_default();
        (status.decision, status.decided_by, status.reason)
    }

    async fn done(self) {
        self.plane.delete_namespace(&self.ns).await;
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn code(output: &Output) -> i32 {
    output.status.code().unwrap_or(-1)
}

fn project(name: &str) -> Value {
    json!({"projectRef": {"name": name}})
}

#[tokio::test]
async fn a_technical_operator_lists_shows_approves_two_and_bulk_rejects_a_project() {
    let env = Env::new("cli-to").await;
    env.checkpoints(&[
        ("demo-aaaaaaaaaaaa", json!({"sla": {"respondBy": "2030-01-01T00:00:00Z"},
            "summary": {"text": "1 to add, 0 to change, 0 to destroy", "add": 1, "change": 0, "destroy": 0,
                        "changes": ["create module.app.terraform_data.this"],
                        "cost": {"before": "0", "after": "3.50", "delta": "3.50", "budget": "50"}}})),
        ("demo-bbbbbbbbbbbb", json!({})),
        ("shop-cccccccccccc", project("shop")),
        ("shop-dddddddddddd", project("shop")),
        ("web-999999999999", project("web")),
    ])
    .await;

    let out = env.ok(User::Alice, &["list"]).await;
    assert!(out.starts_with("NAMESPACE "), "{out}");
    assert!(out.contains("SLA LEFT") && out.contains("COST Δ"), "{out}");
    for name in [
        "demo-aaaaaaaaaaaa",
        "demo-bbbbbbbbbbbb",
        "shop-cccccccccccc",
        "shop-dddddddddddd",
        "web-999999999999",
    ] {
        assert!(out.contains(name), "{name} missing from:\n{out}");
    }
    // Sorted by deadline: those without an SLA (requestedAt 2026) before the 2030 one.
    assert!(
        out.lines().last().unwrap().contains("demo-aaaaaaaaaaaa"),
        "{out}"
    );

    let json_list = env
        .ok(
            User::Alice,
            &["list", "-o", "json", "--type", "PlanApproval"],
        )
        .await;
    let parsed: Value = serde_json::from_str(&json_list).unwrap();
    assert_eq!(parsed["items"].as_array().unwrap().len(), 5);

    let out = env.ok(User::Alice, &["show", "demo-aaaaaaaaaaaa"]).await;
    assert!(
        out.contains("create   module.app.terraform_data.this"),
        "{out}"
    );
    assert!(out.contains("+$3.50") && out.contains("$50"), "{out}");
    assert!(out.contains("Values: none shown"), "{out}");

    // Two at once, no prompt.
    let both = ["demo-aaaaaaaaaaaa", "demo-bbbbbbbbbbbb"];
    let out = env
        .ok(
            User::Alice,
            &[
                "approve",
                both[0],
                both[1],
                "--reason",
                "reviewed both",
                "--yes",
            ],
        )
        .await;
    env.assert_decided(&both, Decision::Approved, "alice", "reviewed both")
        .await;
    for name in both {
        let said = format!("approved: {}/{name} (decided by alice)", env.ns);
        assert!(out.contains(&said), "{out}");
    }

    // Bulk: every pending checkpoint of Project shop.
    let bulk = [
        "reject",
        "--project",
        "shop",
        "--reason",
        "too expensive",
        "--yes",
    ];
    env.ok(User::Alice, &bulk).await;
    let shop = ["shop-cccccccccccc", "shop-dddddddddddd"];
    env.assert_decided(&shop, Decision::Rejected, "alice", "too expensive")
        .await;
    // Bulk by label.
    let selector = format!("{PROJECT_LABEL}=web");
    env.ok(
        User::Alice,
        &["approve", "-l", &selector, "--reason", "by label", "--yes"],
    )
    .await;
    env.assert_decided(
        &["web-999999999999"],
        Decision::Approved,
        "alice",
        "by label",
    )
    .await;
    // Nothing of shop is pending any more: nothing to decide, exit 3.
    env.fails(User::Alice, &bulk, 3).await;

    // A decided checkpoint cannot be decided again: the webhook's words, exit 1.
    let err = env
        .fails(
            User::Bob,
            &["reject", both[0], "--reason", "no", "--yes"],
            1,
        )
        .await;
    assert!(
        err.contains("may not change the decision of checkpoint"),
        "{err}"
    );
    assert!(
        err.contains("refused by: tollgate's admission webhook"),
        "{err}"
    );
    assert!(err.contains("rule: a decision is final"), "{err}");
    env.done().await;
}

#[tokio::test]
async fn a_platform_user_is_refused_with_the_apis_message_and_exit_code_1() {
    let env = Env::new("cli-carol").await;
    let name = "demo-eeeeeeeeeeee";
    env.checkpoints(&[(name, json!({}))]).await;

    // Carol reads checkpoints (tollgate-editor) …
    assert!(
        env.ok(User::Carol, &["list", "--pending"])
            .await
            .contains(name)
    );

    // … but RBAC does not let her write the status.
    let approve = ["approve", name, "--reason", "looks fine", "--yes"];
    let err = env.fails(User::Carol, &approve, 1).await;
    assert!(
        err.contains("User \"carol\" cannot patch resource \"checkpoints/status\""),
        "{err}"
    );
    assert!(
        err.contains("refused by: permission: RBAC, you may not patch checkpoints/status"),
        "{err}"
    );

    // With write access to the status but no verb approve, tollgate's webhook refuses.
    grant_status_patch(env.plane, &env.ns, User::Carol).await;
    let err = env.fails(User::Carol, &approve, 1).await;
    let ns = &env.ns;
    assert!(
        err.contains(&format!(
            "user carol may not approve checkpoints in {ns}: deciding checkpoint {ns}/{name} needs the RBAC verb approve"
        )),
        "{err}"
    );
    assert!(
        err.contains("permission: the RBAC verb approve on checkpoints.tollgate.dev"),
        "{err}"
    );
    assert_eq!(env.status(name).await, (None, None, None));
    env.done().await;
}

#[tokio::test]
async fn usage_and_configuration_errors_exit_2_and_decide_nothing() {
    let env = Env::new("cli-usage").await;
    env.checkpoints(&[("demo-ffffffffffff", json!({}))]).await;
    // No terminal to confirm on and no --yes.
    let err = env
        .fails(
            User::Alice,
            &["approve", "demo-ffffffffffff", "--reason", "ok"],
            2,
        )
        .await;
    assert!(err.contains("pass --yes"), "{err}");
    // A missing kubeconfig.
    let out = tokio::process::Command::new(tollgate_binary())
        .args([
            "checkpoint",
            "list",
            "--kubeconfig",
            "/nonexistent/kubeconfig",
        ])
        .output()
        .await
        .unwrap();
    assert_eq!(code(&out), 2);
    assert!(text(&out.stderr).contains("cannot read kubeconfig /nonexistent/kubeconfig"));
    // No target at all: clap's usage error.
    env.fails(User::Alice, &["approve", "--reason", "ok", "--yes"], 2)
        .await;
    assert_eq!(env.status("demo-ffffffffffff").await, (None, None, None));
    env.done().await;
}

#[tokio::test]
async fn watch_streams_new_and_changed_checkpoints() {
    let env = Env::new("cli-watch").await;
    env.checkpoints(&[("demo-111111111111", json!({}))]).await;
    let mut child = env
        .command(User::Alice, &["watch"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("a watch line within 30 s")
            .unwrap()
            .expect("watch still running")
    };
    let listed = next().await;
    assert!(
        listed.contains(" Listed ") && listed.contains("demo-111111111111"),
        "{listed}"
    );
    env.checkpoints(&[("demo-222222222222", json!({}))]).await;
    let added = next().await;
    assert!(
        added.contains(" Added ") && added.contains("demo-222222222222"),
        "{added}"
    );
    env.ok(
        User::Alice,
        &["approve", "demo-222222222222", "--reason", "ok", "--yes"],
    )
    .await;
    let changed = next().await;
    assert!(
        changed.contains("Modified") && changed.contains("approved-by=alice"),
        "{changed}"
    );
    child.kill().await.unwrap();
    env.done().await;
}

#[tokio::test]
async fn kubectl_runs_it_as_a_plugin() {
    let env = Env::new("cli-kubectl").await;
    env.checkpoints(&[("demo-333333333333", json!({}))]).await;
    let bin = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(tollgate_binary(), bin.path().join("kubectl-tollgate")).unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = tokio::process::Command::new(env.plane.var("TOLLGATE_E2E_KUBECTL"))
        .args(["tollgate", "checkpoint", "list", "-n", &env.ns])
        .env("PATH", path)
        .env("KUBECONFIG", env.plane.kubeconfig(User::Alice))
        .output()
        .await
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("demo-333333333333"),
        "{}",
        text(&out.stdout)
    );
    env.done().await;
}

/// On a terminal (a pseudo-terminal from util-linux `script`) each checkpoint is shown and
/// only those answered `y` are decided.
#[tokio::test]
async fn on_a_terminal_each_is_confirmed() {
    use tokio::io::AsyncWriteExt;

    let env = Env::new("cli-tty").await;
    env.checkpoints(&[
        ("demo-444444444444", json!({})),
        ("demo-555555555555", json!({})),
    ])
    .await;
    let command = format!(
        "{} checkpoint approve demo-444444444444 demo-555555555555 -n {} --kubeconfig {} --reason confirmed",
        tollgate_binary().display(),
        env.ns,
        env.plane.kubeconfig(User::Alice).display()
    );
    let mut child = tokio::process::Command::new("script")
        .args(["--quiet", "--return", "--command", &command, "/dev/null"])
        .env_remove("KUBECONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("util-linux script");
    // Typed ahead; stdin stays open until the command is done (script stops on its EOF).
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"y\nn\n").await.unwrap();
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("finishes")
        .unwrap();
    drop(stdin);
    let shown = text(&out.stdout);
    assert_eq!(code(&out), 0, "{shown}");
    for name in ["demo-444444444444", "demo-555555555555"] {
        let prompt = format!("Approve {}/{name}? [y/N]", env.ns);
        assert!(shown.contains(&prompt), "{shown}");
    }
    assert!(shown.contains("skipped:"), "{shown}");
    env.assert_decided(
        &["demo-444444444444"],
        Decision::Approved,
        "alice",
        "confirmed",
    )
    .await;
    assert_eq!(env.status("demo-555555555555").await, (None, None, None));
    env.done().await;
}

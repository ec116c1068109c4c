//! Integration tests of the Terraform runner against a real Terraform binary.
//!
//! The binary is `TOLLGATE_TERRAFORM` if set, else `terraform` on `PATH`
//! (`bash tests/tools/install-terraform.sh` prints the path of one). If neither can be run,
//! each test prints why and returns without checking anything.
//!
//! Configurations under `tests/fixtures/tf/` use only built-in `terraform_data` resources and
//! `local-exec` provisioners; each test copies its fixture to a fresh temporary directory.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use tollgate::plan::{Actions, ReplaceOrder, SENSITIVE_PLACEHOLDER, SavedPlan};
use tollgate::terraform::{
    CancelToken, ErrorKind, Flavour, InitOptions, InitRun, PlanRequest, PlanStatus, Termination,
    TerraformError, TerraformRunner, Workspace,
};

use support::{Dir, SECRET_PASSWORD, SECRET_TOKEN, assert_no_secret, config, terraform_binary};

fn basic_vars(ws: Workspace, message: &str, generation: &str, with_extra: bool) -> Workspace {
    ws.with_env("TF_VAR_message", message)
        .with_env("TF_VAR_generation", generation)
        .with_env("TF_VAR_with_extra", with_extra.to_string())
        .with_secret_env("TF_VAR_db_password", SECRET_PASSWORD)
}

/// A FIFO the `slow` fixture writes to when its apply starts.
fn make_fifo(dir: &Path) -> PathBuf {
    let fifo = dir.join("ready.fifo");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    fifo
}

type ApplyResult = Result<tollgate::terraform::CommandOutput, TerraformError>;
type ApplyTask = tokio::task::JoinHandle<ApplyResult>;

/// The `slow` fixture, planned, with its apply running in the background (cancellable with
/// `cancel`, if given); [`wait_started`] tells when its provisioner is running.
struct SlowApply {
    dir: Dir,
    fifo: PathBuf,
    ws: Workspace,
    apply: ApplyTask,
}

async fn start_slow_apply(runner: &TerraformRunner, cancel: Option<CancelToken>) -> SlowApply {
    start_apply_of(runner, cancel, 30).await
}

/// Like [`start_slow_apply`], with a provisioner that sleeps `seconds`.
async fn start_apply_of(
    runner: &TerraformRunner,
    cancel: Option<CancelToken>,
    seconds: u32,
) -> SlowApply {
    let dir = Dir::new("slow");
    let fifo = make_fifo(dir.path());
    let ws = dir
        .workspace()
        .with_env("TF_VAR_ready_fifo", fifo.to_string_lossy())
        .with_env("TF_VAR_sleep_seconds", seconds.to_string());
    runner.init(&ws, &InitOptions::default()).await.unwrap();
    let planned = runner
        .plan(&ws, &PlanRequest::new("p.tfplan"))
        .await
        .unwrap();
    let apply = {
        let runner = runner.clone();
        let ws = match cancel {
            Some(token) => ws.clone().with_cancel(token),
            None => ws.clone(),
        };
        tokio::spawn(async move { runner.apply(&ws, &planned.saved).await })
    };
    SlowApply {
        dir,
        fifo,
        ws,
        apply,
    }
}

/// Waits until the slow apply's provisioner has started (opening a FIFO for reading blocks
/// until the provisioner opens it for writing) and returns `None`; or, if the apply ends first
/// (it failed, or timed out before its provisioner ran), unblocks the reader and returns the
/// apply's result.
async fn wait_started(fifo: PathBuf, apply: &mut ApplyTask) -> Option<ApplyResult> {
    let reader = {
        let fifo = fifo.clone();
        tokio::task::spawn_blocking(move || std::fs::read_to_string(fifo))
    };
    tokio::select! {
        line = reader => {
            assert_eq!(line.unwrap().unwrap().trim(), "started");
            None
        }
        result = &mut *apply => {
            // Open the FIFO for writing so the blocked reader thread returns.
            std::fs::write(&fifo, "not started").unwrap();
            Some(result.unwrap())
        }
    }
}

#[tokio::test]
async fn version_detects_flavour() {
    let Some(bin) = terraform_binary() else {
        return;
    };
    // What the binary calls itself in its human-readable banner ("Terraform v1.15.5",
    // "OpenTofu v1.12.6"): independent of the `version -json` fields the runner reads.
    let banner = std::process::Command::new(&bin)
        .arg("version")
        .output()
        .unwrap()
        .stdout;
    let banner = String::from_utf8_lossy(&banner);
    let expected = if banner.starts_with("OpenTofu v") {
        Flavour::OpenTofu
    } else {
        assert!(banner.starts_with("Terraform v"), "{banner}");
        Flavour::Terraform
    };
    let runner = TerraformRunner::new(config(bin)).unwrap();
    let v = runner.ensure_supported().await.unwrap();
    eprintln!("terraform under test: {v}");
    assert_eq!(v.flavour, expected, "{banner}");
    assert!(
        banner.contains(&format!("v{}", v.version)),
        "{banner} vs {}",
        v.version
    );
}

/// init, plan (create), show, apply of the saved plan, plan again (no changes), then a plan
/// with an update, a replace and a delete, with sensitive values redacted; outputs; destroy.
#[tokio::test]
async fn plan_apply_lifecycle() {
    let Some(bin) = terraform_binary() else {
        return;
    };
    let runner = TerraformRunner::new(config(bin)).unwrap();
    let dir = Dir::new("basic");
    let ws = basic_vars(dir.workspace(), "hello", "1", true);

    let init = runner.init(&ws, &InitOptions::default()).await.unwrap();
    assert_eq!(init.exit_code, Some(0));
    assert!(init.stdout.text.contains("initialized"), "{}", init.stdout);

    // 1. Create everything.
    let first = runner
        .plan(&ws, &PlanRequest::new("first.tfplan"))
        .await
        .unwrap();
    assert_eq!(first.status, PlanStatus::Changes);
    let bytes = std::fs::read(dir.path().join("first.tfplan")).unwrap();
    assert_eq!(first.saved.digest, tollgate::plan::digest_bytes(&bytes));
    assert_eq!(first.saved.digest.len(), 64);
    assert_eq!(
        first.saved.id,
        SavedPlan::id_from_digest(&first.saved.digest)
    );
    assert_no_secret("plan output", &format!("{:?}", first.output));

    let plan = runner.show_plan(&ws, &first.saved).await.unwrap();
    let summary = plan.summary();
    assert_eq!(summary.add, 4, "{summary:?}");
    assert_eq!(
        (summary.change, summary.destroy, summary.replace),
        (0, 0, 0)
    );
    assert!(summary.has_changes);
    assert!(
        summary
            .addresses
            .create
            .contains(&"terraform_data.extra[0]".to_owned())
    );
    let redacted = plan.redacted(Some(ws.redactor())).to_string();
    assert_no_secret("redacted plan", &redacted);
    assert_no_secret("plan Debug", &format!("{plan:?}"));
    assert!(redacted.contains("(sensitive)"));
    // The raw model still has the value for in-process use (e.g. nothing here logs it).
    let creds = plan
        .resource_changes
        .iter()
        .find(|rc| rc.address == "terraform_data.credentials")
        .unwrap();
    assert_eq!(creds.change.after["input"], SECRET_PASSWORD);
    assert_eq!(creds.change.after_sensitive["input"], true);

    let applied = runner.apply(&ws, &first.saved).await.unwrap();
    assert!(
        applied.stdout.text.contains("Apply complete!"),
        "{}",
        applied.stdout
    );
    assert_no_secret("apply output", &format!("{applied:?}"));

    // 2. Nothing changed: -detailed-exitcode says so.
    let again = runner
        .plan(&ws, &PlanRequest::new("again.tfplan"))
        .await
        .unwrap();
    assert_eq!(again.status, PlanStatus::NoChanges);
    let plan = runner.show_plan(&ws, &again.saved).await.unwrap();
    assert!(!plan.summary().has_changes);

    let outputs = runner.output(&ws).await.unwrap();
    assert_eq!(outputs["message"].value, "hello");
    assert!(outputs["db_password"].sensitive);
    assert_eq!(outputs["db_password"].value, SECRET_PASSWORD);
    assert_no_secret("outputs Debug", &format!("{outputs:?}"));

    // 3. Update, replace (triggers_replace), delete (count 0).
    let ws = basic_vars(dir.workspace(), "bye", "2", false);
    let third = runner
        .plan(&ws, &PlanRequest::new("third.tfplan"))
        .await
        .unwrap();
    assert_eq!(third.status, PlanStatus::Changes);
    let plan = runner.show_plan(&ws, &third.saved).await.unwrap();
    let s = plan.summary();
    assert_eq!(s.addresses.update, vec!["terraform_data.config".to_owned()]);
    assert_eq!(
        s.addresses.replace,
        vec!["terraform_data.server".to_owned()]
    );
    assert_eq!(
        s.addresses.delete,
        vec!["terraform_data.extra[0]".to_owned()]
    );
    assert_eq!((s.add, s.change, s.replace, s.destroy), (0, 1, 1, 1));
    let server = plan
        .resource_changes
        .iter()
        .find(|rc| rc.address == "terraform_data.server")
        .unwrap();
    assert_eq!(
        server.change.actions,
        Actions::Replace(ReplaceOrder::DeleteThenCreate)
    );
    assert!(!server.change.replace_paths.is_empty());
    assert_eq!(s.output_changes, 1, "{s:?}");
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["addresses"]["replace"][0], "terraform_data.server");

    // A plan whose file changed after it was saved is refused.
    let tampered = SavedPlan {
        digest: "0".repeat(64),
        ..third.saved.clone()
    };
    let err = runner.apply(&ws, &tampered).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StalePlan, "{err}");

    runner.apply(&ws, &third.saved).await.unwrap();
    let outputs = runner.output(&ws).await.unwrap();
    assert_eq!(outputs["message"].value, "bye");

    // 4. Destroy plan.
    let destroy = runner
        .plan(&ws, &PlanRequest::destroy("destroy.tfplan"))
        .await
        .unwrap();
    assert_eq!(destroy.status, PlanStatus::Changes);
    let plan = runner.show_plan(&ws, &destroy.saved).await.unwrap();
    assert_eq!(plan.summary().destroy, 3);
    runner.apply(&ws, &destroy.saved).await.unwrap();
}

/// A saved plan made before another apply changed the state cannot be applied: Terraform
/// says it is stale, and the error is classified so the caller re-plans.
#[tokio::test]
async fn stale_saved_plan_is_classified() {
    let Some(bin) = terraform_binary() else {
        return;
    };
    let runner = TerraformRunner::new(config(bin)).unwrap();
    let dir = Dir::new("basic");
    let ws = basic_vars(dir.workspace(), "one", "1", true);
    runner.init(&ws, &InitOptions::default()).await.unwrap();
    let a = runner
        .plan(&ws, &PlanRequest::new("a.tfplan"))
        .await
        .unwrap();
    let b = runner
        .plan(&ws, &PlanRequest::new("b.tfplan"))
        .await
        .unwrap();
    runner.apply(&ws, &b.saved).await.unwrap();
    let err = runner.apply(&ws, &a.saved).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StalePlan, "{err}");
    assert!(err.to_string().contains("plan again"), "{err}");
}

/// A command past its timeout gets SIGINT, then (after the grace period) SIGKILL; either way
/// the state lock is released, so the next command on the same directory takes the lock
/// without `-lock=false` (lock timeout 0: it would fail at once if the lock were held).
#[tokio::test]
async fn timeout_interrupts_and_releases_the_lock() {
    let Some(bin) = terraform_binary() else {
        return;
    };
    let mut cfg = config(bin);
    cfg.timeouts.apply = Duration::from_secs(2);
    cfg.grace_period = Duration::from_secs(5);
    let runner = TerraformRunner::new(cfg).unwrap();
    let mut slow = start_slow_apply(&runner, None).await;
    let result = match wait_started(slow.fifo.clone(), &mut slow.apply).await {
        None => (&mut slow.apply).await.unwrap(),
        Some(early) => {
            eprintln!("the apply timed out before its provisioner started");
            early
        }
    };
    let err = result.unwrap_err();
    let TerraformError::Timeout {
        termination,
        timeout,
        ..
    } = &err
    else {
        panic!("expected a timeout, got {err:?}");
    };
    assert_eq!(*timeout, Duration::from_secs(2));
    eprintln!("termination after timeout: {termination:?}: {err}");
    assert!(err.to_string().contains("SIGINT"), "{err}");
    assert_eq!(err.kind(), ErrorKind::Timeout);
    if *termination == Termination::Interrupted {
        // Terraform handled SIGINT: it wrote state (the interrupted resource is tainted).
        let state = std::fs::read_to_string(slow.dir.path().join("terraform.tfstate")).unwrap();
        assert!(state.contains("terraform_data"), "{state}");
    }
    assert_eq!(runner.stats().running, 0);

    // The lock is free: a new plan takes it at once. (The fixture's provisioner would block
    // on the FIFO again if the resource were re-created, but plan does not run provisioners.)
    let next = runner
        .plan(&slow.ws, &PlanRequest::new("next.tfplan"))
        .await
        .unwrap();
    assert_eq!(next.status, PlanStatus::Changes);
}

/// While an apply holds the state lock, another command fails with the lock classified and
/// its id parsed; cancelling the apply stops it and frees the lock.
#[tokio::test]
async fn held_lock_is_classified_and_cancel_frees_it() {
    let Some(bin) = terraform_binary() else {
        return;
    };
    let runner = TerraformRunner::new(config(bin)).unwrap();
    let token = CancelToken::new();
    let mut slow = start_slow_apply(&runner, Some(token.clone())).await;
    if let Some(early) = wait_started(slow.fifo.clone(), &mut slow.apply).await {
        panic!("the apply ended before its provisioner started: {early:?}");
    }

    let err = runner
        .plan(&slow.ws, &PlanRequest::new("blocked.tfplan"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StateLocked, "{err}");
    assert!(err.is_retryable());
    let lock = err.lock().unwrap();
    assert_eq!(lock.id.len(), 36, "{lock:?}");
    assert_eq!(lock.operation.as_deref(), Some("OperationTypeApply"));
    assert!(err.to_string().contains(&lock.id));

    token.cancel();
    let err = slow.apply.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Cancelled, "{err}");
    eprintln!("cancelled apply: {err}");

    runner
        .plan(&slow.ws, &PlanRequest::new("after.tfplan"))
        .await
        .unwrap();
}

/// With a limit of 2, six parallel plans never run more than 2 Terraform processes at once
/// (counted by the runner itself).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrency_is_bounded() {
    let Some(bin) = terraform_binary() else {
        return;
    };
    let mut cfg = config(bin);
    cfg.max_concurrent = 2;
    let runner = TerraformRunner::new(cfg).unwrap();
    let dirs: Vec<Dir> = (0..6).map(|_| Dir::new("basic")).collect();
    let mut tasks = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let runner = runner.clone();
        let ws = basic_vars(dir.workspace(), &format!("m{i}"), "1", true);
        tasks.push(tokio::spawn(async move {
            runner.init(&ws, &InitOptions::default()).await?;
            runner.plan(&ws, &PlanRequest::new("p.tfplan")).await
        }));
    }
    for t in tasks {
        let outcome = t.await.unwrap().unwrap();
        assert_eq!(outcome.status, PlanStatus::Changes);
    }
    let stats = runner.stats();
    eprintln!("runner stats: {stats:?}");
    assert_eq!(stats.started, 12);
    assert!(stats.peak <= 2, "{stats:?}");
    assert!(stats.peak >= 1);
    assert_eq!(stats.running, 0);
}

/// Dropping a running command's future (e.g. the reconcile task is aborted) does not leave
/// Terraform running unsupervised: it is stopped in the background (SIGINT, grace, SIGKILL)
/// and keeps its process slot until it has ended; then the lock is free.
#[tokio::test]
async fn abandoned_run_is_stopped_in_the_background() {
    let Some(bin) = terraform_binary() else {
        return;
    };
    let runner = TerraformRunner::new(config(bin)).unwrap();
    let mut slow = start_slow_apply(&runner, None).await;
    if let Some(early) = wait_started(slow.fifo.clone(), &mut slow.apply).await {
        panic!("the apply ended before its provisioner started: {early:?}");
    }
    slow.apply.abort();
    assert!(slow.apply.await.unwrap_err().is_cancelled());
    runner.wait_idle().await;
    assert_eq!(runner.stats().running, 0);
    runner
        .plan(&slow.ws, &PlanRequest::new("after.tfplan"))
        .await
        .unwrap();
}

/// A shutdown starts nothing new but lets a running apply finish within the grace period;
/// what only reads (`output`) still runs, so a finished apply can be recorded.
#[tokio::test]
async fn shutdown_lets_a_running_apply_finish_and_starts_no_new_work() {
    let Some(bin) = terraform_binary() else {
        return;
    };
    let runner = TerraformRunner::new(config(bin)).unwrap();
    let mut slow = start_apply_of(&runner, None, 6).await;
    if let Some(early) = wait_started(slow.fifo.clone(), &mut slow.apply).await {
        panic!("the apply ended before its provisioner started: {early:?}");
    }
    let mut shutdown = Box::pin(runner.shut_down(Duration::from_secs(120)));
    assert!(
        futures::poll!(&mut shutdown).is_pending(),
        "the apply still runs"
    );
    let started = runner.stats().started;
    for refused in [
        runner
            .plan(&slow.ws, &PlanRequest::new("late.tfplan"))
            .await
            .map(|_| ()),
        runner
            .init(&slow.ws, &InitOptions::default())
            .await
            .map(|_| ()),
    ] {
        let err = refused.unwrap_err().to_string();
        assert!(err.contains("cancelled before Terraform started"), "{err}");
    }
    assert_eq!(runner.stats().started, started, "nothing new started");
    assert_eq!(
        shutdown.await,
        tollgate::terraform::Shutdown::Finished { running: 1 }
    );
    slow.apply.await.unwrap().unwrap();
    let state = std::fs::read_to_string(slow.dir.path().join("terraform.tfstate")).unwrap();
    assert!(state.contains("terraform_data"), "{state}");
    runner.output(&slow.ws).await.unwrap();
}

/// What outlives the grace period is interrupted (SIGINT, then SIGKILL), and the state lock
/// is free afterwards.
#[tokio::test]
async fn shutdown_interrupts_what_outlives_the_grace_period() {
    let Some(bin) = terraform_binary() else {
        return;
    };
    let runner = TerraformRunner::new(config(bin.clone())).unwrap();
    let mut slow = start_slow_apply(&runner, None).await;
    if let Some(early) = wait_started(slow.fifo.clone(), &mut slow.apply).await {
        panic!("the apply ended before its provisioner started: {early:?}");
    }
    assert_eq!(
        runner.shut_down(Duration::from_millis(500)).await,
        tollgate::terraform::Shutdown::Interrupted { interrupted: 1 }
    );
    let err = slow.apply.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Cancelled, "{err}");
    assert_eq!(runner.stats().running, 0);
    let fresh = TerraformRunner::new(config(bin)).unwrap();
    fresh
        .plan(&slow.ws, &PlanRequest::new("after.tfplan"))
        .await
        .unwrap();
}

/// force-unlock refuses ids that could be flags, and a Terraform refusal is an error with
/// Terraform's reason.
#[tokio::test]
async fn force_unlock_checks_its_input() {
    let Some(bin) = terraform_binary() else {
        return;
    };
    let runner = TerraformRunner::new(config(bin)).unwrap();
    let dir = Dir::new("basic");
    let ws = basic_vars(dir.workspace(), "x", "1", true);
    runner.init(&ws, &InitOptions::default()).await.unwrap();
    let err = runner.force_unlock(&ws, "-lock=false").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Setup);
    assert_eq!(runner.stats().started, 1, "nothing was run for the bad id");
    let err = runner
        .force_unlock(&ws, "376cfedd-9314-8f65-079f-ed10fd13285d")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Failed, "{err}");
    assert!(err.to_string().contains("not locked"), "{err}");
}

#[tokio::test]
async fn init_runs_only_when_the_configuration_needs_it() {
    let Some(bin) = terraform_binary() else {
        return;
    };
    let runner = TerraformRunner::new(config(bin)).unwrap();
    runner.version().await.unwrap();
    let dir = Dir {
        tmp: tempfile::tempdir().unwrap(),
    };
    let write_root = |modules: &[(&str, &str)]| {
        let root: String = modules
            .iter()
            .map(|(name, value)| {
                format!(
                    "module \"{name}\" {{\n  source = \"./child\"\n  value  = \"{value}\"\n}}\n"
                )
            })
            .collect();
        std::fs::write(dir.path().join("main.tf"), root).unwrap();
    };
    std::fs::create_dir_all(dir.path().join("child")).unwrap();
    std::fs::write(
        dir.path().join("child/main.tf"),
        "variable \"value\" {}\nresource \"terraform_data\" \"x\" {\n  input = var.value\n}\n",
    )
    .unwrap();
    write_root(&[("a", "one")]);
    let ws = dir.workspace();
    let opts = InitOptions::default();
    let started = || runner.stats().started;

    assert!(matches!(
        runner.init_if_needed(&ws, &opts).await.unwrap(),
        InitRun::Ran(_)
    ));
    let before = started();
    assert_eq!(
        runner.init_if_needed(&ws, &opts).await.unwrap(),
        InitRun::Skipped
    );
    assert_eq!(started(), before, "a skipped init starts no process");

    // A new input value is not a reason to initialise: plan alone runs.
    write_root(&[("a", "two")]);
    let outcome = runner
        .init_and_plan(&ws, &opts, &PlanRequest::new("tfplan"))
        .await
        .unwrap();
    assert_eq!(outcome.status, PlanStatus::Changes);
    assert_eq!(started(), before + 1, "only plan ran");

    // A new module call is: init runs, and the plan sees the module.
    write_root(&[("a", "two"), ("b", "three")]);
    assert!(matches!(
        runner.init_if_needed(&ws, &opts).await.unwrap(),
        InitRun::Ran(_)
    ));
    // Terraform's own state of the directory wins over the record: with the installed
    // modules gone, plan is refused, init runs, and the plan is made after all.
    std::fs::remove_dir_all(dir.path().join(".terraform/modules")).unwrap();
    let before = started();
    let outcome = runner
        .init_and_plan(&ws, &opts, &PlanRequest::new("tfplan"))
        .await
        .unwrap();
    assert_eq!(outcome.status, PlanStatus::Changes);
    assert_eq!(started(), before + 3, "refused plan, init, plan");
    assert_eq!(
        runner.init_if_needed(&ws, &opts).await.unwrap(),
        InitRun::Skipped
    );
}

/// The CLI config that installs the test-only `tollgate/tgtest` provider
/// (`bash tests/tools/install-test-provider.sh` prints it; `tests/run.sh` exports it). In CI
/// its absence is a failure, elsewhere the test says why it is skipped.
fn test_provider_config() -> Option<String> {
    match std::env::var("TOLLGATE_TEST_PROVIDER_CONFIG") {
        Ok(path) if !path.is_empty() => Some(path),
        _ if std::env::var_os("CI").is_some() => {
            panic!("TOLLGATE_TEST_PROVIDER_CONFIG is not set; tests/run.sh installs the provider")
        }
        _ => {
            eprintln!(
                "SKIPPED: set TOLLGATE_TEST_PROVIDER_CONFIG to the path `bash tests/tools/install-test-provider.sh` prints"
            );
            None
        }
    }
}

#[tokio::test]
async fn real_drift_reaches_the_plan_model_redacted() {
    let (Some(bin), Some(cli_config)) = (terraform_binary(), test_provider_config()) else {
        return;
    };
    let runner = TerraformRunner::new(config(bin)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("main.tf"),
        r#"
terraform {
  required_providers {
    # Fully qualified: OpenTofu resolves a bare "tollgate/tgtest" on registry.opentofu.org.
    tgtest = { source = "registry.terraform.io/tollgate/tgtest" }
  }
}
variable "token" {
  type      = string
  sensitive = true
}
resource "tgtest_file" "config" {
  path    = "${path.module}/config.txt"
  content = "v1"
}
resource "tgtest_file" "token" {
  path    = "${path.module}/token.txt"
  content = var.token
}
resource "tgtest_file" "gone" {
  path    = "${path.module}/gone.txt"
  content = "keep"
}
"#,
    )
    .unwrap();
    let ws = Workspace::new(dir.path())
        .with_env("TF_CLI_CONFIG_FILE", &cli_config)
        .with_secret_env("TF_VAR_token", SECRET_TOKEN);
    runner.init(&ws, &InitOptions::default()).await.unwrap();
    let first = runner
        .plan(&ws, &PlanRequest::new("first.tfplan"))
        .await
        .unwrap();
    runner.apply(&ws, &first.saved).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("token.txt")).unwrap(),
        SECRET_TOKEN
    );

    // Someone changes two files and deletes the third outside Terraform.
    std::fs::write(dir.path().join("config.txt"), "edited by hand").unwrap();
    std::fs::write(dir.path().join("token.txt"), "rotated by hand").unwrap();
    std::fs::remove_file(dir.path().join("gone.txt")).unwrap();
    let second = runner
        .plan(&ws, &PlanRequest::new("second.tfplan"))
        .await
        .unwrap();
    assert_eq!(second.status, PlanStatus::Changes);
    let plan = runner.show_plan(&ws, &second.saved).await.unwrap();

    let drift: Vec<(&str, Actions)> = plan
        .resource_drift
        .iter()
        .map(|rc| (rc.address.as_str(), rc.change.actions))
        .collect();
    assert_eq!(
        drift,
        [
            ("tgtest_file.config", Actions::Update),
            ("tgtest_file.gone", Actions::Delete),
            ("tgtest_file.token", Actions::Update),
        ]
    );
    let config = &plan.resource_drift[0].change;
    assert_eq!(config.before["content"], "v1");
    assert_eq!(config.after["content"], "edited by hand");
    let summary = plan.summary();
    assert_eq!(summary.drifted, 3, "{summary:?}");
    // Terraform puts things back: two updates and a re-create.
    assert_eq!((summary.add, summary.change), (1, 2), "{summary:?}");

    // The drifted secret (the state's value) never leaves the model unredacted.
    let redacted = plan.redacted(Some(ws.redactor())).as_value().to_string();
    assert!(!redacted.contains(SECRET_TOKEN), "{redacted}");
    assert!(
        redacted.contains("edited by hand"),
        "non-secret drift stays readable"
    );
    let masked = plan.redacted(None);
    let token = &masked.as_value()["resource_drift"][2]["change"];
    assert_eq!(token["before"]["content"], SENSITIVE_PLACEHOLDER, "{token}");
}

/// A provider the mirror does not have, or no release of it matching the constraint, will
/// not appear by retrying: a configuration error (a person fixes the mirror or the
/// constraint), not a transient one, as Terraform and OpenTofu word it.
#[tokio::test]
async fn a_provider_the_mirror_lacks_is_a_configuration_error() {
    let (Some(bin), Some(cli_config)) = (terraform_binary(), test_provider_config()) else {
        return;
    };
    let runner = TerraformRunner::new(config(bin)).unwrap();
    for requirement in [
        r#"absent = { source = "registry.terraform.io/tollgate/absent" }"#,
        r#"tgtest = { source = "registry.terraform.io/tollgate/tgtest", version = ">= 999.0.0" }"#,
    ] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("main.tf"),
            format!("terraform {{\n  required_providers {{\n    {requirement}\n  }}\n}}\n"),
        )
        .unwrap();
        let ws = Workspace::new(dir.path()).with_env("TF_CLI_CONFIG_FILE", &cli_config);
        let err = runner.init(&ws, &InitOptions::default()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{requirement}: {err}");
    }
}

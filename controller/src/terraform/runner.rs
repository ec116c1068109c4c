//! The runner: a shared concurrency limit and counters, and one method per Terraform
//! command.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tokio::sync::{Mutex, OnceCell, Semaphore};

use crate::plan::{Plan, PlanError, SavedPlan};

use super::*;

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

pub(super) struct Inner {
    pub(super) config: RunnerConfig,
    pub(super) slots: Arc<Semaphore>,
    pub(super) running: Arc<AtomicUsize>,
    pub(super) peak: AtomicUsize,
    pub(super) started: AtomicU64,
    pub(super) init_lock: Mutex<()>,
    pub(super) version: OnceCell<TerraformVersion>,
    /// Set on shutdown: no new process starts.
    pub(super) closed: std::sync::atomic::AtomicBool,
    /// Cancelled when a shutdown's grace period is over: every running process is stopped.
    pub(super) interrupt: CancelToken,
    /// Where its processes run now: what tells a lock's holder gone ([`LockHolders`]).
    pub(super) active: holder::ActiveDirs,
    /// This host's name, as Terraform writes it into the locks it takes.
    pub(super) host: String,
}

/// Runs Terraform commands. Cheap to clone; clones share the concurrency limit and counters.
#[derive(Clone)]
pub struct TerraformRunner {
    pub(super) inner: Arc<Inner>,
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
                active: holder::ActiveDirs::default(),
                host: holder::this_host(),
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
    pub async fn shut_down(&self, grace: std::time::Duration) -> Shutdown {
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
        if req.refresh_only {
            args.push("-refresh-only".into());
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
        if !holder::is_lock_id(lock_id) {
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

impl LockHolders for TerraformRunner {
    fn holder(&self, lock: &LockInfo, dir: &Path) -> Holder {
        holder::judge_in_process(lock, &self.inner.host, self.inner.active.contains(dir))
    }
}

/// Writes `bytes` to a new file readable only by the owner; fails if it exists.
pub(super) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

pub(super) struct RemoveOnDrop(pub(super) PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

//! Running one Terraform process: bounded, redacted capture; timeout and cancellation with
//! SIGINT, a grace period, then SIGKILL of the process group.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt as _};
use tokio::process::{Child, Command};
use tokio::sync::watch;

use super::capture::BoundedCapture;
use super::error::{CommandOutput, Termination};
use crate::redact::Redactor;

/// Cancels Terraform commands: cancelling makes a running command stop the way a timeout does
/// (SIGINT, grace period, SIGKILL) and a command waiting for a slot give up. Clones share
/// the same state.
#[derive(Clone, Debug)]
pub struct CancelToken {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for CancelToken {
    fn default() -> Self {
        Self::new()
    }
}

impl CancelToken {
    /// A token that is not cancelled.
    #[must_use]
    pub fn new() -> Self {
        let (tx, _rx) = watch::channel(false);
        Self { tx: Arc::new(tx) }
    }

    /// Cancels: every command using this token (now or later) stops.
    pub fn cancel(&self) {
        self.tx.send_replace(true);
    }

    /// Whether [`CancelToken::cancel`] was called.
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        *self.tx.borrow()
    }

    /// Resolves when the token is cancelled.
    pub async fn cancelled(&self) {
        let mut rx = self.tx.subscribe();
        // The sender lives as long as `self`, so this only returns once cancelled.
        let _ = rx.wait_for(|c| *c).await;
    }
}

/// What to run.
pub(crate) struct Spec {
    pub(crate) command: &'static str,
    pub(crate) program: PathBuf,
    pub(crate) args: Vec<OsString>,
    pub(crate) dir: PathBuf,
    /// Variables to remove from the inherited environment.
    pub(crate) env_remove: Vec<OsString>,
    /// Whether to clear the inherited environment, keeping only `env_keep` (prefixes end
    /// with `*`).
    pub(crate) env_keep: Option<Vec<String>>,
    pub(crate) env: Vec<(OsString, OsString)>,
    pub(crate) timeout: Duration,
    pub(crate) grace: Duration,
    pub(crate) output_limit: usize,
    /// If set, stdout is kept whole up to this many bytes (for JSON) instead of head+tail.
    pub(crate) raw_stdout_limit: Option<usize>,
}

/// How the process ended.
pub(crate) enum Ended {
    Exited(ExitStatus),
    TimedOut(Termination),
    Cancelled(Termination),
}

pub(crate) struct Finished {
    pub(crate) ended: Ended,
    pub(crate) output: CommandOutput,
    /// Whole, unredacted stdout, when `raw_stdout_limit` was set and it fit.
    pub(crate) raw_stdout: Option<Vec<u8>>,
}

/// A process slot: holds one permit of the runner's semaphore and counts as running until it
/// is dropped, which happens only once the process has ended (also when a run is abandoned
/// and the process is stopped in the background).
pub(crate) struct Slot {
    pub(crate) _permit: tokio::sync::OwnedSemaphorePermit,
    pub(crate) running: Arc<std::sync::atomic::AtomicUsize>,
    /// Counts the process in its working directory (see [`super::LockHolders`]).
    pub(crate) _active: super::holder::ActiveRun,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.running
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Ends the process group if the run is abandoned (its future dropped) while the process
/// still runs: SIGINT, grace, SIGKILL, in a background task that keeps the slot until done.
struct Guard {
    child: Option<Child>,
    slot: Option<Slot>,
    grace: Duration,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let slot = self.slot.take();
        let Some(mut child) = self.child.take() else {
            return;
        };
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        let grace = self.grace;
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move {
                    let how = terminate(&mut child, grace).await;
                    tracing::warn!(termination = ?how, "abandoned terraform process stopped");
                    drop(slot);
                });
            }
            Err(_) => {
                if let Some(pid) = child.id() {
                    signal_group(pid, rustix::process::Signal::KILL);
                }
            }
        }
    }
}

fn pid_of(raw: u32) -> Option<rustix::process::Pid> {
    i32::try_from(raw)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
}

fn signal_process(pid: u32, sig: rustix::process::Signal) {
    if let Some(pid) = pid_of(pid)
        && let Err(e) = rustix::process::kill_process(pid, sig)
    {
        tracing::debug!(error = %e, "signal to terraform process failed (it may have exited)");
    }
}

/// Signals the process group led by `pid` (the child is started as its own group leader).
fn signal_group(pid: u32, sig: rustix::process::Signal) {
    if let Some(pid) = pid_of(pid)
        && let Err(e) = rustix::process::kill_process_group(pid, sig)
    {
        tracing::debug!(error = %e, "signal to terraform process group failed (it may have exited)");
    }
}

/// SIGINT to Terraform (as Ctrl-C would: it stops its operation, writes state and releases its
/// lock), wait up to `grace`, then SIGKILL its whole process group. Either way, whatever is
/// left of the group (provisioner children) is killed afterwards so no orphan keeps running or
/// holds the output pipes open.
async fn terminate(child: &mut Child, grace: Duration) -> Termination {
    let Some(pid) = child.id() else {
        // Already reaped.
        return Termination::Interrupted;
    };
    signal_process(pid, rustix::process::Signal::INT);
    let how = match tokio::time::timeout(grace, child.wait()).await {
        Ok(_) => Termination::Interrupted,
        Err(_) => {
            signal_group(pid, rustix::process::Signal::KILL);
            let _ = child.wait().await;
            Termination::Killed
        }
    };
    // The group id stays valid while any member lives, so this reaches only leftovers.
    signal_group(pid, rustix::process::Signal::KILL);
    how
}

async fn read_bounded<R: AsyncRead + Unpin>(
    mut reader: R,
    mut capture: BoundedCapture,
) -> BoundedCapture {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => capture.push(buf.get(..n).unwrap_or_default()),
        }
    }
    capture
}

/// The files a command's output goes to: `.tollgate-output/` in its working directory, 0600
/// (output can hold secret values), removed once read.
struct OutputFiles {
    stdout: PathBuf,
    stderr: PathBuf,
}

static OUTPUT_SEQUENCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl OutputFiles {
    fn create(dir: &std::path::Path, command: &str) -> Result<Self, std::io::Error> {
        let out = dir.join(".tollgate-output");
        std::fs::create_dir_all(&out)?;
        let n = OUTPUT_SEQUENCE.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let stem = format!("{command}-{}-{n}", std::process::id());
        Ok(Self {
            stdout: out.join(format!("{stem}.stdout")),
            stderr: out.join(format!("{stem}.stderr")),
        })
    }

    fn open(&self, path: &std::path::Path) -> Result<std::fs::File, std::io::Error> {
        use std::os::unix::fs::OpenOptionsExt as _;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
    }

    async fn read(&self, path: &std::path::Path, capture: BoundedCapture) -> BoundedCapture {
        match tokio::fs::File::open(path).await {
            Ok(file) => read_bounded(file, capture).await,
            Err(_) => capture,
        }
    }

    fn remove(&self) {
        let _ = std::fs::remove_file(&self.stdout);
        let _ = std::fs::remove_file(&self.stderr);
    }
}

/// Runs one process to its end (or its timeout/cancellation).
pub(crate) async fn run(
    spec: Spec,
    slot: Slot,
    redactor: &Redactor,
    cancel: &[&CancelToken],
) -> Result<Finished, std::io::Error> {
    // Output goes to private files, not pipes: if the controller dies mid-apply, Terraform
    // is not killed by a broken pipe halfway through writing state; it finishes, records
    // state and releases its lock, and the restarted controller finds the work done.
    let output_files = OutputFiles::create(&spec.dir, spec.command)?;
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args)
        .current_dir(&spec.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::from(output_files.open(&output_files.stdout)?))
        .stderr(Stdio::from(output_files.open(&output_files.stderr)?))
        // Its own process group: the runner can signal Terraform and its children as one,
        // and a Ctrl-C aimed at the controller's group does not reach them uncontrolled.
        .process_group(0)
        .kill_on_drop(false);
    if let Some(keep) = &spec.env_keep {
        cmd.env_clear();
        for (k, v) in std::env::vars_os() {
            let name = k.to_string_lossy();
            let kept = keep.iter().any(|p| match p.strip_suffix('*') {
                Some(prefix) => name.starts_with(prefix),
                None => name == p.as_str(),
            });
            if kept {
                cmd.env(&k, &v);
            }
        }
    }
    for k in &spec.env_remove {
        cmd.env_remove(k);
    }
    for (k, v) in &spec.env {
        cmd.env(k, v);
    }

    let started = Instant::now();
    let child = cmd.spawn()?;
    let margin = redactor.max_len();
    let stdout_capture = || match spec.raw_stdout_limit {
        Some(limit) => BoundedCapture::new(limit, margin),
        None => BoundedCapture::new(spec.output_limit, margin),
    };
    let stderr_capture = || BoundedCapture::new(spec.output_limit, margin);

    let mut guard = Guard {
        child: Some(child),
        slot: Some(slot),
        grace: spec.grace,
    };
    let ended = {
        let Some(child) = guard.child.as_mut() else {
            return Err(std::io::Error::other("child process vanished"));
        };
        let cancelled = async {
            if cancel.is_empty() {
                std::future::pending::<()>().await;
            }
            futures::future::select_all(cancel.iter().map(|c| Box::pin(c.cancelled()))).await;
        };
        tokio::select! {
            status = child.wait() => Ended::Exited(status?),
            () = tokio::time::sleep(spec.timeout) => {
                tracing::warn!(command = spec.command, timeout_s = spec.timeout.as_secs_f64(), "terraform command timed out; sending SIGINT");
                Ended::TimedOut(terminate(child, spec.grace).await)
            }
            () = cancelled => {
                tracing::warn!(command = spec.command, "terraform command cancelled; sending SIGINT");
                Ended::Cancelled(terminate(child, spec.grace).await)
            }
        }
    };
    // The process has ended: nothing for the guard to do; the slot is free again.
    guard.child = None;
    drop(guard);

    let stdout = output_files
        .read(&output_files.stdout, stdout_capture())
        .await;
    let stderr = output_files
        .read(&output_files.stderr, stderr_capture())
        .await;
    output_files.remove();
    let exit_code = match &ended {
        Ended::Exited(status) => status.code(),
        _ => None,
    };
    let stdout_text = if spec.raw_stdout_limit.is_some() {
        // Machine-readable output (plan JSON, outputs) holds values Terraform marks sensitive,
        // which the redactor does not know: it is returned to the caller, never kept here.
        stdout.withheld()
    } else {
        stdout.finish(redactor)
    };
    let output = CommandOutput {
        command: spec.command.to_owned(),
        exit_code,
        stdout: stdout_text,
        stderr: stderr.finish(redactor),
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    let raw_stdout = if spec.raw_stdout_limit.is_some() {
        stdout.into_raw()
    } else {
        None
    };
    Ok(Finished {
        ended,
        output,
        raw_stdout,
    })
}

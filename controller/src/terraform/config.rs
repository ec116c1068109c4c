//! How the runner is configured: the binary, per-command timeouts, limits.

use std::path::PathBuf;
use std::time::Duration;

use super::*;

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

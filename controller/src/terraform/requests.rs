//! What callers ask of the runner (init options, a plan request) and what they get back.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::plan::SavedPlan;

use super::*;

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
    /// Only refresh: the plan shows what changed outside Terraform and changes nothing
    /// but state (`-refresh-only`).
    pub refresh_only: bool,
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
            refresh_only: false,
        }
    }

    /// A refresh-only plan saved to `out`: what drifted, nothing to apply for the Project.
    #[must_use]
    pub fn refresh_only(out: impl Into<PathBuf>) -> Self {
        Self {
            refresh_only: true,
            ..Self::new(out)
        }
    }

    /// A plan of the kind a runner Job is asked for, saved to `out`.
    #[must_use]
    pub fn of_mode(mode: crate::runner_job::PlanMode, out: impl Into<PathBuf>) -> Self {
        use crate::runner_job::PlanMode;
        match mode {
            PlanMode::Changes => Self::new(out),
            PlanMode::Destroy => Self::destroy(out),
            PlanMode::RefreshOnly => Self::refresh_only(out),
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

//! Errors of one reconcile, each naming the step that failed: a failed plan-Secret write, a
//! Checkpoint create and a status save must not all read "Kubernetes API: …" in the
//! Project's status, the log and the metric.

use std::fmt;

/// Errors of one reconcile.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReconcileError {
    /// A Kubernetes API call of one step failed (retried).
    #[error("cannot {step} (Kubernetes API): {source}")]
    Api {
        /// What the controller was doing.
        step: ApiStep,
        /// The API's error.
        source: kube::Error,
    },
    /// Terraform failed.
    #[error(transparent)]
    Terraform(#[from] crate::terraform::TerraformError),
    /// Rendering failed.
    #[error(transparent)]
    Render(#[from] crate::render::RenderError),
    /// The plan could not be read.
    #[error(transparent)]
    Plan(#[from] crate::plan::PlanError),
    /// Pricing failed.
    #[error(transparent)]
    Cost(#[from] crate::cost::CostError),
    /// A saved plan in Secrets is missing or damaged.
    #[error("saved plan {plan_id}: {problem}")]
    PlanStore {
        /// The plan concerned.
        plan_id: String,
        /// What is wrong.
        problem: PlanStoreProblem,
    },
    /// A request body could not be encoded (a bug: report it).
    #[error("cannot encode the {what}: {source}; this is a bug in tollgate, please report it")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// The encoder's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Writing the working directory failed.
    #[error("working directory {path}: {source}")]
    Io {
        /// The path.
        path: std::path::PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Cloud credentials could not be obtained (retried; what needs a person opens a
    /// Credential checkpoint instead).
    #[error(transparent)]
    Credentials(#[from] crate::credentials::CredentialsError),
    /// The Terraform state could not be moved or checked.
    #[error("Terraform state of {project}: {message}")]
    State {
        /// `namespace/name` of the Project.
        project: String,
        /// What is wrong.
        message: String,
    },
}

/// The steps of a reconcile that call the Kubernetes API. Their labels are the metric's
/// `category` values (a fixed set: low cardinality).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApiStep {
    /// Read the latest version of the Project.
    ReadProject,
    /// Add or remove the cleanup finalizer.
    WriteFinalizer,
    /// Write the Project's status.
    WriteStatus,
    /// Store the saved plan in Secrets.
    StorePlan,
    /// Read a saved plan's Secrets.
    ReadPlan,
    /// Delete saved plans no longer needed.
    DeletePlans,
    /// Create a Checkpoint.
    OpenCheckpoint,
    /// Read the Project's Checkpoints.
    ReadCheckpoint,
    /// Mark or delete Checkpoints that no longer apply.
    CloseCheckpoint,
    /// Write the outputs Secret.
    WriteOutputs,
    /// Read the ApprovalPolicies and the labels of the Project's namespace.
    ReadPolicies,
    /// Read the Terraform state Secret.
    ReadState,
    /// Move the Terraform state to the state namespace.
    MoveState,
    /// Delete the Terraform state and its lock after a destroy.
    RemoveState,
    /// Write a Checkpoint's status (phase, timers, notification records).
    WriteCheckpointStatus,
    /// Read the Secrets of the Project's credentials and secret inputs.
    ReadCredentials,
    /// Read or write the applied revisions' inputs (rollback).
    WriteRevisions,
    /// Read or write the namespace's NamespaceBudget ledger.
    ReserveBudget,
    /// Create, read or start a runner Job and its Secrets (`--runner=job`).
    RunnerJob,
}

impl ApiStep {
    /// Every step, for documentation and tests.
    pub const ALL: [ApiStep; 19] = [
        Self::ReadProject,
        Self::WriteFinalizer,
        Self::WriteStatus,
        Self::StorePlan,
        Self::ReadPlan,
        Self::DeletePlans,
        Self::OpenCheckpoint,
        Self::ReadCheckpoint,
        Self::CloseCheckpoint,
        Self::WriteOutputs,
        Self::ReadPolicies,
        Self::ReadState,
        Self::MoveState,
        Self::RemoveState,
        Self::WriteCheckpointStatus,
        Self::ReadCredentials,
        Self::WriteRevisions,
        Self::ReserveBudget,
        Self::RunnerJob,
    ];

    /// The error of this step failing with `source`.
    pub fn failed(self, source: kube::Error) -> ReconcileError {
        ReconcileError::Api { step: self, source }
    }

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::ReadProject => "read_project",
            Self::WriteFinalizer => "write_finalizer",
            Self::WriteStatus => "write_status",
            Self::StorePlan => "store_plan",
            Self::ReadPlan => "read_plan",
            Self::DeletePlans => "delete_plans",
            Self::OpenCheckpoint => "open_checkpoint",
            Self::ReadCheckpoint => "read_checkpoint",
            Self::CloseCheckpoint => "close_checkpoint",
            Self::WriteOutputs => "write_outputs",
            Self::ReadPolicies => "read_policies",
            Self::ReadState => "read_state",
            Self::MoveState => "move_state",
            Self::RemoveState => "remove_state",
            Self::WriteCheckpointStatus => "write_checkpoint_status",
            Self::ReadCredentials => "read_credentials",
            Self::WriteRevisions => "revisions",
            Self::ReserveBudget => "reserve_budget",
            Self::RunnerJob => "runner_job",
        }
    }
}

impl fmt::Display for ApiStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ReadProject => "read the Project",
            Self::WriteFinalizer => "update the Project's finalizers",
            Self::WriteStatus => "write the Project's status",
            Self::StorePlan => "store the saved plan in Secrets",
            Self::ReadPlan => "read the saved plan's Secrets",
            Self::DeletePlans => "delete saved plan Secrets",
            Self::OpenCheckpoint => "create the Checkpoint",
            Self::ReadCheckpoint => "read the Project's Checkpoints",
            Self::CloseCheckpoint => "close Checkpoints that no longer apply",
            Self::WriteOutputs => "write the outputs Secret",
            Self::ReadPolicies => "read the ApprovalPolicies and the namespace labels they select",
            Self::ReadState => "read the Terraform state Secret",
            Self::MoveState => "move the Terraform state Secret to the state namespace",
            Self::RemoveState => "delete the Terraform state and its lock after the destroy",
            Self::WriteCheckpointStatus => "write the Checkpoint's status",
            Self::WriteRevisions => {
                "read or write the applied revisions' inputs (revisions Secret)"
            }
            Self::ReadCredentials => {
                "read the Secrets of the Project's credentials and secret inputs"
            }
            Self::ReserveBudget => "read or write the namespace's NamespaceBudget ledger",
            Self::RunnerJob => "create, read or start the runner Job and its Secrets",
        })
    }
}

/// What is wrong with a saved plan's Secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanStoreProblem {
    /// No Secret holds the plan (a caller looks elsewhere, or plans again).
    #[error("no Secret holds this plan; a new plan will be made")]
    NotStored,
    /// One of the Secrets the plan is split across is gone.
    #[error("Secret {0} is missing; a new plan will be made once the Project changes")]
    ChunkMissing(String),
    /// The plan cannot be compressed or decompressed.
    #[error("cannot {0}")]
    Codec(String),
    /// The stored bytes cannot be read back as a plan: `found` is the sha256 of the
    /// stored (compressed) bytes, recorded for the investigation.
    #[error(
        "Secret {secret} does not hold a readable plan ({reason}; stored bytes sha256 {found}); it will not be applied"
    )]
    Unreadable {
        /// The (first) Secret the plan was read from.
        secret: String,
        /// Why it cannot be read.
        reason: String,
        /// sha256 of the compressed bytes found.
        found: String,
    },
    /// The stored bytes are not the approved plan.
    #[error(
        "Secret {secret} holds a plan with digest {found}, not the approved {expected}; it will not be applied"
    )]
    DigestMismatch {
        /// The (first) Secret the plan was read from.
        secret: String,
        /// The approved digest.
        expected: String,
        /// The digest of the plan found.
        found: String,
    },
}

impl ReconcileError {
    /// A short, stable label for metrics and Events; see docs/architecture.md for the set.
    pub fn category(&self) -> &'static str {
        match self {
            Self::Api { step, .. } => step.label(),
            Self::Terraform(_) => "terraform",
            Self::Render(_) => "render",
            Self::Plan(_) => "plan",
            Self::Cost(_) => "cost",
            Self::PlanStore { .. } => "plan_store",
            Self::Io { .. } => "io",
            Self::Encode { .. } => "encode",
            Self::State { .. } => "state",
            Self::Credentials(_) => "credentials",
        }
    }
}

/// Names the step of a Kubernetes API call: `api.create(…).await.during(ApiStep::OpenCheckpoint)?`.
pub trait During<T> {
    /// The result, its error tagged with `step`.
    fn during(self, step: ApiStep) -> Result<T, ReconcileError>;
}

impl<T> During<T> for Result<T, kube::Error> {
    fn during(self, step: ApiStep) -> Result<T, ReconcileError> {
        self.map_err(|source| step.failed(source))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn every_step_has_its_own_label() {
        let labels: std::collections::BTreeSet<_> =
            ApiStep::ALL.iter().map(|s| s.label()).collect();
        assert_eq!(labels.len(), ApiStep::ALL.len());
        for label in labels {
            assert!(
                label.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{label}"
            );
        }
    }

    #[test]
    fn an_api_error_names_its_step() {
        let err: Result<(), _> = Err(kube::Error::Api(Box::new(
            kube::core::Status::failure("conflict", "Conflict").with_code(409),
        )));
        let err = err.during(ApiStep::StorePlan).unwrap_err();
        assert_eq!(err.category(), "store_plan");
        assert!(
            err.to_string()
                .starts_with("cannot store the saved plan in Secrets (Kubernetes API): "),
            "{err}"
        );
    }
}

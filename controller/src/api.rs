//! The tollgate API: `Project` and `Checkpoint` in group `tollgate.dev`, version `v1alpha1`.
//!
//! Doc comments on these types become `kubectl explain` text, so they are written for the
//! platform team and the Technical Operator, not for Rust readers.

mod checkpoint;
mod common;
mod project;
mod validation;

pub use checkpoint::{
    ApproverSet, Checkpoint, CheckpointCost, CheckpointPhase, CheckpointSpec, CheckpointStatus,
    CheckpointSummary, CheckpointType, Decision, NotificationRecord, PlanRef, ProjectRef, Sla,
};
pub use validation::{FieldError, SCHEMA_PATTERNS, validate_project};
pub use common::{DURATION_PATTERN, MONEY_PATTERN, conditions_schema};
pub use project::{
    ApprovalPolicy, ApprovalTrigger, AssumeRole, AwsCloud, AwsCredentials, Backend, BackendType,
    Budget, CheckpointRefStatus, CloudSpec, Component, CostStatus, DeletionPolicy, DriftAction,
    DriftDetection, EscalationPolicy, HistoryEntry, KubernetesBackend, LastApplied, LocalBackend,
    NotificationChannel, PlanStatus, PlanSummaryStatus, Project, ProjectPhase, ProjectSpec,
    ProjectStatus, ResourceCost, S3Backend, SecretKeyRef, SlaPolicy,
};

/// API group of every tollgate kind.
pub const GROUP: &str = "tollgate.dev";
/// API version of every tollgate kind.
pub const VERSION: &str = "v1alpha1";

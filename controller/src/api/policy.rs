//! `ApprovalPolicy`: what may skip a person, decided by the people who hold `approve`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::ApproverSet;
use super::common::MONEY_PATTERN;
use super::project::{ApprovalTrigger, ENVIRONMENT_PATTERN, NotificationChannel, SlaPolicy};

/// An approval policy, owned by Technical Operators and cluster admins (RBAC: ClusterRole
/// `tollgate-policy-admin`; platform users can only read it). It says, for the namespaces it
/// selects, which kinds of change may apply without a person, up to which cost increase,
/// the monthly budget a Project may have without a BudgetIncrease approval, which
/// environments Projects there may declare, and who decides. A Project's own
/// `spec.approval`/`spec.budget` can only tighten what the policies that select it allow;
/// with no policy selecting it, every change needs a person.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "tollgate.dev",
    version = "v1alpha1",
    kind = "ApprovalPolicy",
    doc = "What may apply without a person in the namespaces it selects, owned by Technical Operators. Projects may only tighten it.",
    shortname = "ap",
    category = "tollgate",
    printcolumn(
        name = "Auto-approve",
        type_ = "string",
        json_path = ".spec.autoApprove"
    ),
    printcolumn(
        name = "Threshold",
        type_ = "string",
        json_path = ".spec.costIncreaseThreshold"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalPolicySpec {
    /// Namespaces this policy applies to, by label. Absent: every namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// Environments this policy applies to (a Project's `spec.environment`). Empty: all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50), inner(pattern(ENVIRONMENT_PATTERN)))]
    pub environments: Vec<String>,
    /// Environments Projects in the selected namespaces may declare. Empty: no constraint.
    /// A Project declaring another environment gets nothing pre-approved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50), inner(pattern(ENVIRONMENT_PATTERN)))]
    pub allowed_environments: Vec<String>,
    /// Kinds of change that may apply without a checkpoint. The controller's own rules
    /// (protected environments, stateful destroys, IAM, public exposure, unpriced resources,
    /// budget overruns) still need a person.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub auto_approve: Vec<ApprovalTrigger>,
    /// Monthly cost increase in USD that may apply without a person. Default `"0"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(MONEY_PATTERN))]
    pub cost_increase_threshold: Option<String>,
    /// Monthly budget in USD a Project may declare without a person approving it: a
    /// `spec.budget.monthlyLimit` above it opens a BudgetIncrease checkpoint, and until that
    /// is approved plans are gated under this value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(MONEY_PATTERN))]
    pub project_monthly_budget: Option<String>,
    /// Who may decide the checkpoints of the Projects it selects (in addition to holding
    /// the RBAC verb `approve`), and whether the last person who changed a Project is
    /// excluded. A Project may narrow this list, never widen it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvers: Option<ApproverSet>,
    /// Deadlines of the selected Projects' checkpoints (over the controller's
    /// `--sla-defaults`). A Project may shorten them, never lengthen them; escalation
    /// channels add up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla: Option<SlaPolicy>,
    /// Channels every selected Project's checkpoints notify besides the Project's own (a
    /// Project cannot remove them). The Secrets they name are read in the Project's
    /// namespace; webhooks are signed with that namespace's key (ConfigMap
    /// `tollgate-notifications`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub notifications: Vec<NotificationChannel>,
}

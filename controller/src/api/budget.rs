//! `NamespaceBudget`: the monthly cap on all Projects of one namespace, owned by Technical
//! Operators, and the ledger of what each Project holds of it.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::MONEY_PATTERN;
use super::project::NotificationChannel;

/// The warning threshold when `spec.warnAtPercent` is not set.
pub const DEFAULT_WARN_AT_PERCENT: u8 = 80;

/// The monthly cap on the sum of every Project's estimated monthly cost in its namespace.
/// Written by Technical Operators (ClusterRole `tollgate-policy-admin`); platform users
/// (`edit`, `view`) only read it, so the team whose spending it caps cannot loosen it. Its
/// status is the controller's ledger: each Project's reservation, written with a
/// resourceVersion precondition, so two Projects planned at the same time cannot both slip
/// under the cap. A plan that would take the namespace over the cap needs a person
/// (a `BudgetIncrease` checkpoint). At most one per namespace, named `budget`.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "tollgate.dev",
    version = "v1alpha1",
    kind = "NamespaceBudget",
    doc = "The monthly cap on all Projects' estimated cost in a namespace, owned by Technical Operators; its status is the controller's reservation ledger.",
    namespaced,
    status = "NamespaceBudgetStatus",
    shortname = "nsbudget",
    category = "tollgate",
    validation = Rule::new("self.metadata.name == 'budget'").message("a namespace has one NamespaceBudget and it is named `budget`"),
    printcolumn(
        name = "Limit",
        type_ = "string",
        json_path = ".spec.monthlyLimit",
        description = "Monthly cap in USD"
    ),
    printcolumn(
        name = "Used",
        type_ = "string",
        json_path = ".status.used",
        description = "Sum of the Projects' reservations in USD per month"
    ),
    printcolumn(
        name = "Headroom",
        type_ = "string",
        json_path = ".status.headroom",
        description = "Limit minus used (negative once a person approved going over)"
    ),
    printcolumn(
        name = "Used%",
        type_ = "integer",
        json_path = ".status.usedPercent"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceBudgetSpec {
    /// The cap in USD per month on the sum of the Projects' estimated monthly costs, as a
    /// decimal string such as `"500"`.
    #[schemars(pattern(MONEY_PATTERN))]
    pub monthly_limit: String,
    /// When a reservation takes the namespace's use to this share of the limit or above
    /// (from below), tollgate notifies without blocking anything. Default 80.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub warn_at_percent: Option<u8>,
    /// Channels told about the warning, besides the namespace's `tollgate-notifications`
    /// routes that take the `BudgetWarning` event.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub notifications: Vec<NotificationChannel>,
}

/// The ledger, written only by the controller.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceBudgetStatus {
    /// What each Project holds: the estimated monthly cost of its latest plan (waiting for
    /// a decision or applied).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1000))]
    pub reservations: Vec<BudgetReservation>,
    /// Sum of the reservations, USD per month (when last written).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used: Option<String>,
    /// `monthlyLimit` minus `used` when last written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headroom: Option<String>,
    /// `used` as a whole percentage of the limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_percent: Option<i64>,
}

/// One Project's share of the namespace budget.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct BudgetReservation {
    /// The Project's name.
    pub project: String,
    /// The plan the reservation was made for.
    pub plan_id: String,
    /// Its estimated monthly cost in USD.
    pub monthly: String,
    /// The BudgetIncrease checkpoint whose approval admitted it over the cap, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by_checkpoint: Option<String>,
}

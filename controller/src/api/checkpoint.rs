use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, MicroTime, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{DURATION_PATTERN, conditions_schema};

/// Key of the plan review JSON (`crate::plan::PlanReview`) in the ConfigMap
/// [`review_config_map_name`] next to a Checkpoint.
pub const REVIEW_KEY: &str = "review.json";
/// Label on that ConfigMap naming its Checkpoint.
pub const REVIEW_CHECKPOINT_LABEL: &str = "tollgate.dev/checkpoint";

/// Name of the ConfigMap holding the plan review of checkpoint `checkpoint` (readable with
/// `tollgate-approver`, unlike the saved plan).
pub fn review_config_map_name(checkpoint: &str) -> String {
    format!("{checkpoint}-review")
}

/// A Checkpoint: a decision a person must take before tollgate changes infrastructure.
/// The controller writes the spec (immutable); a Technical Operator decides by writing
/// `status.decision` and `status.reason` through the status subresource, e.g.
/// `kubectl patch checkpoint NAME --subresource=status --type=merge -p
/// '{"status":{"decision":"Approved","reason":"reviewed"}}'`.
// Each `printcolumn(...)` repeats `type_`, which clippy mistakes for a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "tollgate.dev",
    version = "v1alpha1",
    kind = "Checkpoint",
    doc = "A Checkpoint: a decision a person must take before tollgate changes infrastructure. Decide with `kubectl patch checkpoint NAME --subresource=status --type=merge -p '{\"status\":{\"decision\":\"Approved\",\"reason\":\"...\"}}'`.",
    namespaced,
    status = "CheckpointStatus",
    shortname = "cp",
    category = "tollgate",
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.type"),
    printcolumn(
        name = "Project",
        type_ = "string",
        json_path = ".spec.projectRef.name"
    ),
    printcolumn(
        name = "Project-NS",
        type_ = "string",
        priority = 1,
        json_path = ".spec.projectRef.namespace"
    ),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Cost Δ",
        type_ = "string",
        json_path = ".spec.summary.cost.delta",
        description = "Change of the estimated monthly cost in USD"
    ),
    printcolumn(name = "Respond-by", type_ = "date", json_path = ".spec.sla.respondBy"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(cel, validation = Rule::new("self == oldSelf").message("Checkpoint spec is immutable: it is written once by the controller"))]
#[serde(rename_all = "camelCase")]
pub struct CheckpointSpec {
    /// What kind of decision this is.
    #[serde(rename = "type")]
    pub checkpoint_type: CheckpointType,
    /// The Project this checkpoint belongs to (in the same namespace unless
    /// `projectRef.namespace` says otherwise).
    pub project_ref: ProjectRef,
    /// The exact saved plan an approval applies. Any other plan is never applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_ref: Option<PlanRef>,
    /// What the plan changes and costs, for the person deciding.
    pub summary: CheckpointSummary,
    /// Why a person must decide (the gate's reasons).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub reasons: Vec<String>,
    /// When the checkpoint was opened, to the microsecond: several checkpoints of a Project
    /// opened within one second are still ordered (retention keeps the newest).
    pub requested_at: MicroTime,
    /// Deadlines for the decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla: Option<Sla>,
    /// Who may decide, in addition to holding the RBAC verb `approve` on checkpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvers: Option<ApproverSet>,
    /// Who last changed the Project's spec, as recorded by admission from the authenticated
    /// request. With `approvers.forbidSelfApproval` this person cannot decide.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
    /// The approval policy in force when the checkpoint opened: which ApprovalPolicies
    /// select the Project, what they pre-approve, and what the Project asked for that they
    /// do not allow; so the person deciding sees why this was not pre-approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_policy: Option<super::EffectivePolicyStatus>,
    /// What the Rego policies said of the plan: its `deny` findings are among the
    /// reasons, and approving them is recorded as an override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<super::PolicyReport>,
    /// A Credential checkpoint about a Kubernetes Secret: the Secret (in the Project's
    /// namespace) and the keys it must hold, so that `tollgate dashboard` can offer a form
    /// that creates it with the person's own identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<RequestedSecret>,
}

/// A Secret a Credential checkpoint asks a person to create (or complete).
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RequestedSecret {
    /// The Secret's name, in the Project's namespace.
    #[schemars(length(max = 253))]
    pub name: String,
    /// The keys it must hold.
    #[schemars(length(max = 20))]
    pub keys: Vec<String>,
}

/// Kinds of checkpoint.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckpointType {
    /// Approve a plan before it is applied.
    PlanApproval,
    /// Approve destroying the Project's infrastructure.
    Destroy,
    /// Approve a plan whose cost exceeds the budget.
    BudgetIncrease,
    /// Credentials are missing or invalid; a person must fix them.
    Credential,
    /// A manual step (e.g. force-unlock of a stuck state lock).
    ManualOperation,
    /// A run failed and retries are exhausted.
    FailureEscalation,
}

/// Reference to the Project a checkpoint belongs to.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProjectRef {
    /// Name of the Project.
    pub name: String,
    /// Namespace of the Project, set when the checkpoint lives elsewhere: a Destroy
    /// checkpoint of a Project whose namespace is being deleted is opened in the
    /// controller's state namespace (`kubectl get cp -A` finds it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// Reference to a saved plan.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PlanRef {
    /// Identifier of the saved plan.
    pub id: String,
    /// sha256 (hex) of the saved plan file.
    #[schemars(pattern(r"^[0-9a-f]{64}$"))]
    pub digest: String,
}

/// Human summary of the change.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointSummary {
    /// One-line description, e.g. `3 to add, 1 to change, 0 to destroy`.
    pub text: String,
    /// Resources to create.
    pub add: i64,
    /// Resources to update in place.
    pub change: i64,
    /// Resources to destroy (including replacements).
    pub destroy: i64,
    /// Changed addresses with their action, e.g. `create module.app.terraform_data.this`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub changes: Vec<String>,
    /// Risk flags raised by the plan, as `<kind> <address>: <detail>`, e.g.
    /// `StatefulDestroy module.db.aws_db_instance.this: …`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub risks: Vec<String>,
    /// Cost before and after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<CheckpointCost>,
}

/// Monthly cost before and after the change, in USD decimal strings.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointCost {
    /// Estimated monthly cost before.
    pub before: String,
    /// Estimated monthly cost after.
    pub after: String,
    /// After minus before.
    pub delta: String,
    /// The Project's monthly budget, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<String>,
}

/// Deadlines of a checkpoint.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Sla {
    /// A decision is due by then.
    pub respond_by: Time,
    /// Escalated if still pending then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalate_at: Option<Time>,
    /// Expires (nothing applied) if still pending then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_at: Option<Time>,
    /// A reminder every this long after opening while still pending (from the
    /// controller's configuration), e.g. `30m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(DURATION_PATTERN), length(max = 32))]
    pub remind_every: Option<String>,
}

/// Users and groups allowed to decide.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ApproverSet {
    /// Usernames as Kubernetes authenticates them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub users: Vec<String>,
    /// Group names as Kubernetes authenticates them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub groups: Vec<String>,
    /// The person who last changed the Project (`requestedBy`) may not decide (four eyes).
    #[serde(default)]
    pub forbid_self_approval: bool,
}

/// A person's decision. `Approved` and `Rejected` answer every checkpoint type but
/// `FailureEscalation`, which is answered with `Retry`, `Rollback` or `Abandon` (admission
/// refuses any other pairing).
#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Apply exactly the referenced plan.
    Approved,
    /// Do not apply; nothing changes.
    Rejected,
    /// FailureEscalation: apply the failed plan again (a plan whose state moved on is
    /// planned again and goes through the gate).
    Retry,
    /// FailureEscalation: plan the last applied revision again; that plan goes through
    /// the gate like any change.
    Rollback,
    /// FailureEscalation: drop the failed plan; the Project stays `Failed` until its spec
    /// (or the `tollgate.dev/replan` annotation) changes.
    Abandon,
}

impl Decision {
    /// The decisions that answer a checkpoint of type `checkpoint_type`.
    #[must_use]
    pub fn allowed_for(checkpoint_type: CheckpointType) -> &'static [Decision] {
        match checkpoint_type {
            CheckpointType::FailureEscalation => {
                &[Decision::Retry, Decision::Rollback, Decision::Abandon]
            }
            _ => &[Decision::Approved, Decision::Rejected],
        }
    }

    /// Whether the decision lets something go ahead (the checkpoint's phase is then
    /// `Approved`); `Rejected` and `Abandon` stop (`Rejected`).
    #[must_use]
    pub fn goes_ahead(self) -> bool {
        matches!(
            self,
            Decision::Approved | Decision::Retry | Decision::Rollback
        )
    }

    /// The verb and its past participle: `("approve", "approved")`.
    #[must_use]
    pub fn verb(self) -> (&'static str, &'static str) {
        match self {
            Decision::Approved => ("approve", "approved"),
            Decision::Rejected => ("reject", "rejected"),
            Decision::Retry => ("retry", "retried"),
            Decision::Rollback => ("roll back", "rolled back"),
            Decision::Abandon => ("abandon", "abandoned"),
        }
    }
}

/// Status of a Checkpoint. `decision` and `reason` are written by a Technical Operator;
/// everything else by the controller and the admission webhook.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(cel, validation = Rule::new("!has(oldSelf.decision) || (has(self.decision) && self.decision == oldSelf.decision)").message("a decision cannot be changed once made"))]
pub struct CheckpointStatus {
    /// `Approved` or `Rejected`, written by the person deciding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    /// Why, in the decider's words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub reason: Option<String>,
    /// Lifecycle phase, written by the controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<CheckpointPhase>,
    /// Who decided, taken from the authenticated request, never from user input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    /// When the decision was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<Time>,
    /// Written by tollgate's admission webhook with the decision: an HMAC under a key only
    /// the controller holds, over the checkpoint, its plan digest, the decision, decidedBy,
    /// decidedAt and reason. The controller acts only on a decision whose seal verifies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub decision_seal: Option<String>,
    /// Reminders fired so far (the SLA timer), written by the controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub reminders_sent: Option<i32>,
    /// Notifications sent about this checkpoint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub notifications: Vec<NotificationRecord>,
    /// Events every channel has been told about (or given up on), e.g. `Opened`,
    /// `Reminder#2`: a restarted controller sends none of them again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub notified_events: Vec<String>,
    /// How applying the approved plan ended, written by the controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply_outcome: Option<ApplyOutcome>,
    /// kstatus conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
}

/// How applying a checkpoint's approved plan ended.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ApplyOutcome {
    /// Whether the apply succeeded.
    pub succeeded: bool,
    /// When it ended.
    pub at: Time,
    /// What happened (a failure's Terraform error, redacted).
    #[schemars(length(max = 4096))]
    pub message: String,
}

/// Lifecycle of a checkpoint.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckpointPhase {
    /// Waiting for a decision.
    Pending,
    /// Approved; the plan is (being) applied.
    Approved,
    /// Rejected; nothing is applied.
    Rejected,
    /// No decision before the expiry deadline; nothing is applied.
    Expired,
    /// The Project changed, so this plan will never be applied; a new checkpoint replaces it.
    Superseded,
    /// Still pending past the escalation deadline.
    Escalated,
}

/// A notification that was sent.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NotificationRecord {
    /// Channel name.
    pub channel: String,
    /// Event, e.g. `Opened`, `Reminder`, `Escalated`, `Decided`.
    pub event: String,
    /// When it was sent (or, for a failure, when the last attempt gave up).
    pub at: Time,
    /// Idempotency key `<checkpoint uid>/<event>[#<n>]/<channel>`: a delivered key is
    /// never sent again, also after a controller restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 512))]
    pub key: Option<String>,
    /// `Delivered`, or `Failed` after the last attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<DeliveryOutcome>,
    /// Attempts made, over every round of retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<i32>,
    /// Why it failed (never contains a URL, key or password).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub message: Option<String>,
}

/// How a notification delivery ended.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The receiver accepted it.
    Delivered,
    /// Every attempt failed; it may be tried again.
    Failed,
}

//! The Project API (`tollgate.dev/v1alpha1`): spec, status and the types they are made of.
//!
//! Over 600 lines on purpose: it is one CRD's schema, and its doc comments are the API
//! reference (`tollgate api-docs`, docs/api.md); read top to bottom it is the page a user
//! reads. Types shared with other kinds live in `api/common.rs`.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use schemars::{Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use super::common::{DURATION_PATTERN, MONEY_PATTERN, conditions_schema};

/// Names of components: they become Terraform module labels and output prefixes.
pub const COMPONENT_NAME_PATTERN: &str = r"^[a-z][a-z0-9_-]{0,62}$";
/// Names of catalog modules: folders under the catalog root.
pub const MODULE_NAME_PATTERN: &str = r"^[a-z][a-z0-9-]{0,62}$";
/// Environments are free-form labels, but constrained so they are safe in tags and labels.
pub const ENVIRONMENT_PATTERN: &str = r"^[a-z][a-z0-9-]{0,30}$";
/// AWS region names such as `eu-west-1` or `us-gov-west-1`.
pub const AWS_REGION_PATTERN: &str = r"^[a-z]{2}(-[a-z]+)+-[0-9]$";
/// Twelve-digit AWS account ids.
pub const AWS_ACCOUNT_PATTERN: &str = r"^[0-9]{12}$";
/// IAM role ARNs in any partition.
/// S3 bucket names.
pub const S3_BUCKET_PATTERN: &str = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$";
/// DNS labels (Kubernetes Secret name suffixes).
pub const SECRET_SUFFIX_PATTERN: &str = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$";
/// DynamoDB table names.
pub const DYNAMODB_TABLE_PATTERN: &str = r"^[A-Za-z0-9_.-]{3,255}$";
/// Webhook URLs.
pub const WEBHOOK_URL_PATTERN: &str = r"^https?://[^\s]+$";
/// A root module output name as tollgate renders it (`<component>_<output>`).
pub const OUTPUT_NAME_PATTERN: &str = r"^[A-Za-z_][A-Za-z0-9_-]{0,127}$";
/// IAM role ARNs in any partition.
pub const ROLE_ARN_PATTERN: &str =
    r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$";

/// A Project: one environment of one team's infrastructure, declared as components from the
/// module catalog. tollgate renders it to Terraform, plans, prices the plan and applies it
/// only after the approval policy (or a person, through a Checkpoint) allows that exact plan.
// Each `printcolumn(...)` repeats `type_`, which clippy mistakes for a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "tollgate.dev",
    version = "v1alpha1",
    kind = "Project",
    doc = "A Project: one environment of one team's infrastructure, declared as components from the module catalog, planned, priced and applied by tollgate only once approved.",
    namespaced,
    status = "ProjectStatus",
    shortname = "proj",
    validation = Rule::new("size(self.metadata.name) <= 63").message("a Project name has at most 63 characters: tollgate labels the Project's Secrets, Checkpoints and state with it, and a label value has at most 63"),
    category = "tollgate",
    printcolumn(
        name = "Environment",
        type_ = "string",
        json_path = ".spec.environment"
    ),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Monthly",
        type_ = "string",
        json_path = ".status.cost.monthly",
        description = "Estimated monthly cost in USD of the last plan"
    ),
    printcolumn(
        name = "Approval",
        type_ = "string",
        json_path = ".status.checkpointRef.name",
        description = "Checkpoint awaiting a decision"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ProjectSpec {
    /// Environment this Project deploys, e.g. `dev`, `staging` or `production`. Approval
    /// policy treats production environments more strictly, and ApprovalPolicies may
    /// constrain which environments a namespace may declare. Fixed once created: declaring a
    /// production Project `dev` would loosen its gate.
    #[schemars(pattern(ENVIRONMENT_PATTERN))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.environment cannot be changed: it decides how strictly changes are gated; create a new Project for another environment"))]
    pub environment: String,

    /// Cloud account the components are deployed into. Omit it for Projects whose modules
    /// use no cloud provider (such as the `demo` module).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud: Option<CloudSpec>,

    /// Components, each an instance of a module from the catalog with literal inputs.
    #[schemars(length(min = 1, max = 100))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub components: Vec<Component>,

    /// Hard monthly budget. A plan whose estimated monthly cost exceeds it is never applied
    /// without a BudgetIncrease checkpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<Budget>,

    /// Which changes need a person's approval, how fast, and who is told.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ProjectApproval>,

    /// Where Terraform keeps state. Defaults to the `kubernetes` backend in the Project's
    /// namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<Backend>,

    /// Scheduled plans that detect changes made outside tollgate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift_detection: Option<DriftDetection>,

    /// HTTP checks run after each successful apply. All passing sets `Healthy=True`; one
    /// failing (after its retries) opens a `FailureEscalation` checkpoint: `Retry` runs the
    /// checks again, `Rollback` plans the revision before through the gate, `Abandon` leaves
    /// the Project `Failed`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub health_checks: Vec<HealthCheck>,

    /// What happens to the infrastructure when the Project is deleted: `Destroy` (after a
    /// Destroy checkpoint is approved) or `Orphan` (leave it, remove only tollgate's objects).
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,

    /// When true, tollgate runs no Terraform for this Project until it is set back to false.
    #[serde(default)]
    pub suspend: bool,
}

/// The cloud account a Project deploys into.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CloudSpec {
    /// Amazon Web Services account and region.
    pub aws: AwsCloud,
}

/// An AWS account, region and the way tollgate obtains credentials for it.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AwsCloud {
    /// Region the provider is configured for, e.g. `eu-west-1`.
    #[schemars(pattern(AWS_REGION_PATTERN))]
    pub region: String,
    /// Twelve-digit account id. The provider refuses to act in any other account.
    #[schemars(pattern(AWS_ACCOUNT_PATTERN))]
    pub account_id: String,
    /// How credentials are obtained. Omit for ambient credentials (the controller's own
    /// identity, e.g. IRSA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<AwsCredentials>,
}

/// Exactly one credential source, or none for ambient credentials.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(cel, validation = Rule::new("!(has(self.assumeRole) && has(self.secretRef))").message("set at most one of assumeRole and secretRef"))]
pub struct AwsCredentials {
    /// Assume this IAM role with STS for every Terraform run (short-lived credentials).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assume_role: Option<AssumeRole>,
    /// Static credentials from a Secret in the Project's namespace (keys
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, optional `AWS_SESSION_TOKEN`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretKeyRef>,
}

/// An IAM role assumed through STS.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AssumeRole {
    /// ARN of the role, in the Project's account.
    #[schemars(pattern(ROLE_ARN_PATTERN))]
    pub role_arn: String,
    /// External id the role's trust policy requires, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2, max = 1224))]
    pub external_id: Option<String>,
    /// Lifetime of the session credentials, e.g. `1h` (STS allows 15m to 12h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(DURATION_PATTERN))]
    pub session_duration: Option<String>,
    /// Session tags passed to STS (at most 50; the role's trust policy must allow
    /// `sts:TagSession`). CloudTrail and the role's policies can use them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 50))]
    pub session_tags: BTreeMap<String, String>,
}

/// A reference to a Secret in the same namespace.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// One instance of a catalog module.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Component {
    /// Unique name within the Project; becomes the Terraform module label.
    #[schemars(pattern(COMPONENT_NAME_PATTERN))]
    pub name: String,
    /// Module from the catalog, e.g. `network`, `postgres`, `demo`.
    #[schemars(pattern(MODULE_NAME_PATTERN))]
    pub module: String,
    /// Values for the module's variables. Every value is a literal: strings are never
    /// interpreted as Terraform expressions or templates. For a variable the module declares
    /// `sensitive` (type `string`), the value may instead be read when planning from
    /// `{secretKeyRef: {name, key}}` (a Secret in this namespace) or `{awsSecretsManager:
    /// {secretId, jsonKey}}` (with the Project's credentials); it then reaches Terraform
    /// only through its environment.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "inputs_schema")]
    pub inputs: BTreeMap<String, serde_json::Value>,
    /// Names of components that must be applied before this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub depends_on: Vec<String>,
}

/// A component input read from a secret store when planning, instead of a literal: the
/// input's value is `{"secretKeyRef": {...}}` or `{"awsSecretsManager": {...}}` (an object
/// with exactly that one key). Allowed only for the module's `sensitive` variables of type
/// `string`; the value reaches Terraform as a `TF_VAR_` environment variable, never a file.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
pub enum SecretInput {
    /// A key of a Secret in the Project's namespace.
    SecretKeyRef {
        /// Name of the Secret.
        name: String,
        /// Key in it.
        key: String,
    },
    /// An AWS Secrets Manager secret, read with the Project's credentials.
    AwsSecretsManager {
        /// Name or ARN of the secret.
        secret_id: String,
        /// If the secret's value is a JSON object, the key whose value to use.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        json_key: Option<String>,
    },
}

impl SecretInput {
    /// The reference in an input's value, if it is one (`Err`: it is meant as one, but
    /// malformed).
    pub fn of(value: &serde_json::Value) -> Option<Result<SecretInput, String>> {
        let object = value.as_object()?;
        let is_reference = object.len() == 1
            && object
                .keys()
                .all(|k| k == "secretKeyRef" || k == "awsSecretsManager");
        is_reference.then(|| serde_json::from_value(value.clone()).map_err(|e| e.to_string()))
    }
}

fn inputs_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "maxProperties": 256,
        "additionalProperties": { "x-kubernetes-preserve-unknown-fields": true }
    })
}

/// A hard monthly budget.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Budget {
    /// Maximum estimated monthly cost in USD, as a decimal string such as `"250"` or `"99.50"`.
    #[schemars(pattern(MONEY_PATTERN))]
    pub monthly_limit: String,
}

/// Which changes need a person, how fast they must decide, and who is told.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ProjectApproval {
    /// Kinds of change that apply without a checkpoint. Anything not listed, and anything
    /// the controller's configuration always gates (destroy of stateful resources, budget
    /// overruns, production), still needs a person.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub auto_approve: Vec<ApprovalTrigger>,
    /// Monthly cost increase in USD above which a person must approve. Default `"0"`: any
    /// increase needs approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(MONEY_PATTERN))]
    pub cost_increase_threshold: Option<String>,
    /// Users and groups who may decide this Project's checkpoints, in addition to holding
    /// the RBAC verb `approve` on checkpoints (empty: anyone with that verb), and whether
    /// the last person who changed the Project is excluded (four eyes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvers: Option<super::ApproverSet>,
    /// Response times for pending checkpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla: Option<SlaPolicy>,
    /// Who is told when a checkpoint is opened, escalated, expired or decided.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub notifications: Vec<NotificationChannel>,
}

/// A kind of change the gate recognises.
#[derive(
    JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
pub enum ApprovalTrigger {
    /// The first apply of a Project.
    FirstApply,
    /// Changes that only add resources.
    Create,
    /// In-place updates.
    Update,
    /// Replacement of stateless resources.
    Replace,
    /// Destruction of stateless resources.
    Delete,
}

/// How long a checkpoint may wait.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SlaPolicy {
    /// A decision is due this long after the checkpoint opens, e.g. `4h`.
    #[schemars(pattern(DURATION_PATTERN))]
    pub respond_within: String,
    /// Escalate when still pending this long after opening.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation: Option<EscalationPolicy>,
    /// The checkpoint expires (nothing is applied) this long after opening, e.g. `72h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(DURATION_PATTERN))]
    pub expire_after: Option<String>,
}

/// Escalation of a pending checkpoint.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EscalationPolicy {
    /// Escalate when still pending this long after opening, e.g. `8h`.
    #[schemars(pattern(DURATION_PATTERN))]
    pub after: String,
    /// Notification channels (by name) told on escalation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<String>,
}

/// A place notifications are sent. Set exactly one of `slack`, `webhook` or `email`.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(cel, validation = Rule::new("[has(self.slackWebhookSecretRef), has(self.webhookSecretRef), has(self.webhookUrl), has(self.email)].filter(x, x).size() == 1").message("set exactly one of slackWebhookSecretRef, webhookSecretRef, webhookUrl and email"))]
pub struct NotificationChannel {
    /// Name used by escalation policies to refer to this channel.
    #[schemars(pattern(COMPONENT_NAME_PATTERN))]
    pub name: String,
    /// Secret holding a Slack incoming-webhook URL under key `url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack_webhook_secret_ref: Option<SecretKeyRef>,
    /// Secret holding the URL of an endpoint receiving signed JSON events, under key
    /// `url` (the URL often carries a token: keep it out of the spec). Signed with the
    /// namespace's key (ConfigMap `tollgate-notifications`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_secret_ref: Option<SecretKeyRef>,
    /// Deprecated: an HTTPS endpoint written into the spec, readable by everyone who can
    /// read the Project. Only for URLs that carry no credential; prefer
    /// `webhookSecretRef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(WEBHOOK_URL_PATTERN), length(max = 2048))]
    pub webhook_url: Option<String>,
    /// Email addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 50))]
    pub email: Option<Vec<String>>,
}

/// Where Terraform state lives.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Backend {
    /// Backend type. `kubernetes` keeps state in a Secret `tfstate-default-<namespace>.<name>`
    /// in the controller's state namespace (`tollgate-system` unless configured; never the
    /// Project's namespace, whose deletion would delete the state) and locks with a Lease
    /// there; `status.state` names it. `s3` uses a bucket (and optional DynamoDB lock table); `local`
    /// is for development only.
    #[serde(rename = "type", default)]
    pub backend_type: BackendType,
    /// Settings of the `kubernetes` backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubernetesBackend>,
    /// Settings of the `s3` backend (required when type is `s3`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Backend>,
    /// Settings of the `local` backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<LocalBackend>,
}

/// Terraform backend types tollgate can render.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum BackendType {
    /// State in a Secret in the controller's state namespace.
    #[default]
    Kubernetes,
    /// State in an S3 bucket.
    S3,
    /// State in a local file (development only).
    Local,
}

/// The `kubernetes` backend.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesBackend {
    /// Legacy: where state was kept before it moved to the controller's state namespace
    /// (`tfstate-default-<secretSuffix>` in the Project's own namespace; default the
    /// Project's name). Read only to migrate that state once; it never chooses where state
    /// lives now, which is derived from the Project's namespace and name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(SECRET_SUFFIX_PATTERN))]
    pub secret_suffix: Option<String>,
}

/// The `s3` backend.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct S3Backend {
    /// Bucket holding state.
    #[schemars(pattern(S3_BUCKET_PATTERN))]
    pub bucket: String,
    /// Object key of the state file. Default: `<namespace>/<project>/terraform.tfstate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub key: Option<String>,
    /// Bucket region. Default: the Project's region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(AWS_REGION_PATTERN))]
    pub region: Option<String>,
    /// DynamoDB table used for state locking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(DYNAMODB_TABLE_PATTERN))]
    pub dynamodb_table: Option<String>,
}

/// The `local` backend.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct LocalBackend {
    /// Path of the state file, relative to the working directory. Default
    /// `terraform.tfstate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub path: Option<String>,
}

/// One post-apply HTTP check: `GET` a URL (written here, or read from a Terraform output of
/// the Project) and expect a status code. Only the status is read; the body is never.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(cel, validation = Rule::new("has(self.url) != has(self.urlFromOutput)").message("set exactly one of url and urlFromOutput"))]
pub struct HealthCheck {
    /// Name, unique in the list (shown in the `Healthy` condition).
    #[schemars(pattern(COMPONENT_NAME_PATTERN))]
    pub name: String,
    /// The URL to `GET`: `http://` or `https://` (certificates are verified against the
    /// system's trust roots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(WEBHOOK_URL_PATTERN), length(max = 2048))]
    pub url: Option<String>,
    /// The Project output holding the URL: `<component>_<output>`, as in the
    /// `<project>-outputs` Secret (e.g. `web_url`). A sensitive output is never shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(OUTPUT_NAME_PATTERN))]
    pub url_from_output: Option<String>,
    /// The status code that means healthy (default 200).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 100, max = 599))]
    pub expected_status: Option<i32>,
    /// How long one attempt may take, e.g. `5s` (default 5s, at most 60s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(DURATION_PATTERN))]
    pub timeout: Option<String>,
    /// Attempts after a failed one, 2 s apart (default 2, at most 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 10))]
    pub retries: Option<i32>,
}

/// Scheduled drift detection.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DriftDetection {
    /// How often to plan against real infrastructure, e.g. `24h`.
    #[schemars(pattern(DURATION_PATTERN))]
    pub interval: String,
    /// What to do when drift is found.
    #[serde(default)]
    pub action: DriftAction,
}

/// Reaction to detected drift.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DriftAction {
    /// Set the `Drifted` condition and emit an Event.
    #[default]
    Report,
    /// Also send a notification (the Project's and the namespace's channels), once per
    /// distinct drift.
    Notify,
    /// Also open a PlanApproval checkpoint whose plan brings infrastructure back to the
    /// declared state; it is applied only once a person approves it.
    Checkpoint,
    /// Do not look for drift (the schedule is kept, so switching back needs no other
    /// change); the `Drifted` condition is removed.
    Ignore,
}

/// What deleting a Project does to its infrastructure.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DeletionPolicy {
    /// Destroy the infrastructure after a Destroy checkpoint is approved.
    #[default]
    Destroy,
    /// Leave the infrastructure; remove only tollgate's objects.
    Orphan,
}

/// Observed state of a Project, written only by the controller.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ProjectStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Where the Project is in its loop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<ProjectPhase>,
    /// kstatus conditions: `Ready`, `Reconciling`, `Stalled`, `AwaitingApproval`,
    /// `Drifted`, `BudgetExceeded`, `CostWithinEstimate`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// The current saved plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<PlanStatus>,
    /// Estimated cost of the current plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<CostStatus>,
    /// The checkpoint awaiting a decision, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_ref: Option<CheckpointRefStatus>,
    /// Secret holding the Terraform outputs of the last apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs_secret_ref: Option<SecretKeyRef>,
    /// Where the Terraform state is (the `kubernetes` backend): it outlives the Project's
    /// namespace, and stays there after a deletion with `deletionPolicy: Orphan`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<StateStatus>,
    /// The last successful apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_applied: Option<LastApplied>,
    /// Inputs digest of the last plan Terraform refused (e.g. a module's variable
    /// validation): not retried until the Project changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_failed_for: Option<String>,
    /// The approval policy in force for this Project: the ApprovalPolicies that select it,
    /// tightened by its own spec, and what it asked for that they do not allow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_policy: Option<EffectivePolicyStatus>,
    /// A monthly budget above the ApprovalPolicy's that a person approved (through a
    /// BudgetIncrease checkpoint); plans are gated under it until the spec asks for more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_budget: Option<String>,
    /// Set while the Project waits for a Terraform run slot (the controller's
    /// `--max-terraform` slots, shared fairly between namespaces); where it stood when it
    /// started waiting. Gone once it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<QueueStatus>,
    /// The latest runner Job of this Project (`--runner=job`): which Job plans or applies,
    /// and its run identity (the holder the stuck-lock playbook looks for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner_job: Option<RunnerJobStatus>,
    /// Recent applies and decisions, newest first, bounded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub history: Vec<HistoryEntry>,
    /// What the last scheduled drift check (`spec.driftDetection`) found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<DriftStatus>,
    /// What the Rego policies said of the current plan (docs/policy.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyReport>,
    /// Why the next plan needs a person whatever the approval policy pre-approves (a saved
    /// plan that was tampered with, missing or unreadable, a rollback); cleared once a plan
    /// is applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_required: Option<String>,
    /// The last applied revisions, newest first (five are kept): what a rollback can
    /// return to. Their inputs, and the last apply's outputs, are kept in the Secret
    /// `tfrev-<namespace>.<name>` in the state namespace (both may be sensitive).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 5))]
    pub revisions: Vec<Revision>,
    /// A rollback in force: the Project is planned from this revision's inputs instead of
    /// its spec until the spec changes (its generation moves on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackStatus>,
    /// The Terraform state lock the Project's last run could not take: the run it stopped,
    /// who holds the lock and since when, whether that holder is gone, and the
    /// `ManualOperation` checkpoint asking to force-unlock it. Gone once a run gets the lock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_lock: Option<StateLockStatus>,
    /// What the health checks (`spec.healthChecks`) found after the last apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthStatus>,
    /// Manual operations the Project's modules asked for (their `tollgate_manual_operation`
    /// output) that a person marked done, newest first; one is asked again only when its
    /// instructions change.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub manual_operations: Vec<ManualOperationDone>,
    /// Estimate vs actual: what AWS Cost Explorer says the Project's tagged resources cost
    /// this month, against the applied estimate (only with the controller's
    /// `--cost-explorer-interval`; docs/cost.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actual_cost: Option<ActualCostStatus>,
}

/// The last Cost Explorer check of a Project: month-to-date spend and AWS's forecast of
/// the rest of the month (UTC calendar month), against the applied estimate. Amounts are
/// USD decimal strings.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ActualCostStatus {
    /// When the last check was made (also when it failed: each check is paid for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_at: Option<Time>,
    /// When the next check is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_check_at: Option<Time>,
    /// The month compared, `YYYY-MM`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub month: Option<String>,
    /// Spend from the month's first day to yesterday.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub month_to_date: Option<String>,
    /// AWS's forecast from today to the month's end; absent while AWS has too little
    /// history to forecast.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forecast: Option<String>,
    /// Month to date plus forecast.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub projected: Option<String>,
    /// The applied monthly estimate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimate: Option<String>,
    /// The estimate for the days the Project exists this month.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    /// `projected / expected − 1` as a signed percentage, e.g. `+23.4%`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variance: Option<String>,
    /// The threshold in force, percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_percent: Option<String>,
    /// Why the last check failed (tried again at the next interval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The month (`YYYY-MM`) whose variance beyond the threshold was notified: one
    /// notification per month, again only after the variance came back within it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notified_month: Option<String>,
    /// Deliveries of the variance notification (bounded), so a restart sends nothing twice.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub notifications: Vec<super::NotificationRecord>,
}

/// A module-requested manual operation a person marked done.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ManualOperationDone {
    /// The component whose module asked.
    pub component: String,
    /// What was asked (the output's `title`).
    pub title: String,
    /// sha256 of what was asked: a change of the instructions asks again.
    pub digest: String,
    /// Who marked it done.
    pub done_by: String,
    /// When.
    pub at: Time,
}

/// The health checks run after an apply.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HealthStatus {
    /// The applied plan they checked.
    pub plan_id: String,
    /// When they finished.
    pub checked_at: Time,
    /// One entry per check, in spec order.
    #[schemars(length(max = 10))]
    pub results: Vec<HealthCheckResult>,
}

/// What one health check found.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheckResult {
    /// The check's name.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// What was asked and answered (a sensitive output's URL is never shown).
    pub message: String,
}

/// A held Terraform state lock, as Terraform described it (`Lock Info:`), and what tollgate
/// knows of its holder.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StateLockStatus {
    /// The lock id: what `terraform force-unlock` takes.
    pub id: String,
    /// Who took it (`user@host`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub who: Option<String>,
    /// What its holder was doing (e.g. `OperationTypeApply`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// When it was taken, as Terraform wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// The Project's run the lock stopped (e.g. `terraform apply of plan <id>`).
    pub blocked_run: String,
    /// `Alive`, `Gone` or `Unknown`: only a holder that is provably gone is offered for
    /// force-unlock, and only a person decides.
    pub holder: String,
    /// Why tollgate judged the holder so.
    pub holder_detail: String,
    /// When the Project found the lock held.
    pub observed_at: Time,
    /// The `ManualOperation` checkpoint asking a person to force-unlock exactly this lock id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_ref: Option<CheckpointRefStatus>,
}

/// One applied revision of a Project, compact: no input values (those are in the
/// revisions Secret).
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Revision {
    /// Number, increasing with each apply.
    pub revision: i64,
    /// The plan applied.
    pub plan_id: String,
    /// sha256 of that saved plan file.
    pub plan_digest: String,
    /// sha256 of the rendered working directory's inputs (modules, values).
    pub rendered_digest: String,
    /// sha256 of the outputs the apply produced.
    pub outputs_digest: String,
    /// When it was applied.
    pub at: Time,
}

/// A rollback asked for by a `FailureEscalation` decision or the annotation
/// `tollgate.dev/rollback-to`.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RollbackStatus {
    /// The revision planned again.
    pub revision: i64,
    /// The Project generation it holds for; a spec change ends it.
    pub generation: i64,
    /// Who asked (the decider of the checkpoint, or the annotation).
    pub requested_by: String,
    /// The annotation value acted on, so one request starts one rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotation: Option<String>,
}

/// The last drift check: a refresh-only plan of the applied configuration.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct DriftStatus {
    /// When the last check finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_at: Option<Time>,
    /// When the next check is due (the interval on a per-Project offset, so Projects with
    /// the same interval do not all plan at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_check_at: Option<Time>,
    /// sha256 of what moved (addresses, attributes, masked values): the same drift found
    /// again has the same digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Resources changed outside tollgate (bounded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub resources: Vec<DriftedResource>,
    /// Resources changed outside tollgate beyond those listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub omitted_resources: Option<i64>,
    /// The drift digest already notified (action `Notify`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notified_digest: Option<String>,
    /// The drift digest a restore checkpoint was opened for (action `Checkpoint`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_digest: Option<String>,
    /// Deliveries of drift notifications (bounded), so a restart sends nothing twice.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub notifications: Vec<super::NotificationRecord>,
}

/// One resource changed outside tollgate.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct DriftedResource {
    /// Resource address, e.g. `module.app.aws_s3_bucket.this`.
    pub address: String,
    /// What happened to it as Terraform sees it: `update` (attributes moved) or
    /// `delete` (gone).
    pub action: String,
    /// Attributes that moved, `path: before → after`; sensitive values read
    /// `(sensitive)` (bounded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10))]
    pub attributes: Vec<String>,
}

/// What the Rego policies (the built-in pack, the cluster's and the namespace's) said of a
/// plan.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PolicyReport {
    /// sha256 of the policy set the plan was judged by (part of the plan key: a policy
    /// change judges the plan again).
    pub digest: String,
    /// `deny` findings: the plan needs a person's approval, which is recorded as an
    /// override.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub denied: Vec<crate::policy::Finding>,
    /// `warn` findings: shown, not blocking.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub warned: Vec<crate::policy::Finding>,
    /// Why the policies could not judge the plan (a broken policy); the plan needs a
    /// person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The approval policy in force for a Project, and where it came from.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct EffectivePolicyStatus {
    /// Names of the ApprovalPolicies that select this Project (none: nothing is
    /// pre-approved).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<String>,
    /// Kinds of change that apply without a person.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub auto_approve: Vec<ApprovalTrigger>,
    /// Monthly cost increase in USD that applies without a person.
    pub cost_increase_threshold: String,
    /// The monthly budget plans are gated under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<String>,
    /// What the Project's spec asks for that the policies do not allow (not applied).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_allowed: Vec<String>,
    /// Deadlines of checkpoints: the policies' and the Project's, the shorter of each.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla: Option<SlaPolicy>,
    /// Channels the policies add to the Project's own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub notifications: Vec<NotificationChannel>,
}

/// Phases of a Project.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProjectPhase {
    /// Rendering and planning.
    Planning,
    /// A checkpoint is waiting for a decision.
    AwaitingApproval,
    /// Applying an approved plan.
    Applying,
    /// The last approved plan is applied and nothing is pending.
    Ready,
    /// A person rejected the plan; nothing changes until the spec does.
    Rejected,
    /// Nobody decided before the checkpoint's expiry; nothing changes until the spec (or
    /// the `tollgate.dev/replan` annotation) does.
    Expired,
    /// A step failed; see the conditions.
    Failed,
    /// Destroying infrastructure before deletion.
    Destroying,
    /// `spec.suspend` is true.
    Suspended,
}

/// The saved plan tollgate will apply once allowed.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PlanStatus {
    /// Identifier of the saved plan.
    pub id: String,
    /// sha256 of the saved plan file; an approval applies only a plan with this digest.
    pub digest: String,
    /// sha256 of the rendered inputs the plan was made from.
    pub inputs_digest: String,
    /// What the plan changes.
    pub summary: PlanSummaryStatus,
}

/// Counts and addresses of a plan's changes.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PlanSummaryStatus {
    /// Resources to create.
    pub add: i64,
    /// Resources to update in place.
    pub change: i64,
    /// Resources to destroy (including replacements).
    pub destroy: i64,
    /// Addresses of changed resources (bounded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub addresses: Vec<String>,
}

/// Estimated cost of the current plan.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct CostStatus {
    /// Estimated monthly cost after the plan, decimal string.
    pub monthly: String,
    /// Change of the monthly cost, decimal string, negative for savings.
    pub delta: String,
    /// Currency of all amounts (`USD`).
    pub currency: String,
    /// The most expensive resources (top N).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10))]
    pub top_resources: Vec<ResourceCost>,
    /// Resources that could not be priced, with the reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub unpriced: Vec<String>,
}

/// Monthly cost of one resource.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ResourceCost {
    /// Terraform address.
    pub address: String,
    /// Estimated monthly cost, decimal string.
    pub monthly: String,
}

/// Reference to the pending checkpoint.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointRefStatus {
    /// Name of the Checkpoint.
    pub name: String,
    /// Namespace of the Checkpoint when it is not the Project's: a Destroy checkpoint of a
    /// Project whose namespace is being deleted lives in the controller's state namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// Where a Project's Terraform state is kept.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct StateStatus {
    /// Namespace of the state Secret and its lock Lease.
    pub namespace: String,
    /// Name of the state Secret (Terraform's `kubernetes` backend).
    pub secret_name: String,
}

/// A runner Job (`--runner=job`) of the Project's plan.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RunnerJobStatus {
    /// The run: the id of the plan an apply Job applies; for a plan Job, its kind
    /// (`changes`, `destroy`, `refresh-only`) and 16 hex of what it plans from.
    pub plan_id: String,
    /// Which attempt of that run (0 first; a new Job after a failed run that is retried).
    pub attempt: i64,
    /// The Job, in the state namespace.
    pub job: String,
    /// The run's identity, `job/<namespace>/<job>`: the pod's name, which Terraform records
    /// as the state lock's holder (`Who`), starts with the Job's name.
    pub holder: String,
    /// When the controller let it run.
    pub started_at: Time,
    /// Whether the controller has recorded how it ended (a later run of the same plan gets
    /// the next attempt).
    #[serde(default)]
    pub recorded: bool,
}

/// Where a Project waiting for a Terraform run slot stood when it started waiting.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct QueueStatus {
    /// When it started waiting.
    pub since: Time,
    /// How many slots were to be handed out, its own included, before it got one (an
    /// estimate: slots go first to the waiting namespaces that hold the fewest).
    pub position: i64,
    /// Projects of its namespace waiting, itself included.
    pub namespace_waiting: i64,
    /// Namespaces with Projects waiting; the slots are shared between them.
    pub namespaces_waiting: i64,
    /// Terraform runs the controller allows at once.
    pub slots: i64,
}

/// The last successful apply.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LastApplied {
    /// Plan that was applied.
    pub plan_id: String,
    /// When the apply finished.
    pub at: Time,
    /// Estimated monthly cost after the apply, decimal string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<String>,
}

/// One entry of the Project's bounded history.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    /// Plan concerned.
    pub plan_id: String,
    /// What happened, e.g. `Applied`, `Rejected`, `Superseded`, `Failed`.
    pub outcome: String,
    /// When it happened.
    pub at: Time,
    /// Who decided, when a person did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
}

//! The audit record: who did what to which Project and plan, when, at what cost.

use serde::{Deserialize, Serialize};

/// What happened.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditAction {
    /// A plan was made and saved.
    PlanMade,
    /// A checkpoint opened.
    CheckpointOpened,
    /// A checkpoint was escalated.
    CheckpointEscalated,
    /// A checkpoint expired.
    CheckpointExpired,
    /// A checkpoint was superseded undecided (the Project changed; its plan is never applied).
    CheckpointSuperseded,
    /// A checkpoint was decided (approved or rejected).
    CheckpointDecided,
    /// A person approved a plan the Rego policies deny (`reason` lists the violations).
    PolicyOverridden,
    /// Applying a plan started.
    ApplyStarted,
    /// Applying a plan finished.
    ApplyFinished,
    /// Applying a plan failed.
    ApplyFailed,
    /// Destroying a Project's infrastructure started.
    DestroyStarted,
    /// Destroying a Project's infrastructure finished.
    DestroyFinished,
    /// Cloud credentials were issued to a Project's Terraform run (`credential` says which).
    CredentialUsed,
    /// A scheduled check found infrastructure changed outside tollgate.
    DriftDetected,
    /// Cost Explorer's projection of the month went beyond the variance threshold from
    /// the applied estimate (`reason` says by how much).
    CostVariance,
    /// An approved saved plan was not applied because its stored bytes were tampered with,
    /// missing or unreadable (`reason` names the Secret and both digests); its approval is void.
    PlanRefused,
    /// A plan above its namespace's NamespaceBudget was admitted because a person approved
    /// its BudgetIncrease `checkpoint` (`cost.after`: the namespace's use with it;
    /// `cost.budget`: the cap).
    NamespaceBudgetOverrunApproved,
    /// A Terraform state lock whose holder was gone was force-unlocked because a person
    /// approved the ManualOperation `checkpoint` (`reason`: the lock id and its holder).
    StateForceUnlocked,
}

/// Monthly cost, USD decimal strings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuditCost {
    /// Before the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    /// After the change.
    pub after: String,
    /// The budget, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<String>,
}

/// Which credentials a Terraform run received: never the secret, only where they came
/// from and until when they are valid.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuditCredential {
    /// `AssumeRole` or `StaticKeys`.
    pub kind: String,
    /// The role assumed, or the Secret holding the static keys.
    pub source: String,
    /// The STS session name (CloudTrail shows it for every call made with them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// When they expire (RFC 3339), for STS credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

/// What the caller supplies; the writer adds `seq`, `time`, `prevHash` and `hash`.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEntry {
    /// Who: the authenticated user for decisions, `system:tollgate` for the controller.
    pub actor: String,
    /// What.
    pub action: AuditAction,
    /// The Project's namespace.
    pub namespace: String,
    /// The Project's name.
    pub project: String,
    /// The checkpoint, when there is one.
    pub checkpoint: Option<String>,
    /// The decision, for `CheckpointDecided` (`Approved`/`Rejected`).
    pub decision: Option<String>,
    /// sha256 of the saved plan.
    pub plan_digest: Option<String>,
    /// Cost.
    pub cost: Option<AuditCost>,
    /// Why: the decider's reason, or what failed (already redacted).
    pub reason: Option<String>,
    /// For `CredentialUsed`: which credentials.
    pub credential: Option<AuditCredential>,
}

impl AuditEntry {
    /// An entry with only the required fields set.
    pub fn new(
        actor: impl Into<String>,
        action: AuditAction,
        namespace: impl Into<String>,
        project: impl Into<String>,
    ) -> Self {
        AuditEntry {
            actor: actor.into(),
            action,
            namespace: namespace.into(),
            project: project.into(),
            checkpoint: None,
            decision: None,
            plan_digest: None,
            cost: None,
            reason: None,
            credential: None,
        }
    }
}

/// One line of the audit log.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuditRecord {
    /// Position in the chain, from 1.
    pub seq: u64,
    /// When (RFC 3339, UTC).
    pub time: String,
    /// Who.
    pub actor: String,
    /// What.
    pub action: AuditAction,
    /// The Project's namespace.
    pub namespace: String,
    /// The Project's name.
    pub project: String,
    /// The checkpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
    /// The decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    /// sha256 of the saved plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_digest: Option<String>,
    /// Cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<AuditCost>,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Which credentials (`CredentialUsed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<AuditCredential>,
    /// `hash` of the previous record (64 zeros for the first).
    pub prev_hash: String,
    /// sha256 (hex) of this record's canonical JSON without `hash`.
    pub hash: String,
}

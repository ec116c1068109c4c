//! What happened to a checkpoint, carrying everything a Technical Operator needs to act
//! on it without opening a terminal first. Built from the Checkpoint alone (pure), so the
//! reconciler can build it wherever it decides to notify.

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::api::{Checkpoint, CheckpointCost, CheckpointType, Decision};

/// How many changed addresses a message lists before saying "and N more": enough to
/// recognise the change, short enough for a chat message.
pub const MAX_LISTED_CHANGES: usize = 5;

/// The events a notification can be about.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    /// A checkpoint opened and waits for a decision.
    Opened,
    /// A checkpoint is still pending; sent at the reminder interval.
    Reminder,
    /// A checkpoint is still pending past its escalation deadline.
    Escalated,
    /// A checkpoint expired without a decision; nothing was applied.
    Expired,
    /// A person approved or rejected the checkpoint.
    Decided,
    /// The approved plan was applied.
    Applied,
    /// Applying the approved plan failed.
    ApplyFailed,
    /// The Project was deleted and a Destroy checkpoint waits for a decision.
    DestroyWaiting,
    /// A scheduled check found infrastructure changed outside tollgate (no checkpoint).
    Drifted,
    /// A Project's reservation took its namespace's use past the NamespaceBudget's
    /// warning threshold (nothing is blocked).
    BudgetWarning,
}

impl EventKind {
    /// Every event, in lifecycle order.
    pub const ALL: [EventKind; 10] = [
        EventKind::Opened,
        EventKind::Reminder,
        EventKind::Escalated,
        EventKind::Expired,
        EventKind::Decided,
        EventKind::Applied,
        EventKind::ApplyFailed,
        EventKind::DestroyWaiting,
        EventKind::Drifted,
        EventKind::BudgetWarning,
    ];

    /// The name used in messages, records and routes (same as the serde name).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Opened => "Opened",
            EventKind::Reminder => "Reminder",
            EventKind::Escalated => "Escalated",
            EventKind::Expired => "Expired",
            EventKind::Decided => "Decided",
            EventKind::Applied => "Applied",
            EventKind::ApplyFailed => "ApplyFailed",
            EventKind::DestroyWaiting => "DestroyWaiting",
            EventKind::Drifted => "Drifted",
            EventKind::BudgetWarning => "BudgetWarning",
        }
    }

    /// Whether the checkpoint still waits for a person, so the message carries the
    /// approve/reject commands.
    pub fn awaits_decision(self) -> bool {
        matches!(
            self,
            EventKind::Opened
                | EventKind::Reminder
                | EventKind::Escalated
                | EventKind::DestroyWaiting
        )
    }

    /// A short human headline, e.g. `Approval needed`.
    pub fn headline(self) -> &'static str {
        match self {
            EventKind::Opened => "Approval needed",
            EventKind::Reminder => "Reminder: approval still needed",
            EventKind::Escalated => "Escalated: approval overdue",
            EventKind::Expired => "Expired: nothing was applied",
            EventKind::Decided => "Decided",
            EventKind::Applied => "Applied",
            EventKind::ApplyFailed => "Apply failed",
            EventKind::DestroyWaiting => "Destroy waiting for approval",
            EventKind::Drifted => "Drift detected",
            EventKind::BudgetWarning => "Namespace budget warning",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a `BudgetWarning` says.
#[derive(Clone, Copy, Debug)]
pub struct BudgetWarning<'a> {
    /// The namespace.
    pub namespace: &'a str,
    /// The NamespaceBudget's uid.
    pub budget_uid: &'a str,
    /// The Project whose plan crossed the threshold.
    pub project: &'a str,
    /// That plan.
    pub plan_id: &'a str,
    /// The namespace's use after it, USD a month.
    pub used: &'a str,
    /// The cap, USD a month.
    pub limit: &'a str,
    /// `used` as a percentage of `limit`.
    pub percent: i64,
}

/// Who decided what, for `Decided` events.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DecisionInfo {
    /// Approved or Rejected.
    pub decision: Decision,
    /// The authenticated decider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// The decider's reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Deadlines of the checkpoint (from `spec.sla`).
#[derive(Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Deadlines {
    /// A decision is due by then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub respond_by: Option<Timestamp>,
    /// Escalated if still pending then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub escalate_at: Option<Timestamp>,
    /// Expires if still pending then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expire_at: Option<Timestamp>,
}

/// One notification: an event about one checkpoint. Holds only what the Checkpoint
/// already shows a TO (its spec is redacted by construction), never secret values.
#[derive(Clone, Debug, PartialEq)]
pub struct Notification {
    /// What happened.
    pub event: EventKind,
    /// Distinguishes repeated events of one kind (the n-th reminder); 0 otherwise.
    pub occurrence: u32,
    /// When it happened.
    pub at: Timestamp,
    /// Namespace of the Checkpoint (where the decide command patches it).
    pub namespace: String,
    /// Namespace of the Project: the Checkpoint's, except for a Destroy checkpoint opened
    /// in the controller's namespace while the Project's namespace is being deleted.
    pub project_namespace: String,
    /// The Project's name.
    pub project: String,
    /// The Project's environment, e.g. `production`.
    pub environment: String,
    /// The Checkpoint's name.
    pub checkpoint: String,
    /// The Checkpoint's uid: part of the idempotency key, so a re-created checkpoint
    /// with the same name is notified again.
    pub checkpoint_uid: String,
    /// What kind of decision.
    pub checkpoint_type: CheckpointType,
    /// One-line summary, e.g. `3 to add, 1 to change, 0 to destroy`.
    pub summary: String,
    /// Resources to create.
    pub add: i64,
    /// Resources to update in place.
    pub change: i64,
    /// Resources to destroy.
    pub destroy: i64,
    /// Changed addresses with their action (all of them; renderers shorten).
    pub changes: Vec<String>,
    /// Risk flags.
    pub risks: Vec<String>,
    /// Why a person must decide.
    pub reasons: Vec<String>,
    /// Cost before → after and the budget.
    pub cost: Option<CheckpointCost>,
    /// The saved plan's sha256.
    pub plan_digest: Option<String>,
    /// Deadlines.
    pub deadlines: Deadlines,
    /// For `Decided`.
    pub decision: Option<DecisionInfo>,
    /// For `ApplyFailed`: what failed, already redacted by the caller.
    pub detail: Option<String>,
}

impl Notification {
    /// Builds the notification for `event` about `checkpoint` of a Project in
    /// `environment`. The decision (for `Decided`) is read from the checkpoint's status.
    pub fn from_checkpoint(
        event: EventKind,
        checkpoint: &Checkpoint,
        environment: &str,
        at: Timestamp,
    ) -> Self {
        let spec = &checkpoint.spec;
        let status = checkpoint.status.as_ref();
        let decision = status.and_then(|s| {
            s.decision.map(|decision| DecisionInfo {
                decision,
                by: s.decided_by.clone(),
                reason: s.reason.clone(),
            })
        });
        let sla = spec.sla.as_ref();
        Notification {
            event,
            occurrence: 0,
            at,
            namespace: checkpoint.metadata.namespace.clone().unwrap_or_default(),
            project_namespace: spec
                .project_ref
                .namespace
                .clone()
                .or_else(|| checkpoint.metadata.namespace.clone())
                .unwrap_or_default(),
            project: spec.project_ref.name.clone(),
            environment: environment.to_owned(),
            checkpoint: checkpoint.metadata.name.clone().unwrap_or_default(),
            checkpoint_uid: checkpoint.metadata.uid.clone().unwrap_or_default(),
            checkpoint_type: spec.checkpoint_type,
            summary: spec.summary.text.clone(),
            add: spec.summary.add,
            change: spec.summary.change,
            destroy: spec.summary.destroy,
            changes: spec.summary.changes.clone(),
            risks: spec.summary.risks.clone(),
            reasons: spec.reasons.clone(),
            cost: spec.summary.cost.clone(),
            plan_digest: spec.plan_ref.as_ref().map(|p| p.digest.clone()),
            deadlines: Deadlines {
                respond_by: sla.map(|s| s.respond_by.0),
                escalate_at: sla.and_then(|s| s.escalate_at.as_ref().map(|t| t.0)),
                expire_at: sla.and_then(|s| s.expire_at.as_ref().map(|t| t.0)),
            },
            decision,
            detail: None,
        }
    }

    /// Builds the notification that a drift check of Project `namespace/project` (uid
    /// `project_uid`) found `drift`: no checkpoint, so no decide commands. Its delivery key
    /// names the drift's digest, so each distinct drift is sent once.
    pub fn from_drift(
        subject: DriftSubject<'_>,
        drift: &crate::drift::DriftReport,
        at: Timestamp,
    ) -> Self {
        let digest = drift.digest.as_deref().unwrap_or_default();
        let changes: Vec<String> = drift
            .resources
            .iter()
            .map(|r| {
                if r.attributes.is_empty() {
                    format!("{} ({})", r.address, r.action)
                } else {
                    format!("{} ({}): {}", r.address, r.action, r.attributes.join("; "))
                }
            })
            .collect();
        Notification {
            event: EventKind::Drifted,
            occurrence: 0,
            at,
            namespace: subject.namespace.to_owned(),
            project_namespace: subject.namespace.to_owned(),
            project: subject.project.to_owned(),
            environment: subject.environment.to_owned(),
            checkpoint: String::new(),
            checkpoint_uid: format!(
                "{}/drift-{}",
                subject.project_uid,
                digest.get(..16).unwrap_or(digest)
            ),
            checkpoint_type: CheckpointType::PlanApproval,
            summary: drift.message(),
            add: 0,
            change: 0,
            destroy: 0,
            changes,
            risks: Vec::new(),
            reasons: Vec::new(),
            cost: None,
            plan_digest: None,
            deadlines: Deadlines::default(),
            decision: None,
            detail: None,
        }
    }

    /// A `BudgetWarning` about `project`, whose plan `plan_id` took `namespace` to `used`
    /// of `limit` a month (`percent`). `budget_uid` makes the delivery key: one warning per
    /// crossing of the threshold by a plan.
    pub fn budget_warning(warning: BudgetWarning<'_>, environment: &str, at: Timestamp) -> Self {
        let summary = format!(
            "namespace {} uses ${} of its ${} monthly budget ({}%) after plan {} of Project {}",
            warning.namespace,
            warning.used,
            warning.limit,
            warning.percent,
            warning.plan_id,
            warning.project
        );
        Notification {
            event: EventKind::BudgetWarning,
            occurrence: 0,
            at,
            namespace: warning.namespace.to_owned(),
            project_namespace: warning.namespace.to_owned(),
            project: warning.project.to_owned(),
            environment: environment.to_owned(),
            checkpoint: String::new(),
            checkpoint_uid: format!("{}/{}", warning.budget_uid, warning.plan_id),
            checkpoint_type: CheckpointType::BudgetIncrease,
            summary: summary.clone(),
            add: 0,
            change: 0,
            destroy: 0,
            changes: Vec::new(),
            risks: Vec::new(),
            reasons: vec![summary],
            cost: None,
            plan_digest: None,
            deadlines: Deadlines::default(),
            decision: None,
            detail: None,
        }
    }

    /// `name (Type)` of the checkpoint, when the event is about one.
    pub fn checkpoint_line(&self) -> Option<String> {
        (!self.checkpoint.is_empty())
            .then(|| format!("{} ({:?})", self.checkpoint, self.checkpoint_type))
    }

    /// Sets which occurrence this is (the n-th reminder).
    pub fn with_occurrence(mut self, occurrence: u32) -> Self {
        self.occurrence = occurrence;
        self
    }

    /// Sets the failure detail (for `ApplyFailed`); pass text that is already redacted.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// The exact one-line command that approves this checkpoint.
    pub fn approve_command(&self) -> String {
        decide_command(&self.checkpoint, &self.namespace, Decision::Approved)
    }

    /// The exact one-line command that rejects this checkpoint.
    pub fn reject_command(&self) -> String {
        decide_command(&self.checkpoint, &self.namespace, Decision::Rejected)
    }

    /// `cost before → after`, e.g. `$10.00 → $25.50 (+15.50)`, if priced.
    pub fn cost_line(&self) -> Option<String> {
        self.cost.as_ref().map(|c| {
            let delta = if c.delta.starts_with('-') {
                c.delta.clone()
            } else {
                format!("+{}", c.delta)
            };
            format!("${} → ${} ({delta}) per month", c.before, c.after)
        })
    }

    /// The budget line, e.g. `budget $250/month`, if there is a budget.
    pub fn budget_line(&self) -> Option<String> {
        self.cost
            .as_ref()
            .and_then(|c| c.budget.as_ref())
            .map(|b| format!("${b}/month"))
    }

    /// The first few changed addresses and how many more there are.
    pub fn listed_changes(&self) -> (&[String], usize) {
        let shown = self.changes.len().min(MAX_LISTED_CHANGES);
        (&self.changes[..shown], self.changes.len() - shown)
    }

    /// A one-line title, e.g. `Approval needed: team-a/web (production) PlanApproval`.
    pub fn title(&self) -> String {
        if self.event == EventKind::BudgetWarning {
            return format!("{}: {}", self.event.headline(), self.summary);
        }
        if self.checkpoint.is_empty() {
            return format!(
                "{}: {}/{} ({})",
                self.event.headline(),
                self.project_namespace,
                self.project,
                self.environment
            );
        }
        format!(
            "{}: {}/{} ({}) {:?}",
            self.event.headline(),
            self.project_namespace,
            self.project,
            self.environment,
            self.checkpoint_type
        )
    }

    /// The deadline a TO cares about most: respond-by while pending.
    pub fn deadline_line(&self) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(t) = self.deadlines.respond_by {
            parts.push(format!("respond by {}", rfc3339(t)));
        }
        if let Some(t) = self.deadlines.escalate_at {
            parts.push(format!("escalates {}", rfc3339(t)));
        }
        if let Some(t) = self.deadlines.expire_at {
            parts.push(format!("expires {}", rfc3339(t)));
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    }

    /// `Approved by alice: "reviewed"`, for `Decided`.
    pub fn decision_line(&self) -> Option<String> {
        self.decision.as_ref().map(|d| {
            let mut line = format!("{:?}", d.decision);
            if let Some(by) = &d.by {
                line.push_str(&format!(" by {by}"));
            }
            if let Some(reason) = &d.reason {
                line.push_str(&format!(": \"{reason}\""));
            }
            line
        })
    }
}

/// Which Project a drift notification is about.
#[derive(Clone, Copy, Debug)]
pub struct DriftSubject<'a> {
    /// Its namespace.
    pub namespace: &'a str,
    /// Its name.
    pub project: &'a str,
    /// Its uid.
    pub project_uid: &'a str,
    /// Its environment.
    pub environment: &'a str,
}

/// Seconds precision, UTC: what people read in messages.
pub(super) fn rfc3339(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `kubectl patch` with the status subresource: the same command the operator guide
/// documents. Names are DNS labels, so they need no shell quoting.
fn decide_command(name: &str, namespace: &str, decision: Decision) -> String {
    format!(
        "kubectl patch checkpoint {name} -n {namespace} --subresource=status --type=merge -p '{{\"status\":{{\"decision\":\"{decision:?}\",\"reason\":\"…\"}}}}'"
    )
}

#[cfg(test)]
pub(super) mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::api::{
        CheckpointSpec, CheckpointStatus, CheckpointSummary, PlanRef, ProjectRef, Sla,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    /// A checkpoint with everything a message shows, for renderer snapshots.
    pub(crate) fn sample(event: EventKind) -> Notification {
        let at: Timestamp = "2026-03-01T09:00:00Z".parse().unwrap();
        let t = |s: &str| Time(s.parse().unwrap());
        let mut cp = Checkpoint::new(
            "web-plan-1a2b3c",
            CheckpointSpec {
                checkpoint_type: CheckpointType::PlanApproval,
                project_ref: ProjectRef {
                    name: "web".into(),
                    namespace: None,
                },
                plan_ref: Some(PlanRef {
                    id: "p-7".into(),
                    digest: "ab".repeat(32),
                }),
                summary: CheckpointSummary {
                    text: "6 to add, 1 to change, 1 to destroy".into(),
                    add: 6,
                    change: 1,
                    destroy: 1,
                    changes: (1..=7)
                        .map(|i| format!("create module.app.aws_instance.web[{i}]"))
                        .chain(["delete module.db.aws_db_instance.this".to_owned()])
                        .collect(),
                    risks: vec![
                        "StatefulDestroy module.db.aws_db_instance.this: <data> & backups lost"
                            .into(),
                    ],
                    cost: Some(CheckpointCost {
                        before: "10.00".into(),
                        after: "25.50".into(),
                        delta: "15.50".into(),
                        budget: Some("250".into()),
                    }),
                },
                reasons: vec!["production always needs a person".into()],
                requested_at: t("2026-03-01T08:55:00Z"),
                sla: Some(Sla {
                    respond_by: t("2026-03-01T09:30:00Z"),
                    escalate_at: Some(t("2026-03-01T10:00:00Z")),
                    expire_at: Some(t("2026-03-04T09:00:00Z")),
                    remind_every: None,
                }),
                approvers: None,
                requested_by: Some("carol".into()),
                effective_policy: None,
                policy: None,
                secret: None,
            },
        );
        cp.metadata.namespace = Some("team-a".into());
        cp.metadata.uid = Some("0b6c3d1e-uid".into());
        if event == EventKind::Decided {
            cp.status = Some(CheckpointStatus {
                decision: Some(Decision::Approved),
                reason: Some("looks <fine> & \"reviewed\"".into()),
                decided_by: Some("alice".into()),
                ..CheckpointStatus::default()
            });
        }
        let n = Notification::from_checkpoint(event, &cp, "production", at);
        if event == EventKind::ApplyFailed {
            n.with_detail("terraform apply: Error: creating EC2 Instance: UnauthorizedOperation")
        } else {
            n
        }
    }

    #[test]
    fn commands_are_the_documented_kubectl_patch() {
        let n = sample(EventKind::Opened);
        assert_eq!(
            n.approve_command(),
            r#"kubectl patch checkpoint web-plan-1a2b3c -n team-a --subresource=status --type=merge -p '{"status":{"decision":"Approved","reason":"…"}}'"#
        );
        assert!(n.reject_command().contains(r#""decision":"Rejected""#));
    }

    #[test]
    fn a_destroy_checkpoint_elsewhere_names_the_project_and_patches_where_it_lives() {
        let mut n = sample(EventKind::DestroyWaiting);
        let mut cp_json = serde_json::json!({
            "apiVersion": "tollgate.dev/v1alpha1", "kind": "Checkpoint",
            "metadata": {"name": "web-destroy", "namespace": "tollgate-system", "uid": "u"},
            "spec": {"type": "Destroy", "projectRef": {"name": "web", "namespace": "team-a"},
                     "summary": {"text": "", "add": 0, "change": 0, "destroy": 2},
                     "requestedAt": "2026-03-01T09:00:00Z"}
        });
        let cp: Checkpoint = serde_json::from_value(cp_json.take()).unwrap();
        n = Notification::from_checkpoint(n.event, &cp, "production", n.at);
        assert!(n.title().contains("team-a/web"), "{}", n.title());
        assert!(
            n.approve_command()
                .contains("web-destroy -n tollgate-system")
        );
    }

    #[test]
    fn lists_a_few_changes_and_counts_the_rest() {
        let n = sample(EventKind::Opened);
        let (shown, more) = n.listed_changes();
        assert_eq!(shown.len(), MAX_LISTED_CHANGES);
        assert_eq!(more, 3);
        assert_eq!(
            n.cost_line().as_deref(),
            Some("$10.00 → $25.50 (+15.50) per month")
        );
    }

    #[test]
    fn decided_carries_the_decision() {
        let n = sample(EventKind::Decided);
        assert_eq!(
            n.decision_line().as_deref(),
            Some(r#"Approved by alice: "looks <fine> & "reviewed"""#)
        );
    }
}

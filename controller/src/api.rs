//! The tollgate API: `Project` and `Checkpoint` in group `tollgate.dev`, version `v1alpha1`.
//!
//! Doc comments on these types become `kubectl explain` text, so they are written for the
//! platform team and the Technical Operator, not for Rust readers.

mod budget;
mod checkpoint;
mod common;
mod policy;
mod project;
mod validation;

pub use budget::{
    BudgetReservation, DEFAULT_WARN_AT_PERCENT, NamespaceBudget, NamespaceBudgetSpec,
    NamespaceBudgetStatus,
};
pub use checkpoint::{
    ApplyOutcome, ApproverSet, Checkpoint, CheckpointCost, CheckpointPhase, CheckpointSpec,
    CheckpointStatus, CheckpointSummary, CheckpointType, Decision, DeliveryOutcome,
    NotificationRecord, PlanRef, ProjectRef, REVIEW_CHECKPOINT_LABEL, REVIEW_KEY, RequestedSecret,
    Sla, review_config_map_name,
};
pub use common::{DURATION_PATTERN, MONEY_PATTERN, conditions_schema};
pub use policy::{ApprovalPolicy, ApprovalPolicySpec};
pub use project::{
    ActualCostStatus, ApprovalTrigger, AssumeRole, AwsCloud, AwsCredentials, Backend, BackendType,
    Budget, CheckpointRefStatus, CloudSpec, Component, CostStatus, DeletionPolicy, DriftAction,
    DriftDetection, DriftStatus, DriftedResource, EffectivePolicyStatus, EscalationPolicy,
    HealthCheck, HealthCheckResult, HealthStatus, HistoryEntry, KubernetesBackend, LastApplied,
    LocalBackend, ManualOperationDone, NotificationChannel, PlanStatus, PlanSummaryStatus,
    PolicyReport, Project, ProjectApproval, ProjectPhase, ProjectSpec, ProjectStatus, QueueStatus,
    ResourceCost, Revision, RollbackStatus, RunnerJobStatus, S3Backend, SecretInput, SecretKeyRef,
    SlaPolicy, StateLockStatus, StateStatus,
};
pub use validation::{FieldError, SCHEMA_PATTERNS, validate_project};

/// API group of every tollgate kind.
pub const GROUP: &str = "tollgate.dev";
/// API version of every tollgate kind.
pub const VERSION: &str = "v1alpha1";

/// Annotation on a Project requesting a fresh plan: set it to a new value (e.g. a timestamp)
/// and tollgate plans again even though nothing else changed (e.g. to see drift).
pub const REPLAN_ANNOTATION: &str = "tollgate.dev/replan";

/// Annotation on a Project asking for a rollback to the applied revision it names
/// (`status.revisions[].revision`): that revision is planned again and goes through the gate.
pub const ROLLBACK_ANNOTATION: &str = "tollgate.dev/rollback-to";

/// Annotation on a Project naming who last changed its spec. Written only by tollgate's
/// admission webhook from the authenticated request (a value a user types is overwritten).
pub const LAST_CHANGED_BY_ANNOTATION: &str = "tollgate.dev/last-changed-by";

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use kube::CustomResourceExt;
    use serde_json::json;

    #[test]
    fn checkpoint_spec_is_immutable() {
        let spec = json!({"type": "PlanApproval", "projectRef": {"name": "p"}, "summary": {"text": "1 to add", "add": 1, "change": 0, "destroy": 0}, "requestedAt": "2026-01-01T00:00:00Z"});
        let mut changed = spec.clone();
        changed["summary"]["add"] = json!(0);
        assert!(CheckpointSpec::validate_cel(&spec, Some(&spec)).is_ok());
        let err = format!(
            "{:?}",
            CheckpointSpec::validate_cel(&changed, Some(&spec)).unwrap_err()
        );
        assert!(err.contains("immutable"), "{err}");
    }

    #[test]
    fn a_decision_cannot_be_changed_or_withdrawn() {
        let approved = json!({"decision": "Approved"});
        assert!(CheckpointStatus::validate_cel(&approved, Some(&json!({}))).is_ok());
        assert!(
            CheckpointStatus::validate_cel(&json!({"decision": "Rejected"}), Some(&approved))
                .is_err()
        );
        assert!(CheckpointStatus::validate_cel(&json!({}), Some(&approved)).is_err());
        assert!(
            CheckpointStatus::validate_cel(
                &json!({"decision": "Approved", "phase": "Approved"}),
                Some(&approved)
            )
            .is_ok()
        );
    }

    #[test]
    fn credentials_and_channels_are_one_of() {
        let both = json!({"assumeRole": {"roleArn": "arn:aws:iam::123456789012:role/x"}, "secretRef": {"name": "s"}});
        assert!(AwsCredentials::validate_cel(&both, None).is_err());
        assert!(AwsCredentials::validate_cel(&json!({"secretRef": {"name": "s"}}), None).is_ok());
        assert!(NotificationChannel::validate_cel(&json!({"name": "a"}), None).is_err());
        assert!(
            NotificationChannel::validate_cel(
                &json!({"name": "a", "webhookUrl": "http://x", "email": ["a@b"]}),
                None
            )
            .is_err()
        );
        assert!(
            NotificationChannel::validate_cel(&json!({"name": "a", "email": ["a@b"]}), None)
                .is_ok()
        );
        assert!(
            NotificationChannel::validate_cel(
                &json!({"name": "a", "webhookSecretRef": {"name": "hook"}}),
                None
            )
            .is_ok()
        );
        assert!(
            NotificationChannel::validate_cel(
                &json!({"name": "a", "webhookSecretRef": {"name": "hook"}, "webhookUrl": "http://x"}),
                None
            )
            .is_err()
        );
    }

    #[test]
    fn a_health_check_names_exactly_one_target() {
        use crate::api::HealthCheck;
        for (check, ok) in [
            (json!({"name": "web", "url": "http://x/"}), true),
            (json!({"name": "web", "urlFromOutput": "web_url"}), true),
            (json!({"name": "web"}), false),
            (
                json!({"name": "web", "url": "http://x/", "urlFromOutput": "web_url"}),
                false,
            ),
        ] {
            assert_eq!(
                HealthCheck::validate_cel(&check, None).is_ok(),
                ok,
                "{check}"
            );
        }
    }

    #[test]
    fn decisions_are_a_closed_set_and_each_type_has_its_own() {
        let crd = serde_json::to_value(Checkpoint::crd()).unwrap();
        let decision = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
            ["properties"]["decision"];
        assert_eq!(
            decision["enum"],
            json!(["Approved", "Rejected", "Retry", "Rollback", "Abandon"])
        );
        use crate::api::{CheckpointType, Decision};
        assert_eq!(
            Decision::allowed_for(CheckpointType::PlanApproval),
            [Decision::Approved, Decision::Rejected]
        );
        assert_eq!(
            Decision::allowed_for(CheckpointType::FailureEscalation),
            [Decision::Retry, Decision::Rollback, Decision::Abandon]
        );
    }

    /// Every pattern in the generated schema is one the client-side validator knows, so the
    /// two cannot drift apart silently.
    #[test]
    fn client_side_validation_knows_every_schema_pattern() {
        fn collect(v: &serde_json::Value, out: &mut Vec<String>) {
            match v {
                serde_json::Value::Object(m) => {
                    if let Some(p) = m.get("pattern").and_then(|p| p.as_str()) {
                        out.push(p.to_owned());
                    }
                    m.values().for_each(|v| collect(v, out));
                }
                serde_json::Value::Array(a) => a.iter().for_each(|v| collect(v, out)),
                _ => {}
            }
        }
        let mut patterns = Vec::new();
        collect(
            &serde_json::to_value(Project::crd()).unwrap(),
            &mut patterns,
        );
        assert!(patterns.len() > 10);
        for p in patterns {
            assert!(
                SCHEMA_PATTERNS.contains(&p.as_str()),
                "schema pattern {p} is not checked client-side"
            );
            assert!(regex::Regex::new(&p).is_ok());
        }
    }

    #[test]
    fn conditions_are_a_list_map_keyed_by_type() {
        let crd = serde_json::to_value(Project::crd()).unwrap();
        let conditions = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
            ["properties"]["conditions"];
        assert_eq!(conditions["x-kubernetes-list-type"], "map");
        assert_eq!(conditions["x-kubernetes-list-map-keys"], json!(["type"]));
    }
}

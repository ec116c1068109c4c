//! Post-apply health checks (`spec.healthChecks`): run after each successful apply; all
//! passing sets `Healthy=True`, one failing opens a `FailureEscalation` checkpoint whose
//! `Retry` runs the checks again, `Rollback` plans the revision before through the gate, and
//! `Abandon` leaves the Project `Failed` with what was applied.

use super::*;
use crate::api::{HealthCheckResult, HealthStatus};
use crate::health::{Outcome, Prober};
use crate::terraform::OutputValue;

/// Condition type set by the checks.
const HEALTHY: &str = "Healthy";

impl Run<'_> {
    /// Runs the checks after plan `plan` was applied and produced `outputs`. `None` when they
    /// pass (or none are declared): the caller goes on to `Ready`. Otherwise a
    /// `FailureEscalation` checkpoint is open and the returned action waits for it.
    pub(super) async fn check_health(
        &mut self,
        plan: &PlanStatus,
        outputs: &BTreeMap<String, OutputValue>,
    ) -> Result<Option<Action>, ReconcileError> {
        let checks = &self.project.spec.health_checks;
        if checks.is_empty() {
            self.status.health = None;
            self.status.conditions.retain(|c| c.type_ != HEALTHY);
            return Ok(None);
        }
        let outcomes = match Prober::new() {
            Ok(prober) => {
                let mut outcomes = Vec::with_capacity(checks.len());
                for probe in crate::health::probes(checks, outputs) {
                    outcomes.push(match probe {
                        Ok(probe) => prober.run(&probe).await,
                        Err(failed) => failed,
                    });
                }
                outcomes
            }
            Err(err) => checks
                .iter()
                .map(|c| Outcome {
                    name: c.name.clone(),
                    passed: false,
                    message: err.to_string(),
                })
                .collect(),
        };
        let redactor = self.sensitive_inputs();
        let results: Vec<HealthCheckResult> = outcomes
            .into_iter()
            .map(|o| HealthCheckResult {
                message: truncate(&redactor.redact(&o.message), 500),
                name: o.name,
                passed: o.passed,
            })
            .collect();
        let failed: Vec<String> = results
            .iter()
            .filter(|r| !r.passed)
            .map(|r| format!("{}: {}", r.name, r.message))
            .collect();
        let passed = failed.is_empty();
        let message = if passed {
            format!(
                "{} health check(s) passed after plan {} was applied",
                results.len(),
                plan.id
            )
        } else {
            format!(
                "health check(s) failed after plan {} was applied: {}",
                plan.id,
                failed.join("; ")
            )
        };
        self.ctx
            .metrics
            .health_checked(if passed { "passed" } else { "failed" });
        self.status.health = Some(HealthStatus {
            plan_id: plan.id.clone(),
            checked_at: Time(jiff::Timestamp::now()),
            results,
        });
        let generation = self.generation();
        conditions::set(
            &mut self.status.conditions,
            HEALTHY,
            passed,
            if passed {
                "HealthChecksPassed"
            } else {
                "HealthCheckFailed"
            },
            &truncate(&message, 1000),
            generation,
        );
        if passed {
            return Ok(None);
        }
        self.event(EventType::Warning, "HealthCheckFailed", &message)
            .await;
        self.escalate_unhealthy(plan, &message).await.map(Some)
    }

    /// Whether the pending escalation is about plan `plan`'s failed health checks (it was
    /// applied) rather than a failed apply.
    pub(super) fn unhealthy(&self, plan: &PlanStatus) -> bool {
        self.status
            .last_applied
            .as_ref()
            .is_some_and(|l| l.plan_id == plan.id)
            && self
                .status
                .health
                .as_ref()
                .is_some_and(|h| h.plan_id == plan.id && h.results.iter().any(|r| !r.passed))
    }

    /// The revision before the one that is applied now: what a rollback from failed health
    /// checks returns to.
    pub(super) fn revision_before(&self) -> Option<i64> {
        self.status.revisions.get(1).map(|r| r.revision)
    }

    async fn escalate_unhealthy(
        &mut self,
        plan: &PlanStatus,
        message: &str,
    ) -> Result<Action, ReconcileError> {
        let reasons = vec![
            message.to_owned(),
            "Retry: run the health checks again (nothing is applied)".to_owned(),
            match self.revision_before() {
                Some(revision) => format!(
                    "Rollback: plan revision {revision} (applied before this one) again; that plan goes through the gate"
                ),
                None => "Rollback: nothing was applied before this; decide Retry or Abandon".into(),
            },
            format!(
                "Abandon: keep plan {} as applied; the Project stays Failed until its spec changes",
                plan.id
            ),
        ];
        self.escalate(
            plan,
            "unhealthy",
            "HealthCheckFailed",
            message,
            Vec::new(),
            reasons,
        )
        .await
    }

    /// `Retry` on a failed health check: the checks run again against the applied outputs.
    pub(super) async fn recheck_health(
        &mut self,
        checkpoint: &str,
        by: &str,
        plan: &PlanStatus,
    ) -> Result<Action, ReconcileError> {
        let outputs = self.applied_outputs().await?;
        self.status.checkpoint_ref = None;
        if let Some(action) = self.check_health(plan, &outputs).await? {
            return Ok(action);
        }
        self.push_history(&plan.id, "Healthy", Some(by.to_owned()));
        self.transition(
            ProjectPhase::Ready,
            "Applied",
            &format!(
                "{by} decided Retry on checkpoint {checkpoint}: the health checks of plan {} pass",
                plan.id
            ),
        )
        .await?;
        self.wait_for_change().await
    }
}

//! Scheduled drift detection (`spec.driftDetection`): a refresh-only plan of the applied
//! configuration when [`crate::drift::Schedule`] says a check is due, the `Drifted`
//! condition, and the action's reaction (an Event, a notification, or a checkpoint whose
//! plan restores the declared state). Only from `Ready` ([`super::steps`]): never while a
//! checkpoint waits or an apply runs. The plan goes through the runner like any other, so
//! it waits for a slot under the controller's Terraform concurrency limit; with
//! `--runner=job` it runs in a runner Job.

use jiff::Timestamp;

use super::super::checkpoint::notifications::{
    GIVE_UP_AFTER_ATTEMPTS, effective_approval, namespace_config, routed_channels,
};
use super::job::{Credentials, JobRun};
use super::spend::SpendCheck;
use super::*;
use crate::api::{DriftAction, DriftStatus, NotificationRecord};
use crate::drift::{self, DriftReport, Schedule};
use crate::notify::{
    DriftSubject, Notification, Outcome, delivery_key, record_delivery, recorded_attempts,
};
use crate::runner_job::PlanMode;

/// The condition a check sets.
const DRIFTED: &str = "Drifted";
/// A drift check's tag in its STS session name.
const DRIFT_TAG: &str = "drift-check";
/// Where the refresh-only plan is saved (next to, never over, the Project's `tfplan`).
const DRIFT_PLAN_FILE: &str = "tfplan-drift";
/// Drift deliveries remembered in status (the schema's limit).
const MAX_DRIFT_RECORDS: usize = 32;

impl Run<'_> {
    /// The Project's drift schedule; `None` when it asks for no checks (no
    /// `driftDetection`, action `Ignore`, or an interval [`Run::validation_problems`]
    /// refuses).
    pub(super) fn drift_schedule(&self) -> Option<Schedule> {
        let detection = self.project.spec.drift_detection.as_ref()?;
        if detection.action == DriftAction::Ignore {
            return None;
        }
        let uid = self.project.uid().unwrap_or_else(|| self.name.clone());
        Schedule::new(&detection.interval, &uid).ok()
    }

    /// When the next check is due: the first slot after the last check, else after the
    /// last apply, else after the Project was created.
    pub(super) fn next_drift_check(&self, schedule: &Schedule) -> Timestamp {
        let since = self
            .status
            .drift
            .as_ref()
            .and_then(|d| d.checked_at.as_ref())
            .or(self.status.last_applied.as_ref().map(|l| &l.at))
            .or(self.project.meta().creation_timestamp.as_ref())
            .map_or_else(Timestamp::now, |t| t.0);
        schedule.next_after(since)
    }

    /// Whether a check is due now.
    pub(super) fn drift_due(&self) -> bool {
        self.drift_schedule()
            .is_some_and(|s| self.next_drift_check(&s) <= Timestamp::now())
    }

    /// What a Project that waits for a change does meanwhile: a Cost Explorer check when
    /// one is due ([`super::spend`]), and come back for its next drift or cost check when
    /// it is `Ready` with checks on; with drift checks off, forget what earlier ones found.
    pub(super) async fn wait_for_change(&mut self) -> Result<Action, ReconcileError> {
        let spend = match self.check_spend().await? {
            SpendCheck::Act(action) => return Ok(action),
            SpendCheck::Next(at) => Some(at),
            SpendCheck::Off => None,
        };
        let Some(schedule) = self.drift_schedule() else {
            if self.forget_drift_when_off() {
                self.save().await?;
            }
            return Ok(spend.map_or_else(Action::await_change, requeue_at));
        };
        if self.status.phase != Some(ProjectPhase::Ready) {
            return Ok(Action::await_change());
        }
        let drift = self.next_drift_check(&schedule);
        Ok(requeue_at(spend.map_or(drift, |s| s.min(drift))))
    }

    /// With checks off (no `driftDetection`, or `Ignore`), forgets what earlier checks
    /// found: `status.drift` and the `Drifted` condition. Whether anything changed.
    pub(super) fn forget_drift_when_off(&mut self) -> bool {
        if self.drift_schedule().is_some() {
            return false;
        }
        let had_drift = self.status.drift.take().is_some();
        let before = self.status.conditions.len();
        self.status.conditions.retain(|c| c.type_ != DRIFTED);
        had_drift || self.status.conditions.len() != before
    }

    /// A refresh-only plan of the applied configuration, then the action's reaction.
    pub(super) async fn check_drift(&mut self, plan_key: &str) -> Result<Action, ReconcileError> {
        let (Some(schedule), Some(detection)) = (
            self.drift_schedule(),
            self.project.spec.drift_detection.clone(),
        ) else {
            return self.wait_for_change().await;
        };
        // A runner Job counts against the Terraform run slots like any run (in-process, the
        // runner's own limit bounds the check).
        if self.ctx.config.job_runner.is_some()
            && let Some(action) = self.take_slot(ProjectPhase::Ready).await?
        {
            return Ok(action);
        }
        // A runner Job's are obtained with its run (`run_in_job`).
        if self.ctx.config.job_runner.is_none()
            && let Some(action) = self.obtain_credentials(DRIFT_TAG, true).await?
        {
            return Ok(action);
        }
        let previous = self.status.drift.clone().unwrap_or_default();
        let generation = self.generation();
        let checked =
            match self.refresh_only_plan(plan_key).await {
                Ok(JobRun::Running(action)) => return Ok(action),
                Ok(JobRun::Died { job, message }) => Err(ReconcileError::from(
                    TerraformError::in_job(ErrorKind::Failed, &job, &message),
                )),
                Ok(JobRun::Ended(json)) => json.map_err(ReconcileError::from),
                Err(err) => Err(err),
            };
        let report = match checked.and_then(|json| {
            let model = Plan::from_json(&json)?;
            Ok(DriftReport::from_review(
                &model.drift_review(Some(&self.sensitive_inputs())),
            ))
        }) {
            Ok(report) => report,
            Err(err) => {
                // A lock whose holder is gone is offered for force-unlock like a plan's; the
                // check runs again once it is approved (its slot was not used).
                if let Some(action) = self.on_state_locked(&err).await {
                    return Ok(action);
                }
                // Not retried at once: a check that fails (cloud API down, credentials
                // expired) is tried again at the next slot, and Ready stays what it is.
                let message = self.sensitive_inputs().redact(&format!(
                    "the drift check failed, tried again at the next interval: {err}"
                ));
                self.ctx.metrics.drift_checked("failed");
                let now = Timestamp::now();
                let next = schedule.next_after(now);
                let mut status = previous;
                status.checked_at = Some(Time(now));
                status.next_check_at = Some(Time(next));
                self.status.drift = Some(status);
                conditions::set_unknown(
                    &mut self.status.conditions,
                    DRIFTED,
                    "CheckFailed",
                    &message,
                    generation,
                );
                self.event(EventType::Warning, "DriftCheckFailed", &message)
                    .await;
                self.save().await?;
                return Ok(requeue_at(next));
            }
        };
        let now = Timestamp::now();
        let next = schedule.next_after(now);
        let reaction = drift::react(detection.action, &report, &previous);
        let mut status = drift::next_status(&previous, &report, now, next);
        self.ctx
            .metrics
            .drift_checked(if report.drifted() { "drifted" } else { "clean" });
        conditions::set(
            &mut self.status.conditions,
            DRIFTED,
            report.drifted(),
            if report.drifted() {
                "DriftDetected"
            } else {
                "NoDrift"
            },
            &report.message(),
            generation,
        );
        if reaction.event {
            self.event(EventType::Warning, "DriftDetected", &report.message())
                .await;
            self.audit(AuditAction::DriftDetected, |e| {
                e.reason = Some(report.message());
            });
        }
        if reaction.notify && self.notify_drift(&report, &mut status).await {
            status.notified_digest.clone_from(&report.digest);
        }
        if reaction.restore {
            status.restore_digest.clone_from(&report.digest);
            self.status.drift = Some(status);
            self.save().await?;
            self.ctx.metrics.drift_restore_opened();
            self.restore_drift = Some(report);
            return self.replan(plan_key, false).await;
        }
        self.status.drift = Some(status);
        self.save().await?;
        Ok(requeue_at(next))
    }

    /// Runs the refresh-only plan (in a runner Job with `--runner=job`) and returns its JSON;
    /// the plan file (which holds the real values) is deleted before this returns.
    async fn refresh_only_plan(
        &mut self,
        plan_key: &str,
    ) -> Result<JobRun<String>, ReconcileError> {
        let ws = self.write_workspace()?;
        let credentials = Credentials {
            tag: DRIFT_TAG,
            inputs: true,
        };
        let shown = match self.ctx.config.job_runner.clone() {
            Some(runner) => self
                .plan_in_job(
                    &runner,
                    PlanMode::RefreshOnly,
                    plan_key,
                    credentials,
                    &ws,
                    DRIFT_PLAN_FILE,
                )
                .await?
                .and_then(|(_, json)| Ok(json)),
            None => {
                let planned = self
                    .ctx
                    .runner
                    .init_and_plan(
                        &ws,
                        &INIT_OPTIONS,
                        &PlanRequest::of_mode(PlanMode::RefreshOnly, DRIFT_PLAN_FILE),
                    )
                    .await;
                JobRun::Ended(match planned {
                    Ok(outcome) => self.ctx.runner.show_plan_json(&ws, &outcome.saved).await,
                    Err(err) => Err(err),
                })
            }
        };
        if let Err(err) = std::fs::remove_file(ws.dir.join(DRIFT_PLAN_FILE))
            && err.kind() != std::io::ErrorKind::NotFound
        {
            tracing::debug!(error = %err, "cannot remove the drift check's plan file");
        }
        Ok(shown)
    }

    /// Sends the drift to the channels that hear about `Drifted`; whether every channel
    /// has it (or was given up on), so it is not sent again. Never fails the reconcile: a
    /// failed delivery is tried again at the next check that finds the same drift.
    async fn notify_drift(&self, report: &DriftReport, status: &mut DriftStatus) -> bool {
        let uid = self.project.uid().unwrap_or_default();
        let n = Notification::from_drift(self.subject(&uid), report, Timestamp::now());
        self.notify_without_checkpoint(&n, "DriftNotificationFailed", &mut status.notifications)
            .await
    }

    /// This Project, as a notification without a checkpoint names it.
    pub(super) fn subject<'s>(&'s self, uid: &'s str) -> DriftSubject<'s> {
        DriftSubject {
            namespace: &self.namespace,
            project: &self.name,
            project_uid: uid,
            environment: &self.project.spec.environment,
        }
    }

    /// Sends `n` (an event about the Project, not a checkpoint) to the channels routed its
    /// event, recording deliveries in `records`; whether every channel has it (or was given
    /// up on). A channel that cannot be resolved is a Warning Event `failed_reason`.
    pub(super) async fn notify_without_checkpoint(
        &self,
        n: &Notification,
        failed_reason: &str,
        records: &mut Vec<NotificationRecord>,
    ) -> bool {
        let approval = effective_approval(
            self.project.spec.approval.clone(),
            self.status.effective_policy.as_ref(),
        );
        let channels = match namespace_config(self.ctx, &self.namespace).await {
            Ok(config) => {
                routed_channels(self.ctx, &self.namespace, Some(&approval), &config, n.event).await
            }
            Err(err) => Err(err),
        };
        let channels = match channels {
            Ok(channels) => channels,
            Err(err) => {
                self.event(
                    EventType::Warning,
                    failed_reason,
                    &format!("the {} notification cannot be sent: {err}", n.event),
                )
                .await;
                return false;
            }
        };
        let open: Vec<_> = channels
            .into_iter()
            .filter(|c| {
                recorded_attempts(records, &delivery_key(n, &c.name)) < GIVE_UP_AFTER_ATTEMPTS
            })
            .collect();
        let mut complete = true;
        for delivery in self.ctx.notifier.deliver_all(&open, n, records).await {
            record_delivery(records, &delivery);
            let outcome = match delivery.outcome {
                Outcome::Delivered => "delivered",
                Outcome::Failed { .. } => {
                    complete = false;
                    "failed"
                }
            };
            self.ctx.metrics.notification(&delivery.channel, outcome);
        }
        bound(records);
        complete
    }

    /// After an apply: the applied plan put back whatever had drifted (a full plan
    /// restores every managed attribute), so `Drifted` says so until the next check.
    pub(super) fn drift_restored(&mut self, plan_id: &str) {
        let generation = self.generation();
        self.restore_drift = None;
        // Forgotten, so the same edit made again is reported (and restored) again.
        if let Some(drift) = &mut self.status.drift {
            drift.digest = None;
            drift.notified_digest = None;
            drift.restore_digest = None;
            drift.resources.clear();
            drift.omitted_resources = None;
        }
        if self
            .status
            .conditions
            .iter()
            .any(|c| c.type_ == DRIFTED && c.status == "True")
        {
            conditions::set(
                &mut self.status.conditions,
                DRIFTED,
                false,
                "Restored",
                &format!("plan {plan_id} applied the declared state; the next check confirms it"),
                generation,
            );
        }
    }
}

/// Keeps the newest [`MAX_DRIFT_RECORDS`] delivery records (drift and cost variance alike).
fn bound(records: &mut Vec<NotificationRecord>) {
    if records.len() > MAX_DRIFT_RECORDS {
        let excess = records.len() - MAX_DRIFT_RECORDS;
        records.drain(..excess);
    }
}

/// Comes back at `at` (at once if it has passed).
pub(super) fn requeue_at(at: Timestamp) -> Action {
    let wait = Timestamp::now()
        .duration_until(at)
        .try_into()
        .unwrap_or(Duration::ZERO);
    Action::requeue(wait.max(Duration::from_secs(1)))
}

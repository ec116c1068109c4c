//! Applying exactly the saved, approved plan; outputs and history.

use super::job::JobRun;
use super::*;

impl Run<'_> {
    /// Applies the saved plan recorded in status (restoring the file from its Secret when
    /// the working directory lost it), then records outputs and history.
    pub(super) async fn apply_saved(
        &mut self,
        saved: Option<SavedPlan>,
    ) -> Result<Action, ReconcileError> {
        let Some(plan) = self.status.plan.clone() else {
            return Ok(Action::await_change());
        };
        let phase = self.status.phase.unwrap_or(ProjectPhase::Applying);
        if let Some(action) = self.take_slot(phase).await? {
            return Ok(action);
        }
        // The saved plan holds the secret inputs' values: only the credentials are needed
        // (a runner Job's are obtained with its run, in `run_in_job`).
        if self.ctx.config.job_runner.is_none()
            && let Some(action) = self.obtain_credentials(&plan.id, false).await?
        {
            return Ok(action);
        }
        let ws = self.write_workspace()?;
        let decided_by = self.decided_by().await;
        let approved_checkpoint = self.status.checkpoint_ref.clone();
        let saved = match saved {
            Some(s) if s.verify().is_ok() => s,
            _ => match self.restore_plan(&plan).await? {
                Ok(saved) => saved,
                Err(problem) => {
                    return self
                        .refuse_saved_plan(
                            &plan,
                            &problem,
                            approved_checkpoint.as_ref(),
                            decided_by,
                        )
                        .await;
                }
            },
        };
        let destroying = self.status.phase == Some(ProjectPhase::Destroying);
        let (started, finished) = if destroying {
            (AuditAction::DestroyStarted, AuditAction::DestroyFinished)
        } else {
            (AuditAction::ApplyStarted, AuditAction::ApplyFinished)
        };
        let mut job_outputs = None;
        let applied = match self.ctx.config.job_runner.clone() {
            Some(runner) => match self.apply_in_job(&runner, &plan, &ws, started).await? {
                JobRun::Running(action) => return Ok(action),
                JobRun::Died { message, .. } => {
                    return self
                        .apply_died(&plan, &message, approved_checkpoint.as_ref(), decided_by)
                        .await;
                }
                JobRun::Ended(result) => result.map(|outputs| job_outputs = Some(outputs)),
            },
            None => {
                self.audit(started, |e| e.plan_digest = Some(plan.digest.clone()));
                self.ctx
                    .runner
                    .init_and_apply(&ws, &INIT_OPTIONS, &saved)
                    .await
                    .map(|_| ())
            }
        };
        let failed = applied.as_ref().err().map(ToString::to_string);
        self.audit(
            if failed.is_some() {
                AuditAction::ApplyFailed
            } else {
                finished
            },
            |e| {
                e.plan_digest = Some(plan.digest.clone());
                e.reason = failed.map(|f| truncate(&f, 1000));
            },
        );
        match applied {
            Ok(()) => {}
            Err(TerraformError::PlanFile(PlanError::DigestMismatch { path, actual, .. })) => {
                // The file changed between the check and the apply: never apply, never guess.
                let problem = PlanStoreProblem::DigestMismatch {
                    secret: format!("(working directory file {})", path.display()),
                    expected: plan.digest.clone(),
                    found: actual,
                };
                return self
                    .refuse_saved_plan(&plan, &problem, approved_checkpoint.as_ref(), decided_by)
                    .await;
            }
            Err(err) if err.kind() == ErrorKind::StalePlan => {
                // State moved since the plan: either this very apply finished in a run that
                // died before recording it (a controller restart), or something else changed
                // state. A fresh plan tells which; nothing is applied a second time.
                let (check, _) = self.verification_plan(&ws, &plan.id).await?;
                if check.status != TfPlanStatus::NoChanges {
                    self.event(EventType::Warning, "StalePlan", "the saved plan is stale (state changed since it was approved); planning again").await;
                    self.status.plan = None;
                    self.save().await?;
                    return Ok(Action::requeue(std::time::Duration::from_secs(1)));
                }
                self.event(
                    EventType::Normal,
                    "ApplyCompleted",
                    &format!(
                        "plan {} was applied by a run interrupted before it recorded the result",
                        plan.id
                    ),
                )
                .await;
            }
            // Throttling, the network, a state lock held past -lock-timeout (typically by
            // the Terraform of a controller that died mid-apply): tried again with backoff,
            // a bounded number of times, then a person is asked.
            Err(err) if self.may_retry_apply(&err) => {
                self.remember_job_ended().await?;
                return Err(err.into());
            }
            Err(err) => {
                self.ctx.metrics.applied("failed");
                let error = truncate(&self.sensitive_inputs().redact(&err.to_string()), 2000);
                self.record_apply_outcome(approved_checkpoint.as_ref(), Err(&error))
                    .await;
                self.push_history(&plan.id, "Failed", decided_by);
                self.status.checkpoint_ref = None;
                return self.escalate_failure(&plan, &error, &ws).await;
            }
        }
        self.ctx.metrics.applied("succeeded");
        self.lock_released();
        self.record_apply_outcome(approved_checkpoint.as_ref(), Ok(&plan.id))
            .await;
        self.accept_approved_budget().await;
        // A destroy leaves no outputs, and the Project's namespace may be being deleted
        // (nothing can be created there).
        let outputs = if self.project.meta().deletion_timestamp.is_none() {
            let outputs = match job_outputs {
                Some(outputs) => outputs,
                None => self.state_outputs(&ws, &plan.id).await?,
            };
            let outputs_digest = self.write_outputs(&outputs).await?;
            self.record_revision(&plan, outputs_digest, &outputs)
                .await?;
            Some(outputs)
        } else {
            None
        };
        self.delete_plans_except(None).await?;
        self.push_history(&plan.id, "Applied", decided_by);
        self.status.review_required = None;
        self.plan_verified();
        self.status.last_applied = Some(LastApplied {
            plan_id: plan.id.clone(),
            at: Time(jiff::Timestamp::now()),
            cost: self.status.cost.as_ref().map(|c| c.monthly.clone()),
        });
        self.status.checkpoint_ref = None;
        self.drift_restored(&plan.id);
        if let Some(outputs) = &outputs
            && let Some(action) = self.after_apply(&plan, outputs).await?
        {
            return Ok(action);
        }
        // The applied plan's inputs are now the state: an unchanged Project needs no new plan.
        self.transition(
            ProjectPhase::Ready,
            "Applied",
            &format!("plan {} applied", plan.id),
        )
        .await?;
        self.wait_for_change().await
    }

    /// A runner Job ended without a result: the apply failed as far as anyone can tell,
    /// and its run may still hold the state lock; a person looks (Failed, `RunnerJobDied`).
    async fn apply_died(
        &mut self,
        plan: &PlanStatus,
        message: &str,
        checkpoint: Option<&CheckpointRefStatus>,
        decided_by: Option<String>,
    ) -> Result<Action, ReconcileError> {
        self.audit(AuditAction::ApplyFailed, |e| {
            e.plan_digest = Some(plan.digest.clone());
            e.reason = Some(truncate(message, 1000));
        });
        self.ctx.metrics.applied("failed");
        self.record_apply_outcome(checkpoint, Err(message)).await;
        self.push_history(&plan.id, "Failed", decided_by);
        self.status.checkpoint_ref = None;
        self.transition(ProjectPhase::Failed, "RunnerJobDied", message)
            .await?;
        Ok(Action::await_change())
    }

    /// Tells the approved checkpoint how its apply ended (`status.applyOutcome`), which is
    /// what notifies `Applied` / `ApplyFailed`. Best effort: the Project's own status is
    /// the record; a failure here costs a notification, never an apply.
    pub(super) async fn record_apply_outcome(
        &self,
        checkpoint: Option<&CheckpointRefStatus>,
        outcome: Result<&str, &str>,
    ) {
        let Some(reference) = checkpoint else {
            return;
        };
        let (succeeded, message) = match outcome {
            Ok(plan_id) => (true, format!("plan {plan_id} applied")),
            Err(error) => (false, truncate(error, 4000)),
        };
        let patch = json!({"status": {"applyOutcome": {
            "succeeded": succeeded,
            "at": Time(jiff::Timestamp::now()),
            "message": message,
        }}});
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PatchParams::default()
        };
        if let Err(err) = self
            .checkpoints_in(reference.namespace.as_deref())
            .patch_status(&reference.name, &params, &Patch::Merge(&patch))
            .await
        {
            tracing::warn!(checkpoint = %reference.name, error = %err, "cannot record the apply outcome on the checkpoint; its Applied/ApplyFailed notification is not sent");
        }
    }

    /// Writes the outputs Secret; returns the sha256 of the outputs.
    pub(super) async fn write_outputs(
        &mut self,
        outputs: &BTreeMap<String, crate::terraform::OutputValue>,
    ) -> Result<String, ReconcileError> {
        let data: BTreeMap<String, ByteString> = outputs
            .iter()
            .map(|(name, output)| {
                let text = match &output.value {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (name.clone(), ByteString(text.into_bytes()))
            })
            .collect();
        let mut hasher = Sha256::new();
        for (name, value) in &data {
            hasher.update(format!("{}\0{}\0", name.len(), value.0.len()).as_bytes());
            hasher.update(name.as_bytes());
            hasher.update(&value.0);
        }
        let outputs_digest = hex::encode(hasher.finalize());
        let name = format!("{}-outputs", self.name);
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(self.namespace.clone()),
                labels: Some(BTreeMap::from([(
                    PROJECT_LABEL.to_owned(),
                    self.name.clone(),
                )])),
                owner_references: self.project.controller_owner_ref(&()).map(|o| vec![o]),
                ..Default::default()
            },
            data: Some(data),
            type_: Some("tollgate.dev/outputs".into()),
            ..Default::default()
        };
        let patch = serde_json::to_value(&secret).map(|mut v| {
            v["apiVersion"] = json!("v1");
            v["kind"] = json!("Secret");
            v
        });
        let patch = patch.map_err(|source| ReconcileError::Encode {
            what: "outputs Secret",
            source: source.into(),
        })?;
        self.secrets()
            .patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await
            .during(ApiStep::WriteOutputs)?;
        self.status.outputs_secret_ref = Some(SecretKeyRef { name });
        Ok(outputs_digest)
    }

    pub(super) fn push_history(
        &mut self,
        plan_id: &str,
        outcome: &str,
        decided_by: Option<String>,
    ) {
        self.status.history.insert(
            0,
            HistoryEntry {
                plan_id: plan_id.to_owned(),
                outcome: outcome.to_owned(),
                at: Time(jiff::Timestamp::now()),
                decided_by,
            },
        );
        self.status.history.truncate(HISTORY_LIMIT);
    }
}

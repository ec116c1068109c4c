//! Applying through a runner Job (`--runner=job`, the pure part is `crate::runner_job`).
//!
//! One Job per run of an approved plan, named after the Project, the plan digest and the
//! attempt, so every controller computes the same name: the one that finds the Job adopts
//! it and never starts a second apply. The Job is created suspended, then its inputs and
//! result Secrets (owned by it), then the run is recorded in `status.runnerJob`, and only
//! then is it let run. A Job that ends without a result is a run that died: reported, with
//! the run's identity for the stuck-lock playbook.

use k8s_openapi::api::batch::v1::Job;
use kube::api::DeleteParams;

use super::*;
use crate::api::RunnerJobStatus;
use crate::runner_job::{self, Bundle, JobRequest, JobState, Outcome};

/// How often a Project whose Job runs looks at it without being woken by the Job's watch.
const JOB_RECHECK: Duration = Duration::from_secs(60);

/// Where the apply in a runner Job stands.
pub(super) enum JobRun {
    /// It runs; the Job's watch wakes the Project when it ends.
    Running(Action),
    /// It ended: the outputs, or Terraform's error.
    Ended(Result<BTreeMap<String, crate::terraform::OutputValue>, TerraformError>),
    /// It ended without a result (deleted, its pod failed or it ran past its deadline).
    Died {
        /// The Job's name.
        job: String,
        /// The run's identity.
        holder: String,
        /// What Kubernetes says.
        reason: String,
    },
}

impl Run<'_> {
    fn jobs(&self) -> Api<Job> {
        Api::namespaced(self.ctx.client.clone(), &self.ctx.config.state_namespace)
    }

    /// Starts, adopts or reads the runner Job applying `plan` (already verified here).
    pub(super) async fn apply_in_job(
        &mut self,
        runner: &super::super::JobRunner,
        plan: &PlanStatus,
        ws: &Workspace,
        started: AuditAction,
    ) -> Result<JobRun, ReconcileError> {
        let previous = self
            .status
            .runner_job
            .clone()
            .filter(|r| r.plan_id == plan.id);
        let attempt = previous
            .as_ref()
            .map_or(0, |r| if r.recorded { r.attempt + 1 } else { r.attempt });
        let name = runner_job::job_name(&self.namespace, &self.name, &plan.digest, attempt);
        let jobs = self.jobs();
        let job = match jobs.get_opt(&name).await.during(ApiStep::RunnerJob)? {
            Some(job) => job,
            None => {
                if let Some(ours) = previous.filter(|r| !r.recorded && r.job == name) {
                    return Ok(JobRun::Died {
                        job: name,
                        holder: ours.holder,
                        reason: "the Job was deleted before it finished".into(),
                    });
                }
                let settings = runner.config.for_project(&self.namespace, &self.name);
                let chunks = self.plans().chunk_names(&plan.id).await?;
                let manifest = runner_job::build(&JobRequest {
                    namespace: &self.ctx.config.state_namespace,
                    project_namespace: &self.namespace,
                    project_name: &self.name,
                    plan_digest: &plan.digest,
                    attempt,
                    image: &runner.image,
                    plan_chunks: &chunks,
                    settings: &settings,
                });
                match jobs.create(&PostParams::default(), &manifest).await {
                    Ok(job) => job,
                    // Another controller (a leader that just lost its Lease) made it.
                    Err(kube::Error::Api(e)) if e.code == 409 => {
                        jobs.get(&name).await.during(ApiStep::RunnerJob)?
                    }
                    Err(e) => return Err(ApiStep::RunnerJob.failed(e)),
                }
            }
        };
        let holder = runner_job::holder(&self.ctx.config.state_namespace, &name);
        if job.spec.as_ref().and_then(|s| s.suspend) == Some(true) {
            self.hand_inputs(&job, ws).await?;
            self.record_run(plan, attempt, &name, &holder).await?;
            jobs.patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(&json!({"spec": {"suspend": false}})),
            )
            .await
            .during(ApiStep::RunnerJob)?;
            self.audit(started, |e| {
                e.plan_digest = Some(plan.digest.clone());
                e.reason = Some(format!("runner Job, run {holder}"));
            });
            tracing::info!(job = %name, %holder, "the runner Job applies the plan");
            return Ok(JobRun::Running(Action::requeue(JOB_RECHECK)));
        }
        // Found running or finished by a controller that did not start it: adopt it.
        if self
            .status
            .runner_job
            .as_ref()
            .is_none_or(|r| r.job != name)
        {
            self.record_run(plan, attempt, &name, &holder).await?;
        }
        let state = runner_job::state(&job);
        if state == JobState::Running {
            tracing::info!(job = %name, %holder, "waiting for the runner Job");
            return Ok(JobRun::Running(Action::requeue(JOB_RECHECK)));
        }
        let result = self
            .state_secrets()
            .get_opt(&runner_job::result_secret(&name))
            .await
            .during(ApiStep::RunnerJob)?;
        let data = result.and_then(|s| s.data).unwrap_or_default();
        let outcome: Option<Outcome> = data
            .get(runner_job::OUTCOME_KEY)
            .and_then(|b| serde_json::from_slice(&b.0).ok());
        if let Some(recorded) = self.status.runner_job.as_mut() {
            recorded.recorded = true;
        }
        let Some(outcome) = outcome else {
            let reason = match state {
                JobState::Failed { reason } => reason,
                _ => "it completed without writing its result".into(),
            };
            return Ok(JobRun::Died {
                job: name,
                holder,
                reason,
            });
        };
        if outcome.succeeded {
            let outputs = data
                .get(runner_job::OUTPUTS_KEY)
                .and_then(|b| serde_json::from_slice(&b.0).ok())
                .unwrap_or_default();
            return Ok(JobRun::Ended(Ok(outputs)));
        }
        let kind = outcome
            .error_kind
            .and_then(|k| serde_json::from_value(serde_json::Value::String(k)).ok())
            .unwrap_or(ErrorKind::Failed);
        // A run that is retried gets a new Job: free this one's name and Secrets now.
        if let Err(err) = jobs.delete(&name, &DeleteParams::background()).await {
            tracing::warn!(job = %name, error = %err, "cannot delete the finished runner Job; its TTL removes it");
        }
        Ok(JobRun::Ended(Err(TerraformError::in_job(
            kind,
            &name,
            outcome.error.as_deref().unwrap_or("no message"),
        ))))
    }

    /// Records in status that Job `job` runs `plan` (before it may start, or on adopting it).
    async fn record_run(
        &mut self,
        plan: &PlanStatus,
        attempt: i64,
        job: &str,
        holder: &str,
    ) -> Result<(), ReconcileError> {
        self.status.runner_job = Some(RunnerJobStatus {
            plan_id: plan.id.clone(),
            attempt,
            job: job.to_owned(),
            holder: holder.to_owned(),
            started_at: Time(jiff::Timestamp::now()),
            recorded: false,
        });
        self.save().await
    }

    /// Creates the Job's inputs Secret (the rendered configuration and the run's
    /// environment) and its empty result Secret, both owned by the Job.
    async fn hand_inputs(&self, job: &Job, ws: &Workspace) -> Result<(), ReconcileError> {
        let name = job.name_any();
        let (env, redact) = ws.handover();
        let bundle = Bundle {
            files: Bundle::read_dir(&ws.dir).map_err(|source| ReconcileError::Encode {
                what: "runner inputs",
                source: source.into(),
            })?,
            env,
            redact,
        };
        let encoded = bundle.encode().map_err(|source| ReconcileError::Encode {
            what: "runner inputs",
            source: source.into(),
        })?;
        let owner = job.controller_owner_ref(&());
        let secrets = self.state_secrets();
        for (secret, data) in [
            (
                runner_job::inputs_secret(&name),
                BTreeMap::from([(runner_job::BUNDLE_KEY.to_owned(), ByteString(encoded))]),
            ),
            (runner_job::result_secret(&name), BTreeMap::new()),
        ] {
            let object = Secret {
                metadata: ObjectMeta {
                    name: Some(secret),
                    namespace: Some(self.ctx.config.state_namespace.clone()),
                    labels: Some(project_labels(&self.namespace, &self.name)),
                    owner_references: owner.clone().map(|o| vec![o]),
                    ..ObjectMeta::default()
                },
                data: Some(data),
                type_: Some("tollgate.dev/runner".into()),
                ..Secret::default()
            };
            match secrets.create(&PostParams::default(), &object).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => return Err(ApiStep::RunnerJob.failed(e)),
            }
        }
        Ok(())
    }
}

//! Running Terraform in a runner Job (`--runner=job`, the pure part is `crate::runner_job`):
//! the plans (change, destroy and drift plans) and the applies of approved plans.
//!
//! One Job per run, named after the Project, what the run is (the plan digest of an apply,
//! a digest of a plan's inputs) and the attempt, so every controller computes the same
//! name: the one that finds the Job adopts it and never starts a second run. The Job is
//! created suspended, then its inputs and result Secrets (owned by it), then the run is
//! recorded in `status.runnerJob`, and only then is it let run. A Job that ends without a
//! result is a run that died: reported, with the run's identity for the stuck-lock
//! playbook. While its Job runs, the Project keeps its Terraform run slot.

use k8s_openapi::api::batch::v1::Job;
use kube::api::DeleteParams;

use super::*;
use crate::api::RunnerJobStatus;
use crate::runner_job::{self, Bundle, JobRequest, JobState, Outcome, PlanMode, RunCommand};
use crate::terraform::{CommandOutput, PlanOutcome};

mod refresh;
mod waited;

/// How often a Project whose Job runs looks at it without being woken by the Job's watch.
pub(super) const JOB_RECHECK: Duration = Duration::from_secs(60);

/// Where a run in a runner Job stands.
pub(super) enum JobRun<T> {
    /// It runs; the Job's watch wakes the Project when it ends.
    Running(Action),
    /// It ended: what it handed back, or Terraform's error.
    Ended(Result<T, TerraformError>),
    /// It ended without a result (deleted, its pod failed or it ran past its deadline).
    Died {
        /// The Job's name.
        job: String,
        /// What happened: the Job, Kubernetes' reason, and the run's identity, which may
        /// still hold the state lock.
        message: String,
    },
}

impl<T> JobRun<T> {
    /// What follows from a run that ended well.
    pub(super) fn and_then<U>(
        self,
        next: impl FnOnce(T) -> Result<U, TerraformError>,
    ) -> JobRun<U> {
        match self {
            Self::Running(action) => JobRun::Running(action),
            Self::Ended(result) => JobRun::Ended(result.and_then(next)),
            Self::Died { job, message } => JobRun::Died { job, message },
        }
    }
}

/// A successful run's result Secret.
struct Handed {
    job: String,
    outcome: Outcome,
    data: BTreeMap<String, ByteString>,
}

impl Handed {
    fn bytes(&self, key: &str) -> Result<&[u8], TerraformError> {
        self.data.get(key).map(|b| b.0.as_slice()).ok_or_else(|| {
            TerraformError::in_job(
                ErrorKind::Failed,
                &self.job,
                &format!(
                    "its result has no {key}; the runner image may be older than the controller"
                ),
            )
        })
    }
}

/// One run to make in a runner Job.
struct JobTask<'a> {
    /// Recorded as `status.runnerJob.planId`.
    run_id: String,
    /// Which run it is ([`runner_job::job_name`]).
    run_key: &'a str,
    command: RunCommand<'a>,
    /// Audited when the Job is let run.
    started: Option<(AuditAction, &'a str)>,
    /// The credentials the run gets ([`Run::obtain_credentials`]).
    credentials: Credentials<'a>,
}

/// What [`Run::obtain_credentials`] obtains for a run in a Job: minted when the Job is
/// created or let run, when a plan's result is read (the secret inputs' values redact it),
/// and while it runs only once its credentials Secret is due, never at every look.
#[derive(Clone, Copy)]
pub(super) struct Credentials<'a> {
    /// The run's tag in the STS session name.
    pub tag: &'a str,
    /// Whether the secret inputs' values are read too (a plan).
    pub inputs: bool,
}

impl Run<'_> {
    fn jobs(&self) -> Api<Job> {
        crate::reconcile::runner_jobs(self.ctx)
    }

    /// Starts, adopts or reads the runner Job applying `plan` (already verified here).
    pub(super) async fn apply_in_job(
        &mut self,
        runner: &super::super::JobRunner,
        plan: &PlanStatus,
        ws: &Workspace,
        started: AuditAction,
    ) -> Result<JobRun<BTreeMap<String, crate::terraform::OutputValue>>, ReconcileError> {
        let task = JobTask {
            run_id: plan.id.clone(),
            run_key: &plan.digest,
            // Its chunk Secrets are listed only when its Job is made (`run_in_job`).
            command: RunCommand::Apply {
                digest: &plan.digest,
                chunks: &[],
            },
            started: Some((started, &plan.digest)),
            credentials: Credentials {
                tag: &plan.id,
                inputs: false,
            },
        };
        Ok(self
            .run_in_job(runner, &task, ws)
            .await?
            .and_then(|handed| {
                Ok(handed
                    .data
                    .get(runner_job::OUTPUTS_KEY)
                    .and_then(|b| serde_json::from_slice(&b.0).ok())
                    .unwrap_or_default())
            }))
    }

    /// Starts, adopts or reads the runner Job making a `mode` plan from `plan_key`; when it
    /// ended, the plan is saved as `file` in the working directory (with the dependency
    /// lock file `init` wrote, which its apply needs) and returned with its `show -json`.
    pub(super) async fn plan_in_job(
        &mut self,
        runner: &super::super::JobRunner,
        mode: PlanMode,
        plan_key: &str,
        credentials: Credentials<'_>,
        ws: &Workspace,
        file: &str,
    ) -> Result<JobRun<(PlanOutcome, String)>, ReconcileError> {
        // A plan of the same inputs is a new run once state may have moved (an apply, a
        // failed one, a drift check): never adopt an older run's plan.
        let mut hasher = Sha256::new();
        hasher.update(format!("{}\0{plan_key}\0", mode.arg()).as_bytes());
        if let Some(applied) = &self.status.last_applied {
            hasher.update(applied.plan_id.as_bytes());
        }
        if let Some(checked) = self
            .status
            .drift
            .as_ref()
            .and_then(|d| d.checked_at.as_ref())
        {
            hasher.update(format!("\0{}", checked.0).as_bytes());
        }
        // A failed apply (what it did before failing) and a state reset move state too.
        if let Some(moved) = self
            .status
            .history
            .iter()
            .find(|h| matches!(h.outcome.as_str(), "Failed" | "StateReset"))
        {
            hasher.update(format!("\0{}\0{}", moved.outcome, moved.at.0).as_bytes());
        }
        let run_key = hex::encode(hasher.finalize());
        let task = JobTask {
            run_id: format!("{}-{}", mode.arg(), run_key.get(..16).unwrap_or(&run_key)),
            run_key: &run_key,
            command: RunCommand::Plan(mode),
            started: None,
            credentials,
        };
        Ok(self
            .run_in_job(runner, &task, ws)
            .await?
            .and_then(|handed| take_plan(&handed, ws, file)))
    }

    /// The run `task` in its Job: created (suspended, then given its inputs, recorded in
    /// status, let run), adopted, or read once it ended. A failed run's Job and a plan's,
    /// once read, are deleted: a retry is a new Job, and the plan is kept elsewhere.
    async fn run_in_job(
        &mut self,
        runner: &super::super::JobRunner,
        task: &JobTask<'_>,
        ws: &Workspace,
    ) -> Result<JobRun<Handed>, ReconcileError> {
        let previous = self
            .status
            .runner_job
            .clone()
            .filter(|r| r.plan_id == task.run_id);
        let attempt = previous
            .as_ref()
            .map_or(0, |r| if r.recorded { r.attempt + 1 } else { r.attempt });
        let name = runner_job::job_name(
            &task.command,
            &self.namespace,
            &self.name,
            task.run_key,
            attempt,
        );
        let jobs = self.jobs();
        let mut minted = false;
        let job = match jobs.get_opt(&name).await.during(ApiStep::RunnerJob)? {
            Some(job) => job,
            None => {
                // An apply never runs twice; a plan whose Job vanished is simply made again.
                let apply = matches!(task.command, RunCommand::Apply { .. });
                if let Some(ours) = previous.filter(|r| apply && !r.recorded && r.job == name) {
                    let message = self.died_message(
                        &name,
                        &ours.holder,
                        "the Job was deleted before it finished",
                    );
                    return Ok(JobRun::Died { job: name, message });
                }
                if let Some(action) = self.mint_for_job(task.credentials).await? {
                    return Ok(JobRun::Running(action));
                }
                minted = true;
                let chunks;
                let command = match task.command {
                    RunCommand::Apply { digest, .. } => {
                        chunks = self.plans().chunk_names(&task.run_id).await?;
                        RunCommand::Apply {
                            digest,
                            chunks: &chunks,
                        }
                    }
                    other => other,
                };
                let settings = runner.config.for_project(&self.namespace, &self.name);
                let manifest = runner_job::build(&JobRequest {
                    namespace: &self.ctx.config.state_namespace,
                    project_namespace: &self.namespace,
                    project_name: &self.name,
                    command,
                    run_key: task.run_key,
                    attempt,
                    image: &runner.image,
                    settings: &settings,
                    credentials: self.credentials_by_secret,
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
        let verb = task.command.verb();
        if job.spec.as_ref().and_then(|s| s.suspend) == Some(true) {
            if !minted && let Some(action) = self.mint_for_job(task.credentials).await? {
                return Ok(JobRun::Running(action));
            }
            // With the credentials and secret inputs just obtained in its environment.
            self.hand_inputs(&job, &self.workspace_in(&ws.dir)).await?;
            self.record_run(&task.run_id, attempt, &name, &holder)
                .await?;
            jobs.patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(&json!({"spec": {"suspend": false}})),
            )
            .await
            .during(ApiStep::RunnerJob)?;
            if let Some((action, digest)) = task.started {
                self.audit(action, |e| {
                    e.plan_digest = Some(digest.to_owned());
                    e.reason = Some(format!("runner Job, run {holder}"));
                });
            }
            tracing::info!(job = %name, %holder, "the runner Job runs {verb}");
            self.job_running = true;
            return Ok(JobRun::Running(Action::requeue(JOB_RECHECK)));
        }
        // Found running or finished by a controller that did not start it: adopt it.
        if self
            .status
            .runner_job
            .as_ref()
            .is_none_or(|r| r.job != name)
        {
            self.record_run(&task.run_id, attempt, &name, &holder)
                .await?;
        }
        let state = runner_job::state(&job);
        if state == JobState::Running {
            tracing::info!(job = %name, %holder, "waiting for the runner Job ({verb})");
            self.job_running = true;
            let recheck = self
                .refresh_job_credentials(&name, task.credentials)
                .await?;
            return Ok(JobRun::Running(Action::requeue(recheck)));
        }
        // A plan's result is redacted with the secret inputs' values: read them before the
        // result (and its Job, kept until then).
        if task.credentials.inputs
            && !minted
            && let Some(action) = self.mint_for_job(task.credentials).await?
        {
            return Ok(JobRun::Running(action));
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
            let message = self.died_message(&name, &holder, &reason);
            return Ok(JobRun::Died { job: name, message });
        };
        // Kept for `kubectl logs`: an apply that succeeded (until its TTL).
        if !outcome.succeeded || !matches!(task.command, RunCommand::Apply { .. }) {
            // A run that is retried gets a new Job: free this one's name and Secrets now.
            if let Err(err) = jobs.delete(&name, &DeleteParams::background()).await {
                tracing::warn!(job = %name, error = %err, "cannot delete the finished runner Job; its TTL removes it");
            }
        }
        if outcome.succeeded {
            return Ok(JobRun::Ended(Ok(Handed {
                job: name,
                outcome,
                data,
            })));
        }
        let kind = outcome
            .error_kind
            .and_then(|k| serde_json::from_value(serde_json::Value::String(k)).ok())
            .unwrap_or(ErrorKind::Failed);
        Ok(JobRun::Ended(Err(TerraformError::in_job(
            kind,
            &name,
            outcome.error.as_deref().unwrap_or("no message"),
        ))))
    }

    /// Before a failed run is retried: its Job's end is saved, so the retry is the next
    /// attempt's Job, never the old one read again.
    pub(super) async fn remember_job_ended(&self) -> Result<(), ReconcileError> {
        if self.status.runner_job.as_ref().is_some_and(|r| r.recorded) {
            self.save().await?;
        }
        Ok(())
    }

    /// A plan's Job ended without a result: the Project is `Failed` (`RunnerJobDied`) until
    /// its inputs change or a re-plan is asked for (`tollgate.dev/replan`), so a run that
    /// keeps dying does not start Job after Job.
    pub(super) async fn plan_died(
        &mut self,
        plan_key: &str,
        message: &str,
    ) -> Result<Action, ReconcileError> {
        self.status.plan_failed_for = Some(plan_key.to_owned());
        self.transition(ProjectPhase::Failed, "RunnerJobDied", message)
            .await?;
        Ok(Action::await_change())
    }

    /// What a run whose Job ended without a result says: the Job, why, and that its run
    /// may still hold the state lock.
    fn died_message(&self, job: &str, holder: &str, reason: &str) -> String {
        format!(
            "runner Job {}/{job} ended without a result ({reason}); run {holder} may still hold the state lock: see \"A runner Job died\" in docs/operator-guide.md",
            self.ctx.config.state_namespace
        )
    }

    /// Records in status that Job `job` runs `run_id` (before it may start, or on
    /// adopting it).
    async fn record_run(
        &mut self,
        run_id: &str,
        attempt: i64,
        job: &str,
        holder: &str,
    ) -> Result<(), ReconcileError> {
        self.status.runner_job = Some(RunnerJobStatus {
            plan_id: run_id.to_owned(),
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
        let (mut env, mut redact) = ws.handover();
        if let Some(credentials) = self.by_secret() {
            // Keys in the environment would win over the pod's endpoint: none in its
            // inputs (the pod redacts what its credentials file holds).
            let keys = credentials.env();
            for (name, value) in &mut env {
                if keys.iter().any(|(key, _)| key == name) {
                    value.clear();
                }
            }
            redact.retain(|secret| !keys.iter().any(|(_, value)| value == secret));
        }
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
        let mut handed = vec![
            (
                runner_job::inputs_secret(&name),
                BTreeMap::from([(runner_job::BUNDLE_KEY.to_owned(), ByteString(encoded))]),
            ),
            (runner_job::result_secret(&name), BTreeMap::new()),
        ];
        if let Some(credentials) = self.by_secret() {
            let document = ByteString(credentials.to_ecs_document().into_bytes());
            handed.push((
                runner_job::credentials_secret(&name),
                BTreeMap::from([(runner_job::CREDENTIALS_KEY.to_owned(), document)]),
            ));
        }
        for (secret, data) in handed {
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

/// Writes the plan a plan Job handed back as `file` (and its dependency lock file) into the
/// working directory: the saved plan as if Terraform had run here, and its `show -json`.
fn take_plan(
    handed: &Handed,
    ws: &Workspace,
    file: &str,
) -> Result<(PlanOutcome, String), TerraformError> {
    let unzipped = |key: &str| {
        runner_job::gunzip(handed.bytes(key)?).map_err(|e| {
            TerraformError::in_job(
                ErrorKind::Failed,
                &handed.job,
                &format!("its {key} is unreadable: {e}"),
            )
        })
    };
    let write = |file: &str, bytes: &[u8]| {
        let path = ws.dir.join(file);
        std::fs::write(&path, bytes).map_err(|source| TerraformError::Io {
            context: format!("writing {}", path.display()),
            source,
        })
    };
    write(file, &unzipped(runner_job::PLAN_KEY)?)?;
    if let Ok(lock) = handed.bytes(runner_job::LOCK_KEY) {
        write(".terraform.lock.hcl", lock)?;
    }
    let json = unzipped(runner_job::SHOW_KEY)?;
    let json = String::from_utf8(json).map_err(|_| {
        TerraformError::in_job(ErrorKind::Failed, &handed.job, "its plan JSON is not UTF-8")
    })?;
    let saved = SavedPlan::from_file(None, ws.dir.join(file))?;
    let status = if handed.outcome.changes == Some(false) {
        TfPlanStatus::NoChanges
    } else {
        TfPlanStatus::Changes
    };
    let outcome = PlanOutcome {
        status,
        saved,
        output: CommandOutput::default(),
    };
    Ok((outcome, json))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn handed(data: &[(&str, Vec<u8>)], changes: Option<bool>) -> Handed {
        Handed {
            job: "tollgate-plan-x-0".into(),
            outcome: Outcome {
                holder: "job/ns/tollgate-plan-x-0".into(),
                succeeded: true,
                changes,
                error_kind: None,
                error: None,
            },
            data: data
                .iter()
                .map(|(k, v)| ((*k).to_owned(), ByteString(v.clone())))
                .collect(),
        }
    }

    #[test]
    fn a_handed_back_plan_is_saved_as_if_terraform_had_run_here() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::new(dir.path());
        let plan = b"PK\x03\x04 a saved plan".to_vec();
        let result = handed(
            &[
                (runner_job::PLAN_KEY, runner_job::gzip(&plan).unwrap()),
                (runner_job::SHOW_KEY, runner_job::gzip(b"{}").unwrap()),
                (runner_job::LOCK_KEY, b"# lock".to_vec()),
            ],
            Some(false),
        );
        let (outcome, json) = take_plan(&result, &ws, "tfplan-drift").unwrap();
        assert_eq!(json, "{}");
        assert_eq!(outcome.status, TfPlanStatus::NoChanges);
        assert_eq!(
            std::fs::read(dir.path().join("tfplan-drift")).unwrap(),
            plan
        );
        assert_eq!(outcome.saved.digest, crate::plan::digest_bytes(&plan));
        assert_eq!(
            std::fs::read_to_string(dir.path().join(".terraform.lock.hcl")).unwrap(),
            "# lock"
        );
    }

    #[test]
    fn a_result_missing_or_mangling_the_plan_is_an_error_naming_the_job() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::new(dir.path());
        let show = (runner_job::SHOW_KEY, runner_job::gzip(b"{}").unwrap());
        for (data, expect) in [
            (vec![show.clone()], runner_job::PLAN_KEY),
            (
                vec![(runner_job::PLAN_KEY, b"not gzip".to_vec()), show],
                "unreadable",
            ),
            (
                vec![(runner_job::PLAN_KEY, runner_job::gzip(b"plan").unwrap())],
                runner_job::SHOW_KEY,
            ),
        ] {
            let err = take_plan(&handed(&data, Some(true)), &ws, PLAN_FILE)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("tollgate-plan-x-0") && err.contains(expect),
                "{err}"
            );
        }
    }
}

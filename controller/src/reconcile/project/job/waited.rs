//! Short Terraform runs a step needs before it can go on (the outputs of the state, a plan
//! that verifies what a failed or stale apply left to do): in a runner Job with
//! `--runner=job`, waited for within the reconcile, so no Terraform reads the state or the
//! cloud from the controller's pod. Each such run is a new Job (the same step can need
//! the same read again, after a retry): a controller restart meanwhile leaves that Job to
//! finish and be collected, and the step, taken again, reads in a new one. Both only read:
//! a verification plan is never applied.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use kube::runtime::wait::await_condition;
use sha2::{Digest, Sha256};

use super::super::Run;
use super::{Credentials, Handed, JobRun, JobTask, take_plan};
use crate::reconcile::{INIT_OPTIONS, JobRunner, ReconcileError};
use crate::runner_job::{self, JobState, PlanMode, RunCommand};
use crate::terraform::{
    ErrorKind, OutputValue, PlanOutcome, PlanRequest, TerraformError, Workspace,
};

/// Where a verification plan is saved in the working directory (never applied).
const CHECK_FILE: &str = "tfplan-check";

/// How long past the Job's own deadline a step waits for it (the Job controller marks a
/// Job past its deadline failed, which ends the wait first).
const WAIT_MARGIN: Duration = Duration::from_secs(60);

impl Run<'_> {
    /// `terraform output` of the state as it is (`init` first when needed); `about` names
    /// the apply whose outputs they are.
    pub(in crate::reconcile::project) async fn state_outputs(
        &mut self,
        ws: &Workspace,
        about: &str,
    ) -> Result<BTreeMap<String, OutputValue>, ReconcileError> {
        let Some(runner) = self.ctx.config.job_runner.clone() else {
            self.ctx.runner.init_if_needed(ws, &INIT_OPTIONS).await?;
            return Ok(self.ctx.runner.output(ws).await?);
        };
        let handed = self
            .run_to_end_in_job(&runner, ("output", RunCommand::Output), about, false, ws)
            .await??;
        let outputs =
            serde_json::from_slice(handed.bytes(runner_job::OUTPUTS_KEY)?).map_err(|e| {
                TerraformError::in_job(
                    ErrorKind::Output,
                    &handed.job,
                    &format!("its outputs are unreadable: {e}"),
                )
            })?;
        Ok(outputs)
    }

    /// A plan of the configuration against the state as it is now, saved as
    /// `tfplan-check` and never applied: what the apply of plan `after` (failed, or found
    /// stale) left to do. Returned with its `show -json`.
    pub(in crate::reconcile::project) async fn verification_plan(
        &mut self,
        ws: &Workspace,
        after: &str,
    ) -> Result<(PlanOutcome, String), ReconcileError> {
        let Some(runner) = self.ctx.config.job_runner.clone() else {
            let outcome = self
                .ctx
                .runner
                .init_and_plan(ws, &INIT_OPTIONS, &PlanRequest::new(CHECK_FILE))
                .await?;
            let json = self.ctx.runner.show_plan_json(ws, &outcome.saved).await?;
            return Ok((outcome, json));
        };
        // A plan of every variable: the secret inputs too.
        let command = ("verify", RunCommand::Plan(PlanMode::Changes));
        let handed = self
            .run_to_end_in_job(&runner, command, after, true, ws)
            .await??;
        Ok(take_plan(&handed, ws, CHECK_FILE)?)
    }

    /// Runs `command` (named `what` in its run id) about `about` (an apply's plan id, also
    /// the run's tag in its STS session name; `inputs`: with the secret inputs) in a new Job
    /// and waits for it to end: what it handed back, or why it has nothing (Terraform's
    /// error, or the Job died or overran).
    async fn run_to_end_in_job(
        &mut self,
        runner: &JobRunner,
        (what, command): (&str, RunCommand<'_>),
        about: &str,
        inputs: bool,
        ws: &Workspace,
    ) -> Result<Result<Handed, TerraformError>, ReconcileError> {
        let run_key = run_key(what, about);
        let task = JobTask {
            run_id: format!("{what}-{}", run_key.get(..16).unwrap_or(&run_key)),
            run_key: &run_key,
            command,
            started: None,
            credentials: Credentials { tag: about, inputs },
        };
        // The run this one helps (an apply) stays the recorded one: its attempts are counted
        // from it.
        let helped = self.status.runner_job.clone();
        let ended = self.wait_for_run_in_job(runner, &task, ws).await;
        self.status.runner_job = helped;
        self.job_running = false;
        ended
    }

    async fn wait_for_run_in_job(
        &mut self,
        runner: &JobRunner,
        task: &JobTask<'_>,
        ws: &Workspace,
    ) -> Result<Result<Handed, TerraformError>, ReconcileError> {
        let deadline = runner
            .config
            .for_project(&self.namespace, &self.name)
            .active_deadline_seconds;
        let deadline = Duration::from_secs(u64::try_from(deadline).unwrap_or(0)) + WAIT_MARGIN;
        let until = tokio::time::Instant::now() + deadline;
        loop {
            match self.run_in_job(runner, task, ws).await? {
                JobRun::Ended(result) => return Ok(result),
                JobRun::Died { job, message } => {
                    return Ok(Err(TerraformError::in_job(
                        ErrorKind::Failed,
                        &job,
                        &message,
                    )));
                }
                JobRun::Running(_) => {
                    let job = self.running_job();
                    let ended = await_condition(self.jobs(), &job, |job: Option<&Job>| {
                        job.is_none_or(|j| runner_job::state(j) != JobState::Running)
                    });
                    match tokio::time::timeout_at(until, ended).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(err)) => {
                            return Ok(Err(TerraformError::in_job(
                                ErrorKind::Transient,
                                &job,
                                &format!(
                                    "cannot watch it ({err}); it is looked at again at the next reconcile"
                                ),
                            )));
                        }
                        Err(_) => break,
                    }
                }
            }
        }
        Ok(Err(TerraformError::in_job(
            ErrorKind::Timeout,
            &self.running_job(),
            &format!(
                "it did not end within {}s; it is looked at again at the next reconcile",
                deadline.as_secs()
            ),
        )))
    }

    /// The Job recorded as running this Project's run.
    fn running_job(&self) -> String {
        self.status
            .runner_job
            .as_ref()
            .map(|r| r.job.clone())
            .unwrap_or_default()
    }
}

/// A new run of `what` about `about` (an apply's plan id): a Job name never used before, so
/// no Job or result Secret of an earlier read (deleted, perhaps not yet collected) is
/// taken for this one.
fn run_key(what: &str, about: &str) -> String {
    let now = jiff::Timestamp::now().as_nanosecond();
    hex::encode(Sha256::digest(format!("{what}\0{about}\0{now}").as_bytes()))
}

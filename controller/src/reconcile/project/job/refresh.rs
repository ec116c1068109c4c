//! Credentials of a run in a runner Job: its pod cannot reach the controller's loopback
//! credentials endpoint, so assumed-role credentials go to it in a `<job>-credentials`
//! Secret (an ECS container-credentials document) that the pod serves on its own loopback
//! endpoint, and the controller rewrites that Secret while the Job runs, before they expire.

use std::time::Duration;

use k8s_openapi::ByteString;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use super::super::Run;
use super::JOB_RECHECK;
use crate::credentials::{TemporaryCredentials, broker};
use crate::reconcile::{ApiStep, During, ReconcileError};
use crate::runner_job;

/// The soonest a Project whose Job runs looks again to refresh the pod's credentials.
const CREDENTIALS_RECHECK_FLOOR: Duration = Duration::from_secs(5);

impl Run<'_> {
    /// A runner Job's pod cannot reach the controller's loopback credentials endpoint:
    /// assumed-role credentials go to it in a credentials Secret instead, which the
    /// controller rewrites before they expire and the pod serves to Terraform on its own
    /// loopback endpoint; static keys go in its inputs (docs/deploy.md#job-runner).
    pub(in crate::reconcile::project) fn hand_credentials_to_jobs(&mut self) {
        if self.ctx.config.job_runner.is_some() {
            self.credentials_by_secret = self.credential_lease.take().is_some();
        }
    }

    /// The credentials a runner Job's pod gets in its credentials Secret, if any.
    pub(super) fn by_secret(&self) -> Option<&TemporaryCredentials> {
        self.credentials
            .as_ref()
            .filter(|_| self.credentials_by_secret)
    }

    /// Rewrites the credentials Secret of the running Job `job` with the credentials this
    /// reconcile minted, once those it holds are within the refresh margin of expiring;
    /// says when to look again (a Job without such a Secret has nothing to refresh).
    pub(super) async fn refresh_job_credentials(
        &self,
        job: &str,
    ) -> Result<Duration, ReconcileError> {
        let (Some(fresh), Some(broker)) = (self.by_secret(), &self.ctx.credentials_broker) else {
            return Ok(JOB_RECHECK);
        };
        let secrets = self.state_secrets();
        let name = runner_job::credentials_secret(job);
        let Some(secret) = secrets.get_opt(&name).await.during(ApiStep::RunnerJob)? else {
            return Ok(JOB_RECHECK);
        };
        let held = secret
            .data
            .as_ref()
            .and_then(|d| d.get(runner_job::CREDENTIALS_KEY))
            .and_then(|b| TemporaryCredentials::from_ecs_document(&b.0).ok());
        let now = jiff::Timestamp::now();
        let current = match held {
            Some(held) if !broker::needs_refresh(&held, broker.margin(), now) => held,
            _ => {
                let document = ByteString(fresh.to_ecs_document().into_bytes());
                let patch = json!({"data": {runner_job::CREDENTIALS_KEY: document}});
                secrets
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .during(ApiStep::RunnerJob)?;
                tracing::info!(job, "handed the runner Job fresh credentials");
                fresh.clone()
            }
        };
        Ok(recheck_for(&current, broker.margin(), now))
    }
}

/// When to look at a running Job again whose pod holds `credentials`: when they come
/// within `margin` of expiring, within [`JOB_RECHECK`], and not sooner than
/// [`CREDENTIALS_RECHECK_FLOOR`] (a margin longer than the session would otherwise spin).
fn recheck_for(
    credentials: &TemporaryCredentials,
    margin: Duration,
    now: jiff::Timestamp,
) -> Duration {
    let due = credentials
        .expires
        .as_deref()
        .and_then(|e| e.parse::<jiff::Timestamp>().ok())
        .map(|expires| expires.duration_since(now))
        // Already expired: due now.
        .map(|left| Duration::try_from(left).unwrap_or(Duration::ZERO))
        .map_or(JOB_RECHECK, |left| left.saturating_sub(margin));
    due.clamp(CREDENTIALS_RECHECK_FLOOR, JOB_RECHECK)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn a_running_job_is_looked_at_again_when_its_credentials_come_due() {
        let now: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let expiring = |at: &str| TemporaryCredentials {
            access_key_id: "ASIA".into(),
            secret_access_key: "s".into(),
            session_token: None,
            expires: Some(at.into()),
        };
        let margin = Duration::from_secs(300);
        assert_eq!(
            recheck_for(&expiring("2026-01-01T01:00:00Z"), margin, now),
            JOB_RECHECK
        );
        assert_eq!(
            recheck_for(&expiring("2026-01-01T00:05:30Z"), margin, now),
            Duration::from_secs(30)
        );
        // Already due (a margin longer than the session), past, or unreadable: not a spin.
        for at in ["2026-01-01T00:04:00Z", "2025-12-31T00:00:00Z"] {
            assert_eq!(
                recheck_for(&expiring(at), margin, now),
                CREDENTIALS_RECHECK_FLOOR
            );
        }
        assert_eq!(recheck_for(&expiring("soon"), margin, now), JOB_RECHECK);
    }
}

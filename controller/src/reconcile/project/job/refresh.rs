//! Credentials of a run in a runner Job: its pod cannot reach the controller's loopback
//! credentials endpoint, so assumed-role credentials go to it in a `<job>-credentials`
//! Secret (an ECS container-credentials document) that the pod serves on its own loopback
//! endpoint, and the controller rewrites that Secret while the Job runs, before they expire.

use std::time::Duration;

use k8s_openapi::ByteString;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use super::super::{Action, Run};
use super::{Credentials, JOB_RECHECK};
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
    fn hand_credentials_to_jobs(&mut self) {
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

    /// Obtains a run's credentials (and, for a plan, its secret inputs) and hands them to
    /// its Job by Secret; `Some` when a person must act first (a Credential checkpoint).
    pub(super) async fn mint_for_job(
        &mut self,
        credentials: Credentials<'_>,
    ) -> Result<Option<Action>, ReconcileError> {
        // Boxed: `run_in_job` awaits this in several places, and the future of obtaining
        // credentials is large enough that inlining it each time overflows the stack.
        let obtained = Box::pin(self.obtain_credentials(credentials.tag, credentials.inputs));
        if let Some(action) = obtained.await? {
            return Ok(Some(action));
        }
        self.hand_credentials_to_jobs();
        Ok(None)
    }

    /// Once the credentials the running Job `job` holds in its credentials Secret come
    /// within the refresh margin of expiring, obtains fresh ones (only then: no STS call
    /// and no `CredentialUsed` record at every look) and rewrites the Secret; says when to
    /// look again (a Job without such a Secret has nothing to refresh).
    pub(super) async fn refresh_job_credentials(
        &mut self,
        job: &str,
        credentials: Credentials<'_>,
    ) -> Result<Duration, ReconcileError> {
        let Some(margin) = self.ctx.credentials_broker.as_ref().map(|b| b.margin()) else {
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
        if let Some(held) = held.filter(|h| !broker::needs_refresh(h, margin, now)) {
            return Ok(recheck_for(&held, margin, now));
        }
        let refreshing = Credentials {
            inputs: false,
            ..credentials
        };
        if self.mint_for_job(refreshing).await?.is_some() {
            tracing::warn!(
                job,
                "cannot obtain fresh credentials for the running runner Job; it keeps those it holds"
            );
            return Ok(JOB_RECHECK);
        }
        let Some(fresh) = self.by_secret().cloned() else {
            return Ok(JOB_RECHECK);
        };
        let document = ByteString(fresh.to_ecs_document().into_bytes());
        let patch = json!({"data": {runner_job::CREDENTIALS_KEY: document}});
        secrets
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .during(ApiStep::RunnerJob)?;
        tracing::info!(job, "handed the runner Job fresh credentials");
        Ok(recheck_for(&fresh, margin, now))
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

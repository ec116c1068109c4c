//! Cloud credentials of a Project's Terraform runs: the account allow-list before anything
//! runs, credentials minted right before each plan or apply, and the Credential checkpoint
//! that asks a person for what is missing and closes by itself once it is there.

use super::*;
use crate::audit::AuditCredential;
use crate::credentials::policy::CredentialKind;
use crate::credentials::{
    CONTROLLER_IDENTITY_ENV, CredentialsError, TemporaryCredentials, secret, session, sts, trust,
};

/// Condition saying the Project uses long-lived keys (allowed, not preferred).
const STATIC_CREDENTIALS: &str = "StaticCredentials";
/// Retry of a Credential checkpoint's problem: at least this…
const CREDENTIAL_RETRY_MIN: Duration = Duration::from_secs(5);
/// …at most this, growing with the checkpoint's age.
const CREDENTIAL_RETRY_MAX: Duration = Duration::from_secs(300);

/// The credentials a run obtained, before they are handed to Terraform.
struct Issued {
    credentials: TemporaryCredentials,
    audit: AuditCredential,
}

impl Run<'_> {
    /// The allow-list check: `Some` when the Project may not deploy where it asks (it is
    /// then `Failed`, `Stalled`, the reason naming the rule), before any Terraform runs.
    pub(super) async fn refuse_outside_allow_list(
        &mut self,
    ) -> Result<Option<Action>, ReconcileError> {
        let Some(aws) = self.project.spec.cloud.as_ref().map(|c| &c.aws) else {
            return Ok(None);
        };
        let verdict = match &self.ctx.config.accounts {
            Some(policy) => {
                let labels = Api::<Namespace>::all(self.ctx.client.clone())
                    .get(&self.namespace)
                    .await?
                    .metadata
                    .labels
                    .unwrap_or_default();
                policy.check(&self.namespace, &labels, aws)
            }
            None if CredentialKind::of(aws) == CredentialKind::Static => {
                Err(crate::credentials::Refusal {
                    reason: "StaticCredentialsNotAllowed",
                    message: "credentials.secretRef (long-lived keys) needs a controller credentials configuration (--credentials-config) that allows them for this namespace; use credentials.assumeRole".into(),
                })
            }
            None => return Ok(None),
        };
        let generation = self.generation();
        match verdict {
            Ok(grant) if grant.static_keys => {
                conditions::set(
                    &mut self.status.conditions,
                    STATIC_CREDENTIALS,
                    true,
                    "LongLivedKeys",
                    &format!(
                        "credentials.secretRef is allowed by rule {}, but long-lived keys are a standing risk: prefer credentials.assumeRole (temporary credentials, one session per run)",
                        grant.rule
                    ),
                    generation,
                );
                Ok(None)
            }
            Ok(_) => {
                self.status
                    .conditions
                    .retain(|c| c.type_ != STATIC_CREDENTIALS);
                Ok(None)
            }
            Err(refusal) => {
                self.status.observed_generation = generation;
                self.transition(ProjectPhase::Failed, refusal.reason, &refusal.message)
                    .await?;
                Ok(Some(Action::await_change()))
            }
        }
    }

    /// Obtains the Project's cloud credentials for one Terraform run (`tag`: the plan id,
    /// or what the run is for), ready for [`Run::workspace`]. `Some` when a person must act
    /// first: a Credential checkpoint says what is needed, and the reconcile comes back.
    pub(super) async fn obtain_credentials(
        &mut self,
        tag: &str,
    ) -> Result<Option<Action>, ReconcileError> {
        self.cloud_env.clear();
        let Some(aws) = self.project.spec.cloud.as_ref().map(|c| &c.aws) else {
            return Ok(None);
        };
        let credentials = aws.credentials.as_ref();
        let role = credentials.and_then(|c| c.assume_role.as_ref());
        let issued = match (role, credentials.and_then(|c| c.secret_ref.as_ref())) {
            (Some(role), _) => {
                let name = session::session_name(&self.namespace, &self.name, tag);
                let config = crate::cloud::sdk_config(&aws.region, None).await;
                sts::assume_role(&config, role, &name)
                    .await
                    .map(|credentials| Issued {
                        audit: AuditCredential {
                            kind: "AssumeRole".into(),
                            source: role.role_arn.clone(),
                            session: Some(name),
                            expires: credentials.expires.clone(),
                        },
                        credentials,
                    })
            }
            (None, Some(keys)) => secret::static_keys(&self.secrets(), &self.namespace, &keys.name)
                .await
                .map(|credentials| Issued {
                    audit: AuditCredential {
                        kind: "StaticKeys".into(),
                        source: format!("Secret {}/{}", self.namespace, keys.name),
                        session: None,
                        expires: None,
                    },
                    credentials,
                }),
            // The controller's own identity, as the allow-list permitted.
            (None, None) => return Ok(None),
        };
        match issued {
            Ok(Issued { credentials, audit }) => {
                self.audit(AuditAction::CredentialUsed, |e| e.credential = Some(audit));
                self.cloud_env = credentials
                    .env()
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect();
                self.close_credential_checkpoints().await?;
                Ok(None)
            }
            Err(err) if err.needs_person() => {
                let principal = match role {
                    Some(_) => {
                        sts::controller_principal(
                            &crate::cloud::sdk_config(&aws.region, None).await,
                        )
                        .await
                    }
                    None => String::new(),
                };
                let text = trust::instructions(&err, role, &principal);
                let what = match &err {
                    CredentialsError::SecretMissing { name, .. } => format!("secret/{name}"),
                    _ => format!(
                        "role/{}/{}",
                        role.map_or("", |r| r.role_arn.as_str()),
                        role.and_then(|r| r.external_id.as_deref()).unwrap_or("")
                    ),
                };
                self.ask_for_credentials(&what, &err.to_string(), &text)
                    .await
                    .map(Some)
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Opens (or finds) the Credential checkpoint for `what` and waits: the problem is looked
    /// at again with a delay growing with the checkpoint's age. A rejected checkpoint stops
    /// the Project until its spec changes.
    async fn ask_for_credentials(
        &mut self,
        what: &str,
        problem: &str,
        instructions: &str,
    ) -> Result<Action, ReconcileError> {
        let short: String = hex::encode(Sha256::digest(what.as_bytes()))
            .chars()
            .take(12)
            .collect();
        let tail = format!("credential-{short}");
        let name = format!("{}-{tail}", self.name);
        let existing = self.checkpoints().get_opt(&name).await?;
        if let Some(cp) = &existing
            && cp.status.as_ref().and_then(|s| s.phase) == Some(CheckpointPhase::Rejected)
        {
            let why = cp
                .status
                .as_ref()
                .and_then(|s| s.reason.clone())
                .unwrap_or_default();
            self.transition(
                ProjectPhase::Failed,
                "CredentialRejected",
                &format!("Credential checkpoint {name} was rejected ({why}); {problem}. Fix the credentials and change the spec or set the tollgate.dev/replan annotation"),
            )
            .await?;
            return Ok(Action::await_change());
        }
        let age = match &existing {
            Some(cp) => {
                let opened = cp.spec.requested_at.0;
                let seconds = jiff::Timestamp::now()
                    .duration_since(opened)
                    .as_secs()
                    .max(0);
                Duration::from_secs(seconds.unsigned_abs())
            }
            None => Duration::ZERO,
        };
        let reference = match existing {
            Some(_) => CheckpointRefStatus {
                name: name.clone(),
                namespace: None,
            },
            None => {
                let spec = CheckpointSpec {
                    checkpoint_type: CheckpointType::Credential,
                    project_ref: ProjectRef {
                        name: self.name.clone(),
                        namespace: None,
                    },
                    plan_ref: None,
                    summary: CheckpointSummary {
                        text: truncate(instructions, 4000),
                        ..CheckpointSummary::default()
                    },
                    reasons: vec![truncate(problem, 500)],
                    requested_at: Time(jiff::Timestamp::now()),
                    sla: None,
                    approvers: None,
                    requested_by: self
                        .project
                        .annotations()
                        .get(api::LAST_CHANGED_BY_ANNOTATION)
                        .cloned(),
                    effective_policy: None,
                };
                self.create_checkpoint(&tail, spec).await?
            }
        };
        let message = format!("Credential checkpoint {name}: {problem}");
        if matches!(
            self.status.phase,
            Some(ProjectPhase::Applying | ProjectPhase::Destroying)
        ) {
            // An approved plan (or a destroy) waits for its credentials; its phase and
            // checkpoint stay what they are, so it carries on without a new approval.
            let generation = self.generation();
            conditions::set(
                &mut self.status.conditions,
                "Ready",
                false,
                "CredentialsNeeded",
                &message,
                generation,
            );
            self.save().await?;
        } else {
            self.status.checkpoint_ref = Some(reference);
            self.transition(
                ProjectPhase::AwaitingApproval,
                "CredentialsNeeded",
                &message,
            )
            .await?;
        }
        Ok(Action::requeue(
            (age / 4).clamp(CREDENTIAL_RETRY_MIN, CREDENTIAL_RETRY_MAX),
        ))
    }

    /// Closes the Project's open Credential checkpoints once credentials were obtained: the
    /// problem is gone, nothing is left to decide (`Superseded`).
    async fn close_credential_checkpoints(&mut self) -> Result<(), ReconcileError> {
        let params =
            kube::api::ListParams::default().labels(&format!("{PROJECT_LABEL}={}", self.name));
        for cp in self.checkpoints().list(&params).await?.items {
            let status = cp.status.clone().unwrap_or_default();
            if cp.spec.checkpoint_type != CheckpointType::Credential
                || status.decision.is_some()
                || matches!(
                    status.phase,
                    Some(CheckpointPhase::Superseded | CheckpointPhase::Expired)
                )
            {
                continue;
            }
            let name = cp.name_any();
            set_phase(&self.checkpoints(), &name, CheckpointPhase::Superseded).await?;
            if self
                .status
                .checkpoint_ref
                .as_ref()
                .is_some_and(|r| r.name == name)
            {
                self.status.checkpoint_ref = None;
            }
            self.event(
                EventType::Normal,
                "CredentialsResolved",
                &format!("credentials are available again: Credential checkpoint {name} closed"),
            )
            .await;
        }
        Ok(())
    }

    /// Adds the run's credentials to a workspace: the secret values, and the controller's
    /// own identity blanked so Terraform cannot fall back to it.
    pub(super) fn with_cloud_env(&self, mut ws: Workspace) -> Workspace {
        if self.cloud_env.is_empty() {
            return ws;
        }
        for name in CONTROLLER_IDENTITY_ENV {
            ws = ws.with_env(*name, "");
        }
        for (name, value) in &self.cloud_env {
            ws = ws.with_secret_env(name.clone(), value.clone());
        }
        ws
    }
}

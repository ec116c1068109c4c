//! Cloud credentials of a Project's Terraform runs: the account allow-list before anything
//! runs, credentials minted right before each plan or apply, and the Credential checkpoint
//! that asks a person for what is missing and closes by itself once it is there.

use super::*;
use crate::api::{AssumeRole, RequestedSecret, SecretInput};
use crate::audit::AuditCredential;
use crate::credentials::policy::CredentialKind;
use crate::credentials::{
    CONTROLLER_IDENTITY_ENV, CredentialsError, TemporaryCredentials, broker, secret,
    secrets_manager, session, sts, trust,
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
    /// How to mint the next ones (assumed roles): the run then gets a broker lease.
    renew: Option<broker::Issue>,
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
                    .await
                    .during(ApiStep::ReadPolicies)?
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
    /// or what the run is for) and, with `inputs`, the values of its secret inputs, ready
    /// for [`Run::workspace`]. `Some` when a person must act first: a Credential checkpoint
    /// says what is needed, and the reconcile comes back.
    pub(super) async fn obtain_credentials(
        &mut self,
        tag: &str,
        inputs: bool,
    ) -> Result<Option<Action>, ReconcileError> {
        self.credentials = None;
        self.credential_lease = None;
        self.credentials_by_secret = false;
        self.input_env.clear();
        let aws = self.project.spec.cloud.as_ref().map(|c| &c.aws);
        let credentials = aws.and_then(|a| a.credentials.as_ref());
        let role = credentials.and_then(|c| c.assume_role.as_ref());
        let region = aws.map_or("us-east-1", |a| a.region.as_str());
        let uses_aws = role.is_some()
            || (inputs
                && self
                    .rendered()?
                    .secret_inputs
                    .iter()
                    .any(|b| matches!(b.source, SecretInput::AwsSecretsManager { .. })));
        // Only Projects that call AWS load the SDK's configuration.
        let config = match uses_aws {
            true => Some(crate::cloud::sdk_config(region, None).await),
            false => None,
        };
        let issued = match (
            role,
            credentials.and_then(|c| c.secret_ref.as_ref()),
            &config,
        ) {
            (Some(role), _, Some(config)) => {
                let name = session::session_name(&self.namespace, &self.name, tag);
                let renew: broker::Issue = {
                    let (config, role, name) = (config.clone(), role.clone(), name.clone());
                    Arc::new(move || {
                        let (config, role, name) = (config.clone(), role.clone(), name.clone());
                        Box::pin(async move { sts::assume_role(&config, &role, &name).await })
                    })
                };
                renew().await.map(|credentials| {
                    Some(Issued {
                        audit: assumed_role_audit(role, &name, &credentials),
                        credentials,
                        renew: Some(renew),
                    })
                })
            }
            (None, Some(keys), _) => {
                secret::static_keys(&self.secrets(), &self.namespace, &keys.name)
                    .await
                    .map(|credentials| {
                        Some(Issued {
                            audit: AuditCredential {
                                kind: "StaticKeys".into(),
                                source: format!("Secret {}/{}", self.namespace, keys.name),
                                session: None,
                                expires: None,
                            },
                            credentials,
                            renew: None,
                        })
                    })
            }
            // The controller's own identity (as the allow-list permitted), or no cloud.
            _ => Ok(None),
        };
        match issued {
            Ok(Some(Issued {
                credentials,
                audit,
                renew,
            })) => {
                self.audit(AuditAction::CredentialUsed, |e| e.credential = Some(audit));
                if let (Some(renew), Some(broker), Some(role)) =
                    (renew, &self.ctx.credentials_broker, role)
                {
                    self.credential_lease = Some(broker.lease(
                        credentials.clone(),
                        renew,
                        self.hear_refresh(role, tag),
                    ));
                }
                self.credentials = Some(credentials);
            }
            Ok(None) => {}
            Err(err) => return self.needs(err, role, config.as_ref()).await,
        }
        if inputs {
            for binding in self.rendered()?.secret_inputs.clone() {
                let value = match &binding.source {
                    SecretInput::SecretKeyRef { name, key } => {
                        secret::get(&self.secrets(), &self.namespace, name, &[key])
                            .await
                            .and_then(|s| {
                                secret::value(&s, key).ok_or_else(|| {
                                    CredentialsError::SecretMissing {
                                        namespace: self.namespace.clone(),
                                        name: name.clone(),
                                        problem: format!("lacks the key {key}"),
                                        keys: vec![key.clone()],
                                    }
                                })
                            })
                    }
                    SecretInput::AwsSecretsManager {
                        secret_id,
                        json_key,
                    } => match &config {
                        Some(config) => {
                            secrets_manager::value(
                                config,
                                self.credentials.as_ref(),
                                secret_id,
                                json_key.as_deref(),
                            )
                            .await
                        }
                        None => continue,
                    },
                };
                match value {
                    Ok(value) => self
                        .input_env
                        .push((format!("TF_VAR_{}", binding.variable), value)),
                    Err(err) => return self.needs(err, role, config.as_ref()).await,
                }
            }
        }
        self.close_credential_checkpoints().await?;
        Ok(None)
    }

    /// A credential problem: a Credential checkpoint when a person must act, else an error
    /// (retried with backoff).
    async fn needs(
        &mut self,
        err: CredentialsError,
        role: Option<&AssumeRole>,
        config: Option<&aws_config::SdkConfig>,
    ) -> Result<Option<Action>, ReconcileError> {
        self.credentials = None;
        self.input_env.clear();
        if !err.needs_person() {
            return Err(err.into());
        }
        let secret = match &err {
            CredentialsError::SecretMissing { name, keys, .. } => Some(RequestedSecret {
                name: name.clone(),
                keys: keys.clone(),
            }),
            _ => None,
        };
        let (what, principal) = match (&err, config) {
            // The keys too: a checkpoint's spec cannot change, so another missing key of
            // the same Secret asks afresh rather than offering the first key's form again.
            (CredentialsError::SecretMissing { name, keys, .. }, _) => {
                (format!("secret/{name}/{}", keys.join(",")), None)
            }
            (CredentialsError::AwsSecretUnavailable { secret_id, .. }, _) => {
                (format!("aws-secret/{secret_id}"), None)
            }
            (_, config) => (
                format!(
                    "role/{}/{}",
                    role.map_or("", |r| r.role_arn.as_str()),
                    role.and_then(|r| r.external_id.as_deref()).unwrap_or("")
                ),
                match config {
                    Some(config) => Some(sts::controller_principal(config).await),
                    None => None,
                },
            ),
        };
        let text = trust::instructions(&err, role, principal.as_deref().unwrap_or_default());
        self.ask_for_credentials(&what, &err.to_string(), &text, secret)
            .await
            .map(Some)
    }

    /// The versions of the secret inputs' sources, for the plan key: a new version plans
    /// again, and no value ever enters the key. A Secret's `resourceVersion`; a Secrets
    /// Manager secret's `AWSCURRENT` version id, read with the controller's identity
    /// (`DescribeSecret`, metadata only; `unknown` when it may not, and then a rotation is
    /// seen only at the next plan).
    pub(super) async fn secret_input_versions(&self) -> Result<String, ReconcileError> {
        let bindings = &self.rendered()?.secret_inputs;
        if bindings.is_empty() {
            return Ok(String::new());
        }
        let region = self
            .project
            .spec
            .cloud
            .as_ref()
            .map_or("us-east-1", |c| c.aws.region.as_str());
        let mut config = None;
        let mut versions = String::new();
        for binding in bindings {
            let version = match &binding.source {
                SecretInput::SecretKeyRef { name, .. } => self
                    .secrets()
                    .get_opt(name)
                    .await
                    .during(ApiStep::ReadCredentials)?
                    .and_then(|s| s.metadata.resource_version)
                    .unwrap_or_else(|| "absent".into()),
                SecretInput::AwsSecretsManager { secret_id, .. } => {
                    if config.is_none() {
                        config = Some(crate::cloud::sdk_config(region, None).await);
                    }
                    match &config {
                        Some(config) => secrets_manager::current_version(config, secret_id)
                            .await
                            .unwrap_or_else(|| "unknown".into()),
                        None => "unknown".into(),
                    }
                }
            };
            versions.push_str(&format!("{}={version}\0", binding.variable));
        }
        Ok(versions)
    }

    /// Opens (or finds) the Credential checkpoint for `what` and waits: the problem is looked
    /// at again with a delay growing with the checkpoint's age. A rejected checkpoint stops
    /// the Project until its spec changes.
    async fn ask_for_credentials(
        &mut self,
        what: &str,
        problem: &str,
        instructions: &str,
        secret: Option<RequestedSecret>,
    ) -> Result<Action, ReconcileError> {
        let short: String = hex::encode(Sha256::digest(what.as_bytes()))
            .chars()
            .take(12)
            .collect();
        let tail = format!("credential-{short}");
        let name = format!("{}-{tail}", self.name);
        let mut existing = self
            .checkpoints()
            .get_opt(&name)
            .await
            .during(ApiStep::ReadCheckpoint)?;
        // Closed earlier (the problem went away and came back): open it afresh.
        if existing
            .as_ref()
            .and_then(|cp| cp.status.as_ref())
            .and_then(|s| s.phase)
            == Some(CheckpointPhase::Superseded)
        {
            self.checkpoints()
                .delete(&name, &kube::api::DeleteParams::default())
                .await
                .during(ApiStep::CloseCheckpoint)?;
            existing = None;
        }
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
                    requested_at: MicroTime(jiff::Timestamp::now()),
                    sla: None,
                    approvers: None,
                    requested_by: self
                        .project
                        .annotations()
                        .get(api::LAST_CHANGED_BY_ANNOTATION)
                        .cloned(),
                    effective_policy: None,
                    policy: None,
                    secret,
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

    /// Closes the Project's Credential checkpoints once credentials were obtained: the
    /// problem is gone, nothing is left to decide (`Superseded`). A rejected one too, so that
    /// its rejection does not stop the Project again if the problem ever comes back.
    async fn close_credential_checkpoints(&mut self) -> Result<(), ReconcileError> {
        let params =
            kube::api::ListParams::default().labels(&format!("{PROJECT_LABEL}={}", self.name));
        let listed = self
            .checkpoints()
            .list(&params)
            .await
            .during(ApiStep::ReadCheckpoint)?;
        for cp in listed.items {
            let status = cp.status.clone().unwrap_or_default();
            if cp.spec.checkpoint_type != CheckpointType::Credential
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

    /// Adds the run's credentials and secret inputs to a workspace as secret variables
    /// (redacted from everything Terraform prints), and blanks the controller's own
    /// identity so Terraform cannot fall back to it.
    pub(super) fn with_cloud_env(&self, mut ws: Workspace) -> Workspace {
        if let Some(credentials) = &self.credentials {
            for name in CONTROLLER_IDENTITY_ENV {
                ws = ws.with_env(*name, "");
            }
            match &self.credential_lease {
                // Keys in the environment would win over the endpoint in every SDK's chain:
                // blank the controller's own, hand out none.
                Some(lease) => {
                    for (name, _) in credentials.env() {
                        ws = ws.with_env(name, "");
                    }
                    let [(uri_name, uri), (token_name, token)] = lease.env();
                    ws = ws
                        .with_env(uri_name, uri)
                        .with_secret_env(token_name, token);
                }
                None => {
                    for (name, value) in credentials.env() {
                        ws = ws.with_secret_env(name, value);
                    }
                }
            }
        }
        for (name, value) in &self.input_env {
            ws = ws.with_secret_env(name.clone(), value.clone());
        }
        ws
    }

    /// What the broker does with credentials it mints during this run: an audit record like
    /// the first one's, and their values redacted from the run's output.
    fn hear_refresh(&self, role: &AssumeRole, tag: &str) -> broker::Issued {
        let audit = Arc::clone(&self.ctx.audit);
        let live = self.refreshed_secrets.clone();
        let (namespace, name) = (self.namespace.clone(), self.name.clone());
        let role = role.clone();
        let session = session::session_name(&self.namespace, &self.name, tag);
        Arc::new(move |credentials: &TemporaryCredentials| {
            for (_, value) in credentials.env() {
                live.add(&value);
            }
            audit.record_controller_action(&namespace, &name, AuditAction::CredentialUsed, |e| {
                e.credential = Some(assumed_role_audit(&role, &session, credentials));
            });
        })
    }
}

/// The audit record of assumed-role credentials: role, session and expiry, never a key.
fn assumed_role_audit(
    role: &AssumeRole,
    session: &str,
    credentials: &TemporaryCredentials,
) -> AuditCredential {
    AuditCredential {
        kind: "AssumeRole".into(),
        source: role.role_arn.clone(),
        session: Some(session.to_owned()),
        expires: credentials.expires.clone(),
    }
}

//! The Terraform state's safety: where it lives, moving it from the legacy location, and
//! stopping everything while it is missing.

use super::*;

impl Run<'_> {
    /// Checks the state before anything is planned: moves state from its legacy location,
    /// records where it is, and stops everything while it is missing.
    pub(super) async fn guard_state(&mut self) -> Result<Option<Action>, ReconcileError> {
        let before = self.status.state.clone();
        match self.check_state().await? {
            StateCheck::Missing => self.state_missing().await,
            _ => {
                let cleared = self.clear_state_missing();
                if cleared || self.status.state != before {
                    self.save().await?;
                }
                Ok(None)
            }
        }
    }

    /// Whether the state Secret exists, after moving it from the legacy location (the
    /// Project's namespace) when it is still there.
    pub(super) async fn check_state(&mut self) -> Result<StateCheck, ReconcileError> {
        let Some(location) = self.state.clone() else {
            return Ok(StateCheck::NotKept);
        };
        self.status.state = Some(StateStatus {
            namespace: location.namespace.clone(),
            secret_name: location.secret_name(),
        });
        let current = self
            .state_secrets()
            .get_opt(&location.secret_name())
            .await
            .during(ApiStep::ReadState)?;
        let legacy_suffix = self
            .project
            .spec
            .backend
            .as_ref()
            .and_then(|b| b.kubernetes.as_ref())
            .and_then(|k| k.secret_suffix.clone())
            .unwrap_or_else(|| self.name.clone());
        let legacy = self
            .secrets()
            .get_opt(&legacy_secret_name(&legacy_suffix))
            .await
            .during(ApiStep::ReadState)?
            .filter(|l| l.labels().get("tfstate").is_some_and(|v| v == "true"));
        match (current, legacy) {
            // Moved by an earlier run that stopped before deleting the old copy.
            (Some(current), Some(legacy)) => {
                self.finish_migration(&location, &current, &legacy).await?;
                return Ok(StateCheck::Present);
            }
            (Some(_), None) => return Ok(StateCheck::Present),
            (None, Some(legacy)) => {
                self.migrate_state(&location, &legacy, &legacy_suffix)
                    .await?;
                return Ok(StateCheck::Present);
            }
            (None, None) => {}
        }
        Ok(if self.status.last_applied.is_some() {
            StateCheck::Missing
        } else {
            StateCheck::Empty
        })
    }

    /// Moves the state from `tfstate-default-<legacy_suffix>` in the Project's namespace to
    /// `location` with Terraform itself (`init -migrate-state -force-copy`, which locks both
    /// sides), then [`Run::finish_migration`].
    pub(super) async fn migrate_state(
        &mut self,
        location: &StateLocation,
        legacy: &Secret,
        legacy_suffix: &str,
    ) -> Result<(), ReconcileError> {
        let legacy_name = legacy.name_any();
        let dir = self
            .ctx
            .config
            .work_root
            .join(".migrate")
            .join(&self.namespace)
            .join(&self.name);
        let io = |path: &std::path::Path| {
            let path = path.to_path_buf();
            move |source| ReconcileError::Io { path, source }
        };
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(io(&dir))?;
        }
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let root = dir.join(crate::render::ROOT_FILE);
        let write_backend = |backend: hcl::Block| {
            let body = hcl::Body::builder()
                .add_block(hcl::Block::builder("terraform").add_block(backend).build())
                .build();
            hcl::to_string(&body)
                .map_err(|source| ReconcileError::Encode {
                    what: "backend configuration",
                    source: source.into(),
                })
                .and_then(|text| std::fs::write(&root, text).map_err(io(&root)))
        };
        write_backend(
            hcl::Block::builder("backend")
                .add_label("kubernetes")
                .add_attribute(("secret_suffix", quoted(legacy_suffix)))
                .add_attribute(("namespace", quoted(&self.namespace)))
                .build(),
        )?;
        let ws = self.workspace_in(&dir);
        let from_legacy = InitOptions {
            reconfigure: true,
            ..InitOptions::default()
        };
        self.ctx.runner.init(&ws, &from_legacy).await?;
        write_backend(location.backend_block())?;
        let migrate = InitOptions {
            migrate_state: true,
            ..InitOptions::default()
        };
        self.ctx.runner.init(&ws, &migrate).await?;
        let copied = self
            .state_secrets()
            .get_opt(&location.secret_name())
            .await
            .during(ApiStep::MoveState)?
            .ok_or_else(|| ReconcileError::State {
                project: key(self.project),
                message: format!(
                    "terraform init -migrate-state did not create Secret {} in namespace {}; the state stays in Secret {legacy_name} in namespace {}",
                    location.secret_name(),
                    location.namespace,
                    self.namespace
                ),
            })?;
        if let Err(err) = std::fs::remove_dir_all(&dir) {
            tracing::debug!(error = %err, "cannot remove the migration directory");
        }
        self.finish_migration(location, &copied, legacy).await
    }

    /// Deletes the legacy state Secret (if unchanged since it was read) and its Lease once
    /// `copied` verifiably holds the same state: the same lineage and a serial not older
    /// (Terraform's copy counts one more). Otherwise keeps both and fails: a person looks.
    pub(super) async fn finish_migration(
        &self,
        location: &StateLocation,
        copied: &Secret,
        legacy: &Secret,
    ) -> Result<(), ReconcileError> {
        let legacy_name = legacy.name_any();
        let project = key(self.project);
        let state_error = |message: String| ReconcileError::State {
            project: project.clone(),
            message,
        };
        let old = state_identity(legacy).map_err(&state_error)?;
        let new = state_identity(copied).map_err(&state_error)?;
        if old.0 != new.0 || new.1 < old.1 {
            return Err(state_error(format!(
                "Secret {} in namespace {} (lineage {}, serial {}) is not a copy of the legacy state Secret {legacy_name} in namespace {} (lineage {}, serial {}); both are kept: decide which is right, then delete the other",
                location.secret_name(),
                location.namespace,
                new.0,
                new.1,
                self.namespace,
                old.0,
                old.1
            )));
        }
        let unchanged = kube::api::DeleteParams {
            preconditions: Some(kube::api::Preconditions {
                resource_version: legacy.resource_version(),
                uid: legacy.uid(),
            }),
            ..kube::api::DeleteParams::default()
        };
        self.secrets()
            .delete(&legacy_name, &unchanged)
            .await
            .during(ApiStep::MoveState)?;
        let leases: Api<Lease> = Api::namespaced(self.ctx.client.clone(), &self.namespace);
        match leases
            .delete(&format!("lock-{legacy_name}"), &Default::default())
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(err) => return Err(ApiStep::MoveState.failed(err)),
        }
        self.event(
            EventType::Normal,
            "StateMigrated",
            &format!(
                "Terraform state moved from Secret {legacy_name} in namespace {} to Secret {} in namespace {} (lineage {}, serial {} -> {})",
                self.namespace,
                location.secret_name(),
                location.namespace,
                new.0,
                old.1,
                new.1
            ),
        )
        .await;
        Ok(())
    }

    /// The state is missing although a plan was applied: planning against empty state
    /// would create everything a second time. Stops every plan and apply, says so
    /// (`StateMissing`, `Stalled`, a Warning Event) and asks a person through a
    /// `ManualOperation` checkpoint: restore the Secret, or approve to accept empty state.
    /// `None` once that approval is given (the caller goes on, from empty state).
    pub(super) async fn state_missing(&mut self) -> Result<Option<Action>, ReconcileError> {
        let (secret, namespace) = self
            .status
            .state
            .as_ref()
            .map(|s| (s.secret_name.clone(), s.namespace.clone()))
            .unwrap_or_default();
        let applied = self
            .status
            .last_applied
            .as_ref()
            .map(|l| l.plan_id.clone())
            .unwrap_or_default();
        if let Some(reference) = self.status.checkpoint_ref.clone()
            && let Some(checkpoint) = self.referenced(&reference).await?
            && checkpoint.spec.checkpoint_type == CheckpointType::ManualOperation
        {
            let status = checkpoint.status.clone().unwrap_or_default();
            // Accepting empty state is a decision like any other: only a sealed one counts.
            let verified = status.decision.is_some() && self.decision_verified(&checkpoint).await;
            if !verified || status.decision != Some(Decision::Approved) {
                return Ok(Some(Action::requeue(STATE_MISSING_RECHECK)));
            }
            let by = status.decided_by.unwrap_or_else(|| "unknown".into());
            let message = format!(
                "{by} approved checkpoint {}: tollgate continues from empty state; Terraform will plan every resource as new",
                reference.name
            );
            self.push_history(&applied, "StateReset", Some(by));
            self.status.last_applied = None;
            self.status.checkpoint_ref = None;
            self.status.plan = None;
            conditions::set(
                &mut self.status.conditions,
                STATE_MISSING,
                false,
                "EmptyStateAccepted",
                &message,
                self.project.meta().generation,
            );
            self.save().await?;
            self.event(EventType::Warning, "EmptyStateAccepted", &message)
                .await;
            return Ok(None);
        }
        let message = format!(
            "the Terraform state (Secret {secret} in namespace {namespace}) is missing, but plan {applied} was applied: nothing is planned or applied until a person acts. Restore the Secret from a backup (tollgate goes on by itself), or, only if the infrastructure is really gone, approve the ManualOperation checkpoint to continue from empty state"
        );
        // No plan of this Project may be applied now.
        self.supersede_pending().await?;
        self.status.plan = None;
        let digest = hex::encode(Sha256::digest(applied.as_bytes()));
        let spec = self
            .question(
                CheckpointType::ManualOperation,
                None,
                &message,
                Vec::new(),
                vec![format!(
                    "StateMissing: Secret {secret} in namespace {namespace}; approve to accept empty state"
                )],
            )
            .await?;
        let reference = self
            .create_checkpoint(&format!("state-missing-{}", &digest[..12]), spec)
            .await?;
        self.status.checkpoint_ref = Some(reference);
        conditions::set(
            &mut self.status.conditions,
            STATE_MISSING,
            true,
            STATE_MISSING,
            &message,
            self.project.meta().generation,
        );
        let already_failed = self.status.phase == Some(ProjectPhase::Failed);
        self.transition(ProjectPhase::Failed, STATE_MISSING, &message)
            .await?;
        if already_failed {
            self.event(EventType::Warning, STATE_MISSING, &message)
                .await;
        }
        Ok(Some(Action::requeue(STATE_MISSING_RECHECK)))
    }

    /// The state is there (again): lifts `StateMissing`, supersedes the checkpoint that
    /// asked about it and makes a fresh plan against the state. Returns whether it changed
    /// anything.
    pub(super) fn clear_state_missing(&mut self) -> bool {
        let missing = self
            .status
            .conditions
            .iter()
            .any(|c| c.type_ == STATE_MISSING && c.status == "True");
        if !missing {
            return false;
        }
        conditions::set(
            &mut self.status.conditions,
            STATE_MISSING,
            false,
            "StateFound",
            "the Terraform state Secret exists",
            self.project.meta().generation,
        );
        // The ManualOperation checkpoint is superseded by the next plan; a fresh plan is
        // made against the restored state.
        self.status.plan = None;
        self.status.plan_failed_for = None;
        true
    }
}

/// `(lineage, serial)` of the Terraform state in a `kubernetes` backend Secret (gzip JSON
/// under `tfstate`).
fn state_identity(secret: &Secret) -> Result<(String, u64), String> {
    let name = secret.name_any();
    let data = secret
        .data
        .as_ref()
        .and_then(|d| d.get("tfstate"))
        .ok_or_else(|| format!("Secret {name} holds no tfstate"))?;
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(data.0.as_slice())
        .read_to_end(&mut json)
        .map_err(|e| format!("Secret {name}: cannot decompress the state: {e}"))?;
    let state: serde_json::Value = serde_json::from_slice(&json)
        .map_err(|e| format!("Secret {name}: the state is not JSON: {e}"))?;
    let lineage = state["lineage"].as_str().unwrap_or_default().to_owned();
    let serial = state["serial"].as_u64().unwrap_or_default();
    Ok((lineage, serial))
}

//! Applied revisions and rollbacks: each apply is recorded compactly (status) with its
//! inputs (a Secret in the state namespace); a rollback plans a recorded revision again and
//! that plan goes through the gate, with a person asked whatever the policy pre-approves.

use super::*;
use crate::api::{Component, Revision, RollbackStatus};
use crate::terraform::OutputValue;

/// Applied revisions kept (status and Secret).
const REVISIONS_KEPT: usize = 5;

/// The revisions Secret's key holding the last apply's outputs as `terraform output -json`
/// gives them (values, sensitivity, types).
const APPLIED_OUTPUTS_KEY: &str = "outputs.json";

impl Run<'_> {
    fn revisions_secret(&self) -> String {
        format!("tfrev-{}", secret_suffix(&self.namespace, &self.name))
    }

    /// Records the revision just applied from `plan`: its inputs and outputs in the
    /// revisions Secret, the compact record in `status.revisions`.
    pub(super) async fn record_revision(
        &mut self,
        plan: &PlanStatus,
        outputs_digest: String,
        outputs: &BTreeMap<String, OutputValue>,
    ) -> Result<(), ReconcileError> {
        let revision = self.status.revisions.first().map_or(1, |r| r.revision + 1);
        let components = serde_json::to_vec(&self.source().spec.components).map_err(|source| {
            ReconcileError::Encode {
                what: "revision inputs",
                source: source.into(),
            }
        })?;
        let name = self.revisions_secret();
        let secrets = self.state_secrets();
        let existing = secrets
            .get_opt(&name)
            .await
            .during(ApiStep::WriteRevisions)?
            .and_then(|s| s.data)
            .unwrap_or_default();
        let mut data: BTreeMap<String, ByteString> = self
            .status
            .revisions
            .iter()
            .take(REVISIONS_KEPT - 1)
            .filter_map(|r| {
                let key = revision_key(r.revision);
                existing.get(&key).map(|v| (key, v.clone()))
            })
            .collect();
        data.insert(revision_key(revision), ByteString(components));
        let outputs = serde_json::to_vec(outputs).map_err(|source| ReconcileError::Encode {
            what: "applied outputs",
            source: source.into(),
        })?;
        data.insert(APPLIED_OUTPUTS_KEY.to_owned(), ByteString(outputs));
        let secret = json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "labels": project_labels(&self.namespace, &self.name)},
            "type": "tollgate.dev/revisions",
            "data": data,
        });
        // Server-side apply with the full set: keys of revisions no longer kept go away.
        secrets
            .patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&secret),
            )
            .await
            .during(ApiStep::WriteRevisions)?;
        self.status.revisions.insert(
            0,
            Revision {
                revision,
                plan_id: plan.id.clone(),
                plan_digest: plan.digest.clone(),
                rendered_digest: self.rendered()?.inputs_digest.clone(),
                outputs_digest,
                at: Time(jiff::Timestamp::now()),
            },
        );
        self.status.revisions.truncate(REVISIONS_KEPT);
        Ok(())
    }

    /// The outputs of the last apply, as recorded with its revision: reading them runs no
    /// Terraform and needs no cloud credentials (nor a runner Job in `--runner=job`).
    /// `terraform output` (in a Job with `--runner=job`) only for a revision recorded
    /// before outputs were.
    pub(super) async fn applied_outputs(
        &mut self,
    ) -> Result<BTreeMap<String, OutputValue>, ReconcileError> {
        let recorded = self
            .state_secrets()
            .get_opt(&self.revisions_secret())
            .await
            .during(ApiStep::WriteRevisions)?
            .and_then(|s| s.data)
            .and_then(|data| {
                let bytes = &data.get(APPLIED_OUTPUTS_KEY)?.0;
                serde_json::from_slice(bytes).ok()
            });
        if let Some(outputs) = recorded {
            return Ok(outputs);
        }
        let ws = self.write_workspace()?;
        let applied = self
            .status
            .last_applied
            .as_ref()
            .map(|a| a.plan_id.clone())
            .unwrap_or_default();
        self.state_outputs(&ws, &applied).await
    }

    /// Deletes the revisions Secret when the Project goes (destroyed or orphaned): its
    /// record in status goes with the Project, and a namesake must not roll back to it.
    pub(super) async fn forget_revisions(&self) -> Result<(), ReconcileError> {
        match self
            .state_secrets()
            .delete(&self.revisions_secret(), &Default::default())
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(err) => Err(ApiStep::WriteRevisions.failed(err)),
        }
    }

    /// Starts a rollback to `revision` (default: the last applied) asked for by `by`
    /// through `asked` (a checkpoint, or the annotation with value `annotation`).
    pub(super) async fn start_rollback(
        &mut self,
        asked: &str,
        revision: Option<i64>,
        by: &str,
        annotation: Option<String>,
    ) -> Result<Action, ReconcileError> {
        let wanted = revision.or_else(|| self.status.revisions.first().map(|r| r.revision));
        let Some(target) = wanted.and_then(|w| {
            self.status
                .revisions
                .iter()
                .find(|r| r.revision == w)
                .cloned()
        }) else {
            let kept: Vec<String> = self
                .status
                .revisions
                .iter()
                .map(|r| r.revision.to_string())
                .collect();
            // Remember the request so it is not retried on every reconcile.
            self.status.rollback = annotation.map(|a| RollbackStatus {
                revision: revision.unwrap_or_default(),
                generation: -1,
                requested_by: by.to_owned(),
                annotation: Some(a),
            });
            self.status.checkpoint_ref = None;
            self.transition(
                ProjectPhase::Failed,
                "RollbackUnavailable",
                &format!(
                    "{by} asked ({asked}) for a rollback to revision {}, which is not kept (kept: {}); nothing was changed",
                    wanted.map_or_else(|| "(none applied yet)".to_owned(), |w| w.to_string()),
                    if kept.is_empty() { "none".to_owned() } else { kept.join(", ") }
                ),
            )
            .await?;
            return Ok(Action::await_change());
        };
        let message = format!(
            "{by} asked ({asked}) for a rollback to revision {} (plan {}); planning it again, a person decides its plan",
            target.revision, target.plan_id
        );
        self.status.rollback = Some(RollbackStatus {
            revision: target.revision,
            generation: self.generation().unwrap_or_default(),
            requested_by: by.to_owned(),
            annotation,
        });
        self.status.review_required = Some(format!(
            "rollback to revision {} asked for by {by}",
            target.revision
        ));
        self.push_history(&target.plan_id, "RollbackRequested", Some(by.to_owned()));
        self.status.plan = None;
        self.status.checkpoint_ref = None;
        self.delete_plans_except(None).await?;
        self.event(EventType::Normal, "RollingBack", &message).await;
        self.transition(ProjectPhase::Planning, "RollingBack", &message)
            .await?;
        Ok(Action::requeue(Duration::from_secs(1)))
    }

    /// A new value of the rollback annotation starts a rollback (once per value).
    pub(super) async fn rollback_on_request(&mut self) -> Result<Option<Action>, ReconcileError> {
        let Some(value) = self
            .project
            .annotations()
            .get(api::ROLLBACK_ANNOTATION)
            .cloned()
        else {
            return Ok(None);
        };
        let seen = self
            .status
            .rollback
            .as_ref()
            .and_then(|r| r.annotation.as_deref());
        if seen == Some(value.as_str()) {
            return Ok(None);
        }
        let by = self
            .project
            .annotations()
            .get(api::LAST_CHANGED_BY_ANNOTATION)
            .cloned()
            .unwrap_or_else(|| "the annotation".into());
        let revision = value.trim().parse::<i64>().ok();
        let asked = format!("annotation {}={value}", api::ROLLBACK_ANNOTATION);
        if revision.is_none() {
            self.event(
                EventType::Warning,
                "RollbackUnavailable",
                &format!("{asked} is not a revision number (status.revisions[].revision)"),
            )
            .await;
        }
        self.start_rollback(&asked, revision.or(Some(-1)), &by, Some(value))
            .await
            .map(Some)
    }

    /// While a rollback holds (same generation), the Project is rendered from that
    /// revision's inputs; a spec change ends it.
    pub(super) async fn load_rollback(&mut self) -> Result<(), ReconcileError> {
        let Some(rollback) = self.status.rollback.clone() else {
            return Ok(());
        };
        if Some(rollback.generation) != self.generation() {
            return Ok(());
        }
        let data = self
            .state_secrets()
            .get_opt(&self.revisions_secret())
            .await
            .during(ApiStep::WriteRevisions)?
            .and_then(|s| s.data)
            .unwrap_or_default();
        let components: Vec<Component> = data
            .get(&revision_key(rollback.revision))
            .and_then(|b| serde_json::from_slice(&b.0).ok())
            .ok_or_else(|| ReconcileError::State {
                project: format!("{}/{}", self.namespace, self.name),
                message: format!(
                    "the inputs of revision {} are not in Secret {} of the state namespace; change the spec to end the rollback",
                    rollback.revision,
                    self.revisions_secret()
                ),
            })?;
        let mut source = self.project.clone();
        source.spec.components = components;
        self.source = Some(source);
        Ok(())
    }
}

fn revision_key(revision: i64) -> String {
    format!("r{revision}.json")
}

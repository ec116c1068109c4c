//! Deletion: destroy through a Destroy checkpoint or orphan, then release the Project.

use super::steps::{DeletionFacts, DeletionStep, next_deletion_step};
use super::*;

impl Run<'_> {
    /// Deletion: destroy through a Destroy checkpoint, or orphan; then drop the finalizer.
    pub(super) async fn cleanup(&mut self) -> Result<Action, ReconcileError> {
        if !self.project.finalizers().iter().any(|f| f == FINALIZER) {
            return Ok(Action::await_change());
        }
        // Never plan a destroy against vanished state: it would destroy nothing and let the
        // Project go while its infrastructure stays.
        let state = self.check_state().await?;
        if state == StateCheck::Missing {
            if let Some(action) = self.state_missing().await? {
                return Ok(action);
            }
        } else {
            self.clear_state_missing();
        }
        // A failed first apply may have created resources: only a Project that never ran
        // an apply at all, and has no state, has nothing to destroy.
        let facts = DeletionFacts {
            orphan: self.project.spec.deletion_policy == DeletionPolicy::Orphan,
            nothing_to_destroy: self.status.last_applied.is_none()
                && !self.status.history.iter().any(|h| h.outcome == "Failed")
                && state != StateCheck::Present,
            destroy_planned: self.status.phase == Some(ProjectPhase::Destroying)
                && self.status.plan.is_some(),
            checkpoint_open: self.status.checkpoint_ref.is_some(),
        };
        match next_deletion_step(&facts) {
            DeletionStep::Release => {
                self.release(facts.orphan && state == StateCheck::Present)
                    .await?;
                Ok(Action::await_change())
            }
            DeletionStep::PlanDestroy => {
                let key = format!("destroy-{}", self.plan_key().await?);
                self.replan(&key, true).await
            }
            DeletionStep::FollowDestroyDecision => {
                let action = self.follow_decision(true).await?;
                // An applied destroy plan clears the checkpoint reference and lands in Ready.
                if self.status.phase == Some(ProjectPhase::Ready) {
                    // Recorded first: a retry after this point finds nothing applied and no
                    // state.
                    self.status.last_applied = None;
                    self.save().await?;
                    self.remove_state().await?;
                    self.forget_revisions().await?;
                    self.forget_state_namespace_checkpoints().await?;
                    self.remove_finalizer().await?;
                }
                Ok(action)
            }
            DeletionStep::WaitForChange => Ok(Action::await_change()),
        }
    }

    /// Lets the Project go without destroying: supersedes what waits, deletes its plans,
    /// and, when its state is kept (`orphaned_state`), says where in status and an Event.
    async fn release(&mut self, orphaned_state: bool) -> Result<(), ReconcileError> {
        self.supersede_pending().await?;
        self.delete_plans_except(None).await?;
        if orphaned_state && let Some(kept) = self.status.state.clone() {
            let message = format!(
                "deletionPolicy Orphan: the infrastructure is left in place and its Terraform state is kept in Secret {} in namespace {}; a Project created again as {}/{} adopts it",
                kept.secret_name, kept.namespace, self.namespace, self.name
            );
            let generation = self.generation();
            conditions::set(
                &mut self.status.conditions,
                "Ready",
                false,
                "Orphaned",
                &message,
                generation,
            );
            self.save().await?;
            self.event(EventType::Normal, "StateKept", &message).await;
        }
        self.forget_revisions().await?;
        self.forget_state_namespace_checkpoints().await?;
        self.remove_finalizer().await
    }

    /// Deletes the checkpoints this Project has in the state namespace (no owner reference
    /// can do it there): decided or superseded, they must not be reused by a Project created
    /// again with the same name.
    pub(super) async fn forget_state_namespace_checkpoints(&self) -> Result<(), ReconcileError> {
        let api = self.checkpoints_in(Some(&self.ctx.config.state_namespace));
        let params = kube::api::ListParams::default().labels(&format!(
            "{PROJECT_NAMESPACE_LABEL}={},{PROJECT_LABEL}={}",
            self.namespace, self.name
        ));
        let listed = api.list(&params).await.during(ApiStep::CloseCheckpoint)?;
        for cp in listed.items {
            match api.delete(&cp.name_any(), &Default::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(err) => return Err(ApiStep::CloseCheckpoint.failed(err)),
            }
        }
        Ok(())
    }

    /// Removes the Terraform state of the `kubernetes` backend after a destroy: the state
    /// Secret (and any chunks of it) and the lock Lease, in the state namespace.
    pub(super) async fn remove_state(&self) -> Result<(), ReconcileError> {
        let Some(location) = &self.state else {
            return Ok(());
        };
        let secrets = self.state_secrets();
        let params = kube::api::ListParams::default().labels(&format!(
            "tfstate=true,tfstateSecretSuffix={}",
            location.secret_suffix
        ));
        let mut names: Vec<String> = secrets
            .list(&params)
            .await
            .during(ApiStep::RemoveState)?
            .items
            .iter()
            .map(ResourceExt::name_any)
            .collect();
        names.push(location.secret_name());
        names.dedup();
        for name in names {
            match secrets.delete(&name, &Default::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(err) => return Err(ApiStep::RemoveState.failed(err)),
            }
        }
        let leases: Api<Lease> = Api::namespaced(self.ctx.client.clone(), &location.namespace);
        match leases
            .delete(&location.lease_name(), &Default::default())
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(err) => Err(ApiStep::RemoveState.failed(err)),
        }
    }
}

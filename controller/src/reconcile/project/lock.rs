//! A state lock left by a run that is gone: status names the lock and its holder, and when
//! the holder provably no longer runs, a `ManualOperation` checkpoint asks a person to
//! force-unlock exactly that lock id. tollgate never unlocks by itself.

use super::*;
use crate::api::StateLockStatus;
use crate::terraform::{Holder, LockHolders as _, LockInfo, is_lock_id};

/// Condition type (and Warning Event reason) while a held lock stops the Project.
const STATE_LOCKED: &str = "StateLocked";
/// Reason of `Ready`/`AwaitingApproval` while a force-unlock checkpoint waits.
const LOCK_STUCK: &str = "StateLockStuck";

impl Run<'_> {
    /// After a reconcile failed on a held state lock: records the lock and what is known of
    /// its holder in status. When the holder is provably gone (and the Project is not being
    /// deleted), opens a `ManualOperation` checkpoint to force-unlock that lock id and waits
    /// for it instead of retrying. `None`: the error is retried as usual.
    pub(super) async fn on_state_locked(&mut self, err: &ReconcileError) -> Option<Action> {
        let ReconcileError::Terraform(TerraformError::StateLocked { command, lock, .. }) = err
        else {
            return None;
        };
        let holder = self.ctx.runner.holder(lock, &self.work_dir());
        let mut record = StateLockStatus {
            id: lock.id.clone(),
            who: lock.who.clone(),
            operation: lock.operation.clone(),
            created: lock.created.clone(),
            blocked_run: self.blocked_run(command),
            holder: holder.verdict().to_owned(),
            holder_detail: holder.why().to_owned(),
            observed_at: Time(jiff::Timestamp::now()),
            checkpoint_ref: None,
        };
        // Not while deleting: the deletion loop has no stopped state to keep a rejection in,
        // so a rejected unlock would plan the destroy again, meet the lock and ask again.
        let offer = matches!(holder, Holder::Gone(_))
            && is_lock_id(&lock.id)
            && self.project.meta().deletion_timestamp.is_none();
        let generation = self.generation();
        if !offer {
            conditions::set(
                &mut self.status.conditions,
                STATE_LOCKED,
                true,
                &format!("Holder{}", holder.verdict()),
                &truncate(
                    &format!(
                        "{} could not take the state lock ({lock}); its holder: {}",
                        record.blocked_run,
                        holder.why()
                    ),
                    1000,
                ),
                generation,
            );
            self.status.state_lock = Some(record);
            return None;
        }
        match self.ask_to_unlock(lock, &record, holder.why()).await {
            Ok(reference) => {
                let message = format!(
                    "{} could not take the state lock ({lock}), and its holder is gone: {}. Checkpoint {} asks a person to approve force-unlocking lock id {}",
                    record.blocked_run,
                    holder.why(),
                    reference.name,
                    lock.id
                );
                record.checkpoint_ref = Some(reference);
                self.status.state_lock = Some(record);
                for (type_, status, reason) in [
                    (STATE_LOCKED, true, "HolderGone"),
                    ("AwaitingApproval", true, LOCK_STUCK),
                    ("Ready", false, LOCK_STUCK),
                ] {
                    conditions::set(
                        &mut self.status.conditions,
                        type_,
                        status,
                        reason,
                        &truncate(&message, 1000),
                        generation,
                    );
                }
                self.event(EventType::Warning, LOCK_STUCK, &message).await;
                if let Err(err) = self.save().await {
                    tracing::warn!(error = %err, "cannot record the force-unlock checkpoint in status; it is asked for again");
                }
                Some(Action::await_change())
            }
            Err(err) => {
                tracing::warn!(error = %err, lock_id = %lock.id, "cannot open the force-unlock checkpoint; retrying the run");
                self.status.state_lock = Some(record);
                None
            }
        }
    }

    /// Which run of the Project the lock stopped, in words.
    fn blocked_run(&self, command: &str) -> String {
        let during = match self.status.phase {
            Some(ProjectPhase::Applying) => self
                .status
                .plan
                .as_ref()
                .map_or_else(String::new, |p| format!(" of plan {}", p.id)),
            Some(ProjectPhase::Ready) => " (drift check)".to_owned(),
            Some(ProjectPhase::Destroying) => " (destroy)".to_owned(),
            _ => String::new(),
        };
        format!("terraform {command}{during}")
    }

    /// Opens the `ManualOperation` checkpoint that asks to force-unlock `lock`.
    async fn ask_to_unlock(
        &self,
        lock: &LockInfo,
        record: &StateLockStatus,
        why: &str,
    ) -> Result<CheckpointRefStatus, ReconcileError> {
        let text = format!(
            "The Terraform state lock {lock} stops {}; its holder is gone ({why}). Approve to run `terraform force-unlock` on exactly lock id {}; reject to leave the state locked (the Project stops).",
            record.blocked_run, lock.id
        );
        let reasons = vec![
            format!(
                "{STATE_LOCKED}: {} could not take lock id {}",
                record.blocked_run, lock.id
            ),
            format!("holder gone: {why}"),
            format!(
                "Approve: force-unlock lock id {} and carry on; if another lock is held by then, Terraform refuses and tollgate looks again",
                lock.id
            ),
            format!(
                "Reject: leave the lock; the Project stops (Failed) until its spec changes or the annotation {} gets a new value",
                api::REPLAN_ANNOTATION
            ),
        ];
        let spec = self
            .question(
                CheckpointType::ManualOperation,
                None,
                &text,
                Vec::new(),
                reasons,
            )
            .await?;
        let digest = hex::encode(Sha256::digest(lock.id.as_bytes()));
        let at = jiff::Timestamp::now().as_second();
        self.create_checkpoint(&format!("unlock-{}-{at}", &digest[..12]), spec)
            .await
    }

    /// Acts on the force-unlock checkpoint in status, if any: waits for its decision,
    /// force-unlocks on a verified approval (then the loop goes on), stops on a rejection.
    /// `plan_key` is the current one: a rejected Project is not planned again under it.
    pub(super) async fn guard_lock(
        &mut self,
        plan_key: &str,
    ) -> Result<Option<Action>, ReconcileError> {
        let Some(lock) = self.status.state_lock.clone() else {
            return Ok(None);
        };
        let Some(reference) = lock.checkpoint_ref.clone() else {
            return Ok(None);
        };
        let Some(checkpoint) = self.referenced(&reference).await? else {
            // Deleted undecided: run again; a lock still held is judged and asked about anew.
            self.status.state_lock = None;
            self.save().await?;
            return Ok(None);
        };
        let status = checkpoint.status.clone().unwrap_or_default();
        let expired = status.phase == Some(CheckpointPhase::Expired);
        if status.decision.is_none() && !expired {
            return Ok(Some(Action::await_change()));
        }
        if status.decision.is_some() && !self.decision_verified(&checkpoint).await {
            return Ok(Some(Action::await_change()));
        }
        let by = status
            .decided_by
            .clone()
            .unwrap_or_else(|| "unknown".into());
        self.audit(AuditAction::CheckpointDecided, |e| {
            e.actor.clone_from(&by);
            e.checkpoint = Some(reference.name.clone());
            e.decision = status.decision.map(|d| format!("{d:?}"));
            e.reason = status.reason.as_deref().map(|r| truncate(r, 1000));
        });
        if status.decision == Some(Decision::Approved) {
            self.force_unlock(&lock, &reference.name, by).await?;
            return Ok(None);
        }
        let why = if expired {
            "nobody decided in time".to_owned()
        } else {
            status
                .reason
                .clone()
                .unwrap_or_else(|| "no reason given".into())
        };
        self.unlock_refused(lock, &reference.name, &by, &why, plan_key)
            .await
            .map(Some)
    }

    /// Runs `terraform force-unlock -force <id>` for an approved checkpoint and clears the
    /// record. A failure is retried like any step: the run then meets the lock (or not) and
    /// it is judged and asked about again.
    async fn force_unlock(
        &mut self,
        lock: &StateLockStatus,
        checkpoint: &str,
        by: String,
    ) -> Result<(), ReconcileError> {
        let generation = self.generation();
        let ws = self.write_workspace()?;
        let unlocked = async {
            self.ctx.runner.init_if_needed(&ws, &INIT_OPTIONS).await?;
            self.ctx.runner.force_unlock(&ws, &lock.id).await
        }
        .await;
        self.status.state_lock = None;
        if let Err(err) = unlocked {
            let message = truncate(
                &format!(
                    "force-unlocking lock id {} approved by {by} on checkpoint {checkpoint} failed: {err}",
                    lock.id
                ),
                1000,
            );
            conditions::set(
                &mut self.status.conditions,
                STATE_LOCKED,
                true,
                "ForceUnlockFailed",
                &message,
                generation,
            );
            self.event(EventType::Warning, "ForceUnlockFailed", &message)
                .await;
            return Err(err.into());
        }
        let holder = format!(
            "lock id {} held by {} since {}",
            lock.id,
            lock.who.as_deref().unwrap_or("(unknown)"),
            lock.created.as_deref().unwrap_or("(unknown)")
        );
        self.audit(AuditAction::StateForceUnlocked, |e| {
            e.actor.clone_from(&by);
            e.checkpoint = Some(checkpoint.to_owned());
            e.reason = Some(truncate(&holder, 1000));
        });
        let plan_id = self.status.plan.as_ref().map_or("", |p| p.id.as_str());
        let plan_id = plan_id.to_owned();
        let message = format!(
            "{by} approved checkpoint {checkpoint}: force-unlocked the Terraform state ({holder}); {} goes on",
            lock.blocked_run
        );
        self.push_history(&plan_id, "ForceUnlocked", Some(by));
        for (type_, reason) in [
            (STATE_LOCKED, "ForceUnlocked"),
            ("AwaitingApproval", "ForceUnlocked"),
        ] {
            conditions::set(
                &mut self.status.conditions,
                type_,
                false,
                reason,
                &truncate(&message, 1000),
                generation,
            );
        }
        self.save().await?;
        self.event(EventType::Normal, "StateUnlocked", &message)
            .await;
        Ok(())
    }

    /// A person refused (or nobody decided in time): the lock stays, the Project stops and
    /// says how to go on.
    async fn unlock_refused(
        &mut self,
        mut lock: StateLockStatus,
        checkpoint: &str,
        by: &str,
        why: &str,
        plan_key: &str,
    ) -> Result<Action, ReconcileError> {
        let plan_id = self
            .status
            .plan
            .as_ref()
            .map_or_else(String::new, |p| p.id.clone());
        self.push_history(&plan_id, "ForceUnlockRejected", Some(by.to_owned()));
        let message = format!(
            "{by} did not approve force-unlocking lock id {} on checkpoint {checkpoint} ({why}); the state stays locked and tollgate runs nothing for this Project until its spec changes or the annotation {} gets a new value (if the lock is still held then, it asks again)",
            lock.id,
            api::REPLAN_ANNOTATION
        );
        lock.checkpoint_ref = None;
        self.status.state_lock = Some(lock);
        // Not planned again under the same inputs: that would meet the same lock.
        self.status.plan_failed_for = Some(plan_key.to_owned());
        let generation = self.generation();
        self.status.observed_generation = generation;
        conditions::set(
            &mut self.status.conditions,
            STATE_LOCKED,
            true,
            "ForceUnlockRejected",
            &truncate(&message, 1000),
            generation,
        );
        self.transition(ProjectPhase::Failed, "ForceUnlockRejected", &message)
            .await?;
        Ok(Action::await_change())
    }

    /// A run got the lock: the record of a lock that stopped an earlier one goes.
    pub(super) fn lock_released(&mut self) {
        if self
            .status
            .state_lock
            .as_ref()
            .is_some_and(|l| l.checkpoint_ref.is_none())
        {
            self.status.state_lock = None;
            let generation = self.generation();
            conditions::set(
                &mut self.status.conditions,
                STATE_LOCKED,
                false,
                "LockTaken",
                "the last Terraform run took the state lock",
                generation,
            );
        }
    }
}

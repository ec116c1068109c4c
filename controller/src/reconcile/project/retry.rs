//! A failed step retried with backoff: why, in status and an Event, and the retry taken
//! back out of `Ready` once the step succeeds.

use super::*;

impl Run<'_> {
    /// Records in status why the reconcile will be retried (a held state lock, a network
    /// error) and publishes it as a Warning Event, so `kubectl describe` shows it and not
    /// only the controller's log. Best effort: the error itself is what the caller acts on.
    pub(super) async fn note_retry(&mut self, err: &ReconcileError, wait: Duration) {
        let message = self.sensitive_inputs().redact(&format!(
            "retrying in {}s (attempt {}) after: {err}",
            wait.as_secs(),
            self.ctx
                .backoff
                .failures(&crate::reconcile::backoff_key(self.project))
                + 1
        ));
        self.event(EventType::Warning, RETRYING, &message).await;
        let generation = self.generation();
        conditions::set(
            &mut self.status.conditions,
            "Ready",
            false,
            RETRYING,
            &message,
            generation,
        );
        if let Err(save) = self.save().await {
            tracing::debug!(error = %save, "cannot record the retry in status");
        }
    }

    /// After a reconcile that succeeded without a phase transition (which rewrites the
    /// conditions itself), takes the retried error out of `Ready` ([`without_retry`]).
    pub(super) async fn clear_retry(&mut self) {
        let generation = self.generation();
        if without_retry(&mut self.status.conditions, self.status.phase, generation)
            && let Err(err) = self.save().await
        {
            tracing::debug!(error = %err, "cannot clear the retry from status");
        }
    }
}

/// Gives `Ready` back the phase's reason and message once the step that failed succeeded:
/// [`Run::transition`] wrote them to `Reconciling` too, and [`Run::note_retry`] left that
/// alone. Whether anything changed.
pub(super) fn without_retry(
    conditions: &mut Vec<Condition>,
    phase: Option<ProjectPhase>,
    generation: Option<i64>,
) -> bool {
    if !conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.reason == RETRYING)
    {
        return false;
    }
    let (reason, message) = conditions
        .iter()
        .find(|c| c.type_ == "Reconciling")
        .map_or_else(
            || {
                (
                    "Recovered".to_owned(),
                    "the step that failed succeeded".to_owned(),
                )
            },
            |c| (c.reason.clone(), c.message.clone()),
        );
    conditions::set(
        conditions,
        "Ready",
        phase == Some(ProjectPhase::Ready),
        &reason,
        &message,
        generation,
    );
    true
}

//! Waiting for a Terraform run slot ([`crate::fair`]): what a Project says while it waits.

use super::*;
use crate::api::QueueStatus;
use crate::fair::{Admission, Place};

/// Reason of `Reconciling` (and of the phase's transition) while a Project waits.
pub(super) const QUEUED: &str = "Queued";
/// A waiting Project is woken when its slot is handed to it; this only bounds how long a
/// lost wake-up could leave it waiting.
const RECHECK: Duration = Duration::from_secs(300);

impl Run<'_> {
    /// Takes a Terraform run slot before a plan or an apply. `None`: the Project holds one
    /// (until the reconcile ends), go on. Otherwise it waits: the first time, status says
    /// so (phase `waiting_phase`, `Reconciling` reason `Queued`, `status.queue`); the
    /// reconcile ends and starts again when a slot is handed to it.
    pub(super) async fn take_slot(
        &mut self,
        waiting_phase: ProjectPhase,
    ) -> Result<Option<Action>, ReconcileError> {
        match self.ctx.slots.request(&self.namespace, &self.name) {
            Admission::Granted => {
                if self.status.queue.is_some() {
                    self.transition(
                        waiting_phase,
                        "SlotGranted",
                        "a Terraform run slot was granted: running",
                    )
                    .await?;
                }
                Ok(None)
            }
            Admission::Queued(place) => {
                // Written once: each write is a watch event that reconciles the Project
                // again, and every slot handed out moves every waiting Project.
                if self.status.queue.is_none() || self.status.phase != Some(waiting_phase) {
                    self.status.queue = Some(queue_status(&place));
                    self.transition(
                        waiting_phase,
                        QUEUED,
                        &queued_message(&self.namespace, &place),
                    )
                    .await?;
                }
                Ok(Some(Action::requeue(RECHECK)))
            }
        }
    }
}

fn queue_status(place: &Place) -> QueueStatus {
    let wide = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    QueueStatus {
        since: Time(jiff::Timestamp::now()),
        position: wide(place.position),
        namespace_waiting: wide(place.namespace_waiting),
        namespaces_waiting: wide(place.namespaces_waiting),
        slots: wide(place.capacity),
    }
}

fn queued_message(namespace: &str, place: &Place) -> String {
    format!(
        "waiting for a Terraform run slot: position {} when queued; {} Project(s) of namespace {namespace} and {} namespace(s) wait, sharing {} slot(s) fairly",
        place.position, place.namespace_waiting, place.namespaces_waiting, place.capacity
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn the_message_says_where_the_project_stands() {
        let place = Place {
            position: 3,
            namespace_waiting: 1,
            namespaces_waiting: 2,
            capacity: 4,
        };
        assert_eq!(
            queued_message("team-b", &place),
            "waiting for a Terraform run slot: position 3 when queued; 1 Project(s) of namespace team-b and 2 namespace(s) wait, sharing 4 slot(s) fairly"
        );
        let status = queue_status(&place);
        assert_eq!(
            (
                status.position,
                status.namespace_waiting,
                status.namespaces_waiting,
                status.slots
            ),
            (3, 1, 2, 4)
        );
    }
}

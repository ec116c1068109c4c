//! The Kubernetes side of [`crate::fair`]: one set of Terraform run slots shared by every
//! Project reconcile. A Project that finds no slot ends its reconcile (it holds no
//! reconcile worker while it waits, so a namespace with hundreds of waiting Projects does
//! not fill the workers either); when a slot is handed to it, its reconcile is started
//! again through the Project controller's trigger stream. A reconcile gives its slot back
//! when it ends, unless the Project's runner Job (`--runner=job`) still runs: the Job is
//! the run, and its slot is given back by the reconcile that finds it ended.

use std::sync::{Arc, Mutex, PoisonError};

use futures::channel::mpsc;
use futures::stream::{self, BoxStream, StreamExt as _};
use kube::runtime::reflector::ObjectRef;

use crate::api::Project;
use crate::fair::{Admission, FairQueue};
use crate::telemetry::Metrics;

/// `(namespace, name)` of a Project.
type ProjectKey = (String, String);

/// The run slots and the Projects waiting for one.
pub struct RunSlots {
    queue: Mutex<FairQueue<ProjectKey>>,
    wake: mpsc::UnboundedSender<ObjectRef<Project>>,
    woken: Mutex<Option<mpsc::UnboundedReceiver<ObjectRef<Project>>>>,
    metrics: Arc<Metrics>,
}

impl RunSlots {
    /// `capacity` slots (the runner's `--max-terraform`).
    #[must_use]
    pub fn new(capacity: usize, metrics: Arc<Metrics>) -> Self {
        let (wake, woken) = mpsc::unbounded();
        Self {
            queue: Mutex::new(FairQueue::new(capacity)),
            wake,
            woken: Mutex::new(Some(woken)),
            metrics,
        }
    }

    /// The Projects to reconcile because a slot was handed to them; the first caller gets
    /// them, later callers an empty stream (one Project controller runs per process).
    pub fn wakeups(&self) -> BoxStream<'static, ObjectRef<Project>> {
        let taken = self
            .woken
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match taken {
            Some(receiver) => receiver.boxed(),
            None => stream::empty().boxed(),
        }
    }

    /// Asks for a slot for a Project (see [`FairQueue::request`]).
    pub fn request(&self, namespace: &str, name: &str) -> Admission {
        let key = (namespace.to_owned(), name.to_owned());
        self.with_queue(|q| q.request(namespace, key))
    }

    /// The Project's reconcile ended: its slot, if it holds one, goes to the next.
    pub fn release(&self, namespace: &str, name: &str) {
        let key = (namespace.to_owned(), name.to_owned());
        self.with_queue(|q| ((), q.release(&key)));
    }

    /// The Project is gone: it stops waiting, and its slot goes to the next.
    pub fn forget(&self, namespace: &str, name: &str) {
        let key = (namespace.to_owned(), name.to_owned());
        self.with_queue(|q| ((), q.forget(&key)));
    }

    /// Gives the Project's slot back when dropped: at the end of its reconcile, however it
    /// ends, unless [`ReleaseOnDrop::keep`] is called.
    #[must_use]
    pub fn release_on_drop<'a>(&'a self, namespace: &str, name: &str) -> ReleaseOnDrop<'a> {
        ReleaseOnDrop {
            slots: self,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            kept: false,
        }
    }

    fn with_queue<T>(
        &self,
        f: impl FnOnce(&mut FairQueue<ProjectKey>) -> (T, Vec<ProjectKey>),
    ) -> T {
        let (result, woken, in_use, waiting) = {
            let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            let (result, woken) = f(&mut queue);
            (result, woken, queue.in_use(), queue.waiting())
        };
        self.metrics.set_run_queue(in_use, waiting);
        for (namespace, name) in woken {
            // The receiver lives as long as the Project controller; when it is gone (shutting
            // down) nobody is to be woken.
            let _ = self
                .wake
                .unbounded_send(ObjectRef::<Project>::new(&name).within(&namespace));
        }
        result
    }
}

/// See [`RunSlots::release_on_drop`].
pub struct ReleaseOnDrop<'a> {
    slots: &'a RunSlots,
    namespace: String,
    name: String,
    kept: bool,
}

impl ReleaseOnDrop<'_> {
    /// The Project keeps its slot past this reconcile: its runner Job runs. Its next
    /// reconcile is granted it at once, and gives it back unless the Job still runs; a
    /// Project that is gone gives it back ([`RunSlots::forget`]).
    pub fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for ReleaseOnDrop<'_> {
    fn drop(&mut self) {
        if !self.kept {
            self.slots.release(&self.namespace, &self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[tokio::test]
    async fn a_released_slot_wakes_the_project_it_was_handed_to() {
        let slots = RunSlots::new(1, Arc::new(Metrics::default()));
        let mut woken = slots.wakeups();
        assert_eq!(slots.request("big", "p0"), Admission::Granted);
        assert!(matches!(slots.request("big", "p1"), Admission::Queued(_)));
        assert!(matches!(slots.request("small", "q"), Admission::Queued(_)));
        {
            let _end = slots.release_on_drop("big", "p0");
        }
        let next = woken.next().await.unwrap();
        assert_eq!(
            (next.name.as_str(), next.namespace.as_deref()),
            ("q", Some("small"))
        );
        assert_eq!(slots.request("small", "q"), Admission::Granted);
        // A Project that vanished while waiting is never woken.
        slots.forget("big", "p1");
        slots.release("small", "q");
        assert!(matches!(slots.request("big", "p2"), Admission::Granted));
        assert!(slots.wakeups().next().await.is_none());
    }

    #[tokio::test]
    async fn a_running_job_keeps_its_slot_until_a_reconcile_finds_it_ended() {
        let slots = RunSlots::new(1, Arc::new(Metrics::default()));
        let mut woken = slots.wakeups();
        assert_eq!(slots.request("a", "job"), Admission::Granted);
        // Its reconcile ends while the Job runs: the slot stays taken.
        slots.release_on_drop("a", "job").keep();
        let Admission::Queued(place) = slots.request("b", "next") else {
            panic!("the running Job's slot was given away");
        };
        assert_eq!(place.position, 1);
        // The Job's watch wakes it: its slot is its own at once, and kept again.
        assert_eq!(slots.request("a", "job"), Admission::Granted);
        slots.release_on_drop("a", "job").keep();
        assert!(matches!(slots.request("b", "next"), Admission::Queued(_)));
        // The reconcile that finds the Job ended gives the slot back.
        {
            let _end = slots.release_on_drop("a", "job");
        }
        let next = woken.next().await.unwrap();
        assert_eq!(next.name, "next");
        assert_eq!(slots.request("b", "next"), Admission::Granted);
        // A Project deleted while its Job runs gives its slot back too.
        slots.release_on_drop("b", "next").keep();
        assert!(matches!(slots.request("c", "after"), Admission::Queued(_)));
        slots.forget("b", "next");
        assert_eq!(woken.next().await.unwrap().name, "after");
    }
}

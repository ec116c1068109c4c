//! Fair shares of the Terraform run slots between namespaces.
//!
//! The controller runs at most `capacity` Terraform runs (a plan, an apply, a destroy) at
//! once. With one first-come queue, a namespace that creates 500 Projects makes every
//! other namespace wait for all 500 runs. Here each namespace has its own queue, and a
//! freed slot goes to the waiting namespace that holds the fewest slots now (ties: the
//! next one after the namespace served last, in name order). So while a namespace waits,
//! a slot goes to another namespace only if that one holds no more slots than it does: a
//! namespace with one Project waits for at most one run to finish, however many Projects
//! another namespace has queued.
//!
//! A granted slot is first *reserved* for a Project (its reconcile has to be woken to
//! take it), then *running* once that reconcile takes it; both count against the capacity
//! until the Project releases it. Pure: the Kubernetes shell (`reconcile/slots.rs`) wakes
//! the reconciles of the keys this returns.

use std::collections::{BTreeMap, VecDeque};

/// Whether a Project may run Terraform now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// It holds a slot: run.
    Granted,
    /// It waits for a slot.
    Queued(Place),
}

/// Where a waiting Project stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Place {
    /// 1-based: how many slots are handed out, this one's included, until it gets one, if
    /// nothing else arrives and the slots are released in any order that keeps the rule's
    /// choices as they stand now (an estimate: a release changes the holders' counts).
    pub position: usize,
    /// Projects of its namespace waiting, itself included.
    pub namespace_waiting: usize,
    /// Namespaces with Projects waiting.
    pub namespaces_waiting: usize,
    /// The number of slots.
    pub capacity: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hold {
    Reserved,
    Running,
}

/// The queues and the holders of the slots; `K` names a Project.
#[derive(Clone, Debug)]
pub struct FairQueue<K> {
    capacity: usize,
    holders: BTreeMap<K, (String, Hold)>,
    waiting: BTreeMap<String, VecDeque<K>>,
    last_served: Option<String>,
}

impl<K: Ord + Clone> FairQueue<K> {
    /// `capacity` slots (at least one).
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            holders: BTreeMap::new(),
            waiting: BTreeMap::new(),
            last_served: None,
        }
    }

    /// Asks for a slot for `key` of `namespace`. A key that holds one (reserved for it or
    /// running) gets [`Admission::Granted`] and its slot is now running; otherwise it is
    /// granted a free slot if no one waits, else it waits at the end of its namespace's
    /// queue (or keeps its place if it waits already). Also returns the keys that were
    /// given a reserved slot by this call (to be woken).
    pub fn request(&mut self, namespace: &str, key: K) -> (Admission, Vec<K>) {
        if let Some((_, hold)) = self.holders.get_mut(&key) {
            *hold = Hold::Running;
            return (Admission::Granted, Vec::new());
        }
        if !self.is_waiting(namespace, &key) {
            self.waiting
                .entry(namespace.to_owned())
                .or_default()
                .push_back(key.clone());
        }
        let mut woken = self.fill();
        if let Some((_, hold)) = self.holders.get_mut(&key) {
            *hold = Hold::Running;
            woken.retain(|k| *k != key);
            return (Admission::Granted, woken);
        }
        let place = self.place(namespace, &key);
        (Admission::Queued(place), woken)
    }

    /// `key` is done with Terraform for now: gives back its slot (reserved or running) and
    /// hands free slots to waiting keys, which are returned (to be woken). A key that only
    /// waits keeps its place.
    pub fn release(&mut self, key: &K) -> Vec<K> {
        if self.holders.remove(key).is_none() {
            return Vec::new();
        }
        self.fill()
    }

    /// `key` no longer wants a slot (its Project is gone): leaves the queue, or gives back
    /// its slot.
    pub fn forget(&mut self, key: &K) -> Vec<K> {
        for queue in self.waiting.values_mut() {
            queue.retain(|k| k != key);
        }
        self.waiting.retain(|_, q| !q.is_empty());
        self.release(key)
    }

    /// Slots held (reserved or running).
    #[must_use]
    pub fn in_use(&self) -> usize {
        self.holders.len()
    }

    /// Keys waiting, in all namespaces.
    #[must_use]
    pub fn waiting(&self) -> usize {
        self.waiting.values().map(VecDeque::len).sum()
    }

    /// Slots held by `namespace`'s keys.
    #[must_use]
    pub fn held_by(&self, namespace: &str) -> usize {
        self.holders
            .values()
            .filter(|(ns, _)| ns == namespace)
            .count()
    }

    fn is_waiting(&self, namespace: &str, key: &K) -> bool {
        self.waiting
            .get(namespace)
            .is_some_and(|q| q.iter().any(|k| k == key))
    }

    /// Hands free slots to waiting keys by the rule; returns them.
    fn fill(&mut self) -> Vec<K> {
        let mut granted = Vec::new();
        while self.holders.len() < self.capacity {
            let held = self.held_counts();
            let Some(namespace) = next_namespace(&self.waiting, &held, self.last_served.as_deref())
            else {
                break;
            };
            let Some(queue) = self.waiting.get_mut(&namespace) else {
                break;
            };
            let Some(key) = queue.pop_front() else {
                break;
            };
            if queue.is_empty() {
                self.waiting.remove(&namespace);
            }
            self.holders
                .insert(key.clone(), (namespace.clone(), Hold::Reserved));
            self.last_served = Some(namespace);
            granted.push(key);
        }
        granted
    }

    fn held_counts(&self) -> BTreeMap<String, usize> {
        let mut held = BTreeMap::new();
        for (ns, _) in self.holders.values() {
            *held.entry(ns.clone()).or_insert(0) += 1;
        }
        held
    }

    /// Where `key` (waiting in `namespace`) stands: the rule played forward on the queue
    /// lengths, each grant adding to its namespace's count.
    fn place(&self, namespace: &str, key: &K) -> Place {
        let index = self
            .waiting
            .get(namespace)
            .and_then(|q| q.iter().position(|k| k == key))
            .unwrap_or(0);
        let mut lengths: BTreeMap<String, VecDeque<()>> = self
            .waiting
            .iter()
            .map(|(ns, q)| (ns.clone(), q.iter().map(|_| ()).collect()))
            .collect();
        let mut held = self.held_counts();
        let mut last = self.last_served.clone();
        let mut served_here = 0;
        let mut position = 0;
        while let Some(ns) = next_namespace(&lengths, &held, last.as_deref()) {
            position += 1;
            if ns == namespace {
                if served_here == index {
                    break;
                }
                served_here += 1;
            }
            if let Some(q) = lengths.get_mut(&ns) {
                q.pop_front();
                if q.is_empty() {
                    lengths.remove(&ns);
                }
            }
            *held.entry(ns.clone()).or_insert(0) += 1;
            last = Some(ns);
        }
        Place {
            position,
            namespace_waiting: self.waiting.get(namespace).map_or(0, VecDeque::len),
            namespaces_waiting: self.waiting.len(),
            capacity: self.capacity,
        }
    }
}

/// The waiting namespace served next: fewest slots held, then the first after `last` in
/// name order (wrapping around).
fn next_namespace<T>(
    waiting: &BTreeMap<String, VecDeque<T>>,
    held: &BTreeMap<String, usize>,
    last: Option<&str>,
) -> Option<String> {
    waiting
        .iter()
        .filter(|(_, q)| !q.is_empty())
        .map(|(ns, _)| ns)
        .min_by_key(|ns| {
            let count = held.get(ns.as_str()).copied().unwrap_or(0);
            let wraps = last.is_some_and(|l| ns.as_str() <= l);
            (count, wraps, ns.as_str())
        })
        .cloned()
}

#[cfg(test)]
mod tests;

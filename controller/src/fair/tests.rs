#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

type Key = (String, u32);

fn key(ns: &str, id: u32) -> Key {
    (ns.to_owned(), id)
}

/// Asks for `key` and, when granted, returns true; the woken keys take their slot at once
/// (as their reconciles would), so only running slots remain.
fn ask(q: &mut FairQueue<Key>, k: &Key) -> bool {
    let (admission, woken) = q.request(&k.0, k.clone());
    for w in woken {
        assert_eq!(q.request(&w.0, w.clone()).0, Admission::Granted);
    }
    admission == Admission::Granted
}

/// Releases `k` and lets the woken keys take their slots; returns them.
fn finish(q: &mut FairQueue<Key>, k: &Key) -> Vec<Key> {
    let woken = q.release(k);
    for w in &woken {
        assert_eq!(q.request(&w.0, w.clone()).0, Admission::Granted);
    }
    woken
}

#[test]
fn a_free_slot_is_granted_at_once_and_the_capacity_is_never_exceeded() {
    let mut q = FairQueue::new(2);
    assert!(ask(&mut q, &key("a", 1)));
    assert!(ask(&mut q, &key("a", 2)));
    assert!(!ask(&mut q, &key("a", 3)));
    assert_eq!(q.in_use(), 2);
    assert_eq!(q.waiting(), 1);
    // Asking again keeps its place, and a holder asking again still holds its slot.
    assert!(!ask(&mut q, &key("a", 3)));
    assert!(ask(&mut q, &key("a", 1)));
    assert_eq!((q.in_use(), q.waiting()), (2, 1));
}

#[test]
fn a_namespace_with_one_project_waits_for_one_run_while_another_has_hundreds_queued() {
    let mut q = FairQueue::new(4);
    for id in 0..500 {
        ask(&mut q, &key("big", id));
    }
    assert_eq!((q.held_by("big"), q.waiting()), (4, 496));
    let (admission, woken) = q.request("small", key("small", 0));
    assert!(woken.is_empty());
    let Admission::Queued(place) = admission else {
        panic!("no slot is free")
    };
    assert_eq!(
        place,
        Place {
            position: 1,
            namespace_waiting: 1,
            namespaces_waiting: 2,
            capacity: 4,
        }
    );
    // The first slot released goes to it.
    assert_eq!(finish(&mut q, &key("big", 0)), vec![key("small", 0)]);
    assert_eq!(q.held_by("small"), 1);
}

#[test]
fn the_reported_position_counts_the_fair_turns_ahead() {
    let mut q = FairQueue::new(2);
    for id in 0..6 {
        ask(&mut q, &key("a", id));
    }
    // "a" holds both slots with 4 waiting; "b" and "c" arrive with two each.
    for id in 0..2 {
        ask(&mut q, &key("b", id));
        ask(&mut q, &key("c", id));
    }
    let position = |q: &FairQueue<Key>, k: &Key| q.place(&k.0, k).position;
    // b and c hold nothing: they alternate until they hold as many as a (2), then all three
    // take turns in name order.
    assert_eq!(position(&q, &key("b", 0)), 1);
    assert_eq!(position(&q, &key("c", 0)), 2);
    assert_eq!(position(&q, &key("b", 1)), 3);
    assert_eq!(position(&q, &key("c", 1)), 4);
    assert_eq!(position(&q, &key("a", 2)), 5);
    assert_eq!(position(&q, &key("a", 5)), 8);
    // The next two releases serve them in that order.
    assert_eq!(finish(&mut q, &key("a", 0)), vec![key("b", 0)]);
    assert_eq!(finish(&mut q, &key("a", 1)), vec![key("c", 0)]);
}

#[test]
fn namespaces_holding_as_many_take_turns() {
    let mut q = FairQueue::new(1);
    for id in 0..4 {
        ask(&mut q, &key("a", id));
        ask(&mut q, &key("b", id));
    }
    // a0 runs; from then on every release leaves both holding nothing: they alternate,
    // whichever name sorts first.
    let mut served = vec![key("a", 0)];
    for _ in 0..7 {
        let last = served.last().unwrap().clone();
        served.extend(finish(&mut q, &last));
    }
    let namespaces: Vec<&str> = served.iter().map(|k| k.0.as_str()).collect();
    assert_eq!(namespaces, ["a", "b", "a", "b", "a", "b", "a", "b"]);
}

#[test]
fn a_reserved_slot_counts_until_taken_or_released() {
    let mut q = FairQueue::new(1);
    assert!(ask(&mut q, &key("a", 0)));
    assert!(!ask(&mut q, &key("b", 0)));
    let woken = q.release(&key("a", 0));
    assert_eq!(woken, vec![key("b", 0)]);
    // Reserved for b: nobody else gets it.
    assert!(!ask(&mut q, &key("c", 0)));
    assert_eq!(q.in_use(), 1);
    // b's reconcile found nothing to run and gives it back: c gets it.
    assert_eq!(q.release(&key("b", 0)), vec![key("c", 0)]);
}

#[test]
fn a_forgotten_key_leaves_the_queue_and_gives_back_its_slot() {
    let mut q = FairQueue::new(1);
    assert!(ask(&mut q, &key("a", 0)));
    assert!(!ask(&mut q, &key("a", 1)));
    assert!(!ask(&mut q, &key("b", 0)));
    assert!(q.forget(&key("a", 1)).is_empty());
    assert_eq!(q.waiting(), 1);
    assert_eq!(q.forget(&key("a", 0)), vec![key("b", 0)]);
    // Releasing a key that holds nothing changes nothing.
    assert!(q.release(&key("zz", 9)).is_empty());
}

#[derive(Clone, Debug)]
enum Op {
    /// A Project of namespace `ns` asks for a slot.
    Arrive(usize),
    /// The n-th running holder (mod their count) finishes.
    Finish(usize),
    /// The n-th waiting key (mod their count) goes away.
    Vanish(usize),
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![
            3 => (0..4usize).prop_map(Op::Arrive),
            2 => any::<usize>().prop_map(Op::Finish),
            1 => any::<usize>().prop_map(Op::Vanish),
        ],
        1..200,
    )
}

const NAMESPACES: [&str; 4] = ["a", "b", "c", "d"];

/// The model's view: which keys hold a slot and which wait, per namespace.
#[derive(Default)]
struct Model {
    holding: Vec<Key>,
    waiting: Vec<Key>,
}

impl Model {
    fn held(&self, ns: &str) -> usize {
        self.holding.iter().filter(|k| k.0 == ns).count()
    }

    /// Applies grants in order, checking each against the rule: no namespace that waits
    /// holds fewer slots than the one served.
    fn grant(&mut self, woken: &[Key]) {
        for w in woken {
            let served = self.held(&w.0);
            for other in &self.waiting {
                assert!(
                    self.held(&other.0) >= served || other.0 == w.0,
                    "{w:?} was served holding {served} while {other:?} waited holding {}",
                    self.held(&other.0)
                );
            }
            // Within a namespace, first come first served.
            let first = self.waiting.iter().position(|k| k.0 == w.0).unwrap();
            assert_eq!(
                &self.waiting[first], w,
                "served out of order in its namespace"
            );
            self.waiting.remove(first);
            self.holding.push(w.clone());
        }
    }
}

proptest! {
    #[test]
    fn no_namespace_waits_more_than_its_share(capacity in 1..5usize, ops in ops()) {
        let mut q: FairQueue<Key> = FairQueue::new(capacity);
        let mut model = Model::default();
        let mut next_id = 0u32;
        for op in ops {
            match op {
                Op::Arrive(ns) => {
                    let k = key(NAMESPACES[ns], next_id);
                    next_id += 1;
                    model.waiting.push(k.clone());
                    let (admission, woken) = q.request(&k.0, k.clone());
                    let mut granted = woken.clone();
                    if admission == Admission::Granted {
                        granted.push(k.clone());
                    }
                    model.grant(&granted);
                    for w in woken {
                        prop_assert_eq!(q.request(&w.0, w.clone()).0, Admission::Granted);
                    }
                    if let Admission::Queued(place) = admission {
                        prop_assert!(place.position >= 1);
                        prop_assert!(place.position <= q.waiting());
                        prop_assert_eq!(place.namespace_waiting, model.waiting.iter().filter(|w| w.0 == k.0).count());
                    }
                }
                Op::Finish(n) if !model.holding.is_empty() => {
                    let k = model.holding.remove(n % model.holding.len());
                    let woken = q.release(&k);
                    model.grant(&woken);
                    for w in woken {
                        prop_assert_eq!(q.request(&w.0, w.clone()).0, Admission::Granted);
                    }
                }
                Op::Vanish(n) if !model.waiting.is_empty() => {
                    let k = model.waiting.remove(n % model.waiting.len());
                    prop_assert!(q.forget(&k).is_empty());
                }
                Op::Finish(_) | Op::Vanish(_) => {}
            }
            prop_assert!(q.in_use() <= capacity);
            prop_assert_eq!(q.in_use(), model.holding.len());
            prop_assert_eq!(q.waiting(), model.waiting.len());
            // Work-conserving: nobody waits while a slot is free.
            prop_assert!(q.waiting() == 0 || q.in_use() == capacity);
            let by_ns: BTreeMap<&str, usize> = NAMESPACES.iter().map(|ns| (*ns, q.held_by(ns))).collect();
            for ns in NAMESPACES {
                prop_assert_eq!(by_ns[ns], model.held(ns));
            }
        }
    }
}

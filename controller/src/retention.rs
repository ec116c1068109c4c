//! How many of a Project's Checkpoints stay in the cluster.
//!
//! Every spec change leaves a `Superseded` Checkpoint and every decision a decided one; kept
//! for ever, a Project changed ten times a day leaves thousands of objects in etcd a year.
//! Once final, a Checkpoint is only a record, and the record lives on in the audit trail
//! and the Project's `status.history`: so only the newest `keep` final Checkpoints of a
//! Project stay. A Checkpoint a person may still decide (`Pending`, `Escalated`, or one
//! whose phase the controller has not written yet) is never deleted, nor the one the
//! Project's status references (the controller may be acting on its decision right now).

use jiff::Timestamp;

use crate::api::CheckpointPhase;

/// Final Checkpoints kept per Project unless configured otherwise (`--keep-checkpoints`).
pub const DEFAULT_KEEP: usize = 10;

/// What retention needs to know of one Checkpoint; `K` names it (namespace and name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held<K> {
    /// Which Checkpoint.
    pub key: K,
    /// `spec.requestedAt`: when it was opened.
    pub requested_at: Timestamp,
    /// `status.phase`, if written yet.
    pub phase: Option<CheckpointPhase>,
}

impl<K> Held<K> {
    /// Whether nothing can happen to it any more: decided, expired or superseded.
    #[must_use]
    pub fn is_final(&self) -> bool {
        matches!(
            self.phase,
            Some(
                CheckpointPhase::Approved
                    | CheckpointPhase::Rejected
                    | CheckpointPhase::Expired
                    | CheckpointPhase::Superseded
            )
        )
    }
}

/// The Checkpoints to delete so that at most `keep` final ones remain: the oldest final
/// ones (by `requestedAt`, then key, so the choice is stable), never one that is not final
/// and never `referenced`. Returned oldest first.
#[must_use]
pub fn to_delete<K: Clone + Ord>(
    checkpoints: &[Held<K>],
    keep: usize,
    referenced: Option<&K>,
) -> Vec<K> {
    let mut deletable: Vec<&Held<K>> = checkpoints
        .iter()
        .filter(|c| c.is_final() && Some(&c.key) != referenced)
        .collect();
    // The referenced one, when final, counts against `keep`: it is one of the records kept.
    let kept_anyway = checkpoints
        .iter()
        .filter(|c| c.is_final() && Some(&c.key) == referenced)
        .count();
    let room = keep.saturating_sub(kept_anyway);
    if deletable.len() <= room {
        return Vec::new();
    }
    deletable.sort_by(|a, b| (a.requested_at, &a.key).cmp(&(b.requested_at, &b.key)));
    let excess = deletable.len() - room;
    deletable
        .into_iter()
        .take(excess)
        .map(|c| c.key.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use proptest::prelude::*;

    use super::*;

    const PHASES: [Option<CheckpointPhase>; 7] = [
        None,
        Some(CheckpointPhase::Pending),
        Some(CheckpointPhase::Escalated),
        Some(CheckpointPhase::Approved),
        Some(CheckpointPhase::Rejected),
        Some(CheckpointPhase::Expired),
        Some(CheckpointPhase::Superseded),
    ];

    fn held(name: &str, second: i64, phase: Option<CheckpointPhase>) -> Held<String> {
        Held {
            key: name.to_owned(),
            requested_at: Timestamp::from_second(second).unwrap(),
            phase,
        }
    }

    #[test]
    fn deletes_the_oldest_final_checkpoints_beyond_keep() {
        let all = [
            held("a", 1, Some(CheckpointPhase::Superseded)),
            held("b", 2, Some(CheckpointPhase::Rejected)),
            held("c", 3, Some(CheckpointPhase::Approved)),
            held("d", 4, Some(CheckpointPhase::Expired)),
            held("e", 5, Some(CheckpointPhase::Pending)),
        ];
        assert_eq!(to_delete(&all, 2, None), ["a", "b"]);
        assert_eq!(to_delete(&all, 4, None), Vec::<String>::new());
        assert_eq!(to_delete(&all, 0, None), ["a", "b", "c", "d"]);
    }

    #[test]
    fn never_deletes_what_a_person_may_still_decide() {
        let all = [
            held("old-pending", 1, Some(CheckpointPhase::Pending)),
            held("old-escalated", 2, Some(CheckpointPhase::Escalated)),
            held("no-phase-yet", 3, None),
            held("done", 4, Some(CheckpointPhase::Superseded)),
        ];
        assert_eq!(to_delete(&all, 0, None), ["done"]);
    }

    #[test]
    fn never_deletes_the_referenced_checkpoint_and_counts_it_as_kept() {
        let all = [
            held("approved-being-applied", 1, Some(CheckpointPhase::Approved)),
            held("b", 2, Some(CheckpointPhase::Superseded)),
            held("c", 3, Some(CheckpointPhase::Superseded)),
        ];
        let referenced = "approved-being-applied".to_owned();
        assert_eq!(to_delete(&all, 2, Some(&referenced)), ["b"]);
        assert_eq!(to_delete(&all, 0, Some(&referenced)), ["b", "c"]);
    }

    #[test]
    fn equal_times_are_ordered_by_key() {
        let all = [
            held("y", 7, Some(CheckpointPhase::Superseded)),
            held("x", 7, Some(CheckpointPhase::Superseded)),
        ];
        assert_eq!(to_delete(&all, 1, None), ["x"]);
    }

    fn any_checkpoints() -> impl Strategy<Value = Vec<Held<String>>> {
        prop::collection::vec((0i64..50, 0usize..PHASES.len()), 0..40).prop_map(|v| {
            v.into_iter()
                .enumerate()
                .map(|(i, (second, phase))| held(&format!("cp-{i:02}"), second, PHASES[phase]))
                .collect()
        })
    }

    proptest! {
        #[test]
        fn keeps_at_most_keep_final_and_every_undecided_and_the_referenced(
            all in any_checkpoints(),
            keep in 0usize..15,
            referenced in prop::option::of(0usize..40),
        ) {
            let referenced = referenced.map(|i| format!("cp-{i:02}"));
            let deleted = to_delete(&all, keep, referenced.as_ref());
            let remaining: Vec<&Held<String>> =
                all.iter().filter(|c| !deleted.contains(&c.key)).collect();
            // Only final ones go, never the referenced one, each at most once.
            for key in &deleted {
                let c = all.iter().find(|c| &c.key == key).unwrap();
                prop_assert!(c.is_final());
                prop_assert!(Some(key) != referenced.as_ref());
            }
            let unique: std::collections::BTreeSet<&String> = deleted.iter().collect();
            prop_assert_eq!(unique.len(), deleted.len());
            // At most `keep` final ones remain, beyond the referenced one when keep is 0.
            let final_left = remaining.iter().filter(|c| c.is_final()).count();
            let referenced_final = all
                .iter()
                .any(|c| c.is_final() && Some(&c.key) == referenced.as_ref());
            prop_assert!(final_left <= keep.max(usize::from(referenced_final)));
            // Nothing is deleted without need: either all final ones that could go are
            // within `keep`, or exactly `keep` final ones remain (the referenced one counted).
            let final_total = all.iter().filter(|c| c.is_final()).count();
            prop_assert!(final_left == final_total.min(keep.max(usize::from(referenced_final))));
            // Every deleted one is older (or equal and ordered before) than every final one kept.
            for key in &deleted {
                let gone = all.iter().find(|c| &c.key == key).unwrap();
                for kept in remaining.iter().filter(|c| c.is_final() && Some(&c.key) != referenced.as_ref()) {
                    prop_assert!((gone.requested_at, &gone.key) < (kept.requested_at, &kept.key));
                }
            }
        }
    }
}

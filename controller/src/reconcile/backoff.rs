//! Per-object retry backoff: exponential, capped, reset on success.
//!
//! The controller's own status writes (a phase, the `Retrying` condition) are watch events
//! that start the next reconcile at once; a requeue delay alone cannot slow a failing
//! object down. So the delay is also a gate: while an object is backing off, a reconcile
//! caused by anything but a change of the object itself (its generation, annotations,
//! finalizers or deletion) returns without doing work.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// First retry delay.
pub const BASE: Duration = Duration::from_secs(5);
/// Longest retry delay.
pub const CAP: Duration = Duration::from_secs(300);

/// The delay before retry number `attempt` (1 for the first retry): [`BASE`] doubling up
/// to [`CAP`].
#[must_use]
pub fn delay(attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(1).min(16);
    BASE.saturating_mul(1u32 << doublings).min(CAP)
}

#[derive(Debug, Clone)]
struct Entry {
    failures: u32,
    retry_at: Instant,
    /// What the object looked like when it failed: a change of it retries at once.
    fingerprint: String,
}

/// Failures per object (`kind/namespace/name`).
#[derive(Debug, Default)]
pub struct Backoff {
    entries: Mutex<HashMap<String, Entry>>,
}

impl Backoff {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Entry>) -> T) -> T {
        let mut guard = match self.entries.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }

    /// The delay the next failure of `key` will get.
    pub fn next_delay(&self, key: &str) -> Duration {
        self.with(|e| delay(e.get(key).map_or(0, |e| e.failures) + 1))
    }

    /// Records a failure of `key` at `now`; returns the delay until the retry.
    pub fn failed(&self, key: &str, fingerprint: &str, now: Instant) -> Duration {
        self.with(|entries| {
            let failures = entries.get(key).map_or(0, |e| e.failures) + 1;
            let wait = delay(failures);
            entries.insert(
                key.to_owned(),
                Entry {
                    failures,
                    retry_at: now + wait,
                    fingerprint: fingerprint.to_owned(),
                },
            );
            wait
        })
    }

    /// `Some(remaining)` while `key` is backing off and the object is unchanged since it
    /// failed (same `fingerprint`): the reconcile should wait that long and do nothing.
    pub fn waiting(&self, key: &str, fingerprint: &str, now: Instant) -> Option<Duration> {
        self.with(|entries| {
            let entry = entries.get(key)?;
            (entry.fingerprint == fingerprint && now < entry.retry_at).then(|| entry.retry_at - now)
        })
    }

    /// A success: the next failure starts again at [`BASE`].
    pub fn succeeded(&self, key: &str) {
        self.with(|entries| entries.remove(key));
    }

    /// Failures of `key` since its last success.
    pub fn failures(&self, key: &str) -> u32 {
        self.with(|entries| entries.get(key).map_or(0, |e| e.failures))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_from_five_seconds_to_five_minutes() {
        let secs: Vec<u64> = (1..=10).map(|a| delay(a).as_secs()).collect();
        assert_eq!(secs, [5, 10, 20, 40, 80, 160, 300, 300, 300, 300]);
        assert_eq!(delay(0), BASE);
        assert_eq!(delay(u32::MAX), CAP);
    }

    #[test]
    fn failures_grow_the_delay_and_success_resets_it() {
        let b = Backoff::default();
        let now = Instant::now();
        assert_eq!(b.next_delay("p"), BASE);
        assert_eq!(b.failed("p", "g1", now), Duration::from_secs(5));
        assert_eq!(b.failed("p", "g1", now), Duration::from_secs(10));
        assert_eq!(b.next_delay("p"), Duration::from_secs(20));
        assert_eq!(b.failures("p"), 2);
        assert_eq!(b.failures("other"), 0, "per object");
        b.succeeded("p");
        assert_eq!(b.failures("p"), 0);
        assert_eq!(b.failed("p", "g1", now), BASE);
    }

    #[test]
    fn an_unchanged_object_waits_and_a_changed_one_does_not() {
        let b = Backoff::default();
        let now = Instant::now();
        b.failed("p", "g1", now);
        assert_eq!(b.waiting("p", "g1", now), Some(BASE));
        assert_eq!(
            b.waiting("p", "g1", now + Duration::from_secs(2)),
            Some(Duration::from_secs(3))
        );
        assert_eq!(b.waiting("p", "g1", now + BASE), None, "due");
        assert_eq!(b.waiting("p", "g2", now), None, "the object changed");
        assert_eq!(b.waiting("q", "g1", now), None, "never failed");
    }
}

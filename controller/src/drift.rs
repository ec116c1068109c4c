//! Drift detection, the pure part: when a Project's next scheduled check is due, what a
//! refresh-only plan found (in the bounded, masked form status shows), what to do about
//! it, and how the gate's decision is tightened for a plan that restores the declared
//! state. The controller (`reconcile/project/drift.rs`) runs Terraform and writes status.
//!
//! Checks are spread: a Project checks at `offset + k × interval` on the Unix clock, its
//! offset a hash of its uid. Projects with the same interval therefore check at times
//! spread evenly over the interval, also when a thousand were created in one sync, and a
//! Project's schedule is the same after a controller restart.

use jiff::{SignedDuration, Timestamp};
use sha2::{Digest, Sha256};

use crate::api::{CheckpointType, DriftAction, DriftStatus, DriftedResource};
use crate::gate::GateDecision;
use crate::plan::PlanReview;

/// Shorter intervals are refused: each check is a Terraform plan against the cloud.
pub const MIN_INTERVAL: SignedDuration = SignedDuration::from_secs(10);
/// Resources listed in status (the schema's limit); the rest are counted.
pub const LISTED_RESOURCES: usize = 20;
/// Attributes listed per resource (the schema's limit).
pub const LISTED_ATTRIBUTES: usize = 10;
/// A listed value is cut after this many characters.
const VALUE_CHARS: usize = 80;
/// The `Drifted` condition's message is cut after this many characters.
const MESSAGE_CHARS: usize = 1000;

/// What can be wrong with `spec.driftDetection`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum DriftError {
    /// Not a duration of the API's form.
    #[error("spec.driftDetection.interval: {0}")]
    Interval(String),
    /// Too short to be a schedule.
    #[error(
        "spec.driftDetection.interval is {interval}: it must be at least {}s, each check is a Terraform plan",
        MIN_INTERVAL.as_secs()
    )]
    TooShort {
        /// The interval asked for.
        interval: String,
    },
}

/// When a Project checks for drift.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    interval: i64,
    offset: i64,
}

impl Schedule {
    /// The schedule of `interval` (the API's duration form) for the Project whose uid is
    /// `seed`.
    pub fn new(interval: &str, seed: &str) -> Result<Self, DriftError> {
        let parsed = crate::sla::parse_duration("spec.driftDetection.interval", interval)
            .map_err(|e| DriftError::Interval(e.to_string()))?;
        if parsed < MIN_INTERVAL {
            return Err(DriftError::TooShort {
                interval: interval.to_owned(),
            });
        }
        Ok(Self::with_seconds(parsed.as_secs(), seed))
    }

    /// The schedule of `interval` seconds (at least one) for the Project whose uid is
    /// `seed`: the same spreading for every periodic check of a Project.
    pub fn with_seconds(interval: i64, seed: &str) -> Self {
        let hash = Sha256::digest(seed.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&hash[..8]);
        let spread = u64::from_be_bytes(first) % interval.unsigned_abs();
        Self {
            interval,
            // Less than `interval`, itself at most 100 years in seconds.
            offset: i64::try_from(spread).unwrap_or_default(),
        }
    }

    /// This Project's place in the interval.
    pub fn offset(&self) -> SignedDuration {
        SignedDuration::from_secs(self.offset)
    }

    /// The first check strictly after `after`.
    pub fn next_after(&self, after: Timestamp) -> Timestamp {
        let since = after.as_second() - self.offset;
        let slot = since.div_euclid(self.interval) + 1;
        let at = slot
            .checked_mul(self.interval)
            .and_then(|s| s.checked_add(self.offset));
        at.and_then(|s| Timestamp::from_second(s).ok())
            .unwrap_or(Timestamp::MAX)
    }
}

/// What a refresh-only plan found, as status shows it.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct DriftReport {
    /// Changed resources, bounded.
    pub resources: Vec<DriftedResource>,
    /// Changed resources not listed.
    pub omitted: usize,
    /// sha256 of the whole masked review; `None`: nothing moved.
    pub digest: Option<String>,
}

impl DriftReport {
    /// The report of a refresh-only plan's drift review (already masked: sensitive values
    /// and known secrets never reach it).
    pub fn from_review(review: &PlanReview) -> Self {
        if review.changes.is_empty() {
            return Self::default();
        }
        let digest = serde_json::to_vec(review)
            .map(|json| hex::encode(Sha256::digest(&json)))
            .ok();
        let resources = review
            .changes
            .iter()
            .take(LISTED_RESOURCES)
            .map(|c| DriftedResource {
                address: c.address.clone(),
                action: c.action.clone(),
                attributes: c
                    .attributes
                    .iter()
                    .take(LISTED_ATTRIBUTES)
                    .map(|a| {
                        format!(
                            "{}: {} → {}",
                            a.path,
                            shown(a.before.as_deref()),
                            shown(a.after.as_deref())
                        )
                    })
                    .collect(),
            })
            .collect();
        Self {
            resources,
            omitted: review.changes.len().saturating_sub(LISTED_RESOURCES) + review.omitted_changes,
            digest,
        }
    }

    /// Whether anything moved.
    pub fn drifted(&self) -> bool {
        self.digest.is_some()
    }

    /// The `Drifted` condition's message: what moved, addresses and attribute paths.
    pub fn message(&self) -> String {
        if !self.drifted() {
            return "the last check found no change outside tollgate".into();
        }
        let total = self.resources.len() + self.omitted;
        let listed: Vec<String> = self
            .resources
            .iter()
            .map(|r| {
                let paths: Vec<&str> = r
                    .attributes
                    .iter()
                    .map(|a| a.split(": ").next().unwrap_or(a))
                    .collect();
                if paths.is_empty() {
                    format!("{} ({})", r.address, r.action)
                } else {
                    format!("{} ({}: {})", r.address, r.action, paths.join(", "))
                }
            })
            .collect();
        let mut message = format!(
            "{total} resource(s) changed outside tollgate: {}",
            listed.join("; ")
        );
        if self.omitted > 0 {
            message.push_str(&format!("; and {} more", self.omitted));
        }
        cut(&message, MESSAGE_CHARS)
    }
}

fn shown(value: Option<&str>) -> String {
    value.map_or_else(|| "(none)".to_owned(), |v| cut(v, VALUE_CHARS))
}

fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        text.chars().take(max).collect::<String>() + "…"
    }
}

/// What to do after a check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Reaction {
    /// A Warning Event: this drift was not reported before.
    pub event: bool,
    /// Send a notification (action `Notify`), not yet sent for this drift.
    pub notify: bool,
    /// Plan the declared state and open a checkpoint (action `Checkpoint`), not yet
    /// opened for this drift.
    pub restore: bool,
}

/// What `action` asks for after a check found `report`, given what the previous checks
/// recorded. A drift is "the same" while its digest is; a clean check in between forgets
/// it, so the same edit made again later is reported (and restored) again.
pub fn react(action: DriftAction, report: &DriftReport, previous: &DriftStatus) -> Reaction {
    let Some(digest) = report.digest.as_deref() else {
        return Reaction::default();
    };
    let is_new = |seen: &Option<String>| seen.as_deref() != Some(digest);
    Reaction {
        event: action != DriftAction::Ignore && is_new(&previous.digest),
        notify: action == DriftAction::Notify && is_new(&previous.notified_digest),
        restore: action == DriftAction::Checkpoint && is_new(&previous.restore_digest),
    }
}

/// The status a check leaves: `report` and the next check, keeping what was already
/// notified or restored for this drift (forgotten once a check is clean).
pub fn next_status(
    previous: &DriftStatus,
    report: &DriftReport,
    checked_at: Timestamp,
    next_check_at: Timestamp,
) -> DriftStatus {
    let keep = |seen: &Option<String>| {
        seen.clone()
            .filter(|s| report.digest.as_deref() == Some(s.as_str()))
    };
    DriftStatus {
        checked_at: Some(time(checked_at)),
        next_check_at: Some(time(next_check_at)),
        digest: report.digest.clone(),
        resources: report.resources.clone(),
        omitted_resources: (report.omitted > 0)
            .then(|| i64::try_from(report.omitted).unwrap_or(i64::MAX)),
        notified_digest: keep(&previous.notified_digest),
        restore_digest: keep(&previous.restore_digest),
        notifications: previous.notifications.clone(),
    }
}

fn time(t: Timestamp) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Time {
    k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(t)
}

/// The gate's decision for a plan made to restore drift: never applied without a person
/// (a change nobody declared is not a change anybody pre-approved), so a pre-approval
/// becomes a PlanApproval checkpoint; a checkpoint the gate wants anyway says why too.
pub fn restore_decision(decision: GateDecision, report: &DriftReport) -> GateDecision {
    let why = format!(
        "restores the declared state after drift: {}",
        report.message()
    );
    match decision {
        GateDecision::NoChanges => GateDecision::NoChanges,
        GateDecision::AutoApprove { .. } => GateDecision::RequireCheckpoint {
            checkpoint_type: CheckpointType::PlanApproval,
            reasons: vec![why],
        },
        GateDecision::RequireCheckpoint {
            checkpoint_type,
            mut reasons,
        } => {
            reasons.insert(0, why);
            GateDecision::RequireCheckpoint {
                checkpoint_type,
                reasons,
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;

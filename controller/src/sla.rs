//! Response deadlines of a checkpoint, as pure functions of time (no Kubernetes, no clock).
//!
//! - [`SlaDefaults::resolve`]: the Project's `spec.approval.sla` over per-environment
//!   defaults from the controller's configuration → the [`SlaDurations`] in force.
//! - [`Schedule::open`]: those durations applied to the time a checkpoint opens → its
//!   deadlines (`respondBy ≤ escalateAt ≤ expireAt`), written to `spec.sla` with
//!   [`Schedule::to_api`] and read back with [`Schedule::from_checkpoint`].
//! - [`next_deadline`]: which timer fires next and when, given what has already fired
//!   ([`Fired`], data the caller stores in the Checkpoint's status). A timer whose time has
//!   passed (e.g. while the controller was down) is returned at once, exactly until the
//!   caller records it, so it fires once and never twice; the caller requeues at the `at`
//!   of a timer in the future.

use std::collections::BTreeMap;
use std::fmt;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{Checkpoint, Sla, SlaPolicy};

/// Why deadlines cannot be computed; each message names the value and what to write.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SlaError {
    /// A duration is not of the form `4h`, `30m`, `1d`, `1h30m`.
    #[error(
        "{field}: `{value}` is not a duration; write whole numbers with a unit s, m, h or d, e.g. `4h`, `30m`, `1d`, `1h30m`"
    )]
    Duration {
        /// Where the value came from, e.g. `spec.approval.sla.respondWithin`.
        field: String,
        /// The text.
        value: String,
    },
    /// A deadline would be zero or negative.
    #[error("{field}: `{value}` must be longer than 0s")]
    NotPositive {
        /// Where the value came from.
        field: String,
        /// The text.
        value: String,
    },
    /// Deadlines in the wrong order.
    #[error(
        "{later} ({later_value}) is shorter than {earlier} ({earlier_value}); a checkpoint must be due before it escalates and escalate before it expires: lengthen {later} or shorten {earlier}"
    )]
    Order {
        /// The deadline that should come first.
        earlier: String,
        /// Its duration.
        earlier_value: String,
        /// The deadline that should come later.
        later: String,
        /// Its duration.
        later_value: String,
    },
    /// The controller's SLA defaults file is wrong.
    #[error("SLA defaults: {reason}")]
    Config {
        /// What is wrong, naming the key.
        reason: String,
    },
    /// A deadline falls outside the representable time range.
    #[error("{field}: {value} after {opened_at} is beyond the year 9999; use a shorter duration")]
    OutOfRange {
        /// Which deadline.
        field: String,
        /// Its duration.
        value: String,
        /// When the checkpoint opened.
        opened_at: Timestamp,
    },
}

const MAX_DURATION_SECS: i64 = 100 * 365 * 86_400;

/// Parses a duration of the API's form (`^([0-9]+(s|m|h|d))+$`, e.g. `4h`, `30m`, `1d`,
/// `1h30m`); `field` names the value in the error.
pub fn parse_duration(field: &str, value: &str) -> Result<SignedDuration, SlaError> {
    let invalid = || SlaError::Duration {
        field: field.to_owned(),
        value: value.to_owned(),
    };
    let mut total: i64 = 0;
    let mut number: Option<i64> = None;
    for c in value.chars() {
        if let Some(digit) = c.to_digit(10) {
            let n = number.unwrap_or(0);
            number = Some(
                n.checked_mul(10)
                    .and_then(|n| n.checked_add(i64::from(digit)))
                    .filter(|n| *n <= MAX_DURATION_SECS)
                    .ok_or_else(invalid)?,
            );
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            _ => return Err(invalid()),
        };
        let n = number.take().ok_or_else(invalid)?;
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .filter(|s| *s <= MAX_DURATION_SECS)
            .ok_or_else(invalid)?;
    }
    if number.is_some() || value.is_empty() {
        return Err(invalid());
    }
    Ok(SignedDuration::from_secs(total))
}

/// Formats a duration in the API's form, largest units first, e.g. `1d2h`, `1h30m`, `45s`
/// (`0s` for zero; a leading `-` when negative).
pub fn format_duration(d: SignedDuration) -> String {
    let mut secs = d.as_secs().unsigned_abs();
    if secs == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    if d.is_negative() {
        out.push('-');
    }
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

/// How long a checkpoint may wait, resolved from the Project and the defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlaDurations {
    /// A decision is due this long after opening.
    pub respond_within: SignedDuration,
    /// Escalated when still pending this long after opening.
    pub escalate_after: Option<SignedDuration>,
    /// Expires this long after opening.
    pub expire_after: Option<SignedDuration>,
    /// A reminder every this long while pending.
    pub remind_every: Option<SignedDuration>,
}

impl SlaDurations {
    /// Checks that every duration is positive and `respondWithin ≤ escalation ≤ expiry`.
    pub fn validate(&self) -> Result<(), SlaError> {
        let named = [
            ("respondWithin", Some(self.respond_within)),
            ("escalation.after", self.escalate_after),
            ("expireAfter", self.expire_after),
            ("reminder interval", self.remind_every),
        ];
        for (field, value) in named {
            if let Some(value) = value.filter(|v| !v.is_positive()) {
                return Err(SlaError::NotPositive {
                    field: field.to_owned(),
                    value: format_duration(value),
                });
            }
        }
        let ordered = [
            ("respondWithin", Some(self.respond_within)),
            ("escalation.after", self.escalate_after),
            ("expireAfter", self.expire_after),
        ];
        let present: Vec<(&str, SignedDuration)> = ordered
            .iter()
            .filter_map(|(name, d)| d.map(|d| (*name, d)))
            .collect();
        for pair in present.windows(2) {
            if let [(earlier, earlier_value), (later, later_value)] = pair
                && later_value < earlier_value
            {
                return Err(SlaError::Order {
                    earlier: (*earlier).to_owned(),
                    earlier_value: format_duration(*earlier_value),
                    later: (*later).to_owned(),
                    later_value: format_duration(*later_value),
                });
            }
        }
        Ok(())
    }
}

/// The SLA a Project gets when its `spec.approval.sla` leaves a value out; filled from the
/// controller's configuration (`--sla-defaults FILE`, see [`SlaDefaults::parse`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SlaDefault {
    /// Default `respondWithin`.
    pub respond_within: Option<SignedDuration>,
    /// Default `escalation.after`.
    pub escalate_after: Option<SignedDuration>,
    /// Default `expireAfter`.
    pub expire_after: Option<SignedDuration>,
    /// Reminder interval (not in the Project's API: an operator setting).
    pub remind_every: Option<SignedDuration>,
}

impl SlaDefault {
    /// Each value of `self`, else the one of `fallback`.
    fn over(&self, fallback: &SlaDefault) -> SlaDefault {
        SlaDefault {
            respond_within: self.respond_within.or(fallback.respond_within),
            escalate_after: self.escalate_after.or(fallback.escalate_after),
            expire_after: self.expire_after.or(fallback.expire_after),
            remind_every: self.remind_every.or(fallback.remind_every),
        }
    }
}

/// Per-environment defaults: `environments[env]` value by value over `fallback`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SlaDefaults {
    /// Defaults for every environment.
    pub fallback: SlaDefault,
    /// Defaults by environment name (a Project's `spec.environment`), each value over
    /// `fallback`'s.
    pub environments: BTreeMap<String, SlaDefault>,
}

/// The file form of one [`SlaDefault`].
#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SlaDefaultFile {
    respond_within: Option<String>,
    escalate_after: Option<String>,
    expire_after: Option<String>,
    remind_every: Option<String>,
}

/// The file form of [`SlaDefaults`].
#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SlaDefaultsFile {
    #[serde(flatten)]
    fallback: SlaDefaultFile,
    #[serde(default)]
    environments: BTreeMap<String, SlaDefaultFile>,
}

impl SlaDefaultFile {
    fn parse(&self, at: &str) -> Result<SlaDefault, SlaError> {
        let parse = |name: &str, value: &Option<String>| {
            value
                .as_deref()
                .map(|v| parse_duration(&format!("{at}{name}"), v))
                .transpose()
        };
        let parsed = SlaDefault {
            respond_within: parse("respondWithin", &self.respond_within)?,
            escalate_after: parse("escalateAfter", &self.escalate_after)?,
            expire_after: parse("expireAfter", &self.expire_after)?,
            remind_every: parse("remindEvery", &self.remind_every)?,
        };
        Ok(parsed)
    }
}

impl SlaDefaults {
    /// Reads the controller's SLA defaults (YAML): `respondWithin`, `escalateAfter`,
    /// `expireAfter`, `remindEvery` for every environment, and the same under
    /// `environments.<name>` to override them for one environment. Every environment's
    /// resulting defaults must be in order (respond ≤ escalate ≤ expire).
    pub fn parse(yaml: &str) -> Result<SlaDefaults, SlaError> {
        let file: SlaDefaultsFile = if yaml.trim().is_empty() {
            SlaDefaultsFile::default()
        } else {
            serde_saphyr::from_str(yaml).map_err(|e| SlaError::Config {
                reason: e.to_string(),
            })?
        };
        let defaults = SlaDefaults {
            fallback: file.fallback.parse("")?,
            environments: file
                .environments
                .iter()
                .map(|(env, d)| Ok((env.clone(), d.parse(&format!("environments.{env}."))?)))
                .collect::<Result<_, SlaError>>()?,
        };
        let names = std::iter::once(None).chain(defaults.environments.keys().map(Some));
        for env in names {
            let d = defaults.for_environment(env.map_or("", String::as_str));
            if let Some(respond_within) = d.respond_within {
                SlaDurations {
                    respond_within,
                    escalate_after: d.escalate_after,
                    expire_after: d.expire_after,
                    remind_every: d.remind_every,
                }
                .validate()
                .map_err(|e| SlaError::Config {
                    reason: match env {
                        Some(env) => format!("environments.{env}: {e}"),
                        None => e.to_string(),
                    },
                })?;
            }
        }
        Ok(defaults)
    }

    /// The defaults for `environment`.
    pub fn for_environment(&self, environment: &str) -> SlaDefault {
        match self.environments.get(environment) {
            Some(own) => own.over(&self.fallback),
            None => self.fallback.clone(),
        }
    }

    /// The SLA in force for a checkpoint of a Project in `environment` with `policy` (its
    /// `spec.approval.sla`): each value the Project sets wins over the default; `None`
    /// when neither sets `respondWithin` (no deadlines).
    pub fn resolve(
        &self,
        environment: &str,
        policy: Option<&SlaPolicy>,
    ) -> Result<Option<SlaDurations>, SlaError> {
        const FIELD: &str = "spec.approval.sla";
        let defaults = &self.for_environment(environment);
        let parse = |name: &str, value: &str| parse_duration(&format!("{FIELD}.{name}"), value);
        let respond_within = match policy {
            Some(p) => Some(parse("respondWithin", &p.respond_within)?),
            None => defaults.respond_within,
        };
        let Some(respond_within) = respond_within else {
            return Ok(None);
        };
        let escalate_after = match policy.and_then(|p| p.escalation.as_ref()) {
            Some(e) => Some(parse("escalation.after", &e.after)?),
            None => defaults.escalate_after,
        };
        let expire_after = match policy.and_then(|p| p.expire_after.as_deref()) {
            Some(e) => Some(parse("expireAfter", e)?),
            None => defaults.expire_after,
        };
        let durations = SlaDurations {
            respond_within,
            escalate_after,
            expire_after,
            remind_every: defaults.remind_every,
        };
        durations.validate()?;
        Ok(Some(durations))
    }
}

/// The SLA of `project`'s checkpoints under `defaults` (the controller's `--sla-defaults`):
/// the one rule the controller and `tollgate validate` both apply.
pub fn of_project(
    project: &crate::api::Project,
    defaults: &SlaDefaults,
) -> Result<Option<SlaDurations>, SlaError> {
    defaults.resolve(
        &project.spec.environment,
        project.spec.approval.as_ref().and_then(|a| a.sla.as_ref()),
    )
}

/// The deadlines of one checkpoint, and its reminder interval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// When the checkpoint opened (`spec.requestedAt`).
    pub opened_at: Timestamp,
    /// A decision is due by then.
    pub respond_by: Timestamp,
    /// Escalated if still pending then.
    pub escalate_at: Option<Timestamp>,
    /// Expires (nothing applied) if still pending then.
    pub expire_at: Option<Timestamp>,
    /// A reminder every this long after opening, while pending and before expiry.
    pub remind_every: Option<SignedDuration>,
}

impl Schedule {
    /// The deadlines of a checkpoint opened at `opened_at` under `durations`.
    pub fn open(opened_at: Timestamp, durations: &SlaDurations) -> Result<Schedule, SlaError> {
        durations.validate()?;
        let at = |field: &str, d: SignedDuration| {
            opened_at.checked_add(d).map_err(|_| SlaError::OutOfRange {
                field: field.to_owned(),
                value: format_duration(d),
                opened_at,
            })
        };
        Ok(Schedule {
            opened_at,
            respond_by: at("respondWithin", durations.respond_within)?,
            escalate_at: durations
                .escalate_after
                .map(|d| at("escalation.after", d))
                .transpose()?,
            expire_at: durations
                .expire_after
                .map(|d| at("expireAfter", d))
                .transpose()?,
            remind_every: durations.remind_every,
        })
    }

    /// The Checkpoint's `spec.sla`.
    pub fn to_api(&self) -> Sla {
        Sla {
            respond_by: Time(self.respond_by),
            escalate_at: self.escalate_at.map(Time),
            expire_at: self.expire_at.map(Time),
            remind_every: self.remind_every.map(format_duration),
        }
    }

    /// The schedule of a Checkpoint (from `spec.requestedAt` and `spec.sla`); `None`
    /// without `spec.sla`.
    pub fn from_checkpoint(checkpoint: &Checkpoint) -> Result<Option<Schedule>, SlaError> {
        let Some(sla) = checkpoint.spec.sla.as_ref() else {
            return Ok(None);
        };
        Ok(Some(Schedule {
            opened_at: checkpoint.spec.requested_at.0,
            respond_by: sla.respond_by.0,
            escalate_at: sla.escalate_at.as_ref().map(|t| t.0),
            expire_at: sla.expire_at.as_ref().map(|t| t.0),
            remind_every: sla
                .remind_every
                .as_deref()
                .map(|d| parse_duration("spec.sla.remindEvery", d))
                .transpose()?,
        }))
    }

    /// When reminder `n` (1-based) is due, if it is before expiry.
    fn reminder_at(&self, n: u32) -> Option<Timestamp> {
        let every = self.remind_every.filter(|d| d.is_positive())?;
        let at = self
            .opened_at
            .checked_add(every.checked_mul(i32::try_from(n).ok()?)?)
            .ok()?;
        match self.expire_at {
            Some(expire_at) if at >= expire_at => None,
            _ => Some(at),
        }
    }

    /// The number of the last reminder due at `now` (0: none yet).
    fn reminders_due(&self, now: Timestamp) -> u32 {
        let Some(every) = self.remind_every.filter(|d| d.is_positive()) else {
            return 0;
        };
        let elapsed = now.duration_since(self.opened_at).as_secs();
        let slots = elapsed.max(0) / every.as_secs().max(1);
        let mut n = u32::try_from(slots).unwrap_or(u32::MAX);
        // The last slots may fall at or after expiry: those reminders are never due.
        while n > 0 && self.reminder_at(n).is_none() {
            n -= 1;
        }
        n
    }
}

/// A timer of a pending checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Timer {
    /// The `n`th reminder (1-based): `opened_at + n × remind_every`.
    Reminder(u32),
    /// `escalateAt`: mark escalated, tell the escalation route.
    Escalation,
    /// `expireAt`: phase Expired, nothing applied.
    Expiry,
}

impl fmt::Display for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Timer::Reminder(n) => write!(f, "reminder {n}"),
            Timer::Escalation => f.write_str("escalation"),
            Timer::Expiry => f.write_str("expiry"),
        }
    }
}

/// What has fired for a checkpoint: the caller stores it (e.g. in the Checkpoint's
/// status: the last reminder number, the `Escalated` condition, phase `Expired`) and
/// records each timer it acts on with [`Fired::record`] before acting again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fired {
    /// Number of the last reminder sent (0: none). Reminders missed while the
    /// controller was down collapse into one: the latest.
    pub last_reminder: u32,
    /// The escalation fired.
    pub escalated: bool,
    /// The expiry fired (nothing fires after it).
    pub expired: bool,
}

impl Fired {
    /// Records that `timer` fired.
    pub fn record(&mut self, timer: Timer) {
        match timer {
            Timer::Reminder(n) => self.last_reminder = self.last_reminder.max(n),
            Timer::Escalation => self.escalated = true,
            Timer::Expiry => self.expired = true,
        }
    }
}

/// The next timer of a pending checkpoint and when it fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Due {
    /// Which timer.
    pub timer: Timer,
    /// When: at or before `now` means fire it now (then record it and ask again);
    /// later means requeue at this time.
    pub at: Timestamp,
}

impl Due {
    /// Whether it fires now.
    pub fn is_due(&self, now: Timestamp) -> bool {
        self.at <= now
    }
}

/// The timer that fires next for a checkpoint still pending at `now`, given what has
/// `fired`; `None` once nothing is left (expired, or no deadlines ahead).
///
/// Rules: an expiry that has passed wins over everything (the checkpoint is over; missed
/// reminders and escalation are not sent after it, and an escalation at the same time as
/// the expiry never fires); otherwise the earliest unfired timer,
/// where the reminders missed while the controller was down collapse into the latest one.
/// Only call it while the checkpoint is undecided.
pub fn next_deadline(now: Timestamp, schedule: &Schedule, fired: Fired) -> Option<Due> {
    if fired.expired {
        return None;
    }
    if let Some(expire_at) = schedule.expire_at.filter(|at| *at <= now) {
        return Some(Due {
            timer: Timer::Expiry,
            at: expire_at,
        });
    }
    let due = schedule.reminders_due(now);
    let reminder = if due > fired.last_reminder {
        Some(due)
    } else {
        fired.last_reminder.checked_add(1)
    }
    .and_then(|n| {
        schedule.reminder_at(n).map(|at| Due {
            timer: Timer::Reminder(n),
            at,
        })
    });
    let before_expiry = |at: &Timestamp| schedule.expire_at.is_none_or(|x| *at < x);
    let escalation = schedule
        .escalate_at
        .filter(|at| !fired.escalated && before_expiry(at))
        .map(|at| Due {
            timer: Timer::Escalation,
            at,
        });
    let expiry = schedule.expire_at.map(|at| Due {
        timer: Timer::Expiry,
        at,
    });
    [reminder, escalation, expiry]
        .into_iter()
        .flatten()
        .min_by_key(|d| (d.at, d.timer))
}

/// What the timers of a pending checkpoint did at `now`: every timer due, in order, and
/// when to look again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advance {
    /// The timers that fire now (record them before acting on them).
    pub fired_now: Vec<Timer>,
    /// `fired` with them recorded.
    pub fired: Fired,
    /// When the next timer fires (requeue then); `None` when nothing is left.
    pub next_at: Option<Timestamp>,
}

/// Fires every timer of a checkpoint still pending at `now` that is due, given what has
/// `fired` already: [`next_deadline`] until the next one is in the future.
pub fn advance(now: Timestamp, schedule: &Schedule, mut fired: Fired) -> Advance {
    let mut fired_now = Vec::new();
    let next_at = loop {
        match next_deadline(now, schedule, fired) {
            Some(due) if due.is_due(now) => {
                fired.record(due.timer);
                fired_now.push(due.timer);
            }
            later => break later.map(|due| due.at),
        }
    };
    Advance {
        fired_now,
        fired,
        next_at,
    }
}

#[cfg(test)]
mod tests;

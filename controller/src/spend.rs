//! Estimate vs actual, the pure part: which days AWS Cost Explorer is asked about, what the
//! monthly estimate predicts for them, how far the spend (month to date plus AWS's forecast
//! of the rest of the month) is from it, and when a Project is asked again. The Cost
//! Explorer calls are in [`crate::cloud::cost_explorer`]; the controller (`reconcile/project/spend.rs`) writes
//! status, the metric and the notification.
//!
//! The comparison is over the calendar month (UTC), the period Cost Explorer and AWS bills
//! use: `projected = month-to-date + forecast(today .. month end)` against
//! `expected = estimate × days the Project existed this month / days in the month`. Before
//! its creation day no resource carried its tags, so nothing was spent; the pro-rating keeps
//! a Project created mid-month from looking 50% under its estimate.
//!
//! Every request costs money ($0.01 per Cost Explorer API request), so checks are rare and
//! spread: a Project is asked at `offset + k × interval` ([`crate::drift::Schedule`], the
//! offset a hash of its uid), at most once per slot, and never on a plain reconcile.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use rust_decimal::Decimal;

use crate::drift::Schedule;

/// Shorter intervals are refused: each check is two paid requests. Hours are what Cost
/// Explorer's data supports (it refreshes a few times a day); minutes are for tests.
pub const MIN_INTERVAL: SignedDuration = SignedDuration::from_secs(60);
/// `--cost-variance-threshold` when not given: a variance beyond ±10% is reported.
pub const DEFAULT_THRESHOLD_PERCENT: u32 = 10;

/// What can be wrong with the controller's Cost Explorer settings.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpendError {
    /// Not a duration of the API's form.
    #[error("--cost-explorer-interval `{0}`: use a duration such as `24h` or `6h`")]
    Interval(String),
    /// Too short to be a schedule of paid requests.
    #[error(
        "--cost-explorer-interval is {0}: it must be at least 1m; each check is two Cost Explorer requests at $0.01 each, use hours (e.g. 24h)"
    )]
    TooShort(String),
    /// Not a percentage above 0.
    #[error("--cost-variance-threshold {0}: give a percentage above 0, e.g. 10")]
    Threshold(String),
}

/// The controller's Cost Explorer settings (`--cost-explorer-interval`,
/// `--cost-variance-threshold`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    interval: i64,
    threshold: Decimal,
}

impl Settings {
    /// Checks every `interval` (the API's duration form), reporting a variance beyond
    /// `threshold_percent`.
    pub fn new(interval: &str, threshold_percent: u32) -> Result<Self, SpendError> {
        let parsed = crate::sla::parse_duration("--cost-explorer-interval", interval)
            .map_err(|_| SpendError::Interval(interval.to_owned()))?;
        if parsed < MIN_INTERVAL {
            return Err(SpendError::TooShort(interval.to_owned()));
        }
        if threshold_percent == 0 {
            return Err(SpendError::Threshold(threshold_percent.to_string()));
        }
        Ok(Self {
            interval: parsed.as_secs(),
            threshold: Decimal::from(threshold_percent),
        })
    }

    /// The threshold, in percent.
    pub fn threshold_percent(&self) -> Decimal {
        self.threshold
    }

    /// The schedule of the Project whose uid is `seed`.
    pub fn schedule(&self, seed: &str) -> Schedule {
        Schedule::with_seconds(self.interval, seed)
    }
}

/// Whether a check is due at `now`: the first slot after the last check (whatever its
/// outcome: a failed request was paid for too), else after `since` (the last apply).
pub fn due(
    schedule: &Schedule,
    last_check: Option<Timestamp>,
    since: Timestamp,
    now: Timestamp,
) -> bool {
    schedule.next_after(last_check.unwrap_or(since)) <= now
}

/// The days one check is about (UTC dates).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// The month's first day.
    pub month_start: Date,
    /// Today: the first day of the forecast; month-to-date spend ends before it (today's
    /// spend is not final, and Cost Explorer forecasts from today).
    pub today: Date,
    /// The next month's first day (exclusive end of the forecast).
    pub month_end: Date,
    /// The first day the Project existed this month.
    pub first_day: Date,
}

impl Window {
    /// The window of a check at `now` for a Project created at `created`.
    pub fn at(now: Timestamp, created: Timestamp) -> Self {
        let today = now.to_zoned(TimeZone::UTC).date();
        let created = created.to_zoned(TimeZone::UTC).date();
        let month_start = today.first_of_month();
        let month_end = today.last_of_month().tomorrow().unwrap_or(today);
        Self {
            month_start,
            today,
            month_end,
            first_day: created.clamp(month_start, today),
        }
    }

    /// `[start, end)` of the month-to-date request; `None` on the month's first day (there
    /// is no finished day yet, and Cost Explorer refuses an empty period).
    pub fn usage_period(&self) -> Option<(Date, Date)> {
        (self.month_start < self.today).then_some((self.month_start, self.today))
    }

    /// `[start, end)` of the forecast request: today to the end of the month.
    pub fn forecast_period(&self) -> (Date, Date) {
        (self.today, self.month_end)
    }

    /// What a monthly estimate predicts for the days the Project exists this month.
    pub fn expected(&self, monthly: Decimal) -> Decimal {
        let days = Decimal::from(self.month_start.days_in_month());
        let existed = days - Decimal::from(self.first_day.day()) + Decimal::ONE;
        monthly * existed / days
    }
}

/// What Cost Explorer said, USD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spend {
    /// Unblended cost from the month's first day to yesterday.
    pub month_to_date: Decimal,
    /// AWS's forecast from today to the month's end; `None` when it has none (too little
    /// history, e.g. resources a day old).
    pub forecast: Option<Decimal>,
}

/// How the spend compares with the estimate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// The estimate for the days the Project exists this month.
    pub expected: Decimal,
    /// Month to date plus forecast; `None` without a forecast.
    pub projected: Option<Decimal>,
    /// `projected / expected − 1`; `None` when there is nothing to compare.
    pub variance: Option<Decimal>,
    /// `|variance|` is beyond the threshold.
    pub exceeded: bool,
}

/// Compares `spend` with the `monthly` estimate over `window`. Without a forecast there is
/// no judgement: month-to-date alone says little on a month's first days, and a wrong alarm
/// teaches people to ignore the right ones.
pub fn judge(
    monthly: Decimal,
    window: &Window,
    spend: &Spend,
    threshold_percent: Decimal,
) -> Verdict {
    let expected = window.expected(monthly);
    let projected = spend.forecast.map(|f| spend.month_to_date + f);
    let variance = projected
        .filter(|_| expected > Decimal::ZERO)
        .map(|p| p / expected - Decimal::ONE);
    let exceeded = variance.is_some_and(|v| v.abs() * Decimal::ONE_HUNDRED > threshold_percent);
    Verdict {
        expected,
        projected,
        variance,
        exceeded,
    }
}

/// A variance as people read it: `+23.4%`, `-5.0%`.
pub fn percent(variance: Decimal) -> String {
    let p = (variance * Decimal::ONE_HUNDRED).round_dp(1);
    if p.is_sign_negative() && !p.is_zero() {
        format!("{p:.1}%")
    } else {
        format!("+{:.1}%", p.abs())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn dec(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn settings_refuse_short_intervals_and_a_zero_threshold() {
        assert!(Settings::new("24h", 10).is_ok());
        assert!(Settings::new("1m", 10).is_ok());
        assert_eq!(
            Settings::new("30s", 10),
            Err(SpendError::TooShort("30s".into()))
        );
        assert_eq!(
            Settings::new("daily", 10),
            Err(SpendError::Interval("daily".into()))
        );
        assert_eq!(
            Settings::new("6h", 0),
            Err(SpendError::Threshold("0".into()))
        );
    }

    #[test]
    fn the_window_is_the_calendar_month_in_utc() {
        let w = Window::at(ts("2026-12-03T23:30:00Z"), ts("2026-10-01T00:00:00Z"));
        assert_eq!(
            w.usage_period(),
            Some(("2026-12-01".parse().unwrap(), "2026-12-03".parse().unwrap()))
        );
        assert_eq!(
            w.forecast_period(),
            ("2026-12-03".parse().unwrap(), "2027-01-01".parse().unwrap())
        );
        assert_eq!(w.expected(dec("31")), dec("31"));
        // The first of the month has no finished day to ask about.
        let first = Window::at(ts("2026-12-01T05:00:00Z"), ts("2026-10-01T00:00:00Z"));
        assert_eq!(first.usage_period(), None);
        // The last day forecasts one day.
        let last = Window::at(ts("2027-02-28T12:00:00Z"), ts("2026-10-01T00:00:00Z"));
        assert_eq!(
            last.forecast_period(),
            ("2027-02-28".parse().unwrap(), "2027-03-01".parse().unwrap())
        );
    }

    #[test]
    fn a_project_created_mid_month_is_expected_to_cost_its_share() {
        // Created on the 17th of a 30-day month: 14 of 30 days.
        let w = Window::at(ts("2026-11-20T00:00:00Z"), ts("2026-11-17T08:00:00Z"));
        assert_eq!(w.expected(dec("30")), dec("14"));
        // A creation time after now (clock skew) counts from today.
        let w = Window::at(ts("2026-11-20T00:00:00Z"), ts("2026-11-25T00:00:00Z"));
        assert_eq!(w.first_day, w.today);
    }

    #[test]
    fn a_projection_beyond_the_threshold_is_exceeded_either_way() {
        let w = Window::at(ts("2026-12-10T00:00:00Z"), ts("2026-01-01T00:00:00Z"));
        let judge_at = |mtd, forecast| {
            judge(
                dec("100"),
                &w,
                &Spend {
                    month_to_date: mtd,
                    forecast,
                },
                dec("10"),
            )
        };
        let over = judge_at(dec("40"), Some(dec("80")));
        assert_eq!(over.projected, Some(dec("120")));
        assert_eq!(over.variance, Some(dec("0.2")));
        assert!(over.exceeded);
        let under = judge_at(dec("20"), Some(dec("60")));
        assert_eq!(under.variance, Some(dec("-0.2")));
        assert!(under.exceeded);
        // Exactly 10% is within.
        assert!(!judge_at(dec("30"), Some(dec("80"))).exceeded);
        // No forecast: no judgement.
        let unknown = judge_at(dec("500"), None);
        assert_eq!((unknown.variance, unknown.exceeded), (None, false));
        // Nothing expected (a free Project): nothing to compare with.
        let free = judge(
            dec("0"),
            &w,
            &Spend {
                month_to_date: dec("1"),
                forecast: Some(dec("1")),
            },
            dec("10"),
        );
        assert_eq!((free.variance, free.exceeded), (None, false));
    }

    #[test]
    fn variances_read_as_signed_percentages() {
        assert_eq!(percent(dec("0.2345")), "+23.4%");
        assert_eq!(percent(dec("-0.05")), "-5.0%");
        assert_eq!(percent(dec("0")), "+0.0%");
        assert_eq!(percent(dec("-0.00001")), "+0.0%");
    }

    #[test]
    fn the_first_check_waits_for_the_projects_slot_after_its_apply() {
        let settings = Settings::new("1h", 10).unwrap();
        let schedule = settings.schedule("uid-1");
        let applied = ts("2026-12-03T10:00:00Z");
        let next = schedule.next_after(applied);
        assert!(!due(&schedule, None, applied, applied));
        assert!(due(&schedule, None, applied, next));
        assert!(!due(&schedule, Some(next), applied, next));
    }

    proptest! {
        /// However late a check runs, the next one is in a later slot: at most one check
        /// (two paid requests) per Project per interval.
        #[test]
        fn never_two_checks_in_one_interval(
            interval in 60i64..200_000,
            at in 0i64..4_000_000_000,
            seed in "[a-z0-9-]{1,36}",
        ) {
            let schedule = Schedule::with_seconds(interval, &seed);
            let checked = Timestamp::from_second(at).unwrap();
            let next = schedule.next_after(checked);
            prop_assert!(next > checked);
            prop_assert!(next.as_second() - at <= interval);
            prop_assert!(!due(&schedule, Some(checked), checked, checked));
            let slot = |t: i64| (t - schedule.offset().as_secs()).div_euclid(interval);
            prop_assert_eq!(slot(next.as_second()), slot(at) + 1);
        }

        /// The threshold is symmetric and the verdict agrees with the variance it reports.
        #[test]
        fn exceeded_iff_the_variance_is_beyond_the_threshold(
            monthly in 1u32..100_000,
            mtd in 0u32..100_000,
            forecast in 0u32..100_000,
            threshold in 1u32..200,
            day in 1i8..=28,
        ) {
            let now = Timestamp::from_second(1_796_083_200 + i64::from(day - 1) * 86_400).unwrap();
            let w = Window::at(now, Timestamp::from_second(0).unwrap());
            let spend = Spend { month_to_date: Decimal::from(mtd), forecast: Some(Decimal::from(forecast)) };
            let v = judge(Decimal::from(monthly), &w, &spend, Decimal::from(threshold));
            let variance = v.variance.unwrap();
            prop_assert_eq!(v.exceeded, variance.abs() * Decimal::ONE_HUNDRED > Decimal::from(threshold));
            prop_assert_eq!(variance.is_sign_positive() && !variance.is_zero(), Decimal::from(mtd + forecast) > v.expected);
        }
    }
}

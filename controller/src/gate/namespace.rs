//! The namespace budget's ledger (pure): whether a Project's plan fits under its namespace's
//! cap given what the other Projects hold, and the ledger that results.
//!
//! The shell writes the ledger back with a resourceVersion precondition and retries on a
//! conflict with the fresh ledger, so a reservation is only ever computed from the ledger
//! it replaces: two plans judged against the same ledger cannot both be committed.

use rust_decimal::Decimal;

use crate::api::BudgetReservation;

/// The namespace's cap, as the gate sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NamespaceCheck {
    /// No NamespaceBudget in the namespace.
    None,
    /// The plan's reservation is committed to the ledger under the cap.
    Reserved {
        /// The namespace's use with it.
        used: Decimal,
        /// The cap.
        limit: Decimal,
    },
    /// The plan would take the namespace over the cap; nothing was reserved.
    OverCap {
        /// What the other Projects hold.
        others: Decimal,
        /// The plan's estimated monthly cost.
        requested: Decimal,
        /// The cap.
        limit: Decimal,
    },
    /// There is a cap but the plan could not be priced.
    Unpriced,
}

/// What a claim on the ledger comes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// Fits: write `ledger` (with the precondition) and the plan may go on.
    Fits {
        /// The ledger with the Project's reservation replaced.
        ledger: Vec<BudgetReservation>,
        /// The namespace's use before.
        before: Decimal,
        /// The namespace's use after.
        after: Decimal,
    },
    /// Does not fit; the ledger stays as it is.
    OverCap {
        /// What the other Projects hold.
        others: Decimal,
    },
}

/// A Project's plan asking for its share.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// The Project.
    pub project: &'a str,
    /// The plan.
    pub plan_id: &'a str,
    /// The plan's estimated monthly cost after apply.
    pub monthly: Decimal,
    /// What the Project's infrastructure already costs before the plan: never refused, it
    /// is spent whatever the gate says.
    pub running: Decimal,
}

/// The sum of the reservations (an unreadable amount counts as nothing: only the
/// controller writes them, from decimals).
pub fn used(ledger: &[BudgetReservation]) -> Decimal {
    ledger.iter().map(amount).sum()
}

fn amount(r: &BudgetReservation) -> Decimal {
    r.monthly.parse().unwrap_or_default()
}

/// Whether `request` fits under `limit` next to the other Projects' reservations. A plan
/// that does not raise the Project above what it already holds (or already runs) always
/// fits, so lowering the cap never blocks a saving.
pub fn claim(ledger: &[BudgetReservation], limit: Decimal, request: Request<'_>) -> Claim {
    let before = used(ledger);
    let held = ledger
        .iter()
        .filter(|r| r.project == request.project)
        .map(amount)
        .sum::<Decimal>();
    let others = before - held;
    let after = others + request.monthly;
    if after > limit && request.monthly > held.max(request.running) {
        return Claim::OverCap { others };
    }
    Claim::Fits {
        ledger: with_reservation(ledger, request, None),
        before,
        after,
    }
}

/// The ledger with `request` admitted whatever the cap, because a person approved the
/// BudgetIncrease `checkpoint`.
pub fn admit_approved(
    ledger: &[BudgetReservation],
    request: Request<'_>,
    checkpoint: &str,
) -> Vec<BudgetReservation> {
    with_reservation(ledger, request, Some(checkpoint))
}

/// The ledger without `project` (deleted).
pub fn release(ledger: &[BudgetReservation], project: &str) -> Vec<BudgetReservation> {
    ledger
        .iter()
        .filter(|r| r.project != project)
        .cloned()
        .collect()
}

fn with_reservation(
    ledger: &[BudgetReservation],
    request: Request<'_>,
    checkpoint: Option<&str>,
) -> Vec<BudgetReservation> {
    let mut out = release(ledger, request.project);
    out.push(BudgetReservation {
        project: request.project.to_owned(),
        plan_id: request.plan_id.to_owned(),
        monthly: request.monthly.round_dp(2).normalize().to_string(),
        approved_by_checkpoint: checkpoint.map(str::to_owned),
    });
    out.sort_by(|a, b| a.project.cmp(&b.project));
    out
}

/// Whether going from `before` to `after` crosses `percent` of `limit` upwards: the one
/// write that crosses it notifies, later ones above it do not.
pub fn crosses_warning(before: Decimal, after: Decimal, limit: Decimal, percent: u8) -> bool {
    let threshold = limit * Decimal::from(percent) / Decimal::from(100);
    before < threshold && after >= threshold
}

/// `used` as a whole percentage of `limit` (rounded down; 100 for any use of a zero cap).
pub fn percent_of(used: Decimal, limit: Decimal) -> i64 {
    if limit.is_zero() {
        return if used.is_zero() { 0 } else { 100 };
    }
    (used * Decimal::from(100) / limit)
        .floor()
        .try_into()
        .unwrap_or(i64::MAX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn request<'a>(project: &'a str, monthly: &str) -> Request<'a> {
        Request {
            project,
            plan_id: "plan-1",
            monthly: d(monthly),
            running: Decimal::ZERO,
        }
    }

    fn fits(claim: Claim) -> Vec<BudgetReservation> {
        match claim {
            Claim::Fits { ledger, .. } => ledger,
            other => panic!("expected a fit, got {other:?}"),
        }
    }

    #[test]
    fn a_plan_fits_up_to_the_cap_and_not_a_cent_more() {
        let ledger = fits(claim(&[], d("100"), request("a", "60")));
        assert_eq!(used(&ledger), d("60"));
        let at_cap = fits(claim(&ledger, d("100"), request("b", "40")));
        assert_eq!(used(&at_cap), d("100"));
        assert_eq!(
            claim(&ledger, d("100"), request("b", "40.01")),
            Claim::OverCap { others: d("60") }
        );
    }

    #[test]
    fn a_project_replaces_its_own_reservation() {
        let ledger = fits(claim(&[], d("100"), request("a", "60")));
        let ledger = fits(claim(&ledger, d("100"), request("a", "90")));
        assert_eq!(used(&ledger), d("90"));
        assert_eq!(ledger.len(), 1);
        assert_eq!(
            release(&ledger, "a"),
            Vec::<BudgetReservation>::new(),
            "a deleted Project releases its share"
        );
    }

    #[test]
    fn a_saving_or_what_already_runs_always_fits() {
        let over = admit_approved(&[], request("a", "150"), "cp");
        assert_eq!(over[0].approved_by_checkpoint.as_deref(), Some("cp"));
        // The cap was exceeded with approval; a smaller plan of the same Project is fine.
        fits(claim(&over, d("100"), request("a", "120")));
        // A Project applied before the budget existed: what it runs is not refused.
        let mut running = request("b", "30");
        running.running = d("30");
        fits(claim(&over, d("100"), running));
        // But growing it is.
        running.monthly = d("31");
        assert!(matches!(
            claim(&over, d("100"), running),
            Claim::OverCap { .. }
        ));
    }

    #[test]
    fn the_warning_fires_once_on_the_way_up() {
        assert!(crosses_warning(d("79"), d("80"), d("100"), 80));
        assert!(!crosses_warning(d("80"), d("95"), d("100"), 80));
        assert!(!crosses_warning(d("90"), d("50"), d("100"), 80));
        assert_eq!(percent_of(d("85.5"), d("100")), 85);
        assert_eq!(percent_of(d("1"), d("0")), 100);
    }

    proptest! {
        /// Any interleaving of claims, each computed from the ledger the previous commit
        /// left (what the resourceVersion precondition enforces), never commits more than
        /// the cap; and a claim computed from a stale ledger is exactly what a conflict
        /// throws away.
        #[test]
        fn committed_reservations_never_exceed_the_cap(
            limit in 0u32..500,
            claims in proptest::collection::vec((0usize..6, 0u32..300), 1..40),
        ) {
            let limit = Decimal::from(limit);
            let names = ["a", "b", "c", "d", "e", "f"];
            let mut ledger = Vec::new();
            let mut version = 0u32;
            for (who, monthly) in claims {
                let read_at = version;
                let req = request(names[who], &monthly.to_string());
                if let Claim::Fits { ledger: next, after, .. } = claim(&ledger, limit, req) {
                    // Optimistic concurrency: committed only against the version read.
                    prop_assert_eq!(read_at, version);
                    prop_assert!(after <= limit);
                    ledger = next;
                    version += 1;
                }
                prop_assert!(used(&ledger) <= limit);
            }
        }

        /// Two Projects judged against the same ledger: if both fit alone but not
        /// together, the second, re-judged against the first's commit, does not fit.
        #[test]
        fn two_concurrent_claims_cannot_both_slip_under(
            limit in 1u32..500,
            x in 0u32..500,
            y in 0u32..500,
        ) {
            let limit = Decimal::from(limit);
            let first = claim(&[], limit, request("a", &x.to_string()));
            let second_alone = claim(&[], limit, request("b", &y.to_string()));
            if let (Claim::Fits { ledger, .. }, Claim::Fits { .. }) = (first, second_alone) {
                // The second's write conflicts (the ledger moved); re-judged:
                let rejudged = claim(&ledger, limit, request("b", &y.to_string()));
                let together = Decimal::from(x) + Decimal::from(y);
                prop_assert_eq!(matches!(rejudged, Claim::Fits { .. }), together <= limit);
            }
        }
    }
}

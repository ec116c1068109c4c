//! The offline cost engine: prices a Terraform plan (`terraform show -json`) with an
//! embedded AWS on-demand price book, without network access or Kubernetes.
//!
//! ```no_run
//! # fn main() -> Result<(), tollgate::cost::CostError> {
//! let plan_json = std::fs::read_to_string("plan.json").unwrap_or_default();
//! let usage = tollgate::cost::Usage::from_yaml_str("resource_type_default_usage: {}")?;
//! let estimate = tollgate::cost::estimate_str(&plan_json, "us-east-1", &usage)?;
//! println!("{}", estimate.render_table());
//! # Ok(()) }
//! ```
//!
//! - Monthly = hourly × 730. Money is `rust_decimal::Decimal`, never floats.
//! - New cost from `after`, previous cost from `before` (or `prior_state`); delta =
//!   new − previous, per resource and in total.
//! - A resource is either priced (with components), free (on an explicit list), or
//!   `unpriced` with a reason: a missing price ("no price for <dimension> in <region>"),
//!   a price-determining attribute unknown at plan time ("… is unknown until apply"), or
//!   an unsupported type. Never a silent $0.
//! - Usage-based components (data processed, requests, …) take their quantities from a
//!   [`Usage`] file and are marked `usageBased`; without usage they are listed with
//!   quantity 0.
//!
//! The JSON format and the usage file are documented in `docs/cost.md`.

mod error;
mod estimate;
mod plan_view;
mod pricebook;
mod render;
mod resources;
mod usage;

#[cfg(test)]
mod tests;

pub use error::CostError;
pub use estimate::{Component, Estimate, FreeResource, HOURS_PER_MONTH, ResourceCost, Unpriced};
pub use pricebook::{
    HEADER as PRICE_BOOK_HEADER, PriceBook, PriceBookError, PriceRow, csv_line,
    load as load_price_book,
};
pub use usage::Usage;

use plan_view::{PlanView, RawPlan};
use resources::{Outcome, PricerInput, Side};

/// The embedded price book (parsed on first use).
pub fn price_book() -> Result<&'static PriceBook, CostError> {
    pricebook::embedded()
}

/// Prices a plan given as `terraform show -json` text, with the embedded price book.
pub fn estimate_str(plan_json: &str, region: &str, usage: &Usage) -> Result<Estimate, CostError> {
    estimate_with_book(plan_json, region, usage, pricebook::embedded()?)
}

/// Prices a plan already parsed into a `Value` (`terraform show -json` output).
///
/// `region` is used when the plan's aws provider configuration has no constant region
/// (`configuration.provider_config.aws.expressions.region`); pass `""` to require one.
pub fn estimate(
    plan: &serde_json::Value,
    region: &str,
    usage: &Usage,
) -> Result<Estimate, CostError> {
    estimate_raw(
        &RawPlan::from_value(plan)?,
        region,
        usage,
        pricebook::embedded()?,
    )
}

/// [`estimate_str`] against a given price book (tests, or a book loaded by the caller).
/// Reads only what pricing needs from the text, which costs less than parsing it whole.
pub fn estimate_with_book(
    plan_json: &str,
    region: &str,
    usage: &Usage,
    book: &PriceBook,
) -> Result<Estimate, CostError> {
    estimate_raw(&RawPlan::from_json(plan_json)?, region, usage, book)
}

fn estimate_raw(
    plan: &RawPlan<'_>,
    region: &str,
    usage: &Usage,
    book: &PriceBook,
) -> Result<Estimate, CostError> {
    let view = PlanView::new(plan)?;
    let default_region = match view.default_region() {
        Some(r) => r,
        None if !region.is_empty() => region,
        None => {
            if view.changes.iter().any(|c| {
                c.resource_type.starts_with("aws_") && !resources::is_free(c.resource_type)
            }) {
                return Err(CostError::NoRegion);
            }
            ""
        }
    };
    let mut priced = Vec::new();
    let mut free = Vec::new();
    let mut unpriced = Vec::new();
    for change in &view.changes {
        let action = change.action.as_str();
        let not_priced = |reason: String| Unpriced {
            address: change.address.to_string(),
            resource_type: change.resource_type.to_string(),
            action: action.to_string(),
            reason,
        };
        let free_entry = || FreeResource {
            address: change.address.to_string(),
            resource_type: change.resource_type.to_string(),
            action: action.to_string(),
        };
        if resources::is_free(change.resource_type) {
            free.push(free_entry());
            continue;
        }
        let region = match view.region_of(change) {
            Ok(region) => region.unwrap_or(default_region),
            Err(reason) => {
                unpriced.push(not_priced(reason));
                continue;
            }
        };
        let side = |side: Side| -> Option<Result<Outcome, String>> {
            let ctx = PricerInput {
                book,
                region,
                usage,
                plan: &view,
                change,
                side,
            };
            resources::price(&ctx)
        };
        let after = if change.action.has_after() {
            side(Side::After)
        } else {
            Some(Ok(Outcome::Free))
        };
        let before = if change.action.has_before() {
            side(Side::Before)
        } else {
            Some(Ok(Outcome::Free))
        };
        let (Some(after), Some(before)) = (after, before) else {
            unpriced.push(not_priced(resources::unsupported_reason(
                change.resource_type,
            )));
            continue;
        };
        match (after, before) {
            (Err(reason), _) => unpriced.push(not_priced(reason)),
            (Ok(_), Err(reason)) => unpriced.push(not_priced(format!("previous state: {reason}"))),
            (Ok(Outcome::Free), Ok(Outcome::Free)) => free.push(free_entry()),
            (Ok(a), Ok(b)) => priced.push(ResourceCost::new(
                change.address,
                change.resource_type,
                action,
                components_of(a),
                components_of(b),
            )),
        }
    }
    Ok(Estimate::new(
        default_region,
        book.version(),
        priced,
        free,
        unpriced,
    ))
}

fn components_of(outcome: Outcome) -> Vec<Component> {
    match outcome {
        Outcome::Free => Vec::new(),
        Outcome::Components(c) => c,
    }
}

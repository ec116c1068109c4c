//! Helpers for pricer unit tests: build a one-resource plan in `terraform show -json`
//! shape and price it against the embedded price book.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unwrap_in_result
)]

use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::{Outcome, PricerInput, Side, price};
use crate::cost::estimate::Component;
use crate::cost::plan_view::{PlanView, RawPlan};
use crate::cost::pricebook::embedded;
use crate::cost::usage::Usage;

/// A plan creating one resource `<type>.this` with the given after values, after_unknown
/// and configuration expressions.
pub(crate) fn plan(
    resource_type: &str,
    after: Value,
    after_unknown: Value,
    expressions: Value,
) -> Value {
    let address = format!("{resource_type}.this");
    json!({
        "format_version": "1.2",
        "terraform_version": "1.9.0",
        "resource_changes": [{
            "address": address,
            "mode": "managed",
            "type": resource_type,
            "name": "this",
            "provider_name": "registry.terraform.io/hashicorp/aws",
            "change": {"actions": ["create"], "before": null, "after": after, "after_unknown": after_unknown}
        }],
        "configuration": {"root_module": {"resources": [{
            "address": address, "mode": "managed", "type": resource_type, "name": "this",
            "provider_config_key": "aws", "expressions": expressions
        }]}}
    })
}

/// Prices the after side of the first resource in `plan`.
pub(crate) fn price_plan(plan: &Value, region: &str, usage: &Usage) -> Result<Outcome, String> {
    let raw = RawPlan::from_value(plan).unwrap();
    let view = PlanView::new(&raw).unwrap();
    let change = &view.changes[0];
    let ctx = PricerInput {
        book: embedded().unwrap(),
        region,
        usage,
        plan: &view,
        change,
        side: Side::After,
    };
    price(&ctx).expect("type is priced")
}

/// Prices `<type>.this` created with `after` (all known, all configured) in us-east-1.
pub(crate) fn price_after(resource_type: &str, after: Value) -> Result<Outcome, String> {
    let expressions = configured_expressions(&after);
    price_plan(
        &plan(resource_type, after, json!({}), expressions),
        "us-east-1",
        &Usage::none(),
    )
}

/// Like `price_after` with a region and usage.
pub(crate) fn price_after_in(
    resource_type: &str,
    after: Value,
    region: &str,
    usage: &Usage,
) -> Result<Outcome, String> {
    let expressions = configured_expressions(&after);
    price_plan(
        &plan(resource_type, after, json!({}), expressions),
        region,
        usage,
    )
}

/// Configuration expressions marking every after attribute as set.
pub(crate) fn configured_expressions(after: &Value) -> Value {
    let mut out = serde_json::Map::new();
    if let Some(obj) = after.as_object() {
        for (k, v) in obj {
            if v.is_null() {
                continue;
            }
            let expr = match v {
                Value::Array(items) if items.iter().all(Value::is_object) && !items.is_empty() => {
                    Value::Array(items.iter().map(configured_expressions).collect())
                }
                other => json!({"constant_value": other}),
            };
            out.insert(k.clone(), expr);
        }
    }
    Value::Object(out)
}

pub(crate) fn components(outcome: Result<Outcome, String>) -> Vec<Component> {
    match outcome {
        Ok(Outcome::Components(c)) => c,
        other => panic!("expected components, got {other:?}"),
    }
}

pub(crate) fn total(components: &[Component]) -> Decimal {
    components.iter().map(|c| c.monthly_cost).sum()
}

pub(crate) fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// The component with this name.
pub(crate) fn find<'c>(components: &'c [Component], name_part: &str) -> &'c Component {
    components
        .iter()
        .find(|c| c.name.contains(name_part))
        .unwrap_or_else(|| panic!("no component {name_part} in {components:?}"))
}

//! Turning `GetProducts` price list documents into cache rows: our own check of every
//! product, on-demand prices with a `beginRange` of 0, and conflicting prices left out.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde_json::Value;

use super::query::*;
use super::{CacheRow, Refreshed};

/// Collects rows, dropping keys that two products price differently.
#[derive(Debug, Default)]
pub struct Collector {
    rows: BTreeMap<(String, String, String), CacheRow>,
    conflicts: BTreeMap<(String, String, String), Vec<String>>,
    skipped: Vec<String>,
}

impl Collector {
    /// Adds the rows of one `PriceList` entry (a JSON document as a string).
    pub fn add(&mut self, query: &Query, price_list_item: &str, observed: &str) {
        match rows_from_product(query, price_list_item, observed) {
            Err(reason) => self.skipped.push(reason),
            Ok(rows) => {
                for row in rows {
                    let id = (row.service.clone(), row.region.clone(), row.key.clone());
                    if let Some(c) = self.conflicts.get_mut(&id) {
                        c.push(row.source);
                        continue;
                    }
                    match self.rows.get(&id) {
                        Some(existing) if existing.usd != row.usd => {
                            let existing = self.rows.remove(&id).map(|r| r.source);
                            self.conflicts
                                .insert(id, existing.into_iter().chain([row.source]).collect());
                        }
                        Some(_) => {}
                        None => {
                            self.rows.insert(id, row);
                        }
                    }
                }
            }
        }
    }

    /// The rows (sorted) and what was skipped.
    pub fn finish(self, observed: &str) -> Refreshed {
        let mut skipped = self.skipped;
        for ((service, region, key), sources) in self.conflicts {
            skipped.push(format!(
                "{service} {region} {key}: products disagree on the price ({}); left out",
                sources.join("; ")
            ));
        }
        Refreshed {
            rows: self.rows.into_values().collect(),
            skipped,
            requests: 0,
            observed: observed.to_string(),
        }
    }
}

pub(super) fn attr<'a>(attributes: &'a Value, name: &str) -> Option<&'a str> {
    attributes.get(name).and_then(Value::as_str)
}

/// The on-demand price dimensions of a product: (unit, USD), those with `beginRange` 0.
pub(super) fn on_demand_prices(doc: &Value) -> Vec<(String, Decimal)> {
    let mut out = Vec::new();
    let Some(terms) = doc.pointer("/terms/OnDemand").and_then(Value::as_object) else {
        return out;
    };
    for term in terms.values() {
        let Some(dims) = term.get("priceDimensions").and_then(Value::as_object) else {
            continue;
        };
        for dim in dims.values() {
            let begin = dim.get("beginRange").and_then(Value::as_str).unwrap_or("0");
            if begin.parse::<f64>().ok() != Some(0.0) {
                continue;
            }
            let unit = dim.get("unit").and_then(Value::as_str).unwrap_or("");
            let usd = dim
                .pointer("/pricePerUnit/USD")
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<Decimal>().ok());
            if let Some(usd) = usd {
                out.push((unit.to_string(), usd.normalize()));
            }
        }
    }
    out
}

/// EBS volume API name from the product (older products only carry `volumeType`).
pub(super) fn ebs_volume_api_name(attributes: &Value) -> Option<&'static str> {
    const API_NAMES: &[&str] = &["standard", "gp2", "gp3", "io1", "io2", "st1", "sc1"];
    if let Some(name) = attr(attributes, "volumeApiName") {
        return API_NAMES.iter().copied().find(|n| *n == name);
    }
    match attr(attributes, "volumeType")? {
        "Magnetic" => Some("standard"),
        "General Purpose" => Some("gp2"),
        "Provisioned IOPS" => {
            // io2 carries volumeApiName everywhere; before it, piops was io1.
            let usage = attr(attributes, "usagetype").unwrap_or("");
            usage.ends_with("VolumeUsage.piops").then_some("io1")
        }
        "Throughput Optimized HDD" => Some("st1"),
        "Cold HDD" => Some("sc1"),
        _ => None,
    }
}

/// Turns one `PriceList` entry into price book rows (none when the product is not one
/// the book uses; `Err` with a reason when it should have been but cannot be read).
pub fn rows_from_product(
    query: &Query,
    price_list_item: &str,
    observed: &str,
) -> Result<Vec<CacheRow>, String> {
    let doc: Value = serde_json::from_str(price_list_item)
        .map_err(|e| format!("{}: a PriceList entry is not JSON: {e}", query.service_code))?;
    let product = doc.get("product").unwrap_or(&Value::Null);
    let attributes = product.get("attributes").unwrap_or(&Value::Null);
    let sku = product
        .get("sku")
        .and_then(Value::as_str)
        .unwrap_or("unknown SKU");
    let service_code = doc
        .get("serviceCode")
        .and_then(Value::as_str)
        .or_else(|| attr(attributes, "servicecode"))
        .unwrap_or(query.service_code);
    if service_code != query.service_code {
        return Ok(Vec::new());
    }
    // Keep the query's own filters honest: a product that does not match is ignored.
    for (field, value) in &query.filters {
        if field == "productFamily" {
            if product.get("productFamily").and_then(Value::as_str) != Some(value) {
                return Ok(Vec::new());
            }
        } else if let Some(actual) = attr(attributes, field)
            && actual != value
        {
            return Ok(Vec::new());
        }
    }
    let usage = attr(attributes, "usagetype").unwrap_or("");
    let wanted: Vec<Wanted> = match query.kind {
        Kind::Ec2Instance => {
            let Some(instance_type) = attr(attributes, "instanceType") else {
                return Ok(Vec::new());
            };
            if !usage.contains("BoxUsage:") {
                return Ok(Vec::new());
            }
            vec![Wanted::hourly("ec2", format!("instance:{instance_type}"))]
        }
        Kind::EbsStorage => {
            if !usage.contains("EBS:VolumeUsage") {
                return Ok(Vec::new());
            }
            match ebs_volume_api_name(attributes) {
                Some(name) => vec![Wanted {
                    service: "ebs",
                    key: format!("{name}:storage"),
                    unit: "GB-month",
                    aws_units: GB_MONTH,
                    scale: Scale::One,
                }],
                None => return Ok(Vec::new()),
            }
        }
        Kind::RdsInstance => {
            let (Some(class), Some(engine)) = (
                attr(attributes, "instanceType"),
                attr(attributes, "databaseEngine"),
            ) else {
                return Ok(Vec::new());
            };
            let Some((tf_engine, _)) = RDS_ENGINES.iter().find(|(_, aws)| *aws == engine) else {
                return Ok(Vec::new());
            };
            if !usage.contains("InstanceUsage:") || usage.contains("Multi-AZ") {
                return Ok(Vec::new());
            }
            vec![Wanted::hourly(
                "rds",
                format!("instance:{tf_engine}:{class}"),
            )]
        }
        kind => {
            // Multi-AZ storage and IOPS cost twice Single-AZ; the engine doubles itself.
            if usage.contains("Multi-AZ") {
                return Ok(Vec::new());
            }
            let name = usage_without_region(usage, &query.region);
            USAGE_ROWS
                .iter()
                .filter(|row| row.kind == kind && row.usage == name)
                .map(|row| Wanted {
                    service: row.service,
                    key: row.key.to_string(),
                    unit: row.unit,
                    aws_units: row.aws_units,
                    scale: row.scale,
                })
                .collect()
        }
    };
    let prices = on_demand_prices(&doc);
    let mut rows = Vec::new();
    for w in wanted {
        let (service, key) = (w.service, &w.key);
        let matching: Vec<&Decimal> = prices
            .iter()
            .filter(|(u, _)| w.aws_units.contains(&u.as_str()))
            .map(|(_, usd)| usd)
            .collect();
        let aws_unit = w.aws_units.join(" or ");
        let usd = match matching.as_slice() {
            [usd] => w.scale.apply(**usd).normalize(),
            [] => {
                return Err(format!(
                    "{} {sku} ({service} {key} in {}): no on-demand USD price per {aws_unit}",
                    query.service_code, query.region
                ));
            }
            _ => {
                return Err(format!(
                    "{} {sku} ({service} {key} in {}): several on-demand prices per {aws_unit}; left out",
                    query.service_code, query.region
                ));
            }
        };
        if usd.is_zero() {
            return Err(format!(
                "{} {sku} ({service} {key} in {}): price is 0; left out",
                query.service_code, query.region
            ));
        }
        let scale = w.scale.describe();
        rows.push(CacheRow {
            service: service.to_string(),
            region: query.region.clone(),
            key: w.key,
            unit: w.unit.to_string(),
            usd,
            source: format!(
                "AWS Price List API GetProducts ({}, {sku}{scale})",
                query.service_code
            ),
            observed: observed.to_string(),
        });
    }
    Ok(rows)
}

/// A row a product becomes, before its price is read.
pub(super) struct Wanted {
    service: &'static str,
    key: String,
    unit: &'static str,
    aws_units: &'static [&'static str],
    scale: Scale,
}

impl Wanted {
    fn hourly(service: &'static str, key: String) -> Self {
        Self {
            service,
            key,
            unit: "hour",
            aws_units: HOURS,
            scale: Scale::One,
        }
    }
}

//! The usage file: assumed quantities for usage-based price components.
//!
//! ```yaml
//! # Defaults for every resource of a type.
//! resource_type_default_usage:
//!   aws_nat_gateway:
//!     monthly_data_processed_gb: 100
//! # Overrides for one resource, by its full plan address.
//! resource_usage:
//!   "module.net.aws_nat_gateway.this[0]":
//!     monthly_data_processed_gb: 250
//! ```
//!
//! A per-address value wins over a per-type default. Keys are checked against the keys
//! each pricer reads (see [`super::resources::usage_keys`]), so a typo is an error rather
//! than a silently ignored assumption. Values are plain non-negative numbers, read as
//! decimals (never floats).

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::Deserialize;

use super::error::CostError;
use super::resources::usage_keys;

/// Assumed usage quantities, by resource address and by resource type.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage {
    by_type: HashMap<String, HashMap<String, Decimal>>,
    by_address: HashMap<String, HashMap<String, Decimal>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UsageFile {
    /// Accepted for compatibility with other tools' usage files; not interpreted.
    #[serde(default)]
    #[allow(dead_code)]
    version: Option<String>,
    #[serde(default)]
    resource_type_default_usage: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(default)]
    resource_usage: BTreeMap<String, BTreeMap<String, String>>,
}

impl Usage {
    /// No usage at all: every usage-based component is listed with quantity 0.
    pub fn none() -> Usage {
        Usage::default()
    }

    /// Parses and validates a usage file (YAML).
    pub fn from_yaml_str(text: &str) -> Result<Usage, CostError> {
        let file: UsageFile =
            serde_saphyr::from_str(text).map_err(|e| CostError::UsageFile(e.to_string()))?;
        let mut usage = Usage::default();
        for (resource_type, values) in file.resource_type_default_usage {
            let parsed = parse_values(&resource_type, &resource_type, values)?;
            usage.by_type.insert(resource_type, parsed);
        }
        for (address, values) in file.resource_usage {
            let resource_type = type_of_address(&address).ok_or_else(|| {
                CostError::UsageFile(format!(
                    "`{address}` under resource_usage is not a resource address such as `aws_nat_gateway.main` or `module.net.aws_nat_gateway.this[0]`"
                ))
            })?;
            let parsed = parse_values(&address, resource_type, values)?;
            usage.by_address.insert(address, parsed);
        }
        Ok(usage)
    }

    /// Sets a per-type default (for programmatic use and tests).
    pub fn with_type_default(mut self, resource_type: &str, key: &str, value: Decimal) -> Usage {
        self.by_type
            .entry(resource_type.to_string())
            .or_default()
            .insert(key.to_string(), value);
        self
    }

    /// Sets a per-address value (for programmatic use and tests).
    pub fn with_resource(mut self, address: &str, key: &str, value: Decimal) -> Usage {
        self.by_address
            .entry(address.to_string())
            .or_default()
            .insert(key.to_string(), value);
        self
    }

    /// The assumed quantity of `key` for the resource, if the file gives one.
    pub fn get(&self, address: &str, resource_type: &str, key: &str) -> Option<Decimal> {
        if let Some(v) = self.by_address.get(address).and_then(|m| m.get(key)) {
            return Some(*v);
        }
        self.by_type
            .get(resource_type)
            .and_then(|m| m.get(key))
            .copied()
    }

    /// True when no quantities are set.
    pub fn is_empty(&self) -> bool {
        self.by_type.is_empty() && self.by_address.is_empty()
    }
}

fn parse_values(
    scope: &str,
    resource_type: &str,
    values: BTreeMap<String, String>,
) -> Result<HashMap<String, Decimal>, CostError> {
    let known = usage_keys(resource_type);
    let mut out = HashMap::with_capacity(values.len());
    for (key, raw) in values {
        if !known.contains(&key.as_str()) {
            return Err(CostError::UnknownUsageKey {
                scope: scope.to_string(),
                resource_type: resource_type.to_string(),
                key,
                known: if known.is_empty() {
                    "(none: this type has no usage-based components)".to_string()
                } else {
                    known.join(", ")
                },
            });
        }
        let value = parse_decimal(raw.trim()).filter(|d| !d.is_sign_negative());
        let Some(value) = value else {
            return Err(CostError::UsageValue {
                scope: scope.to_string(),
                key,
                value: raw,
            });
        };
        out.insert(key, value);
    }
    Ok(out)
}

fn parse_decimal(s: &str) -> Option<Decimal> {
    let cleaned = s.replace('_', "");
    Decimal::from_str(&cleaned)
        .ok()
        .or_else(|| Decimal::from_scientific(&cleaned).ok())
}

/// The resource type named by a plan address: the last `type.name` pair, ignoring
/// `module.x` prefixes, a `data.` prefix and `[index]` suffixes.
pub(crate) fn type_of_address(address: &str) -> Option<&str> {
    // Walk segments, skipping `module.<name>[idx]` pairs.
    let mut rest = address;
    loop {
        if let Some(after) = rest.strip_prefix("module.") {
            let end = segment_end(after)?;
            rest = after.get(end + 1..)?;
            continue;
        }
        if let Some(after) = rest.strip_prefix("data.") {
            rest = after;
        }
        let dot = rest.find('.')?;
        let ty = &rest[..dot];
        if ty.is_empty() || rest[dot + 1..].is_empty() {
            return None;
        }
        return Some(ty);
    }
}

/// Index of the `.` that ends a `name` or `name[...]` segment.
fn segment_end(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_str = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => in_str = !in_str,
            '[' if !in_str => depth += 1,
            ']' if !in_str => depth = depth.saturating_sub(1),
            '.' if !in_str && depth == 0 => return Some(i),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn parses_documented_shape() {
        let usage = Usage::from_yaml_str(
            "resource_type_default_usage:\n  aws_nat_gateway:\n    monthly_data_processed_gb: 100\nresource_usage:\n  \"module.net.aws_nat_gateway.this[0]\":\n    monthly_data_processed_gb: 250.5\n",
        )
        .unwrap();
        assert_eq!(
            usage.get(
                "aws_nat_gateway.x",
                "aws_nat_gateway",
                "monthly_data_processed_gb"
            ),
            Some(Decimal::from(100))
        );
        assert_eq!(
            usage.get(
                "module.net.aws_nat_gateway.this[0]",
                "aws_nat_gateway",
                "monthly_data_processed_gb"
            ),
            Some(Decimal::new(2505, 1))
        );
    }

    #[test]
    fn empty_file_is_no_usage() {
        assert!(Usage::from_yaml_str("").unwrap().is_empty());
    }

    #[test]
    fn rejects_typos_and_bad_values() {
        let err = Usage::from_yaml_str(
            "resource_type_default_usage:\n  aws_nat_gateway:\n    monthly_data_processed: 1\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("monthly_data_processed_gb"), "{err}");
        let err = Usage::from_yaml_str(
            "resource_type_default_usage:\n  aws_nat_gateway:\n    monthly_data_processed_gb: -1\n",
        )
        .unwrap_err();
        assert!(matches!(err, CostError::UsageValue { .. }), "{err}");
        let err = Usage::from_yaml_str("resource_usage:\n  nonsense:\n    x: 1\n").unwrap_err();
        assert!(matches!(err, CostError::UsageFile(_)), "{err}");
        let err = Usage::from_yaml_str("resources: {}\n").unwrap_err();
        assert!(matches!(err, CostError::UsageFile(_)), "{err}");
    }

    #[test]
    fn address_types() {
        assert_eq!(type_of_address("aws_instance.web"), Some("aws_instance"));
        assert_eq!(
            type_of_address("module.a.module.b[\"x.y\"].aws_lb.this[0]"),
            Some("aws_lb")
        );
        assert_eq!(type_of_address("data.aws_ami.ubuntu"), Some("aws_ami"));
        assert_eq!(type_of_address("module.a"), None);
        assert_eq!(type_of_address("aws_instance"), None);
    }
}

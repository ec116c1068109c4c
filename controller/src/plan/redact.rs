//! The redacted form of a plan: what may be logged, stored or shown to a person.

use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::model::{Change, Plan, ResourceChange, StateModule, StateValues};
use crate::redact::Redactor;

/// What replaces a sensitive value, as in Terraform's own plan rendering.
pub const SENSITIVE_PLACEHOLDER: &str = "(sensitive)";

/// Replaces the parts of `value` that `mask` marks sensitive with [`SENSITIVE_PLACEHOLDER`].
///
/// `mask` has Terraform's `before_sensitive`/`after_sensitive`/`sensitive_values` shape: `true`
/// marks the whole value, an object or array marks parts of it, anything else marks nothing.
#[must_use]
pub fn redact_sensitive(value: &Value, mask: &Value) -> Value {
    match (value, mask) {
        (_, Value::Bool(true)) => Value::String(SENSITIVE_PLACEHOLDER.to_owned()),
        (Value::Object(values), Value::Object(masks)) => Value::Object(
            values
                .iter()
                .map(|(k, v)| {
                    let redacted = match masks.get(k) {
                        Some(m) => redact_sensitive(v, m),
                        None => v.clone(),
                    };
                    (k.clone(), redacted)
                })
                .collect(),
        ),
        (Value::Array(values), Value::Array(masks)) => Value::Array(
            values
                .iter()
                .enumerate()
                .map(|(i, v)| match masks.get(i) {
                    Some(m) => redact_sensitive(v, m),
                    None => v.clone(),
                })
                .collect(),
        ),
        _ => value.clone(),
    }
}

/// Replaces every occurrence of a known secret in the strings (and object keys) of `value`.
fn redact_known_secrets(value: &mut Value, redactor: &Redactor) {
    match value {
        Value::String(s) => {
            let redacted = redactor.redact(s);
            if redacted != *s {
                *s = redacted;
            }
        }
        Value::Array(items) => {
            for item in items {
                redact_known_secrets(item, redactor);
            }
        }
        Value::Object(map) => {
            let old = std::mem::take(map);
            for (k, mut v) in old {
                redact_known_secrets(&mut v, redactor);
                map.insert(redactor.redact(&k), v);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// A plan with every sensitive value replaced: safe to log, store or show. Serialises as the
/// `terraform show -json` shape; `Display` prints it as pretty JSON.
#[derive(Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct RedactedPlan(Value);

impl RedactedPlan {
    /// The redacted plan as JSON.
    #[must_use]
    pub fn as_value(&self) -> &Value {
        &self.0
    }

    /// The redacted plan as JSON, owned.
    #[must_use]
    pub fn into_value(self) -> Value {
        self.0
    }
}

impl fmt::Display for RedactedPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match serde_json::to_string_pretty(&self.0) {
            Ok(s) => f.write_str(&s),
            Err(_) => Err(fmt::Error),
        }
    }
}

impl fmt::Debug for RedactedPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedactedPlan({})", self.0)
    }
}

fn redact_change(change: &Change) -> Value {
    let mut value = serde_json::to_value(change).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.insert(
            "before".into(),
            redact_sensitive(&change.before, &change.before_sensitive),
        );
        map.insert(
            "after".into(),
            redact_sensitive(&change.after, &change.after_sensitive),
        );
    }
    value
}

fn redact_resource_change(rc: &ResourceChange) -> Value {
    let mut value = serde_json::to_value(rc).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.insert("change".into(), redact_change(&rc.change));
    }
    value
}

fn redact_module(module: &StateModule) -> Value {
    let mut value = serde_json::to_value(module).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.insert(
            "resources".into(),
            Value::Array(
                module
                    .resources
                    .iter()
                    .map(|r| {
                        let mut rv = serde_json::to_value(r).unwrap_or(Value::Null);
                        if let Value::Object(rm) = &mut rv {
                            rm.insert(
                                "values".into(),
                                redact_sensitive(&r.values, &r.sensitive_values),
                            );
                        }
                        rv
                    })
                    .collect(),
            ),
        );
        map.insert(
            "child_modules".into(),
            Value::Array(module.child_modules.iter().map(redact_module).collect()),
        );
    }
    value
}

fn redact_state_values(values: &StateValues) -> Value {
    let outputs: Map<String, Value> = values
        .outputs
        .iter()
        .map(|(name, o)| {
            let mut ov = serde_json::to_value(o).unwrap_or(Value::Null);
            if o.sensitive
                && let Value::Object(om) = &mut ov
            {
                om.insert("value".into(), Value::String(SENSITIVE_PLACEHOLDER.into()));
            }
            (name.clone(), ov)
        })
        .collect();
    json!({ "outputs": outputs, "root_module": redact_module(&values.root_module) })
}

/// Replaces `default` of sensitive variables in a configuration module, recursively.
fn redact_config_module(module: &mut Value) {
    if let Some(vars) = module.get_mut("variables").and_then(Value::as_object_mut) {
        for var in vars.values_mut() {
            let sensitive = var.get("sensitive").and_then(Value::as_bool) == Some(true);
            if sensitive
                && let Some(obj) = var.as_object_mut()
                && obj.contains_key("default")
            {
                obj.insert(
                    "default".into(),
                    Value::String(SENSITIVE_PLACEHOLDER.into()),
                );
            }
        }
    }
    if let Some(calls) = module
        .get_mut("module_calls")
        .and_then(Value::as_object_mut)
    {
        for call in calls.values_mut() {
            if let Some(child) = call.get_mut("module") {
                redact_config_module(child);
            }
        }
    }
}

impl Plan {
    /// The plan with every value Terraform marks sensitive replaced by `"(sensitive)"`
    /// (resource changes and drift by their masks, sensitive outputs, sensitive root
    /// variables, sensitive variable defaults in the configuration, planned values and prior
    /// state), and then, if a [`Redactor`] is given, every known secret string replaced too.
    #[must_use]
    pub fn redacted(&self, known_secrets: Option<&Redactor>) -> RedactedPlan {
        let sensitive_vars = self.sensitive_variables();
        let variables: Map<String, Value> = self
            .variables
            .iter()
            .map(|(name, v)| {
                let value = if sensitive_vars.contains(name) {
                    Value::String(SENSITIVE_PLACEHOLDER.into())
                } else {
                    v.value.clone()
                };
                (name.clone(), json!({ "value": value }))
            })
            .collect();
        let output_changes: Map<String, Value> = self
            .output_changes
            .iter()
            .map(|(k, c)| (k.clone(), redact_change(c)))
            .collect();
        let configuration = self.configuration.clone().map(|mut c| {
            if let Some(root) = c.get_mut("root_module") {
                redact_config_module(root);
            }
            c
        });
        let prior_state = self.prior_state.as_ref().map(|s| {
            json!({
                "format_version": s.format_version,
                "terraform_version": s.terraform_version,
                "values": s.values.as_ref().map(redact_state_values),
            })
        });
        let mut value = json!({
            "format_version": self.format_version,
            "terraform_version": self.terraform_version,
            "variables": variables,
            "planned_values": self.planned_values.as_ref().map(redact_state_values),
            "resource_changes": self.resource_changes.iter().map(redact_resource_change).collect::<Vec<_>>(),
            "resource_drift": self.resource_drift.iter().map(redact_resource_change).collect::<Vec<_>>(),
            "output_changes": output_changes,
            "prior_state": prior_state,
            "configuration": configuration,
            "checks": self.checks,
            "relevant_attributes": self.relevant_attributes,
            "timestamp": self.timestamp,
            "applyable": self.applyable,
            "complete": self.complete,
            "errored": self.errored,
        });
        if let Some(redactor) = known_secrets {
            redact_known_secrets(&mut value, redactor);
        }
        RedactedPlan(value)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn whole_value_sensitive() {
        assert_eq!(
            redact_sensitive(&json!("hunter2"), &json!(true)),
            json!("(sensitive)")
        );
        assert_eq!(redact_sensitive(&json!("x"), &json!(false)), json!("x"));
    }

    #[test]
    fn nested_masks() {
        let value = json!({"a": "open", "b": {"c": "secret", "d": 1}, "l": ["x", "y"]});
        let mask = json!({"b": {"c": true}, "l": [false, true]});
        assert_eq!(
            redact_sensitive(&value, &mask),
            json!({"a": "open", "b": {"c": "(sensitive)", "d": 1}, "l": ["x", "(sensitive)"]})
        );
    }

    #[test]
    fn mask_shape_mismatch_keeps_value() {
        assert_eq!(
            redact_sensitive(&json!("v"), &json!({"x": true})),
            json!("v")
        );
    }

    #[test]
    fn known_secrets_in_keys_and_values() {
        let redactor = Redactor::new(["s3cr3t"]);
        let mut v = json!({"k-s3cr3t": ["a s3cr3t b", 1]});
        redact_known_secrets(&mut v, &redactor);
        let s = v.to_string();
        assert!(!s.contains("s3cr3t"), "{s}");
    }
}

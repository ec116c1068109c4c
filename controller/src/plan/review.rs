//! What a Technical Operator reads before deciding: every resource change of a plan with
//! each attribute that changes, `before → after`, sensitive values masked and values not
//! known until apply marked. Built from the parsed plan (pure), stored by the controller
//! next to the Checkpoint where a TO's RBAC can read it (the saved plan itself is never
//! readable by people), and printed by `tollgate checkpoint show`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::model::{Actions, Plan, ResourceChange};
use super::redact::redact_sensitive;
use crate::redact::Redactor;

/// What replaces a value Terraform will only know after applying.
pub const UNKNOWN_PLACEHOLDER: &str = "(known after apply)";

/// At most this many changes are listed; the rest are counted.
pub const MAX_CHANGES: usize = 500;
/// At most this many attributes per change are listed; the rest are counted.
pub const MAX_ATTRIBUTES: usize = 100;
/// A value longer than this (as JSON) is cut, with `…` at the end.
pub const MAX_VALUE_CHARS: usize = 300;
/// Attribute text (paths and values) in all: once spent, further changes are listed
/// without their attributes, so a review always fits a ConfigMap (1 MiB).
pub const MAX_TOTAL_CHARS: usize = 512 * 1024;

/// The reviewable form of a plan: bounded, redacted, serialisable.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PlanReview {
    /// Every change (up to [`MAX_CHANGES`]), in the plan's order.
    pub changes: Vec<ReviewedChange>,
    /// Changes not listed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub omitted_changes: usize,
}

/// One resource change.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ReviewedChange {
    /// Resource address, e.g. `module.app.aws_s3_bucket.this`.
    pub address: String,
    /// `create`, `update`, `replace`, `delete`, `forget`.
    pub action: String,
    /// Attributes that change (up to [`MAX_ATTRIBUTES`]), by path.
    pub attributes: Vec<AttributeChange>,
    /// Attributes not listed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub omitted_attributes: usize,
}

/// One attribute, as JSON text; `None`: absent (or null) on that side.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AttributeChange {
    /// Path, e.g. `tags.env` or `ingress[0].port`.
    pub path: String,
    /// Before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    /// After.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The word a person reads for an action.
fn action_word(actions: Actions) -> &'static str {
    match actions {
        Actions::Create => "create",
        Actions::Update => "update",
        Actions::Replace(_) | Actions::CreateThenForget => "replace",
        Actions::Delete => "delete",
        Actions::Forget => "forget",
        Actions::NoOp => "no-op",
        Actions::Read => "read",
        Actions::Open => "open",
    }
}

/// `value` with the parts `mask` marks (Terraform's `after_unknown` shape) replaced by
/// [`UNKNOWN_PLACEHOLDER`], including attributes absent from `value` (Terraform omits
/// unknown attributes from `after`).
fn mark_unknown(value: &Value, mask: &Value) -> Value {
    match mask {
        Value::Bool(true) => Value::String(UNKNOWN_PLACEHOLDER.to_owned()),
        Value::Object(masks) => {
            let mut out = value.as_object().cloned().unwrap_or_default();
            for (key, m) in masks {
                let inner = out.get(key).cloned().unwrap_or(Value::Null);
                let marked = mark_unknown(&inner, m);
                if marked != Value::Null {
                    out.insert(key.clone(), marked);
                }
            }
            if out.is_empty() && !value.is_object() {
                value.clone()
            } else {
                Value::Object(out)
            }
        }
        Value::Array(masks) => match value {
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        masks
                            .get(i)
                            .map_or_else(|| v.clone(), |m| mark_unknown(v, m))
                    })
                    .collect(),
            ),
            other => other.clone(),
        },
        _ => value.clone(),
    }
}

/// The leaves of `value` by path (`a.b`, `a[0]`); empty objects and arrays are leaves.
fn flatten(value: &Value, path: &str, out: &mut BTreeMap<String, Value>) {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                flatten(v, &join(k), out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for (i, v) in items.iter().enumerate() {
                flatten(v, &format!("{path}[{i}]"), out);
            }
        }
        Value::Null => {}
        leaf => {
            out.insert(path.to_owned(), leaf.clone());
        }
    }
}

/// A value as a person reads it: JSON text, secrets replaced, bounded.
fn render(value: &Value, known_secrets: Option<&Redactor>) -> String {
    let text = match value {
        Value::String(s) if s == UNKNOWN_PLACEHOLDER || s == super::SENSITIVE_PLACEHOLDER => {
            s.clone()
        }
        other => other.to_string(),
    };
    let text = known_secrets.map_or(text.clone(), |r| r.redact(&text));
    if text.chars().count() > MAX_VALUE_CHARS {
        let cut: String = text.chars().take(MAX_VALUE_CHARS).collect();
        format!("{cut}…")
    } else {
        text
    }
}

fn review_change(rc: &ResourceChange, known_secrets: Option<&Redactor>) -> ReviewedChange {
    let change = &rc.change;
    let before = redact_sensitive(&change.before, &change.before_sensitive);
    let after = mark_unknown(
        &redact_sensitive(&change.after, &change.after_sensitive),
        &change.after_unknown,
    );
    let (mut old, mut new) = (BTreeMap::new(), BTreeMap::new());
    flatten(&before, "", &mut old);
    flatten(&after, "", &mut new);
    let paths: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    let (mut raw_old, mut raw_new) = (BTreeMap::new(), BTreeMap::new());
    flatten(&change.before, "", &mut raw_old);
    flatten(&change.after, "", &mut raw_new);
    // A secret that changed reads `(sensitive)` on both sides: still say that it changed
    // (never how), by comparing the unmasked leaves under its path.
    let secret_changed = |p: &str| {
        let under = |raw: &BTreeMap<String, Value>| -> Vec<Value> {
            raw.iter()
                .filter(|(k, _)| {
                    k.as_str() == p
                        || k.strip_prefix(p)
                            .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
                })
                .map(|(_, v)| v.clone())
                .collect()
        };
        old.get(p) == Some(&Value::String(super::SENSITIVE_PLACEHOLDER.to_owned()))
            && under(&raw_old) != under(&raw_new)
    };
    let changed: Vec<AttributeChange> = paths
        .into_iter()
        .filter(|p| old.get(*p) != new.get(*p) || secret_changed(p))
        .map(|p| AttributeChange {
            path: known_secrets.map_or_else(|| p.clone(), |r| r.redact(p)),
            before: old.get(p).map(|v| render(v, known_secrets)),
            after: new.get(p).map(|v| render(v, known_secrets)),
        })
        .collect();
    let omitted = changed.len().saturating_sub(MAX_ATTRIBUTES);
    ReviewedChange {
        address: rc.address.clone(),
        action: action_word(change.actions).to_owned(),
        attributes: changed.into_iter().take(MAX_ATTRIBUTES).collect(),
        omitted_attributes: omitted,
    }
}

impl Plan {
    /// Every change of the plan for a person to review: attributes `before → after`,
    /// sensitive values `"(sensitive)"`, values known only after apply marked, and every
    /// known secret string (e.g. sensitive inputs) replaced too.
    #[must_use]
    pub fn review(&self, known_secrets: Option<&Redactor>) -> PlanReview {
        review_of(&self.resource_changes, known_secrets)
    }

    /// What changed outside Terraform (`resource_drift`, the whole content of a
    /// refresh-only plan), in the same reviewable, masked form as [`Plan::review`].
    #[must_use]
    pub fn drift_review(&self, known_secrets: Option<&Redactor>) -> PlanReview {
        review_of(&self.resource_drift, known_secrets)
    }
}

/// The bounded, masked review of `all`'s changes (no-ops and reads left out).
fn review_of(all: &[ResourceChange], known_secrets: Option<&Redactor>) -> PlanReview {
    let changes: Vec<&ResourceChange> = all
        .iter()
        .filter(|rc| rc.change.actions.is_change())
        .collect();
    let mut budget = MAX_TOTAL_CHARS;
    let reviewed = changes
        .iter()
        .take(MAX_CHANGES)
        .map(|rc| {
            let mut change = review_change(rc, known_secrets);
            let size: usize = change
                .attributes
                .iter()
                .map(|a| {
                    a.path.len()
                        + a.before.as_ref().map_or(0, String::len)
                        + a.after.as_ref().map_or(0, String::len)
                })
                .sum();
            if size > budget {
                change.omitted_attributes += change.attributes.len();
                change.attributes.clear();
                budget = 0;
            } else {
                budget -= size;
            }
            change
        })
        .collect();
    PlanReview {
        omitted_changes: changes.len().saturating_sub(MAX_CHANGES),
        changes: reviewed,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use serde_json::json;

    use super::*;

    fn plan(resource_changes: Value) -> Plan {
        Plan::from_json(
            &json!({"format_version": "1.2", "resource_changes": resource_changes}).to_string(),
        )
        .unwrap()
    }

    fn rc(address: &str, actions: Value, change: Value) -> Value {
        let mut c = json!({"actions": actions, "before": null, "after": null, "after_unknown": {}, "before_sensitive": {}, "after_sensitive": {}});
        for (k, v) in change.as_object().unwrap() {
            c[k] = v.clone();
        }
        json!({"address": address, "mode": "managed", "type": "t", "name": "n", "provider_name": "p", "change": c})
    }

    #[test]
    fn an_update_lists_only_what_changes_masked_and_unknown_marked() {
        let p = plan(json!([rc(
            "aws_db_instance.db",
            json!(["update"]),
            json!({
                "before": {"size": "small", "password": "hunter2", "key": "same", "tags": {"env": "dev", "team": "a"}, "arn": "arn:1"},
                "after": {"size": "large", "password": "hunter3", "key": "same", "tags": {"env": "prod", "team": "a"}},
                "after_unknown": {"arn": true},
                "before_sensitive": {"password": true, "key": true},
                "after_sensitive": {"password": true, "key": true}
            })
        )]));
        let review = p.review(None);
        let attrs: Vec<(String, Option<String>, Option<String>)> = review.changes[0]
            .attributes
            .iter()
            .map(|a| (a.path.clone(), a.before.clone(), a.after.clone()))
            .collect();
        assert_eq!(
            attrs,
            [
                (
                    "arn".into(),
                    Some("\"arn:1\"".into()),
                    Some("(known after apply)".into())
                ),
                // A secret that changes says so, never how; one that does not is not listed.
                (
                    "password".into(),
                    Some("(sensitive)".into()),
                    Some("(sensitive)".into())
                ),
                (
                    "size".into(),
                    Some("\"small\"".into()),
                    Some("\"large\"".into())
                ),
                (
                    "tags.env".into(),
                    Some("\"dev\"".into()),
                    Some("\"prod\"".into())
                ),
            ]
        );
        assert!(!format!("{review:?}").contains("hunter"));
        assert_eq!(review.changes[0].action, "update");
    }

    #[test]
    fn known_secrets_are_replaced_even_where_terraform_does_not_mark_them() {
        let p = plan(json!([rc(
            "terraform_data.this",
            json!(["create"]),
            json!({"after": {"input": {"token": "tg-secret-123", "list": [1, 2]}}})
        )]));
        let mut secrets = Redactor::default();
        secrets.add("tg-secret-123");
        let review = p.review(Some(&secrets));
        let text = serde_json::to_string(&review).unwrap();
        assert!(!text.contains("tg-secret-123"), "{text}");
        let paths: Vec<&str> = review.changes[0]
            .attributes
            .iter()
            .map(|a| a.path.as_str())
            .collect();
        assert_eq!(paths, ["input.list[0]", "input.list[1]", "input.token"]);
        assert!(
            review.changes[0]
                .attributes
                .iter()
                .all(|a| a.before.is_none())
        );
    }

    #[test]
    fn no_ops_are_left_out_and_everything_is_bounded() {
        let mut changes = vec![rc("a.noop", json!(["no-op"]), json!({}))];
        let big: serde_json::Map<String, Value> = (0..150)
            .map(|i| (format!("k{i:03}"), json!("x".repeat(1000))))
            .collect();
        changes.push(rc("a.big", json!(["delete"]), json!({"before": big})));
        for i in 0..MAX_CHANGES {
            changes.push(rc(
                &format!("a.r{i}"),
                json!(["create"]),
                json!({"after": {"v": i}}),
            ));
        }
        let review = plan(Value::Array(changes)).review(None);
        assert_eq!(review.changes.len(), MAX_CHANGES);
        assert_eq!(review.omitted_changes, 1);
        let big = &review.changes[0];
        assert_eq!(
            (big.address.as_str(), big.action.as_str()),
            ("a.big", "delete")
        );
        assert_eq!(big.attributes.len(), MAX_ATTRIBUTES);
        assert_eq!(big.omitted_attributes, 50);
        let value = big.attributes[0].before.as_ref().unwrap();
        assert_eq!(value.chars().count(), MAX_VALUE_CHARS + 1);
        assert!(value.ends_with('…'));
        assert!(serde_json::to_string(&review).unwrap().len() < 1024 * 1024);
    }

    #[test]
    fn a_huge_plan_spends_its_budget_then_lists_changes_without_attributes() {
        let wide: serde_json::Map<String, Value> = (0..MAX_ATTRIBUTES)
            .map(|i| (format!("k{i:03}"), json!("y".repeat(MAX_VALUE_CHARS))))
            .collect();
        let changes: Vec<Value> = (0..100)
            .map(|i| {
                rc(
                    &format!("a.w{i}"),
                    json!(["create"]),
                    json!({"after": wide}),
                )
            })
            .collect();
        let review = plan(Value::Array(changes)).review(None);
        assert_eq!(review.changes.len(), 100);
        let last = review.changes.last().unwrap();
        assert!(last.attributes.is_empty());
        assert_eq!(last.omitted_attributes, MAX_ATTRIBUTES);
        assert!(serde_json::to_string(&review).unwrap().len() < 1024 * 1024);
    }
}

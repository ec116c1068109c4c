//! The hash chain: each record's hash covers its content and its predecessor's hash, in a
//! canonical JSON form any language can reproduce (object keys sorted, no whitespace,
//! `hash` left out).

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::AuditError;
use super::record::AuditRecord;

/// `prevHash` of the first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The record as canonical JSON without its `hash` field: keys sorted at every level, no
/// whitespace, serde_json's number and string encoding.
pub fn canonical_json(record: &AuditRecord) -> Result<String, AuditError> {
    let mut value =
        serde_json::to_value(record).map_err(|e| AuditError::Serialise(e.to_string()))?;
    if let Value::Object(map) = &mut value {
        map.remove("hash");
    }
    let mut out = String::new();
    write_canonical(&value, &mut out)?;
    Ok(out)
}

/// sha256 (hex) of [`canonical_json`].
pub fn record_hash(record: &AuditRecord) -> Result<String, AuditError> {
    Ok(hex::encode(Sha256::digest(
        canonical_json(record)?.as_bytes(),
    )))
}

// Sorting explicitly instead of relying on serde_json's map order: another crate in the
// build enabling `preserve_order` would otherwise silently change every hash.
fn write_canonical(value: &Value, out: &mut String) -> Result<(), AuditError> {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&scalar(&Value::String(key.clone()))?);
                out.push(':');
                if let Some(v) = map.get(key) {
                    write_canonical(v, out)?;
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out)?;
            }
            out.push(']');
        }
        other => out.push_str(&scalar(other)?),
    }
    Ok(())
}

fn scalar(value: &Value) -> Result<String, AuditError> {
    serde_json::to_string(value).map_err(|e| AuditError::Serialise(e.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::audit::{AuditAction, AuditCost};

    #[test]
    fn canonical_form_is_sorted_compact_and_leaves_out_the_hash() {
        let record = AuditRecord {
            seq: 1,
            time: "2026-03-01T09:00:00Z".into(),
            actor: "alice".into(),
            action: AuditAction::CheckpointDecided,
            namespace: "team-a".into(),
            project: "web".into(),
            checkpoint: Some("web-plan-1".into()),
            decision: Some("Approved".into()),
            plan_digest: None,
            cost: Some(AuditCost {
                before: Some("1".into()),
                after: "2".into(),
                budget: None,
            }),
            reason: Some("ok \"quoted\"".into()),
            credential: None,
            prev_hash: GENESIS_HASH.into(),
            hash: "ignored".into(),
        };
        let canonical = canonical_json(&record).unwrap();
        insta::assert_snapshot!(canonical, @r#"{"action":"CheckpointDecided","actor":"alice","checkpoint":"web-plan-1","cost":{"after":"2","before":"1"},"decision":"Approved","namespace":"team-a","prevHash":"0000000000000000000000000000000000000000000000000000000000000000","project":"web","reason":"ok \"quoted\"","seq":1,"time":"2026-03-01T09:00:00Z"}"#);
        let hash = record_hash(&record).unwrap();
        assert_eq!(hash, hex::encode(Sha256::digest(canonical.as_bytes())));
    }
}

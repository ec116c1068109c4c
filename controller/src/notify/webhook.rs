//! The generic webhook: a stable JSON document per event, signed so a receiver can tell
//! it came from tollgate and was not replayed.
//!
//! Headers on every POST (see docs/notifications.md for a verification snippet):
//! - `X-Tollgate-Timestamp`: Unix seconds when this attempt was signed;
//! - `X-Tollgate-Signature`: `sha256=` + hex HMAC-SHA256(key, timestamp + "." + body);
//! - `X-Tollgate-Delivery`: the idempotency key (same on every retry of one delivery);
//! - `X-Tollgate-Event`: the event name.

use ring::hmac;
use serde::Serialize;

use super::event::{Deadlines, DecisionInfo, Notification};
use crate::api::{CheckpointCost, CheckpointType};

/// Header carrying the Unix timestamp that is part of the signed text.
pub const TIMESTAMP_HEADER: &str = "X-Tollgate-Timestamp";
/// Header carrying `sha256=<hex>`.
pub const SIGNATURE_HEADER: &str = "X-Tollgate-Signature";
/// Header carrying the idempotency key.
pub const DELIVERY_HEADER: &str = "X-Tollgate-Delivery";
/// Header carrying the event name.
pub const EVENT_HEADER: &str = "X-Tollgate-Event";

/// The webhook body. Field names are part of the public contract: add, never rename.
#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct WebhookPayload<'a> {
    /// Always `tollgate.dev/v1alpha1`.
    pub api_version: &'static str,
    /// Always `NotificationEvent`.
    pub kind: &'static str,
    /// The event name.
    pub event: &'a str,
    /// Which occurrence (the n-th reminder); 0 otherwise.
    pub occurrence: u32,
    /// Idempotency key: receivers drop a second delivery with the same id.
    pub id: &'a str,
    /// When the event happened (RFC 3339).
    pub time: String,
    /// The Project.
    pub project: ProjectInfo<'a>,
    /// The Checkpoint; absent for `Drifted`, which is about the Project alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<CheckpointInfo<'a>>,
    /// What changes.
    pub changes: Changes<'a>,
    /// Risk flags.
    pub risks: &'a [String],
    /// Why a person must decide.
    pub reasons: &'a [String],
    /// Cost before/after/delta and budget, USD decimal strings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<&'a CheckpointCost>,
    /// Deadlines.
    pub deadlines: &'a Deadlines,
    /// The decision, for `Decided`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<&'a DecisionInfo>,
    /// What failed, for `ApplyFailed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<&'a str>,
    /// The commands that decide, while the checkpoint waits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commands: Option<Commands>,
}

/// Project identity.
#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct ProjectInfo<'a> {
    /// Namespace.
    pub namespace: &'a str,
    /// Name.
    pub name: &'a str,
    /// Environment.
    pub environment: &'a str,
}

/// Checkpoint identity.
#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointInfo<'a> {
    /// Namespace (the Project's, except for a Destroy checkpoint of a namespace being
    /// deleted).
    pub namespace: &'a str,
    /// Name.
    pub name: &'a str,
    /// uid.
    pub uid: &'a str,
    /// Type.
    #[serde(rename = "type")]
    pub checkpoint_type: CheckpointType,
    /// sha256 of the saved plan.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan_digest: Option<&'a str>,
}

/// Counts and addresses.
#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Changes<'a> {
    /// One-line summary.
    pub summary: &'a str,
    /// To add.
    pub add: i64,
    /// To change.
    pub change: i64,
    /// To destroy.
    pub destroy: i64,
    /// Every changed address the checkpoint lists (at most 50).
    pub addresses: &'a [String],
}

/// Approve/reject command lines.
#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Commands {
    /// Approves.
    pub approve: String,
    /// Rejects.
    pub reject: String,
}

/// The webhook body for `n`, delivered under idempotency key `id`.
pub fn render_webhook<'a>(n: &'a Notification, id: &'a str) -> WebhookPayload<'a> {
    WebhookPayload {
        api_version: "tollgate.dev/v1alpha1",
        kind: "NotificationEvent",
        event: n.event.as_str(),
        occurrence: n.occurrence,
        id,
        time: super::event::rfc3339(n.at),
        project: ProjectInfo {
            namespace: &n.project_namespace,
            name: &n.project,
            environment: &n.environment,
        },
        checkpoint: (!n.checkpoint.is_empty()).then(|| CheckpointInfo {
            namespace: &n.namespace,
            name: &n.checkpoint,
            uid: &n.checkpoint_uid,
            checkpoint_type: n.checkpoint_type,
            plan_digest: n.plan_digest.as_deref(),
        }),
        changes: Changes {
            summary: &n.summary,
            add: n.add,
            change: n.change,
            destroy: n.destroy,
            addresses: &n.changes,
        },
        risks: &n.risks,
        reasons: &n.reasons,
        cost: n.cost.as_ref(),
        deadlines: &n.deadlines,
        decision: n.decision.as_ref(),
        detail: n.detail.as_deref(),
        commands: n.event.awaits_decision().then(|| Commands {
            approve: n.approve_command(),
            reject: n.reject_command(),
        }),
    }
}

/// `sha256=<hex HMAC-SHA256(key, timestamp + "." + body)>`: the value of
/// `X-Tollgate-Signature`. The timestamp is signed so a captured request cannot be
/// replayed later with a fresh timestamp header.
pub fn signature(key: &[u8], timestamp: &str, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(timestamp.as_bytes());
    ctx.update(b".");
    ctx.update(body);
    format!("sha256={}", hex::encode(ctx.sign().as_ref()))
}

/// Checks a received signature in constant time, as a Rust receiver would.
pub fn verify_signature(key: &[u8], timestamp: &str, body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut signed = Vec::with_capacity(timestamp.len() + 1 + body.len());
    signed.extend_from_slice(timestamp.as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(body);
    hmac::verify(&key, &signed, &sig).is_ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::notify::EventKind;
    use crate::notify::event::tests::sample;

    #[test]
    fn golden_webhook_payloads() {
        for event in [
            EventKind::Opened,
            EventKind::Decided,
            EventKind::ApplyFailed,
        ] {
            let n = sample(event);
            let body =
                serde_json::to_string_pretty(&render_webhook(&n, "0b6c3d1e-uid/x/hook")).unwrap();
            insta::assert_snapshot!(format!("webhook_{event}"), body);
        }
    }

    #[test]
    fn signature_is_hmac_over_timestamp_dot_body() {
        // Known answer computed independently with:
        // printf '1700000000.{}' | openssl dgst -sha256 -hmac key
        let sig = signature(b"key", "1700000000", b"{}");
        assert_eq!(
            sig,
            "sha256=9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae"
        );
        assert!(verify_signature(b"key", "1700000000", b"{}", &sig));
        assert!(!verify_signature(b"key", "1700000001", b"{}", &sig));
        assert!(!verify_signature(b"other", "1700000000", b"{}", &sig));
        assert!(!verify_signature(b"key", "1700000000", b"{} ", &sig));
        assert!(!verify_signature(b"key", "1700000000", b"{}", "md5=00"));
    }
}

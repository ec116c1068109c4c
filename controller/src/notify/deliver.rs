//! Sending a notification to a channel: bounded retries with capped exponential backoff,
//! and a delivery record with an idempotency key that the caller stores in the
//! Checkpoint's status so a restarted controller never sends the same thing twice.

use std::time::Duration;

use futures::future::join_all;
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::channel::{Channel, Target};
use super::http::HttpClient;
use super::webhook::{
    DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, render_webhook, signature,
};
use super::{EventKind, Notification, NotifyError, email, slack};
use crate::api::{DeliveryOutcome, NotificationRecord};

/// At most this many records are kept in `status.notifications` (the schema's limit);
/// the oldest go first.
pub const MAX_RECORDS: usize = 100;

/// The schema's limit on a record's message.
const MAX_MESSAGE_CHARS: usize = 1024;

/// How hard a delivery tries. The worst case for one channel is
/// `max_attempts × attempt_timeout` plus the backoffs; the caller runs deliveries off the
/// reconcile path so a slow channel never holds reconciliation.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in total (at least 1).
    pub max_attempts: u32,
    /// Wait after the first failure; doubled after each further one.
    pub initial_backoff: Duration,
    /// The wait never exceeds this.
    pub max_backoff: Duration,
    /// One attempt (connect, send, answer) gives up after this.
    pub attempt_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            attempt_timeout: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1` (attempts count from 1).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// Why one attempt failed, and whether another could succeed.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct AttemptError {
    pub(super) retryable: bool,
    pub(super) message: String,
}

impl AttemptError {
    pub(super) fn retryable(message: impl Into<String>) -> Self {
        AttemptError {
            retryable: true,
            message: message.into(),
        }
    }

    pub(super) fn permanent(message: impl Into<String>) -> Self {
        AttemptError {
            retryable: false,
            message: message.into(),
        }
    }
}

/// How a delivery ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The receiver accepted it.
    Delivered,
    /// Every attempt failed (or one failed in a way retrying cannot fix).
    Failed {
        /// What went wrong, with every secret of the channel removed.
        error: String,
    },
}

/// One delivery of one notification to one channel: what the caller records.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    /// Idempotency key, see [`delivery_key`].
    pub key: String,
    /// Channel name.
    pub channel: String,
    /// The event.
    pub event: EventKind,
    /// Attempts made.
    pub attempts: u32,
    /// How it ended.
    pub outcome: Outcome,
    /// When it ended.
    pub at: Timestamp,
}

impl Delivery {
    /// The record for the Checkpoint's `status.notifications`.
    pub fn record(&self) -> NotificationRecord {
        let (outcome, message) = match &self.outcome {
            Outcome::Delivered => (DeliveryOutcome::Delivered, None),
            Outcome::Failed { error } => (
                DeliveryOutcome::Failed,
                Some(error.chars().take(MAX_MESSAGE_CHARS).collect()),
            ),
        };
        NotificationRecord {
            channel: self.channel.clone(),
            event: self.event.as_str().to_owned(),
            at: Time(self.at),
            key: Some(self.key.clone()),
            outcome: Some(outcome),
            attempts: Some(i32::try_from(self.attempts).unwrap_or(i32::MAX)),
            message,
        }
    }
}

/// `<checkpoint uid>/<event>[#<occurrence>]/<channel>`: the same notification to the
/// same channel always has the same key; a reminder's occurrence makes each one distinct.
pub fn delivery_key(n: &Notification, channel: &str) -> String {
    let mut key = format!("{}/{}", n.checkpoint_uid, n.event);
    if n.occurrence > 0 {
        key.push_str(&format!("#{}", n.occurrence));
    }
    key.push('/');
    key.push_str(channel);
    key
}

/// The recorded delivery of `key`, if any (one per key, see [`record_delivery`]).
fn record_of<'a>(records: &'a [NotificationRecord], key: &str) -> Option<&'a NotificationRecord> {
    records.iter().find(|r| r.key.as_deref() == Some(key))
}

/// Whether `key` was already delivered according to the recorded deliveries.
pub fn already_delivered(records: &[NotificationRecord], key: &str) -> bool {
    record_of(records, key).is_some_and(|r| r.outcome != Some(DeliveryOutcome::Failed))
}

/// Attempts recorded for `key` so far, over every round (0 when never tried).
pub fn recorded_attempts(records: &[NotificationRecord], key: &str) -> i32 {
    record_of(records, key)
        .and_then(|r| r.attempts)
        .unwrap_or(0)
}

/// Adds the delivery's record, or updates the one of its key, adding its attempts to
/// those recorded before; keeps at most [`MAX_RECORDS`].
pub fn record_delivery(records: &mut Vec<NotificationRecord>, delivery: &Delivery) {
    let before = recorded_attempts(records, &delivery.key);
    let mut record = delivery.record();
    record.attempts = Some(before.saturating_add(record.attempts.unwrap_or(0)));
    records.retain(|r| r.key.as_deref() != Some(delivery.key.as_str()));
    records.push(record);
    if records.len() > MAX_RECORDS {
        let excess = records.len() - MAX_RECORDS;
        records.drain(..excess);
    }
}

/// Sends notifications. Cheap to clone; share one per controller.
#[derive(Clone, Debug)]
pub struct Notifier {
    http: HttpClient,
    retry: RetryPolicy,
}

impl Notifier {
    /// A notifier with the system's TLS trust roots.
    pub fn new(retry: RetryPolicy) -> Result<Self, NotifyError> {
        Ok(Notifier {
            http: HttpClient::new()?,
            retry,
        })
    }

    /// Delivers `n` to every channel whose key is not yet in `records`, concurrently.
    /// Returns one delivery per channel attempted; record each with [`record_delivery`].
    pub async fn deliver_all(
        &self,
        channels: &[Channel],
        n: &Notification,
        records: &[NotificationRecord],
    ) -> Vec<Delivery> {
        let pending = channels
            .iter()
            .filter(|c| !already_delivered(records, &delivery_key(n, &c.name)));
        join_all(pending.map(|c| self.deliver(c, n))).await
    }

    /// Delivers `n` to `channel`, retrying transient failures with backoff.
    pub async fn deliver(&self, channel: &Channel, n: &Notification) -> Delivery {
        let key = delivery_key(n, &channel.name);
        let mut attempts = 0;
        let result = loop {
            attempts += 1;
            match self.attempt(channel, n, &key).await {
                Ok(()) => break Ok(()),
                Err(e) if e.retryable && attempts < self.retry.max_attempts.max(1) => {
                    tokio::time::sleep(self.retry.backoff(attempts)).await;
                }
                Err(e) => break Err(e),
            }
        };
        let outcome = match result {
            Ok(()) => Outcome::Delivered,
            Err(e) => Outcome::Failed {
                error: redact(&e.message, &channel.secrets()),
            },
        };
        match &outcome {
            Outcome::Delivered => tracing::info!(
                channel = %channel.name, event = %n.event, key = %key, attempts,
                "notification delivered"
            ),
            Outcome::Failed { error } => tracing::warn!(
                channel = %channel.name, event = %n.event, key = %key, attempts, error = %error,
                "notification not delivered"
            ),
        }
        Delivery {
            key,
            channel: channel.name.clone(),
            event: n.event,
            attempts,
            outcome,
            at: Timestamp::now(),
        }
    }

    async fn attempt(
        &self,
        channel: &Channel,
        n: &Notification,
        key: &str,
    ) -> Result<(), AttemptError> {
        let timeout = self.retry.attempt_timeout;
        match &channel.target {
            Target::Slack { url } => {
                let body = slack::render_slack(n).to_string().into_bytes();
                self.http
                    .post_json(url_text(url.expose())?, &[], body, timeout)
                    .await
            }
            Target::Webhook { url, signing_key } => {
                let body = serde_json::to_vec(&render_webhook(n, key))
                    .map_err(|e| AttemptError::permanent(format!("cannot encode: {e}")))?;
                // Signed per attempt: a retry carries a fresh timestamp a receiver accepts.
                let timestamp = Timestamp::now().as_second().to_string();
                let headers = [
                    (
                        SIGNATURE_HEADER,
                        signature(signing_key.expose(), &timestamp, &body),
                    ),
                    (TIMESTAMP_HEADER, timestamp),
                    (DELIVERY_HEADER, key.to_owned()),
                    (EVENT_HEADER, n.event.as_str().to_owned()),
                ];
                self.http
                    .post_json(url_text(url.expose())?, &headers, body, timeout)
                    .await
            }
            Target::Email { to, smtp } => {
                email::send(smtp, to, &email::render_email(n), timeout).await
            }
        }
    }
}

fn url_text(bytes: &[u8]) -> Result<&str, AttemptError> {
    std::str::from_utf8(bytes)
        .map(str::trim)
        .map_err(|_| AttemptError::permanent("the URL in the Secret is not UTF-8 text"))
}

/// Removes every secret from `text`: the value, its trimmed form, and for a URL its path
/// and each longer path or query part (a receiver's error page often echoes the path,
/// which for Slack and many webhooks is the token).
fn redact(text: &str, secrets: &[&[u8]]) -> String {
    let mut out = text.to_owned();
    for secret in secrets {
        let secret = String::from_utf8_lossy(secret);
        let trimmed = secret.trim();
        let mut forms = vec![secret.as_ref(), trimmed];
        if let Some((_, rest)) = trimmed.split_once("://")
            && let Some(slash) = rest.find('/')
        {
            let path = &rest[slash..];
            forms.push(path);
            forms.extend(
                path.split(['/', '?', '&', '='])
                    .filter(|part| part.len() >= 8),
            );
        }
        // Longest first, so a shorter form never leaves part of a longer one behind.
        forms.sort_by_key(|form| std::cmp::Reverse(form.len()));
        for form in forms {
            // Very short values would blank out ordinary words; they are not worth
            // hiding from an error either (and are not used as secrets in practice).
            if form.len() >= 4 {
                out = out.replace(form, "[redacted]");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::notify::event::tests::sample;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
            attempt_timeout: Duration::from_secs(1),
        };
        let waits: Vec<_> = (1..=5).map(|a| policy.backoff(a).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 500, 500]);
        assert_eq!(policy.backoff(u32::MAX), Duration::from_millis(500));
    }

    #[test]
    fn keys_name_the_checkpoint_event_occurrence_and_channel() {
        let n = sample(EventKind::Reminder).with_occurrence(2);
        assert_eq!(delivery_key(&n, "ops"), "0b6c3d1e-uid/Reminder#2/ops");
        assert_eq!(
            delivery_key(&sample(EventKind::Opened), "ops"),
            "0b6c3d1e-uid/Opened/ops"
        );
    }

    #[test]
    fn records_replace_failures_and_stay_bounded() {
        let failed = Delivery {
            key: "k".into(),
            channel: "ops".into(),
            event: EventKind::Opened,
            attempts: 3,
            outcome: Outcome::Failed {
                error: "503".into(),
            },
            at: Timestamp::UNIX_EPOCH,
        };
        let mut records = Vec::new();
        record_delivery(&mut records, &failed);
        assert!(
            !already_delivered(&records, "k"),
            "a failure may be retried"
        );
        let delivered = Delivery {
            outcome: Outcome::Delivered,
            ..failed.clone()
        };
        record_delivery(&mut records, &delivered);
        assert_eq!(records.len(), 1);
        assert!(already_delivered(&records, "k"));
        assert_eq!(
            recorded_attempts(&records, "k"),
            6,
            "attempts add up over rounds"
        );
        assert_eq!(recorded_attempts(&records, "other"), 0);
        for i in 0..150 {
            record_delivery(
                &mut records,
                &Delivery {
                    key: format!("k{i}"),
                    ..delivered.clone()
                },
            );
        }
        assert_eq!(records.len(), MAX_RECORDS);
        assert_eq!(records[0].key.as_deref(), Some("k50"));
    }

    #[test]
    fn redaction_removes_secrets_and_their_trimmed_form() {
        let text = redact(
            "failed for https://hooks.example/T0KEN and pass s3cret",
            &[b"https://hooks.example/T0KEN\n", b"s3cret"],
        );
        assert_eq!(text, "failed for [redacted] and pass [redacted]");
        let echoed = redact(
            "404: no such hook /services/T0KEN123 (T0KEN123)",
            &[b"https://hooks.example/services/T0KEN123"],
        );
        assert_eq!(echoed, "404: no such hook [redacted] ([redacted])");
    }
}

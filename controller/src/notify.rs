//! Notifications: telling the right people that a checkpoint opened, is overdue, expired,
//! was decided, applied or failed, with what they need to act from the message alone.
//!
//! The reconciler builds a [`Notification`] from a Checkpoint (pure), asks [`route`]
//! which channels hear about it (the Project's channels plus the namespace's
//! `tollgate-notifications` ConfigMap), reads their secrets with [`resolve`], and sends
//! with [`Notifier::deliver_all`], which skips anything already recorded as delivered and
//! returns [`Delivery`] records to store in `status.notifications` with
//! [`record_delivery`]. Secret values stay inside [`SecretValue`] and are scrubbed from
//! every error text. Formats, the ConfigMap and the webhook signature:
//! docs/notifications.md.

mod channel;
mod deliver;
mod email;
mod event;
mod http;
mod routes;
mod secrets;
mod slack;
mod webhook;

pub use channel::{
    Channel, ChannelSpec, SecretRef, SecretValue, SmtpSecurity, SmtpSettings, SmtpSpec, Target,
    TargetSpec, UrlSource,
};
pub use deliver::{
    Delivery, MAX_RECORDS, Notifier, Outcome, RetryPolicy, already_delivered, delivery_key,
    record_delivery, recorded_attempts,
};
pub use email::{EmailMessage, render_email};
pub use event::{
    BudgetWarning, Deadlines, DecisionInfo, DriftSubject, EventKind, MAX_LISTED_CHANGES,
    Notification,
};
pub use routes::{
    CONFIG_MAP_KEY, CONFIG_MAP_NAME, ChannelEntry, EmailEntry, NotifyConfig, SlackEntry, URL_KEY,
    WebhookEntry, route,
};
pub use secrets::{SecretSource, resolve};
pub use slack::render_slack;
pub use webhook::{
    DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookPayload,
    render_webhook, signature, verify_signature,
};

/// What configuring or preparing notifications can fail with. Delivery failures are not
/// errors: they are [`Outcome::Failed`] in the [`Delivery`] record.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NotifyError {
    /// The namespace's ConfigMap or a Project channel is wrong.
    #[error("notification routes: {reason}")]
    Config {
        /// What is wrong and where.
        reason: String,
    },
    /// An email channel needs a relay and there is none.
    #[error(
        "channel {channel:?} sends email but no SMTP relay is configured: add an smtp section to ConfigMap tollgate-notifications"
    )]
    NoSmtp {
        /// The channel.
        channel: String,
    },
    /// A webhook channel has no signing key.
    #[error(
        "webhook channel {channel:?} has no signing key: set webhookSigningKeySecretRef in ConfigMap tollgate-notifications"
    )]
    NoSigningKey {
        /// The channel.
        channel: String,
    },
    /// An escalation list names a channel that does not exist.
    #[error(
        "escalation names channel {name:?}, which is neither a Project channel nor in ConfigMap tollgate-notifications"
    )]
    UnknownChannel {
        /// The name.
        name: String,
    },
    /// A Secret (or one of its keys) a channel needs is missing.
    #[error("channel {channel:?} needs Secret {name}{}: create it in the Project's namespace", key.as_ref().map(|k| format!(" with key {k}")).unwrap_or_default())]
    SecretMissing {
        /// The channel.
        channel: String,
        /// The Secret.
        name: String,
        /// The key, when the Secret exists without it.
        key: Option<String>,
    },
    /// Reading a Secret failed (RBAC, API server).
    #[error(
        "cannot read Secret {name}: {message}; the controller needs get on secrets in this namespace"
    )]
    SecretRead {
        /// The Secret.
        name: String,
        /// The API's answer.
        message: String,
    },
    /// The system's TLS trust roots could not be loaded.
    #[error(
        "cannot load the system's TLS trust roots for webhooks: {message}; install ca-certificates"
    )]
    TrustRoots {
        /// Why.
        message: String,
    },
}

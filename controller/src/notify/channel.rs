//! Channel descriptions: as configured (secrets named by reference) and as resolved
//! (secret values in hand, ready to send). Secret values live only in [`SecretValue`],
//! which never prints itself.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::EventKind;

/// A secret value (URL, HMAC key, password). `Debug` prints `[redacted]` and there is no
/// `Display`, so it cannot end up in a log line or an error by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(Vec<u8>);

impl SecretValue {
    /// Wraps bytes read from a Secret.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        SecretValue(bytes.into())
    }

    /// The raw bytes, for the one place that uses them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// As text, trimmed: `kubectl create secret --from-file` often keeps a newline.
    pub fn expose_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok().map(str::trim)
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A key of a Secret in the channel's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretRef {
    /// The Secret's name.
    pub name: String,
    /// The key within the Secret.
    pub key: String,
}

/// How the SMTP connection is protected.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS; refuses to continue without it (port 587).
    #[default]
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a relay on the same host or in tests.
    None,
}

impl SmtpSecurity {
    /// The usual port for this kind of connection.
    pub fn default_port(self) -> u16 {
        match self {
            SmtpSecurity::StartTls => 587,
            SmtpSecurity::Tls => 465,
            SmtpSecurity::None => 25,
        }
    }
}

/// The SMTP relay, as configured (in the namespace's notification ConfigMap).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SmtpSpec {
    /// Relay host name (also the name its certificate must carry).
    pub host: String,
    /// Port; default from `security` (587, 465 or 25).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// `StartTls` (default), `Tls` or `None`.
    #[serde(default)]
    pub security: SmtpSecurity,
    /// Sender address, e.g. `tollgate@example.com`.
    pub from: String,
    /// Login for SMTP AUTH; with `passwordSecretRef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The SMTP password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret_ref: Option<SecretRef>,
    /// A PEM CA certificate to trust for the relay in addition to the system's roots
    /// (a relay with a private CA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_secret_ref: Option<SecretRef>,
}

/// Where a webhook URL comes from: a Secret (ConfigMap routes) or the Project's
/// `webhookUrl` field (which the API keeps in the spec).
#[derive(Clone, Debug, PartialEq)]
pub enum UrlSource {
    /// A Secret key holding the URL.
    Secret(SecretRef),
    /// A URL written in the Project.
    Inline(String),
}

/// What a configured channel sends to, before secrets are read.
#[derive(Clone, Debug, PartialEq)]
pub enum TargetSpec {
    /// Slack incoming webhook.
    Slack {
        /// The webhook URL (a secret: it authorises posting).
        url: SecretRef,
    },
    /// Generic signed JSON webhook.
    Webhook {
        /// Where to POST.
        url: UrlSource,
        /// The HMAC-SHA256 key.
        signing_key: SecretRef,
    },
    /// Email.
    Email {
        /// Recipients.
        to: Vec<String>,
        /// The relay.
        smtp: SmtpSpec,
    },
}

/// A configured channel.
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelSpec {
    /// Name, unique among the channels routed for a Project.
    pub name: String,
    /// Events this channel receives; `None`: all of them.
    pub events: Option<BTreeSet<EventKind>>,
    /// Where it sends.
    pub target: TargetSpec,
}

impl ChannelSpec {
    /// Every Secret key this channel needs.
    pub fn secret_refs(&self) -> Vec<&SecretRef> {
        match &self.target {
            TargetSpec::Slack { url } => vec![url],
            TargetSpec::Webhook { url, signing_key } => match url {
                UrlSource::Secret(url) => vec![url, signing_key],
                UrlSource::Inline(_) => vec![signing_key],
            },
            TargetSpec::Email { smtp, .. } => smtp
                .password_secret_ref
                .iter()
                .chain(smtp.ca_secret_ref.iter())
                .collect(),
        }
    }
}

/// SMTP settings with the password and CA in hand.
#[derive(Clone, Debug)]
pub struct SmtpSettings {
    /// Relay host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Connection security.
    pub security: SmtpSecurity,
    /// Sender address.
    pub from: String,
    /// Login and password for SMTP AUTH.
    pub credentials: Option<(String, SecretValue)>,
    /// Extra trusted CA (PEM).
    pub ca_pem: Option<Vec<u8>>,
}

/// Where a resolved channel sends, with its secrets.
#[derive(Clone, Debug)]
pub enum Target {
    /// Slack incoming webhook.
    Slack {
        /// The webhook URL.
        url: SecretValue,
    },
    /// Generic signed JSON webhook.
    Webhook {
        /// The URL (secret: it may carry a token).
        url: SecretValue,
        /// The HMAC-SHA256 key.
        signing_key: SecretValue,
    },
    /// Email.
    Email {
        /// Recipients.
        to: Vec<String>,
        /// The relay.
        smtp: SmtpSettings,
    },
}

/// A channel ready to send: what [`super::Notifier::deliver`] takes.
#[derive(Clone, Debug)]
pub struct Channel {
    /// Name (recorded with each delivery).
    pub name: String,
    /// Where it sends.
    pub target: Target,
}

impl Channel {
    /// Every secret this channel holds, so error text can be scrubbed of them.
    pub(super) fn secrets(&self) -> Vec<&[u8]> {
        match &self.target {
            Target::Slack { url } => vec![url.expose()],
            Target::Webhook { url, signing_key } => vec![url.expose(), signing_key.expose()],
            Target::Email { smtp, .. } => smtp
                .credentials
                .iter()
                .map(|(_, password)| password.expose())
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_values_never_print() {
        let channel = Channel {
            name: "hook".into(),
            target: Target::Webhook {
                url: SecretValue::new("https://hooks.example/T0KEN"),
                signing_key: SecretValue::new("k3y"),
            },
        };
        let shown = format!("{channel:?}");
        assert!(
            !shown.contains("T0KEN") && !shown.contains("k3y"),
            "{shown}"
        );
    }
}

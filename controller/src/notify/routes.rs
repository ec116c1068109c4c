//! Namespace-level default routes: a ConfigMap `tollgate-notifications` in a Project's
//! namespace lists channels once for every Project there, plus the SMTP relay and the
//! webhook signing key that the Project's own (inline) channels use. Format and examples:
//! docs/notifications.md.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::ConfigMap;
use serde::Deserialize;

use super::channel::{ChannelSpec, SecretRef, SmtpSpec, TargetSpec, UrlSource};
use super::{EventKind, NotifyError};
use crate::api::{NotificationChannel, ProjectApproval};

/// Name of the ConfigMap holding a namespace's default routes.
pub const CONFIG_MAP_NAME: &str = "tollgate-notifications";
/// Key of the YAML document in that ConfigMap.
pub const CONFIG_MAP_KEY: &str = "config.yaml";
/// The key of the Secret a Project's `slackWebhookSecretRef` or `webhookSecretRef` names
/// (the API fixes it).
pub const URL_KEY: &str = "url";

/// A namespace's notification configuration (the ConfigMap's `config.yaml`).
#[derive(Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NotifyConfig {
    /// Channels every Project in the namespace notifies.
    #[serde(default)]
    pub channels: Vec<ChannelEntry>,
    /// Channels told on escalation when the Project's `sla.escalation.notify` names none.
    #[serde(default)]
    pub escalation: Vec<String>,
    /// The relay for every email channel (the Project's `email` channels included).
    #[serde(default)]
    pub smtp: Option<SmtpSpec>,
    /// The key that signs the Project's `webhookUrl` channels.
    #[serde(default)]
    pub webhook_signing_key_secret_ref: Option<SecretRef>,
}

/// One channel in the ConfigMap. Set exactly one of `slack`, `webhook`, `email`.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChannelEntry {
    /// Name (referenced by `escalation` lists).
    pub name: String,
    /// Events it receives; absent: all.
    #[serde(default)]
    pub events: Option<BTreeSet<EventKind>>,
    /// Slack incoming webhook.
    #[serde(default)]
    pub slack: Option<SlackEntry>,
    /// Signed JSON webhook.
    #[serde(default)]
    pub webhook: Option<WebhookEntry>,
    /// Email.
    #[serde(default)]
    pub email: Option<EmailEntry>,
}

/// Slack channel settings.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SlackEntry {
    /// Secret key holding the incoming-webhook URL.
    pub url_secret_ref: SecretRef,
}

/// Webhook channel settings.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookEntry {
    /// Secret key holding the URL.
    pub url_secret_ref: SecretRef,
    /// Secret key holding the HMAC-SHA256 key; default `webhookSigningKeySecretRef`.
    #[serde(default)]
    pub signing_key_secret_ref: Option<SecretRef>,
}

/// Email channel settings.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EmailEntry {
    /// Recipients.
    pub to: Vec<String>,
}

impl NotifyConfig {
    /// Reads the ConfigMap; a missing `config.yaml` key means no defaults.
    pub fn from_config_map(cm: &ConfigMap) -> Result<Self, NotifyError> {
        match cm.data.as_ref().and_then(|d| d.get(CONFIG_MAP_KEY)) {
            Some(yaml) => Self::parse(yaml),
            None => Ok(Self::default()),
        }
    }

    /// Parses and checks the YAML document.
    pub fn parse(yaml: &str) -> Result<Self, NotifyError> {
        let config: NotifyConfig =
            serde_saphyr::from_str(yaml).map_err(|e| config_error(e.to_string()))?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), NotifyError> {
        let mut names = BTreeSet::new();
        for c in &self.channels {
            if c.name.is_empty() {
                return Err(config_error("a channel has an empty name".into()));
            }
            if !names.insert(c.name.as_str()) {
                return Err(config_error(format!(
                    "channel {:?} is listed twice; names must be unique",
                    c.name
                )));
            }
            let kinds = [c.slack.is_some(), c.webhook.is_some(), c.email.is_some()];
            if kinds.iter().filter(|k| **k).count() != 1 {
                return Err(config_error(format!(
                    "channel {:?} must set exactly one of slack, webhook and email",
                    c.name
                )));
            }
            if let Some(email) = &c.email {
                if email.to.is_empty() {
                    return Err(config_error(format!(
                        "channel {:?} has no recipients in email.to",
                        c.name
                    )));
                }
                if self.smtp.is_none() {
                    return Err(config_error(format!(
                        "channel {:?} sends email but there is no smtp section",
                        c.name
                    )));
                }
            }
            if let Some(hook) = &c.webhook
                && hook.signing_key_secret_ref.is_none()
                && self.webhook_signing_key_secret_ref.is_none()
            {
                return Err(config_error(format!(
                    "channel {:?} has no signing key: set webhook.signingKeySecretRef or webhookSigningKeySecretRef",
                    c.name
                )));
            }
        }
        if let Some(unknown) = self.escalation.iter().find(|n| !names.contains(n.as_str())) {
            return Err(config_error(format!(
                "escalation names channel {unknown:?}, which is not in channels"
            )));
        }
        Ok(())
    }

    fn channel_spec(&self, entry: &ChannelEntry) -> Result<ChannelSpec, NotifyError> {
        let target = if let Some(slack) = &entry.slack {
            TargetSpec::Slack {
                url: slack.url_secret_ref.clone(),
            }
        } else if let Some(hook) = &entry.webhook {
            TargetSpec::Webhook {
                url: UrlSource::Secret(hook.url_secret_ref.clone()),
                signing_key: hook
                    .signing_key_secret_ref
                    .clone()
                    .or_else(|| self.webhook_signing_key_secret_ref.clone())
                    .ok_or_else(|| missing_signing_key(&entry.name))?,
            }
        } else if let Some(email) = &entry.email {
            TargetSpec::Email {
                to: email.to.clone(),
                smtp: self.smtp_for(&entry.name)?,
            }
        } else {
            return Err(config_error(format!(
                "channel {:?} must set exactly one of slack, webhook and email",
                entry.name
            )));
        };
        Ok(ChannelSpec {
            name: entry.name.clone(),
            events: entry.events.clone(),
            target,
        })
    }

    fn smtp_for(&self, channel: &str) -> Result<SmtpSpec, NotifyError> {
        self.smtp.clone().ok_or_else(|| NotifyError::NoSmtp {
            channel: channel.to_owned(),
        })
    }

    /// A Project's inline channel, completed with this namespace's relay and signing key.
    fn project_channel(&self, c: &NotificationChannel) -> Result<ChannelSpec, NotifyError> {
        let target = if let Some(secret) = &c.slack_webhook_secret_ref {
            TargetSpec::Slack {
                url: SecretRef {
                    name: secret.name.clone(),
                    key: URL_KEY.to_owned(),
                },
            }
        } else if let Some(url) = c
            .webhook_secret_ref
            .as_ref()
            .map(|secret| {
                UrlSource::Secret(SecretRef {
                    name: secret.name.clone(),
                    key: URL_KEY.to_owned(),
                })
            })
            .or_else(|| c.webhook_url.clone().map(UrlSource::Inline))
        {
            TargetSpec::Webhook {
                url,
                signing_key: self
                    .webhook_signing_key_secret_ref
                    .clone()
                    .ok_or_else(|| missing_signing_key(&c.name))?,
            }
        } else if let Some(to) = &c.email {
            TargetSpec::Email {
                to: to.clone(),
                smtp: self.smtp_for(&c.name)?,
            }
        } else {
            return Err(NotifyError::Config {
                reason: format!(
                    "the Project's channel {:?} sets none of slackWebhookSecretRef, webhookSecretRef, webhookUrl and email",
                    c.name
                ),
            });
        };
        Ok(ChannelSpec {
            name: c.name.clone(),
            events: None,
            target,
        })
    }
}

/// The channels that must hear about `event` for a Project with `approval` in a
/// namespace configured by `config`. The Project's channels come first and win over a
/// namespace channel of the same name. `Escalated` goes to the Project's
/// `sla.escalation.notify` channels, else the namespace's `escalation` list, else every
/// channel that takes the event.
pub fn route(
    event: EventKind,
    approval: Option<&ProjectApproval>,
    config: &NotifyConfig,
) -> Result<Vec<ChannelSpec>, NotifyError> {
    let mut channels = Vec::new();
    let inline = approval.map(|a| a.notifications.as_slice()).unwrap_or(&[]);
    for c in inline {
        channels.push(config.project_channel(c)?);
    }
    for entry in &config.channels {
        if !channels.iter().any(|c: &ChannelSpec| c.name == entry.name) {
            channels.push(config.channel_spec(entry)?);
        }
    }
    let takes = |c: &ChannelSpec| c.events.as_ref().is_none_or(|e| e.contains(&event));
    if event == EventKind::Escalated {
        let project_list = approval
            .and_then(|a| a.sla.as_ref())
            .and_then(|s| s.escalation.as_ref())
            .map(|e| e.notify.as_slice())
            .unwrap_or(&[]);
        let names = if project_list.is_empty() {
            config.escalation.as_slice()
        } else {
            project_list
        };
        if !names.is_empty() {
            if let Some(unknown) = names
                .iter()
                .find(|n| !channels.iter().any(|c| &c.name == *n))
            {
                return Err(NotifyError::UnknownChannel {
                    name: unknown.clone(),
                });
            }
            channels.retain(|c| names.contains(&c.name));
            return Ok(channels);
        }
    }
    channels.retain(takes);
    Ok(channels)
}

fn config_error(reason: String) -> NotifyError {
    NotifyError::Config {
        reason: format!("ConfigMap {CONFIG_MAP_NAME}, key {CONFIG_MAP_KEY}: {reason}"),
    }
}

fn missing_signing_key(channel: &str) -> NotifyError {
    NotifyError::NoSigningKey {
        channel: channel.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::api::{EscalationPolicy, SecretKeyRef, SlaPolicy};
    use crate::notify::SmtpSecurity;

    const EXAMPLE: &str = r#"
channels:
  - name: team-slack
    slack:
      urlSecretRef: {name: tollgate-notify, key: slack-url}
    events: [Opened, Escalated, Expired, ApplyFailed]
  - name: ops-hook
    webhook:
      urlSecretRef: {name: tollgate-notify, key: hook-url}
  - name: on-call
    email:
      to: [oncall@example.com]
escalation: [on-call]
smtp:
  host: smtp.example.com
  from: tollgate@example.com
  username: tollgate
  passwordSecretRef: {name: tollgate-notify, key: smtp-password}
webhookSigningKeySecretRef: {name: tollgate-notify, key: hook-key}
"#;

    #[test]
    fn parses_the_documented_example() {
        let config = NotifyConfig::parse(EXAMPLE).unwrap();
        assert_eq!(config.channels.len(), 3);
        let smtp = config.smtp.as_ref().unwrap();
        assert_eq!(smtp.security, SmtpSecurity::StartTls);
        assert_eq!(smtp.port, None);
        let opened: Vec<_> = route(EventKind::Opened, None, &config)
            .unwrap()
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(opened, ["team-slack", "ops-hook", "on-call"]);
        let decided: Vec<_> = route(EventKind::Decided, None, &config)
            .unwrap()
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(decided, ["ops-hook", "on-call"]);
        let escalated: Vec<_> = route(EventKind::Escalated, None, &config)
            .unwrap()
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(escalated, ["on-call"]);
    }

    #[test]
    fn the_docs_show_the_same_example() {
        let docs = include_str!("../../../docs/notifications.md");
        let yaml = docs
            .split("```yaml\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .unwrap();
        let cm: ConfigMap = serde_saphyr::from_str(yaml).unwrap();
        assert_eq!(cm.metadata.name.as_deref(), Some(CONFIG_MAP_NAME));
        NotifyConfig::from_config_map(&cm).unwrap();
    }

    #[test]
    fn project_channels_use_the_namespace_relay_and_key_and_its_escalation_list() {
        let config = NotifyConfig::parse(EXAMPLE).unwrap();
        let approval = ProjectApproval {
            notifications: vec![
                NotificationChannel {
                    name: "team-slack".into(),
                    slack_webhook_secret_ref: Some(SecretKeyRef {
                        name: "project-slack".into(),
                    }),
                    webhook_secret_ref: None,
                    webhook_url: None,
                    email: None,
                },
                NotificationChannel {
                    name: "lead".into(),
                    slack_webhook_secret_ref: None,
                    webhook_secret_ref: None,
                    webhook_url: None,
                    email: Some(vec!["lead@example.com".into()]),
                },
            ],
            sla: Some(SlaPolicy {
                respond_within: "30m".into(),
                escalation: Some(EscalationPolicy {
                    after: "1h".into(),
                    notify: vec!["lead".into(), "ops-hook".into()],
                }),
                expire_after: None,
            }),
            ..ProjectApproval::default()
        };
        let opened = route(EventKind::Opened, Some(&approval), &config).unwrap();
        // The Project's team-slack replaces the namespace's (no event filter, own Secret).
        assert_eq!(
            opened[0].target,
            TargetSpec::Slack {
                url: SecretRef {
                    name: "project-slack".into(),
                    key: "url".into()
                }
            }
        );
        assert!(
            matches!(&opened[1].target, TargetSpec::Email { smtp, .. } if smtp.host == "smtp.example.com")
        );
        let escalated: Vec<_> = route(EventKind::Escalated, Some(&approval), &config)
            .unwrap()
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(escalated, ["lead", "ops-hook"]);
    }

    #[test]
    fn refuses_what_would_fail_later_and_says_what_to_fix() {
        let cases = [
            ("channels: [{name: a}]", "exactly one of"),
            (
                "channels: [{name: a, email: {to: [x@y]}}]",
                "no smtp section",
            ),
            (
                "channels: [{name: a, webhook: {urlSecretRef: {name: s, key: k}}}]",
                "signingKeySecretRef",
            ),
            ("escalation: [nobody]", "not in channels"),
            ("channel: []", "unknown field"),
            (
                "channels: [{name: a, events: [Sometimes], slack: {urlSecretRef: {name: s, key: k}}}]",
                "Sometimes",
            ),
        ];
        for (yaml, expected) in cases {
            let err = NotifyConfig::parse(yaml).unwrap_err().to_string();
            assert!(err.contains(expected), "{yaml}: {err}");
            assert!(err.contains(CONFIG_MAP_NAME), "{err}");
        }
    }

    #[test]
    fn a_project_webhook_reads_its_url_from_a_secret() {
        let config = NotifyConfig::parse(EXAMPLE).unwrap();
        let approval = ProjectApproval {
            notifications: vec![NotificationChannel {
                name: "team-hook".into(),
                slack_webhook_secret_ref: None,
                webhook_secret_ref: Some(SecretKeyRef {
                    name: "team-hook-url".into(),
                }),
                webhook_url: None,
                email: None,
            }],
            ..ProjectApproval::default()
        };
        let channels = route(EventKind::Opened, Some(&approval), &config).unwrap();
        let hook = channels.iter().find(|c| c.name == "team-hook").unwrap();
        assert_eq!(
            hook.target,
            TargetSpec::Webhook {
                url: UrlSource::Secret(SecretRef {
                    name: "team-hook-url".into(),
                    key: URL_KEY.into()
                }),
                signing_key: SecretRef {
                    name: "tollgate-notify".into(),
                    key: "hook-key".into()
                },
            }
        );
    }
}

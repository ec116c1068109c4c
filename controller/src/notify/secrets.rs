//! Reading channel secrets: the only part of notify that talks to Kubernetes, kept to
//! one `get` per Secret behind a small trait so the resolution logic is tested without a
//! cluster.

use std::collections::BTreeMap;
use std::future::Future;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;

use super::NotifyError;
use super::channel::{
    Channel, ChannelSpec, SecretRef, SecretValue, SmtpSettings, Target, TargetSpec, UrlSource,
};

/// Somewhere Secrets are read from (a namespaced `Api<Secret>` in the controller).
pub trait SecretSource {
    /// The Secret's data, or `None` when it does not exist.
    fn secret_data(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<BTreeMap<String, Vec<u8>>>, NotifyError>> + Send;
}

impl SecretSource for Api<Secret> {
    async fn secret_data(
        &self,
        name: &str,
    ) -> Result<Option<BTreeMap<String, Vec<u8>>>, NotifyError> {
        let secret = self
            .get_opt(name)
            .await
            .map_err(|e| NotifyError::SecretRead {
                name: name.to_owned(),
                // kube's error text is the API status message: names, never data.
                message: e.to_string(),
            })?;
        Ok(secret.map(|s| {
            s.data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect()
        }))
    }
}

/// Reads every secret the channels need (each Secret once) and returns channels ready to
/// send. Fails on the first missing Secret or key, naming it.
pub async fn resolve(
    source: &impl SecretSource,
    specs: &[ChannelSpec],
) -> Result<Vec<Channel>, NotifyError> {
    let mut cache: BTreeMap<String, Option<BTreeMap<String, Vec<u8>>>> = BTreeMap::new();
    for r in specs.iter().flat_map(ChannelSpec::secret_refs) {
        if !cache.contains_key(&r.name) {
            let data = source.secret_data(&r.name).await?;
            cache.insert(r.name.clone(), data);
        }
    }
    let get = |channel: &str, r: &SecretRef| -> Result<SecretValue, NotifyError> {
        let data = cache.get(&r.name).and_then(Option::as_ref).ok_or_else(|| {
            NotifyError::SecretMissing {
                channel: channel.to_owned(),
                name: r.name.clone(),
                key: None,
            }
        })?;
        data.get(&r.key)
            .map(|v| SecretValue::new(v.clone()))
            .ok_or_else(|| NotifyError::SecretMissing {
                channel: channel.to_owned(),
                name: r.name.clone(),
                key: Some(r.key.clone()),
            })
    };
    specs
        .iter()
        .map(|spec| {
            let target = match &spec.target {
                TargetSpec::Slack { url } => Target::Slack {
                    url: get(&spec.name, url)?,
                },
                TargetSpec::Webhook { url, signing_key } => Target::Webhook {
                    url: match url {
                        UrlSource::Secret(r) => get(&spec.name, r)?,
                        UrlSource::Inline(url) => SecretValue::new(url.as_bytes()),
                    },
                    signing_key: get(&spec.name, signing_key)?,
                },
                TargetSpec::Email { to, smtp } => Target::Email {
                    to: to.clone(),
                    smtp: SmtpSettings {
                        host: smtp.host.clone(),
                        port: smtp.port.unwrap_or(smtp.security.default_port()),
                        security: smtp.security,
                        from: smtp.from.clone(),
                        credentials: match (&smtp.username, &smtp.password_secret_ref) {
                            (Some(user), Some(r)) => Some((user.clone(), get(&spec.name, r)?)),
                            _ => None,
                        },
                        ca_pem: smtp
                            .ca_secret_ref
                            .as_ref()
                            .map(|r| get(&spec.name, r).map(|v| v.expose().to_vec()))
                            .transpose()?,
                    },
                },
            };
            Ok(Channel {
                name: spec.name.clone(),
                target,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::notify::{EventKind, NotifyConfig, route};

    struct Fake(BTreeMap<String, BTreeMap<String, Vec<u8>>>);

    impl SecretSource for Fake {
        async fn secret_data(
            &self,
            name: &str,
        ) -> Result<Option<BTreeMap<String, Vec<u8>>>, NotifyError> {
            Ok(self.0.get(name).cloned())
        }
    }

    fn config() -> NotifyConfig {
        NotifyConfig::parse(
            r#"
channels:
  - name: hook
    webhook:
      urlSecretRef: {name: notify, key: hook-url}
      signingKeySecretRef: {name: notify, key: hook-key}
  - name: mail
    email: {to: [a@example.com]}
smtp:
  host: smtp.example.com
  security: Tls
  from: tollgate@example.com
  username: tollgate
  passwordSecretRef: {name: smtp, key: password}
"#,
        )
        .unwrap()
    }

    #[tokio::test]
    async fn resolves_every_secret_key() {
        let data = |pairs: &[(&str, &str)]| -> BTreeMap<String, Vec<u8>> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                .collect()
        };
        let fake = Fake(BTreeMap::from([
            (
                "notify".into(),
                data(&[("hook-url", "https://h.example/x"), ("hook-key", "k")]),
            ),
            ("smtp".into(), data(&[("password", "pw")])),
        ]));
        let specs = route(EventKind::Opened, None, &config()).unwrap();
        let channels = resolve(&fake, &specs).await.unwrap();
        assert!(
            matches!(&channels[0].target, Target::Webhook { signing_key, .. } if signing_key.expose() == b"k")
        );
        let Target::Email { smtp, .. } = &channels[1].target else {
            panic!("email")
        };
        assert_eq!(smtp.port, 465);
        assert_eq!(smtp.credentials.as_ref().unwrap().1.expose(), b"pw");
    }

    #[tokio::test]
    async fn a_missing_key_is_named() {
        let fake = Fake(BTreeMap::from([("notify".into(), BTreeMap::new())]));
        let specs = route(EventKind::Opened, None, &config()).unwrap();
        let err = resolve(&fake, &specs).await.unwrap_err().to_string();
        assert!(err.contains("notify") && err.contains("hook-url"), "{err}");
    }
}

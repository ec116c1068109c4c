//! Static keys (`credentials.secretRef`) from a Secret in the Project's namespace.

use k8s_openapi::api::core::v1::Secret;
use kube::Api;

use super::{CredentialsError, TemporaryCredentials};

/// Keys the Secret must hold.
pub const REQUIRED_KEYS: [&str; 2] = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"];
/// Key it may hold.
pub const SESSION_TOKEN_KEY: &str = "AWS_SESSION_TOKEN";

/// The Secret's value of `key`, as text; `None` when absent or not UTF-8.
pub fn value(secret: &Secret, key: &str) -> Option<String> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .and_then(|v| String::from_utf8(v.0.clone()).ok())
        .or_else(|| {
            secret
                .string_data
                .as_ref()
                .and_then(|d| d.get(key))
                .cloned()
        })
}

/// Reads Secret `name`, which must hold `keys` (a missing Secret is
/// [`CredentialsError::SecretMissing`], naming the keys a person must put in it).
pub async fn get(
    api: &Api<Secret>,
    namespace: &str,
    name: &str,
    keys: &[&str],
) -> Result<Secret, CredentialsError> {
    api.get_opt(name)
        .await
        .map_err(|e| CredentialsError::SecretRead {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            message: e.to_string(),
        })?
        .ok_or_else(|| CredentialsError::SecretMissing {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            problem: "does not exist".into(),
            keys: keys.iter().map(|k| (*k).to_owned()).collect(),
        })
}

/// Static AWS keys from Secret `name` in `namespace`.
pub async fn static_keys(
    api: &Api<Secret>,
    namespace: &str,
    name: &str,
) -> Result<TemporaryCredentials, CredentialsError> {
    let secret = get(api, namespace, name, &REQUIRED_KEYS).await?;
    let missing: Vec<&str> = REQUIRED_KEYS
        .into_iter()
        .filter(|k| value(&secret, k).is_none_or(|v| v.is_empty()))
        .collect();
    let [Some(access_key_id), Some(secret_access_key)] =
        REQUIRED_KEYS.map(|k| value(&secret, k).filter(|v| !v.is_empty()))
    else {
        return Err(CredentialsError::SecretMissing {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            problem: format!("lacks the key(s) {}", missing.join(", ")),
            keys: REQUIRED_KEYS.map(str::to_owned).to_vec(),
        });
    };
    Ok(TemporaryCredentials {
        access_key_id,
        secret_access_key,
        session_token: value(&secret, SESSION_TOKEN_KEY).filter(|v| !v.is_empty()),
        expires: None,
    })
}

//! Per-Project cloud credentials: the account allow-list ([`policy`]), short-lived
//! credentials from STS AssumeRole on top of the controller's own identity ([`sts`]), and
//! static keys from a Secret where the allow-list permits them ([`secret`]).
//!
//! Credentials exist only in memory and in the environment of the Terraform process they
//! were minted for: never on disk, in status, Events, logs or audit records. `Debug` of
//! [`TemporaryCredentials`] shows the key id's length, not the key.

pub mod broker;
pub mod policy;
pub mod secret;
pub mod secrets_manager;
pub mod session;
pub mod sts;
pub mod trust;

use std::fmt;
use std::path::PathBuf;

pub use policy::{AccountPolicy, Grant, Refusal};

/// Environment variables of the controller's own AWS identity: blanked in Terraform's
/// environment whenever the Project brings its own credentials, so that Terraform can never
/// fall back to acting as the controller (a profile, IRSA's web identity, a container
/// credentials endpoint).
pub const CONTROLLER_IDENTITY_ENV: &[&str] = &[
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
];

/// Errors of the credentials module. None of them carries a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialsError {
    /// The credentials configuration file cannot be read or is invalid.
    #[error("credentials configuration {}: {message}", path.display())]
    Config {
        /// The file (`--credentials-config`).
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// STS refused to assume the role (trust policy, external id, missing role): a person
    /// must fix the role; the Project opens a Credential checkpoint.
    #[error("STS refused to assume {role_arn}: {message}")]
    AssumeRoleDenied {
        /// The role.
        role_arn: String,
        /// STS's error code and message (they name no secret).
        message: String,
    },
    /// STS could not be reached or failed: retried.
    #[error(
        "STS AssumeRole of {role_arn} failed: {message}; check the controller's network and its own AWS identity"
    )]
    Sts {
        /// The role.
        role_arn: String,
        /// What failed.
        message: String,
    },
    /// The Secret holding static keys (or a secret input) is missing, or lacks keys.
    #[error("Secret {namespace}/{name} {problem}")]
    SecretMissing {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// `does not exist`, or which keys it lacks.
        problem: String,
        /// Every key it must hold.
        keys: Vec<String>,
    },
    /// Reading a Secret failed for another reason: retried.
    #[error("cannot read Secret {namespace}/{name}: {message}")]
    SecretRead {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The API error.
        message: String,
    },
    /// Secrets Manager answered that a secret input cannot be read (missing, no
    /// permission, no such JSON key): a person must act.
    #[error("AWS Secrets Manager secret {secret_id}: {message}")]
    AwsSecretUnavailable {
        /// The secret.
        secret_id: String,
        /// What is wrong (never the value).
        message: String,
    },
    /// Secrets Manager could not be reached: retried.
    #[error("AWS Secrets Manager secret {secret_id}: {message}; check the controller's network")]
    SecretsManager {
        /// The secret.
        secret_id: String,
        /// What failed.
        message: String,
    },
    /// `sessionDuration` is not a duration STS accepts.
    #[error(
        "spec.cloud.aws.credentials.assumeRole.sessionDuration `{0}`: use 15m to 12h, e.g. `1h`"
    )]
    SessionDuration(String),
    /// The credentials file a runner Job's pod is given is unreadable.
    #[error(
        "the runner's credentials file {path}: {message}; the controller rewrites it while the Job runs"
    )]
    CredentialsFile {
        /// The file.
        path: PathBuf,
        /// What is wrong (never a value).
        message: String,
    },
    /// The loopback credentials endpoint cannot listen.
    #[error(
        "cannot serve the runs' credentials endpoint on 127.0.0.1: {0}; the controller needs a free loopback port"
    )]
    Endpoint(#[source] std::io::Error),
}

impl CredentialsError {
    /// Whether a person must act (open a Credential checkpoint) rather than wait and retry.
    pub fn needs_person(&self) -> bool {
        matches!(
            self,
            CredentialsError::AssumeRoleDenied { .. }
                | CredentialsError::SecretMissing { .. }
                | CredentialsError::AwsSecretUnavailable { .. }
        )
    }
}

/// AWS credentials for one Terraform run.
#[derive(Clone, PartialEq, Eq)]
pub struct TemporaryCredentials {
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: String,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: String,
    /// `AWS_SESSION_TOKEN` (STS credentials, or static keys that came with one).
    pub session_token: Option<String>,
    /// When STS says they expire (RFC 3339); `None` for static keys.
    pub expires: Option<String>,
}

impl fmt::Debug for TemporaryCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TemporaryCredentials")
            .field("access_key_id", &"[REDACTED]")
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

impl TemporaryCredentials {
    /// The variables Terraform's AWS provider reads, every value secret.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("AWS_ACCESS_KEY_ID", self.access_key_id.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret_access_key.clone()),
        ];
        if let Some(token) = &self.session_token {
            env.push(("AWS_SESSION_TOKEN", token.clone()));
        }
        env
    }

    /// The ECS container-credentials document: what the credentials endpoint answers, and
    /// how a runner Job's pod is handed them (a Secret the controller rewrites).
    #[must_use]
    pub fn to_ecs_document(&self) -> String {
        serde_json::json!({
            "AccessKeyId": self.access_key_id,
            "SecretAccessKey": self.secret_access_key,
            "Token": self.session_token,
            "Expiration": self.expires,
        })
        .to_string()
    }

    /// Reads [`Self::to_ecs_document`] back.
    ///
    /// # Errors
    /// Not such a document (the message names the problem, never a value).
    pub fn from_ecs_document(bytes: &[u8]) -> Result<Self, String> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Document {
            access_key_id: String,
            secret_access_key: String,
            token: Option<String>,
            expiration: Option<String>,
        }
        let doc: Document = serde_json::from_slice(bytes)
            // serde_json's message may quote the input: say only where and what kind.
            .map_err(|e| {
                format!(
                    "not a credentials document ({:?} error at line {}, column {})",
                    e.classify(),
                    e.line(),
                    e.column()
                )
            })?;
        Ok(Self {
            access_key_id: doc.access_key_id,
            secret_access_key: doc.secret_access_key,
            session_token: doc.token,
            expires: doc.expiration,
        })
    }
}

/// STS session durations: 15 minutes to 12 hours (the role's maximum may be lower; STS
/// then refuses, which is reported as a denial naming the role).
pub fn session_seconds(duration: Option<&str>) -> Result<i32, CredentialsError> {
    const DEFAULT: i32 = 3600;
    let Some(text) = duration else {
        return Ok(DEFAULT);
    };
    let bad = || CredentialsError::SessionDuration(text.to_owned());
    let mut total: i64 = 0;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: i64 = number.parse().map_err(|_| bad())?;
        number.clear();
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        total = total
            .checked_add(n.checked_mul(unit).ok_or_else(bad)?)
            .ok_or_else(bad)?;
    }
    if !number.is_empty() || !(900..=43_200).contains(&total) {
        return Err(bad());
    }
    i32::try_from(total).map_err(|_| bad())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn session_durations_are_what_sts_accepts() {
        assert_eq!(session_seconds(None).unwrap(), 3600);
        assert_eq!(session_seconds(Some("15m")).unwrap(), 900);
        assert_eq!(session_seconds(Some("1h30m")).unwrap(), 5400);
        assert_eq!(session_seconds(Some("12h")).unwrap(), 43_200);
        for bad in ["14m", "13h", "1d", "h", "10", "1x"] {
            assert!(session_seconds(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_never_shows_a_key() {
        let creds = TemporaryCredentials {
            access_key_id: "AKIAEXAMPLEKEY".into(),
            secret_access_key: "wJalrXUtnFEMI/SECRET".into(),
            session_token: Some("TOKEN123".into()),
            expires: Some("2026-01-01T00:00:00Z".into()),
        };
        let text = format!("{creds:?}");
        for secret in ["AKIAEXAMPLEKEY", "wJalrXUtnFEMI", "TOKEN123"] {
            assert!(!text.contains(secret), "{text}");
        }
        assert_eq!(creds.env().len(), 3);
    }

    #[test]
    fn the_ecs_document_reads_back_and_a_bad_one_is_named_without_its_values() {
        let creds = TemporaryCredentials {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/SECRET".into(),
            session_token: Some("TOKEN123".into()),
            expires: Some("2026-01-01T00:00:00Z".into()),
        };
        let doc = creds.to_ecs_document();
        assert!(
            TemporaryCredentials::from_ecs_document(doc.as_bytes()).unwrap() == creds,
            "{doc}"
        );
        let bad = br#"{"AccessKeyId": 7, "SecretAccessKey": "wJalrXUtnFEMI/SECRET"}"#;
        let err = TemporaryCredentials::from_ecs_document(bad).unwrap_err();
        assert!(
            err.contains("Data error") && !err.contains("wJalr"),
            "{err}"
        );
    }
}

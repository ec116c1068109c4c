//! Secret inputs from AWS Secrets Manager: the value is read with the Project's own
//! credentials; the version (which makes a new plan when it changes) with the controller's.

use aws_sdk_secretsmanager::config::Credentials;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};

use super::{CredentialsError, TemporaryCredentials};

fn client(
    config: &aws_config::SdkConfig,
    credentials: Option<&TemporaryCredentials>,
) -> aws_sdk_secretsmanager::Client {
    let mut builder = aws_sdk_secretsmanager::config::Builder::from(config);
    if let Some(c) = credentials {
        builder = builder.credentials_provider(Credentials::new(
            c.access_key_id.clone(),
            c.secret_access_key.clone(),
            c.session_token.clone(),
            None,
            "tollgate-project",
        ));
    }
    aws_sdk_secretsmanager::Client::from_conf(builder.build())
}

fn failure<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    secret_id: &str,
    err: &SdkError<E, R>,
) -> CredentialsError {
    match err {
        // Secrets Manager answered: no such secret, no permission, marked for deletion. A
        // person must act; waiting alone will not help.
        SdkError::ServiceError(service) => CredentialsError::AwsSecretUnavailable {
            secret_id: secret_id.to_owned(),
            message: format!(
                "{}: {}",
                service.err().code().unwrap_or("error"),
                service.err().message().unwrap_or("no message")
            ),
        },
        other => CredentialsError::SecretsManager {
            secret_id: secret_id.to_owned(),
            message: crate::cloud::error_chain(other),
        },
    }
}

/// The current value of `secret_id` (its `json_key` when given), read with `credentials`
/// (the Project's; `None`: the controller's own identity, as the allow-list permitted).
pub async fn value(
    config: &aws_config::SdkConfig,
    credentials: Option<&TemporaryCredentials>,
    secret_id: &str,
    json_key: Option<&str>,
) -> Result<String, CredentialsError> {
    let response = client(config, credentials)
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|e| failure(secret_id, &e))?;
    let unavailable = |message: String| CredentialsError::AwsSecretUnavailable {
        secret_id: secret_id.to_owned(),
        message,
    };
    let text = response
        .secret_string
        .ok_or_else(|| unavailable("it holds binary data, not a string".into()))?;
    let Some(key) = json_key else {
        return Ok(text);
    };
    // Never echo the value: only say what shape it has.
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&text).map_err(|_| {
            unavailable(format!(
                "jsonKey {key} is set but the value is not a JSON object"
            ))
        })?;
    match object.get(key) {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(other) => Ok(other.to_string()),
        None => Err(unavailable(format!("its JSON value has no key {key}"))),
    }
}

/// The id of the version `AWSCURRENT` of `secret_id` (`DescribeSecret`, metadata only),
/// read with the controller's identity; `None` when it cannot be read.
pub async fn current_version(config: &aws_config::SdkConfig, secret_id: &str) -> Option<String> {
    let described = client(config, None)
        .describe_secret()
        .secret_id(secret_id)
        .send()
        .await;
    match described {
        Ok(described) => described
            .version_ids_to_stages?
            .into_iter()
            .find(|(_, stages)| stages.iter().any(|s| s == "AWSCURRENT"))
            .map(|(id, _)| id),
        Err(err) => {
            tracing::debug!(secret_id, error = %failure(secret_id, &err), "cannot read the secret's version");
            None
        }
    }
}

//! STS AssumeRole on top of the controller's own identity (the SDK's default chain:
//! environment, IRSA web identity, EKS pod identity, instance profile).

use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sts::types::Tag;

use super::{CredentialsError, TemporaryCredentials, session_seconds};
use crate::api::AssumeRole;

/// Assumes `role` as `session_name` in `region`; the credentials last `sessionDuration`.
pub async fn assume_role(
    config: &aws_config::SdkConfig,
    role: &AssumeRole,
    session_name: &str,
) -> Result<TemporaryCredentials, CredentialsError> {
    let seconds = session_seconds(role.session_duration.as_deref())?;
    let client = aws_sdk_sts::Client::new(config);
    let tags: Vec<Tag> = role
        .session_tags
        .iter()
        .filter_map(|(key, value)| Tag::builder().key(key).value(value).build().ok())
        .collect();
    let mut request = client
        .assume_role()
        .role_arn(&role.role_arn)
        .role_session_name(session_name)
        .duration_seconds(seconds)
        .set_external_id(role.external_id.clone());
    if !tags.is_empty() {
        request = request.set_tags(Some(tags));
    }
    let response = request.send().await.map_err(|err| {
        let role_arn = role.role_arn.clone();
        match &err {
            // STS answered: the role, its trust policy, the external id or the controller's
            // permission to assume it is wrong. Waiting will not fix it; a person must.
            SdkError::ServiceError(service) => CredentialsError::AssumeRoleDenied {
                role_arn,
                message: match (service.err().code(), service.err().message()) {
                    (Some(code), message) => {
                        format!("{code}: {}", message.unwrap_or("no message"))
                    }
                    // An answer the SDK could not parse (some emulators word errors their own
                    // way): its status and start of its body, which name no secret.
                    (None, _) => {
                        let raw = service.raw();
                        let body = raw
                            .body()
                            .bytes()
                            .map(String::from_utf8_lossy)
                            .unwrap_or_default();
                        format!(
                            "HTTP {}: {}",
                            raw.status().as_u16(),
                            body.chars().take(500).collect::<String>()
                        )
                    }
                },
            },
            _ => CredentialsError::Sts {
                role_arn,
                message: crate::cloud::error_chain(&err),
            },
        }
    })?;
    let credentials = response.credentials.ok_or_else(|| CredentialsError::Sts {
        role_arn: role.role_arn.clone(),
        message: "the response holds no credentials".into(),
    })?;
    Ok(TemporaryCredentials {
        access_key_id: credentials.access_key_id,
        secret_access_key: credentials.secret_access_key,
        session_token: Some(credentials.session_token),
        expires: Some(credentials.expiration.to_string()),
    })
}

/// The controller's own principal as a trust policy names it: the IAM role behind an
/// assumed-role session (`arn:aws:iam::<account>:role/<name>`), or the user; a placeholder
/// when STS cannot say.
pub async fn controller_principal(config: &aws_config::SdkConfig) -> String {
    let arn = aws_sdk_sts::Client::new(config)
        .get_caller_identity()
        .send()
        .await
        .ok()
        .and_then(|identity| identity.arn);
    match arn {
        Some(arn) => role_of_session(&arn),
        None => "<the controller's IAM role ARN>".into(),
    }
}

/// `arn:aws:sts::1:assumed-role/ctrl/session` → `arn:aws:iam::1:role/ctrl`; other ARNs as
/// they are.
fn role_of_session(arn: &str) -> String {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if let [prefix, partition, "sts", _, account, resource] = parts.as_slice()
        && let Some(rest) = resource.strip_prefix("assumed-role/")
        && let Some((role, _session)) = rest.rsplit_once('/')
    {
        return format!("{prefix}:{partition}:iam::{account}:role/{role}");
    }
    arn.to_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn an_assumed_role_session_is_trusted_through_its_role() {
        assert_eq!(
            role_of_session("arn:aws:sts::123456789012:assumed-role/tollgate-controller/i-0abc"),
            "arn:aws:iam::123456789012:role/tollgate-controller"
        );
        assert_eq!(
            role_of_session("arn:aws:iam::123456789012:user/ci"),
            "arn:aws:iam::123456789012:user/ci"
        );
    }
}

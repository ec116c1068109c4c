//! What a Credential checkpoint asks a person to do, as copy-paste text.

use super::CredentialsError;
use crate::api::AssumeRole;

/// The trust policy `role` needs so that `controller_principal` may assume it, with the
/// external id when the Project sets one (pretty JSON, ready for `aws iam
/// update-assume-role-policy`).
pub fn trust_policy(role: &AssumeRole, controller_principal: &str) -> String {
    let mut statement = serde_json::json!({
        "Effect": "Allow",
        "Principal": {"AWS": controller_principal},
        "Action": if role.session_tags.is_empty() {
            serde_json::json!("sts:AssumeRole")
        } else {
            serde_json::json!(["sts:AssumeRole", "sts:TagSession"])
        },
    });
    if let Some(external_id) = &role.external_id {
        statement["Condition"] =
            serde_json::json!({"StringEquals": {"sts:ExternalId": external_id}});
    }
    let policy = serde_json::json!({"Version": "2012-10-17", "Statement": [statement]});
    serde_json::to_string_pretty(&policy).unwrap_or_default()
}

/// The instructions for a person, for a credential problem that needs one.
pub fn instructions(
    error: &CredentialsError,
    role: Option<&AssumeRole>,
    controller_principal: &str,
) -> String {
    match (error, role) {
        (
            CredentialsError::SecretMissing {
                namespace,
                name,
                keys,
                ..
            },
            _,
        ) => format!(
            "{error}. Create it with the key(s) {}: `kubectl -n {namespace} create secret generic {name} {}` (or add the missing keys); the Project carries on by itself once it is there.",
            keys.join(", "),
            keys.iter()
                .map(|k| format!("--from-literal={k}=..."))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        (CredentialsError::AssumeRoleDenied { role_arn, .. }, Some(role)) => format!(
            "{error}. The controller ({controller_principal}) must be allowed to assume {role_arn}: give the role this trust policy (`aws iam update-assume-role-policy --role-name <name> --policy-document file://trust.json`) and the controller sts:AssumeRole on it; the Project carries on by itself once the role can be assumed.\n{}",
            trust_policy(role, controller_principal)
        ),
        (CredentialsError::AwsSecretUnavailable { secret_id, .. }, _) => format!(
            "{error}. Create the secret {secret_id} (with the JSON key the Project names, if any), or allow the Project's role secretsmanager:GetSecretValue on it (and the controller secretsmanager:DescribeSecret, to notice new versions); the Project carries on by itself once it can be read."
        ),
        _ => error.to_string(),
    }
}

//! The Project schema's rules checked client-side, so `tollgate validate` and the controller
//! give the same answer as the apiserver (and apiservers too old for CEL still get them).

use std::collections::HashMap;
use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

use super::common::{DURATION_PATTERN, MONEY_PATTERN};
use super::project::{
    AWS_ACCOUNT_PATTERN, AWS_REGION_PATTERN, COMPONENT_NAME_PATTERN, DYNAMODB_TABLE_PATTERN,
    ENVIRONMENT_PATTERN, MODULE_NAME_PATTERN, OUTPUT_NAME_PATTERN, Project, ROLE_ARN_PATTERN,
    S3_BUCKET_PATTERN, SECRET_SUFFIX_PATTERN, WEBHOOK_URL_PATTERN,
};

/// A field that breaks a schema rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// Path of the field, e.g. `spec.components[1].name`.
    pub field: String,
    /// What was given (truncated).
    pub given: String,
    /// What is allowed.
    pub allowed: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} is not allowed; {}",
            self.field, self.given, self.allowed
        )
    }
}

/// Every pattern the schema declares, for the test that keeps schema and client in step.
pub const SCHEMA_PATTERNS: &[&str] = &[
    DURATION_PATTERN,
    MONEY_PATTERN,
    COMPONENT_NAME_PATTERN,
    MODULE_NAME_PATTERN,
    ENVIRONMENT_PATTERN,
    AWS_REGION_PATTERN,
    AWS_ACCOUNT_PATTERN,
    ROLE_ARN_PATTERN,
    S3_BUCKET_PATTERN,
    SECRET_SUFFIX_PATTERN,
    DYNAMODB_TABLE_PATTERN,
    WEBHOOK_URL_PATTERN,
    OUTPUT_NAME_PATTERN,
];

struct Checker {
    errors: Vec<FieldError>,
}

impl Checker {
    fn fail(&mut self, field: impl Into<String>, given: &str, allowed: impl Into<String>) {
        let mut shown: String = given.chars().take(80).collect();
        if shown.len() < given.len() {
            shown.push('…');
        }
        self.errors.push(FieldError {
            field: field.into(),
            given: format!("{shown:?}"),
            allowed: allowed.into(),
        });
    }

    fn pattern(
        &mut self,
        field: impl Into<String>,
        value: &str,
        pattern: &'static str,
        meaning: &str,
    ) {
        if !COMPILED.get(pattern).is_some_and(|r| r.is_match(value)) {
            self.fail(
                field,
                value,
                format!("expected {meaning} (pattern {pattern})"),
            );
        }
    }

    fn max_items(&mut self, field: impl Into<String>, count: usize, max: usize) {
        if count > max {
            self.fail(
                field,
                &format!("{count} items"),
                format!("at most {max} items"),
            );
        }
    }
}

/// Compiled schema patterns. Every entry of `SCHEMA_PATTERNS` compiles (a unit test proves
/// it), so a pattern missing here can only be a new constant not yet listed: that fails closed.
static COMPILED: LazyLock<HashMap<&'static str, Regex>> = LazyLock::new(|| {
    SCHEMA_PATTERNS
        .iter()
        .filter_map(|p| Regex::new(p).ok().map(|r| (*p, r)))
        .collect()
});

/// Longest Project name: it is a label value (at most 63 characters) on what tollgate
/// creates for the Project; the CRD refuses longer names with the same limit.
pub const MAX_PROJECT_NAME: usize = 63;

/// Checks the Project's spec against the schema's patterns, lengths and CEL rules.
pub fn validate_project(project: &Project) -> Vec<FieldError> {
    let mut c = Checker { errors: Vec::new() };
    let spec = &project.spec;
    let name = project.metadata.name.as_deref().unwrap_or_default();
    if name.len() > MAX_PROJECT_NAME {
        c.fail(
            "metadata.name",
            name,
            format!("at most {MAX_PROJECT_NAME} characters: tollgate labels the Project's Secrets, Checkpoints and state with it"),
        );
    }
    c.pattern(
        "spec.environment",
        &spec.environment,
        ENVIRONMENT_PATTERN,
        "a lowercase label such as dev, staging or production",
    );
    if spec.components.is_empty() {
        c.fail("spec.components", "[]", "at least one component");
    }
    c.max_items("spec.components", spec.components.len(), 100);
    for (i, component) in spec.components.iter().enumerate() {
        let at = format!("spec.components[{i}]");
        c.pattern(
            format!("{at}.name"),
            &component.name,
            COMPONENT_NAME_PATTERN,
            "lowercase letters, digits, `-` or `_`, starting with a letter, at most 63 characters",
        );
        c.pattern(
            format!("{at}.module"),
            &component.module,
            MODULE_NAME_PATTERN,
            "the name of a catalog module",
        );
        c.max_items(format!("{at}.dependsOn"), component.depends_on.len(), 100);
        if component.inputs.len() > 256 {
            c.fail(
                format!("{at}.inputs"),
                &format!("{} inputs", component.inputs.len()),
                "at most 256 inputs",
            );
        }
    }
    if let Some(aws) = spec.cloud.as_ref().map(|c| &c.aws) {
        c.pattern(
            "spec.cloud.aws.region",
            &aws.region,
            AWS_REGION_PATTERN,
            "an AWS region such as eu-west-1",
        );
        c.pattern(
            "spec.cloud.aws.accountId",
            &aws.account_id,
            AWS_ACCOUNT_PATTERN,
            "a twelve-digit account id",
        );
        if let Some(creds) = &aws.credentials {
            if creds.assume_role.is_some() && creds.secret_ref.is_some() {
                c.fail(
                    "spec.cloud.aws.credentials",
                    "assumeRole and secretRef",
                    "set at most one of assumeRole and secretRef",
                );
            }
            if let Some(role) = &creds.assume_role {
                c.pattern(
                    "spec.cloud.aws.credentials.assumeRole.roleArn",
                    &role.role_arn,
                    ROLE_ARN_PATTERN,
                    "an IAM role ARN",
                );
                if let Some(d) = &role.session_duration {
                    c.pattern(
                        "spec.cloud.aws.credentials.assumeRole.sessionDuration",
                        d,
                        DURATION_PATTERN,
                        "a duration such as 1h",
                    );
                }
                if let Some(id) = &role.external_id
                    && !(2..=1224).contains(&id.len())
                {
                    c.fail(
                        "spec.cloud.aws.credentials.assumeRole.externalId",
                        id,
                        "2 to 1224 characters",
                    );
                }
            }
        }
    }
    if let Some(budget) = &spec.budget {
        c.pattern(
            "spec.budget.monthlyLimit",
            &budget.monthly_limit,
            MONEY_PATTERN,
            "a USD amount such as \"250\" or \"99.50\"",
        );
    }
    if let Some(approval) = &spec.approval {
        if let Some(threshold) = &approval.cost_increase_threshold {
            c.pattern(
                "spec.approval.costIncreaseThreshold",
                threshold,
                MONEY_PATTERN,
                "a USD amount such as \"10\"",
            );
        }
        if let Some(sla) = &approval.sla {
            c.pattern(
                "spec.approval.sla.respondWithin",
                &sla.respond_within,
                DURATION_PATTERN,
                "a duration such as 4h",
            );
            if let Some(expire) = &sla.expire_after {
                c.pattern(
                    "spec.approval.sla.expireAfter",
                    expire,
                    DURATION_PATTERN,
                    "a duration such as 72h",
                );
            }
            if let Some(escalation) = &sla.escalation {
                c.pattern(
                    "spec.approval.sla.escalation.after",
                    &escalation.after,
                    DURATION_PATTERN,
                    "a duration such as 8h",
                );
            }
        }
        c.max_items(
            "spec.approval.notifications",
            approval.notifications.len(),
            20,
        );
        for (i, channel) in approval.notifications.iter().enumerate() {
            let at = format!("spec.approval.notifications[{i}]");
            c.pattern(
                format!("{at}.name"),
                &channel.name,
                COMPONENT_NAME_PATTERN,
                "a lowercase name",
            );
            let set = [
                channel.slack_webhook_secret_ref.is_some(),
                channel.webhook_secret_ref.is_some(),
                channel.webhook_url.is_some(),
                channel.email.is_some(),
            ]
            .iter()
            .filter(|x| **x)
            .count();
            if set != 1 {
                c.fail(
                    at.clone(),
                    &format!("{set} channel kinds"),
                    "set exactly one of slackWebhookSecretRef, webhookSecretRef, webhookUrl and email",
                );
            }
            if let Some(url) = &channel.webhook_url {
                c.pattern(
                    format!("{at}.webhookUrl"),
                    url,
                    WEBHOOK_URL_PATTERN,
                    "an http(s) URL without spaces",
                );
            }
        }
    }
    if let Some(backend) = &spec.backend {
        if let Some(k) = backend
            .kubernetes
            .as_ref()
            .and_then(|k| k.secret_suffix.as_ref())
        {
            c.pattern(
                "spec.backend.kubernetes.secretSuffix",
                k,
                SECRET_SUFFIX_PATTERN,
                "a DNS label",
            );
        }
        if let Some(s3) = &backend.s3 {
            c.pattern(
                "spec.backend.s3.bucket",
                &s3.bucket,
                S3_BUCKET_PATTERN,
                "an S3 bucket name",
            );
            if let Some(region) = &s3.region {
                c.pattern(
                    "spec.backend.s3.region",
                    region,
                    AWS_REGION_PATTERN,
                    "an AWS region",
                );
            }
            if let Some(table) = &s3.dynamodb_table {
                c.pattern(
                    "spec.backend.s3.dynamodbTable",
                    table,
                    DYNAMODB_TABLE_PATTERN,
                    "a DynamoDB table name",
                );
            }
        }
    }
    if let Some(drift) = &spec.drift_detection {
        c.pattern(
            "spec.driftDetection.interval",
            &drift.interval,
            DURATION_PATTERN,
            "a duration such as 24h",
        );
    }
    health_checks(&mut c, &spec.health_checks);
    c.errors
}

/// `spec.healthChecks`: the schema's rules and its CEL rule, plus the timeout's bound.
fn health_checks(c: &mut Checker, checks: &[super::HealthCheck]) {
    c.max_items("spec.healthChecks", checks.len(), 10);
    let mut seen = std::collections::BTreeSet::new();
    for (i, check) in checks.iter().enumerate() {
        let at = format!("spec.healthChecks[{i}]");
        c.pattern(
            format!("{at}.name"),
            &check.name,
            COMPONENT_NAME_PATTERN,
            "a lowercase name",
        );
        if !seen.insert(&check.name) {
            c.fail(
                format!("{at}.name"),
                &check.name,
                "a name not used by another check",
            );
        }
        if check.url.is_some() == check.url_from_output.is_some() {
            c.fail(
                at.clone(),
                if check.url.is_some() {
                    "both"
                } else {
                    "neither"
                },
                "set exactly one of url and urlFromOutput",
            );
        }
        if let Some(url) = &check.url {
            c.pattern(
                format!("{at}.url"),
                url,
                WEBHOOK_URL_PATTERN,
                "an http(s) URL without spaces",
            );
        }
        if let Some(output) = &check.url_from_output {
            c.pattern(
                format!("{at}.urlFromOutput"),
                output,
                OUTPUT_NAME_PATTERN,
                "an output name such as web_url",
            );
        }
        if let Some(status) = check.expected_status
            && !(100..=599).contains(&status)
        {
            c.fail(
                format!("{at}.expectedStatus"),
                &status.to_string(),
                "an HTTP status code from 100 to 599",
            );
        }
        if let (Some(timeout), Err(allowed)) = (&check.timeout, crate::health::timeout_of(check)) {
            c.fail(format!("{at}.timeout"), timeout, allowed);
        }
        if let Some(retries) = check.retries
            && !(0..=10).contains(&retries)
        {
            c.fail(
                format!("{at}.retries"),
                &retries.to_string(),
                "from 0 to 10",
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors(spec: serde_json::Value) -> Vec<String> {
        let project: Project = serde_json::from_value(json!({"apiVersion": "tollgate.dev/v1alpha1", "kind": "Project", "metadata": {"name": "p"}, "spec": spec})).unwrap();
        validate_project(&project)
            .into_iter()
            .map(|e| e.to_string())
            .collect()
    }

    fn minimal() -> serde_json::Value {
        json!({"environment": "dev", "components": [{"name": "app", "module": "demo"}]})
    }

    #[test]
    fn every_schema_pattern_compiles() {
        for p in SCHEMA_PATTERNS {
            assert!(COMPILED.contains_key(p), "{p} does not compile");
        }
    }

    #[test]
    fn project_names_longer_than_a_label_value_are_refused() {
        let project = |name: &str| -> Project {
            serde_json::from_value(serde_json::json!({
                "apiVersion": "tollgate.dev/v1alpha1", "kind": "Project",
                "metadata": {"name": name, "namespace": "team-a"}, "spec": minimal()
            }))
            .unwrap()
        };
        assert!(validate_project(&project(&"a".repeat(63))).is_empty());
        let errors = validate_project(&project(&"a".repeat(64)));
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].to_string().contains("metadata.name"),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn a_minimal_project_is_valid() {
        assert!(errors(minimal()).is_empty());
    }

    #[test]
    fn each_rule_names_field_value_and_what_is_allowed() {
        let cases: Vec<(serde_json::Value, &str)> = vec![
            (
                json!({"environment": "Prod"}),
                "spec.environment: \"Prod\" is not allowed; expected a lowercase label",
            ),
            (
                json!({"components": []}),
                "spec.components: \"[]\" is not allowed; at least one component",
            ),
            (
                json!({"components": [{"name": "App", "module": "demo"}]}),
                "spec.components[0].name: \"App\"",
            ),
            (
                json!({"components": [{"name": "app", "module": "../etc"}]}),
                "spec.components[0].module: \"../etc\"",
            ),
            (
                json!({"cloud": {"aws": {"region": "mars-1", "accountId": "123456789012"}}}),
                "spec.cloud.aws.region: \"mars-1\"",
            ),
            (
                json!({"cloud": {"aws": {"region": "eu-west-1", "accountId": "1234"}}}),
                "spec.cloud.aws.accountId: \"1234\" is not allowed; expected a twelve-digit account id",
            ),
            (
                json!({"cloud": {"aws": {"region": "eu-west-1", "accountId": "123456789012", "credentials": {"assumeRole": {"roleArn": "arn:aws:iam::123456789012:role/x"}, "secretRef": {"name": "s"}}}}}),
                "set at most one of assumeRole and secretRef",
            ),
            (
                json!({"cloud": {"aws": {"region": "eu-west-1", "accountId": "123456789012", "credentials": {"assumeRole": {"roleArn": "arn:aws:iam::1:role/x"}}}}}),
                "assumeRole.roleArn",
            ),
            (
                json!({"cloud": {"aws": {"region": "eu-west-1", "accountId": "123456789012", "credentials": {"assumeRole": {"roleArn": "arn:aws:iam::123456789012:role/x", "sessionDuration": "1 hour"}}}}}),
                "sessionDuration: \"1 hour\"",
            ),
            (
                json!({"budget": {"monthlyLimit": "1e3"}}),
                "spec.budget.monthlyLimit: \"1e3\" is not allowed; expected a USD amount",
            ),
            (
                json!({"approval": {"costIncreaseThreshold": "-5"}}),
                "spec.approval.costIncreaseThreshold",
            ),
            (
                json!({"approval": {"sla": {"respondWithin": "soon"}}}),
                "spec.approval.sla.respondWithin",
            ),
            (
                json!({"approval": {"notifications": [{"name": "ops"}]}}),
                "spec.approval.notifications[0]: \"0 channel kinds\" is not allowed; set exactly one",
            ),
            (
                json!({"approval": {"notifications": [{"name": "ops", "webhookSecretRef": {"name": "a"}, "email": ["x@example.com"]}]}}),
                "spec.approval.notifications[0]: \"2 channel kinds\" is not allowed",
            ),
            (
                json!({"approval": {"notifications": [{"name": "ops", "webhookUrl": "ftp://x y"}]}}),
                "webhookUrl",
            ),
            (
                json!({"backend": {"type": "s3", "s3": {"bucket": "Bad_Bucket"}}}),
                "spec.backend.s3.bucket",
            ),
            (
                json!({"backend": {"kubernetes": {"secretSuffix": "-x"}}}),
                "spec.backend.kubernetes.secretSuffix",
            ),
            (
                json!({"driftDetection": {"interval": "daily"}}),
                "spec.driftDetection.interval",
            ),
            (
                json!({"healthChecks": [{"name": "web"}]}),
                "spec.healthChecks[0]: \"neither\" is not allowed; set exactly one of url and urlFromOutput",
            ),
            (
                json!({"healthChecks": [{"name": "web", "url": "http://a/", "urlFromOutput": "web_url"}]}),
                "spec.healthChecks[0]: \"both\"",
            ),
            (
                json!({"healthChecks": [{"name": "web", "url": "file:///etc/passwd"}]}),
                "spec.healthChecks[0].url",
            ),
            (
                json!({"healthChecks": [{"name": "web", "urlFromOutput": "web url"}]}),
                "spec.healthChecks[0].urlFromOutput",
            ),
            (
                json!({"healthChecks": [{"name": "a", "url": "http://a/"}, {"name": "a", "url": "http://b/"}]}),
                "spec.healthChecks[1].name: \"a\" is not allowed; a name not used by another check",
            ),
            (
                json!({"healthChecks": [{"name": "web", "url": "http://a/", "expectedStatus": 99}]}),
                "spec.healthChecks[0].expectedStatus",
            ),
            (
                json!({"healthChecks": [{"name": "web", "url": "http://a/", "timeout": "5m"}]}),
                "spec.healthChecks[0].timeout: \"5m\" is not allowed; at most 60s",
            ),
            (
                json!({"healthChecks": [{"name": "web", "url": "http://a/", "retries": 11}]}),
                "spec.healthChecks[0].retries",
            ),
        ];
        for (patch, expected) in cases {
            let mut spec = minimal();
            for (k, v) in patch.as_object().unwrap() {
                spec[k] = v.clone();
            }
            let found = errors(spec);
            assert!(
                found.iter().any(|e| e.contains(expected)),
                "expected an error containing {expected:?}, got {found:?}"
            );
        }
    }
}

//! The account allow-list: which namespaces may deploy into which AWS accounts, with which
//! roles and which kinds of credentials. Pure: the controller and `tollgate validate` read
//! the same file and ask the same question ([`AccountPolicy::check`]).
//!
//! ```yaml
//! rules:
//!   - name: team-a
//!     namespaces: [team-a]                      # names, and/or
//!     namespaceSelector: {matchLabels: {team: a}}
//!     accountIds: ["111111111111"]
//!     roleArns: ["arn:aws:iam::111111111111:role/tollgate-*"]   # `*` matches any run
//!     staticCredentials: false                  # credentials.secretRef
//!     ambientCredentials: false                 # no credentials: the controller's own identity
//! ```
//!
//! A Project with `spec.cloud.aws` is allowed only when one rule selects its namespace and
//! allows its account, and its role ARN (or static keys, or ambient credentials). Projects
//! without a cloud account need no rule.

use std::collections::BTreeMap;
use std::path::Path;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde::Deserialize;

use super::CredentialsError;
use crate::api::AwsCloud;
use crate::gate::effective::selects;

/// The controller's credentials configuration (`--credentials-config`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccountPolicy {
    /// The rules; a Project needs one that allows all it asks for.
    #[serde(default)]
    pub rules: Vec<AccountRule>,
}

/// One allow-list entry.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccountRule {
    /// Named in every refusal and in the Project's condition.
    pub name: String,
    /// Namespaces selected by name.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Namespaces selected by their labels (in addition to `namespaces`).
    #[serde(default)]
    pub namespace_selector: Option<LabelSelector>,
    /// Twelve-digit AWS account ids the namespaces may deploy into.
    #[serde(default)]
    pub account_ids: Vec<String>,
    /// Role ARNs the namespaces may assume; `*` matches any run of characters.
    #[serde(default)]
    pub role_arns: Vec<String>,
    /// Whether `credentials.secretRef` (long-lived keys) is allowed.
    #[serde(default)]
    pub static_credentials: bool,
    /// Whether a Project may omit `credentials` and act as the controller itself.
    #[serde(default)]
    pub ambient_credentials: bool,
}

/// How a Project asks for credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialKind<'a> {
    /// `assumeRole` with this role ARN.
    AssumeRole(&'a str),
    /// `secretRef`.
    Static,
    /// Nothing: the controller's own identity.
    Ambient,
}

impl<'a> CredentialKind<'a> {
    /// What `aws` asks for.
    pub fn of(aws: &'a AwsCloud) -> Self {
        let credentials = aws.credentials.as_ref();
        if let Some(role) = credentials.and_then(|c| c.assume_role.as_ref()) {
            CredentialKind::AssumeRole(&role.role_arn)
        } else if credentials.is_some_and(|c| c.secret_ref.is_some()) {
            CredentialKind::Static
        } else {
            CredentialKind::Ambient
        }
    }
}

/// Why the allow-list refuses a Project. The text names the rules that were considered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// Condition reason, e.g. `AccountNotAllowed`.
    pub reason: &'static str,
    /// What is refused, by which rules, and what to do.
    pub message: String,
}

/// What the allow-list grants a Project.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The rule that allows it.
    pub rule: String,
    /// The Project uses long-lived keys: allowed, but temporary credentials are preferred.
    pub static_keys: bool,
}

impl AccountPolicy {
    /// Reads the YAML file at `path`; unknown fields are errors (a typo must not widen access).
    pub fn load(path: &Path) -> Result<Self, CredentialsError> {
        let text = std::fs::read_to_string(path).map_err(|source| CredentialsError::Config {
            path: path.to_path_buf(),
            message: source.to_string(),
        })?;
        Self::parse(&text).map_err(|message| CredentialsError::Config {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Parses and checks the YAML text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let policy: AccountPolicy = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
        for rule in &policy.rules {
            if rule.name.is_empty() {
                return Err("every rule needs a name".into());
            }
            if rule.namespaces.is_empty() && rule.namespace_selector.is_none() {
                return Err(format!(
                    "rule {}: set namespaces or namespaceSelector (a rule for no namespace allows nothing)",
                    rule.name
                ));
            }
            if let Some(bad) = rule
                .account_ids
                .iter()
                .find(|a| a.len() != 12 || !a.bytes().all(|b| b.is_ascii_digit()))
            {
                return Err(format!(
                    "rule {}: accountIds: `{bad}` is not a twelve-digit AWS account id (quote it in YAML)",
                    rule.name
                ));
            }
        }
        Ok(policy)
    }

    /// Whether a Project in `namespace` (with `labels`) may deploy into `aws` as it asks.
    pub fn check(
        &self,
        namespace: &str,
        labels: &BTreeMap<String, String>,
        aws: &AwsCloud,
    ) -> Result<Grant, Refusal> {
        let kind = CredentialKind::of(aws);
        let rules: Vec<&AccountRule> = self
            .rules
            .iter()
            .filter(|r| {
                r.namespaces.iter().any(|n| n == namespace)
                    || r.namespace_selector
                        .as_ref()
                        .is_some_and(|s| selects(s, labels))
            })
            .collect();
        if rules.is_empty() {
            return Err(Refusal {
                reason: "NamespaceNotAllowed",
                message: format!(
                    "no rule of the controller's credentials configuration selects namespace {namespace}: it may not deploy into any AWS account; ask the platform team for a rule"
                ),
            });
        }
        let names = || {
            rules
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let for_account: Vec<&AccountRule> = rules
            .iter()
            .copied()
            .filter(|r| r.account_ids.contains(&aws.account_id))
            .collect();
        if for_account.is_empty() {
            let allowed: Vec<&str> = rules
                .iter()
                .flat_map(|r| r.account_ids.iter().map(String::as_str))
                .collect();
            return Err(Refusal {
                reason: "AccountNotAllowed",
                message: format!(
                    "account {} is not allowed for namespace {namespace}: rule(s) {} allow only [{}]",
                    aws.account_id,
                    names(),
                    allowed.join(", ")
                ),
            });
        }
        let grant = for_account.iter().find(|r| match kind {
            CredentialKind::AssumeRole(arn) => r.role_arns.iter().any(|p| glob(p, arn)),
            CredentialKind::Static => r.static_credentials,
            CredentialKind::Ambient => r.ambient_credentials,
        });
        if let Some(rule) = grant {
            return Ok(Grant {
                rule: rule.name.clone(),
                static_keys: kind == CredentialKind::Static,
            });
        }
        let rules = for_account
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        Err(match kind {
            CredentialKind::AssumeRole(arn) => Refusal {
                reason: "RoleNotAllowed",
                message: format!(
                    "role {arn} is not allowed for namespace {namespace} in account {}: rule(s) {rules} allow only roles matching [{}]",
                    aws.account_id,
                    for_account
                        .iter()
                        .flat_map(|r| r.role_arns.iter().map(String::as_str))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            },
            CredentialKind::Static => Refusal {
                reason: "StaticCredentialsNotAllowed",
                message: format!(
                    "credentials.secretRef (long-lived keys) is not allowed for namespace {namespace} in account {}: rule(s) {rules} do not set staticCredentials; use credentials.assumeRole",
                    aws.account_id
                ),
            },
            CredentialKind::Ambient => Refusal {
                reason: "AmbientCredentialsNotAllowed",
                message: format!(
                    "a Project in namespace {namespace} must say how to reach account {}: rule(s) {rules} do not allow the controller's own identity (ambientCredentials); set credentials.assumeRole",
                    aws.account_id
                ),
            },
        })
    }
}

/// `*` matches any run of characters (including none); everything else is literal.
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let [first, middle @ .., last] = parts.as_slice() else {
        // No `*`: the pattern is the text.
        return pattern == text;
    };
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
rules:
  - name: team-a
    namespaces: [team-a]
    accountIds: ["111111111111"]
    roleArns: ["arn:aws:iam::111111111111:role/tollgate-*"]
  - name: labelled
    namespaceSelector: {matchLabels: {team: b}}
    accountIds: ["222222222222"]
    roleArns: ["arn:aws:iam::222222222222:role/deploy"]
    staticCredentials: true
"#;

    fn aws(account: &str, credentials: serde_json::Value) -> AwsCloud {
        serde_json::from_value(serde_json::json!({"region": "eu-west-1", "accountId": account, "credentials": credentials})).unwrap()
    }

    fn role(arn: &str) -> serde_json::Value {
        serde_json::json!({"assumeRole": {"roleArn": arn}})
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    #[test]
    fn a_team_reaches_its_own_account_and_role_only() {
        let policy = AccountPolicy::parse(CONFIG).unwrap();
        let none = labels(&[]);
        let ok = policy
            .check(
                "team-a",
                &none,
                &aws(
                    "111111111111",
                    role("arn:aws:iam::111111111111:role/tollgate-shop"),
                ),
            )
            .unwrap();
        assert_eq!(ok.rule, "team-a");
        // Another team's account: refused, naming the rule and what it allows.
        let refused = policy
            .check(
                "team-a",
                &none,
                &aws(
                    "222222222222",
                    role("arn:aws:iam::222222222222:role/deploy"),
                ),
            )
            .unwrap_err();
        assert_eq!(refused.reason, "AccountNotAllowed");
        assert!(
            refused
                .message
                .contains("rule(s) team-a allow only [111111111111]")
        );
        // Its own account, a role outside the pattern.
        let refused = policy
            .check(
                "team-a",
                &none,
                &aws("111111111111", role("arn:aws:iam::111111111111:role/admin")),
            )
            .unwrap_err();
        assert_eq!(refused.reason, "RoleNotAllowed");
        assert!(
            refused.message.contains("tollgate-*"),
            "{}",
            refused.message
        );
        // Ambient and static credentials are not allowed by this rule.
        let ambient = policy
            .check("team-a", &none, &aws("111111111111", serde_json::json!({})))
            .unwrap_err();
        assert_eq!(ambient.reason, "AmbientCredentialsNotAllowed");
        let static_keys = policy
            .check(
                "team-a",
                &none,
                &aws(
                    "111111111111",
                    serde_json::json!({"secretRef": {"name": "keys"}}),
                ),
            )
            .unwrap_err();
        assert_eq!(static_keys.reason, "StaticCredentialsNotAllowed");
        // A namespace no rule selects.
        let unknown = policy
            .check(
                "team-c",
                &none,
                &aws(
                    "111111111111",
                    role("arn:aws:iam::111111111111:role/tollgate-x"),
                ),
            )
            .unwrap_err();
        assert_eq!(unknown.reason, "NamespaceNotAllowed");
    }

    #[test]
    fn label_selectors_and_static_keys() {
        let policy = AccountPolicy::parse(CONFIG).unwrap();
        let team_b = labels(&[("team", "b")]);
        let grant = policy
            .check(
                "anything",
                &team_b,
                &aws(
                    "222222222222",
                    serde_json::json!({"secretRef": {"name": "keys"}}),
                ),
            )
            .unwrap();
        assert!(grant.static_keys);
        assert_eq!(grant.rule, "labelled");
        // The same namespace without the label is not selected.
        assert!(
            policy
                .check(
                    "anything",
                    &labels(&[("team", "a")]),
                    &aws(
                        "222222222222",
                        role("arn:aws:iam::222222222222:role/deploy")
                    )
                )
                .is_err()
        );
    }

    #[test]
    fn the_file_is_strict() {
        assert!(
            AccountPolicy::parse("rules: [{name: x, namespaces: [a], accountId: ['1']}]")
                .unwrap_err()
                .contains("accountId")
        );
        assert!(
            AccountPolicy::parse("rules: [{name: x, accountIds: ['111111111111']}]")
                .unwrap_err()
                .contains("namespaces or namespaceSelector")
        );
        assert!(
            AccountPolicy::parse("rules: [{name: x, namespaces: [a], accountIds: [111]}]").is_err()
        );
    }

    #[test]
    fn globs_match_whole_strings() {
        assert!(glob("arn:aws:iam::1:role/tg-*", "arn:aws:iam::1:role/tg-a"));
        assert!(glob("arn:aws:iam::1:role/tg-*", "arn:aws:iam::1:role/tg-"));
        assert!(!glob(
            "arn:aws:iam::1:role/tg-*",
            "arn:aws:iam::2:role/tg-a"
        ));
        assert!(glob("*:role/x", "arn:aws:iam::1:role/x"));
        assert!(!glob("*:role/x", "arn:aws:iam::1:role/xy"));
        assert!(glob("a*b*c", "abbbc"));
        assert!(!glob("a*b*c", "acb"));
        assert!(!glob("ab*ba", "aba"));
        assert!(glob("exact", "exact"));
        assert!(!glob("exact", "exactly"));
    }
}

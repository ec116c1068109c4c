//! Policy as code: Rego policies (OPA-compatible, evaluated in-process by regorus) over the
//! exact saved plan tollgate would apply, before the gate.
//!
//! The input is Terraform's own `show -json` document, so policies written for conftest
//! work unchanged; tollgate adds one key Terraform never writes, `input.tollgate`, with the
//! Project (namespace, name, environment, labels) and the cost estimate. Every package's
//! `deny` (blocks: a person with `approve` must decide) and `warn` (shown) rules are read,
//! as `conftest --all-namespaces` does.
//!
//! Policies come in groups evaluated in separate engines: the built-in pack with the
//! cluster's policies (owned by TOs) in one, a namespace's own policies in another. A
//! namespace can add findings but cannot redefine a rule or helper of the pack. A policy
//! that does not parse or evaluate is an error, and the caller blocks on it: a broken
//! policy never silently allows a plan.

mod builtin;
mod evaluate;
pub mod testing;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use builtin::BUILTIN_PACK;
pub use evaluate::{Findings, PolicyInput, ProjectFacts};

/// Label that makes a ConfigMap's `*.rego` keys policies.
pub const POLICY_LABEL: &str = "tollgate.dev/policy";
/// Annotation narrowing a policy ConfigMap to some environments (comma-separated).
pub const ENVIRONMENTS_ANNOTATION: &str = "tollgate.dev/policy-environments";

/// Why policies could not be loaded or evaluated.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A policy is not valid Rego.
    #[error(
        "policy {origin} is not valid Rego: {message}; fix it (until then every plan it applies to waits for a person)"
    )]
    Parse {
        /// Where the policy came from (file, or ConfigMap and key).
        origin: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// Evaluating a rule failed.
    #[error(
        "policy rule {rule} ({group}) failed: {message}; fix the policy (until then every plan it applies to waits for a person)"
    )]
    Evaluate {
        /// The group of policies.
        group: String,
        /// The rule path.
        rule: String,
        /// The interpreter's message.
        message: String,
    },
    /// A `deny`/`warn` rule produced something other than messages.
    #[error(
        "policy rule {rule} ({group}) must be a set of strings or of objects with a `msg` string, found {found}"
    )]
    Result {
        /// The group of policies.
        group: String,
        /// The rule path.
        rule: String,
        /// What it produced.
        found: String,
    },
    /// The plan or Project could not be handed to the interpreter.
    #[error("the policy input could not be built: {0}")]
    Input(String),
    /// A policy file or directory could not be read.
    #[error("cannot read policies from {path}: {source}")]
    Read {
        /// The path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The policy configuration is invalid.
    #[error("policy configuration {path}: {message}")]
    Config {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// Settings of the built-in pack (the controller's `--policy-config`, also
/// `tollgate policy eval --config`); every rule reads them as `data.tollgate.config`.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Tags every taggable resource must carry (checked on `tags_all`, so the provider's
    /// `default_tags` count).
    pub required_tags: Vec<String>,
    /// Environments where databases need deletion protection.
    pub production_environments: Vec<String>,
    /// Remote administration ports that must not be open to 0.0.0.0/0 or ::/0.
    pub admin_ports: Vec<u16>,
    /// Allowed instance types (glob patterns such as `m7i.*`) per environment; an
    /// environment not listed has no restriction.
    pub instance_types: BTreeMap<String, Vec<String>>,
    /// Built-in rules turned off, by id (for example `S3_ENCRYPTION`).
    pub disabled_rules: Vec<String>,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            required_tags: vec![
                format!("{}/project", crate::render::TAG_PREFIX),
                format!("{}/environment", crate::render::TAG_PREFIX),
            ],
            production_environments: vec!["production".into(), "prod".into()],
            admin_ports: vec![22, 3389, 5985, 5986],
            instance_types: BTreeMap::new(),
            disabled_rules: Vec::new(),
        }
    }
}

impl PolicyConfig {
    /// Reads a configuration file (YAML or JSON); unknown keys are errors.
    pub fn from_yaml(path: &str, text: &str) -> Result<Self, PolicyError> {
        serde_saphyr::from_str(text).map_err(|err| PolicyError::Config {
            path: path.to_owned(),
            message: err.to_string(),
        })
    }
}

/// One Rego file and where it came from (named in errors and findings).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PolicySource {
    /// File path, or `configmap <namespace>/<name> <key>`.
    pub origin: String,
    /// The Rego text.
    pub text: String,
}

/// Policies evaluated together in one engine.
#[derive(Clone, Debug)]
pub struct PolicyGroup {
    /// What the group is, for findings and errors (`cluster`, `namespace team-a`).
    pub name: String,
    /// Its files.
    pub sources: Vec<PolicySource>,
}

/// Every policy a plan is judged by, with the built-in pack's settings.
#[derive(Clone, Debug)]
pub struct PolicySet {
    groups: Vec<PolicyGroup>,
    config: PolicyConfig,
}

impl PolicySet {
    /// The built-in pack plus `cluster` policies in one group, and the namespace's own in
    /// another (when there are any).
    pub fn new(
        cluster: Vec<PolicySource>,
        namespace: Option<(String, Vec<PolicySource>)>,
        config: PolicyConfig,
    ) -> Self {
        let mut first = builtin::builtin_sources();
        first.extend(cluster);
        let mut groups = vec![PolicyGroup {
            name: "built-in and cluster policies".into(),
            sources: first,
        }];
        if let Some((ns, sources)) = namespace.filter(|(_, s)| !s.is_empty()) {
            groups.push(PolicyGroup {
                name: format!("policies of namespace {ns}"),
                sources,
            });
        }
        Self { groups, config }
    }

    /// sha256 over every policy's origin and text and the configuration: part of the plan
    /// key, so changing a policy judges the Project's plan again.
    pub fn digest(&self) -> String {
        let mut hasher = Sha256::new();
        let config = serde_json::to_string(&self.config).unwrap_or_default();
        hasher.update(config.as_bytes());
        for group in &self.groups {
            hasher.update(format!("\0group\0{}", group.name).as_bytes());
            let mut sources: Vec<&PolicySource> = group.sources.iter().collect();
            sources.sort();
            for source in sources {
                hasher.update(format!("\0{}\0{}", source.origin, source.text).as_bytes());
            }
        }
        hex::encode(hasher.finalize())
    }

    /// Judges a plan: every `deny` and `warn` of every package of every group.
    pub fn evaluate(&self, input: &PolicyInput<'_>) -> Result<Findings, PolicyError> {
        evaluate::evaluate(&self.groups, &self.config, input)
    }
}

/// One `deny` or `warn` message and the package that produced it.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// The Rego package (`data.tollgate.builtin.s3`).
    pub package: String,
    /// The rule's message.
    pub message: String,
}

/// Whether a ConfigMap annotated with `environments` (comma-separated, or absent for all)
/// applies to `environment`.
pub fn applies_to_environment(environments: Option<&str>, environment: &str) -> bool {
    environments.is_none_or(|list| list.split(',').any(|e| e.trim() == environment))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;

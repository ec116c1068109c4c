//! The webhook configurations that send Checkpoint status updates and Project writes to
//! tollgate's webhook. Generated rather than hand-written, so the paths, rules and failure
//! policy cannot drift from the server; the e2e tests and a Helm chart use the same code.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhook, MutatingWebhookConfiguration, RuleWithOperations, ServiceReference,
    ValidatingWebhook, ValidatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::ObjectMeta;

use crate::api::{GROUP, VERSION};

/// Mutating endpoint for `checkpoints/status` updates: stamps `decidedBy`/`decidedAt`.
pub const MUTATE_CHECKPOINT_STATUS_PATH: &str = "/mutate-checkpoint-status";
/// Validating endpoint for `checkpoints/status` updates: RBAC, approvers, four eyes.
pub const VALIDATE_CHECKPOINT_STATUS_PATH: &str = "/validate-checkpoint-status";
/// Mutating endpoint for Project creates and updates: records who changed the spec.
pub const MUTATE_PROJECT_PATH: &str = "/mutate-project";

/// How the configurations are named and scoped.
#[derive(Clone, Debug, PartialEq)]
pub struct Registration {
    /// `metadata.name` of both configurations.
    pub name: String,
    /// Labels on both configurations.
    pub labels: BTreeMap<String, String>,
    /// Only namespaces matching this selector are sent to the webhook (`None`: all).
    pub namespace_selector: Option<LabelSelector>,
    /// How long the apiserver waits for an answer before failing the request.
    pub timeout_seconds: i32,
}

impl Default for Registration {
    fn default() -> Self {
        Self {
            name: "tollgate".to_owned(),
            labels: BTreeMap::from([("app.kubernetes.io/name".to_owned(), "tollgate".to_owned())]),
            namespace_selector: None,
            // Leaves the SubjectAccessReview (bounded by the server) room inside the
            // apiserver's own 30 s request timeout for both webhooks in sequence.
            timeout_seconds: 10,
        }
    }
}

/// The default configurations (named `tollgate`, all namespaces) for a webhook served at
/// `url_base` (e.g. `https://tollgate-webhook.tollgate-system.svc:8443` or
/// `https://127.0.0.1:9443`) whose serving certificate is signed by `ca_bundle_pem`.
pub fn webhook_configurations(
    url_base: &str,
    ca_bundle_pem: &[u8],
) -> (MutatingWebhookConfiguration, ValidatingWebhookConfiguration) {
    Registration::default().configurations(url_base, ca_bundle_pem)
}

/// Where the apiserver reaches the webhook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WebhookTarget {
    /// A base URL the apiserver itself resolves, e.g. `https://127.0.0.1:9443` (a controller
    /// out of the cluster).
    Url(String),
    /// A Service in the cluster (the controller's Deployment).
    Service {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// Its port (443 by default in the chart).
        port: i32,
    },
}

impl WebhookTarget {
    /// The names a serving certificate for this target must carry: the URL's host, or the
    /// Service's DNS names.
    pub fn certificate_names(&self) -> Vec<String> {
        match self {
            Self::Url(url) => {
                let rest = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
                let authority = rest.split('/').next().unwrap_or_default();
                let host = if let Some(bracketed) = authority.strip_prefix('[') {
                    bracketed.split(']').next().unwrap_or_default()
                } else {
                    authority
                        .rsplit_once(':')
                        .map_or(authority, |(host, _)| host)
                };
                vec![host.to_owned()]
            }
            Self::Service {
                namespace, name, ..
            } => vec![
                format!("{name}.{namespace}.svc"),
                format!("{name}.{namespace}.svc.cluster.local"),
                format!("{name}.{namespace}"),
                name.clone(),
            ],
        }
    }

    fn client_config(&self, path: &str, ca_bundle_pem: &[u8]) -> WebhookClientConfig {
        let ca_bundle = Some(ByteString(ca_bundle_pem.to_vec()));
        match self {
            Self::Url(url_base) => WebhookClientConfig {
                url: Some(format!("{}{path}", url_base.trim_end_matches('/'))),
                ca_bundle,
                service: None,
            },
            Self::Service {
                namespace,
                name,
                port,
            } => WebhookClientConfig {
                url: None,
                ca_bundle,
                service: Some(ServiceReference {
                    namespace: namespace.clone(),
                    name: name.clone(),
                    path: Some(path.to_owned()),
                    port: Some(*port),
                }),
            },
        }
    }
}

impl Registration {
    /// The configurations for a webhook served at `url_base`, trusted through
    /// `ca_bundle_pem`. Both fail closed (`failurePolicy: Fail`): if tollgate cannot answer,
    /// nobody decides and no Project changes unrecorded.
    pub fn configurations(
        &self,
        url_base: &str,
        ca_bundle_pem: &[u8],
    ) -> (MutatingWebhookConfiguration, ValidatingWebhookConfiguration) {
        self.configurations_for(&WebhookTarget::Url(url_base.to_owned()), ca_bundle_pem)
    }

    /// The configurations for a webhook at `target` (URL or Service), trusted through
    /// `ca_bundle_pem`.
    pub fn configurations_for(
        &self,
        target: &WebhookTarget,
        ca_bundle_pem: &[u8],
    ) -> (MutatingWebhookConfiguration, ValidatingWebhookConfiguration) {
        let client = |path: &str| target.client_config(path, ca_bundle_pem);
        let metadata = ObjectMeta {
            name: Some(self.name.clone()),
            labels: (!self.labels.is_empty()).then(|| self.labels.clone()),
            ..Default::default()
        };
        let checkpoint_status = rule("checkpoints/status", &["UPDATE"]);
        let projects = rule("projects", &["CREATE", "UPDATE"]);
        let mutating = MutatingWebhookConfiguration {
            metadata: metadata.clone(),
            webhooks: Some(vec![
                self.mutating(
                    "checkpoint-status.mutate.tollgate.dev",
                    client(MUTATE_CHECKPOINT_STATUS_PATH),
                    checkpoint_status.clone(),
                ),
                self.mutating(
                    "project.mutate.tollgate.dev",
                    client(MUTATE_PROJECT_PATH),
                    projects,
                ),
            ]),
        };
        let validating = ValidatingWebhookConfiguration {
            metadata,
            webhooks: Some(vec![ValidatingWebhook {
                name: "checkpoint-status.validate.tollgate.dev".to_owned(),
                client_config: client(VALIDATE_CHECKPOINT_STATUS_PATH),
                rules: Some(vec![checkpoint_status]),
                failure_policy: Some("Fail".to_owned()),
                match_policy: Some("Equivalent".to_owned()),
                side_effects: "None".to_owned(),
                admission_review_versions: vec!["v1".to_owned()],
                timeout_seconds: Some(self.timeout_seconds),
                namespace_selector: self.namespace_selector.clone(),
                ..Default::default()
            }]),
        };
        (mutating, validating)
    }

    fn mutating(
        &self,
        name: &str,
        client_config: WebhookClientConfig,
        rule: RuleWithOperations,
    ) -> MutatingWebhook {
        MutatingWebhook {
            name: name.to_owned(),
            client_config,
            rules: Some(vec![rule]),
            failure_policy: Some("Fail".to_owned()),
            match_policy: Some("Equivalent".to_owned()),
            // The validating webhook checks the stamp after every mutation, so a later
            // webhook rewriting `decidedBy` is refused rather than re-stamped.
            reinvocation_policy: Some("Never".to_owned()),
            side_effects: "None".to_owned(),
            admission_review_versions: vec!["v1".to_owned()],
            timeout_seconds: Some(self.timeout_seconds),
            namespace_selector: self.namespace_selector.clone(),
            ..Default::default()
        }
    }
}

/// Whether the configurations named for this controller are in place and trust the
/// certificate it serves: both exist, every webhook in them carries a caBundle, and
/// `serving_cert_pem`'s first certificate chains to a CA in each bundle. The error is the
/// reason, for `/readyz` and the log.
pub fn verify_registration(
    name: &str,
    mutating: Option<&MutatingWebhookConfiguration>,
    validating: Option<&ValidatingWebhookConfiguration>,
    serving_cert_pem: &[u8],
    now: std::time::SystemTime,
) -> Result<(), String> {
    let leaf = super::certs::first_cert(serving_cert_pem)
        .ok_or_else(|| "the serving certificate file holds no PEM certificate".to_owned())?;
    let mutating = mutating.ok_or_else(|| {
        format!("MutatingWebhookConfiguration {name} is missing; run `tollgate webhook configure`")
    })?;
    let validating = validating.ok_or_else(|| {
        format!(
            "ValidatingWebhookConfiguration {name} is missing; run `tollgate webhook configure`"
        )
    })?;
    let bundles = mutating
        .webhooks
        .iter()
        .flatten()
        .map(|w| {
            (
                format!("MutatingWebhookConfiguration {name}"),
                &w.name,
                &w.client_config,
            )
        })
        .chain(validating.webhooks.iter().flatten().map(|w| {
            (
                format!("ValidatingWebhookConfiguration {name}"),
                &w.name,
                &w.client_config,
            )
        }))
        .collect::<Vec<_>>();
    if bundles.is_empty() {
        return Err(format!(
            "the webhook configurations {name} hold no webhooks"
        ));
    }
    for (kind, webhook, client) in bundles {
        let bundle = client
            .ca_bundle
            .as_ref()
            .map(|b| b.0.as_slice())
            .unwrap_or_default();
        if bundle.is_empty() {
            return Err(format!("{kind}, webhook {webhook}: no caBundle set yet"));
        }
        super::certs::verifies(&leaf, bundle, now).map_err(|e| {
            format!(
                "{kind}, webhook {webhook}: its caBundle does not verify the certificate this controller serves ({e}); run `tollgate webhook configure` again"
            )
        })?;
    }
    Ok(())
}

fn rule(resource: &str, operations: &[&str]) -> RuleWithOperations {
    RuleWithOperations {
        api_groups: Some(vec![GROUP.to_owned()]),
        api_versions: Some(vec![VERSION.to_owned()]),
        resources: Some(vec![resource.to_owned()]),
        operations: Some(operations.iter().map(|o| (*o).to_owned()).collect()),
        scope: Some("Namespaced".to_owned()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn configurations_fail_closed_and_point_at_the_server_paths() {
        let (mutating, validating) =
            webhook_configurations("https://127.0.0.1:9443/", b"-----BEGIN CERTIFICATE-----\n");
        let mutating = serde_json::to_value(&mutating).unwrap();
        let validating = serde_json::to_value(&validating).unwrap();
        assert_eq!(mutating["metadata"]["name"], "tollgate");
        let hooks = mutating["webhooks"].as_array().unwrap();
        assert_eq!(hooks.len(), 2);
        assert_eq!(
            hooks[0]["clientConfig"]["url"],
            "https://127.0.0.1:9443/mutate-checkpoint-status"
        );
        assert_eq!(
            hooks[1]["clientConfig"]["url"],
            "https://127.0.0.1:9443/mutate-project"
        );
        assert_eq!(
            hooks[0]["rules"],
            json!([{"apiGroups": ["tollgate.dev"], "apiVersions": ["v1alpha1"], "resources": ["checkpoints/status"], "operations": ["UPDATE"], "scope": "Namespaced"}])
        );
        assert_eq!(hooks[1]["rules"][0]["resources"], json!(["projects"]));
        assert_eq!(
            hooks[1]["rules"][0]["operations"],
            json!(["CREATE", "UPDATE"])
        );
        let vhook = &validating["webhooks"][0];
        assert_eq!(
            vhook["clientConfig"]["url"],
            "https://127.0.0.1:9443/validate-checkpoint-status"
        );
        for hook in hooks.iter().chain([vhook]) {
            assert_eq!(hook["failurePolicy"], "Fail");
            assert_eq!(hook["sideEffects"], "None");
            assert_eq!(hook["admissionReviewVersions"], json!(["v1"]));
            assert_eq!(hook["timeoutSeconds"], 10);
            // ByteString serialises as base64, as the API expects.
            assert_eq!(
                hook["clientConfig"]["caBundle"],
                "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg=="
            );
            assert!(hook.get("namespaceSelector").is_none());
        }
    }

    #[test]
    fn service_targets_and_their_certificate_names() {
        let target = WebhookTarget::Service {
            namespace: "tollgate-system".into(),
            name: "tollgate-webhook".into(),
            port: 443,
        };
        let (mutating, _) = Registration::default().configurations_for(&target, b"CA");
        let hook = serde_json::to_value(&mutating.webhooks.unwrap()[1]).unwrap();
        assert_eq!(
            hook["clientConfig"],
            json!({"caBundle": "Q0E=", "service": {"namespace": "tollgate-system", "name": "tollgate-webhook", "path": "/mutate-project", "port": 443}})
        );
        assert_eq!(
            target.certificate_names()[0],
            "tollgate-webhook.tollgate-system.svc"
        );
        for (url, host) in [
            ("https://127.0.0.1:9443", "127.0.0.1"),
            ("https://[::1]:9443/", "::1"),
            ("https://tollgate.example", "tollgate.example"),
        ] {
            assert_eq!(
                WebhookTarget::Url(url.into()).certificate_names(),
                vec![host.to_owned()]
            );
        }
    }

    #[test]
    fn verify_registration_names_what_is_wrong() {
        use std::time::{Duration, SystemTime};
        let now = SystemTime::now();
        let names = vec!["127.0.0.1".to_owned()];
        let year = Duration::from_secs(365 * 86_400);
        let good = crate::admission::certs::issue(&names, year, None, now).unwrap();
        let other = crate::admission::certs::issue(&names, year, None, now).unwrap();
        let (m, v) = webhook_configurations("https://127.0.0.1:9443", good.ca_pem.as_bytes());
        let serving = good.cert_pem.as_bytes();
        verify_registration("tollgate", Some(&m), Some(&v), serving, now).unwrap();
        let err = verify_registration("tollgate", None, Some(&v), serving, now).unwrap_err();
        assert!(
            err.contains("MutatingWebhookConfiguration tollgate is missing"),
            "{err}"
        );
        let err = verify_registration("tollgate", Some(&m), None, serving, now).unwrap_err();
        assert!(
            err.contains("ValidatingWebhookConfiguration tollgate is missing"),
            "{err}"
        );
        let (_, v_other) =
            webhook_configurations("https://127.0.0.1:9443", other.ca_pem.as_bytes());
        let err =
            verify_registration("tollgate", Some(&m), Some(&v_other), serving, now).unwrap_err();
        assert!(err.contains("does not verify the certificate"), "{err}");
        let (m_empty, _) = webhook_configurations("https://127.0.0.1:9443", b"");
        let err =
            verify_registration("tollgate", Some(&m_empty), Some(&v), serving, now).unwrap_err();
        assert!(err.contains("no caBundle set yet"), "{err}");
    }

    #[test]
    fn registration_names_and_scopes_both() {
        let selector = LabelSelector {
            match_labels: Some(BTreeMap::from([("e2e".to_owned(), "1".to_owned())])),
            ..Default::default()
        };
        let registration = Registration {
            name: "tollgate-e2e-1".to_owned(),
            namespace_selector: Some(selector.clone()),
            ..Default::default()
        };
        let (mutating, validating) = registration.configurations("https://x", b"");
        assert_eq!(mutating.metadata.name.as_deref(), Some("tollgate-e2e-1"));
        assert_eq!(validating.metadata.name.as_deref(), Some("tollgate-e2e-1"));
        for hook in mutating.webhooks.unwrap() {
            assert_eq!(hook.namespace_selector.as_ref(), Some(&selector));
        }
        assert_eq!(
            validating.webhooks.unwrap()[0].namespace_selector.as_ref(),
            Some(&selector)
        );
    }
}

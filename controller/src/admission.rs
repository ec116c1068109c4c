//! Admission webhook: what makes a decision on a Checkpoint trustworthy.
//!
//! Kubernetes RBAC alone cannot express tollgate's rules: whoever may write
//! `checkpoints/status` could type any `decidedBy`, change a decision after the fact or
//! approve their own change. The apiserver therefore sends every Checkpoint status update
//! and every Project create/update here:
//!
//! - [`checkpoint`] (pure): only people decide, once; deciding needs the RBAC verb
//!   `approve` on `checkpoints.tollgate.dev` (asked of the apiserver with a
//!   SubjectAccessReview, like CertificateSigningRequest approval), membership of the
//!   checkpoint's approvers and, when asked for, four eyes; `decidedBy`/`decidedAt` come from
//!   the authenticated request, never from what the user typed. The controller's own
//!   identity writes everything else in status, but never a decision.
//! - [`project`] (pure): the annotation [`crate::api::LAST_CHANGED_BY_ANNOTATION`] records
//!   who last changed a Project's spec, from the authenticated request.
//! - [`server`]: the HTTPS endpoints, fail-closed (any error denies, with the reason).
//! - [`registration`]: the `MutatingWebhookConfiguration` and
//!   `ValidatingWebhookConfiguration` that point the apiserver at the endpoints.
//!
//! The pure parts take kube's [`AdmissionRequest`] and return a [`Verdict`]; the only I/O
//! (the SubjectAccessReview) is done by the server and passed in as a boolean, so every
//! rule is unit-tested with a table of cases.

use std::collections::BTreeSet;

use json_patch::PatchOperation;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse};

pub mod certs;
pub mod checkpoint;
pub mod project;
pub mod registration;
pub mod seal_key;
pub mod server;

pub use checkpoint::{
    approval_access_review, mutate_checkpoint_status, validate_checkpoint_status,
};
pub use project::mutate_project;
pub use registration::{
    MUTATE_CHECKPOINT_STATUS_PATH, MUTATE_PROJECT_PATH, Registration,
    VALIDATE_CHECKPOINT_STATUS_PATH, WebhookTarget, verify_registration, webhook_configurations,
};
pub use server::{HEALTHZ_PATH, Webhook, WebhookConfig, serve};

/// The admission request type every endpoint receives: the object stays untyped so that a
/// field tollgate does not know yet is compared and never silently dropped.
pub type Request = AdmissionRequest<DynamicObject>;

/// Errors of the webhook server. The pure rules never fail: they deny.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The decision seal key could not be loaded or created.
    #[error(
        "cannot load the decision seal key from Secret {secret}: {message}; the controller needs get and create on that Secret (deploy/controller-rbac.yaml) and its namespace must exist, or point --decision-key-secret elsewhere"
    )]
    SealKey {
        /// `namespace/name` of the Secret.
        secret: String,
        /// What went wrong.
        message: String,
    },
    /// The serving certificate or key could not be read.
    #[error(
        "cannot read the webhook's TLS {what} from {path}: {source}; point --webhook-cert/--webhook-key at PEM files the process can read"
    )]
    ReadPem {
        /// `certificate` or `private key`.
        what: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    /// The certificate file holds no certificate.
    #[error(
        "{path} holds no PEM certificate; the webhook needs a serving certificate (chain) signed by the CA in the webhook configuration's caBundle"
    )]
    NoCertificate {
        /// The file.
        path: std::path::PathBuf,
    },
    /// rustls refused the certificate/key pair.
    #[error(
        "the webhook's TLS certificate and key do not form a usable pair: {0}; check that the key belongs to the certificate"
    )]
    Tls(#[from] tokio_rustls::rustls::Error),
    /// The listen address could not be bound.
    #[error(
        "cannot listen on {addr} for the admission webhook: {source}; choose a free address with --webhook-listen"
    )]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The bound address could not be read back.
    #[error("cannot read the webhook's listening address: {0}")]
    LocalAddr(#[source] std::io::Error),
}

/// Who the tollgate controller is (requests from these usernames are the controller's own
/// writes: phase, conditions, notifications, never a person's decision), and the key that
/// seals the decisions admission records.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    controller_users: BTreeSet<String>,
    seal_key: Option<std::sync::Arc<crate::seal::SealKey>>,
}

impl Policy {
    /// A policy in which `controller_users` (e.g.
    /// `system:serviceaccount:tollgate-system:tollgate`) are the controller.
    pub fn new<S: Into<String>>(controller_users: impl IntoIterator<Item = S>) -> Self {
        Self {
            controller_users: controller_users
                .into_iter()
                .map(Into::into)
                .filter(|u: &String| !u.is_empty())
                .collect(),
            seal_key: None,
        }
    }

    /// This policy, sealing decisions with `key` (see [`crate::seal`]). Without a key
    /// decisions are recorded unsealed, and the controller will not act on them.
    pub fn with_seal_key(mut self, key: std::sync::Arc<crate::seal::SealKey>) -> Self {
        self.seal_key = Some(key);
        self
    }

    /// The key decisions are sealed with.
    pub fn seal_key(&self) -> Option<&crate::seal::SealKey> {
        self.seal_key.as_deref()
    }

    /// Whether `username` is the controller.
    pub fn is_controller(&self, username: &str) -> bool {
        self.controller_users.contains(username)
    }
}

/// The answer to one admission request.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Admit, after applying `patch` (empty: unchanged), telling the client `warnings`.
    Allow {
        /// JSONPatch operations on the object.
        patch: Vec<PatchOperation>,
        /// Shown by kubectl as `Warning: …`.
        warnings: Vec<String>,
    },
    /// Refuse with a message that says who, what, and what is needed.
    Deny(String),
}

impl Verdict {
    /// Admit unchanged.
    pub fn allow() -> Self {
        Verdict::Allow {
            patch: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Whether the request is admitted.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Verdict::Allow { .. })
    }

    /// The denial message, if denied.
    pub fn denial(&self) -> Option<&str> {
        match self {
            Verdict::Deny(message) => Some(message),
            Verdict::Allow { .. } => None,
        }
    }

    /// The response to send for `req`. A patch that cannot be serialised denies: a mutation
    /// that is not applied must not be admitted.
    pub fn into_response(self, req: &Request) -> AdmissionResponse {
        let response = AdmissionResponse::from(req);
        match self {
            Verdict::Deny(message) => deny(response, &message),
            Verdict::Allow { patch, warnings } => {
                let mut response = if patch.is_empty() {
                    response
                } else {
                    match response.clone().with_patch(json_patch::Patch(patch)) {
                        Ok(patched) => patched,
                        Err(e) => {
                            return deny(
                                response,
                                &format!("tollgate could not encode its admission patch: {e}"),
                            );
                        }
                    }
                };
                if !warnings.is_empty() {
                    response.warnings = Some(warnings);
                }
                response
            }
        }
    }
}

/// A denial as the apiserver reports it: 403 Forbidden with our message.
pub(crate) fn deny(response: AdmissionResponse, message: &str) -> AdmissionResponse {
    let mut response = response.deny(message);
    response.result = kube::core::Status::failure(message, "Forbidden");
    response.result.code = 403;
    response
}

/// `namespace/name` of the object a request is about, for messages and logs.
pub(crate) fn object_ref(req: &Request) -> String {
    match req.namespace.as_deref() {
        Some(ns) if !ns.is_empty() => format!("{ns}/{}", req.name),
        _ => req.name.clone(),
    }
}

/// What one webhook is routed: a webhook configuration with wrong rules would send it
/// requests it does not understand, which it refuses rather than guesses at.
pub(crate) struct Route {
    /// The webhook's name in messages (`project`, `checkpoint-status`).
    pub webhook: &'static str,
    /// What it handles, in words (`CREATE and UPDATE of projects`).
    pub handles: &'static str,
    /// `resource` (in tollgate's API group).
    pub resource: &'static str,
    /// The subresource, if any.
    pub sub_resource: Option<&'static str>,
    /// The operations.
    pub operations: &'static [kube::core::admission::Operation],
    /// What tollgate cannot do without a username (`record who changed it`).
    pub needs_user_for: &'static str,
}

/// The username of a request this webhook handles, or the message to deny it with: a
/// request the webhook is not routed (its configuration is wrong), or one without a
/// username (nobody to record). `subject` names the object in messages (`Project ns/p`).
pub(crate) fn routed_user<'r>(
    req: &'r Request,
    route: &Route,
    subject: &str,
) -> Result<&'r str, String> {
    if req.resource.group != crate::api::GROUP
        || req.resource.resource != route.resource
        || req.sub_resource.as_deref() != route.sub_resource
        || !route.operations.contains(&req.operation)
    {
        return Err(format!(
            "tollgate's {} webhook handles only {}, not {:?} of {}/{}{}; fix the rules of the webhook configuration",
            route.webhook,
            route.handles,
            req.operation,
            req.resource.group,
            req.resource.resource,
            req.sub_resource
                .as_deref()
                .map(|s| format!("/{s}"))
                .unwrap_or_default()
        ));
    }
    match req.user_info.username.as_deref() {
        Some(user) if !user.is_empty() => Ok(user),
        _ => Err(format!(
            "the request for {subject} carries no username, so tollgate cannot {}; authenticate",
            route.needs_user_for
        )),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
pub(crate) mod test_support {
    //! Builders of admission requests as the apiserver sends them.
    use serde_json::{Value, json};

    use super::Request;

    /// A request for `resource` (`checkpoints`/`projects`), with optional subresource.
    pub fn request(
        resource: &str,
        sub_resource: Option<&str>,
        operation: &str,
        user: &str,
        groups: &[&str],
        object: Option<Value>,
        old_object: Option<Value>,
    ) -> Request {
        let kind = if resource == "checkpoints" {
            "Checkpoint"
        } else {
            "Project"
        };
        let review = json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
                "kind": {"group": "tollgate.dev", "version": "v1alpha1", "kind": kind},
                "resource": {"group": "tollgate.dev", "version": "v1alpha1", "resource": resource},
                "subResource": sub_resource,
                "name": "demo-plan-1",
                "namespace": "team-a",
                "operation": operation,
                "userInfo": {"username": user, "uid": format!("uid-{user}"), "groups": groups, "extra": {"scopes": ["a"]}},
                "object": object,
                "oldObject": old_object,
                "dryRun": false
            }
        });
        let review: kube::core::admission::AdmissionReview<kube::core::DynamicObject> =
            serde_json::from_value(review).unwrap();
        review.try_into().unwrap()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use test_support::request;

    #[test]
    fn denials_are_forbidden_with_the_message() {
        let req = request("projects", None, "CREATE", "carol", &[], None, None);
        let response = Verdict::Deny("no".into()).into_response(&req);
        assert!(!response.allowed);
        assert_eq!(response.result.code, 403);
        assert_eq!(response.result.message, "no");
        assert_eq!(response.uid, req.uid);
    }

    #[test]
    fn allow_carries_patch_and_warnings() {
        let req = request("projects", None, "CREATE", "carol", &[], None, None);
        let patch = vec![PatchOperation::Remove(json_patch::RemoveOperation {
            path: json_patch::jsonptr::PointerBuf::from_tokens(["metadata", "x"]),
        })];
        let response = Verdict::Allow {
            patch,
            warnings: vec!["w".into()],
        }
        .into_response(&req);
        assert!(response.allowed);
        let patch: serde_json::Value = serde_json::from_slice(&response.patch.unwrap()).unwrap();
        assert_eq!(
            patch,
            serde_json::json!([{"op": "remove", "path": "/metadata/x"}])
        );
        assert_eq!(response.warnings, Some(vec!["w".to_owned()]));
        assert!(Verdict::allow().into_response(&req).patch.is_none());
    }

    #[test]
    fn empty_controller_names_never_match() {
        let policy = Policy::new(["", "system:serviceaccount:tollgate-system:tollgate"]);
        assert!(!policy.is_controller(""));
        assert!(policy.is_controller("system:serviceaccount:tollgate-system:tollgate"));
    }
}

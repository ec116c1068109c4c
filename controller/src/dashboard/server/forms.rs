//! The checkpoint page and its forms: a decision, and the Secret a Credential checkpoint
//! asks for, each made with the person's own client (Origin and CSRF token checked before).

use std::sync::Arc;

use hyper::{Response, StatusCode};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams, PostParams};

use super::{Body, Current, field, page, redirect, refused};
use crate::api::{Checkpoint, Decision};
use crate::cli::checkpoint::format::{self, Review};
use crate::cli::checkpoint::{decide::refused_by, patch_decision, read_review};
use crate::dashboard::html::{self, CheckpointPage, Refusal};
use crate::dashboard::live::Cluster;

/// What the checkpoint page says about the form just sent.
#[derive(Default)]
pub(super) struct Answered<'a> {
    pub(super) refusal: Option<&'a Refusal>,
    /// The reason typed for a refused decision, offered again.
    pub(super) reason: &'a str,
    /// What was done.
    pub(super) notice: Option<&'a str>,
}

/// The checkpoint, as the watch saw it or else as the API gives it; the API's refusal as
/// a page.
async fn find_checkpoint(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
) -> Result<Arc<Checkpoint>, Response<Body>> {
    if let Some(checkpoint) = cluster.checkpoint(namespace, name) {
        return Ok(checkpoint);
    }
    // Not seen by the watch (yet): ask the API, which says why if it refuses.
    let api: Api<Checkpoint> = Api::namespaced(cluster.client.clone(), namespace);
    match api.get(name).await {
        Ok(checkpoint) => Ok(Arc::new(checkpoint)),
        Err(kube::Error::Api(status)) => Err(refused(
            StatusCode::from_u16(status.code).unwrap_or(StatusCode::NOT_FOUND),
            "Cannot read the checkpoint",
            &status.message,
        )),
        Err(e) => Err(refused(
            StatusCode::BAD_GATEWAY,
            "Cannot read the checkpoint",
            &format!("{e}; check that the API server is reachable"),
        )),
    }
}

pub(super) async fn checkpoint_page(
    current: &Current,
    namespace: &str,
    name: &str,
    answered: Answered<'_>,
) -> Response<Body> {
    let cluster = &current.cluster;
    let checkpoint = match find_checkpoint(cluster, namespace, name).await {
        Ok(checkpoint) => checkpoint,
        Err(response) => return response,
    };
    let project = cluster.project_of(&checkpoint);
    let stored = read_review(&Api::namespaced(cluster.client.clone(), namespace), name).await;
    let review = match &stored {
        Ok(Some(review)) => Review::Stored(review),
        Ok(None) => Review::Missing,
        Err(why) => Review::Unreadable(why),
    };
    let status = answered
        .refusal
        .map_or(StatusCode::OK, |_| StatusCode::FORBIDDEN);
    page(
        status,
        html::checkpoint_page(&CheckpointPage {
            checkpoint: &checkpoint,
            project: project.as_deref(),
            review,
            csrf: &current.csrf,
            refusal: answered.refusal,
            reason: answered.reason,
            notice: answered.notice,
            now: Timestamp::now(),
        }),
    )
}

/// A decision (Origin and CSRF token already checked): exactly what `tollgate checkpoint
/// approve|reject` does, with the person's identity.
pub(super) async fn decide(
    current: &Current,
    namespace: &str,
    name: &str,
    form: &[(String, String)],
) -> Response<Body> {
    let decision = serde_json::from_value::<Decision>(serde_json::Value::String(
        field(form, "decision").to_owned(),
    ))
    .ok();
    let reason = field(form, "reason");
    let Some(decision) = decision else {
        return refused(
            StatusCode::BAD_REQUEST,
            "Refused",
            "No decision in the form: use the page's buttons.",
        );
    };
    let refusal = if reason.trim().is_empty() {
        Refusal {
            message:
                "The reason is empty: say why, in your words (it is recorded with the decision)."
                    .to_owned(),
            refused_by: "the dashboard (nothing was sent to the cluster)".to_owned(),
        }
    } else {
        let api: Api<Checkpoint> = Api::namespaced(current.cluster.client.clone(), namespace);
        match patch_decision(&api, name, decision, reason).await {
            Ok(_) => return redirect(&html::checkpoint_path(namespace, name)),
            Err(kube::Error::Api(status)) => Refusal {
                refused_by: refused_by(&status, namespace),
                message: status.message.clone(),
            },
            Err(e) => Refusal {
                message: e.to_string(),
                refused_by: "nothing: the request did not reach a decision; check your connection and decide again".to_owned(),
            },
        }
    };
    checkpoint_page(
        current,
        namespace,
        name,
        Answered {
            refusal: Some(&refusal),
            reason,
            notice: None,
        },
    )
    .await
}

/// The Secret a Credential checkpoint asks for (Origin and CSRF token already checked):
/// created, or completed with the keys it lacks, with the person's identity. The values go
/// to the API server only: never logged, never put in a page.
pub(super) async fn provide_secret(
    current: &Current,
    namespace: &str,
    name: &str,
    form: &[(String, String)],
) -> Response<Body> {
    let checkpoint = match find_checkpoint(&current.cluster, namespace, name).await {
        Ok(checkpoint) => checkpoint,
        Err(response) => return response,
    };
    let Some(wanted) = checkpoint
        .spec
        .secret
        .as_ref()
        .filter(|_| format::is_pending(&checkpoint))
    else {
        return refused(
            StatusCode::CONFLICT,
            "Refused",
            "This checkpoint does not wait for a Secret (any more): nothing was sent to the cluster.",
        );
    };
    let target = html::secret_namespace(&checkpoint);
    let values: Vec<(&str, &str)> = wanted
        .keys
        .iter()
        .map(|key| (key.as_str(), field(form, &html::secret_field(key))))
        .collect();
    let refusal = if values.iter().any(|(_, v)| v.is_empty()) {
        Refusal {
            message: "Every key needs a value.".to_owned(),
            refused_by: "the dashboard (nothing was sent to the cluster)".to_owned(),
        }
    } else {
        match save_secret(&current.cluster.client, target, &wanted.name, &values).await {
            Ok(()) => {
                let notice = format!(
                    "Secret {target}/{} saved with the key(s) {} (the values are not shown again). The Project carries on by itself once the controller reads it.",
                    wanted.name,
                    wanted.keys.join(", ")
                );
                return checkpoint_page(
                    current,
                    namespace,
                    name,
                    Answered {
                        notice: Some(&notice),
                        ..Answered::default()
                    },
                )
                .await;
            }
            Err(kube::Error::Api(status)) => Refusal {
                refused_by: match status.code {
                    401 => "authentication: the API server did not accept your credentials; sign in again".to_owned(),
                    403 => format!("permission: RBAC, you may not create (or patch) Secrets in namespace {target}; ask for that right, or ask someone who has it to follow the checkpoint's instructions"),
                    _ => "the API server".to_owned(),
                },
                message: status.message.clone(),
            },
            Err(e) => Refusal {
                message: e.to_string(),
                refused_by: "nothing: the request did not reach the API server; check your connection and send the form again".to_owned(),
            },
        }
    };
    checkpoint_page(
        current,
        namespace,
        name,
        Answered {
            refusal: Some(&refusal),
            ..Answered::default()
        },
    )
    .await
}

/// Creates Secret `name` with `values`, or, when it exists, sets those keys in it (a
/// merge patch: its other keys stay).
async fn save_secret(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    values: &[(&str, &str)],
) -> Result<(), kube::Error> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let string_data: std::collections::BTreeMap<String, String> = values
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            ..Default::default()
        },
        string_data: Some(string_data.clone()),
        ..Default::default()
    };
    match api.create(&PostParams::default(), &secret).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => api
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({ "stringData": string_data })),
            )
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    }
}

//! Saved plans kept in Secrets, so a restarted controller (or a new pod with an empty disk)
//! applies exactly the bytes that were approved.
//!
//! They live in the controller's state namespace, next to the state, labelled with the
//! Project's namespace and name: a namespace being deleted takes its Secrets with it, and a
//! destroy plan must survive until it is decided and applied. Plans of older versions, in
//! the Project's namespace, are still found ([`PlanStore::legacy`]).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, ListParams, ObjectMeta, PostParams};
use kube::{Api, ResourceExt};

use super::{ApiStep, During, PROJECT_LABEL, PlanStoreProblem, ReconcileError};
use crate::plan::{SavedPlan, digest_bytes};
use crate::state::{project_labels, secret_suffix};

/// Label naming the plan a Secret holds (part of).
pub const PLAN_ID_LABEL: &str = "tollgate.dev/plan-id";
/// Annotation with the plan file's sha256.
pub const PLAN_DIGEST_ANNOTATION: &str = "tollgate.dev/plan-digest";
/// Annotation with the number of Secrets the plan is split across.
pub const PLAN_CHUNKS_ANNOTATION: &str = "tollgate.dev/plan-chunks";
/// Bytes of compressed plan per Secret, well under the 1 MiB object limit.
const CHUNK_BYTES: usize = 900 * 1024;
const DATA_KEY: &str = "plan.gz";

/// Where one Project's saved plans are kept.
pub struct PlanStore {
    secrets: Api<Secret>,
    /// Secret names are `<prefix>-<plan id>-<chunk>`.
    prefix: String,
    /// Labels of every plan Secret of the Project (and a selector for them).
    labels: BTreeMap<String, String>,
}

impl PlanStore {
    /// The store in the state namespace (`secrets` is that namespace's API).
    pub fn new(secrets: Api<Secret>, project_namespace: &str, project_name: &str) -> Self {
        Self {
            secrets,
            prefix: format!("tfplan-{}", secret_suffix(project_namespace, project_name)),
            labels: project_labels(project_namespace, project_name),
        }
    }

    /// Where tollgate kept plans before they moved to the state namespace: the Project's
    /// own namespace (`secrets`), named after the Project.
    pub fn legacy(secrets: Api<Secret>, project_name: &str) -> Self {
        Self {
            secrets,
            prefix: project_name.to_owned(),
            labels: BTreeMap::from([(PROJECT_LABEL.to_owned(), project_name.to_owned())]),
        }
    }

    fn selector(&self, extra: &str) -> String {
        let mut parts: Vec<String> = self
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        parts.push(extra.to_owned());
        parts.join(",")
    }

    /// Name of the `index`th Secret of plan `plan_id`.
    pub fn secret_name(&self, plan_id: &str, index: usize) -> String {
        format!("{}-{plan_id}-{index}", self.prefix)
    }

    /// Stores the saved plan (gzip, split across Secrets when large). Idempotent.
    pub async fn store(&self, saved: &SavedPlan) -> Result<(), ReconcileError> {
        let bytes = saved.read_verified()?;
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder
            .write_all(&bytes)
            .and_then(|()| encoder.try_finish())
            .map_err(|e| {
                store_error(&saved.id, PlanStoreProblem::Codec(format!("compress: {e}")))
            })?;
        let compressed = encoder.get_ref().clone();
        let chunks: Vec<&[u8]> = compressed.chunks(CHUNK_BYTES).collect();
        for (index, chunk) in chunks.iter().enumerate() {
            let mut labels = self.labels.clone();
            labels.insert(PLAN_ID_LABEL.to_owned(), saved.id.clone());
            let secret = Secret {
                metadata: ObjectMeta {
                    name: Some(self.secret_name(&saved.id, index)),
                    labels: Some(labels),
                    annotations: Some(BTreeMap::from([
                        (PLAN_DIGEST_ANNOTATION.to_owned(), saved.digest.clone()),
                        (PLAN_CHUNKS_ANNOTATION.to_owned(), chunks.len().to_string()),
                    ])),
                    ..Default::default()
                },
                data: Some(BTreeMap::from([(
                    DATA_KEY.to_owned(),
                    ByteString(chunk.to_vec()),
                )])),
                type_: Some("tollgate.dev/plan".into()),
                ..Default::default()
            };
            match self.secrets.create(&PostParams::default(), &secret).await {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 409 => {}
                Err(err) => return Err(ApiStep::StorePlan.failed(err)),
            }
        }
        Ok(())
    }

    /// Plan `plan_id`'s Secrets and how many chunks it has.
    async fn listed(
        &self,
        plan_id: &str,
    ) -> Result<(kube::api::ObjectList<Secret>, usize), ReconcileError> {
        let list = self
            .secrets
            .list(
                &ListParams::default()
                    .labels(&self.selector(&format!("{PLAN_ID_LABEL}={plan_id}"))),
            )
            .await
            .during(ApiStep::ReadPlan)?;
        let chunks: usize = list
            .items
            .first()
            .and_then(|s| s.annotations().get(PLAN_CHUNKS_ANNOTATION))
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| store_error(plan_id, PlanStoreProblem::NotStored))?;
        Ok((list, chunks))
    }

    /// The names of plan `plan_id`'s Secrets, in order (what a runner Job mounts).
    pub async fn chunk_names(&self, plan_id: &str) -> Result<Vec<String>, ReconcileError> {
        let (_, chunks) = self.listed(plan_id).await?;
        Ok((0..chunks).map(|i| self.secret_name(plan_id, i)).collect())
    }

    /// Writes the plan `plan_id` back to `path` from its Secrets, checking its digest.
    pub async fn restore(
        &self,
        plan_id: &str,
        digest: &str,
        path: &Path,
    ) -> Result<SavedPlan, ReconcileError> {
        let (list, chunks) = self.listed(plan_id).await?;
        let mut compressed = Vec::new();
        for index in 0..chunks {
            let name = self.secret_name(plan_id, index);
            let part = list
                .items
                .iter()
                .find(|s| s.name_any() == name)
                .and_then(|s| s.data.as_ref())
                .and_then(|d| d.get(DATA_KEY))
                .ok_or_else(|| {
                    store_error(plan_id, PlanStoreProblem::ChunkMissing(name.clone()))
                })?;
            compressed.extend_from_slice(&part.0);
        }
        let mut bytes = Vec::new();
        GzDecoder::new(compressed.as_slice())
            .read_to_end(&mut bytes)
            .map_err(|e| {
                store_error(
                    plan_id,
                    PlanStoreProblem::Unreadable {
                        secret: self.secret_name(plan_id, 0),
                        reason: format!("cannot decompress: {e}"),
                        found: digest_bytes(&compressed),
                    },
                )
            })?;
        let found = digest_bytes(&bytes);
        if found != digest {
            return Err(store_error(
                plan_id,
                PlanStoreProblem::DigestMismatch {
                    secret: self.secret_name(plan_id, 0),
                    expected: digest.to_owned(),
                    found,
                },
            ));
        }
        std::fs::write(path, &bytes).map_err(|source| ReconcileError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(SavedPlan {
            id: plan_id.to_owned(),
            digest: digest.to_owned(),
            path: path.to_path_buf(),
        })
    }

    /// Deletes the Project's plan Secrets except those of `keep`.
    pub async fn delete_except(&self, keep: Option<&str>) -> Result<(), ReconcileError> {
        let list = self
            .secrets
            .list(&ListParams::default().labels(&self.selector(PLAN_ID_LABEL)))
            .await
            .during(ApiStep::DeletePlans)?;
        for secret in list.items {
            if keep.is_some_and(|k| secret.labels().get(PLAN_ID_LABEL).is_some_and(|id| id == k)) {
                continue;
            }
            match self
                .secrets
                .delete(&secret.name_any(), &DeleteParams::default())
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(err) => return Err(ApiStep::DeletePlans.failed(err)),
            }
        }
        Ok(())
    }
}

fn store_error(plan_id: &str, problem: PlanStoreProblem) -> ReconcileError {
    ReconcileError::PlanStore {
        plan_id: plan_id.to_owned(),
        problem,
    }
}

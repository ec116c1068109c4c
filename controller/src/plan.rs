//! Saved plans and the typed model of `terraform show -json` (plan format 1.x).
//!
//! A [`SavedPlan`] is a plan file on disk identified by an id and the sha256 digest of its
//! bytes; the digest is what a person approves and what `apply` checks before it runs.
//!
//! [`Plan`] is the parsed JSON form of a saved plan. It is tolerant of fields newer Terraform
//! versions add, strict where a misreading would be dangerous (the format's major version
//! must be 1; an action string this model does not know is an error rather than being
//! silently ignored). Its values may hold secrets: they leave the model only through
//! [`Plan::redacted`] (values marked in `before_sensitive`/`after_sensitive`, sensitive
//! outputs and sensitive variables replaced by `"(sensitive)"`), and its `Debug` output is
//! redacted too. [`PlanSummary`] is the small, serialisable digest of a plan that goes into
//! Kubernetes status: counts, addresses per action and risk flags.

mod model;
mod redact;
mod review;
mod summary;

use std::io::Read as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

pub use model::{
    Action, Actions, Change, CheckInstance, CheckInstanceAddress, CheckProblem, CheckResult,
    CheckableAddress, Plan, PlanVariable, ReplaceOrder, ResourceChange, ResourceMode, StateModule,
    StateOutput, StateResource, StateSnapshot, StateValues,
};
pub use redact::{RedactedPlan, SENSITIVE_PLACEHOLDER, redact_sensitive};
pub use review::{
    AttributeChange, MAX_ATTRIBUTES, MAX_CHANGES, MAX_TOTAL_CHARS, MAX_VALUE_CHARS, PlanReview,
    ReviewedChange, UNKNOWN_PLACEHOLDER,
};
pub use summary::{ActionAddresses, PlanSummary, RiskFlag, RiskKind};

/// Errors from reading saved plans and parsing plan JSON.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The plan JSON could not be parsed (or did not have the expected shape).
    #[error(
        "plan JSON is not valid `terraform show -json` output: {0}; make sure the file was produced by `terraform show -json <planfile>` of Terraform >= 1.5 or OpenTofu"
    )]
    Json(#[from] serde_json::Error),
    /// The plan uses a `format_version` whose major version this model does not support.
    #[error(
        "plan JSON format_version {found:?} is not supported (this build understands 1.x); upgrade tollgate or use a Terraform version that emits plan format 1.x"
    )]
    UnsupportedFormat {
        /// The `format_version` found in the JSON.
        found: String,
    },
    /// A saved plan file could not be read.
    #[error(
        "could not read saved plan {path}: {source}; the plan must be re-created with a new plan run"
    )]
    Io {
        /// The plan file.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// A saved plan file's bytes do not match the digest it was saved (and approved) with.
    #[error(
        "saved plan {path} has digest {actual}, but {expected} was recorded (and approved); refusing to use it: plan again and have the new plan approved"
    )]
    DigestMismatch {
        /// The plan file.
        path: PathBuf,
        /// The digest recorded when the plan was saved.
        expected: String,
        /// The digest of the file as it is now.
        actual: String,
    },
}

/// A plan file written by `terraform plan -out`, identified by an id and the sha256 digest
/// (lowercase hex) of its bytes. Serialises in camelCase (`id`, `digest`, `path`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SavedPlan {
    /// An identifier for the plan (chosen by the caller, or derived from the digest).
    pub id: String,
    /// sha256 of the plan file, lowercase hex (64 characters).
    pub digest: String,
    /// Where the plan file is.
    pub path: PathBuf,
}

impl SavedPlan {
    /// Reads `path`, computes its digest and returns the saved plan. With `id == None` the id
    /// is derived from the digest ([`SavedPlan::id_from_digest`]).
    pub fn from_file(id: Option<String>, path: impl Into<PathBuf>) -> Result<Self, PlanError> {
        let path = path.into();
        let digest = digest_file(&path)?;
        let id = id.unwrap_or_else(|| Self::id_from_digest(&digest));
        Ok(Self { id, digest, path })
    }

    /// The default id for a plan with this digest: `plan-` and the first 16 hex digits.
    #[must_use]
    pub fn id_from_digest(digest: &str) -> String {
        let short: String = digest.chars().take(16).collect();
        format!("plan-{short}")
    }

    /// Reads the plan file and checks that its digest is still the recorded one. Returns the
    /// file's bytes, so that a caller can use exactly the bytes it checked.
    pub fn read_verified(&self) -> Result<Vec<u8>, PlanError> {
        let bytes = std::fs::read(&self.path).map_err(|source| PlanError::Io {
            path: self.path.clone(),
            source,
        })?;
        let actual = digest_bytes(&bytes);
        if actual.eq_ignore_ascii_case(&self.digest) {
            Ok(bytes)
        } else {
            Err(PlanError::DigestMismatch {
                path: self.path.clone(),
                expected: self.digest.clone(),
                actual,
            })
        }
    }

    /// Checks that the plan file still has the recorded digest.
    pub fn verify(&self) -> Result<(), PlanError> {
        self.read_verified().map(|_| ())
    }
}

/// sha256 of `bytes` as lowercase hex.
#[must_use]
pub fn digest_bytes(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// sha256 of the file at `path` as lowercase hex, read in chunks.
pub fn digest_file(path: &Path) -> Result<String, PlanError> {
    let io = |source| PlanError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(buf.get(..n).unwrap_or_default());
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn digest_of_known_bytes() {
        assert_eq!(
            digest_bytes(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn saved_plan_from_file_and_verify() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.tfplan");
        std::fs::write(&path, b"abc").unwrap();
        let plan = SavedPlan::from_file(None, &path).unwrap();
        assert_eq!(plan.digest, digest_bytes(b"abc"));
        assert_eq!(plan.id, "plan-ba7816bf8f01cfea");
        assert_eq!(plan.read_verified().unwrap(), b"abc");
        std::fs::write(&path, b"abd").unwrap();
        let err = plan.verify().unwrap_err();
        assert!(matches!(err, PlanError::DigestMismatch { .. }), "{err}");
        assert!(err.to_string().contains("plan again"));
    }

    #[test]
    fn saved_plan_serialises_camel_case() {
        let plan = SavedPlan {
            id: "p1".into(),
            digest: "00".into(),
            path: PathBuf::from("/x/p.tfplan"),
        };
        let json = serde_json::to_value(&plan).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"id": "p1", "digest": "00", "path": "/x/p.tfplan"})
        );
    }

    #[test]
    fn missing_file_is_io_error() {
        let err = SavedPlan::from_file(Some("x".into()), "/nonexistent/p.tfplan").unwrap_err();
        assert!(matches!(err, PlanError::Io { .. }));
    }
}

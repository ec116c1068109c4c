//! The audit trail: one JSON record per thing that matters (a plan made, a checkpoint
//! opened, escalated, expired or decided, an apply, a destroy), forming a hash chain so
//! an edited, removed, inserted or reordered record is detected by `tollgate audit
//! verify`. Records go to the `tollgate::audit` tracing target and, when configured, a
//! file that the writer continues across restarts.
//!
//! Records hold names, digests, amounts and the decider's reason, never spec values, so
//! a secret cannot reach the log through them.

mod chain;
mod record;
mod verify;
mod writer;

pub use chain::{GENESIS_HASH, canonical_json, record_hash};
pub use record::{AuditAction, AuditCost, AuditCredential, AuditEntry, AuditRecord};
pub use verify::{Finding, Problem, VerifyReport, verify};
pub use writer::{AuditLog, TRACING_TARGET};

use std::path::PathBuf;

/// What the audit trail can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The audit file could not be opened, read or written.
    #[error(
        "audit log {path}: {source}; check that the directory exists and the controller may write it"
    )]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The last record of an existing file is not a valid record, so the chain cannot
    /// be continued.
    #[error(
        "audit log {path}: its last line is not a valid audit record ({reason}); run `tollgate audit verify {path}`, keep the file as evidence and start a new one"
    )]
    CorruptTail {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A record could not be serialised.
    #[error("cannot serialise an audit record: {0}")]
    Serialise(String),
}

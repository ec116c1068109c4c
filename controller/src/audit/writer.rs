//! Appending records: to the `tollgate::audit` tracing target and optionally a file. On
//! open, the writer reads the file's last record and continues its chain, so a restarted
//! controller neither starts a second chain nor breaks the first.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use jiff::Timestamp;

use super::AuditError;
use super::chain::{GENESIS_HASH, record_hash};
use super::record::{AuditEntry, AuditRecord};

/// The tracing target every record is logged under (one JSON record per event, field
/// `record`), so log pipelines can route the audit trail apart from operational logs.
pub const TRACING_TARGET: &str = "tollgate::audit";

/// How far back from the end of the file the writer reads at a time to find the last
/// line (records are well under this).
const TAIL_CHUNK: u64 = 8 * 1024;

/// An append-only audit log. Share one per controller (`Arc`); appends are serialised.
#[derive(Debug)]
pub struct AuditLog {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    file: Option<(PathBuf, File)>,
    next_seq: u64,
    prev_hash: String,
}

impl AuditLog {
    /// Opens (or creates, mode 0640) the file at `path` and continues its chain.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, AuditError> {
        let path = path.into();
        let io = |source| AuditError::Io {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o640)
            .open(&path)
            .map_err(io)?;
        let (next_seq, prev_hash) = match last_line(&mut file).map_err(io)? {
            None => (1, GENESIS_HASH.to_owned()),
            Some(line) => {
                let last = parse_tail(&path, &line)?;
                (last.seq + 1, last.hash)
            }
        };
        Ok(AuditLog {
            state: Mutex::new(State {
                file: Some((path, file)),
                next_seq,
                prev_hash,
            }),
        })
    }

    /// A log with only the tracing target: the chain starts afresh at every start, so
    /// use a file (or a log store that keeps the target's records) for evidence.
    pub fn tracing_only() -> Self {
        AuditLog {
            state: Mutex::new(State {
                file: None,
                next_seq: 1,
                prev_hash: GENESIS_HASH.to_owned(),
            }),
        }
    }

    /// Records what the controller itself (`system:tollgate`) did to Project
    /// `namespace/name`; a failure to write is logged, since the caller's work goes on.
    pub fn record_controller_action(
        &self,
        namespace: &str,
        name: &str,
        action: super::AuditAction,
        fill: impl FnOnce(&mut AuditEntry),
    ) {
        let mut entry = AuditEntry::new("system:tollgate", action, namespace, name);
        fill(&mut entry);
        if let Err(err) = self.append(entry) {
            tracing::error!(error = %err, ?action, "cannot write the audit trail");
        }
    }

    /// Appends `entry` now.
    pub fn append(&self, entry: AuditEntry) -> Result<AuditRecord, AuditError> {
        self.append_at(entry, Timestamp::now())
    }

    /// Appends `entry` with time `at`; the record is durable in the file (fsynced) before
    /// this returns.
    pub fn append_at(&self, entry: AuditEntry, at: Timestamp) -> Result<AuditRecord, AuditError> {
        // A panic elsewhere while holding the lock leaves the state consistent (it only
        // advances after a successful write), so a poisoned lock is safe to reuse.
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut record = AuditRecord {
            seq: state.next_seq,
            time: at.strftime("%Y-%m-%dT%H:%M:%S%.fZ").to_string(),
            actor: entry.actor,
            action: entry.action,
            namespace: entry.namespace,
            project: entry.project,
            checkpoint: entry.checkpoint,
            decision: entry.decision,
            plan_digest: entry.plan_digest,
            cost: entry.cost,
            reason: entry.reason,
            credential: entry.credential,
            prev_hash: state.prev_hash.clone(),
            hash: String::new(),
        };
        record.hash = record_hash(&record)?;
        let line =
            serde_json::to_string(&record).map_err(|e| AuditError::Serialise(e.to_string()))?;
        if let Some((path, file)) = &mut state.file {
            let io = |source| AuditError::Io {
                path: path.clone(),
                source,
            };
            // One write per record: with O_APPEND a record is never interleaved.
            file.write_all(format!("{line}\n").as_bytes()).map_err(io)?;
            file.sync_data().map_err(io)?;
        }
        tracing::info!(target: "tollgate::audit", record = %line, "audit");
        state.next_seq = record.seq + 1;
        state.prev_hash = record.hash.clone();
        Ok(record)
    }
}

fn parse_tail(path: &Path, line: &str) -> Result<AuditRecord, AuditError> {
    let corrupt = |reason: String| AuditError::CorruptTail {
        path: path.to_owned(),
        reason,
    };
    let record: AuditRecord = serde_json::from_str(line).map_err(|e| corrupt(e.to_string()))?;
    if record_hash(&record)? != record.hash {
        return Err(corrupt("its hash does not match its content".into()));
    }
    Ok(record)
}

/// The last non-empty line of the file, read from the end in chunks.
fn last_line(file: &mut File) -> std::io::Result<Option<String>> {
    let mut end = file.seek(SeekFrom::End(0))?;
    let mut tail: Vec<u8> = Vec::new();
    loop {
        let start = end.saturating_sub(TAIL_CHUNK);
        let mut chunk = vec![0; usize::try_from(end - start).unwrap_or(0)];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut chunk)?;
        chunk.extend_from_slice(&tail);
        tail = chunk;
        end = start;
        let trimmed_len = tail
            .iter()
            .rposition(|b| !b.is_ascii_whitespace())
            .map_or(0, |p| p + 1);
        let body = &tail[..trimmed_len];
        if let Some(newline) = body.iter().rposition(|b| *b == b'\n') {
            return Ok(Some(
                String::from_utf8_lossy(&body[newline + 1..]).into_owned(),
            ));
        }
        if start == 0 {
            return Ok((!body.is_empty()).then(|| String::from_utf8_lossy(body).into_owned()));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::audit::{AuditAction, verify};

    fn entry(i: usize) -> AuditEntry {
        let mut e = AuditEntry::new(
            "system:tollgate",
            AuditAction::PlanMade,
            "team-a",
            format!("p{i}"),
        );
        e.plan_digest = Some("ab".repeat(32));
        // Long enough that the tail reader needs more than one chunk for some records.
        e.reason = Some("x".repeat(i * 997));
        e
    }

    #[test]
    fn a_restarted_writer_continues_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        {
            let log = AuditLog::open(&path).unwrap();
            for i in 0..3 {
                log.append(entry(i)).unwrap();
            }
        }
        let log = AuditLog::open(&path).unwrap();
        let fourth = log.append(entry(12)).unwrap();
        assert_eq!(fourth.seq, 4);
        drop(log);
        let log = AuditLog::open(&path).unwrap();
        assert_eq!(log.append(entry(1)).unwrap().seq, 5);
        let report = verify(&std::fs::read_to_string(&path).unwrap());
        assert_eq!(report.finding, None);
        assert_eq!(report.records, 5);
    }

    #[test]
    fn refuses_to_continue_after_a_torn_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        AuditLog::open(&path).unwrap().append(entry(0)).unwrap();
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"seq\":2,\"ti").unwrap();
        let err = AuditLog::open(&path).unwrap_err().to_string();
        assert!(
            err.contains("last line") && err.contains("audit verify"),
            "{err}"
        );
    }
}

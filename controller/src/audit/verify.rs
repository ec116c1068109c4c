//! Checking a chain: the first line that does not belong, and why (edited, removed,
//! inserted, reordered). What a hash chain cannot show without an outside anchor is
//! truncation at the end or a forged, correctly chained record appended at the end; the
//! report gives the last hash so it can be compared with a copy kept elsewhere.

use std::fmt;

use super::chain::{GENESIS_HASH, record_hash};
use super::record::AuditRecord;

/// What is wrong at a line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// Not a JSON audit record.
    Unparseable {
        /// Parser message.
        reason: String,
    },
    /// The content does not match its hash: the record was edited.
    Edited,
    /// The first record does not start a chain: records before it were removed.
    NotStart,
    /// These lines are not part of the chain: the next line continues from the line
    /// before them.
    Inserted {
        /// The last inserted line.
        through_line: usize,
    },
    /// Records are missing before this one.
    Removed {
        /// First missing seq.
        from_seq: u64,
        /// Last missing seq.
        to_seq: u64,
    },
    /// This record belongs after a later line.
    Reordered {
        /// The line it follows in the chain.
        follows_line: usize,
    },
    /// An exact copy of an earlier line.
    Duplicate {
        /// The earlier line.
        of_line: usize,
    },
    /// Does not continue from the previous line, which was probably rewritten with a
    /// recomputed hash (or this line replaced).
    Broken,
}

/// The first problem found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// 1-based line number.
    pub line: usize,
    /// The record's seq, when it parses.
    pub seq: Option<u64>,
    /// What is wrong.
    pub problem: Problem,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let line = self.line;
        write!(f, "line {line}")?;
        if let Some(seq) = self.seq {
            write!(f, " (seq {seq})")?;
        }
        match &self.problem {
            Problem::Unparseable { reason } => write!(f, ": not an audit record: {reason}"),
            Problem::Edited => write!(f, ": edited: its content does not match its hash"),
            Problem::NotStart => write!(
                f,
                ": removed: the log does not start at seq 1 with the genesis hash; records before this line are missing"
            ),
            Problem::Inserted { through_line } if *through_line == line => write!(
                f,
                ": inserted: not part of the chain; line {} continues from line {}",
                line + 1,
                line - 1
            ),
            Problem::Inserted { through_line } => write!(
                f,
                ": inserted: lines {line}-{through_line} are not part of the chain; line {} continues from line {}",
                through_line + 1,
                line - 1
            ),
            Problem::Removed { from_seq, to_seq } if from_seq == to_seq => write!(
                f,
                ": removed: the record with seq {from_seq} before this line is missing"
            ),
            Problem::Removed { from_seq, to_seq } => write!(
                f,
                ": removed: records with seq {from_seq}-{to_seq} before this line are missing"
            ),
            Problem::Reordered { follows_line } => write!(
                f,
                ": reordered: this record follows line {follows_line} in the chain"
            ),
            Problem::Duplicate { of_line } => {
                write!(f, ": inserted: a copy of line {of_line}")
            }
            Problem::Broken => write!(
                f,
                ": does not continue from line {}: that line was rewritten (with a recomputed hash) or this one replaced",
                line - 1
            ),
        }
    }
}

/// The result of checking a log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// Records read.
    pub records: usize,
    /// The last record's hash: compare with a copy kept elsewhere to detect truncation.
    pub last_hash: Option<String>,
    /// The first problem, if any.
    pub finding: Option<Finding>,
}

/// Checks the whole log text.
pub fn verify(text: &str) -> VerifyReport {
    let parsed: Vec<Result<AuditRecord, String>> = text
        .lines()
        .map(|l| serde_json::from_str::<AuditRecord>(l).map_err(|e| e.to_string()))
        .collect();
    let records = parsed.len();
    let last_hash = parsed
        .last()
        .and_then(|r| r.as_ref().ok())
        .map(|r| r.hash.clone());
    let finding = first_finding(&parsed);
    VerifyReport {
        records,
        last_hash,
        finding,
    }
}

fn first_finding(parsed: &[Result<AuditRecord, String>]) -> Option<Finding> {
    let ok = |i: usize| parsed.get(i).and_then(|r| r.as_ref().ok());
    for (i, entry) in parsed.iter().enumerate() {
        let line = i + 1;
        let record = match entry {
            Ok(r) => r,
            Err(reason) => {
                return Some(Finding {
                    line,
                    seq: None,
                    problem: Problem::Unparseable {
                        reason: reason.clone(),
                    },
                });
            }
        };
        let found = |problem| {
            Some(Finding {
                line,
                seq: Some(record.seq),
                problem,
            })
        };
        if record_hash(record).ok().as_deref() != Some(record.hash.as_str()) {
            return found(Problem::Edited);
        }
        let Some(prev) = i.checked_sub(1).and_then(ok) else {
            if record.seq != 1 || record.prev_hash != GENESIS_HASH {
                return found(Problem::NotStart);
            }
            continue;
        };
        if record.seq == prev.seq + 1 && record.prev_hash == prev.hash {
            continue;
        }
        // An exact copy of an earlier record (replayed).
        if let Some(k) = (0..i).find(|&k| ok(k) == Some(record)) {
            return found(Problem::Duplicate { of_line: k + 1 });
        }
        // Its predecessor comes later: the order was changed.
        if let Some(j) =
            (i + 1..parsed.len()).find(|&j| ok(j).is_some_and(|r| r.hash == record.prev_hash))
        {
            return found(Problem::Reordered {
                follows_line: j + 1,
            });
        }
        // It continues from an earlier line: the lines in between were inserted.
        if let Some(k) = (0..i.saturating_sub(1))
            .rev()
            .find(|&k| ok(k).is_some_and(|r| r.hash == record.prev_hash))
        {
            return Some(Finding {
                line: k + 2,
                seq: ok(k + 1).map(|r| r.seq),
                problem: Problem::Inserted {
                    through_line: line - 1,
                },
            });
        }
        // The next line continues from the previous one: this line was inserted.
        if ok(i + 1).is_some_and(|n| n.prev_hash == prev.hash && n.seq == prev.seq + 1) {
            return found(Problem::Inserted { through_line: line });
        }
        if record.seq > prev.seq + 1 {
            return found(Problem::Removed {
                from_seq: prev.seq + 1,
                to_seq: record.seq - 1,
            });
        }
        return found(Problem::Broken);
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::audit::{AuditAction, AuditEntry, AuditLog};

    /// Five chained records as lines.
    fn log_lines() -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        let log = AuditLog::open(&path).unwrap();
        for i in 1..=5 {
            let mut e = AuditEntry::new("alice", AuditAction::CheckpointDecided, "team-a", "web");
            e.checkpoint = Some(format!("web-plan-{i}"));
            e.reason = Some(format!("reason {i}"));
            log.append(e).unwrap();
        }
        std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn check(lines: &[String]) -> String {
        let report = verify(&lines.join("\n"));
        report.finding.map(|f| f.to_string()).unwrap_or_default()
    }

    fn forged(seq: u64, prev_hash: &str) -> String {
        let mut r: AuditRecord = serde_json::from_str(&log_lines()[0]).unwrap();
        r.seq = seq;
        r.prev_hash = prev_hash.to_owned();
        r.reason = Some("forged".into());
        r.hash = record_hash(&r).unwrap();
        serde_json::to_string(&r).unwrap()
    }

    fn hash_of(line: &str) -> String {
        serde_json::from_str::<AuditRecord>(line).unwrap().hash
    }

    #[test]
    fn an_intact_log_verifies() {
        let report = verify(&log_lines().join("\n"));
        assert_eq!(report.finding, None);
        assert_eq!(report.records, 5);
    }

    #[test]
    fn an_edited_record_is_named() {
        let mut lines = log_lines();
        lines[2] = lines[2].replace("reason 3", "reason 9");
        assert_eq!(
            check(&lines),
            "line 3 (seq 3): edited: its content does not match its hash"
        );
    }

    #[test]
    fn an_edited_record_with_a_recomputed_hash_breaks_the_next_link() {
        let mut lines = log_lines();
        let mut r: AuditRecord = serde_json::from_str(&lines[2]).unwrap();
        r.reason = Some("rewritten".into());
        r.hash = record_hash(&r).unwrap();
        lines[2] = serde_json::to_string(&r).unwrap();
        assert!(
            check(&lines).starts_with("line 4 (seq 4): does not continue from line 3"),
            "{}",
            check(&lines)
        );
    }

    #[test]
    fn a_removed_record_is_named() {
        let mut lines = log_lines();
        lines.remove(2);
        assert_eq!(
            check(&lines),
            "line 3 (seq 4): removed: the record with seq 3 before this line is missing"
        );
        let mut first_gone = log_lines();
        first_gone.remove(0);
        assert!(check(&first_gone).starts_with("line 1 (seq 2): removed"));
    }

    #[test]
    fn an_inserted_record_is_named_even_when_correctly_chained_to_its_predecessor() {
        let lines = log_lines();
        let mut chained = lines.clone();
        chained.insert(2, forged(3, &hash_of(&lines[1])));
        assert_eq!(
            check(&chained),
            "line 3 (seq 3): inserted: not part of the chain; line 4 continues from line 2"
        );
        let mut unchained = lines.clone();
        unchained.insert(2, forged(99, "f".repeat(64).as_str()));
        assert_eq!(
            check(&unchained),
            "line 3 (seq 99): inserted: not part of the chain; line 4 continues from line 2"
        );
        let mut copied = lines.clone();
        copied.insert(3, lines[1].clone());
        assert!(
            check(&copied).contains("line 4 (seq 2)"),
            "{}",
            check(&copied)
        );
    }

    #[test]
    fn reordered_records_are_named() {
        let mut lines = log_lines();
        lines.swap(2, 3);
        assert_eq!(
            check(&lines),
            "line 3 (seq 4): reordered: this record follows line 4 in the chain"
        );
    }

    #[test]
    fn garbage_is_named() {
        let mut lines = log_lines();
        lines[1] = "not json".into();
        assert!(check(&lines).starts_with("line 2: not an audit record"));
    }
}

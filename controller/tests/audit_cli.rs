//! `tollgate audit verify FILE` as a user runs it: exit 0 on an intact log, 2 naming the
//! first bad line on each kind of tampering.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use tollgate::audit::{AuditAction, AuditEntry, AuditLog};

fn verify(path: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["audit", "verify"])
        .arg(path)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap(), text)
}

#[test]
fn verify_passes_an_intact_log_and_names_each_kind_of_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::open(&path).unwrap();
    for i in 1..=4 {
        let mut e = AuditEntry::new("alice", AuditAction::CheckpointDecided, "team-a", "web");
        e.reason = Some(format!("reason {i}"));
        log.append(e).unwrap();
    }
    let (code, text) = verify(&path);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("4 records, chain intact"), "{text}");

    let lines: Vec<String> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let tampered = |name: &str, lines: Vec<String>| {
        let p = dir.path().join(name);
        std::fs::write(&p, lines.join("\n") + "\n").unwrap();
        verify(&p)
    };
    let mut edited = lines.clone();
    edited[2] = edited[2].replace("reason 3", "reason 0");
    let mut removed = lines.clone();
    removed.remove(1);
    let mut inserted = lines.clone();
    inserted.insert(2, lines[0].clone());
    let mut reordered = lines.clone();
    reordered.swap(1, 2);
    for (name, lines, expected) in [
        ("edited", edited, "line 3 (seq 3): edited"),
        ("removed", removed, "line 2 (seq 3): removed"),
        ("inserted", inserted, "line 3 (seq 1): inserted"),
        ("reordered", reordered, "line 2 (seq 3): reordered"),
    ] {
        let (code, text) = tampered(name, lines);
        assert_eq!(code, 2, "{name}: {text}");
        assert!(text.contains(expected), "{name}: {text}");
    }
    let (code, text) = verify(&dir.path().join("missing.jsonl"));
    assert_eq!(code, 1, "{text}");
}

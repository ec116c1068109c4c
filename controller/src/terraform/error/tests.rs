//! Unit tests of `error`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

const LOCK_ERR: &str = "Acquiring state lock. This may take a few moments...\n\
Error: Error acquiring the state lock\n\n\
Error message: resource temporarily unavailable\n\
Lock Info:\n\
  ID:        376cfedd-9314-8f65-079f-ed10fd13285d\n\
  Path:      terraform.tfstate\n\
  Operation: OperationTypeApply\n\
  Who:       root@vm\n\
  Version:   1.15.5\n\
  Created:   2026-11-25 09:25:10.740251341 +0000 UTC\n\
  Info:      \n\n\n\
Terraform acquires a state lock to protect the state from being written\n";

fn out(stderr: &str) -> CommandOutput {
    CommandOutput {
        command: "plan".into(),
        exit_code: Some(1),
        stderr: CapturedText {
            text: stderr.into(),
            total_bytes: stderr.len() as u64,
            omitted_bytes: 0,
        },
        ..CommandOutput::default()
    }
}

#[test]
fn parses_lock_info() {
    let lock = LockInfo::parse(LOCK_ERR).unwrap();
    assert_eq!(lock.id, "376cfedd-9314-8f65-079f-ed10fd13285d");
    assert_eq!(lock.path.as_deref(), Some("terraform.tfstate"));
    assert_eq!(lock.operation.as_deref(), Some("OperationTypeApply"));
    assert_eq!(lock.who.as_deref(), Some("root@vm"));
    assert_eq!(lock.version.as_deref(), Some("1.15.5"));
    assert_eq!(
        lock.created.as_deref(),
        Some("2026-11-25 09:25:10.740251341 +0000 UTC")
    );
    assert_eq!(lock.info, None);
}

#[test]
fn classifies_lock() {
    let err = classify("plan", out(LOCK_ERR));
    assert_eq!(err.kind(), ErrorKind::StateLocked);
    assert!(err.is_retryable());
    let msg = err.to_string();
    assert!(
        msg.contains("force-unlock lock id 376cfedd-9314-8f65-079f-ed10fd13285d"),
        "{msg}"
    );
    assert!(msg.contains("held by root@vm"), "{msg}");
}

#[test]
fn a_lock_held_while_init_creates_the_first_state_is_a_lock() {
    let text = "Error: Error loading state: the state is already locked by another terraform client\n\
Lock Info:\n\
  ID:        e2e-held\n\
  Path:      \n\
  Operation: OperationTypeApply\n\
  Who:       someone@elsewhere\n";
    let err = classify("init", out(text));
    assert_eq!(err.kind(), ErrorKind::StateLocked);
    assert!(err.is_retryable());
    assert!(
        err.to_string().contains("force-unlock lock id e2e-held"),
        "{err}"
    );
    let tofu = text.replace("terraform client", "tofu client");
    assert_eq!(classify("init", out(&tofu)).kind(), ErrorKind::StateLocked);
}

#[test]
fn classifies_others() {
    let cases = [
        (
            "Error: No valid credential sources found\n\nno valid credential sources for S3 Backend found.",
            ErrorKind::Auth,
        ),
        (
            "Error: reading EC2 VPC: operation error EC2: DescribeVpcs, https response error StatusCode: 403, api error UnauthorizedOperation",
            ErrorKind::Auth,
        ),
        (
            "Error: Failed to query available provider packages\n\nCould not retrieve the list of available versions: dial tcp: lookup registry.terraform.io: no such host",
            ErrorKind::Transient,
        ),
        (
            "Error: creating S3 Bucket: ThrottlingException: Rate exceeded",
            ErrorKind::Transient,
        ),
        (
            "Error: Unsupported argument\n\n  on main.tf line 3, in resource \"terraform_data\" \"a\":\n   3:   foo = 1\n\nAn argument named \"foo\" is not expected here.",
            ErrorKind::Config,
        ),
        (
            "Error: Saved plan is stale\n\nThe given plan file can no longer be applied because the state was changed by another operation after the plan was created.",
            ErrorKind::StalePlan,
        ),
        (
            "Error: local-exec provisioner error\n\nError running command 'exit 1': exit status 1. Output:",
            ErrorKind::Failed,
        ),
    ];
    for (text, kind) in cases {
        let err = classify("apply", out(text));
        assert_eq!(err.kind(), kind, "{text}");
        assert!(err.to_string().contains("terraform apply"));
    }
}

#[test]
fn excerpt_starts_at_error() {
    let e = excerpt("noise\nmore noise\nError: boom\n\n  detail line\n", "");
    assert_eq!(e, "Error: boom | detail line");
    assert_eq!(excerpt("", ""), "(no output)");
    assert_eq!(excerpt("", "last words"), "last words");
}

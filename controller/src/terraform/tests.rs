//! Unit tests of the runner that need no Terraform binary.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use super::*;

#[test]
fn workspace_debug_hides_env_values() {
    let ws = Workspace::new("/tmp/x")
        .with_env("AWS_REGION", "eu-west-1")
        .with_secret_env("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI");
    let dbg = format!("{ws:?}");
    assert!(dbg.contains("AWS_SECRET_ACCESS_KEY"));
    assert!(!dbg.contains("wJalrXUtnFEMI"));
    assert!(!dbg.contains("eu-west-1"));
    assert_eq!(ws.redactor().redact("k=wJalrXUtnFEMI"), "k=[REDACTED]");
}

#[test]
fn output_value_debug_hides_sensitive() {
    let v = OutputValue {
        sensitive: true,
        value: serde_json::json!("hunter2"),
        value_type: serde_json::json!("string"),
    };
    assert!(!format!("{v:?}").contains("hunter2"));
}

#[test]
fn config_from_env_defaults_to_path_lookup() {
    let cfg = RunnerConfig::new("terraform");
    assert_eq!(cfg.binary, PathBuf::from("terraform"));
    assert_eq!(cfg.max_concurrent, 4);
}

#[tokio::test]
async fn missing_binary_is_a_spawn_error() {
    let runner = TerraformRunner::new(RunnerConfig::new("/nonexistent/terraform-binary")).unwrap();
    let err = runner.version().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Setup);
    assert!(err.to_string().contains("TOLLGATE_TERRAFORM"), "{err}");
    assert_eq!(runner.stats().running, 0);
}

/// A stand-in for Terraform: prints its arguments and environment, or floods stdout.
fn fake_terraform(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.join("fake-terraform");
    std::fs::write(
        &path,
        "#!/bin/sh\nif [ \"$FAKE_MODE\" = flood ]; then head -c 100000 /dev/zero | tr '\\0' x; echo \"end $FAKE_SECRET\"; exit 3; fi\necho \"args: $*\"\nenv\n",
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[tokio::test]
async fn environment_flags_and_redaction() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = RunnerConfig::new(fake_terraform(dir.path()));
    cfg.inherit_env = Some(vec!["PATH".into()]);
    cfg.plugin_cache_dir = Some(dir.path().join("plugins"));
    let runner = TerraformRunner::new(cfg).unwrap();
    let ws = Workspace::new(dir.path())
        .with_env("AWS_REGION", "eu-west-1")
        .with_secret_env("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMIK7MDENG");
    let out = runner.init(&ws, &InitOptions::default()).await.unwrap();
    let text = &out.stdout.text;
    assert!(
        text.contains("args: init -input=false -no-color -lock-timeout=60s"),
        "{text}"
    );
    assert!(text.contains("TF_IN_AUTOMATION=1"), "{text}");
    assert!(text.contains("TF_PLUGIN_CACHE_DIR="), "{text}");
    assert!(text.contains("AWS_REGION=eu-west-1"), "{text}");
    assert!(text.contains("AWS_SECRET_ACCESS_KEY=[REDACTED]"), "{text}");
    assert!(!text.contains("wJalrXUtnFEMIK7MDENG"));
    assert!(
        !text.contains("\nHOME="),
        "HOME is not in the allow-list: {text}"
    );
    assert!(dir.path().join("plugins").is_dir());
}

#[tokio::test]
async fn long_output_is_bounded_and_failure_classified() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = RunnerConfig::new(fake_terraform(dir.path()));
    cfg.output_limit = 1000;
    let runner = TerraformRunner::new(cfg).unwrap();
    let ws = Workspace::new(dir.path())
        .with_env("FAKE_MODE", "flood")
        .with_secret_env("FAKE_SECRET", "tail-secret-123");
    let err = runner.init(&ws, &InitOptions::default()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Failed);
    let out = err.output().unwrap();
    assert_eq!(out.exit_code, Some(3));
    assert_eq!(
        out.stdout.total_bytes,
        100_000 + "end tail-secret-123\n".len() as u64
    );
    assert!(out.stdout.truncated());
    assert!(out.stdout.text.contains("bytes of output omitted"));
    assert!(
        out.stdout.text.ends_with("end [REDACTED]\n"),
        "{:?}",
        out.stdout
    );
    assert!(out.stdout.text.len() < 1200);
    assert!(!format!("{err}").contains("tail-secret-123"));
}

#[tokio::test]
async fn cancelled_before_start() {
    let mut cfg = RunnerConfig::new("/bin/true");
    cfg.max_concurrent = 1;
    let runner = TerraformRunner::new(cfg).unwrap();
    let token = CancelToken::new();
    token.cancel();
    // Hold the only slot so the command must wait, then see it give up on cancel.
    let _slot = runner.inner.slots.clone().acquire_owned().await.unwrap();
    let ws = Workspace::new(std::env::temp_dir()).with_cancel(token);
    let err = runner.init(&ws, &InitOptions::default()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Cancelled);
    // With a free slot, a cancelled token still starts nothing.
    drop(_slot);
    let err = runner.init(&ws, &InitOptions::default()).await.unwrap_err();
    assert!(
        matches!(
            err,
            TerraformError::Cancelled {
                termination: Termination::NotStarted,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(runner.stats().started, 0);
}

//! Helpers shared by the integration tests that run a real Terraform (or OpenTofu) binary:
//! which binary, a runner configuration for tests, fixture directories, secret checks.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use tollgate::terraform::{RunnerConfig, Timeouts, Workspace};

pub const SECRET_PASSWORD: &str = "pw-Vq7LrT2xKz9";
pub const SECRET_TOKEN: &str = "tok-8HcN3yWqP4s";

/// The configured binary, if it runs.
pub fn terraform_binary() -> Option<PathBuf> {
    let binary = RunnerConfig::from_env().binary;
    match std::process::Command::new(&binary)
        .arg("version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
    {
        Ok(s) if s.success() => Some(binary),
        other => {
            eprintln!(
                "SKIPPED: no usable terraform binary ({} = {:?}, tried {}: {other:?}); run `bash tests/tools/install-terraform.sh` and set TOLLGATE_TERRAFORM to the path it prints",
                tollgate::terraform::TERRAFORM_ENV,
                std::env::var_os(tollgate::terraform::TERRAFORM_ENV),
                binary.display()
            );
            None
        }
    }
}

pub fn config(binary: PathBuf) -> RunnerConfig {
    let mut cfg = RunnerConfig::new(binary);
    cfg.timeouts = Timeouts::all(Duration::from_secs(120));
    cfg.lock_timeout = Duration::from_secs(0);
    cfg.grace_period = Duration::from_secs(5);
    cfg
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tf")
        .join(name)
}

/// A temporary copy of a fixture, plus the workspace for it.
pub struct Dir {
    pub tmp: tempfile::TempDir,
}

impl Dir {
    pub fn new(name: &str) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(fixture(name)).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), tmp.path().join(entry.file_name())).unwrap();
        }
        Self { tmp }
    }

    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// A workspace with a CLI config file (silences Terraform's warning about a missing one).
    pub fn workspace(&self) -> Workspace {
        let cli_config = match std::env::var_os("TF_CLI_CONFIG_FILE") {
            Some(p) => PathBuf::from(p),
            None => {
                let p = self.path().join(".terraformrc");
                if !p.exists() {
                    std::fs::write(&p, "").unwrap();
                }
                p
            }
        };
        Workspace::new(self.path()).with_env("TF_CLI_CONFIG_FILE", cli_config.to_string_lossy())
    }
}

pub fn assert_no_secret(what: &str, text: &str) {
    assert!(
        !text.contains(SECRET_PASSWORD) && !text.contains(SECRET_TOKEN),
        "{what} leaks a secret:\n{text}"
    );
}

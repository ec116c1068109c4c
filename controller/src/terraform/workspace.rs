//! Where and with what one command runs.

use std::fmt;
use std::path::{Path, PathBuf};

use super::*;

/// Where and with what a command runs: the working directory (the rendered root module),
/// extra environment (credentials, `TF_VAR_*`), the secrets to redact, and an optional
/// cancellation token. `Debug` never shows environment values.
#[derive(Clone)]
pub struct Workspace {
    /// The Terraform working directory.
    pub dir: PathBuf,
    pub(super) env: Vec<(String, String)>,
    pub(super) redactor: Redactor,
    pub(super) cancel: Option<CancelToken>,
}

impl Workspace {
    /// A workspace in `dir`.
    #[must_use]
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            env: Vec::new(),
            redactor: Redactor::default(),
            cancel: None,
        }
    }

    /// Adds a non-secret environment variable (e.g. `AWS_REGION`).
    #[must_use]
    pub fn with_env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Adds a secret environment variable (a credential, or `TF_VAR_x` of a sensitive input):
    /// passed only through the process environment, and its value is redacted everywhere.
    #[must_use]
    pub fn with_secret_env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let value = value.into();
        self.redactor.add(&value);
        self.env.push((name.into(), value));
        self
    }

    /// Adds secrets to redact (e.g. sensitive inputs written to a var file).
    #[must_use]
    pub fn with_redactor(mut self, redactor: &Redactor) -> Self {
        self.redactor.extend(redactor);
        self
    }

    /// Makes commands in this workspace stop when `token` is cancelled.
    #[must_use]
    pub fn with_cancel(mut self, token: CancelToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// The secrets redacted from this workspace's output.
    #[must_use]
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// The environment of this workspace's commands (without where the `kubernetes` backend
    /// finds its cluster, which is the runner's own) and the secrets it redacts: what a
    /// runner Job receives through its inputs Secret (`--runner=job`).
    #[must_use]
    pub fn handover(&self) -> (Vec<(String, String)>, Vec<String>) {
        let env = self
            .env
            .iter()
            .filter(|(name, _)| !name.starts_with("KUBE_"))
            .cloned()
            .collect();
        (env, self.redactor.secrets())
    }

    pub(super) fn path(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.dir.join(p)
        }
    }
}

impl fmt::Debug for Workspace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Workspace")
            .field("dir", &self.dir)
            .field(
                "env",
                &self.env.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            )
            .field("redactor", &self.redactor)
            .field("cancellable", &self.cancel.is_some())
            .finish()
    }
}

//! The runner's inputs bundle (the rendered configuration and the run's environment) and
//! the gzip the runner's Secrets carry files in.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::RunnerJobError;

/// What the pod needs besides the plan: the rendered configuration and the environment
/// of the run (credentials, `TF_VAR_*`), all treated as secret.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct Bundle {
    /// The working directory's files by relative path.
    pub files: BTreeMap<String, String>,
    /// Environment of the Terraform commands.
    pub env: Vec<(String, String)>,
    /// Values removed from anything the pod logs or writes back.
    pub redact: Vec<String>,
}

/// The top-level files of a rendered working directory a run needs (besides `modules/`).
const TOP_FILES: &[&str] = &[
    crate::render::ROOT_FILE,
    crate::render::VARIABLES_FILE,
    crate::render::METADATA_FILE,
    ".terraform.lock.hcl",
];

impl Bundle {
    /// Reads the rendered configuration in `dir` (the top-level files and `modules/`).
    ///
    /// # Errors
    /// A file that cannot be read or is not UTF-8.
    pub fn read_dir(dir: &Path) -> Result<BTreeMap<String, String>, RunnerJobError> {
        let mut files = BTreeMap::new();
        for name in TOP_FILES {
            let path = dir.join(name);
            if path.exists() {
                files.insert((*name).to_owned(), read_text(&path)?);
            }
        }
        let mut pending = vec![PathBuf::from("modules")];
        while let Some(relative) = pending.pop() {
            let Ok(entries) = std::fs::read_dir(dir.join(&relative)) else {
                continue;
            };
            for entry in entries.flatten() {
                let child = relative.join(entry.file_name());
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    pending.push(child);
                } else {
                    files.insert(
                        child.to_string_lossy().into_owned(),
                        read_text(&dir.join(&child))?,
                    );
                }
            }
        }
        Ok(files)
    }

    /// Writes the files under `dir`, refusing any path that would leave it.
    ///
    /// # Errors
    /// An absolute path or `..`, or a write that fails.
    pub fn write_files(&self, dir: &Path) -> Result<(), RunnerJobError> {
        for (relative, text) in &self.files {
            let path = Path::new(relative);
            if !path.components().all(|c| matches!(c, Component::Normal(_))) {
                return Err(RunnerJobError::Bundle(format!(
                    "the path {relative:?} leaves the working directory"
                )));
            }
            let target = dir.join(path);
            let failed = |e: std::io::Error| RunnerJobError::File {
                path: target.display().to_string(),
                message: e.to_string(),
            };
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(failed)?;
            }
            std::fs::write(&target, text).map_err(failed)?;
        }
        Ok(())
    }

    /// gzipped JSON.
    ///
    /// # Errors
    /// Never in practice (writing to memory).
    pub fn encode(&self) -> Result<Vec<u8>, RunnerJobError> {
        let json = serde_json::to_vec(self).map_err(|e| RunnerJobError::Bundle(e.to_string()))?;
        gzip(&json)
    }

    /// The bundle [`Bundle::encode`] wrote.
    ///
    /// # Errors
    /// Not gzip, not the bundle's JSON.
    pub fn decode(bytes: &[u8]) -> Result<Self, RunnerJobError> {
        let json = gunzip(bytes).map_err(|e| RunnerJobError::Bundle(e.to_string()))?;
        serde_json::from_slice(&json).map_err(|e| RunnerJobError::Bundle(e.to_string()))
    }
}

/// `bytes`, gzipped (how files travel through the runner's Secrets).
///
/// # Errors
/// Never in practice (writing to memory).
pub fn gzip(bytes: &[u8]) -> Result<Vec<u8>, RunnerJobError> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes)
        .and_then(|()| gz.finish())
        .map_err(|e| RunnerJobError::Gzip(e.to_string()))
}

/// What [`gzip`] wrote.
///
/// # Errors
/// Not gzip.
pub fn gunzip(bytes: &[u8]) -> Result<Vec<u8>, RunnerJobError> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|e| RunnerJobError::Gzip(e.to_string()))?;
    Ok(out)
}

fn read_text(path: &Path) -> Result<String, RunnerJobError> {
    let bytes = std::fs::read(path).map_err(|e| RunnerJobError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    String::from_utf8(bytes).map_err(|_| RunnerJobError::File {
        path: path.display().to_string(),
        message: "not UTF-8 text".into(),
    })
}

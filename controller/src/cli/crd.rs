use std::path::PathBuf;
use std::process::ExitCode;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use super::CliError;
use crate::api::{ApprovalPolicy, Checkpoint, NamespaceBudget, Project};

#[derive(Debug, clap::Args)]
pub struct CrdArgs {
    /// Write `<plural>.<group>.yaml` files into this folder instead of printing.
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
}

fn crds() -> [CustomResourceDefinition; 4] {
    [
        Project::crd(),
        Checkpoint::crd(),
        ApprovalPolicy::crd(),
        NamespaceBudget::crd(),
    ]
}

/// The CRDs as `(file name, YAML)` pairs, the exact contents of `crds/`.
pub fn crd_files() -> Result<Vec<(String, String)>, CliError> {
    crds()
        .iter()
        .map(|crd| {
            let name = crd.metadata.name.clone().unwrap_or_default();
            let yaml =
                serde_saphyr::to_string(crd).map_err(|e| CliError::Serialise(e.to_string()))?;
            Ok((format!("{name}.yaml"), yaml))
        })
        .collect()
}

/// All CRDs as one multi-document YAML stream.
pub fn crds_yaml() -> Result<String, CliError> {
    Ok(crd_files()?
        .into_iter()
        .map(|(_, yaml)| format!("---\n{yaml}"))
        .collect())
}

pub fn run(args: &CrdArgs) -> Result<ExitCode, CliError> {
    match &args.out_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|source| CliError::Io {
                path: dir.clone(),
                source,
            })?;
            for (name, yaml) in crd_files()? {
                let path = dir.join(name);
                std::fs::write(&path, yaml).map_err(|source| CliError::Io {
                    path: path.clone(),
                    source,
                })?;
                outln!("wrote {}", path.display())?;
            }
        }
        None => {
            let yaml = crds_yaml()?;
            out!("{yaml}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

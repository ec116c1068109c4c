//! `tollgate audit verify FILE`: checks an audit log's hash chain.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::CliError;
use crate::audit::verify;

/// Exit code when the log was tampered with (distinct from 1, a command error).
const TAMPERED: u8 = 2;

/// `tollgate audit …`
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: AuditCommand,
}

/// Audit subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check an audit log's hash chain: exit 0 when intact, 2 naming the first bad line.
    Verify {
        /// The audit log (JSON lines).
        file: PathBuf,
    },
}

pub(super) fn run(args: &AuditArgs) -> Result<ExitCode, CliError> {
    match &args.command {
        AuditCommand::Verify { file } => {
            let text = std::fs::read_to_string(file).map_err(|source| CliError::Read {
                path: file.clone(),
                source,
            })?;
            let report = verify(&text);
            match report.finding {
                None => {
                    outln!(
                        "{}: {} records, chain intact; last hash {}",
                        file.display(),
                        report.records,
                        report.last_hash.as_deref().unwrap_or("(none: empty log)")
                    )?;
                    Ok(ExitCode::SUCCESS)
                }
                Some(finding) => {
                    eprintln!("{}: {finding}", file.display());
                    Ok(ExitCode::from(TAMPERED))
                }
            }
        }
    }
}

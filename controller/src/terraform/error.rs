//! Errors of the runner, classified so that callers can decide: retry, open a checkpoint, or
//! fail. Every text in an error has been through the run's [`Redactor`](super::Redactor).
//!
//! About 600 lines: the classification (what Terraform's messages mean, which are worth a
//! retry) and the messages that say what to do are one table, kept together so a new kind of
//! failure is added in one place.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::capture::CapturedText;
use super::version::TerraformVersion;

/// The output of one Terraform command, redacted and bounded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CommandOutput {
    /// The command, e.g. `plan`.
    pub command: String,
    /// The exit code (`None` if the process was ended by a signal).
    pub exit_code: Option<i32>,
    /// Standard output.
    pub stdout: CapturedText,
    /// Standard error.
    pub stderr: CapturedText,
    /// How long it ran, in milliseconds.
    pub duration_ms: u64,
}

impl CommandOutput {
    /// The first `Error:` block of the output (or its last lines), for messages. Redacted.
    #[must_use]
    pub fn excerpt(&self) -> String {
        excerpt(&self.stderr.text, &self.stdout.text)
    }
}

/// How a timed-out or cancelled process was ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Termination {
    /// The command was cancelled while waiting for a process slot: nothing was started.
    NotStarted,
    /// SIGINT was sent and Terraform exited within the grace period: it has stopped its
    /// operation, written state and released its lock.
    Interrupted,
    /// SIGINT was sent, Terraform did not exit within the grace period, and its process group
    /// was killed (SIGKILL): state may not have been written and a remote lock may be held.
    Killed,
}

impl fmt::Display for Termination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotStarted => {
                f.write_str("it was cancelled before Terraform started, so nothing ran")
            }
            Self::Interrupted => f.write_str(
                "sent SIGINT and Terraform exited within the grace period (it stops gracefully, writes state and releases its lock)",
            ),
            Self::Killed => f.write_str(
                "sent SIGINT, Terraform did not exit within the grace period, so its process group was killed with SIGKILL (state may not have been written; a remote backend lock may still be held: check the state and force-unlock it if its holder is gone)",
            ),
        }
    }
}

/// What Terraform says about a held state lock (`Lock Info:` in its error message).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockInfo {
    /// The lock id, to pass to `force-unlock`.
    pub id: String,
    /// The state path.
    pub path: Option<String>,
    /// What the holder is doing, e.g. `OperationTypeApply`.
    pub operation: Option<String>,
    /// Who holds it, e.g. `user@host`.
    pub who: Option<String>,
    /// The holder's Terraform version.
    pub version: Option<String>,
    /// When it was taken.
    pub created: Option<String>,
    /// Extra information.
    pub info: Option<String>,
}

impl LockInfo {
    /// Parses the `Lock Info:` block of a Terraform "Error acquiring the state lock" message.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        let start = text.find("Lock Info:")?;
        let mut info = LockInfo::default();
        for line in text.get(start..).unwrap_or_default().lines().skip(1) {
            let line = line.trim();
            if line.is_empty() {
                // `Info:` may be the last, empty line of the block; a blank line ends it.
                if !info.id.is_empty() {
                    break;
                }
                continue;
            }
            let Some((key, value)) = line.split_once(':') else {
                break;
            };
            let value = value.trim().to_owned();
            let opt = (!value.is_empty()).then(|| value.clone());
            match key.trim() {
                "ID" => info.id = value,
                "Path" => info.path = opt,
                "Operation" => info.operation = opt,
                "Who" => info.who = opt,
                "Version" => info.version = opt,
                "Created" => info.created = opt,
                "Info" => info.info = opt,
                _ => break,
            }
        }
        (!info.id.is_empty()).then_some(info)
    }
}

impl fmt::Display for LockInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "lock id {}", self.id)?;
        if let Some(who) = &self.who {
            write!(f, ", held by {who}")?;
        }
        if let Some(op) = &self.operation {
            write!(f, " for {op}")?;
        }
        if let Some(created) = &self.created {
            write!(f, " since {created}")?;
        }
        Ok(())
    }
}

/// The class of an error, for metrics, status conditions and retry decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorKind {
    /// The binary could not be run or is unsupported.
    Setup,
    /// Another operation holds the state lock.
    StateLocked,
    /// A network or provider error that may go away on retry.
    Transient,
    /// The configuration (rendered HCL, inputs) is invalid.
    Config,
    /// Credentials are missing, invalid, expired, or lack permissions.
    Auth,
    /// The saved plan no longer matches the state, or its file changed.
    StalePlan,
    /// The command ran past its timeout and was stopped.
    Timeout,
    /// The command was cancelled and stopped.
    Cancelled,
    /// The process was killed by a signal the runner did not send (e.g. out of memory).
    Killed,
    /// Terraform failed for another reason (e.g. a resource or provisioner error).
    Failed,
    /// Output could not be read or parsed.
    Output,
}

/// Errors of the Terraform runner.
#[derive(Debug, thiserror::Error)]
pub enum TerraformError {
    /// The binary could not be started.
    #[error(
        "could not run Terraform binary {binary}: {source}; install Terraform (>= 1.5) or OpenTofu, or point --terraform / TOLLGATE_TERRAFORM at it"
    )]
    Spawn {
        /// The configured binary.
        binary: PathBuf,
        /// Why it could not start.
        source: std::io::Error,
    },
    /// The binary is a version the runner does not support.
    #[error(
        "{found} is not supported (need {} >= {}); install a newer version and point TOLLGATE_TERRAFORM at it",
        found.flavour,
        found.flavour.minimum()
    )]
    UnsupportedVersion {
        /// What was found.
        found: TerraformVersion,
    },
    /// Another operation holds the state lock.
    #[error(
        "terraform {command}: the state is locked by another operation ({lock}); wait for it to finish and retry; if its holder is gone (crashed runner), force-unlock lock id {}",
        lock.id
    )]
    StateLocked {
        /// The command that could not get the lock.
        command: String,
        /// The lock, as Terraform described it.
        lock: Box<LockInfo>,
        /// The command's output.
        output: Box<CommandOutput>,
    },
    /// A network or provider failure that may go away.
    #[error(
        "terraform {command}: transient network or provider error; retry with backoff: {}",
        output.excerpt()
    )]
    Transient {
        /// The command.
        command: String,
        /// The command's output.
        output: Box<CommandOutput>,
    },
    /// The configuration or inputs are invalid.
    #[error(
        "terraform {command}: invalid configuration; fix the Project's inputs or the module (retrying will not help): {}",
        output.excerpt()
    )]
    Config {
        /// The command.
        command: String,
        /// The command's output.
        output: Box<CommandOutput>,
    },
    /// Credentials are missing, invalid or lack permissions.
    #[error(
        "terraform {command}: authentication or authorization failed; check the Project's credentials and their permissions: {}",
        output.excerpt()
    )]
    Auth {
        /// The command.
        command: String,
        /// The command's output.
        output: Box<CommandOutput>,
    },
    /// The saved plan is stale: the state changed since it was made.
    #[error(
        "terraform {command}: the saved plan is stale (the state changed since it was made); plan again and have the new plan approved: {}",
        output.excerpt()
    )]
    StalePlan {
        /// The command.
        command: String,
        /// The command's output.
        output: Box<CommandOutput>,
    },
    /// The saved plan file is not the one that was approved.
    #[error(transparent)]
    PlanFile(#[from] crate::plan::PlanError),
    /// The command ran past its timeout.
    #[error(
        "terraform {command} timed out after {}s; {termination}; raise the timeout if the operation is legitimately slow",
        timeout.as_secs_f64()
    )]
    Timeout {
        /// The command.
        command: String,
        /// The timeout.
        timeout: Duration,
        /// How the process was ended.
        termination: Termination,
        /// What it printed until then.
        output: Box<CommandOutput>,
    },
    /// The command was cancelled.
    #[error("terraform {command} was cancelled; {termination}")]
    Cancelled {
        /// The command.
        command: String,
        /// How the process was ended.
        termination: Termination,
        /// What it printed until then.
        output: Box<CommandOutput>,
    },
    /// The process was killed by a signal the runner did not send.
    #[error(
        "terraform {command} was killed by signal {}; check memory limits of the runner; state may not have been written and the lock may still be held",
        signal.map_or_else(|| "?".to_owned(), |s| s.to_string())
    )]
    Killed {
        /// The command.
        command: String,
        /// The signal, if known.
        signal: Option<i32>,
        /// What it printed until then.
        output: Box<CommandOutput>,
    },
    /// Terraform failed for a reason not classified above.
    #[error(
        "terraform {command} failed (exit code {}); see its output: {}",
        output.exit_code.map_or_else(|| "?".to_owned(), |c| c.to_string()),
        output.excerpt()
    )]
    Failed {
        /// The command.
        command: String,
        /// The command's output.
        output: Box<CommandOutput>,
    },
    /// The command printed more than the runner keeps where it needs the whole output (JSON).
    #[error(
        "terraform {command} printed more than {limit} bytes of JSON; raise the runner's json_output_limit"
    )]
    OutputTooLarge {
        /// The command.
        command: String,
        /// The limit.
        limit: usize,
    },
    /// The command's JSON output could not be parsed.
    #[error("could not parse the JSON output of terraform {command}: {message}")]
    Json {
        /// The command.
        command: String,
        /// The parse error (no values).
        message: String,
    },
    /// Local I/O around the command failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
    /// Terraform failed in a runner Job's pod (`--runner=job`); the message is the pod's,
    /// redacted there.
    #[error("runner Job {job}: {message}")]
    InJob {
        /// The class the pod gave the error.
        kind: ErrorKind,
        /// The Job.
        job: String,
        /// What the pod reported.
        message: String,
    },
}

impl TerraformError {
    /// The error a runner Job's pod reported (`kind` as the pod classified it).
    #[must_use]
    pub fn in_job(kind: ErrorKind, job: &str, message: &str) -> Self {
        Self::InJob {
            kind,
            job: job.to_owned(),
            message: message.to_owned(),
        }
    }

    /// The class of this error.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Spawn { .. } | Self::UnsupportedVersion { .. } | Self::Io { .. } => {
                ErrorKind::Setup
            }
            Self::StateLocked { .. } => ErrorKind::StateLocked,
            Self::Transient { .. } => ErrorKind::Transient,
            Self::Config { .. } => ErrorKind::Config,
            Self::Auth { .. } => ErrorKind::Auth,
            Self::StalePlan { .. } => ErrorKind::StalePlan,
            Self::PlanFile(e) => match e {
                crate::plan::PlanError::DigestMismatch { .. } => ErrorKind::StalePlan,
                crate::plan::PlanError::Io { .. } => ErrorKind::Setup,
                crate::plan::PlanError::Json(_)
                | crate::plan::PlanError::UnsupportedFormat { .. } => ErrorKind::Output,
            },
            Self::Timeout { .. } => ErrorKind::Timeout,
            Self::Cancelled { .. } => ErrorKind::Cancelled,
            Self::Killed { .. } => ErrorKind::Killed,
            Self::Failed { .. } => ErrorKind::Failed,
            Self::OutputTooLarge { .. } | Self::Json { .. } => ErrorKind::Output,
            Self::InJob { kind, .. } => *kind,
        }
    }

    /// Whether retrying the same command later may succeed (lock held, transient errors).
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind(), ErrorKind::StateLocked | ErrorKind::Transient)
    }

    /// The command's (redacted) output, if the error has one.
    #[must_use]
    pub fn output(&self) -> Option<&CommandOutput> {
        match self {
            Self::StateLocked { output, .. }
            | Self::Transient { output, .. }
            | Self::Config { output, .. }
            | Self::Auth { output, .. }
            | Self::StalePlan { output, .. }
            | Self::Timeout { output, .. }
            | Self::Cancelled { output, .. }
            | Self::Killed { output, .. }
            | Self::Failed { output, .. } => Some(output),
            _ => None,
        }
    }

    /// Whether Terraform refused because the working directory must be (re)initialised:
    /// modules, backend or providers out of date.
    #[must_use]
    pub fn needs_init(&self) -> bool {
        self.output().is_some_and(|output| {
            INIT_MARKERS
                .iter()
                .any(|m| output.stderr.text.contains(m) || output.stdout.text.contains(m))
        })
    }

    /// The lock, if the error is a held state lock.
    #[must_use]
    pub fn lock(&self) -> Option<&LockInfo> {
        match self {
            Self::StateLocked { lock, .. } => Some(lock),
            _ => None,
        }
    }
}

const LOCK_MARKERS: &[&str] = &[
    "Error acquiring the state lock",
    "Error locking state",
    // The kubernetes backend, when `init` creates the first (empty) state under a held lock:
    // "Error loading state: the state is already locked by another terraform client"
    // (OpenTofu: "… by another tofu client").
    "the state is already locked by another",
];

const STALE_MARKERS: &[&str] = &["Saved plan is stale", "Saved plan does not match"];

const AUTH_MARKERS: &[&str] = &[
    "NoCredentialProviders",
    "no valid credential sources",
    "failed to refresh cached credentials",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "security token included in the request is expired",
    "security token included in the request is invalid",
    "AccessDenied",
    "UnauthorizedOperation",
    "AuthFailure",
    "is not authorized to perform",
    "not authorized to perform sts:AssumeRole",
    "Unauthorized",
    "Forbidden",
    "status code: 401",
    "status code: 403",
    "StatusCode: 401",
    "StatusCode: 403",
    "error getting credentials",
    "could not find default credentials",
];

const TRANSIENT_MARKERS: &[&str] = &[
    "connection reset by peer",
    "connection refused",
    "i/o timeout",
    "TLS handshake timeout",
    "no such host",
    "temporary failure in name resolution",
    "context deadline exceeded",
    "net/http: request canceled",
    "unexpected EOF",
    "broken pipe",
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "Rate exceeded",
    "TooManyRequests",
    "status code: 429",
    "StatusCode: 429",
    "status code: 500",
    "status code: 502",
    "status code: 503",
    "status code: 504",
    "StatusCode: 503",
    "ServiceUnavailable",
    "Service Unavailable",
    "InternalError",
    "InternalFailure",
    "RequestTimeout",
    "SlowDown",
    "Failed to query available provider packages",
    "Failed to install provider",
    "could not connect to registry",
    "Error while installing",
    "timeout while waiting for plugin to start",
    "plugin exited before we could connect",
    "The plugin encountered an error, and failed to respond",
];

/// A provider that cannot be installed from where the CLI configuration points (a mirror
/// without it, no release matching the constraint): retrying will not make it appear, so
/// these win over [`TRANSIENT_MARKERS`] (Terraform's heading for them, "Failed to query
/// available provider packages", is also what an unreachable registry gets).
const PROVIDER_UNAVAILABLE_MARKERS: &[&str] = &[
    "was not found in any of the search locations",
    "no available releases match the given constraints",
    "does not have a package available for your current platform",
];

/// Terraform's words for "run init first"; also configuration errors (retrying the same
/// command does not help, initialising does).
const INIT_MARKERS: &[&str] = &[
    "Module not installed",
    "Module source has changed",
    "Module version requirements have changed",
    "Backend initialization required",
    "Backend configuration changed",
    "Inconsistent dependency lock file",
    "Required plugins are not installed",
    "missing or corrupted provider plugins",
];

const CONFIG_MARKERS: &[&str] = &[
    "Unsupported argument",
    "Missing required argument",
    "Unsupported attribute",
    "Unsupported block type",
    "Missing required provider",
    "Invalid value for variable",
    "Invalid value for input variable",
    "No value for required variable",
    "Reference to undeclared",
    "Invalid reference",
    "Invalid expression",
    "Invalid function argument",
    "Call to unknown function",
    "Invalid count argument",
    "Invalid for_each argument",
    "Invalid template interpolation value",
    "Incorrect attribute value type",
    "Argument or block definition required",
    "Duplicate resource",
    "Duplicate variable declaration",
    "Duplicate output definition",
    "Variables not allowed",
    "Unreadable module directory",
    "Invalid backend configuration",
    "Cycle:",
    "Unsupported Terraform Core version",
    "Failed to read file",
    "Invalid variable",
    "Resource precondition failed",
    "Resource postcondition failed",
    "Output refers to sensitive values",
    "Too many command line arguments",
    "Failed to load plugin schemas",
];

/// Sorts a failed command's output into an error class. Order matters: a lock error is a
/// lock error even if it mentions a network failure.
pub(crate) fn classify(command: &str, output: CommandOutput) -> TerraformError {
    let text = format!("{}\n{}", output.stderr.text, output.stdout.text);
    // Terraform wraps its diagnostics at the terminal's width: match phrases across lines.
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let has = |markers: &[&str]| markers.iter().any(|m| flat.contains(m));
    let command = command.to_owned();
    let output = Box::new(output);
    if has(LOCK_MARKERS) {
        let lock = Box::new(LockInfo::parse(&text).unwrap_or_else(|| LockInfo {
            id: "(unknown: Terraform printed no lock info)".into(),
            ..LockInfo::default()
        }));
        return TerraformError::StateLocked {
            command,
            lock,
            output,
        };
    }
    if has(STALE_MARKERS) {
        return TerraformError::StalePlan { command, output };
    }
    if has(AUTH_MARKERS) {
        return TerraformError::Auth { command, output };
    }
    if has(PROVIDER_UNAVAILABLE_MARKERS) {
        return TerraformError::Config { command, output };
    }
    if has(TRANSIENT_MARKERS) {
        return TerraformError::Transient { command, output };
    }
    if has(CONFIG_MARKERS) || has(INIT_MARKERS) {
        return TerraformError::Config { command, output };
    }
    TerraformError::Failed { command, output }
}

/// The first `Error:` block (up to a few lines), else the last non-empty lines.
fn excerpt(stderr: &str, stdout: &str) -> String {
    const MAX_LINES: usize = 12;
    const MAX_CHARS: usize = 1200;
    let source = if stderr.contains("Error") || stdout.is_empty() {
        stderr
    } else {
        stdout
    };
    let lines: Vec<&str> = source.lines().collect();
    let picked: Vec<&str> = match lines
        .iter()
        .position(|l| l.trim_start().starts_with("Error"))
    {
        Some(i) => lines
            .iter()
            .skip(i)
            .filter(|l| !l.trim().is_empty())
            .take(MAX_LINES)
            .copied()
            .collect(),
        None => {
            let non_empty: Vec<&str> = lines
                .iter()
                .filter(|l| !l.trim().is_empty())
                .copied()
                .collect();
            non_empty
                .iter()
                .skip(non_empty.len().saturating_sub(MAX_LINES))
                .copied()
                .collect()
        }
    };
    let mut s = picked
        .iter()
        .map(|l| l.trim())
        .collect::<Vec<_>>()
        .join(" | ");
    if s.chars().count() > MAX_CHARS {
        s = s.chars().take(MAX_CHARS).collect::<String>() + " …";
    }
    if s.is_empty() {
        "(no output)".into()
    } else {
        s
    }
}

#[cfg(test)]
mod tests;

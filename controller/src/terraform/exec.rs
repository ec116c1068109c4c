//! Running one command: a slot, the process with its timeout and redaction, a span, and
//! the classification of its failure.

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tracing::Instrument as _;

use super::process::{Ended, Finished, Spec};
use super::*;

impl TerraformRunner {
    pub(super) fn lock_timeout_arg(&self) -> OsString {
        format!(
            "-lock-timeout={}s",
            self.inner.config.lock_timeout.as_secs()
        )
        .into()
    }

    /// Runs one command: waits for a slot, runs the process, records a span.
    pub(super) async fn exec(
        &self,
        ws: &Workspace,
        command: &'static str,
        args: Vec<OsString>,
        timeout: Duration,
        raw_stdout: bool,
    ) -> Result<Finished, TerraformError> {
        let cfg = &self.inner.config;
        let span = tracing::info_span!(
            "terraform",
            command,
            dir = %ws.dir.display(),
            duration_ms = tracing::field::Empty,
            exit_code = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        // Shutting down: no new work. What only reads (`show`, `output` of an apply that just
        // finished) may still run, so a finished apply is recorded whole.
        let refused = || {
            self.inner.closed.load(Ordering::SeqCst) && matches!(command, "init" | "plan" | "apply")
        };
        let not_started = |why: &str| {
            tracing::Span::current().record("outcome", why);
            Err(TerraformError::Cancelled {
                command: command.to_owned(),
                termination: Termination::NotStarted,
                output: Box::default(),
            })
        };
        let fut = async {
            if refused() {
                return not_started("refused: shutting down");
            }
            let permit = {
                let acquire = self.inner.slots.clone().acquire_owned();
                match &ws.cancel {
                    Some(token) => tokio::select! {
                        p = acquire => p,
                        () = token.cancelled() => return not_started("cancelled before start"),
                    },
                    None => acquire.await,
                }
            }
            .map_err(|_| TerraformError::Io {
                context: "the runner's process slots were closed".into(),
                source: std::io::Error::other("semaphore closed"),
            })?;
            if ws.cancel.as_ref().is_some_and(CancelToken::is_cancelled) || refused() {
                return not_started("cancelled before start");
            }
            let now = self.inner.running.fetch_add(1, Ordering::SeqCst) + 1;
            let slot = process::Slot {
                _permit: permit,
                running: Arc::clone(&self.inner.running),
                _active: self.inner.active.enter(&ws.dir),
            };
            self.inner.peak.fetch_max(now, Ordering::SeqCst);
            self.inner.started.fetch_add(1, Ordering::SeqCst);

            let mut env: Vec<(OsString, OsString)> = vec![
                ("TF_IN_AUTOMATION".into(), "1".into()),
                ("TF_INPUT".into(), "0".into()),
                ("CHECKPOINT_DISABLE".into(), "1".into()),
            ];
            if let Some(cache) = &cfg.plugin_cache_dir {
                env.push(("TF_PLUGIN_CACHE_DIR".into(), cache.clone().into_os_string()));
            }
            env.extend(ws.env.iter().map(|(k, v)| (k.into(), v.into())));
            let env_remove = std::env::vars_os()
                .map(|(k, _)| k)
                .filter(|k| k.to_string_lossy().starts_with("TF_CLI_ARGS"))
                .collect();
            let mut full_args: Vec<OsString> = vec![command.into()];
            full_args.extend(args);
            let spec = Spec {
                command,
                program: cfg.binary.clone(),
                args: full_args,
                dir: ws.dir.clone(),
                env_remove,
                env_keep: cfg.inherit_env.clone(),
                env,
                timeout,
                grace: cfg.grace_period,
                output_limit: cfg.output_limit,
                raw_stdout_limit: raw_stdout.then_some(cfg.json_output_limit),
            };
            let cancel: Vec<&CancelToken> = ws
                .cancel
                .iter()
                .chain(std::iter::once(&self.inner.interrupt))
                .collect();
            let finished = process::run(spec, slot, &ws.redactor, &cancel)
                .await
                .map_err(|source| TerraformError::Spawn {
                    binary: cfg.binary.clone(),
                    source,
                })?;
            let span = tracing::Span::current();
            span.record("duration_ms", finished.output.duration_ms);
            if let Some(code) = finished.output.exit_code {
                span.record("exit_code", code);
            }
            let outcome = match &finished.ended {
                Ended::Exited(s) if s.success() => "ok",
                Ended::Exited(s) if s.code() == Some(2) => "exit 2",
                Ended::Exited(s) if s.code().is_none() => "killed by signal",
                Ended::Exited(_) => "failed",
                Ended::TimedOut(Termination::Killed) => "timeout, SIGKILL",
                Ended::TimedOut(_) => "timeout, SIGINT",
                Ended::Cancelled(Termination::Killed) => "cancelled, SIGKILL",
                Ended::Cancelled(_) => "cancelled, SIGINT",
            };
            span.record("outcome", outcome);
            tracing::info!(
                duration_ms = finished.output.duration_ms,
                outcome,
                "terraform {command} finished"
            );
            Ok(finished)
        };
        fut.instrument(span).await
    }

    /// Maps how the process ended to a result; `ok_codes` are the exit codes that mean
    /// success.
    pub(super) fn check(
        command: &'static str,
        timeout: Duration,
        finished: Finished,
        ok_codes: &[i32],
    ) -> Result<Finished, TerraformError> {
        match finished.ended {
            Ended::TimedOut(termination) => Err(TerraformError::Timeout {
                command: command.to_owned(),
                timeout,
                termination,
                output: Box::new(finished.output),
            }),
            Ended::Cancelled(termination) => Err(TerraformError::Cancelled {
                command: command.to_owned(),
                termination,
                output: Box::new(finished.output),
            }),
            Ended::Exited(status) => match status.code() {
                Some(code) if ok_codes.contains(&code) => Ok(finished),
                Some(_) => {
                    let err = error::classify(command, finished.output);
                    tracing::warn!(kind = ?err.kind(), error = %err, "terraform {command} failed");
                    Err(err)
                }
                None => Err(TerraformError::Killed {
                    command: command.to_owned(),
                    signal: status.signal(),
                    output: Box::new(finished.output),
                }),
            },
        }
    }

    pub(super) async fn run_simple(
        &self,
        ws: &Workspace,
        command: &'static str,
        args: Vec<OsString>,
        timeout: Duration,
    ) -> Result<CommandOutput, TerraformError> {
        let finished = self.exec(ws, command, args, timeout, false).await?;
        Self::check(command, timeout, finished, &[0]).map(|f| f.output)
    }

    pub(super) async fn run_json(
        &self,
        ws: &Workspace,
        command: &'static str,
        args: Vec<OsString>,
        timeout: Duration,
    ) -> Result<Vec<u8>, TerraformError> {
        let finished = self.exec(ws, command, args, timeout, true).await?;
        let finished = Self::check(command, timeout, finished, &[0])?;
        finished
            .raw_stdout
            .ok_or_else(|| TerraformError::OutputTooLarge {
                command: command.to_owned(),
                limit: self.inner.config.json_output_limit,
            })
    }
}

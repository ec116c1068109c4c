use std::io::IsTerminal;
use std::process::ExitCode;

use tollgate::cli::{Cli, run};

#[tokio::main]
async fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TOLLGATE_LOG")
        .unwrap_or_else(|_| "warn".into());
    // Structured JSON for log pipelines (TOLLGATE_LOG_FORMAT=json); text for people, coloured
    // only on a terminal (escape codes in `kubectl logs` or a file are noise).
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if std::env::var("TOLLGATE_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
    match run(Cli::parse_from_program(std::env::args_os())).await {
        Ok(code) => code,
        // The reader went away (`tollgate cost … | head`): it has what it wanted.
        Err(err) if err.is_broken_pipe() => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

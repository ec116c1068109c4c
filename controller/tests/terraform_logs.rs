//! What the Terraform runner logs when a command fails, against a real Terraform binary:
//! the failure is logged with its duration, and no secret reaches the log. One test only, so
//! it can own the process-wide log subscriber.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use tollgate::terraform::{ErrorKind, InitOptions, PlanRequest, TerraformRunner};

use support::{Dir, SECRET_TOKEN, assert_no_secret, config, terraform_binary};

/// A log sink for tests.
#[derive(Clone, Default)]
struct LogBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl LogBuffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("log buffer poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// A failing apply is classified, its message says what failed, and a secret given only in
/// the environment and echoed by the provisioner appears nowhere in what the runner returns.
#[tokio::test]
async fn failing_apply_is_classified_and_redacted() {
    let Some(bin) = terraform_binary() else {
        return;
    };
    // Capture everything the runner logs. A global subscriber, set before anything logs, in
    // a test binary of its own: a thread-local one (`set_default`) races with other tests'
    // threads over tracing's per-callsite interest cache and can miss spans.
    let logs = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(logs.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let runner = TerraformRunner::new(config(bin)).unwrap();
    let dir = Dir::new("failing");
    let ws = dir
        .workspace()
        .with_secret_env("TOLLGATE_TEST_TOKEN", SECRET_TOKEN);
    runner.init(&ws, &InitOptions::default()).await.unwrap();
    let planned = runner
        .plan(&ws, &PlanRequest::new("p.tfplan"))
        .await
        .unwrap();
    let err = runner.apply(&ws, &planned.saved).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Failed, "{err}");
    assert!(!err.is_retryable());
    let msg = err.to_string();
    assert!(msg.contains("local-exec provisioner error"), "{msg}");
    assert_no_secret("error message", &msg);
    assert_no_secret("error Debug", &format!("{err:?}"));
    let output = err.output().unwrap();
    assert_eq!(output.exit_code, Some(1));
    let all = format!("{}\n{}", output.stdout, output.stderr);
    assert_no_secret("captured output", &all);
    // The provisioner really printed it: it was replaced, not lost.
    assert!(all.contains("[REDACTED]"), "{all}");
    let logged = logs.text();
    assert!(logged.contains("terraform apply failed"), "{logged}");
    assert!(logged.contains("duration_ms"), "{logged}");
    assert_no_secret("logs", &logged);
    // The secret never was on the command line: the provisioner only saw it in its env.
    assert!(
        !std::fs::read_to_string(dir.path().join("main.tf"))
            .unwrap()
            .contains(SECRET_TOKEN)
    );
}

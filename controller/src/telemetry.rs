//! Metrics (Prometheus text format) and the `/metrics`, `/healthz`, `/readyz` endpoints.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Errors of the telemetry server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TelemetryError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}; choose another --metrics-addr")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The underlying error.
        source: std::io::Error,
    },
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CategoryLabel {
    category: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: String,
}

/// The controller's metrics.
pub struct Metrics {
    registry: Registry,
    reconciles: Counter,
    failures: Family<CategoryLabel, Counter>,
    terraform_commands: Gauge,
    checkpoints_opened: Counter,
    applies: Family<OutcomeLabel, Counter>,
    ready: AtomicBool,
    /// Why the webhook registration blocks readiness (`None`: it does not).
    webhook_blocker: std::sync::Mutex<Option<String>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("tollgate");
        let reconciles = Counter::default();
        let failures = Family::<CategoryLabel, Counter>::default();
        let terraform_commands = Gauge::default();
        let checkpoints_opened = Counter::default();
        let applies = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "reconciles",
            "Project reconciles started",
            reconciles.clone(),
        );
        registry.register(
            "reconcile_failures",
            "Reconciles that failed, by error category",
            failures.clone(),
        );
        registry.register(
            "terraform_commands_started",
            "Terraform processes started since the controller started",
            terraform_commands.clone(),
        );
        registry.register(
            "checkpoints_opened",
            "Checkpoints opened for a person to decide",
            checkpoints_opened.clone(),
        );
        registry.register(
            "applies",
            "Applies of saved plans, by outcome",
            applies.clone(),
        );
        Self {
            registry,
            reconciles,
            failures,
            terraform_commands,
            checkpoints_opened,
            applies,
            ready: AtomicBool::new(false),
            webhook_blocker: std::sync::Mutex::new(None),
        }
    }
}

impl Metrics {
    /// A reconcile started.
    pub fn reconcile_started(&self) {
        self.reconciles.inc();
    }

    /// A reconcile failed with an error of `category`.
    pub fn reconcile_failed(&self, category: &str) {
        self.failures
            .get_or_create(&CategoryLabel {
                category: category.to_owned(),
            })
            .inc();
    }

    /// A checkpoint was opened.
    pub fn checkpoint_opened(&self) {
        self.checkpoints_opened.inc();
    }

    /// An apply finished with `outcome` (`succeeded`, `failed`).
    pub fn applied(&self, outcome: &str) {
        self.applies
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Records how many Terraform processes the runner has started.
    pub fn set_terraform_commands(&self, started: u64) {
        self.terraform_commands
            .set(i64::try_from(started).unwrap_or(i64::MAX));
    }

    /// Marks the controller ready (the API answered and Projects can be listed).
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::SeqCst);
    }

    /// Records whether the webhook configurations match the certificate this controller
    /// serves; while they do not, /readyz answers 503 with the reason.
    pub fn set_webhook_registered(&self, verdict: Result<(), String>) {
        if let Ok(mut blocker) = self.webhook_blocker.lock() {
            *blocker = verdict.err();
        }
    }

    /// `Ok` when ready, else why not.
    pub fn readiness(&self) -> Result<(), String> {
        if !self.ready.load(Ordering::SeqCst) {
            return Err("the API has not answered yet".to_owned());
        }
        match self.webhook_blocker.lock() {
            Ok(blocker) => match blocker.as_ref() {
                Some(reason) => Err(format!("admission webhook: {reason}")),
                None => Ok(()),
            },
            Err(_) => Err("readiness state poisoned".to_owned()),
        }
    }

    /// The metrics in Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Encoding into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Binds the address of the metrics server, so a taken port fails start-up, not silently.
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, TelemetryError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| TelemetryError::Bind { addr, source })
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `listener` until the task is dropped.
/// `before_scrape` refreshes gauges that are read from elsewhere (e.g. the Terraform
/// runner's counters).
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    before_scrape: Arc<dyn Fn() + Send + Sync>,
) {
    tracing::info!(addr = ?listener.local_addr().ok(), "serving /metrics, /healthz, /readyz");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let metrics = metrics.clone();
        let before_scrape = before_scrape.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                let metrics = metrics.clone();
                let before_scrape = before_scrape.clone();
                async move {
                    let (status, body) = match req.uri().path() {
                        "/metrics" => {
                            before_scrape();
                            (StatusCode::OK, metrics.encode())
                        }
                        "/healthz" => (StatusCode::OK, "ok\n".to_owned()),
                        "/readyz" => match metrics.readiness() {
                            Ok(()) => (StatusCode::OK, "ok\n".to_owned()),
                            Err(reason) => (
                                StatusCode::SERVICE_UNAVAILABLE,
                                format!("not ready: {reason}\n"),
                            ),
                        },
                        _ => (StatusCode::NOT_FOUND, "not found\n".to_owned()),
                    };
                    let mut response = Response::new(Full::new(Bytes::from(body)));
                    *response.status_mut() = status;
                    Ok::<_, std::convert::Infallible>(response)
                }
            });
            if let Err(err) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %err, "metrics connection ended");
            }
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn readiness_waits_for_the_api_and_the_webhook_registration() {
        let m = Metrics::default();
        assert!(m.readiness().is_err());
        m.set_ready();
        assert_eq!(m.readiness(), Ok(()));
        m.set_webhook_registered(Err(
            "MutatingWebhookConfiguration tollgate is missing".into()
        ));
        let reason = m.readiness().unwrap_err();
        assert!(
            reason.contains("admission webhook: MutatingWebhookConfiguration tollgate is missing"),
            "{reason}"
        );
        m.set_webhook_registered(Ok(()));
        assert_eq!(m.readiness(), Ok(()));
    }

    #[test]
    fn metrics_are_prefixed_and_labelled() {
        let m = Metrics::default();
        m.reconcile_started();
        m.reconcile_failed("terraform");
        m.set_terraform_commands(7);
        let text = m.encode();
        assert!(text.contains("tollgate_reconciles_total 1"), "{text}");
        assert!(
            text.contains("tollgate_reconcile_failures_total{category=\"terraform\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("tollgate_terraform_commands_started 7"),
            "{text}"
        );
    }
}

//! Metrics (Prometheus text format) and the `/metrics`, `/healthz`, `/readyz` endpoints.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Response, StatusCode};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::serve::{self, Limits};

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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResponseLabels {
    r#type: String,
    environment: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TimerLabels {
    timer: String,
    r#type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PendingLabels {
    r#type: String,
    age: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProjectLabels {
    namespace: String,
    project: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    channel: String,
    outcome: String,
}

/// Bounds of the response-time histogram (seconds): around the 30-minute target.
const RESPONSE_BUCKETS: [f64; 10] = [
    60.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0,
];

/// Age buckets of pending checkpoints: within the 30-minute target, late, very late.
fn age_bucket(age_seconds: i64) -> &'static str {
    match age_seconds {
        ..1800 => "under_30m",
        1800..14400 => "30m_to_4h",
        _ => "over_4h",
    }
}

/// The controller's metrics.
pub struct Metrics {
    registry: Registry,
    reconciles: Counter,
    failures: Family<CategoryLabel, Counter>,
    terraform_commands: Gauge,
    checkpoints_opened: Counter,
    applies: Family<OutcomeLabel, Counter>,
    response_time: Family<ResponseLabels, Histogram>,
    timers: Family<TimerLabels, Counter>,
    pending: Family<PendingLabels, Gauge>,
    deliveries: Family<DeliveryLabels, Counter>,
    drift_checks: Family<OutcomeLabel, Counter>,
    drift_restores: Counter,
    health_checks: Family<OutcomeLabel, Counter>,
    policy_evaluations: Family<OutcomeLabel, Counter>,
    cost_explorer_checks: Family<OutcomeLabel, Counter>,
    cost_variance: Family<ProjectLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    /// Pending checkpoints by uid: type and opening time, turned into `pending` at scrape.
    open_checkpoints:
        std::sync::Mutex<std::collections::HashMap<String, (String, jiff::Timestamp)>>,
    ready: AtomicBool,
    leader: Gauge,
    run_slots_in_use: Gauge,
    run_queue_waiting: Gauge,
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
        let leader = Gauge::default();
        let run_slots_in_use = Gauge::default();
        let run_queue_waiting = Gauge::default();
        registry.register(
            "run_slots_in_use",
            "Terraform run slots held (running, or reserved for a Project being woken)",
            run_slots_in_use.clone(),
        );
        registry.register(
            "run_queue_waiting",
            "Projects waiting for a Terraform run slot, all namespaces",
            run_queue_waiting.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica runs the reconcilers (holds the leader Lease), else 0",
            leader.clone(),
        );
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
        let response_time = Family::<ResponseLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(RESPONSE_BUCKETS)) as fn() -> Histogram,
        );
        let timers = Family::<TimerLabels, Counter>::default();
        let pending = Family::<PendingLabels, Gauge>::default();
        let deliveries = Family::<DeliveryLabels, Counter>::default();
        registry.register(
            "checkpoint_response_seconds",
            "Time from a checkpoint opening to a person's decision, by checkpoint type and environment",
            response_time.clone(),
        );
        registry.register(
            "checkpoint_timers",
            "SLA timers fired (reminder, escalation, expiry), by checkpoint type",
            timers.clone(),
        );
        registry.register(
            "checkpoints_pending",
            "Checkpoints waiting for a decision, by type and age (under_30m, 30m_to_4h, over_4h)",
            pending.clone(),
        );
        registry.register(
            "notification_deliveries",
            "Notification deliveries, by channel and outcome (delivered, failed)",
            deliveries.clone(),
        );
        let drift_checks = Family::<OutcomeLabel, Counter>::default();
        let drift_restores = Counter::default();
        registry.register(
            "drift_checks",
            "Scheduled drift checks (refresh-only plans), by outcome (clean, drifted, failed)",
            drift_checks.clone(),
        );
        registry.register(
            "drift_restores",
            "Checkpoints opened to restore the declared state after drift",
            drift_restores.clone(),
        );
        let health_checks = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "health_checks",
            "Post-apply health check runs (spec.healthChecks), by outcome (passed, failed)",
            health_checks.clone(),
        );
        let policy_evaluations = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "policy_evaluations",
            "Plans judged by the Rego policies, by outcome (passed, warned, denied, error)",
            policy_evaluations.clone(),
        );
        let cost_explorer_checks = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "cost_explorer_checks",
            "Cost Explorer checks of a Project's spend (two paid requests each), by outcome (within, exceeded, unjudged, failed)",
            cost_explorer_checks.clone(),
        );
        let cost_variance =
            Family::<ProjectLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register(
            "cost_variance_ratio",
            "Projected month (Cost Explorer month to date + forecast) over the estimate, minus 1, by Project: 0.25 is 25% above",
            cost_variance.clone(),
        );
        Self {
            registry,
            reconciles,
            cost_explorer_checks,
            cost_variance,
            drift_checks,
            drift_restores,
            health_checks,
            failures,
            terraform_commands,
            checkpoints_opened,
            applies,
            response_time,
            timers,
            pending,
            deliveries,
            policy_evaluations,
            open_checkpoints: std::sync::Mutex::default(),
            ready: AtomicBool::new(false),
            leader,
            run_slots_in_use,
            run_queue_waiting,
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

    /// A drift check ended with `outcome` (`clean`, `drifted`, `failed`).
    pub fn drift_checked(&self, outcome: &str) {
        self.drift_checks
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// The health checks after an apply ended with `outcome` (`passed`, `failed`).
    pub fn health_checked(&self, outcome: &str) {
        self.health_checks
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// A Cost Explorer check ended with `outcome` (`within`, `exceeded`, `unjudged`,
    /// `failed`).
    pub fn cost_explorer_checked(&self, outcome: &str) {
        self.cost_explorer_checks
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// The variance ratio of Project `namespace/project`; `None` forgets it (no judgement,
    /// or the Project is gone).
    pub fn set_cost_variance(&self, namespace: &str, project: &str, ratio: Option<f64>) {
        let labels = ProjectLabels {
            namespace: namespace.to_owned(),
            project: project.to_owned(),
        };
        match ratio {
            Some(ratio) => {
                self.cost_variance.get_or_create(&labels).set(ratio);
            }
            None => {
                self.cost_variance.remove(&labels);
            }
        }
    }

    /// A plan to restore drift was made for a person to decide.
    pub fn drift_restore_opened(&self) {
        self.drift_restores.inc();
    }

    /// A person decided a checkpoint of `checkpoint_type` in `environment` `seconds` after
    /// it opened.
    pub fn checkpoint_decided(&self, checkpoint_type: &str, environment: &str, seconds: f64) {
        self.response_time
            .get_or_create(&ResponseLabels {
                r#type: checkpoint_type.to_owned(),
                environment: environment.to_owned(),
            })
            .observe(seconds);
    }

    /// An SLA timer (`reminder`, `escalation`, `expiry`) fired.
    pub fn checkpoint_timer(&self, timer: &str, checkpoint_type: &str) {
        self.timers
            .get_or_create(&TimerLabels {
                timer: timer.to_owned(),
                r#type: checkpoint_type.to_owned(),
            })
            .inc();
    }

    /// The checkpoint `uid` waits for a decision since `opened_at`.
    pub fn checkpoint_pending(&self, uid: &str, checkpoint_type: &str, opened_at: jiff::Timestamp) {
        if let Ok(mut open) = self.open_checkpoints.lock() {
            open.insert(uid.to_owned(), (checkpoint_type.to_owned(), opened_at));
        }
    }

    /// The checkpoint `uid` no longer waits (decided, expired, superseded or deleted).
    pub fn checkpoint_settled(&self, uid: &str) {
        if let Ok(mut open) = self.open_checkpoints.lock() {
            open.remove(uid);
        }
    }

    /// The policies judged a plan: `outcome` is `passed`, `warned`, `denied` or `error`.
    pub fn policy_evaluated(&self, outcome: &str) {
        self.policy_evaluations
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// A notification to `channel` ended with `outcome` (`delivered`, `failed`).
    pub fn notification(&self, channel: &str, outcome: &str) {
        self.deliveries
            .get_or_create(&DeliveryLabels {
                channel: channel.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Recomputes the pending gauge from the open checkpoints' ages at `now`.
    fn refresh_pending(&self, now: jiff::Timestamp) {
        let Ok(open) = self.open_checkpoints.lock() else {
            return;
        };
        self.pending.clear();
        for (checkpoint_type, opened_at) in open.values() {
            let age = now.duration_since(*opened_at).as_secs();
            self.pending
                .get_or_create(&PendingLabels {
                    r#type: checkpoint_type.clone(),
                    age: age_bucket(age).to_owned(),
                })
                .inc();
        }
    }

    /// Records how many Terraform processes the runner has started.
    pub fn set_terraform_commands(&self, started: u64) {
        self.terraform_commands
            .set(i64::try_from(started).unwrap_or(i64::MAX));
    }

    /// Records the Terraform run slots held and the Projects waiting for one.
    pub fn set_run_queue(&self, in_use: usize, waiting: usize) {
        self.run_slots_in_use
            .set(i64::try_from(in_use).unwrap_or(i64::MAX));
        self.run_queue_waiting
            .set(i64::try_from(waiting).unwrap_or(i64::MAX));
    }

    /// Records whether this replica runs the reconcilers.
    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
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
        self.refresh_pending(jiff::Timestamp::now());
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

/// Serves `/metrics`, `/healthz` and `/readyz` on `listener` until `shutdown` resolves,
/// then drains open connections ([`crate::serve`]: the same connection limit, accept
/// backoff and draining as the webhook). `before_scrape` refreshes gauges that are read
/// from elsewhere (e.g. the Terraform runner's counters).
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    before_scrape: Arc<dyn Fn() + Send + Sync>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tracing::info!(addr = ?listener.local_addr().ok(), "serving /metrics, /healthz, /readyz");
    let limits = Limits {
        max_connections: MAX_CONNECTIONS,
        ..Limits::default()
    };
    serve::accept_loop(
        "metrics",
        listener,
        limits,
        shutdown,
        move |tcp, peer, stopping| {
            let metrics = metrics.clone();
            let before_scrape = before_scrape.clone();
            serve::http1("metrics", tcp, peer, limits, stopping, move |req| {
                std::future::ready(respond(req.uri().path(), &metrics, before_scrape.as_ref()))
            })
        },
    )
    .await;
}

/// Scrapers and probes need few connections; the limit keeps a flood from exhausting file
/// descriptors the controller needs.
const MAX_CONNECTIONS: usize = 64;

fn respond(
    path: &str,
    metrics: &Metrics,
    before_scrape: &(dyn Fn() + Send + Sync),
) -> Response<Full<Bytes>> {
    let (status, body) = match path {
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
    response
}

#[cfg(test)]
mod tests;

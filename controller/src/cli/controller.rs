//! `tollgate controller`: runs the reconcilers, the metrics/health server and (when
//! configured) the admission webhook.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use super::CliError;
use crate::catalog::Catalog;
use crate::gate::GateDefaults;
use crate::reconcile::{self, Context, ControllerConfig, PolicySettings};
use crate::telemetry::{self, Metrics};
use crate::terraform::{RunnerConfig, TerraformRunner};

#[derive(Debug, clap::Args)]
pub struct ControllerArgs {
    /// Kubeconfig to use (default: in-cluster config, else $KUBECONFIG / ~/.kube/config).
    #[arg(long, env = "KUBECONFIG", value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Root of the per-Project Terraform working directories.
    #[arg(
        long,
        env = "TOLLGATE_WORK_DIR",
        default_value = "/var/lib/tollgate/work",
        value_name = "DIR"
    )]
    work_dir: PathBuf,
    /// Kubeconfig for Terraform's `kubernetes` state backend (default: --kubeconfig; none in cluster).
    #[arg(long, value_name = "FILE")]
    backend_kubeconfig: Option<PathBuf>,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, default_value = "127.0.0.1:8080")]
    metrics_addr: SocketAddr,
    /// Projects reconciled at once.
    #[arg(long, default_value_t = 4)]
    concurrency: u16,
    /// Price cache written by `tollgate pricebook refresh`: its rows override the embedded
    /// price book.
    #[arg(long, value_name = "FILE", env = "TOLLGATE_PRICE_CACHE")]
    price_cache: Option<PathBuf>,
    /// The account allow-list (YAML, see docs/security.md): which namespaces may deploy
    /// into which AWS accounts with which roles, and where static keys are allowed. Without
    /// it any account may be named and static keys are refused.
    #[arg(long, env = "TOLLGATE_CREDENTIALS_CONFIG", value_name = "FILE")]
    credentials_config: Option<PathBuf>,
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "TOLLGATE_NAMESPACE")]
    namespace: Option<String>,
    /// Reconcile only the Projects whose labels match this label selector (e.g.
    /// `tollgate.dev/shard=a`). Checkpoints are still reconciled in every watched namespace:
    /// never run two controllers with different selectors over one namespace.
    #[arg(long, env = "TOLLGATE_PROJECT_SELECTOR", value_name = "SELECTOR")]
    project_selector: Option<String>,
    /// Namespace of Terraform state (the default `kubernetes` backend), saved plans, and
    /// Destroy checkpoints of Projects whose namespace is being deleted. Only the controller
    /// (and cluster administrators) should have rights there. Default: the pod's namespace
    /// ($POD_NAMESPACE), else tollgate-system.
    #[arg(long, env = "TOLLGATE_STATE_NAMESPACE", value_name = "NAMESPACE")]
    state_namespace: Option<String>,
    /// How long Terraform waits for a held state lock before the reconcile fails and is
    /// retried with backoff (seconds).
    #[arg(long, env = "TOLLGATE_LOCK_TIMEOUT", value_name = "SECONDS")]
    lock_timeout: Option<u64>,
    /// Final (decided, expired, superseded) Checkpoints kept per Project; older ones are
    /// deleted when the Project is planned again (their record stays in status.history and
    /// the audit trail). Undecided ones and the one the Project references are always kept.
    #[arg(long, env = "TOLLGATE_KEEP_CHECKPOINTS", default_value_t = crate::retention::DEFAULT_KEEP, value_name = "N")]
    keep_checkpoints: usize,
    /// Terraform runs at once (across all Projects; the slots are shared fairly between
    /// namespaces, and a Project waiting for one says so in status.queue). Keep
    /// --concurrency at least as high, or slots stay idle.
    #[arg(long, default_value_t = 4)]
    max_terraform: usize,
    /// Estimate vs actual: ask AWS Cost Explorer this often (e.g. `24h`) what each Ready AWS
    /// Project's tagged resources cost this month, and compare with its estimate. Off when
    /// not given. Each check is two requests at $0.01 each (docs/cost.md).
    #[arg(long, env = "TOLLGATE_COST_EXPLORER_INTERVAL", value_name = "DURATION")]
    cost_explorer_interval: Option<String>,
    /// A variance between the projected month and the estimate beyond this percentage (either
    /// way) sets `CostWithinEstimate=False` and notifies `CostVariance`.
    #[arg(long, env = "TOLLGATE_COST_VARIANCE_THRESHOLD", default_value_t = crate::spend::DEFAULT_THRESHOLD_PERCENT, value_name = "PERCENT")]
    cost_variance_threshold: u32,
    /// Serve the admission webhook with this PEM serving certificate (with --webhook-key).
    #[arg(
        long,
        env = "TOLLGATE_WEBHOOK_CERT",
        requires = "webhook_key",
        value_name = "FILE"
    )]
    webhook_cert: Option<PathBuf>,
    /// PEM private key of the webhook's serving certificate.
    #[arg(
        long,
        env = "TOLLGATE_WEBHOOK_KEY",
        requires = "webhook_cert",
        value_name = "FILE"
    )]
    webhook_key: Option<PathBuf>,
    /// Address the admission webhook listens on (HTTPS).
    #[arg(long, env = "TOLLGATE_WEBHOOK_LISTEN", default_value = "0.0.0.0:8443")]
    webhook_listen: SocketAddr,
    /// Name of the webhook configurations that send requests to this controller: /readyz
    /// is not ready while they are missing or their caBundle does not verify
    /// --webhook-cert.
    #[arg(
        long,
        env = "TOLLGATE_WEBHOOK_CONFIGURATION",
        default_value = "tollgate",
        value_name = "NAME"
    )]
    webhook_configuration: String,
    /// Usernames of this controller, which the webhook lets write status (never decide).
    #[arg(
        long = "controller-user",
        env = "TOLLGATE_CONTROLLER_USERS",
        value_delimiter = ',',
        default_value = "system:serviceaccount:tollgate-system:tollgate"
    )]
    controller_users: Vec<String>,
    /// `NAMESPACE/NAME` of the Secret holding the key that seals decisions (created with a
    /// random key when missing). The controller and every webhook serving it must share it.
    #[arg(
        long,
        env = "TOLLGATE_DECISION_KEY_SECRET",
        default_value = crate::admission::seal_key::DEFAULT_SEAL_KEY_SECRET,
        value_name = "NAMESPACE/NAME"
    )]
    decision_key_secret: String,
    /// Append the hash-chained audit trail to this file (check it with `tollgate audit
    /// verify FILE`); it is always also logged to the target `tollgate::audit`.
    #[arg(long, env = "TOLLGATE_AUDIT_FILE", value_name = "FILE")]
    audit_file: Option<PathBuf>,
    /// Default checkpoint deadlines and reminder interval, for every environment and per
    /// environment (YAML: `respondWithin`, `escalateAfter`, `expireAfter`, `remindEvery`,
    /// `environments.<name>.*`; docs/operator-guide.md). A Project's `spec.approval.sla`
    /// wins over them value by value.
    #[arg(long, env = "TOLLGATE_SLA_DEFAULTS", value_name = "FILE")]
    sla_defaults: Option<PathBuf>,
    /// Namespace of the cluster's policy ConfigMaps (label `tollgate.dev/policy`; Rego that
    /// judges every Project's plans, docs/policy.md). Only TOs should write there.
    /// Default: the state namespace.
    #[arg(long, env = "TOLLGATE_POLICY_NAMESPACE", value_name = "NAMESPACE")]
    policy_namespace: Option<String>,
    /// Settings of the built-in policy pack (YAML: `requiredTags`, `productionEnvironments`,
    /// `adminPorts`, `instanceTypes`, `disabledRules`; docs/policy.md).
    #[arg(long, env = "TOLLGATE_POLICY_CONFIG", value_name = "FILE")]
    policy_config: Option<PathBuf>,
    /// Environments where every change needs a person (repeat the flag for several).
    #[arg(long = "protected-environment", default_values_t = GateDefaults::default().protected_environments)]
    protected_environments: Vec<String>,
    /// Run the reconcilers only while holding a Lease, so several replicas can run (each
    /// serves the webhook and /metrics; one reconciles). A replica that loses the Lease
    /// stops and exits with status 1.
    #[arg(long, env = "TOLLGATE_LEADER_ELECT")]
    leader_elect: bool,
    /// Name of the leader Lease.
    #[arg(
        long,
        env = "TOLLGATE_LEADER_ELECT_LEASE_NAME",
        default_value = "tollgate-controller",
        value_name = "NAME"
    )]
    leader_elect_lease_name: String,
    /// Namespace of the leader Lease (default: the state namespace).
    #[arg(
        long,
        env = "TOLLGATE_LEADER_ELECT_LEASE_NAMESPACE",
        value_name = "NAMESPACE"
    )]
    leader_elect_lease_namespace: Option<String>,
    /// How long a leader that stops renewing keeps the Lease before another replica takes
    /// over (seconds); it renews every duration*2/15 and steps down after duration*2/3
    /// without a successful renewal.
    #[arg(
        long,
        env = "TOLLGATE_LEADER_ELECT_LEASE_DURATION",
        default_value_t = 15,
        value_name = "SECONDS"
    )]
    leader_elect_lease_duration: u64,
    /// On SIGTERM or a lost Lease, how long running Terraform commands get to finish
    /// before they are interrupted (SIGINT, then SIGKILL after 60 s). Keep
    /// terminationGracePeriodSeconds above this plus the 60 s (docs/deploy.md).
    #[arg(
        long,
        env = "TOLLGATE_SHUTDOWN_GRACE_PERIOD",
        default_value_t = 90,
        value_name = "SECONDS"
    )]
    shutdown_grace_period: u64,
    /// A run's assumed-role credentials are minted again when less than this is left of
    /// them, so an apply longer than `sessionDuration` keeps working: Terraform gets a
    /// loopback credentials endpoint and a per-run token, never keys.
    #[arg(
        long,
        env = "TOLLGATE_CREDENTIALS_REFRESH_MARGIN",
        default_value_t = 300,
        value_name = "SECONDS"
    )]
    credentials_refresh_margin: u64,
    /// Where applies run: `in-process` (Terraform as a child of the controller) or `job`
    /// (one Kubernetes Job per apply, which survives a controller restart; docs/deploy.md).
    #[arg(long, env = "TOLLGATE_RUNNER", value_enum, default_value_t = super::runner::RunnerMode::InProcess)]
    pub(super) runner: super::runner::RunnerMode,
    /// Image of runner Jobs: the controller's own (required with --runner=job).
    #[arg(
        long,
        env = "TOLLGATE_RUNNER_IMAGE",
        value_name = "IMAGE",
        required_if_eq("runner", "job")
    )]
    pub(super) runner_image: Option<String>,
    /// Runner Jobs' ServiceAccount, resources and deadline, per namespace or Project
    /// (YAML; docs/deploy.md). Default: ServiceAccount `tollgate-runner`, 2 CPU / 2 GiB, 1 h.
    #[arg(long, env = "TOLLGATE_RUNNER_CONFIG", value_name = "FILE")]
    pub(super) runner_config: Option<PathBuf>,
}

/// Why the reconcilers stop.
enum Stop {
    /// SIGTERM or Ctrl-C: a clean exit.
    Signal,
    /// The leader Lease is gone: exit with an error so the pod restarts as a candidate.
    Lost(crate::leader::LeaderError),
}

pub(super) async fn client(kubeconfig: Option<&PathBuf>) -> Result<Client, CliError> {
    let config = match kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path).map_err(|e| {
                CliError::Kube(format!("cannot read kubeconfig {}: {e}", path.display()))
            })?;
            Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(|e| CliError::Kube(e.to_string()))?
        }
        None => Config::infer().await.map_err(|e| {
            CliError::Kube(format!(
                "no Kubernetes configuration found ({e}); pass --kubeconfig"
            ))
        })?,
    };
    Client::try_from(config).map_err(|e| CliError::Kube(e.to_string()))
}

pub async fn run(
    args: &ControllerArgs,
    catalog: Option<&std::path::Path>,
) -> Result<ExitCode, CliError> {
    let client = client(args.kubeconfig.as_ref()).await?;
    let mut runner_config = RunnerConfig::from_env();
    runner_config.max_concurrent = args.max_terraform;
    if let Some(seconds) = args.lock_timeout {
        runner_config.lock_timeout = std::time::Duration::from_secs(seconds);
    }
    let runner = TerraformRunner::new(runner_config)?;
    let version = runner.ensure_supported().await?;
    let catalog = Catalog::load(&Catalog::locate(catalog))?;
    tracing::info!(terraform = %version, modules = catalog.modules().len(), "starting controller");
    let metrics = Arc::new(Metrics::default());
    let config = ControllerConfig {
        work_root: args.work_dir.clone(),
        backend_kubeconfig: args
            .backend_kubeconfig
            .clone()
            .or_else(|| args.kubeconfig.clone()),
        gate: GateDefaults {
            protected_environments: args.protected_environments.clone(),
        },
        concurrency: args.concurrency,
        namespace: args.namespace.clone(),
        project_selector: args.project_selector.clone(),
        state_namespace: state_namespace(args.state_namespace.as_deref()),
        policy: PolicySettings {
            namespace: args
                .policy_namespace
                .clone()
                .unwrap_or_else(|| state_namespace(args.state_namespace.as_deref())),
            config: match &args.policy_config {
                Some(path) => read_policy_config(path)?,
                None => crate::policy::PolicyConfig::default(),
            },
        },
        sla: match &args.sla_defaults {
            Some(path) => super::render::read_sla_defaults(path)?,
            None => crate::sla::SlaDefaults::default(),
        },
        keep_checkpoints: args.keep_checkpoints,
        accounts: match &args.credentials_config {
            Some(path) => Some(Arc::new(crate::credentials::AccountPolicy::load(path)?)),
            None => {
                tracing::warn!(
                    "no --credentials-config: every Project may name any AWS account; give the controller an account allow-list"
                );
                None
            }
        },
        job_runner: super::runner::job_runner(args)?,
        spend: args
            .cost_explorer_interval
            .as_deref()
            .map(|interval| crate::spend::Settings::new(interval, args.cost_variance_threshold))
            .transpose()?,
    };
    let price_book = crate::cost::load_price_book(args.price_cache.as_deref())?;
    let seal_key = Arc::new(
        crate::admission::seal_key::load_or_create(&client, &args.decision_key_secret).await?,
    );
    let mut ctx = Context::new(
        client,
        runner.clone(),
        catalog,
        config,
        metrics.clone(),
        price_book,
        reconcile::Accountability {
            seal_key: seal_key.clone(),
            audit: Arc::new(match &args.audit_file {
                Some(path) => crate::audit::AuditLog::open(path)?,
                None => crate::audit::AuditLog::tracing_only(),
            }),
            notifier: crate::notify::Notifier::new(crate::notify::RetryPolicy::default())?,
        },
    );
    ctx.credentials_broker = Some(
        crate::credentials::broker::Broker::start(
            std::time::Duration::from_secs(args.credentials_refresh_margin),
            std::future::pending::<()>(),
        )
        .await?,
    );
    let ctx = Arc::new(ctx);
    let scrape_runner = runner.clone();
    let scrape_metrics = metrics.clone();
    let before_scrape: Arc<dyn Fn() + Send + Sync> =
        Arc::new(move || scrape_metrics.set_terraform_commands(scrape_runner.stats().started));
    let listener = telemetry::bind(args.metrics_addr).await?;
    let server = tokio::spawn(telemetry::serve(
        listener,
        metrics.clone(),
        before_scrape,
        std::future::pending::<()>(),
    ));
    let webhook = match (&args.webhook_cert, &args.webhook_key) {
        (Some(cert), Some(key)) => {
            let config = crate::admission::WebhookConfig::new(
                args.webhook_listen,
                cert,
                key,
                args.controller_users.clone(),
            );
            let webhook =
                crate::admission::Webhook::bind(config, ctx.client.clone(), seal_key).await?;
            tracing::info!(addr = %args.webhook_listen, "serving the admission webhook");
            metrics.set_webhook_registered(Err("not checked yet".to_owned()));
            let checker = tokio::spawn(watch_registration(
                ctx.client.clone(),
                args.webhook_configuration.clone(),
                cert.clone(),
                metrics.clone(),
            ));
            Some((
                tokio::spawn(webhook.run(std::future::pending::<()>())),
                checker,
            ))
        }
        _ => None,
    };
    // Ready means the API answers and this identity may list what it reconciles.
    let projects: kube::Api<crate::api::Project> = match &args.namespace {
        Some(ns) => kube::Api::namespaced(ctx.client.clone(), ns),
        None => kube::Api::all(ctx.client.clone()),
    };
    projects
        .list(&kube::api::ListParams::default().limit(1))
        .await
        .map_err(|e| CliError::Kube(format!("cannot list Projects ({e}); check the CRDs are installed and the controller's RBAC (deploy/controller-rbac.yaml)")))?;
    check_state_namespace(&ctx).await?;
    // Ready (and serving the webhook) before leading: every replica takes admission traffic.
    metrics.set_ready();
    let election = args.leader_elect.then(|| {
        Arc::new(crate::leader::Election::new(
            ctx.client.clone(),
            args.leader_elect_lease_namespace
                .as_deref()
                .unwrap_or(&ctx.config.state_namespace),
            &args.leader_elect_lease_name,
            &identity(),
            crate::leader::Timing::for_lease_duration(std::time::Duration::from_secs(
                args.leader_elect_lease_duration.max(1),
            )),
        ))
    });
    let mut signal = Box::pin(shutdown_signal());
    if let Some(election) = &election {
        tracing::info!(identity = %election.identity(), "waiting to become the leader");
        tokio::select! {
            () = election.acquire() => {}
            () = &mut signal => {
                stop_serving(server, webhook);
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
    metrics.set_leader(true);
    let grace = std::time::Duration::from_secs(args.shutdown_grace_period);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let stop_runner = runner.clone();
    let holder = election.clone();
    let triggered = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let trigger = triggered.clone();
    let stopping = tokio::spawn(async move {
        let why = match holder {
            Some(election) => tokio::select! {
                () = signal => Stop::Signal,
                lost = election.hold() => Stop::Lost(lost),
            },
            None => {
                signal.await;
                Stop::Signal
            }
        };
        match &why {
            Stop::Signal => tracing::info!(
                grace_s = grace.as_secs(),
                "stopping: no new work; running Terraform commands get the grace period to finish"
            ),
            Stop::Lost(err) => {
                tracing::error!(error = %err, grace_s = grace.as_secs(), "no longer the leader: no new work; running Terraform commands get the grace period to finish")
            }
        }
        // Starts now, while the reconcilers stop taking work and wait for the running ones.
        let drained = tokio::spawn(async move { stop_runner.shut_down(grace).await });
        trigger.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = stop_tx.send(());
        (why, drained)
    });
    reconcile::run(ctx, async move {
        let _ = stop_rx.await;
    })
    .await;
    metrics.set_leader(false);
    let exit = if triggered.load(std::sync::atomic::Ordering::SeqCst) {
        match stopping.await {
            Ok((why, drained)) => {
                match drained.await {
                    Ok(outcome) => tracing::info!(?outcome, "Terraform runner stopped"),
                    Err(err) => {
                        tracing::error!(error = %err, "stopping the Terraform runner failed")
                    }
                }
                match why {
                    Stop::Signal => {
                        if let Some(election) = &election {
                            election.release().await;
                        }
                        ExitCode::SUCCESS
                    }
                    Stop::Lost(_) => ExitCode::FAILURE,
                }
            }
            Err(err) => {
                tracing::error!(error = %err, "the shutdown task failed");
                ExitCode::FAILURE
            }
        }
    } else {
        // The reconcilers ended on their own (their watches closed): not a clean stop.
        stopping.abort();
        tracing::error!("the reconcilers stopped unexpectedly");
        ExitCode::FAILURE
    };
    stop_serving(server, webhook);
    Ok(exit)
}

type Tasks = (tokio::task::JoinHandle<()>, tokio::task::JoinHandle<()>);

fn stop_serving(server: tokio::task::JoinHandle<()>, webhook: Option<Tasks>) {
    if let Some((webhook, checker)) = webhook {
        webhook.abort();
        checker.abort();
    }
    server.abort();
}

/// This replica's name in the leader Lease: the pod's name, else host and process id.
fn identity() -> String {
    if let Ok(pod) = std::env::var("POD_NAME")
        && !pod.is_empty()
    {
        return pod;
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "tollgate".to_owned());
    format!("{host}-{}", std::process::id())
}

/// How often the webhook registration is checked for /readyz.
const REGISTRATION_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(15);

/// Keeps /readyz honest about the webhook: not ready while the configurations named `name`
/// are missing or their caBundle does not verify the certificate in `cert_file` (re-read
/// on every check, as the server does after a rotation). Logs each change with its reason.
async fn watch_registration(
    client: Client,
    name: String,
    cert_file: PathBuf,
    metrics: Arc<Metrics>,
) {
    use k8s_openapi::api::admissionregistration::v1::{
        MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
    };
    let mutating: kube::Api<MutatingWebhookConfiguration> = kube::Api::all(client.clone());
    let validating: kube::Api<ValidatingWebhookConfiguration> = kube::Api::all(client);
    let mut last: Option<Result<(), String>> = None;
    loop {
        let verdict = async {
            let cert = std::fs::read(&cert_file)
                .map_err(|e| format!("cannot read {}: {e}", cert_file.display()))?;
            let m = mutating
                .get_opt(&name)
                .await
                .map_err(|e| format!("cannot read MutatingWebhookConfiguration {name}: {e}"))?;
            let v = validating
                .get_opt(&name)
                .await
                .map_err(|e| format!("cannot read ValidatingWebhookConfiguration {name}: {e}"))?;
            crate::admission::verify_registration(
                &name,
                m.as_ref(),
                v.as_ref(),
                &cert,
                std::time::SystemTime::now(),
            )
        }
        .await;
        if last.as_ref() != Some(&verdict) {
            match &verdict {
                Ok(()) => {
                    tracing::info!(configuration = %name, "admission webhook registered with a CA that verifies the serving certificate: ready")
                }
                Err(reason) => {
                    tracing::warn!(configuration = %name, %reason, "not ready: the admission webhook registration does not match this controller")
                }
            }
        }
        metrics.set_webhook_registered(verdict.clone());
        last = Some(verdict);
        tokio::time::sleep(REGISTRATION_CHECK_INTERVAL).await;
    }
}

/// `--state-namespace`, else the pod's namespace, else the default.
fn state_namespace(flag: Option<&str>) -> String {
    flag.map(str::to_owned)
        .or_else(|| std::env::var("POD_NAMESPACE").ok())
        .filter(|ns| !ns.is_empty())
        .unwrap_or_else(|| crate::state::DEFAULT_STATE_NAMESPACE.to_owned())
}

/// The state namespace must exist: without it no state can be written, and a Destroy of a
/// Project whose namespace is being deleted could not be decided.
async fn check_state_namespace(ctx: &Context) -> Result<(), CliError> {
    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> =
        kube::Api::all(ctx.client.clone());
    let name = &ctx.config.state_namespace;
    match namespaces.get_opt(name).await {
        Ok(Some(_)) => {
            tracing::info!(state_namespace = %name, "Terraform state and saved plans are kept in the state namespace");
            Ok(())
        }
        Ok(None) => Err(CliError::Kube(format!(
            "the state namespace {name} does not exist; create it (deploy/controller-rbac.yaml creates tollgate-system) or pass --state-namespace"
        ))),
        Err(err) => {
            tracing::warn!(state_namespace = %name, error = %err, "cannot check that the state namespace exists");
            Ok(())
        }
    }
}

/// Resolves on SIGTERM (how Kubernetes stops a pod) or Ctrl-C.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot watch SIGTERM; stop with Ctrl-C");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}

/// Reads `--policy-config`.
fn read_policy_config(path: &std::path::Path) -> Result<crate::policy::PolicyConfig, CliError> {
    let text = std::fs::read_to_string(path).map_err(|source| CliError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(crate::policy::PolicyConfig::from_yaml(
        &path.display().to_string(),
        &text,
    )?)
}

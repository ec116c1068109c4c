//! `tollgate dashboard`: the Technical Operator's checkpoint queue in a browser, live, with
//! the plan and cost review, the decision and the Secrets Credential checkpoints ask for,
//! acting only with the person's own Kubernetes identity, never the controller's.
//!
//! Local mode (default): serves loopback only, acts with the person's kubeconfig (like
//! `kubectl proxy`) and prints a sign-in link with a random token. Token mode
//! (`--in-cluster`): each person signs in with their own bearer token and the server acts
//! with it. Pages are rendered on the server ([`html`], every field escaped); a little
//! script (`assets/dashboard.js`) replaces the live parts with what the server pushes as
//! server-sent events from Kubernetes watches ([`live`]). No third-party assets: the
//! stylesheet and script are compiled into the binary.

mod html;
mod live;
mod server;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use crate::cli::checkpoint::CheckpointCliError;
use crate::serve::{self, Limits};

/// What can stop the dashboard from starting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DashboardError {
    /// The kubeconfig cannot be used.
    #[error(transparent)]
    Kubeconfig(#[from] CheckpointCliError),
    /// The address is not on loopback.
    #[error(
        "--listen {0}: local mode serves this machine only; use 127.0.0.1 or [::1] (port 0 picks a free port)"
    )]
    NotLoopback(SocketAddr),
    /// Binding the address failed.
    #[error("cannot listen on {addr}: {source}; pick another port with --listen 127.0.0.1:PORT")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// No random sign-in token.
    #[error("cannot make a sign-in token: the system's random source failed")]
    Random,
    /// Printing the sign-in link failed.
    #[error("cannot print the sign-in link: {0}")]
    Print(std::io::Error),
    /// `--url` is not an http(s) address with a host.
    #[error("--url {0}: give the address people open, e.g. https://tollgate.example.com")]
    Url(String),
    /// `--session-ttl` is not a duration.
    #[error("--session-ttl {0}: give a duration such as 8h or 30m")]
    SessionTtl(String),
    /// Not in a pod, and no kubeconfig naming the API server.
    #[error(
        "--in-cluster: cannot find the API server ({0}); run in a pod, or pass --kubeconfig FILE naming the cluster (its user is not used)"
    )]
    InCluster(String),
}

/// `tollgate dashboard`.
#[derive(Debug, Args)]
pub struct DashboardArgs {
    /// Your kubeconfig (default: $KUBECONFIG, else ~/.kube/config). Every read and every
    /// decision is made with its identity. With --in-cluster only its current cluster
    /// (address and CA) is used, never its user.
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Only these namespaces (comma-separated or repeated; default: every namespace, which
    /// needs the right to list checkpoints in all of them, as tollgate-approver bound
    /// cluster-wide gives).
    #[arg(short = 'n', long, value_delimiter = ',')]
    namespace: Vec<String>,
    /// Where to serve: loopback only in local mode; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:8490", value_name = "ADDR")]
    listen: SocketAddr,
    /// Token mode, for running in the cluster: each person signs in with their own bearer
    /// token (kept in this server's memory for the session), and every read, decision and
    /// Secret is made with it. The API server is the pod's (its ServiceAccount's CA; the
    /// ServiceAccount's own token is never used), or --kubeconfig's current cluster.
    #[arg(long, requires = "url")]
    in_cluster: bool,
    /// With --in-cluster: the address people open, e.g. https://tollgate.example.com (only
    /// requests to its host are answered, forms only from its origin; https makes the
    /// session cookie Secure and `__Host-`).
    #[arg(long, value_name = "URL", requires = "in_cluster")]
    url: Option<hyper::Uri>,
    /// With --in-cluster: how long a sign-in lasts, e.g. 8h or 30m.
    #[arg(long, default_value = "8h", value_name = "DURATION")]
    session_ttl: String,
}

/// Where people reach the dashboard, from `--url`.
fn site(url: &hyper::Uri) -> Result<server::Site, DashboardError> {
    let https = match url.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(DashboardError::Url(url.to_string())),
    };
    let host = url
        .authority()
        .map(|a| a.as_str().to_owned())
        .filter(|a| !a.contains('@'))
        .ok_or_else(|| DashboardError::Url(url.to_string()))?;
    Ok(server::Site { host, https })
}

/// The API server of token mode: the pod's, or --kubeconfig's current cluster.
async fn token_config(kubeconfig: Option<&PathBuf>) -> Result<kube::Config, DashboardError> {
    match kubeconfig {
        Some(_) => Ok(crate::cli::checkpoint::config(kubeconfig).await?),
        None => kube::Config::incluster().map_err(|e| DashboardError::InCluster(e.to_string())),
    }
}

/// Runs the dashboard until interrupted (Ctrl-C).
pub async fn run(args: &DashboardArgs) -> Result<(), DashboardError> {
    let (close, closing) = tokio::sync::watch::channel(false);
    let (dashboard, listener) = match (&args.url, args.in_cluster) {
        (Some(url), true) => {
            let site = site(url)?;
            let ttl = crate::sla::parse_duration("--session-ttl", &args.session_ttl)
                .ok()
                .and_then(|d| Duration::try_from(d).ok())
                .filter(|d| !d.is_zero())
                .ok_or_else(|| DashboardError::SessionTtl(args.session_ttl.clone()))?;
            let config = token_config(args.kubeconfig.as_ref()).await?;
            let (listener, addr) = listen(args.listen).await?;
            let dashboard =
                server::Dashboard::with_tokens(config, args.namespace.clone(), site, ttl, closing);
            println!(
                "tollgate dashboard: serving {url} on {addr}; people sign in with their own bearer token"
            );
            (dashboard, listener)
        }
        _ => {
            if !args.listen.ip().is_loopback() {
                return Err(DashboardError::NotLoopback(args.listen));
            }
            let client = crate::cli::checkpoint::client(args.kubeconfig.as_ref()).await?;
            let (listener, addr) = listen(args.listen).await?;
            let login = crate::seal::random_token().ok_or(DashboardError::Random)?;
            // A host name of this run's own: browsers send a cookie to every port of its
            // host, so a session cookie of 127.0.0.1 would reach any other local web server
            // the browser visits; one of this name reaches only servers asked for by it.
            // Browsers resolve every `*.localhost` name to loopback by themselves.
            let name = crate::seal::random_token()
                .map(|t| format!("tollgate-{}.localhost", &t[..32]))
                .ok_or(DashboardError::Random)?;
            let cluster = live::Cluster::watch(client, args.namespace.clone());
            let port = addr.port();
            let dashboard = server::Dashboard::new(cluster, port, &name, login.clone(), closing);
            {
                use std::io::Write as _;
                let mut stdout = std::io::stdout();
                // The link is the sign-in: like a password, it is shown to this terminal only.
                writeln!(
                    stdout,
                    "tollgate dashboard: open http://{name}:{port}/?token={login}\n  (acting as your kubeconfig's user; Ctrl-C to stop; if your browser cannot open that name: http://{addr}/?token={login}, whose cookie other local web servers you visit can receive)",
                )
                .and_then(|()| stdout.flush())
                .map_err(DashboardError::Print)?;
            }
            (dashboard, listener)
        }
    };
    let dashboard = Arc::new(dashboard);
    let limits = Limits::default();
    serve::accept_loop(
        "dashboard",
        listener,
        limits,
        async move {
            let _ = tokio::signal::ctrl_c().await;
            let _ = close.send(true);
        },
        move |tcp, peer, stopping| {
            let dashboard = dashboard.clone();
            serve::http1("dashboard", tcp, peer, limits, stopping, move |request| {
                dashboard.clone().handle(request)
            })
        },
    )
    .await;
    Ok(())
}

async fn listen(addr: SocketAddr) -> Result<(tokio::net::TcpListener, SocketAddr), DashboardError> {
    let error = |source| DashboardError::Listen { addr, source };
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(error)?;
    let bound = listener.local_addr().map_err(error)?;
    Ok((listener, bound))
}

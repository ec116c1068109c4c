//! `tollgate dashboard`: the Technical Operator's checkpoint queue in a browser, live, with
//! the plan and cost review and the decision, acting only with the person's own Kubernetes
//! identity (their kubeconfig: like `kubectl proxy`, never the controller's).
//!
//! Local mode: serves loopback only and prints a sign-in link with a random token. Pages
//! are rendered on the server ([`html`], every field escaped); a little script
//! (`assets/dashboard.js`) replaces the live parts with what the server pushes as
//! server-sent events from Kubernetes watches ([`live`]). No third-party assets: the
//! stylesheet and script are compiled into the binary.

mod html;
mod live;
mod server;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

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
}

/// `tollgate dashboard`.
#[derive(Debug, Args)]
pub struct DashboardArgs {
    /// Your kubeconfig (default: $KUBECONFIG, else ~/.kube/config). Every read and every
    /// decision is made with its identity.
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Only this namespace (default: every namespace; needs the right to list checkpoints
    /// in all of them, as tollgate-approver bound cluster-wide gives).
    #[arg(short = 'n', long)]
    namespace: Option<String>,
    /// Where to serve: loopback only; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:8490", value_name = "ADDR")]
    listen: SocketAddr,
}

/// Runs the dashboard until interrupted (Ctrl-C).
pub async fn run(args: &DashboardArgs) -> Result<(), DashboardError> {
    if !args.listen.ip().is_loopback() {
        return Err(DashboardError::NotLoopback(args.listen));
    }
    let client = crate::cli::checkpoint::client(args.kubeconfig.as_ref()).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|source| DashboardError::Listen {
            addr: args.listen,
            source,
        })?;
    let addr = listener
        .local_addr()
        .map_err(|source| DashboardError::Listen {
            addr: args.listen,
            source,
        })?;
    let login = crate::seal::random_token().ok_or(DashboardError::Random)?;
    let cluster = live::Cluster::watch(client, args.namespace.clone());
    let (close, closing) = tokio::sync::watch::channel(false);
    let dashboard = Arc::new(server::Dashboard::new(
        cluster,
        addr.port(),
        login.clone(),
        closing,
    ));
    {
        use std::io::Write as _;
        let mut stdout = std::io::stdout();
        // The link is the sign-in: like a password, it is shown to this terminal only.
        writeln!(
            stdout,
            "tollgate dashboard: open http://{}/?token={login}\n  (acting as your kubeconfig's user; Ctrl-C to stop)",
            addr
        )
        .and_then(|()| stdout.flush())
        .map_err(DashboardError::Print)?;
    }
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

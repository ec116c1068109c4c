//! Runs `tollgate controller` as a real process against the e2e control plane, scoped to one
//! test namespace, and reads its metrics.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

use crate::{ControlPlane, User, wait_for};

/// A running controller process; killed when dropped.
pub struct ControllerProcess {
    child: Child,
    kubeconfig: PathBuf,
    extra_args: Vec<String>,
    env: Vec<(String, String)>,
    namespace: String,
    work_dir: PathBuf,
    metrics_port: u16,
    log: PathBuf,
}

/// The `tollgate` binary built next to the test executable (`cargo test --workspace` builds it).
pub fn tollgate_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("TOLLGATE_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join("tollgate");
    assert!(
        bin.is_file(),
        "{} not built: run the tests with `cargo test --workspace --all-targets` (or set TOLLGATE_BIN)",
        bin.display()
    );
    bin
}

/// The first line of `version` of the Terraform binary the controller will find
/// (`TOLLGATE_TERRAFORM`, else `terraform` on `PATH`), e.g. "OpenTofu v1.12.6".
fn terraform_banner() -> String {
    let binary = tollgate::terraform::RunnerConfig::from_env().binary;
    let out = std::process::Command::new(&binary)
        .arg("version")
        .stderr(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {} version: {e}", binary.display()));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// The state namespace [`ControllerProcess::start_with`] gives the controller of test
/// namespace `namespace`.
pub fn state_namespace_of(namespace: &str) -> String {
    format!("{namespace}-state")
}

/// The `namespace` of a controller that watches every namespace.
const ALL_NAMESPACES: &str = "";

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl ControllerProcess {
    /// Starts a controller watching `namespace`, with its working directories in `work_dir`.
    pub async fn start(
        plane: &ControlPlane,
        namespace: &str,
        work_dir: &Path,
    ) -> ControllerProcess {
        Self::start_with(plane, namespace, work_dir, Vec::new()).await
    }

    /// Like [`ControllerProcess::start`], with extra command-line arguments. Without a
    /// `--state-namespace` among them, the controller keeps state in its own
    /// [`state_namespace_of`] `namespace`, created here.
    pub async fn start_with(
        plane: &ControlPlane,
        namespace: &str,
        work_dir: &Path,
        mut extra_args: Vec<String>,
    ) -> ControllerProcess {
        if !extra_args.iter().any(|a| a == "--state-namespace") {
            let state = plane.state_namespace(&state_namespace_of(namespace)).await;
            extra_args.extend(["--state-namespace".to_owned(), state]);
        }
        Self::start_as(
            &plane.kubeconfig(User::Admin),
            namespace,
            work_dir,
            extra_args,
        )
        .await
    }

    /// Like [`ControllerProcess::start_with`], acting with the identity in `kubeconfig`.
    pub async fn start_as(
        kubeconfig: &Path,
        namespace: &str,
        work_dir: &Path,
        extra_args: Vec<String>,
    ) -> ControllerProcess {
        Self::spawn(kubeconfig, namespace, work_dir, (extra_args, Vec::new())).await
    }

    /// A controller watching every namespace that reconciles only the Projects matching
    /// `selector` (`--project-selector`), so other tests' Projects are left alone, with its
    /// state in `state_namespace` (created here).
    pub async fn start_selecting(
        plane: &ControlPlane,
        selector: &str,
        state_namespace: &str,
        work_dir: &Path,
        mut extra_args: Vec<String>,
    ) -> ControllerProcess {
        let state = plane.state_namespace(state_namespace).await;
        extra_args.extend([
            "--state-namespace".to_owned(),
            state,
            "--project-selector".to_owned(),
            selector.to_owned(),
        ]);
        Self::spawn(
            &plane.kubeconfig(User::Admin),
            ALL_NAMESPACES,
            work_dir,
            (extra_args, Vec::new()),
        )
        .await
    }

    /// Like [`ControllerProcess::start_with`], with extra environment variables (e.g. the
    /// controller's own AWS identity and endpoint). A `--catalog` among `extra_args`
    /// replaces the repository's catalog.
    pub async fn start_with_env(
        plane: &ControlPlane,
        namespace: &str,
        work_dir: &Path,
        mut extra_args: Vec<String>,
        env: Vec<(String, String)>,
    ) -> ControllerProcess {
        let state = plane.state_namespace(&state_namespace_of(namespace)).await;
        extra_args.extend(["--state-namespace".to_owned(), state]);
        Self::spawn(
            &plane.kubeconfig(User::Admin),
            namespace,
            work_dir,
            (extra_args, env),
        )
        .await
    }

    async fn spawn(
        kubeconfig: &Path,
        namespace: &str,
        work_dir: &Path,
        (extra_args, env): (Vec<String>, Vec<(String, String)>),
    ) -> ControllerProcess {
        static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let log = work_dir.join(format!(
            "controller-{}-{}.log",
            std::process::id(),
            STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(work_dir).expect("work dir");
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("controller log");
        let default_catalog = [
            "--catalog".to_owned(),
            crate::repo_root()
                .join("modules")
                .to_string_lossy()
                .into_owned(),
        ];
        let catalog = if extra_args.iter().any(|a| a == "--catalog") {
            &[][..]
        } else {
            &default_catalog[..]
        };
        let child = Command::new(tollgate_binary())
            .args(catalog)
            .arg("controller")
            .args(["--kubeconfig", &kubeconfig.to_string_lossy()])
            .args(if namespace == ALL_NAMESPACES {
                Vec::new()
            } else {
                vec!["--namespace", namespace]
            })
            .args(["--work-dir", &work_dir.join("work").to_string_lossy()])
            // Port 0: the kernel picks a free port while the controller holds it (a port
            // found free beforehand can be taken by another test in between).
            .args(["--metrics-addr", "127.0.0.1:0"])
            .args(&extra_args)
            .env("TOLLGATE_LOG", "info,kube=warn")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .expect("start tollgate controller");
        let metrics_port = listening_port(&log).await;
        let process = ControllerProcess {
            child,
            kubeconfig: kubeconfig.to_path_buf(),
            extra_args,
            env,
            namespace: namespace.to_owned(),
            work_dir: work_dir.to_path_buf(),
            metrics_port,
            log,
        };
        wait_for("controller /readyz", Duration::from_secs(60), || async {
            process
                .get("/readyz")
                .await
                .is_some_and(|(code, _)| code == 200)
        })
        .await;
        // The suite runs once with Terraform and once with OpenTofu: make sure the controller
        // runs the binary this run is about ("Terraform v1.15.5", "OpenTofu v1.12.6").
        let banner = terraform_banner();
        assert!(
            process.log().contains(&format!("terraform={banner}")),
            "the controller does not run {banner}:\n{}",
            process.log()
        );
        process
    }

    /// Kills the process with SIGKILL (no chance to clean up) and waits for it to end.
    pub async fn kill_hard(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    /// The process id (`None` once it has been waited for).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Sends SIGTERM, as Kubernetes does to stop a pod.
    pub fn terminate(&self) {
        let pid = self.pid().expect("the controller is running");
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {pid}");
    }

    /// Waits for the process to exit by itself, failing the test after `deadline`.
    pub async fn wait_exit(&mut self, deadline: Duration) -> std::process::ExitStatus {
        match tokio::time::timeout(deadline, self.child.wait()).await {
            Ok(status) => status.expect("wait for the controller"),
            Err(_) => panic!(
                "the controller did not exit within {deadline:?}:\n{}",
                self.log()
            ),
        }
    }

    /// Starts a new controller process with the same namespace and working directory.
    pub async fn restart(&mut self) {
        self.kill_hard().await;
        let fresh = Self::spawn(
            &self.kubeconfig.clone(),
            &self.namespace.clone(),
            &self.work_dir.clone(),
            (self.extra_args.clone(), self.env.clone()),
        )
        .await;
        *self = fresh;
    }

    /// The controller's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Value of an unlabelled metric, e.g. `tollgate_terraform_commands_started`.
    pub async fn metric(&self, name: &str) -> f64 {
        let (_, body) = self
            .get("/metrics")
            .await
            .expect("metrics endpoint answers");
        body.lines()
            .find_map(|l| {
                l.strip_prefix(name)
                    .and_then(|rest| rest.strip_prefix(' '))
                    .and_then(|v| v.trim().parse().ok())
            })
            .unwrap_or(0.0)
    }

    /// The whole `/metrics` page (for labelled metrics).
    pub async fn metrics_text(&self) -> String {
        self.get("/metrics")
            .await
            .map(|(_, body)| body)
            .unwrap_or_default()
    }

    async fn get(&self, path: &str) -> Option<(u16, String)> {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.metrics_port))
            .await
            .ok()?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await.ok()?;
        let code = response.split_whitespace().nth(1)?.parse().ok()?;
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        Some((code, body))
    }
}

/// The metrics port the controller logging to `log` bound, from its
/// `serving /metrics, /healthz, /readyz addr=Some(127.0.0.1:PORT)` line.
async fn listening_port(log: &Path) -> u16 {
    let port = || -> Option<u16> {
        let text = std::fs::read_to_string(log).ok()?;
        let line = text.lines().find(|l| l.contains("serving /metrics"))?;
        let after = line.split("127.0.0.1:").nth(1)?;
        after
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .ok()
    };
    wait_for(
        "the controller's metrics address",
        Duration::from_secs(60),
        || async { port().is_some() },
    )
    .await;
    port().expect("a port in the controller's log")
}

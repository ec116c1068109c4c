//! The Job controller and kubelet this control plane does not have, for tollgate's runner
//! Jobs (`--runner=job`).
//!
//! It watches the runner Jobs of one namespace; for each Job let run (no longer suspended)
//! it does what a node would (or what the test chooses per kind of run, see [`Node`]): materialises the pod's projected Secrets as files (and keeps them up to date while the pod
//! runs) and its
//! `emptyDir`s as directories, runs the container's command (`tollgate` with the Job's args
//! and env, paths under a mount point mapped to those directories) under a token of the
//! pod's ServiceAccount, and then writes the Job's status as the Job controller does
//! (`Complete` or `Failed`). [`Node::Kill`] plays a pod that dies: the Job fails past its
//! deadline and nothing runs.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde_json::json;

use crate::controller::tollgate_binary;

/// How often a running pod's projected Secrets are brought up to date (the kubelet's sync
/// period is about a minute; shorter here so a test waits less).
const SECRET_SYNC: std::time::Duration = std::time::Duration::from_millis(500);
use crate::{ControlPlane, User};

/// The runner ServiceAccount [`job_runner_args`]' --runner-config names.
pub const RUNNER_ACCOUNT: &str = "tollgate-runner";

/// The state namespace of `ns` with the runner identity of `deploy/runner-rbac.yaml`.
pub async fn state_namespace_with_runner(plane: &ControlPlane, ns: &str) -> String {
    let state = plane
        .state_namespace(&crate::controller::state_namespace_of(ns))
        .await;
    let rbac = std::fs::read_to_string(crate::repo_root().join("deploy/runner-rbac.yaml"))
        .expect("deploy/runner-rbac.yaml")
        .replace("namespace: tollgate-system", &format!("namespace: {state}"));
    plane.kubectl(User::Admin, &["apply", "-f", "-"], Some(&rbac));
    state
}

/// The controller flags of the Job runner, with a --runner-config written into `dir`.
pub fn job_runner_args(dir: &Path) -> Vec<String> {
    let config = dir.join("runner.yaml");
    std::fs::create_dir_all(dir).expect("the config's directory");
    std::fs::write(
        &config,
        format!(
            "serviceAccount: {RUNNER_ACCOUNT}\nactiveDeadlineSeconds: 900\nresources:\n  requests: {{cpu: 100m, memory: 128Mi}}\n  limits: {{cpu: \"1\", memory: 512Mi}}\n"
        ),
    )
    .expect("write the runner config");
    vec![
        "--runner".into(),
        "job".into(),
        "--runner-image".into(),
        "registry.example/tollgate:e2e".into(),
        "--runner-config".into(),
        config.to_string_lossy().into_owned(),
    ]
}

/// What the node does with a Job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Node {
    /// Runs its pod.
    Run,
    /// Its pod dies before doing anything: the Job fails (`DeadlineExceeded`).
    Kill,
    /// Its pod starts and never ends (for a test that deletes the Job meanwhile).
    Hold,
    /// Its pod starts, and runs its command once [`Kubelet::open_gate`] is called.
    Gated,
}

/// One pod the node ran.
#[derive(Clone, Debug)]
pub struct PodRun {
    /// The Job.
    pub job: String,
    /// What it runs (the Job's `tollgate.dev/run` label: `plan` or `apply`).
    pub run: String,
    /// The pod's working directory (its `emptyDir` at the runner's work path).
    pub work: PathBuf,
    /// Its exit code, once it ended.
    pub exit: Option<i32>,
    /// Its stderr.
    pub log: PathBuf,
}

/// The fake node; stops when dropped.
pub struct Kubelet {
    task: tokio::task::JoinHandle<()>,
    pods: Arc<Mutex<Vec<PodRun>>>,
    load: Arc<Load>,
    gate: Arc<tokio::sync::watch::Sender<bool>>,
}

/// Pods running now, and the most that ever ran at once.
#[derive(Default)]
struct Load {
    now: AtomicUsize,
    most: AtomicUsize,
}

impl Load {
    fn started(&self) {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
    }

    fn ended(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Kubelet {
    /// Starts serving the runner Jobs of `namespace`; pods' files go under `root`; `node`
    /// says what happens to a Job by its kind of run (`plan`, `apply`).
    pub async fn start(
        plane: &ControlPlane,
        namespace: &str,
        root: &Path,
        node: impl Fn(&str) -> Node + Send + Sync + 'static,
    ) -> Self {
        let admin = plane.client(User::Admin).await;
        let context = Arc::new(NodeContext {
            admin: admin.clone(),
            namespace: namespace.to_owned(),
            root: root.to_path_buf(),
            server: plane.var("TOLLGATE_E2E_SERVER").to_owned(),
            ca: plane.var("TOLLGATE_E2E_CA_CERT").to_owned(),
            node: Box::new(node),
            load: Arc::default(),
            gate: Arc::new(tokio::sync::watch::Sender::new(false)),
        });
        let load = context.load.clone();
        let gate = context.gate.clone();
        let pods: Arc<Mutex<Vec<PodRun>>> = Arc::default();
        let seen = Arc::new(Mutex::new(HashSet::new()));
        let jobs: Api<Job> = Api::namespaced(admin, namespace);
        let task_pods = pods.clone();
        let task = tokio::spawn(async move {
            let mut events = std::pin::pin!(
                watcher(
                    jobs,
                    watcher::Config::default().labels(tollgate::runner_job::RUN_LABEL)
                )
                .filter_map(|e| async move { e.ok() })
            );
            while let Some(event) = events.next().await {
                let (watcher::Event::Apply(job) | watcher::Event::InitApply(job)) = event else {
                    continue;
                };
                let runnable = job.spec.as_ref().and_then(|s| s.suspend) != Some(true)
                    && job
                        .status
                        .as_ref()
                        .and_then(|s| s.start_time.as_ref())
                        .is_none();
                if !runnable || !seen.lock().expect("lock").insert(job.name_any()) {
                    continue;
                }
                tokio::spawn(context.clone().run(job, task_pods.clone()));
            }
        });
        Kubelet {
            task,
            pods,
            load,
            gate,
        }
    }

    /// Lets the [`Node::Gated`] pods run (those started and those to come).
    pub fn open_gate(&self) {
        self.gate.send_replace(true);
    }

    /// The pods started so far.
    pub fn pods(&self) -> Vec<PodRun> {
        self.pods.lock().expect("lock").clone()
    }

    /// The most pods that ran at the same time (a pod runs from its start until just before
    /// its Job's status says it ended, so the next Job cannot start in between).
    pub fn most_at_once(&self) -> usize {
        self.load.most.load(Ordering::SeqCst)
    }
}

struct NodeContext {
    admin: Client,
    namespace: String,
    root: PathBuf,
    server: String,
    ca: String,
    node: Box<dyn Fn(&str) -> Node + Send + Sync>,
    load: Arc<Load>,
    gate: Arc<tokio::sync::watch::Sender<bool>>,
}

impl NodeContext {
    async fn run(self: Arc<Self>, job: Job, pods: Arc<Mutex<Vec<PodRun>>>) {
        let name = job.name_any();
        let run = job
            .labels()
            .get(tollgate::runner_job::RUN_LABEL)
            .cloned()
            .unwrap_or_default();
        let node = (self.node)(&run);
        let jobs: Api<Job> = Api::namespaced(self.admin.clone(), &self.namespace);
        let now = || format!("{:.0}", jiff::Timestamp::now());
        self.load.started();
        self.status(&jobs, &name, json!({"startTime": now(), "active": 1}))
            .await;
        if matches!(node, Node::Hold | Node::Kill) {
            pods.lock().expect("lock").push(PodRun {
                job: name.clone(),
                run: run.clone(),
                work: PathBuf::new(),
                exit: None,
                log: PathBuf::new(),
            });
        }
        if node == Node::Hold {
            return;
        }
        if node == Node::Kill {
            self.load.ended();
            let failed = condition(
                "Failed",
                "DeadlineExceeded",
                "Job was active longer than specified deadline",
            );
            let target = condition(
                "FailureTarget",
                "DeadlineExceeded",
                "Job was active longer than specified deadline",
            );
            self.status(
                &jobs,
                &name,
                json!({"active": 0, "failed": 1, "conditions": [target, failed]}),
            )
            .await;
            return;
        }
        let pod_dir = self.root.join(&name);
        let template = job
            .spec
            .clone()
            .and_then(|s| s.template.spec)
            .expect("a pod template");
        let container = template.containers.first().expect("a container").clone();
        // The volumes, materialised.
        let volumes = template.volumes.clone().unwrap_or_default();
        let mut mounts: Vec<(String, PathBuf)> = Vec::new();
        for volume in &volumes {
            let dir = pod_dir.join("volumes").join(&volume.name);
            std::fs::create_dir_all(&dir).expect("volume dir");
            let mount = container
                .volume_mounts
                .clone()
                .unwrap_or_default()
                .into_iter()
                .find(|m| m.name == volume.name)
                .expect("every volume is mounted");
            mounts.push((mount.mount_path, dir));
        }
        self.project_secrets(&volumes, &pod_dir, true).await;
        // As the kubelet does, projected Secrets follow their Secret while the pod runs.
        let syncing = {
            let node = self.clone();
            let pod_dir = pod_dir.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(SECRET_SYNC).await;
                    node.project_secrets(&volumes, &pod_dir, false).await;
                }
            })
        };
        let at_node = |value: &str| {
            mounts
                .iter()
                .find_map(|(mount, dir)| {
                    value
                        .strip_prefix(mount.as_str())
                        .map(|rest| format!("{}{rest}", dir.display()))
                })
                .unwrap_or_else(|| value.to_owned())
        };
        let args: Vec<String> = container
            .args
            .clone()
            .unwrap_or_default()
            .iter()
            .map(|a| at_node(a))
            .collect();
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        // The image's environment: where Terraform is and how it finds providers here.
        for name in ["PATH", "TOLLGATE_TERRAFORM", "TF_CLI_CONFIG_FILE"] {
            if let Ok(value) = std::env::var(name) {
                env.insert(name.into(), value);
            }
        }
        env.insert("TOLLGATE_LOG".into(), "info".into());
        for var in container.env.clone().unwrap_or_default() {
            env.insert(var.name, at_node(&var.value.unwrap_or_default()));
        }
        // The pod's ServiceAccount token, as the kubelet mounts it.
        let account = template
            .service_account_name
            .clone()
            .unwrap_or_else(|| "default".into());
        let kubeconfig = pod_dir.join("kubeconfig");
        std::fs::write(&kubeconfig, self.kubeconfig(&account).await).expect("write kubeconfig");
        env.insert(
            "KUBECONFIG".into(),
            kubeconfig.to_string_lossy().into_owned(),
        );
        let work = mounts
            .iter()
            .find(|(m, _)| m == tollgate::runner_job::WORK_DIR)
            .map(|(_, d)| d.clone())
            .expect("the work volume");
        let log = pod_dir.join("pod.log");
        pods.lock().expect("lock").push(PodRun {
            job: name.clone(),
            run,
            work,
            exit: None,
            log: log.clone(),
        });
        if node == Node::Gated {
            let mut gate = self.gate.subscribe();
            gate.wait_for(|open| *open).await.expect("the node runs");
        }
        let status = tokio::process::Command::new(tollgate_binary())
            .args(&args)
            .env_clear()
            .envs(&env)
            .stdout(std::fs::File::create(pod_dir.join("stdout")).expect("stdout"))
            .stderr(std::fs::File::create(&log).expect("pod log"))
            .status()
            .await
            .expect("run the pod's command");
        syncing.abort();
        let code = status.code().unwrap_or(-1);
        if let Some(pod) = pods
            .lock()
            .expect("lock")
            .iter_mut()
            .find(|p| p.job == name)
        {
            pod.exit = Some(code);
        }
        self.load.ended();
        let finished = if code == 0 {
            json!({"active": 0, "succeeded": 1, "completionTime": now(), "conditions": [
                condition("SuccessCriteriaMet", "CompletionsReached", "Reached expected number of succeeded pods"),
                condition("Complete", "CompletionsReached", "Reached expected number of succeeded pods"),
            ]})
        } else {
            json!({"active": 0, "failed": 1, "conditions": [
                condition("FailureTarget", "BackoffLimitExceeded", "Job has reached the specified backoff limit"),
                condition("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit"),
            ]})
        };
        self.status(&jobs, &name, finished).await;
    }

    /// Writes the projected Secrets' keys into the volumes' directories under `pod_dir`,
    /// each file replaced whole (renamed into place) when its Secret changed. At the pod's
    /// `start` every Secret must exist (none of a runner's is optional).
    async fn project_secrets(
        &self,
        volumes: &[k8s_openapi::api::core::v1::Volume],
        pod_dir: &Path,
        start: bool,
    ) {
        let secrets: Api<Secret> = Api::namespaced(self.admin.clone(), &self.namespace);
        for volume in volumes {
            let Some(projected) = &volume.projected else {
                continue;
            };
            let dir = pod_dir.join("volumes").join(&volume.name);
            for source in projected.sources.clone().unwrap_or_default() {
                let Some(projection) = source.secret else {
                    continue;
                };
                let secret = match secrets.get(&projection.name).await {
                    Ok(secret) => secret,
                    Err(e) if start => panic!("a mounted Secret {} exists: {e}", projection.name),
                    // Gone once the Job ended (garbage-collected with it): nothing to follow.
                    Err(_) => continue,
                };
                let data = secret.data.unwrap_or_default();
                for item in projection.items.unwrap_or_default() {
                    let bytes = &data.get(&item.key).expect("the mounted key exists").0;
                    let path = dir.join(&item.path);
                    if std::fs::read(&path).is_ok_and(|old| &old == bytes) {
                        continue;
                    }
                    let staged = dir.join(format!("..{}.tmp", item.path));
                    std::fs::write(&staged, bytes).expect("write a mounted file");
                    std::fs::rename(&staged, &path).expect("swap a mounted file");
                }
            }
        }
    }

    async fn status(&self, jobs: &Api<Job>, name: &str, status: serde_json::Value) {
        jobs.patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(&json!({ "status": status })),
        )
        .await
        .expect("write the Job's status as the Job controller does");
    }

    /// A kubeconfig with a fresh token of `account`.
    async fn kubeconfig(&self, account: &str) -> String {
        let accounts: Api<ServiceAccount> = Api::namespaced(self.admin.clone(), &self.namespace);
        let token = accounts
            .create_token_request(
                account,
                &PostParams::default(),
                &TokenRequest {
                    spec: Some(TokenRequestSpec {
                        expiration_seconds: Some(3600),
                        ..TokenRequestSpec::default()
                    }),
                    ..TokenRequest::default()
                },
            )
            .await
            .expect("the pod's ServiceAccount exists")
            .status
            .expect("a token")
            .token;
        json!({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "e2e", "cluster": {"server": self.server, "certificate-authority": self.ca}}],
            "users": [{"name": account, "user": {"token": token}}],
            "contexts": [{"name": "pod", "context": {"cluster": "e2e", "user": account, "namespace": self.namespace}}],
            "current-context": "pod",
        })
        .to_string()
    }
}

fn condition(kind: &str, reason: &str, message: &str) -> serde_json::Value {
    let now = format!("{:.0}", jiff::Timestamp::now());
    json!({"type": kind, "status": "True", "reason": reason, "message": message,
           "lastProbeTime": now, "lastTransitionTime": now})
}

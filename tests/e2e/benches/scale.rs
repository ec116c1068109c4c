//! The controller at scale on the real control plane: each figure is printed next to a
//! baseline measured in the same run, as a ratio. Prints; asserts nothing about time.
//!
//! ```sh
//! cargo build -p tollgate --bin tollgate --release   # or set TOLLGATE_BIN
//! cargo bench -p tollgate-e2e --bench scale -- rss throughput latency failover
//! ```
//!
//! No name runs all four. Sizes: `TOLLGATE_BENCH_PROJECTS` (rss, default 1000),
//! `TOLLGATE_BENCH_PLANS` (throughput, default 200), `TOLLGATE_BENCH_ROUNDS` (latency and
//! failover, default 5). The control plane is the e2e one (`TOLLGATE_E2E_*`, see
//! tests/e2e/README.md).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures::TryStreamExt as _;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Resource, ResourceExt};
use serde_json::json;
use tollgate::api::{Checkpoint, CheckpointPhase, Project, ProjectPhase};
use tollgate_e2e::controller::{ControllerProcess, state_namespace_of};
use tollgate_e2e::webhook::start_webhook;
use tollgate_e2e::{ControlPlane, User, demo_project, wait_for};

const DEADLINE: Duration = Duration::from_secs(3600);
/// Terraform runs at once, for tollgate and for the raw baseline alike.
const CONCURRENCY: usize = 4;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}

/// Resident memory of a process (KiB), from /proc.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Waits until the controller's reconcile counter stops moving (two reads a second apart).
async fn at_rest(controller: &ControllerProcess) {
    let mut last = controller.metric("tollgate_reconciles_total").await;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = controller.metric("tollgate_reconciles_total").await;
        if now == last {
            return;
        }
        last = now;
    }
}

/// Resolves once `count` objects of `api` satisfy `done`, as seen by a watch.
async fn watch_until<K>(api: Api<K>, count: usize, done: impl Fn(&K) -> bool)
where
    K: Resource
        + Clone
        + std::fmt::Debug
        + k8s_openapi::serde::de::DeserializeOwned
        + Send
        + 'static,
    K::DynamicType: Default,
{
    let mut seen = BTreeSet::new();
    let stream = watcher(api, watcher::Config::default()).applied_objects();
    futures::pin_mut!(stream);
    let deadline = Instant::now() + DEADLINE;
    while seen.len() < count {
        let next = tokio::time::timeout_at(deadline.into(), stream.try_next()).await;
        let Ok(Ok(Some(object))) = next else {
            panic!(
                "the watch ended or timed out with {} of {count}",
                seen.len()
            );
        };
        if done(&object) {
            seen.insert(object.name_any());
        }
    }
}

fn phase_is(phase: ProjectPhase) -> impl Fn(&Project) -> bool {
    move |p: &Project| p.status.as_ref().and_then(|s| s.phase) == Some(phase)
}

fn named(ns: &str, name: &str, markers: &Path, extra: serde_json::Value) -> Project {
    let mut p = demo_project(ns, markers, json!({}), serde_json::Value::Null);
    p.metadata.name = Some(name.to_owned());
    let mut value = serde_json::to_value(&p).unwrap();
    for (k, v) in extra.as_object().into_iter().flatten() {
        value["spec"][k] = v.clone();
    }
    serde_json::from_value(value).unwrap()
}

/// Creates Projects `prefix0..n` with `CONCURRENCY * 2` requests in flight.
async fn create_many(
    api: &Api<Project>,
    ns: &str,
    prefix: &str,
    n: usize,
    dir: &Path,
    extra: serde_json::Value,
) {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        if tasks.len() >= CONCURRENCY * 2 {
            tasks.join_next().await.unwrap().unwrap();
        }
        let api = api.clone();
        let project = named(
            ns,
            &format!("{prefix}{i}"),
            &dir.join("markers"),
            extra.clone(),
        );
        tasks.spawn(async move { api.create(&PostParams::default(), &project).await.unwrap() });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
}

/// Copies a Project's working directory as the controller rendered it, without what
/// Terraform made there, for the raw baseline.
fn copy_rendered(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(".terraform") && name != ".terraform.lock.hcl"
            || name.starts_with("tfplan")
            || name.starts_with(".tollgate")
        {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            copy_rendered(&entry.path(), &to.join(&name));
        } else {
            std::fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

/// `init && plan -out && show -json` in `dir`, as a pipeline would run them, with the same
/// backend credentials as the controller.
async fn raw_plan(plane: &ControlPlane, dir: PathBuf) {
    let binary = tollgate::terraform::RunnerConfig::from_env().binary;
    for args in [
        &["init", "-input=false", "-no-color", "-reconfigure"][..],
        &[
            "plan",
            "-input=false",
            "-no-color",
            "-lock-timeout=60s",
            "-out=tfplan",
        ][..],
        &["show", "-json", "tfplan"][..],
    ] {
        let status = tokio::process::Command::new(&binary)
            .arg(format!("-chdir={}", dir.display()))
            .args(args)
            .env("TF_IN_AUTOMATION", "1")
            .env("KUBE_CONFIG_PATH", plane.kubeconfig(User::Admin))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .unwrap();
        assert!(
            status.success(),
            "terraform {args:?} in {} failed",
            dir.display()
        );
    }
}

/// 1000 Projects at rest: memory, and what a full resync (a restart) of unchanged
/// Projects costs. They are suspended: tollgate runs no Terraform for them, so this
/// measures the controller (watch caches, per-Project state), not Terraform.
async fn rss(plane: &'static ControlPlane) {
    let n = env_usize("TOLLGATE_BENCH_PROJECTS", 1000);
    let ns = plane.namespace("bench-rss").await;
    let dir = tempfile::tempdir().unwrap();
    let mut controller = ControllerProcess::start_with(plane, &ns, dir.path(), Vec::new()).await;
    at_rest(&controller).await;
    let empty = rss_kib(controller.pid().unwrap());
    let api: Api<Project> = Api::namespaced(plane.client(User::Admin).await, &ns);
    let started = Instant::now();
    let watched = tokio::spawn(watch_until(
        api.clone(),
        n,
        phase_is(ProjectPhase::Suspended),
    ));
    create_many(&api, &ns, "p", n, dir.path(), json!({"suspend": true})).await;
    watched.await.unwrap();
    let settle = started.elapsed();
    at_rest(&controller).await;
    let loaded = rss_kib(controller.pid().unwrap());
    let versions = |list: Vec<Project>| -> BTreeMap<String, Option<String>> {
        list.into_iter()
            .map(|p| (p.name_any(), p.resource_version()))
            .collect()
    };
    let before = versions(api.list(&Default::default()).await.unwrap().items);
    let restarted = Instant::now();
    controller.restart().await;
    wait_for(
        "every Project reconciled after the restart",
        DEADLINE,
        || async { controller.metric("tollgate_reconciles_total").await >= n as f64 },
    )
    .await;
    let resync = restarted.elapsed();
    at_rest(&controller).await;
    let fresh = rss_kib(controller.pid().unwrap());
    let after = versions(api.list(&Default::default()).await.unwrap().items);
    let written = before
        .iter()
        .filter(|(k, v)| after.get(*k) != Some(v))
        .count();
    let reconciles = controller.metric("tollgate_reconciles_total").await;
    // `terraform version` once at start-up; anything more ran for a Project.
    let terraform = controller
        .metric("tollgate_terraform_commands_started")
        .await
        - 1.0;
    println!("rss: {n} suspended Projects settled in {settle:.1?}");
    println!(
        "rss: controller RSS {:.1} MiB with {n} Projects after creating them, {:.1} MiB after a restart, vs {:.1} MiB with none: {:.2}x, {:.1} KiB per Project",
        loaded as f64 / 1024.0,
        fresh as f64 / 1024.0,
        empty as f64 / 1024.0,
        fresh as f64 / empty as f64,
        fresh.saturating_sub(empty) as f64 / n as f64
    );
    println!(
        "rss: a restart (a full resync of unchanged Projects): {reconciles} reconciles, every Project reconciled {resync:.1?} after the restart began; {written} Projects written, {terraform} Terraform runs"
    );
}

/// 200 new Projects to AwaitingApproval vs the same 200 `init && plan && show -json` run
/// directly with the same concurrency on the same rendered directories and backend.
async fn throughput(plane: &'static ControlPlane) {
    let n = env_usize("TOLLGATE_BENCH_PLANS", 200);
    let ns = plane.namespace("bench-plans").await;
    let dir = tempfile::tempdir().unwrap();
    let controller = ControllerProcess::start_with(
        plane,
        &ns,
        dir.path(),
        vec![
            "--max-terraform".into(),
            CONCURRENCY.to_string(),
            "--concurrency".into(),
            CONCURRENCY.to_string(),
        ],
    )
    .await;
    let api: Api<Project> = Api::namespaced(plane.client(User::Admin).await, &ns);
    let started = Instant::now();
    let watched = tokio::spawn(watch_until(
        api.clone(),
        n,
        phase_is(ProjectPhase::AwaitingApproval),
    ));
    create_many(&api, &ns, "p", n, dir.path(), json!({})).await;
    watched.await.unwrap();
    let tollgate = started.elapsed();
    drop(controller);

    let raw_root = dir.path().join("raw");
    for i in 0..n {
        let name = format!("p{i}");
        copy_rendered(
            &dir.path().join("work").join(&ns).join(&name),
            &raw_root.join(&name),
        );
    }
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        if tasks.len() >= CONCURRENCY {
            tasks.join_next().await.unwrap().unwrap();
        }
        let dir = raw_root.join(format!("p{i}"));
        tasks.spawn(raw_plan(plane, dir));
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let raw = started.elapsed();
    println!(
        "throughput: {n} new Projects to AwaitingApproval in {tollgate:.1?} vs {n} x raw init && plan && show -json in {raw:.1?} ({CONCURRENCY} at once): {:.2}x",
        ratio(tollgate, raw)
    );
}

/// One Project: `kubectl apply` → Checkpoint Pending (watched) vs raw `init && plan &&
/// show -json` of the same configuration; and a person's decision → the Project's phase
/// `Applying` (written right before `terraform apply` starts), watched.
async fn latency(plane: &'static ControlPlane) {
    let rounds = env_usize("TOLLGATE_BENCH_ROUNDS", 5);
    let ns = start_webhook().await.namespace(plane, "bench-lat").await;
    let dir = tempfile::tempdir().unwrap();
    let _controller = ControllerProcess::start(plane, &ns, dir.path()).await;
    let admin = plane.client(User::Admin).await;
    let projects: Api<Project> = Api::namespaced(admin.clone(), &ns);
    let checkpoints: Api<Checkpoint> = Api::namespaced(admin, &ns);
    let alice: Api<Checkpoint> = Api::namespaced(plane.client(User::Alice).await, &ns);
    let (mut to_checkpoint, mut raw, mut to_apply) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let name = format!("l{round}");
        let of_this = name.clone();
        let opened = tokio::spawn(watch_until(
            checkpoints.clone(),
            1,
            move |c: &Checkpoint| {
                c.spec.project_ref.name == of_this
                    && c.status.as_ref().and_then(|s| s.phase) == Some(CheckpointPhase::Pending)
            },
        ));
        let started = Instant::now();
        projects
            .create(
                &PostParams::default(),
                &named(&ns, &name, &dir.path().join("markers"), json!({})),
            )
            .await
            .unwrap();
        opened.await.unwrap();
        to_checkpoint.push(started.elapsed());

        // The Project records its checkpoint right after opening it: decide once it has.
        wait_for("the Project awaits the decision", DEADLINE, || async {
            let status = projects
                .get(&name)
                .await
                .unwrap()
                .status
                .unwrap_or_default();
            status.checkpoint_ref.is_some() && status.phase == Some(ProjectPhase::AwaitingApproval)
        })
        .await;
        let status = projects.get(&name).await.unwrap().status.unwrap();
        let checkpoint = status.checkpoint_ref.unwrap().name;
        let of_this = name.clone();
        let applying = tokio::spawn(watch_until(projects.clone(), 1, move |p: &Project| {
            p.name_any() == of_this && phase_is(ProjectPhase::Applying)(p)
        }));
        let decided = Instant::now();
        alice
            .patch_status(
                &checkpoint,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"decision": "Approved", "reason": "bench"}})),
            )
            .await
            .unwrap();
        applying.await.unwrap();
        to_apply.push(decided.elapsed());
        // The raw baseline plans against the same state: not while the apply holds its lock.
        wait_for("the apply finishes", DEADLINE, || async {
            phase_is(ProjectPhase::Ready)(&projects.get(&name).await.unwrap())
        })
        .await;

        let copy = dir.path().join("raw").join(&name);
        copy_rendered(&dir.path().join("work").join(&ns).join(&name), &copy);
        let started = Instant::now();
        raw_plan(plane, copy).await;
        raw.push(started.elapsed());
    }
    let (a, b) = (median(to_checkpoint), median(raw));
    println!(
        "latency: create → Checkpoint Pending {a:.2?} vs raw init && plan && show -json {b:.2?}: {:.2}x (medians of {rounds})",
        ratio(a, b)
    );
    println!(
        "latency: decision → phase Applying {:.0?} (median of {rounds}; goal ≤ 1 s)",
        median(to_apply)
    );
}

/// Leader failover: SIGKILL of the leader → the standby holds the Lease (watched), against
/// the Lease duration, which bounds it from below.
async fn failover(plane: &'static ControlPlane) {
    const LEASE_SECONDS: u64 = 4;
    let rounds = env_usize("TOLLGATE_BENCH_ROUNDS", 5);
    let ns = plane.namespace("bench-leader").await;
    let dir = tempfile::tempdir().unwrap();
    let args = || {
        vec![
            "--leader-elect".to_owned(),
            "--leader-elect-lease-duration".to_owned(),
            LEASE_SECONDS.to_string(),
        ]
    };
    let mut replicas = [
        ControllerProcess::start_with(plane, &ns, &dir.path().join("a"), args()).await,
        ControllerProcess::start_with(plane, &ns, &dir.path().join("b"), args()).await,
    ];
    let leases: Api<Lease> =
        Api::namespaced(plane.client(User::Admin).await, &state_namespace_of(&ns));
    let holder = |lease: &Lease| lease.spec.as_ref().and_then(|s| s.holder_identity.clone());
    let mut samples = Vec::new();
    for _ in 0..rounds {
        let mut leader = None;
        for (i, r) in replicas.iter().enumerate() {
            if r.metric("tollgate_leader").await == 1.0 {
                leader = Some(i);
            }
        }
        let leader = match leader {
            Some(i) => i,
            None => {
                wait_for("a leader", DEADLINE, || async {
                    replicas[0].metric("tollgate_leader").await == 1.0
                        || replicas[1].metric("tollgate_leader").await == 1.0
                })
                .await;
                usize::from(replicas[1].metric("tollgate_leader").await == 1.0)
            }
        };
        let old = holder(&leases.get("tollgate-controller").await.unwrap());
        let taken = tokio::spawn(watch_until(leases.clone(), 1, move |l: &Lease| {
            l.spec
                .as_ref()
                .and_then(|s| s.holder_identity.clone())
                .is_some_and(|h| Some(h) != old)
        }));
        let killed = Instant::now();
        replicas[leader].kill_hard().await;
        taken.await.unwrap();
        samples.push(killed.elapsed());
        replicas[leader].restart().await;
    }
    let m = median(samples);
    println!(
        "failover: SIGKILL of the leader → the standby holds the Lease in {m:.2?} vs the {LEASE_SECONDS} s Lease duration: {:.2}x (median of {rounds})",
        ratio(m, Duration::from_secs(LEASE_SECONDS))
    );
}

#[tokio::main]
async fn main() {
    let chosen: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wants = |name: &str| chosen.is_empty() || chosen.iter().any(|c| c == name);
    let plane = ControlPlane::get().await;
    if wants("rss") {
        rss(plane).await;
    }
    if wants("throughput") {
        throughput(plane).await;
    }
    if wants("latency") {
        latency(plane).await;
    }
    if wants("failover") {
        failover(plane).await;
    }
}

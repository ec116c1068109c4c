//! The controller as a production runtime on a real cluster: bounded objects per Project,
//! several replicas with one leader, graceful shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use tollgate::api::{Checkpoint, CheckpointPhase, Project, ProjectPhase};
use tollgate_e2e::controller::{ControllerProcess, state_namespace_of};
use tollgate_e2e::{
    ControlPlane, User, applying_in, create_preapproved, demo_project, markers_in, wait_demo,
    wait_for,
};

const DEADLINE: Duration = Duration::from_secs(120);
/// The leader Lease's duration in these tests (seconds): a killed leader is replaced after
/// about this long.
const LEASE_SECONDS: u64 = 4;
async fn wait_ready(projects: &Api<Project>, log: impl Fn() -> String) -> Project {
    wait_demo(
        projects,
        "Ready",
        |s| s.phase == Some(ProjectPhase::Ready) && s.last_applied.is_some(),
        log,
    )
    .await
}

async fn lease_holder(leases: &Api<Lease>) -> Option<String> {
    leases
        .get_opt("tollgate-controller")
        .await
        .unwrap()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
}

/// The name of the checkpoint the Project awaits a decision on, once it differs from `not`.
async fn awaited_checkpoint(projects: &Api<Project>, not: Option<&str>) -> String {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let status = projects
            .get("demo")
            .await
            .unwrap()
            .status
            .unwrap_or_default();
        if status.phase == Some(ProjectPhase::AwaitingApproval)
            && let Some(reference) = status.checkpoint_ref.clone()
            && Some(reference.name.as_str()) != not
        {
            return reference.name;
        }
        assert!(
            Instant::now() < deadline,
            "the Project awaits no new checkpoint: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_project_changed_many_times_keeps_only_the_newest_final_checkpoints() {
    const KEEP: usize = 3;
    const CHANGES: usize = KEEP + 4;
    let plane = ControlPlane::get().await;
    let ns = plane.namespace("retention").await;
    let dir = tempfile::tempdir().unwrap();
    let controller = ControllerProcess::start_with(
        plane,
        &ns,
        dir.path(),
        vec!["--keep-checkpoints".into(), KEEP.to_string()],
    )
    .await;
    let admin = plane.client(User::Admin).await;
    let projects: Api<Project> = Api::namespaced(admin.clone(), &ns);
    let checkpoints: Api<Checkpoint> = Api::namespaced(admin, &ns);
    let markers = dir.path().join("markers");
    projects
        .create(
            &PostParams::default(),
            &demo_project(&ns, &markers, json!({}), serde_json::Value::Null),
        )
        .await
        .unwrap();
    let mut opened = vec![awaited_checkpoint(&projects, None).await];
    for change in 0..CHANGES {
        let patch = json!({"spec": {"components": [{"name": "app", "module": "demo", "inputs": {"greeting": format!("change {change}"), "replicas": 1, "marker_dir": markers.to_string_lossy()}}]}});
        projects
            .patch("demo", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
        let previous = opened.last().cloned();
        opened.push(awaited_checkpoint(&projects, previous.as_deref()).await);
    }

    let left = checkpoints.list(&Default::default()).await.unwrap().items;
    let phase_of = |name: &str| {
        left.iter()
            .find(|c| c.name_any() == name)
            .map(|c| c.status.clone().unwrap_or_default().phase)
    };
    let newest = opened.last().unwrap();
    assert_eq!(
        phase_of(newest),
        Some(Some(CheckpointPhase::Pending)),
        "the awaited checkpoint stays: {opened:?}\n{}",
        controller.log()
    );
    // Exactly the newest KEEP superseded ones are left; every older one was deleted.
    let superseded = &opened[..opened.len() - 1];
    let (older, kept) = superseded.split_at(superseded.len() - KEEP);
    for name in kept {
        assert_eq!(
            phase_of(name),
            Some(Some(CheckpointPhase::Superseded)),
            "{name} is one of the newest {KEEP}"
        );
    }
    for name in older {
        assert_eq!(
            phase_of(name),
            None,
            "{name} is older than the newest {KEEP}"
        );
    }
    assert_eq!(
        left.len(),
        KEEP + 1,
        "{:?}",
        left.iter().map(|c| c.name_any()).collect::<Vec<_>>()
    );
    // The record of every superseded plan stays in the Project's history.
    let history = projects.get("demo").await.unwrap().status.unwrap().history;
    let superseded_in_history = history.iter().filter(|h| h.outcome == "Superseded").count();
    assert_eq!(superseded_in_history, CHANGES, "{history:?}");
    assert!(
        controller.log().contains("beyond --keep-checkpoints"),
        "{}",
        controller.log()
    );
}

#[tokio::test]
async fn one_of_two_replicas_reconciles_and_a_killed_leader_is_replaced_with_exactly_one_apply() {
    let plane = ControlPlane::get().await;
    let ns = plane.namespace("leader").await;
    let dir = tempfile::tempdir().unwrap();
    let elect = || {
        vec![
            "--leader-elect".to_owned(),
            "--leader-elect-lease-duration".to_owned(),
            LEASE_SECONDS.to_string(),
        ]
    };
    let mut first = ControllerProcess::start_with(plane, &ns, &dir.path().join("a"), elect()).await;
    wait_for("the first replica leads", DEADLINE, || async {
        first.metric("tollgate_leader").await == 1.0
    })
    .await;
    // Ready (it serves /readyz, /metrics and would serve the webhook) without leading.
    let mut second =
        ControllerProcess::start_with(plane, &ns, &dir.path().join("b"), elect()).await;
    let admin = plane.client(User::Admin).await;
    let leases: Api<Lease> = Api::namespaced(admin.clone(), &state_namespace_of(&ns));
    let first_id = format!("-{}", first.pid().unwrap());
    let second_id = format!("-{}", second.pid().unwrap());
    assert!(
        lease_holder(&leases).await.unwrap().ends_with(&first_id),
        "{:?}",
        lease_holder(&leases).await
    );
    assert_eq!(second.metric("tollgate_leader").await, 0.0);
    // `terraform version` at start-up.
    let standby_runs = second.metric("tollgate_terraform_commands_started").await;

    let projects: Api<Project> = Api::namespaced(admin, &ns);
    let markers = dir.path().join("markers");
    create_preapproved(plane, &projects, &ns, &markers, 6).await;
    let first_work = dir.path().join("a/work").join(&ns).join("demo");
    wait_for("the leader applies", DEADLINE, || async {
        applying_in(&first_work)
    })
    .await;
    // The standby has reconciled nothing and run no Terraform.
    assert_eq!(second.metric("tollgate_reconciles_total").await, 0.0);
    assert_eq!(
        second.metric("tollgate_terraform_commands_started").await,
        standby_runs
    );

    first.kill_hard().await;
    let killed = Instant::now();
    assert!(
        markers_in(&markers).is_empty(),
        "killed before the apply finished"
    );
    wait_for("the second replica takes over", DEADLINE, || async {
        second.metric("tollgate_leader").await == 1.0
    })
    .await;
    let takeover = killed.elapsed();
    assert!(lease_holder(&leases).await.unwrap().ends_with(&second_id));
    wait_ready(&projects, || second.log()).await;
    wait_for("the apply's marker", DEADLINE, || async {
        !markers_in(&markers).is_empty()
    })
    .await;
    assert_eq!(
        markers_in(&markers).len(),
        1,
        "exactly one apply across the failover:\n{}",
        second.log()
    );
    assert!(second.metric("tollgate_reconciles_total").await > 0.0);
    eprintln!(
        "e2e: leader killed with SIGKILL mid-apply; the standby led after {takeover:?} (lease {LEASE_SECONDS} s) and logged:\n{}",
        second
            .log()
            .lines()
            .filter(|l| l.contains("leader")
                || l.contains("stale")
                || l.contains("lock")
                || l.contains("ApplyCompleted"))
            .collect::<Vec<_>>()
            .join("\n")
    );

    // A leader whose Lease another replica took stops and exits with an error, so its pod
    // restarts as a candidate.
    leases
        .patch(
            "tollgate-controller",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"holderIdentity": "another-replica"}})),
        )
        .await
        .unwrap();
    let status = second.wait_exit(DEADLINE).await;
    assert_eq!(status.code(), Some(1), "{status:?}\n{}", second.log());
    assert!(
        second.log().contains("no longer the leader"),
        "{}",
        second.log()
    );
}

#[tokio::test]
async fn sigterm_during_an_apply_lets_it_finish_and_exits_cleanly() {
    let plane = ControlPlane::get().await;
    let ns = plane.namespace("sigterm").await;
    let dir = tempfile::tempdir().unwrap();
    let mut controller = ControllerProcess::start_with(
        plane,
        &ns,
        dir.path(),
        vec![
            "--leader-elect".into(),
            "--shutdown-grace-period".into(),
            "120".into(),
        ],
    )
    .await;
    let admin = plane.client(User::Admin).await;
    let projects: Api<Project> = Api::namespaced(admin.clone(), &ns);
    let markers = dir.path().join("markers");
    create_preapproved(plane, &projects, &ns, &markers, 5).await;
    let work = dir.path().join("work").join(&ns).join("demo");
    wait_for("terraform apply running", DEADLINE, || async {
        applying_in(&work)
    })
    .await;
    controller.terminate();
    let status = controller.wait_exit(DEADLINE).await;
    assert!(status.success(), "{status:?}\n{}", controller.log());
    // The apply finished and was recorded before the process exited.
    assert_eq!(markers_in(&markers).len(), 1, "{}", controller.log());
    let project = projects.get("demo").await.unwrap();
    let status = project.status.unwrap();
    assert_eq!(
        status.phase,
        Some(ProjectPhase::Ready),
        "{}",
        controller.log()
    );
    assert!(status.last_applied.is_some());
    // The Lease was given up, so a successor would not wait for it to expire.
    let leases: Api<Lease> = Api::namespaced(admin, &state_namespace_of(&ns));
    assert_eq!(lease_holder(&leases).await, None, "{}", controller.log());
    assert!(
        controller.log().contains("Finished { running: 1 }"),
        "{}",
        controller.log()
    );
}

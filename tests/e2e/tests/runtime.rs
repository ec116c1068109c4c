//! The controller as a production runtime on a real cluster: bounded objects per Project.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use tollgate::api::{Checkpoint, CheckpointPhase, Project, ProjectPhase};
use tollgate_e2e::controller::ControllerProcess;
use tollgate_e2e::{ControlPlane, User, demo_project};

const DEADLINE: Duration = Duration::from_secs(120);

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

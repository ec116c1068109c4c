//! Fair Terraform run slots on a real cluster: a namespace with many Projects waiting does
//! not hold back another namespace's single Project by more than one run. Its own file (so
//! its own process): the controller watches every namespace, selecting its Projects by label.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use kube::api::{Api, PostParams};
use serde_json::json;
use tollgate::api::{Project, ProjectPhase};
use tollgate_e2e::controller::{ControllerProcess, state_namespace_of};
use tollgate_e2e::{ControlPlane, User, demo_project, everything};

const DEADLINE: Duration = Duration::from_secs(240);
/// Projects of the busy namespace.
const BUSY: usize = 6;

/// A pre-approved demo Project named `name` whose apply takes two seconds, labelled for
/// this test's controller.
fn project(ns: &str, name: &str, label: &str, markers: &std::path::Path) -> Project {
    let mut p = demo_project(ns, markers, json!({"apply_delay_seconds": 2}), everything());
    p.metadata.name = Some(name.to_owned());
    p.metadata.labels = Some([("tollgate.dev/e2e-run".to_owned(), label.to_owned())].into());
    p
}

fn ready(p: &Project) -> bool {
    p.status
        .as_ref()
        .is_some_and(|s| s.phase == Some(ProjectPhase::Ready) && s.last_applied.is_some())
}

async fn ready_count(api: &Api<Project>) -> usize {
    api.list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter(|p| ready(p))
        .count()
}

#[tokio::test]
async fn a_namespace_with_one_project_is_served_while_another_has_many_queued() {
    let plane = ControlPlane::get().await;
    let busy_ns = plane.namespace("fair-busy").await;
    let quiet_ns = plane.namespace("fair-quiet").await;
    let label = busy_ns.clone();
    let dir = tempfile::tempdir().unwrap();
    // One Terraform run at a time: every other Project waits.
    let controller = ControllerProcess::start_selecting(
        plane,
        &format!("tollgate.dev/e2e-run={label}"),
        &state_namespace_of(&busy_ns),
        dir.path(),
        vec!["--max-terraform".into(), "1".into()],
    )
    .await;
    let admin = plane.client(User::Admin).await;
    let busy: Api<Project> = Api::namespaced(admin.clone(), &busy_ns);
    let quiet: Api<Project> = Api::namespaced(admin, &quiet_ns);
    plane.allow_in(&busy_ns, everything()).await;
    plane.allow_in(&quiet_ns, everything()).await;
    for i in 0..BUSY {
        let markers = dir.path().join(format!("busy-{i}"));
        busy.create(
            &PostParams::default(),
            &project(&busy_ns, &format!("p{i}"), &label, &markers),
        )
        .await
        .unwrap();
    }
    // The busy namespace fills the queue before the quiet one asks.
    let deadline = Instant::now() + DEADLINE;
    loop {
        let waiting = busy
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .iter()
            .filter(|p| p.status.as_ref().is_some_and(|s| s.queue.is_some()))
            .count();
        if waiting >= 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the busy namespace never queued:\n{}",
            controller.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    quiet
        .create(
            &PostParams::default(),
            &project(&quiet_ns, "solo", &label, &dir.path().join("quiet")),
        )
        .await
        .unwrap();

    // It waits, and says where it stands: first in line, its namespace's only one.
    let (queue, busy_done_when_queued) = loop {
        let solo = quiet.get("solo").await.unwrap();
        let done = ready_count(&busy).await;
        if let Some(queue) = solo.status.as_ref().and_then(|s| s.queue.clone()) {
            break (queue, done);
        }
        assert!(
            !ready(&solo),
            "the quiet Project ran at once although the single slot was busy:\n{}",
            controller.log()
        );
        assert!(
            Instant::now() < deadline,
            "the quiet Project never queued:\n{}",
            controller.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        (
            queue.position,
            queue.namespace_waiting,
            queue.namespaces_waiting,
            queue.slots
        ),
        (1, 1, 2, 1),
        "{queue:?}"
    );
    let solo = quiet.get("solo").await.unwrap();
    let reconciling = solo
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Reconciling")
        .unwrap();
    assert_eq!(
        (reconciling.status.as_str(), reconciling.reason.as_str()),
        ("True", "Queued")
    );
    assert!(
        reconciling.message.contains("position 1"),
        "{}",
        reconciling.message
    );

    // Served after the one run that held the slot, not after the busy namespace's queue.
    loop {
        let solo = quiet.get("solo").await.unwrap();
        if ready(&solo) {
            assert!(
                solo.status.unwrap().queue.is_none(),
                "a Project that ran still says it waits"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the quiet Project was never served:\n{}",
            controller.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let busy_done = ready_count(&busy).await;
    assert!(
        busy_done <= busy_done_when_queued + 1,
        "{busy_done} busy Projects ran before the quiet one; {busy_done_when_queued} had when it queued"
    );
    assert!(
        busy_done < BUSY,
        "the quiet Project waited for the whole busy queue"
    );

    // And the busy namespace is served to the end.
    loop {
        if ready_count(&busy).await == BUSY {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the busy namespace was not served:\n{}",
            controller.log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(controller.metric("tollgate_run_queue_waiting").await, 0.0);
}

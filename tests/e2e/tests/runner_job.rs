//! The Job runner (`--runner=job`) on a real control plane: the Jobs the controller creates
//! (a plan Job, then an apply Job) are checked as the apiserver stored them, and the
//! harness's node (`kubelet.rs`) runs their pods exactly as a kubelet would, under the
//! runner ServiceAccount of `deploy/runner-rbac.yaml`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Secret};
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tollgate::api::{Checkpoint, Project, ProjectPhase};
use tollgate::runner_job::{self, RUN_LABEL};
use tollgate_e2e::controller::ControllerProcess;
use tollgate_e2e::kubelet::{
    Kubelet, Node, PodRun, RUNNER_ACCOUNT, job_runner_args, state_namespace_with_runner,
};
use tollgate_e2e::webhook::start_webhook;
use tollgate_e2e::{
    ControlPlane, User, applying_in, create_preapproved, demo_project, markers_in, wait_demo,
    wait_for,
};

const DEADLINE: Duration = Duration::from_secs(180);
const LEASE_SECONDS: u64 = 4;

async fn runner_jobs(jobs: &Api<Job>) -> Vec<Job> {
    jobs.list(&ListParams::default().labels(RUN_LABEL))
        .await
        .unwrap()
        .items
}

/// A controller replica with leader election and the Job runner, its files in `dir/name`.
async fn replica(plane: &ControlPlane, ns: &str, dir: &Path, name: &str) -> ControllerProcess {
    replica_with(plane, ns, dir, name, &[]).await
}

/// [`replica`] with more controller flags.
async fn replica_with(
    plane: &ControlPlane,
    ns: &str,
    dir: &Path,
    name: &str,
    extra: &[&str],
) -> ControllerProcess {
    let mut args = job_runner_args(&dir.join(name));
    args.extend([
        "--leader-elect".to_owned(),
        "--leader-elect-lease-duration".to_owned(),
        LEASE_SECONDS.to_string(),
    ]);
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    ControllerProcess::start_with(plane, ns, &dir.join(name), args).await
}

async fn leads(replica: &ControllerProcess) {
    wait_for("a replica leads", DEADLINE, || async {
        replica.metric("tollgate_leader").await == 1.0
    })
    .await;
}

/// Alice (a TO) approves the checkpoint Project `name` waits on.
async fn approve(plane: &ControlPlane, projects: &Api<Project>, name: &str) {
    let status = projects.get(name).await.unwrap().status.unwrap();
    let checkpoint = status.checkpoint_ref.expect("a checkpoint").name;
    let ns = projects.get(name).await.unwrap().namespace().unwrap();
    decide(plane, &ns, &checkpoint, "Approved").await;
}

/// Alice (a TO) decides `checkpoint`.
async fn decide(plane: &ControlPlane, ns: &str, checkpoint: &str, decision: &str) {
    Api::<Checkpoint>::namespaced(plane.client(User::Alice).await, ns)
        .patch_status(
            checkpoint,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"decision": decision, "reason": "e2e"}})),
        )
        .await
        .unwrap();
}

/// The pods of `run` Jobs (`plan`, `apply`).
fn pods_of(node: &Kubelet, run: &str) -> Vec<PodRun> {
    node.pods().into_iter().filter(|p| p.run == run).collect()
}

#[tokio::test]
async fn killing_the_leader_mid_plan_and_mid_apply_gives_one_plan_and_one_apply() {
    let plane = ControlPlane::get().await;
    let ns = plane.namespace("jobleader").await;
    let state = state_namespace_with_runner(plane, &ns).await;
    let dir = tempfile::tempdir().unwrap();
    // The plan's pod waits for the test to kill the leader that started it.
    let node = Kubelet::start(plane, &state, &dir.path().join("node"), |run| {
        if run == "plan" {
            Node::Gated
        } else {
            Node::Run
        }
    })
    .await;
    let mut first = replica(plane, &ns, dir.path(), "a").await;
    leads(&first).await;
    let mut second = replica(plane, &ns, dir.path(), "b").await;
    let admin = plane.client(User::Admin).await;
    let projects: Api<Project> = Api::namespaced(admin.clone(), &ns);
    let jobs: Api<Job> = Api::namespaced(admin.clone(), &state);
    let markers = dir.path().join("markers");
    create_preapproved(plane, &projects, &ns, &markers, 8).await;

    // Mid-plan: the plan's Job runs (its pod held at the gate) when its leader dies.
    wait_for("the plan's pod starts", DEADLINE, || async {
        !pods_of(&node, "plan").is_empty()
    })
    .await;
    first.kill_hard().await;
    leads(&second).await;
    node.open_gate();
    // Mid-apply: the pod is applying (its private copy of the approved plan exists only
    // then) when the second leader dies too.
    wait_for("the runner pod applies", DEADLINE, || async {
        pods_of(&node, "apply").iter().any(|p| applying_in(&p.work))
    })
    .await;
    let third = replica(plane, &ns, dir.path(), "c").await;
    // The controllers apply nothing themselves.
    for replica in ["a", "b"] {
        assert!(!applying_in(
            &dir.path().join(replica).join("work").join(&ns).join("demo")
        ));
    }
    second.kill_hard().await;
    assert!(
        markers_in(&markers).is_empty(),
        "killed before the apply finished"
    );
    leads(&third).await;
    let project = wait_demo(
        &projects,
        "Ready",
        |s| s.phase == Some(ProjectPhase::Ready),
        || third.log(),
    )
    .await;
    assert_eq!(
        markers_in(&markers).len(),
        1,
        "exactly one apply across the failovers:\n{}",
        third.log()
    );
    // One plan and one apply, each run by the Job the leader that died had started.
    for run in ["plan", "apply"] {
        let pods = pods_of(&node, run);
        assert_eq!(pods.len(), 1, "one {run} pod: {pods:?}\n{}", third.log());
        assert_eq!(
            pods[0].exit,
            Some(0),
            "{}",
            std::fs::read_to_string(&pods[0].log).unwrap_or_default()
        );
    }
    assert!(
        !second.log().contains("the runner Job runs plan"),
        "{}",
        second.log()
    );
    assert!(
        !third.log().contains("the runner Job runs"),
        "{}",
        third.log()
    );
    // The plan's Job was deleted once read; the apply's is kept.
    let all = runner_jobs(&jobs).await;
    assert_eq!(
        all.len(),
        1,
        "one Job: {:?}",
        all.iter().map(|j| j.name_any()).collect::<Vec<_>>()
    );

    // What the apiserver stored: the Job, its Secrets, and the run in status.
    let job = &all[0];
    let status = project.status.clone().unwrap();
    let run = status.runner_job.clone().expect("status.runnerJob");
    assert_eq!(run.job, job.name_any());
    assert_eq!(run.holder, format!("job/{state}/{}", job.name_any()));
    assert!(run.recorded);
    assert_eq!(status.last_applied.unwrap().plan_id, run.plan_id);
    assert_eq!(job.labels()["tollgate.dev/project"], "demo");
    assert_eq!(job.labels()["tollgate.dev/project-namespace"], ns);
    assert_eq!(job.annotations()[runner_job::HOLDER_ANNOTATION], run.holder);
    let spec = job.spec.clone().unwrap();
    assert_eq!(spec.backoff_limit, Some(0));
    assert_eq!(spec.active_deadline_seconds, Some(900));
    assert_eq!(spec.suspend, Some(false));
    let pod = spec.template.spec.unwrap();
    assert_eq!(pod.service_account_name.as_deref(), Some(RUNNER_ACCOUNT));
    let container = &pod.containers[0];
    assert_eq!(
        container.image.as_deref(),
        Some("registry.example/tollgate:e2e")
    );
    let limits = container.resources.clone().unwrap().limits.unwrap();
    assert_eq!(limits["memory"].0, "512Mi");
    assert_eq!(limits["cpu"].0, "1");
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), &state);
    for name in [
        runner_job::inputs_secret(&job.name_any()),
        runner_job::result_secret(&job.name_any()),
    ] {
        let secret = secrets.get(&name).await.unwrap();
        let owner = &secret.owner_references()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("Job", job.uid().unwrap().as_str()),
            "{name}"
        );
    }
    // The outputs came back through the result Secret.
    let outputs: Api<Secret> = Api::namespaced(admin, &ns);
    let outputs = outputs
        .get(&status.outputs_secret_ref.unwrap().name)
        .await
        .unwrap();
    assert_eq!(outputs.data.unwrap()["app_greeting"].0, b"hello");
}

#[tokio::test]
async fn a_runner_job_that_dies_is_reported_with_its_run_identity() {
    // Killed past its deadline: the dead Job is kept for `kubectl logs`.
    assert_eq!(
        reported_dead("jobdies", "apply", Node::Kill, "DeadlineExceeded").await,
        1
    );
}

#[tokio::test]
async fn a_runner_job_deleted_while_it_runs_is_reported() {
    assert_eq!(
        reported_dead("jobgone", "apply", Node::Hold, "deleted before it finished").await,
        0
    );
}

#[tokio::test]
async fn a_plan_job_that_dies_is_reported_and_not_run_again() {
    assert_eq!(
        reported_dead("plandies", "plan", Node::Kill, "DeadlineExceeded").await,
        1
    );
}

/// A Project whose `run` Job (`plan`, `apply`) the node treats as `node` (with
/// [`Node::Hold`], the test deletes the running Job) ends `Failed` (`RunnerJobDied`), the
/// message and a Warning Event naming the run and `reason`, nothing applied and no second
/// Job started. Returns how many runner Jobs are left (a plan's is deleted once read).
async fn reported_dead(prefix: &str, run: &'static str, node: Node, reason: &str) -> usize {
    let plane = ControlPlane::get().await;
    let ns = plane.namespace(prefix).await;
    let state = state_namespace_with_runner(plane, &ns).await;
    let dir = tempfile::tempdir().unwrap();
    let kubelet = Kubelet::start(plane, &state, &dir.path().join("node"), move |kind| {
        if kind == run { node } else { Node::Run }
    })
    .await;
    let controller =
        ControllerProcess::start_with(plane, &ns, dir.path(), job_runner_args(dir.path())).await;
    let admin = plane.client(User::Admin).await;
    let projects: Api<Project> = Api::namespaced(admin.clone(), &ns);
    let jobs: Api<Job> = Api::namespaced(admin.clone(), &state);
    let markers = dir.path().join("markers");
    create_preapproved(plane, &projects, &ns, &markers, 0).await;
    if node == Node::Hold {
        wait_for("the node starts the Job's pod", DEADLINE, || async {
            !pods_of(&kubelet, run).is_empty()
        })
        .await;
        let job = pods_of(&kubelet, run)[0].job.clone();
        jobs.delete(&job, &Default::default()).await.unwrap();
    }

    let project = wait_demo(
        &projects,
        "Failed",
        |s| s.phase == Some(ProjectPhase::Failed),
        || controller.log(),
    )
    .await;
    let status = project.status.unwrap();
    let run_status = status.runner_job.expect("status.runnerJob");
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.reason, "RunnerJobDied");
    assert!(
        ready.message.contains(&run_status.holder) && ready.message.contains(reason),
        "{}",
        ready.message
    );
    assert!(run_status.job.starts_with(&format!("tollgate-{run}-")));
    if run == "apply" {
        assert_eq!(status.history[0].outcome, "Failed");
    }
    assert!(markers_in(&markers).is_empty(), "nothing was applied");
    assert_eq!(pods_of(&kubelet, run).len(), 1, "{:?}", kubelet.pods());
    let events: Api<Event> = Api::namespaced(admin.clone(), &ns);
    wait_for("a Warning event names the run", DEADLINE, || async {
        events
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .any(|e| {
                e.type_.as_deref() == Some("Warning")
                    && e.reason.as_deref() == Some("RunnerJobDied")
                    && e.message
                        .as_deref()
                        .is_some_and(|m| m.contains(&run_status.holder))
            })
    })
    .await;
    runner_jobs(&jobs).await.len()
}

#[tokio::test]
async fn plans_and_applies_run_in_jobs_each_holding_its_run_slot() {
    let plane = ControlPlane::get().await;
    let ns = start_webhook().await.namespace(plane, "jobplan").await;
    let state = state_namespace_with_runner(plane, &ns).await;
    let dir = tempfile::tempdir().unwrap();
    let node = Kubelet::start(plane, &state, &dir.path().join("node"), |_| Node::Run).await;
    // One Terraform run at a time: a running Job must hold the only slot.
    let mut args = job_runner_args(dir.path());
    args.extend(["--max-terraform".to_owned(), "1".to_owned()]);
    let controller = ControllerProcess::start_with(plane, &ns, dir.path(), args).await;
    let admin = plane.client(User::Admin).await;
    let projects: Api<Project> = Api::namespaced(admin.clone(), &ns);
    let jobs: Api<Job> = Api::namespaced(admin.clone(), &state);
    plane.allow_in(&ns, json!({})).await;
    // A first apply needs a person; the first Project's apply takes eight seconds.
    for (name, apply_seconds) in [("first", 8), ("second", 0)] {
        let mut project = demo_project(
            &ns,
            &dir.path().join(name),
            json!({"apply_delay_seconds": apply_seconds}),
            serde_json::Value::Null,
        );
        project.metadata.name = Some(name.to_owned());
        projects
            .create(&PostParams::default(), &project)
            .await
            .unwrap();
    }
    let phase_of = |name: &'static str| {
        let projects = projects.clone();
        async move { projects.get(name).await.unwrap().status.unwrap_or_default() }
    };
    // Both plan, in Jobs: the second while the first waits for a decision, which holds
    // no slot.
    for name in ["first", "second"] {
        wait_for(&format!("{name} awaits approval"), DEADLINE, || async {
            phase_of(name).await.phase == Some(ProjectPhase::AwaitingApproval)
        })
        .await;
    }
    let plans = pods_of(&node, "plan");
    assert_eq!(plans.len(), 2, "{plans:?}\n{}", controller.log());
    assert!(plans.iter().all(|p| p.exit == Some(0)), "{plans:?}");
    // The controller ran no Terraform plan itself: its working directories were never
    // initialised.
    for name in ["first", "second"] {
        let work = dir.path().join("work").join(&ns).join(name);
        assert!(work.join("main.tf").exists(), "{}", work.display());
        assert!(!work.join(".terraform").exists(), "{}", work.display());
    }
    // A plan's Job is deleted once its plan is stored.
    wait_for("the plan Jobs are deleted", DEADLINE, || async {
        runner_jobs(&jobs).await.is_empty()
    })
    .await;

    approve(plane, &projects, "first").await;
    wait_for("the first apply runs in its Job", DEADLINE, || async {
        pods_of(&node, "apply").iter().any(|p| applying_in(&p.work))
    })
    .await;
    // Approved while the first apply's Job runs: it waits for the slot that Job holds.
    approve(plane, &projects, "second").await;
    for name in ["first", "second"] {
        wait_for(&format!("{name} is applied"), DEADLINE, || async {
            let status = phase_of(name).await;
            status.phase == Some(ProjectPhase::Ready) && status.last_applied.is_some()
        })
        .await;
        assert_eq!(markers_in(&dir.path().join(name)).len(), 1, "{name}");
    }
    let applies = pods_of(&node, "apply");
    assert_eq!(applies.len(), 2, "{applies:?}\n{}", controller.log());
    assert_eq!(
        node.most_at_once(),
        1,
        "runner pods ran side by side under --max-terraform 1:\n{}",
        controller.log()
    );
    let second = phase_of("second").await;
    let run = second.runner_job.expect("status.runnerJob");
    assert!(run.job.starts_with("tollgate-apply-"), "{}", run.job);
    assert_eq!(second.last_applied.unwrap().plan_id, run.plan_id);
}

#[tokio::test]
async fn drift_checks_run_in_plan_jobs() {
    let plane = ControlPlane::get().await;
    let ns = start_webhook().await.namespace(plane, "jobdrift").await;
    let state = state_namespace_with_runner(plane, &ns).await;
    let dir = tempfile::tempdir().unwrap();
    let node = Kubelet::start(plane, &state, &dir.path().join("node"), |_| Node::Run).await;
    // The e2e catalog's `tgfile` module (the test-only provider, which the pods get from
    // the node's TF_CLI_CONFIG_FILE as the controller does).
    let provider = std::env::var("TOLLGATE_TEST_PROVIDER_CONFIG")
        .expect("TOLLGATE_TEST_PROVIDER_CONFIG: the path `bash tests/tools/install-test-provider.sh` prints");
    assert_eq!(
        std::env::var("TF_CLI_CONFIG_FILE").ok().as_deref(),
        Some(provider.as_str()),
        "the node's pods find the test provider through TF_CLI_CONFIG_FILE"
    );
    let mut args = job_runner_args(dir.path());
    let catalog = tollgate_e2e::repo_root().join("tests/e2e/testdata/catalog");
    args.extend(["--catalog".into(), catalog.to_string_lossy().into_owned()]);
    let controller = ControllerProcess::start_with_env(
        plane,
        &ns,
        dir.path(),
        args,
        vec![("TF_CLI_CONFIG_FILE".into(), provider)],
    )
    .await;
    let projects: Api<Project> = Api::namespaced(plane.client(User::Admin).await, &ns);
    let file = dir.path().join("config.txt");
    let project: Project = serde_json::from_value(json!({
        "apiVersion": "tollgate.dev/v1alpha1", "kind": "Project",
        "metadata": {"name": "files", "namespace": ns},
        "spec": {
            "environment": "dev",
            "components": [{"name": "app", "module": "tgfile", "inputs": {
                "path": file.to_str().unwrap(), "content": "declared", "secret": "s3cr3t-e2e"}}],
            "driftDetection": {"interval": "10s", "action": "Report"}
        }
    }))
    .unwrap();
    projects
        .create(&PostParams::default(), &project)
        .await
        .unwrap();
    let drifted = |status: &str| {
        let projects = projects.clone();
        let status = status.to_owned();
        async move {
            projects
                .get("files")
                .await
                .unwrap()
                .status
                .unwrap_or_default()
                .conditions
                .iter()
                .any(|c| c.type_ == "Drifted" && c.status == status)
        }
    };
    wait_for("the first plan awaits approval", DEADLINE, || async {
        projects
            .get("files")
            .await
            .unwrap()
            .status
            .and_then(|s| s.phase)
            == Some(ProjectPhase::AwaitingApproval)
    })
    .await;
    approve(plane, &projects, "files").await;
    wait_for("a clean drift check", DEADLINE, || drifted("False")).await;
    std::fs::write(&file, "edited by hand").unwrap();
    wait_for("the drift is found", DEADLINE, || drifted("True")).await;

    // Every plan (the first and each check) ran in a plan Job; the controller's working
    // directory was never initialised.
    let plans = pods_of(&node, "plan");
    assert!(plans.len() >= 3, "{plans:?}\n{}", controller.log());
    assert!(plans.iter().all(|p| p.exit == Some(0)), "{plans:?}");
    let work = dir.path().join("work").join(&ns).join("files");
    assert!(work.join("main.tf").exists(), "{}", work.display());
    assert!(!work.join(".terraform").exists(), "{}", controller.log());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "edited by hand");
}

/// A failed apply in a Job escalates with what the state shows done, learnt from a
/// verification plan run in a plan Job, not by the controller (whose working directory is
/// never initialised); Retry, once the cause is gone, applies in a new apply Job.
#[tokio::test]
async fn a_failed_apply_is_verified_in_a_plan_job_and_retried_in_a_new_apply_job() {
    let plane = ControlPlane::get().await;
    let ns = start_webhook().await.namespace(plane, "jobfail").await;
    let state = state_namespace_with_runner(plane, &ns).await;
    let dir = tempfile::tempdir().unwrap();
    let node = Kubelet::start(plane, &state, &dir.path().join("node"), |_| Node::Run).await;
    let args = job_runner_args(dir.path());
    let controller = ControllerProcess::start_with(plane, &ns, dir.path(), args).await;
    let admin = plane.client(User::Admin).await;
    let projects: Api<Project> = Api::namespaced(admin.clone(), &ns);
    plane.allow_in(&ns, json!({})).await;
    // The demo module cannot create its marker directory: a file is in the way.
    let blocked = dir.path().join("blocked");
    std::fs::write(&blocked, "a file where the module wants a directory").unwrap();
    let project = demo_project(&ns, &blocked, json!({}), serde_json::Value::Null);
    projects
        .create(&PostParams::default(), &project)
        .await
        .unwrap();
    wait_demo(
        &projects,
        "awaits approval",
        |s| s.phase == Some(ProjectPhase::AwaitingApproval),
        || controller.log(),
    )
    .await;
    approve(plane, &projects, "demo").await;
    let checkpoints: Api<Checkpoint> = Api::namespaced(admin, &ns);
    let escalation = tollgate_e2e::awaited_checkpoint_of(
        &checkpoints,
        tollgate::api::CheckpointType::FailureEscalation,
        DEADLINE,
    )
    .await;
    let changes = &escalation.spec.summary.changes;
    assert!(
        changes.iter().any(|c| c.starts_with("not applied: ")),
        "the verification plan says what is left: {changes:?}\n{}",
        controller.log()
    );
    let plans = pods_of(&node, "plan");
    assert_eq!(
        plans.len(),
        2,
        "the plan, then the verification plan: {plans:?}"
    );
    assert!(plans.iter().all(|p| p.exit == Some(0)), "{plans:?}");
    let work = dir.path().join("work").join(&ns).join("demo");
    assert!(work.join("main.tf").exists(), "{}", work.display());
    assert!(!work.join(".terraform").exists(), "{}", controller.log());

    std::fs::remove_file(&blocked).unwrap();
    decide(plane, &ns, &escalation.name_any(), "Retry").await;
    // The failed apply left state behind (the replica), so its plan is stale: a second
    // verification plan (a Job again) finds changes and a new plan needs a person.
    let decided = std::sync::Mutex::new(std::collections::HashSet::from([escalation.name_any()]));
    wait_for("applied after Retry", DEADLINE, || async {
        let status = projects
            .get("demo")
            .await
            .unwrap()
            .status
            .unwrap_or_default();
        let waiting = status.checkpoint_ref.as_ref().map(|c| c.name.clone());
        if status.phase == Some(ProjectPhase::AwaitingApproval)
            && let Some(checkpoint) = waiting
            && decided.lock().unwrap().insert(checkpoint.clone())
        {
            decide(plane, &ns, &checkpoint, "Approved").await;
        }
        status.phase == Some(ProjectPhase::Ready) && status.last_applied.is_some()
    })
    .await;
    assert_eq!(markers_in(&blocked).len(), 1, "exactly one apply");
    let applies = pods_of(&node, "apply");
    assert!(applies.len() >= 2, "{applies:?}");
    assert_ne!(applies[0].job, applies[1].job, "the retry is a new Job");
    assert!(pods_of(&node, "plan").iter().all(|p| p.exit == Some(0)));
    // No Terraform in the controller but `terraform version` (its plan key).
    assert!(!work.join(".terraform").exists(), "{}", controller.log());
    let commands = controller
        .metric("tollgate_terraform_commands_started")
        .await;
    assert!(commands <= 1.0, "{commands} commands\n{}", controller.log());
}

/// After a failover, a runner Job that still runs holds its run slot from the new leader's
/// start: under `--max-terraform 1` another Project's plan waits for it and never runs
/// beside it, whichever Project the new leader happens to reconcile first.
#[tokio::test]
async fn a_new_leader_counts_a_running_job_against_the_run_slots_from_its_start() {
    let plane = ControlPlane::get().await;
    let ns = plane.namespace("jobslots").await;
    let state = state_namespace_with_runner(plane, &ns).await;
    let dir = tempfile::tempdir().unwrap();
    // The apply's pod waits for the test.
    let node = Kubelet::start(plane, &state, &dir.path().join("node"), |run| {
        if run == "apply" {
            Node::Gated
        } else {
            Node::Run
        }
    })
    .await;
    let one_slot = ["--max-terraform", "1"];
    let mut first = replica_with(plane, &ns, dir.path(), "a", &one_slot).await;
    leads(&first).await;
    let second = replica_with(plane, &ns, dir.path(), "b", &one_slot).await;
    let projects: Api<Project> = Api::namespaced(plane.client(User::Admin).await, &ns);
    create_preapproved(plane, &projects, &ns, &dir.path().join("markers"), 0).await;
    wait_for("the apply's pod runs", DEADLINE, || async {
        !pods_of(&node, "apply").is_empty()
    })
    .await;
    let mut other = demo_project(
        &ns,
        &dir.path().join("other"),
        json!({}),
        serde_json::Value::Null,
    );
    other.metadata.name = Some("other".to_owned());
    projects
        .create(&PostParams::default(), &other)
        .await
        .unwrap();
    wait_for("the other Project waits for the slot", DEADLINE, || async {
        first.metric("tollgate_run_queue_waiting").await == 1.0
    })
    .await;

    first.kill_hard().await;
    leads(&second).await;
    wait_for(
        "the new leader holds the slot for the Job",
        DEADLINE,
        || async {
            second.metric("tollgate_run_slots_in_use").await == 1.0
                && second.metric("tollgate_run_queue_waiting").await == 1.0
        },
    )
    .await;
    assert_eq!(
        pods_of(&node, "plan").len(),
        1,
        "the other Project planned beside the running Job:\n{}",
        second.log()
    );
    node.open_gate();
    wait_for("both Projects are done", DEADLINE, || async {
        let phase = |name: &'static str| {
            let projects = projects.clone();
            async move {
                projects
                    .get(name)
                    .await
                    .unwrap()
                    .status
                    .unwrap_or_default()
                    .phase
            }
        };
        phase("demo").await == Some(ProjectPhase::Ready)
            && phase("other").await == Some(ProjectPhase::Ready)
    })
    .await;
    assert_eq!(
        node.most_at_once(),
        1,
        "runner pods ran side by side under --max-terraform 1:\n{}",
        second.log()
    );
}

//! Failures and recovery on a real cluster with real Terraform (issue 15): a saved plan that
//! is not the approved one is a security event, never a retry.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::rbac::v1::{RoleBinding, RoleRef, Subject};
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tollgate::api::{Checkpoint, Project};
use tollgate_e2e::controller::ControllerProcess;
use tollgate_e2e::webhook::start_webhook;
use tollgate_e2e::{ControlPlane, User, demo_project, markers_in};

const DEADLINE: Duration = Duration::from_secs(180);

struct Env {
    plane: &'static ControlPlane,
    ns: String,
    dir: tempfile::TempDir,
    controller: ControllerProcess,
    projects: Api<Project>,
    checkpoints: Api<Checkpoint>,
}

impl Env {
    /// A namespace behind the admission webhook with a controller; `extra_args` are the
    /// controller's.
    async fn new(prefix: &str, extra_args: impl FnOnce(&str, &Path) -> Vec<String>) -> Env {
        let plane = ControlPlane::get().await;
        let ns = start_webhook().await.namespace(plane, prefix).await;
        let dir = tempfile::tempdir().unwrap();
        let controller =
            ControllerProcess::start_with(plane, &ns, dir.path(), extra_args(&ns, dir.path()))
                .await;
        let admin = plane.client(User::Admin).await;
        Env {
            plane,
            projects: Api::namespaced(admin.clone(), &ns),
            checkpoints: Api::namespaced(admin, &ns),
            ns,
            dir,
            controller,
        }
    }

    fn markers(&self, project: &str) -> std::path::PathBuf {
        self.dir.path().join(format!("markers-{project}"))
    }

    /// The demo Project `name` with `greeting`, created as carol.
    async fn create(&self, name: &str, greeting: &str) {
        let mut project = demo_project(
            &self.ns,
            &self.markers(name),
            json!({"greeting": greeting}),
            serde_json::Value::Null,
        );
        project.metadata.name = Some(name.to_owned());
        let api: Api<Project> = Api::namespaced(self.plane.client(User::Carol).await, &self.ns);
        api.create(&PostParams::default(), &project).await.unwrap();
    }

    async fn status(&self, name: &str) -> tollgate::api::ProjectStatus {
        self.projects.get(name).await.unwrap().status.unwrap()
    }

    /// Waits until `check` holds for Project `name`.
    async fn wait_project(
        &self,
        name: &str,
        what: &str,
        check: impl Fn(&Project) -> bool,
    ) -> Project {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let p = self.projects.get(name).await.unwrap();
            if check(&p) {
                return p;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; status {:?}\ncontroller log:\n{}",
                p.status,
                self.controller.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The pending checkpoint of Project `name` other than `not`.
    async fn pending(&self, name: &str, not: Option<&str>) -> Checkpoint {
        let p = self
            .wait_project(name, "a pending checkpoint", |p| {
                p.status.as_ref().is_some_and(|s| {
                    s.phase == Some(tollgate::api::ProjectPhase::AwaitingApproval)
                        && s.checkpoint_ref
                            .as_ref()
                            .is_some_and(|r| Some(r.name.as_str()) != not)
                })
            })
            .await;
        let reference = p.status.unwrap().checkpoint_ref.unwrap();
        self.checkpoints.get(&reference.name).await.unwrap()
    }

    async fn decide(&self, user: User, checkpoint: &str, decision: &str) {
        self.try_decide(user, checkpoint, decision).await.unwrap();
    }

    async fn try_decide(
        &self,
        user: User,
        checkpoint: &str,
        decision: &str,
    ) -> Result<Checkpoint, kube::Error> {
        let api: Api<Checkpoint> = Api::namespaced(self.plane.client(user).await, &self.ns);
        api.patch_status(
            checkpoint,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"decision": decision, "reason": "e2e"}})),
        )
        .await
    }

    /// Lets the namespace's policy pre-approve every change.
    async fn pre_approve_everything(&self) {
        self.plane
            .allow_in(
                &self.ns,
                json!({"autoApprove": ["FirstApply", "Create", "Update", "Replace", "Delete"]}),
            )
            .await;
    }

    /// Lets the namespace's policy pre-approve every change, creates the demo Project `name`
    /// with `greeting` and waits until it is applied.
    async fn applied_without_review(&self, name: &str, greeting: &str) {
        self.pre_approve_everything().await;
        self.create(name, greeting).await;
        assert_eq!(self.ready_greeting(name).await, greeting);
    }

    /// Sets the demo Project's greeting to `url` and checks it after each apply: the
    /// module's `app_greeting` output is the greeting, so the URL comes from an output.
    async fn serve(&self, url: &str) {
        let inputs = json!({"greeting": url, "marker_dir": self.markers("demo").to_str().unwrap()});
        let patch = json!({"spec": {
            "components": [{"name": "app", "module": "demo", "inputs": inputs}],
            "healthChecks": [{"name": "web", "urlFromOutput": "app_greeting", "timeout": "2s", "retries": 1}],
        }});
        self.projects
            .patch("demo", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
    }

    /// Waits for Project `name` to be Ready, then returns its `app_greeting` output.
    async fn ready_greeting(&self, name: &str) -> String {
        self.wait_project(name, "Ready", |p| {
            p.status.as_ref().and_then(|s| s.phase) == Some(tollgate::api::ProjectPhase::Ready)
        })
        .await;
        let secret = Api::<Secret>::namespaced(self.plane.client(User::Admin).await, &self.ns)
            .get(&format!("{name}-outputs"))
            .await
            .unwrap();
        String::from_utf8(secret.data.unwrap()["app_greeting"].0.clone()).unwrap()
    }

    /// Sets the demo Project's greeting and marker directory.
    async fn change(&self, name: &str, greeting: &str, marker_dir: &Path) {
        let inputs = json!({"greeting": greeting, "replicas": 1, "marker_dir": marker_dir.to_str().unwrap()});
        let patch =
            json!({"spec": {"components": [{"name": "app", "module": "demo", "inputs": inputs}]}});
        self.projects
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
    }

    /// The `condition` of Project `name` once it has `status`.
    async fn condition(
        &self,
        name: &str,
        condition: &str,
        status: &str,
    ) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
        let p = self
            .wait_project(name, &format!("{condition}={status}"), |p| {
                p.status.as_ref().is_some_and(|s| {
                    s.conditions
                        .iter()
                        .any(|c| c.type_ == condition && c.status == status)
                })
            })
            .await;
        p.status
            .unwrap()
            .conditions
            .into_iter()
            .find(|c| c.type_ == condition)
            .unwrap()
    }

    /// Warning Events of the namespace with `reason`, as text.
    fn warnings(&self, reason: &str) -> String {
        self.plane.kubectl(
            User::Admin,
            &[
                "-n",
                &self.ns,
                "get",
                "events",
                "--field-selector",
                &format!("type=Warning,reason={reason}"),
                "-o",
                "json",
            ],
            None,
        )
    }
}

/// Binds carol to Kubernetes' built-in `edit` ClusterRole in `namespace`: a namespace
/// editor, who may write Secrets there.
async fn make_carol_a_namespace_editor(plane: &ControlPlane, namespace: &str) {
    let binding = RoleBinding {
        metadata: kube::api::ObjectMeta {
            name: Some("carol-edit".into()),
            namespace: Some(namespace.to_owned()),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "ClusterRole".into(),
            name: "edit".into(),
        },
        subjects: Some(vec![Subject {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "User".into(),
            name: plane.username(User::Carol),
            namespace: None,
        }]),
    };
    Api::<RoleBinding>::namespaced(plane.client(User::Admin).await, namespace)
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
}

/// The plan Secret (chunk 0) of plan `plan_id` in `secrets`.
async fn plan_secret(secrets: &Api<Secret>, plan_id: &str) -> Secret {
    let list = secrets
        .list(&ListParams::default().labels(&format!("tollgate.dev/plan-id={plan_id}")))
        .await
        .unwrap();
    assert_eq!(list.items.len(), 1, "one Secret holds plan {plan_id}");
    list.items.into_iter().next().unwrap()
}

/// A namespace editor (the built-in `edit` role can write Secrets) overwrites a Project's
/// saved plan with another Project's, in an install that keeps plans in the Projects'
/// namespace. The approved apply is refused, and that is a security event: a Warning Event
/// and `PlanIntegrity=False` naming the Secret and both digests, an audit record, the
/// checkpoint's apply outcome (what notifies `ApplyFailed`), the approval void, and a new
/// plan waiting for a new decision; nothing applied until then. The same for a deleted plan.
#[tokio::test]
async fn a_tampered_or_missing_saved_plan_voids_the_approval_and_asks_again() {
    let env = Env::new("tamper", |ns, dir| {
        vec![
            "--state-namespace".into(),
            ns.to_owned(),
            "--audit-file".into(),
            dir.join("audit.jsonl").to_string_lossy().into_owned(),
        ]
    })
    .await;
    make_carol_a_namespace_editor(env.plane, &env.ns).await;
    env.create("demo", "hello").await;
    env.create("other", "something else").await;
    let approved = env.pending("demo", None).await;
    let other = env.pending("other", None).await;
    let demo_plan = approved.spec.plan_ref.clone().unwrap();
    let other_plan = other.spec.plan_ref.clone().unwrap();

    // carol overwrites demo's plan with other's (keeping the name and labels).
    let carol_secrets: Api<Secret> = Api::namespaced(env.plane.client(User::Carol).await, &env.ns);
    let target = plan_secret(&carol_secrets, &demo_plan.id).await;
    let source = plan_secret(&carol_secrets, &other_plan.id).await;
    let mut forged = target.clone();
    forged.data = source.data.clone();
    carol_secrets
        .replace(&target.name_any(), &PostParams::default(), &forged)
        .await
        .unwrap();

    env.decide(User::Alice, &approved.name_any(), "Approved")
        .await;
    let integrity = env.condition("demo", "PlanIntegrity", "False").await;
    assert_eq!(integrity.reason, "PlanTampered");
    for needle in [
        target.name_any().as_str(),
        demo_plan.digest.as_str(),
        other_plan.digest.as_str(),
        approved.name_any().as_str(),
    ] {
        assert!(
            integrity.message.contains(needle),
            "{needle} not in {}",
            integrity.message
        );
    }
    assert!(
        env.warnings("PlanTampered").contains(&other_plan.digest),
        "a Warning Event names the digest found"
    );
    let voided = env.checkpoints.get(&approved.name_any()).await.unwrap();
    let outcome = voided.status.unwrap().apply_outcome.unwrap();
    assert!(
        !outcome.succeeded && outcome.message.contains("void"),
        "{outcome:?}"
    );
    let trail = std::fs::read_to_string(env.dir.path().join("audit.jsonl")).unwrap();
    assert!(
        trail
            .lines()
            .any(|l| l.contains("PlanRefused") && l.contains(&other_plan.digest)),
        "{trail}"
    );

    // A new plan, a new checkpoint that says why; nothing was applied.
    let again = env.pending("demo", Some(&approved.name_any())).await;
    assert!(
        again.spec.reasons.iter().any(|r| r.contains("refused")),
        "{:?}",
        again.spec.reasons
    );
    assert!(markers_in(&env.markers("demo")).is_empty());
    assert!(markers_in(&env.markers("other")).is_empty());
    assert_eq!(env.status("demo").await.history[0].outcome, "Refused");

    // A missing plan is refused the same way.
    let fresh = again.spec.plan_ref.clone().unwrap();
    let gone = plan_secret(&carol_secrets, &fresh.id).await;
    carol_secrets
        .delete(&gone.name_any(), &Default::default())
        .await
        .unwrap();
    env.decide(User::Alice, &again.name_any(), "Approved").await;
    let missing = env
        .wait_project("demo", "PlanMissing", |p| {
            p.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "PlanIntegrity" && c.reason == "PlanMissing")
            })
        })
        .await;
    let condition = missing
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "PlanIntegrity")
        .unwrap();
    assert!(
        condition.message.contains(&gone.name_any()),
        "{}",
        condition.message
    );
    assert!(markers_in(&env.markers("demo")).is_empty());

    // The third plan, read back intact, is applied once approved.
    let third = env.pending("demo", Some(&again.name_any())).await;
    env.decide(User::Bob, &third.name_any(), "Approved").await;
    let verified = env.condition("demo", "PlanIntegrity", "True").await;
    assert_eq!(verified.reason, "Verified");
    env.wait_project("demo", "Ready", |p| {
        p.status.as_ref().and_then(|s| s.phase) == Some(tollgate::api::ProjectPhase::Ready)
    })
    .await;
    assert_eq!(
        markers_in(&env.markers("demo")).len(),
        1,
        "exactly one apply"
    );
}

/// A failing apply (the demo module cannot create its marker directory: a file is in the
/// way) escalates to a FailureEscalation checkpoint that shows the error and what the state
/// says was done; only Retry/Rollback/Abandon decide it, and only an approver. Retry once
/// the cause is removed applies; Rollback (from a second failure, then by annotation to an
/// older revision) plans the kept revision again and waits for a person although the policy
/// pre-approves everything, and restores that revision's outputs.
#[tokio::test]
async fn a_failed_apply_escalates_and_retry_or_rollback_recover() {
    let env = Env::new("failure", |_, _| Vec::new()).await;
    env.applied_without_review("demo", "v1").await;

    let blocked = env.dir.path().join("blocked");
    std::fs::write(&blocked, "a file where the module wants a directory").unwrap();
    env.change("demo", "v2", &blocked).await;
    let escalation = env.pending("demo", None).await;
    assert_eq!(
        escalation.spec.checkpoint_type,
        tollgate::api::CheckpointType::FailureEscalation
    );
    assert!(
        escalation.spec.summary.text.contains("failed"),
        "{}",
        escalation.spec.summary.text
    );
    let reasons = escalation.spec.reasons.join("\n");
    for option in ["Retry:", "Rollback: plan revision 1", "Abandon:"] {
        assert!(reasons.contains(option), "{option} not in {reasons}");
    }
    assert!(
        escalation.spec.summary.changes.iter().any(|c| c
            .starts_with("applied before the failure: ")
            || c.starts_with("not applied: ")),
        "{:?}",
        escalation.spec.summary.changes
    );
    // Only the escalation's own decisions, and only from an approver.
    let name = escalation.name_any();
    let refused = env
        .try_decide(User::Alice, &name, "Approved")
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("Retry, Rollback"), "{refused}");
    let refused = env
        .try_decide(User::Carol, &name, "Retry")
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, kube::Error::Api(s) if s.code == 403),
        "{refused:?}"
    );
    env.decide(User::Alice, &name, "Rollback").await;
    // The rollback plan of revision 1 waits for a person although the policy pre-approves.
    let rollback = env.pending("demo", Some(&name)).await;
    assert_eq!(
        rollback.spec.checkpoint_type,
        tollgate::api::CheckpointType::PlanApproval
    );
    assert!(
        rollback
            .spec
            .reasons
            .iter()
            .any(|r| r.contains("rollback to revision 1")),
        "{:?}",
        rollback.spec.reasons
    );
    env.decide(User::Bob, &rollback.name_any(), "Approved")
        .await;
    assert_eq!(env.ready_greeting("demo").await, "v1");

    // A new change fails the same way; Retry after the cause is removed applies it.
    env.change("demo", "v3", &blocked).await;
    let second = env.pending("demo", Some(&rollback.name_any())).await;
    assert_eq!(
        second.spec.checkpoint_type,
        tollgate::api::CheckpointType::FailureEscalation
    );
    std::fs::remove_file(&blocked).unwrap();
    env.decide(User::Alice, &second.name_any(), "Retry").await;
    assert_eq!(env.ready_greeting("demo").await, "v3");
    assert_eq!(
        markers_in(&blocked).len(),
        1,
        "the retried apply created its marker"
    );

    // A rollback asked for by annotation, to the first revision.
    let revisions = env.status("demo").await.revisions;
    assert!(revisions.len() >= 3, "{revisions:?}");
    let first = revisions.last().unwrap().revision;
    let annotate =
        json!({"metadata": {"annotations": {"tollgate.dev/rollback-to": first.to_string()}}});
    env.projects
        .patch("demo", &PatchParams::default(), &Patch::Merge(&annotate))
        .await
        .unwrap();
    let by_annotation = env.pending("demo", Some(&second.name_any())).await;
    env.decide(User::Alice, &by_annotation.name_any(), "Approved")
        .await;
    assert_eq!(env.ready_greeting("demo").await, "v1");
}

/// The processes whose working directory is `dir` (Terraform and what it started there).
fn processes_in(dir: &Path) -> Vec<u32> {
    let dir = dir.canonicalize().unwrap();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd == dir))
        .collect()
}

/// `holderIdentity` of the `kubernetes` backend's lock Lease of Project `name`: the id of
/// the lock Terraform holds, if any.
async fn lock_holder(env: &Env, name: &str) -> Option<String> {
    let state = env.status(name).await.state.unwrap();
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(env.plane.client(User::Admin).await, &state.namespace);
    leases
        .get_opt(&format!("lock-{}", state.secret_name))
        .await
        .unwrap()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
}

/// A lock left by a killed run (issue 15): a Terraform apply killed with its controller
/// leaves the `kubernetes` backend's lock held, and Terraform itself refuses the next run.
/// The restarted controller shows the lock and its holder, judges the holder gone, and asks
/// a person through a ManualOperation checkpoint; it never unlocks by itself. A rejection
/// stops the Project with the lock still held; asked again, an approval force-unlocks
/// exactly that lock id and the change is applied.
#[tokio::test]
async fn a_lock_left_by_a_killed_run_is_force_unlocked_only_after_approval() {
    let mut env = Env::new("lock", |_, _| vec!["--lock-timeout".into(), "2".into()]).await;
    env.applied_without_review("demo", "v1").await;

    // v2's apply sleeps in its provisioner: killed there, with its controller, Terraform
    // never releases the lock.
    let inputs = json!({"greeting": "v2", "marker_dir": env.markers("demo").to_str().unwrap(), "apply_delay_seconds": 15});
    env.projects
        .patch(
            "demo",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"components": [{"name": "app", "module": "demo", "inputs": inputs}]}})),
        )
        .await
        .unwrap();
    let work = env.dir.path().join("work").join(&env.ns).join("demo");
    tollgate_e2e::wait_for(
        "terraform apply holding the state lock",
        DEADLINE,
        || async { tollgate_e2e::applying_in(&work) && lock_holder(&env, "demo").await.is_some() },
    )
    .await;
    env.controller.kill_hard().await;
    let killed = processes_in(&work);
    assert!(
        !killed.is_empty(),
        "terraform apply runs in {}",
        work.display()
    );
    for pid in &killed {
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
    }
    tollgate_e2e::wait_for("the killed run's processes gone", DEADLINE, || async {
        processes_in(&work).is_empty()
    })
    .await;
    let held = lock_holder(&env, "demo")
        .await
        .expect("the killed apply left the state lock held");

    // Terraform refuses the resumed apply; the holder (this host, no run of the new
    // controller) is gone, so a person is asked.
    env.controller.restart().await;
    let first = env
        .wait_project("demo", "a force-unlock checkpoint", |p| {
            p.status
                .as_ref()
                .and_then(|s| s.state_lock.as_ref())
                .is_some_and(|l| l.checkpoint_ref.is_some())
        })
        .await;
    let lock = first.status.unwrap().state_lock.unwrap();
    assert_eq!(lock.id, held, "status names the lock Terraform refused on");
    assert_eq!(lock.holder, "Gone", "{lock:?}");
    assert!(
        lock.who.as_deref().is_some_and(|w| w.contains('@')),
        "{lock:?}"
    );
    assert!(lock.created.is_some(), "{lock:?}");
    assert!(lock.blocked_run.contains("terraform apply"), "{lock:?}");
    let checkpoint = env
        .checkpoints
        .get(&lock.checkpoint_ref.unwrap().name)
        .await
        .unwrap();
    assert_eq!(
        checkpoint.spec.checkpoint_type,
        tollgate::api::CheckpointType::ManualOperation
    );
    assert!(
        checkpoint.spec.summary.text.contains(&held),
        "{}",
        checkpoint.spec.summary.text
    );
    assert_eq!(
        lock_holder(&env, "demo").await.as_deref(),
        Some(held.as_str()),
        "nothing unlocked by itself"
    );
    let refused = env
        .try_decide(User::Carol, &checkpoint.name_any(), "Approved")
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, kube::Error::Api(s) if s.code == 403),
        "{refused:?}"
    );

    // Rejected: the Project stops, says why, and the lock stays.
    env.decide(User::Bob, &checkpoint.name_any(), "Rejected")
        .await;
    env.wait_project("demo", "Failed after the rejection", |p| {
        p.status
            .as_ref()
            .is_some_and(|s| s.phase == Some(tollgate::api::ProjectPhase::Failed))
    })
    .await;
    let ready = env.condition("demo", "Ready", "False").await;
    assert_eq!(ready.reason, "ForceUnlockRejected");
    assert!(ready.message.contains(&held), "{}", ready.message);
    assert_eq!(
        lock_holder(&env, "demo").await.as_deref(),
        Some(held.as_str())
    );

    // Asked to plan again, the plan meets the same lock and asks again; approved, the lock
    // is force-unlocked and the change applied.
    env.projects
        .patch(
            "demo",
            &PatchParams::default(),
            &Patch::Merge(
                &json!({"metadata": {"annotations": {"tollgate.dev/replan": "after-rejection"}}}),
            ),
        )
        .await
        .unwrap();
    let second = env
        .wait_project("demo", "a second force-unlock checkpoint", |p| {
            p.status
                .as_ref()
                .and_then(|s| s.state_lock.as_ref())
                .and_then(|l| l.checkpoint_ref.as_ref())
                .is_some_and(|r| r.name != checkpoint.name_any())
        })
        .await;
    let name = second
        .status
        .unwrap()
        .state_lock
        .unwrap()
        .checkpoint_ref
        .unwrap()
        .name;
    env.decide(User::Alice, &name, "Approved").await;
    assert_eq!(env.ready_greeting("demo").await, "v2");
    let status = env.status("demo").await;
    assert!(status.state_lock.is_none(), "{:?}", status.state_lock);
    assert!(
        status.history.iter().any(|h| h.outcome == "ForceUnlocked"
            && h.decided_by.as_deref() == Some(env.plane.username(User::Alice).as_str())),
        "{:?}",
        status.history
    );
    assert_eq!(
        lock_holder(&env, "demo").await,
        None,
        "the lock is released"
    );
    let unlock_checkpoints = env
        .checkpoints
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|c| c.spec.checkpoint_type == tollgate::api::CheckpointType::ManualOperation)
        .count();
    assert_eq!(unlock_checkpoints, 2, "one per time the lock was met");
}

/// A stale lock met by a scheduled drift check (issue 15): the lock a run on this host
/// left behind (the `kubernetes` backend's Lease as Terraform writes it, holder gone) stops
/// the refresh-only plan; the same ManualOperation checkpoint as for a plan is offered,
/// nothing is unlocked before a person approves, and after the approval the check runs.
#[tokio::test]
async fn a_stale_lock_met_by_a_drift_check_is_offered_for_force_unlock() {
    let env = Env::new("driftlock", |_, _| {
        vec!["--lock-timeout".into(), "2".into()]
    })
    .await;
    env.applied_without_review("demo", "v1").await;
    let state = env.status("demo").await.state.unwrap();
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(env.plane.client(User::Admin).await, &state.namespace);
    // Checks from now on; the change plans nothing, so the Project is Ready again.
    env.projects
        .patch(
            "demo",
            &PatchParams::default(),
            &Patch::Merge(
                &json!({"spec": {"driftDetection": {"interval": "10s", "action": "Notify"}}}),
            ),
        )
        .await
        .unwrap();
    env.wait_project("demo", "Ready with drift checks on", |p| {
        p.status.as_ref().is_some_and(|s| {
            s.phase == Some(tollgate::api::ProjectPhase::Ready)
                && s.observed_generation == p.metadata.generation
                && s.drift.as_ref().is_some_and(|d| d.checked_at.is_some())
        })
    })
    .await;

    let id = "5d1f3c2a-8b4e-4f6a-9c7d-2e1b0a9f8e7d";
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let info = json!({"ID": id, "Operation": "OperationTypeApply", "Info": "",
        "Who": format!("root@{}", host.trim()), "Version": "1.9.0",
        "Created": "2026-12-03T20:00:00.000000000Z", "Path": ""});
    leases
        .patch(
            &format!("lock-{}", state.secret_name),
            &PatchParams::default(),
            &Patch::Merge(&json!({
                "metadata": {"annotations": {"app.terraform.io/lock-info": info.to_string()}},
                "spec": {"holderIdentity": id},
            })),
        )
        .await
        .unwrap();

    let offered = env
        .wait_project(
            "demo",
            "a force-unlock checkpoint for the drift check",
            |p| {
                p.status
                    .as_ref()
                    .and_then(|s| s.state_lock.as_ref())
                    .is_some_and(|l| l.checkpoint_ref.is_some())
            },
        )
        .await;
    let lock = offered.status.unwrap().state_lock.unwrap();
    assert_eq!(
        (lock.id.as_str(), lock.holder.as_str()),
        (id, "Gone"),
        "{lock:?}"
    );
    assert!(lock.blocked_run.contains("drift check"), "{lock:?}");
    let checkpoint = lock.checkpoint_ref.unwrap().name;
    assert_eq!(lock_holder(&env, "demo").await.as_deref(), Some(id));

    let approved_at = jiff::Timestamp::now().as_second();
    env.decide(User::Alice, &checkpoint, "Approved").await;
    env.wait_project("demo", "a clean drift check after the unlock", |p| {
        p.status.as_ref().is_some_and(|s| {
            s.state_lock.is_none()
                && s.phase == Some(tollgate::api::ProjectPhase::Ready)
                && s.history.iter().any(|h| h.outcome == "ForceUnlocked")
                && s.drift
                    .as_ref()
                    .and_then(|d| d.checked_at.as_ref())
                    .is_some_and(|t| t.0.as_second() >= approved_at)
                && s.conditions
                    .iter()
                    .any(|c| c.type_ == "Drifted" && c.reason == "NoDrift")
        })
    })
    .await;
    assert_eq!(lock_holder(&env, "demo").await, None);
}

/// Post-apply health checks (issue 15) against a web site on loopback, the URL read from a
/// Terraform output: passing sets `Healthy=True`; failing (503 after its retries) opens a
/// FailureEscalation whose `Retry` runs the checks again (nothing applied again) and whose
/// `Rollback` plans the revision before the unhealthy one through the gate.
#[tokio::test]
async fn health_checks_pass_or_escalate_to_retry_and_rollback() {
    let site = tollgate_e2e::site::Site::start(&[("/ok", 200), ("/down", 503)]).await;
    let env = Env::new("health", |_, _| Vec::new()).await;
    env.applied_without_review("demo", &site.url("/ok")).await;

    env.serve(&site.url("/ok?v=2")).await;
    let healthy = env.condition("demo", "Healthy", "True").await;
    assert_eq!(healthy.reason, "HealthChecksPassed");
    assert_eq!(env.ready_greeting("demo").await, site.url("/ok?v=2"));
    let health = env.status("demo").await.health.unwrap();
    assert!(health.results[0].passed, "{health:?}");
    assert!(site.hits("/ok") >= 1);

    // Unhealthy after the apply: escalated, nothing applied again on Retry.
    env.serve(&site.url("/down")).await;
    let escalation = env.pending("demo", None).await;
    assert_eq!(
        escalation.spec.checkpoint_type,
        tollgate::api::CheckpointType::FailureEscalation
    );
    let reasons = escalation.spec.reasons.join("\n");
    for expected in [
        "answered 503, expected 200 (after 2 attempts)",
        "Retry: run the health checks again",
        "Rollback: plan revision 2",
    ] {
        assert!(reasons.contains(expected), "{expected} not in {reasons}");
    }
    assert_eq!(site.hits("/down"), 2, "one attempt and one retry");
    let unhealthy = env.condition("demo", "Healthy", "False").await;
    assert_eq!(unhealthy.reason, "HealthCheckFailed");
    let applies = env.status("demo").await.revisions.len();
    let commands = "tollgate_terraform_commands_started";
    let terraform_before = env.controller.metric(commands).await;
    site.answer("/down", 200);
    env.decide(User::Alice, &escalation.name_any(), "Retry")
        .await;
    env.condition("demo", "Healthy", "True").await;
    assert_eq!(env.ready_greeting("demo").await, site.url("/down"));
    assert_eq!(site.hits("/down"), 3);
    // The checks read the outputs recorded with the revision: no `terraform output`.
    assert_eq!(
        env.controller.metric(commands).await,
        terraform_before,
        "Retry ran Terraform"
    );
    assert_eq!(
        env.status("demo").await.revisions.len(),
        applies,
        "Retry applied nothing"
    );

    // Unhealthy again: Rollback plans the revision before, behind a person.
    site.answer("/broken", 500);
    env.serve(&site.url("/broken")).await;
    let second = env.pending("demo", Some(&escalation.name_any())).await;
    assert!(
        second
            .spec
            .reasons
            .iter()
            .any(|r| r.contains("Rollback: plan revision 3")),
        "{:?}",
        second.spec.reasons
    );
    env.decide(User::Alice, &second.name_any(), "Rollback")
        .await;
    let rollback = env.pending("demo", Some(&second.name_any())).await;
    assert_eq!(
        rollback.spec.checkpoint_type,
        tollgate::api::CheckpointType::PlanApproval
    );
    env.decide(User::Bob, &rollback.name_any(), "Approved")
        .await;
    env.condition("demo", "Healthy", "True").await;
    assert_eq!(env.ready_greeting("demo").await, site.url("/down"));
}

/// A module that asks for a manual operation (issue 15): the e2e catalog's `dnszone`
/// declares `tollgate_manual_operation` (delegate the domain at its registrar, with the
/// name servers). After its apply the Project waits on a ManualOperation checkpoint showing
/// those instructions until a person marks it done; the same step is not asked again, a
/// changed one is, and a rejection stops the Project. A new plan after a rejection changes
/// nothing, so it asks again instead of going Ready with the step undone.
#[tokio::test]
async fn a_module_asks_for_a_manual_operation_and_the_project_waits_until_it_is_done() {
    let catalog = tollgate_e2e::repo_root().join("tests/e2e/testdata/catalog");
    let env = Env::new("manual", |_, _| {
        vec!["--catalog".into(), catalog.to_string_lossy().into_owned()]
    })
    .await;
    env.pre_approve_everything().await;
    let zone = |nameservers: serde_json::Value| {
        json!({"environment": "dev", "components": [{"name": "zone", "module": "dnszone",
            "inputs": {"domain": "shop.example.com", "nameservers": nameservers}}]})
    };
    let project: Project = serde_json::from_value(json!({
        "apiVersion": "tollgate.dev/v1alpha1", "kind": "Project",
        "metadata": {"name": "dns", "namespace": env.ns},
        "spec": zone(json!(["ns-1.example.net", "ns-2.example.net"])),
    }))
    .unwrap();
    env.projects
        .create(&PostParams::default(), &project)
        .await
        .unwrap();

    let asked = env.pending("dns", None).await;
    assert_eq!(
        asked.spec.checkpoint_type,
        tollgate::api::CheckpointType::ManualOperation
    );
    let text = &asked.spec.summary.text;
    for expected in [
        "Delegate shop.example.com at its registrar",
        "ns-1.example.net, ns-2.example.net",
    ] {
        assert!(text.contains(expected), "{expected} not in {text}");
    }
    let status = env.status("dns").await;
    assert!(status.last_applied.is_some(), "asked after the apply");
    let waiting = env.condition("dns", "AwaitingApproval", "True").await;
    assert_eq!(waiting.reason, "ManualOperationRequested");
    let refused = env
        .try_decide(User::Carol, &asked.name_any(), "Approved")
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, kube::Error::Api(s) if s.code == 403),
        "{refused:?}"
    );
    env.decide(User::Alice, &asked.name_any(), "Approved").await;
    let ready = env
        .wait_project("dns", "Ready after the step is done", |p| {
            p.status
                .as_ref()
                .is_some_and(|s| s.phase == Some(tollgate::api::ProjectPhase::Ready))
        })
        .await;
    let done = ready.status.unwrap().manual_operations;
    assert_eq!(done.len(), 1, "{done:?}");
    assert_eq!(done[0].done_by, env.plane.username(User::Alice));
    assert_eq!(done[0].component, "zone");

    // New name servers: the step's instructions change, so it is asked again; rejected,
    // the Project stops and says so.
    env.projects
        .patch(
            "dns",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": zone(json!(["ns-9.example.org"]))})),
        )
        .await
        .unwrap();
    let again = env.pending("dns", Some(&asked.name_any())).await;
    assert!(
        again.spec.summary.text.contains("ns-9.example.org"),
        "{}",
        again.spec.summary.text
    );
    env.decide(User::Bob, &again.name_any(), "Rejected").await;
    let stalled = env.condition("dns", "Stalled", "True").await;
    assert_eq!(stalled.reason, "ManualOperationRejected");
    assert_eq!(env.status("dns").await.manual_operations.len(), 1);

    // A new plan (no changes): the undone step is asked again, never Ready without it.
    env.projects
        .patch(
            "dns",
            &PatchParams::default(),
            &Patch::Merge(
                &json!({"metadata": {"annotations": {"tollgate.dev/replan": "after-rejection"}}}),
            ),
        )
        .await
        .unwrap();
    let third = env.pending("dns", Some(&again.name_any())).await;
    assert_eq!(
        third.spec.checkpoint_type,
        tollgate::api::CheckpointType::ManualOperation
    );
    assert!(third.spec.summary.text.contains("ns-9.example.org"));
    let status = env.status("dns").await;
    assert_eq!(
        status.phase,
        Some(tollgate::api::ProjectPhase::AwaitingApproval)
    );
    env.decide(User::Alice, &third.name_any(), "Approved").await;
    let ready = env
        .wait_project("dns", "Ready once the step is done", |p| {
            p.status
                .as_ref()
                .is_some_and(|s| s.phase == Some(tollgate::api::ProjectPhase::Ready))
        })
        .await;
    assert_eq!(ready.status.unwrap().manual_operations.len(), 2);
}

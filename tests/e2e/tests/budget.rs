//! The namespace budget on a real cluster with real Terraform: Projects of EC2 instances
//! (the test catalog's `priced` module, planned and applied against moto, priced by the
//! embedded price book) share a TO-owned NamespaceBudget. An over-budget Project waits for a
//! BudgetIncrease approval that admits that plan only; Projects planned at the same time
//! cannot both slip under the cap; crossing the warning threshold notifies a local HTTP
//! receiver once; platform users cannot write the budget.
//!
//! Needs `TOLLGATE_MOTO_SERVER` (tests/tools/install-moto.sh) and the hashicorp/aws provider:
//! the CLI config `TOLLGATE_AWS_PROVIDER_CONFIG` (tests/tools/install-aws-provider.sh), or
//! else a filesystem mirror holding it (`TOLLGATE_AWS_PROVIDER_MIRROR`, default
//! `/opt/tf-plugins`). Ignored by default; tests/aws/run.sh runs it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tollgate::api::{Checkpoint, CheckpointType, NamespaceBudget, Project, ProjectPhase};
use tollgate_e2e::controller::ControllerProcess;
use tollgate_e2e::moto::{Moto, aws_provider_config};
use tollgate_e2e::receiver::route_events;
use tollgate_e2e::webhook::start_webhook;
use tollgate_e2e::{ControlPlane, User, repo_root, wait_for};

/// Plans here init the AWS provider (a large binary) for each Project.
const DEADLINE: Duration = Duration::from_secs(300);
const SIGNING_KEY: &str = "budget-hook-key-51c0";
/// One t3.micro with its 8 GB gp2 root volume in us-east-1, per month.
const ONE_INSTANCE: &str = "8.39";

/// Receives the namespace's notifications: the `X-Tollgate-Event` of each signed request.
struct Receiver {
    addr: SocketAddr,
    events: Arc<Mutex<Vec<(String, Value)>>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let events = Arc::new(Mutex::new(Vec::new()));
        let seen = events.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let seen = seen.clone();
                        async move {
                            let header = |name: &str| {
                                req.headers()
                                    .get(name)
                                    .and_then(|v| v.to_str().ok())
                                    .unwrap_or_default()
                                    .to_owned()
                            };
                            let (event, timestamp, signature) = (
                                header("x-tollgate-event"),
                                header("x-tollgate-timestamp"),
                                header("x-tollgate-signature"),
                            );
                            let body = req.into_body().collect().await?.to_bytes();
                            assert!(tollgate::notify::verify_signature(
                                SIGNING_KEY.as_bytes(),
                                &timestamp,
                                &body,
                                &signature
                            ));
                            let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
                            seen.lock().unwrap().push((event, body));
                            Ok::<_, hyper::Error>(Response::new(Full::new(Bytes::from("ok"))))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Receiver { addr, events }
    }

    fn of(&self, event: &str) -> Vec<Value> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|(e, _)| e == event)
            .map(|(_, b)| b.clone())
            .collect()
    }
}

/// One test's world: moto, a namespace whose decisions go through tollgate's admission,
/// its NamespaceBudget (written by the cluster admin, as a TO would), notification routes
/// to [`Receiver`], and a controller with the test catalog.
struct Scene {
    plane: &'static ControlPlane,
    ns: String,
    _moto: Moto,
    _dir: tempfile::TempDir,
    controller: ControllerProcess,
    projects: Api<Project>,
    checkpoints: Api<Checkpoint>,
    budgets: Api<NamespaceBudget>,
    receiver: Receiver,
}

impl Scene {
    async fn start(prefix: &str, limit: &str, warn_at: u8) -> Scene {
        let plane = ControlPlane::get().await;
        let ns = start_webhook().await.namespace(plane, prefix).await;
        let moto = Moto::start(None).await;
        let dir = tempfile::tempdir().unwrap();
        let (config, cache) = aws_provider_config(dir.path());
        let admin = plane.client(User::Admin).await;
        let receiver = Receiver::start().await;
        route_events(
            admin.clone(),
            &ns,
            &format!("http://{}/budget", receiver.addr),
            SIGNING_KEY,
            &["BudgetWarning"],
        )
        .await;
        let budgets: Api<NamespaceBudget> = Api::namespaced(admin.clone(), &ns);
        budgets
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({
                    "apiVersion": "tollgate.dev/v1alpha1", "kind": "NamespaceBudget",
                    "metadata": {"name": "budget", "namespace": ns},
                    "spec": {"monthlyLimit": limit, "warnAtPercent": warn_at}
                }))
                .unwrap(),
            )
            .await
            .unwrap();
        let mut env = moto.controller_env("testing", "testing");
        env.extend([
            ("AWS_REGION".to_owned(), "us-east-1".to_owned()),
            (
                "TF_CLI_CONFIG_FILE".to_owned(),
                config.to_string_lossy().into_owned(),
            ),
            (
                "TF_PLUGIN_CACHE_DIR".to_owned(),
                cache.to_string_lossy().into_owned(),
            ),
        ]);
        let args = vec![
            "--catalog".to_owned(),
            repo_root()
                .join("tests/e2e/testdata/catalog")
                .to_string_lossy()
                .into_owned(),
        ];
        let controller = ControllerProcess::start_with_env(plane, &ns, dir.path(), args, env).await;
        Scene {
            plane,
            projects: Api::namespaced(admin.clone(), &ns),
            checkpoints: Api::namespaced(admin, &ns),
            budgets,
            ns,
            _moto: moto,
            _dir: dir,
            controller,
            receiver,
        }
    }

    fn project(&self, name: &str, instances: u32) -> Project {
        serde_json::from_value(json!({
            "apiVersion": "tollgate.dev/v1alpha1", "kind": "Project",
            "metadata": {"name": name, "namespace": self.ns},
            "spec": {"environment": "dev", "cloud": {"aws": {"region": "us-east-1", "accountId": "123456789012"}}, "components": [{"name": "vm", "module": "priced", "inputs": {"instances": instances}}]}
        }))
        .unwrap()
    }

    async fn create_as_carol(&self, name: &str, instances: u32) {
        Api::<Project>::namespaced(self.plane.client(User::Carol).await, &self.ns)
            .create(&PostParams::default(), &self.project(name, instances))
            .await
            .unwrap();
    }

    /// Waits for `name` to await a decision on a checkpoint other than `not`; returns it.
    async fn pending(&self, name: &str, not: Option<&str>) -> Checkpoint {
        let deadline = std::time::Instant::now() + DEADLINE;
        loop {
            let status = self
                .projects
                .get(name)
                .await
                .unwrap()
                .status
                .unwrap_or_default();
            if status.phase == Some(ProjectPhase::AwaitingApproval)
                && let Some(r) = status.checkpoint_ref.clone()
                && Some(r.name.as_str()) != not
            {
                return self.checkpoints.get(&r.name).await.unwrap();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no checkpoint of {name}: {status:?}\n{}",
                self.controller.log()
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    async fn budget(&self) -> NamespaceBudget {
        self.budgets.get("budget").await.unwrap()
    }

    async fn approve(&self, checkpoint: &str) {
        Api::<Checkpoint>::namespaced(self.plane.client(User::Alice).await, &self.ns)
            .patch_status(
                checkpoint,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"decision": "Approved", "reason": "e2e"}})),
            )
            .await
            .unwrap();
    }

    fn kubectl(&self, user: User, args: &[&str]) -> (bool, String) {
        let out = std::process::Command::new(self.plane.var("TOLLGATE_E2E_KUBECTL"))
            .arg("--kubeconfig")
            .arg(self.plane.kubeconfig(user))
            .args(["-n", &self.ns])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }
}

fn reserved(budget: &NamespaceBudget) -> Vec<(String, String, Option<String>)> {
    budget
        .status
        .clone()
        .unwrap_or_default()
        .reservations
        .into_iter()
        .map(|r| (r.project, r.monthly, r.approved_by_checkpoint))
        .collect()
}

#[tokio::test]
#[ignore = "needs the AWS provider (tests/tools/install-aws-provider.sh); run by tests/aws/run.sh"]
async fn an_over_budget_namespace_blocks_the_next_project_until_a_budget_increase_is_approved() {
    let scene = Scene::start("nsbudget", "12", 50).await;

    // The team cannot loosen its own cap: reading it yes, writing it (or its ledger) no.
    for (verb, subresource, expect) in [
        ("get", "", "yes"),
        ("patch", "", "no"),
        ("delete", "", "no"),
        ("patch", "--subresource=status", "no"),
    ] {
        let mut args = vec!["auth", "can-i", verb, "namespacebudgets.tollgate.dev"];
        args.extend((!subresource.is_empty()).then_some(subresource));
        let (_, out) = scene.kubectl(User::Carol, &args);
        assert_eq!(out.trim(), expect, "carol {verb} {subresource}");
    }
    let refused =
        Api::<NamespaceBudget>::namespaced(scene.plane.client(User::Carol).await, &scene.ns)
            .patch(
                "budget",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"monthlyLimit": "100000"}})),
            )
            .await
            .unwrap_err();
    assert!(
        matches!(&refused, kube::Error::Api(s) if s.code == 403),
        "{refused:?}"
    );

    // alpha ($8.39 of $12) is reserved while its first apply waits for a person, and
    // takes the namespace past the 50% warning.
    scene.create_as_carol("alpha", 1).await;
    let alpha = scene.pending("alpha", None).await;
    assert_eq!(alpha.spec.checkpoint_type, CheckpointType::PlanApproval);
    let budget = scene.budget().await;
    assert_eq!(
        reserved(&budget),
        vec![("alpha".into(), ONE_INSTANCE.into(), None)]
    );
    let status = budget.status.clone().unwrap();
    assert_eq!(status.used.as_deref(), Some(ONE_INSTANCE));
    assert_eq!(status.headroom.as_deref(), Some("3.61"));
    assert_eq!(status.used_percent, Some(69));
    let (ok, table) = scene.kubectl(User::Carol, &["get", "nsbudget"]);
    assert!(
        ok && table.contains("HEADROOM") && table.contains("3.61") && table.contains("69"),
        "{table}"
    );
    wait_for("the budget warning", DEADLINE, || async {
        !scene.receiver.of("BudgetWarning").is_empty()
    })
    .await;

    // beta would take it to $16.78: a BudgetIncrease, nothing reserved for it.
    scene.create_as_carol("beta", 1).await;
    let beta = scene.pending("beta", None).await;
    assert_eq!(beta.spec.checkpoint_type, CheckpointType::BudgetIncrease);
    assert!(
        beta.spec
            .reasons
            .iter()
            .any(|r| r.contains("namespace budget is $12") && r.contains("$16.78")),
        "{:?}",
        beta.spec.reasons
    );
    let project = scene.projects.get("beta").await.unwrap();
    let exceeded = project
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "BudgetExceeded")
        .unwrap();
    assert_eq!(
        (exceeded.status.as_str(), exceeded.reason.as_str()),
        ("True", "NamespaceBudget")
    );
    assert_eq!(reserved(&scene.budget().await).len(), 1);

    // Approving it admits that plan (recorded in the ledger, history and audit) and applies.
    let beta_name = beta.metadata.name.clone().unwrap();
    scene.approve(&beta_name).await;
    wait_for("beta applied", DEADLINE, || async {
        scene
            .projects
            .get("beta")
            .await
            .unwrap()
            .status
            .and_then(|s| s.phase)
            == Some(ProjectPhase::Ready)
    })
    .await;
    let budget = scene.budget().await;
    assert_eq!(
        reserved(&budget),
        vec![
            ("alpha".into(), ONE_INSTANCE.into(), None),
            ("beta".into(), ONE_INSTANCE.into(), Some(beta_name.clone()))
        ]
    );
    assert_eq!(budget.status.unwrap().headroom.as_deref(), Some("-4.78"));
    let history = scene
        .projects
        .get("beta")
        .await
        .unwrap()
        .status
        .unwrap()
        .history;
    assert!(
        history
            .iter()
            .any(|h| h.outcome == "NamespaceBudgetOverrunApproved"
                && h.decided_by.as_deref() == Some(&scene.plane.username(User::Alice)[..])),
        "{history:?}"
    );

    // The approval covered that plan only: growing beta asks again.
    scene
        .projects
        .patch(
            "beta",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"components": [{"name": "vm", "module": "priced", "inputs": {"instances": 2}}]}})),
        )
        .await
        .unwrap();
    let again = scene.pending("beta", Some(&beta_name)).await;
    assert_eq!(again.spec.checkpoint_type, CheckpointType::BudgetIncrease);

    // One warning, for the crossing, not for each reservation above it.
    assert_eq!(scene.receiver.of("BudgetWarning").len(), 1);
    let warning = &scene.receiver.of("BudgetWarning")[0];
    assert!(
        warning.to_string().contains("uses $8.39 of its $12"),
        "{warning}"
    );

    // A deleted Project releases its share.
    scene
        .projects
        .delete("alpha", &DeleteParams::default())
        .await
        .unwrap();
    wait_for("alpha's reservation released", DEADLINE, || async {
        // A Destroy checkpoint, if its deletion asks for one, is approved.
        if let Some(p) = scene.projects.get_opt("alpha").await.unwrap()
            && let Some(r) = p.status.and_then(|s| s.checkpoint_ref)
            && let Some(cp) = scene.checkpoints.get_opt(&r.name).await.unwrap()
            && cp.spec.checkpoint_type == CheckpointType::Destroy
            && cp.status.as_ref().and_then(|s| s.decision).is_none()
        {
            scene.approve(&r.name).await;
        }
        !reserved(&scene.budget().await)
            .iter()
            .any(|(p, _, _)| p == "alpha")
    })
    .await;
}

/// Two Projects reconciled at the same time, each fitting alone but not together: exactly
/// one gets the headroom, the other a BudgetIncrease checkpoint.
#[tokio::test]
#[ignore = "needs the AWS provider (tests/tools/install-aws-provider.sh); run by tests/aws/run.sh"]
async fn projects_planned_at_the_same_time_cannot_both_slip_under_the_cap() {
    let scene = Scene::start("nsrace", "10", 100).await;
    tokio::join!(
        scene.create_as_carol("one", 1),
        scene.create_as_carol("two", 1)
    );
    let (one, two) = tokio::join!(scene.pending("one", None), scene.pending("two", None));
    let mut types = [one.spec.checkpoint_type, two.spec.checkpoint_type];
    types.sort_by_key(|t| format!("{t:?}"));
    assert_eq!(
        types,
        [CheckpointType::BudgetIncrease, CheckpointType::PlanApproval]
    );
    let budget = scene.budget().await;
    let ledger = reserved(&budget);
    assert_eq!(ledger.len(), 1, "{ledger:?}");
    let winner = if one.spec.checkpoint_type == CheckpointType::PlanApproval {
        "one"
    } else {
        "two"
    };
    assert_eq!(ledger[0].0, winner);
    assert_eq!(budget.status.unwrap().used.as_deref(), Some(ONE_INSTANCE));
}

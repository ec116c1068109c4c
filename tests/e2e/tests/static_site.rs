//! The product's first real deployment on the real control plane: the static-site example
//! (`examples/static-site/project.yaml`, the shipped `static-site` module) planned, priced,
//! approved by a TO, applied by the real hashicorp/aws provider into moto on loopback, its
//! outputs in the outputs Secret; a change that raises the cost opens a checkpoint with that
//! delta; deleting the Project destroys through a Destroy checkpoint and the bucket is gone
//! from moto.
//!
//! Needs the provider built (`bash tests/tools/install-aws-provider.sh`, whose output is
//! `TOLLGATE_AWS_PROVIDER_CONFIG`) and moto (`TOLLGATE_MOTO_SERVER`): ignored by a plain
//! `cargo test`, run by `tests/aws/run.sh` (and `tests/run.sh` when the provider is cached).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use tollgate::api::{Checkpoint, CheckpointType, Project, ProjectPhase};
use tollgate_e2e::controller::ControllerProcess;
use tollgate_e2e::moto::Moto;
use tollgate_e2e::webhook::start_webhook;
use tollgate_e2e::{ControlPlane, User, repo_root, wait_for};

/// Terraform with the real provider against moto is slower than the demo module.
const TIMEOUT: Duration = Duration::from_secs(300);
const ROLE: &str = "arn:aws:iam::123456789012:role/tollgate";

async fn phase(projects: &Api<Project>, name: &str) -> Option<ProjectPhase> {
    projects.get(name).await.ok()?.status?.phase
}

async fn wait_phase(projects: &Api<Project>, want: ProjectPhase, controller: &ControllerProcess) {
    let mut last = None;
    let reached = tokio::time::timeout(TIMEOUT, async {
        loop {
            last = phase(projects, "website").await;
            if last == Some(want) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
    .await;
    assert!(
        reached.is_ok(),
        "website never {want:?} (last {last:?}):\n{}",
        controller.log()
    );
}

/// The pending checkpoint of `type_` the Project points at.
async fn pending(
    projects: &Api<Project>,
    checkpoints: &Api<Checkpoint>,
    type_: CheckpointType,
    not: Option<&str>,
    controller: &ControllerProcess,
) -> Checkpoint {
    let find = || async {
        let reference = projects.get("website").await.ok()?.status?.checkpoint_ref?;
        let checkpoint = checkpoints.get(&reference.name).await.ok()?;
        (checkpoint.spec.checkpoint_type == type_ && checkpoint.metadata.name.as_deref() != not)
            .then_some(checkpoint)
    };
    let found = tokio::time::timeout(TIMEOUT, async {
        loop {
            if let Some(checkpoint) = find().await {
                return checkpoint;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
    .await;
    match found {
        Ok(checkpoint) => checkpoint,
        Err(_) => panic!(
            "no {type_:?} checkpoint within {TIMEOUT:?}; the Project: {:?}\n{}",
            projects.get("website").await.ok().and_then(|p| p.status),
            controller.log()
        ),
    }
}

async fn approve(plane: &ControlPlane, namespace: &str, checkpoint: &Checkpoint) {
    let api: Api<Checkpoint> = Api::namespaced(plane.client(User::Alice).await, namespace);
    api.patch_status(
        checkpoint.metadata.name.as_deref().unwrap(),
        &PatchParams::default(),
        &Patch::Merge(
            serde_json::json!({"status": {"decision": "Approved", "reason": "e2e: reviewed"}}),
        ),
    )
    .await
    .unwrap();
}

/// The shipped example, in the test's namespace.
fn example(namespace: &str) -> Project {
    let mut project =
        tollgate::manifest::read_project(&repo_root().join("examples/static-site/project.yaml"))
            .unwrap();
    project.metadata.namespace = Some(namespace.to_owned());
    project
}

/// The buckets in moto, one per line.
fn buckets(moto: &Moto) -> String {
    moto.boto(
        "testing",
        "testing",
        "print('\\n'.join(b['Name'] for b in s3.list_buckets()['Buckets']))",
    )
}

#[tokio::test]
#[ignore = "needs the AWS provider (tests/tools/install-aws-provider.sh); run by tests/aws/run.sh"]
async fn the_static_site_example_goes_through_the_whole_loop_into_moto() {
    let config = std::env::var("TOLLGATE_AWS_PROVIDER_CONFIG").expect(
        "TOLLGATE_AWS_PROVIDER_CONFIG: run `bash tests/tools/install-aws-provider.sh` and export its output",
    );
    let plane = ControlPlane::get().await;
    let moto = Moto::start(None).await;
    let namespace = start_webhook().await.namespace(plane, "site").await;
    let dir = tempfile::tempdir().unwrap();
    // The Project assumes its role, as the example says: the allow-list admits it.
    let accounts = dir.path().join("accounts.yaml");
    std::fs::write(
        &accounts,
        format!("rules:\n  - name: web\n    namespaces: [{namespace}]\n    accountIds: [\"123456789012\"]\n    roleArns: [\"{ROLE}\"]\n"),
    )
    .unwrap();
    let mut env = moto.controller_env("AKIDCONTROLLERSITE01", "controller-secret");
    env.push(("TF_CLI_CONFIG_FILE".to_owned(), config));
    let controller = ControllerProcess::start_with_env(
        plane,
        &namespace,
        dir.path(),
        vec![
            "--credentials-config".to_owned(),
            accounts.to_string_lossy().into_owned(),
        ],
        env,
    )
    .await;
    let carol = plane.client(User::Carol).await;
    let admin = plane.client(User::Admin).await;
    let projects: Api<Project> = Api::namespaced(carol, &namespace);
    let checkpoints: Api<Checkpoint> = Api::namespaced(admin.clone(), &namespace);

    // Planned and priced; production waits for a TO. Nothing exists in moto yet.
    projects
        .create(&PostParams::default(), &example(&namespace))
        .await
        .unwrap();
    let first = pending(
        &projects,
        &checkpoints,
        CheckpointType::PlanApproval,
        None,
        &controller,
    )
    .await;
    let summary = &first.spec.summary;
    assert!(summary.add >= 9, "{summary:?}");
    assert_eq!((summary.change, summary.destroy), (0, 0), "{summary:?}");
    // S3 and CloudFront bill only by use: with no usage file the plan prices at $0.
    let cost = summary
        .cost
        .clone()
        .expect("the checkpoint carries the cost");
    assert_eq!(
        (cost.before.as_str(), cost.delta.as_str()),
        ("0", "0"),
        "{cost:?}"
    );
    assert_eq!(buckets(&moto), "", "nothing is created before approval");

    approve(plane, &namespace, &first).await;
    wait_phase(&projects, ProjectPhase::Ready, &controller).await;
    let status = projects.get("website").await.unwrap().status.unwrap();
    let outputs = Api::<Secret>::namespaced(admin, &namespace)
        .get(&status.outputs_secret_ref.unwrap().name)
        .await
        .unwrap()
        .data
        .unwrap();
    let bucket = String::from_utf8(outputs["site_bucket_name"].0.clone()).unwrap();
    assert!(bucket.starts_with("team-a-website-site-"), "{bucket}");
    assert_eq!(buckets(&moto), bucket, "the applied bucket is in moto");
    let url = String::from_utf8(outputs["site_url"].0.clone()).unwrap();
    assert!(
        url.starts_with("https://") && url.ends_with(".cloudfront.net/"),
        "{url}"
    );

    // A change that raises the cost: a network with a NAT gateway beside the site.
    let mut grown = example(&namespace);
    grown.spec.components.push(
        serde_json::from_value(serde_json::json!({
            "name": "network", "module": "network",
            "inputs": {"name": "website", "cidr_block": "10.40.0.0/16", "az_count": 2, "nat_gateway_mode": "single"}
        }))
        .unwrap(),
    );
    projects
        .patch(
            "website",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"components": grown.spec.components}})),
        )
        .await
        .unwrap();
    // $38.69 a month is over the example's $25 budget: the checkpoint is a budget increase.
    let second = pending(
        &projects,
        &checkpoints,
        CheckpointType::BudgetIncrease,
        first.metadata.name.as_deref(),
        &controller,
    )
    .await;
    let cost = second
        .spec
        .summary
        .cost
        .clone()
        .expect("the checkpoint carries the cost");
    // One NAT gateway in eu-west-1 (0.048/h) and its Elastic IP (0.005/h), 730 h each.
    assert_eq!(
        (
            cost.before.as_str(),
            cost.after.as_str(),
            cost.delta.as_str()
        ),
        ("0", "38.69", "38.69"),
        "{cost:?}"
    );

    // Deleting the Project while that change waits: a Destroy checkpoint, then nothing left.
    projects
        .delete("website", &DeleteParams::default())
        .await
        .unwrap();
    let destroy = pending(
        &projects,
        &checkpoints,
        CheckpointType::Destroy,
        None,
        &controller,
    )
    .await;
    assert_eq!(buckets(&moto), bucket, "nothing destroyed before approval");
    approve(plane, &namespace, &destroy).await;
    wait_for("the Project is gone", TIMEOUT, || async {
        projects.get_opt("website").await.unwrap().is_none()
    })
    .await;
    assert_eq!(
        buckets(&moto),
        "",
        "the destroy removed the bucket from moto"
    );
}

//! Per-Project cloud credentials on the real control plane, with moto (PyPI `moto[server]`,
//! `tests/tools/install-moto.sh`, env `TOLLGATE_MOTO_SERVER`) as AWS on loopback: STS
//! AssumeRole with an external id, static keys from a Secret, the account allow-list, and
//! Credential checkpoints that close by themselves.
//!
//! What moto does and does not check: it issues credentials for any role ARN, any account
//! and any external id (it evaluates no trust policy). With `INITIAL_NO_AUTH_ACTION_COUNT`
//! it does evaluate the *caller's* IAM policies, so the denied-role test denies through the
//! controller's own identity lacking `sts:AssumeRole` on the role, which STS reports as
//! `AccessDenied` just as a trust policy refusal. A wrong external id is not tested here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Event, Secret};
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use tollgate::api::{Checkpoint, CheckpointPhase, CheckpointType, Project, ProjectPhase};
use tollgate_e2e::controller::ControllerProcess;
use tollgate_e2e::kubelet::{Kubelet, Node, job_runner_args, state_namespace_with_runner};
use tollgate_e2e::moto::Moto;
use tollgate_e2e::webhook::start_webhook;
use tollgate_e2e::{ControlPlane, User, awaited_checkpoint_of, repo_root, wait_for};

const ACCOUNT: &str = "123456789012";
const TIMEOUT: Duration = Duration::from_secs(120);
const AUDIT_FILE: &str = "audit.jsonl";

fn catalog() -> String {
    repo_root()
        .join("tests/e2e/testdata/catalog")
        .to_string_lossy()
        .into_owned()
}

/// The allow-list file: `namespace` may use [`ACCOUNT`] with `tollgate-*` roles and static
/// keys; `team-b-<namespace>` owns account 222222222222.
fn allow_list(dir: &Path, namespace: &str) -> String {
    let path = dir.join("accounts.yaml");
    std::fs::write(
        &path,
        format!(
            "rules:\n  - name: team-a\n    namespaces: [{namespace}]\n    accountIds: [\"{ACCOUNT}\"]\n    roleArns: [\"arn:aws:iam::{ACCOUNT}:role/tollgate-*\"]\n    staticCredentials: true\n  - name: team-b\n    namespaces: [team-b-{namespace}]\n    accountIds: [\"222222222222\"]\n    roleArns: [\"arn:aws:iam::222222222222:role/*\"]\n"
        ),
    )
    .unwrap();
    path.to_string_lossy().into_owned()
}

fn project(
    namespace: &str,
    name: &str,
    account: &str,
    credentials: serde_json::Value,
    out: &Path,
) -> Project {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "tollgate.dev/v1alpha1", "kind": "Project",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "environment": "dev",
            "cloud": {"aws": {"region": "us-east-1", "accountId": account, "credentials": credentials}},
            "components": [{"name": "seen", "module": "awsenv", "inputs": {"out": out.to_string_lossy()}}]
        }
    }))
    .unwrap()
}

/// One test's world: a fresh namespace (its decisions through tollgate's admission webhook
/// with `webhook`; with `auto_approve`, an ApprovalPolicy pre-approving those changes), a
/// directory, and a controller for it with the test catalog, the allow-list of
/// [`allow_list`], the audit file [`AUDIT_FILE`] in that directory, `env` (its AWS identity
/// and endpoint) and `extra` arguments.
struct Scene {
    namespace: String,
    dir: tempfile::TempDir,
    controller: ControllerProcess,
    projects: Api<Project>,
    checkpoints: Api<Checkpoint>,
    secrets: Api<Secret>,
}

impl Scene {
    async fn start(
        plane: &'static ControlPlane,
        prefix: &str,
        webhook: bool,
        auto_approve: Option<serde_json::Value>,
        env: Vec<(String, String)>,
        extra: Vec<String>,
    ) -> Scene {
        let namespace = if webhook {
            start_webhook().await.namespace(plane, prefix).await
        } else {
            plane.namespace(prefix).await
        };
        if let Some(auto_approve) = auto_approve {
            plane
                .allow_in(&namespace, serde_json::json!({"autoApprove": auto_approve}))
                .await;
        }
        let dir = tempfile::tempdir().unwrap();
        let mut args = vec![
            "--catalog".to_owned(),
            catalog(),
            "--credentials-config".to_owned(),
            allow_list(dir.path(), &namespace),
            "--audit-file".to_owned(),
            dir.path().join(AUDIT_FILE).to_string_lossy().into_owned(),
        ];
        args.extend(extra);
        let controller =
            ControllerProcess::start_with_env(plane, &namespace, dir.path(), args, env).await;
        let admin = plane.client(User::Admin).await;
        Scene {
            projects: Api::namespaced(admin.clone(), &namespace),
            checkpoints: Api::namespaced(admin.clone(), &namespace),
            secrets: Api::namespaced(admin, &namespace),
            namespace,
            dir,
            controller,
        }
    }
}

async fn wait_phase(projects: &Api<Project>, name: &str, want: ProjectPhase) {
    wait_for(&format!("{name} {want:?}"), TIMEOUT, || async {
        phase(projects, name).await == Some(want)
    })
    .await;
}

/// Waits for the namespace's Credential checkpoint and returns it.
async fn credential_checkpoint(checkpoints: &Api<Checkpoint>) -> Checkpoint {
    awaited_checkpoint_of(checkpoints, CheckpointType::Credential, TIMEOUT).await
}

async fn phase(api: &Api<Project>, name: &str) -> Option<ProjectPhase> {
    api.get(name).await.ok()?.status?.phase
}

/// `AWS_*` variables the apply saw, as `NAME=value` lines.
fn seen(file: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn value<'a>(seen: &'a [(String, String)], key: &str) -> Option<&'a str> {
    seen.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Assumed-role credentials as the apply fetched them from the controller's endpoint
/// (`FETCH_<n>`: key id, secret key, session token).
fn fetched(seen: &[(String, String)], n: u8) -> (String, String, String) {
    let text = value(seen, &format!("FETCH_{n}")).unwrap_or_default();
    let doc: serde_json::Value = serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("FETCH_{n} is not the endpoint's JSON ({e}): {text}"));
    let field = |name: &str| doc[name].as_str().unwrap_or_default().to_owned();
    (
        field("AccessKeyId"),
        field("SecretAccessKey"),
        field("Token"),
    )
}

/// The HTTP status the credentials endpoint gives `token` now.
fn endpoint_status(uri: &str, token: &str) -> u16 {
    use std::io::{Read, Write};
    let rest = uri.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let mut tcp = std::net::TcpStream::connect(host).unwrap();
    write!(
        tcp,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {token}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    tcp.read_to_string(&mut response).unwrap();
    response.get(9..12).unwrap().parse().unwrap()
}

/// Every place a secret must never reach: the controller's log, the namespace's Projects,
/// Checkpoints and Events, the audit file and every file of the working directories.
async fn find_anywhere(
    plane: &ControlPlane,
    namespace: &str,
    controller: &ControllerProcess,
    work_dir: &Path,
    secrets: &[&str],
) -> Vec<String> {
    let admin = plane.client(User::Admin).await;
    let mut places: Vec<(String, String)> = vec![("controller log".into(), controller.log())];
    let projects = Api::<Project>::namespaced(admin.clone(), namespace)
        .list(&ListParams::default())
        .await
        .unwrap();
    places.push((
        "projects".into(),
        serde_json::to_string(&projects.items).unwrap(),
    ));
    let checkpoints = Api::<Checkpoint>::namespaced(admin.clone(), namespace)
        .list(&ListParams::default())
        .await
        .unwrap();
    places.push((
        "checkpoints".into(),
        serde_json::to_string(&checkpoints.items).unwrap(),
    ));
    // The plan reviews a TO reads (`<checkpoint>-review`).
    let config_maps = Api::<ConfigMap>::namespaced(admin.clone(), namespace)
        .list(&ListParams::default())
        .await
        .unwrap();
    places.push((
        "config maps".into(),
        serde_json::to_string(&config_maps.items).unwrap(),
    ));
    let events = Api::<Event>::namespaced(admin, namespace)
        .list(&ListParams::default())
        .await
        .unwrap();
    places.push((
        "events".into(),
        serde_json::to_string(&events.items).unwrap(),
    ));
    let mut files = Vec::new();
    collect_files(work_dir, &mut files);
    for file in files {
        // Terraform's provider plugins are not ours to search (and are large). The saved
        // plan holds the root variables' values by design (the approved digest covers
        // them): it is protected as a Secret is, not redacted.
        let name = file
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if file.components().any(|c| c.as_os_str() == ".terraform")
            || name.starts_with("tfplan")
            || name.starts_with(".tollgate-apply-")
        {
            continue;
        }
        let bytes = std::fs::read(&file).unwrap_or_default();
        places.push((
            file.display().to_string(),
            String::from_utf8_lossy(&bytes).into_owned(),
        ));
    }
    let mut hits = Vec::new();
    for (place, text) in &places {
        for secret in secrets {
            if text.contains(secret) {
                hits.push(format!("{secret} in {place}"));
            }
        }
    }
    hits
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// A Terraform error that echoes the run's credentials (the test module's `leak`): the
/// apply of `leaky` fails and escalates, and what tollgate keeps of the error says
/// [REDACTED] where they were.
async fn leak(projects: &Api<Project>, checkpoints: &Api<Checkpoint>, mut leaky: Project) {
    let name = leaky.metadata.name.clone().unwrap();
    leaky.spec.components[0]
        .inputs
        .insert("leak".into(), serde_json::json!(true));
    projects
        .create(&PostParams::default(), &leaky)
        .await
        .unwrap();
    // The failed apply escalates to a person, with the error as tollgate keeps it.
    wait_for(
        "the leaky apply escalates",
        Duration::from_secs(180),
        || async {
            projects.get(&name).await.unwrap().status.is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.reason == "FailureEscalation")
            })
        },
    )
    .await;
    let failed = projects.get(&name).await.unwrap().status.unwrap();
    let ready = failed
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    let redacted = |text: &str| text.contains("leaking") && text.contains("[REDACTED]");
    assert!(redacted(&ready.message), "{}", ready.message);
    let escalation = checkpoints
        .get(&failed.checkpoint_ref.unwrap().name)
        .await
        .unwrap();
    assert_eq!(
        escalation.spec.checkpoint_type,
        CheckpointType::FailureEscalation
    );
    assert!(
        redacted(&escalation.spec.summary.text),
        "{}",
        escalation.spec.summary.text
    );
}

#[tokio::test]
async fn assumed_role_credentials_reach_terraform_only_and_the_allow_list_keeps_teams_apart() {
    let plane = ControlPlane::get().await;
    let moto = Moto::start(None).await;
    let Scene {
        namespace,
        dir,
        controller,
        projects,
        checkpoints,
        secrets: _,
    } = Scene::start(
        plane,
        "creds-sts",
        false,
        Some(serde_json::json!(["FirstApply", "Create"])),
        moto.controller_env("AKIDCONTROLLER0001", "controller-secret"),
        // Longer than the session lasts: every request for credentials mints new ones, as
        // happens when a long apply outlives its session.
        vec!["--credentials-refresh-margin".into(), "7200".into()],
    )
    .await;
    let audit = dir.path().join(AUDIT_FILE);

    // Another team's account: refused before any Terraform runs, naming the rule.
    let foreign_out = dir.path().join("foreign.env");
    let foreign = project(
        &namespace,
        "foreign",
        "222222222222",
        serde_json::json!({"assumeRole": {"roleArn": "arn:aws:iam::222222222222:role/deploy"}}),
        &foreign_out,
    );
    projects
        .create(&PostParams::default(), &foreign)
        .await
        .unwrap();
    wait_phase(&projects, "foreign", ProjectPhase::Failed).await;
    let status = projects.get("foreign").await.unwrap().status.unwrap();
    let stalled = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Stalled")
        .unwrap();
    assert_eq!(stalled.status, "True");
    assert_eq!(stalled.reason, "AccountNotAllowed");
    assert!(
        stalled
            .message
            .contains("rule(s) team-a allow only [123456789012]"),
        "{}",
        stalled.message
    );
    assert!(status.plan.is_none() && !foreign_out.exists());

    // Its own account, through a role with an external id.
    let out = dir.path().join("shop.env");
    let shop = project(
        &namespace,
        "shop",
        ACCOUNT,
        serde_json::json!({"assumeRole": {"roleArn": format!("arn:aws:iam::{ACCOUNT}:role/tollgate-deploy"), "externalId": "ext-7f3a", "sessionDuration": "1h"}}),
        &out,
    );
    projects
        .create(&PostParams::default(), &shop)
        .await
        .unwrap();
    wait_phase(&projects, "shop", ProjectPhase::Ready).await;
    let seen = seen(&out);
    // No keys in Terraform's environment (the controller's own blanked): a loopback
    // endpoint and a token for this run, which every AWS SDK in the run asks.
    for name in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_ROLE_ARN",
    ] {
        assert_eq!(value(&seen, name), Some(""), "{name}");
    }
    let uri = value(&seen, "AWS_CONTAINER_CREDENTIALS_FULL_URI")
        .unwrap()
        .to_owned();
    let run_token = value(&seen, "AWS_CONTAINER_AUTHORIZATION_TOKEN")
        .unwrap()
        .to_owned();
    assert!(uri.starts_with("http://127.0.0.1:"), "{uri}");
    assert_eq!(run_token.len(), 64);
    let (key, secret, token) = fetched(&seen, 1);
    let (refreshed_key, refreshed_secret, refreshed_token) = fetched(&seen, 2);
    // Temporary credentials, not the controller's own, and asked again: new ones.
    assert!(
        key.starts_with("ASIA") && refreshed_key.starts_with("ASIA"),
        "{key} {refreshed_key}"
    );
    assert_ne!(key, "AKIDCONTROLLER0001");
    assert_ne!(key, refreshed_key);
    // Moto knows both: sessions of the assumed role named after the Project and plan, asked
    // for with the Project's external id.
    let plan_id = projects
        .get("shop")
        .await
        .unwrap()
        .status
        .unwrap()
        .plan
        .unwrap()
        .id;
    let session = format!("{namespace}.shop.{plan_id}");
    for (key, secret) in [(&key, &secret), (&refreshed_key, &refreshed_secret)] {
        let identity = moto.boto(key, secret, "print(sts.get_caller_identity()['Arn'])");
        assert_eq!(
            identity,
            format!("arn:aws:sts::{ACCOUNT}:assumed-role/tollgate-deploy/{session}")
        );
    }
    let issued_by_moto = moto.assumed_roles();
    for key in [&key, &refreshed_key] {
        let role = issued_by_moto
            .iter()
            .find(|r| r["access_key_id"] == key.as_str())
            .unwrap_or_else(|| panic!("moto issued {key}: {issued_by_moto:?}"));
        assert_eq!(role["external_id"], "ext-7f3a", "{role}");
        assert_eq!(role["session_name"], session.as_str(), "{role}");
    }
    // The run is over: its token no longer gets anything.
    assert_eq!(endpoint_status(&uri, &run_token), 403);

    // A hostile apply prints what the endpoint hands it, minted after the run began (and
    // after its redactor was made): redacted all the same, everywhere.
    leak(
        &projects,
        &checkpoints,
        project(
            &namespace,
            "leaky-role",
            ACCOUNT,
            serde_json::json!({"assumeRole": {"roleArn": format!("arn:aws:iam::{ACCOUNT}:role/tollgate-deploy"), "externalId": "ext-7f3a"}}),
            &dir.path().join("leaky-role.env"),
        ),
    )
    .await;
    let leaky_sessions = format!("{namespace}.leaky-role.");
    let leaked: Vec<String> = moto
        .assumed_roles()
        .iter()
        .filter(|r| {
            r["session_name"]
                .as_str()
                .is_some_and(|n| n.starts_with(&leaky_sessions))
        })
        .flat_map(|r| {
            ["access_key_id", "secret_access_key", "session_token"]
                .map(|f| r[f].as_str().unwrap_or_default().to_owned())
        })
        .collect();
    // The plan's session, the apply's, and one per request the apply made.
    assert!(leaked.len() >= 6 * 3, "{leaked:?}");
    let trail = std::fs::read_to_string(&audit).unwrap();
    let issued: Vec<serde_json::Value> = trail
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|r: &serde_json::Value| r["action"] == "CredentialUsed" && r["project"] == "shop")
        .collect();
    assert!(
        issued.len() >= 4,
        "one record per plan and apply, and per refresh: {trail}"
    );
    assert_eq!(
        issued[0]["credential"]["source"],
        format!("arn:aws:iam::{ACCOUNT}:role/tollgate-deploy")
    );
    assert!(issued[0]["credential"]["expires"].is_string(), "{trail}");

    let hits = find_anywhere(
        plane,
        &namespace,
        &controller,
        dir.path(),
        &[
            &secret,
            &token,
            &key,
            &refreshed_key,
            &refreshed_secret,
            &refreshed_token,
            &run_token,
        ]
        .into_iter()
        .chain(leaked.iter())
        .map(String::as_str)
        .collect::<Vec<_>>(),
    )
    .await
    .into_iter()
    // The test module's own output files are where the applies recorded them.
    .filter(|h| !h.ends_with("shop.env") && !h.ends_with("leaky-role.env"))
    .collect::<Vec<_>>();
    assert!(hits.is_empty(), "secrets leaked: {hits:?}");
    plane.delete_namespace(&namespace).await;
}

/// A scene whose controller (AWS: `moto`, first applies pre-approved, `extra` flags) runs
/// Terraform in runner Jobs, and the node that runs them (`node`: what it does with each
/// kind of run), its files under `node_dir`; with the state namespace.
async fn job_scene(
    plane: &'static ControlPlane,
    moto: &Moto,
    prefix: &str,
    extra: Vec<String>,
    node_dir: &Path,
    node: impl Fn(&str) -> Node + Send + Sync + 'static,
) -> (Scene, String, Kubelet) {
    let scene = Scene::start(
        plane,
        prefix,
        false,
        Some(serde_json::json!(["FirstApply", "Create"])),
        moto.controller_env("AKIDCONTROLLER0001", "controller-secret"),
        extra
            .into_iter()
            .chain(job_runner_args(&node_dir.join("config")))
            .collect(),
    )
    .await;
    let state = state_namespace_with_runner(plane, &scene.namespace).await;
    let kubelet = Kubelet::start(plane, &state, &node_dir.join("node"), node).await;
    (scene, state, kubelet)
}

#[tokio::test]
async fn a_runner_job_is_handed_its_assumed_role_credentials_and_fresh_ones_while_it_runs() {
    let plane = ControlPlane::get().await;
    let moto = Moto::start(None).await;
    let node_dir = tempfile::tempdir().unwrap();
    // Longer than the session lasts: every look at the running Job hands it new ones.
    let margin = ["--credentials-refresh-margin".to_owned(), "7200".to_owned()];
    let (
        Scene {
            namespace,
            dir,
            controller,
            projects,
            checkpoints: _,
            secrets: _,
        },
        state,
        node,
    ) = job_scene(
        plane,
        &moto,
        "creds-job",
        margin.into(),
        node_dir.path(),
        |_| Node::Run,
    )
    .await;
    let out = dir.path().join("job.env");
    let mut job_project = project(
        &namespace,
        "jobbed",
        ACCOUNT,
        serde_json::json!({"assumeRole": {"roleArn": format!("arn:aws:iam::{ACCOUNT}:role/tollgate-deploy"), "externalId": "ext-7f3a", "sessionDuration": "1h"}}),
        &out,
    );
    job_project.spec.components[0]
        .inputs
        .insert("await_new_credentials".into(), serde_json::json!(true));
    projects
        .create(&PostParams::default(), &job_project)
        .await
        .unwrap();
    wait_phase(&projects, "jobbed", ProjectPhase::Ready).await;

    // The apply ran in a Job's pod, and Terraform there asked the pod's own loopback
    // endpoint: no keys in its environment.
    let apply = node
        .pods()
        .into_iter()
        .find(|p| p.run == "apply" && p.exit == Some(0))
        .expect("the apply ran in a runner Job");
    let seen = seen(&out);
    for name in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
    ] {
        assert_eq!(value(&seen, name), Some(""), "{name}");
    }
    let uri = value(&seen, "AWS_CONTAINER_CREDENTIALS_FULL_URI").unwrap();
    assert!(uri.starts_with("http://127.0.0.1:"), "{uri}");
    // The first credentials, then, while the apply still ran, others: the controller
    // rewrote the Job's credentials Secret and the pod served what its file then held.
    let (key, secret, token) = fetched(&seen, 1);
    let (fresh_key, fresh_secret, fresh_token) = fetched(&seen, 2);
    assert!(
        key.starts_with("ASIA") && fresh_key.starts_with("ASIA"),
        "{key} {fresh_key}"
    );
    assert_ne!(key, fresh_key, "the pod was handed new credentials");
    let issued_by_moto = moto.assumed_roles();
    for key in [&key, &fresh_key] {
        let role = issued_by_moto
            .iter()
            .find(|r| r["access_key_id"] == key.as_str())
            .unwrap_or_else(|| panic!("moto issued {key}: {issued_by_moto:?}"));
        assert_eq!(role["external_id"], "ext-7f3a", "{role}");
    }
    // The apply's Job (kept for its logs) holds them only in its credentials Secret: its
    // inputs carry blank keys and no value of them, and the pod's output none either.
    let admin = plane.client(User::Admin).await;
    let state_secrets: Api<Secret> = Api::namespaced(admin, &state);
    let inputs = state_secrets
        .get(&tollgate::runner_job::inputs_secret(&apply.job))
        .await
        .unwrap();
    let bundle = tollgate::runner_job::Bundle::decode(
        &inputs.data.unwrap()[tollgate::runner_job::BUNDLE_KEY].0,
    )
    .unwrap();
    let bundled = serde_json::to_string(&(&bundle.env, &bundle.redact)).unwrap();
    let credentials = state_secrets
        .get(&tollgate::runner_job::credentials_secret(&apply.job))
        .await
        .unwrap();
    let handed = String::from_utf8(
        credentials.data.unwrap()[tollgate::runner_job::CREDENTIALS_KEY]
            .0
            .clone(),
    )
    .unwrap();
    assert!(handed.contains("ASIA"), "an ECS credentials document");
    let pod_output = std::fs::read_to_string(&apply.log).unwrap()
        + &std::fs::read_to_string(apply.log.with_file_name("stdout")).unwrap();
    for secret in [
        &key,
        &secret,
        &token,
        &fresh_key,
        &fresh_secret,
        &fresh_token,
    ] {
        assert!(
            !bundled.contains(secret.as_str()),
            "a key in the Job's inputs"
        );
        assert!(
            !pod_output.contains(secret.as_str()),
            "a key in the pod's output"
        );
    }
    let hits = find_anywhere(
        plane,
        &namespace,
        &controller,
        dir.path(),
        &[
            &key,
            &secret,
            &token,
            &fresh_key,
            &fresh_secret,
            &fresh_token,
        ],
    )
    .await
    .into_iter()
    .filter(|h| !h.ends_with("job.env"))
    .collect::<Vec<_>>();
    assert!(hits.is_empty(), "secrets leaked: {hits:?}");
    plane.delete_namespace(&namespace).await;
}

#[tokio::test]
async fn a_denied_role_opens_a_credential_checkpoint_that_closes_once_the_role_is_assumable() {
    let plane = ControlPlane::get().await;
    let (moto, admin_key, admin_secret) = Moto::start_enforcing().await;
    let (admin_key, admin_secret) = (admin_key.as_str(), admin_secret.as_str());
    // The controller may assume nothing yet (it may ask who it is, for the trust policy).
    let (controller_key, controller_secret) =
        moto.controller_user((admin_key, admin_secret), "'sts:GetCallerIdentity'");
    let (controller_key, controller_secret) = (controller_key.as_str(), controller_secret.as_str());
    let Scene {
        namespace,
        dir,
        controller,
        projects,
        checkpoints,
        secrets: _,
    } = Scene::start(
        plane,
        "creds-deny",
        false,
        Some(serde_json::json!(["FirstApply", "Create"])),
        moto.controller_env(controller_key, controller_secret),
        vec![],
    )
    .await;
    let role = format!("arn:aws:iam::{ACCOUNT}:role/tollgate-denied");
    let out = dir.path().join("denied.env");
    projects
        .create(
            &PostParams::default(),
            &project(
                &namespace,
                "denied",
                ACCOUNT,
                serde_json::json!({"assumeRole": {"roleArn": role, "externalId": "ext-9d1c"}}),
                &out,
            ),
        )
        .await
        .unwrap();
    let checkpoint = credential_checkpoint(&checkpoints).await;
    let text = &checkpoint.spec.summary.text;
    for expected in [
        "AccessDenied",
        role.as_str(),
        "\"sts:ExternalId\": \"ext-9d1c\"",
        "\"AWS\": \"arn:aws:iam::123456789012:user/controller\"",
    ] {
        assert!(text.contains(expected), "missing {expected} in:\n{text}");
    }
    // The checkpoint is created first, then the Project's status says it waits on it.
    wait_phase(&projects, "denied", ProjectPhase::AwaitingApproval).await;
    assert!(
        !out.exists(),
        "nothing may run without the Project's credentials"
    );

    // The platform team lets the controller assume the role: nobody approves anything.
    moto.boto(
        admin_key,
        admin_secret,
        &format!("iam.put_user_policy(UserName='controller', PolicyName='own', PolicyDocument=json.dumps({{'Version': '2012-10-17', 'Statement': [{{'Effect': 'Allow', 'Action': 'sts:AssumeRole', 'Resource': {role:?}}}]}}))"),
    );
    wait_phase(&projects, "denied", ProjectPhase::Ready).await;
    let closed = checkpoints
        .get(&checkpoint.metadata.name.clone().unwrap())
        .await
        .unwrap();
    assert_eq!(
        closed.status.unwrap().phase,
        Some(CheckpointPhase::Superseded)
    );
    assert!(fetched(&seen(&out), 1).0.starts_with("ASIA"));
    let events = Api::<Event>::namespaced(plane.client(User::Admin).await, &namespace)
        .list(&ListParams::default())
        .await
        .unwrap();
    assert!(
        events
            .items
            .iter()
            .any(|e| e.reason.as_deref() == Some("CredentialsResolved")),
        "no CredentialsResolved event; controller log:\n{}",
        controller.log()
    );
    plane.delete_namespace(&namespace).await;
}

#[tokio::test]
async fn a_missing_secret_opens_a_credential_checkpoint_that_closes_when_the_secret_is_created() {
    let plane = ControlPlane::get().await;
    let moto = Moto::start(None).await;
    let Scene {
        namespace,
        dir,
        controller,
        projects,
        checkpoints,
        secrets,
    } = Scene::start(
        plane,
        "creds-secret",
        false,
        Some(serde_json::json!(["FirstApply", "Create"])),
        moto.controller_env("AKIDCONTROLLER0002", "controller-secret"),
        vec![],
    )
    .await;
    let audit = dir.path().join(AUDIT_FILE);
    let out = dir.path().join("keys.env");
    projects
        .create(
            &PostParams::default(),
            &project(
                &namespace,
                "keys",
                ACCOUNT,
                serde_json::json!({"secretRef": {"name": "aws-keys"}}),
                &out,
            ),
        )
        .await
        .unwrap();
    let checkpoint = credential_checkpoint(&checkpoints).await;
    let text = &checkpoint.spec.summary.text;
    assert!(
        text.contains(&format!("Secret {namespace}/aws-keys does not exist"))
            && text.contains("AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY")
            && text.contains(&format!("kubectl -n {namespace} create secret generic aws-keys --from-literal=AWS_ACCESS_KEY_ID=... --from-literal=AWS_SECRET_ACCESS_KEY=...")),
        "{text}"
    );
    wait_phase(&projects, "keys", ProjectPhase::AwaitingApproval).await;
    let status = projects.get("keys").await.unwrap().status.unwrap();
    let warning = status
        .conditions
        .iter()
        .find(|c| c.type_ == "StaticCredentials")
        .unwrap();
    assert!(
        warning.message.contains("prefer credentials.assumeRole"),
        "{}",
        warning.message
    );

    // Planted values: they must reach Terraform and nothing else.
    let (key, secret) = ("AKIDPLANTED5E1F2A", "planted-secret-7c4d9b0e");
    let keys: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "aws-keys", "namespace": namespace},
        "stringData": {"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret}
    }))
    .unwrap();
    secrets.create(&PostParams::default(), &keys).await.unwrap();
    wait_phase(&projects, "keys", ProjectPhase::Ready).await;
    let closed = checkpoints
        .get(&checkpoint.metadata.name.clone().unwrap())
        .await
        .unwrap();
    assert_eq!(
        closed.status.unwrap().phase,
        Some(CheckpointPhase::Superseded)
    );
    let seen = seen(&out);
    assert_eq!(value(&seen, "AWS_ACCESS_KEY_ID"), Some(key));
    assert_eq!(value(&seen, "AWS_SECRET_ACCESS_KEY"), Some(secret));

    // A Terraform error that echoes the key: the apply fails, and what tollgate keeps of the
    // error says [REDACTED] where the key was.
    leak(
        &projects,
        &checkpoints,
        project(
            &namespace,
            "leaky",
            ACCOUNT,
            serde_json::json!({"secretRef": {"name": "aws-keys"}}),
            &dir.path().join("leaky.env"),
        ),
    )
    .await;
    assert!(
        std::fs::read_to_string(&audit)
            .unwrap()
            .contains(&format!("Secret {namespace}/aws-keys"))
    );
    let hits = find_anywhere(plane, &namespace, &controller, dir.path(), &[key, secret])
        .await
        .into_iter()
        .filter(|h| !h.ends_with("keys.env") && !h.ends_with("leaky.env"))
        .collect::<Vec<_>>();
    assert!(hits.is_empty(), "secrets leaked: {hits:?}");
    plane.delete_namespace(&namespace).await;
}

#[tokio::test]
async fn secret_inputs_reach_terraform_as_environment_only_and_a_new_version_plans_again() {
    let plane = ControlPlane::get().await;
    let moto = Moto::start(None).await;
    let (sm_first, sm_second) = ("sm-planted-31a9c", "sm-rotated-84be2");
    moto.boto(
        "setup",
        "setup",
        &format!("sm = boto3.client('secretsmanager', **kw)\nsm.create_secret(Name='db', SecretString=json.dumps({{'password': {sm_first:?}}}))"),
    );
    let Scene {
        namespace,
        dir,
        controller,
        projects,
        checkpoints,
        secrets,
    } = Scene::start(
        plane,
        "creds-inputs",
        false,
        Some(serde_json::json!(["FirstApply", "Create", "Replace"])),
        moto.controller_env("AKIDCONTROLLER0003", "controller-secret"),
        vec![],
    )
    .await;
    let out = dir.path().join("inputs.env");
    let with_inputs = |inputs: serde_json::Value| {
        let mut p = project(
            &namespace,
            "inputs",
            ACCOUNT,
            serde_json::json!({"assumeRole": {"roleArn": format!("arn:aws:iam::{ACCOUNT}:role/tollgate-app")}}),
            &out,
        );
        for (k, v) in inputs.as_object().unwrap() {
            p.spec.components[0].inputs.insert(k.clone(), v.clone());
        }
        p
    };

    // A secret reference for a variable the module does not mark sensitive: refused,
    // naming the variable, before any Terraform.
    projects
        .create(
            &PostParams::default(),
            &with_inputs(
                serde_json::json!({"note": {"secretKeyRef": {"name": "app", "key": "token"}}}),
            ),
        )
        .await
        .unwrap();
    wait_phase(&projects, "inputs", ProjectPhase::Failed).await;
    let status = projects.get("inputs").await.unwrap().status.unwrap();
    let stalled = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Stalled")
        .unwrap();
    assert_eq!(stalled.reason, "InvalidSpec");
    assert!(
        stalled.message.contains(
            "input `note`: a secret reference is allowed only for a `sensitive` variable"
        ),
        "{}",
        stalled.message
    );

    // Sensitive variables, from a Secret (missing at first) and from Secrets Manager.
    let mut fixed = with_inputs(serde_json::json!({
        "token": {"secretKeyRef": {"name": "app", "key": "token"}},
        "db_password": {"awsSecretsManager": {"secretId": "db", "jsonKey": "password"}}
    }));
    let current = projects.get("inputs").await.unwrap();
    fixed.metadata.resource_version = current.metadata.resource_version;
    projects
        .replace("inputs", &PostParams::default(), &fixed)
        .await
        .unwrap();
    let text = credential_checkpoint(&checkpoints).await.spec.summary.text;
    assert!(
        text.contains(&format!("Secret {namespace}/app does not exist"))
            && text.contains("--from-literal=token=..."),
        "{text}"
    );
    let token = "k8s-planted-5d0e7f";
    let app: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "app", "namespace": namespace},
        "stringData": {"token": token}
    }))
    .unwrap();
    secrets.create(&PostParams::default(), &app).await.unwrap();
    wait_phase(&projects, "inputs", ProjectPhase::Ready).await;
    let seen_first = seen(&out);
    assert_eq!(value(&seen_first, "TOKEN"), Some(token));
    assert_eq!(value(&seen_first, "DB_PASSWORD"), Some(sm_first));
    // Ready can be read a moment before the status carrying the applied plan's key.
    wait_for("the applied plan's key in status", TIMEOUT, || async {
        projects
            .get("inputs")
            .await
            .is_ok_and(|p| p.status.and_then(|s| s.plan).is_some())
    })
    .await;
    let first_key = projects
        .get("inputs")
        .await
        .unwrap()
        .status
        .unwrap()
        .plan
        .unwrap()
        .inputs_digest;

    // A new version in Secrets Manager: a new plan (and, the hash changing, an apply) with
    // the new value, which again appears only where Terraform used it.
    moto.boto(
        "setup",
        "setup",
        &format!("sm = boto3.client('secretsmanager', **kw)\nsm.put_secret_value(SecretId='db', SecretString=json.dumps({{'password': {sm_second:?}}}))"),
    );
    // Nothing in the Project changes: a label change only wakes the controller (labels are
    // not part of the plan key), which then sees the new version.
    let mut labelled = projects.get("inputs").await.unwrap();
    labelled
        .metadata
        .labels
        .get_or_insert_with(Default::default)
        .insert("poke".into(), "1".into());
    projects
        .replace("inputs", &PostParams::default(), &labelled)
        .await
        .unwrap();
    wait_for("the rotated value applied", TIMEOUT, || async {
        value(&seen(&out), "DB_PASSWORD") == Some(sm_second)
    })
    .await;
    let second_key = projects
        .get("inputs")
        .await
        .unwrap()
        .status
        .unwrap()
        .plan
        .unwrap()
        .inputs_digest;
    assert_ne!(first_key, second_key);
    // A sensitive output hands both back: kept in the outputs Secret (by design), and
    // nowhere else (the search below covers status, reviews, Events and logs).
    let echoed = format!("{token}/{sm_second}");
    wait_for(
        "the sensitive output in the outputs Secret",
        TIMEOUT,
        || async {
            secrets
                .get("inputs-outputs")
                .await
                .ok()
                .and_then(|s| s.data)
                .and_then(|d| d.get("seen_secrets_echo").map(|v| v.0.clone()))
                .is_some_and(|v| v == echoed.as_bytes())
        },
    )
    .await;

    let hits = find_anywhere(
        plane,
        &namespace,
        &controller,
        dir.path(),
        &[token, sm_first, sm_second],
    )
    .await
    .into_iter()
    .filter(|h| !h.ends_with("inputs.env"))
    .collect::<Vec<_>>();
    assert!(hits.is_empty(), "secrets leaked: {hits:?}");
    plane.delete_namespace(&namespace).await;
}

#[tokio::test]
async fn state_lands_in_s3_locked_with_a_lock_file_and_written_with_the_projects_role() {
    state_in_s3(StateLock::LockFile).await;
}

#[tokio::test]
async fn state_lands_in_s3_locked_in_a_dynamodb_table_and_written_with_the_projects_role() {
    state_in_s3(StateLock::DynamoDb).await;
}

/// How the `s3` backend locks state.
#[derive(Clone, Copy, PartialEq)]
enum StateLock {
    /// S3-native: a `<key>.tflock` object (the default).
    LockFile,
    /// An item `<bucket>/<key>` in a DynamoDB table (`dynamodbTable`).
    DynamoDb,
}

/// A Project's state in moto's S3 under the Project's role: a lock someone else holds
/// stops its first plan (`Retrying`, naming the lock) until it is released; then the state
/// is in the bucket, the lock is gone, and the controller's own identity cannot read it.
async fn state_in_s3(lock: StateLock) {
    let plane = ControlPlane::get().await;
    let (moto, admin_key, admin_secret) = Moto::start_enforcing().await;
    let admin = (admin_key.as_str(), admin_secret.as_str());
    let (controller_key, controller_secret) =
        moto.controller_user(admin, "['sts:AssumeRole', 'sts:GetCallerIdentity']");
    let Scene {
        namespace,
        dir,
        controller,
        projects,
        checkpoints: _,
        secrets: _,
    } = Scene::start(
        plane,
        "creds-s3",
        false,
        Some(serde_json::json!(["FirstApply", "Create"])),
        moto.controller_env(&controller_key, &controller_secret),
        vec!["--lock-timeout".into(), "1".into()],
    )
    .await;
    let bucket = format!("tfstate-{}", namespace.len());
    let key = format!("{namespace}/state/terraform.tfstate");
    // The controller may only assume roles; the Project's role may use S3.
    moto.boto(
        admin.0,
        admin.1,
        &format!("boto3.client('s3', **kw).create_bucket(Bucket={bucket:?})\nboto3.client('dynamodb', **kw).create_table(TableName='tf-locks', KeySchema=[{{'AttributeName': 'LockID', 'KeyType': 'HASH'}}], AttributeDefinitions=[{{'AttributeName': 'LockID', 'AttributeType': 'S'}}], BillingMode='PAY_PER_REQUEST')\niam.create_role(RoleName='tollgate-state', AssumeRolePolicyDocument=json.dumps({{'Version': '2012-10-17', 'Statement': [{{'Effect': 'Allow', 'Principal': {{'AWS': '*'}}, 'Action': 'sts:AssumeRole'}}]}}))\niam.put_role_policy(RoleName='tollgate-state', PolicyName='state', PolicyDocument=json.dumps({{'Version': '2012-10-17', 'Statement': [{{'Effect': 'Allow', 'Action': ['s3:*', 'dynamodb:*', 'sts:GetCallerIdentity'], 'Resource': '*'}}]}}))"),
    );
    // Someone else holds the state's lock when the Project first plans: Terraform's lock
    // info, where this backend keeps it.
    let info = format!(
        "json.dumps({{'ID': 'held-by-test', 'Operation': 'OperationTypeApply', 'Who': 'e2e', 'Version': '1.15.0', 'Created': '2026-01-01T00:00:00Z', 'Path': {key:?}}})"
    );
    let (hold, release) = match lock {
        StateLock::LockFile => (
            format!(
                "boto3.client('s3', **kw).put_object(Bucket={bucket:?}, Key={lock:?}, Body={info})",
                lock = format!("{key}.tflock")
            ),
            format!(
                "boto3.client('s3', **kw).delete_object(Bucket={bucket:?}, Key={lock:?})",
                lock = format!("{key}.tflock")
            ),
        ),
        StateLock::DynamoDb => (
            format!(
                "boto3.client('dynamodb', **kw).put_item(TableName='tf-locks', Item={{'LockID': {{'S': {lock:?}}}, 'Info': {{'S': {info}}}}})",
                lock = format!("{bucket}/{key}")
            ),
            format!(
                "boto3.client('dynamodb', **kw).delete_item(TableName='tf-locks', Key={{'LockID': {{'S': {lock:?}}}}})",
                lock = format!("{bucket}/{key}")
            ),
        ),
    };
    moto.boto(admin.0, admin.1, &hold);
    let out = dir.path().join("state.env");
    let mut state = project(
        &namespace,
        "state",
        ACCOUNT,
        serde_json::json!({"assumeRole": {"roleArn": format!("arn:aws:iam::{ACCOUNT}:role/tollgate-state")}}),
        &out,
    );
    let backend = match lock {
        StateLock::LockFile => serde_json::json!({"type": "s3", "s3": {"bucket": bucket}}),
        StateLock::DynamoDb => {
            serde_json::json!({"type": "s3", "s3": {"bucket": bucket, "dynamodbTable": "tf-locks"}})
        }
    };
    state.spec.backend = Some(serde_json::from_value(backend).unwrap());
    projects
        .create(&PostParams::default(), &state)
        .await
        .unwrap();
    wait_for("the held lock reported", TIMEOUT, || async {
        projects
            .get("state")
            .await
            .ok()
            .and_then(|p| p.status)
            .is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.reason == "Retrying" && c.message.to_lowercase().contains("lock"))
            })
    })
    .await;
    assert!(!out.exists());
    moto.boto(admin.0, admin.1, &release);
    wait_phase(&projects, "state", ProjectPhase::Ready).await;
    // The state is in the bucket, under the Project's key, and names the applied resource;
    // the lock file is gone. Only the role could write there (the controller may not).
    let listed = moto.boto(
        admin.0,
        admin.1,
        &format!("s3 = boto3.client('s3', **kw)\nprint(sorted(o['Key'] for o in s3.list_objects_v2(Bucket={bucket:?})['Contents']))\nprint(json.loads(s3.get_object(Bucket={bucket:?}, Key={key:?})['Body'].read())['resources'][0]['type'])"),
    );
    assert_eq!(
        listed,
        format!("['{key}']\nterraform_data"),
        "controller log:\n{}",
        controller.log()
    );
    if lock == StateLock::DynamoDb {
        // Terraform used the table: no lock left, and the state's digest recorded there.
        let items = moto.boto(
            admin.0,
            admin.1,
            "print(sorted(i['LockID']['S'] for i in boto3.client('dynamodb', **kw).scan(TableName='tf-locks')['Items']))",
        );
        assert_eq!(items, format!("['{bucket}/{key}-md5']"));
    }
    let denied = moto.boto(
        &controller_key,
        &controller_secret,
        &format!("try:\n    boto3.client('s3', **kw).get_object(Bucket={bucket:?}, Key={key:?})\n    print('read')\nexcept Exception as e:\n    print(type(e).__name__)"),
    );
    assert_eq!(
        denied, "AccessDenied",
        "the controller's own identity must not reach the state"
    );
    plane.delete_namespace(&namespace).await;
}

#[tokio::test]
async fn an_approved_plan_waits_for_its_credentials_and_applies_without_a_new_approval() {
    let plane = ControlPlane::get().await;
    let moto = Moto::start(None).await;
    // Decisions go through tollgate's admission webhook (sealed), as in production.
    let Scene {
        namespace,
        dir,
        controller,
        projects,
        checkpoints,
        secrets,
    } = Scene::start(
        plane,
        "creds-apply",
        true,
        None,
        moto.controller_env("AKIDCONTROLLER0004", "controller-secret"),
        vec![],
    )
    .await;
    let keys: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "aws-keys", "namespace": namespace},
        "stringData": {"AWS_ACCESS_KEY_ID": "AKIDAPPLY00001", "AWS_SECRET_ACCESS_KEY": "apply-secret-1"}
    }))
    .unwrap();
    secrets.create(&PostParams::default(), &keys).await.unwrap();
    // And a secret input, which the plan review a TO reads must mask.
    let token = "review-planted-6c2f1a";
    let app: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "app", "namespace": namespace},
        "stringData": {"token": token}
    }))
    .unwrap();
    secrets.create(&PostParams::default(), &app).await.unwrap();
    let out = dir.path().join("approved.env");
    let mut approved = project(
        &namespace,
        "approved",
        ACCOUNT,
        serde_json::json!({"secretRef": {"name": "aws-keys"}}),
        &out,
    );
    approved.spec.components[0].inputs.insert(
        "token".into(),
        serde_json::json!({"secretKeyRef": {"name": "app", "key": "token"}}),
    );
    projects
        .create(&PostParams::default(), &approved)
        .await
        .unwrap();
    wait_phase(&projects, "approved", ProjectPhase::AwaitingApproval).await;
    let plan_checkpoint = projects
        .get("approved")
        .await
        .unwrap()
        .status
        .unwrap()
        .checkpoint_ref
        .unwrap()
        .name;

    // The keys go away after the plan, before the decision.
    secrets
        .delete("aws-keys", &DeleteParams::default())
        .await
        .unwrap();
    Api::<Checkpoint>::namespaced(plane.client(User::Alice).await, &namespace)
        .patch_status(
            &plan_checkpoint,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"status": {"decision": "Approved", "reason": "e2e"}})),
        )
        .await
        .unwrap();
    let credential = credential_checkpoint(&checkpoints).await;
    wait_for(
        "Ready=False CredentialsNeeded while Applying",
        TIMEOUT,
        || async {
            let status = projects.get("approved").await.unwrap().status.unwrap();
            status.phase == Some(ProjectPhase::Applying)
                && status
                    .conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.reason == "CredentialsNeeded")
        },
    )
    .await;
    assert!(!out.exists(), "applied without credentials");

    // The keys come back: the approved plan is applied, nobody approves anything again.
    let mut keys = keys;
    keys.metadata.resource_version = None;
    secrets.create(&PostParams::default(), &keys).await.unwrap();
    wait_phase(&projects, "approved", ProjectPhase::Ready).await;
    assert_eq!(
        value(&seen(&out), "AWS_ACCESS_KEY_ID"),
        Some("AKIDAPPLY00001")
    );
    let all = checkpoints
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    let types: Vec<(CheckpointType, Option<CheckpointPhase>)> = all
        .iter()
        .map(|c| {
            (
                c.spec.checkpoint_type,
                c.status.as_ref().and_then(|s| s.phase),
            )
        })
        .collect();
    assert_eq!(
        types.len(),
        2,
        "one plan checkpoint and one Credential checkpoint, nothing re-opened: {types:?}"
    );
    let status = |name: &str| {
        all.iter()
            .find(|c| c.metadata.name.as_deref() == Some(name))
            .and_then(|c| c.status.as_ref())
            .and_then(|s| s.phase)
    };
    assert_eq!(status(&plan_checkpoint), Some(CheckpointPhase::Approved));
    assert_eq!(
        status(credential.metadata.name.as_deref().unwrap()),
        Some(CheckpointPhase::Superseded)
    );
    assert_eq!(value(&seen(&out), "TOKEN"), Some(token));
    // The review was written (and is searched below), masking the secret input.
    let review = Api::<ConfigMap>::namespaced(plane.client(User::Admin).await, &namespace)
        .get_opt(&tollgate::api::review_config_map_name(&plan_checkpoint))
        .await
        .unwrap();
    assert!(review.is_some(), "no plan review for {plan_checkpoint}");
    let hits = find_anywhere(
        plane,
        &namespace,
        &controller,
        dir.path(),
        &[token, "apply-secret-1"],
    )
    .await
    .into_iter()
    .filter(|h| !h.ends_with("approved.env"))
    .collect::<Vec<_>>();
    assert!(hits.is_empty(), "secrets leaked: {hits:?}");
    plane.delete_namespace(&namespace).await;
}

#[tokio::test]
async fn a_rejected_credential_checkpoint_stops_the_project_until_the_credentials_work() {
    let plane = ControlPlane::get().await;
    let moto = Moto::start(None).await;
    let Scene {
        namespace,
        dir,
        controller: _controller,
        projects,
        checkpoints,
        secrets,
    } = Scene::start(
        plane,
        "creds-reject",
        true,
        Some(serde_json::json!(["FirstApply", "Create"])),
        moto.controller_env("AKIDCONTROLLER0005", "controller-secret"),
        vec![],
    )
    .await;
    let out = dir.path().join("rejected.env");
    projects
        .create(
            &PostParams::default(),
            &project(
                &namespace,
                "rejected",
                ACCOUNT,
                serde_json::json!({"secretRef": {"name": "aws-keys"}}),
                &out,
            ),
        )
        .await
        .unwrap();
    let credential = credential_checkpoint(&checkpoints).await;
    Api::<Checkpoint>::namespaced(plane.client(User::Alice).await, &namespace)
        .patch_status(
            credential.metadata.name.as_deref().unwrap(),
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"status": {"decision": "Rejected", "reason": "no keys for this team"}})),
        )
        .await
        .unwrap();
    wait_phase(&projects, "rejected", ProjectPhase::Failed).await;
    let status = projects.get("rejected").await.unwrap().status.unwrap();
    let stalled = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Stalled")
        .unwrap();
    assert_eq!(stalled.reason, "CredentialRejected");
    assert!(
        stalled.message.contains("no keys for this team"),
        "{}",
        stalled.message
    );
    assert!(!out.exists());

    // Once the credentials work, a re-plan request carries on.
    let keys: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "aws-keys", "namespace": namespace},
        "stringData": {"AWS_ACCESS_KEY_ID": "AKIDREJECT0001", "AWS_SECRET_ACCESS_KEY": "reject-secret-1"}
    }))
    .unwrap();
    secrets.create(&PostParams::default(), &keys).await.unwrap();
    projects
        .patch(
            "rejected",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"annotations": {tollgate::api::REPLAN_ANNOTATION: "1"}}})),
        )
        .await
        .unwrap();
    wait_phase(&projects, "rejected", ProjectPhase::Ready).await;
    assert_eq!(
        value(&seen(&out), "AWS_ACCESS_KEY_ID"),
        Some("AKIDREJECT0001")
    );
    // Closed, so a later incident asks afresh instead of finding this rejection.
    let closed = checkpoints
        .get(credential.metadata.name.as_deref().unwrap())
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!(closed.phase, Some(CheckpointPhase::Superseded));
    assert_eq!(closed.decision, Some(tollgate::api::Decision::Rejected));
    plane.delete_namespace(&namespace).await;
}

/// A runner Job's credentials are obtained when the Job is made, and again only when those
/// it holds come due: looking at it while it runs (every watch event, every recheck)
/// assumes no role and writes no `CredentialUsed` record.
#[tokio::test]
async fn a_running_job_is_looked_at_without_minting_credentials_until_they_are_due() {
    let plane = ControlPlane::get().await;
    let moto = Moto::start(None).await;
    let node_dir = tempfile::tempdir().unwrap();
    // The apply's pod waits for the test.
    let (
        Scene {
            namespace,
            dir,
            controller,
            projects,
            checkpoints: _,
            secrets: _,
        },
        _,
        node,
    ) = job_scene(
        plane,
        &moto,
        "creds-lazy",
        Vec::new(),
        node_dir.path(),
        |run| {
            if run == "apply" {
                Node::Gated
            } else {
                Node::Run
            }
        },
    )
    .await;
    let lazy = project(
        &namespace,
        "lazy",
        ACCOUNT,
        serde_json::json!({"assumeRole": {"roleArn": format!("arn:aws:iam::{ACCOUNT}:role/tollgate-deploy"), "externalId": "ext-7f3a", "sessionDuration": "1h"}}),
        &dir.path().join("lazy.env"),
    );
    projects
        .create(&PostParams::default(), &lazy)
        .await
        .unwrap();
    wait_for("the apply's pod runs", TIMEOUT, || async {
        node.pods().iter().any(|p| p.run == "apply")
    })
    .await;
    let run = projects
        .get("lazy")
        .await
        .unwrap()
        .status
        .unwrap()
        .runner_job
        .unwrap();
    let session = format!("{namespace}.lazy.{}", run.plan_id);
    let minted = || {
        moto.assumed_roles()
            .iter()
            .filter(|r| r["session_name"] == session.as_str())
            .count()
    };
    assert_eq!(minted(), 1, "the apply's credentials, made with its Job");
    // Three more looks at the Project while its Job runs.
    for poke in 0..3 {
        let before = controller.metric("tollgate_reconciles_total").await;
        let patch =
            serde_json::json!({"metadata": {"annotations": {"e2e/poke": poke.to_string()}}});
        projects
            .patch("lazy", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
        wait_for(
            "the Project is looked at",
            Duration::from_secs(60),
            || async { controller.metric("tollgate_reconciles_total").await > before },
        )
        .await;
    }
    node.open_gate();
    wait_phase(&projects, "lazy", ProjectPhase::Ready).await;
    assert_eq!(
        minted(),
        1,
        "no role assumed again for the apply while its credentials were not due:\n{}",
        controller.log()
    );
}

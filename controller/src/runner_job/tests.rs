#![allow(clippy::unwrap_used, clippy::expect_used)]

use k8s_openapi::api::batch::v1::JobCondition;
use k8s_openapi::api::batch::v1::JobStatus;

use super::*;

const CONFIG: &str = r#"
serviceAccount: runner-default
activeDeadlineSeconds: 600
resources:
  limits: {memory: 1Gi}
overrides:
  - namespace: team-a
    serviceAccount: runner-team-a
  - namespace: team-a
    project: web
    serviceAccount: runner-team-a-web
    resources:
      limits: {cpu: "4", memory: 8Gi}
  - namespace: team-b
    activeDeadlineSeconds: 60
"#;

#[test]
fn the_most_specific_override_wins_field_by_field() {
    let config = RunnerJobConfig::parse(CONFIG, "runner.yaml").unwrap();
    let web = config.for_project("team-a", "web");
    assert_eq!(web.service_account, "runner-team-a-web");
    assert_eq!(
        web.resources.limits.unwrap()["memory"],
        Quantity("8Gi".into())
    );
    assert_eq!(web.active_deadline_seconds, 600);
    let api = config.for_project("team-a", "api");
    assert_eq!(api.service_account, "runner-team-a");
    assert_eq!(
        api.resources.limits.unwrap()["memory"],
        Quantity("1Gi".into())
    );
    let b = config.for_project("team-b", "web");
    assert_eq!(b.service_account, "runner-default");
    assert_eq!(b.active_deadline_seconds, 60);
    // A Project of another namespace with the same name gets nothing of team-a's.
    assert_eq!(
        config.for_project("team-c", "web").service_account,
        "runner-default"
    );
}

#[test]
fn defaults_bound_every_run() {
    let settings = RunnerJobConfig::default().for_project("ns", "p");
    assert_eq!(settings.service_account, "tollgate-runner");
    assert!(settings.resources.limits.unwrap().contains_key("memory"));
    assert_eq!(settings.active_deadline_seconds, 3600);
}

#[test]
fn a_bad_configuration_is_refused_with_its_file_named() {
    for (yaml, expect) in [
        ("serviceAccunt: x\n", "serviceAccunt"),
        ("activeDeadlineSeconds: 0\n", "at least 1"),
        ("overrides:\n  - namespace: \"\"\n", "names a namespace"),
        (
            "overrides:\n  - namespace: a\n    activeDeadlineSeconds: -5\n",
            "at least 1",
        ),
    ] {
        let err = RunnerJobConfig::parse(yaml, "runner.yaml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("runner.yaml") && err.contains(expect), "{err}");
    }
}

const APPLY: RunCommand<'static> = RunCommand::Apply {
    digest: "ab12",
    chunks: &[],
};
const PLAN: RunCommand<'static> = RunCommand::Plan(PlanMode::Changes);

fn request<'a>(settings: &'a RunnerSettings, command: RunCommand<'a>) -> JobRequest<'a> {
    JobRequest {
        namespace: "tollgate-system",
        project_namespace: "team-a",
        project_name: "web",
        command,
        run_key: "ab12",
        attempt: 0,
        image: "ghcr.io/tollgate/tollgate:1.0",
        settings,
        credentials: false,
    }
}

#[test]
fn one_name_per_project_and_run() {
    let name = job_name(&APPLY, "team-a", "web", "ab12", 0);
    assert_eq!(name, job_name(&APPLY, "team-a", "web", "ab12", 0));
    assert_ne!(name, job_name(&APPLY, "team-a", "web", "ab12", 1));
    assert_ne!(name, job_name(&APPLY, "team-a", "web", "ab13", 0));
    assert_ne!(name, job_name(&APPLY, "team-a", "api", "ab12", 0));
    assert_ne!(name, job_name(&PLAN, "team-a", "web", "ab12", 0));
    assert_ne!(
        job_name(&APPLY, "ab", "c", "d", 0),
        job_name(&APPLY, "a", "bc", "d", 0)
    );
    for name in [name, job_name(&PLAN, "team-a", "web", "ab12", 0)] {
        assert!(name.len() <= 52, "room for the pod's suffix: {name}");
        assert!(result_secret(&name).len() <= 63 && inputs_secret(&name).len() <= 63);
    }
}

/// What the pod's inputs volume projects.
fn projected(pod: &k8s_openapi::api::core::v1::PodSpec) -> Vec<VolumeProjection> {
    pod.volumes.as_ref().unwrap()[0]
        .projected
        .clone()
        .unwrap()
        .sources
        .unwrap()
}

#[test]
fn a_plan_job_plans_what_it_is_asked_and_mounts_no_plan() {
    let settings = RunnerJobConfig::default().for_project("team-a", "web");
    for mode in [PlanMode::Changes, PlanMode::Destroy, PlanMode::RefreshOnly] {
        let job = build(&request(&settings, RunCommand::Plan(mode)));
        let name = job.metadata.name.clone().unwrap();
        assert!(name.starts_with("tollgate-plan-"), "{name}");
        assert_eq!(job.metadata.labels.clone().unwrap()[RUN_LABEL], "plan");
        let pod = job.spec.unwrap().template.spec.unwrap();
        let args = pod.containers[0].args.clone().unwrap();
        assert_eq!(&args[..2], ["runner", "plan"]);
        let mode_at = args.iter().position(|a| a == "--mode").unwrap();
        assert_eq!(args[mode_at + 1], mode.arg());
        assert!(!args.iter().any(|a| a == "--plan-digest"), "{args:?}");
        assert_eq!(projected(&pod).len(), 1, "only the inputs bundle");
    }
}

#[test]
fn an_output_job_reads_the_outputs_and_mounts_only_its_inputs() {
    let settings = RunnerJobConfig::default().for_project("team-a", "web");
    let job = build(&request(&settings, RunCommand::Output));
    let name = job.metadata.name.clone().unwrap();
    assert!(name.starts_with("tollgate-output-"), "{name}");
    assert_ne!(name, job_name(&PLAN, "team-a", "web", "ab12", 0));
    assert_eq!(job.metadata.labels.clone().unwrap()[RUN_LABEL], "output");
    let pod = job.spec.unwrap().template.spec.unwrap();
    let args = pod.containers[0].args.clone().unwrap();
    assert_eq!(&args[..2], ["runner", "output"]);
    assert!(
        !args.iter().any(|a| a == "--mode" || a == "--plan-digest"),
        "{args:?}"
    );
    assert_eq!(projected(&pod).len(), 1, "only the inputs bundle");
}

#[test]
fn a_job_of_a_project_assuming_a_role_mounts_its_credentials_secret() {
    let settings = RunnerJobConfig::default().for_project("team-a", "web");
    for command in [PLAN, APPLY] {
        let job = build(&JobRequest {
            credentials: true,
            ..request(&settings, command)
        });
        let name = job.metadata.name.clone().unwrap();
        let pod = job.spec.unwrap().template.spec.unwrap();
        let credentials = projected(&pod)
            .iter()
            .filter_map(|s| s.secret.clone())
            .find(|s| s.name == credentials_secret(&name))
            .unwrap();
        assert_eq!(credentials.items.unwrap()[0].path, CREDENTIALS_KEY);
        assert!(credentials_secret(&name).len() <= 63, "{name}");
    }
}

#[test]
fn the_job_runs_the_runner_suspended_bounded_and_under_the_projects_account() {
    let settings = RunnerJobConfig::parse(CONFIG, "r")
        .unwrap()
        .for_project("team-a", "web");
    let chunks = vec!["tfplan-x-0".to_owned(), "tfplan-x-1".to_owned()];
    let apply = RunCommand::Apply {
        digest: "ab12",
        chunks: &chunks,
    };
    let job = build(&request(&settings, apply));
    let name = job.metadata.name.clone().unwrap();
    assert_eq!(name, job_name(&apply, "team-a", "web", "ab12", 0));
    let labels = job.metadata.labels.clone().unwrap();
    assert_eq!(labels["tollgate.dev/project"], "web");
    assert_eq!(labels["tollgate.dev/project-namespace"], "team-a");
    assert_eq!(labels[RUN_LABEL], "apply");
    assert_eq!(
        job.metadata.annotations.unwrap()[HOLDER_ANNOTATION],
        format!("job/tollgate-system/{name}")
    );
    let spec = job.spec.unwrap();
    assert_eq!(spec.suspend, Some(true));
    assert_eq!(spec.backoff_limit, Some(0));
    assert_eq!(spec.active_deadline_seconds, Some(600));
    let pod = spec.template.spec.unwrap();
    assert_eq!(
        pod.service_account_name.as_deref(),
        Some("runner-team-a-web")
    );
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    let container = &pod.containers[0];
    assert_eq!(
        container.resources.clone().unwrap().limits.unwrap()["cpu"],
        Quantity("4".into())
    );
    let args = container.args.clone().unwrap();
    assert_eq!(&args[..2], ["runner", "apply"]);
    let after = |flag: &str| {
        let i = args.iter().position(|a| a == flag).unwrap();
        args[i + 1].clone()
    };
    assert_eq!(after("--plan-digest"), "ab12");
    assert_eq!(after("--result-secret"), result_secret(&name));
    assert_eq!(after("--inputs"), INPUTS_DIR);
    let volumes = pod.volumes.unwrap();
    let sources = volumes[0].projected.clone().unwrap().sources.unwrap();
    let projected: Vec<(String, String)> = sources
        .iter()
        .map(|s| {
            let secret = s.secret.clone().unwrap();
            (secret.name, secret.items.unwrap()[0].path.clone())
        })
        .collect();
    assert_eq!(
        projected,
        [
            (inputs_secret(&name), BUNDLE_KEY.to_owned()),
            ("tfplan-x-0".to_owned(), "plan.gz.0".to_owned()),
            ("tfplan-x-1".to_owned(), "plan.gz.1".to_owned()),
        ]
    );
}

fn with_condition(kind: &str, status: &str) -> Job {
    Job {
        status: Some(JobStatus {
            conditions: Some(vec![JobCondition {
                type_: kind.into(),
                status: status.into(),
                reason: Some("DeadlineExceeded".into()),
                message: Some("Job was active longer than specified deadline".into()),
                ..JobCondition::default()
            }]),
            ..JobStatus::default()
        }),
        ..Job::default()
    }
}

#[test]
fn the_state_is_read_from_the_conditions() {
    assert_eq!(state(&Job::default()), JobState::Running);
    assert_eq!(
        state(&with_condition("Complete", "True")),
        JobState::Succeeded
    );
    assert_eq!(
        state(&with_condition("Complete", "False")),
        JobState::Running
    );
    assert_eq!(
        state(&with_condition("Failed", "True")),
        JobState::Failed {
            reason: "DeadlineExceeded: Job was active longer than specified deadline".into()
        }
    );
}

#[test]
fn the_bundle_carries_the_configuration_and_never_writes_outside_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.tf"), "# root").unwrap();
    std::fs::create_dir_all(dir.path().join("modules/demo/sub")).unwrap();
    std::fs::write(dir.path().join("modules/demo/sub/x.tf"), "# x").unwrap();
    std::fs::write(dir.path().join("tfplan"), [0xff, 0x00]).unwrap();
    let bundle = Bundle {
        files: Bundle::read_dir(dir.path()).unwrap(),
        env: vec![("TF_VAR_x".into(), "secret".into())],
        redact: vec!["secret".into()],
    };
    assert_eq!(
        bundle.files.keys().collect::<Vec<_>>(),
        ["main.tf", "modules/demo/sub/x.tf"]
    );
    let decoded = Bundle::decode(&bundle.encode().unwrap()).unwrap();
    assert_eq!(decoded, bundle);
    let out = tempfile::tempdir().unwrap();
    decoded.write_files(out.path()).unwrap();
    assert_eq!(
        std::fs::read_to_string(out.path().join("modules/demo/sub/x.tf")).unwrap(),
        "# x"
    );

    for hostile in ["../escape.tf", "/etc/passwd", "modules/../../x"] {
        let bundle = Bundle {
            files: BTreeMap::from([(hostile.to_owned(), "x".to_owned())]),
            ..Bundle::default()
        };
        let err = bundle.write_files(out.path()).unwrap_err().to_string();
        assert!(err.contains("leaves the working directory"), "{err}");
    }
    assert!(!out.path().parent().unwrap().join("escape.tf").exists());
    assert!(Bundle::decode(b"not gzip").is_err());
}

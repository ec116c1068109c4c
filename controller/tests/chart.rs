//! The Helm chart (deploy/helm/tollgate) against the sources it must not drift from: the
//! CRDs, the shipped ClusterRoles, the webhook configurations the code generates, the
//! controller's real flags, and the plain bundle deploy/tollgate.yaml.
//!
//! Needs Helm: `TOLLGATE_HELM`, else ~/.cache/tollgate/bin/helm (tests/tools/install-helm.sh).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use tollgate::admission::{Registration, WebhookTarget};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn helm() -> PathBuf {
    if let Some(path) = std::env::var_os("TOLLGATE_HELM") {
        return PathBuf::from(path);
    }
    let cached = PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/tollgate/bin/helm");
    assert!(
        cached.is_file(),
        "no Helm: run tests/tools/install-helm.sh or set TOLLGATE_HELM"
    );
    cached
}

fn render(extra: &[&str]) -> Vec<Value> {
    match try_render(extra) {
        Ok(docs) => docs,
        Err(stderr) => panic!("helm template: {stderr}"),
    }
}

/// `helm template` of the chart, or what helm said when it refused.
fn try_render(extra: &[&str]) -> Result<Vec<Value>, String> {
    let out = Command::new(helm())
        .args(["template", "tollgate"])
        .arg(root().join("deploy/helm/tollgate"))
        .args(["--namespace", "tollgate-system"])
        .args(extra)
        .output()
        .map_err(|e| format!("cannot run helm: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(yaml_docs(&String::from_utf8_lossy(&out.stdout)))
}

fn yaml_docs(text: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(text)
        .unwrap()
        .into_iter()
        .filter(|v| !v.is_null())
        .collect()
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in the render"))
}

fn file_docs(path: &str) -> Vec<Value> {
    yaml_docs(&std::fs::read_to_string(root().join(path)).unwrap())
}

#[test]
fn chart_crds_are_the_generated_crds() {
    for entry in std::fs::read_dir(root().join("crds")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap();
        let chart = root().join("deploy/helm/tollgate/crds").join(name);
        assert!(
            std::fs::read_to_string(&path).unwrap()
                == std::fs::read_to_string(&chart).unwrap_or_default(),
            "{} differs from crds/: cp crds/*.yaml deploy/helm/tollgate/crds/ and run deploy/render-bundle.sh",
            chart.display()
        );
    }
    let chart_files = std::fs::read_dir(root().join("deploy/helm/tollgate/crds"))
        .unwrap()
        .count();
    assert_eq!(
        chart_files,
        std::fs::read_dir(root().join("crds")).unwrap().count()
    );
}

#[test]
fn chart_rbac_is_the_shipped_rbac() {
    let docs = render(&[]);
    let shipped = file_docs("deploy/controller-rbac.yaml");
    let controller = find(&shipped, "ClusterRole", "tollgate-controller");
    assert_eq!(
        find(&docs, "ClusterRole", "tollgate-controller")["rules"],
        controller["rules"]
    );
    let state = find(&shipped, "Role", "tollgate-state");
    assert_eq!(
        find(&docs, "Role", "tollgate-state")["rules"],
        state["rules"]
    );
    let binding = find(&docs, "ClusterRoleBinding", "tollgate-controller");
    assert_eq!(
        binding["subjects"],
        find(&shipped, "ClusterRoleBinding", "tollgate-controller")["subjects"]
    );
    for role in file_docs("deploy/rbac.yaml") {
        let name = role["metadata"]["name"].as_str().unwrap();
        let rendered = find(&docs, "ClusterRole", name);
        assert_eq!(rendered["rules"], role["rules"], "{name}");
        assert_eq!(
            rendered["metadata"]["labels"], role["metadata"]["labels"],
            "{name}"
        );
    }
    // Without the people's roles (a second release, or roles managed elsewhere).
    let docs = render(&["--set", "rbac.userRoles=false"]);
    assert!(
        !docs
            .iter()
            .any(|d| d["metadata"]["name"] == "tollgate-approver")
    );
}

#[test]
fn chart_admission_policy_is_the_shipped_policy() {
    let docs = render(&[]);
    for shipped in file_docs("deploy/admission/checkpoint-decision-policy.yaml") {
        let kind = shipped["kind"].as_str().unwrap();
        let name = shipped["metadata"]["name"].as_str().unwrap();
        assert_eq!(
            find(&docs, kind, name)["spec"],
            shipped["spec"],
            "{kind} {name}"
        );
    }
    // Another release namespace or service account is named as the controller.
    let docs = render(&["--set", "serviceAccount.name=tg"]);
    let policy = find(
        &docs,
        "ValidatingAdmissionPolicy",
        "tollgate-checkpoint-decisions",
    );
    assert!(
        policy["spec"]["variables"][0]["expression"]
            .as_str()
            .unwrap()
            .contains("'system:serviceaccount:tollgate-system:tg'")
    );
}

#[test]
fn chart_webhook_configurations_are_the_generated_ones() {
    let target = WebhookTarget::Service {
        namespace: "tollgate-system".into(),
        name: "tollgate-webhook".into(),
        port: 443,
    };
    let (mutating, validating) = Registration::default().configurations_for(&target, b"");
    let without_ca = |webhooks: Value| -> Value {
        let mut webhooks = webhooks;
        for hook in webhooks.as_array_mut().unwrap() {
            hook["clientConfig"]
                .as_object_mut()
                .unwrap()
                .remove("caBundle");
        }
        webhooks
    };
    for certificates in ["bootstrap", "certManager"] {
        let docs = render(&["--set", &format!("webhook.certificates={certificates}")]);
        assert_eq!(
            find(&docs, "MutatingWebhookConfiguration", "tollgate")["webhooks"],
            without_ca(serde_json::to_value(&mutating).unwrap()["webhooks"].clone()),
            "{certificates}"
        );
        assert_eq!(
            find(&docs, "ValidatingWebhookConfiguration", "tollgate")["webhooks"],
            without_ca(serde_json::to_value(&validating).unwrap()["webhooks"].clone()),
            "{certificates}"
        );
    }
    // A namespace selector reaches both the configurations and the bootstrap Job.
    let docs = render(&["--set", "webhook.namespaceSelector.matchLabels.team=a"]);
    let hooks = &find(&docs, "MutatingWebhookConfiguration", "tollgate")["webhooks"];
    assert_eq!(
        hooks[0]["namespaceSelector"],
        json!({"matchLabels": {"team": "a"}})
    );
    let job = find(&docs, "Job", "tollgate-webhook-configure");
    let args = &job["spec"]["template"]["spec"]["containers"][0]["args"];
    assert!(
        args.as_array()
            .unwrap()
            .contains(&json!("--namespace-selector=team=a")),
        "{args}"
    );
}

/// Every flag the chart passes exists on the real command, and the pod is locked down.
#[test]
fn chart_runs_the_controller_with_real_flags_locked_down() {
    let docs = render(&[
        "--set",
        "controller.priceCache.configMap=prices",
        "--set",
        "controller.credentialsConfig.configMap=accounts",
    ]);
    let deployment = find(&docs, "Deployment", "tollgate");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let help = |sub: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(sub)
            .arg("--help")
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    let controller_help = help(&["controller"]);
    let args = container["args"].as_array().unwrap();
    assert_eq!(args[0], "controller");
    for arg in &args[1..] {
        let flag = arg.as_str().unwrap().split('=').next().unwrap();
        assert!(
            controller_help.contains(&format!("{flag} "))
                || controller_help.contains(&format!("{flag}\n")),
            "tollgate controller has no flag {flag}"
        );
    }
    assert!(args.contains(&json!(
        "--controller-user=system:serviceaccount:tollgate-system:tollgate"
    )));
    let job = find(&docs, "Job", "tollgate-webhook-configure");
    let job_args = job["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap();
    let configure_help = help(&["webhook", "configure"]);
    for arg in &job_args[2..] {
        let flag = arg.as_str().unwrap().split('=').next().unwrap();
        assert!(
            configure_help.contains(flag),
            "tollgate webhook configure has no flag {flag}"
        );
    }

    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(
        container["securityContext"]["allowPrivilegeEscalation"],
        false
    );
    // Two replicas, one leading: rolled one pod at a time, never below the current count.
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert_eq!(deployment["spec"]["strategy"]["type"], "RollingUpdate");
    assert_eq!(
        deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"],
        0
    );
    for flag in [
        "--leader-elect",
        "--leader-elect-lease-namespace=tollgate-system",
        "--shutdown-grace-period=90",
    ] {
        assert!(args.contains(&json!(flag)), "{flag} in {args:?}");
    }
    // The kubelet waits for the grace period plus Terraform's time to stop after SIGINT.
    assert!(pod["terminationGracePeriodSeconds"].as_u64().unwrap() >= 90 + 60);
    let single = render(&[
        "--set",
        "controller.leaderElection.enabled=false",
        "--set",
        "controller.replicas=1",
    ]);
    let single = find(&single, "Deployment", "tollgate");
    assert_eq!(single["spec"]["strategy"]["type"], "Recreate");
    assert!(
        !single["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_array()
            .unwrap()
            .contains(&json!("--leader-elect"))
    );
    let refused = try_render(&["--set", "controller.leaderElection.enabled=false"]).unwrap_err();
    assert!(
        refused.contains("needs controller.leaderElection.enabled"),
        "{refused}"
    );
    let refused =
        try_render(&["--set", "controller.terminationGracePeriodSeconds=60"]).unwrap_err();
    assert!(
        refused.contains("terminationGracePeriodSeconds must be at least"),
        "{refused}"
    );
    // Everything Terraform writes is on a volume.
    let mounts: Vec<&str> = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mountPath"].as_str().unwrap())
        .collect();
    for path in [
        "/var/lib/tollgate/work",
        "/var/cache/tollgate/plugins",
        "/home/tollgate",
        "/tmp",
        "/etc/tollgate/price-cache",
        "/etc/tollgate/credentials",
    ] {
        assert!(mounts.contains(&path), "{path} not mounted: {mounts:?}");
    }
}

#[test]
fn the_plain_bundle_is_fresh() {
    let out = Command::new("bash")
        .arg(root().join("deploy/render-bundle.sh"))
        .arg("--check")
        .env("HELM", helm())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn chart_job_runner_is_the_shipped_runner_rbac_and_only_with_runner_job() {
    let args_of = |docs: &[Value]| -> Vec<String> {
        find(docs, "Deployment", "tollgate")["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_owned())
            .collect()
    };
    // In-process (the default): no Jobs, no runner identity.
    let docs = render(&[]);
    assert!(!docs.iter().any(|d| {
        d["metadata"]["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("tollgate-runner"))
    }));
    assert!(!args_of(&docs).iter().any(|a| a.starts_with("--runner")));

    let docs = render(&["--set", "controller.runner.mode=job"]);
    let shipped = file_docs("deploy/runner-rbac.yaml");
    for role in ["tollgate-runner", "tollgate-runner-jobs"] {
        assert_eq!(
            find(&docs, "Role", role)["rules"],
            find(&shipped, "Role", role)["rules"],
            "{role}"
        );
        assert_eq!(
            find(&docs, "RoleBinding", role)["subjects"],
            find(&shipped, "RoleBinding", role)["subjects"],
            "{role}"
        );
    }
    find(&docs, "ServiceAccount", "tollgate-runner");
    let args = args_of(&docs);
    let image = find(&docs, "Deployment", "tollgate")["spec"]["template"]["spec"]["containers"][0]
        ["image"]
        .as_str()
        .unwrap()
        .to_owned();
    for flag in [
        "--runner=job".to_owned(),
        format!("--runner-image={image}"),
        "--runner-config=/etc/tollgate/runner/runner.yaml".to_owned(),
    ] {
        assert!(args.contains(&flag), "{flag} in {args:?}");
    }
    // The configuration the controller reads is valid and names the chart's account.
    let yaml = find(&docs, "ConfigMap", "tollgate-runner")["data"]["runner.yaml"]
        .as_str()
        .unwrap()
        .to_owned();
    let config = tollgate::runner_job::RunnerJobConfig::parse(&yaml, "runner.yaml").unwrap();
    assert_eq!(config.service_account, "tollgate-runner");
    assert_eq!(config.active_deadline_seconds, 3600);

    let refused = try_render(&["--set", "controller.runner.mode=pod"]).unwrap_err();
    assert!(refused.contains("in-process or job"), "{refused}");
}

//! The `tollgate` binary's offline commands, as a user runs them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn tollgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(args)
        .current_dir(repo())
        .env_remove("TOLLGATE_CATALOG")
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn validate_accepts_every_example() {
    for example in [
        "demo",
        "network",
        "static-site",
        "web-service",
        "postgres",
        "bucket",
    ] {
        let out = tollgate(&[
            "validate",
            "-f",
            &format!("examples/{example}/project.yaml"),
        ]);
        assert!(out.status.success(), "{example}: {}", stderr(&out));
    }
}

#[test]
fn validate_reports_every_problem_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let demo = std::fs::read_to_string(repo().join("examples/demo/project.yaml")).unwrap();
    let bad = write(
        dir.path(),
        "bad.yaml",
        &demo
            .replace("replicas: 2", "replica: 2")
            .replace("size: small", "size: [small]"),
    );
    let out = tollgate(&["validate", "-f", &bad]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("project team-a/demo: 2 problem(s)"), "{err}");
    assert!(err.contains("component `app`, input `replica`: module `demo` has no variable `replica` (did you mean `replicas`?)"), "{err}");
    assert!(
        err.contains("input `settings.size`: expected string, given list [\"small\"]"),
        "{err}"
    );
}

#[test]
fn validate_applies_the_controllers_sla_rule() {
    let dir = tempfile::tempdir().unwrap();
    let demo = std::fs::read_to_string(repo().join("examples/demo/project.yaml")).unwrap();
    let with_sla = |sla: &str| {
        demo.replace(
            "  environment: dev\n",
            &format!("  environment: dev\n  approval:\n    sla: {sla}\n"),
        )
    };
    let good = write(
        dir.path(),
        "good.yaml",
        &with_sla("{respondWithin: 30m, escalation: {after: 1h}, expireAfter: 4h}"),
    );
    assert_eq!(tollgate(&["validate", "-f", &good]).status.code(), Some(0));
    let bad = write(
        dir.path(),
        "bad.yaml",
        &with_sla("{respondWithin: 2h, escalation: {after: 1h}}"),
    );
    let out = tollgate(&["validate", "-f", &bad]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("spec.approval.sla: escalation.after (1h) is shorter than respondWithin (2h)"),
        "{err}"
    );
    // With the controller's defaults: the Project's own 2h response time and the dev
    // environment's default expiry of 1h cannot both hold.
    let defaults = write(
        dir.path(),
        "sla-defaults.yaml",
        "remindEvery: 15m\nenvironments:\n  dev:\n    expireAfter: 1h\n",
    );
    let own = write(dir.path(), "own.yaml", &with_sla("{respondWithin: 2h}"));
    assert_eq!(tollgate(&["validate", "-f", &own]).status.code(), Some(0));
    let out = tollgate(&["validate", "--sla-defaults", &defaults, "-f", &own]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("expireAfter (1h) is shorter than respondWithin (2h)"),
        "{err}"
    );
    let broken = write(dir.path(), "broken.yaml", "respondWithin: soon\n");
    let out = tollgate(&["validate", "--sla-defaults", &broken, "-f", &own]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("respondWithin: `soon` is not a duration"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn unknown_fields_and_bad_yaml_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let demo = std::fs::read_to_string(repo().join("examples/demo/project.yaml")).unwrap();
    let typo = write(
        dir.path(),
        "typo.yaml",
        &demo.replace("deletionPolicy: Destroy", "deletePolicy: Destroy"),
    );
    let out = tollgate(&["validate", "-f", &typo]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("unknown field(s) spec.deletePolicy"),
        "{}",
        stderr(&out)
    );
    let enum_value = write(
        dir.path(),
        "enum.yaml",
        &demo.replace("deletionPolicy: Destroy", "deletionPolicy: Keep"),
    );
    let out = tollgate(&["validate", "-f", &enum_value]);
    assert!(
        stderr(&out).contains("field `spec.deletionPolicy`") && stderr(&out).contains("Destroy"),
        "{}",
        stderr(&out)
    );
    let broken = write(dir.path(), "broken.yaml", "spec: [");
    assert!(stderr(&tollgate(&["validate", "-f", &broken])).contains("not valid YAML"));
}

#[test]
fn render_writes_a_working_directory_and_a_bad_catalog_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("wd");
    let out = tollgate(&[
        "render",
        "-f",
        "examples/demo/project.yaml",
        "-o",
        out_dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let main = std::fs::read_to_string(out_dir.join("main.tf")).unwrap();
    assert!(
        main.contains("backend \"local\""),
        "the CLI renders a local backend when the Project sets none"
    );
    assert!(out_dir.join("modules/demo/main.tf").is_file());
    let out = tollgate(&[
        "render",
        "-f",
        "examples/demo/project.yaml",
        "-o",
        out_dir.to_str().unwrap(),
        "--backend",
        "kubernetes",
    ]);
    assert!(out.status.success());
    assert!(
        std::fs::read_to_string(out_dir.join("main.tf"))
            .unwrap()
            .contains("backend \"kubernetes\"")
    );

    let out = tollgate(&[
        "--catalog",
        "/nonexistent",
        "validate",
        "-f",
        "examples/demo/project.yaml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot read /nonexistent"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn crd_prints_both_kinds() {
    let out = tollgate(&["crd"]);
    let yaml = String::from_utf8(out.stdout).unwrap();
    assert!(
        yaml.contains("name: projects.tollgate.dev")
            && yaml.contains("name: checkpoints.tollgate.dev")
    );
}

#[test]
fn plan_saves_a_digested_plan_and_prices_it_with_real_terraform() {
    let dir = tempfile::tempdir().unwrap();
    let wd = dir.path().join("wd");
    let out = tollgate(&[
        "plan",
        "-f",
        "examples/demo/project.yaml",
        "--out",
        wd.to_str().unwrap(),
        "--output",
        "json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let digest = result["plan"]["digest"].as_str().unwrap();
    assert_eq!(
        digest,
        tollgate::plan::digest_file(&wd.join("tfplan")).unwrap(),
        "the digest is the saved plan file's sha256"
    );
    assert_eq!(result["plan"]["status"], "Changes");
    assert_eq!(result["plan"]["summary"]["add"], 4);
    assert_eq!(result["cost"]["totalMonthlyCost"], "0");
    assert_eq!(result["cost"]["unpriced"], serde_json::json!([]));
    let redacted = std::fs::read_to_string(wd.join("plan.redacted.json")).unwrap();
    assert!(redacted.contains("module.app.terraform_data.app"));
}

#[test]
fn cost_prices_a_plan_json_in_every_format() {
    let fixture = "controller/tests/fixtures/plans/create.json";
    let json: serde_json::Value =
        serde_json::from_slice(&tollgate(&["cost", fixture, "--output", "json"]).stdout).unwrap();
    assert_eq!(json["currency"], "USD");
    assert_eq!(json["totalMonthlyCost"], "26.392");
    assert_eq!(json["deltaMonthlyCost"], "26.392");
    let table = String::from_utf8(tollgate(&["cost", fixture]).stdout).unwrap();
    assert!(
        table.contains("TOTAL") && table.contains("$26.39"),
        "{table}"
    );
    let markdown =
        String::from_utf8(tollgate(&["cost", fixture, "--output", "markdown"]).stdout).unwrap();
    assert!(markdown.contains('|'), "{markdown}");
    let out = tollgate(&["cost", "Cargo.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!stderr(&out).is_empty());
}

#[test]
fn cost_explain_names_each_price_row_and_assumption() {
    let fixture = "controller/tests/fixtures/plans/coverage_forms.json";
    let out = String::from_utf8(tollgate(&["cost", fixture, "--explain"]).stdout).unwrap();
    assert!(out.contains("TOTAL"), "{out}");
    assert!(
        out.contains("    price: ec2 instance:m3.medium in us-east-1, v0rts/aws-price-watcher@c4a0470f6340 processed/ec2.json (observed 2025-11-20)"),
        "{out}"
    );
    assert!(out.contains("priced at its min_capacity 5"), "{out}");
    assert!(out.contains("assumes: runs 730 hours a month"), "{out}");
    let plain = String::from_utf8(tollgate(&["cost", fixture]).stdout).unwrap();
    assert!(!plain.contains("price: "), "{plain}");
}

#[test]
fn validate_applies_the_controllers_account_allow_list() {
    let dir = tempfile::tempdir().unwrap();
    let demo = std::fs::read_to_string(repo().join("examples/demo/project.yaml")).unwrap();
    let in_account = |account: &str| {
        demo.replace(
            "  environment: dev\n",
            &format!("  environment: dev\n  cloud:\n    aws:\n      region: eu-west-1\n      accountId: \"{account}\"\n      credentials:\n        assumeRole:\n          roleArn: arn:aws:iam::{account}:role/tollgate-deploy\n"),
        )
    };
    let config = write(
        dir.path(),
        "accounts.yaml",
        "rules:\n  - name: team-a\n    namespaceSelector: {matchLabels: {team: a}}\n    accountIds: [\"111111111111\"]\n    roleArns: [\"arn:aws:iam::111111111111:role/tollgate-*\"]\n",
    );
    let own = write(dir.path(), "own.yaml", &in_account("111111111111"));
    let other = write(dir.path(), "other.yaml", &in_account("222222222222"));
    let check = |file: &str| {
        tollgate(&[
            "validate",
            "-f",
            file,
            "--credentials-config",
            &config,
            "--namespace",
            "team-a",
            "--namespace-label",
            "team=a",
        ])
    };
    assert_eq!(
        check(&own).status.code(),
        Some(0),
        "{}",
        stderr(&check(&own))
    );
    let out = check(&other);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("(AccountNotAllowed): account 222222222222 is not allowed for namespace team-a: rule(s) team-a allow only [111111111111]"),
        "{err}"
    );
    // Without the configuration, the rules are not known: nothing is refused.
    assert_eq!(tollgate(&["validate", "-f", &other]).status.code(), Some(0));
}

#[test]
fn policy_test_runs_the_rego_unit_tests_of_a_folder() {
    let out = tollgate(&["policy", "test", "examples/rego"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", stderr(&out));
    assert!(stdout.contains("3 passed, 0 failed"), "{stdout}");

    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "wrong_test.rego",
        "package wrong_test\n\ntest_one_is_two if 1 == 2\n",
    );
    let out = tollgate(&["policy", "test", dir.path().to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL  data.wrong_test.test_one_is_two"),
        "{stdout}"
    );

    write(
        dir.path(),
        "broken.rego",
        "package broken\n\ndeny contains x if {\n",
    );
    let out = tollgate(&["policy", "test", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("broken.rego is not valid Rego"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn policy_eval_judges_a_plan_with_the_pack_and_user_policies() {
    let dir = tempfile::tempdir().unwrap();
    // `terraform show -json` of an unencrypted volume with the tags tollgate's provider sets.
    let plan = write(
        dir.path(),
        "plan.json",
        r#"{"format_version": "1.2", "resource_changes": [{"address": "aws_ebs_volume.data", "type": "aws_ebs_volume",
            "change": {"actions": ["create"], "before": null, "after_unknown": {"id": true},
                "after": {"size": 100, "encrypted": false, "tags_all": {"tollgate.dev/project": "shop", "tollgate.dev/environment": "production"}}}}]}"#,
    );
    let plan = plan.as_str();
    let project = write(
        dir.path(),
        "project.yaml",
        "apiVersion: tollgate.dev/v1alpha1\nkind: Project\nmetadata: {name: shop, namespace: team-a}\nspec:\n  environment: production\n  components: [{name: app, module: demo}]\n",
    );
    let out = tollgate(&["policy", "eval", "-f", plan, "--project", &project]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", stderr(&out));
    assert!(
        stdout.contains("DENY  data.tollgate.builtin.ebs: EBS_ENCRYPTION:"),
        "{stdout}"
    );

    // With the rules it trips turned off and a cost cap it stays under, it passes.
    let config = write(
        dir.path(),
        "config.yaml",
        "disabledRules: [EBS_ENCRYPTION]\n",
    );
    let out = tollgate(&[
        "policy",
        "eval",
        "-f",
        plan,
        "--project",
        &project,
        "--config",
        &config,
        "--policy",
        "examples/rego",
        "--monthly-cost",
        "120",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", stderr(&out));
    assert!(stdout.contains("0 violation(s)"), "{stdout}");

    let out = tollgate(&[
        "policy",
        "eval",
        "-f",
        plan,
        "--config",
        &config,
        "--policy",
        "examples/rego",
        "--monthly-cost",
        "900",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("DENY  data.examples.cost_cap:"), "{stdout}");

    let bad = write(dir.path(), "bad.yaml", "requiredTag: [x]\n");
    let out = tollgate(&["policy", "eval", "-f", plan, "--config", &bad]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("requiredTag"), "{}", stderr(&out));
}

/// Runs tollgate with its stdout on a pipe whose reader is already gone, as
/// `tollgate … | head` does once `head` has read enough.
fn into_closed_pipe(args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(args)
        .current_dir(repo())
        .env_remove("TOLLGATE_CATALOG")
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap()
}

#[test]
fn every_printing_command_stops_quietly_when_its_reader_goes_away() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("wd");
    let out = out.to_str().unwrap();
    let fixture = "controller/tests/fixtures/plans/coverage_forms.json";
    for args in [
        &["cost", fixture][..],
        &["cost", fixture, "--explain"],
        &["cost", fixture, "--output", "json"],
        &["cost", fixture, "--output", "markdown"],
        &["crd"],
        &["api-docs"],
        &["validate", "-f", "examples/demo/project.yaml"],
        &["render", "-f", "examples/demo/project.yaml", "--out", out],
        &["policy", "test", "examples/rego"],
    ] {
        let run = into_closed_pipe(args);
        assert_eq!(
            run.status.code(),
            Some(0),
            "tollgate {args:?} into a closed pipe: {}",
            stderr(&run)
        );
        assert_eq!(stderr(&run), "", "tollgate {args:?} says nothing on stderr");
    }
}

//! Rendered working directories are accepted by real Terraform, and inputs that look like
//! HCL templates or shell syntax reach Terraform (and the shell) as the literal text.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use tollgate::api::BackendType;
use tollgate::catalog::{Catalog, validate_project};
use tollgate::manifest::parse_project;
use tollgate::render::quote::quoted;
use tollgate::render::{RenderOptions, render};

const HOSTILE: &str = "${file(\"/etc/passwd\")} %{ if true }x%{ endif } $(id) `id` \"quoted\" back\\slash\nEOT\n<<EOF ünïcødé";

fn terraform() -> PathBuf {
    let bin = std::env::var_os("TOLLGATE_TERRAFORM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("terraform"));
    let ok = Command::new(&bin)
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "no working terraform at {bin:?}: run tests/tools/install-terraform.sh and put ~/.cache/tollgate/bin on PATH (or set TOLLGATE_TERRAFORM)"
    );
    bin
}

fn tf(bin: &Path, dir: &Path, args: &[&str]) -> String {
    let out = Command::new(bin)
        .arg(format!("-chdir={}", dir.display()))
        .args(args)
        .env("TF_IN_AUTOMATION", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "terraform {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `apply tfplan`, then the root outputs.
fn apply_outputs(bin: &Path, dir: &Path) -> serde_json::Value {
    tf(bin, dir, &["apply", "-input=false", "-no-color", "tfplan"]);
    serde_json::from_str(&tf(bin, dir, &["output", "-json"])).unwrap()
}

/// `init`, `plan -out=tfplan`, `apply tfplan`, then the root outputs.
fn init_plan_apply_outputs(bin: &Path, dir: &Path) -> serde_json::Value {
    tf(bin, dir, &["init", "-input=false", "-no-color"]);
    tf(
        bin,
        dir,
        &["plan", "-input=false", "-no-color", "-out=tfplan"],
    );
    apply_outputs(bin, dir)
}

#[test]
fn hostile_inputs_reach_terraform_and_the_shell_as_literals() {
    let bin = terraform();
    let work = tempfile::tempdir().unwrap();
    let markers = work.path().join("markers");
    let manifest = serde_json::json!({
        "apiVersion": "tollgate.dev/v1alpha1", "kind": "Project",
        "metadata": {"name": "hostile", "namespace": "team-a"},
        "spec": {"environment": "dev", "components": [{"name": "app", "module": "demo", "inputs": {
            "greeting": HOSTILE,
            "tags": {"${path.module}": "%{ for x in [1] }${x}%{ endfor }"},
            "marker_dir": markers.to_str().unwrap()
        }}]}
    });
    let project = parse_project(&manifest.to_string(), Path::new("hostile.yaml")).unwrap();
    let catalog = Catalog::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../modules")).unwrap();
    validate_project(&project, &catalog).unwrap();
    let dir = work.path().join("wd");
    render(
        &project,
        &catalog,
        &RenderOptions {
            backend_override: Some(BackendType::Local),
            ..Default::default()
        },
    )
    .unwrap()
    .write_to(&dir)
    .unwrap();

    tf(&bin, &dir, &["init", "-input=false", "-no-color"]);
    tf(
        &bin,
        &dir,
        &["plan", "-input=false", "-no-color", "-out=tfplan"],
    );
    let plan: serde_json::Value =
        serde_json::from_str(&tf(&bin, &dir, &["show", "-json", "tfplan"])).unwrap();
    let app = plan["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["address"] == "module.app.terraform_data.app")
        .unwrap();
    assert_eq!(app["change"]["after"]["input"]["greeting"], HOSTILE);
    assert_eq!(
        app["change"]["after"]["input"]["tags"],
        serde_json::json!({"${path.module}": "%{ for x in [1] }${x}%{ endfor }"})
    );

    let outputs = apply_outputs(&bin, &dir);
    assert_eq!(outputs["app_greeting"]["value"], HOSTILE);
    let marker = outputs["app_marker_file"]["value"].as_str().unwrap();
    assert_eq!(
        std::fs::read_to_string(marker).unwrap(),
        HOSTILE,
        "the shell must write the greeting verbatim"
    );
}

/// Every string up to length 5 over `$ % { } x`, and up to length 3 over those plus a
/// quote, a backslash, a newline and a non-ASCII letter: the strings that break escapers.
fn marker_strings() -> Vec<String> {
    fn all(alphabet: &[&str], max_len: usize) -> Vec<String> {
        let mut out = vec![String::new()];
        let mut last = vec![String::new()];
        for _ in 0..max_len {
            last = last
                .iter()
                .flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}")))
                .collect();
            out.extend(last.iter().cloned());
        }
        out
    }
    let mut strings = all(&["$", "%", "{", "}", "x"], 5);
    strings.extend(all(&["$", "%", "{", "}", "x", "\"", "\\", "\n", "ü"], 3));
    strings.extend(marker_heavy_sample());
    strings.sort();
    strings.dedup();
    strings
}

/// A deterministic sample of proptest's marker-heavy strings (runs of `$`/`%` before `{`,
/// mixed with the other characters a template reads specially).
fn marker_heavy_sample() -> Vec<String> {
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::TestRunner;
    let strategy = proptest::string::string_regex(
        r#"(([$%]{1,4}\{?~?)|[{}x"\\\n~]|ü|\$\{[a-z.()"/]{0,12}\}?){0,8}"#,
    )
    .unwrap();
    let mut runner = TestRunner::deterministic();
    (0..300)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect()
}

fn catalog_with_echo(root: &Path) -> Catalog {
    let catalog = root.join("catalog");
    let modules = Path::new(env!("CARGO_MANIFEST_DIR")).join("../modules/demo");
    std::fs::create_dir_all(catalog.join("demo")).unwrap();
    for entry in std::fs::read_dir(&modules).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "tf") {
            std::fs::copy(&path, catalog.join("demo").join(path.file_name().unwrap())).unwrap();
        }
    }
    std::fs::create_dir_all(catalog.join("echo")).unwrap();
    std::fs::write(
        catalog.join("echo/main.tf"),
        "variable \"value\" {\n  type = any\n}\n\nresource \"terraform_data\" \"echo\" {\n  input = var.value\n}\n\noutput \"value\" {\n  value = terraform_data.echo.output\n}\n",
    )
    .unwrap();
    Catalog::load(&catalog).unwrap()
}

/// The differential test of "inputs are data": real Terraform (and, from tests/run.sh,
/// OpenTofu) plans, applies and outputs every marker string as a string value, a map key,
/// inside nested lists and objects, and through the demo module's typed variables; every
/// output must equal its input exactly.
#[test]
fn every_marker_string_reaches_terraform_exactly_as_written() {
    let bin = terraform();
    let work = tempfile::tempdir().unwrap();
    let catalog = catalog_with_echo(work.path());
    let strings = marker_strings();
    let as_map: serde_json::Map<String, serde_json::Value> = strings
        .iter()
        .map(|s| (s.clone(), serde_json::Value::from(s.as_str())))
        .collect();
    // The demo module's tags need keys of 1 to 128 characters.
    let tags: serde_json::Map<String, serde_json::Value> = as_map
        .iter()
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let nested = serde_json::json!({
        "list": strings,
        "map": as_map,
        "deep": [{"a": [as_map.clone()]}, strings.iter().map(|s| serde_json::json!({"k": s})).collect::<Vec<_>>()],
    });
    let greeting = "%%{%${file(join(substr(path.cwd,0,1),concat([substr(path.cwd,0,0)],keys({etc=1}),keys({hostname=1}))))}";
    let manifest = serde_json::json!({
        "apiVersion": "tollgate.dev/v1alpha1", "kind": "Project",
        "metadata": {"name": "markers", "namespace": "team-a"},
        "spec": {"environment": "dev", "components": [
            {"name": "app", "module": "demo", "inputs": {
                "greeting": greeting,
                "tags": tags,
                "settings": {"size": "small", "enabled": true},
                "api_token": "$${$%{ if false }HIDDEN%{ endif }"
            }},
            {"name": "echo", "module": "echo", "inputs": {"value": nested}}
        ]}
    });
    let project = parse_project(&manifest.to_string(), Path::new("markers.yaml")).unwrap();
    validate_project(&project, &catalog).unwrap();
    let dir = work.path().join("wd");
    let rendered = render(
        &project,
        &catalog,
        &RenderOptions {
            backend_override: Some(BackendType::Local),
            ..Default::default()
        },
    )
    .unwrap();
    rendered.write_to(&dir).unwrap();
    // By construction: no input string is part of the HCL Terraform parses.
    assert!(!rendered.root.contains("HIDDEN") && !rendered.root.contains("hostname"));

    let outputs = init_plan_apply_outputs(&bin, &dir);
    assert_eq!(outputs["app_greeting"]["value"], greeting);
    assert_eq!(
        outputs["app_tags"]["value"],
        serde_json::Value::Object(tags)
    );
    assert_eq!(outputs["echo_value"]["value"], nested);
    let token = outputs["app_token_hint"]["value"].as_str().unwrap();
    let state = std::fs::read_to_string(dir.join("terraform.tfstate")).unwrap();
    assert!(
        state.contains("$${$%{ if false }HIDDEN%{ endif }") && !token.is_empty(),
        "the sensitive input must reach Terraform verbatim"
    );
}

/// The escaper for the strings that must still be HCL (backend settings, catalog text):
/// real Terraform evaluates each escaped string as a template, with its full context, and
/// must get back exactly the original.
#[test]
fn escaped_strings_evaluate_to_themselves_in_terraform() {
    let bin = terraform();
    let work = tempfile::tempdir().unwrap();
    let strings = marker_strings();
    let body = hcl::Body::builder()
        .add_block(
            hcl::Block::builder("output")
                .add_label("all")
                .add_attribute((
                    "value",
                    hcl::Expression::Array(strings.iter().map(|s| quoted(s)).collect()),
                ))
                .build(),
        )
        .build();
    std::fs::write(work.path().join("main.tf"), hcl::to_string(&body).unwrap()).unwrap();
    tf(&bin, work.path(), &["init", "-input=false", "-no-color"]);
    tf(
        &bin,
        work.path(),
        &["apply", "-input=false", "-no-color", "-auto-approve"],
    );
    let outputs: serde_json::Value =
        serde_json::from_str(&tf(&bin, work.path(), &["output", "-json"])).unwrap();
    let got: Vec<String> = serde_json::from_value(outputs["all"]["value"].clone()).unwrap();
    let wrong: Vec<(&String, &String)> = strings
        .iter()
        .zip(&got)
        .filter(|(want, got)| want != got)
        .take(10)
        .collect();
    assert_eq!(got.len(), strings.len());
    assert!(
        wrong.is_empty(),
        "Terraform read these back differently: {wrong:?}"
    );
}

//! Rendered working directories are accepted by real Terraform, and inputs that look like
//! HCL templates or shell syntax reach Terraform (and the shell) as the literal text.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use tollgate::api::BackendType;
use tollgate::catalog::{Catalog, validate_project};
use tollgate::manifest::parse_project;
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

    tf(
        &bin,
        &dir,
        &["apply", "-input=false", "-no-color", "tfplan"],
    );
    let outputs: serde_json::Value =
        serde_json::from_str(&tf(&bin, &dir, &["output", "-json"])).unwrap();
    assert_eq!(outputs["app_greeting"]["value"], HOSTILE);
    let marker = outputs["app_marker_file"]["value"].as_str().unwrap();
    assert_eq!(
        std::fs::read_to_string(marker).unwrap(),
        HOSTILE,
        "the shell must write the greeting verbatim"
    );
}

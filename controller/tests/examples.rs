//! Every example validates against the schema and the shipped catalog, and renders to the
//! HCL and variables recorded in its golden snapshots.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use tollgate::api::BackendType;
use tollgate::catalog::{Catalog, validate_project};
use tollgate::manifest::read_project;
use tollgate::render::{RenderOptions, render};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn examples() -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(repo().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path().join("project.yaml"))
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    found
}

#[test]
fn every_example_validates_and_renders_to_its_golden_hcl() {
    let catalog = Catalog::load(&repo().join("modules")).unwrap();
    let examples = examples();
    assert!(
        examples.len() >= 6,
        "expected the demo and one example per AWS module, found {examples:?}"
    );
    for path in examples {
        let name = path
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let project = read_project(&path).unwrap_or_else(|e| panic!("{e}"));
        validate_project(&project, &catalog).unwrap_or_else(|e| panic!("{e}"));
        let rendered = render(&project, &catalog, &RenderOptions::default()).unwrap();
        insta::assert_snapshot!(format!("{name}.main.tf"), rendered.root);
        insta::assert_snapshot!(
            format!("{name}.tollgate.auto.tfvars.json"),
            rendered.variables
        );
        // The CLI default for Projects without a backend: local.
        let local = render(
            &project,
            &catalog,
            &RenderOptions {
                backend_override: Some(BackendType::Local),
                ..Default::default()
            },
        )
        .unwrap();
        assert!(local.root.contains("backend \"local\""));
    }
}

#[test]
fn every_example_approval_policy_parses_and_is_strict_where_it_says() {
    let dir = repo().join("examples/policies");
    let mut found = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let policy: tollgate::api::ApprovalPolicy =
            serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            policy.spec.namespace_selector.is_some(),
            "{}: selects every namespace",
            path.display()
        );
        found += 1;
    }
    assert!(
        found >= 3,
        "self-service dev, cost-thresholded staging, always-approved production"
    );
}

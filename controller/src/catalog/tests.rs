//! Unit tests of `catalog`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

pub(crate) fn write_module(root: &Path, name: &str, variables: &str, outputs: &str) {
    let dir = root.join(name);
    fs::create_dir_all(dir.join("tests")).unwrap();
    fs::write(dir.join("variables.tf"), variables).unwrap();
    fs::write(dir.join("outputs.tf"), outputs).unwrap();
    fs::write(
        dir.join("main.tf"),
        "resource \"terraform_data\" \"this\" {}\n",
    )
    .unwrap();
    fs::write(dir.join("tests/x.tftest.hcl"), "").unwrap();
}

#[test]
fn reads_variables_outputs_and_providers_from_hcl() {
    let root = tempfile::tempdir().unwrap();
    write_module(
        root.path(),
        "web",
        r#"
variable "size" {
  type        = string
  description = "Instance size"
}
variable "tags" {
  type    = map(string)
  default = { team = "a" }
}
variable "password" {
  type      = string
  sensitive = true
  nullable  = false
  default   = "x"
}
"#,
        r#"
output "url" { value = "x" }
output "secret" {
  value     = "y"
  sensitive = true
}
terraform {
  required_providers {
aws = { source = "hashicorp/aws", version = "~> 5.80" }
  }
}
"#,
    );
    let catalog = Catalog::load(root.path()).unwrap();
    let web = catalog.module("web").unwrap();
    assert!(web.variables["size"].is_required());
    assert_eq!(
        web.variables["size"].description.as_deref(),
        Some("Instance size")
    );
    assert_eq!(
        web.variables["tags"].default,
        Some(serde_json::json!({"team": "a"}))
    );
    assert!(web.variables["password"].sensitive && !web.variables["password"].nullable);
    assert!(web.outputs["secret"].sensitive && !web.outputs["url"].sensitive);
    assert_eq!(
        web.required_providers["aws"].version.as_deref(),
        Some("~> 5.80")
    );
    assert_eq!(
        web.files,
        vec![
            PathBuf::from("main.tf"),
            PathBuf::from("outputs.tf"),
            PathBuf::from("variables.tf")
        ]
    );
}

#[test]
fn unknown_module_suggests_the_closest_name() {
    let root = tempfile::tempdir().unwrap();
    write_module(root.path(), "postgres", "", "");
    let err = Catalog::load(root.path())
        .unwrap()
        .module("postgress")
        .unwrap_err()
        .to_string();
    assert!(err.contains("did you mean `postgres`"), "{err}");
}

#[test]
fn digest_changes_when_a_module_file_changes() {
    let root = tempfile::tempdir().unwrap();
    write_module(root.path(), "a", "variable \"x\" {}\n", "");
    let before = Catalog::load(root.path()).unwrap().digest().to_owned();
    fs::write(root.path().join("a/main.tf"), "# changed\n").unwrap();
    assert_ne!(before, Catalog::load(root.path()).unwrap().digest());
}

#[test]
fn malformed_blocks_name_the_module_and_block() {
    let root = tempfile::tempdir().unwrap();
    write_module(
        root.path(),
        "bad",
        "variable \"v\" {\n  type = strng\n}\n",
        "",
    );
    let err = Catalog::load(root.path()).unwrap_err().to_string();
    assert!(
        err.contains("module `bad`: variable \"v\": type: unknown primitive type `strng`"),
        "{err}"
    );
    write_module(
        root.path(),
        "bad",
        "variable \"v\" {\n  default = var.x\n}\n",
        "",
    );
    let err = Catalog::load(root.path()).unwrap_err().to_string();
    assert!(err.contains("default must be a literal"), "{err}");
}

#[test]
fn the_shipped_catalog_loads_with_documented_interfaces() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../modules");
    let catalog = Catalog::load(&root).unwrap();
    assert!(catalog.module("demo").is_ok());
    for module in catalog.modules().values() {
        assert!(
            module.path.join("README.md").is_file(),
            "module {} has no README.md",
            module.name
        );
        for variable in module.variables.values() {
            assert!(
                variable.description.is_some(),
                "module {}: variable {} has no description",
                module.name,
                variable.name
            );
        }
        for output in module.outputs.values() {
            assert!(
                output.description.is_some(),
                "module {}: output {} has no description",
                module.name,
                output.name
            );
        }
    }
}

//! Whether a working directory needs `terraform init` again.
//!
//! `init` installs modules, configures the backend and installs providers. What it does
//! depends only on part of the configuration: `terraform` blocks (backend,
//! `required_providers`), where `module` blocks come from, which providers the
//! configuration uses, and the dependency lock file. Input values, resource arguments and
//! outputs do not matter to it, so a re-plan after an input change does not need it.
//!
//! The fingerprint digests exactly those parts, from every `.tf`/`.tofu` file in the
//! directory tree (the rendered root and the copied catalog modules). It is conservative:
//! a file that does not parse, and every JSON-syntax file, is digested whole. After a
//! successful `init` the runner records the fingerprint inside `.terraform/` (so deleting
//! `.terraform` forgets it) and skips the next `init` while it still matches. As a second
//! line of defence, a command that Terraform refuses because initialisation is needed is
//! retried after a real `init` (see `TerraformError::needs_init`).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use hcl::{Block, Body, Structure};
use sha2::{Digest as _, Sha256};

/// Where the fingerprint of the last successful `init` is kept, relative to the working
/// directory. Inside `.terraform/` so that it disappears with what `init` installed.
pub(crate) const RECORD: &str = ".terraform/tollgate-init.sha256";

/// The dependency lock file `init` reads and writes.
const LOCK_FILE: &str = ".terraform.lock.hcl";

/// Blocks that never change what `init` does.
const IRRELEVANT_BLOCKS: &[&str] = &["variable", "output", "locals", "moved", "removed"];

/// The digest of everything in `dir` that `init` depends on, plus `context` (the binary,
/// its version and the init options, given by the runner).
pub(crate) fn fingerprint(dir: &Path, context: &str) -> io::Result<String> {
    let mut files = Vec::new();
    collect_config_files(dir, dir, &mut files)?;
    files.sort();
    let mut hasher = Sha256::new();
    hasher.update(context.as_bytes());
    for relative in files {
        let text = fs::read_to_string(dir.join(&relative))?;
        hasher.update(b"\0file\0");
        hasher.update(relative.to_string_lossy().as_bytes());
        hasher.update(b"\0");
        hasher.update(init_relevant_part(&relative, &text).as_bytes());
    }
    match fs::read(dir.join(LOCK_FILE)) {
        Ok(lock) => {
            hasher.update(b"\0lock\0");
            hasher.update(&lock);
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    Ok(hex::encode(hasher.finalize()))
}

/// The fingerprint recorded by the last successful `init` in `dir`, if any.
pub(crate) fn recorded(dir: &Path) -> Option<String> {
    fs::read_to_string(dir.join(RECORD))
        .ok()
        .map(|s| s.trim().to_owned())
}

/// Records `fingerprint` as that of a successful `init` in `dir`.
pub(crate) fn record(dir: &Path, fingerprint: &str) -> io::Result<()> {
    fs::write(dir.join(RECORD), format!("{fingerprint}\n"))
}

/// Forgets the recorded fingerprint, so that the next `init` runs.
pub(crate) fn forget(dir: &Path) -> io::Result<()> {
    match fs::remove_file(dir.join(RECORD)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn collect_config_files(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        // `.terraform` holds what init installed; other dot-directories are not configuration.
        if name.starts_with('.') {
            continue;
        }
        if entry.file_type()?.is_dir() {
            collect_config_files(root, &path, out)?;
        } else if is_config_file(&name)
            && let Ok(relative) = path.strip_prefix(root)
        {
            out.push(relative.to_path_buf());
        }
    }
    Ok(())
}

fn is_config_file(name: &str) -> bool {
    [".tf", ".tofu", ".tf.json", ".tofu.json"]
        .iter()
        .any(|ext| name.ends_with(ext))
}

fn init_relevant_part(relative: &Path, text: &str) -> String {
    let name = relative.to_string_lossy();
    if name.ends_with(".json") {
        return text.to_owned();
    }
    match hcl::parse(text) {
        Ok(body) => {
            let mut out = String::new();
            describe_body(&body, &mut out);
            out
        }
        // Terraform will report the syntax error; until then, any change re-initialises.
        Err(_) => text.to_owned(),
    }
}

fn describe_body(body: &Body, out: &mut String) {
    for block in body.blocks() {
        describe_block(block, out);
    }
}

fn describe_block(block: &Block, out: &mut String) {
    let kind = block.identifier();
    if IRRELEVANT_BLOCKS.contains(&kind) {
        return;
    }
    match kind {
        // Backend, cloud, required_providers, required_version: all of it matters.
        "terraform" => out.push_str(&format!("{block:?}\n")),
        "module" => {
            out.push_str(&format!("module {:?}", block.labels()));
            push_attributes(block, &["source", "version", "providers"], out);
        }
        // Nested `data` blocks of a check use providers too.
        "check" => describe_body(block.body(), out),
        // provider, resource, data, ephemeral, import and anything newer: the provider a
        // block needs is named by its first label or its `provider` argument.
        _ => {
            out.push_str(&format!("{kind} {:?}", block.labels().first()));
            push_attributes(block, &["provider"], out);
        }
    }
}

fn push_attributes(block: &Block, names: &[&str], out: &mut String) {
    for structure in block.body().iter() {
        if let Structure::Attribute(attr) = structure
            && names.contains(&attr.key())
        {
            out.push_str(&format!(" {}={:?}", attr.key(), attr.expr()));
        }
    }
    out.push('\n');
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const ROOT: &str = r#"
terraform {
  backend "local" {}
  required_providers {
    random = { source = "hashicorp/random", version = "~> 3.0" }
  }
}
variable "size" {}
module "app" {
  source = "./modules/app"
  size   = 3
  name   = "web"
}
resource "terraform_data" "x" {
  input = var.size
}
output "size" { value = var.size }
"#;

    fn digest_of(files: &[(&str, &str)]) -> String {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let path = dir.path().join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        }
        fingerprint(dir.path(), "terraform 1.15.5").unwrap()
    }

    fn with(from: &str, to: &str) -> String {
        assert!(ROOT.contains(from), "{from}");
        digest_of(&[("main.tf", &ROOT.replace(from, to))])
    }

    #[test]
    fn input_values_and_resource_arguments_do_not_need_init() {
        let base = digest_of(&[("main.tf", ROOT)]);
        assert_eq!(base, with("size   = 3", "size   = 4"));
        assert_eq!(
            base,
            with("name   = \"web\"", "name   = \"${file(\"x\")}\"")
        );
        assert_eq!(base, with("input = var.size", "input = 42"));
        assert_eq!(base, with("output \"size\"", "output \"other\""));
        // Files outside the configuration are not looked at.
        assert_eq!(
            base,
            digest_of(&[("main.tf", ROOT), ("tollgate.json", "{}"), ("tfplan", "x")])
        );
    }

    #[test]
    fn what_init_installs_or_configures_needs_init() {
        let base = digest_of(&[("main.tf", ROOT)]);
        for (from, to) in [
            ("backend \"local\" {}", "backend \"local\" { path = \"x\" }"),
            ("version = \"~> 3.0\"", "version = \"~> 3.1\""),
            ("source = \"./modules/app\"", "source = \"./modules/other\""),
            ("module \"app\"", "module \"app2\""),
            ("resource \"terraform_data\"", "resource \"aws_instance\""),
            ("input = var.size", "provider = random.other"),
            (
                "variable \"size\" {}",
                "variable \"size\" {}\nprovider \"aws\" {}",
            ),
            (
                "variable \"size\" {}",
                "variable \"size\" {}\ndata \"aws_caller_identity\" \"me\" {}",
            ),
            (
                "variable \"size\" {}",
                "variable \"size\" {}\ncheck \"c\" {\n data \"http\" \"h\" {}\n}",
            ),
        ] {
            assert_ne!(base, with(from, to), "{from} -> {to}");
        }
    }

    #[test]
    fn nested_modules_lock_file_context_and_unparsable_files_count() {
        let base = digest_of(&[
            ("main.tf", ROOT),
            ("modules/app/main.tf", "variable \"a\" {}"),
        ]);
        let nested = digest_of(&[
            ("main.tf", ROOT),
            ("modules/app/main.tf", "module \"n\" { source = \"./n\" }"),
        ]);
        assert_ne!(base, nested);
        let locked = digest_of(&[
            ("main.tf", ROOT),
            ("modules/app/main.tf", "variable \"a\" {}"),
            (LOCK_FILE, "provider \"x\" {}"),
        ]);
        assert_ne!(base, locked);
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("main.tf"), ROOT).unwrap();
        assert_ne!(
            fingerprint(dir.path(), "terraform 1.15.5").unwrap(),
            fingerprint(dir.path(), "tofu 1.10.0").unwrap()
        );
        let broken_a = digest_of(&[("main.tf", "resource {{ a = 1")]);
        let broken_b = digest_of(&[("main.tf", "resource {{ a = 2")]);
        assert_ne!(broken_a, broken_b);
        let json_a = digest_of(&[("main.tf.json", r#"{"locals":{"a":1}}"#)]);
        let json_b = digest_of(&[("main.tf.json", r#"{"locals":{"a":2}}"#)]);
        assert_ne!(json_a, json_b);
    }

    #[test]
    fn record_lives_in_dot_terraform_and_can_be_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("main.tf"), ROOT).unwrap();
        assert_eq!(recorded(dir.path()), None);
        fs::create_dir_all(dir.path().join(".terraform")).unwrap();
        record(dir.path(), "abc").unwrap();
        assert_eq!(recorded(dir.path()).as_deref(), Some("abc"));
        // What init installed is not configuration: the digest ignores it.
        let before = fingerprint(dir.path(), "t").unwrap();
        fs::write(dir.path().join(".terraform/x.tf"), "module \"m\" {}").unwrap();
        assert_eq!(before, fingerprint(dir.path(), "t").unwrap());
        forget(dir.path()).unwrap();
        forget(dir.path()).unwrap();
        assert_eq!(recorded(dir.path()), None);
    }
}

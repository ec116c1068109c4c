//! The pure core stays pure: render, catalog, plan, cost, gate, sla, seal, state, redact, markup,
//! retention, fair, policy, spend and manifest know nothing of Kubernetes clients, the network,
//! processes or the Terraform runner, so they can be unit-tested and reasoned about alone
//! (docs/architecture.md).
//! A grep over their source, so it stays true as code is added.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

/// Modules of the pure core: the file `<name>.rs` and the folder `<name>/`.
const PURE: &[&str] = &[
    "render",
    "catalog",
    "plan",
    "cost",
    "gate",
    "sla",
    "seal",
    "state",
    "redact",
    "manifest",
    "retention",
    "runner_job",
    "drift",
    "spend",
    "fair",
    "policy",
    "markup",
];

/// Paths a pure module must not use.
const FORBIDDEN: &[&str] = &[
    "kube::",
    "use kube",
    "aws_sdk",
    "aws_config",
    "aws_smithy",
    "tokio::",
    "hyper",
    "lettre",
    "std::process",
    "std::net",
    "crate::terraform",
    "crate::reconcile",
    "crate::admission",
    "crate::notify",
    "crate::cli",
    "crate::telemetry",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_pure_core_uses_no_client_network_process_or_runner() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    for module in PURE {
        let file = src.join(format!("{module}.rs"));
        assert!(
            file.is_file(),
            "{} is listed as pure but does not exist",
            file.display()
        );
        files.push(file);
        rust_files(&src.join(module), &mut files);
    }
    let mut found = Vec::new();
    for file in files {
        let relative = file
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            for forbidden in FORBIDDEN {
                if code.contains(forbidden) {
                    found.push(format!(
                        "{relative}:{}: {forbidden}: {}",
                        n + 1,
                        code.trim()
                    ));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "the pure core reaches outside itself:\n{}",
        found.join("\n")
    );
}

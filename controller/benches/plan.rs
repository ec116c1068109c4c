//! `tollgate plan` (render, init, plan -out, show -json, price) against raw
//! `terraform init && terraform plan -out` on the same rendered directory, measured in the
//! same run, alternating so both see the same machine load. Prints the ratio (goal ≤ 1.15×).
//!
//!     cargo bench --bench plan            # needs terraform on PATH or TOLLGATE_TERRAFORM

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tollgate::api::BackendType;
use tollgate::catalog::Catalog;
use tollgate::cli::plan_project;
use tollgate::cost::Usage;
use tollgate::manifest::read_project;
use tollgate::render::{RenderOptions, render};
use tollgate::terraform::{RunnerConfig, TerraformRunner};

const ROUNDS: usize = 7;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[allow(clippy::expect_used, clippy::panic)]
fn raw_terraform(binary: &Path, dir: &Path, with_show: bool) {
    let mut steps = vec![
        &["init", "-input=false", "-no-color"][..],
        &["plan", "-input=false", "-no-color", "-out=tfplan"][..],
    ];
    if with_show {
        steps.push(&["show", "-json", "tfplan"][..]);
    }
    for args in steps {
        let status = Command::new(binary)
            .arg(format!("-chdir={}", dir.display()))
            .args(args)
            .env("TF_IN_AUTOMATION", "1")
            .stdout(std::process::Stdio::null())
            .status()
            .expect("run terraform");
        assert!(status.success(), "terraform {args:?} failed");
    }
}

#[tokio::main]
#[allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // a benchmark that cannot run must stop
async fn main() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let project = read_project(&repo.join("examples/demo/project.yaml")).expect("demo project");
    let catalog = Catalog::load(&repo.join("modules")).expect("catalog");
    let config = RunnerConfig::from_env();
    let binary: PathBuf = config.binary.clone();
    let runner = TerraformRunner::new(config).expect("runner");
    runner
        .ensure_supported()
        .await
        .expect("a supported terraform");
    let scratch = tempfile::tempdir().expect("temp dir");
    let (mut ours, mut raw, mut raw_show) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let ours_dir = scratch.path().join(format!("ours-{round}"));
        let raw_dir = scratch.path().join(format!("raw-{round}"));
        let raw_show_dir = scratch.path().join(format!("raw-show-{round}"));
        for dir in [&raw_dir, &raw_show_dir] {
            render(
                &project,
                &catalog,
                &RenderOptions {
                    backend_override: Some(BackendType::Local),
                },
            )
            .expect("render")
            .write_to(dir)
            .expect("write");
        }
        let run_ours = async {
            let start = Instant::now();
            plan_project(
                &project,
                &catalog,
                &ours_dir,
                BackendType::Local,
                &Usage::none(),
                &runner,
            )
            .await
            .expect("tollgate plan");
            start.elapsed()
        };
        let run_raw = |dir: &Path, with_show: bool| {
            let start = Instant::now();
            raw_terraform(&binary, dir, with_show);
            start.elapsed()
        };
        if round % 2 == 0 {
            ours.push(run_ours.await);
            raw.push(run_raw(&raw_dir, false));
            raw_show.push(run_raw(&raw_show_dir, true));
        } else {
            raw_show.push(run_raw(&raw_show_dir, true));
            raw.push(run_raw(&raw_dir, false));
            ours.push(run_ours.await);
        }
    }
    let (ours, raw, raw_show) = (median(ours), median(raw), median(raw_show));
    println!("tollgate plan (render+init+plan+show+price): median {ours:?} over {ROUNDS} rounds");
    println!("raw terraform init && plan:                  median {raw:?} over {ROUNDS} rounds");
    println!(
        "raw terraform init && plan && show -json:    median {raw_show:?} over {ROUNDS} rounds"
    );
    println!(
        "ratio vs init+plan: {:.2}x (goal <= 1.15x)",
        ours.as_secs_f64() / raw.as_secs_f64()
    );
    println!(
        "ratio vs init+plan+show -json (the same Terraform work): {:.2}x",
        ours.as_secs_f64() / raw_show.as_secs_f64()
    );
}

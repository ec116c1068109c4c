//! `tollgate plan` (render, init if needed, plan -out, show -json, price) against raw
//! `terraform init && terraform plan -out` on the same rendered directory, measured in the
//! same run, alternating so both see the same machine load. Two cases, each with its ratio
//! (goal ≤ 1.15×):
//!
//! - **first plan**: a fresh directory each round (init must run);
//! - **re-plan**: the same directory planned again after an input changed, which is what
//!   the controller does on every spec change (raw Terraform runs `init` every time, as
//!   pipelines do; tollgate skips it when the init-relevant configuration is unchanged).
//!
//!     cargo bench --bench plan            # needs terraform on PATH or TOLLGATE_TERRAFORM

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tollgate::api::{BackendType, Project};
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
fn raw_terraform(binary: &Path, dir: &Path, with_show: bool) -> Duration {
    let start = Instant::now();
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
    start.elapsed()
}

#[allow(clippy::expect_used)]
fn render_into(project: &Project, catalog: &Catalog, dir: &Path) {
    render(
        project,
        catalog,
        &RenderOptions {
            backend_override: Some(BackendType::Local),
            ..Default::default()
        },
    )
    .expect("render")
    .write_to(dir)
    .expect("write");
}

/// The demo Project with a different greeting: an input change, as a spec edit makes.
#[allow(clippy::expect_used)]
fn with_greeting(project: &Project, round: usize) -> Project {
    let mut changed = project.clone();
    changed.spec.components[0].inputs.insert(
        "greeting".into(),
        serde_json::json!(format!("hello, round {round}")),
    );
    changed
}

struct Case {
    ours: Vec<Duration>,
    raw: Vec<Duration>,
    raw_show: Vec<Duration>,
}

impl Case {
    fn new() -> Self {
        Self {
            ours: Vec::new(),
            raw: Vec::new(),
            raw_show: Vec::new(),
        }
    }

    fn report(self, name: &str) {
        let (ours, raw, raw_show) = (median(self.ours), median(self.raw), median(self.raw_show));
        println!("{name}:");
        println!("  tollgate plan (render+init if needed+plan+show+price): median {ours:?}");
        println!("  raw terraform init && plan:                           median {raw:?}");
        println!("  raw terraform init && plan && show -json:             median {raw_show:?}");
        println!(
            "  ratio vs init+plan: {:.2}x (goal <= 1.15x); vs init+plan+show -json: {:.2}x",
            ours.as_secs_f64() / raw.as_secs_f64(),
            ours.as_secs_f64() / raw_show.as_secs_f64()
        );
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
    let ours = |project: Project, dir: PathBuf| {
        let (catalog, runner) = (&catalog, &runner);
        async move {
            let start = Instant::now();
            plan_project(
                &project,
                catalog,
                &dir,
                BackendType::Local,
                &Usage::none(),
                runner,
            )
            .await
            .expect("tollgate plan");
            start.elapsed()
        }
    };

    let mut first = Case::new();
    for round in 0..ROUNDS {
        let dir = |what: &str| scratch.path().join(format!("first-{what}-{round}"));
        for raw_dir in [dir("raw"), dir("raw-show")] {
            render_into(&project, &catalog, &raw_dir);
        }
        if round % 2 == 0 {
            first.ours.push(ours(project.clone(), dir("ours")).await);
            first.raw.push(raw_terraform(&binary, &dir("raw"), false));
            first
                .raw_show
                .push(raw_terraform(&binary, &dir("raw-show"), true));
        } else {
            first
                .raw_show
                .push(raw_terraform(&binary, &dir("raw-show"), true));
            first.raw.push(raw_terraform(&binary, &dir("raw"), false));
            first.ours.push(ours(project.clone(), dir("ours")).await);
        }
    }

    let mut replan = Case::new();
    let dir = |what: &str| scratch.path().join(format!("replan-{what}"));
    // Round 0 only prepares the directories; it is not measured.
    for round in 0..=ROUNDS {
        let changed = with_greeting(&project, round);
        for raw_dir in [dir("raw"), dir("raw-show")] {
            render_into(&changed, &catalog, &raw_dir);
        }
        let (ours_time, raw_time, raw_show_time) = if round % 2 == 0 {
            let ours_time = ours(changed, dir("ours")).await;
            let raw_time = raw_terraform(&binary, &dir("raw"), false);
            (
                ours_time,
                raw_time,
                raw_terraform(&binary, &dir("raw-show"), true),
            )
        } else {
            let raw_show_time = raw_terraform(&binary, &dir("raw-show"), true);
            let raw_time = raw_terraform(&binary, &dir("raw"), false);
            (ours(changed, dir("ours")).await, raw_time, raw_show_time)
        };
        if round > 0 {
            replan.ours.push(ours_time);
            replan.raw.push(raw_time);
            replan.raw_show.push(raw_show_time);
        }
    }

    println!("{ROUNDS} rounds each, medians, Terraform {binary:?}");
    first.report("first plan (fresh directory)");
    replan.report("re-plan after an input change (same directory)");
}

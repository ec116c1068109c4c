//! `tollgate plan` and `tollgate cost`: offline planning and pricing.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::json;

use super::CliError;
use super::render::{BackendArg, load_checked};
use crate::api::{BackendType, Project};
use crate::catalog::Catalog;
use crate::cost::{self, Estimate, PriceBook, Usage};
use crate::plan::{Plan, PlanSummary, SavedPlan};
use crate::render::{RenderOptions, render};
use crate::terraform::{
    InitOptions, PlanRequest, PlanStatus as TfPlanStatus, RunnerConfig, TerraformRunner, Workspace,
};

/// Name of the saved plan file in the working directory.
pub const PLAN_FILE: &str = "tfplan";
/// Name of the redacted plan JSON written next to it.
pub const REDACTED_PLAN_FILE: &str = "plan.redacted.json";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
    Markdown,
}

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// Project manifest (YAML).
    #[arg(short = 'f', long = "file", value_name = "PROJECT.yaml")]
    file: PathBuf,
    /// Working directory (default: `.tollgate/<namespace>/<name>`).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Backend to plan with (default: `local`: the CLI runs outside the cluster).
    #[arg(long, value_enum)]
    backend: Option<BackendArg>,
    /// Usage file for usage-based prices (see docs/cost.md).
    #[arg(long, value_name = "FILE")]
    usage: Option<PathBuf>,
    /// Output format (`markdown` prints the cost part as Markdown).
    #[arg(long, value_enum, default_value = "table")]
    output: OutputFormat,
    /// Price cache written by `tollgate pricebook refresh`: its rows override the embedded price book.
    #[arg(long, value_name = "FILE", env = "TOLLGATE_PRICE_CACHE")]
    price_cache: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct CostArgs {
    /// A plan as `terraform show -json PLANFILE` prints it.
    #[arg(value_name = "PLAN.json")]
    plan: PathBuf,
    /// Usage file for usage-based prices (see docs/cost.md).
    #[arg(long, value_name = "FILE")]
    usage: Option<PathBuf>,
    /// Region when the plan does not configure the AWS provider's region.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    output: OutputFormat,
    /// Price cache written by `tollgate pricebook refresh`: its rows override the embedded price book.
    #[arg(long, value_name = "FILE", env = "TOLLGATE_PRICE_CACHE")]
    price_cache: Option<PathBuf>,
    /// After the table, show per component the price book row used (key, region, source,
    /// date) and every assumption behind its quantity.
    #[arg(long)]
    explain: bool,
}

fn read(path: &Path) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(|source| CliError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn usage(path: Option<&Path>) -> Result<Usage, CliError> {
    match path {
        Some(p) => Ok(Usage::from_yaml_str(&read(p)?)?),
        None => Ok(Usage::none()),
    }
}

fn print_estimate(estimate: &Estimate, format: OutputFormat) -> Result<(), CliError> {
    match format {
        OutputFormat::Table => out!("{}", estimate.render_table()),
        OutputFormat::Markdown => out!("{}", estimate.render_markdown()),
        OutputFormat::Json => outln!("{}", estimate.to_json()),
    }
}

pub fn run_cost(args: &CostArgs) -> Result<ExitCode, CliError> {
    let book = cost::load_price_book(args.price_cache.as_deref())?;
    let plan = read(&args.plan)?;
    let estimate =
        cost::estimate_with_book(&plan, &args.region, &usage(args.usage.as_deref())?, book)?;
    print_estimate(&estimate, args.output)?;
    if args.explain && args.output != OutputFormat::Json {
        out!("\n{}", estimate.render_explain())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// What `tollgate plan` produced.
pub struct PlanReport {
    /// sha256 of the rendered inputs.
    pub inputs_digest: String,
    /// Whether the plan changes anything.
    pub status: TfPlanStatus,
    /// The saved plan file and its digest.
    pub saved: SavedPlan,
    /// What it changes.
    pub summary: PlanSummary,
    /// What it costs.
    pub estimate: Estimate,
}

/// Renders `project` into `dir`, runs `terraform init` and `plan -out`, and prices the plan:
/// the whole of `tollgate plan`, as a library call.
pub async fn plan_project(
    project: &Project,
    catalog: &Catalog,
    dir: &Path,
    backend: BackendType,
    usage: &Usage,
    runner: &TerraformRunner,
) -> Result<PlanReport, CliError> {
    let book = cost::price_book()?;
    plan_project_with_book(project, catalog, dir, backend, usage, book, runner).await
}

/// [`plan_project`] priced with a given price book (e.g. one with a price cache on top).
pub async fn plan_project_with_book(
    project: &Project,
    catalog: &Catalog,
    dir: &Path,
    backend: BackendType,
    usage: &Usage,
    book: &PriceBook,
    runner: &TerraformRunner,
) -> Result<PlanReport, CliError> {
    let rendered = render(
        project,
        catalog,
        &RenderOptions {
            backend_override: Some(backend),
            // Offline, nobody mints credentials for Terraform: its AWS provider assumes
            // the Project's role itself, with whatever identity runs the CLI.
            provider_assumes_role: true,
            ..Default::default()
        },
    )?;
    rendered.write_to(dir)?;
    let ws = Workspace::new(dir);
    let outcome = runner
        .init_and_plan(&ws, &InitOptions::default(), &PlanRequest::new(PLAN_FILE))
        .await?;
    let json = runner.show_plan_json(&ws, &outcome.saved).await?;
    let plan = Plan::from_json(&json)?;
    let region = project
        .spec
        .cloud
        .as_ref()
        .map_or("us-east-1", |c| c.aws.region.as_str());
    let estimate = cost::estimate_with_book(&json, region, usage, book)?;
    let redacted_path = dir.join(REDACTED_PLAN_FILE);
    let redacted = plan.redacted(Some(ws.redactor()));
    std::fs::write(&redacted_path, format!("{:#}\n", redacted.as_value())).map_err(|source| {
        CliError::Io {
            path: redacted_path,
            source,
        }
    })?;
    Ok(PlanReport {
        inputs_digest: rendered.inputs_digest,
        status: outcome.status,
        saved: outcome.saved,
        summary: plan.summary(),
        estimate,
    })
}

pub async fn run_plan(args: &PlanArgs, catalog: Option<&Path>) -> Result<ExitCode, CliError> {
    let (project, catalog) =
        load_checked(&args.file, catalog, &crate::sla::SlaDefaults::default())?;
    let usage = usage(args.usage.as_deref())?;
    let book = cost::load_price_book(args.price_cache.as_deref())?;
    let namespace = project.metadata.namespace.as_deref().unwrap_or("default");
    let name = project.metadata.name.as_deref().unwrap_or("unnamed");
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(".tollgate").join(namespace).join(name));
    let runner = TerraformRunner::new(RunnerConfig::from_env())?;
    runner.ensure_supported().await?;
    let report = plan_project_with_book(
        &project,
        &catalog,
        &dir,
        args.backend.map_or(BackendType::Local, BackendType::from),
        &usage,
        book,
        &runner,
    )
    .await?;

    if args.output == OutputFormat::Json {
        let combined = json!({
            "project": format!("{namespace}/{name}"),
            "workingDirectory": dir,
            "inputsDigest": report.inputs_digest,
            "plan": {"id": report.saved.id, "digest": report.saved.digest, "file": report.saved.path, "status": report.status, "summary": report.summary},
            "cost": report.estimate.to_json_value(),
        });
        outln!("{combined:#}")?;
    } else {
        outln!(
            "project {namespace}/{name}: plan {} saved in {}",
            report.saved.id,
            report.saved.path.display()
        )?;
        outln!("  digest sha256:{}", report.saved.digest)?;
        print_summary(&report.summary)?;
        outln!()?;
        print_estimate(&report.estimate, args.output)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_summary(summary: &PlanSummary) -> Result<(), CliError> {
    if !summary.has_changes {
        return outln!("No changes. Infrastructure matches the Project.");
    }
    outln!(
        "  {} to add, {} to change, {} to replace, {} to destroy",
        summary.add,
        summary.change,
        summary.replace,
        summary.destroy
    )?;
    let a = &summary.addresses;
    for (action, addresses) in [
        ("create", &a.create),
        ("update", &a.update),
        ("replace", &a.replace),
        ("delete", &a.delete),
        ("read", &a.read),
    ] {
        for address in addresses {
            outln!("    {action:<8} {address}")?;
        }
    }
    if summary.risks.is_empty() {
        outln!("  risks: none")?;
    } else {
        outln!("  risks:")?;
        for risk in &summary.risks {
            outln!("    {:?} {}", risk.kind, risk.address)?;
        }
    }
    Ok(())
}

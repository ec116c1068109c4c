//! `tollgate policy eval` and `tollgate policy test`: the controller's policy checks,
//! offline.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;

use super::CliError;
use crate::gate::CostFacts;
use crate::policy::{self, PolicyConfig, PolicyError, PolicyInput, PolicySet, ProjectFacts};

/// Exit code of a broken policy or configuration (1 means violations / failed tests).
const BROKEN: u8 = 2;

#[derive(Debug, clap::Args)]
pub struct PolicyArgs {
    #[command(subcommand)]
    command: PolicyCommand,
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Judge a plan (`terraform show -json`) as the controller would: exit 0 no violation,
    /// 1 violations, 2 a broken policy.
    Eval(EvalArgs),
    /// Run Rego unit tests (rules named `test_*`) under a folder: exit 0 all pass, 1 a
    /// failure, 2 a broken policy.
    Test(TestArgs),
}

#[derive(Debug, clap::Args)]
struct EvalArgs {
    /// The plan, as `terraform show -json PLANFILE` prints it.
    #[arg(short = 'f', long = "file", value_name = "PLAN.json")]
    plan: PathBuf,
    /// The Project the plan belongs to (its namespace, name, environment and labels are
    /// `input.tollgate.project`).
    #[arg(long, value_name = "PROJECT.yaml")]
    project: Option<PathBuf>,
    /// A folder of `*.rego` policies evaluated with the built-in pack (repeatable).
    #[arg(long = "policy", value_name = "DIR")]
    policies: Vec<PathBuf>,
    /// The built-in pack's settings (the controller's `--policy-config`).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Monthly cost in USD to give policies as `input.tollgate.cost.monthly`.
    #[arg(long, value_name = "USD")]
    monthly_cost: Option<rust_decimal::Decimal>,
}

#[derive(Debug, clap::Args)]
struct TestArgs {
    /// Folder of policies and their `*_test.rego` files.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
}

pub fn run(args: &PolicyArgs) -> Result<ExitCode, CliError> {
    let outcome = match &args.command {
        PolicyCommand::Eval(args) => eval(args),
        PolicyCommand::Test(args) => test(&args.dir),
    };
    match outcome {
        Ok(code) => Ok(code),
        Err(Broken::Policy(err)) => {
            eprintln!("error: {err}");
            Ok(ExitCode::from(BROKEN))
        }
        Err(Broken::Cli(err)) => Err(err),
    }
}

enum Broken {
    Policy(PolicyError),
    Cli(CliError),
}

impl From<PolicyError> for Broken {
    fn from(err: PolicyError) -> Self {
        Broken::Policy(err)
    }
}

impl From<CliError> for Broken {
    fn from(err: CliError) -> Self {
        Broken::Cli(err)
    }
}

fn read(path: &Path) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(|source| CliError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn eval(args: &EvalArgs) -> Result<ExitCode, Broken> {
    let plan: serde_json::Value =
        serde_json::from_str(&read(&args.plan)?).map_err(|err| CliError::Plan(err.into()))?;
    let project = args
        .project
        .as_deref()
        .map(crate::manifest::read_project)
        .transpose()
        .map_err(CliError::from)?;
    let config = match &args.config {
        Some(path) => PolicyConfig::from_yaml(&path.display().to_string(), &read(path)?)?,
        None => PolicyConfig::default(),
    };
    let mut sources = Vec::new();
    for dir in &args.policies {
        sources.extend(policy::testing::read_dir(dir)?);
    }
    let set = PolicySet::new(sources, None, config);
    let no_labels = BTreeMap::new();
    let facts = match &project {
        Some(p) => ProjectFacts {
            namespace: p.metadata.namespace.as_deref().unwrap_or("default"),
            name: p.metadata.name.as_deref().unwrap_or_default(),
            environment: &p.spec.environment,
            labels: p.metadata.labels.as_ref().unwrap_or(&no_labels),
        },
        None => ProjectFacts {
            namespace: "default",
            name: "",
            environment: "",
            labels: &no_labels,
        },
    };
    let cost = args.monthly_cost.map(|monthly| CostFacts {
        monthly,
        ..CostFacts::default()
    });
    let findings = set.evaluate(&PolicyInput {
        plan: &plan,
        project: facts,
        cost: cost.as_ref(),
    })?;
    for finding in &findings.denied {
        outln!("DENY  {}: {}", finding.package, finding.message)?;
    }
    for finding in &findings.warned {
        outln!("WARN  {}: {}", finding.package, finding.message)?;
    }
    outln!(
        "{} violation(s), {} warning(s); policy set {}",
        findings.denied.len(),
        findings.warned.len(),
        set.digest()
    )?;
    Ok(if findings.denied.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn test(dir: &Path) -> Result<ExitCode, Broken> {
    let outcomes = policy::testing::run(dir)?;
    let mut failed = 0;
    for outcome in &outcomes {
        match &outcome.failure {
            None => outln!("PASS  {}", outcome.rule)?,
            Some(why) => {
                failed += 1;
                outln!("FAIL  {}: {why}", outcome.rule)?;
            }
        }
    }
    outln!("{} passed, {failed} failed", outcomes.len() - failed)?;
    Ok(if failed == 0 && !outcomes.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

//! `tollgate pricebook refresh`: current on-demand prices from the AWS Price List API
//! (`GetProducts`) into a local price cache, for `--price-cache` / `TOLLGATE_PRICE_CACHE`.

use std::path::PathBuf;
use std::process::ExitCode;

use super::CliError;
use crate::pricing_refresh::{self as refresh, RefreshOptions};

#[derive(Debug, clap::Args)]
pub struct PricebookArgs {
    #[command(subcommand)]
    command: PricebookCommand,
}

#[derive(Debug, clap::Subcommand)]
enum PricebookCommand {
    /// Fetch EC2, EBS, NAT gateway, ALB/NLB, RDS, S3, Fargate, CloudWatch, KMS, Secrets Manager
    /// and VPC endpoint prices with GetProducts into a cache file (same columns as the
    /// embedded price book; see docs/cost.md).
    Refresh(RefreshArgs),
}

#[derive(Debug, clap::Args)]
struct RefreshArgs {
    /// Region to fetch prices for (repeat for several).
    #[arg(long = "region", value_name = "REGION", required = true)]
    regions: Vec<String>,
    /// Cache file to write (replaced atomically).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Price List API endpoint (tests, emulators); default: the AWS endpoint of --api-region.
    #[arg(long, value_name = "URL")]
    endpoint_url: Option<String>,
    /// Region of the Price List API endpoint itself (us-east-1, eu-central-1, ap-south-1).
    #[arg(long, value_name = "REGION", default_value = refresh::DEFAULT_API_REGION)]
    api_region: String,
    /// Only these EC2 instance types, one query each (default: every Linux shared type).
    #[arg(long = "instance-type", value_name = "TYPE")]
    instance_types: Vec<String>,
    /// RDS engines to fetch (Terraform `engine` names).
    #[arg(long = "rds-engine", value_name = "ENGINE", default_values_t = ["mysql".to_string(), "postgres".to_string(), "mariadb".to_string()])]
    rds_engines: Vec<String>,
}

pub async fn run(args: &PricebookArgs) -> Result<ExitCode, CliError> {
    match &args.command {
        PricebookCommand::Refresh(args) => run_refresh(args).await,
    }
}

async fn run_refresh(args: &RefreshArgs) -> Result<ExitCode, CliError> {
    let client = refresh::client(args.endpoint_url.as_deref(), &args.api_region).await;
    let mut options = RefreshOptions::new(args.regions.clone());
    options.instance_types = args.instance_types.clone();
    options.rds_engines = args.rds_engines.clone();
    let refreshed = refresh::fetch(&client, &options).await?;
    refresh::write_cache(&args.out, &refreshed)?;
    for reason in &refreshed.skipped {
        eprintln!("skipped: {reason}");
    }
    outln!(
        "wrote {} prices for {} to {} ({} GetProducts calls, {} skipped, observed {})",
        refreshed.rows.len(),
        args.regions.join(", "),
        args.out.display(),
        refreshed.requests,
        refreshed.skipped.len(),
        refreshed.observed
    )?;
    Ok(ExitCode::SUCCESS)
}

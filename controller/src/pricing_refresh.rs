//! `tollgate pricebook refresh`: prices from the AWS Price List API (`GetProducts`) into
//! a local price cache.
//!
//! This is the shell around the cost engine, outside `cost` on purpose: it uses the AWS SDK
//! and the network, while `cost` stays offline (it reads the embedded book, plus a cache
//! file when one is given: `--price-cache` / `TOLLGATE_PRICE_CACHE`, loaded by
//! [`crate::cost::load_price_book`]). Only [`fetch`] (in `fetch.rs`) talks to the network;
//! the query table, product parsing and cache writing are plain functions tested beside
//! them.
//!
//! What is fetched, per region (see [`queries`]):
//!
//! | price book row | `GetProducts` service and filters |
//! |---|---|
//! | `ec2 instance:<type>` | `AmazonEC2`: location, operatingSystem=Linux, tenancy=Shared, preInstalledSw=NA, capacitystatus=Used (+ instanceType when asked for) |
//! | `ebs <type>:storage` | `AmazonEC2`: location, productFamily=Storage |
//! | `vpc nat-gateway:hour`, `nat-gateway:gb` | `AmazonEC2`: location, productFamily=NAT Gateway |
//! | `elb alb:hour`, `alb:capacity-unit` | `AWSELB`: location, productFamily=Load Balancer-Application |
//! | `elb nlb:hour`, `nlb:capacity-unit` | `AWSELB`: location, productFamily=Load Balancer-Network |
//! | `elb gwlb:hour`, `gwlb:capacity-unit` | `AWSELB`: location, productFamily=Load Balancer-Gateway |
//! | `ebs <type>:iops`, `gp3:throughput` | `AmazonEC2`: location, productFamily=System Operation / Provisioned Throughput |
//! | `rds instance:<engine>:<class>` | `AmazonRDS`: location, productFamily=Database Instance, databaseEngine, deploymentOption=Single-AZ |
//! | `rds storage:<type>`, `iops:<type>` | `AmazonRDS`: location, productFamily=Database Storage / Provisioned IOPS, databaseEngine |
//! | `s3 standard:storage`, `standard:put-requests`, `standard:get-requests` | `AmazonS3`: location + Standard storage attributes / request group |
//! | `fargate`, `cloudwatch`, `kms`, `secretsmanager`, `vpc endpoint-interface:*`, `public-ipv4:hour` | `AmazonECS`, `AmazonCloudWatch`, `awskms`, `AWSSecretsManager`, `AmazonVPC`: location; rows picked by usage type |
//!
//! Every product is checked again on our side (an emulator or a changed API may ignore a
//! filter), only on-demand prices with a `beginRange` of 0 are taken, and a key that two
//! products price differently is dropped and reported, never guessed.

mod cache;
mod fetch;
mod product;
mod query;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

use rust_decimal::Decimal;

pub use cache::{cache_csv, write_cache};
pub use fetch::{client, fetch};
pub use product::{Collector, rows_from_product};
pub use query::{Kind, Query, queries};

/// Region of the Price List API endpoint (it only exists in a few regions).
pub const DEFAULT_API_REGION: &str = "us-east-1";

/// Errors of the price refresh.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// A `GetProducts` call failed.
    #[error(
        "AWS Price List API GetProducts ({service_code}, {region}) failed: {message}; check the credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile, permission `pricing:GetProducts`), the network, or --endpoint-url"
    )]
    Api {
        /// Service code asked for.
        service_code: String,
        /// Price region asked for.
        region: String,
        /// The SDK's error, with its source chain.
        message: String,
    },
    /// A request could not be built (a bug in the query table).
    #[error(
        "cannot build the GetProducts request: {0}; this is a bug in tollgate, please report it"
    )]
    Request(String),
    /// No region given.
    #[error("no region to refresh; pass at least one `--region <code>` (e.g. us-east-1)")]
    NoRegion,
    /// The API returned nothing usable at all.
    #[error(
        "the AWS Price List API returned no usable price for {regions}; check the region codes and --endpoint-url (nothing was written)"
    )]
    Empty {
        /// The regions asked for.
        regions: String,
    },
    /// Writing the cache failed.
    #[error(
        "cannot write the price cache {path}: {source}; check that the directory exists and is writable"
    )]
    WriteCache {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// One price, owned (a row of the cache).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheRow {
    /// Pricer namespace (`ec2`, `ebs`, `vpc`, `elb`, `rds`).
    pub service: String,
    /// Region code.
    pub region: String,
    /// Dimension key, as in the embedded book.
    pub key: String,
    /// Unit, as in the embedded book.
    pub unit: String,
    /// USD per unit, as AWS published it.
    pub usd: Decimal,
    /// `AWS Price List API GetProducts (<service code>, <sku>)`.
    pub source: String,
    /// Fetch date, YYYY-MM-DD.
    pub observed: String,
}

/// What to refresh.
#[derive(Debug, Clone)]
pub struct RefreshOptions {
    /// Region codes to fetch prices for.
    pub regions: Vec<String>,
    /// EC2 instance types to ask for one by one (`instanceType` filter); empty: every
    /// Linux shared-tenancy type of the region in one paginated query.
    pub instance_types: Vec<String>,
    /// RDS engines (Terraform `engine` names: `mysql`, `postgres`, `mariadb`).
    pub rds_engines: Vec<String>,
    /// The date written into `observed` (YYYY-MM-DD).
    pub observed: String,
}

impl RefreshOptions {
    /// Defaults for `regions`: every instance type, MySQL/PostgreSQL/MariaDB, today (UTC).
    pub fn new(regions: Vec<String>) -> RefreshOptions {
        RefreshOptions {
            regions,
            instance_types: Vec::new(),
            rds_engines: vec!["mysql".into(), "postgres".into(), "mariadb".into()],
            observed: today(),
        }
    }
}

/// Today's date in UTC, YYYY-MM-DD.
pub fn today() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%d").to_string()
}

/// The result of a refresh.
#[derive(Debug, Clone, Default)]
pub struct Refreshed {
    /// Rows, sorted by service, region, key.
    pub rows: Vec<CacheRow>,
    /// Products or keys that were not taken, with the reason.
    pub skipped: Vec<String>,
    /// Number of `GetProducts` calls made (pages included).
    pub requests: usize,
    /// The fetch date.
    pub observed: String,
}

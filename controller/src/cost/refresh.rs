//! Optional refresh of prices from the AWS Price List API (`GetProducts`) into a local
//! price cache, and loading of the embedded price book with such a cache on top.
//!
//! The cost engine itself stays offline: it reads the embedded book, plus a cache file
//! when one is given (`--price-cache` / `TOLLGATE_PRICE_CACHE`). Only
//! `tollgate pricebook refresh` talks to the network.
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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use aws_sdk_pricing::types::{Filter, FilterType};
use rust_decimal::Decimal;
use serde_json::Value;

use super::pricebook::PriceBook;

/// The columns of a price book and of a price cache.
pub const HEADER: &str = "service,region,key,unit,usd,source,observed";

/// Region of the Price List API endpoint (it only exists in a few regions).
pub const DEFAULT_API_REGION: &str = "us-east-1";

/// Errors of the price refresh and of loading a price cache.
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
    /// Reading a cache file failed.
    #[error(
        "cannot read the price cache {path}: {source}; pass a file written by `tollgate pricebook refresh`"
    )]
    ReadCache {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A cache file is malformed.
    #[error(
        "the price cache {path} is invalid at line {line}: {message}; regenerate it with `tollgate pricebook refresh --out {path}`"
    )]
    Cache {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
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
    /// The embedded book is invalid (a build-time data bug).
    #[error(transparent)]
    Embedded(#[from] super::CostError),
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

/// What a query's products become.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// EC2 instance hours.
    Ec2Instance,
    /// EBS volume storage.
    EbsStorage,
    /// NAT gateway hours and data processed.
    NatGateway,
    /// Application Load Balancer hours and LCU-hours.
    Alb,
    /// Network Load Balancer hours and NLCU-hours.
    Nlb,
    /// Gateway Load Balancer hours and GLCU-hours.
    Gwlb,
    /// EBS provisioned IOPS (gp3, io1, io2 first tier) and gp3 throughput.
    EbsProvisioned,
    /// RDS instance hours (Single-AZ).
    RdsInstance,
    /// RDS storage and provisioned IOPS (Single-AZ).
    RdsStorage,
    /// S3 Standard storage (first tier).
    S3Storage,
    /// S3 Standard PUT/COPY/POST/LIST (Tier 1) and GET (Tier 2) requests.
    S3Requests,
    /// Fargate vCPU-hours and GB-hours, x86_64 and ARM.
    Fargate,
    /// CloudWatch Logs ingestion and storage, custom metrics.
    CloudWatch,
    /// KMS keys and requests.
    Kms,
    /// Secrets Manager secrets and API requests.
    SecretsManager,
    /// Interface VPC endpoint hours and data, in-use public IPv4 addresses.
    Vpc,
}

/// How many AWS units make one book unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scale {
    /// The same unit.
    One,
    /// The book prices per this many of AWS's units (requests per 1,000, say).
    Times(u32),
    /// AWS prices per this many of the book's units (GiBps-month vs MiBps-month).
    Over(u32),
}

impl Scale {
    fn apply(self, usd: Decimal) -> Decimal {
        match self {
            Scale::One => usd,
            Scale::Times(n) => usd * Decimal::from(n),
            Scale::Over(n) => usd / Decimal::from(n),
        }
    }

    fn describe(self) -> String {
        match self {
            Scale::One => String::new(),
            Scale::Times(n) => format!(", AWS unit price x {n}"),
            Scale::Over(n) => format!(", AWS unit price / {n}"),
        }
    }
}

/// A product the book takes by its usage type (compared without its region prefix): the
/// row it becomes, the units AWS may state its price in, and how the units convert.
struct UsageRow {
    kind: Kind,
    usage: &'static str,
    service: &'static str,
    key: &'static str,
    unit: &'static str,
    aws_units: &'static [&'static str],
    scale: Scale,
}

const HOURS: &[&str] = &["Hrs"];
const GB: &[&str] = &["GB"];
const GB_MONTH: &[&str] = &["GB-Mo"];
const REQUESTS: &[&str] = &["Requests"];
const IOPS_MONTH: &[&str] = &["IOPS-Mo"];
const FARGATE_HOURS: &[&str] = &["hours", "Hrs"];
const LCU_HOURS: &[&str] = &["LCU-Hrs", "NLCU-Hrs", "GLCU-Hrs"];

const fn row(
    kind: Kind,
    usage: &'static str,
    service: &'static str,
    key: &'static str,
    unit: &'static str,
    aws_units: &'static [&'static str],
    scale: Scale,
) -> UsageRow {
    UsageRow {
        kind,
        usage,
        service,
        key,
        unit,
        aws_units,
        scale,
    }
}

/// Every product the book takes by usage type. Names and units as AWS's offer files and
/// GetProducts responses spell them (see docs/cost.md for which have been seen in one).
#[rustfmt::skip]
const USAGE_ROWS: &[UsageRow] = &[
    row(Kind::EbsProvisioned, "EBS:VolumeP-IOPS.gp3", "ebs", "gp3:iops", "IOPS-month", IOPS_MONTH, Scale::One),
    row(Kind::EbsProvisioned, "EBS:VolumeP-IOPS.piops", "ebs", "io1:iops", "IOPS-month", IOPS_MONTH, Scale::One),
    row(Kind::EbsProvisioned, "EBS:VolumeP-IOPS.io2", "ebs", "io2:iops-tier1", "IOPS-month", IOPS_MONTH, Scale::One),
    row(Kind::EbsProvisioned, "EBS:VolumeP-Throughput.gp3", "ebs", "gp3:throughput", "MiBps-month", &["GiBps-mo"], Scale::Over(1024)),
    row(Kind::NatGateway, "NatGateway-Hours", "vpc", "nat-gateway:hour", "hour", HOURS, Scale::One),
    row(Kind::NatGateway, "NatGateway-Bytes", "vpc", "nat-gateway:gb", "GB", GB, Scale::One),
    row(Kind::Alb, "LoadBalancerUsage", "elb", "alb:hour", "hour", HOURS, Scale::One),
    row(Kind::Alb, "LCUUsage", "elb", "alb:capacity-unit", "LCU-hour", LCU_HOURS, Scale::One),
    row(Kind::Nlb, "LoadBalancerUsage", "elb", "nlb:hour", "hour", HOURS, Scale::One),
    row(Kind::Nlb, "LCUUsage", "elb", "nlb:capacity-unit", "NLCU-hour", LCU_HOURS, Scale::One),
    row(Kind::Gwlb, "LoadBalancerUsage", "elb", "gwlb:hour", "hour", HOURS, Scale::One),
    row(Kind::Gwlb, "LCUUsage", "elb", "gwlb:capacity-unit", "GLCU-hour", LCU_HOURS, Scale::One),
    row(Kind::RdsStorage, "RDS:GP2-Storage", "rds", "storage:gp2", "GB-month", GB_MONTH, Scale::One),
    row(Kind::RdsStorage, "RDS:GP3-Storage", "rds", "storage:gp3", "GB-month", GB_MONTH, Scale::One),
    row(Kind::RdsStorage, "RDS:PIOPS-Storage", "rds", "storage:io1", "GB-month", GB_MONTH, Scale::One),
    row(Kind::RdsStorage, "RDS:StorageUsage", "rds", "storage:standard", "GB-month", GB_MONTH, Scale::One),
    row(Kind::RdsStorage, "RDS:PIOPS", "rds", "iops:io1", "IOPS-month", IOPS_MONTH, Scale::One),
    row(Kind::RdsStorage, "RDS:GP3-PIOPS", "rds", "iops:gp3", "IOPS-month", IOPS_MONTH, Scale::One),
    row(Kind::S3Storage, "TimedStorage-ByteHrs", "s3", "standard:storage", "GB-month", GB_MONTH, Scale::One),
    row(Kind::S3Requests, "Requests-Tier1", "s3", "standard:put-requests", "1k requests", REQUESTS, Scale::Times(1_000)),
    row(Kind::S3Requests, "Requests-Tier2", "s3", "standard:get-requests", "1k requests", REQUESTS, Scale::Times(1_000)),
    row(Kind::Fargate, "Fargate-vCPU-Hours:perCPU", "fargate", "vcpu-hour:x86_64", "vCPU-hour", FARGATE_HOURS, Scale::One),
    row(Kind::Fargate, "Fargate-GB-Hours", "fargate", "gb-hour:x86_64", "GB-hour", FARGATE_HOURS, Scale::One),
    row(Kind::Fargate, "Fargate-ARM-vCPU-Hours:perCPU", "fargate", "vcpu-hour:arm64", "vCPU-hour", FARGATE_HOURS, Scale::One),
    row(Kind::Fargate, "Fargate-ARM-GB-Hours", "fargate", "gb-hour:arm64", "GB-hour", FARGATE_HOURS, Scale::One),
    row(Kind::CloudWatch, "DataProcessing-Bytes", "cloudwatch", "logs-ingestion", "GB", GB, Scale::One),
    row(Kind::CloudWatch, "TimedStorage-ByteHrs", "cloudwatch", "logs-storage", "GB-month", GB_MONTH, Scale::One),
    row(Kind::CloudWatch, "CW:MetricMonitorUsage", "cloudwatch", "metric", "metric-month", &["Metrics"], Scale::One),
    row(Kind::Kms, "KMS-Keys", "kms", "key", "key-month", &["Keys"], Scale::One),
    row(Kind::Kms, "KMS-Requests", "kms", "requests", "10k requests", REQUESTS, Scale::Times(10_000)),
    row(Kind::SecretsManager, "AWSSecretsManager-Secrets", "secretsmanager", "secret", "secret-month", &["Secrets"], Scale::One),
    row(Kind::SecretsManager, "AWSSecretsManager-Secret", "secretsmanager", "secret", "secret-month", &["Secrets"], Scale::One),
    row(Kind::SecretsManager, "AWSSecretsManagerAPIRequest", "secretsmanager", "api-requests", "10k requests", &["API Requests", "Requests"], Scale::Times(10_000)),
    row(Kind::Vpc, "VpcEndpoint-Hours", "vpc", "endpoint-interface:hour", "hour", HOURS, Scale::One),
    row(Kind::Vpc, "VpcEndpoint-Bytes", "vpc", "endpoint-interface:gb", "GB", GB, Scale::One),
    row(Kind::Vpc, "PublicIPv4:InUseAddress", "vpc", "public-ipv4:hour", "hour", HOURS, Scale::One),
];

/// A usage type without its region prefix: `USE2-LCUUsage`, `EU-LCUUsage` and
/// `us-west-2-KMS-Keys` name the same thing as `LCUUsage` and `KMS-Keys` (us-east-1 often has
/// no prefix). A prefix is the region code or one upper-case token (`USE2`, `EUC1`, `APS1`),
/// so `USE2-TS-LoadBalancerUsage` stays `TS-LoadBalancerUsage`, not `LoadBalancerUsage`.
fn usage_without_region<'a>(usage: &'a str, region: &str) -> &'a str {
    if let Some(rest) = usage.strip_prefix(region).and_then(|r| r.strip_prefix('-')) {
        return rest;
    }
    match usage.split_once('-') {
        Some((token, rest))
            if !token.is_empty()
                && token
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()) =>
        {
            rest
        }
        _ => usage,
    }
}

/// One `GetProducts` query (paginated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// What the products become.
    pub kind: Kind,
    /// Price region code.
    pub region: String,
    /// `ServiceCode`.
    pub service_code: &'static str,
    /// `TERM_MATCH` filters (field, value).
    pub filters: Vec<(String, String)>,
}

/// Region code → the Price List `location` name. Regions not listed are filtered by
/// `regionCode` instead.
const LOCATIONS: &[(&str, &str)] = &[
    ("af-south-1", "Africa (Cape Town)"),
    ("ap-east-1", "Asia Pacific (Hong Kong)"),
    ("ap-northeast-1", "Asia Pacific (Tokyo)"),
    ("ap-northeast-2", "Asia Pacific (Seoul)"),
    ("ap-northeast-3", "Asia Pacific (Osaka)"),
    ("ap-south-1", "Asia Pacific (Mumbai)"),
    ("ap-southeast-1", "Asia Pacific (Singapore)"),
    ("ap-southeast-2", "Asia Pacific (Sydney)"),
    ("ca-central-1", "Canada (Central)"),
    ("eu-central-1", "EU (Frankfurt)"),
    ("eu-north-1", "EU (Stockholm)"),
    ("eu-south-1", "EU (Milan)"),
    ("eu-west-1", "EU (Ireland)"),
    ("eu-west-2", "EU (London)"),
    ("eu-west-3", "EU (Paris)"),
    ("me-south-1", "Middle East (Bahrain)"),
    ("sa-east-1", "South America (Sao Paulo)"),
    ("us-east-1", "US East (N. Virginia)"),
    ("us-east-2", "US East (Ohio)"),
    ("us-west-1", "US West (N. California)"),
    ("us-west-2", "US West (Oregon)"),
];

fn region_filter(region: &str) -> (String, String) {
    match LOCATIONS.iter().find(|(code, _)| *code == region) {
        Some((_, location)) => ("location".into(), (*location).into()),
        None => ("regionCode".into(), region.into()),
    }
}

/// RDS `databaseEngine` values for Terraform engine names.
const RDS_ENGINES: &[(&str, &str)] = &[
    ("mariadb", "MariaDB"),
    ("mysql", "MySQL"),
    ("postgres", "PostgreSQL"),
];

fn f(field: &str, value: &str) -> (String, String) {
    (field.to_string(), value.to_string())
}

/// `TERM_MATCH` filters that narrow a query beyond its region (field, value).
type Narrowing = &'static [(&'static str, &'static str)];

/// Queries made once per region besides EC2 instances and RDS: services small enough per
/// region to take whole (the usage type picks the rows), or narrowed by attributes AWS sets
/// on every product of the kind.
#[rustfmt::skip]
const REGION_QUERIES: &[(Kind, &str, Narrowing)] = &[
    (Kind::EbsStorage, "AmazonEC2", &[("productFamily", "Storage")]),
    (Kind::EbsProvisioned, "AmazonEC2", &[("productFamily", "System Operation")]),
    (Kind::EbsProvisioned, "AmazonEC2", &[("productFamily", "Provisioned Throughput")]),
    (Kind::NatGateway, "AmazonEC2", &[("productFamily", "NAT Gateway")]),
    (Kind::Alb, "AWSELB", &[("productFamily", "Load Balancer-Application")]),
    (Kind::Nlb, "AWSELB", &[("productFamily", "Load Balancer-Network")]),
    (Kind::Gwlb, "AWSELB", &[("productFamily", "Load Balancer-Gateway")]),
    (Kind::S3Storage, "AmazonS3", &[("productFamily", "Storage"), ("storageClass", "General Purpose"), ("volumeType", "Standard")]),
    (Kind::S3Requests, "AmazonS3", &[("group", "S3-API-Tier1")]),
    (Kind::S3Requests, "AmazonS3", &[("group", "S3-API-Tier2")]),
    (Kind::Fargate, "AmazonECS", &[]),
    (Kind::CloudWatch, "AmazonCloudWatch", &[]),
    (Kind::Kms, "awskms", &[]),
    (Kind::SecretsManager, "AWSSecretsManager", &[]),
    (Kind::Vpc, "AmazonVPC", &[]),
];

/// The queries a refresh makes, in order.
pub fn queries(options: &RefreshOptions) -> Vec<Query> {
    let mut out = Vec::new();
    for region in &options.regions {
        let loc = region_filter(region);
        let ec2_base = vec![
            loc.clone(),
            f("operatingSystem", "Linux"),
            f("tenancy", "Shared"),
            f("preInstalledSw", "NA"),
            f("capacitystatus", "Used"),
        ];
        if options.instance_types.is_empty() {
            out.push(Query {
                kind: Kind::Ec2Instance,
                region: region.clone(),
                service_code: "AmazonEC2",
                filters: ec2_base,
            });
        } else {
            for instance_type in &options.instance_types {
                let mut filters = vec![f("instanceType", instance_type)];
                filters.extend(ec2_base.iter().cloned());
                out.push(Query {
                    kind: Kind::Ec2Instance,
                    region: region.clone(),
                    service_code: "AmazonEC2",
                    filters,
                });
            }
        }
        for &(kind, service_code, narrowing) in REGION_QUERIES {
            let mut filters = vec![loc.clone()];
            filters.extend(narrowing.iter().map(|(field, value)| f(field, value)));
            out.push(Query {
                kind,
                region: region.clone(),
                service_code,
                filters,
            });
        }
        for engine in &options.rds_engines {
            let Some((_, aws_engine)) = RDS_ENGINES.iter().find(|(tf, _)| tf == engine) else {
                continue;
            };
            out.push(Query {
                kind: Kind::RdsInstance,
                region: region.clone(),
                service_code: "AmazonRDS",
                filters: vec![
                    loc.clone(),
                    f("productFamily", "Database Instance"),
                    f("databaseEngine", aws_engine),
                    f("deploymentOption", "Single-AZ"),
                ],
            });
            for family in ["Database Storage", "Provisioned IOPS"] {
                out.push(Query {
                    kind: Kind::RdsStorage,
                    region: region.clone(),
                    service_code: "AmazonRDS",
                    filters: vec![
                        loc.clone(),
                        f("productFamily", family),
                        f("databaseEngine", aws_engine),
                    ],
                });
            }
        }
    }
    out
}

/// Builds a Price List client: region `api_region` (the API's, not the prices'), the
/// default credential chain, rustls (ring) HTTPS, and an endpoint override when given.
pub async fn client(endpoint_url: Option<&str>, api_region: &str) -> aws_sdk_pricing::Client {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http)
        .region(aws_config::Region::new(api_region.to_string()));
    if let Some(url) = endpoint_url {
        loader = loader.endpoint_url(url);
    }
    aws_sdk_pricing::Client::new(&loader.load().await)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}

/// Runs every query (following `NextToken`) and turns the products into rows.
pub async fn fetch(
    client: &aws_sdk_pricing::Client,
    options: &RefreshOptions,
) -> Result<Refreshed, RefreshError> {
    if options.regions.is_empty() {
        return Err(RefreshError::NoRegion);
    }
    let mut collector = Collector::default();
    let mut requests = 0usize;
    let queries = queries(options);
    for query in &queries {
        let filters = query
            .filters
            .iter()
            .map(|(field, value)| {
                Filter::builder()
                    .r#type(FilterType::TermMatch)
                    .field(field)
                    .value(value)
                    .build()
                    .map_err(|e| RefreshError::Request(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut next_token: Option<String> = None;
        loop {
            let response = client
                .get_products()
                .service_code(query.service_code)
                .format_version("aws_v1")
                .set_filters(Some(filters.clone()))
                .max_results(100)
                .set_next_token(next_token.clone())
                .send()
                .await
                .map_err(|e| RefreshError::Api {
                    service_code: query.service_code.to_string(),
                    region: query.region.clone(),
                    message: error_chain(&e),
                })?;
            requests += 1;
            for item in response.price_list() {
                collector.add(query, item, &options.observed);
            }
            match response.next_token() {
                Some(token) if !token.is_empty() && Some(token) != next_token.as_deref() => {
                    next_token = Some(token.to_string());
                }
                _ => break,
            }
        }
    }
    let mut refreshed = collector.finish(&options.observed);
    refreshed.requests = requests;
    let not_found = not_found(&refreshed.rows, &queries);
    refreshed.skipped.extend(not_found);
    if refreshed.rows.is_empty() {
        return Err(RefreshError::Empty {
            regions: options.regions.join(", "),
        });
    }
    Ok(refreshed)
}

/// The usage-type rows the queries looked for but no product gave, per region: a region
/// without the service, or a usage type AWS names differently (worth a look either way).
fn not_found(rows: &[CacheRow], queries: &[Query]) -> Vec<String> {
    let found: HashSet<(&str, &str, &str)> = rows
        .iter()
        .map(|r| (r.service.as_str(), r.region.as_str(), r.key.as_str()))
        .collect();
    let mut reported = HashSet::new();
    let mut out = Vec::new();
    for query in queries {
        for row in USAGE_ROWS.iter().filter(|row| row.kind == query.kind) {
            let region = query.region.as_str();
            if !found.contains(&(row.service, region, row.key))
                && reported.insert((row.service, region, row.key))
            {
                out.push(format!(
                    "{} {} in {region}: no product with usage type {} (not offered there, or named differently)",
                    row.service, row.key, row.usage
                ));
            }
        }
    }
    out
}

/// Collects rows, dropping keys that two products price differently.
#[derive(Debug, Default)]
pub struct Collector {
    rows: BTreeMap<(String, String, String), CacheRow>,
    conflicts: BTreeMap<(String, String, String), Vec<String>>,
    skipped: Vec<String>,
}

impl Collector {
    /// Adds the rows of one `PriceList` entry (a JSON document as a string).
    pub fn add(&mut self, query: &Query, price_list_item: &str, observed: &str) {
        match rows_from_product(query, price_list_item, observed) {
            Err(reason) => self.skipped.push(reason),
            Ok(rows) => {
                for row in rows {
                    let id = (row.service.clone(), row.region.clone(), row.key.clone());
                    if let Some(c) = self.conflicts.get_mut(&id) {
                        c.push(row.source);
                        continue;
                    }
                    match self.rows.get(&id) {
                        Some(existing) if existing.usd != row.usd => {
                            let existing = self.rows.remove(&id).map(|r| r.source);
                            self.conflicts
                                .insert(id, existing.into_iter().chain([row.source]).collect());
                        }
                        Some(_) => {}
                        None => {
                            self.rows.insert(id, row);
                        }
                    }
                }
            }
        }
    }

    /// The rows (sorted) and what was skipped.
    pub fn finish(self, observed: &str) -> Refreshed {
        let mut skipped = self.skipped;
        for ((service, region, key), sources) in self.conflicts {
            skipped.push(format!(
                "{service} {region} {key}: products disagree on the price ({}); left out",
                sources.join("; ")
            ));
        }
        Refreshed {
            rows: self.rows.into_values().collect(),
            skipped,
            requests: 0,
            observed: observed.to_string(),
        }
    }
}

fn attr<'a>(attributes: &'a Value, name: &str) -> Option<&'a str> {
    attributes.get(name).and_then(Value::as_str)
}

/// The on-demand price dimensions of a product: (unit, USD), those with `beginRange` 0.
fn on_demand_prices(doc: &Value) -> Vec<(String, Decimal)> {
    let mut out = Vec::new();
    let Some(terms) = doc.pointer("/terms/OnDemand").and_then(Value::as_object) else {
        return out;
    };
    for term in terms.values() {
        let Some(dims) = term.get("priceDimensions").and_then(Value::as_object) else {
            continue;
        };
        for dim in dims.values() {
            let begin = dim.get("beginRange").and_then(Value::as_str).unwrap_or("0");
            if begin.parse::<f64>().ok() != Some(0.0) {
                continue;
            }
            let unit = dim.get("unit").and_then(Value::as_str).unwrap_or("");
            let usd = dim
                .pointer("/pricePerUnit/USD")
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<Decimal>().ok());
            if let Some(usd) = usd {
                out.push((unit.to_string(), usd.normalize()));
            }
        }
    }
    out
}

/// EBS volume API name from the product (older products only carry `volumeType`).
fn ebs_volume_api_name(attributes: &Value) -> Option<&'static str> {
    const API_NAMES: &[&str] = &["standard", "gp2", "gp3", "io1", "io2", "st1", "sc1"];
    if let Some(name) = attr(attributes, "volumeApiName") {
        return API_NAMES.iter().copied().find(|n| *n == name);
    }
    match attr(attributes, "volumeType")? {
        "Magnetic" => Some("standard"),
        "General Purpose" => Some("gp2"),
        "Provisioned IOPS" => {
            // io2 carries volumeApiName everywhere; before it, piops was io1.
            let usage = attr(attributes, "usagetype").unwrap_or("");
            usage.ends_with("VolumeUsage.piops").then_some("io1")
        }
        "Throughput Optimized HDD" => Some("st1"),
        "Cold HDD" => Some("sc1"),
        _ => None,
    }
}

/// Turns one `PriceList` entry into price book rows (none when the product is not one
/// the book uses; `Err` with a reason when it should have been but cannot be read).
pub fn rows_from_product(
    query: &Query,
    price_list_item: &str,
    observed: &str,
) -> Result<Vec<CacheRow>, String> {
    let doc: Value = serde_json::from_str(price_list_item)
        .map_err(|e| format!("{}: a PriceList entry is not JSON: {e}", query.service_code))?;
    let product = doc.get("product").unwrap_or(&Value::Null);
    let attributes = product.get("attributes").unwrap_or(&Value::Null);
    let sku = product
        .get("sku")
        .and_then(Value::as_str)
        .unwrap_or("unknown SKU");
    let service_code = doc
        .get("serviceCode")
        .and_then(Value::as_str)
        .or_else(|| attr(attributes, "servicecode"))
        .unwrap_or(query.service_code);
    if service_code != query.service_code {
        return Ok(Vec::new());
    }
    // Keep the query's own filters honest: a product that does not match is ignored.
    for (field, value) in &query.filters {
        if field == "productFamily" {
            if product.get("productFamily").and_then(Value::as_str) != Some(value) {
                return Ok(Vec::new());
            }
        } else if let Some(actual) = attr(attributes, field)
            && actual != value
        {
            return Ok(Vec::new());
        }
    }
    let usage = attr(attributes, "usagetype").unwrap_or("");
    let wanted: Vec<Wanted> = match query.kind {
        Kind::Ec2Instance => {
            let Some(instance_type) = attr(attributes, "instanceType") else {
                return Ok(Vec::new());
            };
            if !usage.contains("BoxUsage:") {
                return Ok(Vec::new());
            }
            vec![Wanted::hourly("ec2", format!("instance:{instance_type}"))]
        }
        Kind::EbsStorage => {
            if !usage.contains("EBS:VolumeUsage") {
                return Ok(Vec::new());
            }
            match ebs_volume_api_name(attributes) {
                Some(name) => vec![Wanted {
                    service: "ebs",
                    key: format!("{name}:storage"),
                    unit: "GB-month",
                    aws_units: GB_MONTH,
                    scale: Scale::One,
                }],
                None => return Ok(Vec::new()),
            }
        }
        Kind::RdsInstance => {
            let (Some(class), Some(engine)) = (
                attr(attributes, "instanceType"),
                attr(attributes, "databaseEngine"),
            ) else {
                return Ok(Vec::new());
            };
            let Some((tf_engine, _)) = RDS_ENGINES.iter().find(|(_, aws)| *aws == engine) else {
                return Ok(Vec::new());
            };
            if !usage.contains("InstanceUsage:") || usage.contains("Multi-AZ") {
                return Ok(Vec::new());
            }
            vec![Wanted::hourly(
                "rds",
                format!("instance:{tf_engine}:{class}"),
            )]
        }
        kind => {
            // Multi-AZ storage and IOPS cost twice Single-AZ; the engine doubles itself.
            if usage.contains("Multi-AZ") {
                return Ok(Vec::new());
            }
            let name = usage_without_region(usage, &query.region);
            USAGE_ROWS
                .iter()
                .filter(|row| row.kind == kind && row.usage == name)
                .map(|row| Wanted {
                    service: row.service,
                    key: row.key.to_string(),
                    unit: row.unit,
                    aws_units: row.aws_units,
                    scale: row.scale,
                })
                .collect()
        }
    };
    let prices = on_demand_prices(&doc);
    let mut rows = Vec::new();
    for w in wanted {
        let (service, key) = (w.service, &w.key);
        let matching: Vec<&Decimal> = prices
            .iter()
            .filter(|(u, _)| w.aws_units.contains(&u.as_str()))
            .map(|(_, usd)| usd)
            .collect();
        let aws_unit = w.aws_units.join(" or ");
        let usd = match matching.as_slice() {
            [usd] => w.scale.apply(**usd).normalize(),
            [] => {
                return Err(format!(
                    "{} {sku} ({service} {key} in {}): no on-demand USD price per {aws_unit}",
                    query.service_code, query.region
                ));
            }
            _ => {
                return Err(format!(
                    "{} {sku} ({service} {key} in {}): several on-demand prices per {aws_unit}; left out",
                    query.service_code, query.region
                ));
            }
        };
        if usd.is_zero() {
            return Err(format!(
                "{} {sku} ({service} {key} in {}): price is 0; left out",
                query.service_code, query.region
            ));
        }
        let scale = w.scale.describe();
        rows.push(CacheRow {
            service: service.to_string(),
            region: query.region.clone(),
            key: w.key,
            unit: w.unit.to_string(),
            usd,
            source: format!(
                "AWS Price List API GetProducts ({}, {sku}{scale})",
                query.service_code
            ),
            observed: observed.to_string(),
        });
    }
    Ok(rows)
}

/// A row a product becomes, before its price is read.
struct Wanted {
    service: &'static str,
    key: String,
    unit: &'static str,
    aws_units: &'static [&'static str],
    scale: Scale,
}

impl Wanted {
    fn hourly(service: &'static str, key: String) -> Self {
        Self {
            service,
            key,
            unit: "hour",
            aws_units: HOURS,
            scale: Scale::One,
        }
    }
}

fn csv_field(value: &str) -> String {
    let clean: String = value
        .chars()
        .map(|c| match c {
            '"' => '\'',
            '\n' | '\r' => ' ',
            c => c,
        })
        .collect();
    if clean.contains(',') {
        format!("\"{clean}\"")
    } else {
        clean
    }
}

fn csv_line(fields: [&str; 7]) -> String {
    let mut line = fields.map(csv_field).join(",");
    line.push('\n');
    line
}

/// The cache file text: comments, `# version: cache:<date>`, the header, sorted rows.
pub fn cache_csv(refreshed: &Refreshed) -> String {
    let mut out = String::new();
    out.push_str(
        "# tollgate AWS price cache, written by `tollgate pricebook refresh` from the AWS Price List API.\n",
    );
    out.push_str(
        "# Rows override the embedded price book for the same service, region and key (see docs/cost.md).\n",
    );
    out.push_str(&format!("# version: cache:{}\n", refreshed.observed));
    out.push_str(HEADER);
    out.push('\n');
    let mut rows: Vec<&CacheRow> = refreshed.rows.iter().collect();
    rows.sort_by(|a, b| (&a.service, &a.region, &a.key).cmp(&(&b.service, &b.region, &b.key)));
    for row in rows {
        out.push_str(&csv_line([
            &row.service,
            &row.region,
            &row.key,
            &row.unit,
            &row.usd.to_string(),
            &row.source,
            &row.observed,
        ]));
    }
    out
}

/// Writes the cache atomically: a temporary file in the same directory, then a rename.
pub fn write_cache(path: &Path, refreshed: &Refreshed) -> Result<(), RefreshError> {
    let text = cache_csv(refreshed);
    let err = |source| RefreshError::WriteCache {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "price-cache.csv".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(err)
}

/// Books built from a cache, by cache text: a book is built (and its text kept) once per
/// distinct cache content, so loading the same cache again costs nothing.
static WITH_CACHE: OnceLock<Mutex<HashMap<String, &'static PriceBook>>> = OnceLock::new();

/// The embedded price book, or the embedded book with the rows of `cache` on top (a row
/// of the cache replaces the embedded row with the same service, region and key, or adds
/// one). The version is then `<embedded>+cache:<date>`.
pub fn load_price_book(cache: Option<&Path>) -> Result<&'static PriceBook, RefreshError> {
    let embedded = super::pricebook::embedded()?;
    let Some(path) = cache else {
        return Ok(embedded);
    };
    let text = std::fs::read_to_string(path).map_err(|source| RefreshError::ReadCache {
        path: path.to_path_buf(),
        source,
    })?;
    let books = WITH_CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(book) = books.lock().ok().and_then(|b| b.get(&text).copied()) {
        return Ok(book);
    }
    let book = merge(embedded, &text).map_err(|(line, message)| RefreshError::Cache {
        path: path.to_path_buf(),
        line,
        message,
    })?;
    if let Ok(mut b) = books.lock() {
        b.insert(text, book);
    }
    Ok(book)
}

fn leak(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}

fn merge(embedded: &PriceBook, cache_text: &str) -> Result<&'static PriceBook, (usize, String)> {
    let cache = PriceBook::parse(leak(cache_text.to_string())).map_err(|e| match e {
        super::CostError::PriceBook { line, message } => (line, message),
        other => (0, other.to_string()),
    })?;
    let version = match cache.version() {
        "unversioned" => "cache".to_string(),
        v if v.starts_with("cache:") => v.to_string(),
        v => format!("cache:{v}"),
    };
    let mut rows: BTreeMap<(&str, &str, &str), [String; 7]> = BTreeMap::new();
    for book in [embedded, &cache] {
        for r in book.rows() {
            rows.insert(
                (r.service, r.region, r.key),
                [
                    r.service.to_string(),
                    r.region.to_string(),
                    r.key.to_string(),
                    r.unit.to_string(),
                    r.usd.to_string(),
                    r.source.to_string(),
                    r.observed.to_string(),
                ],
            );
        }
    }
    let mut text = format!("# version: {}+{version}\n{HEADER}\n", embedded.version());
    for fields in rows.values() {
        text.push_str(&csv_line([
            &fields[0], &fields[1], &fields[2], &fields[3], &fields[4], &fields[5], &fields[6],
        ]));
    }
    let merged = PriceBook::parse(leak(text)).map_err(|e| (0, e.to_string()))?;
    Ok(Box::leak(Box::new(merged)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn page_items(page: &str) -> Vec<String> {
        let v: Value = serde_json::from_str(page).unwrap();
        v["PriceList"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    }

    fn query(kind: Kind, region: &str, service_code: &'static str) -> Query {
        queries(&RefreshOptions {
            regions: vec![region.into()],
            instance_types: Vec::new(),
            rds_engines: vec!["mysql".into()],
            observed: "2026-11-25".into(),
        })
        .into_iter()
        .find(|q| q.kind == kind && q.service_code == service_code)
        .unwrap()
    }

    #[test]
    fn pricing_refresh_parses_the_aws_cli_documentation_example() {
        // The EBS example output of `aws pricing get-products` (AWS CLI documentation).
        let page = include_str!("../../tests/fixtures/pricing/ebs-ap-southeast-1-page1.json");
        let q = query(Kind::EbsStorage, "ap-southeast-1", "AmazonEC2");
        let mut c = Collector::default();
        for item in page_items(page) {
            c.add(&q, &item, "2026-11-25");
        }
        let r = c.finish("2026-11-25");
        assert_eq!(r.rows.len(), 1, "{r:?}");
        let row = &r.rows[0];
        assert_eq!(
            (row.service.as_str(), row.region.as_str(), row.key.as_str()),
            ("ebs", "ap-southeast-1", "io1:storage")
        );
        assert_eq!(row.unit, "GB-month");
        assert_eq!(row.usd, "0.138".parse::<Decimal>().unwrap());
        assert_eq!(
            row.source,
            "AWS Price List API GetProducts (AmazonEC2, 3MKHN58N7RDDVGKJ)"
        );
    }

    #[test]
    fn pricing_refresh_queries_carry_the_documented_filters() {
        let opts = RefreshOptions {
            regions: vec!["us-east-1".into(), "xx-new-1".into()],
            instance_types: vec!["t3.micro".into()],
            rds_engines: vec!["postgres".into(), "oracle-ee".into()],
            observed: "2026-11-25".into(),
        };
        let qs = queries(&opts);
        // per region: ec2 (one type); the 15 REGION_QUERIES; rds instances, storage and
        // IOPS (postgres only)
        assert_eq!(qs.len(), 38);
        let ec2 = &qs[0];
        for filter in [
            ("instanceType", "t3.micro"),
            ("location", "US East (N. Virginia)"),
            ("operatingSystem", "Linux"),
            ("tenancy", "Shared"),
            ("preInstalledSw", "NA"),
            ("capacitystatus", "Used"),
        ] {
            assert!(ec2.filters.contains(&f(filter.0, filter.1)), "{filter:?}");
        }
        assert!(qs[19].filters.contains(&f("regionCode", "xx-new-1")));
        let rds_storage: Vec<&Query> = qs[..19]
            .iter()
            .filter(|q| q.kind == Kind::RdsStorage)
            .collect();
        assert_eq!(rds_storage.len(), 2);
        assert!(
            rds_storage
                .iter()
                .all(|q| q.filters.contains(&f("databaseEngine", "PostgreSQL")))
        );
    }

    #[test]
    fn pricing_refresh_conflicting_products_are_left_out() {
        let q = query(Kind::NatGateway, "us-east-1", "AmazonEC2");
        let doc = |sku: &str, usd: &str| {
            serde_json::json!({
                "product": {"productFamily": "NAT Gateway", "sku": sku,
                    "attributes": {"usagetype": "NatGateway-Hours", "location": "US East (N. Virginia)", "servicecode": "AmazonEC2"}},
                "serviceCode": "AmazonEC2",
                "terms": {"OnDemand": {"T": {"priceDimensions": {"D": {"unit": "Hrs", "beginRange": "0", "endRange": "Inf", "pricePerUnit": {"USD": usd}}}}}}
            })
            .to_string()
        };
        let mut c = Collector::default();
        c.add(&q, &doc("A", "0.0450000000"), "2026-11-25");
        c.add(&q, &doc("B", "0.045"), "2026-11-25");
        assert_eq!(c.finish("d").rows.len(), 1, "equal prices agree");
        let mut c = Collector::default();
        c.add(&q, &doc("A", "0.045"), "2026-11-25");
        c.add(&q, &doc("B", "0.05"), "2026-11-25");
        let r = c.finish("d");
        assert!(r.rows.is_empty());
        assert!(r.skipped[0].contains("disagree"), "{:?}", r.skipped);
    }

    /// A product as GetProducts returns it for query `q` (carrying the attributes the query
    /// filters on), with one on-demand price dimension.
    fn product(q: &Query, usage: &str, unit: &str, usd: &str) -> String {
        let mut doc = serde_json::json!({
            "product": {"sku": "SKU1", "attributes": {"usagetype": usage, "servicecode": q.service_code}},
            "serviceCode": q.service_code,
            "terms": {"OnDemand": {"T": {"priceDimensions": {"D": {
                "unit": unit, "beginRange": "0", "endRange": "Inf",
                "pricePerUnit": {"USD": usd}}}}}}
        });
        for (field, value) in &q.filters {
            if field == "productFamily" {
                doc["product"]["productFamily"] = Value::String(value.clone());
            } else {
                doc["product"]["attributes"][field] = Value::String(value.clone());
            }
        }
        doc.to_string()
    }

    #[test]
    fn pricing_refresh_usage_types_become_rows_in_book_units() {
        // Usage types and units as AWS's offer files and GetProducts responses spell them.
        let cases = [
            // kind, service code, region, usagetype, AWS unit, AWS USD, book key, book USD
            (
                Kind::Fargate,
                "AmazonECS",
                "ap-southeast-1",
                "APS1-Fargate-ARM-vCPU-Hours:perCPU",
                "hours",
                "0.0404500000",
                "vcpu-hour:arm64",
                "0.04045",
            ),
            (
                Kind::Fargate,
                "AmazonECS",
                "ap-southeast-1",
                "APS1-Fargate-ARM-GB-Hours",
                "hours",
                "0.0044200000",
                "gb-hour:arm64",
                "0.00442",
            ),
            (
                Kind::Fargate,
                "AmazonECS",
                "us-east-2",
                "USE2-Fargate-vCPU-Hours:perCPU",
                "hours",
                "0.0404800000",
                "vcpu-hour:x86_64",
                "0.04048",
            ),
            (
                Kind::S3Storage,
                "AmazonS3",
                "us-east-2",
                "USE2-TimedStorage-ByteHrs",
                "GB-Mo",
                "0.0230000000",
                "standard:storage",
                "0.023",
            ),
            (
                Kind::S3Requests,
                "AmazonS3",
                "us-west-2",
                "USW2-Requests-Tier1",
                "Requests",
                "0.0000050000",
                "standard:put-requests",
                "0.005",
            ),
            (
                Kind::S3Requests,
                "AmazonS3",
                "us-west-2",
                "USW2-Requests-Tier2",
                "Requests",
                "0.0000004000",
                "standard:get-requests",
                "0.0004",
            ),
            (
                Kind::CloudWatch,
                "AmazonCloudWatch",
                "ap-southeast-1",
                "APS1-DataProcessing-Bytes",
                "GB",
                "0.7000000000",
                "logs-ingestion",
                "0.7",
            ),
            (
                Kind::CloudWatch,
                "AmazonCloudWatch",
                "ap-southeast-1",
                "APS1-TimedStorage-ByteHrs",
                "GB-Mo",
                "0.0300000000",
                "logs-storage",
                "0.03",
            ),
            (
                Kind::CloudWatch,
                "AmazonCloudWatch",
                "us-west-2",
                "USW2-CW:MetricMonitorUsage",
                "Metrics",
                "0.3000000000",
                "metric",
                "0.3",
            ),
            (
                Kind::RdsStorage,
                "AmazonRDS",
                "ap-southeast-1",
                "APS1-RDS:GP3-Storage",
                "GB-Mo",
                "0.1380000000",
                "storage:gp3",
                "0.138",
            ),
            (
                Kind::RdsStorage,
                "AmazonRDS",
                "us-east-1",
                "RDS:GP2-Storage",
                "GB-Mo",
                "0.1150000000",
                "storage:gp2",
                "0.115",
            ),
            (
                Kind::Kms,
                "awskms",
                "us-west-2",
                "us-west-2-KMS-Keys",
                "Keys",
                "1.0000000000",
                "key",
                "1",
            ),
            (
                Kind::Kms,
                "awskms",
                "us-west-2",
                "us-west-2-KMS-Requests",
                "Requests",
                "0.0000030000",
                "requests",
                "0.03",
            ),
            (
                Kind::SecretsManager,
                "AWSSecretsManager",
                "ap-southeast-1",
                "APS1-AWSSecretsManager-Secret",
                "Secrets",
                "0.4000000000",
                "secret",
                "0.4",
            ),
            (
                Kind::SecretsManager,
                "AWSSecretsManager",
                "us-west-2",
                "USW2-AWSSecretsManager-Secrets",
                "Secrets",
                "0.4000000000",
                "secret",
                "0.4",
            ),
            (
                Kind::Vpc,
                "AmazonVPC",
                "ap-southeast-1",
                "APS1-VpcEndpoint-Hours",
                "Hrs",
                "0.0130000000",
                "endpoint-interface:hour",
                "0.013",
            ),
            (
                Kind::Vpc,
                "AmazonVPC",
                "ap-southeast-1",
                "APS1-PublicIPv4:InUseAddress",
                "Hrs",
                "0.0050000000",
                "public-ipv4:hour",
                "0.005",
            ),
            (
                Kind::EbsProvisioned,
                "AmazonEC2",
                "us-west-2",
                "USW2-EBS:VolumeP-Throughput.gp3",
                "GiBps-mo",
                "40.9600000000",
                "gp3:throughput",
                "0.04",
            ),
            (
                Kind::EbsProvisioned,
                "AmazonEC2",
                "us-west-2",
                "USW2-EBS:VolumeP-IOPS.gp3",
                "IOPS-Mo",
                "0.0050000000",
                "gp3:iops",
                "0.005",
            ),
            (
                Kind::Nlb,
                "AWSELB",
                "us-east-2",
                "USE2-LoadBalancerUsage",
                "Hrs",
                "0.0225000000",
                "nlb:hour",
                "0.0225",
            ),
            (
                Kind::Alb,
                "AWSELB",
                "ap-southeast-1",
                "APS1-LCUUsage",
                "LCU-Hrs",
                "0.0080000000",
                "alb:capacity-unit",
                "0.008",
            ),
        ];
        for (kind, service_code, region, usage, unit, usd, key, book_usd) in cases {
            let q = query(kind, region, service_code);
            let rows = rows_from_product(&q, &product(&q, usage, unit, usd), "2026-11-25").unwrap();
            assert_eq!(rows.len(), 1, "{usage}: {rows:?}");
            assert_eq!(
                (rows[0].region.as_str(), rows[0].key.as_str()),
                (region, key),
                "{usage}"
            );
            assert_eq!(rows[0].usd, book_usd.parse::<Decimal>().unwrap(), "{usage}");
        }
    }

    #[test]
    fn pricing_refresh_lookalike_usage_types_are_not_taken() {
        for (kind, service_code, region, usage, unit) in [
            // The ALB trust-store hour is not the load balancer hour.
            (
                Kind::Alb,
                "AWSELB",
                "us-east-2",
                "USE2-TS-LoadBalancerUsage",
                "Hrs",
            ),
            // Ephemeral storage and Windows are other Fargate meters.
            (
                Kind::Fargate,
                "AmazonECS",
                "us-west-2",
                "USW2-Fargate-EphemeralStorage-GB-Hours",
                "hours",
            ),
            (
                Kind::Fargate,
                "AmazonECS",
                "us-west-2",
                "USW2-Fargate-Windows-vCPU-Hours:perCPU",
                "hours",
            ),
            // Intelligent-Tiering requests and Multi-AZ storage are priced differently.
            (
                Kind::S3Requests,
                "AmazonS3",
                "us-east-2",
                "USE2-Requests-INT-Tier1",
                "Requests",
            ),
            (
                Kind::RdsStorage,
                "AmazonRDS",
                "ap-southeast-1",
                "APS1-RDS:Multi-AZ-GP3-Storage",
                "GB-Mo",
            ),
            (
                Kind::Vpc,
                "AmazonVPC",
                "us-east-1",
                "USE1-VpcEndpoint-GWLBE-Hours",
                "Hrs",
            ),
        ] {
            let q = query(kind, region, service_code);
            let rows = rows_from_product(&q, &product(&q, usage, unit, "0.5"), "d").unwrap();
            assert!(rows.is_empty(), "{usage}: {rows:?}");
        }
        assert_eq!(usage_without_region("EU-LCUUsage", "eu-west-1"), "LCUUsage");
        assert_eq!(
            usage_without_region("NatGateway-Hours", "us-east-1"),
            "NatGateway-Hours"
        );
        assert_eq!(
            usage_without_region("eu-central-1-KMS-Keys", "eu-central-1"),
            "KMS-Keys"
        );
        assert_eq!(
            usage_without_region("RDS:GP3-Storage", "us-east-1"),
            "RDS:GP3-Storage"
        );
    }

    #[test]
    fn pricing_refresh_reports_only_what_its_queries_looked_for() {
        let kms = query(Kind::Kms, "us-west-2", "awskms");
        let found = rows_from_product(
            &kms,
            &product(&kms, "us-west-2-KMS-Keys", "Keys", "1.0"),
            "d",
        )
        .unwrap();
        let missing = not_found(&found, &[kms.clone(), kms]);
        assert_eq!(
            missing,
            [
                "kms requests in us-west-2: no product with usage type KMS-Requests (not offered there, or named differently)"
            ]
        );
    }

    #[test]
    fn pricing_refresh_cache_overrides_and_adds() {
        let refreshed = Refreshed {
            rows: vec![
                CacheRow {
                    service: "ec2".into(),
                    region: "us-east-1".into(),
                    key: "instance:t3.micro".into(),
                    unit: "hour".into(),
                    usd: "0.02".parse().unwrap(),
                    source: "AWS Price List API GetProducts (AmazonEC2, SKU1)".into(),
                    observed: "2026-11-25".into(),
                },
                CacheRow {
                    service: "ec2".into(),
                    region: "ap-southeast-1".into(),
                    key: "instance:p5.48xlarge".into(),
                    unit: "hour".into(),
                    usd: "98.32".parse().unwrap(),
                    source: "AWS Price List API GetProducts (AmazonEC2, SKU2)".into(),
                    observed: "2026-11-25".into(),
                },
            ],
            skipped: Vec::new(),
            requests: 2,
            observed: "2026-11-25".into(),
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.csv");
        write_cache(&path, &refreshed).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(&format!("\n{HEADER}\n")), "{text}");
        assert!(text.contains("\"AWS Price List API GetProducts (AmazonEC2, SKU1)\""));
        let embedded = super::super::pricebook::embedded().unwrap();
        let book = load_price_book(Some(&path)).unwrap();
        assert_eq!(
            book.version(),
            format!("{}+cache:2026-11-25", embedded.version())
        );
        assert_eq!(book.len(), embedded.len() + 1);
        let t3 = book.get("ec2", "us-east-1", "instance:t3.micro").unwrap();
        assert_eq!(t3.usd, "0.02".parse::<Decimal>().unwrap());
        assert!(
            embedded
                .get("ec2", "ap-southeast-1", "instance:p5.48xlarge")
                .is_none()
        );
        assert!(
            book.get("ec2", "ap-southeast-1", "instance:p5.48xlarge")
                .is_some()
        );
        // untouched rows keep their source
        let gp2 = book.get("ebs", "us-east-1", "gp2:storage").unwrap();
        assert_eq!(
            gp2.source,
            embedded
                .get("ebs", "us-east-1", "gp2:storage")
                .unwrap()
                .source
        );
        // same content: same book
        assert!(std::ptr::eq(book, load_price_book(Some(&path)).unwrap()));
        assert!(std::ptr::eq(embedded, load_price_book(None).unwrap()));
    }

    #[test]
    fn pricing_refresh_bad_cache_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.csv");
        std::fs::write(
            &path,
            format!("{HEADER}\nec2,us-east-1,k,hour,abc,s,2026-01-01\n"),
        )
        .unwrap();
        let err = load_price_book(Some(&path)).unwrap_err().to_string();
        assert!(
            err.contains("line 2") && err.contains("pricebook refresh"),
            "{err}"
        );
        let missing = load_price_book(Some(&dir.path().join("none.csv")))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("cannot read the price cache"), "{missing}");
    }
}

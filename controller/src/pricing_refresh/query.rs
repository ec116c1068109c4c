//! What a refresh asks the Price List API for: one `GetProducts` query per region and
//! kind, and the usage types that become price book rows.

use rust_decimal::Decimal;

use super::RefreshOptions;

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
pub(super) enum Scale {
    /// The same unit.
    One,
    /// The book prices per this many of AWS's units (requests per 1,000, say).
    Times(u32),
    /// AWS prices per this many of the book's units (GiBps-month vs MiBps-month).
    Over(u32),
}

impl Scale {
    pub(super) fn apply(self, usd: Decimal) -> Decimal {
        match self {
            Scale::One => usd,
            Scale::Times(n) => usd * Decimal::from(n),
            Scale::Over(n) => usd / Decimal::from(n),
        }
    }

    pub(super) fn describe(self) -> String {
        match self {
            Scale::One => String::new(),
            Scale::Times(n) => format!(", AWS unit price x {n}"),
            Scale::Over(n) => format!(", AWS unit price / {n}"),
        }
    }
}

/// A product the book takes by its usage type (compared without its region prefix): the
/// row it becomes, the units AWS may state its price in, and how the units convert.
pub(super) struct UsageRow {
    pub(super) kind: Kind,
    pub(super) usage: &'static str,
    pub(super) service: &'static str,
    pub(super) key: &'static str,
    pub(super) unit: &'static str,
    pub(super) aws_units: &'static [&'static str],
    pub(super) scale: Scale,
}

pub(super) const HOURS: &[&str] = &["Hrs"];
pub(super) const GB: &[&str] = &["GB"];
pub(super) const GB_MONTH: &[&str] = &["GB-Mo"];
pub(super) const REQUESTS: &[&str] = &["Requests"];
pub(super) const IOPS_MONTH: &[&str] = &["IOPS-Mo"];
pub(super) const FARGATE_HOURS: &[&str] = &["hours", "Hrs"];
pub(super) const LCU_HOURS: &[&str] = &["LCU-Hrs", "NLCU-Hrs", "GLCU-Hrs"];

pub(super) const fn row(
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
pub(super) const USAGE_ROWS: &[UsageRow] = &[
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
pub(super) fn usage_without_region<'a>(usage: &'a str, region: &str) -> &'a str {
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
pub(super) const LOCATIONS: &[(&str, &str)] = &[
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

pub(super) fn region_filter(region: &str) -> (String, String) {
    match LOCATIONS.iter().find(|(code, _)| *code == region) {
        Some((_, location)) => ("location".into(), (*location).into()),
        None => ("regionCode".into(), region.into()),
    }
}

/// RDS `databaseEngine` values for Terraform engine names.
pub(super) const RDS_ENGINES: &[(&str, &str)] = &[
    ("mariadb", "MariaDB"),
    ("mysql", "MySQL"),
    ("postgres", "PostgreSQL"),
];

/// A `TERM_MATCH` filter on `field`.
pub(super) fn term(field: &str, value: &str) -> (String, String) {
    (field.to_string(), value.to_string())
}

/// `TERM_MATCH` filters that narrow a query beyond its region (field, value).
pub(super) type Narrowing = &'static [(&'static str, &'static str)];

/// Queries made once per region besides EC2 instances and RDS: services small enough per
/// region to take whole (the usage type picks the rows), or narrowed by attributes AWS sets
/// on every product of the kind.
#[rustfmt::skip]
pub(super) const REGION_QUERIES: &[(Kind, &str, Narrowing)] = &[
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
            term("operatingSystem", "Linux"),
            term("tenancy", "Shared"),
            term("preInstalledSw", "NA"),
            term("capacitystatus", "Used"),
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
                let mut filters = vec![term("instanceType", instance_type)];
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
            filters.extend(narrowing.iter().map(|(field, value)| term(field, value)));
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
                    term("productFamily", "Database Instance"),
                    term("databaseEngine", aws_engine),
                    term("deploymentOption", "Single-AZ"),
                ],
            });
            for family in ["Database Storage", "Provisioned IOPS"] {
                out.push(Query {
                    kind: Kind::RdsStorage,
                    region: region.clone(),
                    service_code: "AmazonRDS",
                    filters: vec![
                        loc.clone(),
                        term("productFamily", family),
                        term("databaseEngine", aws_engine),
                    ],
                });
            }
        }
    }
    out
}

//! The query table, product parsing and cache writing, against documented and
//! hand-written `GetProducts` products (no network).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::fetch::not_found;
use super::product::rows_from_product;
use super::query::*;
use super::*;
use crate::cost::{PRICE_BOOK_HEADER as HEADER, load_price_book, price_book};
use rust_decimal::Decimal;
use serde_json::Value;

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
        assert!(
            ec2.filters.contains(&term(filter.0, filter.1)),
            "{filter:?}"
        );
    }
    assert!(qs[19].filters.contains(&term("regionCode", "xx-new-1")));
    let rds_storage: Vec<&Query> = qs[..19]
        .iter()
        .filter(|q| q.kind == Kind::RdsStorage)
        .collect();
    assert_eq!(rds_storage.len(), 2);
    assert!(
        rds_storage
            .iter()
            .all(|q| q.filters.contains(&term("databaseEngine", "PostgreSQL")))
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
    let embedded = price_book().unwrap();
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

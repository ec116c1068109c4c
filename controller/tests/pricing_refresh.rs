//! `tollgate pricebook refresh` against recorded AWS Price List API responses served on
//! 127.0.0.1, and `tollgate cost --price-cache` using what it wrote. Never talks to AWS.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/pricing");
const SINGAPORE_TOKEN: &str = "WGDY7ko8fQXdlaUZVdasFQ==:RVSagyIFn770XQOzdUIcO9BY6ucBG9itXAZGZF/zioUzOsUKh6PCcPWaOyPZRiMePb986TeoKYB9l55fw/CyoMq5ymnGmT1Vj39TljbbAlhcqnVfTmPIilx8Uy5bdDaBYy/e/2Ofw9Edzsykbs8LTBuNbiDQ+BBds5yeI9AQkUepruKk3aEahFPxJ55kx/zk";
const EC2_TOKEN: &str = "ZXhhbXBsZS1wYWdlLTI=:AmazonEC2/us-east-1/page-2";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(Path::new(FIXTURES).join(name)).unwrap()
}

/// One GetProducts request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    target: String,
    body: Value,
}

impl Seen {
    fn filter(&self, field: &str) -> Option<String> {
        self.body["Filters"]
            .as_array()?
            .iter()
            .find(|f| f["Field"] == field)
            .map(|f| f["Value"].as_str().unwrap_or_default().to_string())
    }
}

/// The recorded page for a request, like the real API would answer it.
fn route(seen: &Seen) -> String {
    let service = seen.body["ServiceCode"].as_str().unwrap_or_default();
    let token = seen.body["NextToken"].as_str();
    let location = seen.filter("location").unwrap_or_default();
    let family = seen.filter("productFamily");
    let empty = json!({"FormatVersion": "aws_v1", "PriceList": []}).to_string();
    match (service, location.as_str(), family.as_deref(), token) {
        ("AmazonEC2", "US East (N. Virginia)", None, None) => fixture("ec2-us-east-1-page1.json"),
        ("AmazonEC2", "US East (N. Virginia)", None, Some(EC2_TOKEN)) => {
            fixture("ec2-us-east-1-page2.json")
        }
        ("AmazonEC2", "US East (N. Virginia)", Some("Storage"), None) => {
            fixture("ebs-us-east-1.json")
        }
        ("AmazonEC2", "Asia Pacific (Singapore)", Some("Storage"), None) => {
            fixture("ebs-ap-southeast-1-page1.json")
        }
        ("AmazonEC2", "Asia Pacific (Singapore)", Some("Storage"), Some(SINGAPORE_TOKEN)) => {
            fixture("ebs-ap-southeast-1-page2.json")
        }
        ("AmazonEC2", "US East (N. Virginia)", Some("NAT Gateway"), None) => {
            fixture("nat-us-east-1.json")
        }
        ("AWSELB", "US East (N. Virginia)", Some("Load Balancer-Application"), None) => {
            fixture("alb-us-east-1.json")
        }
        ("AmazonECS", "Asia Pacific (Singapore)", None, None) => {
            fixture("fargate-ap-southeast-1.json")
        }
        ("AmazonEC2", "US West (Oregon)", Some("Storage"), None) => {
            fixture("ebs-storage-us-west-2.json")
        }
        ("AmazonEC2", "US West (Oregon)", Some("System Operation"), None) => {
            fixture("ebs-iops-us-west-2.json")
        }
        ("AmazonEC2", "US West (Oregon)", Some("Provisioned Throughput"), None) => {
            fixture("ebs-throughput-us-west-2.json")
        }
        ("awskms", "US West (Oregon)", None, None) => fixture("kms-us-west-2.json"),
        ("AWSSecretsManager", "US West (Oregon)", None, None) => {
            fixture("secretsmanager-us-west-2.json")
        }
        ("AmazonCloudWatch", "US West (Oregon)", None, None) => {
            fixture("cloudwatch-us-west-2.json")
        }
        ("AmazonS3", "US West (Oregon)", None, None) => match seen.filter("group").as_deref() {
            Some("S3-API-Tier1") => fixture("s3-requests-tier1-us-west-2.json"),
            Some("S3-API-Tier2") => fixture("s3-requests-tier2-us-west-2.json"),
            _ => empty,
        },
        ("AmazonRDS", "US East (N. Virginia)", Some("Database Instance"), None)
            if seen.filter("databaseEngine").as_deref() == Some("MySQL") =>
        {
            fixture("rds-mysql-us-east-1.json")
        }
        (_, _, _, Some(other)) => panic!("unexpected NextToken {other}"),
        _ => empty,
    }
}

/// A loopback HTTP/1.1 server answering `AWSPriceListService.GetProducts` with recorded
/// pages; anything else gets a 400 like AWS's `UnknownOperationException`.
struct FakePricing {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

fn handle(stream: TcpStream, seen: &Mutex<Vec<Seen>>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut target = String::new();
    let mut length = 0usize;
    let mut line = String::new();
    reader.read_line(&mut line)?; // request line
    if !line.starts_with("POST / ") {
        return Ok(());
    }
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "x-amz-target" => target = value.trim().to_string(),
                "content-length" => length = value.trim().parse().unwrap_or(0),
                _ => {}
            }
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    let request = Seen {
        target: target.clone(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    };
    let (status, response) = if target == "AWSPriceListService.GetProducts" {
        ("200 OK", route(&request))
    } else {
        (
            "400 Bad Request",
            json!({"__type": "UnknownOperationException"}).to_string(),
        )
    };
    if let Ok(mut log) = seen.lock() {
        log.push(request);
    }
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/x-amz-json-1.1\r\nx-amzn-RequestId: 00000000-0000-0000-0000-000000000000\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{response}",
        response.len()
    )?;
    stream.flush()
}

impl FakePricing {
    fn start() -> FakePricing {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        std::thread::spawn(move || {
            // Bounded: a test makes a few dozen requests at most; the thread ends with
            // the test process.
            for stream in listener.incoming().take(500) {
                let Ok(stream) = stream else { continue };
                let log = Arc::clone(&log);
                std::thread::spawn(move || {
                    let _ = handle(stream, &log);
                });
            }
        });
        FakePricing { url, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn tollgate(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(args)
        .current_dir(dir)
        // Static dummy credentials; no profile files, no instance metadata lookups.
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env_remove("TOLLGATE_PRICE_CACHE")
        .env("AWS_CONFIG_FILE", dir.join("no-aws-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            dir.join("no-aws-credentials"),
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// CSV rows of a cache file, keyed by (service, region, key): (unit, usd, source, observed).
fn rows(csv: &str) -> Vec<Vec<String>> {
    csv.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .skip(1)
        .map(|l| {
            let mut fields = Vec::new();
            let mut rest = l;
            while !rest.is_empty() {
                if let Some(q) = rest.strip_prefix('"') {
                    let end = q.find('"').unwrap();
                    fields.push(q[..end].to_string());
                    rest = q[end + 1..].strip_prefix(',').unwrap_or("");
                } else {
                    let end = rest.find(',').unwrap_or(rest.len());
                    fields.push(rest[..end].to_string());
                    rest = rest.get(end + 1..).unwrap_or("");
                }
            }
            fields
        })
        .collect()
}

fn find<'a>(rows: &'a [Vec<String>], service: &str, region: &str, key: &str) -> &'a [String] {
    rows.iter()
        .find(|r| r[0] == service && r[1] == region && r[2] == key)
        .unwrap_or_else(|| panic!("no row {service} {region} {key} in {rows:?}"))
}

fn plan(region: &str, resources: &[(&str, &str, Value)]) -> String {
    let changes: Vec<Value> = resources
        .iter()
        .map(|(ty, name, after)| {
            json!({
                "address": format!("{ty}.{name}"), "mode": "managed", "type": ty, "name": name,
                "provider_name": "registry.terraform.io/hashicorp/aws",
                "change": {"actions": ["create"], "before": null, "after": after,
                           "after_unknown": {"id": true}, "before_sensitive": false, "after_sensitive": {}}
            })
        })
        .collect();
    json!({
        "format_version": "1.2", "terraform_version": "1.9.8",
        "resource_changes": changes,
        "configuration": {"provider_config": {"aws": {"name": "aws", "full_name": "registry.terraform.io/hashicorp/aws",
            "expressions": {"region": {"constant_value": region}}}}, "root_module": {}}
    })
    .to_string()
}

#[test]
fn pricing_refresh_writes_a_cache_from_recorded_pages_and_cost_uses_it() {
    let server = FakePricing::start();
    let dir = tempfile::tempdir().unwrap();
    let out = tollgate(
        &[
            "pricebook",
            "refresh",
            "--region",
            "us-east-1",
            "--region",
            "ap-southeast-1",
            "--region",
            "us-west-2",
            "--out",
            "prices.csv",
            "--endpoint-url",
            &server.url,
        ],
        dir.path(),
    );
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("wrote 30 prices"),
        "{}",
        text(&out.stdout)
    );
    // What was looked for and not found is said, not silently missing (no S3 page recorded).
    assert!(
        text(&out.stderr).contains(
            "skipped: s3 standard:storage in us-east-1: no product with usage type TimedStorage-ByteHrs"
        ),
        "{}",
        text(&out.stderr)
    );
    assert!(
        !text(&out.stderr).contains("fargate vcpu-hour:arm64 in ap-southeast-1"),
        "found rows are not reported missing: {}",
        text(&out.stderr)
    );

    // Every request was a GetProducts call with the documented filters, and both
    // NextTokens were followed.
    let seen = server.seen();
    assert!(
        seen.iter()
            .all(|s| s.target == "AWSPriceListService.GetProducts"),
        "{seen:?}"
    );
    // per region: ec2, ebs ×3, nat, alb, nlb, gwlb, s3 ×3, fargate, cloudwatch, kms,
    // secrets manager, vpc, rds instances/storage/IOPS ×3 engines = 25 queries, 3 regions;
    // +2 second pages
    assert_eq!(seen.len(), 77, "{seen:#?}");
    let ec2 = seen
        .iter()
        .find(|s| s.body["ServiceCode"] == "AmazonEC2" && s.filter("operatingSystem").is_some())
        .unwrap();
    for (field, value) in [
        ("location", "US East (N. Virginia)"),
        ("operatingSystem", "Linux"),
        ("tenancy", "Shared"),
        ("preInstalledSw", "NA"),
        ("capacitystatus", "Used"),
    ] {
        assert_eq!(ec2.filter(field).as_deref(), Some(value), "{field}");
    }
    assert_eq!(ec2.body["FormatVersion"], "aws_v1");
    assert_eq!(ec2.body["Filters"][0]["Type"], "TERM_MATCH");
    let tokens: Vec<&str> = seen
        .iter()
        .filter_map(|s| s.body["NextToken"].as_str())
        .collect();
    assert_eq!(tokens.len(), 2);
    assert!(tokens.contains(&EC2_TOKEN) && tokens.contains(&SINGAPORE_TOKEN));

    // The cache: the price book's header and keys, AWS's prices, sourced and dated.
    let csv = std::fs::read_to_string(dir.path().join("prices.csv")).unwrap();
    assert!(
        csv.lines()
            .any(|l| l == "service,region,key,unit,usd,source,observed"),
        "{csv}"
    );
    assert!(csv.contains("# version: cache:"), "{csv}");
    let rows = rows(&csv);
    assert_eq!(rows.len(), 30, "{rows:#?}");
    let today = jiff::Timestamp::now().strftime("%Y-%m-%d").to_string();
    for (service, region, key, unit, usd, sku_source) in [
        (
            "ec2",
            "us-east-1",
            "instance:t3.micro",
            "hour",
            "0.0104",
            "AmazonEC2, CRAJUW7BTXFMT2UJ",
        ),
        (
            "ec2",
            "us-east-1",
            "instance:t3.small",
            "hour",
            "0.0208",
            "AmazonEC2, TDVRYW6K68T4XJHJ",
        ),
        (
            "ec2",
            "us-east-1",
            "instance:m5.large",
            "hour",
            "0.096",
            "AmazonEC2, 6C86BEPQVG73ZGGR",
        ),
        (
            "ebs",
            "us-east-1",
            "gp3:storage",
            "GB-month",
            "0.08",
            "AmazonEC2, 7U7TWP44UP36AT3R",
        ),
        (
            "ebs",
            "us-east-1",
            "gp2:storage",
            "GB-month",
            "0.1",
            "AmazonEC2, HY3BZPP2B6K8MSJF",
        ),
        (
            "ebs",
            "us-east-1",
            "st1:storage",
            "GB-month",
            "0.045",
            "AmazonEC2, WAWHKJRR7Z5RHFBA",
        ),
        (
            "ebs",
            "ap-southeast-1",
            "io1:storage",
            "GB-month",
            "0.138",
            "AmazonEC2, 3MKHN58N7RDDVGKJ",
        ),
        (
            "ebs",
            "ap-southeast-1",
            "gp3:storage",
            "GB-month",
            "0.096",
            "AmazonEC2, MGNYBWQXGBHVFHYQ",
        ),
        (
            "vpc",
            "us-east-1",
            "nat-gateway:hour",
            "hour",
            "0.045",
            "AmazonEC2, M2YSHUBETB3JX4M4",
        ),
        (
            "vpc",
            "us-east-1",
            "nat-gateway:gb",
            "GB",
            "0.045",
            "AmazonEC2, Q9PZUPTSE5VK2U6P",
        ),
        (
            "elb",
            "us-east-1",
            "alb:hour",
            "hour",
            "0.0225",
            "AWSELB, 3TKFCFB4WQ45KRKZ",
        ),
        (
            "elb",
            "us-east-1",
            "alb:capacity-unit",
            "LCU-hour",
            "0.008",
            "AWSELB, 6KBYY3J3CNP4TFNA",
        ),
        (
            "rds",
            "us-east-1",
            "instance:mysql:db.t3.micro",
            "hour",
            "0.017",
            "AmazonRDS, QZ6G8Y3CQQZ5YRUM",
        ),
        (
            "rds",
            "us-east-1",
            "instance:mysql:db.t3.medium",
            "hour",
            "0.068",
            "AmazonRDS, WC8WJ6QF4WA3K4K8",
        ),
        (
            "fargate",
            "ap-southeast-1",
            "vcpu-hour:arm64",
            "vCPU-hour",
            "0.04045",
            "AmazonECS, TGFARGATEAPS1ARMCPU",
        ),
        (
            "fargate",
            "ap-southeast-1",
            "gb-hour:x86_64",
            "GB-hour",
            "0.00553",
            "AmazonECS, TGFARGATEAPS1MEM",
        ),
        // us-west-2: verbatim AWS products (offer-file excerpts and a GetProducts receipt
        // recorded in sirerun/serenity), beside a CPU-credit product and KMS's free-tier
        // bundle that must not become rows.
        (
            "ebs",
            "us-west-2",
            "gp3:storage",
            "GB-month",
            "0.08",
            "AmazonEC2, BB8UJWJ4XPFJB95G",
        ),
        (
            "ebs",
            "us-west-2",
            "gp3:iops",
            "IOPS-month",
            "0.005",
            "AmazonEC2, XBTB827YUJSN6SSV",
        ),
        (
            "ebs",
            "us-west-2",
            "gp3:throughput",
            "MiBps-month",
            "0.04",
            "AmazonEC2, 3MQHJKUUZSKTF82F, AWS unit price / 1024",
        ),
        (
            "kms",
            "us-west-2",
            "key",
            "key-month",
            "1",
            "awskms, S8HBXBVJKWKDP9AS",
        ),
        (
            "kms",
            "us-west-2",
            "requests",
            "10k requests",
            "0.03",
            "awskms, SE9KXT6M6JTP7E4W, AWS unit price x 10000",
        ),
        (
            "secretsmanager",
            "us-west-2",
            "secret",
            "secret-month",
            "0.4",
            "AWSSecretsManager, DWJP9S4V3HP98UNC",
        ),
        (
            "secretsmanager",
            "us-west-2",
            "api-requests",
            "10k requests",
            "0.05",
            "AWSSecretsManager, AEBQHWFEG8Q4Y7AT, AWS unit price x 10000",
        ),
        (
            "cloudwatch",
            "us-west-2",
            "metric",
            "metric-month",
            "0.3",
            "AmazonCloudWatch, CN6TP6ZEVS58RK7M",
        ),
        (
            "cloudwatch",
            "us-west-2",
            "logs-ingestion",
            "GB",
            "0.5",
            "AmazonCloudWatch, CWY7X4MZ4F3MP5SD",
        ),
        (
            "cloudwatch",
            "us-west-2",
            "logs-storage",
            "GB-month",
            "0.03",
            "AmazonCloudWatch, MN45SJANDTCPR9QA",
        ),
        (
            "s3",
            "us-west-2",
            "standard:put-requests",
            "1k requests",
            "0.005",
            "AmazonS3, D4PMUVH6F64HK2D6, AWS unit price x 1000",
        ),
        (
            "s3",
            "us-west-2",
            "standard:get-requests",
            "1k requests",
            "0.0004",
            "AmazonS3, E77AQEM2DC4VV3FC, AWS unit price x 1000",
        ),
    ] {
        let row = find(&rows, service, region, key);
        assert_eq!(row[3], unit, "{row:?}");
        assert_eq!(row[4], usd, "{row:?}");
        assert_eq!(
            row[5],
            format!("AWS Price List API GetProducts ({sku_source})"),
            "{row:?}"
        );
        assert_eq!(row[6], today, "{row:?}");
    }

    // `tollgate cost` with the cache: an io1 volume in Singapore. The refreshed storage price
    // (from the verbatim AWS response) is the embedded book's too, so the estimate is the
    // same with and without the cache; only the book version says the cache was read.
    // (Adding and replacing rows: `pricing_refresh_cache_overrides_and_adds` and the test
    // below.)
    let plan_path = dir.path().join("plan.json");
    std::fs::write(
        &plan_path,
        plan(
            "ap-southeast-1",
            &[(
                "aws_ebs_volume",
                "data",
                json!({"type": "io1", "size": 100, "iops": 1000}),
            )],
        ),
    )
    .unwrap();
    let estimate = |extra: &[&str]| {
        let mut args = vec!["cost", "plan.json", "--output", "json"];
        args.extend_from_slice(extra);
        let out = tollgate(&args, dir.path());
        assert!(out.status.success(), "{}", text(&out.stderr));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let without = estimate(&[]);
    let with = estimate(&["--price-cache", "prices.csv"]);
    for e in [&without, &with] {
        assert_eq!(e["unpriced"], json!([]), "{e:#}");
        // 100 GB × $0.138 + 1000 IOPS × $0.072 = 13.80 + 72.00
        assert_eq!(e["totalMonthlyCost"], "85.8", "{e:#}");
    }
    let version = with["priceBookVersion"].as_str().unwrap();
    assert!(version.ends_with(&format!("+cache:{today}")), "{version}");
    assert!(
        !without["priceBookVersion"]
            .as_str()
            .unwrap()
            .contains("+cache"),
        "{without:#}"
    );
}

#[test]
fn pricing_refresh_cache_overrides_an_embedded_price_for_cost() {
    // A cache row for a key the embedded book has replaces it (env var form).
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("override.csv"),
        "# version: cache:2026-11-25\nservice,region,key,unit,usd,source,observed\n\
         ec2,us-east-1,instance:t3.micro,hour,0.02,\"AWS Price List API GetProducts (AmazonEC2, TEST)\",2026-11-25\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("plan.json"),
        plan(
            "us-east-1",
            &[(
                "aws_instance",
                "web",
                json!({"instance_type": "t3.micro", "ami": "ami-123",
                       "root_block_device": [{"volume_size": 8, "volume_type": "gp3"}]}),
            )],
        ),
    )
    .unwrap();
    let embedded = tollgate(&["cost", "plan.json", "--output", "json"], dir.path());
    let embedded: Value = serde_json::from_slice(&embedded.stdout).unwrap();
    let hours = |v: &Value| v["resources"][0]["components"][0]["unitPrice"].clone();
    assert_eq!(hours(&embedded), "0.0104", "{embedded:#}");

    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["cost", "plan.json", "--output", "json"])
        .current_dir(dir.path())
        .env("TOLLGATE_PRICE_CACHE", dir.path().join("override.csv"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let cached: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(hours(&cached), "0.02", "{cached:#}");
    assert!(
        cached["priceBookVersion"]
            .as_str()
            .unwrap()
            .ends_with("+cache:2026-11-25")
    );

    // A broken cache is an error that says what to do.
    std::fs::write(dir.path().join("bad.csv"), "not,a,price,book\n").unwrap();
    let bad = tollgate(
        &["cost", "plan.json", "--price-cache", "bad.csv"],
        dir.path(),
    );
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("tollgate pricebook refresh"),
        "{}",
        text(&bad.stderr)
    );
}

#[test]
fn pricing_refresh_with_instance_types_and_an_unreachable_endpoint() {
    let server = FakePricing::start();
    let dir = tempfile::tempdir().unwrap();
    let out = tollgate(
        &[
            "pricebook",
            "refresh",
            "--region",
            "us-east-1",
            "--instance-type",
            "t3.micro",
            "--rds-engine",
            "mysql",
            "--out",
            "p.csv",
            "--endpoint-url",
            &server.url,
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let ec2 = server
        .seen()
        .into_iter()
        .find(|s| s.filter("instanceType").is_some())
        .unwrap();
    assert_eq!(ec2.filter("instanceType").as_deref(), Some("t3.micro"));

    // Nothing listens there: an error naming what to check, and no file.
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let out = tollgate(
        &[
            "pricebook",
            "refresh",
            "--region",
            "us-east-1",
            "--out",
            "q.csv",
            "--endpoint-url",
            &closed,
        ],
        dir.path(),
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("GetProducts") && err.contains("--endpoint-url"),
        "{err}"
    );
    assert!(!dir.path().join("q.csv").exists());
}

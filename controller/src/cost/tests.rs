//! End-to-end tests over hand-written `terraform show -json` fixtures
//! (controller/tests/fixtures/plans), a JSON snapshot, and a property test of the totals.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use proptest::prelude::*;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::*;

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/plans")
        .join(name)
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(fixture_path(name)).unwrap()
}

fn estimate_fixture(name: &str, usage: &Usage) -> Estimate {
    estimate_str(&fixture(name), "", usage).unwrap()
}

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn resource<'e>(e: &'e Estimate, address: &str) -> &'e ResourceCost {
    e.resources
        .iter()
        .find(|r| r.address == address)
        .unwrap_or_else(|| panic!("{address} not priced: {e:#?}"))
}

#[test]
fn create_prices_new_resources_and_lists_free_ones() {
    let e = estimate_fixture("create.json", &Usage::none());
    assert_eq!(e.region, "us-east-1");
    // t3.micro 730 × 0.0104 = 7.592 + default root 8 GB gp2 × 0.10 = 0.80.
    let web = resource(&e, "aws_instance.web");
    assert_eq!(web.action, "create");
    assert_eq!(web.monthly_cost, d("8.392"));
    assert_eq!(web.previous_monthly_cost, d("0"));
    // gp3 100 GB × 0.08 = 8.00; 1,000 extra IOPS × 0.005 = 5.00; 125 extra MiB/s × 0.04 = 5.00.
    assert_eq!(resource(&e, "aws_ebs_volume.data").monthly_cost, d("18"));
    assert_eq!(e.total_monthly_cost, d("26.392"));
    assert_eq!(e.delta_monthly_cost, d("26.392"));
    let free: Vec<&str> = e.free.iter().map(|f| f.address.as_str()).collect();
    assert_eq!(free, ["aws_vpc.main", "terraform_data.bootstrap"]);
    assert!(e.unpriced.is_empty());
}

#[test]
fn update_instance_type_prices_both_sides() {
    let e = estimate_fixture("update_instance_type.json", &Usage::none());
    let web = resource(&e, "aws_instance.web");
    assert_eq!(web.action, "update");
    // Before: t3.micro 7.592 + root 20 GB gp3 1.60. After: t3.large 730 × 0.0832 = 60.736 + 1.60.
    assert_eq!(web.previous_monthly_cost, d("9.192"));
    assert_eq!(web.monthly_cost, d("62.336"));
    assert_eq!(web.delta_monthly_cost, d("53.144"));
    assert_eq!(e.delta_monthly_cost, d("53.144"));
}

#[test]
fn replace_prices_old_and_new() {
    let e = estimate_fixture("replace.json", &Usage::none());
    let db = resource(&e, "aws_db_instance.orders");
    assert_eq!(db.action, "replace");
    // Before: postgres db.t3.large 0.145 × 730 = 105.85 + gp2 100 GB × 0.115 = 11.50.
    assert_eq!(db.previous_monthly_cost, d("117.35"));
    // After: mysql db.t3.large Multi-AZ 0.136 × 1,460 = 198.56 + gp3 100 GB × 2 × 0.115 = 23.00.
    assert_eq!(db.monthly_cost, d("221.56"));
    assert_eq!(db.delta_monthly_cost, d("104.21"));
}

#[test]
fn destroy_gives_negative_delta() {
    let e = estimate_fixture("destroy.json", &Usage::none());
    // NAT 32.85 (+ usage-based data at 0) and EIP 3.65 go away.
    assert_eq!(e.total_monthly_cost, d("0"));
    assert_eq!(e.previous_monthly_cost, d("36.5"));
    assert_eq!(e.delta_monthly_cost, d("-36.5"));
    let nat = resource(&e, "module.net.aws_nat_gateway.this[0]");
    assert_eq!(nat.action, "delete");
    assert!(nat.components.is_empty());
    assert_eq!(nat.previous_components.len(), 2);
}

#[test]
fn unknown_attributes_are_unpriced_not_zero() {
    let e = estimate_fixture("unknown_attribute.json", &Usage::none());
    assert!(e.resources.is_empty(), "{:#?}", e.resources);
    let reasons: Vec<(&str, &str)> = e
        .unpriced
        .iter()
        .map(|u| (u.address.as_str(), u.reason.as_str()))
        .collect();
    assert_eq!(
        reasons,
        [
            ("aws_ebs_volume.scratch", "size is unknown until apply"),
            (
                "aws_instance.worker",
                "instance_type is unknown until apply"
            ),
            (
                "aws_ssm_parameter.type",
                "aws_ssm_parameter is not supported by the cost engine yet (neither priced nor on the free list)"
            ),
        ]
    );
    assert_eq!(e.total_monthly_cost, d("0"));
}

#[test]
fn usage_based_components_use_the_usage_file() {
    let usage = Usage::from_yaml_str(&fixture("usage_based.usage.yml")).unwrap();
    let e = estimate_fixture("usage_based.json", &usage);
    let nat = resource(&e, "aws_nat_gateway.egress");
    let data = nat.components.iter().find(|c| c.usage_based).unwrap();
    // 100 GB × 0.045.
    assert_eq!(
        (data.monthly_quantity, data.monthly_cost),
        (d("100"), d("4.5"))
    );
    // ARM Lambda: 1M requests → 0.20; 1M × 0.2 s × 0.5 GB = 100,000 GB-s × 0.0000133334 = 1.33334.
    assert_eq!(
        resource(&e, "aws_lambda_function.thumbs").monthly_cost,
        d("1.53334")
    );
    // S3: 500 × 0.023 = 11.50; 20 × 0.005 = 0.10; 1,000 × 0.0004 = 0.40.
    assert_eq!(resource(&e, "aws_s3_bucket.assets").monthly_cost, d("12"));
    // Logs: 20 × 0.50 + 60 × 0.03.
    assert_eq!(
        resource(&e, "aws_cloudwatch_log_group.app").monthly_cost,
        d("11.8")
    );

    // Without usage, the same components are listed with quantity 0, clearly usage-based.
    let bare = estimate_fixture("usage_based.json", &Usage::none());
    let s3 = resource(&bare, "aws_s3_bucket.assets");
    assert_eq!(s3.components.len(), 3);
    assert!(
        s3.components
            .iter()
            .all(|c| c.usage_based && c.monthly_quantity.is_zero())
    );
    assert_eq!(
        resource(&bare, "aws_nat_gateway.egress").monthly_cost,
        d("32.85")
    );
}

#[test]
fn ecs_service_is_sized_by_its_task_definition() {
    let e = estimate_fixture("ecs_fargate.json", &Usage::none());
    let svc = resource(&e, "module.svc.aws_ecs_service.this");
    // ARM64, 1 vCPU and 2 GB × 3 tasks × 730 h: 2,190 × 0.03238 = 70.9122; 4,380 × 0.00356 = 15.5928.
    assert_eq!(svc.components[0].monthly_quantity, d("2190"));
    assert_eq!(svc.monthly_cost, d("86.505"));
    assert_eq!(e.free.len(), 2, "cluster and task definition are free");
}

#[test]
fn multi_resource_snapshot() {
    let e = estimate_fixture("multi_resource.json", &Usage::none());
    assert_eq!(e.region, "eu-west-1");
    insta::assert_snapshot!("multi_resource_json", e.to_json());
    insta::assert_snapshot!("multi_resource_table", e.render_table());
    insta::assert_snapshot!("multi_resource_markdown", e.render_markdown());
}

#[test]
fn region_argument_is_the_fallback() {
    let mut plan: Value = serde_json::from_str(&fixture("create.json")).unwrap();
    plan["configuration"]["provider_config"] = json!({});
    // Prices from a book that only knows Singapore: only the fallback region can find them.
    let book = PriceBook::parse(
        "service,region,key,unit,usd,source,observed\n\
         ec2,ap-southeast-1,instance:t3.micro,hour,0.0132,test,2026-01-01\n\
         ebs,ap-southeast-1,gp2:storage,GB-month,0.12,test,2026-01-01\n",
    )
    .unwrap();
    let e = estimate_with_book(&plan.to_string(), "ap-southeast-1", &Usage::none(), &book).unwrap();
    assert_eq!(e.region, "ap-southeast-1");
    let web = e
        .resources
        .iter()
        .find(|r| r.address == "aws_instance.web")
        .unwrap();
    // 0.0132 x 730 h + 8 GB x 0.12 (the provider's default gp2 root volume).
    assert_eq!(web.monthly_cost, d("10.596"));
    // A region the book has no row for (GovCloud is not a commercial region): unpriced,
    // with the dimension named.
    let e = estimate(&plan, "us-gov-west-1", &Usage::none()).unwrap();
    let web = e
        .unpriced
        .iter()
        .find(|u| u.address == "aws_instance.web")
        .unwrap();
    assert_eq!(
        web.reason,
        "no price for ec2 instance:t3.micro in us-gov-west-1"
    );
    assert!(matches!(
        estimate(&plan, "", &Usage::none()),
        Err(CostError::NoRegion)
    ));
}

#[test]
fn a_resource_on_an_aliased_provider_is_priced_in_that_providers_region() {
    let mut plan: Value = serde_json::from_str(&fixture("create.json")).unwrap();
    let providers = |west_region: Value| {
        json!({
            "aws": {"name": "aws", "expressions": {"region": {"constant_value": "us-east-1"}}},
            "aws.west": {"name": "aws", "alias": "west", "expressions": {"region": west_region}}
        })
    };
    let resources = plan["configuration"]["root_module"]["resources"]
        .as_array_mut()
        .unwrap();
    for r in resources.iter_mut() {
        if r["address"] == "aws_instance.web" {
            r["provider_config_key"] = json!("aws.west");
        }
    }
    plan["configuration"]["provider_config"] = providers(json!({"constant_value": "eu-west-1"}));
    let e = estimate(&plan, "", &Usage::none()).unwrap();
    let web = resource(&e, "aws_instance.web");
    let hours = web.components.iter().find(|c| c.unit == "hour").unwrap();
    // t3.micro in eu-west-1 ($0.0114/h), not us-east-1 ($0.0104/h).
    assert_eq!(hours.unit_price, d("0.0114"));
    plan["configuration"]["provider_config"] =
        providers(json!({"references": ["data.aws_region.other.name"]}));
    let e = estimate(&plan, "", &Usage::none()).unwrap();
    let web = e
        .unpriced
        .iter()
        .find(|u| u.address == "aws_instance.web")
        .unwrap();
    assert_eq!(
        web.reason,
        "the region of provider configuration `aws.west` is known only at apply"
    );
}

#[test]
fn bad_input_errors_say_what_to_do() {
    let err = estimate_str(
        "Terraform will perform the following actions",
        "us-east-1",
        &Usage::none(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("terraform show -json"), "{err}");
    let err = estimate_str("{}", "us-east-1", &Usage::none())
        .unwrap_err()
        .to_string();
    assert!(err.contains("format_version"), "{err}");
}

#[test]
fn json_output_has_the_documented_shape() {
    let e = estimate_fixture("create.json", &Usage::none());
    let v = e.to_json_value();
    for key in [
        "currency",
        "totalMonthlyCost",
        "previousMonthlyCost",
        "deltaMonthlyCost",
        "resources",
        "unpriced",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    assert_eq!(v["currency"], "USD");
    assert!(v["totalMonthlyCost"].is_string(), "decimals are strings");
    let c = &v["resources"][0]["components"][0];
    for key in [
        "name",
        "unit",
        "monthlyQuantity",
        "unitPrice",
        "monthlyCost",
        "usageBased",
    ] {
        assert!(c.get(key).is_some(), "component missing {key}");
    }
    for key in [
        "address",
        "type",
        "action",
        "monthlyCost",
        "previousMonthlyCost",
    ] {
        assert!(
            v["resources"][0].get(key).is_some(),
            "resource missing {key}"
        );
    }
}

// ---- property test: totals are exact sums, delta = total - previous ----

const TYPES: &[(&str, &str)] = &[
    ("aws_instance", "instance"),
    ("aws_ebs_volume", "volume"),
    ("aws_nat_gateway", "nat"),
    ("aws_eip", "eip"),
    ("aws_lb", "lb"),
    ("aws_dynamodb_table", "ddb"),
    ("aws_vpc", "vpc"),
    ("aws_sqs_queue", "unsupported"),
];
const INSTANCE_TYPES: &[&str] = &[
    "t3.micro",
    "t3.large",
    "m5.large",
    "c6g.xlarge",
    "x9.missing",
];
const ACTIONS: &[&[&str]] = &[
    &["create"],
    &["update"],
    &["delete", "create"],
    &["delete"],
    &["no-op"],
];

fn values(kind: &str, n: u32) -> Value {
    match kind {
        "instance" => json!({"instance_type": INSTANCE_TYPES[n as usize % INSTANCE_TYPES.len()]}),
        "volume" => {
            let t = ["gp2", "gp3", "io1", "st1"][n as usize % 4];
            json!({"type": t, "size": 1 + n % 500, "iops": 100 + n % 5000})
        }
        "ddb" => {
            json!({"billing_mode": "PROVISIONED", "read_capacity": n % 40, "write_capacity": n % 17})
        }
        _ => json!({}),
    }
}

fn arbitrary_plan() -> impl Strategy<Value = Value> {
    prop::collection::vec((0..TYPES.len(), 0..ACTIONS.len(), 0u32..10_000, 0u32..10_000), 0..40)
        .prop_map(|items| {
            let changes: Vec<Value> = items
                .iter()
                .enumerate()
                .map(|(i, (t, a, b, c))| {
                    let (ty, kind) = TYPES[*t];
                    let actions = ACTIONS[*a];
                    let before = if actions == ["create"] { Value::Null } else { values(kind, *b) };
                    let after = if actions == ["delete"] { Value::Null } else { values(kind, *c) };
                    json!({
                        "address": format!("{ty}.r{i}"), "mode": "managed", "type": ty, "name": format!("r{i}"),
                        "change": {"actions": actions, "before": before, "after": after, "after_unknown": {}}
                    })
                })
                .collect();
            json!({"format_version": "1.2", "resource_changes": changes})
        })
}

proptest! {
    #[test]
    fn totals_are_sums_and_delta_is_difference(plan in arbitrary_plan()) {
        let e = estimate(&plan, "us-east-1", &Usage::none()).unwrap();
        let total: Decimal = e.resources.iter().map(|r| r.monthly_cost).sum();
        let previous: Decimal = e.resources.iter().map(|r| r.previous_monthly_cost).sum();
        prop_assert_eq!(e.total_monthly_cost, total);
        prop_assert_eq!(e.previous_monthly_cost, previous);
        prop_assert_eq!(e.delta_monthly_cost, e.total_monthly_cost - e.previous_monthly_cost);
        for r in &e.resources {
            let c: Decimal = r.components.iter().map(|c| c.monthly_cost).sum();
            let p: Decimal = r.previous_components.iter().map(|c| c.monthly_cost).sum();
            prop_assert_eq!(r.monthly_cost, c);
            prop_assert_eq!(r.previous_monthly_cost, p);
            prop_assert_eq!(r.delta_monthly_cost, r.monthly_cost - r.previous_monthly_cost);
            if r.action == "create" { prop_assert!(r.previous_components.is_empty()); }
            if r.action == "delete" { prop_assert!(r.components.is_empty()); }
        }
        let n = plan["resource_changes"].as_array().map_or(0, Vec::len);
        prop_assert_eq!(e.resources.len() + e.free.len() + e.unpriced.len(), n);
    }
}

/// The rule for the catalog: every resource a shipped module creates is priced or
/// explicitly free. A new resource type in a module fails here until the engine knows it.
#[test]
fn every_resource_type_of_the_shipped_modules_is_priced_or_free() {
    let modules = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../modules");
    let mut types = std::collections::BTreeSet::new();
    for module in std::fs::read_dir(&modules).unwrap() {
        let module = module.unwrap().path();
        if !module.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&module).unwrap() {
            let file = file.unwrap().path();
            if file.extension().is_some_and(|e| e == "tf") {
                let body = hcl::parse(&std::fs::read_to_string(&file).unwrap()).unwrap();
                for block in body.blocks().filter(|b| b.identifier() == "resource") {
                    types.insert(block.labels()[0].as_str().to_owned());
                }
            }
        }
    }
    assert!(types.len() > 20, "found only {types:?}");
    let changes: Vec<Value> = types
        .iter()
        .map(|ty| {
            json!({"address": format!("{ty}.x"), "mode": "managed", "type": ty, "name": "x",
                   "provider_name": "registry.terraform.io/hashicorp/aws",
                   "change": {"actions": ["create"], "before": null, "after": {}, "after_unknown": {}}})
        })
        .collect();
    let plan = json!({"format_version": "1.2", "resource_changes": changes});
    let e = estimate(&plan, "us-east-1", &Usage::none()).unwrap();
    let unknown: Vec<&str> = e
        .unpriced
        .iter()
        .filter(|u| u.reason.contains("not supported") || u.reason.contains("does not price"))
        .map(|u| u.address.as_str())
        .collect();
    assert!(unknown.is_empty(), "neither priced nor free: {unknown:?}");
}

#[test]
fn missing_price_rows_come_with_the_refresh_command_for_their_region() {
    let mut plan: Value = serde_json::from_str(&fixture("create.json")).unwrap();
    plan["configuration"]["provider_config"] = json!({});
    // mx-central-1 is newer than the EBS price file, so the root volume has no price there.
    let uncovered = estimate(&plan, "mx-central-1", &Usage::none()).unwrap();
    let table = uncovered.render_table();
    assert!(
        table.contains("tollgate pricebook refresh --region mx-central-1 --out prices.csv"),
        "{table}"
    );
    assert!(
        uncovered
            .render_markdown()
            .contains("--region mx-central-1")
    );
    let covered = estimate(&plan, "us-east-1", &Usage::none()).unwrap();
    assert!(covered.unpriced.is_empty(), "{:?}", covered.unpriced);
    assert!(!covered.render_table().contains("pricebook refresh"));
}

/// Forms and types the generated book and the newer pricers cover, checked against the
/// cited rows (controller/data/aws-prices.csv, sources in controller/data/sources/):
/// us-east-1 m3.medium $0.067/h, r3.large $0.166/h, gp2 $0.10/GB-month; Fargate x86 $0.04048
/// per vCPU-hour and $0.004445 per GB-hour; Fargate Windows $0.046552, $0.00511175 and OS
/// license $0.046 per vCPU-hour; DynamoDB WCU $0.00065, RCU $0.00013 per hour (eu-west-1
/// rWCU $0.000735, RCU $0.000147); on-demand us-east-1 WRU $0.625, RRU $0.125 per million,
/// storage $0.25; ap-northeast-1 rWRU $0.715, RRU $0.1425 per million, storage $0.285.
#[test]
fn coverage_forms_golden() {
    let usage = Usage::from_yaml_str(
        "resource_usage:\n  aws_dynamodb_table.events:\n    monthly_write_request_units: 10000000\n    monthly_read_request_units: 20000000\n    storage_gb: 10\n",
    )
    .unwrap();
    let e = estimate_fixture("coverage_forms.json", &usage);
    assert!(e.unpriced.is_empty(), "{:?}", e.unpriced);
    let cost = |a: &str| resource(&e, a).monthly_cost;
    // 730 × 0.067 + 8 × 0.10; 730 × 0.166 + 8 × 0.10.
    assert_eq!(cost("aws_instance.legacy_m3"), d("49.71"));
    assert_eq!(cost("aws_instance.legacy_r3"), d("121.98"));
    // "1 vCPU" / "2 GB" × 2 tasks: 2 × 730 × 0.04048 + 4 × 730 × 0.004445.
    assert_eq!(cost("aws_ecs_service.api"), d("72.0802"));
    // "0.25 vcpu" / "512" Windows: 0.25 × 730 × (0.046552 + 0.046) + 0.5 × 730 × 0.00511175.
    assert_eq!(cost("aws_ecs_service.win"), d("18.75652875"));
    // Auto Scaling minimums 5 WCU / 10 RCU, not the table's 50/50; replica in eu-west-1.
    // 5 × 730 × 0.00065 + 10 × 730 × 0.00013 + 5 × 730 × 0.000735 + 10 × 730 × 0.000147.
    assert_eq!(cost("aws_dynamodb_table.orders"), d("7.07735"));
    // 10 × 0.625 + 20 × 0.125 + 10 × 0.25 + 10 × 0.715 + 20 × 0.1425 + 10 × 0.285.
    assert_eq!(cost("aws_dynamodb_table.events"), d("24.1"));
    let orders = resource(&e, "aws_dynamodb_table.orders");
    assert!(orders.components[0].assumptions[1].contains("min_capacity 5"));
    insta::assert_snapshot!("coverage_forms_explain", e.render_explain());
    insta::assert_snapshot!("coverage_forms_json", e.to_json());
}

/// A real plan (Terraform 1.15 and hashicorp/aws 5.100.0, `coverage_types.tf` next to it)
/// of the resource types priced since the generated book, in eu-west-2, a region the
/// curated book did not cover. Every figure is worked out from the cited rows of the
/// source files (eu-west-2 unless said): m5.large $0.111/h; gp3 $0.0928/GB-month (EBS
/// file); Aurora PostgreSQL db.r6g.large $0.304/h; Serverless v2 $0.14/ACU-hour; Aurora
/// storage $0.10/GB-month, I/O $0.20 per 1M; EFS Standard $0.33/GB-month, provisioned
/// throughput $6.60/MiBps-month; ECR $0.10/GB-month; SNS $0.50 per 1M requests; Kinesis
/// shard $0.0179/h, extended retention $0.0242/shard-hour; MSK kafka.m5.large
/// $0.243/h, storage $0.116/GB-month; alarm $0.10; dashboard $3 (regionless); TGW
/// attachment $0.06/h, $0.02/GB; VPN connection $0.05/h; WAF ACL $5, rule $1; HTTP API
/// $1.16 per 1M requests.
#[test]
fn coverage_types_golden() {
    let usage = Usage::from_yaml_str(&fixture("coverage_types.usage.yml")).unwrap();
    let e = estimate_fixture("coverage_types.json", &usage);
    assert_eq!(e.region, "eu-west-2");
    assert!(e.unpriced.is_empty(), "{:?}", e.unpriced);
    let cost = |a: &str| resource(&e, a).monthly_cost;
    // 3 × 730 × 0.111 + 3 × 30 × 0.0928.
    assert_eq!(cost("aws_autoscaling_group.web"), d("251.442"));
    // 200 × 0.10 + 100 × 0.20; 730 × 0.304; min_capacity 0.5 × 730 × 0.14 each.
    assert_eq!(cost("aws_rds_cluster.db"), d("40"));
    assert_eq!(cost("aws_rds_cluster_instance.reporting"), d("221.92"));
    assert_eq!(cost("aws_rds_cluster_instance.serverless[0]"), d("51.1"));
    assert_eq!(cost("aws_rds_cluster_instance.serverless[1]"), d("51.1"));
    // 500 × 0.33 + 10 × 6.60; 40 × 0.10; 2 × 0.50; the HTTPS subscription has no usage.
    assert_eq!(cost("aws_efs_file_system.shared"), d("231"));
    assert_eq!(cost("aws_ecr_repository.app"), d("4"));
    assert_eq!(cost("aws_sns_topic.alerts"), d("1"));
    assert_eq!(cost("aws_sns_topic_subscription.pager"), d("0"));
    // 4 × 730 × (0.0179 + 0.0242).
    assert_eq!(cost("aws_kinesis_stream.events"), d("122.932"));
    // 3 × 730 × 0.243 + 3 × 100 × 0.116.
    assert_eq!(cost("aws_msk_cluster.kafka"), d("566.97"));
    assert_eq!(cost("aws_cloudwatch_metric_alarm.cpu"), d("0.1"));
    assert_eq!(cost("aws_cloudwatch_dashboard.ops"), d("3"));
    // 730 × 0.06 + 1,000 × 0.02; 730 × 0.05 + 730 × 0.06.
    assert_eq!(
        cost("aws_ec2_transit_gateway_vpc_attachment.app"),
        d("63.8")
    );
    assert_eq!(cost("aws_vpn_connection.office"), d("80.3"));
    assert_eq!(cost("aws_wafv2_web_acl.edge"), d("6"));
    assert_eq!(cost("aws_apigatewayv2_api.http"), d("58"));
    assert_eq!(e.total_monthly_cost, d("1752.664"));
    insta::assert_snapshot!("coverage_types_table", e.render_table());
    insta::assert_snapshot!("coverage_types_explain", e.render_explain());
}

/// A real plan (Terraform 1.15.5 and hashicorp/aws 6.47.1, `coverage_types_2.tf` next to
/// it) of the types priced last: OpenSearch (and Elasticsearch) domains, Amazon MQ
/// brokers, a Backup vault with its plan, and a REST API past the first price tier, in
/// eu-west-2. The rows (eu-west-2): processed/es.json r6g.large.search $0.197/h,
/// m6g.large.search $0.147/h, m4.large.search $0.184/h, gp3 $0.1415/GB-month, gp2
/// $0.157/GB-month; es-ondemand.json gp3 IOPS $0.0093/IOPS-month, throughput
/// $0.0742/MiBps-month; processed/mq.json ActiveMQ mq.m5.large active/standby $0.666/h,
/// RabbitMQ mq.m5.large cluster $0.999/h, EFS storage $0.33, EBS $0.116/GB-month;
/// processed/backup.json warm $0.06, cold $0.012/GB-month; processed/apigateway.json REST
/// $3.50, $3.33, $2.83 per 1M (first 333M, next 667M, next 19B).
#[test]
fn coverage_types_2_golden() {
    let usage = Usage::from_yaml_str(&fixture("coverage_types_2.usage.yml")).unwrap();
    let e = estimate_fixture("coverage_types_2.json", &usage);
    assert_eq!(e.region, "eu-west-2");
    assert!(e.unpriced.is_empty(), "{:?}", e.unpriced);
    let cost = |a: &str| resource(&e, a).monthly_cost;
    // 3 × 730 × 0.197 + 3 × 730 × 0.147 + 3 × 100 × 0.1415 + 3 × 1,000 × 0.0093 + 3 × 125 ×
    // 0.0742.
    assert_eq!(cost("aws_opensearch_domain.logs"), d("851.535"));
    // 2 × 730 × 0.184 + 2 × 10 × 0.157 (volume type left to AWS: gp2, stated).
    assert_eq!(cost("aws_elasticsearch_domain.legacy"), d("271.78"));
    // 730 × 0.666 + 50 × 0.33; 730 × 0.999 + 20 × 0.116.
    assert_eq!(cost("aws_mq_broker.orders"), d("502.68"));
    assert_eq!(cost("aws_mq_broker.events"), d("731.59"));
    // 500 × 0.06 + 2,000 × 0.012.
    assert_eq!(cost("aws_backup_vault.main"), d("54"));
    // 333 × 3.50 + 667 × 3.33 + 500 × 2.83.
    assert_eq!(cost("aws_api_gateway_rest_api.public"), d("4801.61"));
    assert!(e.free.iter().any(|f| f.address == "aws_backup_plan.daily"));
    assert_eq!(e.total_monthly_cost, d("7213.195"));
    insta::assert_snapshot!("coverage_types_2_explain", e.render_explain());
}

/// Published on-demand rows, copied by hand from the source files (not read through the
/// generator or the book), per region: MSK kafka.m5.large broker-hour, Kinesis shard-hour,
/// Aurora PostgreSQL Serverless v2 ACU-hour, EC2 m5.large hour, EBS gp3 GB-month, MSK
/// broker storage GB-month. processed/msk.json `[RunBroker] … m5.large` and `RunVolume`,
/// processed/kinesis.json `Provisioned shard
/// hour per ShardHour`, processed/rds-aurora-storage.json `Aurora PostgreSQL ServerlessV2`,
/// processed/ec2.json `OnDemand Linux-instancetype-m5.large`, ebs.json `Storage General
/// Purpose gp3 GB Mo`.
const PUBLISHED: [(&str, [&str; 6]); 3] = [
    (
        "us-east-1",
        ["0.21", "0.015", "0.12", "0.096", "0.08", "0.10"],
    ),
    (
        "eu-west-2",
        ["0.243", "0.0179", "0.14", "0.111", "0.0928", "0.116"],
    ),
    (
        "ap-northeast-1",
        ["0.271", "0.0195", "0.15", "0.124", "0.096", "0.12"],
    ),
];

fn sized_plan(brokers: u32, shards: u32, half_acus: u32, desired: u32, gb: u32) -> Value {
    let change = |ty: &str, name: &str, after: Value| {
        json!({"address": format!("{ty}.{name}"), "mode": "managed", "type": ty, "name": name,
               "change": {"actions": ["create"], "before": null, "after": after, "after_unknown": {}}})
    };
    let config = |ty: &str, name: &str, expressions: Value| {
        json!({"address": format!("{ty}.{name}"), "mode": "managed", "type": ty, "name": name,
               "expressions": expressions})
    };
    json!({
        "format_version": "1.2",
        "resource_changes": [
            change("aws_msk_cluster", "k", json!({"number_of_broker_nodes": brokers,
                "broker_node_group_info": [{"instance_type": "kafka.m5.large",
                    "storage_info": [{"ebs_storage_info": [{"volume_size": 1}]}]}]})),
            change("aws_kinesis_stream", "s", json!({"shard_count": shards, "retention_period": 24})),
            change("aws_rds_cluster", "db", json!({"engine": "aurora-postgresql",
                "serverlessv2_scaling_configuration": [{"min_capacity": f64::from(half_acus) / 2.0, "max_capacity": 256}]})),
            change("aws_rds_cluster_instance", "db", json!({"engine": "aurora-postgresql", "instance_class": "db.serverless"})),
            change("aws_launch_template", "lt", json!({"instance_type": "m5.large",
                "block_device_mappings": [{"ebs": [{"volume_size": gb, "volume_type": "gp3"}]}]})),
            change("aws_autoscaling_group", "g", json!({"desired_capacity": desired, "min_size": 0, "launch_template": [{}]})),
        ],
        "configuration": {"root_module": {"resources": [
            config("aws_rds_cluster_instance", "db", json!({"cluster_identifier": {"references": ["aws_rds_cluster.db.id", "aws_rds_cluster.db"]}})),
            config("aws_autoscaling_group", "g", json!({"launch_template": [{"id": {"references": ["aws_launch_template.lt.id", "aws_launch_template.lt"]}}]})),
        ]}}
    })
}

proptest! {
    /// Sized resources cost their size × the published price × 730 hours, in any region.
    #[test]
    fn sized_resources_cost_size_times_the_published_price(
        region in 0usize..PUBLISHED.len(),
        brokers in 1u32..=30,
        shards in 1u32..=500,
        half_acus in 1u32..=512,
        desired in 0u32..=100,
        gb in 1u32..=2000,
    ) {
        let (name, rows) = PUBLISHED[region];
        let [broker, shard, acu, m5, gp3, msk_gb] = rows.map(d);
        let hours = d("730");
        let e = estimate(&sized_plan(brokers, shards, half_acus, desired, gb), name, &Usage::none()).unwrap();
        prop_assert!(e.unpriced.is_empty(), "{:?}", e.unpriced);
        let cost = |a: &str| resource(&e, a).components.iter().map(|c| c.monthly_cost).sum::<Decimal>();
        let brokers = Decimal::from(brokers);
        prop_assert_eq!(cost("aws_msk_cluster.k"), brokers * broker * hours + brokers * msk_gb);
        prop_assert_eq!(cost("aws_kinesis_stream.s"), Decimal::from(shards) * shard * hours);
        prop_assert_eq!(cost("aws_rds_cluster_instance.db"), Decimal::from(half_acus) / d("2") * acu * hours);
        let desired = Decimal::from(desired);
        prop_assert_eq!(cost("aws_autoscaling_group.g"), desired * m5 * hours + desired * Decimal::from(gb) * gp3);
    }
}

/// OpenSearch and Amazon MQ rows copied by hand from the source files, per region:
/// processed/es.json `r6g large.search - Memory optimized - OnDemand - EBS Only - - -
/// Hourly Cost` and the gp3 item (`kDvqPcuCwNqSGokjnHCHESVa7jmiq7HMOfrpZWR7np4 V2`, "EBS
/// Volume GP3" in es-ondemand.json); processed/mq.json `Single Instance mq m5.large` and
/// `Broker Storage GB Mo`.
const PUBLISHED_SEARCH_MQ: [(&str, [&str; 4]); 3] = [
    ("us-east-1", ["0.167", "0.122", "0.288", "0.30"]),
    ("eu-west-2", ["0.197", "0.1415", "0.333", "0.33"]),
    ("ap-northeast-1", ["0.202", "0.1464", "0.372", "0.36"]),
];

proptest! {
    /// Domains and brokers cost nodes × the published hourly price × 730 plus their storage.
    #[test]
    fn search_domains_and_brokers_cost_the_published_prices(
        region in 0usize..PUBLISHED_SEARCH_MQ.len(),
        nodes in 1u32..=80,
        gb in 10u32..=3000,
        stored in 0u32..=5000,
    ) {
        let (name, rows) = PUBLISHED_SEARCH_MQ[region];
        let [r6g, gp3, broker, efs] = rows.map(d);
        let change = |ty: &str, after: Value| {
            json!({"address": format!("{ty}.x"), "mode": "managed", "type": ty, "name": "x",
                   "change": {"actions": ["create"], "before": null, "after": after, "after_unknown": {}}})
        };
        let plan = json!({"format_version": "1.2", "resource_changes": [
            change("aws_opensearch_domain", json!({"cluster_config": [{"instance_type": "r6g.large.search", "instance_count": nodes}],
                "ebs_options": [{"ebs_enabled": true, "volume_type": "gp3", "volume_size": gb}]})),
            change("aws_mq_broker", json!({"engine_type": "ActiveMQ", "host_instance_type": "mq.m5.large",
                "deployment_mode": "SINGLE_INSTANCE", "storage_type": "efs"})),
        ]});
        let usage = Usage::none().with_type_default("aws_mq_broker", "storage_gb", Decimal::from(stored));
        let e = estimate(&plan, name, &usage).unwrap();
        prop_assert!(e.unpriced.is_empty(), "{:?}", e.unpriced);
        let nodes = Decimal::from(nodes);
        prop_assert_eq!(
            resource(&e, "aws_opensearch_domain.x").monthly_cost,
            nodes * r6g * d("730") + nodes * Decimal::from(gb) * gp3
        );
        prop_assert_eq!(
            resource(&e, "aws_mq_broker.x").monthly_cost,
            broker * d("730") + Decimal::from(stored) * efs
        );
    }
}

/// The real plans of the shipped AWS modules' examples (Terraform 1.15, hashicorp/aws
/// 6.47.1, against moto: `TOLLGATE_AWS_KEEP=DIR bash tests/aws/modules.sh` keeps them),
/// priced with `aws-modules/usage.yml`. eu-west-1 rows: S3 Standard $0.023/GB-month, PUT
/// $0.005 per 1k, GET $0.0004 per 1k; CloudFront US/Europe $0.085/GB, HTTPS $0.01 per 10k;
/// NAT gateway $0.048/h and $0.048/GB; public IPv4 $0.005/h; ALB $0.0252/h, LCU $0.008/h;
/// Fargate x86 $0.04048 per vCPU-hour, $0.004445 per GB-hour; CloudWatch Logs ingestion
/// $0.57/GB, storage $0.03/GB-month; RDS PostgreSQL db.t4g.micro $0.017/h, gp3
/// $0.127/GB-month.
#[test]
fn shipped_module_plans_golden() {
    let usage = Usage::from_yaml_str(&fixture("aws-modules/usage.yml")).unwrap();
    let priced = |name: &str| {
        let e = estimate_fixture(&format!("aws-modules/{name}.json"), &usage);
        assert_eq!(e.region, "eu-west-1", "{name}");
        assert!(e.unpriced.is_empty(), "{name}: {:?}", e.unpriced);
        insta::assert_snapshot!(format!("aws_module_{name}_table"), e.render_table());
        e
    };
    // 100 × 0.023 + 100 × 0.005 + 1,000 × 0.0004.
    let bucket = priced("bucket");
    assert_eq!(bucket.total_monthly_cost, d("3.2"));
    // 50 × 0.085 + 100 × 0.01; 1 × 0.023 + 1 × 0.005 + 100 × 0.0004.
    let site = priced("static-site");
    let cost = |e: &Estimate, a: &str| resource(e, a).monthly_cost;
    assert_eq!(
        cost(&site, "module.site.aws_cloudfront_distribution.this"),
        d("5.25")
    );
    assert_eq!(site.total_monthly_cost, d("5.318"));
    // 730 × 0.048 + 100 × 0.048; 730 × 0.005.
    let network = priced("network");
    assert_eq!(
        cost(&network, "module.network.aws_nat_gateway.this[0]"),
        d("39.84")
    );
    assert_eq!(network.total_monthly_cost, d("43.49"));
    // 730 × 0.017 + 20 × 0.127: the module's `iops = var.iops` is null (gp3 baseline), which
    // the plan shows as unknown.
    let postgres = priced("postgres");
    assert_eq!(postgres.total_monthly_cost, d("14.95"));
    // The network above; 0.25 vCPU and 0.5 GB × 2 tasks × 730 h: 365 × 0.04048 + 730 ×
    // 0.004445; 730 × 0.0252 + 730 × 0.008; 5 × 0.57 + 5 × 0.03.
    let web = priced("web-service");
    assert_eq!(cost(&web, "module.api.aws_ecs_service.this"), d("18.02005"));
    assert_eq!(cost(&web, "module.api.aws_lb.this"), d("24.236"));
    assert_eq!(
        cost(&web, "module.api.aws_cloudwatch_log_group.this"),
        d("3")
    );
    assert_eq!(web.total_monthly_cost, d("88.74605"));
}

/// `iops = var.iops` counts as unset only while the module's input is null: a call that
/// sets it (here to another resource's unknown output) leaves the instance unpriced.
#[test]
fn an_unknown_attribute_from_a_set_module_input_stays_unpriced() {
    let mut plan: Value = serde_json::from_str(&fixture("aws-modules/postgres.json")).unwrap();
    plan["configuration"]["root_module"]["module_calls"]["db"]["expressions"]["iops"] =
        json!({"references": ["aws_ssm_parameter.iops.value", "aws_ssm_parameter.iops"]});
    let e = estimate(&plan, "", &Usage::none()).unwrap();
    assert_eq!(e.unpriced.len(), 1, "{:?}", e.unpriced);
    assert!(
        e.unpriced[0].reason.contains("iops is unknown"),
        "{:?}",
        e.unpriced
    );
}

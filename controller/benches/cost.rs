//! Pricing throughput vs bare JSON parsing, on a generated 10,000-resource plan.
//!
//! Run: `cargo bench --bench cost` (from `controller/`; the bench profile is optimized).
//! The baseline, `serde_json::from_str` of the same plan, is measured in the same run, in
//! alternating rounds, so load from other processes hits both sides alike. Prints each
//! round's ratio `time(estimate_str) / time(serde_json::from_str)` and their median; the
//! goal is ≤ 2×. No assertions: timings depend on the machine. Also prints the embedded
//! price book's size and the time its first use takes to parse it.

use std::hint::black_box;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tollgate::cost::{Usage, estimate_str};

const RESOURCES: usize = 10_000;

fn generate_plan(n: usize) -> String {
    let instance_types = [
        "t3.micro",
        "t3.large",
        "m5.large",
        "c6g.xlarge",
        "r6i.2xlarge",
    ];
    let mut changes = Vec::with_capacity(n);
    let mut config = Vec::new();
    for i in 0..n {
        let (ty, after, unknown) = match i % 12 {
            0 => (
                "aws_instance",
                json!({"ami": "ami-0c02fb55956c7d316", "instance_type": instance_types[i % 5], "tags": {"Name": format!("web-{i}")},
                       "root_block_device": [{"volume_type": "gp3", "volume_size": 20 + i % 50}], "ebs_block_device": []}),
                json!({"arn": true, "id": true, "private_ip": true, "public_ip": true, "tenancy": true}),
            ),
            1 => (
                "aws_ebs_volume",
                json!({"availability_zone": "us-east-1a", "type": "gp3", "size": 10 + i % 900, "iops": 3000 + i % 4000, "throughput": 125}),
                json!({"arn": true, "id": true}),
            ),
            2 => (
                "aws_nat_gateway",
                json!({"connectivity_type": "public"}),
                json!({"id": true, "allocation_id": true}),
            ),
            3 => (
                "aws_security_group",
                json!({"name": format!("sg-{i}"), "ingress": [], "egress": []}),
                json!({"id": true, "arn": true}),
            ),
            4 => (
                "aws_db_instance",
                json!({"engine": "postgres", "instance_class": "db.t3.large", "allocated_storage": 100, "storage_type": "gp3", "multi_az": i % 2 == 0}),
                json!({"id": true, "endpoint": true, "address": true}),
            ),
            5 => (
                "aws_lb",
                json!({"name": format!("lb-{i}"), "load_balancer_type": "application"}),
                json!({"arn": true, "dns_name": true}),
            ),
            6 => (
                "aws_s3_bucket",
                json!({"bucket": format!("bucket-{i}")}),
                json!({"arn": true, "id": true}),
            ),
            7 => (
                "aws_launch_template",
                json!({"instance_type": instance_types[i % 5], "block_device_mappings": [{"ebs": [{"volume_size": 30, "volume_type": "gp3"}]}]}),
                json!({"id": true, "arn": true}),
            ),
            // The group started from the template just before it (found by reference).
            8 => (
                "aws_autoscaling_group",
                json!({"desired_capacity": 1 + i % 7, "min_size": 1, "max_size": 10, "launch_template": [{"version": "$Latest"}]}),
                json!({"id": true, "arn": true, "launch_template": [{"id": true}]}),
            ),
            9 => (
                "aws_msk_cluster",
                json!({"number_of_broker_nodes": 3, "broker_node_group_info": [{"instance_type": "kafka.m5.large",
                       "storage_info": [{"ebs_storage_info": [{"volume_size": 100 + i % 500}]}]}]}),
                json!({"arn": true, "bootstrap_brokers": true}),
            ),
            10 => (
                "aws_kinesis_stream",
                json!({"shard_count": 1 + i % 16, "retention_period": 24 + i % 144}),
                json!({"arn": true, "id": true}),
            ),
            _ => (
                "aws_iam_role",
                json!({"name": format!("role-{i}"), "assume_role_policy": "{}"}),
                json!({"arn": true, "id": true}),
            ),
        };
        let address = format!("{ty}.r{i}");
        changes.push(json!({
            "address": address, "mode": "managed", "type": ty, "name": format!("r{i}"),
            "provider_name": "registry.terraform.io/hashicorp/aws",
            "change": {"actions": ["create"], "before": null, "after": after, "after_unknown": unknown,
                       "before_sensitive": false, "after_sensitive": {}}
        }));
        let expressions = if ty == "aws_autoscaling_group" {
            let template = format!("aws_launch_template.r{}", i - 1);
            json!({"launch_template": [{"id": {"references": [format!("{template}.id"), template]}}]})
        } else {
            json!({})
        };
        config.push(
            json!({"address": address, "mode": "managed", "type": ty, "name": format!("r{i}"),
                           "provider_config_key": "aws", "expressions": expressions}),
        );
    }
    let plan: Value = json!({
        "format_version": "1.2",
        "terraform_version": "1.9.8",
        "resource_changes": changes,
        "configuration": {
            "provider_config": {"aws": {"name": "aws", "expressions": {"region": {"constant_value": "us-east-1"}}}},
            "root_module": {"resources": config}
        }
    });
    serde_json::to_string(&plan).unwrap_or_default()
}

fn time<F: FnMut()>(iterations: u32, mut f: F) -> Duration {
    f(); // warm-up
    let start = Instant::now();
    for _ in 0..iterations {
        f();
    }
    start.elapsed() / iterations
}

fn main() {
    // First use parses the embedded book (once per process); timed on its own so the
    // pricing ratio below is the steady state the controller runs in.
    let start = Instant::now();
    let rows = tollgate::cost::price_book().map(|b| b.len()).unwrap_or(0);
    let load = start.elapsed();
    println!(
        "price book: {rows} rows, {} bytes embedded, loaded in {load:?}",
        include_str!("../data/aws-prices.csv").len()
    );
    let plan = generate_plan(RESOURCES);
    let usage = Usage::none();
    let priced = estimate_str(&plan, "us-east-1", &usage)
        .map(|e| (e.resources.len(), e.free.len(), e.unpriced.len()))
        .unwrap_or_default();
    println!(
        "plan: {RESOURCES} resources, {} bytes; priced {}, free {}, unpriced {}",
        plan.len(),
        priced.0,
        priced.1,
        priced.2
    );
    let rounds = 7;
    let iterations = 5;
    let mut ratios = Vec::with_capacity(rounds);
    for round in 1..=rounds {
        let parse = time(iterations, || {
            let v: Value = serde_json::from_str(black_box(&plan)).unwrap_or(Value::Null);
            black_box(v);
        });
        let price = time(iterations, || {
            let e = estimate_str(black_box(&plan), "us-east-1", &usage);
            black_box(e.map(|e| e.resources.len()).unwrap_or(0));
        });
        let ratio = price.as_secs_f64() / parse.as_secs_f64();
        println!(
            "round {round}: serde_json::from_str {parse:?}, cost::estimate_str {price:?} (parse + price + totals): {ratio:.2}x"
        );
        ratios.push(ratio);
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "ratio estimate/parse: median {:.2}x, min {:.2}x, max {:.2}x over {rounds} rounds (goal <= 2x)",
        ratios[rounds / 2],
        ratios[0],
        ratios[rounds - 1]
    );
}

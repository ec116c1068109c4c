//! Judging a 1,000-resource plan with the built-in policy pack against that plan's own
//! `terraform show -json`, measured in the same run (goal: ≤ 10%).
//!
//! The plan is real: 1,000 `terraform_data` resources planned by Terraform. The pack only
//! fires on AWS types, so the same plan is judged a second time with its resources
//! relabelled as the AWS types the pack inspects (buckets, security groups with ingress
//! rules, databases, volumes, instances, all tagged): the cost of rules that match.
//!
//!     cargo bench --bench policy          # needs terraform on PATH or TOLLGATE_TERRAFORM

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tollgate::policy::{PolicyConfig, PolicyInput, PolicySet, ProjectFacts};

const RESOURCES: usize = 1000;
const ROUNDS: usize = 7;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[allow(clippy::expect_used)]
fn terraform(binary: &str, dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new(binary)
        .arg(format!("-chdir={}", dir.display()))
        .args(args)
        .env("TF_IN_AUTOMATION", "1")
        .output()
        .expect("run terraform");
    assert!(out.status.success(), "terraform {args:?} failed");
    out.stdout
}

/// The plan's resources relabelled as AWS resources the pack inspects.
fn as_aws(plan: &Value) -> Value {
    let mut plan = plan.clone();
    let tags = json!({"tollgate.dev/project": "bench", "tollgate.dev/environment": "production"});
    let shapes = [
        ("aws_s3_bucket", json!({"bucket": "b", "tags_all": tags})),
        (
            "aws_security_group",
            json!({"ingress": [{"protocol": "tcp", "from_port": 443, "to_port": 443, "cidr_blocks": ["0.0.0.0/0"]}, {"protocol": "tcp", "from_port": 22, "to_port": 22, "cidr_blocks": ["10.0.0.0/8"]}], "tags_all": tags}),
        ),
        (
            "aws_db_instance",
            json!({"storage_encrypted": true, "publicly_accessible": false, "deletion_protection": true, "backup_retention_period": 7, "instance_class": "db.r7g.large", "tags_all": tags}),
        ),
        (
            "aws_ebs_volume",
            json!({"encrypted": true, "tags_all": tags}),
        ),
        (
            "aws_instance",
            json!({"instance_type": "m7i.large", "root_block_device": [{"encrypted": true}], "tags_all": tags}),
        ),
    ];
    if let Some(changes) = plan["resource_changes"].as_array_mut() {
        for (i, change) in changes.iter_mut().enumerate() {
            let (kind, after) = &shapes[i % shapes.len()];
            change["type"] = json!(kind);
            change["address"] = json!(format!("module.m{}.{kind}.r", i % 50));
            change["module_address"] = json!(format!("module.m{}", i % 50));
            change["change"]["after"] = after.clone();
        }
    }
    plan
}

#[allow(clippy::expect_used)]
fn judge(set: &PolicySet, plan: &Value) -> Duration {
    let labels = BTreeMap::new();
    let started = Instant::now();
    let findings = set
        .evaluate(&PolicyInput {
            plan,
            project: ProjectFacts {
                namespace: "bench",
                name: "bench",
                environment: "production",
                labels: &labels,
            },
            cost: None,
        })
        .expect("the pack evaluates");
    let elapsed = started.elapsed();
    std::hint::black_box(findings);
    elapsed
}

#[allow(clippy::expect_used)]
fn main() {
    let binary = std::env::var("TOLLGATE_TERRAFORM").unwrap_or_else(|_| "terraform".into());
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("main.tf"),
        format!(
            "resource \"terraform_data\" \"r\" {{\n  count = {RESOURCES}\n  input = {{ name = \"r-${{count.index}}\", encrypted = true, size = 100 }}\n}}\n"
        ),
    )
    .expect("write main.tf");
    terraform(&binary, dir.path(), &["init", "-input=false", "-no-color"]);
    terraform(
        &binary,
        dir.path(),
        &["plan", "-input=false", "-no-color", "-out=tfplan"],
    );
    let set = PolicySet::new(Vec::new(), None, PolicyConfig::default());
    let mut show = Vec::new();
    let mut real = Vec::new();
    let mut aws = Vec::new();
    let mut plan = Value::Null;
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let json = terraform(&binary, dir.path(), &["show", "-json", "tfplan"]);
        show.push(started.elapsed());
        plan = serde_json::from_slice(&json).expect("plan JSON");
        real.push(judge(&set, &plan));
        aws.push(judge(&set, &as_aws(&plan)));
    }
    let changes = plan["resource_changes"].as_array().map_or(0, Vec::len);
    let (show, real, aws) = (median(show), median(real), median(aws));
    let ratio = |d: Duration| d.as_secs_f64() / show.as_secs_f64();
    println!("policy pack on a {changes}-resource plan, medians of {ROUNDS} rounds");
    println!("  terraform show -json        {show:>10.1?}");
    println!(
        "  pack, terraform_data plan   {real:>10.1?}  {:.3}x of show -json (goal <= 0.10x)",
        ratio(real)
    );
    println!(
        "  pack, as AWS resources      {aws:>10.1?}  {:.3}x of show -json (goal <= 0.10x)",
        ratio(aws)
    );
}

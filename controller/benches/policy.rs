//! Judging a 1,000-resource plan with the built-in policy pack against that plan's own
//! `terraform show -json`, measured in the same run (goal: ≤ 10%).
//!
//! The plan is real: 1,000 `terraform_data` resources planned by Terraform. The pack only
//! fires on AWS types, so the same plan is judged a second time with its resources
//! relabelled as the AWS types the pack inspects (buckets, security groups with ingress
//! rules, databases, volumes, instances, all tagged): the cost of rules that match.
//!
//! Wall time is the goal's measure, but on a shared machine it mostly measures the load, so
//! the same runs are also measured in CPU time (the pack's thread from the kernel's
//! scheduler statistics, Terraform's from its waited-for process tree), which the load
//! barely moves.
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

/// A wall-clock and a CPU-time measurement of the same work.
#[derive(Clone, Copy)]
struct Sample {
    wall: Duration,
    cpu: Duration,
}

/// CPU time this thread has run (`/proc/thread-self/schedstat`, nanoseconds).
#[allow(clippy::expect_used)]
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").expect("schedstat");
    let nanos = stat.split_whitespace().next().and_then(|n| n.parse().ok());
    Duration::from_nanos(nanos.expect("schedstat starts with the CPU time"))
}

/// CPU time of this process's waited-for children (`cutime + cstime` of `/proc/self/stat`).
#[allow(clippy::expect_used)]
fn children_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("stat");
    // Fields after the parenthesised command name; cutime and cstime are fields 16 and 17.
    let rest = &stat[stat.rfind(')').expect("stat has a command name") + 2..];
    let fields: Vec<u64> = rest
        .split_whitespace()
        .skip(13)
        .take(2)
        .map(|f| f.parse().expect("a tick count"))
        .collect();
    let ticks_per_second = 100; // USER_HZ on Linux
    Duration::from_millis((fields[0] + fields[1]) * 1000 / ticks_per_second)
}

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
            // Addresses stay unique, as in any real plan.
            change["address"] = json!(format!("module.m{}.{kind}.r[{i}]", i % 50));
            change["module_address"] = json!(format!("module.m{}", i % 50));
            change["change"]["after"] = after.clone();
        }
    }
    plan
}

#[allow(clippy::expect_used)]
fn judge(set: &PolicySet, plan: &Value) -> Sample {
    let labels = BTreeMap::new();
    let started = Instant::now();
    let cpu_started = thread_cpu();
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
    let sample = Sample {
        wall: started.elapsed(),
        cpu: thread_cpu() - cpu_started,
    };
    std::hint::black_box(findings);
    sample
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
        let cpu_started = children_cpu();
        let json = terraform(&binary, dir.path(), &["show", "-json", "tfplan"]);
        show.push(Sample {
            wall: started.elapsed(),
            cpu: children_cpu() - cpu_started,
        });
        plan = serde_json::from_slice(&json).expect("plan JSON");
        real.push(judge(&set, &plan));
        aws.push(judge(&set, &as_aws(&plan)));
    }
    let changes = plan["resource_changes"].as_array().map_or(0, Vec::len);
    println!("policy pack on a {changes}-resource plan, medians of {ROUNDS} rounds");
    for (measure, pick) in [
        (
            "wall time",
            (|s: &Sample| s.wall) as fn(&Sample) -> Duration,
        ),
        ("CPU time", |s: &Sample| s.cpu),
    ] {
        let of = |samples: &[Sample]| median(samples.iter().map(pick).collect());
        let (show, real, aws) = (of(&show), of(&real), of(&aws));
        let ratio = |d: Duration| d.as_secs_f64() / show.as_secs_f64();
        println!("  {measure}");
        println!("    terraform show -json        {show:>10.1?}");
        println!(
            "    pack, terraform_data plan   {real:>10.1?}  {:.3}x of show -json (goal <= 0.10x)",
            ratio(real)
        );
        println!(
            "    pack, as AWS resources      {aws:>10.1?}  {:.3}x of show -json (goal <= 0.10x)",
            ratio(aws)
        );
    }
}

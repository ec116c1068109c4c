//! Aurora: clusters (storage and I/O) and their instances (provisioned or Serverless v2).

use rust_decimal::Decimal;

use super::{ALWAYS_ON, Outcome, Priced, PricerInput};
use crate::cost::estimate::{Component, HOURS_PER_MONTH};
use crate::cost::plan_view::{Attrs, Change};

/// The price book's engine name for an Aurora engine (`aurora` is Aurora MySQL 1).
fn aurora_engine(engine: &str) -> Result<&'static str, String> {
    match engine {
        "aurora" | "aurora-mysql" => Ok("aurora-mysql"),
        "aurora-postgresql" => Ok("aurora-postgresql"),
        other => Err(format!(
            "engine `{other}` is a Multi-AZ DB cluster, which is not priced (only Aurora clusters are)"
        )),
    }
}

/// `aws_rds_cluster` (Aurora): storage and, on Aurora Standard, I/O requests, both from
/// the usage file (`storage_gb`, `monthly_io_requests`); compute is billed on the
/// cluster's instances. Serverless v1 (`engine_mode = "serverless"`) is not priced.
pub(crate) fn rds_cluster(ctx: &PricerInput<'_, '_>) -> Priced {
    let a = ctx.attrs();
    let engine = ctx.req_str(&a, "engine")?;
    aurora_engine(engine)?;
    match ctx.opt_str(&a, "engine_mode")? {
        None | Some("provisioned") => {}
        Some(mode) => {
            return Err(format!(
                "engine_mode `{mode}` is not priced (Aurora Serverless v1 is end of life; Serverless v2 is priced on the cluster's db.serverless instances)"
            ));
        }
    }
    // Unset: Aurora Standard, AWS's default.
    let io_optimized = ctx.opt_str(&a, "storage_type")? == Some("aurora-iopt1");
    cluster_storage(ctx, &AURORA_STORAGE, io_optimized)
}

/// The price rows of a cluster's storage: `service`, its Standard and I/O-Optimized
/// storage keys and its I/O request key; `product` names it in component names.
pub(super) struct ClusterStorage {
    pub service: &'static str,
    pub product: &'static str,
    pub standard: &'static str,
    pub io_optimized: &'static str,
    pub io_requests: &'static str,
}

const AURORA_STORAGE: ClusterStorage = ClusterStorage {
    service: "rds",
    product: "Aurora",
    standard: "aurora-storage:standard",
    io_optimized: "aurora-storage:io-optimized",
    io_requests: "aurora-io",
};

/// Storage (usage `storage_gb`) and, on Standard storage, I/O requests (usage
/// `monthly_io_requests`) of an Aurora or DocumentDB cluster.
pub(super) fn cluster_storage(
    ctx: &PricerInput<'_, '_>,
    rows: &ClusterStorage,
    io_optimized: bool,
) -> Priced {
    let product = rows.product;
    if io_optimized {
        return Ok(Outcome::Components(vec![ctx.usage_based(
            format!("Storage ({product} I/O-Optimized)"),
            rows.service,
            rows.io_optimized,
            "storage_gb",
            Decimal::ONE,
        )?]));
    }
    Ok(Outcome::Components(vec![
        ctx.usage_based(
            format!("Storage ({product} Standard)"),
            rows.service,
            rows.standard,
            "storage_gb",
            Decimal::ONE,
        )?,
        ctx.usage_based(
            format!("I/O requests ({product} Standard)"),
            rows.service,
            rows.io_requests,
            "monthly_io_requests",
            Decimal::from(1_000_000),
        )?,
    ]))
}

/// `aws_rds_cluster_instance`: a provisioned class is priced as the engine's instance
/// (I/O-Optimized rows when the cluster is); `db.serverless` is Serverless v2, priced in
/// ACU-hours at the usage file's `average_acu`, else at the cluster's `min_capacity`
/// (the least it keeps).
pub(crate) fn rds_cluster_instance(ctx: &PricerInput<'_, '_>) -> Priced {
    let a = ctx.attrs();
    let engine = aurora_engine(ctx.req_str(&a, "engine")?)?;
    let class = ctx.req_str(&a, "instance_class")?;
    let cluster = cluster_of(ctx, &a, "aws_rds_cluster");
    let cluster_attrs = cluster.map(|c| ctx.side_of(c));
    let iopt = match &cluster_attrs {
        Some(c) => c.str("storage_type") == Ok(Some("aurora-iopt1")),
        None => false,
    };
    let suffix = if iopt { ":io-optimized" } else { "" };
    let storage = if iopt { "I/O-Optimized" } else { "Standard" };
    if class != "db.serverless" {
        let mut c = ctx.hourly(
            format!("Database instance (on-demand, {engine}, {class}, Aurora {storage})"),
            "rds",
            &format!("instance:{engine}{suffix}:{class}"),
            Decimal::ONE,
        )?;
        if cluster.is_none() {
            c = c.assuming("the cluster is not in the plan: priced as Aurora Standard");
        }
        return Ok(Outcome::Components(vec![c]));
    }
    let row = ctx.price("rds", &format!("serverless-v2:{engine}{suffix}"))?;
    let name = format!("Serverless v2 capacity ({engine}, Aurora {storage})");
    if let Some(acu) = ctx.usage_value("average_acu") {
        return Ok(Outcome::Components(vec![
            Component::from_row(name, row, acu * HOURS_PER_MONTH, true)
                .assuming(ctx.usage_assumption("average_acu"))
                .assuming(ALWAYS_ON),
        ]));
    }
    let (Some(cluster), Some(attrs)) = (cluster, cluster_attrs) else {
        return Err(
            "db.serverless instance whose cluster is not in the plan: its ACU range is unknown (or give average_acu in the usage file)"
                .into(),
        );
    };
    let scaling = attrs
        .blocks("serverlessv2_scaling_configuration")
        .map_err(|_| PricerInput::unknown("serverlessv2_scaling_configuration"))?;
    let Some(scaling) = scaling.first() else {
        return Err(format!(
            "{} sets no serverlessv2_scaling_configuration, so the ACU range is unknown",
            cluster.address
        ));
    };
    let min = match scaling.number("min_capacity") {
        Ok(Some(m)) => m,
        Ok(None) => return Err("serverlessv2_scaling_configuration.min_capacity is not set".into()),
        Err(_) => {
            return Err(PricerInput::unknown(
                "serverlessv2_scaling_configuration.min_capacity",
            ));
        }
    };
    let max = scaling
        .number("max_capacity")
        .ok()
        .flatten()
        .map(|m| format!(", up to max_capacity {}", m.normalize()))
        .unwrap_or_default();
    Ok(Outcome::Components(vec![
        Component::from_row(name, row, min * HOURS_PER_MONTH, false)
            .assuming(format!(
                "priced at {}'s min_capacity {} ACU (the least it keeps{max}); give average_acu in the usage file for a busier database",
                cluster.address,
                min.normalize()
            ))
            .assuming(ALWAYS_ON),
    ]))
}

/// The instance's cluster (`aws_rds_cluster`, `aws_docdb_cluster`): through the
/// configuration reference, else by identifier.
pub(super) fn cluster_of<'c, 'a>(
    ctx: &PricerInput<'c, 'a>,
    a: &Attrs<'a>,
    cluster_type: &str,
) -> Option<&'c Change<'a>> {
    let references = ctx.plan.references(ctx.change, "cluster_identifier");
    if let Some(found) = ctx.referenced(&references, cluster_type) {
        return Some(found);
    }
    let id = a.str("cluster_identifier").ok().flatten()?;
    ctx.plan.changes.iter().find(|c| {
        c.resource_type == cluster_type && ctx.side_of(c).str("cluster_identifier") == Ok(Some(id))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use serde_json::{Value, json};

    use super::super::test_support::*;
    use crate::cost::usage::Usage;

    /// A cluster and one instance that references it, as `terraform show -json` writes
    /// them when both are created.
    fn cluster_plan(cluster: Value, instance: Value) -> Value {
        json!({
            "format_version": "1.2",
            "resource_changes": [
                {"address": "aws_rds_cluster.db", "mode": "managed", "type": "aws_rds_cluster", "name": "db",
                 "change": {"actions": ["create"], "before": null, "after": cluster, "after_unknown": {}}},
                {"address": "aws_rds_cluster_instance.db[0]", "mode": "managed", "type": "aws_rds_cluster_instance", "name": "db", "index": 0,
                 "change": {"actions": ["create"], "before": null, "after": instance, "after_unknown": {"cluster_identifier": true}}}
            ],
            "configuration": {"root_module": {"resources": [
                {"address": "aws_rds_cluster.db", "mode": "managed", "type": "aws_rds_cluster", "name": "db", "expressions": {}},
                {"address": "aws_rds_cluster_instance.db", "mode": "managed", "type": "aws_rds_cluster_instance", "name": "db",
                 "expressions": {"cluster_identifier": {"references": ["aws_rds_cluster.db.id", "aws_rds_cluster.db"]}}}
            ]}}
        })
    }

    /// Prices the plan's instance (the second change).
    fn price_instance(plan: &Value, usage: &Usage) -> Vec<crate::cost::estimate::Component> {
        let mut p = plan.clone();
        p["resource_changes"].as_array_mut().unwrap().swap(0, 1);
        components(price_plan(&p, "us-east-1", usage))
    }

    #[test]
    fn serverless_v2_is_priced_at_the_clusters_minimum() {
        // us-east-1 Aurora PostgreSQL Serverless v2 $0.12/ACU-hour × 0.5 ACU × 730 = 43.80.
        let p = cluster_plan(
            json!({"engine": "aurora-postgresql", "cluster_identifier": "db",
                   "serverlessv2_scaling_configuration": [{"min_capacity": 0.5, "max_capacity": 16}]}),
            json!({"engine": "aurora-postgresql", "instance_class": "db.serverless"}),
        );
        let c = price_instance(&p, &Usage::none());
        assert_eq!(total(&c), d("43.8"));
        assert!(
            c[0].assumptions
                .iter()
                .any(|a| a.contains("min_capacity 0.5 ACU") && a.contains("max_capacity 16")),
            "{c:?}"
        );
        // The usage file's average_acu replaces the minimum: 4 × 0.12 × 730 = 350.40.
        let usage = Usage::from_yaml_str(
            "resource_usage:\n  aws_rds_cluster_instance.db[0]:\n    average_acu: 4\n",
        )
        .unwrap();
        let c = price_instance(&p, &usage);
        assert_eq!(total(&c), d("350.4"));
        assert!(c[0].usage_based);
    }

    #[test]
    fn io_optimized_clusters_use_their_own_rows() {
        // I/O-Optimized: Serverless v2 $0.16 × 2 × 730 = 233.60; db.r6g.large $0.338 × 730 = 246.74.
        let cluster = json!({"engine": "aurora-mysql", "storage_type": "aurora-iopt1",
                             "serverlessv2_scaling_configuration": [{"min_capacity": 2, "max_capacity": 8}]});
        let p = cluster_plan(
            cluster.clone(),
            json!({"engine": "aurora-mysql", "instance_class": "db.serverless"}),
        );
        assert_eq!(total(&price_instance(&p, &Usage::none())), d("233.6"));
        let p = cluster_plan(
            cluster,
            json!({"engine": "aurora-postgresql", "instance_class": "db.r6g.large"}),
        );
        assert_eq!(total(&price_instance(&p, &Usage::none())), d("246.74"));
    }

    #[test]
    fn cluster_storage_and_io_are_usage_based() {
        // Aurora Standard: 100 GB × $0.10 = 10; 50M I/O × $0.20 per 1M = 10.
        let usage = Usage::from_yaml_str(
            "resource_usage:\n  aws_rds_cluster.this:\n    storage_gb: 100\n    monthly_io_requests: 50000000\n",
        )
        .unwrap();
        let c = components(price_after_in(
            "aws_rds_cluster",
            json!({"engine": "aurora-postgresql"}),
            "us-east-1",
            &usage,
        ));
        assert_eq!(total(&c), d("20"));
        assert!(c.iter().all(|c| c.usage_based));
        // Without usage: both listed at quantity 0, never a silent omission.
        let c = components(price_after(
            "aws_rds_cluster",
            json!({"engine": "aurora-mysql"}),
        ));
        assert_eq!(c.len(), 2);
        assert_eq!(total(&c), d("0"));
        let err = price_after("aws_rds_cluster", json!({"engine": "postgres"})).unwrap_err();
        assert!(err.contains("Multi-AZ DB cluster"), "{err}");
        let err = price_after(
            "aws_rds_cluster",
            json!({"engine": "aurora-mysql", "engine_mode": "serverless"}),
        )
        .unwrap_err();
        assert!(err.contains("Serverless v1"), "{err}");
    }
}

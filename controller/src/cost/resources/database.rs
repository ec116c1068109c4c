//! RDS instances, ElastiCache and DynamoDB.

use rust_decimal::Decimal;

use super::{Outcome, Priced, PricerInput, Side};
use crate::cost::estimate::Component;
use crate::cost::plan_view::{Attrs, Change, local_address, strip_index};

/// `aws_db_instance`: instance hours by engine, class and deployment, storage by type
/// (default gp2, io1 when `iops` is set) and provisioned IOPS for io1/io2/gp3 (AWS prices
/// Multi-AZ instances, storage and IOPS on rows of their own).
pub(crate) fn db_instance(ctx: &PricerInput<'_, '_>) -> Priced {
    let a = ctx.attrs();
    let engine = ctx.req_str(&a, "engine")?;
    let class = ctx.req_str(&a, "instance_class")?;
    let multi_az = ctx.opt_bool(&a, "multi_az")?.unwrap_or(false);
    // Multi-AZ storage and IOPS rows: `storage-multi-az:gp2`, `iops-multi-az:io1`.
    let az = if multi_az { "-multi-az" } else { "" };
    let (deployment, instance_key) = if multi_az {
        ("Multi-AZ", "instance-multi-az")
    } else {
        ("Single-AZ", "instance")
    };
    let mut out = vec![ctx.hourly(
        format!("Database instance (on-demand, {deployment}, {engine}, {class})"),
        "rds",
        &format!("{instance_key}:{engine}:{class}"),
        Decimal::ONE,
    )?];
    let iops = ctx.opt_number(&a, "iops")?;
    let storage_type = ctx
        .opt_str(&a, "storage_type")?
        .unwrap_or(if iops.is_some() { "io1" } else { "gp2" });
    let storage = match ctx.opt_number(&a, "allocated_storage")? {
        Some(s) => s,
        None => {
            return Err(
                "allocated_storage is not set (storage of a replica or snapshot restore is not resolved)"
                    .into(),
            );
        }
    };
    let label = match storage_type {
        "gp2" | "gp3" => format!("Storage (general purpose SSD, {storage_type}, {deployment})"),
        "io1" | "io2" => format!("Storage (provisioned IOPS SSD, {storage_type}, {deployment})"),
        "standard" => format!("Storage (magnetic, {deployment})"),
        other => format!("Storage ({other}, {deployment})"),
    };
    out.push(ctx.fixed(
        label,
        "rds",
        &format!("storage{az}:{storage_type}"),
        storage,
    )?);
    if storage_type == "gp3" {
        // gp3 includes 3,000 IOPS below 400 GB and 12,000 from 400 GB (MySQL, MariaDB,
        // PostgreSQL); more is billed.
        let baseline = if storage < Decimal::from(400) {
            Decimal::from(3000)
        } else {
            Decimal::from(12000)
        };
        if let Some(iops) = iops.filter(|i| *i > baseline) {
            out.push(ctx.fixed(
                format!("Provisioned gp3 IOPS (above {}, {deployment})", baseline),
                "rds",
                &format!("iops{az}:gp3"),
                iops - baseline,
            )?);
        }
    }
    if matches!(storage_type, "io1" | "io2") {
        let iops = iops.ok_or_else(|| format!("iops is not set for {storage_type} storage"))?;
        out.push(ctx.fixed(
            format!("Provisioned IOPS ({storage_type}, {deployment})"),
            "rds",
            &format!("iops{az}:{storage_type}"),
            iops,
        )?);
    }
    Ok(Outcome::Components(out))
}

fn cache_key(engine: &str, node_type: &str) -> Result<String, String> {
    match engine {
        "redis" => Ok(format!("node:{node_type}")),
        "memcached" => Ok(format!("memcached-node:{node_type}")),
        "valkey" => Ok(format!("valkey-node:{node_type}")),
        other => Err(format!(
            "engine `{other}` is not a known ElastiCache engine"
        )),
    }
}

/// `aws_elasticache_cluster`: node hours × `num_cache_nodes` (default 1). A cluster
/// that joins a replication group is priced on the group.
pub(crate) fn elasticache_cluster(ctx: &PricerInput<'_, '_>) -> Priced {
    let a = ctx.attrs();
    // Set, or configured but not yet known (the group is created in the same plan).
    if !matches!(ctx.opt_str(&a, "replication_group_id"), Ok(None)) {
        return Ok(Outcome::Free);
    }
    let engine = ctx.req_str(&a, "engine")?;
    let node_type = ctx.req_str(&a, "node_type")?;
    let nodes = ctx
        .opt_number(&a, "num_cache_nodes")?
        .unwrap_or(Decimal::ONE);
    Ok(Outcome::Components(vec![ctx.hourly(
        format!("ElastiCache nodes (on-demand, {engine}, {node_type})"),
        "elasticache",
        &cache_key(engine, node_type)?,
        nodes,
    )?]))
}

/// `aws_elasticache_replication_group`: node hours × nodes, where nodes is
/// `num_cache_clusters`, or `num_node_groups × (replicas_per_node_group + 1)` in
/// cluster mode, default 1.
pub(crate) fn elasticache_replication_group(ctx: &PricerInput<'_, '_>) -> Priced {
    let a = ctx.attrs();
    let engine = ctx.opt_str(&a, "engine")?.unwrap_or("redis");
    let node_type = ctx.req_str(&a, "node_type")?;
    let clusters = ctx.opt_number(&a, "num_cache_clusters")?;
    let groups = ctx.opt_number(&a, "num_node_groups")?;
    let nodes = match (clusters, groups) {
        (_, Some(g)) if g > Decimal::ONE || clusters.is_none() => {
            let replicas = ctx
                .opt_number(&a, "replicas_per_node_group")?
                .unwrap_or(Decimal::ZERO);
            g * (replicas + Decimal::ONE)
        }
        (Some(c), _) => c,
        (None, _) => Decimal::ONE,
    };
    Ok(Outcome::Components(vec![ctx.hourly(
        format!("ElastiCache nodes (on-demand, {engine}, {node_type})"),
        "elasticache",
        &cache_key(engine, node_type)?,
        nodes,
    )?]))
}

/// `aws_dynamodb_table`: PROVISIONED (default) bills WCU/RCU hours; PAY_PER_REQUEST bills
/// request units from usage. Storage is usage-based either way. A dimension managed by an
/// Application Auto Scaling target in the plan is priced at the target's minimum capacity
/// (stated as an assumption). Each `replica` (global table, version 2019.11.21) bills, in
/// its own region, replicated writes for the table's writes, the same read capacity, and
/// its own storage.
pub(crate) fn dynamodb_table(ctx: &PricerInput<'_, '_>) -> Priced {
    let a = ctx.attrs();
    let mode = ctx.opt_str(&a, "billing_mode")?.unwrap_or("PROVISIONED");
    let replicas = replica_regions(ctx, &a)?;
    let mut out = Vec::new();
    match mode {
        "PROVISIONED" => {
            let wcu = capacity(ctx, &a, "write_capacity", "WriteCapacityUnits")?;
            let rcu = capacity(ctx, &a, "read_capacity", "ReadCapacityUnits")?;
            out.push(wcu.component(ctx, "Write capacity units (WCU)", "wcu", ctx.region)?);
            out.push(rcu.component(ctx, "Read capacity units (RCU)", "rcu", ctx.region)?);
            for region in &replicas {
                out.push(wcu.component(
                    ctx,
                    &format!("Replica {region}: replicated write capacity units (rWCU)"),
                    "replicated-wcu",
                    region,
                )?);
                out.push(
                    rcu.component(
                        ctx,
                        &format!("Replica {region}: read capacity units (RCU)"),
                        "rcu",
                        region,
                    )?
                    .assuming(REPLICA_READS),
                );
            }
        }
        "PAY_PER_REQUEST" => {
            out.push(ctx.usage_based(
                "Write request units (WRU)",
                "dynamodb",
                "wru",
                "monthly_write_request_units",
                Decimal::from(1_000_000),
            )?);
            out.push(ctx.usage_based(
                "Read request units (RRU)",
                "dynamodb",
                "rru",
                "monthly_read_request_units",
                Decimal::from(1_000_000),
            )?);
            for region in &replicas {
                out.push(ctx.in_region(region).usage_based(
                    format!("Replica {region}: replicated write request units (rWRU)"),
                    "dynamodb",
                    "replicated-wru",
                    "monthly_write_request_units",
                    Decimal::from(1_000_000),
                )?);
                out.push(
                    ctx.in_region(region)
                        .usage_based(
                            format!("Replica {region}: read request units (RRU)"),
                            "dynamodb",
                            "rru",
                            "monthly_read_request_units",
                            Decimal::from(1_000_000),
                        )?
                        .assuming(REPLICA_READS),
                );
            }
        }
        other => {
            return Err(format!(
                "billing_mode `{other}` is not a known DynamoDB mode"
            ));
        }
    }
    out.push(ctx.usage_based(
        "Data storage",
        "dynamodb",
        "storage",
        "storage_gb",
        Decimal::ONE,
    )?);
    for region in &replicas {
        out.push(ctx.in_region(region).usage_based(
            format!("Replica {region}: data storage"),
            "dynamodb",
            "storage",
            "storage_gb",
            Decimal::ONE,
        )?);
    }
    Ok(Outcome::Components(out))
}

const REPLICA_READS: &str =
    "a replica is assumed to keep the table's read capacity and serve as many reads";

/// The regions of the table's `replica` blocks.
fn replica_regions<'a>(ctx: &PricerInput<'_, 'a>, a: &Attrs<'a>) -> Result<Vec<&'a str>, String> {
    let Some(blocks) = ctx.blocks(a, "replica")? else {
        return Ok(Vec::new());
    };
    blocks
        .iter()
        .map(|b| match b.str("region_name") {
            Ok(Some(region)) => Ok(region),
            Ok(None) => Err("replica.region_name is not set".to_string()),
            Err(_) => Err(PricerInput::unknown("replica.region_name")),
        })
        .collect()
}

/// Provisioned capacity of one dimension, and what it rests on.
struct Capacity {
    units: Decimal,
    assumption: Option<String>,
}

impl Capacity {
    fn component(
        &self,
        ctx: &PricerInput<'_, '_>,
        name: &str,
        key: &str,
        region: &str,
    ) -> Result<Component, String> {
        let c = ctx
            .in_region(region)
            .hourly(name, "dynamodb", key, self.units)?;
        Ok(match &self.assumption {
            Some(a) => c.assuming(a.clone()),
            None => c,
        })
    }
}

/// The table's `attr` capacity, or the minimum an Application Auto Scaling target in the
/// plan keeps for `dimension` (`dynamodb:table:<dimension>`): what AWS bills at the least,
/// since the target moves the table's capacity between its minimum and maximum.
fn capacity(
    ctx: &PricerInput<'_, '_>,
    a: &Attrs<'_>,
    attr: &str,
    dimension: &str,
) -> Result<Capacity, String> {
    if ctx.side == Side::After
        && let Some(target) = scaling_target(ctx, a, dimension)
    {
        let t = target.after_attrs();
        let min = match t.number("min_capacity") {
            Ok(Some(m)) => m,
            Ok(None) => return Err(format!("{}.min_capacity is not set", target.address)),
            Err(_) => {
                return Err(PricerInput::unknown(&format!(
                    "{}.min_capacity",
                    target.address
                )));
            }
        };
        let max = t
            .number("max_capacity")
            .ok()
            .flatten()
            .map(|m| format!(", up to max_capacity {}", m.normalize()))
            .unwrap_or_default();
        return Ok(Capacity {
            units: min,
            assumption: Some(format!(
                "{dimension} scaled by Application Auto Scaling target {}: priced at its min_capacity {} (the least it keeps{max}); the table's {attr} is ignored",
                target.address,
                min.normalize()
            )),
        });
    }
    Ok(Capacity {
        units: ctx.opt_number(a, attr)?.unwrap_or(Decimal::ZERO),
        assumption: None,
    })
}

/// The `aws_appautoscaling_target` of this table's `dimension`: its `resource_id` is
/// `table/<name>`, or its configuration references this table.
fn scaling_target<'c, 'a>(
    ctx: &PricerInput<'c, 'a>,
    a: &Attrs<'a>,
    dimension: &str,
) -> Option<&'c Change<'a>> {
    let want_dimension = format!("dynamodb:table:{dimension}");
    let resource_id = a.str("name").ok().flatten().map(|n| format!("table/{n}"));
    let table = strip_index(local_address(ctx.change.address, ctx.change.module_address));
    ctx.plan.changes.iter().find(|c| {
        if c.resource_type != "aws_appautoscaling_target" || !c.action.has_after() {
            return false;
        }
        let t = c.after_attrs();
        if t.str("scalable_dimension") != Ok(Some(want_dimension.as_str())) {
            return false;
        }
        let same_module = c.module_address.unwrap_or("") == ctx.change.module_address.unwrap_or("");
        match t.str("resource_id") {
            Ok(Some(id)) => resource_id.as_deref() == Some(id),
            _ => {
                same_module
                    && ctx
                        .plan
                        .references(c, "resource_id")
                        .iter()
                        .any(|r| strip_index(r) == table || r.starts_with(&format!("{table}.")))
            }
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use serde_json::json;

    use super::super::Outcome;
    use super::super::test_support::*;
    use crate::cost::usage::Usage;

    #[test]
    fn postgres_single_az_gp2() {
        // us-east-1 db.t3.large PostgreSQL $0.145/h → 105.85; gp2 $0.115/GB-month × 20 = 2.30.
        let c = components(price_after(
            "aws_db_instance",
            json!({"engine": "postgres", "instance_class": "db.t3.large", "allocated_storage": 20}),
        ));
        assert_eq!(find(&c, "Database instance").monthly_cost, d("105.85"));
        assert_eq!(find(&c, "Storage").monthly_cost, d("2.3"));
    }

    #[test]
    fn mysql_multi_az_io1_doubles() {
        // us-east-1 db.t3.large MySQL Multi-AZ $0.272/h (rds-mysql-ondemand.json) × 730 = 198.56.
        // io1 $0.125/GB-month × 100 × 2 = 25.00; IOPS $0.10 × 1,000 × 2 = 200.00.
        let c = components(price_after(
            "aws_db_instance",
            json!({"engine": "mysql", "instance_class": "db.t3.large", "multi_az": true,
                   "storage_type": "io1", "allocated_storage": 100, "iops": 1000}),
        ));
        assert_eq!(find(&c, "Database instance").monthly_cost, d("198.56"));
        assert_eq!(find(&c, "Storage").monthly_cost, d("25"));
        assert_eq!(find(&c, "Provisioned IOPS (io1").monthly_cost, d("200"));
    }

    #[test]
    fn gp3_iops_above_baseline() {
        // us-east-1 db.t4g.small MySQL $0.032/h → 23.36; gp3 $0.115/GB-month;
        // gp3 IOPS $0.02/IOPS-month above the included 3,000 (<400 GB) or 12,000 (≥400 GB).
        let c = components(price_after(
            "aws_db_instance",
            json!({"engine": "mysql", "instance_class": "db.t4g.small", "storage_type": "gp3",
                   "allocated_storage": 20, "iops": 4000}),
        ));
        assert_eq!(total(&c), d("45.66"));
        let c = components(price_after(
            "aws_db_instance",
            json!({"engine": "mysql", "instance_class": "db.t4g.small", "storage_type": "gp3",
                   "allocated_storage": 400, "iops": 14000, "multi_az": true}),
        ));
        // Multi-AZ db.t4g.small $0.065/h (AWS's own row, not 2 × 0.032) → 47.45;
        // + 400 GB × 2 × 0.115 = 92.00 + (14,000 − 12,000) × 2 × 0.02 = 80.00.
        assert_eq!(total(&c), d("219.45"));
    }

    #[test]
    fn unpriced_engine_says_so() {
        let err = price_after(
            "aws_db_instance",
            json!({"engine": "oracle-ee", "instance_class": "db.m5.large", "allocated_storage": 20}),
        )
        .unwrap_err();
        assert_eq!(
            err,
            "no price for rds instance:oracle-ee:db.m5.large in us-east-1"
        );
    }

    #[test]
    fn elasticache_cluster_nodes() {
        // us-east-1 cache.m4.large $0.156/h × 2 nodes × 730 = 227.76.
        let c = components(price_after(
            "aws_elasticache_cluster",
            json!({"engine": "memcached", "node_type": "cache.m4.large", "num_cache_nodes": 2}),
        ));
        assert_eq!(total(&c), d("227.76"));
    }

    #[test]
    fn elasticache_member_of_group_is_free() {
        let out = price_after(
            "aws_elasticache_cluster",
            json!({"replication_group_id": "rg", "engine": "redis"}),
        )
        .unwrap();
        assert_eq!(out, Outcome::Free);
    }

    #[test]
    fn replication_group_cluster_mode() {
        // 2 shards × (1 replica + 1) = 4 nodes × cache.t3.micro $0.017/h × 730 = 49.64.
        let c = components(price_after(
            "aws_elasticache_replication_group",
            json!({"node_type": "cache.t3.micro", "num_node_groups": 2, "replicas_per_node_group": 1}),
        ));
        assert_eq!(total(&c), d("49.64"));
        let c = components(price_after(
            "aws_elasticache_replication_group",
            json!({"node_type": "cache.t3.micro", "num_cache_clusters": 3}),
        ));
        assert_eq!(total(&c), d("37.23"));
    }

    #[test]
    fn dynamodb_provisioned_default() {
        // us-east-1 $0.00065/WCU-h, $0.00013/RCU-h: 20 WCU → 9.49; 30 RCU → 2.847.
        let c = components(price_after(
            "aws_dynamodb_table",
            json!({"write_capacity": 20, "read_capacity": 30}),
        ));
        assert_eq!(find(&c, "WCU").monthly_cost, d("9.49"));
        assert_eq!(find(&c, "RCU").monthly_cost, d("2.847"));
        assert!(find(&c, "storage").usage_based);
    }

    #[test]
    fn dynamodb_on_demand_usage() {
        // us-east-1 on-demand $0.625 per 1M WRU, $0.125 per 1M RRU, $0.25/GB-month.
        let usage = Usage::none()
            .with_type_default(
                "aws_dynamodb_table",
                "monthly_write_request_units",
                d("3000000"),
            )
            .with_type_default(
                "aws_dynamodb_table",
                "monthly_read_request_units",
                d("8000000"),
            )
            .with_type_default("aws_dynamodb_table", "storage_gb", d("230"));
        let c = components(price_after_in(
            "aws_dynamodb_table",
            json!({"billing_mode": "PAY_PER_REQUEST"}),
            "us-east-1",
            &usage,
        ));
        assert_eq!(find(&c, "WRU").monthly_cost, d("1.875"));
        assert_eq!(find(&c, "RRU").monthly_cost, d("1"));
        assert_eq!(find(&c, "storage").monthly_cost, d("57.5"));
    }
}

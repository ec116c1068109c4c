//! DocumentDB clusters and instances, Redshift clusters and Serverless workgroups.

use rust_decimal::Decimal;

use super::aurora::{ClusterStorage, cluster_of, cluster_storage};
use super::{Outcome, Priced, PricerInput};

/// `aws_docdb_cluster`: storage and, on standard storage, I/O requests, both from the
/// usage file (`storage_gb`, `monthly_io_requests`); compute is billed on the instances.
pub(crate) fn docdb_cluster(ctx: &PricerInput<'_, '_>) -> Priced {
    let a = ctx.attrs();
    let io_optimized = ctx.opt_str(&a, "storage_type")? == Some("iopt1");
    cluster_storage(ctx, &DOCDB_STORAGE, io_optimized)
}

const DOCDB_STORAGE: ClusterStorage = ClusterStorage {
    service: "docdb",
    product: "DocumentDB",
    standard: "storage",
    io_optimized: "storage:io-optimized",
    io_requests: "io",
};

/// `aws_docdb_cluster_instance`: instance hours by class, on the I/O-Optimized rows when
/// its cluster uses `storage_type = "iopt1"`.
pub(crate) fn docdb_cluster_instance(ctx: &PricerInput<'_, '_>) -> Priced {
    let a = ctx.attrs();
    let class = ctx.req_str(&a, "instance_class")?;
    let cluster = cluster_of(ctx, &a, "aws_docdb_cluster");
    let iopt = cluster.is_some_and(|c| ctx.side_of(c).str("storage_type") == Ok(Some("iopt1")));
    let (key, storage) = if iopt {
        (format!("instance:io-optimized:{class}"), "I/O-Optimized")
    } else {
        (format!("instance:{class}"), "standard storage")
    };
    let mut c = ctx.hourly(
        format!("DocumentDB instance (on-demand, {class}, {storage})"),
        "docdb",
        &key,
        Decimal::ONE,
    )?;
    if cluster.is_none() {
        c = c.assuming("the cluster is not in the plan: priced with standard storage");
    }
    Ok(Outcome::Components(vec![c]))
}

/// `aws_redshift_cluster`: `number_of_nodes` (default 1) × node hours of `node_type`.
/// RA3 managed storage is billed per GB stored, which is not priced (stated).
pub(crate) fn redshift_cluster(ctx: &PricerInput<'_, '_>) -> Priced {
    let a = ctx.attrs();
    let node_type = ctx.req_str(&a, "node_type")?;
    let nodes = ctx
        .opt_number(&a, "number_of_nodes")?
        .unwrap_or(Decimal::ONE);
    let mut c = ctx.hourly(
        format!("Nodes ({node_type} × {})", nodes.normalize()),
        "redshift",
        &format!("node:{node_type}"),
        nodes,
    )?;
    if node_type.starts_with("ra3.") {
        c = c.assuming("RA3 managed storage is billed per GB stored, which is not priced");
    }
    Ok(Outcome::Components(vec![c]))
}

/// `aws_redshiftserverless_workgroup`: RPU-hours from the usage file
/// (`monthly_rpu_hours`); an idle workgroup costs nothing.
pub(crate) fn redshiftserverless_workgroup(ctx: &PricerInput<'_, '_>) -> Priced {
    Ok(Outcome::Components(vec![ctx.usage_based(
        "Compute (RPU-hours)",
        "redshift",
        "serverless:rpu-hour",
        "monthly_rpu_hours",
        Decimal::ONE,
    )?]))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use serde_json::json;

    use super::super::test_support::*;
    use crate::cost::usage::Usage;

    #[test]
    fn docdb_instances_and_storage() {
        // us-east-1 db.r6g.large $0.26315/h × 730 = 192.0995.
        let c = components(price_after(
            "aws_docdb_cluster_instance",
            json!({"instance_class": "db.r6g.large"}),
        ));
        assert_eq!(total(&c), d("192.0995"));
        // 100 GB × $0.10 + 20M I/O × $0.20 per 1M = 14; I/O-Optimized 100 GB × $0.30 = 30.
        let usage = Usage::none()
            .with_type_default("aws_docdb_cluster", "storage_gb", d("100"))
            .with_type_default("aws_docdb_cluster", "monthly_io_requests", d("20000000"));
        let c = components(price_after_in(
            "aws_docdb_cluster",
            json!({}),
            "us-east-1",
            &usage,
        ));
        assert_eq!(total(&c), d("14"));
        let c = components(price_after_in(
            "aws_docdb_cluster",
            json!({"storage_type": "iopt1"}),
            "us-east-1",
            &usage,
        ));
        assert_eq!(total(&c), d("30"));
    }

    #[test]
    fn redshift_nodes() {
        // ra3.xlplus $1.086/h × 2 × 730 = 1585.56; dc2.large default 1 node $0.25 × 730 = 182.50.
        let c = components(price_after(
            "aws_redshift_cluster",
            json!({"node_type": "ra3.xlplus", "number_of_nodes": 2}),
        ));
        assert_eq!(total(&c), d("1585.56"));
        assert!(
            c[0].assumptions
                .iter()
                .any(|a| a.contains("managed storage"))
        );
        let c = components(price_after(
            "aws_redshift_cluster",
            json!({"node_type": "dc2.large"}),
        ));
        assert_eq!(total(&c), d("182.5"));
        // Serverless: 100 RPU-hours × $0.375 = 37.50.
        let usage = Usage::none().with_type_default(
            "aws_redshiftserverless_workgroup",
            "monthly_rpu_hours",
            d("100"),
        );
        let c = components(price_after_in(
            "aws_redshiftserverless_workgroup",
            json!({"workgroup_name": "w"}),
            "us-east-1",
            &usage,
        ));
        assert_eq!(total(&c), d("37.5"));
    }
}

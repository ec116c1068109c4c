//! OpenSearch Service domains (and their Elasticsearch-era resource type).

use rust_decimal::Decimal;

use super::{Outcome, Priced, PricerInput};
use crate::cost::estimate::Component;
use crate::cost::plan_view::Attrs;

/// gp3 volumes include this much; more is billed per volume.
const GP3_FREE_IOPS: Decimal = Decimal::from_parts(3000, 0, 0, false, 0);
const GP3_FREE_THROUGHPUT: Decimal = Decimal::from_parts(125, 0, 0, false, 0);
/// AWS's default number of dedicated master nodes.
const DEFAULT_MASTERS: Decimal = Decimal::from_parts(3, 0, 0, false, 0);
/// The provider's default data node type when `cluster_config` is left to it.
const DEFAULT_INSTANCE_TYPE: &str = "m3.medium.search";

/// `aws_opensearch_domain`, `aws_elasticsearch_domain`: data nodes
/// (`cluster_config.instance_count` × `instance_type`), dedicated master nodes when
/// enabled, and each data node's EBS volume (`ebs_options`: GB, gp3 IOPS/throughput
/// above the included baseline, io1 IOPS). UltraWarm and cold storage have no price in
/// the source files: a domain that enables them is unpriced.
pub(crate) fn opensearch_domain(ctx: &PricerInput<'_, '_>) -> Priced {
    let a = ctx.attrs();
    let cluster = ctx
        .blocks(&a, "cluster_config")?
        .and_then(|b| b.into_iter().next());
    let mut out = Vec::new();
    let Some(cluster) = cluster else {
        out.push(
            data_nodes(ctx, DEFAULT_INSTANCE_TYPE, Decimal::ONE)?
                .assuming("cluster_config is left to the provider: one m3.medium.search data node"),
        );
        return Ok(Outcome::Components(out));
    };
    if ctx.nested_bool(&cluster, "cluster_config", "warm_enabled")? == Some(true) {
        return Err(
            "UltraWarm nodes (cluster_config.warm_enabled) have no price in the source files"
                .into(),
        );
    }
    let instance_type = ctx
        .nested_str(&cluster, "cluster_config", "instance_type")?
        .unwrap_or(DEFAULT_INSTANCE_TYPE);
    let nodes = ctx
        .nested_number(&cluster, "cluster_config", "instance_count")?
        .unwrap_or(Decimal::ONE);
    out.push(data_nodes(ctx, instance_type, nodes)?);
    if ctx.nested_bool(&cluster, "cluster_config", "dedicated_master_enabled")? == Some(true) {
        let master_type = ctx
            .nested_str(&cluster, "cluster_config", "dedicated_master_type")?
            .ok_or("cluster_config.dedicated_master_type is not set")?;
        let masters = ctx
            .nested_number(&cluster, "cluster_config", "dedicated_master_count")?
            .unwrap_or(DEFAULT_MASTERS);
        out.push(ctx.hourly(
            format!(
                "Dedicated master nodes ({master_type} × {})",
                masters.normalize()
            ),
            "opensearch",
            &format!("instance:{}", search_type(master_type)),
            masters,
        )?);
    }
    if let Some(ebs) = ctx
        .blocks(&a, "ebs_options")?
        .and_then(|b| b.into_iter().next())
    {
        out.extend(volumes(ctx, &ebs, nodes)?);
    }
    Ok(Outcome::Components(out))
}

fn data_nodes(
    ctx: &PricerInput<'_, '_>,
    instance_type: &str,
    nodes: Decimal,
) -> Result<Component, String> {
    ctx.hourly(
        format!("Data nodes ({instance_type} × {})", nodes.normalize()),
        "opensearch",
        &format!("instance:{}", search_type(instance_type)),
        nodes,
    )
}

/// Elasticsearch-era names (`r5.large.elasticsearch`) are the same instances and prices
/// as `r5.large.search`.
fn search_type(instance_type: &str) -> String {
    match instance_type.strip_suffix(".elasticsearch") {
        Some(base) => format!("{base}.search"),
        None => instance_type.to_string(),
    }
}

/// Each data node's EBS volume: `volume_size` GB of `volume_type` (default gp2), plus
/// gp3 IOPS/throughput above the baseline and io1 IOPS.
fn volumes(
    ctx: &PricerInput<'_, '_>,
    ebs: &Attrs<'_>,
    nodes: Decimal,
) -> Result<Vec<Component>, String> {
    if ctx.nested_bool(ebs, "ebs_options", "ebs_enabled")? == Some(false) {
        return Ok(Vec::new());
    }
    let size = ctx
        .nested_number(ebs, "ebs_options", "volume_size")?
        .ok_or("ebs_options.volume_size is not set")?;
    let configured_type = ctx.nested_str(ebs, "ebs_options", "volume_type")?;
    let volume_type = configured_type.unwrap_or("gp2");
    let n = nodes.normalize();
    let mut storage = ctx.fixed(
        format!("EBS storage ({volume_type}, {} GB × {n})", size.normalize()),
        "opensearch",
        &format!("storage:{volume_type}"),
        size * nodes,
    )?;
    if configured_type.is_none() {
        storage = storage.assuming("ebs_options.volume_type is left to AWS: priced as gp2");
    }
    let mut out = vec![storage];
    let iops = ctx.nested_number(ebs, "ebs_options", "iops")?;
    match volume_type {
        "gp3" => {
            let extra_iops = iops.unwrap_or(GP3_FREE_IOPS) - GP3_FREE_IOPS;
            let throughput = ctx
                .nested_number(ebs, "ebs_options", "throughput")?
                .unwrap_or(GP3_FREE_THROUGHPUT);
            let extra_throughput = throughput - GP3_FREE_THROUGHPUT;
            const BASELINE: &str = "gp3 includes 3,000 IOPS and 125 MiB/s per volume (larger volumes include more, so this is an upper bound)";
            if extra_iops > Decimal::ZERO {
                out.push(
                    ctx.fixed(
                        format!("gp3 IOPS above 3,000 ({} × {n})", extra_iops.normalize()),
                        "opensearch",
                        "iops:gp3",
                        extra_iops * nodes,
                    )?
                    .assuming(BASELINE),
                );
            }
            if extra_throughput > Decimal::ZERO {
                out.push(
                    ctx.fixed(
                        format!(
                            "gp3 throughput above 125 MiB/s ({} × {n})",
                            extra_throughput.normalize()
                        ),
                        "opensearch",
                        "throughput:gp3",
                        extra_throughput * nodes,
                    )?
                    .assuming(BASELINE),
                );
            }
        }
        "io1" => {
            let iops = iops.ok_or("ebs_options.iops is not set (required for io1)")?;
            out.push(ctx.fixed(
                format!("Provisioned IOPS ({} × {n})", iops.normalize()),
                "opensearch",
                "iops:io1",
                iops * nodes,
            )?);
        }
        _ => {}
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use serde_json::json;

    use super::super::test_support::*;
    use crate::cost::usage::Usage;

    #[test]
    fn data_nodes_masters_and_gp3_storage() {
        // us-east-1 (processed/es.json, 2025-12-03): r6g.large.search $0.167/h × 3 × 730
        // = 365.73; m6g.large.search $0.128/h × 3 × 730 = 280.32; gp3 $0.122/GB-month ×
        // 100 GB × 3 = 36.6; (es-ondemand.json, 2024-08-28) 1,000 IOPS above 3,000 ×
        // $0.008 × 3 = 24, 125 MiB/s above 125 × $0.064 × 3 = 24. Total 730.65.
        let c = components(price_after(
            "aws_opensearch_domain",
            json!({
                "domain_name": "logs",
                "cluster_config": [{
                    "instance_type": "r6g.large.search", "instance_count": 3,
                    "dedicated_master_enabled": true, "dedicated_master_type": "m6g.large.search",
                    "dedicated_master_count": 3, "warm_enabled": false
                }],
                "ebs_options": [{"ebs_enabled": true, "volume_type": "gp3", "volume_size": 100, "iops": 4000, "throughput": 250}]
            }),
        ));
        let totals: Vec<_> = c.iter().map(|c| c.monthly_cost).collect();
        assert_eq!(
            totals,
            vec![d("365.73"), d("280.32"), d("36.6"), d("24"), d("24")]
        );
        assert_eq!(total(&c), d("730.65"));
        assert!(
            c[0].price
                .as_ref()
                .unwrap()
                .source
                .contains("processed/es.json")
        );
        assert!(
            c[3].price
                .as_ref()
                .unwrap()
                .source
                .contains("es-ondemand.json")
        );
    }

    #[test]
    fn elasticsearch_names_gp2_io1_and_previous_generations() {
        // m3.medium.search (previous generation) $0.094/h × 2 × 730 = 137.24; gp2 $0.135 ×
        // 10 GB × 2 = 2.7.
        let c = components(price_after(
            "aws_elasticsearch_domain",
            json!({
                "cluster_config": [{"instance_type": "m3.medium.elasticsearch", "instance_count": 2}],
                "ebs_options": [{"ebs_enabled": true, "volume_size": 10}]
            }),
        ));
        assert_eq!(total(&c), d("139.94"));
        // r3.large.search $0.245 × 730 = 178.85; io1 $0.169 × 50 + 1,000 IOPS × $0.088 =
        // 8.45 + 88.
        let c = components(price_after(
            "aws_opensearch_domain",
            json!({
                "cluster_config": [{"instance_type": "r3.large.search", "instance_count": 1}],
                "ebs_options": [{"ebs_enabled": true, "volume_type": "io1", "volume_size": 50, "iops": 1000}]
            }),
        ));
        assert_eq!(total(&c), d("275.3"));
        // Instance store only: no EBS component.
        let c = components(price_after(
            "aws_opensearch_domain",
            json!({
                "cluster_config": [{"instance_type": "i3.large.search", "instance_count": 1}],
                "ebs_options": [{"ebs_enabled": false}]
            }),
        ));
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn a_node_count_known_only_at_apply_is_unpriced_not_zero() {
        let plan = plan(
            "aws_opensearch_domain",
            json!({"cluster_config": [{"instance_type": "r6g.large.search"}]}),
            json!({"cluster_config": [{"instance_count": true}]}),
            json!({"cluster_config": [{"instance_type": {"constant_value": "r6g.large.search"},
                "instance_count": {"references": ["var.nodes"]}}]}),
        );
        let err = price_plan(&plan, "us-east-1", &Usage::none()).unwrap_err();
        assert_eq!(err, "cluster_config.instance_count is unknown until apply");
    }

    #[test]
    fn ultrawarm_and_unknown_types_are_unpriced_with_a_reason() {
        let err = price_after(
            "aws_opensearch_domain",
            json!({"cluster_config": [{"instance_type": "r6g.large.search", "instance_count": 3,
                "warm_enabled": true, "warm_type": "ultrawarm1.medium.search", "warm_count": 2}]}),
        )
        .unwrap_err();
        assert!(err.contains("UltraWarm"), "{err}");
        let err = price_after(
            "aws_opensearch_domain",
            json!({"cluster_config": [{"instance_type": "x99.large.search", "instance_count": 1}]}),
        )
        .unwrap_err();
        assert!(
            err.contains("no price for opensearch instance:x99.large.search"),
            "{err}"
        );
    }
}

//! EKS clusters and managed node groups.

use rust_decimal::Decimal;

use super::{Outcome, Priced, PricerInput};

/// Instance type of a managed node group that names none (the EKS API default).
const DEFAULT_NODE_TYPE: &str = "t3.medium";

/// `aws_eks_cluster`: the control plane's hourly fee under standard support.
pub(crate) fn eks_cluster(ctx: &PricerInput<'_, '_>) -> Priced {
    let a = ctx.attrs();
    let version = ctx
        .opt_str(&a, "version")?
        .map(|v| format!(" {v}"))
        .unwrap_or_default();
    let extended = ctx.price("eks", "cluster-extended-support:hour")?.usd;
    Ok(Outcome::Components(vec![
        ctx.hourly(
            format!("EKS control plane{version} (standard support)"),
            "eks",
            "cluster:hour",
            Decimal::ONE,
        )?
        .assuming(format!(
            "the Kubernetes version is in standard support; in extended support AWS bills ${}/hour",
            extended.normalize()
        )),
    ]))
}

/// `aws_eks_node_group`: `scaling_config.desired_size` on-demand instances of the first
/// of `instance_types` (default t3.medium). Spot capacity is unpriced (its price moves);
/// a type from a launch template is not resolved.
pub(crate) fn eks_node_group(ctx: &PricerInput<'_, '_>) -> Priced {
    let a = ctx.attrs();
    match ctx.opt_str(&a, "capacity_type")? {
        None | Some("ON_DEMAND") => {}
        Some(other) => {
            return Err(format!(
                "capacity_type `{other}` is not priced: Spot prices vary; only ON_DEMAND is priced"
            ));
        }
    }
    let desired = match ctx.blocks(&a, "scaling_config")? {
        Some(blocks) => match blocks.first().map(|b| b.number("desired_size")) {
            Some(Ok(Some(n))) => n,
            Some(Err(_)) => return Err(PricerInput::unknown("scaling_config.desired_size")),
            _ => return Err("scaling_config.desired_size is not set".into()),
        },
        None => return Err("scaling_config is not set".into()),
    };
    let types = match a.strings("instance_types") {
        Ok(t) => t,
        Err(_) => return Err(PricerInput::unknown("instance_types")),
    };
    let (instance_type, assumption) = match types.first() {
        Some(t) => (*t, None),
        None if a.blocks("launch_template").is_ok_and(|b| !b.is_empty()) => {
            return Err(
                "instance_types is not set (a type from a launch template is not resolved)".into(),
            );
        }
        None => (
            DEFAULT_NODE_TYPE,
            Some("instance_types is not set: EKS's default t3.medium"),
        ),
    };
    let mut c = ctx
        .hourly(
            format!("Nodes (Linux, on-demand, {instance_type} × {})", desired.normalize()),
            "ec2",
            &format!("instance:{instance_type}"),
            desired,
        )?
        .assuming(format!(
            "scaling_config.desired_size {} nodes run all month; the nodes' EBS volumes are not priced",
            desired.normalize()
        ));
    if types.len() > 1 {
        c = c.assuming(format!(
            "priced as the first of instance_types ({})",
            types.join(", ")
        ));
    }
    if let Some(a) = assumption {
        c = c.assuming(a);
    }
    Ok(Outcome::Components(vec![c]))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use serde_json::json;

    use super::super::test_support::*;

    #[test]
    fn cluster_is_the_standard_support_fee() {
        // eks cluster:hour $0.10 (AWS Pricing Calculator eks.json) × 730 = 73.
        let c = components(price_after(
            "aws_eks_cluster",
            json!({"name": "prod", "version": "1.31"}),
        ));
        assert_eq!(total(&c), d("73"));
        assert!(
            c[0].assumptions.iter().any(|a| a.contains("$0.5/hour")),
            "{c:?}"
        );
    }

    #[test]
    fn node_group_prices_desired_nodes() {
        // us-east-1 m5.large $0.096/h × 3 × 730 = 210.24.
        let c = components(price_after(
            "aws_eks_node_group",
            json!({"instance_types": ["m5.large", "m5a.large"], "capacity_type": "ON_DEMAND",
                   "scaling_config": [{"desired_size": 3, "min_size": 1, "max_size": 5}]}),
        ));
        assert_eq!(total(&c), d("210.24"));
        // Default t3.medium $0.0416/h × 2 × 730 = 60.736.
        let c = components(price_after(
            "aws_eks_node_group",
            json!({"scaling_config": [{"desired_size": 2, "min_size": 1, "max_size": 5}]}),
        ));
        assert_eq!(total(&c), d("60.736"));
        let err = price_after(
            "aws_eks_node_group",
            json!({"capacity_type": "SPOT", "scaling_config": [{"desired_size": 2}]}),
        )
        .unwrap_err();
        assert!(err.contains("Spot"), "{err}");
    }
}

//! `aws_instance`.

use rust_decimal::Decimal;

use super::storage::{block_device, volume_components};
use super::{Outcome, Priced, PricerInput};

/// EC2 detailed monitoring publishes 7 metrics per instance at 1-minute resolution,
/// billed as CloudWatch custom metrics.
const DETAILED_MONITORING_METRICS: Decimal = Decimal::from_parts(7, 0, 0, false, 0);
/// Root volume when the AMI's size is not in the plan: 8 GB (Amazon Linux, Ubuntu).
const DEFAULT_ROOT_GB: Decimal = Decimal::from_parts(8, 0, 0, false, 0);

/// `aws_instance`: instance hours (Linux, on-demand, by tenancy), the root volume
/// (default 8 GB gp2 when the plan does not say), extra EBS block devices, detailed
/// monitoring, and a public IPv4 address when `associate_public_ip_address = true`.
pub(crate) fn instance(ctx: &PricerInput<'_, '_>) -> Priced {
    let a = ctx.attrs();
    let instance_type = match a.str("instance_type") {
        Ok(Some(t)) => t,
        Ok(None) => {
            return Err(
                "instance_type is not set (a type from a launch template is not resolved)".into(),
            );
        }
        Err(_) => return Err(PricerInput::unknown("instance_type")),
    };
    let tenancy = ctx.opt_str(&a, "tenancy")?.unwrap_or("default");
    let mut out = Vec::new();
    match tenancy {
        "default" => out.push(ctx.hourly(
            format!("Instance usage (Linux/UNIX, on-demand, {instance_type})"),
            "ec2",
            &format!("instance:{instance_type}"),
            Decimal::ONE,
        )?),
        "dedicated" => out.push(ctx.hourly(
            format!("Instance usage (Linux/UNIX, on-demand, dedicated, {instance_type})"),
            "ec2",
            &format!("dedicated:{instance_type}"),
            Decimal::ONE,
        )?),
        // On a Dedicated Host the host is billed (aws_ec2_host), not the instance.
        "host" => {}
        other => return Err(format!("tenancy `{other}` is not a known EC2 tenancy")),
    }

    let root = match ctx.blocks(&a, "root_block_device")? {
        Some(blocks) => blocks.into_iter().next(),
        None => None,
    };
    let root_volume = match root {
        Some(r) => block_device(ctx, "root_block_device", &r, Some(DEFAULT_ROOT_GB))?,
        None => super::storage::Volume {
            volume_type: "gp2",
            size_gb: DEFAULT_ROOT_GB,
            iops: None,
            throughput: None,
        },
    };
    out.extend(volume_components(ctx, "root_block_device: ", &root_volume)?);

    if let Some(blocks) = ctx.blocks(&a, "ebs_block_device")? {
        for (i, b) in blocks.iter().enumerate() {
            let v = block_device(ctx, "ebs_block_device", b, None)?;
            out.extend(volume_components(
                ctx,
                &format!("ebs_block_device[{i}]: "),
                &v,
            )?);
        }
    }

    if ctx.opt_bool(&a, "monitoring")? == Some(true) {
        out.push(ctx.fixed(
            "EC2 detailed monitoring (7 metrics)",
            "cloudwatch",
            "metric",
            DETAILED_MONITORING_METRICS,
        )?);
    }
    // Only an explicit `true` is charged here: when unset the subnet decides, which the
    // plan does not show.
    if a.bool("associate_public_ip_address") == Ok(Some(true)) {
        out.push(ctx.hourly(
            "Public IPv4 address",
            "vpc",
            "public-ipv4:hour",
            Decimal::ONE,
        )?);
    }
    Ok(Outcome::Components(out))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use serde_json::json;

    use super::super::test_support::*;
    use crate::cost::usage::Usage;

    #[test]
    fn t3_micro_with_default_root() {
        // us-east-1 t3.micro $0.0104/h (ec2,us-east-1,instance:t3.micro): 730 × 0.0104 = 7.592.
        // Default root 8 GB gp2 × $0.10 = 0.80.
        let c = components(price_after(
            "aws_instance",
            json!({"instance_type": "t3.micro"}),
        ));
        assert_eq!(find(&c, "Instance usage").monthly_cost, d("7.592"));
        assert_eq!(find(&c, "root_block_device").monthly_cost, d("0.8"));
        assert_eq!(total(&c), d("8.392"));
    }

    #[test]
    fn block_devices_monitoring_and_public_ip() {
        // m5.large $0.096/h → 70.08; root 20 GB gp3 × 0.08 = 1.60;
        // ebs io1 40 GB × 0.125 = 5.00 + 1000 IOPS × 0.065 = 65.00;
        // detailed monitoring 7 × $0.30 = 2.10; public IPv4 730 × 0.005 = 3.65.
        let c = components(price_after(
            "aws_instance",
            json!({
                "instance_type": "m5.large",
                "tenancy": "default",
                "monitoring": true,
                "associate_public_ip_address": true,
                "root_block_device": [{"volume_type": "gp3", "volume_size": 20}],
                "ebs_block_device": [{"device_name": "/dev/sdf", "volume_type": "io1", "volume_size": 40, "iops": 1000}]
            }),
        ));
        assert_eq!(find(&c, "Instance usage").monthly_cost, d("70.08"));
        assert_eq!(find(&c, "root_block_device").monthly_cost, d("1.6"));
        assert_eq!(
            find(&c, "ebs_block_device[0]: Storage").monthly_cost,
            d("5")
        );
        assert_eq!(
            find(&c, "ebs_block_device[0]: Provisioned IOPS").monthly_cost,
            d("65")
        );
        assert_eq!(find(&c, "monitoring").monthly_cost, d("2.1"));
        assert_eq!(find(&c, "Public IPv4").monthly_cost, d("3.65"));
        assert_eq!(total(&c), d("147.43"));
    }

    #[test]
    fn unknown_instance_type() {
        let p = plan(
            "aws_instance",
            json!({}),
            json!({"instance_type": true}),
            json!({"instance_type": {"references": ["var.type"]}}),
        );
        assert_eq!(
            price_plan(&p, "us-east-1", &Usage::none()).unwrap_err(),
            "instance_type is unknown until apply"
        );
    }

    #[test]
    fn computed_root_device_uses_default() {
        // Real plans mark root_block_device and tenancy unknown when not configured.
        let p = plan(
            "aws_instance",
            json!({"instance_type": "t3.micro"}),
            json!({"root_block_device": true, "tenancy": true, "ebs_block_device": true, "monitoring": true}),
            json!({"instance_type": {"constant_value": "t3.micro"}}),
        );
        let c = components(price_plan(&p, "us-east-1", &Usage::none()));
        assert_eq!(total(&c), d("8.392"));
    }

    #[test]
    fn configured_but_unknown_root_size_is_unpriced() {
        let p = plan(
            "aws_instance",
            json!({"instance_type": "t3.micro", "root_block_device": [{"volume_type": "gp3"}]}),
            json!({"root_block_device": [{"volume_size": true}]}),
            json!({"instance_type": {"constant_value": "t3.micro"}, "root_block_device": [{"volume_size": {"references": ["var.size"]}}]}),
        );
        assert_eq!(
            price_plan(&p, "us-east-1", &Usage::none()).unwrap_err(),
            "root_block_device.volume_size is unknown until apply"
        );
    }

    #[test]
    fn missing_price_is_reported_not_zero() {
        let err =
            price_after("aws_instance", json!({"instance_type": "x9.nonexistent"})).unwrap_err();
        assert_eq!(err, "no price for ec2 instance:x9.nonexistent in us-east-1");
    }

    #[test]
    fn host_tenancy_bills_only_storage() {
        let c = components(price_after(
            "aws_instance",
            json!({"instance_type": "m5.large", "tenancy": "host"}),
        ));
        assert_eq!(total(&c), d("0.8"));
    }
}

//! `aws_instance` and `aws_autoscaling_group`.

use rust_decimal::Decimal;

use super::storage::{Volume, block_device, volume_components};
use super::{Outcome, Priced, PricerInput};
use crate::cost::plan_view::{Attrs, Change};

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

/// `aws_autoscaling_group`: `desired_capacity` (AWS's default: `min_size`) on-demand
/// Linux instances of the launch template's (or launch configuration's) `instance_type`,
/// each with the template's EBS volumes (or an 8 GB gp2 root when it names none). A
/// `mixed_instances_policy` is unpriced: its Spot share and type mix are not in the plan.
pub(crate) fn autoscaling_group(ctx: &PricerInput<'_, '_>) -> Priced {
    let a = ctx.attrs();
    if ctx
        .blocks(&a, "mixed_instances_policy")?
        .is_some_and(|b| !b.is_empty())
    {
        return Err(
            "mixed_instances_policy is not priced: its instance types and Spot share vary".into(),
        );
    }
    let (desired, desired_assumption) = match ctx.opt_number(&a, "desired_capacity")? {
        Some(n) => (
            n,
            format!("desired_capacity {} instances run all month", n.normalize()),
        ),
        None => match a.number("min_size") {
            Ok(Some(n)) => (
                n,
                format!(
                    "desired_capacity is not set: AWS starts min_size {} instances, priced all month",
                    n.normalize()
                ),
            ),
            Ok(None) => return Err("min_size is not set".into()),
            Err(_) => return Err(PricerInput::unknown("min_size")),
        },
    };
    let (template, template_kind) = launch_source(ctx, &a)?;
    let t = ctx.side_of(template);
    let instance_type = match t.str("instance_type") {
        Ok(Some(v)) => v,
        Ok(None) => {
            return Err(format!(
                "{} sets no instance_type, so the group's instances are not known",
                template.address
            ));
        }
        Err(_) => {
            return Err(format!(
                "instance_type of {} is unknown until apply",
                template.address
            ));
        }
    };
    let count = desired.normalize();
    let mut out = vec![
        ctx.hourly(
            format!("Instances (Linux/UNIX, on-demand, {instance_type} × {count})"),
            "ec2",
            &format!("instance:{instance_type}"),
            desired,
        )?
        .assuming(desired_assumption)
        .assuming(format!(
            "instance_type from {template_kind} {}",
            template.address
        )),
    ];
    for (label, volume) in template_volumes(ctx, template, &t)? {
        out.extend(
            volume_components(ctx, &format!("{label} × {count}: "), &volume)?
                .into_iter()
                .map(|c| c.times(desired)),
        );
    }
    Ok(Outcome::Components(out))
}

/// The launch template (or launch configuration) a group starts its instances from:
/// through the configuration reference, else by the known id or name.
fn launch_source<'c, 'a>(
    ctx: &PricerInput<'c, 'a>,
    a: &Attrs<'a>,
) -> Result<(&'c Change<'a>, &'static str), String> {
    let plan = ctx.plan;
    for attr in ["id", "name"] {
        let references = plan.references_nested(ctx.change, "launch_template", attr);
        if let Some(found) = ctx.referenced(&references, "aws_launch_template") {
            return Ok((found, "launch template"));
        }
    }
    let references = plan.references(ctx.change, "launch_configuration");
    if let Some(found) = ctx.referenced(&references, "aws_launch_configuration") {
        return Ok((found, "launch configuration"));
    }
    let wanted: Vec<(&str, &str, &str)> = ctx
        .blocks(a, "launch_template")?
        .unwrap_or_default()
        .first()
        .map(|lt| {
            ["id", "name"]
                .into_iter()
                .filter_map(|k| lt.str(k).ok().flatten().map(|v| (k, v)))
                .map(|(k, v)| ("aws_launch_template", k, v))
                .collect()
        })
        .unwrap_or_default();
    let by_config = a
        .str("launch_configuration")
        .ok()
        .flatten()
        .map(|v| ("aws_launch_configuration", "name", v));
    for (resource_type, key, value) in wanted.into_iter().chain(by_config) {
        if let Some(found) = plan.changes.iter().find(|c| {
            c.resource_type == resource_type && ctx.side_of(c).str(key) == Ok(Some(value))
        }) {
            let kind = if resource_type == "aws_launch_template" {
                "launch template"
            } else {
                "launch configuration"
            };
            return Ok((found, kind));
        }
    }
    Err("the group's launch template (or launch configuration) is not in the plan, so its instance type is unknown".into())
}

/// The EBS volumes every instance of the group gets: the template's block device
/// mappings (a launch configuration's root and EBS devices), or an 8 GB gp2 root (the
/// common AMI size) when it maps none. A value the provider computes because the
/// template does not set it (gp3's baseline IOPS) takes AWS's default.
fn template_volumes<'a>(
    ctx: &PricerInput<'_, 'a>,
    template: &Change<'a>,
    t: &Attrs<'a>,
) -> Result<Vec<(String, Volume<'a>)>, String> {
    let expressions = ctx.plan.expressions_of(template);
    // (label, values, configuration of the same device)
    let mut devices: Vec<(String, Attrs<'a>, Option<&serde_json::Value>)> = Vec::new();
    if template.resource_type == "aws_launch_configuration" {
        for block in ["root_block_device", "ebs_block_device"] {
            for (i, b) in t.blocks(block).unwrap_or_default().into_iter().enumerate() {
                let config = expressions
                    .and_then(|e| e.get(block))
                    .and_then(|b| b.get(i));
                devices.push((format!("{block}[{i}]"), b, config));
            }
        }
    } else {
        let mappings = t.blocks("block_device_mappings").unwrap_or_default();
        for (i, m) in mappings.into_iter().enumerate() {
            let Some(ebs) = m.blocks("ebs").ok().and_then(|e| e.into_iter().next()) else {
                continue;
            };
            let config = expressions
                .and_then(|e| e.get("block_device_mappings"))
                .and_then(|b| b.get(i))
                .and_then(|m| m.get("ebs"))
                .and_then(|e| e.get(0));
            devices.push((format!("block_device_mappings[{i}]"), ebs, config));
        }
    }
    let mut out = Vec::new();
    for (label, ebs, config) in devices {
        let configured = |attr: &str| config.is_some_and(|c| c.get(attr).is_some());
        let unknown = |attr: &str| {
            format!(
                "{label}.{attr} of {} is unknown until apply",
                template.address
            )
        };
        let number = |attr: &str| match ebs.number(attr) {
            Ok(v) => Ok(v),
            Err(_) if !configured(attr) => Ok(None),
            Err(_) => Err(unknown(attr)),
        };
        let volume_type = match ebs.str("volume_type") {
            Ok(v) => v.unwrap_or("gp2"),
            Err(_) if !configured("volume_type") => "gp2",
            Err(_) => return Err(unknown("volume_type")),
        };
        let volume = Volume {
            volume_type,
            size_gb: number("volume_size")?.unwrap_or(DEFAULT_ROOT_GB),
            iops: number("iops")?,
            throughput: number("throughput")?,
        };
        out.push((label, volume));
    }
    if out.is_empty() {
        out.push((
            "root volume (8 GB gp2 assumed)".to_string(),
            Volume {
                volume_type: "gp2",
                size_gb: DEFAULT_ROOT_GB,
                iops: None,
                throughput: None,
            },
        ));
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

    /// An Auto Scaling group and the launch template it references by `id`, as
    /// `terraform show -json` writes them when the template is created alongside.
    fn asg_plan(group: serde_json::Value, template: serde_json::Value) -> serde_json::Value {
        json!({
            "format_version": "1.2",
            "resource_changes": [
                {"address": "aws_autoscaling_group.web", "mode": "managed", "type": "aws_autoscaling_group", "name": "web",
                 "change": {"actions": ["create"], "before": null, "after": group,
                            "after_unknown": {"launch_template": [{"id": true}]}}},
                {"address": "aws_launch_template.web", "mode": "managed", "type": "aws_launch_template", "name": "web",
                 "change": {"actions": ["create"], "before": null, "after": template, "after_unknown": {"id": true}}}
            ],
            "configuration": {"root_module": {"resources": [
                {"address": "aws_autoscaling_group.web", "mode": "managed", "type": "aws_autoscaling_group", "name": "web",
                 "expressions": {"desired_capacity": {"constant_value": 3},
                                 "launch_template": [{"id": {"references": ["aws_launch_template.web.id", "aws_launch_template.web"]}}]}},
                {"address": "aws_launch_template.web", "mode": "managed", "type": "aws_launch_template", "name": "web",
                 "expressions": {}}
            ]}}
        })
    }

    #[test]
    fn autoscaling_group_is_desired_capacity_times_the_template() {
        // us-east-1 m5.large $0.096/h × 3 × 730 = 210.24; gp3 30 GB × $0.08 × 3 = 7.20.
        let p = asg_plan(
            json!({"desired_capacity": 3, "min_size": 1, "max_size": 6, "launch_template": [{"version": "$Latest"}]}),
            json!({"instance_type": "m5.large", "block_device_mappings": [
                {"device_name": "/dev/xvda", "ebs": [{"volume_size": 30, "volume_type": "gp3"}]}]}),
        );
        let c = components(price_plan(&p, "us-east-1", &Usage::none()));
        assert_eq!(find(&c, "Instances").monthly_cost, d("210.24"));
        assert_eq!(find(&c, "Storage").monthly_cost, d("7.2"));
        assert_eq!(total(&c), d("217.44"));
        assert!(
            find(&c, "Instances")
                .assumptions
                .iter()
                .any(|a| a.contains("aws_launch_template.web")),
            "{c:?}"
        );
    }

    #[test]
    fn autoscaling_group_without_desired_capacity_keeps_min_size() {
        // t3.micro $0.0104/h × 2 × 730 = 15.184; default root 8 GB gp2 × $0.10 × 2 = 1.60.
        let p = asg_plan(
            json!({"min_size": 2, "max_size": 4, "launch_template": [{}]}),
            json!({"instance_type": "t3.micro"}),
        );
        let c = components(price_plan(&p, "us-east-1", &Usage::none()));
        assert_eq!(total(&c), d("16.784"));
        assert!(
            c[0].assumptions.iter().any(|a| a.contains("min_size 2")),
            "{c:?}"
        );
    }

    #[test]
    fn autoscaling_group_that_cannot_be_priced_says_why() {
        let p = asg_plan(
            json!({"desired_capacity": 1, "min_size": 1, "max_size": 1, "launch_template": [{}],
                   "mixed_instances_policy": [{"instances_distribution": []}]}),
            json!({"instance_type": "t3.micro"}),
        );
        let err = price_plan(&p, "us-east-1", &Usage::none()).unwrap_err();
        assert!(err.contains("mixed_instances_policy"), "{err}");
        let err = price_after(
            "aws_autoscaling_group",
            json!({"desired_capacity": 1, "min_size": 1, "launch_template": [{"id": "lt-0123"}]}),
        )
        .unwrap_err();
        assert!(err.contains("not in the plan"), "{err}");
    }
}

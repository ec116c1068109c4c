//! `aws_ecs_service` on Fargate, sized by its task definition.

use rust_decimal::Decimal;

use super::{Outcome, Priced, PricerInput, Side};
use crate::cost::plan_view::{Attrs, Change};

const CPU_UNITS_PER_VCPU: Decimal = Decimal::from_parts(1024, 0, 0, false, 0);
const MIB_PER_GB: Decimal = Decimal::from_parts(1024, 0, 0, false, 0);

/// `aws_ecs_service`: on Fargate, vCPU-hours and GB-hours of the task definition ×
/// `desired_count` (x86_64 or ARM64 rates). The task definition is found through the
/// configuration reference of `task_definition` (e.g. `aws_ecs_task_definition.app.arn`),
/// else by matching the family in a known `task_definition` value against the plan's
/// `aws_ecs_task_definition` resources. Services on EC2 or external capacity are free
/// by themselves (the instances are billed).
pub(crate) fn ecs_service(ctx: &PricerInput<'_, '_>) -> Priced {
    let a = ctx.attrs();
    let launch_type = ctx.opt_str(&a, "launch_type")?;
    let strategy: Vec<&str> = match ctx.blocks(&a, "capacity_provider_strategy")? {
        Some(blocks) => {
            let mut names = Vec::with_capacity(blocks.len());
            for b in &blocks {
                match b.str("capacity_provider") {
                    Ok(Some(n)) => names.push(n),
                    Ok(None) => {}
                    Err(_) => {
                        return Err(PricerInput::unknown(
                            "capacity_provider_strategy.capacity_provider",
                        ));
                    }
                }
            }
            names
        }
        None => Vec::new(),
    };
    let fargate = match (launch_type, strategy.as_slice()) {
        (Some("FARGATE"), _) => true,
        (_, []) => false,
        (_, providers) if providers.iter().all(|p| *p == "FARGATE") => true,
        (_, providers) if providers.iter().any(|p| p.starts_with("FARGATE")) => {
            return Err(
                "capacity_provider_strategy uses FARGATE_SPOT, whose prices vary; only FARGATE is priced"
                    .into(),
            );
        }
        _ => false,
    };
    if !fargate {
        return Ok(Outcome::Free);
    }
    let count = ctx
        .opt_number(&a, "desired_count")?
        .unwrap_or(Decimal::ZERO);
    let (td_address, td) = task_definition(ctx, &a)?;
    let cpu = match td.number("cpu") {
        Ok(Some(c)) => c,
        Ok(None) => {
            return Err(format!(
                "task definition {td_address} sets no task-level cpu, which Fargate requires"
            ));
        }
        Err(_) => return Err(PricerInput::unknown(&format!("{td_address}.cpu"))),
    };
    let memory = match td.number("memory") {
        Ok(Some(m)) => m,
        Ok(None) => {
            return Err(format!(
                "task definition {td_address} sets no task-level memory, which Fargate requires"
            ));
        }
        Err(_) => return Err(PricerInput::unknown(&format!("{td_address}.memory"))),
    };
    let arch = match td.blocks("runtime_platform") {
        Ok(blocks) => match blocks.first().map(|b| b.str("cpu_architecture")) {
            Some(Ok(Some(arch))) => arch,
            Some(Err(_)) => {
                return Err(PricerInput::unknown(&format!(
                    "{td_address}.runtime_platform.cpu_architecture"
                )));
            }
            _ => "X86_64",
        },
        Err(_) => "X86_64",
    };
    let arch_key = match arch {
        "ARM64" => "arm64",
        "X86_64" => "x86_64",
        other => {
            return Err(format!(
                "cpu_architecture `{other}` is not a Fargate architecture"
            ));
        }
    };
    let vcpu = cpu / CPU_UNITS_PER_VCPU;
    let gb = memory / MIB_PER_GB;
    Ok(Outcome::Components(vec![
        ctx.hourly(
            format!(
                "Fargate vCPU ({arch}, {} vCPU × {count} tasks)",
                vcpu.normalize()
            ),
            "fargate",
            &format!("vcpu-hour:{arch_key}"),
            vcpu * count,
        )?,
        ctx.hourly(
            format!(
                "Fargate memory ({arch}, {} GB × {count} tasks)",
                gb.normalize()
            ),
            "fargate",
            &format!("gb-hour:{arch_key}"),
            gb * count,
        )?,
    ]))
}

/// Finds the task definition the service runs, and the matching side of its values.
fn task_definition<'a>(
    ctx: &PricerInput<'_, 'a>,
    service: &Attrs<'a>,
) -> Result<(String, Attrs<'a>), String> {
    let plan = ctx.plan;
    let prefix = ctx
        .change
        .module_address
        .filter(|m| !m.is_empty())
        .map(|m| format!("{m}."))
        .unwrap_or_default();
    let side_of = |c: &Change<'a>| match ctx.side {
        Side::After => c.after_attrs(),
        Side::Before => c.before_attrs(),
    };
    // 1. Through the configuration reference (the normal case: the ARN is unknown
    //    until the task definition is registered).
    if ctx.side == Side::After {
        let own_index = ctx
            .change
            .address
            .rfind('[')
            .filter(|_| ctx.change.address.ends_with(']'))
            .map(|i| &ctx.change.address[i..]);
        for reference in plan.references(ctx.change, "task_definition") {
            let Some(rest) = reference.strip_prefix("aws_ecs_task_definition.") else {
                continue;
            };
            let name_end = rest.find(['.', '[']).unwrap_or(rest.len());
            let base = format!("{prefix}aws_ecs_task_definition.{}", &rest[..name_end]);
            let explicit_index = rest[name_end..]
                .starts_with('[')
                .then(|| {
                    rest[name_end..]
                        .find(']')
                        .map(|e| &rest[name_end..=name_end + e])
                })
                .flatten();
            let mut candidates = Vec::new();
            if let Some(idx) = explicit_index {
                candidates.push(format!("{base}{idx}"));
            }
            candidates.push(base.clone());
            if let Some(idx) = own_index {
                candidates.push(format!("{base}{idx}"));
            }
            for candidate in &candidates {
                if let Some(td) = plan.change(candidate) {
                    return Ok((td.address.to_string(), side_of(td)));
                }
            }
            if let Some(td) = plan
                .changes
                .iter()
                .find(|c| c.address.starts_with(&format!("{base}[")))
            {
                return Ok((td.address.to_string(), side_of(td)));
            }
        }
    }
    // 2. By family, from a known `task_definition` value (family, family:rev or ARN).
    let value = match service.str("task_definition") {
        Ok(Some(v)) => v,
        Ok(None) => return Err("task_definition is not set".into()),
        Err(_) => {
            return Err(
                "task_definition is unknown until apply and its configuration references no aws_ecs_task_definition in the plan"
                    .into(),
            );
        }
    };
    let family = value
        .rsplit('/')
        .next()
        .unwrap_or(value)
        .split(':')
        .next()
        .unwrap_or(value);
    for c in plan
        .changes
        .iter()
        .filter(|c| c.resource_type == "aws_ecs_task_definition")
    {
        let attrs = side_of(c);
        if attrs.str("family") == Ok(Some(family)) {
            return Ok((c.address.to_string(), attrs));
        }
    }
    Err(format!(
        "task definition `{value}` is not in the plan, so its cpu and memory are unknown"
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use serde_json::json;

    use super::super::Outcome;
    use super::super::test_support::*;
    use crate::cost::usage::Usage;

    fn plan_with_td(
        service_after: serde_json::Value,
        td_after: serde_json::Value,
    ) -> serde_json::Value {
        json!({
            "format_version": "1.2",
            "resource_changes": [
                {"address": "aws_ecs_service.api", "mode": "managed", "type": "aws_ecs_service", "name": "api",
                 "change": {"actions": ["create"], "before": null, "after": service_after,
                            "after_unknown": {"task_definition": true}}},
                {"address": "aws_ecs_task_definition.api", "mode": "managed", "type": "aws_ecs_task_definition", "name": "api",
                 "change": {"actions": ["create"], "before": null, "after": td_after, "after_unknown": {"arn": true}}}
            ],
            "configuration": {"root_module": {"resources": [
                {"address": "aws_ecs_service.api", "mode": "managed", "type": "aws_ecs_service", "name": "api",
                 "expressions": {"task_definition": {"references": ["aws_ecs_task_definition.api.arn", "aws_ecs_task_definition.api"]},
                                 "launch_type": {"constant_value": "FARGATE"}, "desired_count": {"constant_value": 2}}},
                {"address": "aws_ecs_task_definition.api", "mode": "managed", "type": "aws_ecs_task_definition", "name": "api",
                 "expressions": {"cpu": {"constant_value": "512"}}}
            ]}}
        })
    }

    #[test]
    fn fargate_x86_via_reference() {
        // us-east-1 Fargate x86: $0.04048 per vCPU-hour, $0.004445 per GB-hour.
        // 0.5 vCPU × 2 tasks × 730 × 0.04048 = 29.5504; 1 GB × 2 × 730 × 0.004445 = 6.4897.
        let p = plan_with_td(
            json!({"launch_type": "FARGATE", "desired_count": 2}),
            json!({"family": "api", "cpu": "512", "memory": "1024"}),
        );
        let c = components(price_plan(&p, "us-east-1", &Usage::none()));
        assert_eq!(find(&c, "vCPU").monthly_cost, d("29.5504"));
        assert_eq!(find(&c, "memory").monthly_cost, d("6.4897"));
    }

    #[test]
    fn fargate_arm64() {
        // us-east-1 Fargate ARM: $0.03238 per vCPU-hour, $0.00356 per GB-hour.
        // 1 vCPU × 730 × 0.03238 = 23.6374; 2 GB × 730 × 0.00356 = 5.1976.
        let p = plan_with_td(
            json!({"launch_type": "FARGATE", "desired_count": 1}),
            json!({"family": "api", "cpu": "1024", "memory": "2048",
                   "runtime_platform": [{"cpu_architecture": "ARM64", "operating_system_family": "LINUX"}]}),
        );
        let c = components(price_plan(&p, "us-east-1", &Usage::none()));
        assert_eq!(total(&c), d("28.835"));
    }

    #[test]
    fn ec2_launch_type_is_free() {
        let p = plan_with_td(
            json!({"launch_type": "EC2", "desired_count": 2}),
            json!({"family": "api", "cpu": "512", "memory": "1024"}),
        );
        assert_eq!(
            price_plan(&p, "us-east-1", &Usage::none()).unwrap(),
            Outcome::Free
        );
    }

    #[test]
    fn by_family_when_value_known() {
        let after = json!({"launch_type": "FARGATE", "desired_count": 1,
            "task_definition": "arn:aws:ecs:us-east-1:123456789012:task-definition/api:3"});
        let mut p = plan_with_td(
            after,
            json!({"family": "api", "cpu": "256", "memory": "512"}),
        );
        // No configuration reference this time.
        p["configuration"] = json!({});
        p["resource_changes"][0]["change"]["after_unknown"] = json!({});
        let c = components(price_plan(&p, "us-east-1", &Usage::none()));
        // 0.25 × 730 × 0.04048 = 7.3876; 0.5 × 730 × 0.004445 = 1.622425.
        assert_eq!(total(&c), d("9.010025"));
    }

    #[test]
    fn missing_task_definition_is_unpriced() {
        let p = json!({
            "format_version": "1.2",
            "resource_changes": [
                {"address": "aws_ecs_service.api", "mode": "managed", "type": "aws_ecs_service", "name": "api",
                 "change": {"actions": ["create"], "before": null,
                            "after": {"launch_type": "FARGATE", "desired_count": 1, "task_definition": "web:7"}, "after_unknown": {}}}
            ]
        });
        let err = price_plan(&p, "us-east-1", &Usage::none()).unwrap_err();
        assert!(err.contains("`web:7` is not in the plan"), "{err}");
    }
}

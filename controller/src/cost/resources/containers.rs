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
    let vcpu = task_size(&td, &td_address, Size::Cpu)?;
    let gb = task_size(&td, &td_address, Size::Memory)?;
    let platform = platform(&td, &td_address)?;
    let (label, rate) = match platform {
        Platform::Linux(arch) => (arch, arch.to_ascii_lowercase()),
        Platform::Windows(family) => (family, "windows".to_string()),
    };
    let mut out = vec![
        ctx.hourly(
            format!(
                "Fargate vCPU ({label}, {} vCPU × {count} tasks)",
                vcpu.normalize()
            ),
            "fargate",
            &format!("vcpu-hour:{rate}"),
            vcpu * count,
        )?,
        ctx.hourly(
            format!(
                "Fargate memory ({label}, {} GB × {count} tasks)",
                gb.normalize()
            ),
            "fargate",
            &format!("gb-hour:{rate}"),
            gb * count,
        )?,
    ];
    if let Platform::Windows(family) = platform {
        out.push(ctx.hourly(
            format!(
                "Fargate Windows OS license ({family}, {} vCPU × {count} tasks)",
                vcpu.normalize()
            ),
            "fargate",
            "windows-license:vcpu-hour",
            vcpu * count,
        )?);
    }
    Ok(Outcome::Components(out))
}

#[derive(Clone, Copy)]
enum Size {
    Cpu,
    Memory,
}

/// The task-level size in vCPU or GB. AWS accepts CPU units (`"1024"`) or vCPU
/// (`"1 vCPU"`, `"0.25 vcpu"`), and memory in MiB (`"2048"`) or GB (`"2 GB"`, `"2GB"`).
/// Fargate requires task-level values: container-level ones do not size a Fargate task.
fn task_size(td: &Attrs<'_>, td_address: &str, size: Size) -> Result<Decimal, String> {
    let (key, suffix, per_unit) = match size {
        Size::Cpu => ("cpu", "vcpu", CPU_UNITS_PER_VCPU),
        Size::Memory => ("memory", "gb", MIB_PER_GB),
    };
    let text = match (td.str(key), td.number(key)) {
        (Err(_), _) | (_, Err(_)) => {
            return Err(PricerInput::unknown(&format!("{td_address}.{key}")));
        }
        (Ok(Some(text)), _) => text.to_string(),
        (Ok(None), Ok(Some(n))) => n.to_string(),
        (Ok(None), Ok(None)) => {
            return Err(format!(
                "task definition {td_address} sets no task-level {key}, which Fargate requires (container-level values do not size a Fargate task)"
            ));
        }
    };
    parse_size(&text, suffix, per_unit).ok_or_else(|| {
        format!("task definition {td_address} has {key} `{text}`, which is not a size AWS accepts")
    })
}

/// `"<n> <suffix>"` (any case, space optional) is `n`; a bare number is in the small unit.
fn parse_size(text: &str, suffix: &str, small_per_large: Decimal) -> Option<Decimal> {
    let lower = text.trim().to_ascii_lowercase();
    let value = match lower.strip_suffix(suffix) {
        Some(n) => n.trim().parse::<Decimal>().ok()?,
        None => lower.parse::<Decimal>().ok()? / small_per_large,
    };
    (value > Decimal::ZERO).then_some(value)
}

#[derive(Clone, Copy)]
enum Platform<'a> {
    /// `X86_64` or `ARM64`.
    Linux(&'a str),
    /// The `WINDOWS_SERVER_*` family (x86_64 only).
    Windows(&'a str),
}

fn platform<'a>(td: &Attrs<'a>, td_address: &str) -> Result<Platform<'a>, String> {
    let block = td
        .blocks("runtime_platform")
        .ok()
        .and_then(|b| b.into_iter().next());
    let field = |key: &str| -> Result<Option<&'a str>, String> {
        match block.as_ref().map(|b| b.str(key)) {
            Some(Err(_)) => Err(PricerInput::unknown(&format!(
                "{td_address}.runtime_platform.{key}"
            ))),
            Some(Ok(v)) => Ok(v),
            None => Ok(None),
        }
    };
    let arch = field("cpu_architecture")?.unwrap_or("X86_64");
    let os = field("operating_system_family")?.unwrap_or("LINUX");
    match (os, arch) {
        ("LINUX", "X86_64" | "ARM64") => Ok(Platform::Linux(arch)),
        (family, "X86_64") if family.starts_with("WINDOWS_SERVER_") => {
            Ok(Platform::Windows(family))
        }
        (family, "ARM64") if family.starts_with("WINDOWS_SERVER_") => {
            Err("Fargate runs Windows tasks on X86_64 only, not ARM64".into())
        }
        (_, "X86_64" | "ARM64") => Err(format!(
            "operating_system_family `{os}` is not a Fargate platform"
        )),
        _ => Err(format!(
            "cpu_architecture `{arch}` is not a Fargate architecture"
        )),
    }
}

/// Finds the task definition the service runs, and the matching side of its values.
fn task_definition<'a>(
    ctx: &PricerInput<'_, 'a>,
    service: &Attrs<'a>,
) -> Result<(String, Attrs<'a>), String> {
    let plan = ctx.plan;
    let side_of = |c: &Change<'a>| ctx.side_of(c);
    // 1. Through the configuration reference (the normal case: the ARN is unknown
    //    until the task definition is registered).
    if ctx.side == Side::After {
        let references = plan.references(ctx.change, "task_definition");
        if let Some(td) = ctx.referenced(&references, "aws_ecs_task_definition") {
            return Ok((td.address.to_string(), side_of(td)));
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

    fn fargate_total(
        cpu: serde_json::Value,
        memory: serde_json::Value,
    ) -> Result<rust_decimal::Decimal, String> {
        let p = plan_with_td(
            json!({"launch_type": "FARGATE", "desired_count": 1}),
            json!({"family": "api", "cpu": cpu, "memory": memory}),
        );
        price_plan(&p, "us-east-1", &Usage::none()).map(|o| total(&components(Ok(o))))
    }

    #[test]
    fn fargate_sizes_in_every_form_aws_accepts() {
        // 1 vCPU × 730 × 0.04048 = 29.5504; 2 GB × 730 × 0.004445 = 6.4897: 36.0401.
        for (cpu, memory) in [
            (json!("1 vCPU"), json!("2 GB")),
            (json!("1 vcpu"), json!("2GB")),
            (json!("1024"), json!("2048")),
            (json!(1024), json!(2048)),
            (json!(" 1 VCPU "), json!("2 gb")),
        ] {
            assert_eq!(
                fargate_total(cpu.clone(), memory.clone()),
                Ok(d("36.0401")),
                "{cpu} {memory}"
            );
        }
        // 0.25 vCPU × 730 × 0.04048 = 7.3876; 512 MiB = 0.5 GB × 730 × 0.004445 = 1.622425.
        assert_eq!(
            fargate_total(json!("0.25 vcpu"), json!("512")),
            Ok(d("9.010025"))
        );
    }

    #[test]
    fn fargate_sizes_aws_rejects_are_unpriced() {
        for (cpu, memory, says) in [
            (json!("one vCPU"), json!("2 GB"), "cpu `one vCPU`"),
            (json!("1 vCPU"), json!("2 TB"), "memory `2 TB`"),
            (json!("0"), json!("512"), "cpu `0`"),
            (json!(null), json!("512"), "no task-level cpu"),
        ] {
            let err = fargate_total(cpu, memory).unwrap_err();
            assert!(err.contains(says), "{err}");
        }
    }

    #[test]
    fn fargate_windows_adds_the_license() {
        // us-east-1 Fargate Windows: $0.046552 per vCPU-hour, $0.00511175 per GB-hour,
        // OS license $0.046 per vCPU-hour (AWS Pricing Calculator ecs.json).
        // 2 vCPU × 730 × 0.046552 = 67.96592; 4 GB × 730 × 0.00511175 = 14.92631;
        // 2 × 730 × 0.046 = 67.16: 150.05223.
        let p = plan_with_td(
            json!({"launch_type": "FARGATE", "desired_count": 1}),
            json!({"family": "api", "cpu": "2 vCPU", "memory": "4 GB",
                   "runtime_platform": [{"cpu_architecture": "X86_64", "operating_system_family": "WINDOWS_SERVER_2022_CORE"}]}),
        );
        let c = components(price_plan(&p, "us-east-1", &Usage::none()));
        assert_eq!(find(&c, "OS license").monthly_cost, d("67.16"));
        assert_eq!(total(&c), d("150.05223"));
        let arm = plan_with_td(
            json!({"launch_type": "FARGATE", "desired_count": 1}),
            json!({"family": "api", "cpu": "2 vCPU", "memory": "4 GB",
                   "runtime_platform": [{"cpu_architecture": "ARM64", "operating_system_family": "WINDOWS_SERVER_2022_CORE"}]}),
        );
        let err = price_plan(&arm, "us-east-1", &Usage::none()).unwrap_err();
        assert!(err.contains("X86_64 only"), "{err}");
    }

    #[test]
    fn fargate_arm64_in_another_region() {
        // ap-northeast-1 Fargate ARM: $0.04045 per vCPU-hour, $0.00442 per GB-hour
        // (AWS Pricing Calculator ecs.json). 1 × 730 × 0.04045 = 29.5285; 2 × 730 × 0.00442 = 6.4532.
        let p = plan_with_td(
            json!({"launch_type": "FARGATE", "desired_count": 1}),
            json!({"family": "api", "cpu": "1 vCPU", "memory": "2 GB",
                   "runtime_platform": [{"cpu_architecture": "ARM64", "operating_system_family": "LINUX"}]}),
        );
        let c = components(price_plan(&p, "ap-northeast-1", &Usage::none()));
        assert_eq!(total(&c), d("35.9817"));
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

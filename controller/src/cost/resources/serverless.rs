//! Lambda, CloudWatch Logs, Secrets Manager and KMS.

use rust_decimal::Decimal;

use super::{Outcome, Priced, PricerInput};
use crate::cost::estimate::Component;

const MB_PER_GB: Decimal = Decimal::from_parts(1024, 0, 0, false, 0);
const MS_PER_S: Decimal = Decimal::from_parts(1000, 0, 0, false, 0);

/// `aws_lambda_function`: usage-based requests and duration. GB-seconds =
/// `monthly_requests × request_duration_ms / 1000 × memory_size / 1024`; ARM64 has its
/// own duration rate. First-tier prices; the free tier is not applied.
pub(crate) fn lambda_function(ctx: &PricerInput<'_, '_>) -> Priced {
    let a = ctx.attrs();
    let memory_mb = ctx
        .opt_number(&a, "memory_size")?
        .unwrap_or(Decimal::from(128));
    let arch = match a.strings("architectures") {
        Ok(list) if list.contains(&"arm64") => "arm64",
        Ok(_) => "x86_64",
        Err(_) if ctx.plan.configured(ctx.change, "architectures") != Some(true) => "x86_64",
        Err(_) => return Err(PricerInput::unknown("architectures")),
    };
    let requests = ctx.usage_value("monthly_requests").unwrap_or(Decimal::ZERO);
    let duration_ms = ctx
        .usage_value("request_duration_ms")
        .unwrap_or(Decimal::ZERO);
    let gb_seconds = requests * duration_ms / MS_PER_S * memory_mb / MB_PER_GB;
    let duration = ctx.price("lambda", &format!("duration:{arch}"))?;
    Ok(Outcome::Components(vec![
        ctx.usage_based(
            "Requests",
            "lambda",
            "requests",
            "monthly_requests",
            Decimal::from(1_000_000),
        )?,
        Component::from_row(
            format!("Duration ({arch}, {} MB)", memory_mb.normalize()),
            duration,
            gb_seconds,
            true,
        )
        .assuming(ctx.usage_assumption("monthly_requests"))
        .assuming(ctx.usage_assumption("request_duration_ms")),
    ]))
}

/// `aws_cloudwatch_log_group`: usage-based ingestion (standard log class) and storage.
pub(crate) fn cloudwatch_log_group(ctx: &PricerInput<'_, '_>) -> Priced {
    Ok(Outcome::Components(vec![
        ctx.usage_based(
            "Data ingested (standard)",
            "cloudwatch",
            "logs-ingestion",
            "monthly_data_ingested_gb",
            Decimal::ONE,
        )?,
        ctx.usage_based(
            "Archive storage",
            "cloudwatch",
            "logs-storage",
            "storage_gb",
            Decimal::ONE,
        )?,
    ]))
}

/// `aws_secretsmanager_secret`: $/secret-month plus usage-based API requests.
pub(crate) fn secretsmanager_secret(ctx: &PricerInput<'_, '_>) -> Priced {
    Ok(Outcome::Components(vec![
        ctx.fixed("Secret", "secretsmanager", "secret", Decimal::ONE)?,
        ctx.usage_based(
            "API requests",
            "secretsmanager",
            "api-requests",
            "monthly_requests",
            Decimal::from(10_000),
        )?,
    ]))
}

/// `aws_kms_key`: $/key-month (customer managed) plus usage-based requests.
pub(crate) fn kms_key(ctx: &PricerInput<'_, '_>) -> Priced {
    Ok(Outcome::Components(vec![
        ctx.fixed("Customer managed key", "kms", "key", Decimal::ONE)?,
        ctx.usage_based(
            "Requests",
            "kms",
            "requests",
            "monthly_requests",
            Decimal::from(10_000),
        )?,
    ]))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use serde_json::json;

    use super::super::test_support::*;
    use crate::cost::usage::Usage;

    #[test]
    fn lambda_usage_x86_and_arm() {
        // us-east-1: $0.20 per 1M requests; $0.0000166667 per GB-s (x86), $0.0000133334 (ARM).
        // 100,000 requests × 350 ms × 512/1024 GB = 17,500 GB-s.
        let usage = Usage::none()
            .with_type_default("aws_lambda_function", "monthly_requests", d("100000"))
            .with_type_default("aws_lambda_function", "request_duration_ms", d("350"));
        let c = components(price_after_in(
            "aws_lambda_function",
            json!({"memory_size": 512}),
            "us-east-1",
            &usage,
        ));
        assert_eq!(find(&c, "Requests").monthly_cost, d("0.02"));
        let dur = find(&c, "Duration");
        assert_eq!(dur.monthly_quantity, d("17500"));
        assert_eq!(dur.monthly_cost, d("0.29166725"));
        let c = components(price_after_in(
            "aws_lambda_function",
            json!({"memory_size": 512, "architectures": ["arm64"]}),
            "us-east-1",
            &usage,
        ));
        assert_eq!(find(&c, "Duration").monthly_cost, d("0.2333345"));
    }

    #[test]
    fn lambda_without_usage_is_zero_but_listed() {
        let c = components(price_after("aws_lambda_function", json!({})));
        assert_eq!(c.len(), 2);
        assert!(
            c.iter()
                .all(|c| c.usage_based && c.monthly_quantity.is_zero())
        );
    }

    #[test]
    fn log_group_usage() {
        // us-east-1 ingestion $0.50/GB, storage $0.03/GB-month.
        let usage = Usage::none()
            .with_type_default(
                "aws_cloudwatch_log_group",
                "monthly_data_ingested_gb",
                d("10"),
            )
            .with_type_default("aws_cloudwatch_log_group", "storage_gb", d("100"));
        let c = components(price_after_in(
            "aws_cloudwatch_log_group",
            json!({}),
            "us-east-1",
            &usage,
        ));
        assert_eq!(total(&c), d("8"));
    }

    #[test]
    fn secret_and_key_monthly() {
        // $0.40 per secret-month; $0.05 per 10k API calls.
        let c = components(price_after(
            "aws_secretsmanager_secret",
            json!({"name": "s"}),
        ));
        assert_eq!(total(&c), d("0.4"));
        // $1 per KMS key-month; $0.03 per 10k requests: 1M requests → 3.00.
        let usage =
            Usage::none().with_resource("aws_kms_key.this", "monthly_requests", d("1000000"));
        let c = components(price_after_in(
            "aws_kms_key",
            json!({}),
            "us-east-1",
            &usage,
        ));
        assert_eq!(total(&c), d("4"));
    }
}

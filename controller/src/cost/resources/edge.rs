//! API Gateway and WAF: request-priced front doors.

use rust_decimal::Decimal;

use super::{Outcome, Priced, PricerInput};

const MILLION: Decimal = Decimal::from_parts(1_000_000, 0, 0, false, 0);
/// The first price tier is applied to every request: a usage file that reaches the next
/// tier overstates the cost slightly.
const FIRST_TIER: &str = "every request at the first price tier";

/// `aws_api_gateway_rest_api`: requests from the usage file (`monthly_requests`).
pub(crate) fn api_gateway_rest_api(ctx: &PricerInput<'_, '_>) -> Priced {
    Ok(Outcome::Components(vec![
        ctx.usage_based(
            "REST API requests",
            "apigateway",
            "rest:requests",
            "monthly_requests",
            MILLION,
        )?
        .assuming(FIRST_TIER),
    ]))
}

/// `aws_api_gateway_stage`: the cache cluster's hourly charge when it is enabled
/// (requests are priced on the API).
pub(crate) fn api_gateway_stage(ctx: &PricerInput<'_, '_>) -> Priced {
    let a = ctx.attrs();
    if ctx.opt_bool(&a, "cache_cluster_enabled")? != Some(true) {
        return Ok(Outcome::Free);
    }
    let size = ctx.opt_str(&a, "cache_cluster_size")?.unwrap_or("0.5");
    Ok(Outcome::Components(vec![ctx.hourly(
        format!("Cache cluster ({size} GB)"),
        "apigateway",
        &format!("cache:{size}"),
        Decimal::ONE,
    )?]))
}

/// `aws_apigatewayv2_api`: HTTP APIs bill requests; WebSocket APIs bill messages and
/// connection minutes (usage `monthly_requests`, `monthly_messages`,
/// `monthly_connection_minutes`).
pub(crate) fn apigatewayv2_api(ctx: &PricerInput<'_, '_>) -> Priced {
    let a = ctx.attrs();
    match ctx.req_str(&a, "protocol_type")? {
        "HTTP" => Ok(Outcome::Components(vec![
            ctx.usage_based(
                "HTTP API requests",
                "apigateway",
                "http:requests",
                "monthly_requests",
                MILLION,
            )?
            .assuming(FIRST_TIER),
        ])),
        "WEBSOCKET" => Ok(Outcome::Components(vec![
            ctx.usage_based(
                "WebSocket messages",
                "apigateway",
                "websocket:messages",
                "monthly_messages",
                MILLION,
            )?
            .assuming(FIRST_TIER),
            ctx.usage_based(
                "WebSocket connection minutes",
                "apigateway",
                "websocket:connection-minutes",
                "monthly_connection_minutes",
                MILLION,
            )?,
        ])),
        other => Err(format!(
            "protocol_type `{other}` is not an API Gateway v2 protocol"
        )),
    }
}

/// `aws_wafv2_web_acl`: the web ACL and each of its rules per month, plus requests
/// (usage `monthly_requests`). Paid AWS Managed Rules (Bot Control, Fraud Control) add
/// subscription and request fees that are not priced.
pub(crate) fn wafv2_web_acl(ctx: &PricerInput<'_, '_>) -> Priced {
    let a = ctx.attrs();
    let rules = ctx.blocks(&a, "rule")?.unwrap_or_default().len();
    let mut out = vec![ctx.fixed("Web ACL", "wafv2", "web-acl", Decimal::ONE)?];
    if rules > 0 {
        out.push(ctx.fixed(
            format!("Rules ({rules})"),
            "wafv2",
            "rule",
            Decimal::from(rules),
        )?);
    }
    out.push(ctx.usage_based("Requests", "wafv2", "requests", "monthly_requests", MILLION)?);
    Ok(Outcome::Components(out))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use serde_json::json;

    use super::super::Outcome;
    use super::super::test_support::*;
    use crate::cost::usage::Usage;

    #[test]
    fn api_gateway_requests_and_cache() {
        // REST $3.50 per 1M (first 333M) × 20M = 70; HTTP $1.00 per 1M × 20M = 20.
        let usage = Usage::none()
            .with_type_default(
                "aws_api_gateway_rest_api",
                "monthly_requests",
                d("20000000"),
            )
            .with_type_default("aws_apigatewayv2_api", "monthly_requests", d("20000000"));
        let c = components(price_after_in(
            "aws_api_gateway_rest_api",
            json!({"name": "api"}),
            "us-east-1",
            &usage,
        ));
        assert_eq!(total(&c), d("70"));
        let c = components(price_after_in(
            "aws_apigatewayv2_api",
            json!({"protocol_type": "HTTP"}),
            "us-east-1",
            &usage,
        ));
        assert_eq!(total(&c), d("20"));
        // Cache 1.6 GB $0.038/h × 730 = 27.74; no cache: free.
        let c = components(price_after(
            "aws_api_gateway_stage",
            json!({"cache_cluster_enabled": true, "cache_cluster_size": "1.6"}),
        ));
        assert_eq!(total(&c), d("27.74"));
        assert_eq!(
            price_after("aws_api_gateway_stage", json!({"stage_name": "prod"})).unwrap(),
            Outcome::Free
        );
    }

    #[test]
    fn web_acl_and_rules() {
        // $5 web ACL + 2 rules × $1 + 10M requests × $0.60 per 1M = 13.
        let usage =
            Usage::none().with_type_default("aws_wafv2_web_acl", "monthly_requests", d("10000000"));
        let c = components(price_after_in(
            "aws_wafv2_web_acl",
            json!({"name": "acl", "scope": "REGIONAL", "rule": [{"name": "a", "priority": 1}, {"name": "b", "priority": 2}]}),
            "us-east-1",
            &usage,
        ));
        assert_eq!(total(&c), d("13"));
    }
}

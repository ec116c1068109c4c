//! API Gateway and WAF: request-priced front doors.

use rust_decimal::Decimal;

use super::{Outcome, Priced, PricerInput};
use crate::cost::estimate::Component;

const MILLION: Decimal = Decimal::from_parts(1_000_000, 0, 0, false, 0);
/// AWS counts the tiers over all of an account's APIs in a region; an estimate of one
/// API cannot know the others.
const PER_API_TIERS: &str =
    "price tiers counted on this API's requests alone (AWS counts them per account and region)";

/// A monthly price tier: its price-book key and where it ends, in millions (`None`: no end).
type Tier = (&'static str, Option<u32>);

/// REST: first 333M, next 667M, next 19B, over 20B.
const REST_TIERS: &[Tier] = &[
    ("rest:requests", Some(333)),
    ("rest:requests:tier2", Some(1_000)),
    ("rest:requests:tier3", Some(20_000)),
    ("rest:requests:tier4", None),
];
const HTTP_TIERS: &[Tier] = &[("http:requests", Some(300)), ("http:requests:tier2", None)];
const WEBSOCKET_TIERS: &[Tier] = &[
    ("websocket:messages", Some(1_000)),
    ("websocket:messages:tier2", None),
];

/// The usage file's `usage_key` (per month) spread over `tiers`: one component per tier
/// it reaches (the first tier at 0 without usage).
fn tiered(
    ctx: &PricerInput<'_, '_>,
    name: &str,
    tiers: &[Tier],
    usage_key: &str,
) -> Result<Vec<Component>, String> {
    let millions = ctx.usage_value(usage_key).unwrap_or(Decimal::ZERO) / MILLION;
    let mut out = Vec::new();
    let mut lower = Decimal::ZERO;
    for &(key, end) in tiers {
        let upper = end.map(Decimal::from);
        let reached = upper.map_or(millions, |u| u.min(millions));
        if reached <= lower && !out.is_empty() {
            break;
        }
        let label = match end {
            Some(e) if lower.is_zero() => format!("{name} (first {e}M a month)"),
            Some(e) => format!("{name} ({}M–{e}M a month)", lower.normalize()),
            None => format!("{name} (over {}M a month)", lower.normalize()),
        };
        let row = ctx.price("apigateway", key)?;
        out.push(
            Component::from_row(label, row, (reached - lower).max(Decimal::ZERO), true)
                .assuming(ctx.usage_assumption(usage_key))
                .assuming(PER_API_TIERS),
        );
        match upper {
            Some(u) => lower = u,
            None => break,
        }
    }
    Ok(out)
}

/// `aws_api_gateway_rest_api`: requests from the usage file (`monthly_requests`), over
/// AWS's four monthly tiers.
pub(crate) fn api_gateway_rest_api(ctx: &PricerInput<'_, '_>) -> Priced {
    Ok(Outcome::Components(tiered(
        ctx,
        "REST API requests",
        REST_TIERS,
        "monthly_requests",
    )?))
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
        "HTTP" => Ok(Outcome::Components(tiered(
            ctx,
            "HTTP API requests",
            HTTP_TIERS,
            "monthly_requests",
        )?)),
        "WEBSOCKET" => {
            let mut out = tiered(
                ctx,
                "WebSocket messages",
                WEBSOCKET_TIERS,
                "monthly_messages",
            )?;
            out.push(ctx.usage_based(
                "WebSocket connection minutes",
                "apigateway",
                "websocket:connection-minutes",
                "monthly_connection_minutes",
                MILLION,
            )?);
            Ok(Outcome::Components(out))
        }
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

    #[test]
    fn api_gateway_requests_beyond_the_first_tier() {
        // us-east-1 (processed/apigateway.json, 2025-10-20), REST 1,500M requests: 333M ×
        // $3.50 + 667M × $2.80 + 500M × $2.38 = 1165.5 + 1867.6 + 1190 = 4223.1.
        let usage = Usage::none()
            .with_type_default(
                "aws_api_gateway_rest_api",
                "monthly_requests",
                d("1500000000"),
            )
            .with_type_default("aws_apigatewayv2_api", "monthly_requests", d("400000000"))
            .with_type_default("aws_apigatewayv2_api", "monthly_messages", d("1500000000"));
        let c = components(price_after_in(
            "aws_api_gateway_rest_api",
            json!({"name": "api"}),
            "us-east-1",
            &usage,
        ));
        let costs: Vec<_> = c.iter().map(|c| c.monthly_cost).collect();
        assert_eq!(costs, vec![d("1165.5"), d("1867.6"), d("1190")]);
        assert!(c[2].name.contains("1000M–20000M"), "{}", c[2].name);
        assert!(
            c[0].assumptions
                .iter()
                .any(|a| a.contains("per account and region"))
        );
        // HTTP 400M: 300M × $1.00 + 100M × $0.90 = 390.
        let c = components(price_after_in(
            "aws_apigatewayv2_api",
            json!({"protocol_type": "HTTP"}),
            "us-east-1",
            &usage,
        ));
        assert_eq!(total(&c), d("390"));
        // WebSocket 1,500M messages: 1,000M × $1.00 + 500M × $0.80 = 1400; no connection
        // minutes.
        let c = components(price_after_in(
            "aws_apigatewayv2_api",
            json!({"protocol_type": "WEBSOCKET"}),
            "us-east-1",
            &usage,
        ));
        assert_eq!(total(&c), d("1400"));
        assert_eq!(c.len(), 3);
    }
}

//! Load balancers, NAT gateways, Elastic IPs, VPC endpoints, CloudFront, Route 53.

use rust_decimal::Decimal;

use super::{ALWAYS_ON, Outcome, Priced, PricerInput};
use crate::cost::estimate::{Component, HOURS_PER_MONTH};

/// `aws_lb` / `aws_alb`: hourly charge by type (default `application`) plus capacity
/// units (LCU / NLCU / GLCU) from usage `average_capacity_units` (per hour).
pub(crate) fn load_balancer(ctx: &PricerInput<'_, '_>) -> Priced {
    let a = ctx.attrs();
    let lb_type = ctx
        .opt_str(&a, "load_balancer_type")?
        .unwrap_or("application");
    let (prefix, label, cu) = match lb_type {
        "application" => (
            "alb",
            "Application load balancer",
            "Load balancer capacity units (LCU)",
        ),
        "network" => (
            "nlb",
            "Network load balancer",
            "Network load balancer capacity units (NLCU)",
        ),
        "gateway" => (
            "gwlb",
            "Gateway load balancer",
            "Gateway load balancer capacity units (GLCU)",
        ),
        other => return Err(format!("load_balancer_type `{other}` is not a known type")),
    };
    let hours = ctx.hourly(label, "elb", &format!("{prefix}:hour"), Decimal::ONE)?;
    let row = ctx.price("elb", &format!("{prefix}:capacity-unit"))?;
    let avg = ctx
        .usage_value("average_capacity_units")
        .unwrap_or(Decimal::ZERO);
    let units = Component::from_row(cu, row, avg * HOURS_PER_MONTH, true)
        .assuming(ctx.usage_assumption("average_capacity_units"))
        .assuming(ALWAYS_ON);
    Ok(Outcome::Components(vec![hours, units]))
}

/// `aws_nat_gateway`: hourly charge plus data processed (usage
/// `monthly_data_processed_gb`). Public and private NAT gateways cost the same.
pub(crate) fn nat_gateway(ctx: &PricerInput<'_, '_>) -> Priced {
    Ok(Outcome::Components(vec![
        ctx.hourly("NAT gateway", "vpc", "nat-gateway:hour", Decimal::ONE)?,
        ctx.usage_based(
            "Data processed",
            "vpc",
            "nat-gateway:gb",
            "monthly_data_processed_gb",
            Decimal::ONE,
        )?,
    ]))
}

/// `aws_eip`: every public IPv4 address is billed hourly, attached or not (since
/// February 2024).
pub(crate) fn eip(ctx: &PricerInput<'_, '_>) -> Priced {
    Ok(Outcome::Components(vec![ctx.hourly(
        "Public IPv4 address",
        "vpc",
        "public-ipv4:hour",
        Decimal::ONE,
    )?]))
}

/// `aws_vpc_endpoint`: Gateway (default; S3/DynamoDB) is free; Interface bills an hourly
/// charge per AZ (one per subnet) plus data processed (usage); GatewayLoadBalancer bills
/// one endpoint-hour.
pub(crate) fn vpc_endpoint(ctx: &PricerInput<'_, '_>) -> Priced {
    let a = ctx.attrs();
    let kind = ctx.opt_str(&a, "vpc_endpoint_type")?.unwrap_or("Gateway");
    match kind {
        "Gateway" => Ok(Outcome::Free),
        "Interface" => {
            let azs = match a.len("subnet_ids") {
                Ok(n) => n,
                Err(_) => return Err(PricerInput::unknown("subnet_ids")),
            };
            if azs == 0 {
                return Err("subnet_ids is empty, so the number of AZs is not known".into());
            }
            Ok(Outcome::Components(vec![
                ctx.hourly(
                    format!("Endpoint (Interface, {azs} AZ)"),
                    "vpc",
                    "endpoint-interface:hour",
                    Decimal::from(azs),
                )?,
                ctx.usage_based(
                    "Data processed (first 1 PB)",
                    "vpc",
                    "endpoint-interface:gb",
                    "monthly_data_processed_gb",
                    Decimal::ONE,
                )?,
            ]))
        }
        "GatewayLoadBalancer" => Ok(Outcome::Components(vec![ctx.hourly(
            "Endpoint (GatewayLoadBalancer)",
            "vpc",
            "endpoint-gwlb:hour",
            Decimal::ONE,
        )?])),
        other => Err(format!("vpc_endpoint_type `{other}` is not priced")),
    }
}

/// `aws_cloudfront_distribution`: usage-based data transfer out (United States/Europe
/// first-10-TB rate) and HTTPS requests.
pub(crate) fn cloudfront_distribution(ctx: &PricerInput<'_, '_>) -> Priced {
    Ok(Outcome::Components(vec![
        ctx.usage_based(
            "Data transfer out to internet (US/Europe, first 10 TB)",
            "cloudfront",
            "transfer-out:us-eu",
            "monthly_data_transfer_out_gb",
            Decimal::ONE,
        )?,
        ctx.usage_based(
            "HTTPS requests (US/Europe)",
            "cloudfront",
            "https-requests:us-eu",
            "monthly_https_requests",
            Decimal::from(10_000),
        )?,
    ]))
}

/// `aws_route53_zone`: one hosted zone-month (first 25 zones' price).
pub(crate) fn route53_zone(ctx: &PricerInput<'_, '_>) -> Priced {
    Ok(Outcome::Components(vec![ctx.fixed(
        "Hosted zone",
        "route53",
        "hosted-zone",
        Decimal::ONE,
    )?]))
}

/// Transit Gateway attachments: an hourly charge per attachment plus, for VPC and VPN
/// attachments, data processed (usage `monthly_data_processed_gb`). The transit gateway
/// itself is not billed.
pub(crate) fn transit_gateway_attachment(ctx: &PricerInput<'_, '_>, kind: &str) -> Priced {
    let mut out = vec![ctx.hourly(
        format!("Transit Gateway attachment ({kind})"),
        "vpc",
        &format!("tgw-attachment:{kind}:hour"),
        Decimal::ONE,
    )?];
    if kind == "vpc" {
        out.push(ctx.usage_based(
            "Data processed by the transit gateway",
            "vpc",
            "tgw-attachment:vpc:gb",
            "monthly_data_processed_gb",
            Decimal::ONE,
        )?);
    }
    Ok(Outcome::Components(out))
}

/// `aws_vpn_connection`: the Site-to-Site VPN connection-hour; on a transit gateway, also
/// its VPN attachment and data processed (usage `monthly_data_processed_gb`).
pub(crate) fn vpn_connection(ctx: &PricerInput<'_, '_>) -> Priced {
    let a = ctx.attrs();
    let mut out = vec![ctx.hourly(
        "Site-to-Site VPN connection",
        "vpc",
        "vpn-connection:hour",
        Decimal::ONE,
    )?];
    let on_tgw = match a.str("transit_gateway_id") {
        Ok(v) => v.is_some_and(|id| !id.is_empty()),
        Err(_) => true,
    };
    if on_tgw {
        out.push(ctx.hourly(
            "Transit Gateway attachment (VPN)",
            "vpc",
            "tgw-attachment:vpn:hour",
            Decimal::ONE,
        )?);
        out.push(ctx.usage_based(
            "Data processed by the transit gateway",
            "vpc",
            "tgw-attachment:vpn:gb",
            "monthly_data_processed_gb",
            Decimal::ONE,
        )?);
    }
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
    fn alb_default_type_and_lcu_usage() {
        // us-east-1 ALB $0.0225/h → 16.425; LCU $0.008 per LCU-hour.
        let c = components(price_after("aws_lb", json!({"name": "x"})));
        assert_eq!(find(&c, "Application").monthly_cost, d("16.425"));
        let lcu = find(&c, "LCU");
        assert!(lcu.usage_based);
        assert_eq!(lcu.monthly_cost, d("0"));
        let usage = Usage::none().with_type_default("aws_lb", "average_capacity_units", d("2"));
        let c = components(price_after_in("aws_lb", json!({}), "us-east-1", &usage));
        // 2 × 730 × 0.008 = 11.68.
        assert_eq!(find(&c, "LCU").monthly_cost, d("11.68"));
    }

    #[test]
    fn nlb_and_gwlb() {
        // us-east-1 NLB $0.0225/h → 16.425; NLCU $0.006 per NLCU-hour.
        let c = components(price_after(
            "aws_lb",
            json!({"load_balancer_type": "network"}),
        ));
        assert_eq!(total(&c), d("16.425"));
        assert_eq!(find(&c, "NLCU").unit_price, d("0.006"));
        // us-east-1 GWLB $0.0125/h → 9.125; GLCU $0.004 per GLCU-hour (AWS Pricing
        // Calculator elb.json, rate codes 4XCKHVEY2F7FVHE3 / EBFBY6XVZMVA2MJP).
        let c = components(price_after(
            "aws_lb",
            json!({"load_balancer_type": "gateway"}),
        ));
        assert_eq!(total(&c), d("9.125"));
        assert_eq!(find(&c, "GLCU").unit_price, d("0.004"));
    }

    #[test]
    fn nat_gateway_hours_and_data() {
        // us-east-1 $0.045/h → 32.85; $0.045/GB × 100 = 4.50.
        let usage = Usage::none().with_type_default(
            "aws_nat_gateway",
            "monthly_data_processed_gb",
            d("100"),
        );
        let c = components(price_after_in(
            "aws_nat_gateway",
            json!({}),
            "us-east-1",
            &usage,
        ));
        assert_eq!(find(&c, "NAT gateway").monthly_cost, d("32.85"));
        let data = find(&c, "Data processed");
        assert!(data.usage_based);
        assert_eq!(data.monthly_cost, d("4.5"));
    }

    #[test]
    fn eip_public_ipv4() {
        // $0.005 per public IPv4 address-hour → 3.65.
        assert_eq!(
            total(&components(price_after(
                "aws_eip",
                json!({"domain": "vpc"})
            ))),
            d("3.65")
        );
    }

    #[test]
    fn vpc_endpoints() {
        assert_eq!(
            price_after("aws_vpc_endpoint", json!({})).unwrap(),
            Outcome::Free
        );
        // us-east-1 interface endpoint $0.01 per AZ-hour × 2 AZ × 730 = 14.60.
        let c = components(price_after(
            "aws_vpc_endpoint",
            json!({"vpc_endpoint_type": "Interface", "subnet_ids": ["a", "b"]}),
        ));
        assert_eq!(total(&c), d("14.6"));
        // Subnet IDs unknown but their number known.
        let p = plan(
            "aws_vpc_endpoint",
            json!({"vpc_endpoint_type": "Interface", "subnet_ids": []}),
            json!({"subnet_ids": [true, true, true]}),
            json!({"vpc_endpoint_type": {"constant_value": "Interface"}, "subnet_ids": {"references": ["aws_subnet.a"]}}),
        );
        assert_eq!(
            total(&components(price_plan(&p, "us-east-1", &Usage::none()))),
            d("21.9")
        );
        let p = plan(
            "aws_vpc_endpoint",
            json!({"vpc_endpoint_type": "Interface"}),
            json!({"subnet_ids": true}),
            json!({"vpc_endpoint_type": {"constant_value": "Interface"}, "subnet_ids": {"references": ["var.s"]}}),
        );
        assert_eq!(
            price_plan(&p, "us-east-1", &Usage::none()).unwrap_err(),
            "subnet_ids is unknown until apply"
        );
    }

    #[test]
    fn cloudfront_and_route53() {
        // CloudFront US/Europe $0.085/GB first 10 TB; HTTPS $0.01 per 10k requests.
        let usage = Usage::none()
            .with_type_default(
                "aws_cloudfront_distribution",
                "monthly_data_transfer_out_gb",
                d("1000"),
            )
            .with_type_default(
                "aws_cloudfront_distribution",
                "monthly_https_requests",
                d("1000000"),
            );
        let c = components(price_after_in(
            "aws_cloudfront_distribution",
            json!({}),
            "eu-west-1",
            &usage,
        ));
        assert_eq!(total(&c), d("86"));
        // Route 53 hosted zone $0.50/month, any region.
        let c = components(price_after_in(
            "aws_route53_zone",
            json!({"name": "x"}),
            "ap-southeast-1",
            &Usage::none(),
        ));
        assert_eq!(total(&c), d("0.5"));
    }

    #[test]
    fn transit_gateway_attachments_and_vpn() {
        // us-east-1 TGW VPC attachment $0.05/h × 730 = 36.50; 1,000 GB × $0.02 = 20.
        let usage = Usage::none().with_type_default(
            "aws_ec2_transit_gateway_vpc_attachment",
            "monthly_data_processed_gb",
            d("1000"),
        );
        let c = components(price_after_in(
            "aws_ec2_transit_gateway_vpc_attachment",
            json!({"transit_gateway_id": "tgw-1", "vpc_id": "vpc-1"}),
            "us-east-1",
            &usage,
        ));
        assert_eq!(total(&c), d("56.5"));
        // VPN $0.05/h × 730 = 36.50; on a transit gateway + attachment 36.50.
        let c = components(price_after(
            "aws_vpn_connection",
            json!({"type": "ipsec.1"}),
        ));
        assert_eq!(total(&c), d("36.5"));
        let c = components(price_after(
            "aws_vpn_connection",
            json!({"type": "ipsec.1", "transit_gateway_id": "tgw-1"}),
        ));
        assert_eq!(total(&c), d("73"));
    }
}

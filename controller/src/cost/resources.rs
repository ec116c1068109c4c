//! Pricers: one function per priced resource type, reading plan attributes and the
//! price book and returning components, "free", or a reason it cannot be priced.

mod analytics;
mod aurora;
mod compute;
mod containers;
mod database;
mod edge;
mod free;
mod kubernetes;
mod network;
mod observability;
mod search;
mod serverless;
mod storage;
mod streaming;

use rust_decimal::Decimal;

use super::estimate::{Component, HOURS_PER_MONTH};
use super::plan_view::{Attrs, Change, PlanView, Unknown};
use super::pricebook::{PriceBook, PriceRow};
use super::usage::Usage;

pub(crate) use free::{is_free, unsupported_reason};

/// The assumption behind every hourly component.
pub(crate) const ALWAYS_ON: &str = "runs 730 hours a month (always on)";

/// Which side of a change is priced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Before,
    After,
}

/// A pricer's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Costs nothing by itself.
    Free,
    /// Priced components (may be empty, e.g. an ECS service on EC2 capacity).
    Components(Vec<Component>),
}

/// `Err(reason)` is "cannot price this resource".
pub(crate) type Priced = Result<Outcome, String>;

/// Everything a pricer may look at.
pub(crate) struct PricerInput<'c, 'a> {
    pub book: &'c PriceBook,
    pub region: &'c str,
    pub usage: &'c Usage,
    pub plan: &'c PlanView<'a>,
    pub change: &'c Change<'a>,
    pub side: Side,
}

impl<'c, 'a> PricerInput<'c, 'a> {
    pub fn attrs(&self) -> Attrs<'a> {
        match self.side {
            Side::After => self.change.after_attrs(),
            Side::Before => self.change.before_attrs(),
        }
    }

    /// The same input, priced in `region` (a DynamoDB replica's).
    pub fn in_region<'r>(&'r self, region: &'r str) -> PricerInput<'r, 'a> {
        PricerInput {
            book: self.book,
            region,
            usage: self.usage,
            plan: self.plan,
            change: self.change,
            side: self.side,
        }
    }

    pub fn unknown(attr: &str) -> String {
        format!("{attr} is unknown until apply")
    }

    pub fn price(&self, service: &str, key: &str) -> Result<&'c PriceRow, String> {
        self.book
            .get(service, self.region, key)
            .ok_or_else(|| format!("no price for {service} {key} in {}", self.region))
    }

    /// A component of `quantity` units at the price of `service`/`key`.
    pub fn fixed(
        &self,
        name: impl Into<String>,
        service: &str,
        key: &str,
        quantity: Decimal,
    ) -> Result<Component, String> {
        let row = self.price(service, key)?;
        Ok(Component::from_row(name, row, quantity, false))
    }

    /// A component running `count` times all month (730 hours each).
    pub fn hourly(
        &self,
        name: impl Into<String>,
        service: &str,
        key: &str,
        count: Decimal,
    ) -> Result<Component, String> {
        Ok(self
            .fixed(name, service, key, count * HOURS_PER_MONTH)?
            .assuming(ALWAYS_ON))
    }

    /// A usage-based component: quantity = usage value / `divisor` (0 without usage).
    pub fn usage_based(
        &self,
        name: impl Into<String>,
        service: &str,
        key: &str,
        usage_key: &str,
        divisor: Decimal,
    ) -> Result<Component, String> {
        let raw = self.usage_value(usage_key).unwrap_or(Decimal::ZERO);
        let row = self.price(service, key)?;
        let quantity = if divisor.is_zero() {
            raw
        } else {
            raw / divisor
        };
        Ok(Component::from_row(name, row, quantity, true)
            .assuming(self.usage_assumption(usage_key)))
    }

    /// The assumption a usage-based quantity rests on: the usage file's value, or none.
    pub fn usage_assumption(&self, usage_key: &str) -> String {
        match self.usage_value(usage_key) {
            Some(v) => format!("usage file: {usage_key} = {}", v.normalize()),
            None => format!("usage file gives no {usage_key}: 0"),
        }
    }

    pub fn usage_value(&self, usage_key: &str) -> Option<Decimal> {
        self.usage
            .get(self.change.address, self.change.resource_type, usage_key)
    }

    /// Whether an unknown after-value of `attr` is only a provider-computed default
    /// (the configuration does not set it), so the documented default applies.
    fn computed_default(&self, attr: &str) -> bool {
        self.side == Side::After && self.plan.configured(self.change, attr) == Some(false)
    }

    fn computed_default_nested(&self, block: &str, attr: &str) -> bool {
        self.side == Side::After
            && self.plan.configured_nested(self.change, block, attr) == Some(false)
    }

    /// A required string: unknown or unset → cannot price.
    pub fn req_str(&self, attrs: &Attrs<'a>, key: &str) -> Result<&'a str, String> {
        match attrs.str(key) {
            Ok(Some(v)) => Ok(v),
            Ok(None) => Err(format!("{key} is not set")),
            Err(Unknown) => Err(Self::unknown(key)),
        }
    }

    /// An optional string: unset (or unknown but not configured) → `None`, so the
    /// caller applies AWS's default.
    pub fn opt_str(&self, attrs: &Attrs<'a>, key: &str) -> Result<Option<&'a str>, String> {
        match attrs.str(key) {
            Ok(v) => Ok(v),
            Err(Unknown) if self.computed_default(key) => Ok(None),
            Err(Unknown) => Err(Self::unknown(key)),
        }
    }

    pub fn opt_number(&self, attrs: &Attrs<'a>, key: &str) -> Result<Option<Decimal>, String> {
        match attrs.number(key) {
            Ok(v) => Ok(v),
            Err(Unknown) if self.computed_default(key) => Ok(None),
            Err(Unknown) => Err(Self::unknown(key)),
        }
    }

    pub fn opt_bool(&self, attrs: &Attrs<'a>, key: &str) -> Result<Option<bool>, String> {
        match attrs.bool(key) {
            Ok(v) => Ok(v),
            Err(Unknown) if self.computed_default(key) => Ok(None),
            Err(Unknown) => Err(Self::unknown(key)),
        }
    }

    /// Nested-block variants: `block` is the block name for the configured check and
    /// the reason text.
    pub fn nested_str(
        &self,
        attrs: &Attrs<'a>,
        block: &str,
        key: &str,
    ) -> Result<Option<&'a str>, String> {
        self.nested(attrs.str(key), block, key)
    }

    pub fn nested_number(
        &self,
        attrs: &Attrs<'a>,
        block: &str,
        key: &str,
    ) -> Result<Option<Decimal>, String> {
        self.nested(attrs.number(key), block, key)
    }

    pub fn nested_bool(
        &self,
        attrs: &Attrs<'a>,
        block: &str,
        key: &str,
    ) -> Result<Option<bool>, String> {
        self.nested(attrs.bool(key), block, key)
    }

    /// A nested value read from `block`: unknown but not configured → `None` (AWS's
    /// default applies).
    fn nested<T>(
        &self,
        value: Result<Option<T>, Unknown>,
        block: &str,
        key: &str,
    ) -> Result<Option<T>, String> {
        match value {
            Ok(v) => Ok(v),
            Err(Unknown) if self.computed_default_nested(block, key) => Ok(None),
            Err(Unknown) => Err(Self::unknown(&format!("{block}.{key}"))),
        }
    }

    /// The resource of `resource_type` that configuration `references` point at (in this
    /// resource's module): an explicit index, the resource without index, this
    /// resource's own index (`count`/`for_each` in step), else its first instance.
    pub fn referenced(&self, references: &[&str], resource_type: &str) -> Option<&'c Change<'a>> {
        let plan = self.plan;
        let prefix = self
            .change
            .module_address
            .filter(|m| !m.is_empty())
            .map(|m| format!("{m}."))
            .unwrap_or_default();
        let own_index = self
            .change
            .address
            .rfind('[')
            .filter(|_| self.change.address.ends_with(']'))
            .map(|i| &self.change.address[i..]);
        for reference in references {
            let Some(rest) = reference
                .strip_prefix(resource_type)
                .and_then(|r| r.strip_prefix('.'))
            else {
                continue;
            };
            let name_end = rest.find(['.', '[']).unwrap_or(rest.len());
            let base = format!("{prefix}{resource_type}.{}", &rest[..name_end]);
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
            if let Some(found) = candidates.iter().find_map(|c| plan.change(c)) {
                return Some(found);
            }
            if let Some(found) = plan
                .changes
                .iter()
                .find(|c| c.address.starts_with(&format!("{base}[")))
            {
                return Some(found);
            }
        }
        None
    }

    /// The values of `change` on the side being priced.
    pub fn side_of(&self, change: &Change<'a>) -> Attrs<'a> {
        match self.side {
            Side::After => change.after_attrs(),
            Side::Before => change.before_attrs(),
        }
    }

    /// A nested block list; an unknown block that the configuration does not set is
    /// treated as absent (the provider computes it from defaults).
    pub fn blocks(&self, attrs: &Attrs<'a>, key: &str) -> Result<Option<Vec<Attrs<'a>>>, String> {
        match attrs.blocks(key) {
            Ok(b) => Ok(Some(b)),
            Err(Unknown) if self.computed_default(key) => Ok(None),
            Err(Unknown) => Err(Self::unknown(key)),
        }
    }
}

/// Prices one side of one resource. `None` when the type is neither priced nor free.
pub(crate) fn price(ctx: &PricerInput<'_, '_>) -> Option<Priced> {
    let priced = match ctx.change.resource_type {
        "aws_instance" => compute::instance(ctx),
        "aws_autoscaling_group" => compute::autoscaling_group(ctx),
        "aws_ebs_volume" => storage::ebs_volume(ctx),
        "aws_db_instance" => database::db_instance(ctx),
        "aws_rds_cluster" => aurora::rds_cluster(ctx),
        "aws_rds_cluster_instance" => aurora::rds_cluster_instance(ctx),
        "aws_elasticache_cluster" => database::elasticache_cluster(ctx),
        "aws_elasticache_replication_group" => database::elasticache_replication_group(ctx),
        "aws_dynamodb_table" => database::dynamodb_table(ctx),
        "aws_lb" | "aws_alb" => network::load_balancer(ctx),
        "aws_nat_gateway" => network::nat_gateway(ctx),
        "aws_eip" => network::eip(ctx),
        "aws_vpc_endpoint" => network::vpc_endpoint(ctx),
        "aws_cloudfront_distribution" => network::cloudfront_distribution(ctx),
        "aws_route53_zone" => network::route53_zone(ctx),
        "aws_ecs_service" => containers::ecs_service(ctx),
        "aws_eks_cluster" => kubernetes::eks_cluster(ctx),
        "aws_eks_node_group" => kubernetes::eks_node_group(ctx),
        "aws_lambda_function" => serverless::lambda_function(ctx),
        "aws_s3_bucket" => storage::s3_bucket(ctx),
        "aws_cloudwatch_log_group" => serverless::cloudwatch_log_group(ctx),
        "aws_secretsmanager_secret" => serverless::secretsmanager_secret(ctx),
        "aws_kms_key" => serverless::kms_key(ctx),
        "aws_cloudwatch_metric_alarm" => observability::cloudwatch_metric_alarm(ctx),
        "aws_cloudwatch_composite_alarm" => observability::cloudwatch_composite_alarm(ctx),
        "aws_cloudwatch_dashboard" => observability::cloudwatch_dashboard(ctx),
        "aws_efs_file_system" => storage::efs_file_system(ctx),
        "aws_ecr_repository" => storage::ecr_repository(ctx),
        "aws_sns_topic" => streaming::sns_topic(ctx),
        "aws_sns_topic_subscription" => streaming::sns_topic_subscription(ctx),
        "aws_kinesis_stream" => streaming::kinesis_stream(ctx),
        "aws_msk_cluster" => streaming::msk_cluster(ctx),
        "aws_msk_serverless_cluster" => streaming::msk_serverless_cluster(ctx),
        "aws_ec2_transit_gateway_vpc_attachment" => network::transit_gateway_attachment(ctx, "vpc"),
        "aws_ec2_transit_gateway_peering_attachment" => {
            network::transit_gateway_attachment(ctx, "peering")
        }
        "aws_ec2_transit_gateway_connect" => network::transit_gateway_attachment(ctx, "connect"),
        "aws_vpn_connection" => network::vpn_connection(ctx),
        "aws_api_gateway_rest_api" => edge::api_gateway_rest_api(ctx),
        "aws_api_gateway_stage" => edge::api_gateway_stage(ctx),
        "aws_apigatewayv2_api" => edge::apigatewayv2_api(ctx),
        "aws_wafv2_web_acl" => edge::wafv2_web_acl(ctx),
        "aws_docdb_cluster" => analytics::docdb_cluster(ctx),
        "aws_docdb_cluster_instance" => analytics::docdb_cluster_instance(ctx),
        "aws_redshift_cluster" => analytics::redshift_cluster(ctx),
        "aws_redshiftserverless_workgroup" => analytics::redshiftserverless_workgroup(ctx),
        "aws_opensearch_domain" | "aws_elasticsearch_domain" => search::opensearch_domain(ctx),
        "aws_mq_broker" => streaming::mq_broker(ctx),
        "aws_backup_vault" => storage::backup_vault(ctx),
        _ => return None,
    };
    Some(priced)
}

/// The usage keys each priced type reads (see docs/cost.md).
pub(crate) fn usage_keys(resource_type: &str) -> &'static [&'static str] {
    match resource_type {
        "aws_instance" => &["monthly_standard_io_requests"],
        "aws_ebs_volume" => &["monthly_standard_io_requests"],
        "aws_rds_cluster" | "aws_docdb_cluster" => &["storage_gb", "monthly_io_requests"],
        "aws_redshiftserverless_workgroup" => &["monthly_rpu_hours"],
        "aws_rds_cluster_instance" => &["average_acu"],
        "aws_lb" | "aws_alb" => &["average_capacity_units"],
        "aws_nat_gateway" => &["monthly_data_processed_gb"],
        "aws_vpc_endpoint" => &["monthly_data_processed_gb"],
        "aws_cloudwatch_log_group" => &["monthly_data_ingested_gb", "storage_gb"],
        "aws_s3_bucket" => &["storage_gb", "monthly_put_requests", "monthly_get_requests"],
        "aws_cloudfront_distribution" => {
            &["monthly_data_transfer_out_gb", "monthly_https_requests"]
        }
        "aws_lambda_function" => &["monthly_requests", "request_duration_ms"],
        "aws_dynamodb_table" => &[
            "monthly_write_request_units",
            "monthly_read_request_units",
            "storage_gb",
        ],
        "aws_secretsmanager_secret" => &["monthly_requests"],
        "aws_kms_key" => &["monthly_requests"],
        "aws_efs_file_system" => &["storage_gb", "infrequent_access_storage_gb"],
        "aws_ecr_repository" | "aws_mq_broker" => &["storage_gb"],
        "aws_backup_vault" => &[
            "storage_gb",
            "cold_storage_gb",
            "dynamodb_storage_gb",
            "dynamodb_cold_storage_gb",
            "s3_storage_gb",
        ],
        "aws_sns_topic" => &["monthly_requests"],
        "aws_sns_topic_subscription" => &["monthly_notifications"],
        "aws_kinesis_stream" => &["monthly_put_payload_units", "monthly_data_ingested_gb"],
        "aws_msk_serverless_cluster" => &["partitions"],
        "aws_ec2_transit_gateway_vpc_attachment" | "aws_vpn_connection" => {
            &["monthly_data_processed_gb"]
        }
        "aws_api_gateway_rest_api" | "aws_wafv2_web_acl" => &["monthly_requests"],
        "aws_apigatewayv2_api" => &[
            "monthly_requests",
            "monthly_messages",
            "monthly_connection_minutes",
        ],
        _ => &[],
    }
}

#[cfg(test)]
pub(crate) mod test_support;

//! SNS topics and subscriptions, Kinesis data streams, MSK clusters, Amazon MQ brokers.

use rust_decimal::Decimal;

use super::{ALWAYS_ON, Outcome, Priced, PricerInput};
use crate::cost::estimate::{Component, HOURS_PER_MONTH};

const MILLION: Decimal = Decimal::from_parts(1_000_000, 0, 0, false, 0);
/// Kinesis keeps records 24 hours at the base price; up to 7 days is extended retention.
const BASE_RETENTION_HOURS: Decimal = Decimal::from_parts(24, 0, 0, false, 0);
const EXTENDED_RETENTION_HOURS: Decimal = Decimal::from_parts(168, 0, 0, false, 0);

/// `aws_sns_topic`: usage-based API requests (usage `monthly_requests`). FIFO topics
/// are billed on other dimensions and are not priced.
pub(crate) fn sns_topic(ctx: &PricerInput<'_, '_>) -> Priced {
    let a = ctx.attrs();
    if ctx.opt_bool(&a, "fifo_topic")? == Some(true) {
        return Err("fifo_topic: FIFO topics are not priced".into());
    }
    Ok(Outcome::Components(vec![ctx.usage_based(
        "API requests (publishes)",
        "sns",
        "requests",
        "monthly_requests",
        MILLION,
    )?]))
}

/// `aws_sns_topic_subscription`: deliveries to HTTP(S) and email endpoints are billed
/// per notification (usage `monthly_notifications`); to SQS and Lambda they are free.
pub(crate) fn sns_topic_subscription(ctx: &PricerInput<'_, '_>) -> Priced {
    let a = ctx.attrs();
    let (key, label) = match ctx.req_str(&a, "protocol")? {
        "sqs" | "lambda" => return Ok(Outcome::Free),
        "http" | "https" => ("notifications:http", "HTTP(S) notifications"),
        "email" | "email-json" => ("notifications:email", "Email notifications"),
        other => return Err(format!("protocol `{other}` is not priced")),
    };
    Ok(Outcome::Components(vec![ctx.usage_based(
        label,
        "sns",
        key,
        "monthly_notifications",
        MILLION,
    )?]))
}

/// `aws_kinesis_stream`: provisioned mode bills shard-hours (and extended retention up
/// to 7 days) plus PUT payload units (usage `monthly_put_payload_units`); on-demand mode
/// bills the stream-hour plus data ingested (usage `monthly_data_ingested_gb`).
pub(crate) fn kinesis_stream(ctx: &PricerInput<'_, '_>) -> Priced {
    let a = ctx.attrs();
    let mode = match ctx.blocks(&a, "stream_mode_details")? {
        Some(blocks) => match blocks.first().map(|b| b.str("stream_mode")) {
            Some(Ok(Some(m))) => m,
            Some(Err(_)) => return Err(PricerInput::unknown("stream_mode_details.stream_mode")),
            _ => "PROVISIONED",
        },
        None => "PROVISIONED",
    };
    if mode == "ON_DEMAND" {
        return Ok(Outcome::Components(vec![
            ctx.hourly(
                "On-demand stream",
                "kinesis",
                "on-demand:stream-hour",
                Decimal::ONE,
            )?,
            ctx.usage_based(
                "Data ingested (on-demand)",
                "kinesis",
                "on-demand:ingested",
                "monthly_data_ingested_gb",
                Decimal::ONE,
            )?,
        ]));
    }
    if mode != "PROVISIONED" {
        return Err(format!("stream_mode `{mode}` is not a Kinesis stream mode"));
    }
    let shards = match ctx.opt_number(&a, "shard_count")? {
        Some(n) => n,
        None => return Err("shard_count is not set (required in provisioned mode)".into()),
    };
    let mut out = vec![ctx.hourly(
        format!("Shards ({})", shards.normalize()),
        "kinesis",
        "shard:hour",
        shards,
    )?];
    let retention = ctx
        .opt_number(&a, "retention_period")?
        .unwrap_or(BASE_RETENTION_HOURS);
    if retention > BASE_RETENTION_HOURS {
        let mut c = ctx.hourly(
            format!("Extended retention ({} hours)", retention.normalize()),
            "kinesis",
            "shard:extended-retention",
            shards,
        )?;
        if retention > EXTENDED_RETENTION_HOURS {
            c = c.assuming(
                "long-term retention beyond 7 days is billed per GB stored, which is not priced",
            );
        }
        out.push(c);
    }
    out.push(ctx.usage_based(
        "PUT payload units",
        "kinesis",
        "put-payload-units",
        "monthly_put_payload_units",
        MILLION,
    )?);
    Ok(Outcome::Components(out))
}

/// `aws_msk_cluster`: `number_of_broker_nodes` brokers of the group's `instance_type`,
/// each with its EBS volume (`storage_info.ebs_storage_info.volume_size`). Express
/// brokers have no volume; their storage is billed per GB stored, which is not priced.
pub(crate) fn msk_cluster(ctx: &PricerInput<'_, '_>) -> Priced {
    let a = ctx.attrs();
    let brokers = match ctx.opt_number(&a, "number_of_broker_nodes")? {
        Some(n) => n,
        None => return Err("number_of_broker_nodes is not set".into()),
    };
    let group = ctx
        .blocks(&a, "broker_node_group_info")?
        .and_then(|b| b.into_iter().next())
        .ok_or("broker_node_group_info is not set")?;
    let instance_type = match group.str("instance_type") {
        Ok(Some(t)) => t,
        Ok(None) => return Err("broker_node_group_info.instance_type is not set".into()),
        Err(_) => return Err(PricerInput::unknown("broker_node_group_info.instance_type")),
    };
    let count = brokers.normalize();
    let brokers_component = ctx.hourly(
        format!("Brokers ({instance_type} × {count})"),
        "msk",
        &format!("broker:{instance_type}"),
        brokers,
    )?;
    if instance_type.starts_with("express.") {
        return Ok(Outcome::Components(vec![brokers_component.assuming(
            "Express brokers' storage is billed per GB stored, which is not priced",
        )]));
    }
    let mut out = vec![brokers_component];
    let volume = group
        .blocks("storage_info")
        .ok()
        .and_then(|s| s.into_iter().next())
        .and_then(|s| s.blocks("ebs_storage_info").ok())
        .and_then(|e| e.into_iter().next())
        .map(|e| e.number("volume_size"));
    let size = match volume {
        Some(Ok(Some(gb))) => gb,
        Some(Err(_)) => {
            return Err(PricerInput::unknown(
                "broker_node_group_info.storage_info.ebs_storage_info.volume_size",
            ));
        }
        // The provider's default broker volume.
        _ => Decimal::from(1000),
    };
    out.push(ctx.fixed(
        format!("Broker storage ({} GB × {count})", size.normalize()),
        "msk",
        "storage",
        size * brokers,
    )?);
    Ok(Outcome::Components(out))
}

/// `aws_msk_serverless_cluster`: the cluster-hour plus partition-hours (usage
/// `partitions`, the average number of partitions).
pub(crate) fn msk_serverless_cluster(ctx: &PricerInput<'_, '_>) -> Priced {
    let partitions = ctx.usage_value("partitions").unwrap_or(Decimal::ZERO);
    let row = ctx.price("msk", "serverless:partition-hour")?;
    Ok(Outcome::Components(vec![
        ctx.hourly(
            "Serverless cluster",
            "msk",
            "serverless:cluster-hour",
            Decimal::ONE,
        )?,
        Component::from_row("Partitions", row, partitions * HOURS_PER_MONTH, true)
            .assuming(ctx.usage_assumption("partitions"))
            .assuming(ALWAYS_ON),
    ]))
}

/// `aws_mq_broker`: the deployment's hours (`host_instance_type` in `deployment_mode`,
/// one price for a whole active/standby pair or three-node cluster) and message storage
/// from the usage file (`storage_gb`; EFS for ActiveMQ by default, EBS for RabbitMQ and
/// `storage_type = "ebs"`).
pub(crate) fn mq_broker(ctx: &PricerInput<'_, '_>) -> Priced {
    let a = ctx.attrs();
    let engine = ctx.req_str(&a, "engine_type")?;
    let instance_type = ctx.req_str(&a, "host_instance_type")?;
    let mode = ctx
        .opt_str(&a, "deployment_mode")?
        .unwrap_or("SINGLE_INSTANCE");
    let (deployment, default_storage) = match (engine.to_ascii_lowercase().as_str(), mode) {
        ("activemq", "SINGLE_INSTANCE") => ("activemq:single-instance", "efs"),
        ("activemq", "ACTIVE_STANDBY_MULTI_AZ") => ("activemq:active-standby-multi-az", "efs"),
        ("rabbitmq", "SINGLE_INSTANCE") => ("rabbitmq:single-instance", "ebs"),
        ("rabbitmq", "CLUSTER_MULTI_AZ") => ("rabbitmq:cluster-multi-az", "ebs"),
        _ => {
            return Err(format!(
                "deployment_mode `{mode}` with engine_type `{engine}` is not a deployment Amazon MQ offers"
            ));
        }
    };
    let configured_storage = ctx.opt_str(&a, "storage_type")?;
    let storage = configured_storage
        .unwrap_or(default_storage)
        .to_ascii_lowercase();
    let mut broker = ctx.hourly(
        format!("Broker ({instance_type}, {mode})"),
        "mq",
        &format!("broker:{deployment}:{instance_type}"),
        Decimal::ONE,
    )?;
    if mode != "SINGLE_INSTANCE" {
        broker = broker.assuming("AWS prices the whole deployment per hour (every broker of it)");
    }
    let mut stored = ctx.usage_based(
        format!("Message storage ({storage})"),
        "mq",
        &format!("storage:{storage}"),
        "storage_gb",
        Decimal::ONE,
    )?;
    if configured_storage.is_none() {
        stored = stored.assuming(format!(
            "storage_type is left to AWS: {storage} (the default for {engine})"
        ));
    }
    Ok(Outcome::Components(vec![broker, stored]))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use serde_json::json;

    use super::super::Outcome;
    use super::super::test_support::*;
    use crate::cost::usage::Usage;

    #[test]
    fn sns_requests_and_subscriptions() {
        // 10M publishes × $0.50 per 1M = 5.00; 2M HTTP notifications × $0.60 per 1M = 1.20.
        let usage = Usage::from_yaml_str(
            "resource_type_default_usage:\n  aws_sns_topic:\n    monthly_requests: 10000000\n  aws_sns_topic_subscription:\n    monthly_notifications: 2000000\n",
        )
        .unwrap();
        let c = components(price_after_in(
            "aws_sns_topic",
            json!({"name": "t"}),
            "us-east-1",
            &usage,
        ));
        assert_eq!(total(&c), d("5"));
        let c = components(price_after_in(
            "aws_sns_topic_subscription",
            json!({"protocol": "https"}),
            "us-east-1",
            &usage,
        ));
        assert_eq!(total(&c), d("1.2"));
        assert_eq!(
            price_after("aws_sns_topic_subscription", json!({"protocol": "sqs"})).unwrap(),
            Outcome::Free
        );
        assert!(price_after("aws_sns_topic", json!({"fifo_topic": true})).is_err());
    }

    #[test]
    fn kinesis_provisioned_and_on_demand() {
        // 4 shards × $0.015 × 730 = 43.80; 48 h retention: 4 × $0.02 × 730 = 58.40.
        let c = components(price_after(
            "aws_kinesis_stream",
            json!({"shard_count": 4, "retention_period": 48}),
        ));
        assert_eq!(find(&c, "Shards").monthly_cost, d("43.8"));
        assert_eq!(find(&c, "Extended retention").monthly_cost, d("58.4"));
        assert_eq!(total(&c), d("102.2"));
        // On-demand: $0.04 × 730 = 29.20 plus ingested GB (usage).
        let c = components(price_after(
            "aws_kinesis_stream",
            json!({"stream_mode_details": [{"stream_mode": "ON_DEMAND"}]}),
        ));
        assert_eq!(total(&c), d("29.2"));
        assert!(find(&c, "Data ingested").usage_based);
    }

    #[test]
    fn msk_brokers_and_storage() {
        // kafka.m5.large $0.21/h × 3 × 730 = 459.90; 100 GB × 3 × $0.10 = 30.
        let c = components(price_after(
            "aws_msk_cluster",
            json!({"number_of_broker_nodes": 3, "broker_node_group_info": [{
                "instance_type": "kafka.m5.large",
                "storage_info": [{"ebs_storage_info": [{"volume_size": 100}]}]}]}),
        ));
        assert_eq!(find(&c, "Brokers").monthly_cost, d("459.9"));
        assert_eq!(find(&c, "Broker storage").monthly_cost, d("30"));
        // Serverless: $0.75 × 730 = 547.50 plus partition-hours.
        let c = components(price_after("aws_msk_serverless_cluster", json!({})));
        assert_eq!(total(&c), d("547.5"));
    }

    #[test]
    fn mq_brokers_by_engine_and_deployment_mode() {
        // us-east-1 (processed/mq.json, 2025-11-18): ActiveMQ mq.m5.large single
        // $0.288/h × 730 = 210.24, + 20 GB EFS × $0.30 = 6; active/standby $0.576/h × 730
        // = 420.48; RabbitMQ mq.m5.large cluster $0.864/h × 730 = 630.72, + 20 GB EBS ×
        // $0.10 = 2.
        let usage = Usage::none().with_type_default("aws_mq_broker", "storage_gb", d("20"));
        let broker = |engine: &str, mode: &str| {
            components(price_after_in(
                "aws_mq_broker",
                json!({"broker_name": "b", "engine_type": engine, "host_instance_type": "mq.m5.large", "deployment_mode": mode}),
                "us-east-1",
                &usage,
            ))
        };
        assert_eq!(total(&broker("ActiveMQ", "SINGLE_INSTANCE")), d("216.24"));
        assert_eq!(
            total(&broker("ActiveMQ", "ACTIVE_STANDBY_MULTI_AZ")),
            d("426.48")
        );
        let c = broker("RabbitMQ", "CLUSTER_MULTI_AZ");
        assert_eq!(total(&c), d("632.72"));
        assert!(c[1].name.contains("ebs"));
        assert!(
            c[1].assumptions
                .iter()
                .any(|a| a.contains("storage_gb = 20"))
        );
        // No usage: storage is 0 and says why.
        let c = components(price_after(
            "aws_mq_broker",
            json!({"engine_type": "RabbitMQ", "host_instance_type": "mq.m7g.large"}),
        ));
        assert_eq!(total(&c), d("199.582"));
        assert!(c[1].usage_based);
        assert!(
            c[1].assumptions
                .iter()
                .any(|a| a.contains("gives no storage_gb"))
        );
        let err = price_after(
            "aws_mq_broker",
            json!({"engine_type": "RabbitMQ", "host_instance_type": "mq.m5.large", "deployment_mode": "ACTIVE_STANDBY_MULTI_AZ"}),
        )
        .unwrap_err();
        assert!(err.contains("not a deployment"), "{err}");
    }
}

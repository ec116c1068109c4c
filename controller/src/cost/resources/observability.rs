//! CloudWatch alarms and dashboards.

use rust_decimal::Decimal;

use super::{Outcome, Priced, PricerInput};

/// Alarms on a period shorter than this many seconds are high-resolution alarms.
const HIGH_RESOLUTION_BELOW: Decimal = Decimal::from_parts(60, 0, 0, false, 0);

/// `aws_cloudwatch_metric_alarm`: one alarm metric per month for a plain alarm, one per
/// metric a metric-math alarm reads (`metric_query` blocks with a `metric`), at the
/// high-resolution price when the period is under 60 seconds. Anomaly-detection alarms
/// bill three metrics per metric.
pub(crate) fn cloudwatch_metric_alarm(ctx: &PricerInput<'_, '_>) -> Priced {
    let a = ctx.attrs();
    let queries = ctx.blocks(&a, "metric_query")?.unwrap_or_default();
    let mut periods = vec![ctx.opt_number(&a, "period")?];
    let mut metrics = 0usize;
    let mut anomaly = false;
    for q in &queries {
        let metric = q
            .blocks("metric")
            .map_err(|_| PricerInput::unknown("metric_query.metric"))?;
        if let Some(m) = metric.first() {
            metrics += 1;
            periods.push(
                m.number("period")
                    .map_err(|_| PricerInput::unknown("metric_query.metric.period"))?,
            );
        }
        let expression = q
            .str("expression")
            .map_err(|_| PricerInput::unknown("metric_query.expression"))?;
        anomaly |= expression.is_some_and(|e| e.contains("ANOMALY_DETECTION_BAND"));
    }
    let metrics = if queries.is_empty() {
        1
    } else {
        metrics.max(1)
    };
    let per_metric = if anomaly { 3 } else { 1 };
    let high_resolution = periods
        .into_iter()
        .flatten()
        .any(|p| p < HIGH_RESOLUTION_BELOW);
    let (key, resolution) = if high_resolution {
        ("alarm:high-resolution", "high resolution")
    } else {
        ("alarm:standard", "standard resolution")
    };
    let mut c = ctx.fixed(
        format!("Alarm metrics ({resolution}, {metrics} metric(s))"),
        "cloudwatch",
        key,
        Decimal::from(metrics * per_metric),
    )?;
    if anomaly {
        c = c.assuming("anomaly detection bills 3 alarm metrics per metric");
    }
    Ok(Outcome::Components(vec![c]))
}

/// `aws_cloudwatch_composite_alarm`: a flat monthly price.
pub(crate) fn cloudwatch_composite_alarm(ctx: &PricerInput<'_, '_>) -> Priced {
    Ok(Outcome::Components(vec![ctx.fixed(
        "Composite alarm",
        "cloudwatch",
        "alarm:composite",
        Decimal::ONE,
    )?]))
}

/// `aws_cloudwatch_dashboard`: a flat monthly price (the same in every region).
pub(crate) fn cloudwatch_dashboard(ctx: &PricerInput<'_, '_>) -> Priced {
    Ok(Outcome::Components(vec![
        ctx.fixed("Dashboard", "cloudwatch", "dashboard", Decimal::ONE)?
            .assuming("the account's 3 free dashboards are not deducted (they are account-wide)"),
    ]))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use serde_json::json;

    use super::super::test_support::*;
    use crate::cost::usage::Usage;

    #[test]
    fn alarms_by_resolution_and_metric_count() {
        // us-east-1 Alarm Standard $0.10 per alarm metric-month.
        let c = components(price_after(
            "aws_cloudwatch_metric_alarm",
            json!({"alarm_name": "cpu", "metric_name": "CPUUtilization", "period": 300}),
        ));
        assert_eq!(total(&c), d("0.1"));
        // Alarm High Resolution $0.30 (period 10 s).
        let c = components(price_after(
            "aws_cloudwatch_metric_alarm",
            json!({"alarm_name": "cpu", "metric_name": "CPUUtilization", "period": 10}),
        ));
        assert_eq!(total(&c), d("0.3"));
        // Metric math over two metrics: 2 × $0.10.
        let c = components(price_after(
            "aws_cloudwatch_metric_alarm",
            json!({"alarm_name": "errors", "metric_query": [
                {"id": "e", "expression": "a/b", "metric": []},
                {"id": "a", "metric": [{"metric_name": "Errors", "period": 60}]},
                {"id": "b", "metric": [{"metric_name": "Requests", "period": 60}]}]}),
        ));
        assert_eq!(total(&c), d("0.2"));
        // Anomaly detection on one metric: 3 × $0.10.
        let c = components(price_after(
            "aws_cloudwatch_metric_alarm",
            json!({"alarm_name": "anomaly", "metric_query": [
                {"id": "ad", "expression": "ANOMALY_DETECTION_BAND(m, 2)", "metric": []},
                {"id": "m", "metric": [{"metric_name": "Latency", "period": 300}]}]}),
        ));
        assert_eq!(total(&c), d("0.3"));
    }

    #[test]
    fn composite_alarms_and_dashboards_are_flat() {
        // Alarm Composite $0.50; Dashboard Basic Dashboard $3.00 (regionless "Any" row).
        let c = components(price_after("aws_cloudwatch_composite_alarm", json!({})));
        assert_eq!(total(&c), d("0.5"));
        let c = components(price_after_in(
            "aws_cloudwatch_dashboard",
            json!({"dashboard_name": "ops"}),
            "ap-northeast-1",
            &Usage::none(),
        ));
        assert_eq!(total(&c), d("3"));
        assert_eq!(c[0].price.as_ref().unwrap().region, "global");
    }
}

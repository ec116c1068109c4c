//! The two AWS Cost Explorer requests of one check, with the Project's own credentials:
//! `GetCostAndUsage` (month to date) and `GetCostForecast` (rest of the month), both
//! filtered by the tags tollgate's rendered provider puts on every resource
//! (`tollgate.dev/project` and `tollgate.dev/namespace`, through `default_tags`). Those tags
//! must be activated as cost allocation tags in the payer account's Billing console, or
//! Cost Explorer knows nothing of them (docs/cost.md).

use aws_sdk_costexplorer::config::{Credentials, Region};
use aws_sdk_costexplorer::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_costexplorer::types::{
    DateInterval, Expression, Granularity, MatchOption, Metric, TagValues,
};
use jiff::civil::Date;
use rust_decimal::Decimal;

use crate::credentials::TemporaryCredentials;
use crate::render::TAG_PREFIX;
use crate::spend::{Spend, Window};

/// Cost Explorer has one endpoint, in us-east-1, whatever the Project's region.
pub const REGION: &str = "us-east-1";
/// The cost metric asked for: what the account pays before credits and discounts are
/// spread, the figure closest to the price book's on-demand prices.
const USAGE_METRIC: &str = "UnblendedCost";

/// What went wrong asking Cost Explorer. The messages name no secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExplorerError {
    /// Cost Explorer answered with an error (permission, throttling, validation).
    #[error(
        "Cost Explorer {operation}: {message}; the Project's AWS identity needs ce:GetCostAndUsage and ce:GetCostForecast, and Cost Explorer must be enabled for the account"
    )]
    Api {
        /// `GetCostAndUsage` or `GetCostForecast`.
        operation: &'static str,
        /// Its code and message, or the transport's error chain.
        message: String,
    },
    /// A request could not be built, or an amount is not a number.
    #[error("Cost Explorer {operation}: {message}; this is a bug in tollgate, please report it")]
    Invalid {
        /// The operation.
        operation: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// A Cost Explorer client acting as the Project (`credentials`), or as the controller
/// when the Project brings none.
pub fn client(
    config: &aws_config::SdkConfig,
    credentials: Option<&TemporaryCredentials>,
) -> aws_sdk_costexplorer::Client {
    let mut builder =
        aws_sdk_costexplorer::config::Builder::from(config).region(Region::new(REGION));
    if let Some(c) = credentials {
        builder = builder.credentials_provider(Credentials::new(
            &c.access_key_id,
            &c.secret_access_key,
            c.session_token.clone(),
            None,
            "tollgate-project",
        ));
    }
    aws_sdk_costexplorer::Client::from_conf(builder.build())
}

/// Month to date and the forecast of Project `namespace/name` over `window`.
pub async fn spend(
    client: &aws_sdk_costexplorer::Client,
    namespace: &str,
    name: &str,
    window: &Window,
) -> Result<Spend, ExplorerError> {
    let filter = project_filter(namespace, name);
    let month_to_date = match window.usage_period() {
        Some((start, end)) => month_to_date(client, &filter, start, end).await?,
        None => Decimal::ZERO,
    };
    let (start, end) = window.forecast_period();
    let forecast = forecast(client, &filter, start, end).await?;
    Ok(Spend {
        month_to_date,
        forecast,
    })
}

/// Resources carrying both of the Project's tags (a name alone is not unique: two
/// namespaces may each have a `web`).
fn project_filter(namespace: &str, name: &str) -> Expression {
    let tag = |key: &str, value: &str| {
        Expression::builder()
            .tags(
                TagValues::builder()
                    .key(format!("{TAG_PREFIX}/{key}"))
                    .values(value)
                    .match_options(MatchOption::Equals)
                    .build(),
            )
            .build()
    };
    Expression::builder()
        .and(tag("project", name))
        .and(tag("namespace", namespace))
        .build()
}

fn period(operation: &'static str, start: Date, end: Date) -> Result<DateInterval, ExplorerError> {
    DateInterval::builder()
        .start(start.to_string())
        .end(end.to_string())
        .build()
        .map_err(|e| ExplorerError::Invalid {
            operation,
            message: e.to_string(),
        })
}

async fn month_to_date(
    client: &aws_sdk_costexplorer::Client,
    filter: &Expression,
    start: Date,
    end: Date,
) -> Result<Decimal, ExplorerError> {
    const OPERATION: &str = "GetCostAndUsage";
    let response = client
        .get_cost_and_usage()
        .time_period(period(OPERATION, start, end)?)
        .granularity(Granularity::Monthly)
        .metrics(USAGE_METRIC)
        .filter(filter.clone())
        .send()
        .await
        .map_err(|e| api_error(OPERATION, &e))?;
    let mut total = Decimal::ZERO;
    for result in response.results_by_time() {
        let amount = result
            .total()
            .and_then(|t| t.get(USAGE_METRIC))
            .and_then(|m| m.amount());
        if let Some(amount) = amount {
            total += amount_of(OPERATION, amount)?;
        }
    }
    Ok(total)
}

/// `None` when Cost Explorer has too little history to forecast (`DataUnavailable`).
async fn forecast(
    client: &aws_sdk_costexplorer::Client,
    filter: &Expression,
    start: Date,
    end: Date,
) -> Result<Option<Decimal>, ExplorerError> {
    const OPERATION: &str = "GetCostForecast";
    let response = client
        .get_cost_forecast()
        .time_period(period(OPERATION, start, end)?)
        .granularity(Granularity::Monthly)
        .metric(Metric::UnblendedCost)
        .filter(filter.clone())
        .send()
        .await;
    let response = match response {
        Ok(response) => response,
        Err(SdkError::ServiceError(e)) if e.err().is_data_unavailable_exception() => {
            return Ok(None);
        }
        Err(e) => return Err(api_error(OPERATION, &e)),
    };
    response
        .total()
        .and_then(|t| t.amount())
        .map(|amount| amount_of(OPERATION, amount))
        .transpose()
}

fn amount_of(operation: &'static str, amount: &str) -> Result<Decimal, ExplorerError> {
    // Cost Explorer writes amounts like `0.0101516483`, sometimes in exponent form.
    amount
        .parse::<Decimal>()
        .or_else(|_| Decimal::from_scientific(amount))
        .map_err(|_| ExplorerError::Invalid {
            operation,
            message: format!("amount `{amount}` is not a number"),
        })
}

fn api_error<E, R>(operation: &'static str, err: &SdkError<E, R>) -> ExplorerError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let message = match err {
        SdkError::ServiceError(service) => match service.err().code() {
            Some(code) => format!(
                "{code}: {}",
                service.err().message().unwrap_or("no message")
            ),
            None => crate::cloud::error_chain(err),
        },
        _ => crate::cloud::error_chain(err),
    };
    ExplorerError::Api { operation, message }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn amounts_in_either_form_are_read_and_garbage_is_refused() {
        assert_eq!(
            amount_of("x", "0.0101516483").unwrap(),
            "0.0101516483".parse::<Decimal>().unwrap()
        );
        assert_eq!(
            amount_of("x", "1.5E2").unwrap(),
            "150".parse::<Decimal>().unwrap()
        );
        assert!(amount_of("x", "NaN").is_err());
    }

    #[test]
    fn the_filter_needs_both_of_the_projects_tags() {
        let filter = project_filter("team-a", "web");
        let tags: Vec<(String, Vec<String>)> = filter
            .and()
            .iter()
            .filter_map(|e| e.tags())
            .map(|t| (t.key().unwrap_or_default().to_owned(), t.values().to_vec()))
            .collect();
        assert_eq!(
            tags,
            vec![
                ("tollgate.dev/project".to_owned(), vec!["web".to_owned()]),
                (
                    "tollgate.dev/namespace".to_owned(),
                    vec!["team-a".to_owned()]
                ),
            ]
        );
    }
}

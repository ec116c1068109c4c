//! The only part that talks to the network: the AWS SDK client and the paginated
//! `GetProducts` calls.

use std::collections::HashSet;

use aws_sdk_pricing::types::{Filter, FilterType};

use super::product::Collector;
use super::query::{Query, USAGE_ROWS, queries};
use super::{CacheRow, RefreshError, RefreshOptions, Refreshed};

/// Builds a Price List client: region `api_region` (the API's, not the prices'), the
/// default credential chain, rustls (ring) HTTPS, and an endpoint override when given.
pub async fn client(endpoint_url: Option<&str>, api_region: &str) -> aws_sdk_pricing::Client {
    aws_sdk_pricing::Client::new(&crate::cloud::sdk_config(api_region, endpoint_url).await)
}

/// Runs every query (following `NextToken`) and turns the products into rows.
pub async fn fetch(
    client: &aws_sdk_pricing::Client,
    options: &RefreshOptions,
) -> Result<Refreshed, RefreshError> {
    if options.regions.is_empty() {
        return Err(RefreshError::NoRegion);
    }
    let mut collector = Collector::default();
    let mut requests = 0usize;
    let queries = queries(options);
    for query in &queries {
        let filters = query
            .filters
            .iter()
            .map(|(field, value)| {
                Filter::builder()
                    .r#type(FilterType::TermMatch)
                    .field(field)
                    .value(value)
                    .build()
                    .map_err(|e| RefreshError::Request(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut next_token: Option<String> = None;
        loop {
            let response = client
                .get_products()
                .service_code(query.service_code)
                .format_version("aws_v1")
                .set_filters(Some(filters.clone()))
                .max_results(100)
                .set_next_token(next_token.clone())
                .send()
                .await
                .map_err(|e| RefreshError::Api {
                    service_code: query.service_code.to_string(),
                    region: query.region.clone(),
                    message: crate::cloud::error_chain(&e),
                })?;
            requests += 1;
            for item in response.price_list() {
                collector.add(query, item, &options.observed);
            }
            match response.next_token() {
                Some(token) if !token.is_empty() && Some(token) != next_token.as_deref() => {
                    next_token = Some(token.to_string());
                }
                _ => break,
            }
        }
    }
    let mut refreshed = collector.finish(&options.observed);
    refreshed.requests = requests;
    let not_found = not_found(&refreshed.rows, &queries);
    refreshed.skipped.extend(not_found);
    if refreshed.rows.is_empty() {
        return Err(RefreshError::Empty {
            regions: options.regions.join(", "),
        });
    }
    Ok(refreshed)
}

/// The usage-type rows the queries looked for but no product gave, per region: a region
/// without the service, or a usage type AWS names differently (worth a look either way).
pub(super) fn not_found(rows: &[CacheRow], queries: &[Query]) -> Vec<String> {
    let found: HashSet<(&str, &str, &str)> = rows
        .iter()
        .map(|r| (r.service.as_str(), r.region.as_str(), r.key.as_str()))
        .collect();
    let mut reported = HashSet::new();
    let mut out = Vec::new();
    for query in queries {
        for row in USAGE_ROWS.iter().filter(|row| row.kind == query.kind) {
            let region = query.region.as_str();
            if !found.contains(&(row.service, region, row.key))
                && reported.insert((row.service, region, row.key))
            {
                out.push(format!(
                    "{} {} in {region}: no product with usage type {} (not offered there, or named differently)",
                    row.service, row.key, row.usage
                ));
            }
        }
    }
    out
}

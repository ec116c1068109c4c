//! The one error type of the cost engine.
//!
//! Every message says what went wrong *and* what to do about it, because these errors
//! end up in a CLI or in a Project's status where the reader cannot see the code.

use thiserror::Error;

/// Errors of the offline cost engine.
///
/// Resources that cannot be priced are **not** errors: they are reported in
/// [`crate::cost::Estimate::unpriced`] with a reason. Errors are for inputs the engine
/// cannot read at all.
#[derive(Debug, Error)]
pub enum CostError {
    /// The plan text is not JSON.
    #[error(
        "the plan is not valid JSON ({0}); pass the output of `terraform show -json <planfile>`, not the human-readable plan"
    )]
    PlanNotJson(#[source] serde_json::Error),

    /// The JSON is not shaped like `terraform show -json` output.
    #[error(
        "the plan JSON is not in `terraform show -json` format: {0}; produce it with `terraform show -json <planfile>` (format_version 1.x)"
    )]
    PlanShape(String),

    /// No region in the plan and none given.
    #[error(
        "no AWS region: the plan's provider configuration has no constant `region` and no region was given; pass a region (e.g. `--region us-east-1`) or set `region` in the aws provider block"
    )]
    NoRegion,

    /// The usage file is not valid YAML or not in the documented shape.
    #[error(
        "the usage file is invalid: {0}; see docs/cost.md (\"Usage file\") for the format: `resource_type_default_usage: {{<type>: {{<key>: <number>}}}}` and `resource_usage: {{\"<address>\": {{<key>: <number>}}}}`"
    )]
    UsageFile(String),

    /// A usage key that no pricer reads (most likely a typo).
    #[error(
        "the usage file sets `{key}` for `{scope}`, but {resource_type} has no usage key `{key}`; use one of: {known} (see docs/cost.md)"
    )]
    UnknownUsageKey {
        /// The address or resource type the key was given for.
        scope: String,
        /// The resource type the key was checked against.
        resource_type: String,
        /// The unknown key.
        key: String,
        /// The keys that type accepts, comma-separated.
        known: String,
    },

    /// A usage value that is not a non-negative number.
    #[error(
        "the usage file sets `{key}` for `{scope}` to `{value}`, which is not a non-negative number; write a plain number such as 100 or 0.5"
    )]
    UsageValue {
        /// The address or resource type the key was given for.
        scope: String,
        /// The key.
        key: String,
        /// The offending value as written.
        value: String,
    },

    /// The embedded price book is malformed (a build-time data bug).
    #[error(
        "the embedded price book controller/data/aws-prices.csv is invalid at line {line}: {message}; fix the row (see docs/cost.md \"Updating prices\") and rebuild"
    )]
    PriceBook {
        /// 1-based line number in the CSV.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
}

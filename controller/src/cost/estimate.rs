//! The estimate: what a plan costs per month before and after, per resource and per
//! component. Serialized as the stable JSON documented in `docs/cost.md`.

use rust_decimal::Decimal;
use serde::Serialize;

use super::pricebook::PriceRow;

/// Hours in a month, the convention every AWS calculator uses.
pub const HOURS_PER_MONTH: Decimal = Decimal::from_parts(730, 0, 0, false, 0);

/// One priced line of a resource: `monthly_quantity × unit_price = monthly_cost`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Component {
    /// What is billed, e.g. `Instance usage (Linux/UNIX, on-demand, t3.micro)`.
    pub name: String,
    /// The unit the quantity and price are in, e.g. `hour`, `GB-month`.
    pub unit: String,
    /// Quantity per month.
    pub monthly_quantity: Decimal,
    /// USD per unit.
    pub unit_price: Decimal,
    /// `monthly_quantity × unit_price`.
    pub monthly_cost: Decimal,
    /// The quantity comes from the usage file (0 when the file gives none), not from
    /// the plan.
    pub usage_based: bool,
    /// The price book row the unit price is (`tollgate cost --explain`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price: Option<PriceSource>,
    /// What the quantity assumes: hours run, capacity kept, usage-file values.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub assumptions: Vec<String>,
}

/// Where a component's unit price comes from: one row of the price book.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PriceSource {
    /// The row's `service`, e.g. `ec2`.
    pub service: String,
    /// The row's `key`, e.g. `instance:m3.medium`.
    pub key: String,
    /// The row's region (`global` when the region has no row of its own).
    pub region: String,
    /// Where the price was read.
    pub source: String,
    /// When the source showed it.
    pub observed: String,
}

impl Component {
    /// Builds a component, computing its cost exactly.
    pub fn new(
        name: impl Into<String>,
        unit: impl Into<String>,
        monthly_quantity: Decimal,
        unit_price: Decimal,
        usage_based: bool,
    ) -> Component {
        Component {
            name: name.into(),
            unit: unit.into(),
            monthly_quantity: monthly_quantity.normalize(),
            unit_price: unit_price.normalize(),
            monthly_cost: (monthly_quantity * unit_price).normalize(),
            usage_based,
            price: None,
            assumptions: Vec::new(),
        }
    }

    /// A component priced at `row`, which it cites.
    pub(crate) fn from_row(
        name: impl Into<String>,
        row: &PriceRow,
        monthly_quantity: Decimal,
        usage_based: bool,
    ) -> Component {
        let mut c = Component::new(name, row.unit, monthly_quantity, row.usd, usage_based);
        c.price = Some(PriceSource {
            service: row.service.to_string(),
            key: row.key.to_string(),
            region: row.region.to_string(),
            source: row.source.to_string(),
            observed: row.observed.to_string(),
        });
        c
    }

    /// The same component `factor` times over (one per instance of a group).
    pub(crate) fn times(mut self, factor: Decimal) -> Component {
        self.monthly_quantity = (self.monthly_quantity * factor).normalize();
        self.monthly_cost = (self.monthly_quantity * self.unit_price).normalize();
        self
    }

    /// Adds an assumption behind the quantity.
    pub(crate) fn assuming(mut self, assumption: impl Into<String>) -> Component {
        self.assumptions.push(assumption.into());
        self
    }
}

/// The cost of one resource in the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceCost {
    /// Plan address, e.g. `module.net.aws_nat_gateway.this[0]`.
    pub address: String,
    /// Resource type, e.g. `aws_nat_gateway`.
    #[serde(rename = "type")]
    pub resource_type: String,
    /// `create`, `update`, `replace`, `delete`, `no-op` or `forget`.
    pub action: String,
    /// Monthly cost after the plan is applied (0 for delete).
    pub monthly_cost: Decimal,
    /// Monthly cost before (0 for create).
    pub previous_monthly_cost: Decimal,
    /// `monthly_cost - previous_monthly_cost`.
    pub delta_monthly_cost: Decimal,
    /// Components of the new state.
    pub components: Vec<Component>,
    /// Components of the previous state.
    pub previous_components: Vec<Component>,
}

impl ResourceCost {
    /// Builds a resource cost from its components; totals are exact sums.
    pub fn new(
        address: impl Into<String>,
        resource_type: impl Into<String>,
        action: impl Into<String>,
        components: Vec<Component>,
        previous_components: Vec<Component>,
    ) -> ResourceCost {
        let monthly_cost = sum(components.iter().map(|c| c.monthly_cost));
        let previous_monthly_cost = sum(previous_components.iter().map(|c| c.monthly_cost));
        ResourceCost {
            address: address.into(),
            resource_type: resource_type.into(),
            action: action.into(),
            monthly_cost,
            previous_monthly_cost,
            delta_monthly_cost: (monthly_cost - previous_monthly_cost).normalize(),
            components,
            previous_components,
        }
    }
}

/// A resource the engine could not price, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Unpriced {
    /// Plan address.
    pub address: String,
    /// Resource type.
    #[serde(rename = "type")]
    pub resource_type: String,
    /// The planned action.
    pub action: String,
    /// Why, e.g. `no price for ec2 instance:x9.huge in us-east-1` or
    /// `instance_type is unknown until apply`.
    pub reason: String,
}

/// A resource that costs nothing by itself (e.g. `aws_vpc`, `terraform_data`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FreeResource {
    /// Plan address.
    pub address: String,
    /// Resource type.
    #[serde(rename = "type")]
    pub resource_type: String,
    /// The planned action.
    pub action: String,
}

/// The priced plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Estimate {
    /// Always `USD`.
    pub currency: String,
    /// The region prices were looked up in (the aws provider's, else the one given).
    pub region: String,
    /// Version of the embedded price book.
    pub price_book_version: String,
    /// Sum of `resources[].monthlyCost`.
    pub total_monthly_cost: Decimal,
    /// Sum of `resources[].previousMonthlyCost`.
    pub previous_monthly_cost: Decimal,
    /// `total_monthly_cost - previous_monthly_cost`.
    pub delta_monthly_cost: Decimal,
    /// Priced resources, sorted by address.
    pub resources: Vec<ResourceCost>,
    /// Resources that are free by themselves, sorted by address.
    pub free: Vec<FreeResource>,
    /// Resources that could not be priced (not in any total), sorted by address.
    pub unpriced: Vec<Unpriced>,
}

impl Estimate {
    /// Builds an estimate; totals are exact sums of the resources.
    pub fn new(
        region: impl Into<String>,
        price_book_version: impl Into<String>,
        mut resources: Vec<ResourceCost>,
        mut free: Vec<FreeResource>,
        mut unpriced: Vec<Unpriced>,
    ) -> Estimate {
        resources.sort_by(|a, b| a.address.cmp(&b.address));
        free.sort_by(|a, b| a.address.cmp(&b.address));
        unpriced.sort_by(|a, b| a.address.cmp(&b.address));
        let total = sum(resources.iter().map(|r| r.monthly_cost));
        let previous = sum(resources.iter().map(|r| r.previous_monthly_cost));
        Estimate {
            currency: "USD".to_string(),
            region: region.into(),
            price_book_version: price_book_version.into(),
            total_monthly_cost: total,
            previous_monthly_cost: previous,
            delta_monthly_cost: (total - previous).normalize(),
            resources,
            free,
            unpriced,
        }
    }

    /// The estimate as pretty-printed JSON (the documented, stable format).
    pub fn to_json(&self) -> String {
        // Serializing these plain structs (string keys, decimals as strings) cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The estimate as a JSON value.
    pub fn to_json_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// A plain-text table for terminals.
    pub fn render_table(&self) -> String {
        super::render::table(self)
    }

    /// A Markdown report (for pull-request comments and Checkpoint summaries).
    pub fn render_markdown(&self) -> String {
        super::render::markdown(self)
    }

    /// Per component of every priced resource: the price book row used (service, key,
    /// region, source, date) and every assumption behind the quantity
    /// (`tollgate cost --explain`).
    pub fn render_explain(&self) -> String {
        super::render::explain(self)
    }
}

fn sum(values: impl Iterator<Item = Decimal>) -> Decimal {
    values.fold(Decimal::ZERO, |a, b| a + b).normalize()
}

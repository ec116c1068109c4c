//! The parts of `terraform show -json` output that pricing reads, deserialized straight
//! from the text.
//!
//! Building a whole `serde_json::Value` tree of a plan costs more than pricing it: every
//! key and string becomes an allocation, including `planned_values` (a second copy of
//! every `after`), the sensitivity masks and the configuration's names. These structs
//! keep only what [`super::PlanView`] looks at, borrow strings from the text where JSON
//! lets them (no escapes), and let serde skip the rest without allocating. Attribute
//! values (`before`, `after`, `after_unknown`, expressions) stay `Value`: pricers read
//! them by key, and their shape is the provider's, not Terraform's.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

use crate::cost::CostError;

/// A plan as pricing reads it.
#[derive(Debug, Deserialize)]
pub(crate) struct RawPlan<'a> {
    /// Only its presence is checked: it is what marks `terraform show -json` output.
    #[serde(default)]
    pub format_version: Option<IgnoredAny>,
    #[serde(default, borrow)]
    pub resource_changes: Option<Vec<RawChange<'a>>>,
    #[serde(default)]
    pub prior_state: Option<RawState<'a>>,
    #[serde(default, borrow)]
    pub configuration: Option<RawConfiguration<'a>>,
    #[serde(default)]
    pub variables: Option<BTreeMap<String, RawVariable>>,
}

/// One entry of `resource_changes`.
#[derive(Debug, Deserialize)]
pub(crate) struct RawChange<'a> {
    #[serde(default, borrow)]
    pub address: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub module_address: Option<Cow<'a, str>>,
    #[serde(default, borrow, rename = "type")]
    pub resource_type: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub mode: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub change: Option<RawChangeBody<'a>>,
}

/// `resource_changes[].change`.
#[derive(Debug, Deserialize)]
pub(crate) struct RawChangeBody<'a> {
    #[serde(default, borrow)]
    pub actions: Option<Vec<Word<'a>>>,
    #[serde(default)]
    pub before: Option<Value>,
    #[serde(default)]
    pub after: Option<Value>,
    #[serde(default)]
    pub after_unknown: Option<Value>,
}

/// A string in a list, borrowed from the text when it has no escapes.
#[derive(Debug, Deserialize)]
pub(crate) struct Word<'a>(#[serde(borrow)] pub Cow<'a, str>);

/// `prior_state`: the values of resources whose change has no `before` of its own.
#[derive(Debug, Deserialize)]
pub(crate) struct RawState<'a> {
    #[serde(default, borrow)]
    pub values: Option<RawStateValues<'a>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RawStateValues<'a> {
    #[serde(default, borrow)]
    pub root_module: Option<RawStateModule<'a>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RawStateModule<'a> {
    #[serde(default, borrow)]
    pub resources: Vec<RawStateResource<'a>>,
    #[serde(default, borrow)]
    pub child_modules: Vec<RawStateModule<'a>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RawStateResource<'a> {
    #[serde(default, borrow)]
    pub address: Option<Cow<'a, str>>,
    #[serde(default)]
    pub values: Option<Value>,
}

/// `configuration`: provider configurations and the module tree.
#[derive(Debug, Deserialize)]
pub(crate) struct RawConfiguration<'a> {
    #[serde(default)]
    pub provider_config: BTreeMap<String, RawProvider>,
    #[serde(default, borrow)]
    pub root_module: Option<RawModule<'a>>,
}

/// `configuration.provider_config.<key>`.
#[derive(Debug, Deserialize)]
pub(crate) struct RawProvider {
    #[serde(default)]
    pub name: Option<String>,
    /// Set for a configuration inside a module (whose `var.x` is not a root variable).
    #[serde(default)]
    pub module_address: Option<IgnoredAny>,
    #[serde(default)]
    pub expressions: Option<Value>,
}

/// A module of the configuration.
#[derive(Debug, Deserialize)]
pub(crate) struct RawModule<'a> {
    #[serde(default, borrow)]
    pub resources: Vec<RawResource<'a>>,
    #[serde(default, borrow)]
    pub module_calls: BTreeMap<String, RawModuleCall<'a>>,
    #[serde(default)]
    pub variables: BTreeMap<String, RawVariableDeclaration>,
}

/// A resource block of the configuration.
#[derive(Debug, Deserialize)]
pub(crate) struct RawResource<'a> {
    #[serde(default, borrow)]
    pub address: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub provider_config_key: Option<Cow<'a, str>>,
    #[serde(default)]
    pub expressions: Option<Value>,
}

/// A `module` block: which inputs the call sets, and the module it calls.
#[derive(Debug, Deserialize)]
pub(crate) struct RawModuleCall<'a> {
    #[serde(default)]
    pub expressions: BTreeMap<String, IgnoredAny>,
    #[serde(default, borrow)]
    pub module: Option<Box<RawModule<'a>>>,
}

/// A module's `variable` declaration.
#[derive(Debug, Deserialize)]
pub(crate) struct RawVariableDeclaration {
    /// `Some(Null)` for `"default": null`; `None` when there is no default (a required
    /// input, which the call must set).
    #[serde(default, deserialize_with = "present")]
    pub default: Option<Value>,
}

/// A root variable's value in the plan.
#[derive(Debug, Deserialize)]
pub(crate) struct RawVariable {
    #[serde(default)]
    pub value: Option<Value>,
}

/// Keeps a present `null` apart from an absent key (which `default` makes `None`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

impl<'a> RawPlan<'a> {
    /// Reads a plan from `terraform show -json` text, borrowing from it.
    pub fn from_json(text: &'a str) -> Result<RawPlan<'a>, CostError> {
        // serde reads a struct from a JSON array too (fields by position): a plan is an
        // object.
        if text.trim_start().starts_with('[') {
            return Err(not_an_object());
        }
        serde_json::from_str(text).map_err(shape_or_syntax)
    }

    /// Reads a plan already parsed into a `Value` (its attribute values are copied).
    pub fn from_value(plan: &'a Value) -> Result<RawPlan<'a>, CostError> {
        if plan.is_array() {
            return Err(not_an_object());
        }
        RawPlan::deserialize(plan).map_err(shape_or_syntax)
    }
}

fn not_an_object() -> CostError {
    CostError::PlanShape("the top level is not an object".into())
}

/// Well-formed JSON of the wrong shape is a shape error, naming what was expected;
/// anything else is not JSON.
fn shape_or_syntax(err: serde_json::Error) -> CostError {
    match err.classify() {
        serde_json::error::Category::Data => CostError::PlanShape(err.to_string()),
        _ => CostError::PlanNotJson(err),
    }
}

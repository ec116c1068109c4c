//! A small read-only view of `terraform show -json` output: just what pricing needs.
//!
//! This deliberately does not depend on the crate's full plan model: the cost engine
//! reads `resource_changes[].{address, module_address, type, mode, change.{actions,
//! before, after, after_unknown}}`, `prior_state` (fallback for `before`),
//! `configuration` (references, which attributes were set, provider regions) and
//! `variables` (a provider region given as `var.x`), deserialized by [`raw`] without
//! building a `Value` tree of the whole plan.

use std::collections::{HashMap, HashSet};

use rust_decimal::Decimal;
use serde_json::Value;

use super::error::CostError;

mod raw;

pub(crate) use raw::RawPlan;
use raw::{RawModule, RawState, RawStateModule, Word};

/// What Terraform will do to a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// `["create"]`: no previous cost.
    Create,
    /// `["update"]`: both sides priced.
    Update,
    /// `["delete","create"]` or `["create","delete"]`.
    Replace,
    /// `["delete"]`: no new cost.
    Delete,
    /// `["no-op"]`: both sides priced, equal.
    NoOp,
    /// `["forget"]` (Terraform 1.7+ `removed` blocks): Terraform stops managing the
    /// object; it is no longer part of this plan's cost.
    Forget,
}

impl Action {
    /// The name used in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Replace => "replace",
            Action::Delete => "delete",
            Action::NoOp => "no-op",
            Action::Forget => "forget",
        }
    }

    /// Whether the new (after) state exists.
    pub fn has_after(self) -> bool {
        matches!(
            self,
            Action::Create | Action::Update | Action::Replace | Action::NoOp
        )
    }

    /// Whether the previous (before) state exists.
    pub fn has_before(self) -> bool {
        !matches!(self, Action::Create)
    }

    fn from_actions(actions: &[Word<'_>]) -> Option<Action> {
        match actions {
            [only] => match only.0.as_ref() {
                "create" => Some(Action::Create),
                "update" => Some(Action::Update),
                "delete" => Some(Action::Delete),
                "no-op" => Some(Action::NoOp),
                "forget" => Some(Action::Forget),
                _ => None,
            },
            [first, second] => match (first.0.as_ref(), second.0.as_ref()) {
                ("delete", "create") | ("create", "delete") => Some(Action::Replace),
                _ => None,
            },
            _ => None,
        }
    }
}

/// A field read from planned values.
#[derive(Debug, Clone, Copy)]
pub enum Field<'a> {
    /// `after_unknown` marks it: known only after apply.
    Unknown,
    /// Absent or null.
    Unset,
    /// Known value.
    Known(&'a Value),
}

/// The attribute values of one side (before or after) of a resource, with the matching
/// `after_unknown` tree for the after side.
#[derive(Debug, Clone, Copy)]
pub struct Attrs<'a> {
    values: Option<&'a Value>,
    unknown: Option<&'a Value>,
}

impl<'a> Attrs<'a> {
    pub fn new(values: Option<&'a Value>, unknown: Option<&'a Value>) -> Attrs<'a> {
        Attrs { values, unknown }
    }

    /// Reads a top-level attribute.
    pub fn field(&self, key: &str) -> Field<'a> {
        if self.unknown.and_then(|u| u.get(key)) == Some(&Value::Bool(true)) {
            return Field::Unknown;
        }
        match self.values.and_then(|v| v.get(key)) {
            None | Some(Value::Null) => Field::Unset,
            Some(v) => Field::Known(v),
        }
    }

    /// A known string attribute (`Ok(None)` when unset, `Err(())` when unknown).
    pub fn str(&self, key: &str) -> Result<Option<&'a str>, Unknown> {
        match self.field(key) {
            Field::Unknown => Err(Unknown),
            Field::Unset => Ok(None),
            Field::Known(v) => Ok(v.as_str().filter(|s| !s.is_empty())),
        }
    }

    /// A known numeric attribute (numbers or numeric strings, as the AWS provider uses
    /// both, e.g. ECS task `cpu = "256"`).
    pub fn number(&self, key: &str) -> Result<Option<Decimal>, Unknown> {
        match self.field(key) {
            Field::Unknown => Err(Unknown),
            Field::Unset => Ok(None),
            Field::Known(v) => Ok(value_decimal(v)),
        }
    }

    /// A known boolean attribute.
    pub fn bool(&self, key: &str) -> Result<Option<bool>, Unknown> {
        match self.field(key) {
            Field::Unknown => Err(Unknown),
            Field::Unset => Ok(None),
            Field::Known(v) => Ok(v.as_bool()),
        }
    }

    /// A nested block list (e.g. `root_block_device`): `Err` when the whole block is
    /// unknown, otherwise one `Attrs` per element (empty when unset).
    pub fn blocks(&self, key: &str) -> Result<Vec<Attrs<'a>>, Unknown> {
        let unknown = self.unknown.and_then(|u| u.get(key));
        if unknown == Some(&Value::Bool(true)) {
            return Err(Unknown);
        }
        let values = match self.values.and_then(|v| v.get(key)) {
            Some(Value::Array(items)) => items.as_slice(),
            _ => &[],
        };
        let unknowns = match unknown {
            Some(Value::Array(items)) => items.as_slice(),
            _ => &[],
        };
        let n = values.len().max(unknowns.len());
        Ok((0..n)
            .map(|i| Attrs::new(values.get(i), unknowns.get(i)))
            .collect())
    }

    /// The number of elements of a list or set attribute (`Err` when its length is
    /// unknown). Elements that are themselves unknown still count.
    pub fn len(&self, key: &str) -> Result<usize, Unknown> {
        let unknown = self.unknown.and_then(|u| u.get(key));
        if unknown == Some(&Value::Bool(true)) {
            return Err(Unknown);
        }
        let known = match self.values.and_then(|v| v.get(key)) {
            Some(Value::Array(items)) => items.len(),
            _ => 0,
        };
        let unknown_len = match unknown {
            Some(Value::Array(items)) => items.len(),
            _ => 0,
        };
        Ok(known.max(unknown_len))
    }

    /// A list of strings (`Err` when unknown).
    pub fn strings(&self, key: &str) -> Result<Vec<&'a str>, Unknown> {
        match self.field(key) {
            Field::Unknown => Err(Unknown),
            Field::Unset => Ok(Vec::new()),
            Field::Known(v) => Ok(v
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default()),
        }
    }
}

/// Marker: the value is known only after apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unknown;

pub(crate) fn value_decimal(v: &Value) -> Option<Decimal> {
    match v {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Some(Decimal::from(i))
            } else if let Some(u) = n.as_u64() {
                Some(Decimal::from(u))
            } else {
                n.to_string()
                    .parse::<Decimal>()
                    .ok()
                    .or_else(|| Decimal::from_scientific(&n.to_string()).ok())
            }
        }
        Value::String(s) => s.trim().parse::<Decimal>().ok(),
        _ => None,
    }
}

/// One entry of `resource_changes`.
#[derive(Debug, Clone)]
pub struct Change<'a> {
    pub address: &'a str,
    pub module_address: Option<&'a str>,
    pub resource_type: &'a str,
    pub action: Action,
    pub before: Option<&'a Value>,
    pub after: Option<&'a Value>,
    pub after_unknown: Option<&'a Value>,
}

impl<'a> Change<'a> {
    pub fn after_attrs(&self) -> Attrs<'a> {
        Attrs::new(self.after, self.after_unknown)
    }

    pub fn before_attrs(&self) -> Attrs<'a> {
        Attrs::new(self.before, None)
    }
}

/// What pricing reads of a resource's configuration block.
#[derive(Debug, Clone, Copy)]
struct ConfigEntry<'a> {
    provider_config_key: Option<&'a str>,
    expressions: Option<&'a Value>,
}

/// The view over a whole plan.
#[derive(Debug)]
pub struct PlanView<'a> {
    pub changes: Vec<Change<'a>>,
    by_address: HashMap<&'a str, usize>,
    /// `(module path without indexes, "type.name")` → configuration resource.
    config: HashMap<(String, &'a str), ConfigEntry<'a>>,
    /// `(module path, variable)` of module inputs that are null: the call does not set them
    /// and their default is null.
    null_inputs: HashSet<(String, &'a str)>,
    /// Every aws provider configuration by key, with its region when that is constant.
    provider_regions: HashMap<&'a str, Option<&'a str>>,
}

impl<'a> PlanView<'a> {
    pub fn new(plan: &'a RawPlan<'_>) -> Result<PlanView<'a>, CostError> {
        if plan.format_version.is_none() {
            return Err(CostError::PlanShape("`format_version` is missing".into()));
        }
        let resource_changes = plan.resource_changes.as_deref().unwrap_or_default();
        let prior = prior_state_index(plan.prior_state.as_ref());
        let mut changes = Vec::with_capacity(resource_changes.len());
        for (i, rc) in resource_changes.iter().enumerate() {
            let (Some(address), Some(resource_type)) =
                (rc.address.as_deref(), rc.resource_type.as_deref())
            else {
                return Err(CostError::PlanShape(format!(
                    "resource_changes[{i}] has no `address` or `type`"
                )));
            };
            if rc.mode.as_deref() == Some("data") {
                continue;
            }
            let change = rc.change.as_ref().ok_or_else(|| {
                CostError::PlanShape(format!("resource_changes[{i}] ({address}) has no `change`"))
            })?;
            let actions = change.actions.as_deref().ok_or_else(|| {
                CostError::PlanShape(format!("{address}: `change.actions` is missing"))
            })?;
            let Some(action) = Action::from_actions(actions) else {
                // `read` (data sources re-read during apply) and unknown future actions
                // carry no cost of their own.
                continue;
            };
            let non_null = |v: &'a Option<Value>| v.as_ref().filter(|v| !v.is_null());
            let mut before = non_null(&change.before);
            if before.is_none() && action.has_before() {
                before = prior.get(address).copied();
            }
            changes.push(Change {
                address,
                module_address: rc.module_address.as_deref(),
                resource_type,
                action,
                before,
                after: non_null(&change.after),
                after_unknown: non_null(&change.after_unknown),
            });
        }
        let by_address = changes
            .iter()
            .enumerate()
            .map(|(i, c)| (c.address, i))
            .collect();
        let mut config = HashMap::with_capacity(changes.len());
        let mut null_inputs = HashSet::new();
        let configuration = plan.configuration.as_ref();
        if let Some(root) = configuration.and_then(|c| c.root_module.as_ref()) {
            index_module(root, String::new(), &mut config, &mut null_inputs);
        }
        let mut provider_regions = HashMap::new();
        for (key, provider) in configuration.iter().flat_map(|c| &c.provider_config) {
            if provider.name.as_deref() != Some("aws") {
                continue;
            }
            let region = provider.expressions.as_ref().and_then(|e| e.get("region"));
            let constant = region
                .and_then(|r| r.get("constant_value"))
                .and_then(Value::as_str);
            let from_var = || {
                // `region = var.x` in the root module: the plan records the value.
                if provider.module_address.is_some() {
                    return None;
                }
                let refs = region?.get("references")?.as_array()?;
                let var = refs.first()?.as_str()?.strip_prefix("var.")?;
                plan.variables.as_ref()?.get(var)?.value.as_ref()?.as_str()
            };
            provider_regions.insert(key.as_str(), constant.or_else(from_var));
        }
        Ok(PlanView {
            changes,
            by_address,
            config,
            null_inputs,
            provider_regions,
        })
    }

    /// The change at an exact address.
    pub fn change(&self, address: &str) -> Option<&Change<'a>> {
        self.by_address.get(address).map(|&i| &self.changes[i])
    }

    /// The configuration block of a resource (looked up without instance keys).
    fn config_of(&self, change: &Change<'a>) -> Option<ConfigEntry<'a>> {
        let module = module_path(change.module_address.unwrap_or(""));
        let key = strip_index(local_address(change.address, change.module_address));
        self.config.get(&(module, key)).copied()
    }

    /// The `expressions` of a resource's configuration block.
    pub fn expressions_of(&self, change: &Change<'a>) -> Option<&'a Value> {
        self.config_of(change)?.expressions
    }

    /// Whether the configuration sets `attr` (so an unknown value is really unknown
    /// rather than a provider-computed default). `attr = var.x` where the module's input `x`
    /// is null counts as not set: an expression of known values only is known at plan
    /// time, so its value is unknown only because it is null and the provider computes it
    /// (e.g. a module's `iops = var.iops` left at its null default).
    pub fn configured(&self, change: &Change<'a>, attr: &str) -> Option<bool> {
        let config = self.config_of(change)?;
        let Some(expression) = config.expressions.and_then(|e| e.get(attr)) else {
            return Some(false);
        };
        let module = module_path(change.module_address.unwrap_or(""));
        let only_null_input = match expression.get("references").and_then(Value::as_array) {
            Some(refs) if refs.len() == 1 => refs[0]
                .as_str()
                .and_then(|r| r.strip_prefix("var."))
                .is_some_and(|var| self.null_inputs.contains(&(module, var))),
            _ => false,
        };
        Some(!only_null_input)
    }

    /// Whether the configuration sets `attr` inside any `block { ... }` of a resource.
    pub fn configured_nested(&self, change: &Change<'a>, block: &str, attr: &str) -> Option<bool> {
        let config = self.config_of(change)?;
        let blocks = config.expressions.and_then(|e| e.get(block));
        Some(match blocks {
            Some(Value::Array(items)) => items.iter().any(|b| b.get(attr).is_some()),
            Some(Value::Object(o)) => o.contains_key(attr),
            _ => false,
        })
    }

    /// The references of a configuration expression, e.g. `task_definition` →
    /// `["aws_ecs_task_definition.app.arn", "aws_ecs_task_definition.app"]`.
    pub fn references(&self, change: &Change<'a>, attr: &str) -> Vec<&'a str> {
        self.expressions_of(change)
            .and_then(|e| e.get(attr))
            .and_then(|e| e.get("references"))
            .and_then(Value::as_array)
            .map(|refs| refs.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }

    /// The references of `attr` inside the first `block { ... }` of a resource's
    /// configuration, e.g. `launch_template` / `id`.
    pub fn references_nested(&self, change: &Change<'a>, block: &str, attr: &str) -> Vec<&'a str> {
        let blocks = self.expressions_of(change).and_then(|e| e.get(block));
        let first = match blocks {
            Some(Value::Array(items)) => items.first(),
            other => other,
        };
        first
            .and_then(|b| b.get(attr))
            .and_then(|e| e.get("references"))
            .and_then(Value::as_array)
            .map(|refs| refs.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }

    /// The region of the aws provider configuration a resource uses: `Ok(None)` when the
    /// default configuration's region is not constant (the caller supplies one), `Err` with
    /// the reason when the resource uses an aliased configuration whose region is known
    /// only at apply (pricing it in another region would be a wrong price).
    pub fn region_of(&self, change: &Change<'a>) -> Result<Option<&'a str>, String> {
        // When the default configuration is the only one, every resource uses it: no need to
        // look up which configuration the resource names.
        if self.provider_regions.keys().all(|key| *key == "aws") {
            return Ok(self.default_region());
        }
        let key = self
            .config_of(change)
            .and_then(|c| c.provider_config_key)
            .unwrap_or("aws");
        match self.provider_regions.get(key) {
            Some(Some(region)) => Ok(Some(region)),
            Some(None) if key != "aws" => Err(format!(
                "the region of provider configuration `{key}` is known only at apply"
            )),
            _ => Ok(self.default_region()),
        }
    }

    /// The default aws provider's region, if constant.
    pub fn default_region(&self) -> Option<&'a str> {
        self.provider_regions.get("aws").copied().flatten()
    }
}

fn prior_state_index<'a>(prior: Option<&'a RawState<'_>>) -> HashMap<&'a str, &'a Value> {
    fn walk<'a>(module: &'a RawStateModule<'_>, out: &mut HashMap<&'a str, &'a Value>) {
        for r in &module.resources {
            if let (Some(address), Some(values)) = (r.address.as_deref(), r.values.as_ref()) {
                out.insert(address, values);
            }
        }
        for child in &module.child_modules {
            walk(child, out);
        }
    }
    let mut out = HashMap::new();
    if let Some(root) = prior
        .and_then(|p| p.values.as_ref())
        .and_then(|v| v.root_module.as_ref())
    {
        walk(root, &mut out);
    }
    out
}

fn index_module<'a>(
    module: &'a RawModule<'_>,
    path: String,
    out: &mut HashMap<(String, &'a str), ConfigEntry<'a>>,
    null_inputs: &mut HashSet<(String, &'a str)>,
) {
    for r in &module.resources {
        if let Some(address) = r.address.as_deref() {
            let entry = ConfigEntry {
                provider_config_key: r.provider_config_key.as_deref(),
                expressions: r.expressions.as_ref(),
            };
            out.insert((path.clone(), address), entry);
        }
    }
    for (name, call) in &module.module_calls {
        let Some(child) = call.module.as_deref() else {
            continue;
        };
        let child_path = if path.is_empty() {
            name.clone()
        } else {
            format!("{path}.{name}")
        };
        for (var, declared) in &child.variables {
            // `"default": null` is a null default; no `default` key is a required input,
            // which the call must set.
            let null_default = declared.default.as_ref().is_some_and(Value::is_null);
            if null_default && !call.expressions.contains_key(var) {
                null_inputs.insert((child_path.clone(), var.as_str()));
            }
        }
        index_module(child, child_path, out, null_inputs);
    }
}

/// `module.a[0].module.b["x"]` → `a.b`.
pub(crate) fn module_path(module_address: &str) -> String {
    let mut out = String::new();
    let mut rest = module_address;
    while let Some(after) = rest.strip_prefix("module.") {
        let end = after.find(['.', '[']).unwrap_or(after.len());
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(&after[..end]);
        // Skip an index, then the dot before the next `module.`.
        let mut tail = &after[end..];
        if tail.starts_with('[') {
            tail = skip_index(tail);
        }
        rest = tail.strip_prefix('.').unwrap_or(tail);
    }
    out
}

fn skip_index(s: &str) -> &str {
    let mut in_str = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => in_str = !in_str,
            ']' if !in_str => return &s[i + 1..],
            _ => {}
        }
    }
    ""
}

/// The address inside its module: `module.a.aws_x.y[0]` → `aws_x.y[0]`.
pub(crate) fn local_address<'s>(address: &'s str, module_address: Option<&str>) -> &'s str {
    match module_address {
        Some(m) if !m.is_empty() => address
            .strip_prefix(m)
            .and_then(|r| r.strip_prefix('.'))
            .unwrap_or(address),
        _ => address,
    }
}

/// `aws_x.y[0]` → `aws_x.y`.
pub(crate) fn strip_index(address: &str) -> &str {
    match address.find('[') {
        Some(i) => &address[..i],
        None => address,
    }
}

#[cfg(test)]
mod tests;

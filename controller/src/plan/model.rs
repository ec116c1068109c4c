//! Serde types for `terraform show -json <planfile>` (plan format 1.x).
//!
//! Unknown fields are ignored (Terraform adds fields in minor format versions); values whose
//! meaning matters (`format_version`, `actions`) are checked.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::PlanError;

/// A parsed plan. Values in it may be secret: see [`Plan::redacted`]. `Debug` prints a
/// redacted form.
#[derive(Clone, Deserialize)]
pub struct Plan {
    /// The JSON format version, e.g. `"1.2"`; the major version is checked to be 1.
    pub format_version: String,
    /// The Terraform (or OpenTofu) version that made the plan.
    #[serde(default)]
    pub terraform_version: Option<String>,
    /// Root module input variables as given to the plan. Sensitive ones are marked only in
    /// `configuration` (see [`Plan::sensitive_variables`]).
    #[serde(default)]
    pub variables: BTreeMap<String, PlanVariable>,
    /// The state as it would be after apply (values unknown until apply are absent).
    #[serde(default)]
    pub planned_values: Option<StateValues>,
    /// What the plan will do to each resource instance.
    #[serde(default)]
    pub resource_changes: Vec<ResourceChange>,
    /// Changes made outside Terraform since the last apply, found by refresh.
    #[serde(default)]
    pub resource_drift: Vec<ResourceChange>,
    /// Changes to root module outputs.
    #[serde(default)]
    pub output_changes: BTreeMap<String, Change>,
    /// The state the plan was made against (after refresh).
    #[serde(default)]
    pub prior_state: Option<StateSnapshot>,
    /// The configuration, kept as JSON.
    #[serde(default)]
    pub configuration: Option<Value>,
    /// Results of `check` blocks, preconditions, postconditions and variable validations.
    #[serde(default)]
    pub checks: Vec<CheckResult>,
    /// Resource attributes that contributed to the plan (kept as JSON).
    #[serde(default)]
    pub relevant_attributes: Vec<Value>,
    /// When the plan was made (RFC 3339).
    #[serde(default)]
    pub timestamp: Option<String>,
    /// Whether the plan can be applied (Terraform >= 1.6).
    #[serde(default)]
    pub applyable: Option<bool>,
    /// Whether applying it converges (no deferred changes) (Terraform >= 1.6).
    #[serde(default)]
    pub complete: Option<bool>,
    /// Whether planning stopped on an error (Terraform >= 1.5).
    #[serde(default)]
    pub errored: Option<bool>,
}

impl Plan {
    /// Parses `terraform show -json` output and checks the format version and actions.
    pub fn from_json(json: &str) -> Result<Self, PlanError> {
        let plan: Plan = serde_json::from_str(json)?;
        plan.check_format()?;
        Ok(plan)
    }

    /// Like [`Plan::from_json`], from bytes.
    pub fn from_slice(json: &[u8]) -> Result<Self, PlanError> {
        let plan: Plan = serde_json::from_slice(json)?;
        plan.check_format()?;
        Ok(plan)
    }

    fn check_format(&self) -> Result<(), PlanError> {
        let major = self.format_version.split('.').next().unwrap_or_default();
        if major == "1" {
            Ok(())
        } else {
            Err(PlanError::UnsupportedFormat {
                found: self.format_version.clone(),
            })
        }
    }

    /// Whether the plan changes anything (resources or outputs); reads and no-ops do not count.
    #[must_use]
    pub fn has_changes(&self) -> bool {
        self.resource_changes
            .iter()
            .any(|rc| rc.change.actions.is_change())
            || self.output_changes.values().any(|c| c.actions.is_change())
    }

    /// Names of root module variables declared `sensitive = true` in the configuration.
    #[must_use]
    pub fn sensitive_variables(&self) -> Vec<String> {
        self.configuration
            .as_ref()
            .and_then(|c| c.get("root_module"))
            .and_then(|m| m.get("variables"))
            .and_then(Value::as_object)
            .map(|vars| {
                vars.iter()
                    .filter(|(_, v)| v.get("sensitive").and_then(Value::as_bool) == Some(true))
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl fmt::Debug for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = self.redacted(None);
        f.debug_struct("Plan")
            .field("format_version", &self.format_version)
            .field("terraform_version", &self.terraform_version)
            .field("redacted", &redacted.to_string())
            .finish()
    }
}

/// A root module variable's value in the plan.
#[derive(Clone, Serialize, Deserialize)]
pub struct PlanVariable {
    /// The value (may be secret if the variable is sensitive).
    #[serde(default)]
    pub value: Value,
}

impl fmt::Debug for PlanVariable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The model does not know here whether the variable is sensitive: never print it.
        f.write_str("PlanVariable { value: (hidden) }")
    }
}

/// A resource instance's planned change (or drift).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResourceChange {
    /// Full address, e.g. `module.db.aws_db_instance.this[0]`.
    pub address: String,
    /// The address before a `moved` block, if the resource moved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_address: Option<String>,
    /// The module part of the address, if not in the root module.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module_address: Option<String>,
    /// `managed` or `data`.
    pub mode: ResourceMode,
    /// Resource type, e.g. `aws_s3_bucket`.
    #[serde(rename = "type")]
    pub resource_type: String,
    /// Resource name in the configuration.
    pub name: String,
    /// `count`/`for_each` key, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<Value>,
    /// Set for deposed objects (`create_before_destroy` leftovers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deposed: Option<String>,
    /// Provider, e.g. `registry.terraform.io/hashicorp/aws`.
    #[serde(default)]
    pub provider_name: String,
    /// The change itself.
    pub change: Change,
    /// Why Terraform chose this action (e.g. `replace_because_cannot_update`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_reason: Option<String>,
}

/// `managed` (a resource) or `data` (a data source).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResourceMode {
    /// A managed resource.
    Managed,
    /// A data source.
    Data,
    /// A mode newer than this model (e.g. ephemeral); never counted as a change.
    #[serde(other)]
    Other,
}

/// The before/after of a change. Values may be secret: `Debug` only shows the actions.
#[derive(Clone, Serialize, Deserialize)]
pub struct Change {
    /// What happens.
    pub actions: Actions,
    /// The value before (null for create).
    #[serde(default)]
    pub before: Value,
    /// The value after (null for delete); unknown parts are absent here and marked in
    /// `after_unknown`.
    #[serde(default)]
    pub after: Value,
    /// Mask of values known only after apply (`true` or a structure of `true`s).
    #[serde(default)]
    pub after_unknown: Value,
    /// Mask of sensitive values in `before`.
    #[serde(default)]
    pub before_sensitive: Value,
    /// Mask of sensitive values in `after`.
    #[serde(default)]
    pub after_sensitive: Value,
    /// Attribute paths that force replacement.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replace_paths: Vec<Vec<Value>>,
    /// Set when the resource is being imported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub importing: Option<Value>,
    /// HCL generated for an imported resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generated_config: Option<String>,
}

impl fmt::Debug for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Change")
            .field("actions", &self.actions)
            .field("replace_paths", &self.replace_paths.len())
            .finish_non_exhaustive()
    }
}

/// One action string of a change's `actions` list. Unknown strings fail to parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// `no-op`
    NoOp,
    /// `create`
    Create,
    /// `read`
    Read,
    /// `update`
    Update,
    /// `delete`
    Delete,
    /// `forget` (Terraform >= 1.7 `removed` blocks with `destroy = false`)
    Forget,
    /// `open` (ephemeral resources)
    Open,
}

/// Which half of a replace happens first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ReplaceOrder {
    /// `["delete", "create"]`: the default.
    DeleteThenCreate,
    /// `["create", "delete"]`: `create_before_destroy`.
    CreateThenDelete,
}

/// A change's `actions` list, validated into what it means. Serialises back to the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "Vec<Action>", into = "Vec<Action>")]
pub enum Actions {
    /// Nothing changes.
    NoOp,
    /// A new object is created.
    Create,
    /// A data source is read.
    Read,
    /// Updated in place.
    Update,
    /// Destroyed.
    Delete,
    /// Destroyed and re-created (in either order).
    Replace(ReplaceOrder),
    /// Removed from state without destroying it.
    Forget,
    /// A new object replaces the old, which is forgotten (not destroyed).
    CreateThenForget,
    /// An ephemeral resource is opened.
    Open,
}

impl Actions {
    /// Whether this changes infrastructure (or state): everything except no-op, read and open.
    #[must_use]
    pub fn is_change(self) -> bool {
        !matches!(self, Self::NoOp | Self::Read | Self::Open)
    }

    /// Whether an existing object is destroyed (delete or replace).
    #[must_use]
    pub fn destroys(self) -> bool {
        matches!(self, Self::Delete | Self::Replace(_))
    }

    /// Whether the change leaves an object with new values (create, update, replace).
    #[must_use]
    pub fn writes(self) -> bool {
        matches!(
            self,
            Self::Create | Self::Update | Self::Replace(_) | Self::CreateThenForget
        )
    }
}

impl TryFrom<Vec<Action>> for Actions {
    type Error = String;

    fn try_from(actions: Vec<Action>) -> Result<Self, Self::Error> {
        use Action as A;
        Ok(match actions.as_slice() {
            [A::NoOp] => Self::NoOp,
            [A::Create] => Self::Create,
            [A::Read] => Self::Read,
            [A::Update] => Self::Update,
            [A::Delete] => Self::Delete,
            [A::Forget] => Self::Forget,
            [A::Open] => Self::Open,
            [A::Delete, A::Create] => Self::Replace(ReplaceOrder::DeleteThenCreate),
            [A::Create, A::Delete] => Self::Replace(ReplaceOrder::CreateThenDelete),
            [A::Create, A::Forget] => Self::CreateThenForget,
            other => {
                return Err(format!(
                    "unsupported combination of plan actions {other:?}; upgrade tollgate to read plans from this Terraform version"
                ));
            }
        })
    }
}

impl From<Actions> for Vec<Action> {
    fn from(actions: Actions) -> Self {
        use Action as A;
        match actions {
            Actions::NoOp => vec![A::NoOp],
            Actions::Create => vec![A::Create],
            Actions::Read => vec![A::Read],
            Actions::Update => vec![A::Update],
            Actions::Delete => vec![A::Delete],
            Actions::Forget => vec![A::Forget],
            Actions::Open => vec![A::Open],
            Actions::Replace(ReplaceOrder::DeleteThenCreate) => vec![A::Delete, A::Create],
            Actions::Replace(ReplaceOrder::CreateThenDelete) => vec![A::Create, A::Delete],
            Actions::CreateThenForget => vec![A::Create, A::Forget],
        }
    }
}

/// A state snapshot (`prior_state`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StateSnapshot {
    /// The state JSON format version.
    #[serde(default)]
    pub format_version: Option<String>,
    /// The Terraform version that wrote the state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terraform_version: Option<String>,
    /// The values in the state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<StateValues>,
}

/// Outputs and resources of a state (or of `planned_values`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StateValues {
    /// Root module outputs.
    #[serde(default)]
    pub outputs: BTreeMap<String, StateOutput>,
    /// The root module and, nested, its children.
    #[serde(default)]
    pub root_module: StateModule,
}

/// An output value in a state.
#[derive(Clone, Serialize, Deserialize)]
pub struct StateOutput {
    /// Whether the output is sensitive.
    #[serde(default)]
    pub sensitive: bool,
    /// The value (absent when unknown).
    #[serde(default)]
    pub value: Value,
    /// The type constraint, as Terraform's JSON type notation.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub output_type: Option<Value>,
}

impl fmt::Debug for StateOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateOutput")
            .field("sensitive", &self.sensitive)
            .finish_non_exhaustive()
    }
}

/// A module in a state.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StateModule {
    /// The module address (absent for the root module).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Resources in this module.
    #[serde(default)]
    pub resources: Vec<StateResource>,
    /// Child modules.
    #[serde(default)]
    pub child_modules: Vec<StateModule>,
}

/// A resource instance in a state.
#[derive(Clone, Serialize, Deserialize)]
pub struct StateResource {
    /// Full address.
    pub address: String,
    /// `managed` or `data`.
    pub mode: ResourceMode,
    /// Resource type.
    #[serde(rename = "type")]
    pub resource_type: String,
    /// Resource name.
    pub name: String,
    /// `count`/`for_each` key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<Value>,
    /// Provider.
    #[serde(default)]
    pub provider_name: String,
    /// Attribute values (may be secret).
    #[serde(default)]
    pub values: Value,
    /// Mask of sensitive values.
    #[serde(default)]
    pub sensitive_values: Value,
    /// Whether the object is tainted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tainted: bool,
    /// Set for deposed objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deposed_key: Option<String>,
}

impl fmt::Debug for StateResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateResource")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// The result of a checkable object (a `check` block, a resource with conditions, an output
/// or a variable with validations).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckResult {
    /// What was checked.
    pub address: CheckableAddress,
    /// `pass`, `fail`, `error` or `unknown`.
    pub status: String,
    /// Per-instance results.
    #[serde(default)]
    pub instances: Vec<CheckInstance>,
}

/// The address of a checkable object.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckableAddress {
    /// `resource`, `output_value`, `check`, `var`…
    #[serde(default)]
    pub kind: String,
    /// The address for display.
    #[serde(default)]
    pub to_display: String,
    /// The object's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The module, if not root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
}

/// One instance of a checkable object.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckInstance {
    /// Its address.
    pub address: CheckInstanceAddress,
    /// `pass`, `fail`, `error` or `unknown`.
    pub status: String,
    /// The failure messages.
    #[serde(default)]
    pub problems: Vec<CheckProblem>,
}

/// The address of a check instance.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckInstanceAddress {
    /// The address for display.
    #[serde(default)]
    pub to_display: String,
    /// The `count`/`for_each` key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_key: Option<Value>,
}

/// A failed condition's message.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckProblem {
    /// The message.
    pub message: String,
}

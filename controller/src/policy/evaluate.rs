//! One evaluation: the plan and the Project as `input`, the pack's settings as
//! `data.tollgate.config`, every package's `deny` and `warn`.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::time::Duration;

use regorus::utils::limits::ExecutionTimerConfig;
use regorus::{Engine, Value};
use serde::Deserialize;
use serde_json::json;

use super::{Finding, PolicyConfig, PolicyError, PolicyGroup};
use crate::gate::CostFacts;

/// A policy that runs longer than this is broken (an accidental cross product over a big
/// plan): it fails, and the plan waits for a person.
const EVALUATION_LIMIT: Duration = Duration::from_secs(30);

/// The Project a plan belongs to, as policies see it (`input.tollgate.project`).
#[derive(Clone, Debug)]
pub struct ProjectFacts<'a> {
    /// Namespace.
    pub namespace: &'a str,
    /// Name.
    pub name: &'a str,
    /// `spec.environment`.
    pub environment: &'a str,
    /// The Project's labels.
    pub labels: &'a BTreeMap<String, String>,
}

/// What a plan is judged on.
#[derive(Clone, Debug)]
pub struct PolicyInput<'a> {
    /// Terraform's `show -json` of the saved plan.
    pub plan: &'a serde_json::Value,
    /// The Project.
    pub project: ProjectFacts<'a>,
    /// The cost estimate (`input.tollgate.cost`), when the plan could be priced.
    pub cost: Option<&'a CostFacts>,
}

/// What the policies said.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Findings {
    /// `deny` messages: a person must decide.
    pub denied: Vec<Finding>,
    /// `warn` messages: shown, not blocking.
    pub warned: Vec<Finding>,
}

pub(super) fn evaluate(
    groups: &[PolicyGroup],
    config: &PolicyConfig,
    input: &PolicyInput<'_>,
) -> Result<Findings, PolicyError> {
    let input_value = input_document(input)?;
    let data = data_document(config);
    let mut findings = Findings::default();
    for group in groups {
        let mut engine = engine_for(group)?;
        engine
            .add_data(data.clone())
            .map_err(|err| PolicyError::Input(err.to_string()))?;
        engine.set_input(input_value.clone());
        // Every rule of the group evaluated once, in one interpreter state: helper rules
        // shared by many packages (the plan's changed resources, say) are computed once.
        let tree = engine
            .eval_modules(false)
            .map_err(|err| PolicyError::Evaluate {
                group: group.name.clone(),
                rule: "its rules".into(),
                message: err.to_string(),
            })?;
        let mut packages: Vec<Vec<String>> = engine
            .get_policy_package_components()
            .map_err(|err| PolicyError::Input(err.to_string()))?
            .into_iter()
            .map(|p| p.components)
            .collect();
        packages.sort();
        packages.dedup();
        for components in packages {
            let node = components
                .iter()
                .fold(&tree, |node, component| &node[component.as_str()]);
            let package = format!("data.{}", components.join("."));
            for (rule, found) in [
                ("deny", &mut findings.denied),
                ("warn", &mut findings.warned),
            ] {
                let path = format!("{package}.{rule}");
                for message in messages(&node[rule], &group.name, &path)? {
                    found.push(Finding {
                        package: package.clone(),
                        message,
                    });
                }
            }
        }
    }
    for found in [&mut findings.denied, &mut findings.warned] {
        found.sort();
        found.dedup();
    }
    Ok(findings)
}

/// The pack's settings as policies read them: `data.tollgate.config`.
pub(super) fn data_document(config: &PolicyConfig) -> Value {
    Value::from(json!({ "tollgate": { "config": config } }))
}

/// An engine with a group's policies parsed, under the evaluation time limit.
pub(super) fn engine_for(group: &PolicyGroup) -> Result<Engine, PolicyError> {
    let mut engine = Engine::new();
    engine.set_execution_timer_config(ExecutionTimerConfig {
        limit: EVALUATION_LIMIT,
        check_interval: NonZeroU32::new(1024).unwrap_or(NonZeroU32::MIN),
    });
    for source in &group.sources {
        engine
            .add_policy(source.origin.clone(), source.text.clone())
            .map_err(|err| PolicyError::Parse {
                origin: source.origin.clone(),
                message: err.to_string(),
            })?;
    }
    Ok(engine)
}

/// The plan document with `tollgate` added beside Terraform's own keys.
fn input_document(input: &PolicyInput<'_>) -> Result<Value, PolicyError> {
    let mut document =
        Value::deserialize(input.plan).map_err(|err| PolicyError::Input(err.to_string()))?;
    let cost = input.cost.map(|c| {
        json!({
            "monthly": decimal(c.monthly),
            "delta": decimal(c.delta),
            "unpriced": c.unpriced,
        })
    });
    let project = &input.project;
    let tollgate = json!({
        "project": {
            "namespace": project.namespace,
            "name": project.name,
            "environment": project.environment,
            "labels": project.labels,
        },
        "cost": cost,
    });
    document
        .as_object_mut()
        .map_err(|_| PolicyError::Input("the plan JSON is not an object".into()))?
        .insert(Value::from("tollgate"), Value::from(tollgate));
    Ok(document)
}

fn decimal(value: rust_decimal::Decimal) -> serde_json::Value {
    use rust_decimal::prelude::ToPrimitive;
    value
        .round_dp(2)
        .to_f64()
        .map_or(serde_json::Value::Null, serde_json::Value::from)
}

/// The messages of a `deny`/`warn` value: strings, or objects with a `msg` string (the
/// conftest form).
fn messages(value: &Value, group: &str, rule: &str) -> Result<Vec<String>, PolicyError> {
    let items: Vec<&Value> = match value {
        Value::Undefined => return Ok(Vec::new()),
        Value::Set(set) => set.iter().collect(),
        Value::Array(array) => array.iter().collect(),
        other => vec![other],
    };
    items
        .into_iter()
        .map(|item| {
            let text = match item {
                Value::String(text) => Some(text.to_string()),
                Value::Object(object) => match object.get(&Value::from("msg")) {
                    Some(Value::String(text)) => Some(text.to_string()),
                    _ => None,
                },
                _ => None,
            };
            text.ok_or_else(|| PolicyError::Result {
                group: group.to_owned(),
                rule: rule.to_owned(),
                found: item.to_string(),
            })
        })
        .collect()
}

//! Unit tests of `plan_view`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use serde_json::json;

#[test]
fn module_paths() {
    assert_eq!(module_path(""), "");
    assert_eq!(module_path("module.a"), "a");
    assert_eq!(module_path("module.a[0].module.b[\"x.y\"]"), "a.b");
    assert_eq!(
        local_address("module.a[0].aws_x.y[1]", Some("module.a[0]")),
        "aws_x.y[1]"
    );
    assert_eq!(strip_index("aws_x.y[\"k\"]"), "aws_x.y");
}

#[test]
fn fields_distinguish_unknown_from_unset() {
    let after = json!({"a": "x", "b": null, "n": "256", "blk": [{"s": 8}]});
    let unknown = json!({"c": true, "blk": [{"t": true}]});
    let attrs = Attrs::new(Some(&after), Some(&unknown));
    assert_eq!(attrs.str("a"), Ok(Some("x")));
    assert_eq!(attrs.str("b"), Ok(None));
    assert_eq!(attrs.str("c"), Err(Unknown));
    assert_eq!(attrs.number("n"), Ok(Some(Decimal::from(256))));
    let blocks = attrs.blocks("blk").unwrap();
    assert_eq!(blocks.len(), 1);
    assert_eq!(blocks[0].number("s"), Ok(Some(Decimal::from(8))));
    assert_eq!(blocks[0].number("t"), Err(Unknown));
}

#[test]
fn rejects_non_plans() {
    assert!(PlanView::new(&json!([])).is_err());
    assert!(PlanView::new(&json!({"resource_changes": []})).is_err());
    assert!(PlanView::new(&json!({"format_version": "1.2", "resource_changes": 3})).is_err());
    let empty = json!({"format_version": "1.2"});
    let ok = PlanView::new(&empty).unwrap();
    assert!(ok.changes.is_empty());
}

#[test]
fn region_follows_the_resources_provider_configuration() {
    let resource = |name: &str, provider: &str| {
        (
            json!({"address": format!("aws_eip.{name}"), "mode": "managed", "type": "aws_eip", "name": name,
                   "change": {"actions": ["create"], "before": null, "after": {}}}),
            json!({"address": format!("aws_eip.{name}"), "mode": "managed", "type": "aws_eip", "name": name,
                   "provider_config_key": provider, "expressions": {}}),
        )
    };
    let (changes, config): (Vec<Value>, Vec<Value>) = [
        resource("east", "aws"),
        resource("west", "aws.west"),
        resource("somewhere", "aws.computed"),
    ]
    .into_iter()
    .unzip();
    let plan = json!({
        "format_version": "1.2",
        "resource_changes": changes,
        "configuration": {
            "provider_config": {
                "aws": {"name": "aws", "expressions": {"region": {"constant_value": "us-east-1"}}},
                "aws.west": {"name": "aws", "alias": "west", "expressions": {"region": {"constant_value": "us-west-2"}}},
                "aws.computed": {"name": "aws", "alias": "computed", "expressions": {"region": {"references": ["data.x.y"]}}}
            },
            "root_module": {"resources": config}
        }
    });
    let view = PlanView::new(&plan).unwrap();
    let region = |address: &str| view.region_of(view.change(address).unwrap());
    assert_eq!(region("aws_eip.east"), Ok(Some("us-east-1")));
    assert_eq!(region("aws_eip.west"), Ok(Some("us-west-2")));
    // A region known only at apply: not priced in some other region.
    assert_eq!(
        region("aws_eip.somewhere"),
        Err("the region of provider configuration `aws.computed` is known only at apply".into())
    );

    // Only an aliased configuration, no default one: still that configuration's region.
    let mut alias_only = plan.clone();
    alias_only["configuration"]["provider_config"] = json!({
        "aws.west": {"name": "aws", "alias": "west", "expressions": {"region": {"constant_value": "us-west-2"}}}
    });
    let view = PlanView::new(&alias_only).unwrap();
    assert_eq!(
        view.region_of(view.change("aws_eip.west").unwrap()),
        Ok(Some("us-west-2"))
    );
}

#[test]
fn region_from_variable() {
    let plan = json!({
        "format_version": "1.2",
        "variables": {"region": {"value": "eu-west-1"}},
        "configuration": {"provider_config": {"aws": {"name": "aws", "expressions": {"region": {"references": ["var.region"]}}}}}
    });
    let view = PlanView::new(&plan).unwrap();
    assert_eq!(view.default_region(), Some("eu-west-1"));
}

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
    let view_of = |plan: Value| {
        let raw = RawPlan::from_value(&plan)?;
        PlanView::new(&raw).map(|view| view.changes.len())
    };
    assert!(matches!(view_of(json!([])), Err(CostError::PlanShape(_))));
    assert!(view_of(json!({"resource_changes": []})).is_err());
    let not_a_list = view_of(json!({"format_version": "1.2", "resource_changes": 3}));
    assert!(
        matches!(not_a_list, Err(CostError::PlanShape(m)) if m.contains("expected a sequence"))
    );
    assert_eq!(view_of(json!({"format_version": "1.2"})).unwrap(), 0);
    let text_of = |text: &str| {
        let raw = RawPlan::from_json(text)?;
        PlanView::new(&raw).map(|view| view.changes.len())
    };
    assert!(matches!(
        text_of("{\"format_version\""),
        Err(CostError::PlanNotJson(_))
    ));
    assert!(matches!(text_of("[1]"), Err(CostError::PlanShape(_))));
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
    let raw = RawPlan::from_value(&plan).unwrap();
    let view = PlanView::new(&raw).unwrap();
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
    let raw = RawPlan::from_value(&alias_only).unwrap();
    let view = PlanView::new(&raw).unwrap();
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
    let raw = RawPlan::from_value(&plan).unwrap();
    let view = PlanView::new(&raw).unwrap();
    assert_eq!(view.default_region(), Some("eu-west-1"));
}

#[test]
fn addresses_with_escapes_are_read_from_the_text() {
    // for_each keys are quoted inside the address, and Terraform escapes `<`, `>` and `&`
    // as \u003c…: such strings cannot be borrowed from the text, and must still be read.
    let text = r#"{"format_version": "1.2", "planned_values": {"ignored": [1, {"x": null}]},
        "resource_changes": [{"address": "aws_eip.this[\"a\u0026b\"]", "mode": "managed",
            "type": "aws_eip", "name": "this", "index": "a&b",
            "change": {"actions": ["delete", "create"], "before": {"domain": "vpc"},
                       "after": {"domain": "vpc"}, "after_unknown": {"id": true},
                       "before_sensitive": false, "after_sensitive": {}}}]}"#;
    let raw = RawPlan::from_json(text).unwrap();
    let view = PlanView::new(&raw).unwrap();
    let change = view.change("aws_eip.this[\"a&b\"]").unwrap();
    assert_eq!(change.action, Action::Replace);
    assert_eq!(change.after_attrs().str("domain"), Ok(Some("vpc")));
    assert_eq!(change.after_attrs().str("id"), Err(Unknown));
    assert_eq!(change.before_attrs().str("domain"), Ok(Some("vpc")));
}

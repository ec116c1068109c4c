//! The plan model on hand-written `terraform show -json` documents shaped like Terraform's
//! (format 1.2): actions, drift, checks, summary and risk flags, redaction, strictness.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use serde_json::{Value, json};
use tollgate::plan::{
    Actions, Plan, PlanError, ReplaceOrder, ResourceMode, RiskKind, SENSITIVE_PLACEHOLDER,
};
use tollgate::terraform::Redactor;

const DB_PASSWORD: &str = "Sup3r-Secret-DB-pw";
const API_KEY: &str = "api-key-0123456789";

fn rc(address: &str, ty: &str, actions: &[&str], before: Value, after: Value) -> Value {
    let name = address.rsplit('.').next().unwrap();
    json!({
        "address": address,
        "mode": "managed",
        "type": ty,
        "name": name,
        "provider_name": "registry.terraform.io/hashicorp/aws",
        "change": {
            "actions": actions,
            "before": before,
            "after": after,
            "after_unknown": {},
            "before_sensitive": {},
            "after_sensitive": {},
        }
    })
}

/// A plan touching AWS resources in every way the summary cares about.
fn aws_plan() -> Value {
    let mut db = rc(
        "module.db.aws_db_instance.this",
        "aws_db_instance",
        &["delete"],
        json!({"identifier": "orders", "password": DB_PASSWORD, "publicly_accessible": false}),
        Value::Null,
    );
    db["module_address"] = json!("module.db");
    db["change"]["before_sensitive"] = json!({"password": true});
    db["change"]["after_sensitive"] = json!(false);

    let mut bucket = rc(
        "aws_s3_bucket.assets",
        "aws_s3_bucket",
        &["create", "delete"],
        json!({"bucket": "assets-old"}),
        json!({"bucket": "assets-new"}),
    );
    bucket["change"]["replace_paths"] = json!([["bucket"]]);
    bucket["action_reason"] = json!("replace_because_cannot_update");

    let role = rc(
        "aws_iam_role.app",
        "aws_iam_role",
        &["create"],
        Value::Null,
        json!({"name": "app"}),
    );
    let sg = rc(
        "aws_security_group.web",
        "aws_security_group",
        &["update"],
        json!({"ingress": [{"cidr_blocks": ["10.0.0.0/8"], "from_port": 443}]}),
        json!({"ingress": [{"cidr_blocks": ["0.0.0.0/0"], "from_port": 443}]}),
    );
    let lb = rc(
        "aws_lb.public",
        "aws_lb",
        &["create"],
        Value::Null,
        json!({"internal": false, "name": "public"}),
    );
    let mut secret = rc(
        "aws_secretsmanager_secret_version.api",
        "aws_secretsmanager_secret_version",
        &["update"],
        json!({"secret_string": "old-value-xyz", "version_stages": ["AWSCURRENT"]}),
        json!({"secret_string": API_KEY, "version_stages": ["AWSCURRENT"]}),
    );
    secret["change"]["before_sensitive"] = json!({"secret_string": true});
    secret["change"]["after_sensitive"] = json!({"secret_string": true});
    let noop = rc(
        "aws_vpc.main",
        "aws_vpc",
        &["no-op"],
        json!({"cidr_block": "10.0.0.0/16"}),
        json!({"cidr_block": "10.0.0.0/16"}),
    );
    let forget = rc(
        "aws_instance.legacy",
        "aws_instance",
        &["forget"],
        json!({"instance_type": "t3.micro"}),
        Value::Null,
    );
    let mut read = rc(
        "data.aws_ami.ubuntu",
        "aws_ami",
        &["read"],
        Value::Null,
        json!({}),
    );
    read["mode"] = json!("data");
    read["action_reason"] = json!("read_because_config_unknown");

    let mut drift = rc(
        "aws_instance.web",
        "aws_instance",
        &["update"],
        json!({"instance_type": "t3.micro", "tags": {"Owner": "team-a"}}),
        json!({"instance_type": "t3.large", "tags": {"Owner": "team-a"}}),
    );
    drift["change"]["some_future_field"] = json!({"x": 1});

    json!({
        "format_version": "1.2",
        "terraform_version": "1.15.5",
        "a_future_top_level_field": [1, 2, 3],
        "variables": {
            "db_password": {"value": DB_PASSWORD},
            "region": {"value": "eu-west-1"}
        },
        "planned_values": {
            "outputs": {
                "endpoint": {"sensitive": false, "value": "db.example"},
                "api_key": {"sensitive": true, "value": API_KEY}
            },
            "root_module": {
                "resources": [{
                    "address": "aws_secretsmanager_secret_version.api",
                    "mode": "managed",
                    "type": "aws_secretsmanager_secret_version",
                    "name": "api",
                    "provider_name": "registry.terraform.io/hashicorp/aws",
                    "schema_version": 0,
                    "values": {"secret_string": API_KEY},
                    "sensitive_values": {"secret_string": true}
                }],
                "child_modules": [{
                    "address": "module.db",
                    "resources": []
                }]
            }
        },
        "resource_changes": [db, bucket, role, sg, lb, secret, noop, forget, read],
        "resource_drift": [drift],
        "output_changes": {
            "api_key": {
                "actions": ["update"],
                "before": "old-value-xyz",
                "after": API_KEY,
                "after_unknown": false,
                "before_sensitive": true,
                "after_sensitive": true
            },
            "endpoint": {
                "actions": ["no-op"],
                "before": "db.example",
                "after": "db.example",
                "after_unknown": false,
                "before_sensitive": false,
                "after_sensitive": false
            }
        },
        "prior_state": {
            "format_version": "1.0",
            "terraform_version": "1.15.5",
            "values": {
                "outputs": {"api_key": {"sensitive": true, "value": "old-value-xyz", "type": "string"}},
                "root_module": {}
            }
        },
        "configuration": {
            "root_module": {
                "variables": {
                    "db_password": {"sensitive": true, "default": DB_PASSWORD},
                    "region": {"default": "eu-west-1"}
                },
                "module_calls": {
                    "db": {
                        "source": "./modules/postgres",
                        "module": {
                            "variables": {"password": {"sensitive": true, "default": DB_PASSWORD}}
                        }
                    }
                }
            }
        },
        "checks": [{
            "address": {"kind": "check", "to_display": "check.health", "name": "health"},
            "status": "fail",
            "instances": [{
                "address": {"to_display": "check.health"},
                "status": "fail",
                "problems": [{"message": "endpoint is not healthy"}]
            }]
        }, {
            "address": {"kind": "output_value", "to_display": "output.endpoint", "name": "endpoint"},
            "status": "pass"
        }],
        "relevant_attributes": [{"resource": "aws_instance.web", "attribute": ["instance_type"]}],
        "timestamp": "2026-11-25T09:00:00Z",
        "applyable": true,
        "complete": true,
        "errored": false
    })
}

fn parse(v: &Value) -> Result<Plan, PlanError> {
    Plan::from_json(&v.to_string())
}

#[test]
fn parses_actions_and_fields() {
    let plan = parse(&aws_plan()).unwrap();
    assert_eq!(plan.terraform_version.as_deref(), Some("1.15.5"));
    let actions: Vec<(&str, Actions)> = plan
        .resource_changes
        .iter()
        .map(|rc| (rc.address.as_str(), rc.change.actions))
        .collect();
    assert_eq!(
        actions,
        vec![
            ("module.db.aws_db_instance.this", Actions::Delete),
            (
                "aws_s3_bucket.assets",
                Actions::Replace(ReplaceOrder::CreateThenDelete)
            ),
            ("aws_iam_role.app", Actions::Create),
            ("aws_security_group.web", Actions::Update),
            ("aws_lb.public", Actions::Create),
            ("aws_secretsmanager_secret_version.api", Actions::Update),
            ("aws_vpc.main", Actions::NoOp),
            ("aws_instance.legacy", Actions::Forget),
            ("data.aws_ami.ubuntu", Actions::Read),
        ]
    );
    let bucket = &plan.resource_changes[1];
    assert_eq!(bucket.change.replace_paths, vec![vec![json!("bucket")]]);
    assert_eq!(
        bucket.action_reason.as_deref(),
        Some("replace_because_cannot_update")
    );
    assert_eq!(plan.resource_changes[8].mode, ResourceMode::Data);
    assert_eq!(
        plan.resource_changes[0].module_address.as_deref(),
        Some("module.db")
    );
    assert_eq!(plan.resource_drift.len(), 1);
    assert_eq!(plan.resource_drift[0].change.actions, Actions::Update);
    assert_eq!(
        plan.resource_drift[0].change.after["instance_type"],
        "t3.large"
    );
    assert_eq!(plan.checks[0].status, "fail");
    assert_eq!(
        plan.checks[0].instances[0].problems[0].message,
        "endpoint is not healthy"
    );
    let prior = plan.prior_state.as_ref().unwrap();
    assert!(prior.values.as_ref().unwrap().outputs["api_key"].sensitive);
    assert_eq!(plan.sensitive_variables(), vec!["db_password".to_owned()]);
    assert!(plan.has_changes());
}

#[test]
fn delete_then_create_is_replace() {
    let mut v = aws_plan();
    v["resource_changes"][1]["change"]["actions"] = json!(["delete", "create"]);
    let plan = parse(&v).unwrap();
    assert_eq!(
        plan.resource_changes[1].change.actions,
        Actions::Replace(ReplaceOrder::DeleteThenCreate)
    );
}

#[test]
fn summary_counts_addresses_and_risks() {
    let plan = parse(&aws_plan()).unwrap();
    let s = plan.summary();
    assert_eq!(
        (s.add, s.change, s.destroy, s.replace, s.read, s.forget),
        (2, 2, 1, 1, 1, 1)
    );
    assert_eq!(s.terraform_counts(), (3, 2, 2));
    assert_eq!(s.output_changes, 1);
    assert_eq!(s.drifted, 1);
    assert_eq!(s.drift_addresses, vec!["aws_instance.web".to_owned()]);
    assert_eq!(s.failed_checks, vec!["check.health".to_owned()]);
    assert!(s.has_changes);
    assert_eq!(
        s.addresses.create,
        vec!["aws_iam_role.app".to_owned(), "aws_lb.public".to_owned()]
    );
    assert_eq!(s.addresses.replace, vec!["aws_s3_bucket.assets".to_owned()]);

    let risks: Vec<(RiskKind, &str)> = s
        .risks
        .iter()
        .map(|r| (r.kind, r.address.as_str()))
        .collect();
    assert_eq!(
        risks,
        vec![
            (RiskKind::StatefulDestroy, "module.db.aws_db_instance.this"),
            (RiskKind::StatefulReplace, "aws_s3_bucket.assets"),
            (RiskKind::IamChange, "aws_iam_role.app"),
            (RiskKind::PublicExposure, "aws_security_group.web"),
            (RiskKind::PublicExposure, "aws_lb.public"),
        ]
    );
    assert!(
        s.risks[3].detail.contains("newly public"),
        "{:?}",
        s.risks[3]
    );
    assert!(s.has_risk(RiskKind::IamChange));
}

#[test]
fn summary_serialises_camel_case_without_values() {
    let plan = parse(&aws_plan()).unwrap();
    let json = serde_json::to_value(plan.summary()).unwrap();
    assert_eq!(json["add"], 2);
    assert_eq!(json["hasChanges"], true);
    assert_eq!(json["outputChanges"], 1);
    assert_eq!(json["driftAddresses"][0], "aws_instance.web");
    assert_eq!(json["failedChecks"][0], "check.health");
    assert_eq!(
        json["addresses"]["delete"][0],
        "module.db.aws_db_instance.this"
    );
    assert_eq!(json["risks"][0]["kind"], "StatefulDestroy");
    assert_eq!(json["risks"][0]["resourceType"], "aws_db_instance");
    let text = json.to_string();
    assert!(!text.contains(DB_PASSWORD) && !text.contains(API_KEY));
    // It round-trips (status is read back by the controller).
    let back: tollgate::plan::PlanSummary = serde_json::from_value(json).unwrap();
    assert_eq!(back, plan.summary());
}

#[test]
fn empty_plan_has_no_changes() {
    let plan = parse(&json!({"format_version": "1.0"})).unwrap();
    let s = plan.summary();
    assert!(!s.has_changes);
    assert_eq!(s.add + s.change + s.destroy + s.replace + s.read, 0);
    assert_eq!(
        serde_json::to_value(&s).unwrap(),
        json!({
            "add": 0, "change": 0, "destroy": 0, "replace": 0, "read": 0,
            "hasChanges": false, "addresses": {}
        })
    );
}

#[test]
fn redacted_form_hides_every_sensitive_value() {
    let plan = parse(&aws_plan()).unwrap();
    let redacted = plan.redacted(None);
    let text = redacted.to_string();
    assert!(!text.contains(DB_PASSWORD), "{text}");
    assert!(!text.contains(API_KEY), "{text}");
    assert!(!text.contains("old-value-xyz"), "{text}");
    let v = redacted.as_value();
    assert_eq!(
        v["resource_changes"][0]["change"]["before"]["password"],
        SENSITIVE_PLACEHOLDER
    );
    // Non-sensitive values stay readable.
    assert_eq!(
        v["resource_changes"][0]["change"]["before"]["identifier"],
        "orders"
    );
    assert_eq!(
        v["resource_changes"][5]["change"]["after"]["version_stages"][0],
        "AWSCURRENT"
    );
    assert_eq!(
        v["output_changes"]["api_key"]["after"],
        SENSITIVE_PLACEHOLDER
    );
    assert_eq!(v["output_changes"]["endpoint"]["after"], "db.example");
    assert_eq!(
        v["variables"]["db_password"]["value"],
        SENSITIVE_PLACEHOLDER
    );
    assert_eq!(v["variables"]["region"]["value"], "eu-west-1");
    assert_eq!(
        v["planned_values"]["outputs"]["api_key"]["value"],
        SENSITIVE_PLACEHOLDER
    );
    assert_eq!(
        v["configuration"]["root_module"]["module_calls"]["db"]["module"]["variables"]["password"]
            ["default"],
        SENSITIVE_PLACEHOLDER
    );
    // Debug output of the model is redacted too.
    let debug = format!("{plan:?} {:?}", plan.resource_changes);
    assert!(
        !debug.contains(DB_PASSWORD) && !debug.contains(API_KEY),
        "{debug}"
    );
}

#[test]
fn redactor_catches_secrets_terraform_does_not_mark() {
    let mut v = aws_plan();
    // A secret that reached a non-sensitive attribute (e.g. through a provisioner's command).
    v["resource_changes"][2]["change"]["after"]["description"] = json!(format!("key {API_KEY}"));
    v["resource_changes"][2]["change"]["after"][API_KEY] = json!("as a key");
    let plan = parse(&v).unwrap();
    let text = plan.redacted(Some(&Redactor::new([API_KEY]))).to_string();
    assert!(!text.contains(API_KEY), "{text}");
    assert!(text.contains("key [REDACTED]"));
}

#[test]
fn unknown_action_is_an_error() {
    let mut v = aws_plan();
    v["resource_changes"][0]["change"]["actions"] = json!(["explode"]);
    let err = parse(&v).unwrap_err();
    assert!(matches!(err, PlanError::Json(_)), "{err}");
    assert!(err.to_string().contains("explode"), "{err}");
}

#[test]
fn impossible_action_combination_is_an_error() {
    let mut v = aws_plan();
    v["resource_changes"][0]["change"]["actions"] = json!(["update", "delete"]);
    let err = parse(&v).unwrap_err();
    assert!(err.to_string().contains("unsupported combination"), "{err}");
    v["resource_changes"][0]["change"]["actions"] = json!([]);
    assert!(parse(&v).is_err());
}

#[test]
fn format_major_version_must_be_1() {
    for bad in ["2.0", "0.2", ""] {
        let err = parse(&json!({"format_version": bad})).unwrap_err();
        assert!(
            matches!(err, PlanError::UnsupportedFormat { .. }),
            "{bad}: {err}"
        );
    }
    for good in ["1.0", "1.2", "1.99"] {
        parse(&json!({"format_version": good})).unwrap();
    }
    assert!(parse(&json!({"resource_changes": []})).is_err());
}

#[test]
fn actions_serialise_back_to_terraform_lists() {
    for (list, expected) in [
        (
            json!(["create", "delete"]),
            Actions::Replace(ReplaceOrder::CreateThenDelete),
        ),
        (
            json!(["delete", "create"]),
            Actions::Replace(ReplaceOrder::DeleteThenCreate),
        ),
        (json!(["create", "forget"]), Actions::CreateThenForget),
        (json!(["no-op"]), Actions::NoOp),
    ] {
        let a: Actions = serde_json::from_value(list.clone()).unwrap();
        assert_eq!(a, expected);
        assert_eq!(serde_json::to_value(a).unwrap(), list);
    }
}

proptest! {
    /// Whatever the secret and wherever the sensitive mask puts it, the redacted plan does not
    /// contain it.
    #[test]
    fn sensitive_values_never_survive_redaction(
        secret in "[A-Za-z0-9!#%&*+=?@^_~-]{6,40}",
        nested in any::<bool>(),
        in_list in any::<bool>(),
    ) {
        let (after, mask) = match (nested, in_list) {
            (false, false) => (json!({"v": secret}), json!({"v": true})),
            (true, false) => (json!({"o": {"v": secret, "w": "x"}}), json!({"o": {"v": true}})),
            (_, true) => (json!({"l": ["plain", secret]}), json!({"l": [false, true]})),
        };
        let mut change = rc("aws_ssm_parameter.p", "aws_ssm_parameter", &["create"], Value::Null, after);
        change["change"]["after_sensitive"] = mask;
        let v = json!({"format_version": "1.2", "resource_changes": [change]});
        let plan = Plan::from_json(&v.to_string()).unwrap();
        let text = plan.redacted(None).to_string();
        prop_assert!(!text.contains(&secret), "{}", text);
        let debug = format!("{plan:?}");
        prop_assert!(!debug.contains(&secret));
    }
}

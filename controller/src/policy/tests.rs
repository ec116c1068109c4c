//! Every built-in rule on plan-JSON fixtures, violating and compliant; user policies; errors.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::*;
use crate::gate::CostFacts;

/// One entry of `resource_changes` as Terraform writes it.
fn change(address: &str, actions: &[&str], after: Value) -> Value {
    let (module, resource) = match address.rsplit_once(".aws_") {
        Some((module, rest)) => (Some(module), format!("aws_{rest}")),
        None => (None, address.to_owned()),
    };
    let kind = resource.split('.').next().unwrap_or_default();
    let mut entry = json!({
        "address": address,
        "type": kind,
        "change": { "actions": actions, "before": null, "after": after, "after_unknown": {} },
    });
    if let Some(module) = module {
        entry["module_address"] = json!(module);
    }
    entry
}

fn create(address: &str, after: Value) -> Value {
    change(address, &["create"], after)
}

fn plan(changes: Vec<Value>) -> Value {
    json!({ "format_version": "1.2", "resource_changes": changes })
}

fn try_judge(
    set: &PolicySet,
    plan: &Value,
    environment: &str,
    cost: Option<&CostFacts>,
) -> Result<Findings, PolicyError> {
    let labels = BTreeMap::new();
    set.evaluate(&PolicyInput {
        plan,
        project: ProjectFacts {
            namespace: "team-a",
            name: "shop",
            environment,
            labels: &labels,
        },
        cost,
    })
}

fn judge_with(
    set: &PolicySet,
    plan: &Value,
    environment: &str,
    cost: Option<&CostFacts>,
) -> Findings {
    try_judge(set, plan, environment, cost).unwrap()
}

fn builtin() -> PolicySet {
    PolicySet::new(Vec::new(), None, PolicyConfig::default())
}

/// The ids of the `deny` findings (the text before the first colon).
fn denied(plan: &Value, environment: &str) -> Vec<String> {
    ids(&judge_with(&builtin(), plan, environment, None).denied)
}

fn ids(found: &[Finding]) -> Vec<String> {
    let mut ids: Vec<String> = found
        .iter()
        .map(|f| f.message.split(':').next().unwrap_or_default().to_owned())
        .collect();
    ids.dedup();
    ids
}

/// Each plan of one resource is denied by `rule` alone.
fn assert_denied_by(rule: &str, cases: &[Value]) {
    for case in cases {
        assert_eq!(denied(&plan(vec![case.clone()]), "dev"), [rule], "{case}");
    }
}

/// Each plan of one resource is denied by nothing.
fn assert_allowed(cases: &[Value]) {
    for case in cases {
        assert!(
            denied(&plan(vec![case.clone()]), "dev").is_empty(),
            "{case}"
        );
    }
}

fn tags() -> Value {
    json!({ "tollgate.dev/project": "shop", "tollgate.dev/environment": "dev" })
}

/// A bucket as the shipped modules write it: every setting beside it.
fn compliant_bucket() -> Vec<Value> {
    vec![
        create(
            "module.site.aws_s3_bucket.this",
            json!({ "bucket": "b", "tags_all": tags() }),
        ),
        create(
            "module.site.aws_s3_bucket_public_access_block.this",
            json!({ "block_public_acls": true, "block_public_policy": true, "ignore_public_acls": true, "restrict_public_buckets": true }),
        ),
        create(
            "module.site.aws_s3_bucket_server_side_encryption_configuration.this",
            json!({}),
        ),
    ]
}

fn database(overrides: Value) -> Value {
    let mut after = json!({
        "storage_encrypted": true, "publicly_accessible": false, "deletion_protection": true,
        "backup_retention_period": 7, "instance_class": "db.t4g.micro", "tags_all": tags(),
    });
    for (key, value) in overrides.as_object().unwrap() {
        after[key] = value.clone();
    }
    create("module.db.aws_db_instance.this", after)
}

#[test]
fn compliant_resources_produce_no_findings() {
    let mut changes = compliant_bucket();
    changes.push(database(json!({})));
    changes.push(create(
        "aws_security_group.web",
        json!({ "ingress": [{ "protocol": "tcp", "from_port": 443, "to_port": 443, "cidr_blocks": ["0.0.0.0/0"], "ipv6_cidr_blocks": [] }], "tags_all": tags() }),
    ));
    changes.push(create(
        "aws_ebs_volume.data",
        json!({ "encrypted": true, "tags_all": tags() }),
    ));
    let findings = judge_with(&builtin(), &plan(changes), "production", None);
    assert_eq!(findings, Findings::default());
}

#[test]
fn a_bucket_without_public_access_block_or_encryption_is_denied() {
    let bucket = create(
        "module.site.aws_s3_bucket.this",
        json!({ "bucket": "b", "tags_all": tags() }),
    );
    assert_eq!(
        denied(&plan(vec![bucket]), "dev"),
        ["S3_ENCRYPTION", "S3_PUBLIC_ACCESS_BLOCK"]
    );
}

#[test]
fn settings_in_another_module_do_not_count_for_a_bucket() {
    let mut changes = compliant_bucket();
    changes[0] = create(
        "module.other.aws_s3_bucket.this",
        json!({ "bucket": "b", "tags_all": tags() }),
    );
    assert_eq!(
        denied(&plan(changes), "dev"),
        ["S3_ENCRYPTION", "S3_PUBLIC_ACCESS_BLOCK"]
    );
}

#[test]
fn a_public_access_block_with_a_setting_off_is_denied() {
    let mut changes = compliant_bucket();
    changes[1]["change"]["after"]["restrict_public_buckets"] = json!(false);
    let findings = judge_with(&builtin(), &plan(changes), "dev", None);
    assert_eq!(ids(&findings.denied), ["S3_PUBLIC_ACCESS_BLOCK"]);
    assert!(
        findings.denied[0]
            .message
            .contains("restrict_public_buckets")
    );
    assert_eq!(findings.denied[0].package, "data.tollgate.builtin.s3");
}

#[test]
fn public_canned_acls_are_denied_private_is_not() {
    for (acl, expected) in [
        ("public-read", vec!["S3_PUBLIC_ACL"]),
        ("public-read-write", vec!["S3_PUBLIC_ACL"]),
        ("private", vec![]),
    ] {
        let acl = create("aws_s3_bucket_acl.a", json!({ "acl": acl }));
        assert_eq!(denied(&plan(vec![acl]), "dev"), expected);
    }
}

#[test]
fn deleted_and_untouched_resources_are_not_judged() {
    let mut gone = change("module.site.aws_s3_bucket.old", &["delete"], Value::Null);
    gone["change"]["before"] = json!({ "bucket": "old" });
    let kept = change(
        "module.site.aws_s3_bucket.kept",
        &["no-op"],
        json!({ "bucket": "kept" }),
    );
    assert!(denied(&plan(vec![gone, kept]), "dev").is_empty());
}

#[test]
fn unencrypted_ebs_volumes_are_denied_in_every_shape() {
    let cases = [
        create("aws_ebs_volume.v", json!({ "encrypted": false })),
        create("aws_ebs_volume.v", json!({})),
        create(
            "aws_instance.i",
            json!({ "instance_type": "t3.micro", "root_block_device": [{ "encrypted": false }] }),
        ),
        create(
            "aws_instance.i",
            json!({ "instance_type": "t3.micro", "ebs_block_device": [{ "encrypted": true }, { "encrypted": false }] }),
        ),
        create(
            "aws_launch_template.t",
            json!({ "block_device_mappings": [{ "ebs": [{ "encrypted": "false" }] }] }),
        ),
    ];
    assert_denied_by("EBS_ENCRYPTION", &cases);
    let fine = [
        create(
            "aws_instance.i",
            json!({ "instance_type": "t3.micro", "root_block_device": [{ "encrypted": true }] }),
        ),
        create(
            "aws_launch_template.t",
            json!({ "block_device_mappings": [{ "ebs": [{ "encrypted": "true" }] }] }),
        ),
    ];
    assert_allowed(&fine);
}

#[test]
fn databases_must_be_encrypted_and_private() {
    assert_eq!(
        denied(
            &plan(vec![database(json!({ "storage_encrypted": false }))]),
            "dev"
        ),
        ["RDS_ENCRYPTION"]
    );
    assert_eq!(
        denied(
            &plan(vec![database(json!({ "publicly_accessible": true }))]),
            "dev"
        ),
        ["RDS_PUBLIC"]
    );
}

#[test]
fn deletion_protection_is_required_in_production_only() {
    let unprotected = plan(vec![database(json!({ "deletion_protection": false }))]);
    assert_eq!(
        denied(&unprotected, "production"),
        ["RDS_DELETION_PROTECTION"]
    );
    assert!(denied(&unprotected, "staging").is_empty());
}

#[test]
fn a_database_without_backups_is_a_warning() {
    let findings = judge_with(
        &builtin(),
        &plan(vec![database(json!({ "backup_retention_period": 0 }))]),
        "dev",
        None,
    );
    assert!(findings.denied.is_empty());
    assert_eq!(ids(&findings.warned), ["RDS_BACKUP_RETENTION"]);
}

#[test]
fn admin_ports_open_to_the_internet_are_denied_in_each_rule_shape() {
    let cases = [
        create(
            "aws_security_group.a",
            json!({ "ingress": [{ "protocol": "tcp", "from_port": 0, "to_port": 1024, "cidr_blocks": ["0.0.0.0/0"] }] }),
        ),
        create(
            "aws_security_group.a",
            json!({ "ingress": [{ "protocol": "-1", "from_port": 0, "to_port": 0, "ipv6_cidr_blocks": ["::/0"] }] }),
        ),
        create(
            "aws_security_group_rule.r",
            json!({ "type": "ingress", "protocol": "tcp", "from_port": 3389, "to_port": 3389, "cidr_blocks": ["0.0.0.0/0"] }),
        ),
        create(
            "aws_vpc_security_group_ingress_rule.r",
            json!({ "ip_protocol": "tcp", "from_port": 22, "to_port": 22, "cidr_ipv4": "0.0.0.0/0" }),
        ),
        create(
            "aws_vpc_security_group_ingress_rule.r",
            json!({ "ip_protocol": "-1", "cidr_ipv6": "::/0" }),
        ),
    ];
    assert_denied_by("OPEN_ADMIN_PORT", &cases);
    let fine = [
        create(
            "aws_security_group.a",
            json!({ "ingress": [{ "protocol": "tcp", "from_port": 22, "to_port": 22, "cidr_blocks": ["10.0.0.0/8"] }] }),
        ),
        create(
            "aws_security_group_rule.r",
            json!({ "type": "egress", "protocol": "-1", "from_port": 0, "to_port": 0, "cidr_blocks": ["0.0.0.0/0"] }),
        ),
        create(
            "aws_vpc_security_group_ingress_rule.r",
            json!({ "ip_protocol": "tcp", "from_port": 443, "to_port": 443, "cidr_ipv4": "0.0.0.0/0" }),
        ),
    ];
    assert_allowed(&fine);
}

#[test]
fn resources_without_the_required_tags_are_denied() {
    let untagged = create(
        "aws_ebs_volume.v",
        json!({ "encrypted": true, "tags_all": { "tollgate.dev/project": "shop" } }),
    );
    let findings = judge_with(&builtin(), &plan(vec![untagged]), "dev", None);
    assert_eq!(ids(&findings.denied), ["REQUIRED_TAGS"]);
    assert!(
        findings.denied[0]
            .message
            .contains("tollgate.dev/environment")
    );
}

#[test]
fn instance_types_follow_the_environment_allow_list() {
    let config = PolicyConfig {
        instance_types: BTreeMap::from([("production".into(), vec!["m7i.*".into()])]),
        ..PolicyConfig::default()
    };
    let set = PolicySet::new(Vec::new(), None, config);
    let instance = |size: &str| {
        plan(vec![create(
            "aws_instance.i",
            json!({ "instance_type": size, "root_block_device": [{ "encrypted": true }] }),
        )])
    };
    let denied_in =
        |size: &str, env: &str| ids(&judge_with(&set, &instance(size), env, None).denied);
    assert_eq!(
        denied_in("m5.large", "production"),
        ["INSTANCE_TYPE_ALLOWED"]
    );
    assert!(denied_in("m7i.large", "production").is_empty());
    assert!(denied_in("m5.large", "staging").is_empty());
}

#[test]
fn a_disabled_rule_is_silent() {
    let config = PolicyConfig {
        disabled_rules: vec!["S3_ENCRYPTION".into()],
        ..PolicyConfig::default()
    };
    let set = PolicySet::new(Vec::new(), None, config);
    let bucket = create(
        "module.site.aws_s3_bucket.this",
        json!({ "bucket": "b", "tags_all": tags() }),
    );
    assert_eq!(
        ids(&judge_with(&set, &plan(vec![bucket]), "dev", None).denied),
        ["S3_PUBLIC_ACCESS_BLOCK"]
    );
}

fn source(origin: &str, text: &str) -> PolicySource {
    PolicySource {
        origin: origin.into(),
        text: text.into(),
    }
}

#[test]
fn conftest_style_user_policies_see_the_plan_project_and_cost() {
    let cap = source(
        "configmap tollgate-system/cost cap.rego",
        r#"package costs
deny contains {"msg": sprintf("%s costs %v a month, above 100", [input.tollgate.project.name, input.tollgate.cost.monthly])} if {
	input.tollgate.cost.monthly > 100
}
warn contains msg if {
	count(input.resource_changes) > 0
	msg := "changes resources"
}"#,
    );
    let set = PolicySet::new(vec![cap], None, PolicyConfig::default());
    let cost = |monthly: i64| CostFacts {
        monthly: Decimal::from(monthly),
        delta: Decimal::ZERO,
        unpriced: 0,
    };
    let empty = plan(vec![]);
    let expensive = judge_with(&set, &empty, "dev", Some(&cost(250)));
    assert_eq!(
        expensive.denied,
        [Finding {
            package: "data.costs".into(),
            message: "shop costs 250 a month, above 100".into()
        }]
    );
    assert!(
        judge_with(&set, &empty, "dev", Some(&cost(50)))
            .denied
            .is_empty()
    );
    let changing = plan(vec![create(
        "aws_ebs_volume.v",
        json!({ "encrypted": true }),
    )]);
    assert_eq!(
        judge_with(&set, &changing, "dev", None).warned[0].message,
        "changes resources"
    );
}

#[test]
fn a_namespace_policy_cannot_switch_off_the_built_in_pack() {
    let sabotage = source(
        "configmap team-a/quiet rules.rego",
        "package tollgate.builtin.lib\nenabled(_) := false\ndeny contains \"namespace rule\" if true",
    );
    let set = PolicySet::new(
        Vec::new(),
        Some(("team-a".into(), vec![sabotage])),
        PolicyConfig::default(),
    );
    let bucket = create(
        "module.site.aws_s3_bucket.this",
        json!({ "bucket": "b", "tags_all": tags() }),
    );
    let found = judge_with(&set, &plan(vec![bucket]), "dev", None);
    let messages: Vec<&str> = found.denied.iter().map(|f| f.message.as_str()).collect();
    assert!(messages.contains(&"namespace rule"), "{messages:?}");
    assert_eq!(
        ids(&found.denied),
        ["namespace rule", "S3_ENCRYPTION", "S3_PUBLIC_ACCESS_BLOCK"]
    );
}

#[test]
fn a_broken_policy_is_an_error_naming_file_and_line() {
    let broken = source(
        "configmap tollgate-system/broken rules.rego",
        "package broken\n\ndeny contains msg if {\n\tmsg := \n}\n",
    );
    let set = PolicySet::new(vec![broken], None, PolicyConfig::default());
    let err = try_judge(&set, &plan(vec![]), "dev", None).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, PolicyError::Parse { .. }), "{text}");
    assert!(
        text.contains("configmap tollgate-system/broken rules.rego"),
        "{text}"
    );
    assert!(
        text.contains(":4:") || text.contains("line 4") || text.contains("5:"),
        "{text}"
    );
}

#[test]
fn a_deny_rule_that_is_not_messages_is_an_error() {
    let odd = source("odd.rego", "package odd\ndeny contains 42 if true");
    let set = PolicySet::new(vec![odd], None, PolicyConfig::default());
    let err = try_judge(&set, &plan(vec![]), "dev", None).unwrap_err();
    assert!(matches!(err, PolicyError::Result { .. }), "{err}");
}

#[test]
fn the_digest_follows_policies_and_configuration() {
    let one = PolicySet::new(
        vec![source("a.rego", "package a")],
        None,
        PolicyConfig::default(),
    );
    let same = PolicySet::new(
        vec![source("a.rego", "package a")],
        None,
        PolicyConfig::default(),
    );
    let edited = PolicySet::new(
        vec![source("a.rego", "package a\n")],
        None,
        PolicyConfig::default(),
    );
    let configured = PolicySet::new(
        vec![source("a.rego", "package a")],
        None,
        PolicyConfig {
            disabled_rules: vec!["S3_ENCRYPTION".into()],
            ..PolicyConfig::default()
        },
    );
    assert_eq!(one.digest(), same.digest());
    assert_ne!(one.digest(), edited.digest());
    assert_ne!(one.digest(), configured.digest());
}

#[test]
fn environments_annotation_selects_policies() {
    assert!(applies_to_environment(None, "dev"));
    assert!(applies_to_environment(
        Some("staging, production"),
        "production"
    ));
    assert!(!applies_to_environment(Some("staging,production"), "dev"));
}

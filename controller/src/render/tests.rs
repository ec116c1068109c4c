//! Unit tests of `render`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use proptest::prelude::*;

fn catalog() -> (tempfile::TempDir, Catalog) {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("echo");
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("variables.tf"),
        "variable \"value\" {\n  type = any\n}\nvariable \"token\" {\n  type      = string\n  default   = null\n  sensitive = true\n}\n",
    )
    .unwrap();
    fs::write(dir.join("outputs.tf"), "output \"value\" {\n  value = var.value\n}\noutput \"secret\" {\n  value     = \"s\"\n  sensitive = true\n}\n").unwrap();
    let aws = root.path().join("cloudy");
    fs::create_dir_all(&aws).unwrap();
    fs::write(aws.join("versions.tf"), "terraform {\n  required_providers {\n    aws = { source = \"hashicorp/aws\", version = \"~> 5.80\" }\n  }\n}\n").unwrap();
    let catalog = Catalog::load(root.path()).unwrap();
    (root, catalog)
}

fn project(spec: serde_json::Value) -> Project {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "tollgate.dev/v1alpha1", "kind": "Project",
        "metadata": {"name": "shop", "namespace": "team-a"}, "spec": spec
    }))
    .unwrap()
}

fn echo_project(value: &Value) -> Project {
    project(
        serde_json::json!({"environment": "dev", "components": [{"name": "app", "module": "echo", "inputs": {"value": value}}]}),
    )
}

fn variables(rendered: &Rendered) -> Value {
    serde_json::from_str(&rendered.variables).unwrap()
}

fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[$%{}\"\\\\\n\r\t<EOF x]{0,24}",
        Just("%%{%${path.cwd}".to_owned()),
        Just("${file(\"/etc/passwd\")}".to_owned()),
        Just("%{ for x in [1] }${x}%{ endfor }".to_owned()),
    ]
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        hostile_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(hostile_string(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    /// No input value reaches the HCL: the root module is the same text whatever the
    /// values are. (That Terraform reads the variables file back exactly is proven
    /// against real Terraform in `tests/render_terraform.rs`.)
    #[test]
    fn the_root_module_does_not_depend_on_input_values(value in arb_json(), tag in hostile_string()) {
        let (_dir, catalog) = catalog();
        let options = RenderOptions::default();
        let baseline = render(&echo_project(&Value::Null), &catalog, &options).unwrap();
        let rendered = render(&echo_project(&value), &catalog, &options).unwrap();
        prop_assert_eq!(&rendered.root, &baseline.root);
        prop_assert_eq!(&variables(&rendered)["inputs_app"]["value"], &value);
        let with_token = |token: &str| {
            let mut p = echo_project(&value);
            p.spec.components[0].inputs.insert("token".into(), Value::String(token.to_owned()));
            render(&p, &catalog, &options).unwrap()
        };
        prop_assert_eq!(with_token(&tag).root, with_token("").root);
    }
}

#[test]
fn sensitive_inputs_get_their_own_sensitive_variable() {
    let (_dir, catalog) = catalog();
    let mut p = echo_project(&serde_json::json!(1));
    p.spec.components[0]
        .inputs
        .insert("token".into(), serde_json::json!("s3cr3t"));
    let rendered = render(&p, &catalog, &RenderOptions::default()).unwrap();
    assert_eq!(
        variables(&rendered),
        serde_json::json!({"inputs_app": {"value": 1}, "sensitive_inputs_app": {"token": "s3cr3t"}})
    );
    for expected in [
        "variable \"sensitive_inputs_app\" {",
        "sensitive = true",
        "token = var.sensitive_inputs_app.token",
        "value = var.inputs_app.value",
    ] {
        assert!(
            rendered.root.contains(expected),
            "missing {expected} in\n{}",
            rendered.root
        );
    }
    assert!(!rendered.root.contains("s3cr3t"));
}

#[test]
fn backend_strings_are_escaped_by_our_escaper() {
    let (_dir, catalog) = catalog();
    let p = project(serde_json::json!({
        "environment": "dev",
        "components": [{"name": "app", "module": "echo"}],
        "backend": {"type": "local", "local": {"path": "%%{%${path.cwd}\"x"}}
    }));
    let root = render(&p, &catalog, &RenderOptions::default())
        .unwrap()
        .root;
    assert!(root.contains("path = \"%%%{%$${path.cwd}\\\"x\""), "{root}");
}

#[test]
fn render_is_deterministic_and_digest_tracks_inputs() {
    let (_dir, catalog) = catalog();
    let a = render(
        &echo_project(&serde_json::json!({"b": 1, "a": [2]})),
        &catalog,
        &RenderOptions::default(),
    )
    .unwrap();
    let b = render(
        &echo_project(&serde_json::json!({"a": [2], "b": 1})),
        &catalog,
        &RenderOptions::default(),
    )
    .unwrap();
    let c = render(
        &echo_project(&serde_json::json!({"a": [3], "b": 1})),
        &catalog,
        &RenderOptions::default(),
    )
    .unwrap();
    assert_eq!(a.root, b.root);
    assert_eq!(a.inputs_digest, b.inputs_digest);
    assert_ne!(a.inputs_digest, c.inputs_digest);
}

#[test]
fn outputs_are_re_exported_and_sensitive_stays_sensitive() {
    let (_dir, catalog) = catalog();
    let rendered = render(
        &echo_project(&Value::Null),
        &catalog,
        &RenderOptions::default(),
    )
    .unwrap();
    let body = hcl::parse(&rendered.root).unwrap();
    let secret = body
        .blocks()
        .find(|b| b.identifier() == "output" && b.labels()[0].as_str() == "app_secret")
        .unwrap();
    assert!(
        secret
            .body()
            .attributes()
            .any(|a| a.key() == "sensitive" && *a.expr() == Expression::Bool(true))
    );
    assert_eq!(
        secret
            .body()
            .attributes()
            .find(|a| a.key() == "value")
            .unwrap()
            .expr()
            .to_string(),
        "module.app.secret"
    );
}

#[test]
fn aws_projects_get_a_pinned_provider_with_account_guard_role_and_tags() {
    let (_dir, catalog) = catalog();
    let p = project(serde_json::json!({
        "environment": "production",
        "cloud": {"aws": {"region": "eu-west-1", "accountId": "123456789012", "credentials": {"assumeRole": {"roleArn": "arn:aws:iam::123456789012:role/deploy", "externalId": "ext-1", "sessionDuration": "1h"}}}},
        "components": [{"name": "net", "module": "cloudy"}, {"name": "app", "module": "echo", "inputs": {"value": 1}, "dependsOn": ["net"]}],
        "backend": {"type": "s3", "s3": {"bucket": "state-bucket", "dynamodbTable": "locks"}}
    }));
    let offline = RenderOptions {
        provider_assumes_role: true,
        ..RenderOptions::default()
    };
    let rendered = render(&p, &catalog, &offline).unwrap();
    let root = &rendered.root;
    // The controller assumes the role itself: no assume_role, no role in the variables.
    let controller = render(&p, &catalog, &RenderOptions::default()).unwrap();
    assert!(
        !controller.root.contains("assume_role"),
        "{}",
        controller.root
    );
    assert!(
        !controller.variables.contains("role"),
        "{}",
        controller.variables
    );
    assert!(controller.root.contains("allowed_account_ids"));
    assert_eq!(
        variables(&rendered),
        serde_json::json!({
            "inputs_app": {"value": 1},
            "tollgate_aws_region": "eu-west-1",
            "tollgate_aws_account_id": "123456789012",
            "tollgate_aws_role_arn": "arn:aws:iam::123456789012:role/deploy",
            "tollgate_aws_session_name": "tollgate-team-a-shop",
            "tollgate_aws_external_id": "ext-1",
            "tollgate_aws_session_duration": "1h",
            "tollgate_default_tags": {
                "tollgate.dev/project": "shop",
                "tollgate.dev/namespace": "team-a",
                "tollgate.dev/environment": "production",
                "tollgate.dev/managed-by": "tollgate"
            }
        })
    );
    for expected in [
        "version = \"~> 5.80\"",
        "backend \"s3\"",
        "key = \"team-a/shop/terraform.tfstate\"",
        "dynamodb_table = \"locks\"",
        "region = var.tollgate_aws_region",
        "allowed_account_ids = [\n    var.tollgate_aws_account_id\n  ]",
        "role_arn = var.tollgate_aws_role_arn",
        "external_id = var.tollgate_aws_external_id",
        "tags = var.tollgate_default_tags",
        "type = map(string)",
        "depends_on = [\n    module.net\n  ]",
    ] {
        assert!(root.contains(expected), "missing {expected} in\n{root}");
    }
}

#[test]
fn backend_defaults_to_kubernetes_in_the_state_namespace_and_can_be_overridden() {
    let (_dir, catalog) = catalog();
    let mut p = echo_project(&Value::Null);
    // A legacy secretSuffix never chooses the location: it could name another's state.
    p.spec.backend = Some(serde_json::from_value(serde_json::json!({"type": "kubernetes", "kubernetes": {"secretSuffix": "team-b.shop"}})).unwrap());
    let options = RenderOptions {
        state_namespace: Some("tollgate-state".into()),
        ..RenderOptions::default()
    };
    let k8s = render(&p, &catalog, &options).unwrap().root;
    assert!(
        k8s.contains("backend \"kubernetes\"")
            && k8s.contains("namespace = \"tollgate-state\"")
            && k8s.contains("secret_suffix = \"team-a.shop\"")
            && k8s.contains("\"tollgate.dev/project-namespace\" = \"team-a\""),
        "{k8s}"
    );
    let default = render(&p, &catalog, &RenderOptions::default())
        .unwrap()
        .root;
    assert!(
        default.contains("namespace = \"tollgate-system\""),
        "{default}"
    );
    let local = render(
        &p,
        &catalog,
        &RenderOptions {
            backend_override: Some(BackendType::Local),
            ..RenderOptions::default()
        },
    )
    .unwrap()
    .root;
    assert!(local.contains("backend \"local\""), "{local}");
}

#[test]
fn unsafe_local_state_paths_and_bad_names_are_refused() {
    let (_dir, catalog) = catalog();
    let p = project(
        serde_json::json!({"environment": "dev", "components": [{"name": "app", "module": "echo"}], "backend": {"type": "local", "local": {"path": "../../etc/x"}}}),
    );
    let err = render(&p, &catalog, &RenderOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("team-a/shop: spec.backend: local.path must be relative"),
        "{err}"
    );
    let p = project(
        serde_json::json!({"environment": "dev", "components": [{"name": "app", "module": "echo", "inputs": {"bad key": 1}}]}),
    );
    let err = render(&p, &catalog, &RenderOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("spec.components[0].inputs `bad key` cannot be a Terraform identifier"),
        "{err}"
    );
}

#[test]
fn write_to_copies_modules_and_replaces_stale_ones() {
    let (_dir, catalog) = catalog();
    let out = tempfile::tempdir().unwrap();
    fs::create_dir_all(out.path().join("modules/old")).unwrap();
    fs::write(out.path().join("terraform.tfstate"), "{}").unwrap();
    render(
        &echo_project(&Value::Null),
        &catalog,
        &RenderOptions::default(),
    )
    .unwrap()
    .write_to(out.path())
    .unwrap();
    assert!(out.path().join("modules/echo/variables.tf").is_file());
    assert!(!out.path().join("modules/old").exists());
    assert!(out.path().join("terraform.tfstate").is_file());
    let meta: Value =
        serde_json::from_str(&fs::read_to_string(out.path().join(METADATA_FILE)).unwrap()).unwrap();
    assert_eq!(meta["inputsDigest"].as_str().unwrap().len(), 64);
}

#[test]
fn secret_inputs_are_declared_but_never_written() {
    let (_dir, catalog) = catalog();
    let p = project(
        serde_json::json!({"environment": "dev", "components": [{"name": "app", "module": "echo", "inputs": {
            "value": 1,
            "token": {"awsSecretsManager": {"secretId": "prod/db-${path.cwd}", "jsonKey": "password"}}
        }}]}),
    );
    crate::catalog::validate_project(&p, &catalog).unwrap();
    let rendered = render(&p, &catalog, &RenderOptions::default()).unwrap();
    assert_eq!(
        rendered.secret_inputs,
        vec![SecretBinding {
            variable: "secret_inputs_app_0".into(),
            component: "app".into(),
            input: "token".into(),
            source: SecretInput::AwsSecretsManager {
                secret_id: "prod/db-${path.cwd}".into(),
                json_key: Some("password".into())
            },
        }]
    );
    // Neither the reference nor a value is in any file; the variable is sensitive.
    assert_eq!(
        variables(&rendered),
        serde_json::json!({"inputs_app": {"value": 1}})
    );
    assert!(!rendered.root.contains("prod/db"), "{}", rendered.root);
    for expected in [
        "variable \"secret_inputs_app_0\" {",
        "token = var.secret_inputs_app_0",
    ] {
        assert!(
            rendered.root.contains(expected),
            "missing {expected} in\n{}",
            rendered.root
        );
    }
    let declaration = &rendered.root[rendered
        .root
        .find("variable \"secret_inputs_app_0\"")
        .unwrap()..];
    assert!(declaration[..declaration.find('}').unwrap()].contains("sensitive = true"));

    // Only for sensitive string variables: `value` is neither.
    let refused = project(
        serde_json::json!({"environment": "dev", "components": [{"name": "app", "module": "echo", "inputs": {
            "value": {"secretKeyRef": {"name": "s", "key": "k"}},
            "token": {"secretKeyRef": {"name": "s"}}
        }}]}),
    );
    let problems = crate::catalog::validate_project(&refused, &catalog)
        .unwrap_err()
        .to_string();
    assert!(
        problems.contains(
            "input `value`: a secret reference is allowed only for a `sensitive` variable"
        ),
        "{problems}"
    );
    assert!(
        problems.contains("input `token`: a malformed secret reference: missing field `key`"),
        "{problems}"
    );
}

//! The blocks of the root module that configure rather than carry data: `terraform`
//! (required version, providers, backend) and the `aws` provider.

use super::*;

pub(super) fn terraform_block(
    ctx: &ProjectView<'_>,
    modules: &BTreeMap<&str, &Module>,
    options: &RenderOptions,
) -> Result<Block, RenderError> {
    let mut block =
        Block::builder("terraform").add_attribute(("required_version", quoted(REQUIRED_TERRAFORM)));
    let providers: BTreeMap<&str, _> = modules
        .values()
        .flat_map(|m| m.required_providers.iter().map(|(k, v)| (k.as_str(), v)))
        .collect();
    if !providers.is_empty() {
        let mut required = Block::builder("required_providers");
        for (name, provider) in providers {
            let mut fields = Object::new();
            fields.insert(
                ObjectKey::from(Identifier::unchecked("source")),
                quoted(&provider.source),
            );
            if let Some(version) = &provider.version {
                fields.insert(
                    ObjectKey::from(Identifier::unchecked("version")),
                    quoted(version),
                );
            }
            required = required.add_attribute(Attribute::new(
                ctx.identifier("required_providers", name)?,
                Expression::Object(fields),
            ));
        }
        block = block.add_block(required.build());
    }
    Ok(block.add_block(backend_block(ctx, options)?).build())
}

/// The backend block. Terraform evaluates it before variables exist, so its settings are
/// the one place Project strings stay in HCL: always through [`quoted`].
fn backend_block(ctx: &ProjectView<'_>, options: &RenderOptions) -> Result<Block, RenderError> {
    // Rendered in the working directory: relative to it. `..` would let a Project write
    // state outside its own directory.
    let project = &ctx.project;
    let backend_error = |message: &str| RenderError::Backend {
        project: project.clone(),
        message: message.to_owned(),
    };
    let spec = ctx.backend;
    let backend_type = options
        .backend_override
        .unwrap_or(spec.map(|b| b.backend_type).unwrap_or_default());
    Ok(match backend_type {
        BackendType::Local => {
            let path = spec
                .and_then(|b| b.local.as_ref())
                .and_then(|l| l.path.clone())
                .unwrap_or_else(|| "terraform.tfstate".into());
            let p = Path::new(&path);
            if p.is_absolute()
                || p.components()
                    .any(|c| matches!(c, std::path::Component::ParentDir))
            {
                return Err(backend_error(
                    "local.path must be relative to the working directory and must not contain `..`",
                ));
            }
            Block::builder("backend")
                .add_label("local")
                .add_attribute(("path", quoted(&path)))
                .build()
        }
        // In the state namespace, named after the Project alone: nothing in the spec
        // chooses where state lives (see the `state` module).
        BackendType::Kubernetes => crate::state::StateLocation::new(
            options
                .state_namespace
                .as_deref()
                .unwrap_or(crate::state::DEFAULT_STATE_NAMESPACE),
            ctx.namespace,
            ctx.name,
        )
        .backend_block(),
        BackendType::S3 => {
            let s3 = spec
                .and_then(|b| b.s3.as_ref())
                .ok_or_else(|| backend_error("type is s3 but s3.bucket is not set"))?;
            let region = s3
                .region
                .clone()
                .or_else(|| ctx.region.map(str::to_owned))
                .ok_or_else(|| {
                    backend_error("s3.region is required when spec.cloud.aws is not set")
                })?;
            let key = s3
                .key
                .clone()
                .unwrap_or_else(|| format!("{}/{}/terraform.tfstate", ctx.namespace, ctx.name));
            let mut block = Block::builder("backend")
                .add_label("s3")
                .add_attribute(("bucket", quoted(&s3.bucket)))
                .add_attribute(("key", quoted(&key)))
                .add_attribute(("region", quoted(&region)))
                .add_attribute(("encrypt", true));
            block = match &s3.dynamodb_table {
                Some(table) => block.add_attribute(("dynamodb_table", quoted(table))),
                None => block.add_attribute(("use_lockfile", true)),
            };
            block.build()
        }
    })
}

/// `provider "aws"`: every setting from the Project is a `tollgate_*` root variable.
pub(super) fn aws_provider(
    ctx: &ProjectView<'_>,
    aws: &AwsCloud,
    assume_role: bool,
    variables: &mut RootVariables,
) -> Block {
    let mut provider = Block::builder("provider")
        .add_label("aws")
        .add_attribute((
            "region",
            variables.string(
                "tollgate_aws_region",
                "AWS region, from spec.cloud.aws.region",
                &aws.region,
            ),
        ))
        .add_attribute((
            "allowed_account_ids",
            Expression::Array(vec![variables.string(
                "tollgate_aws_account_id",
                "The only AWS account this Project may change, from spec.cloud.aws.accountId",
                &aws.account_id,
            )]),
        ));
    if let Some(role) = aws
        .credentials
        .as_ref()
        .and_then(|c| c.assume_role.as_ref())
        .filter(|_| assume_role)
    {
        let mut assume = Block::builder("assume_role")
            .add_attribute((
                "role_arn",
                variables.string(
                    "tollgate_aws_role_arn",
                    "Role to assume, from spec.cloud.aws.credentials.assumeRole.roleArn",
                    &role.role_arn,
                ),
            ))
            .add_attribute((
                "session_name",
                variables.string(
                    "tollgate_aws_session_name",
                    "Session name: which Project acted, for CloudTrail",
                    &format!("tollgate-{}-{}", ctx.namespace, ctx.name),
                ),
            ));
        if let Some(external_id) = &role.external_id {
            assume = assume.add_attribute((
                "external_id",
                variables.string(
                    "tollgate_aws_external_id",
                    "From spec.cloud.aws.credentials.assumeRole.externalId",
                    external_id,
                ),
            ));
        }
        if let Some(duration) = &role.session_duration {
            assume = assume.add_attribute((
                "duration",
                variables.string(
                    "tollgate_aws_session_duration",
                    "From spec.cloud.aws.credentials.assumeRole.sessionDuration",
                    duration,
                ),
            ));
        }
        provider = provider.add_block(assume.build());
    }
    let tags: serde_json::Map<String, Value> = [
        ("project", ctx.name),
        ("namespace", ctx.namespace),
        ("environment", ctx.environment),
        ("managed-by", "tollgate"),
    ]
    .into_iter()
    .map(|(key, value)| (format!("{TAG_PREFIX}/{key}"), Value::from(value)))
    .collect();
    let tags = variables.add(
        "tollgate_default_tags",
        Expression::FuncCall(Box::new(
            FuncCall::builder("map").arg(type_keyword("string")).build(),
        )),
        false,
        "Tags on every AWS resource: which Project, namespace and environment own it",
        Value::Object(tags),
    );
    provider
        .add_block(
            Block::builder("default_tags")
                .add_attribute(("tags", Expression::Traversal(Box::new(tags))))
                .build(),
        )
        .build()
}

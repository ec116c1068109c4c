//! A plan's summary: counts, addresses per action and risk flags. Goes into Kubernetes status
//! (camelCase), so it holds no attribute values, only addresses, types and fixed texts.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::model::{Actions, Plan, ResourceChange, ResourceMode};

/// Resource types that hold data: destroying or replacing one can lose it.
const STATEFUL_TYPES: &[&str] = &[
    "aws_db_instance",
    "aws_rds_cluster",
    "aws_rds_cluster_instance",
    "aws_rds_global_cluster",
    "aws_docdb_cluster",
    "aws_neptune_cluster",
    "aws_redshift_cluster",
    "aws_redshiftserverless_namespace",
    "aws_s3_bucket",
    "aws_s3_directory_bucket",
    "aws_ebs_volume",
    "aws_ebs_snapshot",
    "aws_dynamodb_table",
    "aws_dynamodb_global_table",
    "aws_efs_file_system",
    "aws_sqs_queue",
    "aws_sns_topic",
    "aws_kinesis_stream",
    "aws_kinesis_firehose_delivery_stream",
    "aws_msk_cluster",
    "aws_mq_broker",
    "aws_opensearch_domain",
    "aws_elasticsearch_domain",
    "aws_memorydb_cluster",
    "aws_keyspaces_table",
    "aws_timestreamwrite_table",
    "aws_qldb_ledger",
    "aws_glacier_vault",
    "aws_backup_vault",
    "aws_ecr_repository",
    "aws_kms_key",
    "aws_secretsmanager_secret",
    "aws_cloudwatch_log_group",
    "aws_route53_zone",
];

/// Type prefixes whose resources all count as stateful.
const STATEFUL_PREFIXES: &[&str] = &["aws_elasticache_", "aws_fsx_"];

/// Whether destroying a resource of this type can lose data.
#[must_use]
pub fn is_stateful_type(resource_type: &str) -> bool {
    STATEFUL_TYPES.contains(&resource_type)
        || STATEFUL_PREFIXES
            .iter()
            .any(|p| resource_type.starts_with(p))
}

/// Counts, addresses and risks of a plan. Counts follow the action of each resource instance:
/// a replace counts once as `replace` (Terraform's own "N to add, M to destroy" line counts it
/// in both; see [`PlanSummary::terraform_counts`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanSummary {
    /// Resources created.
    pub add: u32,
    /// Resources updated in place.
    pub change: u32,
    /// Resources destroyed.
    pub destroy: u32,
    /// Resources destroyed and re-created.
    pub replace: u32,
    /// Data sources read during apply.
    pub read: u32,
    /// Resources removed from state without being destroyed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub forget: u32,
    /// Root outputs that change.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub output_changes: u32,
    /// Resources changed outside Terraform since the last apply (found by refresh).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub drifted: u32,
    /// Whether the plan changes anything at all.
    pub has_changes: bool,
    /// Addresses per action.
    pub addresses: ActionAddresses,
    /// Addresses of drifted resources.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drift_addresses: Vec<String>,
    /// What a reviewer should look at first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub risks: Vec<RiskFlag>,
    /// Checks (conditions, `check` blocks) that failed or errored, as display addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_checks: Vec<String>,
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Resource addresses per action.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionAddresses {
    /// Created.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub create: Vec<String>,
    /// Updated in place.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub update: Vec<String>,
    /// Destroyed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delete: Vec<String>,
    /// Replaced.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replace: Vec<String>,
    /// Read (data sources).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub read: Vec<String>,
    /// Forgotten.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forget: Vec<String>,
}

/// What kind of risk a change carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RiskKind {
    /// A stateful resource (database, bucket, volume, queue…) is destroyed.
    StatefulDestroy,
    /// A stateful resource is replaced (destroyed and re-created: its data does not move).
    StatefulReplace,
    /// An IAM resource (`aws_iam_*`) is created, changed or destroyed.
    IamChange,
    /// Something becomes (or stays) reachable from the internet.
    PublicExposure,
}

/// One risk found in a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RiskFlag {
    /// The kind of risk.
    pub kind: RiskKind,
    /// The resource address.
    pub address: String,
    /// The resource type.
    pub resource_type: String,
    /// A fixed, value-free explanation.
    pub detail: String,
}

impl PlanSummary {
    /// Terraform's own "to add, to change, to destroy" numbers (a replace counts as one add
    /// and one destroy).
    #[must_use]
    pub fn terraform_counts(&self) -> (u32, u32, u32) {
        (
            self.add + self.replace,
            self.change,
            self.destroy + self.replace,
        )
    }

    /// Whether any risk of this kind was found.
    #[must_use]
    pub fn has_risk(&self, kind: RiskKind) -> bool {
        self.risks.iter().any(|r| r.kind == kind)
    }
}

impl Plan {
    /// Summarises the plan.
    #[must_use]
    pub fn summary(&self) -> PlanSummary {
        let mut s = PlanSummary::default();
        for rc in &self.resource_changes {
            let address = rc.address.clone();
            match rc.change.actions {
                Actions::NoOp | Actions::Open => {}
                Actions::Create | Actions::CreateThenForget => {
                    s.add += 1;
                    s.addresses.create.push(address);
                }
                Actions::Read => {
                    s.read += 1;
                    s.addresses.read.push(address);
                }
                Actions::Update => {
                    s.change += 1;
                    s.addresses.update.push(address);
                }
                Actions::Delete => {
                    s.destroy += 1;
                    s.addresses.delete.push(address);
                }
                Actions::Replace(_) => {
                    s.replace += 1;
                    s.addresses.replace.push(address);
                }
                Actions::Forget => {
                    s.forget += 1;
                    s.addresses.forget.push(address);
                }
            }
            risks_of(rc, &mut s.risks);
        }
        s.output_changes = count_u32(
            self.output_changes
                .values()
                .filter(|c| c.actions.is_change()),
        );
        for rc in &self.resource_drift {
            if rc.change.actions.is_change() {
                s.drift_addresses.push(rc.address.clone());
            }
        }
        s.drifted = count_u32(s.drift_addresses.iter());
        s.failed_checks = self
            .checks
            .iter()
            .filter(|c| c.status == "fail" || c.status == "error")
            .map(|c| c.address.to_display.clone())
            .collect();
        s.has_changes = self.has_changes();
        s
    }
}

fn count_u32<I: Iterator>(it: I) -> u32 {
    u32::try_from(it.count()).unwrap_or(u32::MAX)
}

fn risks_of(rc: &ResourceChange, out: &mut Vec<RiskFlag>) {
    if rc.mode != ResourceMode::Managed {
        return;
    }
    let actions = rc.change.actions;
    let ty = rc.resource_type.as_str();
    let mut flag = |kind, detail: String| {
        out.push(RiskFlag {
            kind,
            address: rc.address.clone(),
            resource_type: rc.resource_type.clone(),
            detail,
        });
    };
    if is_stateful_type(ty) {
        match actions {
            Actions::Delete => flag(
                RiskKind::StatefulDestroy,
                format!("{ty} holds data and will be destroyed; its data is lost unless backed up"),
            ),
            Actions::Replace(_) => flag(
                RiskKind::StatefulReplace,
                format!(
                    "{ty} holds data and will be replaced (destroyed and re-created); its data does not move to the new one"
                ),
            ),
            _ => {}
        }
    }
    if ty.starts_with("aws_iam_") && actions.is_change() {
        let verb = match actions {
            Actions::Create | Actions::CreateThenForget => "created",
            Actions::Delete => "destroyed",
            Actions::Replace(_) => "replaced",
            Actions::Forget => "forgotten",
            _ => "changed",
        };
        flag(
            RiskKind::IamChange,
            format!("IAM resource {ty} will be {verb}; review who gains or loses access"),
        );
    }
    if let Some(what) = public_exposure(rc) {
        let was_public = exposure_of(ty, &rc.change.before).is_some();
        let detail = if was_public {
            format!("{what} (already public before this change)")
        } else {
            format!("{what} (newly public)")
        };
        flag(RiskKind::PublicExposure, detail);
    }
}

/// If the change leaves the resource reachable from the internet, says how.
fn public_exposure(rc: &ResourceChange) -> Option<String> {
    let actions = rc.change.actions;
    let ty = rc.resource_type.as_str();
    // Removing a public access block opens a bucket (or the account) up.
    if matches!(actions, Actions::Delete)
        && matches!(
            ty,
            "aws_s3_bucket_public_access_block" | "aws_s3_account_public_access_block"
        )
    {
        return Some("S3 public access block is removed".into());
    }
    if !actions.writes() {
        return None;
    }
    exposure_of(ty, &rc.change.after)
}

const OPEN_CIDRS: &[&str] = &["0.0.0.0/0", "::/0"];

fn is_open_cidr(v: &Value) -> bool {
    v.as_str().is_some_and(|s| OPEN_CIDRS.contains(&s))
}

fn list_has_open_cidr(v: Option<&Value>) -> bool {
    v.and_then(Value::as_array)
        .is_some_and(|l| l.iter().any(is_open_cidr))
}

fn is_true(v: Option<&Value>) -> bool {
    v.and_then(Value::as_bool) == Some(true)
}

fn is_false(v: Option<&Value>) -> bool {
    v.and_then(Value::as_bool) == Some(false)
}

/// How a resource with these attribute values is exposed to the internet, if it is. Unknown
/// (absent) values do not count as exposure.
fn exposure_of(ty: &str, values: &Value) -> Option<String> {
    if !values.is_object() {
        return None;
    }
    let get = |k: &str| values.get(k);
    match ty {
        "aws_security_group" => {
            let open = get("ingress")
                .and_then(Value::as_array)
                .is_some_and(|rules| {
                    rules.iter().any(|r| {
                        list_has_open_cidr(r.get("cidr_blocks"))
                            || list_has_open_cidr(r.get("ipv6_cidr_blocks"))
                    })
                });
            open.then(|| "security group allows ingress from 0.0.0.0/0 or ::/0".into())
        }
        "aws_security_group_rule" => {
            let ingress = get("type").and_then(Value::as_str) == Some("ingress");
            let open = list_has_open_cidr(get("cidr_blocks"))
                || list_has_open_cidr(get("ipv6_cidr_blocks"));
            (ingress && open)
                .then(|| "security group rule allows ingress from 0.0.0.0/0 or ::/0".into())
        }
        "aws_vpc_security_group_ingress_rule" => {
            let open = get("cidr_ipv4").is_some_and(is_open_cidr)
                || get("cidr_ipv6").is_some_and(is_open_cidr);
            open.then(|| "security group ingress rule allows 0.0.0.0/0 or ::/0".into())
        }
        "aws_s3_bucket_acl" | "aws_s3_bucket" => {
            let acl = get("acl").and_then(Value::as_str).unwrap_or_default();
            matches!(
                acl,
                "public-read" | "public-read-write" | "authenticated-read"
            )
            .then(|| format!("S3 bucket ACL is {acl}"))
        }
        "aws_s3_bucket_public_access_block" | "aws_s3_account_public_access_block" => {
            let disabled: Vec<&str> = [
                "block_public_acls",
                "block_public_policy",
                "ignore_public_acls",
                "restrict_public_buckets",
            ]
            .into_iter()
            .filter(|k| is_false(get(k)))
            .collect();
            (!disabled.is_empty()).then(|| {
                format!(
                    "S3 public access block has {} disabled",
                    disabled.join(", ")
                )
            })
        }
        "aws_lb" | "aws_alb" | "aws_elb" => {
            let internal = get("internal");
            // `internal` defaults to false: an explicit false, or a known null, is internet-facing.
            let internet_facing = is_false(internal) || internal.is_some_and(Value::is_null);
            internet_facing.then(|| "load balancer is internet-facing".into())
        }
        "aws_db_instance"
        | "aws_rds_cluster_instance"
        | "aws_redshift_cluster"
        | "aws_dms_replication_instance" => {
            is_true(get("publicly_accessible")).then(|| "database is publicly accessible".into())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn stateful_types() {
        assert!(is_stateful_type("aws_db_instance"));
        assert!(is_stateful_type("aws_elasticache_replication_group"));
        assert!(!is_stateful_type("aws_instance"));
        assert!(!is_stateful_type("terraform_data"));
    }

    #[test]
    fn exposure_rules() {
        let sg = serde_json::json!({"ingress": [{"cidr_blocks": ["10.0.0.0/8"]}, {"cidr_blocks": [], "ipv6_cidr_blocks": ["::/0"]}]});
        assert!(exposure_of("aws_security_group", &sg).is_some());
        let closed = serde_json::json!({"ingress": [{"cidr_blocks": ["10.0.0.0/8"]}]});
        assert!(exposure_of("aws_security_group", &closed).is_none());
        let lb = serde_json::json!({"internal": false});
        assert!(exposure_of("aws_lb", &lb).is_some());
        let unknown_lb = serde_json::json!({});
        assert!(exposure_of("aws_lb", &unknown_lb).is_none());
        let db = serde_json::json!({"publicly_accessible": true});
        assert!(exposure_of("aws_db_instance", &db).is_some());
        let pab = serde_json::json!({"block_public_acls": true, "block_public_policy": false});
        assert_eq!(
            exposure_of("aws_s3_bucket_public_access_block", &pab).unwrap(),
            "S3 public access block has block_public_policy disabled"
        );
        assert!(exposure_of("aws_s3_bucket_acl", &serde_json::json!({"acl": "private"})).is_none());
    }
}

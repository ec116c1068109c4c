//! Policy as code: read the Rego policies that apply to the Project and judge its plan
//! with them before the gate (docs/policy.md).

use k8s_openapi::api::core::v1::ConfigMap;

use super::*;
use crate::api::PolicyReport;
use crate::policy::{
    self as rego, ENVIRONMENTS_ANNOTATION, Finding, POLICY_LABEL, PolicyInput, PolicySet,
    PolicySource,
};

/// Findings kept in status and on a checkpoint (the CRD's limit).
const LISTED_FINDINGS: usize = 50;

impl Run<'_> {
    /// The policy set of this Project: the built-in pack and the cluster's policy
    /// ConfigMaps, and the namespace's own.
    pub(super) async fn policies(&self) -> Result<&PolicySet, ReconcileError> {
        self.policies
            .get_or_try_init(|| async {
                let cluster_namespace = &self.ctx.config.policy.namespace;
                let cluster = self.policy_sources(cluster_namespace).await?;
                let own = if *cluster_namespace == self.namespace {
                    Vec::new()
                } else {
                    self.policy_sources(&self.namespace).await?
                };
                Ok(PolicySet::new(
                    cluster,
                    Some((self.namespace.clone(), own)),
                    self.ctx.config.policy.config.clone(),
                ))
            })
            .await
    }

    /// The `*.rego` keys of the policy ConfigMaps in `namespace` that apply to the
    /// Project's environment.
    async fn policy_sources(&self, namespace: &str) -> Result<Vec<PolicySource>, ReconcileError> {
        let config_maps = Api::<ConfigMap>::namespaced(self.ctx.client.clone(), namespace)
            .list(&ListParams::default().labels(POLICY_LABEL))
            .await
            .during(ApiStep::ReadPolicies)?;
        let environment = &self.project.spec.environment;
        Ok(config_maps
            .items
            .into_iter()
            .filter(|cm| {
                rego::applies_to_environment(
                    cm.annotations()
                        .get(ENVIRONMENTS_ANNOTATION)
                        .map(String::as_str),
                    environment,
                )
            })
            .flat_map(|cm| {
                let name = cm.name_any();
                cm.data
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|(key, _)| key.ends_with(".rego"))
                    .map(move |(key, text)| PolicySource {
                        origin: format!("configmap {namespace}/{name} {key}"),
                        text,
                    })
            })
            .collect())
    }

    /// Judges the plan (redacted: policies never see a sensitive value, so no finding can
    /// carry one). A broken policy is reported, not raised: the plan then needs a person.
    pub(super) async fn judge_plan(
        &self,
        redacted_plan: &serde_json::Value,
        cost: Option<&CostFacts>,
    ) -> Result<PolicyReport, ReconcileError> {
        let set = self.policies().await?;
        let labels = self.project.labels().clone();
        let judged = set.evaluate(&PolicyInput {
            plan: redacted_plan,
            project: rego::ProjectFacts {
                namespace: &self.namespace,
                name: &self.name,
                environment: &self.project.spec.environment,
                labels: &labels,
            },
            cost,
        });
        let mut report = PolicyReport {
            digest: set.digest(),
            ..PolicyReport::default()
        };
        match judged {
            Ok(findings) => {
                report.denied = listed(findings.denied);
                report.warned = listed(findings.warned);
            }
            Err(err) => {
                let message = truncate(&err.to_string(), 1000);
                self.event(EventType::Warning, "PolicyBroken", &message)
                    .await;
                report.error = Some(message);
            }
        }
        self.ctx.metrics.policy_evaluated(outcome(&report));
        Ok(report)
    }
}

/// The reasons a person must decide because of the policies.
pub(super) fn policy_reasons(report: &PolicyReport) -> Vec<String> {
    report
        .error
        .iter()
        .map(|e| format!("the policies could not judge this plan: {e}"))
        .chain(
            report
                .denied
                .iter()
                .map(|f| format!("policy {}: {}", f.package, f.message)),
        )
        .collect()
}

fn outcome(report: &PolicyReport) -> &'static str {
    if report.error.is_some() {
        "error"
    } else if !report.denied.is_empty() {
        "denied"
    } else if !report.warned.is_empty() {
        "warned"
    } else {
        "passed"
    }
}

/// At most [`LISTED_FINDINGS`], each message bounded; the last says how many were left out.
fn listed(mut findings: Vec<Finding>) -> Vec<Finding> {
    let total = findings.len();
    if total > LISTED_FINDINGS {
        findings.truncate(LISTED_FINDINGS - 1);
        findings.push(Finding {
            package: "tollgate".into(),
            message: format!("… and {} more", total - (LISTED_FINDINGS - 1)),
        });
    }
    for finding in &mut findings {
        finding.message = truncate(&finding.message, 500);
    }
    findings
}

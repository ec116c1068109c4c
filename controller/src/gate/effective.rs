//! The effective approval policy of a Project: what the `ApprovalPolicy` objects that select
//! it allow, tightened (never loosened) by the Project's own `spec.approval` and
//! `spec.budget`. Pure: the caller lists the policies and the namespace's labels.
//!
//! The rule is that the people who hold `approve` decide what may skip them. With no policy
//! selecting the Project nothing is pre-approved; several policies combine strictly (what
//! all of them allow); a Project can remove pre-approvals, lower the threshold and narrow the
//! approvers, and every request of it that a policy does not allow is reported, not applied.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use rust_decimal::Decimal;

use crate::api::{
    ApprovalPolicySpec, ApprovalTrigger, ApproverSet, EscalationPolicy, NotificationChannel,
    ProjectApproval, SlaPolicy,
};
use crate::sla::{format_duration, parse_duration};

/// What applies to one Project, with where each rule came from.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EffectivePolicy {
    /// Names of the ApprovalPolicies that select the Project.
    pub policies: Vec<String>,
    /// Kinds of change that may apply without a person.
    pub auto_approve: BTreeSet<ApprovalTrigger>,
    /// Monthly cost increase in USD that may apply without a person.
    pub cost_increase_threshold: Decimal,
    /// Monthly budget a Project may declare without a BudgetIncrease approval (`None`: no
    /// policy sets one, the Project's own budget is used as is).
    pub budget_ceiling: Option<Decimal>,
    /// Why the Project's environment is not allowed where it is, if it is not.
    pub environment_refused: Option<String>,
    /// Who decides.
    pub approvers: Option<ApproverSet>,
    /// Requests of the Project that the policies do not allow, in words.
    pub not_allowed: Vec<String>,
    /// Checkpoint deadlines: the shortest of the policies' and the Project's, value by
    /// value, in order (respond ≤ escalate ≤ expire).
    pub sla: Option<SlaPolicy>,
    /// Channels the policies add to the Project's own.
    pub notifications: Vec<NotificationChannel>,
}

/// A Project's budget, checked against the policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BudgetCheck {
    /// The budget plans are gated under.
    pub limit: Option<Decimal>,
    /// `(requested, allowed)` when the Project asks for more than the policy (or an earlier
    /// approval) allows: a person must approve the raise.
    pub raise: Option<(Decimal, Decimal)>,
}

/// Everything about the Project the policies are matched against.
#[derive(Clone, Copy, Debug)]
pub struct ProjectFacts<'a> {
    /// Labels of the Project's namespace.
    pub namespace_labels: &'a BTreeMap<String, String>,
    /// `spec.environment`.
    pub environment: &'a str,
    /// `spec.approval`.
    pub approval: Option<&'a ProjectApproval>,
}

impl EffectivePolicy {
    /// Combines the policies (name, spec) that exist with the Project's own requests.
    pub fn resolve(project: ProjectFacts<'_>, policies: &[(&str, &ApprovalPolicySpec)]) -> Self {
        let in_namespace: Vec<&(&str, &ApprovalPolicySpec)> = policies
            .iter()
            .filter(|(_, p)| {
                p.namespace_selector
                    .as_ref()
                    .is_none_or(|s| selects(s, project.namespace_labels))
            })
            .collect();
        let environment_refused = in_namespace
            .iter()
            .find(|(_, p)| {
                !p.allowed_environments.is_empty()
                    && !p.allowed_environments.iter().any(|e| e == project.environment)
            })
            .map(|(name, p)| {
                format!(
                    "environment `{}` is not allowed in this namespace by ApprovalPolicy {name} (allowed: {})",
                    project.environment,
                    p.allowed_environments.join(", ")
                )
            });
        let applicable: Vec<&(&str, &ApprovalPolicySpec)> = in_namespace
            .into_iter()
            .filter(|(_, p)| {
                p.environments.is_empty() || p.environments.iter().any(|e| e == project.environment)
            })
            .collect();
        let mut effective = EffectivePolicy {
            policies: applicable
                .iter()
                .map(|(name, _)| (*name).to_owned())
                .collect(),
            environment_refused,
            ..Self::default()
        };
        if let Some(((_, first), rest)) = applicable.split_first() {
            effective.auto_approve = rest.iter().fold(
                first.auto_approve.iter().copied().collect(),
                |all: BTreeSet<ApprovalTrigger>, (_, p)| {
                    p.auto_approve
                        .iter()
                        .copied()
                        .filter(|t| all.contains(t))
                        .collect()
                },
            );
            effective.cost_increase_threshold = applicable
                .iter()
                .map(|(_, p)| money(p.cost_increase_threshold.as_deref()))
                .min()
                .unwrap_or_default();
            effective.budget_ceiling = applicable
                .iter()
                .filter_map(|(_, p)| p.project_monthly_budget.as_deref())
                .map(|b| money(Some(b)))
                .min();
            effective.approvers = applicable
                .iter()
                .filter_map(|(_, p)| p.approvers.clone())
                .reduce(|a, b| narrow(&a, &b));
            effective.sla = applicable
                .iter()
                .filter_map(|(_, p)| p.sla.clone())
                .reduce(|a, b| shorter_sla(&a, &b));
            for (_, p) in &applicable {
                for channel in &p.notifications {
                    if !effective
                        .notifications
                        .iter()
                        .any(|c| c.name == channel.name)
                    {
                        effective.notifications.push(channel.clone());
                    }
                }
            }
        }
        if effective.environment_refused.is_some() {
            effective.auto_approve.clear();
        }
        if let Some(approval) = project.approval {
            effective.tighten(approval);
        }
        effective
    }

    fn tighten(&mut self, approval: &ProjectApproval) {
        let requested: BTreeSet<ApprovalTrigger> = approval.auto_approve.iter().copied().collect();
        for trigger in requested.difference(&self.auto_approve) {
            self.not_allowed.push(format!(
                "spec.approval.autoApprove lists {trigger:?}, which no ApprovalPolicy selecting this Project allows"
            ));
        }
        self.auto_approve = self
            .auto_approve
            .intersection(&requested)
            .copied()
            .collect();
        if let Some(threshold) = approval.cost_increase_threshold.as_deref() {
            let threshold = money(Some(threshold));
            if threshold > self.cost_increase_threshold {
                self.not_allowed.push(format!(
                    "spec.approval.costIncreaseThreshold ${threshold} is above the ${} the ApprovalPolicy allows",
                    self.cost_increase_threshold
                ));
            }
            self.cost_increase_threshold = self.cost_increase_threshold.min(threshold);
        }
        if let Some(own) = &approval.approvers {
            self.approvers = Some(match &self.approvers {
                Some(policy) => narrow(policy, own),
                None => own.clone(),
            });
        }
        if let Some(own) = &approval.sla {
            self.sla = Some(match &self.sla {
                Some(policy) => {
                    self.not_allowed.extend(lengthened(policy, own));
                    shorter_sla(policy, own)
                }
                None => own.clone(),
            });
        }
    }

    /// The budget plans are gated under: the Project's own, unless it is above what the
    /// policy (or an earlier BudgetIncrease approval, `approved`) allows.
    pub fn budget(&self, requested: Option<Decimal>, approved: Option<Decimal>) -> BudgetCheck {
        let allowed = match (self.budget_ceiling, approved) {
            (Some(ceiling), Some(approved)) => Some(ceiling.max(approved)),
            (ceiling, None) => ceiling,
            (None, Some(_)) => None,
        };
        match (requested, allowed) {
            (Some(requested), Some(allowed)) if requested > allowed => BudgetCheck {
                limit: Some(allowed),
                raise: Some((requested, allowed)),
            },
            (Some(requested), _) => BudgetCheck {
                limit: Some(requested),
                raise: None,
            },
            (None, allowed) => BudgetCheck {
                limit: allowed,
                raise: None,
            },
        }
    }
}

/// Approvers both sets allow: a list narrows the other; four eyes if either asks. An empty
/// list means "anyone with `approve`", so two lists with nothing in common cannot become
/// empty: `outer`'s list (the policy's) stays.
fn narrow(outer: &ApproverSet, inner: &ApproverSet) -> ApproverSet {
    let both = |x: &[String], y: &[String]| -> Vec<String> {
        let common: Vec<String> = x.iter().filter(|v| y.contains(v)).cloned().collect();
        match (x.is_empty(), y.is_empty(), common.is_empty()) {
            (true, _, _) => y.to_vec(),
            (_, true, _) | (_, _, true) => x.to_vec(),
            _ => common,
        }
    };
    let (a, b) = (outer, inner);
    ApproverSet {
        users: both(&a.users, &b.users),
        groups: both(&a.groups, &b.groups),
        forbid_self_approval: a.forbid_self_approval || b.forbid_self_approval,
    }
}

/// A money string the schema already checked (`MONEY_PATTERN`); anything else counts as 0,
/// the strictest value.
/// A duration of the API's form; an unreadable one (the schema refuses them) counts as
/// the longest, so it never wins.
fn duration(text: &str) -> jiff::SignedDuration {
    parse_duration("", text).unwrap_or(jiff::SignedDuration::MAX)
}

/// The shorter of two optional durations.
fn shorter(a: Option<&str>, b: Option<&str>) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if duration(b) < duration(a) { b } else { a }.to_owned()),
        (a, b) => a.or(b).map(str::to_owned),
    }
}

/// Both SLAs at once: the shorter deadline of each kind, every escalation channel, and
/// the result put in order (a deadline never after a later one).
fn shorter_sla(a: &SlaPolicy, b: &SlaPolicy) -> SlaPolicy {
    let expire = shorter(a.expire_after.as_deref(), b.expire_after.as_deref());
    let after = shorter(
        a.escalation.as_ref().map(|e| e.after.as_str()),
        b.escalation.as_ref().map(|e| e.after.as_str()),
    )
    .map(|after| shorter(Some(&after), expire.as_deref()).unwrap_or(after));
    let respond = shorter(Some(&a.respond_within), Some(&b.respond_within))
        .map(|r| shorter(Some(&r), after.as_deref()).unwrap_or(r))
        .map(|r| shorter(Some(&r), expire.as_deref()).unwrap_or(r))
        .unwrap_or_else(|| a.respond_within.clone());
    let mut notify: Vec<String> = Vec::new();
    for name in [&a.escalation, &b.escalation]
        .into_iter()
        .flatten()
        .flat_map(|e| e.notify.iter())
    {
        if !notify.contains(name) {
            notify.push(name.clone());
        }
    }
    SlaPolicy {
        respond_within: format_duration(duration(&respond)),
        escalation: after.map(|after| EscalationPolicy {
            after: format_duration(duration(&after)),
            notify,
        }),
        expire_after: expire.map(|e| format_duration(duration(&e))),
    }
}

/// What the Project's SLA asks to wait longer for than the policy allows, in words.
fn lengthened(policy: &SlaPolicy, own: &SlaPolicy) -> Vec<String> {
    let pairs = [
        (
            "respondWithin",
            Some(policy.respond_within.as_str()),
            Some(own.respond_within.as_str()),
        ),
        (
            "escalation.after",
            policy.escalation.as_ref().map(|e| e.after.as_str()),
            own.escalation.as_ref().map(|e| e.after.as_str()),
        ),
        (
            "expireAfter",
            policy.expire_after.as_deref(),
            own.expire_after.as_deref(),
        ),
    ];
    pairs
        .into_iter()
        .filter_map(|(field, policy, own)| match (policy, own) {
            (Some(p), Some(o)) if duration(o) > duration(p) => Some(format!(
                "spec.approval.sla.{field} {o} is longer than the {p} the ApprovalPolicy sets"
            )),
            _ => None,
        })
        .collect()
}

fn money(text: Option<&str>) -> Decimal {
    text.and_then(|t| t.parse().ok()).unwrap_or_default()
}

/// Whether a Kubernetes label selector selects `labels` (an empty selector selects all).
pub fn selects(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let by_label = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let by_expression = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.as_deref().unwrap_or_default();
        let value = labels.get(&e.key);
        match e.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            // An operator this code does not know selects nothing: fail closed.
            _ => false,
        }
    });
    by_label && by_expression
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(value: serde_json::Value) -> ApprovalPolicySpec {
        serde_json::from_value(value).unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    fn resolve(
        ns: &BTreeMap<String, String>,
        environment: &str,
        approval: Option<serde_json::Value>,
        policies: &[(&str, &ApprovalPolicySpec)],
    ) -> EffectivePolicy {
        let approval: Option<ProjectApproval> =
            approval.map(|a| serde_json::from_value(a).unwrap());
        EffectivePolicy::resolve(
            ProjectFacts {
                namespace_labels: ns,
                environment,
                approval: approval.as_ref(),
            },
            policies,
        )
    }

    #[test]
    fn without_a_policy_nothing_is_pre_approved_whatever_the_project_says() {
        let effective = resolve(
            &labels(&[]),
            "dev",
            Some(
                json!({"autoApprove": ["FirstApply", "Create", "Update", "Replace", "Delete"], "costIncreaseThreshold": "100000"}),
            ),
            &[],
        );
        assert!(effective.auto_approve.is_empty());
        assert_eq!(effective.cost_increase_threshold, Decimal::ZERO);
        assert_eq!(
            effective.not_allowed.len(),
            6,
            "{:?}",
            effective.not_allowed
        );
    }

    #[test]
    fn a_policy_allows_and_the_project_may_only_tighten() {
        let dev = spec(
            json!({"namespaceSelector": {"matchLabels": {"team": "a"}}, "environments": ["dev"],
            "autoApprove": ["FirstApply", "Create", "Update"], "costIncreaseThreshold": "50", "projectMonthlyBudget": "200"}),
        );
        let ns = labels(&[("team", "a")]);
        let effective = resolve(&ns, "dev", None, &[("dev-self-service", &dev)]);
        assert_eq!(effective.policies, ["dev-self-service"]);
        assert_eq!(
            effective.auto_approve,
            [
                ApprovalTrigger::FirstApply,
                ApprovalTrigger::Create,
                ApprovalTrigger::Update
            ]
            .into()
        );
        assert_eq!(effective.cost_increase_threshold, Decimal::from(50));
        let tighter = resolve(
            &ns,
            "dev",
            Some(json!({"autoApprove": ["Create", "Delete"], "costIncreaseThreshold": "10"})),
            &[("dev-self-service", &dev)],
        );
        assert_eq!(tighter.auto_approve, [ApprovalTrigger::Create].into());
        assert_eq!(tighter.cost_increase_threshold, Decimal::from(10));
        assert_eq!(tighter.not_allowed.len(), 1, "Delete is not allowed");
        // Other environments and namespaces are not selected.
        assert!(
            resolve(&ns, "production", None, &[("d", &dev)])
                .auto_approve
                .is_empty()
        );
        assert!(
            resolve(&labels(&[("team", "b")]), "dev", None, &[("d", &dev)])
                .policies
                .is_empty()
        );
    }

    #[test]
    fn several_policies_combine_strictly() {
        let a = spec(
            json!({"autoApprove": ["Create", "Update"], "costIncreaseThreshold": "50", "approvers": {"groups": ["ops", "sre"]}}),
        );
        let b = spec(
            json!({"autoApprove": ["Update", "Delete"], "costIncreaseThreshold": "20", "approvers": {"groups": ["sre"], "forbidSelfApproval": true}}),
        );
        let effective = resolve(&labels(&[]), "dev", None, &[("a", &a), ("b", &b)]);
        assert_eq!(effective.auto_approve, [ApprovalTrigger::Update].into());
        assert_eq!(effective.cost_increase_threshold, Decimal::from(20));
        let approvers = effective.approvers.unwrap();
        assert_eq!(approvers.groups, ["sre"]);
        assert!(approvers.forbid_self_approval);
        // A Project naming other approvers cannot widen the list, only narrow it.
        let own = |groups: serde_json::Value| {
            resolve(
                &labels(&[]),
                "dev",
                Some(json!({"approvers": {"groups": groups}})),
                &[("a", &a)],
            )
            .approvers
            .unwrap()
            .groups
        };
        assert_eq!(own(json!(["platform"])), ["ops", "sre"]);
        assert_eq!(own(json!(["sre", "platform"])), ["sre"]);
    }

    #[test]
    fn environments_outside_the_allowed_list_get_nothing_pre_approved() {
        let production_only =
            spec(json!({"allowedEnvironments": ["production"], "autoApprove": ["Create"]}));
        let effective = resolve(&labels(&[]), "dev", None, &[("prod-ns", &production_only)]);
        assert!(effective.auto_approve.is_empty());
        assert!(
            effective.environment_refused.as_deref().unwrap().contains(
                "environment `dev` is not allowed in this namespace by ApprovalPolicy prod-ns"
            ),
            "{:?}",
            effective.environment_refused
        );
    }

    #[test]
    fn a_budget_above_the_ceiling_is_a_raise_until_approved() {
        let p = spec(json!({"projectMonthlyBudget": "100"}));
        let effective = resolve(&labels(&[]), "dev", None, &[("p", &p)]);
        let d = |v: i64| Decimal::from(v);
        assert_eq!(
            effective.budget(Some(d(80)), None),
            BudgetCheck {
                limit: Some(d(80)),
                raise: None
            }
        );
        assert_eq!(
            effective.budget(Some(d(500)), None),
            BudgetCheck {
                limit: Some(d(100)),
                raise: Some((d(500), d(100)))
            }
        );
        assert_eq!(
            effective.budget(Some(d(500)), Some(d(500))),
            BudgetCheck {
                limit: Some(d(500)),
                raise: None
            }
        );
        assert_eq!(
            effective.budget(Some(d(900)), Some(d(500))),
            BudgetCheck {
                limit: Some(d(500)),
                raise: Some((d(900), d(500)))
            }
        );
        assert_eq!(
            effective.budget(None, None),
            BudgetCheck {
                limit: Some(d(100)),
                raise: None
            }
        );
    }

    #[test]
    fn label_selectors_follow_kubernetes_semantics() {
        let selector: LabelSelector = serde_json::from_value(json!({
            "matchLabels": {"team": "a"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["dev", "qa"]}, {"key": "frozen", "operator": "DoesNotExist"}]
        }))
        .unwrap();
        assert!(selects(
            &selector,
            &labels(&[("team", "a"), ("tier", "qa")])
        ));
        assert!(!selects(
            &selector,
            &labels(&[("team", "a"), ("tier", "prod")])
        ));
        assert!(!selects(
            &selector,
            &labels(&[("team", "a"), ("tier", "qa"), ("frozen", "y")])
        ));
        assert!(selects(&LabelSelector::default(), &labels(&[])));
        let unknown: LabelSelector = serde_json::from_value(
            json!({"matchExpressions": [{"key": "x", "operator": "Gt", "values": ["1"]}]}),
        )
        .unwrap();
        assert!(!selects(&unknown, &labels(&[("x", "2")])));
    }

    #[test]
    fn deadlines_are_the_shortest_of_policies_and_project_and_stay_in_order() {
        let a = spec(
            json!({"sla": {"respondWithin": "2h", "escalation": {"after": "4h", "notify": ["ops"]}, "expireAfter": "3d"},
            "notifications": [{"name": "ops", "email": ["ops@example.com"]}]}),
        );
        let b = spec(
            json!({"sla": {"respondWithin": "30m", "escalation": {"after": "6h", "notify": ["lead"]}},
            "notifications": [{"name": "ops", "email": ["other@example.com"]}, {"name": "lead", "email": ["lead@example.com"]}]}),
        );
        let ns = labels(&[]);
        let both = resolve(&ns, "dev", None, &[("a", &a), ("b", &b)]);
        let sla = both.sla.clone().unwrap();
        assert_eq!(sla.respond_within, "30m");
        let escalation = sla.escalation.unwrap();
        assert_eq!(escalation.after, "4h");
        assert_eq!(escalation.notify, ["ops", "lead"]);
        assert_eq!(sla.expire_after.as_deref(), Some("3d"));
        let names: Vec<&str> = both.notifications.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["ops", "lead"]);
        assert_eq!(
            both.notifications[0].email.as_deref(),
            Some(&["ops@example.com".to_owned()][..]),
            "the first policy's channel of a name wins"
        );

        // A Project may shorten, never lengthen; what it asks beyond the policy is said.
        let own = resolve(
            &ns,
            "dev",
            Some(json!({"sla": {"respondWithin": "8h", "expireAfter": "1h"}})),
            &[("a", &a)],
        );
        let sla = own.sla.clone().unwrap();
        // expireAfter 1h pulls the escalation and the response deadline before it.
        assert_eq!(sla.expire_after.as_deref(), Some("1h"));
        assert_eq!(sla.escalation.unwrap().after, "1h");
        assert_eq!(sla.respond_within, "1h");
        assert_eq!(
            own.not_allowed,
            ["spec.approval.sla.respondWithin 8h is longer than the 2h the ApprovalPolicy sets"]
        );
        let resolved = crate::sla::SlaDefaults::default().resolve("dev", own.sla.as_ref());
        assert!(
            resolved.is_ok_and(|d| d.is_some()),
            "the merged SLA is in order"
        );
        // Without a policy SLA the Project's own stands.
        let alone = resolve(
            &ns,
            "dev",
            Some(json!({"sla": {"respondWithin": "8h"}})),
            &[],
        );
        assert_eq!(alone.sla.unwrap().respond_within, "8h");
    }
}

//! The approval gate: a pure function from what a plan does, what it costs and the Project's
//! policy to "apply it" or "a person must decide first, and why".
//!
//! Deliberately fail-safe: anything the gate cannot prove harmless (an unpriced resource, a
//! destroy, a budget it cannot check) needs a person.

pub mod effective;
pub mod namespace;

use rust_decimal::Decimal;

use crate::api::{ApprovalTrigger, CheckpointType};
use crate::plan::{PlanSummary, RiskKind};
use effective::{BudgetCheck, EffectivePolicy};
use namespace::NamespaceCheck;

/// Cluster-wide defaults from the controller's configuration; a Project cannot relax them.
#[derive(Clone, Debug)]
pub struct GateDefaults {
    /// Environments where every change needs a person, whatever the Project's policy says.
    pub protected_environments: Vec<String>,
}

impl Default for GateDefaults {
    fn default() -> Self {
        Self {
            protected_environments: vec!["production".into(), "prod".into()],
        }
    }
}

/// The cost facts the gate needs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CostFacts {
    /// Estimated monthly cost after the plan.
    pub monthly: Decimal,
    /// Change of the monthly cost.
    pub delta: Decimal,
    /// Resources changed by the plan that could not be priced.
    pub unpriced: usize,
}

/// Everything the gate looks at.
#[derive(Clone, Debug)]
pub struct GateInput<'a> {
    /// The Project's environment.
    pub environment: &'a str,
    /// Nothing of this Project has been applied yet.
    pub first_apply: bool,
    /// The plan destroys the whole Project (deletion with `deletionPolicy: Destroy`).
    pub destroy_project: bool,
    /// What the plan does.
    pub summary: &'a PlanSummary,
    /// What it costs; `None` when pricing failed.
    pub cost: Option<&'a CostFacts>,
    /// The Project's hard monthly budget in USD, as the effective policy allows it.
    pub budget: BudgetCheck,
    /// The namespace's cap (NamespaceBudget) and whether this plan's reservation fits it.
    pub namespace: &'a NamespaceCheck,
    /// What the ApprovalPolicies that select the Project allow, tightened by the Project.
    pub policy: &'a EffectivePolicy,
    /// Cluster defaults.
    pub defaults: &'a GateDefaults,
    /// What the Rego policies block on (`deny` findings, or why they could not judge the
    /// plan): each needs a person, whatever the ApprovalPolicies pre-approve.
    pub policy_violations: &'a [String],
}

/// What the gate decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GateDecision {
    /// The plan changes nothing: nothing to apply, nobody to ask.
    NoChanges,
    /// Policy pre-approves every change in the plan.
    AutoApprove {
        /// Why, for the audit trail and Events.
        reasons: Vec<String>,
    },
    /// A person must decide.
    RequireCheckpoint {
        /// Which kind of checkpoint.
        checkpoint_type: CheckpointType,
        /// Every reason a person is needed.
        reasons: Vec<String>,
    },
}

/// Decides whether the plan may be applied without a person.
pub fn evaluate(input: &GateInput<'_>) -> GateDecision {
    let summary = input.summary;
    if input.destroy_project {
        return GateDecision::RequireCheckpoint {
            checkpoint_type: CheckpointType::Destroy,
            reasons: vec![format!(
                "deleting the Project destroys {} resource(s); destroying always needs a person",
                summary.destroy + summary.replace
            )],
        };
    }
    // A budget raise needs a person even when the plan changes nothing else.
    if !summary.has_changes && input.budget.raise.is_none() {
        return GateDecision::NoChanges;
    }
    let pre_approved = |trigger: ApprovalTrigger| input.policy.auto_approve.contains(&trigger);
    let mut reasons = Vec::new();
    let mut checkpoint_type = CheckpointType::PlanApproval;

    if let Some((requested, allowed)) = input.budget.raise {
        checkpoint_type = CheckpointType::BudgetIncrease;
        reasons.push(format!(
            "spec.budget.monthlyLimit ${requested} is above the ${allowed} allowed without approval; approving this plan accepts the new budget"
        ));
    }
    reasons.extend(input.policy_violations.iter().cloned());
    if let Some(refused) = &input.policy.environment_refused {
        reasons.push(refused.clone());
    }
    if input.policy.policies.is_empty() {
        reasons.push(
            "no ApprovalPolicy selects this Project's namespace and environment, so nothing is pre-approved"
                .into(),
        );
    }
    match (input.budget.limit, input.cost) {
        (Some(budget), Some(cost)) if cost.monthly > budget => {
            checkpoint_type = CheckpointType::BudgetIncrease;
            reasons.push(format!(
                "estimated monthly cost ${} exceeds the budget of ${budget}",
                cost.monthly.round_dp(2)
            ));
        }
        (Some(_), None) => {
            reasons.push("the plan could not be priced, so the budget cannot be checked".into())
        }
        _ => {}
    }
    match input.namespace {
        NamespaceCheck::OverCap {
            others,
            requested,
            limit,
        } => {
            checkpoint_type = CheckpointType::BudgetIncrease;
            reasons.push(format!(
                "the namespace budget is ${limit} a month: the other Projects hold ${}, and this plan's ${} would bring it to ${}; approving admits this plan only",
                others.round_dp(2),
                requested.round_dp(2),
                (*others + *requested).round_dp(2)
            ));
        }
        NamespaceCheck::Unpriced => reasons
            .push("the plan could not be priced, so the namespace budget cannot be checked".into()),
        NamespaceCheck::None | NamespaceCheck::Reserved { .. } => {}
    }
    if input
        .defaults
        .protected_environments
        .iter()
        .any(|e| e == input.environment)
    {
        reasons.push(format!(
            "environment `{}` is protected: every change needs a person",
            input.environment
        ));
    }
    if input.first_apply && !pre_approved(ApprovalTrigger::FirstApply) {
        reasons.push("first apply of this Project".into());
    }
    for risk in &summary.risks {
        let why = match risk.kind {
            RiskKind::StatefulDestroy => "destroys a stateful resource (its data is lost)",
            RiskKind::StatefulReplace => "replaces a stateful resource (its data does not move)",
            RiskKind::IamChange => "changes IAM",
            RiskKind::PublicExposure => "exposes something to the internet",
        };
        reasons.push(format!("{} {why}", risk.address));
    }
    if let Some(cost) = input.cost {
        let threshold = input.policy.cost_increase_threshold;
        if cost.delta > threshold {
            reasons.push(format!(
                "monthly cost rises by ${} (more than the ${threshold} allowed without approval)",
                cost.delta.round_dp(2)
            ));
        }
        if cost.unpriced > 0 {
            reasons.push(format!(
                "{} changed resource(s) could not be priced",
                cost.unpriced
            ));
        }
    } else if input.budget.limit.is_none() {
        reasons.push("the plan could not be priced".into());
    }
    for (count, trigger, what) in [
        (summary.add, ApprovalTrigger::Create, "creates"),
        (summary.change, ApprovalTrigger::Update, "updates in place"),
        (summary.replace, ApprovalTrigger::Replace, "replaces"),
        (summary.destroy, ApprovalTrigger::Delete, "destroys"),
    ] {
        if count > 0 && !pre_approved(trigger) {
            reasons.push(format!(
                "{what} {count} resource(s) and the policy does not pre-approve {trigger:?}"
            ));
        }
    }
    if reasons.is_empty() {
        GateDecision::AutoApprove {
            reasons: vec![format!(
                "every change is pre-approved by ApprovalPolicy {} and within cost limits",
                input.policy.policies.join(", ")
            )],
        }
    } else {
        GateDecision::RequireCheckpoint {
            checkpoint_type,
            reasons,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::plan::RiskFlag;

    fn summary(add: u32, change: u32, replace: u32, destroy: u32) -> PlanSummary {
        PlanSummary {
            add,
            change,
            replace,
            destroy,
            has_changes: add + change + replace + destroy > 0,
            ..Default::default()
        }
    }

    fn policy(auto: &[ApprovalTrigger], threshold: Option<&str>) -> EffectivePolicy {
        EffectivePolicy {
            policies: vec!["test-policy".into()],
            auto_approve: auto.iter().copied().collect(),
            cost_increase_threshold: threshold.map(|t| t.parse().unwrap()).unwrap_or_default(),
            ..Default::default()
        }
    }

    struct Case {
        name: &'static str,
        environment: &'static str,
        first_apply: bool,
        destroy_project: bool,
        summary: PlanSummary,
        cost: Option<CostFacts>,
        budget: Option<&'static str>,
        policy: Option<EffectivePolicy>,
        violations: Vec<String>,
        namespace: NamespaceCheck,
        expect: Expect,
    }

    #[derive(Debug, PartialEq)]
    enum Expect {
        NoChanges,
        Auto,
        Checkpoint(CheckpointType, &'static str),
    }

    fn cost(monthly: &str, delta: &str) -> Option<CostFacts> {
        Some(CostFacts {
            monthly: monthly.parse().unwrap(),
            delta: delta.parse().unwrap(),
            unpriced: 0,
        })
    }

    fn base() -> Case {
        Case {
            name: "",
            environment: "dev",
            first_apply: false,
            destroy_project: false,
            summary: summary(1, 0, 0, 0),
            cost: cost("0", "0"),
            budget: None,
            policy: Some(policy(
                &[ApprovalTrigger::Create, ApprovalTrigger::Update],
                None,
            )),
            violations: Vec::new(),
            namespace: NamespaceCheck::None,
            expect: Expect::Auto,
        }
    }

    fn stateful(kind: RiskKind) -> PlanSummary {
        let mut s = summary(0, 0, 1, 0);
        s.risks.push(RiskFlag {
            kind,
            address: "module.db.aws_db_instance.this".into(),
            resource_type: "aws_db_instance".into(),
            detail: String::new(),
        });
        s
    }

    #[test]
    fn the_gate_table() {
        use ApprovalTrigger::*;
        use CheckpointType::*;
        let cases = vec![
            Case {
                name: "no changes need nobody",
                summary: summary(0, 0, 0, 0),
                policy: None,
                first_apply: true,
                expect: Expect::NoChanges,
                ..base()
            },
            Case {
                name: "pre-approved creates apply",
                ..base()
            },
            Case {
                name: "default policy gates everything",
                policy: None,
                expect: Expect::Checkpoint(PlanApproval, "does not pre-approve Create"),
                ..base()
            },
            Case {
                name: "first apply needs a person",
                first_apply: true,
                expect: Expect::Checkpoint(PlanApproval, "first apply"),
                ..base()
            },
            Case {
                name: "first apply can be pre-approved outside production",
                first_apply: true,
                policy: Some(policy(&[FirstApply, Create], None)),
                ..base()
            },
            Case {
                name: "production is always gated",
                environment: "production",
                policy: Some(policy(
                    &[FirstApply, Create, Update, Replace, Delete],
                    Some("1000"),
                )),
                expect: Expect::Checkpoint(PlanApproval, "protected"),
                ..base()
            },
            Case {
                name: "stateful replace is always gated",
                summary: stateful(RiskKind::StatefulReplace),
                policy: Some(policy(&[Replace], None)),
                expect: Expect::Checkpoint(PlanApproval, "replaces a stateful resource"),
                ..base()
            },
            Case {
                name: "stateful destroy is always gated",
                summary: {
                    let mut s = stateful(RiskKind::StatefulDestroy);
                    s.replace = 0;
                    s.destroy = 1;
                    s
                },
                policy: Some(policy(&[Delete], None)),
                expect: Expect::Checkpoint(PlanApproval, "destroys a stateful resource"),
                ..base()
            },
            Case {
                name: "IAM changes are gated",
                summary: stateful(RiskKind::IamChange),
                policy: Some(policy(&[Replace], None)),
                expect: Expect::Checkpoint(PlanApproval, "changes IAM"),
                ..base()
            },
            Case {
                name: "stateless delete follows policy",
                summary: summary(0, 0, 0, 2),
                policy: Some(policy(&[Delete], None)),
                ..base()
            },
            Case {
                name: "stateless delete gated by default",
                summary: summary(0, 0, 0, 2),
                expect: Expect::Checkpoint(PlanApproval, "does not pre-approve Delete"),
                ..base()
            },
            Case {
                name: "cost increase above threshold",
                cost: cost("30", "25.001"),
                policy: Some(policy(&[Create], Some("25"))),
                expect: Expect::Checkpoint(PlanApproval, "rises by $25.00"),
                ..base()
            },
            Case {
                name: "cost increase at threshold applies",
                cost: cost("30", "25"),
                policy: Some(policy(&[Create], Some("25"))),
                ..base()
            },
            Case {
                name: "any increase needs a person by default",
                cost: cost("0.01", "0.01"),
                expect: Expect::Checkpoint(PlanApproval, "more than the $0"),
                ..base()
            },
            Case {
                name: "cost decrease is fine",
                summary: summary(0, 1, 0, 0),
                cost: cost("5", "-10"),
                ..base()
            },
            Case {
                name: "over budget is a BudgetIncrease",
                cost: cost("120", "0"),
                budget: Some("100"),
                expect: Expect::Checkpoint(BudgetIncrease, "exceeds the budget of $100"),
                ..base()
            },
            Case {
                name: "within budget",
                cost: cost("100", "0"),
                budget: Some("100"),
                ..base()
            },
            Case {
                name: "a reservation under the namespace cap applies",
                cost: cost("60", "0"),
                namespace: NamespaceCheck::Reserved {
                    used: "90".parse().unwrap(),
                    limit: "100".parse().unwrap(),
                },
                ..base()
            },
            Case {
                name: "over the namespace cap is a BudgetIncrease",
                cost: cost("60", "0"),
                namespace: NamespaceCheck::OverCap {
                    others: "50".parse().unwrap(),
                    requested: "60".parse().unwrap(),
                    limit: "100".parse().unwrap(),
                },
                expect: Expect::Checkpoint(BudgetIncrease, "would bring it to $110"),
                ..base()
            },
            Case {
                name: "an unpriced plan under a namespace cap needs a person",
                namespace: NamespaceCheck::Unpriced,
                expect: Expect::Checkpoint(PlanApproval, "namespace budget cannot be checked"),
                ..base()
            },
            Case {
                name: "unpriced resources need a person",
                cost: Some(CostFacts {
                    unpriced: 2,
                    ..Default::default()
                }),
                expect: Expect::Checkpoint(
                    PlanApproval,
                    "2 changed resource(s) could not be priced",
                ),
                ..base()
            },
            Case {
                name: "no cost at all needs a person",
                cost: None,
                expect: Expect::Checkpoint(PlanApproval, "could not be priced"),
                ..base()
            },
            Case {
                name: "no cost with a budget needs a person",
                cost: None,
                budget: Some("5"),
                expect: Expect::Checkpoint(PlanApproval, "budget cannot be checked"),
                ..base()
            },
            Case {
                name: "deleting the project is a Destroy checkpoint",
                destroy_project: true,
                summary: summary(0, 0, 0, 3),
                policy: Some(policy(&[Delete], None)),
                expect: Expect::Checkpoint(Destroy, "destroys 3 resource(s)"),
                ..base()
            },
            Case {
                name: "a policy violation needs a person even when everything is pre-approved",
                violations: vec![
                    "policy data.s3: S3_ENCRYPTION: module.site.aws_s3_bucket.this".into(),
                ],
                expect: Expect::Checkpoint(PlanApproval, "S3_ENCRYPTION"),
                ..base()
            },
            Case {
                name: "a policy violation on a plan without changes asks nobody",
                summary: summary(0, 0, 0, 0),
                violations: vec!["policy data.s3: S3_ENCRYPTION".into()],
                expect: Expect::NoChanges,
                ..base()
            },
        ];
        for case in cases {
            let defaults = GateDefaults::default();
            let budget = BudgetCheck {
                limit: case.budget.map(|b| b.parse().unwrap()),
                raise: None,
            };
            let policy = case.policy.clone().unwrap_or_default();
            let decision = evaluate(&GateInput {
                environment: case.environment,
                first_apply: case.first_apply,
                destroy_project: case.destroy_project,
                summary: &case.summary,
                cost: case.cost.as_ref(),
                budget,
                namespace: &case.namespace,
                policy: &policy,
                defaults: &defaults,
                policy_violations: &case.violations,
            });
            let ok = match (&case.expect, &decision) {
                (Expect::NoChanges, GateDecision::NoChanges) => true,
                (Expect::Auto, GateDecision::AutoApprove { .. }) => true,
                (
                    Expect::Checkpoint(ty, why),
                    GateDecision::RequireCheckpoint {
                        checkpoint_type,
                        reasons,
                    },
                ) => ty == checkpoint_type && reasons.iter().any(|r| r.contains(why)),
                _ => false,
            };
            assert!(
                ok,
                "{}: expected {:?}, got {decision:?}",
                case.name, case.expect
            );
        }
    }
}

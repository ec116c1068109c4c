//! What the Project loop does next: pure functions of what one reconcile knows, so every
//! transition of the loop in `docs/architecture.md` ("The Project loop") has a unit test.
//! The async shell (`plan`, `checkpoint`, `apply`, `cleanup`, `state`) does the I/O of the
//! step chosen here and nothing else decides.

use crate::api::{CheckpointType, ProjectPhase};
use crate::gate::GateDecision;

/// What the normal (not deleting) loop knows.
#[derive(Clone, Copy, Debug)]
pub(super) struct Facts {
    /// `spec.suspend`.
    pub suspended: bool,
    /// The spec passes the schema and catalog checks.
    pub spec_valid: bool,
    /// `status.phase`.
    pub phase: Option<ProjectPhase>,
    /// What is known about the plan; `None` until the state was checked and the plan key
    /// computed (neither happens for a suspended or invalid Project).
    pub plan: Option<PlanFacts>,
}

/// The saved plan against the current spec.
#[derive(Clone, Copy, Debug)]
pub(super) struct PlanFacts {
    /// The saved plan was made from this plan key and generation.
    pub current: bool,
    /// Terraform already refused exactly this plan key and generation (`planFailedFor`).
    pub refused: bool,
    /// `spec.driftDetection` asks for a check and its time has come.
    pub drift_due: bool,
}

/// The next step of the normal loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// `spec.suspend`: phase Suspended, no Terraform.
    Suspend,
    /// Schema or catalog problems: Failed (InvalidSpec).
    RejectSpec,
    /// Check the state (move it from its legacy place, stop while it is missing), then
    /// compute the plan key and ask again.
    CheckStateAndPlanKey,
    /// Make a new plan and let the gate decide.
    Replan,
    /// Act on the pending checkpoint's decision.
    FollowDecision,
    /// A run died while applying: apply the saved plan again (Terraform refuses a stale
    /// plan, so nothing is applied twice).
    ResumeApply,
    /// Applied, nothing pending, and a drift check is due: a refresh-only plan (never
    /// while a checkpoint waits or an apply runs: those are other phases).
    CheckDrift,
    /// Nothing to do until something changes.
    WaitForChange,
}

/// The next step of the normal loop.
pub(super) fn next_step(facts: &Facts) -> Step {
    if facts.suspended {
        return Step::Suspend;
    }
    if !facts.spec_valid {
        return Step::RejectSpec;
    }
    let Some(plan) = facts.plan else {
        return Step::CheckStateAndPlanKey;
    };
    if !plan.current {
        // Terraform refused exactly these inputs already; retrying cannot help.
        return if plan.refused {
            Step::WaitForChange
        } else {
            Step::Replan
        };
    }
    match facts.phase {
        Some(ProjectPhase::AwaitingApproval) => Step::FollowDecision,
        Some(ProjectPhase::Applying) => Step::ResumeApply,
        // Killed while planning: the saved plan may never have been gated.
        Some(ProjectPhase::Planning) => Step::Replan,
        Some(ProjectPhase::Ready) if plan.drift_due => Step::CheckDrift,
        _ => Step::WaitForChange,
    }
}

/// What the deletion loop knows (after the state was checked).
#[derive(Clone, Copy, Debug)]
pub(super) struct DeletionFacts {
    /// `deletionPolicy: Orphan`.
    pub orphan: bool,
    /// Nothing was ever applied and there is no state: nothing to destroy.
    pub nothing_to_destroy: bool,
    /// A destroy plan exists (phase Destroying with a saved plan).
    pub destroy_planned: bool,
    /// Its Destroy checkpoint is open.
    pub checkpoint_open: bool,
}

/// The next step of the deletion loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum DeletionStep {
    /// Leave the infrastructure (and report where its state is) and let the Project go.
    Release,
    /// Plan the destroy; the gate always asks a person.
    PlanDestroy,
    /// Act on the Destroy checkpoint's decision.
    FollowDestroyDecision,
    /// Wait for a change.
    WaitForChange,
}

/// The next step of the deletion loop.
pub(super) fn next_deletion_step(facts: &DeletionFacts) -> DeletionStep {
    if facts.orphan || facts.nothing_to_destroy {
        DeletionStep::Release
    } else if !facts.destroy_planned {
        DeletionStep::PlanDestroy
    } else if facts.checkpoint_open {
        DeletionStep::FollowDestroyDecision
    } else {
        DeletionStep::WaitForChange
    }
}

/// The gate's decision when `why` says the next plan needs a person whatever the policy
/// pre-approves (the approved plan before it was refused): pre-approval becomes a
/// PlanApproval checkpoint, and a checkpoint says why too. A plan without changes still
/// needs nobody: nothing would be applied.
pub(super) fn require_review(decision: GateDecision, why: Option<&str>) -> GateDecision {
    let Some(why) = why else {
        return decision;
    };
    match decision {
        GateDecision::AutoApprove { .. } => GateDecision::RequireCheckpoint {
            checkpoint_type: CheckpointType::PlanApproval,
            reasons: vec![why.to_owned()],
        },
        GateDecision::RequireCheckpoint {
            checkpoint_type,
            mut reasons,
        } => {
            reasons.insert(0, why.to_owned());
            GateDecision::RequireCheckpoint {
                checkpoint_type,
                reasons,
            }
        }
        GateDecision::NoChanges => GateDecision::NoChanges,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ProjectPhase::*;

    fn facts(phase: Option<ProjectPhase>, current: bool, refused: bool) -> Facts {
        Facts {
            suspended: false,
            spec_valid: true,
            phase,
            plan: Some(PlanFacts {
                current,
                refused,
                drift_due: false,
            }),
        }
    }

    fn drift_due(phase: Option<ProjectPhase>, current: bool) -> Facts {
        Facts {
            plan: Some(PlanFacts {
                current,
                refused: false,
                drift_due: true,
            }),
            ..facts(phase, current, false)
        }
    }

    /// The loop of docs/architecture.md, one row per transition.
    #[test]
    fn the_project_loop_table() {
        let every_phase = [
            None,
            Some(Planning),
            Some(AwaitingApproval),
            Some(Applying),
            Some(Ready),
            Some(Rejected),
            Some(Failed),
            Some(Destroying),
            Some(Suspended),
        ];
        for phase in every_phase {
            // spec.suspend wins over everything, then an invalid spec.
            let suspended = Facts {
                suspended: true,
                spec_valid: false,
                ..facts(phase, true, false)
            };
            assert_eq!(next_step(&suspended), Step::Suspend, "{phase:?}");
            let invalid = Facts {
                spec_valid: false,
                ..facts(phase, true, false)
            };
            assert_eq!(next_step(&invalid), Step::RejectSpec, "{phase:?}");
            // Nothing about the plan is known before the state was checked.
            let unknown = Facts {
                plan: None,
                ..facts(phase, true, false)
            };
            assert_eq!(next_step(&unknown), Step::CheckStateAndPlanKey, "{phase:?}");
            // Plan key or generation changed: re-plan, unless Terraform refused exactly it.
            assert_eq!(
                next_step(&facts(phase, false, false)),
                Step::Replan,
                "{phase:?}"
            );
            assert_eq!(
                next_step(&facts(phase, false, true)),
                Step::WaitForChange,
                "{phase:?}"
            );
        }
        for (phase, step) in [
            (Some(AwaitingApproval), Step::FollowDecision),
            (Some(Applying), Step::ResumeApply),
            (Some(Planning), Step::Replan),
            (Some(Ready), Step::WaitForChange),
            (Some(Rejected), Step::WaitForChange),
            (Some(Failed), Step::WaitForChange),
            (Some(Suspended), Step::WaitForChange),
            (None, Step::WaitForChange),
        ] {
            assert_eq!(next_step(&facts(phase, true, false)), step, "{phase:?}");
        }
    }

    /// A due drift check runs only from Ready: never while a plan is being made, a
    /// checkpoint waits, an apply runs, or after a failure or a rejection.
    #[test]
    fn drift_is_checked_only_when_ready() {
        for (phase, step) in [
            (Some(Ready), Step::CheckDrift),
            (Some(AwaitingApproval), Step::FollowDecision),
            (Some(Applying), Step::ResumeApply),
            (Some(Planning), Step::Replan),
            (Some(Rejected), Step::WaitForChange),
            (Some(Failed), Step::WaitForChange),
            (Some(Suspended), Step::WaitForChange),
            (Some(Destroying), Step::WaitForChange),
            (None, Step::WaitForChange),
        ] {
            assert_eq!(next_step(&drift_due(phase, true)), step, "{phase:?}");
        }
        // A changed Project is planned anyway: that plan sees the drift too.
        assert_eq!(next_step(&drift_due(Some(Ready), false)), Step::Replan);
    }

    #[test]
    fn the_deletion_table() {
        let f = |orphan, nothing, planned, open| DeletionFacts {
            orphan,
            nothing_to_destroy: nothing,
            destroy_planned: planned,
            checkpoint_open: open,
        };
        for (facts, step) in [
            (f(true, false, true, true), DeletionStep::Release),
            (f(false, true, false, false), DeletionStep::Release),
            (f(false, false, false, false), DeletionStep::PlanDestroy),
            (
                f(false, false, true, true),
                DeletionStep::FollowDestroyDecision,
            ),
            (f(false, false, true, false), DeletionStep::WaitForChange),
        ] {
            assert_eq!(next_deletion_step(&facts), step, "{facts:?}");
        }
    }

    #[test]
    fn a_refused_plan_makes_the_next_one_need_a_person() {
        let auto = GateDecision::AutoApprove {
            reasons: vec!["dev".into()],
        };
        assert_eq!(require_review(auto.clone(), None), auto);
        assert_eq!(
            require_review(auto, Some("refused")),
            GateDecision::RequireCheckpoint {
                checkpoint_type: CheckpointType::PlanApproval,
                reasons: vec!["refused".into()],
            }
        );
        let budget = GateDecision::RequireCheckpoint {
            checkpoint_type: CheckpointType::BudgetIncrease,
            reasons: vec!["over budget".into()],
        };
        assert_eq!(
            require_review(budget, Some("refused")),
            GateDecision::RequireCheckpoint {
                checkpoint_type: CheckpointType::BudgetIncrease,
                reasons: vec!["refused".into(), "over budget".into()],
            }
        );
        assert_eq!(
            require_review(GateDecision::NoChanges, Some("refused")),
            GateDecision::NoChanges
        );
    }
}

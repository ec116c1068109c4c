//! The namespace budget: a plan's reservation in the namespace's NamespaceBudget ledger,
//! committed with a resourceVersion precondition before the gate may admit the plan, the
//! warning when a reservation crosses the threshold, and the release when the Project goes.

use super::*;
use crate::api::{
    BudgetReservation, DEFAULT_WARN_AT_PERCENT, NamespaceBudget, NamespaceBudgetStatus,
    ProjectApproval,
};
use crate::gate::namespace::{self as ledger, Claim, NamespaceCheck, Request};
use crate::notify::{BudgetWarning, EventKind, Notification};

/// The one NamespaceBudget of a namespace (a CRD rule enforces the name).
const BUDGET_NAME: &str = "budget";

/// A write that lost the race is judged again against the ledger that won, this many
/// times, before the reconcile is retried with backoff.
const CONFLICT_ATTEMPTS: usize = 8;

/// What to do with the ledger as read.
enum Step<T> {
    /// Leave it; the answer is `T`.
    Keep(T),
    /// Write these reservations (only over the version read), then the answer is `T`.
    Write(Vec<BudgetReservation>, T),
}

impl Run<'_> {
    fn budgets(&self) -> Api<NamespaceBudget> {
        Api::namespaced(self.ctx.client.clone(), &self.namespace)
    }

    /// Reads the namespace's ledger, lets `decide` judge it, and writes what it decides
    /// only against the version it judged (resourceVersion precondition); on a conflict
    /// the fresh ledger is judged again. `None` when the namespace has no budget;
    /// otherwise the answer and, when written, the budget as written.
    async fn with_ledger<T>(
        &self,
        mut decide: impl FnMut(&NamespaceBudget, &[BudgetReservation]) -> Step<T>,
    ) -> Result<Option<(T, Option<NamespaceBudget>)>, ReconcileError> {
        for _ in 0..CONFLICT_ATTEMPTS {
            let Some(budget) = self
                .budgets()
                .get_opt(BUDGET_NAME)
                .await
                .during(ApiStep::ReserveBudget)?
            else {
                return Ok(None);
            };
            let reservations = budget
                .status
                .as_ref()
                .map(|s| s.reservations.as_slice())
                .unwrap_or_default();
            match decide(&budget, reservations) {
                Step::Keep(answer) => return Ok(Some((answer, None))),
                Step::Write(next, answer) => {
                    if let Some(written) = self.write_ledger(&budget, next).await? {
                        return Ok(Some((answer, Some(written))));
                    }
                }
            }
        }
        Err(ApiStep::ReserveBudget.failed(kube::Error::Api(Box::new(
            kube::core::Status::failure(
                &format!(
                    "NamespaceBudget {BUDGET_NAME} changed {CONFLICT_ATTEMPTS} times while this Project was writing its reservation; retrying"
                ),
                "Conflict",
            )
            .with_code(409),
        ))))
    }

    /// Claims the plan's share of the namespace budget. A fitting reservation is committed
    /// before this returns `Reserved` (see [`Self::with_ledger`]), so of two plans racing
    /// for the same headroom only one gets it; the other is judged against the winner's
    /// ledger.
    pub(super) async fn claim_namespace_budget(
        &mut self,
        plan_id: &str,
        estimate: Option<&Estimate>,
    ) -> Result<NamespaceCheck, ReconcileError> {
        let name = self.name.clone();
        let judged = self
            .with_ledger(|budget, reservations| {
                let Some(estimate) = estimate else {
                    return Step::Keep((NamespaceCheck::Unpriced, false));
                };
                let limit = limit_of(budget);
                let request = Request {
                    project: &name,
                    plan_id,
                    monthly: estimate.total_monthly_cost,
                    running: estimate.previous_monthly_cost,
                };
                match ledger::claim(reservations, limit, request) {
                    Claim::OverCap { others } => Step::Keep((
                        NamespaceCheck::OverCap {
                            others,
                            requested: request.monthly,
                            limit,
                        },
                        false,
                    )),
                    Claim::Fits {
                        ledger,
                        before,
                        after,
                    } => {
                        let percent = budget
                            .spec
                            .warn_at_percent
                            .unwrap_or(DEFAULT_WARN_AT_PERCENT);
                        let warn = ledger::crosses_warning(before, after, limit, percent);
                        Step::Write(
                            ledger,
                            (NamespaceCheck::Reserved { used: after, limit }, warn),
                        )
                    }
                }
            })
            .await?;
        Ok(match judged {
            None => NamespaceCheck::None,
            Some(((check, warn), written)) => {
                if warn
                    && let (Some(written), NamespaceCheck::Reserved { used, limit }) =
                        (written, &check)
                {
                    self.warn_budget(&written, plan_id, *used, *limit).await;
                }
                check
            }
        })
    }

    /// A person approved the BudgetIncrease `checkpoint` of this plan: its reservation is
    /// committed whatever the cap (that plan only: the next plan is judged again), and the
    /// admission recorded in history and the audit trail.
    pub(super) async fn admit_over_namespace_budget(
        &mut self,
        checkpoint: &str,
        plan_id: &str,
        decided_by: Option<String>,
    ) -> Result<(), ReconcileError> {
        let Some(monthly) = self
            .status
            .cost
            .as_ref()
            .and_then(|c| c.monthly.parse::<Decimal>().ok())
        else {
            return Ok(());
        };
        let name = self.name.clone();
        let admitted = self
            .with_ledger(|budget, reservations| {
                if reservations
                    .iter()
                    .any(|r| r.project == name && r.plan_id == plan_id)
                {
                    return Step::Keep(None);
                }
                let request = Request {
                    project: &name,
                    plan_id,
                    monthly,
                    running: Decimal::ZERO,
                };
                let next = ledger::admit_approved(reservations, request, checkpoint);
                let used = ledger::used(&next);
                Step::Write(next, Some((used, limit_of(budget))))
            })
            .await?;
        if let Some((Some((used, limit)), _)) = admitted {
            self.push_history(
                plan_id,
                "NamespaceBudgetOverrunApproved",
                decided_by.clone(),
            );
            self.audit(AuditAction::NamespaceBudgetOverrunApproved, |e| {
                e.actor = decided_by.unwrap_or_default();
                e.checkpoint = Some(checkpoint.to_owned());
                e.cost = Some(AuditCost {
                    before: None,
                    after: money(used),
                    budget: Some(money(limit)),
                });
            });
        }
        Ok(())
    }

    /// Shows the namespace budget's verdict on the Project (`BudgetExceeded`).
    pub(super) fn note_namespace_budget(&mut self, check: &NamespaceCheck) {
        let (exceeded, reason, message) = match check {
            NamespaceCheck::OverCap {
                others,
                requested,
                limit,
            } => (
                true,
                "NamespaceBudget",
                format!(
                    "this plan's ${} a month next to the other Projects' ${} is above the namespace budget of ${limit}; a BudgetIncrease checkpoint decides",
                    money(*requested),
                    money(*others)
                ),
            ),
            NamespaceCheck::Reserved { used, limit } => (
                false,
                "WithinNamespaceBudget",
                format!(
                    "reserved: the namespace uses ${} of its ${limit} a month",
                    money(*used)
                ),
            ),
            NamespaceCheck::None | NamespaceCheck::Unpriced => return,
        };
        let generation = self.generation();
        conditions::set(
            &mut self.status.conditions,
            "BudgetExceeded",
            exceeded,
            reason,
            &message,
            generation,
        );
    }

    /// The Project is going: its reservation no longer counts.
    pub(super) async fn release_namespace_budget(&self) -> Result<(), ReconcileError> {
        self.with_ledger(|_, reservations| {
            if reservations.iter().any(|r| r.project == self.name) {
                Step::Write(ledger::release(reservations, &self.name), ())
            } else {
                Step::Keep(())
            }
        })
        .await?;
        Ok(())
    }

    /// Writes `reservations` (and the use and headroom they come to) only if the budget is
    /// still at the version read; `None` when it was not (a conflict).
    async fn write_ledger(
        &self,
        budget: &NamespaceBudget,
        reservations: Vec<BudgetReservation>,
    ) -> Result<Option<NamespaceBudget>, ReconcileError> {
        let limit = limit_of(budget);
        let used = ledger::used(&reservations);
        let status = NamespaceBudgetStatus {
            reservations,
            used: Some(money(used)),
            headroom: Some(money(limit - used)),
            used_percent: Some(ledger::percent_of(used, limit)),
        };
        let patch = json!({
            "metadata": {"resourceVersion": budget.resource_version()},
            "status": status,
        });
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PatchParams::default()
        };
        match self
            .budgets()
            .patch_status(BUDGET_NAME, &params, &Patch::Merge(&patch))
            .await
        {
            Ok(written) => Ok(Some(written)),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(None),
            Err(e) => Err(ApiStep::ReserveBudget.failed(e)),
        }
    }

    /// Tells the namespace's routes and the budget's channels that this plan took the
    /// namespace past the warning threshold, and leaves an Event. Never blocks the plan: a
    /// failed delivery is logged and counted.
    async fn warn_budget(
        &self,
        budget: &NamespaceBudget,
        plan_id: &str,
        used: Decimal,
        limit: Decimal,
    ) {
        let uid = budget.metadata.uid.clone().unwrap_or_default();
        let (used, limit) = (money(used), money(limit));
        let n = Notification::budget_warning(
            BudgetWarning {
                namespace: &self.namespace,
                budget_uid: &uid,
                project: &self.name,
                plan_id,
                used: &used,
                limit: &limit,
                percent: budget
                    .status
                    .as_ref()
                    .and_then(|s| s.used_percent)
                    .unwrap_or_default(),
            },
            &self.project.spec.environment,
            jiff::Timestamp::now(),
        );
        self.event(EventType::Warning, "NamespaceBudgetWarning", &n.summary)
            .await;
        let approval = ProjectApproval {
            notifications: budget.spec.notifications.clone(),
            ..ProjectApproval::default()
        };
        let channels = async {
            use crate::reconcile::checkpoint::notifications::{namespace_config, routed_channels};
            let config = namespace_config(self.ctx, &self.namespace).await?;
            routed_channels(
                self.ctx,
                &self.namespace,
                Some(&approval),
                &config,
                EventKind::BudgetWarning,
            )
            .await
        }
        .await;
        let channels = match channels {
            Ok(channels) => channels,
            Err(err) => {
                tracing::warn!(error = %err, "the namespace budget warning cannot be routed");
                return;
            }
        };
        for delivery in self.ctx.notifier.deliver_all(&channels, &n, &[]).await {
            let outcome = match delivery.outcome {
                crate::notify::Outcome::Delivered => "delivered",
                crate::notify::Outcome::Failed { .. } => "failed",
            };
            self.ctx.metrics.notification(&delivery.channel, outcome);
        }
    }
}

fn limit_of(budget: &NamespaceBudget) -> Decimal {
    // The schema only admits decimals; an unreadable limit (never written by the API)
    // caps at zero, which asks a person for everything.
    budget.spec.monthly_limit.parse().unwrap_or_default()
}

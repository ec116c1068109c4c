//! Estimate vs actual (`--cost-explorer-interval`): a Ready AWS Project with a priced apply
//! asks Cost Explorer, on its spread schedule, what its tagged resources cost this month
//! and what AWS forecasts for the rest of it; status shows both against the applied
//! estimate, the metric `tollgate_cost_variance_ratio` carries the variance, and a variance
//! beyond the threshold sets `CostWithinEstimate=False` and notifies `CostVariance` once a
//! month. Nothing is blocked: the estimate is a prediction, the bill is the fact, and a
//! person decides what to do about the difference.

use jiff::Timestamp;

use super::*;
use crate::api::ActualCostStatus;
use crate::cloud::cost_explorer as explorer;
use crate::notify::Notification;
use crate::spend::{self, Settings, Verdict, Window};

/// The condition a check sets.
const COST_WITHIN_ESTIMATE: &str = "CostWithinEstimate";

/// What the Cost Explorer check asks of the loop.
pub(super) enum SpendCheck {
    /// Not asked for this Project (off, not AWS, not Ready, nothing priced applied).
    Off,
    /// Come back then for the next check.
    Next(Timestamp),
    /// A person must provide credentials first (a Credential checkpoint is open).
    Act(Action),
}

impl Run<'_> {
    /// Runs the check when it is due; when the next one is due.
    pub(super) async fn check_spend(&mut self) -> Result<SpendCheck, ReconcileError> {
        let Some((settings, estimate, applied_at)) = self.spend_facts() else {
            self.forget_spend();
            return Ok(SpendCheck::Off);
        };
        let uid = self.project.uid().unwrap_or_else(|| self.name.clone());
        let schedule = settings.schedule(&uid);
        let previous = self.status.actual_cost.clone().unwrap_or_default();
        let last = previous.checked_at.as_ref().map(|t| t.0);
        let now = Timestamp::now();
        if !spend::due(&schedule, last, applied_at, now) {
            return Ok(SpendCheck::Next(
                schedule.next_after(last.unwrap_or(applied_at)),
            ));
        }
        // Written before asking: whatever happens next (a failed write, a restart), this
        // slot's requests are made at most once.
        let next = schedule.next_after(now);
        let mut status = ActualCostStatus {
            checked_at: Some(Time(now)),
            next_check_at: Some(Time(next)),
            ..previous.clone()
        };
        self.status.actual_cost = Some(status.clone());
        self.save().await?;

        let created = self
            .project
            .meta()
            .creation_timestamp
            .as_ref()
            .map_or(applied_at, |t| t.0);
        let window = Window::at(now, created);
        let month = window.month_start.strftime("%Y-%m").to_string();
        match self.ask_cost_explorer(&window).await {
            Ok(SpendAnswer::Spend(spend)) => {
                let verdict = spend::judge(estimate, &window, &spend, settings.threshold_percent());
                status.month = Some(month.clone());
                status.month_to_date = Some(money(spend.month_to_date));
                status.forecast = spend.forecast.map(money);
                status.projected = verdict.projected.map(money);
                status.estimate = Some(money(estimate));
                status.expected = Some(money(verdict.expected));
                status.variance = verdict.variance.map(spend::percent);
                status.threshold_percent = Some(settings.threshold_percent().to_string());
                status.error = None;
                self.judged(&verdict, &month, &mut status).await;
            }
            Ok(SpendAnswer::Act(action)) => return Ok(SpendCheck::Act(action)),
            Err(message) => {
                let message = self.sensitive_inputs().redact(&format!(
                    "the Cost Explorer check failed, tried again at {next}: {message}"
                ));
                self.ctx.metrics.cost_explorer_checked("failed");
                status.error = Some(message.clone());
                let generation = self.generation();
                conditions::set_unknown(
                    &mut self.status.conditions,
                    COST_WITHIN_ESTIMATE,
                    "CheckFailed",
                    &message,
                    generation,
                );
                self.event(EventType::Warning, "CostCheckFailed", &message)
                    .await;
            }
        }
        self.status.actual_cost = Some(status);
        self.save().await?;
        Ok(SpendCheck::Next(next))
    }

    /// The settings, the applied estimate and when it was applied, when this Project is
    /// checked at all: the controller asks for checks, the Project runs on AWS, is Ready,
    /// and its applied plan was priced.
    fn spend_facts(&self) -> Option<(Settings, Decimal, Timestamp)> {
        let settings = self.ctx.config.spend?;
        self.project.spec.cloud.as_ref()?;
        if self.status.phase != Some(ProjectPhase::Ready) {
            return None;
        }
        let applied = self.status.last_applied.as_ref()?;
        let estimate = applied.cost.as_deref()?.parse::<Decimal>().ok()?;
        Some((settings, estimate, applied.at.0))
    }

    /// With checks off for this Project, drops its gauge (its status stays, as last seen).
    fn forget_spend(&self) {
        self.ctx
            .metrics
            .set_cost_variance(&self.namespace, &self.name, None);
    }

    /// The Project's credentials (the same path as its plans), then the two requests.
    async fn ask_cost_explorer(&mut self, window: &Window) -> Result<SpendAnswer, String> {
        match self.obtain_credentials("cost-explorer", false).await {
            Ok(Some(action)) => return Ok(SpendAnswer::Act(action)),
            Ok(None) => {}
            Err(err) => return Err(err.to_string()),
        }
        let config = crate::cloud::sdk_config(explorer::REGION, None).await;
        let client = explorer::client(&config, self.credentials.as_ref());
        explorer::spend(&client, &self.namespace, &self.name, window)
            .await
            .map(SpendAnswer::Spend)
            .map_err(|e| e.to_string())
    }

    /// Condition, metric, Event and notification of a check that got an answer.
    async fn judged(&mut self, verdict: &Verdict, month: &str, status: &mut ActualCostStatus) {
        let generation = self.generation();
        let ratio = verdict
            .variance
            .and_then(|v| rust_decimal::prelude::ToPrimitive::to_f64(&v));
        self.ctx
            .metrics
            .set_cost_variance(&self.namespace, &self.name, ratio);
        let summary = spend_summary(&self.namespace, &self.name, status);
        let Some(variance) = verdict.variance else {
            self.ctx.metrics.cost_explorer_checked("unjudged");
            conditions::set_unknown(
                &mut self.status.conditions,
                COST_WITHIN_ESTIMATE,
                "NoForecast",
                &format!(
                    "{summary}; Cost Explorer has no forecast yet, so the month is not judged"
                ),
                generation,
            );
            return;
        };
        let was_exceeded = self
            .status
            .conditions
            .iter()
            .any(|c| c.type_ == COST_WITHIN_ESTIMATE && c.status == "False");
        conditions::set(
            &mut self.status.conditions,
            COST_WITHIN_ESTIMATE,
            !verdict.exceeded,
            if verdict.exceeded {
                "VarianceExceeded"
            } else {
                "WithinThreshold"
            },
            &summary,
            generation,
        );
        if !verdict.exceeded {
            self.ctx.metrics.cost_explorer_checked("within");
            status.notified_month = None;
            return;
        }
        self.ctx.metrics.cost_explorer_checked("exceeded");
        if !was_exceeded {
            self.event(EventType::Warning, "CostVariance", &summary)
                .await;
            self.audit(AuditAction::CostVariance, |e| {
                e.reason = Some(format!("{summary} (variance {})", spend::percent(variance)));
            });
        }
        if status.notified_month.as_deref() == Some(month) {
            return;
        }
        let uid = self.project.uid().unwrap_or_default();
        let n = Notification::cost_variance(self.subject(&uid), summary, month, Timestamp::now());
        if self
            .notify_without_checkpoint(&n, "CostNotificationFailed", &mut status.notifications)
            .await
        {
            status.notified_month = Some(month.to_owned());
        }
    }
}

/// What asking Cost Explorer gave.
enum SpendAnswer {
    Spend(spend::Spend),
    Act(Action),
}

/// One line for the condition, the Event and the notification.
fn spend_summary(namespace: &str, name: &str, status: &ActualCostStatus) -> String {
    let shown = |v: &Option<String>| v.as_deref().map_or("?".to_owned(), |v| format!("${v}"));
    format!(
        "Project {namespace}/{name} in {}: ${} month to date + {} forecast = {} projected, against {} expected from the ${}/month estimate ({} variance, threshold ±{}%)",
        status.month.as_deref().unwrap_or("?"),
        status.month_to_date.as_deref().unwrap_or("?"),
        shown(&status.forecast),
        shown(&status.projected),
        shown(&status.expected),
        status.estimate.as_deref().unwrap_or("?"),
        status.variance.as_deref().unwrap_or("no"),
        status.threshold_percent.as_deref().unwrap_or("?"),
    )
}

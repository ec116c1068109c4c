//! Telling people: for each due event, the channels [`crate::notify::route`] names (the
//! Project's and its namespace's `tollgate-notifications` ConfigMap), their secrets, the
//! delivery, and the records in the Checkpoint's status that make a restart send nothing
//! twice. A failing channel is retried on later reconciles, then given up; it never holds
//! the reconcile (everything that changes the checkpoint's state was written before).

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use super::super::error::{ApiStep, During};
use super::lifecycle::DueEvent;
use super::{Context, FIELD_MANAGER, ReconcileError, conditions};
use crate::api::{
    Checkpoint, CheckpointStatus, DeliveryOutcome, EffectivePolicyStatus, Project, ProjectApproval,
};
use crate::notify::{
    CONFIG_MAP_NAME, Channel, EventKind, Notification, NotifyConfig, NotifyError, Outcome,
    delivery_key, record_delivery, recorded_attempts, resolve, route,
};

/// Condition type saying whether the checkpoint's notifications went out.
const NOTIFIED: &str = "Notified";

/// A failed delivery is tried again this much later (each try is itself several attempts
/// with backoff, see [`crate::notify::RetryPolicy`]).
const RETRY_AFTER: Duration = Duration::from_secs(60);

/// After this many attempts in all, a channel is given up on for that event.
pub(in crate::reconcile) const GIVE_UP_AFTER_ATTEMPTS: i32 = 15;

/// At most this many events are remembered as sent (the schema's limit).
const MAX_NOTIFIED_EVENTS: usize = 64;

/// Sends what is `due` for `checkpoint` and records it; returns when to try failed
/// deliveries again, if any failed.
pub(super) async fn send(
    ctx: &Context,
    api: &Api<Checkpoint>,
    checkpoint: &Checkpoint,
    due: &[DueEvent],
) -> Result<Option<Duration>, ReconcileError> {
    let project_namespace = super::lifecycle::project_namespace(checkpoint);
    let project = Api::<Project>::namespaced(ctx.client.clone(), &project_namespace)
        .get_opt(&checkpoint.spec.project_ref.name)
        .await
        .during(ApiStep::ReadProject)?;
    let environment = project
        .as_ref()
        .map(|p| p.spec.environment.clone())
        .unwrap_or_default();
    let approval = effective_approval(
        project.and_then(|p| p.spec.approval),
        checkpoint.spec.effective_policy.as_ref(),
    );
    let mut status = checkpoint.status.clone().unwrap_or_default();
    let before = status.clone();
    let retry = match channels_for(ctx, &project_namespace, Some(&approval), due).await {
        Err(err) => {
            let message = format!(
                "notifications of checkpoint {} cannot be sent: {err}",
                checkpoint.name_any()
            );
            tracing::warn!(checkpoint = %checkpoint.name_any(), namespace = %project_namespace, %message, "notifications not configured correctly");
            conditions::set(
                &mut status.conditions,
                NOTIFIED,
                false,
                "NotConfigured",
                &message,
                None,
            );
            Some(RETRY_AFTER)
        }
        Ok(routed) => deliver(ctx, checkpoint, &environment, routed, &mut status).await,
    };
    if status != before {
        save(api, checkpoint, &status).await?;
    }
    Ok(retry)
}

/// What routes a checkpoint's notifications: the channels its ApprovalPolicies add
/// (recorded in the checkpoint when it opened) and the Project's own, and the effective SLA
/// (whose escalation list merges both). A policy's channel wins over a Project channel of
/// the same name, so a Project cannot redirect what the TOs require.
pub(in crate::reconcile) fn effective_approval(
    project: Option<ProjectApproval>,
    policy: Option<&EffectivePolicyStatus>,
) -> ProjectApproval {
    let mut approval = project.unwrap_or_default();
    if let Some(policy) = policy {
        let own = std::mem::take(&mut approval.notifications);
        approval.notifications = policy.notifications.clone();
        approval.notifications.extend(
            own.into_iter()
                .filter(|c| !policy.notifications.iter().any(|p| p.name == c.name)),
        );
        if policy.sla.is_some() {
            approval.sla = policy.sla.clone();
        }
    }
    approval
}

/// The channels of each due event, with their secrets read.
async fn channels_for(
    ctx: &Context,
    namespace: &str,
    approval: Option<&ProjectApproval>,
    due: &[DueEvent],
) -> Result<Vec<(DueEvent, Vec<Channel>)>, NotifyError> {
    let config = namespace_config(ctx, namespace).await?;
    let mut routed = Vec::new();
    for d in due {
        routed.push((
            *d,
            routed_channels(ctx, namespace, approval, &config, d.event).await?,
        ));
    }
    Ok(routed)
}

/// The notification routes of `namespace` (its `tollgate-notifications` ConfigMap, if any).
pub(in crate::reconcile) async fn namespace_config(
    ctx: &Context,
    namespace: &str,
) -> Result<NotifyConfig, NotifyError> {
    let config_map = Api::<ConfigMap>::namespaced(ctx.client.clone(), namespace)
        .get_opt(CONFIG_MAP_NAME)
        .await
        .map_err(|e| NotifyError::Config {
            reason: format!("cannot read ConfigMap {CONFIG_MAP_NAME} in {namespace}: {e}"),
        })?;
    match &config_map {
        Some(cm) => NotifyConfig::from_config_map(cm),
        None => Ok(NotifyConfig::default()),
    }
}

/// The channels that hear about `event`, with their secrets read.
pub(in crate::reconcile) async fn routed_channels(
    ctx: &Context,
    namespace: &str,
    approval: Option<&ProjectApproval>,
    config: &NotifyConfig,
    event: EventKind,
) -> Result<Vec<Channel>, NotifyError> {
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    resolve(&secrets, &route(event, approval, config)?).await
}

/// Delivers each event to the channels that have not had it (nor been given up on), and
/// records the outcome in `status`; returns when to retry, if anything failed.
async fn deliver(
    ctx: &Context,
    checkpoint: &Checkpoint,
    environment: &str,
    routed: Vec<(DueEvent, Vec<Channel>)>,
    status: &mut CheckpointStatus,
) -> Option<Duration> {
    let mut failing: Vec<String> = Vec::new();
    let mut delivered_any = false;
    for (due, channels) in routed {
        let mut n = Notification::from_checkpoint(
            due.event,
            checkpoint,
            environment,
            jiff::Timestamp::now(),
        )
        .with_occurrence(due.occurrence);
        if due.event == EventKind::ApplyFailed
            && let Some(outcome) = &status.apply_outcome
        {
            n = n.with_detail(outcome.message.clone());
        }
        let open: Vec<Channel> = channels
            .into_iter()
            .filter(|c| {
                recorded_attempts(&status.notifications, &delivery_key(&n, &c.name))
                    < GIVE_UP_AFTER_ATTEMPTS
            })
            .collect();
        let deliveries = ctx
            .notifier
            .deliver_all(&open, &n, &status.notifications)
            .await;
        let mut complete = true;
        for delivery in deliveries {
            record_delivery(&mut status.notifications, &delivery);
            let total = recorded_attempts(&status.notifications, &delivery.key);
            let outcome = match &delivery.outcome {
                Outcome::Delivered => {
                    delivered_any = true;
                    "delivered"
                }
                Outcome::Failed { .. } => {
                    failing.push(delivery.channel.clone());
                    if total < GIVE_UP_AFTER_ATTEMPTS {
                        complete = false;
                    }
                    "failed"
                }
            };
            ctx.metrics.notification(&delivery.channel, outcome);
        }
        if complete {
            remember(&mut status.notified_events, due);
        }
    }
    if !failing.is_empty() {
        failing.sort();
        failing.dedup();
        let message = format!(
            "delivery failed on channel(s) {}: see status.notifications for why; tried again in {}s, given up after {GIVE_UP_AFTER_ATTEMPTS} attempts",
            failing.join(", "),
            RETRY_AFTER.as_secs()
        );
        conditions::set(
            &mut status.conditions,
            NOTIFIED,
            false,
            "DeliveryFailed",
            &message,
            None,
        );
        let retry = status.notifications.iter().any(|r| {
            r.outcome == Some(DeliveryOutcome::Failed)
                && r.attempts.unwrap_or(0) < GIVE_UP_AFTER_ATTEMPTS
        });
        return retry.then_some(RETRY_AFTER);
    }
    if delivered_any {
        conditions::set(
            &mut status.conditions,
            NOTIFIED,
            true,
            "Delivered",
            "every notification was delivered",
            None,
        );
    }
    None
}

/// Records `due` as sent; an older reminder is forgotten (only the latest is ever due).
fn remember(notified: &mut Vec<String>, due: DueEvent) {
    if due.event == EventKind::Reminder {
        notified.retain(|k| !k.starts_with("Reminder#"));
    }
    notified.push(due.key());
    if notified.len() > MAX_NOTIFIED_EVENTS {
        let excess = notified.len() - MAX_NOTIFIED_EVENTS;
        notified.drain(..excess);
    }
}

/// Writes the delivery records. No resourceVersion precondition: what was delivered must
/// be recorded even if a person decided meanwhile, and only this reconciler (one reconcile
/// per checkpoint at a time) writes these fields.
async fn save(
    api: &Api<Checkpoint>,
    checkpoint: &Checkpoint,
    status: &CheckpointStatus,
) -> Result<(), ReconcileError> {
    let patch = json!({"status": {
        "notifications": status.notifications,
        "notifiedEvents": status.notified_events,
        "conditions": status.conditions,
    }});
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    };
    api.patch_status(&checkpoint.name_any(), &params, &Patch::Merge(&patch))
        .await
        .during(ApiStep::WriteCheckpointStatus)?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn policy_channels_and_escalations_add_to_the_projects() {
        let channel = |name: &str| -> crate::api::NotificationChannel {
            serde_json::from_value(
                serde_json::json!({"name": name, "email": [format!("{name}@example.com")]}),
            )
            .unwrap()
        };
        let project: ProjectApproval = serde_json::from_value(serde_json::json!({
            "notifications": [{"name": "team", "email": ["elsewhere@example.com"]}, {"name": "mine", "email": ["mine@example.com"]}],
            "sla": {"respondWithin": "4h"}
        }))
        .unwrap();
        let policy: EffectivePolicyStatus = serde_json::from_value(serde_json::json!({
            "costIncreaseThreshold": "0",
            "notifications": [{"name": "on-call", "email": ["on-call@example.com"]}, {"name": "team", "email": ["team@example.com"]}],
            "sla": {"respondWithin": "1h", "escalation": {"after": "2h", "notify": ["on-call"]}}
        }))
        .unwrap();
        let merged = effective_approval(Some(project.clone()), Some(&policy));
        assert_eq!(
            merged.notifications,
            [channel("on-call"), channel("team"), channel("mine")]
        );
        assert_eq!(merged.sla, policy.sla);
        assert_eq!(effective_approval(Some(project.clone()), None), project);
    }

    #[test]
    fn only_the_latest_reminder_is_remembered_and_the_list_is_bounded() {
        let mut notified = vec!["Opened".to_owned(), "Reminder#1".to_owned()];
        remember(
            &mut notified,
            DueEvent {
                event: EventKind::Reminder,
                occurrence: 2,
            },
        );
        assert_eq!(notified, ["Opened", "Reminder#2"]);
        for _ in 0..100 {
            remember(
                &mut notified,
                DueEvent {
                    event: EventKind::Decided,
                    occurrence: 0,
                },
            );
        }
        assert_eq!(notified.len(), MAX_NOTIFIED_EVENTS);
    }
}

//! Unit tests of the metrics and the telemetry endpoints.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use super::*;

#[tokio::test]
async fn the_metrics_server_answers_on_a_real_socket_and_drains_on_shutdown() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let metrics = Arc::new(Metrics::default());
    metrics.reconcile_failed("write_status");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, metrics, Arc::new(|| {}), async move {
        let _ = stopped.await;
    }));
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).await.unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.contains("tollgate_reconcile_failures_total{category=\"write_status\"} 1"),
        "{text}"
    );
    stop.send(()).unwrap();
    server.await.unwrap();
}

#[test]
fn readiness_waits_for_the_api_and_the_webhook_registration() {
    let m = Metrics::default();
    assert!(m.readiness().is_err());
    m.set_ready();
    assert_eq!(m.readiness(), Ok(()));
    m.set_webhook_registered(Err(
        "MutatingWebhookConfiguration tollgate is missing".into()
    ));
    let reason = m.readiness().unwrap_err();
    assert!(
        reason.contains("admission webhook: MutatingWebhookConfiguration tollgate is missing"),
        "{reason}"
    );
    m.set_webhook_registered(Ok(()));
    assert_eq!(m.readiness(), Ok(()));
}

#[test]
fn metrics_are_prefixed_and_labelled() {
    let m = Metrics::default();
    m.reconcile_started();
    m.reconcile_failed("terraform");
    m.set_terraform_commands(7);
    let text = m.encode();
    assert!(text.contains("tollgate_reconciles_total 1"), "{text}");
    assert!(
        text.contains("tollgate_reconcile_failures_total{category=\"terraform\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("tollgate_terraform_commands_started 7"),
        "{text}"
    );
}

#[test]
fn the_alert_rules_use_metrics_the_controller_exports() {
    let rules = include_str!("../../../deploy/monitoring/prometheus-rules.yaml");
    let m = Metrics::default();
    m.checkpoint_decided("PlanApproval", "dev", 1.0);
    m.checkpoint_pending("a", "PlanApproval", jiff::Timestamp::now());
    m.notification("c", "failed");
    m.drift_checked("failed");
    let exported = m.encode();
    let used: Vec<&str> = rules
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("tollgate_"))
        .collect();
    assert!(used.len() >= 4, "{used:?}");
    for name in used {
        assert!(
            exported.contains(&format!("{name}{{")) || exported.contains(&format!("{name} ")),
            "the alert rules use {name}, which the controller does not export:\n{exported}"
        );
    }
}

#[test]
fn checkpoint_metrics_count_responses_timers_deliveries_and_pending_by_age() {
    let m = Metrics::default();
    m.checkpoint_decided("PlanApproval", "production", 1200.0);
    m.checkpoint_timer("escalation", "PlanApproval");
    m.notification("ops-webhook", "delivered");
    let now = jiff::Timestamp::now();
    let ago = |s: i64| now.checked_sub(jiff::SignedDuration::from_secs(s)).unwrap();
    m.checkpoint_pending("a", "PlanApproval", ago(60));
    m.checkpoint_pending("b", "PlanApproval", ago(3600));
    m.checkpoint_pending("c", "Destroy", ago(20_000));
    m.checkpoint_settled("c");
    let text = m.encode();
    for expected in [
        "tollgate_checkpoint_response_seconds_count{type=\"PlanApproval\",environment=\"production\"} 1",
        "tollgate_checkpoint_response_seconds_bucket{le=\"1800.0\",type=\"PlanApproval\",environment=\"production\"} 1",
        "tollgate_checkpoint_timers_total{timer=\"escalation\",type=\"PlanApproval\"} 1",
        "tollgate_notification_deliveries_total{channel=\"ops-webhook\",outcome=\"delivered\"} 1",
        "tollgate_checkpoints_pending{type=\"PlanApproval\",age=\"under_30m\"} 1",
        "tollgate_checkpoints_pending{type=\"PlanApproval\",age=\"30m_to_4h\"} 1",
    ] {
        assert!(text.contains(expected), "{expected} missing in\n{text}");
    }
    assert!(!text.contains("type=\"Destroy\""), "{text}");
}

#[test]
fn cost_variance_is_a_gauge_per_project_forgotten_with_it() {
    let m = Metrics::default();
    m.cost_explorer_checked("exceeded");
    m.set_cost_variance("team-a", "web", Some(0.25));
    m.set_cost_variance("team-a", "db", Some(-0.5));
    let text = m.encode();
    for line in [
        "tollgate_cost_explorer_checks_total{outcome=\"exceeded\"} 1",
        "tollgate_cost_variance_ratio{namespace=\"team-a\",project=\"web\"} 0.25",
        "tollgate_cost_variance_ratio{namespace=\"team-a\",project=\"db\"} -0.5",
    ] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }
    m.set_cost_variance("team-a", "web", None);
    assert!(!m.encode().contains("project=\"web\""));
}

#[test]
fn drift_metrics_count_checks_by_outcome_and_restores() {
    let m = Metrics::default();
    m.drift_checked("clean");
    m.drift_checked("clean");
    m.drift_checked("drifted");
    m.drift_restore_opened();
    m.health_checked("failed");
    let text = m.encode();
    for expected in [
        "tollgate_health_checks_total{outcome=\"failed\"} 1",
        "tollgate_drift_checks_total{outcome=\"clean\"} 2",
        "tollgate_drift_checks_total{outcome=\"drifted\"} 1",
        "tollgate_drift_restores_total 1",
    ] {
        assert!(text.contains(expected), "{expected} missing in\n{text}");
    }
}

//! Slack incoming-webhook messages in Block Kit: what changes, the risk, the cost, the
//! deadline and the exact command to decide, readable on a phone.

use serde_json::{Value, json};

use super::event::Notification;

/// Slack's limit on a section's text; longer text is refused with `invalid_blocks`.
const SECTION_TEXT_MAX: usize = 3000;

/// The JSON body to POST to a Slack incoming webhook.
pub fn render_slack(n: &Notification) -> Value {
    let mut facts = vec![
        field("Project", &format!("{}/{}", n.project_namespace, n.project)),
        field("Environment", &n.environment),
    ];
    if let Some(checkpoint) = n.checkpoint_line() {
        facts.push(field("Checkpoint", &checkpoint));
    }
    facts.push(field("Changes", &n.summary));
    if let Some(cost) = n.cost_line() {
        facts.push(field("Cost", &cost));
    }
    if let Some(budget) = n.budget_line() {
        facts.push(field("Budget", &budget));
    }
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": n.title(), "emoji": false}}),
        json!({"type": "section", "fields": facts}),
    ];
    let (shown, more) = n.listed_changes();
    if !shown.is_empty() {
        let mut text: String = shown
            .iter()
            .map(|c| format!("• `{}`\n", escape(c)))
            .collect();
        if more > 0 {
            text.push_str(&format!("…and {more} more"));
        }
        blocks.push(section(&format!("*What changes*\n{}", text.trim_end())));
    }
    if !n.risks.is_empty() {
        let text: String = n
            .risks
            .iter()
            .map(|r| format!("• {}\n", escape(r)))
            .collect();
        blocks.push(section(&format!(
            ":warning: *Risk flags*\n{}",
            text.trim_end()
        )));
    }
    if let Some(decision) = n.decision_line() {
        blocks.push(section(&format!("*Decision*: {}", escape(&decision))));
    }
    if let Some(detail) = &n.detail {
        blocks.push(section(&format!("*Error*\n```{}```", escape(detail))));
    }
    if n.event.awaits_decision() {
        if let Some(deadline) = n.deadline_line() {
            blocks.push(section(&format!("*Deadline*: {deadline}")));
        }
        blocks.push(section(&format!(
            "*Approve*\n```{}```\n*Reject*\n```{}```",
            escape(&n.approve_command()),
            escape(&n.reject_command())
        )));
    }
    json!({
        // The fallback text shows in notifications and screen readers.
        "text": n.title(),
        "blocks": blocks,
    })
}

fn field(label: &str, value: &str) -> Value {
    json!({"type": "mrkdwn", "text": format!("*{label}*\n{}", escape(value))})
}

fn section(text: &str) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(text)}})
}

/// Slack mrkdwn treats `&`, `<` and `>` as control characters (links, mentions such as
/// `<!channel>`); escaping them keeps user text from pinging a whole channel.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn truncate(text: &str) -> String {
    if text.chars().count() <= SECTION_TEXT_MAX {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(SECTION_TEXT_MAX - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::notify::EventKind;
    use crate::notify::event::tests::sample;

    #[test]
    fn golden_slack_messages() {
        for event in [
            EventKind::Opened,
            EventKind::Decided,
            EventKind::ApplyFailed,
        ] {
            let body = serde_json::to_string_pretty(&render_slack(&sample(event))).unwrap();
            insta::assert_snapshot!(format!("slack_{event}"), body);
        }
    }

    #[test]
    fn user_text_cannot_mention_a_channel() {
        let mut n = sample(EventKind::Opened);
        n.risks = vec!["<!channel> hello".into()];
        let body = render_slack(&n).to_string();
        assert!(!body.contains("<!channel>"), "{body}");
        assert!(body.contains("&lt;!channel&gt;"));
    }
}

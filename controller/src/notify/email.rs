//! Email: a text and an HTML body (every user-supplied string HTML-escaped), sent over
//! SMTP with STARTTLS or TLS and AUTH through lettre.

use std::fmt::Write as _;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::channel::{SmtpSecurity, SmtpSettings};
use super::deliver::AttemptError;
use super::event::Notification;
use crate::markup::escape;

/// A rendered email.
#[derive(Clone, Debug, PartialEq)]
pub struct EmailMessage {
    /// Subject line.
    pub subject: String,
    /// text/plain body.
    pub text: String,
    /// text/html body.
    pub html: String,
}

/// Label/value lines shared by both bodies, so text and HTML always say the same thing.
fn facts(n: &Notification) -> Vec<(&'static str, String)> {
    let mut facts = vec![
        ("Project", format!("{}/{}", n.project_namespace, n.project)),
        ("Environment", n.environment.clone()),
    ];
    facts.extend(n.checkpoint_line().map(|c| ("Checkpoint", c)));
    facts.push(("Changes", n.summary.clone()));
    facts.extend(n.cost_line().map(|c| ("Cost", c)));
    facts.extend(n.budget_line().map(|b| ("Budget", b)));
    if n.event.awaits_decision() {
        facts.extend(n.deadline_line().map(|d| ("Deadline", d)));
    }
    facts.extend(n.decision_line().map(|d| ("Decision", d)));
    facts.extend(n.detail.clone().map(|d| ("Error", d)));
    facts
}

/// Renders the email for `n`.
pub fn render_email(n: &Notification) -> EmailMessage {
    let (shown, more) = n.listed_changes();
    let more_line = (more > 0).then(|| format!("…and {more} more"));

    let mut text = format!("{}\n\n", n.title());
    let mut html = format!(
        "<!DOCTYPE html>\n<html><body style=\"font-family:sans-serif\">\n<h2>{}</h2>\n<table>\n",
        escape(&n.title())
    );
    for (label, value) in facts(n) {
        let _ = writeln!(text, "{label}: {value}");
        let _ = writeln!(
            html,
            "<tr><th align=\"left\">{label}</th><td>{}</td></tr>",
            escape(&value)
        );
    }
    html.push_str("</table>\n");
    let mut list = |heading: &str, items: &[String], tail: Option<&String>| {
        if items.is_empty() {
            return;
        }
        let _ = writeln!(text, "\n{heading}:");
        let _ = writeln!(html, "<h3>{heading}</h3>\n<ul>");
        for item in items.iter().chain(tail) {
            let _ = writeln!(text, "  - {item}");
            let _ = writeln!(html, "<li><code>{}</code></li>", escape(item));
        }
        html.push_str("</ul>\n");
    };
    list("What changes", shown, more_line.as_ref());
    list("Risk flags", &n.risks, None);
    list("Why a person must decide", &n.reasons, None);
    if n.event.awaits_decision() {
        for (label, command) in [
            ("Approve", n.approve_command()),
            ("Reject", n.reject_command()),
        ] {
            let _ = writeln!(text, "\n{label}:\n  {command}");
            let _ = writeln!(html, "<h3>{label}</h3>\n<pre>{}</pre>", escape(&command));
        }
    }
    html.push_str("</body></html>\n");
    EmailMessage {
        subject: format!("[tollgate] {}", n.title()),
        text,
        html,
    }
}

/// Sends one message to `to` through the relay: one attempt.
pub(super) async fn send(
    smtp: &SmtpSettings,
    to: &[String],
    message: &EmailMessage,
    timeout: Duration,
) -> Result<(), AttemptError> {
    let from: Mailbox = smtp.from.parse().map_err(|_| {
        AttemptError::permanent(format!(
            "the sender {:?} is not an email address: fix smtp.from",
            smtp.from
        ))
    })?;
    let mut builder = Message::builder().from(from).subject(&message.subject);
    for address in to {
        let mailbox: Mailbox = address.parse().map_err(|_| {
            AttemptError::permanent(format!("the recipient {address:?} is not an email address"))
        })?;
        builder = builder.to(mailbox);
    }
    let email = builder
        .multipart(MultiPart::alternative_plain_html(
            message.text.clone(),
            message.html.clone(),
        ))
        .map_err(|e| AttemptError::permanent(format!("cannot build the email: {e}")))?;
    let transport = transport(smtp, timeout)?;
    // lettre's own timeout does not bound every read: a relay that stops answering
    // would hold the delivery forever, so the whole attempt is bounded here.
    let sent = tokio::time::timeout(timeout, transport.send(email))
        .await
        .map_err(|_| {
            AttemptError::retryable(format!(
                "SMTP {}:{}: no answer within {}s",
                smtp.host,
                smtp.port,
                timeout.as_secs_f64()
            ))
        })?;
    sent.map(|_| ()).map_err(|e| {
        let message = format!("SMTP {}:{}: {e}", smtp.host, smtp.port);
        if e.is_permanent() {
            AttemptError::permanent(message)
        } else {
            AttemptError::retryable(message)
        }
    })
}

/// The lettre transport for these settings: `StartTls` is `Tls::Required` (never falls
/// back to plain text when the relay does not offer STARTTLS).
fn transport(
    smtp: &SmtpSettings,
    timeout: Duration,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, AttemptError> {
    let tls = match smtp.security {
        SmtpSecurity::None => Tls::None,
        SmtpSecurity::StartTls => Tls::Required(tls_parameters(smtp)?),
        SmtpSecurity::Tls => Tls::Wrapper(tls_parameters(smtp)?),
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
        .port(smtp.port)
        .tls(tls)
        .timeout(Some(timeout));
    if let Some((user, password)) = &smtp.credentials {
        let password = password.expose_str().ok_or_else(|| {
            AttemptError::permanent("the SMTP password in its Secret is not UTF-8 text")
        })?;
        builder = builder.credentials(Credentials::new(user.clone(), password.to_owned()));
    }
    Ok(builder.build())
}

fn tls_parameters(smtp: &SmtpSettings) -> Result<TlsParameters, AttemptError> {
    let mut params = TlsParameters::builder(smtp.host.clone());
    if let Some(pem) = &smtp.ca_pem {
        let ca = Certificate::from_pem(pem).map_err(|_| {
            AttemptError::permanent("the SMTP CA in caSecretRef is not a PEM certificate")
        })?;
        params = params.add_root_certificate(ca);
    }
    params
        .build_rustls()
        .map_err(|e| AttemptError::permanent(format!("SMTP TLS settings: {e}")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::notify::EventKind;
    use crate::notify::event::tests::sample;

    #[test]
    fn golden_emails() {
        for event in [
            EventKind::Opened,
            EventKind::Decided,
            EventKind::ApplyFailed,
        ] {
            let m = render_email(&sample(event));
            insta::assert_snapshot!(
                format!("email_{event}"),
                format!("Subject: {}\n\n{}\n----\n{}", m.subject, m.text, m.html)
            );
        }
    }

    #[test]
    fn html_escapes_user_text() {
        let mut n = sample(EventKind::Decided);
        n.risks = vec!["<script>alert('x')</script>".into()];
        let m = render_email(&n);
        assert!(!m.html.contains("<script>"), "{}", m.html);
        assert!(
            m.html
                .contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;")
        );
        assert!(
            m.html
                .contains("looks &lt;fine&gt; &amp; &quot;reviewed&quot;")
        );
    }
}

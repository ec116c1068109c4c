//! The checkpoint page: the live status, why a person must decide, every change, risk
//! flags, cost and budget, and the decision form.

use std::fmt::Write as _;

use jiff::Timestamp;

use super::{checkpoint_path, esc, layout};
use crate::api::{Checkpoint, Decision, Project};
use crate::cli::checkpoint::format::{self, ProjectCost, Review};
use crate::plan::PlanReview;

/// A decision the API refused: its message verbatim and which rule that is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The API's message, verbatim.
    pub message: String,
    /// Which permission or rule refused it (the CLI's explanation).
    pub refused_by: String,
}

/// Everything the checkpoint page shows.
pub struct CheckpointPage<'a> {
    /// The checkpoint.
    pub checkpoint: &'a Checkpoint,
    /// Its Project, when the person may read it.
    pub project: Option<&'a Project>,
    /// The plan review next to it.
    pub review: Review<'a>,
    /// The session's CSRF token, for the decision form.
    pub csrf: &'a str,
    /// The refusal of the decision just asked for.
    pub refusal: Option<&'a Refusal>,
    /// The reason typed for a refused decision, offered again.
    pub reason: &'a str,
    /// What the form just sent did (never a value typed in it).
    pub notice: Option<&'a str>,
    /// Now.
    pub now: Timestamp,
}

/// The checkpoint page: the live status, why a person must decide, every change, risk
/// flags, cost and budget, and the decision form while it waits for one.
pub fn checkpoint_page(page: &CheckpointPage<'_>) -> String {
    let checkpoint = page.checkpoint;
    let namespace = checkpoint.metadata.namespace.as_deref().unwrap_or_default();
    let name = checkpoint.metadata.name.as_deref().unwrap_or_default();
    let spec = &checkpoint.spec;
    let mut body = String::new();
    let _ = write!(
        body,
        "<p class=\"crumbs\"><a href=\"/\">← Queue</a></p>\n<h1>{kind:?} of Project <span class=\"project\">{project}</span></h1>\n\
         <p class=\"scope\">Checkpoint {ns}/{n}</p>\n",
        kind = spec.checkpoint_type,
        project = esc(&spec.project_ref.name),
        ns = esc(namespace),
        n = esc(name),
    );
    if let Some(refusal) = page.refusal {
        let _ = writeln!(
            body,
            "<section class=\"refusal\" role=\"alert\" id=\"refusal\"><h2>Refused</h2>\
             <p class=\"api-message\">{}</p><p>Refused by: {}</p></section>",
            esc(&refusal.message),
            esc(&refusal.refused_by)
        );
    }
    if let Some(notice) = page.notice {
        let _ = writeln!(
            body,
            "<section class=\"notice\" role=\"status\" id=\"notice\"><p>{}</p></section>",
            esc(notice)
        );
    }
    let _ = write!(
        body,
        "<section class=\"status\" data-live=\"{}/events\">\n{}</section>\n",
        esc(&checkpoint_path(namespace, name)),
        checkpoint_live(checkpoint, page.project, page.now)
    );
    if format::is_pending(checkpoint) {
        secret_form(&mut body, page);
        decision_form(&mut body, page);
    }
    if !spec.reasons.is_empty() {
        body.push_str("<section><h2>Why a person must decide</h2>\n<ul>\n");
        for reason in &spec.reasons {
            let _ = writeln!(body, "<li>{}</li>", esc(reason));
        }
        body.push_str("</ul>\n</section>\n");
    }
    if spec.plan_ref.is_none() && spec.summary.cost.is_none() && spec.summary.changes.is_empty() {
        // Nothing planned (a Credential or manual checkpoint): what the person must do.
        let _ = writeln!(
            body,
            "<section><h2>What is needed</h2>\n<p class=\"summary\">{}</p>\n</section>",
            esc(&spec.summary.text)
        );
        return layout(&format!("{name} ({namespace})"), &body);
    }
    changes(&mut body, checkpoint, page.review);
    body.push_str("<section><h2>Risk flags</h2>\n");
    if spec.summary.risks.is_empty() {
        body.push_str("<p>None.</p>\n");
    } else {
        body.push_str("<ul class=\"risks\">\n");
        for risk in &spec.summary.risks {
            let _ = writeln!(body, "<li>{}</li>", esc(risk));
        }
        body.push_str("</ul>\n");
    }
    body.push_str("</section>\n");
    cost(
        &mut body,
        checkpoint,
        ProjectCost::of(checkpoint, page.project),
    );
    layout(&format!("{name} ({namespace})"), &body)
}

fn decision_form(body: &mut String, page: &CheckpointPage<'_>) {
    let checkpoint = page.checkpoint;
    let namespace = checkpoint.metadata.namespace.as_deref().unwrap_or_default();
    let name = checkpoint.metadata.name.as_deref().unwrap_or_default();
    let _ = write!(
        body,
        "<section class=\"decide\"><h2>Decide</h2>\n<form method=\"post\" action=\"{}/decide\">\n\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\n\
         <label for=\"reason\">Reason (recorded with your decision)</label>\n\
         <textarea id=\"reason\" name=\"reason\" rows=\"3\" required>{}</textarea>\n<div class=\"buttons\">",
        esc(&checkpoint_path(namespace, name)),
        esc(page.csrf),
        esc(page.reason),
    );
    for decision in Decision::allowed_for(checkpoint.spec.checkpoint_type) {
        let (verb, _) = decision.verb();
        let class = if decision.goes_ahead() { "go" } else { "stop" };
        let _ = write!(
            body,
            "<button type=\"submit\" name=\"decision\" value=\"{decision:?}\" class=\"{class}\">{}</button>",
            capitalised(verb)
        );
    }
    body.push_str(
        "</div>\n<p class=\"hint\">Decided with your own Kubernetes identity; RBAC and tollgate's admission rules apply as to kubectl.</p>\n</form>\n</section>\n",
    );
}

/// The form field of Secret key `key`.
pub fn secret_field(key: &str) -> String {
    format!("secret.{key}")
}

/// Where the Secret a Credential checkpoint asks for goes: the Project's namespace.
pub fn secret_namespace(checkpoint: &Checkpoint) -> &str {
    checkpoint
        .spec
        .project_ref
        .namespace
        .as_deref()
        .or(checkpoint.metadata.namespace.as_deref())
        .unwrap_or_default()
}

/// The form that creates the Secret a Credential checkpoint asks for. Its fields are
/// password fields the browser neither fills in nor keeps, always empty: a value is never
/// sent to the page.
fn secret_form(body: &mut String, page: &CheckpointPage<'_>) {
    let checkpoint = page.checkpoint;
    let Some(secret) = &checkpoint.spec.secret else {
        return;
    };
    let namespace = checkpoint.metadata.namespace.as_deref().unwrap_or_default();
    let name = checkpoint.metadata.name.as_deref().unwrap_or_default();
    let target = secret_namespace(checkpoint);
    let _ = write!(
        body,
        "<section class=\"secret\"><h2>Provide the Secret</h2>\n\
         <p>Secret <code>{}/{}</code>, created (or completed) with your own identity.</p>\n\
         <form method=\"post\" action=\"{}/secret\" autocomplete=\"off\">\n\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\n",
        esc(target),
        esc(&secret.name),
        esc(&checkpoint_path(namespace, name)),
        esc(page.csrf),
    );
    for (i, key) in secret.keys.iter().enumerate() {
        let _ = writeln!(
            body,
            "<label for=\"secret-{i}\"><code>{}</code></label>\n\
             <input id=\"secret-{i}\" name=\"{}\" type=\"password\" autocomplete=\"off\" required>",
            esc(key),
            esc(&secret_field(key)),
        );
    }
    body.push_str(
        "<div class=\"buttons\"><button type=\"submit\" class=\"go\">Save the Secret</button></div>\n\
         <p class=\"hint\">The values go to the Kubernetes API only: they are not logged and not shown again.</p>\n</form>\n</section>\n",
    );
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// The live part of the checkpoint page: phase, deadlines, decision, apply outcome and the
/// Project's phase and history.
pub fn checkpoint_live(
    checkpoint: &Checkpoint,
    project: Option<&Project>,
    now: Timestamp,
) -> String {
    let spec = &checkpoint.spec;
    let status = checkpoint.status.clone().unwrap_or_default();
    let mut out = String::new();
    let mut row = |label: &str, value: &str| {
        let _ = writeln!(out, "<dt>{}</dt><dd>{value}</dd>", esc(label));
    };
    row(
        "Phase",
        &format!(
            "<span class=\"phase\" id=\"phase\">{}</span>",
            esc(&format::phase(checkpoint))
        ),
    );
    row(
        "Requested",
        &esc(&format!(
            "{} ({} ago) by {}",
            format::time(spec.requested_at.0),
            format::human(now.duration_since(spec.requested_at.0)),
            spec.requested_by.as_deref().unwrap_or("(not recorded)")
        )),
    );
    match &spec.sla {
        Some(sla) => {
            row(
                "Respond by",
                &esc(&format!(
                    "{} ({})",
                    format::time(sla.respond_by.0),
                    format::sla_left(checkpoint, now)
                )),
            );
            if let Some(at) = &sla.expire_at {
                row(
                    "Expires",
                    &esc(&format!(
                        "{} (nothing is applied after)",
                        format::time(at.0)
                    )),
                );
            }
        }
        None => row("Respond by", "(no SLA)"),
    }
    if let Some(plan) = &spec.plan_ref {
        row(
            "Plan",
            &format!(
                "<code>{}</code> sha256:<code class=\"digest\">{}</code>",
                esc(&plan.id),
                esc(&plan.digest)
            ),
        );
    }
    if let Some(decision) = status.decision {
        row(
            "Decision",
            &format!(
                "<span id=\"decision\">{} by <b>{}</b> at {}: {}</span>",
                esc(&format!("{decision:?}")),
                esc(status.decided_by.as_deref().unwrap_or("?")),
                esc(&status
                    .decided_at
                    .as_ref()
                    .map_or_else(|| "?".to_owned(), |t| format::time(t.0))),
                esc(status.reason.as_deref().unwrap_or("(no reason)"))
            ),
        );
    }
    if let Some(outcome) = &status.apply_outcome {
        row(
            "Apply",
            &format!(
                "<span id=\"apply\" class=\"{}\">{} at {}: {}</span>",
                if outcome.succeeded { "ok" } else { "failed" },
                if outcome.succeeded {
                    "Applied"
                } else {
                    "Failed"
                },
                esc(&format::time(outcome.at.0)),
                esc(&outcome.message)
            ),
        );
    }
    match project {
        None => row("Project", "(not found, or not readable with your identity)"),
        Some(project) => {
            let status = project.status.clone().unwrap_or_default();
            row(
                "Project",
                &format!(
                    "<span id=\"project-phase\">{}</span> · environment {}",
                    esc(&status
                        .phase
                        .map_or_else(|| "(not reconciled yet)".to_owned(), |p| format!("{p:?}"))),
                    esc(&project.spec.environment)
                ),
            );
        }
    }
    // Whether it still waits: the page's script hides its forms once it does not.
    let mut html = format!(
        "<dl class=\"facts\" data-pending=\"{}\">\n{out}</dl>\n",
        format::is_pending(checkpoint)
    );
    if let Some(project) = project {
        history(&mut html, project);
    }
    html
}

fn history(out: &mut String, project: &Project) {
    let entries = project
        .status
        .as_ref()
        .map(|s| s.history.as_slice())
        .unwrap_or_default();
    out.push_str("<h2>Project history</h2>\n");
    if entries.is_empty() {
        out.push_str("<p>Nothing yet.</p>\n");
        return;
    }
    out.push_str(
        "<table class=\"history\"><thead><tr><th>When</th><th>Outcome</th><th>Plan</th><th>Decided by</th></tr></thead><tbody>\n",
    );
    for entry in entries.iter().rev() {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
            esc(&format::time(entry.at.0)),
            esc(&entry.outcome),
            esc(&entry.plan_id),
            esc(entry.decided_by.as_deref().unwrap_or("-"))
        );
    }
    out.push_str("</tbody></table>\n");
}

fn changes(body: &mut String, checkpoint: &Checkpoint, review: Review<'_>) {
    let summary = &checkpoint.spec.summary;
    let counts = format!(
        "{} to add, {} to change, {} to destroy",
        summary.add, summary.change, summary.destroy
    );
    let _ = write!(
        body,
        "<section><h2>Changes</h2>\n<p class=\"summary\">{}</p>\n",
        esc(if summary.text.is_empty() {
            &counts
        } else {
            &summary.text
        })
    );
    match review {
        Review::Stored(review) => reviewed_changes(body, review),
        Review::Missing | Review::Unreadable(_) => {
            body.push_str("<ul class=\"changes\">\n");
            for change in &summary.changes {
                let (action, address) = change.split_once(' ').unwrap_or(("", change));
                let _ = writeln!(
                    body,
                    "<li><span class=\"action {a}\">{a}</span> <code>{}</code></li>",
                    esc(address),
                    a = esc(action)
                );
            }
            body.push_str("</ul>\n");
            let why = match review {
                Review::Unreadable(why) => format!("the plan review cannot be read ({why})"),
                _ => format!(
                    "no plan review is stored next to this checkpoint (ConfigMap {})",
                    crate::api::review_config_map_name(
                        checkpoint.metadata.name.as_deref().unwrap_or_default()
                    )
                ),
            };
            let _ = writeln!(
                body,
                "<p class=\"hint\">Values: none shown: {}.</p>",
                esc(&why)
            );
        }
    }
    body.push_str("</section>\n");
}

fn reviewed_changes(body: &mut String, review: &PlanReview) {
    for change in &review.changes {
        let _ = writeln!(
            body,
            "<details class=\"change\" open><summary><span class=\"action {a}\">{a}</span> <code>{}</code></summary>",
            esc(&change.address),
            a = esc(&change.action),
        );
        if !change.attributes.is_empty() {
            body.push_str("<table class=\"attributes\"><tbody>\n");
            for attribute in &change.attributes {
                let _ = writeln!(
                    body,
                    "<tr><th scope=\"row\"><code>{}</code></th><td class=\"before\">{}</td><td class=\"arrow\">→</td><td class=\"after\">{}</td></tr>",
                    esc(&attribute.path),
                    esc(attribute.before.as_deref().unwrap_or("")),
                    esc(attribute.after.as_deref().unwrap_or("(removed)")),
                );
            }
            body.push_str("</tbody></table>\n");
        }
        if change.omitted_attributes > 0 {
            let _ = writeln!(
                body,
                "<p class=\"hint\">… {} more attribute(s) not listed</p>",
                change.omitted_attributes
            );
        }
        body.push_str("</details>\n");
    }
    if review.omitted_changes > 0 {
        let _ = writeln!(
            body,
            "<p class=\"hint\">… {} more change(s) not listed</p>",
            review.omitted_changes
        );
    }
    let _ = writeln!(
        body,
        "<p class=\"hint\">Sensitive values show as {}; {} is decided by the apply.</p>",
        esc(crate::plan::SENSITIVE_PLACEHOLDER),
        esc(crate::plan::UNKNOWN_PLACEHOLDER)
    );
}

fn cost(body: &mut String, checkpoint: &Checkpoint, project_cost: ProjectCost<'_>) {
    body.push_str("<section><h2>Cost (monthly, USD)</h2>\n");
    match &checkpoint.spec.summary.cost {
        None => body.push_str("<p>Not priced.</p>\n"),
        Some(cost) => {
            let _ = writeln!(
                body,
                "<table class=\"cost\"><thead><tr><th>Before</th><th>After</th><th>Delta</th><th>Budget</th></tr></thead>\
                 <tbody><tr><td>${}</td><td>${}</td><td>{}</td><td>{}</td></tr></tbody></table>",
                esc(&cost.before),
                esc(&cost.after),
                esc(&format::signed_usd(&cost.delta)),
                esc(&cost
                    .budget
                    .as_ref()
                    .map_or_else(|| "(none)".to_owned(), |b| format!("${b}")))
            );
        }
    }
    match project_cost {
        ProjectCost::ThisPlan(cost)
            if !cost.top_resources.is_empty() || !cost.unpriced.is_empty() =>
        {
            body.push_str(
                "<h3>Most expensive resources after the change</h3>\n<table class=\"resources\"><tbody>\n",
            );
            for resource in &cost.top_resources {
                let _ = writeln!(
                    body,
                    "<tr><td>${}</td><td><code>{}</code></td></tr>",
                    esc(&resource.monthly),
                    esc(&resource.address)
                );
            }
            for unpriced in &cost.unpriced {
                let _ = writeln!(
                    body,
                    "<tr><td>unpriced</td><td><code>{}</code></td></tr>",
                    esc(unpriced)
                );
            }
            body.push_str("</tbody></table>\n");
        }
        ProjectCost::ThisPlan(_) => {
            body.push_str("<p class=\"hint\">Per-resource costs: none recorded.</p>\n");
        }
        ProjectCost::OtherPlan => body.push_str(
            "<p class=\"hint\">Per-resource costs: not available (the Project's current plan is not this checkpoint's).</p>\n",
        ),
        ProjectCost::Unreadable => body.push_str(
            "<p class=\"hint\">Per-resource costs: not available (the Project cannot be read).</p>\n",
        ),
    }
    body.push_str("</section>\n");
}

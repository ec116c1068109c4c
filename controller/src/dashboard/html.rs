//! The dashboard's pages: pure functions of Checkpoints, Projects and a fixed "now", so every
//! field's escaping is covered by unit tests. Every text that comes from the cluster (names,
//! reasons, summaries, plan values, API messages) goes through [`esc`]; nothing else builds
//! markup from data. The parts that live updates replace ([`queue_rows`],
//! [`checkpoint_live`]) are the same functions the full pages use.

use std::fmt::Write as _;

use jiff::Timestamp;

use crate::api::{Checkpoint, CheckpointType, Decision, Project};
use crate::cli::checkpoint::format::{self, ProjectCost, Review};
use crate::plan::PlanReview;

/// Text made safe for HTML element content and double- or single-quoted attributes.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A path segment made safe for a URL inside an attribute: Kubernetes names are DNS labels,
/// anything else is percent-encoded.
pub fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The address of a checkpoint's page.
pub fn checkpoint_path(namespace: &str, name: &str) -> String {
    format!("/c/{}/{}", segment(namespace), segment(name))
}

/// Which checkpoints the queue shows (the query string of `/` and `/events`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Decided and closed ones too, not only those waiting for a decision.
    pub all: bool,
    /// Only this type.
    pub kind: Option<CheckpointType>,
    /// Only this namespace.
    pub namespace: String,
    /// Only Projects whose name contains this.
    pub project: String,
    /// Only Projects of this environment.
    pub environment: String,
}

const TYPES: [CheckpointType; 6] = [
    CheckpointType::PlanApproval,
    CheckpointType::Destroy,
    CheckpointType::BudgetIncrease,
    CheckpointType::Credential,
    CheckpointType::ManualOperation,
    CheckpointType::FailureEscalation,
];

fn type_name(kind: CheckpointType) -> String {
    format!("{kind:?}")
}

impl Filter {
    /// From a query string (unknown keys and values are ignored).
    pub fn from_query(query: &str) -> Filter {
        let mut filter = Filter::default();
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            let value = value.trim().to_owned();
            match key.as_ref() {
                "show" => filter.all = value == "all",
                "type" => filter.kind = TYPES.into_iter().find(|t| type_name(*t) == value),
                "namespace" => filter.namespace = value,
                "project" => filter.project = value,
                "environment" => filter.environment = value,
                _ => {}
            }
        }
        filter
    }

    /// The query string that gives this filter back.
    pub fn to_query(&self) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        if self.all {
            query.append_pair("show", "all");
        }
        if let Some(kind) = self.kind {
            query.append_pair("type", &type_name(kind));
        }
        for (key, value) in [
            ("namespace", &self.namespace),
            ("project", &self.project),
            ("environment", &self.environment),
        ] {
            if !value.is_empty() {
                query.append_pair(key, value);
            }
        }
        query.finish()
    }

    /// Whether the queue shows `checkpoint` (of `project`, when readable).
    pub fn keeps(&self, checkpoint: &Checkpoint, project: Option<&Project>) -> bool {
        (self.all || format::is_pending(checkpoint))
            && self
                .kind
                .is_none_or(|k| checkpoint.spec.checkpoint_type == k)
            && (self.namespace.is_empty()
                || checkpoint.metadata.namespace.as_deref() == Some(self.namespace.as_str()))
            && (self.project.is_empty() || checkpoint.spec.project_ref.name.contains(&self.project))
            && (self.environment.is_empty()
                || project.is_some_and(|p| p.spec.environment == self.environment))
    }
}

/// The page around `body`: stylesheet and script from this server only (the CSP allows
/// nothing else), no inline script or style.
fn layout(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{} · tollgate</title>\n<link rel=\"stylesheet\" href=\"/static/dashboard.css\">\n\
         <script src=\"/static/dashboard.js\" defer></script>\n</head>\n<body>\n\
         <header class=\"top\"><a href=\"/\" class=\"brand\">tollgate</a>\
         <span id=\"live-state\" class=\"live-state\" role=\"status\">not live</span></header>\n\
         <main>\n{body}</main>\n</body>\n</html>\n",
        esc(title)
    )
}

/// A page that only says something (sign-in needed, refused request, not found).
pub fn message_page(title: &str, message: &str) -> String {
    layout(
        title,
        &format!(
            "<h1>{}</h1>\n<p class=\"message\">{}</p>\n",
            esc(title),
            esc(message)
        ),
    )
}

/// One checkpoint of the queue with its Project (when the person may read it).
pub type Entry<'a> = (&'a Checkpoint, Option<&'a Project>);

/// What the queue shows besides its rows.
pub struct Queue<'a> {
    /// The rows, sorted by deadline.
    pub entries: &'a [Entry<'a>],
    /// The filter in effect.
    pub filter: &'a Filter,
    /// Why checkpoints cannot be listed (the API's message), if they cannot.
    pub error: Option<&'a str>,
    /// Whether the first list has not arrived yet.
    pub loading: bool,
    /// Where the queue comes from, e.g. "all namespaces".
    pub scope: &'a str,
    /// Now.
    pub now: Timestamp,
}

/// The queue page: filters and the live table.
pub fn queue_page(queue: &Queue<'_>) -> String {
    let filter = queue.filter;
    let mut body = String::new();
    let _ = write!(
        body,
        "<h1>Checkpoints</h1>\n<p class=\"scope\">{} · soonest deadline first</p>\n\
         <form class=\"filters\" method=\"get\" action=\"/\">\n",
        esc(queue.scope)
    );
    let _ = write!(
        body,
        "<label>Show <select name=\"show\"><option value=\"pending\"{}>waiting for a decision</option>\
         <option value=\"all\"{}>all</option></select></label>\n\
         <label>Type <select name=\"type\"><option value=\"\">any</option>",
        if filter.all { "" } else { " selected" },
        if filter.all { " selected" } else { "" },
    );
    for kind in TYPES {
        let name = type_name(kind);
        let selected = if filter.kind == Some(kind) {
            " selected"
        } else {
            ""
        };
        let _ = write!(body, "<option{selected}>{name}</option>");
    }
    body.push_str("</select></label>\n");
    for (key, label, value) in [
        ("namespace", "Namespace", &filter.namespace),
        ("project", "Project", &filter.project),
        ("environment", "Environment", &filter.environment),
    ] {
        let _ = writeln!(
            body,
            "<label>{label} <input name=\"{key}\" value=\"{}\" size=\"12\"></label>",
            esc(value)
        );
    }
    body.push_str("<button type=\"submit\">Filter</button>\n</form>\n");
    let _ = write!(
        body,
        "<div class=\"queue\" data-live=\"/events?{}\">\n{}</div>\n",
        esc(&filter.to_query()),
        queue_rows(queue)
    );
    layout("Checkpoints", &body)
}

/// The live part of the queue: the table (or why there is none).
pub fn queue_rows(queue: &Queue<'_>) -> String {
    let mut out = String::new();
    if let Some(error) = queue.error {
        let _ = writeln!(
            out,
            "<p class=\"refusal\" role=\"alert\">Cannot list checkpoints in {}: <span class=\"api-message\">{}</span></p>",
            esc(queue.scope),
            esc(error)
        );
    }
    if queue.loading {
        out.push_str("<p class=\"empty\">Loading…</p>\n");
        return out;
    }
    if queue.entries.is_empty() {
        out.push_str("<p class=\"empty\">No checkpoint matches.</p>\n");
        return out;
    }
    out.push_str(
        "<table class=\"cards\">\n<thead><tr><th>SLA left</th><th>Checkpoint</th><th>Type</th>\
         <th>Project</th><th>Environment</th><th>Cost Δ</th><th>Risks</th><th>Age</th>\
         <th>Phase</th></tr></thead>\n<tbody>\n",
    );
    for (checkpoint, project) in queue.entries {
        let namespace = checkpoint.metadata.namespace.as_deref().unwrap_or_default();
        let name = checkpoint.metadata.name.as_deref().unwrap_or_default();
        let sla = format::sla_left(checkpoint, queue.now);
        let overdue = if sla.starts_with("overdue") {
            " overdue"
        } else {
            ""
        };
        let environment = project.map_or("-", |p| p.spec.environment.as_str());
        let _ = writeln!(
            out,
            "<tr data-checkpoint=\"{ns}/{n}\"><td data-label=\"SLA left\" class=\"sla{overdue}\">{sla}</td>\
             <td data-label=\"Checkpoint\"><a href=\"{href}\">{ns_t}/{n_t}</a></td>\
             <td data-label=\"Type\">{kind:?}</td><td data-label=\"Project\">{project}</td>\
             <td data-label=\"Environment\">{env}</td><td data-label=\"Cost Δ\">{cost}</td>\
             <td data-label=\"Risks\">{risks}</td><td data-label=\"Age\">{age}</td>\
             <td data-label=\"Phase\"><span class=\"phase\">{phase}</span></td></tr>",
            ns = esc(namespace),
            n = esc(name),
            ns_t = esc(namespace),
            n_t = esc(name),
            href = esc(&checkpoint_path(namespace, name)),
            sla = esc(&sla),
            kind = checkpoint.spec.checkpoint_type,
            project = esc(&checkpoint.spec.project_ref.name),
            env = esc(environment),
            cost = esc(&format::cost_delta(checkpoint)),
            risks = esc(&format::risks(checkpoint)),
            age = esc(&format::age(checkpoint, queue.now)),
            phase = esc(&format::phase(checkpoint)),
        );
    }
    out.push_str("</tbody>\n</table>\n");
    out
}

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
    let _ = write!(
        body,
        "<section class=\"status\" data-live=\"{}/events\">\n{}</section>\n",
        esc(&checkpoint_path(namespace, name)),
        checkpoint_live(checkpoint, page.project, page.now)
    );
    if format::is_pending(checkpoint) {
        decision_form(&mut body, page);
    }
    if !spec.reasons.is_empty() {
        body.push_str("<section><h2>Why a person must decide</h2>\n<ul>\n");
        for reason in &spec.reasons {
            let _ = writeln!(body, "<li>{}</li>", esc(reason));
        }
        body.push_str("</ul>\n</section>\n");
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
    let mut html = format!("<dl class=\"facts\">\n{out}</dl>\n");
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

#[cfg(test)]
pub(crate) mod tests;

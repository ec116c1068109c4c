//! The dashboard's pages: pure functions of Checkpoints, Projects and a fixed "now", so every
//! field's escaping is covered by unit tests. Every text that comes from the cluster (names,
//! reasons, summaries, plan values, API messages) goes through [`esc`]; nothing else builds
//! markup from data. The parts that live updates replace ([`queue_rows`],
//! [`checkpoint_live`]) are the same functions the full pages use.

use std::fmt::Write as _;

use jiff::Timestamp;

use crate::api::{Checkpoint, CheckpointType, Project};
use crate::cli::checkpoint::format;

mod checkpoint;

pub use checkpoint::{
    CheckpointPage, Refusal, checkpoint_live, checkpoint_page, secret_field, secret_namespace,
};

pub use crate::markup::escape as esc;

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
pub(super) fn layout(title: &str, body: &str) -> String {
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

/// The sign-in page of token mode, with why the last attempt was refused (the API
/// server's message, verbatim). The token field is a password field the browser does not
/// fill in or keep, and nothing typed is ever sent back.
pub fn sign_in_page(refusal: Option<&str>) -> String {
    let mut body = String::from("<h1>Sign in</h1>\n");
    if let Some(message) = refusal {
        let _ = writeln!(
            body,
            "<section class=\"refusal\" role=\"alert\" id=\"refusal\"><h2>Refused</h2>\
             <p class=\"api-message\">{}</p></section>",
            esc(message)
        );
    }
    body.push_str(
        "<form class=\"sign-in\" method=\"post\" action=\"/sign-in\">\n\
         <label for=\"token\">Your Kubernetes bearer token</label>\n\
         <input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"off\" required>\n\
         <div class=\"buttons\"><button type=\"submit\" class=\"go\">Sign in</button></div>\n\
         <p class=\"hint\">A token the cluster accepts for you: an OIDC ID token, or \
         <code>kubectl create token</code> for your ServiceAccount. It stays in this server's memory \
         for your session only; every read and decision is made with it, so RBAC and tollgate's \
         admission apply as to kubectl.</p>\n</form>\n",
    );
    layout("Sign in", &body)
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
    /// Who is signed in (token mode), for the sign-out form.
    pub account: Option<Account<'a>>,
    /// Now.
    pub now: Timestamp,
}

/// A signed-in person (token mode).
#[derive(Clone, Copy)]
pub struct Account<'a> {
    /// Their username, as the API server authenticated it.
    pub user: &'a str,
    /// The session's CSRF token, for the sign-out form.
    pub csrf: &'a str,
}

/// The queue page: filters and the live table.
pub fn queue_page(queue: &Queue<'_>) -> String {
    let filter = queue.filter;
    let mut body = String::new();
    let _ = writeln!(
        body,
        "<h1>Checkpoints</h1>\n<p class=\"scope\">{} · soonest deadline first</p>",
        esc(queue.scope)
    );
    if let Some(account) = queue.account {
        let _ = writeln!(
            body,
            "<form class=\"account\" method=\"post\" action=\"/sign-out\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\">Signed in as <b id=\"user\">{}</b> \
             <button type=\"submit\">Sign out</button></form>",
            esc(account.csrf),
            esc(account.user)
        );
    }
    body.push_str("<form class=\"filters\" method=\"get\" action=\"/\">\n");
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

#[cfg(test)]
pub(crate) mod tests;

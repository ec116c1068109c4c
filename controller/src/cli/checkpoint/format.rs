//! What `tollgate checkpoint list|show|watch` print: pure functions of Checkpoints and a
//! fixed "now", so their output is covered by golden tests.

use std::fmt::Write as _;

use jiff::{SignedDuration, Timestamp};

use crate::api::{Checkpoint, CheckpointPhase, CostStatus, Project};
use crate::plan::PlanReview;

/// Placeholder for an empty cell.
const NONE: &str = "-";

/// The time a checkpoint is due: `spec.sla.respondBy`, else when it was opened.
pub fn deadline(checkpoint: &Checkpoint) -> Timestamp {
    checkpoint
        .spec
        .sla
        .as_ref()
        .map_or(checkpoint.spec.requested_at.0, |sla| sla.respond_by.0)
}

/// Sorts checkpoints by deadline, soonest first (then namespace, name).
pub fn sort_by_deadline(checkpoints: &mut [Checkpoint]) {
    checkpoints.sort_by(|a, b| {
        (
            deadline(a),
            a.metadata.namespace.as_deref(),
            a.metadata.name.as_deref(),
        )
            .cmp(&(
                deadline(b),
                b.metadata.namespace.as_deref(),
                b.metadata.name.as_deref(),
            ))
    });
}

/// Whether a checkpoint still waits for a decision (`Pending` or `Escalated`, undecided).
pub fn is_pending(checkpoint: &Checkpoint) -> bool {
    let status = checkpoint.status.as_ref();
    status.and_then(|s| s.decision).is_none()
        && matches!(
            status.and_then(|s| s.phase),
            None | Some(CheckpointPhase::Pending | CheckpointPhase::Escalated)
        )
}

/// The phase shown: `status.phase`, else the decision the controller has not acted on
/// yet, else `Pending`.
pub fn phase(checkpoint: &Checkpoint) -> String {
    let status = checkpoint.status.as_ref();
    match (
        status.and_then(|s| s.phase),
        status.and_then(|s| s.decision),
    ) {
        (Some(phase), _) => format!("{phase:?}"),
        (None, Some(decision)) => format!("{decision:?}"),
        (None, None) => "Pending".to_owned(),
    }
}

/// A duration for people: its two largest units, e.g. `2d3h`, `1h20m`, `45s`.
pub fn human(d: SignedDuration) -> String {
    let mut secs = d.as_secs().unsigned_abs();
    if secs == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    let mut units = 0;
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= size && units < 2 {
            let _ = write!(out, "{}{unit}", secs / size);
            secs %= size;
            units += 1;
        } else if units > 0 {
            // Only adjacent units: `1d5m` reads worse than `1d`.
            units = 2;
        }
    }
    out
}

/// Time since the checkpoint was created.
pub fn age(checkpoint: &Checkpoint, now: Timestamp) -> String {
    let created = checkpoint
        .metadata
        .creation_timestamp
        .as_ref()
        .map_or(checkpoint.spec.requested_at.0, |t| t.0);
    human(now.duration_since(created))
}

/// Time left to respond (`overdue 20m` once past); `-` when decided or without an SLA.
pub fn sla_left(checkpoint: &Checkpoint, now: Timestamp) -> String {
    match &checkpoint.spec.sla {
        Some(sla) if is_pending(checkpoint) => {
            let left = sla.respond_by.0.duration_since(now);
            if left.is_negative() {
                format!("overdue {}", human(left))
            } else {
                human(left)
            }
        }
        _ => NONE.to_owned(),
    }
}

/// A USD amount with its sign, e.g. `+$12.40`, `-$3.00`, `$0.00`.
pub fn signed_usd(amount: &str) -> String {
    if let Some(rest) = amount.strip_prefix('-') {
        format!("-${rest}")
    } else if amount.chars().all(|c| c == '0' || c == '.') {
        format!("${amount}")
    } else {
        format!("+${}", amount.trim_start_matches('+'))
    }
}

/// The monthly cost delta, e.g. `+$3.50`; `-` when not priced.
pub fn cost_delta(checkpoint: &Checkpoint) -> String {
    checkpoint
        .spec
        .summary
        .cost
        .as_ref()
        .map_or_else(|| NONE.to_owned(), |c| signed_usd(&c.delta))
}

/// The risk flags' kinds, e.g. `2 StatefulDestroy,IamChange`; `-` without any.
pub fn risks(checkpoint: &Checkpoint) -> String {
    let flags = &checkpoint.spec.summary.risks;
    if flags.is_empty() {
        return NONE.to_owned();
    }
    let mut kinds: Vec<&str> = Vec::new();
    for kind in flags.iter().filter_map(|r| r.split_whitespace().next()) {
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    format!("{} {}", flags.len(), kinds.join(","))
}

fn name(checkpoint: &Checkpoint) -> (&str, &str) {
    (
        checkpoint.metadata.namespace.as_deref().unwrap_or(NONE),
        checkpoint.metadata.name.as_deref().unwrap_or(NONE),
    )
}

/// A timestamp to the second, UTC.
pub fn time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// One row of `list`; `wide` adds RESPOND-BY, REQUESTED-BY, DECIDED-BY and SUMMARY.
fn row(checkpoint: &Checkpoint, now: Timestamp, wide: bool) -> Vec<String> {
    let (namespace, name) = name(checkpoint);
    let spec = &checkpoint.spec;
    let mut cells = vec![
        namespace.to_owned(),
        name.to_owned(),
        format!("{:?}", spec.checkpoint_type),
        spec.project_ref.name.clone(),
        phase(checkpoint),
        age(checkpoint, now),
        sla_left(checkpoint, now),
        cost_delta(checkpoint),
        risks(checkpoint),
    ];
    if wide {
        let status = checkpoint.status.as_ref();
        cells.extend([
            spec.sla
                .as_ref()
                .map_or_else(|| NONE.to_owned(), |s| time(s.respond_by.0)),
            spec.requested_by.clone().unwrap_or_else(|| NONE.to_owned()),
            status
                .and_then(|s| s.decided_by.clone())
                .unwrap_or_else(|| NONE.to_owned()),
            spec.summary.text.clone(),
        ]);
    }
    cells
}

/// Column headers of `list`.
const HEADERS: [&str; 9] = [
    "NAMESPACE",
    "NAME",
    "TYPE",
    "PROJECT",
    "PHASE",
    "AGE",
    "SLA LEFT",
    "COST Δ",
    "RISKS",
];
const WIDE_HEADERS: [&str; 4] = ["RESPOND-BY", "REQUESTED-BY", "DECIDED-BY", "SUMMARY"];

/// `list -o table|wide`: aligned columns, in the order given (sort first).
pub fn table(checkpoints: &[Checkpoint], now: Timestamp, wide: bool) -> String {
    let mut rows: Vec<Vec<String>> = vec![
        HEADERS
            .iter()
            .chain(if wide { &WIDE_HEADERS[..] } else { &[] })
            .map(|h| (*h).to_owned())
            .collect(),
    ];
    rows.extend(checkpoints.iter().map(|c| row(c, now, wide)));
    align(&rows)
}

fn align(rows: &[Vec<String>]) -> String {
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let pad = widths[i].saturating_sub(cell.chars().count()) + 3;
                let _ = write!(line, "{cell}{}", " ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `list -o json`: a Kubernetes `List` of the Checkpoints, in the order given.
pub fn json(checkpoints: &[Checkpoint]) -> Result<String, serde_json::Error> {
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": checkpoints});
    serde_json::to_string_pretty(&list).map(|s| s + "\n")
}

/// Every change of the review with its attributes: `path: before → after`.
fn write_review(out: &mut String, review: &PlanReview) {
    for change in &review.changes {
        let _ = writeln!(out, "  {:<8} {}", change.action, change.address);
        for a in &change.attributes {
            let text = match (&a.before, &a.after) {
                (Some(before), Some(after)) => format!("{before} → {after}"),
                (None, Some(after)) => after.clone(),
                (Some(before), None) => format!("{before} → (removed)"),
                (None, None) => String::new(),
            };
            let _ = writeln!(out, "      {}: {text}", a.path);
        }
        if change.omitted_attributes > 0 {
            let _ = writeln!(
                out,
                "      … {} more attribute(s) not listed",
                change.omitted_attributes
            );
        }
    }
    if review.omitted_changes > 0 {
        let _ = writeln!(
            out,
            "  … {} more change(s) not listed",
            review.omitted_changes
        );
    }
    let _ = writeln!(
        out,
        "  Values: sensitive ones show as {}; {} is decided by the apply.",
        crate::plan::SENSITIVE_PLACEHOLDER,
        crate::plan::UNKNOWN_PLACEHOLDER
    );
}

/// Per-resource costs for `show`, from the checkpoint's Project.
#[derive(Clone, Copy, Debug)]
pub enum ProjectCost<'a> {
    /// The Project's `status.cost`, its current plan being this checkpoint's.
    ThisPlan(&'a CostStatus),
    /// The Project's current plan is another one (or it has none priced).
    OtherPlan,
    /// The Project could not be read (deleted, or RBAC).
    Unreadable,
}

impl<'a> ProjectCost<'a> {
    /// The costs of `checkpoint`'s plan from its Project (`None`: it could not be read).
    pub fn of(checkpoint: &Checkpoint, project: Option<&'a Project>) -> Self {
        let Some(project) = project else {
            return ProjectCost::Unreadable;
        };
        let status = project.status.as_ref();
        let same_plan = match (
            status.and_then(|s| s.plan.as_ref()),
            &checkpoint.spec.plan_ref,
        ) {
            (Some(plan), Some(reference)) => plan.id == reference.id,
            _ => false,
        };
        match status.and_then(|s| s.cost.as_ref()) {
            Some(cost) if same_plan => ProjectCost::ThisPlan(cost),
            _ => ProjectCost::OtherPlan,
        }
    }
}

/// The plan review stored next to the checkpoint (ConfigMap `<checkpoint>-review`).
#[derive(Clone, Copy, Debug)]
pub enum Review<'a> {
    /// Read and parsed.
    Stored(&'a PlanReview),
    /// There is none (a checkpoint opened by an older controller, or storing it failed).
    Missing,
    /// It could not be read or parsed: why.
    Unreadable(&'a str),
}

/// `show NAME`: everything a TO needs to decide.
pub fn show(
    checkpoint: &Checkpoint,
    review: Review<'_>,
    project_cost: ProjectCost<'_>,
    now: Timestamp,
) -> String {
    let (namespace, name) = name(checkpoint);
    let spec = &checkpoint.spec;
    let status = checkpoint.status.clone().unwrap_or_default();
    let mut out = String::new();
    let mut line = |label: &str, value: &str| {
        let _ = writeln!(out, "{:<14}{value}", format!("{label}:"));
    };
    line("Checkpoint", &format!("{namespace}/{name}"));
    line("Type", &format!("{:?}", spec.checkpoint_type));
    line("Project", &spec.project_ref.name);
    line("Phase", &phase(checkpoint));
    line(
        "Requested",
        &format!(
            "{} ({} ago) by {}",
            time(spec.requested_at.0),
            human(now.duration_since(spec.requested_at.0)),
            spec.requested_by.as_deref().unwrap_or("(not recorded)")
        ),
    );
    if let Some(sla) = &spec.sla {
        line(
            "Respond by",
            &format!("{} ({})", time(sla.respond_by.0), sla_left(checkpoint, now)),
        );
        if let Some(at) = &sla.escalate_at {
            line("Escalate at", &time(at.0));
        }
        if let Some(at) = &sla.expire_at {
            line(
                "Expire at",
                &format!("{} (nothing is applied after)", time(at.0)),
            );
        }
    } else {
        line("Respond by", "(no SLA)");
    }
    match &spec.plan_ref {
        Some(plan) => line("Plan", &format!("{} sha256:{}", plan.id, plan.digest)),
        None => line("Plan", "(none)"),
    }
    if let Some(approvers) = &spec.approvers {
        let mut who = Vec::new();
        if !approvers.users.is_empty() {
            who.push(format!("users {}", approvers.users.join(", ")));
        }
        if !approvers.groups.is_empty() {
            who.push(format!("groups {}", approvers.groups.join(", ")));
        }
        if who.is_empty() {
            who.push("anyone with the verb approve".to_owned());
        }
        if approvers.forbid_self_approval {
            who.push("four eyes (not the requester)".to_owned());
        }
        line("Approvers", &who.join("; "));
    }
    match (status.decision, &status.decided_by) {
        (Some(decision), by) => line(
            "Decision",
            &format!(
                "{decision:?} by {} at {}: {}",
                by.as_deref().unwrap_or("?"),
                status
                    .decided_at
                    .as_ref()
                    .map_or_else(|| "?".to_owned(), |t| time(t.0)),
                status.reason.as_deref().unwrap_or("(no reason)")
            ),
        ),
        (None, _) => line("Decision", "(none yet)"),
    }

    if !spec.reasons.is_empty() {
        out.push_str("\nWhy a person must decide:\n");
        for reason in &spec.reasons {
            let _ = writeln!(out, "  - {reason}");
        }
    }

    let summary = &spec.summary;
    let counts = format!(
        "{} to add, {} to change, {} to destroy",
        summary.add, summary.change, summary.destroy
    );
    let text = if summary.text.is_empty() {
        &counts
    } else {
        &summary.text
    };
    let _ = writeln!(out, "\nChanges: {text}");
    match review {
        Review::Stored(review) => write_review(&mut out, review),
        Review::Missing | Review::Unreadable(_) => {
            for change in &summary.changes {
                let (action, address) = change.split_once(' ').unwrap_or(("", change));
                let _ = writeln!(out, "  {action:<8} {address}");
            }
            let listed = i64::try_from(summary.changes.len()).unwrap_or(i64::MAX);
            let counted = summary.add + summary.change + summary.destroy;
            if listed < counted {
                let _ = writeln!(
                    out,
                    "  … {} more not listed (a Checkpoint lists at most 50 changes)",
                    counted - listed
                );
            }
            let why = match review {
                Review::Unreadable(why) => format!("the plan review cannot be read ({why})"),
                _ => format!(
                    "no plan review is stored next to this checkpoint (ConfigMap {})",
                    crate::api::review_config_map_name(name)
                ),
            };
            let _ = writeln!(out, "  Values: none shown: {why}.");
        }
    }

    out.push_str("\nRisk flags:");
    if summary.risks.is_empty() {
        out.push_str(" none\n");
    } else {
        out.push('\n');
        for risk in &summary.risks {
            let _ = writeln!(out, "  ! {risk}");
        }
    }

    out.push_str("\nCost (monthly, USD):");
    match &summary.cost {
        None => out.push_str(" not priced\n"),
        Some(cost) => {
            out.push('\n');
            let rows = vec![
                vec![
                    "before".into(),
                    "after".into(),
                    "delta".into(),
                    "budget".into(),
                ],
                vec![
                    format!("${}", cost.before),
                    format!("${}", cost.after),
                    signed_usd(&cost.delta),
                    cost.budget
                        .as_ref()
                        .map_or_else(|| "(none)".to_owned(), |b| format!("${b}")),
                ],
            ];
            for l in align(&rows).lines() {
                let _ = writeln!(out, "  {l}");
            }
        }
    }
    match project_cost {
        ProjectCost::ThisPlan(cost)
            if !cost.top_resources.is_empty() || !cost.unpriced.is_empty() =>
        {
            out.push_str("\nMost expensive resources after the change (from the Project):\n");
            let mut rows = vec![vec!["monthly".to_owned(), "address".to_owned()]];
            rows.extend(
                cost.top_resources
                    .iter()
                    .map(|r| vec![format!("${}", r.monthly), r.address.clone()]),
            );
            for l in align(&rows).lines() {
                let _ = writeln!(out, "  {l}");
            }
            for unpriced in &cost.unpriced {
                let _ = writeln!(out, "  unpriced: {unpriced}");
            }
        }
        ProjectCost::ThisPlan(_) => out.push_str("  Per-resource costs: none recorded.\n"),
        ProjectCost::OtherPlan => out.push_str(
            "  Per-resource costs: not available (the Project's current plan is not this checkpoint's).\n",
        ),
        ProjectCost::Unreadable => out.push_str(
            "  Per-resource costs: not available (the Project could not be read).\n",
        ),
    }

    if is_pending(checkpoint) {
        let _ = write!(
            out,
            "\nDecide:\n  tollgate checkpoint approve {name} -n {namespace} --reason \"…\"\n  tollgate checkpoint reject  {name} -n {namespace} --reason \"…\"\n"
        );
    }
    out
}

/// What happened to a checkpoint in `watch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// There when the watch started.
    Listed,
    /// Created.
    Added,
    /// Changed (decided, escalated, expired…).
    Modified,
    /// Deleted.
    Deleted,
}

/// One line of `watch`: time, change, namespace/name, type, project, phase, SLA left,
/// cost Δ, risks, and who decided.
pub fn watch_line(change: Change, checkpoint: &Checkpoint, now: Timestamp) -> String {
    let (namespace, name) = name(checkpoint);
    let status = checkpoint.status.as_ref();
    let decided = match (
        status.and_then(|s| s.decision),
        status.and_then(|s| s.decided_by.as_deref()),
    ) {
        (Some(decision), by) => format!(
            " {}-by={}",
            decision.verb().1.replace(' ', "-"),
            by.unwrap_or("?")
        ),
        (None, _) => String::new(),
    };
    format!(
        "{} {:<8} {namespace}/{name} type={:?} project={} phase={} sla-left={} cost-delta={} risks={}{decided}",
        time(now),
        format!("{change:?}"),
        checkpoint.spec.checkpoint_type,
        checkpoint.spec.project_ref.name,
        phase(checkpoint),
        sla_left(checkpoint, now).replace(' ', "-"),
        cost_delta(checkpoint),
        risks(checkpoint).replace(' ', ":"),
    )
}

#[cfg(test)]
pub(crate) mod tests;

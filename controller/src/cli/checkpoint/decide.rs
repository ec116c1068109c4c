//! `approve`/`reject`: each checkpoint shown, confirmed (unless `--yes`), decided through
//! a [`Decider`] (the status subresource under the user's identity), refusals explained,
//! and one exit code for the whole run.

use std::future::Future;
use std::io::Write;

use jiff::Timestamp;
use kube::core::Status;

use super::format;
use crate::api::{Checkpoint, Decision};

/// Every checkpoint asked for was decided (or the user declined some and decided the rest).
pub const EXIT_DECIDED: u8 = 0;
/// At least one decision was refused by the API (RBAC, admission, schema) or the
/// checkpoint could not be read; the others were decided.
pub const EXIT_REFUSED: u8 = 1;
/// Usage or configuration error (flags, kubeconfig, API unreachable): nothing decided.
pub const EXIT_USAGE: u8 = 2;
/// Nothing to decide: no checkpoint matched, or every prompt was answered no.
pub const EXIT_NOTHING: u8 = 3;

/// Writes a decision: `status.decision` and `status.reason`, nothing else.
pub trait Decider {
    /// Decides `namespace/name`; the API's answer.
    fn decide(
        &self,
        namespace: &str,
        name: &str,
        decision: Decision,
        reason: &str,
    ) -> impl Future<Output = Result<Checkpoint, kube::Error>>;
}

/// A checkpoint to decide, or why it could not be read.
pub enum Target {
    /// Read; decide it.
    Found(Box<Checkpoint>),
    /// Reading it failed (not found, forbidden): reported as refused.
    Unreadable {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The API's error.
        error: kube::Error,
    },
}

/// How many were decided, refused and declined.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Decided as asked.
    pub decided: usize,
    /// Refused by the API or unreadable.
    pub refused: usize,
    /// Answered no at the prompt.
    pub declined: usize,
}

impl Outcome {
    /// The exit code: [`EXIT_REFUSED`] if any was refused, else [`EXIT_NOTHING`] when
    /// nothing was decided, else [`EXIT_DECIDED`].
    pub fn exit_code(&self) -> u8 {
        if self.refused > 0 {
            EXIT_REFUSED
        } else if self.decided == 0 {
            EXIT_NOTHING
        } else {
            EXIT_DECIDED
        }
    }
}

/// The block shown before each decision.
pub fn preview(checkpoint: &Checkpoint, now: Timestamp) -> String {
    let spec = &checkpoint.spec;
    format!(
        "{}/{}  {:?} of Project {}  phase {}\n  {}  cost {}  risks {}  SLA left {}\n",
        checkpoint.metadata.namespace.as_deref().unwrap_or("-"),
        checkpoint.metadata.name.as_deref().unwrap_or("-"),
        spec.checkpoint_type,
        spec.project_ref.name,
        format::phase(checkpoint),
        spec.summary.text,
        spec.summary
            .cost
            .as_ref()
            .map_or_else(|| "-".to_owned(), |c| format::signed_usd(&c.delta)),
        format::risks(checkpoint),
        format::sla_left(checkpoint, now),
    )
}

/// What the user asked for.
pub struct Request<'a> {
    /// Approve or reject.
    pub decision: Decision,
    /// `--reason`.
    pub reason: &'a str,
    /// Now, for the SLA shown.
    pub now: Timestamp,
}

/// Decides every target in order. `confirm` is asked for each (the caller makes it
/// always-yes for `--yes`); progress goes to `out`, refusals to `err`.
pub async fn decide_all<D: Decider>(
    decider: &D,
    targets: Vec<Target>,
    request: &Request<'_>,
    mut confirm: impl FnMut(&Checkpoint) -> std::io::Result<bool>,
    out: &mut impl Write,
    err: &mut impl Write,
) -> std::io::Result<Outcome> {
    let Request {
        decision,
        reason,
        now,
    } = *request;
    let (verb, done) = decision.verb();
    let mut outcome = Outcome::default();
    for target in targets {
        let checkpoint = match target {
            Target::Found(c) => c,
            Target::Unreadable {
                namespace,
                name,
                error,
            } => {
                outcome.refused += 1;
                report_refusal(err, &namespace, &name, &error)?;
                continue;
            }
        };
        let namespace = checkpoint.metadata.namespace.clone().unwrap_or_default();
        let name = checkpoint.metadata.name.clone().unwrap_or_default();
        write!(out, "{}", preview(&checkpoint, now))?;
        if !confirm(&checkpoint)? {
            outcome.declined += 1;
            writeln!(out, "  skipped: {namespace}/{name} not {done}")?;
            continue;
        }
        match decider.decide(&namespace, &name, decision, reason).await {
            Ok(decided) => {
                outcome.decided += 1;
                let by = decided
                    .status
                    .and_then(|s| s.decided_by)
                    .unwrap_or_else(|| "you".to_owned());
                writeln!(out, "  {done}: {namespace}/{name} (decided by {by})")?;
            }
            Err(error) => {
                outcome.refused += 1;
                writeln!(out, "  not {done}: {namespace}/{name} (refused, see below)")?;
                report_refusal(err, &namespace, &name, &error)?;
            }
        }
    }
    if outcome == Outcome::default() {
        writeln!(err, "nothing to {verb}: no checkpoint matched")?;
    }
    Ok(outcome)
}

fn report_refusal(
    err: &mut impl Write,
    namespace: &str,
    name: &str,
    error: &kube::Error,
) -> std::io::Result<()> {
    match error {
        kube::Error::Api(status) => writeln!(
            err,
            "refused: {namespace}/{name}: {}\n  refused by: {}",
            status.message,
            refused_by(status, namespace)
        ),
        other => writeln!(
            err,
            "failed: {namespace}/{name}: {other}\n  the request did not reach a decision; check your connection and run again"
        ),
    }
}

/// Which permission or rule refused a request, from the API's answer.
pub fn refused_by(status: &Status, namespace: &str) -> String {
    let message = status.message.as_str();
    let source = if let Some(rest) = message.split("admission webhook \"").nth(1) {
        let webhook = rest.split('"').next().unwrap_or_default();
        Some(format!("tollgate's admission webhook {webhook}"))
    } else if let Some(rest) = message.split("ValidatingAdmissionPolicy '").nth(1) {
        let policy = rest.split('\'').next().unwrap_or_default();
        Some(format!(
            "the apiserver's ValidatingAdmissionPolicy {policy} (tollgate's decision rules)"
        ))
    } else {
        None
    };
    if let Some(source) = source {
        return format!("{source}: {}", decision_rule(message, namespace));
    }
    match status.code {
        401 => "authentication: the API server did not accept your kubeconfig's credentials; log in again".to_owned(),
        403 if message.contains("checkpoints/status") => format!(
            "permission: RBAC, you may not patch checkpoints/status in namespace {namespace}; ask for the ClusterRole tollgate-approver to be bound to you there"
        ),
        403 => format!(
            "permission: RBAC refused the request in namespace {namespace}; tollgate's TO role is the ClusterRole tollgate-approver"
        ),
        404 => format!(
            "not found: no such checkpoint in namespace {namespace}; check the name and -n/--namespace (`tollgate checkpoint list`)"
        ),
        409 => "conflict: the checkpoint changed while you decided; look again (`tollgate checkpoint show`) and run again".to_owned(),
        422 => "rule: the Checkpoint's schema and validation rules (e.g. a decision cannot be changed once made)".to_owned(),
        code => format!("the API server (HTTP {code}, {})", status.reason),
    }
}

/// The decision rule named by an admission refusal.
fn decision_rule(message: &str, namespace: &str) -> String {
    let rules: [(&str, String); 8] = [
        (
            "needs the RBAC verb approve",
            format!(
                "permission: the RBAC verb approve on checkpoints.tollgate.dev in namespace {namespace} (ClusterRole tollgate-approver); write access to the status is not enough"
            ),
        ),
        (
            "four eyes",
            "rule: four eyes (approvers.forbidSelfApproval): whoever last changed the Project may not decide; another approver must".to_owned(),
        ),
        (
            "only its approvers may",
            "rule: the checkpoint's approvers (spec.approvers): ask one of them".to_owned(),
        ),
        (
            "may not change the decision",
            "rule: a decision is final; to change course, change the Project".to_owned(),
        ),
        (
            "Superseded",
            "rule: only the Project's current checkpoint can be decided (status.checkpointRef of the Project)".to_owned(),
        ),
        (
            "Expired",
            "rule: an expired checkpoint cannot be decided; ask for a re-plan (tollgate.dev/replan)".to_owned(),
        ),
        (
            "may only set status.decision and status.reason",
            "rule: a TO writes only status.decision and status.reason".to_owned(),
        ),
        (
            "could not check whether",
            "the webhook could not ask the apiserver (SubjectAccessReview); retry, and if it persists see the controller's log".to_owned(),
        ),
    ];
    rules
        .iter()
        .find(|(phrase, _)| message.contains(phrase))
        .map_or_else(
            || "rule: tollgate's decision rules (docs/operator-guide.md, \"When the decision is refused\")".to_owned(),
            |(_, rule)| rule.clone(),
        )
}

#[cfg(test)]
mod tests;

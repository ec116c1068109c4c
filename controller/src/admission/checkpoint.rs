//! Rules for updates of `checkpoints/status` (pure: no I/O).
//!
//! Two writers share a Checkpoint's status. The controller (its configured usernames)
//! writes `phase`, `conditions` and `notifications`; it never writes `decision`, `reason`,
//! `decidedBy` or `decidedAt`, so a compromised or buggy controller cannot approve its own
//! plan. A person writes only `decision` and `reason`, once; admission records `decidedBy`
//! and `decidedAt` from the authenticated request. Every status field other than the four
//! decision fields counts as the controller's, so a field added later is protected by
//! default.
//!
//! The mutating path runs first: it refuses what it can decide without I/O (so its clear
//! message reaches the user before the CRD's own schema rules) and stamps
//! `decidedBy`/`decidedAt`. The validating path runs after every mutation and the schema:
//! it repeats the rules, adds the RBAC check (a SubjectAccessReview made by the server,
//! passed in as `may_approve`) and verifies the stamp, so a missing mutating webhook or a
//! later webhook rewriting `decidedBy` cannot slip through.

use std::collections::BTreeSet;

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, PatchOperation};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::core::admission::Operation;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Policy, Request, Route, Verdict, object_ref, routed_user};
use crate::api::{ApproverSet, CheckpointType, Decision, GROUP};
use crate::seal::SealedDecision;

const STATUS_ROUTE: Route = Route {
    webhook: "checkpoint-status",
    handles: "UPDATE of checkpoints/status",
    resource: "checkpoints",
    sub_resource: Some("status"),
    operations: &[Operation::Update],
    needs_user_for: "tell who is writing",
};

/// The RBAC verb on `checkpoints.tollgate.dev` that deciding needs.
pub const APPROVE_VERB: &str = "approve";
/// The shipped ClusterRole that grants [`APPROVE_VERB`] (deploy/rbac.yaml).
pub const APPROVER_CLUSTER_ROLE: &str = "tollgate-approver";

const DECISION: &str = "decision";
const REASON: &str = "reason";
const DECIDED_BY: &str = "decidedBy";
const DECIDED_AT: &str = "decidedAt";
const DECISION_SEAL: &str = "decisionSeal";
/// Status fields that make up a decision: people write the first two, admission the rest,
/// the controller none.
const DECISION_FIELDS: [&str; 5] = [DECISION, REASON, DECIDED_BY, DECIDED_AT, DECISION_SEAL];

/// How far the stamped `decidedAt` may be from the validating webhook's clock: the two
/// webhooks may run in different replicas, and a slow apiserver call sits in between.
const DECIDED_AT_TOLERANCE: SignedDuration = SignedDuration::from_mins(5);

/// Mutating path: refuse what is refused without I/O; on a new decision by a person, set
/// `decidedBy` to the request's username and `decidedAt` to `now`, overwriting whatever
/// was typed.
pub fn mutate_checkpoint_status(policy: &Policy, req: &Request, now: Timestamp) -> Verdict {
    let update = match StatusUpdate::read(req) {
        Ok(update) => update,
        Err(denial) => return Verdict::Deny(denial),
    };
    match update.intent(policy) {
        Err(denial) => Verdict::Deny(denial),
        Ok(Intent::Controller | Intent::Unchanged) => Verdict::allow(),
        Ok(Intent::Decide) => {
            if let Err(denial) = update.check_decider(None) {
                return Verdict::Deny(denial);
            }
            let decided_at = match serde_json::to_value(Time(now)) {
                Ok(value) => value,
                Err(e) => {
                    return Verdict::Deny(format!("tollgate could not format the time: {e}"));
                }
            };
            let mut warnings = Vec::new();
            if let Some(typed) = update.new.get(DECIDED_BY).and_then(Value::as_str)
                && typed != update.user
            {
                warnings.push(format!(
                    "status.decidedBy is recorded from your identity: {typed:?} was replaced by {:?}",
                    update.user
                ));
            }
            let mut patch = vec![
                set_status_field(DECIDED_BY, Value::String(update.user.to_owned())),
                set_status_field(DECIDED_AT, decided_at.clone()),
            ];
            if let Some(key) = policy.seal_key() {
                let seal =
                    update.sealed(update.user, decided_at.as_str().unwrap_or_default(), |d| {
                        key.seal(d)
                    });
                match seal {
                    Ok(seal) => patch.push(set_status_field(DECISION_SEAL, Value::String(seal))),
                    Err(denial) => return Verdict::Deny(denial),
                }
            }
            Verdict::Allow { patch, warnings }
        }
    }
}

/// Validating path: every rule of the mutating path, plus RBAC (`may_approve`: the answer
/// of the SubjectAccessReview from [`approval_access_review`]; ignored when that is `None`)
/// and the check that `decidedBy`/`decidedAt` were stamped from this request.
pub fn validate_checkpoint_status(
    policy: &Policy,
    req: &Request,
    may_approve: bool,
    now: Timestamp,
) -> Verdict {
    let update = match StatusUpdate::read(req) {
        Ok(update) => update,
        Err(denial) => return Verdict::Deny(denial),
    };
    let outcome = update.intent(policy).and_then(|intent| match intent {
        Intent::Controller | Intent::Unchanged => Ok(()),
        Intent::Decide => {
            update.check_decider(Some(may_approve))?;
            update.check_stamp(now)?;
            update.check_seal(policy)
        }
    });
    match outcome {
        Ok(()) => Verdict::allow(),
        Err(denial) => Verdict::Deny(denial),
    }
}

/// The SubjectAccessReview to ask before admitting `req`: `Some` exactly when `req` is a
/// person making a new decision. It asks whether the requester (username, groups, uid and
/// extra, as authenticated) may `approve` this checkpoint.
pub fn approval_access_review(policy: &Policy, req: &Request) -> Option<SubjectAccessReview> {
    let update = StatusUpdate::read(req).ok()?;
    match update.intent(policy) {
        Ok(Intent::Decide) => {}
        _ => return None,
    }
    let info = &req.user_info;
    Some(SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: info.username.clone(),
            groups: info.groups.clone(),
            uid: info.uid.clone(),
            extra: info.extra.clone(),
            resource_attributes: Some(ResourceAttributes {
                group: Some(GROUP.to_owned()),
                resource: Some("checkpoints".to_owned()),
                verb: Some(APPROVE_VERB.to_owned()),
                namespace: req.namespace.clone(),
                name: Some(req.name.clone()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    })
}

/// What a status update does.
enum Intent {
    /// The controller's own write, already checked.
    Controller,
    /// A person's update that changes nothing.
    Unchanged,
    /// A person's new decision (the only change a person may make).
    Decide,
}

/// The parts of a checkpoint's spec that say who may decide.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Deciders {
    #[serde(default)]
    approvers: Option<ApproverSet>,
    #[serde(default)]
    requested_by: Option<String>,
}

/// A status update, read from the request.
struct StatusUpdate<'a> {
    req: &'a Request,
    user: &'a str,
    checkpoint: String,
    old: Map<String, Value>,
    new: Map<String, Value>,
    /// Status fields whose value differs between old and new.
    changed: BTreeSet<String>,
}

impl<'a> StatusUpdate<'a> {
    fn read(req: &'a Request) -> Result<Self, String> {
        let checkpoint = object_ref(req);
        let user = routed_user(req, &STATUS_ROUTE, &format!("checkpoint {checkpoint}"))?;
        let (Some(new), Some(old)) = (&req.object, &req.old_object) else {
            return Err(format!(
                "the update of checkpoint {checkpoint} carries no object or oldObject; tollgate cannot compare the status"
            ));
        };
        let old = status_of(old);
        let new = status_of(new);
        let changed = old
            .keys()
            .chain(new.keys())
            .filter(|k| old.get(*k) != new.get(*k))
            .cloned()
            .collect();
        Ok(Self {
            req,
            user,
            checkpoint,
            old,
            new,
            changed,
        })
    }

    fn changed_among(&self, fields: &[&str]) -> Vec<&str> {
        self.changed
            .iter()
            .map(String::as_str)
            .filter(|f| fields.contains(f))
            .collect()
    }

    fn intent(&self, policy: &Policy) -> Result<Intent, String> {
        let (user, checkpoint) = (self.user, &self.checkpoint);
        if policy.is_controller(user) {
            let touched = self.changed_among(&DECISION_FIELDS);
            if !touched.is_empty() {
                return Err(format!(
                    "{user} is the tollgate controller and may not write {} of checkpoint {checkpoint}: a person decides (status.decision, status.reason) and admission records decidedBy/decidedAt; the controller writes only phase, conditions, notifications and the SLA and apply records",
                    fields(&touched)
                ));
            }
            return Ok(Intent::Controller);
        }
        if self.changed.is_empty() {
            return Ok(Intent::Unchanged);
        }
        if let Some(old) = self.old.get(DECISION)
            && !self.changed_among(&DECISION_FIELDS).is_empty()
        {
            let by = self
                .old
                .get(DECIDED_BY)
                .and_then(Value::as_str)
                .map(|by| format!(" by {by}"))
                .unwrap_or_default();
            let at = self
                .old
                .get(DECIDED_AT)
                .and_then(Value::as_str)
                .map(|at| format!(" at {at}"))
                .unwrap_or_default();
            return Err(format!(
                "user {user} may not change the decision of checkpoint {checkpoint}: it was already {}{by}{at}, and a decision can never be changed or withdrawn; to change course, change the Project, which opens a new checkpoint",
                old.as_str().unwrap_or("decided")
            ));
        }
        let others: Vec<&str> = self
            .changed
            .iter()
            .map(String::as_str)
            .filter(|f| !DECISION_FIELDS.contains(f))
            .collect();
        if !others.is_empty() {
            return Err(format!(
                "user {user} may only set status.decision and status.reason of checkpoint {checkpoint}; {} {} written by the tollgate controller",
                fields(&others),
                if others.len() == 1 { "is" } else { "are" }
            ));
        }
        let Some(decision) = self.new.get(DECISION) else {
            return Err(if self.changed.contains(REASON) {
                format!(
                    "user {user} may set status.reason of checkpoint {checkpoint} only together with status.decision (Approved or Rejected)"
                )
            } else {
                format!(
                    "user {user} may not write status.decidedBy or status.decidedAt of checkpoint {checkpoint}: tollgate records them from the authenticated request when a decision is made; set only status.decision and status.reason"
                )
            });
        };
        // The stored spec says what kind of question this is (a /status write cannot change it).
        let checkpoint_type = self
            .req
            .old_object
            .as_ref()
            .and_then(|o| o.data.get("spec"))
            .and_then(|spec| spec.get("type"))
            .and_then(|t| serde_json::from_value::<CheckpointType>(t.clone()).ok())
            .unwrap_or(CheckpointType::PlanApproval);
        let allowed = Decision::allowed_for(checkpoint_type);
        match serde_json::from_value::<Decision>(decision.clone()) {
            Ok(d) if allowed.contains(&d) => Ok(Intent::Decide),
            _ => {
                let names: Vec<String> = allowed.iter().map(|d| format!("{d:?}")).collect();
                let (last, rest) = names
                    .split_last()
                    .map_or(("", &[][..]), |(l, r)| (l.as_str(), r));
                Err(format!(
                    "status.decision of checkpoint {checkpoint} ({checkpoint_type:?}) must be {} or {last}, not {decision}",
                    rest.join(", ")
                ))
            }
        }
    }

    /// Whether this person may decide: RBAC (when known), the checkpoint's approvers, and
    /// four eyes. The rules come from the stored (old) object: on the mutating path the new
    /// object's spec may still hold whatever the user sent to /status, which the apiserver
    /// discards only later.
    fn check_decider(&self, may_approve: Option<bool>) -> Result<(), String> {
        let (user, checkpoint) = (self.user, &self.checkpoint);
        let namespace = self.req.namespace.as_deref().unwrap_or_default();
        if may_approve == Some(false) {
            return Err(format!(
                "user {user} may not approve checkpoints in {namespace}: deciding checkpoint {checkpoint} needs the RBAC verb {APPROVE_VERB} on checkpoints.{GROUP} (ClusterRole {APPROVER_CLUSTER_ROLE})"
            ));
        }
        // A superseded or expired checkpoint's plan is never applied: say so, rather than
        // record a decision that changes nothing.
        let old_phase = self
            .req
            .old_object
            .as_ref()
            .map(status_of)
            .and_then(|s| s.get("phase").and_then(Value::as_str).map(str::to_owned));
        if let Some(phase @ ("Superseded" | "Expired")) = old_phase.as_deref() {
            return Err(format!(
                "checkpoint {checkpoint} is {phase}: its plan will never be applied; decide the Project's current checkpoint (status.checkpointRef of the Project)"
            ));
        }
        let deciders = self
            .req
            .old_object
            .as_ref()
            .and_then(|o| o.data.get("spec"))
            .map(|spec| serde_json::from_value::<Deciders>(spec.clone()))
            .transpose()
            .map_err(|e| {
                format!(
                    "tollgate cannot read who may decide checkpoint {checkpoint} (spec.approvers, spec.requestedBy): {e}"
                )
            })?
            .unwrap_or_default();
        let Some(approvers) = deciders.approvers else {
            return Ok(());
        };
        if !approvers.users.is_empty() || !approvers.groups.is_empty() {
            let groups = self.req.user_info.groups.as_deref().unwrap_or_default();
            let listed = approvers.users.iter().any(|u| u == user)
                || approvers.groups.iter().any(|g| groups.contains(g));
            if !listed {
                return Err(format!(
                    "user {user} may not decide checkpoint {checkpoint}: only its approvers may ({}), and {user} is neither listed nor in a listed group; ask one of them",
                    describe_approvers(&approvers)
                ));
            }
        }
        if approvers.forbid_self_approval {
            match deciders.requested_by.as_deref() {
                Some(by) if by == user => {
                    return Err(format!(
                        "user {user} may not decide checkpoint {checkpoint}: four eyes: you last changed the Project; another approver must decide"
                    ));
                }
                None | Some("") => {
                    return Err(format!(
                        "user {user} may not decide checkpoint {checkpoint}: four eyes is required, but the checkpoint does not record who last changed the Project (spec.requestedBy is empty); change the Project so tollgate records its author and opens a new checkpoint"
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// `decidedBy` is this request's user and `decidedAt` is about now: what the mutating
    /// path stamped, unchanged since.
    fn check_stamp(&self, now: Timestamp) -> Result<(), String> {
        let (user, checkpoint) = (self.user, &self.checkpoint);
        let missing_mutation = "tollgate's mutating webhook for checkpoints/status records it; check that the MutatingWebhookConfiguration is installed and that no other webhook rewrites the field";
        if self.new.get(DECIDED_BY).and_then(Value::as_str) != Some(user) {
            return Err(format!(
                "status.decidedBy of checkpoint {checkpoint} must be the deciding user {user}: {missing_mutation}"
            ));
        }
        let at = self
            .new
            .get(DECIDED_AT)
            .and_then(|v| serde_json::from_value::<Time>(v.clone()).ok());
        match at {
            Some(Time(at)) if now.duration_since(at).abs() <= DECIDED_AT_TOLERANCE => Ok(()),
            _ => Err(format!(
                "status.decidedAt of checkpoint {checkpoint} must be the time of this decision: {missing_mutation}"
            )),
        }
    }
}

impl StatusUpdate<'_> {
    /// Applies `f` to what a seal of this decision covers, with `decided_by`/`decided_at`
    /// as given (the mutating path passes the values it is about to stamp).
    fn sealed<T>(
        &self,
        decided_by: &str,
        decided_at: &str,
        f: impl FnOnce(&SealedDecision<'_>) -> T,
    ) -> Result<T, String> {
        let checkpoint = &self.checkpoint;
        let old = self.req.old_object.as_ref();
        let uid = old.and_then(|o| o.metadata.uid.as_deref()).ok_or_else(|| {
            format!(
                "checkpoint {checkpoint} has no metadata.uid; tollgate cannot seal a decision on it"
            )
        })?;
        let plan_digest = old
            .and_then(|o| o.data.get("spec"))
            .and_then(|spec| spec.get("planRef"))
            .and_then(|plan| plan.get("digest"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        Ok(f(&SealedDecision {
            checkpoint_uid: uid,
            plan_digest,
            decision: self
                .new
                .get(DECISION)
                .and_then(Value::as_str)
                .unwrap_or_default(),
            decided_by,
            decided_at,
            reason: self
                .new
                .get(REASON)
                .and_then(Value::as_str)
                .unwrap_or_default(),
        }))
    }

    /// The seal the mutating path wrote matches the decision as it is now stored.
    fn check_seal(&self, policy: &Policy) -> Result<(), String> {
        let Some(key) = policy.seal_key() else {
            return Ok(());
        };
        let decided_by = self
            .new
            .get(DECIDED_BY)
            .and_then(Value::as_str)
            .unwrap_or_default();
        let decided_at = self
            .new
            .get(DECIDED_AT)
            .and_then(Value::as_str)
            .unwrap_or_default();
        let seal = self.new.get(DECISION_SEAL).and_then(Value::as_str);
        self.sealed(decided_by, decided_at, |d| key.verify(d, seal))?
            .map_err(|e| {
                format!(
                    "the decision on checkpoint {} was altered after tollgate's mutating webhook sealed it: {e}; check that no other webhook rewrites checkpoint status",
                    self.checkpoint
                )
            })
    }
}

/// The status of `object` as a map, without `null` members (a merge patch that removes a
/// field may leave one behind in the admission request).
fn status_of(object: &kube::core::DynamicObject) -> Map<String, Value> {
    match object.data.get("status") {
        Some(Value::Object(status)) => status
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        _ => Map::new(),
    }
}

fn fields(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("status.{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe_approvers(approvers: &ApproverSet) -> String {
    let mut parts = Vec::new();
    if !approvers.users.is_empty() {
        parts.push(format!("users {}", approvers.users.join(", ")));
    }
    if !approvers.groups.is_empty() {
        parts.push(format!("groups {}", approvers.groups.join(", ")));
    }
    parts.join("; ")
}

/// A JSONPatch `add` of `/status/<field>`, which replaces a value that is already there.
fn set_status_field(field: &str, value: Value) -> PatchOperation {
    PatchOperation::Add(AddOperation {
        path: PointerBuf::from_tokens(["status", field]),
        value,
    })
}

#[cfg(test)]
mod tests;

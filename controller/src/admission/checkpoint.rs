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
use crate::api::{ApproverSet, Decision, GROUP};
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
        serde_json::from_value::<Decision>(decision.clone())
            .map(|_| Intent::Decide)
            .map_err(|_| {
                format!(
                    "status.decision of checkpoint {checkpoint} must be Approved or Rejected, not {decision}"
                )
            })
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
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::admission::test_support::request;
    use serde_json::json;

    const CONTROLLER: &str = "system:serviceaccount:tollgate-system:tollgate";
    const APPROVERS: &str = "tollgate:approvers";

    fn policy() -> Policy {
        Policy::new([CONTROLLER, "admin"])
    }

    fn now() -> Timestamp {
        "2026-11-25T10:30:00Z".parse().unwrap()
    }

    fn checkpoint(spec_extra: Value, status: Value) -> Value {
        let mut spec = json!({
            "type": "PlanApproval", "projectRef": {"name": "demo"},
            "planRef": {"id": "p1", "digest": "a".repeat(64)},
            "summary": {"text": "1 to add", "add": 1, "change": 0, "destroy": 0},
            "requestedAt": "2026-11-25T10:00:00Z",
        });
        spec.as_object_mut()
            .unwrap()
            .extend(spec_extra.as_object().unwrap().clone());
        json!({
            "apiVersion": "tollgate.dev/v1alpha1", "kind": "Checkpoint",
            "metadata": {"name": "demo-plan-1", "namespace": "team-a", "uid": "cp-uid-1"},
            "spec": spec,
            "status": status,
        })
    }

    fn update(user: &str, groups: &[&str], spec: Value, old: Value, new: Value) -> Request {
        request(
            "checkpoints",
            Some("status"),
            "UPDATE",
            user,
            groups,
            Some(checkpoint(spec.clone(), new)),
            Some(checkpoint(spec, old)),
        )
    }

    /// Expected outcome: allowed, or denied with a message containing every fragment.
    #[derive(Debug)]
    enum Want {
        Allow,
        Deny(&'static [&'static str]),
    }

    struct Case {
        name: &'static str,
        user: &'static str,
        groups: &'static [&'static str],
        spec: Value,
        old: Value,
        new: Value,
        /// Answer of the SubjectAccessReview.
        may_approve: bool,
        mutate: Want,
        validate: Want,
    }

    fn stamped(mut status: Value, user: &str) -> Value {
        status["decidedBy"] = json!(user);
        status["decidedAt"] = json!("2026-11-25T10:30:00Z");
        status
    }

    fn cases() -> Vec<Case> {
        let pending = json!({"phase": "Pending"});
        let approve = json!({"phase": "Pending", "decision": "Approved", "reason": "reviewed"});
        let decided = json!({"phase": "Approved", "decision": "Approved", "reason": "ok", "decidedBy": "bob", "decidedAt": "2026-11-25T10:10:00Z"});
        let none = json!({});
        vec![
            Case {
                name: "approver decides",
                user: "alice",
                groups: &[APPROVERS],
                spec: none.clone(),
                old: pending.clone(),
                new: approve.clone(),
                may_approve: true,
                mutate: Want::Allow,
                validate: Want::Allow,
            },
            Case {
                name: "a typed decidedBy is allowed on the mutating path (it is overwritten)",
                user: "alice",
                groups: &[APPROVERS],
                spec: none.clone(),
                old: pending.clone(),
                new: json!({"phase": "Pending", "decision": "Rejected", "decidedBy": "bob", "decidedAt": "2020-01-01T00:00:00Z"}),
                may_approve: true,
                mutate: Want::Allow,
                validate: Want::Allow,
            },
            Case {
                name: "no RBAC verb approve",
                user: "carol",
                groups: &["tollgate:platform"],
                spec: none.clone(),
                old: pending.clone(),
                new: approve.clone(),
                may_approve: false,
                mutate: Want::Allow,
                validate: Want::Deny(&[
                    "user carol may not approve checkpoints in team-a",
                    "team-a/demo-plan-1",
                    "RBAC verb approve on checkpoints.tollgate.dev",
                    "ClusterRole tollgate-approver",
                ]),
            },
            Case {
                name: "decided: change to Rejected",
                user: "alice",
                groups: &[APPROVERS],
                spec: none.clone(),
                old: decided.clone(),
                new: json!({"phase": "Approved", "decision": "Rejected", "reason": "ok", "decidedBy": "bob", "decidedAt": "2026-11-25T10:10:00Z"}),
                may_approve: true,
                mutate: Want::Deny(&[
                    "alice may not change the decision of checkpoint team-a/demo-plan-1",
                    "already Approved by bob at 2026-11-25T10:10:00Z",
                    "never be changed or withdrawn",
                ]),
                validate: Want::Deny(&["never be changed"]),
            },
            Case {
                name: "decided: withdrawn",
                user: "bob",
                groups: &[APPROVERS],
                spec: none.clone(),
                old: decided.clone(),
                new: json!({"phase": "Approved", "decidedBy": "bob", "decidedAt": "2026-11-25T10:10:00Z"}),
                may_approve: true,
                mutate: Want::Deny(&["never be changed or withdrawn"]),
                validate: Want::Deny(&["never be changed or withdrawn"]),
            },
            Case {
                name: "decided: reason edited",
                user: "bob",
                groups: &[APPROVERS],
                spec: none.clone(),
                old: decided.clone(),
                new: json!({"phase": "Approved", "decision": "Approved", "reason": "better words", "decidedBy": "bob", "decidedAt": "2026-11-25T10:10:00Z"}),
                may_approve: true,
                mutate: Want::Deny(&["never be changed"]),
                validate: Want::Deny(&["never be changed"]),
            },
            Case {
                name: "decided: decidedBy retyped",
                user: "alice",
                groups: &[APPROVERS],
                spec: none.clone(),
                old: decided.clone(),
                new: json!({"phase": "Approved", "decision": "Approved", "reason": "ok", "decidedBy": "alice", "decidedAt": "2026-11-25T10:10:00Z"}),
                may_approve: true,
                mutate: Want::Deny(&["never be changed"]),
                validate: Want::Deny(&["never be changed"]),
            },
            Case {
                name: "decided: a person's no-op update",
                user: "alice",
                groups: &[APPROVERS],
                spec: none.clone(),
                old: decided.clone(),
                new: decided.clone(),
                may_approve: false,
                mutate: Want::Allow,
                validate: Want::Allow,
            },
            Case {
                name: "person sets phase",
                user: "alice",
                groups: &[APPROVERS],
                spec: none.clone(),
                old: pending.clone(),
                new: json!({"phase": "Approved"}),
                may_approve: true,
                mutate: Want::Deny(&[
                    "user alice may only set status.decision and status.reason of checkpoint team-a/demo-plan-1",
                    "status.phase is written by the tollgate controller",
                ]),
                validate: Want::Deny(&["status.phase is written by the tollgate controller"]),
            },
            Case {
                name: "person decides and sets phase and conditions",
                user: "alice",
                groups: &[APPROVERS],
                spec: none.clone(),
                old: pending.clone(),
                new: json!({"phase": "Approved", "decision": "Approved", "conditions": [{"type": "Ready"}]}),
                may_approve: true,
                mutate: Want::Deny(&["status.conditions, status.phase are written"]),
                validate: Want::Deny(&["status.conditions, status.phase are written"]),
            },
            Case {
                name: "person adds a field tollgate does not know",
                user: "alice",
                groups: &[APPROVERS],
                spec: none.clone(),
                old: pending.clone(),
                new: json!({"phase": "Pending", "approvedPlan": "x"}),
                may_approve: true,
                mutate: Want::Deny(&["status.approvedPlan is written by the tollgate controller"]),
                validate: Want::Deny(&["status.approvedPlan"]),
            },
            Case {
                name: "reason without a decision",
                user: "alice",
                groups: &[APPROVERS],
                spec: none.clone(),
                old: pending.clone(),
                new: json!({"phase": "Pending", "reason": "thinking"}),
                may_approve: true,
                mutate: Want::Deny(&["only together with status.decision"]),
                validate: Want::Deny(&["only together with status.decision"]),
            },
            Case {
                name: "decidedBy without a decision",
                user: "alice",
                groups: &[APPROVERS],
                spec: none.clone(),
                old: pending.clone(),
                new: json!({"phase": "Pending", "decidedBy": "bob"}),
                may_approve: true,
                mutate: Want::Deny(&["may not write status.decidedBy"]),
                validate: Want::Deny(&["may not write status.decidedBy"]),
            },
            Case {
                name: "decision that is not a Decision",
                user: "alice",
                groups: &[APPROVERS],
                spec: none.clone(),
                old: pending.clone(),
                new: json!({"phase": "Pending", "decision": "Maybe"}),
                may_approve: true,
                mutate: Want::Deny(&["must be Approved or Rejected"]),
                validate: Want::Deny(&["must be Approved or Rejected"]),
            },
            Case {
                name: "person's no-op update",
                user: "carol",
                groups: &[],
                spec: none.clone(),
                old: pending.clone(),
                new: pending.clone(),
                may_approve: false,
                mutate: Want::Allow,
                validate: Want::Allow,
            },
            Case {
                name: "controller sets phase, conditions and notifications",
                user: CONTROLLER,
                groups: &["system:serviceaccounts"],
                spec: none.clone(),
                old: decided.clone(),
                new: json!({"phase": "Approved", "decision": "Approved", "reason": "ok", "decidedBy": "bob", "decidedAt": "2026-11-25T10:10:00Z",
                            "conditions": [{"type": "Ready", "status": "True"}], "notifications": [{"channel": "slack", "event": "Decided", "at": "2026-11-25T10:11:00Z"}]}),
                may_approve: false,
                mutate: Want::Allow,
                validate: Want::Allow,
            },
            Case {
                name: "controller sets a decision",
                user: CONTROLLER,
                groups: &[],
                spec: none.clone(),
                old: pending.clone(),
                new: approve.clone(),
                may_approve: true,
                mutate: Want::Deny(&[
                    "is the tollgate controller and may not write status.decision, status.reason of checkpoint team-a/demo-plan-1",
                ]),
                validate: Want::Deny(&["tollgate controller"]),
            },
            Case {
                name: "controller (admin in e2e) stamps decidedBy",
                user: "admin",
                groups: &["system:masters"],
                spec: none.clone(),
                old: pending.clone(),
                new: json!({"phase": "Pending", "decidedBy": "admin"}),
                may_approve: true,
                mutate: Want::Deny(&["may not write status.decidedBy"]),
                validate: Want::Deny(&["may not write status.decidedBy"]),
            },
            Case {
                name: "controller removes a decision",
                user: CONTROLLER,
                groups: &[],
                spec: none.clone(),
                old: decided.clone(),
                new: json!({"phase": "Approved"}),
                may_approve: true,
                mutate: Want::Deny(&[
                    "status.decidedAt, status.decidedBy, status.decision, status.reason",
                ]),
                validate: Want::Deny(&["tollgate controller"]),
            },
            Case {
                name: "four eyes: the author decides",
                user: "alice",
                groups: &[APPROVERS],
                spec: json!({"requestedBy": "alice", "approvers": {"forbidSelfApproval": true}}),
                old: pending.clone(),
                new: approve.clone(),
                may_approve: true,
                mutate: Want::Deny(&[
                    "user alice may not decide checkpoint team-a/demo-plan-1: four eyes: you last changed the Project; another approver must decide",
                ]),
                validate: Want::Deny(&["four eyes"]),
            },
            Case {
                name: "a superseded checkpoint cannot be decided",
                user: "alice",
                groups: &[APPROVERS],
                spec: none.clone(),
                old: json!({"phase": "Superseded"}),
                new: json!({"phase": "Superseded", "decision": "Approved", "reason": "late"}),
                may_approve: true,
                mutate: Want::Deny(&["is Superseded: its plan will never be applied"]),
                validate: Want::Deny(&["is Superseded"]),
            },
            Case {
                name: "four eyes: another approver decides",
                user: "bob",
                groups: &[APPROVERS],
                spec: json!({"requestedBy": "alice", "approvers": {"forbidSelfApproval": true}}),
                old: pending.clone(),
                new: approve.clone(),
                may_approve: true,
                mutate: Want::Allow,
                validate: Want::Allow,
            },
            Case {
                name: "four eyes without a recorded author",
                user: "bob",
                groups: &[APPROVERS],
                spec: json!({"approvers": {"forbidSelfApproval": true}}),
                old: pending.clone(),
                new: approve.clone(),
                may_approve: true,
                mutate: Want::Deny(&["spec.requestedBy is empty", "change the Project"]),
                validate: Want::Deny(&["spec.requestedBy is empty"]),
            },
            Case {
                name: "self approval allowed when not forbidden",
                user: "alice",
                groups: &[APPROVERS],
                spec: json!({"requestedBy": "alice"}),
                old: pending.clone(),
                new: approve.clone(),
                may_approve: true,
                mutate: Want::Allow,
                validate: Want::Allow,
            },
            Case {
                name: "approvers by user: not listed",
                user: "alice",
                groups: &[APPROVERS],
                spec: json!({"approvers": {"users": ["bob"]}}),
                old: pending.clone(),
                new: approve.clone(),
                may_approve: true,
                mutate: Want::Deny(&[
                    "user alice may not decide checkpoint team-a/demo-plan-1: only its approvers may (users bob)",
                ]),
                validate: Want::Deny(&["only its approvers may"]),
            },
            Case {
                name: "approvers by user: listed",
                user: "bob",
                groups: &[APPROVERS],
                spec: json!({"approvers": {"users": ["bob"]}}),
                old: pending.clone(),
                new: approve.clone(),
                may_approve: true,
                mutate: Want::Allow,
                validate: Want::Allow,
            },
            Case {
                name: "approvers by group: member",
                user: "alice",
                groups: &["system:authenticated", "sre"],
                spec: json!({"approvers": {"users": ["bob"], "groups": ["sre"]}}),
                old: pending.clone(),
                new: approve.clone(),
                may_approve: true,
                mutate: Want::Allow,
                validate: Want::Allow,
            },
            Case {
                name: "approvers by group: not a member",
                user: "alice",
                groups: &[APPROVERS],
                spec: json!({"approvers": {"groups": ["sre"]}}),
                old: pending.clone(),
                new: approve.clone(),
                may_approve: true,
                mutate: Want::Deny(&["only its approvers may (groups sre)"]),
                validate: Want::Deny(&["groups sre"]),
            },
            Case {
                name: "listed approver still needs RBAC",
                user: "bob",
                groups: &[APPROVERS],
                spec: json!({"approvers": {"users": ["bob"]}}),
                old: pending.clone(),
                new: approve.clone(),
                may_approve: false,
                mutate: Want::Allow,
                validate: Want::Deny(&["needs the RBAC verb approve"]),
            },
            Case {
                name: "first status write by a person",
                user: "alice",
                groups: &[APPROVERS],
                spec: none.clone(),
                old: json!(null),
                new: json!({"decision": "Approved"}),
                may_approve: true,
                mutate: Want::Allow,
                validate: Want::Allow,
            },
        ]
    }

    fn check(case: &str, path: &str, verdict: &Verdict, want: &Want) {
        match (verdict, want) {
            (Verdict::Allow { .. }, Want::Allow) => {}
            (Verdict::Deny(message), Want::Deny(fragments)) => {
                for fragment in *fragments {
                    assert!(
                        message.contains(fragment),
                        "{case} ({path}): {message:?} lacks {fragment:?}"
                    );
                }
            }
            _ => panic!("{case} ({path}): got {verdict:?}, want {want:?}"),
        }
    }

    #[test]
    fn table() {
        for case in cases() {
            let req = update(
                case.user,
                case.groups,
                case.spec.clone(),
                case.old.clone(),
                case.new.clone(),
            );
            let mutated = mutate_checkpoint_status(&policy(), &req, now());
            check(case.name, "mutate", &mutated, &case.mutate);
            // The validating webhook sees the object after the mutating one.
            let new = match &mutated {
                Verdict::Allow { patch, .. } if !patch.is_empty() => {
                    stamped(case.new.clone(), case.user)
                }
                _ => case.new.clone(),
            };
            let after = if matches!(case.mutate, Want::Allow) {
                update(
                    case.user,
                    case.groups,
                    case.spec.clone(),
                    case.old.clone(),
                    new,
                )
            } else {
                req.clone()
            };
            let validated = validate_checkpoint_status(&policy(), &after, case.may_approve, now());
            check(case.name, "validate", &validated, &case.validate);
        }
    }

    fn sealing_policy() -> (std::sync::Arc<crate::seal::SealKey>, Policy) {
        let key = std::sync::Arc::new(
            crate::seal::SealKey::from_bytes(&[3u8; crate::seal::KEY_LEN]).unwrap(),
        );
        (key.clone(), policy().with_seal_key(key))
    }

    #[test]
    fn mutation_seals_the_decision_and_validation_refuses_any_change_after_it() {
        let (key, policy) = sealing_policy();
        let old = json!({"phase": "Pending"});
        let typed = json!({"phase": "Pending", "decision": "Approved", "reason": "ok", "decidedBy": "bob", "decisionSeal": "v1.00"});
        let req = update("alice", &[APPROVERS], json!({}), old.clone(), typed);
        let Verdict::Allow { patch, .. } = mutate_checkpoint_status(&policy, &req, now()) else {
            panic!("denied")
        };
        let mut object = serde_json::to_value(req.object.as_ref().unwrap()).unwrap();
        json_patch::patch(&mut object, &patch).unwrap();
        let status = object["status"].clone();
        let digest = "a".repeat(64);
        let sealed = SealedDecision {
            checkpoint_uid: "cp-uid-1",
            plan_digest: &digest,
            decision: "Approved",
            decided_by: "alice",
            decided_at: "2026-11-25T10:30:00Z",
            reason: "ok",
        };
        assert_eq!(key.verify(&sealed, status["decisionSeal"].as_str()), Ok(()));

        let validate = |status: Value| {
            let req = update("alice", &[APPROVERS], json!({}), old.clone(), status);
            validate_checkpoint_status(&policy, &req, true, now())
        };
        assert_eq!(validate(status.clone()), Verdict::allow());
        let mut altered = status.clone();
        altered["reason"] = json!("something else");
        let mut unsealed = status.clone();
        unsealed.as_object_mut().unwrap().remove("decisionSeal");
        for (what, status) in [("altered reason", altered), ("no seal", unsealed)] {
            match validate(status) {
                Verdict::Deny(message) => assert!(
                    message.contains("altered after tollgate's mutating webhook sealed it"),
                    "{what}: {message}"
                ),
                other => panic!("{what}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_controller_may_not_write_a_seal() {
        let (_, policy) = sealing_policy();
        let req = update(
            CONTROLLER,
            &[],
            json!({}),
            json!({"phase": "Pending"}),
            json!({"phase": "Pending", "decisionSeal": "v1.00"}),
        );
        let Verdict::Deny(message) = mutate_checkpoint_status(&policy, &req, now()) else {
            panic!("allowed")
        };
        assert!(message.contains("status.decisionSeal"), "{message}");
    }

    #[test]
    fn mutation_stamps_the_requesters_name_and_now() {
        let req = update(
            "alice",
            &[APPROVERS],
            json!({}),
            json!({"phase": "Pending"}),
            json!({"phase": "Pending", "decision": "Approved", "decidedBy": "bob", "decidedAt": "2020-01-01T00:00:00Z"}),
        );
        let Verdict::Allow { patch, warnings } = mutate_checkpoint_status(&policy(), &req, now())
        else {
            panic!("denied")
        };
        let mut object = serde_json::to_value(req.object.as_ref().unwrap()).unwrap();
        json_patch::patch(&mut object, &patch).unwrap();
        assert_eq!(object["status"]["decidedBy"], "alice");
        assert_eq!(object["status"]["decidedAt"], "2026-11-25T10:30:00Z");
        assert_eq!(object["status"]["decision"], "Approved");
        assert!(
            warnings[0].contains("\"bob\" was replaced by \"alice\""),
            "{warnings:?}"
        );
    }

    #[test]
    fn mutation_of_a_status_without_the_stamp_fields_adds_them() {
        let req = update(
            "bob",
            &[APPROVERS],
            json!({}),
            json!({}),
            json!({"decision": "Rejected"}),
        );
        let Verdict::Allow { patch, warnings } = mutate_checkpoint_status(&policy(), &req, now())
        else {
            panic!("denied")
        };
        assert!(warnings.is_empty());
        let mut object = serde_json::to_value(req.object.as_ref().unwrap()).unwrap();
        json_patch::patch(&mut object, &patch).unwrap();
        assert_eq!(object["status"]["decidedBy"], "bob");
    }

    #[test]
    fn validation_refuses_a_typed_decided_by_that_was_not_stamped() {
        // What the validating webhook sees if the mutating one is missing.
        let req = update(
            "alice",
            &[APPROVERS],
            json!({}),
            json!({}),
            json!({"decision": "Approved", "decidedBy": "bob", "decidedAt": "2026-11-25T10:30:00Z"}),
        );
        let verdict = validate_checkpoint_status(&policy(), &req, true, now());
        let message = verdict.denial().unwrap();
        assert!(
            message.contains("must be the deciding user alice"),
            "{message}"
        );
        assert!(
            message.contains("MutatingWebhookConfiguration"),
            "{message}"
        );
    }

    #[test]
    fn validation_requires_a_fresh_stamp() {
        let stale = update(
            "alice",
            &[APPROVERS],
            json!({}),
            json!({}),
            json!({"decision": "Approved", "decidedBy": "alice", "decidedAt": "2026-11-25T10:00:00Z"}),
        );
        let verdict = validate_checkpoint_status(&policy(), &stale, true, now());
        assert!(
            verdict.denial().unwrap().contains("decidedAt"),
            "{verdict:?}"
        );
        let fresh = update(
            "alice",
            &[APPROVERS],
            json!({}),
            json!({}),
            json!({"decision": "Approved", "decidedBy": "alice", "decidedAt": "2026-11-25T10:28:00Z"}),
        );
        assert!(validate_checkpoint_status(&policy(), &fresh, true, now()).is_allowed());
    }

    #[test]
    fn approvers_come_from_the_stored_spec_not_the_request() {
        // A user sending a spec to /status cannot add themselves as an approver.
        let mut req = update(
            "alice",
            &[APPROVERS],
            json!({"approvers": {"users": ["bob"]}}),
            json!({}),
            json!({"decision": "Approved"}),
        );
        let object = req.object.as_mut().unwrap();
        object.data["spec"]["approvers"]["users"] = json!(["alice"]);
        let verdict = mutate_checkpoint_status(&policy(), &req, now());
        assert!(
            verdict.denial().unwrap().contains("only its approvers"),
            "{verdict:?}"
        );
    }

    #[test]
    fn access_review_asks_approve_on_this_checkpoint_as_the_requester() {
        let req = update(
            "carol",
            &["tollgate:platform"],
            json!({}),
            json!({}),
            json!({"decision": "Approved"}),
        );
        let review = approval_access_review(&policy(), &req).unwrap();
        let spec = review.spec;
        assert_eq!(spec.user.as_deref(), Some("carol"));
        assert_eq!(spec.uid.as_deref(), Some("uid-carol"));
        assert_eq!(spec.groups, Some(vec!["tollgate:platform".to_owned()]));
        assert_eq!(spec.extra.unwrap()["scopes"], vec!["a".to_owned()]);
        let attributes = spec.resource_attributes.unwrap();
        assert_eq!(attributes.group.as_deref(), Some("tollgate.dev"));
        assert_eq!(attributes.resource.as_deref(), Some("checkpoints"));
        assert_eq!(attributes.verb.as_deref(), Some("approve"));
        assert_eq!(attributes.namespace.as_deref(), Some("team-a"));
        assert_eq!(attributes.name.as_deref(), Some("demo-plan-1"));
        assert_eq!(attributes.subresource, None);
    }

    #[test]
    fn access_review_only_for_new_decisions() {
        let controller = update(
            CONTROLLER,
            &[],
            json!({}),
            json!({}),
            json!({"phase": "Pending"}),
        );
        assert!(approval_access_review(&policy(), &controller).is_none());
        let denied = update(
            "alice",
            &[],
            json!({}),
            json!({}),
            json!({"phase": "Pending"}),
        );
        assert!(approval_access_review(&policy(), &denied).is_none());
        let noop = update(
            "alice",
            &[],
            json!({}),
            json!({"phase": "Pending"}),
            json!({"phase": "Pending"}),
        );
        assert!(approval_access_review(&policy(), &noop).is_none());
    }

    #[test]
    fn other_requests_are_refused_as_misconfiguration() {
        let spec_update = request(
            "checkpoints",
            None,
            "UPDATE",
            "alice",
            &[],
            Some(checkpoint(json!({}), json!({}))),
            Some(checkpoint(json!({}), json!({}))),
        );
        for verdict in [
            mutate_checkpoint_status(&policy(), &spec_update, now()),
            validate_checkpoint_status(&policy(), &spec_update, true, now()),
        ] {
            assert!(
                verdict
                    .denial()
                    .unwrap()
                    .contains("only UPDATE of checkpoints/status"),
                "{verdict:?}"
            );
        }
        let anonymous = update(
            "",
            &[],
            json!({}),
            json!({}),
            json!({"decision": "Approved"}),
        );
        assert!(
            mutate_checkpoint_status(&policy(), &anonymous, now())
                .denial()
                .unwrap()
                .contains("no username")
        );
        let mut no_old = update(
            "alice",
            &[],
            json!({}),
            json!({}),
            json!({"decision": "Approved"}),
        );
        no_old.old_object = None;
        assert!(
            validate_checkpoint_status(&policy(), &no_old, true, now())
                .denial()
                .unwrap()
                .contains("no object or oldObject")
        );
    }
}

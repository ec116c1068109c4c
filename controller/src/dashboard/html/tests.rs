#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{Value, json};

use super::*;
use crate::api::CheckpointType;
use crate::cli::checkpoint::format::Review;
pub(crate) use crate::cli::checkpoint::format::tests::{checkpoint, now};
use crate::plan::{AttributeChange, PlanReview, ReviewedChange};

/// Markup an attacker would like to see run; every field below carries one.
const HOSTILE: &str = "<script>alert(1)</script><img src=x onerror=alert(2)>\"'&";

pub(crate) fn project(namespace: &str, name: &str, environment: &str, status: Value) -> Project {
    serde_json::from_value(json!({
        "apiVersion": "tollgate.dev/v1alpha1", "kind": "Project",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"environment": environment, "components": [{"name": "app", "module": "demo"}]},
        "status": status,
    }))
    .unwrap()
}

/// A checkpoint with the hostile text in every free-text field it has.
pub(crate) fn hostile_checkpoint() -> Checkpoint {
    checkpoint(
        "team-a",
        "shop-1",
        json!({
            "projectRef": {"name": HOSTILE},
            "planRef": {"id": HOSTILE, "digest": HOSTILE},
            "requestedBy": HOSTILE,
            "reasons": [HOSTILE],
            "sla": {"respondBy": "2026-11-25T14:00:00Z"},
            "summary": {"text": HOSTILE, "add": 1, "change": 0, "destroy": 0,
                        "changes": [format!("{HOSTILE} {HOSTILE}")],
                        "risks": [HOSTILE],
                        "cost": {"before": HOSTILE, "after": HOSTILE, "delta": HOSTILE, "budget": HOSTILE}},
        }),
        json!({"decision": "Rejected", "reason": HOSTILE, "decidedBy": HOSTILE, "decidedAt": "2026-11-25T11:00:00Z",
               "applyOutcome": {"succeeded": false, "at": "2026-11-25T11:30:00Z", "message": HOSTILE}}),
    )
}

pub(crate) fn hostile_project() -> Project {
    project(
        "team-a",
        HOSTILE,
        HOSTILE,
        json!({"phase": "Ready", "history": [{"planId": HOSTILE, "outcome": HOSTILE, "at": "2026-11-25T11:00:00Z", "decidedBy": HOSTILE}],
               "plan": {"id": HOSTILE, "digest": "ab", "inputsDigest": "cd", "summary": {"add": 1, "change": 0, "destroy": 0}},
               "cost": {"monthly": "1", "delta": "1", "currency": "USD",
                        "topResources": [{"address": HOSTILE, "monthly": HOSTILE}], "unpriced": [HOSTILE]}}),
    )
}

/// No element or attribute the hostile text could have opened, and the text itself shown.
fn assert_inert(page: &str) {
    for forbidden in ["<script>", "<img", "\"'&\""] {
        assert!(!page.contains(forbidden), "{forbidden} in:\n{page}");
    }
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;&quot;&#39;&amp;"),
        "the hostile text is not shown escaped:\n{page}"
    );
    // The only scripts are the page's own.
    assert!(page.matches("<script").count() <= 1, "{page}");
}

#[test]
fn esc_escapes_every_character_that_opens_markup_or_ends_an_attribute() {
    assert_eq!(
        esc(HOSTILE),
        "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;&quot;&#39;&amp;"
    );
    assert_eq!(esc("shop-1 · €"), "shop-1 · €");
    assert_eq!(segment("a/b?c d"), "a%2Fb%3Fc%20d");
    assert_eq!(checkpoint_path("team-a", "shop-1"), "/c/team-a/shop-1");
}

#[test]
fn hostile_fields_are_text_in_the_queue() {
    let checkpoint = hostile_checkpoint();
    let project = hostile_project();
    let entries = [(&checkpoint, Some(&project))];
    let filter = Filter {
        all: true,
        project: HOSTILE.to_owned(),
        namespace: HOSTILE.to_owned(),
        environment: HOSTILE.to_owned(),
        kind: None,
    };
    let queue = Queue {
        entries: &entries,
        filter: &filter,
        error: Some(HOSTILE),
        loading: false,
        scope: "all namespaces",
        account: Some(Account {
            user: HOSTILE,
            csrf: "token-1",
        }),
        now: now(),
    };
    let page = queue_page(&queue);
    assert_inert(&page);
    // Project name, environment, cost, risks, the API's message, and the filter inputs.
    assert!(page.matches("&lt;script&gt;").count() >= 6, "{page}");
}

#[test]
fn hostile_fields_are_text_on_the_checkpoint_page() {
    let checkpoint = hostile_checkpoint();
    let project = hostile_project();
    let review = PlanReview {
        changes: vec![ReviewedChange {
            address: HOSTILE.to_owned(),
            action: HOSTILE.to_owned(),
            attributes: vec![AttributeChange {
                path: HOSTILE.to_owned(),
                before: Some(HOSTILE.to_owned()),
                after: Some(HOSTILE.to_owned()),
            }],
            omitted_attributes: 0,
        }],
        omitted_changes: 0,
    };
    let refusal = Refusal {
        message: HOSTILE.to_owned(),
        refused_by: HOSTILE.to_owned(),
    };
    for review in [
        Review::Stored(&review),
        Review::Missing,
        Review::Unreadable(HOSTILE),
    ] {
        let page = checkpoint_page(&CheckpointPage {
            checkpoint: &checkpoint,
            project: Some(&project),
            review,
            csrf: HOSTILE,
            refusal: Some(&refusal),
            reason: HOSTILE,
            notice: None,
            now: now(),
        });
        assert_inert(&page);
    }
    // The live part alone (what server-sent events carry) too, and the decision form of a
    // pending one (reason offered again, CSRF token).
    assert_inert(&checkpoint_live(&checkpoint, Some(&project), now()));
    let mut pending = hostile_checkpoint();
    pending.status = None;
    let page = checkpoint_page(&CheckpointPage {
        checkpoint: &pending,
        project: None,
        review: Review::Missing,
        csrf: HOSTILE,
        refusal: None,
        reason: HOSTILE,
        notice: None,
        now: now(),
    });
    assert_inert(&page);
    assert!(page.contains("<form method=\"post\""), "{page}");
}

#[test]
fn the_refusal_shows_the_apis_message_verbatim() {
    let checkpoint = checkpoint("team-a", "shop-1", json!({}), json!({}));
    let message = "checkpoints.tollgate.dev \"shop-1\" is forbidden: User \"carol\" cannot patch resource \"checkpoints/status\" in API group \"tollgate.dev\" in the namespace \"team-a\"";
    let refusal = Refusal {
        message: message.to_owned(),
        refused_by: "permission: RBAC".to_owned(),
    };
    let page = checkpoint_page(&CheckpointPage {
        checkpoint: &checkpoint,
        project: None,
        review: Review::Missing,
        csrf: "t",
        refusal: Some(&refusal),
        reason: "looks fine",
        notice: None,
        now: now(),
    });
    assert!(
        page.contains(&format!("<p class=\"api-message\">{}</p>", esc(message))),
        "{page}"
    );
    assert!(page.contains(">looks fine</textarea>"), "{page}");
}

#[test]
fn a_pending_checkpoint_offers_the_decisions_of_its_type_and_a_decided_one_none() {
    let decide = |kind: &str, status: Value| {
        checkpoint_page(&CheckpointPage {
            checkpoint: &checkpoint("team-a", "shop-1", json!({"type": kind}), status),
            project: None,
            review: Review::Missing,
            csrf: "token-1",
            refusal: None,
            reason: "",
            notice: None,
            now: now(),
        })
    };
    let page = decide("PlanApproval", json!({"phase": "Pending"}));
    assert!(page.contains("value=\"Approved\""), "{page}");
    assert!(page.contains("value=\"Rejected\""), "{page}");
    assert!(page.contains("name=\"csrf\" value=\"token-1\""), "{page}");
    let page = decide("FailureEscalation", json!({}));
    for decision in ["Retry", "Rollback", "Abandon"] {
        assert!(page.contains(&format!("value=\"{decision}\"")), "{page}");
    }
    assert!(!page.contains("value=\"Approved\""), "{page}");
    let page = decide(
        "PlanApproval",
        json!({"decision": "Approved", "phase": "Approved"}),
    );
    assert!(!page.contains("<form"), "{page}");
}

#[test]
fn a_credential_checkpoint_offers_empty_password_fields_for_the_secrets_keys_while_pending() {
    let page = |spec: Value, status: Value, notice: Option<&str>| {
        checkpoint_page(&CheckpointPage {
            checkpoint: &checkpoint("team-a", "shop-1", spec, status),
            project: None,
            review: Review::Missing,
            csrf: "token-1",
            refusal: None,
            reason: "",
            notice,
            now: now(),
        })
    };
    let wanted = json!({"type": "Credential", "planRef": null,
        "summary": {"text": "Secret team-a/aws-keys does not exist.", "add": 0, "change": 0, "destroy": 0},
        "secret": {"name": "aws-keys", "keys": ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]}});
    let open = page(wanted.clone(), json!({"phase": "Pending"}), None);
    assert!(
        open.contains("action=\"/c/team-a/shop-1/secret\""),
        "{open}"
    );
    assert!(open.contains("<code>team-a/aws-keys</code>"), "{open}");
    // Nothing is planned: what is needed, not changes and costs.
    assert!(
        open.contains("<h2>What is needed</h2>") && !open.contains("<h2>Changes</h2>"),
        "{open}"
    );
    for (i, key) in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
        .iter()
        .enumerate()
    {
        assert!(
            open.contains(&format!(
                "<input id=\"secret-{i}\" name=\"secret.{key}\" type=\"password\" autocomplete=\"off\" required>"
            )),
            "{open}"
        );
    }
    // Nothing in the form carries a value but the CSRF token.
    let form = open.split("<section class=\"secret\">").nth(1).unwrap();
    let form = form.split("</section>").next().unwrap();
    assert_eq!(form.matches("value=").count(), 1, "{form}");
    assert!(open.contains("data-pending=\"true\""), "{open}");
    // Decided, or a Credential checkpoint that names no Secret: no form.
    let closed = page(wanted, json!({"phase": "Superseded"}), None);
    assert!(!closed.contains("Provide the Secret"), "{closed}");
    assert!(closed.contains("data-pending=\"false\""), "{closed}");
    let unnamed = page(
        json!({"type": "Credential"}),
        json!({"phase": "Pending"}),
        None,
    );
    assert!(!unnamed.contains("Provide the Secret"), "{unnamed}");
    // Hostile names and keys are text; the notice too.
    let hostile = page(
        json!({"type": "Credential", "secret": {"name": HOSTILE, "keys": [HOSTILE]}}),
        json!({"phase": "Pending"}),
        Some(HOSTILE),
    );
    assert_inert(&hostile);
    assert!(!hostile.contains("name=\"secret.<"), "{hostile}");
}

#[test]
fn the_sign_in_page_has_a_password_field_and_shows_the_refusal_escaped() {
    let page = sign_in_page(None);
    assert!(
        page.contains(
            "<input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"off\" required>"
        ),
        "{page}"
    );
    assert!(page.contains("action=\"/sign-in\""), "{page}");
    assert!(!page.contains("refusal"), "{page}");
    assert_inert(&sign_in_page(Some(HOSTILE)));
}

#[test]
fn the_filter_keeps_what_it_names_and_survives_its_query_string() {
    let filter = Filter::from_query(
        "show=all&type=Destroy&namespace=team-a&project=sho&environment=prod&x=1",
    );
    assert_eq!(
        filter,
        Filter {
            all: true,
            kind: Some(CheckpointType::Destroy),
            namespace: "team-a".into(),
            project: "sho".into(),
            environment: "prod".into(),
        }
    );
    assert_eq!(Filter::from_query(&filter.to_query()), filter);
    assert_eq!(Filter::from_query("type=%3Cscript%3E").kind, None);

    let destroy = checkpoint("team-a", "shop-1", json!({"type": "Destroy"}), json!({}));
    let prod = project("team-a", "shop", "prod", json!({}));
    let dev = project("team-a", "shop", "dev", json!({}));
    assert!(filter.keeps(&destroy, Some(&prod)));
    assert!(!filter.keeps(&destroy, Some(&dev)));
    assert!(!filter.keeps(&destroy, None), "environment unknown");
    let plan = checkpoint("team-a", "shop-1", json!({}), json!({}));
    assert!(!filter.keeps(&plan, Some(&prod)), "type");
    let other = checkpoint("team-b", "shop-1", json!({"type": "Destroy"}), json!({}));
    assert!(!filter.keeps(&other, Some(&prod)), "namespace");
    let pending_only = Filter::default();
    let decided = checkpoint(
        "team-a",
        "shop-1",
        json!({}),
        json!({"decision": "Approved", "phase": "Approved"}),
    );
    assert!(pending_only.keeps(&plan, None));
    assert!(!pending_only.keeps(&decided, None));
}

#[test]
fn the_queue_shows_each_column_and_marks_overdue() {
    let overdue = checkpoint(
        "team-a",
        "shop-1",
        json!({"sla": {"respondBy": "2026-11-25T11:40:00Z"},
               "summary": {"text": "", "add": 1, "change": 0, "destroy": 0, "risks": ["IamChange aws_iam_role.x"],
                           "cost": {"before": "0", "after": "3.50", "delta": "3.50"}}}),
        json!({"phase": "Pending"}),
    );
    let prod = project("team-a", "shop", "production", json!({}));
    let entries = [(&overdue, Some(&prod))];
    let filter = Filter::default();
    let rows = queue_rows(&Queue {
        entries: &entries,
        filter: &filter,
        error: None,
        loading: false,
        scope: "all namespaces",
        account: None,
        now: now(),
    });
    for cell in [
        "class=\"sla overdue\">overdue 20m<",
        "href=\"/c/team-a/shop-1\"",
        ">PlanApproval<",
        ">shop<",
        ">production<",
        ">+$3.50<",
        ">1 IamChange<",
        ">2h<",
        ">Pending<",
    ] {
        assert!(rows.contains(cell), "{cell} not in:\n{rows}");
    }
}

//! Who last changed a Project (pure: no I/O).
//!
//! Four eyes needs to know who wrote the change a checkpoint approves. An annotation a user
//! can type proves nothing, so admission owns [`LAST_CHANGED_BY_ANNOTATION`]: on create, or
//! whenever the spec changes, it is set to the authenticated username; on any other update
//! the stored value is kept, whatever the request says. The controller copies it into the
//! Checkpoint's `spec.requestedBy`.

use std::collections::BTreeMap;

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, PatchOperation, RemoveOperation};
use kube::core::admission::Operation;
use serde_json::Value;

use super::{Request, Route, Verdict, object_ref, routed_user};
use crate::api::LAST_CHANGED_BY_ANNOTATION;

const ROUTE: Route = Route {
    webhook: "project",
    handles: "CREATE and UPDATE of projects",
    resource: "projects",
    sub_resource: None,
    operations: &[Operation::Create, Operation::Update],
    needs_user_for: "record who changed it",
};

/// Mutating path for Project CREATE and UPDATE: the patch that makes
/// [`LAST_CHANGED_BY_ANNOTATION`] say who last changed the spec.
pub fn mutate_project(req: &Request) -> Verdict {
    let project = object_ref(req);
    let user = match routed_user(req, &ROUTE, &format!("Project {project}")) {
        Ok(user) => user,
        Err(message) => return Verdict::Deny(message),
    };
    let Some(object) = &req.object else {
        return Verdict::Deny(format!(
            "the request for Project {project} carries no object; tollgate cannot record who changed it"
        ));
    };
    let spec_changed = match (&req.operation, &req.old_object) {
        (Operation::Create, _) => true,
        (_, Some(old)) => object.data.get("spec") != old.data.get("spec"),
        (_, None) => {
            return Verdict::Deny(format!(
                "the update of Project {project} carries no oldObject; tollgate cannot tell whether the spec changed"
            ));
        }
    };
    let current = annotation(object.metadata.annotations.as_ref());
    let stored = annotation(
        req.old_object
            .as_ref()
            .and_then(|o| o.metadata.annotations.as_ref()),
    );
    let wanted = if spec_changed { Some(user) } else { stored };
    if current == wanted {
        return Verdict::allow();
    }
    // Only a value the user wrote themselves is worth a warning, not one carried over.
    let warnings = match current {
        Some(typed) if current != stored => vec![format!(
            "{LAST_CHANGED_BY_ANNOTATION} is recorded by tollgate from the authenticated request: {typed:?} was replaced"
        )],
        _ => Vec::new(),
    };
    let path = PointerBuf::from_tokens(["metadata", "annotations", LAST_CHANGED_BY_ANNOTATION]);
    let operation = match wanted {
        // `add` replaces a member that is already there.
        Some(value) if object.metadata.annotations.is_some() => PatchOperation::Add(AddOperation {
            path,
            value: Value::String(value.to_owned()),
        }),
        Some(value) => PatchOperation::Add(AddOperation {
            path: PointerBuf::from_tokens(["metadata", "annotations"]),
            value: serde_json::json!({ LAST_CHANGED_BY_ANNOTATION: value }),
        }),
        None => PatchOperation::Remove(RemoveOperation { path }),
    };
    Verdict::Allow {
        patch: vec![operation],
        warnings,
    }
}

fn annotation(annotations: Option<&BTreeMap<String, String>>) -> Option<&str> {
    annotations
        .and_then(|a| a.get(LAST_CHANGED_BY_ANNOTATION))
        .map(String::as_str)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::admission::test_support::request;
    use serde_json::json;

    fn project(annotations: Option<Value>, environment: &str) -> Value {
        let mut metadata = json!({"name": "demo", "namespace": "team-a"});
        if let Some(annotations) = annotations {
            metadata["annotations"] = annotations;
        }
        json!({
            "apiVersion": "tollgate.dev/v1alpha1", "kind": "Project",
            "metadata": metadata,
            "spec": {"environment": environment, "components": []},
        })
    }

    /// The object after the webhook's patch, and its annotation.
    fn after(req: &Request) -> (Option<String>, Vec<String>) {
        let verdict = mutate_project(req);
        let Verdict::Allow { patch, warnings } = verdict else {
            panic!("denied: {verdict:?}")
        };
        let mut object = serde_json::to_value(req.object.as_ref().unwrap()).unwrap();
        json_patch::patch(&mut object, &patch).unwrap();
        let value = object["metadata"]["annotations"][LAST_CHANGED_BY_ANNOTATION]
            .as_str()
            .map(str::to_owned);
        (value, warnings)
    }

    fn create(user: &str, annotations: Option<Value>) -> Request {
        request(
            "projects",
            None,
            "CREATE",
            user,
            &[],
            Some(project(annotations, "dev")),
            None,
        )
    }

    fn update(user: &str, old: Value, new: Value) -> Request {
        request("projects", None, "UPDATE", user, &[], Some(new), Some(old))
    }

    #[test]
    fn table() {
        let by = |u: &str| Some(json!({ LAST_CHANGED_BY_ANNOTATION: u }));
        let other = Some(json!({"team": "payments"}));
        let with_other =
            |u: &str| Some(json!({ LAST_CHANGED_BY_ANNOTATION: u, "team": "payments" }));
        // (case, request, expected annotation, expect a warning)
        let cases: Vec<(&str, Request, Option<&str>, bool)> = vec![
            (
                "create without annotations",
                create("carol", None),
                Some("carol"),
                false,
            ),
            (
                "create with other annotations",
                create("carol", other.clone()),
                Some("carol"),
                false,
            ),
            (
                "create typing someone else",
                create("carol", by("alice")),
                Some("carol"),
                true,
            ),
            (
                "create typing oneself",
                create("carol", by("carol")),
                Some("carol"),
                false,
            ),
            (
                "spec change",
                update(
                    "alice",
                    project(by("carol"), "dev"),
                    project(by("carol"), "prod"),
                ),
                Some("alice"),
                false,
            ),
            (
                "spec change typing someone else",
                update(
                    "carol",
                    project(by("carol"), "dev"),
                    project(by("bob"), "prod"),
                ),
                Some("carol"),
                true,
            ),
            (
                "spec change with the annotation removed",
                update(
                    "carol",
                    project(with_other("bob"), "dev"),
                    project(other.clone(), "prod"),
                ),
                Some("carol"),
                false,
            ),
            (
                "metadata-only change keeps the author",
                update(
                    "alice",
                    project(by("carol"), "dev"),
                    project(with_other("carol"), "dev"),
                ),
                Some("carol"),
                false,
            ),
            (
                "typing the annotation without a spec change restores it",
                update(
                    "carol",
                    project(by("alice"), "dev"),
                    project(by("carol"), "dev"),
                ),
                Some("alice"),
                true,
            ),
            (
                "removing the annotation without a spec change restores it",
                update(
                    "carol",
                    project(with_other("alice"), "dev"),
                    project(other.clone(), "dev"),
                ),
                Some("alice"),
                false,
            ),
            (
                "removing all annotations without a spec change restores it",
                update("carol", project(by("alice"), "dev"), project(None, "dev")),
                Some("alice"),
                false,
            ),
            (
                "adding the annotation to a Project that never had one is undone",
                update("carol", project(None, "dev"), project(by("carol"), "dev")),
                None,
                true,
            ),
            (
                "an update that changes nothing",
                update(
                    "carol",
                    project(by("alice"), "dev"),
                    project(by("alice"), "dev"),
                ),
                Some("alice"),
                false,
            ),
        ];
        for (name, req, want, warns) in cases {
            let (got, warnings) = after(&req);
            assert_eq!(got.as_deref(), want, "{name}");
            assert_eq!(!warnings.is_empty(), warns, "{name}: {warnings:?}");
        }
    }

    #[test]
    fn other_annotations_survive() {
        let req = update(
            "alice",
            project(Some(json!({"team": "payments"})), "dev"),
            project(Some(json!({"team": "payments"})), "prod"),
        );
        let Verdict::Allow { patch, .. } = mutate_project(&req) else {
            panic!()
        };
        let mut object = serde_json::to_value(req.object.as_ref().unwrap()).unwrap();
        json_patch::patch(&mut object, &patch).unwrap();
        assert_eq!(object["metadata"]["annotations"]["team"], "payments");
        // The key holds a `/`, which JSON pointers escape.
        let patch = serde_json::to_value(&patch).unwrap();
        assert_eq!(
            patch[0]["path"],
            "/metadata/annotations/tollgate.dev~1last-changed-by"
        );
    }

    #[test]
    fn no_patch_when_nothing_to_record() {
        let req = update(
            "alice",
            project(Some(json!({ LAST_CHANGED_BY_ANNOTATION: "carol" })), "dev"),
            project(Some(json!({ LAST_CHANGED_BY_ANNOTATION: "carol" })), "dev"),
        );
        assert_eq!(mutate_project(&req), Verdict::allow());
    }

    #[test]
    fn refuses_what_it_cannot_record() {
        let anonymous = create("", None);
        assert!(
            mutate_project(&anonymous)
                .denial()
                .unwrap()
                .contains("no username")
        );
        let delete = request(
            "projects",
            None,
            "DELETE",
            "carol",
            &[],
            None,
            Some(project(None, "dev")),
        );
        assert!(
            mutate_project(&delete)
                .denial()
                .unwrap()
                .contains("only CREATE and UPDATE")
        );
        let status = request(
            "projects",
            Some("status"),
            "UPDATE",
            "carol",
            &[],
            Some(project(None, "dev")),
            Some(project(None, "dev")),
        );
        assert!(mutate_project(&status).denial().is_some());
        let mut no_old = update("carol", project(None, "dev"), project(None, "prod"));
        no_old.old_object = None;
        assert!(
            mutate_project(&no_old)
                .denial()
                .unwrap()
                .contains("no oldObject")
        );
    }
}

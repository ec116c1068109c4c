//! Manual operations a module asks for: a module whose apply needs a person (a DNS
//! delegation at a registrar, say) declares the output `tollgate_manual_operation`, an object
//! `{title, instructions}` (or `null` when nothing is needed). After the apply the Project
//! waits on a `ManualOperation` checkpoint carrying those instructions until a person marks
//! it done (approves it); a step marked done is asked again only when its instructions change.

use super::*;
use crate::api::ManualOperationDone;
use crate::terraform::OutputValue;

/// The output a module declares to ask for a manual operation.
pub(super) const MANUAL_OPERATION_OUTPUT: &str = "tollgate_manual_operation";
/// Manual operations remembered as done.
const DONE_KEPT: usize = 20;

/// One step a module asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Step {
    component: String,
    title: String,
    instructions: String,
    digest: String,
}

impl Run<'_> {
    /// What follows a successful apply of `plan` with `outputs`: the modules' manual
    /// operations first (a delegation may be what makes the service reachable), then the
    /// health checks. `None`: nothing waits, the Project may be `Ready`.
    pub(super) async fn after_apply(
        &mut self,
        plan: &PlanStatus,
        outputs: &BTreeMap<String, OutputValue>,
    ) -> Result<Option<Action>, ReconcileError> {
        if let Some(step) = self.pending_step(outputs) {
            return self.ask_for_step(plan, step).await.map(Some);
        }
        self.check_health(plan, outputs).await
    }

    /// Before a plan without changes makes the Project `Ready`: a step its modules ask for
    /// that nobody marked done (a person rejected it, then someone asked for a new plan) is
    /// asked again, since nothing about it changed. Reads the outputs only when a module
    /// of the Project can ask at all.
    pub(super) async fn ask_for_undone_step(&mut self) -> Result<Option<Action>, ReconcileError> {
        let can_ask = self.project.spec.components.iter().any(|c| {
            self.ctx
                .catalog
                .module(&c.module)
                .is_ok_and(|m| m.outputs.contains_key(MANUAL_OPERATION_OUTPUT))
        });
        let Some(plan) = self.status.plan.clone().filter(|_| can_ask) else {
            return Ok(None);
        };
        let outputs = self.applied_outputs().await?;
        match self.pending_step(&outputs) {
            Some(step) => self.ask_for_step(&plan, step).await.map(Some),
            None => Ok(None),
        }
    }

    /// The first step a component's module asks for that nobody marked done yet.
    fn pending_step(&self, outputs: &BTreeMap<String, OutputValue>) -> Option<Step> {
        let redactor = self.sensitive_inputs();
        self.project.spec.components.iter().find_map(|component| {
            let output = outputs.get(&format!("{}_{MANUAL_OPERATION_OUTPUT}", component.name))?;
            let step = step_of(&component.name, output, &redactor)?;
            (!self
                .status
                .manual_operations
                .iter()
                .any(|d| d.component == step.component && d.digest == step.digest))
            .then_some(step)
        })
    }

    async fn ask_for_step(
        &mut self,
        plan: &PlanStatus,
        step: Step,
    ) -> Result<Action, ReconcileError> {
        let text = format!(
            "{} (component {}): {}",
            step.title, step.component, step.instructions
        );
        let spec = self
            .question(
                CheckpointType::ManualOperation,
                Some(PlanRef {
                    id: plan.id.clone(),
                    digest: plan.digest.clone(),
                }),
                &text,
                Vec::new(),
                vec![
                    format!(
                        "component {} asks for a manual operation: {}",
                        step.component, step.title
                    ),
                    "Approve once it is done: the Project carries on (health checks, then Ready)"
                        .into(),
                    "Reject if it cannot be done: the Project stays Failed; a new plan (a spec change or the replan annotation) asks again until it is marked done or the module stops asking"
                        .into(),
                ],
            )
            .await?;
        // One checkpoint per step and plan: a run that died after creating it finds it again,
        // while a new plan after a rejection asks anew instead of finding the rejected one.
        let tail = hex::encode(Sha256::digest(format!("{}\0{}", step.digest, plan.id)));
        let reference = self
            .create_checkpoint(&format!("manual-{}", &tail[..12]), spec)
            .await?;
        let name = reference.name.clone();
        self.status.checkpoint_ref = Some(reference);
        self.transition(
            ProjectPhase::AwaitingApproval,
            "ManualOperationRequested",
            &format!(
                "plan {} applied; checkpoint {name} waits until a person marks this done: {text}",
                plan.id
            ),
        )
        .await?;
        Ok(Action::await_change())
    }

    /// Acts on the decision of a module's `ManualOperation` checkpoint.
    pub(super) async fn follow_manual_operation(
        &mut self,
        checkpoint: &Checkpoint,
        decision: Decision,
        by: String,
        plan: &PlanStatus,
    ) -> Result<Action, ReconcileError> {
        let name = checkpoint.name_any();
        self.status.checkpoint_ref = None;
        if decision != Decision::Approved {
            self.push_history(&plan.id, "ManualOperationRejected", Some(by.clone()));
            let reason = checkpoint
                .status
                .as_ref()
                .and_then(|s| s.reason.clone())
                .unwrap_or_else(|| "no reason given".into());
            self.transition(
                ProjectPhase::Failed,
                "ManualOperationRejected",
                &format!(
                    "{by} rejected checkpoint {name} ({reason}): the manual operation was not done; plan {} stays applied; change the spec or set a new {} annotation to go on",
                    plan.id,
                    api::REPLAN_ANNOTATION
                ),
            )
            .await?;
            return Ok(Action::await_change());
        }
        let outputs = self.applied_outputs().await?;
        if let Some(step) = self.pending_step(&outputs) {
            self.status.manual_operations.insert(
                0,
                ManualOperationDone {
                    component: step.component,
                    title: step.title,
                    digest: step.digest,
                    done_by: by.clone(),
                    at: Time(jiff::Timestamp::now()),
                },
            );
            self.status.manual_operations.truncate(DONE_KEPT);
        }
        self.push_history(&plan.id, "ManualOperationDone", Some(by.clone()));
        if let Some(action) = self.after_apply(plan, &outputs).await? {
            return Ok(action);
        }
        self.transition(
            ProjectPhase::Ready,
            "Applied",
            &format!(
                "plan {} applied; {by} marked checkpoint {name} done",
                plan.id
            ),
        )
        .await?;
        self.wait_for_change().await
    }
}

/// The step `output` of `component` asks for: `{title, instructions}` (or a bare string of
/// instructions); `None` for `null` or anything else. A sensitive output is never shown.
fn step_of(component: &str, output: &OutputValue, redactor: &Redactor) -> Option<Step> {
    let (title, instructions) = match &output.value {
        serde_json::Value::String(text) => ("Manual operation".to_owned(), text.clone()),
        serde_json::Value::Object(fields) => (
            fields
                .get("title")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("Manual operation")
                .to_owned(),
            fields
                .get("instructions")
                .and_then(serde_json::Value::as_str)?
                .to_owned(),
        ),
        _ => return None,
    };
    let digest = hex::encode(Sha256::digest(
        format!("{component}\0{title}\0{instructions}").as_bytes(),
    ));
    let (title, instructions) = if output.sensitive {
        (
            title,
            format!(
                "(sensitive: read output {component}_{MANUAL_OPERATION_OUTPUT} from the Project's outputs Secret)"
            ),
        )
    } else {
        (
            truncate(&redactor.redact(&title), 200),
            truncate(&redactor.redact(&instructions), 700),
        )
    };
    Some(Step {
        component: component.to_owned(),
        title,
        instructions,
        digest,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn output(value: serde_json::Value, sensitive: bool) -> OutputValue {
        OutputValue {
            sensitive,
            value,
            value_type: serde_json::json!("dynamic"),
        }
    }

    #[test]
    fn a_module_asks_with_an_object_or_text_and_null_asks_nothing() {
        let none = Redactor::default();
        let asked = step_of(
            "zone",
            &output(
                serde_json::json!({"title": "Delegate", "instructions": "set NS to a, b"}),
                false,
            ),
            &none,
        )
        .unwrap();
        assert_eq!(
            (asked.title.as_str(), asked.instructions.as_str()),
            ("Delegate", "set NS to a, b")
        );
        let text = step_of(
            "zone",
            &output(serde_json::json!("call the registrar"), false),
            &none,
        )
        .unwrap();
        assert_eq!(text.title, "Manual operation");
        for nothing in [
            serde_json::json!(null),
            serde_json::json!({"title": "x"}),
            serde_json::json!(3),
        ] {
            assert_eq!(
                step_of("zone", &output(nothing.clone(), false), &none),
                None,
                "{nothing}"
            );
        }
        // Other instructions (new name servers) are another step; the same ones are not.
        let other = step_of(
            "zone",
            &output(
                serde_json::json!({"title": "Delegate", "instructions": "set NS to c, d"}),
                false,
            ),
            &none,
        )
        .unwrap();
        assert_ne!(asked.digest, other.digest);
    }

    #[test]
    fn secrets_never_reach_the_checkpoint() {
        let mut redactor = Redactor::default();
        redactor.add("s3cr3t-token");
        let step = step_of(
            "zone",
            &output(serde_json::json!({"title": "Add token", "instructions": "paste s3cr3t-token at the registrar"}), false),
            &redactor,
        )
        .unwrap();
        assert!(
            !step.instructions.contains("s3cr3t-token"),
            "{}",
            step.instructions
        );
        let hidden = step_of(
            "zone",
            &output(serde_json::json!("key hunter2"), true),
            &redactor,
        )
        .unwrap();
        assert!(
            !hidden.instructions.contains("hunter2"),
            "{}",
            hidden.instructions
        );
        assert!(
            hidden
                .instructions
                .contains("zone_tollgate_manual_operation")
        );
    }
}

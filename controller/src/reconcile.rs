//! The Kubernetes shell around the pure core: controllers for Projects and Checkpoints.
//!
//! Every step is recorded in status before the next one starts, so a controller killed at
//! any point resumes from status: the plan lives in a Secret, state in Terraform's backend,
//! and Terraform itself refuses to apply a saved plan twice (a second apply of a plan whose
//! state has moved on fails as stale).

mod backoff;
mod checkpoint;
mod conditions;
mod context;
mod error;
mod plans;
mod project;
mod slots;

use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::ListParams;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Resource, ResourceExt};

pub use backoff::{Backoff, delay as backoff_delay};
pub use context::{Accountability, Context, ControllerConfig, JobRunner, PolicySettings};
pub use error::{ApiStep, During, PlanStoreProblem, ReconcileError};
pub(crate) use project::INIT_OPTIONS;
pub use slots::{ReleaseOnDrop, RunSlots};

use crate::api::{Checkpoint, Project};
use crate::state::PROJECT_NAMESPACE_LABEL;

/// With `--runner=job`: the Project whose runner Job changed (it ended, most of all). Without
/// it, nothing (and no Job is watched, so the controller needs no permission on Jobs).
fn job_wakeups(
    ctx: &Context,
    state_selector: &str,
) -> futures::stream::BoxStream<'static, ObjectRef<Project>> {
    if ctx.config.job_runner.is_none() {
        return futures::stream::empty().boxed();
    }
    let selector = runner_job_selector(state_selector);
    watcher(runner_jobs(ctx), watcher::Config::default().labels(&selector))
        .filter_map(|event| async move {
            match event {
                // A deleted Job wakes its Project too: a run that is gone is reported.
                Ok(
                    watcher::Event::Apply(job)
                    | watcher::Event::InitApply(job)
                    | watcher::Event::Delete(job),
                ) => {
                    let labels = job.labels();
                    Some(
                        ObjectRef::<Project>::new(labels.get(PROJECT_LABEL)?)
                            .within(labels.get(PROJECT_NAMESPACE_LABEL)?),
                    )
                }
                Ok(_) => None,
                Err(err) => {
                    tracing::warn!(error = %err, "watching runner Jobs; Projects look at their Job every minute meanwhile");
                    None
                }
            }
        })
        .boxed()
}

/// Where the runner Jobs are: the state namespace.
pub(crate) fn runner_jobs(ctx: &Context) -> Api<k8s_openapi::api::batch::v1::Job> {
    Api::namespaced(ctx.client.clone(), &ctx.config.state_namespace)
}

/// The runner Jobs of the Projects `state_selector` (a Project namespace label selector)
/// covers.
fn runner_job_selector(state_selector: &str) -> String {
    format!("{},{state_selector}", crate::runner_job::RUN_LABEL)
}

/// With `--runner=job`, when this controller starts leading (a restart, a failover): every
/// runner Job that still runs holds its Project's Terraform run slot before any reconcile
/// hands slots out, so `--max-terraform` bounds adopted Jobs and new runs alike. The
/// Project's first reconcile finds its slot granted and keeps it while the Job runs.
async fn hold_slots_of_running_jobs(ctx: &Context, state_selector: &str) {
    if ctx.config.job_runner.is_none() {
        return;
    }
    let selector = runner_job_selector(state_selector);
    let listed = match runner_jobs(ctx)
        .list(&ListParams::default().labels(&selector))
        .await
    {
        Ok(listed) => listed,
        Err(err) => {
            tracing::warn!(error = %err, "cannot list runner Jobs: the running ones count against --max-terraform only once their Projects adopt them");
            return;
        }
    };
    for job in &listed.items {
        if crate::runner_job::state(job) != crate::runner_job::JobState::Running {
            continue;
        }
        let labels = job.labels();
        if let (Some(namespace), Some(name)) = (
            labels.get(PROJECT_NAMESPACE_LABEL),
            labels.get(PROJECT_LABEL),
        ) {
            ctx.slots.request(namespace, name);
            tracing::info!(job = %job.name_any(), project = %format!("{namespace}/{name}"), "a running runner Job holds its Project's run slot");
        }
    }
}

/// `text` cut to `max` characters (an ellipsis marks the cut).
pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    text.chars().take(max).collect::<String>() + "…"
}

/// Field manager for everything the controller writes (server-side apply).
pub const FIELD_MANAGER: &str = "tollgate-controller";
/// Finalizer that lets the controller destroy (or orphan) infrastructure before deletion.
pub const FINALIZER: &str = "tollgate.dev/cleanup";
/// Label on every object tollgate creates for a Project.
pub const PROJECT_LABEL: &str = crate::state::PROJECT_LABEL;

/// Retries a failed reconcile after an exponential, capped, per-object delay
/// ([`backoff::delay`]); the Project reconciler has already recorded the error in status
/// and as a Warning Event.
fn error_policy<K>(obj: Arc<K>, error: &ReconcileError, ctx: Arc<Context>) -> Action
where
    K: Resource<DynamicType = ()> + ResourceExt,
{
    let wait = ctx.backoff.failed(
        &backoff_key(obj.as_ref()),
        &fingerprint(obj.as_ref()),
        Instant::now(),
    );
    tracing::warn!(object = %key(obj.as_ref()), error = %error, category = error.category(), retry_in_s = wait.as_secs(), "reconcile failed; retrying");
    ctx.metrics.reconcile_failed(error.category());
    Action::requeue(wait)
}

/// The key of an object in [`Backoff`]: `kind/namespace/name`.
fn backoff_key<K: Resource<DynamicType = ()> + ResourceExt>(obj: &K) -> String {
    format!("{}/{}", K::kind(&()), key(obj))
}

/// What of an object, when changed, ends its backoff at once: a person's change (spec via
/// the generation, annotations such as the re-plan request), finalizers and deletion. Status
/// writes (the controller's own) do not.
fn fingerprint<K: ResourceExt>(obj: &K) -> String {
    let meta = obj.meta();
    format!(
        "{:?}\0{:?}\0{:?}\0{:?}",
        meta.generation,
        meta.deletion_timestamp.as_ref().map(|t| t.0.to_string()),
        meta.annotations,
        meta.finalizers
    )
}

/// Runs the Project and Checkpoint controllers until `shutdown` resolves.
pub async fn run(
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let client = ctx.client.clone();
    let (projects, checkpoints, secrets): (Api<Project>, Api<Checkpoint>, Api<Secret>) =
        match &ctx.config.namespace {
            Some(ns) => (
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client.clone(), ns),
            ),
            None => (
                Api::all(client.clone()),
                Api::all(client.clone()),
                Api::all(client.clone()),
            ),
        };
    // Checkpoints opened in the state namespace (a Destroy of a Project whose namespace is
    // being deleted) have no owner reference (it cannot cross namespaces): their labels name
    // the Project. A controller scoped to one namespace watches only that namespace's.
    let state_checkpoints: Api<Checkpoint> = Api::namespaced(client, &ctx.config.state_namespace);
    let state_selector = match &ctx.config.namespace {
        Some(ns) => format!("{PROJECT_NAMESPACE_LABEL}={ns}"),
        None => PROJECT_NAMESPACE_LABEL.to_owned(),
    };
    hold_slots_of_running_jobs(&ctx, &state_selector).await;
    let (shutdown_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let mut project_stop = shutdown_tx.subscribe();
    let mut checkpoint_stop = shutdown_tx.subscribe();
    let mut state_checkpoint_stop = shutdown_tx.subscribe();
    let config = kube::runtime::controller::Config::default().concurrency(ctx.config.concurrency);

    let project_watch = match &ctx.config.project_selector {
        Some(selector) => watcher::Config::default().labels(selector),
        None => watcher::Config::default(),
    };
    let project_controller = Controller::new(projects, project_watch);
    let project_store = project_controller.store();
    let policy_namespace = ctx.config.policy.namespace.clone();
    // A policy ConfigMap changed: re-judge the Projects it applies to (the cluster's apply
    // to every Project, a namespace's to its own).
    let affected_projects = move |config_map: ConfigMap| {
        let namespace = config_map.namespace().unwrap_or_default();
        project_store
            .state()
            .iter()
            .filter(|p| {
                namespace == policy_namespace || p.namespace().as_deref() == Some(&namespace)
            })
            .map(|p| ObjectRef::from_obj(&**p))
            .collect::<Vec<_>>()
    };
    let policy_config_maps: Api<ConfigMap> = match &ctx.config.namespace {
        // Scoped to one namespace: its own policies and the cluster's (when elsewhere, the
        // change is seen at the next reconcile through the plan key).
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    };
    let project_controller = project_controller
        .with_config(config.clone())
        .watches(
            policy_config_maps,
            watcher::Config::default().labels(crate::policy::POLICY_LABEL),
            affected_projects,
        )
        .owns(checkpoints.clone(), watcher::Config::default())
        .owns(secrets, watcher::Config::default().labels(PROJECT_LABEL))
        .watches(
            state_checkpoints.clone(),
            watcher::Config::default().labels(&state_selector),
            |cp: Checkpoint| {
                let labels = cp.labels();
                let ns = labels.get(PROJECT_NAMESPACE_LABEL)?;
                let name = cp.spec.project_ref.name.clone();
                Some(ObjectRef::<Project>::new(&name).within(ns))
            },
        )
        .reconcile_on(ctx.slots.wakeups())
        .reconcile_on(job_wakeups(&ctx, &state_selector))
        .graceful_shutdown_on(async move {
            let _ = project_stop.recv().await;
        })
        .run(project::reconcile, error_policy, ctx.clone())
        .for_each(|result| async move {
            match result {
                Ok((obj, _)) => tracing::debug!(project = %obj.name, "reconciled"),
                Err(err) => tracing::debug!(error = %err, "project reconcile error"),
            }
        });
    let checkpoint_controller = Controller::new(checkpoints, watcher::Config::default())
        .with_config(config.clone())
        .graceful_shutdown_on(async move {
            let _ = checkpoint_stop.recv().await;
        })
        .run(checkpoint::reconcile, error_policy, ctx.clone())
        .for_each(|result| async move {
            if let Err(err) = result {
                tracing::debug!(error = %err, "checkpoint reconcile error");
            }
        });
    // Watching all namespaces already covers the state namespace.
    let watch_state_namespace = ctx
        .config
        .namespace
        .as_ref()
        .is_some_and(|ns| *ns != ctx.config.state_namespace);
    let state_checkpoint_controller = async move {
        if !watch_state_namespace {
            return;
        }
        Controller::new(
            state_checkpoints,
            watcher::Config::default().labels(&state_selector),
        )
        .with_config(config)
        .graceful_shutdown_on(async move {
            let _ = state_checkpoint_stop.recv().await;
        })
        .run(checkpoint::reconcile, error_policy, ctx.clone())
        .for_each(|result| async move {
            if let Err(err) = result {
                tracing::debug!(error = %err, "checkpoint reconcile error");
            }
        })
        .await;
    };
    tokio::spawn(async move {
        shutdown.await;
        let _ = shutdown_tx.send(());
    });
    tokio::join!(
        project_controller,
        checkpoint_controller,
        state_checkpoint_controller
    );
}

/// `namespace/name` of an object, for messages.
fn key<K: ResourceExt>(obj: &K) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

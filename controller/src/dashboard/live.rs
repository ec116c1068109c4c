//! The cluster as the person sees it: Checkpoints and Projects kept current by Kubernetes
//! watches made with the person's own client, and a counter that moves on every change so
//! each open page (server-sent events) renders again.

use std::sync::{Arc, Mutex, PoisonError};

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};
use tokio::sync::watch;

use crate::api::{Checkpoint, Project};

/// Why a watch is not current: the API's message (e.g. RBAC refusing to list).
type LastError = Arc<Mutex<Option<String>>>;

/// Checkpoints and Projects in the person's scope, as their watches last saw them. The
/// watches stop when the last clone is dropped (a session that ends).
#[derive(Clone)]
pub struct Cluster {
    /// The person's client: every read and every decision is made with it.
    pub client: Client,
    /// The namespaces watched; empty for every namespace.
    pub namespaces: Vec<String>,
    /// One store per namespace watched (one for every namespace).
    checkpoints: Vec<Store<Checkpoint>>,
    projects: Vec<Store<Project>>,
    checkpoint_error: LastError,
    project_error: LastError,
    changed: watch::Receiver<u64>,
    _watches: Arc<Watches>,
}

/// The watch tasks of one [`Cluster`], stopped when it goes.
#[derive(Default)]
struct Watches(Vec<tokio::task::AbortHandle>);

impl Drop for Watches {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

impl Cluster {
    /// Starts watching Checkpoints and Projects in `namespaces` (every namespace when
    /// empty) with `client`; the watches retry with backoff and end with the last clone.
    pub fn watch(client: Client, namespaces: Vec<String>) -> Cluster {
        let (changes, changed) = watch::channel(0_u64);
        let changes = Arc::new(changes);
        let (checkpoint_error, project_error) = (LastError::default(), LastError::default());
        let scopes: Vec<Option<&str>> = match namespaces.as_slice() {
            [] => vec![None],
            some => some.iter().map(|n| Some(n.as_str())).collect(),
        };
        let mut watches = Watches::default();
        let (mut checkpoints, mut projects) = (Vec::new(), Vec::new());
        for scope in scopes {
            let (store, writer) = reflector::store();
            checkpoints.push(store);
            watches.0.push(spawn_watch(
                api(&client, scope),
                writer,
                changes.clone(),
                checkpoint_error.clone(),
            ));
            let (store, writer) = reflector::store();
            projects.push(store);
            watches.0.push(spawn_watch(
                api(&client, scope),
                writer,
                changes.clone(),
                project_error.clone(),
            ));
        }
        Cluster {
            checkpoints,
            projects,
            checkpoint_error,
            project_error,
            changed,
            namespaces,
            client,
            _watches: Arc::new(watches),
        }
    }

    /// A cluster whose stores are filled by the caller (tests) and never change.
    #[cfg(test)]
    pub fn fixed(
        client: Client,
        checkpoints: Store<Checkpoint>,
        projects: Store<Project>,
    ) -> Cluster {
        let (_, changed) = watch::channel(0_u64);
        Cluster {
            client,
            namespaces: Vec::new(),
            checkpoints: vec![checkpoints],
            projects: vec![projects],
            checkpoint_error: LastError::default(),
            project_error: LastError::default(),
            changed,
            _watches: Arc::default(),
        }
    }

    /// "namespace X", "namespaces X, Y" or "all namespaces".
    pub fn scope(&self) -> String {
        match self.namespaces.as_slice() {
            [] => "all namespaces".to_owned(),
            [one] => format!("namespace {one}"),
            many => format!("namespaces {}", many.join(", ")),
        }
    }

    /// Every checkpoint seen, each with its Project when that can be read.
    pub fn checkpoints(&self) -> Vec<(Arc<Checkpoint>, Option<Arc<Project>>)> {
        self.checkpoints
            .iter()
            .flat_map(Store::state)
            .map(|checkpoint| {
                let project = self.project_of(&checkpoint);
                (checkpoint, project)
            })
            .collect()
    }

    /// One checkpoint, as last seen.
    pub fn checkpoint(&self, namespace: &str, name: &str) -> Option<Arc<Checkpoint>> {
        let key = ObjectRef::new(name).within(namespace);
        self.checkpoints.iter().find_map(|s| s.get(&key))
    }

    /// The checkpoint's Project, as last seen.
    pub fn project_of(&self, checkpoint: &Checkpoint) -> Option<Arc<Project>> {
        let namespace = checkpoint
            .spec
            .project_ref
            .namespace
            .as_deref()
            .or(checkpoint.metadata.namespace.as_deref())?;
        let key = ObjectRef::new(&checkpoint.spec.project_ref.name).within(namespace);
        self.projects.iter().find_map(|s| s.get(&key))
    }

    /// Whether the first list of checkpoints has not arrived yet.
    pub fn loading(&self) -> bool {
        self.checkpoints.iter().all(|s| s.state().is_empty())
            && self.error().is_none()
            && !self.ready()
    }

    fn ready(&self) -> bool {
        // The store publishes the first list whole; an empty namespace is ready too once
        // the watch said so, which the counter records.
        *self.changed.borrow() > 0
    }

    /// Why checkpoints (or Projects) are not current, if they are not.
    pub fn error(&self) -> Option<String> {
        let read = |e: &LastError| e.lock().unwrap_or_else(PoisonError::into_inner).clone();
        read(&self.checkpoint_error).or_else(|| {
            read(&self.project_error)
                .map(|e| format!("Projects (environment and history are not shown): {e}"))
        })
    }

    /// A receiver that changes with every watch event.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changed.clone()
    }
}

/// `K` in `namespace`, or in every namespace.
fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    <K as Resource>::DynamicType: Default,
{
    match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    }
}

fn spawn_watch<K>(
    api: Api<K>,
    writer: reflector::store::Writer<K>,
    changes: Arc<watch::Sender<u64>>,
    last_error: LastError,
) -> tokio::task::AbortHandle
where
    K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
    <K as Resource>::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    let task = tokio::spawn(async move {
        let mut events = watcher(api, watcher::Config::default())
            .default_backoff()
            .reflect(writer)
            .boxed();
        while let Some(event) = events.next().await {
            let error = event.err().map(|e| describe(&e));
            if let Some(error) = &error {
                tracing::warn!(error = %error, "dashboard watch failed; retrying");
            }
            *last_error.lock().unwrap_or_else(PoisonError::into_inner) = error;
            changes.send_modify(|n| *n = n.wrapping_add(1));
        }
    });
    task.abort_handle()
}

/// The API's own message when it answered, else the client's error.
fn describe(error: &watcher::Error) -> String {
    match error {
        watcher::Error::InitialListFailed(kube::Error::Api(status))
        | watcher::Error::WatchStartFailed(kube::Error::Api(status)) => status.message.clone(),
        other => other.to_string(),
    }
}

//! `tollgate checkpoint …` (also `kubectl tollgate checkpoint …`): the Technical Operator's
//! commands. Always under the user's own kubeconfig identity; a decision writes only
//! `status.decision` and `status.reason` (merge patch on the status subresource), so
//! admission records who decided and RBAC and tollgate's rules apply as to `kubectl patch`.
//!
//! Exit codes: see [`decide`]'s `EXIT_*` (0 done, 1 refused by the API, 2 usage or
//! configuration, 3 nothing to decide).

pub(crate) mod decide;
pub(crate) mod format;

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use futures::{StreamExt, TryStreamExt};
use jiff::Timestamp;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Config};

use crate::api::{Checkpoint, CheckpointType, Decision, Project};
use decide::{Decider, EXIT_REFUSED, EXIT_USAGE, Request, Target};
use format::Change;

/// Field manager of the decisions this CLI writes.
const FIELD_MANAGER: &str = "tollgate-checkpoint-cli";

/// What went wrong; [`CheckpointCliError::exit_code`] maps it to the documented codes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointCliError {
    /// The kubeconfig could not be read.
    #[error(
        "cannot read kubeconfig {path}: {detail}; pass --kubeconfig FILE with your own credentials"
    )]
    Kubeconfig {
        /// The file (or `$KUBECONFIG/~/.kube/config`).
        path: String,
        /// What failed.
        detail: String,
    },
    /// The client could not be built from the kubeconfig.
    #[error("cannot use your kubeconfig: {0}")]
    Client(String),
    /// The API server refused a read.
    #[error("{what}: {message}\n  refused by: {refused_by}")]
    Refused {
        /// What was asked.
        what: String,
        /// The API's message, verbatim.
        message: String,
        /// Which permission or rule.
        refused_by: String,
    },
    /// The API server could not be reached.
    #[error("{what}: {source}; check the server in your kubeconfig and that it is reachable")]
    Unreachable {
        /// What was asked.
        what: String,
        /// The client's error.
        source: kube::Error,
    },
    /// Flags that do not fit together.
    #[error("{0}")]
    Usage(String),
    /// No terminal to confirm on.
    #[error(
        "refusing to decide without confirmation: standard input is not a terminal; review with `tollgate checkpoint show NAME`, then pass --yes"
    )]
    NotATerminal,
    /// Writing to the terminal failed.
    #[error("cannot write to the terminal: {0}")]
    Io(#[from] std::io::Error),
    /// Serialising JSON failed.
    #[error("cannot serialise output: {0}")]
    Json(#[from] serde_json::Error),
}

impl CheckpointCliError {
    /// The documented exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            CheckpointCliError::Refused { .. } => EXIT_REFUSED,
            _ => EXIT_USAGE,
        }
    }

    fn from_kube(what: String, namespace: &str, error: kube::Error) -> Self {
        match error {
            kube::Error::Api(status) => CheckpointCliError::Refused {
                what,
                refused_by: decide::refused_by(&status, namespace),
                message: status.message,
            },
            source => CheckpointCliError::Unreachable { what, source },
        }
    }
}

/// `tollgate checkpoint`.
#[derive(Debug, Args)]
pub struct CheckpointArgs {
    /// Your kubeconfig (default: $KUBECONFIG, else ~/.kube/config). Decisions are made
    /// under its identity; never the controller's.
    #[arg(long, global = true, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Namespace (default: the kubeconfig context's).
    #[arg(short = 'n', long, global = true)]
    namespace: Option<String>,
    /// Every namespace you may read.
    #[arg(short = 'A', long, global = true, conflicts_with = "namespace")]
    all_namespaces: bool,
    /// What to do.
    #[command(subcommand)]
    command: CheckpointCommand,
}

#[derive(Debug, Subcommand)]
enum CheckpointCommand {
    /// List checkpoints, soonest deadline first.
    List(ListArgs),
    /// Show one checkpoint: plan summary, every change, risk flags, cost before → after.
    Show(ShowArgs),
    /// Approve checkpoints (each shown and confirmed unless --yes).
    Approve(DecideArgs),
    /// Reject checkpoints (each shown and confirmed unless --yes).
    Reject(DecideArgs),
    /// Stream new and changed checkpoints, one line each, until interrupted.
    Watch(FilterArgs),
}

#[derive(Debug, Args)]
struct FilterArgs {
    /// Only checkpoints waiting for a decision (Pending or Escalated).
    #[arg(long)]
    pending: bool,
    /// Only this type (PlanApproval, Destroy, BudgetIncrease, …).
    #[arg(long = "type", value_name = "TYPE", value_parser = parse_type)]
    checkpoint_type: Option<CheckpointType>,
}

impl FilterArgs {
    fn keeps(&self, checkpoint: &Checkpoint) -> bool {
        (!self.pending || format::is_pending(checkpoint))
            && self
                .checkpoint_type
                .is_none_or(|t| checkpoint.spec.checkpoint_type == t)
    }
}

fn parse_type(text: &str) -> Result<CheckpointType, String> {
    serde_json::from_value(serde_json::Value::String(text.to_owned())).map_err(|_| {
        "one of PlanApproval, Destroy, BudgetIncrease, Credential, ManualOperation, FailureEscalation".to_owned()
    })
}

#[derive(Debug, Args)]
struct ListArgs {
    #[command(flatten)]
    filter: FilterArgs,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Table)]
    output: Output,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Output {
    /// Columns.
    Table,
    /// More columns: respond-by, requested-by, decided-by, summary.
    Wide,
    /// A Kubernetes List of the Checkpoints.
    Json,
}

#[derive(Debug, Args)]
struct ShowArgs {
    /// The checkpoint.
    name: String,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("targets").required(true).multiple(true).args(["names", "selector", "project"]))]
struct DecideArgs {
    /// Checkpoints to decide.
    #[arg(conflicts_with_all = ["selector", "project"])]
    names: Vec<String>,
    /// Why, in your words (recorded in status.reason).
    #[arg(long)]
    reason: String,
    /// Bulk: every pending checkpoint with these labels (e.g. tollgate.dev/project=shop).
    #[arg(short = 'l', long)]
    selector: Option<String>,
    /// Bulk: every pending checkpoint of this Project.
    #[arg(long)]
    project: Option<String>,
    /// Do not ask; decide every checkpoint selected.
    #[arg(short = 'y', long)]
    yes: bool,
}

/// Runs `tollgate checkpoint …`; errors are printed here and become exit codes.
pub async fn run(args: &CheckpointArgs) -> ExitCode {
    match run_inner(args).await {
        Ok(code) => ExitCode::from(code),
        // The reader went away (`tollgate cp list | head`): it has what it wanted.
        Err(CheckpointCliError::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

async fn run_inner(args: &CheckpointArgs) -> Result<u8, CheckpointCliError> {
    let client = client(args.kubeconfig.as_ref()).await?;
    let scope = Scope {
        namespace: args
            .namespace
            .clone()
            .unwrap_or_else(|| client.default_namespace().to_owned()),
        all: args.all_namespaces,
        client,
    };
    match &args.command {
        CheckpointCommand::List(list) => run_list(&scope, list).await,
        CheckpointCommand::Show(show) => run_show(&scope, &show.name).await,
        CheckpointCommand::Approve(d) => run_decide(&scope, d, Decision::Approved).await,
        CheckpointCommand::Reject(d) => run_decide(&scope, d, Decision::Rejected).await,
        CheckpointCommand::Watch(filter) => run_watch(&scope, filter).await,
    }
}

/// A client with the identity of `kubeconfig` (default: `$KUBECONFIG`, else `~/.kube/config`).
pub(crate) async fn client(kubeconfig: Option<&PathBuf>) -> Result<Client, CheckpointCliError> {
    Client::try_from(config(kubeconfig).await?)
        .map_err(|e| CheckpointCliError::Client(e.to_string()))
}

/// The client configuration of `kubeconfig` (default: `$KUBECONFIG`, else `~/.kube/config`).
pub(crate) async fn config(kubeconfig: Option<&PathBuf>) -> Result<Config, CheckpointCliError> {
    let options = KubeConfigOptions::default();
    match kubeconfig {
        Some(path) => {
            let file = Kubeconfig::read_from(path).map_err(|e| CheckpointCliError::Kubeconfig {
                path: path.display().to_string(),
                detail: e.to_string(),
            })?;
            Config::from_custom_kubeconfig(file, &options).await
        }
        None => Config::from_kubeconfig(&options).await,
    }
    .map_err(|e| CheckpointCliError::Kubeconfig {
        path: kubeconfig.map_or_else(
            || "($KUBECONFIG or ~/.kube/config)".to_owned(),
            |p| p.display().to_string(),
        ),
        detail: e.to_string(),
    })
}

/// Where to look: one namespace, or all.
struct Scope {
    client: Client,
    namespace: String,
    all: bool,
}

impl Scope {
    fn checkpoints(&self) -> Api<Checkpoint> {
        if self.all {
            Api::all(self.client.clone())
        } else {
            Api::namespaced(self.client.clone(), &self.namespace)
        }
    }

    fn in_namespace<K>(&self, namespace: &str) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), namespace)
    }

    fn where_(&self) -> String {
        if self.all {
            "all namespaces".to_owned()
        } else {
            format!("namespace {}", self.namespace)
        }
    }

    async fn list(&self, params: &ListParams) -> Result<Vec<Checkpoint>, CheckpointCliError> {
        self.checkpoints()
            .list(params)
            .await
            .map(|l| l.items)
            .map_err(|e| {
                CheckpointCliError::from_kube(
                    format!("cannot list checkpoints in {}", self.where_()),
                    &self.namespace,
                    e,
                )
            })
    }
}

async fn run_list(scope: &Scope, args: &ListArgs) -> Result<u8, CheckpointCliError> {
    let mut checkpoints: Vec<Checkpoint> = scope
        .list(&ListParams::default())
        .await?
        .into_iter()
        .filter(|c| args.filter.keeps(c))
        .collect();
    format::sort_by_deadline(&mut checkpoints);
    let text = match args.output {
        Output::Table | Output::Wide if checkpoints.is_empty() => {
            eprintln!("no checkpoints in {}", scope.where_());
            String::new()
        }
        Output::Table => format::table(&checkpoints, Timestamp::now(), false),
        Output::Wide => format::table(&checkpoints, Timestamp::now(), true),
        Output::Json => format::json(&checkpoints)?,
    };
    std::io::stdout().write_all(text.as_bytes())?;
    Ok(0)
}

async fn run_show(scope: &Scope, name: &str) -> Result<u8, CheckpointCliError> {
    let namespace = &scope.namespace;
    let checkpoint = scope
        .in_namespace::<Checkpoint>(namespace)
        .get(name)
        .await
        .map_err(|e| {
            CheckpointCliError::from_kube(
                format!("cannot read checkpoint {namespace}/{name}"),
                namespace,
                e,
            )
        })?;
    // Per-resource costs come from the Project, when its current plan is this one.
    let project = scope
        .in_namespace::<Project>(namespace)
        .get_opt(&checkpoint.spec.project_ref.name)
        .await;
    let project = project.ok().flatten();
    let project_cost = format::ProjectCost::of(&checkpoint, project.as_ref());
    let stored = read_review(&scope.in_namespace(namespace), name).await;
    let review = match &stored {
        Ok(Some(review)) => format::Review::Stored(review),
        Ok(None) => format::Review::Missing,
        Err(why) => format::Review::Unreadable(why),
    };
    let text = format::show(&checkpoint, review, project_cost, Timestamp::now());
    std::io::stdout().write_all(text.as_bytes())?;
    Ok(0)
}

/// The plan review stored next to checkpoint `name` (ConfigMap `<name>-review`): what the
/// TO's RBAC (tollgate-approver) may read, unlike the saved plan. `Ok(None)` when there is
/// none; `Err` says why it cannot be read.
pub(crate) async fn read_review(
    config_maps: &Api<k8s_openapi::api::core::v1::ConfigMap>,
    name: &str,
) -> Result<Option<crate::plan::PlanReview>, String> {
    let review_name = crate::api::review_config_map_name(name);
    config_maps
        .get_opt(&review_name)
        .await
        .map_err(|e| match e {
            kube::Error::Api(status) => format!("ConfigMap {review_name}: {}", status.message),
            other => format!("ConfigMap {review_name}: {other}"),
        })
        .and_then(|cm| {
            cm.and_then(|cm| cm.data?.remove(crate::api::REVIEW_KEY))
                .map(|text| {
                    serde_json::from_str::<crate::plan::PlanReview>(&text)
                        .map_err(|e| format!("ConfigMap {review_name} is damaged: {e}"))
                })
                .transpose()
        })
}

/// Writes a decision exactly as a TO does: a merge patch of
/// `{"status":{"decision":…,"reason":…}}` on the status subresource, under the identity of
/// `checkpoints`' client, so admission stamps who decided.
pub(crate) async fn patch_decision(
    checkpoints: &Api<Checkpoint>,
    name: &str,
    decision: Decision,
    reason: &str,
) -> Result<Checkpoint, kube::Error> {
    let patch = serde_json::json!({"status": {"decision": decision, "reason": reason}});
    checkpoints
        .patch_status(
            name,
            &PatchParams {
                field_manager: Some(FIELD_MANAGER.to_owned()),
                ..PatchParams::default()
            },
            &Patch::Merge(patch),
        )
        .await
}

/// Decides through the status subresource ([`patch_decision`]).
struct StatusPatch<'a>(&'a Scope);

impl Decider for StatusPatch<'_> {
    async fn decide(
        &self,
        namespace: &str,
        name: &str,
        decision: Decision,
        reason: &str,
    ) -> Result<Checkpoint, kube::Error> {
        patch_decision(&self.0.in_namespace(namespace), name, decision, reason).await
    }
}

async fn run_decide(
    scope: &Scope,
    args: &DecideArgs,
    decision: Decision,
) -> Result<u8, CheckpointCliError> {
    if args.reason.trim().is_empty() {
        return Err(CheckpointCliError::Usage(
            "--reason is empty: say why, in your words (it is recorded with the decision)".into(),
        ));
    }
    if !args.names.is_empty() && scope.all {
        return Err(CheckpointCliError::Usage(
            "-A/--all-namespaces selects with --selector or --project; name checkpoints with -n NAMESPACE".into(),
        ));
    }
    let interactive = !args.yes;
    if interactive && !std::io::stdin().is_terminal() {
        return Err(CheckpointCliError::NotATerminal);
    }
    let targets = targets(scope, args).await?;
    let request = Request {
        decision,
        reason: &args.reason,
        now: Timestamp::now(),
    };
    let verb = match decision {
        Decision::Approved => "Approve",
        Decision::Rejected => "Reject",
        Decision::Retry => "Retry",
        Decision::Rollback => "Roll back",
        Decision::Abandon => "Abandon",
    };
    let confirm = |checkpoint: &Checkpoint| -> std::io::Result<bool> {
        if !interactive {
            return Ok(true);
        }
        let mut stdout = std::io::stdout();
        write!(
            stdout,
            "{verb} {}/{}? [y/N] ",
            checkpoint.metadata.namespace.as_deref().unwrap_or_default(),
            checkpoint.metadata.name.as_deref().unwrap_or_default()
        )?;
        stdout.flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes"))
    };
    let outcome = decide::decide_all(
        &StatusPatch(scope),
        targets,
        &request,
        confirm,
        &mut std::io::stdout(),
        &mut std::io::stderr(),
    )
    .await?;
    Ok(outcome.exit_code())
}

/// The named checkpoints (read one by one), or the pending ones a selector or project picks.
async fn targets(scope: &Scope, args: &DecideArgs) -> Result<Vec<Target>, CheckpointCliError> {
    if !args.names.is_empty() {
        let api = scope.in_namespace::<Checkpoint>(&scope.namespace);
        let mut targets = Vec::new();
        for name in &args.names {
            targets.push(match api.get(name).await {
                Ok(c) => Target::Found(Box::new(c)),
                Err(error @ kube::Error::Api(_)) => Target::Unreadable {
                    namespace: scope.namespace.clone(),
                    name: name.clone(),
                    error,
                },
                Err(source) => {
                    return Err(CheckpointCliError::Unreachable {
                        what: format!("cannot read checkpoint {}/{name}", scope.namespace),
                        source,
                    });
                }
            });
        }
        return Ok(targets);
    }
    let mut params = ListParams::default();
    if let Some(selector) = &args.selector {
        params = params.labels(selector);
    }
    let mut selected: Vec<Checkpoint> = scope
        .list(&params)
        .await?
        .into_iter()
        .filter(format::is_pending)
        .filter(|c| {
            args.project
                .as_ref()
                .is_none_or(|p| &c.spec.project_ref.name == p)
        })
        .collect();
    format::sort_by_deadline(&mut selected);
    Ok(selected
        .into_iter()
        .map(|c| Target::Found(Box::new(c)))
        .collect())
}

async fn run_watch(scope: &Scope, filter: &FilterArgs) -> Result<u8, CheckpointCliError> {
    let mut events = watcher(scope.checkpoints(), watcher::Config::default())
        .default_backoff()
        .boxed();
    // resourceVersion last printed, by uid: a re-list after a reconnect prints only changes.
    let mut seen: HashMap<String, Option<String>> = HashMap::new();
    let mut listed = false;
    let mut stdout = std::io::stdout();
    loop {
        let event = match events.try_next().await {
            Ok(Some(event)) => event,
            Ok(None) => return Ok(0),
            Err(e) if !listed => {
                return Err(match e {
                    watcher::Error::InitialListFailed(err)
                    | watcher::Error::WatchStartFailed(err) => CheckpointCliError::from_kube(
                        format!("cannot watch checkpoints in {}", scope.where_()),
                        &scope.namespace,
                        err,
                    ),
                    other => {
                        CheckpointCliError::Usage(format!("cannot watch checkpoints: {other}"))
                    }
                });
            }
            Err(e) => {
                eprintln!("warning: watch interrupted ({e}); reconnecting");
                continue;
            }
        };
        let (change, checkpoint) = match event {
            watcher::Event::InitDone => {
                listed = true;
                continue;
            }
            watcher::Event::Init => continue,
            watcher::Event::InitApply(c) | watcher::Event::Apply(c) => {
                let uid = c.metadata.uid.clone().unwrap_or_default();
                let version = c.metadata.resource_version.clone();
                let change = match seen.insert(uid, version.clone()) {
                    None if listed => Change::Added,
                    None => Change::Listed,
                    Some(previous) if previous == version => continue,
                    Some(_) => Change::Modified,
                };
                (change, c)
            }
            watcher::Event::Delete(c) => {
                seen.remove(&c.metadata.uid.clone().unwrap_or_default());
                (Change::Deleted, c)
            }
        };
        if filter.keeps(&checkpoint) || change == Change::Deleted {
            writeln!(
                stdout,
                "{}",
                format::watch_line(change, &checkpoint, Timestamp::now())
            )?;
            stdout.flush()?;
        }
    }
}

//! Whether the holder of a Terraform state lock still exists: the question asked before a
//! person is ever offered to force-unlock it.
//!
//! Terraform records who took a lock as `user@host` (`Who:` in its error, `Who` in the lock
//! info); nothing else identifies the process. The in-process runner judges by that host and
//! by its own running processes ([`judge_in_process`]); a runner that starts Terraform
//! elsewhere (a Job) answers the same question from what it knows of its runs, through
//! [`LockHolders`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use super::LockInfo;

/// What a runner can tell about the holder of a state lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// It may still be running: the lock is left alone (a run waits or retries).
    Alive(String),
    /// It provably no longer runs: a person may be asked to force-unlock the lock.
    Gone(String),
    /// Nothing tells either way (another host, no holder recorded): the lock is left alone
    /// and a person who knows more force-unlocks it by hand.
    Unknown(String),
}

impl Holder {
    /// `Alive`, `Gone` or `Unknown`, for status.
    #[must_use]
    pub fn verdict(&self) -> &'static str {
        match self {
            Self::Alive(_) => "Alive",
            Self::Gone(_) => "Gone",
            Self::Unknown(_) => "Unknown",
        }
    }

    /// Why, in words.
    #[must_use]
    pub fn why(&self) -> &str {
        match self {
            Self::Alive(why) | Self::Gone(why) | Self::Unknown(why) => why,
        }
    }
}

/// Tells whether the holder of a lock on the state of the working directory `dir` is gone.
/// Synchronous on purpose: it answers from what the runner already knows of its runs.
pub trait LockHolders: Send + Sync {
    /// The holder of `lock`, taken on the state the working directory `dir` uses.
    fn holder(&self, lock: &LockInfo, dir: &Path) -> Holder;
}

/// The in-process runner's judgement: a lock taken from this controller's own host while
/// none of its Terraform processes runs for the Project was taken by a process that has
/// ended (killed with the previous controller, or with its process group). In a pod the host
/// is the pod's name, so no other process can have taken it from there. A lock from any other
/// host is not judged.
#[must_use]
pub fn judge_in_process(lock: &LockInfo, host: &str, running_here: bool) -> Holder {
    let Some(who) = lock.who.as_deref() else {
        return Holder::Unknown("the lock does not say who took it".into());
    };
    let Some((_, from)) = who.rsplit_once('@') else {
        return Holder::Unknown(format!(
            "the lock's holder {who:?} names no host (Terraform writes user@host)"
        ));
    };
    if host.is_empty() || from != host {
        return Holder::Unknown(format!(
            "taken from host {from:?}, not this controller's host {host:?}: tollgate cannot tell whether that process still runs"
        ));
    }
    if running_here {
        return Holder::Alive(format!(
            "this controller (host {host:?}) runs Terraform for the Project now"
        ));
    }
    Holder::Gone(format!(
        "taken from this controller's host {host:?}, and no Terraform process of this controller runs for the Project: the process that took it has ended"
    ))
}

/// Whether `id` looks like a lock id (an opaque token such as a UUID) and may be passed to
/// `force-unlock`: never an option, never Terraform's "no lock info" placeholder.
#[must_use]
pub fn is_lock_id(id: &str) -> bool {
    !id.is_empty()
        && !id.starts_with('-')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '/'))
}

/// The working directories Terraform processes of this runner run in, counted.
#[derive(Clone, Default)]
pub(super) struct ActiveDirs(Arc<Mutex<BTreeMap<PathBuf, usize>>>);

impl ActiveDirs {
    /// Counts a process in `dir` until the returned guard is dropped.
    pub(super) fn enter(&self, dir: &Path) -> ActiveRun {
        *self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(dir.to_path_buf())
            .or_default() += 1;
        ActiveRun {
            dirs: self.clone(),
            dir: dir.to_path_buf(),
        }
    }

    /// Whether a process runs in `dir`.
    pub(super) fn contains(&self, dir: &Path) -> bool {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(dir)
    }
}

/// One process counted in [`ActiveDirs`].
pub(crate) struct ActiveRun {
    dirs: ActiveDirs,
    dir: PathBuf,
}

impl Drop for ActiveRun {
    fn drop(&mut self) {
        let mut dirs = self.dirs.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = dirs.get_mut(&self.dir) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                dirs.remove(&self.dir);
            }
        }
    }
}

/// The host name Terraform writes into the locks this process takes (Go's `os.Hostname`:
/// the kernel's node name).
pub(super) fn this_host() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(who: Option<&str>) -> LockInfo {
        LockInfo {
            id: "2b6a6738-5dd5-7c2d-3b4a-6d4b5e1c9f00".into(),
            who: who.map(str::to_owned),
            ..LockInfo::default()
        }
    }

    #[test]
    fn only_a_lock_from_this_host_without_a_run_here_is_gone() {
        let ours = lock(Some("root@controller-7d9f"));
        assert!(matches!(
            judge_in_process(&ours, "controller-7d9f", false),
            Holder::Gone(_)
        ));
        assert!(matches!(
            judge_in_process(&ours, "controller-7d9f", true),
            Holder::Alive(_)
        ));
        // Another host (a person's laptop, another pod): never offered.
        for host in ["controller-8e0a", "controller-7d9", ""] {
            assert!(
                matches!(judge_in_process(&ours, host, false), Holder::Unknown(_)),
                "{host}"
            );
        }
        // No holder, or one without a host: not judged.
        for who in [None, Some("root"), Some("")] {
            assert!(
                matches!(
                    judge_in_process(&lock(who), "controller-7d9f", false),
                    Holder::Unknown(_)
                ),
                "{who:?}"
            );
        }
        // An `@` in the user part does not move the host.
        assert!(matches!(
            judge_in_process(&lock(Some("a@b@controller-7d9f")), "controller-7d9f", false),
            Holder::Gone(_)
        ));
        assert!(matches!(
            judge_in_process(&lock(Some("a@controller-7d9f@x")), "controller-7d9f", false),
            Holder::Unknown(_)
        ));
    }

    #[test]
    fn only_opaque_tokens_are_lock_ids() {
        for id in ["2b6a6738-5dd5-7c2d-3b4a-6d4b5e1c9f00", "lock_1.a:b/c"] {
            assert!(is_lock_id(id), "{id}");
        }
        for id in [
            "",
            "-force",
            "(unknown: Terraform printed no lock info)",
            "a b",
            "id;rm",
        ] {
            assert!(!is_lock_id(id), "{id}");
        }
    }

    #[test]
    fn a_directory_counts_as_active_while_any_of_its_runs_lasts() {
        let dirs = ActiveDirs::default();
        let dir = Path::new("/work/ns/p");
        let first = dirs.enter(dir);
        let second = dirs.enter(dir);
        assert!(dirs.contains(dir));
        assert!(!dirs.contains(Path::new("/work/ns/other")));
        drop(first);
        assert!(dirs.contains(dir));
        drop(second);
        assert!(!dirs.contains(dir));
    }
}

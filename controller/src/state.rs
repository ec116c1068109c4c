//! Where a Project's Terraform state lives with the default `kubernetes` backend (pure).
//!
//! State is kept in the controller's *state namespace* (`tollgate-system` by default), not in
//! the Project's namespace: deleting a namespace deletes every Secret in it at once, which
//! would delete the state while the infrastructure still exists, and platform users with the
//! built-in `edit` role could read and rewrite it there. In the state namespace only the
//! controller (and cluster administrators) have rights.
//!
//! The Secret is `tfstate-default-<suffix>` with a suffix derived from the Project's
//! namespace and name alone ([`secret_suffix`]): deterministic, so a Project recreated with
//! the same namespace and name adopts the state an `Orphan` deletion left behind, and
//! collision-free, so no Project can reach another's state. Nothing a platform user writes
//! in a Project chooses the location.

use std::collections::BTreeMap;

use hcl::Block;
use hcl::expr::{Expression, Object, ObjectKey};
use sha2::{Digest, Sha256};

use crate::render::quote::quoted;

/// The state namespace when neither `--state-namespace` nor `POD_NAMESPACE` says otherwise.
pub const DEFAULT_STATE_NAMESPACE: &str = "tollgate-system";
/// Label naming the Project (its name) on everything tollgate keeps for it.
pub const PROJECT_LABEL: &str = "tollgate.dev/project";
/// Label naming the Project's namespace on everything tollgate keeps for it outside that
/// namespace.
pub const PROJECT_NAMESPACE_LABEL: &str = "tollgate.dev/project-namespace";
/// Terraform's kubernetes backend names the state Secret `tfstate-<workspace>-<suffix>`.
const SECRET_PREFIX: &str = "tfstate-default-";
/// The backend puts the suffix in a label value: at most 63 characters.
const MAX_SUFFIX: usize = 63;
/// Hex digits of sha256 in a shortened suffix (64 bits).
const HASH_DIGITS: usize = 16;
/// Characters of the namespace kept in a shortened suffix.
const NAMESPACE_PART: usize = 20;

/// The state of one Project in the `kubernetes` backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateLocation {
    /// Namespace holding the state Secret and its lock Lease.
    pub namespace: String,
    /// `secret_suffix` of the backend.
    pub secret_suffix: String,
    /// Namespace of the Project.
    pub project_namespace: String,
    /// Name of the Project.
    pub project_name: String,
}

impl StateLocation {
    /// Where the state of Project `project_namespace/project_name` lives in `state_namespace`.
    #[must_use]
    pub fn new(state_namespace: &str, project_namespace: &str, project_name: &str) -> Self {
        Self {
            namespace: state_namespace.to_owned(),
            secret_suffix: secret_suffix(project_namespace, project_name),
            project_namespace: project_namespace.to_owned(),
            project_name: project_name.to_owned(),
        }
    }

    /// Name of the state Secret.
    #[must_use]
    pub fn secret_name(&self) -> String {
        format!("{SECRET_PREFIX}{}", self.secret_suffix)
    }

    /// Name of the lock Lease.
    #[must_use]
    pub fn lease_name(&self) -> String {
        format!("lock-{}", self.secret_name())
    }

    /// Labels on the state Secret and Lease (and on everything else tollgate keeps for the
    /// Project in the state namespace), so a person finds them with a label selector.
    #[must_use]
    pub fn labels(&self) -> BTreeMap<String, String> {
        project_labels(&self.project_namespace, &self.project_name)
    }

    /// The backend block: `namespace`, the derived `secret_suffix`, and [`Self::labels`].
    #[must_use]
    pub fn backend_block(&self) -> Block {
        // Names only (DNS labels, the label keys above), but still through the one escaper
        // every string in rendered HCL goes through.
        let mut labels = Object::new();
        for (key, value) in self.labels() {
            labels.insert(ObjectKey::Expression(quoted(&key)), quoted(&value));
        }
        Block::builder("backend")
            .add_label("kubernetes")
            .add_attribute(("secret_suffix", quoted(&self.secret_suffix)))
            .add_attribute(("namespace", quoted(&self.namespace)))
            .add_attribute(("labels", Expression::Object(labels)))
            .build()
    }
}

/// The labels naming Project `namespace/name` on objects kept outside its namespace. A name
/// longer than a label value allows (63) is left out; the namespace label remains.
#[must_use]
pub fn project_labels(namespace: &str, name: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([(PROJECT_NAMESPACE_LABEL.to_owned(), namespace.to_owned())]);
    if name.len() <= MAX_SUFFIX {
        labels.insert(PROJECT_LABEL.to_owned(), name.to_owned());
    }
    labels
}

/// The state Secret of the legacy location: `tfstate-default-<suffix>` in the Project's own
/// namespace, with `suffix` from `spec.backend.kubernetes.secretSuffix`, else the name.
#[must_use]
pub fn legacy_secret_name(suffix: &str) -> String {
    format!("{SECRET_PREFIX}{suffix}")
}

/// The backend's `secret_suffix` for Project `namespace/name`.
///
/// `<namespace>.<name>` when that is short enough (63 characters, a label value), the name
/// has no dot and it does not end in `-<number>` (which the backend refuses: it numbers the
/// chunks of large states that way). Otherwise `<namespace prefix>.<name prefix>.<16 hex
/// digits of sha256("namespace/name")>`. A namespace never contains a dot, so the first form
/// has exactly one dot and the second exactly two (dots in the name become `-`): no suffix
/// of one form equals one of the other, and within each form distinct Projects get distinct
/// suffixes (up to a 64-bit hash collision for the second).
#[must_use]
pub fn secret_suffix(namespace: &str, name: &str) -> String {
    let readable = format!("{namespace}.{name}");
    if !name.contains('.') && readable.len() <= MAX_SUFFIX && !ends_in_dash_number(&readable) {
        return readable;
    }
    let digest = hex::encode(Sha256::digest(format!("{namespace}/{name}").as_bytes()));
    let hash = &digest[..HASH_DIGITS];
    let namespace_part = shorten(namespace, NAMESPACE_PART);
    let budget = MAX_SUFFIX - namespace_part.len() - 2 - HASH_DIGITS;
    let name_part = shorten(&name.replace('.', "-"), budget);
    format!("{namespace_part}.{name_part}.{hash}")
}

/// The first `max` characters of a DNS name, without a trailing `-`.
fn shorten(text: &str, max: usize) -> String {
    let cut: String = text.chars().take(max).collect();
    cut.trim_end_matches(['-', '.']).to_owned()
}

/// What Terraform's backend refuses: a suffix whose part after the last `-` is a number.
fn ends_in_dash_number(suffix: &str) -> bool {
    suffix.rsplit_once('-').is_some_and(|(_, last)| {
        let digits = last.strip_prefix(['+', '-']).unwrap_or(last);
        !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit())
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn valid_suffix(suffix: &str) -> bool {
        let secret = format!("lock-{SECRET_PREFIX}{suffix}");
        suffix.len() <= MAX_SUFFIX
            && !ends_in_dash_number(suffix)
            && secret.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            })
    }

    #[test]
    fn short_names_stay_readable() {
        assert_eq!(secret_suffix("team-a", "demo"), "team-a.demo");
        let location = StateLocation::new("tollgate-system", "team-a", "demo");
        assert_eq!(location.secret_name(), "tfstate-default-team-a.demo");
        assert_eq!(location.lease_name(), "lock-tfstate-default-team-a.demo");
    }

    #[test]
    fn long_dotted_or_numbered_names_are_hash_shortened_and_valid() {
        let long = "a".repeat(253);
        let dotted = "web.example.com";
        let numbered = "app-2";
        let max_ns = "n".repeat(63);
        for (ns, name) in [
            ("team-a", long.as_str()),
            ("team-a", dotted),
            ("team-a", numbered),
            (max_ns.as_str(), "x"),
            (max_ns.as_str(), long.as_str()),
        ] {
            let suffix = secret_suffix(ns, name);
            assert_eq!(suffix.matches('.').count(), 2, "{suffix}");
            assert!(valid_suffix(&suffix), "{ns}/{name}: {suffix}");
        }
        assert!(secret_suffix("team-a", numbered).starts_with("team-a.app-2."));
    }

    #[test]
    fn the_two_forms_never_meet_and_neighbours_differ() {
        // A name crafted to look like another Project's shortened suffix.
        let shortened = secret_suffix("team-a", "app-2");
        let (_, crafted) = shortened.split_once('.').unwrap();
        assert_ne!(secret_suffix("team-a", crafted), shortened);
        // Where the namespace ends must be part of the suffix.
        assert_ne!(secret_suffix("a-b", "c"), secret_suffix("a", "b-c"));
        let mut seen = BTreeSet::new();
        for ns in ["a", "a-b", "team-a", &"n".repeat(63)] {
            for name in [
                "b",
                "b-c",
                "c",
                "x.y",
                "x-y",
                "app-1",
                "app-1a",
                &"z".repeat(100),
            ] {
                let suffix = secret_suffix(ns, name);
                assert!(valid_suffix(&suffix), "{suffix}");
                assert!(seen.insert(suffix.clone()), "collision: {suffix}");
            }
        }
    }

    #[test]
    fn terraforms_numbered_suffix_rule() {
        assert!(ends_in_dash_number("team-a.app-2"));
        assert!(!ends_in_dash_number("team-a.app-2a"));
        assert!(!ends_in_dash_number("team-a.demo"));
        assert!(!ends_in_dash_number("teama.demo"));
    }

    #[test]
    fn labels_name_the_project_and_the_backend_block_carries_them() {
        let location = StateLocation::new("tollgate-system", "team-a", "demo");
        let hcl = hcl::to_string(
            &hcl::Body::builder()
                .add_block(location.backend_block())
                .build(),
        )
        .unwrap();
        for expected in [
            "backend \"kubernetes\"",
            "secret_suffix = \"team-a.demo\"",
            "namespace = \"tollgate-system\"",
            "\"tollgate.dev/project\" = \"demo\"",
            "\"tollgate.dev/project-namespace\" = \"team-a\"",
        ] {
            assert!(hcl.contains(expected), "missing {expected} in\n{hcl}");
        }
        let long = project_labels("team-a", &"a".repeat(64));
        assert_eq!(
            long.len(),
            1,
            "a name too long for a label value is left out"
        );
    }
}

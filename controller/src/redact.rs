//! Redaction of known secret values from text before it is logged, stored or put in an error.

use std::fmt;
use std::sync::{Arc, RwLock};

/// What replaces a known secret in redacted text.
pub const REDACTED: &str = "[REDACTED]";

/// Holds the secret strings of one Terraform run (credentials, sensitive inputs) and removes
/// them from text. Besides each secret itself it also matches the secret as it appears inside
/// a JSON string (escaped), so secrets echoed in JSON output are caught too.
///
/// `Debug` shows only how many secrets it holds. Cloning is cheap.
#[derive(Clone, Default)]
pub struct Redactor {
    /// Byte patterns, longest first.
    patterns: Arc<Vec<Vec<u8>>>,
    /// Secrets that become known while the run goes on.
    live: Vec<LiveSecrets>,
}

/// Secrets learned while a run is going, such as credentials refreshed during a long apply:
/// every redactor holding it (and every clone of one) redacts what is added later.
#[derive(Clone, Default)]
pub struct LiveSecrets(Arc<RwLock<Vec<Vec<u8>>>>);

impl LiveSecrets {
    /// Adds a secret (and its JSON-escaped form). Empty strings are ignored.
    pub fn add(&self, secret: &str) {
        let mut patterns = match self.0.write() {
            Ok(guard) => guard,
            // A writer that panicked left a complete list behind: keep using it.
            Err(poisoned) => poisoned.into_inner(),
        };
        for pattern in forms(secret) {
            if !patterns.contains(&pattern) {
                patterns.push(pattern);
            }
        }
    }

    fn patterns(&self) -> Vec<Vec<u8>> {
        match self.0.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

/// A secret as it appears in text: itself, and inside a JSON string (escaped).
fn forms(secret: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    if secret.is_empty() {
        return out;
    }
    out.push(secret.as_bytes().to_vec());
    if let Ok(quoted) = serde_json::to_string(secret) {
        let inner = quoted
            .strip_prefix('"')
            .and_then(|q| q.strip_suffix('"'))
            .unwrap_or(&quoted);
        if inner != secret {
            out.push(inner.as_bytes().to_vec());
        }
    }
    out
}

impl Redactor {
    /// A redactor for these secrets. Empty strings are ignored.
    #[must_use]
    pub fn new<I, S>(secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut r = Self::default();
        for s in secrets {
            r.add(s.as_ref());
        }
        r
    }

    /// Adds a secret. Empty strings are ignored. (Very short secrets are still redacted:
    /// leaking one matters more than readable output.)
    pub fn add(&mut self, secret: &str) {
        if secret.is_empty() {
            return;
        }
        let mut patterns: Vec<Vec<u8>> = self.patterns.as_ref().clone();
        for p in forms(secret) {
            if !patterns.contains(&p) {
                patterns.push(p);
            }
        }
        patterns.sort_by_key(|p| std::cmp::Reverse(p.len()));
        self.patterns = Arc::new(patterns);
    }

    /// The redactor that also redacts whatever `live` learns later.
    #[must_use]
    pub fn with_live(mut self, live: &LiveSecrets) -> Self {
        if !self.live.iter().any(|l| Arc::ptr_eq(&l.0, &live.0)) {
            self.live.push(live.clone());
        }
        self
    }

    /// The secrets it removes now, live ones included (to hand them to another process's
    /// redactor).
    #[must_use]
    pub fn secrets(&self) -> Vec<String> {
        self.patterns
            .iter()
            .cloned()
            .chain(self.live.iter().flat_map(LiveSecrets::patterns))
            .map(|p| String::from_utf8_lossy(&p).into_owned())
            .collect()
    }

    /// The redactor with one more secret.
    #[must_use]
    pub fn with(mut self, secret: &str) -> Self {
        self.add(secret);
        self
    }

    /// Adds all secrets of `other`.
    pub fn extend(&mut self, other: &Redactor) {
        let mut patterns: Vec<Vec<u8>> = self.patterns.as_ref().clone();
        for p in other.patterns.iter() {
            if !patterns.contains(p) {
                patterns.push(p.clone());
            }
        }
        patterns.sort_by_key(|p| std::cmp::Reverse(p.len()));
        self.patterns = Arc::new(patterns);
        for live in &other.live {
            *self = std::mem::take(self).with_live(live);
        }
    }

    /// Whether it holds no secrets (a redactor with live secrets may learn some: not empty).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty() && self.live.is_empty()
    }

    /// Length in bytes of the longest pattern (0 if none).
    #[must_use]
    pub fn max_len(&self) -> usize {
        let live = self.live.iter().flat_map(LiveSecrets::patterns);
        self.patterns
            .iter()
            .cloned()
            .chain(live)
            .map(|p| p.len())
            .max()
            .unwrap_or(0)
    }

    /// `text` with every secret replaced by [`REDACTED`].
    #[must_use]
    pub fn redact(&self, text: &str) -> String {
        if self.is_empty() {
            return text.to_owned();
        }
        String::from_utf8_lossy(&self.redact_bytes(text.as_bytes(), Cut::None)).into_owned()
    }

    /// Non-overlapping matches in `hay`, leftmost first, longest pattern at each position.
    fn matches(&self, hay: &[u8]) -> Vec<(usize, usize)> {
        let learned: Vec<Vec<u8>>;
        let patterns: &[Vec<u8>] = if self.live.is_empty() {
            &self.patterns
        } else {
            let mut all: Vec<Vec<u8>> = self.patterns.as_ref().clone();
            all.extend(self.live.iter().flat_map(LiveSecrets::patterns));
            all.sort_by_key(|p| std::cmp::Reverse(p.len()));
            learned = all;
            &learned
        };
        let mut out = Vec::new();
        let mut i = 0;
        while i < hay.len() {
            let rest = hay.get(i..).unwrap_or_default();
            match patterns.iter().find(|p| rest.starts_with(p)) {
                Some(p) => {
                    out.push((i, i + p.len()));
                    i += p.len();
                }
                None => i += 1,
            }
        }
        out
    }

    /// Redacts `hay`, then cuts it as `cut` says without ever cutting a secret in two: a
    /// secret that crosses the cut is replaced whole.
    pub(crate) fn redact_bytes(&self, hay: &[u8], cut: Cut) -> Vec<u8> {
        let matches = self.matches(hay);
        let (from, to) = match cut {
            Cut::None => (0, hay.len()),
            Cut::KeepFirst(n) => (0, n.min(hay.len())),
            Cut::KeepLast(n) => (hay.len().saturating_sub(n), hay.len()),
        };
        let mut out = Vec::with_capacity(to - from);
        let mut pos = from;
        for (start, end) in matches {
            if end <= from || start >= to {
                continue;
            }
            if start > pos {
                out.extend_from_slice(hay.get(pos..start).unwrap_or_default());
            }
            out.extend_from_slice(REDACTED.as_bytes());
            pos = end.max(pos);
        }
        if pos < to {
            out.extend_from_slice(hay.get(pos..to).unwrap_or_default());
        }
        out
    }
}

/// Which part of a buffer to keep when redacting a piece of a longer output.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Cut {
    /// Keep everything.
    None,
    /// Keep the first n bytes (a secret starting before byte n is kept, redacted, whole).
    KeepFirst(usize),
    /// Keep the last n bytes (a secret ending after the cut is kept, redacted, whole).
    KeepLast(usize),
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Redactor({} patterns)", self.patterns.len())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use proptest::prelude::*;

    #[test]
    fn secrets_learned_later_are_redacted_by_every_clone() {
        let live = LiveSecrets::default();
        let run = Redactor::new(["first-key"]).with_live(&live);
        let mut workspace = Redactor::default();
        workspace.extend(&run);
        assert!(!workspace.is_empty());
        assert_eq!(workspace.redact("k=later"), "k=later");
        live.add(r#"lat"er"#);
        for r in [&run, &workspace] {
            assert_eq!(
                r.redact(r#"a=lat"er b="lat\"er" c=first-key"#),
                r#"a=[REDACTED] b="[REDACTED]" c=[REDACTED]"#
            );
        }
        assert_eq!(
            workspace.max_len(),
            r#"lat\"er"#.len().max("first-key".len())
        );
    }

    #[test]
    fn redacts_all_occurrences() {
        let r = Redactor::new(["hunter2", "AKIAEXAMPLE"]);
        assert_eq!(
            r.redact("pw=hunter2 key=AKIAEXAMPLE again hunter2"),
            "pw=[REDACTED] key=[REDACTED] again [REDACTED]"
        );
    }

    #[test]
    fn longest_match_wins() {
        let r = Redactor::new(["abc", "abcdef"]);
        assert_eq!(r.redact("xabcdefx"), "x[REDACTED]x");
    }

    #[test]
    fn json_escaped_form_is_redacted() {
        let secret = "p\"w\\x";
        let r = Redactor::new([secret]);
        let json = serde_json::to_string(&serde_json::json!({ "v": secret })).unwrap();
        let red = r.redact(&json);
        assert!(!red.contains("p\\\"w"), "{red}");
        assert!(red.contains(REDACTED));
    }

    #[test]
    fn empty_secret_ignored_and_debug_hides() {
        let r = Redactor::new(["", "s3cr3t"]);
        assert_eq!(r.redact("abc"), "abc");
        assert!(!format!("{r:?}").contains("s3cr3t"));
    }

    #[test]
    fn cuts_never_split_a_secret() {
        let r = Redactor::new(["SECRET"]);
        let hay = b"0123SECRET89";
        // The cut at 6 falls inside SECRET: it is replaced whole.
        assert_eq!(r.redact_bytes(hay, Cut::KeepFirst(6)), b"0123[REDACTED]");
        assert_eq!(r.redact_bytes(hay, Cut::KeepLast(4)), b"[REDACTED]89");
        assert_eq!(r.redact_bytes(hay, Cut::KeepLast(2)), b"89");
        assert_eq!(r.redact_bytes(hay, Cut::KeepFirst(3)), b"012");
    }

    proptest! {
        #[test]
        fn never_contains_secret(prefix in "[a-z ]{0,20}", suffix in "[a-z ]{0,20}", secret in "[A-Z0-9]{4,12}") {
            let r = Redactor::new([secret.as_str()]);
            let text = format!("{prefix}{secret}{suffix}{secret}");
            prop_assert!(!r.redact(&text).contains(&secret));
            for n in 0..text.len() {
                let first = r.redact_bytes(text.as_bytes(), Cut::KeepFirst(n));
                let last = r.redact_bytes(text.as_bytes(), Cut::KeepLast(n));
                prop_assert!(!String::from_utf8_lossy(&first).contains(&secret));
                prop_assert!(!String::from_utf8_lossy(&last).contains(&secret));
            }
        }
    }
}

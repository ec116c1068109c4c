//! Bounded capture of a process's output: keeps the head and the tail, counts what was cut,
//! and redacts secrets without ever letting a cut split one.

use std::collections::VecDeque;
use std::fmt;

use serde::Serialize;

use crate::redact::{Cut, Redactor};

/// Collects a byte stream, keeping at most `keep` bytes of its start and `keep` of its end
/// (plus a margin as long as the longest secret, so that redaction sees secrets whole).
#[derive(Debug)]
pub(crate) struct BoundedCapture {
    keep: usize,
    head_cap: usize,
    tail_cap: usize,
    head: Vec<u8>,
    tail: VecDeque<u8>,
    total: u64,
}

impl BoundedCapture {
    /// `limit` is the total number of bytes kept (half head, half tail); `margin` the length of
    /// the longest secret.
    pub(crate) fn new(limit: usize, margin: usize) -> Self {
        let keep = (limit / 2).max(1);
        Self {
            keep,
            head_cap: keep.saturating_add(margin),
            tail_cap: keep.saturating_add(margin),
            head: Vec::new(),
            tail: VecDeque::new(),
            total: 0,
        }
    }

    pub(crate) fn push(&mut self, mut bytes: &[u8]) {
        self.total = self.total.saturating_add(bytes.len() as u64);
        if self.head.len() < self.head_cap {
            let take = (self.head_cap - self.head.len()).min(bytes.len());
            let (h, rest) = bytes.split_at(take);
            self.head.extend_from_slice(h);
            bytes = rest;
        }
        if bytes.is_empty() {
            return;
        }
        if bytes.len() >= self.tail_cap {
            self.tail.clear();
            let start = bytes.len() - self.tail_cap;
            self.tail.extend(bytes.get(start..).unwrap_or_default());
        } else {
            let overflow = (self.tail.len() + bytes.len()).saturating_sub(self.tail_cap);
            self.tail.drain(..overflow.min(self.tail.len()));
            self.tail.extend(bytes);
        }
    }

    /// Whether nothing was cut so far.
    pub(crate) fn is_complete(&self) -> bool {
        self.total == (self.head.len() + self.tail.len()) as u64
    }

    /// The raw bytes, if nothing was cut. Not redacted: only for machine-readable output that
    /// the caller needs whole (JSON), never for logs or errors.
    pub(crate) fn into_raw(self) -> Option<Vec<u8>> {
        if self.is_complete() {
            let mut all = self.head;
            all.extend(self.tail);
            Some(all)
        } else {
            None
        }
    }

    /// A placeholder for output that must not be kept (it may hold sensitive values).
    pub(crate) fn withheld(&self) -> CapturedText {
        CapturedText {
            text: format!(
                "[tollgate: {} bytes of machine-readable output withheld: it may contain sensitive values]",
                self.total
            ),
            total_bytes: self.total,
            omitted_bytes: self.total,
        }
    }

    /// The redacted text, with a marker saying how much was cut from the middle.
    pub(crate) fn finish(&self, redactor: &Redactor) -> CapturedText {
        if self.is_complete() {
            let mut all = self.head.clone();
            all.extend(self.tail.iter());
            let text =
                String::from_utf8_lossy(&redactor.redact_bytes(&all, Cut::None)).into_owned();
            return CapturedText {
                text,
                total_bytes: self.total,
                omitted_bytes: 0,
            };
        }
        let head = redactor.redact_bytes(&self.head, Cut::KeepFirst(self.keep));
        let tail_raw: Vec<u8> = self.tail.iter().copied().collect();
        let tail = redactor.redact_bytes(&tail_raw, Cut::KeepLast(self.keep));
        let kept = (self.keep.min(self.head.len()) + self.keep.min(tail_raw.len())) as u64;
        let omitted = self.total.saturating_sub(kept);
        let text = format!(
            "{}\n[... tollgate: {omitted} bytes of output omitted (kept the first and last {} bytes) ...]\n{}",
            String::from_utf8_lossy(&head),
            self.keep,
            String::from_utf8_lossy(&tail),
        );
        CapturedText {
            text,
            total_bytes: self.total,
            omitted_bytes: omitted,
        }
    }
}

/// One redacted, possibly shortened, output stream.
#[derive(Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CapturedText {
    /// The text, redacted; if output was cut, a marker line stands where.
    pub text: String,
    /// How many bytes the process wrote.
    pub total_bytes: u64,
    /// How many of them were left out.
    pub omitted_bytes: u64,
}

impl CapturedText {
    /// Whether part of the output was left out.
    #[must_use]
    pub fn truncated(&self) -> bool {
        self.omitted_bytes > 0
    }
}

impl fmt::Debug for CapturedText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CapturedText")
            .field("total_bytes", &self.total_bytes)
            .field("omitted_bytes", &self.omitted_bytes)
            .field("text", &self.text)
            .finish()
    }
}

impl fmt::Display for CapturedText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use proptest::prelude::*;

    #[test]
    fn small_output_is_whole() {
        let mut c = BoundedCapture::new(100, 0);
        c.push(b"hello ");
        c.push(b"world");
        let t = c.finish(&Redactor::default());
        assert_eq!(t.text, "hello world");
        assert!(!t.truncated());
        assert_eq!(c.into_raw().unwrap(), b"hello world");
    }

    #[test]
    fn keeps_head_and_tail_and_says_what_was_cut() {
        let mut c = BoundedCapture::new(10, 0);
        for chunk in b"0123456789abcdefghijklmnopqrstuvwxyz".chunks(3) {
            c.push(chunk);
        }
        let t = c.finish(&Redactor::default());
        assert!(t.text.starts_with("01234\n"), "{}", t.text);
        assert!(t.text.ends_with("\nvwxyz"), "{}", t.text);
        assert_eq!(t.omitted_bytes, 26);
        assert!(t.text.contains("26 bytes of output omitted"));
        assert!(c.into_raw().is_none());
    }

    proptest! {
        /// Wherever the cut falls and however the stream is chunked, a secret never shows,
        /// not even in part across the cut.
        #[test]
        fn secret_never_leaks_through_cuts(
            filler in "[a-z]{0,60}",
            filler2 in "[a-z]{0,60}",
            limit in 2usize..40,
            chunk in 1usize..17,
        ) {
            let secret = "ZQXJVKWY";
            let r = Redactor::new([secret]);
            let stream = format!("{filler}{secret}{filler2}{secret}{filler}");
            let mut c = BoundedCapture::new(limit, r.max_len());
            for piece in stream.as_bytes().chunks(chunk) {
                c.push(piece);
            }
            let t = c.finish(&r);
            // No 3-character piece of the secret appears (filler is lowercase).
            for w in secret.as_bytes().windows(3) {
                prop_assert!(!t.text.contains(std::str::from_utf8(w).unwrap()), "{}", t.text);
            }
        }
    }
}

//! No production file grows past ~600 lines without saying why in its header: a long file
//! is where a newcomer stops reading (docs/architecture.md). Unit tests too long to sit at
//! the end of a file go to a `tests.rs` beside it, which this does not count.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

/// Longer than this needs a reason in the file's `//!` header, which says "600 lines".
const LIMIT: usize = 620;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs")
            && path.file_name().is_some_and(|n| n != "tests.rs")
        {
            out.push(path);
        }
    }
}

#[test]
fn long_production_files_say_why() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 50, "found only {} files", files.len());
    let mut unexplained = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let lines = text.lines().count();
        let header: String = text
            .lines()
            .take_while(|l| l.starts_with("//!"))
            .collect::<Vec<_>>()
            .join("\n");
        if lines > LIMIT && !header.contains("600 lines") {
            unexplained.push(format!(
                "{}: {lines} lines",
                file.strip_prefix(&src).unwrap().display()
            ));
        }
    }
    assert!(
        unexplained.is_empty(),
        "split these, or say in the `//!` header why they are over 600 lines:\n{}",
        unexplained.join("\n")
    );
}

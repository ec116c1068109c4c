//! The embedded price book is exactly what `controller/data/generate-prices.py` builds from
//! the curated rows and the committed copies of AWS's price files.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

#[test]
fn committed_book_is_the_generators_output() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/data/generate-prices.py");
    let out = Command::new("python3")
        .arg(script)
        .arg("--check")
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 {script}: {e}"));
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The check fails on a book that is not the generator's output (here: one row changed).
#[test]
fn a_stale_book_is_detected() {
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/data");
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("data");
    std::fs::create_dir_all(copy.join("sources")).unwrap();
    for name in ["generate-prices.py", "curated-prices.csv", "aws-prices.csv"] {
        std::fs::copy(format!("{data}/{name}"), copy.join(name)).unwrap();
    }
    for entry in std::fs::read_dir(format!("{data}/sources")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), copy.join("sources").join(entry.file_name())).unwrap();
    }
    let book = copy.join("aws-prices.csv");
    let text = std::fs::read_to_string(&book).unwrap();
    let edited = text.replacen(
        ",instance:m3.medium,hour,0.067,",
        ",instance:m3.medium,hour,0.01,",
        1,
    );
    assert_ne!(edited, text, "the fixture row is gone from the book");
    std::fs::write(&book, edited).unwrap();
    let out = Command::new("python3")
        .arg(copy.join("generate-prices.py"))
        .arg("--check")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not the generator's output"));
}

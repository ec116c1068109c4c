//! The CRDs in `crds/` are exactly what `tollgate crd` prints.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

#[test]
fn committed_crds_match_the_generated_ones() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crds");
    let generated = tollgate::cli::crd_files().unwrap();
    let mut committed: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    committed.sort();
    let mut names: Vec<String> = generated.iter().map(|(n, _)| n.clone()).collect();
    names.sort();
    assert_eq!(
        committed, names,
        "crds/ has other files than `tollgate crd` generates; run `cargo run -- crd --out-dir crds`"
    );
    for (name, yaml) in generated {
        let on_disk = std::fs::read_to_string(dir.join(&name)).unwrap();
        assert!(
            on_disk == yaml,
            "crds/{name} is stale; regenerate with `cargo run -- crd --out-dir crds`"
        );
    }
}

#[test]
fn committed_api_reference_matches_the_generated_one() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/api.md");
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == tollgate::cli::api_reference().unwrap(),
        "docs/api.md is stale; regenerate with `cargo run -- api-docs > docs/api.md`"
    );
}

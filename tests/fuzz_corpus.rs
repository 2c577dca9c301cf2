//! The fuzz targets' bodies (`fuzz/src/lib.rs`, the same code `cargo fuzz` runs) over the
//! committed seed corpus in `fuzz/corpus/<target>/`, as ordinary tests: every input must pass
//! every check of its target. This keeps the targets compiling with the crate and the corpus
//! meaningful even where no fuzzer is installed; `scripts/fuzz-short.sh` fuzzes for real.

#[path = "../fuzz/src/lib.rs"]
mod fuzz_bodies;

use std::path::PathBuf;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).expect("a corpus file");
            (p, bytes)
        })
        .collect()
}

fn run(target: &str) {
    let (_, body) = fuzz_bodies::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .expect("a fuzz target of that name");
    let inputs = corpus(target);
    assert!(!inputs.is_empty(), "{target}: the corpus is empty");
    for (path, bytes) in inputs {
        let r = std::panic::catch_unwind(|| body(&bytes));
        assert!(r.is_ok(), "{target}: {} fails", path.display());
    }
    // The empty input and a few tiny ones, which the corpus may not hold.
    for tiny in [&[][..], &[0], &[0xff; 3], &[1, 0, 0, 0, 0]] {
        body(tiny);
    }
}

#[test]
fn every_target_has_a_test_here() {
    let names: Vec<&str> = fuzz_bodies::TARGETS.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "capture_read",
            "capture_decode",
            "tcp_assembler",
            "tcp_flows",
            "smtp_session",
            "maillog_parse",
            "analyze"
        ]
    );
}

#[test]
fn capture_read() {
    run("capture_read");
}

#[test]
fn capture_decode() {
    run("capture_decode");
}

#[test]
fn tcp_assembler() {
    run("tcp_assembler");
}

#[test]
fn tcp_flows() {
    run("tcp_flows");
}

#[test]
fn smtp_session() {
    run("smtp_session");
}

#[test]
fn maillog_parse() {
    run("maillog_parse");
}

#[test]
fn analyze() {
    run("analyze");
}

//! Every real feed in `tests/data/corpus` goes through the parse stage without a panic or a hang;
//! a file that is really broken may give an error, and the share of errors may not grow.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn corpus_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/corpus");
    let mut files = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "xml" || e == "json") {
                files.push(path);
            }
        }
    }
    assert!(
        files.len() > 500,
        "the corpus was not found at {} ({} files)",
        root.display(),
        files.len()
    );
    files.sort();
    files
}

#[test]
fn every_corpus_file_parses_without_panic_or_hang() {
    let mut rejected = Vec::new();
    let files = corpus_files();
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        let start = Instant::now();
        let result = std::panic::catch_unwind(|| {
            feedwatch::parse::parse(&bytes, None, Some("https://corpus.example/feed"))
        });
        let took = start.elapsed();
        assert!(
            took < Duration::from_secs(5),
            "{} took {took:?}",
            path.display()
        );
        match result {
            Err(_) => panic!("parser panicked on {}", path.display()),
            Ok(Err(e)) => rejected.push(format!("{}: {e}", path.display())),
            Ok(Ok(_)) => {}
        }
    }
    eprintln!(
        "{} of {} files rejected:\n{}",
        rejected.len(),
        files.len(),
        rejected.join("\n")
    );
    // Files in the corpus that are genuinely not feeds (truncated, HTML, empty) may be rejected,
    // but no more than this.
    assert!(
        rejected.len() <= MAX_REJECTED,
        "{} rejected",
        rejected.len()
    );
}

const MAX_REJECTED: usize = 4;

//! Feed compatibility: `feedwatch preview --json` over the shared corpus must agree with Python's
//! feedparser (the reference reader) on at least the share of fields reached so far, with no
//! crash, no timeout and no id that changes between two runs of the same file.
//!
//! Needs python3 with `feedparser==6.0.14`. Outside CI the test is skipped with a message when
//! they are missing; in CI (`CI` set) their absence is a failure.

use std::path::Path;
use std::process::Command;

/// The agreement reached on the shared corpus; lower it only with a reason.
const MIN_AGREEMENT_PERCENT: f64 = 98.5;

fn oracle_available() -> bool {
    Command::new("python3")
        .args(["-c", "import feedparser"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The number after `label` on the harness line that starts with it.
fn figure_after(report: &str, label: &str) -> Option<f64> {
    let line = report.lines().find(|l| l.starts_with(label))?;
    line[label.len()..]
        .split_whitespace()
        .next()?
        .trim_end_matches('%')
        .parse()
        .ok()
}

#[test]
fn preview_agrees_with_feedparser_on_the_shared_corpus() {
    if !oracle_available() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must provide python3 with feedparser: pip install feedparser==6.0.14"
        );
        eprintln!(
            "skipped: python3 with feedparser is not installed (pip install feedparser==6.0.14)"
        );
        return;
    }
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared");
    let binary = env!("CARGO_BIN_EXE_feedwatch");
    let output = Command::new("python3")
        .arg(shared.join("tools/conformance.py"))
        .arg("--cmd")
        .arg(format!("'{binary}' preview {{file}} --json"))
        // Generous per file: a loaded CI machine runs a debug build; hangs still show.
        .args(["--timeout", "20"])
        .arg(shared.join("corpus"))
        .output()
        .expect("python3 runs");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the harness failed:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let agreement = figure_after(&report, "conformance:").expect("the harness prints its figure");
    let crashes = figure_after(&report, "crashes/timeouts:").expect("crash count");
    let unstable = report
        .lines()
        .find_map(|l| {
            l.strip_prefix("unstable ids (a second run of the same file gave other ids): ")
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok())
        .expect("unstable id count");
    eprintln!("{report}");
    assert_eq!(crashes, 0.0, "crashes or timeouts:\n{report}");
    assert_eq!(unstable, 0, "ids changed between runs:\n{report}");
    assert!(
        agreement >= MIN_AGREEMENT_PERCENT,
        "agreement with feedparser fell to {agreement}% (was {MIN_AGREEMENT_PERCENT}%):\n{report}"
    );
}

//! Feed compatibility: the parse stage reads the corpus in `tests/data/corpus` as Python's
//! feedparser (the reference reader) does, field by field, on at least the share of fields reached
//! so far; no file panics or takes long, and no id changes between two parses of the same file.
//! Two passes: the files read as bytes, and read as if fetched from a web address, against which
//! relative links and `xml:base` resolve.
//!
//! `tests/conformance/read_with_feedparser.py` prints what feedparser reads; the comparison is
//! here. Needs python3 with `feedparser==6.0.14`. Outside CI the test is skipped with a message
//! when they are missing; in CI (`CI` set) their absence is a failure.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde::Deserialize;
use unicode_normalization::UnicodeNormalization;

use feedwatch::dedup::identify;
use feedwatch::parse::{ParsedFeed, parse};

/// The share of fields that agree on the corpus; lower it only with a reason.
const MIN_AGREEMENT_PERCENT: f64 = 99.6;

/// The same with every file read as if fetched from this address plus its name, which relative
/// links and `xml:base` then resolve against.
const FETCHED_FROM: &str = "http://corpus.example/feeds/";
const MIN_AGREEMENT_PERCENT_FETCHED: f64 = 99.5;

/// A parse slower than this, even in a debug build on a loaded machine, is a hang in the making.
const SLOW: Duration = Duration::from_secs(5);

const FIELDS: [&str; 8] = [
    "entries",
    "feed.title",
    "feed.link",
    "title",
    "link",
    "id",
    "published",
    "summary",
];

#[derive(Deserialize)]
struct Oracle {
    feedparser: String,
    files: Vec<OracleFile>,
}

#[derive(Deserialize)]
struct OracleFile {
    file: PathBuf,
    scored: bool,
    reason: String,
    feed: OracleFeed,
    entries: Vec<OracleEntry>,
}

#[derive(Deserialize)]
struct OracleFeed {
    title: String,
    link: String,
    link_optional: bool,
}

#[derive(Deserialize)]
struct OracleEntry {
    title: String,
    link: String,
    link_optional: bool,
    id: String,
    /// Minutes since the epoch.
    published: Option<i64>,
    summary: bool,
}

/// What the parse stage gives for one file, in the shape compared.
struct Read {
    title: String,
    link: String,
    entries: Vec<ReadEntry>,
}

struct ReadEntry {
    id: String,
    title: String,
    link: String,
    published: Option<i64>,
    summary: bool,
}

impl Read {
    fn new(feed: &ParsedFeed) -> Read {
        Read {
            title: feed.title.clone(),
            link: feed.link.clone().unwrap_or_default(),
            entries: feed
                .articles
                .iter()
                .map(|a| ReadEntry {
                    // As `preview --json` shows it: the feed's id, else the identity dedup keys on.
                    id: a.guid.clone().unwrap_or_else(|| identify(a).id),
                    title: a.title.clone(),
                    link: a.link.clone().unwrap_or_default(),
                    published: a.published.map(|t| t.timestamp().div_euclid(60)),
                    summary: !a.summary.trim().is_empty() || !a.content.trim().is_empty(),
                })
                .collect(),
        }
    }
}

fn corpus_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/corpus")
}

/// A corpus file's name as the report shows it: relative to the corpus folder.
fn shown(file: &Path) -> String {
    let root = corpus_root();
    file.strip_prefix(&root)
        .unwrap_or(file)
        .display()
        .to_string()
}

fn feed_files(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("corpus folder is readable") {
            let path = entry.expect("corpus entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "xml" || e == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn oracle_available() -> bool {
    Command::new("python3")
        .args(["-c", "import feedparser"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn read_with_feedparser(files: &[PathBuf], address: Option<&str>) -> Oracle {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/read_with_feedparser.py");
    let mut command = Command::new("python3");
    command.arg(script);
    if let Some(address) = address {
        command.args(["--base", address]);
    }
    let output = command.args(files).output().expect("python3 runs");
    assert!(
        output.status.success(),
        "the feedparser reader failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the feedparser reader prints its JSON")
}

/// Text as a reader compares it: NFC, whitespace collapsed.
fn normal_text(text: &str) -> String {
    text.nfc()
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn text_agrees(expected: &str, got: &str) -> bool {
    let (expected, got) = (normal_text(expected), normal_text(got));
    // Markup turned into text may keep or lose a space at a tag ("a<br/>b").
    expected == got || expected.replace(' ', "") == got.replace(' ', "")
}

/// A URL in the form two equal addresses share: lower-case scheme and host, no default port, "/"
/// for an empty path. A relative reference stays as it is.
fn normal_url(url: &str) -> String {
    let url = url.trim();
    match url::Url::parse(url) {
        Ok(parsed) => parsed.to_string(),
        Err(_) => url.to_string(),
    }
}

fn link_agrees(expected: &str, optional: bool, got: &str) -> bool {
    normal_url(expected) == normal_url(got) || (optional && got.trim().is_empty())
}

/// feedparser resolves a relative Atom id against `xml:base` (`t3_x` becomes `/t3_x`); the id
/// as written identifies the entry just as well.
fn id_agrees(expected: &str, got: &str) -> bool {
    if expected.is_empty() {
        // feedparser has no id: any non-empty id (the identity dedup keys on) will do.
        return !got.is_empty();
    }
    got == expected
        || (!got.is_empty()
            && expected
                .strip_suffix(got)
                .is_some_and(|head| head.ends_with('/')))
}

#[derive(Default)]
struct Tally {
    agree: BTreeMap<&'static str, (u32, u32)>,
    disagreements: Vec<String>,
}

impl Tally {
    fn mark(
        &mut self,
        file: &Path,
        field: &'static str,
        ok: bool,
        expected: &dyn std::fmt::Debug,
        got: &dyn std::fmt::Debug,
    ) {
        let count = self.agree.entry(field).or_default();
        count.1 += 1;
        if ok {
            count.0 += 1;
        } else {
            self.disagreements.push(format!(
                "{}: {field}: feedparser {expected:?}, feedwatch {got:?}",
                shown(file)
            ));
        }
    }

    fn totals(&self) -> (u32, u32) {
        self.agree
            .values()
            .fold((0, 0), |(a, n), (fa, fn_)| (a + fa, n + fn_))
    }
}

fn compare(file: &Path, expected: &OracleFile, got: &Read, tally: &mut Tally) {
    tally.mark(
        file,
        "entries",
        expected.entries.len() == got.entries.len(),
        &expected.entries.len(),
        &got.entries.len(),
    );
    tally.mark(
        file,
        "feed.title",
        text_agrees(&expected.feed.title, &got.title),
        &expected.feed.title,
        &got.title,
    );
    tally.mark(
        file,
        "feed.link",
        link_agrees(&expected.feed.link, expected.feed.link_optional, &got.link),
        &expected.feed.link,
        &got.link,
    );

    // An entry is paired by id, then by link, then by position.
    let mut by_id: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut by_link: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, e) in got.entries.iter().enumerate() {
        by_id.entry(e.id.as_str()).or_default().push(i);
        if !e.link.is_empty() {
            by_link.entry(normal_url(&e.link)).or_default().push(i);
        }
    }
    let mut used = HashSet::new();
    for (i, want) in expected.entries.iter().enumerate() {
        let free = |candidates: Option<&Vec<usize>>| {
            candidates.and_then(|c| c.iter().copied().find(|j| !used.contains(j)))
        };
        let paired = Some(want.id.as_str())
            .filter(|id| !id.is_empty())
            .and_then(|id| free(by_id.get(id)))
            .or_else(|| free(by_link.get(&normal_url(&want.link))))
            .or_else(|| (i < got.entries.len() && !used.contains(&i)).then_some(i));
        let Some(j) = paired else {
            for field in ["title", "link", "id", "published", "summary"] {
                tally.mark(file, field, false, &format!("entry {i}"), &"no such entry");
            }
            continue;
        };
        used.insert(j);
        let have = &got.entries[j];
        tally.mark(
            file,
            "title",
            text_agrees(&want.title, &have.title),
            &want.title,
            &have.title,
        );
        tally.mark(
            file,
            "link",
            link_agrees(&want.link, want.link_optional, &have.link),
            &want.link,
            &have.link,
        );
        tally.mark(
            file,
            "id",
            id_agrees(&want.id, &have.id),
            &want.id,
            &have.id,
        );
        tally.mark(
            file,
            "published",
            want.published == have.published,
            &want.published,
            &have.published,
        );
        tally.mark(
            file,
            "summary",
            want.summary == have.summary,
            &want.summary,
            &have.summary,
        );
    }
}

/// What one pass over the corpus found.
struct Pass {
    report: String,
    percent: f64,
    unstable: Vec<String>,
    slow: Vec<String>,
}

/// Reads every file with feedparser and with the parse stage, as fetched from `address` followed
/// by the file's name when given (so relative links resolve against it), and compares them.
fn measure(files: &[PathBuf], address: Option<&str>) -> Pass {
    let oracle = read_with_feedparser(files, address);
    assert_eq!(oracle.files.len(), files.len());

    let mut tally = Tally::default();
    let mut unstable = Vec::new();
    let mut slow = Vec::new();
    let mut not_scored = 0;
    for expected in &oracle.files {
        let file = &expected.file;
        let bytes = std::fs::read(file).expect("corpus file is readable");
        let url = address.map(|a| format!("{a}{}", shown(file)));
        let start = Instant::now();
        let first = parse(&bytes, None, url.as_deref());
        if start.elapsed() > SLOW {
            slow.push(format!("{}: {:?}", shown(file), start.elapsed()));
        }
        let first = first.as_ref().map(Read::new);
        if let Ok(first) = &first {
            let again = parse(&bytes, None, url.as_deref()).map(|f| Read::new(&f));
            let ids = |r: &Read| r.entries.iter().map(|e| e.id.clone()).collect::<Vec<_>>();
            if again.as_ref().map(ids).ok() != Some(ids(first)) {
                unstable.push(shown(file));
            }
        }
        if !expected.scored {
            not_scored += 1;
            continue;
        }
        match &first {
            Ok(read) => compare(file, expected, read, &mut tally),
            Err(error) => {
                let nothing = Read {
                    title: String::new(),
                    link: String::new(),
                    entries: Vec::new(),
                };
                compare(file, expected, &nothing, &mut tally);
                tally
                    .disagreements
                    .push(format!("{}: rejected: {error}", shown(file)));
            }
        }
    }

    let (agree, total) = tally.totals();
    let percent = 100.0 * f64::from(agree) / f64::from(total);
    let mut report = format!(
        "feedparser {}, {}: {agree} of {total} fields agree ({percent:.2}%) over {} files \
         ({not_scored} not scored: not a feed to feedparser either)\n",
        oracle.feedparser,
        address.map_or("files read as bytes".to_string(), |a| format!(
            "files as fetched from {a}"
        )),
        oracle.files.len() - not_scored
    );
    for field in FIELDS {
        let (a, n) = tally.agree.get(field).copied().unwrap_or_default();
        report += &format!("  {field:<11} {a:>5} of {n:>5}\n");
    }
    for line in &tally.disagreements {
        report += &format!("  {line}\n");
    }
    let unread: Vec<_> = oracle
        .files
        .iter()
        .filter(|f| !f.scored)
        .map(|f| format!("{}: {}", shown(&f.file), f.reason))
        .collect();
    report += &format!("  not scored:\n    {}\n", unread.join("\n    "));
    Pass {
        report,
        percent,
        unstable,
        slow,
    }
}

#[test]
fn parse_agrees_with_feedparser_on_the_corpus() {
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
    let files = feed_files(&corpus_root());
    assert!(
        files.len() > 600,
        "the corpus has {} feed files",
        files.len()
    );
    for (address, minimum) in [
        (None, MIN_AGREEMENT_PERCENT),
        (Some(FETCHED_FROM), MIN_AGREEMENT_PERCENT_FETCHED),
    ] {
        let pass = measure(&files, address);
        eprintln!("{}", pass.report);
        assert!(pass.slow.is_empty(), "slow parses: {:#?}", pass.slow);
        assert!(
            pass.unstable.is_empty(),
            "ids changed between two parses: {:#?}",
            pass.unstable
        );
        assert!(
            pass.percent >= minimum,
            "agreement with feedparser fell to {:.2}% (was {minimum}%):\n{}",
            pass.percent,
            pass.report
        );
    }
}

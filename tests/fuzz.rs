//! Mutation fuzzing of everything that reads outside input: the feed parser (corpus files cut,
//! spliced, re-encoded and salted with the tokens that break parsers), the query parser and the
//! config loader. No input may panic, overflow the stack or take long; an error is fine.
//!
//! Each target runs for a few seconds in `cargo test`. A longer run, with a seed of one's own:
//!
//! ```text
//! FEEDWATCH_FUZZ_SECONDS=600 FEEDWATCH_FUZZ_SEED=7 cargo test --release --test fuzz -- --nocapture
//! ```
//!
//! A failing input is written to the temporary folder and named in the failure, with its seed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use feedwatch::config::Config;
use feedwatch::dedup::identify;
use feedwatch::matcher::snippet::{Marks, article_snippet};
use feedwatch::matcher::{Engine, Query, RuleSpec};
use feedwatch::parse::{ParseError, parse};

/// The daemon parses feeds and configs on tokio's blocking threads, whose stacks are 2 MiB.
const STACK: usize = 2 << 20;

/// One input taking longer than this (in a debug build, on a shared machine) is a hang.
const SLOW: Duration = Duration::from_secs(10);

/// A small, fast, seedable generator (xorshift64*): the same seed gives the same inputs.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn seconds_per_target() -> Duration {
    let seconds = std::env::var("FEEDWATCH_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    Duration::from_secs_f64(seconds)
}

fn first_seed() -> u64 {
    std::env::var("FEEDWATCH_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

/// Runs `check` on inputs made from seeds `first_seed()`, `+1`, … until the time is up, each on
/// a daemon-sized stack. A panic or a slow input fails the test, naming the seed and the saved
/// input; returns how many inputs ran.
fn run_target(name: &str, make: impl Fn(&mut Rng) -> Vec<u8>, check: fn(&[u8])) -> u64 {
    let budget = seconds_per_target();
    let start = Instant::now();
    let mut seed = first_seed();
    let mut runs = 0;
    while start.elapsed() < budget {
        let input = make(&mut Rng::new(seed));
        let began = Instant::now();
        let shared = std::sync::Arc::new(input);
        let for_thread = std::sync::Arc::clone(&shared);
        let outcome = std::thread::Builder::new()
            .stack_size(STACK)
            .spawn(move || check(&for_thread))
            .expect("spawn a fuzz thread")
            .join();
        let took = began.elapsed();
        if outcome.is_err() || took > SLOW {
            let saved = save(name, seed, &shared);
            panic!(
                "{name}: seed {seed} {} (input saved to {})",
                if outcome.is_err() {
                    "panicked".to_string()
                } else {
                    format!("took {took:?}")
                },
                saved.display()
            );
        }
        seed += 1;
        runs += 1;
    }
    eprintln!(
        "{name}: {runs} inputs in {:?} from seed {}, no panic, no hang",
        start.elapsed(),
        first_seed()
    );
    runs
}

fn save(name: &str, seed: u64, input: &[u8]) -> PathBuf {
    let path = std::env::temp_dir().join(format!("feedwatch-fuzz-{name}-{seed}"));
    std::fs::write(&path, input).expect("save the failing input");
    path
}

fn corpus() -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/corpus");
    let mut files = Vec::new();
    let mut dirs = vec![root];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("corpus folder").flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "xml" || e == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
        .iter()
        .map(|f| std::fs::read(f).expect("corpus file"))
        .collect()
}

/// Pieces that make parsers take their rarely used paths.
const FEED_TOKENS: &[&str] = &[
    "<",
    ">",
    "</",
    "/>",
    "&",
    ";",
    "&amp;",
    "&#",
    "&#x",
    "&#146;",
    "&#0;",
    "&#xD800;",
    "&scaron;",
    "&nbsp",
    "<![CDATA[",
    "]]>",
    "<!--",
    "-->",
    "<?xml version=\"1.0\" encoding=\"utf-16\"?>",
    "<?xml version=\"1.0\" encoding=\"windows-1251\"?>",
    "<!DOCTYPE x [<!ENTITY e \"&e;&e;\">]>",
    "&e;",
    "<item>",
    "</item>",
    "<entry>",
    "</entry>",
    "<channel>",
    "<rss version=\"2.0\">",
    "<feed xmlns=\"http://www.w3.org/2005/Atom\">",
    "<title type=\"xhtml\">",
    "<title>",
    "</title>",
    "<description>",
    "<content type=\"html\">",
    " xml:base=\"\"",
    " xml:base=\"#f\"",
    " xml:base=\"http://x.org/a/\"",
    " xml:base=\"../\"",
    "<link href=\"\"/>",
    "<link>",
    "</link>",
    "<guid>",
    "<pubDate>",
    "Tue, 10 Jun 2003 04:00:00 AKST",
    "9999-99-99T99:99:99Z",
    "<dc:title>",
    "<media:title>",
    "<atom:published>",
    "mode=\"base64\"",
    "type=\"text\"",
    "\u{feff}",
    "\0",
    "\u{85}",
    "\u{2028}",
    "ß",
    "İ",
    "😀",
    "{",
    "}",
    "[",
    "]",
    "\"",
    ":",
    ",",
    "\"items\":[",
    "\"version\":\"1.1\"",
    "null",
    "1e999",
    "\\u0000",
    "\\ud800",
];

fn mutate_feed(rng: &mut Rng, corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut bytes = rng.pick(corpus).clone();
    for _ in 0..1 + rng.below(8) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(9) {
            0 => bytes.truncate(at),
            1 => {
                if let Some(b) = bytes.get_mut(at) {
                    *b ^= 1 << rng.below(8);
                }
            }
            2 | 3 => {
                let token = rng.pick(FEED_TOKENS).as_bytes().to_vec();
                bytes.splice(at..at, token);
            }
            4 => {
                // A slice of another corpus file spliced in.
                let other = rng.pick(corpus);
                let from = rng.below(other.len());
                let to = (from + rng.below(400)).min(other.len());
                bytes.splice(at..at, other[from..to].iter().copied());
            }
            5 => {
                // A stretch of this file repeated (duplicated items, elements, nesting).
                let end = (at + rng.below(200)).min(bytes.len());
                let piece = bytes[at..end].to_vec();
                for _ in 0..rng.below(50) {
                    bytes.splice(at..at, piece.iter().copied());
                }
            }
            6 => {
                let end = (at + rng.below(100)).min(bytes.len());
                bytes.drain(at..end);
            }
            7 => {
                // Deep nesting.
                let depth = rng.below(5000);
                let tag = *rng.pick(&["<x>", "<b>", "<item>", "<div>", "[", "{\"a\":"]);
                bytes.splice(at..at, tag.repeat(depth).into_bytes());
            }
            _ => {
                // The whole text in a wide encoding, with or without a mark.
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let big = rng.below(2) == 0;
                let mut wide: Vec<u8> = if rng.below(2) == 0 {
                    Vec::new()
                } else if big {
                    vec![0xFE, 0xFF]
                } else {
                    vec![0xFF, 0xFE]
                };
                wide.extend(text.encode_utf16().flat_map(|u| {
                    if big {
                        u.to_be_bytes()
                    } else {
                        u.to_le_bytes()
                    }
                }));
                bytes = wide;
            }
        }
    }
    bytes
}

fn check_feed(bytes: &[u8]) {
    let base = Some("https://fuzz.example/feeds/feed.xml");
    let parsed = parse(bytes, Some("text/xml; charset=utf-8"), base);
    let feed = match parsed {
        // The parser turns a panic in the XML or JSON layer into this error: still a bug.
        Err(ParseError::Panicked(reason)) => panic!("the parser panicked: {reason}"),
        Err(_) => return,
        Ok(feed) => feed,
    };
    let query = Query::parse("NATO OR \"the summit\" OR title:news* OR /[0-9]{4}/ OR NOT zzz")
        .expect("a valid query");
    let engine = Engine::new([RuleSpec {
        name: "fuzz",
        query: &query,
        feeds: &[],
    }]);
    let marks = Marks {
        open: "[",
        close: "]",
    };
    for article in &feed.articles {
        let _ = identify(article);
        for explained in engine.explain(article, "feed") {
            let _ = article_snippet(article, &explained.highlights, 80, marks);
        }
    }
}

/// Inputs fuzzing found that once broke the parser (two made quick-xml panic, one the date
/// reader, one feed-rs's author parser).
#[test]
fn inputs_fuzzing_found_stay_fixed() {
    let found = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz-found");
    let mut checked = 0;
    for entry in std::fs::read_dir(found)
        .expect("fuzz-found folder")
        .flatten()
    {
        let bytes = std::fs::read(entry.path()).expect("a found input");
        std::thread::Builder::new()
            .stack_size(STACK)
            .spawn(move || check_feed(&bytes))
            .expect("spawn")
            .join()
            .unwrap_or_else(|_| panic!("{} breaks the parser again", entry.path().display()));
        checked += 1;
    }
    assert!(checked >= 2);
}

#[test]
fn the_feed_parser_survives_mutated_corpus_files() {
    let corpus = corpus();
    assert!(corpus.len() > 600);
    let runs = run_target("feed", |rng| mutate_feed(rng, &corpus), check_feed);
    assert!(runs > 0);
}

const QUERY_TOKENS: &[&str] = &[
    "(",
    ")",
    "NOT ",
    "AND ",
    "OR ",
    "and ",
    "\"",
    "\"the summit\"",
    "/",
    "/[a-",
    "/(a|b)*/",
    "\\/",
    "title:",
    "summary:",
    "bogus:",
    "link:",
    "*",
    "nato",
    "NATO",
    "Ukrain*",
    "ß",
    "İ",
    "ﬁ",
    "Ǆ",
    "東京",
    "😀",
    " ",
    "\t",
    "\n",
    "\0",
    ":",
    "::",
    "\\",
    "a*b",
    "-",
    "'",
    "\u{301}",
];

fn make_query(rng: &mut Rng) -> Vec<u8> {
    let mut query = String::new();
    for _ in 0..rng.below(40) {
        let token: &&str = rng.pick(QUERY_TOKENS);
        query.push_str(token);
    }
    if rng.below(20) == 0 {
        // Nesting near and past the limit.
        let depth = 90 + rng.below(30);
        query = format!("{}{query}{}", "(".repeat(depth), ")".repeat(depth));
    }
    query.into_bytes()
}

fn check_query(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let Ok(query) = Query::parse(&text) else {
        return;
    };
    let engine = Engine::new([RuleSpec {
        name: "fuzz",
        query: &query,
        feeds: &[],
    }]);
    let article = feedwatch::parse::Article {
        title: "NATO summit: the summit of Ukraine's allies in 2024".into(),
        summary: "Straße İstanbul ﬁnance Ǆ 東京 😀 a/b".into(),
        link: Some("https://news.example/nato".into()),
        ..Default::default()
    };
    let _ = engine.explain(&article, "feed");
    let _ = feedwatch::store::fts_query(&query);
}

#[test]
fn the_query_parser_survives_random_queries() {
    let runs = run_target("query", make_query, check_query);
    assert!(runs > 0);
}

const CONFIG: &str = include_str!("../config.toml");

const CONFIG_TOKENS: &[&str] = &[
    "[",
    "]",
    "[[",
    "]]",
    "{",
    "}",
    "=",
    "\"",
    "'",
    "'''",
    "\"\"\"",
    "\n",
    "#",
    ",",
    ".",
    "a.b.c",
    "[[feed]]\n",
    "[[rule]]\n",
    "[[notifier]]\n",
    "[defaults]\n",
    "url = ",
    "query = ",
    "name = ",
    "interval = ",
    "cron = ",
    "\"0 9 * * *\"",
    "\"*/0 * * * *\"",
    "\"61m\"",
    "\"0s\"",
    "\"-1\"",
    "1e400",
    "9999999999999999999999",
    "-0",
    "nan",
    "inf",
    "true",
    "1979-05-27T07:32:00Z",
    "\"file:///etc/passwd\"",
    "\"https://x.example/\"",
    "\"((((NATO\"",
    "\"NOT NOT\"",
    "\\u0000",
    "\\uD800",
    "kind = \"webhook\"",
    "kind = \"desktop\"",
    "notify = [\"x\"]",
    "feeds = [\"y\"]",
    "tags = []",
    "accents = \"strict\"",
    "timezone = \"Mars/Olympus\"",
    "\u{feff}",
    "\0",
    "ß",
];

fn mutate_config(rng: &mut Rng) -> Vec<u8> {
    let mut text = CONFIG.as_bytes().to_vec();
    for _ in 0..1 + rng.below(10) {
        let at = rng.below(text.len() + 1);
        match rng.below(5) {
            0 => text.truncate(at),
            1 => {
                let end = (at + rng.below(60)).min(text.len());
                text.drain(at..end);
            }
            2 if rng.below(10) == 0 => {
                let depth = rng.below(3000);
                let open = *rng.pick(&["[", "{a="]);
                text.splice(at..at, open.repeat(depth).into_bytes());
            }
            _ => {
                let token = rng.pick(CONFIG_TOKENS).as_bytes().to_vec();
                text.splice(at..at, token);
            }
        }
    }
    text
}

fn check_config(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    if let Ok(config) = Config::parse(&text, Path::new("/fuzz/config.toml")) {
        let _ = feedwatch::pipeline::engine_for(&config);
    }
}

#[test]
fn the_config_loader_survives_mutated_configs() {
    let runs = run_target("config", mutate_config, check_config);
    assert!(runs > 0);
}

//! How fast `feedwatch search` is over a large archive.
//!
//! Builds a database of 1,000,000 generated articles (about a minute; set
//! `FEEDWATCH_BENCH_DB=/some/file.db` to keep it and reuse it on the next run), then times
//! typical queries through `SearchIndex::search`, the code behind the command. The index is
//! built and merged as the daemon does it; `FEEDWATCH_BENCH_UNMERGED=1` leaves it unmerged, as
//! right after a cold start.
//!
//!     cargo bench --bench search

use std::time::{Duration, Instant};

mod common;

use chrono::Utc;
use common::Seeded;
use feedwatch::matcher::Query;
use feedwatch::store::{SearchFilter, SearchIndex, Store};
use rusqlite::params;

const ARTICLES: usize = 1_000_000;
const FEEDS: usize = 200;
const RUNS: usize = 30;

fn main() {
    let kept = std::env::var_os("FEEDWATCH_BENCH_DB").map(std::path::PathBuf::from);
    let temp = tempfile::tempdir().expect("temporary folder");
    let path = kept.unwrap_or_else(|| temp.path().join("bench.db"));
    let store = Store::open(&path).expect("open database");
    let stored: i64 = rusqlite::Connection::open(&path)
        .and_then(|c| c.query_row("SELECT count(*) FROM articles", [], |r| r.get(0)))
        .expect("count articles");
    if stored < ARTICLES as i64 {
        let started = Instant::now();
        build(&path, store);
        println!(
            "built {ARTICLES} articles in {:.0} s",
            started.elapsed().as_secs_f64()
        );
    }
    drop(Store::open(&path).expect("reopen database"));
    let mut index = SearchIndex::open(&path).expect("open search index");
    let started = Instant::now();
    let indexed = index.complete().expect("index articles");
    if std::env::var_os("FEEDWATCH_BENCH_UNMERGED").is_none() {
        while index.merge(500).expect("merge index") {}
    }
    if indexed > 0 {
        println!(
            "indexed {indexed} articles in {:.0} s",
            started.elapsed().as_secs_f64()
        );
    }
    println!(
        "{:<36} {:>8} {:>10} {:>10}",
        "query", "hits", "median", "p95"
    );
    for (query, feed) in [
        ("grain deal", None),
        ("harbour strike", None),
        ("\"grain deal\"", None),
        ("grain OR strike", None),
        ("grain deal NOT harbour", None),
        ("sanction*", None),
        ("grain deal", Some("feed-7")),
    ] {
        let parsed = Query::parse(query).expect("benchmark query parses");
        let filter = SearchFilter {
            since: None,
            feed: feed.map(str::to_string),
            limit: 20,
            highlight: ("[".into(), "]".into()),
        };
        let mut times: Vec<Duration> = Vec::with_capacity(RUNS);
        let mut hits = 0;
        for _ in 0..RUNS {
            let started = Instant::now();
            hits = index.search(&parsed, &filter).expect("search").len();
            times.push(started.elapsed());
        }
        times.sort();
        let label = match feed {
            Some(f) => format!("{query} --feed {f}"),
            None => query.to_string(),
        };
        println!(
            "{label:<36} {hits:>8} {:>8.1}ms {:>8.1}ms",
            ms(times[RUNS / 2]),
            ms(times[RUNS * 95 / 100])
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Inserts the articles straight into SQLite, then indexes them in batches and merges the
/// index's segments, as the daemon does once polling goes quiet (`FEEDWATCH_BENCH_UNMERGED=1`
/// skips the merging, for searches on an index fresh from a cold start).
fn build(path: &std::path::Path, mut store: Store) {
    let names: Vec<(String, String)> = (0..FEEDS)
        .map(|i| {
            (
                format!("https://feeds.example/{i}.xml"),
                format!("feed-{i}"),
            )
        })
        .collect();
    let ids = store
        .sync_feeds(names.iter().map(|(u, n)| (u.as_str(), n.as_str())))
        .expect("create feeds");
    drop(store);
    let feed_ids: Vec<i64> = names.iter().map(|(u, _)| ids[u.as_str()]).collect();
    let words = vocabulary();
    let mut rng = Seeded(0x9e37_79b9_7f4a_7c15);
    let mut conn = rusqlite::Connection::open(path).expect("open for bulk insert");
    conn.execute_batch("PRAGMA synchronous = OFF;")
        .expect("pragma");
    let now = Utc::now().timestamp();
    let tx = conn.transaction().expect("transaction");
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO articles (feed_id, identity, title, link, published, summary,
                                       content, first_seen_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, '', ?7)",
            )
            .expect("prepare insert");
        for i in 0..ARTICLES {
            let title = sentence(&mut rng, &words, 8);
            let summary = sentence(&mut rng, &words, 45);
            let when = now - (i as i64 % (365 * 86_400));
            insert
                .execute(params![
                    feed_ids[i % FEEDS],
                    format!("id:{i}"),
                    title,
                    format!("https://news.example/{i}"),
                    when,
                    summary,
                    when
                ])
                .expect("insert article");
        }
    }
    tx.commit().expect("commit");
}

/// 20,000 made-up words; the searched words are placed among the common ones (rank 50-300),
/// so each turns up in roughly 1-4% of articles, like a news topic in a busy week.
fn vocabulary() -> Vec<String> {
    let mut rng = Seeded(42);
    let mut words: Vec<String> = (0..20_000)
        .map(|_| {
            let len = 3 + rng.below(7);
            (0..len)
                .map(|_| char::from(b'a' + rng.below(26) as u8))
                .collect()
        })
        .collect();
    for (rank, word) in [
        (60, "grain"),
        (90, "deal"),
        (120, "harbour"),
        (200, "strike"),
        (300, "sanctions"),
    ] {
        words[rank] = word.to_string();
    }
    words
}

/// Word ranks drawn with a heavy head, roughly like word frequencies in text.
fn sentence(rng: &mut Seeded, words: &[String], len: usize) -> String {
    let mut out = String::new();
    for i in 0..len {
        let u = rng.unit();
        let rank = ((words.len() as f64) * u * u * u) as usize;
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&words[rank.min(words.len() - 1)]);
    }
    out
}

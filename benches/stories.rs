//! Stories on their own: sketching new articles and placing them in a fresh window, as a cold
//! poll does with those that raise an alert, without fetching, parsing or storing (see the poll benchmark's `--stories-off`
//! for their share of a whole poll).
//!
//! The articles are the poll benchmark's (a title of 8 everyday words and a summary of 45,
//! now and then a topic term), with one in ten a copy of an earlier one with a word changed,
//! so that some join a story. Each stage runs five times on the same articles; the fastest is
//! printed, the others being the same work slowed by whatever else ran.
//!
//! Run: `cargo bench --bench stories` (or `cargo bench --bench stories -- 100000`).

use std::hint::black_box;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use feedwatch::story::{self, Sketch, StoryParams, Window};

mod common;

use common::news::Lcg;

/// As many articles as the poll benchmark's 1,000 feeds give.
const ARTICLES: usize = 59_350;
const RUNS: usize = 5;

fn main() {
    let count = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(ARTICLES);
    let articles = articles(count);

    let mut sketches = Vec::new();
    let sketching = fastest(|| {
        sketches = articles
            .iter()
            .map(|(title, summary)| story::sketch(title, summary))
            .collect::<Vec<Option<Sketch>>>();
    });

    let start: DateTime<Utc> = "2026-12-06T00:00:00Z".parse().expect("a time");
    let mut joined = 0;
    let placing = fastest(|| {
        let mut window = Window::new(StoryParams::default());
        joined = 0;
        for (i, sketch) in sketches.iter().enumerate() {
            let at = start + chrono::Duration::milliseconds(i as i64);
            let placed = window.place(i as i64, sketch.clone(), at);
            joined += usize::from(placed.joined.is_some());
        }
        black_box(&window);
    });

    let per_article = |d: Duration| d.as_secs_f64() * 1e6 / count as f64;
    println!("{count} articles, {joined} joined a story; fastest of {RUNS} runs:");
    println!(
        "  sketch: {:.0} ms ({:.2} µs an article)",
        sketching.as_secs_f64() * 1e3,
        per_article(sketching)
    );
    println!(
        "  place in a fresh window: {:.0} ms ({:.2} µs an article)",
        placing.as_secs_f64() * 1e3,
        per_article(placing)
    );
}

/// Titles and summaries; one in ten repeats an earlier article with one word changed.
fn articles(count: usize) -> Vec<(String, String)> {
    let mut rng = Lcg(7);
    let mut articles: Vec<(String, String)> = Vec::with_capacity(count);
    for i in 0..count {
        if i > 0 && rng.below(10) == 0 {
            let (title, summary) = articles[rng.below(i)].clone();
            let summary = summary.replacen(' ', " also ", 1);
            articles.push((title, summary));
        } else {
            articles.push((rng.words(8, 30), rng.words(45, 20)));
        }
    }
    articles
}

fn fastest(mut run: impl FnMut()) -> Duration {
    (0..RUNS)
        .map(|_| {
            let began = Instant::now();
            run();
            began.elapsed()
        })
        .min()
        .expect("at least one run")
}

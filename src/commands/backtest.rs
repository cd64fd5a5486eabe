//! `feedwatch backtest`: run one rule (or a query) over the stored archive and show how often it
//! would have fired, per day and per feed, with a sample of the articles. Writes nothing.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use chrono::Utc;

use feedwatch::config::Config;
use feedwatch::matcher::snippet::article_snippet;
use feedwatch::matcher::{Engine, Query, RuleSpec};
use feedwatch::store::Store;
use feedwatch::story::{self, Window};

/// What to run over the archive.
pub enum Subject {
    Rule(String),
    Query(String),
}

pub fn backtest(path: &Path, subject: Subject, since: Duration, sample: usize) -> Result<ExitCode> {
    let config = Config::load(path)?;
    let (label, query, feeds, per_story) = match &subject {
        Subject::Rule(name) => {
            let Some(rule) = config.rule(name) else {
                let known: Vec<&str> = config.rules.iter().map(|r| r.name.as_str()).collect();
                bail!(
                    "{}: no rule named `{name}` (rules: {})",
                    path.display(),
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                );
            };
            (
                format!("rule `{name}`"),
                rule.query.clone(),
                rule.feeds.clone(),
                rule.per_story,
            )
        }
        Subject::Query(text) => (
            format!("query `{text}`"),
            Query::parse(text).map_err(|e| anyhow::anyhow!("--query: {}", e.render(text)))?,
            Vec::new(),
            true,
        ),
    };
    let engine = Engine::new([RuleSpec {
        name: &label,
        query: &query,
        feeds: &feeds,
    }]);
    // The daemon places an article in a story when any rule matches it.
    let rules = feedwatch::pipeline::engine_for(&config);
    let since_at =
        Utc::now() - chrono::Duration::from_std(since).context("--since is too far back")?;
    let store = Store::open_existing(&config.database)?;
    let archive = store.articles_since(since_at)?;
    let since_day = since_at.format("%Y-%m-%d");
    if archive.is_empty() {
        println!(
            "no stored articles since {since_day} in {}; `feedwatch run` stores them",
            config.database.display()
        );
        return Ok(ExitCode::SUCCESS);
    }

    let mut per_day: BTreeMap<String, usize> = BTreeMap::new();
    let mut per_feed: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut fired = Vec::new();
    // Articles are placed in stories in order of time, as they would have been stored: those
    // that this rule or any configured rule matches, since only an article that raises an
    // alert is placed. The rule alerts for the first article of each story it matches.
    let mut stories = Window::new(config.story);
    let mut alerted_stories = std::collections::HashSet::new();
    for (index, stored) in archive.iter().enumerate() {
        let seen = per_feed.entry(&stored.feed).or_default();
        seen.1 += 1;
        let explained = engine.explain(&stored.article, &stored.feed).pop();
        let placed = (explained.is_some()
            || !rules.matches(&stored.article, &stored.feed).is_empty())
        .then(|| {
            let sketch = story::sketch_article(&stored.article);
            stories.place(index, sketch, stored.date())
        });
        if let (Some(explained), Some(placed)) = (explained, placed) {
            seen.0 += 1;
            *per_day
                .entry(stored.date().format("%Y-%m-%d").to_string())
                .or_default() += 1;
            let alerts = alerted_stories.insert(placed.story) || !per_story;
            fired.push((stored, explained, placed, alerts));
        }
    }

    let days = (since.as_secs() / 86_400).max(1);
    println!(
        "{label} would have fired {} {} on {} stored articles since {since_day} ({:.1}%, {:.1} a day)",
        fired.len(),
        if fired.len() == 1 { "time" } else { "times" },
        archive.len(),
        100.0 * fired.len() as f64 / archive.len() as f64,
        fired.len() as f64 / days as f64
    );
    if fired.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let alerts = fired.iter().filter(|f| f.3).count();
    println!(
        "alerts: {alerts}{}; the other {} matches were more sources of a story already alerted",
        if per_story {
            ", once per story"
        } else {
            " (per_story = false: one per article)"
        },
        fired.len() - alerts
    );
    println!("\nper day:");
    let busiest = per_day.values().copied().max().unwrap_or(1);
    for (day, count) in &per_day {
        let bar = "#".repeat((count * 40).div_ceil(busiest));
        println!("  {day}  {count:>5}  {bar}");
    }
    println!("\nper feed:");
    for (feed, (hits, total)) in &per_feed {
        println!("  {feed:<24} {hits:>5} of {total}");
    }
    println!(
        "\nsample (newest {} of {}):",
        sample.min(fired.len()),
        fired.len()
    );
    let marks = super::marks();
    for (stored, explained, placed, _) in fired.iter().rev().take(sample) {
        println!(
            "  {}  {}  {}",
            stored.date().format("%Y-%m-%d %H:%M"),
            stored.feed,
            if stored.article.title.is_empty() {
                "(untitled)"
            } else {
                &stored.article.title
            }
        );
        println!("      matched: {}", explained.terms.join(", "));
        if let Some(joined) = placed.joined {
            let first = &archive[placed.story];
            let like = &archive[joined.article];
            println!(
                "      same story as \"{}\" ({}; similarity {:.2} to \"{}\" in {})",
                first.article.title, first.feed, joined.similarity, like.article.title, like.feed
            );
        }
        if let Some(snippet) = article_snippet(
            &stored.article,
            &explained.highlights,
            super::SNIPPET_CHARS,
            marks,
        ) {
            println!("      {snippet}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

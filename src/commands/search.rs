//! `feedwatch search`: full-text search over every stored article, best match first.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde_json::json;

use super::output::{UsageError, fit, print_json, rfc3339, width};
use feedwatch::config::Config;
use feedwatch::matcher::Query;
use feedwatch::service::running_instance;
use feedwatch::store::{INDEX_BATCH, SearchFilter, SearchIndex, Store, StoreError};

pub struct SearchArgs {
    pub query: String,
    pub since: Option<DateTime<Utc>>,
    pub feed: Option<String>,
    pub limit: usize,
    pub json: bool,
}

pub fn search(path: &Path, args: SearchArgs) -> Result<ExitCode> {
    let config = Config::load(path)?;
    let query = Query::parse(&args.query)
        .map_err(|e| UsageError(format!("search query: {}", e.render(&args.query))))?;
    // Bold hits on a terminal; brackets where escape codes would be noise.
    let highlight = if !args.json && std::io::stdout().is_terminal() {
        ("\x1b[1m".to_string(), "\x1b[0m".to_string())
    } else {
        ("[".to_string(), "]".to_string())
    };
    // Brings the database's schema up to date before the index reads it.
    drop(Store::open_existing(&config.database)?);
    let mut index = open_index(&config.database)?;
    match bring_up_to_date(&mut index, &config.database) {
        Ok(0) => {}
        Ok(waiting) => eprintln!(
            "note: {waiting} recently stored articles are not in the search index yet and were \
             not searched; they will be once the running feedwatch has indexed them or has ended"
        ),
        Err(e) => eprintln!(
            "note: the newest articles could not be indexed ({e}); searching what is indexed"
        ),
    }
    let hits = match index.search(
        &query,
        &SearchFilter {
            since: args.since,
            feed: args.feed,
            limit: args.limit,
            highlight,
        },
    ) {
        Err(StoreError::SearchQuery(e)) => return Err(UsageError(format!("search: {e}")).into()),
        other => other?,
    };
    if args.json {
        let out: Vec<_> = hits
            .iter()
            .map(|h| {
                json!({
                    "feed": h.feed,
                    "title": h.title,
                    "link": h.link,
                    "published": h.published.map(rfc3339),
                    "first_seen_at": rfc3339(h.first_seen_at),
                    "snippet": h.snippet,
                    "score": h.score,
                })
            })
            .collect();
        print_json(&json!(out))?;
        return Ok(ExitCode::SUCCESS);
    }
    if hits.is_empty() {
        println!("nothing stored matches `{}`", args.query);
    }
    let width = width();
    for hit in &hits {
        let date = hit.published.unwrap_or(hit.first_seen_at);
        let head = format!("{}  {}  ", date.format("%Y-%m-%d"), hit.feed);
        let title = fit(&hit.title, width.saturating_sub(head.chars().count()));
        println!("{head}{title}");
        if let Some(link) = &hit.link {
            println!("    {}", fit(link, width - 4));
        }
        // Escape codes are zero-width, so the snippet is not cut: it is short already.
        println!(
            "    {}\n",
            hit.snippet.split_whitespace().collect::<Vec<_>>().join(" ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The search index; a damaged one is built again, unless a feedwatch running on the database
/// has it open: that one builds it again when it starts.
fn open_index(database: &Path) -> Result<SearchIndex> {
    let Some(pid) = running_instance(database) else {
        return Ok(SearchIndex::open_alone(database)?);
    };
    SearchIndex::open(database).map_err(|e| {
        if !e.is_damaged_index() {
            return e.into();
        }
        let who = pid.map_or_else(
            || "the feedwatch".to_string(),
            |pid| format!("feedwatch (pid {pid})"),
        );
        anyhow::anyhow!(
            "{e}\n{who} running on this database has the index open; restart it and it builds \
             the index again (or stop it, and the next search does)"
        )
    })
}

/// Indexes what the search index lacks, and returns how many stored articles it still lacks.
/// While feedwatch runs on this database, the backlog is left to it (a daemon's indexer works
/// through it; a `run --once` leaves it to the next search): a search takes only what fits in
/// one batch. Otherwise the search indexes everything itself: what `run --once` stored, or the
/// whole archive after an upgrade that rebuilt the index.
fn bring_up_to_date(index: &mut SearchIndex, database: &Path) -> Result<usize, StoreError> {
    if running_instance(database).is_some() {
        return index.catch_up();
    }
    let waiting = index.unindexed()?;
    if waiting > INDEX_BATCH {
        eprintln!("indexing {waiting} new articles for search…");
    }
    index.complete()?;
    index.unindexed()
}

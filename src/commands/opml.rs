//! `feedwatch import-opml` and `export-opml`: subscriptions in and out of `config.toml`.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};

use serde_json::json;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::feed::{load_doc, save};
use super::output::{UsageError, print_json};
use super::probe::{Probe, existing, is_remote, probe, unique_name};
use feedwatch::config::edit::NewFeed;
use feedwatch::config::{Config, feed_url};
use feedwatch::fetch::Fetcher;
use feedwatch::opml::{self, OpmlFeed};

/// Feeds checked at once: enough to hide latency, few enough to be polite to one host.
const CONCURRENT_CHECKS: usize = 8;

pub struct ImportArgs {
    /// Add feeds that could not be fetched as well.
    pub keep_unreachable: bool,
    /// Take outlines that are not http(s): local files and paths.
    pub allow_local: bool,
    pub as_json: bool,
}

pub async fn import(path: &Path, file: &Path, args: ImportArgs) -> Result<ExitCode> {
    let ImportArgs {
        keep_unreachable,
        allow_local,
        as_json,
    } = args;
    let config = Config::load(path)?;
    let text = std::fs::read_to_string(file)
        .map_err(|e| UsageError(format!("cannot read OPML file {}: {e}", file.display())))?;
    let listed =
        opml::read(&text, &file.display().to_string()).map_err(|e| UsageError(e.to_string()))?;

    let mut skipped = Vec::new();
    let mut to_check: Vec<(String, OpmlFeed)> = Vec::new();
    for outline in listed {
        // A subscription list comes from the internet: it may not point feedwatch at local files.
        if !allow_local && !is_remote(&outline.feed.url) {
            skipped.push((
                outline.feed.url.clone(),
                format!(
                    "{outline} is not an http(s) address; local files and paths are read only \
                     with --allow-local"
                ),
            ));
            continue;
        }
        let feed = outline.feed;
        // A path in the list is relative to the list's own folder.
        let url = match feed_url(&feed.url, file.parent().unwrap_or(Path::new(""))) {
            Ok(url) => url,
            Err(e) => {
                skipped.push((feed.url.clone(), format!("not a usable address: {e}")));
                continue;
            }
        };
        if let Some(present) = existing(&config, &url) {
            skipped.push((url, format!("already in the config as `{}`", present.name)));
        } else if to_check.iter().any(|(u, _)| *u == url) {
            skipped.push((url, "listed twice in the OPML file".into()));
        } else {
            to_check.push((url, feed));
        }
    }

    let checked = check_all(to_check).await;
    let mut taken: Vec<String> = config.feeds.iter().map(|f| f.name.clone()).collect();
    let mut added = Vec::new();
    let mut unreachable = Vec::new();
    for (url, feed, outcome) in checked {
        let title = match outcome {
            Ok(title) => title,
            Err(e) => {
                unreachable.push((url.clone(), e.clone()));
                if !keep_unreachable {
                    continue;
                }
                String::new()
            }
        };
        let title = if feed.title.is_empty() {
            title
        } else {
            feed.title
        };
        let name = unique_name(&title, &url, &taken);
        taken.push(name.clone());
        added.push(NewFeed {
            url,
            name,
            interval: None,
            tags: feed.tags,
        });
    }
    if !added.is_empty() {
        let mut doc = load_doc(path)?;
        doc.add_feeds(&added)?;
        save(path, &doc)?;
    }

    if as_json {
        let pairs = |list: &[(String, String)]| {
            list.iter()
                .map(|(url, why)| json!({"url": url, "reason": why}))
                .collect::<Vec<_>>()
        };
        print_json(&json!({
            "added": added.iter().map(|f| json!({"name": f.name, "url": f.url, "tags": f.tags})).collect::<Vec<_>>(),
            "skipped": pairs(&skipped),
            "unreachable": pairs(&unreachable),
        }))?;
    } else {
        for f in &added {
            println!("added        {}  {}", f.name, f.url);
        }
        for (url, why) in &skipped {
            println!("skipped      {url}: {why}");
        }
        for (url, why) in &unreachable {
            let note = if keep_unreachable {
                " (added anyway)"
            } else {
                ""
            };
            println!("unreachable  {url}: {why}{note}");
        }
        println!(
            "{} added, {} skipped, {} unreachable{}",
            added.len(),
            skipped.len(),
            unreachable.len(),
            if unreachable.is_empty() || keep_unreachable {
                ""
            } else {
                " (not added; --keep-unreachable adds them anyway)"
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Checks every feed once, several at a time, with a progress bar when stderr is a terminal.
/// Gives each feed's title, or why it could not be read.
async fn check_all(
    feeds: Vec<(String, OpmlFeed)>,
) -> Vec<(String, OpmlFeed, Result<String, String>)> {
    let bar = super::output::progress_bar(feeds.len(), "{bar:30} {pos}/{len} checking {msg}");
    let fetcher = Arc::new(Fetcher::new(std::time::Duration::from_secs(20)));
    let permits = Arc::new(Semaphore::new(CONCURRENT_CHECKS));
    let mut tasks = JoinSet::new();
    for (index, (url, feed)) in feeds.into_iter().enumerate() {
        let fetcher = Arc::clone(&fetcher);
        let permits = Arc::clone(&permits);
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let outcome = match probe(&fetcher, &url, false).await {
                Ok(Probe::Feed(summary)) => Ok(summary.title),
                Ok(Probe::Page(links)) => Err(format!(
                    "a web page, not a feed (it links to {})",
                    links
                        .iter()
                        .map(|l| l.url.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
                Err(e) => Err(format!("{e:#}")),
            };
            (index, url, feed, outcome)
        });
    }
    let mut done = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let Ok((index, url, feed, outcome)) = joined else {
            continue;
        };
        if bar.is_hidden() {
            eprintln!(
                "checked {url}: {}",
                outcome.as_ref().map_or_else(|e| e.clone(), |_| "ok".into())
            );
        } else {
            bar.set_message(url.clone());
            bar.inc(1);
        }
        done.push((index, url, feed, outcome));
    }
    bar.finish_and_clear();
    // Back to the file's order, so the config reads like the OPML did.
    done.sort_by_key(|(index, ..)| *index);
    done.into_iter().map(|(_, u, f, o)| (u, f, o)).collect()
}

pub fn export(path: &Path, file: Option<&Path>) -> Result<ExitCode> {
    let config = Config::load(path)?;
    let feeds: Vec<OpmlFeed> = config
        .feeds
        .iter()
        .map(|f| OpmlFeed {
            url: f.url.clone(),
            title: f.name.clone(),
            tags: f.tags.clone(),
        })
        .collect();
    let text = opml::write("feedwatch subscriptions", &feeds);
    match file {
        Some(file) => {
            std::fs::write(file, text)
                .with_context(|| format!("cannot write {}", file.display()))?;
            eprintln!("wrote {} feed(s) to {}", feeds.len(), file.display());
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

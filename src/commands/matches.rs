//! `feedwatch matches`: stored matches, newest first, as a table, JSON or CSV.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use serde_json::json;

use super::output::{fit, print_json, rfc3339, width};
use feedwatch::config::Config;
use feedwatch::store::{MatchFilter, Store, StoredMatch};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
}

pub fn matches(path: &Path, filter: MatchFilter, format: Format) -> Result<ExitCode> {
    let config = Config::load(path)?;
    let store = Store::open_existing(&config.database)?;
    let found = store.matches_where(&filter)?;
    match format {
        Format::Json => print_json(&json!(found.iter().map(as_json).collect::<Vec<_>>()))?,
        Format::Csv => write_csv(&found)?,
        Format::Table => print_table(&found),
    }
    Ok(ExitCode::SUCCESS)
}

fn as_json(m: &StoredMatch) -> serde_json::Value {
    json!({
        "rule": m.alert.rule,
        "matched": m.alert.matched,
        "feed": m.alert.feed,
        "article": m.alert.article,
        "story": m.alert.story,
        "created_at": rfc3339(m.created_at),
    })
}

/// One row per match, terms joined by `; `, for spreadsheets.
fn write_csv(found: &[StoredMatch]) -> Result<()> {
    let mut out = csv::Writer::from_writer(std::io::stdout().lock());
    out.write_record([
        "created_at",
        "rule",
        "matched",
        "feed",
        "title",
        "link",
        "published",
    ])?;
    for m in found {
        let a = &m.alert.article;
        out.write_record([
            rfc3339(m.created_at),
            m.alert.rule.clone(),
            m.alert.matched.join("; "),
            m.alert.feed.name.clone(),
            a.title.clone(),
            a.link.clone().unwrap_or_default(),
            a.published.map(rfc3339).unwrap_or_default(),
        ])?;
    }
    out.flush()?;
    Ok(())
}

fn print_table(found: &[StoredMatch]) {
    if found.is_empty() {
        println!("no matches yet");
        return;
    }
    let width = width();
    for m in found {
        let date = m.created_at.format("%Y-%m-%d %H:%M").to_string();
        let line = feedwatch::notify::stdout::render(&m.alert);
        println!(
            "{date}  {}",
            fit(&line, width.saturating_sub(date.len() + 2))
        );
        // The story's other sources, under its one line.
        let sources = m.alert.story.iter().flat_map(|s| s.sources.iter().skip(1));
        for source in sources {
            let mut also = format!("also: {} ({})", source.title, source.feed);
            if let Some(link) = &source.link {
                also.push_str(&format!(" — {link}"));
            }
            let indent = " ".repeat(date.len() + 2);
            println!("{indent}{}", fit(&also, width.saturating_sub(indent.len())));
        }
    }
}

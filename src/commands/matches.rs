//! `feedwatch matches`: stored matches, newest first.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use serde_json::json;

use feedwatch::config::Config;
use feedwatch::store::Store;

pub fn matches(path: &Path, as_json: bool, limit: usize) -> Result<ExitCode> {
    let config = Config::load(path)?;
    let store = Store::open(&config.database)?;
    let found = store.matches(limit)?;
    if as_json {
        let out: Vec<_> = found
            .iter()
            .map(|m| {
                json!({
                    "rule": m.alert.rule,
                    "matched": m.alert.matched,
                    "feed": m.alert.feed,
                    "article": m.alert.article,
                    "created_at": m.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    if found.is_empty() {
        println!("no matches yet");
    }
    for m in &found {
        println!(
            "{}  {}",
            m.created_at.format("%Y-%m-%d %H:%M"),
            feedwatch::notify::stdout::render(&m.alert)
        );
    }
    Ok(ExitCode::SUCCESS)
}

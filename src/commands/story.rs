//! `feedwatch story ID`: the articles of one story, first seen first, with how alike each was
//! to the article it joined.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use serde_json::json;

use super::output::{print_json, rfc3339};
use feedwatch::config::Config;
use feedwatch::store::Store;

pub fn story(path: &Path, id: i64, as_json: bool) -> Result<ExitCode> {
    let config = Config::load(path)?;
    let store = Store::open(&config.database)?;
    let articles = store.story(id)?;
    if articles.is_empty() {
        eprintln!(
            "no story {id} in {} (story ids are in alerts' `story.id` and in `matches --json`)",
            config.database.display()
        );
        return Ok(ExitCode::from(1));
    }
    if as_json {
        let list: Vec<_> = articles
            .iter()
            .map(|a| {
                json!({
                    "article_id": a.article_id,
                    "feed": a.feed,
                    "title": a.title,
                    "link": a.link,
                    "first_seen_at": rfc3339(a.first_seen_at),
                    "joined": a.joined.map(|j| json!({
                        "article_id": j.article,
                        "similarity": j.similarity,
                    })),
                })
            })
            .collect();
        print_json(&json!({"id": id, "articles": list}))?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("story {id}: {} articles", articles.len());
    for a in &articles {
        let how = match a.joined {
            Some(j) => format!("joined {} at similarity {:.2}", j.article, j.similarity),
            None if a.article_id == id => "first".to_string(),
            None => "joined (its sketch has left the story window)".to_string(),
        };
        println!(
            "  {}  #{}  {} ({}) — {how}",
            a.first_seen_at.format("%Y-%m-%d %H:%M"),
            a.article_id,
            a.title,
            a.feed
        );
        if let Some(link) = &a.link {
            println!("      {link}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

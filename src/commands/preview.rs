//! `feedwatch preview`: one feed's entries and the rules they match, writing nothing.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde_json::json;

use feedwatch::config::{self, Config};
use feedwatch::dedup::identify;
use feedwatch::fetch::{Fetched, Fetcher, Validators};
use feedwatch::matcher::snippet::article_snippet;
use feedwatch::matcher::{Engine, Query, RuleSpec};
use feedwatch::pipeline;

pub async fn preview(
    path: &Path,
    feed: &str,
    as_json: bool,
    query: Option<String>,
) -> Result<ExitCode> {
    // Preview works without a config file; a config that exists but is wrong is still an error.
    let config = if path.exists() {
        Config::load(path)?
    } else {
        Config::empty(path)
    };
    let cwd = std::env::current_dir().context("cannot read the current folder")?;
    let url = config::feed_url(feed, &cwd).map_err(|e| anyhow::anyhow!(e))?;
    let query = query
        .map(|q| Query::parse(&q).map_err(|e| anyhow::anyhow!("--query: {}", e.render(&q))))
        .transpose()?;
    let engine = match &query {
        Some(q) => Engine::new([RuleSpec {
            name: "query",
            query: q,
            feeds: &[],
        }]),
        None => pipeline::engine_for(&config),
    };
    let fetched = Fetcher::new(std::time::Duration::from_secs(30))
        .fetch(&url, &Validators::default(), config::DEFAULT_MAX_BODY)
        .await?;
    let Fetched::Body(body) = fetched else {
        anyhow::bail!("{url}: the server answered 304 Not Modified to an unconditional request");
    };
    let parsed = feedwatch::parse::parse(
        &body.bytes,
        body.content_type.as_deref(),
        Some(&body.final_url),
    )
    .with_context(|| url.clone())?;

    let feed_name = config
        .feeds
        .iter()
        .find(|f| f.url == url)
        .map_or("", |f| f.name.as_str());
    let entries: Vec<_> = parsed
        .articles
        .iter()
        .map(|a| (a, identify(a), engine.explain(a, feed_name)))
        .collect();
    if as_json {
        let out = json!({
            "feed": {"title": parsed.title, "link": parsed.link},
            "entries": entries.iter().map(|(a, identity, matched)| json!({
                "id": a.guid.clone().unwrap_or_else(|| identity.id.clone()),
                "title": a.title,
                "link": a.link,
                "published": a.published.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                "summary": if a.summary.is_empty() { &a.content } else { &a.summary },
                "matched_rules": matched.iter().map(|m| json!({"rule": m.matched.name, "terms": m.matched.terms})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} — {} entries",
        if parsed.title.is_empty() {
            &url
        } else {
            &parsed.title
        },
        entries.len()
    );
    let marks = super::marks();
    for (a, _, matched) in &entries {
        let date = a
            .published
            .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_else(|| "                ".into());
        println!(
            "\n{date}  {}",
            if a.title.is_empty() {
                "(untitled)"
            } else {
                &a.title
            }
        );
        if let Some(link) = &a.link {
            println!("                  {link}");
        }
        for m in matched {
            println!(
                "                  ✓ {}: {}",
                m.matched.name,
                m.matched.terms.join(", ")
            );
            if let Some(snippet) = article_snippet(a, &m.highlights, super::SNIPPET_CHARS, marks) {
                println!("                    {snippet}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

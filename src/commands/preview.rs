//! `feedwatch preview`: one feed's entries and the rules they match, writing nothing.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use serde::Serialize;
use serde::ser::{SerializeSeq, Serializer};
use serde_json::json;

use feedwatch::config::{self, Config};
use feedwatch::dedup::identify;
use feedwatch::fetch::{Fetched, Fetcher, Limits, Validators};
use feedwatch::fulltext::{self, PageCache};
use feedwatch::matcher::snippet::article_snippet;
use feedwatch::matcher::{Engine, Query, RuleSpec};
use feedwatch::parse::{Article, ParsedFeed};
use feedwatch::pipeline;
use feedwatch::store::{Store, StoryGuess};
use feedwatch::story::{self, StoryParams};

/// Which stored story each entry would join: the database's, when there is one.
struct Stories {
    store: Option<std::cell::RefCell<Store>>,
    params: StoryParams,
}

impl Stories {
    fn open(config: &Config) -> Result<Stories> {
        let store = if config.database.exists() {
            Some(Store::open_existing(&config.database)?.into())
        } else {
            None
        };
        Ok(Stories {
            store,
            params: config.story,
        })
    }

    /// The stored story `article` would join if it were stored now; a failed lookup is none.
    fn guess(&self, article: &Article) -> Option<StoryGuess> {
        let store = self.store.as_ref()?;
        let sketch = story::sketch_article(article)?;
        match store
            .borrow_mut()
            .guess_story(&sketch, chrono::Utc::now(), &self.params)
        {
            Ok(guess) => guess,
            Err(e) => {
                tracing::warn!("cannot look up the stories stored: {e}");
                None
            }
        }
    }
}

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
    // A feed of the config is fetched as the poller would: its headers, credentials, proxy.
    let configured = config.feeds.iter().find(|f| f.url == url);
    let limits = Limits {
        max_body: configured.map_or(config::DEFAULT_MAX_BODY, |f| f.max_body_bytes),
        timeout: configured.map_or(config::DEFAULT_FETCH_TIMEOUT, |f| f.timeout),
    };
    let options = configured.map(|f| f.http.clone()).unwrap_or_default();
    let fetcher = Arc::new(Fetcher::new(limits.timeout));
    let fetched = fetcher
        .fetch_limited(&url, &Validators::default(), &limits, &options)
        .await?;
    let Fetched::Body(body) = fetched else {
        anyhow::bail!("{url}: the server answered 304 Not Modified to an unconditional request");
    };
    let mut parsed = feedwatch::parse::parse(
        &body.bytes,
        body.content_type.as_deref(),
        Some(&body.final_url),
    )
    .with_context(|| url.clone())?;
    // With `full_text`, every entry is matched on its page's text, as a poll would if it were new.
    if let Some(feed) = configured.filter(|f| f.full_text != config::FullText::Off) {
        let all_new = vec![true; parsed.articles.len()];
        let pages = Arc::new(PageCache::default());
        fulltext::fill(&fetcher, &pages, feed, &mut parsed.articles, &all_new).await;
    }

    let feed_name = config
        .feeds
        .iter()
        .find(|f| f.url == url)
        .map_or("", |f| f.name.as_str());
    // Each entry is matched as it is written: with rules that match nearly everything, the
    // matches of a whole feed held at once took gigabytes.
    let stories = Stories::open(&config)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let written = if as_json {
        write_json(&mut out, &parsed, &engine, feed_name, &stories)
    } else {
        write_text(&mut out, &url, &parsed, &engine, feed_name, &stories)
    };
    match written.and_then(|()| out.flush()) {
        // A reader that stopped reading (`| head`) wanted no more.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e).context("cannot write to standard output"),
        Ok(()) => Ok(ExitCode::SUCCESS),
    }
}

/// The whole preview as one JSON document, written an entry at a time.
fn write_json(
    out: &mut impl Write,
    parsed: &ParsedFeed,
    engine: &Engine,
    feed_name: &str,
    stories: &Stories,
) -> std::io::Result<()> {
    // Fields in the order `json!` sorts its keys, as the document was first written.
    #[derive(Serialize)]
    struct Document<'a> {
        entries: Entries<'a>,
        feed: serde_json::Value,
    }
    struct Entries<'a> {
        articles: &'a [Article],
        engine: &'a Engine,
        feed_name: &'a str,
        stories: &'a Stories,
    }
    impl Serialize for Entries<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let mut seq = serializer.serialize_seq(Some(self.articles.len()))?;
            for a in self.articles {
                let matched = self.engine.explain(a, self.feed_name);
                seq.serialize_element(&json!({
                    "id": a.guid.clone().unwrap_or_else(|| identify(a).id),
                    "title": a.title,
                    "link": a.link,
                    "published": a.published.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                    "summary": if a.summary.is_empty() { &a.content } else { &a.summary },
                    "enclosures": a.enclosures,
                    "thumbnail": a.thumbnail,
                    "matched_rules": matched.iter().map(|m| json!({"rule": m.name, "terms": m.terms})).collect::<Vec<_>>(),
                    // As stored, only an entry that matches is placed in a story.
                    "story": (!matched.is_empty()).then(|| self.stories.guess(a)).flatten().map(|g| json!({
                        "id": g.story,
                        "joins_article": g.joined.article,
                        "joins_title": g.title,
                        "similarity": g.joined.similarity,
                    })),
                }))?;
            }
            seq.end()
        }
    }
    let document = Document {
        entries: Entries {
            articles: &parsed.articles,
            engine,
            feed_name,
            stories,
        },
        feed: json!({"title": parsed.title, "link": parsed.link}),
    };
    serde_json::to_writer_pretty(&mut *out, &document)?;
    writeln!(out)
}

fn write_text(
    out: &mut impl Write,
    url: &str,
    parsed: &ParsedFeed,
    engine: &Engine,
    feed_name: &str,
    stories: &Stories,
) -> std::io::Result<()> {
    writeln!(
        out,
        "{} — {} entries",
        if parsed.title.is_empty() {
            url
        } else {
            &parsed.title
        },
        parsed.articles.len()
    )?;
    let marks = super::marks();
    for a in &parsed.articles {
        let date = a
            .published
            .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_else(|| "                ".into());
        writeln!(
            out,
            "\n{date}  {}",
            if a.title.is_empty() {
                "(untitled)"
            } else {
                &a.title
            }
        )?;
        if let Some(link) = &a.link {
            writeln!(out, "                  {link}")?;
        }
        let matched = engine.explain(a, feed_name);
        // As stored, only an entry that matches is placed in a story.
        if !matched.is_empty()
            && let Some(g) = stories.guess(a)
        {
            writeln!(
                out,
                "                  ≈ story {} (similarity {:.2} to #{}: {})",
                g.story, g.joined.similarity, g.joined.article, g.title
            )?;
        }
        for m in matched {
            writeln!(
                out,
                "                  ✓ {}: {}",
                m.name,
                m.terms.join(", ")
            )?;
            if let Some(snippet) = article_snippet(a, &m.highlights, super::SNIPPET_CHARS, marks) {
                writeln!(out, "                    {snippet}")?;
            }
        }
    }
    Ok(())
}

//! `/`: a status page, rendered on the server from one template: the outbox, each feed's
//! health, the recent matches with their snippets, and links to the Atom feeds. Every value is
//! escaped by the template engine (the template is HTML, so minijinja escapes by default).

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::extract::{Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use minijinja::Environment;
use minijinja::value::Serde;
use serde::Serialize;

use super::atom::{path_segment, web_link};
use super::{AppState, unavailable};
use crate::store::{FeedState, StoredMatch};

/// Matches shown on the page, newest first.
const RECENT_MATCHES: usize = 30;
/// A feed's last error is cut to this many characters on the page.
const ERROR_CHARS: usize = 300;

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    // The name ends in .html: minijinja escapes every value for HTML.
    env.add_template("page.html", include_str!("page.html"))
        .expect("the status page template parses");
    env
});

/// Everything the template shows.
#[derive(Serialize)]
struct Page {
    now: String,
    feeds: Vec<FeedRow>,
    failing: usize,
    matches: Vec<MatchRow>,
    rules: Vec<RuleRow>,
    outbox: OutboxCounts,
    /// `?token=…` when the page was opened with one, for its links.
    token_query: String,
}

#[derive(Serialize)]
struct OutboxCounts {
    pending: i64,
    delivered: i64,
    dead: i64,
}

#[derive(Serialize)]
struct FeedRow {
    name: String,
    /// ok, failing, gone, or never (not polled yet).
    state: &'static str,
    last_success: Option<String>,
    next_poll: Option<String>,
    articles: i64,
    error: Option<String>,
}

#[derive(Serialize)]
struct MatchRow {
    title: String,
    link: Option<String>,
    rule: String,
    feed: String,
    at: String,
    /// The snippet in pieces, each with whether it is a matched word.
    snippet: Option<Vec<(String, bool)>>,
    /// Later articles of the story from other feeds, joined to this match.
    also: Vec<SourceRow>,
}

#[derive(Serialize)]
struct SourceRow {
    feed: String,
    link: Option<String>,
}

#[derive(Serialize)]
struct RuleRow {
    name: String,
    path: String,
}

pub(super) async fn status_page(State(state): State<AppState>, request: Request) -> Response {
    let pipeline = state.pipeline();
    let read = pipeline
        .db
        .read(|s| {
            Ok((
                s.feed_states()?,
                s.matches(RECENT_MATCHES)?,
                s.outbox_counts()?,
            ))
        })
        .await;
    let (states, matches, outbox) = match read {
        Ok(read) => read,
        Err(e) => return unavailable("cannot read the database", e),
    };
    let now = Utc::now();
    let by_url: HashMap<&str, &FeedState> = states.iter().map(|f| (f.url.as_str(), f)).collect();
    let feeds: Vec<FeedRow> = pipeline
        .config
        .feeds
        .iter()
        .map(|feed| feed_row(&feed.name, by_url.get(feed.url.as_str()).copied()))
        .collect();
    let failing = feeds
        .iter()
        .filter(|f| matches!(f.state, "failing" | "gone"))
        .count();
    let rules: Vec<RuleRow> = pipeline
        .config
        .rules
        .iter()
        .map(|r| RuleRow {
            name: r.name.clone(),
            path: path_segment(&r.name),
        })
        .collect();
    let count = |status: &str| outbox.get(status).copied().unwrap_or(0);
    // A page opened with ?token= keeps it in its links, for a browser that cannot send a header.
    let token_query = request
        .uri()
        .query()
        .and_then(|q| url::form_urlencoded::parse(q.as_bytes()).find(|(key, _)| key == "token"))
        .map(|(_, token)| {
            let encoded: String = url::form_urlencoded::byte_serialize(token.as_bytes()).collect();
            format!("?token={encoded}")
        })
        .unwrap_or_default();
    let page = Page {
        now: human(now),
        feeds,
        failing,
        matches: matches.iter().map(match_row).collect(),
        rules,
        outbox: OutboxCounts {
            pending: count("pending"),
            delivered: count("delivered"),
            dead: count("dead"),
        },
        token_query,
    };
    let rendered = TEMPLATES
        .get_template("page.html")
        .and_then(|template| template.render(Serde(&page)));
    match rendered {
        Ok(html) => ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response(),
        Err(e) => unavailable("cannot render the status page", e),
    }
}

fn feed_row(name: &str, state: Option<&FeedState>) -> FeedRow {
    let Some(state) = state else {
        return FeedRow {
            name: name.to_string(),
            state: "never",
            last_success: None,
            next_poll: None,
            articles: 0,
            error: None,
        };
    };
    let health = if state.gone_at.is_some() {
        "gone"
    } else if state.consecutive_failures > 0 {
        "failing"
    } else if state.last_attempt_at.is_none() {
        "never"
    } else {
        "ok"
    };
    let error = (state.consecutive_failures > 0 || state.gone_at.is_some())
        .then(|| state.last_error.clone())
        .flatten()
        .map(|e| cut(&e, ERROR_CHARS));
    FeedRow {
        name: name.to_string(),
        state: health,
        last_success: state.last_success_at.map(human),
        next_poll: state.next_poll_at.map(human),
        articles: state.articles,
        error,
    }
}

fn match_row(stored: &StoredMatch) -> MatchRow {
    let alert = &stored.alert;
    MatchRow {
        title: if alert.article.title.trim().is_empty() {
            "(no title)".into()
        } else {
            alert.article.title.clone()
        },
        link: alert.article.link.as_deref().and_then(web_link),
        rule: alert.rule.clone(),
        feed: alert.feed.name.clone(),
        at: human(stored.created_at),
        snippet: alert
            .snippet
            .as_ref()
            .filter(|s| !s.text.is_empty())
            .map(|s| s.parts()),
        also: alert
            .story
            .iter()
            .flat_map(|story| story.sources.iter().skip(1))
            .map(|source| SourceRow {
                feed: source.feed.clone(),
                link: source.link.as_deref().and_then(web_link),
            })
            .collect(),
    }
}

fn human(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn cut(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_daemon_with_nothing_yet_renders_a_page_that_says_so() {
        let page = Page {
            now: "2026-12-06 12:00 UTC".into(),
            feeds: Vec::new(),
            failing: 0,
            matches: Vec::new(),
            rules: Vec::new(),
            outbox: OutboxCounts {
                pending: 0,
                delivered: 0,
                dead: 0,
            },
            token_query: String::new(),
        };
        let html = TEMPLATES
            .get_template("page.html")
            .and_then(|t| t.render(Serde(&page)))
            .unwrap();
        assert!(html.contains("No feeds in the config."), "{html}");
        assert!(html.contains("No matches yet."), "{html}");
        assert!(html.contains("0 feeds, 0 failing · 0 rules"), "{html}");
    }

    #[test]
    fn long_errors_are_cut_on_a_character_boundary() {
        assert_eq!(cut("ééé", 2), "éé…");
        assert_eq!(cut("ab", 2), "ab");
    }
}

//! `/feeds/matches.atom` and `/feeds/rules/NAME.atom`: the recent matches as an Atom 1.0 feed
//! (RFC 4287), so that a feed reader can subscribe to feedwatch itself. Each entry links to
//! the article and carries the snippet with the matched words in bold.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};

use super::{AppState, unavailable};
use crate::store::{MatchFilter, StoredMatch};

/// How many matches a feed holds, newest first.
const ENTRIES: usize = 100;
const ATOM: &str = "application/atom+xml; charset=utf-8";

pub(super) async fn all_matches(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let about = FeedAbout {
        id: "tag:feedwatch,2026:matches".into(),
        title: "feedwatch: all matches".into(),
        self_link: self_link(&headers, "/feeds/matches.atom"),
    };
    serve(&state, None, about, &headers).await
}

pub(super) async fn rule_matches(
    State(state): State<AppState>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Response {
    let pipeline = state.pipeline();
    let rule = file
        .strip_suffix(".atom")
        .and_then(|name| pipeline.config.rule(name));
    let Some(rule) = rule else {
        let body = format!("no rule in the config makes the feed `{file}`\n");
        return (StatusCode::NOT_FOUND, body).into_response();
    };
    let path = format!("/feeds/rules/{}.atom", path_segment(&rule.name));
    let about = FeedAbout {
        id: format!("tag:feedwatch,2026:rule:{}", path_segment(&rule.name)),
        title: format!("feedwatch: {}", rule.name),
        self_link: self_link(&headers, &path),
    };
    serve(&state, Some(rule.name.clone()), about, &headers).await
}

async fn serve(
    state: &AppState,
    rule: Option<String>,
    about: FeedAbout,
    headers: &HeaderMap,
) -> Response {
    let filter = MatchFilter {
        rule,
        since: None,
        limit: ENTRIES,
    };
    let read = state
        .pipeline()
        .db
        .read(move |s| s.matches_where(&filter))
        .await;
    let matches = match read {
        Ok(matches) => matches,
        Err(e) => return unavailable("cannot read the matches", e),
    };
    // A feed with no match yet is dated at the epoch, not now, so that the same matches always
    // give the same document and the same tag.
    let body = render(&about, &matches, DateTime::UNIX_EPOCH);
    let tag = entity_tag(&body);
    if asked_again(headers, &tag) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, tag)]).into_response();
    }
    (
        [
            (header::CONTENT_TYPE, ATOM.to_string()),
            (header::ETAG, tag),
        ],
        body,
    )
        .into_response()
}

/// A strong entity tag of the document: a feed reader that sends it back gets `304` until a
/// match is added.
fn entity_tag(body: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(body.as_bytes());
    format!("\"{}\"", hex::encode(&digest[..16]))
}

/// Whether `If-None-Match` names `tag` (or is `*`).
fn asked_again(headers: &HeaderMap, tag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == tag || t == "*")
}

/// What the feed says about itself.
pub(super) struct FeedAbout {
    /// A permanent IRI for the feed.
    pub id: String,
    pub title: String,
    /// Where it was fetched from, when the request said which host it asked.
    pub self_link: Option<String>,
}

/// The Atom document for `matches` (newest first). `now` dates a feed with no entry yet.
pub(super) fn render(about: &FeedAbout, matches: &[StoredMatch], now: DateTime<Utc>) -> String {
    let updated = matches.iter().map(|m| m.created_at).max().unwrap_or(now);
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    xml.push_str("<feed xmlns=\"http://www.w3.org/2005/Atom\">\n");
    push_element(&mut xml, 1, "id", &about.id);
    push_element(&mut xml, 1, "title", &about.title);
    push_element(&mut xml, 1, "updated", &rfc3339(updated));
    if let Some(link) = &about.self_link {
        xml.push_str(&format!(
            "  <link rel=\"self\" type=\"application/atom+xml\" href=\"{}\"/>\n",
            xml_escape(link)
        ));
    }
    xml.push_str("  <author><name>feedwatch</name></author>\n");
    xml.push_str(&format!(
        "  <generator version=\"{}\">feedwatch</generator>\n",
        env!("CARGO_PKG_VERSION")
    ));
    for stored in matches {
        push_entry(&mut xml, stored);
    }
    xml.push_str("</feed>\n");
    xml
}

fn push_entry(xml: &mut String, stored: &StoredMatch) {
    let alert = &stored.alert;
    xml.push_str("  <entry>\n");
    push_element(xml, 2, "id", &entry_id(stored));
    let title = if alert.article.title.trim().is_empty() {
        "(no title)"
    } else {
        alert.article.title.as_str()
    };
    push_element(xml, 2, "title", title);
    if let Some(link) = alert.article.link.as_deref().and_then(web_link) {
        xml.push_str(&format!(
            "    <link rel=\"alternate\" href=\"{}\"/>\n",
            xml_escape(&link)
        ));
    }
    push_element(xml, 2, "updated", &rfc3339(stored.created_at));
    if let Some(published) = alert.article.published {
        push_element(xml, 2, "published", &rfc3339(published));
    }
    let source = if alert.feed.title.trim().is_empty() {
        &alert.feed.name
    } else {
        &alert.feed.title
    };
    xml.push_str("    <author><name>");
    xml.push_str(&xml_escape(source));
    xml.push_str("</name></author>\n");
    xml.push_str(&format!(
        "    <category term=\"{}\" label=\"{}\"/>\n",
        xml_escape(&alert.rule),
        xml_escape(&format!("rule {}", alert.rule))
    ));
    // The summary is HTML, carried as escaped text: escaped once as HTML, once as XML.
    xml.push_str("    <summary type=\"html\">");
    xml.push_str(&xml_escape(&summary_html(stored)));
    xml.push_str("</summary>\n");
    xml.push_str("  </entry>\n");
}

/// The entry's HTML: the snippet with its matched words in bold (else the summary), then which
/// rule matched which words in which feed.
fn summary_html(stored: &StoredMatch) -> String {
    let alert = &stored.alert;
    let text = match alert.snippet.as_ref().filter(|s| !s.text.is_empty()) {
        Some(snippet) => snippet.render(html_escape, |w| format!("<b>{}</b>", html_escape(w))),
        None => html_escape(&alert.article.summary),
    };
    let matched = alert.matched.join(", ");
    let mut html = format!(
        "<p>{text}</p><p>Rule <i>{}</i> matched {} in {}.</p>",
        html_escape(&alert.rule),
        html_escape(&matched),
        html_escape(&alert.feed.name)
    );
    // Later articles of the story, from other feeds, joined this match's sources.
    let also: Vec<String> = alert
        .story
        .iter()
        .flat_map(|story| story.sources.iter().skip(1))
        .map(|source| {
            let name = html_escape(&source.feed);
            match source.link.as_deref().and_then(web_link) {
                Some(link) => format!("<a href=\"{}\">{name}</a>", html_escape(&link)),
                None => name,
            }
        })
        .collect();
    if !also.is_empty() {
        html.push_str(&format!("<p>Also in: {}.</p>", also.join(", ")));
    }
    html
}

/// A permanent id per match: the rule, the feed and feedwatch's identity of the article,
/// hashed (an article id may hold any characters).
fn entry_id(stored: &StoredMatch) -> String {
    use sha2::{Digest, Sha256};
    let alert = &stored.alert;
    let mut hasher = Sha256::new();
    for part in [&alert.rule, &alert.feed.url, &alert.article.id] {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    format!(
        "tag:feedwatch,2026:match:{}",
        hex::encode(&hasher.finalize()[..16])
    )
}

fn push_element(xml: &mut String, depth: usize, name: &str, text: &str) {
    xml.push_str(&"  ".repeat(depth));
    xml.push_str(&format!("<{name}>{}</{name}>\n", xml_escape(text)));
}

/// The self link, from the Host the request was sent to.
fn self_link(headers: &HeaderMap, path: &str) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let valid = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c));
    valid.then(|| format!("http://{host}{path}"))
}

/// Only http(s) links become links: a feed's `javascript:` link must not reach a reader.
pub(super) fn web_link(link: &str) -> Option<String> {
    let url = url::Url::parse(link).ok()?;
    matches!(url.scheme(), "http" | "https").then(|| url.to_string())
}

/// A rule name as one path segment.
pub(super) fn path_segment(name: &str) -> String {
    url::form_urlencoded::byte_serialize(name.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// XML text and attribute values: HTML's escapes, which XML shares. Characters XML 1.0 cannot
/// carry at all (most C0 controls, U+FFFE, U+FFFF) are dropped: one of them would make the
/// whole feed unreadable.
fn xml_escape(text: &str) -> String {
    let allowed = |c: &char| {
        matches!(c, '\t' | '\n' | '\r') || (*c >= ' ' && !matches!(c, '\u{FFFE}' | '\u{FFFF}'))
    };
    if text.chars().all(|c| allowed(&c)) {
        return html_escape(text);
    }
    html_escape(&text.chars().filter(allowed).collect::<String>())
}

fn html_escape(text: &str) -> String {
    crate::notify::formats::html_escape(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{Alert, ArticleRef, FeedRef, Snippet, Source, StoryRef};

    fn stored(title: &str, link: &str) -> StoredMatch {
        let at = DateTime::parse_from_rfc3339("2026-11-25T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        StoredMatch {
            alert: Alert {
                story: None,
                rule: "nato".into(),
                feed: FeedRef {
                    name: "World".into(),
                    url: "http://news.example/feed".into(),
                    title: "World & <News>".into(),
                },
                article: ArticleRef {
                    id: "g1".into(),
                    title: title.into(),
                    link: Some(link.into()),
                    published: Some(at),
                    summary: "NATO met".into(),
                    enclosures: Vec::new(),
                    thumbnail: None,
                },
                matched: vec!["NATO".into()],
                created_at: at,
                snippet: Some(Snippet {
                    field: "summary".into(),
                    text: "NATO <met> & agreed".into(),
                    highlights: vec![(0, 4)],
                }),
            },
            created_at: at,
        }
    }

    fn about() -> FeedAbout {
        FeedAbout {
            id: "tag:feedwatch,2026:matches".into(),
            title: "feedwatch: all matches".into(),
            self_link: Some("http://127.0.0.1:9123/feeds/matches.atom".into()),
        }
    }

    #[test]
    fn markup_in_titles_and_snippets_stays_text() {
        let xml = render(
            &about(),
            &[stored(
                "<script>alert(1)</script>\u{1}",
                "https://x/?a=1&b=2",
            )],
            Utc::now(),
        );
        assert!(!xml.contains("<script"), "{xml}");
        assert!(
            xml.contains("<title>&lt;script&gt;alert(1)&lt;/script&gt;</title>"),
            "{xml}"
        );
        assert!(xml.contains("href=\"https://x/?a=1&amp;b=2\""), "{xml}");
        // HTML escaped once for the reader, once more for XML.
        assert!(
            xml.contains("&lt;b&gt;NATO&lt;/b&gt; &amp;lt;met&amp;gt; &amp;amp; agreed"),
            "{xml}"
        );
        assert!(
            xml.contains("<name>World &amp; &lt;News&gt;</name>"),
            "{xml}"
        );
    }

    #[test]
    fn only_web_links_become_links() {
        let xml = render(&about(), &[stored("t", "javascript:alert(1)")], Utc::now());
        assert!(!xml.contains("javascript"), "{xml}");
    }

    #[test]
    fn an_entry_keeps_its_id_and_an_empty_feed_is_still_a_feed() {
        let a = render(&about(), &[stored("t", "https://x/")], Utc::now());
        let b = render(&about(), &[stored("other title", "https://x/")], Utc::now());
        let id = |xml: &str| xml.split("<entry>\n    <id>").nth(1).unwrap()[..50].to_string();
        assert_eq!(id(&a), id(&b));
        let empty = render(&about(), &[], Utc::now());
        assert!(
            empty.contains("<updated>") && !empty.contains("<entry>"),
            "{empty}"
        );
    }

    #[test]
    fn the_other_feeds_of_a_story_are_named_with_their_links() {
        let mut m = stored("t", "https://x/");
        let source = |feed: &str, link: &str| Source {
            feed: feed.into(),
            title: "t".into(),
            link: Some(link.into()),
        };
        m.alert.story = Some(StoryRef {
            id: 7,
            sources: vec![
                source("World", "https://x/"),
                source("Wire <b>", "https://wire.example/a?b=1&c=2"),
                source("Sly", "javascript:alert(1)"),
            ],
        });
        let xml = render(&about(), &[m], Utc::now());
        let html = "&lt;p&gt;Also in: &lt;a href=&quot;https://wire.example/a?b=1&amp;amp;c=2\
                    &quot;&gt;Wire &amp;lt;b&amp;gt;&lt;/a&gt;, Sly.&lt;/p&gt;";
        assert!(xml.contains(html), "{xml}");
        assert!(!xml.contains("javascript"), "{xml}");
    }
}

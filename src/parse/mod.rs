//! Bytes -> [`ParsedFeed`]: a list of plain [`Article`]s.
//!
//! feed-rs does the XML and JSON work. In front of it this module decodes the body to UTF-8
//! (BOM, XML declaration, HTTP charset, then a detector), and when feed-rs refuses a feed it
//! repairs the usual small faults of real feeds and tries once more. Behind it, markup is turned
//! into plain text for matching. Nothing here does I/O.

mod dates;
mod encoding;
mod items;
mod repair;
mod text;
mod whitespace;

use std::borrow::Cow;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use feed_rs::model::FeedType;
use regex::Regex;

pub use dates::parse_date;
use encoding::attribute;
pub use encoding::decode;
pub use items::ItemDigest;
pub use text::{html_to_text, plain_text};

/// One entry of a feed, as plain text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Article {
    /// The id the feed gave (guid, Atom id, rdf:about), if any. See `dedup` for the identity
    /// feedwatch actually keys on.
    pub guid: Option<String>,
    pub title: String,
    pub link: Option<String>,
    pub published: Option<DateTime<Utc>>,
    /// Summary or description, as plain text.
    pub summary: String,
    /// Full content, as plain text (often empty: most feeds only carry a summary).
    pub content: String,
    pub authors: Vec<String>,
    pub categories: Vec<String>,
    /// Files that come with the entry: RSS `<enclosure>`, Atom `rel="enclosure"` links, JSON
    /// Feed attachments and Media RSS `media:content`, each web address once.
    pub enclosures: Vec<Enclosure>,
    /// A picture for the entry (`media:thumbnail`, or an image enclosure), if the feed has one.
    pub thumbnail: Option<String>,
}

/// A file that comes with an article: a podcast episode's audio, a video, an image.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Enclosure {
    pub url: String,
    /// The MIME type the feed gives, e.g. `audio/mpeg`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    /// Size in bytes, where the feed gives one (0, "unknown" in RSS, is left out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
}

/// A parsed feed: its own title and link, and its entries in document order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedFeed {
    pub title: String,
    pub link: Option<String>,
    pub articles: Vec<Article>,
    /// RSS `<ttl>`: the feed asks not to be polled more often than this.
    pub ttl: Option<std::time::Duration>,
}

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("not a feed: {0}")]
    NotAFeed(String),
    #[error("cannot parse feed: {0}")]
    Invalid(String),
    #[error("cannot parse feed: the parser failed on this input ({0})")]
    Panicked(String),
}

/// Parses a feed body. `content_type` is the HTTP header (for its charset); `base_url` is where
/// the body came from after redirects, used to resolve relative links when it is http(s).
pub fn parse(
    bytes: &[u8],
    content_type: Option<&str>,
    base_url: Option<&str>,
) -> Result<ParsedFeed, ParseError> {
    let base_url = web_base(base_url);
    // The XML and JSON layers are third-party code fed untrusted bytes: should one of them panic,
    // that is this feed's error, not the end of the daemon. A panic of a known kind is tried
    // again with its trigger taken out: first the least of it, then all of it.
    let attempt =
        |guard| std::panic::catch_unwind(|| parse_guarded(bytes, content_type, base_url, guard));
    attempt(Guard::None)
        .or_else(|first| {
            attempt(Guard::SpacedEmails)
                .or_else(|_| attempt(Guard::NoAuthors))
                .map_err(|_| first)
        })
        .unwrap_or_else(|payload| {
            let reason = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".into());
            Err(ParseError::Panicked(reason))
        })
}

/// A web address is a base for relative links; a local file's path is not: `/blog/1` in a
/// saved copy of a feed means the publisher's site, not `file:///blog/1`.
fn web_base(base_url: Option<&str>) -> Option<&str> {
    base_url.filter(|url| {
        let scheme = url.split(':').next().unwrap_or("");
        scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")
    })
}

/// A feed parsed but for the items it had when it was read before.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedItems {
    /// The feed, with the articles of the items that were not left out, in document order.
    pub feed: ParsedFeed,
    /// Every item in document order; `None` when the body was not split into items (it is
    /// not a plain list of them, or is JSON): then nothing was left out.
    pub items: Option<Vec<ItemRead>>,
}

/// One item of a feed's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemRead {
    pub digest: ItemDigest,
    /// Its article's index in [`ParsedFeed::articles`]; `None`: a known item, left out.
    pub article: Option<usize>,
}

/// [`parse`], leaving out the items whose digest `known` accepts: the same text in the same
/// context was read before, and would parse to the same entry. The articles of the other
/// items are what [`parse`] gives for them.
pub fn parse_unread(
    bytes: &[u8],
    content_type: Option<&str>,
    base_url: Option<&str>,
    known: &dyn Fn(&ItemDigest) -> bool,
) -> Result<ParsedItems, ParseError> {
    let base_url = web_base(base_url);
    let first = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let text = prepare(bytes, content_type, Guard::None);
        items::parse_unread(&text, base_url, known)
    }));
    match first {
        Ok(parsed) => parsed,
        // Read as `parse` reads a feed the parser panicked on: whole, with its guards.
        Err(_) => {
            parse(bytes, content_type, base_url).map(|feed| ParsedItems { feed, items: None })
        }
    }
}

/// What is taken out of a feed read again after feed-rs's author parser panicked on it: it
/// takes an author's name to be what is left after the e-mail address and one byte more, and
/// panics when that byte is inside a character.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Guard {
    None,
    /// E-mail addresses set apart from the non-ASCII characters they touch
    /// ([`repair::space_out_emails`]): the authors are kept.
    SpacedEmails,
    /// The authors it parses left out ([`repair::drop_authors`]), when markup or escapes
    /// between the address and the character hide them from the first.
    NoAuthors,
}

fn parse_guarded(
    bytes: &[u8],
    content_type: Option<&str>,
    base_url: Option<&str>,
    guard: Guard,
) -> Result<ParsedFeed, ParseError> {
    let text = prepare(bytes, content_type, guard);
    parse_text(&text, base_url).map(|(feed, _)| feed)
}

/// The body as UTF-8 text, with the faults that feed-rs would fail on written out (see
/// `repair::normalise`) and what `guard` takes out.
fn prepare<'a>(bytes: &'a [u8], content_type: Option<&str>, guard: Guard) -> Cow<'a, str> {
    let decoded = decode(bytes, content_type);
    let mut normalised = repair::normalise(&decoded);
    let guarded = |text: &str| match guard {
        Guard::None => None,
        Guard::SpacedEmails => Some(repair::space_out_emails(text)),
        Guard::NoAuthors => Some(repair::drop_authors(text)),
    };
    if let Some(text) = guarded(normalised.as_deref().unwrap_or(&decoded)) {
        normalised = Some(text);
    }
    normalised.map_or(decoded, Cow::Owned)
}

/// Parses prepared text, repaired once if feed-rs refuses it; says whether it was.
fn parse_text(text: &str, base_url: Option<&str>) -> Result<(ParsedFeed, bool), ParseError> {
    let (feed, repaired) = match parse_utf8(text.as_bytes(), base_url) {
        Ok(feed) => (feed, false),
        Err(first_error) => {
            let repaired = repair::repair(text);
            if repaired == text {
                return Err(explain(text, first_error, base_url));
            }
            // Keep the original error: it describes the file the user has, not our rewrite.
            let feed = parse_utf8(repaired.as_bytes(), base_url)
                .map_err(|_| explain(text, first_error, base_url))?;
            (feed, true)
        }
    };
    let mut parsed = convert(feed);
    if parsed.articles.iter().any(|a| a.guid.is_none()) {
        adopt_rdf_about(text, &mut parsed.articles);
    }
    Ok((parsed, repaired))
}

/// An item's start tag, with its attributes.
static ITEM_TAG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"<(?:[A-Za-z_][\w.-]*:)?item(\s[^>]*)?>").expect("static pattern")
});

/// RSS 1.0 names each item in `rdf:about`; feed-rs drops it, but it is the item's id.
fn adopt_rdf_about(text: &str, articles: &mut [Article]) {
    if !text.contains("rdf:about") {
        return;
    }
    // An item tag in a comment or CDATA is no item, and would put the count out of step.
    let abouts: Vec<Option<&str>> = repair::hidden::Hidden::of(text)
        .captures(&ITEM_TAG, text)
        .map(|c| c.get(1).and_then(|a| attribute(a.as_str(), "rdf:about")))
        .collect();
    // Only when items and entries line up one to one can an about be given to its entry.
    if abouts.len() != articles.len() {
        return;
    }
    for (article, about) in articles.iter_mut().zip(abouts) {
        if article.guid.is_none()
            && let Some(about) = about.map(str::trim).filter(|a| !a.is_empty())
        {
            article.guid = Some(about.to_string());
        }
    }
}

fn parse_utf8(bytes: &[u8], base_url: Option<&str>) -> Result<feed_rs::model::Feed, String> {
    let parser = feed_rs::parser::Builder::new()
        .base_uri(base_url)
        // An empty id keeps "the feed gave no id" visible; `dedup` picks a stable identity.
        .id_generator(|_, _, _| String::new())
        .timestamp_parser(parse_date)
        .build();
    parser.parse(bytes).map_err(|e| e.to_string())
}

/// Turns feed-rs's message into one a user can act on: an HTML page is named for what it is,
/// with the feed addresses it advertises.
fn explain(text: &str, error: String, base_url: Option<&str>) -> ParseError {
    let head: String = text
        .trim_start()
        .chars()
        .take(512)
        .collect::<String>()
        .to_ascii_lowercase();
    if head.starts_with("<!doctype html") || head.starts_with("<html") || head.contains("<html") {
        let links = crate::discover::feed_links(text, base_url.unwrap_or(""));
        let message = match links.as_slice() {
            [] => "the address serves an HTML page, not a feed, and the page links no feed".into(),
            [one] => format!("the address serves an HTML page; use its feed: {}", one.url),
            many => format!(
                "the address serves an HTML page; it links these feeds: {}",
                many.iter()
                    .map(|l| l.url.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        return ParseError::NotAFeed(message);
    }
    if text.trim().is_empty() {
        return ParseError::NotAFeed("the body is empty".into());
    }
    ParseError::Invalid(error)
}

// ---- feed-rs model -> Article ----

/// The text a reader sees in a text construct. Atom says whether one is text or markup, and a
/// JSON Feed title is text by definition; RSS says nothing, and its titles and descriptions
/// carry markup often enough that they are read as HTML, as feedparser and browsers do.
fn shown(text: &feed_rs::model::Text, format: &FeedType) -> String {
    let plain = matches!(format, FeedType::Atom | FeedType::JSON)
        && text.content_type.as_str().split(';').next() == Some("text/plain");
    if plain {
        plain_text(&text.content)
    } else {
        html_to_text(&text.content)
    }
}

fn convert(feed: feed_rs::model::Feed) -> ParsedFeed {
    let link = pick_link(&feed.links, &feed.id);
    let format = feed.feed_type;
    ParsedFeed {
        title: feed
            .title
            .as_ref()
            .map(|t| shown(t, &format))
            .unwrap_or_default(),
        link,
        ttl: feed
            .ttl
            .map(|minutes| std::time::Duration::from_secs(u64::from(minutes) * 60)),
        articles: feed
            .entries
            .into_iter()
            .map(|entry| convert_entry(entry, &format))
            .collect(),
    }
}

fn convert_entry(entry: feed_rs::model::Entry, format: &FeedType) -> Article {
    let (enclosures, thumbnail) = media(&entry, format);
    let guid = Some(entry.id.trim().to_string()).filter(|id| !id.is_empty());
    let page_links: Vec<_> = entry
        .links
        .iter()
        .filter(|l| !is_attachment(l, format))
        .cloned()
        .collect();
    let link = pick_link(&page_links, guid.as_deref().unwrap_or(""));
    let summary = entry
        .summary
        .as_ref()
        .map(|s| shown(s, format))
        .filter(|s| !s.is_empty())
        .or_else(|| {
            entry
                .media
                .iter()
                .find_map(|m| m.description.as_ref().map(|d| html_to_text(&d.content)))
        })
        .unwrap_or_default();
    let content = entry
        .content
        .as_ref()
        .and_then(|c| c.body.as_deref())
        .map(html_to_text)
        .unwrap_or_default();
    let title = entry
        .title
        .as_ref()
        .map(|t| shown(t, format))
        .filter(|t| !t.is_empty())
        .or_else(|| {
            entry
                .media
                .iter()
                .find_map(|m| m.title.as_ref().map(|t| html_to_text(&t.content)))
        })
        .unwrap_or_default();
    Article {
        guid,
        title,
        link,
        published: entry.published.or(entry.updated),
        summary,
        content,
        authors: entry.authors.into_iter().filter_map(|p| p.name).collect(),
        categories: entry
            .categories
            .into_iter()
            .map(|c| c.label.unwrap_or(c.term))
            .collect(),
        enclosures,
        thumbnail,
    }
}

/// A JSON Feed attachment, which feed-rs reads as a link that, unlike the item's `url`, has a
/// MIME type: a file of the entry, never its page.
fn is_attachment(link: &feed_rs::model::Link, format: &FeedType) -> bool {
    *format == FeedType::JSON && link.rel.is_none() && link.media_type.is_some()
}

/// The entry's files and its picture. feed-rs reads RSS enclosures and `media:content` alike as
/// media content, and Atom enclosures and JSON Feed attachments as links.
fn media(entry: &feed_rs::model::Entry, format: &FeedType) -> (Vec<Enclosure>, Option<String>) {
    let mut enclosures: Vec<Enclosure> = Vec::new();
    let mut add = |url: &str, mime_type: Option<String>, length: Option<u64>| {
        let url = url.trim();
        if !is_web_address(url) {
            return;
        }
        let mime_type = mime_type.filter(|t| !t.is_empty());
        let length = length.filter(|&n| n > 0);
        // The same file named twice (an enclosure and its `media:content`): one entry, with
        // what either says.
        match enclosures.iter_mut().find(|e| e.url == url) {
            Some(known) => {
                known.mime_type = known.mime_type.take().or(mime_type);
                known.length = known.length.or(length);
            }
            None => enclosures.push(Enclosure {
                url: url.to_string(),
                mime_type,
                length,
            }),
        }
    };
    for object in &entry.media {
        for content in &object.content {
            if let Some(url) = &content.url {
                add(
                    url.as_str(),
                    content.content_type.as_ref().map(|t| t.to_string()),
                    content.size,
                );
            }
        }
    }
    for link in &entry.links {
        if link.rel.as_deref() == Some("enclosure") || is_attachment(link, format) {
            add(&link.href, link.media_type.clone(), link.length);
        }
    }
    let thumbnail = entry
        .media
        .iter()
        .flat_map(|object| &object.thumbnails)
        .map(|t| t.image.uri.trim())
        .find(|uri| is_web_address(uri))
        .map(str::to_string)
        .or_else(|| {
            enclosures
                .iter()
                .find(|e| {
                    e.mime_type
                        .as_deref()
                        .is_some_and(|t| t.starts_with("image/"))
                })
                .map(|e| e.url.clone())
        });
    (enclosures, thumbnail)
}

/// Whether `text` is an http(s) address: the only links an article may hand on to a receiver.
fn is_web_address(text: &str) -> bool {
    text.starts_with("http://") || text.starts_with("https://")
}

/// The page a feed or entry stands for: an `alternate` (or unlabelled) link, as feedparser and
/// browsers take it. A `self`, `enclosure` or comments link is not the article's page; without
/// a page link, an id that is a web address (a permalink guid, an Atom id) is the page.
fn pick_link(links: &[feed_rs::model::Link], id: &str) -> Option<String> {
    links
        .iter()
        .filter(|l| l.href != repair::NO_LINK && l.target.is_none())
        .find(|l| matches!(l.rel.as_deref(), None | Some("alternate")))
        .map(|l| l.href.trim())
        .filter(|h| !h.is_empty())
        .or_else(|| {
            let id = id.trim();
            is_web_address(id).then_some(id)
        })
        .map(str::to_string)
}

/// Every file under `tests/data` (real projects' feeds and what fuzzing found), for tests
/// that hold a fast path to its plain twin over all of them.
#[cfg(test)]
fn test_feeds() -> Vec<std::path::PathBuf> {
    fn walk(dir: &std::path::Path, files: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("readable test data") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path, files);
            } else {
                files.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(
        std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data")),
        &mut files,
    );
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSS: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>News</title><link>https://news.example/</link>
<item><title>NATO summit &amp; more</title><link>/a/1</link><guid isPermaLink="false">a1</guid>
<description>&lt;p&gt;Leaders &lt;b&gt;met&lt;/b&gt;&lt;/p&gt;</description>
<pubDate>Tue, 10 Jun 2003 04:00:00 GMT</pubDate></item>
<item><title>No id here</title><description>text</description></item>
</channel></rss>"#;

    #[test]
    fn enclosures_and_thumbnails_are_kept_from_rss_media_rss_atom_and_json() {
        let rss = r#"<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel><title>Cast</title>
<item><title>Episode 1</title><guid>e1</guid>
<enclosure url="https://cdn.example/e1.mp3" length="12345678" type="audio/mpeg"/>
<media:content url="https://cdn.example/e1.mp4" type="video/mp4" fileSize="0"/>
<media:content url="https://cdn.example/e1.mp3" type="audio/mpeg" fileSize="12345678"/>
<media:thumbnail url="https://cdn.example/e1.jpg"/></item>
<item><title>Photo</title><guid>p1</guid><enclosure url="https://cdn.example/p.png" length="0" type="image/png"/></item>
<item><title>Local</title><guid>l1</guid><enclosure url="file:///etc/passwd" length="1" type="text/plain"/></item>
</channel></rss>"#;
        let feed = parse(rss.as_bytes(), None, None).unwrap();
        let episode = &feed.articles[0];
        let mut files = episode.enclosures.clone();
        files.sort_by(|a, b| a.url.cmp(&b.url));
        assert_eq!(
            files,
            [
                Enclosure {
                    url: "https://cdn.example/e1.mp3".into(),
                    mime_type: Some("audio/mpeg".into()),
                    length: Some(12_345_678),
                },
                Enclosure {
                    url: "https://cdn.example/e1.mp4".into(),
                    mime_type: Some("video/mp4".into()),
                    length: None,
                },
            ]
        );
        assert_eq!(
            episode.thumbnail.as_deref(),
            Some("https://cdn.example/e1.jpg")
        );
        // An image enclosure is the picture when there is no thumbnail.
        assert_eq!(
            feed.articles[1].thumbnail.as_deref(),
            Some("https://cdn.example/p.png")
        );
        // A thumbnail on its own, as news feeds give it.
        let news = r#"<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel><title>N</title>
<item><title>Summit</title><guid>n1</guid><media:thumbnail width="240" height="135" url="https://ichef.example/n1.jpg"/></item>
</channel></rss>"#;
        let news = parse(news.as_bytes(), None, None).unwrap();
        assert_eq!(
            news.articles[0].thumbnail.as_deref(),
            Some("https://ichef.example/n1.jpg")
        );
        assert!(news.articles[0].enclosures.is_empty());
        // Only web addresses: a feed cannot point a receiver at a local file.
        assert!(feed.articles[2].enclosures.is_empty());

        let atom = r#"<feed xmlns="http://www.w3.org/2005/Atom"><title>A</title><id>urn:a</id>
<entry><id>urn:1</id><title>Talk</title><link rel="alternate" href="https://a.example/talk"/>
<link rel="enclosure" href="https://a.example/talk.ogg" type="audio/ogg" length="42"/></entry></feed>"#;
        let feed = parse(atom.as_bytes(), None, None).unwrap();
        assert_eq!(
            feed.articles[0].link.as_deref(),
            Some("https://a.example/talk")
        );
        assert_eq!(
            feed.articles[0].enclosures,
            [Enclosure {
                url: "https://a.example/talk.ogg".into(),
                mime_type: Some("audio/ogg".into()),
                length: Some(42),
            }]
        );

        let json = r#"{"version": "https://jsonfeed.org/version/1.1", "title": "J", "items": [
{"id": "1", "title": "Show",
 "attachments": [{"url": "https://j.example/1.m4a", "mime_type": "audio/x-m4a", "size_in_bytes": 99}]}]}"#;
        let feed = parse(json.as_bytes(), None, None).unwrap();
        // An attachment is not the page of an item that gives no `url`.
        assert_eq!(feed.articles[0].link, None);
        assert_eq!(
            feed.articles[0].enclosures,
            [Enclosure {
                url: "https://j.example/1.m4a".into(),
                mime_type: Some("audio/x-m4a".into()),
                length: Some(99),
            }]
        );
    }

    #[test]
    fn rss_ttl_is_read_in_minutes() {
        let with_ttl = RSS.replace("<channel>", "<channel><ttl>120</ttl>");
        let feed = parse(with_ttl.as_bytes(), None, None).unwrap();
        assert_eq!(feed.ttl, Some(std::time::Duration::from_secs(2 * 60 * 60)));
        assert_eq!(parse(RSS.as_bytes(), None, None).unwrap().ttl, None);
    }

    #[test]
    fn rss_items_become_plain_articles() {
        let feed = parse(RSS.as_bytes(), None, Some("https://news.example/feed")).unwrap();
        assert_eq!(feed.title, "News");
        assert_eq!(feed.articles.len(), 2);
        let a = &feed.articles[0];
        assert_eq!(a.title, "NATO summit & more");
        assert_eq!(a.link.as_deref(), Some("https://news.example/a/1"));
        assert_eq!(a.guid.as_deref(), Some("a1"));
        assert_eq!(a.summary, "Leaders met");
        assert_eq!(
            a.published.unwrap().to_rfc3339(),
            "2003-06-10T04:00:00+00:00"
        );
        assert_eq!(feed.articles[1].guid, None, "no random id is invented");
    }

    #[test]
    fn windows_1251_declared_in_xml_is_decoded() {
        let xml = "<?xml version=\"1.0\" encoding=\"windows-1251\"?><rss version=\"2.0\"><channel><title>Новости</title><item><title>Кремль и НАТО</title></item></channel></rss>";
        let (bytes, _, _) = encoding_rs::WINDOWS_1251.encode(xml);
        let feed = parse(&bytes, None, None).unwrap();
        assert_eq!(feed.title, "Новости");
        assert_eq!(feed.articles[0].title, "Кремль и НАТО");
    }

    #[test]
    fn utf8_body_under_a_wrong_declaration_is_not_mangled() {
        let xml = "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><rss version=\"2.0\"><channel><title>Café</title></channel></rss>";
        assert_eq!(parse(xml.as_bytes(), None, None).unwrap().title, "Café");
    }

    #[test]
    fn http_charset_is_used_when_the_body_does_not_say() {
        let xml = "<rss version=\"2.0\"><channel><title>Кремль</title></channel></rss>";
        let (bytes, _, _) = encoding_rs::KOI8_R.encode(xml);
        let feed = parse(&bytes, Some("text/xml; charset=koi8-r"), None).unwrap();
        assert_eq!(feed.title, "Кремль");
    }

    #[test]
    fn rss_without_version_and_stray_ampersand_are_repaired() {
        let xml = "<rss><channel><title>A & B</title><item><title>x &nbsp;y</title></item></channel></rss>";
        let feed = parse(xml.as_bytes(), None, None).unwrap();
        assert_eq!(feed.title, "A & B");
        assert_eq!(feed.articles.len(), 1);
    }

    #[test]
    fn json_feed_with_short_version_is_read() {
        let json = r#"{"version":"1.1","title":"J","items":[{"id":"1","title":"Hi","tags":"x"}]}"#;
        let feed = parse(json.as_bytes(), None, None).unwrap();
        assert_eq!(feed.articles[0].title, "Hi");
    }

    #[test]
    fn html_page_is_named_as_such_with_its_feed() {
        let err = parse(b"<!DOCTYPE html><html><body>hi</body></html>", None, None).unwrap_err();
        assert!(err.to_string().contains("HTML page"), "{err}");
        let page = br#"<html><head><link rel="alternate" type="application/rss+xml" href="/rss"></head></html>"#;
        let err = parse(page, None, Some("https://news.example/")).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("use its feed: https://news.example/rss"),
            "{err}"
        );
    }

    #[test]
    fn html_to_text_drops_markup_scripts_and_decodes_entities() {
        assert_eq!(
            html_to_text(
                "<p>Jens<br/>Stoltenberg</p><script>var x = 'NATO';</script> said &quot;hi&quot; &eacute;t&eacute;"
            ),
            "Jens Stoltenberg said \"hi\" été"
        );
        assert_eq!(html_to_text("<a href=\"/nato\">link</a>"), "link");
        assert_eq!(html_to_text("AT&T 3 < 4"), "AT&T 3 < 4");
    }

    #[test]
    fn atom_0_3_feed_is_read_like_atom_1_0() {
        let xml = r#"<feed version="0.3" xmlns="http://purl.org/atom/ns#"><title>Old</title>
<entry><title mode="base64">RW50cnkgVGl0bGU=</title><id>tag:x,2003:1</id>
<issued>2003-12-13T18:30:02Z</issued><summary type="text/plain">Hello</summary></entry></feed>"#;
        let feed = parse(xml.as_bytes(), None, None).unwrap();
        assert_eq!(feed.title, "Old");
        let a = &feed.articles[0];
        assert_eq!(a.title, "Entry Title");
        assert_eq!(a.guid.as_deref(), Some("tag:x,2003:1"));
        assert_eq!(a.summary, "Hello");
        assert_eq!(
            a.published.unwrap().to_rfc3339(),
            "2003-12-13T18:30:02+00:00"
        );
    }

    #[test]
    fn rss_1_0_item_takes_its_id_from_rdf_about_and_is_kept_without_link() {
        let xml = r#"<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/">
<channel rdf:about="http://x.org/"><title>R</title></channel>
<item rdf:about="http://x.org/1"><title>One</title><link>http://x.org/1.html</link></item>
<!-- <item rdf:about="http://x.org/0"> --><?pi <item rdf:about="http://x.org/0">?>
<item rdf:about="http://x.org/2"><description>Two<![CDATA[<item rdf:about="a">]]></description></item></rdf:RDF>"#;
        let feed = parse(xml.as_bytes(), None, None).unwrap();
        assert_eq!(feed.articles.len(), 2);
        assert_eq!(feed.articles[0].guid.as_deref(), Some("http://x.org/1"));
        assert_eq!(feed.articles[1].guid.as_deref(), Some("http://x.org/2"));
        assert_eq!(
            feed.articles[1].link, None,
            "the placeholder link is not shown"
        );
    }

    #[test]
    fn rss_under_the_userland_namespace_keeps_its_items() {
        let xml = r#"<rss version="2.0" xmlns="http://backend.userland.com/rss2"><channel><title>U</title>
<item><title>Item</title><link>http://x.org/1</link></item></channel></rss>"#;
        let feed = parse(xml.as_bytes(), None, None).unwrap();
        assert_eq!(feed.articles.len(), 1);
        assert_eq!(feed.articles[0].title, "Item");
    }

    #[test]
    fn mismatched_end_tag_is_recovered_and_truncated_body_is_rejected() {
        let xml = r#"<feed xmlns="http://www.w3.org/2005/Atom"><entry><id>e1</id><title>T</title>
<source><logo>http://x.org/logo.jpg</link></source></entry></feed>"#;
        let feed = parse(xml.as_bytes(), None, None).unwrap();
        assert_eq!(feed.articles[0].title, "T");
        assert!(parse(b"<rss version=\"2.0\"><chan", None, None).is_err());
    }

    /// Word's HTML in a description leaves `<?xml:namespace … />`, a processing instruction
    /// that ends in `/>`, not `?>`; a comment may be broken too. Neither hides the rest of the
    /// body from the repairs: the description's markup is kept as such, and the feed is read.
    #[test]
    fn unclosed_word_markup_in_a_description_keeps_the_feed() {
        for broken in [
            r#"<?xml:namespace prefix = o ns="urn:schemas-microsoft-com:office:office" />"#,
            "<!-- broken comment - >",
        ] {
            let xml = format!(
                "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
                 <rss version=\"2.0\"><channel><title>T</title><link>http://x/</link>\n\
                 <item><title>A</title><link>http://x/a</link>\
                 <description><p>Hello {broken} world</p></description></item>\n\
                 <item><title>B</title><link>http://x/b</link>\
                 <description>plain</description></item>\n</channel></rss>"
            );
            let feed = parse(xml.as_bytes(), None, None).unwrap_or_else(|e| panic!("{e}: {xml}"));
            let titles: Vec<&str> = feed.articles.iter().map(|a| a.title.as_str()).collect();
            assert_eq!(titles, ["A", "B"], "{xml}");
            assert!(feed.articles[0].summary.contains("Hello"), "{xml}");
            // As in a browser, a comment that is not closed runs to the end of the HTML.
            if !broken.starts_with("<!--") {
                assert!(feed.articles[0].summary.contains("world"), "{xml}");
            }
            assert_eq!(feed.articles[1].summary, "plain");
        }
    }

    /// A body cut off inside a CDATA section or a comment keeps the items before the cut.
    #[test]
    fn a_body_cut_off_in_cdata_or_a_comment_keeps_its_items() {
        let head = "<rss version=\"2.0\"><channel><title>T</title>\
                    <item><title>A</title><link>http://x/a</link></item>\
                    <item><title>B</title><link>http://x/b</link>";
        for cut in [
            "<description><![CDATA[<p>tw",
            "</item><!-- ad slo",
            "</item><!-- ad slot -",
        ] {
            let xml = format!("{head}{cut}");
            let feed = parse(xml.as_bytes(), None, None).unwrap_or_else(|e| panic!("{e}: {xml}"));
            let titles: Vec<&str> = feed.articles.iter().map(|a| a.title.as_str()).collect();
            assert_eq!(titles, ["A", "B"], "{xml}");
        }
    }

    #[test]
    fn markup_written_straight_into_a_title_is_read_as_markup() {
        let atom = r#"<feed xmlns="http://www.w3.org/2005/Atom"><title><p>Feed <b>Title</b></p></title>
<entry><id>1</id><title type="html" xml:base="http://x.org/">Example <a href="t.html">test</a></title>
<content type="html"><div>&lt;p&gt;Body&lt;/p&gt;</div></content></entry></feed>"#;
        let feed = parse(atom.as_bytes(), None, None).unwrap();
        assert_eq!(feed.title, "Feed Title");
        assert_eq!(feed.articles[0].title, "Example test");
        assert_eq!(feed.articles[0].content, "<p>Body</p>");

        let rss = "<rss version=\"2.0\"><channel><title><p>Feed Title</p></title>\
                   <item><title><b>Item</b> Title</title><description><p>One ]]> two</p></description></item></channel></rss>";
        let feed = parse(rss.as_bytes(), None, None).unwrap();
        assert_eq!(feed.title, "Feed Title");
        assert_eq!(feed.articles[0].title, "Item Title");
        assert_eq!(feed.articles[0].summary, "One ]]> two");
    }

    #[test]
    fn atom_text_is_shown_as_written_and_html_as_a_browser_shows_it() {
        let atom = r#"<feed xmlns="http://www.w3.org/2005/Atom"><title>&lt;p&gt; is a tag &amp;amp; more</title>
<entry><id>1</id><title type="html">&lt;b&gt;Bold&lt;/b&gt; &amp;amp;&amp;scaron;</title></entry>
<entry><id>2</id><title type="application/octet-stream">PHA+RW50cnkgVGl0bGU8L3A+</title></entry>
<entry><id>3</id><title type="text/html" mode="base64">PHA+RW50cnkgVGl0bGU8L3A+</title></entry></feed>"#;
        let feed = parse(atom.as_bytes(), None, None).unwrap();
        assert_eq!(feed.title, "<p> is a tag &amp; more");
        assert_eq!(feed.articles[0].title, "Bold &š");
        assert_eq!(
            feed.articles[1].title, "<p>Entry Title</p>",
            "base64 text stays text"
        );
        assert_eq!(
            feed.articles[2].title, "Entry Title",
            "base64 HTML is markup"
        );
        let json = r#"{"version":"https://jsonfeed.org/version/1.1","title":"Blog &#8211; <News>","items":[]}"#;
        assert_eq!(
            parse(json.as_bytes(), None, None).unwrap().title,
            "Blog &#8211; <News>"
        );
    }

    #[test]
    fn items_nested_by_mistake_are_each_an_entry() {
        let xml = "<rss version=\"2.0\"><channel><title>T</title>\
            <item><title>One</title><link>http://x.org/1</link>\
              <item><title>Two</title><link>http://x.org/2</link></item>\
              <item><title>Three</title></item>\
            </item><item><title>Four</title></item></channel></rss>";
        let feed = parse(xml.as_bytes(), None, None).unwrap();
        let titles: Vec<&str> = feed.articles.iter().map(|a| a.title.as_str()).collect();
        assert_eq!(titles, ["One", "Two", "Three", "Four"]);
        assert_eq!(feed.articles[1].link.as_deref(), Some("http://x.org/2"));
        // Unclosed items are closed where the next one opens.
        let unclosed = "<rss version=\"2.0\"><channel><item><title>A</title><item><title>B</title></item></channel></rss>";
        let titles: Vec<String> = parse(unclosed.as_bytes(), None, None)
            .unwrap()
            .articles
            .into_iter()
            .map(|a| a.title)
            .collect();
        assert_eq!(titles, ["A", "B"]);
    }

    #[test]
    fn other_vocabularies_stand_in_for_missing_rss_elements() {
        let xml = r#"<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom" xmlns:media="http://search.yahoo.com/mrss/" xmlns:itunes="http://www.itunes.com/DTDs/PodCast-1.0.dtd">
<channel><dc:title>DC Title</dc:title>
<item><dc:title>DC Item</dc:title><atom:published>2019-01-02T15:04:05Z</atom:published><atom:content type="html">&lt;p&gt;Body&lt;/p&gt;</atom:content></item>
<item><enclosure url="http://x.org/a.jpg" type="image/jpeg"><media:title><![CDATA[ <p>Enclosed</p> ]]></media:title></enclosure><itunes:summary>Cast</itunes:summary></item>
<item><title>Own</title><dc:title>Not this</dc:title></item></channel></rss>"#;
        let feed = parse(xml.as_bytes(), None, None).unwrap();
        assert_eq!(feed.title, "DC Title");
        let a = &feed.articles;
        assert_eq!(a[0].title, "DC Item");
        assert_eq!(a[0].summary, "Body");
        assert_eq!(
            a[0].published.unwrap().to_rfc3339(),
            "2019-01-02T15:04:05+00:00"
        );
        assert_eq!(a[1].title, "Enclosed");
        assert_eq!(a[1].summary, "Cast", "the iTunes namespace in another case");
        assert_eq!(a[2].title, "Own");
    }

    /// `(feed, feed link, entry links)` as feedparser resolves them for a feed fetched from
    /// `http://news.example/feeds/world/feed.xml`.
    const XML_BASE_CASES: &[(&str, &str, &[&str])] = &[
        (
            r#"<feed xmlns="http://www.w3.org/2005/Atom" xml:base="http://other.example/a/"><entry xml:base=""><id>1</id><link href="x.html"/></entry></feed>"#,
            "",
            &["http://other.example/a/x.html"],
        ),
        (
            r##"<feed xmlns="http://www.w3.org/2005/Atom"><entry xml:base="#top"><id>1</id><link href="x.html"/></entry></feed>"##,
            "",
            &["http://news.example/feeds/world/x.html"],
        ),
        (
            r#"<feed xmlns="http://www.w3.org/2005/Atom" xml:base="../archive/"><link href="index.html"/><entry xml:base="2024/"><id>1</id><link href="x.html"/></entry></feed>"#,
            "http://news.example/feeds/archive/index.html",
            &["http://news.example/feeds/archive/2024/x.html"],
        ),
        (
            r#"<rss version="2.0"><channel><link>/</link><item xml:base="http://item.example/dir/"><title>t</title><link>x.html</link></item><item><title>u</title><link>y.html</link></item></channel></rss>"#,
            "http://news.example/",
            &[
                "http://item.example/dir/x.html",
                "http://news.example/feeds/world/y.html",
            ],
        ),
        (
            r#"<rss version="2.0" xml:base="http://chan.example/c/"><channel><link>home.html</link><item><title>t</title><link>x.html</link></item></channel></rss>"#,
            "http://chan.example/c/home.html",
            &["http://chan.example/c/x.html"],
        ),
        (
            r#"<rss version="2.0"><channel><link>/</link><item><title>t</title><link>../x.html</link><guid>http://g.example/1</guid></item></channel></rss>"#,
            "http://news.example/",
            &["http://news.example/feeds/x.html"],
        ),
    ];

    #[test]
    fn xml_base_and_the_feed_address_resolve_every_link() {
        for (xml, feed_link, entry_links) in XML_BASE_CASES {
            let feed = parse(
                xml.as_bytes(),
                None,
                Some("http://news.example/feeds/world/feed.xml"),
            )
            .unwrap();
            assert_eq!(feed.link.as_deref().unwrap_or(""), *feed_link, "{xml}");
            let links: Vec<&str> = feed
                .articles
                .iter()
                .map(|a| a.link.as_deref().unwrap_or(""))
                .collect();
            assert_eq!(links, *entry_links, "{xml}");
        }
    }

    #[test]
    fn a_local_file_s_path_is_no_base_for_its_links() {
        let xml = r#"<feed xmlns="http://www.w3.org/2005/Atom"><link href="/blog/"/><entry><id>1</id><link href="/blog/1"/></entry></feed>"#;
        let feed = parse(xml.as_bytes(), None, Some("file:///home/me/feeds/blog.xml")).unwrap();
        assert_eq!(feed.link.as_deref(), Some("/blog/"));
        assert_eq!(feed.articles[0].link.as_deref(), Some("/blog/1"));
    }

    #[test]
    fn google_docs_atom_with_content_held_elsewhere_is_read() {
        let xml = "<?xml version='1.0' encoding='UTF-8'?><feed xmlns='http://www.w3.org/2005/Atom' \
            xmlns:gd='http://schemas.google.com/g/2005' gd:etag='W/\"abc\"'><title type='text'>Documents</title>\
            <link rel='alternate' type='text/html' href='https://docs.google.com'/>\
            <entry gd:etag='\"E0\"'><id>https://docs.google.com/feeds/id/document%3A1</id>\
            <published>2009-07-22T19:02:57.616Z</published><title>Notes &amp; Plans</title>\
            <content type='text/html' src='https://docs.google.com/Export?docID=1'/>\
            <link rel='alternate' type='text/html' href='https://docs.google.com/Doc?docid=1&amp;hl=en'/></entry></feed>";
        let feed = parse(xml.as_bytes(), None, None).unwrap();
        assert_eq!(feed.link.as_deref(), Some("https://docs.google.com/"));
        let a = &feed.articles[0];
        assert_eq!(a.title, "Notes & Plans");
        assert_eq!(
            a.link.as_deref(),
            Some("https://docs.google.com/Doc?docid=1&hl=en")
        );
    }

    #[test]
    fn undeclared_itunes_summary_is_the_summary() {
        let xml = "<rss version=\"2.0\"><channel><item><title>P</title>\
<itunes:summary><![CDATA[ Line 1 ]]></itunes:summary></item></channel></rss>";
        let feed = parse(xml.as_bytes(), None, None).unwrap();
        assert_eq!(feed.articles[0].summary, "Line 1");
    }

    #[test]
    fn utf16_without_bom_is_decoded_not_a_panic() {
        let xml = "<?xml version=\"1.0\" encoding=\"utf-16\"?><rss version=\"2.0\"><channel><title>Ünï</title></channel></rss>";
        let bytes: Vec<u8> = xml.encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
        assert_eq!(parse(&bytes, None, None).unwrap().title, "Ünï");
    }

    #[test]
    fn undeclared_legacy_encodings_are_detected() {
        let latin1 =
            "<rss version=\"2.0\"><channel><title>Café déjà vu à la télé</title></channel></rss>";
        let (bytes, _, _) = encoding_rs::WINDOWS_1252.encode(latin1);
        assert_eq!(
            parse(&bytes, None, None).unwrap().title,
            "Café déjà vu à la télé"
        );
        let russian = "<rss version=\"2.0\"><channel><title>Новости о Кремле и правительстве России</title></channel></rss>";
        let (bytes, _, _) = encoding_rs::KOI8_R.encode(russian);
        assert_eq!(
            parse(&bytes, None, None).unwrap().title,
            "Новости о Кремле и правительстве России"
        );
    }

    /// The daemon parses on tokio's blocking threads, whose stacks are 2 MiB.
    fn on_a_daemon_sized_stack<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(work)
            .unwrap()
            .join()
            .expect("no stack overflow, no panic")
    }

    #[test]
    fn deeply_nested_markup_is_read_or_refused_on_a_small_stack() {
        let levels = 60_000;
        let elements = format!(
            "<rss version=\"2.0\"><channel><title>T</title><item><title>x</title></item>{}{}</channel></rss>",
            "<x>".repeat(levels),
            "</x>".repeat(levels)
        );
        let feed = on_a_daemon_sized_stack(move || parse(elements.as_bytes(), None, None));
        assert_eq!(feed.unwrap().articles.len(), 1);

        let unclosed = format!(
            "<rss version=\"2.0\"><channel><title>T &</title><item><title>x</title>{}",
            "<x>".repeat(levels)
        );
        // Repaired into a feed of its one item, or refused: either way an answer.
        if let Ok(feed) = on_a_daemon_sized_stack(move || parse(unclosed.as_bytes(), None, None)) {
            assert_eq!(feed.articles[0].title, "x");
        }

        let escaped = format!(
            "<rss version=\"2.0\"><channel><item><title>x</title><description>{}deep{}</description></item></channel></rss>",
            "&lt;b&gt;".repeat(levels),
            "&lt;/b&gt;".repeat(levels)
        );
        let feed = on_a_daemon_sized_stack(move || parse(escaped.as_bytes(), None, None)).unwrap();
        assert_eq!(feed.articles[0].summary, "deep");

        let xhtml = format!(
            "<feed xmlns=\"http://www.w3.org/2005/Atom\"><entry><id>1</id><title type=\"xhtml\">\
             <div xmlns=\"http://www.w3.org/1999/xhtml\">{}x{}</div></title></entry></feed>",
            "<b>".repeat(levels / 2),
            "</b>".repeat(levels / 2)
        );
        let feed = on_a_daemon_sized_stack(move || parse(xhtml.as_bytes(), None, None)).unwrap();
        assert_eq!(feed.articles[0].title, "x");

        let json = format!(
            "{{\"version\":\"https://jsonfeed.org/version/1.1\",\"items\":[{{\"id\":\"1\",\"title\":\"x\",\"_x\":{}{}}}]}}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        // serde_json stops at 128 levels: the feed is refused or read, never a crash.
        let _ = on_a_daemon_sized_stack(move || parse(json.as_bytes(), None, None));
    }

    #[test]
    fn ascii_only_utf16_big_endian_without_a_mark_is_read_not_a_panic() {
        let xml = "<?xml version=\"1.0\" encoding=\"utf-16\"?><rss version=\"2.0\"><channel>\
                   <title>Plain</title><item><title>One</title><guid>1</guid></item></channel></rss>";
        let bytes: Vec<u8> = xml.encode_utf16().flat_map(|u| u.to_be_bytes()).collect();
        let feed = parse(&bytes, None, None).unwrap();
        assert_eq!(feed.title, "Plain");
        assert_eq!(feed.articles[0].title, "One");
    }

    #[test]
    fn text_that_only_looks_wide_once_decoded_is_no_panic() {
        // Found by fuzzing: UTF-16 whose characters are the bytes of UTF-16 text.
        let inner: Vec<u8> = "<?xml version=\"1.0\" encoding=\"utf-16\"?><rss version=\"2.0\"><channel><title>T</title></channel></rss>"
            .encode_utf16()
            .flat_map(|u| u.to_be_bytes())
            .collect();
        let mut bytes = vec![0xFE, 0xFF];
        bytes.extend(inner.iter().flat_map(|&b| [0, b]));
        assert!(!matches!(
            parse(&bytes, None, None),
            Err(ParseError::Panicked(_))
        ));
    }

    #[test]
    fn an_author_whose_address_touches_a_non_ascii_character_is_no_panic() {
        // Found by fuzzing (tests/data/fuzz-found): feed-rs cuts the byte before or after an
        // address out of an author, inside a character wider than a byte.
        for author in [
            "Feed Editor (ema\u{feff}il@example.org)",
            "Редакция\u{a0}news@example.org",
            "news@example.org\u{a0}(Редакция)",
        ] {
            let xml = format!(
                "<rss version=\"2.0\"><channel><title>T</title><managingEditor>{author}\
                 </managingEditor><item><title>Grüße</title><author>{author}</author>\
                 <description>Write to «news@example.org»</description></item></channel></rss>"
            );
            let feed = parse(xml.as_bytes(), None, None).expect(author);
            assert_eq!(feed.articles[0].title, "Grüße");
            assert_eq!(feed.articles[0].summary, "Write to « news@example.org »");
        }
    }

    #[test]
    fn utf32_with_or_without_a_mark_is_read() {
        let xml = "<?xml version=\"1.0\" encoding=\"UTF-32\"?><rss version=\"2.0\"><channel>\
                   <title>Grüße</title></channel></rss>";
        let big: Vec<u8> = xml
            .chars()
            .flat_map(|c| u32::from(c).to_be_bytes())
            .collect();
        let little: Vec<u8> = ["\u{feff}", xml]
            .concat()
            .chars()
            .flat_map(|c| u32::from(c).to_le_bytes())
            .collect();
        assert_eq!(parse(&big, None, None).unwrap().title, "Grüße");
        assert_eq!(parse(&little, None, None).unwrap().title, "Grüße");
    }

    #[test]
    fn utf16_big_endian_after_a_comment_is_decoded() {
        let xml = "<!-- c --><rss version=\"2.0\"><channel><title>Grüße</title></channel></rss>";
        let bytes: Vec<u8> = xml.encode_utf16().flat_map(|u| u.to_be_bytes()).collect();
        assert_eq!(parse(&bytes, None, None).unwrap().title, "Grüße");
    }
}

//! Bytes -> [`ParsedFeed`]: a list of plain [`Article`]s.
//!
//! feed-rs does the XML and JSON work. In front of it this module decodes the body to UTF-8
//! (BOM, XML declaration, HTTP charset, then a detector), and when feed-rs refuses a feed it
//! repairs the usual small faults of real feeds and tries once more. Behind it, markup is turned
//! into plain text for matching. Nothing here does I/O.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use encoding_rs::Encoding;

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
}

/// A parsed feed: its own title and link, and its entries in document order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedFeed {
    pub title: String,
    pub link: Option<String>,
    pub articles: Vec<Article>,
}

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("not a feed: {0}")]
    NotAFeed(String),
    #[error("cannot parse feed: {0}")]
    Invalid(String),
}

/// Parses a feed body. `content_type` is the HTTP header (for its charset); `base_url` is where
/// the body came from after redirects, used to resolve relative links.
pub fn parse(
    bytes: &[u8],
    content_type: Option<&str>,
    base_url: Option<&str>,
) -> Result<ParsedFeed, ParseError> {
    let text = decode(bytes, content_type);
    let first_try = parse_utf8(text.as_bytes(), base_url);
    let feed = match first_try {
        Ok(feed) => feed,
        Err(first_error) => {
            let repaired = repair(&text);
            if repaired == text {
                return Err(explain(&text, first_error, base_url));
            }
            // Keep the original error: it describes the file the user has, not our rewrite.
            parse_utf8(repaired.as_bytes(), base_url)
                .map_err(|_| explain(&text, first_error, base_url))?
        }
    };
    Ok(convert(feed))
}

fn parse_utf8(bytes: &[u8], base_url: Option<&str>) -> Result<feed_rs::model::Feed, String> {
    let parser = feed_rs::parser::Builder::new()
        .base_uri(base_url)
        // An empty id keeps "the feed gave no id" visible; `dedup` picks a stable identity.
        .id_generator(|_, _, _| String::new())
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

// ---- encodings ----

/// Decodes `bytes` to UTF-8 and makes any XML declaration say so, since feed-rs would
/// otherwise decode a second time by the declared label.
pub fn decode<'a>(bytes: &'a [u8], content_type: Option<&str>) -> Cow<'a, str> {
    let encoding = if let Some((encoding, _)) = Encoding::for_bom(bytes) {
        encoding
    } else if let Ok(text) = std::str::from_utf8(bytes) {
        return match rewrite_declaration(text) {
            Some(fixed) => Cow::Owned(fixed),
            None => Cow::Borrowed(text),
        };
    } else if let Some(utf16) = sniff_utf16(bytes) {
        utf16
    } else {
        declared_encoding(bytes)
            .or_else(|| content_type.and_then(charset_of))
            .unwrap_or_else(|| {
                let mut detector =
                    chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Allow);
                detector.feed(bytes, true);
                detector.guess(None, chardetng::Utf8Detection::Allow)
            })
    };
    let (text, _, _) = encoding.decode(bytes);
    let text = text.into_owned();
    Cow::Owned(rewrite_declaration(&text).unwrap_or(text))
}

/// UTF-16 without a BOM still starts with `<` and a zero byte, in one order or the other.
fn sniff_utf16(bytes: &[u8]) -> Option<&'static Encoding> {
    match bytes {
        [b'<', 0, b'?' | b'r' | b'f', 0, ..] => Some(encoding_rs::UTF_16LE),
        [0, b'<', 0, b'?' | b'r' | b'f', ..] => Some(encoding_rs::UTF_16BE),
        _ => None,
    }
}

fn declared_encoding(bytes: &[u8]) -> Option<&'static Encoding> {
    let head = &bytes[..bytes.len().min(256)];
    let head = String::from_utf8_lossy(head);
    let decl = head.trim_start().strip_prefix("<?xml")?;
    let decl = &decl[..decl.find("?>")?];
    let label = attribute(decl, "encoding")?;
    Encoding::for_label(label.as_bytes())
}

fn charset_of(content_type: &str) -> Option<&'static Encoding> {
    content_type.split(';').skip(1).find_map(|param| {
        let (key, value) = param.split_once('=')?;
        if key.trim().eq_ignore_ascii_case("charset") {
            Encoding::for_label(value.trim().trim_matches('"').as_bytes())
        } else {
            None
        }
    })
}

/// The value of `name="..."` or `name='...'` in an XML declaration or start tag.
fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = tag;
    while let Some(at) = rest.find(name) {
        let after = rest[at + name.len()..].trim_start();
        let preceded_by_space = rest[..at].ends_with(|c: char| c.is_whitespace());
        if preceded_by_space && let Some(value) = after.strip_prefix('=') {
            let value = value.trim_start();
            let quote = value.chars().next()?;
            if quote == '"' || quote == '\'' {
                let value = &value[1..];
                return value.find(quote).map(|end| &value[..end]);
            }
        }
        rest = &rest[at + name.len()..];
    }
    None
}

/// Rewrites `encoding="..."` in a leading XML declaration to UTF-8; `None` if nothing to do.
fn rewrite_declaration(text: &str) -> Option<String> {
    let body = text.strip_prefix('\u{feff}').unwrap_or(text);
    let start = body.len() - body.trim_start().len();
    if !body[start..].starts_with("<?xml") {
        return (body.len() != text.len()).then(|| body.to_string());
    }
    let end = start + body[start..].find("?>")?;
    let decl = &body[start..end];
    let label = attribute(decl, "encoding")?;
    if label.eq_ignore_ascii_case("utf-8") {
        return (body.len() != text.len()).then(|| body.to_string());
    }
    let label_at = start + decl.find(label)?;
    let mut fixed = String::with_capacity(body.len());
    fixed.push_str(&body[..label_at]);
    fixed.push_str("UTF-8");
    fixed.push_str(&body[label_at + label.len()..]);
    Some(fixed)
}

// ---- repairs for feeds feed-rs refuses ----

/// Fixes the small faults that make feed-rs reject a whole feed. Returns the text unchanged when
/// none applies.
fn repair(text: &str) -> String {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        return repair_json_feed(text);
    }
    let text = fix_rss_version(text);
    escape_stray_ampersands(&text)
}

/// `<rss>` without a version, or with one feed-rs does not know, is read as RSS 2.0.
fn fix_rss_version(text: &str) -> String {
    let Some(start) = text.find("<rss") else {
        return text.to_string();
    };
    let Some(len) = text[start..].find('>') else {
        return text.to_string();
    };
    let tag = &text[start..start + len];
    if !tag[4..].starts_with(|c: char| c.is_whitespace() || c == '>') && tag.len() > 4 {
        return text.to_string();
    }
    let known = matches!(
        attribute(tag, "version"),
        Some("0.91" | "0.92" | "0.93" | "0.94" | "2.0")
    );
    if known {
        return text.to_string();
    }
    let mut fixed_tag = String::from("<rss version=\"2.0\"");
    let mut rest = &tag[4..];
    if let Some(v) = rest.find("version") {
        // Drop the old attribute: `version="…"` up to its closing quote.
        let after = &rest[v..];
        if let Some(open) = after.find(['"', '\'']) {
            let quote = after.as_bytes()[open] as char;
            if let Some(close) = after[open + 1..].find(quote) {
                let cut_end = v + open + 1 + close + 1;
                fixed_tag.push_str(&rest[..v]);
                rest = &rest[cut_end..];
            }
        }
    }
    fixed_tag.push_str(rest);
    format!("{}{}{}", &text[..start], fixed_tag, &text[start + len..])
}

/// `&` not starting an XML entity becomes `&amp;`; HTML named entities become numeric ones.
fn escape_stray_ampersands(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let entity_len = after.find(';').filter(|&n| n > 0 && n <= 32).filter(|&n| {
            after[..n]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '#')
        });
        match entity_len {
            Some(n) => {
                let name = &after[..n];
                if name.starts_with('#') || matches!(name, "amp" | "lt" | "gt" | "quot" | "apos") {
                    out.push('&');
                    out.push_str(name);
                    out.push(';');
                } else if let Some(c) = named_entity(name) {
                    out.push_str(&format!("&#{};", c as u32));
                } else {
                    out.push_str("&amp;");
                    out.push_str(name);
                    out.push(';');
                }
                rest = &after[n + 1..];
            }
            None => {
                out.push_str("&amp;");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// A JSON Feed whose `version` is not the spec URL feed-rs expects.
fn repair_json_feed(text: &str) -> String {
    let Ok(mut value) = serde_json::from_str::<serde_json::Value>(text) else {
        return text.to_string();
    };
    let Some(object) = value.as_object_mut() else {
        return text.to_string();
    };
    let version = object
        .get("version")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_string();
    let fixed = if version.contains("1.1") {
        "https://jsonfeed.org/version/1.1"
    } else {
        "https://jsonfeed.org/version/1"
    };
    object.insert("version".into(), fixed.into());
    if let Some(items) = object.get_mut("items").and_then(|i| i.as_array_mut()) {
        for item in items {
            // `"tags": "a"` where the spec says an array.
            if let Some(tags) = item.get_mut("tags")
                && let Some(tag) = tags.as_str()
            {
                *tags = serde_json::Value::Array(vec![tag.into()]);
            }
        }
    }
    value.to_string()
}

// ---- feed-rs model -> Article ----

fn convert(feed: feed_rs::model::Feed) -> ParsedFeed {
    let link = pick_link(&feed.links);
    ParsedFeed {
        title: feed
            .title
            .as_ref()
            .map(|t| html_to_text(&t.content))
            .unwrap_or_default(),
        link,
        articles: feed.entries.into_iter().map(convert_entry).collect(),
    }
}

fn convert_entry(entry: feed_rs::model::Entry) -> Article {
    let guid = Some(entry.id.trim().to_string()).filter(|id| !id.is_empty());
    let link = pick_link(&entry.links).or_else(|| {
        // A permalink guid is the article's address when <link> is missing.
        guid.as_ref()
            .filter(|g| g.starts_with("http://") || g.starts_with("https://"))
            .cloned()
    });
    let summary = entry
        .summary
        .as_ref()
        .map(|s| html_to_text(&s.content))
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
        .map(|t| html_to_text(&t.content))
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
    }
}

/// The article's own page: an `alternate` (or unlabelled) link, else the first one.
fn pick_link(links: &[feed_rs::model::Link]) -> Option<String> {
    links
        .iter()
        .find(|l| matches!(l.rel.as_deref(), None | Some("alternate")))
        .or_else(|| links.first())
        .map(|l| l.href.trim().to_string())
        .filter(|h| !h.is_empty())
}

// ---- markup -> text ----

/// Plain text from HTML: tags dropped (attribute values are not text), `script` and `style`
/// dropped with their content, entities decoded, whitespace collapsed. Markup that was escaped
/// once more (`&lt;b&gt;` in an RSS title) is treated the same way.
pub fn html_to_text(html: &str) -> String {
    let mut text = strip_tags(html);
    text = decode_entities(&text);
    if text.contains('<') && text.contains('>') && looks_like_markup(&text) {
        text = decode_entities(&strip_tags(&text));
    } else if text.contains('&') {
        // Double-escaped entities (`&amp;eacute;`).
        text = decode_entities(&text);
    }
    collapse_whitespace(&text)
}

fn looks_like_markup(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes
        .windows(2)
        .any(|w| w[0] == b'<' && (w[1].is_ascii_alphabetic() || w[1] == b'/' || w[1] == b'!'))
}

fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let starts_tag = after
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '/' || c == '!' || c == '?');
        if !starts_tag {
            out.push('<');
            rest = after;
            continue;
        }
        if let Some(comment) = after.strip_prefix("!--") {
            rest = comment.find("-->").map_or("", |end| &comment[end + 3..]);
            continue;
        }
        let Some(close) = after.find('>') else {
            // An unclosed `<` at the end is text, not a tag.
            out.push('<');
            rest = after;
            continue;
        };
        let tag = &after[..close];
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        rest = &after[close + 1..];
        if !tag.starts_with('/') && (name == "script" || name == "style") {
            let end_tag = format!("</{name}");
            let lower = rest.to_ascii_lowercase();
            rest = match lower.find(&end_tag) {
                Some(end) => rest[end..].find('>').map_or("", |gt| &rest[end + gt + 1..]),
                None => "",
            };
        }
        // Block-level tags separate words; inline ones (b, i, a, span) do not.
        if matches!(
            name.as_str(),
            "br" | "p"
                | "div"
                | "li"
                | "ul"
                | "ol"
                | "tr"
                | "td"
                | "th"
                | "h1"
                | "h2"
                | "h3"
                | "h4"
                | "h5"
                | "h6"
                | "blockquote"
                | "hr"
                | "img"
                | "table"
                | "figure"
                | "figcaption"
                | "section"
                | "article"
                | "header"
                | "footer"
                | "pre"
        ) {
            out.push(' ');
        }
    }
    out.push_str(rest);
    out
}

/// Decodes `&name;`, `&#123;` and `&#x7B;`; anything unknown is left as written.
pub fn decode_entities(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let decoded = after.find(';').filter(|&n| n > 0 && n <= 32).and_then(|n| {
            let name = &after[..n];
            let c = if let Some(num) = name.strip_prefix('#') {
                let code = match num.strip_prefix(['x', 'X']) {
                    Some(hex) => u32::from_str_radix(hex, 16).ok(),
                    None => num.parse().ok(),
                };
                code.and_then(char::from_u32)
            } else {
                named_entity(name)
            };
            c.map(|c| (c, n))
        });
        match decoded {
            Some((c, n)) => {
                out.push(c);
                rest = &after[n + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The named entities news feeds actually use (XML's five, Latin-1, and common punctuation).
fn named_entity(name: &str) -> Option<char> {
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => '\u{a0}',
        "ndash" => '–',
        "mdash" => '—',
        "lsquo" => '‘',
        "rsquo" => '’',
        "sbquo" => '‚',
        "ldquo" => '“',
        "rdquo" => '”',
        "bdquo" => '„',
        "laquo" => '«',
        "raquo" => '»',
        "lsaquo" => '‹',
        "rsaquo" => '›',
        "hellip" => '…',
        "bull" => '•',
        "middot" => '·',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        "deg" => '°',
        "euro" => '€',
        "pound" => '£',
        "yen" => '¥',
        "cent" => '¢',
        "sect" => '§',
        "para" => '¶',
        "times" => '×',
        "divide" => '÷',
        "plusmn" => '±',
        "iexcl" => '¡',
        "iquest" => '¿',
        "shy" => '\u{ad}',
        "zwnj" => '\u{200c}',
        "zwj" => '\u{200d}',
        "thinsp" => '\u{2009}',
        "ensp" => '\u{2002}',
        "emsp" => '\u{2003}',
        "dagger" => '†',
        "prime" => '′',
        "Prime" => '″',
        "frac12" => '½',
        "frac14" => '¼',
        "frac34" => '¾',
        "sup2" => '²',
        "sup3" => '³',
        "micro" => 'µ',
        "ordf" => 'ª',
        "ordm" => 'º',
        "szlig" => 'ß',
        _ => return latin1_letter(name),
    })
}

/// `&eacute;`, `&Uuml;`, `&ccedil;` …: a base letter plus an accent name.
fn latin1_letter(name: &str) -> Option<char> {
    const ACCENTS: &[(&str, [char; 2], &str)] = &[
        ("grave", ['\u{300}', '\u{300}'], "aeiouAEIOU"),
        ("acute", ['\u{301}', '\u{301}'], "aeiouyAEIOUY"),
        ("circ", ['\u{302}', '\u{302}'], "aeiouAEIOU"),
        ("tilde", ['\u{303}', '\u{303}'], "anoANO"),
        ("uml", ['\u{308}', '\u{308}'], "aeiouyAEIOUY"),
        ("ring", ['\u{30a}', '\u{30a}'], "aA"),
        ("cedil", ['\u{327}', '\u{327}'], "cC"),
    ];
    let mut chars = name.chars();
    let base = chars.next()?;
    let accent = chars.as_str();
    let special = match name {
        "aelig" => Some('æ'),
        "AElig" => Some('Æ'),
        "oslash" => Some('ø'),
        "Oslash" => Some('Ø'),
        "eth" => Some('ð'),
        "ETH" => Some('Ð'),
        "thorn" => Some('þ'),
        "THORN" => Some('Þ'),
        _ => None,
    };
    if special.is_some() {
        return special;
    }
    let (_, marks, bases) = ACCENTS.iter().find(|(a, _, _)| *a == accent)?;
    if !bases.contains(base) {
        return None;
    }
    use unicode_normalization::UnicodeNormalization;
    let composed: String = [base, marks[0]].iter().collect::<String>().nfc().collect();
    let mut composed = composed.chars();
    let c = composed.next()?;
    composed.next().is_none().then_some(c)
}

fn collapse_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split(|c: char| c.is_whitespace()) {
        if word.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
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
        assert_eq!(
            html_to_text("a &lt;b&gt;bold&lt;/b&gt; move"),
            "a bold move"
        );
        assert_eq!(html_to_text("AT&T 3 < 4"), "AT&T 3 < 4");
        assert_eq!(html_to_text("caf&amp;eacute;"), "café");
    }
}

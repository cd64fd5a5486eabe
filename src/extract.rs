//! An article's web page -> its main text, for `full_text`: the readable part of the page
//! (dom_smoothie, a port of Readability.js, scores the blocks of the page by their text, commas
//! and link density), without navigation, ads, comments or cookie banners. Plain functions over
//! bytes and strings; the fetching is in [`crate::fulltext`].

use std::borrow::Cow;

use dom_smoothie::{Config, Readability, TextMode};
use encoding_rs::Encoding;

use crate::parse::Article;

/// Below this many characters, an entry's text is a teaser for `full_text = "auto"`: a lead or
/// two, not an article.
pub const TEASER_CHARS: usize = 600;

/// Elements read from one page at most: a page past this is not an article, and scoring it
/// would only cost CPU.
const MAX_ELEMENTS: usize = 50_000;

/// Blocks that are never the article but sit inside it, where Readability keeps them: paywall
/// and subscription prompts, newsletter sign-ups, cookie and consent notices.
const NOT_ARTICLE: &str = "[class*=paywall], [id*=paywall], [class*=regwall], [id*=regwall], \
     [class*=subscribe], [id*=subscribe], [class*=subscription], [class*=newsletter], \
     [id*=newsletter], [class*=cookie], [id*=cookie], [class*=consent], [id*=consent]";

/// Endings that say "there is more on the site", whatever the length before them.
const MORE_MARKERS: &[&str] = &[
    "…",
    "...",
    "[…]",
    "[...]",
    "read more",
    "continue reading",
    "read the full story",
    "read the full article",
];

/// Why a page gave no text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    #[error("not an HTML page ({0})")]
    NotHtml(String),
    #[error("no readable text on the page")]
    NoText,
}

/// Whether an entry carries only a teaser: no content beyond a short summary, or a text that
/// ends by pointing to the site.
pub fn is_teaser(article: &Article) -> bool {
    let text = if article.content.trim().is_empty() {
        article.summary.trim()
    } else {
        article.content.trim()
    };
    let lower = text.to_lowercase();
    let ending = lower.trim_end();
    text.chars().count() < TEASER_CHARS || MORE_MARKERS.iter().any(|m| ending.ends_with(m))
}

/// Whether the page's text says more than the entry already does: a page that yields less
/// (a paywall stub, a consent page) leaves the entry as it is.
pub fn adds_to(article: &Article, text: &str) -> bool {
    let have = article
        .content
        .chars()
        .count()
        .max(article.summary.chars().count());
    text.chars().count() > have
}

/// The main text of a fetched page, words separated by single spaces as the feed's own text
/// is. `content_type` is the HTTP header (its media type and charset); `url` is where the page
/// came from, for Readability's link handling.
pub fn page_text(
    bytes: &[u8],
    content_type: Option<&str>,
    url: Option<&str>,
) -> Result<String, ExtractError> {
    if let Some(kind) = content_type.map(media_type).filter(|t| !is_html_type(t)) {
        return Err(ExtractError::NotHtml(kind));
    }
    let html = decode(bytes, content_type);
    if !looks_like_html(&html) {
        return Err(ExtractError::NotHtml("no markup".into()));
    }
    main_text(&html, url).ok_or(ExtractError::NoText)
}

/// The main text of an HTML document; `None` when Readability finds no article in it.
pub fn main_text(html: &str, url: Option<&str>) -> Option<String> {
    let config = Config {
        text_mode: TextMode::Formatted,
        max_elements_to_parse: MAX_ELEMENTS,
        ..Config::default()
    };
    let mut readability = Readability::new(html, url, Some(config)).ok()?;
    readability.doc.select(NOT_ARTICLE).remove();
    let article = readability.parse().ok()?;
    let text = collapse(&article.text_content);
    (!text.is_empty()).then_some(text)
}

/// Words separated by single spaces.
fn collapse(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// `text/html; charset=utf-8` -> `text/html`.
fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// HTML, or a type servers give HTML when misconfigured (`text/plain` is not one: it is text
/// with no structure to score).
fn is_html_type(media_type: &str) -> bool {
    matches!(
        media_type,
        "text/html" | "application/xhtml+xml" | "application/octet-stream" | ""
    )
}

/// A body is HTML only if it starts like markup (a PDF or an image served as
/// `application/octet-stream` does not).
fn looks_like_html(text: &str) -> bool {
    text.trim_start_matches('\u{feff}')
        .trim_start()
        .starts_with('<')
}

/// Page bytes -> text: a BOM, then the HTTP charset, then valid UTF-8 as is, then a
/// `<meta charset>` near the top, then a detector.
pub fn decode<'a>(bytes: &'a [u8], content_type: Option<&str>) -> Cow<'a, str> {
    let encoding = Encoding::for_bom(bytes)
        .map(|(encoding, _)| encoding)
        .or_else(|| content_type.and_then(charset_label).and_then(label))
        .or_else(|| {
            std::str::from_utf8(bytes)
                .is_ok()
                .then_some(encoding_rs::UTF_8)
        })
        .or_else(|| meta_charset(bytes))
        .unwrap_or_else(|| {
            let mut detector =
                chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Allow);
            detector.feed(bytes, true);
            detector.guess(None, chardetng::Utf8Detection::Allow)
        });
    let (text, _, _) = encoding.decode(bytes);
    text
}

fn label(name: &str) -> Option<&'static Encoding> {
    Encoding::for_label(name.trim().trim_matches(['"', '\'']).as_bytes())
}

fn charset_label(content_type: &str) -> Option<&str> {
    content_type.split(';').skip(1).find_map(|param| {
        let (key, value) = param.split_once('=')?;
        key.trim().eq_ignore_ascii_case("charset").then_some(value)
    })
}

/// `<meta charset="…">` or `<meta http-equiv="Content-Type" content="…; charset=…">` in the
/// first kilobytes, where the HTML standard says to look.
fn meta_charset(bytes: &[u8]) -> Option<&'static Encoding> {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]).to_ascii_lowercase();
    let at = head.find("charset=")? + "charset=".len();
    let value: String = head[at..]
        .trim_start_matches(['"', '\''])
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.'))
        .collect();
    label(&value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/data/pages/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn text_of(name: &str, content_type: &str) -> String {
        page_text(
            &page(name),
            Some(content_type),
            Some("https://news.example/story"),
        )
        .unwrap()
    }

    #[test]
    fn a_news_page_gives_its_story_without_navigation_ads_or_comments() {
        let text = text_of("news-article.html", "text/html; charset=utf-8");
        assert!(
            text.starts_with("The city council voted nine to four"),
            "{text}"
        );
        assert!(text.contains("seagrass meadows at the mouth of the bay"));
        assert!(text.ends_with("over the coming month."), "{text}");
        for junk in [
            "Politics",
            "Refinance",
            "Bluefin",
            "Most read",
            "Ferry workers",
            "zeppelin",
            "morning briefing",
            "All rights reserved",
            "gtag",
        ] {
            assert!(!text.contains(junk), "`{junk}` in {text}");
        }
        // Words separated by single spaces, as the feed's own text is.
        assert!(!text.contains("  ") && !text.contains('\n'));
    }

    #[test]
    fn a_cookie_wall_is_not_the_article() {
        let text = text_of("cookie-wall.html", "text/html; charset=utf-8");
        assert!(
            text.starts_with("The national rail regulator has fined"),
            "{text}"
        );
        assert!(text.contains("renew the franchise"));
        for junk in [
            "privacy",
            "843 partners",
            "Accept all",
            "Trending",
            "Metro Daily app",
        ] {
            assert!(!text.contains(junk), "`{junk}` in {text}");
        }
    }

    #[test]
    fn a_paywall_stub_gives_only_the_free_lead() {
        let text = text_of("paywall.html", "text/html");
        assert!(text.starts_with("Three years after the worst"), "{text}");
        assert!(
            !text.contains("Subscribe") && !text.contains("Log in"),
            "{text}"
        );
        // The lead is what a feed's teaser carries already: the page adds nothing to it.
        let teaser = Article {
            summary: text.clone(),
            ..Article::default()
        };
        assert!(!adds_to(&teaser, &text));
    }

    #[test]
    fn a_blog_post_is_read_without_its_comments() {
        let text = text_of("blog-comments.html", "text/html");
        assert!(text.starts_with("When we opened the bakery"), "{text}");
        assert!(text.ends_with("goes away."), "{text}");
        for junk in [
            "Gareth",
            "drive over",
            "marketing story",
            "Leave a Reply",
            "stollen",
        ] {
            assert!(!text.contains(junk), "`{junk}` in {text}");
        }
    }

    #[test]
    fn a_page_in_a_legacy_charset_is_decoded_by_its_meta_tag() {
        // Served with no charset in the header: the `<meta http-equiv>` names windows-1251.
        let text = text_of("windows-1251.html", "text/html");
        assert!(text.starts_with("Мэрия Новосибирска утвердила"), "{text}");
        assert!(text.contains("Толмачёво"));
        assert!(
            !text.contains("Реклама") && !text.contains("Гость"),
            "{text}"
        );
    }

    #[test]
    fn what_is_not_html_gives_no_text() {
        let pdf = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj";
        assert_eq!(
            page_text(pdf, Some("application/pdf"), None),
            Err(ExtractError::NotHtml("application/pdf".into()))
        );
        assert_eq!(
            page_text(pdf, Some("application/octet-stream"), None),
            Err(ExtractError::NotHtml("no markup".into()))
        );
        assert!(matches!(
            page_text(b"{\"a\": 1}", Some("application/json"), None),
            Err(ExtractError::NotHtml(_))
        ));
        assert_eq!(
            page_text(b"<html><body></body></html>", Some("text/html"), None),
            Err(ExtractError::NoText)
        );
    }

    #[test]
    fn a_short_summary_or_one_pointing_to_the_site_is_a_teaser() {
        let short = Article {
            summary: "The council voted on Monday.".into(),
            ..Article::default()
        };
        assert!(is_teaser(&short));
        let long = "The council voted on Monday to build a plant. ".repeat(20);
        let full = Article {
            summary: "Lead.".into(),
            content: long.clone(),
            ..Article::default()
        };
        assert!(!is_teaser(&full));
        let pointing = Article {
            summary: format!("{long} Continue reading"),
            ..Article::default()
        };
        assert!(is_teaser(&pointing));
        let cut = Article {
            summary: format!("{long}and then […]"),
            ..Article::default()
        };
        assert!(is_teaser(&cut));
    }
}

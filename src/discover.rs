//! Finding the feeds an HTML page links to (`<link rel="alternate" type="application/rss+xml">`),
//! so that pointing feedwatch at a site's home page gives a useful answer instead of a parse
//! error. Pure: takes the page text and the page's own URL.

use url::Url;

use crate::html::{attr, start_tags, tag_name};

/// A feed advertised by a web page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedLink {
    /// Absolute URL of the feed.
    pub url: String,
    /// The link's `title` attribute, if any.
    pub title: Option<String>,
    /// `rss`, `atom` or `json`.
    pub kind: &'static str,
}

/// The feeds `html` links to, in document order, without duplicates. Relative hrefs are resolved
/// against `<base href>` if present, else `page_url`.
pub fn feed_links(html: &str, page_url: &str) -> Vec<FeedLink> {
    let base = Url::parse(page_url).ok();
    let mut base = base;
    let mut found: Vec<FeedLink> = Vec::new();
    for tag in start_tags(html) {
        let name = tag_name(tag);
        if name == "base" {
            if let Some(href) = attr(tag, "href") {
                base = resolve(base.as_ref(), &href).and_then(|u| Url::parse(&u).ok());
            }
            continue;
        }
        if name != "link" {
            continue;
        }
        let rel = attr(tag, "rel").unwrap_or_default().to_ascii_lowercase();
        if !rel.split_whitespace().any(|r| r == "alternate") {
            continue;
        }
        let media_type = attr(tag, "type").unwrap_or_default().to_ascii_lowercase();
        let kind = match media_type.split(';').next().unwrap_or("").trim() {
            "application/rss+xml" | "application/rdf+xml" => "rss",
            "application/atom+xml" => "atom",
            "application/feed+json" | "application/json" => "json",
            _ => continue,
        };
        let Some(href) = attr(tag, "href") else {
            continue;
        };
        let Some(url) = resolve(base.as_ref(), &href) else {
            continue;
        };
        if found.iter().any(|f| f.url == url) {
            continue;
        }
        found.push(FeedLink {
            url,
            title: attr(tag, "title").filter(|t| !t.trim().is_empty()),
            kind,
        });
    }
    found
}

fn resolve(base: Option<&Url>, href: &str) -> Option<String> {
    let href = href.trim();
    if href.is_empty() {
        return None;
    }
    match base {
        Some(base) => base.join(href).ok().map(|u| u.to_string()),
        None => Url::parse(href).ok().map(|u| u.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"<!DOCTYPE html><html><head>
        <title>News</title>
        <!-- <link rel="alternate" type="application/rss+xml" href="/commented.xml"> -->
        <link rel="stylesheet" href="/style.css">
        <link rel="alternate" type="application/rss+xml" title="World news" href="/world/rss.xml">
        <LINK REL="alternate" TYPE="application/atom+xml" HREF='https://cdn.example/atom?a=1&amp;b=2'>
        <link rel="alternate" type="application/rss+xml" href="/world/rss.xml">
        <link rel="alternate" hreflang="de" href="/de/">
        </head><body><a href="/feed.xml">not a link tag</a></body></html>"#;

    #[test]
    fn finds_advertised_feeds_resolved_and_deduplicated() {
        let links = feed_links(PAGE, "https://news.example/section/");
        assert_eq!(
            links,
            [
                FeedLink {
                    url: "https://news.example/world/rss.xml".into(),
                    title: Some("World news".into()),
                    kind: "rss",
                },
                FeedLink {
                    url: "https://cdn.example/atom?a=1&b=2".into(),
                    title: None,
                    kind: "atom",
                },
            ]
        );
    }

    #[test]
    fn base_href_changes_resolution() {
        let html = r#"<base href="https://other.example/x/"><link rel="alternate" type="application/feed+json" href="feed.json">"#;
        let links = feed_links(html, "https://news.example/");
        assert_eq!(links[0].url, "https://other.example/x/feed.json");
        assert_eq!(links[0].kind, "json");
    }

    #[test]
    fn page_without_feeds_gives_nothing() {
        assert!(feed_links("<html><body>hi</body></html>", "https://x.org/").is_empty());
        assert!(feed_links("", "not a url").is_empty());
    }
}

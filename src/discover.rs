//! Finding the feeds an HTML page links to (`<link rel="alternate" type="application/rss+xml">`),
//! so that pointing feedwatch at a site's home page gives a useful answer instead of a parse
//! error, and where a site that links none may keep one ([`well_known_feeds`]). Pure: takes the
//! page text and the page's own URL; fetching the candidates is the caller's business.

use url::Url;

use crate::html::start_tags;

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
        if tag.name == "base" {
            if let Some(href) = tag.attr("href") {
                base = resolve(base.as_ref(), href).and_then(|u| Url::parse(&u).ok());
            }
            continue;
        }
        if tag.name != "link" {
            continue;
        }
        let rel = tag.attr("rel").unwrap_or_default().to_ascii_lowercase();
        if !rel.split_whitespace().any(|r| r == "alternate") {
            continue;
        }
        let media_type = tag.attr("type").unwrap_or_default().to_ascii_lowercase();
        let kind = match media_type.split(';').next().unwrap_or("").trim() {
            "application/rss+xml" | "application/rdf+xml" => "rss",
            "application/atom+xml" => "atom",
            "application/feed+json" | "application/json" => "json",
            _ => continue,
        };
        let Some(url) = tag
            .attr("href")
            .and_then(|href| resolve(base.as_ref(), href))
        else {
            continue;
        };
        if found.iter().any(|f| f.url == url) {
            continue;
        }
        found.push(FeedLink {
            url,
            title: tag
                .attr("title")
                .filter(|t| !t.trim().is_empty())
                .map(str::to_string),
            kind,
        });
    }
    found
}

/// Where sites keep a feed they do not link, in the order tried (WordPress, Jekyll, Hugo and
/// most static site generators use one of these).
pub const WELL_KNOWN_PATHS: [&str; 5] = ["feed", "rss.xml", "atom.xml", "index.xml", "feed.xml"];

/// The addresses to try for a page that links no feed: [`WELL_KNOWN_PATHS`] beside the page
/// (a blog under `/blog/` keeps its feed there), then at the site's root. Only for http(s)
/// pages; never the page itself.
pub fn well_known_feeds(page_url: &str) -> Vec<String> {
    let Ok(page) = Url::parse(page_url) else {
        return Vec::new();
    };
    if !matches!(page.scheme(), "http" | "https") {
        return Vec::new();
    }
    let mut candidates: Vec<String> = Vec::new();
    for folder in [page.join("./"), page.join("/")].into_iter().flatten() {
        for path in WELL_KNOWN_PATHS {
            let Ok(candidate) = folder.join(path) else {
                continue;
            };
            let candidate = candidate.to_string();
            if candidate != page.as_str() && !candidates.contains(&candidate) {
                candidates.push(candidate);
            }
        }
    }
    candidates
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
    fn minified_pages_with_unquoted_values_are_read_whole() {
        let html = "<!doctype html><html><head><meta charset=utf-8><link rel=stylesheet \
                    href=/s.css><link rel=alternate type=application/rss+xml \
                    href=https://news.example/feeds/all.xml?x=1&y=2><link rel=\"alternate\" \
                    type=application/atom+xml href=/feeds/atom.xml title=Atom><script>var s='\
                    <link rel=alternate type=application/rss+xml href=/scripted.xml>'</script>\
                    </head><body>";
        let links = feed_links(html, "https://news.example/");
        let urls: Vec<&str> = links.iter().map(|l| l.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "https://news.example/feeds/all.xml?x=1&y=2",
                "https://news.example/feeds/atom.xml"
            ]
        );
        assert_eq!(links[1].title.as_deref(), Some("Atom"));
    }

    #[test]
    fn well_known_feeds_are_beside_the_page_then_at_the_root() {
        assert_eq!(
            well_known_feeds("https://x.example/blog/?page=1"),
            [
                "https://x.example/blog/feed",
                "https://x.example/blog/rss.xml",
                "https://x.example/blog/atom.xml",
                "https://x.example/blog/index.xml",
                "https://x.example/blog/feed.xml",
                "https://x.example/feed",
                "https://x.example/rss.xml",
                "https://x.example/atom.xml",
                "https://x.example/index.xml",
                "https://x.example/feed.xml",
            ]
        );
        assert_eq!(well_known_feeds("https://x.example/").len(), 5);
        assert!(
            !well_known_feeds("https://x.example/feed")
                .contains(&"https://x.example/feed".to_string())
        );
        assert!(well_known_feeds("file:///srv/index.html").is_empty());
        assert!(well_known_feeds("not a url").is_empty());
    }

    #[test]
    fn page_without_feeds_gives_nothing() {
        assert!(feed_links("<html><body>hi</body></html>", "https://x.org/").is_empty());
        assert!(feed_links("", "not a url").is_empty());
    }
}

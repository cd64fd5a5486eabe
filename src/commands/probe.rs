//! Looking at an address before it goes into the config: is it a feed (and what is in it), or
//! a web page that links to feeds? Shared by `feed add` and `import-opml`.

use anyhow::{Result, anyhow};

use feedwatch::config::{self, Config};
use feedwatch::discover::{FeedLink, feed_links, well_known_feeds};
use feedwatch::fetch::{Fetched, Fetcher, Limits, RequestOptions, Validators};
use feedwatch::parse::{decode, parse};

/// What an address turned out to be.
pub enum Probe {
    Feed(FeedSummary),
    /// A web page, with the feeds it advertises (at least one).
    Page(Vec<FeedLink>),
}

pub struct FeedSummary {
    pub title: String,
    pub items: usize,
}

/// Each well-known feed address of a site is given this long, all of them together
/// [`WELL_KNOWN_DEADLINE`]: a site that stalls makes `feed add` give up, not hang.
const WELL_KNOWN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
const WELL_KNOWN_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// Fetches and parses `url` once; a page that is not a feed is searched for feed links. With
/// `guess`, an HTML page that links none has its site's well-known feed addresses tried.
pub async fn probe(fetcher: &Fetcher, url: &str, guess: bool) -> Result<Probe> {
    let fetched = fetcher
        .fetch(url, &Validators::default(), config::DEFAULT_MAX_BODY)
        .await?;
    let Fetched::Body(body) = fetched else {
        return Err(anyhow!(
            "{url}: the server answered 304 Not Modified to an unconditional request"
        ));
    };
    match parse(
        &body.bytes,
        body.content_type.as_deref(),
        Some(&body.final_url),
    ) {
        Ok(feed) => Ok(Probe::Feed(FeedSummary {
            title: feed.title,
            items: feed.articles.len(),
        })),
        Err(err) => {
            let html = decode(&body.bytes, body.content_type.as_deref());
            let links = feed_links(&html, &body.final_url);
            if !links.is_empty() {
                return Ok(Probe::Page(links));
            }
            let is_html = body
                .content_type
                .as_deref()
                .is_some_and(|t| t.to_ascii_lowercase().contains("html"))
                || looks_like_html(&html);
            if guess
                && is_html
                && let Some(link) = well_known(fetcher, &body.final_url).await
            {
                return Ok(Probe::Page(vec![link]));
            }
            Err(anyhow!("{url}: {err}"))
        }
    }
}

fn looks_like_html(text: &str) -> bool {
    let head: String = text.trim_start().chars().take(1024).collect();
    let head = head.to_ascii_lowercase();
    head.starts_with("<!doctype html") || head.contains("<html")
}

/// The first of the site's well-known feed addresses that serves a feed. Each is fetched under
/// the usual caps (body size, redirects) and a timeout; one that fails is passed over.
async fn well_known(fetcher: &Fetcher, page_url: &str) -> Option<FeedLink> {
    let limits = Limits {
        max_body: config::DEFAULT_MAX_BODY,
        timeout: WELL_KNOWN_TIMEOUT,
    };
    let search = async {
        for candidate in well_known_feeds(page_url) {
            let fetched = fetcher
                .fetch_limited(
                    &candidate,
                    &Validators::default(),
                    &limits,
                    &RequestOptions::default(),
                )
                .await;
            let Ok(Fetched::Body(body)) = fetched else {
                continue;
            };
            let content_type = body.content_type.as_deref();
            if let Ok(feed) = parse(&body.bytes, content_type, Some(&body.final_url)) {
                return Some(FeedLink {
                    kind: kind_of(&decode(&body.bytes, content_type)),
                    url: body.final_url,
                    title: Some(feed.title).filter(|t| !t.trim().is_empty()),
                });
            }
        }
        None
    };
    tokio::time::timeout(WELL_KNOWN_DEADLINE, search)
        .await
        .ok()
        .flatten()
}

/// `rss`, `atom` or `json`, from how the document begins.
fn kind_of(text: &str) -> &'static str {
    let head: String = text.trim_start().chars().take(1024).collect();
    if head.starts_with('{') {
        "json"
    } else if head.contains("<feed") {
        "atom"
    } else {
        "rss"
    }
}

/// The URL a user typed, as the config would resolve it: http(s) as is, a path from the
/// current folder made absolute.
pub fn typed_url(written: &str) -> Result<String> {
    let cwd =
        std::env::current_dir().map_err(|e| anyhow!("cannot read the current folder: {e}"))?;
    config::feed_url(written, &cwd).map_err(|e| anyhow!(e))
}

/// Whether an address found in a document (an OPML outline, a page's feed link) may be read
/// without the user saying so: only http(s). Such documents come from the internet, and must not
/// make feedwatch read local files and pass their text on to notifiers.
pub fn is_remote(url: &str) -> bool {
    url::Url::parse(url.trim()).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
}

/// The config feed already polling `url`, if any.
pub fn existing<'a>(config: &'a Config, url: &str) -> Option<&'a config::Feed> {
    config.feeds.iter().find(|f| f.url == url)
}

/// A feed name from its title, else from its host, made unique among `taken`.
pub fn unique_name(title: &str, url: &str, taken: &[String]) -> String {
    let base = if title.trim().is_empty() {
        url::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_else(|| url.to_string())
    } else {
        title.split_whitespace().collect::<Vec<_>>().join(" ")
    };
    let mut name = base.clone();
    let mut n = 2;
    while taken.iter().any(|t| t == &name) {
        name = format!("{base} ({n})");
        n += 1;
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_and_https_addresses_are_remote() {
        assert!(is_remote("https://x.org/feed"));
        assert!(is_remote(" HTTP://x.org/ "));
        for local in [
            "file:///etc/passwd",
            "/etc/passwd",
            "feeds/world.xml",
            "../secret.xml",
            "ftp://x.org/feed",
            "javascript:alert(1)",
            "",
        ] {
            assert!(!is_remote(local), "{local}");
        }
    }

    #[test]
    fn unique_name_falls_back_to_the_host_and_avoids_taken_names() {
        assert_eq!(
            unique_name("  World\n News ", "https://x.org/", &[]),
            "World News"
        );
        assert_eq!(unique_name("", "https://x.org/rss", &[]), "x.org");
        let taken = vec!["World".to_string(), "World (2)".to_string()];
        assert_eq!(unique_name("World", "https://x.org/", &taken), "World (3)");
    }
}

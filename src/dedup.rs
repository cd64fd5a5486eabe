//! Article -> a stable identity, so that an article is new exactly once.
//!
//! feed-rs invents a random id for an entry without guid or link, and links come with tracking
//! parameters and scheme/host variants that change between polls. feedwatch therefore owns
//! identity: the feed's guid, else the canonical link, else a hash of the normalised text.

use sha2::{Digest, Sha256};
use url::Url;

use crate::parse::Article;

/// The keys under which an article is remembered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Unique within a feed: `guid:…`, `link:…` or `hash:…`.
    pub id: String,
    /// The link with tracking parameters, scheme, `www.` and trailing slash normalised away.
    pub canonical_link: Option<String>,
}

impl Identity {
    /// The key that says "this story was already alerted for this rule": the canonical link,
    /// which survives a changed guid and reaches across feeds, else the feed-local id.
    pub fn alert_key(&self, feed_url: &str) -> String {
        match &self.canonical_link {
            Some(link) => format!("link:{link}"),
            None => format!("{feed_url} {}", self.id),
        }
    }
}

pub fn identify(article: &Article) -> Identity {
    let canonical_link = article.link.as_deref().and_then(canonical_link);
    let id = if let Some(guid) = &article.guid {
        format!("guid:{guid}")
    } else if let Some(link) = &canonical_link {
        format!("link:{link}")
    } else {
        format!("hash:{}", content_hash(article))
    };
    Identity { id, canonical_link }
}

/// A hash of what a reader sees, for entries with neither guid nor link. Whitespace and case do
/// not count, so re-serialising a feed does not make its entries new.
fn content_hash(article: &Article) -> String {
    let mut hasher = Sha256::new();
    for part in [&article.title, &article.summary, &article.content] {
        let normal: String = part
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase();
        hasher.update(normal.as_bytes());
        hasher.update([0]);
    }
    hex::encode(&hasher.finalize()[..16])
}

/// Query parameters that only track the reader, never select the article.
fn is_tracking_parameter(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.starts_with("utm_")
        || matches!(
            name.as_str(),
            "fbclid"
                | "gclid"
                | "dclid"
                | "msclkid"
                | "mc_cid"
                | "mc_eid"
                | "igshid"
                | "yclid"
                | "_hsenc"
                | "_hsmi"
                | "ref_src"
                | "cmpid"
                | "ocid"
                | "at_medium"
                | "at_campaign"
        )
}

/// `https://www.example.org/a/?utm_source=x#top` and `http://example.org/a` are the same page.
pub fn canonical_link(link: &str) -> Option<String> {
    let link = link.trim();
    plain_canonical_link(link).or_else(|| parsed_canonical_link(link))
}

/// The canonical form of a link the URL parser would leave as it is: `http(s)://`, a lower-case
/// ASCII host name, and a path of characters that are never escaped or rewritten, with no
/// port, query or fragment. Most feeds' links are like this, and the parser costs more than all
/// else that identifies an article; `None` for any other link.
fn plain_canonical_link(link: &str) -> Option<String> {
    let rest = link
        .strip_prefix("https://")
        .or_else(|| link.strip_prefix("http://"))?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    // A last label that starts with a digit could be an IPv4 address in a form the parser
    // rewrites, and `xn--` labels are decoded.
    let plain_label = |label: &str| {
        !label.is_empty()
            && !label.starts_with("xn--")
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    if !host.split('.').all(plain_label)
        || !host
            .rsplit('.')
            .next()
            .is_some_and(|last| last.starts_with(|c: char| c.is_ascii_lowercase()))
    {
        return None;
    }
    // `.` and `..` segments are resolved by the parser; `%` may spell them.
    let plain_path = path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/".contains(&b))
        && !path.split('/').any(|segment| matches!(segment, "." | ".."));
    if !plain_path {
        return None;
    }
    let host = host.strip_prefix("www.").unwrap_or(host);
    let path = match path.trim_end_matches('/') {
        "" => "/",
        trimmed => trimmed,
    };
    Some([host, path].concat())
}

fn parsed_canonical_link(link: &str) -> Option<String> {
    let url = Url::parse(link).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return Some(url.to_string());
    }
    let host = url.host_str()?.to_ascii_lowercase();
    let host = host.strip_prefix("www.").unwrap_or(&host);
    let mut path = url.path().to_string();
    while path.len() > 1 && path.ends_with('/') {
        path.pop();
    }
    let mut params: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !is_tracking_parameter(k))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    params.sort();
    let mut canonical = host.to_string();
    if let Some(port) = url.port() {
        canonical.push_str(&format!(":{port}"));
    }
    canonical.push_str(&path);
    if !params.is_empty() {
        let query: Vec<String> = params
            .iter()
            .map(|(k, v)| {
                if v.is_empty() {
                    k.clone()
                } else {
                    format!("{k}={v}")
                }
            })
            .collect();
        canonical.push('?');
        canonical.push_str(&query.join("&"));
    }
    Some(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn article(guid: Option<&str>, link: Option<&str>, title: &str) -> Article {
        Article {
            guid: guid.map(String::from),
            link: link.map(String::from),
            title: title.into(),
            ..Article::default()
        }
    }

    #[test]
    fn guid_wins_over_link() {
        let a = article(Some("abc"), Some("https://x.org/1"), "t");
        assert_eq!(identify(&a).id, "guid:abc");
    }

    #[test]
    fn link_variants_are_one_article() {
        let variants = [
            "https://www.example.org/news/1/?utm_source=rss&utm_medium=feed",
            "http://example.org/news/1",
            "https://EXAMPLE.org/news/1/?fbclid=xyz#comments",
        ];
        let ids: Vec<_> = variants
            .iter()
            .map(|l| identify(&article(None, Some(l), "t")))
            .collect();
        assert!(ids.iter().all(|i| i == &ids[0]), "{ids:?}");
        assert_eq!(ids[0].id, "link:example.org/news/1");
    }

    #[test]
    fn meaningful_query_parameters_are_kept() {
        assert_eq!(
            canonical_link("https://x.org/article?id=7&utm_campaign=a").unwrap(),
            "x.org/article?id=7"
        );
        assert_ne!(
            canonical_link("https://x.org/a?id=7"),
            canonical_link("https://x.org/a?id=8")
        );
    }

    #[test]
    fn plain_links_skip_the_parser() {
        for (link, canonical) in [
            (
                "https://www.example.org/news/2026/story-1",
                "example.org/news/2026/story-1",
            ),
            ("http://site7.example/story/0/", "site7.example/story/0"),
            ("https://example.org", "example.org/"),
            ("https://example.org//", "example.org/"),
        ] {
            assert_eq!(plain_canonical_link(link).as_deref(), Some(canonical));
            assert_eq!(parsed_canonical_link(link).as_deref(), Some(canonical));
        }
        for link in [
            "https://example.org/a?id=7",
            "https://example.org/a#top",
            "https://Example.org/a",
            "https://example.org:8080/a",
            "https://192.168.0.1/a",
            "https://0x7f.1/a",
            "https://xn--bcher-kva.example/a",
            "https://example.org/a/../b",
            "https://example.org/a%2e%2e/b",
            "https://example.org/a b",
            "https://example.org/ä",
            "https://user@example.org/a",
            "ftp://example.org/a",
        ] {
            assert_eq!(plain_canonical_link(link), None, "{link}");
        }
    }

    proptest::proptest! {
        #[test]
        fn plain_links_get_what_the_parser_gives(
            link in "https?://(www\\.)?[a-zA-Z0-9.:@%_-]{0,12}(/[a-zA-Z0-9._~!$&'()*+,;=:@%?#\\\\ -]{0,8}){0,4}"
        ) {
            if let Some(plain) = plain_canonical_link(&link) {
                proptest::prop_assert_eq!(Some(plain), parsed_canonical_link(&link));
            }
        }
    }

    #[test]
    fn entries_without_guid_or_link_get_a_stable_content_hash() {
        let a = article(None, None, "Breaking  news");
        let b = article(None, None, "breaking news");
        let c = article(None, None, "Other news");
        assert_eq!(identify(&a), identify(&b));
        assert_ne!(identify(&a), identify(&c));
        assert!(identify(&a).id.starts_with("hash:"));
    }

    #[test]
    fn alert_key_prefers_the_canonical_link() {
        let a = identify(&article(Some("g1"), Some("https://x.org/1?utm_x=1"), "t"));
        let b = identify(&article(Some("g2"), Some("http://www.x.org/1/"), "t"));
        assert_eq!(a.alert_key("feedA"), b.alert_key("feedB"));
        let c = identify(&article(Some("g3"), None, "t"));
        assert_eq!(c.alert_key("feedA"), "feedA guid:g3");
    }

    #[test]
    fn entry_without_guid_or_link_has_the_same_identity_on_every_parse() {
        let xml = "<rss version=\"2.0\"><channel><item><title>Same</title><description>text</description></item></channel></rss>";
        let first = crate::parse::parse(xml.as_bytes(), None, None).unwrap();
        let second = crate::parse::parse(xml.as_bytes(), None, None).unwrap();
        let id = |f: &crate::parse::ParsedFeed| identify(&f.articles[0]).id;
        assert_eq!(id(&first), id(&second));
        assert!(id(&first).starts_with("hash:"));
    }
}

//! Article -> a stable identity, so that an article is new exactly once.
//!
//! feed-rs invents a random id for an entry without guid or link, and links come with tracking
//! parameters and scheme/host variants that change between polls. feedwatch therefore owns
//! identity: the feed's guid, else the canonical link, else a hash of the normalised text.

mod link;

use sha2::{Digest, Sha256};

use crate::parse::Article;
pub use link::canonical_link;

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

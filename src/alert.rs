//! What a match becomes: the plain [`Alert`] that is stored in the outbox and that every
//! notifier renders in its own format.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::parse::Article;

/// Summaries in alerts are cut to this many characters: enough to judge, short enough for chat.
const SUMMARY_CHARS: usize = 400;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub rule: String,
    pub feed: FeedRef,
    pub article: ArticleRef,
    /// The rule's terms found in the article, as written in the rule.
    pub matched: Vec<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedRef {
    pub name: String,
    pub url: String,
    pub title: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArticleRef {
    /// feedwatch's stable identity of the article (see `dedup`).
    pub id: String,
    pub title: String,
    pub link: Option<String>,
    pub published: Option<DateTime<Utc>>,
    pub summary: String,
}

impl Alert {
    pub fn new(
        rule: &str,
        feed: FeedRef,
        article: &Article,
        article_id: &str,
        matched: Vec<String>,
        now: DateTime<Utc>,
    ) -> Alert {
        let summary = if article.summary.is_empty() {
            &article.content
        } else {
            &article.summary
        };
        Alert {
            rule: rule.to_string(),
            feed,
            article: ArticleRef {
                id: article_id.to_string(),
                title: article.title.clone(),
                link: article.link.clone(),
                published: article.published,
                summary: truncate(summary, SUMMARY_CHARS),
            },
            matched,
            created_at: now,
        }
    }

    /// The article's title, or a stand-in for the rare untitled entry.
    pub fn title(&self) -> &str {
        if self.article.title.is_empty() {
            "(untitled)"
        } else {
            &self.article.title
        }
    }
}

/// Cuts `text` to at most `max` characters at a word boundary, marking the cut with `…`.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let cut: String = text.chars().take(max).collect();
    let at_word = cut
        .rfind(char::is_whitespace)
        .filter(|&i| i > max / 2)
        .map_or(cut.as_str(), |i| &cut[..i]);
    format!("{}…", at_word.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_cuts_at_a_word() {
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("one two three four", 12), "one two…");
        assert_eq!(truncate("ааааааааааааа", 5), "ааааа…");
    }
}

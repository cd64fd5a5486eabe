//! What a match becomes: the plain [`Alert`] that is stored in the outbox and that every
//! notifier renders in its own format.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::matcher::snippet::{in_view, snippet_ranges, window};
use crate::matcher::{Highlight, field_text};
use crate::parse::{Article, Enclosure};

/// Summaries in alerts are cut to this many characters: enough to judge, short enough for chat.
const SUMMARY_CHARS: usize = 400;
/// About this many characters of text around the matched words.
const SNIPPET_CHARS: usize = 160;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub rule: String,
    pub feed: FeedRef,
    pub article: ArticleRef,
    /// The rule's terms found in the article, as written in the rule.
    pub matched: Vec<String>,
    pub created_at: DateTime<Utc>,
    /// The text around the matched words. Absent in alerts stored before snippets existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snippet: Option<Snippet>,
    /// The story the article is in, with the sources of it seen so far (the article itself
    /// first). Absent in alerts stored before stories existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub story: Option<StoryRef>,
}

/// One story: the same news from one or more feeds (see `story`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoryRef {
    /// Its first article's id in the store (`feedwatch story ID`).
    pub id: i64,
    pub sources: Vec<Source>,
}

/// One article of a story, as an alert lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    /// The feed's name in the config.
    pub feed: String,
    pub title: String,
    pub link: Option<String>,
}

impl StoryRef {
    /// How many outlets beyond the first carry the story.
    pub fn more_outlets(&self) -> usize {
        self.sources.len().saturating_sub(1)
    }
}

impl Alert {
    /// This alert's article as a source of its story.
    pub fn source(&self) -> Source {
        Source {
            feed: self.feed.name.clone(),
            title: self.article.title.clone(),
            link: self.article.link.clone(),
        }
    }

    /// How many outlets beyond this alert's own carry its story.
    pub fn more_outlets(&self) -> usize {
        self.story.as_ref().map_or(0, StoryRef::more_outlets)
    }
}

/// A short piece of the article with the matched words marked, kept as plain text plus
/// ranges so that each format marks and escapes it its own way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snippet {
    /// Which field it is from: `title`, `summary`, `content`, ...
    pub field: String,
    pub text: String,
    /// `[start, end)` of each matched word in `text`, in characters (Unicode scalar values).
    pub highlights: Vec<(usize, usize)>,
}

impl Snippet {
    /// The text in pieces, each with whether it is a matched word.
    pub fn parts(&self) -> Vec<(String, bool)> {
        let chars: Vec<char> = self.text.chars().collect();
        let mut parts = Vec::new();
        let mut at = 0;
        for &(start, end) in &self.highlights {
            let (start, end) = (start.clamp(at, chars.len()), end.min(chars.len()));
            if start >= end {
                continue;
            }
            if start > at {
                parts.push((chars[at..start].iter().collect(), false));
            }
            parts.push((chars[start..end].iter().collect(), true));
            at = end;
        }
        if at < chars.len() {
            parts.push((chars[at..].iter().collect(), false));
        }
        parts
    }

    /// The text with each matched word passed through `mark`, and the rest through `plain`.
    pub fn render(&self, plain: impl Fn(&str) -> String, mark: impl Fn(&str) -> String) -> String {
        self.parts()
            .iter()
            .map(|(text, matched)| if *matched { mark(text) } else { plain(text) })
            .collect()
    }
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
    /// Podcast audio, video, images: what the entry carries, for receivers and templates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub enclosures: Vec<Enclosure>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail: Option<String>,
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
                enclosures: article.enclosures.clone(),
                thumbnail: article.thumbnail.clone(),
            },
            matched,
            created_at: now,
            snippet: None,
            story: None,
        }
    }

    /// Adds the snippet around `highlights` (from `Engine::explain` for this alert's rule):
    /// from the first field other than the title with a match (the title is shown anyway),
    /// else from the title.
    pub fn with_snippet(mut self, article: &Article, highlights: &[Highlight]) -> Alert {
        self.snippet = make_snippet(article, highlights);
        self
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

fn make_snippet(article: &Article, highlights: &[Highlight]) -> Option<Snippet> {
    let (field, ranges) = snippet_ranges(highlights)?;
    let text = field_text(article, field);
    let shown = window(&text, &ranges, SNIPPET_CHARS);
    // Only the shown part is copied, newlines made spaces; highlights count its characters.
    let mut plain = String::with_capacity(shown.len() + 2 * '…'.len_utf8());
    let mut count = 0;
    let mut copy = |plain: &mut String, part: &str| {
        for c in part.chars() {
            plain.push(if matches!(c, '\n' | '\r') { ' ' } else { c });
            count += 1;
        }
        count
    };
    if shown.start > 0 {
        copy(&mut plain, "…");
    }
    let mut at = shown.start;
    let mut marked = Vec::new();
    for range in in_view(&ranges, &shown) {
        let open = copy(&mut plain, &text[at..range.start]);
        let close = copy(&mut plain, &text[range.clone()]);
        marked.push((open, close));
        at = range.end;
    }
    copy(&mut plain, &text[at..shown.end]);
    if shown.end < text.len() {
        copy(&mut plain, "…");
    }
    Some(Snippet {
        field: format!("{field:?}").to_lowercase(),
        text: plain,
        highlights: marked,
    })
}

/// Cuts `text` to at most `max` characters at a word boundary, marking the cut with `…`.
pub fn truncate(text: &str, max: usize) -> String {
    let Some((cut_at, _)) = text.char_indices().nth(max) else {
        return text.to_string();
    };
    let cut = &text[..cut_at];
    let at_word = cut
        .rfind(char::is_whitespace)
        .filter(|&i| i > max / 2)
        .map_or(cut, |i| &cut[..i]);
    format!("{}…", at_word.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matcher::Field;

    fn article(title: &str, summary: &str) -> Article {
        Article {
            title: title.into(),
            summary: summary.into(),
            ..Article::default()
        }
    }

    #[test]
    fn snippet_comes_from_the_matched_field_with_words_in_characters() {
        let a = article("NATO", "Über die NATO\nund die Ukraine sprach man.");
        let start = a.summary.find("NATO").unwrap();
        let highlights = [
            Highlight {
                field: Field::Title,
                range: 0..4,
            },
            Highlight {
                field: Field::Summary,
                range: start..start + 4,
            },
        ];
        let s = make_snippet(&a, &highlights).unwrap();
        assert_eq!(s.field, "summary");
        assert_eq!(s.text, "Über die NATO und die Ukraine sprach man.");
        // Counted in characters: "Über die " is 9 characters, 10 bytes.
        assert_eq!(s.highlights, vec![(9, 13)]);
        assert_eq!(
            s.render(|t| t.to_string(), |t| format!("[{t}]")),
            "Über die [NATO] und die Ukraine sprach man."
        );
        assert_eq!(make_snippet(&a, &[]), None);
    }

    #[test]
    fn snippet_of_a_long_text_counts_its_ellipsis() {
        let summary = format!("{}NATO and{}", "word ".repeat(50), " more".repeat(50));
        let a = article("t", &summary);
        let start = summary.find("NATO").unwrap();
        let highlights = [Highlight {
            field: Field::Summary,
            range: start..start + 4,
        }];
        let s = make_snippet(&a, &highlights).unwrap();
        assert!(
            s.text.starts_with("…word ") && s.text.ends_with('…'),
            "{}",
            s.text
        );
        let marked = s.render(|t| t.to_string(), |t| format!("[{t}]"));
        assert!(marked.contains(" [NATO] and more"), "{marked}");
        // The same text as the marked snippet that `preview` and `search` show.
        let stars = crate::matcher::snippet::snippet(
            &summary,
            std::slice::from_ref(&(start..start + 4)),
            SNIPPET_CHARS,
            crate::matcher::snippet::Marks {
                open: "[",
                close: "]",
            },
        );
        assert_eq!(marked, stars);
    }

    #[test]
    fn old_alerts_without_a_snippet_still_read() {
        let stored = r#"{"rule":"r","feed":{"name":"f","url":"u","title":"t"},
            "article":{"id":"i","title":"T","link":null,"published":null,"summary":""},
            "matched":["x"],"created_at":"2026-01-01T00:00:00Z"}"#;
        let alert: Alert = serde_json::from_str(stored).unwrap();
        assert_eq!(alert.snippet, None);
    }

    #[test]
    fn truncate_cuts_at_a_word() {
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("one two three four", 12), "one two…");
        assert_eq!(truncate("ааааааааааааа", 5), "ааааа…");
    }
}

//! A short piece of text around the matched words, with the words marked, for alerts,
//! `preview`, `backtest` and `search`.

use std::ops::Range;

use super::engine::{Highlight, field_text};
use super::query::Field;
use crate::parse::Article;

/// How matched words are marked: e.g. `("**", "**")`, or terminal escapes.
#[derive(Debug, Clone, Copy)]
pub struct Marks<'a> {
    pub open: &'a str,
    pub close: &'a str,
}

/// About `width` characters of `text` around the first of `ranges` (byte ranges at character
/// boundaries, sorted), with every range in view marked and `…` where the text was cut.
pub fn snippet(text: &str, ranges: &[Range<usize>], width: usize, marks: Marks) -> String {
    let first = ranges.first().map_or(0, |r| r.start.min(text.len()));
    // Start a little before the first match, at a word boundary when there is one nearby.
    let lead = width / 4;
    let before: Vec<(usize, char)> = text[..first].char_indices().collect();
    let mut start = before.len().checked_sub(lead).map_or(0, |i| before[i].0);
    if start > 0
        && let Some(space) = text[start..first].find(char::is_whitespace)
    {
        start += space + 1;
    }
    let end = text[start..]
        .char_indices()
        .nth(width)
        .map_or(text.len(), |(i, _)| start + i);
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    let mut at = start;
    for range in ranges {
        let (from, to) = (range.start.max(at), range.end.min(end));
        if from >= to {
            continue;
        }
        out.push_str(&text[at..from]);
        out.push_str(marks.open);
        out.push_str(&text[from..to]);
        out.push_str(marks.close);
        at = to;
    }
    out.push_str(&text[at..end]);
    if end < text.len() {
        out.push('…');
    }
    out
}

/// Which field of an article a snippet shows, and the ranges to mark in it: the first field
/// other than the title with a match (the title is shown anyway), else the title.
pub fn snippet_ranges(highlights: &[Highlight]) -> Option<(Field, Vec<Range<usize>>)> {
    let field = highlights
        .iter()
        .map(|h| h.field)
        .find(|&f| f != Field::Title)
        .or_else(|| highlights.first().map(|h| h.field))?;
    let ranges = highlights
        .iter()
        .filter(|h| h.field == field)
        .map(|h| h.range.clone())
        .collect();
    Some((field, ranges))
}

/// About `width` characters of the field of `article` that best shows its matched words (see
/// [`snippet_ranges`]), with the words marked; `None` without highlights.
pub fn article_snippet(
    article: &Article,
    highlights: &[Highlight],
    width: usize,
    marks: Marks,
) -> Option<String> {
    let (field, ranges) = snippet_ranges(highlights)?;
    Some(field_snippet(article, field, &ranges, width, marks))
}

/// [`snippet`] of one field of `article`, its newlines made spaces (in place, so the ranges
/// still fit).
pub fn field_snippet(
    article: &Article,
    field: Field,
    ranges: &[Range<usize>],
    width: usize,
    marks: Marks,
) -> String {
    let text = field_text(article, field).replace(['\n', '\r'], " ");
    snippet(&text, ranges, width, marks)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STARS: Marks = Marks {
        open: "**",
        close: "**",
    };

    #[test]
    fn marks_every_match_in_a_short_text() {
        let text = "NATO and Ukraine talk";
        assert_eq!(
            snippet(text, &[0..4, 9..16], 80, STARS),
            "**NATO** and **Ukraine** talk"
        );
    }

    #[test]
    fn long_text_is_cut_around_the_first_match() {
        let text = format!(
            "{} Zelenský spoke {}",
            "word ".repeat(50),
            "more ".repeat(50)
        );
        let start = text.find("Zelenský").unwrap();
        let found = start..start + "Zelenský".len();
        let shown = snippet(&text, std::slice::from_ref(&found), 40, STARS);
        assert!(shown.starts_with('…') && shown.ends_with('…'), "{shown}");
        assert!(shown.contains("**Zelenský** spoke"), "{shown}");
        assert!(shown.chars().count() <= 40 + 2 + 4, "{shown}");
    }

    #[test]
    fn no_ranges_gives_the_start_of_the_text() {
        assert_eq!(snippet("short text", &[], 80, STARS), "short text");
    }
}

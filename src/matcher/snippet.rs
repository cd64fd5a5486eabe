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
    let shown = window(text, ranges, width);
    let mut out = String::new();
    if shown.start > 0 {
        out.push('…');
    }
    let mut at = shown.start;
    for range in in_view(ranges, &shown) {
        out.push_str(&text[at..range.start]);
        out.push_str(marks.open);
        out.push_str(&text[range.clone()]);
        out.push_str(marks.close);
        at = range.end;
    }
    out.push_str(&text[at..shown.end]);
    if shown.end < text.len() {
        out.push('…');
    }
    out
}

/// The byte range of `text` that a snippet of about `width` characters shows: from a little
/// before the first of `ranges`, at a word boundary when there is one nearby.
pub fn window(text: &str, ranges: &[Range<usize>], width: usize) -> Range<usize> {
    let first = ranges.first().map_or(0, |r| r.start.min(text.len()));
    let lead = width / 4;
    let mut start = match lead {
        0 => first,
        _ => text[..first]
            .char_indices()
            .rev()
            .nth(lead - 1)
            .map_or(0, |(i, _)| i),
    };
    if start > 0
        && let Some((i, space)) = text[start..first]
            .char_indices()
            .find(|(_, c)| c.is_whitespace())
    {
        start += i + space.len_utf8();
    }
    let end = text[start..]
        .char_indices()
        .nth(width)
        .map_or(text.len(), |(i, _)| start + i);
    start..end
}

/// The parts of `ranges` (sorted) inside `shown`, each starting where the one before ended at
/// the earliest, so that overlapping ranges are marked once.
pub fn in_view<'r>(
    ranges: &'r [Range<usize>],
    shown: &Range<usize>,
) -> impl Iterator<Item = Range<usize>> + 'r {
    let mut at = shown.start;
    let end = shown.end;
    ranges.iter().filter_map(move |range| {
        let (from, to) = (range.start.max(at), range.end.min(end));
        if from >= to {
            return None;
        }
        at = to;
        Some(from..to)
    })
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
    fn the_word_boundary_may_be_any_whitespace() {
        let text = format!("{}\u{a0}NATO", "é".repeat(30));
        let at = text.find("NATO").unwrap();
        let shown = snippet(&text, std::slice::from_ref(&(at..at + 4)), 40, STARS);
        assert_eq!(shown, "…**NATO**");
    }

    #[test]
    fn no_ranges_gives_the_start_of_the_text() {
        assert_eq!(snippet("short text", &[], 80, STARS), "short text");
    }
}

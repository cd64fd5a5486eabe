//! Comments, CDATA sections and processing instructions: what is inside them is text, or
//! nothing, to a parser. A repair that looks for tags must not find them there, nor rewrite
//! what is there (`<!-- <item> -->` between two items is no third item).

use std::collections::HashMap;
use std::ops::Range;

use regex::{Captures, Regex};

/// The markup whose content is not markup, by how it starts and ends.
const HIDING: [(&str, &str); 3] = [("<!--", "-->"), ("<![CDATA[", "]]>"), ("<?", "?>")];

/// How the comment, CDATA section or processing instruction `tail` starts with starts and
/// ends, if it starts with one.
pub(super) fn opening(tail: &str) -> Option<(&'static str, &'static str)> {
    HIDING
        .iter()
        .find(|(start, _)| tail.starts_with(start))
        .copied()
}

/// The comments, CDATA sections and processing instructions of `text`, in order, read from
/// its start as a parser reads them (`<!--` in CDATA starts no comment). Only those that are
/// closed: an unclosed one (`<?xml:namespace … />` in Word's HTML, `<!-- … - >`) is a fault
/// that hides nothing, or one mistake would hide the rest of the body from every repair.
pub(super) fn hidden_spans(text: &str) -> impl Iterator<Item = Range<usize>> + '_ {
    let mut from = 0;
    // Many unclosed starts of one kind cost one search for its end marker, not one each.
    let mut ends = [NextFind::default(); 3];
    std::iter::from_fn(move || {
        while let Some(at) = memchr::memchr(b'<', &text.as_bytes()[from..]).map(|n| from + n) {
            from = at + 1;
            let Some(kind) = HIDING
                .iter()
                .position(|(start, _)| text[at..].starts_with(start))
            else {
                continue;
            };
            let (start, end) = HIDING[kind];
            if let Some(end_at) = ends[kind].find(text, at + start.len(), end) {
                from = end_at + end.len();
                return Some(at..from);
            }
        }
        None
    })
}

/// The first match of one needle in a text from positions that only grow: a search serves
/// every later position up to where it found the needle (or all of them, if it found none),
/// so many positions before one far match cost one search over the text, not one each.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct NextFind {
    /// Where the last search started, and what it found.
    last: Option<(usize, Option<usize>)>,
}

impl NextFind {
    /// The first `needle` in `text` from `from` on; `needle` is the same at every call.
    pub(super) fn find(&mut self, text: &str, from: usize, needle: &str) -> Option<usize> {
        let found = match self.last {
            Some((searched, found)) if searched <= from && found.is_none_or(|at| at >= from) => {
                found
            }
            _ => {
                memchr::memmem::find(&text.as_bytes()[from..], needle.as_bytes()).map(|n| from + n)
            }
        };
        self.last = Some((from, found));
        found
    }
}

/// Where a text's comments, CDATA sections and processing instructions are, for finding what
/// is outside them.
pub(in crate::parse) struct Hidden(Vec<Range<usize>>);

impl Hidden {
    pub(in crate::parse) fn of(text: &str) -> Self {
        Self(hidden_spans(text).collect())
    }

    /// The span that holds byte `at`, if any.
    fn around(&self, at: usize) -> Option<&Range<usize>> {
        let next = self.0.partition_point(|span| span.end <= at);
        self.0.get(next).filter(|span| span.start <= at)
    }

    fn hides(&self, at: usize) -> bool {
        self.around(at).is_some()
    }

    /// Where `needle` starts in `text` outside them, from `from` on, in order.
    pub(super) fn matches<'a>(
        &'a self,
        text: &'a str,
        from: usize,
        needle: &'a str,
    ) -> impl Iterator<Item = usize> + 'a {
        text[from..]
            .match_indices(needle)
            .map(move |(at, _)| from + at)
            .filter(|&at| !self.hides(at))
    }

    /// The first `needle` in `text` outside them, from `from` on.
    pub(super) fn find(&self, text: &str, from: usize, needle: &str) -> Option<usize> {
        self.matches(text, from, needle).next()
    }

    /// The first match of `pattern` in `text` that starts outside them, from `from` on.
    pub(super) fn captures_at<'t>(
        &self,
        pattern: &Regex,
        text: &'t str,
        mut from: usize,
    ) -> Option<Captures<'t>> {
        loop {
            let found = pattern.captures_at(text, from)?;
            let start = found.get(0).map_or(from, |m| m.start());
            match self.around(start) {
                // A match that starts inside ends there or in what follows; the search goes
                // on after the span, where a match outside may start.
                Some(span) => from = span.end,
                None => return Some(found),
            }
        }
    }

    /// The matches of `pattern` in `text` that start outside them, in order and not
    /// overlapping, as `Regex::captures_iter` finds them.
    pub(in crate::parse) fn captures<'a, 't: 'a>(
        &'a self,
        pattern: &'a Regex,
        text: &'t str,
    ) -> impl Iterator<Item = Captures<'t>> + 'a {
        let mut from = Some(0);
        std::iter::from_fn(move || {
            let found = self.captures_at(pattern, text, from?)?;
            let whole = found.get(0)?;
            // An empty match moves on by one character, as the regex crate's own iterator.
            from = if whole.is_empty() {
                text[whole.end()..]
                    .chars()
                    .next()
                    .map(|c| whole.end() + c.len_utf8())
            } else {
                Some(whole.end())
            };
            Some(found)
        })
    }
}

/// [`Hidden::find`] for end tags, from an index of them built in one pass: many start tags
/// whose end is missing, or only in comments, each with a name of its own (`<p1:item>`,
/// `<p2:item>`, …), must not each cost a search over the rest of the text.
pub(in crate::parse) struct Ends<'a> {
    /// Where each end tag outside the hidden spans starts, by the tag (`</name>`), in order.
    at: HashMap<&'a str, Vec<usize>>,
}

impl<'a> Ends<'a> {
    pub(in crate::parse) fn new(hidden: &Hidden, text: &'a str) -> Self {
        let bytes = text.as_bytes();
        let mut at: HashMap<&str, Vec<usize>> = HashMap::new();
        // The first `>` from the last end tag on: the same for every `</` before it.
        let mut gt: Option<usize> = None;
        for start in memchr::memmem::find_iter(bytes, b"</") {
            if hidden.hides(start) {
                continue;
            }
            let end = match gt {
                Some(end) if end >= start => end,
                _ => match memchr::memchr(b'>', &bytes[start..]) {
                    Some(n) => start + n,
                    // Nor is there one after any later `</`.
                    None => break,
                },
            };
            gt = Some(end);
            at.entry(&text[start..=end]).or_default().push(start);
        }
        Self { at }
    }

    /// The first `needle` (an end tag, `</name>`) outside the hidden spans, from `from` on:
    /// what `Hidden::find` says.
    pub(in crate::parse) fn find(&self, from: usize, needle: &str) -> Option<usize> {
        let at = self.at.get(needle)?;
        at.get(at.partition_point(|&start| start < from)).copied()
    }
}

/// `rewrite` applied to each stretch of `text` outside its comments, CDATA sections and
/// processing instructions, which are kept as they are.
pub(super) fn rewrite_outside(text: &str, mut rewrite: impl FnMut(&str) -> String) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut last = 0;
    for span in hidden_spans(text) {
        out.push_str(&rewrite(&text[last..span.start]));
        out.push_str(&text[span.clone()]);
        last = span.end;
    }
    out.push_str(&rewrite(&text[last..]));
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn spans_are_read_in_order_as_a_parser_reads_them() {
        let text = "<a><!-- <![CDATA[ --><![CDATA[<!-- ]]><?pi <b>?>x<![CDATA[ <c>";
        let spans: Vec<&str> = hidden_spans(text).map(|s| &text[s]).collect();
        // The CDATA section cut off at the end hides nothing.
        assert_eq!(
            spans,
            ["<!-- <![CDATA[ -->", "<![CDATA[<!-- ]]>", "<?pi <b>?>"]
        );
        let hidden = Hidden::of(text);
        let tags = Regex::new(r"<[a-z]+>").unwrap();
        let found: Vec<&str> = hidden
            .captures(&tags, text)
            .map(|c| c.get(0).unwrap().as_str())
            .collect();
        assert_eq!(found, ["<a>", "<c>"]);
        assert_eq!(hidden.find(text, 0, "<"), Some(0));
        assert_eq!(hidden.find(text, 1, "<"), text.find("<![CDATA[ <c>"));
        assert_eq!(
            rewrite_outside("a<!--a-->a<?a?>", |s| s.to_uppercase()),
            "A<!--a-->A<?a?>"
        );
    }

    /// Word's HTML leaves a processing instruction that ends in `/>`, and a comment may be
    /// broken: neither hides what follows it.
    #[test]
    fn unclosed_comments_and_instructions_hide_nothing() {
        let text = "<!-- c --><?pi?><p>x <?xml:namespace prefix = o ns=\"urn:o\" /> y</p>\
                    <!-- a - ><b>z</b>";
        let spans: Vec<&str> = hidden_spans(text).map(|s| &text[s]).collect();
        assert_eq!(spans, ["<!-- c -->", "<?pi?>"]);
        assert_eq!(Hidden::of(text).find(text, 0, "</p>"), text.find("</p>"));
        assert_eq!(
            rewrite_outside(text, |s| s.replace('b', "B")),
            text.replace("<b>z</b>", "<B>z</B>")
        );
    }

    /// The spans as read without remembering where an end marker was found.
    fn spans_searched_each_time(text: &str) -> Vec<Range<usize>> {
        let mut spans = Vec::new();
        let mut from = 0;
        while let Some(at) = text[from..].find('<').map(|n| from + n) {
            from = at + 1;
            if let Some((start, end)) = opening(&text[at..])
                && let Some(n) = text[at + start.len()..].find(end)
            {
                from = at + start.len() + n + end.len();
                spans.push(at..from);
            }
        }
        spans
    }

    /// Markup and near misses whose joins open, close and nest hidden spans and end tags.
    const PIECES: &[&str] = &[
        "<",
        ">",
        "-",
        "--",
        "-->",
        "<!--",
        "<![CDATA[",
        "]]>",
        "]",
        "<?",
        "?>",
        "?",
        "x",
        "</a>",
        "</b>",
        "<a>",
        "/",
        "<!",
        "é",
    ];

    fn document() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(PIECES), 0..60).prop_map(|p| p.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn spans_are_those_a_search_at_each_start_finds(text in document()) {
            let spans: Vec<Range<usize>> = hidden_spans(&text).collect();
            prop_assert_eq!(spans, spans_searched_each_time(&text));
        }

        /// The index of end tags finds what a search of its own finds, from any start.
        #[test]
        fn indexed_ends_are_those_a_search_finds(
            text in document(),
            searches in prop::collection::vec((0usize..200, 0usize..3), 0..20),
        ) {
            let hidden = Hidden::of(&text);
            let ends = Ends::new(&hidden, &text);
            for (from, needle) in searches {
                let from = from.min(text.len());
                if !text.is_char_boundary(from) {
                    continue;
                }
                let needle = ["</a>", "</b>", "</x>"][needle];
                prop_assert_eq!(ends.find(from, needle), hidden.find(&text, from, needle));
            }
        }
    }
}

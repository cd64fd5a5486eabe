//! Comments, CDATA sections and processing instructions: what is inside them is text, or
//! nothing, to a parser. A repair that looks for tags must not find them there, nor rewrite
//! what is there (`<!-- <item> -->` between two items is no third item).

use std::ops::Range;

use regex::{Captures, Regex};

/// The markup whose content is not markup, by how it starts and ends.
const HIDING: [(&str, &str); 3] = [("<!--", "-->"), ("<![CDATA[", "]]>"), ("<?", "?>")];

/// The length of the comment, CDATA section or processing instruction `tail` starts with, up
/// to its end, or to the end of the text when it has none (a truncated body).
pub(super) fn hidden_len(tail: &str) -> Option<usize> {
    let (start, end) = HIDING.iter().find(|(start, _)| tail.starts_with(start))?;
    Some(
        tail[start.len()..]
            .find(end)
            .map_or(tail.len(), |n| start.len() + n + end.len()),
    )
}

/// The comments, CDATA sections and processing instructions of `text`, in order, read from
/// its start as a parser reads them (`<!--` in CDATA starts no comment).
pub(super) fn hidden_spans(text: &str) -> impl Iterator<Item = Range<usize>> + '_ {
    let mut from = 0;
    std::iter::from_fn(move || {
        while let Some(at) = memchr::memchr(b'<', &text.as_bytes()[from..]).map(|n| from + n) {
            if let Some(len) = hidden_len(&text[at..]) {
                from = at + len;
                return Some(at..from);
            }
            from = at + 1;
        }
        None
    })
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
    use super::*;

    #[test]
    fn spans_are_read_in_order_as_a_parser_reads_them() {
        let text = "<a><!-- <![CDATA[ --><![CDATA[<!-- ]]><?pi <b>?>x<![CDATA[ open";
        let spans: Vec<&str> = hidden_spans(text).map(|s| &text[s]).collect();
        assert_eq!(
            spans,
            [
                "<!-- <![CDATA[ -->",
                "<![CDATA[<!-- ]]>",
                "<?pi <b>?>",
                "<![CDATA[ open"
            ]
        );
        let hidden = Hidden::of(text);
        let tags = Regex::new(r"<[a-z]+>").unwrap();
        let found: Vec<&str> = hidden
            .captures(&tags, text)
            .map(|c| c.get(0).unwrap().as_str())
            .collect();
        assert_eq!(found, ["<a>"]);
        assert_eq!(hidden.find(text, 0, "<"), Some(0));
        assert_eq!(hidden.find(text, 1, "<"), None);
        assert_eq!(
            rewrite_outside("a<!--a-->a<?a?>", |s| s.to_uppercase()),
            "A<!--a-->A<?a?>"
        );
    }
}

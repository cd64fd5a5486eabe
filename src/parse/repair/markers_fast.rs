//! The markers of [`super::markers`] found by a scan instead of a regex engine's overlapping
//! search over the whole text (most of what `normalise` cost on every body): the plain
//! strings by a substring search that stops at the first, the element markers at each `<` in
//! turn, until all of them are found.

use std::ops::Range;
use std::sync::LazyLock;

use memchr::memmem;
use regex::Regex;

use super::hidden::hidden_spans;
use super::markers::{Found, Marker};
use super::{ATOM03_NS, STAND_INS, WELL_KNOWN_PREFIXES};

/// Markers that are a plain string anywhere in the text.
const LITERALS: [(Marker, &str); 5] = [
    (Marker::Atom03, ATOM03_NS),
    (Marker::UserLand, "backend.userland.com/rss"),
    (Marker::TypeAttribute, "type="),
    (Marker::ModeAttribute, "mode="),
    (Marker::Rdf, "rdf:RDF"),
];

/// Markers that start at a `<`.
const ELEMENTS: [Marker; 5] = [
    Marker::StandIn,
    Marker::WellKnownPrefix,
    Marker::NakedMarkup,
    Marker::NestedItem,
    Marker::Thumbnail,
];

/// The bytes an element marker other than a nested item starts with (after its `<`).
static FIRST_BYTES: LazyLock<[bool; 256]> = LazyLock::new(|| {
    let mut first = [false; 256];
    let names = STAND_INS.iter().map(|(name, _)| *name);
    let prefixes = WELL_KNOWN_PREFIXES.iter().map(|(prefix, _)| *prefix);
    for name in names
        .chain(prefixes)
        .chain(HOLDERS)
        .chain(["atom:", THUMBNAIL])
    {
        first[usize::from(name.as_bytes()[0])] = true;
    }
    first
});

/// A Media RSS thumbnail's element name.
const THUMBNAIL: &str = "media:thumbnail";

/// Elements that hold text or markup (after an optional `atom:`).
const HOLDERS: [&str; 6] = [
    "title",
    "subtitle",
    "summary",
    "rights",
    "content",
    "description",
];

/// The markers `text` holds: the same as [`super::markers::find`].
pub(super) fn find(text: &str) -> Found {
    let bytes = text.as_bytes();
    let mut found = Found::default();
    for (marker, literal) in LITERALS {
        if memmem::find(bytes, literal.as_bytes()).is_some() {
            found.add(marker);
        }
    }
    // Item tags are read one after another, as the plain twin's search finds them: the next
    // may start from `items_from` on, and `depth` items are open. Those in comments, CDATA
    // and processing instructions are none: `hidden` is the next such span (or the one `at`
    // is in).
    let (mut items_from, mut depth) = (0, 0usize);
    let mut spans = hidden_spans(text);
    let mut hidden = spans.next();
    for at in memchr::memchr_iter(b'<', bytes) {
        if found.has_all(&ELEMENTS) {
            break;
        }
        if !found.has(Marker::NestedItem)
            && at >= items_from
            && let Some((tag, len)) = item_tag(&text[at + 1..])
            && !hides(&mut spans, &mut hidden, at)
        {
            items_from = at + 1 + len;
            match tag {
                ItemTag::Start => depth += 1,
                ItemTag::End => depth = depth.saturating_sub(1),
                ItemTag::Empty => {}
            }
            if depth > 1 {
                found.add(Marker::NestedItem);
            }
        }
        // End tags and most others start with a byte no other element marker starts with.
        if !bytes
            .get(at + 1)
            .is_some_and(|&b| FIRST_BYTES[usize::from(b)])
        {
            continue;
        }
        // `<` is one byte, so what follows starts on a character.
        let rest = &text[at + 1..];
        if !found.has(Marker::StandIn)
            && STAND_INS
                .iter()
                .any(|(name, _)| rest.starts_with(name) && !starts_with_word(&rest[name.len()..]))
        {
            found.add(Marker::StandIn);
        }
        if !found.has(Marker::WellKnownPrefix)
            && WELL_KNOWN_PREFIXES.iter().any(|(prefix, _)| {
                rest.strip_prefix(prefix)
                    .is_some_and(|r| r.starts_with(':'))
            })
        {
            found.add(Marker::WellKnownPrefix);
        }
        if !found.has(Marker::NakedMarkup) && holds_markup(rest) {
            found.add(Marker::NakedMarkup);
        }
        if !found.has(Marker::Thumbnail)
            && rest
                .strip_prefix(THUMBNAIL)
                .is_some_and(|r| r.starts_with(|c: char| c.is_whitespace() || c == '/' || c == '>'))
        {
            found.add(Marker::Thumbnail);
        }
    }
    found
}

/// Whether `at` is inside a comment, CDATA section or processing instruction, with `hidden`
/// the first of `spans` not before `at`'s predecessors; `at` only grows.
fn hides(
    spans: &mut impl Iterator<Item = Range<usize>>,
    hidden: &mut Option<Range<usize>>,
    at: usize,
) -> bool {
    while hidden.as_ref().is_some_and(|span| span.end <= at) {
        *hidden = spans.next();
    }
    hidden.as_ref().is_some_and(|span| span.start <= at)
}

/// An RSS item's tag.
enum ItemTag {
    Start,
    End,
    /// `<item />`, which opens nothing.
    Empty,
}

/// The item tag `rest` (what follows a `<`) starts with, as `</?item(\s[^>]*)?>` reads it,
/// and its length up to its `>`.
fn item_tag(rest: &str) -> Option<(ItemTag, usize)> {
    let (end, name) = match rest.strip_prefix('/') {
        Some(name) => (true, name),
        None => (false, rest),
    };
    let after = name.strip_prefix("item")?;
    let attributes = if after.starts_with('>') {
        0
    } else if after.starts_with(char::is_whitespace) {
        after.find('>')?
    } else {
        return None;
    };
    let len = rest.len() - after.len() + attributes + 1;
    let tag = if rest[..len].ends_with("/>") {
        ItemTag::Empty
    } else if end {
        ItemTag::End
    } else {
        ItemTag::Start
    };
    Some((tag, len))
}

/// Whether `rest` (what follows a `<`) is a holder's start tag whose text, up to the next `<`,
/// is followed by an element: `title type="html">A <b>`.
fn holds_markup(rest: &str) -> bool {
    let rest = rest.strip_prefix("atom:").unwrap_or(rest);
    let Some(name) = HOLDERS.iter().find(|name| rest.starts_with(*name)) else {
        return false;
    };
    let rest = &rest[name.len()..];
    let after_tag = if let Some(after) = rest.strip_prefix('>') {
        after
    } else if rest.starts_with(char::is_whitespace) {
        match rest.find('>') {
            Some(end) => &rest[end + 1..],
            None => return false,
        }
    } else {
        return false;
    };
    after_tag
        .find('<')
        .and_then(|at| after_tag.as_bytes().get(at + 1))
        .is_some_and(u8::is_ascii_alphabetic)
}

/// Whether `text` starts with a word character as a regex's `\b` sees it (Unicode letters,
/// marks, digits and connectors).
fn starts_with_word(text: &str) -> bool {
    static WORD: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^\w").expect("static pattern"));
    match text.as_bytes().first() {
        None => false,
        Some(&b) if b.is_ascii() => b.is_ascii_alphanumeric() || b == b'_',
        Some(_) => WORD.is_match(text),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::markers;
    use super::*;

    /// Pieces of markup the markers are made of, and near misses, so that random joins of
    /// them (with the element names of the repair's lists) make and break markers.
    const PIECES: &[&str] = &[
        "<",
        ">",
        "/",
        " ",
        "\n",
        "\u{a0}",
        "\u{2028}",
        "=",
        "\"",
        ":",
        "x",
        "_",
        "é",
        "9",
        "\u{301}",
        "٣",
        "²",
        "item",
        "items",
        "atom:",
        "type=",
        "type",
        "mode=",
        "rdf:RDF",
        "rdf:rdf",
        "http://purl.org/atom/ns#",
        "backend.userland.com/rss",
        "backend.userland.com/",
        "<b>",
        "</",
        "&lt;",
        "<![CDATA[",
        "]]>",
        "<item>",
        "</item>",
        "<item ",
        "/>",
        "<!--",
        "-->",
        "--",
        "<?",
        "?>",
        "<!",
        "]]",
    ];

    fn document() -> impl Strategy<Value = String> {
        let names = STAND_INS
            .iter()
            .chain(&WELL_KNOWN_PREFIXES)
            .map(|(name, _)| *name);
        let pieces: Vec<&str> = PIECES
            .iter()
            .copied()
            .chain(names)
            .chain(HOLDERS)
            .chain([THUMBNAIL])
            .collect();
        prop::collection::vec(prop::sample::select(pieces), 0..40).prop_map(|p| p.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn finds_what_the_patterns_find(text in document()) {
            prop_assert_eq!(find(&text), markers::find(&text), "{:?}", text);
        }

        #[test]
        fn finds_what_the_patterns_find_in_any_text(text in any::<String>()) {
            prop_assert_eq!(find(&text), markers::find(&text));
        }
    }

    /// The feeds of real projects in `tests/data` (their corpus and what fuzzing found).
    #[test]
    fn finds_what_the_patterns_find_in_the_test_feeds() {
        let mut checked = 0;
        for path in crate::parse::test_feeds() {
            if let Ok(text) = std::fs::read_to_string(&path) {
                assert_eq!(find(&text), markers::find(&text), "{}", path.display());
                checked += 1;
            }
        }
        assert!(checked > 100, "only {checked} test files read");
    }
}

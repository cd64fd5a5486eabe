//! What [`super::normalise`] looks for before it tries a rewrite: the markers a document holds,
//! found in one pass. Here plainly, as one set of patterns; documents are scanned by
//! [`super::markers_fast`], which finds the same markers without a regex engine's overlapping
//! search over the whole text.

#[cfg(test)]
use std::sync::LazyLock;

#[cfg(test)]
use regex::RegexSet;

#[cfg(test)]
use super::{ATOM03_NS, NAKED_MARKUP_HOLDERS, STAND_INS, WELL_KNOWN_PREFIXES, item_tags, nested};

/// A sign that a document can need one of the rewrites.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Marker {
    Atom03,
    UserLand,
    TypeAttribute,
    ModeAttribute,
    Rdf,
    /// An element of another vocabulary that can stand in for a missing RSS one.
    StandIn,
    /// An element with one of the [`WELL_KNOWN_PREFIXES`](super::WELL_KNOWN_PREFIXES).
    WellKnownPrefix,
    /// A title, summary or content with an element in it.
    NakedMarkup,
    /// An RSS item opened inside another.
    NestedItem,
    /// A Media RSS thumbnail.
    Thumbnail,
}

/// Every marker, in the order of [`MARKERS`].
#[cfg(test)]
pub(super) const ALL: [Marker; 10] = [
    Marker::Atom03,
    Marker::UserLand,
    Marker::TypeAttribute,
    Marker::ModeAttribute,
    Marker::Rdf,
    Marker::StandIn,
    Marker::WellKnownPrefix,
    Marker::NakedMarkup,
    Marker::NestedItem,
    Marker::Thumbnail,
];

/// The markers found in a document.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Found(u16);

impl Found {
    pub(super) fn has(self, marker: Marker) -> bool {
        self.0 & (1 << marker as u16) != 0
    }

    pub(super) fn add(&mut self, marker: Marker) {
        self.0 |= 1 << marker as u16;
    }

    /// Whether every marker of `markers` is found.
    pub(super) fn has_all(self, markers: &[Marker]) -> bool {
        markers.iter().all(|&m| self.has(m))
    }
}

/// The markers as one set of patterns, in the order of [`Marker`]: what each marker means (for
/// [`Marker::NestedItem`], only that there is an item; [`find`] asks the rest).
#[cfg(test)]
static MARKERS: LazyLock<RegexSet> = LazyLock::new(|| {
    let prefixes: Vec<&str> = WELL_KNOWN_PREFIXES.iter().map(|(p, _)| *p).collect();
    let stand_ins: Vec<String> = STAND_INS.iter().map(|(s, _)| regex::escape(s)).collect();
    RegexSet::new([
        regex::escape(ATOM03_NS),
        regex::escape("backend.userland.com/rss"),
        "type=".into(),
        "mode=".into(),
        "rdf:RDF".into(),
        format!(r"<(?:{})\b", stand_ins.join("|")),
        format!("<(?:{}):", prefixes.join("|")),
        format!("{NAKED_MARKUP_HOLDERS}[^<]*<[A-Za-z]"),
        r"<item[\s>]".into(),
        r"<media:thumbnail[\s/>]".into(),
    ])
    .expect("static patterns")
});

/// The markers `text` holds, by the patterns.
#[cfg(test)]
pub(super) fn find(text: &str) -> Found {
    let mut found = Found::default();
    for index in MARKERS.matches(text).iter() {
        let marker = ALL[index];
        if marker != Marker::NestedItem || nested(&item_tags(text)) {
            found.add(marker);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Marker` and `MARKERS` are two lists kept in one order: each marker finds its own text.
    #[test]
    fn each_marker_is_found_by_its_own_pattern() {
        let samples = [
            (Marker::Atom03, r#"<feed xmlns="http://purl.org/atom/ns#">"#),
            (
                Marker::UserLand,
                r#"<rss xmlns="http://backend.userland.com/rss2">"#,
            ),
            (Marker::TypeAttribute, r#"<title type="text/plain">"#),
            (Marker::ModeAttribute, r#"<content mode="base64">"#),
            (Marker::Rdf, "<rdf:RDF>"),
            (Marker::StandIn, "<dc:description>"),
            (Marker::StandIn, "<atom:published>"),
            (Marker::WellKnownPrefix, "<media:content/>"),
            (
                Marker::NakedMarkup,
                "<title type=\"html\">A <b>bold</b> move</title>",
            ),
            (Marker::NestedItem, "<item><item>a</item></item>"),
            (Marker::Thumbnail, "<media:thumbnail url=\"x\"/>"),
        ];
        for (marker, sample) in samples {
            assert!(find(sample).has(marker), "{sample}: {:?}", find(sample));
        }
        let none = find(
            "<rss><channel><title>A &lt;b&gt; &amp; B</title><items/><item>a</item>\
             <item>b</item></channel></rss>",
        );
        assert_eq!(none, Found::default());
    }
}

//! Reading HTML as text: start tags and their attributes, and character entities. Both the
//! feed parser (entities in feed text) and feed discovery (link tags in web pages) read HTML
//! this way; neither needs a DOM.

use std::borrow::Cow;

/// A start tag as a browser's tokenizer reads it: its name lower-cased, its attributes'
/// names lower-cased and their values with character references decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StartTag {
    pub(crate) name: String,
    attributes: Vec<(String, String)>,
}

impl StartTag {
    /// An attribute's value; the first, where a tag repeats one (as browsers take it).
    pub(crate) fn attr(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Every start tag of `html`, in document order, read by a WHATWG tokenizer (`html5gum`):
/// unquoted attribute values (`href=https://x/feed.xml`, as minifiers write them), comments,
/// and text inside `<script>`, `<style>`, `<title>` and `<textarea>` (never tags) come out as a
/// browser reads them.
pub(crate) fn start_tags(html: &str) -> impl Iterator<Item = StartTag> + '_ {
    let mut emitter = html5gum::DefaultEmitter::default();
    // A tokenizer alone does not know that `<script>` holds text; this tells it, as a tree
    // builder would for the elements that matter here.
    emitter.naively_switch_states(true);
    html5gum::Tokenizer::new_with_emitter(html, emitter).filter_map(|token| match token {
        Ok(html5gum::Token::StartTag(tag)) => Some(StartTag {
            name: String::from_utf8_lossy(&tag.name).into_owned(),
            attributes: tag
                .attributes
                .iter()
                .map(|(name, value)| {
                    (
                        String::from_utf8_lossy(name).into_owned(),
                        String::from_utf8_lossy(&value.value).into_owned(),
                    )
                })
                .collect(),
        }),
        _ => None,
    })
}

/// Decodes character references as a browser does in text (the WHATWG rules, through
/// `htmlize`): all of HTML's named entities, with or without the `;` where HTML allows that, and
/// numeric ones, where `&#146;` is the Windows-1252 character `’`.
pub fn decode_entities(text: &str) -> Cow<'_, str> {
    if memchr::memchr(b'&', text.as_bytes()).is_none() {
        return Cow::Borrowed(text);
    }
    htmlize::unescape(text)
}

/// The text an HTML named entity (`eacute`, `scaron`, `NotEqualTilde`) stands for: one or two
/// characters, or `None` for a name HTML does not define.
pub(crate) fn named_entity(name: &str) -> Option<&'static str> {
    htmlize::ENTITIES
        .get(format!("&{name};").as_bytes())
        .and_then(|text| std::str::from_utf8(text).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_without_entities_is_not_copied() {
        assert!(matches!(decode_entities("plain"), Cow::Borrowed("plain")));
        assert_eq!(decode_entities("a &amp; b"), "a & b");
    }

    #[test]
    fn entities_decode_as_in_a_browser() {
        assert_eq!(
            decode_entities("&scaron;&oelig;&lrm;&NotEqualTilde;&hellip;"),
            "šœ\u{200e}≂\u{338}…"
        );
        // Windows-1252 where Unicode has C1 controls, as browsers read them.
        assert_eq!(
            decode_entities("It&#146;s &#x93;quoted&#148; &#128;5"),
            "It’s “quoted” €5"
        );
        // Legacy names without `;`, but no guessing inside words.
        assert_eq!(
            decode_entities("&copy 2024 AT&T &notit;"),
            "© 2024 AT&T ¬it;"
        );
        assert_eq!(
            decode_entities("&#0; &#xD800; &#x110000;"),
            "\u{fffd} \u{fffd} \u{fffd}"
        );
    }

    #[test]
    fn attribute_values_keep_what_only_looks_like_an_entity() {
        let tags: Vec<StartTag> =
            start_tags(r#"<link HREF="/f?a=1&copy=2&amp;b=&eacute;">"#).collect();
        assert_eq!(tags[0].name, "link");
        assert_eq!(tags[0].attr("href"), Some("/f?a=1&copy=2&b=é"));
        assert_eq!(named_entity("scaron"), Some("š"));
        assert_eq!(named_entity("NotEqualTilde"), Some("≂\u{338}"));
        assert_eq!(named_entity("bogus"), None);
    }

    #[test]
    fn tags_are_read_as_a_browser_reads_them() {
        let html = "<!-- <link href=/commented> --><LINK rel=alternate \
                    href=https://news.example/a/b.xml?x=1&y=2 title=\"A &amp; B\"/>\
                    <script>document.write('<link href=/scripted>')</script><p id=x><p/>";
        let tags: Vec<StartTag> = start_tags(html).collect();
        let names: Vec<&str> = tags.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["link", "script", "p", "p"]);
        assert_eq!(
            tags[0].attr("href"),
            Some("https://news.example/a/b.xml?x=1&y=2")
        );
        assert_eq!(tags[0].attr("title"), Some("A & B"));
        assert_eq!(tags[0].attr("rel"), Some("alternate"));
        assert_eq!(tags[2].attr("id"), Some("x"));
        // Whatever comes, the tokenizer ends.
        assert_eq!(start_tags("<a href='x").count(), 0);
        assert_eq!(start_tags("<<<>>>< a b=c").count(), 0);
    }
}

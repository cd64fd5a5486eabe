//! Markup -> plain text: tags dropped, entities decoded, whitespace collapsed.

use std::borrow::Cow;

use super::whitespace::collapse_whitespace;
use crate::html::decode_entities;

/// Plain text from HTML: tags dropped (attribute values are not text), `script` and `style`
/// dropped with their content, entities decoded as a browser decodes them, whitespace collapsed.
pub fn html_to_text(html: &str) -> String {
    let text = strip_tags(html);
    let text = match decode_entities(&text) {
        Cow::Owned(decoded) => decoded,
        Cow::Borrowed(_) => text,
    };
    let text = windows_1252_for_c1(&text).unwrap_or(text);
    collapse_whitespace(text)
}

/// A field that is text, not markup (an Atom `type="text"` title, a JSON Feed title): shown as
/// written, `<p>` and `&amp;` included, with whitespace collapsed. C1 control characters
/// become the Windows-1252 characters a browser would show for them.
pub fn plain_text(text: &str) -> String {
    let text = windows_1252_for_c1(text).unwrap_or_else(|| text.to_string());
    collapse_whitespace(text)
}

/// Whether `text` holds the ASCII character `byte`. Found with the `memchr` crate's vector
/// search: every article's title and summary are searched this way several times, and the
/// standard library's search looks at a word, not a vector, at a time.
fn has_byte(text: &str, byte: u8) -> bool {
    memchr::memchr(byte, text.as_bytes()).is_some()
}

/// Tags that separate words; inline ones (b, i, a, span) do not.
const BLOCK_TAGS: &[&str] = &[
    "br",
    "p",
    "div",
    "li",
    "ul",
    "ol",
    "tr",
    "td",
    "th",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "blockquote",
    "hr",
    "img",
    "table",
    "figure",
    "figcaption",
    "section",
    "article",
    "header",
    "footer",
    "pre",
];

fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    // Whitespace that collapsing would take out anyway is not written: after a space, a block
    // tag adds none and text drops its leading spaces, and a space at the end goes. What the
    // usual `<p>…</p> <p>…</p>` leaves is then already collapsed, which is cheap to see.
    let after_space = |out: &String| out.is_empty() || out.ends_with(' ');
    while let Some(open) = memchr::memchr(b'<', rest.as_bytes()) {
        let text = &rest[..open];
        out.push_str(if after_space(&out) {
            text.trim_start_matches(' ')
        } else {
            text
        });
        let after = &rest[open + 1..];
        let starts_tag = after
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '/' || c == '!' || c == '?');
        if !starts_tag {
            out.push('<');
            rest = after;
            continue;
        }
        if let Some(comment) = after.strip_prefix("!--") {
            rest = comment.find("-->").map_or("", |end| &comment[end + 3..]);
            continue;
        }
        let Some(close) = memchr::memchr(b'>', after.as_bytes()) else {
            // An unclosed `<` at the end is text, not a tag.
            out.push('<');
            rest = after;
            continue;
        };
        let tag = &after[..close];
        let named = tag.trim_start_matches('/');
        let name = &named[..named.bytes().take_while(u8::is_ascii_alphanumeric).count()];
        rest = &after[close + 1..];
        let is = |other: &str| name.eq_ignore_ascii_case(other);
        if !tag.starts_with('/') && (is("script") || is("style")) {
            let end_tag = format!("</{}", name.to_ascii_lowercase());
            let lower = rest.to_ascii_lowercase();
            rest = match lower.find(&end_tag) {
                Some(end) => rest[end..].find('>').map_or("", |gt| &rest[end + gt + 1..]),
                None => "",
            };
        }
        if BLOCK_TAGS.iter().any(|block| is(block)) && !after_space(&out) {
            out.push(' ');
        }
    }
    out.push_str(if after_space(&out) {
        rest.trim_start_matches(' ')
    } else {
        rest
    });
    if out.ends_with(' ') {
        out.pop();
    }
    out
}

/// `text` with each C1 control character (U+0080 to U+009F) replaced by the Windows-1252
/// character of that byte, as browsers read `&#128;` to `&#159;`; `None` when it has none. The
/// XML layer turns such references into C1 controls, which no feed means.
/// Their UTF-8 form starts with 0xC2, which the check looks for first.
fn windows_1252_for_c1(text: &str) -> Option<String> {
    let is_c1 = |c: char| ('\u{80}'..='\u{9f}').contains(&c);
    if !has_byte(text, 0xC2) || !text.contains(is_c1) {
        return None;
    }
    Some(
        text.chars()
            .map(|c| match u8::try_from(u32::from(c)) {
                Ok(byte) if is_c1(c) => {
                    let byte = [byte];
                    let (mapped, _) = encoding_rs::WINDOWS_1252.decode_without_bom_handling(&byte);
                    mapped.chars().next().unwrap_or(c)
                }
                _ => c,
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn markup_gives_its_words_once_spaced(html in "(<p>|</p>|<br>|<b>|</b>|[a-c]{1,3}| |\n|\t){0,30}") {
            let words: Vec<String> = html
                .replace("<p>", " ").replace("</p>", " ").replace("<br>", " ")
                .replace("<b>", "").replace("</b>", "")
                .split_whitespace().map(String::from).collect();
            prop_assert_eq!(html_to_text(&html), words.join(" "));
        }
    }

    #[test]
    fn block_tags_in_any_case_separate_words_and_inline_ones_do_not() {
        assert_eq!(
            html_to_text("one<BR>two<P>three</P><b>fo</b>ur"),
            "one two three four"
        );
        assert_eq!(html_to_text("a<ScRiPt>x()</SCRIPT>b"), "ab");
    }

    #[test]
    fn c1_controls_from_xml_references_show_as_windows_1252() {
        // `&#146;` in XML reaches this stage as U+0092.
        assert_eq!(
            html_to_text("It\u{92}s \u{93}quoted\u{94}"),
            "It’s “quoted”"
        );
        assert_eq!(plain_text("\u{80}5"), "€5");
    }

    #[test]
    fn markup_is_read_once_as_a_browser_would() {
        // Escaped once more, markup is text that shows its tags.
        assert_eq!(
            html_to_text("a &lt;b&gt;bold&lt;/b&gt; move"),
            "a <b>bold</b> move"
        );
        assert_eq!(html_to_text("caf&amp;eacute;"), "caf&eacute;");
        assert_eq!(
            plain_text(" <p>Title</p>  &amp; more\u{92}"),
            "<p>Title</p> &amp; more’"
        );
    }
}

//! Markup -> plain text: tags dropped, entities decoded, whitespace collapsed.

use std::borrow::Cow;

use super::whitespace::collapse_whitespace;
use crate::html::decode_entities;

/// Plain text from HTML: tags dropped (attribute values are not text), `script` and `style`
/// dropped with their content, entities decoded, whitespace collapsed. Markup that was escaped
/// once more (`&lt;b&gt;` in an RSS title) is treated the same way.
pub fn html_to_text(html: &str) -> String {
    let mut text = strip_tags(html);
    if let Cow::Owned(decoded) = decode_entities(&text) {
        text = decoded;
    }
    if has_byte(&text, b'<') && has_byte(&text, b'>') && looks_like_markup(&text) {
        text = decode_entities(&strip_tags(&text)).into_owned();
    } else if let Cow::Owned(decoded) = decode_entities(&text) {
        // Double-escaped entities (`&amp;eacute;`).
        text = decoded;
    }
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

fn looks_like_markup(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes
        .windows(2)
        .any(|w| w[0] == b'<' && (w[1].is_ascii_alphabetic() || w[1] == b'/' || w[1] == b'!'))
}

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
}

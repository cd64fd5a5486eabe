//! Markup -> plain text: tags dropped, entities decoded, whitespace collapsed.

use std::borrow::Cow;

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

/// Words separated by single spaces. Most text needs little or no change, so it is copied in
/// as few pieces as possible: a single space between two words is kept where it is, and only
/// other runs of whitespace (leading, trailing, doubled, tabs, newlines, Unicode spaces) cut
/// the text. Byte by byte: only the bytes of non-ASCII characters need decoding to know
/// whether they are (Unicode) whitespace.
fn collapse_whitespace(text: String) -> String {
    if is_collapsed(&text) {
        return text;
    }
    // Whether the character at `at` is whitespace, and its length in bytes.
    let char_at = |at: usize| -> (bool, usize) {
        match text.as_bytes()[at] {
            byte @ 0..0x80 => (byte.is_ascii_whitespace() || byte == 0x0b, 1),
            _ => {
                let c = text[at..].chars().next().unwrap_or_default();
                (c.is_whitespace(), c.len_utf8())
            }
        }
    };
    let len = text.len();
    // Built only once something has to change; `text[..copied]` is in it already.
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut at = 0;
    while at < len {
        // Most bytes are printable ASCII, never whitespace: one comparison each.
        if (b'!'..0x80).contains(&text.as_bytes()[at]) {
            at += 1;
            continue;
        }
        let (space, width) = char_at(at);
        if !space {
            at += width;
            continue;
        }
        let run_start = at;
        at += width;
        while at < len {
            let (space, width) = char_at(at);
            if !space {
                break;
            }
            at += width;
        }
        let single_space = at == run_start + 1 && text.as_bytes()[run_start] == b' ';
        if single_space && run_start > 0 && at < len {
            continue;
        }
        let out = out.get_or_insert_with(|| String::with_capacity(len));
        out.push_str(&text[copied..run_start]);
        if !out.is_empty() && at < len {
            out.push(' ');
        }
        copied = at;
    }
    match out {
        None => text,
        Some(mut out) => {
            out.push_str(&text[copied..]);
            out
        }
    }
}

/// Whether `text` is ASCII with single spaces between words only, the usual case after
/// [`strip_tags`]; found by a few vectorised searches instead of a look at every byte.
fn is_collapsed(text: &str) -> bool {
    let bytes = text.as_bytes();
    text.is_ascii()
        && !bytes.starts_with(b" ")
        && !bytes.ends_with(b" ")
        && memchr::memchr3(b'\t', b'\n', b'\r', bytes).is_none()
        && memchr::memchr2(0x0b, 0x0c, bytes).is_none()
        && memchr::memmem::find(bytes, b"  ").is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn collapsing_whitespace_keeps_every_word_once_spaced(text in "[a\\u{e9}\\u{416} \\t\\n\\r\\u{b}\\u{c}\\u{a0}\\u{85}\\u{2003}\\u{3000}]{0,40}") {
            let words: Vec<&str> = text.split(char::is_whitespace).filter(|w| !w.is_empty()).collect();
            prop_assert_eq!(collapse_whitespace(text.clone()), words.join(" "));
        }
    }

    proptest! {
        #[test]
        fn markup_gives_its_words_once_spaced(html in "(<p>|</p>|<br>|<b>|</b>|[a-c]{1,3}| |\n|\t){0,30}") {
            let words: Vec<String> = html
                .replace("<p>", " ").replace("</p>", " ").replace("<br>", " ")
                .replace("<b>", "").replace("</b>", "")
                .split_whitespace().map(String::from).collect();
            prop_assert_eq!(html_to_text(&html), words.join(" "));
        }

        #[test]
        fn collapsed_text_is_seen_as_such_and_other_text_is_not(text in "[a \t\n\r\u{b}\u{c}\u{a0}]{0,20}") {
            let words: Vec<&str> = text.split(char::is_whitespace).filter(|w| !w.is_empty()).collect();
            prop_assert_eq!(is_collapsed(&text), text == words.join(" "));
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

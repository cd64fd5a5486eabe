//! Whitespace collapsing for text taken out of markup: words separated by single spaces.
//!
//! The fast path, byte by byte and copying as little as it can, sits beside its plain twin,
//! which splits and joins; property tests hold them equal.

/// Words separated by single spaces. Most text needs little or no change, so it is copied in
/// as few pieces as possible: a single space between two words is kept where it is, and only
/// other runs of whitespace (leading, trailing, doubled, tabs, newlines, Unicode spaces) cut
/// the text. Byte by byte: only the bytes of non-ASCII characters need decoding to know
/// whether they are (Unicode) whitespace.
pub(super) fn collapse_whitespace(text: String) -> String {
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

/// Whether `text` is ASCII with single spaces between words only, the usual case once tags
/// are stripped; found by a few vectorised searches instead of a look at every byte.
fn is_collapsed(text: &str) -> bool {
    let bytes = text.as_bytes();
    text.is_ascii()
        && !bytes.starts_with(b" ")
        && !bytes.ends_with(b" ")
        && memchr::memchr3(b'\t', b'\n', b'\r', bytes).is_none()
        && memchr::memchr2(0x0b, 0x0c, bytes).is_none()
        && memchr::memmem::find(bytes, b"  ").is_none()
}

/// What [`collapse_whitespace`] gives, said plainly: the words between any whitespace, joined
/// by single spaces.
#[cfg(test)]
fn collapse_whitespace_plainly(text: &str) -> String {
    let words: Vec<&str> = text
        .split(char::is_whitespace)
        .filter(|w| !w.is_empty())
        .collect();
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn collapsing_whitespace_keeps_every_word_once_spaced(text in "[a\\u{e9}\\u{416} \\t\\n\\r\\u{b}\\u{c}\\u{a0}\\u{85}\\u{2003}\\u{3000}]{0,40}") {
            prop_assert_eq!(collapse_whitespace(text.clone()), collapse_whitespace_plainly(&text));
        }

        #[test]
        fn collapsed_text_is_seen_as_such_and_other_text_is_not(text in "[a \t\n\r\u{b}\u{c}\u{a0}]{0,20}") {
            prop_assert_eq!(is_collapsed(&text), text == collapse_whitespace_plainly(&text));
        }
    }
}

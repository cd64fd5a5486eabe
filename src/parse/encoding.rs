//! Bytes in any charset -> UTF-8 text whose XML declaration (if any) says UTF-8.
//!
//! The order follows what browsers and feedparser do: BOM, or the byte pattern of UTF-16 and
//! UCS-4 markup without one (XML 1.0 appendix F), then valid UTF-8 as is, then the XML
//! declaration, then the HTTP charset, then a detector for undeclared bodies.

use std::borrow::Cow;

use encoding_rs::Encoding;

/// Decodes `bytes` to UTF-8 and makes any XML declaration say so, since feed-rs would
/// otherwise decode a second time by the declared label.
pub fn decode<'a>(bytes: &'a [u8], content_type: Option<&str>) -> Cow<'a, str> {
    let encoding = match announced(bytes) {
        Some(Layout::Ucs4 { order, bom }) => {
            return settle(Cow::Owned(decode_ucs4(&bytes[bom..], order)));
        }
        Some(Layout::Known(encoding)) => encoding,
        None => {
            if let Ok(text) = std::str::from_utf8(bytes) {
                return settle(Cow::Borrowed(text));
            }
            declared_encoding(bytes)
                .filter(not_utf16)
                .or_else(|| content_type.and_then(charset_of).filter(not_utf16))
                .unwrap_or_else(|| {
                    let mut detector =
                        chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Allow);
                    detector.feed(bytes, true);
                    detector.guess(None, chardetng::Utf8Detection::Allow)
                })
        }
    };
    // encoding_rs takes a BOM of its own encoding off, and keeps any other one as text.
    let (text, _, _) = encoding.decode(bytes);
    settle(Cow::Owned(text.into_owned()))
}

/// The decoded text as the XML layer may see it: no NUL characters, its leading declaration
/// says UTF-8, and an XML
/// declaration anywhere else (not well-formed, but seen where feeds are pasted together) is
/// dropped, since the XML layer would otherwise switch encodings, or panic, in mid-document.
fn settle(text: Cow<'_, str>) -> Cow<'_, str> {
    // XML allows no NUL character, and the XML layer reads `<\0?\0` at the start as the UTF-16
    // it would be in bytes, then panics at the declaration: they go first.
    let text = if memchr::memchr(0, text.as_bytes()).is_some() {
        Cow::Owned(text.replace('\0', ""))
    } else {
        text
    };
    let text = match rewrite_declaration(&text) {
        Some(fixed) => Cow::Owned(fixed),
        None => text,
    };
    match drop_later_declarations(&text) {
        Some(fixed) => Cow::Owned(fixed),
        None => text,
    }
}

/// `text` without the XML declarations that do not open it; `None` when it has none.
fn drop_later_declarations(text: &str) -> Option<String> {
    let opening = text.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    let leading = text.len() - opening.len();
    let is_declaration = |at: usize| {
        at != leading && text[at + 5..].starts_with(|c: char| c.is_ascii_whitespace() || c == '?')
    };
    let mut later =
        memchr::memmem::find_iter(text.as_bytes(), b"<?xml").filter(|&at| is_declaration(at));
    let first = later.next()?;
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for at in std::iter::once(first).chain(later) {
        if at < copied {
            continue;
        }
        out.push_str(&text[copied..at]);
        // A space where it was: cut out with nothing in its place, the text on either side
        // could join into another declaration (`<?xm` + `l version=…`).
        out.push(' ');
        copied = text[at..].find("?>").map_or(text.len(), |end| at + end + 2);
    }
    out.push_str(&text[copied..]);
    Some(out)
}

/// How the first bytes say the document is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// An encoding encoding_rs decodes (a BOM, if any, is removed by it).
    Known(&'static Encoding),
    /// UCS-4 / UTF-32, which encoding_rs does not read: `order` gives where in each four bytes
    /// the most to least significant byte is, and `bom` how many bytes the mark takes.
    Ucs4 { order: [usize; 4], bom: usize },
}

const UCS4_1234: [usize; 4] = [0, 1, 2, 3];
const UCS4_4321: [usize; 4] = [3, 2, 1, 0];
const UCS4_2143: [usize; 4] = [1, 0, 3, 2];
const UCS4_3412: [usize; 4] = [2, 3, 0, 1];

/// The encoding the first four bytes announce, before anything reads them as UTF-8: a byte
/// order mark, or without one the zeros that ASCII markup (`<`, `<?xml`, whitespace, `{`) leaves
/// in UTF-16 and UCS-4, as XML 1.0 appendix F describes. ASCII-only UTF-16 is valid UTF-8 (its
/// zeros are NUL characters), so this has to come first.
fn announced(bytes: &[u8]) -> Option<Layout> {
    let ucs4 = |order, bom| Some(Layout::Ucs4 { order, bom });
    let known = |encoding| Some(Layout::Known(encoding));
    // A byte that can be an ASCII character other than NUL.
    let ascii = |b: u8| b != 0 && b < 0x80;
    match *bytes {
        // UCS-4 marks first: FF FE 00 00 would otherwise read as UTF-16LE's mark and a NUL.
        [0, 0, 0xFE, 0xFF, ..] => ucs4(UCS4_1234, 4),
        [0xFF, 0xFE, 0, 0, ..] => ucs4(UCS4_4321, 4),
        [0, 0, 0xFF, 0xFE, ..] => ucs4(UCS4_2143, 4),
        [0xFE, 0xFF, 0, 0, ..] => ucs4(UCS4_3412, 4),
        [0xEF, 0xBB, 0xBF, ..] => known(encoding_rs::UTF_8),
        [0xFE, 0xFF, ..] => known(encoding_rs::UTF_16BE),
        [0xFF, 0xFE, ..] => known(encoding_rs::UTF_16LE),
        [0, 0, 0, c, ..] if ascii(c) => ucs4(UCS4_1234, 0),
        [c, 0, 0, 0, ..] if ascii(c) => ucs4(UCS4_4321, 0),
        [0, 0, c, 0, ..] if ascii(c) => ucs4(UCS4_2143, 0),
        [0, c, 0, 0, ..] if ascii(c) => ucs4(UCS4_3412, 0),
        [0, c, 0, d, ..] if ascii(c) && ascii(d) => known(encoding_rs::UTF_16BE),
        [c, 0, d, 0, ..] if ascii(c) && ascii(d) => known(encoding_rs::UTF_16LE),
        _ => None,
    }
}

/// UCS-4 in the given byte order to text; a value that is no character, and a cut-off last
/// unit, become U+FFFD as a decoder would make them.
fn decode_ucs4(bytes: &[u8], order: [usize; 4]) -> String {
    let units = bytes.chunks_exact(4);
    let cut_off = !units.remainder().is_empty();
    let mut text: String = units
        .map(|unit| {
            let value = order
                .iter()
                .fold(0u32, |value, &at| value << 8 | u32::from(unit[at]));
            char::from_u32(value).unwrap_or(char::REPLACEMENT_CHARACTER)
        })
        .collect();
    if cut_off {
        text.push(char::REPLACEMENT_CHARACTER);
    }
    text
}

/// A UTF-16 label on a body that is not UTF-16 (BOM and sniffing found none) is a lie.
fn not_utf16(encoding: &&'static Encoding) -> bool {
    *encoding != encoding_rs::UTF_16LE && *encoding != encoding_rs::UTF_16BE
}

fn declared_encoding(bytes: &[u8]) -> Option<&'static Encoding> {
    let head = &bytes[..bytes.len().min(256)];
    let head = String::from_utf8_lossy(head);
    let decl = head.trim_start().strip_prefix("<?xml")?;
    let decl = &decl[..decl.find("?>")?];
    let label = attribute(decl, "encoding")?;
    Encoding::for_label(label.as_bytes())
}

fn charset_of(content_type: &str) -> Option<&'static Encoding> {
    content_type.split(';').skip(1).find_map(|param| {
        let (key, value) = param.split_once('=')?;
        if key.trim().eq_ignore_ascii_case("charset") {
            Encoding::for_label(value.trim().trim_matches('"').as_bytes())
        } else {
            None
        }
    })
}

/// The value of `name="..."` or `name='...'` in an XML declaration or start tag.
pub(super) fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = tag;
    while let Some(at) = rest.find(name) {
        let after = rest[at + name.len()..].trim_start();
        let preceded_by_space = rest[..at].ends_with(|c: char| c.is_whitespace());
        if preceded_by_space && let Some(value) = after.strip_prefix('=') {
            let value = value.trim_start();
            let quote = value.chars().next()?;
            if quote == '"' || quote == '\'' {
                let value = &value[1..];
                return value.find(quote).map(|end| &value[..end]);
            }
        }
        rest = &rest[at + name.len()..];
    }
    None
}

/// Rewrites `encoding="..."` in a leading XML declaration to UTF-8, after dropping any
/// declaration cut short before it; `None` if nothing to do.
fn rewrite_declaration(text: &str) -> Option<String> {
    let body = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut body = Cow::Borrowed(body);
    while let Some((start, cut)) = broken_declaration(&body) {
        body = Cow::Owned(format!("{}{}", &body[..start], &body[start + cut..]));
    }
    let changed = body.len() != text.len();
    let start = body.len() - body.trim_start().len();
    if !body[start..].starts_with("<?xml") {
        return changed.then(|| body.into_owned());
    }
    let end = start + body[start..].find("?>")?;
    let decl = &body[start..end];
    let Some(label) = attribute(decl, "encoding") else {
        return changed.then(|| body.into_owned());
    };
    if label.eq_ignore_ascii_case("utf-8") {
        return changed.then(|| body.into_owned());
    }
    let label_at = start + decl.find(label)?;
    let mut fixed = String::with_capacity(body.len());
    fixed.push_str(&body[..label_at]);
    fixed.push_str("UTF-8");
    fixed.push_str(&body[label_at + label.len()..]);
    Some(fixed)
}

/// Where a leading XML declaration cut short starts and how long it is. A declaration holds no
/// `<` and ends at its first `>`, which `?` comes before. One cut short (`<?xml ve<rss …`)
/// would have the XML layer read on to the next `?>`, into the document, and take an
/// `encoding` found there in mid-read (it panics), so it goes; the one after it may be cut
/// short too.
fn broken_declaration(body: &str) -> Option<(usize, usize)> {
    let start = body.len() - body.trim_start().len();
    let rest = &body[start..];
    if !rest.starts_with("<?xml") {
        return None;
    }
    let close = rest.find('>');
    let next_tag = rest[1..].find('<').map(|at| at + 1);
    let well_formed = match close {
        Some(close) => next_tag.is_none_or(|next| next > close) && rest[..close].ends_with('?'),
        None => false,
    };
    if well_formed {
        return None;
    }
    Some((
        start,
        next_tag.or(close.map(|c| c + 1)).unwrap_or(rest.len()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "<?xml version=\"1.0\" encoding=\"ENC\"?><rss version=\"2.0\"><channel>\
                       <title>Grüße – 日本 😀</title></channel></rss>";
    const ASCII_DOC: &str = "<?xml version=\"1.0\" encoding=\"ENC\"?><rss version=\"2.0\"><channel><title>Plain</title></channel></rss>";

    fn utf16(text: &str, big_endian: bool) -> Vec<u8> {
        text.encode_utf16()
            .flat_map(|u| {
                if big_endian {
                    u.to_be_bytes()
                } else {
                    u.to_le_bytes()
                }
            })
            .collect()
    }

    /// UCS-4 laid out in `order` (where each byte, most significant first, goes).
    fn ucs4(text: &str, order: [usize; 4]) -> Vec<u8> {
        text.chars()
            .flat_map(|c| {
                let big = u32::from(c).to_be_bytes();
                let mut unit = [0u8; 4];
                for (significance, &at) in order.iter().enumerate() {
                    unit[at] = big[significance];
                }
                unit
            })
            .collect()
    }

    /// The decoded text, which must be the document with its declaration saying UTF-8.
    fn assert_decodes(bytes: &[u8], template: &str, what: &str) {
        assert_eq!(
            decode(bytes, None),
            template.replace("ENC", "UTF-8"),
            "{what}"
        );
    }

    #[test]
    fn utf16_is_recognised_with_and_without_a_byte_order_mark() {
        for template in [DOC, ASCII_DOC] {
            let doc = template.replace("ENC", "UTF-16");
            for big_endian in [true, false] {
                let bare = utf16(&doc, big_endian);
                assert_decodes(&bare, template, &format!("UTF-16 big endian {big_endian}"));
                let mut marked = utf16("\u{feff}", big_endian);
                marked.extend(&bare);
                assert_decodes(
                    &marked,
                    template,
                    &format!("marked UTF-16 big endian {big_endian}"),
                );
            }
        }
    }

    #[test]
    fn ucs4_is_recognised_in_every_byte_order_with_and_without_a_mark() {
        for template in [DOC, ASCII_DOC] {
            let doc = template.replace("ENC", "ISO-10646-UCS-4");
            for order in [UCS4_1234, UCS4_4321, UCS4_2143, UCS4_3412] {
                let bare = ucs4(&doc, order);
                assert_eq!(announced(&bare), Some(Layout::Ucs4 { order, bom: 0 }));
                assert_decodes(&bare, template, &format!("UCS-4 {order:?}"));
                let marked = ucs4(&format!("\u{feff}{doc}"), order);
                assert_eq!(announced(&marked), Some(Layout::Ucs4 { order, bom: 4 }));
                assert_decodes(&marked, template, &format!("marked UCS-4 {order:?}"));
            }
        }
    }

    #[test]
    fn markup_without_a_declaration_is_recognised_too() {
        let doc = "\n  <rss version=\"2.0\"><channel><title>T</title></channel></rss>";
        assert_eq!(decode(&utf16(doc, true), None), doc);
        assert_eq!(decode(&utf16(doc, false), None), doc);
        assert_eq!(decode(&ucs4(doc, UCS4_4321), None), doc);
        let json = "{\"version\":\"https://jsonfeed.org/version/1.1\",\"items\":[]}";
        assert_eq!(decode(&utf16(json, true), None), json);
    }

    #[test]
    fn eight_bit_and_utf8_bodies_are_not_taken_for_wide_ones() {
        for bytes in [
            &b"<?xml version=\"1.0\"?><rss/>"[..],
            b"\xef\xbb\xbf<rss/>",
            b"<rss><title>\xe9t\xe9</title></rss>",
            b"",
            b"<",
            b"\0",
        ] {
            assert!(
                !matches!(announced(bytes), Some(Layout::Ucs4 { .. })),
                "{bytes:?}"
            );
        }
        assert_eq!(announced(b"<rss/>"), None);
    }

    #[test]
    fn dropping_a_declaration_never_joins_the_text_around_it_into_another() {
        let spliced = "<feed><rights>R<?xm<?xml version=\"1.0\" encoding=\"windows-1251\"?>l \
                       version=\"9.0\" encoding=\"windows-1251\"?>s</rights></feed>";
        let settled = settle(Cow::Borrowed(spliced));
        assert!(!settled.contains("<?xml"), "{settled}");
    }

    #[test]
    fn a_declaration_cut_short_is_dropped_not_read_into_the_document() {
        let cut = "<?xml ve<rss version=\"2.0\"><channel><title>T</title></channel></rss>\
                   <?xml version=\"1.0\" encoding=\"utf-16\"?>";
        let settled = settle(Cow::Borrowed(cut));
        assert!(settled.starts_with("<rss version"), "{settled}");
        assert!(!settled.contains("<?xml"), "{settled}");
        let unclosed = settle(Cow::Borrowed("<?xml version='1.0' x><rss/>"));
        assert_eq!(unclosed, "<rss/>");
        let twice = "\n<?xml version=\"1.0\" encoding=\"u<?xml encoding=\"windows-1251\"{\"a\":1}";
        // With no markup after them, nothing is left to read.
        assert_eq!(settle(Cow::Borrowed(twice)), "\n");
    }

    #[test]
    fn a_declaration_that_does_not_open_the_document_is_dropped() {
        let doc = "<?xml version=\"1.0\" encoding=\"utf-16\"?><rss><!-- x --><?xml version=\"1.0\" encoding=\"utf-16\"?><channel/><?xml-stylesheet href=\"a\"?></rss>";
        let bytes: Vec<u8> = doc.encode_utf16().flat_map(|u| u.to_be_bytes()).collect();
        assert_eq!(
            decode(&bytes, None),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><rss><!-- x --> <channel/><?xml-stylesheet href=\"a\"?></rss>"
        );
        assert_eq!(decode(b"<a/><?xml version=\"1.0\"", None), "<a/> ");
        assert_eq!(
            decode(b"  <?xml version=\"1.0\"?><a/>", None),
            "  <?xml version=\"1.0\"?><a/>"
        );
    }

    #[test]
    fn nul_characters_are_dropped() {
        // A UTF-16 mark before text that is itself wide: decoded, it is `<\0?\0x\0…`.
        let mut bytes = vec![0xFE, 0xFF];
        bytes.extend(utf16("<\0?\0x\0m\0l\0 version=\"1.0\"?><a/>", true));
        assert_eq!(decode(&bytes, None), "<?xml version=\"1.0\"?><a/>");
        assert_eq!(decode(b"<a>\0b</a>", None), "<a>b</a>");
    }

    #[test]
    fn a_cut_off_or_impossible_ucs4_unit_is_a_replacement_character() {
        let mut bytes = ucs4("<a>", UCS4_1234);
        bytes.extend([0x00, 0x11, 0x00, 0x00]); // beyond U+10FFFF
        bytes.extend([0x00, 0x00]);
        assert_eq!(decode(&bytes, None), "<a>\u{fffd}\u{fffd}");
    }
}

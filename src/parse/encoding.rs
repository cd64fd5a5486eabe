//! Bytes in any charset -> UTF-8 text whose XML declaration (if any) says UTF-8.
//!
//! The order follows what browsers and feedparser do: BOM, then valid UTF-8 as is, then the XML
//! declaration, then the HTTP charset, then a detector for undeclared bodies.

use std::borrow::Cow;

use encoding_rs::Encoding;

/// Decodes `bytes` to UTF-8 and makes any XML declaration say so, since feed-rs would
/// otherwise decode a second time by the declared label.
pub fn decode<'a>(bytes: &'a [u8], content_type: Option<&str>) -> Cow<'a, str> {
    let encoding = if let Some((encoding, _)) = Encoding::for_bom(bytes) {
        encoding
    } else if let Ok(text) = std::str::from_utf8(bytes) {
        return match rewrite_declaration(text) {
            Some(fixed) => Cow::Owned(fixed),
            None => Cow::Borrowed(text),
        };
    } else if let Some(utf16) = sniff_utf16(bytes) {
        utf16
    } else {
        declared_encoding(bytes)
            .filter(not_utf16)
            .or_else(|| content_type.and_then(charset_of).filter(not_utf16))
            .unwrap_or_else(|| {
                let mut detector =
                    chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Allow);
                detector.feed(bytes, true);
                detector.guess(None, chardetng::Utf8Detection::Allow)
            })
    };
    let (text, _, _) = encoding.decode(bytes);
    let text = text.into_owned();
    Cow::Owned(rewrite_declaration(&text).unwrap_or(text))
}

/// UTF-16 without a BOM: ASCII markup leaves a zero in every other byte, odd positions for
/// little-endian and even ones for big-endian.
fn sniff_utf16(bytes: &[u8]) -> Option<&'static Encoding> {
    let head = &bytes[..bytes.len().min(64) & !1];
    if head.len() < 4 {
        return None;
    }
    let pairs = head.len() / 2;
    let zeros_at = |parity: usize| {
        head.iter()
            .enumerate()
            .filter(|(i, b)| i % 2 == parity && **b == 0)
            .count()
    };
    let (even, odd) = (zeros_at(0), zeros_at(1));
    if odd * 4 >= pairs * 3 && even == 0 {
        Some(encoding_rs::UTF_16LE)
    } else if even * 4 >= pairs * 3 && odd == 0 {
        Some(encoding_rs::UTF_16BE)
    } else {
        None
    }
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

/// Rewrites `encoding="..."` in a leading XML declaration to UTF-8; `None` if nothing to do.
fn rewrite_declaration(text: &str) -> Option<String> {
    let body = text.strip_prefix('\u{feff}').unwrap_or(text);
    let start = body.len() - body.trim_start().len();
    if !body[start..].starts_with("<?xml") {
        return (body.len() != text.len()).then(|| body.to_string());
    }
    let end = start + body[start..].find("?>")?;
    let decl = &body[start..end];
    let label = attribute(decl, "encoding")?;
    if label.eq_ignore_ascii_case("utf-8") {
        return (body.len() != text.len()).then(|| body.to_string());
    }
    let label_at = start + decl.find(label)?;
    let mut fixed = String::with_capacity(body.len());
    fixed.push_str(&body[..label_at]);
    fixed.push_str("UTF-8");
    fixed.push_str(&body[label_at + label.len()..]);
    Some(fixed)
}

//! Reading HTML as text: start tags and their attributes, and character entities. Both the
//! feed parser (entities in feed text) and feed discovery (link tags in web pages) read HTML
//! this way; neither needs a DOM.

use std::borrow::Cow;

/// The inside of every start tag (`<` and `>` excluded), skipping comments.
pub(crate) fn start_tags(html: &str) -> impl Iterator<Item = &str> {
    let mut rest = html;
    std::iter::from_fn(move || {
        loop {
            let open = rest.find('<')?;
            rest = &rest[open + 1..];
            if let Some(comment) = rest.strip_prefix("!--") {
                rest = comment.find("-->").map_or("", |end| &comment[end + 3..]);
                continue;
            }
            let close = rest.find('>')?;
            let tag = &rest[..close];
            rest = &rest[close + 1..];
            if tag.starts_with(|c: char| c.is_ascii_alphabetic()) {
                return Some(tag);
            }
        }
    })
}

/// A start tag's name, lower-cased.
pub(crate) fn tag_name(tag: &str) -> String {
    tag.chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase()
}

/// An attribute's value, quoted or not, with entities `&amp;` decoded.
pub(crate) fn attr(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(at) = lower[from..].find(name) {
        let start = from + at;
        from = start + name.len();
        let before_ok = lower[..start].ends_with(|c: char| c.is_ascii_whitespace());
        let after = lower[from..].trim_start();
        if !before_ok || !after.starts_with('=') {
            continue;
        }
        let value_start = tag.len() - after.len() + 1;
        let value = tag[value_start..].trim_start();
        let raw = match value.chars().next()? {
            q @ ('"' | '\'') => value[1..].split(q).next().unwrap_or(""),
            _ => value
                .split(|c: char| c.is_ascii_whitespace() || c == '/')
                .next()
                .unwrap_or(""),
        };
        return Some(decode_entities(raw.trim()).into_owned());
    }
    None
}

/// Decodes `&name;`, `&#123;` and `&#x7B;`; anything unknown is left as written.
pub fn decode_entities(text: &str) -> Cow<'_, str> {
    if memchr::memchr(b'&', text.as_bytes()).is_none() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = memchr::memchr(b'&', rest.as_bytes()) {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let decoded = after.find(';').filter(|&n| n > 0 && n <= 32).and_then(|n| {
            let name = &after[..n];
            let c = if let Some(num) = name.strip_prefix('#') {
                let code = match num.strip_prefix(['x', 'X']) {
                    Some(hex) => u32::from_str_radix(hex, 16).ok(),
                    None => num.parse().ok(),
                };
                code.and_then(char::from_u32)
            } else {
                named_entity(name)
            };
            c.map(|c| (c, n))
        });
        match decoded {
            Some((c, n)) => {
                out.push(c);
                rest = &after[n + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// The named entities news feeds actually use (XML's five, Latin-1, and common punctuation).
pub(crate) fn named_entity(name: &str) -> Option<char> {
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => '\u{a0}',
        "ndash" => '–',
        "mdash" => '—',
        "lsquo" => '‘',
        "rsquo" => '’',
        "sbquo" => '‚',
        "ldquo" => '“',
        "rdquo" => '”',
        "bdquo" => '„',
        "laquo" => '«',
        "raquo" => '»',
        "lsaquo" => '‹',
        "rsaquo" => '›',
        "hellip" => '…',
        "bull" => '•',
        "middot" => '·',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        "deg" => '°',
        "euro" => '€',
        "pound" => '£',
        "yen" => '¥',
        "cent" => '¢',
        "sect" => '§',
        "para" => '¶',
        "times" => '×',
        "divide" => '÷',
        "plusmn" => '±',
        "iexcl" => '¡',
        "iquest" => '¿',
        "shy" => '\u{ad}',
        "zwnj" => '\u{200c}',
        "zwj" => '\u{200d}',
        "thinsp" => '\u{2009}',
        "ensp" => '\u{2002}',
        "emsp" => '\u{2003}',
        "dagger" => '†',
        "prime" => '′',
        "Prime" => '″',
        "frac12" => '½',
        "frac14" => '¼',
        "frac34" => '¾',
        "sup2" => '²',
        "sup3" => '³',
        "micro" => 'µ',
        "ordf" => 'ª',
        "ordm" => 'º',
        "szlig" => 'ß',
        _ => return latin1_letter(name),
    })
}

/// `&eacute;`, `&Uuml;`, `&ccedil;` …: a base letter plus an accent name.
fn latin1_letter(name: &str) -> Option<char> {
    const ACCENTS: &[(&str, [char; 2], &str)] = &[
        ("grave", ['\u{300}', '\u{300}'], "aeiouAEIOU"),
        ("acute", ['\u{301}', '\u{301}'], "aeiouyAEIOUY"),
        ("circ", ['\u{302}', '\u{302}'], "aeiouAEIOU"),
        ("tilde", ['\u{303}', '\u{303}'], "anoANO"),
        ("uml", ['\u{308}', '\u{308}'], "aeiouyAEIOUY"),
        ("ring", ['\u{30a}', '\u{30a}'], "aA"),
        ("cedil", ['\u{327}', '\u{327}'], "cC"),
    ];
    let mut chars = name.chars();
    let base = chars.next()?;
    let accent = chars.as_str();
    let special = match name {
        "aelig" => Some('æ'),
        "AElig" => Some('Æ'),
        "oslash" => Some('ø'),
        "Oslash" => Some('Ø'),
        "eth" => Some('ð'),
        "ETH" => Some('Ð'),
        "thorn" => Some('þ'),
        "THORN" => Some('Þ'),
        _ => None,
    };
    if special.is_some() {
        return special;
    }
    let (_, marks, bases) = ACCENTS.iter().find(|(a, _, _)| *a == accent)?;
    if !bases.contains(base) {
        return None;
    }
    use unicode_normalization::UnicodeNormalization;
    let composed: String = [base, marks[0]].iter().collect::<String>().nfc().collect();
    let mut composed = composed.chars();
    let c = composed.next()?;
    composed.next().is_none().then_some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_without_entities_is_not_copied() {
        assert!(matches!(decode_entities("plain"), Cow::Borrowed("plain")));
        assert_eq!(decode_entities("a &amp; b"), "a & b");
    }
}

//! Markup -> plain text: tags dropped, entities decoded, whitespace collapsed.

/// Plain text from HTML: tags dropped (attribute values are not text), `script` and `style`
/// dropped with their content, entities decoded, whitespace collapsed. Markup that was escaped
/// once more (`&lt;b&gt;` in an RSS title) is treated the same way.
pub fn html_to_text(html: &str) -> String {
    let mut text = strip_tags(html);
    text = decode_entities(&text);
    if text.contains('<') && text.contains('>') && looks_like_markup(&text) {
        text = decode_entities(&strip_tags(&text));
    } else if text.contains('&') {
        // Double-escaped entities (`&amp;eacute;`).
        text = decode_entities(&text);
    }
    collapse_whitespace(&text)
}

fn looks_like_markup(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes
        .windows(2)
        .any(|w| w[0] == b'<' && (w[1].is_ascii_alphabetic() || w[1] == b'/' || w[1] == b'!'))
}

fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
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
        let Some(close) = after.find('>') else {
            // An unclosed `<` at the end is text, not a tag.
            out.push('<');
            rest = after;
            continue;
        };
        let tag = &after[..close];
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        rest = &after[close + 1..];
        if !tag.starts_with('/') && (name == "script" || name == "style") {
            let end_tag = format!("</{name}");
            let lower = rest.to_ascii_lowercase();
            rest = match lower.find(&end_tag) {
                Some(end) => rest[end..].find('>').map_or("", |gt| &rest[end + gt + 1..]),
                None => "",
            };
        }
        // Block-level tags separate words; inline ones (b, i, a, span) do not.
        if matches!(
            name.as_str(),
            "br" | "p"
                | "div"
                | "li"
                | "ul"
                | "ol"
                | "tr"
                | "td"
                | "th"
                | "h1"
                | "h2"
                | "h3"
                | "h4"
                | "h5"
                | "h6"
                | "blockquote"
                | "hr"
                | "img"
                | "table"
                | "figure"
                | "figcaption"
                | "section"
                | "article"
                | "header"
                | "footer"
                | "pre"
        ) {
            out.push(' ');
        }
    }
    out.push_str(rest);
    out
}

/// Decodes `&name;`, `&#123;` and `&#x7B;`; anything unknown is left as written.
pub fn decode_entities(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
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
    out
}

/// The named entities news feeds actually use (XML's five, Latin-1, and common punctuation).
pub(super) fn named_entity(name: &str) -> Option<char> {
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

fn collapse_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split(|c: char| c.is_whitespace()) {
        if word.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

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

/// An attribute's value, quoted or not, with its entities decoded.
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
        // In an attribute `&copy=1` in a URL stays as written, as browsers leave it.
        return Some(htmlize::unescape_attribute(raw.trim()).into_owned());
    }
    None
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
        assert_eq!(
            attr(r#"link href="/f?a=1&copy=2&amp;b=&eacute;""#, "href").as_deref(),
            Some("/f?a=1&copy=2&b=é")
        );
        assert_eq!(named_entity("scaron"), Some("š"));
        assert_eq!(named_entity("NotEqualTilde"), Some("≂\u{338}"));
        assert_eq!(named_entity("bogus"), None);
    }
}

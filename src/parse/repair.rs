//! Repairs for the small faults that make feed-rs reject or misread a whole feed. Each repair is
//! a text -> text rewrite; `parse` tries them only after a first attempt fails.

use std::sync::LazyLock;

use regex::Regex;

use super::attribute;
use crate::html::named_entity;
use hidden::{Ends, Hidden, NextFind, rewrite_outside};
use markers::Marker;

pub(super) mod hidden;
mod markers;
mod markers_fast;

/// Fixes the small faults that make feed-rs reject a whole feed. Returns the text unchanged when
/// none applies.
pub(super) fn repair(text: &str) -> String {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        return repair_json_feed(text);
    }
    let text = fix_rss_version(text);
    // Before balancing: only a document that ends its own `<rss>` is an empty feed; a truncated
    // one stays an error.
    let text = add_missing_channel(escape_stray_ampersands(&text));
    balance_tags(&text)
}

/// A run of what feed-rs's author parser can take into an e-mail address match (the address,
/// `mailto:`, its odd `<[(` and `>])` delimiters), with the `&`, `#` and `;` of the character
/// references that may stand for them in the source.
static EMAIL_RUN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[A-Za-z0-9._%+\-:\[\]()&#;]*@[A-Za-z0-9._%+\-:\[\]()&#;]*")
        .expect("static pattern")
});

/// A numeric character reference, XML (`&#133;`, `&#x85;`) or JSON (`\u0085`, after any
/// escaped backslash).
static NUMERIC_REFERENCE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"&#[xX]([0-9A-Fa-f]{1,6});|&#([0-9]{1,7});|(\\\\)|\\u([0-9A-Fa-f]{4})")
        .expect("static pattern")
});

/// Puts a space between anything that may be an e-mail address and a non-ASCII character that
/// touches it (`Editor\u{a0}news@example.org`, `(\u{85}mailto:news@example.org)`): feed-rs
/// takes an author's name to be what is left after the address and one byte more, and panics
/// when that byte is inside a character. Non-ASCII characters written as references are
/// written out first, as the parser would see them.
pub(super) fn space_out_emails(text: &str) -> String {
    let text = write_out_references(text);
    let mut out = String::with_capacity(text.len() + 16);
    let mut copied = 0;
    for run in EMAIL_RUN.find_iter(&text) {
        out.push_str(&text[copied..run.start()]);
        let before = text[..run.start()].chars().next_back();
        let after = text[run.end()..].chars().next();
        if before.is_some_and(|c| !c.is_ascii()) {
            out.push(' ');
        }
        out.push_str(run.as_str());
        if after.is_some_and(|c| !c.is_ascii()) {
            out.push(' ');
        }
        copied = run.end();
    }
    out.push_str(&text[copied..]);
    out
}

/// The start and end tags of the RSS elements whose text feed-rs reads as "name and e-mail
/// address".
static AUTHOR_TAG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"<(/?)(managingEditor|webMaster|author)\b").expect("static pattern")
});

/// The feed without what feed-rs parses as an author's name and address: RSS
/// `managingEditor`, `webMaster` and `author` elements (renamed to names it skips), JSON Feed
/// `author` and `authors`.
/// The last resort for a feed that made the author parser panic however its addresses were
/// set apart: a feed without authors is better than none.
pub(super) fn drop_authors(text: &str) -> String {
    if text.trim_start().starts_with('{') {
        let Ok(mut feed) = serde_json::from_str::<serde_json::Value>(text) else {
            return text.to_string();
        };
        let strip = |object: &mut serde_json::Value| {
            if let Some(map) = object.as_object_mut() {
                map.remove("author");
                map.remove("authors");
            }
        };
        strip(&mut feed);
        if let Some(items) = feed.get_mut("items").and_then(|i| i.as_array_mut()) {
            items.iter_mut().for_each(strip);
        }
        return feed.to_string();
    }
    // Renamed, not cut out: an element feed-rs does not know is skipped whole, however its
    // content or its end is broken.
    rewrite_outside(text, |text| {
        AUTHOR_TAG
            .replace_all(text, "<${1}x-dropped-$2")
            .into_owned()
    })
}

/// Replaces references to non-ASCII characters by the characters, where the text may hold
/// them as they are (not the XML-invalid ones, not JSON's surrogate halves).
fn write_out_references(text: &str) -> std::borrow::Cow<'_, str> {
    NUMERIC_REFERENCE.replace_all(text, |c: &regex::Captures| {
        let whole = c[0].to_string();
        if c.get(3).is_some() {
            return whole;
        }
        let (digits, radix) = match (c.get(1), c.get(2), c.get(4)) {
            (Some(hex), _, _) | (_, _, Some(hex)) => (hex.as_str(), 16),
            (_, Some(dec), _) => (dec.as_str(), 10),
            _ => return whole,
        };
        match u32::from_str_radix(digits, radix)
            .ok()
            .and_then(char::from_u32)
        {
            Some(ch) if !ch.is_ascii() && !matches!(ch, '\u{fffe}' | '\u{ffff}') => ch.to_string(),
            _ => whole,
        }
    })
}

/// `<rss>` with no `<channel>` is an empty feed, not an unknown document.
fn add_missing_channel(text: String) -> String {
    let hidden = Hidden::of(&text);
    if hidden.find(&text, 0, "<rss").is_none() || hidden.find(&text, 0, "<channel").is_some() {
        return text;
    }
    match hidden.matches(&text, 0, "</rss>").last() {
        Some(end) => format!("{}<channel></channel>{}", &text[..end], &text[end..]),
        None => text,
    }
}

/// `<rss>` without a version, or with one feed-rs does not know, is read as RSS 2.0.
fn fix_rss_version(text: &str) -> String {
    let Some(start) = Hidden::of(text).find(text, 0, "<rss") else {
        return text.to_string();
    };
    let Some(len) = text[start..].find('>') else {
        return text.to_string();
    };
    let tag = &text[start..start + len];
    if !tag[4..].starts_with(|c: char| c.is_whitespace() || c == '>') && tag.len() > 4 {
        return text.to_string();
    }
    let known = matches!(attribute(tag, "version"), Some("0.91" | "0.92" | "2.0"));
    if known {
        return text.to_string();
    }
    let mut fixed_tag = String::from("<rss version=\"2.0\"");
    let mut rest = &tag[4..];
    if let Some(v) = rest.find("version") {
        // Drop the old attribute: `version="…"` up to its closing quote.
        let after = &rest[v..];
        if let Some(open) = after.find(['"', '\'']) {
            let quote = after.as_bytes()[open] as char;
            if let Some(close) = after[open + 1..].find(quote) {
                let cut_end = v + open + 1 + close + 1;
                fixed_tag.push_str(&rest[..v]);
                rest = &rest[cut_end..];
            }
        }
    }
    fixed_tag.push_str(rest);
    format!("{}{}{}", &text[..start], fixed_tag, &text[start + len..])
}

/// `&` not starting an XML entity becomes `&amp;`; HTML named entities become numeric ones.
/// Not in CDATA, where `&` is a plain character, nor in comments or processing instructions.
fn escape_stray_ampersands(text: &str) -> String {
    rewrite_outside(text, escape_ampersands)
}

fn escape_ampersands(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let entity_len = after.find(';').filter(|&n| n > 0 && n <= 32).filter(|&n| {
            after[..n]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '#')
        });
        match entity_len {
            Some(n) => {
                let name = &after[..n];
                if name.starts_with('#') || matches!(name, "amp" | "lt" | "gt" | "quot" | "apos") {
                    out.push('&');
                    out.push_str(name);
                    out.push(';');
                } else if let Some(text) = named_entity(name) {
                    for c in text.chars() {
                        out.push_str(&format!("&#{};", u32::from(c)));
                    }
                } else {
                    out.push_str("&amp;");
                    out.push_str(name);
                    out.push(';');
                }
                rest = &after[n + 1..];
            }
            None => {
                out.push_str("&amp;");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// A JSON Feed whose `version` is not the spec URL feed-rs expects.
fn repair_json_feed(text: &str) -> String {
    let Ok(mut value) = serde_json::from_str::<serde_json::Value>(text) else {
        return text.to_string();
    };
    let Some(object) = value.as_object_mut() else {
        return text.to_string();
    };
    let version = object
        .get("version")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_string();
    let fixed = if version.contains("1.1") {
        "https://jsonfeed.org/version/1.1"
    } else {
        "https://jsonfeed.org/version/1"
    };
    object.insert("version".into(), fixed.into());
    // The spec requires a title; feed-rs refuses the whole feed without one.
    object.entry("title").or_insert_with(|| "".into());
    if let Some(items) = object.get_mut("items").and_then(|i| i.as_array_mut()) {
        for item in items {
            // `"tags": "a"` where the spec says an array.
            if let Some(tags) = item.get_mut("tags")
                && let Some(tag) = tags.as_str()
            {
                *tags = serde_json::Value::Array(vec![tag.into()]);
            }
        }
    }
    value.to_string()
}

// ---- rewrites applied before the first parse: feed-rs reads these feeds wrongly, not at all ----

/// A text rewrite; `None` when it has nothing to change.
type Rewrite = fn(&str) -> Option<String>;

/// Old dialects feed-rs accepts but misreads into an empty feed: Atom 0.3 becomes Atom 1.0, RSS
/// 2.0 under the UserLand default namespace loses that namespace, and Atom text constructs with
/// a MIME type or a base64 body become plain `text`/`html`/`xhtml`, RSS 1.0 items without a
/// link are kept, elements of other vocabularies stand in for missing RSS ones (`dc:title`,
/// `atom:published`, …), well-known prefixes used without a declaration (or declared in another
/// letter case) are declared, and markup written straight into a title or summary
/// is kept as markup.
pub(super) fn normalise(text: &str) -> Option<String> {
    // Each step: whether the text can need it (the markers it holds, found in one pass), and
    // the rewrite.
    let found = markers_fast::find(text);
    let has = |marker: Marker| found.has(marker);
    let steps: [(bool, Rewrite); 9] = [
        (has(Marker::NestedItem), flatten_nested_items),
        (has(Marker::Thumbnail), keep_lone_thumbnails),
        (has(Marker::Atom03), |t| Some(upgrade_atom03(t))),
        (has(Marker::UserLand), |t| {
            Some(rewrite_outside(t, |s| {
                USERLAND_NS.replace_all(s, "").into_owned()
            }))
        }),
        (
            has(Marker::TypeAttribute) || has(Marker::ModeAttribute),
            fix_text_constructs,
        ),
        (has(Marker::Rdf), mark_rdf_items_without_link),
        (has(Marker::StandIn), adopt_stand_ins),
        (has(Marker::WellKnownPrefix), declare_known_prefixes),
        (has(Marker::NakedMarkup), keep_naked_markup),
    ];
    let mut changed: Option<String> = None;
    for (applies, step) in steps {
        if applies && let Some(fixed) = step(changed.as_deref().unwrap_or(text)) {
            changed = Some(fixed);
        }
    }
    changed
}

/// feed-rs drops RSS 1.0 items without a `<link>`, though their `rdf:about` names them. Such
/// items get this placeholder link, which `convert` removes again.
pub(super) const NO_LINK: &str = "urn:feedwatch:no-link";

static ITEM_START: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"<((?:[A-Za-z_][\w.-]*:)?item)(?:\s[^>]*)?>").expect("static pattern")
});

fn mark_rdf_items_without_link(text: &str) -> Option<String> {
    rewrite_items(text, |body| {
        let hidden = Hidden::of(body);
        (hidden.find(body, 0, ":link").is_none() && hidden.find(body, 0, "<link").is_none())
            .then(|| format!("<link>{NO_LINK}</link>{body}"))
    })
}

/// Elements of other vocabularies that feedparser reads as an RSS element when the RSS one is
/// missing, and that feed-rs ignores there: `(stand-in, RSS element)`.
const STAND_INS: [(&str, &str); 7] = [
    ("dc:title", "title"),
    ("media:title", "title"),
    ("dc:description", "description"),
    ("atom:summary", "description"),
    ("atom:content", "description"),
    ("atom:published", "pubDate"),
    ("atom:updated", "pubDate"),
];

/// An RSS item (or channel) without a title, description or date, but with a stand-in for it
/// from [`STAND_INS`], gets the RSS element with the stand-in's content; the stand-in may sit
/// deeper (a `media:title` inside an `enclosure`).
fn adopt_stand_ins(text: &str) -> Option<String> {
    let adopt = |body: &str| {
        let hidden = Hidden::of(body);
        let mut added = String::new();
        for (stand_in, element) in STAND_INS {
            if has_element(body, &hidden, element) || added.contains(&format!("<{element}")) {
                continue;
            }
            if let Some((attrs, inner)) = element_body(body, &hidden, stand_in) {
                added.push_str(&format!("<{element}{attrs}>{inner}</{element}>"));
            }
        }
        (!added.is_empty()).then(|| format!("{added}{body}"))
    };
    let with_items = rewrite_items(text, adopt);
    let text = with_items.as_deref().unwrap_or(text);
    // The channel's own elements come before its first item.
    let hidden = Hidden::of(text);
    let channel = hidden
        .find(text, 0, "<channel")
        .and_then(|at| Some(at + text[at..].find('>')? + 1));
    let with_channel = channel.and_then(|start| {
        let end = hidden
            .find(text, start, "<item")
            .or_else(|| hidden.find(text, start, "</channel>"))
            .unwrap_or(text.len());
        let head = adopt(&text[start..end])?;
        Some(format!("{}{head}{}", &text[..start], &text[end..]))
    });
    with_channel.or(with_items)
}

/// Whether `body` (with its `hidden` spans) holds an element named `name` (and not just a
/// longer name starting so).
fn has_element(body: &str, hidden: &Hidden, name: &str) -> bool {
    let open = format!("<{name}");
    hidden.matches(body, 0, &open).any(|at| {
        body[at + open.len()..].starts_with(|c: char| c.is_whitespace() || c == '>' || c == '/')
    })
}

/// The attributes and content of the first `<name …>…</name>` in `body` (with its `hidden`
/// spans).
fn element_body<'a>(body: &'a str, hidden: &Hidden, name: &str) -> Option<(&'a str, &'a str)> {
    let open = format!("<{name}");
    let at = hidden
        .matches(body, 0, &open)
        .find(|at| body[at + open.len()..].starts_with(|c: char| c.is_whitespace() || c == '>'))?;
    let after_name = at + open.len();
    let tag_end = after_name + body[after_name..].find('>')?;
    let attrs = &body[after_name..tag_end];
    if attrs.ends_with('/') {
        return None;
    }
    let close = format!("</{name}>");
    let inner_end = hidden.find(body, tag_end + 1, &close)?;
    Some((attrs, &body[tag_end + 1..inner_end]))
}

/// An RSS item opened inside another (`<item>…<item>…</item></item>`) is a feed's mistake, not
/// a part of that item: each item is closed where the next one opens, and the end tags left
/// over are dropped, as feedparser reads such feeds. `None` when no item is nested.
fn flatten_nested_items(text: &str) -> Option<String> {
    let tags = item_tags(text);
    if !nested(&tags) {
        return None;
    }
    let mut out = String::with_capacity(text.len() + 64);
    let mut last = 0;
    let mut open = false;
    for (start, end, closing) in tags {
        out.push_str(&text[last..start]);
        if closing {
            if open {
                out.push_str(&text[start..end]);
            }
            open = false;
        } else {
            if open {
                out.push_str("</item>");
            }
            out.push_str(&text[start..end]);
            open = true;
        }
        last = end;
    }
    out.push_str(&text[last..]);
    Some(out)
}

/// The unprefixed RSS item start and end tags of `text` (not the empty `<item />`, nor those
/// in comments, CDATA or processing instructions): where each starts and ends, and whether it
/// is an end tag.
fn item_tags(text: &str) -> Vec<(usize, usize, bool)> {
    Hidden::of(text)
        .captures(&ITEM_TAG, text)
        .filter_map(|c| c.get(0))
        .map(|m| (m.start(), m.end(), m.as_str().starts_with("</")))
        .filter(|(start, end, _)| !text[*start..*end].ends_with("/>"))
        .collect()
}

/// Whether an item opens inside another among `tags` (from [`item_tags`]).
fn nested(tags: &[(usize, usize, bool)]) -> bool {
    let mut depth = 0usize;
    tags.iter().any(|&(_, _, closing)| {
        if closing {
            depth = depth.saturating_sub(1);
        } else {
            depth += 1;
        }
        depth > 1
    })
}

/// An unprefixed RSS item's start or end tag.
static ITEM_TAG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"</?item(?:\s[^>]*)?>").expect("static pattern"));

/// Applies `rewrite` to the body of every `<item>`; `None` when it changed none.
fn rewrite_items(text: &str, rewrite: impl Fn(&str) -> Option<String>) -> Option<String> {
    let mut out = String::with_capacity(text.len() + 64);
    let mut last = 0;
    let hidden = Hidden::of(text);
    let ends = Ends::new(&hidden, text);
    for c in hidden.captures(&ITEM_START, text) {
        let (Some(start), Some(name)) = (c.get(0), c.get(1)) else {
            continue;
        };
        if start.start() < last || start.as_str().ends_with("/>") {
            continue;
        }
        let close = format!("</{}>", name.as_str());
        let Some(body_end) = ends.find(start.end(), &close) else {
            continue;
        };
        let Some(new_body) = rewrite(&text[start.end()..body_end]) else {
            continue;
        };
        out.push_str(&text[last..start.end()]);
        out.push_str(&new_body);
        last = body_end;
    }
    if last == 0 {
        return None;
    }
    out.push_str(&text[last..]);
    Some(out)
}

/// feed-rs keeps a `media:thumbnail` only beside a `media:content`, while news feeds (the BBC's
/// among them) give an item its thumbnail alone. Such an item gets a `media:content` for each of
/// its enclosures, or one naming [`NO_FILE`] when it has none, which `convert` leaves out.
fn keep_lone_thumbnails(text: &str) -> Option<String> {
    rewrite_items(text, |body| {
        let hidden = Hidden::of(body);
        if !has_element(body, &hidden, "media:thumbnail")
            || has_element(body, &hidden, "media:content")
            || has_element(body, &hidden, "media:group")
        {
            return None;
        }
        let mut added = String::new();
        for at in hidden.matches(body, 0, "<enclosure") {
            let Some(end) = body[at..].find('>') else {
                // Nor has any later one: not a search to the end for each.
                break;
            };
            let tag = &body[at..at + end];
            let Some(url) = attribute(tag, "url") else {
                continue;
            };
            added.push_str(&format!(r#"<media:content url="{url}""#));
            if let Some(mime) = attribute(tag, "type") {
                added.push_str(&format!(r#" type="{mime}""#));
            }
            if let Some(length) = attribute(tag, "length") {
                added.push_str(&format!(r#" fileSize="{length}""#));
            }
            added.push_str("/>");
        }
        if added.is_empty() {
            added = format!(r#"<media:content url="{NO_FILE}"/>"#);
        }
        Some(format!("{body}{added}"))
    })
}

/// The address of the stand-in file [`keep_lone_thumbnails`] adds.
pub(super) const NO_FILE: &str = "urn:feedwatch:no-file";

/// Prefixes real feeds use without declaring them; a lenient reader knows what they mean.
const WELL_KNOWN_PREFIXES: [(&str, &str); 4] = [
    ("itunes", "http://www.itunes.com/dtds/podcast-1.0.dtd"),
    ("media", "http://search.yahoo.com/mrss/"),
    ("dc", "http://purl.org/dc/elements/1.1/"),
    ("content", "http://purl.org/rss/1.0/modules/content/"),
];

/// Declares on the root element the well-known prefixes the document uses but never declares,
/// and writes a well-known namespace declared in another letter case
/// (`http://www.itunes.com/DTDs/PodCast-1.0.dtd`) as feed-rs knows it.
fn declare_known_prefixes(text: &str) -> Option<String> {
    let mut fixed: Option<String> = None;
    // The fixes below only change the letter case of a namespace, so the spans stay where
    // they are.
    let hidden = Hidden::of(text);
    for (prefix, uri) in WELL_KNOWN_PREFIXES {
        let current = fixed.as_deref().unwrap_or(text);
        let declared = format!("xmlns:{prefix}=");
        let Some(at) = hidden.find(current, 0, &declared) else {
            continue;
        };
        let value_start = at + declared.len() + 1;
        let Some(value) = current.get(value_start..value_start + uri.len()) else {
            continue;
        };
        if value != uri && value.eq_ignore_ascii_case(uri) {
            let mut with_case = current.to_string();
            with_case.replace_range(value_start..value_start + uri.len(), uri);
            fixed = Some(with_case);
        }
    }
    let current = fixed.as_deref().unwrap_or(text);
    let missing: String = WELL_KNOWN_PREFIXES
        .iter()
        .filter(|(prefix, _)| {
            hidden.find(current, 0, &format!("<{prefix}:")).is_some()
                && hidden
                    .find(current, 0, &format!("xmlns:{prefix}="))
                    .is_none()
        })
        .map(|(prefix, uri)| format!(" xmlns:{prefix}=\"{uri}\""))
        .collect();
    if missing.is_empty() {
        return fixed;
    }
    let root = root_start(current, &hidden)?;
    let name_end =
        root + current[root..].find(|c: char| c.is_whitespace() || c == '>' || c == '/')?;
    Some(format!(
        "{}{missing}{}",
        &current[..name_end],
        &current[name_end..]
    ))
}

/// The start tag of an element that holds text or markup, in Atom or RSS, and its name.
const NAKED_MARKUP_HOLDERS: &str =
    r"<((?:atom:)?(?:title|subtitle|summary|rights|content|description))(\s[^>]*)?>";

static NAKED_MARKUP_HOLDER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(NAKED_MARKUP_HOLDERS).expect("static pattern"));

const CDATA: &str = "<![CDATA[";

static ELEMENT_START: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"<[A-Za-z]").expect("static pattern"));

/// Markup written straight into a title or summary (`<title><p>Title</p></title>`,
/// `<title type="html">Example <a href="x">test</a></title>`) is markup to a reader, but feed-rs
/// keeps only the text before the first element, or nothing. In Atom such a construct becomes
/// `type="xhtml"`, whose children feed-rs serialises; in RSS its body becomes CDATA.
fn keep_naked_markup(text: &str) -> Option<String> {
    let hidden = Hidden::of(text);
    let root = root_start(text, &hidden)?;
    let root_name = &text[root + 1..];
    let root_name =
        &root_name[..root_name.find(|c: char| c.is_whitespace() || c == '>' || c == '/')?];
    let atom = root_name == "feed" || root_name.ends_with(":feed");
    let mut out = String::with_capacity(text.len() + 64);
    let mut last = 0;
    let ends = Ends::new(&hidden, text);
    // Many starts before one far end must not each look through all that lies between.
    let mut next_cdata = NextFind::default();
    for c in hidden.captures(&NAKED_MARKUP_HOLDER, text) {
        let (Some(whole), Some(name)) = (c.get(0), c.get(1)) else {
            continue;
        };
        let attrs = c.get(2).map_or("", |a| a.as_str());
        if whole.start() < last || attrs.ends_with('/') {
            continue;
        }
        let name = name.as_str();
        let local = name.trim_start_matches("atom:");
        let close = format!("</{name}>");
        let Some(body_end) = ends.find(whole.end(), &close) else {
            continue;
        };
        let body = &text[whole.end()..body_end];
        let holds_cdata = next_cdata
            .find(text, whole.end(), CDATA)
            .is_some_and(|at| at + CDATA.len() <= body_end);
        let holds_element = hidden
            .captures_at(&ELEMENT_START, text, whole.end())
            .and_then(|e| e.get(0))
            .is_some_and(|e| e.start() < body_end);
        if holds_cdata || !holds_element {
            continue;
        }
        let rewritten = if atom && local != "description" {
            if attribute(attrs, "type") == Some("xhtml") {
                continue;
            }
            let kept = ATTR_TYPE_MODE.replace_all(attrs, "");
            format!("<{name}{kept} type=\"xhtml\">{body}")
        } else if !atom && (name == "title" || name == "description") {
            let body = body.replace("]]>", "]]]]><![CDATA[>");
            format!("<{name}{attrs}><![CDATA[{body}]]>")
        } else {
            continue;
        };
        out.push_str(&text[last..whole.start()]);
        out.push_str(&rewritten);
        last = body_end;
    }
    if last == 0 {
        return None;
    }
    out.push_str(&text[last..]);
    Some(out)
}

/// The root element's start tag: the first `<` followed by a letter (not `<?` or `<!`).
static ROOT_START: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"<[A-Za-z_]").expect("static pattern"));

/// Where the root element's start tag starts (not at a tag in a comment before it).
fn root_start(text: &str, hidden: &Hidden) -> Option<usize> {
    Some(hidden.captures_at(&ROOT_START, text, 0)?.get(0)?.start())
}

const ATOM03_NS: &str = "http://purl.org/atom/ns#";

static USERLAND_NS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"\sxmlns\s*=\s*["']http://backend\.userland\.com/rss2?/?["']"#)
        .expect("static pattern")
});

/// Atom 0.3 elements renamed in 1.0.
static ATOM03_ELEMENTS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"<(/?)((?:[A-Za-z_][\w.-]*:)?)(issued|modified|tagline|copyright|info)\b")
        .expect("static pattern")
});

fn upgrade_atom03(text: &str) -> String {
    rewrite_outside(text, |text| {
        let text = text.replace(ATOM03_NS, "http://www.w3.org/2005/Atom");
        ATOM03_ELEMENTS
            .replace_all(&text, |c: &regex::Captures| {
                let name = match &c[3] {
                    "issued" => "published",
                    "modified" => "updated",
                    "tagline" => "subtitle",
                    "copyright" => "rights",
                    _ => "feedwatch-info",
                };
                format!("<{}{}{}", &c[1], &c[2], name)
            })
            .into_owned()
    })
}

/// Start tags of Atom text constructs (and content) that carry a `type` or `mode`. Prefixed
/// elements of other vocabularies (`media:title type="plain"`) have types of their own.
static TEXT_CONSTRUCT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"<((?:atom\d*:)?(?:title|subtitle|summary|rights|content))(\s[^>]*?(?:type|mode)\s*=[^>]*?)(/?)>",
    )
    .expect("static pattern")
});

/// feed-rs knows only `text`, `html` and `xhtml` in text constructs and refuses the whole feed
/// for anything else; Atom 0.3 says `mode="escaped"` or `mode="base64"` with a MIME type.
fn fix_text_constructs(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    let mut changed = false;
    let hidden = Hidden::of(text);
    let ends = Ends::new(&hidden, text);
    for c in hidden.captures(&TEXT_CONSTRUCT, text) {
        let (Some(whole), Some(name), Some(attrs)) = (c.get(0), c.get(1), c.get(2)) else {
            continue;
        };
        if whole.start() < last {
            continue;
        }
        let attrs = attrs.as_str();
        let kind = attribute(attrs, "type").unwrap_or("text");
        let mode = attribute(attrs, "mode").unwrap_or("");
        let is_content = name.as_str().ends_with("content");
        if is_content && attribute(attrs, "src").is_some() {
            // Content held elsewhere (Google Docs' `type='text/html' src=…`): its type is the
            // MIME type of what is there, which feed-rs reads as such.
            continue;
        }
        let base64 = mode == "base64" || kind == "application/octet-stream";
        let new_kind = match kind {
            // Decoded, the body is what its type says: markup only when that is HTML or XHTML.
            "text/html" | "html" | "application/xhtml+xml" | "xhtml" if base64 => "html",
            _ if base64 => "text",
            "text" | "html" | "xhtml" if mode.is_empty() => continue,
            "text/html" | "html" => "html",
            "application/xhtml+xml" | "xhtml" if mode != "escaped" => "xhtml",
            "application/xhtml+xml" | "xhtml" => "html",
            "text/plain" | "text" if mode == "escaped" => "html",
            _ if is_content && mode.is_empty() && kind.contains('/') => continue,
            _ => "text",
        };
        let close = format!("</{}>", name.as_str());
        let body_start = whole.end();
        let self_closing = c.get(3).is_some_and(|m| !m.as_str().is_empty());
        let body_end = if self_closing {
            body_start
        } else {
            match ends.find(body_start, &close) {
                Some(end) => end,
                None => continue,
            }
        };
        let mut kept_attrs = ATTR_TYPE_MODE.replace_all(attrs, "").into_owned();
        if kept_attrs.ends_with('/') {
            kept_attrs.pop();
        }
        out.push_str(&text[last..whole.start()]);
        out.push_str(&format!(
            "<{}{} type=\"{new_kind}\">",
            name.as_str(),
            kept_attrs
        ));
        let body = &text[body_start..body_end];
        if base64 {
            let decoded = decode_base64(body);
            out.push_str(&escape_xml(&decoded));
        } else {
            out.push_str(body);
        }
        out.push_str(&close);
        last = if self_closing {
            body_end
        } else {
            body_end + close.len()
        };
        changed = true;
    }
    if !changed {
        return None;
    }
    out.push_str(&text[last..]);
    Some(out)
}

static ATTR_TYPE_MODE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"\s(?:type|mode)\s*=\s*(?:"[^"]*"|'[^']*')"#).expect("static pattern")
});

/// A base64 body as text; a body that is not base64 after all is kept as it is.
fn decode_base64(body: &str) -> String {
    use base64::Engine as _;
    let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    match base64::engine::general_purpose::STANDARD.decode(compact.as_bytes()) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => body.to_string(),
    }
}

fn escape_xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

// ---- well-formedness ----

/// Closes elements the way a lenient reader does: an end tag that does not match the open
/// element closes it anyway (`<logo>…</link>`), a stray end tag is dropped, and elements still
/// open at the end of a truncated file are closed.
pub(super) fn balance_tags(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    let mut open: Vec<&str> = Vec::new();
    let mut rest = text;
    while let Some(lt) = rest.find('<') {
        out.push_str(&rest[..lt]);
        let tail = &rest[lt..];
        // Comments, CDATA, declarations and processing instructions are copied whole.
        if let Some((start, end)) = hidden::opening(tail) {
            match tail[start.len()..].find(end) {
                Some(n) => {
                    let n = start.len() + n + end.len();
                    out.push_str(&tail[..n]);
                    rest = &tail[n..];
                    continue;
                }
                None => {
                    // Cut off inside: it runs to the end, and is closed before the elements
                    // are, or their end tags would be part of it.
                    out.push_str(tail);
                    if end == "-->" && tail.len() > start.len() && tail.ends_with('-') {
                        // `--->` would put `--` in the comment, which XML forbids.
                        out.push(' ');
                    }
                    out.push_str(end);
                    rest = "";
                    break;
                }
            }
        }
        let skip_to = tail
            .strip_prefix("<!")
            .map(|after| after.find('>').map_or(tail.len(), |n| n + 3));
        if let Some(n) = skip_to {
            out.push_str(&tail[..n]);
            rest = &tail[n..];
            continue;
        }
        let Some(gt) = tail.find('>') else {
            // A truncated last tag is dropped.
            rest = "";
            break;
        };
        let tag = &tail[..=gt];
        rest = &tail[gt + 1..];
        if let Some(name) = tag.strip_prefix("</") {
            let name = name.trim_end_matches('>').trim();
            match open.iter().rposition(|o| *o == name) {
                Some(at) => {
                    for unclosed in open.drain(at..).rev() {
                        out.push_str(&format!("</{unclosed}>"));
                    }
                }
                None => {
                    // `<logo>…</link>`: the end tag was meant for the open element.
                    if let Some(top) = open.pop() {
                        out.push_str(&format!("</{top}>"));
                    }
                }
            }
            continue;
        }
        out.push_str(tag);
        if !tag.ends_with("/>") {
            let name_end = tag[1..]
                .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
                .map_or(tag.len(), |n| n + 1);
            open.push(&tag[1..name_end]);
        }
    }
    out.push_str(rest);
    for unclosed in open.into_iter().rev() {
        out.push_str(&format!("</{unclosed}>"));
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use quick_xml::Reader;
    use quick_xml::events::Event;

    use super::*;

    /// The document as a parser reads it, event by event; `None` when it is not well-formed.
    fn events(text: &str) -> Option<Vec<String>> {
        let mut reader = Reader::from_str(text);
        let mut events = Vec::new();
        loop {
            match reader.read_event().ok()? {
                Event::Eof => return Some(events),
                event => events.push(format!("{event:?}")),
            }
        }
    }

    /// What the repairs made of a well-formed `text`, each checked to read as `text` does.
    fn assert_read_alike(text: &str) {
        let before = events(text).expect("well-formed test feed");
        let normalised = normalise(text);
        let normalised = normalised.as_deref().unwrap_or(text);
        assert_eq!(events(normalised).as_ref(), Some(&before), "{normalised}");
        let repaired = repair(text);
        assert_eq!(events(&repaired).as_ref(), Some(&before), "{repaired}");
    }

    /// Item tags in a comment, CDATA or a processing instruction are text to a parser (or
    /// nothing), between items and inside one: no repair reads them as items.
    #[test]
    fn item_tags_in_comments_cdata_and_instructions_are_no_items() {
        let hidden = [
            "<!-- <item> -->",
            "<!-- </item> -->",
            "<![CDATA[ <item> ]]>",
            "<![CDATA[ </item><item> ]]>",
            "<?pi <item>?>",
            "<?pi </item>?>",
        ];
        for piece in hidden {
            let between = format!(
                "<rss version=\"2.0\"><channel><title>t</title>\n\
                 <item><title>a</title><link>http://x/a</link></item>\n{piece}\n\
                 <item><title>b</title><link>http://x/b</link></item>\n</channel></rss>"
            );
            let inside = format!(
                "<rss version=\"2.0\"><channel><title>t</title>\n\
                 <item><title>a</title>{piece}<link>http://x/a</link></item>\n\
                 <item><title>b</title><link>http://x/b</link></item>\n</channel></rss>"
            );
            for text in [between, inside] {
                assert_read_alike(&text);
                assert_eq!(normalise(&text), None, "{text}");
                assert_eq!(repair(&text), text);
            }
        }
    }

    /// Markup that some repair looks for (item tags, a lone thumbnail, a title with markup, a
    /// MIME-typed text construct, a stand-in, an Atom 0.3 element, a link, a stray `&`), each
    /// inside a comment, CDATA section or processing instruction, where it is none.
    const HIDDEN_PIECES: [&str; 12] = [
        "<!-- <item> -->",
        "<!-- </item> -->",
        "<![CDATA[ <item> ]]>",
        "<![CDATA[</item><item><title>c</title>]]>",
        "<?pi <item>?>",
        "<?pi </item><item>?>",
        "<!-- <media:thumbnail url=\"http://t/1.jpg\"/> -->",
        "<![CDATA[<title>a <b>b</b></title>]]>",
        "<!-- <content type=\"text/plain\">x</content> -->",
        "<![CDATA[<dc:title>d</dc:title> &nbsp; & ]]>",
        "<!-- <issued>x</issued> <link>l</link> &nbsp; -->",
        "<?pi <rss> <channel> <media:content/> ?>",
    ];

    /// A well-formed RSS 2.0 or 1.0 feed that needs no repair, with [`HIDDEN_PIECES`] before its
    /// root, in its channel, between its items and inside them.
    fn feed_with_hidden_markup() -> impl Strategy<Value = String> {
        let hidden = || prop::collection::vec(prop::sample::select(&HIDDEN_PIECES[..]), 0..3);
        let item = (hidden(), hidden(), hidden(), hidden());
        (
            prop::bool::ANY,
            prop::bool::ANY,
            hidden(),
            prop::collection::vec(item, 1..5),
        )
            .prop_map(|(rdf, prolog, head, items)| {
                let items: String = items
                    .iter()
                    .enumerate()
                    .map(|(n, (before, inside, described, after))| {
                        let about = if rdf {
                            format!(" rdf:about=\"http://x/{n}\"")
                        } else {
                            String::new()
                        };
                        format!(
                            "{}<item{about}><title>t{n}</title>{}<link>http://x/{n}</link>\
                             <description>{}</description>{}</item>",
                            before.concat(),
                            inside.concat(),
                            described.concat(),
                            after.concat()
                        )
                    })
                    .collect();
                let prolog = if prolog {
                    "<!-- <b>made</b> <media:x/> <title>a <b>b</b></title> -->"
                } else {
                    ""
                };
                let head = head.concat();
                if rdf {
                    format!(
                        "<?xml version=\"1.0\"?>{prolog}<rdf:RDF \
                         xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\" \
                         xmlns=\"http://purl.org/rss/1.0/\"><channel rdf:about=\"http://r/\">\
                         <title>R</title>{head}<link>http://r/</link></channel>{items}</rdf:RDF>"
                    )
                } else {
                    format!(
                        "<?xml version=\"1.0\"?>{prolog}<rss version=\"2.0\"><channel>\
                         <title>T</title>{head}<link>http://r/</link>{items}</channel></rss>"
                    )
                }
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        /// Markup in comments, CDATA and processing instructions is none: a feed that needs no
        /// repair but for such markup is read as it is, and left as it is.
        #[test]
        fn markup_in_comments_cdata_and_instructions_is_left_alone(
            text in feed_with_hidden_markup()
        ) {
            prop_assert!(events(&text).is_some(), "not well-formed: {}", text);
            assert_read_alike(&text);
            let normalised = normalise(&text);
            prop_assert_eq!(normalised.as_deref().unwrap_or(&text), &text);
            prop_assert_eq!(repair(&text), text);
        }
    }

    /// Many start tags whose end tag is missing, or only in comments, each after a first
    /// element that is closed: the first is repaired, the rest left as they are. Every such
    /// start's search for its end tag goes over the rest of the body, so each must not be a
    /// search of its own (checked by hand: `feedwatch preview` takes about as long as for a
    /// feed without them).
    #[test]
    fn many_elements_without_an_end_tag_are_read_once() {
        const N: usize = 50_000;
        let many = |piece: &dyn Fn(usize) -> String| (0..N).map(piece).collect::<String>();
        let rdf_head = "<rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\" \
                        xmlns:rss=\"http://purl.org/rss/1.0/\">\
                        <rss:item rdf:about=\"http://x/a\"><title>a</title></rss:item>";
        let linked = format!("<link>{NO_LINK}</link><title>a</title>");
        for unclosed in [
            many(&|n| format!("<rss:item rdf:about=\"http://x/{n}\"><title>t{n}</title>")),
            many(&|n| format!("<rss:item rdf:about=\"http://x/{n}\"><title/><!--</rss:item>-->")),
            // Each with a name of its own.
            many(&|n| format!("<p{n}:item rdf:about=\"http://x/{n}\"><title>t{n}</title>")),
        ] {
            let rdf = format!("{rdf_head}{unclosed}</rdf:RDF>");
            let expected = rdf.replacen("<title>a</title>", &linked, 1);
            assert_eq!(normalise(&rdf), Some(expected));
        }

        let rss = format!(
            "<rss version=\"2.0\"><channel><title>T</title>\
             <item><title>a</title><description><b>a</b></description></item>{}\
             </channel></rss>",
            many(&|n| format!(
                "<item><title>t{n}</title><description><b>x</b><!--</description>--></item>"
            ))
        );
        let expected = rss.replacen(
            "<description><b>a</b></description>",
            "<description><![CDATA[<b>a</b>]]></description>",
            1,
        );
        assert_eq!(normalise(&rss), Some(expected));

        let atom = format!(
            "<feed xmlns=\"http://www.w3.org/2005/Atom\"><title>T</title>\
             <entry><summary type=\"text/plain\">a</summary></entry>{}</feed>",
            many(&|n| format!("<entry><summary type=\"text/plain\">{n}<!--</summary>--></entry>"))
        );
        let expected = atom.replacen(
            "<summary type=\"text/plain\">a",
            "<summary type=\"text\">a",
            1,
        );
        assert_eq!(normalise(&atom), Some(expected));
    }

    /// An item with a lone thumbnail and many enclosure tags that never end: only those that
    /// end give a `media:content`, and they are looked for once (checked by hand with
    /// `feedwatch preview`).
    #[test]
    fn many_enclosure_tags_without_an_end_are_read_once() {
        let rss = format!(
            "<rss version=\"2.0\" xmlns:media=\"http://search.yahoo.com/mrss/\"><channel>\
             <title>T</title><item><title>a</title><media:thumbnail url=\"http://t/1.jpg\"/>\
             <enclosure url=\"http://e/1.mp3\"/></item>\
             <item><media:thumbnail {}</item></channel></rss>",
            "<enclosure ".repeat(100_000)
        );
        let expected = rss
            .replacen(
                "<enclosure url=\"http://e/1.mp3\"/>",
                "<enclosure url=\"http://e/1.mp3\"/><media:content url=\"http://e/1.mp3\"/>",
                1,
            )
            .replacen(
                "</item></channel>",
                &format!("<media:content url=\"{NO_FILE}\"/></item></channel>"),
                1,
            );
        assert_eq!(keep_lone_thumbnails(&rss), Some(expected));
    }

    /// Many title start tags before one end tag and a CDATA section: only the title with
    /// markup and without CDATA is kept as markup, and the rest is looked through once
    /// (checked by hand with `feedwatch preview`).
    #[test]
    fn many_titles_before_one_end_are_read_once() {
        let rss = format!(
            "<rss version=\"2.0\"><channel><title>T</title><item><title>a <b>b</b></title>\
             {}<![CDATA[x]]></title></item></channel></rss>",
            "<title>".repeat(200_000)
        );
        let expected = rss.replacen(
            "<title>a <b>b</b></title>",
            "<title><![CDATA[a <b>b</b>]]></title>",
            1,
        );
        assert_eq!(keep_naked_markup(&rss), Some(expected));
    }

    /// A body cut off inside a CDATA section, comment or processing instruction: the span is
    /// closed before the elements still open are.
    #[test]
    fn a_span_cut_off_at_the_end_is_closed_before_the_elements() {
        assert_eq!(
            balance_tags("<a><b><![CDATA[<p>x"),
            "<a><b><![CDATA[<p>x]]></b></a>"
        );
        assert_eq!(balance_tags("<a><!-- ad"), "<a><!-- ad--></a>");
        assert_eq!(balance_tags("<a><!-- ad -"), "<a><!-- ad - --></a>");
        assert_eq!(balance_tags("<a><?pi x"), "<a><?pi x?></a>");
        assert_eq!(balance_tags("<a><!-- x --><b>"), "<a><!-- x --><b></b></a>");
    }

    #[test]
    fn authors_are_left_out_of_rss_and_json_feeds() {
        let rss = "<channel><webMaster>\u{1f600}<![CDATA[w@example.org]]></webMaster>\
                   <item><title>T</title><author a='1'>x</author><author/>\
                   <description><![CDATA[<author>b</author>]]></description></item></channel>";
        assert_eq!(
            drop_authors(rss),
            "<channel><x-dropped-webMaster>\u{1f600}<![CDATA[w@example.org]]></x-dropped-webMaster>\
             <item><title>T</title><x-dropped-author a='1'>x</x-dropped-author><x-dropped-author/>\
             <description><![CDATA[<author>b</author>]]></description></item></channel>"
        );
        let json =
            r#"{"title":"J","author":{"name":"a"},"items":[{"id":"1","authors":[{"name":"b"}]}]}"#;
        let dropped: serde_json::Value = serde_json::from_str(&drop_authors(json)).unwrap();
        assert_eq!(
            dropped,
            serde_json::json!({"title": "J", "items": [{"id": "1"}]})
        );
    }

    /// feed-rs cuts the byte before and after what it takes for an address: that byte must be
    /// ASCII whether the character is there as it is or as a reference, behind `mailto:` or not.
    #[test]
    fn addresses_touching_wide_characters_are_set_apart() {
        let cases = [
            (
                "Editor\u{a0}news@example.org\u{ab}",
                "Editor\u{a0} news@example.org \u{ab}",
            ),
            (
                "Simon (\u{85}mailto:s@example.com)",
                "Simon (\u{85} mailto:s@example.com)",
            ),
            (
                "Simon (&#133;mailto:s@example.com)",
                "Simon (\u{85} mailto:s@example.com)",
            ),
            ("Simon &#x85;s@example.com", "Simon \u{85} s@example.com"),
            (r#""A\u0085b@example.org""#, "\"A\u{85} b@example.org\""),
            // An escaped backslash is not a reference; ASCII neighbours need nothing.
            (r#""\\u0085b@example.org""#, r#""\\u0085b@example.org""#),
            (
                "plain a@example.org &amp; &#65;",
                "plain a@example.org &amp; &#65;",
            ),
        ];
        for (text, spaced) in cases {
            assert_eq!(space_out_emails(text), spaced, "{text}");
        }
    }
}

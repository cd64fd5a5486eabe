//! A feed's text split into its items, so that items read before can be left out of a parse.
//!
//! An item's entry depends on its own text and on what is in scope where it stands: the XML
//! declaration, the document type, and the start tags of the elements around it (namespace
//! prefixes, `xml:base`, the feed's format and version). Those make the item's context; the
//! same text in the same context parses to the same entry. Everything else in the feed (its
//! title, `lastBuildDate`, comments, the other items) does not touch the item.

use std::ops::Range;

use quick_xml::Reader;
use quick_xml::events::Event;
use xxhash_rust::xxh3::{Xxh3, xxh3_128_with_seed};

use super::repair::hidden::Hidden;
use super::{ItemRead, ParseError, ParsedFeed, ParsedItems};

/// What an item read before is known by: a hash of its text and its context, under
/// feedwatch's version (a new release, whose parser may read it better, reads it again).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ItemDigest(pub [u8; 16]);

/// See [`super::parse_unread`]; `text` is prepared.
pub(super) fn parse_unread(
    text: &str,
    base_url: Option<&str>,
    known: &dyn Fn(&ItemDigest) -> bool,
) -> Result<ParsedItems, ParseError> {
    let Some(items) = split(text).filter(|items| abouts_line_up(text, items)) else {
        let (feed, _) = super::parse_text(text, base_url)?;
        return Ok(ParsedItems { feed, items: None });
    };
    let digests = digests(text, &items, base_url);
    let left_out: Vec<usize> = (0..digests.len()).filter(|&i| known(&digests[i])).collect();
    if !left_out.is_empty()
        && let Some(feed) = parse_without(text, &items, &left_out, base_url)
    {
        return Ok(ParsedItems {
            feed,
            items: Some(read(&digests, &left_out)),
        });
    }
    let (feed, repaired) = super::parse_text(text, base_url)?;
    // A repair may have changed any item: their digests name text that was not parsed.
    let items = (!repaired && feed.articles.len() == digests.len()).then(|| read(&digests, &[]));
    Ok(ParsedItems { feed, items })
}

/// The feed without the items at `left_out`, if it parses as it is and has an entry for
/// each item kept (else the whole text is parsed).
fn parse_without(
    text: &str,
    items: &Items<'_>,
    left_out: &[usize],
    base_url: Option<&str>,
) -> Option<ParsedFeed> {
    let kept = without(text, items, left_out);
    let feed = super::parse_utf8(kept.as_bytes(), base_url).ok()?;
    if feed.entries.len() != items.spans.len() - left_out.len() {
        return None;
    }
    let mut parsed = super::convert(feed);
    if parsed.articles.iter().any(|a| a.guid.is_none()) {
        super::adopt_rdf_about(&kept, &mut parsed.articles);
    }
    Some(parsed)
}

/// The items in order, each with its article's index, or none for those left out.
fn read(digests: &[ItemDigest], left_out: &[usize]) -> Vec<ItemRead> {
    let (mut articles, mut left_out) = (0.., left_out.iter().peekable());
    digests
        .iter()
        .enumerate()
        .map(|(i, &digest)| ItemRead {
            digest,
            // `left_out` is ascending: each is met in its turn.
            article: match left_out.next_if_eq(&&i) {
                Some(_) => None,
                None => articles.next(),
            },
        })
        .collect()
}

/// `rdf:about` is given to entries by counting item tags in the text (`adopt_rdf_about`):
/// leaving items out keeps that count in step only when each item holds exactly one such
/// tag and none stands outside them (in comments, CDATA and processing instructions they are
/// not counted).
fn abouts_line_up(text: &str, items: &Items<'_>) -> bool {
    if !text.contains("rdf:about") {
        return true;
    }
    let tags = |text: &str| Hidden::of(text).captures(&super::ITEM_TAG, text).count();
    tags(text) == items.spans.len() && items.spans.iter().all(|s| tags(&text[s.clone()]) == 1)
}

/// Each item's digest: its text, hashed with a seed made of its context and the base of its
/// links.
fn digests(text: &str, items: &Items<'_>, base_url: Option<&str>) -> Vec<ItemDigest> {
    let mut context = Xxh3::new();
    let parts = [env!("CARGO_PKG_VERSION"), base_url.unwrap_or_default()];
    for part in parts.into_iter().chain(items.context.iter().copied()) {
        context.update(&(part.len() as u64).to_le_bytes());
        context.update(part.as_bytes());
    }
    let seed = context.digest();
    items
        .spans
        .iter()
        .map(|span| {
            ItemDigest(xxh3_128_with_seed(&text.as_bytes()[span.clone()], seed).to_le_bytes())
        })
        .collect()
}

/// The items of a feed's text, in document order, and what their parse depends on besides
/// their own text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Items<'t> {
    /// The declaration, the document type and the start tags around the items, in order.
    pub context: Vec<&'t str>,
    /// Each item's text, from its start tag to the end of its end tag.
    pub spans: Vec<Range<usize>>,
}

/// Splits `text` into its items (`<item>` or `<entry>` elements, all of one name and all
/// children of one element); `None` when the text is not well-formed XML, holds no item, or
/// has items that are not plainly such a list (nested, empty, prefixed, under several
/// parents), when a document type declares entities, which items could use, and when feed-rs
/// reads it as JSON. `None` only means that the text is parsed whole.
pub(super) fn split(text: &str) -> Option<Items<'_>> {
    // feed-rs reads the text as JSON when a `{` comes before its first `<`: markup in its
    // strings would pass for items here.
    if text.bytes().find(|b| matches!(b, b'<' | b'{')) != Some(b'<') {
        return None;
    }
    let mut reader = Reader::from_str(text);
    let position = |reader: &Reader<&[u8]>| usize::try_from(reader.buffer_position()).ok();
    let mut context: Vec<&str> = Vec::new();
    // The start tags of the elements open where the reader is.
    let mut open: Vec<Range<usize>> = Vec::new();
    // The start tag of the first item's parent, and its name: every item has the same (one
    // parent, one element, means the same elements around it).
    let mut first: Option<(Range<usize>, String)> = None;
    let mut spans = Vec::new();
    loop {
        let start = position(&reader)?;
        let event = reader.read_event().ok()?;
        let end = position(&reader)?;
        match event {
            Event::Start(tag) => {
                let name = tag.name();
                let name = name.as_ref();
                if !is_item_name(local_name(name)) {
                    open.push(start..end);
                    continue;
                }
                if name.contains(':') {
                    return None;
                }
                let parent = open.last()?;
                match &first {
                    None => {
                        context.extend(open.iter().map(|tag| &text[tag.clone()]));
                        first = Some((parent.clone(), name.to_owned()));
                    }
                    Some((first_parent, first_name))
                        if first_parent == parent && first_name == name => {}
                    Some(_) => return None,
                }
                reader.read_to_end(tag.name()).ok()?;
                spans.push(start..position(&reader)?);
            }
            Event::End(_) => {
                open.pop()?;
            }
            Event::Empty(tag) if is_item_name(local_name(tag.name().as_ref())) => return None,
            Event::Decl(_) if open.is_empty() => context.push(&text[start..end]),
            Event::DocType(doctype) => {
                if doctype.contains('[') {
                    return None;
                }
                context.push(&text[start..end]);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    (open.is_empty() && !spans.is_empty()).then_some(Items { context, spans })
}

fn local_name(name: &str) -> &str {
    name.rsplit(':').next().unwrap_or(name)
}

fn is_item_name(local: &str) -> bool {
    local == "item" || local == "entry"
}

/// `text` without the items at `left_out` (indexes into `items.spans`, ascending).
pub(super) fn without(text: &str, items: &Items<'_>, left_out: &[usize]) -> String {
    let mut kept = String::with_capacity(text.len());
    let mut from = 0;
    for &i in left_out {
        let span = &items.spans[i];
        kept.push_str(&text[from..span.start]);
        from = span.end;
    }
    kept.push_str(&text[from..]);
    kept
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;
    use crate::parse::{parse, parse_unread};

    const BASE: Option<&str> = Some("https://news.example/feed.xml");

    /// Whether `bytes` split into items; panics unless every way of leaving known items out
    /// gives the other items the very articles a whole parse gives them.
    fn holds_equal(bytes: &[u8]) -> bool {
        let whole = parse(bytes, None, BASE);
        let first = parse_unread(bytes, None, BASE, &|_| false);
        let (whole, first) = match (whole, first) {
            (Ok(whole), Ok(first)) => (whole, first),
            (Err(_), Err(_)) => return false,
            (whole, first) => panic!("whole {whole:?}, item by item {first:?}"),
        };
        assert_eq!(first.feed, whole);
        let Some(items) = first.items else {
            return false;
        };
        let n = items.len();
        let choices: [&dyn Fn(usize) -> bool; 6] = [
            &|_| true,
            &|i| i % 2 == 0,
            &|i| i % 2 == 1,
            &|i| i + 1 < n,
            &|i| i > 0,
            &|i| i == n / 2,
        ];
        for choice in choices {
            let known: HashSet<ItemDigest> = (0..n)
                .filter(|&i| choice(i))
                .map(|i| items[i].digest)
                .collect();
            let parsed = parse_unread(bytes, None, BASE, &|d| known.contains(d)).expect("parses");
            assert_eq!(
                (&parsed.feed.title, &parsed.feed.link, parsed.feed.ttl),
                (&whole.title, &whole.link, whole.ttl)
            );
            let read = parsed.items.expect("split again");
            assert_eq!(read.len(), n);
            for (i, item) in read.iter().enumerate() {
                assert_eq!(item.digest, items[i].digest);
                match item.article {
                    None => assert!(known.contains(&item.digest)),
                    Some(a) => assert_eq!(parsed.feed.articles[a], whole.articles[i]),
                }
            }
            let kept = read.iter().filter(|item| item.article.is_some()).count();
            assert_eq!(parsed.feed.articles.len(), kept);
        }
        true
    }

    /// The feeds of real projects in `tests/data` (their corpus and what fuzzing found).
    #[test]
    fn leaving_known_items_out_changes_no_other_article_of_the_test_feeds() {
        let mut split = 0;
        for path in crate::parse::test_feeds() {
            let bytes = std::fs::read(&path).expect("readable");
            let ok = std::panic::catch_unwind(|| holds_equal(&bytes))
                .unwrap_or_else(|_| panic!("{}", path.display()));
            split += usize::from(ok);
        }
        assert!(split > 50, "only {split} test feeds split into items");
    }

    const ITEM_PIECES: [&str; 14] = [
        "<title>Summit in Vilnius</title>",
        "<title>A &amp; B &lt;b&gt;bold&lt;/b&gt;</title>",
        "<link>/a/1</link>",
        "<link>https://other.example/x</link>",
        "<guid>g1</guid>",
        "<guid isPermaLink=\"true\">/p/2</guid>",
        "<description><![CDATA[<p>The <b>lead</b> &amp; more</p>]]></description>",
        "<description>plain words</description>",
        "<pubDate>Tue, 10 Jun 2003 04:00:00 GMT</pubDate>",
        "<dc:creator>Ann</dc:creator>",
        "<media:thumbnail url=\"/t.jpg\"/>",
        "<enclosure url=\"/e.mp3\" length=\"5\" type=\"audio/mpeg\"/>",
        "<!-- a comment <b>here</b> -->",
        "<category>World</category>",
    ];

    fn feed() -> impl Strategy<Value = String> {
        let item = prop::collection::vec(prop::sample::select(&ITEM_PIECES[..]), 0..6)
            .prop_map(|pieces| format!("<item>{}</item>", pieces.concat()));
        let head = prop::sample::select(vec![
            r#"<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:media="http://search.yahoo.com/mrss/"><channel>"#,
            r#"<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:media="http://search.yahoo.com/mrss/"><channel xml:base="https://base.example/dir/">"#,
            r#"<rss version="0.91"><channel>"#,
        ]);
        (head, prop::collection::vec(item, 1..8)).prop_map(|(head, items)| {
            format!(
                "<?xml version=\"1.0\"?>\n{head}<title>T</title><ttl>60</ttl>\n{}\n</channel></rss>",
                items.join("\n")
            )
        })
    }

    const ENTRY_PIECES: [&str; 10] = [
        "<id>urn:e:1</id>",
        "<id>/relative/2</id>",
        "<title type=\"html\">A &amp;lt;b&amp;gt;bold&amp;lt;/b&amp;gt; title</title>",
        "<title>Plain</title>",
        "<link href=\"/a/1\"/>",
        "<link rel=\"enclosure\" href=\"/e.mp3\" type=\"audio/mpeg\"/>",
        "<summary>Leaders met</summary>",
        "<content type=\"xhtml\"><div xmlns=\"http://www.w3.org/1999/xhtml\"><p>Text</p></div></content>",
        "<updated>2003-12-13T18:30:02Z</updated>",
        "<author><name>Ann</name></author>",
    ];

    fn atom_feed() -> impl Strategy<Value = String> {
        let entry = (
            prop::collection::vec(prop::sample::select(&ENTRY_PIECES[..]), 0..6),
            prop::bool::ANY,
        )
            .prop_map(|(pieces, based)| {
                let base = if based {
                    " xml:base=\"https://entry.example/x/\""
                } else {
                    ""
                };
                format!("<entry{base}>{}</entry>", pieces.concat())
            });
        (prop::bool::ANY, prop::collection::vec(entry, 1..8)).prop_map(|(based, entries)| {
            let base = if based {
                " xml:base=\"https://feed.example/\""
            } else {
                ""
            };
            format!(
                "<feed xmlns=\"http://www.w3.org/2005/Atom\"{base}><title>T</title>\n{}\n</feed>",
                entries.join("\n")
            )
        })
    }

    /// Markup that trips up a split by hand: item tags in CDATA, comments and processing
    /// instructions, namespaces and bases declared on one item or between items, items
    /// nested by mistake, a stray entity, and RSS 1.0 items without a usable link.
    const HOSTILE_PIECES: [&str; 14] = [
        "<title>Summit</title><link>rel/2</link>",
        "<description><![CDATA[</item><item><title>cd</title>]]></description>",
        "<!-- </item><item><title>cm</title> -->",
        "<?pi </item><item> ?>",
        "<media:thumbnail url=\"http://t/1.jpg\"/>",
        "<item><title>nested</title></item>",
        "<description>&amp;lt;b&amp;gt;x &#233; &nbsp;</description>",
        "<foo xml:base=\"http://other.example/b/\"><link>/zz</link></foo>",
        "<dc:title>stand-in</dc:title>",
        "<link></link>",
        "<description><![CDATA[<link>x</link>]]></description>",
        "<guid>g1</guid>",
        "<author>a@b.c (Ann)</author>",
        "<media:group><media:content url=\"http://g/1\"/></media:group>",
    ];

    fn hostile_feed() -> impl Strategy<Value = String> {
        let item = (
            prop::sample::select(vec![
                "<item>",
                "<item xml:base=\"http://item.example/d/\">",
                "<item xmlns:media=\"http://search.yahoo.com/mrss/\">",
                "<item xmlns:dc=\"urn:not-dc\">",
                "<item rdf:about=\"http://r/1\">",
            ]),
            prop::collection::vec(prop::sample::select(&HOSTILE_PIECES[..]), 0..5),
            prop::sample::select(vec![
                "\n",
                "<!-- <item> -->",
                "<x:y xmlns:x=\"urn:z\"/>",
                "<foo xml:base=\"http://leak.example/\"></foo>",
            ]),
        )
            .prop_map(|(open, pieces, after)| format!("{open}{}</item>{after}", pieces.concat()));
        let head = prop::sample::select(vec![
            r#"<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel xml:base="http://chan.example/c/">"#,
            r#"<rss version="2.0" xmlns:media="urn:not-media"><channel>"#,
            r#"<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:media="http://search.yahoo.com/mrss/"><channel rdf:about="http://r/"><title>R</title></channel>"#,
        ]);
        (head, prop::collection::vec(item, 1..6)).prop_map(|(head, items)| {
            let end = if head.starts_with("<rss") {
                "</channel></rss>"
            } else {
                "</rdf:RDF>"
            };
            format!(
                "<?xml version=\"1.0\"?>{head}<title>T</title>{}{end}",
                items.concat()
            )
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn leaving_known_items_out_changes_no_other_article(text in feed()) {
            prop_assert!(holds_equal(text.as_bytes()), "not split: {}", text);
        }

        #[test]
        fn leaving_known_entries_out_changes_no_other_article(text in atom_feed()) {
            prop_assert!(holds_equal(text.as_bytes()), "not split: {}", text);
        }

        /// Not every one of them splits; those that do hold.
        #[test]
        fn leaving_known_items_out_of_hostile_markup_changes_no_other_article(
            text in hostile_feed()
        ) {
            holds_equal(text.as_bytes());
        }
    }

    /// Item tags in CDATA, comments and processing instructions, inside items that are still a
    /// plain list and between them: such a feed splits, so the property above holds a split and
    /// not only a whole parse. (A lone `media:thumbnail` has the text repairs rewrite the body,
    /// which is then parsed whole.)
    #[test]
    fn items_with_hostile_markup_inside_still_split() {
        let item = |n: usize| {
            format!(
                "<item xmlns:media=\"http://search.yahoo.com/mrss/\" \
                 xml:base=\"http://item.example/d/\"><title>t{n}</title>{}<guid>g{n}</guid>\
                 </item>",
                HOSTILE_PIECES[1..4].concat()
            )
        };
        let items = (0..3).map(item).collect::<Vec<_>>().join("<!-- <item> -->");
        let text = format!(
            "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel \
             xml:base=\"http://chan.example/c/\"><title>T</title>{items}</channel></rss>"
        );
        assert!(holds_equal(text.as_bytes()), "not split: {text}");
    }

    fn texts<'t>(text: &'t str, items: &Items<'_>) -> Vec<&'t str> {
        items.spans.iter().map(|s| &text[s.clone()]).collect()
    }

    #[test]
    fn splits_rss_items_with_their_context() {
        let text = r#"<?xml version="1.0"?>
<!-- made at 12:00 -->
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel xml:base="http://a/">
<title>T</title><lastBuildDate>now</lastBuildDate>
<item><title>One</title><description><![CDATA[<item>not one</item>]]></description></item>
<!-- <item>nor this</item> -->
<item><title>Two</title></item>
</channel></rss>"#;
        let items = split(text).expect("split");
        assert_eq!(
            texts(text, &items),
            [
                "<item><title>One</title><description><![CDATA[<item>not one</item>]]></description></item>",
                "<item><title>Two</title></item>"
            ]
        );
        assert_eq!(
            items.context,
            [
                r#"<?xml version="1.0"?>"#,
                r#"<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">"#,
                r#"<channel xml:base="http://a/">"#
            ]
        );
        let second_only = without(text, &items, &[0]);
        assert!(!second_only.contains("One") && second_only.contains("Two"));
        assert!(second_only.contains("<lastBuildDate>now</lastBuildDate>"));
    }

    #[test]
    fn splits_atom_entries_and_rss1_items() {
        let atom = r#"<feed xmlns="http://www.w3.org/2005/Atom"><title>T</title>
<entry><id>1</id><source><title>S</title></source></entry><entry><id>2</id></entry></feed>"#;
        assert_eq!(split(atom).expect("atom").spans.len(), 2);
        let rdf = r#"<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/">
<channel rdf:about="x"><items><rdf:Seq><rdf:li resource="a"/></rdf:Seq></items></channel>
<item rdf:about="a"><title>A</title></item></rdf:RDF>"#;
        let items = split(rdf).expect("rdf");
        assert_eq!(
            texts(rdf, &items),
            [r#"<item rdf:about="a"><title>A</title></item>"#]
        );
    }

    /// feed-rs reads a body as JSON Feed when a `{` comes before its first `<`: markup in its
    /// strings holds none of its items, and cutting it out of a string leaves every JSON item
    /// in place.
    #[test]
    fn a_json_feed_with_items_in_its_strings_is_not_split() {
        let json = |title: &str, ids: &[&str]| {
            let items: Vec<String> = ids
                .iter()
                .map(|id| format!(r#"{{"id":"{id}","title":"{id}"}}"#))
                .collect();
            format!(
                r#"{{"version":"https://jsonfeed.org/version/1.1","title":"{title}","items":[{}]}}"#,
                items.join(",")
            )
        };
        let first = json("<r><item>a</item><item>b</item></r>", &["j1", "j2"]);
        let read = parse_unread(first.as_bytes(), None, BASE, &|_| false).expect("parses");
        let known: Vec<ItemDigest> = read.items.iter().flatten().map(|i| i.digest).collect();
        // j1 and j2 are gone; "a" is still in the title.
        let second = json("<r><item>a</item><item>c</item></r>", &["j3"]);
        let whole = parse(second.as_bytes(), None, BASE).expect("parses");
        let parsed =
            parse_unread(second.as_bytes(), None, BASE, &|d| known.contains(d)).expect("parses");
        assert_eq!(parsed.feed, whole);
        assert_eq!(parsed.items, None, "an item said to be read before");
    }

    #[test]
    fn leaves_whole_what_is_not_a_plain_list_of_items() {
        for text in [
            // Not well-formed.
            "<rss><channel><item><title>a</item></channel></rss>",
            "<rss><channel><item>a</item>",
            // No item; JSON.
            "<rss><channel><title>a</title></channel></rss>",
            r#"{"items": [{"id": "1"}]}"#,
            // Nested in an item's own kind, under two parents, empty, prefixed, of two names.
            "<rss><channel><item>a</item><x><item>b</item></x></channel></rss>",
            "<rss><channel><item>a</item></channel><channel><item>b</item></channel></rss>",
            "<rss><channel><item>a</item><item/></channel></rss>",
            "<rdf:RDF><rss:item>a</rss:item></rdf:RDF>",
            "<rss><channel><item>a</item><entry>b</entry></channel></rss>",
            // Entities of its own.
            "<!DOCTYPE rss [<!ENTITY x \"y\">]><rss><channel><item>&x;</item></channel></rss>",
        ] {
            assert_eq!(split(text), None, "{text}");
        }
    }
}

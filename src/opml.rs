//! OPML 1.0 and 2.0 subscription lists, read and written. Pure: text in, feeds out and back.
//!
//! Folders (an `<outline>` without `xmlUrl` that holds others) and the OPML 2.0 `category`
//! attribute both become feed tags. On export a feed sits in the folder of its first tag and
//! lists all its tags in `category`, so importing what was exported gives the same tags.

use quick_xml::XmlVersion;
use quick_xml::escape::escape;
use quick_xml::events::{BytesStart, Event};

/// One subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpmlFeed {
    pub url: String,
    /// `title`, else `text`; may be empty.
    pub title: String,
    pub tags: Vec<String>,
}

/// A subscription as listed in a file: the feed, and where its `<outline>` is, so that a
/// message about it can point the user at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outline {
    pub feed: OpmlFeed,
    /// 1-based line of the `<outline>` element.
    pub line: usize,
}

impl std::fmt::Display for Outline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.feed.title.is_empty() {
            write!(f, "the outline on line {}", self.line)
        } else {
            write!(f, "outline `{}` on line {}", self.feed.title, self.line)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OpmlError {
    #[error("{source_name}: not valid XML at byte {offset}: {message}")]
    Xml {
        source_name: String,
        offset: u64,
        message: String,
    },
    #[error("{source_name}: not an OPML document (the root element is not <opml>)")]
    NotOpml { source_name: String },
}

/// The feeds listed in an OPML document, in document order. `source_name` names the file in
/// errors.
pub fn read(text: &str, source_name: &str) -> Result<Vec<Outline>, OpmlError> {
    let mut reader = quick_xml::Reader::from_str(text);
    let mut feeds = Vec::new();
    // Where the last event ended, and the line that is on: counted as the reader moves on.
    let (mut counted_to, mut line) = (0, 1);
    // The folders the reader is inside: Some(name) for a folder, None for any other element.
    let mut open: Vec<Option<String>> = Vec::new();
    let mut seen_root = false;
    loop {
        let starts_at = usize::try_from(reader.buffer_position()).unwrap_or(text.len());
        let event = reader.read_event().map_err(|e| OpmlError::Xml {
            source_name: source_name.to_string(),
            offset: reader.error_position(),
            message: e.to_string(),
        })?;
        let (element, has_children) = match &event {
            Event::Start(e) => (e, true),
            Event::Empty(e) => (e, false),
            Event::End(_) => {
                open.pop();
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        let name = element.local_name();
        if !seen_root {
            if name.into_inner() != "opml" {
                return Err(OpmlError::NotOpml {
                    source_name: source_name.to_string(),
                });
            }
            seen_root = true;
        }
        let mut folder = None;
        if name.into_inner() == "outline" {
            let attr = |key: &str| attribute(element, key);
            match attr("xmlUrl").filter(|u| !u.trim().is_empty()) {
                Some(url) => {
                    let mut tags: Vec<String> = open.iter().flatten().cloned().collect();
                    for category in attr("category").iter().flat_map(|c| c.split(',')) {
                        // OPML 2.0 categories are slash-delimited paths; the last part names it.
                        let tag = category.trim().trim_matches('/');
                        let tag = tag.rsplit('/').next().unwrap_or(tag).trim();
                        if !tag.is_empty() && !tags.iter().any(|t| t == tag) {
                            tags.push(tag.to_string());
                        }
                    }
                    let starts_at = starts_at.min(text.len());
                    line += text.as_bytes()[counted_to..starts_at]
                        .iter()
                        .filter(|&&b| b == b'\n')
                        .count();
                    counted_to = starts_at;
                    let feed = OpmlFeed {
                        url: url.trim().to_string(),
                        title: attr("title")
                            .or_else(|| attr("text"))
                            .unwrap_or_default()
                            .trim()
                            .to_string(),
                        tags,
                    };
                    feeds.push(Outline { feed, line });
                }
                None => {
                    folder = attr("text")
                        .or_else(|| attr("title"))
                        .map(|t| t.trim().to_string())
                        .filter(|t| !t.is_empty());
                }
            }
        }
        if has_children {
            open.push(folder);
        }
    }
    if !seen_root {
        return Err(OpmlError::NotOpml {
            source_name: source_name.to_string(),
        });
    }
    Ok(feeds)
}

fn attribute(element: &BytesStart, key: &str) -> Option<String> {
    element
        .attributes()
        .flatten()
        .find(|a| a.key.local_name().into_inner() == key)
        .and_then(|a| {
            a.normalized_value(XmlVersion::Implicit1_0)
                .ok()
                .map(|v| v.into_owned())
        })
}

/// An OPML 2.0 document listing `feeds`, grouped into folders by their first tag.
pub fn write(title: &str, feeds: &[OpmlFeed]) -> String {
    let mut out =
        String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<opml version=\"2.0\">\n");
    out.push_str(&format!(
        "  <head>\n    <title>{}</title>\n  </head>\n  <body>\n",
        escape(title)
    ));
    let mut folders: Vec<&str> = Vec::new();
    for feed in feeds {
        if let Some(first) = feed.tags.first()
            && !folders.contains(&first.as_str())
        {
            folders.push(first);
        }
    }
    for feed in feeds.iter().filter(|f| f.tags.is_empty()) {
        out.push_str(&outline(feed, "    "));
    }
    for folder in folders {
        out.push_str(&format!(
            "    <outline text=\"{0}\" title=\"{0}\">\n",
            escape(folder)
        ));
        for feed in feeds
            .iter()
            .filter(|f| f.tags.first().map(String::as_str) == Some(folder))
        {
            out.push_str(&outline(feed, "      "));
        }
        out.push_str("    </outline>\n");
    }
    out.push_str("  </body>\n</opml>\n");
    out
}

fn outline(feed: &OpmlFeed, indent: &str) -> String {
    let category = if feed.tags.is_empty() {
        String::new()
    } else {
        let paths: Vec<String> = feed.tags.iter().map(|t| format!("/{t}")).collect();
        format!(" category=\"{}\"", escape(paths.join(",")))
    };
    format!(
        "{indent}<outline type=\"rss\" text=\"{0}\" title=\"{0}\" xmlUrl=\"{1}\"{category}/>\n",
        escape(feed.title.as_str()),
        escape(feed.url.as_str()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(url: &str, title: &str, tags: &[&str]) -> OpmlFeed {
        OpmlFeed {
            url: url.into(),
            title: title.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
        }
    }

    fn feeds_of(outlines: Vec<Outline>) -> Vec<OpmlFeed> {
        outlines.into_iter().map(|o| o.feed).collect()
    }

    #[test]
    fn each_feed_knows_the_line_of_its_outline() {
        let text = "<opml version=\"2.0\">\n<body>\n<outline text=\"A\" xmlUrl=\"https://a.example/\"/>\n\n\
                    <outline text=\"Folder\">\n  <outline xmlUrl=\"file:///etc/passwd\"/></outline>\n</body></opml>";
        let outlines = read(text, "a.opml").unwrap();
        assert_eq!(outlines.iter().map(|o| o.line).collect::<Vec<_>>(), [3, 6]);
        assert_eq!(outlines[0].to_string(), "outline `A` on line 3");
        assert_eq!(outlines[1].to_string(), "the outline on line 6");
    }

    #[test]
    fn opml_1_folders_become_tags() {
        let text = r#"<?xml version="1.0"?>
<opml version="1.0"><head><title>Mine</title></head><body>
  <outline text="News">
    <outline text="World" type="rss" xmlUrl="https://world.example/rss"/>
    <outline text="Europe"><outline title="EU &amp; Co" xmlUrl="https://eu.example/feed"/></outline>
  </outline>
  <outline text="Loose" xmlUrl="https://loose.example/atom"/>
</body></opml>"#;
        assert_eq!(
            feeds_of(read(text, "mine.opml").unwrap()),
            [
                feed("https://world.example/rss", "World", &["News"]),
                feed("https://eu.example/feed", "EU & Co", &["News", "Europe"]),
                feed("https://loose.example/atom", "Loose", &[]),
            ]
        );
    }

    #[test]
    fn opml_2_category_attribute_becomes_tags() {
        let text = r#"<opml version="2.0"><body>
<outline text="A" xmlUrl="https://a.example/" category="/Tech/Rust,/Daily"/>
</body></opml>"#;
        assert_eq!(
            feeds_of(read(text, "a.opml").unwrap()),
            [feed("https://a.example/", "A", &["Rust", "Daily"])]
        );
    }

    #[test]
    fn written_opml_reads_back_to_the_same_feeds() {
        let feeds = [
            feed("https://a.example/?x=1&y=2", "A <news>", &["tech", "daily"]),
            feed("https://b.example/", "B \"quoted\"", &[]),
            feed("https://c.example/", "C", &["tech"]),
            feed("https://d.example/", "D", &["world"]),
        ];
        let text = write("feedwatch", &feeds);
        let mut back = feeds_of(read(&text, "out.opml").unwrap());
        back.sort_by(|a, b| a.url.cmp(&b.url));
        assert_eq!(back, feeds);
    }

    #[test]
    fn broken_or_foreign_xml_is_a_clear_error() {
        assert!(matches!(
            read("<rss><channel/></rss>", "x.opml"),
            Err(OpmlError::NotOpml { .. })
        ));
        let err = read("<opml><body><outline></body></opml>", "x.opml").unwrap_err();
        assert!(
            err.to_string().starts_with("x.opml: not valid XML"),
            "{err}"
        );
        assert!(matches!(read("", "x.opml"), Err(OpmlError::NotOpml { .. })));
    }
}

//! Editing `config.toml` in place — adding and removing `[[feed]]` tables — while keeping the
//! user's comments, order and layout (toml_edit). Pure: text in, text out. Callers check the
//! result with [`crate::config::Config::parse`] before writing it.

use toml_edit::{Array, ArrayOfTables, DocumentMut, Item, Table, value};

/// A feed to add to the config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewFeed {
    pub url: String,
    pub name: String,
    /// As written in the config (`30m`), or `None` for the default.
    pub interval: Option<String>,
    pub tags: Vec<String>,
}

/// A `[[feed]]` table taken out of the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovedFeed {
    pub url: String,
    pub name: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigEditError {
    #[error("{path}: {message}")]
    Syntax { path: String, message: String },
    #[error("{path}: `feed` is not a list of [[feed]] tables, so it cannot be edited here")]
    NotTables { path: String },
    #[error("{path}: no [[feed]] has the name or URL `{wanted}`")]
    NoSuchFeed { path: String, wanted: String },
    #[error(
        "{path}: rule `{rule}` watches only `{feed}`; change or remove that rule first \
         (without `feeds` it would watch every feed)"
    )]
    OnlyFeedOfRule {
        path: String,
        rule: String,
        feed: String,
    },
}

/// The config document, parsed for editing. `path` is only for messages.
pub struct ConfigDoc {
    doc: DocumentMut,
    path: String,
}

impl ConfigDoc {
    pub fn parse(text: &str, path: &str) -> Result<ConfigDoc, ConfigEditError> {
        let doc = text
            .parse::<DocumentMut>()
            .map_err(|e| ConfigEditError::Syntax {
                path: path.to_string(),
                message: e.to_string().trim_end().to_string(),
            })?;
        Ok(ConfigDoc {
            doc,
            path: path.to_string(),
        })
    }

    /// Appends `[[feed]]` tables after the existing ones, in the order given.
    pub fn add_feeds(&mut self, feeds: &[NewFeed]) -> Result<(), ConfigEditError> {
        // A new table is placed after every table the file already has, unless positioned:
        // right after the last [[feed]] keeps feeds together, ahead of rules and notifiers.
        let after_last_feed = self.feeds()?.map(|t| {
            t.iter()
                .filter_map(Table::position)
                .max()
                .unwrap_or_default()
        });
        // Without feeds the new tables go last, after any comment that ends the file: that
        // comment belongs before them to keep reading in the same order.
        let mut lead = String::from("\n");
        if after_last_feed.is_none() {
            let trailing = self.doc.trailing().as_str().unwrap_or_default().to_string();
            if !trailing.trim().is_empty() {
                lead = format!("{trailing}\n");
                self.doc.set_trailing("");
            }
        }
        let feeds_table = self.feeds_mut()?;
        let mut position = after_last_feed;
        for feed in feeds {
            let mut table = Table::new();
            table
                .decor_mut()
                .set_prefix(std::mem::replace(&mut lead, "\n".into()));
            table["name"] = value(feed.name.as_str());
            table["url"] = value(feed.url.as_str());
            if let Some(interval) = &feed.interval {
                table["interval"] = value(interval.as_str());
            }
            if !feed.tags.is_empty() {
                let tags: Array = feed.tags.iter().map(String::as_str).collect();
                table["tags"] = value(tags);
            }
            if let Some(p) = position.as_mut() {
                *p += 1;
                table.set_position(Some(*p));
            }
            feeds_table.push(table);
        }
        if let Some(last) = position {
            self.shift_tables_after(after_last_feed.unwrap_or_default(), last, feeds.len());
        }
        Ok(())
    }

    /// Removes the `[[feed]]` whose `name` or `url` is `wanted` (the URL as written).
    pub fn remove_feed(&mut self, wanted: &str) -> Result<RemovedFeed, ConfigEditError> {
        let path = self.path.clone();
        let not_found = || ConfigEditError::NoSuchFeed {
            path: path.clone(),
            wanted: wanted.to_string(),
        };
        let feeds = self.feeds_mut().map_err(|_| not_found())?;
        let text = |t: &Table, key: &str| t.get(key).and_then(Item::as_str).map(str::to_string);
        let index = feeds
            .iter()
            .position(|t| {
                text(t, "name").as_deref() == Some(wanted)
                    || text(t, "url").as_deref().map(str::trim) == Some(wanted.trim())
            })
            .ok_or_else(not_found)?;
        let table = feeds.get(index).ok_or_else(not_found)?;
        let removed = RemovedFeed {
            url: text(table, "url").unwrap_or_default(),
            name: text(table, "name"),
        };
        let position = table.position();
        let prefix = table
            .decor()
            .prefix()
            .and_then(|p| p.as_str())
            .unwrap_or_default()
            .to_string();
        feeds.remove(index);
        self.keep_file_header(position, &prefix);
        Ok(removed)
    }

    /// Takes the feed named `feed` out of every rule's `feeds` list, returning the rules that
    /// changed. A rule that names only this feed is refused rather than emptied: an empty list
    /// would widen it to every feed.
    pub fn unlink_feed_from_rules(&mut self, feed: &str) -> Result<Vec<String>, ConfigEditError> {
        let Some(rules) = self
            .doc
            .get_mut("rule")
            .and_then(Item::as_array_of_tables_mut)
        else {
            return Ok(Vec::new());
        };
        let mut changed = Vec::new();
        for rule in rules.iter_mut() {
            let name = rule
                .get("name")
                .and_then(Item::as_str)
                .unwrap_or_default()
                .to_string();
            let Some(list) = rule.get_mut("feeds").and_then(Item::as_array_mut) else {
                continue;
            };
            let before = list.len();
            // The first entry's prefix is the layout after `[`; it stays with whoever is first.
            let lead = list.get(0).and_then(|v| v.decor().prefix()).cloned();
            list.retain(|v| v.as_str() != Some(feed));
            if list.len() == before {
                continue;
            }
            if let (Some(first), Some(lead)) = (list.get_mut(0), lead) {
                first.decor_mut().set_prefix(lead);
            }
            if list.is_empty() {
                return Err(ConfigEditError::OnlyFeedOfRule {
                    path: self.path.clone(),
                    rule: name,
                    feed: feed.to_string(),
                });
            }
            changed.push(name);
        }
        Ok(changed)
    }

    /// The `url` of every `[[feed]]`, as written.
    pub fn feed_urls(&self) -> Vec<String> {
        self.feeds()
            .ok()
            .flatten()
            .map(|feeds| {
                feeds
                    .iter()
                    .filter_map(|t| t.get("url").and_then(Item::as_str).map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn feeds(&self) -> Result<Option<&ArrayOfTables>, ConfigEditError> {
        match self.doc.get("feed") {
            None => Ok(None),
            Some(item) => {
                item.as_array_of_tables()
                    .map(Some)
                    .ok_or_else(|| ConfigEditError::NotTables {
                        path: self.path.clone(),
                    })
            }
        }
    }

    fn feeds_mut(&mut self) -> Result<&mut ArrayOfTables, ConfigEditError> {
        let path = self.path.clone();
        self.doc
            .entry("feed")
            .or_insert_with(|| Item::ArrayOfTables(ArrayOfTables::new()))
            .as_array_of_tables_mut()
            .ok_or(ConfigEditError::NotTables { path })
    }

    /// The comment above the file's first table, when nothing precedes it, may be the file's
    /// own header rather than the table's: it moves to what now comes first instead of going
    /// away. Comments above later tables describe them and go with them.
    fn keep_file_header(&mut self, removed_position: Option<isize>, prefix: &str) {
        if prefix.trim().is_empty()
            || !self
                .doc
                .as_table()
                .iter()
                .all(|(_, i)| i.is_table_like() || i.is_array_of_tables())
        {
            return;
        }
        let mut first: Option<&mut Table> = None;
        for (_, item) in self.doc.iter_mut() {
            let tables: Vec<&mut Table> = match item {
                Item::Table(t) => vec![t],
                Item::ArrayOfTables(ts) => ts.iter_mut().collect(),
                _ => Vec::new(),
            };
            for t in tables {
                if first.as_ref().is_none_or(|f| t.position() < f.position()) {
                    first = Some(t);
                }
            }
        }
        let is_first = match &first {
            Some(next) => removed_position.is_some_and(|p| next.position().is_some_and(|n| p < n)),
            None => true,
        };
        if !is_first {
            return;
        }
        match first {
            Some(next) => {
                let rest = next
                    .decor()
                    .prefix()
                    .and_then(|p| p.as_str())
                    .unwrap_or_default();
                let joined = format!("{}\n\n{}", prefix.trim_end(), rest.trim_start_matches('\n'));
                next.decor_mut().set_prefix(joined);
            }
            None => {
                let trailing = self.doc.trailing().as_str().unwrap_or_default().to_string();
                self.doc.set_trailing(format!("{prefix}{trailing}"));
            }
        }
    }

    /// Makes room for `count` tables inserted after position `from` by moving every later
    /// table (rules, notifiers) down, so they keep their order after the new feeds.
    fn shift_tables_after(&mut self, from: isize, new_last: isize, count: usize) {
        let is_new = |t: &Table| t.position().is_some_and(|p| p > from && p <= new_last);
        for (key, item) in self.doc.iter_mut() {
            let shift = |t: &mut Table| {
                if let Some(p) = t.position().filter(|&p| p > from)
                    && !(key == "feed" && is_new(t))
                {
                    t.set_position(Some(p + count as isize));
                }
            };
            match item {
                Item::Table(t) => shift(t),
                Item::ArrayOfTables(tables) => tables.iter_mut().for_each(shift),
                _ => {}
            }
        }
    }
}

impl std::fmt::Display for ConfigDoc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.doc.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "\
# My feeds — keep this comment
database = \"fw.db\"   # next to the config

[[feed]]
name = \"World\"   # the big one
url = \"https://world.example/rss\"

# Local news, polled often
[[feed]]
name = \"Local\"
url = \"https://local.example/atom\"
interval = \"5m\"

[[rule]]
name = \"nato\"
query = 'NATO'   # alliance news
";

    fn feed(name: &str, url: &str) -> NewFeed {
        NewFeed {
            url: url.into(),
            name: name.into(),
            ..NewFeed::default()
        }
    }

    #[test]
    fn added_feed_goes_after_the_last_feed_and_keeps_every_comment() {
        let mut doc = ConfigDoc::parse(CONFIG, "c.toml").unwrap();
        let mut new = feed("Tech", "https://tech.example/feed");
        new.interval = Some("30m".into());
        new.tags = vec!["tech".into()];
        doc.add_feeds(&[new]).unwrap();
        let text = doc.to_string();
        for comment in [
            "# My feeds — keep this comment",
            "# next to the config",
            "# the big one",
            "# Local news, polled often",
            "# alliance news",
        ] {
            assert!(text.contains(comment), "lost `{comment}`:\n{text}");
        }
        let tech = text.find("name = \"Tech\"").unwrap();
        assert!(text.find("name = \"Local\"").unwrap() < tech, "{text}");
        assert!(tech < text.find("[[rule]]").unwrap(), "{text}");
        assert!(
            text.contains(
                "interval = \"5m\"\n\n[[feed]]\nname = \"Tech\"\nurl = \"https://tech.example/feed\"\n\
                 interval = \"30m\"\ntags = [\"tech\"]\n\n[[rule]]"
            ),
            "{text}"
        );
        assert!(text.starts_with(&CONFIG[..CONFIG.find("[[rule]]").unwrap()]));
    }

    #[test]
    fn first_feed_is_added_to_a_config_without_feeds() {
        let mut doc = ConfigDoc::parse("# empty\n", "c.toml").unwrap();
        doc.add_feeds(&[feed("A", "https://a.example/")]).unwrap();
        assert_eq!(
            doc.to_string(),
            "# empty\n\n[[feed]]\nname = \"A\"\nurl = \"https://a.example/\"\n"
        );
    }

    #[test]
    fn removed_feed_leaves_the_rules_that_named_it() {
        let text = "[[feed]]\nname = \"a\"\nurl = \"u\"\n\
                    [[rule]]\nname = \"both\"\nquery = \"x\"\nfeeds = [\"a\", \"b\"] # keep\n\
                    [[rule]]\nname = \"other\"\nquery = \"y\"\nfeeds = [\"b\"]\n";
        let mut doc = ConfigDoc::parse(text, "c.toml").unwrap();
        assert_eq!(doc.unlink_feed_from_rules("a").unwrap(), ["both"]);
        let edited = doc.to_string();
        assert!(edited.contains("feeds = [\"b\"] # keep"), "{edited}");
        let mut doc = ConfigDoc::parse(
            "[[rule]]\nname = \"r\"\nquery = \"x\"\nfeeds = [\n  \"a\",\n  \"b\",\n]\n",
            "c.toml",
        )
        .unwrap();
        doc.unlink_feed_from_rules("a").unwrap();
        assert!(doc.to_string().contains("feeds = [\n  \"b\",\n]"), "{doc}");

        let only = "[[rule]]\nname = \"r\"\nquery = \"x\"\nfeeds = [\"a\"]\n";
        let mut doc = ConfigDoc::parse(only, "c.toml").unwrap();
        let err = doc.unlink_feed_from_rules("a").unwrap_err().to_string();
        assert!(err.contains("rule `r` watches only `a`"), "{err}");
    }

    #[test]
    fn remove_by_name_or_url_leaves_the_rest_untouched() {
        let mut doc = ConfigDoc::parse(CONFIG, "c.toml").unwrap();
        let removed = doc.remove_feed("https://world.example/rss").unwrap();
        assert_eq!(removed.name.as_deref(), Some("World"));
        let text = doc.to_string();
        assert!(!text.contains("world.example"), "{text}");
        assert!(text.contains("# Local news, polled often"), "{text}");
        assert!(text.contains("query = 'NATO'   # alliance news"), "{text}");
        assert_eq!(doc.feed_urls(), ["https://local.example/atom"]);

        let removed = doc.remove_feed("Local").unwrap();
        assert_eq!(removed.url, "https://local.example/atom");
        assert!(!doc.to_string().contains("# Local news"));
        assert!(matches!(
            doc.remove_feed("Local"),
            Err(ConfigEditError::NoSuchFeed { .. })
        ));
    }

    #[test]
    fn removing_the_first_table_keeps_the_file_header_comment() {
        let text = "# header\n[[feed]]\nurl = \"a\"\n\n# about b\n[[feed]]\nurl = \"b\"\n";
        let mut doc = ConfigDoc::parse(text, "c.toml").unwrap();
        doc.remove_feed("a").unwrap();
        assert_eq!(
            doc.to_string(),
            "# header\n\n# about b\n[[feed]]\nurl = \"b\"\n"
        );
        // What sits above the first table cannot be told apart from the header: it is kept.
        doc.remove_feed("b").unwrap();
        assert_eq!(doc.to_string(), "# header\n\n# about b\n");
    }

    #[test]
    fn inline_feed_array_is_refused_not_rewritten() {
        let mut doc = ConfigDoc::parse("feed = [{ url = \"x\" }]\n", "c.toml").unwrap();
        assert!(matches!(
            doc.add_feeds(&[feed("A", "a")]),
            Err(ConfigEditError::NotTables { .. })
        ));
    }
}

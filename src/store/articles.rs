//! Articles, matches and the record of what was alerted; new articles are ingested here.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::batch::PollWrite;
use super::stories::{self, Placement, StoryIndex};
use super::{FeedId, Store, StoreError, timestamp};
use crate::alert::{Alert, StoryRef};
use crate::dedup::Identity;
use crate::parse::Article;
use crate::story::Sketch;

/// An article not stored yet, its identity, and the alerts it raises.
#[derive(Debug, Clone)]
pub struct NewEntry {
    pub article: Article,
    pub identity: Identity,
    pub alerts: Vec<RaisedAlert>,
    /// Its sketch, which places it in a story when it is stored; `None`: a story of its own.
    pub sketch: Option<Sketch>,
}

/// An alert one rule raised, with the notifiers that rule sends to.
#[derive(Debug, Clone)]
pub struct RaisedAlert {
    pub alert: Alert,
    pub notifiers: Vec<String>,
    /// The rule alerts once per story (`per_story`, the default): a later article of a story
    /// it alerted for is added to that alert's sources instead.
    pub per_story: bool,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IngestStats {
    pub new_articles: usize,
    pub new_alerts: usize,
    /// The rule of each match recorded, for the metrics.
    pub matched_rules: Vec<String>,
    /// Alerts not raised because their rule had alerted for the story: the article was added
    /// to that alert's sources.
    pub joined_alerts: usize,
    /// The id of each new entry's article, in order; `None`: it was stored already.
    pub article_ids: Vec<Option<i64>>,
}

/// A stored match, for `feedwatch matches`.
#[derive(Debug, Clone)]
pub struct StoredMatch {
    pub alert: Alert,
    pub created_at: DateTime<Utc>,
}

impl Store {
    /// Whether this feed has stored each of `identities` (by id or by canonical link), and if
    /// so whether its last-seen mark is older than [`TOUCH_EVERY`] at `now`; `None` when the
    /// feed has no article stored at all (its first poll), and then nothing is looked up. Reads
    /// only, so it needs no write transaction and no sync.
    pub fn seen(
        &self,
        feed: FeedId,
        identities: &[Identity],
        now: DateTime<Utc>,
    ) -> Result<Option<Vec<Seen>>, StoreError> {
        let stale_before = now.timestamp() - TOUCH_EVERY;
        // One read transaction for all of them: one snapshot, and one lock taken, not one each.
        let snapshot = self.conn.unchecked_transaction()?;
        let stored: bool = snapshot
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM articles WHERE feed_id = ?1)")?
            .query_row([feed], |r| r.get(0))?;
        if !stored {
            return Ok(None);
        }
        let mut by_identity = snapshot.prepare_cached(BY_IDENTITY_SQL)?;
        let mut by_link = snapshot.prepare_cached(BY_LINK_SQL)?;
        identities
            .iter()
            .map(|identity| {
                let found: Option<(i64, Option<i64>, Option<String>)> = by_identity
                    .query_row(params![feed, identity.id], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })
                    .optional()?;
                // Links are unique in a feed: when the article found by its identity has the
                // entry's link (or the entry has none), no other can have it.
                let (article, at) = match found {
                    Some((article, at, link))
                        if identity.canonical_link.is_none() || link == identity.canonical_link =>
                    {
                        (Some(article), at)
                    }
                    found => {
                        let linked: Option<(i64, Option<i64>)> = match &identity.canonical_link {
                            Some(link) => by_link
                                .query_row(params![feed, link], |r| Ok((r.get(0)?, r.get(1)?)))
                                .optional()?,
                            None => None,
                        };
                        // The entry stands for the article of its identity, unless its link
                        // is another's. Found by its link alone, it stands for no article of
                        // its own: a later entry with its identity would be a repeat of it.
                        let article = match (&found, &linked) {
                            (Some((a, ..)), Some((b, _))) if a != b => None,
                            _ => found.as_ref().map(|f| f.0),
                        };
                        let at = [found.and_then(|(_, at, _)| at), linked.and_then(|l| l.1)]
                            .into_iter()
                            .flatten()
                            .min();
                        (article, at)
                    }
                };
                Ok(match at {
                    None => Seen::New,
                    Some(at) if at < stale_before => Seen::Stale(Stored { article, at }),
                    Some(at) => Seen::Marked(Stored { article, at }),
                })
            })
            .collect::<Result<_, _>>()
            .map(Some)
    }

    /// Deletes articles that have not been in their feed since `cutoff`. Matches and the record
    /// of what was alerted stay, so a pruned story can never alert again. Returns how many
    /// articles went.
    pub fn prune(&mut self, cutoff: DateTime<Utc>) -> Result<usize, StoreError> {
        // An article its feed listed when last read (its `last_seen_at` is within
        // `TOUCH_EVERY` of the feed's `listed_at`) is still there while the feed answers 304
        // or sends that body again, however long that lasts.
        let deleted = self.conn.execute(
            "DELETE FROM articles WHERE last_seen_at < ?1
               AND last_seen_at < COALESCE(
                   (SELECT listed_at FROM feeds WHERE feeds.id = articles.feed_id) - ?2, ?1)",
            params![cutoff.timestamp(), TOUCH_EVERY],
        )?;
        // Give freed pages back to the file system and refresh the planner's statistics.
        self.conn
            .execute_batch("PRAGMA incremental_vacuum; PRAGMA optimize;")?;
        Ok(deleted)
    }

    /// Stored matches, newest first.
    pub fn matches(&self, limit: usize) -> Result<Vec<StoredMatch>, StoreError> {
        self.matches_where(&MatchFilter {
            limit,
            ..MatchFilter::default()
        })
    }

    /// Stored matches that pass `filter`, newest first.
    pub fn matches_where(&self, filter: &MatchFilter) -> Result<Vec<StoredMatch>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT alert, created_at FROM matches
             WHERE (?1 IS NULL OR rule = ?1) AND (?2 IS NULL OR created_at >= ?2)
             ORDER BY created_at DESC, id DESC LIMIT ?3",
        )?;
        let rows = stmt.query_map(
            params![
                filter.rule,
                filter.since.map(|t| t.timestamp()),
                filter.limit as i64
            ],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
        )?;
        let mut out = Vec::new();
        for row in rows {
            let (alert, created_at) = row?;
            out.push(StoredMatch {
                alert: serde_json::from_str(&alert)?,
                created_at: timestamp(created_at),
            });
        }
        Ok(out)
    }
}

/// A stored article with the feed it came from, for running rules over the archive.
#[derive(Debug, Clone)]
pub struct ArchivedArticle {
    pub feed: String,
    pub article: Article,
    pub first_seen_at: DateTime<Utc>,
}

impl ArchivedArticle {
    /// When the article appeared: its own date, else when feedwatch first saw it.
    pub fn date(&self) -> DateTime<Utc> {
        self.article.published.unwrap_or(self.first_seen_at)
    }
}

impl Store {
    /// Every stored article that appeared at or after `since` (by its date, else first seen),
    /// oldest first. Authors and categories are not stored, so they are empty.
    pub fn articles_since(&self, since: DateTime<Utc>) -> Result<Vec<ArchivedArticle>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT feeds.name, a.guid, a.title, a.link, a.published, a.summary, a.content,
                    a.first_seen_at
             FROM articles a JOIN feeds ON feeds.id = a.feed_id
             WHERE COALESCE(a.published, a.first_seen_at) >= ?1
             ORDER BY COALESCE(a.published, a.first_seen_at), a.id",
        )?;
        let rows = stmt.query_map(params![since.timestamp()], |r| {
            Ok(ArchivedArticle {
                feed: r.get(0)?,
                article: Article {
                    guid: r.get(1)?,
                    title: r.get(2)?,
                    link: r.get(3)?,
                    published: r.get::<_, Option<i64>>(4)?.map(timestamp),
                    summary: r.get(5)?,
                    content: r.get(6)?,
                    ..Article::default()
                },
                first_seen_at: timestamp(r.get(7)?),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// Which stored matches to list.
#[derive(Debug, Clone, Default)]
pub struct MatchFilter {
    /// Only this rule's matches.
    pub rule: Option<String>,
    /// Only matches made at or after this time.
    pub since: Option<DateTime<Utc>>,
    pub limit: usize,
}

/// The id, last-seen mark and canonical link of a feed's stored article with this identity.
const BY_IDENTITY_SQL: &str =
    "SELECT id, last_seen_at, canonical_link FROM articles WHERE feed_id = ?1 AND identity = ?2";

/// The id and last-seen mark of a feed's stored article with this canonical link.
const BY_LINK_SQL: &str =
    "SELECT id, last_seen_at FROM articles WHERE feed_id = ?1 AND canonical_link = ?2";

/// What a feed's poll found of an entry in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Not stored: a new article.
    New,
    /// Stored, marked as in its feed within [`TOUCH_EVERY`].
    Marked(Stored),
    /// Stored, its mark older: the poll marks it again (see [`touch`]).
    Stale(Stored),
}

impl Seen {
    pub fn is_new(&self) -> bool {
        *self == Seen::New
    }
}

/// The stored article an entry stands for, and its last-seen mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// `None` when it was found by its link alone, or its identity and its link in two
    /// articles.
    pub article: Option<i64>,
    /// Unix seconds.
    pub at: i64,
}

/// How stale `last_seen_at` may be before a poll that finds the article writes it again:
/// pruning counts in months, and writing every present article at every poll was a fifth of
/// a poll's CPU when nothing was new.
pub(super) const TOUCH_EVERY: i64 = 24 * 60 * 60;

/// Marks the stored ones among `identities` as still in their feed, which is what keeps them
/// from being pruned (see `prune`) and coming back as new; those marked in the last
/// [`TOUCH_EVERY`] are left as they are. Polls send only the [`Seen::Stale`] ones: running
/// this for every entry of every poll, to change nothing, was a seventh of a steady poll's CPU
/// on the store's one committer.
pub(super) fn touch(
    tx: &Connection,
    feed: FeedId,
    identities: &[Identity],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut touch = tx.prepare_cached(
        "UPDATE articles SET last_seen_at = ?4
         WHERE feed_id = ?1 AND (identity = ?2 OR canonical_link = ?3) AND last_seen_at < ?5",
    )?;
    for identity in identities {
        touch.execute(params![
            feed,
            identity.id,
            identity.canonical_link,
            now.timestamp(),
            now.timestamp() - TOUCH_EVERY
        ])?;
    }
    Ok(())
}

/// Stores new articles with their matches and outbox rows, inside a transaction the caller
/// commits. An article already stored, or a (rule, story) already alerted, is skipped, so
/// writing the same input twice changes nothing the second time. An alert whose JSON `write`
/// does not carry ([`AlertsJson`]) is serialized here.
pub(super) fn ingest(
    tx: &Connection,
    story_index: &mut StoryIndex,
    write: &PollWrite,
) -> Result<IngestStats, StoreError> {
    let PollWrite {
        feed,
        feed_url,
        new: items,
        now,
        story: story_params,
        alerts_json,
        ..
    } = write;
    let (feed, now) = (*feed, *now);
    let mut stats = IngestStats::default();
    {
        // Skips an article this feed stored already, by identity or by canonical link: both
        // are unique per feed.
        let mut insert_article = tx.prepare_cached(
            "INSERT INTO articles (feed_id, identity, canonical_link, guid, title, link,
                                   published, summary, content, first_seen_at, last_seen_at,
                                   enclosures, thumbnail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10, ?11, ?12)
             ON CONFLICT DO NOTHING",
        )?;
        let mut claim = tx.prepare_cached(
            "INSERT INTO alerted (rule, alert_key, created_at) VALUES (?1, ?2, ?3)
             ON CONFLICT DO NOTHING",
        )?;
        let mut insert_match = tx.prepare_cached(
            "INSERT INTO matches (rule, article_id, alert, created_at, story_id)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        // A later article of a story joins the sources of the rule's alert for it.
        let mut add_source = tx.prepare_cached(
            "UPDATE matches SET alert = json_insert(alert, '$.story.sources[#]', json(?3))
             WHERE story_id = ?1 AND rule = ?2",
        )?;
        let mut insert_outbox = tx.prepare_cached(
            "INSERT INTO outbox (delivery_id, match_id, notifier, rule, next_attempt_at,
                                 created_at)
             VALUES (?1, ?2, ?3, ?5, ?4, ?4)
             ON CONFLICT (delivery_id) DO NOTHING",
        )?;
        for (index, item) in items.iter().enumerate() {
            let a = &item.article;
            let identity = &item.identity;
            // `RETURNING` would collect each row's id in a temporary table; the id of the row
            // just inserted is at hand anyway. No change means the article was stored already.
            let inserted = insert_article.execute(params![
                feed,
                identity.id,
                identity.canonical_link,
                a.guid,
                a.title,
                a.link,
                a.published.map(|t| t.timestamp()),
                a.summary,
                a.content,
                now.timestamp(),
                enclosures_json(&a.enclosures)?,
                a.thumbnail,
            ])?;
            if inserted == 0 {
                stats.article_ids.push(None);
                continue;
            }
            let article_id = tx.last_insert_rowid();
            stats.article_ids.push(Some(article_id));
            stats.new_articles += 1;
            let alert_key = identity.alert_key(feed_url);
            let story = match &item.sketch {
                // A window of zero turns stories off.
                Some(sketch) if !story_params.window.is_zero() => stories::place(
                    tx,
                    story_index,
                    article_id,
                    &alert_key,
                    sketch,
                    now,
                    story_params,
                )?,
                _ => Placement::alone(article_id, &alert_key),
            };
            for (
                raised,
                RaisedAlert {
                    alert,
                    notifiers,
                    per_story,
                },
            ) in item.alerts.iter().enumerate()
            {
                if claim.execute(params![alert.rule, alert_key, now.timestamp()])? == 0 {
                    continue;
                }
                if *per_story
                    && claim.execute(params![alert.rule, story.key, now.timestamp()])? == 0
                {
                    let source = serde_json::to_string(&alert.source())?;
                    add_source.execute(params![story.id, alert.rule, source])?;
                    stats.joined_alerts += 1;
                    continue;
                }
                let story_ref = StoryRef {
                    id: story.id,
                    sources: vec![alert.source()],
                };
                let made = alerts_json.get(index, raised);
                let stored = match made.and_then(|json| with_story(json, &story_ref)) {
                    Some(stored) => stored,
                    None => serde_json::to_string(&Alert {
                        story: Some(story_ref),
                        ..alert.clone()
                    })?,
                };
                insert_match.execute(params![
                    alert.rule,
                    article_id,
                    stored,
                    now.timestamp(),
                    per_story.then_some(story.id)
                ])?;
                let match_id = tx.last_insert_rowid();
                stats.new_alerts += 1;
                stats.matched_rules.push(alert.rule.clone());
                for notifier in notifiers {
                    let delivery_id = delivery_id(&alert.rule, &alert_key, notifier);
                    insert_outbox.execute(params![
                        delivery_id,
                        match_id,
                        notifier,
                        now.timestamp(),
                        alert.rule
                    ])?;
                }
            }
        }
    }
    Ok(stats)
}

/// The JSON of each new entry's alerts as stored but for their story, which only the commit
/// knows: made in the poll's own task, so that the one committer only adds the story. Empty
/// (the default) until it is made; an alert without its JSON is serialized as it is written.
#[derive(Debug, Clone, Default)]
pub struct AlertsJson(Vec<Vec<String>>);

impl AlertsJson {
    /// The JSON of the alerts of `items`.
    pub(super) fn of(items: &[NewEntry]) -> Result<AlertsJson, serde_json::Error> {
        let json = items
            .iter()
            .map(|item| {
                item.alerts
                    .iter()
                    .map(|raised| match raised.alert.story {
                        None => serde_json::to_string(&raised.alert),
                        Some(_) => serde_json::to_string(&Alert {
                            story: None,
                            ..raised.alert.clone()
                        }),
                    })
                    .collect()
            })
            .collect::<Result<_, _>>()?;
        Ok(AlertsJson(json))
    }

    /// The JSON of alert `raised` of new entry `entry`, if it was made.
    fn get(&self, entry: usize, raised: usize) -> Option<&str> {
        self.0.get(entry)?.get(raised).map(String::as_str)
    }
}

/// The JSON of an alert with `story`, from `json`, that alert without one: `story` is the
/// alert's last field and left out when absent, so it goes before the closing brace, as
/// serde_json writes it. `None` if `json` is not an object.
fn with_story(json: &str, story: &StoryRef) -> Option<String> {
    let fields = json.strip_suffix('}')?;
    let story = serde_json::to_string(story).ok()?;
    let mut stored = String::with_capacity(fields.len() + story.len() + 11);
    stored.push_str(fields);
    // An object with no field before it would need no comma; an alert always has some.
    stored.push_str(if fields.ends_with('{') {
        "\"story\":"
    } else {
        ",\"story\":"
    });
    stored.push_str(&story);
    stored.push('}');
    Some(stored)
}

/// Stable across restarts and rebuilt databases, so a receiver can drop a repeat by it.
fn delivery_id(rule: &str, alert_key: &str, notifier: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for part in [rule, alert_key, notifier] {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    hex::encode(&hasher.finalize()[..16])
}

/// What the `enclosures` column holds: NULL for the many articles without any.
fn enclosures_json(enclosures: &[crate::parse::Enclosure]) -> Result<Option<String>, StoreError> {
    if enclosures.is_empty() {
        return Ok(None);
    }
    Ok(Some(serde_json::to_string(enclosures)?))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::alert::{FeedRef, Source};

    proptest! {
        /// The story added to an alert's JSON made beforehand gives the very text that
        /// serializing the alert with its story gives.
        #[test]
        fn an_alert_with_its_story_added_is_the_alert_serialized_with_it(
            title in "\\PC{0,40}",
            summary in "\\PC{0,80}",
            link in proptest::option::of("\\PC{0,30}"),
            feed in "\\PC{0,20}",
            terms in proptest::collection::vec("\\PC{0,10}", 0..3),
            sources in proptest::collection::vec(("\\PC{0,10}", "\\PC{0,20}"), 1..4),
            id in any::<i64>(),
            thumbnail in proptest::option::of("[a-z:/.]{0,20}"),
        ) {
            let article = Article {
                guid: Some("g".into()),
                title,
                link,
                summary,
                thumbnail,
                ..Article::default()
            };
            let feed_ref = FeedRef { name: feed.clone(), url: "http://f/".into(), title: feed };
            let alert = Alert::new("rule", feed_ref, &article, "guid:g", terms, Utc::now());
            let story = StoryRef {
                id,
                sources: sources
                    .into_iter()
                    .map(|(feed, title)| Source { feed, title, link: None })
                    .collect(),
            };
            let entry = NewEntry {
                article,
                identity: crate::dedup::identify(&Article::default()),
                alerts: vec![RaisedAlert { alert: alert.clone(), notifiers: Vec::new(), per_story: true }],
                sketch: None,
            };
            let made = AlertsJson::of(std::slice::from_ref(&entry)).unwrap();
            let whole = serde_json::to_string(&Alert { story: Some(story.clone()), ..alert }).unwrap();
            prop_assert_eq!(with_story(made.get(0, 0).unwrap(), &story), Some(whole));
        }
    }
}

//! SQLite: feeds and their fetch state, articles, matches, the record of what was alerted, and
//! the outbox of alerts to deliver.
//!
//! Everything that must not be half-done is one transaction: an article, its matches and their
//! outbox rows are written together, so a crash never leaves a match without its alert or an
//! alert for an article that was never stored. `alerted` is kept apart from `articles` so that
//! pruning old articles can never let an old story alert again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::alert::Alert;
use crate::dedup::Identity;
use crate::fetch::Validators;
use crate::parse::Article;

/// Schema steps, applied in order; the database's `user_version` is how many have run.
/// Append only: never edit a step that has shipped.
const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE feeds (
    id                   INTEGER PRIMARY KEY,
    url                  TEXT NOT NULL UNIQUE,
    name                 TEXT NOT NULL,
    title                TEXT,
    etag                 TEXT,
    last_modified        TEXT,
    next_poll_at         INTEGER,
    last_attempt_at      INTEGER,
    last_success_at      INTEGER,
    last_status          INTEGER,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    last_error           TEXT
) STRICT;

CREATE TABLE articles (
    id             INTEGER PRIMARY KEY,
    feed_id        INTEGER NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
    identity       TEXT NOT NULL,
    canonical_link TEXT,
    guid           TEXT,
    title          TEXT NOT NULL,
    link           TEXT,
    published      INTEGER,
    summary        TEXT NOT NULL,
    content        TEXT NOT NULL,
    first_seen_at  INTEGER NOT NULL,
    UNIQUE (feed_id, identity)
) STRICT;
CREATE INDEX articles_by_link ON articles (feed_id, canonical_link);

CREATE TABLE alerted (
    rule       TEXT NOT NULL,
    alert_key  TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (rule, alert_key)
) STRICT, WITHOUT ROWID;

CREATE TABLE matches (
    id         INTEGER PRIMARY KEY,
    rule       TEXT NOT NULL,
    article_id INTEGER REFERENCES articles(id) ON DELETE SET NULL,
    alert      TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX matches_by_time ON matches (created_at);

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    delivery_id     TEXT NOT NULL UNIQUE,
    match_id        INTEGER NOT NULL REFERENCES matches(id),
    notifier        TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER
) STRICT;
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
"#];

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("database {path}: cannot create its folder: {source}")]
    Folder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "database {path} has schema version {found}, newer than this feedwatch knows ({known}); \
         upgrade feedwatch"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("database task failed: {0}")]
    Task(String),
    #[error("database: stored alert cannot be read: {0}")]
    Corrupt(#[from] serde_json::Error),
}

pub type FeedId = i64;

/// A feed's fetch state, as the poller needs it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeedState {
    pub id: FeedId,
    pub url: String,
    pub name: String,
    pub title: Option<String>,
    pub validators: Validators,
    pub next_poll_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_status: Option<u16>,
    pub consecutive_failures: u32,
    pub last_error: Option<String>,
    pub articles: i64,
}

/// How a poll ended, to be recorded on the feed.
#[derive(Debug, Clone)]
pub enum PollOutcome {
    Success {
        status: u16,
        validators: Validators,
        title: Option<String>,
    },
    Failure {
        status: Option<u16>,
        error: String,
        /// False for "come back later" answers (429/503), which are not the feed's fault.
        counts_as_failure: bool,
    },
}

/// One new article and what it matched: rule name, terms, the notifiers to alert.
#[derive(Debug, Clone)]
pub struct NewArticle<'a> {
    pub article: &'a Article,
    pub identity: &'a Identity,
    pub alerts: Vec<(Alert, Vec<String>)>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct IngestStats {
    pub new_articles: usize,
    pub new_alerts: usize,
}

/// An outbox row due for delivery.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: i64,
    pub delivery_id: String,
    pub notifier: String,
    pub attempts: u32,
    pub alert: Alert,
    pub created_at: DateTime<Utc>,
}

/// A stored match, for `feedwatch matches`.
#[derive(Debug, Clone)]
pub struct StoredMatch {
    pub alert: Alert,
    pub created_at: DateTime<Utc>,
}

pub struct Store {
    conn: Connection,
}

/// The store shared by the daemon's tasks. SQLite calls are short but blocking, so they run on
/// tokio's blocking pool, one at a time.
#[derive(Clone)]
pub struct Db(Arc<Mutex<Store>>);

impl Db {
    pub fn new(store: Store) -> Db {
        Db(Arc::new(Mutex::new(store)))
    }

    pub async fn call<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Store) -> Result<R, StoreError> + Send + 'static,
    {
        let store = Arc::clone(&self.0);
        tokio::task::spawn_blocking(move || {
            // A panic while holding the lock cannot leave SQLite half-written (transactions
            // roll back), so a poisoned lock is safe to take over.
            let mut store = store
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&mut store)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::Folder {
                path: path.to_path_buf(),
                source,
            })?;
        }
        let open_error = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open(path).map_err(open_error)?;
        // WAL lets readers (`feedwatch matches`) work while the daemon writes; FULL sync because
        // an outbox row must survive a power cut.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA foreign_keys = ON;",
        )
        .map_err(open_error)?;
        let mut store = Store { conn };
        store.migrate(path)?;
        Ok(store)
    }

    fn migrate(&mut self, path: &Path) -> Result<(), StoreError> {
        let known = MIGRATIONS.len() as i64;
        let found: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if found > known {
            return Err(StoreError::TooNew {
                path: path.to_path_buf(),
                found,
                known,
            });
        }
        for (index, step) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute_batch(step)?;
            tx.pragma_update(None, "user_version", index as i64 + 1)?;
            tx.commit()?;
        }
        Ok(())
    }

    /// Makes the feeds table agree with the config: new feeds are added (due now), names are
    /// updated. Feeds no longer in the config keep their rows, so their articles stay
    /// deduplicated if they come back. Returns the id of each configured URL.
    pub fn sync_feeds<'a>(
        &mut self,
        feeds: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<HashMap<String, FeedId>, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut ids = HashMap::new();
        {
            let mut upsert = tx.prepare(
                "INSERT INTO feeds (url, name) VALUES (?1, ?2)
                 ON CONFLICT (url) DO UPDATE SET name = excluded.name
                 RETURNING id",
            )?;
            for (url, name) in feeds {
                let id: FeedId = upsert.query_row(params![url, name], |r| r.get(0))?;
                ids.insert(url.to_string(), id);
            }
        }
        tx.commit()?;
        Ok(ids)
    }

    pub fn feed_state(&self, id: FeedId) -> Result<FeedState, StoreError> {
        let mut stmt = self.conn.prepare_cached(FEED_STATE_SQL)?;
        Ok(stmt.query_row(params![id], feed_state_row)?)
    }

    /// All feeds, for `feedwatch feeds` and for the scheduler's due-time queue.
    pub fn feed_states(&self) -> Result<Vec<FeedState>, StoreError> {
        let sql = FEED_STATE_SQL.replace("WHERE f.id = ?1", "ORDER BY f.name");
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map([], feed_state_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records a poll's result and when the feed is due again.
    pub fn record_poll(
        &mut self,
        id: FeedId,
        outcome: &PollOutcome,
        now: DateTime<Utc>,
        next_poll_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        match outcome {
            PollOutcome::Success {
                status,
                validators,
                title,
            } => {
                self.conn.execute(
                    "UPDATE feeds SET etag = ?2, last_modified = ?3, title = COALESCE(?4, title),
                        last_attempt_at = ?5, last_success_at = ?5, last_status = ?6,
                        consecutive_failures = 0, last_error = NULL, next_poll_at = ?7
                     WHERE id = ?1",
                    params![
                        id,
                        validators.etag,
                        validators.last_modified,
                        title,
                        now.timestamp(),
                        status,
                        next_poll_at.timestamp()
                    ],
                )?;
            }
            PollOutcome::Failure {
                status,
                error,
                counts_as_failure,
            } => {
                self.conn.execute(
                    "UPDATE feeds SET last_attempt_at = ?2, last_status = ?3, last_error = ?4,
                        consecutive_failures = consecutive_failures + ?5, next_poll_at = ?6
                     WHERE id = ?1",
                    params![
                        id,
                        now.timestamp(),
                        status,
                        error,
                        i64::from(*counts_as_failure),
                        next_poll_at.timestamp()
                    ],
                )?;
            }
        }
        Ok(())
    }

    /// Which of `identities` this feed has not stored yet (by id or by canonical link).
    pub fn unseen(&self, feed: FeedId, identities: &[Identity]) -> Result<Vec<bool>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM articles WHERE feed_id = ?1 AND identity = ?2)
                 OR EXISTS (SELECT 1 FROM articles WHERE feed_id = ?1 AND canonical_link = ?3)",
        )?;
        identities
            .iter()
            .map(|identity| {
                let seen: bool = stmt
                    .query_row(params![feed, identity.id, identity.canonical_link], |r| {
                        r.get(0)
                    })?;
                Ok(!seen)
            })
            .collect()
    }

    /// Stores new articles with their matches and outbox rows, all in one transaction. An
    /// article already stored, or a (rule, story) already alerted, is skipped, so calling this
    /// twice with the same input changes nothing the second time.
    pub fn ingest(
        &mut self,
        feed: FeedId,
        feed_url: &str,
        items: &[NewArticle],
        now: DateTime<Utc>,
    ) -> Result<IngestStats, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut stats = IngestStats::default();
        {
            let mut seen = tx.prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM articles WHERE feed_id = ?1 AND identity = ?2)
                     OR EXISTS (SELECT 1 FROM articles WHERE feed_id = ?1 AND canonical_link = ?3)",
            )?;
            let mut insert_article = tx.prepare_cached(
                "INSERT INTO articles (feed_id, identity, canonical_link, guid, title, link,
                                       published, summary, content, first_seen_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT (feed_id, identity) DO NOTHING
                 RETURNING id",
            )?;
            let mut claim = tx.prepare_cached(
                "INSERT INTO alerted (rule, alert_key, created_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT DO NOTHING",
            )?;
            let mut insert_match = tx.prepare_cached(
                "INSERT INTO matches (rule, article_id, alert, created_at) VALUES (?1, ?2, ?3, ?4)
                 RETURNING id",
            )?;
            let mut insert_outbox = tx.prepare_cached(
                "INSERT INTO outbox (delivery_id, match_id, notifier, next_attempt_at, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?4)
                 ON CONFLICT (delivery_id) DO NOTHING",
            )?;
            for item in items {
                let a = item.article;
                let identity = item.identity;
                let already: bool = seen
                    .query_row(params![feed, identity.id, identity.canonical_link], |r| {
                        r.get(0)
                    })?;
                if already {
                    continue;
                }
                let Some(article_id) = insert_article
                    .query_row(
                        params![
                            feed,
                            identity.id,
                            identity.canonical_link,
                            a.guid,
                            a.title,
                            a.link,
                            a.published.map(|t| t.timestamp()),
                            a.summary,
                            a.content,
                            now.timestamp()
                        ],
                        |r| r.get::<_, i64>(0),
                    )
                    .optional()?
                else {
                    continue;
                };
                stats.new_articles += 1;
                let alert_key = identity.alert_key(feed_url);
                for (alert, notifiers) in &item.alerts {
                    if claim.execute(params![alert.rule, alert_key, now.timestamp()])? == 0 {
                        continue;
                    }
                    let match_id: i64 = insert_match.query_row(
                        params![
                            alert.rule,
                            article_id,
                            serde_json::to_string(alert)?,
                            now.timestamp()
                        ],
                        |r| r.get(0),
                    )?;
                    stats.new_alerts += 1;
                    for notifier in notifiers {
                        let delivery_id = delivery_id(&alert.rule, &alert_key, notifier);
                        insert_outbox.execute(params![
                            delivery_id,
                            match_id,
                            notifier,
                            now.timestamp()
                        ])?;
                    }
                }
            }
        }
        tx.commit()?;
        Ok(stats)
    }

    /// Pending outbox rows due by `due_by` with an id above `after_id`, oldest first.
    pub fn due_deliveries(
        &self,
        due_by: DateTime<Utc>,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT o.id, o.delivery_id, o.notifier, o.attempts, m.alert, o.created_at
             FROM outbox o JOIN matches m ON m.id = o.match_id
             WHERE o.status = 'pending' AND o.next_attempt_at <= ?1 AND o.id > ?2
             ORDER BY o.id LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![due_by.timestamp(), after_id, limit as i64], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, i64>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, delivery_id, notifier, attempts, alert, created_at) = row?;
            out.push(Delivery {
                id,
                delivery_id,
                notifier,
                attempts: attempts.clamp(0, u32::MAX as i64) as u32,
                alert: serde_json::from_str(&alert)?,
                created_at: timestamp(created_at),
            });
        }
        Ok(out)
    }

    /// When the next pending delivery is due, if any.
    pub fn next_delivery_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let at: Option<i64> = self.conn.query_row(
            "SELECT MIN(next_attempt_at) FROM outbox WHERE status = 'pending'",
            [],
            |r| r.get(0),
        )?;
        Ok(at.map(timestamp))
    }

    pub fn mark_delivered(&mut self, id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE outbox SET status = 'delivered', delivered_at = ?2,
                attempts = attempts + 1, last_error = NULL
             WHERE id = ?1",
            params![id, now.timestamp()],
        )?;
        Ok(())
    }

    /// Records a failed attempt: retried at `retry_at`, or dead when `None`.
    pub fn mark_failed(
        &mut self,
        id: i64,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        match retry_at {
            Some(at) => self.conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3
                 WHERE id = ?1",
                params![id, error, at.timestamp()],
            )?,
            None => self.conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, status = 'dead'
                 WHERE id = ?1",
                params![id, error],
            )?,
        };
        Ok(())
    }

    /// Stored matches, newest first.
    pub fn matches(&self, limit: usize) -> Result<Vec<StoredMatch>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT alert, created_at FROM matches ORDER BY created_at DESC, id DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map(params![limit as i64], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })?;
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

    /// Outbox rows per status, for summaries.
    pub fn outbox_counts(&self) -> Result<HashMap<String, i64>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT status, COUNT(*) FROM outbox GROUP BY status")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

const FEED_STATE_SQL: &str = "
    SELECT f.id, f.url, f.name, f.title, f.etag, f.last_modified, f.next_poll_at,
           f.last_attempt_at, f.last_success_at, f.last_status, f.consecutive_failures,
           f.last_error, (SELECT COUNT(*) FROM articles a WHERE a.feed_id = f.id)
    FROM feeds f WHERE f.id = ?1";

fn feed_state_row(r: &rusqlite::Row) -> rusqlite::Result<FeedState> {
    let time = |i: usize| -> rusqlite::Result<Option<DateTime<Utc>>> {
        Ok(r.get::<_, Option<i64>>(i)?.map(timestamp))
    };
    Ok(FeedState {
        id: r.get(0)?,
        url: r.get(1)?,
        name: r.get(2)?,
        title: r.get(3)?,
        validators: Validators {
            etag: r.get(4)?,
            last_modified: r.get(5)?,
        },
        next_poll_at: time(6)?,
        last_attempt_at: time(7)?,
        last_success_at: time(8)?,
        last_status: r
            .get::<_, Option<i64>>(9)?
            .and_then(|s| u16::try_from(s).ok()),
        consecutive_failures: r.get::<_, i64>(10)?.clamp(0, u32::MAX as i64) as u32,
        last_error: r.get(11)?,
        articles: r.get(12)?,
    })
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

fn timestamp(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(seconds, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::FeedRef;
    use crate::dedup::identify;

    fn article(guid: &str, title: &str) -> Article {
        Article {
            guid: Some(guid.into()),
            title: title.into(),
            link: Some(format!("https://x.org/{guid}")),
            ..Article::default()
        }
    }

    fn alert_for(a: &Article, rule: &str) -> Alert {
        Alert::new(
            rule,
            FeedRef {
                name: "f".into(),
                url: "http://f/".into(),
                title: "F".into(),
            },
            a,
            &identify(a).id,
            vec!["x".into()],
            Utc::now(),
        )
    }

    #[test]
    fn ingest_is_idempotent_and_alerts_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("db/fw.db")).unwrap();
        let ids = store.sync_feeds([("http://f/", "f")]).unwrap();
        let feed = ids["http://f/"];
        let a = article("1", "NATO");
        let identity = identify(&a);
        let item = NewArticle {
            article: &a,
            identity: &identity,
            alerts: vec![(alert_for(&a, "r"), vec!["hook".into(), "console".into()])],
        };
        let now = Utc::now();
        let first = store
            .ingest(feed, "http://f/", std::slice::from_ref(&item), now)
            .unwrap();
        assert_eq!(
            first,
            IngestStats {
                new_articles: 1,
                new_alerts: 1
            }
        );
        let again = store.ingest(feed, "http://f/", &[item], now).unwrap();
        assert_eq!(again, IngestStats::default());
        assert_eq!(store.due_deliveries(now, 0, 10).unwrap().len(), 2);
        assert_eq!(store.unseen(feed, &[identity]).unwrap(), [false]);
    }

    #[test]
    fn same_story_under_a_new_guid_is_not_alerted_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("fw.db")).unwrap();
        let feed = store.sync_feeds([("http://f/", "f")]).unwrap()["http://f/"];
        let a = article("1", "NATO");
        let mut b = article("2", "NATO");
        b.link = Some("http://www.x.org/1/?utm_source=rss".into());
        let now = Utc::now();
        for x in [&a, &b] {
            let identity = identify(x);
            let item = NewArticle {
                article: x,
                identity: &identity,
                alerts: vec![(alert_for(x, "r"), vec!["console".into()])],
            };
            store.ingest(feed, "http://f/", &[item], now).unwrap();
        }
        assert_eq!(store.matches(10).unwrap().len(), 1);
    }

    #[test]
    fn failed_delivery_is_retried_then_dead() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("fw.db")).unwrap();
        let feed = store.sync_feeds([("http://f/", "f")]).unwrap()["http://f/"];
        let a = article("1", "NATO");
        let identity = identify(&a);
        let item = NewArticle {
            article: &a,
            identity: &identity,
            alerts: vec![(alert_for(&a, "r"), vec!["hook".into()])],
        };
        let now = Utc::now();
        store.ingest(feed, "http://f/", &[item], now).unwrap();
        let d = store.due_deliveries(now, 0, 10).unwrap().remove(0);
        let later = now + chrono::Duration::seconds(60);
        store.mark_failed(d.id, "HTTP 500", Some(later)).unwrap();
        assert!(store.due_deliveries(now, 0, 10).unwrap().is_empty());
        assert_eq!(
            store.next_delivery_at().unwrap(),
            Some(timestamp(later.timestamp()))
        );
        let d = store.due_deliveries(later, 0, 10).unwrap().remove(0);
        assert_eq!(d.attempts, 1);
        store.mark_failed(d.id, "HTTP 410", None).unwrap();
        assert_eq!(store.outbox_counts().unwrap()["dead"], 1);
    }

    #[test]
    fn reopening_keeps_data_and_schema_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fw.db");
        Store::open(&path)
            .unwrap()
            .sync_feeds([("http://f/", "f")])
            .unwrap();
        let store = Store::open(&path).unwrap();
        assert_eq!(store.feed_states().unwrap().len(), 1);
        let version: i64 = store
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
    }
}

//! SQLite: feeds and their fetch state, articles, matches, the record of what was alerted, and
//! the outbox of alerts to deliver.
//!
//! Everything that must not be half-done is one transaction: an article, its matches and their
//! outbox rows are written together, so a crash never leaves a match without its alert or an
//! alert for an article that was never stored. `alerted` is kept apart from `articles` so that
//! pruning old articles can never let an old story alert again.

mod articles;
mod batch;
mod feeds;
mod listings;
mod outbox;
mod owner;
mod schema;
mod search;
mod stories;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, TryLockError};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{Connection, ErrorCode, TransactionBehavior};

pub use articles::{
    AlertsJson, ArchivedArticle, IngestStats, MatchFilter, NewEntry, RaisedAlert, Seen, Stored,
    StoredMatch,
};
pub use batch::PollWrite;
pub use feeds::{FeedId, FeedState, PollOutcome, ServerWait};
pub use listings::{Listed, ListedItem, Listing};
pub use outbox::{Delivery, OutboxEntry};
use schema::MIGRATIONS;

/// How long a connection waits for another's lock before failing (rusqlite's default, which
/// the writing connection keeps).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
pub use search::{
    INDEX_BATCH, SearchFilter, SearchHit, SearchIndex, SearchQueryError, fts_query, index_path,
};
pub use stories::{Placement, StoryArticle, StoryGuess};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "no database at {path}: no daemon has run with this config yet; start feedwatch (`feedwatch run`, \
         or the service) or set `database = \"...\"` in the config to the one it uses"
    )]
    Missing { path: PathBuf },
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
    #[error("search: {0}")]
    SearchQuery(SearchQueryError),
    #[error("search index {path}: {source}")]
    SearchIndex {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("search index {path}: {source}")]
    SearchFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "database log {path}: cannot sync it to disk: {source}; restart feedwatch once the disk is sound"
    )]
    Sync {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("search `{expression}`: {source}")]
    Search {
        expression: String,
        source: rusqlite::Error,
    },
}

impl StoreError {
    /// The search index file is damaged (not the database): [`SearchIndex::open_alone`] mends it.
    pub fn is_damaged_index(&self) -> bool {
        matches!(
            self,
            StoreError::SearchIndex { source, .. }
                if matches!(
                    source.sqlite_error_code(),
                    Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
                )
        )
    }
}

pub struct Store {
    conn: Connection,
    /// Finds the stories new articles may join; built from the stored sketches when first
    /// needed (see `stories`).
    stories: stories::StoryIndex,
}

/// The store shared by the daemon's tasks. SQLite calls are short but blocking, so they run on
/// tokio's blocking pool, one at a time on each connection; only a write of microseconds made
/// once per alert runs on the caller's thread when nothing would make it wait ([`Db::call_now`]).
#[derive(Clone)]
pub struct Db {
    store: Arc<Mutex<Store>>,
    /// A second connection for the poller's reads, so that they do not wait for a commit: WAL
    /// lets readers work while the writer writes. `None` when the database has no file.
    reader: Option<Arc<Mutex<Store>>>,
    commits: Arc<batch::CommitQueue>,
    syncs: Arc<batch::SyncQueue>,
    /// The log that committed polls wait to see synced; `None` if commits sync themselves.
    log: Option<Arc<batch::WriteAheadLog>>,
}

impl Db {
    pub fn new(mut store: Store) -> Db {
        // The commits' checkpoints move to a thread of their own; the hook that asks for them
        // keeps the checkpointer alive as long as the connection.
        let _ = batch::Checkpointer::take_over(&mut store);
        let reader = store
            .conn
            .path()
            .filter(|path| !path.is_empty())
            .and_then(|path| Store::open_reader(Path::new(path)).ok());
        Db {
            log: batch::WriteAheadLog::of(&store).map(Arc::new),
            store: Arc::new(Mutex::new(store)),
            reader: reader.map(|r| Arc::new(Mutex::new(r))),
            commits: Arc::default(),
            syncs: Arc::default(),
        }
    }

    pub async fn call<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Store) -> Result<R, StoreError> + Send + 'static,
    {
        run_blocking(Arc::clone(&self.store), f).await
    }

    /// Like [`Db::call`], but on this thread when no task holds the store and no other
    /// connection holds the database's write lock: for a write of a few microseconds that does
    /// not wait for the disk, made once per alert, where waking a blocking thread and being
    /// woken again cost more than the write. Whatever would make it wait goes to the blocking
    /// pool, to wait there. (A commit that finds the log over its limit still copies it into
    /// the database here, as it would there: see `batch::Checkpointer`.)
    pub async fn call_now<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: Fn(&mut Store) -> Result<R, StoreError> + Send + 'static,
    {
        if let Some(done) = self.try_now(&f) {
            return done;
        }
        self.call(f).await
    }

    /// [`Db::call_now`] on this thread; `None` if it would have to wait.
    fn try_now<R>(
        &self,
        f: &impl Fn(&mut Store) -> Result<R, StoreError>,
    ) -> Option<Result<R, StoreError>> {
        let mut store = match self.store.try_lock() {
            Ok(store) => store,
            // As on the blocking pool: a panic cannot leave SQLite half-written.
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return None,
        };
        match store.without_waiting(f) {
            // Refused before it wrote anything: another connection is writing.
            Err(StoreError::Sql(e)) if e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy) => {
                None
            }
            done => Some(done),
        }
    }

    /// Like [`Db::call`] for reads, on the reading connection: sees every committed write, never
    /// waits for a commit in progress.
    pub async fn read<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Store) -> Result<R, StoreError> + Send + 'static,
    {
        let store = Arc::clone(self.reader.as_ref().unwrap_or(&self.store));
        run_blocking(store, |s: &mut Store| f(s)).await
    }

    /// Empties the page caches of the writing and the reading connection (up to 2 MB each),
    /// for a daemon going idle: the next poll reads its pages from the file system's cache.
    pub async fn release_memory(&self) -> Result<(), StoreError> {
        for store in std::iter::once(&self.store).chain(&self.reader) {
            run_blocking(Arc::clone(store), |s: &mut Store| {
                Ok(s.conn.release_memory()?)
            })
            .await?;
        }
        Ok(())
    }
}

async fn run_blocking<R, F>(store: Arc<Mutex<Store>>, f: F) -> Result<R, StoreError>
where
    R: Send + 'static,
    F: FnOnce(&mut Store) -> Result<R, StoreError> + Send + 'static,
{
    tokio::task::spawn_blocking(move || {
        // A panic while holding the lock cannot leave SQLite half-written (transactions roll
        // back), so a poisoned lock is safe to take over.
        let mut store = store
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut store)
    })
    .await
    .map_err(|e| StoreError::Task(e.to_string()))?
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
        // A new database gets 16 KiB pages (an existing one keeps its own): a commit writes
        // each changed page to the log with system calls of its own, which with 4 KiB pages
        // were about a fifth of the committer's time storing a cold poll. WAL lets readers
        // (`feedwatch matches`) work while the daemon writes; FULL sync because an outbox row
        // must survive a power cut.
        conn.execute_batch(
            "PRAGMA page_size = 16384;
             PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA foreign_keys = ON;",
        )
        .map_err(open_error)?;
        let mut store = Store {
            conn,
            stories: Default::default(),
        };
        store.migrate(path)?;
        owner::give_to_folder_owner(path);
        Ok(store)
    }

    /// Opens the database a daemon has created, for commands that only look (or change what is
    /// there): where none exists it says so instead of creating an empty one beside the config.
    pub fn open_existing(path: &Path) -> Result<Store, StoreError> {
        if !path.exists() {
            return Err(StoreError::Missing {
                path: path.to_path_buf(),
            });
        }
        Store::open(path)
    }

    /// A connection for reads only, to a database [`Store::open`] has brought up to date.
    fn open_reader(path: &Path) -> Result<Store, StoreError> {
        let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|source| StoreError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        // A reader waits only in the rare moments WAL needs an exclusive lock (recovery).
        conn.busy_timeout(BUSY_TIMEOUT)?;
        Ok(Store {
            conn,
            stories: Default::default(),
        })
    }

    /// Runs `write` with commits that do not wait for the disk: for writes that a power cut may
    /// undo without harm because they are done again (fetch state), and for polls whose
    /// committer syncs the write-ahead log itself before it tells them they are done. WAL keeps
    /// commits in order, so the next synced commit makes these durable too; every other write,
    /// the outbox above all, keeps the full sync, even after `write` panics (the connection
    /// outlives a panic: the committer takes over its lock).
    fn unsynced<R>(
        &mut self,
        write: impl FnOnce(&mut Store) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        let written = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| write(self)));
        let resynced = self.conn.pragma_update(None, "synchronous", "FULL");
        let written = written.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        resynced?;
        written
    }

    /// Runs `f`, failing at once rather than after [`BUSY_TIMEOUT`] when another connection
    /// holds the write lock. A panic fails it, as it does a call on the blocking pool.
    fn without_waiting<R>(
        &mut self,
        f: impl FnOnce(&mut Store) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        self.conn.busy_timeout(Duration::ZERO)?;
        let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(self)));
        self.conn.busy_timeout(BUSY_TIMEOUT)?;
        done.unwrap_or_else(|_| Err(StoreError::Task("the store call panicked".into())))
    }

    /// Whether this connection can start a write now: taking the write lock fails on a
    /// read-only file or file system, and waits for (at most the busy timeout of) a writer
    /// elsewhere. Nothing is written.
    pub fn check_writable(&mut self) -> Result<(), StoreError> {
        self.conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK;")?;
        Ok(())
    }

    /// Whether the database answers a read (of its schema).
    pub fn check_readable(&self) -> Result<(), StoreError> {
        self.conn
            .query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))?;
        Ok(())
    }

    /// Copies everything in the write-ahead log into the database file and empties the log, so
    /// that the next process to open the database starts with nothing to copy.
    pub fn checkpoint(&mut self) -> Result<(), StoreError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
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
        if found == 0 {
            // Only possible before the first table exists: lets pruning shrink the file.
            self.conn
                .execute_batch("PRAGMA auto_vacuum = INCREMENTAL")?;
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
}

fn timestamp(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(seconds, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{Alert, FeedRef};
    use crate::dedup::{Identity, identify};
    use crate::parse::Article;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_call_now_runs_here_when_it_can_waits_for_a_held_store_and_fails_only_on_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::new(Store::open(&dir.path().join("fw.db")).unwrap());
        let count = |s: &mut Store| -> Result<i64, StoreError> {
            Ok(s.conn
                .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))?)
        };
        // Held by a write on another thread: the call waits its turn and sees the write.
        let held = Arc::clone(&db.store);
        let (locked, is_locked) = std::sync::mpsc::channel();
        let writer = std::thread::spawn(move || {
            let store = held.lock().unwrap();
            store.conn.execute_batch("CREATE TABLE t (a)").unwrap();
            locked.send(()).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(100));
            store.conn.execute("INSERT INTO t VALUES (1)", []).unwrap();
        });
        is_locked.recv().unwrap();
        assert_eq!(db.call_now(count).await.unwrap(), 1);
        writer.join().unwrap();
        let failed = db
            .call_now(|_| -> Result<(), StoreError> { panic!("a failing call") })
            .await;
        assert!(matches!(failed, Err(StoreError::Task(_))), "{failed:?}");
        assert_eq!(db.call_now(count).await.unwrap(), 1);
        assert_eq!(db.call(count).await.unwrap(), 1);
        // With the store free, the call runs on the caller's thread; `call` never does.
        let thread = |_: &mut Store| Ok(std::thread::current().id());
        let caller = std::thread::current().id();
        assert_eq!(db.call_now(thread).await.unwrap(), caller);
        let caller = std::thread::current().id();
        assert_ne!(db.call(thread).await.unwrap(), caller);
    }

    #[test]
    fn a_call_now_waits_for_another_connections_write_on_the_blocking_pool() {
        // One thread runs every task: had the call waited for the lock on it, the task that
        // ends the other connection's write could not run until the busy timeout failed it.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fw.db");
        let db = Db::new(Store::open(&path).unwrap());
        let other = Connection::open(&path).unwrap();
        other
            .execute_batch("CREATE TABLE t (a); BEGIN IMMEDIATE; INSERT INTO t VALUES (1);")
            .unwrap();
        let started = std::time::Instant::now();
        let (inserted, rows) = runtime.block_on(async move {
            let insert = db.call_now(|s| Ok(s.conn.execute("INSERT INTO t VALUES (2)", [])?));
            let end_write = async {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                other.execute_batch("COMMIT").unwrap();
            };
            let (inserted, ()) = tokio::join!(insert, end_write);
            let count = |s: &mut Store| -> Result<i64, StoreError> {
                Ok(s.conn
                    .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))?)
            };
            (inserted, db.call(count).await)
        });
        assert_eq!(inserted.unwrap(), 1);
        assert_eq!(rows.unwrap(), 2);
        // Not held up for the busy timeout on the runtime's thread.
        assert!(started.elapsed() < BUSY_TIMEOUT, "{:?}", started.elapsed());
    }

    #[test]
    fn a_new_database_has_16_kib_pages_and_an_existing_one_keeps_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let page_size = |store: &Store| -> i64 {
            store
                .conn
                .query_row("PRAGMA page_size", [], |r| r.get(0))
                .unwrap()
        };
        let new = Store::open(&dir.path().join("new.db")).unwrap();
        assert_eq!(page_size(&new), 16384);
        let old_path = dir.path().join("old.db");
        Connection::open(&old_path)
            .unwrap()
            .execute_batch("PRAGMA page_size = 4096; CREATE TABLE kept (a);")
            .unwrap();
        let old = Store::open(&old_path).unwrap();
        assert_eq!(page_size(&old), 4096);
    }

    #[test]
    fn a_panic_in_an_unsynced_write_leaves_the_connection_fully_synced() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("fw.db")).unwrap();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            store.unsynced(|_| -> Result<(), StoreError> { panic!("a write that fails") })
        }));
        assert!(panicked.is_err());
        let synchronous: i64 = store
            .conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(synchronous, 2, "FULL");
    }

    /// A store with the one feed `http://f/`; the folder must outlive the store.
    fn one_feed() -> (tempfile::TempDir, Store, FeedId) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("fw.db")).unwrap();
        let feed = store.sync_feeds([("http://f/", "f")]).unwrap()["http://f/"];
        (dir, store, feed)
    }

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

    /// Alerts with the notifiers of each.
    type Alerts = Vec<(Alert, Vec<String>)>;

    /// One poll of feed `http://f/` through the poller's path: `present` are the stored
    /// entries still in the feed, `new` the articles with their alerts and notifiers.
    fn poll(
        store: &mut Store,
        feed: FeedId,
        present: &[&Article],
        new: Vec<(&Article, Alerts)>,
        now: DateTime<Utc>,
    ) -> IngestStats {
        let mut write = PollWrite {
            present: present.iter().map(|a| identify(a)).collect(),
            new: new
                .into_iter()
                .map(|(a, alerts)| NewEntry {
                    article: a.clone(),
                    identity: identify(a),
                    sketch: None,
                    alerts: alerts
                        .into_iter()
                        .map(|(alert, notifiers)| RaisedAlert {
                            alert,
                            notifiers,
                            per_story: true,
                        })
                        .collect(),
                })
                .collect(),
            ..PollWrite::empty(feed, "http://f/", now)
        };
        // As `Db::commit_poll` makes it, on the poll's own task.
        write.alerts_json = AlertsJson::of(&write.new).unwrap();
        store.commit_polls(&[write]).unwrap().remove(0).unwrap()
    }

    fn not_stored(store: &Store, feed: FeedId, articles: &[&Article]) -> Vec<bool> {
        let identities: Vec<Identity> = articles.iter().map(|a| identify(a)).collect();
        let seen = store.seen(feed, &identities, Utc::now()).unwrap();
        let seen = seen.unwrap_or_else(|| vec![Seen::New; identities.len()]);
        seen.into_iter().map(|s| s.is_new()).collect()
    }

    /// Each entry's kind of [`Seen`]: new, marked or stale.
    fn kinds(seen: Vec<Seen>) -> String {
        let kind = |s: &Seen| match s {
            Seen::New => 'n',
            Seen::Marked(_) => 'm',
            Seen::Stale(_) => 's',
        };
        seen.iter().map(kind).collect()
    }

    #[test]
    fn an_entry_is_due_a_new_mark_only_once_its_last_one_is_a_day_old() {
        let (_dir, mut store, feed) = one_feed();
        let (stored, unknown) = (article("1", "NATO"), article("2", "Other"));
        let then = Utc::now() - chrono::Duration::days(3);
        poll(&mut store, feed, &[], vec![(&stored, Vec::new())], then);
        let identities = [identify(&stored), identify(&unknown)];
        let seen = |at| kinds(store.seen(feed, &identities, at).unwrap().unwrap());
        assert_eq!(seen(then + chrono::Duration::hours(1)), "mn");
        let now = Utc::now();
        assert_eq!(seen(now), "sn");
        // Marked again, it is not due again for a day.
        poll(&mut store, feed, &[&stored], Vec::new(), now);
        let seen = store.seen(feed, &identities, now).unwrap().unwrap();
        assert_eq!(kinds(seen), "mn");
    }

    #[test]
    fn an_entry_is_known_by_its_link_too_and_the_older_mark_counts() {
        let (_dir, mut store, feed) = one_feed();
        let (old, fresh) = (article("1", "NATO"), article("2", "Other"));
        // Nothing stored yet: nothing is looked up.
        let first = store.seen(feed, &[identify(&old)], Utc::now()).unwrap();
        assert_eq!(first, None);
        let then = Utc::now() - chrono::Duration::days(3);
        poll(&mut store, feed, &[], vec![(&old, Vec::new())], then);
        poll(
            &mut store,
            feed,
            &[],
            vec![(&fresh, Vec::new())],
            Utc::now(),
        );
        let (old, fresh) = (identify(&old), identify(&fresh));
        let moved = |id: &Identity, link: &Identity| Identity {
            id: id.id.clone(),
            canonical_link: link.canonical_link.clone(),
        };
        let unknown = Identity {
            id: "guid:unknown".into(),
            canonical_link: None,
        };
        let identities = [
            // A new id over a stored link, and a stored id with a new link.
            moved(&unknown, &fresh),
            moved(&old, &unknown),
            // The fresh article's id over the old one's link: the old mark is due again.
            moved(&fresh, &old),
            unknown.clone(),
        ];
        let seen = store.seen(feed, &identities, Utc::now()).unwrap().unwrap();
        let articles: Vec<Option<i64>> = seen
            .iter()
            .map(|s| match s {
                Seen::Marked(stored) | Seen::Stale(stored) => stored.article,
                Seen::New => None,
            })
            .collect();
        assert_eq!(kinds(seen), "mssn");
        // Found by its link alone, the first entry stands for no article of its own; found
        // as two articles, the third stands for neither.
        assert_eq!(articles[0], None);
        assert!(articles[1].is_some());
        assert_eq!(articles[2], None);
    }

    #[test]
    fn ingest_is_idempotent_and_alerts_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("db/fw.db")).unwrap();
        let ids = store.sync_feeds([("http://f/", "f")]).unwrap();
        let feed = ids["http://f/"];
        let a = article("1", "NATO");
        let alerts = vec![(alert_for(&a, "r"), vec!["hook".into(), "console".into()])];
        let now = Utc::now();
        let first = poll(&mut store, feed, &[], vec![(&a, alerts.clone())], now);
        assert!(matches!(first.article_ids[..], [Some(_)]));
        assert_eq!(
            first,
            IngestStats {
                new_articles: 1,
                new_alerts: 1,
                matched_rules: vec!["r".into()],
                joined_alerts: 0,
                article_ids: first.article_ids.clone(),
            }
        );
        let again = poll(&mut store, feed, &[], vec![(&a, alerts)], now);
        assert_eq!(
            again,
            IngestStats {
                article_ids: vec![None],
                ..IngestStats::default()
            }
        );
        assert_eq!(store.due_deliveries(now, 0, 10).unwrap().len(), 2);
        assert_eq!(not_stored(&store, feed, &[&a]), [false]);
    }

    #[test]
    fn same_story_under_a_new_guid_is_not_alerted_again() {
        let (_dir, mut store, feed) = one_feed();
        let a = article("1", "NATO");
        let mut b = article("2", "NATO");
        b.link = Some("http://www.x.org/1/?utm_source=rss".into());
        let now = Utc::now();
        for x in [&a, &b] {
            let alerts = vec![(alert_for(x, "r"), vec!["console".into()])];
            poll(&mut store, feed, &[], vec![(x, alerts)], now);
        }
        assert_eq!(store.matches(10).unwrap().len(), 1);
        assert_eq!(store.feed_state(feed).unwrap().articles, 1);
    }

    #[test]
    fn one_story_twice_in_one_poll_is_stored_once() {
        let (_dir, mut store, feed) = one_feed();
        let a = article("1", "NATO");
        let mut b = article("2", "NATO");
        b.link = Some("https://x.org/1?utm_medium=feed".into());
        let stats = poll(
            &mut store,
            feed,
            &[],
            vec![(&a, Vec::new()), (&b, Vec::new()), (&a, Vec::new())],
            Utc::now(),
        );
        assert_eq!(stats.new_articles, 1);
        assert_eq!(store.feed_state(feed).unwrap().articles, 1);
    }

    #[test]
    fn copies_of_a_story_stored_before_links_were_unique_are_dropped_but_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            // The steps before the one that makes a canonical link unique per feed.
            let before = 11;
            let conn = rusqlite::Connection::open(&path).unwrap();
            for step in &MIGRATIONS[..before] {
                conn.execute_batch(step).unwrap();
            }
            conn.execute_batch(&format!(
                "PRAGMA user_version = {before};
                 INSERT INTO feeds (id, url, name) VALUES (1, 'http://a/', 'A'), (2, 'http://b/', 'B');
                 INSERT INTO articles (id, feed_id, identity, canonical_link, title, summary,
                                       content, first_seen_at)
                 VALUES (1, 1, 'guid:1', 'x.org/1', 'first', '', '', 0),
                        (2, 1, 'guid:2', 'x.org/1', 'copy', '', '', 0),
                        (3, 2, 'guid:1', 'x.org/1', 'other feed', '', '', 0),
                        (4, 1, 'hash:a', NULL, 'no link', '', '', 0),
                        (5, 1, 'hash:b', NULL, 'no link either', '', '', 0);"
            ))
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        let mut titles = store
            .conn
            .prepare("SELECT title FROM articles ORDER BY id")
            .unwrap();
        let titles: Vec<String> = titles
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(titles, ["first", "other feed", "no link", "no link either"]);
    }

    #[test]
    fn archive_query_returns_articles_since_a_date_with_their_feed() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("fw.db")).unwrap();
        let feed = store.sync_feeds([("http://f/", "world")]).unwrap()["http://f/"];
        let now = Utc::now();
        let mut old = article("1", "Old NATO story");
        old.published = Some(now - chrono::Duration::days(40));
        let recent = article("2", "Recent NATO story");
        for a in [&old, &recent] {
            poll(&mut store, feed, &[], vec![(a, Vec::new())], now);
        }
        let found = store
            .articles_since(now - chrono::Duration::days(30))
            .unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].feed, "world");
        assert_eq!(found[0].article.title, "Recent NATO story");
        assert_eq!(found[0].date().timestamp(), now.timestamp());
        let all = store
            .articles_since(now - chrono::Duration::days(50))
            .unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].article.title, "Old NATO story");
    }

    #[test]
    fn failed_delivery_is_retried_then_dead() {
        let (_dir, mut store, feed) = one_feed();
        let a = article("1", "NATO");
        let alerts = vec![(alert_for(&a, "r"), vec!["hook".into()])];
        let now = Utc::now();
        poll(&mut store, feed, &[], vec![(&a, alerts)], now);
        let d = store.due_deliveries(now, 0, 10).unwrap().remove(0);
        let later = now + chrono::Duration::seconds(60);
        store
            .mark_all_failed(&[d.id], "HTTP 500", Some(later))
            .unwrap();
        assert!(store.due_deliveries(now, 0, 10).unwrap().is_empty());
        assert_eq!(
            store.next_delivery_at().unwrap(),
            Some(timestamp(later.timestamp()))
        );
        let d = store.due_deliveries(later, 0, 10).unwrap().remove(0);
        assert_eq!(d.attempts, 1);
        store.mark_all_failed(&[d.id], "HTTP 410", None).unwrap();
        assert_eq!(store.outbox_counts().unwrap()["dead"], 1);
    }

    #[test]
    fn pruning_drops_only_articles_gone_from_their_feed_and_never_realerts() {
        let (_dir, mut store, feed) = one_feed();
        let long_ago = Utc::now() - chrono::Duration::days(200);
        let (old, kept) = (article("old", "NATO"), article("kept", "NATO"));
        for a in [&old, &kept] {
            let alerts = vec![(alert_for(a, "r"), vec!["console".into()])];
            poll(&mut store, feed, &[], vec![(a, alerts)], long_ago);
        }
        // `kept` is still in the feed today; `old` is not.
        poll(&mut store, feed, &[&kept], Vec::new(), Utc::now());
        let pruned = store
            .prune(Utc::now() - chrono::Duration::days(90))
            .unwrap();
        assert_eq!(pruned, 1);
        assert_eq!(not_stored(&store, feed, &[&old, &kept]), [true, false]);
        // The pruned story comes back: stored again, but not alerted again.
        let alerts = vec![(alert_for(&old, "r"), vec!["console".into()])];
        let stats = poll(&mut store, feed, &[], vec![(&old, alerts)], Utc::now());
        assert!(matches!(stats.article_ids[..], [Some(_)]));
        assert_eq!(
            stats,
            IngestStats {
                new_articles: 1,
                new_alerts: 0,
                matched_rules: Vec::new(),
                joined_alerts: 0,
                article_ids: stats.article_ids.clone(),
            }
        );
        assert_eq!(store.matches(10).unwrap().len(), 2);
    }

    #[test]
    fn an_article_still_in_its_feed_is_marked_seen_once_a_day() {
        let (_dir, mut store, feed) = one_feed();
        let t0 = Utc::now() - chrono::Duration::days(10);
        let a = article("a", "NATO");
        poll(&mut store, feed, &[], vec![(&a, Vec::new())], t0);
        let seen = |store: &Store| -> i64 {
            store
                .conn
                .query_row("SELECT last_seen_at FROM articles", [], |r| r.get(0))
                .unwrap()
        };
        poll(
            &mut store,
            feed,
            &[&a],
            Vec::new(),
            t0 + chrono::Duration::hours(1),
        );
        assert_eq!(
            seen(&store),
            t0.timestamp(),
            "an hour later: not written again"
        );
        let t2 = t0 + chrono::Duration::days(2);
        poll(&mut store, feed, &[&a], Vec::new(), t2);
        assert_eq!(seen(&store), t2.timestamp(), "two days later: written");
        // Listed at the last read, an hour ago: kept however old the cutoff makes it look.
        poll(
            &mut store,
            feed,
            &[&a],
            Vec::new(),
            t2 + chrono::Duration::hours(20),
        );
        assert_eq!(store.prune(t2 + chrono::Duration::hours(1)).unwrap(), 0);
    }

    #[test]
    fn a_feed_unchanged_for_longer_than_the_retention_keeps_its_articles() {
        let (_dir, mut store, feed) = one_feed();
        let long_ago = Utc::now() - chrono::Duration::days(200);
        let listed = article("listed", "NATO");
        poll(&mut store, feed, &[], vec![(&listed, Vec::new())], long_ago);
        // Every poll since has been answered 304: the feed still lists it.
        let not_modified = PollWrite {
            outcome: PollOutcome::answered(304),
            ..PollWrite::empty(feed, "http://f/", Utc::now())
        };
        store.commit_polls(&[not_modified]).unwrap();
        let pruned = store
            .prune(Utc::now() - chrono::Duration::days(90))
            .unwrap();
        assert_eq!(pruned, 0);
        assert_eq!(not_stored(&store, feed, &[&listed]), [false]);
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

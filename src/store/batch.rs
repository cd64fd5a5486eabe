//! Group commit of poll results: what one poll of one feed writes, and one transaction for
//! every poll that finished while the previous one was being written.
//!
//! A poll that stored articles returns only once they are durable, but the committer does not
//! wait for the disk itself: it commits without a sync (`synchronous = NORMAL`, which in WAL
//! mode keeps the database consistent through a power cut) and hands the batch to a second
//! thread that syncs the write-ahead log, the sync `FULL` makes inside the commit. The next
//! batch is written meanwhile, and polls that finish together share one sync. Unlike with
//! `FULL`, other connections see a batch before that sync: for the few milliseconds between,
//! a power cut can undo an outbox row that was already sent. The article then alerts again
//! once it is polled again, under the same delivery id, as after a crash between a send and
//! its mark.
//! A batch that stores no article (all 304s, say) waits for no sync at all: losing it to a
//! power cut only means polling those feeds again. A poll whose writes fail is undone alone.

use std::fs::OpenOptions;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use rusqlite::TransactionBehavior;
use tokio::sync::oneshot;

use super::articles::{self, AlertsJson, IngestStats, NewEntry};
use super::feeds::{self, FeedId, PollOutcome, ServerWait};
use super::listings::{self, ListedItem};
use super::stories::StoryIndex;
use super::{Db, Store, StoreError};
use crate::dedup::Identity;
use crate::story::StoryParams;

/// Everything one poll of one feed writes.
#[derive(Debug, Clone)]
pub struct PollWrite {
    pub feed: FeedId,
    pub feed_url: String,
    /// Identities in the feed that are stored already with an old last-seen mark: they are
    /// marked as still in it.
    pub present: Vec<Identity>,
    /// The articles not stored yet, each with its alerts and their notifiers.
    pub new: Vec<NewEntry>,
    /// Articles of listed items the poll left out whose marks were due (see `listings`).
    pub touched: Vec<i64>,
    /// The feed's new listing; `None` keeps the one it has.
    pub listing: Option<Vec<ListedItem>>,
    pub outcome: PollOutcome,
    pub now: DateTime<Utc>,
    pub next_poll_at: DateTime<Utc>,
    /// The pause the server asked for in this poll's answer.
    pub server_wait: Option<ServerWait>,
    /// What places new articles in stories.
    pub story: StoryParams,
    /// The JSON of the new entries' alerts without their story, made by the poll's own task
    /// ([`Db::commit_poll`]): serializing them on the committer was a twentieth of its time.
    /// Left empty (`Default::default()`), they are serialized as they are written.
    pub alerts_json: AlertsJson,
}

#[cfg(test)]
impl PollWrite {
    /// A poll of `url` answered `200` at `now` with nothing in it, for tests to fill in.
    pub(crate) fn empty(feed: FeedId, url: &str, now: DateTime<Utc>) -> PollWrite {
        PollWrite {
            feed,
            feed_url: url.into(),
            present: Vec::new(),
            new: Vec::new(),
            touched: Vec::new(),
            listing: None,
            outcome: PollOutcome::answered(200),
            now,
            next_poll_at: now,
            server_wait: None,
            story: StoryParams::default(),
            alerts_json: AlertsJson::default(),
        }
    }
}

/// A poll's write and where its result goes. The write goes back with the result, so that the
/// poll's own task frees its articles: freeing them took a tenth of the committer's CPU time
/// in a cold poll, and every poll waits for the committer.
type Waiting = (PollWrite, oneshot::Sender<Committed>);
type Committed = (Result<IngestStats, StoreError>, PollWrite);
/// A committed poll whose result waits for the write-ahead log to be synced.
type Unsynced = (Committed, oneshot::Sender<Committed>);

/// Polls whose writes wait for the next commit.
pub(super) type CommitQueue = Relay<Waiting>;
/// Committed polls that wait for the next sync of the write-ahead log.
pub(super) type SyncQueue = Relay<Unsynced>;

/// Work for one thread at a time. Whoever queues work while no thread runs starts one on the
/// blocking pool; it takes everything queued as one batch, again and again, and stops once
/// nothing is left.
pub(super) struct Relay<T>(Mutex<Queued<T>>);

struct Queued<T> {
    waiting: Vec<T>,
    running: bool,
}

impl<T> Default for Relay<T> {
    fn default() -> Self {
        Relay(Mutex::new(Queued {
            waiting: Vec::new(),
            running: false,
        }))
    }
}

impl<T: Send + 'static> Relay<T> {
    /// Queues `items`, and starts a thread that hands each batch to `work` if none runs.
    fn push(
        self: &Arc<Self>,
        items: impl IntoIterator<Item = T>,
        work: impl FnMut(Vec<T>) + Send + 'static,
    ) {
        let start = {
            let mut queued = self.lock();
            queued.waiting.extend(items);
            !queued.waiting.is_empty() && !std::mem::replace(&mut queued.running, true)
        };
        if start {
            let relay = Arc::clone(self);
            let run = move || relay.run(work);
            // A write outside the runtime (a command, a test) can ask for a checkpoint too.
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => drop(runtime.spawn_blocking(run)),
                Err(_) => drop(std::thread::spawn(run)),
            }
        }
    }

    fn run(&self, mut work: impl FnMut(Vec<T>)) {
        // Should `work` panic, the next push must be able to start a thread again. What was
        // queued is dropped, so that each waiting poll hears its write was abandoned (no
        // thread would take it until another poll arrives, and `run --once` may have none
        // left): their feeds are polled again as if the write had failed.
        struct Restart<'a, T>(&'a Relay<T>);
        impl<T> Drop for Restart<'_, T> {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    let abandoned = {
                        let mut queued = self.0.lock();
                        queued.running = false;
                        std::mem::take(&mut queued.waiting)
                    };
                    drop(abandoned);
                }
            }
        }
        let _restart = Restart(self);
        loop {
            let batch = {
                let mut queued = self.lock();
                if queued.waiting.is_empty() {
                    queued.running = false;
                    return;
                }
                std::mem::take(&mut queued.waiting)
            };
            work(batch);
        }
    }
}

impl<T> Relay<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queued<T>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The database's write-ahead log file, synced apart from the connection that writes it.
#[derive(Debug)]
pub(super) struct WriteAheadLog {
    path: PathBuf,
    /// The first failed sync. It stays: the kernel may drop pages it could not write and call
    /// them clean, so a later sync can succeed while a transaction before it is lost, and
    /// recovery drops every transaction after a gap in the log.
    failed: Mutex<Option<(std::io::ErrorKind, String)>>,
}

impl WriteAheadLog {
    /// The log of `store`'s database file; `None` for a database in memory, or one not in WAL
    /// mode (its commits then wait for their own sync).
    pub(super) fn of(store: &Store) -> Option<WriteAheadLog> {
        let path = store.conn.path().filter(|path| !path.is_empty())?;
        let mode: String = store
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .ok()?;
        mode.eq_ignore_ascii_case("wal").then(|| WriteAheadLog {
            path: PathBuf::from(format!("{path}-wal")),
            failed: Mutex::new(None),
        })
    }

    /// Makes every transaction committed so far durable. Syncing any handle of the file syncs
    /// everything written to it. It is opened by name each time: SQLite replaces the file only
    /// when its last connection closes, and the committer's stays open.
    fn sync(&self) -> std::io::Result<()> {
        let mut failed = self.failed.lock().unwrap_or_else(PoisonError::into_inner);
        if failed.is_none()
            && let Err(e) = OpenOptions::new()
                .write(true)
                .open(&self.path)
                .and_then(|file| file.sync_data())
        {
            *failed = Some((e.kind(), e.to_string()));
        }
        match &*failed {
            None => Ok(()),
            Some((kind, message)) => Err(std::io::Error::new(*kind, message.clone())),
        }
    }

    /// Syncs once for every poll committed since the last sync, then sends their results; if
    /// the sync fails, each poll hears why instead.
    fn sync_then_send(&self, unsynced: Vec<Unsynced>) {
        let synced = self.sync();
        for ((result, write), sender) in unsynced {
            let result = match &synced {
                Ok(()) => result,
                Err(e) => Err(StoreError::Sync {
                    path: self.path.clone(),
                    source: std::io::Error::new(e.kind(), e.to_string()),
                }),
            };
            let _ = sender.send((result, write));
        }
    }
}

/// How many frames the write-ahead log gains before they are copied into the database file:
/// SQLite's own default for its automatic checkpoints.
const CHECKPOINT_FRAMES: i32 = 1000;

/// How long the log may grow before the committer copies the rest of it itself (64 MB with
/// 16 KiB pages). The checkpointer copies while commits go on, and under a steady stream of
/// them never copies the last frame; only a log copied to its end starts over, so it grew
/// without bound (to 180 MB, for a database of 76 MB, in a cold poll of 1,000 feeds).
const LOG_LIMIT_FRAMES: i32 = 4 * CHECKPOINT_FRAMES;

/// Copies the write-ahead log into the database file on a thread of its own, in place of
/// SQLite's automatic checkpoint, which runs inside the commit that fills the log: there it was
/// a fifth of the committer's CPU time in a cold poll, and its sync of the database file held
/// up every poll waiting for the commit. A checkpoint from another connection copies what is
/// committed while the committer goes on writing; it never copies a transaction that is not
/// committed, so what survives a crash is what it was with the automatic checkpoint.
pub(super) struct Checkpointer {
    conn: Mutex<rusqlite::Connection>,
    queue: Arc<Relay<()>>,
    /// The frame of the log the last checkpoint copied through (0 once the log starts over).
    copied_through: std::sync::atomic::AtomicI32,
}

impl Checkpointer {
    /// Takes over `store`'s checkpoints; `None` (and SQLite's automatic checkpoints stay) when
    /// the database has no write-ahead log or a second connection cannot be opened.
    pub(super) fn take_over(store: &mut Store) -> Option<Arc<Checkpointer>> {
        WriteAheadLog::of(store)?;
        let path = store.conn.path()?.to_owned();
        let conn = rusqlite::Connection::open_with_flags(
            &path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .ok()?;
        // A connection takes the database for one in WAL mode only once it has read it; until
        // then its checkpoints do nothing.
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .ok()?;
        if !mode.eq_ignore_ascii_case("wal") {
            return None;
        }
        let checkpointer = Arc::new(Checkpointer {
            conn: Mutex::new(conn),
            queue: Arc::default(),
            copied_through: Default::default(),
        });
        let asked = Arc::clone(&checkpointer);
        // Replaces the automatic checkpoint, which is this same hook.
        store
            .conn
            .wal_hook(Some(move |wal: &mut rusqlite::hooks::Wal, frames| {
                asked.after_commit(wal, frames);
                Ok(())
            }))
            .ok()?;
        Some(checkpointer)
    }

    /// Called after each commit, on the committer's connection, with the number of frames in
    /// the log.
    fn after_commit(self: &Arc<Self>, wal: &mut rusqlite::hooks::Wal, frames: i32) {
        use std::sync::atomic::Ordering;
        let mut copied = self.copied_through.load(Ordering::Relaxed);
        if frames < copied {
            // The log has started over.
            self.copied_through.store(0, Ordering::Relaxed);
            copied = 0;
        }
        // A reader still on old frames keeps the log from starting over: the copy is then
        // tried again a hundred frames later, not after every commit.
        if frames >= LOG_LIMIT_FRAMES && frames - copied >= CHECKPOINT_FRAMES / 10 {
            // Between two of the committer's transactions nothing is added, so this copy
            // reaches the end of the log (the checkpointer has copied most of it already) and
            // the next transaction writes the log from its start. Busy (the checkpointer is
            // at it), it is tried again after the next commit.
            self.copied(wal.checkpoint_v2(rusqlite::wal::CheckpointMode::PASSIVE));
            return;
        }
        if frames - copied >= CHECKPOINT_FRAMES {
            let checkpointer = Arc::clone(self);
            self.queue.push([()], move |_| checkpointer.checkpoint());
        }
    }

    fn checkpoint(&self) {
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        // PASSIVE: takes no lock a writer or reader needs, copies what it can.
        self.copied(conn.wal_checkpoint_v2(None::<&str>, rusqlite::wal::CheckpointMode::PASSIVE));
    }

    /// Notes how far a checkpoint (`(frames in the log, frames copied)`) copied.
    fn copied(&self, checkpoint: rusqlite::Result<(i32, i32)>) {
        match checkpoint {
            Ok((_, copied)) if copied >= 0 => self
                .copied_through
                .store(copied, std::sync::atomic::Ordering::Relaxed),
            Ok(_) => tracing::debug!("the database is not in WAL mode: nothing to checkpoint"),
            // Busy: another checkpoint is at it.
            Err(e) => tracing::debug!("checkpoint of the write-ahead log: {e}"),
        }
    }
}

impl Store {
    /// Writes every poll's results in one transaction, then commits. A poll whose writes fail
    /// is rolled back alone and gets its error; the others are kept.
    ///
    /// A batch that stores no article (304s, failures, feeds with nothing new) only records
    /// fetch state: losing it to a power cut means polling those feeds again, so its commit does
    /// not wait for the disk (WAL keeps the order: the next synced commit makes it durable too).
    /// Anything with articles, and so possibly alerts, is synced before this returns. Alerts
    /// whose JSON a write does not carry ([`PollWrite::alerts_json`]) are serialized as they
    /// are written.
    pub fn commit_polls(
        &mut self,
        writes: &[PollWrite],
    ) -> Result<Vec<Result<IngestStats, StoreError>>, StoreError> {
        if writes.iter().all(|write| write.new.is_empty()) {
            self.unsynced(|store| store.commit_batch(writes))
        } else {
            self.commit_batch(writes)
        }
    }

    /// Like [`Store::commit_polls`], but no commit waits for the disk: the caller makes what
    /// it stored durable by syncing the write-ahead log.
    fn commit_polls_unsynced(
        &mut self,
        writes: &[PollWrite],
    ) -> Result<Vec<Result<IngestStats, StoreError>>, StoreError> {
        self.unsynced(|store| store.commit_batch(writes))
    }

    fn commit_batch(
        &mut self,
        writes: &[PollWrite],
    ) -> Result<Vec<Result<IngestStats, StoreError>>, StoreError> {
        // First without savepoints: each savepoint journals the pages it touches, which costs
        // more than the writes themselves. Only when a poll fails is the batch written again,
        // each poll in its own savepoint.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let written: Result<Vec<IngestStats>, StoreError> = writes
            .iter()
            .map(|write| write_poll(&tx, &mut self.stories, write))
            .collect();
        match written {
            Ok(stats) => {
                tx.commit()?;
                Ok(stats.into_iter().map(Ok).collect())
            }
            Err(_) => {
                tx.rollback()?;
                // It holds the sketches of articles no longer stored.
                self.stories.forget();
                self.commit_polls_one_by_one(writes)
            }
        }
    }

    /// Each poll in a savepoint of one transaction, so that a failing one is undone alone.
    fn commit_polls_one_by_one(
        &mut self,
        writes: &[PollWrite],
    ) -> Result<Vec<Result<IngestStats, StoreError>>, StoreError> {
        let mut tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut results = Vec::with_capacity(writes.len());
        for write in writes {
            let mut savepoint = tx.savepoint()?;
            match write_poll(&savepoint, &mut self.stories, write) {
                Ok(stats) => {
                    savepoint.commit()?;
                    results.push(Ok(stats));
                }
                Err(e) => {
                    savepoint.rollback()?;
                    self.stories.forget();
                    results.push(Err(e));
                }
            }
        }
        tx.commit()?;
        Ok(results)
    }
}

/// Writes one poll.
fn write_poll(
    conn: &rusqlite::Connection,
    stories: &mut StoryIndex,
    write: &PollWrite,
) -> Result<IngestStats, StoreError> {
    articles::touch(conn, write.feed, &write.present, write.now)?;
    let stats = articles::ingest(conn, stories, write)?;
    let gone = listings::touch(conn, write.feed, &write.touched, write.now)?;
    if let Some(listing) = &write.listing {
        let ids = &stats.article_ids;
        listings::record(conn, write.feed, listing, ids, &gone, write.now)?;
    }
    feeds::record_poll(
        conn,
        write.feed,
        &write.outcome,
        write.now,
        write.next_poll_at,
        write.server_wait.as_ref(),
    )?;
    Ok(stats)
}

impl Db {
    /// Stores one poll's results and returns once they are durable. One committer at a time
    /// runs on the blocking pool and, until the queue is empty, commits everything that
    /// arrived while it wrote the previous batch.
    pub async fn commit_poll(&self, mut write: PollWrite) -> Result<IngestStats, StoreError> {
        write.alerts_json = AlertsJson::of(&write.new)?;
        let (done, result) = oneshot::channel();
        let db = self.clone();
        self.commits
            .push([(write, done)], move |waiting| db.commit_waiting(waiting));
        let (stats, write) = result.await.map_err(|_| {
            StoreError::Task("the write of this poll was abandoned before it was durable".into())
        })?;
        drop(write);
        stats
    }

    fn commit_waiting(&self, waiting: Vec<Waiting>) {
        let (writes, senders): (Vec<_>, Vec<_>) = waiting.into_iter().unzip();
        tracing::debug!(polls = writes.len(), "committing a batch of polls");
        // A panic while holding the lock cannot leave SQLite half-written (transactions roll
        // back), so a poisoned lock is safe to take over.
        let committed = {
            let mut store = self.store.lock().unwrap_or_else(PoisonError::into_inner);
            match &self.log {
                Some(_) => store.commit_polls_unsynced(&writes),
                None => store.commit_polls(&writes),
            }
        };
        let results: Vec<_> = match committed {
            Ok(results) => results,
            Err(e) => {
                let message = e.to_string();
                let failed = || {
                    Err(StoreError::Task(format!(
                        "committing a batch of polls: {message}"
                    )))
                };
                writes.iter().map(|_| failed()).collect()
            }
        };
        let stored = writes
            .iter()
            .zip(&results)
            .any(|(write, result)| result.is_ok() && !write.new.is_empty());
        let committed = results.into_iter().zip(writes).zip(senders);
        match &self.log {
            Some(log) if stored => {
                let log = Arc::clone(log);
                self.syncs
                    .push(committed, move |unsynced| log.sync_then_send(unsynced));
            }
            _ => {
                for (committed, sender) in committed {
                    let _ = sender.send(committed);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dedup::identify;
    use crate::fetch::Validators;
    use crate::parse::Article;
    use crate::store::RaisedAlert;

    fn poll_of(feed: FeedId, url: &str, guids: &[&str], now: DateTime<Utc>) -> PollWrite {
        let articles: Vec<Article> = guids
            .iter()
            .map(|guid| Article {
                guid: Some((*guid).into()),
                title: format!("story {guid}"),
                link: Some(format!("{url}{guid}")),
                ..Article::default()
            })
            .collect();
        PollWrite {
            present: articles.iter().map(identify).collect(),
            new: articles
                .into_iter()
                .map(|article| NewEntry {
                    identity: identify(&article),
                    article,
                    alerts: Vec::new(),
                    sketch: None,
                })
                .collect(),
            outcome: PollOutcome::Success {
                status: 200,
                validators: Validators {
                    etag: Some(format!("\"{}\"", guids.len())),
                    ..Validators::default()
                },
                unchanged: false,
                title: None,
                moved_to: None,
                missed_items: None,
                ttl: None,
            },
            next_poll_at: now + chrono::Duration::minutes(15),
            ..PollWrite::empty(feed, url, now)
        }
    }

    /// What a poll answered `304 Not Modified` writes: fetch state only.
    fn not_modified(feed: FeedId, url: &str, now: DateTime<Utc>) -> PollWrite {
        PollWrite {
            outcome: PollOutcome::answered(304),
            ..poll_of(feed, url, &[], now)
        }
    }

    /// A store with feeds `a` and `b`; the folder must outlive the store.
    fn two_feeds() -> (tempfile::TempDir, Store, FeedId, FeedId) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("fw.db")).unwrap();
        let ids = store
            .sync_feeds([("http://a/", "a"), ("http://b/", "b")])
            .unwrap();
        let (a, b) = (ids["http://a/"], ids["http://b/"]);
        (dir, store, a, b)
    }

    /// How many stored articles a search for their common word finds.
    fn searchable(store: &mut Store) -> usize {
        let path = std::path::PathBuf::from(store.conn.path().unwrap());
        let mut index = crate::store::SearchIndex::open(&path).unwrap();
        index.complete().unwrap();
        let filter = crate::store::SearchFilter {
            limit: 100,
            ..crate::store::SearchFilter::default()
        };
        index
            .search(&crate::matcher::Query::parse("story").unwrap(), &filter)
            .unwrap()
            .len()
    }

    #[test]
    fn polls_committed_together_each_count_and_record_their_own_feed() {
        let (_dir, mut store, a, b) = two_feeds();
        let now = Utc::now();
        let writes = [
            poll_of(a, "http://a/", &["1", "2"], now),
            poll_of(b, "http://b/", &["1", "2", "3"], now),
        ];
        let counts: Vec<usize> = store
            .commit_polls(&writes)
            .unwrap()
            .into_iter()
            .map(|r| r.unwrap().new_articles)
            .collect();
        assert_eq!(counts, [2, 3]);
        let (state_a, state_b) = (store.feed_state(a).unwrap(), store.feed_state(b).unwrap());
        assert_eq!((state_a.articles, state_b.articles), (2, 3));
        assert_eq!(state_b.validators.etag.as_deref(), Some("\"3\""));
        assert_eq!(state_a.last_status, Some(200));
        // The same polls again store nothing new.
        let again = store.commit_polls(&writes).unwrap();
        assert!(again.iter().all(|r| r.as_ref().unwrap().new_articles == 0));
        // Every stored article is in the search index, once.
        assert_eq!(searchable(&mut store), 5);
    }

    #[test]
    fn alerts_are_stored_alike_with_their_json_made_beforehand_or_not() {
        let now = Utc::now();
        let stored = |made: bool| {
            let (_dir, mut store, a, _) = two_feeds();
            let mut write = poll_of(a, "http://a/", &["1", "2"], now);
            for entry in &mut write.new {
                let feed = crate::alert::FeedRef {
                    name: "a".into(),
                    url: "http://a/".into(),
                    title: "a".into(),
                };
                let alert = |rule| {
                    let id = &entry.identity.id;
                    crate::alert::Alert::new(rule, feed.clone(), &entry.article, id, vec![], now)
                };
                entry.alerts = ["per-story", "each"]
                    .map(|rule| RaisedAlert {
                        alert: alert(rule),
                        notifiers: vec!["n".into()],
                        per_story: rule == "per-story",
                    })
                    .into();
            }
            if made {
                write.alerts_json = AlertsJson::of(&write.new).unwrap();
            }
            let stats = store.commit_polls(&[write]).unwrap().remove(0).unwrap();
            assert_eq!(stats.new_alerts, 4);
            let mut alerts = store
                .conn
                .prepare("SELECT alert FROM matches ORDER BY id")
                .unwrap();
            let alerts = alerts.query_map([], |r| r.get(0)).unwrap();
            alerts.collect::<Result<Vec<String>, _>>().unwrap()
        };
        assert_eq!(stored(true), stored(false));
    }

    #[test]
    fn a_failing_poll_is_undone_alone_and_the_others_are_kept() {
        let (_dir, mut store, a, b) = two_feeds();
        let now = Utc::now();
        // No feed has this id, so its articles break the foreign key.
        let writes = [
            poll_of(a, "http://a/", &["1", "2"], now),
            poll_of(FeedId::MAX, "http://gone/", &["1"], now),
            poll_of(b, "http://b/", &["1", "2", "3"], now),
        ];
        let results = store.commit_polls(&writes).unwrap();
        assert_eq!(results[0].as_ref().unwrap().new_articles, 2);
        assert!(results[1].is_err());
        assert_eq!(results[2].as_ref().unwrap().new_articles, 3);
        let (state_a, state_b) = (store.feed_state(a).unwrap(), store.feed_state(b).unwrap());
        assert_eq!((state_a.articles, state_b.articles), (2, 3));
        // The polls kept on the one-savepoint-each path are indexed for search too.
        assert_eq!(searchable(&mut store), 5);
    }

    #[test]
    fn a_batch_of_state_only_polls_leaves_other_writes_fully_synced() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("fw.db")).unwrap();
        let a = store.sync_feeds([("http://a/", "a")]).unwrap()["http://a/"];
        let now = Utc::now();
        store
            .commit_polls(&[not_modified(a, "http://a/", now)])
            .unwrap();
        assert_eq!(store.feed_state(a).unwrap().last_status, Some(304));
        let synchronous: i64 = store
            .conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(synchronous, 2, "FULL");
    }

    #[test]
    fn the_daemons_light_reads_agree_with_the_full_states_and_leave_gone_feeds_out() {
        let (_dir, mut store, a, b) = two_feeds();
        let now = Utc::now();
        let gone = PollWrite {
            outcome: PollOutcome::Failure {
                status: Some(410),
                error: "gone".into(),
                counts_as_failure: true,
                gone: true,
            },
            ..PollWrite::empty(b, "http://b/", now)
        };
        store
            .commit_polls(&[poll_of(a, "http://a/", &["1"], now), gone])
            .unwrap();
        let states = store.poll_states().unwrap();
        let due = store.next_polls().unwrap();
        assert_eq!(due.len(), 1, "the gone feed is not due ever again");
        assert_eq!(due[&a], states[&a].next_poll_at);
        assert!(due[&a].is_some());
        assert_eq!(store.poll_state(a).unwrap(), states[&a]);
        assert!(store.poll_state(b).unwrap().gone_at.is_some());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_commits_all_return_their_own_counts() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("fw.db")).unwrap();
        let urls: Vec<String> = (0..20).map(|i| format!("http://f{i}/")).collect();
        let ids = store
            .sync_feeds(urls.iter().map(|u| (u.as_str(), u.as_str())))
            .unwrap();
        let db = Db::new(store);
        let now = Utc::now();
        let mut tasks = tokio::task::JoinSet::new();
        for (i, url) in urls.iter().enumerate() {
            let guids: Vec<String> = (0..=i).map(|g| g.to_string()).collect();
            let guids: Vec<&str> = guids.iter().map(String::as_str).collect();
            let write = poll_of(ids[url], url, &guids, now);
            let db = db.clone();
            tasks.spawn(async move { (i, db.commit_poll(write).await) });
        }
        while let Some(joined) = tasks.join_next().await {
            let (i, stats) = joined.unwrap();
            assert_eq!(stats.unwrap().new_articles, i + 1);
        }
        let stored = db
            .call(|s| Ok(s.feed_states()?.iter().map(|f| f.articles).sum::<i64>()))
            .await
            .unwrap();
        assert_eq!(stored, (1..=20).sum::<i64>());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connections_with_emptied_page_caches_read_what_was_committed() {
        fn stored(store: &Store) -> Result<i64, StoreError> {
            Ok(store.feed_states()?.iter().map(|f| f.articles).sum())
        }
        let (_dir, store, a, _) = two_feeds();
        let db = Db::new(store);
        let write = poll_of(a, "http://a/", &["1", "2", "3"], Utc::now());
        db.commit_poll(write).await.unwrap();
        assert_eq!(db.read(stored).await.unwrap(), 3);
        db.release_memory().await.unwrap();
        assert_eq!(db.read(stored).await.unwrap(), 3);
        assert_eq!(db.call(|s| stored(s)).await.unwrap(), 3);
    }

    #[test]
    fn a_growing_log_is_copied_into_the_database_by_the_checkpointer() {
        let (_dir, mut store, a, _) = two_feeds();
        let checkpointer = Checkpointer::take_over(&mut store).expect("a database in WAL mode");
        let copied = || {
            checkpointer
                .copied_through
                .load(std::sync::atomic::Ordering::Relaxed)
        };
        let now = Utc::now();
        // Each commit adds a few pages to the log; the checkpointer is asked once it holds
        // CHECKPOINT_FRAMES more than were copied.
        let mut commits = 0;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while copied() == 0 {
            assert!(std::time::Instant::now() < deadline, "no checkpoint ran");
            let guids: Vec<String> = (0..20).map(|g| format!("{commits}-{g}")).collect();
            let guids: Vec<&str> = guids.iter().map(String::as_str).collect();
            store
                .commit_polls_unsynced(&[poll_of(a, "http://a/", &guids, now)])
                .unwrap();
            commits += 1;
            if commits % 50 == 0 {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
        // Asked at CHECKPOINT_FRAMES; a passive copy stops at the oldest reader's mark, and the
        // committer's next transaction may take an earlier commit's mark while the copy holds
        // the others (SQLite's walTryBeginRead).
        assert!(
            copied() >= CHECKPOINT_FRAMES * 9 / 10,
            "copied {}",
            copied()
        );
        // What was copied is in the database file itself, not only in the log.
        let file = std::fs::metadata(store.conn.path().unwrap()).unwrap().len();
        assert!(file > 20 * 4096, "the database file holds {file} bytes");
        assert_eq!(store.feed_state(a).unwrap().articles, commits * 20);
    }

    /// Commits articles that nearly fill a page each, worth half as much again as the log's
    /// limit, the first numbered `first`; returns how many commits.
    fn fill_the_log(store: &mut Store, feed: FeedId, first: i32) -> i32 {
        let commits = 3 * LOG_LIMIT_FRAMES / 2 / 20;
        for commit in first..first + commits {
            let guids: Vec<String> = (0..20).map(|g| format!("{commit}-{g}")).collect();
            let guids: Vec<&str> = guids.iter().map(String::as_str).collect();
            let mut write = poll_of(feed, "http://a/", &guids, Utc::now());
            for entry in &mut write.new {
                entry.article.summary = entry.article.title.repeat(1400);
            }
            store.commit_polls_unsynced(&[write]).unwrap();
        }
        commits
    }

    /// The log's file, and the bytes of a frame of it.
    fn log_of(store: &Store) -> (String, u64) {
        let page: u32 = store
            .conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap();
        let log = format!("{}-wal", store.conn.path().unwrap());
        (log, u64::from(page) + 24)
    }

    /// Runs `test` on a store whose checkpointer does not run at all (the worst of falling
    /// behind), with the log's file and the bytes of a frame; `test` returns how many commits of
    /// 20 articles it made, and every one of them must be kept.
    fn with_the_checkpointer_stalled(test: impl FnOnce(&mut Store, FeedId, &str, u64) -> i32) {
        let (_dir, mut store, a, _) = two_feeds();
        let checkpointer = Checkpointer::take_over(&mut store).expect("a database in WAL mode");
        let stalled = checkpointer.conn.lock().unwrap();
        let (log, frame) = log_of(&store);
        let commits = test(&mut store, a, &log, frame);
        drop(stalled);
        assert_eq!(
            store.feed_state(a).unwrap().articles,
            i64::from(commits) * 20
        );
    }

    #[test]
    fn the_log_starts_over_at_its_limit_when_the_checkpointer_falls_behind() {
        with_the_checkpointer_stalled(|store, a, log, frame| {
            let limit = u64::try_from(LOG_LIMIT_FRAMES).unwrap() * frame;
            let commits = fill_the_log(store, a, 0);
            let size = std::fs::metadata(log).unwrap().len();
            assert!(size <= limit + 64 * frame, "the log holds {size} bytes");
            commits
        });
    }

    #[test]
    fn the_log_starts_over_once_a_reader_that_held_it_back_is_done() {
        with_the_checkpointer_stalled(|store, a, log, frame| {
            // A read that began before the writes sees none of them: no frame can be copied.
            let reader = rusqlite::Connection::open(store.conn.path().unwrap()).unwrap();
            reader
                .execute_batch("BEGIN; SELECT count(*) FROM articles;")
                .unwrap();
            let mut commits = fill_the_log(store, a, 0);
            let held = std::fs::metadata(log).unwrap().len();
            assert!(held > u64::try_from(LOG_LIMIT_FRAMES).unwrap() * frame);
            reader.execute_batch("COMMIT").unwrap();
            commits += fill_the_log(store, a, commits);
            let size = std::fs::metadata(log).unwrap().len();
            assert!(
                size <= held + 200 * frame,
                "the log went from {held} to {size} bytes"
            );
            commits
        });
    }

    // Deleting the log from under SQLite is how the test makes a sync fail; Windows would not
    // let an open file go.
    #[cfg(unix)]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_sync_of_the_log_fails_that_poll_and_every_later_one_that_stores_articles() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fw.db");
        let mut store = Store::open(&path).unwrap();
        let ids = store
            .sync_feeds([("http://a/", "a"), ("http://b/", "b")])
            .unwrap();
        let (a, b) = (ids["http://a/"], ids["http://b/"]);
        let db = Db::new(store);
        let now = Utc::now();
        let stored = db.commit_poll(poll_of(a, "http://a/", &["1"], now)).await;
        assert_eq!(stored.unwrap().new_articles, 1);

        // With the log file gone, SQLite goes on writing the handle it holds, but the log can
        // no longer be synced by name: a poll that stored articles must not pass as durable.
        let log = dir.path().join("fw.db-wal");
        std::fs::remove_file(&log).unwrap();
        let unsynced = db.commit_poll(poll_of(a, "http://a/", &["2"], now)).await;
        match unsynced {
            Err(StoreError::Sync { path, .. }) => assert_eq!(path, log),
            other => panic!("expected a sync error, got {other:?}"),
        }
        // Once a sync failed, a later one that succeeds proves nothing about what came
        // before it: every poll that stores articles hears of the failure from then on.
        std::fs::File::create(&log).unwrap();
        let after = db.commit_poll(poll_of(a, "http://a/", &["3"], now)).await;
        assert!(
            matches!(after, Err(StoreError::Sync { .. })),
            "a failed log stays failed: {after:?}"
        );
        // A poll that stored nothing (a 304) needs no sync.
        let unchanged = not_modified(b, "http://b/", now);
        assert_eq!(db.commit_poll(unchanged).await.unwrap().new_articles, 0);
    }
}

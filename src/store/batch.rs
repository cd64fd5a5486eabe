//! Group commit of poll results: what one poll of one feed writes, and one transaction (one
//! sync to disk) for every poll that finished while the previous commit was being synced.
//!
//! With `synchronous = FULL` each commit costs an fsync, which on a disk dwarfs the writes
//! themselves; polls that finish together share one, and a batch that stores no article (all
//! 304s, say) does not wait for one at all. A poll whose writes fail is undone alone, and no
//! poll that stored articles returns before its writes are durable.

use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};
use rusqlite::TransactionBehavior;
use tokio::sync::oneshot;

use super::articles::{self, IngestStats, NewArticle};
use super::feeds::{self, FeedId, PollOutcome};
use super::{Db, Store, StoreError};
use crate::alert::Alert;
use crate::dedup::Identity;
use crate::parse::Article;

/// An article not stored yet, its identity, and its alerts with the notifiers of each.
pub type NewEntry = (Article, Identity, Vec<(Alert, Vec<String>)>);

/// Everything one poll of one feed writes.
#[derive(Debug, Clone)]
pub struct PollWrite {
    pub feed: FeedId,
    pub feed_url: String,
    /// Identities in the feed that are stored already: they are marked as still in it.
    pub present: Vec<Identity>,
    /// The articles not stored yet, each with its alerts and their notifiers.
    pub new: Vec<NewEntry>,
    pub outcome: PollOutcome,
    pub now: DateTime<Utc>,
    pub next_poll_at: DateTime<Utc>,
}

/// A poll's write and where its result goes. The write goes back with the result, so that the
/// poll's own task frees its articles: freeing them took a tenth of the committer's CPU time
/// in a cold poll, and every poll waits for the committer.
type Waiting = (PollWrite, oneshot::Sender<Committed>);
type Committed = (Result<IngestStats, StoreError>, PollWrite);

/// Polls whose writes wait for the next commit, and whether a committer is running.
#[derive(Default)]
pub(super) struct CommitQueue(Mutex<Pending>);

#[derive(Default)]
struct Pending {
    waiting: Vec<Waiting>,
    committing: bool,
}

impl Store {
    /// Writes every poll's results in one transaction, then commits. A poll whose writes fail
    /// is rolled back alone and gets its error; the others are kept.
    ///
    /// A batch that stores no article (304s, failures, feeds with nothing new) only records
    /// fetch state: losing it to a power cut means polling those feeds again, so its commit does
    /// not wait for the disk (WAL keeps the order: the next synced commit makes it durable too).
    /// Anything with articles, and so possibly alerts, is synced before this returns.
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
        let written: Result<Vec<IngestStats>, StoreError> =
            writes.iter().map(|write| write_poll(&tx, write)).collect();
        match written {
            Ok(stats) => {
                tx.commit()?;
                Ok(stats.into_iter().map(Ok).collect())
            }
            Err(_) => {
                tx.rollback()?;
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
            match write_poll(&savepoint, write) {
                Ok(stats) => {
                    savepoint.commit()?;
                    results.push(Ok(stats));
                }
                Err(e) => {
                    savepoint.rollback()?;
                    results.push(Err(e));
                }
            }
        }
        tx.commit()?;
        Ok(results)
    }
}

fn write_poll(conn: &rusqlite::Connection, write: &PollWrite) -> Result<IngestStats, StoreError> {
    articles::touch(conn, write.feed, &write.present, write.now)?;
    let items: Vec<NewArticle> = write
        .new
        .iter()
        .map(|(article, identity, alerts)| NewArticle {
            article,
            identity,
            alerts,
        })
        .collect();
    let stats = articles::ingest(conn, write.feed, &write.feed_url, &items, write.now)?;
    feeds::record_poll(
        conn,
        write.feed,
        &write.outcome,
        write.now,
        write.next_poll_at,
    )?;
    Ok(stats)
}

impl Db {
    /// Stores one poll's results and returns once they are durable. One committer at a time
    /// runs on the blocking pool and, until the queue is empty, commits everything that
    /// arrived while it was syncing the previous batch.
    pub async fn commit_poll(&self, write: PollWrite) -> Result<IngestStats, StoreError> {
        let (done, result) = oneshot::channel();
        let start_committer = {
            let mut pending = self.queue.0.lock().unwrap_or_else(PoisonError::into_inner);
            pending.waiting.push((write, done));
            !std::mem::replace(&mut pending.committing, true)
        };
        if start_committer {
            let db = self.clone();
            tokio::task::spawn_blocking(move || db.commit_until_empty());
        }
        let (stats, write) = result
            .await
            .map_err(|_| StoreError::Task("the commit of this poll was abandoned".into()))?;
        drop(write);
        stats
    }

    fn commit_until_empty(&self) {
        // Should a commit panic, the next poll must be able to start a committer again. The
        // polls of the lost batch, and those queued behind it (no committer would take them
        // until another poll arrives, and `run --once` may have none left), hear that their
        // commit was abandoned: their feeds are polled again as if the commit had failed.
        struct Restart<'a>(&'a CommitQueue);
        impl Drop for Restart<'_> {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    let abandoned = {
                        let mut pending = self.0.0.lock().unwrap_or_else(PoisonError::into_inner);
                        pending.committing = false;
                        std::mem::take(&mut pending.waiting)
                    };
                    drop(abandoned);
                }
            }
        }
        let _restart = Restart(&self.queue);
        loop {
            let waiting = {
                let mut pending = self.queue.0.lock().unwrap_or_else(PoisonError::into_inner);
                if pending.waiting.is_empty() {
                    pending.committing = false;
                    return;
                }
                std::mem::take(&mut pending.waiting)
            };
            let (writes, senders): (Vec<PollWrite>, Vec<_>) = waiting.into_iter().unzip();
            tracing::debug!(polls = writes.len(), "committing a batch of polls");
            // A panic while holding the lock cannot leave SQLite half-written (transactions
            // roll back), so a poisoned lock is safe to take over.
            let committed = self
                .store
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .commit_polls(&writes);
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
            for ((sender, result), write) in senders.into_iter().zip(results).zip(writes) {
                let _ = sender.send((result, write));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dedup::identify;
    use crate::fetch::Validators;

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
            feed,
            feed_url: url.into(),
            present: articles.iter().map(identify).collect(),
            new: articles
                .into_iter()
                .map(|a| {
                    let identity = identify(&a);
                    (a, identity, Vec::new())
                })
                .collect(),
            outcome: PollOutcome::Success {
                status: 200,
                validators: Validators {
                    etag: Some(format!("\"{}\"", guids.len())),
                    last_modified: None,
                },
                title: None,
                moved_to: None,
                missed_items: None,
                ttl: None,
            },
            now,
            next_poll_at: now + chrono::Duration::minutes(15),
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
        let mut unchanged = poll_of(a, "http://a/", &[], now);
        unchanged.outcome = PollOutcome::Success {
            status: 304,
            validators: Validators::default(),
            title: None,
            moved_to: None,
            missed_items: None,
            ttl: None,
        };
        store.commit_polls(&[unchanged]).unwrap();
        assert_eq!(store.feed_state(a).unwrap().last_status, Some(304));
        let synchronous: i64 = store
            .conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(synchronous, 2, "FULL");
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
}

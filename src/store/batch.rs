//! Group commit of poll results: what one poll of one feed writes, and one transaction (one
//! sync to disk) for every poll that finished while the previous commit was being synced.
//!
//! With `synchronous = FULL` each commit costs an fsync, which on a disk dwarfs the writes
//! themselves; polls that finish together share one. Each poll still stands alone inside the
//! transaction (a savepoint), and no poll's call returns before its writes are durable.

use std::sync::{Arc, Mutex, PoisonError};

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
    /// Every identity in the feed: the stored ones are marked as still in it.
    pub present: Vec<Identity>,
    /// The articles not stored yet, each with its alerts and their notifiers.
    pub new: Vec<NewEntry>,
    pub outcome: PollOutcome,
    pub now: DateTime<Utc>,
    pub next_poll_at: DateTime<Utc>,
}

type Waiting = (PollWrite, oneshot::Sender<Result<IngestStats, StoreError>>);

/// Polls whose writes wait for the next commit.
#[derive(Default)]
pub(super) struct CommitQueue(Mutex<Vec<Waiting>>);

impl Store {
    /// Writes each poll's results in a savepoint of one transaction, then commits. A poll whose
    /// writes fail is rolled back alone and gets its error; the others are kept.
    pub fn commit_polls(
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
            alerts: alerts.clone(),
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
    /// Stores one poll's results and returns once they are durable. Polls that arrive while a
    /// commit is syncing are committed together by whichever of them gets the store next.
    pub async fn commit_poll(&self, write: PollWrite) -> Result<IngestStats, StoreError> {
        let (done, result) = oneshot::channel();
        self.queue
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((write, done));
        let queue = Arc::clone(&self.queue);
        self.call(move |store| {
            let waiting =
                std::mem::take(&mut *queue.0.lock().unwrap_or_else(PoisonError::into_inner));
            if waiting.is_empty() {
                return Ok(()); // an earlier call committed ours with its own
            }
            let (writes, senders): (Vec<PollWrite>, Vec<_>) = waiting.into_iter().unzip();
            match store.commit_polls(&writes) {
                Ok(results) => {
                    for (sender, result) in senders.into_iter().zip(results) {
                        let _ = sender.send(result);
                    }
                }
                Err(e) => {
                    let message = e.to_string();
                    for sender in senders {
                        let _ = sender.send(Err(StoreError::Task(format!(
                            "committing a batch of polls: {message}"
                        ))));
                    }
                }
            }
            Ok(())
        })
        .await?;
        result
            .await
            .map_err(|_| StoreError::Task("the commit of this poll was abandoned".into()))?
    }
}

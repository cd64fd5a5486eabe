//! Feeds and their fetch state: validators, schedule, health.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, TransactionBehavior, params};

use super::{Store, StoreError, timestamp};
use crate::fetch::Validators;

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
    /// Where the feed answered a permanent redirect to; polled there from then on.
    pub moved_to: Option<String>,
    /// When the feed answered 410 Gone; it is not polled again.
    pub gone_at: Option<DateTime<Utc>>,
    /// When a poll last found nothing but new items, so some were probably missed.
    pub missed_items_at: Option<DateTime<Utc>>,
    /// A shorter interval that would probably not miss items.
    pub suggested_interval: Option<Duration>,
    /// The feed's RSS `<ttl>`: it is not polled more often than this.
    pub ttl: Option<Duration>,
    /// The pause the server imposed at the last poll, if any; it may have ended already.
    pub server_wait: Option<ServerWait>,
}

/// A server's request not to be polled before `until` (`Retry-After`, `Cache-Control: max-age`,
/// the feed's RSS `<ttl>`), honoured by the daemon and by `run --once` alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerWait {
    pub until: DateTime<Utc>,
    /// What asked for it, for people: "HTTP 429 with Retry-After", "Cache-Control: max-age".
    pub reason: String,
}

impl FeedState {
    /// The address to poll: where the feed moved to, else the configured one.
    pub fn poll_url(&self) -> &str {
        self.moved_to.as_deref().unwrap_or(&self.url)
    }

    /// The server's pause, if it still holds at `now`.
    pub fn waiting_at(&self, now: DateTime<Utc>) -> Option<&ServerWait> {
        self.server_wait.as_ref().filter(|wait| wait.until > now)
    }
}

/// How a poll ended, to be recorded on the feed.
#[derive(Debug, Clone)]
pub enum PollOutcome {
    Success {
        status: u16,
        validators: Validators,
        title: Option<String>,
        /// The feed moved here for good (301/308).
        moved_to: Option<String>,
        /// Every item was new: the interval that was suggested (or applied) because of it.
        missed_items: Option<Duration>,
        /// The body's RSS `<ttl>`; a poll that read no body keeps the one stored.
        ttl: Option<Duration>,
        /// No body was read: the server answered 304, or sent the body read last time again.
        /// The feed's `<ttl>` and its listing stay those of that body.
        unchanged: bool,
    },
    Failure {
        status: Option<u16>,
        error: String,
        /// False for "come back later" answers (429/503), which are not the feed's fault.
        counts_as_failure: bool,
        /// 410: stop polling this feed.
        gone: bool,
    },
}

#[cfg(test)]
impl PollOutcome {
    /// A successful answer with `status` (`200` with a body, `304`) and nothing else to record.
    pub(crate) fn answered(status: u16) -> PollOutcome {
        PollOutcome::Success {
            status,
            validators: Default::default(),
            title: None,
            moved_to: None,
            missed_items: None,
            ttl: None,
            unchanged: status == 304,
        }
    }
}

impl Store {
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

    /// All feeds with their article counts, for `feedwatch feeds` and `status`.
    pub fn feed_states(&self) -> Result<Vec<FeedState>, StoreError> {
        let sql = FEED_STATE_SQL.replace("WHERE f.id = ?1", "ORDER BY f.name");
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map([], feed_state_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every feed's state as the poller needs it, in one read (`run --once`, `/metrics`).
    pub fn poll_states(&self) -> Result<HashMap<FeedId, FeedState>, StoreError> {
        let sql = POLL_STATE_SQL.replace(" WHERE f.id = ?1", "");
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([], |r| feed_state_row(r).map(|state| (state.id, state)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One feed's state as the poller needs it, read as its poll starts.
    pub fn poll_state(&self, id: FeedId) -> Result<FeedState, StoreError> {
        let mut stmt = self.conn.prepare_cached(&POLL_STATE_SQL)?;
        Ok(stmt.query_row(params![id], feed_state_row)?)
    }

    /// When each feed is due (`None`: never polled), for the daemon's look over its feeds:
    /// a few bytes a feed, where whole states of a hundred thousand feeds took tens of
    /// megabytes at every look. Feeds that answered 410 Gone are left out: they are not
    /// polled again.
    pub fn next_polls(&self) -> Result<HashMap<FeedId, Option<DateTime<Utc>>>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, next_poll_at FROM feeds WHERE gone_at IS NULL")?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get(0)?, r.get::<_, Option<i64>>(1)?.map(timestamp)))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// Records a poll's result and when the feed is due again, inside the caller's transaction.
pub(super) fn record_poll(
    conn: &Connection,
    id: FeedId,
    outcome: &PollOutcome,
    now: DateTime<Utc>,
    next_poll_at: DateTime<Utc>,
    server_wait: Option<&ServerWait>,
) -> Result<(), StoreError> {
    let wait_until = server_wait.map(|w| w.until.timestamp());
    let wait_reason = server_wait.map(|w| w.reason.as_str());
    match outcome {
        PollOutcome::Success {
            status,
            validators,
            title,
            moved_to,
            missed_items,
            ttl,
            unchanged,
        } => {
            let missed = missed_items.map(|d| d.as_secs() as i64);
            let ttl = ttl.map(|d| d.as_secs() as i64);
            conn.prepare_cached(
                "UPDATE feeds SET etag = ?2, last_modified = ?3, title = COALESCE(?4, title),
                    last_attempt_at = ?5, last_success_at = ?5, last_status = ?6,
                    consecutive_failures = 0, last_error = NULL, next_poll_at = ?7,
                    moved_to = COALESCE(?8, moved_to),
                    missed_items_at = CASE WHEN ?9 IS NULL THEN missed_items_at ELSE ?5 END,
                    suggested_interval = COALESCE(?9, suggested_interval),
                    ttl = CASE WHEN ?13 THEN ttl ELSE ?10 END,
                    listed_at = CASE WHEN ?13 THEN listed_at ELSE ?5 END,
                    wait_until = ?11, wait_reason = ?12, body_digest = ?14
                 WHERE id = ?1",
            )?
            .execute(params![
                id,
                validators.etag,
                validators.last_modified,
                title,
                now.timestamp(),
                status,
                next_poll_at.timestamp(),
                moved_to,
                missed,
                ttl,
                wait_until,
                wait_reason,
                unchanged,
                validators.digest
            ])?;
        }
        PollOutcome::Failure {
            status,
            error,
            counts_as_failure,
            gone,
        } => {
            conn.prepare_cached(
                "UPDATE feeds SET last_attempt_at = ?2, last_status = ?3, last_error = ?4,
                    consecutive_failures = consecutive_failures + ?5, next_poll_at = ?6,
                    gone_at = CASE WHEN ?7 THEN ?2 ELSE gone_at END,
                    wait_until = ?8, wait_reason = ?9
                 WHERE id = ?1",
            )?
            .execute(params![
                id,
                now.timestamp(),
                status,
                error,
                i64::from(*counts_as_failure),
                next_poll_at.timestamp(),
                gone,
                wait_until,
                wait_reason
            ])?;
        }
    }
    Ok(())
}

const FEED_STATE_SQL: &str = "
    SELECT f.id, f.url, f.name, f.title, f.etag, f.last_modified, f.next_poll_at,
           f.last_attempt_at, f.last_success_at, f.last_status, f.consecutive_failures,
           f.last_error, (SELECT COUNT(*) FROM articles a WHERE a.feed_id = f.id),
           f.moved_to, f.gone_at, f.missed_items_at, f.suggested_interval, f.ttl,
           f.wait_until, f.wait_reason, f.body_digest
    FROM feeds f WHERE f.id = ?1";

/// [`FEED_STATE_SQL`] with `articles` left at 0: counting each feed's articles costs more than
/// the rest of the read and polling does not need it (see [`Store::seen`]). Made once: every
/// poll reads its feed's state with it.
static POLL_STATE_SQL: LazyLock<String> = LazyLock::new(|| {
    FEED_STATE_SQL.replace(
        "(SELECT COUNT(*) FROM articles a WHERE a.feed_id = f.id)",
        "0",
    )
});

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
            digest: r.get(20)?,
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
        moved_to: r.get(13)?,
        gone_at: time(14)?,
        missed_items_at: time(15)?,
        suggested_interval: r
            .get::<_, Option<i64>>(16)?
            .map(|s| Duration::from_secs(s.max(0) as u64)),
        ttl: r
            .get::<_, Option<i64>>(17)?
            .map(|s| Duration::from_secs(s.max(0) as u64)),
        server_wait: match (time(18)?, r.get::<_, Option<String>>(19)?) {
            (Some(until), reason) => Some(ServerWait {
                until,
                reason: reason.unwrap_or_default(),
            }),
            (None, _) => None,
        },
    })
}

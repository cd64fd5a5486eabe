//! The outbox: alerts waiting for delivery, their attempts and their end.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{Store, StoreError, timestamp};
use crate::alert::Alert;

/// Alerts of one rule reach one notifier in the order they matched: a pending row waits while
/// an older row for the same (notifier, rule) has failed and waits for its retry. Dead rows do
/// not block; fresh rows go out together, oldest first. Members of one digest travel as one
/// message, so they never block each other.
const FIRST_IN_LINE: &str = "NOT EXISTS (
    SELECT 1 FROM outbox older JOIN matches om ON om.id = older.match_id
    WHERE older.status = 'pending' AND older.attempts > 0 AND older.notifier = o.notifier
      AND om.rule = m.rule AND older.id < o.id
      AND (o.digest_id IS NULL OR older.digest_id IS NOT o.digest_id))";

/// The columns [`Store::read_deliveries`] reads, from `outbox o JOIN matches m`.
const DELIVERY_COLUMNS: &str =
    "o.id, o.delivery_id, o.notifier, o.attempts, m.alert, o.created_at, o.digest_id";

/// An outbox row due for delivery.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: i64,
    pub delivery_id: String,
    pub notifier: String,
    pub attempts: u32,
    pub alert: Alert,
    pub created_at: DateTime<Utc>,
    /// The unit the row was sealed into before a send, when its notifier folds alerts: a
    /// digest id (every row with it goes out as one message, under that id), or the row's own
    /// delivery id when it was claimed to go out alone. A sealed row is never folded again,
    /// so a resend after a crash carries the same id as the first send.
    pub digest_id: Option<String>,
}

impl Delivery {
    /// The digest this row goes out in, if it is part of one.
    pub fn in_digest(&self) -> Option<&str> {
        self.digest_id
            .as_deref()
            .filter(|&unit| unit != self.delivery_id)
    }
}

/// An outbox row that still needs attention: pending (perhaps after failures) or dead.
#[derive(Debug, Clone)]
pub struct OutboxEntry {
    pub delivery_id: String,
    pub notifier: String,
    /// `pending` or `dead`.
    pub status: String,
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub alert: Alert,
    /// The digest the row goes out in, if it was folded into one.
    pub digest_id: Option<String>,
}

impl Store {
    /// Pending outbox rows due by `due_by` that are first in line for their (notifier, rule),
    /// with an id above `after_id`, oldest first.
    pub fn due_deliveries(
        &self,
        due_by: DateTime<Utc>,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.read_deliveries(
            &format!(
                "o.status = 'pending' AND o.next_attempt_at <= ?1 AND o.id > ?2
                 AND {FIRST_IN_LINE} ORDER BY o.id LIMIT ?3"
            ),
            params![due_by.timestamp(), after_id, limit as i64],
        )
    }

    /// A notifier's fresh rows: pending, never tried, in no digest yet, and first in line;
    /// oldest first. These are what a digest or a rate limit folds. Rows already set to wait
    /// for a window's end are included: an alert that arrives later in the window joins them.
    pub fn fresh_deliveries(&self, notifier: &str) -> Result<Vec<Delivery>, StoreError> {
        self.read_deliveries(
            &format!(
                "o.status = 'pending' AND o.notifier = ?1
                 AND o.attempts = 0 AND o.digest_id IS NULL AND {FIRST_IN_LINE} ORDER BY o.id"
            ),
            params![notifier],
        )
    }

    /// The pending rows of one digest, oldest first.
    pub fn digest_members(&self, digest_id: &str) -> Result<Vec<Delivery>, StoreError> {
        self.read_deliveries(
            "o.status = 'pending' AND o.digest_id = ?1 ORDER BY o.id",
            params![digest_id],
        )
    }

    fn read_deliveries(
        &self,
        condition: &str,
        values: impl rusqlite::Params,
    ) -> Result<Vec<Delivery>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM outbox o JOIN matches m ON m.id = o.match_id
             WHERE {condition}"
        ))?;
        let rows = stmt.query_map(values, |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, Option<String>>(6)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, delivery_id, notifier, attempts, alert, created_at, digest_id) = row?;
            out.push(Delivery {
                id,
                delivery_id,
                notifier,
                attempts: attempts.clamp(0, u32::MAX as i64) as u32,
                alert: serde_json::from_str(&alert)?,
                created_at: timestamp(created_at),
                digest_id,
            });
        }
        Ok(out)
    }

    /// Makes the pending rows `ids` one unit under `digest_id`, before it is sent: from now
    /// on they are retried, resent after a crash, and marked, as one. Rows already sealed are
    /// left alone (another process may have taken them). The give-up clock starts again at
    /// `now`: the rows were held on purpose, and a week's digest must not die on its first
    /// failure. Returns how many rows joined.
    pub fn seal_digest(
        &mut self,
        ids: &[i64],
        digest_id: &str,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        Ok(self.conn.execute(
            "UPDATE outbox SET digest_id = ?2, created_at = ?3
             WHERE id IN (SELECT value FROM json_each(?1))
               AND status = 'pending' AND digest_id IS NULL",
            params![serde_json::to_string(ids)?, digest_id, now.timestamp()],
        )?)
    }

    /// How many alerts `notifier` has sent on their own (not in a digest) since `since`.
    pub fn singles_delivered_since(
        &self,
        notifier: &str,
        since: DateTime<Utc>,
    ) -> Result<u32, StoreError> {
        let count: i64 = self.conn.query_row(
            "SELECT COUNT(*) FROM outbox
             WHERE notifier = ?1 AND status = 'delivered' AND delivered_at >= ?2
               AND (digest_id IS NULL OR digest_id = delivery_id)",
            params![notifier, since.timestamp()],
            |r| r.get(0),
        )?;
        Ok(count.clamp(0, u32::MAX as i64) as u32)
    }

    /// When the next pending delivery is due, if any.
    pub fn next_delivery_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let at: Option<i64> = self.conn.query_row(
            &format!(
                "SELECT MIN(o.next_attempt_at)
                 FROM outbox o JOIN matches m ON m.id = o.match_id
                 WHERE o.status = 'pending' AND {FIRST_IN_LINE}"
            ),
            [],
            |r| r.get(0),
        )?;
        Ok(at.map(timestamp))
    }

    /// Marks rows `ids` delivered, in one statement: a digest's members are all marked or none.
    pub fn mark_all_delivered(
        &mut self,
        ids: &[i64],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE outbox SET status = 'delivered', delivered_at = ?2,
                attempts = attempts + 1, last_error = NULL
             WHERE id IN (SELECT value FROM json_each(?1))",
            params![serde_json::to_string(ids)?, now.timestamp()],
        )?;
        Ok(())
    }

    /// When an alert of `rule` last went out through `notifier`, if ever.
    pub fn last_delivered(
        &self,
        notifier: &str,
        rule: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let at: Option<i64> = self.conn.query_row(
            "SELECT MAX(o.delivered_at) FROM outbox o JOIN matches m ON m.id = o.match_id
             WHERE o.notifier = ?1 AND o.status = 'delivered' AND m.rule = ?2",
            params![notifier, rule],
            |r| r.get(0),
        )?;
        Ok(at.map(timestamp))
    }

    /// Moves pending rows' next attempt to `at` without counting an attempt (quiet hours, a
    /// cooldown, a digest window or rate limit).
    pub fn postpone(&mut self, ids: &[i64], at: DateTime<Utc>) -> Result<(), StoreError> {
        // One statement for all: a digest window re-postpones every row it holds.
        self.conn.execute(
            "UPDATE outbox SET next_attempt_at = ?2
             WHERE id IN (SELECT value FROM json_each(?1)) AND status = 'pending'
               AND next_attempt_at != ?2",
            params![serde_json::to_string(ids)?, at.timestamp()],
        )?;
        Ok(())
    }

    /// Records a failed attempt of rows `ids` sent together (a desktop group, a digest's
    /// members), in one statement: retried at `retry_at`, or dead when `None`.
    pub fn mark_all_failed(
        &mut self,
        ids: &[i64],
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let ids = serde_json::to_string(ids)?;
        match retry_at {
            Some(at) => self.conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3
                 WHERE id IN (SELECT value FROM json_each(?1))",
                params![ids, error, at.timestamp()],
            )?,
            None => self.conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, status = 'dead'
                 WHERE id IN (SELECT value FROM json_each(?1))",
                params![ids, error],
            )?,
        };
        Ok(())
    }

    /// Every pending and dead outbox row, oldest first, for `feedwatch outbox`.
    pub fn undelivered(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT o.delivery_id, o.notifier, o.status, o.attempts, o.next_attempt_at,
                    o.last_error, o.created_at, m.alert,
                    NULLIF(o.digest_id, o.delivery_id)
             FROM outbox o JOIN matches m ON m.id = o.match_id
             WHERE o.status IN ('pending', 'dead')
             ORDER BY o.id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, Option<String>>(5)?,
                r.get::<_, i64>(6)?,
                r.get::<_, String>(7)?,
                r.get::<_, Option<String>>(8)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (
                delivery_id,
                notifier,
                status,
                attempts,
                next,
                last_error,
                created,
                alert,
                digest_id,
            ) = row?;
            out.push(OutboxEntry {
                delivery_id,
                notifier,
                status,
                attempts: attempts.clamp(0, u32::MAX as i64) as u32,
                next_attempt_at: timestamp(next),
                last_error,
                created_at: timestamp(created),
                alert: serde_json::from_str(&alert)?,
                digest_id,
            });
        }
        Ok(out)
    }

    /// Puts every dead row back in the queue, due at `now`, with a fresh give-up window so it
    /// gets a full round of retries. Returns how many were revived.
    pub fn revive_dead(&mut self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        Ok(self.conn.execute(
            "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = ?1,
                created_at = ?1
             WHERE status = 'dead'",
            params![now.timestamp()],
        )?)
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

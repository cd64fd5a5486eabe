//! The outbox: alerts waiting for delivery, their attempts and their end.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{Store, StoreError, timestamp};
use crate::alert::Alert;

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

impl Store {
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

    /// Outbox rows per status, for summaries.
    pub fn outbox_counts(&self) -> Result<HashMap<String, i64>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT status, COUNT(*) FROM outbox GROUP BY status")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

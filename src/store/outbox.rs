//! The outbox: alerts waiting for delivery, their attempts and their end.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError, timestamp};
use crate::alert::Alert;

/// Row `o` has a delivered mark not yet written into it (see [`Store::mark_all_delivered`]):
/// every query counts it as delivered.
const SENT: &str = "EXISTS (SELECT 1 FROM outbox_sent sent WHERE sent.id = o.id)";

/// Alerts of one rule reach one notifier in the order they matched: a pending row waits while
/// an older row for the same (notifier, rule) has failed and waits for its retry. Dead rows do
/// not block; fresh rows go out together, oldest first. Members of one digest travel as one
/// message, so they never block each other.
///
/// Two lookups in `outbox_waited_on`, whatever the backlog: the line's oldest failed row and
/// the failed row nearest before this one (`''` stands for a row in no digest). A row in no
/// digest waits behind any; a digest's member waits unless both are of its digest. A failed
/// row of another unit lying between two failed members of one digest in one line, which
/// only the two lookups could miss, does not arise: a digest is sealed from the line's oldest
/// rows not yet tried, and the line is held while it waits. Were one to, the digest would
/// still go out only once its oldest member is first in line. A failed row with a delivered
/// mark in `outbox_sent` holds nothing back.
const FIRST_IN_LINE: &str = "
    IFNULL((SELECT IFNULL(older.digest_id, '') FROM outbox older
            WHERE older.status = 'pending' AND older.attempts > 0
              AND older.notifier = o.notifier AND older.rule = o.rule AND older.id < o.id
              AND NOT EXISTS (SELECT 1 FROM outbox_sent sent WHERE sent.id = older.id)
            ORDER BY older.id LIMIT 1), o.digest_id) IS o.digest_id
    AND (o.digest_id IS NULL
         OR IFNULL((SELECT IFNULL(older.digest_id, '') FROM outbox older
                    WHERE older.status = 'pending' AND older.attempts > 0
                      AND older.notifier = o.notifier AND older.rule = o.rule
                      AND older.id < o.id
                      AND NOT EXISTS (SELECT 1 FROM outbox_sent sent WHERE sent.id = older.id)
                    ORDER BY older.id DESC LIMIT 1), o.digest_id) IS o.digest_id)";

/// How many alerts notifier `?1` has sent on their own since `?2`: delivered rows, and rows
/// with a mark in `outbox_sent` (looked up from there: it is short, the outbox is not).
const SINGLES_DELIVERED_SINCE: &str = "
    SELECT (SELECT COUNT(*) FROM outbox
            WHERE notifier = ?1 AND status = 'delivered' AND delivered_at >= ?2
              AND (digest_id IS NULL OR digest_id = delivery_id))
         + (SELECT COUNT(*) FROM outbox_sent sent CROSS JOIN outbox o ON o.id = sent.id
            WHERE o.notifier = ?1 AND o.status != 'delivered' AND sent.delivered_at >= ?2
              AND (o.digest_id IS NULL OR o.digest_id = o.delivery_id))";

/// When line (`?1`, `?2`) last delivered: in its delivered rows, and in `outbox_sent`.
const LAST_DELIVERED: &str = "
    SELECT (SELECT MAX(delivered_at) FROM outbox
            WHERE notifier = ?1 AND rule = ?2 AND status = 'delivered'),
           (SELECT MAX(sent.delivered_at) FROM outbox_sent sent CROSS JOIN outbox o
            ON o.id = sent.id
            WHERE o.notifier = ?1 AND o.rule = ?2 AND o.status != 'delivered')";

/// The columns [`Store::read_deliveries`] reads, from `outbox o JOIN matches m`.
const DELIVERY_COLUMNS: &str =
    "o.id, o.delivery_id, o.notifier, o.attempts, m.alert, o.created_at, o.digest_id";

fn delivery_query(outbox: &str, condition: &str) -> String {
    format!(
        "SELECT {DELIVERY_COLUMNS} FROM {outbox} JOIN matches m ON m.id = o.match_id
         WHERE {condition}"
    )
}

/// The condition of [`Store::due_deliveries`].
fn due_condition() -> String {
    format!(
        "o.status = 'pending' AND NOT {SENT} AND o.next_attempt_at <= ?1 AND o.id > ?2
         AND {FIRST_IN_LINE} ORDER BY o.id LIMIT ?3"
    )
}

/// When the soonest row first in line is due: pending rows soonest first, up to the first
/// that is first in line.
fn next_due_query() -> String {
    format!(
        "SELECT o.next_attempt_at FROM outbox o
         WHERE o.status = 'pending' AND NOT {SENT} AND {FIRST_IN_LINE}
         ORDER BY o.next_attempt_at LIMIT 1"
    )
}

/// Walked by id through pending rows only: the outbox also keeps every delivered row.
const PENDING: &str = "outbox o INDEXED BY outbox_pending";

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
            PENDING,
            &due_condition(),
            params![due_by.timestamp(), after_id, limit as i64],
        )
    }

    /// A notifier's fresh rows: pending, never tried, in no digest yet, and first in line;
    /// oldest first. These are what a digest or a rate limit folds. Rows already set to wait
    /// for a window's end are included: an alert that arrives later in the window joins them.
    pub fn fresh_deliveries(&self, notifier: &str) -> Result<Vec<Delivery>, StoreError> {
        self.read_deliveries(
            PENDING,
            &format!(
                "o.status = 'pending' AND NOT {SENT} AND o.notifier = ?1
                 AND o.attempts = 0 AND o.digest_id IS NULL AND {FIRST_IN_LINE} ORDER BY o.id"
            ),
            params![notifier],
        )
    }

    /// The pending rows of one digest, oldest first.
    pub fn digest_members(&self, digest_id: &str) -> Result<Vec<Delivery>, StoreError> {
        self.read_deliveries(
            "outbox o",
            &format!("o.status = 'pending' AND NOT {SENT} AND o.digest_id = ?1 ORDER BY o.id"),
            params![digest_id],
        )
    }

    /// The deliveries of `outbox` (aliased `o`) that meet `condition`.
    fn read_deliveries(
        &self,
        outbox: &str,
        condition: &str,
        values: impl rusqlite::Params,
    ) -> Result<Vec<Delivery>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(&delivery_query(outbox, condition))?;
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
               AND status = 'pending' AND digest_id IS NULL
               AND id NOT IN (SELECT id FROM outbox_sent)",
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
            SINGLES_DELIVERED_SINCE,
            params![notifier, since.timestamp()],
            |r| r.get(0),
        )?;
        Ok(count.clamp(0, u32::MAX as i64) as u32)
    }

    /// When the next pending delivery is due, if any.
    pub fn next_delivery_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let at: Option<i64> = self
            .conn
            .query_row(&next_due_query(), [], |r| r.get(0))
            .optional()?;
        Ok(at.map(timestamp))
    }

    /// Marks rows `ids` delivered, in one statement: a digest's members are all marked or none.
    ///
    /// The mark is a row in `outbox_sent`, which every query counts as delivered, and not a
    /// change of the outbox row: that rewrote the row and four of its indexes, and their pages
    /// in the log, at every alert. [`Store::fold_sent`] writes marks into their rows, many in
    /// one transaction.
    ///
    /// The mark does not wait for the disk: waiting held delivery to the disk's sync rate, a
    /// few hundred alerts a second. It is in the log when this returns, so a crash of the
    /// process keeps it; a power cut can undo the marks made since the log was last synced
    /// (by the next synced commit, or before a checkpoint, which SQLite runs every 1000 pages
    /// of log). Those alerts then go out again under the same delivery ids, as after a crash
    /// between a send and its mark.
    pub fn mark_all_delivered(
        &mut self,
        ids: &[i64],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let at = now.timestamp();
        self.unsynced(|store| {
            // A row marked twice (sent by two processes at once) keeps its first mark.
            match ids {
                [id] => store
                    .conn
                    .prepare_cached(
                        "INSERT OR IGNORE INTO outbox_sent (id, delivered_at) VALUES (?1, ?2)",
                    )?
                    .execute(params![id, at])?,
                _ => store
                    .conn
                    .prepare_cached(
                        "INSERT OR IGNORE INTO outbox_sent (id, delivered_at)
                         SELECT value, ?2 FROM json_each(?1)",
                    )?
                    .execute(params![serde_json::to_string(ids)?, at])?,
            };
            Ok(())
        })
    }

    /// Writes the delivered marks of `outbox_sent` into their outbox rows and empties it, in
    /// one transaction. A row delivered already (sent by two processes at once) keeps its
    /// first delivery. Returns how many rows it wrote. Nothing is lost if it never runs:
    /// every query reads the marks where they are.
    pub fn fold_sent(&mut self) -> Result<usize, StoreError> {
        let waiting: bool = self
            .conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM outbox_sent)")?
            .query_row([], |r| r.get(0))?;
        if !waiting {
            return Ok(0);
        }
        // Like the marks, the fold does not wait for the disk: a power cut that undoes it
        // undoes it whole, and the marks it read are still in `outbox_sent`.
        self.unsynced(|store| {
            let tx = store.conn.transaction()?;
            let folded = tx
                .prepare_cached(
                    "UPDATE outbox SET status = 'delivered',
                        delivered_at = (SELECT delivered_at FROM outbox_sent sent
                                        WHERE sent.id = outbox.id),
                        attempts = attempts + 1, last_error = NULL
                     WHERE id IN (SELECT id FROM outbox_sent) AND status != 'delivered'",
                )?
                .execute([])?;
            tx.prepare_cached("DELETE FROM outbox_sent")?.execute([])?;
            tx.commit()?;
            Ok(folded)
        })
    }

    /// When an alert of `rule` last went out through `notifier`, if ever.
    pub fn last_delivered(
        &self,
        notifier: &str,
        rule: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let (folded, marked): (Option<i64>, Option<i64>) =
            self.conn
                .query_row(LAST_DELIVERED, params![notifier, rule], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
        let at = folded.max(marked);
        Ok(at.map(timestamp))
    }

    /// Moves pending rows' next attempt to `at` without counting an attempt (quiet hours, a
    /// cooldown, a digest window or rate limit).
    pub fn postpone(&mut self, ids: &[i64], at: DateTime<Utc>) -> Result<(), StoreError> {
        // One statement for all: a digest window re-postpones every row it holds.
        self.conn.execute(
            "UPDATE outbox SET next_attempt_at = ?2
             WHERE id IN (SELECT value FROM json_each(?1)) AND status = 'pending'
               AND next_attempt_at != ?2 AND id NOT IN (SELECT id FROM outbox_sent)",
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
            // A row another process delivered meanwhile stays delivered.
            Some(at) => self.conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3
                 WHERE id IN (SELECT value FROM json_each(?1)) AND status = 'pending'
                   AND id NOT IN (SELECT id FROM outbox_sent)",
                params![ids, error, at.timestamp()],
            )?,
            None => self.conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, status = 'dead'
                 WHERE id IN (SELECT value FROM json_each(?1)) AND status = 'pending'
                   AND id NOT IN (SELECT id FROM outbox_sent)",
                params![ids, error],
            )?,
        };
        Ok(())
    }

    /// Every pending and dead outbox row, oldest first, for `feedwatch outbox`.
    pub fn undelivered(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT o.delivery_id, o.notifier, o.status, o.attempts, o.next_attempt_at,
                    o.last_error, o.created_at, m.alert,
                    NULLIF(o.digest_id, o.delivery_id)
             FROM outbox o JOIN matches m ON m.id = o.match_id
             WHERE o.status IN ('pending', 'dead') AND NOT {SENT}
             ORDER BY o.id"
        ))?;
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
             WHERE status = 'dead' AND id NOT IN (SELECT id FROM outbox_sent)",
            params![now.timestamp()],
        )?)
    }

    /// Outbox rows per status, for summaries.
    pub fn outbox_counts(&self) -> Result<HashMap<String, i64>, StoreError> {
        // One snapshot for both counts, so that no fold falls between them.
        let snapshot = self.conn.unchecked_transaction()?;
        let mut counts: HashMap<String, i64> = HashMap::new();
        let mut stmt = snapshot.prepare("SELECT status, COUNT(*) FROM outbox GROUP BY status")?;
        for row in stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))? {
            let (status, count) = row?;
            counts.insert(status, count);
        }
        // Rows with a delivered mark not yet written into them count as delivered.
        let mut stmt = snapshot.prepare(
            "SELECT o.status, COUNT(*) FROM outbox_sent sent CROSS JOIN outbox o
             ON o.id = sent.id WHERE o.status != 'delivered' GROUP BY o.status",
        )?;
        for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
            let (status, count) = row?;
            *counts.entry(status).or_default() -= count;
            *counts.entry("delivered".into()).or_default() += count;
        }
        counts.retain(|_, count| *count > 0);
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::schema::MIGRATIONS;

    /// The lines of generated outboxes.
    const NOTIFIERS: [&str; 2] = ["hook", "console"];
    const RULES: [&str; 3] = ["a", "b", "c"];

    /// Pseudo-random numbers below `n` (xorshift), the same for the same seed.
    fn numbers(mut seed: u64) -> impl FnMut(u64) -> u64 {
        move |n| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        }
    }

    /// A row of a generated outbox: its line, state and digest.
    struct Row<'a> {
        notifier: &'a str,
        rule: &'a str,
        status: &'a str,
        attempts: u32,
        digest: Option<&'a str>,
    }

    fn row<'a>(notifier: &'a str, rule: &'a str, status: &'a str, attempts: u32) -> Row<'a> {
        Row {
            notifier,
            rule,
            status,
            attempts,
            digest: None,
        }
    }

    /// Writes `rows` in order with their matches, all due at 0; returns their ids. Without
    /// `with_rule`, into an outbox that does not name the rule yet.
    fn write(conn: &rusqlite::Connection, rows: &[Row], with_rule: bool) -> Vec<i64> {
        let mut ids = Vec::new();
        for (index, r) in rows.iter().enumerate() {
            let mut alert = crate::notify::test_alert(timestamp(0));
            alert.rule = r.rule.to_string();
            conn.execute(
                "INSERT INTO matches (rule, alert, created_at) VALUES (?1, ?2, 0)",
                params![r.rule, serde_json::to_string(&alert).unwrap()],
            )
            .unwrap();
            let values = params![
                format!("delivery-{index}"),
                conn.last_insert_rowid(),
                r.notifier,
                r.status,
                r.attempts,
                r.digest,
                r.rule
            ];
            let sql = if with_rule {
                "INSERT INTO outbox (delivery_id, match_id, notifier, status, attempts, digest_id,
                                     rule, next_attempt_at, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, 0)"
            } else {
                "INSERT INTO outbox (delivery_id, match_id, notifier, status, attempts, digest_id,
                                     next_attempt_at, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, 0)"
            };
            conn.execute(sql, &values[..if with_rule { 7 } else { 6 }])
                .unwrap();
            ids.push(conn.last_insert_rowid());
        }
        ids
    }

    fn due_ids(store: &Store) -> Vec<i64> {
        store
            .due_deliveries(timestamp(1), 0, 10_000)
            .unwrap()
            .iter()
            .map(|d| d.id)
            .collect()
    }

    /// The rows first in line by the promise itself: no older failed row of the line outside
    /// the row's own digest. Every row is looked at for each one.
    fn first_in_line_by_definition(store: &Store) -> Vec<i64> {
        let mut stmt = store
            .conn
            .prepare(
                "SELECT o.id FROM outbox o WHERE o.status = 'pending' AND NOT EXISTS (
                     SELECT 1 FROM outbox older NOT INDEXED
                     WHERE older.status = 'pending' AND older.attempts > 0
                       AND older.notifier = o.notifier AND older.rule = o.rule
                       AND older.id < o.id
                       AND (o.digest_id IS NULL OR older.digest_id IS NOT o.digest_id))
                 ORDER BY o.id",
            )
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("fw.db")).unwrap();
        (dir, store)
    }

    #[test]
    fn a_failed_row_holds_back_its_line_only_and_a_digest_never_waits_for_itself() {
        let (_dir, store) = store();
        let with = |mut r: Row<'static>, digest| {
            r.digest = Some(digest);
            r
        };
        let rows = [
            // 0-2: a failed row holds back the later rows of its line.
            row("hook", "a", "pending", 1),
            row("hook", "a", "pending", 0),
            row("hook", "a", "pending", 0),
            // 3-4: another rule, and 5 another notifier, are not held.
            row("hook", "b", "pending", 0),
            row("hook", "b", "pending", 0),
            row("console", "a", "pending", 0),
            // 6-8: members of a failed digest go out together; a later single waits.
            with(row("hook", "d", "pending", 2), "D"),
            with(row("hook", "d", "pending", 2), "D"),
            row("hook", "d", "pending", 0),
            // 9-10: a dead row holds nothing back, and a delivered one is gone.
            row("hook", "e", "dead", 3),
            row("hook", "e", "pending", 0),
            // 11-12: a digest member waits behind a failed single.
            row("hook", "f", "pending", 1),
            with(row("hook", "f", "pending", 1), "F"),
            // 13-15: and behind a failed row of another digest, nearest or oldest.
            with(row("hook", "g", "pending", 1), "G1"),
            with(row("hook", "g", "pending", 1), "G2"),
            with(row("hook", "g", "pending", 0), "G1"),
            // 16: delivered rows are not due.
            row("hook", "h", "delivered", 1),
        ];
        let ids = write(&store.conn, &rows, true);
        let expected: Vec<i64> = [0, 3, 4, 5, 6, 7, 10, 11, 13]
            .iter()
            .map(|&i| ids[i])
            .collect();
        assert_eq!(due_ids(&store), expected);
        assert_eq!(first_in_line_by_definition(&store), expected);
        let fresh: Vec<i64> = store
            .fresh_deliveries("hook")
            .unwrap()
            .iter()
            .map(|d| d.id)
            .collect();
        assert_eq!(fresh, [ids[3], ids[4], ids[10]]);
    }

    #[test]
    fn first_in_line_keeps_the_promise_on_generated_outboxes() {
        // Lines of singles and digest runs (a digest is sealed from consecutive rows of a
        // line), in every state, interleaved at random.
        let mut next = numbers(0x9e37_79b9_7f4a_7c15);
        const DIGESTS: [&str; 4] = ["D0", "D1", "D2", "D3"];
        const STATUSES: [&str; 3] = ["pending", "pending", "dead"];
        for _ in 0..40 {
            let (_dir, store) = store();
            let mut rows = Vec::new();
            let mut digests_used = 0;
            for _ in 0..(5 + next(20)) {
                let (notifier, rule) = (NOTIFIERS[next(2) as usize], RULES[next(3) as usize]);
                let (status, attempts) = match next(4) {
                    0 => ("delivered", 1),
                    _ => (STATUSES[next(3) as usize], next(3) as u32),
                };
                let run = if next(3) == 0 && digests_used < DIGESTS.len() {
                    digests_used += 1;
                    Some(DIGESTS[digests_used - 1])
                } else {
                    None
                };
                for _ in 0..if run.is_some() { 1 + next(3) } else { 1 } {
                    rows.push(Row {
                        digest: run,
                        ..row(notifier, rule, status, attempts)
                    });
                }
            }
            write(&store.conn, &rows, true);
            assert_eq!(due_ids(&store), first_in_line_by_definition(&store));
        }
    }

    /// Everything the outbox answers about its rows, to compare before and after a fold.
    #[derive(Debug, PartialEq)]
    struct Answers {
        due: Vec<i64>,
        fresh: Vec<Vec<i64>>,
        digest_members: Vec<Vec<i64>>,
        next_due: Option<DateTime<Utc>>,
        undelivered: Vec<(String, String, u32)>,
        counts: Vec<(String, i64)>,
        last_delivered: Vec<Option<DateTime<Utc>>>,
        singles_since: Vec<u32>,
    }

    fn answers(store: &Store, notifiers: &[&str], rules: &[&str], digests: &[&str]) -> Answers {
        let ids = |rows: Vec<Delivery>| rows.iter().map(|d| d.id).collect::<Vec<_>>();
        let mut counts: Vec<_> = store.outbox_counts().unwrap().into_iter().collect();
        counts.sort();
        Answers {
            due: due_ids(store),
            fresh: notifiers
                .iter()
                .map(|n| ids(store.fresh_deliveries(n).unwrap()))
                .collect(),
            digest_members: digests
                .iter()
                .map(|d| ids(store.digest_members(d).unwrap()))
                .collect(),
            next_due: store.next_delivery_at().unwrap(),
            undelivered: store
                .undelivered()
                .unwrap()
                .into_iter()
                .map(|e| (e.delivery_id, e.status, e.attempts))
                .collect(),
            counts,
            last_delivered: notifiers
                .iter()
                .flat_map(|n| rules.iter().map(move |r| (n, r)))
                .map(|(n, r)| store.last_delivered(n, r).unwrap())
                .collect(),
            singles_since: notifiers
                .iter()
                .flat_map(|n| [0, 5, 10].map(|at| (n, at)))
                .map(|(n, at)| store.singles_delivered_since(n, timestamp(at)).unwrap())
                .collect(),
        }
    }

    /// Every row's state, in id order.
    fn dump(store: &Store) -> Vec<String> {
        let mut stmt = store
            .conn
            .prepare(
                "SELECT id, status, attempts, next_attempt_at, last_error, created_at,
                        delivered_at, digest_id FROM outbox ORDER BY id",
            )
            .unwrap();
        stmt.query_map([], |r| {
            let columns: Vec<rusqlite::types::Value> =
                (0..8).map(|i| r.get(i)).collect::<Result<_, _>>()?;
            Ok(format!("{columns:?}"))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }

    /// The writes of a round and of `outbox retry`, each on every row.
    fn write_everything(store: &mut Store, ids: &[i64]) {
        let (first, second) = ids.split_at(ids.len() / 2);
        store.postpone(ids, timestamp(99)).unwrap();
        store.seal_digest(first, "S", timestamp(77)).unwrap();
        store.mark_all_failed(first, "refused", None).unwrap();
        store
            .mark_all_failed(second, "timed out", Some(timestamp(88)))
            .unwrap();
        store.revive_dead(timestamp(55)).unwrap();
    }

    #[test]
    fn delivered_marks_count_before_they_are_folded_into_their_rows() {
        let mut next = numbers(0x2545_f491_4f6c_dd1d);
        const DIGESTS: [&str; 3] = ["D0", "D1", "D2"];
        const STATUSES: [&str; 4] = ["pending", "pending", "dead", "delivered"];
        let mut marked_somewhere = 0;
        for _ in 0..40 {
            let rows: Vec<Row> = (0..(5 + next(25)))
                .map(|_| Row {
                    digest: (next(4) == 0).then(|| DIGESTS[next(3) as usize]),
                    ..row(
                        NOTIFIERS[next(2) as usize],
                        RULES[next(3) as usize],
                        STATUSES[next(4) as usize],
                        next(3) as u32,
                    )
                })
                .collect();
            // Rows sent since, alone or as a digest, at various times; now and then a dead or
            // delivered one (sent by two processes at once).
            let mut sends: Vec<(Vec<usize>, i64)> = Vec::new();
            let order: Vec<usize> = (0..rows.len()).collect();
            for chunk in order.chunks(1 + next(3) as usize) {
                let sendable = chunk
                    .iter()
                    .all(|&i| rows[i].status == "pending" || next(4) == 0);
                if sendable && next(2) == 0 {
                    sends.push((chunk.to_vec(), next(15) as i64));
                }
            }
            // Two copies: one written to before its marks are folded, one after.
            let [(_a, mut store), (_b, mut folded_first)] = [(); 2].map(|()| {
                let (dir, mut store) = store();
                let ids = write(&store.conn, &rows, true);
                store
                    .conn
                    .execute(
                        "UPDATE outbox SET delivered_at = id WHERE status = 'delivered'",
                        [],
                    )
                    .unwrap();
                for (sent, at) in &sends {
                    let sent: Vec<i64> = sent.iter().map(|&i| ids[i]).collect();
                    store.mark_all_delivered(&sent, timestamp(*at)).unwrap();
                }
                (dir, store)
            });
            marked_somewhere += sends.iter().map(|(sent, _)| sent.len()).sum::<usize>();

            let marked = answers(&store, &NOTIFIERS, &RULES, &DIGESTS);
            let to_fold: i64 = store
                .conn
                .query_row(
                    "SELECT COUNT(*) FROM outbox_sent sent JOIN outbox o ON o.id = sent.id
                     WHERE o.status != 'delivered'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(folded_first.fold_sent().unwrap() as i64, to_fold);
            assert_eq!(folded_first.fold_sent().unwrap(), 0);
            assert_eq!(answers(&folded_first, &NOTIFIERS, &RULES, &DIGESTS), marked);

            let ids: Vec<i64> = (1..=rows.len() as i64).collect();
            write_everything(&mut store, &ids);
            store.fold_sent().unwrap();
            write_everything(&mut folded_first, &ids);
            assert_eq!(dump(&store), dump(&folded_first));
        }
        assert!(marked_somewhere > 100, "{marked_somewhere}");
    }

    #[test]
    fn a_fold_writes_each_mark_into_its_row() {
        let (_dir, mut store) = store();
        let mut failed = row("hook", "a", "pending", 2);
        failed.digest = None;
        let ids = write(
            &store.conn,
            &[
                failed,
                row("hook", "a", "pending", 0),
                row("hook", "b", "pending", 0),
            ],
            true,
        );
        store
            .conn
            .execute("UPDATE outbox SET last_error = 'timed out'", [])
            .unwrap();
        store.mark_all_delivered(&ids[..2], timestamp(40)).unwrap();
        // Sent twice (by two processes at once): the first mark stays.
        store.mark_all_delivered(&ids[1..2], timestamp(50)).unwrap();
        assert_eq!(store.fold_sent().unwrap(), 2);
        let rows: Vec<(String, i64, Option<String>, Option<i64>)> = store
            .conn
            .prepare("SELECT status, attempts, last_error, delivered_at FROM outbox ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let delivered = |attempts| ("delivered".to_string(), attempts, None, Some(40));
        assert_eq!(
            rows,
            [
                delivered(3),
                delivered(1),
                ("pending".into(), 0, Some("timed out".into()), None)
            ]
        );
    }

    #[test]
    fn finding_what_is_due_looks_up_lines_through_indexes_only() {
        let (_dir, store) = store();
        // With the planner's statistics of a history of delivered rows and a few pending ones,
        // as `PRAGMA optimize` gathers them, as well as without.
        let mut history: Vec<Row> = (0..300).map(|_| row("hook", "a", "delivered", 1)).collect();
        history.extend((0..20).map(|_| row("hook", "b", "pending", 1)));
        write(&store.conn, &history, true);
        for analyze in [false, true] {
            if analyze {
                store.conn.execute_batch("ANALYZE").unwrap();
            }
            assert_plans_use_indexes(&store);
        }
    }

    fn plan_of(store: &Store, query: &str, values: impl rusqlite::Params) -> Vec<String> {
        let mut stmt = store
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {query}"))
            .unwrap();
        stmt.query_map(values, |r| r.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn assert_plans_use_indexes(store: &Store) {
        for (query, values) in [
            (
                delivery_query(PENDING, &due_condition()),
                params![0, 0, 100],
            ),
            (next_due_query(), params![]),
        ] {
            let plan = plan_of(store, &query, values);
            let lookups = plan
                .iter()
                .filter(|step| {
                    step.contains("USING INDEX outbox_waited_on (notifier=? AND rule=? AND id<?)")
                })
                .count();
            assert_eq!(lookups, 2, "{plan:#?}");
            assert!(
                plan.iter()
                    .all(|step| !step.starts_with("SCAN") && !step.contains("TEMP B-TREE")),
                "{plan:#?}"
            );
        }
        // Cooldowns and rate limits: only the marks not yet folded are read in full.
        for query in [LAST_DELIVERED, SINGLES_DELIVERED_SINCE] {
            let plan = plan_of(store, query, params!["hook", "a"]);
            assert!(
                plan.iter()
                    .all(|step| !step.starts_with("SCAN o") && !step.starts_with("SCAN outbox")),
                "{plan:#?}"
            );
        }
    }

    #[test]
    fn a_backlog_written_before_rows_named_their_rule_keeps_its_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let before = MIGRATIONS
            .iter()
            .position(|step| step.contains("CREATE TABLE outbox_lined"))
            .unwrap();
        let rows = [
            row("hook", "a", "delivered", 1),
            row("hook", "a", "pending", 2),
            row("hook", "a", "pending", 0),
            row("hook", "b", "pending", 0),
            row("console", "a", "dead", 5),
            row("console", "a", "pending", 0),
            Row {
                digest: Some("D"),
                ..row("hook", "c", "pending", 1)
            },
            Row {
                digest: Some("D"),
                ..row("hook", "c", "pending", 1)
            },
            row("hook", "c", "pending", 0),
        ];
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            for step in &MIGRATIONS[..before] {
                conn.execute_batch(step).unwrap();
            }
            conn.pragma_update(None, "user_version", before as i64)
                .unwrap();
            write(&conn, &rows, false);
        }
        let store = Store::open(&path).unwrap();
        let kept: Vec<(i64, String, String, String, i64, Option<String>)> = store
            .conn
            .prepare(
                "SELECT id, notifier, rule, status, attempts, digest_id FROM outbox ORDER BY id",
            )
            .unwrap()
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let expected: Vec<_> = rows
            .iter()
            .enumerate()
            .map(|(index, r)| {
                (
                    index as i64 + 1,
                    r.notifier.to_string(),
                    r.rule.to_string(),
                    r.status.to_string(),
                    i64::from(r.attempts),
                    r.digest.map(str::to_string),
                )
            })
            .collect();
        assert_eq!(kept, expected);
        assert_eq!(due_ids(&store), [2, 4, 6, 7, 8]);
        assert_eq!(first_in_line_by_definition(&store), [2, 4, 6, 7, 8]);
        let violations: i64 = store
            .conn
            .query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(violations, 0);
        assert_eq!(store.last_delivered("hook", "a").unwrap(), None);
        store
            .conn
            .execute("UPDATE outbox SET delivered_at = 5 WHERE id = 1", [])
            .unwrap();
        assert_eq!(
            store.last_delivered("hook", "a").unwrap(),
            Some(timestamp(5))
        );
        assert_eq!(store.last_delivered("hook", "b").unwrap(), None);
    }
}

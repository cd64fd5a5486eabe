//! Digests and rate limits: which of a notifier's fresh alerts go out on their own, which
//! wait, and which are folded into one message. Pure functions over times and row ids; the
//! worker in `notify` reads the outbox, applies the [`Plan`] and sends.
//!
//! - `digest = "1h"`: the first alert opens a window; when it closes, everything collected
//!   for the notifier (all rules) goes out as one message.
//! - `rate_limit = "5/min"`: at most 5 single alerts per window (windows aligned to the
//!   minute); the rest wait for the window's end and go out as one digest.
//! - Quiet hours: what was held goes out as one digest when they end.
//!
//! A "digest" of one alert is sent as that alert, under its own delivery id.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::alert::Alert;
use crate::config::RateLimit;
use crate::scheduler::chrono_duration;

/// Several alerts sent as one message under one delivery id.
#[derive(Debug, Clone, PartialEq)]
pub struct Digest {
    /// See [`digest_id`].
    pub delivery_id: String,
    /// Each alert with its own delivery id, in the order they matched.
    pub alerts: Vec<(Alert, String)>,
    pub created_at: DateTime<Utc>,
}

/// One fresh outbox row: pending, never tried, in no digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fresh {
    pub id: i64,
    pub created_at: DateTime<Utc>,
}

/// How a notifier folds its alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Batching {
    pub digest: Option<Duration>,
    pub rate_limit: Option<RateLimit>,
    /// When the notifier's quiet hours last ended: alerts from before then were held.
    pub quiet_ended_at: Option<DateTime<Utc>>,
}

impl Batching {
    /// Whether alerts of this notifier can be held or folded at all.
    pub fn is_active(&self) -> bool {
        self.digest.is_some() || self.rate_limit.is_some() || self.quiet_ended_at.is_some()
    }
}

/// What to do now with a notifier's fresh alerts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Sent on their own, oldest first.
    pub singles: Vec<i64>,
    /// Sent together as one digest (always two or more).
    pub digest: Vec<i64>,
    /// Wait, without counting an attempt, until `hold_until`.
    pub held: Vec<i64>,
    pub hold_until: Option<DateTime<Utc>>,
}

/// Decides for `fresh` (oldest first) at `now`; `singles_sent` is how many single alerts the
/// notifier has sent in the current rate-limit window.
pub fn plan(batching: &Batching, fresh: &[Fresh], singles_sent: u32, now: DateTime<Utc>) -> Plan {
    let mut plan = Plan::default();
    if fresh.is_empty() {
        return plan;
    }
    if let Some(window) = batching.digest {
        let opened = fresh.iter().map(|f| f.created_at).min().unwrap_or(now);
        let closes = opened + chrono_duration(window);
        if closes > now {
            plan.held = ids(fresh);
            plan.hold_until = Some(closes);
        } else {
            plan.fold(ids(fresh));
        }
        return plan;
    }
    // Alerts from before the latest release (the end of quiet hours, the start of this rate
    // window) were held back: they go out together.
    let window = batching.rate_limit.map(|limit| rate_window(limit, now));
    let released = [batching.quiet_ended_at, window.map(|(start, _)| start)]
        .into_iter()
        .flatten()
        .max();
    let (held, current): (Vec<Fresh>, Vec<Fresh>) = fresh
        .iter()
        .partition(|f| released.is_some_and(|at| f.created_at < at));
    plan.fold(ids(&held));
    match (batching.rate_limit, window) {
        (Some(limit), Some((_, end))) => {
            let used = singles_sent as usize + plan.singles.len();
            let room = (limit.count as usize)
                .saturating_sub(used)
                .min(current.len());
            plan.singles.extend(current[..room].iter().map(|f| f.id));
            if room < current.len() {
                plan.held = ids(&current[room..]);
                plan.hold_until = Some(end);
            }
        }
        _ => plan.singles.extend(ids(&current)),
    }
    plan
}

impl Plan {
    /// Two or more alerts become the digest; a lone one goes on its own.
    fn fold(&mut self, ids: Vec<i64>) {
        if ids.len() >= 2 {
            self.digest = ids;
        } else {
            self.singles.extend(ids);
        }
    }
}

fn ids(fresh: &[Fresh]) -> Vec<i64> {
    fresh.iter().map(|f| f.id).collect()
}

/// The rate-limit window around `now`: `[start, end)`, aligned to multiples of its length
/// since the Unix epoch.
pub fn rate_window(limit: RateLimit, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let length = limit.per.as_secs().max(1) as i64;
    let start = now.timestamp().div_euclid(length) * length;
    let at = |secs| DateTime::<Utc>::from_timestamp(secs, 0).unwrap_or(now);
    (at(start), at(start + length))
}

/// A digest's delivery id, derived from its members' delivery ids: the same members give the
/// same id, so a digest resent after a crash or a failure can be dropped as a repeat.
pub fn digest_id<'a>(member_ids: impl IntoIterator<Item = &'a str>) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for id in member_ids {
        hasher.update(id.as_bytes());
        hasher.update([0]);
    }
    format!("digest-{}", hex::encode(&hasher.finalize()[..16]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    fn fresh(times: &[i64]) -> Vec<Fresh> {
        times
            .iter()
            .enumerate()
            .map(|(i, &t)| Fresh {
                id: i as i64 + 1,
                created_at: at(t),
            })
            .collect()
    }

    const HOUR: Duration = Duration::from_secs(3600);

    fn digest() -> Batching {
        Batching {
            digest: Some(HOUR),
            ..Batching::default()
        }
    }

    #[test]
    fn digest_window_opens_with_the_first_alert_and_holds_until_it_closes() {
        let p = plan(&digest(), &fresh(&[0, 600, 1200]), 0, at(1800));
        assert_eq!(p.held, vec![1, 2, 3]);
        assert_eq!(p.hold_until, Some(at(3600)));
        assert!(p.singles.is_empty() && p.digest.is_empty());
    }

    #[test]
    fn closed_digest_window_sends_everything_as_one_digest() {
        let p = plan(&digest(), &fresh(&[0, 600, 1200]), 0, at(3600));
        assert_eq!(p.digest, vec![1, 2, 3]);
        assert!(p.singles.is_empty() && p.held.is_empty());
    }

    #[test]
    fn digest_of_one_alert_is_sent_as_that_alert() {
        let p = plan(&digest(), &fresh(&[0]), 0, at(4000));
        assert_eq!(p.singles, vec![1]);
        assert!(p.digest.is_empty());
        assert_eq!(plan(&digest(), &[], 0, at(0)), Plan::default());
    }

    fn limited(count: u32) -> Batching {
        Batching {
            rate_limit: Some(RateLimit {
                count,
                per: Duration::from_secs(60),
            }),
            ..Batching::default()
        }
    }

    #[test]
    fn rate_limit_sends_up_to_the_limit_and_holds_the_rest_until_the_window_ends() {
        // 1_800_000_000 is a multiple of 60: the window is [at(0), at(60)).
        let p = plan(&limited(2), &fresh(&[1, 2, 3, 4, 5]), 0, at(10));
        assert_eq!(p.singles, vec![1, 2]);
        assert_eq!(p.held, vec![3, 4, 5]);
        assert_eq!(p.hold_until, Some(at(60)));
        // Singles already sent this window count.
        let p = plan(&limited(2), &fresh(&[20]), 2, at(30));
        assert!(p.singles.is_empty());
        assert_eq!(p.held, vec![1]);
    }

    #[test]
    fn alerts_held_from_the_last_window_go_out_as_one_digest() {
        // Three held from the last window, two new ones in this one.
        let p = plan(&limited(2), &fresh(&[3, 4, 5, 61, 62]), 0, at(62));
        assert_eq!(p.digest, vec![1, 2, 3]);
        assert_eq!(p.singles, vec![4, 5]);
        // One held alert goes on its own and takes a place in the new window.
        let p = plan(&limited(2), &fresh(&[5, 61, 62]), 0, at(62));
        assert_eq!(p.singles, vec![1, 2]);
        assert_eq!(p.held, vec![3]);
        assert_eq!(p.hold_until, Some(at(120)));
    }

    #[test]
    fn alerts_held_by_quiet_hours_go_out_as_one_digest() {
        let quiet = Batching {
            quiet_ended_at: Some(at(100)),
            ..Batching::default()
        };
        let p = plan(&quiet, &fresh(&[10, 20, 30, 150]), 0, at(160));
        assert_eq!(p.digest, vec![1, 2, 3]);
        assert_eq!(p.singles, vec![4]);
        // A single held alert is just sent.
        let p = plan(&quiet, &fresh(&[10]), 0, at(160));
        assert_eq!(p.singles, vec![1]);
        assert!(!Batching::default().is_active() && quiet.is_active());
    }

    #[test]
    fn rate_windows_are_aligned_to_their_length() {
        let limit = RateLimit {
            count: 1,
            per: Duration::from_secs(3600),
        };
        let (start, end) = rate_window(limit, at(3600 * 5 + 17));
        assert_eq!(start.timestamp() % 3600, 0);
        assert_eq!(end - start, chrono::Duration::hours(1));
        assert!(start <= at(3600 * 5 + 17) && at(3600 * 5 + 17) < end);
    }

    #[test]
    fn digest_id_depends_on_the_members_only() {
        let a = digest_id(["d1", "d2"]);
        assert_eq!(a, digest_id(["d1", "d2"]));
        assert_ne!(a, digest_id(["d1", "d3"]));
        assert_ne!(a, digest_id(["d1d2"]));
        assert!(a.starts_with("digest-") && a.len() == "digest-".len() + 32);
    }
}

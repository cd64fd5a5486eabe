//! When each feed is due.
//!
//! Every feed's `next_poll_at` lives in SQLite in wall-clock UTC; the daemon keeps one loop that
//! sleeps until the earliest one (see `daemon`). This module holds the pure part: given a
//! schedule and what happened on the last poll, when is the next one. Cron schedules go
//! through croner in a named time zone so that `0 9 * * *` stays at 09:00 across DST changes.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;

/// The longest wait between two polls of a failing feed.
pub const MAX_BACKOFF: Duration = Duration::from_secs(24 * 60 * 60);

/// How often a feed is polled.
#[derive(Clone)]
pub enum Schedule {
    Interval(Duration),
    Cron {
        expression: String,
        tz: Tz,
        cron: Box<Cron>,
    },
}

impl Schedule {
    /// A cron schedule from a 5-field (minutes) or 6-field (seconds) expression.
    pub fn cron(expression: &str, tz: Tz) -> Result<Schedule, String> {
        let cron = Cron::from_str(expression).map_err(|e| e.to_string())?;
        // A pattern such as `0 0 30 2 *` parses but never fires; say so now, not never.
        cron.find_next_occurrence(&Utc::now().with_timezone(&tz), false)
            .map_err(|e| format!("it never fires ({e})"))?;
        Ok(Schedule::Cron {
            expression: expression.to_string(),
            tz,
            cron: Box::new(cron),
        })
    }

    /// The next poll strictly after `after`, for a feed that was polled successfully.
    pub fn next_after(&self, after: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Schedule::Interval(every) => after + chrono_duration(*every),
            Schedule::Cron { cron, tz, .. } => cron
                .find_next_occurrence(&after.with_timezone(tz), false)
                .map(|t| t.with_timezone(&Utc))
                // Validated at load time to fire at least once; fall back to hourly all the same.
                .unwrap_or(after + chrono::Duration::hours(1)),
        }
    }

    /// The typical gap between polls, used to spread first polls and to size backoff.
    pub fn period(&self, now: DateTime<Utc>) -> Duration {
        match self {
            Schedule::Interval(every) => *every,
            Schedule::Cron { .. } => {
                let first = self.next_after(now);
                (self.next_after(first) - first)
                    .to_std()
                    .unwrap_or(Duration::from_secs(3600))
            }
        }
    }
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Schedule) -> bool {
        match (self, other) {
            (Schedule::Interval(a), Schedule::Interval(b)) => a == b,
            (
                Schedule::Cron {
                    expression: a,
                    tz: ta,
                    ..
                },
                Schedule::Cron {
                    expression: b,
                    tz: tb,
                    ..
                },
            ) => a == b && ta == tb,
            _ => false,
        }
    }
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Interval(d) => write!(f, "every {}", humantime::format_duration(*d)),
            Schedule::Cron { expression, tz, .. } => write!(f, "cron `{expression}` ({tz})"),
        }
    }
}

/// When to try a feed again after `failures` consecutive failures: doubling from the feed's own
/// period, capped at [`MAX_BACKOFF`], with up to 10% jitter (`jitter` in 0..1) so that feeds that
/// failed together do not retry together. A failing feed is never given up on.
pub fn backoff(period: Duration, failures: u32, jitter: f64) -> Duration {
    let exponent = failures.saturating_sub(1).min(16);
    let base = period
        .max(Duration::from_secs(60))
        .saturating_mul(1 << exponent)
        .min(MAX_BACKOFF);
    base.mul_f64(1.0 + 0.1 * jitter.clamp(0.0, 1.0))
        .min(MAX_BACKOFF)
}

/// A cheap, dependency-free number in 0..1 for jitter: spreading polls needs no cryptography.
/// The same seed gives the same number, so a feed keeps its place in a spread however often
/// the scheduler looks at it (a fresh random hasher each time moved every unpolled feed to a
/// new slot at every look, and most of them to the front).
pub fn jitter_fraction(seed: &str) -> f64 {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(seed);
    (hash % 10_000) as f64 / 10_000.0
}

pub fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn jitter_is_the_same_for_a_seed_and_spread_across_seeds() {
        assert_eq!(
            jitter_fraction("https://a.example/feed"),
            jitter_fraction("https://a.example/feed")
        );
        let spread: Vec<f64> = (0..1000)
            .map(|i| jitter_fraction(&format!("https://site{i}.example/feed")))
            .collect();
        let first_half = spread.iter().filter(|&&j| j < 0.5).count();
        assert!(
            (400..600).contains(&first_half),
            "{first_half} of 1000 under 0.5"
        );
    }

    #[test]
    fn interval_adds_the_period() {
        let s = Schedule::Interval(Duration::from_secs(900));
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
        assert_eq!(
            s.next_after(t),
            Utc.with_ymd_and_hms(2026, 1, 1, 12, 15, 0).unwrap()
        );
    }

    #[test]
    fn five_field_cron_is_accepted() {
        let s = Schedule::cron("*/15 * * * *", Tz::UTC).unwrap();
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 12, 7, 30).unwrap();
        assert_eq!(
            s.next_after(t),
            Utc.with_ymd_and_hms(2026, 1, 1, 12, 15, 0).unwrap()
        );
        assert_eq!(s.period(t), Duration::from_secs(900));
    }

    #[test]
    fn cron_follows_daylight_saving_time() {
        let s = Schedule::cron("0 9 * * *", chrono_tz::Europe::Berlin).unwrap();
        // 09:00 CET is 08:00 UTC before the March change, 09:00 CEST is 07:00 UTC after.
        let before = Utc.with_ymd_and_hms(2026, 3, 27, 10, 0, 0).unwrap();
        assert_eq!(
            s.next_after(before),
            Utc.with_ymd_and_hms(2026, 3, 28, 8, 0, 0).unwrap()
        );
        let after = Utc.with_ymd_and_hms(2026, 3, 28, 10, 0, 0).unwrap();
        assert_eq!(
            s.next_after(after),
            Utc.with_ymd_and_hms(2026, 3, 29, 7, 0, 0).unwrap()
        );
    }

    #[test]
    fn bad_cron_says_why() {
        let err = Schedule::cron("* * *", Tz::UTC).unwrap_err();
        assert!(err.contains("field"), "{err}");
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = Duration::from_secs(600);
        assert_eq!(backoff(p, 1, 0.0), Duration::from_secs(600));
        assert_eq!(backoff(p, 2, 0.0), Duration::from_secs(1200));
        assert_eq!(backoff(p, 4, 0.0), Duration::from_secs(4800));
        assert_eq!(backoff(p, 40, 1.0), MAX_BACKOFF);
        assert!(backoff(p, 2, 1.0) > backoff(p, 2, 0.0));
    }
}

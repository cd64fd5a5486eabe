//! Quiet hours: a daily window in which a notifier sends nothing. Alerts that fall due inside
//! it wait, without counting as failed attempts, and go out as one digest when it ends.

use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::config::{QuietHours, QuietZone};

/// When the quiet window around `now` ends, or `None` if `now` is outside it.
pub fn quiet_until(quiet: &QuietHours, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match &quiet.zone {
        QuietZone::Local => end_in(&chrono::Local, quiet, now),
        QuietZone::Named(tz) => end_in(tz, quiet, now),
    }
}

/// When the latest quiet window that is over by `now` ended: alerts from before then were
/// held by it.
pub fn last_ended(quiet: &QuietHours, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match &quiet.zone {
        QuietZone::Local => last_end_in(&chrono::Local, quiet, now),
        QuietZone::Named(tz) => last_end_in(tz, quiet, now),
    }
}

fn last_end_in<Z: TimeZone>(
    zone: &Z,
    quiet: &QuietHours,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let today = now.with_timezone(zone).date_naive();
    [today, today - Duration::days(1), today - Duration::days(2)]
        .into_iter()
        .filter_map(|day| local_time(zone, day, quiet.end))
        .find(|&end| end <= now)
}

/// `time` on `day` in `zone`; an hour later when it falls in a DST gap.
fn local_time<Z: TimeZone>(
    zone: &Z,
    day: chrono::NaiveDate,
    time: chrono::NaiveTime,
) -> Option<DateTime<Utc>> {
    zone.from_local_datetime(&day.and_time(time))
        .earliest()
        .or_else(|| {
            zone.from_local_datetime(&day.and_time(time + Duration::hours(1)))
                .earliest()
        })
        .map(|t| t.with_timezone(&Utc))
}

fn end_in<Z: TimeZone>(zone: &Z, quiet: &QuietHours, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let local = now.with_timezone(zone);
    let time = local.time();
    let inside = if quiet.start <= quiet.end {
        time >= quiet.start && time < quiet.end
    } else {
        // A window across midnight, such as 22:00-07:00.
        time >= quiet.start || time < quiet.end
    };
    if !inside {
        return None;
    }
    let day = if time < quiet.end {
        local.date_naive()
    } else {
        local.date_naive() + Duration::days(1)
    };
    local_time(zone, day, quiet.end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_quiet_window as parse_window;

    fn quiet(window: &str, tz: chrono_tz::Tz) -> QuietHours {
        let (start, end) = parse_window(window).unwrap();
        QuietHours {
            start,
            end,
            zone: QuietZone::Named(tz),
        }
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn window_across_midnight_holds_until_morning() {
        let q = quiet("22:00-07:00", chrono_tz::UTC);
        assert_eq!(
            q_end(&q, "2026-11-27T23:30:00Z"),
            Some(at("2026-11-28T07:00:00Z"))
        );
        assert_eq!(
            q_end(&q, "2026-11-28T03:00:00Z"),
            Some(at("2026-11-28T07:00:00Z"))
        );
        assert_eq!(q_end(&q, "2026-11-28T07:00:00Z"), None);
        assert_eq!(q_end(&q, "2026-11-28T12:00:00Z"), None);
    }

    #[test]
    fn window_is_read_in_its_time_zone() {
        // 22:30 UTC is 23:30 in Berlin (winter): quiet until 07:00 Berlin = 06:00 UTC.
        let q = quiet("23:00-07:00", chrono_tz::Europe::Berlin);
        assert_eq!(
            q_end(&q, "2026-11-27T22:30:00Z"),
            Some(at("2026-11-28T06:00:00Z"))
        );
        assert_eq!(q_end(&q, "2026-11-27T21:30:00Z"), None);
    }

    #[test]
    fn daytime_window_and_bad_windows() {
        let q = quiet("12:00-13:00", chrono_tz::UTC);
        assert_eq!(
            q_end(&q, "2026-11-27T12:10:00Z"),
            Some(at("2026-11-27T13:00:00Z"))
        );
        assert_eq!(q_end(&q, "2026-11-27T13:10:00Z"), None);
        assert_eq!(parse_window("22:00"), None);
        assert_eq!(parse_window("25:00-07:00"), None);
        assert_eq!(parse_window("07:00-07:00"), None);
    }

    #[test]
    fn last_end_is_the_latest_window_end_so_far() {
        let q = quiet("22:00-07:00", chrono_tz::UTC);
        assert_eq!(
            last_ended(&q, at("2026-11-28T12:00:00Z")),
            Some(at("2026-11-28T07:00:00Z"))
        );
        assert_eq!(
            last_ended(&q, at("2026-11-28T07:00:00Z")),
            Some(at("2026-11-28T07:00:00Z"))
        );
        assert_eq!(
            last_ended(&q, at("2026-11-28T06:00:00Z")),
            Some(at("2026-11-27T07:00:00Z"))
        );
    }

    fn q_end(q: &QuietHours, now: &str) -> Option<DateTime<Utc>> {
        quiet_until(q, at(now))
    }
}

//! Dates as real feeds write them -> UTC.
//!
//! RFC 3339 and RFC 2822 first; then a lenient reading of what feeds actually publish: ISO dates
//! without a zone (taken as UTC, as feedparser does), `+00:0` offsets, named zones such as EST,
//! and word orders like `Sat, Dec 16 2023 02:02:33 PM`.

use std::sync::LazyLock;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};
use regex::Regex;

/// Reads a feed date; `None` when no date can be made of it.
pub fn parse_date(raw: &str) -> Option<DateTime<Utc>> {
    let text = raw.trim();
    if text.is_empty() {
        return None;
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = DateTime::parse_from_rfc2822(text) {
        return Some(t.with_timezone(&Utc));
    }
    iso_date(text).or_else(|| worded_date(text))
}

static ISO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?ix)^(\d{4})(?:-?(\d{2})(?:-?(\d{2}))?)?
        (?:[T\s]+(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,]\d+)?)?)?
        \s*(z|[a-z]{1,5}|[+-]\d{1,2}(?::?\d{0,2})?)?$",
    )
    .expect("static pattern")
});

/// `2003-12-13T18:30:02`, `2003-12-13 18:30`, `20031213T183002+0100`, `2003-12`.
fn iso_date(text: &str) -> Option<DateTime<Utc>> {
    let c = ISO.captures(text)?;
    let number = |i: usize, default: u32| -> Option<u32> {
        c.get(i).map_or(Some(default), |m| m.as_str().parse().ok())
    };
    let year: i32 = c.get(1)?.as_str().parse().ok()?;
    let date = NaiveDate::from_ymd_opt(year, number(2, 1)?, number(3, 1)?)?;
    let time = date.and_hms_opt(number(4, 0)?, number(5, 0)?, number(6, 0)?)?;
    let offset = match c.get(7) {
        Some(zone) => zone_offset(zone.as_str())?,
        None => 0,
    };
    in_utc(time, offset)
}

static TIME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(\d{1,2}):(\d{2})(?::(\d{2}))?(?:[.,]\d+)?(am|pm)?$").expect("static pattern")
});

/// Any order of weekday, day, month name, year, time, AM/PM and zone.
fn worded_date(text: &str) -> Option<DateTime<Utc>> {
    let (mut day, mut month, mut year) = (None, None, None);
    let (mut hms, mut offset, mut pm) = ((0, 0, 0), 0, None);
    let cleaned = text.replace([',', '/'], " ");
    for token in cleaned.split_whitespace() {
        let lower = token.to_ascii_lowercase();
        let lower = lower.trim_end_matches('.');
        if let Some(c) = TIME.captures(lower) {
            let part = |i: usize| c.get(i).map_or(Some(0), |m| m.as_str().parse::<u32>().ok());
            hms = (part(1)?, part(2)?, part(3)?);
            if let Some(ampm) = c.get(4) {
                pm = Some(ampm.as_str() == "pm");
            }
        } else if lower == "am" || lower == "pm" {
            pm = Some(lower == "pm");
        } else if let Some(m) = month_number(lower) {
            month = Some(m);
        } else if lower.chars().all(|c| c.is_ascii_digit()) {
            let n: u32 = lower.parse().ok()?;
            if lower.len() == 4 {
                year = Some(n as i32);
            } else if day.is_none() && (1..=31).contains(&n) {
                day = Some(n);
            } else if lower.len() == 2 {
                year = Some(2000 + n as i32);
            } else {
                return None;
            }
        } else if lower.starts_with(['+', '-']) || lower.len() <= 5 {
            // A zone: an offset, or a name; a weekday is neither and is skipped.
            if weekday(lower) {
                continue;
            }
            offset = zone_offset(lower)?;
        } else if !weekday(lower) {
            return None;
        }
    }
    let (mut hour, minute, second) = hms;
    match pm {
        Some(true) if hour < 12 => hour += 12,
        Some(false) if hour == 12 => hour = 0,
        _ => {}
    }
    let date = NaiveDate::from_ymd_opt(year?, month?, day?)?;
    in_utc(date.and_hms_opt(hour, minute, second)?, offset)
}

fn in_utc(local: NaiveDateTime, offset_seconds: i32) -> Option<DateTime<Utc>> {
    let zone = FixedOffset::east_opt(offset_seconds)?;
    Some(
        zone.from_local_datetime(&local)
            .single()?
            .with_timezone(&Utc),
    )
}

fn month_number(word: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    if word.len() < 3 || !word.chars().all(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    let position = MONTHS.iter().position(|m| word.starts_with(m))?;
    Some(position as u32 + 1)
}

fn weekday(word: &str) -> bool {
    ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .iter()
        .any(|d| {
            word.len() >= 3 && word.starts_with(d) && word.chars().all(|c| c.is_ascii_alphabetic())
        })
}

/// Named zones that feeds write, in minutes east of UTC. Where a name is used for more than one
/// zone, the reading news feeds mean most often is taken: `CST` is US Central, `IST` India.
const ZONES: &[(&str, i32)] = &[
    ("z", 0),
    ("ut", 0),
    ("utc", 0),
    ("gmt", 0),
    ("wet", 0),
    ("west", 60),
    ("bst", 60),
    ("ist", 330),
    ("cet", 60),
    ("met", 60),
    ("mez", 60),
    ("cest", 120),
    ("mest", 120),
    ("mesz", 120),
    ("eet", 120),
    ("eest", 180),
    ("msk", 180),
    ("msd", 240),
    ("wat", 60),
    ("cat", 120),
    ("sast", 120),
    ("eat", 180),
    ("gst", 240),
    ("pkt", 300),
    ("npt", 345),
    ("ict", 420),
    ("wib", 420),
    ("hkt", 480),
    ("sgt", 480),
    ("awst", 480),
    ("pht", 480),
    ("jst", 540),
    ("kst", 540),
    ("acst", 570),
    ("acdt", 630),
    ("aest", 600),
    ("aedt", 660),
    ("nzst", 720),
    ("nzdt", 780),
    ("hst", -600),
    ("akst", -540),
    ("akdt", -480),
    ("pst", -480),
    ("pdt", -420),
    ("pt", -480),
    ("mst", -420),
    ("mdt", -360),
    ("mt", -420),
    ("cst", -360),
    ("cdt", -300),
    ("ct", -360),
    ("est", -300),
    ("edt", -240),
    ("et", -300),
    ("ast", -240),
    ("adt", -180),
    ("at", -240),
    ("nst", -210),
    ("ndt", -150),
    ("brt", -180),
    ("art", -180),
];

/// Seconds east of UTC for `Z`, `GMT`, `EST`, `AKST`, `+0100`, `+01:00`, `+00:0`, `-5`.
fn zone_offset(zone: &str) -> Option<i32> {
    let lower = zone.to_ascii_lowercase();
    if let Some((_, minutes)) = ZONES.iter().find(|(name, _)| *name == lower) {
        return Some(minutes * 60);
    }
    let (sign, digits) = match lower.as_bytes().first()? {
        b'+' => (1, &lower[1..]),
        b'-' => (-1, &lower[1..]),
        _ => return None,
    };
    // Only ASCII digits can be split by byte position below.
    if !digits.bytes().all(|b| b.is_ascii_digit() || b == b':') {
        return None;
    }
    let (h, m) = match digits.split_once(':') {
        Some((h, m)) => (h, m),
        None if digits.len() > 2 => digits.split_at(digits.len() - 2),
        None => (digits, ""),
    };
    let h: i32 = h.parse().ok()?;
    let m: i32 = if m.is_empty() { 0 } else { m.parse().ok()? };
    (h <= 14 && m < 60).then_some(sign * (h * 3600 + m * 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> String {
        parse_date(text)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_else(|| "none".into())
    }

    #[test]
    fn standard_formats_are_read() {
        assert_eq!(utc("2003-12-13T18:30:02Z"), "2003-12-13T18:30:02Z");
        assert_eq!(utc("2003-12-13T18:30:02+01:00"), "2003-12-13T17:30:02Z");
        assert_eq!(utc("Sat, 13 Dec 2003 18:30:02 GMT"), "2003-12-13T18:30:02Z");
    }

    #[test]
    fn broken_formats_real_feeds_use_are_read_in_utc() {
        assert_eq!(utc("Sat, Dec 16 2023 02:02:33 PM"), "2023-12-16T14:02:33Z");
        assert_eq!(
            utc("Tue, 13 Jun 2017 12:18:00 +09:0"),
            "2017-06-13T03:18:00Z"
        );
        assert_eq!(utc("2003-12-13T18:30:02"), "2003-12-13T18:30:02Z");
        assert_eq!(utc("2003-12-13 18:30"), "2003-12-13T18:30:00Z");
        assert_eq!(utc("Mon, 10 Jun 2003 04:00:00 EST"), "2003-06-10T09:00:00Z");
        assert_eq!(utc("June 10, 2003 4:00 pm EDT"), "2003-06-10T20:00:00Z");
        assert_eq!(utc("2003-12"), "2003-12-01T00:00:00Z");
    }

    #[test]
    fn named_zones_beyond_the_us_and_europe_are_read() {
        assert_eq!(
            utc("Tue, 10 Jun 2003 04:00:00 AKST"),
            "2003-06-10T13:00:00Z"
        );
        assert_eq!(
            utc("Tue, 10 Jun 2003 04:00:00 AEST"),
            "2003-06-09T18:00:00Z"
        );
        assert_eq!(utc("Tue, 10 Jun 2003 04:00:00 IST"), "2003-06-09T22:30:00Z");
        assert_eq!(utc("Tue, 10 Jun 2003 04:00:00 NST"), "2003-06-10T07:30:00Z");
        assert_eq!(utc("Tue, 10 Jun 2003 04:00:00 MSK"), "2003-06-10T01:00:00Z");
        assert_eq!(utc("2003-06-10 04:00 NZDT"), "2003-06-09T15:00:00Z");
        assert_eq!(utc("Tue, 10 Jun 2003 04:00:00 XYZ"), "none");
    }

    #[test]
    fn an_offset_with_other_characters_is_no_zone_and_no_panic() {
        // Found by fuzzing: the offset was cut inside a multi-byte letter.
        assert_eq!(utc("Tue, 10 Jun 2003 04:00:00 +0000\u{100a}"), "none");
        assert_eq!(utc("Tue, 10 Jun 2003 04:00:00 +٠١٠٠"), "none");
    }

    #[test]
    fn text_that_is_no_date_gives_none() {
        assert_eq!(utc("yesterday"), "none");
        assert_eq!(utc("2003-13-45"), "none");
        assert_eq!(utc(""), "none");
    }
}

//! What several subcommands print the same way: `--since` values, tables that fit the
//! terminal, JSON, and the usage error that exits with status 2.

use std::io::IsTerminal;

use anyhow::Result;
use chrono::{DateTime, NaiveDate, Utc};

/// A mistake in what the user asked for (as opposed to something failing while doing it);
/// `main` exits with status 2 for it, as clap does for a bad flag.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// `--since 7d`, `--since 36h` (a span back from now) or `--since 2026-11-01` (a UTC date).
pub fn parse_since(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(date.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.with_timezone(&Utc));
    }
    let span = humantime::parse_duration(text)
        .map_err(|e| format!("`{text}` is neither a span like 7d or 12h nor a date: {e}"))?;
    chrono::Duration::from_std(span)
        .ok()
        .and_then(|span| Utc::now().checked_sub_signed(span))
        .ok_or_else(|| format!("`{text}` reaches back further than dates go"))
}

pub fn print_json(value: &serde_json::Value) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The width tables are cut to: the terminal's, or 100 columns when output is not a terminal.
pub fn width() -> usize {
    if std::io::stdout().is_terminal() {
        let (_, columns) = console::Term::stdout().size();
        usize::from(columns).max(40)
    } else {
        100
    }
}

/// `text` on one line, cut to `max` characters with an ellipsis.
pub fn fit(text: &str, max: usize) -> String {
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= max {
        return line;
    }
    let mut cut: String = line.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// A progress bar on standard error when it is a terminal, hidden otherwise (logs and pipes get
/// plain lines instead). `template` is indicatif's, e.g. `{bar:30} {pos}/{len} {msg}`.
pub fn progress_bar(len: usize, template: &str) -> indicatif::ProgressBar {
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_spans_and_dates() {
        let week = parse_since("7d").unwrap();
        let age = Utc::now() - week;
        assert!((age.num_seconds() - 7 * 86_400).abs() < 5);
        assert_eq!(
            rfc3339(parse_since("2026-11-01").unwrap()),
            "2026-11-01T00:00:00Z"
        );
        assert!(parse_since("last tuesday").is_err());
    }

    #[test]
    fn fit_cuts_long_text_to_the_width() {
        assert_eq!(fit("a  b\nc", 10), "a b c");
        assert_eq!(fit("abcdefghij", 5), "abcd…");
    }
}

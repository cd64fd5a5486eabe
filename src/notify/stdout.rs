//! One readable line per alert on standard output: good for a terminal and for the journal.

use std::io::Write;

use super::DeliveryError;
use super::digest::Digest;
use crate::alert::Alert;

pub fn send(alert: &Alert) -> Result<(), DeliveryError> {
    write(&render(alert))
}

/// A heading line, then each alert's line indented under it.
pub fn send_digest(digest: &Digest) -> Result<(), DeliveryError> {
    write(&render_digest(digest))
}

fn write(text: &str) -> Result<(), DeliveryError> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .map_err(|e| DeliveryError::retryable(format!("cannot write to stdout: {e}")))
}

pub fn render_digest(digest: &Digest) -> String {
    let mut text = super::formats::digest_heading(digest);
    for (alert, _) in &digest.alerts {
        text.push_str("\n  ");
        text.push_str(&render(alert));
    }
    text
}

/// `[rule] Title — https://link (Feed; matched: a, b) (+2 outlets)`, on one line whatever the
/// title holds.
pub fn render(alert: &Alert) -> String {
    let one_line = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut line = format!("[{}] {}", alert.rule, one_line(alert.title()));
    if let Some(link) = &alert.article.link {
        line.push_str(" — ");
        line.push_str(&one_line(link));
    }
    let feed = if alert.feed.title.is_empty() {
        &alert.feed.name
    } else {
        &alert.feed.title
    };
    line.push_str(&format!(" ({}", one_line(feed)));
    if !alert.matched.is_empty() {
        line.push_str(&format!("; matched: {}", alert.matched.join(", ")));
    }
    line.push(')');
    line.push_str(&super::formats::more_outlets(alert));
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_a_heading_and_one_indented_line_per_alert() {
        let now = chrono::Utc::now();
        let mut second = crate::notify::test_alert(now);
        second.rule = "other".into();
        second.article.title = "Second\nstory".into();
        let digest = Digest {
            delivery_id: "digest-x".into(),
            alerts: vec![
                (crate::notify::test_alert(now), "a".into()),
                (second, "b".into()),
            ],
            created_at: now,
        };
        let text = render_digest(&digest);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[0], "feedwatch: 2 new matches");
        assert!(
            lines[1].starts_with("  [feedwatch test] Test alert"),
            "{text}"
        );
        assert!(
            lines[2].starts_with("  [other] Second story — https://"),
            "{text}"
        );
    }
}

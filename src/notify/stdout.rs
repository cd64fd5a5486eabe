//! One readable line per alert on standard output: good for a terminal and for the journal.

use std::io::Write;

use super::DeliveryError;
use crate::alert::Alert;

pub fn send(alert: &Alert) -> Result<(), DeliveryError> {
    let line = render(alert);
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|e| DeliveryError::retryable(format!("cannot write to stdout: {e}")))
}

/// `[rule] Title — https://link (Feed; matched: a, b)`, on one line whatever the title holds.
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
    line
}

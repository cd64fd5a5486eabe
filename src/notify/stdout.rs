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

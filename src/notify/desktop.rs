//! Desktop notifications through the user's session bus (notify-rust over zbus).
//!
//! A system service has no session bus: that is a retryable failure recorded in the outbox,
//! never a crash. Run feedwatch as a `systemctl --user` service for desktop alerts.
//!
//! When the notification server supports actions, an alert with a link gets a default action
//! (clicking the notification) that opens the link with the notifier's `open_with` program.
//! The click is awaited by a detached task for at most [`ACTION_WAIT`], never by the delivery
//! worker; a process that exits (`run --once`) stops waiting.

use std::time::Duration;

use super::DeliveryError;
use super::digest::Digest;
use crate::alert::Alert;
use crate::config::{Desktop, Urgency};

/// A notification daemon that does not answer must not stall the outbox.
const TIMEOUT: Duration = Duration::from_secs(10);
/// How long a click on a notification still opens its link.
pub const ACTION_WAIT: Duration = Duration::from_secs(60 * 60);
/// From this many alerts of one rule in one round, they go out as one notification.
pub const GROUP_AT: usize = 3;
/// Titles listed in a grouped notification; the rest are counted.
const GROUP_TITLES: usize = 5;

pub async fn send(alert: &Alert, urgency: Urgency, desktop: &Desktop) -> Result<(), DeliveryError> {
    let mut body = escape_markup(alert.title());
    if let Some(link) = &alert.article.link {
        body.push('\n');
        body.push_str(&escape_markup(link));
    }
    show(
        &format!("feedwatch: {}", alert.rule),
        &body,
        urgency,
        alert.article.link.as_deref().filter(|l| is_web_link(l)),
        desktop,
    )
    .await
}

/// One notification for many alerts of `rule`: "12 new matches for ukraine" and the first
/// few titles.
pub async fn send_group(
    rule: &str,
    alerts: &[&Alert],
    urgency: Urgency,
    desktop: &Desktop,
) -> Result<(), DeliveryError> {
    let titles: Vec<String> = alerts.iter().map(|a| escape_markup(a.title())).collect();
    show(
        &format!("feedwatch: {} new matches for {rule}", alerts.len()),
        &bullets(&titles),
        urgency,
        None,
        desktop,
    )
    .await
}

/// One notification for a digest: "N new matches" and the first few rules and titles.
pub async fn send_digest(
    digest: &Digest,
    urgency: Urgency,
    desktop: &Desktop,
) -> Result<(), DeliveryError> {
    show(
        &super::formats::digest_heading(digest),
        &digest_body(digest),
        urgency,
        None,
        desktop,
    )
    .await
}

fn digest_body(digest: &Digest) -> String {
    let lines: Vec<String> = digest
        .alerts
        .iter()
        .map(|(a, _)| {
            let outlets = super::formats::more_outlets(a);
            format!(
                "{}: {}{outlets}",
                escape_markup(&a.rule),
                escape_markup(a.title())
            )
        })
        .collect();
    bullets(&lines)
}

fn bullets(lines: &[String]) -> String {
    let mut out: Vec<String> = lines
        .iter()
        .take(GROUP_TITLES)
        .map(|line| format!("• {line}"))
        .collect();
    if lines.len() > GROUP_TITLES {
        out.push(format!("… and {} more", lines.len() - GROUP_TITLES));
    }
    out.join("\n")
}

async fn show(
    summary: &str,
    body: &str,
    urgency: Urgency,
    link: Option<&str>,
    desktop: &Desktop,
) -> Result<(), DeliveryError> {
    let mut notification = notify_rust::Notification::new();
    notification
        .appname("feedwatch")
        .summary(summary)
        .body(body)
        .urgency(match urgency {
            Urgency::Low => notify_rust::Urgency::Low,
            Urgency::Normal => notify_rust::Urgency::Normal,
            Urgency::Critical => notify_rust::Urgency::Critical,
        });
    let link = match link {
        Some(link) if supports_actions().await => Some(link.to_string()),
        _ => None,
    };
    if link.is_some() {
        notification.action("default", "Open");
    }
    match tokio::time::timeout(TIMEOUT, notification.show_async()).await {
        Ok(Ok(handle)) => {
            if let Some(link) = link {
                tokio::spawn(open_on_click(handle, link, desktop.open_with.clone()));
            }
            Ok(())
        }
        Ok(Err(e)) => Err(DeliveryError::retryable(format!(
            "desktop notification failed (is there a session bus? run as a user service): {e}"
        ))),
        Err(_) => Err(DeliveryError::retryable(format!(
            "the notification daemon did not answer within {} s",
            TIMEOUT.as_secs()
        ))),
    }
}

/// Whether the notification server lists the "actions" capability. Asked on each send: the
/// user may switch notification daemons while feedwatch runs.
async fn supports_actions() -> bool {
    let asked = tokio::task::spawn_blocking(notify_rust::get_capabilities);
    match tokio::time::timeout(TIMEOUT, asked).await {
        Ok(Ok(Ok(capabilities))) => capabilities.iter().any(|c| c == "actions"),
        _ => false,
    }
}

/// Waits for the notification's default action and opens `link` with `program`.
async fn open_on_click(handle: notify_rust::NotificationHandle, link: String, program: String) {
    let mut clicked = false;
    let wait = handle.wait_for_action_async(|response| {
        clicked = matches!(response, notify_rust::NotificationResponse::Default)
            || matches!(response, notify_rust::NotificationResponse::Action(a) if a == "default");
    });
    if tokio::time::timeout(ACTION_WAIT, wait).await.is_err() || !clicked {
        return;
    }
    let opened = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&program)
            .arg(&link)
            .stdin(std::process::Stdio::null())
            .status()
            .map_err(|e| format!("cannot run `{program}` to open {link}: {e}"))
            .and_then(|status| {
                status
                    .success()
                    .then_some(())
                    .ok_or_else(|| format!("`{program} {link}` failed: {status}"))
            })
    })
    .await;
    match opened {
        Ok(Ok(())) => {}
        Ok(Err(message)) => tracing::warn!("desktop: {message}"),
        Err(e) => tracing::warn!("desktop: opening a link failed: {e}"),
    }
}

/// Only web links are handed to the opener: a feed could carry `file:` or other schemes.
fn is_web_link(link: &str) -> bool {
    url::Url::parse(link).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
}

/// Notification servers render a small HTML subset in the body: feed text must stay text.
pub use super::formats::html_escape as escape_markup;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_titles_is_escaped() {
        assert_eq!(
            escape_markup("<b>NATO</b> & \"EU\""),
            "&lt;b&gt;NATO&lt;/b&gt; &amp; &quot;EU&quot;"
        );
    }

    #[test]
    fn only_web_links_are_opened() {
        assert!(is_web_link("https://example.org/a"));
        assert!(!is_web_link("file:///etc/passwd"));
        assert!(!is_web_link("javascript:alert(1)"));
    }
}

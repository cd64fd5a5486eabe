//! Desktop notifications through the user's session bus (notify-rust over zbus).
//!
//! A system service has no session bus: that is a retryable failure recorded in the outbox,
//! never a crash. Run feedwatch as a `systemctl --user` service for desktop alerts.

use std::time::Duration;

use super::DeliveryError;
use crate::alert::Alert;
use crate::config::Urgency;

/// A notification daemon that does not answer must not stall the outbox.
const TIMEOUT: Duration = Duration::from_secs(10);
/// From this many alerts of one rule in one round, they go out as one notification.
pub const GROUP_AT: usize = 3;
/// Titles listed in a grouped notification; the rest are counted.
const GROUP_TITLES: usize = 5;

pub async fn send(alert: &Alert, urgency: Urgency) -> Result<(), DeliveryError> {
    let mut body = escape_markup(alert.title());
    if let Some(link) = &alert.article.link {
        body.push('\n');
        body.push_str(&escape_markup(link));
    }
    show(&format!("feedwatch: {}", alert.rule), &body, urgency).await
}

/// One notification for many alerts of `rule`: "12 new matches for ukraine" and the first
/// few titles.
pub async fn send_group(
    rule: &str,
    alerts: &[&Alert],
    urgency: Urgency,
) -> Result<(), DeliveryError> {
    show(
        &format!("feedwatch: {} new matches for {rule}", alerts.len()),
        &group_body(alerts),
        urgency,
    )
    .await
}

fn group_body(alerts: &[&Alert]) -> String {
    let mut lines: Vec<String> = alerts
        .iter()
        .take(GROUP_TITLES)
        .map(|a| format!("• {}", escape_markup(a.title())))
        .collect();
    if alerts.len() > GROUP_TITLES {
        lines.push(format!("… and {} more", alerts.len() - GROUP_TITLES));
    }
    lines.join("\n")
}

async fn show(summary: &str, body: &str, urgency: Urgency) -> Result<(), DeliveryError> {
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
    match tokio::time::timeout(TIMEOUT, notification.show_async()).await {
        Ok(Ok(_handle)) => Ok(()),
        Ok(Err(e)) => Err(DeliveryError::retryable(format!(
            "desktop notification failed (is there a session bus? run as a user service): {e}"
        ))),
        Err(_) => Err(DeliveryError::retryable(format!(
            "the notification daemon did not answer within {} s",
            TIMEOUT.as_secs()
        ))),
    }
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
}

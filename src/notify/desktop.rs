//! Desktop notifications through the user's session bus (notify-rust over zbus).
//!
//! A system service has no session bus: that is a retryable failure recorded in the outbox,
//! never a crash. Run feedwatch as a `systemctl --user` service for desktop alerts.

use std::time::Duration;

use super::DeliveryError;
use crate::alert::Alert;

/// A notification daemon that does not answer must not stall the outbox.
const TIMEOUT: Duration = Duration::from_secs(10);

pub async fn send(alert: &Alert) -> Result<(), DeliveryError> {
    let mut body = escape_markup(alert.title());
    if let Some(link) = &alert.article.link {
        body.push('\n');
        body.push_str(&escape_markup(link));
    }
    let mut notification = notify_rust::Notification::new();
    notification
        .appname("feedwatch")
        .summary(&format!("feedwatch: {}", alert.rule))
        .body(&body);
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

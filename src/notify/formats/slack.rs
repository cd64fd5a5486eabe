//! Slack incoming webhooks: mrkdwn text, with link previews off.

use serde_json::{Value, json};

use super::{list_message, marked_snippet, url_safe};
use crate::alert::Alert;
use crate::notify::digest::Digest;

pub(super) fn alert(alert: &Alert) -> Value {
    let title = slack_escape(alert.title());
    let headline = match &alert.article.link {
        Some(link) => format!("<{}|{}>", slack_escape(&url_safe(link)), title),
        None => title,
    };
    let mut text = format!("*{}*: {}", slack_escape(&alert.rule), headline);
    if let Some(snippet) = marked_snippet(alert, slack_escape, |w| format!("*{}*", slack_escape(w)))
    {
        text.push_str(&format!("\n>{snippet}"));
    }
    json!({
        "text": text,
        "unfurl_links": false,
    })
}

pub(super) fn digest(heading: &str, digest: &Digest) -> Value {
    json!({
        "text": list_message(
            &format!("*{}*", slack_escape(heading)),
            digest,
            usize::MAX,
            |a| {
                let title = slack_escape(a.title());
                let headline = match a.article.link.as_deref().map(url_safe) {
                    Some(link) if !link.is_empty() => {
                        format!("<{}|{title}>", slack_escape(&link))
                    }
                    _ => title,
                };
                format!("• *{}*: {headline}", slack_escape(&a.rule))
            },
        ),
        "unfurl_links": false,
    })
}

/// Slack treats `&`, `<` and `>` as control characters in message text (mentions and links
/// need `<…>`, so escaping them is enough to make text harmless; `*bold*` stays cosmetic).
fn slack_escape(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

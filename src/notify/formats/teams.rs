//! Microsoft Teams (Workflows or incoming webhooks): an Adaptive Card.

use serde_json::{Value, json};

use super::{list_message, markdown_escape, marked_snippet, url_safe};
use crate::alert::{Alert, truncate};
use crate::notify::digest::Digest;

/// An Adaptive Card, which both Teams Workflows and the older incoming webhooks accept.
pub(super) fn alert(alert: &Alert) -> Value {
    let mut card = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "text": markdown_escape(&alert.rule), "weight": "Bolder",
             "size": "Small", "isSubtle": true},
            {"type": "TextBlock", "text": markdown_escape(alert.title()), "weight": "Bolder",
             "wrap": true},
            {"type": "TextBlock", "text": marked_snippet(alert, markdown_escape, |w| format!("**{}**", markdown_escape(w)))
                .unwrap_or_else(|| markdown_escape(&truncate(&alert.article.summary, 300))),
             "wrap": true},
        ],
    });
    if let Some(link) = &alert.article.link {
        card["actions"] =
            json!([{"type": "Action.OpenUrl", "title": "Open", "url": url_safe(link)}]);
    }
    json!({
        "type": "message",
        "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": card}],
    })
}

pub(super) fn digest(heading: &str, digest: &Digest) -> Value {
    let mut body = vec![
        json!({"type": "TextBlock", "text": markdown_escape(heading),
        "weight": "Bolder", "wrap": true}),
    ];
    let text = list_message("", digest, usize::MAX, |a| {
        let title = markdown_escape(a.title());
        let headline = match a.article.link.as_deref().map(url_safe) {
            Some(link) if !link.is_empty() => format!("[{title}]({link})"),
            _ => title,
        };
        format!("- **{}**: {headline}", markdown_escape(&a.rule))
    });
    body.push(json!({"type": "TextBlock", "text": text.trim_start(), "wrap": true}));
    json!({
        "type": "message",
        "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": {
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "body": body,
        }}],
    })
}

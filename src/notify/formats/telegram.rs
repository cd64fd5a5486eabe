//! Telegram Bot API `sendMessage`: HTML text to one chat, link previews off.

use serde_json::{Value, json};

use super::{html_escape, html_headline, list_message, marked_snippet, url_safe};
use crate::alert::Alert;
use crate::notify::digest::Digest;

pub(super) fn alert(alert: &Alert, chat_id: &str) -> Value {
    let title = html_escape(alert.title());
    let headline = match &alert.article.link {
        Some(link) => format!("<a href=\"{}\">{title}</a>", html_escape(&url_safe(link))),
        None => title,
    };
    let mut text = format!("<b>{}</b>: {headline}", html_escape(&alert.rule));
    if let Some(snippet) =
        marked_snippet(alert, html_escape, |w| format!("<b>{}</b>", html_escape(w)))
    {
        text.push_str(&format!("\n<i>{snippet}</i>"));
    }
    json!({
        "chat_id": chat_id,
        "text": text,
        "parse_mode": "HTML",
        "link_preview_options": {"is_disabled": true},
    })
}

pub(super) fn digest(heading: &str, digest: &Digest, chat_id: &str) -> Value {
    json!({
        "chat_id": chat_id,
        "text": list_message(&format!("<b>{}</b>", html_escape(heading)), digest, 4000, |a| {
            format!("• <b>{}</b>: {}", html_escape(&a.rule), html_headline(a))
        }),
        "parse_mode": "HTML",
        "link_preview_options": {"is_disabled": true},
    })
}

//! Gotify's `/message` endpoint: plain text, said to be plain so no client renders Markdown.

use serde_json::{Value, json};

use super::{list_message, plain_line, plain_message, url_safe};
use crate::alert::Alert;
use crate::notify::digest::Digest;

/// Gotify shows plain text unless told otherwise; say so, so no client renders Markdown.
pub(super) fn alert(alert: &Alert) -> Value {
    let mut extras = json!({"client::display": {"contentType": "text/plain"}});
    if let Some(link) = &alert.article.link {
        extras["client::notification"] = json!({"click": {"url": url_safe(link)}});
    }
    json!({
        "title": format!("{}: {}", alert.rule, alert.title()),
        "message": plain_message(alert),
        "priority": 5,
        "extras": extras,
    })
}

pub(super) fn digest(heading: &str, digest: &Digest) -> Value {
    json!({
        "title": heading,
        "message": list_message("", digest, usize::MAX, plain_line).trim_start().to_string(),
        "priority": 5,
        "extras": {"client::display": {"contentType": "text/plain"}},
    })
}

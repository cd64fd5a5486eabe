//! Discord webhooks: Markdown in `content`, within Discord's length limit, mentions off.

use serde_json::{Value, json};

use super::{list_message, markdown_escape, marked_snippet, url_safe};
use crate::alert::{Alert, truncate};
use crate::notify::digest::Digest;

pub(super) fn alert(alert: &Alert) -> Value {
    let mut content = format!(
        "**{}**: {}",
        markdown_escape(&alert.rule),
        markdown_escape(alert.title())
    );
    if let Some(snippet) = marked_snippet(alert, markdown_escape, |w| {
        format!("**{}**", markdown_escape(w))
    }) {
        content.push_str(&format!("\n> {snippet}"));
    }
    if let Some(link) = &alert.article.link {
        content.push_str(&format!("\n<{}>", url_safe(link)));
    }
    json!({
        "content": truncate(&content, 1900),
        // Feed text must never ping @everyone.
        "allowed_mentions": {"parse": []},
    })
}

pub(super) fn digest(heading: &str, digest: &Digest) -> Value {
    json!({
        "content": list_message(&format!("**{}**", markdown_escape(heading)), digest, 1900, |a| {
            let mut line = format!(
                "• **{}**: {}",
                markdown_escape(&a.rule),
                markdown_escape(a.title())
            );
            if let Some(link) = a.article.link.as_deref().map(url_safe).filter(|l| !l.is_empty()) {
                line.push_str(&format!(" <{link}>"));
            }
            line
        }),
        "allowed_mentions": {"parse": []},
    })
}

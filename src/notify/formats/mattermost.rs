//! Mattermost incoming webhooks: Markdown in `text`, with mentions broken.

use serde_json::{Value, json};

use super::{list_message, markdown_escape, marked_snippet, url_safe};
use crate::alert::Alert;
use crate::notify::digest::Digest;

pub(super) fn alert(alert: &Alert) -> Value {
    let title = break_mentions(&markdown_escape(alert.title()));
    let headline = match &alert.article.link {
        Some(link) => format!("[{title}]({})", url_safe(link)),
        None => title,
    };
    let mut text = format!(
        "**{}**: {headline}",
        break_mentions(&markdown_escape(&alert.rule))
    );
    if let Some(snippet) = marked_snippet(alert, markdown_escape, |w| {
        format!("**{}**", markdown_escape(w))
    }) {
        text.push_str(&format!("\n> {}", break_mentions(&snippet)));
    }
    json!({ "text": text })
}

pub(super) fn digest(heading: &str, digest: &Digest) -> Value {
    json!({
        "text": list_message(&format!("**{}**", markdown_escape(heading)), digest, usize::MAX, |a| {
            let title = break_mentions(&markdown_escape(a.title()));
            let headline = match a.article.link.as_deref().map(url_safe) {
                Some(link) if !link.is_empty() => format!("[{title}]({link})"),
                _ => title,
            };
            format!("- **{}**: {headline}", break_mentions(&markdown_escape(&a.rule)))
        }),
    })
}

/// Mattermost has no switch for mentions: a zero-width space after `@` keeps `@channel` from
/// paging everyone while it reads the same.
fn break_mentions(text: &str) -> String {
    text.replace('@', "@\u{200b}")
}

//! Matrix client-server API: an `m.room.message` with plain and HTML bodies.

use serde_json::{Value, json};

use super::{html_escape, html_headline, list_message, marked_snippet, plain_line, url_safe};
use crate::alert::Alert;
use crate::notify::digest::Digest;

/// An `m.notice` (bots should not trigger other bots) with plain and HTML bodies.
pub(super) fn alert(alert: &Alert) -> Value {
    let title = html_escape(alert.title());
    let headline = match &alert.article.link {
        Some(link) => format!("<a href=\"{}\">{title}</a>", html_escape(&url_safe(link))),
        None => title,
    };
    let mut plain = format!("{}: {}", alert.rule, alert.title());
    if let Some(link) = &alert.article.link {
        plain.push_str(&format!("\n{link}"));
    }
    let mut formatted = format!("<b>{}</b>: {headline}", html_escape(&alert.rule));
    if let Some(snippet) =
        marked_snippet(alert, html_escape, |w| format!("<b>{}</b>", html_escape(w)))
    {
        formatted.push_str(&format!("<br><i>{snippet}</i>"));
    }
    json!({
        "msgtype": "m.notice",
        "body": plain,
        "format": "org.matrix.custom.html",
        "formatted_body": formatted,
    })
}

pub(super) fn digest(heading: &str, digest: &Digest) -> Value {
    let items: String = digest
        .alerts
        .iter()
        .map(|(a, _)| {
            format!(
                "<li><b>{}</b>: {}</li>",
                html_escape(&a.rule),
                html_headline(a)
            )
        })
        .collect();
    json!({
        "msgtype": "m.notice",
        "body": list_message(heading, digest, usize::MAX, plain_line),
        "format": "org.matrix.custom.html",
        "formatted_body": format!("<b>{}</b><ul>{items}</ul>", html_escape(heading)),
    })
}

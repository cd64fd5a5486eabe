//! Request bodies: feedwatch's own JSON payload, the formats chat and push services expect,
//! and the user's template. Pure functions of the alert; `webhook` does the HTTP.
//!
//! Feed text is hostile until escaped: each format escapes for what its receiver renders
//! (Markdown, Slack mrkdwn, HTML), so a title with quotes, newlines, `<script>` or `*` stays
//! literal text and cannot ping a channel.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::digest::Digest;
use crate::alert::{Alert, truncate};
use crate::config::{Webhook, WebhookFormat};

/// Version of the JSON payload; bumped only on incompatible changes. Version 2 added `type`
/// (`"alert"` or `"digest"`), digest messages and `snippet`.
pub const PAYLOAD_VERSION: u32 = 2;
/// Alerts listed one by one in a chat digest; the rest are counted.
const DIGEST_LINES: usize = 20;

/// A rendered request: its content type, body and any format-specific headers.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub content_type: String,
    pub body: String,
    pub headers: Vec<(String, String)>,
}

/// A user template that cannot be rendered for this alert.
#[derive(Debug, thiserror::Error)]
#[error("template of notifier `{notifier}` failed: {message}")]
pub struct TemplateError {
    pub notifier: String,
    pub message: String,
}

impl Rendered {
    fn json(body: Value) -> Rendered {
        Rendered {
            content_type: "application/json".into(),
            body: body.to_string(),
            headers: Vec::new(),
        }
    }
}

/// Renders `alert` as notifier `name` (configured as `hook`) sends it.
pub fn render(
    name: &str,
    hook: &Webhook,
    alert: &Alert,
    delivery_id: &str,
) -> Result<Rendered, TemplateError> {
    Ok(match hook.format {
        WebhookFormat::Json => Rendered::json(payload(alert, delivery_id)),
        WebhookFormat::Slack => Rendered::json(slack(alert)),
        WebhookFormat::Discord => Rendered::json(discord(alert)),
        WebhookFormat::Mattermost => Rendered::json(mattermost(alert)),
        WebhookFormat::Teams => Rendered::json(teams(alert)),
        WebhookFormat::Gotify => Rendered::json(gotify(alert)),
        WebhookFormat::Telegram => {
            Rendered::json(telegram(alert, hook.chat_id.as_deref().unwrap_or_default()))
        }
        WebhookFormat::Matrix => Rendered::json(matrix(alert)),
        WebhookFormat::Ntfy => ntfy(alert),
        WebhookFormat::Template => Rendered {
            content_type: hook.content_type.clone(),
            body: template(
                hook.template.as_deref().unwrap_or_default(),
                &hook.content_type,
                alert,
                delivery_id,
            )
            .map_err(|message| TemplateError {
                notifier: name.to_string(),
                message,
            })?,
            headers: Vec::new(),
        },
    })
}

/// Renders `digest` as notifier `name` (configured as `hook`) sends it: one message listing
/// the alerts.
pub fn render_digest(
    name: &str,
    hook: &Webhook,
    digest: &Digest,
) -> Result<Rendered, TemplateError> {
    let heading = digest_heading(digest);
    Ok(match hook.format {
        WebhookFormat::Json => Rendered::json(digest_payload(digest)),
        WebhookFormat::Slack => Rendered::json(json!({
            "text": list_message(
                &format!("*{}*", slack_escape(&heading)),
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
        })),
        WebhookFormat::Discord => Rendered::json(json!({
            "content": list_message(&format!("**{}**", markdown_escape(&heading)), digest, 1900, |a| {
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
        })),
        WebhookFormat::Mattermost => Rendered::json(json!({
            "text": list_message(&format!("**{}**", markdown_escape(&heading)), digest, usize::MAX, |a| {
                let title = break_mentions(&markdown_escape(a.title()));
                let headline = match a.article.link.as_deref().map(url_safe) {
                    Some(link) if !link.is_empty() => format!("[{title}]({link})"),
                    _ => title,
                };
                format!("- **{}**: {headline}", break_mentions(&markdown_escape(&a.rule)))
            }),
        })),
        WebhookFormat::Teams => Rendered::json(teams_digest(&heading, digest)),
        WebhookFormat::Gotify => Rendered::json(json!({
            "title": heading,
            "message": list_message("", digest, usize::MAX, plain_line).trim_start().to_string(),
            "priority": 5,
            "extras": {"client::display": {"contentType": "text/plain"}},
        })),
        WebhookFormat::Telegram => Rendered::json(json!({
            "chat_id": hook.chat_id.as_deref().unwrap_or_default(),
            "text": list_message(&format!("<b>{}</b>", html_escape(&heading)), digest, 4000, |a| {
                format!("• <b>{}</b>: {}", html_escape(&a.rule), html_headline(a))
            }),
            "parse_mode": "HTML",
            "link_preview_options": {"is_disabled": true},
        })),
        WebhookFormat::Matrix => {
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
            Rendered::json(json!({
                "msgtype": "m.notice",
                "body": list_message(&heading, digest, usize::MAX, plain_line),
                "format": "org.matrix.custom.html",
                "formatted_body": format!("<b>{}</b><ul>{items}</ul>", html_escape(&heading)),
            }))
        }
        WebhookFormat::Ntfy => Rendered {
            content_type: "text/plain; charset=utf-8".into(),
            body: list_message("", digest, usize::MAX, plain_line)
                .trim_start()
                .to_string(),
            headers: vec![
                ("Title".to_string(), encode_header_word(&heading)),
                ("Tags".to_string(), "newspaper".to_string()),
            ],
        },
        WebhookFormat::Template => Rendered {
            content_type: hook.content_type.clone(),
            body: render_template(
                hook.template.as_deref().unwrap_or_default(),
                &hook.content_type,
                digest_payload(digest),
            )
            .map_err(|message| TemplateError {
                notifier: name.to_string(),
                message,
            })?,
            headers: Vec::new(),
        },
    })
}

/// "feedwatch: 12 new matches".
pub fn digest_heading(digest: &Digest) -> String {
    format!("feedwatch: {} new matches", digest.alerts.len())
}

/// The digest in feedwatch's own payload: each alert as its own payload, with its own
/// delivery id, in the order they matched.
pub fn digest_payload(digest: &Digest) -> Value {
    json!({
        "version": PAYLOAD_VERSION,
        "type": "digest",
        "delivery_id": digest.delivery_id,
        "count": digest.alerts.len(),
        "alerts": digest
            .alerts
            .iter()
            .map(|(alert, id)| payload(alert, id))
            .collect::<Vec<_>>(),
        "created_at": rfc3339(digest.created_at),
    })
}

/// `heading`, then one line per alert while the message stays within `max` characters (and
/// [`DIGEST_LINES`] lines), then how many more there are.
fn list_message(
    heading: &str,
    digest: &Digest,
    max: usize,
    line: impl Fn(&Alert) -> String,
) -> String {
    let mut message = heading.to_string();
    let total = digest.alerts.len();
    for (shown, (alert, _)) in digest.alerts.iter().enumerate() {
        let next = line(alert);
        let more = format!("\n… and {} more", total - shown);
        let room_left = message.chars().count() + 1 + next.chars().count() + more.chars().count();
        if shown == DIGEST_LINES || room_left > max {
            message.push_str(&more);
            break;
        }
        message.push('\n');
        message.push_str(&next);
    }
    message
}

/// `rule: title — link`, for plain-text services.
fn plain_line(alert: &Alert) -> String {
    let one_line = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut line = format!("• {}: {}", alert.rule, one_line(alert.title()));
    if let Some(link) = &alert.article.link {
        line.push_str(&format!(" — {}", one_line(link)));
    }
    line
}

/// The title, as a link when the alert has an http(s) one, in HTML.
fn html_headline(alert: &Alert) -> String {
    let title = html_escape(alert.title());
    match alert.article.link.as_deref().map(url_safe) {
        Some(link) if !link.is_empty() => format!("<a href=\"{}\">{title}</a>", html_escape(&link)),
        _ => title,
    }
}

fn teams_digest(heading: &str, digest: &Digest) -> Value {
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

/// feedwatch's own payload (`format = "json"`), documented in the README.
pub fn payload(alert: &Alert, delivery_id: &str) -> Value {
    json!({
        "version": PAYLOAD_VERSION,
        "type": "alert",
        "delivery_id": delivery_id,
        "rule": alert.rule,
        "feed": {"name": alert.feed.name, "url": alert.feed.url, "title": alert.feed.title},
        "article": {
            "id": alert.article.id,
            "title": alert.article.title,
            "link": alert.article.link,
            "published": alert.article.published.map(rfc3339),
            "summary": alert.article.summary,
        },
        "matched": alert.matched,
        "snippet": alert.snippet,
        "created_at": rfc3339(alert.created_at),
    })
}

/// The snippet with matched words marked for one format: `plain` escapes the text between
/// them, `mark` escapes and marks a matched word.
fn marked_snippet(
    alert: &Alert,
    plain: impl Fn(&str) -> String,
    mark: impl Fn(&str) -> String,
) -> Option<String> {
    alert
        .snippet
        .as_ref()
        .filter(|s| !s.text.is_empty())
        .map(|s| s.render(plain, mark))
}

fn slack(alert: &Alert) -> Value {
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

fn discord(alert: &Alert) -> Value {
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

fn mattermost(alert: &Alert) -> Value {
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

/// An Adaptive Card, which both Teams Workflows and the older incoming webhooks accept.
fn teams(alert: &Alert) -> Value {
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

/// Gotify shows plain text unless told otherwise; say so, so no client renders Markdown.
fn gotify(alert: &Alert) -> Value {
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

fn telegram(alert: &Alert, chat_id: &str) -> Value {
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

/// An `m.notice` (bots should not trigger other bots) with plain and HTML bodies.
fn matrix(alert: &Alert) -> Value {
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

/// ntfy takes a plain-text body; title and click link travel in headers.
fn ntfy(alert: &Alert) -> Rendered {
    let mut headers = vec![
        (
            "Title".to_string(),
            encode_header_word(&format!("{}: {}", alert.rule, alert.title())),
        ),
        ("Tags".to_string(), "newspaper".to_string()),
    ];
    if let Some(link) = &alert.article.link {
        headers.push(("Click".to_string(), encode_header_word(&url_safe(link))));
    }
    Rendered {
        content_type: "text/plain; charset=utf-8".into(),
        body: plain_message(alert),
        headers,
    }
}

/// Renders the user's minijinja `source` with the alert's JSON payload as context: `type`
/// (`"alert"`), `rule`, `feed`, `article`, `matched`, `snippet`, `delivery_id`, `created_at`.
/// A digest renders the same template with the digest payload (`type` is `"digest"`, the
/// alerts are in `alerts`). For a JSON content type every `{{ … }}` is written as a JSON value
/// (strings come quoted and escaped); for HTML it is HTML-escaped; for anything else it is
/// inserted as is.
pub fn template(
    source: &str,
    content_type: &str,
    alert: &Alert,
    delivery_id: &str,
) -> Result<String, String> {
    render_template(source, content_type, payload(alert, delivery_id))
}

fn render_template(source: &str, content_type: &str, context: Value) -> Result<String, String> {
    use minijinja::{AutoEscape, Environment};
    let escape = if content_type.contains("json") {
        AutoEscape::Json
    } else if content_type.contains("html") {
        AutoEscape::Html
    } else {
        AutoEscape::None
    };
    let mut env = Environment::new();
    env.set_auto_escape_callback(move |_| escape.clone());
    env.add_template("body", source)
        .map_err(|e| e.to_string())?;
    let template = env.get_template("body").map_err(|e| e.to_string())?;
    template
        .render(minijinja::value::Serde(context))
        .map_err(|e| e.to_string())
}

fn plain_message(alert: &Alert) -> String {
    let mut message = alert.article.summary.clone();
    if message.is_empty() {
        message = alert.title().to_string();
    }
    if !alert.matched.is_empty() {
        message.push_str(&format!("\n\nmatched: {}", alert.matched.join(", ")));
    }
    message
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Links go inside markup (`<…>`, `(…)`, `href="…"`): only http(s) links pass, and the
/// characters that could close the markup are percent-encoded.
fn url_safe(link: &str) -> String {
    match url::Url::parse(link) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => u
            .as_str()
            .replace('(', "%28")
            .replace(')', "%29")
            .replace('|', "%7C")
            .replace('>', "%3E")
            .replace('<', "%3C")
            .replace('"', "%22"),
        _ => String::new(),
    }
}

/// Slack treats `&`, `<` and `>` as control characters in message text (mentions and links
/// need `<…>`, so escaping them is enough to make text harmless; `*bold*` stays cosmetic).
fn slack_escape(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Markdown (Discord, Mattermost, Teams): escape its characters so a title stays literal;
/// newlines become spaces so a title cannot start a heading or a quote.
pub fn markdown_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\n' | '\r') {
            out.push(' ');
            continue;
        }
        if matches!(
            c,
            '\\' | '*'
                | '_'
                | '~'
                | '`'
                | '|'
                | '>'
                | '#'
                | '['
                | ']'
                | '('
                | ')'
                | '@'
                | '<'
                | '!'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Mattermost has no switch for mentions: a zero-width space after `@` keeps `@channel` from
/// paging everyone while it reads the same.
fn break_mentions(text: &str) -> String {
    text.replace('@', "@\u{200b}")
}

/// HTML text and attribute values (Telegram, Matrix).
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// HTTP header values are ASCII; anything else goes as an RFC 2047 encoded word, which ntfy reads.
fn encode_header_word(text: &str) -> String {
    let text: String = text.chars().filter(|c| !c.is_control()).collect();
    if text.is_ascii() {
        return text;
    }
    use base64_lite::encode;
    format!("=?UTF-8?B?{}?=", encode(text.as_bytes()))
}

/// Base64 for one header: a few lines instead of a crate.
mod base64_lite {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub fn encode(bytes: &[u8]) -> String {
        let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    #[cfg(test)]
    #[test]
    fn matches_rfc_4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(encode(input.as_bytes()), expected);
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{ArticleRef, FeedRef};

    fn alert(title: &str) -> Alert {
        Alert {
            rule: "ukraine".into(),
            feed: FeedRef {
                name: "f".into(),
                url: "http://f/".into(),
                title: "F".into(),
            },
            article: ArticleRef {
                id: "guid:1".into(),
                title: title.into(),
                link: Some("https://x.org/a?b=1&c=2".into()),
                published: None,
                summary: "s".into(),
            },
            matched: vec!["Ukraine".into()],
            created_at: Utc::now(),
            snippet: None,
        }
    }

    #[test]
    fn json_payload_is_versioned_and_complete() {
        let v = payload(&alert("t"), "d1");
        assert_eq!(v["version"], 2);
        assert_eq!(v["type"], "alert");
        assert!(v["snippet"].is_null());
        assert_eq!(v["delivery_id"], "d1");
        assert_eq!(v["article"]["link"], "https://x.org/a?b=1&c=2");
        assert_eq!(v["matched"][0], "Ukraine");
        assert!(v["article"]["published"].is_null());
    }

    #[test]
    fn non_ascii_header_is_encoded() {
        assert_eq!(encode_header_word("plain"), "plain");
        assert!(encode_header_word("Кремль").starts_with("=?UTF-8?B?"));
    }

    #[test]
    fn markdown_escaping_keeps_titles_literal_and_on_one_line() {
        assert_eq!(
            markdown_escape("*bold* [x](y)\n# head"),
            "\\*bold\\* \\[x\\]\\(y\\) \\# head"
        );
    }

    #[test]
    fn script_tags_never_reach_a_service_as_markup() {
        let hostile = "<script>alert(1)</script> *b* @everyone \"q\"\nnext";
        let a = alert(hostile);
        let slack = slack(&a)["text"].as_str().unwrap().to_string();
        assert!(
            slack.contains("&lt;script&gt;") && !slack.contains('\n'),
            "{slack}"
        );
        let markdown = [
            discord(&a)["content"].as_str().unwrap().to_string(),
            mattermost(&a)["text"].as_str().unwrap().to_string(),
            teams(&a)["attachments"][0]["content"]["body"][1]["text"]
                .as_str()
                .unwrap()
                .to_string(),
        ];
        for text in markdown {
            assert!(
                text.contains("\\<script") && text.contains("\\*b\\*"),
                "{text}"
            );
        }
        for text in [
            telegram(&a, "1")["text"].as_str().unwrap().to_string(),
            matrix(&a)["formatted_body"].as_str().unwrap().to_string(),
        ] {
            assert!(
                text.contains("&lt;script&gt;") && !text.contains("<script"),
                "{text}"
            );
        }
        // Plain-text services get the title as it is: nothing there renders markup.
        assert_eq!(gotify(&a)["title"], format!("ukraine: {hostile}"));
        assert!(!ntfy(&a).headers[0].1.contains('\n'));
    }

    #[test]
    fn links_that_are_not_http_are_dropped() {
        assert_eq!(url_safe("javascript:alert(1)"), "");
        assert_eq!(url_safe("https://x.org/a_(b)"), "https://x.org/a_%28b%29");
    }

    #[test]
    fn json_template_quotes_and_escapes_values() {
        let out = template(
            r#"{"text": {{ article.title }}, "rule": {{ rule }}}"#,
            "application/json",
            &alert("a \"quoted\"\ntitle </script>"),
            "d",
        )
        .unwrap();
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["text"], "a \"quoted\"\ntitle </script>");
        assert_eq!(v["rule"], "ukraine");
    }
}

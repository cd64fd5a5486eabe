//! Request bodies: feedwatch's own JSON payload, the formats chat and push services expect,
//! and the user's template. Pure functions of the alert; `webhook` does the HTTP.
//!
//! Feed text is hostile until escaped: each format escapes for what its receiver renders
//! (Markdown, Slack mrkdwn, HTML), so a title with quotes, newlines, `<script>` or `*` stays
//! literal text and cannot ping a channel.

//!
//! Each service has its file, with its alert and its digest side by side; what several
//! services share (escaping, links, digest lists) is here.

mod discord;
mod gotify;
mod json;
mod matrix;
mod mattermost;
mod ntfy;
mod slack;
mod teams;
mod telegram;
mod template;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::digest::Digest;
use crate::alert::Alert;
use crate::config::{Webhook, WebhookFormat};

pub use json::{PAYLOAD_VERSION, digest_payload, payload};
pub use template::template;
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
    let chat_id = hook.chat_id.as_deref().unwrap_or_default();
    Ok(match hook.format {
        WebhookFormat::Json => Rendered::json(payload(alert, delivery_id)),
        WebhookFormat::Slack => Rendered::json(slack::alert(alert)),
        WebhookFormat::Discord => Rendered::json(discord::alert(alert)),
        WebhookFormat::Mattermost => Rendered::json(mattermost::alert(alert)),
        WebhookFormat::Teams => Rendered::json(teams::alert(alert)),
        WebhookFormat::Gotify => Rendered::json(gotify::alert(alert)),
        WebhookFormat::Telegram => Rendered::json(telegram::alert(alert, chat_id)),
        WebhookFormat::Matrix => Rendered::json(matrix::alert(alert)),
        WebhookFormat::Ntfy => ntfy::alert(alert),
        WebhookFormat::Template => template::rendered(name, hook, payload(alert, delivery_id))?,
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
    let chat_id = hook.chat_id.as_deref().unwrap_or_default();
    Ok(match hook.format {
        WebhookFormat::Json => Rendered::json(digest_payload(digest)),
        WebhookFormat::Slack => Rendered::json(slack::digest(&heading, digest)),
        WebhookFormat::Discord => Rendered::json(discord::digest(&heading, digest)),
        WebhookFormat::Mattermost => Rendered::json(mattermost::digest(&heading, digest)),
        WebhookFormat::Teams => Rendered::json(teams::digest(&heading, digest)),
        WebhookFormat::Gotify => Rendered::json(gotify::digest(&heading, digest)),
        WebhookFormat::Telegram => Rendered::json(telegram::digest(&heading, digest, chat_id)),
        WebhookFormat::Matrix => Rendered::json(matrix::digest(&heading, digest)),
        WebhookFormat::Ntfy => ntfy::digest(&heading, digest),
        WebhookFormat::Template => template::rendered(name, hook, digest_payload(digest))?,
    })
}

/// "feedwatch: 12 new matches".
pub fn digest_heading(digest: &Digest) -> String {
    format!("feedwatch: {} new matches", digest.alerts.len())
}

/// `heading`, then one line per alert (a story once, with how many more outlets carry it)
/// while the message stays within `max` characters (and [`DIGEST_LINES`] lines), then how
/// many more there are.
fn list_message(
    heading: &str,
    digest: &Digest,
    max: usize,
    line: impl Fn(&Alert) -> String,
) -> String {
    let mut message = heading.to_string();
    let total = digest.alerts.len();
    for (shown, (alert, _)) in digest.alerts.iter().enumerate() {
        let next = line(alert) + &more_outlets(alert);
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

/// ` (+3 outlets)` after an alert's line when other feeds carry its story too; plain text,
/// safe in every format's markup.
pub fn more_outlets(alert: &Alert) -> String {
    match alert.more_outlets() {
        0 => String::new(),
        1 => " (+1 outlet)".to_string(),
        n => format!(" (+{n} outlets)"),
    }
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
pub(super) fn html_headline(alert: &Alert) -> String {
    let title = html_escape(alert.title());
    match alert.article.link.as_deref().map(url_safe) {
        Some(link) if !link.is_empty() => format!("<a href=\"{}\">{title}</a>", html_escape(&link)),
        _ => title,
    }
}

/// The snippet with matched words marked for one format: `plain` escapes the text between
/// them, `mark` escapes and marks a matched word.
pub(super) fn marked_snippet(
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
pub(super) fn url_safe(link: &str) -> String {
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
                enclosures: Vec::new(),
                thumbnail: None,
            },
            matched: vec!["Ukraine".into()],
            created_at: Utc::now(),
            snippet: None,
            story: None,
        }
    }

    #[test]
    fn a_digest_lists_a_story_once_with_how_many_more_outlets_carry_it() {
        let mut story = alert("Wire story");
        let source = |feed: &str| crate::alert::Source {
            feed: feed.into(),
            title: "Wire story".into(),
            link: None,
        };
        story.story = Some(crate::alert::StoryRef {
            id: 7,
            sources: vec![source("ap"), source("seattle"), source("latimes")],
        });
        let digest = Digest {
            delivery_id: "d".into(),
            alerts: vec![(story.clone(), "a".into()), (alert("Alone"), "b".into())],
            created_at: Utc::now(),
        };
        let text = list_message("", &digest, usize::MAX, plain_line);
        let lines: Vec<&str> = text.trim_start().lines().collect();
        assert!(lines[0].contains("Wire story") && lines[0].ends_with(" (+2 outlets)"));
        assert!(!lines[1].contains("outlet"), "{text}");
        assert!(crate::notify::stdout::render(&story).ends_with("(+2 outlets)"));
        assert_eq!(
            payload(&story, "d")["story"]["sources"][2]["feed"],
            "latimes"
        );
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
        let slack = slack::alert(&a)["text"].as_str().unwrap().to_string();
        assert!(
            slack.contains("&lt;script&gt;") && !slack.contains('\n'),
            "{slack}"
        );
        let markdown = [
            discord::alert(&a)["content"].as_str().unwrap().to_string(),
            mattermost::alert(&a)["text"].as_str().unwrap().to_string(),
            teams::alert(&a)["attachments"][0]["content"]["body"][1]["text"]
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
            telegram::alert(&a, "1")["text"]
                .as_str()
                .unwrap()
                .to_string(),
            matrix::alert(&a)["formatted_body"]
                .as_str()
                .unwrap()
                .to_string(),
        ] {
            assert!(
                text.contains("&lt;script&gt;") && !text.contains("<script"),
                "{text}"
            );
        }
        // Plain-text services get the title as it is: nothing there renders markup.
        assert_eq!(gotify::alert(&a)["title"], format!("ukraine: {hostile}"));
        assert!(!ntfy::alert(&a).headers[0].1.contains('\n'));
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

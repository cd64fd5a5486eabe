//! HTTP webhooks: feedwatch's own JSON payload, or the body a chat service expects.
//!
//! Every request carries `X-Feedwatch-Delivery`, stable for one (rule, article, notifier), so a
//! receiver that sees it twice (delivery is at-least-once) can drop the repeat. With a
//! `secret`, every request is signed: `X-Feedwatch-Timestamp` holds the Unix time of the
//! attempt and `X-Feedwatch-Signature` is `v1=` + hex HMAC-SHA256 of `"{timestamp}.{body}"`,
//! so a receiver can reject forgeries and, by checking the timestamp, replays.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::DeliveryError;
use crate::alert::Alert;
use crate::config::WebhookFormat;

/// Version of the JSON payload; bumped only on incompatible changes.
pub const PAYLOAD_VERSION: u32 = 1;

/// Where and how one webhook notifier posts.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub url: &'a str,
    pub format: WebhookFormat,
    pub timeout: Duration,
    pub secret: Option<&'a str>,
}

pub async fn send(
    http: &reqwest::Client,
    target: &Target<'_>,
    alert: &Alert,
    delivery_id: &str,
) -> Result<(), DeliveryError> {
    let Target {
        url,
        format,
        timeout,
        secret,
    } = *target;
    let mut request = http
        .post(url)
        .timeout(timeout)
        .header("X-Feedwatch-Delivery", delivery_id)
        .header("X-Feedwatch-Event", "alert");
    let (content_type, body) = match format {
        WebhookFormat::Ntfy => ("text/plain; charset=utf-8", ntfy_message(alert)),
        _ => (
            "application/json",
            body(format, alert, delivery_id).to_string(),
        ),
    };
    if let Some(secret) = secret {
        let timestamp = Utc::now().timestamp();
        request = request
            .header("X-Feedwatch-Timestamp", timestamp)
            .header("X-Feedwatch-Signature", signature(secret, timestamp, &body));
    }
    request = request.header("Content-Type", content_type);
    request = match format {
        WebhookFormat::Ntfy => {
            let mut r = request
                .header(
                    "Title",
                    encode_header_word(&format!("{}: {}", alert.rule, alert.title())),
                )
                .header("Tags", "newspaper");
            if let Some(link) = &alert.article.link {
                r = r.header("Click", link.as_str());
            }
            r.body(body)
        }
        _ => request.body(body),
    };
    let response = request.send().await.map_err(|e| {
        let kind = if e.is_timeout() {
            format!("timed out after {} s", timeout.as_secs())
        } else {
            crate::fetch::error_chain(&e)
        };
        DeliveryError::retryable(format!("webhook {}: {kind}", redact(url)))
    })?;
    classify(response.status(), response.headers(), url)
}

/// `v1=` and the hex HMAC-SHA256, keyed with `secret`, of `"{timestamp}.{body}"`.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Success, worth retrying (408, 429, 5xx) or not (any other status).
fn classify(
    status: StatusCode,
    headers: &reqwest::header::HeaderMap,
    url: &str,
) -> Result<(), DeliveryError> {
    if status.is_success() {
        return Ok(());
    }
    let message = format!("webhook {} answered HTTP {status}", redact(url));
    if status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
    {
        let retry_after = headers
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<i64>().ok())
            .map(|s| Utc::now() + chrono::Duration::seconds(s.clamp(0, 24 * 3600)));
        Err(DeliveryError::Retryable {
            message,
            retry_after,
        })
    } else {
        Err(DeliveryError::Permanent { message })
    }
}

/// The request body for the JSON-bodied formats.
pub fn body(format: WebhookFormat, alert: &Alert, delivery_id: &str) -> Value {
    match format {
        WebhookFormat::Json | WebhookFormat::Ntfy => json!({
            "version": PAYLOAD_VERSION,
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
            "created_at": rfc3339(alert.created_at),
        }),
        WebhookFormat::Slack => {
            let title = slack_escape(alert.title());
            let headline = match &alert.article.link {
                Some(link) => format!("<{}|{}>", slack_escape(link), title),
                None => title,
            };
            json!({
                "text": format!("*{}*: {}", slack_escape(&alert.rule), headline),
                "unfurl_links": false,
            })
        }
        WebhookFormat::Discord => {
            let mut content = format!(
                "**{}**: {}",
                discord_escape(&alert.rule),
                discord_escape(alert.title())
            );
            if let Some(link) = &alert.article.link {
                content.push_str(&format!("\n<{link}>"));
            }
            json!({
                "content": crate::alert::truncate(&content, 1900),
                // Feed text must never ping @everyone.
                "allowed_mentions": {"parse": []},
            })
        }
    }
}

fn ntfy_message(alert: &Alert) -> String {
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

/// Slack treats `&`, `<` and `>` as control characters in message text.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Discord renders Markdown: escape its characters so a title stays literal.
fn discord_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(
            c,
            '\\' | '*' | '_' | '~' | '`' | '|' | '>' | '#' | '[' | ']' | '(' | ')' | '@' | '<'
        ) {
            out.push('\\');
        }
        out.push(c);
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

/// Webhook URLs often carry their secret in the path (Slack, Discord): log only scheme and host.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}{}/…",
            u.scheme(),
            u.host_str().unwrap_or(""),
            u.port().map(|p| format!(":{p}")).unwrap_or_default()
        ),
        Err(_) => "(invalid url)".into(),
    }
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
        }
    }

    #[test]
    fn json_payload_is_versioned_and_complete() {
        let v = body(WebhookFormat::Json, &alert("t"), "d1");
        assert_eq!(v["version"], 1);
        assert_eq!(v["delivery_id"], "d1");
        assert_eq!(v["article"]["link"], "https://x.org/a?b=1&c=2");
        assert_eq!(v["matched"][0], "Ukraine");
        assert!(v["article"]["published"].is_null());
    }

    #[test]
    fn chat_formats_escape_hostile_titles() {
        let hostile = "<script>alert(1)</script> *bold* @everyone & \"q\"\nline";
        let slack = body(WebhookFormat::Slack, &alert(hostile), "d")["text"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(!slack.contains("<script>"), "{slack}");
        assert!(slack.contains("&lt;script&gt;"), "{slack}");
        let discord = body(WebhookFormat::Discord, &alert(hostile), "d");
        let content = discord["content"].as_str().unwrap();
        assert!(content.contains("\\*bold\\*"), "{content}");
        assert!(content.contains("\\@everyone"), "{content}");
        assert_eq!(discord["allowed_mentions"]["parse"], json!([]));
    }

    #[test]
    fn statuses_are_classified() {
        let h = reqwest::header::HeaderMap::new();
        assert!(classify(StatusCode::OK, &h, "http://x/").is_ok());
        for s in [500, 502, 503, 408, 429] {
            let r = classify(StatusCode::from_u16(s).unwrap(), &h, "http://x/");
            assert!(matches!(r, Err(DeliveryError::Retryable { .. })), "{s}");
        }
        for s in [400, 401, 404, 410] {
            let r = classify(StatusCode::from_u16(s).unwrap(), &h, "http://x/");
            assert!(matches!(r, Err(DeliveryError::Permanent { .. })), "{s}");
        }
    }

    #[test]
    fn secrets_in_urls_are_not_logged() {
        assert_eq!(
            redact("https://hooks.slack.com/services/T0/B0/SECRET"),
            "https://hooks.slack.com/…"
        );
    }

    #[test]
    fn signature_signs_timestamp_dot_body() {
        // From Python: hmac.new(b"Jefe", b"0.{}", hashlib.sha256).hexdigest()
        assert_eq!(
            signature("Jefe", 0, "{}"),
            "v1=6e3446a5d06ebd04d38da6b50dc5c5e1830c495fac782559e2508547806138e8"
        );
    }

    #[test]
    fn non_ascii_header_is_encoded() {
        assert_eq!(encode_header_word("plain"), "plain");
        assert!(encode_header_word("Кремль").starts_with("=?UTF-8?B?"));
    }
}

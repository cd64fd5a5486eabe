//! HTTP webhooks: feedwatch's own JSON payload, or the body a chat service expects.
//!
//! Every request carries `X-Feedwatch-Delivery`, stable for one (rule, article, notifier), so a
//! receiver that sees it twice (delivery is at-least-once) can drop the repeat. A digest
//! carries its own id, derived from its members' ids, and `X-Feedwatch-Event: digest`. With a
//! `secret`, every request is signed: `X-Feedwatch-Timestamp` holds the Unix time of the
//! attempt and `X-Feedwatch-Signature` is `v1=` + hex HMAC-SHA256 of `"{timestamp}.{body}"`,
//! so a receiver can reject forgeries and, by checking the timestamp, replays.

use chrono::Utc;
use reqwest::StatusCode;

use super::DeliveryError;
use super::digest::Digest;
use super::formats;
use crate::alert::Alert;
use crate::config::{Webhook, WebhookFormat};

pub use formats::PAYLOAD_VERSION;

/// Sends `alert` through webhook notifier `name`, configured as `hook`.
pub async fn send(
    http: &reqwest::Client,
    name: &str,
    hook: &Webhook,
    alert: &Alert,
    delivery_id: &str,
) -> Result<(), DeliveryError> {
    let rendered = formats::render(name, hook, alert, delivery_id).map_err(permanent)?;
    post(http, hook, rendered, delivery_id, "alert").await
}

/// Sends `digest` as one request, under the digest's delivery id; `X-Feedwatch-Event` is
/// `digest`.
pub async fn send_digest(
    http: &reqwest::Client,
    name: &str,
    hook: &Webhook,
    digest: &Digest,
) -> Result<(), DeliveryError> {
    let rendered = formats::render_digest(name, hook, digest).map_err(permanent)?;
    post(http, hook, rendered, &digest.delivery_id, "digest").await
}

fn permanent(e: formats::TemplateError) -> DeliveryError {
    DeliveryError::Permanent {
        message: e.to_string(),
    }
}

async fn post(
    http: &reqwest::Client,
    hook: &Webhook,
    rendered: formats::Rendered,
    delivery_id: &str,
    event: &str,
) -> Result<(), DeliveryError> {
    let method =
        reqwest::Method::from_bytes(hook.method.as_bytes()).unwrap_or(reqwest::Method::POST);
    let url = match hook.format {
        // Matrix takes a transaction id in the path and ignores a repeat of it.
        WebhookFormat::Matrix => format!("{}/{delivery_id}", hook.url.trim_end_matches('/')),
        _ => hook.url.clone(),
    };
    let mut request = http
        .request(method, &url)
        .timeout(hook.timeout)
        .header("Content-Type", rendered.content_type.as_str())
        .header("X-Feedwatch-Delivery", delivery_id)
        .header("X-Feedwatch-Event", event);
    for (key, value) in rendered.headers.iter().chain(&hook.headers) {
        request = request.header(key.as_str(), value.as_str());
    }
    if let Some(secret) = &hook.secret {
        let timestamp = Utc::now().timestamp();
        request = request.header("X-Feedwatch-Timestamp", timestamp).header(
            "X-Feedwatch-Signature",
            signature(secret, timestamp, &rendered.body),
        );
    }
    let response = request.body(rendered.body).send().await.map_err(|e| {
        let kind = if e.is_timeout() {
            format!("timed out after {} s", hook.timeout.as_secs())
        } else {
            crate::fetch::error_chain(&e)
        };
        DeliveryError::retryable(format!("webhook {}: {kind}", redact(&url)))
    })?;
    classify(response.status(), response.headers(), &url)
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

#[cfg(test)]
mod tests {
    use super::*;

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
}

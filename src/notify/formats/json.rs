//! feedwatch's own JSON payload (`format = "json"`), for an alert and for a digest.

use serde_json::{Value, json};

use super::rfc3339;
use crate::alert::Alert;
use crate::notify::digest::Digest;

/// Version of the JSON payload; bumped only on incompatible changes. Version 2 added `type`
/// (`"alert"` or `"digest"`), digest messages and `snippet`; `story` came later, as an
/// addition.
pub const PAYLOAD_VERSION: u32 = 2;

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
            "enclosures": alert.article.enclosures,
            "thumbnail": alert.article.thumbnail,
        },
        "matched": alert.matched,
        "snippet": alert.snippet,
        "story": alert.story,
        "created_at": rfc3339(alert.created_at),
    })
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

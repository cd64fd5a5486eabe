//! Delivering alerts: the outbox worker and one file per channel.
//!
//! Alerts are never sent straight from a match. The match writes an outbox row (see `store`);
//! [`deliver_due`] sends due rows, marks each delivered, retries failures with backoff and
//! jitter, and gives up (status `dead`) only on a permanent error or when the alert is older
//! than the notifier's `give_up_after` (see [`RetryPolicy`]).
//! Alerts of one rule reach one notifier in the order they matched: a failing alert holds back
//! the later ones of its (notifier, rule) until it is delivered or dead.
//! Killing feedwatch at any point loses nothing: a row not marked delivered is sent again, with
//! the same delivery id so that a receiver can drop the repeat.

pub mod desktop;
pub mod formats;
pub mod quiet;
pub mod stdout;
pub mod webhook;

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::alert::{Alert, ArticleRef, FeedRef};
use crate::config::{Config, NotifierKind, RetryPolicy, Urgency};
use crate::scheduler::{chrono_duration, jitter_fraction};
use crate::store::{Db, Delivery, StoreError};

/// Why one delivery attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// Worth trying again later (network error, 5xx, 429, no session bus yet).
    #[error("{message}")]
    Retryable {
        message: String,
        retry_after: Option<DateTime<Utc>>,
    },
    /// Trying again cannot help (4xx such as 404 or 401): the alert is marked dead.
    #[error("{message}")]
    Permanent { message: String },
}

impl DeliveryError {
    pub fn retryable(message: impl Into<String>) -> DeliveryError {
        DeliveryError::Retryable {
            message: message.into(),
            retry_after: None,
        }
    }
}

/// What one round of delivery did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryStats {
    pub delivered: usize,
    /// Held back by quiet hours or a rule cooldown.
    pub held: usize,
    pub retrying: usize,
    pub dead: usize,
}

/// The HTTP client for webhooks, for commands that deliver outside the daemon.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(concat!("feedwatch/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default()
}

/// The sample alert `feedwatch test-notify` sends: it shows how a real one looks, with
/// characters that each format must escape.
pub fn test_alert(now: DateTime<Utc>) -> Alert {
    Alert {
        rule: "feedwatch test".into(),
        feed: FeedRef {
            name: "test".into(),
            url: "https://example.org/feed.xml".into(),
            title: "feedwatch".into(),
        },
        article: ArticleRef {
            id: format!("test:{}", now.timestamp_millis()),
            title: "Test alert from feedwatch: <it works> & \"quotes\" *stay* literal".into(),
            link: Some("https://example.org/feedwatch-test?a=1&b=2".into()),
            published: Some(now),
            summary: "If you can read this, the notifier is set up.".into(),
        },
        matched: vec!["test".into()],
        created_at: now,
    }
}

/// Sends one alert through the notifier named `notifier`.
pub async fn send(
    config: &Config,
    http: &reqwest::Client,
    notifier: &str,
    alert: &Alert,
    delivery_id: &str,
) -> Result<(), DeliveryError> {
    let Some(notifier) = config.notifier(notifier) else {
        return Err(DeliveryError::Permanent {
            message: format!("notifier `{notifier}` is no longer in the config"),
        });
    };
    match &notifier.kind {
        NotifierKind::Stdout => stdout::send(alert),
        NotifierKind::Desktop => desktop::send(alert, rule_urgency(config, &alert.rule)).await,
        NotifierKind::Webhook(hook) => {
            webhook::send(http, &notifier.name, hook, alert, delivery_id).await
        }
    }
}

/// Delivers every pending outbox row due by `due_by`, one attempt each. The daemon passes
/// "now"; `run --once` passes the far future, so each run retries what is pending.
pub async fn deliver_due(
    config: &Config,
    db: &Db,
    http: &reqwest::Client,
    shutdown: &CancellationToken,
    due_by: DateTime<Utc>,
) -> Result<DeliveryStats, StoreError> {
    let mut stats = DeliveryStats::default();
    // Walk the outbox by id, so a row that failed and stays pending is not retried at once.
    let mut after_id = 0;
    // (notifier, rule) pairs with a failure this round: their later alerts wait, to keep order.
    let mut held: HashSet<(String, String)> = HashSet::new();
    loop {
        if shutdown.is_cancelled() {
            return Ok(stats);
        }
        let batch = db
            .call(move |s| s.due_deliveries(due_by, after_id, 100))
            .await?;
        if batch.is_empty() {
            return Ok(stats);
        }
        let mut done: HashSet<i64> = HashSet::new();
        for (index, delivery) in batch.iter().enumerate() {
            if shutdown.is_cancelled() {
                // What is not sent stays pending and goes out after the restart.
                return Ok(stats);
            }
            after_id = delivery.id;
            let line = (delivery.notifier.clone(), delivery.alert.rule.clone());
            if done.contains(&delivery.id) || held.contains(&line) {
                continue;
            }
            // In quiet hours or a rule's cooldown the alert waits; that is no failed attempt.
            let quiet_end = config
                .notifier(&delivery.notifier)
                .and_then(|n| n.quiet.as_ref())
                .and_then(|q| quiet::quiet_until(q, Utc::now()));
            let wait_until = match quiet_end {
                Some(end) => Some(end),
                None => cooldown_end(config, db, delivery).await?,
            };
            if let Some(until) = wait_until {
                let id = delivery.id;
                db.call(move |s| s.postpone(id, until)).await?;
                stats.held += 1;
                continue;
            }
            // Many desktop alerts of one rule at once become one notification, not a flood.
            let group: Vec<&Delivery> = match config.notifier(&delivery.notifier) {
                Some(n) if n.kind == NotifierKind::Desktop => batch[index..]
                    .iter()
                    .filter(|d| d.notifier == line.0 && d.alert.rule == line.1)
                    .collect(),
                _ => Vec::new(),
            };
            let (result, sent) = if group.len() >= desktop::GROUP_AT {
                let alerts: Vec<&Alert> = group.iter().map(|d| &d.alert).collect();
                let urgency = rule_urgency(config, &line.1);
                (desktop::send_group(&line.1, &alerts, urgency).await, group)
            } else {
                let result = send(
                    config,
                    http,
                    &delivery.notifier,
                    &delivery.alert,
                    &delivery.delivery_id,
                )
                .await;
                (result, vec![delivery])
            };
            for d in sent {
                done.insert(d.id);
                record(config, db, &mut stats, d, &result).await?;
            }
            if matches!(result, Err(DeliveryError::Retryable { .. })) {
                held.insert(line);
            }
        }
    }
}

/// When `delivery` may go out if its rule is cooling down for its notifier: alerts newer than
/// the last one sent wait until the cooldown after it ends, then go out together.
async fn cooldown_end(
    config: &Config,
    db: &Db,
    delivery: &Delivery,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let Some(cooldown) = config
        .rules
        .iter()
        .find(|r| r.name == delivery.alert.rule)
        .and_then(|r| r.cooldown)
    else {
        return Ok(None);
    };
    let (notifier, rule) = (delivery.notifier.clone(), delivery.alert.rule.clone());
    let last = db.call(move |s| s.last_delivered(&notifier, &rule)).await?;
    Ok(last
        .filter(|&last| delivery.created_at > last)
        .map(|last| last + chrono_duration(cooldown))
        .filter(|&end| end > Utc::now()))
}

fn rule_urgency(config: &Config, rule: &str) -> Urgency {
    config
        .rules
        .iter()
        .find(|r| r.name == rule)
        .map_or(Urgency::Normal, |r| r.urgency)
}

/// Writes the outcome of one attempt for `delivery` to the outbox, and logs a failure.
async fn record(
    config: &Config,
    db: &Db,
    stats: &mut DeliveryStats,
    delivery: &Delivery,
    result: &Result<(), DeliveryError>,
) -> Result<(), StoreError> {
    let now = Utc::now();
    let id = delivery.id;
    let err = match result {
        Ok(()) => {
            stats.delivered += 1;
            return db.call(move |s| s.mark_delivered(id, now)).await;
        }
        Err(err) => err,
    };
    let policy = config
        .notifier(&delivery.notifier)
        .map(|n| n.retry)
        .unwrap_or_default();
    let retry_at = retry_at(
        &policy,
        err,
        delivery.attempts + 1,
        delivery.created_at,
        now,
    );
    match retry_at {
        Some(at) => {
            stats.retrying += 1;
            tracing::warn!(
                notifier = %delivery.notifier,
                rule = %delivery.alert.rule,
                delivery = %delivery.delivery_id,
                retry_at = %at.format("%Y-%m-%d %H:%M:%S UTC"),
                "delivery failed, will retry: {err}"
            );
        }
        None => {
            stats.dead += 1;
            tracing::error!(
                notifier = %delivery.notifier,
                rule = %delivery.alert.rule,
                delivery = %delivery.delivery_id,
                "delivery failed for good: {err}"
            );
        }
    }
    let message = err.to_string();
    db.call(move |s| s.mark_failed(id, &message, retry_at))
        .await
}

/// When to try again after the `attempts`-th failure, or `None` to give up.
fn retry_at(
    policy: &RetryPolicy,
    err: &DeliveryError,
    attempts: u32,
    created_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let DeliveryError::Retryable { retry_after, .. } = err else {
        return None;
    };
    let delay = policy
        .first_delay
        .saturating_mul(1 << attempts.saturating_sub(1).min(16))
        .mul_f64(1.0 + 0.2 * jitter_fraction(&format!("{now}{attempts}")))
        .min(policy.max_delay);
    let at = (now + chrono_duration(delay)).max(retry_after.unwrap_or(now));
    (at - created_at <= chrono_duration(policy.give_up_after)).then_some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_and_give_up_after_three_days() {
        let created = Utc::now();
        let err = DeliveryError::retryable("down");
        let first = retry_at(&RetryPolicy::default(), &err, 1, created, created).unwrap();
        let third = retry_at(&RetryPolicy::default(), &err, 3, created, created).unwrap();
        assert!(first - created >= chrono::Duration::seconds(30));
        assert!(third - created >= chrono::Duration::seconds(120));
        let late = created + chrono::Duration::days(3);
        assert_eq!(
            retry_at(&RetryPolicy::default(), &err, 50, created, late),
            None
        );
        let permanent = DeliveryError::Permanent {
            message: "404".into(),
        };
        assert_eq!(
            retry_at(&RetryPolicy::default(), &permanent, 1, created, created),
            None
        );
    }

    #[test]
    fn retry_delay_never_exceeds_the_cap() {
        let policy = RetryPolicy {
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(5),
            give_up_after: Duration::from_secs(3600),
        };
        let now = Utc::now();
        let err = DeliveryError::retryable("down");
        for attempts in 1..40 {
            let at = retry_at(&policy, &err, attempts, now, now).unwrap();
            assert!(
                at - now <= chrono::Duration::seconds(5),
                "attempt {attempts}"
            );
        }
    }

    #[test]
    fn retry_after_from_the_receiver_is_honoured() {
        let now = Utc::now();
        let later = now + chrono::Duration::minutes(20);
        let err = DeliveryError::Retryable {
            message: "429".into(),
            retry_after: Some(later),
        };
        assert_eq!(
            retry_at(&RetryPolicy::default(), &err, 1, now, now),
            Some(later)
        );
    }
}

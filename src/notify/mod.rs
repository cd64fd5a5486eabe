//! Delivering alerts: the outbox worker and one file per channel (stdout, desktop, webhook,
//! email).
//!
//! Alerts are never sent straight from a match. The match writes an outbox row (see `store`);
//! [`deliver_due`] sends due rows, marks each delivered, retries failures with backoff and
//! jitter, and gives up (status `dead`) only on a permanent error or when the alert is older
//! than the notifier's `give_up_after` (see [`RetryPolicy`]).
//! Alerts of one rule reach one notifier in the order they matched: a failing alert holds back
//! the later ones of its (notifier, rule) until it is delivered or dead.
//! Killing feedwatch at any point loses nothing: a row not marked delivered is sent again, with
//! the same delivery id so that a receiver can drop the repeat.
//!
//! A notifier with `digest`, `rate_limit` or quiet hours folds some alerts into one message
//! (see [`digest`] for when). The rows of a digest are tied together in the outbox before it
//! is sent, so they are retried, resent after a crash, and marked delivered as one, always
//! under the same digest delivery id.

pub mod desktop;
pub mod digest;
pub mod email;
pub mod formats;
pub mod quiet;
pub mod stdout;
pub mod webhook;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::alert::{Alert, ArticleRef, FeedRef, Snippet};
use crate::config::{Config, Notifier, NotifierKind, RetryPolicy, Urgency};
use crate::metrics::{DeliveryResult, metrics};
use crate::scheduler::{chrono_duration, jitter_fraction};
use crate::store::{Db, Delivery, StoreError};
use digest::Digest;

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
            enclosures: Vec::new(),
            thumbnail: None,
        },
        matched: vec!["test".into()],
        created_at: now,
        snippet: Some(Snippet {
            field: "summary".into(),
            text: "If you can read this, the notifier is set up.".into(),
            highlights: vec![(26, 34)],
        }),
        story: None,
    }
}

/// The notifier named `name`; an alert queued for one that left the config cannot be sent.
fn configured<'a>(
    config: &'a Config,
    name: &str,
) -> Result<&'a crate::config::Notifier, DeliveryError> {
    config
        .notifier(name)
        .ok_or_else(|| DeliveryError::Permanent {
            message: format!("notifier `{name}` is no longer in the config"),
        })
}

/// Sends one alert through the notifier named `notifier`.
pub async fn send(
    config: &Config,
    http: &reqwest::Client,
    notifier: &str,
    alert: &Alert,
    delivery_id: &str,
) -> Result<(), DeliveryError> {
    let notifier = configured(config, notifier)?;
    match &notifier.kind {
        NotifierKind::Stdout => stdout::send(alert),
        NotifierKind::Desktop(desktop) => {
            desktop::send(alert, rule_urgency(config, &alert.rule), desktop).await
        }
        NotifierKind::Webhook(hook) => {
            webhook::send(http, &notifier.name, hook, alert, delivery_id).await
        }
        NotifierKind::Email(mail) => email::send(&notifier.name, mail, alert, delivery_id).await,
    }
}

/// Sends `digest` as one message through the notifier named `notifier`.
pub async fn send_digest(
    config: &Config,
    http: &reqwest::Client,
    notifier: &str,
    digest: &Digest,
) -> Result<(), DeliveryError> {
    let notifier = configured(config, notifier)?;
    match &notifier.kind {
        NotifierKind::Stdout => stdout::send_digest(digest),
        NotifierKind::Desktop(desktop) => {
            // The most urgent of its alerts sets the digest's urgency.
            let urgency = digest
                .alerts
                .iter()
                .map(|(a, _)| rule_urgency(config, &a.rule))
                .max()
                .unwrap_or_default();
            desktop::send_digest(digest, urgency, desktop).await
        }
        NotifierKind::Webhook(hook) => {
            webhook::send_digest(http, &notifier.name, hook, digest).await
        }
        NotifierKind::Email(mail) => email::send_digest(&notifier.name, mail, digest).await,
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
    let mut round = Round::new(config, db, http);
    let walked = round.walk(shutdown, due_by).await;
    // The marks of the last batch go into their rows, as each batch's did before the next.
    let folded = db.call(|s| s.fold_sent()).await;
    walked?;
    folded?;
    Ok(round.stats)
}

/// The end of the quiet hours `notifier` is in now, if it is in them.
fn quiet_end(notifier: &Notifier) -> Option<DateTime<Utc>> {
    notifier
        .quiet
        .as_ref()
        .and_then(|q| quiet::quiet_until(q, Utc::now()))
}

/// How `notifier` folds its alerts at `now`. A notifier whose template cannot render a digest
/// folds nothing: its alerts go out one by one rather than die as unrenderable.
fn batching(notifier: &crate::config::Notifier, now: DateTime<Utc>) -> digest::Batching {
    let folds =
        notifier.digest.is_some() || notifier.rate_limit.is_some() || notifier.quiet.is_some();
    if !folds || cannot_send_digests(notifier).is_some() {
        return digest::Batching::default();
    }
    digest::Batching {
        digest: notifier.digest,
        rate_limit: notifier.rate_limit,
        quiet_ended_at: notifier
            .quiet
            .as_ref()
            .and_then(|q| quiet::last_ended(q, now)),
    }
}

/// Why `notifier` cannot send a digest, if it cannot: a user template written for single
/// alerts only (it reads `article` without branching on `type`). Found by rendering a sample.
pub fn cannot_send_digests(notifier: &crate::config::Notifier) -> Option<String> {
    let NotifierKind::Webhook(hook) = &notifier.kind else {
        return None;
    };
    if hook.format != crate::config::WebhookFormat::Template {
        return None;
    }
    let now = Utc::now();
    let sample = Digest {
        delivery_id: "digest-sample".into(),
        alerts: vec![(test_alert(now), "a".into()), (test_alert(now), "b".into())],
        created_at: now,
    };
    formats::render_digest(&notifier.name, hook, &sample)
        .err()
        .map(|e| e.to_string())
}

/// What one call of [`deliver_due`] has done so far.
struct Round<'a> {
    config: &'a Config,
    db: &'a Db,
    http: &'a reqwest::Client,
    stats: DeliveryStats,
    /// Rows handled this round: sent, failed, or set to wait.
    done: HashSet<i64>,
    /// (notifier, rule) pairs with a failure this round: their later alerts wait, to keep order.
    held: HashSet<(String, String)>,
    /// Per notifier that folds alerts: the fresh rows its plan lets go out on their own.
    singles: HashMap<String, HashSet<i64>>,
}

impl<'a> Round<'a> {
    fn new(config: &'a Config, db: &'a Db, http: &'a reqwest::Client) -> Round<'a> {
        Round {
            config,
            db,
            http,
            stats: DeliveryStats::default(),
            done: HashSet::new(),
            held: HashSet::new(),
            singles: HashMap::new(),
        }
    }

    /// Gives every row due by `due_by` its attempt, in batches walked by id, so that a row
    /// that failed and stays pending is not retried at once.
    async fn walk(
        &mut self,
        shutdown: &CancellationToken,
        due_by: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut after_id = 0;
        loop {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            // The delivered marks of the last batch go into their rows first, many in one
            // transaction (see `Store::mark_all_delivered`).
            let batch = self
                .db
                .call(move |s| {
                    s.fold_sent()?;
                    s.due_deliveries(due_by, after_id, 100)
                })
                .await?;
            if batch.is_empty() {
                return Ok(());
            }
            for (index, delivery) in batch.iter().enumerate() {
                if shutdown.is_cancelled() {
                    // What is not sent stays pending and goes out after the restart.
                    return Ok(());
                }
                after_id = delivery.id;
                self.deliver(delivery, &batch[index..]).await?;
            }
        }
    }

    /// Gives the due row `delivery` its one attempt this round, unless a policy says it waits
    /// or goes out with others. `rest` is the due rows from `delivery` on. The policies are
    /// asked in the order they take precedence.
    async fn deliver(&mut self, delivery: &Delivery, rest: &[Delivery]) -> Result<(), StoreError> {
        let config = self.config;
        if !self.in_turn(delivery) {
            return Ok(());
        }
        let notifier = config.notifier(&delivery.notifier);
        // In quiet hours the notifier sends nothing; that is no failed attempt.
        if let Some(until) = notifier.and_then(quiet_end) {
            return self.postpone(&[delivery.id], until).await;
        }
        if let Some(digest_id) = delivery.in_digest() {
            return self.send_sealed_digest(digest_id).await;
        }
        if let Some(until) = cooldown_end(config, self.db, delivery).await? {
            return self.postpone(&[delivery.id], until).await;
        }
        let batching = notifier
            .map(|n| batching(n, Utc::now()))
            .unwrap_or_default();
        // A row sealed alone (claimed before a send the process did not live to record) goes
        // out again as it went, ahead of any digest of later rows.
        let folds = batching.is_active() && delivery.digest_id.is_none();
        if folds
            && !(self.planned_alone(delivery, &batching).await?
                && self.seal_alone(delivery).await?)
        {
            return Ok(());
        }
        self.send_alone(notifier, delivery, rest).await
    }

    /// Whether `delivery` is still to be handled this round and no earlier alert of its rule
    /// failed through its notifier this round (alerts of one rule go out in order).
    fn in_turn(&self, delivery: &Delivery) -> bool {
        let line = (delivery.notifier.clone(), delivery.alert.rule.clone());
        !self.done.contains(&delivery.id) && !self.held.contains(&line)
    }

    /// Sends the whole digest that a row was sealed into (by an earlier round, or by a process
    /// that did not live to record the send).
    async fn send_sealed_digest(&mut self, digest_id: &str) -> Result<(), StoreError> {
        let digest_id = digest_id.to_string();
        let members = self.db.call(move |s| s.digest_members(&digest_id)).await?;
        self.send_digest(&members).await
    }

    /// For a notifier that folds alerts: whether its digest plan, made once a round, lets the
    /// fresh row `delivery` go out on its own. A row that failed before has no plan to wait
    /// for: it was a single when first sent.
    async fn planned_alone(
        &mut self,
        delivery: &Delivery,
        batching: &digest::Batching,
    ) -> Result<bool, StoreError> {
        if delivery.attempts > 0 {
            return Ok(true);
        }
        if !self.singles.contains_key(&delivery.notifier) {
            let singles = self.plan(&delivery.notifier, batching).await?;
            self.singles.insert(delivery.notifier.clone(), singles);
        }
        Ok(self.may_send_alone(delivery))
    }

    /// A notifier that folds alerts could fold `delivery` after a crash between its send and
    /// its mark, under a new id: sealing it alone first keeps it a single. `false` when the
    /// row was sealed by another process meanwhile.
    async fn seal_alone(&self, delivery: &Delivery) -> Result<bool, StoreError> {
        let (id, unit) = (delivery.id, delivery.delivery_id.clone());
        let now = Utc::now();
        let sealed = self
            .db
            .call(move |s| s.seal_digest(&[id], &unit, now))
            .await?;
        Ok(sealed > 0)
    }

    /// Sends `delivery` as a single alert, except that many desktop alerts of one rule due at
    /// once become one notification, not a flood.
    async fn send_alone(
        &mut self,
        notifier: Option<&Notifier>,
        delivery: &Delivery,
        rest: &[Delivery],
    ) -> Result<(), StoreError> {
        if let Some(NotifierKind::Desktop(desktop)) = notifier.map(|n| &n.kind) {
            let rule = &delivery.alert.rule;
            let group: Vec<&Delivery> = rest
                .iter()
                .filter(|d| d.notifier == delivery.notifier && &d.alert.rule == rule)
                .filter(|d| d.in_digest().is_none() && self.may_send_alone(d))
                .collect();
            if group.len() >= desktop::GROUP_AT {
                let alerts: Vec<&Alert> = group.iter().map(|d| &d.alert).collect();
                let urgency = rule_urgency(self.config, rule);
                let result = desktop::send_group(rule, &alerts, urgency, desktop).await;
                return self.record(&group, &delivery.delivery_id, &result).await;
            }
        }
        let result = send(
            self.config,
            self.http,
            &delivery.notifier,
            &delivery.alert,
            &delivery.delivery_id,
        )
        .await;
        self.record(&[delivery], &delivery.delivery_id, &result)
            .await
    }

    /// Whether `delivery` may be sent on its own now: always, unless its notifier folds alerts
    /// and did not plan it as a single this round.
    fn may_send_alone(&self, delivery: &Delivery) -> bool {
        !self.done.contains(&delivery.id)
            && (delivery.attempts > 0
                || delivery.digest_id.is_some()
                || self
                    .singles
                    .get(&delivery.notifier)
                    .is_none_or(|singles| singles.contains(&delivery.id)))
    }

    /// Lets rows `ids` wait until `until`, counting no attempt.
    async fn postpone(&mut self, ids: &[i64], until: DateTime<Utc>) -> Result<(), StoreError> {
        let rows = ids.to_vec();
        self.db.call(move |s| s.postpone(&rows, until)).await?;
        self.done.extend(ids);
        self.stats.held += ids.len();
        Ok(())
    }

    /// Applies the digest plan of `notifier` to its fresh rows: the ones to wait are postponed,
    /// the ones to fold are tied into a digest and sent. Returns the rows to send on their own.
    async fn plan(
        &mut self,
        notifier: &str,
        batching: &digest::Batching,
    ) -> Result<HashSet<i64>, StoreError> {
        let (config, db) = (self.config, self.db);
        let name = notifier.to_string();
        let fresh = db.call(move |s| s.fresh_deliveries(&name)).await?;
        let mut candidates = Vec::new();
        for delivery in fresh {
            if self.done.contains(&delivery.id) {
                continue;
            }
            // A rule cooling down keeps its alerts out of the digest, too.
            match cooldown_end(config, db, &delivery).await? {
                Some(until) => self.postpone(&[delivery.id], until).await?,
                None => candidates.push(delivery),
            }
        }
        let now = Utc::now();
        let singles_sent = match batching.rate_limit {
            Some(limit) => {
                let (since, _) = digest::rate_window(limit, now);
                let name = notifier.to_string();
                db.call(move |s| s.singles_delivered_since(&name, since))
                    .await?
            }
            None => 0,
        };
        let fresh: Vec<digest::Fresh> = candidates
            .iter()
            .map(|d| digest::Fresh {
                id: d.id,
                created_at: d.created_at,
            })
            .collect();
        let plan = digest::plan(batching, &fresh, singles_sent, now);
        if let Some(until) = plan.hold_until {
            self.postpone(&plan.held, until).await?;
        }
        if !plan.digest.is_empty() {
            let members: Vec<Delivery> = candidates
                .iter()
                .filter(|d| plan.digest.contains(&d.id))
                .cloned()
                .collect();
            let digest_id = digest::digest_id(members.iter().map(|d| d.delivery_id.as_str()));
            let ids = plan.digest.clone();
            let id = digest_id.clone();
            let now = Utc::now();
            // Another process (`outbox retry` beside the daemon) may have sealed some of them
            // first: what goes out is what this seal holds, read back.
            let members = db
                .call(move |s| {
                    s.seal_digest(&ids, &id, now)?;
                    s.digest_members(&id)
                })
                .await?;
            self.send_digest(&members).await?;
        }
        Ok(plan.singles.into_iter().collect())
    }

    /// Sends the sealed digest made of `members` and records the outcome for all of them.
    async fn send_digest(&mut self, members: &[Delivery]) -> Result<(), StoreError> {
        let Some(first) = members.first() else {
            return Ok(());
        };
        let digest = Digest {
            delivery_id: first.digest_id.clone().unwrap_or_default(),
            alerts: members
                .iter()
                .map(|d| (d.alert.clone(), d.delivery_id.clone()))
                .collect(),
            created_at: members
                .iter()
                .map(|d| d.alert.created_at)
                .max()
                .unwrap_or(first.created_at),
        };
        let result = send_digest(self.config, self.http, &first.notifier, &digest).await;
        let members: Vec<&Delivery> = members.iter().collect();
        self.record(&members, &digest.delivery_id, &result).await
    }

    /// Writes the outcome of one attempt that carried `sent` (one alert, a desktop group or a
    /// digest, sent as `unit_id`) to the outbox, and logs a failure.
    async fn record(
        &mut self,
        sent: &[&Delivery],
        unit_id: &str,
        result: &Result<(), DeliveryError>,
    ) -> Result<(), StoreError> {
        let Some(first) = sent.first() else {
            return Ok(());
        };
        let ids: Vec<i64> = sent.iter().map(|d| d.id).collect();
        self.done.extend(&ids);
        let now = Utc::now();
        let err = match result {
            Ok(()) => {
                self.stats.delivered += ids.len();
                count_attempt(sent, DeliveryResult::Delivered, now);
                // Handing each mark to a blocking thread took longer than the mark.
                return self
                    .db
                    .call_now(move |s| s.mark_all_delivered(&ids, now))
                    .await;
            }
            Err(err) => err,
        };
        if matches!(err, DeliveryError::Retryable { .. }) {
            for d in sent {
                self.held.insert((d.notifier.clone(), d.alert.rule.clone()));
            }
        }
        let policy = self
            .config
            .notifier(&first.notifier)
            .map(|n| n.retry)
            .unwrap_or_default();
        // Rows sent together are retried together: the unit is as old as its oldest row.
        let attempts = sent.iter().map(|d| d.attempts).max().unwrap_or(0);
        let created_at = sent.iter().map(|d| d.created_at).min().unwrap_or(now);
        let retry_at = retry_at(&policy, err, attempts + 1, created_at, now);
        let rules: Vec<&str> = sent.iter().map(|d| d.alert.rule.as_str()).collect();
        let rule = if rules.iter().all(|&r| r == rules[0]) {
            rules[0].to_string()
        } else {
            format!("{} rules", rules.len())
        };
        let outcome = match retry_at {
            Some(_) => DeliveryResult::Retrying,
            None => DeliveryResult::Dead,
        };
        count_attempt(sent, outcome, now);
        match retry_at {
            Some(at) => {
                self.stats.retrying += ids.len();
                tracing::warn!(
                    notifier = %first.notifier,
                    rule = %rule,
                    delivery = %unit_id,
                    retry_at = %at.format("%Y-%m-%d %H:%M:%S UTC"),
                    "delivery failed, will retry: {err}"
                );
            }
            None => {
                self.stats.dead += ids.len();
                tracing::error!(
                    notifier = %first.notifier,
                    rule = %rule,
                    delivery = %unit_id,
                    "delivery failed for good: {err}"
                );
            }
        }
        let message = err.to_string();
        self.db
            .call(move |s| s.mark_all_failed(&ids, &message, retry_at))
            .await
    }
}

/// Counts one attempt's outcome for each alert it carried.
fn count_attempt(sent: &[&Delivery], outcome: DeliveryResult, now: DateTime<Utc>) {
    for d in sent {
        metrics().delivered(&d.alert.rule, &d.notifier, outcome, d.alert.created_at, now);
    }
}

/// When `delivery` may go out if its rule is cooling down for its notifier: alerts newer than
/// the last one sent wait until the cooldown after it ends, then go out together.
async fn cooldown_end(
    config: &Config,
    db: &Db,
    delivery: &Delivery,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let Some(cooldown) = config.rule(&delivery.alert.rule).and_then(|r| r.cooldown) else {
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
    config.rule(rule).map_or(Urgency::Normal, |r| r.urgency)
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

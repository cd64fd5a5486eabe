//! The daemon's metrics, counted where the stages meet the world: a poll's result and its
//! fetch time, what the store took, and each delivery's outcome. What the database already
//! knows (the outbox by status, each feed's health) is read when `/metrics` is scraped, so it
//! is right after a restart too.
//!
//! One set per process, like the standard Prometheus clients' default registry: the stages
//! count into it without carrying it around.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{LazyLock, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::poll::{PollError, PollSummary};
use crate::store::FeedState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RuleLabel {
    rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    rule: String,
    notifier: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FeedLabel {
    feed: String,
}

/// How a delivery attempt ended, as `/metrics` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryResult {
    Delivered,
    Retrying,
    Dead,
}

/// Every metric feedwatch exposes.
pub struct Metrics {
    registry: Registry,
    polls: Family<ResultLabel, Counter>,
    fetch_seconds: Histogram,
    articles_stored: Counter,
    matches: Family<RuleLabel, Counter>,
    deliveries: Family<DeliveryLabels, Counter>,
    delivery_latency: Histogram,
    outbox: Family<StatusLabel, Gauge>,
    feed_failing: Family<FeedLabel, Gauge>,
    feed_last_success: Family<FeedLabel, Gauge<f64, AtomicU64>>,
    last_success: Gauge<f64, AtomicU64>,
    /// One scrape at a time sets the values read from the database and encodes them.
    scrape: Mutex<()>,
}

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);
    &METRICS
}

/// What the database says at scrape time.
pub struct StoreSnapshot<'a> {
    /// The configured feeds' states (a feed removed from the config is no longer reported).
    pub feeds: Vec<&'a FeedState>,
    pub outbox: &'a HashMap<String, i64>,
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("feedwatch");
        let polls = Family::<ResultLabel, Counter>::default();
        registry.register(
            "polls",
            "Feed polls by result: ok, not_modified (a 304, or the body read last time sent again), \
             fetch_error, parse_error, gone",
            polls.clone(),
        );
        // 5 ms to about 82 s: a loopback file to a feed that times out.
        let fetch_seconds = Histogram::new(exponential_buckets(0.005, 2.0, 15));
        registry.register_with_unit(
            "fetch_duration",
            "Time to fetch a feed, whatever the result: the wait for a slot at its host, redirects and body included",
            Unit::Seconds,
            fetch_seconds.clone(),
        );
        let articles_stored = Counter::default();
        registry.register(
            "articles_stored",
            "New articles written to the database",
            articles_stored.clone(),
        );
        let matches = Family::<RuleLabel, Counter>::default();
        registry.register(
            "matches",
            "Stories a rule matched and recorded (each alerts once)",
            matches.clone(),
        );
        let deliveries = Family::<DeliveryLabels, Counter>::default();
        registry.register(
            "alerts",
            "Alert delivery attempts by rule, notifier and result: delivered, retrying, dead",
            deliveries.clone(),
        );
        // From a second to a day: quiet hours and digests hold alerts for hours on purpose.
        let delivery_latency = Histogram::new([
            0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 86400.0,
        ]);
        registry.register_with_unit(
            "delivery_latency",
            "Time from a match to its alert's delivery",
            Unit::Seconds,
            delivery_latency.clone(),
        );
        let outbox = Family::<StatusLabel, Gauge>::default();
        registry.register(
            "outbox_alerts",
            "Alerts in the outbox by status: pending, delivered, dead",
            outbox.clone(),
        );
        let feed_failing = Family::<FeedLabel, Gauge>::default();
        registry.register(
            "feed_failing",
            "1 when the feed's last poll failed, else 0",
            feed_failing.clone(),
        );
        let feed_last_success = Family::<FeedLabel, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "feed_last_success_timestamp_seconds",
            "When the feed was last polled successfully (Unix time)",
            feed_last_success.clone(),
        );
        let last_success = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "last_success_timestamp_seconds",
            "When any feed was last polled successfully (Unix time)",
            last_success.clone(),
        );
        Metrics {
            registry,
            polls,
            fetch_seconds,
            articles_stored,
            matches,
            deliveries,
            delivery_latency,
            outbox,
            feed_failing,
            feed_last_success,
            last_success,
            scrape: Mutex::new(()),
        }
    }

    pub fn fetched(&self, took: Duration) {
        self.fetch_seconds.observe(took.as_secs_f64());
    }

    /// A poll ended with `result`; `matched` names the rule of each match it stored.
    pub fn polled(&self, result: &Result<PollSummary, PollError>, matched: &[String]) {
        let label = match result {
            Ok(s) if s.not_modified => "not_modified",
            Ok(_) => "ok",
            Err(PollError::Gone { .. }) => "gone",
            Err(PollError::Fetch { .. }) => "fetch_error",
            Err(PollError::Parse { .. } | PollError::ParserCrashed { .. }) => "parse_error",
        };
        self.polls
            .get_or_create(&ResultLabel { result: label })
            .inc();
        if let Ok(summary) = result {
            self.articles_stored.inc_by(summary.new_articles as u64);
        }
        for rule in matched {
            self.matches
                .get_or_create(&RuleLabel { rule: rule.clone() })
                .inc();
        }
    }

    /// A delivery attempt of an alert of `rule` through `notifier` ended; a delivered one
    /// also says how long after its match.
    pub fn delivered(
        &self,
        rule: &str,
        notifier: &str,
        result: DeliveryResult,
        matched_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) {
        let label = match result {
            DeliveryResult::Delivered => "delivered",
            DeliveryResult::Retrying => "retrying",
            DeliveryResult::Dead => "dead",
        };
        self.deliveries
            .get_or_create(&DeliveryLabels {
                rule: rule.to_string(),
                notifier: notifier.to_string(),
                result: label,
            })
            .inc();
        if result == DeliveryResult::Delivered {
            let latency = (now - matched_at).num_milliseconds().max(0) as f64 / 1000.0;
            self.delivery_latency.observe(latency);
        }
    }

    /// The OpenMetrics text of every metric, with the database's part as `store` says.
    pub fn encode(&self, store: &StoreSnapshot) -> String {
        let _one_scrape = self.scrape.lock().unwrap_or_else(PoisonError::into_inner);
        // Statuses and feeds that are gone must not linger at their last value.
        self.outbox.clear();
        for status in ["pending", "delivered", "dead"] {
            let count = store.outbox.get(status).copied().unwrap_or(0);
            self.outbox
                .get_or_create(&StatusLabel {
                    status: status.to_string(),
                })
                .set(count);
        }
        self.feed_failing.clear();
        self.feed_last_success.clear();
        for feed in &store.feeds {
            let label = FeedLabel {
                feed: feed.name.clone(),
            };
            let failing = feed.consecutive_failures > 0 || feed.gone_at.is_some();
            self.feed_failing
                .get_or_create(&label)
                .set(i64::from(failing));
            if let Some(at) = feed.last_success_at {
                self.feed_last_success
                    .get_or_create(&label)
                    .set(at.timestamp() as f64);
            }
        }
        let last = store.feeds.iter().filter_map(|f| f.last_success_at).max();
        self.last_success
            .set(last.map_or(0.0, |at| at.timestamp() as f64));
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

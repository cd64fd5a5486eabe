//! The run loop: polls feeds when they are due, delivers the outbox, stops cleanly.
//!
//! Each feed's poll is [`poll_feed`] (see `poll`): one bad feed is a logged, stored error and
//! never stops the others. [`run_once`] polls every feed now and delivers what is pending; [`run`]
//! keeps going: one loop sleeps until the earliest `next_poll_at` (at most a minute, because
//! tokio's clock stops while a laptop sleeps), a delivery task drains the outbox, and the
//! search indexer (see `indexer`) adds new articles to the search index on a thread of its own.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, DEFAULT_FETCH_TIMEOUT, Feed};
use crate::fetch::Fetcher;
use crate::indexer::{Indexer, Removals};
use crate::matcher::{Engine, RuleSpec};
use crate::notify::{self, DeliveryStats};
pub use crate::poll::{Admission, FeedReport, PollSummary, poll_feed};
use crate::scheduler::{chrono_duration, jitter_fraction};
use crate::service::{self, systemd};
use crate::store::{Db, FeedId, FeedState, Store, StoreError};

/// The longest the loop sleeps: tokio's monotonic clock stops during suspend, wall-clock
/// `next_poll_at` does not, so compare at least this often.
const MAX_SLEEP: Duration = Duration::from_secs(60);
/// How long in-flight work may take to finish after a stop is asked for.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// First polls after start are spread over a window that grows with the number of feeds (a
/// handful start at once, a thousand over a minute) and never exceeds this.
const FIRST_POLL_WINDOW: Duration = Duration::from_secs(60);
const FIRST_POLL_SPACING: Duration = Duration::from_millis(50);

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the pipeline needs, built once from a config.
pub struct Pipeline {
    pub config: Arc<Config>,
    pub(crate) engine: Engine,
    pub(crate) db: Db,
    pub(crate) fetcher: Arc<Fetcher>,
    http: reqwest::Client,
}

/// What `run --once` did.
#[derive(Debug, Clone, Default)]
pub struct CycleReport {
    pub feeds: Vec<FeedReport>,
    pub deliveries: DeliveryStats,
}

/// Builds the matching engine for a config's rules.
pub fn engine_for(config: &Config) -> Engine {
    Engine::new(config.rules.iter().map(|r| RuleSpec {
        name: &r.name,
        query: &r.query,
        feeds: &r.feeds,
    }))
}

/// A scoped thread's result; its panic goes on in the caller.
fn joined<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    handle
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

impl Pipeline {
    pub fn open(config: Config) -> Result<Pipeline, DaemonError> {
        // Each HTTP client reads the system's certificate store, some milliseconds of CPU
        // apiece at every start: they are built on threads of their own while the database
        // opens and the rules compile.
        let (store, engine, fetcher, http) = std::thread::scope(|scope| {
            let fetcher = scope.spawn(|| Fetcher::new(DEFAULT_FETCH_TIMEOUT));
            let http = scope.spawn(|| {
                reqwest::Client::builder()
                    .user_agent(concat!("feedwatch/", env!("CARGO_PKG_VERSION")))
                    .connect_timeout(Duration::from_secs(10))
                    .build()
                    .unwrap_or_default()
            });
            let store = Store::open(&config.database);
            let engine = engine_for(&config);
            (store, engine, joined(fetcher), joined(http))
        });
        Ok(Pipeline {
            engine,
            config: Arc::new(config),
            db: Db::new(store?),
            fetcher: Arc::new(fetcher),
            http,
        })
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The same database and connection pools under a new config.
    fn reconfigured(&self, config: Config) -> Pipeline {
        Pipeline {
            engine: engine_for(&config),
            config: Arc::new(config),
            db: self.db.clone(),
            fetcher: Arc::clone(&self.fetcher),
            http: self.http.clone(),
        }
    }

    /// Registers the config's feeds in the store; returns them with their ids.
    async fn sync_feeds(&self) -> Result<Vec<(Feed, FeedId)>, StoreError> {
        let feeds: Vec<(String, String)> = self
            .config
            .feeds
            .iter()
            .map(|f| (f.url.clone(), f.name.clone()))
            .collect();
        let ids = self
            .db
            .call(move |s| s.sync_feeds(feeds.iter().map(|(u, n)| (u.as_str(), n.as_str()))))
            .await?;
        Ok(self
            .config
            .feeds
            .iter()
            .filter_map(|f| ids.get(&f.url).map(|&id| (f.clone(), id)))
            .collect())
    }
}

/// Polls every feed once, now, then delivers every pending alert once.
/// `on_feed_done` hears of each feed as its poll ends (for a progress bar).
pub async fn run_once(
    pipeline: Arc<Pipeline>,
    mut on_feed_done: impl FnMut(&FeedReport),
) -> Result<CycleReport, DaemonError> {
    let feeds = pipeline.sync_feeds().await?;
    let mut states = pipeline.db.read(|s| s.poll_states()).await?;
    let admission = Arc::new(Admission::default());
    let mut polls = JoinSet::new();
    for (index, (feed, id)) in feeds.into_iter().enumerate() {
        let pipeline = Arc::clone(&pipeline);
        let admission = Arc::clone(&admission);
        let state = states
            .remove(&id)
            .unwrap_or_else(|| new_feed_state(&feed, id));
        polls.spawn(async move { (index, poll_feed(&pipeline, &feed, state, &admission).await) });
    }
    let mut reports = Vec::new();
    while let Some(joined) = polls.join_next().await {
        match joined {
            Ok((index, report)) => {
                let report = report?;
                on_feed_done(&report);
                reports.push((index, report));
            }
            Err(e) => tracing::error!("a poll task failed: {e}"),
        }
    }
    reports.sort_by_key(|(index, _)| *index);
    prune(Arc::clone(&pipeline), None).await;
    let deliveries = notify::deliver_due(
        &pipeline.config,
        &pipeline.db,
        &pipeline.http,
        &CancellationToken::new(),
        DateTime::<Utc>::MAX_UTC,
    )
    .await?;
    // Leave the database as one tidy file: the next run should not pay for this one's writes.
    if let Err(e) = pipeline.db.call(|s| s.checkpoint()).await {
        tracing::warn!("could not fold the write-ahead log into the database: {e}");
    }
    Ok(CycleReport {
        feeds: reports.into_iter().map(|(_, r)| r).collect(),
        deliveries,
    })
}

/// Runs until `shutdown` is cancelled: polls feeds as they fall due, delivers alerts, and
/// re-reads the config when `reload` is notified (SIGHUP) or the file changes.
pub async fn run(
    pipeline: Arc<Pipeline>,
    shutdown: CancellationToken,
    reload: Arc<Notify>,
) -> Result<(), DaemonError> {
    let mut pipeline = pipeline;
    let mut feeds = pipeline.sync_feeds().await?;
    let _watcher = service::watch_config(&pipeline.config.path, Arc::clone(&reload));
    let (current, current_rx) = watch::channel(Arc::clone(&pipeline));
    let wake_delivery = Arc::new(Notify::new());
    let delivery = tokio::spawn(delivery_loop(
        current_rx,
        Arc::clone(&wake_delivery),
        shutdown.clone(),
    ));
    let indexer = Indexer::start(&pipeline.config.database);
    tracing::info!(
        feeds = feeds.len(),
        rules = pipeline.config.rules.len(),
        config = %pipeline.config.path.display(),
        "feedwatch started"
    );
    systemd::ready(&format!("watching {} feeds", feeds.len()));
    let watchdog = systemd::watchdog_interval();

    let admission = Arc::new(Admission::default());
    let started = Utc::now();
    let mut next_prune = started;
    let mut in_flight: HashMap<tokio::task::Id, FeedId> = HashMap::new();
    let mut polls: JoinSet<Result<FeedReport, StoreError>> = JoinSet::new();
    loop {
        let now = Utc::now();
        if now >= next_prune {
            next_prune = now + chrono::Duration::days(1);
            tokio::spawn(prune(Arc::clone(&pipeline), Some(indexer.removals())));
        }
        let mut states = pipeline.db.read(|s| s.poll_states()).await?;
        let mut next_wake = now + chrono_duration(watchdog.unwrap_or(MAX_SLEEP).min(MAX_SLEEP));
        for (feed, id) in &feeds {
            if in_flight.values().any(|f| f == id) {
                continue; // never poll one feed twice at the same time
            }
            // A feed never polled starts within the first minute, spread so that a config
            // of many feeds does not fire them all at once.
            let state = states
                .remove(id)
                .unwrap_or_else(|| new_feed_state(feed, *id));
            let due_at = state
                .next_poll_at
                .unwrap_or_else(|| started + first_poll_offset(feed, feeds.len()));
            match due_at {
                at if at > now => next_wake = next_wake.min(at),
                _ => {
                    let (pipeline, admission, feed) =
                        (Arc::clone(&pipeline), Arc::clone(&admission), feed.clone());
                    let task = polls
                        .spawn(async move { poll_feed(&pipeline, &feed, state, &admission).await });
                    in_flight.insert(task.id(), *id);
                }
            }
        }
        if watchdog.is_some() {
            systemd::watchdog();
        }
        let sleep = (next_wake - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(sleep) => {}
            _ = reload.notified() => {
                // Editors write in steps; let them finish, then read once.
                tokio::time::sleep(service::RELOAD_DEBOUNCE).await;
                systemd::reloading();
                match reconfigure(&pipeline).await {
                    Ok((new_pipeline, new_feeds)) => {
                        pipeline = new_pipeline;
                        feeds = new_feeds;
                        current.send_replace(Arc::clone(&pipeline));
                        tracing::info!(
                            feeds = feeds.len(),
                            rules = pipeline.config.rules.len(),
                            "config reloaded"
                        );
                    }
                    Err(e) => tracing::error!(
                        "config not reloaded, still running on the previous one: {e}"
                    ),
                }
                systemd::ready(&format!("watching {} feeds", feeds.len()));
            }
            Some(joined) = polls.join_next_with_id(), if !polls.is_empty() => {
                match joined {
                    Ok((task, Ok(report))) => {
                        in_flight.remove(&task);
                        if report.result.as_ref().is_ok_and(|s| s.new_alerts > 0) {
                            wake_delivery.notify_one();
                        }
                        if report.result.as_ref().is_ok_and(|s| s.new_articles > 0) {
                            indexer.stored();
                        }
                    }
                    Ok((task, Err(e))) => {
                        in_flight.remove(&task);
                        tracing::error!("database error while polling: {e}");
                    }
                    Err(e) => {
                        in_flight.remove(&e.id());
                        tracing::error!("a poll task failed: {e}");
                    }
                }
            }
        }
    }

    systemd::stopping();
    tracing::info!("stopping: letting in-flight deliveries finish");
    // A poll can be dropped at any await: its database writes run to completion on the
    // blocking pool either way, and whatever it had not stored is fetched again next time.
    polls.abort_all();
    let drain = async {
        while polls.join_next().await.is_some() {}
        let _ = delivery.await;
        indexer.stop().await;
    };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        tracing::warn!(
            "work still running after {} s was abandoned; the outbox keeps what was not sent",
            SHUTDOWN_GRACE.as_secs()
        );
    }
    tracing::info!("feedwatch stopped");
    Ok(())
}

/// The state of a feed the store has no row for yet: never polled.
fn new_feed_state(feed: &Feed, id: FeedId) -> FeedState {
    FeedState {
        id,
        url: feed.url.clone(),
        name: feed.name.clone(),
        ..FeedState::default()
    }
}

/// Where in the start-up window a feed's first poll falls.
fn first_poll_offset(feed: &Feed, feeds: usize) -> chrono::Duration {
    let window = FIRST_POLL_SPACING
        .saturating_mul(u32::try_from(feeds).unwrap_or(u32::MAX))
        .min(FIRST_POLL_WINDOW)
        .min(feed.schedule.period(Utc::now()));
    chrono_duration(window.mul_f64(jitter_fraction(&feed.url)))
}

/// Removes articles that left their feed longer ago than the retention period, and tells the
/// daemon's search indexer (`run --once` has none) to take them out of the index.
async fn prune(pipeline: Arc<Pipeline>, indexer: Option<Removals>) {
    let cutoff = Utc::now() - chrono_duration(pipeline.config.retention);
    match pipeline.db.call(move |s| s.prune(cutoff)).await {
        Ok(0) => {}
        Ok(n) => {
            tracing::info!("pruned {n} articles no longer in their feeds");
            if let Some(indexer) = indexer {
                indexer.queued();
            }
        }
        Err(e) => tracing::error!("pruning old articles failed: {e}"),
    }
}

/// Reads the config file again and builds the pipeline for it, keeping the database, the
/// connection pools and every feed's state. Any error leaves the running pipeline untouched.
async fn reconfigure(current: &Pipeline) -> Result<(Arc<Pipeline>, Vec<(Feed, FeedId)>), String> {
    let path = current.config.path.clone();
    let config = tokio::task::spawn_blocking(move || Config::load(&path))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    if config.database != current.config.database {
        return Err(format!(
            "`database` changed to {}; that needs a restart",
            config.database.display()
        ));
    }
    let pipeline = Arc::new(current.reconfigured(config));
    let feeds = pipeline.sync_feeds().await.map_err(|e| e.to_string())?;
    Ok((pipeline, feeds))
}

async fn delivery_loop(
    current: watch::Receiver<Arc<Pipeline>>,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
) {
    loop {
        let pipeline = Arc::clone(&current.borrow());
        let now = Utc::now();
        match notify::deliver_due(
            &pipeline.config,
            &pipeline.db,
            &pipeline.http,
            &shutdown,
            now,
        )
        .await
        {
            Ok(stats) if stats != DeliveryStats::default() => tracing::debug!(?stats, "delivered"),
            Ok(_) => {}
            Err(e) => tracing::error!("outbox: {e}"),
        }
        if shutdown.is_cancelled() {
            return;
        }
        let next = pipeline
            .db
            .call(|s| s.next_delivery_at())
            .await
            .ok()
            .flatten();
        let sleep = next
            .map(|at| (at - Utc::now()).to_std().unwrap_or(Duration::ZERO))
            .unwrap_or(MAX_SLEEP)
            .min(MAX_SLEEP);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(sleep) => {}
        }
    }
}

//! The run loop: polls feeds when they are due, delivers the outbox, stops cleanly.
//!
//! [`poll_feed`] is one feed through the whole pipeline — fetch, parse, identify, match, store —
//! and records the outcome on the feed, so one bad feed is a logged, stored error and never
//! stops the others. [`run_once`] polls every feed now and delivers what is pending; [`run`]
//! keeps going: one loop sleeps until the earliest `next_poll_at` (at most a minute, because
//! tokio's clock stops while a laptop sleeps), and a delivery task drains the outbox.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::alert::{Alert, FeedRef};
use crate::config::{Config, DEFAULT_FETCH_TIMEOUT, Feed};
use crate::dedup::{Identity, identify};
use crate::fetch::{Body, Fetched, Fetcher, Hints, Limits, MAX_SERVER_PAUSE};
use crate::matcher::{Engine, RuleSpec};
use crate::notify::{self, DeliveryStats};
use crate::parse::{self, ParsedFeed};
use crate::scheduler::{backoff, chrono_duration, jitter_fraction};
use crate::service::{self, systemd};
use crate::store::{Db, FeedId, FeedState, NewEntry, PollOutcome, PollWrite, Store, StoreError};

/// The longest the loop sleeps: tokio's monotonic clock stops during suspend, wall-clock
/// `next_poll_at` does not, so compare at least this often.
const MAX_SLEEP: Duration = Duration::from_secs(60);
/// Feeds fetched at once.
const CONCURRENT_POLLS: usize = 16;
/// How long in-flight work may take to finish after a stop is asked for.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// First polls after start are spread over a window that grows with the number of feeds (a
/// handful start at once, a thousand over a minute) and never exceeds this.
const FIRST_POLL_WINDOW: Duration = Duration::from_secs(60);
const FIRST_POLL_SPACING: Duration = Duration::from_millis(50);
/// The shortest interval `adaptive = true` goes down to.
const MIN_ADAPTIVE_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the pipeline needs, built once from a config.
pub struct Pipeline {
    pub config: Arc<Config>,
    engine: Engine,
    db: Db,
    fetcher: Arc<Fetcher>,
    http: reqwest::Client,
}

/// What one poll of one feed did.
#[derive(Debug, Clone)]
pub struct FeedReport {
    pub feed: String,
    pub result: Result<PollSummary, String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollSummary {
    pub not_modified: bool,
    pub entries: usize,
    pub new_articles: usize,
    pub new_alerts: usize,
    /// Every entry was new (and there was at least one).
    pub all_new: bool,
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

impl Pipeline {
    pub fn open(config: Config) -> Result<Pipeline, DaemonError> {
        let store = Store::open(&config.database)?;
        Ok(Pipeline {
            engine: engine_for(&config),
            config: Arc::new(config),
            db: Db::new(store),
            fetcher: Arc::new(Fetcher::new(DEFAULT_FETCH_TIMEOUT)),
            http: reqwest::Client::builder()
                .user_agent(concat!("feedwatch/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
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
    let limit = Arc::new(Semaphore::new(CONCURRENT_POLLS));
    let mut polls = JoinSet::new();
    for (index, (feed, id)) in feeds.into_iter().enumerate() {
        let pipeline = Arc::clone(&pipeline);
        let limit = Arc::clone(&limit);
        let state = states
            .remove(&id)
            .unwrap_or_else(|| new_feed_state(&feed, id));
        polls.spawn(async move {
            let _permit = limit.acquire_owned().await;
            (index, poll_feed(&pipeline, &feed, state).await)
        });
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
    prune(Arc::clone(&pipeline)).await;
    let deliveries = notify::deliver_due(
        &pipeline.config,
        &pipeline.db,
        &pipeline.http,
        &CancellationToken::new(),
        DateTime::<Utc>::MAX_UTC,
    )
    .await?;
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
    tracing::info!(
        feeds = feeds.len(),
        rules = pipeline.config.rules.len(),
        config = %pipeline.config.path.display(),
        "feedwatch started"
    );
    systemd::ready(&format!("watching {} feeds", feeds.len()));
    let watchdog = systemd::watchdog_interval();

    let limit = Arc::new(Semaphore::new(CONCURRENT_POLLS));
    let started = Utc::now();
    let mut next_prune = started;
    let mut in_flight: HashMap<tokio::task::Id, FeedId> = HashMap::new();
    let mut polls: JoinSet<Result<FeedReport, StoreError>> = JoinSet::new();
    loop {
        let now = Utc::now();
        if now >= next_prune {
            next_prune = now + chrono::Duration::days(1);
            tokio::spawn(prune(Arc::clone(&pipeline)));
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
                    let (pipeline, limit, feed) =
                        (Arc::clone(&pipeline), Arc::clone(&limit), feed.clone());
                    let task = polls.spawn(async move {
                        let _permit = limit.acquire_owned().await;
                        poll_feed(&pipeline, &feed, state).await
                    });
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

/// Removes articles that left their feed longer ago than the retention period.
async fn prune(pipeline: Arc<Pipeline>) {
    let cutoff = Utc::now() - chrono_duration(pipeline.config.retention);
    match pipeline.db.call(move |s| s.prune(cutoff)).await {
        Ok(0) => {}
        Ok(n) => tracing::info!("pruned {n} articles no longer in their feeds"),
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

/// One feed through the pipeline, from its `state` as read at the start of the cycle (a feed
/// is never polled twice at once, so nothing else changes it meanwhile). Feed errors are
/// recorded and reported, not returned: only a database failure is an `Err`.
pub async fn poll_feed(
    pipeline: &Pipeline,
    feed: &Feed,
    state: FeedState,
) -> Result<FeedReport, StoreError> {
    let id = state.id;
    let now = Utc::now();
    if let Some(gone_at) = state.gone_at {
        let error = format!(
            "{}: the server said 410 Gone on {}; feedwatch no longer polls this feed \
             (remove it from the config, or give it a new url)",
            state.poll_url(),
            gone_at.format("%Y-%m-%d %H:%M UTC")
        );
        tracing::warn!(feed = %feed.name, "{error}");
        return Ok(FeedReport {
            feed: feed.name.clone(),
            result: Err(error),
        });
    }
    let period = poll_period(feed, &state, now);
    let limits = Limits {
        max_body: feed.max_body_bytes,
        timeout: feed.timeout,
    };
    let fetched = pipeline
        .fetcher
        .fetch_limited(state.poll_url(), &state.validators, &limits)
        .await;

    // The earliest the server wants to hear from us again (Cache-Control or Retry-After).
    let not_before;
    let mut ingest = Found::default();
    let (outcome, result) = match fetched {
        Ok(fetched) => {
            let hints = fetched.hints().clone();
            let max_age = hints.max_age.map(|age| now + chrono_duration(age));
            if let Some(to) = &hints.moved_to {
                tracing::warn!(
                    feed = %feed.name,
                    "moved permanently from {} to {to}; polling the new address from now on \
                     (update `url` in the config)",
                    state.poll_url()
                );
            }
            match fetched {
                Fetched::NotModified { validators, .. } => {
                    // The feed's `<ttl>` from its last body still holds.
                    not_before = max_age.max(ttl_floor(state.ttl, now));
                    (
                        PollOutcome::Success {
                            status: 304,
                            validators,
                            title: None,
                            moved_to: hints.moved_to,
                            missed_items: None,
                            ttl: None,
                        },
                        Ok(PollSummary {
                            not_modified: true,
                            ..PollSummary::default()
                        }),
                    )
                }
                Fetched::Body(body) => {
                    let (outcome, result, found) =
                        parse_and_match(pipeline, feed, id, body, hints, period, now).await?;
                    ingest = found;
                    let ttl = match &outcome {
                        PollOutcome::Success { ttl, .. } => *ttl,
                        PollOutcome::Failure { .. } => None,
                    };
                    if let Some(ttl) = ttl.filter(|&t| t > period && Some(t) != state.ttl) {
                        tracing::info!(
                            feed = %feed.name,
                            "the feed asks not to be polled more often than every {} (RSS \
                             ttl); polling it at that rate",
                            humantime::format_duration(ttl)
                        );
                    }
                    not_before = max_age.max(ttl_floor(ttl, now));
                    (outcome, result)
                }
            }
        }
        Err(e) => {
            let pause = e.is_pause();
            not_before = e.retry_after();
            let (mut outcome, result) = failure(e.status(), e.to_string(), !pause);
            if e.is_gone() {
                tracing::error!(
                    feed = %feed.name,
                    "{e}: the feed is gone for good; it will not be polled again \
                     (remove it from the config)"
                );
                if let PollOutcome::Failure { gone, .. } = &mut outcome {
                    *gone = true;
                }
            }
            (outcome, result)
        }
    };

    let failures = match &outcome {
        PollOutcome::Failure {
            counts_as_failure: true,
            ..
        } => state.consecutive_failures + 1,
        _ => 0,
    };
    // With `adaptive`, a missed-items warning shortens the interval from this poll on.
    let period = match &outcome {
        PollOutcome::Success {
            missed_items: Some(shorter),
            ..
        } if feed.adaptive => period.min(*shorter),
        _ => period,
    };
    let next_poll_at = next_poll_at(feed, &outcome, failures, period, now, not_before);
    // Articles, matches, outbox rows and the feed's new state: one transaction, durable
    // before this returns.
    let stats = pipeline
        .db
        .commit_poll(PollWrite {
            feed: id,
            feed_url: feed.url.clone(),
            present: ingest.present,
            new: ingest.new,
            outcome,
            now,
            next_poll_at,
        })
        .await?;
    let result = result.map(|summary| PollSummary {
        new_articles: stats.new_articles,
        new_alerts: stats.new_alerts,
        ..summary
    });

    match &result {
        Ok(s) if s.not_modified => tracing::debug!(feed = %feed.name, "not modified"),
        Ok(s) => tracing::info!(
            feed = %feed.name,
            entries = s.entries,
            new = s.new_articles,
            alerts = s.new_alerts,
            "polled"
        ),
        Err(e) => tracing::warn!(
            feed = %feed.name,
            failures,
            next_poll = %next_poll_at.format("%Y-%m-%d %H:%M:%S UTC"),
            "poll failed: {e}"
        ),
    }
    Ok(FeedReport {
        feed: feed.name.clone(),
        result,
    })
}

/// What a fetched body holds that the store needs: the identities in the feed that are stored
/// already, and the articles not stored yet with the alerts they raise.
#[derive(Default)]
struct Found {
    present: Vec<Identity>,
    new: Vec<NewEntry>,
}

/// Parses a fetched body, finds its new articles and matches them; a parse failure is the
/// feed's error.
async fn parse_and_match(
    pipeline: &Pipeline,
    feed: &Feed,
    id: FeedId,
    body: Body,
    hints: Hints,
    period: Duration,
    now: DateTime<Utc>,
) -> Result<(PollOutcome, Result<PollSummary, String>, Found), StoreError> {
    let base = body.final_url.clone();
    let content_type = body.content_type.clone();
    let bytes = body.bytes;
    // A panic inside the parser ends this task only; it becomes the feed's error.
    let parsed = tokio::task::spawn_blocking(move || {
        parse::parse(&bytes, content_type.as_deref(), Some(&base))
    })
    .await;
    let parsed = match parsed {
        Ok(Ok(parsed)) => parsed,
        Ok(Err(e)) => {
            let (outcome, result) = failure(Some(body.status), e.to_string(), true);
            return Ok((outcome, result, Found::default()));
        }
        Err(panic) => {
            let (outcome, result) = failure(
                Some(body.status),
                format!("the parser crashed on this feed: {panic}"),
                true,
            );
            return Ok((outcome, result, Found::default()));
        }
    };
    let title = Some(parsed.title.clone()).filter(|t| !t.is_empty());
    let ttl = parsed.ttl;
    let (summary, found, had_articles) = find_new(pipeline, feed, id, parsed, now).await?;
    // Only a feed that had been read before can have rolled past items we never saw.
    let missed_items = (summary.all_new && had_articles).then(|| {
        let suggested = shorter_interval(period);
        warn_missed_items(feed, summary.new_articles, period, suggested);
        suggested
    });
    Ok((
        PollOutcome::Success {
            status: body.status,
            validators: body.validators,
            title,
            moved_to: hints.moved_to,
            missed_items,
            ttl,
        },
        Ok(summary),
        found,
    ))
}

fn warn_missed_items(feed: &Feed, items: usize, period: Duration, suggested: Duration) {
    let (every, shorter) = (
        humantime::format_duration(period),
        humantime::format_duration(suggested),
    );
    if feed.adaptive {
        tracing::warn!(
            feed = %feed.name,
            "all {items} items were new: some were probably published and dropped between two \
             polls {every} apart; polling every {shorter} from now on (adaptive = true)"
        );
    } else {
        tracing::warn!(
            feed = %feed.name,
            "all {items} items were new: some were probably published and dropped between two \
             polls {every} apart; consider `interval = \"{shorter}\"` or `adaptive = true`"
        );
    }
}

/// Half the current period, but never below a minute: a feed that needs more is better read
/// through a different feed.
fn shorter_interval(period: Duration) -> Duration {
    (period / 2).max(MIN_ADAPTIVE_INTERVAL).min(period)
}

/// The feed's period, shortened by an earlier missed-items warning when `adaptive` is on.
fn poll_period(feed: &Feed, state: &FeedState, now: DateTime<Utc>) -> Duration {
    let period = feed.schedule.period(now);
    match state.suggested_interval {
        Some(shorter) if feed.adaptive => period.min(shorter),
        _ => period,
    }
}

fn failure(
    status: Option<u16>,
    error: String,
    counts_as_failure: bool,
) -> (PollOutcome, Result<PollSummary, String>) {
    (
        PollOutcome::Failure {
            status,
            error: error.clone(),
            counts_as_failure,
            gone: false,
        },
        Err(error),
    )
}

/// The earliest next poll a feed's RSS `<ttl>` allows.
fn ttl_floor(ttl: Option<Duration>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    ttl.map(|ttl| now + chrono_duration(ttl))
}

/// When to poll again: the schedule (or the adaptive period), pushed back by backoff after
/// failures, never sooner than the server asked (`not_before`, capped at a day), and far in
/// the future for a feed that is gone.
fn next_poll_at(
    feed: &Feed,
    outcome: &PollOutcome,
    failures: u32,
    period: Duration,
    now: DateTime<Utc>,
    not_before: Option<DateTime<Utc>>,
) -> DateTime<Utc> {
    let scheduled = feed.schedule.next_after(now);
    let regular = if period < feed.schedule.period(now) {
        scheduled.min(now + chrono_duration(period))
    } else {
        scheduled
    };
    let planned = match outcome {
        PollOutcome::Failure { gone: true, .. } => return now + chrono::Duration::days(3650),
        PollOutcome::Failure { .. } if failures > 0 => {
            let delay = backoff(period, failures, jitter_fraction(&feed.url));
            regular.max(now + chrono_duration(delay))
        }
        _ => regular,
    };
    let server_floor = not_before.map(|t| t.min(now + chrono_duration(MAX_SERVER_PAUSE)));
    planned.max(server_floor.unwrap_or(planned))
}

/// Identifies the parsed entries and matches the ones this feed has not stored yet. The
/// summary counts candidates; the store's counts replace them once written. Also says whether
/// the feed had any article stored before.
async fn find_new(
    pipeline: &Pipeline,
    feed: &Feed,
    id: FeedId,
    parsed: ParsedFeed,
    now: DateTime<Utc>,
) -> Result<(PollSummary, Found, bool), StoreError> {
    let entries = parsed.articles.len();
    // One feed may repeat an entry; keep the first of each identity.
    let mut seen_here = HashSet::new();
    let mut articles = Vec::new();
    let mut identities: Vec<Identity> = Vec::new();
    for article in parsed.articles {
        let identity = identify(&article);
        if seen_here.insert(identity.id.clone()) {
            articles.push(article);
            identities.push(identity);
        }
    }
    let unique = identities.len();
    let (identities, unseen, had_articles) = pipeline
        .db
        .read(move |s| {
            let unseen = s.not_stored(id, &identities)?;
            // Asked only when every entry is new: otherwise some were stored.
            let had_articles = !unseen.iter().all(|&new| new) || s.has_articles(id)?;
            Ok((identities, unseen, had_articles))
        })
        .await?;

    let feed_ref = FeedRef {
        name: feed.name.clone(),
        url: feed.url.clone(),
        title: parsed.title.clone(),
    };
    let mut new = Vec::new();
    // New articles get their last-seen mark when they are stored; only the others need one.
    let mut present = Vec::new();
    for ((article, identity), is_new) in articles.into_iter().zip(identities).zip(unseen) {
        if !is_new {
            present.push(identity);
            continue;
        }
        let alerts: Vec<(Alert, Vec<String>)> = pipeline
            .engine
            .explain(&article, &feed.name)
            .into_iter()
            .map(|e| {
                let (m, highlights) = (e.matched, e.highlights);
                let rule = &pipeline.config.rules[m.rule];
                let alert = Alert::new(
                    &m.name,
                    feed_ref.clone(),
                    &article,
                    &identity.id,
                    m.terms,
                    now,
                )
                .with_snippet(&article, &highlights);
                (alert, rule.notify.clone())
            })
            .collect();
        new.push((article, identity, alerts));
    }
    let summary = PollSummary {
        not_modified: false,
        all_new: !new.is_empty() && new.len() == unique,
        entries,
        new_articles: new.len(),
        new_alerts: new.iter().map(|(_, _, alerts)| alerts.len()).sum(),
    };
    Ok((summary, Found { present, new }, had_articles))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch::Validators;
    use crate::scheduler::Schedule;

    fn feed_every(interval: Duration) -> Feed {
        Feed {
            name: "news".into(),
            url: "http://news.example/feed.xml".into(),
            schedule: Schedule::Interval(interval),
            max_body_bytes: 10_000_000,
            timeout: Duration::from_secs(30),
            adaptive: false,
            tags: Vec::new(),
        }
    }

    fn success(ttl: Option<Duration>) -> PollOutcome {
        PollOutcome::Success {
            status: 200,
            validators: Validators::default(),
            title: None,
            moved_to: None,
            missed_items: None,
            ttl,
        }
    }

    #[test]
    fn a_feed_is_never_polled_sooner_than_its_rss_ttl() {
        let now = Utc::now();
        let every = Duration::from_secs(15 * 60);
        let ttl = Some(Duration::from_secs(2 * 60 * 60));
        let feed = feed_every(every);
        let next = next_poll_at(&feed, &success(ttl), 0, every, now, ttl_floor(ttl, now));
        assert_eq!(next, now + chrono::Duration::hours(2));
    }

    #[test]
    fn a_ttl_shorter_than_the_interval_changes_nothing() {
        let now = Utc::now();
        let every = Duration::from_secs(60 * 60);
        let ttl = Some(Duration::from_secs(5 * 60));
        let feed = feed_every(every);
        let next = next_poll_at(&feed, &success(ttl), 0, every, now, ttl_floor(ttl, now));
        assert_eq!(next, feed.schedule.next_after(now));
    }
}

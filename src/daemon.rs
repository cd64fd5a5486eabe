//! The run loop: polls feeds when they are due, delivers the outbox, stops cleanly.
//!
//! Each feed's poll is [`poll_feed`]: one bad feed is a logged, stored error and never stops
//! the others. [`run_once`] polls every feed now and delivers what is pending; [`run`] keeps
//! going: one loop sleeps until the earliest `next_poll_at` (at most a minute, because tokio's
//! clock stops while a laptop sleeps), a delivery task drains the outbox, and the search
//! indexer (see `indexer`) adds new articles to the search index on a thread of its own.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, watch};
use tokio::task::{JoinError, JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ConfigError, Feed};
use crate::http::{self, Liveness};
use crate::indexer::{Indexer, Removals};
use crate::notify::{self, DeliveryStats};
use crate::pipeline::Pipeline;
use crate::poll::{Admission, FeedReport, PollRequest, poll_feed};
use crate::scheduler::{chrono_duration, jitter_fraction};
use crate::service::{self, memory, systemd};
use crate::store::{FeedId, FeedState, ServerWait, StoreError};

/// The longest the loop sleeps: tokio's monotonic clock stops during suspend, wall-clock
/// `next_poll_at` does not, so compare at least this often.
const MAX_SLEEP: Duration = Duration::from_secs(60);
/// The least time between two looks over the feeds. Each look reads every feed's due time, and
/// a hundred thousand feeds at 15 minutes fall due 9 ms apart: looking at each due time took a
/// quarter of a core. A poll starts up to this much after it is due, never before; a poll that
/// could not record its next time is tried again after this much, not at once.
const LOOK_GAP: Duration = Duration::from_secs(1);
/// How long in-flight work may take to finish after a stop is asked for.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// First polls after start, and polls that fell due while the daemon was stopped, are spread
/// over a window of this much a feed, up to the feed's interval: a handful start at once, a
/// thousand over 50 s, a hundred thousand over their whole interval. Polls started together
/// stay together at every later interval, and a hundred thousand cold polls at once held both
/// CPUs and hundreds of megabytes for minutes, then nothing for the rest of the interval.
pub const FIRST_POLL_SPACING: Duration = Duration::from_millis(50);
/// How often memory freed while polls go on is given back to the system.
const RELEASE_MEMORY_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Http(#[from] http::HttpError),
}

/// What `run --once` did.
#[derive(Debug, Default)]
pub struct CycleReport {
    pub feeds: Vec<FeedReport>,
    /// Feeds not polled because their server asked for a pause that has not ended.
    pub waiting: Vec<WaitingFeed>,
    pub deliveries: DeliveryStats,
}

/// A feed `run --once` left alone because its server asked not to be polled yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitingFeed {
    pub feed: String,
    pub wait: ServerWait,
}

/// Polls every feed once, now, except those whose server asked for a pause that has not
/// ended (as the daemon would), then delivers every pending alert once. `on_feed_done` hears
/// of each feed as its poll ends (for a progress bar).
pub async fn run_once(
    pipeline: Arc<Pipeline>,
    mut on_feed_done: impl FnMut(&FeedReport),
) -> Result<CycleReport, DaemonError> {
    let feeds = pipeline.sync_feeds().await?;
    let mut states = pipeline.db.read(|s| s.poll_states()).await?;
    let admission = Arc::new(Admission::default());
    let mut polls = JoinSet::new();
    let mut waiting = Vec::new();
    let now = Utc::now();
    let mut due = Vec::new();
    for (index, id) in feeds {
        let feed = pipeline.config.feeds[index].clone();
        let state = states
            .remove(&id)
            .unwrap_or_else(|| new_feed_state(&feed, id));
        match state.waiting_at(now) {
            Some(wait) => waiting.push(WaitingFeed {
                feed: feed.name.clone(),
                wait: wait.clone(),
            }),
            None => due.push((index, PollRequest { feed, state })),
        }
    }
    // Polls are started a window at a time, each host's feeds spread over the run so that a
    // window holds many hosts: a poll waiting for its host's turn costs memory, and ten
    // thousand of them at once cost more than the fetches themselves.
    let window = pipeline.fetcher.max_in_flight() * 2;
    let mut due = interleave_hosts(due).into_iter();
    let mut reports = Vec::new();
    loop {
        while polls.len() < window
            && let Some((index, request)) = due.next()
        {
            let (pipeline, admission) = (Arc::clone(&pipeline), Arc::clone(&admission));
            polls.spawn(async move { (index, poll_feed(&pipeline, &admission, request).await) });
        }
        let Some(joined) = polls.join_next().await else {
            break;
        };
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
        waiting,
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
    let mut daemon = Daemon::start(pipeline, &shutdown, &reload).await?;
    loop {
        daemon.liveness.beat();
        daemon.prune_when_due();
        // The feeds are looked over when the earliest is due and at most once a [`LOOK_GAP`],
        // not each time a poll ends: each look reads every feed's due time.
        if Utc::now() >= daemon.next_wake && daemon.until_next_look().is_zero() {
            daemon.looked_at = Some(Instant::now());
            daemon.next_wake = daemon.start_due_polls().await?;
        }
        daemon.release_memory_when_due().await;
        if daemon.watchdog.is_some() {
            systemd::watchdog();
        }
        let sleep = (daemon.next_wake - Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO)
            .max(daemon.until_next_look())
            .min(daemon.nap());
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(sleep) => {}
            _ = reload.notified() => {
                daemon.reload().await;
                daemon.next_wake = Utc::now();
            }
            Some(joined) = daemon.polls.join_next_with_id(), if !daemon.polls.is_empty() => {
                daemon.poll_ended(joined);
            }
        }
    }
    daemon.stop().await;
    Ok(())
}

/// The running daemon: the config it runs on, the polls under way, and the tasks beside the
/// loop (delivery, search indexing).
struct Daemon {
    pipeline: Arc<Pipeline>,
    feeds: Vec<Watched>,
    /// Where the delivery task reads the pipeline from, so that it follows reloads.
    current: watch::Sender<Arc<Pipeline>>,
    wake_delivery: Arc<Notify>,
    delivery: JoinHandle<()>,
    indexer: Indexer,
    /// The HTTP listener, when `[http]` asks for one, and what the loop tells its health checks.
    http: Option<JoinHandle<()>>,
    liveness: Arc<Liveness>,
    admission: Arc<Admission>,
    started: DateTime<Utc>,
    next_prune: DateTime<Utc>,
    polls: JoinSet<Result<FeedReport, StoreError>>,
    in_flight: HashMap<tokio::task::Id, FeedId>,
    /// The feeds of `in_flight`, to skip them in one lookup each.
    polling: HashSet<FeedId>,
    /// When the loop looks over the feeds next: the earliest next poll it knows of.
    next_wake: DateTime<Utc>,
    /// When it last did (see [`LOOK_GAP`]).
    looked_at: Option<Instant>,
    /// Whether due feeds were left unstarted because [`Daemon::poll_window`] polls were
    /// under way: the loop looks again once half of them have ended.
    saturated: bool,
    /// When freed memory last went back to the system, and whether polls ended since.
    trimmed_at: Instant,
    polled_since_trim: bool,
    watchdog: Option<Duration>,
    /// Notifies `reload` when the config file changes, for as long as it is kept.
    _watcher: Option<::notify::RecommendedWatcher>,
}

impl Daemon {
    /// Registers the config's feeds, starts delivery and the search indexer, and tells
    /// systemd the daemon is ready.
    async fn start(
        pipeline: Arc<Pipeline>,
        shutdown: &CancellationToken,
        reload: &Arc<Notify>,
    ) -> Result<Daemon, DaemonError> {
        // A port in use stops the daemon here, before anything else has started.
        let listener = match &pipeline.config.http {
            Some(config) => Some(http::bind(config.listen).await?),
            None => None,
        };
        let feeds = pipeline.sync_feeds().await?;
        let watcher = service::watch_config(&pipeline.config.path, Arc::clone(reload));
        let (current, current_rx) = watch::channel(Arc::clone(&pipeline));
        let wake_delivery = Arc::new(Notify::new());
        let delivery = tokio::spawn(delivery_loop(
            current_rx,
            Arc::clone(&wake_delivery),
            shutdown.clone(),
        ));
        let indexer = Indexer::start(&pipeline.config.database);
        let liveness = Arc::new(Liveness::default());
        let http = listener.map(|listener| {
            http::serve(
                listener,
                current.subscribe(),
                Arc::clone(&liveness),
                shutdown.clone(),
            )
        });
        tracing::info!(
            feeds = feeds.len(),
            rules = pipeline.config.rules.len(),
            config = %pipeline.config.path.display(),
            "feedwatch started"
        );
        systemd::ready(&format!("watching {} feeds", feeds.len()));
        let started = Utc::now();
        let feeds = watched(&pipeline.config, feeds, &[], started);
        Ok(Daemon {
            pipeline,
            feeds,
            current,
            wake_delivery,
            delivery,
            indexer,
            http,
            liveness,
            admission: Arc::new(Admission::default()),
            started,
            next_prune: started,
            polls: JoinSet::new(),
            in_flight: HashMap::new(),
            polling: HashSet::new(),
            next_wake: started,
            looked_at: None,
            saturated: false,
            trimmed_at: Instant::now(),
            polled_since_trim: false,
            watchdog: systemd::watchdog_interval(),
            _watcher: watcher,
        })
    }

    /// Gives the memory freed since the last time back to the system once a burst of polls is
    /// over, and at least once a minute while polls go on: the allocator keeps it otherwise.
    /// Once a burst is over, SQLite's page caches are emptied first: an idle daemon needs none.
    async fn release_memory_when_due(&mut self) {
        let burst_over = self.polls.is_empty();
        if self.polled_since_trim
            && (burst_over || self.trimmed_at.elapsed() >= RELEASE_MEMORY_EVERY)
        {
            if burst_over && let Err(e) = self.pipeline.db.release_memory().await {
                tracing::debug!("emptying the database's page caches: {e}");
            }
            memory::release_free();
            self.trimmed_at = Instant::now();
            self.polled_since_trim = false;
        }
    }

    /// How long until the loop may look over the feeds again.
    fn until_next_look(&self) -> Duration {
        self.looked_at
            .map_or(Duration::ZERO, |at| LOOK_GAP.saturating_sub(at.elapsed()))
    }

    /// The longest the loop sleeps: a minute, or less to keep systemd's watchdog fed.
    fn nap(&self) -> Duration {
        self.watchdog.unwrap_or(MAX_SLEEP).min(MAX_SLEEP)
    }

    /// Prunes old articles once a day, in the background.
    fn prune_when_due(&mut self) {
        let now = Utc::now();
        if now >= self.next_prune {
            self.next_prune = now + chrono::Duration::days(1);
            let removals = Some(self.indexer.removals());
            tokio::spawn(prune(Arc::clone(&self.pipeline), removals));
        }
    }

    /// Starts a poll of every feed that is due and not being polled already; returns when the
    /// loop should look again. The look reads only when each feed is due; a poll reads its
    /// feed's whole state as it starts.
    async fn start_due_polls(&mut self) -> Result<DateTime<Utc>, StoreError> {
        let now = Utc::now();
        let due = self.pipeline.db.read(|s| s.next_polls()).await?;
        let mut next_wake = now + chrono_duration(self.nap());
        let window = self.poll_window();
        let pipeline = Arc::clone(&self.pipeline);
        for &Watched {
            index,
            id,
            spread_at,
        } in &self.feeds
        {
            if self.polling.contains(&id) {
                continue; // never poll one feed twice at the same time
            }
            if self.polls.len() >= window {
                self.saturated = true;
                break;
            }
            let Some(&next_poll_at) = due.get(&id) else {
                continue; // gone (410): not polled again
            };
            let feed = &pipeline.config.feeds[index];
            let due_at = due_at(next_poll_at, self.started, spread_at);
            if due_at > now {
                next_wake = next_wake.min(due_at);
                continue;
            }
            let (pipeline, admission) = (Arc::clone(&pipeline), Arc::clone(&self.admission));
            let feed = feed.clone();
            let task = self.polls.spawn(async move {
                let state = pipeline.db.read(move |s| s.poll_state(id)).await?;
                poll_feed(&pipeline, &admission, PollRequest { feed, state }).await
            });
            self.in_flight.insert(task.id(), id);
            self.polling.insert(id);
        }
        Ok(next_wake)
    }

    /// Polls under way at most, as `run --once` starts them: a poll waiting for its host's
    /// turn or a fetch slot holds memory, and a hundred thousand of them at once held gigabytes.
    fn poll_window(&self) -> usize {
        self.pipeline.fetcher.max_in_flight() * 2
    }

    /// Hands what a finished poll stored to delivery and the search indexer.
    fn poll_ended(
        &mut self,
        joined: Result<(tokio::task::Id, Result<FeedReport, StoreError>), JoinError>,
    ) {
        let task = match &joined {
            Ok((task, _)) => *task,
            Err(e) => e.id(),
        };
        if let Some(feed) = self.in_flight.remove(&task) {
            self.polling.remove(&feed);
        }
        self.polled_since_trim = true;
        // The feed's next poll; at once (it is still due) if the poll could not record one.
        let next = match &joined {
            Ok((_, Ok(report))) => report.next_poll_at,
            _ => Some(Utc::now()),
        };
        if let Some(next) = next {
            self.next_wake = self.next_wake.min(next);
        }
        // Feeds left due for want of room: look again once half the window is free, not at
        // each poll's end, which would read every feed's state for each.
        if self.saturated && self.polls.len() <= self.poll_window() / 2 {
            self.saturated = false;
            self.next_wake = Utc::now();
        }
        match joined {
            Ok((_, Ok(report))) => {
                self.liveness.stored(None);
                if report.result.as_ref().is_ok_and(|s| s.new_alerts > 0) {
                    self.wake_delivery.notify_one();
                }
                if report.result.as_ref().is_ok_and(|s| s.new_articles > 0) {
                    self.indexer.stored();
                }
            }
            Ok((_, Err(e))) => {
                tracing::error!("database error while polling: {e}");
                self.liveness.stored(Some(e.to_string()));
            }
            Err(e) => tracing::error!("a poll task failed: {e}"),
        }
    }

    /// Reads the config again and runs on it from now on; a config that does not load leaves
    /// the running one in place.
    async fn reload(&mut self) {
        // Editors write in steps; let them finish, then read once.
        tokio::time::sleep(service::RELOAD_DEBOUNCE).await;
        systemd::reloading();
        match reconfigure(&self.pipeline).await {
            Ok(Reloaded { pipeline, feeds }) => {
                self.feeds = watched(&pipeline.config, feeds, &self.feeds, Utc::now());
                self.pipeline = pipeline;
                self.current.send_replace(Arc::clone(&self.pipeline));
                tracing::info!(
                    feeds = self.feeds.len(),
                    rules = self.pipeline.config.rules.len(),
                    "config reloaded"
                );
            }
            Err(e) => {
                tracing::error!("config not reloaded, still running on the previous one: {e}")
            }
        }
        systemd::ready(&format!("watching {} feeds", self.feeds.len()));
    }

    /// Stops polling and lets deliveries and indexing finish, for a few seconds at most.
    async fn stop(self) {
        let Daemon {
            mut polls,
            delivery,
            indexer,
            http,
            liveness,
            ..
        } = self;
        liveness.stopping();
        systemd::stopping();
        tracing::info!("stopping: letting in-flight deliveries finish");
        // A poll can be dropped at any await: its database writes run to completion on the
        // blocking pool either way, and whatever it had not stored is fetched again next time.
        polls.abort_all();
        let drain = async {
            while polls.join_next().await.is_some() {}
            let _ = delivery.await;
            indexer.stop().await;
            if let Some(http) = http {
                let _ = http.await;
            }
        };
        if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
            tracing::warn!(
                "work still running after {} s was abandoned; the outbox keeps what was not sent",
                SHUTDOWN_GRACE.as_secs()
            );
        }
        tracing::info!("feedwatch stopped");
    }
}

/// The polls in turns of their hosts (the first feed of each host, then the second of each...),
/// keeping the config's order within a host.
fn interleave_hosts(polls: Vec<(usize, PollRequest)>) -> Vec<(usize, PollRequest)> {
    let mut by_host: HashMap<String, Vec<(usize, PollRequest)>> = HashMap::new();
    let mut hosts = Vec::new();
    for poll in polls {
        let host = url::Url::parse(poll.1.state.poll_url())
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default();
        let queue = by_host.entry(host.clone()).or_default();
        if queue.is_empty() {
            hosts.push(host);
        }
        queue.push(poll);
    }
    let mut queues: Vec<std::vec::IntoIter<_>> = hosts
        .iter()
        .filter_map(|h| by_host.remove(h))
        .map(Vec::into_iter)
        .collect();
    let mut turns = Vec::new();
    while !queues.is_empty() {
        queues.retain_mut(|queue| match queue.next() {
            Some(poll) => {
                turns.push(poll);
                true
            }
            None => false,
        });
    }
    turns
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

/// A configured feed as the loop sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Watched {
    /// Its place in the config's `feeds`.
    index: usize,
    id: FeedId,
    /// When it is polled if it was never polled or fell due while the daemon was stopped: its
    /// place in the spread of the feeds that came with it (at the start, or in a reload).
    spread_at: DateTime<Utc>,
}

/// The feeds of `config` (each with its place and id) as the loop watches them: those in
/// `before` keep their place in the spread; the others are spread from `now` over 50 ms for
/// each of them (see [`FIRST_POLL_SPACING`]).
fn watched(
    config: &Config,
    feeds: Vec<(usize, FeedId)>,
    before: &[Watched],
    now: DateTime<Utc>,
) -> Vec<Watched> {
    let kept: HashMap<FeedId, DateTime<Utc>> = before.iter().map(|w| (w.id, w.spread_at)).collect();
    let new = feeds
        .iter()
        .filter(|(_, id)| !kept.contains_key(id))
        .count();
    feeds
        .into_iter()
        .map(|(index, id)| Watched {
            index,
            id,
            spread_at: kept
                .get(&id)
                .copied()
                .unwrap_or_else(|| now + first_poll_offset(&config.feeds[index], new)),
        })
        .collect()
}

/// When a feed is due: when its last poll said, unless that was before the daemon started
/// (never polled, or due while it was stopped); then at its place in the spread.
fn due_at(
    next_poll_at: Option<DateTime<Utc>>,
    started: DateTime<Utc>,
    spread_at: DateTime<Utc>,
) -> DateTime<Utc> {
    match next_poll_at {
        Some(at) if at >= started => at,
        _ => spread_at,
    }
}

/// Where in its spread a feed's first poll falls, among `feeds` (see [`FIRST_POLL_SPACING`]).
fn first_poll_offset(feed: &Feed, feeds: usize) -> chrono::Duration {
    let window = FIRST_POLL_SPACING
        .saturating_mul(u32::try_from(feeds).unwrap_or(u32::MAX))
        .min(feed.schedule.period(Utc::now()));
    chrono_duration(window.mul_f64(jitter_fraction(&feed.url)))
}

/// Removes articles that left their feed longer ago than the retention period, and tells the
/// daemon's search indexer (`run --once` has none) to take them out of the index; and the
/// story sketches older than the story window.
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
    // Sketches older than the story window are never compared again.
    let before = crate::story::window::window_start(Utc::now(), &pipeline.config.story);
    if let Err(e) = pipeline.db.call(move |s| s.prune_stories(before)).await {
        tracing::error!("pruning old story sketches failed: {e}");
    }
}

/// Reads the config file again and builds the pipeline for it, keeping the database, the
/// connection pools and every feed's state. Any error leaves the running pipeline untouched.
async fn reconfigure(current: &Pipeline) -> Result<Reloaded, ReloadError> {
    let path = current.config.path.clone();
    let mut config = tokio::task::spawn_blocking(move || Config::load(&path)).await??;
    let listen = |config: &Config| config.http.as_ref().map(|h| h.listen);
    if listen(&config) != listen(&current.config) {
        // The listener (or its absence) stays as it started, and so does the token guarding it.
        tracing::warn!(
            "[http] changed where it listens; that takes effect when feedwatch restarts"
        );
        config.http = current.config.http.clone();
    }
    if config.database != current.config.database {
        return Err(ReloadError::DatabaseMoved(config.database));
    }
    if config.max_fetches != current.config.max_fetches {
        tracing::warn!("`max_fetches` changed; it takes effect at the next start");
    }
    let pipeline = Arc::new(current.reconfigured(config));
    let feeds = pipeline.sync_feeds().await?;
    Ok(Reloaded { pipeline, feeds })
}

/// A config read again, ready to run on.
struct Reloaded {
    pipeline: Arc<Pipeline>,
    feeds: Vec<(usize, FeedId)>,
}

/// Why a reload kept the running config.
#[derive(Debug, thiserror::Error)]
enum ReloadError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("`database` changed to {}; that needs a restart", .0.display())]
    DatabaseMoved(std::path::PathBuf),
    #[error("the feeds could not be recorded: {0}")]
    Store(#[from] StoreError),
    #[error("reading the config stopped: {0}")]
    Task(#[from] JoinError),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::Schedule;

    /// A feed polled every 15 minutes.
    fn feed(url: &str) -> Feed {
        Feed {
            name: url.into(),
            url: url.into(),
            schedule: Schedule::Interval(Duration::from_secs(900)),
            max_body_bytes: 1_000_000,
            timeout: Duration::from_secs(30),
            adaptive: false,
            full_text: Default::default(),
            tags: Vec::new(),
            http: Default::default(),
        }
    }

    fn request(url: &str) -> PollRequest {
        PollRequest {
            feed: feed(url),
            state: FeedState {
                url: url.into(),
                ..FeedState::default()
            },
        }
    }

    fn config_of(feeds: Vec<Feed>) -> Config {
        let mut config = Config::empty(std::path::Path::new("config.toml"));
        config.feeds = feeds;
        config
    }

    #[test]
    fn a_hundred_thousand_feeds_start_spread_over_their_interval() {
        let started = Utc::now();
        let config = config_of(
            (0..100_000)
                .map(|i| feed(&format!("http://site{}.example/{i}.xml", i % 500)))
                .collect(),
        );
        let ids = (0..config.feeds.len()).map(|i| (i, i as FeedId)).collect();
        let mut per_minute = [0usize; 15];
        for w in watched(&config, ids, &[], started) {
            let offset = (due_at(None, started, w.spread_at) - started).num_seconds();
            per_minute[usize::try_from(offset / 60).unwrap()] += 1;
        }
        for (minute, &n) in per_minute.iter().enumerate() {
            assert!(
                (6_000..7_400).contains(&n),
                "minute {minute}: {n} first polls"
            );
        }
    }

    #[test]
    fn feeds_a_reload_adds_are_spread_among_themselves_and_the_others_keep_their_place() {
        let started = Utc::now();
        let config = config_of((0..1000).map(|i| feed(&format!("http://a/{i}"))).collect());
        let ids = |n: usize| (0..n).map(|i| (i, i as FeedId)).collect::<Vec<_>>();
        let before = watched(&config, ids(998), &[], started);
        let reloaded = started + chrono::Duration::hours(5);
        let after = watched(&config, ids(1000), &before, reloaded);
        assert_eq!(after[..998], before[..]);
        for added in &after[998..] {
            // Two new feeds: within 100 ms of the reload, not within the 50 s of a thousand.
            let offset = added.spread_at - reloaded;
            assert!(offset >= chrono::Duration::zero(), "{offset}");
            assert!(offset < chrono::Duration::milliseconds(100), "{offset}");
        }
    }

    #[test]
    fn a_poll_due_while_the_daemon_was_stopped_is_spread_and_a_later_one_kept() {
        let started = Utc::now();
        let spread_at = started + chrono::Duration::seconds(20);
        let overdue = started - chrono::Duration::hours(3);
        assert_eq!(due_at(Some(overdue), started, spread_at), spread_at);
        assert_eq!(due_at(None, started, spread_at), spread_at);
        let later = started + chrono::Duration::minutes(7);
        assert_eq!(due_at(Some(later), started, spread_at), later);
    }

    #[test]
    fn polls_take_turns_by_host_in_config_order_within_each() {
        let urls = [
            "http://a/1",
            "http://a/2",
            "http://a/3",
            "http://b/1",
            "http://c/1",
        ];
        let polls = urls.iter().map(|u| request(u)).enumerate().collect();
        let order: Vec<usize> = interleave_hosts(polls)
            .into_iter()
            .map(|(i, _)| i)
            .collect();
        assert_eq!(order, [0, 3, 4, 1, 2]);
    }
}

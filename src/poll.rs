//! One feed through the whole pipeline: fetch, parse, identify, match, and one write to the
//! store. The outcome is recorded on the feed (its state, its next poll), so a broken feed is
//! a logged, stored error; only a database failure is an `Err`.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Semaphore;

use crate::alert::{Alert, FeedRef};
use crate::config::Feed;
use crate::daemon::Pipeline;
use crate::dedup::{Identity, identify};
use crate::fetch::{Body, Fetched, Hints, Limits, MAX_SERVER_PAUSE};
use crate::parse::{self, ParsedFeed};
use crate::scheduler::{backoff, chrono_duration, jitter_fraction};
use crate::store::{FeedId, FeedState, NewEntry, PollOutcome, PollWrite, StoreError};

/// The shortest interval `adaptive = true` goes down to.
const MIN_ADAPTIVE_INTERVAL: Duration = Duration::from_secs(60);

/// Feeds fetched, parsed and matched at once: what the network and the CPU see.
const CONCURRENT_FETCHES: usize = 16;
/// Polls open at once, from the start of their fetch until their writes are durable. Those
/// past matching wait for the store's one committer without holding a fetch slot, so feeds
/// keep being fetched and parsed while it writes; this bounds the memory they hold meanwhile.
const OPEN_POLLS: usize = 48;

/// How many polls may run, how many of them may be fetching, and how many parsing; shared by
/// all polls.
#[derive(Debug)]
pub struct Admission {
    fetching: Semaphore,
    open: Semaphore,
    /// One parse per CPU: parsing is pure work, and every parser thread more than the CPUs
    /// can run only adds switching and memory (each thread gets its own allocator arena).
    parsing: Semaphore,
}

impl Default for Admission {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        Admission {
            fetching: Semaphore::new(CONCURRENT_FETCHES),
            open: Semaphore::new(OPEN_POLLS),
            parsing: Semaphore::new(cpus),
        }
    }
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

/// One feed through the pipeline, from its `state` as read at the start of the cycle (a feed
/// is never polled twice at once, so nothing else changes it meanwhile). Feed errors are
/// recorded and reported, not returned: only a database failure is an `Err`.
pub async fn poll_feed(
    pipeline: &Pipeline,
    feed: &Feed,
    state: FeedState,
    admission: &Admission,
) -> Result<FeedReport, StoreError> {
    // The semaphores are never closed, so acquiring cannot fail.
    let _open = admission.open.acquire().await.ok();
    let fetching = admission.fetching.acquire().await.ok();
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
                        parse_and_match(pipeline, admission, feed, id, body, hints, period, now)
                            .await?;
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
    drop(fetching);
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
#[allow(clippy::too_many_arguments)]
async fn parse_and_match(
    pipeline: &Pipeline,
    admission: &Admission,
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
    let parsing = admission.parsing.acquire().await.ok();
    let parsed = tokio::task::spawn_blocking(move || {
        parse::parse(&bytes, content_type.as_deref(), Some(&base))
    })
    .await;
    drop(parsing);
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
            // A feed with nothing stored yet (its first poll) has seen none of them.
            if !s.has_articles(id)? {
                let unseen = vec![true; identities.len()];
                return Ok((identities, unseen, false));
            }
            let unseen = s.not_stored(id, &identities)?;
            Ok((identities, unseen, true))
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

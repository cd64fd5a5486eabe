//! One feed through the whole pipeline, in four steps: fetch; interpret what came back (parse,
//! identify, match); plan the next poll; commit it all in one write to the store. The outcome
//! is recorded on the feed (its state, its next poll), so a broken feed is a logged, stored
//! error; only a database failure is an `Err`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::alert::{Alert, FeedRef};
use crate::config::{Feed, FullText};
use crate::dedup::{Identity, identify};
use crate::fetch::{Body, FetchError, Fetched, Hints, Limits, MAX_SERVER_PAUSE, Validators};
use crate::fulltext;
use crate::metrics::metrics;
use crate::parse::{self, ItemDigest, ItemRead, ParseError, ParsedItems};
use crate::pipeline::Pipeline;
use crate::scheduler::{backoff, chrono_duration, jitter_fraction};
use crate::store::{
    FeedState, Listed, ListedItem, Listing, NewEntry, PollOutcome, PollWrite, RaisedAlert, Seen,
    ServerWait, StoreError,
};
use crate::story;

/// The shortest interval `adaptive = true` goes down to.
const MIN_ADAPTIVE_INTERVAL: Duration = Duration::from_secs(60);

/// Polls past their fetch at once, from parsing until their writes are durable. Those past
/// matching wait for the store's one committer, so feeds keep being fetched and parsed while
/// it writes; this bounds the memory they hold meanwhile. (How many fetches are in flight is
/// the fetcher's business: see `fetch`.)
const OPEN_POLLS: usize = 48;

/// How many fetched polls may be worked on at once, and how many of them parsing; shared by
/// all polls.
#[derive(Debug)]
pub struct Admission {
    open: Semaphore,
    /// One parse per CPU: parsing is pure work, and every parser thread more than the CPUs
    /// can run only adds switching and memory (each thread gets its own allocator arena).
    parsing: Semaphore,
}

impl Default for Admission {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        Admission {
            open: Semaphore::new(OPEN_POLLS),
            parsing: Semaphore::new(cpus),
        }
    }
}

/// One poll of one feed: the feed as configured, and its state as read at the start of the
/// cycle (a feed is never polled twice at once, so nothing else changes it meanwhile).
#[derive(Debug, Clone)]
pub struct PollRequest {
    pub feed: Feed,
    pub state: FeedState,
}

/// What one poll of one feed did.
#[derive(Debug)]
pub struct FeedReport {
    pub feed: String,
    pub result: Result<PollSummary, PollError>,
    /// When the feed is due again; `None` for a feed that is not polled any more.
    pub next_poll_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollSummary {
    pub not_modified: bool,
    pub entries: usize,
    /// Entries whose items were left out of the parse: read before, as they are.
    pub read_before: usize,
    pub new_articles: usize,
    pub new_alerts: usize,
    /// Every entry was new (and there was at least one).
    pub all_new: bool,
}

/// Why a poll of a feed failed. The message is what the feed's state records as its last
/// error; the feed is named apart, as the logs name it.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error(
        "{url}: the server said 410 Gone on {}; feedwatch no longer polls this feed (remove it \
         from the config, or give it a new url)",
        .at.format("%Y-%m-%d %H:%M UTC")
    )]
    Gone {
        feed: String,
        url: String,
        at: DateTime<Utc>,
    },
    #[error("{error}")]
    Fetch { feed: String, error: FetchError },
    #[error("{error}")]
    Parse { feed: String, error: ParseError },
    #[error("the parser crashed on this feed: {message}")]
    ParserCrashed { feed: String, message: String },
}

impl PollError {
    /// The name of the feed the poll was of.
    pub fn feed(&self) -> &str {
        match self {
            PollError::Gone { feed, .. }
            | PollError::Fetch { feed, .. }
            | PollError::Parse { feed, .. }
            | PollError::ParserCrashed { feed, .. } => feed,
        }
    }
}

/// Polls one feed. Feed errors are recorded and reported, not returned: only a database
/// failure is an `Err`.
pub async fn poll_feed(
    pipeline: &Pipeline,
    admission: &Admission,
    request: PollRequest,
) -> Result<FeedReport, StoreError> {
    let PollRequest { feed, state } = request;
    if let Some(at) = state.gone_at {
        let error = PollError::Gone {
            feed: feed.name.clone(),
            url: state.poll_url().to_owned(),
            at,
        };
        tracing::warn!(feed = %feed.name, "{error}");
        let result = Err(error);
        metrics().polled(&result, &[]);
        return Ok(FeedReport {
            feed: feed.name,
            result,
            next_poll_at: None,
        });
    }
    let now = Utc::now();
    let poll = Poll {
        pipeline,
        admission,
        period: poll_period(&feed, &state, now),
        feed: &feed,
        state: &state,
        now,
        open: Mutex::new(None),
    };
    let fetched = poll.fetch().await;
    // Waiting here, a fetched body counts against the fetcher's budget, which holds back new
    // requests. The semaphore is never closed, so acquiring cannot fail.
    let slot = admission.open.acquire().await.ok();
    *poll.open_slot() = slot;
    let answer = poll.interpret(fetched).await?;
    let plan = poll.plan_next_poll(&answer);
    poll.commit(answer, plan).await
}

/// A poll under way: what each of its steps reads.
struct Poll<'a> {
    pipeline: &'a Pipeline,
    admission: &'a Admission,
    feed: &'a Feed,
    state: &'a FeedState,
    now: DateTime<Utc>,
    /// The feed's period, shortened by an earlier missed-items warning with `adaptive`.
    period: Duration,
    /// Its place among the open polls, once fetched; given up while it waits on article pages
    /// (`full_text`), so that a slow site holds up no other feed's poll.
    open: Mutex<Option<SemaphorePermit<'a>>>,
}

/// What a fetch amounted to: the outcome to record on the feed, what the caller hears, what
/// the store needs, and the earliest the server wants to hear from us again (Cache-Control,
/// Retry-After or the feed's `<ttl>`).
struct Answer {
    outcome: PollOutcome,
    result: Result<PollSummary, PollError>,
    found: Found,
    not_before: Option<ServerWait>,
}

impl Answer {
    fn failed(
        error: PollError,
        status: Option<u16>,
        counts_as_failure: bool,
        not_before: Option<ServerWait>,
    ) -> Answer {
        Answer {
            outcome: PollOutcome::Failure {
                status,
                error: error.to_string(),
                counts_as_failure,
                gone: false,
            },
            result: Err(error),
            found: Found::default(),
            not_before,
        }
    }
}

/// When the feed is polled next, its count of failures in a row until then, and the pause
/// the server asked for (capped at [`MAX_SERVER_PAUSE`]).
struct NextPoll {
    at: DateTime<Utc>,
    failures: u32,
    server_wait: Option<ServerWait>,
}

/// What a fetched body holds that the store needs: the entries in the feed that are stored
/// already and due a new last-seen mark (parsed ones by identity, listed ones by article), the
/// articles not stored yet with the alerts they raise, and the feed's new listing.
#[derive(Default)]
struct Found {
    present: Vec<Identity>,
    touched: Vec<i64>,
    new: Vec<NewEntry>,
    listing: Option<Vec<ListedItem>>,
}

/// What became of a parsed entry, for the listing.
#[derive(Clone, Copy)]
enum Placed {
    /// The new entry at this index.
    New(usize),
    /// A stored article, and its mark after this poll.
    Stored(i64, i64),
}

impl<'a> Poll<'a> {
    fn open_slot(&self) -> std::sync::MutexGuard<'_, Option<SemaphorePermit<'a>>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Fetches the feed where it is now, conditionally on the validators of the last body.
    async fn fetch(&self) -> Result<Fetched, FetchError> {
        let limits = Limits {
            max_body: self.feed.max_body_bytes,
            timeout: self.feed.timeout,
        };
        let started = std::time::Instant::now();
        let fetched = self
            .pipeline
            .fetcher
            .fetch_limited(
                self.state.poll_url(),
                &self.state.validators,
                &limits,
                &self.feed.http,
            )
            .await;
        metrics().fetched(started.elapsed());
        fetched
    }

    /// Decides what the fetch means for the feed: unchanged, new articles and their alerts,
    /// a failure that counts against it, or a pause the server asked for.
    async fn interpret(&self, fetched: Result<Fetched, FetchError>) -> Result<Answer, StoreError> {
        let fetched = match fetched {
            Ok(fetched) => fetched,
            Err(error) => return Ok(self.interpret_failure(error)),
        };
        let hints = fetched.hints().clone();
        let max_age = hints.max_age.map(|age| ServerWait {
            until: self.now + chrono_duration(age),
            reason: "Cache-Control: max-age".into(),
        });
        if let Some(to) = &hints.moved_to {
            tracing::warn!(
                feed = %self.feed.name,
                "moved permanently from {} to {to}; polling the new address from now on \
                 (update `url` in the config)",
                self.state.poll_url()
            );
        }
        Ok(match fetched {
            Fetched::NotModified { validators, .. } => {
                self.unchanged(304, validators, hints.moved_to, max_age)
            }
            Fetched::Body(mut body) => {
                body.validators.digest = Some(body_digest(&body));
                if body.validators.digest == self.state.validators.digest {
                    return Ok(self.unchanged(
                        body.status,
                        body.validators,
                        hints.moved_to,
                        max_age,
                    ));
                }
                let mut answer = self.interpret_body(body, hints).await?;
                answer.not_before = later(answer.not_before.take(), max_age);
                answer
            }
        })
    }

    /// A feed as it was when its body was last read: the server answered 304, or sent that
    /// body again.
    fn unchanged(
        &self,
        status: u16,
        validators: Validators,
        moved_to: Option<String>,
        max_age: Option<ServerWait>,
    ) -> Answer {
        Answer {
            outcome: PollOutcome::Success {
                status,
                validators,
                title: None,
                moved_to,
                missed_items: None,
                ttl: None,
                unchanged: true,
            },
            result: Ok(PollSummary {
                not_modified: true,
                ..PollSummary::default()
            }),
            found: Found::default(),
            // The feed's `<ttl>` from its last body still holds.
            not_before: later(max_age, ttl_wait(self.state.ttl, self.now)),
        }
    }

    fn interpret_failure(&self, error: FetchError) -> Answer {
        let pause = error.is_pause();
        let (status, gone) = (error.status(), error.is_gone());
        let not_before = error.retry_after().map(|until| ServerWait {
            until,
            reason: format!("HTTP {} with Retry-After", status.unwrap_or_default()),
        });
        if gone {
            tracing::error!(
                feed = %self.feed.name,
                "{error}: the feed is gone for good; it will not be polled again \
                 (remove it from the config)"
            );
        }
        let error = PollError::Fetch {
            feed: self.feed.name.clone(),
            error,
        };
        let mut answer = Answer::failed(error, status, !pause, not_before);
        if let PollOutcome::Failure { gone: is_gone, .. } = &mut answer.outcome {
            *is_gone = gone;
        }
        answer
    }

    /// Parses a fetched body, finds its new articles and matches them; a parse failure is the
    /// feed's error.
    async fn interpret_body(&self, body: Body, hints: Hints) -> Result<Answer, StoreError> {
        let base = body.final_url.clone();
        let content_type = body.content_type.clone();
        let (bytes, held) = (body.bytes, body.held);
        // Items read before are left out of the parse: the listing has their articles. A feed
        // with no body read (no digest) has none.
        let id = self.state.id;
        let listing = match self.state.validators.digest {
            Some(_) => self.pipeline.db.read(move |s| s.listing(id)).await?,
            None => Listing::default(),
        };
        let listing = Arc::new(listing);
        let known = Arc::clone(&listing);
        // A panic inside the parser ends this task only; it becomes the feed's error.
        let parsing = self.admission.parsing.acquire().await.ok();
        let parsed = tokio::task::spawn_blocking(move || {
            let known = |digest: &ItemDigest| known.get(digest).is_some();
            parse::parse_unread(&bytes, content_type.as_deref(), Some(&base), &known)
        })
        .await;
        drop((parsing, held));
        let feed = self.feed.name.clone();
        let parsed = match parsed {
            Ok(Ok(parsed)) => parsed,
            Ok(Err(error)) => {
                let error = PollError::Parse { feed, error };
                return Ok(Answer::failed(error, Some(body.status), true, None));
            }
            Err(panic) => {
                let message = panic.to_string();
                let error = PollError::ParserCrashed { feed, message };
                return Ok(Answer::failed(error, Some(body.status), true, None));
            }
        };
        let title = Some(parsed.feed.title.clone()).filter(|t| !t.is_empty());
        let ttl = parsed.feed.ttl;
        let (summary, found, had_articles) = self.find_new(parsed, &listing).await?;
        // Only a feed that had been read before can have rolled past items we never saw.
        let missed_items = (summary.all_new && had_articles).then(|| {
            let suggested = shorter_interval(self.period);
            warn_missed_items(self.feed, summary.new_articles, self.period, suggested);
            suggested
        });
        if let Some(ttl) = ttl.filter(|&t| t > self.period && Some(t) != self.state.ttl) {
            tracing::info!(
                feed = %self.feed.name,
                "the feed asks not to be polled more often than every {} (RSS ttl); polling \
                 it at that rate",
                humantime::format_duration(ttl)
            );
        }
        Ok(Answer {
            outcome: PollOutcome::Success {
                status: body.status,
                validators: body.validators,
                title,
                moved_to: hints.moved_to,
                missed_items,
                ttl,
                unchanged: false,
            },
            result: Ok(summary),
            found,
            not_before: ttl_wait(ttl, self.now),
        })
    }

    /// Decides when to poll again: backoff after failures that count, the shorter period of
    /// an adaptive feed that missed items, and never sooner than the server asked.
    fn plan_next_poll(&self, answer: &Answer) -> NextPoll {
        let failures = match &answer.outcome {
            PollOutcome::Failure {
                counts_as_failure: true,
                ..
            } => self.state.consecutive_failures + 1,
            _ => 0,
        };
        // With `adaptive`, a missed-items warning shortens the interval from this poll on.
        let period = match &answer.outcome {
            PollOutcome::Success {
                missed_items: Some(shorter),
                ..
            } if self.feed.adaptive => self.period.min(*shorter),
            _ => self.period,
        };
        let server_wait = answer.not_before.clone().map(|wait| ServerWait {
            until: wait.until.min(self.now + chrono_duration(MAX_SERVER_PAUSE)),
            ..wait
        });
        let at = next_poll_at(
            self.feed,
            &answer.outcome,
            failures,
            period,
            self.now,
            server_wait.as_ref().map(|wait| wait.until),
        );
        NextPoll {
            at,
            failures,
            server_wait,
        }
    }

    /// Articles, matches, outbox rows and the feed's new state: one transaction, durable
    /// before this returns.
    async fn commit(self, answer: Answer, next: NextPoll) -> Result<FeedReport, StoreError> {
        let Answer {
            outcome,
            result,
            found,
            ..
        } = answer;
        let stats = self
            .pipeline
            .db
            .commit_poll(PollWrite {
                feed: self.state.id,
                feed_url: self.feed.url.clone(),
                present: found.present,
                touched: found.touched,
                new: found.new,
                listing: found.listing,
                outcome,
                now: self.now,
                next_poll_at: next.at,
                server_wait: next.server_wait,
                story: self.pipeline.config.story,
                alerts_json: Default::default(),
            })
            .await?;
        let result = result.map(|summary| PollSummary {
            new_articles: stats.new_articles,
            new_alerts: stats.new_alerts,
            ..summary
        });
        metrics().polled(&result, &stats.matched_rules);
        let feed = &self.feed.name;
        match &result {
            Ok(s) if s.not_modified => tracing::debug!(feed = %feed, "unchanged"),
            Ok(s) => tracing::info!(
                feed = %feed,
                entries = s.entries,
                read_before = s.read_before,
                new = s.new_articles,
                alerts = s.new_alerts,
                "polled"
            ),
            Err(e) => tracing::warn!(
                feed = %feed,
                failures = next.failures,
                next_poll = %next.at.format("%Y-%m-%d %H:%M:%S UTC"),
                "poll failed: {e}"
            ),
        }
        Ok(FeedReport {
            feed: feed.clone(),
            result,
            next_poll_at: Some(next.at),
        })
    }

    /// Identifies the parsed entries and matches the ones this feed has not stored yet; the
    /// items left out of the parse are in the feed's listing already. The summary counts
    /// candidates; the store's counts replace them once written. Also says whether the feed
    /// had any article stored before.
    async fn find_new(
        &self,
        parsed: ParsedItems,
        listing: &Listing,
    ) -> Result<(PollSummary, Found, bool), StoreError> {
        let ParsedItems {
            feed: parsed,
            items,
        } = parsed;
        let entries = items.as_ref().map_or(parsed.articles.len(), Vec::len);
        let left_out = entries - parsed.articles.len();
        // One feed may repeat an entry; keep the first of each identity. `kept` gives each
        // parsed article's place among those kept.
        let mut seen_here = HashSet::new();
        let mut kept = Vec::with_capacity(parsed.articles.len());
        let mut articles = Vec::new();
        let mut identities: Vec<Identity> = Vec::new();
        for article in parsed.articles {
            let identity = identify(&article);
            if seen_here.insert(identity.id.clone()) {
                kept.push(Some(articles.len()));
                articles.push(article);
                identities.push(identity);
            } else {
                kept.push(None);
            }
        }
        let unique = identities.len();
        let (identities, seen) = if identities.is_empty() {
            (identities, Some(Vec::new()))
        } else {
            let (id, now) = (self.state.id, self.now);
            self.pipeline
                .db
                .read(move |s| {
                    let seen = s.seen(id, &identities, now)?;
                    Ok((identities, seen))
                })
                .await?
        };
        // A feed with nothing stored yet (its first poll) has seen none of them.
        let had_articles = seen.is_some() || left_out > 0;
        let seen = seen.unwrap_or_else(|| vec![Seen::New; identities.len()]);
        let unseen: Vec<bool> = seen.iter().map(Seen::is_new).collect();
        // The pages of new articles, before matching, so that the rules see their text.
        if self.feed.full_text != FullText::Off && unseen.contains(&true) {
            // Taken and dropped: the slot is free while the pages are fetched.
            let had_slot = self.open_slot().take().is_some();
            fulltext::fill(
                &self.pipeline.fetcher,
                &self.pipeline.pages,
                self.feed,
                &mut articles,
                &unseen,
            )
            .await;
            if had_slot {
                let slot = self.admission.open.acquire().await.ok();
                *self.open_slot() = slot;
            }
        }

        let feed_ref = FeedRef {
            name: self.feed.name.clone(),
            url: self.feed.url.clone(),
            title: parsed.title.clone(),
        };
        let now = self.now.timestamp();
        let mut new = Vec::new();
        // New articles get their last-seen mark when they are stored; of the others, only those
        // whose mark is old need one.
        let mut present = Vec::new();
        let mut placed = Vec::with_capacity(unique);
        for ((article, identity), seen) in articles.into_iter().zip(identities).zip(seen) {
            match seen {
                Seen::New => {}
                Seen::Stale(stored) => {
                    present.push(identity);
                    placed.push(stored.article.map(|id| Placed::Stored(id, now)));
                    continue;
                }
                Seen::Marked(stored) => {
                    placed.push(stored.article.map(|id| Placed::Stored(id, stored.at)));
                    continue;
                }
            }
            placed.push(Some(Placed::New(new.len())));
            let alerts = self.raised_alerts(&article, &identity, &feed_ref);
            // Stories keep alerts to one per story: an article that raises none is not looked
            // for in them (sketching and placing every article was most of their cost). The
            // sketch is made here, off the committer, which only looks it up.
            let sketch = (!alerts.is_empty() && !self.pipeline.config.story.window.is_zero())
                .then(|| story::sketch_article(&article))
                .flatten();
            new.push(NewEntry {
                article,
                identity,
                alerts,
                sketch,
            });
        }
        let (relisted, touched) = items.map_or_else(Default::default, |items| {
            relist(&items, listing, &kept, &placed, self.now)
        });
        let summary = PollSummary {
            not_modified: false,
            all_new: !new.is_empty() && new.len() == unique && left_out == 0,
            entries,
            read_before: left_out,
            new_articles: new.len(),
            new_alerts: new.iter().map(|entry| entry.alerts.len()).sum(),
        };
        let found = Found {
            present,
            touched,
            new,
            // A listing as it was (nothing new, no mark due) is not written again.
            listing: (!listing.holds(&relisted)).then_some(relisted),
        };
        Ok((summary, found, had_articles))
    }

    /// The alerts a new article raises, one per matching rule, with that rule's notifiers.
    fn raised_alerts(
        &self,
        article: &parse::Article,
        identity: &Identity,
        feed_ref: &FeedRef,
    ) -> Vec<RaisedAlert> {
        self.pipeline
            .engine
            .explain(article, &self.feed.name)
            .into_iter()
            .map(|m| {
                let rule = &self.pipeline.config.rules[m.rule];
                let alert = Alert::new(
                    m.name,
                    feed_ref.clone(),
                    article,
                    &identity.id,
                    m.terms.iter().map(|t| t.to_string()).collect(),
                    self.now,
                )
                .with_snippet(article, &m.highlights);
                RaisedAlert {
                    alert,
                    notifiers: rule.notify.clone(),
                    per_story: rule.per_story,
                }
            })
            .collect()
    }
}

/// The feed's new listing from this poll's items, and the articles of listed items left out
/// whose marks are due (at `now` they are marked again). `kept` and `placed` say what became of
/// each parsed article: a repeated entry, or one found as two articles, is left off the
/// listing, to be parsed each time.
fn relist(
    items: &[ItemRead],
    listing: &Listing,
    kept: &[Option<usize>],
    placed: &[Option<Placed>],
    now: DateTime<Utc>,
) -> (Vec<ListedItem>, Vec<i64>) {
    let mut touched = Vec::new();
    let listed = items
        .iter()
        .filter_map(|item| {
            let Some(index) = item.article else {
                let listed = *listing.get(&item.digest)?;
                if !listed.stale(now) {
                    return Some(ListedItem::Stored(listed));
                }
                touched.push(listed.article);
                return Some(ListedItem::Stored(Listed {
                    marked_at: now.timestamp(),
                    ..listed
                }));
            };
            Some(match kept[index].and_then(|k| placed[k])? {
                Placed::New(entry) => ListedItem::New {
                    digest: item.digest,
                    entry,
                },
                Placed::Stored(article, marked_at) => ListedItem::Stored(Listed {
                    digest: item.digest,
                    article,
                    marked_at,
                }),
            })
        })
        .collect();
    (listed, touched)
}

/// A hash of what a body's parse depends on: the body, where it came from (the base of its
/// links), its declared type, and feedwatch's version (a new release, whose parser may read it
/// better, reads every body once again).
fn body_digest(body: &Body) -> String {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    for part in [
        env!("CARGO_PKG_VERSION").as_bytes(),
        body.final_url.as_bytes(),
        body.content_type.as_deref().unwrap_or_default().as_bytes(),
    ] {
        hasher.update(&(part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hasher.update(&body.bytes);
    hex::encode(hasher.digest128().to_le_bytes())
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

/// The earliest next poll a feed's RSS `<ttl>` allows.
fn ttl_floor(ttl: Option<Duration>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    ttl.map(|ttl| now + chrono_duration(ttl))
}

/// The pause a feed's RSS `<ttl>` asks for.
fn ttl_wait(ttl: Option<Duration>, now: DateTime<Utc>) -> Option<ServerWait> {
    ttl_floor(ttl, now).map(|until| ServerWait {
        until,
        reason: "the feed's RSS ttl".into(),
    })
}

/// The longer of two pauses.
fn later(a: Option<ServerWait>, b: Option<ServerWait>) -> Option<ServerWait> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.until > a.until { b } else { a }),
        (a, b) => a.or(b),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::Schedule;

    #[test]
    fn relisting_keeps_listed_items_marks_due_ones_and_names_new_entries() {
        let now = Utc::now();
        let (fresh, old) = (now.timestamp() - 60, now.timestamp() - 2 * 24 * 60 * 60);
        let digest = |b: u8| ItemDigest([b; 16]);
        let listed = |b: u8, article, marked_at| Listed {
            digest: digest(b),
            article,
            marked_at,
        };
        let listing = Listing::from(vec![listed(1, 10, fresh), listed(2, 20, old)]);
        let item = |b: u8, article| ItemRead {
            digest: digest(b),
            article,
        };
        // Items 1 and 2 left out; 3 parsed and new; 4 parsed, stored as 40; 5 a repeat of 3;
        // 6 found as two articles; 7 left out but missing from the listing.
        let items = [
            item(1, None),
            item(2, None),
            item(3, Some(0)),
            item(4, Some(1)),
            item(5, Some(2)),
            item(6, Some(3)),
            item(7, None),
        ];
        let kept = [Some(0), Some(1), None, Some(2)];
        let placed = [Some(Placed::New(0)), Some(Placed::Stored(40, fresh)), None];
        let (relisted, touched) = relist(&items, &listing, &kept, &placed, now);
        assert_eq!(touched, [20]);
        assert_eq!(
            relisted,
            [
                ListedItem::Stored(listed(1, 10, fresh)),
                ListedItem::Stored(listed(2, 20, now.timestamp())),
                ListedItem::New {
                    digest: digest(3),
                    entry: 0
                },
                ListedItem::Stored(listed(4, 40, fresh)),
            ]
        );
    }

    fn feed_every(interval: Duration) -> Feed {
        Feed {
            name: "news".into(),
            url: "http://news.example/feed.xml".into(),
            schedule: Schedule::Interval(interval),
            max_body_bytes: 10_000_000,
            timeout: Duration::from_secs(30),
            adaptive: false,
            full_text: Default::default(),
            tags: Vec::new(),
            http: Default::default(),
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
            unchanged: false,
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

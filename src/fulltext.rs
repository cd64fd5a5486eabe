//! `full_text`: new articles' own pages, fetched and read for their main text, which becomes
//! the article's `content` before the rules see it.
//!
//! Politely: pages go through the feeds' [`Fetcher`] (its per-host limit), under the feed's
//! body cap, timeout and request options, a few at a time per poll, and only for articles not
//! stored yet, so an article's page is fetched once. A [`PageCache`] remembers what each page
//! gave, so the same link in two feeds is fetched once too; once that memory is stale, the
//! page's validators make the next fetch a conditional GET. A page that fails (an HTTP error, a
//! timeout, not HTML, too large, no readable text) leaves the feed's text in place.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::config::{Feed, FullText};
use crate::extract::{self, ExtractError};
use crate::fetch::{FetchError, Fetched, Fetcher, Limits, RequestOptions, Validators};
use crate::parse::Article;

/// Pages of one poll fetched at once: below the per-host limit, so that a feed's pages never
/// hold every connection to its site, and a page's timeout is not spent queueing.
const PAGES_AT_ONCE: usize = 2;
/// Pages remembered; the oldest is forgotten first.
const CACHE_PAGES: usize = 4096;
/// How long a page's text is used without asking its server again.
const FRESH_FOR: Duration = Duration::from_secs(6 * 60 * 60);
/// How long a page that failed is left alone.
const FAILED_FOR: Duration = Duration::from_secs(10 * 60);
/// A poll's pages together may take this many times the feed's timeout; the rest keep the
/// feed's text, so one slow site holds its feed's poll only so long.
const BUDGET_TIMEOUTS: u32 = 4;

/// Why a page gave no text.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("{0}")]
    Fetch(#[from] FetchError),
    #[error("{url}: {source}")]
    Extract { url: String, source: ExtractError },
    #[error("{url}: the text extractor failed on this page")]
    Crashed { url: String },
    #[error("{url}: 304 Not Modified, but the page's text is no longer remembered")]
    Forgotten { url: String },
}

/// What pages gave lately, by URL: shared by every poll, kept across config reloads.
#[derive(Default)]
pub struct PageCache {
    pages: Mutex<HashMap<String, CachedPage>>,
    /// One lock per page being fetched: a second poll wanting the same page (the same story
    /// in two feeds) waits for the first and then finds it remembered.
    fetching: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

#[derive(Clone)]
struct CachedPage {
    /// The page's main text; `None` when it had none or could not be fetched.
    text: Option<Arc<str>>,
    validators: Validators,
    checked: Instant,
}

impl CachedPage {
    fn is_fresh(&self, now: Instant) -> bool {
        let lasts = if self.text.is_some() {
            FRESH_FOR
        } else {
            FAILED_FOR
        };
        now.duration_since(self.checked) < lasts
    }
}

impl PageCache {
    fn get(&self, url: &str) -> Option<CachedPage> {
        self.lock().get(url).cloned()
    }

    fn put(&self, url: &str, page: CachedPage) {
        let mut pages = self.lock();
        if pages.len() >= CACHE_PAGES && !pages.contains_key(url) {
            let oldest = pages
                .iter()
                .min_by_key(|(_, page)| page.checked)
                .map(|(url, _)| url.clone());
            if let Some(oldest) = oldest {
                pages.remove(&oldest);
            }
        }
        pages.insert(url.to_string(), page);
    }

    /// Pages remembered now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, CachedPage>> {
        self.pages.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The lock of `url`'s fetch, shared by every poll that wants it meanwhile.
    fn fetch_lock(&self, url: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut fetching = self.fetching.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(fetching.entry(url.to_string()).or_default())
    }

    /// Done with `url`'s fetch: those waiting hold the lock already, later ones find the page
    /// remembered.
    fn fetched(&self, url: &str) {
        let mut fetching = self.fetching.lock().unwrap_or_else(|p| p.into_inner());
        fetching.remove(url);
    }
}

/// Whether a new article's page is wanted under the feed's `full_text`.
pub fn wants(mode: FullText, article: &Article) -> bool {
    match mode {
        FullText::Off => false,
        FullText::Always => true,
        FullText::Auto => extract::is_teaser(article),
    }
}

/// The page an article links to, when it is on the web (a feed may not make feedwatch read
/// local files through `file://` links).
fn page_url(article: &Article) -> Option<String> {
    let link = article.link.as_deref()?;
    let url = url::Url::parse(link).ok()?;
    matches!(url.scheme(), "http" | "https").then(|| url.to_string())
}

/// Fetches the pages of the articles marked `new` that the feed's `full_text` wants, and puts
/// each page's text in its article's `content` where it says more than the feed did. Returns
/// how many articles got their page's text.
pub async fn fill(
    fetcher: &Arc<Fetcher>,
    cache: &Arc<PageCache>,
    feed: &Feed,
    articles: &mut [Article],
    new: &[bool],
) -> usize {
    if feed.full_text == FullText::Off {
        return 0;
    }
    let mut wanted = articles
        .iter()
        .zip(new)
        .enumerate()
        .filter(|(_, (article, is_new))| **is_new && wants(feed.full_text, article))
        .filter_map(|(i, (article, _))| page_url(article).map(|url| (i, url)))
        .collect::<Vec<_>>()
        .into_iter();
    let limits = Limits {
        max_body: feed.max_body_bytes,
        timeout: feed.timeout,
    };
    let deadline = tokio::time::Instant::now() + feed.timeout * BUDGET_TIMEOUTS;
    let mut tasks = JoinSet::new();
    let spawn = |tasks: &mut JoinSet<_>, (i, url): (usize, String)| {
        let (fetcher, cache, options) = (Arc::clone(fetcher), Arc::clone(cache), feed.http.clone());
        tasks.spawn(async move {
            let text = page_text(&fetcher, &cache, &url, &limits, &options).await;
            (i, url, text)
        });
    };
    let asked = wanted.len();
    for next in wanted.by_ref().take(PAGES_AT_ONCE) {
        spawn(&mut tasks, next);
    }
    let mut filled = 0;
    loop {
        let done = match tokio::time::timeout_at(deadline, tasks.join_next()).await {
            Ok(Some(done)) => done,
            Ok(None) => break,
            Err(_) => {
                let left = tasks.len() + wanted.len();
                tracing::info!(
                    feed = %feed.name,
                    "{left} article pages not read within {}; those articles keep the feed's \
                     text",
                    humantime::format_duration(feed.timeout * BUDGET_TIMEOUTS)
                );
                // Dropping the set aborts the fetches still under way.
                break;
            }
        };
        if let Some(next) = wanted.next() {
            spawn(&mut tasks, next);
        }
        // A task only ends in a panic if the extractor's thread did; it is the page's loss.
        let Ok((i, url, text)) = done else { continue };
        match text {
            Ok(Some(text)) if extract::adds_to(&articles[i], &text) => {
                articles[i].content = text.to_string();
                filled += 1;
            }
            Ok(_) => {}
            Err(error) => tracing::info!(
                feed = %feed.name,
                page = %url,
                "article page not read, the article keeps the feed's text: {error}"
            ),
        }
    }
    tracing::debug!(
        feed = %feed.name,
        "read {filled} of {asked} article pages into their articles' content"
    );
    filled
}

/// A page's main text: remembered, or fetched (conditionally when it was fetched before) and
/// extracted. `Ok(None)` is a page known to give nothing, not asked again for now.
async fn page_text(
    fetcher: &Fetcher,
    cache: &PageCache,
    url: &str,
    limits: &Limits,
    options: &RequestOptions,
) -> Result<Option<Arc<str>>, PageError> {
    let lock = cache.fetch_lock(url);
    // Dropped after the lock's guard: the lock is released, then forgotten.
    let _done = Fetching { cache, url };
    let _fetching = lock.lock().await;
    remembered_or_fetched(fetcher, cache, url, limits, options).await
}

/// Forgets a page's fetch lock when its fetch ends, also when the fetch is aborted (a poll's
/// page budget spent), so that the locks do not pile up.
struct Fetching<'a> {
    cache: &'a PageCache,
    url: &'a str,
}

impl Drop for Fetching<'_> {
    fn drop(&mut self) {
        self.cache.fetched(self.url);
    }
}

async fn remembered_or_fetched(
    fetcher: &Fetcher,
    cache: &PageCache,
    url: &str,
    limits: &Limits,
    options: &RequestOptions,
) -> Result<Option<Arc<str>>, PageError> {
    let known = cache.get(url);
    if let Some(page) = known.as_ref().filter(|p| p.is_fresh(Instant::now())) {
        return Ok(page.text.clone());
    }
    let validators = known
        .as_ref()
        .filter(|p| p.text.is_some())
        .map(|p| p.validators.clone())
        .unwrap_or_default();
    let result = fetch_text(fetcher, url, &validators, limits, options, known.as_ref()).await;
    let page = match &result {
        Ok((text, validators)) => CachedPage {
            text: Some(Arc::clone(text)),
            validators: validators.clone(),
            checked: Instant::now(),
        },
        Err(_) => CachedPage {
            text: None,
            validators: Validators::default(),
            checked: Instant::now(),
        },
    };
    cache.put(url, page);
    result.map(|(text, _)| Some(text))
}

async fn fetch_text(
    fetcher: &Fetcher,
    url: &str,
    validators: &Validators,
    limits: &Limits,
    options: &RequestOptions,
    known: Option<&CachedPage>,
) -> Result<(Arc<str>, Validators), PageError> {
    let body = match fetcher
        .fetch_limited(url, validators, limits, options)
        .await?
    {
        Fetched::NotModified { validators, .. } => {
            let text = known
                .and_then(|p| p.text.clone())
                .ok_or_else(|| PageError::Forgotten { url: url.into() })?;
            return Ok((text, validators));
        }
        Fetched::Body(body) => body,
    };
    let validators = body.validators.clone();
    let final_url = body.final_url.clone();
    // Scoring a page is CPU work: off the async threads.
    let text = tokio::task::spawn_blocking(move || {
        extract::page_text(
            &body.bytes,
            body.content_type.as_deref(),
            Some(&body.final_url),
        )
    })
    .await
    .map_err(|_| PageError::Crashed { url: url.into() })?
    .map_err(|source| PageError::Extract {
        url: final_url,
        source,
    })?;
    Ok((Arc::from(text), validators))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::http::{HeaderMap, StatusCode, header};
    use axum::response::IntoResponse;

    const PAGE: &str = "<html><body><article><p>The harbour board approved the new breakwater \
        on Tuesday after two years of hearings, and work on the foundations starts in the \
        spring, the board's chair said.</p></article></body></html>";

    /// A page with an ETag on 127.0.0.1 that answers `If-None-Match` with 304; counts the
    /// requests and the conditional ones.
    async fn page_server() -> (String, Arc<AtomicUsize>, Arc<AtomicUsize>) {
        let (hits, conditional) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (h, c) = (Arc::clone(&hits), Arc::clone(&conditional));
        let app = axum::Router::new().fallback(move |headers: HeaderMap| {
            let (h, c) = (Arc::clone(&h), Arc::clone(&c));
            async move {
                h.fetch_add(1, Ordering::SeqCst);
                if headers
                    .get(header::IF_NONE_MATCH)
                    .is_some_and(|v| v == "\"v1\"")
                {
                    c.fetch_add(1, Ordering::SeqCst);
                    return StatusCode::NOT_MODIFIED.into_response();
                }
                (
                    [
                        (header::CONTENT_TYPE, "text/html"),
                        (header::ETAG, "\"v1\""),
                    ],
                    PAGE,
                )
                    .into_response()
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/story", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.ok() });
        (url, hits, conditional)
    }

    fn limits() -> Limits {
        Limits {
            max_body: 1 << 20,
            timeout: Duration::from_secs(10),
        }
    }

    /// Makes what the cache holds for `url` as old as `age`.
    fn age(cache: &PageCache, url: &str, age: Duration) {
        let mut pages = cache.lock();
        let page = pages.get_mut(url).unwrap();
        page.checked = Instant::now().checked_sub(age).unwrap();
    }

    #[tokio::test]
    async fn a_remembered_page_is_not_fetched_and_a_stale_one_is_asked_for_conditionally() {
        let (url, hits, conditional) = page_server().await;
        let (fetcher, cache) = (Fetcher::new(Duration::from_secs(10)), PageCache::default());
        let options = RequestOptions::default();
        let text = |r: Result<Option<Arc<str>>, PageError>| r.unwrap().unwrap().to_string();

        let first = text(page_text(&fetcher, &cache, &url, &limits(), &options).await);
        assert!(first.starts_with("The harbour board approved"), "{first}");
        assert_eq!(hits.load(Ordering::SeqCst), 1);

        // Remembered: no request at all.
        let again = text(page_text(&fetcher, &cache, &url, &limits(), &options).await);
        assert_eq!(again, first);
        assert_eq!(hits.load(Ordering::SeqCst), 1);

        // Stale: asked again with its ETag; the 304 keeps the remembered text.
        age(&cache, &url, FRESH_FOR + Duration::from_secs(1));
        let revalidated = text(page_text(&fetcher, &cache, &url, &limits(), &options).await);
        assert_eq!(revalidated, first);
        assert_eq!(hits.load(Ordering::SeqCst), 2);
        assert_eq!(conditional.load(Ordering::SeqCst), 1);
        // And fresh again from then on.
        text(page_text(&fetcher, &cache, &url, &limits(), &options).await);
        assert_eq!(hits.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_failed_page_is_left_alone_for_a_while_then_tried_again() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/gone", listener.local_addr().unwrap());
        let hits = Arc::new(AtomicUsize::new(0));
        let h = Arc::clone(&hits);
        let app = axum::Router::new().fallback(move || {
            h.fetch_add(1, Ordering::SeqCst);
            async { StatusCode::NOT_FOUND }
        });
        tokio::spawn(async move { axum::serve(listener, app).await.ok() });
        let (fetcher, cache) = (Fetcher::new(Duration::from_secs(10)), PageCache::default());
        let options = RequestOptions::default();

        let first = page_text(&fetcher, &cache, &url, &limits(), &options).await;
        assert!(matches!(first, Err(PageError::Fetch(_))), "{first:?}");
        // Known to fail: not asked again for now, and nothing to say about it.
        let second = page_text(&fetcher, &cache, &url, &limits(), &options).await;
        assert!(matches!(second, Ok(None)), "{second:?}");
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        age(&cache, &url, FAILED_FOR + Duration::from_secs(1));
        let third = page_text(&fetcher, &cache, &url, &limits(), &options).await;
        assert!(third.is_err());
        assert_eq!(hits.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn an_aborted_fetch_leaves_no_lock_behind() {
        // Connections are queued but never answered.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hangs", listener.local_addr().unwrap());
        let (fetcher, cache) = (
            Arc::new(Fetcher::new(Duration::from_secs(10))),
            Arc::new(PageCache::default()),
        );
        let task = tokio::spawn({
            let (fetcher, cache, url) = (Arc::clone(&fetcher), Arc::clone(&cache), url.clone());
            async move {
                page_text(
                    &fetcher,
                    &cache,
                    &url,
                    &limits(),
                    &RequestOptions::default(),
                )
                .await
            }
        });
        while cache.fetching.lock().unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
        assert!(cache.fetching.lock().unwrap().is_empty());
        drop(listener);
    }

    #[test]
    fn the_cache_forgets_the_oldest_page_when_full() {
        let cache = PageCache::default();
        let page = |checked| CachedPage {
            text: None,
            validators: Validators::default(),
            checked,
        };
        let start = Instant::now();
        for i in 0..CACHE_PAGES {
            cache.put(
                &format!("http://a/{i}"),
                page(start + Duration::from_millis(i as u64)),
            );
        }
        cache.put("http://a/new", page(start + Duration::from_secs(3600)));
        assert_eq!(cache.len(), CACHE_PAGES);
        assert!(cache.get("http://a/0").is_none());
        assert!(cache.get("http://a/1").is_some() && cache.get("http://a/new").is_some());
    }

    #[test]
    fn only_web_links_are_fetched() {
        let with_link = |link: &str| Article {
            link: Some(link.into()),
            ..Article::default()
        };
        assert_eq!(
            page_url(&with_link("https://news.example/a?b=1")).as_deref(),
            Some("https://news.example/a?b=1")
        );
        assert_eq!(page_url(&with_link("file:///etc/passwd")), None);
        assert_eq!(page_url(&with_link("javascript:alert(1)")), None);
        assert_eq!(page_url(&Article::default()), None);
    }
}

//! HTTP and `file://` -> bytes, politely.
//!
//! One [`Fetcher`] (one connection pool) serves the whole daemon. It sends the validators the
//! server gave last time (`If-None-Match`, `If-Modified-Since`, byte for byte), caps the body
//! *after* decompression while streaming, bounds the whole exchange with one total timeout,
//! follows a few redirects by hand so that a permanent move (301/308) is noticed and a loop is an
//! error, keeps at most [`PER_HOST`] requests in flight to any one host, and reports what the
//! server said about when to come back (`Retry-After`, `Cache-Control: max-age`).
//!
//! A feed's own request options ([`RequestOptions`]: headers, user agent, cookie, basic auth,
//! proxy, certificate checks) travel with each request. Headers, cookie and credentials go only
//! to the feed's own origin: a redirect to another host gets none of them. Proxies come from the
//! feed's `proxy`, else the usual environment variables (`HTTPS_PROXY`, `HTTP_PROXY`,
//! `ALL_PROXY`, `NO_PROXY`; `socks5h://` included); each proxy and certificate setting has its
//! own client (and connection pool), built on first use.
//!
//! Polling waits on servers far more than it computes, so many requests are in flight at once:
//! as many as the process's file descriptors allow, up to [`DEFAULT_MAX_FETCHES`] or the
//! config's `max_fetches`. A request waits for its host's turn before it takes one of those
//! slots, so one busy site never holds up the others. Memory is bounded apart: bodies fetched
//! but not yet parsed count against [`BODY_BUDGET`], and new requests wait while it is spent.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};
use tokio::sync::{Notify, Semaphore};

const USER_AGENT: &str = concat!("feedwatch/", env!("CARGO_PKG_VERSION"));
const ACCEPT: &str = "application/rss+xml, application/atom+xml, application/feed+json, \
                      application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.5";
/// Redirect hops followed before giving up; feeds that move more than this are broken.
pub const MAX_REDIRECTS: usize = 5;
/// Requests in flight to one host at a time, so that many feeds on one site are not all
/// fetched at once.
pub const PER_HOST: usize = 4;
/// The longest pause a server can ask for through `Retry-After` or `max-age`: beyond a day, a
/// typo in a header would silence a feed.
pub const MAX_SERVER_PAUSE: Duration = Duration::from_secs(24 * 60 * 60);
/// Requests in flight at once over all hosts, unless the config says otherwise or file
/// descriptors are short: with servers that take half a second to answer, 512 at a time poll
/// 10,000 feeds in about ten seconds, and each costs only a socket and its buffers meanwhile.
pub const DEFAULT_MAX_FETCHES: usize = 512;
/// Bytes of fetched bodies waiting to be parsed, past which new requests wait: when parsing
/// cannot keep up (fast servers, slow CPU) the bodies would otherwise pile up in memory.
pub const BODY_BUDGET: usize = 16 * 1024 * 1024;
/// Bodies read at once. A request whose server has answered waits for one of these before it
/// reads the body: with fast servers, hundreds of bodies would otherwise be read into memory
/// together, each with its connection's buffers.
const BODIES_READ_AT_ONCE: usize = 64;
/// File descriptors kept for everything but fetching: the database and its log, the search
/// index, the config watcher, webhook connections, standard streams.
const RESERVED_DESCRIPTORS: usize = 128;
/// How long an idle connection is kept for the next request to its host. Feeds of one site
/// are polled together; past that an idle connection only holds a file descriptor.
const IDLE_CONNECTION: Duration = Duration::from_secs(15);

/// What tells whether a feed changed since its body was last read: what the server said, to
/// send back for a conditional GET, and the body's own hash, for servers that send the same
/// body again whatever they are asked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// Set by the poll that read the body ([`crate::poll`]); the fetcher only keeps it.
    pub digest: Option<String>,
}

/// Per-feed limits on one fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest body accepted, counted after decompression.
    pub max_body: u64,
    /// The whole exchange, redirects and body included.
    pub timeout: Duration,
}

/// A value from the config that is nobody's business: printing it shows `Sensitive(..)`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Sensitive(String);

impl Sensitive {
    pub fn new(value: impl Into<String>) -> Sensitive {
        Sensitive(value.into())
    }

    /// The value itself, for the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sensitive(..)")
    }
}

/// Which proxy a feed's requests go through.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum Proxy {
    /// The environment's (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, minus `NO_PROXY`), if any.
    #[default]
    Environment,
    /// None, whatever the environment says.
    Direct,
    /// An `http://`, `https://`, `socks5://` or `socks5h://` URL, perhaps with credentials.
    Url(Sensitive),
}

impl Proxy {
    /// How to show the proxy: its URL without credentials, path or query.
    pub fn shown(&self) -> String {
        match self {
            Proxy::Environment => "from the environment".into(),
            Proxy::Direct => "none".into(),
            Proxy::Url(url) => match url::Url::parse(url.expose()) {
                Ok(u) => format!(
                    "{}://{}{}",
                    u.scheme(),
                    u.host_str().unwrap_or(""),
                    u.port().map(|p| format!(":{p}")).unwrap_or_default()
                ),
                Err(_) => "(invalid)".into(),
            },
        }
    }
}

/// `username` and `password`: HTTP basic authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasicAuth {
    pub username: String,
    pub password: Sensitive,
}

/// How one feed's requests are made, beyond its URL (its `[[feed]]` keys and `[defaults]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestOptions {
    /// In place of feedwatch's own `User-Agent`.
    pub user_agent: Option<String>,
    /// Extra request headers; their values may be secrets.
    pub headers: Vec<(String, Sensitive)>,
    pub cookie: Option<Sensitive>,
    pub basic_auth: Option<BasicAuth>,
    /// The only origin headers, cookie and basic auth are sent to: the feed's own.
    pub origin: Option<url::Origin>,
    pub proxy: Proxy,
    /// Accept any TLS certificate: self-signed, expired, for another name.
    pub accept_invalid_certs: bool,
}

/// What the response said besides its body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hints {
    /// Set when every hop to the final address was a permanent redirect (301 or 308): the feed
    /// lives there now.
    pub moved_to: Option<String>,
    /// `Cache-Control: max-age`: polling sooner would only get the same answer.
    pub max_age: Option<Duration>,
}

/// A successful fetch.
#[derive(Debug)]
pub enum Fetched {
    /// 304: nothing changed since the validators were issued.
    NotModified {
        validators: Validators,
        hints: Hints,
    },
    Body(Body),
}

impl Fetched {
    pub fn hints(&self) -> &Hints {
        match self {
            Fetched::NotModified { hints, .. } => hints,
            Fetched::Body(body) => &body.hints,
        }
    }
}

#[derive(Debug)]
pub struct Body {
    pub bytes: Vec<u8>,
    /// Counts these bytes against [`BODY_BUDGET`] until dropped: drop it once the bytes are
    /// parsed.
    pub held: Option<HeldBody>,
    /// The `Content-Type` header, for its charset.
    pub content_type: Option<String>,
    /// Where the body came from after redirects: the base for relative links.
    pub final_url: String,
    pub validators: Validators,
    pub status: u16,
    pub hints: Hints,
}

/// Why a feed could not be fetched. Each carries the URL it is about.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{url}: {message}")]
    Network { url: String, message: String },
    #[error("{url}: timed out after {seconds} s (set `timeout` to allow longer)")]
    Timeout { url: String, seconds: u64 },
    #[error("{url}: HTTP {status}")]
    Status {
        url: String,
        status: u16,
        /// Set for 429 and 503 when the server said when to come back.
        retry_after: Option<DateTime<Utc>>,
    },
    #[error("{url}: body is larger than the limit of {limit} bytes (set `max_body` to raise it)")]
    TooLarge { url: String, limit: u64 },
    #[error("{url}: redirect loop: {chain}")]
    RedirectLoop { url: String, chain: String },
    #[error("{url}: more than {MAX_REDIRECTS} redirects: {chain}")]
    TooManyRedirects { url: String, chain: String },
    #[error("{url}: redirect without a usable Location header")]
    BadRedirect { url: String },
    #[error("{path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl FetchError {
    /// The HTTP status, when the server answered at all.
    pub fn status(&self) -> Option<u16> {
        match self {
            FetchError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// For 429 and 503: when the server asked to be left alone until.
    pub fn retry_after(&self) -> Option<DateTime<Utc>> {
        match self {
            FetchError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// 429 and 503 mean the server is alive and asks for a pause: not the feed failing.
    pub fn is_pause(&self) -> bool {
        matches!(self.status(), Some(429 | 503))
    }

    /// 410: the publisher says the feed is gone for good.
    pub fn is_gone(&self) -> bool {
        self.status() == Some(410)
    }
}

pub struct Fetcher {
    /// The client of feeds that set neither a proxy nor `accept_invalid_certs`.
    client: reqwest::Client,
    /// The clients of the other proxy and certificate settings, by setting.
    other_clients: Mutex<HashMap<(Proxy, bool), reqwest::Client>>,
    timeout: Duration,
    /// One semaphore per `host:port`, created on first use.
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Requests in flight over all hosts; taken after the host's turn.
    in_flight: Arc<Semaphore>,
    max_in_flight: usize,
    reading: Semaphore,
    bodies: Arc<BodyBudget>,
}

impl Fetcher {
    /// A fetcher whose [`Fetcher::fetch`] gives up after `timeout` in total, with the default
    /// number of requests in flight.
    pub fn new(timeout: Duration) -> Fetcher {
        Fetcher::with_max_fetches(timeout, None)
    }

    /// Like [`Fetcher::new`], with at most `max_fetches` requests in flight at once (by default
    /// [`DEFAULT_MAX_FETCHES`]), fewer if file descriptors are short.
    pub fn with_max_fetches(timeout: Duration, max_fetches: Option<usize>) -> Fetcher {
        let max_in_flight = fetch_slots(max_fetches, raise_open_file_limit());
        let client = client_builder(timeout)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Fetcher {
            client,
            other_clients: Mutex::new(HashMap::new()),
            timeout,
            hosts: Mutex::new(HashMap::new()),
            in_flight: Arc::new(Semaphore::new(max_in_flight)),
            max_in_flight,
            reading: Semaphore::new(BODIES_READ_AT_ONCE),
            bodies: Arc::new(BodyBudget::default()),
        }
    }

    /// How many requests may be in flight at once.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    /// Fetches `url` (http, https or file) with the fetcher's timeout; see [`Fetcher::fetch_limited`].
    pub async fn fetch(
        &self,
        url: &str,
        validators: &Validators,
        max_body: u64,
    ) -> Result<Fetched, FetchError> {
        let limits = Limits {
            max_body,
            timeout: self.timeout,
        };
        self.fetch_limited(url, validators, &limits, &RequestOptions::default())
            .await
    }

    /// Fetches `url` (http, https or file) as `options` say, sending `validators` for a
    /// conditional GET, refusing bodies larger than `limits.max_body` and giving up after
    /// `limits.timeout`.
    pub async fn fetch_limited(
        &self,
        url: &str,
        validators: &Validators,
        limits: &Limits,
        options: &RequestOptions,
    ) -> Result<Fetched, FetchError> {
        if url.starts_with("file:") {
            return read_file(url, limits.max_body).await;
        }
        self.follow(url, validators, limits, options).await
    }

    /// The request loop: one GET per hop until a non-redirect answer. The time limit runs from
    /// the first request sent: waiting for a turn (the host's, a slot, room for the body) is
    /// not the server's slowness.
    async fn follow(
        &self,
        url: &str,
        validators: &Validators,
        limits: &Limits,
        options: &RequestOptions,
    ) -> Result<Fetched, FetchError> {
        let max_body = limits.max_body;
        let mut deadline = None;
        let timed_out = || FetchError::Timeout {
            url: url.to_string(),
            seconds: limits.timeout.as_secs(),
        };
        let mut current = url::Url::parse(url).map_err(|e| FetchError::Network {
            url: url.to_string(),
            message: format!("not a valid URL: {e}"),
        })?;
        let client = self.client_for(url, options)?;
        let mut chain = vec![current.to_string()];
        let mut all_permanent = true;
        loop {
            let permit = self.host_permit(&current).await;
            // The host's turn first, then a slot: a request queued behind its host holds none.
            self.bodies.wait_for_room().await;
            let slot = Arc::clone(&self.in_flight).acquire_owned().await.ok();
            let deadline =
                *deadline.get_or_insert_with(|| tokio::time::Instant::now() + limits.timeout);
            let response = tokio::time::timeout_at(
                deadline,
                request(&client, &current, validators, options).send(),
            )
            .await
            .map_err(|_| timed_out())?
            .map_err(|e| network(url, e))?;
            let status = response.status();
            if !status.is_redirection() || status == StatusCode::NOT_MODIFIED {
                let moved_to = (chain.len() > 1 && all_permanent).then(|| current.to_string());
                let read = async {
                    // Only a body worth reading waits (a 304 or an error has next to none).
                    let _reading = match status.is_success() {
                        true => self.reading.acquire().await.ok(),
                        false => None,
                    };
                    finish(url, response, validators, max_body, moved_to).await
                };
                let mut result = tokio::time::timeout_at(deadline, read)
                    .await
                    .unwrap_or_else(|_| Err(timed_out()));
                drop((slot, permit));
                if let Ok(Fetched::Body(body)) = &mut result {
                    body.held = Some(self.bodies.hold(body.bytes.len()));
                }
                return result;
            }
            drop((slot, permit));
            let next = response
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|location| current.join(location).ok())
                .ok_or_else(|| FetchError::BadRedirect {
                    url: url.to_string(),
                })?;
            all_permanent &= matches!(
                status,
                StatusCode::MOVED_PERMANENTLY | StatusCode::PERMANENT_REDIRECT
            );
            let seen = chain.iter().any(|u| u == next.as_str());
            chain.push(next.to_string());
            if seen {
                return Err(FetchError::RedirectLoop {
                    url: url.to_string(),
                    chain: chain.join(" -> "),
                });
            }
            if chain.len() > MAX_REDIRECTS + 1 {
                return Err(FetchError::TooManyRedirects {
                    url: url.to_string(),
                    chain: chain.join(" -> "),
                });
            }
            current = next;
        }
    }

    /// The client for `options`' proxy and certificate settings.
    fn client_for(
        &self,
        url: &str,
        options: &RequestOptions,
    ) -> Result<reqwest::Client, FetchError> {
        if options.proxy == Proxy::Environment && !options.accept_invalid_certs {
            return Ok(self.client.clone());
        }
        let key = (options.proxy.clone(), options.accept_invalid_certs);
        let mut clients = self.other_clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        let mut builder =
            client_builder(self.timeout).danger_accept_invalid_certs(options.accept_invalid_certs);
        match &options.proxy {
            Proxy::Environment => {}
            Proxy::Direct => builder = builder.no_proxy(),
            Proxy::Url(proxy) => {
                // The proxy's address may carry credentials: its error names it no further.
                let proxy =
                    reqwest::Proxy::all(proxy.expose()).map_err(|_| FetchError::Network {
                        url: url.to_string(),
                        message: "the feed's proxy is not a usable URL".into(),
                    })?;
                builder = builder.proxy(proxy);
            }
        }
        let client = builder.build().map_err(|e| network(url, e))?;
        clients.insert(key, client.clone());
        Ok(client)
    }

    async fn host_permit(&self, url: &url::Url) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let key = format!(
            "{}:{}",
            url.host_str().unwrap_or(""),
            url.port_or_known_default().unwrap_or(0)
        );
        let semaphore = {
            let mut hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(
                hosts
                    .entry(key)
                    .or_insert_with(|| Arc::new(Semaphore::new(PER_HOST))),
            )
        };
        // The semaphore is never closed, so this only fails in theory; fetch without it then.
        semaphore.acquire_owned().await.ok()
    }
}

/// How every client starts: feedwatch's user agent, a connect timeout, redirects left to
/// [`Fetcher::fetch_limited`].
fn client_builder(timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(Duration::from_secs(10).min(timeout))
        // Redirects are followed in `fetch` to see each hop's status.
        .redirect(reqwest::redirect::Policy::none())
        // Idle connections hold file descriptors too: a few per host, for a short while.
        .pool_max_idle_per_host(PER_HOST)
        .pool_idle_timeout(IDLE_CONNECTION)
}

/// One GET of `url`: the validators, then the feed's own options. Headers, cookie and basic
/// auth go only to the feed's origin, so that a redirect cannot hand them to another host.
fn request(
    client: &reqwest::Client,
    url: &url::Url,
    validators: &Validators,
    options: &RequestOptions,
) -> reqwest::RequestBuilder {
    let mut request = client.get(url.as_str()).header(header::ACCEPT, ACCEPT);
    if let Some(agent) = &options.user_agent {
        request = request.header(header::USER_AGENT, agent);
    }
    if let Some(etag) = &validators.etag {
        request = request.header(header::IF_NONE_MATCH, etag);
    }
    if let Some(modified) = &validators.last_modified {
        request = request.header(header::IF_MODIFIED_SINCE, modified);
    }
    if options.origin.as_ref() != Some(&url.origin()) {
        return request;
    }
    let mut own = HeaderMap::new();
    for (name, value) in &options.headers {
        if let (Ok(name), Some(value)) = (
            header::HeaderName::from_bytes(name.as_bytes()),
            hidden_value(value),
        ) {
            own.append(name, value);
        }
    }
    if let Some(value) = options.cookie.as_ref().and_then(hidden_value) {
        own.insert(header::COOKIE, value);
    }
    // Replaces what is set above (`Accept`), where the feed says so.
    request = request.headers(own);
    if let Some(auth) = &options.basic_auth {
        request = request.basic_auth(&auth.username, Some(auth.password.expose()));
    }
    request
}

/// A header value marked sensitive, so that the HTTP stack never prints it.
fn hidden_value(value: &Sensitive) -> Option<header::HeaderValue> {
    let mut value = header::HeaderValue::from_str(value.expose()).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// Turns the final response into a [`Fetched`] or an error, reading the body under the cap.
async fn finish(
    url: &str,
    mut response: reqwest::Response,
    validators: &Validators,
    max_body: u64,
    moved_to: Option<String>,
) -> Result<Fetched, FetchError> {
    let status = response.status();
    let headers = response.headers();
    // Keep the old validators when the server sends none with a 304.
    let new_validators = Validators {
        etag: header_string(headers, header::ETAG).or_else(|| validators.etag.clone()),
        last_modified: header_string(headers, header::LAST_MODIFIED)
            .or_else(|| validators.last_modified.clone()),
        digest: validators.digest.clone(),
    };
    let hints = Hints {
        moved_to,
        max_age: max_age(headers),
    };
    if status == StatusCode::NOT_MODIFIED {
        return Ok(Fetched::NotModified {
            validators: new_validators,
            hints,
        });
    }
    if !status.is_success() {
        let retry_after = matches!(
            status,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
        )
        .then(|| retry_after(headers, Utc::now()))
        .flatten();
        return Err(FetchError::Status {
            url: url.to_string(),
            status: status.as_u16(),
            retry_after,
        });
    }
    let too_large = || FetchError::TooLarge {
        url: url.to_string(),
        limit: max_body,
    };
    let content_type = header_string(headers, header::CONTENT_TYPE);
    // Content-Length is the compressed size when the body is encoded; it is only a fast reject.
    if response.content_length().is_some_and(|n| n > max_body) {
        return Err(too_large());
    }
    let final_url = response.url().to_string();
    let mut bytes = Vec::new();
    // Chunks arrive decompressed, so this cap also stops compression bombs.
    while let Some(chunk) = response.chunk().await.map_err(|e| network(url, e))? {
        if (bytes.len() + chunk.len()) as u64 > max_body {
            return Err(too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Fetched::Body(Body {
        bytes,
        held: None,
        content_type,
        final_url,
        validators: new_validators,
        status: status.as_u16(),
        hints,
    }))
}

/// Fetched bodies not yet parsed, in bytes, against [`BODY_BUDGET`].
#[derive(Debug, Default)]
struct BodyBudget {
    held: AtomicUsize,
    freed: Notify,
}

impl BodyBudget {
    /// Waits while the bodies held exceed the budget. Requests already under way finish
    /// regardless, so the budget can be overrun by what they bring, never deadlocked.
    async fn wait_for_room(&self) {
        loop {
            let freed = self.freed.notified();
            if self.held.load(Ordering::Acquire) <= BODY_BUDGET {
                return;
            }
            freed.await;
        }
    }

    fn hold(self: &Arc<Self>, bytes: usize) -> HeldBody {
        self.held.fetch_add(bytes, Ordering::AcqRel);
        HeldBody {
            budget: Arc::clone(self),
            bytes,
        }
    }
}

/// A fetched body's bytes counted against [`BODY_BUDGET`] until this is dropped.
#[derive(Debug)]
pub struct HeldBody {
    budget: Arc<BodyBudget>,
    bytes: usize,
}

impl Drop for HeldBody {
    fn drop(&mut self) {
        self.budget.held.fetch_sub(self.bytes, Ordering::AcqRel);
        self.budget.freed.notify_waiters();
    }
}

/// Requests in flight at once: the config's number or the default, but never more than half
/// the file descriptors left after [`RESERVED_DESCRIPTORS`] (the other half is for idle
/// connections kept for reuse), and at least one.
fn fetch_slots(configured: Option<usize>, open_file_limit: Option<u64>) -> usize {
    let wanted = configured.unwrap_or(DEFAULT_MAX_FETCHES).max(1);
    match open_file_limit {
        Some(limit) => {
            let limit = usize::try_from(limit).unwrap_or(usize::MAX);
            wanted
                .min(limit.saturating_sub(RESERVED_DESCRIPTORS) / 2)
                .max(1)
        }
        None => wanted,
    }
}

/// Raises the soft limit on open files to the hard one, as far as the system lets a process
/// (many systems start daemons at 1,024 with a hard limit far above), and returns the limit
/// now in force; `None` where it cannot be read.
#[cfg(unix)]
#[allow(unsafe_code)]
fn raise_open_file_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit through a pointer to a value we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit only reads the rlimit it is given.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit = raised;
        }
    }
    // RLIM_INFINITY is the largest value: no practical limit. (`rlim_t` is not u64 everywhere.)
    #[allow(clippy::useless_conversion)]
    Some(u64::try_from(limit.rlim_cur).unwrap_or(u64::MAX))
}

#[cfg(not(unix))]
fn raise_open_file_limit() -> Option<u64> {
    None
}

fn network(url: &str, err: reqwest::Error) -> FetchError {
    FetchError::Network {
        url: url.to_string(),
        message: error_chain(&err),
    }
}

async fn read_file(url: &str, max_body: u64) -> Result<Fetched, FetchError> {
    let path = url::Url::parse(url)
        .ok()
        .and_then(|u| u.to_file_path().ok())
        .unwrap_or_else(|| PathBuf::from(url.trim_start_matches("file://")));
    let file_error = |source| FetchError::File {
        path: path.clone(),
        source,
    };
    let meta = tokio::fs::metadata(&path).await.map_err(file_error)?;
    if meta.len() > max_body {
        return Err(FetchError::TooLarge {
            url: url.to_string(),
            limit: max_body,
        });
    }
    let bytes = tokio::fs::read(&path).await.map_err(file_error)?;
    Ok(Fetched::Body(Body {
        bytes,
        held: None,
        content_type: None,
        final_url: url.to_string(),
        validators: Validators::default(),
        status: 200,
        hints: Hints::default(),
    }))
}

fn header_string(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// `Retry-After` as seconds or as an HTTP date.
fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(now + chrono::Duration::seconds(seconds.min(7 * 24 * 3600) as i64));
    }
    DateTime::parse_from_rfc2822(value)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// `Cache-Control: max-age=N`, unless the response may not be reused at all (`no-store`,
/// `no-cache`), in which case it says nothing about when to come back.
fn max_age(headers: &HeaderMap) -> Option<Duration> {
    let mut age = None;
    for value in headers.get_all(header::CACHE_CONTROL) {
        for directive in value.to_str().ok()?.split(',') {
            let directive = directive.trim().to_ascii_lowercase();
            if directive == "no-store" || directive == "no-cache" {
                return None;
            }
            if let Some(seconds) = directive.strip_prefix("max-age=") {
                age = seconds.trim_matches('"').parse::<u64>().ok();
            }
        }
    }
    age.map(|s| Duration::from_secs(s).min(MAX_SERVER_PAUSE))
}

/// reqwest's top-level message repeats the URL and says little ("error sending request"); the
/// useful part is the chain of causes below it, which often repeat each other too.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.retain(|p| !text.contains(p.as_str()));
            parts.push(text);
        }
        source = cause.source();
    }
    if parts.is_empty() {
        parts.push(err.to_string());
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use reqwest::header::HeaderValue;

    #[test]
    fn fetch_slots_follow_the_config_within_the_file_descriptors() {
        assert_eq!(fetch_slots(None, Some(1_048_576)), DEFAULT_MAX_FETCHES);
        assert_eq!(fetch_slots(Some(2000), Some(1_048_576)), 2000);
        // systemd's usual soft limit when the hard one cannot be reached.
        assert_eq!(
            fetch_slots(None, Some(1024)),
            (1024 - RESERVED_DESCRIPTORS) / 2
        );
        assert_eq!(fetch_slots(Some(16), Some(1024)), 16);
        assert_eq!(fetch_slots(None, Some(20)), 1);
        assert_eq!(fetch_slots(Some(0), None), 1);
    }

    #[tokio::test]
    async fn new_requests_wait_while_unparsed_bodies_exceed_the_budget() {
        let budget = Arc::new(BodyBudget::default());
        let big = budget.hold(BODY_BUDGET + 1);
        let waiting = tokio::spawn({
            let budget = Arc::clone(&budget);
            async move { budget.wait_for_room().await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !waiting.is_finished(),
            "a request starts with the budget spent"
        );
        drop(big);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("parsing a body lets the next request start")
            .unwrap();
        assert_eq!(budget.held.load(Ordering::Acquire), 0);
    }

    #[test]
    fn retry_after_takes_seconds_and_dates() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let mut h = HeaderMap::new();
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("120"));
        assert_eq!(
            retry_after(&h, now),
            Some(now + chrono::Duration::seconds(120))
        );
        h.insert(
            header::RETRY_AFTER,
            HeaderValue::from_static("Thu, 01 Jan 2026 01:00:00 GMT"),
        );
        assert_eq!(
            retry_after(&h, now),
            Some(Utc.with_ymd_and_hms(2026, 1, 1, 1, 0, 0).unwrap())
        );
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h, now), None);
    }

    #[test]
    fn max_age_is_read_unless_caching_is_forbidden() {
        let mut h = HeaderMap::new();
        assert_eq!(max_age(&h), None);
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=600"),
        );
        assert_eq!(max_age(&h), Some(Duration::from_secs(600)));
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("max-age=99999999"),
        );
        assert_eq!(max_age(&h), Some(MAX_SERVER_PAUSE));
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache, max-age=600"),
        );
        assert_eq!(max_age(&h), None);
    }
}

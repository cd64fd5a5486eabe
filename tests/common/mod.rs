//! Test fixtures: a local feed server and webhook receiver on 127.0.0.1, a temporary config
//! and database, and a way to run the real `feedwatch` binary against them.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};

/// One feed as the server serves it.
#[derive(Clone)]
pub struct Served {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
    pub etag: Option<String>,
}

/// A request the webhook receiver accepted.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    /// Path and query of the request.
    pub uri: String,
    pub headers: HeaderMap,
    pub body: String,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("webhook body is JSON")
    }
}

#[derive(Default)]
struct ServerState {
    feeds: Mutex<HashMap<String, Served>>,
    hits: Mutex<HashMap<String, usize>>,
    received: Mutex<Vec<Received>>,
    /// The receiver answers 503 to this many requests before accepting.
    fail_next: AtomicUsize,
    /// When not 0, the receiver answers every request with this status (503: "down").
    forced_status: AtomicU16,
    /// The receiver waits this long before answering (a slow receiver).
    delay_ms: AtomicU64,
    /// Every request the receiver got, accepted or not.
    attempts: AtomicUsize,
}

pub struct TestServer {
    pub addr: SocketAddr,
    state: Arc<ServerState>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        let state = Arc::new(ServerState::default());
        let app = Router::new()
            .route("/feeds/{*path}", get(serve_feed))
            .route("/slow/{seconds}/{*path}", get(serve_slowly))
            .route("/hook", post(receive_webhook))
            .route("/hook/{*rest}", any(receive_webhook))
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.ok();
        });
        TestServer { addr, state }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{}", self.addr, path.trim_start_matches('/'))
    }

    /// Serves `body` at `/feeds/{name}` with status 200.
    pub fn feed(&self, name: &str, content_type: &str, body: impl Into<Vec<u8>>) {
        self.serve(
            name,
            Served {
                status: 200,
                content_type: content_type.into(),
                body: body.into(),
                etag: None,
            },
        );
    }

    pub fn serve(&self, name: &str, served: Served) {
        self.state
            .feeds
            .lock()
            .unwrap()
            .insert(name.to_string(), served);
    }

    pub fn hits(&self, name: &str) -> usize {
        *self.state.hits.lock().unwrap().get(name).unwrap_or(&0)
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    pub fn fail_next_webhooks(&self, n: usize) {
        self.state.fail_next.store(n, Ordering::SeqCst);
    }

    /// Answers every webhook with `status` until called again with 0.
    pub fn force_webhook_status(&self, status: u16) {
        self.state.forced_status.store(status, Ordering::SeqCst);
    }

    /// Waits `delay` before answering each webhook.
    pub fn slow_webhooks(&self, delay: std::time::Duration) {
        self.state
            .delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// Webhook requests seen, including refused ones.
    pub fn webhook_attempts(&self) -> usize {
        self.state.attempts.load(Ordering::SeqCst)
    }
}

async fn serve_feed(
    State(state): State<Arc<ServerState>>,
    UrlPath(path): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    *state.hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    let Some(served) = state.feeds.lock().unwrap().get(&path).cloned() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if let Some(etag) = &served.etag
        && headers
            .get(header::IF_NONE_MATCH)
            .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    let mut response = (
        StatusCode::from_u16(served.status).unwrap(),
        [(header::CONTENT_TYPE, served.content_type.clone())],
        served.body,
    )
        .into_response();
    if let Some(etag) = served.etag {
        response
            .headers_mut()
            .insert(header::ETAG, etag.parse().unwrap());
    }
    response
}

/// Like `/feeds/…`, but only after `seconds`: a poll that is still running.
async fn serve_slowly(
    State(state): State<Arc<ServerState>>,
    UrlPath((seconds, path)): UrlPath<(u64, String)>,
    headers: HeaderMap,
) -> Response {
    *state
        .hits
        .lock()
        .unwrap()
        .entry(format!("slow/{path}"))
        .or_default() += 1;
    tokio::time::sleep(std::time::Duration::from_secs(seconds)).await;
    serve_feed(State(state), UrlPath(path), headers).await
}

async fn receive_webhook(
    State(state): State<Arc<ServerState>>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    state.attempts.fetch_add(1, Ordering::SeqCst);
    let forced = state.forced_status.load(Ordering::SeqCst);
    if forced != 0 {
        return StatusCode::from_u16(forced).unwrap();
    }
    let fail = state
        .fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if fail {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    // A slow receiver has already taken the alert when it is slow to answer: a sender that
    // gives up (or dies) before the answer will send it again.
    state.received.lock().unwrap().push(Received {
        method: method.to_string(),
        uri: uri.to_string(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let delay = state.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
    }
    StatusCode::OK
}

/// A temporary folder holding `config.toml` and the database.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new(config: &str) -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        Workspace { dir }
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("feedwatch.db")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `feedwatch --config <this config> ARGS…` to completion.
    pub async fn run(&self, args: &[&str]) -> Output {
        feedwatch(&self.config(), args, &[]).await
    }

    pub fn query_i64(&self, sql: &str) -> i64 {
        let conn = rusqlite::Connection::open(self.db()).unwrap();
        conn.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    /// Like [`Workspace::query_i64`], in the search index (its file beside the database).
    pub fn query_index_i64(&self, sql: &str) -> i64 {
        let index = feedwatch::store::index_path(&self.db());
        let conn = rusqlite::Connection::open(index).unwrap();
        conn.query_row(sql, [], |r| r.get(0)).unwrap()
    }
}

/// Waits up to `limit` for `done` to hold, checking every 50 ms.
pub async fn wait_until(limit: std::time::Duration, what: &str, mut done: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn assert_ok(&self) -> &Output {
        assert_eq!(
            self.code,
            Some(0),
            "feedwatch failed\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// Asserts that feedwatch wrote `text` to stderr, and shows what it wrote if not.
    #[track_caller]
    pub fn assert_stderr_has(&self, text: impl AsRef<str>) -> &Output {
        assert_has("stderr", &self.stderr, text.as_ref());
        self
    }

    /// Asserts that feedwatch wrote `text` to stdout, and shows what it wrote if not.
    #[track_caller]
    pub fn assert_stdout_has(&self, text: impl AsRef<str>) -> &Output {
        assert_has("stdout", &self.stdout, text.as_ref());
        self
    }
}

#[track_caller]
fn assert_has(stream: &str, written: &str, text: &str) {
    assert!(
        written.contains(text),
        "{stream} lacks {text:?}:\n{written}"
    );
}

/// Loopback traffic must never go through a proxy from the environment, and the test's own log
/// level or systemd socket must not leak into the binary under test.
const INHERITED_ENV_TO_DROP: [&str; 7] = [
    "http_proxy",
    "https_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "RUST_LOG",
    "NOTIFY_SOCKET",
];

pub async fn feedwatch(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_feedwatch"));
    cmd.arg("--config").arg(config).args(args);
    for var in INHERITED_ENV_TO_DROP {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), cmd.output())
        .await
        .expect("feedwatch finished within 60 s")
        .expect("feedwatch ran");
    Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// An RSS 2.0 document with `(guid, title, description)` items.
pub fn rss(title: &str, items: &[(&str, &str, &str)]) -> String {
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\"><channel>\
         <title>{title}</title><link>https://news.example/</link>"
    );
    for (guid, title, description) in items {
        xml.push_str(&format!(
            "<item><guid isPermaLink=\"false\">{guid}</guid><title>{title}</title>\
             <link>https://news.example/{guid}</link><description>{description}</description>\
             <pubDate>Wed, 25 Nov 2026 09:00:00 GMT</pubDate></item>"
        ));
    }
    xml.push_str("</channel></rss>");
    xml
}

/// The real binary running as a daemon (`run`), with its stderr collected for assertions.
pub struct Daemon {
    child: std::process::Child,
    log: Arc<Mutex<String>>,
}

impl Daemon {
    pub fn start(config: &Path, env: &[(&str, &str)]) -> Daemon {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_feedwatch"));
        cmd.arg("--config")
            .arg(config)
            .arg("run")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        for var in INHERITED_ENV_TO_DROP {
            cmd.env_remove(var);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start feedwatch run");
        let log = Arc::new(Mutex::new(String::new()));
        for stream in [
            Box::new(child.stderr.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stdout.take().unwrap()),
        ] {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                use std::io::BufRead;
                for line in std::io::BufReader::new(stream)
                    .lines()
                    .map_while(Result::ok)
                {
                    let mut log = log.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                }
            });
        }
        Daemon { child, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the daemon's output contains `text` `times` times.
    pub async fn wait_for_log(&self, text: &str, times: usize) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while self.log().matches(text).count() < times {
            assert!(
                std::time::Instant::now() < deadline,
                "waited 20 s for {times}× {text:?}; log:\n{}",
                self.log()
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Sends a signal by name (`TERM`, `HUP`, `KILL`).
    pub fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// SIGKILL: no shutdown code runs, as after a crash or power cut.
    pub async fn kill(mut self) {
        self.signal("KILL");
        self.wait_exit(std::time::Duration::from_secs(10)).await;
    }

    /// Waits for the process to end and returns its exit code.
    pub async fn wait_exit(&mut self, within: std::time::Duration) -> Option<i32> {
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for feedwatch") {
                return status.code();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "feedwatch did not exit within {within:?}; log:\n{}",
                self.log()
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

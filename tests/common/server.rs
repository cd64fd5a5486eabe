//! One local HTTP server for every test, on 127.0.0.1: feeds and pages at any path, each path
//! playing one case (a page, a redirect, a bare status, a slow answer), and a webhook receiver
//! at `/hook` that can be made to fail, refuse or dawdle.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};

/// What one path of the [`TestServer`] answers.
#[derive(Clone)]
pub enum Route {
    /// 200 with these headers and body; 304 when `If-None-Match` equals the `etag` header.
    Page {
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    },
    Redirect {
        status: u16,
        to: String,
    },
    Status {
        status: u16,
        headers: Vec<(&'static str, String)>,
    },
    /// Like `Page`, but only for requests that carry each of these headers with exactly this
    /// value; 401 to the others.
    Guarded {
        require: Vec<(&'static str, String)>,
        body: Vec<u8>,
    },
    /// Like `Page`, but holds each request this long, to see how many are in flight at once.
    Slow {
        delay: Duration,
        body: Vec<u8>,
    },
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
    routes: Mutex<HashMap<String, Route>>,
    /// The request headers of each hit, by path, found or not.
    requests: Mutex<HashMap<String, Vec<HeaderMap>>>,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
    received: Mutex<Vec<Received>>,
    /// The receiver answers 503 to this many requests before accepting.
    fail_next: AtomicUsize,
    /// When not 0, the receiver answers every request with this status (503: "down").
    forced_status: AtomicU16,
    /// The receiver waits this long before answering (a slow receiver).
    delay_ms: AtomicU64,
    /// How many requests it answers at once before the delay applies.
    delay_after: AtomicUsize,
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
            .route("/hook", post(receive_webhook))
            .route("/hook/{*rest}", any(receive_webhook))
            .fallback(answer)
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

    pub fn route(&self, path: &str, route: Route) {
        self.state
            .routes
            .lock()
            .unwrap()
            .insert(path.to_string(), route);
    }

    /// Serves `body` at `path` with status 200.
    pub fn page(&self, path: &str, content_type: &str, body: impl Into<Vec<u8>>) {
        self.route(
            path,
            Route::Page {
                headers: vec![("content-type", content_type.to_string())],
                body: body.into(),
            },
        );
    }

    /// Serves `body` at `/feeds/{name}` with status 200.
    pub fn feed(&self, name: &str, content_type: &str, body: impl Into<Vec<u8>>) {
        self.page(&format!("/feeds/{name}"), content_type, body);
    }

    /// The request headers each hit on `path` carried, in order.
    pub fn requests(&self, path: &str) -> Vec<HeaderMap> {
        self.state
            .requests
            .lock()
            .unwrap()
            .get(path)
            .cloned()
            .unwrap_or_default()
    }

    /// Requests for `/feeds/{name}`.
    pub fn hits(&self, name: &str) -> usize {
        self.requests(&format!("/feeds/{name}")).len()
    }

    /// The most [`Route::Slow`] requests that were answered at once.
    pub fn most_in_flight(&self) -> usize {
        self.state.most_in_flight.load(Ordering::SeqCst)
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

    /// Waits `delay` before answering each webhook from now on.
    pub fn slow_webhooks(&self, delay: Duration) {
        self.slow_webhooks_after(0, delay);
    }

    /// Answers the next `quick` webhooks at once, then waits `delay` before answering each.
    pub fn slow_webhooks_after(&self, quick: usize, delay: Duration) {
        self.state.delay_after.store(
            self.state.attempts.load(Ordering::SeqCst) + quick,
            Ordering::SeqCst,
        );
        self.state
            .delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// Webhook requests seen, including refused ones.
    pub fn webhook_attempts(&self) -> usize {
        self.state.attempts.load(Ordering::SeqCst)
    }
}

async fn answer(State(state): State<Arc<ServerState>>, request: Request) -> Response {
    let path = request.uri().path().to_string();
    let headers = request.headers().clone();
    state
        .requests
        .lock()
        .unwrap()
        .entry(path.clone())
        .or_default()
        .push(headers.clone());
    let Some(route) = state.routes.lock().unwrap().get(&path).cloned() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match route {
        Route::Page { headers: h, body } => {
            let etag = h.iter().find(|(k, _)| *k == "etag").map(|(_, v)| v.clone());
            if etag.is_some_and(|e| {
                headers
                    .get(header::IF_NONE_MATCH)
                    .is_some_and(|v| v.as_bytes() == e.as_bytes())
            }) {
                // Deliberately without validators: the client must keep the ones it has.
                return StatusCode::NOT_MODIFIED.into_response();
            }
            with_headers(StatusCode::OK, &h, body)
        }
        Route::Guarded { require, body } => {
            let allowed = require.iter().all(|(name, value)| {
                headers
                    .get(*name)
                    .is_some_and(|v| v.as_bytes() == value.as_bytes())
            });
            if !allowed {
                return StatusCode::UNAUTHORIZED.into_response();
            }
            with_headers(
                StatusCode::OK,
                &[("content-type", "application/rss+xml".into())],
                body,
            )
        }
        Route::Redirect { status, to } => with_headers(
            StatusCode::from_u16(status).unwrap(),
            &[("location", to)],
            Vec::new(),
        ),
        Route::Status { status, headers: h } => {
            with_headers(StatusCode::from_u16(status).unwrap(), &h, Vec::new())
        }
        Route::Slow { delay, body } => {
            let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            state.most_in_flight.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(delay).await;
            state.in_flight.fetch_sub(1, Ordering::SeqCst);
            with_headers(
                StatusCode::OK,
                &[("content-type", "application/rss+xml".into())],
                body,
            )
        }
    }
}

fn with_headers(status: StatusCode, headers: &[(&str, String)], body: Vec<u8>) -> Response {
    let mut response = (status, body).into_response();
    for (name, value) in headers {
        response.headers_mut().insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    response
}

async fn receive_webhook(
    State(state): State<Arc<ServerState>>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let attempt = state.attempts.fetch_add(1, Ordering::SeqCst);
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
    if delay > 0 && attempt >= state.delay_after.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    StatusCode::OK
}

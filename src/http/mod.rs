//! The optional HTTP listener (`[http]`): `/metrics` for Prometheus, `/healthz` and `/readyz`
//! for supervisors, Atom feeds of the matches for feed readers, and a status page at `/`.
//!
//! It serves what the daemon already has: the pipeline it runs on (followed across reloads),
//! the database through the same connections, and the process's metrics. A bearer token, when
//! configured, guards everything but the health checks; it may also come as `?token=`, for
//! feed readers that cannot send headers.

mod atom;
mod health;
mod limits;
mod metrics;
mod page;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::HttpToken;
use crate::pipeline::Pipeline;
pub use health::Liveness;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error(
        "cannot listen for HTTP on {addr}: {source} (is another program on that port? change \
         `listen` in [http], or remove [http] to run without the listener)"
    )]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// What every request handler reads.
#[derive(Clone)]
struct AppState {
    /// The pipeline the daemon runs on now: its config, rules and database.
    current: watch::Receiver<Arc<Pipeline>>,
    liveness: Arc<Liveness>,
}

impl AppState {
    fn pipeline(&self) -> Arc<Pipeline> {
        Arc::clone(&self.current.borrow())
    }

    /// The token of the config the daemon runs on now (a reload that moves `listen` keeps the
    /// running `[http]`, token included).
    fn token(&self) -> Option<HttpToken> {
        self.pipeline()
            .config
            .http
            .as_ref()
            .and_then(|h| h.token.clone())
    }
}

/// Binds the listener, so that a port in use stops the daemon before it starts.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, HttpError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| HttpError::Bind { addr, source })
}

/// Serves on `listener` until `shutdown` is cancelled.
pub fn serve(
    listener: TcpListener,
    current: watch::Receiver<Arc<Pipeline>>,
    liveness: Arc<Liveness>,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    let bound = listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
    let state = AppState { current, liveness };
    let app = router(state);
    tracing::info!("HTTP listening on http://{bound}/");
    tokio::spawn(async move {
        let stopped = shutdown.clone();
        let listener = limits::Bounded::new(
            listener,
            limits::MAX_CONNECTIONS,
            limits::CONNECTION_LIFETIME,
        );
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stopped.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!("the HTTP listener on {bound} stopped: {e}");
        }
    })
}

fn router(state: AppState) -> Router {
    let guarded = Router::new()
        .route("/", get(page::status_page))
        .route("/metrics", get(metrics::scrape))
        .route("/feeds/matches.atom", get(atom::all_matches))
        .route("/feeds/rules/{file}", get(atom::rule_matches))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .merge(guarded)
        .with_state(state)
}

/// Lets a request through if no token is configured or it carries the token, as
/// `Authorization: Bearer …` or `?token=…`.
async fn require_token(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(token) = state.token() else {
        return next.run(request).await;
    };
    let from_header = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .is_some_and(|offered| token.matches(offered));
    let from_query = request.uri().query().is_some_and(|query| {
        url::form_urlencoded::parse(query.as_bytes())
            .any(|(key, value)| key == "token" && token.matches(&value))
    });
    if from_header || from_query {
        return next.run(request).await;
    }
    let mut response = (
        StatusCode::UNAUTHORIZED,
        "a bearer token is required: send `Authorization: Bearer TOKEN` (or add ?token=TOKEN)\n",
    )
        .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"feedwatch\""),
    );
    response
}

/// A 503 that says what could not be read, for handlers whose database read failed.
fn unavailable(what: &str, error: impl std::fmt::Display) -> Response {
    tracing::warn!("HTTP: {what}: {error}");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        format!("{what}: {error}\n"),
    )
        .into_response()
}

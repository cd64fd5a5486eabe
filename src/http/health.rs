//! `/healthz`: the daemon's loop is turning and the database takes writes. `/readyz`: the
//! daemon is running (not stopping) and the database answers.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;

use super::AppState;

/// The loop wakes at least once a minute; missing two and a half of those means it is stuck.
const LOOP_STALL: i64 = 150;
/// How long a health check waits for the database's write lock.
const DATABASE_WAIT: Duration = Duration::from_secs(5);

/// What the daemon's loop tells the health checks.
#[derive(Debug)]
pub struct Liveness {
    /// When the loop last went round (Unix seconds).
    heartbeat: AtomicI64,
    /// The last database failure of a poll, until a poll succeeds again.
    store_error: Mutex<Option<String>>,
    stopping: AtomicBool,
}

impl Default for Liveness {
    fn default() -> Self {
        Liveness {
            heartbeat: AtomicI64::new(Utc::now().timestamp()),
            store_error: Mutex::new(None),
            stopping: AtomicBool::new(false),
        }
    }
}

impl Liveness {
    pub fn beat(&self) {
        self.heartbeat
            .store(Utc::now().timestamp(), Ordering::Relaxed);
    }

    /// A poll's write to the database ended: `None` when it succeeded.
    pub fn stored(&self, error: Option<String>) {
        *self.store_error.lock().unwrap_or_else(|p| p.into_inner()) = error;
    }

    pub fn stopping(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }
}

pub(super) async fn healthz(State(state): State<AppState>) -> Response {
    let mut problems = Vec::new();
    let idle = Utc::now().timestamp() - state.liveness.heartbeat.load(Ordering::Relaxed);
    if idle > LOOP_STALL {
        problems.push(format!("the daemon's loop has not run for {idle} s"));
    }
    if let Some(error) = state
        .liveness
        .store_error
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
    {
        problems.push(format!("the last poll could not be stored: {error}"));
    }
    let db = state.pipeline().db.clone();
    match tokio::time::timeout(DATABASE_WAIT, db.call(|s| s.check_writable())).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => problems.push(format!("the database takes no writes: {e}")),
        Err(_) => problems.push(format!(
            "the database's write lock was not free within {} s",
            DATABASE_WAIT.as_secs()
        )),
    }
    if problems.is_empty() {
        return (StatusCode::OK, "ok\n").into_response();
    }
    let body = problems.join("\n") + "\n";
    (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
}

pub(super) async fn readyz(State(state): State<AppState>) -> Response {
    if state.liveness.stopping.load(Ordering::Relaxed) {
        return (StatusCode::SERVICE_UNAVAILABLE, "stopping\n").into_response();
    }
    let db = state.pipeline().db.clone();
    match tokio::time::timeout(DATABASE_WAIT, db.read(|s| s.check_readable())).await {
        Ok(Ok(_)) => (StatusCode::OK, "ready\n").into_response(),
        Ok(Err(e)) => {
            let body = format!("the database cannot be read: {e}\n");
            (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the database did not answer in time\n",
        )
            .into_response(),
    }
}

//! `/metrics`: the process's counters and, read from the database at each scrape, the outbox
//! by status and each configured feed's health, in the OpenMetrics text format.

use std::collections::HashSet;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::{AppState, unavailable};
use crate::metrics::{StoreSnapshot, metrics};

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub(super) async fn scrape(State(state): State<AppState>) -> Response {
    let pipeline = state.pipeline();
    let read = pipeline
        .db
        .read(|s| Ok((s.poll_states()?, s.outbox_counts()?)))
        .await;
    let (states, outbox) = match read {
        Ok(read) => read,
        Err(e) => return unavailable("cannot read the database", e),
    };
    let configured: HashSet<&str> = pipeline
        .config
        .feeds
        .iter()
        .map(|f| f.url.as_str())
        .collect();
    let mut feeds: Vec<_> = states
        .values()
        .filter(|f| configured.contains(f.url.as_str()))
        .collect();
    feeds.sort_by(|a, b| a.name.cmp(&b.name));
    let text = metrics().encode(&StoreSnapshot {
        feeds,
        outbox: &outbox,
    });
    ([(header::CONTENT_TYPE, OPENMETRICS)], text).into_response()
}

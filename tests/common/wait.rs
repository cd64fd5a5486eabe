//! Waiting in tests: for a condition, with a bounded time, or for the wall clock to pass a
//! second.

use std::time::{Duration, Instant};

/// Waits up to `limit` for `done` to hold, checking every 50 ms.
pub async fn wait_until(limit: Duration, what: &str, done: impl FnMut() -> bool) {
    wait_until_with(limit, what, done, String::new).await;
}

/// Like [`wait_until`]; a time-out also shows `context()` (say, a log).
pub async fn wait_until_with(
    limit: Duration,
    what: &str,
    mut done: impl FnMut() -> bool,
    context: impl Fn() -> String,
) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < limit,
            "timed out waiting for {what}{}",
            context()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the wall clock passes the Unix time `at`.
pub async fn sleep_past(at: i64) {
    while chrono::Utc::now().timestamp() <= at {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

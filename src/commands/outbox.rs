//! `feedwatch outbox`: alerts not yet delivered, and `outbox retry` to send dead ones again.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use feedwatch::config::Config;
use feedwatch::notify;
use feedwatch::store::{Db, OutboxEntry, Store};

pub fn show(path: &Path, as_json: bool) -> Result<ExitCode> {
    let config = Config::load(path)?;
    let store = Store::open_existing(&config.database)?;
    let entries = store.undelivered()?;
    if as_json {
        let out: Vec<_> = entries
            .iter()
            .map(|e| {
                json!({
                    "status": status(e),
                    "delivery_id": e.delivery_id,
                    "digest_id": e.digest_id,
                    "notifier": e.notifier,
                    "rule": e.alert.rule,
                    "attempts": e.attempts,
                    "next_attempt_at": (e.status == "pending").then(|| rfc3339(e.next_attempt_at)),
                    "last_error": e.last_error,
                    "created_at": rfc3339(e.created_at),
                    "article": e.alert.article,
                    "feed": e.alert.feed,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    if entries.is_empty() {
        println!("outbox empty: every alert has been delivered");
        return Ok(ExitCode::SUCCESS);
    }
    let count = |s: &str| entries.iter().filter(|e| status(e) == s).count();
    println!(
        "{} pending, {} failed (will retry), {} dead",
        count("pending"),
        count("failed"),
        count("dead")
    );
    for e in &entries {
        let when = match status(e) {
            "dead" => "gave up".to_string(),
            _ => format!(
                "next try {}",
                e.next_attempt_at.format("%Y-%m-%d %H:%M:%S UTC")
            ),
        };
        println!(
            "{:<7} {}  via {}  attempts {}  {when}\n        {}",
            status(e),
            e.delivery_id,
            e.notifier,
            e.attempts,
            notify::stdout::render(&e.alert)
        );
        if let Some(digest) = &e.digest_id {
            println!("        goes out in digest {digest}");
        }
        if let Some(error) = &e.last_error {
            println!("        last error: {error}");
        }
    }
    if count("dead") > 0 {
        println!("send the dead ones again with: feedwatch outbox retry");
    }
    Ok(ExitCode::SUCCESS)
}

/// Puts dead alerts back in the queue and makes one delivery attempt for everything due.
pub async fn retry(path: &Path) -> Result<ExitCode> {
    let config = Config::load(path)?;
    let db = Db::new(Store::open_existing(&config.database)?);
    let now = Utc::now();
    let revived = db.call(move |s| s.revive_dead(now)).await?;
    let stats = notify::deliver_due(
        &config,
        &db,
        &notify::http_client(),
        &CancellationToken::new(),
        now,
    )
    .await?;
    println!(
        "{revived} dead alert(s) queued again; delivered {}, failed again {} (will retry), dead {}",
        stats.delivered, stats.retrying, stats.dead
    );
    if stats.held > 0 {
        println!(
            "{} alert(s) wait for a digest window, quiet hours, a rate limit or a rule cooldown",
            stats.held
        );
    }
    Ok(if stats.retrying + stats.dead == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `failed` is a pending row that has already failed at least once.
fn status(e: &OutboxEntry) -> &'static str {
    match (e.status.as_str(), e.attempts) {
        ("dead", _) => "dead",
        (_, 0) => "pending",
        _ => "failed",
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

//! `feedwatch status`: is a daemon running on this config's database, when did it last poll,
//! what is due next, and how many alerts are waiting.
//!
//! The exit code makes it a health check for scripts and containers: 0 when a daemon runs and
//! keeps up, 1 when a feed is overdue by more than [`OVERDUE_AFTER`], 3 when no daemon runs
//! (the LSB code for a service that is not running).

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde_json::json;

use feedwatch::config::Config;
use feedwatch::service::running_instance;
use feedwatch::store::{Db, Store};

/// How late a due poll may start before `status` calls the daemon behind: a poll waits for a
/// free slot and for its host's limit, but not for minutes.
const OVERDUE_AFTER: chrono::Duration = chrono::Duration::minutes(5);

const BEHIND: u8 = 1;
const NOT_RUNNING: u8 = 3;

pub async fn status(path: &Path, as_json: bool) -> Result<ExitCode> {
    let config = Config::load(path)?;
    let running = running_instance(&config.database);
    let database_exists = config.database.exists();
    let (feeds, outbox) = if database_exists {
        let db = Db::new(Store::open(&config.database)?);
        (
            db.call(|s| s.feed_states()).await?,
            db.call(|s| s.outbox_counts()).await?,
        )
    } else {
        Default::default()
    };
    let configured: Vec<_> = feeds
        .iter()
        .filter(|f| config.feeds.iter().any(|c| c.url == f.url))
        .collect();
    let last_poll = configured.iter().filter_map(|f| f.last_attempt_at).max();
    let next_due = configured
        .iter()
        .filter_map(|f| f.next_poll_at.map(|at| (at, f.name.as_str())))
        .min();
    let failing = configured
        .iter()
        .filter(|f| f.consecutive_failures > 0)
        .count();
    let count = |status: &str| outbox.get(status).copied().unwrap_or(0);
    let now = Utc::now();
    let overdue: Vec<&str> = configured
        .iter()
        .filter(|f| f.next_poll_at.is_some_and(|at| now - at > OVERDUE_AFTER))
        .map(|f| f.name.as_str())
        .collect();
    let code = if running.is_none() {
        ExitCode::from(NOT_RUNNING)
    } else if !overdue.is_empty() {
        ExitCode::from(BEHIND)
    } else {
        ExitCode::SUCCESS
    };

    if as_json {
        let out = json!({
            "running": running.is_some(),
            "pid": running.flatten(),
            "database": config.database,
            "database_exists": database_exists,
            "feeds": config.feeds.len(),
            "failing_feeds": failing,
            "overdue_feeds": overdue,
            "last_poll": last_poll.map(rfc3339),
            "next_due": next_due.map(|(at, name)| json!({"feed": name, "at": rfc3339(at)})),
            "alerts": {"pending": count("pending"), "delivered": count("delivered"), "dead": count("dead")},
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(code);
    }
    match running {
        Some(Some(pid)) => println!("daemon:      running (pid {pid})"),
        Some(None) => println!("daemon:      running"),
        None => println!("daemon:      not running"),
    }
    if database_exists {
        println!("database:    {}", config.database.display());
    } else {
        println!(
            "database:    {} (none yet: no daemon has run with this config)",
            config.database.display()
        );
    }
    println!(
        "feeds:       {} configured, {failing} failing",
        config.feeds.len()
    );
    if !overdue.is_empty() {
        println!(
            "overdue:     {} (due more than {} minutes ago)",
            overdue.join(", "),
            OVERDUE_AFTER.num_minutes()
        );
    }
    println!(
        "last poll:   {}",
        last_poll.map_or("never".to_string(), human)
    );
    match next_due {
        Some((at, name)) => println!("next due:    {name} at {}", human(at)),
        None => println!("next due:    now (no poll recorded yet)"),
    }
    println!(
        "alerts:      {} pending, {} delivered, {} dead",
        count("pending"),
        count("delivered"),
        count("dead")
    );
    Ok(code)
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn human(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

//! `feedwatch status`: is a daemon running on this config's database, when did it last poll,
//! what is due next, and how many alerts are waiting.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde_json::json;

use feedwatch::config::Config;
use feedwatch::service::running_instance;
use feedwatch::store::{Db, Store};

pub async fn status(path: &Path, as_json: bool) -> Result<ExitCode> {
    let config = Config::load(path)?;
    let running = running_instance(&config.database);
    let (feeds, outbox) = if config.database.exists() {
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

    if as_json {
        let out = json!({
            "running": running.is_some(),
            "pid": running.flatten(),
            "database": config.database,
            "feeds": config.feeds.len(),
            "failing_feeds": failing,
            "last_poll": last_poll.map(rfc3339),
            "next_due": next_due.map(|(at, name)| json!({"feed": name, "at": rfc3339(at)})),
            "alerts": {"pending": count("pending"), "delivered": count("delivered"), "dead": count("dead")},
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    match running {
        Some(Some(pid)) => println!("daemon:      running (pid {pid})"),
        Some(None) => println!("daemon:      running"),
        None => println!("daemon:      not running"),
    }
    println!("database:    {}", config.database.display());
    println!(
        "feeds:       {} configured, {failing} failing",
        config.feeds.len()
    );
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
    Ok(ExitCode::SUCCESS)
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn human(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

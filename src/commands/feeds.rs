//! `feedwatch feeds`: each feed's health, from the fetch state stored by the poller.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::json;

use super::check::INVALID_CERTS_WARNING;
use feedwatch::config::Config;
use feedwatch::store::{FeedState, Store};

pub fn feeds(path: &Path, as_json: bool) -> Result<ExitCode> {
    let config = Config::load(path)?;
    let store = Store::open_existing(&config.database)?;
    // Rows of feeds dropped from the config stay in the store; show only the configured ones.
    let states: Vec<FeedState> = store
        .feed_states()?
        .into_iter()
        .filter(|s| config.feeds.iter().any(|f| f.url == s.url))
        .collect();
    let now = Utc::now();
    // Flags that come from the config rather than from polling.
    let config_flags = |url: &str| -> Vec<String> {
        let unchecked = config
            .feeds
            .iter()
            .any(|f| f.url == url && f.http.accept_invalid_certs);
        if unchecked {
            vec![format!("WARNING: {INVALID_CERTS_WARNING}")]
        } else {
            Vec::new()
        }
    };
    let unpolled: Vec<_> = config
        .feeds
        .iter()
        .filter(|f| !states.iter().any(|s| s.url == f.url))
        .collect();
    if as_json {
        let mut out: Vec<_> = states
            .iter()
            .map(|s| feed_json(s, now, config_flags(&s.url)))
            .collect();
        out.extend(unpolled.iter().map(|f| {
            let mut flags = vec!["never polled".to_string()];
            flags.extend(config_flags(&f.url));
            json!({"name": f.name, "url": f.url, "polled": false, "flags": flags})
        }));
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    for state in &states {
        print_feed(state, now, &config_flags(&state.url));
    }
    for feed in unpolled {
        println!("{}  [never polled]\n  url: {}", feed.name, feed.url);
        for flag in config_flags(&feed.url) {
            println!("  {flag}");
        }
        println!();
    }
    if config.feeds.is_empty() {
        println!("no feeds in {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Short words for what needs the user's attention.
fn flags(state: &FeedState, now: DateTime<Utc>) -> Vec<String> {
    let mut flags = Vec::new();
    if state.gone_at.is_some() {
        flags.push("GONE (410): no longer polled".to_string());
    }
    // A pause after a refused poll (429, 503) is news; one after a good poll (max-age, ttl)
    // is the feed working as it should, shown on its own line.
    if let Some(wait) = state
        .waiting_at(now)
        .filter(|_| !last_poll_succeeded(state))
    {
        flags.push(format!(
            "WAITING until {}: {}",
            time(Some(wait.until)),
            wait.reason
        ));
    }
    if state.consecutive_failures > 0 {
        flags.push(format!("FAILING ({} in a row)", state.consecutive_failures));
    }
    if let Some(to) = &state.moved_to {
        flags.push(format!("moved to {to}"));
    }
    if state.missed_items_at.is_some() {
        flags.push("missed items".to_string());
    }
    flags
}

/// Whether the last attempt was a success (a 304 is one).
fn last_poll_succeeded(state: &FeedState) -> bool {
    state.last_attempt_at.is_some() && state.last_success_at == state.last_attempt_at
}

fn time(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(
        || "never".into(),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

fn rfc3339(t: Option<DateTime<Utc>>) -> serde_json::Value {
    t.map_or(serde_json::Value::Null, |t| {
        json!(t.to_rfc3339_opts(SecondsFormat::Secs, true))
    })
}

fn print_feed(s: &FeedState, now: DateTime<Utc>, config_flags: &[String]) {
    let mut flags = flags(s, now);
    flags.extend_from_slice(config_flags);
    let marker = if flags.is_empty() {
        "ok".to_string()
    } else {
        flags.join("; ")
    };
    println!("{}  [{marker}]", s.name);
    println!("  url:            {}", s.url);
    if let Some(to) = &s.moved_to {
        println!("  moved to:       {to}  (permanent redirect; update `url` in the config)");
    }
    println!("  last attempt:   {}", time(s.last_attempt_at));
    println!("  last success:   {}", time(s.last_success_at));
    println!(
        "  HTTP status:    {}",
        s.last_status.map_or("-".into(), |c| c.to_string())
    );
    println!("  failures:       {} in a row", s.consecutive_failures);
    let next = if s.gone_at.is_some() {
        "never (gone)".to_string()
    } else {
        time(s.next_poll_at)
    };
    println!("  next poll:      {next}");
    if let Some(wait) = s.waiting_at(now) {
        println!(
            "  server wait:    until {} ({}); `run --once` skips the feed until then",
            time(Some(wait.until)),
            wait.reason
        );
    }
    if let Some(ttl) = s.ttl {
        println!(
            "  feed's ttl:     {}  (RSS <ttl>: not polled more often)",
            humantime::format_duration(ttl)
        );
    }
    println!(
        "  validators:     ETag {}, Last-Modified {}",
        yes_no(s.validators.etag.is_some()),
        yes_no(s.validators.last_modified.is_some())
    );
    println!("  articles:       {}", s.articles);
    if let Some(at) = s.missed_items_at {
        let suggestion = s
            .suggested_interval
            .map(|d| format!("; suggested interval {}", humantime::format_duration(d)))
            .unwrap_or_default();
        println!(
            "  missed items:   every item was new on {}{suggestion}",
            time(Some(at))
        );
    }
    if let Some(error) = &s.last_error {
        println!("  last error:     {error}");
    }
    println!();
}

fn yes_no(present: bool) -> &'static str {
    if present { "yes" } else { "no" }
}

fn feed_json(s: &FeedState, now: DateTime<Utc>, config_flags: Vec<String>) -> serde_json::Value {
    let wait = s.waiting_at(now);
    let mut flags = flags(s, now);
    flags.extend(config_flags);
    json!({
        "name": s.name,
        "url": s.url,
        "polled": true,
        "title": s.title,
        "moved_to": s.moved_to,
        "gone": s.gone_at.is_some(),
        "gone_at": rfc3339(s.gone_at),
        "last_attempt_at": rfc3339(s.last_attempt_at),
        "last_success_at": rfc3339(s.last_success_at),
        "last_status": s.last_status,
        "consecutive_failures": s.consecutive_failures,
        "next_poll_at": if s.gone_at.is_some() { serde_json::Value::Null } else { rfc3339(s.next_poll_at) },
        "etag": s.validators.etag.is_some(),
        "last_modified": s.validators.last_modified.is_some(),
        "articles": s.articles,
        "missed_items_at": rfc3339(s.missed_items_at),
        "suggested_interval_secs": s.suggested_interval.map(|d| d.as_secs()),
        "ttl_secs": s.ttl.map(|d| d.as_secs()),
        "last_error": s.last_error,
        "waiting_until": rfc3339(wait.map(|w| w.until)),
        "wait_reason": wait.map(|w| w.reason.as_str()),
        "flags": flags,
    })
}

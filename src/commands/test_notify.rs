//! `feedwatch test-notify NAME`: one sample alert through one notifier, and what happened.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, bail};
use chrono::Utc;

use feedwatch::config::Config;
use feedwatch::notify;

pub async fn test_notify(path: &Path, name: &str) -> Result<ExitCode> {
    let config = Config::load(path)?;
    if config.notifier(name).is_none() {
        let known: Vec<&str> = config.notifiers.iter().map(|n| n.name.as_str()).collect();
        bail!(
            "no notifier named `{name}` in {} (known: {})",
            path.display(),
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        );
    }
    let now = Utc::now();
    let alert = notify::test_alert(now);
    // A fresh id per test, so a receiver that drops repeats still shows each test.
    let delivery_id = format!("test-{}", now.timestamp_millis());
    match notify::send(&config, &notify::http_client(), name, &alert, &delivery_id).await {
        Ok(()) => {
            println!("notifier `{name}`: test alert sent (delivery id {delivery_id})");
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            println!("notifier `{name}`: test alert failed: {err}");
            Ok(ExitCode::from(1))
        }
    }
}

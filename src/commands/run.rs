//! `feedwatch run --once`: one cycle, a progress bar on a terminal, and a summary line.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;

use feedwatch::daemon;
use feedwatch::pipeline::Pipeline;

pub async fn run_once(pipeline: Arc<Pipeline>) -> Result<ExitCode> {
    let bar = super::output::progress_bar(
        pipeline.config.feeds.len(),
        "{bar:30} {pos}/{len} feeds polled, last: {msg}",
    );
    let report = daemon::run_once(pipeline, |feed| {
        bar.set_message(feed.feed.clone());
        bar.inc(1);
    })
    .await?;
    bar.finish_and_clear();
    for skipped in &report.waiting {
        tracing::info!(
            feed = %skipped.feed,
            "not polled: the server asked for a pause until {} ({})",
            skipped.wait.until.format("%Y-%m-%d %H:%M:%S UTC"),
            skipped.wait.reason
        );
    }
    let failed = report.feeds.iter().filter(|f| f.result.is_err()).count();
    let (new, alerts) = report
        .feeds
        .iter()
        .filter_map(|f| f.result.as_ref().ok())
        .fold((0, 0), |(n, a), s| (n + s.new_articles, a + s.new_alerts));
    let d = report.deliveries;
    tracing::info!(
        "cycle done: {} feeds ({failed} failed, {} waiting for their server), {new} new \
         articles, {alerts} new alerts; delivered {}, held {}, retrying {}, dead {}",
        report.feeds.len() + report.waiting.len(),
        report.waiting.len(),
        d.delivered,
        d.held,
        d.retrying,
        d.dead
    );
    Ok(ExitCode::SUCCESS)
}

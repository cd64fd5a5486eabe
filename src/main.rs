//! The `feedwatch` command: parses arguments, loads the config and calls into the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use feedwatch::config::{self, Config, ConfigError, NotifierKind};
use feedwatch::daemon::{self, Pipeline};
use feedwatch::dedup::identify;
use feedwatch::fetch::{Fetched, Fetcher, Validators};
use feedwatch::matcher::{Engine, Query, RuleSpec};
use feedwatch::store::Store;

/// Watches RSS, Atom and JSON feeds for the stories you care about and alerts you once per story.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// The config file [default: $XDG_CONFIG_HOME/feedwatch/config.toml]
    #[arg(long, short, global = true, env = "FEEDWATCH_CONFIG")]
    config: Option<PathBuf>,

    /// Log level: error, warn, info, debug or trace (RUST_LOG overrides it)
    #[arg(long, global = true, default_value = "info")]
    log_level: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Poll the feeds on their schedules and send alerts, until stopped
    ///
    /// Example: feedwatch --config config.toml run --once
    Run {
        /// Poll every feed once, deliver pending alerts, and exit
        #[arg(long)]
        once: bool,
    },
    /// Validate the config and show what was understood
    Check,
    /// Fetch or read one feed and show its entries and the rules they match; writes nothing
    ///
    /// Example: feedwatch preview https://example.org/feed.xml --query 'Ukraine AND NOT sport'
    Preview {
        /// A feed URL or a file path
        feed: String,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
        /// Try this query instead of the config's rules
        #[arg(long)]
        query: Option<String>,
    },
    /// List stored matches, newest first
    Matches {
        #[arg(long)]
        json: bool,
        /// How many to show
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let quiet = !matches!(cli.command, Command::Run { .. });
    init_logging(&cli.log_level, quiet);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("feedwatch: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(err) => {
            let usage = err.downcast_ref::<ConfigError>().is_some();
            eprintln!("feedwatch: {err:#}");
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}

fn init_logging(level: &str, quiet: bool) {
    use tracing_subscriber::EnvFilter;
    let default = if quiet { "warn" } else { level };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("warn,feedwatch={default}")));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

fn config_path(cli: &Option<PathBuf>) -> PathBuf {
    if let Some(path) = cli {
        return path.clone();
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("feedwatch").join("config.toml")
}

async fn dispatch(cli: Cli) -> Result<ExitCode> {
    let path = config_path(&cli.config);
    match cli.command {
        Command::Run { once } => {
            let config = Config::load(&path)?;
            let pipeline = Arc::new(Pipeline::open(config)?);
            if once {
                run_once(pipeline).await
            } else {
                let shutdown = CancellationToken::new();
                tokio::spawn(stop_on_signal(shutdown.clone()));
                daemon::run(pipeline, shutdown).await?;
                Ok(ExitCode::SUCCESS)
            }
        }
        Command::Check => check(&path),
        Command::Preview { feed, json, query } => preview(&path, &feed, json, query).await,
        Command::Matches { json, limit } => matches(&path, json, limit),
    }
}

async fn stop_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    shutdown.cancel();
}

async fn run_once(pipeline: Arc<Pipeline>) -> Result<ExitCode> {
    let report = daemon::run_once(pipeline).await?;
    let failed = report.feeds.iter().filter(|f| f.result.is_err()).count();
    let (new, alerts) = report
        .feeds
        .iter()
        .filter_map(|f| f.result.as_ref().ok())
        .fold((0, 0), |(n, a), s| (n + s.new_articles, a + s.new_alerts));
    let d = report.deliveries;
    tracing::info!(
        "cycle done: {} feeds ({failed} failed), {new} new articles, {alerts} new alerts; \
         delivered {}, retrying {}, dead {}",
        report.feeds.len(),
        d.delivered,
        d.retrying,
        d.dead
    );
    Ok(ExitCode::SUCCESS)
}

fn check(path: &Path) -> Result<ExitCode> {
    let config = Config::load(path)?;
    println!("{}: OK", path.display());
    println!("database: {}", config.database.display());
    println!("{} feed(s):", config.feeds.len());
    for feed in &config.feeds {
        println!("  {}  {}  ({})", feed.name, feed.url, feed.schedule);
    }
    println!("{} rule(s):", config.rules.len());
    for rule in &config.rules {
        let terms: Vec<&str> = rule
            .query
            .terms()
            .iter()
            .map(|t| t.source.as_str())
            .collect();
        println!(
            "  {}  terms: {}  -> {}",
            rule.name,
            terms.join(", "),
            if rule.notify.is_empty() {
                "(stored only)".to_string()
            } else {
                rule.notify.join(", ")
            }
        );
    }
    println!("{} notifier(s):", config.notifiers.len());
    for n in &config.notifiers {
        let what = match &n.kind {
            NotifierKind::Stdout => "stdout".to_string(),
            NotifierKind::Desktop => "desktop".to_string(),
            NotifierKind::Webhook { url, format, .. } => format!(
                "webhook ({format:?}) {}",
                feedwatch::notify::webhook::redact(url)
            ),
        };
        println!("  {}  {what}", n.name);
    }
    Ok(ExitCode::SUCCESS)
}

async fn preview(
    path: &Path,
    feed: &str,
    as_json: bool,
    query: Option<String>,
) -> Result<ExitCode> {
    // Preview works without a config file; a config that exists but is wrong is still an error.
    let config = if path.exists() {
        Config::load(path)?
    } else {
        Config::empty(path)
    };
    let cwd = std::env::current_dir().context("cannot read the current folder")?;
    let url = config::feed_url(feed, &cwd).map_err(|e| anyhow::anyhow!(e))?;
    let query = query
        .map(|q| Query::parse(&q).map_err(|e| anyhow::anyhow!("--query: {}", e.render(&q))))
        .transpose()?;
    let engine = match &query {
        Some(q) => Engine::new([RuleSpec {
            name: "query",
            query: q,
            feeds: &[],
        }]),
        None => daemon::engine_for(&config),
    };
    let fetched = Fetcher::new(std::time::Duration::from_secs(30))
        .fetch(&url, &Validators::default(), config::DEFAULT_MAX_BODY)
        .await?;
    let Fetched::Body(body) = fetched else {
        anyhow::bail!("{url}: the server answered 304 Not Modified to an unconditional request");
    };
    let parsed = feedwatch::parse::parse(
        &body.bytes,
        body.content_type.as_deref(),
        Some(&body.final_url),
    )
    .with_context(|| url.clone())?;

    let feed_name = config
        .feeds
        .iter()
        .find(|f| f.url == url)
        .map_or("", |f| f.name.as_str());
    let entries: Vec<_> = parsed
        .articles
        .iter()
        .map(|a| (a, identify(a), engine.matches(a, feed_name)))
        .collect();
    if as_json {
        let out = json!({
            "feed": {"title": parsed.title, "link": parsed.link},
            "entries": entries.iter().map(|(a, identity, matched)| json!({
                "id": a.guid.clone().unwrap_or_else(|| identity.id.clone()),
                "title": a.title,
                "link": a.link,
                "published": a.published.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                "summary": if a.summary.is_empty() { &a.content } else { &a.summary },
                "matched_rules": matched.iter().map(|m| json!({"rule": m.name, "terms": m.terms})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} — {} entries",
        if parsed.title.is_empty() {
            &url
        } else {
            &parsed.title
        },
        entries.len()
    );
    for (a, _, matched) in &entries {
        let date = a
            .published
            .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_else(|| "                ".into());
        println!(
            "\n{date}  {}",
            if a.title.is_empty() {
                "(untitled)"
            } else {
                &a.title
            }
        );
        if let Some(link) = &a.link {
            println!("                  {link}");
        }
        for m in matched {
            println!("                  ✓ {}: {}", m.name, m.terms.join(", "));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn matches(path: &Path, as_json: bool, limit: usize) -> Result<ExitCode> {
    let config = Config::load(path)?;
    let store = Store::open(&config.database)?;
    let found = store.matches(limit)?;
    if as_json {
        let out: Vec<_> = found
            .iter()
            .map(|m| {
                json!({
                    "rule": m.alert.rule,
                    "matched": m.alert.matched,
                    "feed": m.alert.feed,
                    "article": m.alert.article,
                    "created_at": m.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    if found.is_empty() {
        println!("no matches yet");
    }
    for m in &found {
        println!(
            "{}  {}",
            m.created_at.format("%Y-%m-%d %H:%M"),
            feedwatch::notify::stdout::render(&m.alert)
        );
    }
    Ok(ExitCode::SUCCESS)
}

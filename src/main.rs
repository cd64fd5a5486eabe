//! The `feedwatch` command: parses arguments, loads the config and calls into the library.
//! Each subcommand's printing lives in `commands/`.

mod commands;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use feedwatch::config::{Config, ConfigError};
use feedwatch::daemon::{self, Pipeline};

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
    /// Run a rule or a query over the stored articles and show how often it would have fired
    ///
    /// Example: feedwatch --config config.toml backtest ukraine --since 30d
    #[command(group = clap::ArgGroup::new("subject").required(true).args(["rule", "query"]))]
    Backtest {
        /// The name of a rule in the config
        rule: Option<String>,
        /// A query to try instead of a rule
        #[arg(long)]
        query: Option<String>,
        /// How far back to look, e.g. 30d, 12h, 2weeks
        #[arg(long, default_value = "30d", value_parser = humantime::parse_duration)]
        since: std::time::Duration,
        /// How many matching articles to show
        #[arg(long, default_value_t = 10)]
        sample: usize,
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
                commands::run::run_once(pipeline).await
            } else {
                let shutdown = CancellationToken::new();
                tokio::spawn(stop_on_signal(shutdown.clone()));
                daemon::run(pipeline, shutdown).await?;
                Ok(ExitCode::SUCCESS)
            }
        }
        Command::Check => commands::check::check(&path),
        Command::Preview { feed, json, query } => {
            commands::preview::preview(&path, &feed, json, query).await
        }
        Command::Backtest {
            rule,
            query,
            since,
            sample,
        } => {
            use commands::backtest::{Subject, backtest};
            let subject = match (rule, query) {
                (_, Some(query)) => Subject::Query(query),
                (Some(rule), None) => Subject::Rule(rule),
                (None, None) => anyhow::bail!("name a rule or give --query"),
            };
            backtest(&path, subject, since, sample)
        }
        Command::Matches { json, limit } => commands::matches::matches(&path, json, limit),
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

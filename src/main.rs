//! The `feedwatch` command: parses arguments, loads the config and calls into the library.
//! Each subcommand's printing lives in `commands/`.

#![deny(unsafe_code)]

mod commands;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use chrono::{DateTime, Utc};
use clap::{CommandFactory, Parser, Subcommand};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use feedwatch::config::{self, Config, ConfigError};
use feedwatch::daemon;
use feedwatch::pipeline::Pipeline;
use feedwatch::service::{self, InstanceLock};
use feedwatch::store::MatchFilter;

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

    /// Log format: human-readable text, or one JSON object per line for log shippers
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
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
    ///
    /// Example: feedwatch --config config.toml check
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
    /// Is the daemon running; last poll, next due feed, pending alerts
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Show each feed's health: last attempt and success, HTTP status, failures, next poll,
    /// validators, articles stored, last error, and whether it moved, is gone or missed items
    Feeds {
        #[arg(long)]
        json: bool,
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
    ///
    /// Example: feedwatch matches --rule ukraine --since 1d --format csv > today.csv
    Matches {
        /// Print JSON (same as --format json)
        #[arg(long, conflicts_with = "format")]
        json: bool,
        /// Output format
        #[arg(long, value_enum, default_value = "table")]
        format: commands::matches::Format,
        /// Only this rule's matches
        #[arg(long)]
        rule: Option<String>,
        /// Only matches made since then: a span back from now (1d, 12h) or a date (2026-11-01)
        #[arg(long, value_parser = commands::output::parse_since)]
        since: Option<DateTime<Utc>>,
        /// How many to show
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// List the articles of one story (the same news from several feeds), first seen first
    ///
    /// Example: feedwatch story 4711 (the id is an alert's `story.id`)
    Story {
        /// The story's id
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Show alerts not yet delivered (pending, failed, dead) with their last error
    ///
    /// Example: feedwatch outbox --json; feedwatch outbox retry
    Outbox {
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        action: Option<OutboxAction>,
    },
    /// Send a sample alert through one notifier and say what happened
    ///
    /// Example: feedwatch test-notify slack
    TestNotify {
        /// The notifier's name in the config
        name: String,
    },
    /// Full-text search over every stored article, best match first
    ///
    /// QUERY uses the rule syntax: words, "phrases", prefix*, AND, OR, NOT, and the fields
    /// title: summary: content:. Regexes and link: author: category: are not indexed.
    ///
    /// Example: feedwatch search 'grain deal' --since 7d --feed World --limit 10
    Search {
        /// What to look for, in the rule syntax
        query: String,
        /// Only articles published since then: a span (7d, 12h) or a date (2026-11-01)
        #[arg(long, value_parser = commands::output::parse_since)]
        since: Option<DateTime<Utc>>,
        /// Only articles from this feed (its name in the config)
        #[arg(long)]
        feed: Option<String>,
        /// How many to show
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Add, remove or list the feeds in the config file (comments and layout are kept)
    ///
    /// Example: feedwatch feed add https://example.org/ --interval 30m
    Feed {
        #[command(subcommand)]
        action: FeedAction,
    },
    /// Add the feeds of an OPML file to the config, checking each new one first
    ///
    /// Feeds already in the config are skipped; folders and categories become tags.
    ///
    /// Example: feedwatch import-opml subscriptions.opml
    ImportOpml {
        /// The OPML 1.0 or 2.0 file
        file: PathBuf,
        /// Add feeds that could not be fetched as well
        #[arg(long)]
        keep_unreachable: bool,
        /// Also take outlines that are not http(s): local files and paths
        #[arg(long)]
        allow_local: bool,
        /// Print the summary as JSON
        #[arg(long)]
        json: bool,
    },
    /// Write the config's feeds as OPML 2.0 (to standard output without FILE)
    ///
    /// Example: feedwatch export-opml subscriptions.opml
    ExportOpml {
        /// Where to write; standard output if absent
        file: Option<PathBuf>,
    },
    /// Print a shell completion script
    ///
    /// Example: feedwatch completions bash > ~/.local/share/bash-completion/completions/feedwatch
    Completions {
        /// bash, zsh, fish, elvish or powershell
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff)
    ///
    /// Example: feedwatch man > ~/.local/share/man/man1/feedwatch.1
    Man,
}

#[derive(Subcommand)]
enum OutboxAction {
    /// Send dead alerts again (and anything else that is due)
    Retry,
}

#[derive(Subcommand)]
enum FeedAction {
    /// Check a feed and add it; given a web page, add the feed it links to
    ///
    /// Example: feedwatch feed add https://example.org/feed.xml --name Example --interval 30m
    Add {
        /// The feed's URL, a web page that links to it, or a file path
        url: String,
        /// The name rules and reports use [default: the feed's title]
        #[arg(long)]
        name: Option<String>,
        /// How often to poll it, e.g. 30m [default: the config's default]
        #[arg(long)]
        interval: Option<String>,
        /// A tag for the feed (repeat for several)
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// Follow a page's feed link even when it is not http(s) (a local file)
        #[arg(long)]
        allow_local: bool,
    },
    /// Remove a feed by name or URL; its stored articles are kept
    ///
    /// Example: feedwatch feed remove Example
    Remove {
        /// The feed's name or URL
        feed: String,
    },
    /// List the feeds in the config
    ///
    /// Example: feedwatch feed list --json
    List {
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    service::memory::configure_glibc();
    let cli = Cli::parse();
    let daemon = matches!(cli.command, Command::Run { .. });
    if !daemon {
        end_quietly_on_broken_pipe();
    }
    let journal = service::journal::stderr_is_journal();
    init_logging(&cli.log_level, cli.log_format, !daemon, journal);
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
            let usage = err.downcast_ref::<ConfigError>().is_some()
                || err.downcast_ref::<commands::output::UsageError>().is_some();
            let message = format!("feedwatch: {err:#}");
            if journal {
                // Every line at priority err: a config error spans several.
                for line in message.lines() {
                    eprintln!("<3>{line}");
                }
            } else {
                eprintln!("{message}");
            }
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}

/// A listing piped into `head` ends when the reader goes, as other Unix tools do, instead of
/// panicking on the next write: Rust ignores SIGPIPE unless told otherwise. The daemon keeps
/// ignoring it, so a closed socket is an error it handles, never its end.
fn end_quietly_on_broken_pipe() {
    // SAFETY: restoring the default action of one signal before any thread starts.
    #[allow(unsafe_code)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn init_logging(level: &str, format: LogFormat, quiet: bool, journal: bool) {
    use tracing_subscriber::EnvFilter;
    let default = if quiet { "warn" } else { level };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("warn,feedwatch={default}")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    match format {
        LogFormat::Json => builder.json().init(),
        // journald adds its own timestamps and reads each line's priority from its prefix; a
        // terminal gets timestamps and colours.
        LogFormat::Text if journal => {
            let format = tracing_subscriber::fmt::format()
                .without_time()
                .with_ansi(false)
                .with_target(false);
            builder
                .with_ansi(false)
                .event_format(service::journal::PriorityPrefix(format))
                .init()
        }
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
}

async fn dispatch(cli: Cli) -> Result<ExitCode> {
    let path = cli
        .config
        .clone()
        .unwrap_or_else(config::default_config_path);
    match cli.command {
        Command::Run { once } => {
            let config = Config::load(&path)?;
            // Two instances on one database would send every alert twice.
            let _lock = InstanceLock::acquire(&config.database)?;
            let pipeline = Arc::new(Pipeline::open(config)?);
            if once {
                commands::run::run_once(pipeline).await
            } else {
                let shutdown = CancellationToken::new();
                let reload = Arc::new(Notify::new());
                tokio::spawn(stop_on_signal(shutdown.clone()));
                tokio::spawn(reload_on_sighup(Arc::clone(&reload)));
                daemon::run(pipeline, shutdown, reload).await?;
                Ok(ExitCode::SUCCESS)
            }
        }
        Command::Check => commands::check::check(&path),
        Command::Preview { feed, json, query } => {
            commands::preview::preview(&path, &feed, json, query).await
        }
        Command::Status { json } => commands::status::status(&path, json).await,
        Command::Feeds { json } => commands::feeds::feeds(&path, json),
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
        Command::Outbox { json, action } => match action {
            None => commands::outbox::show(&path, json),
            Some(OutboxAction::Retry) => commands::outbox::retry(&path).await,
        },
        Command::TestNotify { name } => commands::test_notify::test_notify(&path, &name).await,
        Command::Matches {
            json,
            format,
            rule,
            since,
            limit,
        } => {
            let format = if json {
                commands::matches::Format::Json
            } else {
                format
            };
            let filter = MatchFilter { rule, since, limit };
            commands::matches::matches(&path, filter, format)
        }
        Command::Story { id, json } => commands::story::story(&path, id, json),
        Command::Search {
            query,
            since,
            feed,
            limit,
            json,
        } => commands::search::search(
            &path,
            commands::search::SearchArgs {
                query,
                since,
                feed,
                limit,
                json,
            },
        ),
        Command::Feed { action } => match action {
            FeedAction::Add {
                url,
                name,
                interval,
                tags,
                allow_local,
            } => {
                let args = commands::feed::AddArgs {
                    url,
                    name,
                    interval,
                    tags,
                    allow_local,
                };
                commands::feed::add(&path, args).await
            }
            FeedAction::Remove { feed } => commands::feed::remove(&path, &feed),
            FeedAction::List { json } => commands::feed::list(&path, json),
        },
        Command::ImportOpml {
            file,
            keep_unreachable,
            allow_local,
            json,
        } => {
            let args = commands::opml::ImportArgs {
                keep_unreachable,
                allow_local,
                as_json: json,
            };
            commands::opml::import(&path, &file, args).await
        }
        Command::ExportOpml { file } => commands::opml::export(&path, file.as_deref()),
        Command::Completions { shell } => commands::completions::completions(Cli::command(), shell),
        Command::Man => commands::completions::man(Cli::command()),
    }
}

/// SIGHUP re-reads the config, as daemons traditionally do. The handler is in place once this
/// returns, before the daemon says it is ready: until then SIGHUP would end the process.
fn reload_on_sighup(reload: Arc<Notify>) -> impl Future<Output = ()> {
    #[cfg(unix)]
    let hangup = {
        use tokio::signal::unix::{SignalKind, signal};
        signal(SignalKind::hangup()).ok()
    };
    async move {
        #[cfg(unix)]
        if let Some(mut hangup) = hangup {
            while hangup.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading the config");
                reload.notify_one();
            }
        }
        #[cfg(not(unix))]
        let _ = reload;
    }
}

/// SIGTERM or Ctrl-C stops the daemon. SIGTERM's handler is in place once this returns, so that
/// a stop asked for right after start still goes through the orderly shutdown.
fn stop_on_signal(shutdown: CancellationToken) -> impl Future<Output = ()> {
    #[cfg(unix)]
    let term = {
        use tokio::signal::unix::{SignalKind, signal};
        signal(SignalKind::terminate()).ok()
    };
    async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        match term {
            Some(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            None => {
                let _ = ctrl_c.await;
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        shutdown.cancel();
    }
}

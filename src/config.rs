//! `config.toml` -> a validated [`Config`].
//!
//! Parsing happens in two steps: serde reads the raw TOML (unknown keys are errors, so typos
//! are caught), then [`validate`] checks what serde cannot — schedules, queries, notifier
//! names — and collects *every* problem with its line and column before giving up, so one
//! `feedwatch check` shows all that is wrong.

use std::collections::HashSet;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::matcher::{Accents, Query};
use crate::scheduler::Schedule;

/// Polls closer together than this are refused: they help nobody and annoy feed hosts.
pub const MIN_INTERVAL: Duration = Duration::from_secs(10);
const DEFAULT_INTERVAL: Duration = Duration::from_secs(15 * 60);
/// Default cap on a feed's decompressed body.
pub const DEFAULT_MAX_BODY: u64 = 10 * 1024 * 1024;
/// Articles gone from their feed for this long are pruned (their alert record stays).
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(90 * 24 * 60 * 60);
const MIN_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);
/// Default limit on one whole fetch.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(30);

/// Everything feedwatch needs to run, checked and resolved.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the config came from; relative paths in it are relative to its folder.
    pub path: PathBuf,
    pub database: PathBuf,
    /// How long an article is kept after it last appeared in its feed.
    pub retention: Duration,
    pub feeds: Vec<Feed>,
    pub rules: Vec<Rule>,
    pub notifiers: Vec<Notifier>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Feed {
    pub name: String,
    /// An `http(s)://` or `file://` URL; bare paths in the file are turned into `file://`.
    pub url: String,
    pub schedule: Schedule,
    pub max_body_bytes: u64,
    /// The whole fetch, redirects and body included.
    pub timeout: Duration,
    /// Shorten the interval by itself when a poll finds only new items.
    pub adaptive: bool,
    /// Free-form labels, e.g. the OPML category the feed was imported from.
    pub tags: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub query: Query,
    /// Names of the notifiers this rule alerts through.
    pub notify: Vec<String>,
    /// Only articles from these feeds (by name; tags in the file are expanded to the feeds that
    /// carry them); empty means every feed.
    pub feeds: Vec<String>,
    /// How insistent this rule's desktop notifications are.
    pub urgency: Urgency,
    /// After an alert of this rule goes out through a notifier, newer ones wait this long and
    /// then go out together.
    pub cooldown: Option<Duration>,
}

/// Desktop notification urgency, as the freedesktop spec defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Urgency {
    Low,
    #[default]
    Normal,
    Critical,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Notifier {
    pub name: String,
    pub kind: NotifierKind,
    pub retry: RetryPolicy,
    /// A daily window in which this notifier sends nothing (alerts wait for its end, then go
    /// out as one digest).
    pub quiet: Option<QuietHours>,
    /// `digest = "1h"`: alerts collect for this long after the first one, then go out as one
    /// message.
    pub digest: Option<Duration>,
    /// `rate_limit = "5/min"`: at most this many single alerts per window; the rest of the
    /// window's alerts go out as one digest when it ends.
    pub rate_limit: Option<RateLimit>,
}

/// At most `count` single alerts per `per`, in windows aligned to multiples of `per` since the
/// Unix epoch (so "5/min" windows start on the minute, "10/hour" on the UTC hour).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub count: u32,
    pub per: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QuietHours {
    pub start: chrono::NaiveTime,
    pub end: chrono::NaiveTime,
    pub zone: QuietZone,
}

/// The time zone quiet hours are read in: the machine's, or a named IANA zone.
#[derive(Debug, Clone, PartialEq)]
pub enum QuietZone {
    Local,
    Named(chrono_tz::Tz),
}

/// How a notifier's failed deliveries are retried: exponential backoff from `first_delay`,
/// capped at `max_delay`, until the alert is `give_up_after` old.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub first_delay: Duration,
    pub max_delay: Duration,
    pub give_up_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            first_delay: Duration::from_secs(30),
            max_delay: Duration::from_secs(60 * 60),
            give_up_after: Duration::from_secs(3 * 24 * 60 * 60),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum NotifierKind {
    /// One readable line per alert on standard output.
    Stdout,
    /// A desktop notification through the session bus.
    Desktop(Desktop),
    /// An HTTP request carrying the alert in one of several body formats.
    Webhook(Webhook),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Desktop {
    /// The program that opens an alert's link when the notification is clicked (its default
    /// action), given the link as its one argument.
    pub open_with: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    pub url: String,
    pub format: WebhookFormat,
    pub timeout: Duration,
    /// Signs each request (HMAC-SHA256 of timestamp and body) when set.
    pub secret: Option<String>,
    /// `POST` unless set (Matrix: `PUT`).
    pub method: String,
    /// Extra request headers, e.g. `Authorization`.
    pub headers: Vec<(String, String)>,
    /// The minijinja body for `format = "template"`.
    pub template: Option<String>,
    /// Content type of a template body.
    pub content_type: String,
    /// The chat a Telegram bot writes to.
    pub chat_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// feedwatch's own versioned JSON payload.
    Json,
    Slack,
    Discord,
    /// ntfy.sh (or a self-hosted ntfy): plain-text body, title and click link in headers.
    Ntfy,
    Mattermost,
    /// Microsoft Teams (Workflows / incoming webhook): an Adaptive Card.
    Teams,
    /// Gotify's `/message` endpoint (put the app token in the URL or a header).
    Gotify,
    /// Telegram Bot API `sendMessage` (needs `chat_id`).
    Telegram,
    /// Matrix client-server API: `PUT …/rooms/ROOM/send/m.room.message`, the delivery id as
    /// the transaction id, so the homeserver itself drops repeats.
    Matrix,
    /// The user's own body from `template`.
    Template,
}

/// A configuration that cannot be used, with every problem found.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("{}", render_problems(path, problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

/// One semantic error in the config, located in the file.
#[derive(Debug, Clone)]
pub struct Problem {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

fn render_problems(path: &Path, problems: &[Problem]) -> String {
    let lines: Vec<String> = problems
        .iter()
        .map(|p| format!("{}:{}:{}: {}", path.display(), p.line, p.column, p.message))
        .collect();
    lines.join("\n")
}

// ---- the raw file, as serde sees it ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    database: Option<Spanned<String>>,
    retention: Option<Spanned<String>>,
    #[serde(default)]
    defaults: RawDefaults,
    #[serde(default, rename = "feed")]
    feeds: Vec<RawFeed>,
    #[serde(default, rename = "rule")]
    rules: Vec<RawRule>,
    #[serde(default, rename = "notifier")]
    notifiers: Vec<RawNotifier>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    interval: Option<Spanned<String>>,
    cron: Option<Spanned<String>>,
    timezone: Option<Spanned<String>>,
    max_body: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    adaptive: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFeed {
    url: Spanned<String>,
    name: Option<Spanned<String>>,
    interval: Option<Spanned<String>>,
    cron: Option<Spanned<String>>,
    timezone: Option<Spanned<String>>,
    max_body: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    adaptive: Option<bool>,
    #[serde(default)]
    tags: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: Spanned<String>,
    query: Spanned<String>,
    #[serde(default)]
    notify: Vec<Spanned<String>>,
    #[serde(default)]
    feeds: Vec<Spanned<String>>,
    /// `"ignore"` (the default: `cafe` matches `café`) or `"exact"`.
    accents: Option<Spanned<String>>,
    #[serde(default)]
    urgency: Urgency,
    cooldown: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotifier {
    name: Spanned<String>,
    kind: Spanned<String>,
    url: Option<Spanned<String>>,
    format: Option<Spanned<WebhookFormat>>,
    timeout: Option<Spanned<String>>,
    secret: Option<Spanned<String>>,
    method: Option<Spanned<String>>,
    headers: Option<Spanned<std::collections::BTreeMap<String, String>>>,
    template: Option<Spanned<String>>,
    content_type: Option<Spanned<String>>,
    chat_id: Option<Spanned<String>>,
    retry_delay: Option<Spanned<String>>,
    retry_max_delay: Option<Spanned<String>>,
    give_up_after: Option<Spanned<String>>,
    quiet: Option<Spanned<String>>,
    quiet_timezone: Option<Spanned<String>>,
    digest: Option<Spanned<String>>,
    rate_limit: Option<Spanned<String>>,
    open_with: Option<Spanned<String>>,
}

impl Config {
    /// Reads and validates the config file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Validates `text` as if it had been read from `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        validate(raw, text, path)
    }

    /// An empty config (no feeds, no rules), for `preview` without a config file.
    pub fn empty(path: &Path) -> Config {
        Config {
            path: path.to_path_buf(),
            database: default_database(path),
            retention: DEFAULT_RETENTION,
            feeds: Vec::new(),
            rules: Vec::new(),
            notifiers: Vec::new(),
        }
    }

    pub fn notifier(&self, name: &str) -> Option<&Notifier> {
        self.notifiers.iter().find(|n| n.name == name)
    }
}

/// Where the config lives when `--config` is not given: `$XDG_CONFIG_HOME/feedwatch/config.toml`.
pub fn default_config_path() -> PathBuf {
    xdg_home("XDG_CONFIG_HOME", ".config")
        .join("feedwatch")
        .join("config.toml")
}

/// The database when the config names none: systemd's `StateDirectory` for a system service,
/// `$XDG_DATA_HOME/feedwatch/` for a config in the XDG config folder, else beside the config.
fn default_database(config_path: &Path) -> PathBuf {
    if let Some(state) = std::env::var_os("STATE_DIRECTORY") {
        // systemd may list several folders separated by colons; the first is ours.
        let first = state
            .to_string_lossy()
            .split(':')
            .next()
            .unwrap_or("")
            .to_string();
        if !first.is_empty() {
            return PathBuf::from(first).join("feedwatch.db");
        }
    }
    if config_path.starts_with(xdg_home("XDG_CONFIG_HOME", ".config").join("feedwatch")) {
        return xdg_home("XDG_DATA_HOME", ".local/share")
            .join("feedwatch")
            .join("feedwatch.db");
    }
    base_dir(config_path).join("feedwatch.db")
}

/// An XDG base folder: the variable if it holds an absolute path, else `$HOME/<fallback>`.
fn xdg_home(variable: &str, fallback: &str) -> PathBuf {
    std::env::var_os(variable)
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(fallback)))
        .unwrap_or_else(|| PathBuf::from("."))
}

fn base_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Collects problems with their position in the source text.
struct Problems<'a> {
    text: &'a str,
    found: Vec<Problem>,
}

impl Problems<'_> {
    fn add(&mut self, span: Range<usize>, message: impl fmt::Display) {
        let (line, column) = line_column(self.text, span.start);
        self.found.push(Problem {
            line,
            column,
            message: message.to_string(),
        });
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

fn validate(raw: RawConfig, text: &str, path: &Path) -> Result<Config, ConfigError> {
    let base = base_dir(path);
    let mut problems = Problems {
        text,
        found: Vec::new(),
    };

    let database = match &raw.database {
        Some(db) => base.join(db.get_ref()),
        None => default_database(path),
    };

    let retention = match &raw.retention {
        None => DEFAULT_RETENTION,
        Some(r) => match humantime::parse_duration(r.get_ref()) {
            Ok(d) if d >= MIN_RETENTION => d,
            Ok(_) => {
                problems.add(r.span(), "retention must be at least \"1d\"");
                DEFAULT_RETENTION
            }
            Err(e) => {
                problems.add(
                    r.span(),
                    format!(
                        "invalid retention `{}`: {e} (example: \"90d\")",
                        r.get_ref()
                    ),
                );
                DEFAULT_RETENTION
            }
        },
    };

    let default_schedule = schedule(
        raw.defaults.interval.as_ref(),
        raw.defaults.cron.as_ref(),
        raw.defaults.timezone.as_ref(),
        None,
        &mut problems,
    )
    .unwrap_or(Schedule::Interval(DEFAULT_INTERVAL));
    let default_max_body = raw
        .defaults
        .max_body
        .as_ref()
        .and_then(|s| byte_size(s, &mut problems))
        .unwrap_or(DEFAULT_MAX_BODY);
    let default_timeout = raw
        .defaults
        .timeout
        .as_ref()
        .and_then(|t| fetch_timeout(t, &mut problems))
        .unwrap_or(DEFAULT_FETCH_TIMEOUT);
    let default_adaptive = raw.defaults.adaptive.unwrap_or(false);

    let mut feeds = Vec::new();
    let mut feed_names = HashSet::new();
    let mut feed_urls = HashSet::new();
    for raw_feed in &raw.feeds {
        let url = match feed_url(raw_feed.url.get_ref(), &base) {
            Ok(url) => url,
            Err(msg) => {
                problems.add(raw_feed.url.span(), msg);
                continue;
            }
        };
        let name = raw_feed
            .name
            .as_ref()
            .map(|n| n.get_ref().trim().to_string())
            .unwrap_or_else(|| raw_feed.url.get_ref().clone());
        let name_span = raw_feed
            .name
            .as_ref()
            .map_or(raw_feed.url.span(), |n| n.span());
        if name.is_empty() {
            problems.add(name_span, "feed name is empty");
        } else if !feed_names.insert(name.clone()) {
            problems.add(name_span, format!("duplicate feed name `{name}`"));
        }
        if !feed_urls.insert(url.clone()) {
            problems.add(raw_feed.url.span(), format!("feed `{url}` is listed twice"));
        }
        let schedule = schedule(
            raw_feed.interval.as_ref(),
            raw_feed.cron.as_ref(),
            raw_feed.timezone.as_ref(),
            Some(&default_schedule),
            &mut problems,
        )
        .unwrap_or_else(|| default_schedule.clone());
        let max_body_bytes = raw_feed
            .max_body
            .as_ref()
            .and_then(|s| byte_size(s, &mut problems))
            .unwrap_or(default_max_body);
        let timeout = raw_feed
            .timeout
            .as_ref()
            .and_then(|t| fetch_timeout(t, &mut problems))
            .unwrap_or(default_timeout);
        feeds.push(Feed {
            name,
            url,
            schedule,
            max_body_bytes,
            timeout,
            adaptive: raw_feed.adaptive.unwrap_or(default_adaptive),
            tags: raw_feed.tags.clone(),
        });
    }

    let mut notifiers = Vec::new();
    let mut notifier_names = HashSet::new();
    for raw_notifier in &raw.notifiers {
        let name = raw_notifier.name.get_ref().trim().to_string();
        if name.is_empty() {
            problems.add(raw_notifier.name.span(), "notifier name is empty");
        } else if !notifier_names.insert(name.clone()) {
            problems.add(
                raw_notifier.name.span(),
                format!("duplicate notifier name `{name}`"),
            );
        }
        let retry = retry_policy(raw_notifier, &mut problems);
        let quiet = quiet_hours(raw_notifier, &mut problems);
        let (digest, rate_limit) = batching(raw_notifier, &mut problems);
        if let Some(kind) = notifier_kind(raw_notifier, &mut problems) {
            notifiers.push(Notifier {
                name,
                kind,
                retry,
                quiet,
                digest,
                rate_limit,
            });
        }
    }

    let mut rules = Vec::new();
    let mut rule_names = HashSet::new();
    for raw_rule in &raw.rules {
        let name = raw_rule.name.get_ref().trim().to_string();
        if name.is_empty() {
            problems.add(raw_rule.name.span(), "rule name is empty");
        } else if !rule_names.insert(name.clone()) {
            problems.add(
                raw_rule.name.span(),
                format!("duplicate rule name `{name}`"),
            );
        }
        for notifier in &raw_rule.notify {
            if !notifier_names.contains(notifier.get_ref().as_str()) {
                problems.add(
                    notifier.span(),
                    format!(
                        "rule `{name}` notifies `{}`, but no [[notifier]] has that name",
                        notifier.get_ref()
                    ),
                );
            }
        }
        // `feeds` names feeds or feed tags; a tag stands for every feed that carries it.
        let mut limited_to: Vec<String> = Vec::new();
        for entry in &raw_rule.feeds {
            let wanted = entry.get_ref().as_str();
            let tagged: Vec<&Feed> = feeds
                .iter()
                .filter(|f: &&Feed| f.tags.iter().any(|t| t == wanted))
                .collect();
            if feed_names.contains(wanted) {
                limited_to.push(wanted.to_string());
            } else if !tagged.is_empty() {
                limited_to.extend(tagged.iter().map(|f| f.name.clone()));
            } else {
                problems.add(
                    entry.span(),
                    format!(
                        "rule `{name}` is limited to `{wanted}`, but no [[feed]] has that name or tag"
                    ),
                );
            }
        }
        limited_to.dedup();
        let accents = match raw_rule.accents.as_ref().map(|a| (a, a.get_ref().as_str())) {
            None | Some((_, "ignore")) => Accents::Ignore,
            Some((_, "exact")) => Accents::Exact,
            Some((spanned, other)) => {
                problems.add(
                    spanned.span(),
                    format!("rule `{name}`: accents = \"{other}\" is not \"ignore\" or \"exact\""),
                );
                Accents::Ignore
            }
        };
        let cooldown = raw_rule
            .cooldown
            .as_ref()
            .and_then(|c| positive_duration("cooldown", Some(c), Duration::ZERO, &mut problems));
        match Query::parse_with(raw_rule.query.get_ref(), accents) {
            Ok(query) => rules.push(Rule {
                name,
                query,
                notify: raw_rule
                    .notify
                    .iter()
                    .map(|n| n.get_ref().clone())
                    .collect(),
                feeds: limited_to,
                urgency: raw_rule.urgency,
                cooldown,
            }),
            Err(err) => {
                // Point at the character inside the quoted string (the span starts at the quote).
                let start = raw_rule.query.span().start + 1 + err.offset;
                problems.add(
                    start..start,
                    format!("rule `{name}`: {}", err.render(raw_rule.query.get_ref())),
                );
            }
        }
    }

    if !problems.found.is_empty() {
        return Err(ConfigError::Invalid {
            path: path.to_path_buf(),
            problems: problems.found,
        });
    }
    Ok(Config {
        path: path.to_path_buf(),
        database,
        retention,
        feeds,
        rules,
        notifiers,
    })
}

/// Turns what the user wrote as a feed address into a URL: http(s) as is, anything without a
/// scheme is a file path relative to the config's folder.
pub fn feed_url(written: &str, base: &Path) -> Result<String, String> {
    let written = written.trim();
    if written.is_empty() {
        return Err("feed url is empty".into());
    }
    if let Some((scheme, _)) = written.split_once("://") {
        return match scheme.to_ascii_lowercase().as_str() {
            "http" | "https" | "file" => url::Url::parse(written)
                .map(|u| u.to_string())
                .map_err(|e| format!("`{written}` is not a valid URL: {e}")),
            other => Err(format!(
                "unsupported URL scheme `{other}` (use http, https, file or a path)"
            )),
        };
    }
    let path = base.join(written);
    let absolute = if path.is_absolute() {
        path
    } else {
        std::env::current_dir()
            .map_err(|e| format!("cannot resolve `{written}`: {e}"))?
            .join(path)
    };
    url::Url::from_file_path(&absolute)
        .map(|u| u.to_string())
        .map_err(|()| format!("`{written}` is not a usable file path"))
}

fn schedule(
    interval: Option<&Spanned<String>>,
    cron: Option<&Spanned<String>>,
    timezone: Option<&Spanned<String>>,
    default: Option<&Schedule>,
    problems: &mut Problems,
) -> Option<Schedule> {
    let tz = match timezone {
        Some(tz) => match tz.get_ref().parse::<chrono_tz::Tz>() {
            Ok(tz) => Some(tz),
            Err(_) => {
                problems.add(
                    tz.span(),
                    format!(
                        "unknown time zone `{}` (use an IANA name such as `Europe/Berlin`)",
                        tz.get_ref()
                    ),
                );
                return None;
            }
        },
        None => None,
    };
    match (interval, cron) {
        (Some(i), Some(_)) => {
            problems.add(i.span(), "give either `interval` or `cron`, not both");
            None
        }
        (Some(i), None) => match humantime::parse_duration(i.get_ref()) {
            Ok(d) if d < MIN_INTERVAL => {
                problems.add(
                    i.span(),
                    format!(
                        "interval `{}` is shorter than the minimum of {}",
                        i.get_ref(),
                        humantime::format_duration(MIN_INTERVAL)
                    ),
                );
                None
            }
            Ok(d) => Some(Schedule::Interval(d)),
            Err(e) => {
                problems.add(
                    i.span(),
                    format!(
                        "invalid interval `{}`: {e} (examples: \"90s\", \"15m\", \"1h 30m\")",
                        i.get_ref()
                    ),
                );
                None
            }
        },
        (None, Some(c)) => {
            let tz = tz
                .or(match default {
                    Some(Schedule::Cron { tz, .. }) => Some(*tz),
                    _ => None,
                })
                .unwrap_or(chrono_tz::Tz::UTC);
            match Schedule::cron(c.get_ref(), tz) {
                Ok(s) => Some(s),
                Err(e) => {
                    problems.add(
                        c.span(),
                        format!("invalid cron expression `{}`: {e}", c.get_ref()),
                    );
                    None
                }
            }
        }
        (None, None) => {
            // A time zone alone re-times the default cron schedule.
            match (tz, default) {
                (Some(tz), Some(Schedule::Cron { expression, .. })) => {
                    Schedule::cron(expression, tz).ok()
                }
                _ => None,
            }
        }
    }
}

fn fetch_timeout(written: &Spanned<String>, problems: &mut Problems) -> Option<Duration> {
    match humantime::parse_duration(written.get_ref()) {
        Ok(d) if !d.is_zero() => Some(d),
        _ => {
            problems.add(
                written.span(),
                format!(
                    "invalid timeout `{}` (examples: \"30s\", \"2m\")",
                    written.get_ref()
                ),
            );
            None
        }
    }
}

fn byte_size(written: &Spanned<String>, problems: &mut Problems) -> Option<u64> {
    match parse_byte_size(written.get_ref()) {
        Some(n) if n > 0 => Some(n),
        _ => {
            problems.add(
                written.span(),
                format!(
                    "invalid size `{}` (examples: \"512KB\", \"10MB\")",
                    written.get_ref()
                ),
            );
            None
        }
    }
}

/// `"10MB"`, `"512 KiB"`, `"2000000"` -> bytes. Decimal and binary units are both accepted.
pub fn parse_byte_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "kib" | "k" => 1 << 10,
        "mb" => 1_000_000,
        "mib" | "m" => 1 << 20,
        "gb" => 1_000_000_000,
        "gib" | "g" => 1 << 30,
        _ => return None,
    };
    number.checked_mul(factor)
}

fn notifier_kind(raw: &RawNotifier, problems: &mut Problems) -> Option<NotifierKind> {
    let name = raw.name.get_ref();
    let kind = raw.kind.get_ref().as_str();
    // Keys that only some kinds take: reject them elsewhere so a misplaced key is not ignored.
    let mut only_for_webhook = |key: &str, span: Option<Range<usize>>| {
        if let Some(span) = span {
            problems.add(
                span,
                format!(
                    "`{key}` applies to webhook notifiers, not to `{kind}` (notifier `{name}`)"
                ),
            );
        }
    };
    match kind {
        "stdout" | "desktop" => {
            only_for_webhook("url", raw.url.as_ref().map(|u| u.span()));
            only_for_webhook("format", raw.format.as_ref().map(|f| f.span()));
            only_for_webhook("timeout", raw.timeout.as_ref().map(|t| t.span()));
            only_for_webhook("secret", raw.secret.as_ref().map(|t| t.span()));
            only_for_webhook("method", raw.method.as_ref().map(|t| t.span()));
            only_for_webhook("headers", raw.headers.as_ref().map(|t| t.span()));
            only_for_webhook("template", raw.template.as_ref().map(|t| t.span()));
            only_for_webhook("content_type", raw.content_type.as_ref().map(|t| t.span()));
            only_for_webhook("chat_id", raw.chat_id.as_ref().map(|t| t.span()));
            if kind == "stdout" {
                if let Some(open_with) = &raw.open_with {
                    problems.add(
                        open_with.span(),
                        format!("`open_with` applies to desktop notifiers, not to `stdout` (notifier `{name}`)"),
                    );
                }
                return Some(NotifierKind::Stdout);
            }
            let open_with = match &raw.open_with {
                Some(program) if program.get_ref().trim().is_empty() => {
                    problems.add(program.span(), format!("`open_with` of `{name}` is empty"));
                    return None;
                }
                Some(program) => program.get_ref().trim().to_string(),
                None => "xdg-open".to_string(),
            };
            Some(NotifierKind::Desktop(Desktop { open_with }))
        }
        "webhook" => {
            let Some(url) = &raw.url else {
                problems.add(
                    raw.kind.span(),
                    format!("webhook notifier `{name}` needs a `url`"),
                );
                return None;
            };
            let parsed = match url::Url::parse(url.get_ref()) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => u,
                Ok(_) | Err(_) => {
                    problems.add(
                        url.span(),
                        format!("webhook url of `{name}` must be an http(s) URL"),
                    );
                    return None;
                }
            };
            let timeout = positive_duration(
                "timeout",
                raw.timeout.as_ref(),
                Duration::from_secs(15),
                problems,
            )?;
            let secret = match &raw.secret {
                Some(s) if s.get_ref().is_empty() => {
                    problems.add(
                        s.span(),
                        format!("`secret` of `{name}` is empty; remove it or set one"),
                    );
                    return None;
                }
                Some(s) => Some(s.get_ref().clone()),
                None => None,
            };
            let format = raw
                .format
                .as_ref()
                .map_or(WebhookFormat::Json, |f| *f.get_ref());
            let method = match &raw.method {
                None if format == WebhookFormat::Matrix => "PUT".to_string(),
                None => "POST".to_string(),
                Some(m) => {
                    let upper = m.get_ref().to_ascii_uppercase();
                    if !matches!(upper.as_str(), "POST" | "PUT" | "PATCH") {
                        problems.add(
                            m.span(),
                            format!("method of `{name}` must be POST, PUT or PATCH"),
                        );
                    }
                    upper
                }
            };
            let mut headers = Vec::new();
            if let Some(h) = &raw.headers {
                for (key, value) in h.get_ref() {
                    let token =
                        |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
                    if key.is_empty() || !key.chars().all(token) {
                        problems.add(
                            h.span(),
                            format!("header name `{key}` of `{name}` is not valid"),
                        );
                    } else if value.chars().any(|c| c.is_control()) {
                        problems.add(
                            h.span(),
                            format!("header `{key}` of `{name}` holds a control character"),
                        );
                    } else {
                        headers.push((key.clone(), value.clone()));
                    }
                }
            }
            let template = raw.template.as_ref().map(|t| t.get_ref().clone());
            match (&raw.template, format) {
                (None, WebhookFormat::Template) => problems.add(
                    raw.kind.span(),
                    format!("`{name}` has format = \"template\" but no `template`"),
                ),
                (Some(t), WebhookFormat::Template) => {
                    if let Err(e) = minijinja::Environment::new().template_from_str(t.get_ref()) {
                        problems.add(t.span(), format!("template of `{name}`: {e}"));
                    }
                }
                (Some(t), _) => problems.add(
                    t.span(),
                    format!("`template` of `{name}` needs format = \"template\""),
                ),
                (None, _) => {}
            }
            if raw.chat_id.is_none() && format == WebhookFormat::Telegram {
                problems.add(
                    raw.kind.span(),
                    format!("Telegram notifier `{name}` needs a `chat_id`"),
                );
            }
            Some(NotifierKind::Webhook(Webhook {
                url: parsed.to_string(),
                format,
                timeout,
                secret,
                method,
                headers,
                template,
                content_type: raw
                    .content_type
                    .as_ref()
                    .map_or_else(|| "application/json".to_string(), |c| c.get_ref().clone()),
                chat_id: raw.chat_id.as_ref().map(|c| c.get_ref().clone()),
            }))
        }
        other => {
            problems.add(
                raw.kind.span(),
                format!(
                    "unknown notifier kind `{other}` (expected \"stdout\", \"desktop\" or \"webhook\")"
                ),
            );
            None
        }
    }
}

fn retry_policy(raw: &RawNotifier, problems: &mut Problems) -> RetryPolicy {
    let default = RetryPolicy::default();
    let mut key = |key: &str, value: &Option<Spanned<String>>, default: Duration| {
        positive_duration(key, value.as_ref(), default, problems).unwrap_or(default)
    };
    RetryPolicy {
        first_delay: key("retry_delay", &raw.retry_delay, default.first_delay),
        max_delay: key("retry_max_delay", &raw.retry_max_delay, default.max_delay),
        give_up_after: key("give_up_after", &raw.give_up_after, default.give_up_after),
    }
}

fn quiet_hours(raw: &RawNotifier, problems: &mut Problems) -> Option<QuietHours> {
    let name = raw.name.get_ref();
    let zone = match &raw.quiet_timezone {
        None => QuietZone::Local,
        Some(tz) => match tz.get_ref().parse::<chrono_tz::Tz>() {
            Ok(tz) => QuietZone::Named(tz),
            Err(_) => {
                problems.add(
                    tz.span(),
                    format!(
                        "unknown time zone `{}` for the quiet hours of `{name}`",
                        tz.get_ref()
                    ),
                );
                return None;
            }
        },
    };
    let Some(window) = &raw.quiet else {
        if let Some(tz) = &raw.quiet_timezone {
            problems.add(
                tz.span(),
                format!("`quiet_timezone` of `{name}` needs `quiet`"),
            );
        }
        return None;
    };
    match parse_quiet_window(window.get_ref()) {
        Some((start, end)) => Some(QuietHours { start, end, zone }),
        None => {
            problems.add(
                window.span(),
                format!(
                    "quiet hours `{}` of `{name}` are not a window such as \"22:00-07:00\"",
                    window.get_ref()
                ),
            );
            None
        }
    }
}

/// `digest` and `rate_limit`; a notifier takes one of them, since a digest already sends at
/// most one message per window.
fn batching(raw: &RawNotifier, problems: &mut Problems) -> (Option<Duration>, Option<RateLimit>) {
    let name = raw.name.get_ref();
    let digest = raw
        .digest
        .as_ref()
        .and_then(|d| positive_duration("digest", Some(d), Duration::ZERO, problems));
    let rate_limit = raw
        .rate_limit
        .as_ref()
        .and_then(|written| match parse_rate_limit(written.get_ref()) {
            Some(limit) => Some(limit),
            None => {
                problems.add(
                    written.span(),
                    format!(
                        "rate_limit `{}` of `{name}` is not a limit such as \"5/min\" \
                         (a count of at least 1, then /s, /min, /hour, /day or a duration such as /10m)",
                        written.get_ref()
                    ),
                );
                None
            }
        });
    if let (Some(_), Some(written)) = (&raw.digest, &raw.rate_limit) {
        problems.add(
            written.span(),
            format!(
                "`{name}` has both `digest` and `rate_limit`: a digest already sends at most one \
                 message per window, so choose one"
            ),
        );
    }
    (digest, rate_limit)
}

/// Parses `"5/min"`: a count, a slash, and a unit (`s`, `min`, `hour`, `day`) or a duration
/// (`"20/10m"`).
pub fn parse_rate_limit(text: &str) -> Option<RateLimit> {
    let (count, per) = text.split_once('/')?;
    let count: u32 = count.trim().parse().ok().filter(|&c| c > 0)?;
    let per = per.trim();
    let per = match per {
        "s" | "sec" | "second" => Duration::from_secs(1),
        "m" | "min" | "minute" => Duration::from_secs(60),
        "h" | "hour" => Duration::from_secs(3600),
        "d" | "day" => Duration::from_secs(86_400),
        other => humantime::parse_duration(other).ok()?,
    };
    // Windows are whole seconds: the outbox keeps times to the second.
    (per.as_secs() >= 1).then_some(RateLimit {
        count,
        per: Duration::from_secs(per.as_secs()),
    })
}

/// Parses `"22:00-07:00"`.
pub fn parse_quiet_window(text: &str) -> Option<(chrono::NaiveTime, chrono::NaiveTime)> {
    let (start, end) = text.split_once('-')?;
    let time = |t: &str| chrono::NaiveTime::parse_from_str(t.trim(), "%H:%M").ok();
    let (start, end) = (time(start)?, time(end)?);
    (start != end).then_some((start, end))
}

/// A duration key such as `timeout = "15s"`: `default` when absent, `None` (and a problem)
/// when it is not a positive duration.
fn positive_duration(
    key: &str,
    value: Option<&Spanned<String>>,
    default: Duration,
    problems: &mut Problems,
) -> Option<Duration> {
    let Some(value) = value else {
        return Some(default);
    };
    match humantime::parse_duration(value.get_ref()) {
        Ok(d) if !d.is_zero() => Some(d),
        _ => {
            problems.add(
                value.span(),
                format!(
                    "invalid {key} `{}` (expected a duration such as \"30s\" or \"1h\")",
                    value.get_ref()
                ),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("/etc/feedwatch/config.toml"))
    }

    fn problems(text: &str) -> Vec<String> {
        match parse(text) {
            Err(ConfigError::Invalid { problems, .. }) => problems
                .into_iter()
                .map(|p| format!("{}:{} {}", p.line, p.column, p.message))
                .collect(),
            Err(other) => vec![other.to_string()],
            Ok(_) => vec![],
        }
    }

    #[test]
    fn full_config_is_understood() {
        let config = parse(
            r#"
database = "data/fw.db"
[defaults]
interval = "20m"

[[feed]]
url = "https://example.org/rss.xml"
name = "Example"

[[feed]]
url = "local/feed.xml"
cron = "*/15 * * * *"
timezone = "Europe/Berlin"

[[rule]]
name = "ukraine"
query = 'Ukraine OR NATO'
notify = ["hook", "console"]

[[notifier]]
name = "hook"
kind = "webhook"
url = "http://127.0.0.1:9/hook"
format = "slack"

[[notifier]]
name = "console"
kind = "stdout"
"#,
        )
        .unwrap();
        assert_eq!(config.database, Path::new("/etc/feedwatch/data/fw.db"));
        assert_eq!(config.feeds[0].name, "Example");
        assert_eq!(
            config.feeds[0].schedule,
            Schedule::Interval(Duration::from_secs(1200))
        );
        assert_eq!(config.feeds[1].url, "file:///etc/feedwatch/local/feed.xml");
        assert!(matches!(config.feeds[1].schedule, Schedule::Cron { .. }));
        assert_eq!(config.rules[0].notify, ["hook", "console"]);
        assert!(matches!(
            &config.notifiers[0].kind,
            NotifierKind::Webhook(Webhook {
                format: WebhookFormat::Slack,
                ..
            })
        ));
    }

    #[test]
    fn unknown_key_is_reported_with_position() {
        let err = parse("[[feed]]\nurl = \"http://x.org/\"\nintervall = \"5m\"\n").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("line 3"), "{text}");
        assert!(text.contains("intervall"), "{text}");
    }

    #[test]
    fn all_semantic_problems_are_reported_together() {
        let found = problems(
            r#"[[feed]]
url = "http://a.org/"
interval = "soon"

[[rule]]
name = "r"
query = "NATO"
notify = ["nobody"]

[[rule]]
name = "r"
query = "x"
"#,
        );
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(
            found[0].starts_with("3:12 invalid interval `soon`"),
            "{found:?}"
        );
        assert!(
            found[1].starts_with("8:11 rule `r` notifies `nobody`"),
            "{found:?}"
        );
        assert!(
            found[2].starts_with("11:8 duplicate rule name `r`"),
            "{found:?}"
        );
    }

    #[test]
    fn query_error_points_into_the_query() {
        let found = problems("[[rule]]\nname = \"r\"\nquery = 'NATO AND'\n");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("3:"), "{found:?}");
        assert!(found[0].contains("rule `r`"), "{found:?}");
    }

    #[test]
    fn rule_accents_option_is_exact_or_ignore() {
        let config =
            parse("[[rule]]\nname = \"r\"\nquery = 'café'\naccents = \"exact\"\n").unwrap();
        assert_eq!(config.rules[0].query.terms()[0].accents, Accents::Exact);
        let config = parse("[[rule]]\nname = \"r\"\nquery = 'café'\n").unwrap();
        assert_eq!(config.rules[0].query.terms()[0].accents, Accents::Ignore);
        let found = problems("[[rule]]\nname = \"r\"\nquery = 'x'\naccents = \"strict\"\n");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("4:11 rule `r`: accents"), "{found:?}");
    }

    #[test]
    fn too_short_interval_and_bad_cron_are_rejected() {
        let found = problems(
            "[[feed]]\nurl = \"http://a.org/\"\ninterval = \"1s\"\n[[feed]]\nurl = \"http://b.org/\"\ncron = \"61 * * * *\"\n",
        );
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains("shorter than the minimum"));
        assert!(found[1].contains("invalid cron expression"));
    }

    #[test]
    fn webhook_needs_url_and_stdout_refuses_one() {
        let found = problems(
            "[[notifier]]\nname = \"a\"\nkind = \"webhook\"\n[[notifier]]\nname = \"b\"\nkind = \"stdout\"\nurl = \"http://x/\"\n",
        );
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains("needs a `url`"));
        assert!(found[1].contains("applies to webhook notifiers"));
    }

    #[test]
    fn webhook_secret_and_retry_policy_are_read() {
        let config = parse(
            "[[notifier]]\nname = \"a\"\nkind = \"webhook\"\nurl = \"http://x/\"\n\
             secret = \"k\"\nretry_delay = \"2s\"\nretry_max_delay = \"10s\"\ngive_up_after = \"1h\"\n",
        )
        .unwrap();
        let n = &config.notifiers[0];
        assert!(
            matches!(&n.kind, NotifierKind::Webhook(Webhook { secret: Some(k), .. }) if k == "k")
        );
        assert_eq!(n.retry.first_delay, Duration::from_secs(2));
        assert_eq!(n.retry.max_delay, Duration::from_secs(10));
        assert_eq!(n.retry.give_up_after, Duration::from_secs(3600));
        let found = problems(
            "[[notifier]]\nname = \"b\"\nkind = \"stdout\"\nsecret = \"k\"\ngive_up_after = \"never\"\n",
        );
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0].starts_with("5:17 invalid give_up_after `never`"),
            "{found:?}"
        );
        assert!(
            found[1].contains("`secret` applies to webhook notifiers"),
            "{found:?}"
        );
    }

    #[test]
    fn quiet_hours_are_checked() {
        let config = parse(
            "[[notifier]]\nname = \"a\"\nkind = \"stdout\"\nquiet = \"22:00-07:00\"\nquiet_timezone = \"Europe/Berlin\"\n",
        )
        .unwrap();
        let quiet = config.notifiers[0].quiet.as_ref().unwrap();
        assert_eq!(quiet.zone, QuietZone::Named(chrono_tz::Europe::Berlin));
        let found = problems(
            "[[notifier]]\nname = \"a\"\nkind = \"stdout\"\nquiet = \"late\"\n\
             [[notifier]]\nname = \"b\"\nkind = \"stdout\"\nquiet = \"1:00-2:00\"\nquiet_timezone = \"Mars/Base\"\n",
        );
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains("quiet hours `late` of `a`"), "{found:?}");
        assert!(
            found[1].contains("unknown time zone `Mars/Base`"),
            "{found:?}"
        );
    }

    #[test]
    fn digest_and_rate_limit_are_read_and_checked() {
        let config = parse(
            "[[notifier]]\nname = \"a\"\nkind = \"stdout\"\ndigest = \"1h\"\n\
             [[notifier]]\nname = \"b\"\nkind = \"desktop\"\nrate_limit = \"5/min\"\nopen_with = \"firefox\"\n",
        )
        .unwrap();
        assert_eq!(config.notifiers[0].digest, Some(Duration::from_secs(3600)));
        assert_eq!(
            config.notifiers[1].rate_limit,
            Some(RateLimit {
                count: 5,
                per: Duration::from_secs(60)
            })
        );
        assert_eq!(
            config.notifiers[1].kind,
            NotifierKind::Desktop(Desktop {
                open_with: "firefox".into()
            })
        );
        let found = problems(
            "[[notifier]]\nname = \"a\"\nkind = \"stdout\"\nrate_limit = \"5 per minute\"\n\
             [[notifier]]\nname = \"b\"\nkind = \"stdout\"\ndigest = \"soon\"\n\
             [[notifier]]\nname = \"c\"\nkind = \"stdout\"\ndigest = \"1h\"\nrate_limit = \"1/h\"\nopen_with = \"x\"\n",
        );
        assert_eq!(found.len(), 4, "{found:?}");
        assert!(found[0].starts_with("4:14 "), "{found:?}");
        assert!(
            found[0].contains("rate_limit `5 per minute` of `a`"),
            "{found:?}"
        );
        assert!(found[1].contains("invalid digest `soon`"), "{found:?}");
        assert!(
            found[2].contains("both `digest` and `rate_limit`"),
            "{found:?}"
        );
        assert!(
            found[3].contains("`open_with` applies to desktop"),
            "{found:?}"
        );
    }

    #[test]
    fn rate_limits_take_a_count_and_a_window() {
        let limit = |text| parse_rate_limit(text).map(|l| (l.count, l.per.as_secs()));
        assert_eq!(limit("5/min"), Some((5, 60)));
        assert_eq!(limit(" 10 / hour "), Some((10, 3600)));
        assert_eq!(limit("1/s"), Some((1, 1)));
        assert_eq!(limit("20/10m"), Some((20, 600)));
        assert_eq!(limit("0/min"), None);
        assert_eq!(limit("5"), None);
        assert_eq!(limit("5/fortnight"), None);
        assert_eq!(limit("5/500ms"), None);
    }

    #[test]
    fn rule_feeds_take_feed_names_and_tags() {
        let config = parse(
            r#"
[[feed]]
name = "A"
url = "http://a.org/"
tags = ["europe"]
[[feed]]
name = "B"
url = "http://b.org/"
tags = ["europe", "wire"]
[[feed]]
name = "C"
url = "http://c.org/"
[[rule]]
name = "r"
query = "NATO"
feeds = ["europe", "C"]
"#,
        )
        .unwrap();
        assert_eq!(config.rules[0].feeds, ["A", "B", "C"]);
        let found = problems(
            "[[feed]]\nurl = \"http://a.org/\"\n[[rule]]\nname = \"r\"\nquery = \"x\"\nfeeds = [\"nowhere\"]\n",
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].contains("no [[feed]] has that name or tag"),
            "{found:?}"
        );
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_byte_size("10MB"), Some(10_000_000));
        assert_eq!(parse_byte_size("512 KiB"), Some(512 * 1024));
        assert_eq!(parse_byte_size("42"), Some(42));
        assert_eq!(parse_byte_size("ten"), None);
    }
}

//! `config.toml` -> a validated [`Config`].
//!
//! Parsing happens in two steps: serde reads the raw TOML (unknown keys are errors, so typos
//! are caught), then `validate` checks what serde cannot — schedules, queries, notifier
//! names — and collects *every* problem with its line and column before giving up, so one
//! `feedwatch check` shows all that is wrong.

pub mod edit;
mod email;
mod feed_http;
mod http;
mod notifiers;
mod problems;
mod raw;
mod secret;
#[cfg(test)]
mod tests;
mod validate;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use serde::Deserialize;

use crate::matcher::Query;
use crate::scheduler::Schedule;
use crate::story::StoryParams;

pub use http::{Http, HttpToken};
pub use notifiers::{parse_quiet_window, parse_rate_limit};
use raw::RawConfig;
use validate::validate;
pub use validate::{feed_url, parse_byte_size};

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
    /// What makes articles from several feeds one story: `story_window`, `story_threshold`.
    pub story: StoryParams,
    /// Requests in flight at once over all feeds; `None`: as many as file descriptors allow,
    /// up to `fetch::DEFAULT_MAX_FETCHES`.
    pub max_fetches: Option<usize>,
    pub feeds: Vec<Feed>,
    pub rules: Vec<Rule>,
    pub notifiers: Vec<Notifier>,
    /// The HTTP listener (`[http]`); none unless the file asks for one.
    pub http: Option<Http>,
    /// Secrets written in the file itself (e.g. "`url` of `team-chat`"), for `check` to warn
    /// about when others can read the file.
    pub inline_secrets: Vec<String>,
    /// Each rule's place in `rules`, by name, made at the first [`Config::rule`].
    rule_places: OnceLock<HashMap<String, usize>>,
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
    /// Whether each new article's own page is fetched for its full text.
    pub full_text: FullText,
    /// Free-form labels, e.g. the OPML category the feed was imported from.
    pub tags: Vec<String>,
    /// Headers, user agent, cookie, basic auth, proxy and certificate checks of its requests.
    pub http: crate::fetch::RequestOptions,
}

/// `full_text`: when a new article's page is fetched and its main text becomes the article's
/// `content`, before the rules see it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FullText {
    /// The feed's own text only.
    #[default]
    Off,
    /// Every new article's page.
    Always,
    /// Only when the entry carries a teaser (see [`crate::extract::is_teaser`]).
    Auto,
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
    /// Alert once per story (the default): later articles of a story this rule alerted for
    /// are added to that alert's sources.
    pub per_story: bool,
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
    /// A mail through an SMTP server or the local `sendmail`.
    Email(Email),
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

#[derive(Debug, Clone, PartialEq)]
pub struct Email {
    pub from: lettre::message::Mailbox,
    pub to: Vec<lettre::message::Mailbox>,
    pub transport: MailTransport,
    /// The whole send: connecting, TLS, login and the message (or the `sendmail` run).
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub enum MailTransport {
    Smtp(Smtp),
    /// A `sendmail`-compatible program (Postfix, Exim, msmtp, ...): a path, or a bare name
    /// looked up in `PATH`.
    Sendmail(PathBuf),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    /// Log in with these (AUTH PLAIN or LOGIN), only ever over TLS.
    pub login: Option<(String, crate::fetch::Sensitive)>,
    /// A PEM certificate trusted as a root besides the system's, for a server whose
    /// certificate a private CA issued.
    pub extra_root: Option<Vec<u8>>,
}

impl Smtp {
    /// `smtps://host:port`: what logs and `check` show (no login, no password).
    pub fn address(&self) -> String {
        let scheme = match self.tls {
            SmtpTls::Implicit => "smtps",
            SmtpTls::StartTls | SmtpTls::None => "smtp",
        };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{scheme}://{host}:{}", self.port)
    }
}

/// How an SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// TLS from the first byte (`smtps://`, port 465).
    Implicit,
    /// STARTTLS, required: a server that does not offer it gets nothing (`smtp://`, port 587).
    StartTls,
    /// Clear text (`tls = "none"`), for a relay on this machine or network; never with a
    /// password.
    None,
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

impl Config {
    /// Reads and validates the config file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        // An absolute path, so the database beside a relative config is the same file whatever
        // folder a later command runs from, and messages name it unambiguously.
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        Config::parse(&text, &path)
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
            story: StoryParams::default(),
            max_fetches: None,
            feeds: Vec::new(),
            rules: Vec::new(),
            notifiers: Vec::new(),
            http: None,
            inline_secrets: Vec::new(),
            rule_places: OnceLock::new(),
        }
    }

    /// The rule named `name`. Delivery looks up each alert's rule: with 10,000 rules, searching
    /// the list took a third of its CPU. A loaded config's rules do not change (a reload makes
    /// a new one).
    pub fn rule(&self, name: &str) -> Option<&Rule> {
        let places = self.rule_places.get_or_init(|| {
            let places = self.rules.iter().enumerate();
            places.map(|(i, r)| (r.name.clone(), i)).collect()
        });
        // Checked, so that a list changed after the first lookup finds nothing, never another rule.
        let rule = places.get(name).and_then(|&i| self.rules.get(i));
        rule.filter(|r| r.name == name)
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

/// Where the system service keeps its state (`StateDirectory=feedwatch` in the shipped unit).
pub const SYSTEM_STATE_DIR: &str = "/var/lib/feedwatch";

/// The database when the config names none: systemd's `StateDirectory` for a system service,
/// the same folder for any config under `/etc` (so an administrator's `feedwatch --config
/// /etc/feedwatch/config.toml matches` reads the service's database, not a new one beside the
/// config), `$XDG_DATA_HOME/feedwatch/` for a config in the XDG config folder, else beside the
/// config.
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
    if config_path.starts_with("/etc") {
        return Path::new(SYSTEM_STATE_DIR).join("feedwatch.db");
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

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

use crate::matcher::Query;
use crate::scheduler::Schedule;

/// Polls closer together than this are refused: they help nobody and annoy feed hosts.
pub const MIN_INTERVAL: Duration = Duration::from_secs(10);
const DEFAULT_INTERVAL: Duration = Duration::from_secs(15 * 60);
/// Default cap on a feed's decompressed body.
pub const DEFAULT_MAX_BODY: u64 = 10 * 1024 * 1024;

/// Everything feedwatch needs to run, checked and resolved.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the config came from; relative paths in it are relative to its folder.
    pub path: PathBuf,
    pub database: PathBuf,
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
    /// Free-form labels, e.g. the OPML category the feed was imported from.
    pub tags: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub query: Query,
    /// Names of the notifiers this rule alerts through.
    pub notify: Vec<String>,
    /// Only articles from these feeds (by name); empty means every feed.
    pub feeds: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Notifier {
    pub name: String,
    pub kind: NotifierKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NotifierKind {
    /// One readable line per alert on standard output.
    Stdout,
    /// A desktop notification through the session bus.
    Desktop,
    /// An HTTP POST of the alert in one of several body formats.
    Webhook {
        url: String,
        format: WebhookFormat,
        timeout: Duration,
    },
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
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotifier {
    name: Spanned<String>,
    kind: Spanned<String>,
    url: Option<Spanned<String>>,
    format: Option<Spanned<WebhookFormat>>,
    timeout: Option<Spanned<String>>,
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
            database: base_dir(path).join("feedwatch.db"),
            feeds: Vec::new(),
            rules: Vec::new(),
            notifiers: Vec::new(),
        }
    }

    pub fn notifier(&self, name: &str) -> Option<&Notifier> {
        self.notifiers.iter().find(|n| n.name == name)
    }
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
        None => base.join("feedwatch.db"),
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
        feeds.push(Feed {
            name,
            url,
            schedule,
            max_body_bytes,
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
        if let Some(kind) = notifier_kind(raw_notifier, &mut problems) {
            notifiers.push(Notifier { name, kind });
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
        for feed in &raw_rule.feeds {
            if !feed_names.contains(feed.get_ref().as_str()) {
                problems.add(
                    feed.span(),
                    format!(
                        "rule `{name}` is limited to feed `{}`, but no [[feed]] has that name",
                        feed.get_ref()
                    ),
                );
            }
        }
        match Query::parse(raw_rule.query.get_ref()) {
            Ok(query) => rules.push(Rule {
                name,
                query,
                notify: raw_rule
                    .notify
                    .iter()
                    .map(|n| n.get_ref().clone())
                    .collect(),
                feeds: raw_rule.feeds.iter().map(|f| f.get_ref().clone()).collect(),
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
            Some(if kind == "stdout" {
                NotifierKind::Stdout
            } else {
                NotifierKind::Desktop
            })
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
            let timeout = match &raw.timeout {
                None => Duration::from_secs(15),
                Some(t) => match humantime::parse_duration(t.get_ref()) {
                    Ok(d) if !d.is_zero() => d,
                    _ => {
                        problems.add(t.span(), format!("invalid timeout `{}`", t.get_ref()));
                        return None;
                    }
                },
            };
            Some(NotifierKind::Webhook {
                url: parsed.to_string(),
                format: raw
                    .format
                    .as_ref()
                    .map_or(WebhookFormat::Json, |f| *f.get_ref()),
                timeout,
            })
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
            config.notifiers[0].kind,
            NotifierKind::Webhook {
                format: WebhookFormat::Slack,
                ..
            }
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
    fn byte_sizes() {
        assert_eq!(parse_byte_size("10MB"), Some(10_000_000));
        assert_eq!(parse_byte_size("512 KiB"), Some(512 * 1024));
        assert_eq!(parse_byte_size("42"), Some(42));
        assert_eq!(parse_byte_size("ten"), None);
    }
}

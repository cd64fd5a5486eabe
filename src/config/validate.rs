//! Checking the raw file: what serde cannot (schedules, queries, names that refer to each
//! other), with every problem collected and located before giving up.

use std::collections::HashSet;
use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use toml::Spanned;

use super::notifiers::{batching, notifier_kind, quiet_hours, retry_policy};
use super::raw::RawConfig;
use super::{
    Config, ConfigError, DEFAULT_FETCH_TIMEOUT, DEFAULT_INTERVAL, DEFAULT_MAX_BODY,
    DEFAULT_RETENTION, Feed, MIN_INTERVAL, MIN_RETENTION, Notifier, Problem, Rule, base_dir,
    default_database,
};
use crate::matcher::{Accents, Query};
use crate::scheduler::Schedule;

/// Collects problems with their position in the source text.
pub(super) struct Problems<'a> {
    text: &'a str,
    found: Vec<Problem>,
}

impl Problems<'_> {
    pub(super) fn add(&mut self, span: Range<usize>, message: impl fmt::Display) {
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

pub(super) fn validate(raw: RawConfig, text: &str, path: &Path) -> Result<Config, ConfigError> {
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

/// A duration key such as `timeout = "15s"`: `default` when absent, `None` (and a problem)
/// when it is not a positive duration.
pub(super) fn positive_duration(
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

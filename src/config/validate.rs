//! Checking the raw file: what serde cannot (schedules, queries, names that refer to each
//! other), with every problem collected and located before giving up.

use std::collections::HashSet;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use toml::Spanned;

use super::feed_http;
use super::notifiers::notifier;
use super::problems::{Problems, positive_duration};
use super::raw::{RawConfig, RawDefaults, RawFeed, RawFullText, RawRule};
use super::secret::Secrets;
use super::{
    Config, ConfigError, DEFAULT_FETCH_TIMEOUT, DEFAULT_INTERVAL, DEFAULT_MAX_BODY,
    DEFAULT_RETENTION, Feed, FullText, MIN_INTERVAL, MIN_RETENTION, Rule, base_dir,
    default_database,
};
use crate::matcher::{Accents, Query};
use crate::scheduler::Schedule;
use crate::story::StoryParams;

pub(super) fn validate(raw: RawConfig, text: &str, path: &Path) -> Result<Config, ConfigError> {
    let base = base_dir(path);
    let mut problems = Problems::new(text);

    let database = match &raw.database {
        Some(db) => base.join(db.get_ref()),
        None => default_database(path),
    };
    let retention = retention(raw.retention.as_ref(), &mut problems);
    let story = story_params(&raw, &mut problems);
    let max_fetches = raw.max_fetches.as_ref().and_then(|n| {
        let fetches = usize::try_from(*n.get_ref()).ok().filter(|&n| n >= 1);
        if fetches.is_none() {
            problems.add(n.span(), "max_fetches must be 1 or more");
        }
        fetches
    });

    let env = |variable: &str| std::env::var_os(variable);
    let mut secrets = Secrets::new(&base, &env);
    let defaults = FeedDefaults::read(&raw.defaults, &mut secrets, &mut problems);
    let mut feed_names = Names::new("feed");
    let mut feed_urls = HashSet::new();
    let feeds: Vec<Feed> = raw
        .feeds
        .iter()
        .filter_map(|raw_feed| {
            feed(
                raw_feed,
                &defaults,
                &base,
                &mut feed_names,
                &mut feed_urls,
                &mut secrets,
                &mut problems,
            )
        })
        .collect();

    let mut notifier_names = Names::new("notifier");
    let notifiers = raw
        .notifiers
        .iter()
        .filter_map(|raw_notifier| {
            let name = raw_notifier.name.get_ref().trim().to_string();
            notifier_names.claim(&name, raw_notifier.name.span(), &mut problems);
            notifier(name, raw_notifier, &mut secrets, &mut problems)
        })
        .collect();
    let http = raw
        .http
        .as_ref()
        .and_then(|raw_http| super::http::http(raw_http, &mut secrets, &mut problems));
    let inline_secrets = secrets.into_inline();

    let known = Known {
        feeds: &feeds,
        feed_names: &feed_names,
        notifier_names: &notifier_names,
    };
    let mut rule_names = Names::new("rule");
    let rules = raw
        .rules
        .iter()
        .filter_map(|raw_rule| rule(raw_rule, &known, &mut rule_names, &mut problems))
        .collect();

    let problems = problems.into_found();
    if !problems.is_empty() {
        return Err(ConfigError::Invalid {
            path: path.to_path_buf(),
            problems,
        });
    }
    Ok(Config {
        path: path.to_path_buf(),
        database,
        retention,
        story,
        max_fetches,
        feeds,
        rules,
        notifiers,
        http,
        inline_secrets,
        rule_places: Default::default(),
    })
}

/// The names given so far to one kind of table (`feed`, `notifier`, `rule`): each must be
/// present and unique among its kind.
struct Names {
    kind: &'static str,
    taken: HashSet<String>,
}

impl Names {
    fn new(kind: &'static str) -> Names {
        Names {
            kind,
            taken: HashSet::new(),
        }
    }

    /// Takes `name`, or reports at `span` that it is empty or already taken.
    fn claim(&mut self, name: &str, span: Range<usize>, problems: &mut Problems) {
        let kind = self.kind;
        if name.is_empty() {
            problems.add(span, format!("{kind} name is empty"));
        } else if !self.taken.insert(name.to_string()) {
            problems.add(span, format!("duplicate {kind} name `{name}`"));
        }
    }

    fn contains(&self, name: &str) -> bool {
        self.taken.contains(name)
    }
}

/// `story_window` (a duration, zero turns stories off) and `story_threshold` (0 to 1].
fn story_params(raw: &RawConfig, problems: &mut Problems) -> StoryParams {
    let mut params = StoryParams::default();
    if let Some(w) = &raw.story_window {
        match humantime::parse_duration(w.get_ref()) {
            Ok(d) => params.window = d,
            Err(e) => problems.add(
                w.span(),
                format!(
                    "invalid story_window `{}`: {e} (example: \"48h\")",
                    w.get_ref()
                ),
            ),
        }
    }
    if let Some(t) = &raw.story_threshold {
        let value = *t.get_ref();
        if value > 0.0 && value <= 1.0 {
            params.threshold = value;
        } else {
            problems.add(
                t.span(),
                format!("story_threshold must be above 0 and at most 1, not {value}"),
            );
        }
    }
    params
}

fn retention(written: Option<&Spanned<String>>, problems: &mut Problems) -> Duration {
    let Some(r) = written else {
        return DEFAULT_RETENTION;
    };
    match humantime::parse_duration(r.get_ref()) {
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
    }
}

/// What `[defaults]` gives every feed that does not say otherwise.
struct FeedDefaults {
    schedule: Schedule,
    max_body: u64,
    timeout: Duration,
    adaptive: bool,
    full_text: FullText,
    http: feed_http::HttpKeys,
}

impl FeedDefaults {
    fn read(raw: &RawDefaults, secrets: &mut Secrets, problems: &mut Problems) -> FeedDefaults {
        FeedDefaults {
            http: feed_http::read(raw.into(), "[defaults]", secrets, problems),
            schedule: schedule(
                raw.interval.as_ref(),
                raw.cron.as_ref(),
                raw.timezone.as_ref(),
                None,
                problems,
            )
            .unwrap_or(Schedule::Interval(DEFAULT_INTERVAL)),
            max_body: raw
                .max_body
                .as_ref()
                .and_then(|s| byte_size(s, problems))
                .unwrap_or(DEFAULT_MAX_BODY),
            timeout: raw
                .timeout
                .as_ref()
                .and_then(|t| fetch_timeout(t, problems))
                .unwrap_or(DEFAULT_FETCH_TIMEOUT),
            adaptive: raw.adaptive.unwrap_or(false),
            full_text: raw
                .full_text
                .as_ref()
                .and_then(|f| full_text(f, problems))
                .unwrap_or_default(),
        }
    }
}

/// One `[[feed]]`; `None` when its address is unusable, since nothing else about it can be
/// known then.
fn feed(
    raw: &RawFeed,
    defaults: &FeedDefaults,
    base: &Path,
    names: &mut Names,
    urls: &mut HashSet<String>,
    secrets: &mut Secrets,
    problems: &mut Problems,
) -> Option<Feed> {
    let url = match feed_url(raw.url.get_ref(), base) {
        Ok(url) => url,
        Err(msg) => {
            problems.add(raw.url.span(), msg);
            return None;
        }
    };
    // A feed without a name goes by its address as written.
    let (name, name_span) = match &raw.name {
        Some(n) => (n.get_ref().trim().to_string(), n.span()),
        None => (raw.url.get_ref().clone(), raw.url.span()),
    };
    names.claim(&name, name_span, problems);
    if !urls.insert(url.clone()) {
        problems.add(raw.url.span(), format!("feed `{url}` is listed twice"));
    }
    let schedule = schedule(
        raw.interval.as_ref(),
        raw.cron.as_ref(),
        raw.timezone.as_ref(),
        Some(&defaults.schedule),
        problems,
    )
    .unwrap_or_else(|| defaults.schedule.clone());
    let max_body_bytes = raw
        .max_body
        .as_ref()
        .and_then(|s| byte_size(s, problems))
        .unwrap_or(defaults.max_body);
    let timeout = raw
        .timeout
        .as_ref()
        .and_then(|t| fetch_timeout(t, problems))
        .unwrap_or(defaults.timeout);
    let own_http = feed_http::read(raw.into(), &format!("feed `{name}`"), secrets, problems);
    let http = feed_http::options(own_http, &defaults.http, &url);
    Some(Feed {
        name,
        url,
        schedule,
        max_body_bytes,
        timeout,
        adaptive: raw.adaptive.unwrap_or(defaults.adaptive),
        full_text: raw
            .full_text
            .as_ref()
            .and_then(|f| full_text(f, problems))
            .unwrap_or(defaults.full_text),
        tags: raw.tags.clone(),
        http,
    })
}

/// What a rule may refer to: the feeds and notifiers the file defines.
struct Known<'a> {
    feeds: &'a [Feed],
    feed_names: &'a Names,
    notifier_names: &'a Names,
}

/// One `[[rule]]`; `None` when its query does not parse.
fn rule(raw: &RawRule, known: &Known, names: &mut Names, problems: &mut Problems) -> Option<Rule> {
    let name = raw.name.get_ref().trim().to_string();
    names.claim(&name, raw.name.span(), problems);
    for notifier in &raw.notify {
        if !known.notifier_names.contains(notifier.get_ref()) {
            problems.add(
                notifier.span(),
                format!(
                    "rule `{name}` notifies `{}`, but no [[notifier]] has that name",
                    notifier.get_ref()
                ),
            );
        }
    }
    let feeds = limited_to(raw, &name, known, problems);
    let accents = accents(raw, &name, problems);
    let cooldown = raw
        .cooldown
        .as_ref()
        .and_then(|c| positive_duration("cooldown", Some(c), Duration::ZERO, problems));
    match Query::parse_with(raw.query.get_ref(), accents) {
        Ok(query) => Some(Rule {
            query,
            notify: raw.notify.iter().map(|n| n.get_ref().clone()).collect(),
            feeds,
            urgency: raw.urgency,
            cooldown,
            per_story: raw.per_story.unwrap_or(true),
            name,
        }),
        Err(err) => {
            // Point at the character inside the quoted string (the span starts at the quote).
            let start = raw.query.span().start + 1 + err.offset;
            problems.add(
                start..start,
                format!("rule `{name}`: {}", err.render(raw.query.get_ref())),
            );
            None
        }
    }
}

/// The names of the feeds a rule's `feeds` stands for: it names feeds or feed tags, and a tag
/// stands for every feed that carries it.
fn limited_to(raw: &RawRule, name: &str, known: &Known, problems: &mut Problems) -> Vec<String> {
    let mut limited_to: Vec<String> = Vec::new();
    for entry in &raw.feeds {
        let wanted = entry.get_ref().as_str();
        let tagged: Vec<&Feed> = known
            .feeds
            .iter()
            .filter(|f: &&Feed| f.tags.iter().any(|t| t == wanted))
            .collect();
        if known.feed_names.contains(wanted) {
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
    limited_to
}

fn accents(raw: &RawRule, name: &str, problems: &mut Problems) -> Accents {
    match raw.accents.as_ref().map(|a| (a, a.get_ref().as_str())) {
        None | Some((_, "ignore")) => Accents::Ignore,
        Some((_, "exact")) => Accents::Exact,
        Some((spanned, other)) => {
            problems.add(
                spanned.span(),
                format!("rule `{name}`: accents = \"{other}\" is not \"ignore\" or \"exact\""),
            );
            Accents::Ignore
        }
    }
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

/// A feed's (or the defaults') schedule; `None` when it gives none of its own or gives a
/// wrong one, so the default applies.
fn schedule(
    interval: Option<&Spanned<String>>,
    cron: Option<&Spanned<String>>,
    timezone: Option<&Spanned<String>>,
    default: Option<&Schedule>,
    problems: &mut Problems,
) -> Option<Schedule> {
    let tz = match timezone {
        Some(tz) => Some(time_zone(tz, problems)?),
        None => None,
    };
    match (interval, cron) {
        (Some(i), Some(_)) => {
            problems.add(i.span(), "give either `interval` or `cron`, not both");
            None
        }
        (Some(i), None) => interval_schedule(i, problems),
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

fn time_zone(written: &Spanned<String>, problems: &mut Problems) -> Option<chrono_tz::Tz> {
    match written.get_ref().parse::<chrono_tz::Tz>() {
        Ok(tz) => Some(tz),
        Err(_) => {
            problems.add(
                written.span(),
                format!(
                    "unknown time zone `{}` (use an IANA name such as `Europe/Berlin`)",
                    written.get_ref()
                ),
            );
            None
        }
    }
}

fn interval_schedule(written: &Spanned<String>, problems: &mut Problems) -> Option<Schedule> {
    match humantime::parse_duration(written.get_ref()) {
        Ok(d) if d < MIN_INTERVAL => {
            problems.add(
                written.span(),
                format!(
                    "interval `{}` is shorter than the minimum of {}",
                    written.get_ref(),
                    humantime::format_duration(MIN_INTERVAL)
                ),
            );
            None
        }
        Ok(d) => Some(Schedule::Interval(d)),
        Err(e) => {
            problems.add(
                written.span(),
                format!(
                    "invalid interval `{}`: {e} (examples: \"90s\", \"15m\", \"1h 30m\")",
                    written.get_ref()
                ),
            );
            None
        }
    }
}

fn full_text(written: &Spanned<RawFullText>, problems: &mut Problems) -> Option<FullText> {
    match written.get_ref() {
        RawFullText::Flag(true) => Some(FullText::Always),
        RawFullText::Flag(false) => Some(FullText::Off),
        RawFullText::Word(word) if word == "auto" => Some(FullText::Auto),
        RawFullText::Word(word) => {
            problems.add(
                written.span(),
                format!("invalid full_text `{word}` (true, false or \"auto\")"),
            );
            None
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

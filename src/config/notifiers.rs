//! Checking `[[notifier]]` tables: the kind and its keys, retries, quiet hours, digests and
//! rate limits.

use std::ops::Range;
use std::time::Duration;

use toml::Spanned;

use super::email;
use super::problems::{Problems, positive_duration};
use super::raw::RawNotifier;
use super::secret::{Secrets, sensitive_header};
use super::{
    Desktop, Notifier, NotifierKind, QuietHours, QuietZone, RateLimit, RetryPolicy, Webhook,
    WebhookFormat,
};

/// One `[[notifier]]` under its name (whose uniqueness the caller checks); `None` when its kind
/// or the kind's own keys leave nothing to deliver through.
pub(super) fn notifier(
    name: String,
    raw: &RawNotifier,
    secrets: &mut Secrets,
    problems: &mut Problems,
) -> Option<Notifier> {
    let retry = retry_policy(raw, problems);
    let quiet = quiet_hours(raw, problems);
    let (digest, rate_limit) = batching(raw, problems);
    let kind = notifier_kind(raw, secrets, problems)?;
    Some(Notifier {
        name,
        kind,
        retry,
        quiet,
        digest,
        rate_limit,
    })
}

fn notifier_kind(
    raw: &RawNotifier,
    secrets: &mut Secrets,
    problems: &mut Problems,
) -> Option<NotifierKind> {
    let kind = raw.kind.get_ref().as_str();
    if KINDS.contains(&kind) {
        refuse_foreign_keys(raw, problems);
    }
    match kind {
        "stdout" => Some(NotifierKind::Stdout),
        "desktop" => desktop(raw, problems).map(NotifierKind::Desktop),
        "webhook" => webhook(raw, secrets, problems).map(NotifierKind::Webhook),
        "email" => email::email(raw, secrets, problems).map(NotifierKind::Email),
        other => {
            problems.add(
                raw.kind.span(),
                format!(
                    "unknown notifier kind `{other}` (expected \"stdout\", \"desktop\", \"webhook\" \
                     or \"email\")"
                ),
            );
            None
        }
    }
}

const KINDS: [&str; 4] = ["stdout", "desktop", "webhook", "email"];

/// A key as written (its span, if present) and the kinds that take it.
type ForeignKey<'a> = (&'a str, Option<Range<usize>>, &'a [&'a str]);

/// Keys that only other kinds take are refused, so a misplaced key is not ignored.
fn refuse_foreign_keys(raw: &RawNotifier, problems: &mut Problems) {
    fn at<T>(value: &Option<Spanned<T>>) -> Option<Range<usize>> {
        value.as_ref().map(Spanned::span)
    }
    let name = raw.name.get_ref();
    let kind = raw.kind.get_ref().as_str();
    let webhook: &[&str] = &["webhook"];
    let email: &[&str] = &["email"];
    let keys: [ForeignKey; 18] = [
        ("url", at(&raw.url), webhook),
        ("format", at(&raw.format), webhook),
        ("timeout", at(&raw.timeout), &["webhook", "email"]),
        ("secret", at(&raw.secret), webhook),
        ("method", at(&raw.method), webhook),
        ("headers", at(&raw.headers), webhook),
        ("template", at(&raw.template), webhook),
        ("content_type", at(&raw.content_type), webhook),
        ("chat_id", at(&raw.chat_id), webhook),
        ("open_with", at(&raw.open_with), &["desktop"]),
        ("smtp", at(&raw.smtp), email),
        ("tls", at(&raw.tls), email),
        ("tls_ca_file", at(&raw.tls_ca_file), email),
        ("username", at(&raw.username), email),
        ("password", at(&raw.password), email),
        ("sendmail", at(&raw.sendmail), email),
        ("from", at(&raw.from), email),
        ("to", at(&raw.to), email),
    ];
    for (key, span, kinds) in keys {
        if let Some(span) = span
            && !kinds.contains(&kind)
        {
            problems.add(
                span,
                format!(
                    "`{key}` applies to {} notifiers, not to `{kind}` (notifier `{name}`)",
                    kinds.join(" and ")
                ),
            );
        }
    }
}

fn desktop(raw: &RawNotifier, problems: &mut Problems) -> Option<Desktop> {
    let open_with = match &raw.open_with {
        Some(program) if program.get_ref().trim().is_empty() => {
            problems.add(
                program.span(),
                format!("`open_with` of `{}` is empty", raw.name.get_ref()),
            );
            return None;
        }
        Some(program) => program.get_ref().trim().to_string(),
        None => "xdg-open".to_string(),
    };
    Some(Desktop { open_with })
}

/// A webhook's keys; `None` when its address, timeout or secret is unusable.
fn webhook(raw: &RawNotifier, secrets: &mut Secrets, problems: &mut Problems) -> Option<Webhook> {
    let name = raw.name.get_ref();
    let url = webhook_url(raw, secrets, problems)?;
    let timeout = positive_duration(
        "timeout",
        raw.timeout.as_ref(),
        Duration::from_secs(15),
        problems,
    )?;
    let secret = match &raw.secret {
        Some(s) => Some(secrets.read(s, &format!("`secret` of `{name}`"), true, problems)?),
        None => None,
    };
    let format = raw
        .format
        .as_ref()
        .map_or(WebhookFormat::Json, |f| *f.get_ref());
    let method = webhook_method(raw, format, problems);
    let headers = webhook_headers(raw, secrets, problems);
    check_template(raw, format, problems);
    if raw.chat_id.is_none() && format == WebhookFormat::Telegram {
        problems.add(
            raw.kind.span(),
            format!("Telegram notifier `{name}` needs a `chat_id`"),
        );
    }
    Some(Webhook {
        url,
        format,
        timeout,
        secret,
        method,
        headers,
        template: raw.template.as_ref().map(|t| t.get_ref().clone()),
        content_type: raw
            .content_type
            .as_ref()
            .map_or_else(|| "application/json".to_string(), |c| c.get_ref().clone()),
        chat_id: raw.chat_id.as_ref().map(|c| c.get_ref().clone()),
    })
}

/// The webhook's address, which must be there and be http(s).
fn webhook_url(
    raw: &RawNotifier,
    secrets: &mut Secrets,
    problems: &mut Problems,
) -> Option<String> {
    let name = raw.name.get_ref();
    let Some(written) = &raw.url else {
        problems.add(
            raw.kind.span(),
            format!("webhook notifier `{name}` needs a `url`"),
        );
        return None;
    };
    // Chat services put their token in the address itself.
    let sensitive = raw.format.as_ref().is_some_and(|f| {
        !matches!(
            f.get_ref(),
            WebhookFormat::Json | WebhookFormat::Template | WebhookFormat::Ntfy
        )
    });
    let url = secrets.read(written, &format!("`url` of `{name}`"), sensitive, problems)?;
    match url::Url::parse(url.trim()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Some(u.to_string()),
        Ok(_) | Err(_) => {
            problems.add(
                written.span(),
                format!("webhook url of `{name}` must be an http(s) URL"),
            );
            None
        }
    }
}

/// `POST` unless set; Matrix sends with `PUT`, its transaction id in the URL.
fn webhook_method(raw: &RawNotifier, format: WebhookFormat, problems: &mut Problems) -> String {
    match &raw.method {
        None if format == WebhookFormat::Matrix => "PUT".to_string(),
        None => "POST".to_string(),
        Some(m) => {
            let upper = m.get_ref().to_ascii_uppercase();
            if !matches!(upper.as_str(), "POST" | "PUT" | "PATCH") {
                problems.add(
                    m.span(),
                    format!(
                        "method of `{}` must be POST, PUT or PATCH",
                        raw.name.get_ref()
                    ),
                );
            }
            upper
        }
    }
}

/// The extra headers that can go on the wire: a header with a bad name or a control character
/// in its value is reported and left out.
fn webhook_headers(
    raw: &RawNotifier,
    secrets: &mut Secrets,
    problems: &mut Problems,
) -> Vec<(String, String)> {
    let name = raw.name.get_ref();
    let mut headers = Vec::new();
    let Some(h) = &raw.headers else {
        return headers;
    };
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    for (key, value) in h.get_ref() {
        if key.is_empty() || !key.chars().all(token) {
            problems.add(
                h.span(),
                format!("header name `{key}` of `{name}` is not valid"),
            );
            continue;
        }
        let sensitive = sensitive_header(key);
        let what = format!("header `{key}` of `{name}`");
        let Some(value) = secrets.read(value, &what, sensitive, problems) else {
            continue;
        };
        if value.chars().any(|c| c.is_control()) {
            problems.add(
                h.span(),
                format!("header `{key}` of `{name}` holds a control character"),
            );
        } else {
            headers.push((key.clone(), value));
        }
    }
    headers
}

/// `template` goes with `format = "template"` and nothing else, and must compile.
fn check_template(raw: &RawNotifier, format: WebhookFormat, problems: &mut Problems) {
    let name = raw.name.get_ref();
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

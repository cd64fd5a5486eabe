//! A feed's HTTP options, in `[defaults]` or its own `[[feed]]`: `headers`, `user_agent`,
//! `cookie`, `username` and `password` (basic auth), `proxy` and `accept_invalid_certs`.
//!
//! A feed's own keys replace the defaults' (headers name by name). Header values, the cookie
//! and the proxy may be secrets (`{ credential = … }`, `{ file = … }`, `{ env = … }`); a
//! password must be one: written inline it is refused. Problems name the key, never its value.

use reqwest::header::{HeaderName, HeaderValue};
use toml::Spanned;

use super::problems::Problems;
use super::raw::{RawDefaults, RawFeed, RawHeaders};
use super::secret::{RawSecret, Secrets, sensitive_header};
use crate::fetch::{BasicAuth, Proxy, RequestOptions, Sensitive};

/// One table's HTTP keys as written.
pub(super) struct RawHttpKeys<'a> {
    headers: Option<&'a Spanned<RawHeaders>>,
    user_agent: Option<&'a Spanned<String>>,
    cookie: Option<&'a Spanned<RawSecret>>,
    username: Option<&'a Spanned<String>>,
    password: Option<&'a Spanned<RawSecret>>,
    proxy: Option<&'a Spanned<RawSecret>>,
    accept_invalid_certs: Option<bool>,
}

impl<'a> From<&'a RawDefaults> for RawHttpKeys<'a> {
    fn from(raw: &'a RawDefaults) -> Self {
        RawHttpKeys {
            headers: raw.headers.as_ref(),
            user_agent: raw.user_agent.as_ref(),
            cookie: raw.cookie.as_ref(),
            username: raw.username.as_ref(),
            password: raw.password.as_ref(),
            proxy: raw.proxy.as_ref(),
            accept_invalid_certs: raw.accept_invalid_certs,
        }
    }
}

impl<'a> From<&'a RawFeed> for RawHttpKeys<'a> {
    fn from(raw: &'a RawFeed) -> Self {
        RawHttpKeys {
            headers: raw.headers.as_ref(),
            user_agent: raw.user_agent.as_ref(),
            cookie: raw.cookie.as_ref(),
            username: raw.username.as_ref(),
            password: raw.password.as_ref(),
            proxy: raw.proxy.as_ref(),
            accept_invalid_certs: raw.accept_invalid_certs,
        }
    }
}

/// What one table says, checked; `None` (or empty) where it says nothing.
#[derive(Debug, Clone, Default)]
pub(super) struct HttpKeys {
    headers: Vec<(String, Sensitive)>,
    user_agent: Option<String>,
    cookie: Option<Sensitive>,
    basic_auth: Option<BasicAuth>,
    proxy: Option<Proxy>,
    accept_invalid_certs: Option<bool>,
}

/// Headers feedwatch sets itself, or that have a key of their own.
const OWN_HEADERS: [(&str, &str); 8] = [
    ("host", "is set by feedwatch"),
    ("content-length", "is set by feedwatch"),
    ("transfer-encoding", "is set by feedwatch"),
    ("connection", "is set by feedwatch"),
    ("if-none-match", "is set by feedwatch (conditional GET)"),
    ("if-modified-since", "is set by feedwatch (conditional GET)"),
    ("user-agent", "has a key of its own: `user_agent`"),
    ("cookie", "has a key of its own: `cookie`"),
];

/// Checks one table's HTTP keys; `owner` says whose they are ("feed `news`", "[defaults]").
pub(super) fn read(
    raw: RawHttpKeys,
    owner: &str,
    secrets: &mut Secrets,
    problems: &mut Problems,
) -> HttpKeys {
    let basic_auth = basic_auth(&raw, owner, secrets, problems);
    let headers = raw
        .headers
        .map(|h| headers(h, owner, basic_auth.is_some(), secrets, problems))
        .unwrap_or_default();
    let user_agent = raw.user_agent.and_then(|agent| {
        let text = agent.get_ref().trim();
        if text.is_empty() || HeaderValue::from_str(text).is_err() {
            problems.add(
                agent.span(),
                format!("`user_agent` of {owner} is empty or holds a control character"),
            );
            return None;
        }
        Some(text.to_string())
    });
    let cookie = raw.cookie.and_then(|cookie| {
        let value = secrets.read(cookie, &format!("`cookie` of {owner}"), true, problems)?;
        header_value(&value, cookie, &format!("`cookie` of {owner}"), problems)
    });
    let proxy = raw.proxy.and_then(|p| proxy(p, owner, secrets, problems));
    HttpKeys {
        headers,
        user_agent,
        cookie,
        basic_auth,
        proxy,
        accept_invalid_certs: raw.accept_invalid_certs,
    }
}

/// A feed's options: its own keys, else the defaults'. Credentials are bound to `url`'s origin.
pub(super) fn options(own: HttpKeys, defaults: &HttpKeys, url: &str) -> RequestOptions {
    let mut headers: Vec<(String, Sensitive)> = defaults
        .headers
        .iter()
        .filter(|(name, _)| {
            !own.headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(name))
        })
        .cloned()
        .collect();
    headers.extend(own.headers);
    RequestOptions {
        user_agent: own.user_agent.or_else(|| defaults.user_agent.clone()),
        headers,
        cookie: own.cookie.or_else(|| defaults.cookie.clone()),
        basic_auth: own.basic_auth.or_else(|| defaults.basic_auth.clone()),
        origin: url::Url::parse(url).ok().map(|u| u.origin()),
        proxy: own
            .proxy
            .or_else(|| defaults.proxy.clone())
            .unwrap_or_default(),
        accept_invalid_certs: own
            .accept_invalid_certs
            .or(defaults.accept_invalid_certs)
            .unwrap_or(false),
    }
}

fn headers(
    table: &Spanned<RawHeaders>,
    owner: &str,
    has_basic_auth: bool,
    secrets: &mut Secrets,
    problems: &mut Problems,
) -> Vec<(String, Sensitive)> {
    let mut headers = Vec::new();
    for (name, value) in table.get_ref() {
        let what = format!("header `{name}` of {owner}");
        let lower = name.to_ascii_lowercase();
        if HeaderName::from_bytes(name.as_bytes()).is_err() {
            problems.add(table.span(), format!("{what}: not a valid header name"));
            continue;
        }
        if let Some((_, why)) = OWN_HEADERS.iter().find(|(own, _)| *own == lower) {
            problems.add(table.span(), format!("{what} {why}"));
            continue;
        }
        if lower == "authorization" && has_basic_auth {
            problems.add(
                table.span(),
                format!("{what}: give either `username` and `password` or this header, not both"),
            );
            continue;
        }
        let Some(text) = secrets.read(value, &what, sensitive_header(name), problems) else {
            continue;
        };
        if let Some(value) = header_value(&text, value, &what, problems) {
            headers.push((name.clone(), value));
        }
    }
    headers
}

fn header_value<T>(
    text: &str,
    at: &Spanned<T>,
    what: &str,
    problems: &mut Problems,
) -> Option<Sensitive> {
    if HeaderValue::from_str(text).is_err() {
        problems.add(at.span(), format!("{what} holds a control character"));
        return None;
    }
    Some(Sensitive::new(text))
}

/// `username` with `password`, the password never inline.
fn basic_auth(
    raw: &RawHttpKeys,
    owner: &str,
    secrets: &mut Secrets,
    problems: &mut Problems,
) -> Option<BasicAuth> {
    match (raw.username, raw.password) {
        (None, None) => None,
        (Some(user), None) => {
            problems.add(
                user.span(),
                format!("`username` of {owner} needs a `password` too"),
            );
            None
        }
        (None, Some(password)) => {
            problems.add(
                password.span(),
                format!("`password` of {owner} needs a `username` too"),
            );
            None
        }
        (Some(user), Some(password)) => {
            let username = user.get_ref().trim();
            if username.is_empty()
                || username.contains(':')
                || username.chars().any(char::is_control)
            {
                problems.add(
                    user.span(),
                    format!(
                        "`username` of {owner} must not be empty, hold a `:` or a control \
                         character"
                    ),
                );
                return None;
            }
            if let RawSecret::Inline(_) = password.get_ref() {
                problems.add(
                    password.span(),
                    format!(
                        "`password` of {owner} is written in the config itself; say where to \
                         read it instead: password = {{ credential = \"NAME\" }}, \
                         {{ file = \"PATH\" }} or {{ env = \"VARIABLE\" }}"
                    ),
                );
                return None;
            }
            let password =
                secrets.read(password, &format!("`password` of {owner}"), true, problems)?;
            Some(BasicAuth {
                username: username.to_string(),
                password: Sensitive::new(password),
            })
        }
    }
}

/// `proxy = "socks5h://host:1080"` (or http, https, socks5), or `"none"` for no proxy even
/// when the environment names one. Its value is never repeated: it may hold credentials.
fn proxy(
    written: &Spanned<RawSecret>,
    owner: &str,
    secrets: &mut Secrets,
    problems: &mut Problems,
) -> Option<Proxy> {
    let sensitive = matches!(written.get_ref(), RawSecret::Inline(text) if text.contains('@'));
    let what = format!("`proxy` of {owner}");
    let text = secrets.read(written, &what, sensitive, problems)?;
    let text = text.trim();
    if text.eq_ignore_ascii_case("none") {
        return Some(Proxy::Direct);
    }
    let scheme_ok = |u: &url::Url| matches!(u.scheme(), "http" | "https" | "socks5" | "socks5h");
    match url::Url::parse(text) {
        Ok(u) if scheme_ok(&u) && u.host_str().is_some_and(|h| !h.is_empty()) => {
            Some(Proxy::Url(Sensitive::new(text)))
        }
        Ok(u) if !scheme_ok(&u) => {
            problems.add(
                written.span(),
                format!(
                    "{what}: scheme `{}` is not http, https, socks5 or socks5h",
                    u.scheme()
                ),
            );
            None
        }
        _ => {
            problems.add(
                written.span(),
                format!(
                    "{what} is not a proxy URL (such as \"http://proxy:3128\" or \
                     \"socks5h://127.0.0.1:1080\") or \"none\""
                ),
            );
            None
        }
    }
}

//! `[http]`: where the optional HTTP listener binds and the bearer token it asks for.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;

use toml::Spanned;

use super::problems::Problems;
use super::raw::RawHttp;

/// The HTTP listener: metrics, health, Atom feeds of matches and the status page.
#[derive(Debug, Clone, PartialEq)]
pub struct Http {
    pub listen: SocketAddr,
    /// Every request but the health checks must carry it; required beyond loopback.
    pub token: Option<HttpToken>,
}

/// A bearer token. Its `Debug` hides it, so that a logged config does not leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpToken(String);

impl HttpToken {
    /// Whether `offered` is the token, comparing in time that does not depend on where they
    /// differ, so the token cannot be guessed a byte at a time.
    pub fn matches(&self, offered: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), offered.as_bytes());
        let differ = a
            .iter()
            .zip(b)
            .fold(a.len() ^ b.len(), |acc, (x, y)| acc | usize::from(x ^ y));
        differ == 0
    }
}

impl fmt::Debug for HttpToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HttpToken(..)")
    }
}

/// Checks `[http]`; `None` (with the problems recorded) when it cannot be used.
pub(super) fn http(raw: &Spanned<RawHttp>, base: &Path, problems: &mut Problems) -> Option<Http> {
    let table = raw.get_ref();
    let listen = match table.listen.get_ref().trim().parse::<SocketAddr>() {
        Ok(addr) => Some(addr),
        Err(_) => {
            problems.add(
                table.listen.span(),
                format!(
                    "invalid listen address `{}` (expected an IP address and a port, such as \
                     \"127.0.0.1:9123\" or \"[::1]:9123\")",
                    table.listen.get_ref()
                ),
            );
            None
        }
    };
    let sources = [&table.token, &table.token_file, &table.token_env];
    if sources.iter().filter(|s| s.is_some()).count() > 1 {
        problems.add(
            raw.span(),
            "give the HTTP token one way only: `token_file`, `token_env` or `token`",
        );
        return None;
    }
    let token = if let Some(inline) = &table.token {
        non_empty(inline.get_ref().trim(), inline, "token", problems)
    } else if let Some(file) = &table.token_file {
        read_token_file(file, base, problems)
    } else if let Some(var) = &table.token_env {
        match std::env::var(var.get_ref()) {
            Ok(value) => non_empty(value.trim(), var, "token_env", problems),
            Err(_) => {
                problems.add(
                    var.span(),
                    format!(
                        "token_env: the environment variable `{}` is not set (or not UTF-8)",
                        var.get_ref()
                    ),
                );
                None
            }
        }
    } else {
        None
    };
    let listen = listen?;
    let has_token =
        table.token.is_some() || table.token_file.is_some() || table.token_env.is_some();
    if !listen.ip().is_loopback() && !has_token {
        problems.add(
            table.listen.span(),
            format!(
                "listening on {listen}, beyond this machine, needs a bearer token: set \
                 `token_file` (or `token_env`) in [http], or listen on 127.0.0.1"
            ),
        );
        return None;
    }
    if has_token && token.is_none() {
        return None;
    }
    Some(Http { listen, token })
}

fn non_empty(
    value: &str,
    at: &Spanned<String>,
    key: &str,
    problems: &mut Problems,
) -> Option<HttpToken> {
    if value.is_empty() {
        problems.add(at.span(), format!("{key}: the HTTP token is empty"));
        return None;
    }
    Some(HttpToken(value.to_string()))
}

/// The token in `file` (relative to the config's folder), without surrounding whitespace.
fn read_token_file(
    file: &Spanned<String>,
    base: &Path,
    problems: &mut Problems,
) -> Option<HttpToken> {
    let path = base.join(file.get_ref());
    match std::fs::read_to_string(&path) {
        Ok(text) => non_empty(text.trim(), file, "token_file", problems),
        Err(e) => {
            problems.add(
                file.span(),
                format!("token_file: cannot read {}: {e}", path.display()),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_matches_itself_only() {
        let token = HttpToken("s3cret".into());
        assert!(token.matches("s3cret"));
        assert!(!token.matches("s3cre"));
        assert!(!token.matches("s3cret "));
        assert!(!token.matches("S3cret"));
        assert!(!token.matches(""));
        assert_eq!(format!("{token:?}"), "HttpToken(..)");
    }
}

//! `[http]`: where the optional HTTP listener binds and the bearer token it asks for. The token
//! is a secret like a webhook's: inline, or `{ file = … }`, `{ credential = … }`, `{ env = … }`.

use std::fmt;
use std::net::SocketAddr;

use toml::Spanned;

use super::problems::Problems;
use super::raw::RawHttp;
use super::secret::Secrets;

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
pub(super) fn http(
    raw: &Spanned<RawHttp>,
    secrets: &mut Secrets,
    problems: &mut Problems,
) -> Option<Http> {
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
    let token = match &table.token {
        // A token that cannot be read is a problem of its own; the listener is unusable then.
        Some(written) => {
            let token = secrets.read(written, "`token` of [http]", true, problems)?;
            Some(HttpToken(token.trim().to_string()))
        }
        None => None,
    };
    let listen = listen?;
    if !listen.ip().is_loopback() && token.is_none() {
        problems.add(
            table.listen.span(),
            format!(
                "listening on {listen}, beyond this machine, needs a bearer token: set \
                 `token = {{ file = \"PATH\" }}` (or `{{ credential = \"NAME\" }}`, \
                 `{{ env = \"VARIABLE\" }}`) in [http], or listen on 127.0.0.1"
            ),
        );
        return None;
    }
    Some(Http { listen, token })
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

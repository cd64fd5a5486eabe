//! HTTP and `file://` -> bytes, politely.
//!
//! One [`Fetcher`] (one connection pool) serves the whole daemon. It sends the validators the
//! server gave last time (`If-None-Match`, `If-Modified-Since`, byte for byte), caps the body
//! *after* decompression while streaming, and reports what the server said about when to come
//! back (`Retry-After`).

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};

const USER_AGENT: &str = concat!(
    "feedwatch/",
    env!("CARGO_PKG_VERSION"),
    " (+https://github.com/feedwatch/feedwatch)"
);
const ACCEPT: &str = "application/rss+xml, application/atom+xml, application/feed+json, \
                      application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.5";

/// What the server said last time, to send back for a conditional GET.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// A successful fetch.
#[derive(Debug)]
pub enum Fetched {
    /// 304: nothing changed since the validators were issued.
    NotModified {
        validators: Validators,
    },
    Body(Body),
}

#[derive(Debug)]
pub struct Body {
    pub bytes: Vec<u8>,
    /// The `Content-Type` header, for its charset.
    pub content_type: Option<String>,
    /// Where the body came from after redirects: the base for relative links.
    pub final_url: String,
    pub validators: Validators,
    pub status: u16,
}

/// Why a feed could not be fetched. Each carries the URL it is about.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{url}: {message}")]
    Network { url: String, message: String },
    #[error("{url}: timed out after {seconds} s")]
    Timeout { url: String, seconds: u64 },
    #[error("{url}: HTTP {status}")]
    Status {
        url: String,
        status: u16,
        /// Set for 429 and 503 when the server said when to come back.
        retry_after: Option<DateTime<Utc>>,
    },
    #[error("{url}: body is larger than the limit of {limit} bytes (set `max_body` to raise it)")]
    TooLarge { url: String, limit: u64 },
    #[error("{path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl FetchError {
    /// The HTTP status, when the server answered at all.
    pub fn status(&self) -> Option<u16> {
        match self {
            FetchError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// For 429 and 503: the server is alive and asked for a pause; this is not the feed failing.
    pub fn retry_after(&self) -> Option<DateTime<Utc>> {
        match self {
            FetchError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

pub struct Fetcher {
    client: reqwest::Client,
    timeout: Duration,
}

impl Fetcher {
    pub fn new(timeout: Duration) -> Fetcher {
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(timeout)
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Fetcher { client, timeout }
    }

    /// Fetches `url` (http, https or file), sending `validators` for a conditional GET and
    /// refusing bodies larger than `max_body` bytes.
    pub async fn fetch(
        &self,
        url: &str,
        validators: &Validators,
        max_body: u64,
    ) -> Result<Fetched, FetchError> {
        if url.starts_with("file:") {
            return read_file(url, max_body).await;
        }
        let mut request = self.client.get(url).header(header::ACCEPT, ACCEPT);
        if let Some(etag) = &validators.etag {
            request = request.header(header::IF_NONE_MATCH, etag);
        }
        if let Some(modified) = &validators.last_modified {
            request = request.header(header::IF_MODIFIED_SINCE, modified);
        }
        let mut response = request.send().await.map_err(|e| self.network(url, e))?;
        let status = response.status();
        let headers = response.headers().clone();
        // Keep the old validators when the server sends none with a 304.
        let new_validators = Validators {
            etag: header_string(&headers, header::ETAG).or_else(|| validators.etag.clone()),
            last_modified: header_string(&headers, header::LAST_MODIFIED)
                .or_else(|| validators.last_modified.clone()),
        };
        if status == StatusCode::NOT_MODIFIED {
            return Ok(Fetched::NotModified {
                validators: new_validators,
            });
        }
        if !status.is_success() {
            let retry_after = matches!(
                status,
                StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
            )
            .then(|| retry_after(&headers, Utc::now()))
            .flatten();
            return Err(FetchError::Status {
                url: url.to_string(),
                status: status.as_u16(),
                retry_after,
            });
        }
        let too_large = || FetchError::TooLarge {
            url: url.to_string(),
            limit: max_body,
        };
        if response.content_length().is_some_and(|n| n > max_body) {
            return Err(too_large());
        }
        let final_url = response.url().to_string();
        let mut bytes = Vec::new();
        // Chunks arrive decompressed, so this cap also stops compression bombs.
        while let Some(chunk) = response.chunk().await.map_err(|e| self.network(url, e))? {
            if (bytes.len() + chunk.len()) as u64 > max_body {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Fetched::Body(Body {
            bytes,
            content_type: header_string(&headers, header::CONTENT_TYPE),
            final_url,
            validators: new_validators,
            status: status.as_u16(),
        }))
    }

    fn network(&self, url: &str, err: reqwest::Error) -> FetchError {
        if err.is_timeout() {
            return FetchError::Timeout {
                url: url.to_string(),
                seconds: self.timeout.as_secs(),
            };
        }
        FetchError::Network {
            url: url.to_string(),
            message: error_chain(&err),
        }
    }
}

async fn read_file(url: &str, max_body: u64) -> Result<Fetched, FetchError> {
    let path = url::Url::parse(url)
        .ok()
        .and_then(|u| u.to_file_path().ok())
        .unwrap_or_else(|| PathBuf::from(url.trim_start_matches("file://")));
    let file_error = |source| FetchError::File {
        path: path.clone(),
        source,
    };
    let meta = tokio::fs::metadata(&path).await.map_err(file_error)?;
    if meta.len() > max_body {
        return Err(FetchError::TooLarge {
            url: url.to_string(),
            limit: max_body,
        });
    }
    let bytes = tokio::fs::read(&path).await.map_err(file_error)?;
    Ok(Fetched::Body(Body {
        bytes,
        content_type: None,
        final_url: url.to_string(),
        validators: Validators::default(),
        status: 200,
    }))
}

fn header_string(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// `Retry-After` as seconds or as an HTTP date.
fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(now + chrono::Duration::seconds(seconds.min(7 * 24 * 3600) as i64));
    }
    DateTime::parse_from_rfc2822(value)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// reqwest's top-level message repeats the URL and says little ("error sending request"); the
/// useful part is the chain of causes below it, which often repeat each other too.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.retain(|p| !text.contains(p.as_str()));
            parts.push(text);
        }
        source = cause.source();
    }
    if parts.is_empty() {
        parts.push(err.to_string());
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_takes_seconds_and_dates() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let mut h = HeaderMap::new();
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("120"));
        assert_eq!(
            retry_after(&h, now),
            Some(now + chrono::Duration::seconds(120))
        );
        h.insert(
            header::RETRY_AFTER,
            HeaderValue::from_static("Thu, 01 Jan 2026 01:00:00 GMT"),
        );
        assert_eq!(
            retry_after(&h, now),
            Some(Utc.with_ymd_and_hms(2026, 1, 1, 1, 0, 0).unwrap())
        );
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h, now), None);
    }
}

//! Email: each alert, or each digest, as one mail with a plain-text and an HTML part, through
//! an SMTP server (implicit TLS or required STARTTLS, optional login) or the local `sendmail`.
//!
//! [`message`] builds the mail from plain values; sending is apart from it. The mail's
//! `Message-ID` comes from the delivery id, so a mail sent again after a failure or a crash
//! carries the same id as the first, and mail clients and archives can drop the repeat.
//! Feed text reaches a header only as one line (CR, LF and other control characters become
//! spaces), and lettre encodes what is not ASCII (RFC 2047), so a title cannot add headers.
//! Logs and errors name the server (`smtps://host:port`), never the password.

use std::path::Path;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::DeliveryError;
use super::digest::Digest;
use super::formats::{digest_heading, html_escape, html_headline, marked_snippet, url_safe};
use crate::alert::Alert;
use crate::config::{Email, MailTransport, Smtp, SmtpTls};

/// Alerts listed one by one in a digest mail; the rest are counted.
const DIGEST_ITEMS: usize = 200;

/// What a mail says, before it is addressed: its subject and its two bodies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Sends `alert` through email notifier `name`, configured as `email`.
pub async fn send(
    name: &str,
    email: &Email,
    alert: &Alert,
    delivery_id: &str,
) -> Result<(), DeliveryError> {
    let mail = alert_mail(alert, delivery_id);
    deliver(name, email, &mail, delivery_id).await
}

/// Sends `digest` as one mail, under the digest's delivery id.
pub async fn send_digest(name: &str, email: &Email, digest: &Digest) -> Result<(), DeliveryError> {
    let mail = digest_mail(digest);
    deliver(name, email, &mail, &digest.delivery_id).await
}

async fn deliver(
    name: &str,
    email: &Email,
    mail: &Mail,
    delivery_id: &str,
) -> Result<(), DeliveryError> {
    let message =
        message(email, mail, delivery_id, Utc::now()).map_err(|e| DeliveryError::Permanent {
            message: format!("email notifier `{name}` cannot build the mail: {e}"),
        })?;
    match &email.transport {
        MailTransport::Smtp(smtp) => send_smtp(smtp, email.timeout, message).await,
        MailTransport::Sendmail(program) => send_sendmail(program, email.timeout, &message).await,
    }
}

/// The whole mail: `mail` from `email.from` to `email.to`, dated `now`, with a `Message-ID`
/// made from `delivery_id` and the sender's domain.
pub fn message(
    email: &Email,
    mail: &Mail,
    delivery_id: &str,
    now: DateTime<Utc>,
) -> Result<Message, lettre::error::Error> {
    let mut builder = Message::builder()
        .from(email.from.clone())
        .subject(one_line(&mail.subject))
        .date(SystemTime::from(now))
        .message_id(Some(message_id(delivery_id, &email.from)))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("X-Feedwatch-Delivery"),
            id_safe(delivery_id),
        ))
        // RFC 3834: an automatic message, so vacation responders do not answer it.
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-generated".into(),
        ));
    for to in &email.to {
        builder = builder.to(to.clone());
    }
    builder.multipart(MultiPart::alternative_plain_html(
        mail.text.clone(),
        mail.html.clone(),
    ))
}

/// `<feedwatch.ID@sender-domain>`: the same delivery gives the same id on every attempt.
pub fn message_id(delivery_id: &str, from: &Mailbox) -> String {
    format!(
        "<feedwatch.{}@{}>",
        id_safe(delivery_id),
        from.email.domain()
    )
}

/// Only characters a `Message-ID`'s left part takes (delivery ids are hex and dashes anyway).
fn id_safe(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect()
}

/// Header text on one line: every run of whitespace or control characters becomes a space.
fn one_line(text: &str) -> String {
    text.split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// One alert: the title as subject; the link, the text around the matched words, the matched
/// terms, the rule and the feed in both bodies.
pub fn alert_mail(alert: &Alert, delivery_id: &str) -> Mail {
    let title = one_line(alert.title());
    let feed = feed_name(alert);
    let matched = alert.matched.join(", ");
    let published = alert
        .article
        .published
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string());

    let mut text = format!("{title}\n");
    if let Some(link) = &alert.article.link {
        text.push_str(&format!("{}\n", one_line(link)));
    }
    let excerpt = marked_snippet(alert, |t| t.to_string(), |t| format!("*{t}*"))
        .unwrap_or_else(|| alert.article.summary.clone());
    if !excerpt.is_empty() {
        text.push_str(&format!("\n{excerpt}\n"));
    }
    text.push_str(&format!("\nRule:      {}\n", alert.rule));
    if !matched.is_empty() {
        text.push_str(&format!("Matched:   {matched}\n"));
    }
    text.push_str(&format!("Feed:      {feed} <{}>\n", alert.feed.url));
    if let Some(published) = &published {
        text.push_str(&format!("Published: {published}\n"));
    }
    text.push_str(&format!("\n-- \nfeedwatch, delivery {delivery_id}\n"));

    let excerpt_html = marked_snippet(alert, html_escape, |t| {
        format!("<mark>{}</mark>", html_escape(t))
    })
    .unwrap_or_else(|| html_escape(&alert.article.summary));
    let mut rows = vec![("Rule", html_escape(&alert.rule))];
    if !matched.is_empty() {
        rows.push(("Matched", html_escape(&matched)));
    }
    rows.push(("Feed", link_or_text(&alert.feed.url, feed)));
    if let Some(published) = &published {
        rows.push(("Published", html_escape(published)));
    }
    let rows: String = rows
        .iter()
        .map(|(key, value)| {
            format!(
                "<tr><th align=\"left\" style=\"padding-right:1em\">{key}</th><td>{value}</td></tr>\n"
            )
        })
        .collect();
    let html = html_page(
        &title,
        &format!(
            "<p style=\"font-size:1.15em\"><strong>{}</strong></p>\n<p>{excerpt_html}</p>\n\
             <table>\n{rows}</table>\n<p style=\"color:#666;font-size:small\">feedwatch, delivery \
             {}</p>",
            html_headline(alert),
            html_escape(delivery_id)
        ),
    );
    Mail {
        subject: format!("[{}] {title}", alert.rule),
        text,
        html,
    }
}

/// A digest: a heading, then each alert's title, link, rule and matched terms.
pub fn digest_mail(digest: &Digest) -> Mail {
    let heading = digest_heading(digest);
    let mut text = format!("{heading}\n");
    let mut items = String::new();
    for (alert, _) in digest.alerts.iter().take(DIGEST_ITEMS) {
        text.push_str(&format!(
            "\n* [{}] {}\n",
            alert.rule,
            one_line(alert.title())
        ));
        if let Some(link) = &alert.article.link {
            text.push_str(&format!("  {}\n", one_line(link)));
        }
        let mut about = html_escape(&alert.rule);
        if !alert.matched.is_empty() {
            text.push_str(&format!("  matched: {}\n", alert.matched.join(", ")));
            about.push_str(&format!(
                "; matched: {}",
                html_escape(&alert.matched.join(", "))
            ));
        }
        items.push_str(&format!(
            "<li>{}<br><small>{about}</small></li>\n",
            html_headline(alert)
        ));
    }
    let more = digest.alerts.len().saturating_sub(DIGEST_ITEMS);
    if more > 0 {
        text.push_str(&format!("\n… and {more} more (see `feedwatch matches`)\n"));
        items.push_str(&format!("<li>… and {more} more</li>\n"));
    }
    text.push_str(&format!(
        "\n-- \nfeedwatch, delivery {}\n",
        digest.delivery_id
    ));
    let html = html_page(
        &heading,
        &format!(
            "<h2>{}</h2>\n<ul>\n{items}</ul>\n<p style=\"color:#666;font-size:small\">feedwatch, \
             delivery {}</p>",
            html_escape(&heading),
            html_escape(&digest.delivery_id)
        ),
    );
    Mail {
        subject: heading,
        text,
        html,
    }
}

fn feed_name(alert: &Alert) -> String {
    one_line(if alert.feed.title.is_empty() {
        &alert.feed.name
    } else {
        &alert.feed.title
    })
}

/// `text` as a link to `url` when it is http(s), else as text.
fn link_or_text(url: &str, text: String) -> String {
    match url_safe(url) {
        link if link.is_empty() => html_escape(&text),
        link => format!(
            "<a href=\"{}\">{}</a>",
            html_escape(&link),
            html_escape(&text)
        ),
    }
}

fn html_page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title></head>\n\
         <body style=\"font-family:sans-serif\">\n{body}\n</body></html>\n",
        html_escape(title)
    )
}

/// One connection per mail: alerts are few, and digests and rate limits fold floods.
async fn send_smtp(smtp: &Smtp, timeout: Duration, message: Message) -> Result<(), DeliveryError> {
    let address = smtp.address();
    let transport = smtp_transport(smtp, timeout).map_err(|e| DeliveryError::Permanent {
        message: format!("SMTP {address}: {}", chain(&e)),
    })?;
    match tokio::time::timeout(timeout, transport.send(message)).await {
        Err(_) => Err(DeliveryError::retryable(format!(
            "SMTP {address}: no answer within {} s",
            timeout.as_secs()
        ))),
        Ok(Ok(_)) => Ok(()),
        // A 5xx answer says the same mail will never be taken; anything else (4xx, no
        // connection, TLS) may pass later.
        Ok(Err(e)) if e.is_permanent() => Err(DeliveryError::Permanent {
            message: format!("SMTP {address} refused the mail: {}", chain(&e)),
        }),
        Ok(Err(e)) => Err(DeliveryError::retryable(format!(
            "SMTP {address}: {}",
            chain(&e)
        ))),
    }
}

fn smtp_transport(
    smtp: &Smtp,
    timeout: Duration,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, lettre::transport::smtp::Error> {
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host.as_str())
        .port(smtp.port)
        .timeout(Some(timeout));
    if smtp.tls != SmtpTls::None {
        let mut parameters = TlsParameters::builder(smtp.host.clone());
        if let Some(pem) = &smtp.extra_root {
            parameters = parameters.add_root_certificate(Certificate::from_pem(pem)?);
        }
        let parameters = parameters.build()?;
        builder = builder.tls(match smtp.tls {
            SmtpTls::Implicit => Tls::Wrapper(parameters),
            SmtpTls::StartTls | SmtpTls::None => Tls::Required(parameters),
        });
    }
    if let Some((user, password)) = &smtp.login {
        builder = builder.credentials(Credentials::new(
            user.clone(),
            password.expose().to_string(),
        ));
    }
    Ok(builder.build())
}

/// Hands the mail to a `sendmail`-compatible program: `-i` (a lone dot is no end), `-f` the
/// sender, the recipients after `--`, the message on stdin with Unix line ends.
async fn send_sendmail(
    program: &Path,
    timeout: Duration,
    message: &Message,
) -> Result<(), DeliveryError> {
    use tokio::io::AsyncWriteExt;
    let shown = program.display();
    let envelope = message.envelope();
    let mut command = tokio::process::Command::new(program);
    command.arg("-i");
    if let Some(from) = envelope.from() {
        command.arg("-f").arg(from);
    }
    command
        .arg("--")
        .args(envelope.to().iter().map(ToString::to_string))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .map_err(|e| DeliveryError::retryable(format!("cannot run sendmail {shown}: {e}")))?;
    let body = unix_line_ends(&message.formatted());
    let run = async {
        let written = match child.stdin.take() {
            Some(mut stdin) => stdin.write_all(&body).await,
            None => Ok(()),
        };
        (written, child.wait_with_output().await)
    };
    // On timeout the child is dropped, and so killed.
    let Ok((written, output)) = tokio::time::timeout(timeout, run).await else {
        return Err(DeliveryError::retryable(format!(
            "sendmail {shown} did not finish within {} s",
            timeout.as_secs()
        )));
    };
    let output =
        output.map_err(|e| DeliveryError::retryable(format!("sendmail {shown} failed: {e}")))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    let said = crate::alert::truncate(&one_line(&stderr), 300);
    let said = if said.is_empty() {
        String::new()
    } else {
        format!(": {said}")
    };
    match output.status.code() {
        Some(0) => written.map_err(|e| {
            DeliveryError::retryable(format!("sendmail {shown} did not read the mail: {e}"))
        }),
        // sysexits.h: EX_OSERR, EX_IOERR, EX_TEMPFAIL are worth another try; the rest
        // (no such user, bad address, config) are not. Killed by a signal: try again.
        Some(code @ (71 | 74 | 75)) => Err(DeliveryError::retryable(format!(
            "sendmail {shown} exited with status {code}{said}"
        ))),
        Some(code) => Err(DeliveryError::Permanent {
            message: format!("sendmail {shown} exited with status {code}{said}"),
        }),
        None => Err(DeliveryError::retryable(format!(
            "sendmail {shown} was killed{said}"
        ))),
    }
}

/// CRLF to LF: local mail programs take the machine's line ends.
fn unix_line_ends(crlf: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(crlf.len());
    for (i, &byte) in crlf.iter().enumerate() {
        if !(byte == b'\r' && crlf.get(i + 1) == Some(&b'\n')) {
            out.push(byte);
        }
    }
    out
}

/// An error and its causes, each said once (lettre repeats "Connection error: " in its cause).
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in text.split(": ") {
        if parts.last() != Some(&part) {
            parts.push(part);
        }
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch::Sensitive;

    fn email() -> Email {
        Email {
            from: "feedwatch <alerts@example.org>".parse().unwrap(),
            to: vec![
                "me@example.net".parse().unwrap(),
                "Ops Team <ops@example.net>".parse().unwrap(),
            ],
            transport: MailTransport::Smtp(Smtp {
                host: "mail.example.org".into(),
                port: 465,
                tls: SmtpTls::Implicit,
                login: Some(("alerts".into(), Sensitive::new("hunter2"))),
                extra_root: None,
            }),
            timeout: Duration::from_secs(30),
        }
    }

    fn alert(title: &str) -> Alert {
        let mut alert = crate::notify::test_alert(Utc::now());
        alert.rule = "ukraine".into();
        alert.article.title = title.into();
        alert.matched = vec!["Україна".into(), "NATO".into()];
        alert
    }

    fn raw(title: &str) -> String {
        let mail = alert_mail(&alert(title), "0123abcd");
        let message = message(&email(), &mail, "0123abcd", Utc::now()).unwrap();
        String::from_utf8(message.formatted()).unwrap()
    }

    /// The header block, folded lines joined.
    fn headers(raw: &str) -> Vec<String> {
        let (head, _) = raw.split_once("\r\n\r\n").unwrap();
        let mut lines: Vec<String> = Vec::new();
        for line in head.split("\r\n") {
            match lines.last_mut() {
                Some(last) if line.starts_with([' ', '\t']) => last.push_str(line),
                _ => lines.push(line.to_string()),
            }
        }
        lines
    }

    #[test]
    fn mail_is_multipart_text_and_html_with_an_id_from_the_delivery() {
        let raw = raw("NATO summit opens");
        let headers = headers(&raw);
        let has = |prefix: &str| headers.iter().any(|h| h.starts_with(prefix));
        assert!(has("Subject: [ukraine] NATO summit opens"), "{headers:?}");
        assert!(
            has("Message-ID: <feedwatch.0123abcd@example.org>"),
            "{headers:?}"
        );
        assert!(has("X-Feedwatch-Delivery: 0123abcd"), "{headers:?}");
        assert!(has("Auto-Submitted: auto-generated"), "{headers:?}");
        assert!(has("From: feedwatch <alerts@example.org>"), "{headers:?}");
        assert!(
            has("To: me@example.net, \"Ops Team\" <ops@example.net>"),
            "{headers:?}"
        );
        assert!(has("Content-Type: multipart/alternative"), "{headers:?}");
        assert!(raw.contains("Content-Type: text/plain; charset=utf-8"));
        assert!(raw.contains("Content-Type: text/html; charset=utf-8"));
        // The password is no part of the mail, and the same delivery gives the same id.
        assert!(!raw.contains("hunter2"));
        assert_eq!(
            message_id("0123abcd", &email().from),
            "<feedwatch.0123abcd@example.org>"
        );
    }

    #[test]
    fn bodies_carry_link_matched_terms_and_escaped_text() {
        let mail = alert_mail(&alert("<b>Bold</b> & more"), "d1");
        assert!(
            mail.text
                .contains("https://example.org/feedwatch-test?a=1&b=2")
        );
        assert!(
            mail.text.contains("Matched:   Україна, NATO"),
            "{}",
            mail.text
        );
        assert!(mail.text.contains("<b>Bold</b> & more"), "{}", mail.text);
        assert!(mail.text.contains("the *notifier* is"), "{}", mail.text);
        assert!(
            mail.html
                .contains("<a href=\"https://example.org/feedwatch-test?a=1&amp;b=2\">"),
            "{}",
            mail.html
        );
        assert!(mail.html.contains("&lt;b&gt;Bold&lt;/b&gt; &amp; more"));
        assert!(!mail.html.contains("<b>Bold"));
        assert!(mail.html.contains("<mark>notifier</mark>"), "{}", mail.html);
        assert!(mail.html.contains("Україна, NATO"));
    }

    #[test]
    fn non_ascii_titles_are_encoded_words_and_headers_stay_ascii() {
        let raw = raw("Київ: «саміт» NATO — 2026");
        let (head, _) = raw.split_once("\r\n\r\n").unwrap();
        assert!(head.is_ascii(), "{head}");
        let subject = headers(&raw)
            .into_iter()
            .find(|h| h.starts_with("Subject: "))
            .unwrap();
        assert!(subject.contains("=?utf-8?b?"), "{subject}");
        for line in head.split("\r\n") {
            assert!(line.len() <= 998, "{line}");
        }
    }

    #[test]
    fn a_title_with_cr_lf_cannot_add_headers() {
        let raw = raw("Breaking\r\nBcc: victim@example.com\r\nX-Injected: yes\nSubject: fake");
        let headers = headers(&raw);
        for forbidden in ["Bcc:", "X-Injected:", "Subject: fake"] {
            assert!(
                !headers.iter().any(|h| h.starts_with(forbidden)),
                "{forbidden} in {headers:?}"
            );
        }
        let subjects: Vec<&String> = headers
            .iter()
            .filter(|h| h.starts_with("Subject:"))
            .collect();
        assert_eq!(subjects.len(), 1, "{headers:?}");
        assert!(
            subjects[0].starts_with(
                "Subject: [ukraine] Breaking Bcc: victim@example.com X-Injected: yes Subject: fake"
            ),
            "{subjects:?}"
        );
        // The mail goes to the configured recipients only.
        let message = message(
            &email(),
            &alert_mail(&alert("a\r\nBcc: victim@example.com"), "d"),
            "d",
            Utc::now(),
        )
        .unwrap();
        let to: Vec<String> = message
            .envelope()
            .to()
            .iter()
            .map(|a| a.to_string())
            .collect();
        assert_eq!(to, ["me@example.net", "ops@example.net"]);
    }

    #[test]
    fn a_digest_is_one_mail_listing_every_alert() {
        let now = Utc::now();
        let digest = Digest {
            delivery_id: "digest-42".into(),
            alerts: vec![
                (alert("First"), "a".into()),
                (alert("Second <story>"), "b".into()),
            ],
            created_at: now,
        };
        let mail = digest_mail(&digest);
        assert_eq!(mail.subject, "feedwatch: 2 new matches");
        assert!(mail.text.contains("* [ukraine] First\n"), "{}", mail.text);
        assert!(mail.text.contains("* [ukraine] Second <story>\n"));
        assert!(mail.html.contains("Second &lt;story&gt;"), "{}", mail.html);
        assert_eq!(mail.html.matches("<li>").count(), 2);
        let raw = message(&email(), &mail, &digest.delivery_id, now).unwrap();
        let raw = String::from_utf8(raw.formatted()).unwrap();
        assert!(raw.contains("Message-ID: <feedwatch.digest-42@example.org>"));
    }

    #[test]
    fn an_error_chain_says_each_part_once() {
        let io = std::io::Error::other("Connection error: invalid peer certificate");
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "Connection error: {}", self.0)
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        assert_eq!(
            chain(&Outer(io)),
            "Connection error: invalid peer certificate"
        );
    }

    #[test]
    fn sendmail_gets_unix_line_ends() {
        assert_eq!(unix_line_ends(b"a\r\nb\r\n\rc\n"), b"a\nb\n\rc\n");
    }

    #[test]
    fn the_password_never_shows_in_debug_output() {
        let shown = format!("{:?}", email());
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("Sensitive(..)"));
    }
}

//! Checking an email notifier's keys: where mail goes (`smtp` or `sendmail`), how it is
//! protected and logged in, and who it is from and to.

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::Mailbox;
use toml::Spanned;

use super::problems::{Problems, positive_duration};
use super::raw::RawNotifier;
use super::secret::{RawSecret, Secrets};
use super::{Email, MailTransport, Smtp, SmtpTls};
use crate::fetch::Sensitive;

/// The email notifier `raw`; `None` when a key leaves it nothing to send with.
pub(super) fn email(
    raw: &RawNotifier,
    secrets: &mut Secrets,
    problems: &mut Problems,
) -> Option<Email> {
    let name = raw.name.get_ref();
    let from = from(raw, problems);
    let to = to(raw, problems);
    let timeout = positive_duration(
        "timeout",
        raw.timeout.as_ref(),
        Duration::from_secs(30),
        problems,
    );
    let transport = match (&raw.smtp, &raw.sendmail) {
        (Some(_), Some(sendmail)) => {
            problems.add(
                sendmail.span(),
                format!("email notifier `{name}` has both `smtp` and `sendmail`: choose one"),
            );
            None
        }
        (Some(url), None) => smtp(raw, url, secrets, problems).map(MailTransport::Smtp),
        (None, Some(program)) => sendmail(raw, program, secrets, problems),
        (None, None) => {
            problems.add(
                raw.kind.span(),
                format!(
                    "email notifier `{name}` needs `smtp` (a server, e.g. \
                     \"smtps://mail.example.org\") or `sendmail` (a local program, e.g. \
                     \"/usr/sbin/sendmail\")"
                ),
            );
            None
        }
    };
    Some(Email {
        from: from?,
        to: to?,
        transport: transport?,
        timeout: timeout?,
    })
}

fn from(raw: &RawNotifier, problems: &mut Problems) -> Option<Mailbox> {
    let name = raw.name.get_ref();
    let Some(from) = &raw.from else {
        problems.add(
            raw.kind.span(),
            format!(
                "email notifier `{name}` needs `from`, e.g. \"feedwatch <alerts@example.org>\""
            ),
        );
        return None;
    };
    mailbox(
        from.get_ref(),
        &format!("`from` of `{name}`"),
        from,
        problems,
    )
}

fn to(raw: &RawNotifier, problems: &mut Problems) -> Option<Vec<Mailbox>> {
    let name = raw.name.get_ref();
    let Some(to) = &raw.to else {
        problems.add(
            raw.kind.span(),
            format!("email notifier `{name}` needs `to`, e.g. [\"me@example.org\"]"),
        );
        return None;
    };
    let items = to.get_ref().items();
    if items.is_empty() {
        problems.add(to.span(), format!("`to` of `{name}` is empty"));
        return None;
    }
    let what = format!("`to` of `{name}`");
    let found: Vec<Option<Mailbox>> = items
        .iter()
        .map(|item| mailbox(item, &what, to, problems))
        .collect();
    found.into_iter().collect()
}

/// An address such as `me@example.org` or `Me <me@example.org>`.
fn mailbox<T>(text: &str, what: &str, at: &Spanned<T>, problems: &mut Problems) -> Option<Mailbox> {
    match text.trim().parse::<Mailbox>() {
        Ok(mailbox) => Some(mailbox),
        Err(e) => {
            problems.add(
                at.span(),
                format!("{what}: `{text}` is not a mail address ({e})"),
            );
            None
        }
    }
}

/// `smtp = "smtps://[user@]host[:port]"` with `tls`, `tls_ca_file`, `username` and `password`.
fn smtp(
    raw: &RawNotifier,
    written: &Spanned<String>,
    secrets: &mut Secrets,
    problems: &mut Problems,
) -> Option<Smtp> {
    let name = raw.name.get_ref();
    let bad = |problems: &mut Problems, why: &str| {
        problems.add(
            written.span(),
            format!(
                "`smtp` of `{name}` {why} (expected e.g. \"smtps://mail.example.org\" for TLS \
                 or \"smtp://mail.example.org:587\" for STARTTLS)"
            ),
        );
    };
    let url = match url::Url::parse(written.get_ref().trim()) {
        Ok(url) => url,
        Err(e) => {
            bad(problems, &format!("is not a URL: {e}"));
            return None;
        }
    };
    let implicit = match url.scheme() {
        "smtps" => true,
        "smtp" => false,
        other => {
            bad(problems, &format!("has scheme `{other}`"));
            return None;
        }
    };
    let host = match url.host() {
        Some(url::Host::Domain(domain)) if !domain.is_empty() => domain.to_string(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        _ => {
            bad(problems, "names no server");
            return None;
        }
    };
    if url.password().is_some() {
        problems.add(
            written.span(),
            format!(
                "`smtp` of `{name}` holds a password: put it in `password` instead, read from a \
                 file, a credential or the environment (e.g. password = {{ file = \"smtp-password\" }})"
            ),
        );
        return None;
    }
    if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
        bad(problems, "has more than a server and port");
        return None;
    }
    let tls = tls(raw, implicit, problems)?;
    let port = url.port().unwrap_or(match tls {
        SmtpTls::Implicit => 465,
        SmtpTls::StartTls => 587,
        SmtpTls::None => 25,
    });
    let login = login(raw, &url, tls, secrets, problems)?;
    let extra_root = match &raw.tls_ca_file {
        Some(path) => Some(ca_file(name, path, secrets, problems)?),
        None => None,
    };
    Some(Smtp {
        host,
        port,
        tls,
        login,
        extra_root,
    })
}

/// `tls`, defaulting to what the scheme says; only `smtp://` may turn TLS off.
fn tls(raw: &RawNotifier, implicit: bool, problems: &mut Problems) -> Option<SmtpTls> {
    let from_scheme = if implicit {
        SmtpTls::Implicit
    } else {
        SmtpTls::StartTls
    };
    let Some(written) = &raw.tls else {
        return Some(from_scheme);
    };
    let chosen = match written.get_ref().as_str() {
        "implicit" => SmtpTls::Implicit,
        "starttls" => SmtpTls::StartTls,
        "none" => SmtpTls::None,
        other => {
            problems.add(
                written.span(),
                format!(
                    "tls `{other}` of `{}` is not \"starttls\", \"implicit\" or \"none\"",
                    raw.name.get_ref()
                ),
            );
            return None;
        }
    };
    let fits = chosen == from_scheme || (chosen == SmtpTls::None && !implicit);
    if !fits {
        problems.add(
            written.span(),
            format!(
                "tls `{}` of `{}` contradicts its `smtp` scheme (smtps:// is implicit TLS, \
                 smtp:// is STARTTLS or, with tls = \"none\", clear text)",
                written.get_ref(),
                raw.name.get_ref()
            ),
        );
        return None;
    }
    Some(chosen)
}

/// The user (from `username` or the URL) and password; `Some(None)` for no login.
fn login(
    raw: &RawNotifier,
    url: &url::Url,
    tls: SmtpTls,
    secrets: &mut Secrets,
    problems: &mut Problems,
) -> Option<Option<(String, Sensitive)>> {
    let name = raw.name.get_ref();
    // `alerts%40example.org` in the URL is the user `alerts@example.org`.
    let in_url = percent_encoding::percent_decode_str(url.username())
        .decode_utf8_lossy()
        .into_owned();
    let user = match (&raw.username, in_url.is_empty()) {
        (Some(user), false) => {
            problems.add(
                user.span(),
                format!("`{name}` names its user both in `smtp` and in `username`: keep one"),
            );
            return None;
        }
        (Some(user), true) => Some((user.get_ref().clone(), user.span())),
        (None, false) => raw.smtp.as_ref().map(|s| (in_url, s.span())),
        (None, true) => None,
    };
    match (user, &raw.password) {
        (None, None) => Some(None),
        (Some((_, at)), None) => {
            problems.add(
                at,
                format!(
                    "`{name}` has a user but no `password` (e.g. password = {{ credential = \
                     \"smtp-password\" }})"
                ),
            );
            None
        }
        (None, Some(password)) => {
            problems.add(
                password.span(),
                format!("`{name}` has a `password` but no user (`username`)"),
            );
            None
        }
        (Some(_), Some(password)) if tls == SmtpTls::None => {
            problems.add(
                password.span(),
                format!(
                    "`{name}` would send its password in clear text: tls = \"none\" takes no login"
                ),
            );
            None
        }
        (Some(_), Some(password)) if matches!(password.get_ref(), RawSecret::Inline(_)) => {
            problems.add(
                password.span(),
                format!(
                    "`password` of `{name}` is written in the config itself; say where to read \
                     it instead: password = {{ credential = \"NAME\" }}, {{ file = \"PATH\" }} \
                     or {{ env = \"VARIABLE\" }}"
                ),
            );
            None
        }
        (Some((user, _)), Some(password)) => {
            let what = format!("`password` of `{name}`");
            let password = secrets.read(password, &what, true, problems)?;
            Some(Some((user, Sensitive::new(password))))
        }
    }
}

/// The PEM file `tls_ca_file`, read now so `check` reports a missing or unusable one.
fn ca_file(
    name: &str,
    path: &Spanned<String>,
    secrets: &Secrets,
    problems: &mut Problems,
) -> Option<Vec<u8>> {
    let full = secrets.config_dir().join(path.get_ref());
    let pem = match std::fs::read(&full) {
        Ok(pem) => pem,
        Err(e) => {
            problems.add(
                path.span(),
                format!(
                    "`tls_ca_file` of `{name}`: cannot read {}: {e}",
                    full.display()
                ),
            );
            return None;
        }
    };
    if let Err(e) = lettre::transport::smtp::client::Certificate::from_pem(&pem) {
        problems.add(
            path.span(),
            format!(
                "`tls_ca_file` of `{name}`: {} holds no PEM certificate ({e})",
                full.display()
            ),
        );
        return None;
    }
    Some(pem)
}

/// `sendmail = "/usr/sbin/sendmail"`; the SMTP keys make no sense beside it.
fn sendmail(
    raw: &RawNotifier,
    program: &Spanned<String>,
    secrets: &Secrets,
    problems: &mut Problems,
) -> Option<MailTransport> {
    let name = raw.name.get_ref();
    let smtp_only = [
        ("tls", raw.tls.as_ref().map(Spanned::span)),
        ("tls_ca_file", raw.tls_ca_file.as_ref().map(Spanned::span)),
        ("username", raw.username.as_ref().map(Spanned::span)),
        ("password", raw.password.as_ref().map(Spanned::span)),
    ];
    for (key, span) in smtp_only {
        if let Some(span) = span {
            problems.add(
                span,
                format!("`{key}` of `{name}` goes with `smtp`, not with `sendmail`"),
            );
        }
    }
    let text = program.get_ref().trim();
    if text.is_empty() {
        problems.add(program.span(), format!("`sendmail` of `{name}` is empty"));
        return None;
    }
    // A bare name is looked up in PATH when sending; a relative path starts at the config.
    let program = if text.contains('/') {
        secrets.config_dir().join(text)
    } else {
        PathBuf::from(text)
    };
    Some(MailTransport::Sendmail(program))
}

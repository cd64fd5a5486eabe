//! `feedwatch check`: validate the config and show what was understood.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use feedwatch::config::{Config, Email, MailTransport, NotifierKind, SmtpTls};
use feedwatch::fetch::{Proxy, RequestOptions};

pub fn check(path: &Path) -> Result<ExitCode> {
    let config = Config::load(path)?;
    println!("{}: OK", path.display());
    println!("database: {}", config.database.display());
    println!("{} feed(s):", config.feeds.len());
    for feed in &config.feeds {
        println!("  {}  {}  ({})", feed.name, feed.url, feed.schedule);
        if let Some(http) = http_summary(&feed.http) {
            println!("    http: {http}");
        }
        if feed.http.accept_invalid_certs {
            println!("    warning: {INVALID_CERTS_WARNING}");
        }
    }
    println!("{} rule(s):", config.rules.len());
    for rule in &config.rules {
        let terms: Vec<&str> = rule
            .query
            .terms()
            .iter()
            .map(|t| t.source.as_str())
            .collect();
        println!(
            "  {}  terms: {}  -> {}",
            rule.name,
            terms.join(", "),
            if rule.notify.is_empty() {
                "(stored only)".to_string()
            } else {
                rule.notify.join(", ")
            }
        );
    }
    println!("{} notifier(s):", config.notifiers.len());
    for n in &config.notifiers {
        let what = match &n.kind {
            NotifierKind::Stdout => "stdout".to_string(),
            NotifierKind::Desktop(_) => "desktop".to_string(),
            NotifierKind::Webhook(hook) => format!(
                "webhook ({:?}) {}",
                hook.format,
                feedwatch::notify::webhook::redact(&hook.url)
            ),
            NotifierKind::Email(email) => email_summary(email),
        };
        println!("  {}  {what}", n.name);
        let folds = n.digest.is_some() || n.rate_limit.is_some() || n.quiet.is_some();
        if let Some(why) = folds
            .then(|| feedwatch::notify::cannot_send_digests(n))
            .flatten()
        {
            println!(
                "    warning: its template cannot render a digest ({why}); its alerts go out \
                 one by one. Branch on `type` (\"alert\" or \"digest\") to send digests."
            );
        }
    }
    match &config.http {
        Some(http) => println!(
            "http: listening on http://{}/ ({})",
            http.listen,
            if http.token.is_some() {
                "bearer token required"
            } else {
                "no token, loopback only"
            }
        ),
        None => println!("http: off"),
    }
    warn_of_readable_secrets(path, &config.inline_secrets);
    Ok(ExitCode::SUCCESS)
}

/// What `accept_invalid_certs = true` costs, said wherever a feed has it.
pub const INVALID_CERTS_WARNING: &str = "accept_invalid_certs = true: its TLS certificate is not \
     checked, so anyone between feedwatch and its server can read and change what it serves";

/// A feed's request options in a line, secrets left out: header names but not their values,
/// the proxy without its credentials.
fn http_summary(http: &RequestOptions) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(agent) = &http.user_agent {
        parts.push(format!("user agent \"{agent}\""));
    }
    if !http.headers.is_empty() {
        let names: Vec<&str> = http.headers.iter().map(|(n, _)| n.as_str()).collect();
        parts.push(format!("headers {}", names.join(", ")));
    }
    if http.cookie.is_some() {
        parts.push("a cookie".into());
    }
    if let Some(auth) = &http.basic_auth {
        parts.push(format!("basic auth as {}", auth.username));
    }
    if http.proxy != Proxy::Environment {
        parts.push(format!("proxy {}", http.proxy.shown()));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// `email smtps://mail.example.org:465 (TLS, login alerts) -> me@example.org`, and a warning
/// when the `sendmail` program is not there. Never the password.
fn email_summary(email: &Email) -> String {
    let to: Vec<String> = email.to.iter().map(ToString::to_string).collect();
    let via = match &email.transport {
        MailTransport::Smtp(smtp) => {
            let tls = match smtp.tls {
                SmtpTls::Implicit => "TLS",
                SmtpTls::StartTls => "STARTTLS",
                SmtpTls::None => "no TLS",
            };
            let login = match &smtp.login {
                Some((user, _)) => format!(", login {user}"),
                None => String::new(),
            };
            format!("{} ({tls}{login})", smtp.address())
        }
        MailTransport::Sendmail(program) => {
            let found = if program.components().count() > 1 {
                program.is_file()
            } else {
                std::env::var_os("PATH").is_some_and(|path| {
                    std::env::split_paths(&path).any(|d| d.join(program).is_file())
                })
            };
            format!(
                "sendmail {}{}",
                program.display(),
                if found { "" } else { " (warning: not found)" }
            )
        }
    };
    format!("email {via} from {} -> {}", email.from, to.join(", "))
}

/// A config others can read should not hold secrets itself; the file/credential/env forms keep
/// them out of it.
fn warn_of_readable_secrets(path: &Path, inline: &[String]) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    if inline.is_empty() || meta.permissions().mode() & 0o044 == 0 {
        return;
    }
    println!(
        "warning: {} is readable by other users and holds {} inline; move {} to a file \
         (`{{ file = \"PATH\" }}`, `{{ credential = \"NAME\" }}` or `{{ env = \"VAR\" }}`) or \
         `chmod 600` the config",
        path.display(),
        inline.join(", "),
        if inline.len() == 1 { "it" } else { "them" }
    );
}

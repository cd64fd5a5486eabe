use super::*;
use crate::matcher::Accents;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("/etc/feedwatch/config.toml"))
}

fn problems(text: &str) -> Vec<String> {
    match parse(text) {
        Err(ConfigError::Invalid { problems, .. }) => problems
            .into_iter()
            .map(|p| format!("{}:{} {}", p.line, p.column, p.message))
            .collect(),
        Err(other) => vec![other.to_string()],
        Ok(_) => vec![],
    }
}

#[test]
fn full_config_is_understood() {
    let config = parse(
        r#"
database = "data/fw.db"
[defaults]
interval = "20m"

[[feed]]
url = "https://example.org/rss.xml"
name = "Example"

[[feed]]
url = "local/feed.xml"
cron = "*/15 * * * *"
timezone = "Europe/Berlin"

[[rule]]
name = "ukraine"
query = 'Ukraine OR NATO'
notify = ["hook", "console"]

[[notifier]]
name = "hook"
kind = "webhook"
url = "http://127.0.0.1:9/hook"
format = "slack"

[[notifier]]
name = "console"
kind = "stdout"
"#,
    )
    .unwrap();
    assert_eq!(config.database, Path::new("/etc/feedwatch/data/fw.db"));
    assert_eq!(config.feeds[0].name, "Example");
    assert_eq!(
        config.feeds[0].schedule,
        Schedule::Interval(Duration::from_secs(1200))
    );
    assert_eq!(config.feeds[1].url, "file:///etc/feedwatch/local/feed.xml");
    assert!(matches!(config.feeds[1].schedule, Schedule::Cron { .. }));
    assert_eq!(config.rules[0].notify, ["hook", "console"]);
    assert!(matches!(
        &config.notifiers[0].kind,
        NotifierKind::Webhook(Webhook {
            format: WebhookFormat::Slack,
            ..
        })
    ));
}

#[test]
fn unknown_key_is_reported_with_position() {
    let err = parse("[[feed]]\nurl = \"http://x.org/\"\nintervall = \"5m\"\n").unwrap_err();
    let text = err.to_string();
    assert!(text.contains("line 3"), "{text}");
    assert!(text.contains("intervall"), "{text}");
}

#[test]
fn all_semantic_problems_are_reported_together() {
    let found = problems(
        r#"[[feed]]
url = "http://a.org/"
interval = "soon"

[[rule]]
name = "r"
query = "NATO"
notify = ["nobody"]

[[rule]]
name = "r"
query = "x"
"#,
    );
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(
        found[0].starts_with("3:12 invalid interval `soon`"),
        "{found:?}"
    );
    assert!(
        found[1].starts_with("8:11 rule `r` notifies `nobody`"),
        "{found:?}"
    );
    assert!(
        found[2].starts_with("11:8 duplicate rule name `r`"),
        "{found:?}"
    );
}

#[test]
fn query_error_points_into_the_query() {
    let found = problems("[[rule]]\nname = \"r\"\nquery = 'NATO AND'\n");
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("3:"), "{found:?}");
    assert!(found[0].contains("rule `r`"), "{found:?}");
}

#[test]
fn rule_accents_option_is_exact_or_ignore() {
    let config = parse("[[rule]]\nname = \"r\"\nquery = 'café'\naccents = \"exact\"\n").unwrap();
    assert_eq!(config.rules[0].query.terms()[0].accents, Accents::Exact);
    let config = parse("[[rule]]\nname = \"r\"\nquery = 'café'\n").unwrap();
    assert_eq!(config.rules[0].query.terms()[0].accents, Accents::Ignore);
    let found = problems("[[rule]]\nname = \"r\"\nquery = 'x'\naccents = \"strict\"\n");
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("4:11 rule `r`: accents"), "{found:?}");
}

#[test]
fn full_text_is_a_flag_or_auto_and_feeds_inherit_it() {
    let config = parse(
        "[defaults]\nfull_text = \"auto\"\n[[feed]]\nurl = \"http://a.org/\"\n\
         [[feed]]\nurl = \"http://b.org/\"\nfull_text = true\n\
         [[feed]]\nurl = \"http://c.org/\"\nfull_text = false\n",
    )
    .unwrap();
    let modes: Vec<FullText> = config.feeds.iter().map(|f| f.full_text).collect();
    assert_eq!(modes, [FullText::Auto, FullText::Always, FullText::Off]);
    let plain = parse("[[feed]]\nurl = \"http://a.org/\"\n").unwrap();
    assert_eq!(plain.feeds[0].full_text, FullText::Off);
    let found = problems("[[feed]]\nurl = \"http://a.org/\"\nfull_text = \"always\"\n");
    assert_eq!(
        found,
        ["3:13 invalid full_text `always` (true, false or \"auto\")"]
    );
}

#[test]
fn too_short_interval_and_bad_cron_are_rejected() {
    let found = problems(
        "[[feed]]\nurl = \"http://a.org/\"\ninterval = \"1s\"\n[[feed]]\nurl = \"http://b.org/\"\ncron = \"61 * * * *\"\n",
    );
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].contains("shorter than the minimum"));
    assert!(found[1].contains("invalid cron expression"));
}

#[test]
fn webhook_needs_url_and_stdout_refuses_one() {
    let found = problems(
        "[[notifier]]\nname = \"a\"\nkind = \"webhook\"\n[[notifier]]\nname = \"b\"\nkind = \"stdout\"\nurl = \"http://x/\"\n",
    );
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].contains("needs a `url`"));
    assert!(found[1].contains("applies to webhook notifiers"));
}

#[test]
fn webhook_secret_and_retry_policy_are_read() {
    let config = parse(
            "[[notifier]]\nname = \"a\"\nkind = \"webhook\"\nurl = \"http://x/\"\n\
             secret = \"k\"\nretry_delay = \"2s\"\nretry_max_delay = \"10s\"\ngive_up_after = \"1h\"\n",
        )
        .unwrap();
    let n = &config.notifiers[0];
    assert!(matches!(&n.kind, NotifierKind::Webhook(Webhook { secret: Some(k), .. }) if k == "k"));
    assert_eq!(n.retry.first_delay, Duration::from_secs(2));
    assert_eq!(n.retry.max_delay, Duration::from_secs(10));
    assert_eq!(n.retry.give_up_after, Duration::from_secs(3600));
    let found = problems(
        "[[notifier]]\nname = \"b\"\nkind = \"stdout\"\nsecret = \"k\"\ngive_up_after = \"never\"\n",
    );
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[0].starts_with("5:17 invalid give_up_after `never`"),
        "{found:?}"
    );
    assert!(
        found[1].contains("`secret` applies to webhook notifiers"),
        "{found:?}"
    );
}

#[test]
fn quiet_hours_are_checked() {
    let config = parse(
            "[[notifier]]\nname = \"a\"\nkind = \"stdout\"\nquiet = \"22:00-07:00\"\nquiet_timezone = \"Europe/Berlin\"\n",
        )
        .unwrap();
    let quiet = config.notifiers[0].quiet.as_ref().unwrap();
    assert_eq!(quiet.zone, QuietZone::Named(chrono_tz::Europe::Berlin));
    let found = problems(
        "[[notifier]]\nname = \"a\"\nkind = \"stdout\"\nquiet = \"late\"\n\
             [[notifier]]\nname = \"b\"\nkind = \"stdout\"\nquiet = \"1:00-2:00\"\nquiet_timezone = \"Mars/Base\"\n",
    );
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].contains("quiet hours `late` of `a`"), "{found:?}");
    assert!(
        found[1].contains("unknown time zone `Mars/Base`"),
        "{found:?}"
    );
}

#[test]
fn digest_and_rate_limit_are_read_and_checked() {
    let config = parse(
            "[[notifier]]\nname = \"a\"\nkind = \"stdout\"\ndigest = \"1h\"\n\
             [[notifier]]\nname = \"b\"\nkind = \"desktop\"\nrate_limit = \"5/min\"\nopen_with = \"firefox\"\n",
        )
        .unwrap();
    assert_eq!(config.notifiers[0].digest, Some(Duration::from_secs(3600)));
    assert_eq!(
        config.notifiers[1].rate_limit,
        Some(RateLimit {
            count: 5,
            per: Duration::from_secs(60)
        })
    );
    assert_eq!(
        config.notifiers[1].kind,
        NotifierKind::Desktop(Desktop {
            open_with: "firefox".into()
        })
    );
    let found = problems(
        "[[notifier]]\nname = \"a\"\nkind = \"stdout\"\nrate_limit = \"5 per minute\"\n\
             [[notifier]]\nname = \"b\"\nkind = \"stdout\"\ndigest = \"soon\"\n\
             [[notifier]]\nname = \"c\"\nkind = \"stdout\"\ndigest = \"1h\"\nrate_limit = \"1/h\"\nopen_with = \"x\"\n",
    );
    assert_eq!(found.len(), 4, "{found:?}");
    assert!(found[0].starts_with("4:14 "), "{found:?}");
    assert!(
        found[0].contains("rate_limit `5 per minute` of `a`"),
        "{found:?}"
    );
    assert!(found[1].contains("invalid digest `soon`"), "{found:?}");
    assert!(
        found[2].contains("both `digest` and `rate_limit`"),
        "{found:?}"
    );
    assert!(
        found[3].contains("`open_with` applies to desktop"),
        "{found:?}"
    );
}

#[test]
fn rate_limits_take_a_count_and_a_window() {
    let limit = |text| parse_rate_limit(text).map(|l| (l.count, l.per.as_secs()));
    assert_eq!(limit("5/min"), Some((5, 60)));
    assert_eq!(limit(" 10 / hour "), Some((10, 3600)));
    assert_eq!(limit("1/s"), Some((1, 1)));
    assert_eq!(limit("20/10m"), Some((20, 600)));
    assert_eq!(limit("0/min"), None);
    assert_eq!(limit("5"), None);
    assert_eq!(limit("5/fortnight"), None);
    assert_eq!(limit("5/500ms"), None);
}

#[test]
fn rule_feeds_take_feed_names_and_tags() {
    let config = parse(
        r#"
[[feed]]
name = "A"
url = "http://a.org/"
tags = ["europe"]
[[feed]]
name = "B"
url = "http://b.org/"
tags = ["europe", "wire"]
[[feed]]
name = "C"
url = "http://c.org/"
[[rule]]
name = "r"
query = "NATO"
feeds = ["europe", "C"]
"#,
    )
    .unwrap();
    assert_eq!(config.rules[0].feeds, ["A", "B", "C"]);
    let found = problems(
        "[[feed]]\nurl = \"http://a.org/\"\n[[rule]]\nname = \"r\"\nquery = \"x\"\nfeeds = [\"nowhere\"]\n",
    );
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("no [[feed]] has that name or tag"),
        "{found:?}"
    );
}

#[test]
fn byte_sizes() {
    assert_eq!(parse_byte_size("10MB"), Some(10_000_000));
    assert_eq!(parse_byte_size("512 KiB"), Some(512 * 1024));
    assert_eq!(parse_byte_size("42"), Some(42));
    assert_eq!(parse_byte_size("ten"), None);
}

#[test]
fn the_http_listener_is_off_unless_asked_for() {
    assert_eq!(parse("").unwrap().http, None);
    let config = parse("[http]\nlisten = \"127.0.0.1:9123\"\n").unwrap();
    let http = config.http.unwrap();
    assert_eq!(http.listen, "127.0.0.1:9123".parse().unwrap());
    assert_eq!(http.token, None);
}

#[test]
fn a_listener_beyond_loopback_without_a_token_is_refused() {
    let found = problems("[http]\nlisten = \"0.0.0.0:9123\"\n");
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("2:10 listening on 0.0.0.0:9123"),
        "{found:?}"
    );
    assert!(found[0].contains("token = { file"), "{found:?}");
    assert!(problems("[http]\nlisten = \"[::]:9123\"\n")[0].contains("bearer token"));
}

#[test]
fn the_http_token_is_a_secret_read_like_a_webhooks() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "from-file\n").unwrap();
    let config_path = dir.path().join("config.toml");
    let text = "[http]\nlisten = \"0.0.0.0:9123\"\ntoken = { file = \"token\" }\n";
    let config = Config::parse(text, &config_path).unwrap();
    assert!(config.http.unwrap().token.unwrap().matches("from-file"));
    assert!(config.inline_secrets.is_empty());

    let missing = "[http]\nlisten = \"0.0.0.0:9123\"\ntoken = { file = \"absent\" }\n";
    let err = Config::parse(missing, &config_path)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`token` of [http]: cannot read secret file"),
        "{err}"
    );
    assert!(
        !err.contains("needs a bearer token"),
        "one problem, not two: {err}"
    );

    let unset =
        "[http]\nlisten = \"0.0.0.0:9123\"\ntoken = { env = \"FEEDWATCH_TEST_TOKEN_NEVER_SET\" }\n";
    assert!(problems(unset)[0].contains("FEEDWATCH_TEST_TOKEN_NEVER_SET is not set"));

    let inline = parse("[http]\nlisten = \"0.0.0.0:9123\"\ntoken = \"inline\"\n").unwrap();
    assert!(inline.http.unwrap().token.unwrap().matches("inline"));
    assert_eq!(inline.inline_secrets, ["`token` of [http]"]);
}

#[test]
fn a_listen_address_must_be_an_ip_and_a_port() {
    let found = problems("[http]\nlisten = \"localhost\"\n");
    assert!(
        found[0].contains("invalid listen address `localhost`"),
        "{found:?}"
    );
}

#[test]
fn a_config_under_etc_names_the_system_services_database() {
    // Under systemd the unit's STATE_DIRECTORY decides; an administrator's shell has none.
    if std::env::var_os("STATE_DIRECTORY").is_some() {
        return;
    }
    let config = parse("").unwrap();
    assert_eq!(
        config.database,
        Path::new(SYSTEM_STATE_DIR).join("feedwatch.db")
    );
    let elsewhere = Config::parse("", Path::new("/srv/news/config.toml")).unwrap();
    assert_eq!(elsewhere.database, Path::new("/srv/news/feedwatch.db"));
}

#[test]
fn feed_http_options_take_the_defaults_and_replace_them_key_by_key() {
    let config = parse(
        r#"
[defaults]
user_agent = "Bot/1"
headers = { X-Api-Key = "default-key", Accept-Language = "en" }
proxy = "socks5h://127.0.0.1:1080"

[[feed]]
url = "https://a.example/rss.xml"
headers = { x-api-key = "own-key" }
proxy = "none"
accept_invalid_certs = true

[[feed]]
url = "https://b.example/rss.xml"
"#,
    )
    .unwrap();
    let (a, b) = (&config.feeds[0].http, &config.feeds[1].http);
    let headers = |h: &crate::fetch::RequestOptions| -> Vec<(String, String)> {
        h.headers
            .iter()
            .map(|(n, v)| (n.clone(), v.expose().to_string()))
            .collect()
    };
    assert_eq!(
        headers(a),
        [
            ("Accept-Language".to_string(), "en".to_string()),
            ("x-api-key".to_string(), "own-key".to_string())
        ]
    );
    assert_eq!(a.proxy, crate::fetch::Proxy::Direct);
    assert!(a.accept_invalid_certs);
    assert_eq!(a.user_agent.as_deref(), Some("Bot/1"));
    assert_eq!(
        a.origin,
        Some(url::Url::parse("https://a.example/").unwrap().origin())
    );
    assert_eq!(headers(b).len(), 2);
    assert_eq!(b.proxy.shown(), "socks5h://127.0.0.1:1080");
    assert!(!b.accept_invalid_certs);
    // Nothing secret in a printed config.
    assert!(!format!("{config:?}").contains("default-key"));
}

#[test]
fn bad_feed_http_options_are_reported_without_their_values() {
    let found = problems(
        r#"
[[feed]]
url = "https://a.example/rss.xml"
username = "alice"
proxy = "ftp://user:hunter2@proxy.example"
headers = { Host = "x", "Bad Name" = "x", User-Agent = "x" }

[[feed]]
url = "https://b.example/rss.xml"
password = { env = "FW_TEST_NOT_SET" }
proxy = "not a url hunter2"
"#,
    );
    let text = found.join("\n");
    assert!(!text.contains("hunter2"), "{text}");
    for expected in [
        "`username` of feed `https://a.example/rss.xml` needs a `password` too",
        "scheme `ftp` is not http, https, socks5 or socks5h",
        "header `Host` of feed `https://a.example/rss.xml` is set by feedwatch",
        "header `Bad Name` of feed `https://a.example/rss.xml`: not a valid header name",
        "header `User-Agent` of feed `https://a.example/rss.xml` has a key of its own: `user_agent`",
        "`password` of feed `https://b.example/rss.xml` needs a `username` too",
        "is not a proxy URL",
    ] {
        assert!(text.contains(expected), "{expected}\n{text}");
    }
}

#[test]
fn email_over_smtp_reads_server_tls_login_and_addresses() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("smtp-password"), "s3cret\n").unwrap();
    let text = r#"
[[notifier]]
name = "mail"
kind = "email"
smtp = "smtps://alerts%40example.org@mail.example.org"
password = { file = "smtp-password" }
from = "feedwatch <alerts@example.org>"
to = ["me@example.net", "Ops <ops@example.net>"]
timeout = "20s"

[[notifier]]
name = "relay"
kind = "email"
smtp = "smtp://127.0.0.1:2525"
tls = "none"
from = "feedwatch@localhost"
to = "root@localhost"

[[notifier]]
name = "submission"
kind = "email"
smtp = "smtp://[::1]"
username = "me"
password = { env = "FW_TEST_NEVER_SET_SO_IT_FAILS" }
from = "a@b.org"
to = "c@d.org"
"#;
    let found = match Config::parse(text, &dir.path().join("config.toml")) {
        Err(ConfigError::Invalid { problems, .. }) => problems,
        other => panic!("{other:?}"),
    };
    // Only the unset variable is wrong, and its message names the variable, not a value.
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0]
            .message
            .contains("FW_TEST_NEVER_SET_SO_IT_FAILS is not set"),
        "{found:?}"
    );
    let text = text.replace(
        "password = { env = \"FW_TEST_NEVER_SET_SO_IT_FAILS\" }",
        "password = { file = \"smtp-password\" }",
    );
    let config = Config::parse(&text, &dir.path().join("config.toml")).unwrap();
    let NotifierKind::Email(mail) = &config.notifiers[0].kind else {
        panic!("{:?}", config.notifiers[0]);
    };
    let MailTransport::Smtp(smtp) = &mail.transport else {
        panic!("{mail:?}");
    };
    assert_eq!(smtp.address(), "smtps://mail.example.org:465");
    assert_eq!(smtp.tls, SmtpTls::Implicit);
    assert_eq!(
        smtp.login,
        Some((
            "alerts@example.org".into(),
            crate::fetch::Sensitive::new("s3cret")
        ))
    );
    assert_eq!(mail.from.to_string(), "feedwatch <alerts@example.org>");
    assert_eq!(mail.to.len(), 2);
    assert_eq!(mail.timeout, Duration::from_secs(20));
    let NotifierKind::Email(relay) = &config.notifiers[1].kind else {
        panic!();
    };
    assert!(matches!(&relay.transport, MailTransport::Smtp(s)
        if s.tls == SmtpTls::None && s.port == 2525 && s.login.is_none()));
    let NotifierKind::Email(submission) = &config.notifiers[2].kind else {
        panic!();
    };
    assert!(matches!(&submission.transport, MailTransport::Smtp(s)
        if s.tls == SmtpTls::StartTls && s.port == 587 && s.address() == "smtp://[::1]:587"));
    // A password read from a file is no inline secret.
    assert!(
        config.inline_secrets.is_empty(),
        "{:?}",
        config.inline_secrets
    );
}

#[test]
fn email_problems_are_all_reported_with_their_place() {
    let found = problems(
        r#"
[[notifier]]
name = "a"
kind = "email"
smtp = "smtps://user:pw@mail.example.org"
from = "not an address"
to = []

[[notifier]]
name = "b"
kind = "email"
smtp = "smtp://mail.example.org"
sendmail = "/usr/sbin/sendmail"
from = "a@b.org"
to = "c@d.org"

[[notifier]]
name = "c"
kind = "email"
from = "a@b.org"
to = "c@d.org"

[[notifier]]
name = "d"
kind = "email"
smtp = "smtp://mail.example.org"
tls = "none"
username = "u"
password = "p"
from = "a@b.org"
to = "c@d.org"
url = "http://x/"

[[notifier]]
name = "e"
kind = "stdout"
smtp = "smtp://mail.example.org"
to = "c@d.org"

[[notifier]]
name = "f"
kind = "email"
smtp = "smtps://mail.example.org"
username = "u"
password = "hunter2"
from = "a@b.org"
to = "c@d.org"
"#,
    );
    let expect = [
        "6:8 `from` of `a`: `not an address` is not a mail address",
        "7:6 `to` of `a` is empty",
        "5:8 `smtp` of `a` holds a password",
        "13:12 email notifier `b` has both `smtp` and `sendmail`",
        "19:8 email notifier `c` needs `smtp`",
        "32:7 `url` applies to webhook notifiers, not to `email` (notifier `d`)",
        "29:12 `d` would send its password in clear text",
        "37:8 `smtp` applies to email notifiers, not to `stdout` (notifier `e`)",
        "38:6 `to` applies to email notifiers, not to `stdout` (notifier `e`)",
        "45:12 `password` of `f` is written in the config itself; say where to read it",
    ];
    for (found, expected) in found.iter().zip(expect) {
        assert!(found.starts_with(expected), "{found:?} is not {expected:?}");
    }
    assert_eq!(found.len(), expect.len(), "{found:?}");
    assert!(!found.join("\n").contains("hunter2"), "{found:?}");
}

#[test]
fn email_through_sendmail_refuses_smtp_keys() {
    let config = parse(
        "[[notifier]]\nname = \"m\"\nkind = \"email\"\nsendmail = \"sendmail\"\nfrom = \"a@b.org\"\nto = \"c@d.org\"\n",
    )
    .unwrap();
    let NotifierKind::Email(mail) = &config.notifiers[0].kind else {
        panic!();
    };
    assert_eq!(
        mail.transport,
        MailTransport::Sendmail(PathBuf::from("sendmail"))
    );
    let config = parse(
        "[[notifier]]\nname = \"m\"\nkind = \"email\"\nsendmail = \"bin/sendmail\"\nfrom = \"a@b.org\"\nto = \"c@d.org\"\n",
    )
    .unwrap();
    let NotifierKind::Email(mail) = &config.notifiers[0].kind else {
        panic!();
    };
    assert_eq!(
        mail.transport,
        MailTransport::Sendmail(PathBuf::from("/etc/feedwatch/bin/sendmail"))
    );
    let found = problems(
        "[[notifier]]\nname = \"m\"\nkind = \"email\"\nsendmail = \"sendmail\"\nusername = \"u\"\nfrom = \"a@b.org\"\nto = \"c@d.org\"\n",
    );
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("5:12 `username` of `m` goes with `smtp`"),
        "{found:?}"
    );
}

#[test]
fn rules_are_found_by_name() {
    let rules: String = (0..50)
        .map(|i| {
            format!(
                "[[rule]]\nname = \"rule-{i}\"\nquery = 'word{i}'\ncooldown = \"{}m\"\n",
                i + 1
            )
        })
        .collect();
    let config = parse(&rules).unwrap();
    for i in [0, 17, 49] {
        let rule = config.rule(&format!("rule-{i}")).unwrap();
        assert_eq!(rule.name, format!("rule-{i}"));
        assert_eq!(rule.cooldown, Some(Duration::from_secs(60 * (i + 1))));
    }
    assert!(config.rule("rule-50").is_none());
    assert!(config.clone().rule("rule-3").is_some());
    assert!(Config::empty(Path::new("c.toml")).rule("rule-3").is_none());
}

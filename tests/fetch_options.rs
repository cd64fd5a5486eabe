//! A feed's own HTTP options against local servers that demand them: headers, user agent,
//! cookie, basic auth, timeout, proxies (HTTP and SOCKS5, from the config and from the
//! environment) and a self-signed certificate. Secrets must never show in what feedwatch prints.

mod common;

use base64::Engine;

use common::{Output, Route, TestServer, Workspace, rss};

const API_KEY: &str = "k3y-9f8e7d6c5b4a";
const PASSWORD: &str = "pa55-w0rd-1a2b3c";
const COOKIE: &str = "session=c00kie-7x7x7x";
const AGENT: &str = "NewsBot/2.0 (+ops@news.example)";

fn items() -> Vec<u8> {
    rss(
        "Private",
        &[("p1", "First", "one"), ("p2", "Second", "two")],
    )
    .into_bytes()
}

fn basic(user: &str, password: &str) -> String {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {token}")
}

/// The strings that must never appear in anything feedwatch prints.
fn secrets() -> Vec<String> {
    vec![
        API_KEY.into(),
        PASSWORD.into(),
        "c00kie-7x7x7x".into(),
        basic("alice", PASSWORD)["Basic ".len()..].to_string(),
    ]
}

#[track_caller]
fn assert_no_secret(what: &str, out: &Output) {
    for secret in secrets() {
        assert!(
            !out.stdout.contains(&secret) && !out.stderr.contains(&secret),
            "{what} shows a secret ({secret}):\nstdout:\n{}\nstderr:\n{}",
            out.stdout,
            out.stderr
        );
    }
}

fn feed_column<T: rusqlite::types::FromSql>(ws: &Workspace, name: &str, column: &str) -> T {
    let conn = rusqlite::Connection::open(ws.db()).unwrap();
    conn.query_row(
        &format!("SELECT {column} FROM feeds WHERE name = ?1"),
        [name],
        |r| r.get(0),
    )
    .unwrap()
}

fn articles_of(ws: &Workspace, name: &str) -> i64 {
    let conn = rusqlite::Connection::open(ws.db()).unwrap();
    conn.query_row(
        "SELECT count(*) FROM articles a JOIN feeds f ON f.id = a.feed_id WHERE f.name = ?1",
        [name],
        |r| r.get(0),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_feed_behind_headers_agent_cookie_and_basic_auth_is_fetched_and_no_secret_shows() {
    let site = TestServer::start().await;
    site.route(
        "/private.xml",
        Route::Guarded {
            require: vec![
                ("x-api-key", API_KEY.into()),
                ("user-agent", AGENT.into()),
                ("cookie", COOKIE.into()),
                ("authorization", basic("alice", PASSWORD)),
            ],
            body: items(),
        },
    );
    let config = format!(
        r#"[defaults]
user_agent = "{AGENT}"
headers = {{ X-Api-Key = {{ env = "FW_TEST_API_KEY" }}, Accept-Language = "en" }}

[[feed]]
name = "Private"
url = "{private}"
cookie = {{ file = "cookie.txt" }}
username = "alice"
password = {{ credential = "news-password" }}

[[feed]]
name = "Anonymous"
url = "{anonymous}"
"#,
        private = site.url("/private.xml"),
        anonymous = site.url("/private.xml?anonymous"),
    );
    let ws = Workspace::new(&config);
    std::fs::write(ws.path("cookie.txt"), format!("{COOKIE}\n")).unwrap();
    std::fs::create_dir(ws.path("credentials")).unwrap();
    std::fs::write(ws.path("credentials/news-password"), PASSWORD).unwrap();
    let env = [("FW_TEST_API_KEY", API_KEY)];

    let run = common::feedwatch(&ws.config(), &["run", "--once"], &env).await;
    assert_no_secret("run --once", &run);
    assert_eq!(feed_column::<i64>(&ws, "Private", "last_status"), 200);
    assert_eq!(articles_of(&ws, "Private"), 2);
    // The defaults' header and agent alone do not open the door.
    assert_eq!(feed_column::<i64>(&ws, "Anonymous", "last_status"), 401);
    assert_eq!(articles_of(&ws, "Anonymous"), 0);
    let requests = site.requests("/private.xml");
    assert_eq!(requests.len(), 2);
    let anonymous: Vec<_> = requests
        .iter()
        .filter(|h| h.get("authorization").is_none())
        .collect();
    assert_eq!(anonymous.len(), 1);
    assert!(anonymous[0].get("cookie").is_none());
    assert_eq!(anonymous[0]["x-api-key"], API_KEY);
    assert_eq!(anonymous[0]["accept-language"], "en");
    assert_eq!(anonymous[0]["user-agent"], AGENT);

    for args in [&["feeds"][..], &["feeds", "--json"], &["check"]] {
        let out = common::feedwatch(&ws.config(), args, &env).await;
        out.assert_ok();
        assert_no_secret(&args.join(" "), &out);
    }
    let check = common::feedwatch(&ws.config(), &["check"], &env).await;
    check
        .assert_stdout_has(format!("user agent \"{AGENT}\""))
        .assert_stdout_has("headers Accept-Language, X-Api-Key; a cookie; basic auth as alice");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_inline_password_is_refused_and_a_missing_secret_named_without_values() {
    let ws = Workspace::new(&format!(
        r#"[[feed]]
name = "Private"
url = "https://news.example/feed.xml"
username = "alice"
password = "{PASSWORD}"

[[feed]]
name = "Keyed"
url = "https://news.example/other.xml"
headers = {{ Authorization = {{ env = "FW_TEST_UNSET_TOKEN" }} }}
cookie = {{ file = "no-such-cookie" }}
"#
    ));
    let out = ws.run(&["check"]).await;
    assert_ne!(out.code, Some(0));
    assert_no_secret("check", &out);
    out.assert_stderr_has("`password` of feed `Private` is written in the config itself")
        .assert_stderr_has(
            r#"password = { credential = "NAME" }, { file = "PATH" } or { env = "VARIABLE" }"#,
        )
        .assert_stderr_has("FW_TEST_UNSET_TOKEN is not set")
        .assert_stderr_has("no-such-cookie");
}

#[tokio::test(flavor = "multi_thread")]
async fn headers_cookie_and_credentials_do_not_follow_a_redirect_to_another_host() {
    let site = TestServer::start().await;
    // Same server, another origin: `localhost` is not `127.0.0.1` to a browser or to feedwatch.
    let elsewhere = format!("http://localhost:{}/elsewhere.xml", site.addr.port());
    site.route(
        "/start.xml",
        Route::Redirect {
            status: 302,
            to: elsewhere,
        },
    );
    site.page("/elsewhere.xml", "application/rss+xml", items());
    let ws = Workspace::new(&format!(
        r#"[[feed]]
name = "Moving"
url = "{}"
user_agent = "{AGENT}"
headers = {{ X-Api-Key = {{ env = "FW_TEST_API_KEY" }} }}
cookie = {{ env = "FW_TEST_COOKIE" }}
username = "alice"
password = {{ env = "FW_TEST_PASSWORD" }}
"#,
        site.url("/start.xml")
    ));
    let env = [
        ("FW_TEST_API_KEY", API_KEY),
        ("FW_TEST_COOKIE", COOKIE),
        ("FW_TEST_PASSWORD", PASSWORD),
    ];
    let run = common::feedwatch(&ws.config(), &["run", "--once"], &env).await;
    assert_no_secret("run --once", &run);
    assert_eq!(articles_of(&ws, "Moving"), 2);

    let first = &site.requests("/start.xml")[0];
    assert_eq!(first["x-api-key"], API_KEY);
    assert_eq!(first["cookie"], COOKIE);
    assert_eq!(first["authorization"], basic("alice", PASSWORD).as_str());
    let second = &site.requests("/elsewhere.xml")[0];
    for name in ["x-api-key", "cookie", "authorization"] {
        assert!(second.get(name).is_none(), "{name} went to another host");
    }
    // The user agent is no secret: every hop carries it.
    assert_eq!(second["user-agent"], AGENT);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_feeds_own_timeout_replaces_the_default() {
    let site = TestServer::start().await;
    site.route(
        "/slow.xml",
        Route::Slow {
            delay: std::time::Duration::from_secs(4),
            body: items(),
        },
    );
    let ws = Workspace::new(&format!(
        r#"[defaults]
timeout = "30s"

[[feed]]
name = "Slow"
url = "{}"
timeout = "1s"
"#,
        site.url("/slow.xml")
    ));
    ws.run(&["run", "--once"]).await;
    let error: String = feed_column(&ws, "Slow", "last_error");
    assert!(error.contains("timed out after 1 s"), "{error}");
}

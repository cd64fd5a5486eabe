//! The HTTP listener end to end: the real daemon with `[http]`, polled feeds and a webhook on
//! a local server, scraped and read back with real parsers.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{ConfigBuilder, Daemon, TestServer, Workspace, rss, wait_until};

/// The address the daemon says it listens on, once it says so.
async fn listening_at(daemon: &Daemon) -> String {
    daemon.wait_for_log("HTTP listening on http://", 1).await;
    let log = daemon.log();
    let start = log.find("HTTP listening on http://").unwrap() + "HTTP listening on ".len();
    let url = log[start..].split_whitespace().next().unwrap();
    url.trim_end_matches('/').to_string()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

async fn get(url: &str, token: Option<&str>) -> (u16, String, String) {
    let mut request = client().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("the listener answers");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (status, content_type, response.text().await.unwrap())
}

/// A title that marks the page if a browser ever runs it as markup.
const HOSTILE_TITLE: &str = "NATO <script>document.body.dataset.pwned='script'</script>\
    <img src=x onerror=\"document.body.dataset.pwned='img'\"> summit";

/// `text` escaped for XML twice: what a feed carries to mean the literal text, not markup
/// that the parser would strip.
fn escaped_twice(text: &str) -> String {
    let once = |t: &str| {
        t.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    once(&once(text))
}

/// A feed whose first item (titled [`HOSTILE_TITLE`]) matches `nato`, a feed that fails, and
/// a webhook that accepts.
fn news_config(server: &TestServer, http: &str) -> String {
    let title = escaped_twice(HOSTILE_TITLE);
    server.feed(
        "world.xml",
        "application/rss+xml",
        rss(
            "World",
            &[
                ("g1", title.as_str(), "Leaders met in Vilnius &amp; agreed"),
                ("g2", "Weather", "Rain"),
            ],
        ),
    );
    ConfigBuilder::new()
        .named_feed("World", &server.url("/feeds/world.xml"))
        .with("interval = \"1h\"")
        .named_feed("Broken", &server.url("/feeds/missing.xml"))
        .with("interval = \"1h\"")
        .rule("nato", "NATO", &["hook"])
        .webhook("hook", &server.url("/hook"))
        .with(&format!("\n[http]\n{http}"))
        .build()
}

/// The samples of a scrape, by metric name and then by their labels written `k=v,k=v`.
fn samples(text: &str) -> HashMap<String, HashMap<String, f64>> {
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("the scrape parses");
    let mut out: HashMap<String, HashMap<String, f64>> = HashMap::new();
    for sample in scrape.samples {
        let mut labels: Vec<String> = sample
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        labels.sort();
        let value = match sample.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            prometheus_parse::Value::Histogram(buckets) => {
                buckets.last().map_or(f64::NAN, |b| b.count)
            }
            prometheus_parse::Value::Summary(_) => f64::NAN,
        };
        out.entry(sample.metric)
            .or_default()
            .insert(labels.join(","), value);
    }
    out
}

fn value(samples: &HashMap<String, HashMap<String, f64>>, metric: &str, labels: &str) -> f64 {
    *samples
        .get(metric)
        .and_then(|m| m.get(labels))
        .unwrap_or_else(|| panic!("no sample {metric}{{{labels}}} in {samples:#?}"))
}

/// Python's OpenMetrics parser is strict (names, types, `# EOF`, histogram buckets); it is
/// installed by `.ci/run`.
fn check_with_python_openmetrics(text: &str) {
    let script = "import sys\n\
        from prometheus_client.openmetrics.parser import text_string_to_metric_families\n\
        families = list(text_string_to_metric_families(sys.stdin.read()))\n\
        print(len(families), 'families')\n";
    let run = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(text.as_bytes())?;
            child.wait_with_output()
        });
    let output = match run {
        Ok(output) => output,
        Err(e) => return skip_or_fail(&format!("python3 cannot run: {e}")),
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    if stderr.contains("No module named 'prometheus_client'") {
        return skip_or_fail("Python's prometheus_client is not installed");
    }
    assert!(
        output.status.success(),
        "the OpenMetrics parser refused the scrape: {stderr}\n{text}"
    );
}

/// Tests that need a system package skip without it, but fail in CI.
fn skip_or_fail(why: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{why} (CI is set, so this test must run)");
    }
    eprintln!("skipped: {why}");
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_polls_matches_deliveries_and_feed_health() {
    let server = TestServer::start().await;
    let ws = Workspace::new(&news_config(&server, "listen = \"127.0.0.1:0\""));
    let daemon = Daemon::start(&ws.config(), &[]);
    let base = listening_at(&daemon).await;
    wait_until(Duration::from_secs(30), "the alert is delivered", || {
        server.received().len() == 1
    })
    .await;
    daemon.wait_for_log("poll failed", 1).await;
    // The delivery is recorded just after the receiver answers.
    wait_until(Duration::from_secs(10), "the delivery is marked", || {
        ws.query_i64("SELECT COUNT(*) FROM outbox WHERE status = 'delivered'") == 1
    })
    .await;

    let (status, content_type, text) = get(&format!("{base}/metrics"), None).await;
    assert_eq!(status, 200, "{text}");
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    assert!(text.ends_with("# EOF\n"), "{text}");
    let s = samples(&text);
    assert_eq!(value(&s, "feedwatch_polls_total", "result=ok"), 1.0);
    assert_eq!(
        value(&s, "feedwatch_polls_total", "result=fetch_error"),
        1.0
    );
    assert_eq!(value(&s, "feedwatch_articles_stored_total", ""), 2.0);
    assert_eq!(value(&s, "feedwatch_matches_total", "rule=nato"), 1.0);
    assert_eq!(
        value(
            &s,
            "feedwatch_alerts_total",
            "notifier=hook,result=delivered,rule=nato"
        ),
        1.0
    );
    assert_eq!(
        value(&s, "feedwatch_outbox_alerts", "status=delivered"),
        1.0
    );
    assert_eq!(value(&s, "feedwatch_outbox_alerts", "status=pending"), 0.0);
    assert_eq!(value(&s, "feedwatch_feed_failing", "feed=World"), 0.0);
    assert_eq!(value(&s, "feedwatch_feed_failing", "feed=Broken"), 1.0);
    let now = chrono::Utc::now().timestamp() as f64;
    let last = value(
        &s,
        "feedwatch_feed_last_success_timestamp_seconds",
        "feed=World",
    );
    assert!((now - last).abs() < 120.0, "last success {last}, now {now}");
    assert!(
        !s.get("feedwatch_feed_last_success_timestamp_seconds")
            .unwrap()
            .contains_key("feed=Broken"),
        "a feed never polled successfully has no last success"
    );
    // Both fetches were timed; the one delivery's latency was observed.
    assert_eq!(value(&s, "feedwatch_fetch_duration_seconds", ""), 2.0);
    assert_eq!(value(&s, "feedwatch_delivery_latency_seconds", ""), 1.0);
    check_with_python_openmetrics(&text);

    let (status, _, body) = get(&format!("{base}/healthz"), None).await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let (status, _, body) = get(&format!("{base}/readyz"), None).await;
    assert_eq!((status, body.as_str()), (200, "ready\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_guards_everything_but_the_health_checks() {
    let server = TestServer::start().await;
    let ws = Workspace::new(&news_config(
        &server,
        "listen = \"127.0.0.1:0\"\ntoken = { env = \"FEEDWATCH_TEST_HTTP_TOKEN\" }",
    ));
    let daemon = Daemon::start(&ws.config(), &[("FEEDWATCH_TEST_HTTP_TOKEN", "tok-42")]);
    let base = listening_at(&daemon).await;

    let (status, _, body) = get(&format!("{base}/metrics"), None).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("bearer token"), "{body}");
    assert_eq!(get(&format!("{base}/metrics"), Some("wrong")).await.0, 401);
    assert_eq!(get(&format!("{base}/metrics"), Some("tok-42")).await.0, 200);
    assert_eq!(
        get(&format!("{base}/metrics?token=tok-42"), None).await.0,
        200
    );
    assert_eq!(get(&format!("{base}/healthz"), None).await.0, 200);
    assert_eq!(get(&format!("{base}/readyz"), None).await.0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn check_refuses_a_listener_beyond_loopback_without_a_token() {
    let server = TestServer::start().await;
    let ws = Workspace::new(&news_config(&server, "listen = \"0.0.0.0:9123\""));
    let out = ws.run(&["check"]).await;
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    out.assert_stderr_has("listening on 0.0.0.0:9123, beyond this machine, needs a bearer token");

    let token = ws.path("http-token");
    std::fs::write(&token, "s3cret\n").unwrap();
    std::fs::write(
        ws.config(),
        news_config(
            &server,
            "listen = \"0.0.0.0:9123\"\ntoken = { file = \"http-token\" }",
        ),
    )
    .unwrap();
    let out = ws.run(&["check"]).await;
    out.assert_ok();
    out.assert_stdout_has("http: listening on http://0.0.0.0:9123/ (bearer token required)");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_port_in_use_stops_the_daemon_with_a_clear_error() {
    let server = TestServer::start().await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let ws = Workspace::new(&news_config(&server, &format!("listen = \"{addr}\"")));
    let out = ws.run(&["run"]).await;
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    out.assert_stderr_has(format!("cannot listen for HTTP on {addr}"));
    assert_eq!(server.hits("world.xml"), 0, "no feed was polled");
}

/// What Python's feedparser reads in an Atom file, as JSON; `None` (skipped) without it.
fn read_with_feedparser(file: &std::path::Path) -> Option<serde_json::Value> {
    let script = "import json, sys, feedparser\n\
        d = feedparser.parse(open(sys.argv[1], 'rb').read())\n\
        print(json.dumps({'bozo': bool(d.bozo), 'error': str(d.get('bozo_exception', '')),\n\
          'version': d.version, 'title': d.feed.get('title'),\n\
          'entries': [{'id': e.get('id'), 'title': e.get('title'), 'link': e.get('link'),\n\
                       'summary': e.get('summary'), 'tags': [t.term for t in e.get('tags', [])]}\n\
                      for e in d.entries]}))\n";
    let output = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(file)
        .output();
    let output = match output {
        Ok(output) => output,
        Err(e) => {
            skip_or_fail(&format!("python3 cannot run: {e}"));
            return None;
        }
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    if stderr.contains("No module named 'feedparser'") {
        skip_or_fail("Python's feedparser is not installed");
        return None;
    }
    assert!(output.status.success(), "feedparser failed: {stderr}");
    Some(serde_json::from_slice(&output.stdout).expect("the reader prints JSON"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_matches_are_an_atom_feed_that_readers_and_feedwatch_itself_read() {
    let server = TestServer::start().await;
    let config = news_config(&server, "listen = \"127.0.0.1:0\"");
    // A second rule, so that the per-rule feed has something to leave out.
    let config = config.replace(
        "\n[http]",
        "\n[[rule]]\nname = \"weather\"\nquery = 'Weather'\n\n[http]",
    );
    let ws = Workspace::new(&config);
    let daemon = Daemon::start(&ws.config(), &[]);
    let base = listening_at(&daemon).await;
    wait_until(Duration::from_secs(30), "both matches are stored", || {
        ws.query_i64("SELECT COUNT(*) FROM matches") == 2
    })
    .await;

    let (status, content_type, all) = get(&format!("{base}/feeds/matches.atom"), None).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(content_type, "application/atom+xml; charset=utf-8");
    assert!(
        !all.contains("<script"),
        "a hostile title stays escaped:\n{all}"
    );
    let (status, _, nato) = get(&format!("{base}/feeds/rules/nato.atom"), None).await;
    assert_eq!(status, 200, "{nato}");
    // A reader that sends back the entity tag is told nothing changed.
    let first = client()
        .get(format!("{base}/feeds/matches.atom"))
        .send()
        .await
        .unwrap();
    let tag = first.headers()["etag"].to_str().unwrap().to_string();
    let again = client()
        .get(format!("{base}/feeds/matches.atom"))
        .header("if-none-match", &tag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status().as_u16(), 304);
    assert_eq!(again.headers()["etag"].to_str().unwrap(), tag);
    let other = client()
        .get(format!("{base}/feeds/rules/nato.atom"))
        .header("if-none-match", &tag)
        .send()
        .await
        .unwrap();
    assert_eq!(other.status().as_u16(), 200, "another feed, another tag");
    let (status, _, _) = get(&format!("{base}/feeds/rules/nobody.atom"), None).await;
    assert_eq!(status, 404);

    // feedwatch's own parser reads its feed back.
    let file = ws.path("nato.atom");
    std::fs::write(&file, &nato).unwrap();
    let out = ws.run(&["preview", file.to_str().unwrap(), "--json"]).await;
    out.assert_ok();
    let preview: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let entries = preview["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{}", out.stdout);
    assert_eq!(entries[0]["title"], HOSTILE_TITLE);
    assert_eq!(entries[0]["link"], "https://news.example/g1");
    let all_file = ws.path("all.atom");
    std::fs::write(&all_file, &all).unwrap();
    let out = ws
        .run(&["preview", all_file.to_str().unwrap(), "--json"])
        .await;
    out.assert_ok();
    let preview: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(preview["entries"].as_array().unwrap().len(), 2);

    // And so does Python's feedparser, with no complaint, the snippet's word in bold.
    let Some(read) = read_with_feedparser(&file) else {
        return;
    };
    assert_eq!(read["bozo"], false, "{read}");
    assert_eq!(read["version"], "atom10");
    assert_eq!(read["title"], "feedwatch: nato");
    let entry = &read["entries"][0];
    assert_eq!(read["entries"].as_array().unwrap().len(), 1);
    assert_eq!(entry["title"], HOSTILE_TITLE);
    assert_eq!(entry["link"], "https://news.example/g1");
    assert_eq!(entry["tags"][0], "nato");
    let summary = entry["summary"].as_str().unwrap();
    assert!(summary.contains("<b>NATO</b>"), "{summary}");
    assert!(!summary.contains("<script"), "{summary}");
    assert!(
        entry["id"]
            .as_str()
            .unwrap()
            .starts_with("tag:feedwatch,2026:match:")
    );
}

/// The page as headless Chromium renders it (its DOM after scripts ran), or `None` (skipped)
/// without Chromium.
async fn render_in_chromium(url: &str) -> Option<String> {
    let profile = tempfile::tempdir().unwrap();
    let run = tokio::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--dump-dom", url])
        .kill_on_drop(true)
        .output();
    let output = match tokio::time::timeout(Duration::from_secs(90), run).await {
        Ok(output) => output,
        Err(_) => panic!("chromium did not render {url} within 90 s"),
    };
    match output {
        Ok(output) if output.status.success() => {
            Some(String::from_utf8_lossy(&output.stdout).into_owned())
        }
        Ok(output) => panic!(
            "chromium failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(e) => {
            skip_or_fail(&format!(
                "chromium cannot run ({e}); apt-get install chromium"
            ));
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_status_page_shows_feeds_matches_and_outbox_and_runs_no_feed_markup() {
    let server = TestServer::start().await;
    let config = news_config(&server, "listen = \"127.0.0.1:0\"\ntoken = \"page-token\"");
    // A wire service carries the same story: it joins the one alert's sources.
    let title = escaped_twice(HOSTILE_TITLE);
    let story = rss(
        "Wire",
        &[("w1", &title, "Leaders met in Vilnius &amp; agreed")],
    );
    server.feed("wire.xml", "application/rss+xml", story);
    let wire = format!(
        "[[feed]]\nname = \"Wire\"\nurl = \"{}\"\ninterval = \"1h\"\n\n[[rule]]",
        server.url("/feeds/wire.xml")
    );
    let ws = Workspace::new(&config.replacen("[[rule]]", &wire, 1));
    let daemon = Daemon::start(&ws.config(), &[]);
    let base = listening_at(&daemon).await;
    wait_until(Duration::from_secs(30), "the alert is delivered", || {
        ws.query_i64("SELECT COUNT(*) FROM outbox WHERE status = 'delivered'") == 1
    })
    .await;
    wait_until(
        Duration::from_secs(30),
        "both copies of the story are stored",
        || ws.query_i64("SELECT COUNT(*) FROM articles") == 3,
    )
    .await;
    daemon.wait_for_log("poll failed", 1).await;

    let (status, content_type, html) = get(&format!("{base}/"), Some("page-token")).await;
    assert_eq!(status, 200, "{html}");
    assert_eq!(content_type, "text/html; charset=utf-8");
    assert!(html.contains("name=\"viewport\""), "readable on a phone");
    assert!(!html.contains("<script"), "{html}");
    assert!(!html.contains("<img"), "{html}");

    let Some(dom) = render_in_chromium(&format!("{base}/?token=page-token")).await else {
        return;
    };
    assert!(
        !dom.contains("data-pwned"),
        "a feed's markup ran in the page:\n{dom}"
    );
    assert!(dom.contains("<mark>NATO</mark>"), "{dom}");
    assert!(dom.contains("3 feeds, 1 failing · 1 rule ·"), "{dom}");
    // One alert for the story, naming the feed whose copy came second.
    let matches = section(&dom, "id=\"matches\"");
    assert_eq!(matches.matches("<mark>NATO</mark>").count(), 1, "{matches}");
    assert!(
        matches.contains("also in <a href=\"https://news.example/w1\">Wire</a>")
            || matches.contains("also in <a href=\"https://news.example/g1\">World</a>"),
        "{matches}"
    );
    // The title is shown as the text it is.
    assert!(
        dom.contains("NATO &lt;script&gt;document.body.dataset.pwned='script'&lt;/script&gt;"),
        "{dom}"
    );
    let feeds = section(&dom, "id=\"feeds\"");
    assert!(feeds.contains("<strong>World</strong>"), "{feeds}");
    assert!(
        feeds.contains("failing</span>\n    <strong>Broken</strong>"),
        "{feeds}"
    );
    assert!(
        feeds.contains("ok</span>\n    <strong>World</strong>"),
        "{feeds}"
    );
    assert!(
        feeds.contains("404"),
        "the failing feed's error is shown: {feeds}"
    );
    let outbox = section(&dom, "id=\"outbox\"");
    assert!(outbox.contains(">1</span> delivered"), "{outbox}");
    assert!(outbox.contains(">0</span> pending"), "{outbox}");
    // Links to the feeds keep the token the page was opened with.
    assert!(
        dom.contains("href=\"/feeds/rules/nato.atom?token=page-token\""),
        "{dom}"
    );
}

/// The list in `dom` that starts with the attribute `marker`.
fn section<'a>(dom: &'a str, marker: &str) -> &'a str {
    let start = dom
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker} in {dom}"));
    let end = dom[start..].find("</ul>").map_or(dom.len(), |e| start + e);
    &dom[start..end]
}

#[tokio::test(flavor = "multi_thread")]
async fn healthz_fails_while_the_database_takes_no_writes() {
    let server = TestServer::start().await;
    let ws = Workspace::new(&news_config(&server, "listen = \"127.0.0.1:0\""));
    let daemon = Daemon::start(&ws.config(), &[]);
    let base = listening_at(&daemon).await;
    assert_eq!(get(&format!("{base}/healthz"), None).await.0, 200);

    // Another process holds the database's write lock.
    let holder = rusqlite::Connection::open(ws.db()).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let (status, _, body) = get(&format!("{base}/healthz"), None).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("database"), "{body}");
    // Reads go on: the daemon is still ready to serve.
    assert_eq!(get(&format!("{base}/readyz"), None).await.0, 200);

    holder.execute_batch("ROLLBACK").unwrap();
    let (status, _, body) = get(&format!("{base}/healthz"), None).await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reload_changes_the_token_but_not_where_it_listens() {
    let server = TestServer::start().await;
    let with = |http: &str| news_config(&server, http);
    let ws = Workspace::new(&with("listen = \"127.0.0.1:0\"\ntoken = \"first\""));
    let daemon = Daemon::start(&ws.config(), &[]);
    let base = listening_at(&daemon).await;
    assert_eq!(get(&format!("{base}/metrics"), Some("first")).await.0, 200);

    std::fs::write(
        ws.config(),
        with("listen = \"127.0.0.1:0\"\ntoken = \"second\""),
    )
    .unwrap();
    daemon.wait_for_log("config reloaded", 1).await;
    assert_eq!(get(&format!("{base}/metrics"), Some("first")).await.0, 401);
    assert_eq!(get(&format!("{base}/metrics"), Some("second")).await.0, 200);

    // Moving the listener needs a restart: until then it keeps its address and its token.
    std::fs::write(
        ws.config(),
        with("listen = \"127.0.0.2:0\"\ntoken = \"third\""),
    )
    .unwrap();
    daemon.wait_for_log("config reloaded", 2).await;
    assert!(
        daemon.log().contains("[http] changed where it listens"),
        "{}",
        daemon.log()
    );
    assert_eq!(get(&format!("{base}/metrics"), Some("second")).await.0, 200);
    assert_eq!(get(&format!("{base}/metrics"), Some("third")).await.0, 401);
}

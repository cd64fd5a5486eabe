//! Delivery end to end: the outbox commands, signed webhooks, a flaky receiver and a daemon
//! killed mid-delivery, all with the real binary against a local webhook receiver.

mod common;

use std::time::Duration;

use common::{Daemon, TestServer, Workspace, rss, wait_until};

/// One feed, one rule matching "Ukraine", one webhook notifier with `extra` keys.
fn config(server: &TestServer, extra: &str) -> String {
    format!(
        "[[feed]]\nname = \"World\"\nurl = \"{}\"\ninterval = \"1h\"\n\n\
         [[rule]]\nname = \"ukraine\"\nquery = 'Ukraine'\nnotify = [\"hook\"]\n\n\
         [[notifier]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{}\"\n{extra}\n",
        server.url("/feeds/world.xml"),
        server.url("/hook"),
    )
}

fn serve_items(server: &TestServer, count: usize) {
    let items: Vec<(String, String, String)> = (1..=count)
        .map(|i| {
            (
                format!("g{i}"),
                format!("Ukraine story {i}"),
                "Kyiv".to_string(),
            )
        })
        .collect();
    let refs: Vec<(&str, &str, &str)> = items
        .iter()
        .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()))
        .collect();
    server.feed("world.xml", "application/rss+xml", rss("World", &refs));
}

#[tokio::test(flavor = "multi_thread")]
async fn outbox_lists_failed_and_dead_alerts_and_retry_sends_dead_ones() {
    let server = TestServer::start().await;
    serve_items(&server, 2);
    let ws = Workspace::new(&config(&server, ""));

    // 404 is permanent: both alerts go dead at once.
    server.force_webhook_status(404);
    ws.run(&["run", "--once"]).await.assert_ok();
    assert_eq!(
        ws.query_i64("SELECT COUNT(*) FROM outbox WHERE status = 'dead'"),
        2
    );

    let out = ws.run(&["outbox"]).await;
    out.assert_ok();
    assert!(
        out.stdout
            .contains("0 pending, 0 failed (will retry), 2 dead"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("answered HTTP 404"), "{}", out.stdout);
    assert!(out.stdout.contains("Ukraine story 1"), "{}", out.stdout);

    let out = ws.run(&["outbox", "--json"]).await;
    out.assert_ok();
    let listed: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2);
    for entry in listed {
        assert_eq!(entry["status"], "dead");
        assert_eq!(entry["notifier"], "hook");
        assert_eq!(entry["rule"], "ukraine");
        assert_eq!(entry["attempts"], 1);
        assert!(entry["last_error"].as_str().unwrap().contains("404"));
    }

    // The receiver is fixed: `outbox retry` sends both, once each.
    server.force_webhook_status(0);
    let out = ws.run(&["outbox", "retry"]).await;
    out.assert_ok();
    assert!(
        out.stdout
            .contains("2 dead alert(s) queued again; delivered 2"),
        "{}",
        out.stdout
    );
    assert_eq!(server.received().len(), 2);
    let out = ws.run(&["outbox"]).await;
    assert!(out.stdout.contains("outbox empty"), "{}", out.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn outbox_shows_a_failing_alert_as_failed_with_its_next_try() {
    let server = TestServer::start().await;
    serve_items(&server, 1);
    let ws = Workspace::new(&config(&server, ""));
    server.force_webhook_status(503);
    ws.run(&["run", "--once"]).await.assert_ok();
    let out = ws.run(&["outbox"]).await;
    out.assert_ok();
    assert!(
        out.stdout
            .contains("0 pending, 1 failed (will retry), 0 dead"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("next try"), "{}", out.stdout);
    assert!(out.stdout.contains("HTTP 503"), "{}", out.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn test_notify_sends_a_sample_and_reports_failure() {
    let server = TestServer::start().await;
    let ws = Workspace::new(&config(&server, ""));

    let out = ws.run(&["test-notify", "hook"]).await;
    out.assert_ok();
    assert!(out.stdout.contains("test alert sent"), "{}", out.stdout);
    let received = server.received();
    assert_eq!(received.len(), 1);
    let body = received[0].json();
    assert_eq!(body["rule"], "feedwatch test");
    assert!(body["delivery_id"].as_str().unwrap().starts_with("test-"));

    server.force_webhook_status(401);
    let out = ws.run(&["test-notify", "hook"]).await;
    assert_eq!(out.code, Some(1));
    assert!(out.stdout.contains("test alert failed"), "{}", out.stdout);
    assert!(out.stdout.contains("401"), "{}", out.stdout);

    let out = ws.run(&["test-notify", "nope"]).await;
    assert_ne!(out.code, Some(0));
    assert!(
        out.stderr.contains("no notifier named `nope`"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("known: hook"), "{}", out.stderr);
    // A test alert is never stored.
    assert!(!ws.db().exists());
}

/// HMAC-SHA256 of `message` keyed with `key`, computed by Python's `hmac` module: an
/// implementation independent of the one feedwatch uses.
fn python_hmac_sha256(key: &str, message: &[u8]) -> String {
    let script = "import hashlib, hmac, sys; \
                  key = sys.argv[1].encode(); \
                  print(hmac.new(key, sys.stdin.buffer.read(), hashlib.sha256).hexdigest())";
    let mut child = std::process::Command::new("python3")
        .args(["-c", script, key])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs (apt-get install python3)");
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(message).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn signed_webhooks_verify_with_an_independent_hmac() {
    let server = TestServer::start().await;
    serve_items(&server, 2);
    let secret = "s3cr\u{e9}t with spaces";
    let ws = Workspace::new(&config(&server, &format!("secret = \"{secret}\"")));
    ws.run(&["run", "--once"]).await.assert_ok();
    let received = server.received();
    assert_eq!(received.len(), 2);
    for r in &received {
        let timestamp = r.headers["x-feedwatch-timestamp"].to_str().unwrap();
        let age = chrono::Utc::now().timestamp() - timestamp.parse::<i64>().unwrap();
        assert!((0..60).contains(&age), "timestamp {timestamp} is now");
        let signed = format!("{timestamp}.{}", r.body);
        let expected = format!("v1={}", python_hmac_sha256(secret, signed.as_bytes()));
        assert_eq!(
            r.headers["x-feedwatch-signature"].to_str().unwrap(),
            expected
        );
        // A forged body does not verify.
        let forged = format!("{timestamp}.{}", r.body.replace("Ukraine", "Ukrainf"));
        assert_ne!(
            format!("v1={}", python_hmac_sha256(secret, forged.as_bytes())),
            expected
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unsigned_webhooks_carry_no_signature() {
    let server = TestServer::start().await;
    serve_items(&server, 1);
    let ws = Workspace::new(&config(&server, ""));
    ws.run(&["run", "--once"]).await.assert_ok();
    let received = server.received();
    assert_eq!(received.len(), 1);
    assert!(received[0].headers.get("x-feedwatch-signature").is_none());
}

/// Quick retries, so the daemon tests take seconds.
const FAST_RETRY: &str = "retry_delay = \"1s\"\nretry_max_delay = \"2s\"";

fn delivery_ids(received: &[common::Received]) -> Vec<String> {
    received
        .iter()
        .map(|r| {
            let id = r.headers["x-feedwatch-delivery"]
                .to_str()
                .unwrap()
                .to_string();
            assert_eq!(r.json()["delivery_id"], id.as_str());
            id
        })
        .collect()
}

/// The outbox's delivery ids in the order the alerts matched.
fn outbox_ids(ws: &Workspace) -> Vec<String> {
    let conn = rusqlite::Connection::open(ws.db()).unwrap();
    let mut stmt = conn
        .prepare("SELECT delivery_id FROM outbox ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Delivered rows; 0 while the daemon has not yet created its database.
fn delivered(ws: &Workspace) -> i64 {
    let Ok(conn) =
        rusqlite::Connection::open_with_flags(ws.db(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return 0;
    };
    conn.query_row(
        "SELECT COUNT(*) FROM outbox WHERE status = 'delivered'",
        [],
        |r| r.get(0),
    )
    .unwrap_or(0)
}

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread")]
async fn receiver_failing_its_first_requests_gets_every_alert_once_in_order() {
    let server = TestServer::start().await;
    serve_items(&server, 6);
    let ws = Workspace::new(&config(&server, FAST_RETRY));
    server.fail_next_webhooks(3);

    let daemon = Daemon::start(&ws.config(), &[]);
    wait_until(WAIT, "six alerts delivered", || delivered(&ws) == 6).await;
    daemon.kill().await;

    // Three refused attempts, then each alert exactly once, in the order they matched.
    assert_eq!(server.webhook_attempts(), 9);
    assert_eq!(delivery_ids(&server.received()), outbox_ids(&ws));
}

#[tokio::test(flavor = "multi_thread")]
async fn alerts_wait_out_a_down_receiver_and_a_slow_one_repeats_only_by_delivery_id() {
    let server = TestServer::start().await;
    serve_items(&server, 3);
    let ws = Workspace::new(&config(&server, &format!("{FAST_RETRY}\ntimeout = \"1s\"")));

    // Down: every attempt refused, the alerts stay pending.
    server.force_webhook_status(503);
    let daemon = Daemon::start(&ws.config(), &[]);
    wait_until(WAIT, "retries while down", || {
        server.webhook_attempts() >= 3
    })
    .await;
    assert_eq!(delivered(&ws), 0);
    assert_eq!(
        ws.query_i64("SELECT COUNT(*) FROM outbox WHERE status = 'pending'"),
        3
    );

    // Up but slower than the timeout: it takes alerts, feedwatch cannot know, and sends again.
    server.slow_webhooks(Duration::from_millis(1500));
    server.force_webhook_status(0);
    wait_until(WAIT, "a repeat to a slow receiver", || {
        server.received().len() >= 2
    })
    .await;
    server.slow_webhooks(Duration::ZERO);
    wait_until(WAIT, "all delivered", || delivered(&ws) == 3).await;
    daemon.kill().await;

    let received = delivery_ids(&server.received());
    let mut unique = received.clone();
    unique.dedup();
    // Repeats only ever follow each other (order is kept), so dropping repeats by id leaves
    // each alert once, in order.
    assert_eq!(unique, outbox_ids(&ws));
    assert!(
        received.len() > unique.len(),
        "the slow receiver saw a repeat"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn daemon_killed_mid_delivery_sends_the_rest_after_restart() {
    let server = TestServer::start().await;
    serve_items(&server, 4);
    let ws = Workspace::new(&config(&server, FAST_RETRY));

    // The receiver takes the first alert and holds the answer; SIGKILL arrives meanwhile.
    server.slow_webhooks(Duration::from_secs(30));
    let daemon = Daemon::start(&ws.config(), &[]);
    wait_until(WAIT, "the first delivery", || {
        server.webhook_attempts() == 1
    })
    .await;
    daemon.kill().await;
    assert_eq!(delivered(&ws), 0);
    assert_eq!(
        ws.query_i64("SELECT COUNT(*) FROM outbox WHERE status = 'pending'"),
        4
    );

    server.slow_webhooks(Duration::ZERO);
    let daemon = Daemon::start(&ws.config(), &[]);
    wait_until(WAIT, "all delivered after restart", || delivered(&ws) == 4).await;
    daemon.kill().await;

    // Nothing lost; the one in flight at the kill went again, under the same delivery id.
    let received = delivery_ids(&server.received());
    let expected = outbox_ids(&ws);
    assert_eq!(received.len(), 5);
    assert_eq!(received[0], expected[0]);
    assert_eq!(received[1..], expected[..]);
    // The restart polled nothing new: no alert was created twice.
    assert_eq!(expected.len(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn quiet_hours_hold_alerts_until_the_window_ends() {
    let server = TestServer::start().await;
    serve_items(&server, 2);
    let now = chrono::Utc::now();
    let end = now + chrono::Duration::hours(1);
    let window = format!(
        "quiet = \"{}-{}\"\nquiet_timezone = \"UTC\"",
        (now - chrono::Duration::hours(1)).format("%H:%M"),
        end.format("%H:%M")
    );
    let ws = Workspace::new(&config(&server, &window));
    let out = ws.run(&["run", "--once"]).await;
    out.assert_ok();
    assert_eq!(server.webhook_attempts(), 0, "{}", out.stderr);
    // Held, not failed: no attempt counted, due when the window ends (to the minute).
    assert_eq!(
        ws.query_i64("SELECT COUNT(*) FROM outbox WHERE status = 'pending' AND attempts = 0"),
        2
    );
    let due = ws.query_i64("SELECT MIN(next_attempt_at) FROM outbox");
    assert!(
        (due - end.timestamp()).abs() <= 60,
        "due {due}, window ends {end}"
    );

    // Outside quiet hours (here: the window removed) the held alerts go out.
    std::fs::write(ws.config(), config(&server, "")).unwrap();
    ws.run(&["run", "--once"]).await.assert_ok();
    assert_eq!(server.received().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn rule_cooldown_holds_newer_alerts_after_one_went_out() {
    let server = TestServer::start().await;
    serve_items(&server, 2);
    let text = config(&server, "").replace(
        "query = 'Ukraine'\n",
        "query = 'Ukraine'\ncooldown = \"3s\"\n",
    );
    let ws = Workspace::new(&text);
    // Alerts that arrive together are one firing: both go out.
    ws.run(&["run", "--once"]).await.assert_ok();
    assert_eq!(server.received().len(), 2);
    let last = ws.query_i64("SELECT MAX(delivered_at) FROM outbox");

    // Two newer stories within the cooldown wait for it to end, without failing.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    serve_items(&server, 4);
    ws.run(&["run", "--once"]).await.assert_ok();
    assert_eq!(server.received().len(), 2);
    assert_eq!(
        ws.query_i64("SELECT COUNT(*) FROM outbox WHERE status = 'pending' AND attempts = 0"),
        2
    );
    assert_eq!(
        ws.query_i64("SELECT MIN(next_attempt_at) FROM outbox WHERE status = 'pending'"),
        last + 3
    );

    // When it has ended, the waiting alerts go out together: sending the first does not start
    // a new cooldown for the second.
    while chrono::Utc::now().timestamp() <= last + 3 {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ws.run(&["run", "--once"]).await.assert_ok();
    assert_eq!(server.received().len(), 4);
}

//! Delivery end to end: the outbox commands, signed webhooks, a flaky receiver and a daemon
//! killed mid-delivery, all with the real binary against a local webhook receiver.

mod common;

use std::time::Duration;

use common::{ConfigBuilder, Daemon, TestServer, Workspace, rss, sleep_past, wait_until};

/// One feed, one rule matching "Ukraine", one webhook notifier with `extra` keys.
fn config(server: &TestServer, extra: &str) -> String {
    ConfigBuilder::new()
        .named_feed("World", &server.url("/feeds/world.xml"))
        .with("interval = \"1h\"")
        .rule("ukraine", "Ukraine", &["hook"])
        .webhook("hook", &server.url("/hook"))
        .with(extra)
        .build()
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
    out.assert_stdout_has("answered HTTP 404");
    out.assert_stdout_has("Ukraine story 1");

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
    out.assert_stdout_has("outbox empty");
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
    out.assert_stdout_has("next try");
    out.assert_stdout_has("HTTP 503");
}

#[tokio::test(flavor = "multi_thread")]
async fn test_notify_sends_a_sample_and_reports_failure() {
    let server = TestServer::start().await;
    let ws = Workspace::new(&config(&server, ""));

    let out = ws.run(&["test-notify", "hook"]).await;
    out.assert_ok();
    out.assert_stdout_has("test alert sent");
    let received = server.received();
    assert_eq!(received.len(), 1);
    let body = received[0].json();
    assert_eq!(body["rule"], "feedwatch test");
    assert!(body["delivery_id"].as_str().unwrap().starts_with("test-"));

    server.force_webhook_status(401);
    let out = ws.run(&["test-notify", "hook"]).await;
    assert_eq!(out.code, Some(1));
    out.assert_stdout_has("test alert failed");
    out.assert_stdout_has("401");

    let out = ws.run(&["test-notify", "nope"]).await;
    assert_ne!(out.code, Some(0));
    out.assert_stderr_has("no notifier named `nope`");
    out.assert_stderr_has("known: hook");
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
    count_or_zero(ws, "SELECT COUNT(*) FROM outbox WHERE status = 'delivered'")
}

/// The count `sql` selects; 0 while the daemon has not yet created its database.
fn count_or_zero(ws: &Workspace, sql: &str) -> i64 {
    let Ok(conn) =
        rusqlite::Connection::open_with_flags(ws.db(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return 0;
    };
    conn.query_row(sql, [], |r| r.get(0)).unwrap_or(0)
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

/// Starts the daemon again with the receiver answering at once, until `alerts` are delivered;
/// returns the delivery ids the receiver got, in order, and the outbox's.
async fn restart_until_delivered(
    server: &TestServer,
    ws: &Workspace,
    alerts: i64,
) -> (Vec<String>, Vec<String>) {
    server.slow_webhooks(Duration::ZERO);
    let daemon = Daemon::start(&ws.config(), &[]);
    wait_until(WAIT, "all delivered after restart", || {
        delivered(ws) == alerts
    })
    .await;
    daemon.kill().await;
    (delivery_ids(&server.received()), outbox_ids(ws))
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

    // Nothing lost; the one in flight at the kill went again, under the same delivery id.
    let (received, expected) = restart_until_delivered(&server, &ws, 4).await;
    assert_eq!(received.len(), 5);
    assert_eq!(received[0], expected[0]);
    assert_eq!(received[1..], expected[..]);
    // The restart polled nothing new: no alert was created twice.
    assert_eq!(expected.len(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn alerts_delivered_before_a_kill_are_not_sent_again() {
    let server = TestServer::start().await;
    serve_items(&server, 4);
    let ws = Workspace::new(&config(&server, FAST_RETRY));

    // Two alerts go out; the receiver takes the third and holds the answer; SIGKILL.
    server.slow_webhooks_after(2, Duration::from_secs(30));
    let daemon = Daemon::start(&ws.config(), &[]);
    wait_until(WAIT, "the third delivery", || {
        server.webhook_attempts() == 3
    })
    .await;
    daemon.kill().await;
    // The two marks are not written into their outbox rows yet (that waits for the next
    // batch); the outbox counts them as delivered all the same.
    assert_eq!(ws.query_i64("SELECT COUNT(*) FROM outbox_sent"), 2);
    let status = ws.run(&["status", "--json"]).await;
    let status: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(status["alerts"]["delivered"], 2, "{status}");
    assert_eq!(status["alerts"]["pending"], 2, "{status}");

    // The two delivered before the kill went once; the one in flight went again.
    let (received, expected) = restart_until_delivered(&server, &ws, 4).await;
    assert_eq!(expected.len(), 4);
    assert_eq!(received[..3], expected[..3]);
    assert_eq!(received[3..], expected[2..]);
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
    sleep_past(last + 3).await;
    ws.run(&["run", "--once"]).await.assert_ok();
    assert_eq!(server.received().len(), 4);
}

/// The outbox's digest id of every row, in match order (`None` for rows sent alone).
fn outbox_digest_ids(ws: &Workspace) -> Vec<Option<String>> {
    let conn = rusqlite::Connection::open(ws.db()).unwrap();
    let mut stmt = conn
        .prepare("SELECT digest_id FROM outbox ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Checks one received digest: its header and body ids agree, and it lists `members` (the
/// member alerts' delivery ids) in order. Returns the digest's delivery id.
fn assert_digest(received: &common::Received, members: &[String]) -> String {
    let body = received.json();
    let id = received.headers["x-feedwatch-delivery"].to_str().unwrap();
    assert_eq!(received.headers["x-feedwatch-event"], "digest");
    assert_eq!(body["version"], 2);
    assert_eq!(body["type"], "digest");
    assert_eq!(body["delivery_id"], id);
    assert!(id.starts_with("digest-"), "{id}");
    assert_eq!(body["count"], members.len());
    let listed: Vec<&str> = body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            assert_eq!(a["type"], "alert");
            assert_eq!(a["rule"], "ukraine");
            assert!(
                a["article"]["title"]
                    .as_str()
                    .unwrap()
                    .starts_with("Ukraine story")
            );
            a["delivery_id"].as_str().unwrap()
        })
        .collect();
    assert_eq!(listed, members);
    id.to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn digest_window_sends_one_message_listing_every_alert() {
    let server = TestServer::start().await;
    serve_items(&server, 3);
    let ws = Workspace::new(&config(&server, "digest = \"2s\""));

    // The first alert opens the window: nothing goes out yet, and nothing counts as failed.
    ws.run(&["run", "--once"]).await.assert_ok();
    assert_eq!(server.webhook_attempts(), 0);
    assert_eq!(
        ws.query_i64("SELECT COUNT(*) FROM outbox WHERE status = 'pending' AND attempts = 0"),
        3
    );
    let opened = ws.query_i64("SELECT MIN(created_at) FROM outbox");
    assert_eq!(
        ws.query_i64("SELECT MAX(next_attempt_at) FROM outbox"),
        opened + 2
    );

    // When it closes, one message carries all three, each with its own delivery id.
    sleep_past(opened + 2).await;
    ws.run(&["run", "--once"]).await.assert_ok();
    let received = server.received();
    assert_eq!(received.len(), 1);
    let id = assert_digest(&received[0], &outbox_ids(&ws));
    assert_eq!(delivered(&ws), 3);
    assert_eq!(outbox_digest_ids(&ws), vec![Some(id); 3]);
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_digest_is_retried_as_one_message_under_the_same_id() {
    let server = TestServer::start().await;
    serve_items(&server, 3);
    let ws = Workspace::new(&config(&server, "digest = \"1s\""));
    server.force_webhook_status(503);
    ws.run(&["run", "--once"]).await.assert_ok();
    sleep_past(ws.query_i64("SELECT MAX(next_attempt_at) FROM outbox")).await;
    let out = ws.run(&["run", "--once"]).await;
    out.assert_ok();

    // One attempt for the three, recorded on all three: they wait for their retry together.
    assert_eq!(server.webhook_attempts(), 1);
    assert_eq!(
        ws.query_i64(
            "SELECT COUNT(*) FROM outbox WHERE status = 'pending' AND attempts = 1
             AND last_error LIKE '%503%'"
        ),
        3
    );
    assert_eq!(
        ws.query_i64("SELECT COUNT(DISTINCT next_attempt_at) FROM outbox"),
        1
    );
    let sealed = outbox_digest_ids(&ws);
    assert!(
        sealed.iter().all(|d| d.is_some() && *d == sealed[0]),
        "{sealed:?}"
    );
    let out = ws.run(&["outbox", "--json"]).await;
    out.assert_ok();
    let listed: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 3);
    assert!(
        listed
            .iter()
            .all(|e| e["digest_id"].as_str() == sealed[0].as_deref()),
        "{listed:?}"
    );

    // A new alert meanwhile does not join the digest that already failed once.
    serve_items(&server, 4);
    server.force_webhook_status(0);
    ws.run(&["run", "--once"]).await.assert_ok();
    let received = server.received();
    let ids = outbox_ids(&ws);
    let digest = received
        .iter()
        .find(|r| r.headers["x-feedwatch-event"] == "digest")
        .expect("the digest went out");
    assert_eq!(assert_digest(digest, &ids[..3]), sealed[0].clone().unwrap());
    assert_eq!(
        ws.query_i64("SELECT SUM(attempts) FROM outbox WHERE digest_id IS NOT NULL"),
        6
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn digest_killed_mid_send_is_resent_with_the_same_id_and_members() {
    let server = TestServer::start().await;
    serve_items(&server, 3);
    let ws = Workspace::new(&config(&server, &format!("{FAST_RETRY}\ndigest = \"1s\"")));

    // The receiver takes the digest and holds the answer; SIGKILL arrives meanwhile.
    server.slow_webhooks(Duration::from_secs(30));
    let daemon = Daemon::start(&ws.config(), &[]);
    wait_until(WAIT, "the digest in flight", || {
        server.webhook_attempts() == 1
    })
    .await;
    daemon.kill().await;
    assert_eq!(delivered(&ws), 0);
    let sealed = outbox_digest_ids(&ws);
    assert!(
        sealed.iter().all(|d| d.is_some() && *d == sealed[0]),
        "{sealed:?}"
    );

    server.slow_webhooks(Duration::ZERO);
    let daemon = Daemon::start(&ws.config(), &[]);
    wait_until(WAIT, "the digest delivered after restart", || {
        delivered(&ws) == 3
    })
    .await;
    daemon.kill().await;

    // Sent twice, the same message both times: a receiver drops the repeat by its id.
    let received = server.received();
    assert_eq!(received.len(), 2);
    let ids = outbox_ids(&ws);
    assert_eq!(
        assert_digest(&received[0], &ids),
        assert_digest(&received[1], &ids)
    );
    assert_eq!(received[0].body, received[1].body);
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limit_sends_up_to_the_limit_and_folds_the_rest_into_one_digest() {
    let server = TestServer::start().await;
    serve_items(&server, 5);
    let ws = Workspace::new(&config(&server, "rate_limit = \"2/10s\""));
    // Windows start at multiples of 10 s: begin early in one, so the run stays inside it.
    while chrono::Utc::now().timestamp() % 10 > 3 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ws.run(&["run", "--once"]).await.assert_ok();
    let received = server.received();
    assert_eq!(received.len(), 2, "two alone, the rest wait");
    let ids = outbox_ids(&ws);
    assert_eq!(delivery_ids(&received), ids[..2]);
    let window_end = ws.query_i64("SELECT MAX(next_attempt_at) FROM outbox");
    assert_eq!(window_end % 10, 0);
    assert_eq!(
        ws.query_i64("SELECT COUNT(*) FROM outbox WHERE status = 'pending' AND attempts = 0"),
        3
    );

    // When the window ends, the three that waited go out as one digest.
    sleep_past(window_end).await;
    ws.run(&["run", "--once"]).await.assert_ok();
    let received = server.received();
    assert_eq!(received.len(), 3);
    assert_digest(&received[2], &ids[2..]);
    assert_eq!(delivered(&ws), 5);
}

/// Notifier keys for quiet hours from `from` to `to` hours around `now`, in UTC.
fn quiet_hours(now: chrono::DateTime<chrono::Utc>, from: i64, to: i64) -> String {
    format!(
        "quiet = \"{}-{}\"\nquiet_timezone = \"UTC\"",
        (now + chrono::Duration::hours(from)).format("%H:%M"),
        (now + chrono::Duration::hours(to)).format("%H:%M")
    )
}

/// `items` alerts held through a night of quiet hours on a notifier with the keys `keys`
/// gives (around the quiet-hours keys): one run inside the quiet hours sends nothing; then the
/// alerts are made to have matched two hours ago, due now, and the quiet hours to have ended an
/// hour ago. The next run is the test's.
async fn held_overnight(
    server: &TestServer,
    items: usize,
    keys: impl Fn(String) -> String,
) -> Workspace {
    serve_items(server, items);
    let now = chrono::Utc::now();
    let ws = Workspace::new(&config(server, &keys(quiet_hours(now, -1, 1))));
    ws.run(&["run", "--once"]).await.assert_ok();
    assert_eq!(server.webhook_attempts(), 0);
    let conn = rusqlite::Connection::open(ws.db()).unwrap();
    conn.execute(
        "UPDATE outbox SET created_at = created_at - 7200, next_attempt_at = ?1",
        [now.timestamp()],
    )
    .unwrap();
    std::fs::write(ws.config(), config(server, &keys(quiet_hours(now, -3, -1)))).unwrap();
    ws
}

#[tokio::test(flavor = "multi_thread")]
async fn alerts_held_by_quiet_hours_go_out_as_one_digest_when_they_end() {
    let server = TestServer::start().await;
    let ws = held_overnight(&server, 3, |quiet| quiet).await;
    ws.run(&["run", "--once"]).await.assert_ok();
    let received = server.received();
    assert_eq!(received.len(), 1);
    assert_digest(&received[0], &outbox_ids(&ws));
    assert_eq!(delivered(&ws), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn alert_sent_alone_before_a_crash_is_resent_alone_not_folded_into_a_digest() {
    let server = TestServer::start().await;
    let ws = held_overnight(&server, 3, |quiet| quiet).await;
    // The first alert was sealed to go alone and sent, and the process died before marking
    // it; the other two were held by quiet hours that have since ended.
    let conn = rusqlite::Connection::open(ws.db()).unwrap();
    conn.execute(
        "UPDATE outbox SET digest_id = delivery_id WHERE id = (SELECT MIN(id) FROM outbox)",
        [],
    )
    .unwrap();
    drop(conn);
    ws.run(&["run", "--once"]).await.assert_ok();

    let received = server.received();
    let ids = outbox_ids(&ws);
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].headers["x-feedwatch-event"], "alert");
    assert_eq!(received[0].headers["x-feedwatch-delivery"], ids[0].as_str());
    assert_digest(&received[1], &ids[1..]);
    assert_eq!(delivered(&ws), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn template_that_cannot_render_a_digest_gets_held_alerts_one_by_one() {
    let server = TestServer::start().await;
    let ws = held_overnight(&server, 2, |quiet| {
        format!(
            "format = \"template\"\ntemplate = '{{\"text\": {{{{ article.title }}}}}}'\n{quiet}"
        )
    })
    .await;
    let checked = ws.run(&["check"]).await;
    checked.assert_ok();
    assert!(
        checked
            .stdout
            .contains("its template cannot render a digest"),
        "{}",
        checked.stdout
    );
    ws.run(&["run", "--once"]).await.assert_ok();
    let titles: Vec<String> = server
        .received()
        .iter()
        .map(|r| r.json()["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(titles, ["Ukraine story 1", "Ukraine story 2"]);
    assert_eq!(delivered(&ws), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn outbox_retry_gives_revived_alerts_a_fresh_give_up_window() {
    let server = TestServer::start().await;
    serve_items(&server, 2);
    let ws = Workspace::new(&config(&server, ""));
    server.force_webhook_status(404);
    ws.run(&["run", "--once"]).await.assert_ok();
    // Dead, and older than the notifier's give-up age (3 days).
    let conn = rusqlite::Connection::open(ws.db()).unwrap();
    conn.execute("UPDATE outbox SET created_at = created_at - 4 * 86400", [])
        .unwrap();
    drop(conn);

    // Revived into a receiver that is down: one failure must not kill them again. (The second
    // waits behind the first, to keep their order.)
    server.force_webhook_status(503);
    let out = ws.run(&["outbox", "retry"]).await;
    assert!(
        out.stdout.contains(
            "2 dead alert(s) queued again; delivered 0, failed again 1 (will retry), dead 0"
        ),
        "{}",
        out.stdout
    );
    assert_eq!(
        ws.query_i64("SELECT COUNT(*) FROM outbox WHERE status = 'pending'"),
        2
    );
    let age = chrono::Utc::now().timestamp() - ws.query_i64("SELECT MIN(created_at) FROM outbox");
    assert!(
        age < 60,
        "the give-up clock starts at the retry, not 4 days ago"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn daemon_digest_takes_alerts_that_arrive_later_in_the_window() {
    let server = TestServer::start().await;
    serve_items(&server, 1);
    let text =
        config(&server, "digest = \"15s\"").replace("interval = \"1h\"", "interval = \"10s\"");
    let ws = Workspace::new(&text);
    let daemon = Daemon::start(&ws.config(), &[]);
    wait_until(WAIT, "the first alert collected", || {
        count_or_zero(
            &ws,
            "SELECT COUNT(*) FROM outbox WHERE next_attempt_at > created_at",
        ) == 1
    })
    .await;
    // A second story, polled about ten seconds later, while the window is still open.
    serve_items(&server, 2);
    wait_until(WAIT, "both delivered", || delivered(&ws) == 2).await;
    daemon.kill().await;
    let received = server.received();
    assert_eq!(received.len(), 1, "one message for the window");
    assert_digest(&received[0], &outbox_ids(&ws));
}

/// A webhook whose address, signing secret and token header are kept out of the config file.
fn config_with_secrets_elsewhere(server: &TestServer) -> String {
    ConfigBuilder::new()
        .named_feed("World", &server.url("/feeds/world.xml"))
        .with("interval = \"1h\"")
        .rule("ukraine", "Ukraine", &["hook"])
        .with(
            r#"
[[notifier]]
name = "hook"
kind = "webhook"
format = "slack"
url = { credential = "hook-url" }
secret = { file = "signing-key" }
headers = { Authorization = { env = "FW_TEST_TOKEN" } }
"#,
        )
        .build()
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_come_from_credentials_files_and_the_environment_and_never_show() {
    let server = TestServer::start().await;
    serve_items(&server, 1);
    let ws = Workspace::new(&config_with_secrets_elsewhere(&server));
    std::fs::create_dir(ws.path("credentials")).unwrap();
    std::fs::write(
        ws.path("credentials/hook-url"),
        format!("{}\n", server.url("/hook")),
    )
    .unwrap();
    std::fs::write(ws.path("signing-key"), "k3y-from-file\n").unwrap();
    let env = [("FW_TEST_TOKEN", "Bearer t0ken-from-env")];

    let out = common::feedwatch(&ws.config(), &["run", "--once"], &env).await;
    out.assert_ok();
    let received = server.received();
    assert_eq!(received.len(), 1, "{}", out.stderr);
    assert_eq!(
        received[0].headers["authorization"],
        "Bearer t0ken-from-env"
    );
    assert!(received[0].headers.contains_key("x-feedwatch-signature"));

    // `check` runs with the same secrets, shows none of them, and has nothing inline to warn of.
    let check = common::feedwatch(&ws.config(), &["check"], &env).await;
    check.assert_ok();
    for secret in ["/hook", "k3y-from-file", "t0ken-from-env"] {
        assert!(!check.stdout.contains(secret), "{secret}: {}", check.stdout);
    }
    assert!(!check.stdout.contains("warning"), "{}", check.stdout);

    // A missing one is a config error naming where feedwatch looked, not a value.
    let missing = ws.run(&["check"]).await;
    assert_eq!(missing.code, Some(2), "{}", missing.stderr);
    missing.assert_stderr_has("environment variable FW_TEST_TOKEN is not set");
}

#[tokio::test(flavor = "multi_thread")]
async fn check_warns_of_a_secret_inline_in_a_config_others_can_read() {
    use std::os::unix::fs::PermissionsExt;
    let ws = Workspace::new(
        &ConfigBuilder::new()
            .with(
                "[[notifier]]\nname = \"chat\"\nkind = \"webhook\"\nformat = \"slack\"\n\
                 url = \"https://hooks.slack.example/services/T0/B0/s3cret\"\n",
            )
            .build(),
    );
    std::fs::set_permissions(ws.config(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = ws.run(&["check"]).await;
    out.assert_ok()
        .assert_stdout_has("is readable by other users and holds `url` of `chat` inline");
    assert!(!out.stdout.contains("s3cret"), "{}", out.stdout);

    std::fs::set_permissions(ws.config(), std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = ws.run(&["check"]).await;
    assert!(!out.stdout.contains("warning"), "{}", out.stdout);
}

//! Delivery end to end: the outbox commands, signed webhooks, a flaky receiver and a daemon
//! killed mid-delivery, all with the real binary against a local webhook receiver.

mod common;

use common::{TestServer, Workspace, rss};

/// One feed, one rule matching "Ukraine", one webhook notifier with `extra` keys.
fn config(server: &TestServer, extra: &str) -> String {
    format!(
        "[[feed]]\nname = \"World\"\nurl = \"{}\"\n\n\
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

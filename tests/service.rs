//! The daemon as a service: the real binary in `run` mode, driven with signals, config edits and
//! a systemd notification socket.

mod common;

use std::time::Duration;

use common::{ConfigBuilder, Daemon, Route, TestServer, Workspace, rss, wait_until};

/// How long a daemon test waits for something before it fails.
const WAIT: Duration = Duration::from_secs(20);

/// A config whose feeds are polled every 2 s and whose rule posts to the test webhook.
fn config(server: &TestServer, feeds: &[&str], rules: &[(&str, &str)]) -> String {
    let config = ConfigBuilder::new().defaults("cron = \"*/2 * * * * *\"");
    let config = feeds
        .iter()
        .fold(config, |config, path| config.feed(&server.url(path)));
    rules
        .iter()
        .fold(config, |config, (name, query)| {
            config.rule(name, query, &["hook"])
        })
        .webhook("hook", &server.url("/hook"))
        .build()
}

fn titles(server: &TestServer) -> Vec<String> {
    let mut titles: Vec<String> = server
        .received()
        .iter()
        .map(|r| {
            r.json()["article"]["title"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    titles.sort();
    titles
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_a_poll_exits_promptly_with_the_database_intact() {
    let server = TestServer::start().await;
    server.feed(
        "fast.xml",
        "application/rss+xml",
        rss("Fast", &[("f1", "NATO", "")]),
    );
    server.route(
        "/slow.xml",
        Route::Slow {
            delay: Duration::from_secs(30),
            body: rss("Slow", &[("s1", "NATO too", "")]).into_bytes(),
        },
    );
    let ws = Workspace::new(&config(
        &server,
        &["/feeds/fast.xml", "/slow.xml"],
        &[("nato", "NATO")],
    ));
    let mut daemon = Daemon::start(&ws.config(), &[]);
    wait_until(WAIT, "the fast feed's alert", || {
        server.received().len() == 1
    })
    .await;
    wait_until(WAIT, "the slow poll to be in flight", || {
        !server.requests("/slow.xml").is_empty()
    })
    .await;

    let asked = std::time::Instant::now();
    daemon.signal("TERM");
    let code = daemon.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(code, Some(0), "{}", daemon.log());
    assert!(
        asked.elapsed() < Duration::from_secs(8),
        "took {:?}",
        asked.elapsed()
    );
    assert!(
        daemon.log().contains("feedwatch stopped"),
        "{}",
        daemon.log()
    );

    let conn = rusqlite::Connection::open(ws.db()).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    assert_eq!(ws.query_i64("SELECT COUNT(*) FROM articles"), 1);
    assert_eq!(
        ws.query_i64("SELECT COUNT(*) FROM outbox WHERE status = 'delivered'"),
        1
    );
}

/// A workspace watching the server's `f.xml`, which is served with two stories, grain and
/// harbour.
fn grain_and_harbour(server: &TestServer) -> Workspace {
    server.feed(
        "f.xml",
        "application/rss+xml",
        rss(
            "F",
            &[("a", "Grain deal signed", ""), ("b", "Harbour strike", "")],
        ),
    );
    Workspace::new(&config(server, &["/feeds/f.xml"], &[("n", "NATO")]))
}

/// The names of the threads of process `pid`.
fn thread_names(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|tasks| {
            tasks
                .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
                .map(|name| name.trim().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// The daemon allocates with jemalloc, under the settings built into it (`service::memory`):
/// one of them starts jemalloc's own thread, which gives freed pages back while the daemon
/// idles.
#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_allocates_with_jemalloc_under_its_built_in_settings() {
    let server = TestServer::start().await;
    let ws = grain_and_harbour(&server);
    let daemon = Daemon::start(&ws.config(), &[]);
    daemon.wait_for_log("feedwatch started", 1).await;
    let pid = daemon.pid();
    wait_until(WAIT, "jemalloc's background thread", || {
        thread_names(pid)
            .iter()
            .any(|name| name == "jemalloc_bg_thd")
    })
    .await;
    daemon.kill().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_indexes_stored_articles_for_search_on_its_own() {
    let server = TestServer::start().await;
    let ws = grain_and_harbour(&server);
    let daemon = Daemon::start(&ws.config(), &[]);
    daemon.wait_for_log("feedwatch started", 1).await;
    let stored_and_indexed = |articles: i64| {
        ws.query_i64("SELECT COUNT(*) FROM articles") == articles
            && ws.query_index_i64("SELECT indexed_through FROM progress")
                == ws.query_i64("SELECT MAX(id) FROM articles")
    };
    wait_until(WAIT, "the first two articles to be indexed", || {
        stored_and_indexed(2)
    })
    .await;
    // A later poll stores a third: the daemon hears of it and indexes it on its own (no search
    // catches it up).
    server.feed(
        "f.xml",
        "application/rss+xml",
        rss(
            "F",
            &[
                ("c", "Ferry timetable", ""),
                ("a", "Grain deal signed", ""),
                ("b", "Harbour strike", ""),
            ],
        ),
    );
    wait_until(WAIT, "the third article to be indexed", || {
        stored_and_indexed(3)
    })
    .await;
    assert_eq!(
        ws.query_index_i64(
            "SELECT COUNT(*) FROM articles_fts WHERE articles_fts MATCH 'ferry OR grain'"
        ),
        2
    );
    daemon.kill().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn articles_the_daemon_prunes_leave_the_search_index_without_waiting_for_news() {
    let server = TestServer::start().await;
    let ws = grain_and_harbour(&server);
    ws.run(&["run", "--once"]).await.assert_ok();
    ws.run(&["search", "grain"]).await.assert_ok();
    let grain_in_index =
        || ws.query_index_i64("SELECT COUNT(*) FROM articles_fts WHERE articles_fts MATCH 'grain'");
    assert_eq!(grain_in_index(), 1);
    // The grain story left the feed long ago: the daemon prunes it as it starts, and the feed
    // brings nothing new that would wake the indexer otherwise.
    server.feed(
        "f.xml",
        "application/rss+xml",
        rss("F", &[("b", "Harbour strike", "")]),
    );
    rusqlite::Connection::open(ws.db())
        .unwrap()
        .execute(
            "UPDATE articles SET last_seen_at = 0 WHERE title LIKE 'Grain%'",
            [],
        )
        .unwrap();
    let daemon = Daemon::start(&ws.config(), &[]);
    daemon.wait_for_log("pruned 1 articles", 1).await;
    wait_until(WAIT, "the pruned article to leave the index", || {
        grain_in_index() == 0
    })
    .await;
    assert_eq!(ws.query_i64("SELECT COUNT(*) FROM articles"), 1);
    daemon.kill().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_instance_on_the_same_database_is_refused() {
    let server = TestServer::start().await;
    server.feed("f.xml", "application/rss+xml", rss("F", &[("a", "x", "")]));
    let ws = Workspace::new(&config(&server, &["/feeds/f.xml"], &[("n", "NATO")]));
    let daemon = Daemon::start(&ws.config(), &[]);
    daemon.wait_for_log("feedwatch started", 1).await;

    let out = ws.run(&["run", "--once"]).await;
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    out.assert_stderr_has("already running");
    out.assert_stderr_has(format!("pid {}", daemon.pid()));
    let status = ws.run(&["status"]).await;
    status.assert_ok();
    assert!(
        status
            .stdout
            .contains(&format!("running (pid {})", daemon.pid())),
        "{}",
        status.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn config_edit_adds_a_feed_and_a_rule_without_restart_or_realerts() {
    let server = TestServer::start().await;
    server.feed(
        "a.xml",
        "application/rss+xml",
        rss("A", &[("a1", "NATO summit", "")]),
    );
    server.feed(
        "b.xml",
        "application/rss+xml",
        rss("B", &[("b1", "Grain deal", "")]),
    );
    let ws = Workspace::new(&config(&server, &["/feeds/a.xml"], &[("nato", "NATO")]));
    let daemon = Daemon::start(&ws.config(), &[]);
    wait_until(WAIT, "the first alert", || server.received().len() == 1).await;

    std::fs::write(
        ws.config(),
        config(
            &server,
            &["/feeds/a.xml", "/feeds/b.xml"],
            &[("nato", "NATO"), ("grain", "grain")],
        ),
    )
    .unwrap();
    wait_until(WAIT, "the new feed's alert", || {
        server.received().len() == 2
    })
    .await;
    assert!(daemon.log().contains("config reloaded"), "{}", daemon.log());
    // A few more polls of both feeds: nothing is alerted twice.
    let polls = server.hits("a.xml");
    wait_until(WAIT, "two more polls", || server.hits("a.xml") >= polls + 2).await;
    assert_eq!(titles(&server), ["Grain deal", "NATO summit"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_edit_is_rejected_and_the_old_config_keeps_working() {
    let server = TestServer::start().await;
    server.feed(
        "a.xml",
        "application/rss+xml",
        rss("A", &[("a1", "NATO one", "")]),
    );
    let ws = Workspace::new(&config(&server, &["/feeds/a.xml"], &[("nato", "NATO")]));
    let daemon = Daemon::start(&ws.config(), &[]);
    wait_until(WAIT, "the first alert", || server.received().len() == 1).await;

    std::fs::write(ws.config(), "[[feed]]\nurl = \"http://x/\"\nbogus = 1\n").unwrap();
    daemon.wait_for_log("config not reloaded", 1).await;
    assert!(
        daemon.log().contains("bogus"),
        "the reason is logged: {}",
        daemon.log()
    );

    // The previous feeds and rules still work: a new item is polled and alerted.
    server.feed(
        "a.xml",
        "application/rss+xml",
        rss("A", &[("a2", "NATO two", ""), ("a1", "NATO one", "")]),
    );
    wait_until(WAIT, "the second alert", || server.received().len() == 2).await;
    assert_eq!(titles(&server), ["NATO one", "NATO two"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn systemd_is_told_ready_reloading_and_stopping() {
    use std::os::unix::net::UnixDatagram;
    let server = TestServer::start().await;
    server.feed("a.xml", "application/rss+xml", rss("A", &[("a1", "x", "")]));
    let ws = Workspace::new(&config(&server, &["/feeds/a.xml"], &[("nato", "NATO")]));
    let socket_path = ws.path("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut daemon = Daemon::start(
        &ws.config(),
        &[("NOTIFY_SOCKET", socket_path.to_str().unwrap())],
    );
    // Everything received so far, once `wanted` is among it.
    let mut received = String::new();
    let mut read_until = |wanted: &str| -> String {
        let mut buf = [0u8; 4096];
        while !received.contains(wanted) {
            let n = socket
                .recv(&mut buf)
                .unwrap_or_else(|e| panic!("no {wanted} on NOTIFY_SOCKET: {e}; got {received:?}"));
            received.push_str(&String::from_utf8_lossy(&buf[..n]));
            received.push('\n');
        }
        received.clone()
    };
    let got = read_until("READY=1");
    assert!(got.contains("STATUS=watching 1 feeds"), "{got}");
    daemon.signal("HUP");
    let got = read_until("RELOADING=1");
    assert!(got.contains("MONOTONIC_USEC="), "{got}");
    daemon.signal("TERM");
    read_until("STOPPING=1");
    assert_eq!(daemon.wait_exit(Duration::from_secs(10)).await, Some(0));
}

#[test]
fn default_paths_follow_xdg_and_systemd_state_directory() {
    let home = tempfile::tempdir().unwrap();
    let config_dir = home.path().join("cfg/feedwatch");
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::write(
        config_dir.join("config.toml"),
        "[[feed]]\nurl = \"feed.xml\"\n",
    )
    .unwrap();
    let check = |extra: &[(&str, &std::path::Path)]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_feedwatch"));
        cmd.arg("check")
            .env_remove("FEEDWATCH_CONFIG")
            .env_remove("STATE_DIRECTORY")
            .env("XDG_CONFIG_HOME", home.path().join("cfg"))
            .env("XDG_DATA_HOME", home.path().join("data"));
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let data_db = home.path().join("data/feedwatch/feedwatch.db");
    assert!(
        check(&[]).contains(&format!("database: {}", data_db.display())),
        "{}",
        check(&[])
    );
    let state = home.path().join("state");
    let out = check(&[("STATE_DIRECTORY", &state)]);
    assert!(
        out.contains(&format!(
            "database: {}",
            state.join("feedwatch.db").display()
        )),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn status_exits_3_with_no_daemon_and_says_where_it_looked() {
    let server = TestServer::start().await;
    let ws = Workspace::new(&config(&server, &["/feeds/f.xml"], &[("n", "NATO")]));
    let out = ws.run(&["status"]).await;
    assert_eq!(out.code, Some(3), "{}{}", out.stdout, out.stderr);
    out.assert_stdout_has("not running")
        .assert_stdout_has(ws.db().display().to_string())
        .assert_stdout_has("none yet");
    let json = ws.run(&["status", "--json"]).await;
    assert_eq!(json.code, Some(3));
    let value: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(value["running"], false);
    assert_eq!(value["database_exists"], false);
}

#[tokio::test(flavor = "multi_thread")]
async fn read_only_commands_never_create_a_database() {
    let server = TestServer::start().await;
    let ws = Workspace::new(&config(&server, &["/feeds/f.xml"], &[("n", "NATO")]));
    for args in [
        &["matches"][..],
        &["feeds"],
        &["search", "NATO"],
        &["backtest", "n", "--since", "7d"],
        &["outbox"],
        &["status"],
    ] {
        let out = ws.run(args).await;
        assert_ne!(out.code, Some(0), "{args:?} succeeded on no database");
        if args[0] != "status" {
            out.assert_stderr_has(format!("no database at {}", ws.db().display()))
                .assert_stderr_has("database = ");
        }
        assert!(!ws.db().exists(), "{args:?} created {}", ws.db().display());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn status_exits_0_while_a_daemon_keeps_up() {
    let server = TestServer::start().await;
    server.feed("f.xml", "application/rss+xml", rss("F", &[("a", "x", "")]));
    let ws = Workspace::new(&config(&server, &["/feeds/f.xml"], &[("n", "NATO")]));
    let daemon = Daemon::start(&ws.config(), &[]);
    daemon.wait_for_log("feedwatch started", 1).await;
    wait_until(WAIT, "the first poll", || server.hits("f.xml") > 0).await;
    let out = ws.run(&["status", "--json"]).await;
    out.assert_ok();
    let value: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(value["running"], true);
    assert_eq!(value["overdue_feeds"], serde_json::json!([]));
    daemon.kill().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_listing_piped_into_a_reader_that_leaves_ends_quietly() {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let server = TestServer::start().await;
    // Enough rows that the listing is still writing when the reader has gone.
    let feeds: Vec<String> = (0..3000).map(|i| format!("/feeds/f{i}.xml")).collect();
    let feeds: Vec<&str> = feeds.iter().map(String::as_str).collect();
    let ws = Workspace::new(&config(&server, &feeds, &[("n", "NATO")]));
    let mut child = Command::new(env!("CARGO_BIN_EXE_feedwatch"))
        .arg("--config")
        .arg(ws.config())
        .args(["feed", "list"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = [0u8; 10];
    child.stdout.take().unwrap().read_exact(&mut head).unwrap();
    // The pipe's read end closed here, as `| head -c 10` does.
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        status.success() || std::os::unix::process::ExitStatusExt::signal(&status) == Some(13),
        "{status:?}: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_daemon_with_room_for_two_polls_at_a_time_still_polls_every_feed() {
    let server = TestServer::start().await;
    let names: Vec<String> = (0..8).map(|i| format!("f{i}")).collect();
    for name in &names {
        server.feed(
            &format!("{name}.xml"),
            "application/rss+xml",
            rss(name, &[(name, &format!("NATO news from {name}"), "")]),
        );
    }
    // `max_fetches = 1` leaves the daemon room for two polls under way.
    let config = names
        .iter()
        .fold(ConfigBuilder::new(), |config, name| {
            config.named_feed(name, &server.url(&format!("/feeds/{name}.xml")))
        })
        .rule("n", "NATO", &[])
        .build();
    let ws = Workspace::new(&format!("max_fetches = 1\n\n{config}"));
    let daemon = Daemon::start(&ws.config(), &[]);
    daemon.wait_for_log("feedwatch started", 1).await;
    wait_until(WAIT, "every feed's article to be stored", || {
        ws.query_i64("SELECT COUNT(*) FROM articles") == 8
    })
    .await;
    daemon.kill().await;
}

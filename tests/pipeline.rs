//! End to end: the real binary polls a local feed server, stores into a real SQLite file and
//! posts alerts to a local webhook receiver.

mod common;

use common::{ConfigBuilder, Route, TestServer, Workspace, rss};

fn config(server: &TestServer, feeds: &[(&str, &str)], query: &str) -> String {
    feeds
        .iter()
        .fold(ConfigBuilder::new(), |config, (name, path)| {
            config.named_feed(name, &server.url(path))
        })
        .rule("watch", query, &["hook"])
        .webhook("hook", &server.url("/hook"))
        .build()
}

#[tokio::test(flavor = "multi_thread")]
async fn matching_articles_are_alerted_exactly_once_across_runs() {
    let server = TestServer::start().await;
    server.feed(
        "world.xml",
        "application/rss+xml",
        rss(
            "World",
            &[
                ("a1", "NATO summit opens", "Leaders arrive"),
                ("a2", "Weather", "Sunny"),
                ("a3", "Grain deal", "Ukraine and Turkey agree"),
                ("a4", "A senatorial race", "Nothing about the alliance"),
            ],
        ),
    );
    let ws = Workspace::new(&config(
        &server,
        &[("World", "/feeds/world.xml")],
        "Ukraine OR NATO",
    ));

    ws.run(&["run", "--once"]).await.assert_ok();
    let received = server.received();
    let mut titles: Vec<String> = received
        .iter()
        .map(|r| r.json()["article"]["title"].as_str().unwrap().to_string())
        .collect();
    titles.sort();
    assert_eq!(titles, ["Grain deal", "NATO summit opens"]);
    for r in &received {
        let body = r.json();
        assert_eq!(body["version"], 2);
        assert_eq!(body["rule"], "watch");
        assert_eq!(body["feed"]["title"], "World");
        assert_eq!(
            r.headers["x-feedwatch-delivery"].to_str().unwrap(),
            body["delivery_id"].as_str().unwrap()
        );
    }
    assert_eq!(received[0].headers["content-type"], "application/json");
    let grain = received
        .iter()
        .find(|r| r.json()["article"]["title"] == "Grain deal")
        .unwrap();
    assert_eq!(grain.json()["matched"], serde_json::json!(["Ukraine"]));

    // The same feed again: nothing new, nothing sent.
    ws.run(&["run", "--once"]).await.assert_ok();
    assert_eq!(server.received().len(), 2);

    // One new matching item among the old ones: exactly one more alert.
    server.feed(
        "world.xml",
        "application/rss+xml",
        rss(
            "World",
            &[
                ("a5", "Ukrainian grain", "NATO ministers comment"),
                ("a1", "NATO summit opens", "Leaders arrive"),
                ("a2", "Weather", "Sunny"),
            ],
        ),
    );
    ws.run(&["run", "--once"]).await.assert_ok();
    let received = server.received();
    assert_eq!(received.len(), 3);
    assert_eq!(received[2].json()["article"]["title"], "Ukrainian grain");

    assert_eq!(ws.query_i64("SELECT COUNT(*) FROM articles"), 5);
    assert_eq!(ws.query_i64("SELECT COUNT(*) FROM matches"), 3);
    assert_eq!(
        ws.query_i64("SELECT COUNT(*) FROM outbox WHERE status = 'delivered'"),
        3
    );
    assert_eq!(
        ws.query_i64("SELECT COUNT(*) FROM feeds WHERE last_status = 200"),
        1
    );
    // `run --once` leaves indexing for search to later; with no feedwatch running, a search
    // indexes every stored article first.
    assert!(!ws.path("feedwatch-search.db").exists());
    let out = ws.run(&["search", "grain", "--json"]).await;
    out.assert_ok();
    out.assert_stdout_has("Ukrainian grain");
    assert_eq!(
        ws.query_index_i64("SELECT indexed_through FROM progress"),
        ws.query_i64("SELECT MAX(id) FROM articles")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn alerts_for_a_down_webhook_are_kept_and_sent_later() {
    let server = TestServer::start().await;
    server.feed(
        "f.xml",
        "application/rss+xml",
        rss("F", &[("x1", "NATO news", "")]),
    );
    let ws = Workspace::new(&config(&server, &[("F", "/feeds/f.xml")], "NATO"));

    server.fail_next_webhooks(1);
    let first = ws.run(&["run", "--once"]).await;
    first.assert_ok();
    assert!(server.received().is_empty());
    first.assert_stderr_has("503");
    assert_eq!(
        ws.query_i64("SELECT COUNT(*) FROM outbox WHERE status = 'pending'"),
        1
    );

    ws.run(&["run", "--once"]).await.assert_ok();
    let received = server.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].json()["article"]["title"], "NATO news");
    ws.run(&["run", "--once"]).await.assert_ok();
    assert_eq!(
        server.received().len(),
        1,
        "a delivered alert is not sent again"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn broken_feeds_are_reported_and_do_not_stop_the_others() {
    let server = TestServer::start().await;
    server.feed(
        "good.xml",
        "application/rss+xml",
        rss("Good", &[("g1", "NATO", "")]),
    );
    server.route(
        "/feeds/error.xml",
        Route::Status {
            status: 500,
            headers: vec![("content-type", "text/plain".into())],
        },
    );
    server.feed(
        "page.html",
        "text/html",
        "<!DOCTYPE html><html><head><title>Home</title></head><body>hi</body></html>",
    );
    server.feed(
        "truncated.xml",
        "application/rss+xml",
        "<rss version=\"2.0\"><chan",
    );
    let ws = Workspace::new(&config(
        &server,
        &[
            ("Error", "/feeds/error.xml"),
            ("Page", "/feeds/page.html"),
            ("Truncated", "/feeds/truncated.xml"),
            ("Good", "/feeds/good.xml"),
            ("Missing", "/feeds/missing.xml"),
        ],
        "NATO",
    ));
    let out = ws.run(&["run", "--once"]).await;
    out.assert_ok();
    assert_eq!(server.received().len(), 1);
    for expected in ["HTTP 500", "HTML page", "HTTP 404", "Truncated"] {
        assert!(out.stderr.contains(expected), "{expected}:\n{}", out.stderr);
    }
    assert_eq!(
        ws.query_i64("SELECT COUNT(*) FROM feeds WHERE consecutive_failures = 1"),
        4
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unchanged_feed_is_not_downloaded_again() {
    let server = TestServer::start().await;
    server.route(
        "/feeds/etag.xml",
        Route::Page {
            headers: vec![
                ("content-type", "application/rss+xml".into()),
                ("etag", "\"v1\"".into()),
            ],
            body: rss("E", &[("e1", "NATO", "")]).into_bytes(),
        },
    );
    let ws = Workspace::new(&config(&server, &[("E", "/feeds/etag.xml")], "NATO"));
    ws.run(&["run", "--once"]).await.assert_ok();
    ws.run(&["run", "--once"]).await.assert_ok();
    assert_eq!(server.hits("etag.xml"), 2);
    assert_eq!(
        ws.query_i64("SELECT last_status FROM feeds"),
        304,
        "the second poll was answered 304"
    );
    assert_eq!(server.received().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn check_reports_every_error_with_line_and_column() {
    let ws = Workspace::new(
        "[[feed]]\nurl = \"http://127.0.0.1:9/f\"\ninterval = \"often\"\n\n\
         [[rule]]\nname = \"r\"\nquery = 'NATO AND'\nnotify = [\"nobody\"]\n",
    );
    let out = ws.run(&["check"]).await;
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    let config = ws.config().display().to_string();
    assert!(
        out.stderr
            .contains(&format!("{config}:3:12: invalid interval")),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains(&format!("{config}:8:11: rule `r` notifies `nobody`")),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("^"),
        "query error has a caret: {}",
        out.stderr
    );

    let unknown_key = Workspace::new("[[feed]]\nurl = \"http://x/\"\nevery = \"5m\"\n");
    let out = unknown_key.run(&["check"]).await;
    assert_eq!(out.code, Some(2));
    out.assert_stderr_has("line 3");
    out.assert_stderr_has("every");
}

#[tokio::test(flavor = "multi_thread")]
async fn check_prints_what_it_understood() {
    let ws = Workspace::new(
        "[[feed]]\nname = \"N\"\nurl = \"http://127.0.0.1:9/f\"\ncron = \"*/10 * * * *\"\n\
         [[rule]]\nname = \"r\"\nquery = 'NATO OR \"Jens Stoltenberg\"'\nnotify = [\"out\"]\n\
         [[notifier]]\nname = \"out\"\nkind = \"stdout\"\n",
    );
    let out = ws.run(&["check"]).await;
    out.assert_ok();
    out.assert_stdout_has("cron `*/10 * * * *`");
    out.assert_stdout_has("NATO, Jens Stoltenberg");
}

#[tokio::test(flavor = "multi_thread")]
async fn preview_json_lists_entries_with_matched_rules_and_writes_nothing() {
    let ws = Workspace::new(
        "[[rule]]\nname = \"nato\"\nquery = 'NATO'\n\n[[rule]]\nname = \"sport\"\nquery = 'sport'\n",
    );
    let feed = ws.path("feed.xml");
    std::fs::write(
        &feed,
        rss("Local", &[("p1", "NATO talks", "x"), ("p2", "Other", "y")]),
    )
    .unwrap();
    let out = ws.run(&["preview", feed.to_str().unwrap(), "--json"]).await;
    out.assert_ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["feed"]["title"], "Local");
    assert_eq!(v["entries"][0]["id"], "p1");
    assert_eq!(v["entries"][0]["published"], "2026-11-25T09:00:00Z");
    assert_eq!(v["entries"][0]["matched_rules"][0]["rule"], "nato");
    assert_eq!(v["entries"][1]["matched_rules"], serde_json::json!([]));
    assert!(!ws.db().exists(), "preview writes no database");

    // With --query, and with no config file at all.
    let out = common::feedwatch(
        &ws.path("missing.toml"),
        &["preview", feed.to_str().unwrap(), "--query", "Other"],
        &[],
    )
    .await;
    out.assert_ok();
    out.assert_stdout_has("✓ query: Other");
}

#[test]
fn preview_holds_one_entry_at_a_time_when_every_entry_matches_hundreds_of_rules() {
    // 300 rules on 63 everyday words, in each shape; 1,500 entries that each use most of the
    // words, so each matches 275-290 rules: 425,000 matches in all. Held together they took
    // hundreds of megabytes (gigabytes for a feed at the 10 MB body limit).
    const WORDS: &str = "the of and to in a is that for on was with he it as at by from his \
        said has have are be were an which after government minister president officials year \
        new people two would will its been who more than but their also over they this had not \
        up week talks security military forces country state economy market prices police";
    let words: Vec<&str> = WORDS.split_whitespace().collect();
    let mut config = String::new();
    for (index, word) in words.iter().cycle().take(300).enumerate() {
        let next = words[(index * 7 + 1) % words.len()];
        let query = match index % 5 {
            0 => word.to_string(),
            1 => format!("{word}*"),
            2 => format!("title:{word} OR {next}"),
            3 => format!("{word} AND NOT zzyzx"),
            _ => format!("{word} {next}"),
        };
        config.push_str(&format!(
            "[[rule]]\nname = \"r{index}\"\nquery = '{query}'\n\n"
        ));
    }
    let ws = Workspace::new(&config);
    let texts: Vec<(String, String, String)> = (0..1500)
        .map(|i| {
            let pick = |n: usize, k: usize| -> String {
                (0..n)
                    .map(|j| words[(i * 31 + j * k) % words.len()])
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            (format!("e{i}"), pick(10, 7), pick(60, 13))
        })
        .collect();
    let items: Vec<(&str, &str, &str)> = texts
        .iter()
        .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()))
        .collect();
    let feed = ws.path("busy.xml");
    std::fs::write(&feed, rss("Busy", &items)).unwrap();
    for json in [false, true] {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_feedwatch"));
        command
            .arg("--config")
            .arg(ws.config())
            .arg("preview")
            .arg(&feed)
            .args(if json { &["--json"][..] } else { &[] })
            .stdout(std::process::Stdio::null());
        let measured = common::wait4(&mut command);
        assert_eq!(measured.code, 0);
        assert!(
            measured.peak_rss_kib < 64 * 1024,
            "json {json}: peak RSS {} KiB",
            measured.peak_rss_kib
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn matches_lists_stored_matches_newest_first() {
    let server = TestServer::start().await;
    server.feed(
        "m.xml",
        "application/rss+xml",
        rss("M", &[("m1", "NATO one", ""), ("m2", "Weather", "")]),
    );
    let ws = Workspace::new(&config(&server, &[("M", "/feeds/m.xml")], "NATO"));
    ws.run(&["run", "--once"]).await.assert_ok();
    let out = ws.run(&["matches", "--json"]).await;
    out.assert_ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["rule"], "watch");
    assert_eq!(v[0]["article"]["title"], "NATO one");
    let text = ws.run(&["matches"]).await;
    text.assert_stdout_has("[watch] NATO one");
}

#[tokio::test(flavor = "multi_thread")]
async fn stdout_notifier_prints_one_line_per_alert() {
    let ws = Workspace::new(
        "[[feed]]\nurl = \"feed.xml\"\n[[rule]]\nname = \"r\"\nquery = 'NATO'\nnotify = [\"out\"]\n\
         [[notifier]]\nname = \"out\"\nkind = \"stdout\"\n",
    );
    std::fs::write(
        ws.path("feed.xml"),
        rss("Local", &[("s1", "NATO\n  talks", ""), ("s2", "Other", "")]),
    )
    .unwrap();
    let out = ws.run(&["run", "--once"]).await;
    out.assert_ok();
    assert_eq!(
        out.stdout.trim(),
        "[r] NATO talks — https://news.example/s1 (Local; matched: NATO)"
    );
    let again = ws.run(&["run", "--once"]).await;
    again.assert_ok();
    assert_eq!(again.stdout.trim(), "");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_podcast_episode_alerts_with_its_audio_file_and_picture() {
    let server = TestServer::start().await;
    server.feed(
        "cast.xml",
        "application/rss+xml",
        r#"<?xml version="1.0"?>
<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel><title>Cast</title>
<item><guid>ep7</guid><title>Episode 7: NATO at 75</title><link>https://cast.example/7</link>
<enclosure url="https://cdn.cast.example/ep7.mp3" length="31415926" type="audio/mpeg"/>
<media:thumbnail url="https://cdn.cast.example/ep7.jpg"/></item>
</channel></rss>"#,
    );
    let ws = Workspace::new(
        &ConfigBuilder::new()
            .named_feed("Cast", &server.url("/feeds/cast.xml"))
            .rule("nato", "NATO", &["hook", "shelf"])
            .webhook("hook", &server.url("/hook"))
            .webhook("shelf", &server.url("/hook/shelf"))
            .with(
                "format = \"template\"\ncontent_type = \"text/plain\"\n\
                 template = \"{{ article.enclosures[0].url }} {{ article.enclosures[0].length }} {{ article.thumbnail }}\"",
            )
            .build(),
    );
    ws.run(&["run", "--once"]).await.assert_ok();

    let received = server.received();
    let json = received
        .iter()
        .find(|r| r.uri == "/hook")
        .expect("the JSON alert")
        .json();
    assert_eq!(
        json["article"]["enclosures"],
        serde_json::json!([{
            "url": "https://cdn.cast.example/ep7.mp3",
            "type": "audio/mpeg",
            "length": 31415926
        }])
    );
    assert_eq!(
        json["article"]["thumbnail"],
        "https://cdn.cast.example/ep7.jpg"
    );
    let templated = received
        .iter()
        .find(|r| r.uri == "/hook/shelf")
        .expect("the templated alert");
    assert_eq!(
        templated.body,
        "https://cdn.cast.example/ep7.mp3 31415926 https://cdn.cast.example/ep7.jpg"
    );
    // The article keeps them in the database too.
    assert_eq!(
        ws.query_i64(
            "SELECT COUNT(*) FROM articles WHERE thumbnail = 'https://cdn.cast.example/ep7.jpg' \
             AND json_extract(enclosures, '$[0].length') = 31415926"
        ),
        1
    );
}

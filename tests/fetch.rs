//! The poller against a local server that misbehaves in every way feeds do: conditional GET,
//! compression bombs, slow bodies, redirects, rate limits, gone feeds, HTML pages, legacy
//! encodings. Each test runs the real binary on a temporary config and database.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::http::header;
use chrono::Utc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::{ConfigBuilder, Route, TestServer, Workspace, rss, sleep_past, wait4};

/// A config polling `feeds` as `(name, url)`, with extra `[defaults]` lines.
fn config(defaults: &str, feeds: &[(&str, String)]) -> String {
    feeds
        .iter()
        .fold(
            ConfigBuilder::new().defaults(defaults),
            |config, (name, url)| config.named_feed(name, url),
        )
        .build()
}

/// One column of the feed named `name`.
fn feed_column<T: rusqlite::types::FromSql>(ws: &Workspace, name: &str, column: &str) -> T {
    let conn = rusqlite::Connection::open(ws.db()).unwrap();
    conn.query_row(
        &format!("SELECT {column} FROM feeds WHERE name = ?1"),
        [name],
        |r| r.get(0),
    )
    .unwrap()
}

fn feed_text(ws: &Workspace, name: &str, column: &str) -> Option<String> {
    feed_column(ws, name, column)
}

fn feed_int(ws: &Workspace, name: &str, column: &str) -> Option<i64> {
    feed_column(ws, name, column)
}

fn titles(ws: &Workspace) -> Vec<String> {
    let conn = rusqlite::Connection::open(ws.db()).unwrap();
    let mut stmt = conn
        .prepare("SELECT title FROM articles ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn feeds_json(out: &common::Output) -> Vec<serde_json::Value> {
    serde_json::from_str(&out.stdout).expect("feeds --json prints JSON")
}

fn three_items() -> String {
    rss(
        "News",
        &[
            ("n1", "First", "one"),
            ("n2", "Second", "two"),
            ("n3", "Third", "three"),
        ],
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn second_poll_echoes_validators_and_a_304_keeps_them() {
    let site = TestServer::start().await;
    let etag = r#"W/"v1-ä-odd, spacing""#.replace('ä', "a");
    let modified = "Wed, 25 Nov 2026 09:00:00 GMT";
    site.route(
        "/cond.xml",
        Route::Page {
            headers: vec![
                ("content-type", "application/rss+xml".into()),
                ("etag", etag.clone()),
                ("last-modified", modified.into()),
            ],
            body: three_items().into_bytes(),
        },
    );
    let ws = Workspace::new(&config("", &[("News", site.url("/cond.xml"))]));

    ws.run(&["run", "--once"]).await.assert_ok();
    ws.run(&["run", "--once"]).await.assert_ok();
    ws.run(&["run", "--once"]).await.assert_ok();

    let requests = site.requests("/cond.xml");
    assert_eq!(requests.len(), 3);
    assert!(requests[0].get(header::IF_NONE_MATCH).is_none());
    // Both the second and (after a 304 without validators) the third request echo the
    // server's own strings byte for byte.
    for later in &requests[1..] {
        assert_eq!(later[header::IF_NONE_MATCH].as_bytes(), etag.as_bytes());
        assert_eq!(
            later[header::IF_MODIFIED_SINCE].as_bytes(),
            modified.as_bytes()
        );
    }
    assert_eq!(feed_int(&ws, "News", "last_status"), Some(304));
    assert_eq!(
        feed_text(&ws, "News", "etag").as_deref(),
        Some(etag.as_str())
    );
    assert_eq!(titles(&ws).len(), 3);

    let feeds = feeds_json(&ws.run(&["feeds", "--json"]).await);
    assert_eq!(feeds[0]["etag"], true);
    assert_eq!(feeds[0]["last_modified"], true);
    assert_eq!(feeds[0]["last_status"], 304);
    assert_eq!(feeds[0]["articles"], 3);
}

/// A feed named "News" at `path` serving [`three_items`], read once: its server, workspace and
/// the time its body was read (`listed_at`).
async fn read_once(path: &str) -> (TestServer, Workspace, i64) {
    let site = TestServer::start().await;
    site.page(path, "application/rss+xml", three_items());
    let ws = Workspace::new(&config("", &[("News", site.url(path))]));
    ws.run(&["run", "--once"]).await.assert_ok();
    let listed = feed_int(&ws, "News", "listed_at").expect("the body was read");
    (site, ws, listed)
}

/// A server that ignores conditional requests and sends the same body again costs no parse:
/// the feed stays as it was when that body was read (listed then), and a changed body is read.
#[tokio::test(flavor = "multi_thread")]
async fn a_body_sent_again_unchanged_is_not_read_again() {
    let (site, ws, listed) = read_once("/same.xml").await;
    assert!(feed_text(&ws, "News", "body_digest").is_some());
    sleep_past(listed).await;
    ws.run(&["run", "--once"]).await.assert_ok();
    assert_eq!(site.requests("/same.xml").len(), 2);
    assert!(feed_int(&ws, "News", "last_attempt_at") > Some(listed));
    assert_eq!(
        feed_int(&ws, "News", "listed_at"),
        Some(listed),
        "not read again"
    );
    assert_eq!(feed_int(&ws, "News", "last_status"), Some(200));

    let items = [
        ("n4", "Fourth", "four"),
        ("n1", "First", "one"),
        ("n2", "Second", "two"),
    ];
    site.page("/same.xml", "application/rss+xml", rss("News", &items));
    ws.run(&["run", "--once"]).await.assert_ok();
    assert!(
        feed_int(&ws, "News", "listed_at") > Some(listed),
        "the new body was read"
    );
    assert_eq!(titles(&ws), ["First", "Second", "Third", "Fourth"]);
}

/// Only a body that was read is known again: one that failed to parse is parsed each time it
/// comes, and the same bytes under another type are read again.
#[tokio::test(flavor = "multi_thread")]
async fn only_a_body_that_was_read_is_known_again() {
    let (site, ws, listed) = read_once("/f.xml").await;

    site.page("/f.xml", "application/rss+xml", "this is not a feed");
    for _ in 0..2 {
        ws.run(&["run", "--once"]).await;
    }
    assert_eq!(feed_int(&ws, "News", "consecutive_failures"), Some(2));

    sleep_past(listed).await;
    site.page("/f.xml", "application/rss+xml", three_items());
    ws.run(&["run", "--once"]).await.assert_ok();
    assert_eq!(feed_int(&ws, "News", "consecutive_failures"), Some(0));
    assert_eq!(
        feed_int(&ws, "News", "listed_at"),
        Some(listed),
        "known again"
    );

    site.page("/f.xml", "application/xml", three_items());
    ws.run(&["run", "--once"]).await.assert_ok();
    assert!(
        feed_int(&ws, "News", "listed_at") > Some(listed),
        "read again"
    );
    assert_eq!(titles(&ws).len(), 3);
}

/// Each listed item's article and last-seen mark, as the store keeps them: per item, 16 bytes
/// of digest, the article's id and its mark (little-endian `i64`s).
fn listing(ws: &Workspace) -> Vec<(i64, i64)> {
    let conn = rusqlite::Connection::open(ws.db()).unwrap();
    let items: Vec<u8> = conn
        .query_row("SELECT items FROM listings", [], |r| r.get(0))
        .unwrap();
    let number = |b: &[u8]| i64::from_le_bytes(b.try_into().unwrap());
    let mut listed: Vec<(i64, i64)> = items
        .chunks(32)
        .map(|item| (number(&item[16..24]), number(&item[24..])))
        .collect();
    listed.sort();
    listed
}

/// Items whose text is the one read before are left out of the parse; their articles are
/// found in the feed's listing and marked as still in the feed once their mark is a day old.
/// An item edited in place is read again, and is not new.
#[tokio::test(flavor = "multi_thread")]
async fn items_read_before_are_left_out_and_their_articles_kept_marked() {
    let (site, ws, listed) = read_once("/items.xml").await;
    assert_eq!(listing(&ws).len(), 3);
    sleep_past(listed).await;

    let mut items = vec![
        ("n4", "Fourth", "four"),
        ("n1", "First", "one"),
        ("n2", "Second", "two"),
    ];
    site.page("/items.xml", "application/rss+xml", rss("News", &items));
    ws.run(&["run", "--once"])
        .await
        .assert_ok()
        .assert_stderr_has("read_before=2");
    assert_eq!(titles(&ws), ["First", "Second", "Third", "Fourth"]);
    let ids = |ws: &Workspace| -> Vec<i64> {
        let ids = ["n4", "n1", "n2"]
            .map(|guid| ws.query_i64(&format!("SELECT id FROM articles WHERE guid = '{guid}'")));
        let mut ids = ids.to_vec();
        ids.sort();
        ids
    };
    let listed_ids: Vec<i64> = listing(&ws).iter().map(|l| l.0).collect();
    assert_eq!(listed_ids, ids(&ws));

    items[1].2 = "one, corrected";
    site.page("/items.xml", "application/rss+xml", rss("News", &items));
    ws.run(&["run", "--once"])
        .await
        .assert_ok()
        .assert_stderr_has("read_before=2");
    assert_eq!(titles(&ws).len(), 4, "an edited item is not new");
    let listed_ids: Vec<i64> = listing(&ws).iter().map(|l| l.0).collect();
    assert_eq!(listed_ids, ids(&ws));

    // Three days on for the store: every mark is due again.
    let conn = rusqlite::Connection::open(ws.db()).unwrap();
    let old = Utc::now().timestamp() - 3 * 24 * 60 * 60;
    conn.execute("UPDATE articles SET last_seen_at = ?1", [old])
        .unwrap();
    // Only the marks change: the items must still be known by their digests.
    let stored: Vec<u8> = conn
        .query_row("SELECT items FROM listings", [], |r| r.get(0))
        .unwrap();
    let aged: Vec<u8> = stored
        .chunks(32)
        .flat_map(|item| {
            let mut item = item.to_vec();
            item[24..].copy_from_slice(&old.to_le_bytes());
            item
        })
        .collect();
    conn.execute("UPDATE listings SET items = ?1", [aged])
        .unwrap();
    // A listed article no longer stored is found out when its mark is due.
    conn.execute("DELETE FROM articles WHERE guid = 'n2'", [])
        .unwrap();
    drop(conn);
    let before = Utc::now().timestamp();
    site.page(
        "/items.xml",
        "application/rss+xml",
        rss("News again", &items),
    );
    ws.run(&["run", "--once"])
        .await
        .assert_ok()
        .assert_stderr_has("read_before=3");
    for (guid, marked) in [("n4", true), ("n1", true), ("n3", false)] {
        let seen = ws.query_i64(&format!(
            "SELECT last_seen_at FROM articles WHERE guid = '{guid}'"
        ));
        assert_eq!(seen >= before, marked, "{guid}");
    }
    let marks = listing(&ws);
    assert_eq!(
        marks.len(),
        2,
        "the item of the article gone is off the listing"
    );
    assert!(marks.iter().all(|(_, mark)| *mark >= before));
    // Its item is parsed again, and its article stored again.
    site.page("/items.xml", "application/rss+xml", rss("News", &items));
    ws.run(&["run", "--once"])
        .await
        .assert_ok()
        .assert_stderr_has("read_before=2");
    assert_eq!(titles(&ws), ["First", "Third", "Fourth", "Second"]);
    assert_eq!(listing(&ws).len(), 3);
}

/// An item found by its link alone stands for no article of its own, so it is read each time:
/// a later item with its id is then a repeat of it, as in a parse of the whole body.
#[tokio::test(flavor = "multi_thread")]
async fn an_item_known_by_its_link_alone_is_read_each_time() {
    let item = |guid: &str, title: &str, link: &str| {
        format!(
            "<item><guid isPermaLink=\"false\">{guid}</guid><title>{title}</title>\
             <link>https://news.example/{link}</link></item>"
        )
    };
    let body = |items: &[String]| {
        format!(
            "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>News</title>{}\
             </channel></rss>",
            items.concat()
        )
    };
    let site = TestServer::start().await;
    let ws = Workspace::new(&config("", &[("News", site.url("/f.xml"))]));
    let serve = |items: &[String]| site.page("/f.xml", "application/rss+xml", body(items));
    serve(&[item("a", "First", "l")]);
    ws.run(&["run", "--once"]).await.assert_ok();
    // Another id over the stored link: the same article.
    let moved = item("k", "First, moved", "l");
    serve(std::slice::from_ref(&moved));
    ws.run(&["run", "--once"]).await.assert_ok();
    serve(&[moved, item("k", "Repeat", "l2")]);
    ws.run(&["run", "--once"])
        .await
        .assert_ok()
        .assert_stderr_has("read_before=0");
    assert_eq!(titles(&ws), ["First"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn user_agent_names_feedwatch_and_its_version() {
    let site = TestServer::start().await;
    site.page("/ua.xml", "application/rss+xml", three_items());
    let ws = Workspace::new(&config("", &[("News", site.url("/ua.xml"))]));
    ws.run(&["run", "--once"]).await.assert_ok();
    let agent = site.requests("/ua.xml")[0][header::USER_AGENT]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        agent.starts_with(&format!("feedwatch/{}", env!("CARGO_PKG_VERSION"))),
        "{agent}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cache_control_max_age_delays_the_next_poll() {
    let site = TestServer::start().await;
    site.route(
        "/cached.xml",
        Route::Page {
            headers: vec![
                ("content-type", "application/rss+xml".into()),
                ("cache-control", "public, max-age=7200".into()),
            ],
            body: three_items().into_bytes(),
        },
    );
    let ws = Workspace::new(&config(
        "interval = \"15m\"",
        &[("News", site.url("/cached.xml"))],
    ));
    let before = Utc::now().timestamp();
    ws.run(&["run", "--once"]).await.assert_ok();
    let next = feed_int(&ws, "News", "next_poll_at").unwrap();
    assert!(
        next >= before + 7200,
        "next poll {} s from now",
        next - before
    );
}

fn gzip_of_zeros(megabytes: usize) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1024 * 1024];
    for _ in 0..megabytes {
        encoder.write_all(&zeros).unwrap();
    }
    encoder.finish().unwrap()
}

/// Runs the binary and returns its exit status and its own peak resident memory in KiB.
async fn run_measuring_memory(ws: &Workspace, args: &[&str]) -> (i32, i64, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_feedwatch"));
    cmd.arg("--config").arg(ws.config()).args(args);
    for var in ["http_proxy", "HTTP_PROXY", "ALL_PROXY", "RUST_LOG"] {
        cmd.env_remove(var);
    }
    let stderr = ws.path("stderr.log");
    cmd.stderr(std::fs::File::create(&stderr).unwrap())
        .stdout(std::process::Stdio::null());
    let measured = tokio::task::spawn_blocking(move || wait4(&mut cmd))
        .await
        .unwrap();
    (
        measured.code,
        measured.peak_rss_kib,
        std::fs::read_to_string(stderr).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn gzip_bomb_is_cut_off_with_bounded_memory() {
    let site = TestServer::start().await;
    // 200 MB of zeros in about 200 KB on the wire.
    let bomb = tokio::task::spawn_blocking(|| gzip_of_zeros(200))
        .await
        .unwrap();
    assert!(bomb.len() < 1024 * 1024);
    site.route(
        "/bomb.xml",
        Route::Page {
            headers: vec![
                ("content-type", "application/rss+xml".into()),
                ("content-encoding", "gzip".into()),
            ],
            body: bomb,
        },
    );
    site.page("/good.xml", "application/rss+xml", three_items());
    let ws = Workspace::new(&config(
        "max_body = \"5MB\"",
        &[
            ("Bomb", site.url("/bomb.xml")),
            ("Good", site.url("/good.xml")),
        ],
    ));
    let (code, peak_kib, stderr) = run_measuring_memory(&ws, &["run", "--once"]).await;
    assert_eq!(code, 0, "{stderr}");
    let error = feed_text(&ws, "Bomb", "last_error").unwrap();
    assert!(error.contains("larger than the limit"), "{error}");
    assert!(error.contains("/bomb.xml"), "{error}");
    assert_eq!(titles(&ws).len(), 3, "the good feed is stored");
    // Reading the whole bomb would take 200 MB.
    assert!(peak_kib < 80 * 1024, "peak RSS {peak_kib} KiB");
}

#[tokio::test(flavor = "multi_thread")]
async fn gzip_and_deflate_bodies_are_decoded_and_brotli_is_offered() {
    let site = TestServer::start().await;
    let xml = three_items();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(xml.as_bytes()).unwrap();
    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    zlib.write_all(xml.as_bytes()).unwrap();
    for (path, encoding, body) in [
        ("/gzip.xml", "gzip", gz.finish().unwrap()),
        ("/deflate.xml", "deflate", zlib.finish().unwrap()),
    ] {
        site.route(
            path,
            Route::Page {
                headers: vec![
                    ("content-type", "application/rss+xml".into()),
                    ("content-encoding", encoding.into()),
                ],
                body,
            },
        );
    }
    let ws = Workspace::new(&config(
        "",
        &[
            ("Gzip", site.url("/gzip.xml")),
            ("Deflate", site.url("/deflate.xml")),
        ],
    ));
    ws.run(&["run", "--once"]).await.assert_ok();
    assert_eq!(feed_text(&ws, "Gzip", "last_error"), None);
    assert_eq!(feed_text(&ws, "Deflate", "last_error"), None);
    let accept = site.requests("/gzip.xml")[0][header::ACCEPT_ENCODING]
        .to_str()
        .unwrap()
        .to_string();
    for wanted in ["gzip", "br", "deflate"] {
        assert!(accept.contains(wanted), "Accept-Encoding: {accept}");
    }
}

/// A server that sends headers, then one byte a second, forever.
async fn trickle_server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let head = "HTTP/1.1 200 OK\r\ncontent-type: application/rss+xml\r\n\
                            content-length: 1000000\r\n\r\n<";
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                loop {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    if socket.write_all(b" ").await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_body_is_cut_off_by_the_total_timeout_without_delaying_others() {
    let site = TestServer::start().await;
    site.page("/good.xml", "application/rss+xml", three_items());
    let trickle = trickle_server().await;
    let ws = Workspace::new(&config(
        "timeout = \"3s\"",
        &[
            ("Slow", format!("http://{trickle}/feed.xml")),
            ("Good", site.url("/good.xml")),
        ],
    ));
    let started = Instant::now();
    ws.run(&["run", "--once"]).await.assert_ok();
    assert!(started.elapsed() < Duration::from_secs(15));
    let error = feed_text(&ws, "Slow", "last_error").unwrap();
    assert!(error.contains("timed out after 3 s"), "{error}");
    assert_eq!(feed_int(&ws, "Slow", "consecutive_failures"), Some(1));
    assert_eq!(titles(&ws).len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn redirect_loop_is_an_error_not_a_hang() {
    let site = TestServer::start().await;
    site.route(
        "/a.xml",
        Route::Redirect {
            status: 302,
            to: "/b.xml".into(),
        },
    );
    site.route(
        "/b.xml",
        Route::Redirect {
            status: 301,
            to: site.url("/a.xml"),
        },
    );
    let ws = Workspace::new(&config("", &[("Loop", site.url("/a.xml"))]));
    ws.run(&["run", "--once"]).await.assert_ok();
    let error = feed_text(&ws, "Loop", "last_error").unwrap();
    assert!(error.contains("redirect loop"), "{error}");
    assert!(error.contains("/b.xml"), "{error}");
    assert_eq!(site.requests("/a.xml").len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn too_many_redirects_are_an_error() {
    let site = TestServer::start().await;
    for hop in 0..10 {
        site.route(
            &format!("/hop{hop}"),
            Route::Redirect {
                status: 307,
                to: format!("/hop{}", hop + 1),
            },
        );
    }
    let ws = Workspace::new(&config("", &[("Hops", site.url("/hop0"))]));
    ws.run(&["run", "--once"]).await.assert_ok();
    let error = feed_text(&ws, "Hops", "last_error").unwrap();
    assert!(error.contains("more than 5 redirects"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn permanent_redirect_moves_the_feed_and_a_temporary_one_does_not() {
    let site = TestServer::start().await;
    site.page("/new.xml", "application/rss+xml", three_items());
    site.route(
        "/old.xml",
        Route::Redirect {
            status: 301,
            to: "/new.xml".into(),
        },
    );
    site.page(
        "/today.xml",
        "application/rss+xml",
        rss("Today", &[("t1", "Today", "x")]),
    );
    site.route(
        "/usual.xml",
        Route::Redirect {
            status: 302,
            to: "/today.xml".into(),
        },
    );
    let ws = Workspace::new(&config(
        "",
        &[
            ("Moved", site.url("/old.xml")),
            ("Temp", site.url("/usual.xml")),
        ],
    ));
    let first = ws.run(&["run", "--once"]).await;
    first.assert_ok();
    assert!(
        first.stderr.contains("moved permanently") && first.stderr.contains("/new.xml"),
        "{}",
        first.stderr
    );
    ws.run(&["run", "--once"]).await.assert_ok();

    assert_eq!(
        site.requests("/old.xml").len(),
        1,
        "polled at its new address"
    );
    assert_eq!(site.requests("/new.xml").len(), 2);
    assert_eq!(site.requests("/usual.xml").len(), 2, "a 302 is not a move");
    assert_eq!(
        feed_text(&ws, "Moved", "moved_to"),
        Some(site.url("/new.xml"))
    );
    assert_eq!(feed_text(&ws, "Temp", "moved_to"), None);

    let text = ws.run(&["feeds"]).await;
    text.assert_ok();
    assert!(
        text.stdout
            .contains(&format!("moved to:       {}", site.url("/new.xml"))),
        "{}",
        text.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_honour_retry_after_and_are_not_failures() {
    let site = TestServer::start().await;
    site.route(
        "/busy.xml",
        Route::Status {
            status: 429,
            headers: vec![("retry-after", "3600".into())],
        },
    );
    let in_two_hours = Utc::now() + chrono::Duration::hours(2);
    site.route(
        "/down.xml",
        Route::Status {
            status: 503,
            headers: vec![(
                "retry-after",
                in_two_hours.format("%a, %d %b %Y %H:%M:%S GMT").to_string(),
            )],
        },
    );
    let ws = Workspace::new(&config(
        "interval = \"10m\"",
        &[
            ("Busy", site.url("/busy.xml")),
            ("Down", site.url("/down.xml")),
        ],
    ));
    let before = Utc::now().timestamp();
    ws.run(&["run", "--once"]).await.assert_ok();
    ws.run(&["run", "--once"]).await.assert_ok();
    for name in ["Busy", "Down"] {
        assert_eq!(
            feed_int(&ws, name, "consecutive_failures"),
            Some(0),
            "{name}"
        );
    }
    assert_eq!(feed_int(&ws, "Busy", "last_status"), Some(429));
    let busy_next = feed_int(&ws, "Busy", "next_poll_at").unwrap();
    assert!(busy_next >= before + 3600, "{}", busy_next - before);
    let down_next = feed_int(&ws, "Down", "next_poll_at").unwrap();
    assert!(down_next >= in_two_hours.timestamp() - 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn run_once_skips_a_feed_until_the_pause_its_server_asked_for_ends_and_says_so() {
    let site = TestServer::start().await;
    site.route(
        "/busy.xml",
        Route::Status {
            status: 429,
            headers: vec![("retry-after", "3600".into())],
        },
    );
    site.route(
        "/brief.xml",
        Route::Status {
            status: 503,
            headers: vec![("retry-after", "1".into())],
        },
    );
    site.page("/fine.xml", "application/rss+xml", three_items());
    let ws = Workspace::new(&config(
        "interval = \"10m\"",
        &[
            ("Busy", site.url("/busy.xml")),
            ("Brief", site.url("/brief.xml")),
            ("Fine", site.url("/fine.xml")),
        ],
    ));
    ws.run(&["run", "--once"]).await.assert_ok();
    let until = chrono::DateTime::from_timestamp(feed_int(&ws, "Busy", "wait_until").unwrap(), 0)
        .unwrap()
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string();
    assert!(
        feed_int(&ws, "Busy", "wait_until").unwrap() >= Utc::now().timestamp() + 3590,
        "the wait is the hour the server asked for"
    );
    // The short pause ends; the long one does not.
    sleep_past(feed_int(&ws, "Brief", "wait_until").unwrap()).await;

    let second = ws.run(&["run", "--once"]).await;
    second
        .assert_ok()
        .assert_stderr_has(format!("pause until {until} (HTTP 429 with Retry-After)"))
        .assert_stderr_has("1 waiting for their server");
    assert!(
        second
            .stderr
            .lines()
            .any(|l| l.contains("Busy") && l.contains("not polled")),
        "the skipped feed is named:\n{}",
        second.stderr
    );
    assert!(
        !second
            .stderr
            .lines()
            .any(|l| l.contains("Brief") && l.contains("not polled")),
        "{}",
        second.stderr
    );
    assert_eq!(
        site.requests("/busy.xml").len(),
        1,
        "not polled while it waits"
    );
    assert_eq!(
        site.requests("/brief.xml").len(),
        2,
        "polled once its pause ended"
    );
    assert_eq!(
        site.requests("/fine.xml").len(),
        2,
        "other feeds are polled"
    );

    let listing = ws.run(&["feeds"]).await;
    listing
        .assert_ok()
        .assert_stdout_has(format!(
            "Busy  [WAITING until {until}: HTTP 429 with Retry-After]"
        ))
        .assert_stdout_has("Fine  [ok]");
    let json = feeds_json(ws.run(&["feeds", "--json"]).await.assert_ok());
    let busy = json.iter().find(|f| f["name"] == "Busy").unwrap();
    assert_eq!(busy["wait_reason"], "HTTP 429 with Retry-After");
    assert!(busy["waiting_until"].is_string(), "{busy}");
    let fine = json.iter().find(|f| f["name"] == "Fine").unwrap();
    assert!(fine["waiting_until"].is_null(), "{fine}");
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_feed_backs_off_and_is_flagged_but_never_dropped() {
    let site = TestServer::start().await;
    site.route(
        "/broken.xml",
        Route::Status {
            status: 500,
            headers: vec![],
        },
    );
    let ws = Workspace::new(&config(
        "interval = \"10m\"",
        &[("Broken", site.url("/broken.xml"))],
    ));
    let mut delays = Vec::new();
    for _ in 0..4 {
        let before = Utc::now().timestamp();
        ws.run(&["run", "--once"]).await.assert_ok();
        delays.push(feed_int(&ws, "Broken", "next_poll_at").unwrap() - before);
    }
    assert_eq!(site.requests("/broken.xml").len(), 4, "still retried");
    assert_eq!(feed_int(&ws, "Broken", "consecutive_failures"), Some(4));
    // 10 min, 20 min, 40 min, 80 min, each with up to 10% jitter.
    for (i, delay) in delays.iter().enumerate() {
        let base = 600 * (1 << i);
        assert!(
            *delay >= base - 2 && *delay <= base + base / 10 + 2,
            "{delays:?}"
        );
    }
    let feeds = feeds_json(&ws.run(&["feeds", "--json"]).await);
    assert_eq!(feeds[0]["consecutive_failures"], 4);
    assert_eq!(feeds[0]["last_status"], 500);
    assert!(
        feeds[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("HTTP 500")
    );
    assert!(
        feeds[0]["flags"][0]
            .as_str()
            .unwrap()
            .contains("FAILING (4 in a row)")
    );

    // Recovery resets the count.
    site.page("/broken.xml", "application/rss+xml", three_items());
    ws.run(&["run", "--once"]).await.assert_ok();
    assert_eq!(feed_int(&ws, "Broken", "consecutive_failures"), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn gone_feed_stops_being_polled_and_says_so() {
    let site = TestServer::start().await;
    site.route(
        "/gone.xml",
        Route::Status {
            status: 410,
            headers: vec![],
        },
    );
    let ws = Workspace::new(&config("", &[("Gone", site.url("/gone.xml"))]));
    let first = ws.run(&["run", "--once"]).await;
    first.assert_ok();
    first.assert_stderr_has("gone for good");
    let second = ws.run(&["run", "--once"]).await;
    second.assert_ok();
    second.assert_stderr_has("410 Gone");
    assert_eq!(site.requests("/gone.xml").len(), 1, "not polled again");

    let text = ws.run(&["feeds"]).await;
    text.assert_stdout_has("GONE (410)");
    let feeds = feeds_json(&ws.run(&["feeds", "--json"]).await);
    assert_eq!(feeds[0]["gone"], true);
    assert_eq!(feeds[0]["next_poll_at"], serde_json::Value::Null);
}

#[tokio::test(flavor = "multi_thread")]
async fn html_page_names_the_feed_it_links() {
    let site = TestServer::start().await;
    site.page(
        "/blog/",
        "text/html; charset=utf-8",
        "<!DOCTYPE html><html><head><title>Blog</title>\
         <link rel=\"alternate\" type=\"application/rss+xml\" href=\"/blog/feed.xml\">\
         </head><body>Hello</body></html>",
    );
    let ws = Workspace::new(&config("", &[("Blog", site.url("/blog/"))]));
    ws.run(&["run", "--once"]).await.assert_ok();
    let error = feed_text(&ws, "Blog", "last_error").unwrap();
    assert!(error.contains("HTML page"), "{error}");
    assert!(error.contains(&site.url("/blog/feed.xml")), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn all_new_items_warn_of_missed_items_and_adaptive_shortens_the_interval() {
    let site = TestServer::start().await;
    let batch = |n: usize| {
        let items: Vec<(String, String)> = (n..n + 3)
            .map(|i| (format!("g{i}"), format!("Story {i}")))
            .collect();
        let refs: Vec<(&str, &str, &str)> = items
            .iter()
            .map(|(g, t)| (g.as_str(), t.as_str(), "x"))
            .collect();
        rss("Busy", &refs)
    };
    site.page("/fast.xml", "application/rss+xml", batch(0));
    site.page("/fixed.xml", "application/rss+xml", batch(0));
    let mut text = config(
        "interval = \"1h\"",
        &[
            ("Fast", site.url("/fast.xml")),
            ("Fixed", site.url("/fixed.xml")),
        ],
    );
    text = text.replace(
        &format!("url = \"{}\"\n", site.url("/fast.xml")),
        &format!("url = \"{}\"\nadaptive = true\n", site.url("/fast.xml")),
    );
    let ws = Workspace::new(&text);

    let first = ws.run(&["run", "--once"]).await;
    first.assert_ok();
    assert!(!first.stderr.contains("all 3 items were new"), "first poll");
    site.page("/fast.xml", "application/rss+xml", batch(10));
    site.page("/fixed.xml", "application/rss+xml", batch(10));
    let before = Utc::now().timestamp();
    let second = ws.run(&["run", "--once"]).await;
    second.assert_ok();
    assert!(
        second.stderr.contains("all 3 items were new") && second.stderr.contains("30m"),
        "{}",
        second.stderr
    );
    second.assert_stderr_has("consider `interval");

    let fast_next = feed_int(&ws, "Fast", "next_poll_at").unwrap() - before;
    let fixed_next = feed_int(&ws, "Fixed", "next_poll_at").unwrap() - before;
    assert!((1790..=1810).contains(&fast_next), "{fast_next}");
    assert!((3590..=3610).contains(&fixed_next), "{fixed_next}");

    let feeds = feeds_json(&ws.run(&["feeds", "--json"]).await);
    for feed in &feeds {
        assert_eq!(feed["suggested_interval_secs"], 1800, "{feed}");
        assert!(feed["flags"].to_string().contains("missed items"), "{feed}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn many_feeds_on_one_host_are_not_fetched_all_at_once() {
    let site = TestServer::start().await;
    let mut feeds = Vec::new();
    for i in 0..12 {
        let path = format!("/slow{i}.xml");
        site.route(
            &path,
            Route::Slow {
                delay: Duration::from_millis(300),
                body: rss("S", &[(&format!("s{i}"), "Slow", "x")]).into_bytes(),
            },
        );
        feeds.push((format!("Slow {i}"), site.url(&path)));
    }
    let feeds: Vec<(&str, String)> = feeds.iter().map(|(n, u)| (n.as_str(), u.clone())).collect();
    let ws = Workspace::new(&config("", &feeds));
    ws.run(&["run", "--once"]).await.assert_ok();
    assert_eq!(titles(&ws).len(), 12);
    let most = site.most_in_flight();
    assert!(
        (2..=feedwatch::fetch::PER_HOST).contains(&most),
        "{most} in flight"
    );
}

// ---- encodings: real encoded bytes over HTTP ----

const CYRILLIC: &str = "Кремль: новости дня";
const LATIN: &str = "Café crème à Zürich";

fn encoded(text: &str, encoding: &'static encoding_rs::Encoding) -> Vec<u8> {
    let (bytes, _, unmappable) = encoding.encode(text);
    assert!(!unmappable, "{text} fits {}", encoding.name());
    bytes.into_owned()
}

fn feed_xml(declaration: Option<&str>, title: &str) -> String {
    let decl = declaration
        .map(|label| format!("<?xml version=\"1.0\" encoding=\"{label}\"?>\n"))
        .unwrap_or_default();
    format!(
        "{decl}<rss version=\"2.0\"><channel><title>{title}</title>\
         <item><guid>e1</guid><title>{title}</title><description>{title}</description></item>\
         </channel></rss>"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn legacy_encodings_come_out_as_correct_text() {
    let site = TestServer::start().await;
    let win1251 = encoding_rs::WINDOWS_1251;
    let koi8 = encoding_rs::KOI8_R;
    let latin1 = encoding_rs::WINDOWS_1252; // what ISO-8859-1 means on the web
    let utf16: Vec<u8> = {
        let mut bytes = vec![0xFF, 0xFE];
        for unit in feed_xml(Some("UTF-16"), CYRILLIC).encode_utf16() {
            bytes.extend_from_slice(&unit.to_le_bytes());
        }
        bytes
    };
    let mut bom = vec![0xEF, 0xBB, 0xBF];
    bom.extend_from_slice(feed_xml(Some("utf-8"), CYRILLIC).as_bytes());
    // (feed, Content-Type, XML declaration, encoding, text): each label from one side only.
    let legacy = [
        (
            "cp1251-declared",
            "application/rss+xml",
            Some("windows-1251"),
            win1251,
            CYRILLIC,
        ),
        (
            "cp1251-http",
            "text/xml; charset=windows-1251",
            None,
            win1251,
            CYRILLIC,
        ),
        (
            "koi8-declared",
            "application/xml",
            Some("KOI8-R"),
            koi8,
            CYRILLIC,
        ),
        (
            "koi8-http",
            "application/rss+xml; charset=koi8-r",
            None,
            koi8,
            CYRILLIC,
        ),
        (
            "latin1-declared",
            "text/xml",
            Some("ISO-8859-1"),
            latin1,
            LATIN,
        ),
        (
            "latin1-http",
            "application/rss+xml; charset=ISO-8859-1",
            None,
            latin1,
            LATIN,
        ),
    ];
    let mut cases: Vec<(&str, &str, Vec<u8>, &str)> = legacy
        .into_iter()
        .map(|(name, content_type, declaration, encoding, text)| {
            let body = encoded(&feed_xml(declaration, text), encoding);
            (name, content_type, body, text)
        })
        .collect();
    cases.push(("utf16-bom", "application/rss+xml", utf16, CYRILLIC));
    cases.push(("utf8-bom", "application/rss+xml", bom, CYRILLIC));
    let mut feeds = Vec::new();
    for (name, content_type, body, _) in &cases {
        let path = format!("/{name}.xml");
        site.page(&path, content_type, body.clone());
        feeds.push((*name, site.url(&path)));
    }
    let ws = Workspace::new(&config("", &feeds));
    ws.run(&["run", "--once"]).await.assert_ok();

    let conn = rusqlite::Connection::open(ws.db()).unwrap();
    let mut wrong = Vec::new();
    for (name, _, _, expected) in &cases {
        let stored: Option<String> = conn
            .query_row(
                "SELECT a.title FROM articles a JOIN feeds f ON f.id = a.feed_id
                 WHERE f.name = ?1",
                [name],
                |r| r.get(0),
            )
            .ok();
        if stored.as_deref() != Some(*expected) {
            let error = feed_text(&ws, name, "last_error");
            wrong.push(format!("{name}: stored {stored:?}, error {error:?}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

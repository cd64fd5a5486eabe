//! `full_text`: the real binary fetches new articles' pages from a local server, reads their
//! main text into `content` before matching, fetches each page once, and keeps the feed's
//! teaser when a page fails (404, timeout, not HTML, too large).

mod common;

use std::time::Duration;

use common::{ConfigBuilder, Daemon, Route, TestServer, Workspace, wait_until};

const WAIT: Duration = Duration::from_secs(30);

fn page(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/pages/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// An RSS document whose `(guid, title, teaser, link)` items link to pages of `server`.
fn feed(server: &TestServer, items: &[(&str, &str, &str, &str)]) -> String {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\"><channel>\
         <title>Courier</title><link>https://news.example/</link>",
    );
    for (guid, title, teaser, path) in items {
        xml.push_str(&format!(
            "<item><guid isPermaLink=\"false\">{guid}</guid><title>{title}</title>\
             <link>{}</link><description>{teaser}</description>\
             <pubDate>Wed, 25 Nov 2026 09:00:00 GMT</pubDate></item>",
            server.url(path)
        ));
    }
    xml.push_str("</channel></rss>");
    xml
}

fn html(server: &TestServer, path: &str, name: &str) {
    server.page(path, "text/html; charset=utf-8", page(name));
}

/// The stored `content` of the article with this guid.
fn content(ws: &Workspace, guid: &str) -> String {
    let conn = rusqlite::Connection::open(ws.db()).unwrap();
    conn.query_row(
        "SELECT content FROM articles WHERE guid = ?1",
        [guid],
        |r| r.get(0),
    )
    .unwrap()
}

fn summary(ws: &Workspace, guid: &str) -> String {
    let conn = rusqlite::Connection::open(ws.db()).unwrap();
    conn.query_row(
        "SELECT summary FROM articles WHERE guid = ?1",
        [guid],
        |r| r.get(0),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_word_only_in_the_article_page_alerts_and_each_page_is_fetched_once() {
    let server = TestServer::start().await;
    html(&server, "/story/desalination", "news-article.html");
    html(&server, "/story/rail", "cookie-wall.html");
    server.feed(
        "courier.xml",
        "application/rss+xml",
        feed(
            &server,
            &[
                (
                    "d1",
                    "Council decides on water supply",
                    "The council voted on Monday night.",
                    "/story/desalination",
                ),
                (
                    "r1",
                    "Rail operator fined",
                    "A fine for May.",
                    "/story/rail",
                ),
            ],
        ),
    );
    let config = ConfigBuilder::new()
        .named_feed("courier", &server.url("/feeds/courier.xml"))
        .with("full_text = true")
        .rule("water", "desalination", &["hook"])
        // Only in the page's comments, which are not the article.
        .rule("comments", "zeppelin", &["hook"])
        .webhook("hook", &server.url("/hook"))
        .build();
    let ws = Workspace::new(&config);

    ws.run(&["run", "--once"]).await.assert_ok();
    let received = server.received();
    assert_eq!(received.len(), 1, "{received:?}");
    let alert = received[0].json();
    assert_eq!(alert["rule"], "water");
    assert_eq!(alert["article"]["title"], "Council decides on water supply");
    assert_eq!(alert["snippet"]["field"], "content", "{alert}");
    assert!(
        alert["snippet"]["text"]
            .as_str()
            .unwrap()
            .contains("desalination plant"),
        "{alert}"
    );
    // The page's text is the article's content; the feed's teaser stays its summary.
    let stored = content(&ws, "d1");
    assert!(
        stored.starts_with("The city council voted nine to four"),
        "{stored}"
    );
    assert!(!stored.contains("Most read") && !stored.contains("zeppelin"));
    assert_eq!(summary(&ws, "d1"), "The council voted on Monday night.");
    assert!(content(&ws, "r1").contains("Northline Trains"));
    assert_eq!(server.requests("/story/desalination").len(), 1);
    assert_eq!(server.requests("/story/rail").len(), 1);
    // Pages are asked for as pages would be: feedwatch's user agent, HTML accepted.
    let asked = &server.requests("/story/rail")[0];
    assert!(
        asked["user-agent"]
            .to_str()
            .unwrap()
            .starts_with("feedwatch/")
    );
    assert!(asked["accept"].to_str().unwrap().contains("*/*"));

    // Search sees the page's text too.
    let found = ws.run(&["search", "content:breakwater", "--json"]).await;
    found.assert_ok();
    let hits: serde_json::Value = serde_json::from_str(&found.stdout).unwrap();
    assert_eq!(hits.as_array().unwrap().len(), 1, "{hits}");
    assert_eq!(hits[0]["title"], "Council decides on water supply");

    // Polled again, with one more article: only the new article's page is fetched.
    html(&server, "/story/blog", "blog-comments.html");
    server.feed(
        "courier.xml",
        "application/rss+xml",
        feed(
            &server,
            &[
                ("b1", "Bakery notes", "On starters.", "/story/blog"),
                (
                    "d1",
                    "Council decides on water supply",
                    "The council voted on Monday night.",
                    "/story/desalination",
                ),
                (
                    "r1",
                    "Rail operator fined",
                    "A fine for May.",
                    "/story/rail",
                ),
            ],
        ),
    );
    ws.run(&["run", "--once"]).await.assert_ok();
    assert_eq!(server.requests("/story/desalination").len(), 1);
    assert_eq!(server.requests("/story/rail").len(), 1);
    assert_eq!(server.requests("/story/blog").len(), 1);
    assert_eq!(server.received().len(), 1);
    assert!(content(&ws, "b1").contains("rye flour milled by a farm"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_page_that_fails_leaves_the_teaser_in_place() {
    let server = TestServer::start().await;
    html(&server, "/story/good", "news-article.html");
    server.page(
        "/story/report.pdf",
        "application/pdf",
        b"%PDF-1.7\n%\xe2\xe3\n".to_vec(),
    );
    // Past the feed's body cap of 64 KB.
    let huge = format!(
        "<html><body><article>{}</article></body></html>",
        "<p>The regional water board met again to discuss desalination. </p>".repeat(2000)
    );
    server.page("/story/huge", "text/html", huge);
    server.route(
        "/story/slow",
        Route::Slow {
            delay: Duration::from_secs(60),
            body: page("news-article.html"),
        },
    );
    server.feed(
        "courier.xml",
        "application/rss+xml",
        feed(
            &server,
            &[
                (
                    "missing",
                    "Gone story",
                    "Teaser of a gone story.",
                    "/story/gone",
                ),
                (
                    "pdf",
                    "A report",
                    "Teaser of a report.",
                    "/story/report.pdf",
                ),
                (
                    "huge",
                    "A huge page",
                    "Teaser of a huge page.",
                    "/story/huge",
                ),
                (
                    "slow",
                    "A slow page",
                    "Teaser of a slow page.",
                    "/story/slow",
                ),
                (
                    "good",
                    "Council decides",
                    "The council voted.",
                    "/story/good",
                ),
            ],
        ),
    );
    let config = ConfigBuilder::new()
        .named_feed("courier", &server.url("/feeds/courier.xml"))
        .with("full_text = true\nmax_body = \"64KB\"\ntimeout = \"2s\"")
        .rule("water", "desalination", &["hook"])
        .webhook("hook", &server.url("/hook"))
        .build();
    let ws = Workspace::new(&config);

    ws.run(&["run", "--once"]).await.assert_ok();
    for (guid, teaser) in [
        ("missing", "Teaser of a gone story."),
        ("pdf", "Teaser of a report."),
        ("huge", "Teaser of a huge page."),
        ("slow", "Teaser of a slow page."),
    ] {
        assert_eq!(content(&ws, guid), "", "{guid}");
        assert_eq!(summary(&ws, guid), teaser, "{guid}");
    }
    // The pages that worked still did, and only their matches alerted.
    assert!(content(&ws, "good").contains("desalination plant"));
    let received = server.received();
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0].json()["article"]["title"], "Council decides");
    for path in [
        "/story/gone",
        "/story/report.pdf",
        "/story/huge",
        "/story/slow",
        "/story/good",
    ] {
        assert_eq!(server.requests(path).len(), 1, "{path}");
    }

    // The failed pages are not asked again: their articles are stored.
    ws.run(&["run", "--once"]).await.assert_ok();
    for path in [
        "/story/gone",
        "/story/report.pdf",
        "/story/huge",
        "/story/slow",
    ] {
        assert_eq!(server.requests(path).len(), 1, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_page_in_two_feeds_is_fetched_once() {
    let server = TestServer::start().await;
    html(&server, "/story/desalination", "news-article.html");
    for name in ["wire.xml", "local.xml"] {
        server.feed(
            name,
            "application/rss+xml",
            feed(
                &server,
                &[(
                    name,
                    "Council decides on water supply",
                    "The council voted.",
                    "/story/desalination",
                )],
            ),
        );
    }
    let config = ConfigBuilder::new()
        .defaults("full_text = true")
        .named_feed("wire", &server.url("/feeds/wire.xml"))
        .named_feed("local", &server.url("/feeds/local.xml"))
        .rule("water", "content:desalination", &[])
        .build();
    let ws = Workspace::new(&config);

    ws.run(&["run", "--once"]).await.assert_ok();
    assert_eq!(server.requests("/story/desalination").len(), 1);
    for guid in ["wire.xml", "local.xml"] {
        assert!(content(&ws, guid).contains("desalination plant"), "{guid}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn auto_fetches_only_the_pages_of_teasers() {
    let server = TestServer::start().await;
    html(&server, "/story/teaser", "news-article.html");
    html(&server, "/story/full", "cookie-wall.html");
    let long = "The feed carries this story in full, paragraph after paragraph. ".repeat(15);
    server.feed(
        "courier.xml",
        "application/rss+xml",
        feed(
            &server,
            &[
                (
                    "t",
                    "Council decides",
                    "The council voted. Read more",
                    "/story/teaser",
                ),
                ("f", "Rail operator fined", &long, "/story/full"),
            ],
        ),
    );
    let config = ConfigBuilder::new()
        .named_feed("courier", &server.url("/feeds/courier.xml"))
        .with("full_text = \"auto\"")
        .rule("water", "desalination", &[])
        .build();
    let ws = Workspace::new(&config);

    ws.run(&["run", "--once"]).await.assert_ok();
    assert_eq!(server.requests("/story/teaser").len(), 1);
    assert_eq!(server.requests("/story/full").len(), 0);
    assert!(content(&ws, "t").contains("desalination plant"));
    assert_eq!(ws.query_i64("SELECT COUNT(*) FROM matches"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hanging_page_does_not_hold_up_other_feeds() {
    let server = TestServer::start().await;
    server.route(
        "/story/hanging",
        Route::Slow {
            delay: Duration::from_secs(120),
            body: page("news-article.html"),
        },
    );
    html(&server, "/story/rail", "cookie-wall.html");
    server.feed(
        "slow.xml",
        "application/rss+xml",
        feed(
            &server,
            &[(
                "h",
                "Hanging",
                "Teaser of a hanging page.",
                "/story/hanging",
            )],
        ),
    );
    server.feed(
        "fast.xml",
        "application/rss+xml",
        feed(
            &server,
            &[("r", "Rail operator fined", "A fine.", "/story/rail")],
        ),
    );
    let config = ConfigBuilder::new()
        .defaults("full_text = true\ninterval = \"1h\"")
        .named_feed("slow", &server.url("/feeds/slow.xml"))
        .with("timeout = \"10s\"")
        .named_feed("fast", &server.url("/feeds/fast.xml"))
        .rule("rail", "content:Northline", &["hook"])
        .webhook("hook", &server.url("/hook"))
        .build();
    let ws = Workspace::new(&config);
    let daemon = Daemon::start(&ws.config(), &[]);

    wait_until(WAIT, "the hanging page to be asked for", || {
        !server.requests("/story/hanging").is_empty()
    })
    .await;
    wait_until(WAIT, "the other feed's alert", || {
        server.received().len() == 1
    })
    .await;
    // The other feed was polled, matched on its page and alerted while this page still hangs:
    // its article is not stored yet.
    assert_eq!(
        ws.query_i64("SELECT COUNT(*) FROM articles WHERE guid = 'h'"),
        0,
        "{}",
        daemon.log()
    );
    wait_until(WAIT, "the hanging page's article, with its teaser", || {
        ws.query_i64("SELECT COUNT(*) FROM articles WHERE guid = 'h'") == 1
    })
    .await;
    assert_eq!(content(&ws, "h"), "");
    assert_eq!(summary(&ws, "h"), "Teaser of a hanging page.");
    daemon.kill().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn preview_matches_a_full_text_feed_on_its_pages() {
    let server = TestServer::start().await;
    html(&server, "/story/desalination", "news-article.html");
    server.feed(
        "courier.xml",
        "application/rss+xml",
        feed(
            &server,
            &[(
                "d1",
                "Council decides on water supply",
                "The council voted.",
                "/story/desalination",
            )],
        ),
    );
    let url = server.url("/feeds/courier.xml");
    let config = ConfigBuilder::new()
        .named_feed("courier", &url)
        .with("full_text = true")
        .rule("water", "desalination", &[])
        .build();
    let ws = Workspace::new(&config);

    let out = ws.run(&["preview", &url, "--json"]).await;
    out.assert_ok();
    let preview: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        preview["entries"][0]["matched_rules"][0]["rule"], "water",
        "{preview}"
    );
    assert_eq!(server.requests("/story/desalination").len(), 1);
    // Preview writes nothing: a poll afterwards fetches the page for the article it stores.
    ws.run(&["run", "--once"]).await.assert_ok();
    assert!(content(&ws, "d1").contains("desalination plant"));
}

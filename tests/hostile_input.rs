//! Input built to hurt, through the real binary: a query, config or feed nested far deeper than
//! any real one gives a clear error naming the position and the limit, and never a crash; a
//! running daemon keeps its previous config when such an edit arrives. A subscription list or a
//! web page cannot point feedwatch at local files unless the user says `--allow-local`.

mod common;

use std::time::Duration;

use common::{Daemon, TestServer, Workspace, rss, wait_until};

const WAIT: Duration = Duration::from_secs(20);

/// A process killed by a signal (stack overflow aborts with SIGABRT) has no exit code.
fn assert_clean_exit(out: &common::Output) {
    assert!(
        matches!(out.code, Some(0..=2)),
        "feedwatch ended with {:?}:\n{}",
        out.code,
        out.stderr
    );
    assert!(!out.stderr.contains("overflow"), "{}", out.stderr);
}

fn nested(levels: usize, inner: &str) -> String {
    format!("{}{inner}{}", "(".repeat(levels), ")".repeat(levels))
}

#[tokio::test(flavor = "multi_thread")]
async fn check_refuses_a_query_nested_100000_deep_with_position_and_limit() {
    let ws = Workspace::new(&format!(
        "[[rule]]\nname = \"deep\"\nquery = \"{}\"\n",
        nested(100_000, "NATO")
    ));
    let out = ws.run(&["check"]).await;
    assert_clean_exit(&out);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    out.assert_stderr_has(
        "rule `deep`: the query nests `(` and `NOT` more than 100 levels deep at column 101",
    );
    assert!(
        out.stderr.len() < 2000,
        "the error shows the stretch around the position, not the whole query: {} bytes",
        out.stderr.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn check_refuses_a_long_chain_of_not() {
    let ws = Workspace::new(&format!(
        "[[rule]]\nname = \"nots\"\nquery = \"{}NATO\"\n",
        "NOT ".repeat(100_000)
    ));
    let out = ws.run(&["check"]).await;
    assert_clean_exit(&out);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    out.assert_stderr_has("more than 100 levels deep at column 401");
}

#[tokio::test(flavor = "multi_thread")]
async fn preview_refuses_a_deep_query_given_on_the_command_line() {
    let ws = Workspace::new("");
    let feed = ws.path("feed.xml");
    std::fs::write(&feed, rss("F", &[("a1", "NATO summit", "")])).unwrap();
    // One argument may hold 128 KiB: 60,000 levels is as deep as a command line can carry.
    let query = nested(60_000, "NATO");
    let out = ws
        .run(&["preview", feed.to_str().unwrap(), "--query", &query])
        .await;
    assert_clean_exit(&out);
    assert_ne!(out.code, Some(0));
    out.assert_stderr_has(
        "--query: the query nests `(` and `NOT` more than 100 levels deep at column 101",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reload_with_a_deep_query_keeps_the_daemon_on_its_previous_config() {
    let server = TestServer::start().await;
    server.feed(
        "a.xml",
        "application/rss+xml",
        rss("A", &[("a1", "NATO one", "")]),
    );
    let config = |query: &str| {
        format!(
            "[defaults]\ncron = \"*/2 * * * * *\"\n\n[[feed]]\nurl = \"{}\"\n\n\
             [[rule]]\nname = \"nato\"\nquery = \"{query}\"\nnotify = [\"hook\"]\n\n\
             [[notifier]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{}\"\n",
            server.url("/feeds/a.xml"),
            server.url("/hook")
        )
    };
    let ws = Workspace::new(&config("NATO"));
    let mut daemon = Daemon::start(&ws.config(), &[]);
    wait_until(WAIT, "the first alert", || server.received().len() == 1).await;

    std::fs::write(ws.config(), config(&nested(100_000, "NATO"))).unwrap();
    // An edit can be seen more than once; wait for the reason itself.
    daemon.wait_for_log("more than 100 levels deep", 1).await;
    assert!(daemon.log().contains("config not reloaded"));
    // The config is read on a small-stacked worker thread: deep TOML is refused there too.
    let deep_toml = format!(
        "{}\nx = {}{}\n",
        config("NATO"),
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    std::fs::write(ws.config(), deep_toml).unwrap();
    daemon.wait_for_log("max recursion depth", 1).await;

    // Still running, on the previous rule: a new item is polled and alerted.
    server.feed(
        "a.xml",
        "application/rss+xml",
        rss("A", &[("a2", "NATO two", ""), ("a1", "NATO one", "")]),
    );
    wait_until(WAIT, "the second alert", || server.received().len() == 2).await;
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(WAIT).await, Some(0), "{}", daemon.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn check_refuses_deeply_nested_toml_with_its_position() {
    for (what, value) in [
        (
            "arrays",
            format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
        ),
        (
            "inline tables",
            format!("{}1{}", "{a=".repeat(100_000), "}".repeat(100_000)),
        ),
    ] {
        let ws = Workspace::new(&format!(
            "[[feed]]\nurl = \"https://x.example/\"\nx = {value}\n"
        ));
        let out = ws.run(&["check"]).await;
        assert_clean_exit(&out);
        assert_eq!(out.code, Some(2), "{what}: {}", out.stderr);
        out.assert_stderr_has("line 3, column");
        out.assert_stderr_has("max recursion depth");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn preview_of_deeply_nested_feeds_ends_in_a_feed_or_a_clear_error() {
    let ws = Workspace::new("");
    let levels = 100_000;
    let cases = [
        (
            "elements.xml",
            format!(
                "<rss version=\"2.0\"><channel><title>T</title><item><title>x</title></item>{}{}</channel></rss>",
                "<x>".repeat(levels),
                "</x>".repeat(levels)
            ),
        ),
        (
            "xhtml.xml",
            format!(
                "<feed xmlns=\"http://www.w3.org/2005/Atom\"><title>T</title><entry><id>1</id>\
                 <title>x</title><content type=\"xhtml\"><div xmlns=\"http://www.w3.org/1999/xhtml\">{}x{}</div></content></entry></feed>",
                "<b>".repeat(levels / 2),
                "</b>".repeat(levels / 2)
            ),
        ),
        (
            "escaped.xml",
            format!(
                "<rss version=\"2.0\"><channel><title>T</title><item><title>x</title><description>{}deep{}</description></item></channel></rss>",
                "&lt;b&gt;".repeat(levels),
                "&lt;/b&gt;".repeat(levels)
            ),
        ),
        (
            "arrays.json",
            format!(
                "{{\"version\":\"https://jsonfeed.org/version/1.1\",\"title\":\"T\",\"items\":[{{\"id\":\"1\",\"title\":\"x\",\"_x\":{}{}}}]}}",
                "[".repeat(levels),
                "]".repeat(levels)
            ),
        ),
    ];
    for (name, body) in cases {
        let path = ws.path(name);
        std::fs::write(&path, body).unwrap();
        let out = ws.run(&["preview", path.to_str().unwrap(), "--json"]).await;
        assert_clean_exit(&out);
        if out.code != Some(0) {
            out.assert_stderr_has(name);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_query_at_the_nesting_limit_still_matches() {
    let ws = Workspace::new("");
    let feed = ws.path("feed.xml");
    std::fs::write(&feed, rss("F", &[("a1", "NATO summit", "")])).unwrap();
    let deep_group = nested(100, "NATO");
    // 50 NOT and 50 groups: 100 levels that cancel out to "NATO".
    let not_chain = format!("{}NATO{}", "NOT (".repeat(50), ")".repeat(50));
    for query in [&deep_group, &not_chain] {
        let out = ws
            .run(&["preview", feed.to_str().unwrap(), "--query", query])
            .await;
        out.assert_ok();
        out.assert_stdout_has("✓ query: NATO");
    }
}

/// A file outside any feed server, which a subscription list or a page must not make feedwatch
/// read: it parses as a feed, so nothing but the refusal keeps it out.
fn local_secret(ws: &Workspace) -> std::path::PathBuf {
    let secret = ws.path("secret.xml");
    std::fs::write(&secret, rss("Secret", &[("s1", "private text", "")])).unwrap();
    secret
}

fn file_url(path: &std::path::Path) -> String {
    format!("file://{}", path.display())
}

#[tokio::test(flavor = "multi_thread")]
async fn import_opml_takes_only_http_outlines_and_names_each_refused_one() {
    let server = TestServer::start().await;
    server.feed(
        "world.xml",
        "application/rss+xml",
        rss("World", &[("w1", "NATO", "")]),
    );
    let ws = Workspace::new("");
    let secret = local_secret(&ws);
    let opml = ws.path("subs.opml");
    std::fs::write(
        &opml,
        format!(
            "<opml version=\"2.0\"><body>\n\
             <outline text=\"World\" xmlUrl=\"{}\"/>\n\
             <outline text=\"Leak\" xmlUrl=\"{}\"/>\n\
             <outline text=\"Relative\" xmlUrl=\"secret.xml\"/>\n\
             <outline xmlUrl=\"/etc/passwd\"/>\n\
             </body></opml>",
            server.url("/feeds/world.xml"),
            file_url(&secret)
        ),
    )
    .unwrap();

    // --keep-unreachable adds what could not be read; refused outlines are not "unreachable".
    let out = ws
        .run(&[
            "import-opml",
            opml.to_str().unwrap(),
            "--keep-unreachable",
            "--json",
        ])
        .await;
    out.assert_ok();
    let summary: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(summary["added"].as_array().unwrap().len(), 1, "{summary}");
    assert_eq!(summary["added"][0]["url"], server.url("/feeds/world.xml"));
    let reasons: Vec<&str> = summary["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        [
            "outline `Leak` on line 3 is not an http(s) address; local files and paths are read only with --allow-local",
            "outline `Relative` on line 4 is not an http(s) address; local files and paths are read only with --allow-local",
            "the outline on line 5 is not an http(s) address; local files and paths are read only with --allow-local",
        ]
    );
    let config = std::fs::read_to_string(ws.config()).unwrap();
    assert!(
        !config.contains("secret") && !config.contains("passwd"),
        "{config}"
    );

    // Said explicitly, local files are taken; a path is relative to the list's own folder.
    let out = ws
        .run(&[
            "import-opml",
            opml.to_str().unwrap(),
            "--allow-local",
            "--json",
        ])
        .await;
    out.assert_ok();
    let summary: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let added: Vec<&str> = summary["added"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["url"].as_str().unwrap())
        .collect();
    assert_eq!(added, [file_url(&secret)], "{summary}");
    assert!(
        summary["skipped"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("already in the config"),
        "the relative path is the same file: {summary}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn feed_add_does_not_follow_a_page_to_a_local_file() {
    let server = TestServer::start().await;
    let ws = Workspace::new("");
    let secret = local_secret(&ws);
    server.feed(
        "site.html",
        "text/html",
        format!(
            "<html><head><link rel=\"alternate\" type=\"application/rss+xml\" href=\"{}\"></head></html>",
            file_url(&secret)
        ),
    );
    let page = server.url("/feeds/site.html");
    let out = ws.run(&["feed", "add", &page]).await;
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    out.assert_stderr_has(format!(
        "{page} is a web page whose feed link {} is not an http(s) address",
        file_url(&secret)
    ));
    out.assert_stderr_has("--allow-local");
    assert_eq!(std::fs::read_to_string(ws.config()).unwrap(), "");

    let out = ws.run(&["feed", "add", &page, "--allow-local"]).await;
    out.assert_ok();
    assert!(
        std::fs::read_to_string(ws.config())
            .unwrap()
            .contains("secret.xml")
    );
}

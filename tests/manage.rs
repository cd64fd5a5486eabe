//! End to end: the commands for living with feedwatch — search, matches reports, feed
//! management, OPML — run as the real binary against a temporary config and database.

mod common;

use common::{ConfigBuilder, TestServer, Workspace, rss};

/// A config polling one local feed, with a rule that matches `NATO`.
fn one_feed_config(server: &TestServer, path: &str) -> String {
    ConfigBuilder::new()
        .named_feed("World", &server.url(path))
        .rule("nato", "NATO", &[])
        .rule("grain", "grain", &[])
        .build()
}

/// Serves a generated archive: filler stories plus a few that mention the searched words.
async fn archive(server: &TestServer) -> Workspace {
    let mut items: Vec<(String, String, String)> = (0..200)
        .map(|i| {
            (
                format!("filler{i}"),
                format!("Local council meeting {i}"),
                "Roads, parks and the budget were discussed at length.".to_string(),
            )
        })
        .collect();
    items.push((
        "strong".into(),
        "Grain deal extended".into(),
        "The grain deal lets grain ships leave port; grain prices fell.".into(),
    ));
    items.push((
        "weak".into(),
        "Harbour news".into(),
        "Among other cargo, some grain arrived. A new deal was signed for fish.".into(),
    ));
    items.push((
        "nato".into(),
        "NATO summit opens".into(),
        "Leaders arrive for talks.".into(),
    ));
    let borrowed: Vec<(&str, &str, &str)> = items
        .iter()
        .map(|(g, t, d)| (g.as_str(), t.as_str(), d.as_str()))
        .collect();
    server.feed("world.xml", "application/rss+xml", rss("World", &borrowed));
    let ws = Workspace::new(&one_feed_config(server, "/feeds/world.xml"));
    ws.run(&["run", "--once"]).await.assert_ok();
    ws
}

fn json(out: &common::Output) -> serde_json::Value {
    out.assert_ok();
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
}

#[tokio::test(flavor = "multi_thread")]
async fn search_ranks_the_story_about_the_words_first_and_highlights_them() {
    let server = TestServer::start().await;
    let ws = archive(&server).await;
    let hits = json(&ws.run(&["search", "grain deal", "--json"]).await);
    let hits = hits.as_array().unwrap();
    let titles: Vec<&str> = hits.iter().map(|h| h["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["Grain deal extended", "Harbour news"]);
    assert!(hits[0]["score"].as_f64().unwrap() < hits[1]["score"].as_f64().unwrap());
    let snippet = hits[0]["snippet"].as_str().unwrap();
    assert!(snippet.contains("[grain]"), "{snippet}");
    assert!(snippet.contains("[deal]"), "{snippet}");
    assert_eq!(hits[0]["feed"], "World");
}

#[tokio::test(flavor = "multi_thread")]
async fn search_understands_rule_syntax_and_filters() {
    let server = TestServer::start().await;
    let ws = archive(&server).await;
    let titles = |v: serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|h| h["title"].as_str().unwrap().to_string())
            .collect()
    };
    let not = json(&ws.run(&["search", "grain NOT fish", "--json"]).await);
    assert_eq!(titles(not), ["Grain deal extended"]);
    let phrase = json(&ws.run(&["search", "\"grain arrived\"", "--json"]).await);
    assert_eq!(titles(phrase), ["Harbour news"]);
    let prefix = json(&ws.run(&["search", "title:summ*", "--json"]).await);
    assert_eq!(titles(prefix), ["NATO summit opens"]);
    let limited = json(
        &ws.run(&["search", "council", "--limit", "5", "--json"])
            .await,
    );
    assert_eq!(limited.as_array().unwrap().len(), 5);
    let other_feed = json(
        &ws.run(&["search", "grain", "--feed", "Nope", "--json"])
            .await,
    );
    assert!(other_feed.as_array().unwrap().is_empty());
    let future = json(
        &ws.run(&["search", "grain", "--since", "2099-01-01", "--json"])
            .await,
    );
    assert!(future.as_array().unwrap().is_empty());
}

/// Stores `count` more articles straight into the database, each saying `backlog`, as if
/// polled by a feedwatch that had no time to index them.
fn store_unindexed(ws: &Workspace, count: usize) {
    let mut conn = rusqlite::Connection::open(ws.db()).unwrap();
    let tx = conn.transaction().unwrap();
    for i in 0..count {
        tx.execute(
            "INSERT INTO articles (feed_id, identity, title, summary, content, first_seen_at)
             VALUES ((SELECT MIN(id) FROM feeds), ?1, 'Backlog story', '', '', 0)",
            [format!("backlog-{i}")],
        )
        .unwrap();
    }
    tx.commit().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn search_indexes_a_large_backlog_itself_only_when_no_feedwatch_runs() {
    let server = TestServer::start().await;
    let ws = archive(&server).await;
    // `run --once` leaves what it stored to be indexed later.
    assert!(!ws.path("feedwatch-search.db").exists());
    // More than a batch (5,000) waits: while feedwatch runs, the backlog is left to it, and
    // the search says what it could not search.
    store_unindexed(&ws, 5_001);
    let waiting = ws.query_i64("SELECT COUNT(*) FROM articles");
    assert!(waiting > 5_001);
    let running = feedwatch::service::InstanceLock::acquire(&ws.db()).unwrap();
    let out = ws.run(&["search", "backlog", "--json"]).await;
    assert!(json(&out).as_array().unwrap().is_empty());
    out.assert_stderr_has(format!(
        "{waiting} recently stored articles are not in the search index yet"
    ));
    // With nobody running, the search indexes them itself.
    drop(running);
    let out = ws
        .run(&["search", "backlog", "--limit", "3", "--json"])
        .await;
    assert_eq!(json(&out).as_array().unwrap().len(), 3);
    assert!(
        out.stderr
            .contains(&format!("indexing {waiting} new articles for search")),
        "{}",
        out.stderr
    );
    assert_eq!(
        ws.query_index_i64("SELECT indexed_through FROM progress"),
        ws.query_i64("SELECT MAX(id) FROM articles")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_search_index_is_built_again_only_when_no_feedwatch_has_it_open() {
    let server = TestServer::start().await;
    let ws = archive(&server).await;
    ws.run(&["search", "grain"]).await.assert_ok();
    let index = ws.path("feedwatch-search.db");
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(ws.path(&format!("feedwatch-search.db{suffix}")));
    }
    let garbage = vec![0x5a; 8192];
    std::fs::write(&index, &garbage).unwrap();

    // A running feedwatch may have the file open: deleting it would leave that one indexing
    // into a file no search reads. The search says so and leaves the file alone.
    let running = feedwatch::service::InstanceLock::acquire(&ws.db()).unwrap();
    let out = ws.run(&["search", "grain"]).await;
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let told = format!(
        "feedwatch (pid {}) running on this database has the index open; restart it",
        std::process::id()
    );
    out.assert_stderr_has(&told);
    assert_eq!(std::fs::read(&index).unwrap(), garbage);

    // With nobody running, the search builds it again and finds the stories.
    drop(running);
    let out = ws.run(&["search", "grain", "--json"]).await;
    assert_eq!(json(&out)[0]["title"], "Grain deal extended");
    out.assert_stderr_has("building it again");
}

#[tokio::test(flavor = "multi_thread")]
async fn search_refuses_what_the_index_cannot_answer_with_exit_code_2() {
    let server = TestServer::start().await;
    let ws = archive(&server).await;
    let out = ws.run(&["search", "/gr.in/"]).await;
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    out.assert_stderr_has("/gr.in/");
    let out = ws.run(&["search", "(grain"]).await;
    assert_eq!(out.code, Some(2), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn matches_report_filters_by_rule_and_parses_back_as_csv_and_json() {
    let server = TestServer::start().await;
    let ws = archive(&server).await;
    let all = json(&ws.run(&["matches", "--format", "json"]).await);
    assert_eq!(all.as_array().unwrap().len(), 3);
    let grain = json(&ws.run(&["matches", "--rule", "grain", "--json"]).await);
    let grain = grain.as_array().unwrap();
    assert_eq!(grain.len(), 2);
    assert!(grain.iter().all(|m| m["rule"] == "grain"));

    let out = ws
        .run(&["matches", "--rule", "nato", "--format", "csv"])
        .await;
    out.assert_ok();
    let mut reader = csv::Reader::from_reader(out.stdout.as_bytes());
    let headers = reader.headers().unwrap().clone();
    assert_eq!(&headers[1], "rule");
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(&rows[0][1], "nato");
    assert_eq!(&rows[0][2], "NATO");
    assert_eq!(&rows[0][4], "NATO summit opens");
    assert_eq!(&rows[0][5], "https://news.example/nato");

    let later = json(
        &ws.run(&["matches", "--since", "2099-01-01", "--json"])
            .await,
    );
    assert!(later.as_array().unwrap().is_empty());
    let recent = json(&ws.run(&["matches", "--since", "1h", "--json"]).await);
    assert_eq!(recent.as_array().unwrap().len(), 3);
}

const COMMENTED: &str = "\
# feedwatch config — my notes stay here
[[feed]]
name = \"World\"   # the big one
url = \"URL_WORLD\"

# rules below
[[rule]]
name = \"nato\"
query = 'NATO'   # alliance news
";

fn commented_config(server: &TestServer) -> String {
    COMMENTED.replace("URL_WORLD", &server.url("/feeds/world.xml"))
}

fn serve_feeds(server: &TestServer) {
    server.feed(
        "world.xml",
        "application/rss+xml",
        rss("World", &[("w1", "NATO summit", "")]),
    );
    server.feed(
        "tech.xml",
        "application/rss+xml",
        rss(
            "Tech Today",
            &[
                ("t1", "Chips", ""),
                ("t2", "Rust 2", ""),
                ("t3", "Phones", ""),
            ],
        ),
    );
}

fn feed_list(out: &common::Output) -> Vec<(String, String, Vec<String>)> {
    let mut feeds: Vec<_> = json(out)
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let tags = f["tags"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap().to_string())
                .collect();
            (
                f["name"].as_str().unwrap().to_string(),
                f["url"].as_str().unwrap().to_string(),
                tags,
            )
        })
        .collect();
    feeds.sort();
    feeds
}

#[tokio::test(flavor = "multi_thread")]
async fn feed_add_keeps_comments_and_says_what_it_found() {
    let server = TestServer::start().await;
    serve_feeds(&server);
    let ws = Workspace::new(&commented_config(&server));
    let tech = server.url("/feeds/tech.xml");
    let out = ws
        .run(&["feed", "add", &tech, "--interval", "30m", "--tag", "tech"])
        .await;
    out.assert_ok();
    out.assert_stdout_has("added `Tech Today`");
    out.assert_stdout_has("3 item(s)");

    let text = std::fs::read_to_string(ws.config()).unwrap();
    let before_rules = &commented_config(&server)[..COMMENTED.find("# rules").unwrap()];
    assert!(text.starts_with(before_rules), "{text}");
    for kept in ["# rules below", "query = 'NATO'   # alliance news"] {
        assert!(text.contains(kept), "lost `{kept}`:\n{text}");
    }
    assert!(
        text.contains(&format!(
            "[[feed]]\nname = \"Tech Today\"\nurl = \"{tech}\"\ninterval = \"30m\"\ntags = [\"tech\"]\n"
        )),
        "{text}"
    );
    ws.run(&["check"]).await.assert_ok();
    let listed = feed_list(&ws.run(&["feed", "list", "--json"]).await);
    assert_eq!(listed[0], ("Tech Today".into(), tech, vec!["tech".into()]));
}

#[tokio::test(flavor = "multi_thread")]
async fn first_feed_add_creates_the_config() {
    let server = TestServer::start().await;
    serve_feeds(&server);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("new/config.toml");
    let out = common::feedwatch(
        &config,
        &["feed", "add", &server.url("/feeds/tech.xml")],
        &[],
    )
    .await;
    out.assert_ok();
    let listed = feed_list(&common::feedwatch(&config, &["feed", "list", "--json"], &[]).await);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].0, "Tech Today");
}

#[tokio::test(flavor = "multi_thread")]
async fn feed_add_given_a_web_page_adds_the_feed_it_links_to() {
    let server = TestServer::start().await;
    serve_feeds(&server);
    server.feed(
        "site.html",
        "text/html",
        "<html><head><link rel=\"alternate\" type=\"application/rss+xml\" href=\"tech.xml\">\
         </head><body>Hello</body></html>",
    );
    let ws = Workspace::new(&commented_config(&server));
    let out = ws
        .run(&["feed", "add", &server.url("/feeds/site.html")])
        .await;
    out.assert_ok();
    out.assert_stdout_has("is a web page");
    let names: Vec<String> = feed_list(&ws.run(&["feed", "list", "--json"]).await)
        .into_iter()
        .map(|f| f.1)
        .collect();
    assert!(names.contains(&server.url("/feeds/tech.xml")), "{names:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn feed_add_lists_the_choices_when_a_page_links_to_several_feeds() {
    let server = TestServer::start().await;
    serve_feeds(&server);
    server.feed(
        "site.html",
        "text/html",
        "<link rel=\"alternate\" type=\"application/rss+xml\" title=\"Tech\" href=\"tech.xml\">\
         <link rel=\"alternate\" type=\"application/atom+xml\" href=\"/feeds/other.atom\">",
    );
    let ws = Workspace::new(&commented_config(&server));
    let out = ws
        .run(&["feed", "add", &server.url("/feeds/site.html")])
        .await;
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    out.assert_stderr_has(server.url("/feeds/tech.xml"));
    out.assert_stderr_has(server.url("/feeds/other.atom"));
    assert_eq!(
        std::fs::read_to_string(ws.config()).unwrap(),
        commented_config(&server)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn feed_add_refuses_duplicates_and_dead_feeds_without_touching_the_config() {
    let server = TestServer::start().await;
    serve_feeds(&server);
    let ws = Workspace::new(&commented_config(&server));
    let twice = ws
        .run(&["feed", "add", &server.url("/feeds/world.xml")])
        .await;
    assert_eq!(twice.code, Some(2), "{}", twice.stderr);
    twice.assert_stderr_has("already in the config as `World`");
    let dead = ws
        .run(&["feed", "add", &server.url("/feeds/gone.xml")])
        .await;
    assert_eq!(dead.code, Some(1), "{}", dead.stderr);
    dead.assert_stderr_has("404");
    let bad_interval = ws
        .run(&[
            "feed",
            "add",
            &server.url("/feeds/tech.xml"),
            "--interval",
            "soon",
        ])
        .await;
    assert_eq!(bad_interval.code, Some(2), "{}", bad_interval.stderr);
    bad_interval.assert_stderr_has("nothing was written");
    assert_eq!(
        std::fs::read_to_string(ws.config()).unwrap(),
        commented_config(&server)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn feed_remove_by_name_or_url_keeps_the_rest_of_the_file() {
    let server = TestServer::start().await;
    serve_feeds(&server);
    let ws = Workspace::new(&commented_config(&server));
    ws.run(&["feed", "add", &server.url("/feeds/tech.xml")])
        .await
        .assert_ok();
    ws.run(&["feed", "remove", "World"]).await.assert_ok();
    ws.run(&["feed", "remove", &server.url("/feeds/tech.xml")])
        .await
        .assert_ok();
    let text = std::fs::read_to_string(ws.config()).unwrap();
    assert!(!text.contains("[[feed]]"), "{text}");
    assert!(
        text.starts_with("# feedwatch config — my notes stay here\n"),
        "{text}"
    );
    assert!(text.contains("query = 'NATO'   # alliance news"), "{text}");
    let missing = ws.run(&["feed", "remove", "World"]).await;
    assert_eq!(missing.code, Some(2), "{}", missing.stderr);
    missing.assert_stderr_has("`World`");
}

#[tokio::test(flavor = "multi_thread")]
async fn feed_remove_takes_the_feed_out_of_rules_but_never_widens_one() {
    let server = TestServer::start().await;
    serve_feeds(&server);
    let config = format!(
        "[[feed]]\nname = \"World\"\nurl = \"{}\"\n\
         [[feed]]\nname = \"Tech\"\nurl = \"{}\"\n\
         [[rule]]\nname = \"both\"\nquery = \"NATO\"\nfeeds = [\"World\", \"Tech\"]\n\
         [[rule]]\nname = \"tech only\"\nquery = \"chips\"\nfeeds = [\"Tech\"]\n",
        server.url("/feeds/world.xml"),
        server.url("/feeds/tech.xml"),
    );
    let ws = Workspace::new(&config);
    let out = ws.run(&["feed", "remove", "World"]).await;
    out.assert_ok();
    out.assert_stdout_has("rule `both` no longer lists it");
    let text = std::fs::read_to_string(ws.config()).unwrap();
    assert!(text.contains("feeds = [\"Tech\"]\n[[rule]]"), "{text}");

    let refused = ws.run(&["feed", "remove", "Tech"]).await;
    assert_eq!(refused.code, Some(2), "{}", refused.stderr);
    refused.assert_stderr_has("rule `both` watches only `Tech`");
    assert_eq!(std::fs::read_to_string(ws.config()).unwrap(), text);
}

#[tokio::test(flavor = "multi_thread")]
async fn opml_round_trip_gives_the_same_feeds_and_skips_what_is_present() {
    let server = TestServer::start().await;
    serve_feeds(&server);
    let source = Workspace::new(&format!(
        "[[feed]]\nname = \"World\"\nurl = \"{}\"\ntags = [\"news\", \"daily\"]\n\n\
         [[feed]]\nname = \"Tech Today\"\nurl = \"{}\"\n",
        server.url("/feeds/world.xml"),
        server.url("/feeds/tech.xml")
    ));
    let opml_path = source.path("subs.opml");
    source
        .run(&["export-opml", opml_path.to_str().unwrap()])
        .await
        .assert_ok();

    let target = Workspace::new("# imported feeds follow\n");
    let out = target
        .run(&["import-opml", opml_path.to_str().unwrap()])
        .await;
    out.assert_ok();
    out.assert_stdout_has("2 added, 0 skipped, 0 unreachable");
    assert_eq!(
        feed_list(&target.run(&["feed", "list", "--json"]).await),
        feed_list(&source.run(&["feed", "list", "--json"]).await)
    );
    let text = std::fs::read_to_string(target.config()).unwrap();
    assert!(text.starts_with("# imported feeds follow\n"), "{text}");

    let again = target
        .run(&["import-opml", opml_path.to_str().unwrap(), "--json"])
        .await;
    let summary = json(&again);
    assert_eq!(summary["added"].as_array().unwrap().len(), 0);
    assert_eq!(summary["skipped"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn opml_import_reports_unreachable_feeds_and_adds_the_rest() {
    let server = TestServer::start().await;
    serve_feeds(&server);
    let ws = Workspace::new("");
    let opml_path = ws.path("in.opml");
    std::fs::write(
        &opml_path,
        format!(
            "<opml version=\"1.0\"><body><outline text=\"Tech\">\
             <outline text=\"Tech feed\" xmlUrl=\"{}\"/>\
             <outline text=\"Gone\" xmlUrl=\"{}\"/></outline></body></opml>",
            server.url("/feeds/tech.xml"),
            server.url("/feeds/gone.xml")
        ),
    )
    .unwrap();
    let summary = json(
        &ws.run(&["import-opml", opml_path.to_str().unwrap(), "--json"])
            .await,
    );
    assert_eq!(summary["added"][0]["name"], "Tech feed");
    assert_eq!(summary["added"][0]["tags"][0], "Tech");
    assert_eq!(
        summary["unreachable"][0]["url"],
        server.url("/feeds/gone.xml")
    );
    assert!(
        summary["unreachable"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("404")
    );
    assert_eq!(
        feed_list(&ws.run(&["feed", "list", "--json"]).await).len(),
        1
    );

    let broken = ws.path("broken.opml");
    std::fs::write(&broken, "<opml><body><outline></body>").unwrap();
    let out = ws.run(&["import-opml", broken.to_str().unwrap()]).await;
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    out.assert_stderr_has("broken.opml");
}

#[tokio::test(flavor = "multi_thread")]
async fn completions_and_man_page_come_from_the_cli_definition() {
    let ws = Workspace::new("");
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef feedwatch"),
        ("fish", "complete -c feedwatch"),
    ] {
        let out = ws.run(&["completions", shell]).await;
        out.assert_ok();
        assert!(out.stdout.contains(marker), "{shell}: {}", out.stdout);
        assert!(out.stdout.contains("import-opml"), "{shell}");
    }
    let man = ws.run(&["man"]).await;
    man.assert_ok();
    assert!(
        man.stdout.starts_with(".ie") || man.stdout.contains(".TH feedwatch"),
        "{}",
        man.stdout
    );
    assert!(man.stdout.contains("search"));
    let bad = ws.run(&["completions", "tcsh"]).await;
    assert_eq!(bad.code, Some(2));
}

//! End to end: the commands for living with feedwatch — search, matches reports, feed
//! management, OPML — run as the real binary against a temporary config and database.

mod common;

use common::{TestServer, Workspace, rss};

/// A config polling one local feed, with a rule that matches `NATO`.
fn one_feed_config(server: &TestServer, path: &str) -> String {
    format!(
        "[[feed]]\nname = \"World\"\nurl = \"{}\"\n\n\
         [[rule]]\nname = \"nato\"\nquery = 'NATO'\n\n\
         [[rule]]\nname = \"grain\"\nquery = 'grain'\n",
        server.url(path)
    )
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

#[tokio::test(flavor = "multi_thread")]
async fn search_refuses_what_the_index_cannot_answer_with_exit_code_2() {
    let server = TestServer::start().await;
    let ws = archive(&server).await;
    let out = ws.run(&["search", "/gr.in/"]).await;
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("/gr.in/"), "{}", out.stderr);
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

//! One story, one alert, end to end: the real binary polls a local feed server where several
//! feeds carry the same wire story, and posts to a local webhook receiver.

mod common;

use common::{ConfigBuilder, TestServer, Workspace, rss};

const LEAD: &str = "NATO leaders said Tuesday that Ukraine will be invited to join the military \
    alliance when allies agree and conditions are met, but stopped short of offering a \
    timeline, a decision that drew sharp criticism from President Volodymyr Zelenskyy.";

fn config(server: &TestServer, feeds: &[&str], rule_extra: &str) -> String {
    feeds
        .iter()
        .fold(ConfigBuilder::new(), |config, name| {
            config.named_feed(name, &server.url(&format!("/feeds/{name}.xml")))
        })
        .rule("watch", "Ukraine OR NATO", &["hook"])
        .with(rule_extra)
        .webhook("hook", &server.url("/hook"))
        .build()
}

/// The wire story under each outlet's own headline and link, and a feed's other news.
fn serve(server: &TestServer) {
    server.feed(
        "ap.xml",
        "application/rss+xml",
        rss(
            "AP",
            &[(
                "ap-1",
                "NATO says Ukraine will be invited to join, offers no timeline",
                &format!("VILNIUS, Lithuania (AP) — {LEAD}"),
            )],
        ),
    );
    server.feed(
        "seattle.xml",
        "application/rss+xml",
        rss(
            "Seattle Times",
            &[
                (
                    "st-9",
                    "Zelenskyy blasts NATO for offering Ukraine no timeline to join",
                    LEAD,
                ),
                (
                    "st-10",
                    "NATO jets scrambled over the Baltic",
                    "Allied fighter jets were scrambled twice on Monday to intercept Russian \
                     aircraft flying without transponders near the Baltic states, the \
                     alliance's air command said.",
                ),
            ],
        ),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn one_wire_story_in_two_feeds_alerts_once_listing_both_sources() {
    let server = TestServer::start().await;
    serve(&server);
    let ws = Workspace::new(&config(&server, &["ap", "seattle"], ""));
    ws.run(&["run", "--once"]).await.assert_ok();

    let received = server.received();
    let bodies: Vec<serde_json::Value> = received.iter().map(|r| r.json()).collect();
    let titles: Vec<&str> = bodies
        .iter()
        .map(|b| b["article"]["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        received.len(),
        2,
        "the wire story once, the other news once: {titles:?}"
    );
    let wire = bodies
        .iter()
        .find(|b| b["story"]["sources"].as_array().unwrap().len() == 2)
        .unwrap_or_else(|| panic!("no alert lists two sources: {bodies:#?}"));
    let mut feeds: Vec<&str> = wire["story"]["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["feed"].as_str().unwrap())
        .collect();
    feeds.sort();
    assert_eq!(feeds, ["ap", "seattle"]);
    let other = bodies.iter().find(|b| b != &wire).unwrap();
    assert_eq!(
        other["article"]["title"],
        "NATO jets scrambled over the Baltic"
    );
    assert_eq!(other["story"]["sources"].as_array().unwrap().len(), 1);

    // A third outlet later: no new alert; the stored match and the story list it.
    server.feed(
        "latimes.xml",
        "application/rss+xml",
        rss(
            "LA Times",
            &[(
                "la-3",
                "NATO: Ukraine will be invited to join alliance 'when allies agree'",
                LEAD,
            )],
        ),
    );
    // Before it is stored, preview says which stored story it would join, and how alike.
    let id = wire["story"]["id"].as_i64().unwrap().to_string();
    let latimes = server.url("/feeds/latimes.xml");
    let preview = ws.run(&["preview", &latimes, "--json"]).await;
    preview.assert_ok();
    let preview: serde_json::Value = serde_json::from_str(&preview.stdout).unwrap();
    let guess = &preview["entries"][0]["story"];
    assert_eq!(guess["id"].as_i64().unwrap().to_string(), id);
    assert!(guess["similarity"].as_f64().unwrap() >= 0.6, "{guess}");
    ws.run(&["preview", &latimes])
        .await
        .assert_stdout_has(format!("≈ story {id} (similarity "));

    std::fs::write(
        ws.dir.path().join("config.toml"),
        config(&server, &["ap", "seattle", "latimes"], ""),
    )
    .unwrap();
    ws.run(&["run", "--once"]).await.assert_ok();
    assert_eq!(server.received().len(), 2, "the third copy does not alert");

    let out = ws.run(&["matches", "--json"]).await;
    out.assert_ok();
    let matches: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let story = matches
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["story"]["id"] == wire["story"]["id"])
        .unwrap();
    assert_eq!(story["story"]["sources"].as_array().unwrap().len(), 3);
    let table = ws.run(&["matches"]).await;
    assert_eq!(
        table.stdout.matches("also: ").count(),
        2,
        "{}",
        table.stdout
    );
    table.assert_stdout_has("also: NATO: Ukraine will be invited");

    let listed = ws.run(&["story", &id, "--json"]).await;
    listed.assert_ok();
    let listed: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    let articles = listed["articles"].as_array().unwrap();
    assert_eq!(articles.len(), 3);
    assert!(articles[0]["joined"].is_null());
    for joined in &articles[1..] {
        assert!(joined["joined"]["similarity"].as_f64().unwrap() >= 0.6);
    }
    let missing = ws.run(&["story", "999999"]).await;
    assert_eq!(missing.code, Some(1));

    // Backtest places the archive in stories the same way: four matches, two alerts.
    let backtest = ws.run(&["backtest", "watch", "--since", "30d"]).await;
    backtest.assert_ok();
    backtest.assert_stdout_has("alerts: 2, once per story; the other 2 matches");
    backtest.assert_stdout_has("same story as");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rule_with_per_story_off_alerts_for_each_copy() {
    let server = TestServer::start().await;
    serve(&server);
    let ws = Workspace::new(&config(&server, &["ap", "seattle"], "per_story = false"));
    ws.run(&["run", "--once"]).await.assert_ok();
    assert_eq!(server.received().len(), 3);
}

/// Stories keep alerts to one per story: an article no rule matches is in none. The first copy
/// a rule matches starts the story, and a later matched copy joins it.
#[tokio::test(flavor = "multi_thread")]
async fn an_article_no_rule_matches_is_in_no_story() {
    let server = TestServer::start().await;
    serve(&server);
    server.feed(
        "reuters.xml",
        "application/rss+xml",
        rss(
            "Reuters",
            &[(
                "r-7",
                "Ukraine to be invited into NATO when allies agree, no timeline",
                &format!("VILNIUS, July 11 (Reuters) - {LEAD}"),
            )],
        ),
    );
    // Only the AP's and Reuters' copies give the dateline.
    let config = |feeds: &[&str]| {
        feeds
            .iter()
            .fold(ConfigBuilder::new(), |config, name| {
                config.named_feed(name, &server.url(&format!("/feeds/{name}.xml")))
            })
            .rule("dateline", "Vilnius", &["hook"])
            .webhook("hook", &server.url("/hook"))
            .build()
    };
    let ws = Workspace::new(&config(&["seattle"]));
    ws.run(&["run", "--once"]).await.assert_ok();
    assert!(server.received().is_empty());

    let all = config(&["seattle", "ap", "reuters"]);
    std::fs::write(ws.dir.path().join("config.toml"), all).unwrap();
    ws.run(&["run", "--once"]).await.assert_ok();
    let received = server.received();
    assert_eq!(
        received.len(),
        1,
        "the AP's and Reuters' copies are one story"
    );
    let id = received[0].json()["story"]["id"]
        .as_i64()
        .unwrap()
        .to_string();
    let listed = ws.run(&["story", &id, "--json"]).await;
    listed.assert_ok();
    let listed: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    let mut feeds: Vec<&str> = listed["articles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["feed"].as_str().unwrap())
        .collect();
    feeds.sort();
    assert_eq!(
        feeds,
        ["ap", "reuters"],
        "the Seattle Times' copy, stored first, matched nothing"
    );

    // Preview shows no story for an entry that matches nothing, as none would be stored.
    let seattle = server.url("/feeds/seattle.xml");
    let preview = ws.run(&["preview", &seattle, "--json"]).await;
    preview.assert_ok();
    let preview: serde_json::Value = serde_json::from_str(&preview.stdout).unwrap();
    let entries = preview["entries"].as_array().unwrap();
    assert!(entries.iter().all(|e| e["story"].is_null()), "{preview:#}");
    let backtest = ws.run(&["backtest", "dateline", "--since", "30d"]).await;
    backtest.assert_stdout_has("alerts: 1, once per story; the other 1 matches");
}

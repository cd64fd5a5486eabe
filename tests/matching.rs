//! The matching engine through the real binary: query errors in `check`, highlighted snippets
//! in `preview`, and `backtest` over a real archive.

mod common;

use chrono::{Duration, Utc};
use common::Workspace;

/// An RSS feed whose items are `(guid, title, description, days ago)`.
fn dated_rss(title: &str, items: &[(&str, &str, &str, i64)]) -> String {
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\"><channel>\
         <title>{title}</title><link>https://news.example/</link>"
    );
    for (guid, title, description, days_ago) in items {
        let date = (Utc::now() - Duration::days(*days_ago)).to_rfc2822();
        xml.push_str(&format!(
            "<item><guid>{guid}</guid><title>{title}</title>\
             <link>https://news.example/{guid}</link><description>{description}</description>\
             <pubDate>{date}</pubDate></item>"
        ));
    }
    xml.push_str("</channel></rss>");
    xml
}

#[tokio::test(flavor = "multi_thread")]
async fn check_puts_a_caret_under_the_error_in_a_rule_query() {
    let ws = Workspace::new("[[rule]]\nname = \"eu\"\nquery = 'NATO AND (EU OR'\n");
    let out = ws.run(&["check"]).await;
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    out.assert_stderr_has("rule `eu`");
    let lines: Vec<&str> = out.stderr.lines().collect();
    let query_line = lines
        .iter()
        .position(|l| l.trim_start() == "NATO AND (EU OR")
        .unwrap_or_else(|| panic!("query echoed: {}", out.stderr));
    let caret = lines[query_line + 1];
    let column = caret.find('^').expect("caret line");
    let query_start = lines[query_line].find('N').unwrap();
    assert_eq!(
        column - query_start,
        "NATO AND (EU OR".len(),
        "caret at the end, where a term is missing: {}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn check_rejects_an_unknown_accents_option() {
    let ws = Workspace::new("[[rule]]\nname = \"c\"\nquery = 'café'\naccents = \"strict\"\n");
    let out = ws.run(&["check"]).await;
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    out.assert_stderr_has("rule `c`: accents");
}

#[tokio::test(flavor = "multi_thread")]
async fn preview_highlights_the_matched_words_in_a_snippet() {
    let ws = Workspace::new("[[rule]]\nname = \"nato\"\nquery = 'NATO OR Zelensky'\n");
    let feed = ws.path("feed.xml");
    std::fs::write(
        &feed,
        dated_rss(
            "Local",
            &[(
                "a1",
                "Summit news",
                "Protesters held an anti-NATO rally while Zelenský spoke.",
                0,
            )],
        ),
    )
    .unwrap();
    let out = ws.run(&["preview", feed.to_str().unwrap()]).await;
    out.assert_ok();
    out.assert_stdout_has("✓ nato: NATO, Zelensky");
    assert!(
        out.stdout
            .contains("anti-**NATO** rally while **Zelenský** spoke."),
        "{}",
        out.stdout
    );
}

fn archive_workspace() -> Workspace {
    let ws = Workspace::new(
        "[[feed]]\nname = \"world\"\nurl = \"world.xml\"\n\n\
         [[feed]]\nname = \"sport\"\nurl = \"sport.xml\"\n\n\
         [[rule]]\nname = \"ukraine\"\nquery = 'Ukrain*'\n",
    );
    std::fs::write(
        ws.path("world.xml"),
        dated_rss(
            "World",
            &[
                ("w1", "Ukraine talks resume", "Delegations met.", 2),
                ("w2", "Grain deal", "Ukrainian exports rise.", 5),
                ("w3", "Weather", "Rain all week.", 5),
                ("w4", "Old Ukraine story", "From last season.", 60),
            ],
        ),
    )
    .unwrap();
    std::fs::write(
        ws.path("sport.xml"),
        dated_rss(
            "Sport",
            &[
                ("s1", "Ukraine wins the cup", "A sport final.", 2),
                ("s2", "Tennis", "Results.", 3),
            ],
        ),
    )
    .unwrap();
    ws
}

#[tokio::test(flavor = "multi_thread")]
async fn backtest_counts_how_often_a_rule_would_have_fired_per_day_and_feed() {
    let ws = archive_workspace();
    ws.run(&["run", "--once"]).await.assert_ok();

    let out = ws.run(&["backtest", "ukraine"]).await;
    out.assert_ok();
    assert!(
        out.stdout
            .contains("rule `ukraine` would have fired 3 times on 5 stored articles"),
        "{}",
        out.stdout
    );
    let day = |ago: i64| {
        (Utc::now() - Duration::days(ago))
            .format("%Y-%m-%d")
            .to_string()
    };
    let per_day: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("  20") && l.contains('#'))
        .collect();
    assert_eq!(per_day.len(), 2, "{}", out.stdout);
    assert!(
        per_day[0].starts_with(&format!("  {}      1", day(5))),
        "{per_day:?}"
    );
    assert!(
        per_day[1].starts_with(&format!("  {}      2", day(2))),
        "{per_day:?}"
    );
    out.assert_stdout_has("world                        2 of 3");
    out.assert_stdout_has("sport                        1 of 2");
    out.assert_stdout_has("**Ukrainian** exports");
}

#[tokio::test(flavor = "multi_thread")]
async fn backtest_tries_a_query_over_a_shorter_window() {
    let ws = archive_workspace();
    ws.run(&["run", "--once"]).await.assert_ok();

    let out = ws
        .run(&[
            "backtest",
            "--query",
            "Ukrain* AND NOT sport",
            "--since",
            "4d",
        ])
        .await;
    out.assert_ok();
    assert!(
        out.stdout
            .contains("would have fired 1 time on 3 stored articles"),
        "{}",
        out.stdout
    );
    out.assert_stdout_has("Ukraine talks resume");
    assert!(!out.stdout.contains("wins the cup"), "{}", out.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn backtest_names_the_rules_when_the_rule_is_unknown() {
    let ws = archive_workspace();
    let out = ws.run(&["backtest", "ukrane"]).await;
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert!(
        out.stderr
            .contains("no rule named `ukrane` (rules: ukraine)"),
        "{}",
        out.stderr
    );
}

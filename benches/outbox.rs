//! Outbox drain: a backlog of pending alerts, spread over many rules, delivered by the release
//! `feedwatch run --once` to a webhook receiver in this process (a real HTTP server on
//! loopback) and to `stdout` (written to a file).
//!
//! The backlog is written through the store, as polls write it, before feedwatch starts; the
//! one feed it polls has nothing new. Every run is checked: each alert delivered once, and the
//! alerts of each rule received in the order they matched.
//!
//! Run: `cargo bench --bench outbox` (100,000 alerts), or `cargo bench --bench outbox -- 30000`
//! for other backlogs; `--rules=N` spreads the backlog over N rules (default 1000);
//! `--sink=webhook` or `--sink=stdout` measures one channel only. `FEEDWATCH_BIN=/path` measures
//! another build against the same backlog.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use chrono::Utc;
use feedwatch::alert::{Alert, FeedRef};
use feedwatch::dedup::identify;
use feedwatch::fetch::Validators;
use feedwatch::parse::Article;
use feedwatch::store::{NewEntry, PollOutcome, PollWrite, RaisedAlert, Store};

mod common;
use common::{measure_child_if_asked, run_feedwatch};

/// Alerts written per poll while the backlog is filled.
const FILL_CHUNK: usize = 5000;

/// The delivery ids the receiver was sent, in the order the requests arrived.
#[derive(Default)]
struct Receiver {
    delivery_ids: Mutex<Vec<String>>,
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let Some(id) = headers
        .get("x-feedwatch-delivery")
        .and_then(|v| v.to_str().ok())
    else {
        return StatusCode::BAD_REQUEST;
    };
    if body.is_empty() {
        return StatusCode::BAD_REQUEST;
    }
    receiver
        .delivery_ids
        .lock()
        .expect("receiver lock")
        .push(id.to_string());
    StatusCode::OK
}

const FEED: &str = r#"<?xml version="1.0"?>
<rss version="2.0"><channel><title>Backlog</title><link>https://news.example/</link>
<item><guid>quiet-1</guid><title>Nothing to see</title><link>https://news.example/quiet</link></item>
</channel></rss>"#;

/// Starts the feed and the webhook receiver on loopback; returns its address.
async fn start_server(receiver: Arc<Receiver>) -> std::net::SocketAddr {
    let app = Router::new()
        .route("/feed.xml", get(|| async { FEED }))
        .route("/hook", post(receive))
        .with_state(receiver);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn rule_name(index: usize) -> String {
    format!("rule-{index}")
}

/// Writes `n` pending alerts for `notifier`, alert `i` for rule `i % rules`, through polls of
/// the feed at `feed_url`.
fn fill(db: &Path, feed_url: &str, n: usize, rules: usize, notifier: &str) {
    let mut store = Store::open(db).unwrap();
    let feed = store.sync_feeds([(feed_url, "backlog")]).unwrap()[feed_url];
    let now = Utc::now();
    for start in (0..n).step_by(FILL_CHUNK) {
        let new = (start..(start + FILL_CHUNK).min(n))
            .map(|i| {
                let article = Article {
                    guid: Some(format!("story-{i}")),
                    title: format!("Story {i}"),
                    link: Some(format!("https://news.example/story/{i}")),
                    summary: "The council met on Tuesday to discuss the harbour plan.".into(),
                    ..Article::default()
                };
                let identity = identify(&article);
                let feed_ref = FeedRef {
                    name: "backlog".into(),
                    url: feed_url.into(),
                    title: "Backlog".into(),
                };
                let alert = Alert::new(
                    &rule_name(i % rules),
                    feed_ref,
                    &article,
                    &identity.id,
                    vec!["harbour".into()],
                    now,
                );
                NewEntry {
                    article,
                    identity,
                    alerts: vec![RaisedAlert {
                        alert,
                        notifiers: vec![notifier.to_string()],
                        per_story: true,
                    }],
                    sketch: None,
                }
            })
            .collect();
        let write = PollWrite {
            feed,
            feed_url: feed_url.into(),
            present: Vec::new(),
            touched: Vec::new(),
            listing: None,
            new,
            outcome: PollOutcome::Success {
                status: 200,
                validators: Validators::default(),
                title: None,
                moved_to: None,
                missed_items: None,
                ttl: None,
                unchanged: false,
            },
            now,
            next_poll_at: now,
            server_wait: None,
            story: feedwatch::story::StoryParams::default(),
            alerts_json: Default::default(),
        };
        store
            .commit_polls(&[write])
            .unwrap()
            .remove(0)
            .expect("backlog written");
    }
}

fn config(addr: std::net::SocketAddr, rules: usize, notifier: &str) -> String {
    let mut text = format!(
        "database = \"feedwatch.db\"\n\n[[feed]]\nname = \"backlog\"\nurl = \"http://{addr}/feed.xml\"\n"
    );
    for index in 0..rules {
        text.push_str(&format!(
            "\n[[rule]]\nname = \"{}\"\nquery = 'zqxv{index}'\nnotify = [\"{notifier}\"]\n",
            rule_name(index)
        ));
    }
    match notifier {
        "hook" => text.push_str(&format!(
            "\n[[notifier]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"http://{addr}/hook\"\n"
        )),
        _ => text.push_str("\n[[notifier]]\nname = \"console\"\nkind = \"stdout\"\n"),
    }
    text
}

/// The rule and the outbox id of every delivery id, and how many rows are delivered.
fn outbox_rows(db: &Path) -> (HashMap<String, (String, i64)>, usize) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT o.delivery_id, m.rule, o.id FROM outbox o JOIN matches m ON m.id = o.match_id",
        )
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
        .unwrap()
        .collect::<Result<HashMap<String, (String, i64)>, _>>()
        .unwrap();
    let delivered: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM outbox WHERE status = 'delivered'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    (rows, delivered as usize)
}

/// Checks that `received` (rule, position in match order) holds `n` alerts, each once, and
/// each rule's in the order they matched.
fn check_order(sink: &str, n: usize, received: impl IntoIterator<Item = (String, i64)>) {
    let mut last: HashMap<String, i64> = HashMap::new();
    let mut seen = HashSet::new();
    for (rule, position) in received {
        assert!(
            seen.insert(position),
            "{sink}: alert {position} received twice"
        );
        if let Some(&before) = last.get(&rule) {
            assert!(
                before < position,
                "{sink}: {rule} received {position} after {before}"
            );
        }
        last.insert(rule, position);
    }
    assert_eq!(seen.len(), n, "{sink}: every alert received");
}

/// `[rule-7] Story 123 — …`: the rule and the story number of an alert line.
fn parse_line(line: &str) -> Option<(String, i64)> {
    let rest = line.strip_prefix('[')?;
    let (rule, rest) = rest.split_once("] Story ")?;
    let number = rest.split(' ').next()?.parse().ok()?;
    Some((rule.to_string(), number))
}

fn main() {
    measure_child_if_asked();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rules: usize = args
        .iter()
        .find_map(|a| a.strip_prefix("--rules="))
        .map(|n| n.parse().expect("--rules=N takes a number"))
        .unwrap_or(1000)
        .max(1);
    let sinks: Vec<&str> = match args.iter().find_map(|a| a.strip_prefix("--sink=")) {
        Some("webhook") => vec!["webhook"],
        Some("stdout") => vec!["stdout"],
        Some(other) => panic!("--sink takes webhook or stdout, not {other}"),
        None => vec!["webhook", "stdout"],
    };
    let sizes: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() {
        vec![100_000]
    } else {
        sizes
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let receiver = Arc::new(Receiver::default());
    let addr = runtime.block_on(start_server(Arc::clone(&receiver)));

    println!("| pending alerts | rules | channel | wall | alerts/s | CPU | peak RSS |");
    println!("|---:|---:|---|---:|---:|---:|---:|");
    for &n in &sizes {
        for &sink in &sinks {
            let notifier = if sink == "webhook" { "hook" } else { "console" };
            let dir = tempfile::tempdir().unwrap();
            let config_path = dir.path().join("config.toml");
            std::fs::write(&config_path, config(addr, rules, notifier)).unwrap();
            let db = dir.path().join("feedwatch.db");
            fill(&db, &format!("http://{addr}/feed.xml"), n, rules, notifier);
            receiver.delivery_ids.lock().unwrap().clear();

            let output = dir.path().join("stdout.txt");
            let measured = run_feedwatch(
                &config_path,
                &["--log-level", "error", "run", "--once"],
                Some(&output),
            );

            let (rows, delivered) = outbox_rows(&db);
            assert_eq!(delivered, n, "{sink}: every row marked delivered");
            if sink == "webhook" {
                let ids = std::mem::take(&mut *receiver.delivery_ids.lock().unwrap());
                check_order(
                    sink,
                    n,
                    ids.iter()
                        .map(|id| rows.get(id).expect("a known delivery id").clone()),
                );
            } else {
                let text = std::fs::read_to_string(&output).unwrap();
                check_order(sink, n, text.lines().filter_map(parse_line));
            }
            println!(
                "| {n} | {rules} | {sink} | {:.2} s | {:.0} | {:.2} s | {:.1} MB |",
                measured.wall.as_secs_f64(),
                n as f64 / measured.wall.as_secs_f64(),
                measured.cpu.as_secs_f64(),
                measured.peak_rss_kib as f64 / 1024.0
            );
        }
    }
}

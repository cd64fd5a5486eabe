//! Poll throughput: N generated news feeds (20-100 items each) served from memory by an
//! in-process server, polled by the release `feedwatch run --once` through the whole pipeline
//! (fetch, parse, dedup, match, store), first cold, then warm (every feed answers 304), then
//! steady (every feed answers 200 with nothing new: first the very bytes it sent before, then
//! the same items under a new `<lastBuildDate>`), then steady with news (every feed answers 200
//! with one new item on top, its oldest rolled out), then the idle daemon's memory.
//!
//! feedwatch runs as a child process so that its wall time, CPU time and peak RSS are its own
//! and not the server's. For scale, the same feeds are also fetched and parsed by a bare
//! reqwest + feed-rs loop in this process (wall time only: its CPU is mixed with the server's).
//!
//! Run: `cargo bench --bench poll` (or `cargo bench --bench poll -- 100 1000 5000`); add
//! `--runs=5` for medians of five runs; set `FEEDWATCH_BIN=/path/to/feedwatch` to measure
//! another build on the same feeds. `--stories-off` adds, in each run, a cold poll with
//! `story_window = "0s"` (no story sketches or lookups), for the cost of stories side by side.
//!
//! Real servers are far away: `--latency=500ms` holds every answer (200, 304) that long before
//! it starts, and `--tail` makes that the median of a long-tailed spread instead (log-normal,
//! about a tenth of answers over 3.6 times the median, one in a hundred over 10 times, capped at
//! 20 s). `--hosts=500` spreads the feeds over that many loopback addresses (default 25).
//!
//! The bare loop keeps feedwatch's own limits (at most `PER_HOST` requests to one host and
//! `DEFAULT_MAX_FETCHES` in all), so that both are equally polite to the servers.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

mod common;

use common::news::{Latency, Lcg};
use common::{measure_child_if_asked, run_feedwatch};

/// How each run calls feedwatch.
const POLL_ARGS: &[&str] = &["--log-level", "warn", "run", "--once"];

/// Feeds are spread over this many loopback hosts (127.0.0.1, 127.0.0.2, …) unless `--hosts`
/// says otherwise, as real feeds are spread over many sites; feedwatch limits requests per host.
const HOSTS: usize = 25;

/// What every feed answers, one of the `SERVE_*` below.
static SERVE: AtomicU8 = AtomicU8::new(SERVE_BODY);
/// Its body, or `304` to a request with its tag.
const SERVE_BODY: u8 = 0;
/// Its body again whatever it is asked, as a server that ignores `If-None-Match` does.
const SERVE_SAME_AGAIN: u8 = 1;
/// Its items under a new `<lastBuildDate>`, whatever it is asked, as a server that ignores
/// `If-None-Match` and dates each answer does: nothing in it is new.
const SERVE_REBUILT: u8 = 2;
/// Its next body (one new item on top, its oldest rolled out), as a feed between two polls,
/// or `304` to a request with that body's tag.
const SERVE_NEXT: u8 = 3;

struct Site {
    feeds: HashMap<String, Feed>,
    latency: Latency,
}

const RULES: &str = r#"
[[rule]]
name = "ukraine"
query = 'Ukrain* OR NATO OR "Jens Stoltenberg"'

[[rule]]
name = "kremlin"
query = 'Kremlin AND NOT football'

[[rule]]
name = "economy"
query = '(inflation OR budget) AND (minister OR council)'

[[rule]]
name = "storms"
query = 'storm* AND harbour'

[[rule]]
name = "disasters"
query = 'earthquake OR wildfire OR cyclone OR flooding'

[[rule]]
name = "security"
query = 'ransomware OR "data breach"'

[[rule]]
name = "sport"
query = 'Olympics'

[[rule]]
name = "health"
query = 'vaccine OR outbreak'

[[rule]]
name = "rates"
query = '"central bank" OR "interest rates"'

[[rule]]
name = "chips"
query = 'semiconductor OR "chip factory"'

[[rule]]
name = "climate"
query = '"climate summit" OR emissions OR heatwave'

[[rule]]
name = "migration"
query = 'refugees OR asylum'

[[rule]]
name = "tech"
query = '"artificial intelligence" OR "quantum computer"'

[[rule]]
name = "space"
query = '"space launch" OR Mars OR satellite'
"#;

struct Feed {
    body: Bytes,
    etag: String,
    /// Its items under a new `<lastBuildDate>`.
    rebuilt: Bytes,
    /// What the feed says at the next poll, and its tag.
    next: Bytes,
    next_etag: String,
}

/// A feed's body, the same items under a `<lastBuildDate>`, its next body (one new item on top,
/// the oldest rolled out), and how many items the first holds.
fn generate_feed(index: usize, rng: &mut Lcg) -> (String, String, String, usize) {
    let count = 20 + rng.below(81);
    let head = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\"><channel>\
         <title>Feed {index}</title><link>https://site{index}.example/</link>\
         <description>Generated news</description>"
    );
    let items: Vec<String> = (0..count)
        .map(|item| generate_item(index, item, rng))
        .collect();
    // A generator of its own, so that the first bodies stay what they were without it.
    let newest = generate_item(index, count, &mut Lcg(7 + index as u64));
    let body = format!("{head}{}</channel></rss>", items.concat());
    let rebuilt = format!(
        "{head}<lastBuildDate>Thu, 26 Nov 2026 06:00:00 GMT</lastBuildDate>{}</channel></rss>",
        items.concat()
    );
    let next = format!(
        "{head}{newest}{}</channel></rss>",
        items[..count - 1].concat()
    );
    (body, rebuilt, next, count)
}

fn generate_item(index: usize, item: usize, rng: &mut Lcg) -> String {
    format!(
        "<item><title>{}</title><link>https://site{index}.example/story/{item}</link>\
         <guid>https://site{index}.example/story/{item}</guid>\
         <pubDate>Wed, 25 Nov 2026 {:02}:{:02}:00 GMT</pubDate>\
         <description>&lt;p&gt;{}&lt;/p&gt; &lt;p&gt;{}&lt;/p&gt;</description></item>",
        rng.words(8, 30),
        item % 24,
        item % 60,
        rng.words(45, 20),
        rng.words(40, 20),
    )
}

async fn serve(State(site): State<Arc<Site>>, request: Request) -> Response {
    let Some(feed) = site.feeds.get(request.uri().path()) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if !site.latency.median.is_zero() {
        tokio::time::sleep(site.latency.draw()).await;
    }
    let serving = SERVE.load(Ordering::Relaxed);
    let (body, etag) = match serving {
        SERVE_REBUILT => (&feed.rebuilt, &feed.etag),
        SERVE_NEXT => (&feed.next, &feed.next_etag),
        _ => (&feed.body, &feed.etag),
    };
    let etag = HeaderValue::from_str(etag).unwrap();
    if matches!(serving, SERVE_BODY | SERVE_NEXT)
        && request.headers().get(header::IF_NONE_MATCH) == Some(&etag)
    {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/rss+xml; charset=utf-8"),
            ),
            (header::ETAG, etag),
        ],
        body.clone(),
    )
        .into_response()
}

/// Starts one listener per host and returns the feed URLs, the item count and the body bytes.
async fn start_site(n: usize, hosts: usize, latency: Latency) -> (Vec<String>, usize, usize) {
    let mut rng = Lcg(42);
    let (listeners, addrs) = common::news::loopback_listeners(hosts).await;
    let mut feeds = HashMap::new();
    let mut urls = Vec::new();
    let (mut items, mut bytes) = (0, 0);
    for index in 0..n {
        let (xml, rebuilt, next, count) = generate_feed(index, &mut rng);
        items += count;
        bytes += xml.len();
        let path = format!("/feed/{index}.xml");
        urls.push(format!("http://{}{path}", addrs[index % hosts]));
        feeds.insert(
            path,
            Feed {
                body: Bytes::from(xml),
                etag: format!("\"v1-{index}\""),
                rebuilt: Bytes::from(rebuilt),
                next: Bytes::from(next),
                next_etag: format!("\"v2-{index}\""),
            },
        );
    }
    let site = Arc::new(Site { feeds, latency });
    for listener in listeners {
        let app = Router::new().fallback(serve).with_state(Arc::clone(&site));
        tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    }
    (urls, items, bytes)
}

/// The daemon's resident memory once it has polled every feed (each answers 304) and has
/// nothing to do: `feedwatch run` on the database of a cold poll, every feed made due at once;
/// RSS is read 5 s and 30 s after the last poll (the search indexer catches up meanwhile).
fn idle_rss(dir: &std::path::Path, config: &std::path::Path, feeds: usize) -> (f64, f64) {
    let db = dir.join("feedwatch.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let started = chrono::Utc::now().timestamp();
    conn.execute("UPDATE feeds SET next_poll_at = 0", [])
        .unwrap();
    let binary =
        std::env::var_os("FEEDWATCH_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_feedwatch").into());
    let mut daemon = std::process::Command::new(binary)
        .arg("--config")
        .arg(config)
        .args(["--log-level", "warn", "run"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start feedwatch run");
    let polled = || -> usize {
        conn.query_row(
            "SELECT COUNT(*) FROM feeds WHERE last_attempt_at >= ?1",
            [started],
            |r| r.get::<_, i64>(0),
        )
        .unwrap_or(0) as usize
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while polled() < feeds {
        assert!(Instant::now() < deadline, "the daemon polled every feed");
        std::thread::sleep(Duration::from_millis(200));
    }
    let rss = || -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", daemon.id())).unwrap();
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/PID/status");
        kib / 1024.0
    };
    std::thread::sleep(Duration::from_secs(5));
    let soon = rss();
    std::thread::sleep(Duration::from_secs(25));
    let later = rss();
    let _ = std::process::Command::new("kill")
        .arg(daemon.id().to_string())
        .status();
    let _ = daemon.wait();
    (soon, later)
}

/// The middle value (the upper middle of an even count).
fn median<T: Copy + PartialOrd>(values: &[T]) -> T {
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.partial_cmp(b).expect("comparable"));
    sorted[sorted.len() / 2]
}

/// The floor: fetch and parse every feed with reqwest + feed-rs, store nothing; at most
/// feedwatch's `PER_HOST` requests to one host and `DEFAULT_MAX_FETCHES` in all.
async fn bare_loop(urls: &[String]) -> Duration {
    use feedwatch::fetch::{DEFAULT_MAX_FETCHES, PER_HOST};
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let started = Instant::now();
    let limit = Arc::new(tokio::sync::Semaphore::new(DEFAULT_MAX_FETCHES));
    let mut per_host: HashMap<String, Arc<tokio::sync::Semaphore>> = HashMap::new();
    let mut tasks = tokio::task::JoinSet::new();
    for url in urls {
        let host = url.split('/').nth(2).unwrap_or_default().to_string();
        let host = Arc::clone(
            per_host
                .entry(host)
                .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(PER_HOST))),
        );
        let (client, url, limit) = (client.clone(), url.clone(), Arc::clone(&limit));
        tasks.spawn(async move {
            let _host = host.acquire_owned().await;
            let _permit = limit.acquire_owned().await;
            let body = client
                .get(&url)
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            tokio::task::spawn_blocking(move || {
                feed_rs::parser::parse(&body[..]).unwrap().entries.len()
            })
            .await
            .unwrap()
        });
    }
    while tasks.join_next().await.is_some() {}
    started.elapsed()
}

fn main() {
    measure_child_if_asked();
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `--runs=N` repeats each size N times (fresh database each time) and reports medians.
    let runs: usize = args
        .iter()
        .find_map(|a| a.strip_prefix("--runs="))
        .map(|n| n.parse().expect("--runs=N takes a number"))
        .unwrap_or(1)
        .max(1);
    let stories_off = args.iter().any(|a| a == "--stories-off");
    let sizes: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() {
        vec![100, 1000]
    } else {
        sizes
    };
    let option = |name: &str| {
        args.iter()
            .find_map(|a| a.strip_prefix(&format!("--{name}=")).map(str::to_string))
    };
    let hosts: usize = option("hosts").map_or(HOSTS, |n| n.parse().expect("--hosts=N"));
    let latency = Latency {
        median: option("latency").map_or(Duration::ZERO, |d| {
            humantime::parse_duration(&d).expect("--latency=500ms")
        }),
        long_tail: args.iter().any(|a| a == "--tail"),
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    if runs > 1 {
        println!("medians of {runs} runs, each on a fresh database\n");
    }
    if !latency.median.is_zero() {
        let shape = if latency.long_tail {
            "median, long-tailed"
        } else {
            "fixed"
        };
        println!(
            "{hosts} hosts; every answer waits {:?} ({shape})\n",
            latency.median
        );
    }
    println!("| feeds | items | body MB | run | wall | CPU | peak RSS |");
    println!("|---:|---:|---:|---|---:|---:|---:|");
    for n in sizes {
        let (urls, items, bytes) = runtime.block_on(start_site(n, hosts, latency));
        let mut config = String::from("database = \"feedwatch.db\"\n");
        for (index, url) in urls.iter().enumerate() {
            let _ = write!(
                config,
                "\n[[feed]]\nname = \"feed {index}\"\nurl = \"{url}\"\n"
            );
        }
        config.push_str(RULES);

        let (mut bare, mut cold, mut warm, mut same, mut steady, mut news) = (
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        );
        let mut idle = None;
        let mut cold_off = Vec::new();
        let (mut stored, mut matches) = (0, 0);
        for _ in 0..runs {
            let dir = tempfile::tempdir().unwrap();
            let config_path = dir.path().join("config.toml");
            std::fs::write(&config_path, &config).unwrap();
            bare.push(runtime.block_on(bare_loop(&urls)));
            if stories_off {
                let off = tempfile::tempdir().unwrap();
                let off_path = off.path().join("config.toml");
                std::fs::write(&off_path, format!("story_window = \"0s\"\n{config}")).unwrap();
                cold_off.push(run_feedwatch(&off_path, POLL_ARGS, None));
            }
            cold.push(run_feedwatch(&config_path, POLL_ARGS, None));
            warm.push(run_feedwatch(&config_path, POLL_ARGS, None));

            let conn = rusqlite::Connection::open(dir.path().join("feedwatch.db")).unwrap();
            stored = conn
                .query_row("SELECT COUNT(*) FROM articles", [], |r| r.get::<_, i64>(0))
                .unwrap();
            let not_modified: i64 = conn
                .query_row(
                    "SELECT COUNT(*) FROM feeds WHERE last_status = 304",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            matches = conn
                .query_row("SELECT COUNT(*) FROM matches", [], |r| r.get::<_, i64>(0))
                .unwrap();
            assert_eq!(stored as usize, items, "every item stored once");
            assert_eq!(
                not_modified as usize, n,
                "every feed answered 304 when warm"
            );
            SERVE.store(SERVE_SAME_AGAIN, Ordering::Relaxed);
            same.push(run_feedwatch(&config_path, POLL_ARGS, None));
            SERVE.store(SERVE_REBUILT, Ordering::Relaxed);
            steady.push(run_feedwatch(&config_path, POLL_ARGS, None));
            SERVE.store(SERVE_BODY, Ordering::Relaxed);
            if idle.is_none() && std::env::var_os("FEEDWATCH_BENCH_NO_IDLE").is_none() {
                idle = Some(idle_rss(dir.path(), &config_path, n));
            }
            SERVE.store(SERVE_NEXT, Ordering::Relaxed);
            news.push(run_feedwatch(&config_path, POLL_ARGS, None));
            SERVE.store(SERVE_BODY, Ordering::Relaxed);
            let after: i64 = conn
                .query_row("SELECT COUNT(*) FROM articles", [], |r| r.get(0))
                .unwrap();
            assert_eq!(after - stored, n as i64, "one new article a feed");
        }

        let mb = bytes as f64 / 1e6;
        println!(
            "| {n} | {items} | {mb:.1} | bare reqwest + feed-rs | {:.2} s | - | - |",
            median(&bare).as_secs_f64()
        );
        let mut rows = vec![
            ("feedwatch cold", &cold),
            ("feedwatch warm (304)", &warm),
            ("feedwatch steady (200, the same bytes)", &same),
            ("feedwatch steady (200, nothing new)", &steady),
            ("feedwatch steady (200, one new item)", &news),
        ];
        if stories_off {
            rows.insert(0, ("feedwatch cold, stories off", &cold_off));
        }
        for (label, measured) in rows {
            let wall: Vec<Duration> = measured.iter().map(|m| m.wall).collect();
            let cpu: Vec<Duration> = measured.iter().map(|m| m.cpu).collect();
            let rss: Vec<i64> = measured.iter().map(|m| m.peak_rss_kib).collect();
            println!(
                "| {n} | {items} | {mb:.1} | {label} | {:.2} s | {:.2} s | {:.1} MB |",
                median(&wall).as_secs_f64(),
                median(&cpu).as_secs_f64(),
                median(&rss) as f64 / 1024.0
            );
        }
        if runs > 1 {
            let list = |label: &str, values: Vec<String>| {
                println!("  {n} feeds, {label}: {}", values.join(" / "));
            };
            let mut runs_of = vec![
                ("cold", &cold),
                ("warm", &warm),
                ("steady same bytes", &same),
                ("steady", &steady),
                ("steady with news", &news),
            ];
            if stories_off {
                runs_of.insert(0, ("cold stories off", &cold_off));
            }
            for (label, measured) in runs_of {
                list(
                    &format!("{label} wall, CPU, RSS per run"),
                    measured
                        .iter()
                        .map(|m| {
                            format!(
                                "{:.2} s {:.2} s {:.0} MB",
                                m.wall.as_secs_f64(),
                                m.cpu.as_secs_f64(),
                                m.peak_rss_kib as f64 / 1024.0
                            )
                        })
                        .collect(),
                );
            }
        }
        // The goal is a ratio, and this machine's speed drifts: each run is set against the
        // bare loop run just before it.
        for (label, measured) in [
            ("cold", &cold),
            ("steady same bytes", &same),
            ("steady", &steady),
            ("steady with news", &news),
        ] {
            let ratios: Vec<f64> = measured
                .iter()
                .zip(&bare)
                .map(|(c, b)| c.wall.as_secs_f64() / b.as_secs_f64())
                .collect();
            let shown: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
            println!(
                "  {n} feeds, {label} wall / bare loop wall of the same run: {} (median {:.2})",
                shown.join(" / "),
                median(&ratios)
            );
        }
        if let Some((soon, later)) = idle {
            println!(
                "  {n} feeds, daemon idle after polling them all: RSS {soon:.1} MB after 5 s, \
                 {later:.1} MB after 30 s"
            );
        }
        println!(
            "\n{n} feeds: {stored} articles stored, {matches} matches ({:.3} per article)\n",
            matches as f64 / stored.max(1) as f64
        );
    }
}

//! The daemon at scale: `feedwatch run` (not `--once`) on N generated feeds, each polled every
//! 15 minutes, for a set wall time against an in-process server that holds every answer a
//! while, then stopped with SIGTERM.
//!
//! Feeds are small (10-20 items) and answer `304` to a matching `If-None-Match` or
//! `If-Modified-Since`; now and then (on average every 2 hours per feed, at random times) a feed
//! gains a new item, so the daemon stores and matches a trickle of new articles, as in real life.
//!
//! The server notes when each request arrives. From that: requests per second, overall and
//! after the first round; when the first round's requests came (first request minus daemon
//! start: the daemon spreads first polls over 50 ms a feed, up to the interval, so this is the
//! planned spread plus the lag); and the steady lag (the time between two requests
//! for one feed, minus the interval), with the feeds that were due but not polled at the stop.
//! Of the daemon: CPU (user + system), RSS sampled every 5 s and its high-water mark, and the
//! database's size at the end.
//!
//! Run: `cargo bench --bench daemon -- 100000 --minutes=30 --latency=500ms`; `--tail` makes
//! the latency a long-tailed spread around that median (as in the poll benchmark),
//! `--hosts=N` spreads the feeds over N loopback hosts (default 500), `--interval=60s` polls
//! more often for short trial runs, `--news=2h` sets the mean time between a feed's new items.
//! `FEEDWATCH_BIN=/path/to/feedwatch` runs another build.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};

mod common;

use common::news::{Latency, Lcg};

/// Real feeds are spread over many sites, and feedwatch polls at most 4 at a time from one.
const HOSTS: usize = 500;
/// How often the daemon's CPU and memory are read.
const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// How long the daemon may take to stop after SIGTERM before the benchmark gives up on it.
const STOP_GRACE: Duration = Duration::from_secs(60);

const RULES: &str = r#"
[[notifier]]
name = "console"
kind = "stdout"

[[rule]]
name = "ukraine"
query = 'Ukrain* OR NATO OR "Jens Stoltenberg"'
notify = ["console"]

[[rule]]
name = "disasters"
query = 'earthquake OR wildfire OR cyclone OR flooding'
notify = ["console"]

[[rule]]
name = "security"
query = 'ransomware OR "data breach"'
notify = ["console"]
"#;

/// One feed as the server plays it.
struct Feed {
    seed: u64,
    /// Items in the feed at any time; each new one pushes the oldest out.
    items: usize,
    /// When the feed gains a new item, in seconds from the server's start.
    news_at: Vec<u32>,
}

struct Site {
    feeds: Vec<Feed>,
    latency: Latency,
    started: Instant,
    /// The wall-clock time of `started`, for dates in the feeds.
    epoch: DateTime<Utc>,
    /// Each request as it arrives: the feed's index and milliseconds since `started`.
    requests: Mutex<Vec<(u32, u32)>>,
    full: AtomicU64,
    not_modified: AtomicU64,
}

impl Site {
    fn elapsed_ms(&self) -> u32 {
        self.started.elapsed().as_millis() as u32
    }
}

fn http_date(at: DateTime<Utc>) -> String {
    at.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// When the feed's item number `item` was published: the first ones an hour apart before the
/// server started, the later ones when they came.
fn published(feed: &Feed, item: usize, epoch: DateTime<Utc>) -> DateTime<Utc> {
    match item.checked_sub(feed.items) {
        None => epoch - chrono::Duration::hours((feed.items - item) as i64),
        Some(new) => epoch + chrono::Duration::seconds(i64::from(feed.news_at[new])),
    }
}

/// The feed as it stands with `version` new items: the latest `items`, newest first.
fn feed_body(index: usize, feed: &Feed, version: usize, epoch: DateTime<Utc>) -> String {
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\"><channel>\
         <title>Feed {index}</title><link>https://site{index}.example/</link>\
         <description>Generated news</description>"
    );
    for item in (version..version + feed.items).rev() {
        let mut rng = Lcg(feed.seed ^ (item as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let _ = write!(
            xml,
            "<item><title>{}</title><link>https://site{index}.example/story/{item}</link>\
             <guid>https://site{index}.example/story/{item}</guid><pubDate>{}</pubDate>\
             <description>&lt;p&gt;{}&lt;/p&gt; &lt;p&gt;{}&lt;/p&gt;</description></item>",
            rng.words(8, 30),
            published(feed, item, epoch).to_rfc2822(),
            rng.words(30, 20),
            rng.words(25, 20),
        );
    }
    xml.push_str("</channel></rss>");
    xml
}

/// Whether the client's validators match the feed as it stands (`If-None-Match` wins).
fn unchanged(headers: &HeaderMap, etag: &str, modified: DateTime<Utc>) -> bool {
    if let Some(tags) = headers.get(header::IF_NONE_MATCH) {
        return tags.as_bytes() == etag.as_bytes();
    }
    headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| DateTime::parse_from_rfc2822(v).ok())
        .is_some_and(|since| since.timestamp() >= modified.timestamp())
}

async fn serve(State(site): State<Arc<Site>>, request: Request) -> Response {
    let index = request
        .uri()
        .path()
        .strip_prefix("/feed/")
        .and_then(|p| p.strip_suffix(".xml"))
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|&i| i < site.feeds.len());
    let Some(index) = index else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let arrived = site.elapsed_ms();
    site.requests.lock().unwrap().push((index as u32, arrived));
    if !site.latency.median.is_zero() {
        tokio::time::sleep(site.latency.draw()).await;
    }
    let feed = &site.feeds[index];
    let now = site.started.elapsed().as_secs_f64();
    let version = feed
        .news_at
        .iter()
        .take_while(|&&at| f64::from(at) <= now)
        .count();
    let etag = format!("\"{index}-{version}\"");
    let modified = published(feed, version + feed.items - 1, site.epoch);
    let validators = [
        (header::ETAG, HeaderValue::from_str(&etag).unwrap()),
        (
            header::LAST_MODIFIED,
            HeaderValue::from_str(&http_date(modified)).unwrap(),
        ),
    ];
    if unchanged(request.headers(), &etag, modified) {
        site.not_modified.fetch_add(1, Ordering::Relaxed);
        return (StatusCode::NOT_MODIFIED, validators).into_response();
    }
    site.full.fetch_add(1, Ordering::Relaxed);
    let body = feed_body(index, feed, version, site.epoch);
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/rss+xml; charset=utf-8"),
        )],
        validators,
        body,
    )
        .into_response()
}

/// Plans the feeds (sizes, and when each gains items, up to `horizon`), starts one listener
/// per host and returns the site and the feed URLs.
async fn start_site(
    n: usize,
    hosts: usize,
    latency: Latency,
    news_every: Duration,
    horizon: Duration,
) -> (Arc<Site>, Vec<String>) {
    let (listeners, addrs) = common::news::loopback_listeners(hosts).await;
    let mut rng = common::Seeded(42);
    let mut feeds = Vec::with_capacity(n);
    let mut urls = Vec::with_capacity(n);
    for index in 0..n {
        // New items come as a Poisson process: exponential gaps around the mean.
        let mut news_at = Vec::new();
        let mut at = 0.0;
        loop {
            at += -(1.0 - rng.unit()).ln() * news_every.as_secs_f64();
            if at > horizon.as_secs_f64() {
                break;
            }
            news_at.push(at as u32);
        }
        feeds.push(Feed {
            seed: rng.next(),
            items: 10 + rng.below(11),
            news_at,
        });
        urls.push(format!("http://{}/feed/{index}.xml", addrs[index % hosts]));
    }
    let site = Arc::new(Site {
        feeds,
        latency,
        started: Instant::now(),
        epoch: Utc::now(),
        requests: Mutex::new(Vec::new()),
        full: AtomicU64::new(0),
        not_modified: AtomicU64::new(0),
    });
    for listener in listeners {
        let app = Router::new().fallback(serve).with_state(Arc::clone(&site));
        tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    }
    (site, urls)
}

/// What /proc says of a process at one moment.
#[derive(Clone, Copy, Default)]
struct Sample {
    cpu: Duration,
    rss_kib: u64,
    hwm_kib: u64,
}

fn sample(pid: u32) -> Option<Sample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which may hold spaces: state is the first, utime the 12th.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf only reads a system constant.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |key: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    };
    Some(Sample {
        cpu: Duration::from_secs_f64(ticks as f64 / per_second),
        rss_kib: kib("VmRSS:")?,
        hwm_kib: kib("VmHWM:")?,
    })
}

fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

fn start_daemon(config: &Path, log: &Path) -> Child {
    let binary =
        std::env::var_os("FEEDWATCH_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_feedwatch").into());
    Command::new(binary)
        .arg("--config")
        .arg(config)
        .args(["--log-level", "warn", "run"])
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("ALL_PROXY")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("create the daemon's log"))
        .spawn()
        .expect("start feedwatch run")
}

/// The value below which `share` of the sorted values lie.
fn percentile(sorted: &[i64], share: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * share).round() as usize]
}

fn seconds(ms: i64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

fn lag_row(label: &str, mut lags: Vec<i64>) {
    lags.sort_unstable();
    println!(
        "| {label} | {} | {} | {} | {} |",
        lags.len(),
        seconds(percentile(&lags, 0.5)),
        seconds(percentile(&lags, 0.99)),
        seconds(lags.last().copied().unwrap_or(0)),
    );
}

fn file_mb(path: &Path) -> f64 {
    std::fs::metadata(path).map_or(0.0, |m| m.len() as f64 / 1e6)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let option = |name: &str| {
        args.iter()
            .find_map(|a| a.strip_prefix(&format!("--{name}=")).map(str::to_string))
    };
    let duration_option = |name: &str, default: &str| {
        humantime::parse_duration(&option(name).unwrap_or_else(|| default.into()))
            .unwrap_or_else(|_| panic!("--{name} takes a duration such as {default}"))
    };
    let feeds: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(100_000);
    let minutes: f64 = option("minutes").map_or(30.0, |m| m.parse().expect("--minutes=30"));
    let run_for = Duration::from_secs_f64(minutes * 60.0);
    let hosts: usize = option("hosts").map_or(HOSTS, |n| n.parse().expect("--hosts=N"));
    let interval = duration_option("interval", "15m");
    let news_every = duration_option("news", "2h");
    let latency = Latency {
        median: duration_option("latency", "0s"),
        long_tail: args.iter().any(|a| a == "--tail"),
    };

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (site, urls) = runtime.block_on(start_site(
        feeds,
        hosts,
        latency,
        news_every,
        run_for + Duration::from_secs(600),
    ));
    let dir = tempfile::tempdir().unwrap();
    let mut config = format!(
        "database = \"feedwatch.db\"\n\n[defaults]\ninterval = \"{}\"\n",
        { humantime::format_duration(interval) }
    );
    for (index, url) in urls.iter().enumerate() {
        let _ = write!(
            config,
            "\n[[feed]]\nname = \"feed {index}\"\nurl = \"{url}\"\n"
        );
    }
    config.push_str(RULES);
    let config_path = dir.path().join("config.toml");
    std::fs::write(&config_path, &config).unwrap();
    let log = dir.path().join("daemon.log");

    let shape = if latency.long_tail {
        "median, long-tailed"
    } else {
        "fixed"
    };
    println!(
        "{feeds} feeds on {hosts} hosts, every {}, for {minutes} min; every answer waits {:?} \
         ({shape}); a new item every {} per feed on average\n",
        humantime::format_duration(interval),
        latency.median,
        humantime::format_duration(news_every),
    );

    let mut daemon = start_daemon(&config_path, &log);
    let pid = daemon.id();
    let start_ms = site.elapsed_ms();
    let started = Instant::now();
    let mut samples: Vec<Sample> = Vec::new();
    let mut loads: Vec<f64> = Vec::new();
    let (mut minute, mut requests_then, mut cpu_then) = (0, 0, Duration::ZERO);
    while started.elapsed() < run_for {
        std::thread::sleep(SAMPLE_EVERY.min(run_for.saturating_sub(started.elapsed())));
        if let Some(status) = daemon.try_wait().unwrap() {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            panic!("feedwatch stopped by itself ({status}):\n{text}");
        }
        let Some(now) = sample(pid) else { continue };
        samples.push(now);
        loads.push(load_average());
        // A line a minute on stderr, to follow a long run.
        if started.elapsed().as_secs() / 60 > minute {
            minute = started.elapsed().as_secs() / 60;
            let requests = site.requests.lock().unwrap().len();
            eprintln!(
                "{minute} min: {:.0} requests/s, CPU {:.0}% of a core, RSS {:.0} MB, load {:.1}",
                (requests - requests_then) as f64 / 60.0,
                (now.cpu - cpu_then).as_secs_f64() / 0.6,
                now.rss_kib as f64 / 1024.0,
                load_average(),
            );
            (requests_then, cpu_then) = (requests, now.cpu);
        }
    }
    let last = samples.last().copied().unwrap_or_default();
    let stop_ms = site.elapsed_ms();
    // SAFETY: kill only sends a signal to the daemon this benchmark started.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGTERM);
    }
    let stopping = Instant::now();
    let stopped = loop {
        if daemon.try_wait().unwrap().is_some() {
            break stopping.elapsed();
        }
        assert!(
            stopping.elapsed() < STOP_GRACE,
            "feedwatch stopped on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let server_cpu = sample(std::process::id()).unwrap_or_default().cpu;

    // Requests made while the daemon ran, in order of arrival.
    let mut requests: Vec<(u32, u32)> = site
        .requests
        .lock()
        .unwrap()
        .iter()
        .copied()
        .filter(|&(_, at)| at >= start_ms && at <= stop_ms)
        .collect();
    requests.sort_by_key(|&(_, at)| at);
    let mut first: Vec<Option<u32>> = vec![None; feeds];
    let mut previous: Vec<Option<u32>> = vec![None; feeds];
    let interval_ms = interval.as_millis() as i64;
    let mut steady_lags = Vec::new();
    for &(feed, at) in &requests {
        let feed = feed as usize;
        if let Some(before) = previous[feed] {
            steady_lags.push(i64::from(at) - i64::from(before) - interval_ms);
        }
        first[feed].get_or_insert(at);
        previous[feed] = Some(at);
    }
    let first_lags: Vec<i64> = first
        .iter()
        .flatten()
        .map(|&at| i64::from(at) - i64::from(start_ms))
        .collect();
    let never = feeds - first_lags.len();
    let first_round_end = first.iter().flatten().max().copied().unwrap_or(stop_ms);
    // A poll that is due and has not come shows in no gap: count how long each has waited.
    let overdue: Vec<i64> = previous
        .iter()
        .flatten()
        .map(|&at| i64::from(stop_ms) - i64::from(at) - interval_ms)
        .filter(|&late| late > 0)
        .collect();
    // Whole intervals after the first round, in which every feed is due once: the rate the
    // daemon held, free of where in the interval the first round put each feed.
    let whole = (stop_ms - first_round_end) / interval.as_millis() as u32;
    let steady_from = stop_ms - whole * interval.as_millis() as u32;
    let steady_requests = requests.iter().filter(|&&(_, at)| at > steady_from).count();
    let run_s = f64::from(stop_ms - start_ms) / 1000.0;
    let steady_s = f64::from(stop_ms - steady_from) / 1000.0;

    let db = dir.path().join("feedwatch.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let count = |table: &str| -> i64 {
        conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .unwrap_or(-1)
    };
    let (articles, matches) = (count("articles"), count("matches"));
    drop(conn);
    let max_rss = samples.iter().map(|s| s.rss_kib).max().unwrap_or(0);
    let mb = |kib: u64| kib as f64 / 1024.0;
    let mean_load = loads.iter().sum::<f64>() / loads.len().max(1) as f64;
    let max_load = loads.iter().copied().fold(0.0, f64::max);

    println!("| schedule | polls | lag p50 | lag p99 | lag max |");
    println!("|---|---:|---:|---:|---:|");
    let spread = (feedwatch::daemon::FIRST_POLL_SPACING * feeds as u32).min(interval);
    lag_row(
        &format!(
            "first round: first request after start (spread planned over {:.0} s)",
            spread.as_secs_f64()
        ),
        first_lags,
    );
    lag_row("steady: time between requests minus interval", steady_lags);
    lag_row("due and not polled at the stop: waited", overdue);
    println!();
    println!("| measure | value |");
    println!("|---|---:|");
    println!(
        "| requests/s, whole run | {:.1} ({} in {run_s:.0} s) |",
        requests.len() as f64 / run_s,
        requests.len()
    );
    let needed = feeds as f64 / interval.as_secs_f64();
    if whole > 0 {
        println!(
            "| requests/s in the last {whole} whole interval(s) after the first round (needed: {needed:.1}) | {:.1} ({steady_requests} in {steady_s:.0} s) |",
            steady_requests as f64 / steady_s,
        );
    } else {
        println!(
            "| requests/s after the first round (needed: {needed:.1}) | no whole interval left |"
        );
    }
    println!(
        "| first round over (every feed asked for once) | {} |",
        if never == 0 {
            format!(
                "{:.0} s after start",
                f64::from(first_round_end - start_ms) / 1000.0
            )
        } else {
            format!("not over: {never} feeds never asked for")
        }
    );
    let (full, not_modified) = (
        site.full.load(Ordering::Relaxed),
        site.not_modified.load(Ordering::Relaxed),
    );
    // A request whose connection closed before its answer leaves its handler unfinished.
    let unanswered = site.requests.lock().unwrap().len() as u64 - full - not_modified;
    println!(
        "| answers 200 / 304 / left before the answer | {full} / {not_modified} / {unanswered} |"
    );
    println!(
        "| daemon CPU (user + system) | {:.0} s, {:.0}% of one core |",
        last.cpu.as_secs_f64(),
        last.cpu.as_secs_f64() / run_s * 100.0
    );
    println!(
        "| daemon RSS: max of {} samples / last / VmHWM | {:.0} / {:.0} / {:.0} MB |",
        samples.len(),
        mb(max_rss),
        mb(last.rss_kib),
        mb(last.hwm_kib)
    );
    println!(
        "| database + WAL after the stop | {:.0} + {:.0} MB |",
        file_mb(&db),
        file_mb(&dir.path().join("feedwatch.db-wal"))
    );
    println!("| articles stored / matches | {articles} / {matches} |");
    println!("| stop after SIGTERM | {:.1} s |", stopped.as_secs_f64());
    println!(
        "| benchmark's own CPU (server) | {:.0} s |",
        server_cpu.as_secs_f64()
    );
    println!("| load average (1 min) during the run | mean {mean_load:.1}, max {max_load:.1} |");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    println!("\ndaemon log: {} lines at warn or above", lines.len());
    for line in lines.iter().take(5) {
        println!("  {line}");
    }
}

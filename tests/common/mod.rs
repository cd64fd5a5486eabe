//! Test fixtures: a local HTTP server (feeds, pages, a webhook receiver) on 127.0.0.1, a config
//! builder, a temporary config and database, a way to run the real `feedwatch` binary against
//! them, and bounded waits.

#![allow(dead_code, unused_imports)] // each test binary uses a different part of this module

mod child;
mod config;
mod server;
mod wait;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use child::{Measured, wait4};
pub use config::ConfigBuilder;
pub use server::{Received, Route, TestServer};
pub use wait::{sleep_past, wait_until, wait_until_with};

/// A temporary folder holding `config.toml` and the database.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new(config: &str) -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        Workspace { dir }
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("feedwatch.db")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `feedwatch --config <this config> ARGS…` to completion.
    pub async fn run(&self, args: &[&str]) -> Output {
        feedwatch(&self.config(), args, &[]).await
    }

    pub fn query_i64(&self, sql: &str) -> i64 {
        let conn = rusqlite::Connection::open(self.db()).unwrap();
        conn.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    /// Like [`Workspace::query_i64`], in the search index (its file beside the database).
    pub fn query_index_i64(&self, sql: &str) -> i64 {
        let index = feedwatch::store::index_path(&self.db());
        let conn = rusqlite::Connection::open(index).unwrap();
        conn.query_row(sql, [], |r| r.get(0)).unwrap()
    }
}

pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn assert_ok(&self) -> &Output {
        assert_eq!(
            self.code,
            Some(0),
            "feedwatch failed\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// Asserts that feedwatch wrote `text` to stderr, and shows what it wrote if not.
    #[track_caller]
    pub fn assert_stderr_has(&self, text: impl AsRef<str>) -> &Output {
        assert_has("stderr", &self.stderr, text.as_ref());
        self
    }

    /// Asserts that feedwatch wrote `text` to stdout, and shows what it wrote if not.
    #[track_caller]
    pub fn assert_stdout_has(&self, text: impl AsRef<str>) -> &Output {
        assert_has("stdout", &self.stdout, text.as_ref());
        self
    }
}

#[track_caller]
fn assert_has(stream: &str, written: &str, text: &str) {
    assert!(
        written.contains(text),
        "{stream} lacks {text:?}:\n{written}"
    );
}

/// Loopback traffic must never go through a proxy from the environment, and the test's own log
/// level or systemd socket must not leak into the binary under test.
const INHERITED_ENV_TO_DROP: [&str; 10] = [
    "http_proxy",
    "https_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "RUST_LOG",
    "NOTIFY_SOCKET",
    "JOURNAL_STREAM",
    "STATE_DIRECTORY",
    "CREDENTIALS_DIRECTORY",
];

pub async fn feedwatch(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_feedwatch"));
    cmd.arg("--config").arg(config).args(args);
    for var in INHERITED_ENV_TO_DROP {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("feedwatch finished within 60 s")
        .expect("feedwatch ran");
    Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// An RSS 2.0 document with `(guid, title, description)` items.
pub fn rss(title: &str, items: &[(&str, &str, &str)]) -> String {
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\"><channel>\
         <title>{title}</title><link>https://news.example/</link>"
    );
    for (guid, title, description) in items {
        xml.push_str(&format!(
            "<item><guid isPermaLink=\"false\">{guid}</guid><title>{title}</title>\
             <link>https://news.example/{guid}</link><description>{description}</description>\
             <pubDate>Wed, 25 Nov 2026 09:00:00 GMT</pubDate></item>"
        ));
    }
    xml.push_str("</channel></rss>");
    xml
}

/// The real binary running as a daemon (`run`), with its stderr collected for assertions.
pub struct Daemon {
    child: std::process::Child,
    log: Arc<Mutex<String>>,
}

impl Daemon {
    pub fn start(config: &Path, env: &[(&str, &str)]) -> Daemon {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_feedwatch"));
        cmd.arg("--config")
            .arg(config)
            .arg("run")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        for var in INHERITED_ENV_TO_DROP {
            cmd.env_remove(var);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start feedwatch run");
        let log = Arc::new(Mutex::new(String::new()));
        for stream in [
            Box::new(child.stderr.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stdout.take().unwrap()),
        ] {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                use std::io::BufRead;
                for line in std::io::BufReader::new(stream)
                    .lines()
                    .map_while(Result::ok)
                {
                    let mut log = log.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                }
            });
        }
        Daemon { child, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the daemon's output contains `text` `times` times.
    pub async fn wait_for_log(&self, text: &str, times: usize) {
        wait_until_with(
            Duration::from_secs(20),
            &format!("{times}× {text:?}"),
            || self.log().matches(text).count() >= times,
            || format!("; log:\n{}", self.log()),
        )
        .await;
    }

    /// Sends a signal by name (`TERM`, `HUP`, `KILL`).
    pub fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// SIGKILL: no shutdown code runs, as after a crash or power cut.
    pub async fn kill(mut self) {
        self.signal("KILL");
        self.wait_exit(Duration::from_secs(10)).await;
    }

    /// Waits for the process to end and returns its exit code.
    pub async fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let log = Arc::clone(&self.log);
        let child = &mut self.child;
        let mut code = None;
        wait_until_with(
            within,
            "feedwatch to exit",
            || match child.try_wait().expect("wait for feedwatch") {
                Some(status) => {
                    code = status.code();
                    true
                }
                None => false,
            },
            || format!("; log:\n{}", log.lock().unwrap()),
        )
        .await;
        code
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! Desktop alerts against a real notification daemon: a private D-Bus session bus, Xvfb and
//! dunst, read back with `dunstctl history`.
//!
//! Needs `dbus-daemon`, `Xvfb` and `dunst` (Debian: `dbus-x11 xvfb dunst`); `.ci/run` installs
//! them. Outside CI the test is skipped with a message when they are missing; in CI it fails.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Workspace, rss, sleep_past, wait_until};

/// How long the desktop helpers get to start or show a notification.
const WAIT: Duration = Duration::from_secs(10);

/// One private desktop at a time: each test reads back the whole notification history of its
/// own dunst, and a second X server plus daemon at once only slows this small machine.
static ONE_DESKTOP: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Kills the helper processes however the test ends.
struct Session {
    children: Vec<Child>,
    bus: String,
    display: String,
}

impl Drop for Session {
    fn drop(&mut self) {
        // SIGTERM first, so Xvfb removes its socket and lock file; SIGKILL what lingers.
        for child in self.children.iter_mut().rev() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let start = Instant::now();
            while matches!(child.try_wait(), Ok(None)) && start.elapsed() < Duration::from_secs(2) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Session {
    async fn start() -> Option<Session> {
        for tool in ["dbus-daemon", "Xvfb", "dunst", "dunstctl"] {
            if which(tool).is_none() {
                let message =
                    format!("{tool} is not installed (apt-get install dbus-x11 xvfb dunst)");
                assert!(std::env::var_os("CI").is_none(), "{message}");
                eprintln!("skipping desktop test: {message}");
                return None;
            }
        }
        let mut session = Session {
            children: Vec::new(),
            bus: String::new(),
            display: String::new(),
        };
        let mut bus = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dbus-daemon");
        let mut address = String::new();
        {
            use std::io::BufRead;
            let stdout = bus.stdout.take().unwrap();
            std::io::BufReader::new(stdout)
                .read_line(&mut address)
                .expect("dbus-daemon prints its address");
        }
        session.children.push(bus);
        session.bus = address.trim().to_string();

        // Xvfb picks a free display itself (stale sockets from killed servers included) and
        // writes its number to the descriptor given.
        let mut xvfb = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                "800x600x24",
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start Xvfb");
        let mut display = String::new();
        {
            use std::io::BufRead;
            let stdout = xvfb.stdout.take().unwrap();
            std::io::BufReader::new(stdout)
                .read_line(&mut display)
                .expect("Xvfb prints its display number");
        }
        session.children.push(xvfb);
        session.display = format!(":{}", display.trim());

        // Distinct timeouts per urgency: `dunstctl history` reports the timeout, not the urgency.
        let dunstrc =
            std::env::temp_dir().join(format!("feedwatch-dunstrc-{}", std::process::id()));
        std::fs::write(
            &dunstrc,
            "[urgency_low]\n    timeout = 3\n[urgency_normal]\n    timeout = 7\n\
             [urgency_critical]\n    timeout = 0\n",
        )
        .expect("write dunstrc");
        let dunst = Command::new("dunst")
            .arg("-config")
            .arg(&dunstrc)
            .env("DISPLAY", &session.display)
            .env("DBUS_SESSION_BUS_ADDRESS", &session.bus)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dunst");
        session.children.push(dunst);
        wait_until(WAIT, "dunst to answer", || {
            session.dunstctl(&["is-paused"]).is_some()
        })
        .await;
        Some(session)
    }

    /// `feedwatch run --once` on this session's bus and display; must succeed.
    async fn run_once(&self, ws: &Workspace) -> common::Output {
        let out = common::feedwatch(
            &ws.config(),
            &["run", "--once"],
            &[
                ("DBUS_SESSION_BUS_ADDRESS", self.bus.as_str()),
                ("DISPLAY", self.display.as_str()),
            ],
        )
        .await;
        out.assert_ok();
        out
    }

    fn dunstctl(&self, args: &[&str]) -> Option<String> {
        let out = Command::new("dunstctl")
            .args(args)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Summaries and bodies of the notifications dunst has shown and closed.
    fn history(&self) -> Vec<(String, String)> {
        self.history_with_urgency()
            .into_iter()
            .map(|(summary, body, _)| (summary, body))
            .collect()
    }

    /// Summary, body and urgency (`LOW`, `NORMAL`, `CRITICAL`) of each closed notification,
    /// read from the per-urgency timeout set in the test's dunstrc.
    fn history_with_urgency(&self) -> Vec<(String, String, String)> {
        let text = self.dunstctl(&["history"]).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        v["data"][0]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|n| {
                        (
                            n["summary"]["data"].as_str().unwrap_or("").to_string(),
                            n["body"]["data"].as_str().unwrap_or("").to_string(),
                            match n["timeout"]["data"].as_i64() {
                                Some(3_000_000) => "LOW",
                                Some(7_000_000) => "NORMAL",
                                Some(0) => "CRITICAL",
                                _ => "",
                            }
                            .to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn which(tool: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(tool))
            .find(|p| p.is_file())
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn desktop_alert_reaches_the_notification_daemon() {
    let _desktop = ONE_DESKTOP.lock().await;
    let Some(session) = Session::start().await else {
        return;
    };
    let ws = Workspace::new(
        "[[feed]]\nname = \"Local\"\nurl = \"feed.xml\"\n\
         [[rule]]\nname = \"nato\"\nquery = 'NATO'\nnotify = [\"desk\"]\n\
         [[notifier]]\nname = \"desk\"\nkind = \"desktop\"\n",
    );
    std::fs::write(
        ws.path("feed.xml"),
        rss(
            "Local",
            &[("d1", "NATO &amp; EU: 3 &lt; 4", ""), ("d2", "Weather", "")],
        ),
    )
    .unwrap();
    let out = session.run_once(&ws).await;
    assert_eq!(
        ws.query_i64("SELECT COUNT(*) FROM outbox WHERE status = 'delivered'"),
        1,
        "{}",
        out.stderr
    );
    // History holds closed notifications only.
    session.dunstctl(&["close-all"]);
    let mut history = Vec::new();
    wait_until(WAIT, "the notification in history", || {
        history = session.history();
        !history.is_empty()
    })
    .await;
    assert_eq!(history.len(), 1, "{history:?}");
    let (summary, body) = &history[0];
    assert_eq!(summary, "feedwatch: nato");
    // Notification servers read the body as markup: `&` and `<` from the feed are sent escaped.
    assert!(body.starts_with("NATO &amp; EU: 3 &lt; 4\n"), "{body}");
    assert!(body.contains("https://news.example/d1"), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_session_bus_keeps_the_alert_pending() {
    let ws = Workspace::new(
        "[[feed]]\nurl = \"feed.xml\"\n\
         [[rule]]\nname = \"nato\"\nquery = 'NATO'\nnotify = [\"desk\"]\n\
         [[notifier]]\nname = \"desk\"\nkind = \"desktop\"\n",
    );
    std::fs::write(ws.path("feed.xml"), rss("L", &[("n1", "NATO", "")])).unwrap();
    let out = common::feedwatch(
        &ws.config(),
        &["run", "--once"],
        &[("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")],
    )
    .await;
    out.assert_ok();
    out.assert_stderr_has("session bus");
    assert_eq!(
        ws.query_i64("SELECT COUNT(*) FROM outbox WHERE status = 'pending'"),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn many_matches_of_one_rule_become_one_notification_with_the_rule_urgency() {
    let _desktop = ONE_DESKTOP.lock().await;
    let Some(session) = Session::start().await else {
        return;
    };
    let ws = Workspace::new(
        "[[feed]]\nname = \"Local\"\nurl = \"feed.xml\"\n\
         [[rule]]\nname = \"ukraine\"\nquery = 'Ukraine'\nnotify = [\"desk\"]\nurgency = \"critical\"\n\
         [[rule]]\nname = \"nato\"\nquery = 'NATO'\nnotify = [\"desk\"]\nurgency = \"low\"\n\
         [[notifier]]\nname = \"desk\"\nkind = \"desktop\"\n",
    );
    let titles: Vec<String> = (1..=7)
        .map(|i| format!("Ukraine &amp; 3 &lt; 4: {i}"))
        .collect();
    let mut items: Vec<(String, &str, &str)> = titles
        .iter()
        .enumerate()
        .map(|(i, t)| (format!("u{i}"), t.as_str(), ""))
        .collect();
    items.push(("n1".to_string(), "NATO meets", ""));
    let refs: Vec<(&str, &str, &str)> =
        items.iter().map(|(g, t, d)| (g.as_str(), *t, *d)).collect();
    std::fs::write(ws.path("feed.xml"), rss("Local", &refs)).unwrap();
    let out = session.run_once(&ws).await;
    assert_eq!(
        ws.query_i64("SELECT COUNT(*) FROM outbox WHERE status = 'delivered'"),
        8,
        "{}",
        out.stderr
    );
    let mut history = Vec::new();
    wait_until(WAIT, "both notifications in history", || {
        // Closing shown notifications lets dunst show the ones it queued; close those too.
        session.dunstctl(&["close-all"]);
        history = session.history_with_urgency();
        history.len() >= 2
    })
    .await;
    assert_eq!(history.len(), 2, "{history:?}");
    let grouped = history
        .iter()
        .find(|(s, _, _)| s.contains("ukraine"))
        .expect("a grouped notification");
    assert_eq!(grouped.0, "feedwatch: 7 new matches for ukraine");
    assert_eq!(grouped.2, "CRITICAL");
    let lines: Vec<&str> = grouped.1.lines().collect();
    assert_eq!(lines.len(), 6, "{lines:?}");
    // The title's markup arrives escaped: shown as text, never rendered.
    assert_eq!(lines[0], "• Ukraine &amp; 3 &lt; 4: 1");
    assert_eq!(lines[5], "… and 2 more");
    let single = history
        .iter()
        .find(|(s, _, _)| s == "feedwatch: nato")
        .expect("the single nato alert on its own");
    assert_eq!(single.2, "LOW");
}

#[tokio::test(flavor = "multi_thread")]
async fn clicking_a_desktop_alert_opens_its_link() {
    let _desktop = ONE_DESKTOP.lock().await;
    let Some(session) = Session::start().await else {
        return;
    };
    let ws = Workspace::new("");
    let opened = ws.path("opened.txt");
    let opener = ws.path("open-link");
    std::fs::write(
        &opener,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$1\" >> '{}'\n",
            opened.display()
        ),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&opener, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::write(
        ws.config(),
        format!(
            "[[feed]]\nname = \"Local\"\nurl = \"feed.xml\"\n\
             [[rule]]\nname = \"nato\"\nquery = 'NATO'\nnotify = [\"desk\"]\n\
             [[notifier]]\nname = \"desk\"\nkind = \"desktop\"\nopen_with = \"{}\"\n",
            opener.display()
        ),
    )
    .unwrap();
    std::fs::write(
        ws.path("feed.xml"),
        rss("Local", &[("d1", "NATO meets", "")]),
    )
    .unwrap();
    let daemon = common::Daemon::start(
        &ws.config(),
        &[
            ("DBUS_SESSION_BUS_ADDRESS", session.bus.as_str()),
            ("DISPLAY", session.display.as_str()),
        ],
    );
    wait_until(Duration::from_secs(30), "the alert on screen", || {
        session
            .dunstctl(&["count", "displayed"])
            .is_some_and(|n| n.trim() == "1")
    })
    .await;
    // The click: dunst invokes the notification's default action.
    assert!(session.dunstctl(&["action", "0"]).is_some());
    wait_until(Duration::from_secs(30), "the link opened", || {
        std::fs::read_to_string(&opened).is_ok_and(|t| !t.is_empty())
    })
    .await;
    assert_eq!(
        std::fs::read_to_string(&opened).unwrap(),
        "https://news.example/d1\n"
    );
    let log = daemon.log();
    daemon.kill().await;
    assert!(!log.contains("WARN"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn desktop_digest_is_one_notification_listing_the_alerts() {
    let _desktop = ONE_DESKTOP.lock().await;
    let Some(session) = Session::start().await else {
        return;
    };
    let ws = Workspace::new(
        "[[feed]]\nname = \"Local\"\nurl = \"feed.xml\"\n\
         [[rule]]\nname = \"nato\"\nquery = 'NATO'\nnotify = [\"desk\"]\nurgency = \"low\"\n\
         [[rule]]\nname = \"eu\"\nquery = 'EU'\nnotify = [\"desk\"]\nurgency = \"critical\"\n\
         [[notifier]]\nname = \"desk\"\nkind = \"desktop\"\ndigest = \"1s\"\n",
    );
    std::fs::write(
        ws.path("feed.xml"),
        rss(
            "Local",
            &[("n1", "NATO &amp; 3 &lt; 4", ""), ("e1", "EU votes", "")],
        ),
    )
    .unwrap();
    session.run_once(&ws).await;
    let window_end = ws.query_i64("SELECT MAX(next_attempt_at) FROM outbox");
    sleep_past(window_end).await;
    let out = session.run_once(&ws).await;
    assert_eq!(
        ws.query_i64("SELECT COUNT(*) FROM outbox WHERE status = 'delivered'"),
        2,
        "{}",
        out.stderr
    );
    let mut history = Vec::new();
    wait_until(WAIT, "the notification in history", || {
        session.dunstctl(&["close-all"]);
        history = session.history_with_urgency();
        !history.is_empty()
    })
    .await;
    assert_eq!(history.len(), 1, "{history:?}");
    let (summary, body, urgency) = &history[0];
    assert_eq!(summary, "feedwatch: 2 new matches");
    assert_eq!(body, "• nato: NATO &amp; 3 &lt; 4\n• eu: EU votes");
    // The most urgent rule in the digest sets its urgency.
    assert_eq!(urgency, "CRITICAL");
}

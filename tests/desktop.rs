//! Desktop alerts against a real notification daemon: a private D-Bus session bus, Xvfb and
//! dunst, read back with `dunstctl history`.
//!
//! Needs `dbus-daemon`, `Xvfb` and `dunst` (Debian: `dbus-x11 xvfb dunst`); `.ci/run` installs
//! them. Outside CI the test is skipped with a message when they are missing; in CI it fails.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Workspace, rss};

/// Kills the helper processes however the test ends.
struct Session {
    children: Vec<Child>,
    bus: String,
    display: String,
}

impl Drop for Session {
    fn drop(&mut self) {
        for child in &mut self.children {
            // SIGTERM lets Xvfb remove its socket and lock files; SIGKILL would leave them.
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
    }
}

impl Session {
    fn start() -> Option<Session> {
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

        // Xvfb picks a free display itself and prints its number on the given fd.
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

        let dunst = Command::new("dunst")
            .env("DISPLAY", &session.display)
            .env("DBUS_SESSION_BUS_ADDRESS", &session.bus)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dunst");
        session.children.push(dunst);
        wait_for(|| session.dunstctl(&["is-paused"]).is_some());
        Some(session)
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

fn wait_for(mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "helper did not start in 10 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn desktop_alert_reaches_the_notification_daemon() {
    let Some(session) = Session::start() else {
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
    let out = common::feedwatch(
        &ws.config(),
        &["run", "--once"],
        &[
            ("DBUS_SESSION_BUS_ADDRESS", session.bus.as_str()),
            ("DISPLAY", session.display.as_str()),
        ],
    )
    .await;
    out.assert_ok();
    assert_eq!(
        ws.query_i64("SELECT COUNT(*) FROM outbox WHERE status = 'delivered'"),
        1,
        "{}",
        out.stderr
    );
    // History holds closed notifications only.
    session.dunstctl(&["close-all"]);
    let mut history = Vec::new();
    wait_for(|| {
        history = session.history();
        !history.is_empty()
    });
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
    assert!(out.stderr.contains("session bus"), "{}", out.stderr);
    assert_eq!(
        ws.query_i64("SELECT COUNT(*) FROM outbox WHERE status = 'pending'"),
        1
    );
}

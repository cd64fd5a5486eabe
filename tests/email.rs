//! Email alerts end to end: the real binary against a real SMTP server (Python's aiosmtpd,
//! `tests/data/smtp/server.py`) that each test starts on 127.0.0.1, with STARTTLS, implicit
//! TLS and login; and against a stand-in `sendmail` that records what it is given.
//!
//! The SMTP tests need python3 with aiosmtpd (Debian: `python3-aiosmtpd`); `.ci/run` installs
//! it. Outside CI they are skipped with a message when it is missing; in CI they fail.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{ConfigBuilder, Daemon, Workspace, rss, sleep_past, wait_until};
use serde_json::Value;

const USER: &str = "alerts@example.org";
const PASSWORD: &str = "pw-6f1c-never-logged";

fn smtp_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/smtp")
}

/// A Python with aiosmtpd: the one on PATH, else Debian's own; `None` (after saying why)
/// when there is none and CI is not set.
fn python() -> Option<&'static str> {
    for candidate in ["python3", "/usr/bin/python3"] {
        let has_aiosmtpd = Command::new(candidate)
            .args(["-c", "import aiosmtpd"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if has_aiosmtpd {
            return Some(candidate);
        }
    }
    let why = "python3 with aiosmtpd is not installed (apt-get install python3-aiosmtpd)";
    assert!(
        std::env::var_os("CI").is_none(),
        "{why} (CI is set, so this test must run)"
    );
    eprintln!("skipped: {why}");
    None
}

/// The SMTP server of one test; stopped when dropped.
struct SmtpServer {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl SmtpServer {
    /// Starts the server on `port` (0: any free one) with `options` (`--tls`, `--auth`).
    fn start(python: &str, port: u16, options: &[&str]) -> SmtpServer {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(python)
            .arg(smtp_data().join("server.py"))
            .arg(dir.path())
            .args(["--port", &port.to_string()])
            .args(options)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the SMTP test server starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .strip_prefix("listening ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("the SMTP test server did not start: {line:?}"));
        SmtpServer { child, dir, port }
    }

    /// The mails accepted so far, oldest first, as the server read them.
    fn mails(&self) -> Vec<Value> {
        (1..)
            .map(|n| self.dir.path().join(format!("mail-{n}.json")))
            .take_while(|path| path.exists())
            .map(|path| serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap())
            .collect()
    }

    /// The answer to each DATA so far ("250 OK", "451 ...").
    fn attempts(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("attempts"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Answer each DATA with `answer` from now on; `None` accepts again.
    fn answer(&self, answer: Option<&str>) {
        let path = self.dir.path().join("answer");
        match answer {
            Some(text) => std::fs::write(path, text).unwrap(),
            None => std::fs::remove_file(path).unwrap(),
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nothing listens on now (bound and released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A workspace whose feed `world.xml` has `titles` (each matching the rule "Ukraine") and
/// whose rule alerts through the email notifier `mail` with `keys`.
fn workspace(titles: &[&str], keys: &str) -> Workspace {
    let config = ConfigBuilder::new()
        .named_feed("World", "world.xml")
        .rule("ukraine", "Ukraine", &["mail"])
        .with(&format!(
            "\n[[notifier]]\nname = \"mail\"\nkind = \"email\"\n\
             from = \"feedwatch <{USER}>\"\nto = [\"me@example.net\", \"Ops <ops@example.net>\"]\n\
             {keys}"
        ))
        .build();
    let ws = Workspace::new(&config);
    write_feed(&ws, titles);
    std::fs::write(ws.path("smtp-password"), format!("{PASSWORD}\n")).unwrap();
    ws
}

fn write_feed(ws: &Workspace, titles: &[&str]) {
    let guids: Vec<String> = (1..=titles.len()).map(|i| format!("g{i}")).collect();
    let items: Vec<(&str, &str, &str)> = guids
        .iter()
        .zip(titles)
        .map(|(guid, title)| (guid.as_str(), *title, "Kyiv, Ukraine."))
        .collect();
    std::fs::write(ws.path("world.xml"), rss("World", &items)).unwrap();
}

fn ca() -> String {
    smtp_data().join("ca.pem").display().to_string()
}

fn header<'a>(mail: &'a Value, name: &str) -> Vec<&'a str> {
    mail["headers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h[0].as_str().unwrap().eq_ignore_ascii_case(name))
        .map(|h| h[1].as_str().unwrap())
        .collect()
}

/// `(delivery_id, status, attempts)` of each outbox row, oldest first.
fn outbox(ws: &Workspace) -> Vec<(String, String, i64)> {
    let conn = rusqlite::Connection::open(ws.db()).unwrap();
    let mut statement = conn
        .prepare("SELECT delivery_id, status, attempts FROM outbox ORDER BY id")
        .unwrap();
    statement
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn starttls_with_login_sends_one_well_formed_multipart_mail_per_alert() {
    let Some(python) = python() else { return };
    let server = SmtpServer::start(python, 0, &["--tls", "starttls", "--auth", USER, PASSWORD]);
    let title = "Україна: «саміт» NATO opens — Ukraine";
    let ws = workspace(
        &[title],
        &format!(
            "smtp = \"smtp://127.0.0.1:{}\"\nusername = \"{USER}\"\n\
             password = {{ file = \"smtp-password\" }}\ntls_ca_file = \"{}\"",
            server.port,
            ca()
        ),
    );
    let out = ws.run(&["run", "--once"]).await;
    out.assert_ok();
    let mails = server.mails();
    assert_eq!(mails.len(), 1, "{}", out.stderr);
    let mail = &mails[0];
    assert_eq!(mail["tls"], true);
    assert_eq!(mail["login"], USER);
    assert_eq!(mail["mail_from"], USER);
    assert_eq!(
        mail["rcpt_tos"],
        serde_json::json!(["me@example.net", "ops@example.net"])
    );
    assert_eq!(mail["defects"], serde_json::json!([]), "{}", mail["raw"]);
    assert_eq!(mail["content_type"], "multipart/alternative");
    // Python decodes the encoded words back to the title.
    assert_eq!(header(mail, "Subject"), [format!("[ukraine] {title}")]);
    let raw = mail["raw"].as_str().unwrap();
    let head = raw.split("\r\n\r\n").next().unwrap();
    assert!(head.contains("=?utf-8?"), "{head}");
    let (delivery_id, status, _) = &outbox(&ws)[0];
    assert_eq!(status, "delivered");
    assert_eq!(
        header(mail, "Message-ID"),
        [format!("<feedwatch.{delivery_id}@example.org>")]
    );
    let text = mail["text"].as_str().unwrap();
    assert!(text.contains("https://news.example/g1"), "{text}");
    assert!(text.contains("Matched:   Ukraine"), "{text}");
    let html = mail["html"].as_str().unwrap();
    assert!(
        html.contains("<a href=\"https://news.example/g1\">"),
        "{html}"
    );
    assert!(html.contains("саміт"), "{html}");
    // Neither the output nor the database holds the password.
    assert!(!out.stdout.contains(PASSWORD) && !out.stderr.contains(PASSWORD));
    assert!(
        !std::fs::read(ws.db())
            .unwrap()
            .windows(PASSWORD.len())
            .any(|w| w == PASSWORD.as_bytes())
    );

    // Sent once: a second run has nothing new to say.
    ws.run(&["run", "--once"]).await.assert_ok();
    assert_eq!(server.mails().len(), 1);

    // check names the server and the login, never the password.
    let out = ws.run(&["check"]).await;
    out.assert_ok();
    out.assert_stdout_has(format!(
        "mail  email smtp://127.0.0.1:{} (STARTTLS, login {USER})",
        server.port
    ));
    assert!(!out.stdout.contains(PASSWORD));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_title_with_cr_lf_adds_no_header_and_no_recipient() {
    let Some(python) = python() else { return };
    let server = SmtpServer::start(python, 0, &[]);
    let hostile =
        "Ukraine&#13;&#10;Bcc: victim@example.com&#13;&#10;X-Injected: yes\r\nSubject: fake";
    let ws = workspace(
        &[hostile],
        &format!(
            "smtp = \"smtp://127.0.0.1:{}\"\ntls = \"none\"",
            server.port
        ),
    );
    ws.run(&["run", "--once"]).await.assert_ok();
    let mails = server.mails();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(
        mail["rcpt_tos"],
        serde_json::json!(["me@example.net", "ops@example.net"])
    );
    assert!(header(mail, "Bcc").is_empty(), "{}", mail["raw"]);
    assert!(header(mail, "X-Injected").is_empty(), "{}", mail["raw"]);
    let subjects = header(mail, "Subject");
    assert_eq!(subjects.len(), 1, "{}", mail["raw"]);
    assert!(
        subjects[0].starts_with("[ukraine] Ukraine Bcc: victim@example.com X-Injected: yes"),
        "{subjects:?}"
    );
    assert_eq!(mail["defects"], serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn implicit_tls_carries_test_notify_and_an_unknown_certificate_is_refused() {
    let Some(python) = python() else { return };
    let server = SmtpServer::start(python, 0, &["--tls", "implicit"]);
    let smtp = format!("smtp = \"smtps://127.0.0.1:{}\"", server.port);
    let ws = workspace(&[], &format!("{smtp}\ntls_ca_file = \"{}\"", ca()));
    let out = ws.run(&["test-notify", "mail"]).await;
    out.assert_ok();
    out.assert_stdout_has("test alert sent");
    let mails = server.mails();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0]["tls"], true);
    assert_eq!(
        header(&mails[0], "Subject"),
        ["[feedwatch test] Test alert from feedwatch: <it works> & \"quotes\" *stay* literal"]
    );

    // Without the test CA the server's certificate is not trusted: nothing is sent.
    let ws = workspace(&[], &smtp);
    let out = ws.run(&["test-notify", "mail"]).await;
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    out.assert_stdout_has("test alert failed");
    out.assert_stdout_has(format!("smtps://127.0.0.1:{}", server.port));
    out.assert_stdout_has("invalid peer certificate");
    assert_eq!(server.mails().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_is_down_leaves_the_alert_pending_until_it_is_back() {
    let Some(python) = python() else { return };
    let port = free_port();
    let ws = workspace(
        &["Ukraine story"],
        &format!("smtp = \"smtp://127.0.0.1:{port}\"\ntls = \"none\""),
    );
    ws.run(&["run", "--once"]).await.assert_ok();
    let rows = outbox(&ws);
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].1.as_str(), rows[0].2), ("pending", 1));
    let out = ws.run(&["outbox"]).await;
    out.assert_stdout_has("1 failed (will retry)");
    out.assert_stdout_has(format!("smtp://127.0.0.1:{port}"));

    let server = SmtpServer::start(python, port, &[]);
    ws.run(&["run", "--once"]).await.assert_ok();
    let mails = server.mails();
    assert_eq!(mails.len(), 1);
    let rows = outbox(&ws);
    assert_eq!((rows[0].1.as_str(), rows[0].2), ("delivered", 2));
    assert_eq!(
        header(&mails[0], "Message-ID"),
        [format!("<feedwatch.{}@example.org>", rows[0].0)]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_retries_until_a_server_that_was_down_takes_the_mail() {
    let Some(python) = python() else { return };
    let port = free_port();
    let ws = workspace(
        &["Ukraine story"],
        &format!(
            "smtp = \"smtp://127.0.0.1:{port}\"\ntls = \"none\"\n\
             retry_delay = \"1s\"\nretry_max_delay = \"2s\""
        ),
    );
    let daemon = Daemon::start(&ws.config(), &[]);
    daemon.wait_for_log("delivery failed, will retry", 1).await;
    let server = SmtpServer::start(python, port, &[]);
    // The server has the mail a moment before the daemon hears so and marks it delivered.
    wait_until(
        Duration::from_secs(30),
        "the retry reaches the server and is marked delivered",
        || outbox(&ws).first().is_some_and(|row| row.1 == "delivered"),
    )
    .await;
    daemon.kill().await;
    assert_eq!(server.mails().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_4xx_answer_is_retried_and_the_retry_carries_the_same_message_id() {
    let Some(python) = python() else { return };
    let server = SmtpServer::start(python, 0, &[]);
    server.answer(Some("451 4.3.0 Try again later"));
    let ws = workspace(
        &["Ukraine story"],
        &format!(
            "smtp = \"smtp://127.0.0.1:{}\"\ntls = \"none\"",
            server.port
        ),
    );
    ws.run(&["run", "--once"]).await.assert_ok();
    ws.run(&["run", "--once"]).await.assert_ok();
    assert_eq!(server.attempts().len(), 2);
    let rows = outbox(&ws);
    assert_eq!((rows[0].1.as_str(), rows[0].2), ("pending", 2));
    let out = ws.run(&["outbox"]).await;
    out.assert_stdout_has("451");

    server.answer(None);
    ws.run(&["run", "--once"]).await.assert_ok();
    assert_eq!(server.attempts().len(), 3);
    let rows = outbox(&ws);
    assert_eq!(rows[0].1, "delivered");
    assert_eq!(
        header(&server.mails()[0], "Message-ID"),
        [format!("<feedwatch.{}@example.org>", rows[0].0)]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_5xx_answer_makes_the_alert_dead_without_another_try() {
    let Some(python) = python() else { return };
    let server = SmtpServer::start(python, 0, &[]);
    server.answer(Some("550 5.1.1 Mailbox unavailable"));
    let ws = workspace(
        &["Ukraine story"],
        &format!(
            "smtp = \"smtp://127.0.0.1:{}\"\ntls = \"none\"",
            server.port
        ),
    );
    ws.run(&["run", "--once"]).await.assert_ok();
    let rows = outbox(&ws);
    assert_eq!((rows[0].1.as_str(), rows[0].2), ("dead", 1));
    ws.run(&["run", "--once"]).await.assert_ok();
    assert_eq!(server.attempts().len(), 1);
    let out = ws.run(&["outbox"]).await;
    out.assert_stdout_has("1 dead");
    out.assert_stdout_has("550");
    assert!(server.mails().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_digest_goes_out_as_one_mail() {
    let Some(python) = python() else { return };
    let server = SmtpServer::start(python, 0, &[]);
    let ws = workspace(
        &["Ukraine one", "Ukraine two", "Ukraine three"],
        &format!(
            "smtp = \"smtp://127.0.0.1:{}\"\ntls = \"none\"\ndigest = \"1s\"",
            server.port
        ),
    );
    ws.run(&["run", "--once"]).await.assert_ok();
    assert!(server.mails().is_empty(), "the digest window is open");
    sleep_past(chrono::Utc::now().timestamp() + 1).await;
    ws.run(&["run", "--once"]).await.assert_ok();
    let mails = server.mails();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(header(mail, "Subject"), ["feedwatch: 3 new matches"]);
    let text = mail["text"].as_str().unwrap();
    for title in ["Ukraine one", "Ukraine two", "Ukraine three"] {
        assert!(text.contains(&format!("* [ukraine] {title}")), "{text}");
    }
    assert_eq!(mail["html"].as_str().unwrap().matches("<li>").count(), 3);
    let message_id = header(mail, "Message-ID")[0];
    assert!(
        message_id.starts_with("<feedwatch.digest-") && message_id.ends_with("@example.org>"),
        "{message_id}"
    );
    assert!(outbox(&ws).iter().all(|row| row.1 == "delivered"));
}

/// A stand-in `sendmail` that writes its arguments and stdin beside itself and exits with the
/// status in `exit-code` (0 without it).
fn fake_sendmail(ws: &Workspace) -> PathBuf {
    let path = ws.path("fake-sendmail");
    std::fs::write(
        &path,
        "#!/bin/sh\n\
         dir=$(dirname \"$0\")\n\
         n=$(ls \"$dir\" | grep -c '^sent-.*\\.args$')\n\
         printf '%s\\n' \"$@\" > \"$dir/sent-$n.args\"\n\
         cat > \"$dir/sent-$n.eml\"\n\
         echo 'sendmail: stand-in says hello' >&2\n\
         exit \"$(cat \"$dir/exit-code\" 2>/dev/null || echo 0)\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn sendmail_gets_the_mail_on_stdin_and_the_recipients_as_arguments() {
    let ws = workspace(&["Україна and Ukraine"], "sendmail = \"fake-sendmail\"");
    // A relative path is taken from the config's folder.
    std::fs::write(
        ws.config(),
        std::fs::read_to_string(ws.config())
            .unwrap()
            .replace("\"fake-sendmail\"", "\"./fake-sendmail\""),
    )
    .unwrap();
    fake_sendmail(&ws);

    // EX_TEMPFAIL: tried again on the next run.
    std::fs::write(ws.path("exit-code"), "75").unwrap();
    ws.run(&["run", "--once"]).await.assert_ok();
    assert_eq!(outbox(&ws)[0].1, "pending");
    let out = ws.run(&["outbox"]).await;
    out.assert_stdout_has("exited with status 75: sendmail: stand-in says hello");

    std::fs::remove_file(ws.path("exit-code")).unwrap();
    ws.run(&["run", "--once"]).await.assert_ok();
    let rows = outbox(&ws);
    assert_eq!((rows[0].1.as_str(), rows[0].2), ("delivered", 2));
    let args = std::fs::read_to_string(ws.path("sent-1.args")).unwrap();
    assert_eq!(
        args.lines().collect::<Vec<_>>(),
        ["-i", "-f", USER, "--", "me@example.net", "ops@example.net"]
    );
    let eml = std::fs::read_to_string(ws.path("sent-1.eml")).unwrap();
    assert!(!eml.contains('\r'), "Unix line ends for a local program");
    assert!(eml.contains(&format!(
        "Message-ID: <feedwatch.{}@example.org>\n",
        rows[0].0
    )));
    assert!(eml.contains("Subject: [ukraine] =?utf-8?"), "{eml}");
    assert!(eml.contains("Content-Type: multipart/alternative"), "{eml}");
    // The retry carries the first try's Message-ID.
    let message_id = |mail: &str| {
        mail.lines()
            .find(|l| l.starts_with("Message-ID:"))
            .map(str::to_string)
    };
    let first = std::fs::read_to_string(ws.path("sent-0.eml")).unwrap();
    assert_eq!(message_id(&first), message_id(&eml));

    // EX_NOUSER: no further try.
    write_feed(&ws, &["Україна and Ukraine", "Ukraine again"]);
    std::fs::write(ws.path("exit-code"), "67").unwrap();
    ws.run(&["run", "--once"]).await.assert_ok();
    ws.run(&["run", "--once"]).await.assert_ok();
    let rows = outbox(&ws);
    assert_eq!((rows[1].1.as_str(), rows[1].2), ("dead", 1));
    assert!(ws.path("sent-2.args").exists());
    assert!(
        !ws.path("sent-3.args").exists(),
        "the dead alert was tried again"
    );
}

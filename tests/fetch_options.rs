//! A feed's own HTTP options against local servers that demand them: headers, user agent,
//! cookie, basic auth, timeout, proxies (HTTP and SOCKS5, from the config and from the
//! environment) and a self-signed certificate. Secrets must never show in what feedwatch prints.

mod common;

use base64::Engine;

use common::{Output, Route, TestServer, Workspace, rss};

const API_KEY: &str = "k3y-9f8e7d6c5b4a";
const PASSWORD: &str = "pa55-w0rd-1a2b3c";
const COOKIE: &str = "session=c00kie-7x7x7x";
const AGENT: &str = "NewsBot/2.0 (+ops@news.example)";

fn items() -> Vec<u8> {
    rss(
        "Private",
        &[("p1", "First", "one"), ("p2", "Second", "two")],
    )
    .into_bytes()
}

fn basic(user: &str, password: &str) -> String {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {token}")
}

/// The strings that must never appear in anything feedwatch prints.
fn secrets() -> Vec<String> {
    vec![
        API_KEY.into(),
        PASSWORD.into(),
        "c00kie-7x7x7x".into(),
        basic("alice", PASSWORD)["Basic ".len()..].to_string(),
    ]
}

#[track_caller]
fn assert_no_secret(what: &str, out: &Output) {
    for secret in secrets() {
        assert!(
            !out.stdout.contains(&secret) && !out.stderr.contains(&secret),
            "{what} shows a secret ({secret}):\nstdout:\n{}\nstderr:\n{}",
            out.stdout,
            out.stderr
        );
    }
}

fn feed_column<T: rusqlite::types::FromSql>(ws: &Workspace, name: &str, column: &str) -> T {
    let conn = rusqlite::Connection::open(ws.db()).unwrap();
    conn.query_row(
        &format!("SELECT {column} FROM feeds WHERE name = ?1"),
        [name],
        |r| r.get(0),
    )
    .unwrap()
}

fn articles_of(ws: &Workspace, name: &str) -> i64 {
    let conn = rusqlite::Connection::open(ws.db()).unwrap();
    conn.query_row(
        "SELECT count(*) FROM articles a JOIN feeds f ON f.id = a.feed_id WHERE f.name = ?1",
        [name],
        |r| r.get(0),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_feed_behind_headers_agent_cookie_and_basic_auth_is_fetched_and_no_secret_shows() {
    let site = TestServer::start().await;
    site.route(
        "/private.xml",
        Route::Guarded {
            require: vec![
                ("x-api-key", API_KEY.into()),
                ("user-agent", AGENT.into()),
                ("cookie", COOKIE.into()),
                ("authorization", basic("alice", PASSWORD)),
            ],
            body: items(),
        },
    );
    let config = format!(
        r#"[defaults]
user_agent = "{AGENT}"
headers = {{ X-Api-Key = {{ env = "FW_TEST_API_KEY" }}, Accept-Language = "en" }}

[[feed]]
name = "Private"
url = "{private}"
cookie = {{ file = "cookie.txt" }}
username = "alice"
password = {{ credential = "news-password" }}

[[feed]]
name = "Anonymous"
url = "{anonymous}"
"#,
        private = site.url("/private.xml"),
        anonymous = site.url("/private.xml?anonymous"),
    );
    let ws = Workspace::new(&config);
    std::fs::write(ws.path("cookie.txt"), format!("{COOKIE}\n")).unwrap();
    std::fs::create_dir(ws.path("credentials")).unwrap();
    std::fs::write(ws.path("credentials/news-password"), PASSWORD).unwrap();
    let env = [("FW_TEST_API_KEY", API_KEY)];

    // At the chattiest log level, so that whatever the HTTP stack logs is seen too.
    let traced = [env[0], ("RUST_LOG", "trace")];
    let run = common::feedwatch(&ws.config(), &["run", "--once"], &traced).await;
    assert_no_secret("run --once", &run);
    assert_eq!(feed_column::<i64>(&ws, "Private", "last_status"), 200);
    assert_eq!(articles_of(&ws, "Private"), 2);
    // The defaults' header and agent alone do not open the door.
    assert_eq!(feed_column::<i64>(&ws, "Anonymous", "last_status"), 401);
    assert_eq!(articles_of(&ws, "Anonymous"), 0);
    let requests = site.requests("/private.xml");
    assert_eq!(requests.len(), 2);
    let anonymous: Vec<_> = requests
        .iter()
        .filter(|h| h.get("authorization").is_none())
        .collect();
    assert_eq!(anonymous.len(), 1);
    assert!(anonymous[0].get("cookie").is_none());
    assert_eq!(anonymous[0]["x-api-key"], API_KEY);
    assert_eq!(anonymous[0]["accept-language"], "en");
    assert_eq!(anonymous[0]["user-agent"], AGENT);

    // `preview` of the feed's address fetches it as the poller does.
    let preview =
        common::feedwatch(&ws.config(), &["preview", &site.url("/private.xml")], &env).await;
    preview.assert_ok().assert_stdout_has("Second");
    assert_no_secret("preview", &preview);

    for args in [&["feeds"][..], &["feeds", "--json"], &["check"]] {
        let out = common::feedwatch(&ws.config(), args, &env).await;
        out.assert_ok();
        assert_no_secret(&args.join(" "), &out);
    }
    let check = common::feedwatch(&ws.config(), &["check"], &env).await;
    check
        .assert_stdout_has(format!("user agent \"{AGENT}\""))
        .assert_stdout_has("headers Accept-Language, X-Api-Key; a cookie; basic auth as alice");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_inline_password_is_refused_and_a_missing_secret_named_without_values() {
    let ws = Workspace::new(&format!(
        r#"[[feed]]
name = "Private"
url = "https://news.example/feed.xml"
username = "alice"
password = "{PASSWORD}"

[[feed]]
name = "Keyed"
url = "https://news.example/other.xml"
headers = {{ Authorization = {{ env = "FW_TEST_UNSET_TOKEN" }} }}
cookie = {{ file = "no-such-cookie" }}
"#
    ));
    let out = ws.run(&["check"]).await;
    assert_ne!(out.code, Some(0));
    assert_no_secret("check", &out);
    out.assert_stderr_has("`password` of feed `Private` is written in the config itself")
        .assert_stderr_has(
            r#"password = { credential = "NAME" }, { file = "PATH" } or { env = "VARIABLE" }"#,
        )
        .assert_stderr_has("FW_TEST_UNSET_TOKEN is not set")
        .assert_stderr_has("no-such-cookie");
}

#[tokio::test(flavor = "multi_thread")]
async fn headers_cookie_and_credentials_do_not_follow_a_redirect_to_another_host() {
    let site = TestServer::start().await;
    // Same server, another origin: `localhost` is not `127.0.0.1` to a browser or to feedwatch.
    let elsewhere = format!("http://localhost:{}/elsewhere.xml", site.addr.port());
    site.route(
        "/start.xml",
        Route::Redirect {
            status: 302,
            to: elsewhere,
        },
    );
    site.page("/elsewhere.xml", "application/rss+xml", items());
    let ws = Workspace::new(&format!(
        r#"[[feed]]
name = "Moving"
url = "{}"
user_agent = "{AGENT}"
headers = {{ X-Api-Key = {{ env = "FW_TEST_API_KEY" }} }}
cookie = {{ env = "FW_TEST_COOKIE" }}
username = "alice"
password = {{ env = "FW_TEST_PASSWORD" }}
"#,
        site.url("/start.xml")
    ));
    let env = [
        ("FW_TEST_API_KEY", API_KEY),
        ("FW_TEST_COOKIE", COOKIE),
        ("FW_TEST_PASSWORD", PASSWORD),
    ];
    let run = common::feedwatch(&ws.config(), &["run", "--once"], &env).await;
    assert_no_secret("run --once", &run);
    assert_eq!(articles_of(&ws, "Moving"), 2);

    let first = &site.requests("/start.xml")[0];
    assert_eq!(first["x-api-key"], API_KEY);
    assert_eq!(first["cookie"], COOKIE);
    assert_eq!(first["authorization"], basic("alice", PASSWORD).as_str());
    let second = &site.requests("/elsewhere.xml")[0];
    for name in ["x-api-key", "cookie", "authorization"] {
        assert!(second.get(name).is_none(), "{name} went to another host");
    }
    // The user agent is no secret: every hop carries it.
    assert_eq!(second["user-agent"], AGENT);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_feeds_own_timeout_replaces_the_default() {
    let site = TestServer::start().await;
    site.route(
        "/slow.xml",
        Route::Slow {
            delay: std::time::Duration::from_secs(4),
            body: items(),
        },
    );
    let ws = Workspace::new(&format!(
        r#"[defaults]
timeout = "30s"

[[feed]]
name = "Slow"
url = "{}"
timeout = "1s"
"#,
        site.url("/slow.xml")
    ));
    ws.run(&["run", "--once"]).await;
    let error: String = feed_column(&ws, "Slow", "last_error");
    assert!(error.contains("timed out after 1 s"), "{error}");
}

/// What a test proxy was asked for: the request line (`GET http://…` or `CONNECT host:port`) or
/// the SOCKS destination, and the `Proxy-Authorization` it got.
#[derive(Debug, Clone, Default)]
struct Proxied {
    target: String,
    authorization: Option<String>,
}

type ProxyLog = std::sync::Arc<std::sync::Mutex<Vec<Proxied>>>;

/// An HTTP request's head, up to the blank line, read a byte at a time so that nothing after
/// it is taken; `None` when the connection ends first.
async fn read_head(stream: &mut (impl tokio::io::AsyncRead + Unpin)) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.unwrap_or(0) == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// A small HTTP proxy on 127.0.0.1 that sends every request, whatever its host, to `upstream`:
/// absolute-form GETs are rewritten to origin-form, CONNECT becomes a tunnel.
async fn http_proxy(upstream: std::net::SocketAddr) -> (std::net::SocketAddr, ProxyLog) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log = ProxyLog::default();
    let seen = std::sync::Arc::clone(&log);
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let seen = std::sync::Arc::clone(&seen);
            tokio::spawn(async move {
                let Some(head) = read_head(&mut client).await else {
                    return;
                };
                let mut lines = head.split("\r\n");
                let request_line = lines.next().unwrap_or("").to_string();
                let headers: Vec<&str> = lines.filter(|l| !l.is_empty()).collect();
                let authorization = headers.iter().find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("proxy-authorization")
                        .then(|| value.trim().to_string())
                });
                seen.lock().unwrap().push(Proxied {
                    target: request_line.clone(),
                    authorization,
                });
                let mut server = tokio::net::TcpStream::connect(upstream).await.unwrap();
                if request_line.starts_with("CONNECT ") {
                    client
                        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                        .await
                        .unwrap();
                    tokio::io::copy_bidirectional(&mut client, &mut server)
                        .await
                        .ok();
                    return;
                }
                let mut parts = request_line.split(' ');
                let (method, uri) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                let path = url::Url::parse(uri).map_or("/".to_string(), |u| {
                    format!(
                        "{}{}",
                        u.path(),
                        u.query().map(|q| format!("?{q}")).unwrap_or_default()
                    )
                });
                let mut forwarded = format!("{method} {path} HTTP/1.1\r\n");
                for line in headers {
                    let name = line.split(':').next().unwrap_or("").to_ascii_lowercase();
                    if name != "proxy-authorization" && name != "connection" {
                        forwarded.push_str(line);
                        forwarded.push_str("\r\n");
                    }
                }
                // One request per connection: the answer ends where the server closes.
                forwarded.push_str("connection: close\r\n\r\n");
                server.write_all(forwarded.as_bytes()).await.unwrap();
                let mut answer = Vec::new();
                server.read_to_end(&mut answer).await.ok();
                client.write_all(&answer).await.ok();
                client.shutdown().await.ok();
            });
        }
    });
    (addr, log)
}

/// A SOCKS5 proxy (no authentication) on 127.0.0.1 that connects every CONNECT to `upstream`
/// and records the destination as the client gave it: a name for `socks5h`, an address else.
async fn socks5_proxy(upstream: std::net::SocketAddr) -> (std::net::SocketAddr, ProxyLog) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log = ProxyLog::default();
    let seen = std::sync::Arc::clone(&log);
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let seen = std::sync::Arc::clone(&seen);
            tokio::spawn(async move {
                let mut greeting = [0u8; 2];
                client.read_exact(&mut greeting).await.unwrap();
                let mut methods = vec![0u8; greeting[1] as usize];
                client.read_exact(&mut methods).await.unwrap();
                assert!(methods.contains(&0), "the client offers no authentication");
                client.write_all(&[5, 0]).await.unwrap();
                let mut request = [0u8; 4];
                client.read_exact(&mut request).await.unwrap();
                assert_eq!(request[..2], [5, 1], "a SOCKS5 CONNECT");
                let host = match request[3] {
                    1 => {
                        let mut ip = [0u8; 4];
                        client.read_exact(&mut ip).await.unwrap();
                        std::net::Ipv4Addr::from(ip).to_string()
                    }
                    3 => {
                        let mut len = [0u8; 1];
                        client.read_exact(&mut len).await.unwrap();
                        let mut name = vec![0u8; len[0] as usize];
                        client.read_exact(&mut name).await.unwrap();
                        String::from_utf8_lossy(&name).into_owned()
                    }
                    _ => {
                        let mut ip = [0u8; 16];
                        client.read_exact(&mut ip).await.unwrap();
                        std::net::Ipv6Addr::from(ip).to_string()
                    }
                };
                let mut port = [0u8; 2];
                client.read_exact(&mut port).await.unwrap();
                seen.lock().unwrap().push(Proxied {
                    target: format!("{host}:{}", u16::from_be_bytes(port)),
                    authorization: None,
                });
                let mut server = tokio::net::TcpStream::connect(upstream).await.unwrap();
                client
                    .write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0])
                    .await
                    .unwrap();
                tokio::io::copy_bidirectional(&mut client, &mut server)
                    .await
                    .ok();
            });
        }
    });
    (addr, log)
}

fn targets(log: &ProxyLog) -> Vec<String> {
    log.lock()
        .unwrap()
        .iter()
        .map(|p| p.target.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_feed_goes_through_its_own_proxy_whose_credentials_never_show() {
    let site = TestServer::start().await;
    site.page("/news.xml", "application/rss+xml", items());
    let (proxy, log) = http_proxy(site.addr).await;
    let proxy_secret = "pr0xy-s3cret-4d4d";
    let proxy_url = format!("http://fwuser:{proxy_secret}@{proxy}");
    // A name that resolves nowhere: only the proxy can reach it.
    let ws = Workspace::new(&format!(
        r#"[[feed]]
name = "Proxied"
url = "http://feeds.invalid/news.xml"
proxy = {{ env = "FW_TEST_PROXY" }}

[[feed]]
name = "Direct"
url = "{}"
proxy = "none"
"#,
        site.url("/news.xml?direct")
    ));
    // The environment's proxy is a dead port: `proxy = "none"` must not use it.
    let env = [
        ("FW_TEST_PROXY", proxy_url.as_str()),
        ("ALL_PROXY", "http://127.0.0.1:9"),
    ];
    let run = common::feedwatch(&ws.config(), &["run", "--once"], &env).await;
    assert_eq!(articles_of(&ws, "Proxied"), 2, "{}", run.stderr);
    assert_eq!(articles_of(&ws, "Direct"), 2, "{}", run.stderr);
    assert_eq!(
        targets(&log),
        ["GET http://feeds.invalid/news.xml HTTP/1.1"]
    );
    let expected = basic("fwuser", proxy_secret);
    assert_eq!(
        log.lock().unwrap()[0].authorization.as_deref(),
        Some(expected.as_str())
    );
    // The proxy's credentials are not the site's business.
    assert!(
        site.requests("/news.xml")
            .iter()
            .all(|h| h.get("proxy-authorization").is_none())
    );

    let check = common::feedwatch(&ws.config(), &["check"], &env).await;
    check
        .assert_ok()
        .assert_stdout_has(format!("proxy http://{proxy}"));
    let unreachable = format!("http://fwuser:{proxy_secret}@127.0.0.1:9");
    let failing = common::feedwatch(
        &ws.config(),
        &["run", "--once"],
        &[("FW_TEST_PROXY", unreachable.as_str())],
    )
    .await;
    for out in [
        &run,
        &check,
        &failing,
        &common::feedwatch(&ws.config(), &["feeds", "--json"], &env).await,
    ] {
        assert!(
            !out.stdout.contains(proxy_secret) && !out.stderr.contains(proxy_secret),
            "the proxy's password shows:\n{}\n{}",
            out.stdout,
            out.stderr
        );
    }
    let error: String = feed_column(&ws, "Proxied", "last_error");
    assert!(!error.contains(proxy_secret), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn socks5h_from_all_proxy_resolves_names_on_the_proxy_and_a_feeds_proxy_wins() {
    let site = TestServer::start().await;
    site.page("/news.xml", "application/rss+xml", items());
    let (socks, socks_log) = socks5_proxy(site.addr).await;
    let (http, http_log) = http_proxy(site.addr).await;
    let ws = Workspace::new(&format!(
        r#"[[feed]]
name = "Environment"
url = "http://feeds.invalid/news.xml"

[[feed]]
name = "Own"
url = "http://other.invalid:8080/news.xml"
proxy = "http://{http}"

[[feed]]
name = "Own socks"
url = "http://third.invalid/news.xml"
proxy = "socks5h://{socks}"
"#
    ));
    let all_proxy = format!("socks5h://{socks}");
    let run = common::feedwatch(
        &ws.config(),
        &["run", "--once"],
        &[("ALL_PROXY", all_proxy.as_str())],
    )
    .await;
    for feed in ["Environment", "Own", "Own socks"] {
        assert_eq!(articles_of(&ws, feed), 2, "{feed}: {}", run.stderr);
    }
    let mut through_socks = targets(&socks_log);
    through_socks.sort();
    assert_eq!(through_socks, ["feeds.invalid:80", "third.invalid:80"]);
    assert_eq!(
        targets(&http_log),
        ["GET http://other.invalid:8080/news.xml HTTP/1.1"]
    );
}

/// An HTTPS server on 127.0.0.1 whose certificate nobody signed (`tests/data/tls`, made with
/// `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 36500
/// -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1`). It answers every
/// request with `body`, one request per connection, and counts the requests that got past the
/// handshake.
async fn self_signed_server(
    body: Vec<u8>,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::AsyncWriteExt;
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tls");
    let certs: Vec<CertificateDer> = CertificateDer::pem_file_iter(dir.join("self-signed.pem"))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(dir.join("self-signed.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&served);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, count, body) = (acceptor.clone(), Arc::clone(&count), body.clone());
            tokio::spawn(async move {
                // A client that refuses the certificate ends here.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                if read_head(&mut tls).await.is_none() {
                    return;
                }
                count.fetch_add(1, Ordering::SeqCst);
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/rss+xml\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                tls.write_all(answer.as_bytes()).await.ok();
                tls.write_all(&body).await.ok();
                tls.shutdown().await.ok();
            });
        }
    });
    (addr, served)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_self_signed_certificate_is_refused_unless_the_feed_accepts_invalid_certs_with_warnings()
{
    let (addr, served) = self_signed_server(items()).await;
    let ws = Workspace::new(&format!(
        r#"[[feed]]
name = "Checked"
url = "https://{addr}/checked.xml"

[[feed]]
name = "Unchecked"
url = "https://{addr}/unchecked.xml"
accept_invalid_certs = true
"#
    ));
    let run = ws.run(&["run", "--once"]).await;
    assert_eq!(articles_of(&ws, "Unchecked"), 2, "{}", run.stderr);
    assert_eq!(articles_of(&ws, "Checked"), 0);
    let error: String = feed_column(&ws, "Checked", "last_error");
    assert!(error.to_lowercase().contains("certificate"), "{error}");
    assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 1);

    let warning = "accept_invalid_certs = true: its TLS certificate is not checked";
    let check = ws.run(&["check"]).await;
    check.assert_ok();
    assert_eq!(check.stdout.matches(warning).count(), 1, "{}", check.stdout);
    let unchecked_at = check.stdout.find("Unchecked").unwrap();
    assert!(
        check.stdout.find(warning).unwrap() > unchecked_at,
        "{}",
        check.stdout
    );
    let feeds = ws.run(&["feeds"]).await;
    assert_eq!(feeds.stdout.matches(warning).count(), 1, "{}", feeds.stdout);
    let json: Vec<serde_json::Value> =
        serde_json::from_str(&ws.run(&["feeds", "--json"]).await.stdout).unwrap();
    for feed in json {
        let warned = feed["flags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f.as_str().unwrap().contains(warning));
        assert_eq!(warned, feed["name"] == "Unchecked", "{feed}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn https_proxy_from_the_environment_tunnels_https_feeds() {
    let (server, served) = self_signed_server(items()).await;
    let (proxy, log) = http_proxy(server).await;
    let ws = Workspace::new(
        r#"[[feed]]
name = "Tunnelled"
url = "https://feeds.invalid/news.xml"
accept_invalid_certs = true
"#,
    );
    let https_proxy = format!("http://{proxy}");
    let run = common::feedwatch(
        &ws.config(),
        &["run", "--once"],
        &[("HTTPS_PROXY", &https_proxy)],
    )
    .await;
    assert_eq!(articles_of(&ws, "Tunnelled"), 2, "{}", run.stderr);
    assert_eq!(targets(&log), ["CONNECT feeds.invalid:443 HTTP/1.1"]);
    assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 1);
}

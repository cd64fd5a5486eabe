//! `feed add` on web pages served locally: feed links in minified HTML, feeds at well-known
//! addresses of a site that links none, and pages that are no help (not HTML, too large,
//! redirecting forever), each under the caps feeds get.

mod common;

use common::{Route, TestServer, Workspace, rss};

fn news() -> String {
    rss(
        "Site news",
        &[("s1", "First", "one"), ("s2", "Second", "two")],
    )
}

/// The feed URLs `config.toml` holds.
fn configured(ws: &Workspace) -> Vec<String> {
    let text = std::fs::read_to_string(ws.config()).unwrap_or_default();
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("url = \""))
        .map(|rest| rest.trim_end_matches('"').to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn feed_add_reads_feed_links_from_minified_html() {
    let site = TestServer::start().await;
    let feed = site.url("/feeds/news.xml");
    site.page("/feeds/news.xml", "application/rss+xml", news());
    // What an HTML minifier leaves: no quotes, no spaces it can drop, and a link written in a
    // script that is no link at all.
    site.page(
        "/",
        "text/html; charset=utf-8",
        format!(
            "<!doctype html><html lang=en><head><meta charset=utf-8><title>Site</title>\
             <script>document.write('<link rel=alternate type=application/rss+xml \
             href=/scripted.xml>')</script><link rel=alternate \
             type=application/rss+xml href={feed} title=News><link rel=icon href=/i.png>\
             </head><body><p>Hello</body></html>"
        ),
    );
    let ws = Workspace::new("");
    let out = ws.run(&["feed", "add", &site.url("/")]).await;
    out.assert_ok()
        .assert_stdout_has(format!("its feed is {feed}"));
    assert_eq!(configured(&ws), [feed]);
}

#[tokio::test(flavor = "multi_thread")]
async fn feed_add_finds_a_feed_at_a_well_known_address_when_the_page_links_none() {
    let site = TestServer::start().await;
    site.page(
        "/blog/",
        "text/html",
        "<!doctype html><title>Blog</title><p>No feed links here.",
    );
    // The first candidates fail as feeds do: a redirect loop, a body past the cap, an HTML page.
    site.route(
        "/blog/feed",
        Route::Redirect {
            status: 302,
            to: "/blog/feed/".into(),
        },
    );
    site.route(
        "/blog/feed/",
        Route::Redirect {
            status: 302,
            to: "/blog/feed".into(),
        },
    );
    site.page(
        "/blog/rss.xml",
        "application/rss+xml",
        vec![b' '; 11 * 1024 * 1024],
    );
    site.page("/blog/atom.xml", "text/html", "<!doctype html><p>Not found");
    site.page("/blog/index.xml", "application/rss+xml", news());
    site.page("/blog/feed.xml", "application/rss+xml", news());
    let ws = Workspace::new("");
    let out = ws.run(&["feed", "add", &site.url("/blog/")]).await;
    out.assert_ok();
    assert_eq!(configured(&ws), [site.url("/blog/index.xml")]);
    // The search stops at the first feed.
    assert!(site.requests("/blog/feed.xml").is_empty());
    assert!(site.requests("/feed").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_that_are_no_help_fail_under_the_usual_caps_without_guessing() {
    let site = TestServer::start().await;
    site.page("/feed", "application/rss+xml", news());
    site.page(
        "/image",
        "image/png",
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec(),
    );
    let mut huge = b"<!doctype html><html><body>".to_vec();
    huge.resize(11 * 1024 * 1024, b'x');
    site.page("/huge.html", "text/html", huge);
    site.route(
        "/loop",
        Route::Redirect {
            status: 302,
            to: "/loop2".into(),
        },
    );
    site.route(
        "/loop2",
        Route::Redirect {
            status: 302,
            to: "/loop".into(),
        },
    );
    let ws = Workspace::new("");
    for (path, says) in [
        ("/image", "cannot parse feed"),
        ("/huge.html", "larger than the limit"),
        ("/loop", "redirect loop"),
    ] {
        let out = ws.run(&["feed", "add", &site.url(path)]).await;
        assert_ne!(out.code, Some(0), "{path}: {}", out.stdout);
        out.assert_stderr_has(says);
    }
    // None of them was taken for a page worth searching: the site's /feed was never asked for.
    assert!(site.requests("/feed").is_empty());
    assert!(configured(&ws).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_well_known_address_that_never_answers_is_given_up_on() {
    let site = TestServer::start().await;
    site.page("/", "text/html", "<!doctype html><title>Site</title>");
    // Far longer than any fetch may take: only the candidate's own timeout ends it.
    site.route(
        "/feed",
        Route::Slow {
            delay: std::time::Duration::from_secs(600),
            body: news().into_bytes(),
        },
    );
    site.page("/rss.xml", "application/rss+xml", news());
    let ws = Workspace::new("");
    // The harness gives a command 60 s; the candidate gets 10 s of them.
    let out = ws.run(&["feed", "add", &site.url("/")]).await;
    out.assert_ok();
    assert_eq!(configured(&ws), [site.url("/rss.xml")]);
    assert_eq!(site.requests("/feed").len(), 1);
}

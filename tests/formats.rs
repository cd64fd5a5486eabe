//! Every webhook format, end to end, with a hostile title: each body is valid for its service
//! and shows the title as harmless literal text.

mod common;

use common::{ConfigBuilder, TestServer, Workspace, sleep_past};

/// Quotes, angle brackets, Markdown, a fake link and mass mentions. (Tags such as `<script>`
/// are removed by the parser before any notifier sees them; the formats' unit tests cover them.)
const HOSTILE: &str =
    "Ukraine: \"quoted\" 1 < 2 > 0 # *bold* _x_ [y](http://evil) @everyone @channel & done";

const FORMATS: &[&str] = &[
    "json",
    "slack",
    "discord",
    "mattermost",
    "teams",
    "gotify",
    "telegram",
    "matrix",
    "ntfy",
    "template",
];

/// The template of the `template` notifier: one alert, or a digest of several.
const TEMPLATE: &str = "'{% if type == \"digest\" %}{\"count\": {{ count }}, \"first\": {{ alerts[0].article.title }}, \"id\": {{ delivery_id }}}{% else %}{\"msg\": {{ article.title }}, \"by\": {{ rule }}, \"id\": {{ delivery_id }}}{% endif %}'";

/// The request the notifier of format `f` sent (each notifier marks its requests with it).
fn request_for<'a>(received: &'a [common::Received], f: &str) -> &'a common::Received {
    received
        .iter()
        .find(|r| r.headers["x-format"] == f)
        .unwrap_or_else(|| panic!("no {f} request"))
}

fn config(server: &TestServer) -> String {
    config_with(server, 1, "")
}

/// A feed of `items` hostile stories, one rule, and a notifier of each format with `extra`.
fn config_with(server: &TestServer, items: usize, extra: &str) -> String {
    let xml_title = HOSTILE
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let items: String = (1..=items)
        .map(|i| {
            format!(
                "<item><guid>h{i}</guid><title>{xml_title}</title>\
                 <link>https://news.example/a?x={i}&amp;y=(2)</link>\
                 <description>Kyiv</description></item>"
            )
        })
        .collect();
    let feed = format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>W</title>{items}</channel></rss>"
    );
    server.feed("hostile.xml", "application/rss+xml", feed);
    let mut config = ConfigBuilder::new()
        .named_feed("W", &server.url("/feeds/hostile.xml"))
        .rule("ukraine", "Ukraine", FORMATS)
        // The items are copies of one story; here each is to alert.
        .with("per_story = false");
    for format in FORMATS {
        let url = match *format {
            "matrix" => server.url("/hook/_matrix/client/v3/rooms/!r:x/send/m.room.message"),
            _ => server.url("/hook"),
        };
        config = config.webhook(format, &url).with(&format!(
            "format = \"{format}\"\nheaders = {{ X-Format = \"{format}\" }}\n{extra}"
        ));
        match *format {
            "telegram" => config = config.with("chat_id = \"-100123\""),
            "template" => config = config.with(&format!("template = {TEMPLATE}")),
            _ => {}
        }
    }
    config.build()
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_titles_are_escaped_in_every_format() {
    let server = TestServer::start().await;
    let ws = Workspace::new(&config(&server));
    ws.run(&["run", "--once"]).await.assert_ok();
    let received = server.received();
    assert_eq!(received.len(), FORMATS.len());
    let by_format = |f: &str| request_for(&received, f);
    let json_of = |f: &str| -> serde_json::Value {
        let r = by_format(f);
        assert_eq!(r.headers["content-type"], "application/json", "{f}");
        serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{f} body is not JSON: {e}"))
    };

    // feedwatch's own payload and the template carry the title exactly.
    let payload = json_of("json");
    assert_eq!(payload["article"]["title"], HOSTILE);
    // The snippet marks the matched word by its place in characters.
    let snippet = &payload["snippet"];
    assert_eq!(snippet["field"], "title");
    assert_eq!(snippet["text"], HOSTILE);
    assert_eq!(snippet["highlights"], serde_json::json!([[0, 7]]));
    let templated = json_of("template");
    assert_eq!(templated["msg"], HOSTILE);
    assert_eq!(templated["by"], "ukraine");
    assert_eq!(
        templated["id"],
        by_format("template").headers["x-feedwatch-delivery"]
            .to_str()
            .unwrap()
    );

    let slack = json_of("slack")["text"].as_str().unwrap().to_string();
    assert!(slack.contains("1 &lt; 2 &gt; 0 # *bold*"), "{slack}");
    assert!(!slack.contains("1 < 2"), "{slack}");
    assert!(
        slack.contains("<https://news.example/a?x=1&amp;y=%282%29|"),
        "{slack}"
    );

    let discord = json_of("discord");
    let content = discord["content"].as_str().unwrap();
    assert!(
        content.contains("\\*bold\\*") && content.contains("\\@everyone"),
        "{content}"
    );
    assert!(
        !content.contains('\n') || !content.contains("\n#"),
        "{content}"
    );
    assert_eq!(discord["allowed_mentions"]["parse"], serde_json::json!([]));

    let mattermost = json_of("mattermost")["text"].as_str().unwrap().to_string();
    assert!(mattermost.contains("\\*bold\\*"), "{mattermost}");
    assert!(!mattermost.contains("@channel"), "{mattermost}");
    assert!(!mattermost.contains("](http://evil)"), "{mattermost}");

    let teams = json_of("teams");
    let card = &teams["attachments"][0]["content"];
    let title = card["body"][1]["text"].as_str().unwrap();
    assert!(
        title.contains("\\*bold\\*") && title.contains("\\[y\\]"),
        "{title}"
    );
    assert_eq!(
        card["actions"][0]["url"],
        "https://news.example/a?x=1&y=%282%29"
    );

    let gotify = json_of("gotify");
    assert_eq!(gotify["title"], format!("ukraine: {HOSTILE}"));
    assert_eq!(
        gotify["extras"]["client::display"]["contentType"],
        "text/plain"
    );

    let telegram = json_of("telegram");
    assert_eq!(telegram["chat_id"], "-100123");
    assert_eq!(telegram["parse_mode"], "HTML");
    let text = telegram["text"].as_str().unwrap();
    assert!(
        text.contains("1 &lt; 2 &gt; 0") && !text.contains("1 < 2"),
        "{text}"
    );
    assert!(text.contains("&quot;quoted&quot;"), "{text}");
    // The snippet, marked in HTML, escaped the same way.
    assert!(
        text.contains("\n<i><b>Ukraine</b>: &quot;quoted&quot; 1 &lt; 2"),
        "{text}"
    );

    let matrix_request = by_format("matrix");
    assert_eq!(matrix_request.method, "PUT");
    let delivery = matrix_request.headers["x-feedwatch-delivery"]
        .to_str()
        .unwrap();
    assert!(
        matrix_request
            .uri
            .ends_with(&format!("/send/m.room.message/{delivery}")),
        "{}",
        matrix_request.uri
    );
    let matrix = json_of("matrix");
    assert_eq!(matrix["msgtype"], "m.notice");
    let html = matrix["formatted_body"].as_str().unwrap();
    assert!(
        html.contains("1 &lt; 2 &gt; 0") && !html.contains("1 < 2"),
        "{html}"
    );

    let ntfy = by_format("ntfy");
    assert!(
        ntfy.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let ntfy_title = ntfy.headers["title"].to_str().unwrap();
    assert!(!ntfy_title.contains('\n'), "{ntfy_title}");
}

#[tokio::test(flavor = "multi_thread")]
async fn broken_template_and_missing_chat_id_are_config_errors() {
    let ws = Workspace::new(
        "[[notifier]]\nname = \"t\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\n\
         format = \"template\"\ntemplate = '{{ article.title '\n\n\
         [[notifier]]\nname = \"tg\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\n\
         format = \"telegram\"\nmethod = \"DELETE\"\n",
    );
    let out = ws.run(&["check"]).await;
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    out.assert_stderr_has("template of `t`");
    assert!(
        out.stderr
            .contains("method of `tg` must be POST, PUT or PATCH"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("Telegram notifier `tg` needs a `chat_id`"),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn digests_are_one_valid_harmless_message_in_every_format() {
    let server = TestServer::start().await;
    // A window long enough that the first run ends inside it even on a loaded machine.
    let ws = Workspace::new(&config_with(&server, 2, "digest = \"3s\""));
    ws.run(&["run", "--once"]).await.assert_ok();
    assert!(server.received().is_empty());
    let window_end = ws.query_i64("SELECT MAX(next_attempt_at) FROM outbox");
    sleep_past(window_end).await;
    ws.run(&["run", "--once"]).await.assert_ok();
    let received = server.received();
    assert_eq!(received.len(), FORMATS.len(), "one message per notifier");
    for r in &received {
        assert_eq!(r.headers["x-feedwatch-event"], "digest");
    }
    let by_format = |f: &str| request_for(&received, f);
    let json_of = |f: &str| -> serde_json::Value {
        serde_json::from_str(&by_format(f).body)
            .unwrap_or_else(|e| panic!("{f} digest is not JSON: {e}"))
    };
    let text_of = |f: &str, key: &str| json_of(f)[key].as_str().unwrap().to_string();

    let payload = json_of("json");
    assert_eq!(payload["version"], 2);
    assert_eq!(payload["type"], "digest");
    assert_eq!(payload["count"], 2);
    let alerts = payload["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 2);
    assert_eq!(alerts[0]["article"]["title"], HOSTILE);
    assert_eq!(
        alerts[1]["article"]["link"],
        "https://news.example/a?x=2&y=(2)"
    );
    assert_ne!(alerts[0]["delivery_id"], alerts[1]["delivery_id"]);
    assert_eq!(
        payload["delivery_id"],
        by_format("json").headers["x-feedwatch-delivery"]
            .to_str()
            .unwrap()
    );

    let templated = json_of("template");
    assert_eq!(templated["count"], 2);
    assert_eq!(templated["first"], HOSTILE);
    assert!(templated["id"].as_str().unwrap().starts_with("digest-"));

    let slack = text_of("slack", "text");
    assert!(
        slack.starts_with(
            "*feedwatch: 2 new matches*\n• *ukraine*: <https://news.example/a?x=1&amp;y=%282%29|"
        ),
        "{slack}"
    );
    assert_eq!(slack.matches("1 &lt; 2 &gt; 0").count(), 2, "{slack}");
    assert!(!slack.contains("1 < 2"), "{slack}");

    let discord = json_of("discord");
    let content = discord["content"].as_str().unwrap();
    assert_eq!(content.lines().count(), 3, "{content}");
    assert!(
        content.contains("\\*bold\\*") && !content.contains(" @everyone"),
        "{content}"
    );
    assert_eq!(discord["allowed_mentions"]["parse"], serde_json::json!([]));

    let mattermost = text_of("mattermost", "text");
    assert!(
        !mattermost.contains("@channel") && mattermost.contains("\\*bold\\*"),
        "{mattermost}"
    );
    assert!(!mattermost.contains("](http://evil)"), "{mattermost}");

    let teams = json_of("teams");
    let list = teams["attachments"][0]["content"]["body"][1]["text"]
        .as_str()
        .unwrap();
    assert_eq!(list.lines().count(), 2, "{list}");
    assert!(
        list.contains("\\*bold\\*") && list.contains("\\[y\\]"),
        "{list}"
    );

    let gotify = json_of("gotify");
    assert_eq!(gotify["title"], "feedwatch: 2 new matches");
    assert!(gotify["message"].as_str().unwrap().contains(HOSTILE));

    let telegram = text_of("telegram", "text");
    assert!(
        telegram.starts_with("<b>feedwatch: 2 new matches</b>\n• <b>ukraine</b>: <a href="),
        "{telegram}"
    );
    assert!(!telegram.contains("1 < 2"), "{telegram}");

    let matrix_request = by_format("matrix");
    let digest_id = matrix_request.headers["x-feedwatch-delivery"]
        .to_str()
        .unwrap();
    assert!(
        matrix_request.uri.ends_with(&format!("/{digest_id}")),
        "{}",
        matrix_request.uri
    );
    let html = text_of("matrix", "formatted_body");
    assert_eq!(html.matches("<li>").count(), 2, "{html}");
    assert!(
        html.contains("1 &lt; 2 &gt; 0") && !html.contains("1 < 2"),
        "{html}"
    );

    let ntfy = by_format("ntfy");
    assert_eq!(ntfy.headers["title"], "feedwatch: 2 new matches");
    assert_eq!(ntfy.body.lines().count(), 2, "{}", ntfy.body);
}

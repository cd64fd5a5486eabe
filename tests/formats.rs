//! Every webhook format, end to end, with a hostile title: each body is valid for its service
//! and shows the title as harmless literal text.

mod common;

use common::{TestServer, Workspace};

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

fn config(server: &TestServer) -> String {
    let xml_title = HOSTILE
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let feed = format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>W</title>\
         <item><guid>h1</guid><title>{xml_title}</title>\
         <link>https://news.example/a?x=1&amp;y=(2)</link>\
         <description>Kyiv</description></item></channel></rss>"
    );
    server.feed("hostile.xml", "application/rss+xml", feed);
    let names: Vec<String> = FORMATS.iter().map(|f| format!("\"{f}\"")).collect();
    let mut text = format!(
        "[[feed]]\nname = \"W\"\nurl = \"{}\"\n\n\
         [[rule]]\nname = \"ukraine\"\nquery = 'Ukraine'\nnotify = [{}]\n\n",
        server.url("/feeds/hostile.xml"),
        names.join(", ")
    );
    for format in FORMATS {
        let url = match *format {
            "matrix" => server.url("/hook/_matrix/client/v3/rooms/!r:x/send/m.room.message"),
            _ => server.url("/hook"),
        };
        text.push_str(&format!(
            "[[notifier]]\nname = \"{format}\"\nkind = \"webhook\"\nurl = \"{url}\"\n\
             format = \"{format}\"\nheaders = {{ X-Format = \"{format}\" }}\n"
        ));
        match *format {
            "telegram" => text.push_str("chat_id = \"-100123\"\n"),
            "template" => text.push_str(
                "template = '{\"msg\": {{ article.title }}, \"by\": {{ rule }}, \"id\": {{ delivery_id }}}'\n",
            ),
            _ => {}
        }
        text.push('\n');
    }
    text
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_titles_are_escaped_in_every_format() {
    let server = TestServer::start().await;
    let ws = Workspace::new(&config(&server));
    ws.run(&["run", "--once"]).await.assert_ok();
    let received = server.received();
    assert_eq!(received.len(), FORMATS.len());
    let by_format = |f: &str| {
        received
            .iter()
            .find(|r| r.headers["x-format"] == f)
            .unwrap_or_else(|| panic!("no {f} request"))
    };
    let json_of = |f: &str| -> serde_json::Value {
        let r = by_format(f);
        assert_eq!(r.headers["content-type"], "application/json", "{f}");
        serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{f} body is not JSON: {e}"))
    };

    // feedwatch's own payload and the template carry the title exactly.
    assert_eq!(json_of("json")["article"]["title"], HOSTILE);
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
    assert!(out.stderr.contains("template of `t`"), "{}", out.stderr);
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

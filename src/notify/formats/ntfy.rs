//! ntfy (ntfy.sh or self-hosted): a plain-text body; title, tags and click link in headers.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::{Rendered, list_message, plain_line, plain_message, url_safe};
use crate::alert::Alert;
use crate::notify::digest::Digest;

/// ntfy takes a plain-text body; title and click link travel in headers.
pub(super) fn alert(alert: &Alert) -> Rendered {
    let mut headers = vec![
        (
            "Title".to_string(),
            encode_header_word(&format!("{}: {}", alert.rule, alert.title())),
        ),
        ("Tags".to_string(), "newspaper".to_string()),
    ];
    if let Some(link) = &alert.article.link {
        headers.push(("Click".to_string(), encode_header_word(&url_safe(link))));
    }
    Rendered {
        content_type: "text/plain; charset=utf-8".into(),
        body: plain_message(alert),
        headers,
    }
}

pub(super) fn digest(heading: &str, digest: &Digest) -> Rendered {
    Rendered {
        content_type: "text/plain; charset=utf-8".into(),
        body: list_message("", digest, usize::MAX, plain_line)
            .trim_start()
            .to_string(),
        headers: vec![
            ("Title".to_string(), encode_header_word(heading)),
            ("Tags".to_string(), "newspaper".to_string()),
        ],
    }
}

/// HTTP header values are ASCII; anything else goes as an RFC 2047 encoded word, which ntfy reads.
fn encode_header_word(text: &str) -> String {
    let text: String = text.chars().filter(|c| !c.is_control()).collect();
    if text.is_ascii() {
        return text;
    }
    format!("=?UTF-8?B?{}?=", STANDARD.encode(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_ascii_header_is_encoded() {
        assert_eq!(encode_header_word("plain"), "plain");
        assert!(encode_header_word("Кремль").starts_with("=?UTF-8?B?"));
    }

    #[test]
    fn encoded_words_carry_padded_standard_base64() {
        for (input, expected) in [
            ("é", "=?UTF-8?B?w6k=?="),
            ("éa", "=?UTF-8?B?w6lh?="),
            ("éé", "=?UTF-8?B?w6nDqQ==?="),
            ("Кремль", "=?UTF-8?B?0JrRgNC10LzQu9GM?="),
        ] {
            assert_eq!(encode_header_word(input), expected);
        }
    }
}

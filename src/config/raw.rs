//! The config file as serde reads it: every key optional where the file may leave it out, with
//! spans kept for messages. Unknown keys are errors, so a typo is caught.

use serde::Deserialize;
use toml::Spanned;

use super::secret::RawSecret;
use super::{Urgency, WebhookFormat};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) database: Option<Spanned<String>>,
    pub(super) retention: Option<Spanned<String>>,
    /// How far back a new article looks for the story it is part of.
    pub(super) story_window: Option<Spanned<String>>,
    /// Similarity (0..1) from which two articles are one story.
    pub(super) story_threshold: Option<Spanned<f64>>,
    pub(super) max_fetches: Option<Spanned<i64>>,
    #[serde(default)]
    pub(super) defaults: RawDefaults,
    #[serde(default, rename = "feed")]
    pub(super) feeds: Vec<RawFeed>,
    #[serde(default, rename = "rule")]
    pub(super) rules: Vec<RawRule>,
    #[serde(default, rename = "notifier")]
    pub(super) notifiers: Vec<RawNotifier>,
    pub(super) http: Option<Spanned<RawHttp>>,
}

/// `[http]`: the optional listener for metrics, health, Atom feeds and the status page.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttp {
    pub(super) listen: Spanned<String>,
    pub(super) token: Option<Spanned<RawSecret>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDefaults {
    pub(super) interval: Option<Spanned<String>>,
    pub(super) cron: Option<Spanned<String>>,
    pub(super) timezone: Option<Spanned<String>>,
    pub(super) max_body: Option<Spanned<String>>,
    pub(super) timeout: Option<Spanned<String>>,
    pub(super) adaptive: Option<bool>,
    pub(super) full_text: Option<Spanned<RawFullText>>,
    /// HTTP options (see `feed_http`); a feed's own replace these, headers name by name.
    pub(super) headers: Option<Spanned<RawHeaders>>,
    pub(super) user_agent: Option<Spanned<String>>,
    pub(super) cookie: Option<Spanned<RawSecret>>,
    pub(super) username: Option<Spanned<String>>,
    pub(super) password: Option<Spanned<RawSecret>>,
    pub(super) proxy: Option<Spanned<RawSecret>>,
    pub(super) accept_invalid_certs: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFeed {
    pub(super) url: Spanned<String>,
    pub(super) name: Option<Spanned<String>>,
    pub(super) interval: Option<Spanned<String>>,
    pub(super) cron: Option<Spanned<String>>,
    pub(super) timezone: Option<Spanned<String>>,
    pub(super) max_body: Option<Spanned<String>>,
    pub(super) timeout: Option<Spanned<String>>,
    pub(super) adaptive: Option<bool>,
    pub(super) full_text: Option<Spanned<RawFullText>>,
    #[serde(default)]
    pub(super) tags: Vec<String>,
    pub(super) headers: Option<Spanned<RawHeaders>>,
    pub(super) user_agent: Option<Spanned<String>>,
    pub(super) cookie: Option<Spanned<RawSecret>>,
    pub(super) username: Option<Spanned<String>>,
    pub(super) password: Option<Spanned<RawSecret>>,
    pub(super) proxy: Option<Spanned<RawSecret>>,
    pub(super) accept_invalid_certs: Option<bool>,
}

/// `full_text = true | false | "auto"`.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum RawFullText {
    Flag(bool),
    Word(String),
}

/// Request headers by name, each value a secret or not.
pub(super) type RawHeaders = std::collections::BTreeMap<String, Spanned<RawSecret>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    pub(super) name: Spanned<String>,
    pub(super) query: Spanned<String>,
    #[serde(default)]
    pub(super) notify: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) feeds: Vec<Spanned<String>>,
    /// `"ignore"` (the default: `cafe` matches `café`) or `"exact"`.
    pub(super) accents: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) urgency: Urgency,
    pub(super) cooldown: Option<Spanned<String>>,
    /// `false`: alert for every article, not once per story.
    pub(super) per_story: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNotifier {
    pub(super) name: Spanned<String>,
    pub(super) kind: Spanned<String>,
    pub(super) url: Option<Spanned<RawSecret>>,
    pub(super) format: Option<Spanned<WebhookFormat>>,
    pub(super) timeout: Option<Spanned<String>>,
    pub(super) secret: Option<Spanned<RawSecret>>,
    pub(super) method: Option<Spanned<String>>,
    pub(super) headers: Option<Spanned<std::collections::BTreeMap<String, Spanned<RawSecret>>>>,
    pub(super) template: Option<Spanned<String>>,
    pub(super) content_type: Option<Spanned<String>>,
    pub(super) chat_id: Option<Spanned<String>>,
    pub(super) retry_delay: Option<Spanned<String>>,
    pub(super) retry_max_delay: Option<Spanned<String>>,
    pub(super) give_up_after: Option<Spanned<String>>,
    pub(super) quiet: Option<Spanned<String>>,
    pub(super) quiet_timezone: Option<Spanned<String>>,
    pub(super) digest: Option<Spanned<String>>,
    pub(super) rate_limit: Option<Spanned<String>>,
    pub(super) open_with: Option<Spanned<String>>,
    pub(super) smtp: Option<Spanned<String>>,
    pub(super) tls: Option<Spanned<String>>,
    pub(super) tls_ca_file: Option<Spanned<String>>,
    pub(super) username: Option<Spanned<String>>,
    pub(super) password: Option<Spanned<RawSecret>>,
    pub(super) sendmail: Option<Spanned<String>>,
    pub(super) from: Option<Spanned<String>>,
    pub(super) to: Option<Spanned<OneOrMany>>,
}

/// `to = "a@example.org"` or `to = ["a@example.org", "b@example.org"]`.
#[derive(Deserialize)]
#[serde(
    untagged,
    expecting = "an address or a list of addresses, e.g. \"me@example.org\""
)]
pub(super) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub(super) fn items(&self) -> Vec<&str> {
        match self {
            OneOrMany::One(one) => vec![one.as_str()],
            OneOrMany::Many(many) => many.iter().map(String::as_str).collect(),
        }
    }
}

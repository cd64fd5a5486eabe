//! feedwatch: a news-monitoring daemon.
//!
//! The modules follow the data, one stage each:
//!
//! - [`config`]: `config.toml` -> a validated [`config::Config`], errors with line and column.
//! - [`config::edit`]: adding and removing feeds in `config.toml`, keeping comments and layout.
//! - [`scheduler`]: when each feed is due (interval or cron in a time zone), backoff on failure.
//! - [`fetch`]: HTTP and `file://` -> bytes, with conditional GET and a body cap.
//! - [`parse`]: bytes -> plain [`parse::Article`]s (encodings, repairs, markup to text).
//! - [`dedup`]: an article's stable identity, so it is new exactly once.
//! - [`story`]: whether a new article is the same story as one stored lately (MinHash of the
//!   folded words of title and lead), so a syndicated story alerts once.
//! - [`extract`]: an article's web page -> its main text (`full_text`).
//! - [`fulltext`]: fetching new articles' pages, once each, for their main text before matching.
//! - [`html`]: HTML read as text: start tags, attributes, character entities.
//! - [`discover`]: the feeds an HTML page links to, for "this is a web page" errors.
//! - [`matcher`]: the watch-rule query language and the engine that runs every rule at once.
//! - [`alert`]: the plain [`alert::Alert`] a match becomes.
//! - [`store`]: SQLite — feeds, articles, matches, the alert record and the outbox; beside
//!   it, the full-text search index, a file of its own.
//! - [`notify`]: the outbox worker, the channels (stdout, desktop, webhooks, email) and their
//!   formats.
//! - [`opml`]: OPML subscription lists in and out, folders and categories as feed tags.
//! - [`pipeline`]: what polls and deliveries work with: the config, compiled rules, database
//!   and HTTP clients.
//! - [`poll`]: one feed through fetch, interpret (parse, dedup, match), plan the next poll, and
//!   one write to the store.
//! - [`indexer`]: the thread that keeps the search index up with the store.
//! - [`daemon`]: the run loop that polls feeds when due and delivers the outbox.
//! - [`service`]: one instance per database, systemd notifications, log priorities for the
//!   journal, config file watching.
//! - [`metrics`]: counts kept at the stages' edges (polls, fetch time, stored matches,
//!   deliveries), for `/metrics`.
//! - [`http`]: the optional listener: metrics, health checks, Atom feeds of the matches and a
//!   status page.
//!
//! Only `fetch`, `fulltext`, `store`, `notify`, `poll`, `indexer`, `daemon` and `http` touch
//! the world; the stages between are plain functions over plain types.

#![deny(unsafe_code)]

pub mod alert;
pub mod config;
pub mod daemon;
pub mod dedup;
pub mod discover;
pub mod extract;
pub mod fetch;
pub mod fulltext;
pub mod html;
pub mod http;
pub mod indexer;
pub mod matcher;
pub mod metrics;
pub mod notify;
pub mod opml;
pub mod parse;
pub mod pipeline;
pub mod poll;
pub mod scheduler;
pub mod service;
pub mod store;
pub mod story;

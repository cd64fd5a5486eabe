//! What every poll and delivery works with, built once from a config: the compiled rules, the
//! database, the HTTP clients. A reload builds a new one around the same database and clients.

use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, DEFAULT_FETCH_TIMEOUT};
use crate::fetch::Fetcher;
use crate::fulltext::PageCache;
use crate::matcher::{Engine, RuleSpec};
use crate::store::{Db, FeedId, Store, StoreError};

/// What the pipeline needs, built once from a config.
pub struct Pipeline {
    pub config: Arc<Config>,
    pub(crate) engine: Engine,
    pub(crate) db: Db,
    pub(crate) fetcher: Arc<Fetcher>,
    /// For deliveries (webhooks), apart from the fetcher's per-host limits.
    pub(crate) http: reqwest::Client,
    /// What article pages gave lately (`full_text`), kept across reloads.
    pub(crate) pages: Arc<PageCache>,
}

/// Builds the matching engine for a config's rules.
pub fn engine_for(config: &Config) -> Engine {
    Engine::new(config.rules.iter().map(|r| RuleSpec {
        name: &r.name,
        query: &r.query,
        feeds: &r.feeds,
    }))
}

/// A scoped thread's result; its panic goes on in the caller.
fn joined<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    handle
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

impl Pipeline {
    pub fn open(config: Config) -> Result<Pipeline, StoreError> {
        // Each HTTP client reads the system's certificate store, some milliseconds of CPU
        // apiece at every start: they are built on threads of their own while the database
        // opens and the rules compile.
        let (store, engine, fetcher, http) = std::thread::scope(|scope| {
            let fetcher = scope
                .spawn(|| Fetcher::with_max_fetches(DEFAULT_FETCH_TIMEOUT, config.max_fetches));
            let http = scope.spawn(|| {
                reqwest::Client::builder()
                    .user_agent(concat!("feedwatch/", env!("CARGO_PKG_VERSION")))
                    .connect_timeout(Duration::from_secs(10))
                    .build()
                    .unwrap_or_default()
            });
            let store = Store::open(&config.database);
            let engine = engine_for(&config);
            (store, engine, joined(fetcher), joined(http))
        });
        Ok(Pipeline {
            engine,
            config: Arc::new(config),
            db: Db::new(store?),
            fetcher: Arc::new(fetcher),
            http,
            pages: Arc::default(),
        })
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The same database and connection pools under a new config.
    pub(crate) fn reconfigured(&self, config: Config) -> Pipeline {
        Pipeline {
            engine: engine_for(&config),
            config: Arc::new(config),
            db: self.db.clone(),
            fetcher: Arc::clone(&self.fetcher),
            http: self.http.clone(),
            pages: Arc::clone(&self.pages),
        }
    }

    /// Registers the config's feeds in the store; returns each one's place in
    /// `config.feeds` with its id.
    pub(crate) async fn sync_feeds(&self) -> Result<Vec<(usize, FeedId)>, StoreError> {
        let config = Arc::clone(&self.config);
        let ids = self
            .db
            .call(move |s| {
                s.sync_feeds(
                    config
                        .feeds
                        .iter()
                        .map(|f| (f.url.as_str(), f.name.as_str())),
                )
            })
            .await?;
        Ok(self
            .config
            .feeds
            .iter()
            .enumerate()
            .filter_map(|(index, f)| ids.get(&f.url).map(|&id| (index, id)))
            .collect())
    }
}

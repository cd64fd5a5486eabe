//! Full-text search over every stored article, through an FTS5 index kept in a file of its own
//! beside the database (`feedwatch-search.db` beside `feedwatch.db`).
//!
//! The index holds nothing that cannot be rebuilt from the articles, so it lives apart: filling
//! it does not hold the database's one write lock (the daemon indexes on a thread of its own
//! while polls commit; it writes to the database only to trim the queue of removals, a moment
//! after a batch that took some), and a lost, damaged or mismatched index file is simply built
//! again.
//!
//! The index holds the words as the rule engine folds and splits them (`fold_words`), not as
//! FTS5's own tokenizer would: `strasse` finds `Straße` and `乌克兰` finds it inside a longer
//! run of Han characters, exactly as a watch rule would.
//!
//! It is contentless (the text lives once, in `articles`). New articles join it in batches past
//! a mark, `indexed_through`: the highest article id in the index, every stored one up to it
//! indexed. Articles deleted or edited are queued by the database's triggers in
//! `search_removed` and taken out at the next batch, edited ones to come back with their text.
//!
//! A search is written in the watch-rule query language; [`fts_query`] turns it into an FTS5
//! MATCH expression, refusing the parts FTS5 cannot express (regexes, fields it does not index,
//! a `NOT` with nothing to subtract from) with a message saying which term is the problem. The
//! words in a hit's snippet are marked by the rule engine, as in alerts.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rusqlite::functions::FunctionFlags;
use rusqlite::{Connection, TransactionBehavior};

use super::{StoreError, timestamp};
use crate::matcher::Accents;
use crate::matcher::query::{Field, Pattern, Term};
use crate::matcher::snippet::{Marks, article_snippet, field_snippet};
use crate::matcher::text::folded_words;
use crate::matcher::{Engine, Query, RuleSpec};
use crate::parse::Article;

/// A query part FTS5 cannot express.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SearchQueryError {
    #[error("`{term}`: regular expressions cannot be searched in the archive; use words")]
    Regex { term: String },
    #[error("`{term}`: the archive indexes title, summary and content, not `{field}:`")]
    Field { term: String, field: &'static str },
    #[error("NOT needs words to subtract from, as in `nato NOT sport`")]
    LoneNot,
}

/// Which stored articles to search, beyond the query.
#[derive(Debug, Clone, Default)]
pub struct SearchFilter {
    /// Only articles published (or, without a date, first seen) at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only articles from the feed with this name.
    pub feed: Option<String>,
    pub limit: usize,
    /// Put around each hit in the snippet, e.g. `[` and `]`.
    pub highlight: (String, String),
}

/// One article found, best first.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    pub feed: String,
    pub title: String,
    pub link: Option<String>,
    pub published: Option<DateTime<Utc>>,
    pub first_seen_at: DateTime<Utc>,
    /// A few words around the hits, with the hits between the filter's highlight marks.
    pub snippet: String,
    /// bm25 score; lower is better (SQLite's convention).
    pub score: f64,
}

/// Titles weigh more than bodies: a story *about* the words beats one that mentions them.
const TITLE_WEIGHT: f64 = 5.0;

/// About how many characters of text a hit's snippet shows.
const SNIPPET_CHARS: usize = 120;

/// Articles added to the search index per transaction: enough that FTS5 writes few, large
/// segments and rarely merges them (about a tenth of a second of work for news articles).
pub const INDEX_BATCH: usize = 5_000;

/// The layout of the index file; a file of another layout is emptied and built again.
/// 2: the words as the rule engine folds them.
/// 3: folded by Unicode's full case folding (Cherokee, `ǅ`, new letters).
const INDEX_LAYOUT: i64 = 3;

const INDEX_SCHEMA: &str = "
DROP TABLE IF EXISTS articles_fts;
DROP TABLE IF EXISTS progress;
CREATE TABLE progress (
    -- The `store_identity` token of the database indexed here.
    store           TEXT NOT NULL,
    -- The highest article id in the index; every stored article up to it is indexed.
    indexed_through INTEGER NOT NULL,
    -- The last entry of the database's `search_removed` queue taken out of the index.
    removed_through INTEGER NOT NULL
) STRICT;
INSERT INTO progress VALUES ('', 0, 0);
CREATE VIRTUAL TABLE articles_fts USING fts5(
    title, summary, content,
    content = '', contentless_delete = 1,
    -- The text arrives folded by `fold_words`: split at spaces, with `_` inside words.
    tokenize = 'unicode61 remove_diacritics 0 tokenchars ''_'''
);
-- A batch of thousands of articles overflows FTS5's default 1 MB of pending index, and each
-- overflow writes another segment to merge; 4 MB keeps a batch in one.
INSERT INTO articles_fts (articles_fts, rank) VALUES ('hashsize', 4194304);
-- Each batch adds a segment; merging once 16 (not 4) pile up at a level leaves most merging to
-- the idle daemon (`SearchIndex::merge`).
INSERT INTO articles_fts (articles_fts, rank) VALUES ('automerge', 16);
";

/// Where the search index of the database at `database` lives: `x-search.db` beside `x.db`.
pub fn index_path(database: &Path) -> PathBuf {
    let stem = database.file_stem().unwrap_or_default().to_string_lossy();
    let extension = database
        .extension()
        .map_or_else(|| "db".into(), |e| e.to_string_lossy());
    database.with_file_name(format!("{stem}-search.{extension}"))
}

/// The search index of one database, with that database attached as `store` to read from.
pub struct SearchIndex {
    conn: Connection,
    path: PathBuf,
}

impl SearchIndex {
    /// Opens (creating if needed) the search index of the database at `database`, which
    /// [`super::Store::open`] has brought up to date. An index file of another layout, or of
    /// another database (this one restored from a backup, say), is emptied, and the stored
    /// articles are indexed again. A damaged one is an error that
    /// [`StoreError::is_damaged_index`] recognises: see [`SearchIndex::open_alone`].
    pub fn open(database: &Path) -> Result<SearchIndex, StoreError> {
        SearchIndex::open_at(&index_path(database), database)
    }

    /// [`SearchIndex::open`], deleting a damaged index file and building it again: only for a
    /// process that no other feedwatch works beside. One that did it beside a daemon would
    /// leave the daemon indexing into a deleted file, and the new one would never see another
    /// article.
    pub fn open_alone(database: &Path) -> Result<SearchIndex, StoreError> {
        match SearchIndex::open(database) {
            Err(e) if e.is_damaged_index() => {
                tracing::warn!("{e}; building it again");
                SearchIndex::rebuild(database)
            }
            other => other,
        }
    }

    fn rebuild(database: &Path) -> Result<SearchIndex, StoreError> {
        let path = index_path(database);
        for suffix in ["", "-wal", "-shm"] {
            let mut name = OsString::from(&path);
            name.push(suffix);
            match std::fs::remove_file(&name) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(StoreError::SearchFile {
                        path: PathBuf::from(name),
                        source: e,
                    });
                }
                _ => {}
            }
        }
        SearchIndex::open_at(&path, database)
    }

    fn open_at(path: &Path, database: &Path) -> Result<SearchIndex, StoreError> {
        let conn = Connection::open(path).map_err(|source| StoreError::SearchIndex {
            path: path.to_path_buf(),
            source,
        })?;
        // What the index is given: the words as the rule engine folds them.
        conn.create_scalar_function(
            "fold_words",
            1,
            FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
            |ctx| {
                let text = ctx.get_raw(0).as_str_or_null()?.unwrap_or_default();
                Ok(folded_words(text, Accents::Ignore))
            },
        )
        .map_err(|source| StoreError::SearchIndex {
            path: path.to_path_buf(),
            source,
        })?;
        let mut index = SearchIndex {
            conn,
            path: path.to_path_buf(),
        };
        index.in_index(|conn| {
            // FULL: a batch's commit must be on disk before the database's queue of removals is
            // trimmed, or a power cut could keep a deleted article's text and lose its removal.
            // It costs one sync per batch of thousands of articles.
            conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")?;
            // Opening writes nothing unless there is something to set up: each check is made
            // again under the write lock, in case another feedwatch is setting it up too.
            let layout = |conn: &Connection| -> rusqlite::Result<i64> {
                conn.query_row("PRAGMA user_version", [], |r| r.get(0))
            };
            if layout(conn)? != INDEX_LAYOUT {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                if layout(&tx)? != INDEX_LAYOUT {
                    tx.execute_batch(INDEX_SCHEMA)?;
                    tx.pragma_update(None, "user_version", INDEX_LAYOUT)?;
                }
                tx.commit()?;
            }
            let database = database
                .to_str()
                .ok_or_else(|| rusqlite::Error::InvalidPath(database.to_path_buf()))?;
            conn.execute("ATTACH DATABASE ?1 AS store", [database])?;
            // Whether the index is of this database as it is now. A copy of the database (a
            // backup restored) carries the same token but is behind the index: its removal
            // queue numbers fall short of what the index took, or, with no removal waiting, its
            // newest article falls short of the index's mark.
            let paired = |conn: &Connection| -> rusqlite::Result<(String, bool)> {
                let token: String =
                    conn.query_row("SELECT token FROM store.store_identity", [], |r| r.get(0))?;
                let in_step: bool = conn.query_row(
                    "SELECT progress.store = ?1
                         AND progress.removed_through <= COALESCE((SELECT seq
                             FROM store.sqlite_sequence WHERE name = 'search_removed'), 0)
                         AND (progress.indexed_through
                                  <= (SELECT COALESCE(MAX(id), 0) FROM store.articles)
                              OR EXISTS (SELECT 1 FROM store.search_removed
                                         WHERE seq > progress.removed_through))
                     FROM progress",
                    [&token],
                    |r| r.get(0),
                )?;
                Ok((token, in_step))
            };
            if paired(conn)?.1 {
                return Ok(());
            }
            let tx = write_transaction(conn)?;
            let (token, in_step) = paired(&tx)?;
            if !in_step {
                // A new index, or one of another database (or of another state of this one):
                // everything stored is indexed anew, so the removals queued so far concern none
                // of it.
                tx.execute(
                    "INSERT INTO articles_fts (articles_fts) VALUES ('delete-all')",
                    [],
                )?;
                tx.execute(
                    "UPDATE progress SET store = ?1, indexed_through = 0,
                         removed_through = (SELECT COALESCE(MAX(seq), 0) FROM store.search_removed)",
                    [&token],
                )?;
            }
            tx.commit()?;
            Ok(())
        })?;
        super::owner::give_to_folder_owner(path);
        Ok(index)
    }

    /// Runs `work` on the index's connection; errors name the index file.
    fn in_index<R>(
        &mut self,
        work: impl FnOnce(&mut Connection) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        work(&mut self.conn).map_err(|e| match e {
            StoreError::Sql(source) => StoreError::SearchIndex {
                path: self.path.clone(),
                source,
            },
            other => other,
        })
    }

    /// Takes articles deleted or edited since the last batch out of the index, and adds up to
    /// `limit` stored articles that are not in it yet, oldest first. Returns how many articles
    /// it took out or added; 0 means the index is complete, and nothing was written.
    pub fn index_batch(&mut self, limit: usize) -> Result<usize, StoreError> {
        if self.unindexed()? == 0 && self.removals_waiting()? == 0 {
            return Ok(0);
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let (done, removed_through) = self.in_index(|conn| {
            let tx = write_transaction(conn)?;
            let (mut through, removed_from): (i64, i64) = tx.query_row(
                "SELECT indexed_through, removed_through FROM progress",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let removed: Vec<(i64, i64)> = tx
                .prepare(
                    "SELECT seq, article_id FROM store.search_removed
                     WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                )?
                .query_map([removed_from, limit], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            // When the newest articles go, SQLite hands their ids out again: the mark comes
            // down with them, so that the articles stored under those ids are indexed.
            let newest: i64 =
                tx.query_row("SELECT COALESCE(MAX(id), 0) FROM store.articles", [], |r| {
                    r.get(0)
                })?;
            through = through.min(newest);
            let removed_ids: BTreeSet<i64> = removed.iter().map(|&(_, id)| id).collect();
            {
                // Deleting an id the index does not hold changes nothing.
                let mut unindex = tx.prepare("DELETE FROM articles_fts WHERE rowid = ?1")?;
                for id in &removed_ids {
                    unindex.execute([id])?;
                }
                // Edited articles (and new ones under a reused id) come back with their text.
                let mut reindex = tx.prepare(
                    "INSERT OR REPLACE INTO articles_fts (rowid, title, summary, content)
                     SELECT id, fold_words(title), fold_words(summary), fold_words(content)
                     FROM store.articles WHERE id = ?1",
                )?;
                for id in removed_ids.range(..=through) {
                    reindex.execute([id])?;
                }
            }
            let last: Option<i64> = tx.query_row(
                "SELECT MAX(id) FROM
                     (SELECT id FROM store.articles WHERE id > ?1 ORDER BY id LIMIT ?2)",
                [through, limit],
                |r| r.get(0),
            )?;
            let mut added = 0;
            if let Some(last) = last {
                // REPLACE: a reused id may still hold the text of the article it was before,
                // when that one's removal waits further down the queue; FTS5 would keep both.
                added = tx.execute(
                    "INSERT OR REPLACE INTO articles_fts (rowid, title, summary, content)
                     SELECT id, fold_words(title), fold_words(summary), fold_words(content)
                     FROM store.articles
                     WHERE id > ?1 AND id <= ?2",
                    [through, last],
                )?;
                through = last;
            }
            let removed_through = removed.last().map_or(removed_from, |&(seq, _)| seq);
            tx.execute(
                "UPDATE progress SET indexed_through = ?1, removed_through = ?2",
                [through, removed_through],
            )?;
            tx.commit()?;
            Ok((
                added + removed.len(),
                (!removed.is_empty()).then_some(removed_through),
            ))
        })?;
        if let Some(seq) = removed_through {
            // The queue is the database's, emptied in a write of its own once the index has
            // committed, so the database's write lock is held only for a moment. A crash in
            // between takes the same articles out again, which changes nothing.
            self.in_index(|conn| {
                conn.execute("DELETE FROM store.search_removed WHERE seq <= ?1", [seq])?;
                Ok(())
            })?;
        }
        Ok(done)
    }

    /// Empties the connection's page cache, for an indexer with nothing left to do.
    pub fn release_memory(&self) -> Result<(), StoreError> {
        Ok(self.conn.release_memory()?)
    }

    /// Merges up to `pages` pages of the index's segments, where some level holds several, and
    /// says whether there was any to merge. Indexing in batches leaves dozens of segments, and
    /// a search reads every one; the daemon merges them once it is idle, a step at a time.
    pub fn merge(&mut self, pages: usize) -> Result<bool, StoreError> {
        let pages = i64::try_from(pages).unwrap_or(i64::MAX);
        self.in_index(|conn| {
            let before = conn.total_changes();
            conn.execute(
                "INSERT INTO articles_fts (articles_fts, rank) VALUES ('merge', ?1)",
                [pages],
            )?;
            // FTS5 reports a merge that found nothing to do as fewer than two changes.
            Ok(conn.total_changes() - before >= 2)
        })
    }

    /// About how many stored articles are not in the index yet (ids may have gaps).
    pub fn unindexed(&mut self) -> Result<usize, StoreError> {
        let waiting: i64 = self.in_index(|conn| {
            Ok(conn.query_row(
                "SELECT (SELECT COALESCE(MAX(id), 0) FROM store.articles) - indexed_through
                 FROM progress",
                [],
                |r| r.get(0),
            )?)
        })?;
        Ok(usize::try_from(waiting).unwrap_or(0))
    }

    /// How many deletions and edits of articles wait to be taken out of the index.
    fn removals_waiting(&mut self) -> Result<usize, StoreError> {
        let waiting: i64 = self.in_index(|conn| {
            Ok(conn.query_row(
                "SELECT COUNT(*) FROM store.search_removed
                 WHERE seq > (SELECT removed_through FROM progress)",
                [],
                |r| r.get(0),
            )?)
        })?;
        Ok(usize::try_from(waiting).unwrap_or(0))
    }

    /// Before a search: indexes the articles not in the index yet if they fit in one batch (the
    /// daemon's last few polls), and returns how many stored articles are still not indexed. A
    /// larger backlog, as during a cold start, is the daemon's to index.
    pub fn catch_up(&mut self) -> Result<usize, StoreError> {
        if self.unindexed()? <= INDEX_BATCH {
            self.index_batch(INDEX_BATCH)?;
        }
        self.unindexed()
    }

    /// Brings the index up to date with every stored article; returns how many articles it
    /// added or took out.
    pub fn complete(&mut self) -> Result<usize, StoreError> {
        let mut total = 0;
        loop {
            match self.index_batch(INDEX_BATCH)? {
                0 => return Ok(total),
                done => total += done,
            }
        }
    }

    /// Articles matching `query` among those in the index, best (lowest bm25) first.
    pub fn search(
        &mut self,
        query: &Query,
        filter: &SearchFilter,
    ) -> Result<Vec<SearchHit>, StoreError> {
        let expression = fts_query(query).map_err(StoreError::SearchQuery)?;
        // Rank first, over the index alone when no filter needs the articles table; only the
        // best `limit` rows then pay for reading their article. CROSS JOIN keeps the index as
        // the outer loop: each hit is then one primary-key lookup.
        let mut joins = String::new();
        let mut filters = String::new();
        if filter.since.is_some() || filter.feed.is_some() {
            joins.push_str(" CROSS JOIN store.articles ON articles.id = articles_fts.rowid");
        }
        if filter.since.is_some() {
            filters.push_str(" AND COALESCE(articles.published, articles.first_seen_at) >= :since");
        }
        if filter.feed.is_some() {
            joins.push_str(" CROSS JOIN store.feeds ON feeds.id = articles.feed_id");
            filters.push_str(" AND feeds.name = :feed");
        }
        // An article deleted since it was indexed drops out at the join.
        let sql = format!(
            "WITH best AS (
                 SELECT articles_fts.rowid AS id, bm25(articles_fts, :title_weight, 1.0, 1.0) AS score
                 FROM articles_fts{joins}
                 WHERE articles_fts MATCH :query{filters}
                 ORDER BY score LIMIT :limit
             )
             SELECT feeds.name, articles.title, articles.link, articles.published,
                    articles.first_seen_at, articles.summary, articles.content, best.score
             FROM best
             JOIN store.articles ON articles.id = best.id
             JOIN store.feeds ON feeds.id = articles.feed_id
             ORDER BY best.score"
        );
        let engine = Engine::new([RuleSpec {
            name: "search",
            query,
            feeds: &[],
        }]);
        let marks = Marks {
            open: &filter.highlight.0,
            close: &filter.highlight.1,
        };
        let path = self.path.clone();
        let conn = &self.conn;
        let found = || -> Result<Vec<SearchHit>, rusqlite::Error> {
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut params: Vec<(&str, &dyn rusqlite::ToSql)> =
                vec![(":query", &expression), (":title_weight", &TITLE_WEIGHT)];
            let limit = filter.limit as i64;
            params.push((":limit", &limit));
            let since = filter.since.map(|t| t.timestamp());
            if let Some(since) = &since {
                params.push((":since", since));
            }
            if let Some(feed) = &filter.feed {
                params.push((":feed", feed));
            }
            let rows = stmt.query_map(params.as_slice(), |r| {
                let feed: String = r.get(0)?;
                let article = Article {
                    title: r.get(1)?,
                    link: r.get(2)?,
                    published: r.get::<_, Option<i64>>(3)?.map(timestamp),
                    summary: r.get(5)?,
                    content: r.get(6)?,
                    ..Article::default()
                };
                Ok(SearchHit {
                    snippet: hit_snippet(&engine, &article, &feed, marks),
                    feed,
                    first_seen_at: timestamp(r.get(4)?),
                    score: r.get(7)?,
                    title: article.title,
                    link: article.link,
                    published: article.published,
                })
            })?;
            rows.collect()
        };
        found().map_err(|source| match source {
            rusqlite::Error::SqliteFailure(..) => StoreError::Search { expression, source },
            source => StoreError::SearchIndex { path, source },
        })
    }
}

/// A deferred transaction that takes the index's write lock at once: the database's articles
/// are then read as of a moment when no other writer can change the index (an immediate one
/// would lock the attached database too).
fn write_transaction(conn: &mut Connection) -> rusqlite::Result<rusqlite::Transaction<'_>> {
    let tx = conn.transaction()?;
    tx.execute("UPDATE progress SET store = store", [])?;
    Ok(tx)
}

/// The words around the hits, marked: from the field the engine finds them in, as in an
/// alert; the start of the summary (or title) when it does not find them where FTS5 did.
fn hit_snippet(engine: &Engine, article: &Article, feed: &str, marks: Marks) -> String {
    let highlights = engine
        .explain(article, feed)
        .into_iter()
        .next()
        .map(|explained| explained.highlights)
        .unwrap_or_default();
    article_snippet(article, &highlights, SNIPPET_CHARS, marks).unwrap_or_else(|| {
        let field = if article.summary.is_empty() {
            Field::Title
        } else {
            Field::Summary
        };
        field_snippet(article, field, &[], SNIPPET_CHARS, marks)
    })
}

/// The FTS5 MATCH expression for a rule-language query.
pub fn fts_query(query: &Query) -> Result<String, SearchQueryError> {
    match query {
        Query::Term(term) => fts_term(term),
        Query::Or(parts) => {
            let parts: Vec<String> = parts.iter().map(fts_query).collect::<Result<_, _>>()?;
            Ok(format!("({})", parts.join(" OR ")))
        }
        Query::And(parts) => {
            // FTS5's NOT is binary (`a NOT b`), so the negated parts are gathered and subtracted
            // from the conjunction of the others.
            let mut positive = Vec::new();
            let mut negative = Vec::new();
            for part in parts {
                match part {
                    Query::Not(inner) => negative.push(fts_query(inner)?),
                    other => positive.push(fts_query(other)?),
                }
            }
            if positive.is_empty() {
                return Err(SearchQueryError::LoneNot);
            }
            let mut out = format!("({})", positive.join(" AND "));
            if !negative.is_empty() {
                out = format!("({out} NOT ({}))", negative.join(" OR "));
            }
            Ok(out)
        }
        Query::Not(_) => Err(SearchQueryError::LoneNot),
    }
}

fn fts_term(term: &Term) -> Result<String, SearchQueryError> {
    let column = match term.field {
        None => None,
        Some(Field::Title) => Some("title"),
        Some(Field::Summary) => Some("summary"),
        Some(Field::Content) => Some("content"),
        Some(Field::Link) => return Err(field_error(term, "link")),
        Some(Field::Author) => return Err(field_error(term, "author")),
        Some(Field::Category) => return Err(field_error(term, "category")),
    };
    let atom = match &term.pattern {
        Pattern::Phrase(words) => quoted(&words.join(" ")),
        Pattern::Prefix(stem) => format!("{} *", quoted(stem)),
        Pattern::Regex(_) => {
            return Err(SearchQueryError::Regex {
                term: term.source.clone(),
            });
        }
    };
    Ok(match column {
        Some(column) => format!("{column} : {atom}"),
        None => atom,
    })
}

fn field_error(term: &Term, field: &'static str) -> SearchQueryError {
    SearchQueryError::Field {
        term: term.source.clone(),
        field,
    }
}

/// An FTS5 string literal: everything inside is a token, never syntax. Rule tokens are folded
/// the way the index's words are (`fold_words`), so they are given as they are.
fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::schema::MIGRATIONS;

    /// A database with one feed whose articles `ids` say `word <id>` in their titles, and its
    /// search index, empty so far.
    fn store_with(dir: &tempfile::TempDir, ids: &[i64]) -> (Store, SearchIndex) {
        let path = dir.path().join("fw.db");
        let store = Store::open(&path).unwrap();
        store
            .conn
            .execute(
                "INSERT INTO feeds (id, url, name) VALUES (1, 'http://f/', 'F')",
                [],
            )
            .unwrap();
        for id in ids {
            insert(&store, *id);
        }
        (store, SearchIndex::open(&path).unwrap())
    }

    fn insert(store: &Store, id: i64) {
        store
            .conn
            .execute(
                "INSERT INTO articles (id, feed_id, identity, title, summary, content, first_seen_at)
                 VALUES (?1, 1, ?1, 'word ' || ?1, '', '', 0)",
                [id],
            )
            .unwrap();
    }

    /// The ids a search for `query` finds, sorted, after the catch-up a search starts with.
    fn found(index: &mut SearchIndex, query: &str) -> Vec<i64> {
        index.catch_up().unwrap();
        let filter = SearchFilter {
            limit: 100,
            ..SearchFilter::default()
        };
        let mut ids: Vec<i64> = index
            .search(&Query::parse(query).unwrap(), &filter)
            .unwrap()
            .iter()
            .map(|hit| hit.title.rsplit(' ').next().unwrap().parse().unwrap())
            .collect();
        ids.sort();
        ids
    }

    /// FTS5's own check of the index, and once it is complete, that it holds exactly the
    /// stored articles.
    fn assert_index_sound(index: &mut SearchIndex) {
        index
            .conn
            .execute(
                "INSERT INTO articles_fts (articles_fts) VALUES ('integrity-check')",
                [],
            )
            .unwrap();
        if index.unindexed().unwrap() == 0 && index.removals_waiting().unwrap() == 0 {
            let ids = |sql: &str| -> Vec<i64> {
                let mut stmt = index.conn.prepare(sql).unwrap();
                stmt.query_map([], |r| r.get(0))
                    .unwrap()
                    .map(Result::unwrap)
                    .collect()
            };
            assert_eq!(
                ids("SELECT rowid FROM articles_fts ORDER BY rowid"),
                ids("SELECT id FROM store.articles ORDER BY id")
            );
        }
    }

    fn indexed_through(index: &SearchIndex) -> i64 {
        index
            .conn
            .query_row("SELECT indexed_through FROM progress", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn articles_stored_before_the_index_had_its_own_file_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            // A database as the last release left it: its index inside, and complete.
            let conn = rusqlite::Connection::open(&path).unwrap();
            // The steps before the index moved to a file of its own.
            let last_release = 10;
            for step in &MIGRATIONS[..last_release] {
                conn.execute_batch(step).unwrap();
            }
            conn.execute_batch(&format!(
                "PRAGMA user_version = {last_release};
                 INSERT INTO feeds (id, url, name) VALUES (1, 'http://f/', 'F');
                 INSERT INTO articles (feed_id, identity, title, summary, content, first_seen_at)
                 VALUES (1, 'a', 'Grain deal signed', 'Ships may leave port', '', 0);
                 INSERT INTO articles_fts (rowid, title, summary, content)
                 SELECT id, title, summary, content FROM articles;
                 UPDATE search_progress SET indexed_through = 1;"
            ))
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        let mut index = SearchIndex::open(&path).unwrap();
        assert_eq!(
            index.unindexed().unwrap(),
            1,
            "indexed again, in its own file"
        );
        let filter = SearchFilter {
            limit: 10,
            highlight: ("<".into(), ">".into()),
            ..SearchFilter::default()
        };
        index.catch_up().unwrap();
        let hits = index
            .search(&Query::parse("grain ships").unwrap(), &filter)
            .unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].feed, "F");
        // The snippet comes from the summary, the title being shown anyway.
        assert_eq!(hits[0].snippet, "<Ships> may leave port");
        // A deleted article drops out of the hits at once, and out of the index at the next
        // batch.
        store.conn.execute("DELETE FROM articles", []).unwrap();
        let filter = SearchFilter {
            limit: 10,
            ..filter
        };
        assert!(
            index
                .search(&Query::parse("grain").unwrap(), &filter)
                .unwrap()
                .is_empty()
        );
        assert_eq!(index.complete().unwrap(), 1);
        assert_index_sound(&mut index);
    }

    #[test]
    fn stored_articles_are_indexed_in_batches_and_before_any_search() {
        let dir = tempfile::tempdir().unwrap();
        let (_store, mut index) = store_with(&dir, &[1, 2, 3, 4, 5]);
        assert_eq!(indexed_through(&index), 0);
        assert_eq!(index.index_batch(2).unwrap(), 2);
        assert_eq!(indexed_through(&index), 2);
        assert_index_sound(&mut index);
        // A search first indexes a backlog of up to one batch.
        assert_eq!(found(&mut index, "word"), [1, 2, 3, 4, 5]);
        assert_eq!(indexed_through(&index), 5);
        assert_eq!(index.index_batch(100).unwrap(), 0);
        assert_index_sound(&mut index);
    }

    #[test]
    fn a_search_leaves_a_backlog_larger_than_a_batch_to_the_daemon() {
        let dir = tempfile::tempdir().unwrap();
        let ids: Vec<i64> = (1..=INDEX_BATCH as i64 + 1).collect();
        let (_store, mut index) = store_with(&dir, &ids);
        assert_eq!(index.catch_up().unwrap(), INDEX_BATCH + 1);
        assert_eq!(indexed_through(&index), 0);
        assert_eq!(index.complete().unwrap(), INDEX_BATCH + 1);
        assert_eq!(index.catch_up().unwrap(), 0);
        assert_index_sound(&mut index);
    }

    #[test]
    fn words_are_found_as_the_rules_fold_and_split_them() {
        let dir = tempfile::tempdir().unwrap();
        let summaries = [
            "Protest in der Hauptstraße",
            "乌克兰总统会见北约秘书长",
            "Zelenský spoke",
            "the snake_case word",
            "ＮＡＴＯ’s summit",
            "ᏣᎳᎩ ᎦᏬᏂᎯᏍᏗ",
            "ΟΔΥΣΣΕΥΣ ΣΤΗΝ ΙΘΑΚΗ",
            "ǅemal Bijedić",
            "ılık su",
        ];
        let ids: Vec<i64> = (1..=summaries.len() as i64).collect();
        let (store, mut index) = store_with(&dir, &ids);
        for (id, summary) in ids.iter().zip(summaries) {
            store
                .conn
                .execute(
                    "UPDATE articles SET summary = ?2 WHERE id = ?1",
                    rusqlite::params![id, summary],
                )
                .unwrap();
        }
        let rules = |query: &str| {
            let query = Query::parse(query).unwrap();
            let engine = Engine::new([RuleSpec {
                name: "r",
                query: &query,
                feeds: &[],
            }]);
            let found: Vec<i64> = ids
                .iter()
                .zip(summaries)
                .filter(|(_, summary)| {
                    let article = crate::parse::Article {
                        summary: summary.to_string(),
                        ..crate::parse::Article::default()
                    };
                    !engine.matches(&article, "F").is_empty()
                })
                .map(|(id, _)| *id)
                .collect();
            found
        };
        for (query, expected) in [
            ("hauptstrasse", vec![1]),
            ("乌克兰", vec![2]),
            ("北约", vec![2]),
            ("zelensky", vec![3]),
            ("snake_case", vec![4]),
            ("snake", vec![]),
            ("nato", vec![5]),
            ("ꮳꮃꭹ", vec![6]),
            ("Οδυσσεύς", vec![7]),
            ("οδυσσευς", vec![7]),
            ("DŽEMAL", vec![8]),
            ("ILIK", vec![9]),
        ] {
            assert_eq!(rules(query), expected, "rules: {query}");
            assert_eq!(found(&mut index, query), expected, "search: {query}");
        }
    }

    #[test]
    fn edited_articles_are_found_by_their_new_words_only() {
        let dir = tempfile::tempdir().unwrap();
        let (store, mut index) = store_with(&dir, &[1, 2]);
        // 1 is indexed, 2 is not yet.
        index.index_batch(1).unwrap();
        store
            .conn
            .execute("UPDATE articles SET title = 'other ' || id", [])
            .unwrap();
        assert_eq!(found(&mut index, "other"), [1, 2]);
        assert!(found(&mut index, "word").is_empty());
        assert_index_sound(&mut index);
    }

    /// Pages of the index: each segment has at least one.
    fn index_pages(index: &SearchIndex) -> i64 {
        index
            .conn
            .query_row("SELECT COUNT(*) FROM articles_fts_data", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn merging_the_index_leaves_fewer_pages_to_read_and_the_same_hits() {
        let dir = tempfile::tempdir().unwrap();
        let (store, mut index) = store_with(&dir, &[]);
        for id in 1..=40 {
            insert(&store, id);
            index.complete().unwrap();
        }
        let before = index_pages(&index);
        let mut steps = 0;
        while index.merge(100).unwrap() {
            steps += 1;
            assert!(steps < 100, "merging never ends");
        }
        assert!(steps > 0);
        assert!(
            index_pages(&index) < before,
            "{} pages, {before} before",
            index_pages(&index)
        );
        assert_index_sound(&mut index);
        assert_eq!(found(&mut index, "word").len(), 40);
    }

    #[test]
    fn deleted_articles_leave_the_index_and_reused_ids_join_it() {
        let dir = tempfile::tempdir().unwrap();
        let (store, mut index) = store_with(&dir, &[1, 2, 3]);
        index.complete().unwrap();
        insert(&store, 4);
        // 3 is indexed, 4 is not: both go.
        store
            .conn
            .execute("DELETE FROM articles WHERE id IN (3, 4)", [])
            .unwrap();
        assert_eq!(found(&mut index, "word"), [1, 2]);
        assert_index_sound(&mut index);
        // The newest articles went, so SQLite hands out 3 again: the new article 3 is indexed.
        insert(&store, 3);
        assert_eq!(found(&mut index, "word"), [1, 2, 3]);
        assert_index_sound(&mut index);
        // Again, with the id reused before the index hears of the deletion.
        store
            .conn
            .execute("DELETE FROM articles WHERE id = 3", [])
            .unwrap();
        insert(&store, 3);
        assert_eq!(found(&mut index, "word"), [1, 2, 3]);
        assert_index_sound(&mut index);
        // The queue of deletions is emptied once the index has them.
        let queued: i64 = store
            .conn
            .query_row("SELECT COUNT(*) FROM search_removed", [], |r| r.get(0))
            .unwrap();
        assert_eq!(queued, 0);
    }

    #[test]
    fn removals_taken_over_several_batches_leave_no_old_text_under_reused_ids() {
        let dir = tempfile::tempdir().unwrap();
        let (store, mut index) = store_with(&dir, &[1, 2, 3, 4, 5, 6]);
        index.complete().unwrap();
        // Deleted newest first, as a prune may; the index takes two removals per batch.
        for id in (1..=6).rev() {
            store
                .conn
                .execute("DELETE FROM articles WHERE id = ?1", [id])
                .unwrap();
        }
        index.index_batch(2).unwrap();
        // New articles take the ids again before the rest of the removals are taken.
        for id in 1..=6 {
            store
                .conn
                .execute(
                    "INSERT INTO articles (id, feed_id, identity, title, summary, content,
                                           first_seen_at)
                     VALUES (?1, 1, 'new' || ?1, 'fresh ' || ?1, '', '', 0)",
                    [id],
                )
                .unwrap();
        }
        while index.index_batch(2).unwrap() > 0 {}
        assert!(found(&mut index, "word").is_empty());
        assert_eq!(found(&mut index, "fresh"), [1, 2, 3, 4, 5, 6]);
        assert_index_sound(&mut index);
    }

    #[test]
    fn an_index_ahead_of_its_database_restored_from_a_backup_is_built_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fw.db");
        let (store, mut index) = store_with(&dir, &[1, 2]);
        index.complete().unwrap();
        drop(index);
        let backup = dir.path().join("backup.db");
        store
            .conn
            .execute("VACUUM INTO ?1", [backup.to_str().unwrap()])
            .unwrap();
        insert(&store, 3);
        store
            .conn
            .execute("DELETE FROM articles WHERE id = 1", [])
            .unwrap();
        let mut index = SearchIndex::open(&path).unwrap();
        assert_eq!(found(&mut index, "word"), [2, 3]);
        drop((store, index));
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        std::fs::rename(&backup, &path).unwrap();
        let store = Store::open(&path).unwrap();
        let mut index = SearchIndex::open(&path).unwrap();
        assert_eq!(found(&mut index, "word"), [1, 2]);
        // New articles after the restore take ids the index had seen; they are found too.
        insert(&store, 3);
        assert_eq!(found(&mut index, "word"), [1, 2, 3]);
        assert_index_sound(&mut index);
    }

    #[test]
    fn an_index_of_another_database_is_built_again() {
        let dir = tempfile::tempdir().unwrap();
        let (store, mut index) = store_with(&dir, &[1, 2]);
        index.complete().unwrap();
        drop((store, index));
        // The database is replaced (restored from a backup, say) while the index stays.
        let path = dir.path().join("fw.db");
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        let (_store, mut index) = store_with(&dir, &[7]);
        assert_eq!(indexed_through(&index), 0);
        assert_eq!(found(&mut index, "word"), [7]);
        assert_index_sound(&mut index);
    }

    #[test]
    fn a_damaged_index_file_is_built_again_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let (_store, index) = store_with(&dir, &[1]);
        drop(index);
        let path = index_path(&dir.path().join("fw.db"));
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        std::fs::write(&path, vec![0x5a; 8192]).unwrap();
        let database = dir.path().join("fw.db");
        // Opening leaves a damaged file alone: another feedwatch may have it open.
        let damaged = SearchIndex::open(&database).err().unwrap();
        assert!(damaged.is_damaged_index(), "{damaged}");
        assert_eq!(std::fs::read(&path).unwrap(), vec![0x5a; 8192]);
        let mut index = SearchIndex::open_alone(&database).unwrap();
        assert_eq!(found(&mut index, "word"), [1]);
    }

    #[test]
    fn the_index_file_sits_beside_the_database() {
        assert_eq!(
            index_path(Path::new("/var/lib/feedwatch/feedwatch.db")),
            Path::new("/var/lib/feedwatch/feedwatch-search.db")
        );
        assert_eq!(index_path(Path::new("news")), Path::new("news-search.db"));
    }

    fn fts(text: &str) -> Result<String, SearchQueryError> {
        fts_query(&Query::parse(text).unwrap())
    }

    #[test]
    fn words_side_by_side_become_an_and() {
        assert_eq!(fts("NATO Ukraine").unwrap(), r#"("nato" AND "ukraine")"#);
    }

    #[test]
    fn phrases_prefixes_and_fields_keep_their_meaning() {
        assert_eq!(
            fts(r#"title:"grain deal" OR sanction*"#).unwrap(),
            r#"(title : "grain deal" OR "sanction" *)"#
        );
    }

    #[test]
    fn cyrillic_words_are_searched_composed() {
        assert_eq!(fts("Київ").unwrap(), "\"київ\"");
    }

    #[test]
    fn not_is_subtracted_from_the_rest_of_the_conjunction() {
        assert_eq!(
            fts("nato AND NOT sport AND NOT football").unwrap(),
            r#"(("nato") NOT ("sport" OR "football"))"#
        );
    }

    #[test]
    fn what_fts5_cannot_express_is_refused_by_name() {
        assert_eq!(
            fts("/nat.o/").unwrap_err(),
            SearchQueryError::Regex {
                term: "/nat.o/".into()
            }
        );
        assert!(matches!(
            fts("author:smith").unwrap_err(),
            SearchQueryError::Field {
                field: "author",
                ..
            }
        ));
        assert_eq!(fts("NOT sport").unwrap_err(), SearchQueryError::LoneNot);
    }
}

//! Full-text search over every stored article, through the `articles_fts` FTS5 index.
//!
//! A search is written in the watch-rule query language; [`fts_query`] turns it into an FTS5
//! MATCH expression, refusing the parts FTS5 cannot express (regexes, fields it does not index,
//! a `NOT` with nothing to subtract from) with a message saying which term is the problem.

use chrono::{DateTime, Utc};
use rusqlite::TransactionBehavior;

use super::{Store, StoreError, timestamp};
use crate::matcher::Query;
use crate::matcher::query::{Field, Pattern, Term};

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

impl Store {
    /// Articles matching `query` among those in the search index, best (lowest bm25) first;
    /// [`Store::catch_up_search_index`] first adds the newest ones.
    pub fn search(
        &self,
        query: &Query,
        filter: &SearchFilter,
    ) -> Result<Vec<SearchHit>, StoreError> {
        let expression = fts_query(query).map_err(StoreError::SearchQuery)?;
        // Rank first, over the index alone when no filter needs the articles table; only the
        // best `limit` rows then pay for the join and the snippet, which reads the text again.
        // CROSS JOIN keeps the index as the outer loop: each hit is then one primary-key lookup.
        let mut joins = String::new();
        let mut filters = String::new();
        if filter.since.is_some() || filter.feed.is_some() {
            joins.push_str(" CROSS JOIN articles ON articles.id = articles_fts.rowid");
        }
        if filter.since.is_some() {
            filters.push_str(" AND COALESCE(articles.published, articles.first_seen_at) >= :since");
        }
        if filter.feed.is_some() {
            joins.push_str(" CROSS JOIN feeds ON feeds.id = articles.feed_id");
            filters.push_str(" AND feeds.name = :feed");
        }
        let sql = format!(
            "WITH best AS (
                 SELECT articles_fts.rowid AS id, bm25(articles_fts, :title_weight, 1.0, 1.0) AS score
                 FROM articles_fts{joins}
                 WHERE articles_fts MATCH :query{filters}
                 ORDER BY score LIMIT :limit
             )
             SELECT feeds.name, articles.title, articles.link, articles.published,
                    articles.first_seen_at,
                    snippet(articles_fts, -1, :open, :close, '…', 16), best.score
             FROM best
             JOIN articles_fts ON articles_fts.rowid = best.id
             JOIN articles ON articles.id = best.id
             JOIN feeds ON feeds.id = articles.feed_id
             WHERE articles_fts MATCH :query
             ORDER BY best.score"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let mut params: Vec<(&str, &dyn rusqlite::ToSql)> = vec![
            (":query", &expression),
            (":title_weight", &TITLE_WEIGHT),
            (":open", &filter.highlight.0),
            (":close", &filter.highlight.1),
        ];
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
            Ok(SearchHit {
                feed: r.get(0)?,
                title: r.get(1)?,
                link: r.get(2)?,
                published: r.get::<_, Option<i64>>(3)?.map(timestamp),
                first_seen_at: timestamp(r.get(4)?),
                snippet: r.get(5)?,
                score: r.get(6)?,
            })
        })?;
        rows.collect::<Result<_, _>>()
            .map_err(|source| StoreError::Search { expression, source })
    }
}

/// Articles added to the search index per transaction: enough that FTS5 writes few, large
/// segments and rarely merges them; few enough that a poll's commit waits little behind one
/// (about a tenth of a second of work for news-feed articles).
pub const INDEX_BATCH: usize = 5_000;

impl Store {
    /// Adds up to `limit` stored articles that are not in the search index yet, oldest first,
    /// and returns how many; 0 means the index is complete.
    ///
    /// Its commits do not wait for the disk: a power cut can only undo the last batches, the
    /// mark and the index together, and those articles are then indexed again.
    pub fn index_for_search(&mut self, limit: usize) -> Result<usize, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.unsynced(|store| {
            let tx = store
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let through: i64 =
                tx.query_row("SELECT indexed_through FROM search_progress", [], |r| {
                    r.get(0)
                })?;
            let last: Option<i64> = tx.query_row(
                "SELECT MAX(id) FROM
                     (SELECT id FROM articles WHERE id > ?1 ORDER BY id LIMIT ?2)",
                [through, limit],
                |r| r.get(0),
            )?;
            let Some(last) = last else {
                return Ok(0);
            };
            let added = tx.execute(
                "INSERT INTO articles_fts (rowid, title, summary, content)
                 SELECT id, title, summary, content FROM articles WHERE id > ?1 AND id <= ?2",
                [through, last],
            )?;
            tx.execute("UPDATE search_progress SET indexed_through = ?1", [last])?;
            tx.commit()?;
            Ok(added)
        })
    }

    /// Merges up to `pages` pages of the search index's segments, where some level holds
    /// several, and says whether there was any to merge. Indexing in batches leaves dozens of
    /// segments, and a search reads every one; the daemon merges them once it is idle, in steps
    /// between which polls can commit.
    pub fn merge_search_index(&mut self, pages: usize) -> Result<bool, StoreError> {
        let pages = i64::try_from(pages).unwrap_or(i64::MAX);
        let before = self.conn.total_changes();
        self.unsynced(|store| {
            store.conn.execute(
                "INSERT INTO articles_fts (articles_fts, rank) VALUES ('merge', ?1)",
                [pages],
            )?;
            Ok(())
        })?;
        // FTS5 reports a merge that found nothing to do as fewer than two changes.
        Ok(self.conn.total_changes() - before >= 2)
    }

    /// About how many stored articles are not in the search index yet (ids may have gaps).
    pub fn unindexed(&self) -> Result<usize, StoreError> {
        let waiting: i64 = self.conn.query_row(
            "SELECT COALESCE(MAX(id), 0) - (SELECT indexed_through FROM search_progress)
             FROM articles",
            [],
            |r| r.get(0),
        )?;
        Ok(usize::try_from(waiting).unwrap_or(0))
    }

    /// Before a search: indexes the articles not in the search index yet if they fit in one
    /// batch (the daemon's last few polls), and returns how many stored articles are still not
    /// indexed. A larger backlog, as during a cold start, is left to the daemon, which indexes
    /// it within a minute: a search should not hold the database's only write lock that long.
    pub fn catch_up_search_index(&mut self) -> Result<usize, StoreError> {
        let waiting = self.unindexed()?;
        if waiting > 0 && waiting <= INDEX_BATCH {
            self.index_for_search(INDEX_BATCH)?;
            return self.unindexed();
        }
        Ok(waiting)
    }

    /// Adds every stored article that is not in the search index yet; returns how many. Writes
    /// nothing (and so needs no write access) when the index is complete.
    pub fn complete_search_index(&mut self) -> Result<usize, StoreError> {
        if self.unindexed()? == 0 {
            return Ok(0);
        }
        let mut total = 0;
        loop {
            match self.index_for_search(INDEX_BATCH)? {
                0 => return Ok(total),
                added => total += added,
            }
        }
    }
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

/// An FTS5 string literal: everything inside is a token, never syntax. Rule tokens are
/// decomposed (NFKD); stored text is mostly composed, so the literal is recomposed to match it.
fn quoted(text: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let composed: String = text.nfc().collect();
    format!("\"{}\"", composed.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::schema::MIGRATIONS;

    #[test]
    fn articles_stored_before_the_index_existed_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.execute_batch(
                "PRAGMA user_version = 1;
                 INSERT INTO feeds (id, url, name) VALUES (1, 'http://f/', 'F');
                 INSERT INTO articles (feed_id, identity, title, summary, content, first_seen_at)
                 VALUES (1, 'a', 'Grain deal signed', 'Ships may leave port', '', 0);",
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        // Everything stored before is in the index: the upgrade indexed it and set the mark.
        assert_eq!(indexed_through(&store), 1);
        let filter = SearchFilter {
            limit: 10,
            highlight: ("<".into(), ">".into()),
            ..SearchFilter::default()
        };
        let hits = store
            .search(&Query::parse("grain ships").unwrap(), &filter)
            .unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].feed, "F");
        assert_eq!(hits[0].snippet, "<Grain> deal signed");
        // Deleting an article takes it out of the index too (the trigger keeps them in step).
        store.conn.execute("DELETE FROM articles", []).unwrap();
        let none = store
            .search(&Query::parse("grain").unwrap(), &filter)
            .unwrap();
        assert!(none.is_empty());
    }

    /// A store with one feed whose articles `ids` say `word <id>` in their titles.
    fn store_with(dir: &tempfile::TempDir, ids: &[i64]) -> Store {
        let store = Store::open(&dir.path().join("fw.db")).unwrap();
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
        store
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
    fn found(store: &mut Store, query: &str) -> Vec<i64> {
        store.catch_up_search_index().unwrap();
        let filter = SearchFilter {
            limit: 100,
            ..SearchFilter::default()
        };
        let mut ids: Vec<i64> = store
            .search(&Query::parse(query).unwrap(), &filter)
            .unwrap()
            .iter()
            .map(|hit| hit.title.rsplit(' ').next().unwrap().parse().unwrap())
            .collect();
        ids.sort();
        ids
    }

    /// FTS5's own check of the index, and once it is complete, that it holds exactly what the
    /// articles table holds.
    fn assert_index_sound(store: &Store) {
        let newest: i64 = store
            .conn
            .query_row("SELECT COALESCE(MAX(id), 0) FROM articles", [], |r| {
                r.get(0)
            })
            .unwrap();
        let against_articles = i64::from(indexed_through(store) == newest);
        store
            .conn
            .execute(
                "INSERT INTO articles_fts (articles_fts, rank) VALUES ('integrity-check', ?1)",
                [against_articles],
            )
            .unwrap();
    }

    fn indexed_through(store: &Store) -> i64 {
        store
            .conn
            .query_row("SELECT indexed_through FROM search_progress", [], |r| {
                r.get(0)
            })
            .unwrap()
    }

    #[test]
    fn stored_articles_are_indexed_in_batches_and_before_any_search() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = store_with(&dir, &[1, 2, 3, 4, 5]);
        assert_eq!(indexed_through(&store), 0);
        assert_eq!(store.index_for_search(2).unwrap(), 2);
        assert_eq!(indexed_through(&store), 2);
        assert_index_sound(&store);
        // A search first indexes a backlog of up to one batch.
        assert_eq!(store.catch_up_search_index().unwrap(), 0);
        assert_eq!(found(&mut store, "word"), [1, 2, 3, 4, 5]);
        assert_eq!(indexed_through(&store), 5);
        assert_eq!(store.index_for_search(100).unwrap(), 0);
        assert_index_sound(&store);
    }

    #[test]
    fn a_search_leaves_a_backlog_larger_than_a_batch_to_the_daemon() {
        let dir = tempfile::tempdir().unwrap();
        let ids: Vec<i64> = (1..=INDEX_BATCH as i64 + 1).collect();
        let mut store = store_with(&dir, &ids);
        assert_eq!(store.catch_up_search_index().unwrap(), INDEX_BATCH + 1);
        assert_eq!(indexed_through(&store), 0);
        assert_eq!(store.complete_search_index().unwrap(), INDEX_BATCH + 1);
        assert_eq!(store.catch_up_search_index().unwrap(), 0);
    }

    #[test]
    fn editing_an_article_reindexes_it_only_if_it_was_indexed() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = store_with(&dir, &[1, 2]);
        store.index_for_search(1).unwrap();
        store
            .conn
            .execute("UPDATE articles SET title = 'other ' || id", [])
            .unwrap();
        assert_index_sound(&store);
        assert_eq!(found(&mut store, "other").len(), 2);
        assert!(found(&mut store, "word").is_empty());
        assert_index_sound(&store);
    }

    /// Pages of the index: each segment has at least one.
    fn index_pages(store: &Store) -> i64 {
        store
            .conn
            .query_row("SELECT COUNT(*) FROM articles_fts_data", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn merging_the_index_leaves_fewer_pages_to_read_and_the_same_hits() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = store_with(&dir, &[]);
        for id in 1..=40 {
            insert(&store, id);
            store.complete_search_index().unwrap();
        }
        let before = index_pages(&store);
        let mut steps = 0;
        while store.merge_search_index(100).unwrap() {
            steps += 1;
            assert!(steps < 100, "merging never ends");
        }
        assert!(steps > 0);
        assert!(
            index_pages(&store) < before,
            "{} pages, {before} before",
            index_pages(&store)
        );
        assert_index_sound(&store);
        assert_eq!(found(&mut store, "word").len(), 40);
    }

    #[test]
    fn deleting_articles_keeps_the_index_and_its_mark_in_step() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = store_with(&dir, &[1, 2, 3]);
        store.complete_search_index().unwrap();
        insert(&store, 4);
        // 3 is indexed, 4 is not: each leaves the index only if it was in it.
        store
            .conn
            .execute("DELETE FROM articles WHERE id IN (3, 4)", [])
            .unwrap();
        assert_index_sound(&store);
        // The newest articles went, so SQLite hands out 3 again; the mark came down with them
        // and the new article 3 is indexed.
        assert_eq!(indexed_through(&store), 2);
        insert(&store, 3);
        assert_eq!(found(&mut store, "word"), [1, 2, 3]);
        assert_index_sound(&store);
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

//! Full-text search over every stored article, through the `articles_fts` FTS5 index.
//!
//! A search is written in the watch-rule query language; [`fts_query`] turns it into an FTS5
//! MATCH expression, refusing the parts FTS5 cannot express (regexes, fields it does not index,
//! a `NOT` with nothing to subtract from) with a message saying which term is the problem.

use chrono::{DateTime, Utc};
use rusqlite::Connection;

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
    /// Articles matching `query`, best (lowest bm25) first.
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

/// The highest article id stored so far. Articles stored later get higher ids (the table has
/// no AUTOINCREMENT, so the next id is the highest plus one), which is how
/// [`index_articles_after`] finds them.
pub(super) fn last_article_id(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT COALESCE(MAX(id), 0) FROM articles")?
        .query_row([], |r| r.get(0))?)
}

/// Adds the articles stored after `after` to the full-text index, in one statement, so that
/// FTS5 writes one index segment for a whole commit. Deletions and edits are kept in step by
/// triggers.
pub(super) fn index_articles_after(conn: &Connection, after: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO articles_fts (rowid, title, summary, content)
         SELECT id, title, summary, content FROM articles WHERE id > ?1",
    )?
    .execute([after])?;
    Ok(())
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

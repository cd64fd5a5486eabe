//! Stories in the store: the sketches of the articles within the story window, kept in a
//! table so that they outlive the process, and in memory in a [`Window`] that finds the
//! stored articles a new one may be a copy of (see `story`), built from the table when first
//! needed and again after pruning. Placing an article happens in the commit that stores it,
//! so two feeds carrying one story and committed together still make one story.

use chrono::{DateTime, Utc};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, params};

use super::{Store, StoreError, timestamp};
use crate::story::window::MAX_ARTICLES;
use crate::story::{Joined, Sketch, StoryParams, Window};

/// The story an article is in.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    /// The story's first article.
    pub id: i64,
    /// What its alerts are recorded under in `alerted`.
    pub key: String,
    /// The stored article it was most like, if it joined a story.
    pub joined: Option<Joined<i64>>,
}

impl Placement {
    /// An article that starts a story of its own.
    pub fn alone(article: i64, alert_key: &str) -> Placement {
        Placement {
            id: article,
            key: format!("story:{alert_key}"),
            joined: None,
        }
    }
}

/// The stored sketches in memory, keyed by article id: built from the table when an article
/// is first placed or looked up, and again after pruning or a rolled-back write.
#[derive(Debug, Default)]
pub(super) struct StoryIndex(Option<Window<i64>>);

impl StoryIndex {
    /// The window, built now if it is not yet, with `params` in force.
    fn get(
        &mut self,
        conn: &Connection,
        params: &StoryParams,
    ) -> Result<&mut Window<i64>, StoreError> {
        if self.0.is_none() {
            self.0 = Some(load(conn, params)?);
        }
        let window = self.0.get_or_insert_with(|| Window::new(*params));
        window.set_params(*params);
        Ok(window)
    }

    /// Drops the window, to be built again from the table when next needed.
    pub(super) fn forget(&mut self) {
        self.0 = None;
    }
}

/// A window of the newest stored sketches (as many as it holds), oldest first.
fn load(conn: &Connection, params: &StoryParams) -> Result<Window<i64>, StoreError> {
    // Newest first in the table's own order, then recorded oldest first here: no second sort
    // in SQLite, and no column the window does not keep.
    let mut stmt = conn.prepare(
        "SELECT article_id, story_id, seen_at, exact, sketch FROM story_sketches
         ORDER BY article_id DESC LIMIT ?1",
    )?;
    let mut rows = stmt.query(params![MAX_ARTICLES as i64])?;
    let mut newest_first = Vec::new();
    while let Some(row) = rows.next()? {
        // Borrowed, not copied; the column is a `BLOB NOT NULL` (anything else is no sketch).
        let bytes = match row.get_ref(4)? {
            ValueRef::Blob(bytes) => bytes,
            _ => &[],
        };
        let sketch = Sketch::from_bytes(row.get(3)?, bytes);
        newest_first.push((row.get(0)?, row.get(1)?, sketch, timestamp(row.get(2)?)));
    }
    let mut window = Window::new(*params);
    for (article, story, sketch, at) in newest_first.into_iter().rev() {
        window.record(article, story, sketch, at);
    }
    Ok(window)
}

/// The stored article within the window before `at` that `sketch` is most like, at or above
/// the threshold, with its story.
fn find(
    conn: &Connection,
    window: &Window<i64>,
    sketch: &Sketch,
    at: DateTime<Utc>,
) -> Result<Option<Placement>, StoreError> {
    let Some((story, joined)) = window.find(sketch, at) else {
        return Ok(None);
    };
    // The story's key is kept with each of its articles' sketches.
    let key: Option<String> = conn
        .prepare_cached("SELECT story_key FROM story_sketches WHERE article_id = ?1")?
        .query_row(params![joined.article], |r| r.get(0))
        .optional()?;
    Ok(key.map(|key| Placement {
        id: story,
        key,
        joined: Some(joined),
    }))
}

/// Places a newly stored article in its story and records its sketch for the articles after
/// it; inside the caller's transaction, whose caller forgets `index` should it roll back.
pub(super) fn place(
    tx: &Connection,
    index: &mut StoryIndex,
    article: i64,
    alert_key: &str,
    sketch: &Sketch,
    now: DateTime<Utc>,
    params: &StoryParams,
) -> Result<Placement, StoreError> {
    let window = index.get(tx, params)?;
    let placed = window.place(article, Some(sketch.clone()), now);
    let placement = match placed.joined {
        // Every article in the window has its row: the story's key is kept with it.
        Some(joined) => Placement {
            id: placed.story,
            key: tx
                .prepare_cached("SELECT story_key FROM story_sketches WHERE article_id = ?1")?
                .query_row(params![joined.article], |r| r.get(0))?,
            joined: Some(joined),
        },
        None => Placement::alone(article, alert_key),
    };
    let joined = placement.joined;
    tx.prepare_cached(
        "INSERT INTO story_sketches (article_id, story_id, story_key, joined_to, similarity,
                                     seen_at, exact, sketch)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        article,
        placement.id,
        placement.key,
        joined.map(|j| j.article),
        joined.map(|j| j.similarity),
        now.timestamp(),
        sketch.exact,
        sketch.to_bytes()
    ])?;
    if joined.is_some() {
        tx.prepare_cached("UPDATE articles SET story_id = ?2 WHERE id = ?1")?
            .execute(params![article, placement.id])?;
    }
    Ok(placement)
}

/// An article of a story, for `feedwatch story`.
#[derive(Debug, Clone, PartialEq)]
pub struct StoryArticle {
    pub article_id: i64,
    pub feed: String,
    pub title: String,
    pub link: Option<String>,
    pub first_seen_at: DateTime<Utc>,
    /// The article it was most like when it joined, and how alike; `None` for the first, and
    /// for articles whose sketch has left the window.
    pub joined: Option<Joined<i64>>,
}

/// A story a new article would join, for `preview`.
#[derive(Debug, Clone, PartialEq)]
pub struct StoryGuess {
    pub story: i64,
    /// The stored article it is most like, and its title.
    pub joined: Joined<i64>,
    pub title: String,
}

impl Store {
    /// The articles of story `id`, first seen first; empty for no such story.
    pub fn story(&self, id: i64) -> Result<Vec<StoryArticle>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT a.id, feeds.name, a.title, a.link, a.first_seen_at, s.joined_to, s.similarity
             FROM articles a JOIN feeds ON feeds.id = a.feed_id
             LEFT JOIN story_sketches s ON s.article_id = a.id
             WHERE a.id = ?1 OR a.story_id = ?1
             ORDER BY a.first_seen_at, a.id",
        )?;
        let rows = stmt.query_map(params![id], |r| {
            let joined = match (r.get::<_, Option<i64>>(5)?, r.get::<_, Option<f64>>(6)?) {
                (Some(article), Some(similarity)) => Some(Joined {
                    article,
                    similarity,
                }),
                _ => None,
            };
            Ok(StoryArticle {
                article_id: r.get(0)?,
                feed: r.get(1)?,
                title: r.get(2)?,
                link: r.get(3)?,
                first_seen_at: timestamp(r.get(4)?),
                joined,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The stored story an article seen at `at` would join, without storing anything.
    pub fn guess_story(
        &mut self,
        sketch: &Sketch,
        at: DateTime<Utc>,
        params: &StoryParams,
    ) -> Result<Option<StoryGuess>, StoreError> {
        let window = self.stories.get(&self.conn, params)?;
        let Some(placement) = find(&self.conn, window, sketch, at)? else {
            return Ok(None);
        };
        let Some(joined) = placement.joined else {
            return Ok(None);
        };
        let title = self
            .conn
            .query_row(
                "SELECT title FROM articles WHERE id = ?1",
                params![joined.article],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or_default();
        Ok(Some(StoryGuess {
            story: placement.id,
            joined,
            title,
        }))
    }

    /// Forgets the sketches of articles first seen before `cutoff` (the story window ago):
    /// what stays is what new articles are compared with. Returns how many went.
    pub fn prune_stories(&mut self, cutoff: DateTime<Utc>) -> Result<usize, StoreError> {
        // Sketches are stored in order of article id and so, but for the seconds between the
        // polls of one commit, of time: those before the first one within the window go,
        // found without an index over times. One a little out of order stays until the next
        // prune, and the window compares it with nothing meanwhile.
        let gone = self.conn.execute(
            "DELETE FROM story_sketches WHERE article_id < IFNULL(
               (SELECT article_id FROM story_sketches WHERE seen_at >= ?1
                ORDER BY article_id LIMIT 1),
               9223372036854775807)",
            params![cutoff.timestamp()],
        )?;
        if gone > 0 {
            self.stories.forget();
        }
        Ok(gone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{Alert, FeedRef};
    use crate::dedup::identify;
    use crate::parse::Article;
    use crate::store::{FeedId, NewEntry, PollWrite, RaisedAlert};
    use crate::story;

    const LEAD: &str = "NATO leaders said Tuesday that Ukraine will be invited to join the \
        military alliance when allies agree and conditions are met, but stopped short of \
        offering a timeline, a decision that drew sharp criticism from President Zelenskyy.";

    fn entry(feed: &str, guid: &str, title: &str, summary: &str, per_story: bool) -> NewEntry {
        let article = Article {
            guid: Some(guid.into()),
            title: title.into(),
            summary: summary.into(),
            link: Some(format!("https://{feed}.example/{guid}")),
            ..Article::default()
        };
        let identity = identify(&article);
        let alert = Alert::new(
            "nato",
            FeedRef {
                name: feed.into(),
                url: format!("http://{feed}/"),
                title: feed.into(),
            },
            &article,
            &identity.id,
            vec!["NATO".into()],
            Utc::now(),
        );
        NewEntry {
            sketch: story::sketch_article(&article),
            article,
            identity,
            alerts: vec![RaisedAlert {
                alert,
                notifiers: vec!["hook".into()],
                per_story,
            }],
        }
    }

    fn write(feed: FeedId, url: &str, new: Vec<NewEntry>, now: DateTime<Utc>) -> PollWrite {
        PollWrite {
            new,
            ..PollWrite::empty(feed, url, now)
        }
    }

    fn feeds(store: &mut Store) -> (FeedId, FeedId, FeedId) {
        let ids = store
            .sync_feeds([("http://a/", "a"), ("http://b/", "b"), ("http://c/", "c")])
            .unwrap();
        (ids["http://a/"], ids["http://b/"], ids["http://c/"])
    }

    fn alerts(store: &Store) -> Vec<Alert> {
        store
            .matches(100)
            .unwrap()
            .into_iter()
            .map(|m| m.alert)
            .collect()
    }

    #[test]
    fn one_story_from_two_feeds_in_one_commit_alerts_once_with_both_sources() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("fw.db")).unwrap();
        let (a, b, _) = feeds(&mut store);
        let now = Utc::now();
        let writes = [
            write(
                a,
                "http://a/",
                vec![entry("a", "1", "NATO invites Ukraine", LEAD, true)],
                now,
            ),
            write(
                b,
                "http://b/",
                vec![entry("b", "9", "Zelenskyy angry at NATO", LEAD, true)],
                now,
            ),
        ];
        let stats = store.commit_polls(&writes).unwrap();
        assert_eq!(stats[0].as_ref().unwrap().new_alerts, 1);
        let second = stats[1].as_ref().unwrap();
        assert_eq!((second.new_alerts, second.joined_alerts), (0, 1));
        let alerts = alerts(&store);
        assert_eq!(alerts.len(), 1);
        let story = alerts[0].story.clone().unwrap();
        let feeds: Vec<&str> = story.sources.iter().map(|s| s.feed.as_str()).collect();
        assert_eq!(feeds, ["a", "b"]);
        let members = store.story(story.id).unwrap();
        assert_eq!(members.len(), 2);
        let similarity = members[1].joined.unwrap().similarity;
        assert!(similarity >= story::DEFAULT_THRESHOLD, "{similarity}");
    }

    #[test]
    fn a_rule_with_per_story_off_alerts_for_every_article() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("fw.db")).unwrap();
        let (a, b, _) = feeds(&mut store);
        let now = Utc::now();
        let writes = [
            write(
                a,
                "http://a/",
                vec![entry("a", "1", "NATO invites Ukraine", LEAD, false)],
                now,
            ),
            write(
                b,
                "http://b/",
                vec![entry("b", "9", "NATO invites Ukraine", LEAD, false)],
                now,
            ),
        ];
        store.commit_polls(&writes).unwrap();
        assert_eq!(alerts(&store).len(), 2);
    }

    #[test]
    fn an_article_after_the_window_starts_a_new_story_and_alerts_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("fw.db")).unwrap();
        let (a, b, c) = feeds(&mut store);
        let t0 = Utc::now();
        let first = write(
            a,
            "http://a/",
            vec![entry("a", "1", "NATO", LEAD, true)],
            t0,
        );
        store.commit_polls(&[first]).unwrap();
        let t1 = t0 + chrono::Duration::hours(47);
        let within = write(
            b,
            "http://b/",
            vec![entry("b", "2", "NATO", LEAD, true)],
            t1,
        );
        store.commit_polls(&[within]).unwrap();
        assert_eq!(alerts(&store).len(), 1);
        // Pruned or not, a sketch older than the window is not compared.
        let t2 = t1 + chrono::Duration::hours(49);
        let after = write(
            c,
            "http://c/",
            vec![entry("c", "3", "NATO", LEAD, true)],
            t2,
        );
        store.commit_polls(&[after]).unwrap();
        assert_eq!(alerts(&store).len(), 2);
        assert_eq!(
            store
                .prune_stories(t2 - chrono::Duration::hours(48))
                .unwrap(),
            2
        );
        // The index is built again from the one sketch left.
        let params = StoryParams::default();
        assert_eq!(store.stories.get(&store.conn, &params).unwrap().len(), 1);
        assert_eq!(
            store
                .prune_stories(t2 + chrono::Duration::hours(1))
                .unwrap(),
            1
        );
    }

    #[test]
    fn a_story_outlives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fw.db");
        let t0 = Utc::now();
        {
            let mut store = Store::open(&path).unwrap();
            let (a, _, _) = feeds(&mut store);
            let first = write(
                a,
                "http://a/",
                vec![entry("a", "1", "NATO", LEAD, true)],
                t0,
            );
            store.commit_polls(&[first]).unwrap();
        }
        let mut store = Store::open(&path).unwrap();
        let (_, b, _) = feeds(&mut store);
        let copy = write(
            b,
            "http://b/",
            vec![entry("b", "2", "NATO", LEAD, true)],
            t0 + chrono::Duration::hours(1),
        );
        store.commit_polls(&[copy]).unwrap();
        assert_eq!(alerts(&store).len(), 1);
        let story = store.story(1).unwrap();
        assert_eq!(story.len(), 2);
        assert_eq!(story[1].joined.map(|j| j.article), Some(1));
    }

    #[test]
    fn articles_without_text_never_join_a_story() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("fw.db")).unwrap();
        let (a, b, _) = feeds(&mut store);
        let now = Utc::now();
        let writes = [
            write(a, "http://a/", vec![entry("a", "1", "", "", true)], now),
            write(b, "http://b/", vec![entry("b", "2", "", "", true)], now),
        ];
        store.commit_polls(&writes).unwrap();
        assert_eq!(alerts(&store).len(), 2);
    }
}

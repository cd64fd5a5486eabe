//! The database schema, as an append-only list of migration steps.

/// Schema steps, applied in order; the database's `user_version` is how many have run.
/// Append only: never edit a step that has shipped.
pub(super) const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE feeds (
    id                   INTEGER PRIMARY KEY,
    url                  TEXT NOT NULL UNIQUE,
    name                 TEXT NOT NULL,
    title                TEXT,
    etag                 TEXT,
    last_modified        TEXT,
    next_poll_at         INTEGER,
    last_attempt_at      INTEGER,
    last_success_at      INTEGER,
    last_status          INTEGER,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    last_error           TEXT
) STRICT;

CREATE TABLE articles (
    id             INTEGER PRIMARY KEY,
    feed_id        INTEGER NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
    identity       TEXT NOT NULL,
    canonical_link TEXT,
    guid           TEXT,
    title          TEXT NOT NULL,
    link           TEXT,
    published      INTEGER,
    summary        TEXT NOT NULL,
    content        TEXT NOT NULL,
    first_seen_at  INTEGER NOT NULL,
    UNIQUE (feed_id, identity)
) STRICT;
CREATE INDEX articles_by_link ON articles (feed_id, canonical_link);

CREATE TABLE alerted (
    rule       TEXT NOT NULL,
    alert_key  TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (rule, alert_key)
) STRICT, WITHOUT ROWID;

CREATE TABLE matches (
    id         INTEGER PRIMARY KEY,
    rule       TEXT NOT NULL,
    article_id INTEGER REFERENCES articles(id) ON DELETE SET NULL,
    alert      TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX matches_by_time ON matches (created_at);

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    delivery_id     TEXT NOT NULL UNIQUE,
    match_id        INTEGER NOT NULL REFERENCES matches(id),
    notifier        TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER
) STRICT;
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
"#,
    // Retention: when an article was last present in its feed.
    r#"
ALTER TABLE articles ADD COLUMN last_seen_at INTEGER;
UPDATE articles SET last_seen_at = first_seen_at;
CREATE INDEX articles_by_last_seen ON articles (last_seen_at);
"#,
    // Feed health: where a feed moved to (301/308), when it was declared gone (410), and when
    // a poll last found only new items (so some were probably missed between polls).
    r#"
ALTER TABLE feeds ADD COLUMN moved_to TEXT;
ALTER TABLE feeds ADD COLUMN gone_at INTEGER;
ALTER TABLE feeds ADD COLUMN missed_items_at INTEGER;
ALTER TABLE feeds ADD COLUMN suggested_interval INTEGER;
"#,
    // Cooldowns ask when a (notifier, rule) last delivered.
    r#"
CREATE INDEX outbox_delivered ON outbox (notifier, delivered_at) WHERE status = 'delivered';
"#,
    // Full-text index over the archive for `feedwatch search`. External content: the text lives
    // once, in `articles`; triggers keep the index in step and `rebuild` indexes older rows.
    r#"
CREATE VIRTUAL TABLE articles_fts USING fts5(
    title, summary, content,
    content = 'articles', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER articles_fts_insert AFTER INSERT ON articles BEGIN
    INSERT INTO articles_fts (rowid, title, summary, content)
    VALUES (new.id, new.title, new.summary, new.content);
END;
CREATE TRIGGER articles_fts_delete AFTER DELETE ON articles BEGIN
    INSERT INTO articles_fts (articles_fts, rowid, title, summary, content)
    VALUES ('delete', old.id, old.title, old.summary, old.content);
END;
CREATE TRIGGER articles_fts_update AFTER UPDATE OF title, summary, content ON articles BEGIN
    INSERT INTO articles_fts (articles_fts, rowid, title, summary, content)
    VALUES ('delete', old.id, old.title, old.summary, old.content);
    INSERT INTO articles_fts (rowid, title, summary, content)
    VALUES (new.id, new.title, new.summary, new.content);
END;
INSERT INTO articles_fts (articles_fts) VALUES ('rebuild');
"#,
    // Digests: the rows sent together as one message share a digest id, written before the
    // send, so a retry or a resend after a crash carries the same members under the same id.
    r#"
ALTER TABLE outbox ADD COLUMN digest_id TEXT;
CREATE INDEX outbox_by_digest ON outbox (digest_id) WHERE digest_id IS NOT NULL;
"#,
    // Articles are indexed by one statement per commit (`search::index_articles_after`), not
    // per row: FTS5 flushes its in-memory index at every statement savepoint, so the trigger
    // wrote a tiny index segment for each article and then spent its time merging them.
    r#"
DROP TRIGGER articles_fts_insert;
"#,
    // FTS5 merges index segments once 16 (not 4) pile up at a level: each commit adds one, and
    // merging every 4 was about a seventh of the CPU of storing a thousand new feeds, for a
    // small cost to searches (more segments to visit between merges).
    r#"
INSERT INTO articles_fts (articles_fts, rank) VALUES ('automerge', 16);
"#,
    // The RSS `<ttl>` a feed last sent, in seconds: the shortest interval it asks to be polled at.
    r#"
ALTER TABLE feeds ADD COLUMN ttl INTEGER;
"#,
    // Articles join the search index in large batches once polling goes quiet, not in each
    // poll's commit (`Store::index_for_search`): tokenizing and merging index segments was a
    // fifth of the work of storing a thousand new feeds, all of it on the one committer.
    // `indexed_through` is the highest article id in the index; every id up to it is indexed.
    // A deleted article leaves the index only if it was in it, and when the newest articles
    // go, the mark comes down with them, so that the ids SQLite hands out again (the highest
    // plus one) are indexed when they are reused.
    r#"
CREATE TABLE search_progress (indexed_through INTEGER NOT NULL) STRICT;
-- A batch of thousands of articles overflows FTS5's default 1 MB of pending index, and each
-- overflow writes another segment to merge; 4 MB keeps a batch in one (about 15% less work).
INSERT INTO articles_fts (articles_fts, rank) VALUES ('hashsize', 4194304);
INSERT INTO search_progress VALUES ((SELECT COALESCE(MAX(id), 0) FROM articles));
DROP TRIGGER articles_fts_delete;
CREATE TRIGGER articles_fts_delete AFTER DELETE ON articles BEGIN
    INSERT INTO articles_fts (articles_fts, rowid, title, summary, content)
    SELECT 'delete', old.id, old.title, old.summary, old.content
    WHERE old.id <= (SELECT indexed_through FROM search_progress);
    UPDATE search_progress SET indexed_through = (SELECT COALESCE(MAX(id), 0) FROM articles)
    WHERE indexed_through > (SELECT COALESCE(MAX(id), 0) FROM articles);
END;
DROP TRIGGER articles_fts_update;
CREATE TRIGGER articles_fts_update AFTER UPDATE OF title, summary, content ON articles
WHEN old.id <= (SELECT indexed_through FROM search_progress) BEGIN
    INSERT INTO articles_fts (articles_fts, rowid, title, summary, content)
    VALUES ('delete', old.id, old.title, old.summary, old.content);
    INSERT INTO articles_fts (rowid, title, summary, content)
    VALUES (new.id, new.title, new.summary, new.content);
END;
"#,
    // The search index moves to a file of its own (`search.rs`), filled on a thread of its own
    // without taking this database's write lock from the polls. Deleted and edited articles are
    // queued here for it, and `store_identity` tells it which database it indexes.
    r#"
DROP TRIGGER articles_fts_delete;
DROP TRIGGER articles_fts_update;
DROP TABLE articles_fts;
DROP TABLE search_progress;
-- AUTOINCREMENT: the index remembers the last entry it took, so numbers are never reused.
CREATE TABLE search_removed (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    article_id INTEGER NOT NULL
) STRICT;
CREATE TRIGGER search_removed_on_delete AFTER DELETE ON articles BEGIN
    INSERT INTO search_removed (article_id) VALUES (old.id);
END;
CREATE TRIGGER search_removed_on_edit AFTER UPDATE OF title, summary, content ON articles BEGIN
    INSERT INTO search_removed (article_id) VALUES (old.id);
END;
CREATE TABLE store_identity (token TEXT NOT NULL) STRICT;
INSERT INTO store_identity VALUES (lower(hex(randomblob(16))));
"#,
    // A feed stores a story once by its canonical link as well as by its identity, and the
    // insert itself now skips either: a unique index does the lookup that ran before each
    // insert, a fiftieth of a cold poll's work and all of it on the one committer. Copies
    // that could have been stored before that lookup existed go first, the oldest kept.
    r#"
DELETE FROM articles
WHERE canonical_link IS NOT NULL
  AND id NOT IN (SELECT MIN(id) FROM articles WHERE canonical_link IS NOT NULL
                 GROUP BY feed_id, canonical_link);
DROP INDEX articles_by_link;
CREATE UNIQUE INDEX articles_by_link ON articles (feed_id, canonical_link);
"#,
    // Each outbox row names its rule, so that what a (notifier, rule) line waits behind (its
    // rows that failed and wait for a retry) is found through an index: choosing the next due
    // rows looked at every pending row for each candidate, and a backlog took the square of its
    // size to drain. The table is rebuilt for the rule to be NOT NULL; a row whose match is
    // missing stops the migration rather than being dropped.
    r#"
CREATE TABLE outbox_lined (
    id              INTEGER PRIMARY KEY,
    delivery_id     TEXT NOT NULL UNIQUE,
    match_id        INTEGER NOT NULL REFERENCES matches(id),
    notifier        TEXT NOT NULL,
    rule            TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER,
    digest_id       TEXT
) STRICT;
INSERT INTO outbox_lined (id, delivery_id, match_id, notifier, rule, status, attempts,
                          next_attempt_at, last_error, created_at, delivered_at, digest_id)
SELECT id, delivery_id, match_id, notifier, (SELECT rule FROM matches WHERE id = match_id),
       status, attempts, next_attempt_at, last_error, created_at, delivered_at, digest_id
FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_lined RENAME TO outbox;
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_delivered ON outbox (notifier, delivered_at) WHERE status = 'delivered';
CREATE INDEX outbox_by_digest ON outbox (digest_id) WHERE digest_id IS NOT NULL;
-- The walk through what is due, by id, visits pending rows only.
CREATE INDEX outbox_pending ON outbox (id) WHERE status = 'pending';
-- What a line waits behind: its pending rows after a failed attempt.
CREATE INDEX outbox_waited_on ON outbox (notifier, rule, id)
WHERE status = 'pending' AND attempts > 0;
-- When a line last delivered, for cooldowns.
CREATE INDEX outbox_line_delivered ON outbox (notifier, rule, delivered_at)
WHERE status = 'delivered';
"#,
    // The pause a server imposed on a feed (`Retry-After`, `Cache-Control: max-age`, RSS `<ttl>`)
    // and why, apart from `next_poll_at`: `run --once` polls every feed, but not before this.
    r#"
ALTER TABLE feeds ADD COLUMN wait_until INTEGER;
ALTER TABLE feeds ADD COLUMN wait_reason TEXT;
"#,
    // Stories: the same news from several feeds alerts once per rule. Each article placed within
    // the story window keeps its sketch (`story.rs`) and the keys of its bands, which find the
    // stored articles it may be a copy of; `story_id` is the story's first article (an
    // article without one is the first of its own). Matches name their story, so a later
    // article of it is added to the match's sources instead of alerting again.
    r#"
ALTER TABLE articles ADD COLUMN story_id INTEGER;
CREATE INDEX articles_by_story ON articles (story_id) WHERE story_id IS NOT NULL;
ALTER TABLE matches ADD COLUMN story_id INTEGER;
CREATE INDEX matches_by_story ON matches (story_id, rule) WHERE story_id IS NOT NULL;
CREATE TABLE story_sketches (
    article_id INTEGER PRIMARY KEY,
    story_id   INTEGER NOT NULL,
    -- What the story's alerts are recorded under in `alerted`: unique for ever, unlike ids.
    story_key  TEXT NOT NULL,
    -- The stored article this one was most like when it joined, and how alike.
    joined_to  INTEGER,
    similarity REAL,
    seen_at    INTEGER NOT NULL,
    exact      INTEGER NOT NULL,
    sketch     BLOB NOT NULL
) STRICT;
CREATE INDEX story_sketches_by_exact ON story_sketches (exact);
CREATE INDEX story_sketches_by_time ON story_sketches (seen_at);
CREATE TABLE story_bands (
    band       INTEGER NOT NULL,
    article_id INTEGER NOT NULL,
    PRIMARY KEY (band, article_id)
) STRICT, WITHOUT ROWID;
"#,
    // An article's files and picture (podcast audio, video, `media:thumbnail`), as JSON.
    r#"
ALTER TABLE articles ADD COLUMN enclosures TEXT;
ALTER TABLE articles ADD COLUMN thumbnail TEXT;
"#,
    // Story candidates are found in memory (`story::BandIndex`), built from the sketches.
    // Sketches are made with other hash functions now: those stored before cannot be
    // compared, so their articles stay stories of their own.
    r#"
DELETE FROM story_sketches;
DROP TABLE story_bands;
DROP INDEX story_sketches_by_exact;
"#,
    // When a feed's body was last read: its articles then are those it still lists while it
    // answers 304, so pruning keeps them however long the feed stays unchanged.
    r#"
ALTER TABLE feeds ADD COLUMN listed_at INTEGER;
UPDATE feeds SET listed_at = (SELECT MAX(last_seen_at) FROM articles
                              WHERE articles.feed_id = feeds.id);
"#,
    // Pruning finds old sketches by article id (`Store::prune_stories`): an index over their
    // times only cost every stored article an insert.
    r#"
DROP INDEX story_sketches_by_time;
"#,
    // The hash of the body a feed's last read came from: a server that ignores conditional
    // requests and sends it again costs no parse.
    r#"
ALTER TABLE feeds ADD COLUMN body_digest TEXT;
"#,
    // What each feed listed when its body was last read (`listings.rs`): the items read
    // before are not parsed again.
    r#"
CREATE TABLE listings (
    feed_id INTEGER PRIMARY KEY REFERENCES feeds(id) ON DELETE CASCADE,
    items   BLOB NOT NULL
) STRICT;
"#,
    // Deliveries not yet written into their outbox rows (`Store::mark_all_delivered`): a mark
    // is one row appended here, where changing the outbox row rewrote it and four of its
    // indexes at every alert. Queries count a row here as delivered; `Store::fold_sent` writes
    // them into the outbox, many in one transaction.
    r#"
CREATE TABLE outbox_sent (
    id           INTEGER PRIMARY KEY,  -- the outbox row's
    delivered_at INTEGER NOT NULL
) STRICT;
"#,
];

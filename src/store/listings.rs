//! What each feed listed when its body was last read: every item's digest, with the stored
//! article it stands for and when that article was last marked as in the feed. A poll leaves
//! these items out of its parse (`parse::parse_unread`) and marks their articles from here,
//! with no lookup. It is a cache: an item missing from it is parsed and looked up as before,
//! so an entry is recorded only where its article is sure.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::articles::TOUCH_EVERY;
use super::{FeedId, Store, StoreError};
use crate::parse::ItemDigest;

/// An item a feed listed, and its article.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listed {
    pub digest: ItemDigest,
    pub article: i64,
    /// When the article was last marked as in the feed (Unix seconds).
    pub marked_at: i64,
}

impl Listed {
    /// Whether its article is due a new last-seen mark at `now` (see `articles::touch`).
    pub fn stale(&self, now: DateTime<Utc>) -> bool {
        self.marked_at < now.timestamp() - TOUCH_EVERY
    }
}

/// A feed's listed items, ordered by digest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing(Vec<Listed>);

/// Bytes an item takes in the stored listing: its digest, its article's id and its mark.
const ENTRY: usize = 16 + 8 + 8;

impl Listing {
    pub fn get(&self, digest: &ItemDigest) -> Option<&Listed> {
        self.0
            .binary_search_by(|listed| listed.digest.cmp(digest))
            .ok()
            .map(|i| &self.0[i])
    }

    /// Whether a new listing of `items` would be this one.
    pub fn holds(&self, items: &[ListedItem]) -> bool {
        let stored: Option<Vec<Listed>> = items
            .iter()
            .map(|item| match item {
                ListedItem::Stored(listed) => Some(*listed),
                ListedItem::New { .. } => None,
            })
            .collect();
        stored.is_some_and(|stored| Listing::from(stored) == *self)
    }

    /// A listing read back; one in another layout is none (its items are parsed again).
    pub(super) fn decode(bytes: &[u8]) -> Listing {
        if !bytes.len().is_multiple_of(ENTRY) {
            return Listing::default();
        }
        let number = |b: &[u8]| i64::from_le_bytes(b.try_into().unwrap_or_default());
        Listing::from(
            bytes
                .chunks_exact(ENTRY)
                .map(|entry| {
                    let mut digest = [0; 16];
                    digest.copy_from_slice(&entry[..16]);
                    Listed {
                        digest: ItemDigest(digest),
                        article: number(&entry[16..24]),
                        marked_at: number(&entry[24..]),
                    }
                })
                .collect::<Vec<_>>(),
        )
    }

    fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.0.len() * ENTRY);
        for listed in &self.0 {
            bytes.extend_from_slice(&listed.digest.0);
            bytes.extend_from_slice(&listed.article.to_le_bytes());
            bytes.extend_from_slice(&listed.marked_at.to_le_bytes());
        }
        bytes
    }
}

impl From<Vec<Listed>> for Listing {
    fn from(mut items: Vec<Listed>) -> Listing {
        items.sort_by_key(|listed| listed.digest);
        items.dedup_by_key(|listed| listed.digest);
        Listing(items)
    }
}

impl Store {
    /// What `feed` listed when its body was last read.
    pub fn listing(&self, feed: FeedId) -> Result<Listing, StoreError> {
        let items: Option<Vec<u8>> = self
            .conn
            .prepare_cached("SELECT items FROM listings WHERE feed_id = ?1")?
            .query_row([feed], |r| r.get(0))
            .optional()?;
        Ok(items
            .map(|items| Listing::decode(&items))
            .unwrap_or_default())
    }
}

/// An item of a poll's new listing. A new article has no id until it is stored: its item
/// names it by its place among the poll's new entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListedItem {
    Stored(Listed),
    New { digest: ItemDigest, entry: usize },
}

/// Replaces a feed's listing with `items` (the new entries' ids in `article_ids`), inside
/// the poll's transaction. An item whose new entry was not stored, or whose article is `gone`,
/// is left out.
pub(super) fn record(
    conn: &Connection,
    feed: FeedId,
    items: &[ListedItem],
    article_ids: &[Option<i64>],
    gone: &[i64],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if items.is_empty() {
        conn.prepare_cached("DELETE FROM listings WHERE feed_id = ?1")?
            .execute([feed])?;
        return Ok(());
    }
    let listing = Listing::from(
        items
            .iter()
            .filter_map(|item| match *item {
                ListedItem::Stored(listed) => (!gone.contains(&listed.article)).then_some(listed),
                ListedItem::New { digest, entry } => {
                    article_ids
                        .get(entry)
                        .copied()
                        .flatten()
                        .map(|article| Listed {
                            digest,
                            article,
                            marked_at: now.timestamp(),
                        })
                }
            })
            .collect::<Vec<_>>(),
    );
    conn.prepare_cached("INSERT OR REPLACE INTO listings (feed_id, items) VALUES (?1, ?2)")?
        .execute(params![feed, listing.encode()])?;
    Ok(())
}

/// Marks `articles` of `feed` as still in it (see `articles::touch`): listed items the poll
/// left out, whose marks were due. Returns those no longer stored, whose items are then left
/// off the listing and parsed again.
pub(super) fn touch(
    conn: &Connection,
    feed: FeedId,
    articles: &[i64],
    now: DateTime<Utc>,
) -> Result<Vec<i64>, StoreError> {
    let mut touch = conn
        .prepare_cached("UPDATE articles SET last_seen_at = ?3 WHERE id = ?1 AND feed_id = ?2")?;
    let mut gone = Vec::new();
    for &article in articles {
        if touch.execute(params![article, feed, now.timestamp()])? == 0 {
            gone.push(article);
        }
    }
    Ok(gone)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listing_reads_back_as_written_and_finds_its_items() {
        let listed = |byte: u8, article| Listed {
            digest: ItemDigest([byte; 16]),
            article,
            marked_at: 1_700_000_000 + article,
        };
        let listing = Listing::from(vec![listed(9, 1), listed(3, 2), listed(3, 2), listed(5, 3)]);
        assert_eq!(Listing::decode(&listing.encode()), listing);
        assert_eq!(listing.get(&ItemDigest([5; 16])), Some(&listed(5, 3)));
        assert_eq!(listing.get(&ItemDigest([4; 16])), None);
        assert_eq!(Listing::decode(&[1, 2, 3]), Listing::default());
        let again: Vec<ListedItem> = [listed(5, 3), listed(3, 2), listed(9, 1)]
            .map(ListedItem::Stored)
            .to_vec();
        assert!(listing.holds(&again));
        assert!(!listing.holds(&again[1..]));
        let marked = ListedItem::Stored(Listed {
            marked_at: 1,
            ..listed(5, 3)
        });
        assert!(!listing.holds(&[marked, again[1], again[2]]));
        let new = ListedItem::New {
            digest: ItemDigest([5; 16]),
            entry: 0,
        };
        assert!(!listing.holds(&[new, again[1], again[2]]));
        assert!(Listing::default().holds(&[]));
    }
}

//! The lookup from a sketch to the recent articles it may be a copy of: for each band key and
//! exact-copy hash, the newest article that had it. Held in memory, so that placing an article
//! costs a few hash probes whatever the window holds. [`super::Window`] keeps one over its
//! articles.

use super::key_table::KeyTable;
use super::{MAX_CANDIDATES, Sketch, bands, mix};

/// Band keys and exact-copy hashes -> the newest article with each, as a number the owner
/// gives (a window's sequence number).
///
/// Keys and articles are cut to 32 bits: 8 to 16 bytes for each of the 17 keys of an article.
/// A key collision only adds a candidate, which the comparison of sketches turns down. Keys of
/// articles that left the window stay until the owner rebuilds the index; their candidates
/// are dropped when they are looked up (the owner knows which articles are still in).
#[derive(Debug, Default)]
pub struct BandIndex {
    newest: KeyTable,
}

impl BandIndex {
    /// The articles `sketch` may be a copy of, at most [`MAX_CANDIDATES`], oldest first: the
    /// exact copy first, then band by band. Only the newest article of each band is kept:
    /// when a band is shared by many copies of one story, any of them finds the story.
    pub fn candidates(&self, sketch: &Sketch) -> Vec<u32> {
        let mut found = Vec::with_capacity(MAX_CANDIDATES);
        let keys = keys(sketch);
        self.newest.prefetch(&keys);
        for key in keys {
            if let Some(article) = self.newest.get(key)
                && !found.contains(&article)
            {
                found.push(article);
                if found.len() == MAX_CANDIDATES {
                    break;
                }
            }
        }
        found.sort_unstable();
        found
    }

    /// Records `article` as the newest with each of the sketch's keys.
    pub fn insert(&mut self, sketch: &Sketch, article: u32) {
        for key in keys(sketch) {
            self.newest.insert(key, article);
        }
    }

    /// Records `article` as the newest with each of the sketch's keys, and gives the articles
    /// that were: [`BandIndex::candidates`] then [`BandIndex::insert`], in one probe per key.
    pub fn replace(&mut self, sketch: &Sketch, article: u32) -> Vec<u32> {
        let mut found = Vec::with_capacity(MAX_CANDIDATES);
        let keys = keys(sketch);
        self.newest.prefetch(&keys);
        for key in keys {
            // A key the sketch has twice gives back the article itself the second time.
            if let Some(old) = self.newest.insert(key, article)
                && old != article
                && found.len() < MAX_CANDIDATES
                && !found.contains(&old)
            {
                found.push(old);
            }
        }
        found.sort_unstable();
        found
    }

    /// How many keys it holds, including those of articles gone from the window.
    pub fn len(&self) -> usize {
        self.newest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.newest.len() == 0
    }
}

/// Keys an article is indexed under, for every article this many.
pub const KEYS_PER_ARTICLE: usize = super::BANDS + 1;

/// The exact-copy hash, then the band keys. Band keys are already mixed and distinct per band;
/// the exact hash is mixed with a tag of its own so it never meets a band key by design.
fn keys(sketch: &Sketch) -> [u32; KEYS_PER_ARTICLE] {
    let mut keys = [0; KEYS_PER_ARTICLE];
    keys[0] = mix(sketch.exact as u64 ^ 0x0e8a_c7c0_9e00_0000) as u32;
    for (key, band) in keys[1..].iter_mut().zip(bands(sketch)) {
        *key = band as u32;
    }
    keys
}

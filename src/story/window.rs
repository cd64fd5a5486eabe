//! Recent sketches in memory, for placing articles in stories without a database: `backtest`
//! and the tests. The store does the same with the sketches in its tables
//! (`store::stories`), over the same [`BandIndex`] and [`best_match`].

use std::collections::VecDeque;

use chrono::{DateTime, Utc};

use super::index::{BandIndex, KEYS_PER_ARTICLE};
use super::{HASHES, Joined, Sketch, StoryParams, best_match};

/// Articles a window holds at most: a window with more (over a hundred thousand articles that
/// raise alerts within the story window) compares new articles with the newest this many. An
/// article takes 152 bytes here and 8 bytes a slot for each of its 17 index keys, in a table a
/// quarter to three quarters full that keeps the keys of articles gone for a while: 55 MB or
/// so at most.
pub const MAX_ARTICLES: usize = 100_000;

/// Articles seen within the window, their sketches and stories.
#[derive(Debug)]
pub struct Window<K> {
    params: StoryParams,
    /// Oldest first; `first` is the sequence number of the front.
    entries: VecDeque<Entry<K>>,
    first: u32,
    /// Sequence numbers by band and exact-copy hash.
    index: BandIndex,
}

#[derive(Debug)]
struct Entry<K> {
    key: K,
    story: K,
    at: DateTime<Utc>,
    sketch: Option<Sketch>,
}

impl<K> Entry<K> {
    /// Reads what a comparison reads, a few bytes in each of the entry's cache lines, for
    /// its misses to overlap with those of the other candidates.
    fn touch(&self) {
        let sketch = self.sketch.as_ref();
        // Bins no further apart than a cache line, the first and the last.
        let mins = sketch.map(|s| (s.exact, s.mins[0], s.mins[HASHES / 2], s.mins[HASHES - 1]));
        std::hint::black_box((self.at, mins));
    }
}

/// Where an article went: the story it is in (the key of the story's first article) and, if
/// it joined one, the article it is most like.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placed<K> {
    pub story: K,
    pub joined: Option<Joined<K>>,
}

impl<K: Copy> Window<K> {
    pub fn new(params: StoryParams) -> Window<K> {
        Window {
            params,
            entries: VecDeque::new(),
            first: 0,
            index: BandIndex::default(),
        }
    }

    /// The story of an article seen at `at`, without recording it.
    pub fn find(&self, sketch: &Sketch, at: DateTime<Utc>) -> Option<(K, Joined<K>)> {
        self.best(sketch, self.index.candidates(sketch), at)
    }

    /// Places an article seen at `at` (articles come in order of time) in its story and
    /// records it; articles older than the window are let go first.
    pub fn place(&mut self, key: K, sketch: Option<Sketch>, at: DateTime<Utc>) -> Placed<K> {
        self.expire(window_start(at, &self.params));
        // One probe of the index per key finds the candidates and records the article.
        let found = sketch.as_ref().and_then(|s| {
            let candidates = self.index.replace(s, self.next_seq());
            self.best(s, candidates, at)
        });
        let placed = match found {
            Some((story, joined)) => Placed {
                story,
                joined: Some(joined),
            },
            None => Placed {
                story: key,
                joined: None,
            },
        };
        self.push(key, placed.story, sketch, at);
        placed
    }

    /// Records an article placed in `story` already, for the articles after it; articles older
    /// than the window, and the oldest beyond [`MAX_ARTICLES`], are let go first.
    pub fn record(&mut self, key: K, story: K, sketch: Option<Sketch>, at: DateTime<Utc>) {
        self.expire(window_start(at, &self.params));
        if let Some(s) = &sketch {
            self.index.insert(s, self.next_seq());
        }
        self.push(key, story, sketch, at);
    }

    /// Takes up what [`StoryParams`] say from now on (a reloaded config).
    pub fn set_params(&mut self, params: StoryParams) {
        self.params = params;
    }

    /// How many articles the window holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The candidate at or above the threshold `sketch` is most like, with its story.
    fn best(
        &self,
        sketch: &Sketch,
        candidates: Vec<u32>,
        at: DateTime<Utc>,
    ) -> Option<(K, Joined<K>)> {
        if self.params.window.is_zero() {
            return None;
        }
        let since = window_start(at, &self.params);
        // The candidates lie anywhere in megabytes of entries: their loads start together, so
        // that their cache misses overlap instead of coming one after another.
        for &seq in &candidates {
            if let Some(entry) = self.entry(seq) {
                entry.touch();
            }
        }
        let candidates = candidates.into_iter().filter_map(|seq| {
            let entry = self.entry(seq)?;
            let other = entry.sketch.as_ref()?;
            // Not "at or before `at`": the store's polls record their own times, which need
            // not come in order within one commit.
            (entry.at >= since).then_some((seq, other))
        });
        let joined = best_match(sketch, candidates, self.params.threshold)?;
        let entry = self.entry(joined.article)?;
        Some((
            entry.story,
            Joined {
                article: entry.key,
                similarity: joined.similarity,
            },
        ))
    }

    /// The sequence number of the next article recorded.
    fn next_seq(&self) -> u32 {
        self.first.wrapping_add(self.entries.len() as u32)
    }

    /// Adds an article whose keys are in the index already, letting the oldest go beyond
    /// [`MAX_ARTICLES`] (its sequence number stays the one it was indexed under).
    fn push(&mut self, key: K, story: K, sketch: Option<Sketch>, at: DateTime<Utc>) {
        if self.entries.len() >= MAX_ARTICLES {
            self.entries.pop_front();
            self.first = self.first.wrapping_add(1);
        }
        self.entries.push_back(Entry {
            key,
            story,
            at,
            sketch,
        });
        self.compact();
    }

    /// The entry with sequence number `seq`, if it is still in the window.
    fn entry(&self, seq: u32) -> Option<&Entry<K>> {
        self.entries.get(seq.wrapping_sub(self.first) as usize)
    }

    fn expire(&mut self, before: DateTime<Utc>) {
        while self.entries.front().is_some_and(|e| e.at < before) {
            self.entries.pop_front();
            self.first = self.first.wrapping_add(1);
        }
    }

    /// Builds the index again once the keys of articles gone reach three quarters of those of
    /// the ones in: a full window's table (4M slots) then never doubles before it is rebuilt.
    fn compact(&mut self) {
        if self.index.len() <= 7 * KEYS_PER_ARTICLE * self.entries.len() / 4 + 4096 {
            return;
        }
        self.index = BandIndex::default();
        for (offset, entry) in self.entries.iter().enumerate() {
            if let Some(s) = &entry.sketch {
                self.index.insert(s, self.first.wrapping_add(offset as u32));
            }
        }
    }
}

/// The earliest time a story seen at `at` may have been seen at.
pub(crate) fn window_start(at: DateTime<Utc>, params: &StoryParams) -> DateTime<Utc> {
    chrono::Duration::from_std(params.window)
        .ok()
        .and_then(|w| at.checked_sub_signed(w))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

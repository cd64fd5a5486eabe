//! Recent sketches in memory, for placing articles in stories without a database: `preview`,
//! `backtest` and the tests. The store does the same with its tables (`store::stories`), over
//! the same [`bands`] and [`best_match`].

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Utc};

use super::{Joined, MAX_CANDIDATES, Sketch, StoryParams, bands, best_match};

/// Articles seen within the window, their sketches and stories.
#[derive(Debug)]
pub struct Window<K> {
    params: StoryParams,
    /// Oldest first; `first` is the sequence number of the front.
    entries: VecDeque<Entry<K>>,
    first: u64,
    /// Band key -> sequence numbers of the entries with that band, oldest first.
    bands: HashMap<i64, Vec<u64>>,
    exact: HashMap<i64, Vec<u64>>,
}

#[derive(Debug)]
struct Entry<K> {
    key: K,
    story: K,
    at: DateTime<Utc>,
    sketch: Option<Sketch>,
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
            bands: HashMap::new(),
            exact: HashMap::new(),
        }
    }

    /// The story of an article seen at `at`, without recording it.
    pub fn find(&self, sketch: &Sketch, at: DateTime<Utc>) -> Option<(K, Joined<K>)> {
        if self.params.window.is_zero() {
            return None;
        }
        let since = window_start(at, &self.params);
        let mut seen = Vec::new();
        let exact = self.exact.get(&sketch.exact).into_iter().flatten();
        let banded = bands(sketch)
            .into_iter()
            .filter_map(|band| self.bands.get(&band))
            .flatten();
        for &seq in exact.chain(banded) {
            if !seen.contains(&seq) && seen.len() < MAX_CANDIDATES {
                seen.push(seq);
            }
        }
        seen.sort_unstable();
        let candidates = seen.iter().filter_map(|&seq| {
            let entry = self.entries.get(usize::try_from(seq - self.first).ok()?)?;
            let other = entry.sketch.clone()?;
            (entry.at >= since && entry.at <= at).then_some((seq, other))
        });
        let joined = best_match(sketch, candidates, self.params.threshold)?;
        let entry = &self.entries[(joined.article - self.first) as usize];
        Some((
            entry.story,
            Joined {
                article: entry.key,
                similarity: joined.similarity,
            },
        ))
    }

    /// Places an article seen at `at` (articles come in order of time) in its story and
    /// records it; articles older than the window are let go first.
    pub fn place(&mut self, key: K, sketch: Option<Sketch>, at: DateTime<Utc>) -> Placed<K> {
        self.expire(window_start(at, &self.params));
        let found = sketch.as_ref().and_then(|s| self.find(s, at));
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
        let seq = self.first + self.entries.len() as u64;
        if let Some(s) = &sketch {
            for band in bands(s) {
                self.bands.entry(band).or_default().push(seq);
            }
            self.exact.entry(s.exact).or_default().push(seq);
        }
        self.entries.push_back(Entry {
            key,
            story: placed.story,
            at,
            sketch,
        });
        placed
    }

    /// How many articles the window holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn expire(&mut self, before: DateTime<Utc>) {
        while self.entries.front().is_some_and(|e| e.at < before) {
            let Some(entry) = self.entries.pop_front() else {
                break;
            };
            let seq = self.first;
            self.first += 1;
            if let Some(s) = &entry.sketch {
                for band in bands(s) {
                    forget(&mut self.bands, band, seq);
                }
                forget(&mut self.exact, s.exact, seq);
            }
        }
    }
}

/// Takes `seq` off the list under `key`, and the list when it is empty.
fn forget(map: &mut HashMap<i64, Vec<u64>>, key: i64, seq: u64) {
    if let Some(list) = map.get_mut(&key) {
        list.retain(|&x| x != seq);
        if list.is_empty() {
            map.remove(&key);
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

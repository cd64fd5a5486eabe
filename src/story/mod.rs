//! Story identity across feeds: whether a new article is the same story as one stored lately,
//! so that a syndicated wire story, or one with another headline over the same lead, alerts
//! once.
//!
//! An article's [`Sketch`] is a MinHash of the words and word pairs of its title and lead,
//! in the words the matcher folds and splits ([`crate::matcher::text`]): case, accents and
//! scripts behave as in rules, and Han or kana text, one token per character, gives character
//! pairs. The fraction of equal minimum hashes estimates the Jaccard similarity of the two
//! sets; with their sizes it also gives how much of the shorter is in the longer.
//! Candidates are found by locality-sensitive hashing: the hashes are cut into [`BANDS`]
//! bands of [`ROWS`], and two sketches with an equal band are compared; an exact copy (the
//! same folded words) is found by a hash of its own, whatever its length. The [`BandIndex`]
//! of bands and exact hashes lives in memory: a few hash probes per article, however many
//! are stored.
//!
//! Plain functions over plain types. [`Window`] holds recent sketches in memory and places
//! articles in stories; the store keeps the sketches so that its window is built again after
//! a restart ([`crate::store`]), and `preview` and `backtest` use windows of their own.

pub(crate) mod index;
mod key_table;
mod lead;
mod shingles;
mod shingles_fast;
pub(crate) mod window;

use std::cell::RefCell;
use std::time::Duration;

use crate::matcher::text::{Accents, Folded};
use crate::parse::Article;

pub use index::BandIndex;
pub use window::Window;

/// Minimum hashes in a sketch.
pub const HASHES: usize = BANDS * ROWS;
/// Bands for the candidate lookup: with [`ROWS`] rows each, two articles of similarity 0.5
/// share a band with probability 0.88, of 0.7 with 0.999, of 0.1 with 0.016 (Jaccard similarity).
pub const BANDS: usize = 16;
/// Hashes per band.
pub const ROWS: usize = 3;
/// Words of the summary (or content) read as the lead: syndicated copies keep the lead and
/// cut or extend the end.
pub const LEAD_WORDS: usize = 50;
/// Bytes of a summary folded for its lead at first (the rest only if they hold fewer words):
/// 50 words of English take about 300, of Russian about 600.
const LEAD_BYTES: usize = 16 * LEAD_WORDS;
/// Word pairs (besides its words) an article needs before it can join a story: an empty or nearly empty text
/// would join anything as short, and a bare headline ("Live updates") is no story.
pub const MIN_SHINGLES: usize = 8;
/// Similarity ([`similarity`]) from which two articles are one story. On the labelled set
/// (`tests/data/stories.jsonl`, see docs/performance.md) 0.5 also joined a market report to
/// the next day's, which has the same template; 0.7 missed a copy cut to one sentence.
pub const DEFAULT_THRESHOLD: f64 = 0.6;
/// How far back a new article looks for its story.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(48 * 60 * 60);
/// Candidates compared at most per article, so that a flood of one story costs a bounded
/// amount (the best match among them is as good as any: they are all the same story).
pub const MAX_CANDIDATES: usize = 8;

/// What stories are made of: the window looked back over, and the similarity that joins.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StoryParams {
    pub window: Duration,
    pub threshold: f64,
}

impl Default for StoryParams {
    fn default() -> Self {
        StoryParams {
            window: DEFAULT_WINDOW,
            threshold: DEFAULT_THRESHOLD,
        }
    }
}

/// An article's fingerprint: its MinHash and the hash of its whole folded text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sketch {
    /// Equal for texts with the same folded words, title and lead.
    pub exact: i64,
    /// How many distinct word pairs: with the estimated Jaccard similarity this gives the
    /// share of the shorter text found in the longer.
    pub size: u16,
    pub mins: [u16; HASHES],
}

/// The stored article a new one is most like, and how alike.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Joined<K> {
    /// Which stored article (its key in the caller's terms).
    pub article: K,
    pub similarity: f64,
}

/// Sketches an article from its title and summary (its content when the summary is empty).
/// `None` for a text too short to be told apart from others: it is a story of its own.
pub fn sketch(title: &str, summary: &str) -> Option<Sketch> {
    SCRATCH.with_borrow_mut(|scratch| sketch_with(scratch, title, summary))
}

/// Buffers reused from one sketch to the next on the same thread: a sketch is made for every
/// new article that raises an alert, and these were most of its allocations.
#[derive(Debug, Default)]
struct Scratch {
    folded: Folded,
    words: Vec<u64>,
    distinct: shingles_fast::Distinct,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

fn sketch_with(scratch: &mut Scratch, title: &str, summary: &str) -> Option<Sketch> {
    let (folded, words) = (&mut scratch.folded, &mut scratch.words);
    words.clear();
    folded.fold(title, Accents::Ignore);
    let title_words = folded.len();
    words.extend(folded.words().map(word_hash));
    let start = lead::lead(summary, LEAD_BYTES);
    folded.fold(start, Accents::Ignore);
    if folded.len() < LEAD_WORDS && start.len() < summary.len() {
        folded.fold(summary, Accents::Ignore);
    }
    words.extend(folded.words().take(LEAD_WORDS).map(word_hash));

    let mut exact = FNV_OFFSET;
    for (i, &w) in words.iter().enumerate() {
        // The title's end is marked, so moving words between title and lead changes the hash.
        let w = if i == title_words { w ^ 0x9e37 } else { w };
        exact = (exact ^ w).wrapping_mul(FNV_PRIME);
    }
    let shingles = shingles_fast::shingles(&mut scratch.distinct, words, title_words)?;
    Some(Sketch {
        exact: exact as i64,
        size: u16::try_from(shingles.len()).unwrap_or(u16::MAX),
        mins: min_hashes(shingles),
    })
}

/// Sketches a parsed article: its title, and its summary or, without one, its content.
pub fn sketch_article(article: &Article) -> Option<Sketch> {
    let lead = if article.summary.trim().is_empty() {
        &article.content
    } else {
        &article.summary
    };
    sketch(&article.title, lead)
}

/// How alike two articles are, from 0 to 1 (estimated from their sketches); 1 for exact copies.
/// Otherwise the larger of their Jaccard similarity and the share of the shorter one's
/// features found in the longer.
pub fn similarity(a: &Sketch, b: &Sketch) -> f64 {
    if a.exact == b.exact {
        return 1.0;
    }
    let equal = a.mins.iter().zip(&b.mins).filter(|(x, y)| x == y).count();
    let jaccard = equal as f64 / HASHES as f64;
    // |A ∩ B| = J (|A| + |B|) / (1 + J): the share of the shorter text found in the longer,
    // so that a copy cut to its first sentence is still the story.
    let (na, nb) = (f64::from(a.size), f64::from(b.size));
    let shared = jaccard * (na + nb) / (1.0 + jaccard);
    jaccard.max((shared / na.min(nb)).min(1.0))
}

/// The keys of the sketch's bands, each unique to its band's position and values.
pub fn bands(sketch: &Sketch) -> [i64; BANDS] {
    let mut keys = [0; BANDS];
    for (band, rows) in sketch.mins.chunks_exact(ROWS).enumerate() {
        let mut key = FNV_OFFSET ^ band as u64;
        for &row in rows {
            key = (key ^ u64::from(row)).wrapping_mul(FNV_PRIME);
        }
        keys[band] = mix(key) as i64;
    }
    keys
}

/// The best of `candidates` at or above `threshold`: exact copies first, then the most alike,
/// the earliest on a tie (candidates come oldest first).
pub fn best_match<'a, K: Copy>(
    sketch: &Sketch,
    candidates: impl IntoIterator<Item = (K, &'a Sketch)>,
    threshold: f64,
) -> Option<Joined<K>> {
    let mut best: Option<Joined<K>> = None;
    for (article, other) in candidates {
        let similarity = similarity(sketch, other);
        if similarity >= threshold && best.is_none_or(|b| similarity > b.similarity) {
            best = Some(Joined {
                article,
                similarity,
            });
        }
    }
    best
}

impl Sketch {
    /// The sketch as stored: its size, then the minimum hashes, two bytes each, little-endian.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mins = self.mins.iter().flat_map(|m| m.to_le_bytes());
        self.size.to_le_bytes().into_iter().chain(mins).collect()
    }

    /// Reads back [`Sketch::to_bytes`], and the sketches stored with whole 32-bit minima
    /// before; `None` for a blob of another length.
    pub fn from_bytes(exact: i64, bytes: &[u8]) -> Option<Sketch> {
        let (size, stored) = bytes.split_first_chunk::<2>()?;
        let mut mins = [0; HASHES];
        if stored.len() == HASHES * 2 {
            for (min, two) in mins.iter_mut().zip(stored.chunks_exact(2)) {
                *min = u16::from_le_bytes([two[0], two[1]]);
            }
        } else if stored.len() == HASHES * 4 {
            for (min, four) in mins.iter_mut().zip(stored.chunks_exact(4)) {
                *min = high_half(u32::from_le_bytes([four[0], four[1], four[2], four[3]]));
            }
        } else {
            return None;
        }
        Some(Sketch {
            exact,
            size: u16::from_le_bytes(*size),
            mins,
        })
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// A folded word's hash: FNV-1a, stable across builds and platforms (sketches are stored).
fn word_hash(word: &str) -> u64 {
    let mut h = FNV_OFFSET;
    for &b in word.as_bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(FNV_PRIME);
    }
    h
}

/// splitmix64's finaliser: every input bit reaches every output bit.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// [`HASHES`] minimum hashes by one-permutation hashing: each shingle's hash falls in one of
/// [`HASHES`] bins and each bin keeps its least, one hash per shingle instead of one per
/// shingle and bin. Equal bins estimate the Jaccard similarity as k independent minima do
/// (Li, Owen & Zhang, 2012). A bin no shingle fell in takes the value of the next bin that has
/// one, shifted by the distance so that it is never equal to a bin's own value by accident
/// (densification by rotation, Shrivastava & Li, 2014): two sets with the same shingles still
/// give the same sketch.
///
/// Each minimum is kept to its high 16 bits: half the memory and the bytes stored, and two
/// bins still equal by accident about once in 65,536. The high bits of a minimum are the
/// minimum of the high bits, so sketches stored with whole minima read back as made now.
fn min_hashes(shingles: &[u64]) -> [u16; HASHES] {
    whole_min_hashes(shingles).map(high_half)
}

fn high_half(min: u32) -> u16 {
    (min >> 16) as u16
}

fn whole_min_hashes(shingles: &[u64]) -> [u32; HASHES] {
    let mut mins = [u32::MAX; HASHES];
    let mut filled = [false; HASHES];
    for &s in shingles {
        let h = mix(s);
        // The high half picks the bin, the low half is the value.
        let bin = (((h >> 32) * HASHES as u64) >> 32) as usize;
        mins[bin] = mins[bin].min(h as u32);
        filled[bin] = true;
    }
    if !filled.contains(&true) {
        return mins;
    }
    let own = mins;
    for bin in 0..HASHES {
        if filled[bin] {
            continue;
        }
        let distance = (1..HASHES)
            .find(|d| filled[(bin + d) % HASHES])
            .unwrap_or(0);
        mins[bin] =
            own[(bin + distance) % HASHES].wrapping_add((distance as u32).wrapping_mul(ROTATION));
    }
    mins
}

/// What a borrowed bin adds per bin of distance: odd and far from small numbers.
const ROTATION: u32 = 0x9e37_79b9;

#[cfg(test)]
mod tests;

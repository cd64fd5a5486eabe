//! The shingles of [`super::shingles`] without sorting them: a text has a hundred or so, and
//! sorting them twice was most of the cost of a sketch. A small set tells which are new.

use super::shingles::pair;
use super::{MIN_SHINGLES, mix};

/// The distinct shingles of a text of `words` (hashed), the first `title_words` its title, in
/// the order first found; `None` with fewer than [`MIN_SHINGLES`] distinct word pairs. The
/// same set as [`super::shingles::shingles`]. `distinct` is reused from one text to the next.
pub(super) fn shingles<'a>(
    distinct: &'a mut Distinct,
    words: &[u64],
    title_words: usize,
) -> Option<&'a [u64]> {
    let (title, lead) = words.split_at(title_words);
    // Fewer than two shingles a word: pairs and words.
    distinct.clear(2 * words.len());
    for p in title.windows(2).chain(lead.windows(2)) {
        distinct.insert(pair(p[0], p[1]));
    }
    if distinct.len < MIN_SHINGLES {
        return None;
    }
    for &word in words {
        distinct.insert(mix(word));
    }
    Some(distinct.found())
}

/// A set of shingles by open addressing. Shingles are mixed hashes already, so their low bits
/// pick the slot; 0 marks an empty slot, and the shingle 0 is kept apart.
#[derive(Debug, Default)]
pub(super) struct Distinct {
    slots: Vec<u64>,
    zero: bool,
    /// The shingles found, in `found[..len]`; room for all a text can have, so that a
    /// shingle is written there whether or not it is new, and counted only if it is.
    found: Vec<u64>,
    len: usize,
}

impl Distinct {
    /// Empties the set, with room for `room` shingles, the table at most an eighth full: a
    /// probe then nearly always meets its slot empty or its shingle at once, and the branch
    /// on which it is seldom goes the unexpected way (sketching took about a fifth less time than
    /// with a table half full, in the stories benchmark).
    fn clear(&mut self, room: usize) {
        let size = (8 * room).next_power_of_two().max(16);
        self.slots.clear();
        self.slots.resize(size, 0);
        self.zero = false;
        self.found.resize(room.max(self.found.len()), 0);
        self.len = 0;
    }

    fn found(&self) -> &[u64] {
        &self.found[..self.len]
    }

    /// Adds `shingle`, at most `room` of them since [`Distinct::clear`]. One branch for a
    /// new shingle and a repeated one alike (repeats are one in ten or so, and a branch
    /// between the two was guessed wrong about as often); only a slot taken by another
    /// shingle, which an eighth-full table seldom has, branches off.
    fn insert(&mut self, shingle: u64) {
        if shingle == 0 {
            if !self.zero {
                self.zero = true;
                self.found[self.len] = 0;
                self.len += 1;
            }
            return;
        }
        let mask = self.slots.len() - 1;
        let mut slot = shingle as usize & mask;
        loop {
            let held = self.slots[slot];
            // `|`, not `||`: one branch on both.
            if (held == 0) | (held == shingle) {
                self.slots[slot] = shingle;
                self.found[self.len] = shingle;
                self.len += usize::from(held == 0);
                return;
            }
            slot = (slot + 1) & mask;
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::shingles as plain;
    use super::*;

    /// The fast shingles of `words` sorted, and the plain ones.
    fn both(words: &[u64], cut: usize) -> (Option<Vec<u64>>, Option<Vec<u64>>) {
        let title_words = cut.min(words.len());
        let mut distinct = Distinct::default();
        let fast = shingles(&mut distinct, words, title_words).map(|s| {
            let mut s = s.to_vec();
            s.sort_unstable();
            s
        });
        (fast, plain::shingles(words, title_words))
    }

    proptest! {
        // Few distinct words, so that pairs and words repeat; 0 hashes to the shingle 0.
        #[test]
        fn gives_the_shingles_sorting_gives(
            words in prop::collection::vec(0u64..24, 0..120),
            cut in 0usize..=120,
        ) {
            let (fast, plain) = both(&words, cut);
            prop_assert_eq!(fast, plain);
        }

        #[test]
        fn gives_the_shingles_sorting_gives_for_any_hashes(
            words in prop::collection::vec(any::<u64>(), 0..200),
            cut in 0usize..=200,
        ) {
            let (fast, plain) = both(&words, cut);
            prop_assert_eq!(fast, plain);
        }
    }
}

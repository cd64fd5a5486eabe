//! What a sketch is made of: the distinct word pairs within the title and within the lead (none
//! across the seam), and the words themselves, for independent reports of one event share its
//! names and numbers more than their word order. Here plainly, by sorting; the sketch takes
//! them from [`super::shingles_fast`], which gives the same set without sorting.

use super::mix;

/// A word pair's shingle: ordered, so "Ukraine invites" is not "invites Ukraine".
pub(super) fn pair(first: u64, second: u64) -> u64 {
    mix(first.rotate_left(17) ^ second)
}

/// The distinct shingles of a text of `words` (hashed), the first `title_words` its title,
/// sorted; `None` with fewer than [`MIN_SHINGLES`] distinct word pairs.
#[cfg(test)]
pub(super) fn shingles(words: &[u64], title_words: usize) -> Option<Vec<u64>> {
    let (title, lead) = words.split_at(title_words);
    let mut shingles: Vec<u64> = title
        .windows(2)
        .chain(lead.windows(2))
        .map(|p| pair(p[0], p[1]))
        .collect();
    shingles.sort_unstable();
    shingles.dedup();
    if shingles.len() < super::MIN_SHINGLES {
        return None;
    }
    shingles.extend(words.iter().map(|&w| mix(w)));
    shingles.sort_unstable();
    shingles.dedup();
    Some(shingles)
}

//! Which rules the leaves found in an article satisfy, plainly: every rule that uses a found
//! leaf is collected, sorted and checked with a binary search per leaf. The engine uses
//! [`super::evaluate_fast`], which gives the same rules with bit marks that need no sorting.

use super::engine::{Engine, LeafId};

/// The rules, in order, that hold for an article of the feed named `feed` in which the leaves
/// `hits` (sorted, distinct) were found.
pub(super) fn matching_rules(engine: &Engine, hits: &[LeafId], feed: &str) -> Vec<usize> {
    let mut candidates = engine.match_without_terms.clone();
    for &leaf in hits {
        candidates.extend_from_slice(&engine.rules_of_leaf[leaf]);
    }
    candidates.sort_unstable();
    candidates.dedup();
    candidates.retain(|&index| {
        let rule = &engine.rules[index];
        rule.watches(feed) && rule.root.eval(&|leaf| hits.binary_search(&leaf).is_ok())
    });
    candidates
}

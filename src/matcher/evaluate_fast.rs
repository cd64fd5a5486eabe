//! Which rules the leaves found in an article satisfy, as [`super::evaluate`] says plainly, with
//! bit marks: a bit per leaf says it was found, a bit per rule that the rule uses a found leaf,
//! and the rules are visited in order by walking the rule bits. An article of everyday words
//! finds a hundred leaves used by a thousand rules; sorting those and a binary search per leaf
//! cost more than the marks, which are cleared bit by bit as they are read.

use super::engine::{Engine, LeafId};

/// One bit per leaf or rule; all clear between articles.
#[derive(Debug, Default)]
pub(super) struct Bits(Vec<u64>);

impl Bits {
    /// Makes room for `len` bits.
    fn hold(&mut self, len: usize) {
        let words = len.div_ceil(64);
        if self.0.len() < words {
            self.0.resize(words, 0);
        }
    }

    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }

    fn unset(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }

    pub(super) fn contains(&self, i: usize) -> bool {
        self.0
            .get(i / 64)
            .is_some_and(|word| word >> (i % 64) & 1 == 1)
    }
}

/// The marks for one article at a time, kept from one to the next.
#[derive(Debug, Default)]
pub(super) struct Marks {
    /// The leaves found.
    leaves: Bits,
    /// The rules to evaluate.
    rules: Bits,
}

impl Marks {
    /// Calls `matched` with each rule, in order, that holds for an article of the feed named
    /// `feed` in which the leaves `hits` were found, and with the found leaves. The same rules
    /// as [`super::evaluate::matching_rules`].
    pub(super) fn for_each_match(
        &mut self,
        engine: &Engine,
        hits: &[LeafId],
        feed: &str,
        mut matched: impl FnMut(usize, &Bits),
    ) {
        if hits.is_empty() && engine.match_without_terms.is_empty() {
            return;
        }
        self.leaves.hold(engine.rules_of_leaf.len());
        self.rules.hold(engine.rules.len());
        for &leaf in hits {
            self.leaves.set(leaf);
            for &rule in &engine.rules_of_leaf[leaf] {
                self.rules.set(rule);
            }
        }
        for &rule in &engine.match_without_terms {
            self.rules.set(rule);
        }
        let leaves = &self.leaves;
        for (at, word) in self.rules.0.iter_mut().enumerate() {
            let mut bits = std::mem::take(word);
            while bits != 0 {
                let index = at * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let rule = &engine.rules[index];
                if rule.watches(feed) && rule.root.eval(&|leaf| leaves.contains(leaf)) {
                    matched(index, leaves);
                }
            }
        }
        for &leaf in hits {
            self.leaves.unset(leaf);
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::evaluate::matching_rules;
    use super::super::{Query, RuleSpec};
    use super::*;

    const WORDS: [&str; 8] = [
        "nato",
        "eu",
        "summit",
        "sport",
        "ukrain*",
        "\"jens stoltenberg\"",
        "title:kyiv",
        "/gas/",
    ];

    /// A query over [`WORDS`]: a word, or `AND`, `OR` and `NOT` of smaller ones.
    fn query() -> impl Strategy<Value = String> {
        let word = (0..WORDS.len()).prop_map(|w| WORDS[w].to_string());
        word.prop_recursive(3, 10, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 2..4).prop_map(|qs| qs.join(" AND ")),
                prop::collection::vec(inner.clone(), 2..4).prop_map(|qs| qs.join(" OR ")),
                inner.prop_map(|q| format!("NOT ({q})")),
            ]
            .prop_map(|q| format!("({q})"))
        })
    }

    proptest! {
        #[test]
        fn finds_the_rules_the_plain_evaluation_finds(
            rules in prop::collection::vec((query(), 0usize..3), 1..80),
            articles in prop::collection::vec(
                (prop::collection::vec(any::<prop::sample::Index>(), 0..12), 0usize..3),
                1..5,
            ),
        ) {
            let feed_names = [vec![], vec!["a".to_string()], vec!["b".to_string()]];
            let queries: Vec<Query> = rules
                .iter()
                .map(|(q, _)| Query::parse(q).unwrap_or_else(|e| panic!("{q}: {e}")))
                .collect();
            let engine = Engine::new(queries.iter().zip(&rules).map(|(query, (_, feeds))| {
                RuleSpec { name: "r", query, feeds: &feed_names[*feeds] }
            }));
            let leaves = engine.rules_of_leaf.len();
            // One set of marks for every article, as on a thread: none may be left over.
            let mut marks = Marks::default();
            for (picks, feed) in articles {
                let feed = ["a", "b", "c"][feed];
                let mut hits: Vec<LeafId> = picks.iter().map(|p| p.index(leaves)).collect();
                hits.sort_unstable();
                hits.dedup();
                let mut fast = Vec::new();
                marks.for_each_match(&engine, &hits, feed, |rule, found| {
                    let found: Vec<LeafId> = (0..leaves).filter(|&l| found.contains(l)).collect();
                    fast.push((rule, found));
                });
                let plain: Vec<(usize, Vec<LeafId>)> = matching_rules(&engine, &hits, feed)
                    .into_iter()
                    .map(|rule| (rule, hits.clone()))
                    .collect();
                prop_assert_eq!(fast, plain);
            }
        }
    }
}

//! All rules compiled into one engine.
//!
//! Each distinct term of every rule is a *leaf*. An article is folded and tokenised once per
//! field (and once more per field only if some rule asks for exact accents); each token is
//! looked up once in a hash index of leaves, by its leading characters up to the shortest
//! `stem*` in use (all of it if it is shorter), which finds both the phrases it starts and the
//! stems it starts with; all regular expressions run as one `RegexSet`. Fields no rule looks
//! at are not folded at all, and the buffers an article needs are kept per thread, so matching
//! allocates little beyond its result. The work per article therefore grows with its length,
//! not with the number of rules. Only rules that contain a leaf that was seen, plus the few
//! that can match with no term present (such as `NOT sport`), have their boolean expression
//! evaluated.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::Range;

use regex::{RegexSet, RegexSetBuilder};
use rustc_hash::FxHashMap;

use super::evaluate_fast::{Bits, Marks};
use super::query::{Field, Pattern, Query, Term};
use super::text::{Accents, Folded};
use crate::parse::Article;

/// Fields searched by a term without a `field:` prefix.
const TEXT_FIELDS: [Field; 4] = [
    Field::Title,
    Field::Summary,
    Field::Content,
    Field::Category,
];

/// A rule as the engine needs it.
#[derive(Debug, Clone)]
pub struct RuleSpec<'a> {
    pub name: &'a str,
    pub query: &'a Query,
    /// Feed names the rule is limited to; empty for all.
    pub feeds: &'a [String],
}

/// The rules one article matched, in rule order. Names and terms are borrowed from the
/// engine and the terms of all matches share one list, so an article that matches hundreds of
/// rules costs two allocations, not several per match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matches<'e> {
    /// Each matched rule: its index, its name, and where its terms end in `terms`.
    rules: Vec<(usize, &'e str, usize)>,
    terms: Vec<&'e str>,
}

impl<'e> Matches<'e> {
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The matches, in rule order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = RuleMatch<'_>> + ExactSizeIterator {
        self.rules
            .iter()
            .enumerate()
            .map(|(i, &(rule, name, end))| {
                let start = match i {
                    0 => 0,
                    _ => self.rules[i - 1].2,
                };
                RuleMatch {
                    rule,
                    name,
                    terms: &self.terms[start..end],
                }
            })
    }

    fn push(&mut self, rule: usize, name: &'e str, terms: impl Iterator<Item = &'e str>) {
        self.terms.extend(terms);
        self.rules.push((rule, name, self.terms.len()));
    }
}

/// One rule that matched an article.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleMatch<'a> {
    /// Index of the rule in the order given to [`Engine::new`].
    pub rule: usize,
    pub name: &'a str,
    /// The rule's terms that were found, as the user wrote them.
    pub terms: &'a [&'a str],
}

/// Where a matched term was found, for highlighting: a byte range in one field's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Highlight {
    pub field: Field,
    pub range: Range<usize>,
}

/// A rule that matched, with the places in the article that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explained<'e> {
    /// Index of the rule in the order given to [`Engine::new`].
    pub rule: usize,
    pub name: &'e str,
    /// The rule's terms that were found, as the user wrote them.
    pub terms: Vec<&'e str>,
    /// Sorted by field, then position.
    pub highlights: Vec<Highlight>,
}

pub(super) type LeafId = usize;

#[derive(Debug)]
struct Leaf {
    /// Bit `1 << field as u8` for each field the leaf looks at.
    fields: u8,
    pattern: Pattern,
    source: Box<str>,
}

#[derive(Debug)]
pub(super) enum Node {
    Leaf(LeafId),
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
}

#[derive(Debug)]
pub(super) struct CompiledRule {
    name: Box<str>,
    /// Feed names the rule is limited to; empty for all.
    pub(super) feeds: Vec<String>,
    pub(super) root: Node,
    /// Leaves that count as "matched terms" when found (those not under a NOT).
    positive: Vec<LeafId>,
}

impl CompiledRule {
    /// Whether the rule looks at articles from the feed named `feed`.
    pub(super) fn watches(&self, feed: &str) -> bool {
        self.feeds.is_empty() || self.feeds.iter().any(|f| f == feed)
    }
}

/// A first token or a prefix stem, and the leaves that use it.
type KeyLeaves = (Box<str>, Vec<LeafId>);

/// A [`TokenIndex::key`] and the stems that have it.
type KeyStems = (Box<str>, Vec<KeyLeaves>);

/// Word and prefix leaves for one way of folding accents.
#[derive(Debug, Default)]
struct TokenIndex {
    /// Phrase leaves (a single word is a phrase of one) by their first token; filled while
    /// compiling, then moved into `first_tokens`.
    by_first_token: FxHashMap<Box<str>, Vec<LeafId>>,
    /// Prefix leaves by their stem; filled while compiling, then moved into `stems`.
    by_prefix: FxHashMap<Box<str>, Vec<LeafId>>,
    /// First tokens by their first eight bytes packed into a `u64` (see [`Folded::head`]): a
    /// token that starts no phrase, which is nearly every token, costs a hash of one integer,
    /// where a string-keyed map would hash the whole token first. A token of eight bytes or
    /// fewer is told by its head and length alone, since no token holds a zero byte.
    first_tokens: FxHashMap<u64, Vec<KeyLeaves>>,
    /// Stems by their [`TokenIndex::key`], packed the same way, so that each token costs one
    /// lookup however many stem lengths of at least [`MIN_KEY_CHARS`] are in use.
    stems: FxHashMap<u64, Vec<KeyStems>>,
    /// The key lengths in characters, shortest first: the lengths of the stems shorter than
    /// [`MIN_KEY_CHARS`], each of which is its own key, then the shortest of the others.
    key_lengths: Vec<usize>,
    /// Bit `1 << field as u8` for each field some leaf of this index looks at.
    fields: u8,
}

/// The shortest key of a stem of that length or longer. Keys share their stems, which a token is
/// compared with one by one: stems of one letter under keys of one letter would have every
/// token starting with `m` compared with every stem starting with `m`.
const MIN_KEY_CHARS: usize = 4;

impl TokenIndex {
    fn build(&mut self) {
        let mut lengths: Vec<usize> = self
            .by_prefix
            .keys()
            .map(|stem| stem.chars().count().min(MIN_KEY_CHARS))
            .collect();
        lengths.sort_unstable();
        lengths.dedup();
        if lengths.last() == Some(&MIN_KEY_CHARS) {
            lengths.pop();
            let shortest_long = self
                .by_prefix
                .keys()
                .map(|stem| stem.chars().count())
                .filter(|&chars| chars >= MIN_KEY_CHARS)
                .min()
                .unwrap_or(MIN_KEY_CHARS);
            lengths.push(shortest_long);
        }
        self.key_lengths = lengths;
        for (word, ids) in std::mem::take(&mut self.by_first_token) {
            self.first_tokens
                .entry(pack(&word))
                .or_default()
                .push((word, ids));
        }
        let mut by_key: HashMap<Box<str>, Vec<KeyLeaves>> = HashMap::new();
        for (stem, ids) in std::mem::take(&mut self.by_prefix) {
            let key: Box<str> = self.key(&stem).into();
            by_key.entry(key).or_default().push((stem, ids));
        }
        for (key, stems) in by_key {
            self.stems.entry(pack(&key)).or_default().push((key, stems));
        }
    }

    /// A stem's first characters, as many as the longest key length, or all of it if it is
    /// shorter. A token has, at one of the key lengths, the key of every stem it starts with.
    fn key<'w>(&self, stem: &'w str) -> &'w str {
        match self.key_lengths.last() {
            Some(&chars) => char_prefix(stem, chars).unwrap_or(stem),
            None => stem,
        }
    }

    /// The leaves of the phrases that token `i` of `folded` starts.
    // Called for every token of every article, so the table is probed with the token's
    // first bytes before any string is looked at.
    #[inline]
    fn phrases_from(&self, folded: &Folded, i: usize) -> Option<&[LeafId]> {
        if self.first_tokens.is_empty() {
            return None;
        }
        let len = folded.word_len(i);
        let group = self.first_tokens.get(&folded.head(i, len.min(8)))?;
        let word = folded.word(i).as_bytes();
        group
            .iter()
            .find(|(w, _)| w.len() == len && (len <= 8 || w.as_bytes()[8..] == word[8..]))
            .map(|(_, ids)| &ids[..])
    }

    /// The stems whose key is the first `chars` characters of token `i` of `folded`, if the
    /// token is that long.
    #[inline]
    fn stems_of(&self, folded: &Folded, i: usize, chars: usize) -> Option<&[KeyLeaves]> {
        let key_len = if folded.is_ascii() {
            if folded.word_len(i) < chars {
                return None;
            }
            chars
        } else {
            char_prefix(folded.word(i), chars)?.len()
        };
        let group = self.stems.get(&folded.head(i, key_len))?;
        let key = &folded.word(i).as_bytes()[..key_len];
        group
            .iter()
            .find(|(k, _)| k.len() == key_len && (key_len <= 8 || k.as_bytes()[8..] == key[8..]))
            .map(|(_, stems)| &stems[..])
    }
}

/// The first eight bytes of `key` (fewer if it is shorter) as [`Folded::head`] packs them.
fn pack(key: &str) -> u64 {
    let mut bytes = [0; 8];
    let len = key.len().min(8);
    bytes[..len].copy_from_slice(&key.as_bytes()[..len]);
    u64::from_le_bytes(bytes)
}

/// The first `chars` characters of `word`, or `None` if it is shorter.
fn char_prefix(word: &str, chars: usize) -> Option<&str> {
    // A character takes at least one byte, so a word of fewer bytes is too short; and when the
    // first `chars` bytes are ASCII, they are the first `chars` characters.
    let head = word.as_bytes().get(..chars)?;
    if head.is_ascii() {
        return word.get(..chars);
    }
    match word.char_indices().nth(chars) {
        Some((end, _)) => Some(&word[..end]),
        None if word.chars().count() == chars => Some(word),
        None => None,
    }
}

/// Buffers reused from one article to the next on the same thread.
#[derive(Default)]
struct Scratch {
    folded: Folded,
    hits: Vec<LeafId>,
    regex_matched: Vec<bool>,
    marks: Marks,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

#[derive(Debug, Default)]
pub struct Engine {
    leaves: Vec<Leaf>,
    pub(super) rules: Vec<CompiledRule>,
    /// Indexed by `Accents as usize`: folded with accents ignored, and exact.
    indexes: [TokenIndex; 2],
    /// Regex leaves, in the order of `regex_set`.
    regexes: Vec<LeafId>,
    /// All regexes at once; `None` if the combined set is too big, then each runs alone.
    regex_set: Option<RegexSet>,
    /// Bit `1 << field as u8` for each field some regex looks at.
    regex_fields: u8,
    /// For each leaf, the rules that use it.
    pub(super) rules_of_leaf: Vec<Vec<usize>>,
    /// Rules that can match when none of their terms is present.
    pub(super) match_without_terms: Vec<usize>,
}

fn field_bit(field: Field) -> u8 {
    1 << field as u8
}

impl Engine {
    pub fn new<'a>(rules: impl IntoIterator<Item = RuleSpec<'a>>) -> Engine {
        let mut engine = Engine::default();
        let mut leaf_ids: HashMap<(u8, Accents, String), LeafId> = HashMap::new();
        for (index, spec) in rules.into_iter().enumerate() {
            let mut positive = Vec::new();
            let root = engine.compile(spec.query, &mut leaf_ids, &mut positive, false, index);
            if root.eval(&|_| false) {
                engine.match_without_terms.push(index);
            }
            positive.sort_unstable();
            positive.dedup();
            engine.rules.push(CompiledRule {
                name: spec.name.into(),
                feeds: spec.feeds.to_vec(),
                root,
                positive,
            });
        }
        for index in &mut engine.indexes {
            index.build();
        }
        let sources = engine
            .regexes
            .iter()
            .map(|&id| match &engine.leaves[id].pattern {
                Pattern::Regex(re) => re.as_str(),
                _ => "",
            });
        engine.regex_set = RegexSetBuilder::new(sources)
            .case_insensitive(true)
            .size_limit(64 << 20)
            .build()
            .ok();
        engine
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    fn compile(
        &mut self,
        query: &Query,
        ids: &mut HashMap<(u8, Accents, String), LeafId>,
        positive: &mut Vec<LeafId>,
        negated: bool,
        rule: usize,
    ) -> Node {
        match query {
            Query::Term(term) => {
                let id = self.leaf(term, ids);
                if !self.rules_of_leaf[id].contains(&rule) {
                    self.rules_of_leaf[id].push(rule);
                }
                if !negated {
                    positive.push(id);
                }
                Node::Leaf(id)
            }
            Query::And(qs) => Node::And(
                qs.iter()
                    .map(|q| self.compile(q, ids, positive, negated, rule))
                    .collect(),
            ),
            Query::Or(qs) => Node::Or(
                qs.iter()
                    .map(|q| self.compile(q, ids, positive, negated, rule))
                    .collect(),
            ),
            Query::Not(q) => Node::Not(Box::new(self.compile(q, ids, positive, !negated, rule))),
        }
    }

    fn leaf(&mut self, term: &Term, ids: &mut HashMap<(u8, Accents, String), LeafId>) -> LeafId {
        let fields = match term.field {
            Some(field) => field_bit(field),
            None => TEXT_FIELDS.iter().fold(0, |bits, &f| bits | field_bit(f)),
        };
        let key = match &term.pattern {
            Pattern::Phrase(words) => format!("p:{}", words.join(" ")),
            Pattern::Prefix(stem) => format!("*:{stem}"),
            Pattern::Regex(re) => format!("/:{}", re.as_str()),
        };
        let key = (fields, term.accents, key);
        if let Some(&id) = ids.get(&key) {
            return id;
        }
        let id = self.leaves.len();
        let index = &mut self.indexes[term.accents as usize];
        match &term.pattern {
            Pattern::Regex(_) => self.regex_fields |= fields,
            _ => index.fields |= fields,
        }
        match &term.pattern {
            Pattern::Phrase(words) => index
                .by_first_token
                .entry(words[0].as_str().into())
                .or_default()
                .push(id),
            Pattern::Prefix(stem) => {
                index
                    .by_prefix
                    .entry(stem.as_str().into())
                    .or_default()
                    .push(id);
            }
            Pattern::Regex(_) => self.regexes.push(id),
        }
        self.leaves.push(Leaf {
            fields,
            pattern: term.pattern.clone(),
            source: term.source.as_str().into(),
        });
        self.rules_of_leaf.push(Vec::new());
        ids.insert(key, id);
        id
    }

    /// The rules `article` (from the feed named `feed`) matches, in rule order.
    pub fn matches(&self, article: &Article, feed: &str) -> Matches<'_> {
        let mut matches = Matches::default();
        if self.rules.is_empty() {
            return matches;
        }
        self.with_scratch(|scratch| {
            self.scan(article, None, scratch);
            scratch
                .marks
                .for_each_match(self, &scratch.hits, feed, |rule, found| {
                    matches.push(rule, &self.rules[rule].name, self.terms(rule, found));
                });
        });
        matches
    }

    /// Runs `then` with this thread's buffers.
    fn with_scratch<T>(&self, then: impl FnOnce(&mut Scratch) -> T) -> T {
        SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut scratch) => then(&mut scratch),
            // Only reached if matching re-enters itself on this thread; fresh buffers do.
            Err(_) => then(&mut Scratch::default()),
        })
    }

    /// The terms of rule `rule` that were found, as the user wrote them.
    fn terms<'e>(&'e self, rule: usize, found: &Bits) -> impl Iterator<Item = &'e str> {
        self.rules[rule]
            .positive
            .iter()
            .filter(move |&&leaf| found.contains(leaf))
            .map(|&leaf| &*self.leaves[leaf].source)
    }

    /// Like [`Engine::matches`], with where in the article each rule's terms were found.
    pub fn explain(&self, article: &Article, feed: &str) -> Vec<Explained<'_>> {
        // Most articles match nothing: the plain scan says so without recording positions. A
        // matching article is scanned twice, which costs less than positions for every one.
        if self.matches(article, feed).is_empty() {
            return Vec::new();
        }
        let mut found = Vec::new();
        let mut explained = Vec::new();
        self.with_scratch(|scratch| {
            self.scan(article, Some(&mut found), scratch);
            // By leaf, so that each term's places are one run.
            found.sort_unstable_by_key(|(leaf, h): &(LeafId, Highlight)| {
                (*leaf, h.field as u8, h.range.start, h.range.end)
            });
            scratch
                .marks
                .for_each_match(self, &scratch.hits, feed, |rule, is_found| {
                    let mut highlights = Vec::new();
                    for &leaf in &self.rules[rule].positive {
                        if !is_found.contains(leaf) {
                            continue;
                        }
                        let start = found.partition_point(|(l, _)| *l < leaf);
                        let end = start + found[start..].partition_point(|(l, _)| *l == leaf);
                        highlights.extend(found[start..end].iter().map(|(_, h)| h.clone()));
                    }
                    highlights.sort_by_key(|h| (h.field as u8, h.range.start, h.range.end));
                    highlights.dedup();
                    explained.push(Explained {
                        rule,
                        name: &self.rules[rule].name,
                        terms: self.terms(rule, is_found).collect(),
                        highlights,
                    });
                });
        });
        explained
    }

    /// Leaves `scratch.hits` holding the sorted ids of the leaves found in the article; with
    /// `found`, also records where each was seen.
    fn scan(
        &self,
        article: &Article,
        mut found: Option<&mut Vec<(LeafId, Highlight)>>,
        scratch: &mut Scratch,
    ) {
        let Scratch {
            folded,
            hits,
            regex_matched,
            ..
        } = scratch;
        hits.clear();
        let wanted = self.indexes[0].fields | self.indexes[1].fields | self.regex_fields;
        for field in Field::ALL {
            let bit = field_bit(field);
            if wanted & bit == 0 {
                continue;
            }
            let text = field_text(article, field);
            let text = text.as_ref();
            if text.is_empty() {
                continue;
            }
            for accents in [Accents::Ignore, Accents::Exact] {
                let index = &self.indexes[accents as usize];
                if index.fields & bit == 0 {
                    continue;
                }
                folded.fold(text, accents);
                self.scan_tokens(index, folded, bit, &mut |leaf, span| {
                    hits.push(leaf);
                    if let Some(found) = found.as_deref_mut() {
                        found.push((leaf, Highlight { field, range: span }));
                    }
                });
            }
            if self.regex_fields & bit != 0 {
                let positions = found.is_some();
                self.scan_regexes(text, bit, regex_matched, positions, &mut |leaf, span| {
                    hits.push(leaf);
                    if let Some(found) = found.as_deref_mut() {
                        found.push((leaf, Highlight { field, range: span }));
                    }
                });
            }
        }
        hits.sort_unstable();
        hits.dedup();
    }

    fn scan_tokens(
        &self,
        index: &TokenIndex,
        folded: &Folded,
        field: u8,
        hit: &mut impl FnMut(LeafId, Range<usize>),
    ) {
        for i in 0..folded.len() {
            for &id in index.phrases_from(folded, i).unwrap_or_default() {
                let leaf = &self.leaves[id];
                if leaf.fields & field == 0 {
                    continue;
                }
                if let Pattern::Phrase(phrase) = &leaf.pattern {
                    let last = i + phrase.len() - 1;
                    if last < folded.len()
                        && phrase[1..]
                            .iter()
                            .enumerate()
                            .all(|(k, w)| folded.word(i + 1 + k) == w)
                    {
                        hit(id, folded.span(i).start..folded.span(last).end);
                    }
                }
            }
            for &chars in &index.key_lengths {
                let Some(stems) = index.stems_of(folded, i, chars) else {
                    continue;
                };
                let word = folded.word(i);
                // Byte-wise `starts_with` is a character prefix: both sides are whole UTF-8.
                for (_, ids) in stems.iter().filter(|(stem, _)| word.starts_with(&**stem)) {
                    for &id in ids {
                        if self.leaves[id].fields & field != 0 {
                            hit(id, folded.span(i));
                        }
                    }
                }
            }
        }
    }

    /// Calls `hit` for each regex leaf found in `text`: with `positions`, once for each place
    /// it is found; without, once, with an empty range.
    fn scan_regexes(
        &self,
        text: &str,
        field: u8,
        matched: &mut Vec<bool>,
        positions: bool,
        hit: &mut impl FnMut(LeafId, Range<usize>),
    ) {
        let regex_of = |id: LeafId| match &self.leaves[id].pattern {
            Pattern::Regex(re) => Some(re),
            _ => None,
        };
        matched.clear();
        match &self.regex_set {
            Some(set) => {
                matched.resize(self.regexes.len(), false);
                if !set.matches_read_at(matched, text, 0) {
                    return;
                }
            }
            None => matched.resize(self.regexes.len(), true),
        }
        for (position, _) in matched.iter().enumerate().filter(|(_, m)| **m) {
            let id = self.regexes[position];
            if self.leaves[id].fields & field == 0 {
                continue;
            }
            let Some(re) = regex_of(id) else {
                continue;
            };
            if positions {
                for m in re.find_iter(text) {
                    hit(id, m.range());
                }
            } else if self.regex_set.is_some() || re.is_match(text) {
                // The set, built with the same flags, found it already.
                hit(id, 0..0);
            }
        }
    }
}
/// The text of one field of an article, as the engine searches it; [`Highlight`] ranges point
/// into it. Several authors or categories are searched as one text.
pub fn field_text(article: &Article, field: Field) -> Cow<'_, str> {
    match field {
        Field::Title => Cow::Borrowed(&article.title),
        Field::Summary => Cow::Borrowed(&article.summary),
        Field::Content => Cow::Borrowed(&article.content),
        Field::Link => Cow::Borrowed(article.link.as_deref().unwrap_or("")),
        Field::Author => joined(&article.authors),
        Field::Category => joined(&article.categories),
    }
}

fn joined(items: &[String]) -> Cow<'_, str> {
    match items {
        [] => Cow::Borrowed(""),
        [one] => Cow::Borrowed(one),
        many => Cow::Owned(many.join(" \n ")),
    }
}

impl Node {
    /// Whether the expression holds when `found` tells which leaves were found.
    pub(super) fn eval(&self, found: &impl Fn(LeafId) -> bool) -> bool {
        match self {
            Node::Leaf(id) => found(*id),
            Node::And(nodes) => nodes.iter().all(|n| n.eval(found)),
            Node::Or(nodes) => nodes.iter().any(|n| n.eval(found)),
            Node::Not(n) => !n.eval(found),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn article(title: &str, summary: &str) -> Article {
        Article {
            title: title.into(),
            summary: summary.into(),
            link: Some("https://news.example/world/nato-summit".into()),
            ..Article::default()
        }
    }

    fn matched(query: &str, article: &Article) -> Option<Vec<String>> {
        let query = Query::parse(query).unwrap();
        let engine = Engine::new([RuleSpec {
            name: "r",
            query: &query,
            feeds: &[],
        }]);
        let matches = engine.matches(article, "feed");
        let last = matches.iter().last()?;
        Some(last.terms.iter().map(|t| t.to_string()).collect())
    }

    /// For one rule per query: the indexes of the rules an article with this title matches.
    fn rules_matching(queries: &[&str]) -> impl Fn(&str) -> Vec<usize> {
        let queries: Vec<Query> = queries.iter().map(|q| Query::parse(q).unwrap()).collect();
        let engine = Engine::new(queries.iter().map(|query| RuleSpec {
            name: "r",
            query,
            feeds: &[],
        }));
        move |title| {
            engine
                .matches(&article(title, ""), "feed")
                .iter()
                .map(|m| m.rule)
                .collect()
        }
    }

    fn is_match(query: &str, title: &str) -> bool {
        matched(query, &article(title, "")).is_some()
    }

    #[test]
    fn whole_words_only() {
        assert!(is_match("NATO", "NATO leaders meet"));
        assert!(!is_match("NATO", "A senatorial race"));
        assert!(!is_match("Ukraine", "Ukrainian grain"));
        assert!(is_match("NATO", "NATO's answer"));
        assert!(is_match("NATO", "NATO’s answer"));
        assert!(is_match("NATO", "an anti-NATO rally"));
        assert!(is_match("Ukraine", "the Russia-Ukraine war"));
        assert!(!is_match("NATO", "see NATO_report"));
    }

    #[test]
    fn prefixes_in_any_script() {
        assert!(is_match("Ukrain*", "Ukrainians return"));
        assert!(is_match("Ukrain*", "Ukraine"));
        assert!(!is_match("Ukrain*", "Ukrai"));
        assert!(is_match("Украин*", "украинские войска"));
    }

    #[test]
    fn phrases_cross_whitespace_and_inline_markup() {
        assert!(is_match(
            "\"Jens Stoltenberg\"",
            "Jens\u{a0}Stoltenberg said"
        ));
        assert!(is_match("\"Jens Stoltenberg\"", "Jens \n Stoltenberg said"));
        assert!(!is_match("\"Jens Stoltenberg\"", "Stoltenberg, Jens said"));
        let text = crate::parse::html_to_text("<b>Jens</b> <i>Stoltenberg</i>");
        assert!(is_match("\"Jens Stoltenberg\"", &text));
    }

    #[test]
    fn prefixes_of_several_lengths_match_in_one_engine() {
        let rules = rules_matching(&["Ukr*", "Ukrain*", "Украин*", "Zürich*"]);
        assert_eq!(rules("Ukrainians return"), [0, 1]);
        assert_eq!(rules("Ukraine"), [0, 1]);
        assert_eq!(rules("Ukrai"), [0]);
        assert_eq!(rules("Uk"), Vec::<usize>::new());
        assert_eq!(rules("украинские войска"), [2]);
        assert_eq!(rules("Zurich"), [3]);
    }

    #[test]
    fn keys_with_the_same_first_eight_bytes_are_told_apart() {
        let rules = rules_matching(&["semiconductor", "semiconductors", "semicond", "Кремль"]);
        assert_eq!(rules("Semiconductor plant"), [0]);
        assert_eq!(rules("new semiconductors"), [1]);
        assert_eq!(rules("semicond"), [2]);
        assert_eq!(rules("semiconductorss semiconduct"), Vec::<usize>::new());
        assert_eq!(rules("Кремль заявил"), [3]);
        assert_eq!(rules("Кремлю"), Vec::<usize>::new());
    }

    #[test]
    fn words_phrases_and_stems_are_found_beside_stems_of_one_letter() {
        let rules = rules_matching(&[
            "m*",
            "market",
            "markets",
            "\"market prices\"",
            "marketplaces",
            "marketplace",
            "мир*",
            "мировой",
            "mark*",
            "marketpl*",
            "ma*",
        ]);
        assert_eq!(rules("market prices"), [0, 1, 3, 8, 10]);
        assert_eq!(rules("markets"), [0, 2, 8, 10]);
        assert_eq!(rules("marketplace marketplaces"), [0, 4, 5, 8, 9, 10]);
        assert_eq!(rules("marketplaced"), [0, 8, 9, 10]);
        assert_eq!(rules("prices market"), [0, 1, 8, 10]);
        assert_eq!(rules("mar"), [0, 10]);
        assert_eq!(rules("мировой рынок"), [6, 7]);
        assert_eq!(rules("ми"), Vec::<usize>::new());
    }

    #[test]
    fn boolean_logic() {
        assert!(is_match("Kremlin AND NOT sport", "Kremlin statement"));
        assert!(!is_match("Kremlin AND NOT sport", "Kremlin sport club"));
        assert!(is_match("NOT sport", "Weather today"));
        assert!(!is_match("NOT sport", "sport results"));
        assert!(is_match("Biden Putin", "Putin calls Biden"));
        assert!(!is_match("Biden Putin", "Putin calls"));
        assert!(is_match("(EU OR NATO) summit", "NATO summit"));
    }

    #[test]
    fn folding_case_accents_and_scripts() {
        assert!(is_match("straße", "STRASSE closed"));
        assert!(is_match("НАТО", "нато расширяется"));
        assert!(is_match("Zelensky", "Zelenský visits"));
        assert!(is_match("café", "new cafe opens"));
        assert!(is_match("乌克兰", "乌克兰总统会见北约秘书长"));
        assert!(!is_match("乌克兰", "克兰乌"));
    }

    #[test]
    fn fields_restrict_where_a_term_looks() {
        let a = article("Weather", "NATO mentioned in summary");
        assert!(matched("summary:NATO", &a).is_some());
        assert!(matched("title:NATO", &a).is_none());
        assert!(matched("link:nato", &a).is_some());
        // Without a field the link is not searched: URLs are not text.
        assert!(matched("summit", &a).is_none());
    }

    #[test]
    fn regexes() {
        assert!(is_match("/Zelensk(y|yy|iy)/", "Zelenskyy speaks"));
        assert!(!is_match("/Zelensk(y|yy|iy)/", "Zelenska speaks"));
        let a = article("Zelenskyy speaks", "");
        assert_eq!(
            matched("/zelensk(y|yy|iy)/ OR Kyiv", &a).unwrap(),
            ["/zelensk(y|yy|iy)/"]
        );
        let query = Query::parse("/zelensk(y|yy|iy)/").unwrap();
        let engine = Engine::new([RuleSpec {
            name: "r",
            query: &query,
            feeds: &[],
        }]);
        let explained = engine.explain(&a, "feed");
        assert_eq!(explained[0].highlights[0].range, 0..8);
    }

    #[test]
    fn matched_terms_are_reported_without_negated_ones() {
        let a = article("NATO and EU meet", "");
        assert_eq!(
            matched("NATO OR EU OR UN NOT sport", &a).unwrap(),
            ["NATO", "EU"]
        );
    }

    #[test]
    fn many_rules_share_leaves_and_filter_by_feed() {
        let qs: Vec<Query> = ["NATO", "NATO AND summit", "NOT NATO", "EU"]
            .iter()
            .map(|q| Query::parse(q).unwrap())
            .collect();
        let only_b = vec!["b".to_string()];
        let engine = Engine::new(qs.iter().enumerate().map(|(i, q)| RuleSpec {
            name: ["r0", "r1", "r2", "r3"][i],
            query: q,
            feeds: if i == 1 { &only_b } else { &[] },
        }));
        let a = article("NATO summit", "");
        let names = |feed| -> Vec<String> {
            engine
                .matches(&a, feed)
                .iter()
                .map(|m| m.name.to_string())
                .collect()
        };
        assert_eq!(names("a"), ["r0"]);
        assert_eq!(names("b"), ["r0", "r1"]);
    }
}

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

/// One rule that matched an article.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleMatch {
    /// Index of the rule in the order given to [`Engine::new`].
    pub rule: usize,
    pub name: String,
    /// The rule's terms that were found, as the user wrote them.
    pub terms: Vec<String>,
}

/// Where a matched term was found, for highlighting: a byte range in one field's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Highlight {
    pub field: Field,
    pub range: Range<usize>,
}

/// A match with the places in the article that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explained {
    pub matched: RuleMatch,
    /// Sorted by field, then position.
    pub highlights: Vec<Highlight>,
}

type LeafId = usize;

#[derive(Debug)]
struct Leaf {
    /// Bit `1 << field as u8` for each field the leaf looks at.
    fields: u8,
    pattern: Pattern,
    source: String,
}

#[derive(Debug)]
enum Node {
    Leaf(LeafId),
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
}

#[derive(Debug)]
struct CompiledRule {
    name: String,
    feeds: Vec<String>,
    root: Node,
    /// Leaves that count as "matched terms" when found (those not under a NOT).
    positive: Vec<LeafId>,
}

/// A first token or a prefix stem, and the leaves that use it.
type KeyLeaves = (Box<str>, Vec<LeafId>);

/// The first tokens and stems that share one [`TokenIndex::key`].
#[derive(Debug, Default)]
struct Candidates {
    first_tokens: Vec<KeyLeaves>,
    stems: Vec<KeyLeaves>,
}

/// Word and prefix leaves for one way of folding accents.
#[derive(Debug, Default)]
struct TokenIndex {
    /// Phrase leaves (a single word is a phrase of one) by their first token; filled while
    /// compiling, then moved into `by_key`.
    by_first_token: FxHashMap<Box<str>, Vec<LeafId>>,
    /// Prefix leaves by their stem; filled while compiling, then moved into `by_key`.
    by_prefix: FxHashMap<Box<str>, Vec<LeafId>>,
    /// First tokens and stems by their key, so that each token of a text costs one lookup
    /// however many stem lengths are in use.
    by_key: KeyTable,
    /// The length in characters of the shortest stem; `usize::MAX` when there is none.
    shortest_stem: usize,
    /// Bit `1 << field as u8` for each field some leaf of this index looks at.
    fields: u8,
}

impl TokenIndex {
    fn build(&mut self) {
        self.shortest_stem = self
            .by_prefix
            .keys()
            .map(|stem| stem.chars().count())
            .min()
            .unwrap_or(usize::MAX);
        let mut by_key: HashMap<Box<str>, Candidates> = HashMap::new();
        for (word, ids) in std::mem::take(&mut self.by_first_token) {
            let key: Box<str> = self.key(&word).into();
            by_key
                .entry(key)
                .or_default()
                .first_tokens
                .push((word, ids));
        }
        for (stem, ids) in std::mem::take(&mut self.by_prefix) {
            let key: Box<str> = self.key(&stem).into();
            by_key.entry(key).or_default().stems.push((stem, ids));
        }
        self.by_key = key_table(by_key);
    }

    /// A word's first `shortest_stem` characters, or all of it if it is shorter. A token has
    /// the key of the first token it equals and of every stem it starts with, since no stem is
    /// shorter than the key.
    fn key<'w>(&self, word: &'w str) -> &'w str {
        char_prefix(word, self.shortest_stem).unwrap_or(word)
    }

    /// The candidates for token `i` of `folded`, if any first token or stem has its key.
    // Called for every token of every article, so an ASCII text's key is cut by byte count
    // and the table is probed with the key's first bytes before any string is looked at.
    #[inline]
    fn candidates(&self, folded: &Folded, i: usize) -> Option<&Candidates> {
        let key_len = if folded.is_ascii() {
            folded.word_len(i).min(self.shortest_stem)
        } else {
            self.key(folded.word(i)).len()
        };
        let group = self.by_key.get(&folded.head(i, key_len))?;
        let key = &folded.word(i)[..key_len];
        group
            .iter()
            .find(|(k, _)| **k == *key)
            .map(|(_, candidates)| candidates)
    }
}

/// Keys by their first eight bytes packed into a `u64` (see [`Folded::head`]): a token that
/// is no key, which is nearly every token, costs a hash of one integer, where a string-keyed
/// map would hash the whole key first. Only keys longer than eight bytes can share a head.
type KeyTable = FxHashMap<u64, Vec<(Box<str>, Candidates)>>;

/// The table of `keys`, each under its packed head.
fn key_table(keys: HashMap<Box<str>, Candidates>) -> KeyTable {
    let mut table = KeyTable::default();
    for (key, candidates) in keys {
        table.entry(pack(&key)).or_default().push((key, candidates));
    }
    table
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
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

#[derive(Debug, Default)]
pub struct Engine {
    leaves: Vec<Leaf>,
    rules: Vec<CompiledRule>,
    /// Indexed by `Accents as usize`: folded with accents ignored, and exact.
    indexes: [TokenIndex; 2],
    /// Regex leaves, in the order of `regex_set`.
    regexes: Vec<LeafId>,
    /// All regexes at once; `None` if the combined set is too big, then each runs alone.
    regex_set: Option<RegexSet>,
    /// Bit `1 << field as u8` for each field some regex looks at.
    regex_fields: u8,
    /// For each leaf, the rules that use it.
    rules_of_leaf: Vec<Vec<usize>>,
    /// Rules that can match when none of their terms is present.
    match_without_terms: Vec<usize>,
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
            if eval(&root, &[]) {
                engine.match_without_terms.push(index);
            }
            positive.sort_unstable();
            positive.dedup();
            engine.rules.push(CompiledRule {
                name: spec.name.to_string(),
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
            source: term.source.clone(),
        });
        self.rules_of_leaf.push(Vec::new());
        ids.insert(key, id);
        id
    }

    /// The rules `article` (from the feed named `feed`) matches, in rule order.
    pub fn matches(&self, article: &Article, feed: &str) -> Vec<RuleMatch> {
        if self.rules.is_empty() {
            return Vec::new();
        }
        self.with_hits(article, None, |hits| self.evaluate(hits, feed))
    }

    /// Runs `then` on the sorted ids of the leaves found in `article`.
    fn with_hits<T>(
        &self,
        article: &Article,
        found: Option<&mut Vec<(LeafId, Highlight)>>,
        then: impl FnOnce(&[LeafId]) -> T,
    ) -> T {
        SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut scratch) => {
                self.scan(article, found, &mut scratch);
                then(&scratch.hits)
            }
            // Only reached if matching re-enters itself on this thread; fresh buffers do.
            Err(_) => {
                let mut scratch = Scratch::default();
                self.scan(article, found, &mut scratch);
                then(&scratch.hits)
            }
        })
    }

    /// Like [`Engine::matches`], with where in the article each rule's terms were found.
    pub fn explain(&self, article: &Article, feed: &str) -> Vec<Explained> {
        // Most articles match nothing: the plain scan says so without recording positions. A
        // matching article is scanned twice, which costs less than positions for every one.
        if self.matches(article, feed).is_empty() {
            return Vec::new();
        }
        let mut found = Vec::new();
        let matched = self.with_hits(article, Some(&mut found), |hits| self.evaluate(hits, feed));
        matched
            .into_iter()
            .map(|matched| {
                let positive = &self.rules[matched.rule].positive;
                let mut highlights: Vec<Highlight> = found
                    .iter()
                    .filter(|(leaf, _)| positive.binary_search(leaf).is_ok())
                    .map(|(_, h)| h.clone())
                    .collect();
                highlights.sort_by_key(|h| (h.field as u8, h.range.start, h.range.end));
                highlights.dedup();
                Explained {
                    matched,
                    highlights,
                }
            })
            .collect()
    }

    fn evaluate(&self, hits: &[LeafId], feed: &str) -> Vec<RuleMatch> {
        if hits.is_empty() && self.match_without_terms.is_empty() {
            return Vec::new();
        }
        let mut candidates: Vec<usize> = self.match_without_terms.clone();
        for &leaf in hits {
            candidates.extend_from_slice(&self.rules_of_leaf[leaf]);
        }
        candidates.sort_unstable();
        candidates.dedup();
        candidates
            .into_iter()
            .filter_map(|index| {
                let rule = &self.rules[index];
                if !rule.feeds.is_empty() && !rule.feeds.iter().any(|f| f == feed) {
                    return None;
                }
                if !eval(&rule.root, hits) {
                    return None;
                }
                let terms = rule
                    .positive
                    .iter()
                    .filter(|leaf| hits.binary_search(leaf).is_ok())
                    .map(|&leaf| self.leaves[leaf].source.clone())
                    .collect();
                Some(RuleMatch {
                    rule: index,
                    name: rule.name.clone(),
                    terms,
                })
            })
            .collect()
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
                self.scan_regexes(text, bit, regex_matched, &mut |leaf, span| {
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
            let Some(candidates) = index.candidates(folded, i) else {
                continue;
            };
            let word = folded.word(i);
            for (_, ids) in candidates.first_tokens.iter().filter(|(w, _)| **w == *word) {
                for &id in ids {
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
            }
            // Byte-wise `starts_with` is a character prefix: both sides are whole UTF-8.
            for (_, ids) in candidates
                .stems
                .iter()
                .filter(|(stem, _)| word.starts_with(&**stem))
            {
                for &id in ids {
                    if self.leaves[id].fields & field != 0 {
                        hit(id, folded.span(i));
                    }
                }
            }
        }
    }

    fn scan_regexes(
        &self,
        text: &str,
        field: u8,
        matched: &mut Vec<bool>,
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
            if let Some(re) = regex_of(id) {
                for m in re.find_iter(text) {
                    hit(id, m.range());
                }
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

fn eval(node: &Node, hits: &[LeafId]) -> bool {
    match node {
        Node::Leaf(id) => hits.binary_search(id).is_ok(),
        Node::And(nodes) => nodes.iter().all(|n| eval(n, hits)),
        Node::Or(nodes) => nodes.iter().any(|n| eval(n, hits)),
        Node::Not(n) => !eval(n, hits),
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
        engine.matches(article, "feed").pop().map(|m| m.terms)
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
                .into_iter()
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
                .into_iter()
                .map(|m| m.name)
                .collect()
        };
        assert_eq!(names("a"), ["r0"]);
        assert_eq!(names("b"), ["r0", "r1"]);
    }
}

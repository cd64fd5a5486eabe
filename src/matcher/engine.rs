//! All rules compiled into one engine.
//!
//! Each distinct term of every rule is a *leaf*. An article is tokenised once per field; each
//! token is looked up in a hash index of leaves (by first word, and by every prefix of the
//! token for `stem*` terms), so the work per article grows with its length, not with the number
//! of rules. Only rules that contain a leaf that was seen — plus the few that can match with no
//! term present, such as `NOT sport` — have their boolean expression evaluated.

use std::collections::HashMap;

use super::query::{Field, Pattern, Query, Term};
use super::text::{Accents, tokens};
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

type LeafId = usize;

#[derive(Debug)]
struct Leaf {
    field: Option<Field>,
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

#[derive(Debug, Default)]
pub struct Engine {
    leaves: Vec<Leaf>,
    rules: Vec<CompiledRule>,
    /// Phrase leaves by their first token.
    by_first_token: HashMap<String, Vec<LeafId>>,
    /// Prefix leaves by their stem.
    by_prefix: HashMap<String, Vec<LeafId>>,
    longest_prefix: usize,
    regexes: Vec<LeafId>,
    /// For each leaf, the rules that use it.
    rules_of_leaf: Vec<Vec<usize>>,
    /// Rules that can match when none of their terms is present.
    match_without_terms: Vec<usize>,
}

impl Engine {
    pub fn new<'a>(rules: impl IntoIterator<Item = RuleSpec<'a>>) -> Engine {
        let mut engine = Engine::default();
        let mut leaf_ids: HashMap<(Option<Field>, String), LeafId> = HashMap::new();
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
        engine
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    fn compile(
        &mut self,
        query: &Query,
        ids: &mut HashMap<(Option<Field>, String), LeafId>,
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

    fn leaf(&mut self, term: &Term, ids: &mut HashMap<(Option<Field>, String), LeafId>) -> LeafId {
        let key = match &term.pattern {
            Pattern::Phrase(words) => format!("p:{}", words.join(" ")),
            Pattern::Prefix(stem) => format!("*:{stem}"),
            Pattern::Regex(re) => format!("/:{}", re.as_str()),
        };
        if let Some(&id) = ids.get(&(term.field, key.clone())) {
            return id;
        }
        let id = self.leaves.len();
        match &term.pattern {
            Pattern::Phrase(words) => self
                .by_first_token
                .entry(words[0].clone())
                .or_default()
                .push(id),
            Pattern::Prefix(stem) => {
                self.longest_prefix = self.longest_prefix.max(stem.chars().count());
                self.by_prefix.entry(stem.clone()).or_default().push(id);
            }
            Pattern::Regex(_) => self.regexes.push(id),
        }
        self.leaves.push(Leaf {
            field: term.field,
            pattern: term.pattern.clone(),
            source: term.source.clone(),
        });
        self.rules_of_leaf.push(Vec::new());
        ids.insert((term.field, key), id);
        id
    }

    /// The rules `article` (from the feed named `feed`) matches, in rule order.
    pub fn matches(&self, article: &Article, feed: &str) -> Vec<RuleMatch> {
        if self.rules.is_empty() {
            return Vec::new();
        }
        let hits = self.leaf_hits(article);
        let mut candidates: Vec<usize> = self.match_without_terms.clone();
        for &leaf in &hits {
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
                if !eval(&rule.root, &hits) {
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

    /// Sorted ids of the leaves found in the article.
    fn leaf_hits(&self, article: &Article) -> Vec<LeafId> {
        let mut hits = Vec::new();
        let authors = article.authors.join(" \n ");
        let categories = article.categories.join(" \n ");
        let link = article.link.as_deref().unwrap_or("");
        let fields: [(Field, &str); 6] = [
            (Field::Title, &article.title),
            (Field::Summary, &article.summary),
            (Field::Content, &article.content),
            (Field::Link, link),
            (Field::Author, &authors),
            (Field::Category, &categories),
        ];
        for (field, text) in fields {
            if text.is_empty() {
                continue;
            }
            let applies = |leaf: &Leaf| match leaf.field {
                Some(f) => f == field,
                None => TEXT_FIELDS.contains(&field),
            };
            let words = tokens(text, Accents::Ignore);
            for (i, word) in words.iter().enumerate() {
                if let Some(ids) = self.by_first_token.get(word) {
                    for &id in ids {
                        let leaf = &self.leaves[id];
                        if let Pattern::Phrase(phrase) = &leaf.pattern
                            && applies(leaf)
                            && words[i..].starts_with(phrase)
                        {
                            hits.push(id);
                        }
                    }
                }
                if self.longest_prefix > 0 {
                    for (end, _) in word
                        .char_indices()
                        .skip(1)
                        .chain(std::iter::once((word.len(), ' ')))
                        .take(self.longest_prefix)
                    {
                        if let Some(ids) = self.by_prefix.get(&word[..end]) {
                            hits.extend(ids.iter().filter(|&&id| applies(&self.leaves[id])));
                        }
                    }
                }
            }
            for &id in &self.regexes {
                let leaf = &self.leaves[id];
                if let Pattern::Regex(re) = &leaf.pattern
                    && applies(leaf)
                    && re.is_match(text)
                {
                    hits.push(id);
                }
            }
        }
        hits.sort_unstable();
        hits.dedup();
        hits
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

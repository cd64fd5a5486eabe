//! Property tests: the compiled engine agrees with a simple reference matcher on random text.
//!
//! The text is generated word by word from a vocabulary where each word has several spellings
//! (case, accents, `ß`/`ss`, Cyrillic case) and one folded form, joined by random separators
//! (spaces, no-break spaces, line breaks, hyphens, apostrophes, dashes). The generator therefore
//! knows the true word list, and the reference matcher works on that list with plain string
//! comparison, independently of the engine's folding and tokenising.

use feedwatch::matcher::{Engine, Query, RuleSpec};
use feedwatch::parse::Article;
use proptest::prelude::*;

/// (spellings, folded form)
const VOCABULARY: &[(&[&str], &str)] = &[
    (&["NATO", "nato", "Nato"], "nato"),
    (&["Ukraine", "UKRAINE", "ukraine"], "ukraine"),
    (&["Ukrainian", "ukrainian"], "ukrainian"),
    (&["café", "CAFÉ", "cafe", "Cafe"], "cafe"),
    (&["Straße", "STRASSE", "strasse"], "strasse"),
    (&["Zelenský", "Zelensky", "ZELENSKÝ"], "zelensky"),
    (&["НАТО", "нато", "Нато"], "нато"),
    (&["Украина", "украина"], "украина"),
    (&["summit", "Summit"], "summit"),
    (&["sport", "Sport", "SPORT"], "sport"),
    (&["talks", "Talks"], "talks"),
    (&["senatorial"], "senatorial"),
    (&["2024"], "2024"),
];

const SEPARATORS: &[&str] = &[
    " ", " ", " ", "\u{a0}", "\n", " - ", "-", "’", "'", ", ", ". ", " (", ") ", " — ",
];

#[derive(Debug, Clone)]
enum Ref {
    Word(usize),
    /// The first `len` characters of a word's folded form.
    Prefix(usize, usize),
    Phrase(usize, usize),
    And(Vec<Ref>),
    Or(Vec<Ref>),
    Not(Box<Ref>),
}

fn folded(word: usize) -> &'static str {
    VOCABULARY[word].1
}

fn reference(query: &Ref, words: &[&str]) -> bool {
    match query {
        Ref::Word(w) => words.contains(&folded(*w)),
        Ref::Prefix(w, len) => {
            let stem: String = folded(*w).chars().take(*len).collect();
            words.iter().any(|t| t.starts_with(&stem))
        }
        Ref::Phrase(a, b) => words
            .windows(2)
            .any(|pair| pair[0] == folded(*a) && pair[1] == folded(*b)),
        Ref::And(qs) => qs.iter().all(|q| reference(q, words)),
        Ref::Or(qs) => qs.iter().any(|q| reference(q, words)),
        Ref::Not(q) => !reference(q, words),
    }
}

/// Writes the query in the query language, picking a spelling for each word.
fn render(query: &Ref, spelling: &mut impl FnMut(usize) -> &'static str) -> String {
    match query {
        Ref::Word(w) => spelling(*w).to_string(),
        Ref::Prefix(w, len) => format!("{}*", folded(*w).chars().take(*len).collect::<String>()),
        Ref::Phrase(a, b) => format!("\"{} {}\"", spelling(*a), spelling(*b)),
        Ref::And(qs) => render_all(qs, " AND ", spelling),
        Ref::Or(qs) => render_all(qs, " OR ", spelling),
        Ref::Not(q) => format!("NOT {}", render(q, spelling)),
    }
}

fn render_all(
    queries: &[Ref],
    operator: &str,
    spelling: &mut impl FnMut(usize) -> &'static str,
) -> String {
    let parts: Vec<String> = queries.iter().map(|q| render(q, spelling)).collect();
    format!("({})", parts.join(operator))
}

fn word() -> impl Strategy<Value = usize> {
    0..VOCABULARY.len()
}

fn query() -> impl Strategy<Value = Ref> {
    let leaf = prop_oneof![
        4 => word().prop_map(Ref::Word),
        1 => (word(), 2usize..6).prop_map(|(w, len)| Ref::Prefix(w, len)),
        1 => (word(), word()).prop_map(|(a, b)| Ref::Phrase(a, b)),
    ];
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(Ref::And),
            prop::collection::vec(inner.clone(), 2..4).prop_map(Ref::Or),
            inner.prop_map(|q| Ref::Not(Box::new(q))),
        ]
    })
}

/// Words of a text as (word, spelling choice, separator after it).
fn text() -> impl Strategy<Value = Vec<(usize, usize, usize)>> {
    prop::collection::vec((word(), 0usize..4, 0..SEPARATORS.len()), 0..14)
}

fn write_text(words: &[(usize, usize, usize)]) -> String {
    words
        .iter()
        .map(|&(w, s, sep)| {
            let spellings = VOCABULARY[w].0;
            format!("{}{}", spellings[s % spellings.len()], SEPARATORS[sep])
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn engine_agrees_with_reference_matcher(
        queries in prop::collection::vec((query(), any::<u64>()), 1..6),
        words in text(),
    ) {
        let written = write_text(&words);
        let truth: Vec<&str> = words.iter().map(|&(w, _, _)| folded(w)).collect();
        let parsed: Vec<(String, Query)> = queries
            .iter()
            .map(|(q, seed)| {
                let mut seed = *seed;
                let mut spelling = |w: usize| {
                    seed = seed.rotate_left(7) ^ 0x9e37_79b9;
                    let spellings = VOCABULARY[w].0;
                    spellings[(seed as usize) % spellings.len()]
                };
                let text = render(q, &mut spelling);
                let parsed = Query::parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
                (text, parsed)
            })
            .collect();
        let engine = Engine::new(parsed.iter().map(|(text, query)| RuleSpec {
            name: text,
            query,
            feeds: &[],
        }));
        let article = Article { title: written.clone(), ..Article::default() };
        let found: Vec<usize> = engine.matches(&article, "feed").iter().map(|m| m.rule).collect();
        let expected: Vec<usize> = queries
            .iter()
            .enumerate()
            .filter(|(_, (q, _))| reference(q, &truth))
            .map(|(i, _)| i)
            .collect();
        prop_assert_eq!(found, expected, "text {:?}, queries {:?}", written, parsed.iter().map(|p| &p.0).collect::<Vec<_>>());
    }

    #[test]
    fn every_highlight_covers_a_matched_spelling(words in text(), target in word()) {
        let written = write_text(&words);
        let query = Query::parse(VOCABULARY[target].0[0]).unwrap();
        let engine = Engine::new([RuleSpec { name: "r", query: &query, feeds: &[] }]);
        let article = Article { title: written.clone(), ..Article::default() };
        for explained in engine.explain(&article, "feed") {
            for h in explained.highlights {
                let shown = &written[h.range];
                prop_assert!(VOCABULARY[target].0.contains(&shown), "{:?} in {:?}", shown, written);
            }
        }
    }
}

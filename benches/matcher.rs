//! Matching throughput: articles per second on one core with 10, 1,000 and 10,000 rules.
//!
//! The articles and rules are generated from a fixed seed so every run measures the same work:
//! news-like titles, summaries and (for some articles) full content drawn from a vocabulary of
//! common words, names and places in several scripts; rules mix single words, prefixes, phrases,
//! boolean combinations, field limits and a few regular expressions, mostly about entities that
//! rarely appear, as real watch lists are.
//!
//! Run with `cargo bench --bench matcher`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use feedwatch::matcher::{Engine, Query, RuleSpec};
use feedwatch::parse::Article;

/// A small seeded generator (xorshift64*), so the corpus is the same on every run.
struct Seeded(u64);

impl Seeded {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &'a [String]) -> &'a str {
        &items[self.below(items.len())]
    }
}

const COMMON: &str = "the of and to in a is that for on was with he it as at by from his \
    said has have are be were an which after government minister president officials year new \
    people two would will its been who more than but their also over they this had not up \
    week talks security military forces country state economy market prices police election \
    party vote court report agency percent million billion support defence energy oil gas war \
    peace border attack city region local national international spokesperson statement \
    tuesday wednesday monday friday according sources meeting summit leaders deal trade";

const NAMED: &str = "NATO Ukraine Ukrainian Russia Russian Kremlin Putin Zelensky Zelenský \
    Biden Trump Stoltenberg Brussels Berlin Paris London Washington Beijing Moscow Kyiv \
    Kharkiv Odesa Poland Germany France Britain China Taiwan Israel Gaza Iran Syria Turkey \
    Erdoğan Macron Scholz Merz EU UN IMF OPEC Reuters AP café straße Москва Украина НАТО \
    Кремль Зеленский 乌克兰 总统 北约 俄罗斯";

fn words(list: &str) -> Vec<String> {
    list.split_whitespace().map(str::to_string).collect()
}

/// Made-up names for the long tail of rules (companies, people, places nobody writes about).
fn rare_names(rng: &mut Seeded, n: usize) -> Vec<String> {
    const SYLLABLES: [&str; 16] = [
        "zor", "vex", "ka", "lin", "dra", "mo", "tes", "qua", "rin", "bel", "sto", "nak", "ur",
        "phi", "gam", "tor",
    ];
    (0..n)
        .map(|_| {
            let mut name = String::new();
            for _ in 0..2 + rng.below(2) {
                name.push_str(SYLLABLES[rng.below(SYLLABLES.len())]);
            }
            name
        })
        .collect()
}

fn sentence(rng: &mut Seeded, common: &[String], named: &[String], n: usize) -> String {
    let mut out = String::new();
    for i in 0..n {
        if i > 0 {
            out.push(if rng.below(12) == 0 { ',' } else { ' ' });
            if out.ends_with(',') {
                out.push(' ');
            }
        }
        if rng.below(6) == 0 {
            out.push_str(rng.pick(named));
            if rng.below(8) == 0 {
                out.push_str("'s");
            }
        } else {
            out.push_str(rng.pick(common));
        }
    }
    out.push('.');
    out
}

fn articles(rng: &mut Seeded, count: usize, rare: &[String]) -> Vec<Article> {
    let common = words(COMMON);
    let mut named = words(NAMED);
    // A few rare names do appear, so some long-tail rules fire.
    named.extend(rare.iter().take(20).cloned());
    (0..count)
        .map(|i| {
            let title_len = 6 + rng.below(8);
            let summary_len = 25 + rng.below(40);
            let content = if rng.below(10) < 4 {
                (0..4 + rng.below(6))
                    .map(|_| {
                        let length = 15 + rng.below(20);
                        sentence(rng, &common, &named, length)
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            } else {
                String::new()
            };
            Article {
                title: sentence(rng, &common, &named, title_len),
                summary: sentence(rng, &common, &named, summary_len),
                content,
                link: Some(format!("https://news.example/world/{i}")),
                categories: vec![rng.pick(&common).to_string(), rng.pick(&named).to_string()],
                authors: vec!["Staff reporter".into()],
                ..Article::default()
            }
        })
        .collect()
}

fn rules(rng: &mut Seeded, count: usize, rare: &[String]) -> Vec<String> {
    let named = words(NAMED);
    let common = words(COMMON);
    (0..count)
        .map(|i| {
            // The first rules are the ones people write about the news of the day; the rest
            // are the long tail of specific names.
            let subject = if i < 20 || rng.below(20) == 0 {
                rng.pick(&named).to_string()
            } else {
                rng.pick(rare).to_string()
            };
            match rng.below(20) {
                0..=6 => subject,
                7..=9 => format!("{}*", subject.chars().take(5).collect::<String>()),
                10..=11 => format!("\"{subject} {}\"", rng.pick(&common)),
                12..=13 => format!("{subject} AND NOT {}", rng.pick(&common)),
                14..=15 => format!("({subject} OR {}) {}", rng.pick(rare), rng.pick(&named)),
                16 => format!("title:{subject}"),
                17 => format!("NOT {subject} AND {}", rng.pick(rare)),
                18 if i % 5 == 0 => format!("/{subject}(s|es)?/"),
                _ => format!("{subject} {}", rng.pick(rare)),
            }
        })
        .collect()
}

fn main() {
    let mut rng = Seeded(0x5eed_f00d_cafe_beef);
    let rare = rare_names(&mut rng, 20_000);
    let corpus = articles(&mut rng, 2_000, &rare);
    let words_per_article = corpus
        .iter()
        .map(|a| {
            (a.title.len() + a.summary.len() + a.content.len()) as f64 / 6.0 // ~6 bytes a word
        })
        .sum::<f64>()
        / corpus.len() as f64;
    println!(
        "{} articles, about {words_per_article:.0} words each",
        corpus.len()
    );
    for count in [10, 1_000, 10_000] {
        let texts = rules(&mut rng, count, &rare);
        let queries: Vec<Query> = texts
            .iter()
            .map(|q| Query::parse(q).unwrap_or_else(|e| panic!("{q}: {e}")))
            .collect();
        let names: Vec<String> = (0..count).map(|i| format!("rule{i}")).collect();
        let build = Instant::now();
        let engine = Engine::new(queries.iter().zip(&names).map(|(query, name)| RuleSpec {
            name,
            query,
            feeds: &[],
        }));
        let build = build.elapsed();

        // Warm up, then run whole passes over the corpus for at least two seconds.
        let mut matched = 0usize;
        for article in &corpus {
            matched += engine.matches(article, "feed").len();
        }
        let start = Instant::now();
        let mut done = 0usize;
        while start.elapsed() < Duration::from_secs(2) {
            for article in &corpus {
                black_box(engine.matches(black_box(article), "feed"));
            }
            done += corpus.len();
        }
        let rate = done as f64 / start.elapsed().as_secs_f64();
        println!(
            "{count:>6} rules: {rate:>9.0} articles/s  ({:.1} µs/article, {:.2} matches/article, built in {} ms)",
            1e6 / rate,
            matched as f64 / corpus.len() as f64,
            build.as_millis()
        );
    }
}

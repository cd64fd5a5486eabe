//! Matching throughput: articles per second on one core with 10, 1,000 and 10,000 rules.
//!
//! The articles and rules are generated from a fixed seed so every run measures the same work.
//! The realistic case models what users watch and what news says: rules are mostly single
//! names, "Given Surname" phrases and a few `stem*` prefixes about distinct topics (people,
//! places, organisations; some in Cyrillic or accented Latin), with about one regex per 200
//! rules and at most 20 in all. Articles have a title of about 10 words and a summary of about
//! 60, drawn mostly from common words with an occasional name, so a typical article matches no
//! rule or one. The matches-per-article figure is printed so the reader can judge that.
//!
//! Two worst-case lines run rules written on everyday words (`market`, `police`), where nearly
//! every article matches many rules: 1,000 such rules alone, and 1,000 among 9,000 realistic
//! ones.
//!
//! Run with `cargo bench --bench matcher`; `cargo bench --bench matcher -- everyday` runs only
//! the lines whose label holds `everyday`.

use std::collections::HashSet;
use std::hint::black_box;
use std::time::{Duration, Instant};

mod common;

use common::Seeded;
use feedwatch::matcher::{Engine, Query, RuleSpec};
use feedwatch::parse::Article;

const COMMON: &str = "the of and to in a is that for on was with he it as at by from his \
    said has have are be were an which after government minister president officials year new \
    people two would will its been who more than but their also over they this had not up \
    week talks security military forces country state economy market prices police election \
    party vote court report agency percent million billion support defence energy oil gas war \
    peace border attack city region local national international spokesperson statement \
    tuesday wednesday monday friday according sources meeting summit leaders deal trade \
    she her we our you could should may might about into than then there these those when \
    where while during before since under between against without through first last three \
    four five hundred thousand today yesterday morning evening night day month time years \
    months days hours officials workers residents families children women men group groups \
    company companies bank banks plan plans policy law laws bill budget tax taxes rate rates \
    growth inflation jobs industry business markets investors shares stocks funds costs \
    health hospital school schools water food weather storm fire flooding rain snow heat \
    team season match game players coach club league cup final win lost won record \
    announced told says added called expected reported confirmed denied warned agreed \
    plans rose fell increased cut raised held began ended continued made took gave \
    public private federal central foreign domestic political economic social military \
    major former senior chief top key high low big small long short large early late";

/// Real names in several scripts, part of the topic pool like the made-up ones.
const NAMED: &str = "NATO Ukraine Ukrainian Russia Kremlin Putin Zelenský Stoltenberg \
    Brussels Berlin Paris London Washington Beijing Moscow Kyiv Kharkiv Odesa Poland Germany \
    France Britain China Taiwan Israel Gaza Iran Syria Turkey Erdoğan Macron Scholz Merz OPEC \
    Reuters Москва Украина НАТО Кремль Зеленский Kraków Łódź Gdańsk Zürich Malmö Bogotá \
    Medellín São Paulo Curaçao Øresund Ålesund Reykjavík";

/// Given names for "Given Surname" phrases; shared by many people, as in real news.
const GIVEN: &str = "Anna Maria Olga Elena Sofia Ivan Pavel Jan Piotr Marta Hans Klaus Pierre \
    Jean Luis Carlos Ahmed Omar Yusuf Li Wei Chen Kenji Aiko Sergei Dmitri Natalia Irina \
    Андрей Мария Ольга Павел François Zoë Agnès Jürgen Björn Åsa Łukasz Tomáš";

fn words(list: &str) -> Vec<String> {
    list.split_whitespace().map(str::to_string).collect()
}

/// `n` distinct topic words: made-up Latin names, some accented, some Cyrillic, plus [`NAMED`].
fn topic_pool(rng: &mut Seeded, n: usize, common: &[String]) -> Vec<String> {
    const LATIN: [&str; 24] = [
        "zor", "vex", "ka", "lin", "dra", "mo", "tes", "qua", "rin", "bel", "sto", "nak", "ur",
        "phi", "gam", "tor", "wen", "ilo", "mar", "sev", "ot", "pra", "dun", "hal",
    ];
    const ACCENTED: [&str; 8] = ["é", "ö", "á", "ł", "ñ", "ü", "ø", "č"];
    const CYRILLIC: [&str; 16] = [
        "ка", "лин", "дра", "мо", "тес", "рин", "бел", "сто", "нак", "ур", "гам", "тор", "вен",
        "ило", "мар", "сев",
    ];
    let mut seen: HashSet<String> = common.iter().map(|w| w.to_lowercase()).collect();
    let mut pool = Vec::with_capacity(n);
    for name in words(NAMED) {
        if seen.insert(name.to_lowercase()) {
            pool.push(name);
        }
    }
    while pool.len() < n {
        let syllables = 2 + rng.below(3);
        let mut name = String::new();
        match rng.below(20) {
            0..=2 => {
                for _ in 0..syllables {
                    name.push_str(CYRILLIC[rng.below(CYRILLIC.len())]);
                }
            }
            kind => {
                for k in 0..syllables {
                    name.push_str(LATIN[rng.below(LATIN.len())]);
                    if kind < 6 && k == 0 {
                        name.push_str(ACCENTED[rng.below(ACCENTED.len())]);
                    }
                }
            }
        }
        // Capitalise, as names are written.
        let mut chars = name.chars();
        let name: String = match chars.next() {
            Some(first) => first.to_uppercase().chain(chars).collect(),
            None => continue,
        };
        if seen.insert(name.to_lowercase()) {
            pool.push(name);
        }
    }
    pool
}

/// What articles and rules are written from.
struct Vocabulary {
    common: Vec<String>,
    given: Vec<String>,
    topics: Vec<String>,
}

impl Vocabulary {
    /// A name as news writes it: a topic word, or now and then a person's full name.
    fn push_name(&self, rng: &mut Seeded, out: &mut String) {
        if rng.below(4) == 0 {
            out.push_str(rng.pick(&self.given));
            out.push(' ');
        }
        out.push_str(rng.pick(&self.topics));
        match rng.below(10) {
            0 => out.push_str("'s"),
            1 => out.push('s'),
            _ => {}
        }
    }

    /// `n` words, mostly common, with a name about once every `name_every` words.
    fn sentence(&self, rng: &mut Seeded, n: usize, name_every: usize) -> String {
        let mut out = String::new();
        for i in 0..n {
            if i > 0 {
                if rng.below(12) == 0 {
                    out.push(',');
                }
                out.push(' ');
            }
            if rng.below(name_every) == 0 {
                self.push_name(rng, &mut out);
            } else {
                out.push_str(rng.pick(&self.common));
            }
        }
        out.push('.');
        out
    }

    fn articles(&self, rng: &mut Seeded, count: usize) -> Vec<Article> {
        (0..count)
            .map(|i| {
                let title_length = 8 + rng.below(5);
                let summary_length = 50 + rng.below(21);
                Article {
                    title: self.sentence(rng, title_length, 10),
                    summary: self.sentence(rng, summary_length, 40),
                    link: Some(format!("https://news.example/world/{i}")),
                    categories: vec![rng.pick(&self.common).to_string()],
                    authors: vec!["Staff reporter".into()],
                    ..Article::default()
                }
            })
            .collect()
    }

    /// `count` rules about the given subjects, in the mix users write.
    fn rules(&self, rng: &mut Seeded, count: usize, subjects: &[String]) -> Vec<String> {
        let max_regexes = (count / 200).clamp(1, 20);
        let mut regexes = 0;
        (0..count)
            .map(|i| {
                let subject = rng.pick(subjects);
                if i % 200 == 199 && regexes < max_regexes {
                    regexes += 1;
                    return format!("/{subject}(s|es)?/");
                }
                match rng.below(20) {
                    0..=8 => subject.to_string(),
                    9..=11 => format!("\"{} {subject}\"", rng.pick(&self.given)),
                    12..=13 => {
                        // A name's stem, to catch its inflections (`Ukrain*`).
                        let length = subject.chars().count().saturating_sub(1).max(4);
                        let stem: String = subject.chars().take(length).collect();
                        format!("{stem}*")
                    }
                    14 => format!("{subject} {}", rng.pick(subjects)),
                    15 => format!("{subject} OR {}", rng.pick(subjects)),
                    16 => format!("{subject} AND NOT {}", rng.pick(&self.common)),
                    17 => format!("title:{subject}"),
                    18 => format!(
                        "({subject} OR {}) {}",
                        rng.pick(subjects),
                        rng.pick(subjects)
                    ),
                    _ => format!("\"{subject} {}\"", rng.pick(&self.common)),
                }
            })
            .collect()
    }
}

/// Builds an engine from `texts` and prints its throughput over `corpus`.
fn measure(label: &str, texts: &[String], corpus: &[Article]) {
    let wanted = std::env::args().skip(1).find(|arg| !arg.starts_with("--"));
    if wanted.is_some_and(|wanted| !label.contains(&wanted)) {
        return;
    }
    let queries: Vec<Query> = texts
        .iter()
        .map(|q| Query::parse(q).unwrap_or_else(|e| panic!("{q}: {e}")))
        .collect();
    let names: Vec<String> = (0..texts.len()).map(|i| format!("rule{i}")).collect();
    let build = Instant::now();
    let engine = Engine::new(queries.iter().zip(&names).map(|(query, name)| RuleSpec {
        name,
        query,
        feeds: &[],
    }));
    let build = build.elapsed();

    // Warm up, then run whole passes over the corpus for at least two seconds.
    let mut matched = 0usize;
    for article in corpus {
        matched += engine.matches(article, "feed").len();
    }
    let start = Instant::now();
    let mut done = 0usize;
    while start.elapsed() < Duration::from_secs(2) {
        for article in corpus {
            black_box(engine.matches(black_box(article), "feed"));
        }
        done += corpus.len();
    }
    let rate = done as f64 / start.elapsed().as_secs_f64();
    println!(
        "{label:<28} {:>6} rules: {rate:>9.0} articles/s  ({:.1} µs/article, {:.2} matches/article, built in {} ms)",
        texts.len(),
        1e6 / rate,
        matched as f64 / corpus.len() as f64,
        build.as_millis()
    );
}

fn main() {
    let mut rng = Seeded(0x5eed_f00d_cafe_beef);
    let common = words(COMMON);
    let topics = topic_pool(&mut rng, 30_000, &common);
    let vocabulary = Vocabulary {
        common,
        given: words(GIVEN),
        topics,
    };
    let corpus = vocabulary.articles(&mut rng, 2_000);
    let words_per_article = corpus
        .iter()
        .map(|a| a.title.split_whitespace().count() + a.summary.split_whitespace().count())
        .sum::<usize>() as f64
        / corpus.len() as f64;
    println!(
        "{} articles, {words_per_article:.0} words each on average; {} distinct topic words",
        corpus.len(),
        vocabulary.topics.len()
    );
    for count in [10, 1_000, 10_000] {
        let texts = vocabulary.rules(&mut rng, count, &vocabulary.topics);
        measure("realistic", &texts, &corpus);
    }
    let texts = vocabulary.rules(&mut rng, 1_000, &vocabulary.common);
    measure("worst case (everyday words)", &texts, &corpus);
    // A large watch list where a tenth of the rules are broad: every shape, and nearly every
    // article matches hundreds of rules.
    let mut texts = vocabulary.rules(&mut rng, 9_000, &vocabulary.topics);
    texts.extend(vocabulary.rules(&mut rng, 1_000, &vocabulary.common));
    measure("1 in 10 on everyday words", &texts, &corpus);
}

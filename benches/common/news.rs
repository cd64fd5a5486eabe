//! Generated news for the polling benchmarks: everyday words with a topic term now and then,
//! and how long the benchmarks' servers wait before they answer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How long the server takes to start each answer.
#[derive(Clone, Copy, Debug)]
pub struct Latency {
    pub median: Duration,
    pub long_tail: bool,
}

/// Answers ever given, to draw each one's latency from.
static ANSWERS: AtomicU64 = AtomicU64::new(0);

impl Latency {
    /// The wait before one answer: fixed, or log-normal with sigma 1 around the median.
    pub fn draw(&self) -> Duration {
        if !self.long_tail {
            return self.median;
        }
        let mut rng = super::Seeded(ANSWERS.fetch_add(1, Ordering::Relaxed) * 0x9e37_79b9 + 1);
        rng.next();
        // Box-Muller: one standard normal number from two uniform ones.
        let (u1, u2) = (rng.unit().max(1e-12), rng.unit());
        let normal = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        self.median
            .mul_f64(normal.exp())
            .min(Duration::from_secs(20))
    }
}

/// Everyday news words for generated text; none of them alone makes a rule match.
#[rustfmt::skip]
pub const WORDS: &[&str] = &[
    "government", "market", "council", "report", "energy", "weather", "minister", "vote",
    "football", "election", "border", "trade", "court", "strike", "harbour", "rail", "science",
    "port", "health", "city", "police", "school", "company", "price", "water", "people", "year",
    "week", "plan", "office", "local", "public", "service", "project", "data", "hospital",
    "road", "club", "season", "film", "music", "festival", "museum", "river", "farm", "bridge",
    "airport", "train", "ferry", "union", "workers", "teachers", "students", "parents",
    "residents", "mayor", "judge", "jury", "trial", "agency", "survey", "study", "research",
    "results", "figures", "growth", "jobs", "wages", "rent", "housing", "homes", "shops",
    "tourism", "visitors", "summer", "winter", "morning", "evening", "night", "weekend", "new",
    "old", "first", "last", "major", "small", "national", "regional", "official", "said",
    "says", "will", "could", "after", "before", "during", "about", "against", "between",
    "with", "from", "over", "under", "the", "a", "of", "to", "in", "on", "and", "for", "is",
    "was", "has", "have", "more", "than", "its", "their", "this", "that",
];

/// What the rules look for; about one article in eight mentions one of them.
#[rustfmt::skip]
pub const TOPIC_TERMS: &[&str] = &[
    "Ukraine", "Ukrainian", "NATO", "Jens Stoltenberg", "Kremlin", "inflation", "budget",
    "storm", "storms", "earthquake", "wildfire", "ransomware", "data breach", "Olympics",
    "vaccine", "outbreak", "central bank", "interest rates", "semiconductor", "chip factory",
    "climate summit", "emissions", "heatwave", "flooding", "cyclone", "refugees", "asylum",
    "artificial intelligence", "quantum computer", "space launch", "Mars", "satellite",
];

/// A tiny deterministic generator, so every run serves the same feeds.
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// `n` everyday words; one time in `topic_odds` one of them is a topic term instead.
    pub fn words(&mut self, n: usize, topic_odds: usize) -> String {
        let topic_at = (self.below(topic_odds) == 0).then(|| self.below(n));
        let mut text = String::new();
        for i in 0..n {
            if i > 0 {
                text.push(' ');
            }
            if topic_at == Some(i) {
                text.push_str(TOPIC_TERMS[self.below(TOPIC_TERMS.len())]);
            } else {
                text.push_str(WORDS[self.below(WORDS.len())]);
            }
        }
        text
    }
}

/// One listener on each of `hosts` loopback addresses (127.0.0.1, 127.0.0.2, …), as real feeds
/// are spread over many sites, with the addresses they are bound to.
pub async fn loopback_listeners(
    hosts: usize,
) -> (Vec<tokio::net::TcpListener>, Vec<std::net::SocketAddr>) {
    let mut listeners = Vec::new();
    for host in 0..hosts {
        let ip = format!("127.0.{}.{}", host / 250, host % 250 + 1);
        let listener = tokio::net::TcpListener::bind((ip.as_str(), 0))
            .await
            .expect("bind a loopback address");
        listeners.push(listener);
    }
    let addrs = listeners.iter().map(|l| l.local_addr().unwrap()).collect();
    (listeners, addrs)
}

//! "Same story" measured on a labelled set of news items shaped like real ones
//! (`tests/data/stories.jsonl`): wire copies republished with edits and other headlines, the
//! same event written independently by several outlets, and hard negatives (other events with
//! the same keywords, daily live pages, templated market and match reports, empty items).
//!
//! Every pair of items is "same story" or not, by label and by feedwatch; precision and recall
//! are over those pairs.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use feedwatch::alert::{Alert, FeedRef};
use feedwatch::dedup::identify;
use feedwatch::fetch::Validators;
use feedwatch::parse::Article;
use feedwatch::store::{NewEntry, PollOutcome, PollWrite, RaisedAlert, Store};
use feedwatch::story::{self, StoryParams, Window};

#[derive(Deserialize)]
struct Item {
    story: String,
    kind: String,
    feed: String,
    at: DateTime<Utc>,
    title: String,
    summary: String,
}

fn items() -> Vec<Item> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/stories.jsonl");
    let text = std::fs::read_to_string(path).expect("the labelled set");
    let mut items: Vec<Item> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("a labelled item"))
        .collect();
    items.sort_by_key(|i| i.at);
    items
}

struct Scores {
    precision: f64,
    recall: f64,
    true_pairs: usize,
    found_pairs: usize,
    missed: Vec<String>,
    wrong: Vec<String>,
}

/// Places every item in a story, in order of time, in memory as `backtest` does.
fn stories_in_memory(items: &[Item], params: StoryParams) -> Vec<i64> {
    let mut window = Window::new(params);
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let sketch = story::sketch(&item.title, &item.summary);
            window.place(i as i64, sketch, item.at).story
        })
        .collect()
}

/// Stores every item, one poll each in order of time, as the daemon does, with a rule that
/// matches everything and alerts per article; each alert names its story.
fn stories_in_store(items: &[Item]) -> Vec<i64> {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("fw.db")).unwrap();
    let urls: Vec<String> = items
        .iter()
        .map(|i| format!("http://{}/", i.feed))
        .collect();
    let ids = store
        .sync_feeds(
            urls.iter()
                .zip(items)
                .map(|(u, i)| (u.as_str(), i.feed.as_str())),
        )
        .unwrap();
    for (n, (item, url)) in items.iter().zip(&urls).enumerate() {
        let article = Article {
            guid: Some(format!("item-{n}")),
            title: item.title.clone(),
            summary: item.summary.clone(),
            link: Some(format!("{url}{n}")),
            ..Article::default()
        };
        let identity = identify(&article);
        let feed = FeedRef {
            name: item.feed.clone(),
            url: url.clone(),
            title: item.feed.clone(),
        };
        let alert = Alert::new("all", feed, &article, &identity.id, Vec::new(), item.at);
        let write = PollWrite {
            feed: ids[url],
            feed_url: url.clone(),
            present: Vec::new(),
            touched: Vec::new(),
            listing: None,
            new: vec![NewEntry {
                sketch: story::sketch_article(&article),
                article,
                identity,
                alerts: vec![RaisedAlert {
                    alert,
                    notifiers: Vec::new(),
                    per_story: false,
                }],
            }],
            outcome: PollOutcome::Success {
                status: 200,
                validators: Validators::default(),
                title: None,
                moved_to: None,
                missed_items: None,
                ttl: None,
                unchanged: false,
            },
            now: item.at,
            next_poll_at: item.at,
            story: StoryParams::default(),
            server_wait: None,
            alerts_json: Default::default(),
        };
        store.commit_polls(&[write]).unwrap()[0].as_ref().unwrap();
    }
    let by_link: HashMap<String, i64> = store
        .matches(10_000)
        .unwrap()
        .into_iter()
        .map(|m| (m.alert.article.link.unwrap(), m.alert.story.unwrap().id))
        .collect();
    urls.iter()
        .enumerate()
        .map(|(n, url)| by_link[&format!("{url}{n}")])
        .collect()
}

/// Each story as the set of item positions in it, so that two placements compare.
fn partition(stories: &[i64]) -> Vec<Vec<usize>> {
    let mut groups: HashMap<i64, Vec<usize>> = HashMap::new();
    for (i, s) in stories.iter().enumerate() {
        groups.entry(*s).or_default().push(i);
    }
    let mut groups: Vec<Vec<usize>> = groups.into_values().collect();
    groups.sort();
    groups
}

/// Scores the pairs of a placement against the labels.
fn score_placed(items: &[Item], stories: &[i64]) -> Scores {
    let (mut tp, mut fp, mut fneg) = (0, 0, 0);
    let (mut missed, mut wrong) = (Vec::new(), Vec::new());
    for i in 0..items.len() {
        for j in i + 1..items.len() {
            let truth = items[i].story == items[j].story;
            let found = stories[i] == stories[j];
            let pair = || {
                format!(
                    "{} {} / {} {}",
                    items[i].story, items[i].feed, items[j].story, items[j].feed
                )
            };
            match (truth, found) {
                (true, true) => tp += 1,
                (false, true) => {
                    fp += 1;
                    wrong.push(pair());
                }
                (true, false) => {
                    fneg += 1;
                    missed.push(format!("{} ({})", pair(), items[i].kind));
                }
                (false, false) => {}
            }
        }
    }
    Scores {
        precision: if tp + fp == 0 {
            1.0
        } else {
            tp as f64 / (tp + fp) as f64
        },
        recall: tp as f64 / (tp + fneg) as f64,
        true_pairs: tp + fneg,
        found_pairs: tp + fp,
        missed,
        wrong,
    }
}

#[test]
fn same_story_precision_and_recall_meet_their_goals_on_the_labelled_set() {
    let items = items();
    let kinds: HashMap<&str, usize> = items.iter().fold(HashMap::new(), |mut m, i| {
        *m.entry(i.kind.as_str()).or_default() += 1;
        m
    });
    let s = score_placed(&items, &stories_in_memory(&items, StoryParams::default()));
    println!(
        "{} items {kinds:?}: precision {:.3} recall {:.3} ({} labelled same-story pairs, {} found)",
        items.len(),
        s.precision,
        s.recall,
        s.true_pairs,
        s.found_pairs
    );
    let independent_missed = s
        .missed
        .iter()
        .filter(|m| m.ends_with("(independent)"))
        .count();
    let independent_pairs: usize = {
        let mut sizes: HashMap<&str, usize> = HashMap::new();
        for i in items.iter().filter(|i| i.kind == "independent") {
            *sizes.entry(i.story.as_str()).or_default() += 1;
        }
        sizes.values().map(|n| n * (n - 1) / 2).sum()
    };
    println!(
        "independent reports: {} of {independent_pairs} pairs found; copies: {} of {} pairs found",
        independent_pairs - independent_missed,
        s.true_pairs - independent_pairs - (s.missed.len() - independent_missed),
        s.true_pairs - independent_pairs
    );
    println!("missed: {:#?}\nwrong: {:#?}", s.missed, s.wrong);
    assert!(s.precision >= 0.97, "precision {:.3}", s.precision);
    assert!(s.recall >= 0.85, "recall {:.3}", s.recall);
}

/// The threshold sweep behind the default (docs/performance.md); run with `--nocapture`.
#[test]
fn the_threshold_trades_precision_for_recall() {
    let items = items();
    let mut last_recall = 1.0;
    for threshold in [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9] {
        let params = StoryParams {
            threshold,
            ..StoryParams::default()
        };
        let s = score_placed(&items, &stories_in_memory(&items, params));
        println!(
            "threshold {threshold:.1}: precision {:.3} recall {:.3}",
            s.precision, s.recall
        );
        assert!(
            s.recall <= last_recall + 1e-9,
            "recall grows with the threshold"
        );
        last_recall = s.recall;
    }
}

#[test]
fn a_window_of_zero_joins_nothing_but_same_instant_copies() {
    let items = items();
    let params = StoryParams {
        window: std::time::Duration::ZERO,
        ..StoryParams::default()
    };
    let s = score_placed(&items, &stories_in_memory(&items, params));
    assert_eq!(s.found_pairs, 0, "{:?}", s.wrong);
}

#[test]
fn the_store_places_the_labelled_set_as_the_window_in_memory_does() {
    let items = items();
    let stored = stories_in_store(&items);
    let in_memory = stories_in_memory(&items, StoryParams::default());
    assert_eq!(partition(&stored), partition(&in_memory));
}

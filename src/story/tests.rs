use chrono::{TimeZone, Utc};
use proptest::prelude::*;

use super::*;

fn sk(title: &str, summary: &str) -> Option<Sketch> {
    sketch(title, summary)
}

const LEAD: &str = "NATO leaders said Tuesday that Ukraine will be invited to join the military \
    alliance when allies agree and conditions are met, but stopped short of offering a timeline.";

#[test]
fn another_headline_over_the_same_lead_is_the_same_story() {
    let a = sk("NATO says Ukraine will be invited to join", LEAD).unwrap();
    let b = sk("Zelenskyy criticises NATO over membership timeline", LEAD).unwrap();
    assert!(
        similarity(&a, &b) >= DEFAULT_THRESHOLD,
        "{}",
        similarity(&a, &b)
    );
}

#[test]
fn case_accents_and_punctuation_do_not_make_another_story() {
    let a = sk("Zelenskyy in Vilnius", LEAD).unwrap();
    let b = sk(
        "ZELENSKYY IN VILNIUS!",
        &LEAD.to_uppercase().replace(',', " ;"),
    )
    .unwrap();
    assert_eq!(a.exact, b.exact);
    assert_eq!(similarity(&a, &b), 1.0);
}

#[test]
fn empty_or_bare_headlines_have_no_sketch() {
    assert_eq!(sk("", ""), None);
    assert_eq!(sk("Live updates", ""), None);
    assert_eq!(sk("", "   "), None);
}

#[test]
fn cyrillic_and_han_text_is_sketched_by_the_matchers_tokens() {
    let ru =
        "Движение автотранспорта по Крымскому мосту приостановлено, сообщили в оперативном штабе.";
    let a = sk("Движение по Крымскому мосту приостановлено", ru).unwrap();
    let b = sk("ДВИЖЕНИЕ ПО КРЫМСКОМУ МОСТУ ПРИОСТАНОВЛЕНО", ru).unwrap();
    assert_eq!(a.exact, b.exact);
    // One token per Han character: the pairs are character pairs.
    let zh = "嫦娥六号返回器携带来自月背的月球样品准确着陆于内蒙古四子王旗预定区域";
    let c = sk("嫦娥六号返回器成功着陆", zh).unwrap();
    let d = sk("嫦娥六号任务取得圆满成功", zh).unwrap();
    assert!(similarity(&c, &d) >= DEFAULT_THRESHOLD);
}

#[test]
fn a_stored_sketch_reads_back_equal() {
    let a = sk("title words here", LEAD).unwrap();
    assert_eq!(Sketch::from_bytes(a.exact, &a.to_bytes()), Some(a.clone()));
    assert_eq!(Sketch::from_bytes(a.exact, &[1, 2, 3]), None);
}

proptest! {
    /// A sketch stored with whole 32-bit minima reads back as the sketch made now.
    #[test]
    fn a_sketch_stored_with_whole_minima_reads_back_as_made_now(
        shingles in prop::collection::vec(any::<u64>(), 1..200),
    ) {
        let whole = whole_min_hashes(&shingles);
        let mut stored = 7u16.to_le_bytes().to_vec();
        stored.extend(whole.iter().flat_map(|m| m.to_le_bytes()));
        let read = Sketch::from_bytes(3, &stored).unwrap();
        prop_assert_eq!(read.mins, min_hashes(&shingles));
        prop_assert_eq!(read.size, 7);
    }
}

#[test]
fn the_window_forgets_articles_older_than_it() {
    let params = StoryParams::default();
    let mut window = Window::new(params);
    let t0 = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    let a = sk("NATO says Ukraine will be invited", LEAD);
    let placed = window.place(1, a.clone(), t0);
    assert_eq!(placed.story, 1);
    let joined = window.place(2, a.clone(), t0 + chrono::Duration::hours(47));
    assert_eq!(joined.story, 1);
    assert_eq!(joined.joined.map(|j| j.article), Some(1));
    // Article 1 is gone from the window; article 2 (47 h old) is not: 3 joins 2, in story 1.
    let later = window.place(3, a.clone(), t0 + chrono::Duration::hours(50));
    assert_eq!(later.joined.map(|j| j.article), Some(2));
    assert_eq!(window.len(), 2);
    let much_later = window.place(4, a, t0 + chrono::Duration::hours(200));
    assert_eq!(much_later.story, 4);
    assert_eq!(window.len(), 1);
}

fn words() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec("[a-z]{2,9}", 12..60)
}

proptest! {
    /// Similarity is symmetric, 1 with itself, and exact copies always share every band.
    #[test]
    fn similarity_is_symmetric_and_reflexive(a in words(), b in words()) {
        let (ta, tb) = (a.join(" "), b.join(" "));
        let (Some(x), Some(y)) = (sk("", &ta), sk("", &tb)) else { return Ok(()); };
        prop_assert_eq!(similarity(&x, &y), similarity(&y, &x));
        prop_assert_eq!(similarity(&x, &x), 1.0);
        prop_assert_eq!(bands(&x), bands(&sk("", &ta).unwrap()));
    }

    /// Changing one word of a long lead keeps the story; the estimate stays near the true
    /// Jaccard similarity of the word pairs.
    #[test]
    fn one_edited_word_keeps_the_story(a in prop::collection::vec("[a-z]{4,9}", 45..50), at in 5usize..40) {
        let mut b = a.clone();
        b[at] = "zzzzzz".into();
        let (x, y) = (sk("", &a.join(" ")).unwrap(), sk("", &b.join(" ")).unwrap());
        prop_assert!(similarity(&x, &y) >= DEFAULT_THRESHOLD, "{}", similarity(&x, &y));
    }

    /// The window finds an exact copy, whatever else it holds.
    #[test]
    fn the_window_always_finds_an_exact_copy(texts in prop::collection::vec(words(), 1..20), pick in 0usize..20) {
        let mut window = Window::new(StoryParams::default());
        let t0 = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        let sketches: Vec<_> = texts.iter().map(|t| sk("", &t.join(" "))).collect();
        for (i, s) in sketches.iter().enumerate() {
            window.place(i, s.clone(), t0);
        }
        let pick = pick % texts.len();
        if let Some(s) = &sketches[pick] {
            let placed = window.place(999, Some(s.clone()), t0);
            prop_assert!(placed.joined.is_some());
            prop_assert_eq!(placed.joined.unwrap().similarity, 1.0);
        }
    }
}

/// Sketches drawn from few values, so that their bands and exact hashes often meet.
fn alike_sketches() -> impl Strategy<Value = Vec<Sketch>> {
    let sketch =
        (0i64..4, prop::collection::vec(0u16..3, HASHES)).prop_map(|(exact, mins)| Sketch {
            exact,
            size: 20,
            mins: mins.try_into().unwrap(),
        });
    prop::collection::vec(sketch, 1..60)
}

proptest! {
    /// Replacing finds the candidates a lookup finds, and leaves the index as an insert does.
    #[test]
    fn replacing_is_looking_up_then_inserting(sketches in alike_sketches()) {
        let (mut replaced, mut inserted) = (BandIndex::default(), BandIndex::default());
        for (article, sketch) in sketches.iter().enumerate() {
            let article = article as u32;
            let expected = inserted.candidates(sketch);
            inserted.insert(sketch, article);
            prop_assert_eq!(replaced.replace(sketch, article), expected);
            prop_assert_eq!(replaced.len(), inserted.len());
        }
        for sketch in &sketches {
            prop_assert_eq!(replaced.candidates(sketch), inserted.candidates(sketch));
        }
    }
}

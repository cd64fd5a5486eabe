//! The start of a summary that holds its lead, so that a sketch folds the words it reads and
//! not the rest: a feed that gives whole articles as content would have every word of them
//! folded for the first [`super::LEAD_WORDS`]. Folding the whole text and taking its first
//! words is the plain twin; a property test holds them equal.

/// `text` up to its first whitespace at or after byte `bytes`, or all of it. A token never
/// spans whitespace, so folding this gives the text's first tokens, if perhaps fewer than
/// wanted.
pub(super) fn lead(text: &str, bytes: usize) -> &str {
    let mut from = bytes.min(text.len());
    while !text.is_char_boundary(from) {
        from += 1;
    }
    match text[from..].find(char::is_whitespace) {
        Some(at) => &text[..from + at],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::matcher::text::{Accents, Folded};

    /// The first `words` tokens of `text`, folded.
    fn first_words(text: &str, words: usize) -> Vec<String> {
        let mut folded = Folded::default();
        folded.fold(text, Accents::Ignore);
        folded.words().take(words).map(str::to_string).collect()
    }

    /// What the sketch folds: the lead, or all of the text when the lead falls short.
    fn first_words_of_lead(text: &str, bytes: usize, words: usize) -> Vec<String> {
        let start = lead(text, bytes);
        let found = first_words(start, words);
        if found.len() < words && start.len() < text.len() {
            return first_words(text, words);
        }
        found
    }

    proptest! {
        #[test]
        fn the_lead_folds_to_the_texts_first_words(
            pieces in prop::collection::vec(
                prop::sample::select(vec![
                    "NATO", "nato's", "U.S.", "e-mail", "—", "...", "don't", "Zelenskyy",
                    "Зеленский", "сообщили", "嫦娥六号", "着陆", "café", "soft\u{ad}hyphen",
                    "zero\u{200b}width", "1,000", "42", " ", "  ", "\n", "\t", "\u{a0}",
                    "\u{3000}", "\u{2009}", "\u{b}", "\u{85}", "\u{2028}",
                ]),
                0..120,
            ),
            bytes in 0usize..400,
            words in 1usize..60,
        ) {
            let text = pieces.concat();
            prop_assert_eq!(first_words_of_lead(&text, bytes, words), first_words(&text, words));
        }
    }
}

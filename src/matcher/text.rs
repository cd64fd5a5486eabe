//! Text normalisation shared by queries and articles, so both sides fold the same way.
//!
//! Folding: Unicode full case folding (CaseFolding.txt, statuses C and F: `ß` -> `ss`, final
//! sigma, Greek iota subscript, Cherokee, every cased script), compatibility forms unified (NFKC:
//! full-width letters, ligatures), and accents on Latin and Greek letters dropped unless
//! [`Accents::Exact`] (`Zelenský` -> `zelensky`, `Οδυσσεύς` -> `οδυσσευσ`; the Turkish dotless
//! `ı` counts as an `i` without its dot, as `İ` is one with it). Accents are kept on other
//! scripts, where they make other letters (Cyrillic `й` is not `и`). So a word written in upper, lower or title case, full or
//! half width, folds as the same word does in an article's text; the tests walk every Unicode
//! character to hold this.
//!
//! Tokens: runs of letters, digits, combining marks and `_`, split at everything else. This is
//! Unicode word segmentation (UAX #29) for the cases that matter, except that an apostrophe or
//! a period inside a word splits it, so `NATO's` and `NATO’s` contain the word `NATO`.
//! Invisible format characters (soft hyphen, zero-width joiners) do not split a word. Han,
//! kana and other scripts written without spaces give one token per character, so a term in
//! them matches as a character phrase.
//!
//! Each token keeps the byte range it came from in the original text, for highlighting.

use std::fmt;
use std::ops::Range;

use icu_casemap::{CaseMapper, CaseMapperBorrowed};
use icu_properties::props::{Alphabetic, GeneralCategory, GeneralCategoryGroup, Script};
use icu_properties::{
    CodePointMapData, CodePointMapDataBorrowed, CodePointSetData, CodePointSetDataBorrowed,
};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::{decompose_compatible, is_combining_mark};
use writeable::Writeable;

/// Full case folding, with the Unicode data compiled in.
const CASE: CaseMapperBorrowed<'static> = CaseMapper::new();

/// The character properties, from the same Unicode version as the folds: the standard
/// library's may be older, and a letter it does not know yet would fold but split words.
const ALPHABETIC: CodePointSetDataBorrowed<'static> = CodePointSetData::new::<Alphabetic>();
const CATEGORY: CodePointMapDataBorrowed<'static, GeneralCategory> =
    CodePointMapData::<GeneralCategory>::new();
const SCRIPT: CodePointMapDataBorrowed<'static, Script> = CodePointMapData::<Script>::new();

/// For each ASCII byte: itself lower-cased if it is a word character (a letter, a digit or
/// `_`), else 0.
const ASCII_WORD: [u8; 128] = {
    let mut table = [0; 128];
    let mut byte = 0;
    while byte < 128 {
        let b = byte as u8;
        if b.is_ascii_alphanumeric() || b == b'_' {
            table[byte] = b.to_ascii_lowercase();
        }
        byte += 1;
    }
    table
};

/// Bit `i` set where `chunk[i]` (at most 64 bytes, all ASCII) is a word character. Eight
/// bytes are classified at a time with arithmetic on a `u64`, which costs half the
/// instructions of a table lookup per byte.
fn word_bits(chunk: &[u8]) -> u64 {
    let mut padded = [0; 64];
    padded[..chunk.len()].copy_from_slice(chunk);
    let mut bits = 0;
    for (i, eight) in padded.chunks_exact(8).enumerate() {
        let x = u64::from_le_bytes(eight.try_into().expect("eight bytes"));
        let words = bytes_in(x | 0x2020_2020_2020_2020, b'a', b'z')
            | bytes_in(x, b'0', b'9')
            | bytes_in(x, b'_', b'_');
        // Gathers each byte's high bit into the top byte, the first byte lowest.
        let eight_bits = (words >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56;
        bits |= eight_bits << (8 * i);
    }
    bits
}

/// The high bit of each byte of `x` set where that byte is in `lo..=hi`, else clear. Every
/// byte of `x` must be below 0x80, so that no sum carries into the next byte.
fn bytes_in(x: u64, lo: u8, hi: u8) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let at_least_lo = x + ONES * u64::from(0x80 - lo);
    let above_hi = x + ONES * u64::from(0x7f - hi);
    at_least_lo & !above_hi & 0x8080_8080_8080_8080
}

/// How accents are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Accents {
    /// `cafe` matches `café`.
    #[default]
    Ignore,
    /// Accents must match exactly.
    Exact,
}

/// Zero bytes after the folded text, so that the first eight bytes of any token can be read
/// with one load (see [`Folded::head`]). A token never contains a zero byte.
const PADDING: &str = "\0\0\0\0\0\0\0\0";

/// A text folded and split into tokens; reusable across texts to keep allocations down.
#[derive(Debug, Default, Clone)]
pub struct Folded {
    /// All folded tokens, one after another, then [`PADDING`].
    buffer: String,
    /// Whether every token is ASCII (known only for a text that was all ASCII).
    ascii: bool,
    /// For each token: its range in `buffer` and its byte range in the original text.
    tokens: Vec<(Range<usize>, Range<usize>)>,
}

impl Folded {
    /// Folds `text` into this value, replacing what it held.
    pub fn fold(&mut self, text: &str, accents: Accents) {
        if text.is_ascii() {
            self.fold_ascii(text);
        } else {
            self.fold_unicode(text, accents);
        }
    }

    /// An ASCII text folds to itself lower-cased, byte for byte, so each token is at the same
    /// place in both: the text is copied and lower-cased whole, and only the token boundaries
    /// are looked for. Gives what [`Folded::fold_unicode`] gives, at a fraction of its cost.
    fn fold_ascii(&mut self, text: &str) {
        self.buffer.clear();
        self.tokens.clear();
        self.ascii = true;
        self.buffer.push_str(text);
        self.buffer.make_ascii_lowercase();
        // 64 bytes at a time: a bit per byte says whether it is a word character, and only the
        // bits where that changes are visited, so the loop branches once per word boundary
        // rather than once per byte (faster in the matcher benchmark than a test per byte).
        let mut word_start = 0;
        let mut previous_is_word = 0;
        for (chunk_index, chunk) in text.as_bytes().chunks(64).enumerate() {
            let is_word = word_bits(chunk);
            let mut changes = is_word ^ (is_word << 1 | previous_is_word);
            if chunk.len() < 64 {
                changes &= (1 << chunk.len()) - 1;
            }
            while changes != 0 {
                let bit = changes.trailing_zeros() as usize;
                changes &= changes - 1;
                let at = chunk_index * 64 + bit;
                if is_word >> bit & 1 == 1 {
                    word_start = at;
                } else {
                    self.tokens.push((word_start..at, word_start..at));
                }
            }
            previous_is_word = is_word >> 63;
        }
        if text
            .as_bytes()
            .last()
            .is_some_and(|&b| ASCII_WORD[usize::from(b)] != 0)
        {
            self.tokens
                .push((word_start..text.len(), word_start..text.len()));
        }
        self.buffer.push_str(PADDING);
    }

    fn fold_unicode(&mut self, text: &str, accents: Accents) {
        self.buffer.clear();
        self.tokens.clear();
        self.ascii = false;
        let mut state = Folder {
            out: self,
            accents,
            word_start: 0,
            span: 0..0,
            marks_are_accents: false,
            ascii: true,
            unspaced: false,
        };
        let bytes = text.as_bytes();
        let mut offset = 0;
        while offset < bytes.len() {
            // Most news text is ASCII: a run of ASCII word characters is copied lower-cased by
            // table, and ASCII punctuation ends the word, with no per-character decoding.
            if let Some(&lower) = ASCII_WORD.get(usize::from(bytes[offset])) {
                if lower == 0 {
                    state.flush();
                    offset += 1;
                } else {
                    offset = state.push_ascii_run(bytes, offset);
                }
                continue;
            }
            let c = text[offset..]
                .chars()
                .next()
                .expect("offset is on a char boundary");
            let end = offset + c.len_utf8();
            if is_invisible_joiner(c) {
                if state.in_word() {
                    state.span.end = end;
                }
            } else {
                decompose_compatible(c, |d| state.step(d, offset, end));
            }
            offset = end;
        }
        state.flush();
        self.buffer.push_str(PADDING);
    }

    /// Whether every token is known to be ASCII.
    pub fn is_ascii(&self) -> bool {
        self.ascii
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The folded text of token `i`.
    pub fn word(&self, i: usize) -> &str {
        &self.buffer[self.tokens[i].0.clone()]
    }

    /// The length in bytes of token `i`.
    pub fn word_len(&self, i: usize) -> usize {
        self.tokens[i].0.len()
    }

    /// The first `len` bytes of token `i`, at most eight, packed into a `u64` (the first byte
    /// lowest, unused bytes zero). `len` must not exceed the token's length.
    pub fn head(&self, i: usize, len: usize) -> u64 {
        debug_assert!(len <= self.word_len(i), "a head within the token");
        let start = self.tokens[i].0.start;
        let eight = self.buffer.as_bytes()[start..start + 8]
            .try_into()
            .expect("the buffer is padded");
        let head = u64::from_le_bytes(eight);
        if len >= 8 {
            head
        } else {
            head & ((1 << (8 * len)) - 1)
        }
    }

    /// Where token `i` came from in the original text.
    pub fn span(&self, i: usize) -> Range<usize> {
        self.tokens[i].1.clone()
    }

    /// The folded tokens, in order.
    pub fn words(&self) -> impl Iterator<Item = &str> {
        self.tokens.iter().map(|(r, _)| &self.buffer[r.clone()])
    }
}

struct Folder<'a> {
    out: &'a mut Folded,
    accents: Accents,
    /// Where the current word starts in `out.buffer`.
    word_start: usize,
    /// The current word's byte range in the original text.
    span: Range<usize>,
    /// Whether combining marks here are accents: after a Latin or Greek letter.
    marks_are_accents: bool,
    /// Whether the current word is ASCII only (then it needs no recomposition).
    ascii: bool,
    /// Whether the current word is a character of a script written without spaces, which
    /// takes only the combining marks after it (`ハ` + `゚`, recomposed to `パ`).
    unspaced: bool,
}

impl Folder<'_> {
    fn in_word(&self) -> bool {
        self.out.buffer.len() > self.word_start
    }

    /// One character after compatibility decomposition, from `start..end` in the original.
    fn step(&mut self, c: char, start: usize, end: usize) {
        if self.unspaced && !is_combining_mark(c) {
            self.flush();
        }
        if c.is_ascii_alphanumeric() || c == '_' {
            self.marks_are_accents = true;
            self.push(c.to_ascii_lowercase(), start, end);
        } else if c.is_ascii() {
            self.flush();
        } else if is_combining_mark(c) && CASE.simple_fold(c) == c {
            if self.in_word() && !(self.accents == Accents::Ignore && self.marks_are_accents) {
                self.push(c, start, end);
            }
        } else if is_unspaced_script(c) {
            self.flush();
            self.push_folded(c, start, end);
            self.unspaced = true;
        } else if is_letter_or_digit(c) {
            // Letters, and the one combining mark with a case fold: the Greek iota subscript
            // folds to an iota, a letter of its own.
            self.push_folded(c, start, end);
            self.marks_are_accents = marks_are_accents_on(c);
        } else {
            self.flush();
        }
    }

    /// `c` case-folded (after compatibility decomposition), from `start..end` in the original.
    fn push_folded(&mut self, c: char, start: usize, end: usize) {
        let mut utf8 = [0; 4];
        let mut sink = FoldSink {
            folder: self,
            start,
            end,
        };
        // The sink never fails, so neither does writing to it.
        let _ = CASE.fold(c.encode_utf8(&mut utf8)).write_to(&mut sink);
    }

    /// One character of a case fold's result.
    fn push_fold_result(&mut self, c: char, start: usize, end: usize) {
        let ignore_accents = self.accents == Accents::Ignore;
        // `İ` folds to `i` + combining dot, which is an accent like any other.
        if is_combining_mark(c) && ignore_accents && self.marks_are_accents {
            return;
        }
        // Dotless `ı` is the one letter whose upper case (`I`) folds to another letter; without
        // accents it is an `i` missing its dot.
        let c = if c == 'ı' && ignore_accents { 'i' } else { c };
        self.push(c, start, end);
        self.marks_are_accents = marks_are_accents_on(c);
    }

    /// The ASCII letters, digits and `_` of `text` from `start` on, which `step` would push one
    /// by one, lower-cased; returns where they end.
    fn push_ascii_run(&mut self, text: &[u8], start: usize) -> usize {
        if self.unspaced {
            self.flush();
        }
        if !self.in_word() {
            self.span = start..start;
            self.ascii = true;
        }
        let mut end = start;
        while let Some(&lower) = text.get(end).and_then(|&b| ASCII_WORD.get(usize::from(b))) {
            if lower == 0 {
                break;
            }
            self.out.buffer.push(char::from(lower));
            end += 1;
        }
        self.span.end = self.span.end.max(end);
        self.marks_are_accents = true;
        end
    }

    fn push(&mut self, c: char, start: usize, end: usize) {
        if !self.in_word() {
            self.span = start..end;
            self.ascii = true;
        }
        self.span.end = self.span.end.max(end);
        self.ascii &= c.is_ascii();
        self.out.buffer.push(c);
    }

    fn flush(&mut self) {
        self.unspaced = false;
        if !self.in_word() {
            self.marks_are_accents = false;
            return;
        }
        if !self.ascii {
            // Recompose so `й` from the decomposition compares equal to a precomposed `й`.
            let composed: String = self.out.buffer[self.word_start..].nfc().collect();
            self.out.buffer.truncate(self.word_start);
            self.out.buffer.push_str(&composed);
        }
        let end = self.out.buffer.len();
        self.out
            .tokens
            .push((self.word_start..end, self.span.clone()));
        self.word_start = end;
        self.marks_are_accents = false;
    }
}

/// Takes a case fold's output for [`Folder::push_fold_result`].
struct FoldSink<'f, 'a> {
    folder: &'f mut Folder<'a>,
    start: usize,
    end: usize,
}

impl fmt::Write for FoldSink<'_, '_> {
    fn write_str(&mut self, folded: &str) -> fmt::Result {
        for c in folded.chars() {
            self.folder.push_fold_result(c, self.start, self.end);
        }
        Ok(())
    }
}

/// Folds `text` and returns its tokens.
pub fn tokens(text: &str, accents: Accents) -> Vec<String> {
    let mut folded = Folded::default();
    folded.fold(text, accents);
    folded.words().map(str::to_string).collect()
}

/// `text` as its folded tokens, one space between each: the words the rules see, in a form any
/// tokenizer that splits at spaces (and takes `_` as a letter) reads the same way.
pub fn folded_words(text: &str, accents: Accents) -> String {
    let mut folded = Folded::default();
    folded.fold(text, accents);
    let mut out = String::with_capacity(text.len());
    for word in folded.words() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Characters that are invisible inside a word and do not break it (UAX #29 Format and joiners).
fn is_invisible_joiner(c: char) -> bool {
    matches!(
        c,
        '\u{AD}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}'
    )
}

/// A letter or a digit: Unicode's Alphabetic property or a number (what `char::is_alphanumeric`
/// says, in the folds' Unicode version).
fn is_letter_or_digit(c: char) -> bool {
    ALPHABETIC.contains(c) || GeneralCategoryGroup::Number.contains(CATEGORY.get(c))
}

/// Whether the accents on `c` are only accents, dropped unless [`Accents::Exact`]: on Latin and
/// Greek letters (Greek capitals are written without them), not on Cyrillic, where `й` is
/// another letter than `и`, nor on scripts whose marks are vowels.
fn marks_are_accents_on(c: char) -> bool {
    c.is_ascii_alphabetic()
        || !c.is_ascii() && matches!(SCRIPT.get(c), Script::Latin | Script::Greek)
}

/// Scripts written without spaces between words.
fn is_unspaced_script(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF      // Hiragana, Katakana
        | 0x3400..=0x4DBF    // CJK Extension A
        | 0x4E00..=0x9FFF    // CJK Unified Ideographs
        | 0xF900..=0xFAFF    // CJK Compatibility Ideographs
        | 0x20000..=0x2FFFF  // CJK Extensions B and later
        | 0x0E00..=0x0EFF    // Thai, Lao
        | 0x1000..=0x109F    // Myanmar
        | 0x1780..=0x17FF    // Khmer
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Vec<String> {
        tokens(s, Accents::Ignore)
    }

    #[test]
    fn words_split_on_punctuation_but_not_underscore() {
        assert_eq!(t("NATO's anti-NATO"), ["nato", "s", "anti", "nato"]);
        assert_eq!(t("NATO’s NATO_report"), ["nato", "s", "nato_report"]);
    }

    #[test]
    fn case_folding_is_unicode_aware() {
        assert_eq!(t("STRASSE straße"), ["strasse", "strasse"]);
        assert_eq!(t("НАТО Кремль"), ["нато", "кремль"]);
        assert_eq!(t("ΟΔΥΣΣΕΥΣ"), t("οδυσσευς"));
    }

    #[test]
    fn latin_accents_are_ignored_but_cyrillic_letters_kept() {
        assert_eq!(t("Zelenský café"), ["zelensky", "cafe"]);
        assert_eq!(t("Зеленский"), ["зеленский"]);
        assert_ne!(t("й"), t("и"));
        assert_eq!(tokens("café", Accents::Exact), ["café"]);
    }

    #[test]
    fn han_characters_are_single_tokens() {
        assert_eq!(t("乌克兰总统"), ["乌", "克", "兰", "总", "统"]);
    }

    #[test]
    fn invisible_joiners_do_not_split_words() {
        assert_eq!(t("Ukr\u{ad}aine NA\u{200d}TO"), ["ukraine", "nato"]);
    }

    /// Every character Unicode assigns, but private use: the rest have no case, decomposition
    /// or letter property to fold by.
    fn every_char() -> impl Iterator<Item = char> {
        (0..=u32::from(char::MAX))
            .filter_map(char::from_u32)
            .filter(|&c| {
                !matches!(
                    CATEGORY.get(c),
                    GeneralCategory::Unassigned | GeneralCategory::PrivateUse
                )
            })
    }

    fn joined(text: &str, accents: Accents) -> String {
        tokens(text, accents).concat()
    }

    /// Unicode's compatibility caseless form (definition D146 in chapter 3 of the standard),
    /// `NFKD(fold(NFKD(fold(NFD(text)))))` with the full case fold, cut into words as the
    /// module says and each word recomposed (NFC), the words joined.
    fn reference_fold(text: &str) -> String {
        let once: String = CASE
            .fold_string(&text.nfd().collect::<String>())
            .nfkd()
            .collect();
        let twice: String = CASE.fold_string(&once).nfkd().collect();
        let (mut out, mut word) = (String::new(), String::new());
        // A combining mark joins the word before it, if any; a character of an unspaced script
        // is a word of its own with its marks.
        let mut unspaced = false;
        for c in twice.chars() {
            if is_combining_mark(c) {
                if !word.is_empty() {
                    word.push(c);
                }
                continue;
            }
            if unspaced || !(c == '_' || is_letter_or_digit(c)) || is_unspaced_script(c) {
                out.extend(word.nfc());
                word.clear();
            }
            unspaced = is_unspaced_script(c);
            if unspaced || c == '_' || is_letter_or_digit(c) {
                word.push(c);
            }
        }
        out.extend(word.nfc());
        out
    }

    /// Up to 20 failures of `check` over every char, and how many there were in all.
    fn failures(check: impl Fn(char) -> Option<String>) -> (usize, Vec<String>) {
        let mut count = 0;
        let mut shown = Vec::new();
        for failure in every_char().filter_map(check) {
            count += 1;
            if shown.len() < 20 {
                shown.push(failure);
            }
        }
        (count, shown)
    }

    #[test]
    fn every_char_folds_as_unicode_full_case_folding_and_nfkc_fold_it() {
        let (count, shown) = failures(|c| {
            let text = c.to_string();
            let (folded, reference) = (joined(&text, Accents::Exact), reference_fold(&text));
            (folded != reference).then(|| format!("U+{:04X} {folded:?} {reference:?}", c as u32))
        });
        assert_eq!(count, 0, "{shown:#?}");
    }

    #[test]
    fn a_word_in_upper_lower_or_title_case_folds_as_the_word_does() {
        let title = |word: &str| {
            CASE.titlecase_segment_with_only_case_data_to_string(
                word,
                &icu_locale_core::LanguageIdentifier::UNKNOWN,
                Default::default(),
            )
            .into_owned()
        };
        let (count, shown) = failures(|c| {
            // The character alone and as the first of a word of two, so title case differs from
            // upper case.
            for word in [c.to_string(), format!("{c}{c}")] {
                let cased = [word.to_uppercase(), word.to_lowercase(), title(&word)];
                if cased.iter().all(|w| *w == word) {
                    continue;
                }
                for accents in [Accents::Ignore, Accents::Exact] {
                    let folded = joined(&word, accents);
                    for w in &cased {
                        // Full case folding keeps the dotless `ı` apart from `I` (Turkish
                        // folds are another table); only with accents ignored is it an `i`.
                        if c == 'ı' && accents == Accents::Exact {
                            continue;
                        }
                        let other = joined(w, accents);
                        if other != folded {
                            return Some(format!(
                                "U+{:04X} {word:?} -> {folded:?}, {w:?} -> {other:?} ({accents:?})",
                                c as u32
                            ));
                        }
                    }
                }
            }
            None
        });
        assert_eq!(count, 0, "{shown:#?}");
    }

    #[test]
    fn every_compatibility_form_folds_as_its_plain_form() {
        let (count, shown) = failures(|c| {
            let (text, plain) = (c.to_string(), c.to_string().nfkc().collect::<String>());
            [Accents::Ignore, Accents::Exact]
                .into_iter()
                .find_map(|accents| {
                    let (folded, other) = (joined(&text, accents), joined(&plain, accents));
                    (folded != other)
                        .then(|| format!("U+{:04X} {folded:?} {plain:?} -> {other:?}", c as u32))
                })
        });
        assert_eq!(count, 0, "{shown:#?}");
    }

    #[test]
    fn full_case_folds_that_lower_casing_misses() {
        assert_eq!(t("ǅemal DŽEMAL"), ["dzemal", "dzemal"]);
        assert_eq!(t("ꮳꮃꭹ ᏣᎳᎩ"), t("ᏣᎳᎩ ᏣᎳᎩ"));
        assert_eq!(t("ﬀ ŉ ǰ ſ ẞ"), ["ff", "ʼn", "j", "s", "ss"]);
        assert_eq!(t("ΣΊΣΥΦΟΣ σίσυφος"), t("σίσυφοσ σίσυφοσ"));
        assert_eq!(t("ılık ILIK"), ["ilik", "ilik"]);
        assert_eq!(t("ΟΔΥΣΣΕΥΣ Οδυσσεύς"), ["οδυσσευσ", "οδυσσευσ"]);
        assert_ne!(tokens("ΟΔΥΣΣΕΥΣ Οδυσσεύς", Accents::Exact)[1], "οδυσσευσ");
        assert_eq!(tokens("ılık", Accents::Exact), ["ılık"]);
    }

    #[test]
    fn greek_iota_subscript_folds_to_iota() {
        assert_eq!(t("ᾳ"), t("αι"));
    }

    #[test]
    fn dotted_capital_i_folds_to_i() {
        assert_eq!(t("İstanbul"), ["istanbul"]);
    }

    #[test]
    fn tokens_remember_where_they_came_from() {
        let text = "Zelenský’s «Café» 乌克兰";
        let mut folded = Folded::default();
        folded.fold(text, Accents::Ignore);
        let spans: Vec<&str> = (0..folded.len()).map(|i| &text[folded.span(i)]).collect();
        assert_eq!(spans, ["Zelenský", "s", "Café", "乌", "克", "兰"]);
        assert_eq!(folded.word(2), "cafe");
    }

    #[test]
    fn ascii_runs_join_the_letters_around_them() {
        let text = "KYIV’s Ärzte2024, x_Y-NATO Zelenskýi";
        assert_eq!(
            t(text),
            ["kyiv", "s", "arzte2024", "x_y", "nato", "zelenskyi"]
        );
        let mut folded = Folded::default();
        folded.fold(text, Accents::Exact);
        let spans: Vec<&str> = (0..folded.len()).map(|i| &text[folded.span(i)]).collect();
        assert_eq!(
            spans,
            ["KYIV", "s", "Ärzte2024", "x_Y", "NATO", "Zelenskýi"]
        );
        assert_eq!(folded.word(5), "zelenskýi");
    }

    proptest::proptest! {
        #[test]
        fn ascii_texts_fold_as_the_general_path_folds_them(text in "[ -~\t\n]{0,200}|[a-z_ ]{0,300}|[a-z]{60,70}") {
            for accents in [Accents::Ignore, Accents::Exact] {
                let (mut fast, mut general) = (Folded::default(), Folded::default());
                fast.fold(&text, accents);
                general.fold_unicode(&text, accents);
                let words: Vec<&str> = fast.words().collect();
                proptest::prop_assert_eq!(words, general.words().collect::<Vec<_>>());
                let spans = |f: &Folded| (0..f.len()).map(|i| f.span(i)).collect::<Vec<_>>();
                proptest::prop_assert_eq!(spans(&fast), spans(&general));
            }
        }
    }

    #[test]
    fn word_bits_classify_every_ascii_byte_in_every_place() {
        let is_word = |b: u8| ASCII_WORD[usize::from(b)] != 0;
        for b in 0..128u8 {
            // Alone among non-word bytes, at every position and in chunks of every length.
            for len in 1..=64 {
                for at in 0..len {
                    let mut chunk = vec![b' '; len];
                    chunk[at] = b;
                    assert_eq!(
                        word_bits(&chunk),
                        u64::from(is_word(b)) << at,
                        "{b} at {at}"
                    );
                }
            }
            // Among bytes of its own kind, where a wrong carry would show.
            let all = if is_word(b) { u64::MAX } else { 0 };
            assert_eq!(word_bits(&[b; 64]), all, "{b}");
        }
    }

    #[test]
    fn heads_pack_the_first_bytes_of_a_token() {
        let mut folded = Folded::default();
        folded.fold("Semiconductors at NATO", Accents::Ignore);
        assert_eq!(folded.head(0, 8), u64::from_le_bytes(*b"semicond"));
        assert_eq!(folded.head(0, 3), u64::from_le_bytes(*b"sem\0\0\0\0\0"));
        // The last token reads into the padding, not past the buffer.
        assert_eq!(folded.head(2, 4), u64::from_le_bytes(*b"nato\0\0\0\0"));
        folded.fold("Кремль", Accents::Ignore);
        let mut cyrillic = [0; 8];
        cyrillic.copy_from_slice(&"кремль".as_bytes()[..8]);
        assert_eq!(folded.head(0, 12), u64::from_le_bytes(cyrillic));
    }

    #[test]
    fn full_width_forms_are_unified() {
        assert_eq!(t("ＮＡＴＯ"), ["nato"]);
    }
}

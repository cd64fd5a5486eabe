//! Text normalisation shared by queries and articles, so both sides fold the same way.
//!
//! Folding: lower case with the full folds news needs (`ß` -> `ss`, final sigma), compatibility
//! forms unified (NFKC: full-width letters, ligatures), and accents on Latin letters dropped
//! (`Zelenský` -> `zelensky`). Accents are kept on other scripts, where they make other letters
//! (Cyrillic `й` is not `и`).
//!
//! Tokens: runs of letters, digits, combining marks and `_` (so `NATO_report` is one word, as in
//! Unicode word segmentation), split at everything else. Han, kana and other scripts written
//! without spaces give one token per character, so a term in them matches as a character phrase.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// How accents are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Accents {
    /// `cafe` matches `café`.
    #[default]
    Ignore,
    /// Accents must match exactly.
    Exact,
}

/// Folds `text` for matching and splits it into word tokens.
pub fn tokens(text: &str, accents: Accents) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut last_base_latin = false;
    for c in text.nfkd() {
        if is_combining_mark(c) {
            if word.is_empty() {
                continue;
            }
            if accents == Accents::Ignore && last_base_latin {
                continue;
            }
            word.push(c);
            continue;
        }
        if is_unspaced_script(c) {
            flush(&mut word, &mut out);
            out.push(fold_char(c).collect());
            last_base_latin = false;
            continue;
        }
        if c.is_alphanumeric() || c == '_' {
            last_base_latin = is_latin(c);
            word.extend(fold_char(c));
        } else {
            flush(&mut word, &mut out);
            last_base_latin = false;
        }
    }
    flush(&mut word, &mut out);
    out
}

fn flush(word: &mut String, out: &mut Vec<String>) {
    if !word.is_empty() {
        // Recompose what is left so `й` from NFKD compares equal to a precomposed `й`.
        out.push(word.nfc().collect());
        word.clear();
    }
}

fn fold_char(c: char) -> impl Iterator<Item = char> {
    let special: Option<&'static str> = match c {
        'ß' | 'ẞ' => Some("ss"),
        'ς' => Some("σ"),
        'ſ' => Some("s"),
        _ => None,
    };
    let lower: Vec<char> = match special {
        Some(s) => s.chars().collect(),
        None => c.to_lowercase().collect(),
    };
    lower.into_iter()
}

fn is_latin(c: char) -> bool {
    c.is_ascii_alphabetic()
        || ('\u{00C0}'..='\u{024F}').contains(&c)
        || ('\u{1E00}'..='\u{1EFF}').contains(&c)
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
    fn full_width_forms_are_unified() {
        assert_eq!(t("ＮＡＴＯ"), ["nato"]);
    }
}

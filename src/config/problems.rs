//! Problems found while checking the file, each located by line and column, and the value
//! checks that several kinds of table share.

use std::fmt;
use std::ops::Range;
use std::time::Duration;

use toml::Spanned;

use super::Problem;

/// Collects problems with their position in the source text.
pub(super) struct Problems<'a> {
    text: &'a str,
    found: Vec<Problem>,
}

impl<'a> Problems<'a> {
    pub(super) fn new(text: &'a str) -> Problems<'a> {
        Problems {
            text,
            found: Vec::new(),
        }
    }

    pub(super) fn add(&mut self, span: Range<usize>, message: impl fmt::Display) {
        let (line, column) = line_column(self.text, span.start);
        self.found.push(Problem {
            line,
            column,
            message: message.to_string(),
        });
    }

    /// Every problem found, in the order found; empty when the file is usable.
    pub(super) fn into_found(self) -> Vec<Problem> {
        self.found
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// A duration key such as `timeout = "15s"`: `default` when absent, `None` (and a problem)
/// when it is not a positive duration.
pub(super) fn positive_duration(
    key: &str,
    value: Option<&Spanned<String>>,
    default: Duration,
    problems: &mut Problems,
) -> Option<Duration> {
    let Some(value) = value else {
        return Some(default);
    };
    match humantime::parse_duration(value.get_ref()) {
        Ok(d) if !d.is_zero() => Some(d),
        _ => {
            problems.add(
                value.span(),
                format!(
                    "invalid {key} `{}` (expected a duration such as \"30s\" or \"1h\")",
                    value.get_ref()
                ),
            );
            None
        }
    }
}

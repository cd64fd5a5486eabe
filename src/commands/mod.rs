//! One file per subcommand: each takes what clap parsed and prints its result.

pub mod backtest;
pub mod check;
pub mod completions;
pub mod feed;
pub mod feeds;
pub mod matches;
pub mod opml;
pub mod outbox;
pub mod output;
pub mod preview;
pub mod probe;
pub mod run;
pub mod search;
pub mod status;
pub mod test_notify;

use feedwatch::matcher::snippet::{Marks, snippet};
use feedwatch::matcher::{Explained, Field, field_text};
use feedwatch::parse::Article;

/// Matched words in bold on a terminal, between `**` otherwise.
pub fn marks() -> Marks<'static> {
    if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        Marks {
            open: "\x1b[1;33m",
            close: "\x1b[0m",
        }
    } else {
        Marks {
            open: "**",
            close: "**",
        }
    }
}

/// A short snippet of the field that best shows why `explained` matched: the first field
/// other than the title with a match (the title is printed anyway), else the title.
pub fn match_snippet(article: &Article, explained: &Explained, marks: Marks) -> Option<String> {
    let field = explained
        .highlights
        .iter()
        .map(|h| h.field)
        .find(|&f| f != Field::Title)
        .or_else(|| explained.highlights.first().map(|h| h.field))?;
    let ranges: Vec<_> = explained
        .highlights
        .iter()
        .filter(|h| h.field == field)
        .map(|h| h.range.clone())
        .collect();
    let text = field_text(article, field);
    Some(snippet(&text, &ranges, 120, marks).replace('\n', " "))
}

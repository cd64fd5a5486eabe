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
pub mod story;
pub mod test_notify;

use feedwatch::matcher::snippet::Marks;

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

/// About how many characters of text a match's snippet shows.
pub const SNIPPET_CHARS: usize = 120;

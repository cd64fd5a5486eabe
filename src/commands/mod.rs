//! One file per subcommand: each takes what clap parsed and prints its result.

pub mod check;
pub mod completions;
pub mod feed;
pub mod matches;
pub mod opml;
pub mod output;
pub mod preview;
pub mod probe;
pub mod run;
pub mod search;

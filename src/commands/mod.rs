//! One file per subcommand: each takes what clap parsed and prints its result.

pub mod check;
pub mod matches;
pub mod output;
pub mod preview;
pub mod run;
pub mod search;

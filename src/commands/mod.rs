//! One file per subcommand: each takes what clap parsed and prints its result.

pub mod check;
pub mod feeds;
pub mod matches;
pub mod outbox;
pub mod preview;
pub mod run;
pub mod status;
pub mod test_notify;

//! Watch rules: the query language ([`query`]), text folding ([`text`]) and the compiled engine
//! that checks an article against every rule at once ([`engine`]). Pure: no I/O.

pub mod engine;
pub mod query;
pub mod text;

pub use engine::{Engine, RuleMatch, RuleSpec};
pub use query::{Query, QueryError};

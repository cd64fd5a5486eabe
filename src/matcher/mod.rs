//! Watch rules: the query language ([`query`]), text folding ([`text`]) and the compiled engine
//! that checks an article against every rule at once ([`engine`]; which rules hold for the
//! terms found is worked out in `evaluate_fast`, beside its plain twin `evaluate`), and the snippets
//! that show why an article matched ([`snippet`]). Pure: no I/O.

pub mod engine;
#[cfg(test)]
mod evaluate;
mod evaluate_fast;
pub mod query;
pub mod snippet;
pub mod text;

pub use engine::{Engine, Explained, Highlight, Matches, RuleMatch, RuleSpec, field_text};
pub use query::{Field, Query, QueryError};
pub use text::Accents;

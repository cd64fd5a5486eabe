//! Watch rules: the query language ([`query`]), text folding ([`text`]) and the compiled engine
//! that checks an article against every rule at once ([`engine`]), and the snippets that show
//! why an article matched ([`snippet`]). Pure: no I/O.

pub mod engine;
pub mod query;
pub mod snippet;
pub mod text;

pub use engine::{Engine, Explained, Highlight, RuleMatch, RuleSpec, field_text};
pub use query::{Field, Query, QueryError};
pub use text::Accents;

//! The query language of watch rules.
//!
//! ```text
//! query   := or
//! or      := and ("OR" and)*
//! and     := unary (["AND"] unary)*        words side by side mean AND
//! unary   := "NOT" unary | primary
//! primary := "(" or ")" | [field ":"] atom
//! atom    := word | word* | "a phrase" | /regex/
//! field   := title | summary | content | link | author | category
//! ```
//!
//! Operators are upper case; `and`, `or`, `not` in lower case are ordinary words.
//!
//! Groups and `NOT` nest at most [`MAX_NESTING`] deep: the parser and everything that walks a
//! query recurse, and a query comes from a config file or a command line nobody vetted.

use std::fmt;

use regex::Regex;

use super::text::{Accents, tokens};

/// How deep `(` and `NOT` may nest in one query. Real rules stay within a handful of levels;
/// the limit keeps a generated or hostile query from exhausting the stack of whatever walks it.
pub const MAX_NESTING: usize = 100;

/// Which part of an article a term looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    Title,
    Summary,
    Content,
    Link,
    Author,
    Category,
}

impl Field {
    pub const ALL: [Field; 6] = [
        Field::Title,
        Field::Summary,
        Field::Content,
        Field::Link,
        Field::Author,
        Field::Category,
    ];

    fn from_name(name: &str) -> Option<Field> {
        Some(match name {
            "title" => Field::Title,
            "summary" => Field::Summary,
            "content" => Field::Content,
            "link" => Field::Link,
            "author" => Field::Author,
            "category" => Field::Category,
            _ => return None,
        })
    }
}

/// What one leaf of a query looks for.
#[derive(Debug, Clone)]
pub enum Pattern {
    /// One or more folded tokens, adjacent and in order (a single word is a phrase of one).
    Phrase(Vec<String>),
    /// A word starting with this folded stem.
    Prefix(String),
    /// A regular expression over the field's text (case-insensitive).
    Regex(Regex),
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        match (self, other) {
            (Pattern::Phrase(a), Pattern::Phrase(b)) => a == b,
            (Pattern::Prefix(a), Pattern::Prefix(b)) => a == b,
            (Pattern::Regex(a), Pattern::Regex(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Term {
    pub field: Option<Field>,
    pub pattern: Pattern,
    /// Whether accents must match exactly (a per-rule option).
    pub accents: Accents,
    /// The term as the user wrote it, for "matched" lists in alerts.
    pub source: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    Term(Term),
    And(Vec<Query>),
    Or(Vec<Query>),
    Not(Box<Query>),
}

/// A syntax error, at a byte offset into the query text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    pub offset: usize,
    pub message: String,
}

impl QueryError {
    /// The message with the query and a caret under the position, for `check`. A long query is
    /// shown as the stretch around the position.
    pub fn render(&self, query: &str) -> String {
        const SHOWN: usize = 72;
        let offset = floor_char_boundary(query, self.offset);
        let column = query[..offset].chars().count();
        let skipped = column.saturating_sub(SHOWN / 2);
        let mut shown: String = query.chars().skip(skipped).take(SHOWN).collect();
        let mut caret = column - skipped;
        if skipped > 0 {
            shown.insert(0, '…');
            caret += 1;
        }
        if query.chars().count() > skipped + SHOWN {
            shown.push('…');
        }
        format!(
            "{} at column {}\n    {}\n    {}^",
            self.message,
            column + 1,
            shown,
            " ".repeat(caret)
        )
    }
}

/// The largest char boundary at or before `offset`, within `text`.
fn floor_char_boundary(text: &str, offset: usize) -> usize {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at byte {})", self.message, self.offset)
    }
}

impl std::error::Error for QueryError {}

impl Query {
    pub fn parse(text: &str) -> Result<Query, QueryError> {
        Query::parse_with(text, Accents::Ignore)
    }

    pub fn parse_with(text: &str, accents: Accents) -> Result<Query, QueryError> {
        let tokens = lex(text)?;
        let mut parser = Parser {
            tokens,
            position: 0,
            end: text.len(),
            accents,
            depth: 0,
        };
        if parser.tokens.is_empty() {
            return Err(QueryError {
                offset: 0,
                message: "the query is empty".into(),
            });
        }
        let query = parser.or()?;
        if let Some(token) = parser.peek() {
            let message = match token.kind {
                TokenKind::RParen => "unmatched `)`".to_string(),
                _ => "unexpected text".to_string(),
            };
            return Err(QueryError {
                offset: token.offset,
                message,
            });
        }
        Ok(query)
    }

    /// Every term in the query, in order.
    pub fn terms(&self) -> Vec<&Term> {
        let mut out = Vec::new();
        self.collect_terms(&mut out);
        out
    }

    fn collect_terms<'a>(&'a self, out: &mut Vec<&'a Term>) {
        match self {
            Query::Term(t) => out.push(t),
            Query::And(qs) | Query::Or(qs) => qs.iter().for_each(|q| q.collect_terms(out)),
            Query::Not(q) => q.collect_terms(out),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum TokenKind {
    LParen,
    RParen,
    And,
    Or,
    Not,
    /// A bare word, possibly `field:word` or ending in `*`.
    Word(String),
    Phrase {
        field: Option<String>,
        text: String,
    },
    Regex {
        field: Option<String>,
        pattern: String,
    },
}

#[derive(Debug, Clone)]
struct Token {
    kind: TokenKind,
    offset: usize,
}

fn lex(text: &str) -> Result<Vec<Token>, QueryError> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(offset, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        match c {
            '(' => {
                chars.next();
                tokens.push(Token {
                    kind: TokenKind::LParen,
                    offset,
                });
            }
            ')' => {
                chars.next();
                tokens.push(Token {
                    kind: TokenKind::RParen,
                    offset,
                });
            }
            '"' | '/' => {
                chars.next();
                let kind = quoted(text, offset, c, &mut chars, None)?;
                tokens.push(Token { kind, offset });
            }
            _ => {
                let mut word = String::new();
                while let Some(&(_, c)) = chars.peek() {
                    if c.is_whitespace() || c == '(' || c == ')' {
                        break;
                    }
                    // `title:"a phrase"` and `title:/re/`
                    if (c == '"' || c == '/') && word.ends_with(':') {
                        let field = word.trim_end_matches(':').to_string();
                        let (at, quote) = chars.next().unwrap_or((offset, c));
                        let kind = quoted(text, at, quote, &mut chars, Some(field))?;
                        tokens.push(Token { kind, offset });
                        word.clear();
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                if word.is_empty() {
                    continue;
                }
                let kind = match word.as_str() {
                    "AND" => TokenKind::And,
                    "OR" => TokenKind::Or,
                    "NOT" => TokenKind::Not,
                    _ => TokenKind::Word(word),
                };
                tokens.push(Token { kind, offset });
            }
        }
    }
    Ok(tokens)
}

fn quoted(
    text: &str,
    open_at: usize,
    quote: char,
    chars: &mut std::iter::Peekable<std::str::CharIndices>,
    field: Option<String>,
) -> Result<TokenKind, QueryError> {
    let mut body = String::new();
    loop {
        match chars.next() {
            None => {
                return Err(QueryError {
                    offset: open_at,
                    message: if quote == '"' {
                        "unclosed quote".into()
                    } else {
                        "unclosed regular expression (missing `/`)".into()
                    },
                });
            }
            // Inside a regex, `\/` is a literal slash.
            Some((_, '\\')) if quote == '/' => {
                if let Some(&(_, '/')) = chars.peek() {
                    chars.next();
                    body.push('/');
                } else {
                    body.push('\\');
                }
            }
            Some((_, c)) if c == quote => break,
            Some((_, c)) => body.push(c),
        }
    }
    let _ = text;
    Ok(if quote == '"' {
        TokenKind::Phrase { field, text: body }
    } else {
        TokenKind::Regex {
            field,
            pattern: body,
        }
    })
}

struct Parser {
    tokens: Vec<Token>,
    position: usize,
    end: usize,
    accents: Accents,
    /// How many `(` and `NOT` enclose the token being read.
    depth: usize,
}

impl Parser {
    /// Steps one level deeper for the `(` or `NOT` at `offset`, or refuses past the limit.
    fn descend(&mut self, offset: usize) -> Result<(), QueryError> {
        if self.depth == MAX_NESTING {
            return Err(QueryError {
                offset,
                message: format!(
                    "the query nests `(` and `NOT` more than {MAX_NESTING} levels deep"
                ),
            });
        }
        self.depth += 1;
        Ok(())
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.position)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.position).cloned();
        self.position += 1;
        token
    }

    fn or(&mut self) -> Result<Query, QueryError> {
        let mut parts = vec![self.and()?];
        while matches!(self.peek(), Some(t) if t.kind == TokenKind::Or) {
            self.next();
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Query::Or(parts)
        })
    }

    fn and(&mut self) -> Result<Query, QueryError> {
        let mut parts = vec![self.unary()?];
        loop {
            match self.peek().map(|t| &t.kind) {
                Some(TokenKind::And) => {
                    self.next();
                    parts.push(self.unary()?);
                }
                Some(TokenKind::Or | TokenKind::RParen) | None => break,
                Some(_) => parts.push(self.unary()?),
            }
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Query::And(parts)
        })
    }

    fn unary(&mut self) -> Result<Query, QueryError> {
        if let Some(not) = self.peek().filter(|t| t.kind == TokenKind::Not) {
            let offset = not.offset;
            self.next();
            self.descend(offset)?;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Query::Not(Box::new(inner)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Query, QueryError> {
        let Some(token) = self.next() else {
            return Err(QueryError {
                offset: self.end,
                message: "the query ends where a term was expected".into(),
            });
        };
        match token.kind {
            TokenKind::LParen => {
                self.descend(token.offset)?;
                let inner = self.or()?;
                self.depth -= 1;
                match self.next() {
                    Some(Token {
                        kind: TokenKind::RParen,
                        ..
                    }) => Ok(inner),
                    _ => Err(QueryError {
                        offset: token.offset,
                        message: "unclosed `(`".into(),
                    }),
                }
            }
            TokenKind::RParen => Err(QueryError {
                offset: token.offset,
                message: "a term was expected before `)`".into(),
            }),
            TokenKind::And | TokenKind::Or => Err(QueryError {
                offset: token.offset,
                message: "a term was expected before this operator".into(),
            }),
            TokenKind::Not => unreachable!("handled in unary"),
            TokenKind::Word(word) => self.word(&word, token.offset),
            TokenKind::Phrase { field, text } => {
                let field = self.field(field.as_deref(), token.offset)?;
                let words = tokens(&text, self.accents);
                if words.is_empty() {
                    return Err(QueryError {
                        offset: token.offset,
                        message: "the phrase has no letters or digits".into(),
                    });
                }
                Ok(Query::Term(Term {
                    field,
                    pattern: Pattern::Phrase(words),
                    accents: self.accents,
                    source: text,
                }))
            }
            TokenKind::Regex { field, pattern } => {
                let field = self.field(field.as_deref(), token.offset)?;
                let regex = regex::RegexBuilder::new(&pattern)
                    .case_insensitive(true)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| QueryError {
                        offset: token.offset,
                        message: format!(
                            "invalid regular expression: {}",
                            e.to_string().lines().last().unwrap_or("")
                        ),
                    })?;
                Ok(Query::Term(Term {
                    field,
                    pattern: Pattern::Regex(regex),
                    accents: self.accents,
                    source: format!("/{pattern}/"),
                }))
            }
        }
    }

    fn field(&self, name: Option<&str>, offset: usize) -> Result<Option<Field>, QueryError> {
        match name {
            None => Ok(None),
            Some(name) => Field::from_name(name).map(Some).ok_or_else(|| QueryError {
                offset,
                message: format!(
                    "unknown field `{name}:` (fields: title, summary, content, link, author, category)"
                ),
            }),
        }
    }

    fn word(&self, word: &str, offset: usize) -> Result<Query, QueryError> {
        let (field, body, body_offset) = match word.split_once(':') {
            Some((name, rest)) if Field::from_name(name).is_some() && !rest.is_empty() => {
                (Field::from_name(name), rest, offset + name.len() + 1)
            }
            Some((name, "")) if Field::from_name(name).is_some() => {
                return Err(QueryError {
                    offset: offset + word.len(),
                    message: format!("`{name}:` needs a term after it"),
                });
            }
            _ => (None, word, offset),
        };
        if let Some(stem) = body.strip_suffix('*') {
            let stem_tokens = tokens(stem, self.accents);
            return match stem_tokens.as_slice() {
                [single] => Ok(Query::Term(Term {
                    field,
                    pattern: Pattern::Prefix(single.clone()),
                    accents: self.accents,
                    source: body.to_string(),
                })),
                [] => Err(QueryError {
                    offset: body_offset,
                    message: "a prefix needs at least one letter or digit before `*`".into(),
                }),
                _ => Err(QueryError {
                    offset: body_offset,
                    message: "a prefix must be a single word".into(),
                }),
            };
        }
        let words = tokens(body, self.accents);
        if words.is_empty() {
            return Err(QueryError {
                offset: body_offset,
                message: format!("`{body}` has no letters or digits to match"),
            });
        }
        Ok(Query::Term(Term {
            field,
            pattern: Pattern::Phrase(words),
            accents: self.accents,
            source: body.to_string(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phrase(words: &[&str]) -> Pattern {
        Pattern::Phrase(words.iter().map(|w| w.to_string()).collect())
    }

    fn term(q: &Query) -> &Term {
        match q {
            Query::Term(t) => t,
            other => panic!("not a term: {other:?}"),
        }
    }

    #[test]
    fn precedence_is_not_then_and_then_or() {
        let q = Query::parse("Kremlin AND NOT sport OR NATO").unwrap();
        let Query::Or(parts) = q else { panic!() };
        let Query::And(left) = &parts[0] else {
            panic!()
        };
        assert!(matches!(left[1], Query::Not(_)));
        assert_eq!(term(&parts[1]).pattern, phrase(&["nato"]));
    }

    #[test]
    fn words_side_by_side_mean_and() {
        let Query::And(parts) = Query::parse("Biden Putin").unwrap() else {
            panic!()
        };
        assert_eq!(parts.len(), 2);
    }

    #[test]
    fn phrases_prefixes_fields_and_regexes() {
        let q = Query::parse(r#"title:"Jens Stoltenberg" Ukrain* /Zelensk(y|iy)/ link:nato.int"#)
            .unwrap();
        let terms = q.terms();
        assert_eq!(terms[0].field, Some(Field::Title));
        assert_eq!(terms[0].pattern, phrase(&["jens", "stoltenberg"]));
        assert_eq!(terms[1].pattern, Pattern::Prefix("ukrain".into()));
        assert!(matches!(terms[2].pattern, Pattern::Regex(_)));
        assert_eq!(terms[3].field, Some(Field::Link));
        assert_eq!(terms[3].pattern, phrase(&["nato", "int"]));
    }

    #[test]
    fn not_alone_is_a_query() {
        assert!(matches!(Query::parse("NOT sport").unwrap(), Query::Not(_)));
    }

    #[test]
    fn lower_case_operators_are_words() {
        let q = Query::parse("war and peace").unwrap();
        assert_eq!(q.terms().len(), 3);
    }

    #[test]
    fn errors_point_at_the_problem() {
        let cases = [
            ("NATO AND", 8, "ends where a term"),
            ("(NATO OR EU", 0, "unclosed `(`"),
            ("NATO)", 4, "unmatched `)`"),
            ("\"Jens", 0, "unclosed quote"),
            ("OR NATO", 0, "before this operator"),
            ("/[a-/", 0, "invalid regular expression"),
            ("bogus:\"x\"", 0, "unknown field"),
            ("", 0, "empty"),
        ];
        for (query, offset, message) in cases {
            let err = Query::parse(query).unwrap_err();
            assert_eq!(err.offset, offset, "{query}: {err:?}");
            assert!(err.message.contains(message), "{query}: {err:?}");
        }
    }

    #[test]
    fn deep_nesting_is_an_error_at_the_level_past_the_limit() {
        let levels = 100_000;
        let parens = format!("{}NATO{}", "(".repeat(levels), ")".repeat(levels));
        let err = Query::parse(&parens).unwrap_err();
        assert_eq!(err.offset, MAX_NESTING, "{err:?}");
        assert!(err.message.contains("more than 100 levels"), "{err:?}");

        let nots = format!("{}NATO", "NOT ".repeat(levels));
        let err = Query::parse(&nots).unwrap_err();
        assert_eq!(err.offset, 4 * MAX_NESTING, "{err:?}");

        let mixed = format!("{}x{}", "NOT (".repeat(levels), ")".repeat(levels));
        assert_eq!(Query::parse(&mixed).unwrap_err().offset, 5 * 50);
    }

    #[test]
    fn nesting_up_to_the_limit_is_a_query() {
        let at_limit = format!("{}NATO{}", "(".repeat(MAX_NESTING), ")".repeat(MAX_NESTING));
        assert_eq!(Query::parse(&at_limit).unwrap().terms().len(), 1);
        let nots = format!("{}NATO", "NOT ".repeat(MAX_NESTING));
        assert!(matches!(Query::parse(&nots).unwrap(), Query::Not(_)));
        // Nesting is counted per path: many groups side by side are not deep.
        let wide = vec!["(a OR (b))"; 1000].join(" AND ");
        assert_eq!(Query::parse(&wide).unwrap().terms().len(), 2000);
    }

    #[test]
    fn render_of_a_long_query_shows_the_stretch_around_the_error() {
        let query = format!("{}NATO{}", "(".repeat(5000), ")".repeat(5000));
        let err = Query::parse(&query).unwrap_err();
        let shown = err.render(&query);
        assert!(shown.starts_with("the query nests"), "{shown}");
        assert!(shown.contains("at column 101\n"), "{shown}");
        let lines: Vec<&str> = shown.lines().collect();
        assert!(lines[1].chars().count() < 100, "{shown}");
        let caret = lines[2].chars().count() - 1;
        assert_eq!(lines[1].chars().nth(caret), Some('('), "{shown}");
        assert_eq!(lines[1].chars().nth(4), Some('…'), "{shown}");
    }

    #[test]
    fn render_puts_a_caret_under_the_column() {
        let err = Query::parse("NATO AND").unwrap_err();
        let shown = err.render("NATO AND");
        assert!(shown.ends_with("\n    NATO AND\n            ^"), "{shown}");
    }
}

//! Where a statement typed at the prompt ends: at a `;` outside quotes and comments, as
//! the server's own tokenizer (sqlparser's, with the generic dialect) reads the text, so
//! the prompt and the server always agree on where statements end.
//!
//! This only decides when to send; the server parses what is sent.

use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::tokenizer::{Location, Token, Tokenizer};

/// The complete statements at the start of `text` and the incomplete rest.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Split {
    /// Each complete statement, trimmed, without its `;`; empty statements are left out.
    pub statements: Vec<String>,
    /// What follows the last `;`: the start of a statement not yet ended, or empty when
    /// only blanks and comments follow.
    pub rest: String,
}

/// Splits `text` at every `;` outside quotes and comments. A text the tokenizer cannot
/// read to its end (an open quote or comment) is all rest: more input is coming.
pub fn split_statements(text: &str) -> Split {
    let Ok(tokens) = Tokenizer::new(&GenericDialect {}, text).tokenize_with_location() else {
        return Split {
            statements: Vec::new(),
            rest: text.to_owned(),
        };
    };
    let offsets = ByteOffsets::new(text);
    let mut split = Split::default();
    let mut start = 0;
    let mut significant = false;
    for token in &tokens {
        match token.token {
            Token::SemiColon => {
                let end = offsets.of(token.span.start);
                if significant {
                    split.statements.push(text[start..end].trim().to_owned());
                }
                start = end + 1;
                significant = false;
            }
            Token::Whitespace(_) | Token::EOF => {}
            _ => significant = true,
        }
    }
    if significant {
        split.rest = text[start..].to_owned();
    }
    split
}

/// Byte offsets of the tokenizer's locations (1-based lines, and columns in characters).
struct ByteOffsets<'t> {
    text: &'t str,
    line_starts: Vec<usize>,
}

impl<'t> ByteOffsets<'t> {
    fn new(text: &'t str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self { text, line_starts }
    }

    fn of(&self, location: Location) -> usize {
        let line_start = self.line_starts[(location.line as usize).saturating_sub(1)];
        let column = (location.column as usize).saturating_sub(1);
        self.text[line_start..]
            .char_indices()
            .nth(column)
            .map_or(self.text.len(), |(i, _)| line_start + i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statements(text: &str) -> Vec<String> {
        split_statements(text).statements
    }

    #[test]
    fn statements_end_at_semicolons() {
        assert_eq!(statements("SELECT 1;"), ["SELECT 1"]);
        assert_eq!(statements("SELECT 1; SELECT 2;"), ["SELECT 1", "SELECT 2"]);
        assert_eq!(split_statements("SELECT 1").rest, "SELECT 1");
        let split = split_statements("SELECT 1; SELECT\n  2");
        assert_eq!(split.statements, ["SELECT 1"]);
        assert_eq!(split.rest, " SELECT\n  2");
    }

    #[test]
    fn a_statement_may_span_lines() {
        let split = split_statements("CREATE TABLE t (\n  id INT\n);\n");
        assert_eq!(split.statements, ["CREATE TABLE t (\n  id INT\n)"]);
        assert_eq!(split.rest, "");
    }

    #[test]
    fn semicolons_in_quotes_and_comments_do_not_end_a_statement() {
        assert_eq!(statements("SELECT 'a;b';"), ["SELECT 'a;b'"]);
        assert_eq!(statements("SELECT 'it''s; ok';"), ["SELECT 'it''s; ok'"]);
        assert_eq!(
            statements("SELECT \"odd;name\" FROM t;"),
            ["SELECT \"odd;name\" FROM t"]
        );
        assert_eq!(
            statements("SELECT 1 -- not the end;\n + 1;"),
            ["SELECT 1 -- not the end;\n + 1"]
        );
        assert_eq!(
            statements("SELECT /* a; /* nested; */ b; */ 1;"),
            ["SELECT /* a; /* nested; */ b; */ 1"]
        );
    }

    #[test]
    fn open_quotes_and_comments_wait_for_more_input() {
        let split = split_statements("INSERT INTO t VALUES ('line one;\n");
        assert!(split.statements.is_empty());
        assert_eq!(split.rest, "INSERT INTO t VALUES ('line one;\n");
        assert_eq!(split_statements("/* still; open").rest, "/* still; open");
    }

    #[test]
    fn empty_statements_and_trailing_comments_are_dropped() {
        assert_eq!(statements(";;SELECT 1;;"), ["SELECT 1"]);
        let split = split_statements("SELECT 1; -- done\n");
        assert_eq!(split.statements, ["SELECT 1"]);
        assert_eq!(split.rest, "");
        assert_eq!(split_statements("-- only a comment\n"), Split::default());
        assert_eq!(split_statements("   \n"), Split::default());
    }

    #[test]
    fn quoting_the_server_reads_is_respected() {
        assert_eq!(statements("SELECT 1 AS `a;b`;"), ["SELECT 1 AS `a;b`"]);
        assert_eq!(statements("SELECT $$a;b$$;"), ["SELECT $$a;b$$"]);
        assert_eq!(statements("SELECT E'it\\'s; x';"), ["SELECT E'it\\'s; x'"]);
    }

    #[test]
    fn non_ascii_text_is_kept_whole() {
        assert_eq!(statements("SELECT 'héllo — ünïcode';"), ["SELECT 'héllo — ünïcode'"]);
    }
}

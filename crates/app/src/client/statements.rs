//! Where a statement typed at the prompt ends: at a `;` outside quotes and comments.
//!
//! This only decides when to send; the server parses what is sent.

/// Where the scanner is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Code,
    /// Inside `'...'` (a doubled `''` leaves and re-enters, which is the same thing).
    SingleQuoted,
    /// Inside `"..."`.
    DoubleQuoted,
    /// After `--`, to the end of the line.
    LineComment,
    /// Inside `/* ... */`, nested to this depth.
    BlockComment(u32),
}

/// The complete statements at the start of `text` and the incomplete rest.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Split {
    /// Each complete statement, trimmed, without its `;`; empty statements are left out.
    pub statements: Vec<String>,
    /// What follows the last `;`: the start of a statement not yet ended, or empty when
    /// only blanks and comments follow.
    pub rest: String,
}

/// Splits `text` at every `;` outside quotes and comments.
pub fn split_statements(text: &str) -> Split {
    let mut split = Split::default();
    let mut state = State::Code;
    let mut start = 0;
    // Whether the current statement holds anything but blanks and comments.
    let mut has_code = false;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let next = chars.peek().map(|&(_, n)| n);
        state = match (state, c) {
            (State::Code, ';') => {
                if has_code {
                    split.statements.push(text[start..i].trim().to_owned());
                }
                start = i + 1;
                has_code = false;
                State::Code
            }
            (State::Code, '-') if next == Some('-') => {
                chars.next();
                State::LineComment
            }
            (State::Code, '/') if next == Some('*') => {
                chars.next();
                State::BlockComment(1)
            }
            (State::Code, c) => {
                has_code |= !c.is_whitespace();
                match c {
                    '\'' => State::SingleQuoted,
                    '"' => State::DoubleQuoted,
                    _ => State::Code,
                }
            }
            (State::SingleQuoted, '\'') | (State::DoubleQuoted, '"') => State::Code,
            (State::LineComment, '\n') => State::Code,
            (State::BlockComment(depth), '*') if next == Some('/') => {
                chars.next();
                if depth == 1 {
                    State::Code
                } else {
                    State::BlockComment(depth - 1)
                }
            }
            (State::BlockComment(depth), '/') if next == Some('*') => {
                chars.next();
                State::BlockComment(depth + 1)
            }
            (state, _) => state,
        };
    }
    // An open quote or comment is unfinished input even without code in it.
    if has_code
        || matches!(
            state,
            State::SingleQuoted | State::DoubleQuoted | State::BlockComment(_)
        )
    {
        split.rest = text[start..].to_owned();
    }
    split
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
    fn non_ascii_text_is_kept_whole() {
        assert_eq!(statements("SELECT 'héllo — ünïcode';"), ["SELECT 'héllo — ünïcode'"]);
    }
}

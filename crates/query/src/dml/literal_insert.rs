//! `INSERT INTO t [(cols)] VALUES (...), ...` of plain literals, read from the tokens
//! straight into Arrow columns, without building sqlparser's syntax tree for each value: on
//! a large INSERT that tree cost more than storing the rows.
//!
//! Only the plainest form is read here: `INSERT INTO`, a table name, an optional column
//! list, and rows of numbers, strings, `TRUE`, `FALSE` and `NULL` (a number may have a
//! minus sign), each column of one type, up to the end of the statement. Anything else
//! (a parameter, an expression, another clause, a type mix) makes [`read`] fail, the
//! parser is rewound and sqlparser reads the statement, so the result is always what the
//! parsed statement would give (the tests compare the two).

use arrow::array::ArrayRef;
use datafusion::sql::sqlparser::ast::ObjectName;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{IsOptional, Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::Token;

use super::literal_values::{Literal, LiteralColumns, number};

/// An INSERT of literal rows, its values already in columns.
#[derive(Debug, Clone, PartialEq)]
pub struct LiteralInsert {
    /// The table written, as named.
    pub table: ObjectName,
    /// The columns named, in order; empty when the statement names none.
    pub columns: Vec<ObjectName>,
    /// One array per value of a row, all of the same length.
    pub values: Vec<ArrayRef>,
}

/// Reads an INSERT of literal rows at the parser's position, up to (not past) the `;`, `)`
/// or end that closes it. Fails on anything else, leaving the parser wherever it stopped:
/// call it through [`Parser::maybe_parse`], which rewinds.
pub fn read(parser: &mut Parser) -> Result<LiteralInsert, ParserError> {
    parser.expect_keywords(&[Keyword::INSERT, Keyword::INTO])?;
    // The words sqlparser reads between INTO and the table name (`INSERT INTO TABLE t`,
    // `INSERT INTO LOCAL DIRECTORY ...`, `INSERT INTO FUNCTION f(...)`).
    if let Token::Word(word) = &parser.peek_token_ref().token
        && word.quote_style.is_none()
        && matches!(
            word.keyword,
            Keyword::TABLE | Keyword::LOCAL | Keyword::DIRECTORY | Keyword::FUNCTION
        )
    {
        return Err(not_plain());
    }
    let table = parser.parse_object_name(false)?;
    let columns = parser.parse_parenthesized_qualified_column_list(IsOptional::Optional, false)?;
    parser.expect_keyword_is(Keyword::VALUES)?;
    let mut values = LiteralColumns::default();
    loop {
        if !parser.consume_token(&Token::LParen) {
            return Err(not_plain());
        }
        let mut width = 0;
        loop {
            if !values.push_value(width, literal(parser)?) {
                return Err(not_plain());
            }
            width += 1;
            parser.advance_token();
            match parser.get_current_token().token {
                Token::Comma => continue,
                Token::RParen => break,
                _ => return Err(not_plain()),
            }
        }
        if !values.end_row(width) {
            return Err(not_plain());
        }
        if !parser.consume_token(&Token::Comma) {
            break;
        }
    }
    match parser.peek_token_ref().token {
        Token::SemiColon | Token::RParen | Token::EOF => Ok(LiteralInsert {
            table,
            columns,
            values: values.finish(),
        }),
        _ => Err(not_plain()),
    }
}

/// The next token as a literal.
fn literal<'p>(parser: &'p mut Parser) -> Result<Literal<'p>, ParserError> {
    parser.advance_token();
    let negative = parser.get_current_token().token == Token::Minus;
    if negative {
        parser.advance_token();
    }
    let value = match &parser.get_current_token().token {
        Token::Number(text, false) => number(text, negative),
        Token::SingleQuotedString(text) if !negative => Some(Literal::Utf8(text)),
        Token::Word(word) if !negative && word.quote_style.is_none() => match word.keyword {
            Keyword::NULL => Some(Literal::Null),
            Keyword::TRUE => Some(Literal::Boolean(true)),
            Keyword::FALSE => Some(Literal::Boolean(false)),
            _ => None,
        },
        _ => None,
    };
    value.ok_or_else(not_plain)
}

fn not_plain() -> ParserError {
    ParserError::ParserError("not an INSERT of plain literal rows".into())
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::ast::{Statement as SqlStatement, TableObject};
    use proptest::prelude::*;

    use super::*;
    use crate::dml::literal_values::literal_columns;
    use crate::parser::parse_statements;
    use crate::parser::test_sql::{logic_test_records, sqlparser_statements};
    use crate::statement::Statement;

    /// What the statement gives when sqlparser reads it: the table, the columns and the
    /// literal columns (`None` when they are not all literals).
    fn as_parsed(statement: &SqlStatement) -> Option<(ObjectName, Vec<ObjectName>, Option<Vec<ArrayRef>>)> {
        let SqlStatement::Insert(insert) = statement else {
            return None;
        };
        let TableObject::TableName(table) = &insert.table else {
            return None;
        };
        let values = insert.source.as_deref().and_then(|source| literal_columns(source, &[]));
        Some((table.clone(), insert.columns.clone(), values))
    }

    /// Checks every INSERT of `sql` read from its tokens against the same statement read by
    /// sqlparser; the number of INSERTs read from tokens.
    fn compare(sql: &str) -> usize {
        let (Ok(ours), Ok(theirs)) = (parse_statements(sql), sqlparser_statements(sql)) else {
            return 0;
        };
        if ours.len() != theirs.len() {
            return 0; // Calamus statements sqlparser does not read.
        }
        let mut read = 0;
        for (ours, theirs) in ours.iter().zip(&theirs) {
            if let Statement::InsertLiteralRows(insert) = ours {
                let (table, columns, values) = as_parsed(theirs).unwrap_or_else(|| panic!("{sql}: {theirs:?}"));
                assert_eq!(insert.table, table, "{sql}");
                assert_eq!(insert.columns, columns, "{sql}");
                assert_eq!(Some(&insert.values), values.as_ref(), "{sql}");
                read += 1;
            }
        }
        read
    }

    /// Whether every statement of `sql` is an INSERT read from its tokens.
    fn read_from_tokens(sql: &str) -> bool {
        let statements = parse_statements(sql).unwrap();
        !statements.is_empty() && statements.iter().all(|s| matches!(s, Statement::InsertLiteralRows(_)))
    }

    #[test]
    fn plain_rows_are_read_as_sqlparser_reads_them() {
        for sql in [
            "INSERT INTO t VALUES (1)",
            "insert into App.\"T\" (a, \"B\") values (1, 'x'), (2, NULL)",
            "INSERT INTO t (a, b, c, d, e) VALUES (-1, 2.5, -1e3, 'it''s', TRUE), (NULL, NULL, .5, '', false)",
            "INSERT INTO t VALUES (NULL, NULL), (NULL, 1)",
            "INSERT INTO t VALUES (9223372036854775807, -9223372036854775807, 'é ü 😀')",
            "INSERT INTO t VALUES (- 3, 1E-2, 0.0, 00012);",
            "INSERT INTO t /* note */ VALUES -- rows\n (1) , ( 2 )",
            "INSERT INTO t VALUES (1); INSERT INTO t VALUES ('a')",
        ] {
            assert!(read_from_tokens(sql), "{sql}");
            assert!(compare(sql) >= 1, "{sql}");
        }
    }

    #[test]
    fn every_other_insert_is_left_to_sqlparser() {
        for sql in [
            "INSERT INTO t VALUES ($1)",
            "INSERT INTO t VALUES (1 + 1)",
            "INSERT INTO t VALUES (now())",
            "INSERT INTO t VALUES (1), (2.5)",
            "INSERT INTO t VALUES (1, 2), (3)",
            "INSERT INTO t VALUES (1), (2, 3)",
            "INSERT INTO t VALUES ()",
            "INSERT INTO t VALUES (1),",
            "INSERT INTO t VALUES (TIMESTAMP '2024-01-01 00:00:00')",
            "INSERT INTO t VALUES (99999999999999999999)",
            "INSERT INTO t VALUES (-9223372036854775808)",
            "INSERT INTO t VALUES (-'a')",
            "INSERT INTO t VALUES (-NULL)",
            "INSERT INTO t VALUES (- - 1)",
            "INSERT INTO t VALUES (+1)",
            "INSERT INTO t VALUES (\"NULL\")",
            "INSERT INTO t VALUES (E'a')",
            "INSERT INTO t VALUES (1::BIGINT)",
            "INSERT INTO t VALUES ('a' || 'b')",
            "INSERT INTO t VALUES ((SELECT 1))",
            "INSERT INTO t VALUES (1) RETURNING *",
            "INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING",
            "INSERT INTO t VALUES (1) ORDER BY 1",
            "INSERT INTO t VALUES (1) LIMIT 1",
            "INSERT INTO t VALUES ROW(1)",
            "INSERT INTO t SELECT 1",
            "INSERT INTO t (SELECT 1)",
            "INSERT INTO t DEFAULT VALUES",
            "INSERT INTO t AS x VALUES (1)",
            "INSERT INTO TABLE t VALUES (1)",
            "INSERT t VALUES (1)",
            "INSERT OR REPLACE INTO t VALUES (1)",
            "INSERT IGNORE INTO t VALUES (1)",
            "INSERT OVERWRITE TABLE t VALUES (1)",
            "WITH x AS (SELECT 1) INSERT INTO t VALUES (1)",
        ] {
            match parse_statements(sql) {
                Ok(statements) => assert!(
                    !statements.iter().any(|s| matches!(s, Statement::InsertLiteralRows(_))),
                    "{sql} was read from its tokens"
                ),
                Err(_) => assert!(sqlparser_statements(sql).is_err(), "{sql} parses with sqlparser"),
            }
        }
    }

    #[test]
    fn an_execute_as_holds_an_insert_read_from_tokens() {
        let statements = parse_statements("EXECUTE AS USER alice (INSERT INTO t VALUES (1))").unwrap();
        let [Statement::ExecuteAs { statement, .. }] = statements.as_slice() else {
            panic!("not one EXECUTE AS")
        };
        assert!(matches!(statement.as_ref(), Statement::InsertLiteralRows(_)));
    }

    #[test]
    fn the_inserts_of_the_logic_tests_read_as_sqlparser_reads_them() {
        let read: usize = logic_test_records().iter().map(|sql| compare(sql)).sum();
        assert!(read > 50, "{read} INSERTs read from their tokens");
    }

    /// A literal of any kind the reader takes, and some it leaves to sqlparser.
    fn literal_text() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<i64>().prop_map(|v| v.to_string()),
            any::<f64>()
                .prop_filter("finite", |v| v.is_finite())
                .prop_map(|v| format!("{v:?}")),
            "-?[0-9]{1,20}(\\.[0-9]{0,4})?([eE][+-]?[0-9]{1,3})?",
            "[a-z' ]{0,8}".prop_map(|s| format!("'{}'", s.replace('\'', "''"))),
            Just("NULL".to_owned()),
            Just("TRUE".to_owned()),
            Just("false".to_owned()),
            Just("$1".to_owned()),
            Just("1 + 1".to_owned()),
        ]
    }

    /// A literal of one kind (0: integer, 1: fraction, 2: string, 3: boolean), or NULL.
    fn literal_of_kind(kind: usize) -> impl Strategy<Value = String> {
        let value: BoxedStrategy<String> = match kind {
            // -9223372036854775808 is left to sqlparser: its magnitude does not fit in 64 bits.
            0 => (i64::MIN + 1..=i64::MAX).prop_map(|v| v.to_string()).boxed(),
            1 => (-1e6f64..1e6).prop_map(|v| format!("{v:.3}")).boxed(),
            2 => "[a-z' ]{0,8}"
                .prop_map(|s| format!("'{}'", s.replace('\'', "''")))
                .boxed(),
            _ => any::<bool>().prop_map(|b| b.to_string()).boxed(),
        };
        prop_oneof![4 => value, 1 => Just("NULL".to_owned())]
    }

    /// Rows whose every column holds literals of one kind.
    fn plain_rows() -> impl Strategy<Value = Vec<Vec<String>>> {
        (prop::collection::vec(0..4usize, 1..4), 1..6usize).prop_flat_map(|(kinds, rows)| {
            let row: Vec<_> = kinds.into_iter().map(literal_of_kind).collect();
            prop::collection::vec(row, rows)
        })
    }

    proptest! {
        #[test]
        fn plain_rows_are_always_read_from_tokens(rows in plain_rows()) {
            let rows: Vec<String> = rows.iter().map(|row| format!("({})", row.join(", "))).collect();
            let sql = format!("INSERT INTO ns.t VALUES {}", rows.join(", "));
            prop_assert_eq!(compare(&sql), 1, "{}", sql);
        }

        #[test]
        fn any_rows_read_from_tokens_equal_sqlparser_s_reading(
            rows in prop::collection::vec(prop::collection::vec(literal_text(), 1..4), 1..6),
        ) {
            let rows: Vec<String> = rows.iter().map(|row| format!("({})", row.join(", "))).collect();
            let sql = format!("INSERT INTO ns.t VALUES {}", rows.join(", "));
            compare(&sql);
        }
    }
}

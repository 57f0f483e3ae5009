//! The SQL dialect Calamus parses: sqlparser's generic dialect, with literals read
//! directly.
//!
//! sqlparser reads every operand first as a possible typed literal (`DATE '2020-01-01'`),
//! and for a plain number or string that attempt fails only after formatting an error it
//! then throws away. In a large `INSERT ... VALUES` that was a tenth of the server's time.
//! A number, a quoted string or a parameter cannot start a type name, so this dialect
//! reads them as values straight away: the same expression sqlparser builds after the
//! failed attempt. Everything else is the generic dialect's, and sqlparser's own checks
//! of the dialect (`dialect_of!`) see the generic dialect.

use std::any::TypeId;

use datafusion::sql::sqlparser::ast::Expr;
use datafusion::sql::sqlparser::dialect::{Dialect, GenericDialect};
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::Token;

/// sqlparser's [`GenericDialect`], reading literal operands without trying them as types.
#[derive(Debug, Default, Clone, Copy)]
pub struct CalamusDialect;

/// Forwards the generic dialect's answers to the questions it answers itself.
macro_rules! as_generic {
    ($($name:ident,)*) => {
        $(fn $name(&self) -> bool {
            GenericDialect {}.$name()
        })*
    };
}

impl Dialect for CalamusDialect {
    fn dialect(&self) -> TypeId {
        TypeId::of::<GenericDialect>()
    }

    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        GenericDialect {}.is_delimited_identifier_start(ch)
    }

    fn is_identifier_start(&self, ch: char) -> bool {
        GenericDialect {}.is_identifier_start(ch)
    }

    fn is_identifier_part(&self, ch: char) -> bool {
        GenericDialect {}.is_identifier_part(ch)
    }

    fn parse_prefix(&self, parser: &mut Parser) -> Option<Result<Expr, ParserError>> {
        match parser.peek_token_ref().token {
            Token::Number(..) | Token::SingleQuotedString(_) | Token::Placeholder(_) => {
                Some(parser.parse_value().map(Expr::Value))
            }
            _ => None,
        }
    }

    as_generic! {
        supports_unicode_string_literal,
        supports_partition_by_after_order_by,
        supports_array_join_syntax,
        supports_group_by_expr,
        supports_group_by_with_modifier,
        supports_left_associative_joins_without_parens,
        supports_connect_by,
        supports_match_recognize,
        supports_pipe_operator,
        supports_start_transaction_modifier,
        supports_window_function_null_treatment_arg,
        supports_dictionary_syntax,
        supports_window_clause_named_window_reference,
        supports_parenthesized_set_variables,
        supports_select_wildcard_except,
        support_map_literal_syntax,
        allow_extract_custom,
        allow_extract_single_quotes,
        supports_extract_comma_syntax,
        supports_create_view_comment_syntax,
        supports_parens_around_table_factor,
        supports_values_as_table_factor,
        supports_create_index_with_clause,
        supports_explain_with_utility_options,
        supports_limit_comma,
        supports_update_order_by,
        supports_from_first_select,
        supports_projection_trailing_commas,
        supports_asc_desc_in_column_definition,
        supports_try_convert,
        supports_bitwise_shift_operators,
        supports_comment_on,
        supports_load_extension,
        supports_named_fn_args_with_assignment_operator,
        supports_struct_literal,
        supports_empty_projections,
        supports_nested_comments,
        supports_multiline_comment_hints,
        supports_user_host_grantee,
        supports_string_escape_constant,
        supports_array_typedef_with_brackets,
        supports_match_against,
        supports_set_names,
        supports_comma_separated_set_assignments,
        supports_filter_during_aggregation,
        supports_select_wildcard_exclude,
        supports_data_type_signed_suffix,
        supports_interval_options,
        supports_quote_delimited_string,
        supports_select_wildcard_replace,
        supports_select_wildcard_ilike,
        supports_select_wildcard_rename,
        supports_optimize_table,
        supports_install,
        supports_detach,
        supports_prewhere,
        supports_with_fill,
        supports_limit_by,
        supports_interpolate,
        supports_settings,
        supports_select_format,
        supports_comment_optimizer_hint,
        supports_constraint_keyword_without_name,
        supports_key_column_option,
        supports_comma_separated_trim,
        supports_cte_without_as,
        supports_select_item_multi_column_alias,
        supports_xml_expressions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both dialects' answer for `sql`: the statements (with their locations) or the error.
    fn parsed_by(dialect: &dyn Dialect, sql: &str) -> String {
        format!("{:?}", Parser::parse_sql(dialect, sql))
    }

    fn assert_same(sql: &str) {
        assert_eq!(
            parsed_by(&CalamusDialect, sql),
            parsed_by(&GenericDialect {}, sql),
            "{sql}"
        );
    }

    #[test]
    fn literals_parse_as_the_generic_dialect_parses_them() {
        for sql in [
            "INSERT INTO t (a, b, c, d) VALUES (1, 'x', 2.5, $1), (-2, 'it''s', 1e3, NULL)",
            "SELECT 1::BIGINT, '5'::INT, $1::TEXT, CAST('7' AS INT)",
            "SELECT 'a' || 'b', 'a' LIKE 'b', NOT 'a' LIKE 'b', 1 + 2 * 3",
            "SELECT DATE '2020-01-01', TIMESTAMP '2020-01-01 10:00:00', INTERVAL '1' DAY",
            "SELECT x'AB', E'a\\nb', N'national', 'a' 'b'",
            "SELECT * FROM t WHERE id = $1 AND v IN ('a', 'b') AND n BETWEEN 1 AND 2",
            "SELECT 'unterminated",
            "SELECT 1 2",
            "SELECT $",
            "INSERT INTO t VALUES (1, 'a'",
        ] {
            assert_same(sql);
        }
    }

    /// Every statement of the project's SQL logic tests parses to the same tree.
    #[test]
    fn the_logic_tests_parse_as_with_the_generic_dialect() {
        let records = crate::parser::test_sql::logic_test_records();
        for sql in &records {
            assert_same(sql);
        }
        assert!(records.len() > 300, "{} statements compared", records.len());
    }

    #[test]
    fn sqlparser_sees_the_generic_dialect() {
        assert!((&CalamusDialect as &dyn Dialect).is::<GenericDialect>());
    }
}

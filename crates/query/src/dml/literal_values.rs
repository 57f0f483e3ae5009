//! The common INSERT, `VALUES` of plain literals and `$n` parameters, read without planning
//! a query: each column's values become one Arrow array of the literals' own type, exactly
//! what DataFusion's VALUES would give, and are stored through the same casts. Anything
//! else (expressions, functions, subqueries, typed literals, a column mixing types) returns
//! `None` and goes through DataFusion.

use arrow::array::ArrayRef;
use datafusion::common::ScalarValue;
use datafusion::sql::sqlparser::ast::{Expr, Query, SetExpr, UnaryOperator, Value as SqlValue};

/// The columns of `source` as arrays, when it is a VALUES list of literals and parameters.
pub(crate) fn literal_columns(source: &Query, params: &[ScalarValue]) -> Option<Vec<ArrayRef>> {
    if source.with.is_some() || source.order_by.is_some() || source.limit_clause.is_some() || source.fetch.is_some() {
        return None;
    }
    let SetExpr::Values(values) = source.body.as_ref() else {
        return None;
    };
    let width = values.rows.first()?.content.len();
    let mut columns: Vec<Vec<ScalarValue>> = vec![Vec::with_capacity(values.rows.len()); width];
    for row in &values.rows {
        if row.content.len() != width {
            return None; // DataFusion says what is wrong.
        }
        for (column, expr) in columns.iter_mut().zip(&row.content) {
            column.push(literal(expr, params)?);
        }
    }
    columns.into_iter().map(column_array).collect()
}

/// The value of a literal or parameter expression.
fn literal(expr: &Expr, params: &[ScalarValue]) -> Option<ScalarValue> {
    match expr {
        Expr::Value(v) => match &v.value {
            SqlValue::Number(text, false) => number(text, false),
            SqlValue::SingleQuotedString(s) => Some(ScalarValue::Utf8(Some(s.clone()))),
            SqlValue::Boolean(b) => Some(ScalarValue::Boolean(Some(*b))),
            SqlValue::Null => Some(ScalarValue::Null),
            SqlValue::Placeholder(p) => {
                let index: usize = p.strip_prefix('$')?.parse().ok()?;
                params.get(index.checked_sub(1)?).cloned()
            }
            _ => None,
        },
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => match expr.as_ref() {
            Expr::Value(v) => match &v.value {
                SqlValue::Number(text, false) => number(text, true),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    }
}

/// A numeric literal as DataFusion types it: BIGINT when it is an integer that fits, DOUBLE
/// when it has a fraction or an exponent; anything else is left to DataFusion.
fn number(text: &str, negative: bool) -> Option<ScalarValue> {
    if text.bytes().all(|b| b.is_ascii_digit()) {
        let magnitude: i64 = text.parse().ok()?;
        return Some(ScalarValue::Int64(Some(if negative { -magnitude } else { magnitude })));
    }
    if text
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        let value: f64 = text.parse().ok()?;
        return Some(ScalarValue::Float64(Some(if negative { -value } else { value })));
    }
    None
}

/// One column's values as an array, when they all have one type (NULLs aside).
fn column_array(values: Vec<ScalarValue>) -> Option<ArrayRef> {
    let data_type = values.iter().find(|v| !v.is_null()).map(ScalarValue::data_type);
    let values: Vec<ScalarValue> = match data_type {
        None => values,
        Some(data_type) => {
            let typed_null = ScalarValue::try_from(&data_type).ok()?;
            values
                .into_iter()
                .map(|v| {
                    if v.is_null() {
                        Some(typed_null.clone())
                    } else if v.data_type() == data_type {
                        Some(v)
                    } else {
                        None // Mixed types: DataFusion's coercion decides.
                    }
                })
                .collect::<Option<_>>()?
        }
    };
    ScalarValue::iter_to_array(values).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::parse_statements;
    use crate::statement::Statement;
    use arrow::array::{Array, Float64Array, Int64Array, StringArray};
    use datafusion::sql::sqlparser::ast::Statement as SqlStatement;

    fn source(sql: &str) -> Query {
        let Some(Statement::Sql(statement)) = parse_statements(sql).unwrap().pop() else {
            panic!("not SQL: {sql}")
        };
        let SqlStatement::Insert(insert) = *statement else {
            panic!("not an INSERT: {sql}")
        };
        *insert.source.unwrap()
    }

    #[test]
    fn literals_and_parameters_become_typed_columns() {
        let columns = literal_columns(
            &source("INSERT INTO t VALUES (1, 'a', 2.5, NULL, $1), (-2, 'b', -1e3, NULL, $2)"),
            &[ScalarValue::Utf8(Some("x".into())), ScalarValue::Null],
        )
        .expect("plain literals");
        let ints = columns[0].as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(ints.values(), &[1, -2]);
        let texts = columns[1].as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!((texts.value(0), texts.value(1)), ("a", "b"));
        let floats = columns[2].as_any().downcast_ref::<Float64Array>().unwrap();
        assert_eq!(floats.values(), &[2.5, -1000.0]);
        assert_eq!(columns[3].logical_null_count(), 2);
        let params = columns[4].as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!((params.value(0), params.is_null(1)), ("x", true));
    }

    #[test]
    fn anything_else_is_left_to_datafusion() {
        for sql in [
            "INSERT INTO t VALUES (1 + 1)",
            "INSERT INTO t VALUES (NOW())",
            "INSERT INTO t VALUES (1), (2.5)",
            "INSERT INTO t VALUES (1, 2), (3)",
            "INSERT INTO t VALUES (TIMESTAMP '2024-01-01 00:00:00')",
            "INSERT INTO t VALUES (99999999999999999999)",
            "INSERT INTO t VALUES ($3)",
            "INSERT INTO t SELECT 1",
        ] {
            assert!(
                literal_columns(&source(sql), &[ScalarValue::Int64(Some(1))]).is_none(),
                "{sql} should be planned by DataFusion"
            );
        }
    }
}

//! The common INSERT, `VALUES` of plain literals and `$n` parameters, read without planning
//! a query: each column's values become one Arrow array of the literals' own type, exactly
//! what DataFusion's VALUES would give, and are stored through the same casts. Anything
//! else (expressions, functions, subqueries, typed literals, a column mixing types) returns
//! `None` and goes through DataFusion.
//!
//! The rows come from a parsed statement ([`literal_columns`]) or straight from the tokens
//! of one ([`super::literal_insert`]); both fill the same [`LiteralColumns`].

use std::sync::Arc;

use arrow::array::{ArrayBuilder, ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, NullArray, StringBuilder};
use datafusion::common::ScalarValue;
use datafusion::sql::sqlparser::ast::{Expr, Query, SetExpr, UnaryOperator, Value as SqlValue};

/// One value of a VALUES row, as DataFusion types a literal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Literal<'a> {
    /// `NULL`.
    Null,
    /// `TRUE` or `FALSE`.
    Boolean(bool),
    /// An integer that fits in 64 bits.
    Int64(i64),
    /// A number with a fraction or an exponent.
    Float64(f64),
    /// A string in single quotes (its escapes already read).
    Utf8(&'a str),
}

/// The columns of VALUES rows being read, each typed by its first value that is not NULL.
#[derive(Default)]
pub(crate) struct LiteralColumns {
    columns: Vec<ColumnBuilder>,
    rows: usize,
}

impl LiteralColumns {
    /// Adds one value to the row being read, `column` its position in the row; `false`
    /// (and the columns are then unusable) when the first row had no such column or the
    /// column has values of another type. The row is closed by [`Self::end_row`].
    pub(crate) fn push_value(&mut self, column: usize, value: Literal<'_>) -> bool {
        if self.rows == 0 && column == self.columns.len() {
            self.columns.push(ColumnBuilder::Nulls(0));
        }
        self.columns.get_mut(column).is_some_and(|c| c.push(value))
    }

    /// Closes a row of `width` values given by [`Self::push_value`]; `false` when that is
    /// not the first row's width.
    pub(crate) fn end_row(&mut self, width: usize) -> bool {
        self.rows += 1;
        width == self.columns.len() && width > 0
    }

    /// The columns as arrays, one per value of a row.
    pub(crate) fn finish(self) -> Vec<ArrayRef> {
        self.columns.into_iter().map(ColumnBuilder::finish).collect()
    }
}

/// One column's values: only NULLs so far, or the type its first other value gave it.
enum ColumnBuilder {
    Nulls(usize),
    Boolean(BooleanBuilder),
    Int64(Int64Builder),
    Float64(Float64Builder),
    Utf8(StringBuilder),
}

impl ColumnBuilder {
    /// Adds `value`; `false` when it is of another type than the column's.
    fn push(&mut self, value: Literal<'_>) -> bool {
        if let Self::Nulls(nulls) = self {
            let nulls = *nulls;
            *self = match value {
                Literal::Null => Self::Nulls(nulls + 1),
                Literal::Boolean(_) => Self::Boolean(BooleanBuilder::new()),
                Literal::Int64(_) => Self::Int64(Int64Builder::new()),
                Literal::Float64(_) => Self::Float64(Float64Builder::new()),
                Literal::Utf8(_) => Self::Utf8(StringBuilder::new()),
            };
            match self {
                Self::Nulls(_) => return true,
                Self::Boolean(b) => b.append_nulls(nulls),
                Self::Int64(b) => b.append_nulls(nulls),
                Self::Float64(b) => b.append_nulls(nulls),
                Self::Utf8(b) => b.append_nulls(nulls),
            }
        }
        match (self, value) {
            (Self::Boolean(b), Literal::Null) => b.append_null(),
            (Self::Int64(b), Literal::Null) => b.append_null(),
            (Self::Float64(b), Literal::Null) => b.append_null(),
            (Self::Utf8(b), Literal::Null) => b.append_null(),
            (Self::Boolean(b), Literal::Boolean(v)) => b.append_value(v),
            (Self::Int64(b), Literal::Int64(v)) => b.append_value(v),
            (Self::Float64(b), Literal::Float64(v)) => b.append_value(v),
            (Self::Utf8(b), Literal::Utf8(v)) => b.append_value(v),
            // Mixed types: DataFusion's coercion decides.
            _ => return false,
        }
        true
    }

    fn finish(self) -> ArrayRef {
        match self {
            Self::Nulls(n) => Arc::new(NullArray::new(n)),
            Self::Boolean(mut b) => ArrayBuilder::finish(&mut b),
            Self::Int64(mut b) => ArrayBuilder::finish(&mut b),
            Self::Float64(mut b) => ArrayBuilder::finish(&mut b),
            Self::Utf8(mut b) => ArrayBuilder::finish(&mut b),
        }
    }
}

/// The columns of `source` as arrays, when it is a VALUES list of literals and parameters.
pub(crate) fn literal_columns(source: &Query, params: &[ScalarValue]) -> Option<Vec<ArrayRef>> {
    if source.with.is_some() || source.order_by.is_some() || source.limit_clause.is_some() || source.fetch.is_some() {
        return None;
    }
    let SetExpr::Values(values) = source.body.as_ref() else {
        return None;
    };
    let mut columns = LiteralColumns::default();
    for row in &values.rows {
        for (column, expr) in row.content.iter().enumerate() {
            if !columns.push_value(column, literal(expr, params)?) {
                return None;
            }
        }
        if !columns.end_row(row.content.len()) {
            return None; // DataFusion says what is wrong.
        }
    }
    Some(columns.finish())
}

/// The value of a literal or parameter expression.
fn literal<'a>(expr: &'a Expr, params: &'a [ScalarValue]) -> Option<Literal<'a>> {
    match expr {
        Expr::Value(v) => match &v.value {
            SqlValue::Number(text, false) => number(text, false),
            SqlValue::SingleQuotedString(s) => Some(Literal::Utf8(s)),
            SqlValue::Boolean(b) => Some(Literal::Boolean(*b)),
            SqlValue::Null => Some(Literal::Null),
            SqlValue::Placeholder(p) => {
                let index: usize = p.strip_prefix('$')?.parse().ok()?;
                parameter(params.get(index.checked_sub(1)?)?)
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

/// A parameter's value, when it has a literal's type (every type a JSON value gives).
fn parameter(value: &ScalarValue) -> Option<Literal<'_>> {
    match value {
        ScalarValue::Null => Some(Literal::Null),
        ScalarValue::Boolean(Some(b)) => Some(Literal::Boolean(*b)),
        ScalarValue::Int64(Some(v)) => Some(Literal::Int64(*v)),
        ScalarValue::Float64(Some(v)) => Some(Literal::Float64(*v)),
        ScalarValue::Utf8(Some(s)) => Some(Literal::Utf8(s)),
        // A typed NULL keeps its type, and any other type is DataFusion's to coerce.
        _ => None,
    }
}

/// A numeric literal as DataFusion types it: BIGINT when it is an integer that fits, DOUBLE
/// when it has a fraction or an exponent; anything else is left to DataFusion.
pub(crate) fn number(text: &str, negative: bool) -> Option<Literal<'static>> {
    if text.bytes().all(|b| b.is_ascii_digit()) {
        let magnitude: i64 = text.parse().ok()?;
        return Some(Literal::Int64(if negative { -magnitude } else { magnitude }));
    }
    if text
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        let value: f64 = text.parse().ok()?;
        return Some(Literal::Float64(if negative { -value } else { value }));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::test_sql::sqlparser_statements;
    use arrow::array::{Array, Float64Array, Int64Array, StringArray};
    use datafusion::sql::sqlparser::ast::Statement as SqlStatement;

    fn source(sql: &str) -> Query {
        let Some(SqlStatement::Insert(insert)) = sqlparser_statements(sql).unwrap().pop() else {
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

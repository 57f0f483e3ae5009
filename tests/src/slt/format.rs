//! How query results become sqllogictest text: one string per value, one type letter per
//! column, following the conventions of SQLite's sqllogictest.
//!
//! - NULL prints as `NULL`, an empty string as `(empty)`;
//! - booleans as `true` / `false` ([`ValueStyle::Calamus`]) or `1` / `0` in `I` columns
//!   ([`ValueStyle::Sqlite`]: SQLite's harness reads every engine's booleans as integers);
//! - integers plainly;
//! - floating-point and decimal values with three decimals (`R` columns);
//! - everything else through Arrow's own display.

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Float32Type, Float64Type, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use sqllogictest::DefaultColumnType;

/// How booleans print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueStyle {
    /// `true` / `false`, in `T` columns.
    Calamus,
    /// `1` / `0`, in `I` columns, as SQLite's scripts expect.
    Sqlite,
}

/// The sqllogictest type letter of an Arrow type: `I` integers, `R` floating point and
/// decimals, `T` anything else (booleans: see [`ValueStyle`]).
pub fn column_type(data_type: &DataType, style: ValueStyle) -> DefaultColumnType {
    match data_type {
        DataType::Boolean if style == ValueStyle::Sqlite => DefaultColumnType::Integer,
        DataType::Dictionary(_, values) => column_type(values, style),
        t if t.is_integer() => DefaultColumnType::Integer,
        t if t.is_floating() || t.is_decimal() => DefaultColumnType::FloatingPoint,
        _ => DefaultColumnType::Text,
    }
}

/// The type letters and the rows of a query result, as text.
pub fn format_rows(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    style: ValueStyle,
) -> Result<(Vec<DefaultColumnType>, Vec<Vec<String>>), ArrowError> {
    let types = schema
        .fields()
        .iter()
        .map(|f| column_type(f.data_type(), style))
        .collect();
    let mut rows = Vec::new();
    let options = FormatOptions::default().with_display_error(true);
    for batch in batches {
        let columns: Vec<Vec<String>> = batch
            .columns()
            .iter()
            .map(|array| format_column(array.as_ref(), &options, style))
            .collect::<Result<_, _>>()?;
        for row in 0..batch.num_rows() {
            rows.push(columns.iter().map(|column| column[row].clone()).collect());
        }
    }
    Ok((types, rows))
}

/// Every value of one column, as text.
fn format_column(array: &dyn Array, options: &FormatOptions<'_>, style: ValueStyle) -> Result<Vec<String>, ArrowError> {
    let formatter = ArrayFormatter::try_new(array, options)?;
    let real = column_type(array.data_type(), style) == DefaultColumnType::FloatingPoint;
    let integer_booleans = style == ValueStyle::Sqlite && array.data_type() == &DataType::Boolean;
    // Logical nulls: a `NullArray` (the type of a bare `NULL`) has no validity buffer.
    let nulls = array.logical_nulls();
    Ok((0..array.len())
        .map(|row| {
            if nulls.as_ref().is_some_and(|nulls| nulls.is_null(row)) {
                return "NULL".to_owned();
            }
            if integer_booleans {
                return if array.as_boolean().value(row) { "1" } else { "0" }.to_owned();
            }
            if real {
                return format_real(array, row, &formatter.value(row).to_string());
            }
            let text = formatter.value(row).to_string();
            if text.is_empty() { "(empty)".to_owned() } else { text }
        })
        .collect())
}

/// A floating-point or decimal value with three decimals, as SQLite's harness prints `R`.
fn format_real(array: &dyn Array, row: usize, displayed: &str) -> String {
    let value = match array.data_type() {
        DataType::Float64 => Some(array.as_primitive::<Float64Type>().value(row)),
        DataType::Float32 => Some(f64::from(array.as_primitive::<Float32Type>().value(row))),
        // Float16, decimals and dictionaries of them: their display is a plain number.
        _ => displayed.trim().parse::<f64>().ok(),
    };
    match value {
        Some(v) => format!("{v:.3}"),
        None => displayed.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{
        ArrayRef, BooleanArray, Decimal128Array, Float64Array, Int64Array, NullArray, StringArray,
    };
    use datafusion::arrow::datatypes::{Field, Schema};

    use super::*;

    #[test]
    fn values_print_as_sqllogictest_expects() {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![Some(-7), None])),
            Arc::new(Float64Array::from(vec![Some(2.5), Some(-1.0 / 3.0)])),
            Arc::new(StringArray::from(vec![Some(""), Some("a b")])),
            Arc::new(BooleanArray::from(vec![Some(true), Some(false)])),
            Arc::new(
                Decimal128Array::from(vec![Some(1234), None])
                    .with_precision_and_scale(10, 2)
                    .unwrap(),
            ),
            Arc::new(NullArray::new(2)),
        ];
        let schema = Arc::new(Schema::new(
            columns
                .iter()
                .enumerate()
                .map(|(i, c)| Field::new(format!("c{i}"), c.data_type().clone(), true))
                .collect::<Vec<_>>(),
        ));
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns).unwrap();
        let (types, rows) = format_rows(&schema, std::slice::from_ref(&batch), ValueStyle::Calamus).unwrap();
        let letters: String = types.iter().map(sqllogictest::ColumnType::to_char).collect();
        assert_eq!(letters, "IRTTRT");
        assert_eq!(rows[0], ["-7", "2.500", "(empty)", "true", "12.340", "NULL"]);
        assert_eq!(rows[1], ["NULL", "-0.333", "a b", "false", "NULL", "NULL"]);

        let (types, rows) = format_rows(&schema, &[batch], ValueStyle::Sqlite).unwrap();
        let letters: String = types.iter().map(sqllogictest::ColumnType::to_char).collect();
        assert_eq!(letters, "IRTIRT");
        assert_eq!(rows[0][3], "1");
        assert_eq!(rows[1][3], "0");
    }
}

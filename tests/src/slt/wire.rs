//! A result of the SQL endpoint (API.md) turned back into Arrow, so that a result read
//! over HTTP prints through the same formatter ([`super::format`]) as the same result
//! read in-process.
//!
//! Each column becomes the Arrow type the server's own values have for its `data_type`:
//! `Boolean` → Boolean, `SmallInt` → Int16, `Int` → Int32, `BigInt` → Int64 (UInt64 past
//! its range), `Float` → Float32, `Double` → Float64, `Text`/`Json`/`Uuid` → Utf8, `Bytes`
//! → Binary, `Timestamp` → Timestamp(µs), `Date` → Date32, `Time` → Time64(ns),
//! `{"Decimal": {precision, scale}}` → Decimal128 (Decimal256 past 38 digits). A name this
//! runner does not know is read as text.

use std::sync::Arc;

use calamus_domain::DataType;
use datafusion::arrow::array::{
    ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Decimal256Array, Float32Array, Float64Array,
    Int16Array, Int32Array, Int64Array, StringArray, Time64NanosecondArray, TimestampMicrosecondArray, UInt64Array,
};
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef, i256};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use serde_json::Value;

/// A column's type from its protocol name, which is the serde form of the Calamus type;
/// a name this runner does not know is read as text.
fn column_type(data_type: &Value) -> Result<DataType, String> {
    match serde_json::from_value::<DataType>(data_type.clone()) {
        Ok(data_type) => Ok(data_type),
        Err(_) if data_type.get("Decimal").is_some() => Err(format!(
            "a decimal type without a valid precision and scale: {data_type}"
        )),
        Err(_) => Ok(DataType::Text),
    }
}

/// The Arrow schema and the one batch of a result's `schema` and `rows`.
pub fn decode_result(schema: &Value, rows: &Value) -> Result<(SchemaRef, RecordBatch), String> {
    let columns = schema
        .as_array()
        .ok_or_else(|| format!("`schema` is not an array: {schema}"))?;
    let rows = rows.as_array().ok_or_else(|| "`rows` is not an array".to_owned())?;
    let rows: Vec<&Vec<Value>> = rows
        .iter()
        .enumerate()
        .map(|(i, row)| match row.as_array() {
            Some(values) if values.len() == columns.len() => Ok(values),
            _ => Err(format!("row {i} is not an array of {} values: {row}", columns.len())),
        })
        .collect::<Result<_, _>>()?;
    let mut fields = Vec::with_capacity(columns.len());
    let mut arrays = Vec::with_capacity(columns.len());
    for (index, column) in columns.iter().enumerate() {
        let name = column["name"].as_str().unwrap_or_default();
        let data_type = column_type(&column["data_type"])?;
        let values: Vec<&Value> = rows.iter().map(|row| &row[index]).collect();
        let array = build_array(data_type, &values).map_err(|e| format!("column {name:?}: {e}"))?;
        fields.push(Field::new(name, array.data_type().clone(), true));
        arrays.push(array);
    }
    let schema = Arc::new(Schema::new(fields));
    let options = RecordBatchOptions::new().with_row_count(Some(rows.len()));
    let batch = RecordBatch::try_new_with_options(Arc::clone(&schema), arrays, &options).map_err(|e| e.to_string())?;
    Ok((schema, batch))
}

/// Every value of a column, `None` for JSON `null`.
fn collect<T>(values: &[&Value], mut convert: impl FnMut(&Value) -> Option<T>) -> Result<Vec<Option<T>>, String> {
    values
        .iter()
        .map(|value| match value {
            Value::Null => Ok(None),
            value => convert(value)
                .map(Some)
                .ok_or_else(|| format!("unexpected value {value}")),
        })
        .collect()
}

fn build_array(data_type: DataType, values: &[&Value]) -> Result<ArrayRef, String> {
    Ok(match data_type {
        DataType::Boolean => Arc::new(BooleanArray::from(collect(values, Value::as_bool)?)),
        DataType::SmallInt => Arc::new(Int16Array::from(collect(values, |v| {
            integer(v).and_then(|i| i16::try_from(i).ok())
        })?)),
        DataType::Int => Arc::new(Int32Array::from(collect(values, |v| {
            integer(v).and_then(|i| i32::try_from(i).ok())
        })?)),
        DataType::BigInt => match collect(values, |v| integer(v).and_then(|i| i64::try_from(i).ok())) {
            Ok(values) => Arc::new(Int64Array::from(values)),
            // Only an unsigned 64-bit column holds values past i64.
            Err(_) => Arc::new(UInt64Array::from(collect(values, |v| {
                integer(v).and_then(|i| u64::try_from(i).ok())
            })?)),
        },
        // The server widened the f32 to f64 exactly; narrowing it back is exact too.
        DataType::Float => Arc::new(Float32Array::from(collect(values, |v| float(v).map(|f| f as f32))?)),
        DataType::Double => Arc::new(Float64Array::from(collect(values, float)?)),
        DataType::Text | DataType::Json | DataType::Uuid => {
            Arc::new(StringArray::from(collect(values, |v| match v {
                Value::String(s) => Some(s.clone()),
                other => Some(other.to_string()),
            })?))
        }
        DataType::Bytes => {
            let bytes = collect(values, |v| {
                v.as_array()?
                    .iter()
                    .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                    .collect::<Option<Vec<u8>>>()
            })?;
            Arc::new(BinaryArray::from_iter(bytes))
        }
        DataType::Timestamp => Arc::new(TimestampMicrosecondArray::from(collect(values, |v| {
            integer(v).and_then(|i| i64::try_from(i).ok())
        })?)),
        DataType::Date => Arc::new(Date32Array::from(collect(values, |v| {
            integer(v).and_then(|i| i32::try_from(i).ok())
        })?)),
        DataType::Time => Arc::new(Time64NanosecondArray::from(collect(values, |v| {
            integer(v)
                .and_then(|i| i64::try_from(i).ok())
                .and_then(|us| us.checked_mul(1_000))
        })?)),
        DataType::Decimal { precision, scale } if precision <= 38 => Arc::new(
            Decimal128Array::from(collect(values, |v| unscaled(v, scale)?.parse::<i128>().ok())?)
                .with_precision_and_scale(precision, scale)
                .map_err(|e| e.to_string())?,
        ),
        DataType::Decimal { precision, scale } => Arc::new(
            Decimal256Array::from(collect(values, |v| i256::from_string(&unscaled(v, scale)?))?)
                .with_precision_and_scale(precision, scale)
                .map_err(|e| e.to_string())?,
        ),
    })
}

/// An integer written as a JSON number or, for BIGINT, a string.
fn integer(value: &Value) -> Option<i128> {
    match value {
        Value::Number(n) => n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from)),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// A float written as a JSON number, or as `NaN`, `Infinity`, `-Infinity`.
fn float(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

/// A decimal's text (`"-123.45"`) as its unscaled integer's digits at `scale` (`"-12345"`
/// at scale 2).
fn unscaled(value: &Value, scale: i8) -> Option<String> {
    let text = match value {
        Value::String(s) => s.as_str(),
        _ => return None,
    };
    let (sign, unsigned) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text.strip_prefix('+').unwrap_or(text)),
    };
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() && fraction.is_empty() || !all_digits(whole) || !all_digits(fraction) {
        return None;
    }
    let places = usize::from(scale.unsigned_abs());
    let digits = if scale >= 0 {
        if fraction.len() > places {
            return None;
        }
        format!("{whole}{fraction:0<places$}")
    } else {
        // A negative scale: the value is a multiple of 10^-scale.
        let significant = whole.strip_suffix(&"0".repeat(places))?;
        if fraction.bytes().any(|b| b != b'0') {
            return None;
        }
        significant.to_owned()
    };
    let digits = digits.trim_start_matches('0');
    Some(if digits.is_empty() {
        "0".to_owned()
    } else {
        format!("{sign}{digits}")
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::slt::format::{ValueStyle, format_rows};

    fn printed(schema: Value, rows: Value) -> (String, Vec<Vec<String>>) {
        let (schema, batch) = decode_result(&schema, &rows).unwrap();
        let (types, rows) = format_rows(&schema, &[batch], ValueStyle::Calamus).unwrap();
        (types.iter().map(sqllogictest::ColumnType::to_char).collect(), rows)
    }

    #[test]
    fn every_protocol_type_prints_like_its_arrow_value() {
        let schema = json!([
            {"name": "b", "data_type": "Boolean", "index": 0},
            {"name": "s", "data_type": "SmallInt", "index": 1},
            {"name": "i", "data_type": "Int", "index": 2},
            {"name": "l", "data_type": "BigInt", "index": 3},
            {"name": "f", "data_type": "Float", "index": 4},
            {"name": "d", "data_type": "Double", "index": 5},
            {"name": "t", "data_type": "Text", "index": 6},
            {"name": "y", "data_type": "Bytes", "index": 7},
            {"name": "ts", "data_type": "Timestamp", "index": 8},
            {"name": "dt", "data_type": "Date", "index": 9},
            {"name": "tm", "data_type": "Time", "index": 10},
            {"name": "n", "data_type": {"Decimal": {"precision": 10, "scale": 2}}, "index": 11},
            {"name": "j", "data_type": "Json", "index": 12},
        ]);
        let rows = json!([
            [
                true,
                7,
                -3,
                "9007199254740993",
                1.5,
                "NaN",
                "",
                [1, 171],
                1_700_000_000_123_456_i64,
                19_723,
                45_296_000_001_i64,
                "-0.05",
                "{\"a\":1}"
            ],
            [
                null,
                null,
                null,
                null,
                null,
                "-Infinity",
                "x y",
                [],
                0,
                0,
                0,
                "123.40",
                null
            ],
        ]);
        let (types, rows) = printed(schema, rows);
        assert_eq!(types, "TIIIRRTTTTTRT");
        assert_eq!(
            rows[0],
            [
                "true",
                "7",
                "-3",
                "9007199254740993",
                "1.500",
                "NaN",
                "(empty)",
                "01ab",
                "2023-11-14T22:13:20.123456",
                "2024-01-01",
                "12:34:56.000001",
                "-0.050",
                "{\"a\":1}"
            ]
        );
        assert_eq!(
            rows[1],
            [
                "NULL",
                "NULL",
                "NULL",
                "NULL",
                "NULL",
                "-inf",
                "x y",
                "(empty)",
                "1970-01-01T00:00:00",
                "1970-01-01",
                "00:00:00",
                "123.400",
                "NULL"
            ]
        );
    }

    #[test]
    fn decimal_text_becomes_unscaled_digits() {
        let at = |text: &str, scale| unscaled(&json!(text), scale);
        assert_eq!(at("123.45", 2).as_deref(), Some("12345"));
        assert_eq!(at("-0.05", 2).as_deref(), Some("-5"));
        assert_eq!(at("-0.00", 2).as_deref(), Some("0"));
        assert_eq!(at("7", 3).as_deref(), Some("7000"));
        assert_eq!(at("1200", -2).as_deref(), Some("12"));
        assert_eq!(at("1.234", 2), None);
        assert_eq!(at("1e3", 0), None);
        assert_eq!(at("", 0), None);
    }

    #[test]
    fn a_result_without_rows_or_columns_decodes() {
        let (types, rows) = printed(json!([{"name": "x", "data_type": "BigInt", "index": 0}]), json!([]));
        assert_eq!(types, "I");
        assert!(rows.is_empty());
        let (types, rows) = printed(json!([]), json!([[], []]));
        assert_eq!(types, "");
        assert_eq!(rows, [Vec::<String>::new(), Vec::new()]);
    }

    #[test]
    fn malformed_results_are_refused() {
        let schema = json!([{"name": "x", "data_type": "Int", "index": 0}]);
        let error = |schema: &Value, rows: Value| decode_result(schema, &rows).map(|_| ()).unwrap_err();
        assert_eq!(
            error(&schema, json!([["1"], [true]])),
            "column \"x\": unexpected value true"
        );
        assert_eq!(
            error(&schema, json!([[1, 2]])),
            "row 0 is not an array of 1 values: [1,2]"
        );
        assert_eq!(error(&json!({}), json!([])), "`schema` is not an array: {}");
        let decimal = json!([{"name": "d", "data_type": {"Decimal": {"precision": 300}}, "index": 0}]);
        assert!(error(&decimal, json!([])).starts_with("a decimal type without a valid precision and scale"));
    }
}

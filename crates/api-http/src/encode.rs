//! Arrow values as the protocol writes them (API.md): rows as JSON arrays, BIGINT and
//! DECIMAL as strings, TIMESTAMP as integer microseconds since the epoch, DATE as days,
//! TIME as microseconds since midnight, BYTES as arrays of numbers, other types native.
//!
//! Encoding writes straight into a byte buffer, one batch at a time, so a large result is
//! never held whole as JSON values.

use std::io::Write;

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BinaryViewArray, BooleanArray, Date32Array, Date64Array, Decimal128Array,
    Decimal256Array, FixedSizeBinaryArray, Float16Array, Float32Array, Float64Array, Int8Array, Int16Array, Int32Array,
    Int64Array, LargeBinaryArray, LargeStringArray, StringArray, StringViewArray, Time32MillisecondArray,
    Time32SecondArray, Time64MicrosecondArray, Time64NanosecondArray, TimestampMicrosecondArray,
    TimestampMillisecondArray, TimestampNanosecondArray, TimestampSecondArray, UInt8Array, UInt16Array, UInt32Array,
    UInt64Array,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use calamus_domain::DataType as CalamusType;
use serde_json::{Value, json};

/// The field metadata key naming a Calamus type that Arrow cannot tell apart (`Json`,
/// `Uuid` are both Arrow `Utf8`).
pub use calamus_domain::arrow_rows::TYPE_METADATA_KEY;

/// The protocol's `schema` entry of each column: `{"name", "data_type", "index"}`.
pub fn schema_json(schema: &Schema) -> Value {
    Value::Array(
        schema
            .fields()
            .iter()
            .enumerate()
            .map(|(index, field)| json!({"name": field.name(), "data_type": data_type_json(field), "index": index}))
            .collect(),
    )
}

/// The protocol's name of a column's type: the serde form of the Calamus type
/// ([`CalamusType`]), which the field's metadata names for `Json` and `Uuid` columns.
pub fn data_type_json(field: &Field) -> Value {
    let named = field
        .metadata()
        .get(TYPE_METADATA_KEY)
        .and_then(|name| serde_json::from_value(Value::String(name.clone())).ok());
    let data_type = named.unwrap_or_else(|| CalamusType::nearest_for_arrow(field.data_type()));
    serde_json::to_value(data_type).unwrap_or(Value::Null)
}

/// One column of a batch, downcast once so encoding a value is a plain match.
enum Column<'a> {
    Null,
    Boolean(&'a BooleanArray),
    Int8(&'a Int8Array),
    Int16(&'a Int16Array),
    Int32(&'a Int32Array),
    UInt8(&'a UInt8Array),
    UInt16(&'a UInt16Array),
    UInt32(&'a UInt32Array),
    /// BIGINT-like: written as strings.
    Int64(&'a Int64Array),
    UInt64(&'a UInt64Array),
    Float16(&'a Float16Array),
    Float32(&'a Float32Array),
    Float64(&'a Float64Array),
    Decimal128(&'a Decimal128Array, i8),
    Decimal256(&'a Decimal256Array, i8),
    Utf8(&'a StringArray),
    LargeUtf8(&'a LargeStringArray),
    Utf8View(&'a StringViewArray),
    Binary(&'a BinaryArray),
    LargeBinary(&'a LargeBinaryArray),
    BinaryView(&'a BinaryViewArray),
    FixedBinary(&'a FixedSizeBinaryArray),
    /// Integer microseconds since the epoch, from any unit.
    Timestamp(TimestampColumn<'a>),
    Date32(&'a Date32Array),
    Date64(&'a Date64Array),
    /// Integer microseconds since midnight.
    Time(TimeColumn<'a>),
    /// Anything else, in Arrow's display form.
    Display(ArrayFormatter<'a>),
}

enum TimestampColumn<'a> {
    Second(&'a TimestampSecondArray),
    Millisecond(&'a TimestampMillisecondArray),
    Microsecond(&'a TimestampMicrosecondArray),
    Nanosecond(&'a TimestampNanosecondArray),
}

enum TimeColumn<'a> {
    Second(&'a Time32SecondArray),
    Millisecond(&'a Time32MillisecondArray),
    Microsecond(&'a Time64MicrosecondArray),
    Nanosecond(&'a Time64NanosecondArray),
}

impl<'a> Column<'a> {
    fn new(array: &'a ArrayRef, display: &'a FormatOptions<'a>) -> Self {
        let a = array.as_ref();
        match a.data_type() {
            DataType::Null => Column::Null,
            DataType::Boolean => Column::Boolean(a.as_boolean()),
            DataType::Int8 => Column::Int8(a.as_primitive()),
            DataType::Int16 => Column::Int16(a.as_primitive()),
            DataType::Int32 => Column::Int32(a.as_primitive()),
            DataType::Int64 => Column::Int64(a.as_primitive()),
            DataType::UInt8 => Column::UInt8(a.as_primitive()),
            DataType::UInt16 => Column::UInt16(a.as_primitive()),
            DataType::UInt32 => Column::UInt32(a.as_primitive()),
            DataType::UInt64 => Column::UInt64(a.as_primitive()),
            DataType::Float16 => Column::Float16(a.as_primitive()),
            DataType::Float32 => Column::Float32(a.as_primitive()),
            DataType::Float64 => Column::Float64(a.as_primitive()),
            DataType::Decimal128(_, s) => Column::Decimal128(a.as_primitive(), *s),
            DataType::Decimal256(_, s) => Column::Decimal256(a.as_primitive(), *s),
            DataType::Utf8 => Column::Utf8(a.as_string()),
            DataType::LargeUtf8 => Column::LargeUtf8(a.as_string()),
            DataType::Utf8View => Column::Utf8View(a.as_string_view()),
            DataType::Binary => Column::Binary(a.as_binary()),
            DataType::LargeBinary => Column::LargeBinary(a.as_binary()),
            DataType::BinaryView => Column::BinaryView(a.as_binary_view()),
            DataType::FixedSizeBinary(_) => Column::FixedBinary(a.as_fixed_size_binary()),
            DataType::Timestamp(unit, _) => Column::Timestamp(match unit {
                TimeUnit::Second => TimestampColumn::Second(a.as_primitive()),
                TimeUnit::Millisecond => TimestampColumn::Millisecond(a.as_primitive()),
                TimeUnit::Microsecond => TimestampColumn::Microsecond(a.as_primitive()),
                TimeUnit::Nanosecond => TimestampColumn::Nanosecond(a.as_primitive()),
            }),
            DataType::Date32 => Column::Date32(a.as_primitive()),
            DataType::Date64 => Column::Date64(a.as_primitive()),
            DataType::Time32(TimeUnit::Second) => Column::Time(TimeColumn::Second(a.as_primitive())),
            DataType::Time32(_) => Column::Time(TimeColumn::Millisecond(a.as_primitive())),
            DataType::Time64(TimeUnit::Microsecond) => Column::Time(TimeColumn::Microsecond(a.as_primitive())),
            DataType::Time64(_) => Column::Time(TimeColumn::Nanosecond(a.as_primitive())),
            _ => match ArrayFormatter::try_new(a, display) {
                Ok(formatter) => Column::Display(formatter),
                Err(_) => Column::Null,
            },
        }
    }

    /// Writes the value at `row` (the caller has checked it is not null).
    fn write(&self, out: &mut Vec<u8>, row: usize) {
        match self {
            Column::Null => out.extend_from_slice(b"null"),
            Column::Boolean(a) => out.extend_from_slice(if a.value(row) { b"true" } else { b"false" }),
            Column::Int8(a) => write_number(out, a.value(row)),
            Column::Int16(a) => write_number(out, a.value(row)),
            Column::Int32(a) => write_number(out, a.value(row)),
            Column::UInt8(a) => write_number(out, a.value(row)),
            Column::UInt16(a) => write_number(out, a.value(row)),
            Column::UInt32(a) => write_number(out, a.value(row)),
            Column::Int64(a) => write_quoted(out, a.value(row)),
            Column::UInt64(a) => write_quoted(out, a.value(row)),
            Column::Float16(a) => write_float(out, f64::from(a.value(row))),
            Column::Float32(a) => write_float(out, f64::from(a.value(row))),
            Column::Float64(a) => write_float(out, a.value(row)),
            Column::Decimal128(a, scale) => write_decimal(out, &a.value(row).to_string(), *scale),
            Column::Decimal256(a, scale) => write_decimal(out, &a.value(row).to_string(), *scale),
            Column::Utf8(a) => write_str(out, a.value(row)),
            Column::LargeUtf8(a) => write_str(out, a.value(row)),
            Column::Utf8View(a) => write_str(out, a.value(row)),
            Column::Binary(a) => write_bytes(out, a.value(row)),
            Column::LargeBinary(a) => write_bytes(out, a.value(row)),
            Column::BinaryView(a) => write_bytes(out, a.value(row)),
            Column::FixedBinary(a) => write_bytes(out, a.value(row)),
            Column::Timestamp(t) => write_number(
                out,
                match t {
                    TimestampColumn::Second(a) => a.value(row).saturating_mul(1_000_000),
                    TimestampColumn::Millisecond(a) => a.value(row).saturating_mul(1_000),
                    TimestampColumn::Microsecond(a) => a.value(row),
                    TimestampColumn::Nanosecond(a) => a.value(row).div_euclid(1_000),
                },
            ),
            Column::Date32(a) => write_number(out, a.value(row)),
            Column::Date64(a) => write_number(out, a.value(row).div_euclid(86_400_000)),
            Column::Time(t) => write_number(
                out,
                match t {
                    TimeColumn::Second(a) => i64::from(a.value(row)) * 1_000_000,
                    TimeColumn::Millisecond(a) => i64::from(a.value(row)) * 1_000,
                    TimeColumn::Microsecond(a) => a.value(row),
                    TimeColumn::Nanosecond(a) => a.value(row) / 1_000,
                },
            ),
            Column::Display(formatter) => write_str(out, &formatter.value(row).to_string()),
        }
    }
}

fn write_number(out: &mut Vec<u8>, value: impl std::fmt::Display) {
    let _ = write!(out, "{value}");
}

fn write_quoted(out: &mut Vec<u8>, value: impl std::fmt::Display) {
    let _ = write!(out, "\"{value}\"");
}

/// JSON has no NaN or infinities: they are written as the strings `NaN`, `Infinity`, `-Infinity`.
fn write_float(out: &mut Vec<u8>, value: f64) {
    if value.is_nan() {
        out.extend_from_slice(b"\"NaN\"");
    } else if value.is_infinite() {
        out.extend_from_slice(if value > 0.0 { b"\"Infinity\"" } else { b"\"-Infinity\"" });
    } else {
        let _ = serde_json::to_writer(&mut *out, &value);
    }
}

/// A decimal's unscaled digits with the point put back: `"12345", 2` → `"123.45"`.
fn write_decimal(out: &mut Vec<u8>, digits: &str, scale: i8) {
    out.push(b'"');
    let (sign, digits) = match digits.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", digits),
    };
    out.extend_from_slice(sign.as_bytes());
    if scale <= 0 {
        out.extend_from_slice(digits.as_bytes());
        out.extend(std::iter::repeat_n(b'0', usize::from(scale.unsigned_abs())));
    } else {
        let scale = usize::from(scale.unsigned_abs());
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (whole, fraction) = padded.split_at(padded.len() - scale);
        let _ = write!(out, "{whole}.{fraction}");
    }
    out.push(b'"');
}

fn write_str(out: &mut Vec<u8>, value: &str) {
    let _ = serde_json::to_writer(&mut *out, value);
}

fn write_bytes(out: &mut Vec<u8>, value: &[u8]) {
    out.push(b'[');
    for (i, byte) in value.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_number(out, byte);
    }
    out.push(b']');
}

/// Writes a batch's rows as JSON arrays, comma separated, after `rows_written` earlier rows
/// of the same result (which decides whether the first needs a leading comma).
pub fn write_rows_as_arrays(out: &mut Vec<u8>, batch: &RecordBatch, rows_written: u64) {
    let options = FormatOptions::default();
    let columns: Vec<Column<'_>> = batch.columns().iter().map(|c| Column::new(c, &options)).collect();
    for row in 0..batch.num_rows() {
        if rows_written > 0 || row > 0 {
            out.push(b',');
        }
        out.push(b'[');
        for (i, (column, array)) in columns.iter().zip(batch.columns()).enumerate() {
            if i > 0 {
                out.push(b',');
            }
            if array.is_null(row) {
                out.extend_from_slice(b"null");
            } else {
                column.write(out, row);
            }
        }
        out.push(b']');
    }
}

/// Writes a batch's rows as JSON objects (column name to value), comma separated: the
/// row form of live-query messages.
pub fn write_rows_as_objects(out: &mut Vec<u8>, batch: &RecordBatch) {
    let options = FormatOptions::default();
    let columns: Vec<Column<'_>> = batch.columns().iter().map(|c| Column::new(c, &options)).collect();
    let schema = batch.schema();
    let names: Vec<Vec<u8>> = schema
        .fields()
        .iter()
        .map(|f| serde_json::to_vec(f.name()).unwrap_or_default())
        .collect();
    for row in 0..batch.num_rows() {
        if row > 0 {
            out.push(b',');
        }
        out.push(b'{');
        for (i, (column, array)) in columns.iter().zip(batch.columns()).enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&names[i]);
            out.push(b':');
            if array.is_null(row) {
                out.extend_from_slice(b"null");
            } else {
                column.write(out, row);
            }
        }
        out.push(b'}');
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Decimal128Array, StringArray};
    use arrow::datatypes::Field;

    use super::*;

    fn encode(batch: &RecordBatch) -> Value {
        let mut out = vec![b'['];
        write_rows_as_arrays(&mut out, batch, 0);
        out.push(b']');
        serde_json::from_slice(&out).expect("the encoder writes valid JSON")
    }

    #[test]
    fn values_use_the_protocol_encodings() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
            Field::new("price", DataType::Decimal128(10, 2), true),
            Field::new("at", DataType::Timestamp(TimeUnit::Microsecond, None), true),
            Field::new("day", DataType::Date32, true),
            Field::new("blob", DataType::Binary, true),
            Field::new("ok", DataType::Boolean, true),
            Field::new("ratio", DataType::Float64, true),
            Field::new("n", DataType::Int32, true),
            Field::new("t", DataType::Time64(TimeUnit::Nanosecond), true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![9_007_199_254_740_993, -1])),
                Arc::new(StringArray::from(vec![Some("quote \" and \u{1}"), None])),
                Arc::new(
                    Decimal128Array::from(vec![Some(12345), Some(-5)])
                        .with_precision_and_scale(10, 2)
                        .unwrap(),
                ),
                Arc::new(TimestampMicrosecondArray::from(vec![Some(1_700_000_000_000_001), None])),
                Arc::new(Date32Array::from(vec![Some(19_000), None])),
                Arc::new(BinaryArray::from(vec![Some(&b"\x00\xff"[..]), None])),
                Arc::new(BooleanArray::from(vec![Some(true), None])),
                Arc::new(Float64Array::from(vec![Some(0.5), Some(f64::NAN)])),
                Arc::new(Int32Array::from(vec![Some(7), None])),
                Arc::new(Time64NanosecondArray::from(vec![Some(3_600_000_000_000), None])),
            ],
        )
        .unwrap();
        assert_eq!(
            encode(&batch),
            json!([
                [
                    "9007199254740993",
                    "quote \" and \u{1}",
                    "123.45",
                    1_700_000_000_000_001_i64,
                    19000,
                    [0, 255],
                    true,
                    0.5,
                    7,
                    3_600_000_000_i64
                ],
                ["-1", null, "-0.05", null, null, null, null, "NaN", null, null]
            ])
        );
    }

    #[test]
    fn decimals_keep_their_scale() {
        let mut out = Vec::new();
        write_decimal(&mut out, "7", 3);
        write_decimal(&mut out, "-120", 1);
        write_decimal(&mut out, "5", 0);
        assert_eq!(String::from_utf8(out).unwrap(), "\"0.007\"\"-12.0\"\"5\"");
    }

    #[test]
    fn schema_names_follow_the_protocol() {
        let mut json_field = Field::new("doc", DataType::Utf8, true);
        json_field.set_metadata([(TYPE_METADATA_KEY.to_owned(), "Json".to_owned())].into());
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            json_field,
            Field::new("p", DataType::Decimal128(12, 3), true),
        ]);
        assert_eq!(
            schema_json(&schema),
            json!([
                {"name": "id", "data_type": "BigInt", "index": 0},
                {"name": "doc", "data_type": "Json", "index": 1},
                {"name": "p", "data_type": {"Decimal": {"precision": 12, "scale": 3}}, "index": 2}
            ])
        );
    }
}

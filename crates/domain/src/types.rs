//! Column types and values.

use std::fmt;

use arrow::datatypes::{DataType as ArrowType, TimeUnit};
use serde::{Deserialize, Serialize};

/// The type of a column. Each maps to exactly one Arrow type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DataType {
    /// `BOOLEAN`.
    Boolean,
    /// `SMALLINT`: 16-bit integer.
    SmallInt,
    /// `INT`/`INTEGER`: 32-bit integer.
    Int,
    /// `BIGINT`: 64-bit integer.
    BigInt,
    /// `REAL`/`FLOAT`: 32-bit float.
    Float,
    /// `DOUBLE`: 64-bit float.
    Double,
    /// `DECIMAL(p, s)`, stored as a 128-bit integer scaled by `10^s`.
    Decimal { precision: u8, scale: i8 },
    /// `TEXT`/`VARCHAR`/`STRING`/`CHAR`.
    Text,
    /// `BYTES`/`BYTEA`/`BLOB`.
    Bytes,
    /// `JSON`: text holding one valid JSON document.
    Json,
    /// `TIMESTAMP`: microseconds since the Unix epoch, no time zone.
    Timestamp,
    /// `DATE`: days since the Unix epoch.
    Date,
    /// `TIME`: microseconds since midnight (nanoseconds in Arrow, like SQL TIME literals).
    Time,
    /// `UUID`: kept as its canonical lowercase text.
    Uuid,
}

impl DataType {
    /// The Arrow type holding values of this type.
    pub fn arrow_type(&self) -> ArrowType {
        match self {
            DataType::Boolean => ArrowType::Boolean,
            DataType::SmallInt => ArrowType::Int16,
            DataType::Int => ArrowType::Int32,
            DataType::BigInt => ArrowType::Int64,
            DataType::Float => ArrowType::Float32,
            DataType::Double => ArrowType::Float64,
            DataType::Decimal { precision, scale } => ArrowType::Decimal128(*precision, *scale),
            DataType::Text | DataType::Json | DataType::Uuid => ArrowType::Utf8,
            DataType::Bytes => ArrowType::Binary,
            DataType::Timestamp => ArrowType::Timestamp(TimeUnit::Microsecond, None),
            DataType::Date => ArrowType::Date32,
            DataType::Time => ArrowType::Time64(TimeUnit::Nanosecond),
        }
    }

    /// The Calamus type an Arrow type's values are shown as: the inverse of
    /// [`DataType::arrow_type`], widened for the types only expressions produce (`Int8` is
    /// a `SmallInt`, `Date64` a `Date`, ...). Types with no Calamus counterpart (intervals,
    /// lists, ...) are shown as `Text`.
    pub fn nearest_for_arrow(arrow: &ArrowType) -> DataType {
        match arrow {
            ArrowType::Boolean => DataType::Boolean,
            ArrowType::Int8 | ArrowType::Int16 | ArrowType::UInt8 => DataType::SmallInt,
            ArrowType::Int32 | ArrowType::UInt16 => DataType::Int,
            ArrowType::Int64 | ArrowType::UInt32 | ArrowType::UInt64 => DataType::BigInt,
            ArrowType::Float16 | ArrowType::Float32 => DataType::Float,
            ArrowType::Float64 => DataType::Double,
            ArrowType::Binary | ArrowType::LargeBinary | ArrowType::BinaryView | ArrowType::FixedSizeBinary(_) => {
                DataType::Bytes
            }
            ArrowType::Timestamp(..) => DataType::Timestamp,
            ArrowType::Date32 | ArrowType::Date64 => DataType::Date,
            ArrowType::Time32(_) | ArrowType::Time64(_) => DataType::Time,
            ArrowType::Decimal32(precision, scale)
            | ArrowType::Decimal64(precision, scale)
            | ArrowType::Decimal128(precision, scale)
            | ArrowType::Decimal256(precision, scale) => DataType::Decimal {
                precision: *precision,
                scale: *scale,
            },
            _ => DataType::Text,
        }
    }

    /// The name the wire protocol uses (`BigInt`, `Text`, ...); DECIMAL is `Decimal(p,s)`
    /// here. In JSON the protocol writes a type as this enum's serde form: unit variants by
    /// name, `{"Decimal": {"precision": p, "scale": s}}`.
    pub fn wire_name(&self) -> String {
        match self {
            DataType::Boolean => "Boolean".into(),
            DataType::SmallInt => "SmallInt".into(),
            DataType::Int => "Int".into(),
            DataType::BigInt => "BigInt".into(),
            DataType::Float => "Float".into(),
            DataType::Double => "Double".into(),
            DataType::Decimal { precision, scale } => format!("Decimal({precision},{scale})"),
            DataType::Text => "Text".into(),
            DataType::Bytes => "Bytes".into(),
            DataType::Json => "Json".into(),
            DataType::Timestamp => "Timestamp".into(),
            DataType::Date => "Date".into(),
            DataType::Time => "Time".into(),
            DataType::Uuid => "Uuid".into(),
        }
    }

    /// The SQL spelling, as `DESCRIBE` and `system.columns` show it.
    pub fn sql_name(&self) -> String {
        match self {
            DataType::Boolean => "BOOLEAN".into(),
            DataType::SmallInt => "SMALLINT".into(),
            DataType::Int => "INT".into(),
            DataType::BigInt => "BIGINT".into(),
            DataType::Float => "FLOAT".into(),
            DataType::Double => "DOUBLE".into(),
            DataType::Decimal { precision, scale } => format!("DECIMAL({precision},{scale})"),
            DataType::Text => "TEXT".into(),
            DataType::Bytes => "BYTES".into(),
            DataType::Json => "JSON".into(),
            DataType::Timestamp => "TIMESTAMP".into(),
            DataType::Date => "DATE".into(),
            DataType::Time => "TIME".into(),
            DataType::Uuid => "UUID".into(),
        }
    }

    /// Whether the type can be a primary key (every type but floats and JSON).
    pub fn can_be_primary_key(&self) -> bool {
        !matches!(self, DataType::Float | DataType::Double | DataType::Json)
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.sql_name())
    }
}

/// One value of a row, in the physical form of its column's type.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// BOOLEAN.
    Boolean(bool),
    /// SMALLINT.
    SmallInt(i16),
    /// INT.
    Int(i32),
    /// BIGINT.
    BigInt(i64),
    /// FLOAT.
    Float(f32),
    /// DOUBLE.
    Double(f64),
    /// DECIMAL, unscaled.
    Decimal(i128),
    /// TEXT, JSON and UUID.
    Text(String),
    /// BYTES.
    Bytes(Vec<u8>),
    /// TIMESTAMP, microseconds since the epoch.
    Timestamp(i64),
    /// DATE, days since the epoch.
    Date(i32),
    /// TIME, microseconds since midnight.
    Time(i64),
}

impl Value {
    /// Whether this is NULL.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Whether the value has the physical form of `data_type` (NULL fits every type).
    pub fn fits(&self, data_type: &DataType) -> bool {
        matches!(
            (self, data_type),
            (Value::Null, _)
                | (Value::Boolean(_), DataType::Boolean)
                | (Value::SmallInt(_), DataType::SmallInt)
                | (Value::Int(_), DataType::Int)
                | (Value::BigInt(_), DataType::BigInt)
                | (Value::Float(_), DataType::Float)
                | (Value::Double(_), DataType::Double)
                | (Value::Decimal(_), DataType::Decimal { .. })
                | (Value::Text(_), DataType::Text | DataType::Json | DataType::Uuid)
                | (Value::Bytes(_), DataType::Bytes)
                | (Value::Timestamp(_), DataType::Timestamp)
                | (Value::Date(_), DataType::Date)
                | (Value::Time(_), DataType::Time)
        )
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("NULL"),
            Value::Boolean(v) => write!(f, "{v}"),
            Value::SmallInt(v) => write!(f, "{v}"),
            Value::Int(v) => write!(f, "{v}"),
            Value::BigInt(v) => write!(f, "{v}"),
            Value::Float(v) => write!(f, "{v}"),
            Value::Double(v) => write!(f, "{v}"),
            Value::Decimal(v) => write!(f, "{v}"),
            Value::Text(v) => write!(f, "'{}'", v.replace('\'', "''")),
            Value::Bytes(v) => write!(f, "<{} bytes>", v.len()),
            Value::Timestamp(v) | Value::Time(v) => write!(f, "{v}"),
            Value::Date(v) => write!(f, "{v}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrow_types_map_back_to_their_calamus_type() {
        let every = [
            DataType::Boolean,
            DataType::SmallInt,
            DataType::Int,
            DataType::BigInt,
            DataType::Float,
            DataType::Double,
            DataType::Decimal {
                precision: 12,
                scale: 3,
            },
            DataType::Text,
            DataType::Bytes,
            DataType::Timestamp,
            DataType::Date,
            DataType::Time,
        ];
        for data_type in every {
            assert_eq!(DataType::nearest_for_arrow(&data_type.arrow_type()), data_type);
        }
        assert_eq!(DataType::nearest_for_arrow(&ArrowType::UInt64), DataType::BigInt);
        assert_eq!(DataType::nearest_for_arrow(&ArrowType::Date64), DataType::Date);
    }

    #[test]
    fn the_serde_form_is_the_protocols_type_name() {
        assert_eq!(
            serde_json::to_value(DataType::BigInt).unwrap(),
            serde_json::json!("BigInt")
        );
        assert_eq!(
            serde_json::to_value(DataType::Decimal {
                precision: 10,
                scale: 2
            })
            .unwrap(),
            serde_json::json!({"Decimal": {"precision": 10, "scale": 2}})
        );
        assert_eq!(
            serde_json::from_value::<DataType>(serde_json::json!("Uuid")).unwrap(),
            DataType::Uuid
        );
    }
}

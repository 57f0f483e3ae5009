//! SQL types to Calamus types, and Arrow columns to stored values.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::util::display::FormatOptions;
use calamus_domain::arrow_rows::array_values;
use calamus_domain::{DataType, DomainError, Value};
use datafusion::sql::sqlparser::ast::{DataType as SqlType, ExactNumberInfo, TimezoneInfo};

use crate::error::{QueryError, QueryResult};

/// The precision and scale of a DECIMAL declared without them.
const DEFAULT_DECIMAL: (u8, i8) = (38, 10);

/// Maps a declared SQL type to a Calamus type; `serial` is true for the auto-increment
/// spellings (`SERIAL`, `BIGSERIAL`), which mean BIGINT DEFAULT SNOWFLAKE_ID().
pub fn column_type(sql: &SqlType) -> QueryResult<(DataType, bool)> {
    use SqlType as S;
    let plain = |t| Ok((t, false));
    match sql {
        S::Boolean | S::Bool => plain(DataType::Boolean),
        S::SmallInt(_) | S::Int2(_) | S::TinyInt(_) | S::Int16 => plain(DataType::SmallInt),
        S::Int(_) | S::Integer(_) | S::Int4(_) | S::MediumInt(_) | S::Int32 => plain(DataType::Int),
        S::BigInt(_) | S::Int8(_) | S::Int64 => plain(DataType::BigInt),
        S::Real | S::Float4 | S::Float32 => plain(DataType::Float),
        S::Float(info) => match info {
            ExactNumberInfo::Precision(p) | ExactNumberInfo::PrecisionAndScale(p, _) if *p > 24 => {
                plain(DataType::Double)
            }
            ExactNumberInfo::None => plain(DataType::Float),
            _ => plain(DataType::Float),
        },
        S::Double(_) | S::DoublePrecision | S::Float8 | S::Float64 => plain(DataType::Double),
        S::Decimal(info) | S::Numeric(info) | S::Dec(info) => {
            let (precision, scale) = match info {
                ExactNumberInfo::None => DEFAULT_DECIMAL,
                ExactNumberInfo::Precision(p) => (*p as u8, 0),
                ExactNumberInfo::PrecisionAndScale(p, s) => (*p as u8, *s as i8),
            };
            if precision == 0 || precision > 38 || scale < 0 || scale as u8 > precision {
                return Err(QueryError::InvalidStatement(format!(
                    "invalid DECIMAL({precision},{scale}): precision must be 1 to 38 and scale 0 to the precision"
                )));
            }
            plain(DataType::Decimal { precision, scale })
        }
        S::Text
        | S::Varchar(_)
        | S::Nvarchar(_)
        | S::String(_)
        | S::Char(_)
        | S::Character(_)
        | S::CharVarying(_)
        | S::CharacterVarying(_)
        | S::Clob(_)
        | S::TinyText
        | S::MediumText
        | S::LongText => plain(DataType::Text),
        S::Bytea
        | S::Blob(_)
        | S::Binary(_)
        | S::Varbinary(_)
        | S::Bytes(_)
        | S::TinyBlob
        | S::MediumBlob
        | S::LongBlob => plain(DataType::Bytes),
        S::JSON | S::JSONB => plain(DataType::Json),
        S::Timestamp(_, TimezoneInfo::None | TimezoneInfo::WithoutTimeZone) => plain(DataType::Timestamp),
        S::Datetime(_) => plain(DataType::Timestamp),
        S::Date => plain(DataType::Date),
        S::Time(_, _) => plain(DataType::Time),
        S::Uuid => plain(DataType::Uuid),
        S::Custom(name, _) => match name.to_string().to_ascii_uppercase().as_str() {
            "SERIAL" | "BIGSERIAL" => Ok((DataType::BigInt, true)),
            "STRING" => plain(DataType::Text),
            "BYTES" => plain(DataType::Bytes),
            "DOUBLE" => plain(DataType::Double),
            "JSON" => plain(DataType::Json),
            "UUID" => plain(DataType::Uuid),
            other => Err(unknown_type(other)),
        },
        other => Err(unknown_type(&other.to_string())),
    }
}

fn unknown_type(name: &str) -> QueryError {
    QueryError::InvalidStatement(format!(
        "unsupported column type '{name}'; supported: BOOLEAN, SMALLINT, INT, BIGINT, FLOAT, DOUBLE, DECIMAL(p,s), \
         TEXT, BYTES, JSON, TIMESTAMP, DATE, TIME, UUID"
    ))
}

/// Converts a column of query results to the values a column of `data_type` stores:
/// casts (failing on overflow or unparsable text rather than storing NULL), then checks
/// JSON and UUID text.
pub fn column_values(array: &ArrayRef, data_type: &DataType, column: &str) -> QueryResult<Vec<Value>> {
    let target = data_type.arrow_type();
    let cast: ArrayRef = if array.data_type() == &target {
        Arc::clone(array)
    } else {
        let options = CastOptions {
            safe: false,
            format_options: FormatOptions::default(),
        };
        cast_with_options(array, &target, &options).map_err(|e| {
            QueryError::Domain(DomainError::InvalidValue(format!(
                "cannot store a value of type {} in column '{column}' of type {data_type}: {e}",
                array.data_type()
            )))
        })?
    };
    let mut values = array_values(cast.as_ref(), data_type)?;
    match data_type {
        DataType::Json => {
            for v in &values {
                if let Value::Text(text) = v
                    && serde_json::from_str::<serde_json::Value>(text).is_err()
                {
                    return Err(QueryError::Domain(DomainError::InvalidValue(format!(
                        "column '{column}' is JSON and '{}' is not valid JSON",
                        text.chars().take(60).collect::<String>()
                    ))));
                }
            }
        }
        DataType::Uuid => {
            for v in &mut values {
                if let Value::Text(text) = v {
                    let parsed = uuid_text(text).ok_or_else(|| {
                        QueryError::Domain(DomainError::InvalidValue(format!(
                            "column '{column}' is UUID and '{}' is not a UUID",
                            text.chars().take(60).collect::<String>()
                        )))
                    })?;
                    *text = parsed;
                }
            }
        }
        _ => {}
    }
    Ok(values)
}

/// The canonical lowercase form of a UUID text, if it is one.
fn uuid_text(text: &str) -> Option<String> {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let h = hex.to_ascii_lowercase();
    Some(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_text_is_canonical() {
        assert_eq!(
            uuid_text("0190B4A2-0000-7000-8000-000000000000").unwrap(),
            "0190b4a2-0000-7000-8000-000000000000"
        );
        assert!(uuid_text("not-a-uuid").is_none());
    }
}

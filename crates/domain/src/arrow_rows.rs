//! Rows to Arrow arrays and back: the bridge between the row store and the query engine.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float32Array, Float64Array, Int16Array,
    Int32Array, Int64Array, StringArray, Time64NanosecondArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{Field, Schema, SchemaRef};

use crate::error::{DomainError, DomainResult};
use crate::model::{ColumnDefinition, DELETED_COLUMN, SEQ_COLUMN, TableDefinition};
use crate::row_batch::ColumnBuilder;
use crate::types::{DataType, Value};

/// The Arrow field metadata key naming a Calamus type that Arrow alone cannot tell apart:
/// `Json` and `Uuid` columns are Arrow `Utf8` like `Text`.
pub const TYPE_METADATA_KEY: &str = "calamus.type";

/// The Arrow field of a user column.
pub fn column_field(column: &ColumnDefinition) -> Field {
    let field = Field::new(column.name.as_str(), column.data_type.arrow_type(), true);
    match column.data_type {
        DataType::Json | DataType::Uuid => {
            field.with_metadata([(TYPE_METADATA_KEY.to_owned(), column.data_type.wire_name())].into())
        }
        _ => field,
    }
}

/// The Arrow schema a table is read with: its user columns, then `_seq`, then `_deleted`
/// (USER and SHARED tables only).
pub fn table_schema(table: &TableDefinition) -> SchemaRef {
    let mut fields: Vec<Field> = table.schema().columns.iter().map(column_field).collect();
    fields.push(Field::new(SEQ_COLUMN, arrow::datatypes::DataType::Int64, false));
    if table.kind.has_soft_delete() {
        // Declared nullable (it never holds NULL) so the optimiser cannot fold a filter on
        // `_deleted` such as `_deleted OR NOT _deleted` into nothing: a filter that names
        // `_deleted` is what makes soft-deleted rows visible.
        fields.push(Field::new(DELETED_COLUMN, arrow::datatypes::DataType::Boolean, true));
    }
    Arc::new(Schema::new(fields))
}

/// Builds one Arrow array of `data_type` from the values `value_at(i)` for `i in 0..len`
/// (with the same column builders as the scan path, [`crate::row_batch`]).
pub fn build_array<'a, F>(data_type: &DataType, len: usize, value_at: F) -> DomainResult<ArrayRef>
where
    F: Fn(usize) -> &'a Value,
{
    let mut builder = ColumnBuilder::with_capacity(data_type, len, len * 16)?;
    for i in 0..len {
        let value = value_at(i);
        if !value.fits(data_type) {
            return Err(mismatch(value, data_type));
        }
        builder.append_owned(value)?;
    }
    Ok(builder.finish())
}

fn mismatch(value: &Value, data_type: &DataType) -> DomainError {
    DomainError::InvalidValue(format!("value {value} is not of type {data_type}"))
}

/// The values of one Arrow array whose type is `data_type`'s Arrow type.
pub fn array_values(array: &dyn Array, data_type: &DataType) -> DomainResult<Vec<Value>> {
    macro_rules! read {
        ($array_type:ty, $variant:ident, $conv:expr) => {{
            let a = array.as_any().downcast_ref::<$array_type>().ok_or_else(|| {
                DomainError::InvalidValue(format!("expected an array of {data_type}, got {}", array.data_type()))
            })?;
            (0..a.len())
                .map(|i| {
                    if a.is_null(i) {
                        Value::Null
                    } else {
                        Value::$variant($conv(a.value(i)))
                    }
                })
                .collect()
        }};
    }
    Ok(match data_type {
        DataType::Boolean => read!(BooleanArray, Boolean, |v| v),
        DataType::SmallInt => read!(Int16Array, SmallInt, |v| v),
        DataType::Int => read!(Int32Array, Int, |v| v),
        DataType::BigInt => read!(Int64Array, BigInt, |v| v),
        DataType::Float => read!(Float32Array, Float, |v| v),
        DataType::Double => read!(Float64Array, Double, |v| v),
        DataType::Decimal { .. } => read!(Decimal128Array, Decimal, |v| v),
        DataType::Text | DataType::Json | DataType::Uuid => read!(StringArray, Text, |v: &str| v.to_owned()),
        DataType::Bytes => read!(BinaryArray, Bytes, |v: &[u8]| v.to_vec()),
        DataType::Timestamp => read!(TimestampMicrosecondArray, Timestamp, |v| v),
        DataType::Date => read!(Date32Array, Date, |v| v),
        DataType::Time => read!(Time64NanosecondArray, Time, |v: i64| v / 1000),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_round_trips_through_arrow() {
        let cases = [
            (DataType::Boolean, Value::Boolean(true)),
            (DataType::SmallInt, Value::SmallInt(-3)),
            (DataType::Int, Value::Int(7)),
            (DataType::BigInt, Value::BigInt(i64::MIN)),
            (DataType::Float, Value::Float(1.5)),
            (DataType::Double, Value::Double(-2.25)),
            (
                DataType::Decimal {
                    precision: 10,
                    scale: 2,
                },
                Value::Decimal(12345),
            ),
            (DataType::Text, Value::Text("héllo".into())),
            (DataType::Bytes, Value::Bytes(vec![0, 255])),
            (DataType::Json, Value::Text("{}".into())),
            (DataType::Timestamp, Value::Timestamp(1_700_000_000_000_000)),
            (DataType::Date, Value::Date(19_000)),
            (DataType::Time, Value::Time(3_600_000_000)),
            (
                DataType::Uuid,
                Value::Text("0190b4a2-0000-7000-8000-000000000000".into()),
            ),
        ];
        for (data_type, value) in cases {
            let values = [value.clone(), Value::Null];
            let array = build_array(&data_type, 2, |i| &values[i]).unwrap();
            assert_eq!(array.data_type(), &data_type.arrow_type());
            assert_eq!(array_values(array.as_ref(), &data_type).unwrap(), values.to_vec());
        }
    }
}

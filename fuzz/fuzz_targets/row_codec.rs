//! The row codec on any bytes, for a schema with a column of every type (and a dropped
//! column, and two added by a later schema version):
//!
//! - the bytes as a stored row: `RowCodec::decode_header`, `decode` and `read_row`, and the
//!   scan path that reads rows straight into Arrow (`RowBatchBuilder`), agree with each
//!   other; a row that decodes encodes again and decodes to the same values;
//! - the bytes as the `arbitrary` source of a row of the schema: the row encodes, and its
//!   bytes decode, in both paths, to the same values.
//!
//! Checks that nothing panics: a decode gives the row or an error.

#![no_main]

use std::sync::{Arc, OnceLock};

use arbitrary::Unstructured;
use arrow::datatypes::{DataType as ArrowType, Field, Schema, SchemaRef};
use calamus_domain::arrow_rows::{array_values, column_field};
use calamus_domain::model::{ColumnDefinition, StoredValue, TableSchema};
use calamus_domain::row_batch::{BatchColumn, RowBatchBuilder};
use calamus_domain::{ColumnName, DataType, RowCodec, RowVersion, Value};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let row_id = &data[..data.len().min(8)];
    check_stored(row_id, data);
    if let Ok(row) = arbitrary_row(&mut Unstructured::new(data)) {
        check_round_trip(row_id, &row);
    }
});

/// `bytes` read as a stored row.
fn check_stored(row_id: &[u8], bytes: &[u8]) {
    let codec = codec();
    let header = RowCodec::decode_header(bytes);
    assert_eq!(
        header.is_ok(),
        bytes.len() >= 10 && bytes[0] == 1,
        "decode_header of {bytes:?}"
    );
    let decoded = codec.decode(bytes);
    let mut reported = Vec::new();
    let read = codec.read_row(bytes, |position, value| {
        reported.push((position, value.to_value()));
        Ok(())
    });
    assert_eq!(decoded.is_ok(), read.is_ok(), "decode and read_row of {bytes:?}");
    let scanned = scan(row_id, bytes);
    let Ok(row) = decoded else {
        assert!(
            scanned.is_none(),
            "the scan path read a row that does not decode: {bytes:?}"
        );
        return;
    };
    assert_eq!(header.expect("a row that decodes has a header"), (row.seq, row.deleted));
    let header = read.expect("a row that decodes reads");
    assert_eq!((header.seq, header.deleted), (row.seq, row.deleted));
    // Each column decodes as the last value read_row reports for it (a column given
    // twice, as the last), or as the value of a column the row holds none for.
    let mut last = vec![None; row.values.len()];
    for (position, value) in &reported {
        last[*position] = Some(value);
    }
    for (position, (value, decoded)) in last.iter().zip(&row.values).enumerate() {
        let expected = value
            .cloned()
            .unwrap_or_else(|| codec.absent_value(position, header.schema_version));
        assert!(
            same(&expected, decoded),
            "column {position}: {expected:?} decoded as {decoded:?}"
        );
    }
    let twice = reported
        .iter()
        .enumerate()
        .any(|(i, (position, _))| reported[..i].iter().any(|(p, _)| p == position));
    match scanned {
        Some(values) => {
            assert!(!twice, "the scan path read a row holding a column twice: {bytes:?}");
            assert_same_scan(&row, row_id, &values);
        }
        None => assert!(twice, "the scan path refused a row that decodes: {bytes:?}"),
    }
    let again = codec.encode(&row).expect("a decoded row encodes");
    let redecoded = codec.decode(&again).expect("a re-encoded row decodes");
    assert_same_row(&row, &redecoded);
}

/// `row`, encoded and read back.
fn check_round_trip(row_id: &[u8], row: &RowVersion) {
    let codec = codec();
    let bytes = codec.encode(row).expect("a row of the schema's types encodes");
    assert_eq!(
        RowCodec::decode_header(&bytes).expect("a header"),
        (row.seq, row.deleted)
    );
    let decoded = codec.decode(&bytes).expect("an encoded row decodes");
    assert_same_row(row, &decoded);
    let values = scan(row_id, &bytes).expect("an encoded row scans");
    assert_same_scan(row, row_id, &values);
}

/// The row's values as the scan path reads them into Arrow (every user column, then
/// `_seq`, `_deleted` and the row id), or `None` if it refuses the row.
fn scan(row_id: &[u8], bytes: &[u8]) -> Option<Vec<Vec<Value>>> {
    let (schema, columns, arrow_schema) = batch_layout();
    let mut builder = RowBatchBuilder::new(schema, columns.clone(), Arc::clone(arrow_schema)).expect("a builder");
    builder.append(row_id, bytes).ok()?;
    let batch = builder.finish().expect("a batch of one row");
    assert_eq!(batch.num_rows(), 1);
    let types =
        schema
            .columns
            .iter()
            .map(|c| c.data_type)
            .chain([DataType::BigInt, DataType::Boolean, DataType::Bytes]);
    let values = batch
        .columns()
        .iter()
        .zip(types)
        .map(|(array, data_type)| array_values(array.as_ref(), &data_type).expect("values of the column's type"))
        .collect();
    Some(values)
}

/// `actual` is `expected` read back.
fn assert_same_row(expected: &RowVersion, actual: &RowVersion) {
    assert_eq!((expected.seq, expected.deleted), (actual.seq, actual.deleted));
    assert_eq!(expected.values.len(), actual.values.len());
    for (e, a) in expected.values.iter().zip(&actual.values) {
        assert!(same(e, a), "{e:?} read back as {a:?}");
    }
}

/// `columns`, the scan path's batch of one row, hold `row` and its `row_id`.
fn assert_same_scan(row: &RowVersion, row_id: &[u8], columns: &[Vec<Value>]) {
    let expected = row.values.iter().cloned().chain([
        Value::BigInt(row.seq),
        Value::Boolean(row.deleted),
        Value::Bytes(row_id.to_vec()),
    ]);
    assert_eq!(columns.len(), row.values.len() + 3);
    for (e, column) in expected.zip(columns) {
        let [a] = column.as_slice() else {
            panic!("a column of one row holds {column:?}");
        };
        // Arrow holds TIME in nanoseconds: microseconds past its range saturate.
        let out_of_arrow_range = matches!(e, Value::Time(t) if t.checked_mul(1000).is_none());
        assert!(out_of_arrow_range || same(&e, a), "{e:?} scanned as {a:?}");
    }
}

/// Equal values, floats by their bits (a NaN reads back as the same NaN).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => x.to_bits() == y.to_bits(),
        (Value::Double(x), Value::Double(y)) => x.to_bits() == y.to_bits(),
        _ => a == b,
    }
}

/// A row of the schema: each value NULL or of its column's type.
fn arbitrary_row(u: &mut Unstructured<'_>) -> arbitrary::Result<RowVersion> {
    let seq = u.arbitrary()?;
    let deleted = u.arbitrary()?;
    let values = codec()
        .schema()
        .columns
        .iter()
        .map(|c| {
            if u.arbitrary()? {
                return Ok(Value::Null);
            }
            Ok(match c.data_type {
                DataType::Boolean => Value::Boolean(u.arbitrary()?),
                DataType::SmallInt => Value::SmallInt(u.arbitrary()?),
                DataType::Int => Value::Int(u.arbitrary()?),
                DataType::BigInt => Value::BigInt(u.arbitrary()?),
                DataType::Float => Value::Float(u.arbitrary()?),
                DataType::Double => Value::Double(u.arbitrary()?),
                DataType::Decimal { .. } => Value::Decimal(u.arbitrary()?),
                DataType::Text | DataType::Json | DataType::Uuid => Value::Text(u.arbitrary()?),
                DataType::Bytes => Value::Bytes(u.arbitrary()?),
                DataType::Timestamp => Value::Timestamp(u.arbitrary()?),
                DataType::Date => Value::Date(u.arbitrary()?),
                DataType::Time => Value::Time(u.arbitrary()?),
            })
        })
        .collect::<arbitrary::Result<_>>()?;
    Ok(RowVersion { seq, deleted, values })
}

/// The codec of the schema: version 2, a column of every type (ids 1, 2, 4, ...: the
/// column with id 3 was dropped), then two columns added by version 2, an INT that older
/// rows read as 5 and a TEXT they read as NULL.
fn codec() -> &'static RowCodec {
    static CODEC: OnceLock<RowCodec> = OnceLock::new();
    CODEC.get_or_init(|| {
        let types = [
            DataType::Boolean,
            DataType::SmallInt,
            DataType::Int,
            DataType::BigInt,
            DataType::Float,
            DataType::Double,
            DataType::Decimal {
                precision: 38,
                scale: 10,
            },
            DataType::Text,
            DataType::Bytes,
            DataType::Json,
            DataType::Timestamp,
            DataType::Date,
            DataType::Time,
            DataType::Uuid,
        ];
        let column = |id: u32, data_type: DataType, added_in_version: u32, missing_value: Option<StoredValue>| {
            ColumnDefinition {
                id,
                name: ColumnName::new(&format!("c{id}")).expect("a valid column name"),
                data_type,
                nullable: true,
                default: None,
                added_in_version,
                missing_value,
            }
        };
        let mut columns: Vec<_> = [1, 2]
            .into_iter()
            .chain(4..)
            .zip(types)
            .map(|(id, data_type)| column(id, data_type, 1, None))
            .collect();
        columns.push(column(16, DataType::Int, 2, Some(StoredValue::Integer(5))));
        columns.push(column(17, DataType::Text, 2, None));
        RowCodec::new(&TableSchema {
            version: 2,
            columns,
            primary_key: Some(4),
            created_at: 0,
        })
    })
}

/// The schema, projection and Arrow schema of the scan path's batches: every user column,
/// then `_seq`, `_deleted` and the row id.
fn batch_layout() -> &'static (TableSchema, Vec<BatchColumn>, SchemaRef) {
    static LAYOUT: OnceLock<(TableSchema, Vec<BatchColumn>, SchemaRef)> = OnceLock::new();
    LAYOUT.get_or_init(|| {
        let schema = codec().schema().clone();
        let columns = (0..schema.columns.len())
            .map(BatchColumn::User)
            .chain([BatchColumn::Seq, BatchColumn::Deleted, BatchColumn::RowId])
            .collect();
        let fields = schema.columns.iter().map(column_field).chain([
            Field::new("_seq", ArrowType::Int64, false),
            Field::new("_deleted", ArrowType::Boolean, false),
            Field::new("_row_id", ArrowType::Binary, false),
        ]);
        let arrow_schema = Arc::new(Schema::new(fields.collect::<Vec<_>>()));
        (schema, columns, arrow_schema)
    })
}

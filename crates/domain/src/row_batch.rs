//! Encoded rows straight into Arrow arrays: the scan path of queries. Each value is read in
//! place from the stored bytes and appended to its column's builder, so a scan allocates
//! per batch, not per row or per value, and skips the columns the query does not read.

use std::sync::Arc;

use arrow::array::{
    ArrayBuilder, ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder,
    Float64Builder, Int16Builder, Int32Builder, Int64Builder, StringBuilder, Time64NanosecondBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};

use crate::codec::{RowCodec, ValueRef};
use crate::error::{DomainError, DomainResult};
use crate::model::TableSchema;
use crate::types::{DataType, Value};

/// What one column of a batch holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchColumn {
    /// The user column at this position of the table's current schema.
    User(usize),
    /// `_seq`.
    Seq,
    /// `_deleted`.
    Deleted,
    /// The row id (the key without its partition prefix).
    RowId,
}

/// Builds Arrow batches of a projection from encoded rows of one table.
#[derive(Debug)]
pub struct RowBatchBuilder {
    codec: RowCodec,
    schema: SchemaRef,
    columns: Vec<BatchColumn>,
    /// The type of each output column.
    types: Vec<DataType>,
    builders: Vec<ColumnBuilder>,
    /// For each user column of the schema, the output column it fills, if projected.
    output_of: Vec<Option<usize>>,
    /// Which output columns the current row has filled.
    filled: Vec<bool>,
    rows: usize,
}

impl RowBatchBuilder {
    /// A builder of batches of `schema`, whose columns are `columns` of a table with
    /// `table_schema`.
    pub fn new(table_schema: &TableSchema, columns: Vec<BatchColumn>, schema: SchemaRef) -> DomainResult<Self> {
        if columns.len() != schema.fields().len() {
            return Err(DomainError::InvalidValue(format!(
                "a batch of {} columns cannot have a schema of {} fields",
                columns.len(),
                schema.fields().len()
            )));
        }
        let mut output_of = vec![None; table_schema.columns.len()];
        let mut types = Vec::with_capacity(columns.len());
        for (i, column) in columns.iter().enumerate() {
            let data_type = match *column {
                BatchColumn::User(position) => {
                    let slot = output_of.get_mut(position).ok_or_else(|| {
                        DomainError::InvalidValue(format!("the table has no column at position {position}"))
                    })?;
                    *slot = Some(i);
                    &table_schema.columns[position].data_type
                }
                BatchColumn::Seq => &DataType::BigInt,
                BatchColumn::Deleted => &DataType::Boolean,
                BatchColumn::RowId => &DataType::Bytes,
            };
            types.push(*data_type);
        }
        let builders = types
            .iter()
            .map(|t| ColumnBuilder::with_capacity(t, 0, 0))
            .collect::<DomainResult<_>>()?;
        Ok(Self {
            codec: RowCodec::new(table_schema),
            schema,
            filled: vec![false; columns.len()],
            columns,
            types,
            builders,
            output_of,
            rows: 0,
        })
    }

    /// Rows appended since the last batch.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no row was appended since the last batch.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends one stored row. After an error the builder holds a partial row: the scan
    /// it serves has failed, and the builder is dropped.
    pub fn append(&mut self, row_id: &[u8], encoded: &[u8]) -> DomainResult<()> {
        let Self {
            codec,
            columns,
            builders,
            output_of,
            filled,
            ..
        } = self;
        filled.fill(false);
        let wanted = |position: usize| output_of[position].is_some();
        let header = codec.read_row_of(encoded, wanted, |position, value| {
            if let Some(i) = output_of[position] {
                if filled[i] {
                    return Err(DomainError::Corrupt("a stored row holds a column twice".into()));
                }
                builders[i].append(value)?;
                filled[i] = true;
            }
            Ok(())
        })?;
        for (i, column) in columns.iter().enumerate() {
            match *column {
                BatchColumn::User(_) if filled[i] => {}
                BatchColumn::User(position) => {
                    let absent = codec.absent_value(position, header.schema_version);
                    builders[i].append_owned(&absent)?;
                }
                BatchColumn::Seq => builders[i].append(ValueRef::BigInt(header.seq))?,
                BatchColumn::Deleted => builders[i].append(ValueRef::Boolean(header.deleted))?,
                BatchColumn::RowId => builders[i].append(ValueRef::Bytes(row_id))?,
            }
        }
        self.rows += 1;
        Ok(())
    }

    /// The batch of the rows appended since the last one. The next batch's builders start
    /// with room for as many rows and bytes as this one took: a long scan grows them once.
    pub fn finish(&mut self) -> DomainResult<RecordBatch> {
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.builders.len());
        for (builder, data_type) in self.builders.iter_mut().zip(&self.types) {
            let next = ColumnBuilder::with_capacity(data_type, self.rows, builder.value_bytes())?;
            arrays.push(std::mem::replace(builder, next).finish());
        }
        let options = RecordBatchOptions::new().with_row_count(Some(self.rows));
        self.rows = 0;
        RecordBatch::try_new_with_options(Arc::clone(&self.schema), arrays, &options)
            .map_err(|e| DomainError::InvalidValue(format!("building a batch of rows: {e}")))
    }
}

/// One column's Arrow builder, for every type of [`DataType`].
#[derive(Debug)]
pub(crate) enum ColumnBuilder {
    Boolean(BooleanBuilder),
    SmallInt(Int16Builder),
    Int(Int32Builder),
    BigInt(Int64Builder),
    Float(Float32Builder),
    Double(Float64Builder),
    Decimal(Decimal128Builder),
    Text(StringBuilder),
    Bytes(BinaryBuilder),
    Timestamp(TimestampMicrosecondBuilder),
    Date(Date32Builder),
    /// Arrow holds TIME in nanoseconds; stored as microseconds.
    Time(Time64NanosecondBuilder),
}

impl ColumnBuilder {
    /// A builder with room for `rows` values (and `bytes` of text or bytes).
    pub(crate) fn with_capacity(data_type: &DataType, rows: usize, bytes: usize) -> DomainResult<Self> {
        Ok(match data_type {
            DataType::Boolean => Self::Boolean(BooleanBuilder::with_capacity(rows)),
            DataType::SmallInt => Self::SmallInt(Int16Builder::with_capacity(rows)),
            DataType::Int => Self::Int(Int32Builder::with_capacity(rows)),
            DataType::BigInt => Self::BigInt(Int64Builder::with_capacity(rows)),
            DataType::Float => Self::Float(Float32Builder::with_capacity(rows)),
            DataType::Double => Self::Double(Float64Builder::with_capacity(rows)),
            DataType::Decimal { precision, scale } => Self::Decimal(
                Decimal128Builder::with_capacity(rows)
                    .with_precision_and_scale(*precision, *scale)
                    .map_err(|e| DomainError::InvalidValue(e.to_string()))?,
            ),
            DataType::Text | DataType::Json | DataType::Uuid => Self::Text(StringBuilder::with_capacity(rows, bytes)),
            DataType::Bytes => Self::Bytes(BinaryBuilder::with_capacity(rows, bytes)),
            DataType::Timestamp => Self::Timestamp(TimestampMicrosecondBuilder::with_capacity(rows)),
            DataType::Date => Self::Date(Date32Builder::with_capacity(rows)),
            DataType::Time => Self::Time(Time64NanosecondBuilder::with_capacity(rows)),
        })
    }

    /// Bytes of text or bytes values held (0 for other types).
    fn value_bytes(&self) -> usize {
        match self {
            Self::Text(b) => b.values_slice().len(),
            Self::Bytes(b) => b.values_slice().len(),
            _ => 0,
        }
    }

    /// Appends a value of the builder's type (checked by the codec against the schema).
    fn append(&mut self, value: ValueRef<'_>) -> DomainResult<()> {
        match (self, value) {
            (Self::Boolean(b), ValueRef::Boolean(v)) => b.append_value(v),
            (Self::SmallInt(b), ValueRef::SmallInt(v)) => b.append_value(v),
            (Self::Int(b), ValueRef::Int(v)) => b.append_value(v),
            (Self::BigInt(b), ValueRef::BigInt(v)) => b.append_value(v),
            (Self::Float(b), ValueRef::Float(v)) => b.append_value(v),
            (Self::Double(b), ValueRef::Double(v)) => b.append_value(v),
            (Self::Decimal(b), ValueRef::Decimal(v)) => b.append_value(v),
            (Self::Text(b), ValueRef::Text(v)) => b.append_value(v),
            (Self::Bytes(b), ValueRef::Bytes(v)) => b.append_value(v),
            (Self::Timestamp(b), ValueRef::Timestamp(v)) => b.append_value(v),
            (Self::Date(b), ValueRef::Date(v)) => b.append_value(v),
            (Self::Time(b), ValueRef::Time(v)) => b.append_value(v.saturating_mul(1000)),
            (_, value) => {
                return Err(DomainError::Corrupt(format!(
                    "a stored value ({:?}) does not match its column's type",
                    value.to_value()
                )));
            }
        }
        Ok(())
    }

    /// Appends an owned value (a column absent from a stored row): NULL or the value the
    /// column was added with.
    pub(crate) fn append_owned(&mut self, value: &Value) -> DomainResult<()> {
        let borrowed = match value {
            Value::Null => {
                self.append_null();
                return Ok(());
            }
            Value::Boolean(v) => ValueRef::Boolean(*v),
            Value::SmallInt(v) => ValueRef::SmallInt(*v),
            Value::Int(v) => ValueRef::Int(*v),
            Value::BigInt(v) => ValueRef::BigInt(*v),
            Value::Float(v) => ValueRef::Float(*v),
            Value::Double(v) => ValueRef::Double(*v),
            Value::Decimal(v) => ValueRef::Decimal(*v),
            Value::Text(v) => ValueRef::Text(v),
            Value::Bytes(v) => ValueRef::Bytes(v),
            Value::Timestamp(v) => ValueRef::Timestamp(*v),
            Value::Date(v) => ValueRef::Date(*v),
            Value::Time(v) => ValueRef::Time(*v),
        };
        self.append(borrowed)
    }

    fn append_null(&mut self) {
        match self {
            Self::Boolean(b) => b.append_null(),
            Self::SmallInt(b) => b.append_null(),
            Self::Int(b) => b.append_null(),
            Self::BigInt(b) => b.append_null(),
            Self::Float(b) => b.append_null(),
            Self::Double(b) => b.append_null(),
            Self::Decimal(b) => b.append_null(),
            Self::Text(b) => b.append_null(),
            Self::Bytes(b) => b.append_null(),
            Self::Timestamp(b) => b.append_null(),
            Self::Date(b) => b.append_null(),
            Self::Time(b) => b.append_null(),
        }
    }

    pub(crate) fn finish(&mut self) -> ArrayRef {
        match self {
            Self::Boolean(b) => ArrayBuilder::finish(b),
            Self::SmallInt(b) => ArrayBuilder::finish(b),
            Self::Int(b) => ArrayBuilder::finish(b),
            Self::BigInt(b) => ArrayBuilder::finish(b),
            Self::Float(b) => ArrayBuilder::finish(b),
            Self::Double(b) => ArrayBuilder::finish(b),
            Self::Decimal(b) => ArrayBuilder::finish(b),
            Self::Text(b) => ArrayBuilder::finish(b),
            Self::Bytes(b) => ArrayBuilder::finish(b),
            Self::Timestamp(b) => ArrayBuilder::finish(b),
            Self::Date(b) => ArrayBuilder::finish(b),
            Self::Time(b) => ArrayBuilder::finish(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arrow_rows::{array_values, column_field};
    use crate::codec::RowVersion;
    use crate::ident::ColumnName;
    use crate::model::{ColumnDefinition, StoredValue};
    use arrow::datatypes::{Field, Schema};

    fn column(id: u32, name: &str, data_type: DataType) -> ColumnDefinition {
        ColumnDefinition {
            id,
            name: ColumnName::new(name).unwrap(),
            data_type,
            nullable: true,
            default: None,
            added_in_version: 1,
            missing_value: None,
        }
    }

    fn schema_of(columns: Vec<ColumnDefinition>, version: u32) -> TableSchema {
        TableSchema {
            version,
            columns,
            primary_key: None,
            created_at: 0,
        }
    }

    /// Every type, NULLs, `_seq`, `_deleted` and the row id come out as the row codec's
    /// decode and `build_array` give them.
    #[test]
    fn batches_equal_decoded_rows() {
        let types = [
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
            DataType::Json,
            DataType::Timestamp,
            DataType::Date,
            DataType::Time,
            DataType::Uuid,
        ];
        let columns: Vec<ColumnDefinition> = types
            .iter()
            .enumerate()
            .map(|(i, t)| column(i as u32 + 1, &format!("c{i}"), *t))
            .collect();
        let table = schema_of(columns.clone(), 1);
        let codec = RowCodec::new(&table);
        let full = |i: i64| -> Vec<Value> {
            vec![
                Value::Boolean(i % 2 == 0),
                Value::SmallInt(i as i16),
                Value::Int(i as i32 * 7),
                Value::BigInt(i * 1_000_000_007),
                Value::Float(i as f32 / 2.0),
                Value::Double(i as f64 / 3.0),
                Value::Decimal(i as i128 * 12_345),
                Value::Text(format!("text {i} é")),
                Value::Bytes(vec![i as u8, 0, 255]),
                Value::Text(format!("{{\"n\": {i}}}")),
                Value::Timestamp(1_700_000_000_000_000 + i),
                Value::Date(19_000 + i as i32),
                Value::Time(3_600_000_000 + i),
                Value::Text("0190b4a2-0000-7000-8000-000000000000".into()),
            ]
        };
        let rows: Vec<RowVersion> = (0..5)
            .map(|i| RowVersion {
                seq: 100 + i,
                deleted: i == 3,
                values: if i == 2 {
                    vec![Value::Null; types.len()]
                } else {
                    full(i)
                },
            })
            .collect();

        let mut batch_columns: Vec<BatchColumn> = (0..types.len()).rev().map(BatchColumn::User).collect();
        batch_columns.extend([BatchColumn::Seq, BatchColumn::Deleted, BatchColumn::RowId]);
        let mut fields: Vec<Field> = (0..types.len()).rev().map(|i| column_field(&columns[i])).collect();
        fields.push(Field::new("_seq", arrow::datatypes::DataType::Int64, false));
        fields.push(Field::new("_deleted", arrow::datatypes::DataType::Boolean, true));
        fields.push(Field::new("row_id", arrow::datatypes::DataType::Binary, false));
        let mut builder = RowBatchBuilder::new(&table, batch_columns, Arc::new(Schema::new(fields))).unwrap();
        for (i, row) in rows.iter().enumerate() {
            builder.append(&[i as u8], &codec.encode(row).unwrap()).unwrap();
        }
        assert_eq!(builder.len(), rows.len());
        let batch = builder.finish().unwrap();
        assert!(builder.is_empty());

        for (out, position) in (0..types.len()).rev().enumerate() {
            let got = array_values(batch.column(out).as_ref(), &types[position]).unwrap();
            let want: Vec<Value> = rows.iter().map(|r| r.values[position].clone()).collect();
            assert_eq!(got, want, "column {position} ({})", types[position]);
        }
        let n = types.len();
        let seqs = array_values(batch.column(n).as_ref(), &DataType::BigInt).unwrap();
        assert_eq!(seqs, rows.iter().map(|r| Value::BigInt(r.seq)).collect::<Vec<_>>());
        let deleted = array_values(batch.column(n + 1).as_ref(), &DataType::Boolean).unwrap();
        assert_eq!(
            deleted,
            rows.iter().map(|r| Value::Boolean(r.deleted)).collect::<Vec<_>>()
        );
        let ids = array_values(batch.column(n + 2).as_ref(), &DataType::Bytes).unwrap();
        assert_eq!(ids, (0..5u8).map(|i| Value::Bytes(vec![i])).collect::<Vec<_>>());
    }

    /// A row written before a column was added reads as the column's added value; a
    /// column left out of the projection is not read; a second batch starts empty.
    #[test]
    fn older_rows_and_projections() {
        let old = schema_of(
            vec![column(1, "id", DataType::BigInt), column(2, "gone", DataType::Text)],
            1,
        );
        let row = RowCodec::new(&old)
            .encode(&RowVersion {
                seq: 7,
                deleted: false,
                values: vec![Value::BigInt(1), Value::Text("dropped".into())],
            })
            .unwrap();
        let mut added = column(3, "flag", DataType::Boolean);
        added.added_in_version = 2;
        added.missing_value = Some(StoredValue::Boolean(true));
        let mut later = column(4, "note", DataType::Text);
        later.added_in_version = 3;
        let current = schema_of(vec![column(1, "id", DataType::BigInt), added.clone(), later.clone()], 3);
        let schema = Arc::new(Schema::new(vec![column_field(&added), column_field(&later)]));
        let mut builder =
            RowBatchBuilder::new(&current, vec![BatchColumn::User(1), BatchColumn::User(2)], schema).unwrap();
        builder.append(b"k", &row).unwrap();
        let batch = builder.finish().unwrap();
        assert_eq!(
            array_values(batch.column(0).as_ref(), &DataType::Boolean).unwrap(),
            [Value::Boolean(true)]
        );
        assert_eq!(
            array_values(batch.column(1).as_ref(), &DataType::Text).unwrap(),
            [Value::Null]
        );
        assert_eq!(builder.finish().unwrap().num_rows(), 0);
    }

    #[test]
    fn corrupt_rows_and_bad_projections_are_errors() {
        let table = schema_of(vec![column(1, "id", DataType::BigInt)], 1);
        let schema = Arc::new(Schema::new(vec![Field::new(
            "id",
            arrow::datatypes::DataType::Int64,
            true,
        )]));
        let mut builder = RowBatchBuilder::new(&table, vec![BatchColumn::User(0)], Arc::clone(&schema)).unwrap();
        assert!(matches!(builder.append(b"k", &[1, 2, 3]), Err(DomainError::Corrupt(_))));
        assert!(RowBatchBuilder::new(&table, vec![BatchColumn::User(5)], Arc::clone(&schema)).is_err());
        assert!(RowBatchBuilder::new(&table, vec![BatchColumn::User(0), BatchColumn::Seq], schema).is_err());
    }
}

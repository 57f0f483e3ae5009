//! The row codec: how one row version is laid out as bytes in the key-value store.
//!
//! ```text
//! u8 format (1) | i64 _seq (big-endian) | u8 flags (bit 0: deleted) | varint schema_version
//! | varint n | n x (varint column_id | u8 type tag | payload)
//! ```
//! Values are stored by column id, not position, and NULLs are left out. A row therefore
//! decodes under any later schema version: a renamed column keeps its id, a dropped
//! column's id is skipped, and a column added after the row was written reads as its
//! `missing_value`. No JSON, no allocation beyond the output: this runs on every insert
//! and every scan.

use crate::error::{DomainError, DomainResult};
use crate::model::TableSchema;
use crate::types::{DataType, Value};

const FORMAT: u8 = 1;
const FLAG_DELETED: u8 = 1;

/// One version of a row as stored: its `_seq`, its delete flag and its values in the
/// order of the schema it was decoded for.
#[derive(Debug, Clone, PartialEq)]
pub struct RowVersion {
    /// The version's `_seq` (a Snowflake id).
    pub seq: i64,
    /// Whether this version is a soft delete.
    pub deleted: bool,
    /// Values, one per column of the schema.
    pub values: Vec<Value>,
}

/// A value read in place from an encoded row: text and bytes borrow the row's bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueRef<'a> {
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
    Text(&'a str),
    /// BYTES.
    Bytes(&'a [u8]),
    /// TIMESTAMP, microseconds since the epoch.
    Timestamp(i64),
    /// DATE, days since the epoch.
    Date(i32),
    /// TIME, microseconds since midnight.
    Time(i64),
}

impl ValueRef<'_> {
    /// The owned value.
    pub fn to_value(self) -> Value {
        match self {
            ValueRef::Boolean(v) => Value::Boolean(v),
            ValueRef::SmallInt(v) => Value::SmallInt(v),
            ValueRef::Int(v) => Value::Int(v),
            ValueRef::BigInt(v) => Value::BigInt(v),
            ValueRef::Float(v) => Value::Float(v),
            ValueRef::Double(v) => Value::Double(v),
            ValueRef::Decimal(v) => Value::Decimal(v),
            ValueRef::Text(v) => Value::Text(v.to_owned()),
            ValueRef::Bytes(v) => Value::Bytes(v.to_vec()),
            ValueRef::Timestamp(v) => Value::Timestamp(v),
            ValueRef::Date(v) => Value::Date(v),
            ValueRef::Time(v) => Value::Time(v),
        }
    }

    /// Whether the value has the physical form of `data_type`.
    pub fn fits(&self, data_type: &DataType) -> bool {
        matches!(
            (self, data_type),
            (ValueRef::Boolean(_), DataType::Boolean)
                | (ValueRef::SmallInt(_), DataType::SmallInt)
                | (ValueRef::Int(_), DataType::Int)
                | (ValueRef::BigInt(_), DataType::BigInt)
                | (ValueRef::Float(_), DataType::Float)
                | (ValueRef::Double(_), DataType::Double)
                | (ValueRef::Decimal(_), DataType::Decimal { .. })
                | (ValueRef::Text(_), DataType::Text | DataType::Json | DataType::Uuid)
                | (ValueRef::Bytes(_), DataType::Bytes)
                | (ValueRef::Timestamp(_), DataType::Timestamp)
                | (ValueRef::Date(_), DataType::Date)
                | (ValueRef::Time(_), DataType::Time)
        )
    }
}

/// The fixed part of an encoded row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowHeader {
    /// The version's `_seq`.
    pub seq: i64,
    /// Whether the version is a soft delete.
    pub deleted: bool,
    /// The schema version the row was written with.
    pub schema_version: u32,
}

/// Encodes and decodes rows for one schema (the current schema of a table).
#[derive(Debug, Clone)]
pub struct RowCodec {
    schema: TableSchema,
    /// Column id -> position in the schema.
    positions: Vec<Option<usize>>,
}

impl RowCodec {
    /// A codec for rows of `schema`.
    pub fn new(schema: &TableSchema) -> Self {
        let max_id = schema.columns.iter().map(|c| c.id as usize).max().unwrap_or(0);
        let mut positions = vec![None; max_id + 1];
        for (i, c) in schema.columns.iter().enumerate() {
            positions[c.id as usize] = Some(i);
        }
        Self {
            schema: schema.clone(),
            positions,
        }
    }

    /// The schema rows are decoded for.
    pub fn schema(&self) -> &TableSchema {
        &self.schema
    }

    /// Encodes `row` (values in schema order) into `out`, which is cleared first.
    pub fn encode_into(&self, row: &RowVersion, out: &mut Vec<u8>) -> DomainResult<()> {
        if row.values.len() != self.schema.columns.len() {
            return Err(DomainError::InvalidValue(format!(
                "a row has {} values but the table has {} columns",
                row.values.len(),
                self.schema.columns.len()
            )));
        }
        out.clear();
        out.push(FORMAT);
        out.extend_from_slice(&row.seq.to_be_bytes());
        out.push(if row.deleted { FLAG_DELETED } else { 0 });
        put_varint(out, self.schema.version as u64);
        let present = row.values.iter().filter(|v| !v.is_null()).count();
        put_varint(out, present as u64);
        for (column, value) in self.schema.columns.iter().zip(&row.values) {
            if value.is_null() {
                continue;
            }
            if !value.fits(&column.data_type) {
                return Err(DomainError::InvalidValue(format!(
                    "value {value} does not fit column '{}' of type {}",
                    column.name, column.data_type
                )));
            }
            put_varint(out, column.id as u64);
            encode_value(value, out);
        }
        Ok(())
    }

    /// Encodes `row` into a new buffer.
    pub fn encode(&self, row: &RowVersion) -> DomainResult<Vec<u8>> {
        let mut out = Vec::with_capacity(32 + row.values.len() * 8);
        self.encode_into(row, &mut out)?;
        Ok(out)
    }

    /// Reads only the `_seq` and delete flag of an encoded row.
    pub fn decode_header(bytes: &[u8]) -> DomainResult<(i64, bool)> {
        if bytes.len() < 10 || bytes[0] != FORMAT {
            return Err(DomainError::Corrupt("unknown row format".into()));
        }
        let seq = i64::from_be_bytes(bytes[1..9].try_into().expect("8 bytes"));
        Ok((seq, bytes[9] & FLAG_DELETED != 0))
    }

    /// Decodes a row into the codec's schema.
    pub fn decode(&self, bytes: &[u8]) -> DomainResult<RowVersion> {
        let mut values: Vec<Option<Value>> = vec![None; self.schema.columns.len()];
        let header = self.read_row(bytes, |pos, value| {
            values[pos] = Some(value.to_value());
            Ok(())
        })?;
        let values = values
            .into_iter()
            .enumerate()
            .map(|(pos, value)| value.unwrap_or_else(|| self.absent_value(pos, header.schema_version)))
            .collect();
        Ok(RowVersion {
            seq: header.seq,
            deleted: header.deleted,
            values,
        })
    }

    /// Reads a row in place: calls `column(position, value)` for each value the row holds
    /// for a column of the codec's schema (a column appears at most once; NULLs and absent
    /// columns are not reported, see [`Self::absent_value`]). Nothing is allocated.
    pub fn read_row<'a>(
        &self,
        bytes: &'a [u8],
        column: impl FnMut(usize, ValueRef<'a>) -> DomainResult<()>,
    ) -> DomainResult<RowHeader> {
        self.read_row_of(bytes, |_| true, column)
    }

    /// [`Self::read_row`] for the columns whose position `wanted` accepts: the others'
    /// values are stepped over without being read.
    #[inline]
    pub fn read_row_of<'a>(
        &self,
        bytes: &'a [u8],
        wanted: impl Fn(usize) -> bool,
        mut column: impl FnMut(usize, ValueRef<'a>) -> DomainResult<()>,
    ) -> DomainResult<RowHeader> {
        let (seq, deleted) = Self::decode_header(bytes)?;
        let mut reader = Reader { bytes, pos: 10 };
        let schema_version = reader.varint()? as u32;
        let count = reader.varint()? as usize;
        for _ in 0..count {
            let id = reader.varint()? as usize;
            let Some(&Some(pos)) = self.positions.get(id) else {
                reader.skip_value()?;
                continue;
            };
            if !wanted(pos) {
                reader.skip_value()?;
                continue;
            }
            let value = reader.value()?;
            if !value.fits(&self.schema.columns[pos].data_type) {
                return Err(DomainError::Corrupt(format!(
                    "stored value of column '{}' has the wrong type",
                    self.schema.columns[pos].name
                )));
            }
            column(pos, value)?;
        }
        Ok(RowHeader {
            seq,
            deleted,
            schema_version,
        })
    }

    /// The value of the column at `position` in a row written with `schema_version` that
    /// holds none for it: the value the column was added with if the row predates the
    /// column, NULL otherwise.
    pub fn absent_value(&self, position: usize, schema_version: u32) -> Value {
        let column = &self.schema.columns[position];
        if column.added_in_version > schema_version {
            column
                .missing_value
                .as_ref()
                .map_or(Value::Null, |m| m.to_value(&column.data_type))
        } else {
            Value::Null
        }
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_len_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn encode_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => unreachable!("NULLs are not encoded"),
        Value::Boolean(b) => out.extend_from_slice(&[1, u8::from(*b)]),
        Value::SmallInt(v) => {
            out.push(2);
            out.extend_from_slice(&v.to_le_bytes());
        }
        Value::Int(v) => {
            out.push(3);
            out.extend_from_slice(&v.to_le_bytes());
        }
        Value::BigInt(v) => {
            out.push(4);
            out.extend_from_slice(&v.to_le_bytes());
        }
        Value::Float(v) => {
            out.push(5);
            out.extend_from_slice(&v.to_le_bytes());
        }
        Value::Double(v) => {
            out.push(6);
            out.extend_from_slice(&v.to_le_bytes());
        }
        Value::Decimal(v) => {
            out.push(7);
            out.extend_from_slice(&v.to_le_bytes());
        }
        Value::Text(s) => {
            out.push(8);
            put_len_bytes(out, s.as_bytes());
        }
        Value::Bytes(b) => {
            out.push(9);
            put_len_bytes(out, b);
        }
        Value::Timestamp(v) => {
            out.push(10);
            out.extend_from_slice(&v.to_le_bytes());
        }
        Value::Date(v) => {
            out.push(11);
            out.extend_from_slice(&v.to_le_bytes());
        }
        Value::Time(v) => {
            out.push(12);
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
}

/// Why stored bytes could not be read: a [`DomainError::Corrupt`] once it leaves the
/// codec. Small and `Copy`, so that reading a value moves little more than the value.
#[derive(Debug, Clone, Copy)]
enum Damage {
    Truncated,
    LongVarint,
    NotUtf8,
    UnknownTag(u8),
}

impl From<Damage> for DomainError {
    fn from(damage: Damage) -> Self {
        DomainError::Corrupt(match damage {
            Damage::Truncated => "a stored row is truncated".into(),
            Damage::LongVarint => "a varint is too long".into(),
            Damage::NotUtf8 => "stored text is not UTF-8".into(),
            Damage::UnknownTag(tag) => format!("unknown value tag {tag}"),
        })
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8], Damage> {
        let end = self.pos.checked_add(n).filter(|end| *end <= self.bytes.len());
        let end = end.ok_or(Damage::Truncated)?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    #[inline]
    fn array<const N: usize>(&mut self) -> Result<[u8; N], Damage> {
        Ok(self.take(N)?.try_into().expect("length checked"))
    }

    #[inline]
    fn varint(&mut self) -> Result<u64, Damage> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.take(1)?[0];
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(Damage::LongVarint)
    }

    #[inline]
    fn len_bytes(&mut self) -> Result<&'a [u8], Damage> {
        let n = self.varint()? as usize;
        self.take(n)
    }

    #[inline]
    fn value(&mut self) -> Result<ValueRef<'a>, Damage> {
        let tag = self.take(1)?[0];
        Ok(match tag {
            1 => ValueRef::Boolean(self.take(1)?[0] != 0),
            2 => ValueRef::SmallInt(i16::from_le_bytes(self.array()?)),
            3 => ValueRef::Int(i32::from_le_bytes(self.array()?)),
            4 => ValueRef::BigInt(i64::from_le_bytes(self.array()?)),
            5 => ValueRef::Float(f32::from_le_bytes(self.array()?)),
            6 => ValueRef::Double(f64::from_le_bytes(self.array()?)),
            7 => ValueRef::Decimal(i128::from_le_bytes(self.array()?)),
            8 => ValueRef::Text(std::str::from_utf8(self.len_bytes()?).map_err(|_| Damage::NotUtf8)?),
            9 => ValueRef::Bytes(self.len_bytes()?),
            10 => ValueRef::Timestamp(i64::from_le_bytes(self.array()?)),
            11 => ValueRef::Date(i32::from_le_bytes(self.array()?)),
            12 => ValueRef::Time(i64::from_le_bytes(self.array()?)),
            other => return Err(Damage::UnknownTag(other)),
        })
    }

    /// Steps over a value without reading it (a column the reader was not asked for).
    #[inline]
    fn skip_value(&mut self) -> Result<(), Damage> {
        let tag = self.take(1)?[0];
        let size = match tag {
            1 => 1,
            2 => 2,
            3 | 5 | 11 => 4,
            4 | 6 | 10 | 12 => 8,
            7 => 16,
            8 | 9 => self.varint()? as usize,
            other => return Err(Damage::UnknownTag(other)),
        };
        self.take(size).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ident::ColumnName;
    use crate::model::{ColumnDefinition, StoredValue, TableSchema};
    use crate::types::DataType;
    use proptest::prelude::*;

    fn any_type() -> impl Strategy<Value = DataType> {
        prop_oneof![
            Just(DataType::Boolean),
            Just(DataType::SmallInt),
            Just(DataType::Int),
            Just(DataType::BigInt),
            Just(DataType::Float),
            Just(DataType::Double),
            (1u8..=38, 0i8..=10).prop_map(|(p, s)| DataType::Decimal {
                precision: p,
                scale: s.min(p as i8)
            }),
            Just(DataType::Text),
            Just(DataType::Bytes),
            Just(DataType::Json),
            Just(DataType::Timestamp),
            Just(DataType::Date),
            Just(DataType::Time),
            Just(DataType::Uuid),
        ]
    }

    fn value_of(data_type: DataType) -> BoxedStrategy<Value> {
        let value = match data_type {
            DataType::Boolean => any::<bool>().prop_map(Value::Boolean).boxed(),
            DataType::SmallInt => any::<i16>().prop_map(Value::SmallInt).boxed(),
            DataType::Int => any::<i32>().prop_map(Value::Int).boxed(),
            DataType::BigInt => any::<i64>().prop_map(Value::BigInt).boxed(),
            DataType::Float => any::<f32>()
                .prop_filter("NaN never equals itself", |f| !f.is_nan())
                .prop_map(Value::Float)
                .boxed(),
            DataType::Double => any::<f64>()
                .prop_filter("NaN never equals itself", |f| !f.is_nan())
                .prop_map(Value::Double)
                .boxed(),
            DataType::Decimal { .. } => any::<i128>().prop_map(Value::Decimal).boxed(),
            DataType::Text | DataType::Json | DataType::Uuid => ".{0,40}".prop_map(Value::Text).boxed(),
            DataType::Bytes => proptest::collection::vec(any::<u8>(), 0..40)
                .prop_map(Value::Bytes)
                .boxed(),
            DataType::Timestamp => any::<i64>().prop_map(Value::Timestamp).boxed(),
            DataType::Date => any::<i32>().prop_map(Value::Date).boxed(),
            DataType::Time => any::<i64>().prop_map(Value::Time).boxed(),
        };
        prop_oneof![1 => Just(Value::Null), 4 => value].boxed()
    }

    fn schema_of(types: &[DataType]) -> TableSchema {
        let columns = types
            .iter()
            .enumerate()
            .map(|(i, t)| ColumnDefinition {
                id: i as u32 + 1,
                name: ColumnName::new(&format!("c{i}")).unwrap(),
                data_type: *t,
                nullable: true,
                default: None,
                added_in_version: 1,
                missing_value: None,
            })
            .collect();
        TableSchema {
            version: 1,
            columns,
            primary_key: None,
            created_at: 0,
        }
    }

    fn schema_and_row() -> impl Strategy<Value = (TableSchema, RowVersion)> {
        proptest::collection::vec(any_type(), 1..12).prop_flat_map(|types| {
            let values: Vec<_> = types.iter().map(|t| value_of(*t)).collect();
            (Just(schema_of(&types)), values, any::<i64>(), any::<bool>())
                .prop_map(|(schema, values, seq, deleted)| (schema, RowVersion { seq, deleted, values }))
        })
    }

    proptest! {
        #[test]
        fn any_row_of_any_schema_round_trips((schema, row) in schema_and_row()) {
            let codec = RowCodec::new(&schema);
            let bytes = codec.encode(&row).unwrap();
            prop_assert_eq!(codec.decode(&bytes).unwrap(), row.clone());
            prop_assert_eq!(RowCodec::decode_header(&bytes).unwrap(), (row.seq, row.deleted));
        }

        #[test]
        fn columns_not_wanted_are_stepped_over(
            (schema, row) in schema_and_row(),
            mask in proptest::collection::vec(any::<bool>(), 16),
        ) {
            let codec = RowCodec::new(&schema);
            let bytes = codec.encode(&row).unwrap();
            let wanted = |position: usize| mask[position % mask.len()];
            let mut all = Vec::new();
            codec.read_row(&bytes, |position, value| {
                all.push((position, value.to_value()));
                Ok(())
            }).unwrap();
            let mut some = Vec::new();
            codec.read_row_of(&bytes, wanted, |position, value| {
                some.push((position, value.to_value()));
                Ok(())
            }).unwrap();
            all.retain(|(position, _)| wanted(*position));
            prop_assert_eq!(some, all);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let codec = RowCodec::new(&schema_of(&[DataType::BigInt, DataType::Text]));
            let _ = codec.decode(&bytes);
            let _ = codec.read_row_of(&bytes, |position| position == 0, |_, _| Ok(()));
        }
    }

    #[test]
    fn rows_read_under_later_schema_versions() {
        let v1 = schema_of(&[DataType::BigInt, DataType::Text]);
        let row = RowVersion {
            seq: 1,
            deleted: false,
            values: vec![Value::BigInt(7), Value::Text("a".into())],
        };
        let bytes = RowCodec::new(&v1).encode(&row).unwrap();
        // v2: c1 renamed, c0 dropped, c2 added with default 5, c3 added without default.
        let mut v2 = v1.clone();
        v2.version = 2;
        v2.columns.remove(0);
        v2.columns[0].name = ColumnName::new("renamed").unwrap();
        for (id, missing) in [(3, Some(StoredValue::Integer(5))), (4, None)] {
            v2.columns.push(ColumnDefinition {
                id,
                name: ColumnName::new(&format!("n{id}")).unwrap(),
                data_type: DataType::Int,
                nullable: true,
                default: None,
                added_in_version: 2,
                missing_value: missing,
            });
        }
        let decoded = RowCodec::new(&v2).decode(&bytes).unwrap();
        assert_eq!(
            decoded.values,
            vec![Value::Text("a".into()), Value::Int(5), Value::Null]
        );
    }
}

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
use crate::types::Value;

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
        let (seq, deleted) = Self::decode_header(bytes)?;
        let mut reader = Reader { bytes, pos: 10 };
        let written_version = reader.varint()? as u32;
        let count = reader.varint()? as usize;
        let mut values: Vec<Option<Value>> = vec![None; self.schema.columns.len()];
        for _ in 0..count {
            let id = reader.varint()? as usize;
            let value = reader.value()?;
            if let Some(Some(pos)) = self.positions.get(id) {
                if !value.fits(&self.schema.columns[*pos].data_type) {
                    return Err(DomainError::Corrupt(format!(
                        "stored value of column '{}' has the wrong type",
                        self.schema.columns[*pos].name
                    )));
                }
                values[*pos] = Some(value);
            }
        }
        let values = values
            .into_iter()
            .zip(&self.schema.columns)
            .map(|(value, column)| match value {
                Some(v) => v,
                // Written when the column did not exist yet: its value at the time it was added.
                None if column.added_in_version > written_version => column
                    .missing_value
                    .as_ref()
                    .map(|m| m.to_value(&column.data_type))
                    .unwrap_or(Value::Null),
                None => Value::Null,
            })
            .collect();
        Ok(RowVersion { seq, deleted, values })
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

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> DomainResult<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|end| *end <= self.bytes.len());
        let end = end.ok_or_else(|| DomainError::Corrupt("a stored row is truncated".into()))?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> DomainResult<[u8; N]> {
        Ok(self.take(N)?.try_into().expect("length checked"))
    }

    fn varint(&mut self) -> DomainResult<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.take(1)?[0];
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DomainError::Corrupt("a varint is too long".into()))
    }

    fn len_bytes(&mut self) -> DomainResult<&'a [u8]> {
        let n = self.varint()? as usize;
        self.take(n)
    }

    fn value(&mut self) -> DomainResult<Value> {
        let tag = self.take(1)?[0];
        Ok(match tag {
            1 => Value::Boolean(self.take(1)?[0] != 0),
            2 => Value::SmallInt(i16::from_le_bytes(self.array()?)),
            3 => Value::Int(i32::from_le_bytes(self.array()?)),
            4 => Value::BigInt(i64::from_le_bytes(self.array()?)),
            5 => Value::Float(f32::from_le_bytes(self.array()?)),
            6 => Value::Double(f64::from_le_bytes(self.array()?)),
            7 => Value::Decimal(i128::from_le_bytes(self.array()?)),
            8 => {
                let bytes = self.len_bytes()?;
                let text =
                    std::str::from_utf8(bytes).map_err(|_| DomainError::Corrupt("stored text is not UTF-8".into()))?;
                Value::Text(text.to_owned())
            }
            9 => Value::Bytes(self.len_bytes()?.to_vec()),
            10 => Value::Timestamp(i64::from_le_bytes(self.array()?)),
            11 => Value::Date(i32::from_le_bytes(self.array()?)),
            12 => Value::Time(i64::from_le_bytes(self.array()?)),
            other => return Err(DomainError::Corrupt(format!("unknown value tag {other}"))),
        })
    }
}

//! The key layout, one for every backend.
//!
//! - USER rows: `user_id 0x00 row_id`: one user's rows are one contiguous range.
//! - SHARED rows: `row_id`.
//! - STREAM rows: `user_id 0x00 seq`: time-ordered, so expiry and "last N" are ranges.
//!
//! A user id never holds `0x00` (identifiers are validated), so `user_id 0x00` is a prefix
//! that no other user's keys share. The row id is the primary key in an order-preserving
//! encoding (encoded keys sort like the values they encode), or the internal row id
//! (a Snowflake id, big-endian) for tables without a primary key.

use crate::error::{DomainError, DomainResult};
use crate::ident::UserId;
use crate::types::Value;

/// Which partition of a table rows belong to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Partition {
    /// The partition of one user (USER and STREAM tables).
    User(UserId),
    /// The single partition of a SHARED table.
    Shared,
}

impl Partition {
    /// The key prefix of every row of this partition.
    pub fn key_prefix(&self) -> Vec<u8> {
        match self {
            Partition::User(user) => {
                let mut prefix = Vec::with_capacity(user.as_str().len() + 1);
                prefix.extend_from_slice(user.as_str().as_bytes());
                prefix.push(0);
                prefix
            }
            Partition::Shared => Vec::new(),
        }
    }

    /// The full key of the row `row_id` in this partition.
    pub fn row_key(&self, row_id: &[u8]) -> Vec<u8> {
        let mut key = self.key_prefix();
        key.extend_from_slice(row_id);
        key
    }

    /// The user owning the partition, if it is a user's.
    pub fn user(&self) -> Option<&UserId> {
        match self {
            Partition::User(u) => Some(u),
            Partition::Shared => None,
        }
    }
}

/// The row id part of a key (after the partition prefix).
pub fn row_id_of<'k>(partition: &Partition, key: &'k [u8]) -> &'k [u8] {
    let prefix_len = match partition {
        Partition::User(u) => u.as_str().len() + 1,
        Partition::Shared => 0,
    };
    &key[prefix_len.min(key.len())..]
}

/// Splits a USER or STREAM key into its user id and row id.
pub fn split_user_key(key: &[u8]) -> DomainResult<(&str, &[u8])> {
    let zero = key
        .iter()
        .position(|b| *b == 0)
        .ok_or_else(|| DomainError::Corrupt("a per-user key has no user separator".into()))?;
    let user = std::str::from_utf8(&key[..zero]).map_err(|_| DomainError::Corrupt("a user id is not UTF-8".into()))?;
    Ok((user, &key[zero + 1..]))
}

/// The order-preserving encoding of a primary-key value.
///
/// Integers flip the sign bit and are written big-endian; floats are not allowed as keys;
/// text and bytes are written as they are (the row id is the key's last part, so no
/// terminator is needed and bytewise order is the values' order).
pub fn encode_key_value(value: &Value) -> DomainResult<Vec<u8>> {
    Ok(match value {
        Value::Null => return Err(DomainError::Constraint("a primary key cannot be NULL".into())),
        Value::Boolean(b) => vec![u8::from(*b)],
        Value::SmallInt(v) => ((*v as u16) ^ 0x8000).to_be_bytes().to_vec(),
        Value::Int(v) | Value::Date(v) => ((*v as u32) ^ 0x8000_0000).to_be_bytes().to_vec(),
        Value::BigInt(v) | Value::Timestamp(v) | Value::Time(v) => {
            ((*v as u64) ^ 0x8000_0000_0000_0000).to_be_bytes().to_vec()
        }
        Value::Decimal(v) => ((*v as u128) ^ (1u128 << 127)).to_be_bytes().to_vec(),
        Value::Text(s) => s.as_bytes().to_vec(),
        Value::Bytes(b) => b.clone(),
        Value::Float(_) | Value::Double(_) => {
            return Err(DomainError::InvalidDefinition(
                "floating-point columns cannot be primary keys".into(),
            ));
        }
    })
}

/// The row id of a row without a primary key, from its internal id.
pub fn encode_internal_row_id(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn order_of<T: PartialOrd>(a: T, b: T) -> std::cmp::Ordering {
        a.partial_cmp(&b).unwrap()
    }

    proptest! {
        #[test]
        fn bigint_keys_sort_like_values(a: i64, b: i64) {
            let (ka, kb) = (encode_key_value(&Value::BigInt(a)).unwrap(), encode_key_value(&Value::BigInt(b)).unwrap());
            prop_assert_eq!(ka.cmp(&kb), order_of(a, b));
        }

        #[test]
        fn int_keys_sort_like_values(a: i32, b: i32) {
            let (ka, kb) = (encode_key_value(&Value::Int(a)).unwrap(), encode_key_value(&Value::Int(b)).unwrap());
            prop_assert_eq!(ka.cmp(&kb), order_of(a, b));
        }

        #[test]
        fn smallint_keys_sort_like_values(a: i16, b: i16) {
            let (ka, kb) = (encode_key_value(&Value::SmallInt(a)).unwrap(), encode_key_value(&Value::SmallInt(b)).unwrap());
            prop_assert_eq!(ka.cmp(&kb), order_of(a, b));
        }

        #[test]
        fn decimal_keys_sort_like_values(a: i128, b: i128) {
            let (ka, kb) = (encode_key_value(&Value::Decimal(a)).unwrap(), encode_key_value(&Value::Decimal(b)).unwrap());
            prop_assert_eq!(ka.cmp(&kb), order_of(a, b));
        }

        #[test]
        fn text_keys_sort_like_values(a in ".*", b in ".*") {
            let (ka, kb) = (encode_key_value(&Value::Text(a.clone())).unwrap(), encode_key_value(&Value::Text(b.clone())).unwrap());
            prop_assert_eq!(ka.cmp(&kb), a.cmp(&b));
        }

        #[test]
        fn user_partitions_never_overlap(a in "[a-z_][a-z0-9_]{0,10}", b in "[a-z_][a-z0-9_]{0,10}", ra: Vec<u8>, rb: Vec<u8>) {
            prop_assume!(a != b);
            let (pa, pb) = (Partition::User(UserId::new(&a).unwrap()), Partition::User(UserId::new(&b).unwrap()));
            prop_assert!(!pa.row_key(&ra).starts_with(&pb.key_prefix()));
            prop_assert!(!pb.row_key(&rb).starts_with(&pa.key_prefix()));
        }
    }

    #[test]
    fn null_and_float_keys_are_refused() {
        assert!(encode_key_value(&Value::Null).is_err());
        assert!(encode_key_value(&Value::Double(1.0)).is_err());
    }

    #[test]
    fn user_keys_split_back() {
        let p = Partition::User(UserId::new("alice").unwrap());
        let key = p.row_key(b"\x00\x01row");
        assert_eq!(split_user_key(&key).unwrap(), ("alice", &b"\x00\x01row"[..]));
        assert_eq!(row_id_of(&p, &key), b"\x00\x01row");
    }
}

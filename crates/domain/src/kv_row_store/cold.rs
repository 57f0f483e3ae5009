//! The row store's side of the cold tier: manifests, the cold key index, and the atomic
//! hand-over of flushed rows.
//!
//! - A partition's [`Manifest`] lists its Parquet segments; it is kept in the catalog's
//!   keyspace under `mf/<table uid>/<partition key prefix>`.
//! - The cold key index (keyspace `t<uid>c`) holds, for every row id with a flushed
//!   version, that version's `_seq` and delete flag: nine bytes per row. It keeps
//!   primary keys unique across tiers and lets UPDATE and DELETE reach flushed rows,
//!   without reading Parquet.
//! - [`KvRowStore::commit_flush`] writes the new manifest, the index entries and the
//!   removal of the flushed hot versions in one atomic batch, under the table's lock: a
//!   crash leaves the old state or the new one.
//! - [`KvRowStore::replace_segments`] puts a compacted segment in the place of the ones it
//!   was made from, the same way.

use std::ops::Bound;

use super::KvRowStore;
use crate::codec::RowCodec;
use crate::error::{DomainError, DomainResult};
use crate::keys::{Partition, split_user_key};
use crate::kv::{KeyRange, WriteBatch, prefix_successor};
use crate::kv_catalog::SYSTEM_KEYSPACE;
use crate::model::{Manifest, Segment, TableDefinition, TableKind};

/// The catalog key prefix of manifests.
const MANIFEST_PREFIX: &str = "mf/";

/// A flushed version as the cold index records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColdVersion {
    /// Its `_seq`.
    pub seq: i64,
    /// Whether it is a delete.
    pub deleted: bool,
}

impl ColdVersion {
    fn encode(self) -> [u8; 9] {
        let mut bytes = [0u8; 9];
        bytes[..8].copy_from_slice(&self.seq.to_be_bytes());
        bytes[8] = u8::from(self.deleted);
        bytes
    }

    fn decode(bytes: &[u8]) -> DomainResult<Self> {
        let (seq, flag) = match bytes {
            [seq @ .., flag] if seq.len() == 8 => (seq, *flag),
            _ => return Err(DomainError::Corrupt("a cold index entry is not 9 bytes".into())),
        };
        Ok(Self {
            seq: i64::from_be_bytes(seq.try_into().expect("8 bytes")),
            deleted: flag != 0,
        })
    }
}

fn table_manifest_prefix(table_uid: u64) -> Vec<u8> {
    format!("{MANIFEST_PREFIX}{table_uid}/").into_bytes()
}

fn manifest_key(table_uid: u64, partition: &Partition) -> Vec<u8> {
    let mut key = table_manifest_prefix(table_uid);
    key.extend_from_slice(&partition.key_prefix());
    key
}

fn decode_manifest(bytes: &[u8]) -> DomainResult<Manifest> {
    serde_json::from_slice(bytes).map_err(|e| DomainError::Corrupt(format!("a manifest does not decode: {e}")))
}

impl KvRowStore {
    /// The manifest of a partition (empty if it never flushed).
    pub(super) fn read_manifest(&self, table: &TableDefinition, partition: &Partition) -> DomainResult<Manifest> {
        match self.kv.get(SYSTEM_KEYSPACE, &manifest_key(table.uid, partition))? {
            Some(bytes) => decode_manifest(&bytes),
            None => Ok(Manifest::default()),
        }
    }

    /// Every partition's manifest of a table.
    pub(super) fn read_manifests(&self, table: &TableDefinition) -> DomainResult<Vec<(Partition, Manifest)>> {
        let prefix = table_manifest_prefix(table.uid);
        let range = KeyRange {
            start: Bound::Included(prefix.clone()),
            end: prefix_successor(&prefix).map_or(Bound::Unbounded, Bound::Excluded),
        };
        let mut manifests = Vec::new();
        for pair in self.kv.scan(SYSTEM_KEYSPACE, range, false)? {
            let (key, value) = pair?;
            let partition_key = &key[prefix.len()..];
            let partition = if partition_key.is_empty() {
                Partition::Shared
            } else {
                let (user, _) = split_user_key(partition_key)?;
                Partition::User(crate::UserId::new(user)?)
            };
            manifests.push((partition, decode_manifest(&value)?));
        }
        Ok(manifests)
    }

    /// The flushed version of a row, if it has one.
    pub(super) fn cold_version(&self, table: &TableDefinition, key: &[u8]) -> DomainResult<Option<ColdVersion>> {
        self.kv
            .get(&table.cold_keyspace(), key)?
            .map(|bytes| ColdVersion::decode(&bytes))
            .transpose()
    }

    /// Whether the row at `key` is live in either tier: the hot version if there is one
    /// (it is the newest), else the flushed one.
    pub(super) fn is_live_in_any_tier(&self, table: &TableDefinition, key: &[u8]) -> DomainResult<bool> {
        self.is_live(table, key, true)
    }

    /// [`Self::is_live_in_any_tier`], asking the cold index only when `flushed` (whether
    /// the key's partition has flushed rows: see [`Self::has_flushed_rows`]).
    pub(super) fn is_live(&self, table: &TableDefinition, key: &[u8], flushed: bool) -> DomainResult<bool> {
        match self.kv.get(&table.keyspace(), key)? {
            Some(bytes) => Ok(!RowCodec::decode_header(&bytes)?.1),
            None if flushed => Ok(self.cold_version(table, key)?.is_some_and(|v| !v.deleted)),
            None => Ok(false),
        }
    }

    /// Whether any row of `partition` has a flushed version: one seek of the cold index,
    /// so that a write of many new rows to a partition that never flushed asks it once,
    /// not once a row. Stable while the table's write lock is held (a flush hands rows
    /// over under it).
    pub(super) fn has_flushed_rows(&self, table: &TableDefinition, partition: &Partition) -> DomainResult<bool> {
        let range = KeyRange::prefix(&partition.key_prefix());
        let mut any = false;
        self.kv
            .scan_visit(&table.cold_keyspace(), range, false, 1, &mut |_: &[u8], _: &[u8]| {
                any = true;
                Ok(false)
            })?;
        Ok(any)
    }

    /// The partitions of a table that hold hot rows.
    pub(super) fn partitions_with_hot_rows(&self, table: &TableDefinition) -> DomainResult<Vec<Partition>> {
        let keyspace = table.keyspace();
        if table.kind == TableKind::Shared {
            let any = self.kv.scan_limited(&keyspace, KeyRange::all(), false, 1)?;
            return Ok(if any.is_empty() {
                Vec::new()
            } else {
                vec![Partition::Shared]
            });
        }
        let mut partitions = Vec::new();
        let mut start = Bound::Unbounded;
        loop {
            let range = KeyRange {
                start: start.clone(),
                end: Bound::Unbounded,
            };
            let Some((key, _)) = self.kv.scan_limited(&keyspace, range, false, 1)?.into_iter().next() else {
                return Ok(partitions);
            };
            let (user, _) = split_user_key(&key)?;
            let partition = Partition::User(crate::UserId::new(user)?);
            match prefix_successor(&partition.key_prefix()) {
                Some(next) => start = Bound::Included(next),
                None => {
                    partitions.push(partition);
                    return Ok(partitions);
                }
            }
            partitions.push(partition);
        }
    }

    /// Hands flushed rows over to the cold tier, atomically: `segment` joins the
    /// partition's manifest (with how many of its rows supersede a flushed version), each flushed `(row id, _seq, deleted)` enters the cold index,
    /// and the hot versions that are still the flushed ones are removed (a row written
    /// again since the flush read it keeps its newer hot version). Gives how many hot
    /// versions were removed.
    pub(super) fn hand_over(
        &self,
        table: &TableDefinition,
        partition: &Partition,
        segment: Segment,
        flushed: &[(Vec<u8>, i64, bool)],
    ) -> DomainResult<u64> {
        let lock = self.lock_for(table);
        let _guard = lock.lock();
        let mut manifest = self.read_manifest(table, partition)?;
        if segment.batch != manifest.next_batch {
            return Err(DomainError::Storage(format!(
                "segment {} of {} was flushed concurrently with another one; retry the flush",
                segment.batch, table.id
            )));
        }
        manifest.next_batch = segment.batch + 1;
        let keyspace = table.keyspace();
        let cold_keyspace = table.cold_keyspace();
        let mut batch = WriteBatch::new();
        let mut removed = 0;
        let mut superseding = 0;
        for (row_id, seq, deleted) in flushed {
            let key = partition.row_key(row_id);
            let cold = self.cold_version(table, &key)?;
            superseding += u64::from(cold.is_some());
            let newer_cold = cold.is_some_and(|v| v.seq > *seq);
            if !newer_cold {
                let version = ColdVersion {
                    seq: *seq,
                    deleted: *deleted,
                };
                batch.put(&cold_keyspace, key.clone(), version.encode().to_vec());
            }
            if let Some(hot) = self.kv.get(&keyspace, &key)?
                && RowCodec::decode_header(&hot)?.0 == *seq
            {
                batch.delete(&keyspace, key);
                removed += 1;
            }
        }
        manifest.segments.push(Segment {
            superseding: Some(superseding),
            ..segment
        });
        let encoded = serde_json::to_vec(&manifest).map_err(|e| DomainError::Corrupt(e.to_string()))?;
        batch.put(SYSTEM_KEYSPACE, manifest_key(table.uid, partition), encoded);
        self.kv.write(batch)?;
        Ok(removed)
    }

    /// Puts `segment` in the place of the `replaced` segments of a partition's manifest and
    /// takes the `purged` versions out of the cold index, in one atomic batch under the
    /// table's lock (see `RowStore::commit_compaction`).
    pub(super) fn replace_segments(
        &self,
        table: &TableDefinition,
        partition: &Partition,
        replaced: &[u64],
        segment: Option<Segment>,
        purged: &[(Vec<u8>, i64)],
    ) -> DomainResult<()> {
        let lock = self.lock_for(table);
        let _guard = lock.lock();
        let mut manifest = self.read_manifest(table, partition)?;
        let listed = replaced
            .iter()
            .all(|batch| manifest.segments.iter().any(|s| s.batch == *batch));
        if !listed || segment.as_ref().is_some_and(|s| s.batch != manifest.next_batch) {
            return Err(DomainError::Storage(format!(
                "the segments of {} changed while they were compacted; compact again",
                table.id
            )));
        }
        if let Some(segment) = &segment {
            manifest.next_batch = segment.batch + 1;
        }
        let at = manifest
            .segments
            .iter()
            .position(|s| replaced.contains(&s.batch))
            .unwrap_or(manifest.segments.len());
        manifest.retired = manifest
            .segments
            .iter()
            .filter(|s| replaced.contains(&s.batch))
            .map(|s| s.path.clone())
            .collect();
        manifest.segments.retain(|s| !replaced.contains(&s.batch));
        if let Some(segment) = segment {
            manifest.segments.insert(at.min(manifest.segments.len()), segment);
        }
        let cold_keyspace = table.cold_keyspace();
        let mut batch = WriteBatch::new();
        for (row_id, seq) in purged {
            let key = partition.row_key(row_id);
            if self.cold_version(table, &key)?.is_some_and(|v| v.seq == *seq) {
                batch.delete(&cold_keyspace, key);
            }
        }
        let encoded = serde_json::to_vec(&manifest).map_err(|e| DomainError::Corrupt(e.to_string()))?;
        batch.put(SYSTEM_KEYSPACE, manifest_key(table.uid, partition), encoded);
        self.kv.write(batch)
    }

    /// Removes every manifest of a table (its keyspaces are dropped by the caller).
    pub(super) fn forget_manifests(&self, table: &TableDefinition) -> DomainResult<()> {
        let prefix = table_manifest_prefix(table.uid);
        let mut batch = WriteBatch::new();
        let end = prefix_successor(&prefix).expect("the prefix ends with '/'");
        batch.delete_range(SYSTEM_KEYSPACE, prefix, end);
        self.kv.write(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cold_versions_round_trip() {
        for version in [
            ColdVersion { seq: 1, deleted: false },
            ColdVersion {
                seq: i64::MAX,
                deleted: true,
            },
        ] {
            assert_eq!(ColdVersion::decode(&version.encode()).unwrap(), version);
        }
        assert!(ColdVersion::decode(&[1, 2, 3]).is_err());
    }
}

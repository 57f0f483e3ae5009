//! Limits measured in the same run, in this process: what the storage engine alone does
//! with the same rows (writes, point reads, scans), and what DataFusion alone does with the
//! same rows in memory (the aggregates). A scenario is reported as a fraction of its limit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use calamus::{Database, StorageBackend};
use calamus_domain::keys::encode_key_value;
use calamus_domain::model::TableDefinition;
use calamus_domain::{
    KeyRange, NamespaceId, Partition, RowCodec, RowVersion, TableId, TableName, UserId, Value, WriteBatch,
};
use calamus_query::Session;
use datafusion::arrow::array::{Float64Array, Int64Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use serde::Serialize;
use tempfile::TempDir;

use crate::dataset::{ITEMS_COLUMNS_SQL, Item};
use crate::error::{BenchError, BenchResult};

/// One limit: the best rate the same work reaches without the server around it.
#[derive(Debug, Clone, Serialize)]
pub struct Limit {
    /// What was measured, e.g. `rocksdb: write batches of 50 rows`.
    pub name: String,
    /// Operations per second (an operation is the scenario's: one statement's work).
    pub ops_per_sec: f64,
}

/// The engine's side of the limits: an empty store of the server's backend in a temporary
/// directory, with a table of the same columns as the scenarios'.
pub struct EngineLimits {
    _dir: TempDir,
    db: Database,
    table: Arc<TableDefinition>,
    codec: RowCodec,
    /// Where the write limits write.
    partition: Partition,
    /// Where the items the reads and scans read are (written at open).
    items: Partition,
    items_count: usize,
    backend: StorageBackend,
}

fn limit_error(what: &str, e: impl std::fmt::Display) -> BenchError {
    BenchError::Limit(format!("{what}: {e}"))
}

impl EngineLimits {
    /// Opens a fresh store of `backend` holding the items `0..items`.
    pub fn open(backend: StorageBackend, items: usize) -> BenchResult<Self> {
        let dir = TempDir::new().map_err(|e| limit_error("a temporary directory", e))?;
        let db = Database::open(backend, &dir.path().join("data")).map_err(|e| limit_error("opening the engine", e))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| limit_error("a runtime", e))?;
        let mut root = Session::root();
        runtime
            .block_on(db.engine.execute(
                &mut root,
                &format!("CREATE NAMESPACE limits; CREATE USER TABLE limits.items ({ITEMS_COLUMNS_SQL})"),
                &[],
            ))
            .map_err(|e| limit_error("creating the table", e))?;
        let id = TableId::new(
            NamespaceId::new("limits").expect("a name"),
            TableName::new("items").expect("a name"),
        );
        let table = Arc::clone(
            db.engine
                .catalog()
                .snapshot()
                .table(&id)
                .ok_or_else(|| limit_error("the table", "missing from the catalog"))?,
        );
        let codec = RowCodec::new(table.schema());
        let limits = Self {
            _dir: dir,
            db,
            table,
            codec,
            partition: Partition::User(UserId::new("limits_writer").expect("a user id")),
            items: Partition::User(UserId::new("limits_reader").expect("a user id")),
            items_count: items,
            backend,
        };
        let mut batch = WriteBatch::new();
        for id in 0..items as i64 {
            limits.put(&mut batch, &limits.items, id, &Item::new(id))?;
        }
        limits
            .db
            .kv
            .write(batch)
            .map_err(|e| limit_error("writing the items", e))?;
        Ok(limits)
    }

    fn put(&self, batch: &mut WriteBatch, partition: &Partition, seq: i64, item: &Item) -> BenchResult<()> {
        let values = item.values();
        let row_id = encode_key_value(&values[0]).map_err(|e| limit_error("a key", e))?;
        let version = RowVersion {
            seq,
            deleted: false,
            values,
        };
        let value = self
            .codec
            .encode(&version)
            .map_err(|e| limit_error("encoding a row", e))?;
        batch.put(&self.table.keyspace(), partition.row_key(&row_id), value);
        Ok(())
    }

    /// Writes `operations` batches of `rows_per_batch` new rows (ids from `first_id`), one
    /// engine write each: batches per second.
    pub fn write(&self, first_id: i64, operations: usize, rows_per_batch: usize) -> BenchResult<Limit> {
        let started = Instant::now();
        let mut id = first_id;
        for _ in 0..operations {
            let mut batch = WriteBatch::new();
            for _ in 0..rows_per_batch {
                self.put(&mut batch, &self.partition, id, &Item::new(id))?;
                id += 1;
            }
            self.db.kv.write(batch).map_err(|e| limit_error("writing", e))?;
        }
        Ok(Limit {
            name: format!("{}: write batches of {rows_per_batch} row(s)", self.backend),
            ops_per_sec: per_sec(operations, started.elapsed()),
        })
    }

    /// Point reads (and decoding) of `operations` items.
    pub fn point_read(&self, operations: usize) -> BenchResult<Limit> {
        let keyspace = self.table.keyspace();
        let started = Instant::now();
        for i in 0..operations {
            let id = (i as i64 * 7919) % self.items_count as i64;
            let key = self
                .items
                .row_key(&encode_key_value(&Value::BigInt(id)).map_err(|e| limit_error("a key", e))?);
            let found = self.db.kv.get(&keyspace, &key).map_err(|e| limit_error("reading", e))?;
            let bytes = found.ok_or_else(|| limit_error("a point read", format!("row {id} is missing")))?;
            std::hint::black_box(self.codec.decode(&bytes).map_err(|e| limit_error("decoding", e))?);
        }
        Ok(Limit {
            name: format!("{}: point read and decode", self.backend),
            ops_per_sec: per_sec(operations, started.elapsed()),
        })
    }

    /// Full iterations over the items (keys and values, no decoding): scans per second.
    pub fn scan(&self, operations: usize) -> BenchResult<Limit> {
        let expected_rows = self.items_count;
        let keyspace = self.table.keyspace();
        let prefix = self.items.key_prefix();
        let started = Instant::now();
        for _ in 0..operations {
            let rows = self
                .db
                .kv
                .scan(&keyspace, KeyRange::prefix(&prefix), false)
                .map_err(|e| limit_error("scanning", e))?
                .count();
            if rows != expected_rows {
                return Err(limit_error(
                    "a scan",
                    format!("saw {rows} rows, expected {expected_rows}"),
                ));
            }
        }
        Ok(Limit {
            name: format!("{}: iterate {expected_rows} rows", self.backend),
            ops_per_sec: per_sec(operations, started.elapsed()),
        })
    }
}

/// DataFusion over the same rows, in memory: the floor of any query engine built on it.
pub struct MemoryLimits {
    context: SessionContext,
    runtime: tokio::runtime::Runtime,
}

impl MemoryLimits {
    /// For each `(name, rows)`, the first `rows` items as table `name`.
    pub fn new(tables: &[(&str, usize)]) -> BenchResult<Self> {
        let context = SessionContext::new();
        for &(name, rows) in tables {
            context
                .register_table(name, Arc::new(items_table(rows)?))
                .map_err(|e| limit_error("registering a MemTable", e))?;
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| limit_error("a runtime", e))?;
        Ok(Self { context, runtime })
    }
}

/// The first `rows` items as one Arrow batch in a MemTable.
fn items_table(rows: usize) -> BenchResult<MemTable> {
    let items: Vec<Item> = (0..rows as i64).map(Item::new).collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("category", DataType::Utf8, false),
        Field::new("amount", DataType::Float64, false),
        Field::new("note", DataType::Utf8, true),
    ]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(Int64Array::from_iter_values(items.iter().map(|i| i.id))),
            Arc::new(StringArray::from_iter_values(items.iter().map(|i| i.category()))),
            Arc::new(Float64Array::from_iter_values(items.iter().map(|i| i.amount()))),
            Arc::new(StringArray::from_iter_values(items.iter().map(|i| i.note()))),
        ],
    )
    .map_err(|e| limit_error("an Arrow batch", e))?;
    MemTable::try_new(schema, vec![vec![batch]]).map_err(|e| limit_error("a MemTable", e))
}

impl MemoryLimits {
    /// Runs `sql` (over `items`) `operations` times, planning each time as a server must:
    /// queries per second, and the rows of the last run.
    pub fn query(&self, sql: &str, operations: usize) -> BenchResult<(Limit, usize)> {
        let mut rows = 0;
        let started = Instant::now();
        for _ in 0..operations {
            let batches = self
                .runtime
                .block_on(async { self.context.sql(sql).await?.collect().await })
                .map_err(|e| limit_error(sql, e))?;
            rows = batches.iter().map(RecordBatch::num_rows).sum();
        }
        Ok((
            Limit {
                name: "DataFusion over in-memory Arrow".into(),
                ops_per_sec: per_sec(operations, started.elapsed()),
            },
            rows,
        ))
    }
}

fn per_sec(operations: usize, elapsed: Duration) -> f64 {
    operations as f64 / elapsed.as_secs_f64().max(1e-9)
}

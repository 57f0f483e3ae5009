//! Failures that are hard to reach with real storage: the catalog port failing in the middle
//! of a DDL, the row store failing mid-scan or mid-write. Each must come out as a clear
//! error and leave nothing half-applied.

use std::collections::BTreeMap;
use std::sync::Arc;

use calamus_domain::ids::SnowflakeGenerator;
use calamus_domain::model::{ColumnDefinition, Namespace, TableDefinition, TableKind, TableOptions, TableSchema};
use calamus_domain::{
    CatalogSnapshot, ColumnName, DataType, DomainError, MockCatalog, MockRowStore, NamespaceId, RowCodec, RowVersion,
    TableId, TableName, Value,
};

use crate::{ErrorKind, QueryEngine, Session};

fn table() -> TableDefinition {
    let column = |id, name: &str, data_type| ColumnDefinition {
        id,
        name: ColumnName::new(name).unwrap(),
        data_type,
        nullable: true,
        default: None,
        added_in_version: 1,
        missing_value: None,
    };
    TableDefinition {
        id: TableId::new(NamespaceId::new("app").unwrap(), TableName::new("t").unwrap()),
        uid: 7,
        kind: TableKind::User,
        options: TableOptions::default(),
        schemas: vec![TableSchema {
            version: 1,
            columns: vec![column(1, "id", DataType::BigInt), column(2, "v", DataType::Text)],
            primary_key: Some(1),
            created_at: 0,
        }],
        next_column_id: 3,
        created_at: 0,
        updated_at: 0,
    }
}

fn snapshot(with_table: bool) -> Arc<CatalogSnapshot> {
    let mut namespaces = BTreeMap::new();
    for ns in ["default", "app"] {
        let id = NamespaceId::new(ns).unwrap();
        namespaces.insert(
            id.clone(),
            Namespace {
                id,
                options: Default::default(),
                created_at: 0,
                updated_at: 0,
            },
        );
    }
    let mut tables = BTreeMap::new();
    if with_table {
        let t = table();
        tables.insert(t.id.clone(), Arc::new(t));
    }
    Arc::new(CatalogSnapshot {
        namespaces,
        tables,
        ..Default::default()
    })
}

fn engine(catalog: MockCatalog, rows: MockRowStore) -> QueryEngine {
    QueryEngine::new(
        Arc::new(catalog),
        Arc::new(rows),
        Arc::new(SnowflakeGenerator::new(0, 0)),
        Arc::new(crate::live::LiveQueries::new()),
    )
}

fn storage_failure() -> DomainError {
    DomainError::Storage("disk on fire".into())
}

#[tokio::test]
async fn create_table_removes_its_keyspace_when_the_catalog_write_fails() {
    let mut catalog = MockCatalog::new();
    catalog.expect_snapshot().returning(|| snapshot(false));
    catalog.expect_allocate_table_uid().returning(|| Ok(42));
    catalog
        .expect_create_table()
        .times(1)
        .returning(|_| Err(storage_failure()));
    let mut rows = MockRowStore::new();
    rows.expect_create_table().times(1).returning(|_| Ok(()));
    // The keyspace made for the table must be removed again.
    rows.expect_drop_table()
        .times(1)
        .withf(|t| t.uid == 42)
        .returning(|_| Ok(()));
    let engine = engine(catalog, rows);
    let err = engine
        .execute(
            &mut Session::root(),
            "CREATE USER TABLE app.t (id BIGINT PRIMARY KEY)",
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Internal);
    assert!(err.to_string().contains("disk on fire"), "{err}");
}

#[tokio::test]
async fn drop_namespace_touches_no_rows_when_the_catalog_write_fails() {
    let mut catalog = MockCatalog::new();
    catalog.expect_snapshot().returning(|| snapshot(true));
    catalog
        .expect_drop_namespace()
        .times(1)
        .returning(|_, _| Err(storage_failure()));
    let mut rows = MockRowStore::new();
    rows.expect_drop_table().never();
    let engine = engine(catalog, rows);
    let err = engine
        .execute(&mut Session::root(), "DROP NAMESPACE app CASCADE", &[])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("disk on fire"), "{err}");
}

#[tokio::test]
async fn insert_reports_a_failed_write() {
    let mut catalog = MockCatalog::new();
    catalog.expect_snapshot().returning(|| snapshot(true));
    let mut rows = MockRowStore::new();
    rows.expect_insert()
        .times(1)
        .returning(|_, _, _| Err(storage_failure()));
    let engine = engine(catalog, rows);
    let err = engine
        .execute(&mut Session::root(), "INSERT INTO app.t VALUES (1, 'a'), (2, 'b')", &[])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Internal);
    assert!(err.to_string().contains("disk on fire"), "{err}");
}

#[tokio::test]
async fn a_scan_failing_midway_fails_the_query_instead_of_returning_part_of_it() {
    let mut catalog = MockCatalog::new();
    catalog.expect_snapshot().returning(|| snapshot(true));
    let mut rows = MockRowStore::new();
    rows.expect_visit_encoded().returning(|table, _, _, visit| {
        let first = RowVersion {
            seq: 1,
            deleted: false,
            values: vec![Value::BigInt(1), Value::Text("a".into())],
        };
        let first = RowCodec::new(table.schema()).encode(&first).unwrap();
        visit.visit(b"\x01", &first)?;
        Err(storage_failure())
    });
    let engine = engine(catalog, rows);
    let err = engine
        .execute(&mut Session::root(), "SELECT * FROM app.t", &[])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("disk on fire"), "{err}");
}

#[tokio::test]
async fn update_writes_nothing_when_reading_its_rows_fails() {
    let mut catalog = MockCatalog::new();
    catalog.expect_snapshot().returning(|| snapshot(true));
    let mut rows = MockRowStore::new();
    rows.expect_visit_encoded()
        .returning(|_, _, _, _| Err(storage_failure()));
    rows.expect_write_changes().never();
    let engine = engine(catalog, rows);
    let err = engine
        .execute(&mut Session::root(), "UPDATE app.t SET v = 'x' WHERE id = 1", &[])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("disk on fire"), "{err}");
}

#[tokio::test]
async fn a_failed_statement_stops_the_batch() {
    let mut catalog = MockCatalog::new();
    catalog.expect_snapshot().returning(|| snapshot(true));
    let mut rows = MockRowStore::new();
    rows.expect_insert()
        .times(1)
        .returning(|_, _, _| Err(storage_failure()));
    let engine = engine(catalog, rows);
    // The second INSERT must never reach the row store (times(1) above).
    let result = engine
        .execute(
            &mut Session::root(),
            "INSERT INTO app.t VALUES (1, 'a'); INSERT INTO app.t VALUES (2, 'b')",
            &[],
        )
        .await;
    assert!(result.is_err());
}

/// `KILL JOB` reaches a running flush: it stops before its next partition, flushes
/// nothing more, ends `cancelled`, and the statement that ran the flush says so. A job
/// that is not running, or does not exist, is a clear error.
#[tokio::test]
async fn kill_job_stops_a_running_flush_before_its_next_partition() {
    use std::sync::mpsc;

    use calamus_domain::model::{JobRecord, JobStatus, StorageDefinition};
    use calamus_domain::{Partition, StorageId, UserId};
    use parking_lot::Mutex;

    let jobs: Arc<Mutex<BTreeMap<String, JobRecord>>> = Arc::default();
    let mut catalog = MockCatalog::new();
    let seen = Arc::clone(&jobs);
    catalog.expect_snapshot().returning(move || {
        let mut snapshot = (*snapshot(true)).clone();
        snapshot
            .storages
            .insert(StorageId::local(), StorageDefinition::local(0));
        snapshot.jobs = seen.lock().clone();
        Arc::new(snapshot)
    });
    let recorded = Arc::clone(&jobs);
    catalog.expect_put_job().returning(move |job| {
        recorded.lock().insert(job.job_id.clone(), job);
        Ok(())
    });
    // Listing the partitions waits until the test has killed the job.
    let (listing, listed) = mpsc::channel::<()>();
    let (killed, kill_done) = mpsc::channel::<()>();
    let kill_done = Mutex::new(kill_done);
    let mut rows = MockRowStore::new();
    rows.expect_hot_partitions().returning(move |_| {
        listing.send(()).unwrap();
        kill_done.lock().recv().unwrap();
        Ok(vec![
            Partition::User(UserId::new("alice").unwrap()),
            Partition::User(UserId::new("bob").unwrap()),
        ])
    });
    rows.expect_scan().never();
    rows.expect_visit_encoded().never();
    rows.expect_commit_flush().never();
    let dir = std::env::temp_dir().join(format!("calamus-kill-job-{}", std::process::id()));
    let engine = Arc::new(engine(catalog, rows).with_cold_storage(&dir));

    let flushing = Arc::clone(&engine);
    let flush = tokio::spawn(async move { flushing.execute(&mut Session::root(), "FLUSH TABLE app.t", &[]).await });
    tokio::task::spawn_blocking(move || listed.recv().unwrap())
        .await
        .unwrap();
    let job_id = jobs.lock().keys().next().cloned().expect("the flush job is recorded");
    assert_eq!(jobs.lock()[&job_id].status, JobStatus::Running);

    let mut alice = Session::new(UserId::new("alice").unwrap(), calamus_domain::model::Role::User);
    let refused = engine
        .execute(&mut alice, &format!("KILL JOB '{job_id}'"), &[])
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::PermissionDenied, "{refused}");
    let out = engine
        .execute(&mut Session::root(), &format!("KILL JOB '{job_id}'"), &[])
        .await
        .unwrap();
    assert_eq!(out[0].row_count(), 1);
    killed.send(()).unwrap();

    let err = flush.await.unwrap().unwrap_err();
    assert!(err.to_string().contains("cancelled by KILL JOB"), "{err}");
    let job = jobs.lock()[&job_id].clone();
    assert_eq!(job.status, JobStatus::Cancelled);
    assert_eq!(job.rows_affected, 0);
    assert!(job.finished_at.is_some());

    let again = engine
        .execute(&mut Session::root(), &format!("KILL JOB '{job_id}'"), &[])
        .await
        .unwrap_err();
    assert!(again.to_string().contains("is not running: it is cancelled"), "{again}");
    let unknown = engine
        .execute(&mut Session::root(), "KILL JOB 'no-such-job'", &[])
        .await
        .unwrap_err();
    assert_eq!(unknown.kind(), ErrorKind::NotFound, "{unknown}");
    let _ = std::fs::remove_dir_all(&dir);
}

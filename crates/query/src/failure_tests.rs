//! Failures that are hard to reach with real storage: the catalog port failing in the middle
//! of a DDL, the row store failing mid-scan or mid-write. Each must come out as a clear
//! error and leave nothing half-applied.

use std::collections::BTreeMap;
use std::sync::Arc;

use calamus_domain::ids::SnowflakeGenerator;
use calamus_domain::model::{ColumnDefinition, Namespace, TableDefinition, TableKind, TableOptions, TableSchema};
use calamus_domain::{
    CatalogSnapshot, ColumnName, DataType, DomainError, MockCatalog, MockRowStore, NamespaceId, RowVersion, StoredRow,
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
    rows.expect_scan().returning(|_, _, _| {
        let first = StoredRow {
            row_id: vec![1],
            user: Some("root".into()),
            version: RowVersion {
                seq: 1,
                deleted: false,
                values: vec![Value::BigInt(1), Value::Text("a".into())],
            },
        };
        Ok(Box::new(vec![Ok(first), Err(storage_failure())].into_iter()))
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
    rows.expect_scan().returning(|_, _, _| Err(storage_failure()));
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

//! The roles table, row by row, with an allowed and a refused case each; refusals inside
//! subqueries, joins, CTEs and UNION; batches; the catalog's own refusals; redaction.

use std::collections::BTreeMap;
use std::sync::Arc;

use calamus_domain::ids::SnowflakeGenerator;
use calamus_domain::model::{
    AccessLevel, ColumnDefinition, Namespace, Role, TableDefinition, TableKind, TableOptions, TableSchema, User,
};
use calamus_domain::{
    CatalogSnapshot, ColumnName, DataType, DomainError, MockCatalog, MockRowStore, NamespaceId, TableId, TableName,
    UserId,
};
use datafusion::catalog::CatalogProvider;

use super::rules::GENERIC_REFUSAL;
use crate::parser::parse_statements;
use crate::providers::{SessionCatalog, TableAccess};
use crate::{ErrorKind, QueryEngine, QueryError, Session, Statement};

fn table(name: &str, kind: TableKind, access_level: Option<AccessLevel>) -> TableDefinition {
    let id_column = ColumnDefinition {
        id: 1,
        name: ColumnName::new("id").unwrap(),
        data_type: DataType::BigInt,
        nullable: false,
        default: None,
        added_in_version: 1,
        missing_value: None,
    };
    TableDefinition {
        id: TableId::new(NamespaceId::new("app").unwrap(), TableName::new(name).unwrap()),
        uid: 1,
        kind,
        options: TableOptions {
            access_level,
            ttl_seconds: (kind == TableKind::Stream).then_some(60),
            ..Default::default()
        },
        schemas: vec![TableSchema {
            version: 1,
            columns: vec![id_column],
            primary_key: Some(1),
            created_at: 0,
        }],
        next_column_id: 2,
        created_at: 0,
        updated_at: 0,
    }
}

/// Namespaces `default` and `app`; in `app`: notes (USER), events (STREAM), public,
/// private, restricted and plain (SHARED; plain has no ACCESS_LEVEL). Users: root and boss
/// (system), carol (dba), erin (service), alice and bob (user).
fn snapshot() -> Arc<CatalogSnapshot> {
    let mut namespaces = BTreeMap::new();
    for ns in ["default", "app"] {
        let id = NamespaceId::new(ns).unwrap();
        let namespace = Namespace {
            id: id.clone(),
            options: Default::default(),
            created_at: 0,
            updated_at: 0,
        };
        namespaces.insert(id, namespace);
    }
    let mut tables = BTreeMap::new();
    for t in [
        table("notes", TableKind::User, None),
        table("events", TableKind::Stream, None),
        table("public", TableKind::Shared, Some(AccessLevel::Public)),
        table("private", TableKind::Shared, Some(AccessLevel::Private)),
        table("restricted", TableKind::Shared, Some(AccessLevel::Restricted)),
        table("plain", TableKind::Shared, None),
    ] {
        tables.insert(t.id.clone(), Arc::new(t));
    }
    let mut users = BTreeMap::new();
    for (name, role) in [
        ("root", Role::System),
        ("boss", Role::System),
        ("carol", Role::Dba),
        ("erin", Role::Service),
        ("alice", Role::User),
        ("bob", Role::User),
    ] {
        let id = UserId::new(name).unwrap();
        let user = User {
            id: id.clone(),
            role,
            email: None,
            password_hash: None,
            created_at: 0,
            updated_at: 0,
            deleted_at: None,
        };
        users.insert(id, user);
    }
    Arc::new(CatalogSnapshot {
        namespaces,
        tables,
        users,
        ..Default::default()
    })
}

/// An engine whose ports allow nothing but reading the catalog: any write panics.
fn engine() -> QueryEngine {
    let mut catalog = MockCatalog::new();
    catalog.expect_snapshot().returning(snapshot);
    QueryEngine::new(
        Arc::new(catalog),
        Arc::new(MockRowStore::new()),
        Arc::new(SnowflakeGenerator::new(0, 0)),
        Arc::new(crate::live::LiveQueries::new()),
    )
}

fn session(user: &str) -> Session {
    engine().session_for(user).unwrap()
}

fn prepare(user: &str, sql: &str) -> Result<(), QueryError> {
    engine().prepare(&session(user), sql).map(|_| ())
}

fn allowed(user: &str, sql: &str) {
    if let Err(e) = prepare(user, sql) {
        panic!("{user} should be allowed {sql}: {e}");
    }
}

fn refused(user: &str, sql: &str) {
    match prepare(user, sql) {
        Err(e @ QueryError::PermissionDenied(_)) => {
            let role = session(user).role;
            if role < Role::Dba {
                assert_eq!(e.to_string(), format!("permission denied: {GENERIC_REFUSAL}"), "{sql}");
            }
        }
        other => panic!("{user} should be refused {sql}, got {other:?}"),
    }
}

#[test]
fn own_rows_of_user_and_stream_tables_every_role() {
    for user in ["alice", "erin", "carol", "root"] {
        allowed(user, "SELECT * FROM app.notes");
        allowed(user, "INSERT INTO app.notes VALUES (1)");
        allowed(user, "UPDATE app.notes SET id = 2 WHERE id = 1");
        allowed(user, "DELETE FROM app.events WHERE id = 1");
    }
    refused("alice", "INSERT INTO system.users VALUES (1)");
    refused("carol", "DELETE FROM system.users");
}

#[test]
fn execute_as_user_follows_the_allowed_paths() {
    refused("alice", "EXECUTE AS USER 'bob' (SELECT * FROM app.notes)");
    refused("alice", "EXECUTE AS USER 'nobody' (SELECT 1)");
    allowed("erin", "EXECUTE AS USER 'alice' (SELECT * FROM app.notes)");
    refused("erin", "EXECUTE AS USER 'carol' (SELECT * FROM app.notes)");
    allowed("carol", "EXECUTE AS USER 'erin' (INSERT INTO app.notes VALUES (1))");
    refused("carol", "EXECUTE AS USER 'root' (SELECT 1)");
    allowed("root", "EXECUTE AS USER 'boss' (SELECT 1)");
    // The inner statement is checked as the target: alice may not read PRIVATE tables.
    allowed("erin", "SELECT * FROM app.private");
    refused("erin", "EXECUTE AS USER 'alice' (SELECT * FROM app.private)");
    refused("carol", "EXECUTE AS USER 'alice' (CREATE NAMESPACE x)");
}

#[test]
fn creating_tables() {
    for user in ["alice", "erin"] {
        allowed(user, "CREATE USER TABLE app.t (id INT)");
        allowed(user, "CREATE STREAM TABLE app.s (id INT) WITH (TTL_SECONDS = 5)");
        allowed(user, "CREATE TABLE app.t (id INT) WITH (TYPE = 'USER')");
    }
    refused("alice", "CREATE SHARED TABLE app.t (id INT)");
    refused("alice", "CREATE TABLE app.t (id INT)");
    refused("alice", "CREATE TABLE app.t (id INT) WITH (TYPE = 'SHARED')");
    allowed("erin", "CREATE SHARED TABLE app.t (id INT)");
    allowed("erin", "CREATE TABLE app.t (id INT)");
}

#[test]
fn altering_tables() {
    refused("alice", "ALTER TABLE app.public ADD COLUMN v TEXT");
    refused("alice", "ALTER TABLE app.notes ADD COLUMN v TEXT");
    refused("alice", "ALTER TABLE app.missing ADD COLUMN v TEXT");
    allowed("erin", "ALTER TABLE app.private ADD COLUMN v TEXT");
    refused("erin", "ALTER TABLE app.notes ADD COLUMN v TEXT");
    refused("erin", "ALTER TABLE app.events SET (TTL_SECONDS = 9)");
    allowed("carol", "ALTER TABLE app.notes ADD COLUMN v TEXT");
}

#[test]
fn reading_shared_tables_by_access_level() {
    for user in ["alice", "erin", "carol", "root"] {
        allowed(user, "SELECT * FROM app.public");
        allowed(user, "DESCRIBE TABLE app.public");
    }
    for t in ["private", "restricted", "plain"] {
        refused("alice", &format!("SELECT * FROM app.{t}"));
        refused("alice", &format!("DESCRIBE TABLE app.{t}"));
        refused("alice", &format!("SHOW STATS FOR TABLE app.{t}"));
        allowed("erin", &format!("SELECT * FROM app.{t}"));
    }
}

#[test]
fn writing_shared_tables() {
    refused("alice", "INSERT INTO app.public VALUES (1)");
    refused("alice", "UPDATE app.public SET id = 1");
    refused("alice", "DELETE FROM app.public");
    for user in ["erin", "carol", "root"] {
        allowed(user, "INSERT INTO app.private VALUES (1)");
        allowed(user, "UPDATE app.public SET id = 1");
        allowed(user, "DELETE FROM app.restricted");
    }
}

#[test]
fn administration_is_dba_and_up() {
    for sql in [
        "DROP TABLE app.notes",
        "CREATE NAMESPACE x",
        "ALTER NAMESPACE app SET OPTIONS (a = 'b')",
        "DROP NAMESPACE app CASCADE",
        "CREATE USER mallory WITH PASSWORD 'x'",
        "ALTER USER bob SET PASSWORD 'x'",
        "DROP USER bob",
        "CREATE STORAGE s TYPE 'filesystem' BASE_DIRECTORY '/tmp'",
        "DROP STORAGE s",
        "SHOW STORAGES",
    ] {
        refused("alice", sql);
        refused("erin", sql);
        allowed("carol", sql);
        allowed("root", sql);
    }
}

#[test]
fn users_and_role_system() {
    allowed("alice", "ALTER USER alice SET PASSWORD 'mine'");
    refused("alice", "ALTER USER alice SET EMAIL 'a@b.io'");
    refused("alice", "ALTER USER alice SET ROLE dba");
    refused("carol", "CREATE USER god WITH PASSWORD 'x' ROLE system");
    allowed("root", "CREATE USER god WITH PASSWORD 'x' ROLE system");
    refused("carol", "ALTER USER carol SET ROLE system");
    refused("carol", "ALTER USER root SET PASSWORD 'x'");
    refused("carol", "DROP USER boss");
    allowed("carol", "ALTER USER erin SET ROLE dba");
    allowed("root", "DROP USER boss");
}

#[test]
fn system_tables_are_dba_and_up_except_own_live_queries() {
    for user in ["alice", "erin"] {
        for t in [
            "users",
            "tables",
            "namespaces",
            "columns",
            "jobs",
            "storages",
            "stats",
            "nope",
        ] {
            refused(user, &format!("SELECT * FROM system.{t}"));
        }
        allowed(user, "SELECT * FROM system.live_queries");
        allowed(user, "SELECT * FROM system.live");
    }
    allowed("carol", "SELECT * FROM system.users");
    allowed("root", "SELECT * FROM system.jobs");
}

#[test]
fn operations_are_service_and_up() {
    for sql in [
        "STORAGE FLUSH TABLE app.public",
        "FLUSH TABLE app.public",
        "KILL JOB 'j1'",
    ] {
        refused("alice", sql);
        allowed("erin", sql);
        allowed("carol", sql);
    }
    // A user may kill its own live queries: whose one is, is checked when it runs.
    allowed("alice", "KILL LIVE QUERY 'q1'");
    allowed("alice", "SUBSCRIBE TO app.notes");
}

#[test]
fn refusals_hold_inside_every_query_form() {
    for hidden in ["app.private", "system.users"] {
        for sql in [
            format!("SELECT * FROM app.public WHERE id IN (SELECT id FROM {hidden})"),
            format!("SELECT * FROM app.notes n JOIN {hidden} p ON true"),
            format!("WITH x AS (SELECT * FROM {hidden}) SELECT * FROM x"),
            format!("SELECT 1 UNION ALL SELECT 1 FROM {hidden}"),
            format!("SELECT (SELECT count(*) FROM {hidden})"),
            format!("SELECT * FROM (SELECT * FROM {hidden}) sub"),
            format!("INSERT INTO app.notes SELECT 1 FROM {hidden}"),
            // Literal rows are checked without a second walk, unless one is not a literal.
            format!("INSERT INTO app.notes VALUES (1), ((SELECT count(*) FROM {hidden}))"),
            format!("INSERT INTO app.notes VALUES (-(SELECT count(*) FROM {hidden}))"),
            format!("INSERT INTO app.notes VALUES (1) RETURNING (SELECT 1 FROM {hidden})"),
            format!("UPDATE app.notes SET id = 1 WHERE EXISTS (SELECT 1 FROM {hidden})"),
            format!("DELETE FROM app.notes WHERE id IN (SELECT 1 FROM {hidden})"),
            format!("EXPLAIN SELECT * FROM {hidden}"),
        ] {
            refused("alice", &sql);
            allowed("carol", &sql);
        }
    }
    // A CTE named like a table hides the table.
    allowed("alice", "USE app; WITH private AS (SELECT 1) SELECT * FROM private");
}

#[test]
fn a_batch_is_checked_whole_in_the_namespaces_its_use_statements_set() {
    refused("alice", "INSERT INTO app.notes VALUES (1); CREATE NAMESPACE x");
    refused("alice", "USE app; SELECT * FROM private");
    allowed("alice", "SELECT * FROM private");
    allowed("alice", "USE app; SELECT * FROM notes");
    // Tables the batch creates are checked when their statements run.
    allowed(
        "erin",
        "CREATE SHARED TABLE app.new (id INT); INSERT INTO app.new VALUES (1)",
    );
}

#[tokio::test]
async fn a_forbidden_statement_in_a_batch_applies_nothing() {
    // The mocks have no expectation for a catalog or row write: reaching one panics.
    let mut alice = session("alice");
    let err = engine()
        .execute(
            &mut alice,
            "CREATE USER TABLE app.t (id INT); INSERT INTO app.notes VALUES (1); DROP TABLE app.notes",
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
}

#[tokio::test]
async fn run_checks_a_statement_that_did_not_go_through_prepare() {
    // The mocks have no expectation for a catalog or row write: reaching one panics.
    let engine = engine();
    for sql in [
        "DROP TABLE app.notes",
        "INSERT INTO app.public VALUES (1)",
        "CREATE NAMESPACE x",
    ] {
        let statement = crate::parser::parse_statements(sql).unwrap().remove(0);
        let err = engine.run(&mut session("alice"), statement, &[]).await.unwrap_err();
        assert!(matches!(err, QueryError::PermissionDenied(_)), "{sql}: {err:?}");
        let statement = crate::parser::parse_statements(sql).unwrap().remove(0);
        let err = engine
            .run_streaming(&mut session("alice"), statement, &[])
            .await
            .unwrap_err();
        assert!(matches!(err, QueryError::PermissionDenied(_)), "{sql}: {err:?}");
    }
}

#[tokio::test]
async fn the_catalog_refuses_tables_the_role_may_not_read() {
    let catalog_for = |user: &str| {
        let s = session(user);
        SessionCatalog::new(TableAccess {
            snapshot: snapshot(),
            rows: Arc::new(MockRowStore::new()),
            live: Arc::new(crate::live::LiveQueries::new()),
            plans: Default::default(),
            cold: None,
            user: s.user,
            role: s.role,
            dml_target: None,
        })
    };
    let alice = catalog_for("alice");
    let app = alice.schema("app").unwrap();
    let err = QueryError::from(app.table("private").await.unwrap_err());
    assert!(matches!(err, QueryError::PermissionDenied(_)), "{err:?}");
    assert!(app.table("public").await.unwrap().is_some());
    assert!(!app.table_exist("plain"));
    let mut names = app.table_names();
    names.sort();
    assert_eq!(names, ["events", "notes", "public"]);
    let system = alice.schema("system").unwrap();
    let err = QueryError::from(system.table("users").await.unwrap_err());
    assert!(matches!(err, QueryError::PermissionDenied(_)), "{err:?}");
    assert!(system.table("live_queries").await.unwrap().is_some());
    assert_eq!(system.table_names(), ["live", "live_queries"]);

    let erin = catalog_for("erin");
    assert!(erin.schema("app").unwrap().table("private").await.unwrap().is_some());
    let err = QueryError::from(erin.schema("system").unwrap().table("tables").await.unwrap_err());
    assert!(matches!(err, QueryError::PermissionDenied(_)), "{err:?}");
    let carol = catalog_for("carol");
    assert!(carol.schema("system").unwrap().table("users").await.unwrap().is_some());
}

#[tokio::test]
async fn the_planner_refuses_a_hidden_table_anywhere_in_a_query() {
    // Past the statement check (as `run` would be without it): the catalog refuses.
    let engine = engine();
    let alice = session("alice");
    for sql in [
        "SELECT * FROM app.public WHERE id IN (SELECT id FROM app.private)",
        "WITH x AS (SELECT * FROM system.users) SELECT * FROM x",
        "SELECT id FROM app.notes UNION SELECT id FROM app.plain",
    ] {
        let Some(Statement::Sql(statement)) = parse_statements(sql).unwrap().pop() else {
            unreachable!("{sql} is standard SQL")
        };
        let state = engine.state_for(&alice, None);
        match engine.query(&state, *statement, &[]).await {
            Err(QueryError::PermissionDenied(message)) => assert_eq!(message, GENERIC_REFUSAL),
            other => panic!("{sql}: {other:?}"),
        }
    }
}

#[test]
fn redaction_makes_refusals_and_not_found_one_generic_error_for_user_and_service() {
    let generic = QueryError::PermissionDenied(GENERIC_REFUSAL.to_owned()).to_string();
    let not_found = || {
        QueryError::Domain(DomainError::TableNotFound {
            table: "app.secret".into(),
        })
    };
    let refusal = || QueryError::PermissionDenied("role dba may not drop user 'root'".into());
    for role in [Role::User, Role::Service] {
        for e in [not_found(), refusal()] {
            let redacted = e.redacted_for(role);
            assert_eq!(redacted.kind(), ErrorKind::PermissionDenied);
            assert_eq!(redacted.to_string(), generic);
        }
        let conflict = QueryError::Domain(DomainError::Constraint("x".into())).redacted_for(role);
        assert_eq!(conflict.kind(), ErrorKind::Conflict);
    }
    for role in [Role::Dba, Role::System] {
        assert!(not_found().redacted_for(role).to_string().contains("app.secret"));
        assert_eq!(refusal().redacted_for(role).kind(), ErrorKind::PermissionDenied);
    }
}

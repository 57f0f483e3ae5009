//! The SQL front end on any text: the bytes as UTF-8 (invalid sequences replaced, so
//! arbitrary bytes count too) go through what `QueryEngine::prepare` does for every
//! `POST /v1/api/sql` before a statement runs: the parser (Calamus's statements layered on
//! sqlparser), then the role check of each statement (following the batch's `USE`), for a
//! session of every role over a small catalog. Each statement of standard SQL is also
//! printed back, as an error's details print it.
//!
//! Checks that nothing panics: the text parses and authorises, or gives an error.
//! Nothing runs, so the check is quick and one input never affects the next.

#![no_main]

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use calamus_domain::model::{
    AccessLevel, ColumnDefinition, Namespace, Role, TableDefinition, TableKind, TableOptions, TableSchema, User,
};
use calamus_domain::{CatalogSnapshot, ColumnName, DataType, NamespaceId, TableId, TableName, UserId};
use calamus_query::authorization::authorize;
use calamus_query::parser::parse_statements;
use calamus_query::{Session, Statement};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let sql = String::from_utf8_lossy(data);
    let Ok(statements) = parse_statements(&sql) else {
        return;
    };
    let snapshot = snapshot();
    for (name, role) in USERS {
        let mut session = Session::new(UserId::new(name).expect("a valid user id"), role);
        for statement in &statements {
            if authorize(snapshot, &session, statement).is_err() {
                break;
            }
            if let Statement::Use { namespace } = statement
                && let Ok(namespace) = NamespaceId::new(&namespace.value)
            {
                session.namespace = namespace;
            }
        }
    }
    for statement in &statements {
        print_back(statement);
    }
});

/// Prints a statement's standard SQL, as an error's details do.
fn print_back(statement: &Statement) {
    match statement {
        Statement::Sql(sql) => drop(sql.to_string()),
        Statement::ExecuteAs { statement, .. } => print_back(statement),
        _ => {}
    }
}

/// The users of the catalog: one of each role.
const USERS: [(&str, Role); 4] = [
    ("root", Role::System),
    ("carol", Role::Dba),
    ("erin", Role::Service),
    ("alice", Role::User),
];

/// Namespaces `default` and `app`; in `app` a table of each kind (and a SHARED table of
/// each access level); the users of [`USERS`].
fn snapshot() -> &'static CatalogSnapshot {
    static SNAPSHOT: OnceLock<CatalogSnapshot> = OnceLock::new();
    SNAPSHOT.get_or_init(build_snapshot)
}

/// The catalog [`snapshot`] holds.
fn build_snapshot() -> CatalogSnapshot {
    let namespaces = ["default", "app"]
        .into_iter()
        .map(|name| {
            let id = NamespaceId::new(name).expect("a valid namespace");
            let namespace = Namespace {
                id: id.clone(),
                options: BTreeMap::new(),
                created_at: 0,
                updated_at: 0,
            };
            (id, namespace)
        })
        .collect();
    let tables = [
        table(1, "notes", TableKind::User, None),
        table(2, "events", TableKind::Stream, None),
        table(3, "public", TableKind::Shared, Some(AccessLevel::Public)),
        table(4, "private", TableKind::Shared, Some(AccessLevel::Private)),
        table(5, "restricted", TableKind::Shared, Some(AccessLevel::Restricted)),
    ]
    .into_iter()
    .map(|t| (t.id.clone(), Arc::new(t)))
    .collect();
    let users = USERS
        .iter()
        .map(|(name, role)| {
            let id = UserId::new(name).expect("a valid user id");
            let user = User {
                id: id.clone(),
                role: *role,
                email: None,
                password_hash: None,
                created_at: 0,
                updated_at: 0,
                deleted_at: None,
            };
            (id, user)
        })
        .collect();
    CatalogSnapshot {
        namespaces,
        tables,
        users,
        ..Default::default()
    }
}

/// The table `app.name` numbered `uid`, of `kind`, with columns `id BIGINT PRIMARY KEY` and
/// `body TEXT`.
fn table(uid: u64, name: &str, kind: TableKind, access_level: Option<AccessLevel>) -> TableDefinition {
    let column = |id: u32, name: &str, data_type: DataType| ColumnDefinition {
        id,
        name: ColumnName::new(name).expect("a valid column name"),
        data_type,
        nullable: id != 1,
        default: None,
        added_in_version: 1,
        missing_value: None,
    };
    TableDefinition {
        id: TableId::new(
            NamespaceId::new("app").expect("a valid namespace"),
            TableName::new(name).expect("a valid table name"),
        ),
        uid,
        kind,
        options: TableOptions {
            access_level,
            ttl_seconds: (kind == TableKind::Stream).then_some(60),
            ..Default::default()
        },
        schemas: vec![TableSchema {
            version: 1,
            columns: vec![column(1, "id", DataType::BigInt), column(2, "body", DataType::Text)],
            primary_key: Some(1),
            created_at: 0,
        }],
        next_column_id: 3,
        created_at: 0,
        updated_at: 0,
    }
}

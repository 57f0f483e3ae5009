//! The roles table of API.md as predicates over roles, tables and users. Roles are ordered
//! `user` < `service` < `dba` < `system`; every rule is "at least role X", except reading
//! another user's rows, which only `EXECUTE AS USER` does.

use calamus_domain::TableId;
use calamus_domain::model::{AccessLevel, Role, TableDefinition, TableKind};

use crate::error::QueryError;

/// The message of every refusal a `user` or `service` caller reads: it names nothing, so
/// that a refusal tells nothing about what exists.
pub const GENERIC_REFUSAL: &str = "your role may not run this statement, or it names something that is not there \
     or not visible to you; check the names, or ask a dba for access";

/// Who may read a SHARED table created without `ACCESS_LEVEL`: the safe choice (KalamDB's
/// too), so a table is never public by omission.
pub const DEFAULT_ACCESS_LEVEL: AccessLevel = AccessLevel::Private;

/// The system tables whose rows belong to a user (their `user_id` column): every role reads
/// its own rows of them.
pub const USER_OWNED_SYSTEM_TABLES: &[&str] = &["live_queries", "live"];

/// A refusal for a caller with `role`: `detail`, which may name things, for dba and system,
/// who may see every name; the [`GENERIC_REFUSAL`] for user and service.
pub fn denied(role: Role, detail: impl FnOnce() -> String) -> QueryError {
    if role >= Role::Dba {
        QueryError::PermissionDenied(detail())
    } else {
        QueryError::PermissionDenied(GENERIC_REFUSAL.to_owned())
    }
}

/// Refuses a write to (or DDL of) `table` when it is a system table: they are read-only for
/// every role.
pub fn writable(role: Role, table: &TableId) -> Result<(), QueryError> {
    if table.namespace.is_reserved() {
        return Err(denied(role, || format!("{table} is a system table and is read-only")));
    }
    Ok(())
}

/// The access level of a table (SHARED tables; USER and STREAM tables have none).
pub fn access_level(table: &TableDefinition) -> AccessLevel {
    table.options.access_level.unwrap_or(DEFAULT_ACCESS_LEVEL)
}

/// Whether `role` may read `table`: its own rows of a USER or STREAM table; a SHARED table
/// if it is PUBLIC or the role is service or above.
pub fn may_read(role: Role, table: &TableDefinition) -> bool {
    match table.kind {
        TableKind::User | TableKind::Stream => true,
        TableKind::Shared => role >= Role::Service || access_level(table) == AccessLevel::Public,
    }
}

/// Whether `role` may INSERT, UPDATE and DELETE in `table`: its own rows of a USER or STREAM
/// table; a SHARED table from service up, whatever its access level.
pub fn may_write(role: Role, table: &TableDefinition) -> bool {
    match table.kind {
        TableKind::User | TableKind::Stream => true,
        TableKind::Shared => role >= Role::Service,
    }
}

/// Whether `role` may create a table of `kind`: USER and STREAM tables every role, SHARED
/// tables service and up.
pub fn may_create_table(role: Role, kind: TableKind) -> bool {
    match kind {
        TableKind::User | TableKind::Stream => true,
        TableKind::Shared => role >= Role::Service,
    }
}

/// Whether `role` may ALTER a table of `kind`: SHARED tables service and up; the schema of a
/// USER or STREAM table is every user's, so dba and up.
pub fn may_alter_table(role: Role, kind: TableKind) -> bool {
    match kind {
        TableKind::Shared => role >= Role::Service,
        TableKind::User | TableKind::Stream => role >= Role::Dba,
    }
}

/// Whether `role` may administer the catalog: drop tables, create, alter and drop
/// namespaces, users and storages.
pub fn may_administer(role: Role) -> bool {
    role >= Role::Dba
}

/// Whether `role` may run operations: flush tables, kill jobs, kill any live query.
pub fn may_operate(role: Role) -> bool {
    role >= Role::Service
}

/// Whether `role` may give a user role `target` (CREATE USER, ALTER USER SET ROLE), or
/// change or drop a user that has it: dba and up, and only system touches role system.
pub fn may_manage_user_with(role: Role, target: Role) -> bool {
    may_administer(role) && (target != Role::System || role == Role::System)
}

/// Whether a `caller` may run a statement as a user with role `target` (`EXECUTE AS
/// USER`): service for users and services, dba for up to dba, system for anyone.
pub fn may_execute_as(caller: Role, target: Role) -> bool {
    match caller {
        Role::System => true,
        Role::Dba => target <= Role::Dba,
        Role::Service => target <= Role::Service,
        Role::User => false,
    }
}

/// How much of a system table a role reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SystemTableAccess {
    /// Every row (dba and system).
    All,
    /// The rows whose `user_id` is the caller's ([`USER_OWNED_SYSTEM_TABLES`]).
    OwnRows,
    /// Nothing: reading it is refused.
    Nothing,
}

/// How much of system table `name` `role` reads. A name that is no system table gets
/// [`SystemTableAccess::Nothing`] below dba, so a refusal never tells which names exist.
pub fn system_table_access(role: Role, name: &str) -> SystemTableAccess {
    if role >= Role::Dba {
        SystemTableAccess::All
    } else if USER_OWNED_SYSTEM_TABLES.contains(&name) {
        SystemTableAccess::OwnRows
    } else {
        SystemTableAccess::Nothing
    }
}

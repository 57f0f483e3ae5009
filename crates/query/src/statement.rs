//! The statements Calamus runs: its own, and standard SQL parsed by sqlparser.

use calamus_domain::model::TableKind;
use datafusion::sql::sqlparser::ast::{CreateTable, Expr, Ident, ObjectName, Statement as SqlStatement};

use crate::dml::literal_insert::LiteralInsert;

/// A change `ALTER USER` makes.
#[derive(Debug, Clone, PartialEq)]
pub enum UserChange {
    /// `SET PASSWORD 'x'`.
    Password(String),
    /// `SET ROLE r`.
    Role(String),
    /// `SET EMAIL 'x'`.
    Email(String),
}

/// A statement this version parses but cannot run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnavailableFeature {
    /// `SUBSCRIBE TO ...` (live queries are served over WebSocket).
    Subscribe,
}

/// One parsed statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    /// `CREATE NAMESPACE [IF NOT EXISTS] ns`.
    CreateNamespace { name: Ident, if_not_exists: bool },
    /// `ALTER NAMESPACE ns SET OPTIONS (k = 'v', ...)`.
    AlterNamespace {
        name: Ident,
        options: Vec<(String, String)>,
    },
    /// `DROP NAMESPACE [IF EXISTS] ns [RESTRICT | CASCADE]`.
    DropNamespace {
        name: Ident,
        if_exists: bool,
        cascade: bool,
    },
    /// `SHOW NAMESPACES`.
    ShowNamespaces,
    /// `KILL LIVE QUERY '<live_id>'`.
    KillLiveQuery { live_id: String },
    /// `KILL JOB '<job_id>'`.
    KillJob { job_id: String },
    /// `BACKUP DATABASE TO '<path>'`: a consistent copy of the whole database.
    BackupDatabase { path: String },
    /// `CREATE STORAGE [IF NOT EXISTS] id TYPE 'filesystem' BASE_DIRECTORY '...'
    /// [SHARED_TABLES_TEMPLATE '...'] [USER_TABLES_TEMPLATE '...']`: options by upper-case
    /// name.
    CreateStorage {
        name: Ident,
        if_not_exists: bool,
        options: Vec<(String, String)>,
    },
    /// `ALTER STORAGE id SET OPTION 'value' [, ...]`.
    AlterStorage {
        name: Ident,
        options: Vec<(String, String)>,
    },
    /// `DROP STORAGE [IF EXISTS] id`.
    DropStorage { name: Ident, if_exists: bool },
    /// `SHOW STORAGES`.
    ShowStorages,
    /// `FLUSH TABLE t` / `STORAGE FLUSH TABLE t` (`table`), or `STORAGE FLUSH ALL [IN ns]`.
    Flush {
        table: Option<ObjectName>,
        namespace: Option<Ident>,
    },
    /// `STORAGE COMPACT TABLE t` (`table`), or `STORAGE COMPACT ALL [IN ns]`.
    Compact {
        table: Option<ObjectName>,
        namespace: Option<Ident>,
    },
    /// `USE [NAMESPACE] ns`.
    Use { namespace: Ident },
    /// `CREATE [USER | SHARED | STREAM] TABLE ...`, with the older trailing option forms
    /// (`FLUSH ROWS n`, `TTL n`, `BUFFER_SIZE n`) collected as `legacy_options`.
    CreateTable {
        kind: Option<TableKind>,
        create: Box<CreateTable>,
        legacy_options: Vec<(String, Expr)>,
    },
    /// `DROP [USER | SHARED | STREAM] TABLE [IF EXISTS] t`.
    DropTable {
        kind: Option<TableKind>,
        name: ObjectName,
        if_exists: bool,
    },
    /// `SHOW TABLES [IN ns]`.
    ShowTables { namespace: Option<Ident> },
    /// `DESCRIBE TABLE t [HISTORY]`.
    DescribeTable { name: ObjectName, history: bool },
    /// `SHOW STATS FOR TABLE t`.
    ShowStats { name: ObjectName },
    /// `CREATE USER [IF NOT EXISTS] u WITH PASSWORD 'p' [ROLE r] [EMAIL 'e']`.
    CreateUser {
        name: Ident,
        if_not_exists: bool,
        password: Option<String>,
        role: Option<String>,
        email: Option<String>,
    },
    /// `ALTER USER u SET ...`.
    AlterUser { name: Ident, change: UserChange },
    /// `DROP USER [IF EXISTS] u`.
    DropUser { name: Ident, if_exists: bool },
    /// `EXECUTE AS USER 'u' (statement)`.
    ExecuteAs { user: String, statement: Box<Statement> },
    /// `CREATE INDEX` / `DROP INDEX`: accepted, builds nothing (see docs/sql.md).
    Index { table: Option<ObjectName>, create: bool },
    /// A statement of a feature this version does not have (live queries, storages,
    /// flushing, jobs): parsed so that it is authorised like the real one and the error can
    /// say exactly what is missing.
    NotAvailable { feature: UnavailableFeature },
    /// `INSERT INTO t [(cols)] VALUES ...` of plain literal rows, read straight into
    /// columns (see [`crate::dml::literal_insert`]); any other INSERT is [`Self::Sql`].
    InsertLiteralRows(Box<LiteralInsert>),
    /// Standard SQL: queries, INSERT, UPDATE, DELETE, ALTER TABLE, EXPLAIN.
    Sql(Box<SqlStatement>),
}

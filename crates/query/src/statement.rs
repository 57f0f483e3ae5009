//! The statements Calamus runs: its own, and standard SQL parsed by sqlparser.

use calamus_domain::model::TableKind;
use datafusion::sql::sqlparser::ast::{CreateTable, Expr, Ident, ObjectName, Statement as SqlStatement};

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
    /// flushing, jobs): parsed so the error can say exactly that.
    NotAvailable { feature: &'static str },
    /// Standard SQL: queries, INSERT, UPDATE, DELETE, ALTER TABLE, EXPLAIN.
    Sql(Box<SqlStatement>),
}

//! The catalog and the rows against a plain in-memory model.
//!
//! Random sequences of CREATE/DROP NAMESPACE, CREATE/DROP/ALTER TABLE and
//! INSERT/UPDATE/DELETE by several users run through SQL, with the database closed and
//! reopened at random points. The model predicts whether each statement succeeds and, if
//! not, the kind of its error; after every step the system tables, SHOW output, DESCRIBE,
//! DataFusion's catalog and the rows each user reads must equal the model's. Names come
//! from small pools so that collisions (already exists, duplicate key, missing table or
//! column, non-empty namespace) happen often.
//!
//! Both backends run it. `PROPTEST_CASES` raises the number of cases and
//! `CALAMUS_MODEL_OPS` the length of the sequences; `CALAMUS_MODEL_LOG=1` prints the SQL
//! of every case. A failure shows the shrunk sequence and the SQL it ran.

// The model's tables of rows are nested maps; naming each level would not make them clearer.
#![allow(clippy::type_complexity)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;

use calamus::{Database, StorageBackend};
use calamus_query::{ErrorKind, QueryError, Session, StatementOutput};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};
use tempfile::TempDir;
use tokio::runtime::Runtime;

const NAMESPACES: [&str; 3] = ["n0", "n1", "n2"];
const TABLES: [&str; 3] = ["t0", "t1", "t2"];
const COLUMNS: [&str; 6] = ["id", "c0", "c1", "c2", "c3", "c4"];
const USERS: [&str; 3] = ["u0", "u1", "u2"];
/// Who writes USER tables: the users and root, which has a partition of its own.
const WRITERS: [&str; 4] = ["u0", "u1", "u2", "root"];
const ROOT: &str = "root";
/// The partition of a SHARED table in the model.
const SHARED: &str = "";
const TEXTS: [&str; 4] = ["a", "b", "o'k", ""];
/// Primary keys are drawn from KEYS (negative ones check the key encoding's order).
const KEYS: std::ops::Range<i64> = -2..4;

// ---------------------------------------------------------------------------------------
// The model

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    User,
    Shared,
}

impl Kind {
    fn sql(self) -> &'static str {
        match self {
            Kind::User => "USER",
            Kind::Shared => "SHARED",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ty {
    BigInt,
    Int,
    Text,
}

impl Ty {
    fn sql(self) -> &'static str {
        match self {
            Ty::BigInt => "BIGINT",
            Ty::Int => "INT",
            Ty::Text => "TEXT",
        }
    }

    /// The value a generated seed stands for in a column of this type.
    fn value(self, seed: u8) -> Lit {
        match self {
            Ty::BigInt => Lit::Int(KEYS.start + i64::from(seed) % (KEYS.end - KEYS.start)),
            Ty::Int => Lit::Int(i64::from(seed % 7) - 2),
            Ty::Text => Lit::Text(TEXTS[usize::from(seed) % TEXTS.len()].to_owned()),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Lit {
    Int(i64),
    Text(String),
}

impl Lit {
    fn sql(&self) -> String {
        match self {
            Lit::Int(i) => i.to_string(),
            Lit::Text(s) => format!("'{}'", s.replace('\'', "''")),
        }
    }

    /// As a SELECT shows it.
    fn shown(&self) -> String {
        match self {
            Lit::Int(i) => i.to_string(),
            Lit::Text(s) => s.clone(),
        }
    }
}

fn sql_value(value: &Option<Lit>) -> String {
    value.as_ref().map_or_else(|| "NULL".to_owned(), Lit::sql)
}

#[derive(Clone, Debug)]
struct ColumnModel {
    name: &'static str,
    ty: Ty,
    default: Option<Lit>,
    not_null: bool,
}

impl ColumnModel {
    fn sql(&self) -> String {
        let mut s = format!("{} {}", self.name, self.ty.sql());
        if self.not_null {
            s.push_str(" NOT NULL");
        }
        if let Some(d) = &self.default {
            write!(s, " DEFAULT {}", d.sql()).unwrap();
        }
        s
    }
}

/// A row: one value per column, the primary key first.
type Row = Vec<Option<Lit>>;

/// One partition's rows: live and soft-deleted ones (a key is in at most one of the two),
/// and for each key the model's clock when its last version was written.
#[derive(Clone, Debug, Default)]
struct PartitionModel {
    live: BTreeMap<i64, Row>,
    deleted: BTreeMap<i64, Row>,
    written: BTreeMap<i64, u64>,
}

impl PartitionModel {
    fn put(&mut self, key: i64, row: Row, now: u64) {
        self.deleted.remove(&key);
        self.live.insert(key, row);
        self.written.insert(key, now);
    }

    fn delete(&mut self, key: i64, row: Row, now: u64) {
        self.live.remove(&key);
        self.deleted.insert(key, row);
        self.written.insert(key, now);
    }
}

#[derive(Clone, Debug)]
struct TableModel {
    kind: Kind,
    /// The primary key is always the first column: it cannot be dropped, and added
    /// columns go last.
    columns: Vec<ColumnModel>,
    version: u64,
    /// Rows by partition: the writing user, or `SHARED`.
    rows: BTreeMap<&'static str, PartitionModel>,
}

impl TableModel {
    fn position(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    fn pk(&self) -> &'static str {
        self.columns[0].name
    }

    fn partition(&self, writer: &'static str) -> &'static str {
        match self.kind {
            Kind::User => writer,
            Kind::Shared => SHARED,
        }
    }

    fn has_rows(&self) -> bool {
        self.rows.values().any(|p| !p.live.is_empty())
    }

    /// Whether a live row holds NULL in the column at `position`.
    fn has_null(&self, position: usize) -> bool {
        self.rows
            .values()
            .flat_map(|p| p.live.values())
            .any(|row| row[position].is_none())
    }

    /// Every stored row, live or deleted: what an ALTER changes.
    fn all_rows_mut(&mut self) -> impl Iterator<Item = &mut Row> {
        self.rows
            .values_mut()
            .flat_map(|p| p.live.values_mut().chain(p.deleted.values_mut()))
    }

    /// A NULL where the table forbids one.
    fn violates_not_null(&self, row: &Row) -> bool {
        row.iter()
            .zip(&self.columns)
            .enumerate()
            .any(|(i, (v, c))| v.is_none() && (i == 0 || c.not_null))
    }
}

#[derive(Clone, Debug, Default)]
struct Model {
    namespaces: BTreeMap<&'static str, BTreeMap<&'static str, TableModel>>,
    /// Counts the statements that wrote rows: rows written later carry a larger `_seq`.
    clock: u64,
}

impl Model {
    fn table(&self, ns: &str, t: &str) -> Option<&TableModel> {
        self.namespaces.get(ns)?.get(t)
    }

    fn table_mut(&mut self, ns: &str, t: &str) -> &mut TableModel {
        self.namespaces
            .get_mut(ns)
            .and_then(|n| n.get_mut(t))
            .expect("the model checked that the table exists")
    }

    fn tables(&self) -> Vec<(&'static str, &'static str, &TableModel)> {
        self.namespaces
            .iter()
            .flat_map(|(ns, tables)| tables.iter().map(|(t, table)| (*ns, *t, table)))
            .collect()
    }
}

// ---------------------------------------------------------------------------------------
// Operations

/// A namespace: mostly one the model holds (so tables get created), sometimes any name.
#[derive(Clone, Debug)]
enum NamespaceRef {
    Existing(usize),
    Named(usize),
}

fn namespace_ref() -> impl Strategy<Value = NamespaceRef> {
    prop_oneof![
        4 => (0..NAMESPACES.len()).prop_map(NamespaceRef::Existing),
        1 => (0..NAMESPACES.len()).prop_map(NamespaceRef::Named),
    ]
}

/// A table: mostly one the model holds (so statements reach it), sometimes any name.
#[derive(Clone, Debug)]
enum TableRef {
    Existing(usize),
    Named(usize, usize),
}

/// A column of the target table: mostly one it has, sometimes any name of the pool.
#[derive(Clone, Debug)]
enum ColumnRef {
    Existing(usize),
    Named(usize),
}

#[derive(Clone, Debug)]
struct ColumnSpec {
    name: usize,
    ty: Ty,
    default: Option<u8>,
    not_null: bool,
}

impl ColumnSpec {
    fn model(&self) -> ColumnModel {
        ColumnModel {
            name: COLUMNS[self.name],
            ty: self.ty,
            default: self.default.map(|s| self.ty.value(s)),
            not_null: self.not_null,
        }
    }
}

#[derive(Clone, Debug)]
enum Filter {
    All,
    KeyEq(i64),
    KeyNe(i64),
    KeyBelow(i64),
    KeyAtLeast(i64),
    /// `pk BETWEEN a AND b`.
    KeyBetween(i64, i64),
    /// `pk < a OR pk > b`.
    KeyOutside(i64, i64),
    KeyIn(Vec<i64>),
    IsNull(ColumnRef),
    /// `c = value`, the value typed as the column is.
    ColumnEq(ColumnRef, u8),
}

#[derive(Clone, Debug)]
enum Assign {
    /// `SET c = value` (a NULL when the seed is `None`).
    Value(ColumnRef, Option<u8>),
    /// `SET pk = k`.
    KeyTo(i64),
    /// `SET pk = pk + 1`.
    KeyShift,
}

#[derive(Clone, Debug)]
enum ColumnChange {
    SetDefault(u8),
    DropDefault,
    SetNotNull,
    DropNotNull,
}

#[derive(Clone, Debug)]
enum Op {
    CreateNamespace {
        ns: usize,
        if_not_exists: bool,
    },
    DropNamespace {
        ns: NamespaceRef,
        if_exists: bool,
        cascade: bool,
    },
    CreateTable {
        ns: NamespaceRef,
        table: usize,
        kind: Kind,
        /// 0: `CREATE USER TABLE`; 1: `WITH (TYPE = ...)`; 2: no kind for SHARED.
        syntax: u8,
        pk: usize,
        columns: Vec<ColumnSpec>,
        if_not_exists: bool,
    },
    DropTable {
        target: TableRef,
        if_exists: bool,
        prefix: Option<Kind>,
    },
    AddColumn {
        target: TableRef,
        column: ColumnSpec,
    },
    DropColumn {
        target: TableRef,
        column: ColumnRef,
    },
    RenameColumn {
        target: TableRef,
        column: ColumnRef,
        to: usize,
    },
    AlterColumn {
        target: TableRef,
        column: ColumnRef,
        change: ColumnChange,
    },
    Insert {
        writer: usize,
        target: TableRef,
        /// `None`: no column list (every column in order).
        columns: Option<Vec<ColumnRef>>,
        /// Leave the primary key out of the column list.
        omit_key: bool,
        /// (key, one seed per further column; `None` is NULL).
        rows: Vec<(i64, Vec<Option<u8>>)>,
    },
    Update {
        writer: usize,
        target: TableRef,
        assign: Assign,
        filter: Filter,
    },
    Delete {
        writer: usize,
        target: TableRef,
        filter: Filter,
    },
    /// A read whose rows the model predicts: the live ones, or the deleted ones.
    Select {
        reader: usize,
        target: TableRef,
        filter: Filter,
        deleted: bool,
    },
}

/// What a test step does: one statement (perhaps written with upper-case names, or as
/// `USE ns` and an unqualified name), two statements in one batch, or a restart.
#[derive(Clone, Debug)]
enum Action {
    Run { op: Op, upper: bool, use_namespace: bool },
    Batch(Op, Op),
    Reopen,
}

fn table_ref() -> impl Strategy<Value = TableRef> {
    prop_oneof![
        6 => (0..9usize).prop_map(TableRef::Existing),
        1 => (0..NAMESPACES.len(), 0..TABLES.len()).prop_map(|(n, t)| TableRef::Named(n, t)),
    ]
}

fn column_ref() -> impl Strategy<Value = ColumnRef> {
    prop_oneof![
        4 => (0..8usize).prop_map(ColumnRef::Existing),
        1 => (0..COLUMNS.len()).prop_map(ColumnRef::Named),
    ]
}

fn column_spec() -> impl Strategy<Value = ColumnSpec> {
    (
        0..COLUMNS.len(),
        prop_oneof![Just(Ty::Int), Just(Ty::Text)],
        proptest::option::weighted(0.3, any::<u8>()),
        proptest::bool::weighted(0.1),
    )
        .prop_map(|(name, ty, default, not_null)| ColumnSpec {
            name,
            ty,
            default,
            not_null,
        })
}

fn filter() -> impl Strategy<Value = Filter> {
    prop_oneof![
        3 => Just(Filter::All),
        4 => KEYS.prop_map(Filter::KeyEq),
        1 => KEYS.prop_map(Filter::KeyNe),
        2 => KEYS.prop_map(Filter::KeyBelow),
        2 => KEYS.prop_map(Filter::KeyAtLeast),
        1 => (KEYS, KEYS).prop_map(|(a, b)| Filter::KeyBetween(a, b)),
        1 => (KEYS, KEYS).prop_map(|(a, b)| Filter::KeyOutside(a, b)),
        1 => proptest::collection::vec(KEYS, 1..4).prop_map(Filter::KeyIn),
        1 => column_ref().prop_map(Filter::IsNull),
        2 => (column_ref(), any::<u8>()).prop_map(|(c, v)| Filter::ColumnEq(c, v)),
    ]
}

fn seed() -> impl Strategy<Value = Option<u8>> {
    proptest::option::weighted(0.85, any::<u8>())
}

fn op() -> impl Strategy<Value = Op> {
    let kind = prop_oneof![Just(Kind::User), Just(Kind::Shared)];
    prop_oneof![
        2 => (0..NAMESPACES.len(), proptest::bool::weighted(0.2))
            .prop_map(|(ns, if_not_exists)| Op::CreateNamespace { ns, if_not_exists }),
        1 => (namespace_ref(), any::<bool>(), any::<bool>())
            .prop_map(|(ns, if_exists, cascade)| Op::DropNamespace { ns, if_exists, cascade }),
        5 => (
            namespace_ref(),
            0..TABLES.len(),
            kind.clone(),
            0..3u8,
            prop_oneof![4 => Just(0usize), 1 => 0..COLUMNS.len()],
            proptest::collection::vec(column_spec(), 0..4),
            proptest::bool::weighted(0.2),
        )
            .prop_map(|(ns, table, kind, syntax, pk, columns, if_not_exists)| Op::CreateTable {
                ns,
                table,
                kind,
                syntax,
                pk,
                columns,
                if_not_exists,
            }),
        1 => (table_ref(), proptest::bool::weighted(0.3), proptest::option::weighted(0.3, kind))
            .prop_map(|(target, if_exists, prefix)| Op::DropTable { target, if_exists, prefix }),
        2 => (table_ref(), column_spec()).prop_map(|(target, column)| Op::AddColumn { target, column }),
        1 => (table_ref(), column_ref()).prop_map(|(target, column)| Op::DropColumn { target, column }),
        1 => (table_ref(), column_ref(), 0..COLUMNS.len())
            .prop_map(|(target, column, to)| Op::RenameColumn { target, column, to }),
        8 => (
            0..WRITERS.len(),
            table_ref(),
            proptest::option::weighted(0.6, proptest::collection::vec(column_ref(), 0..4)),
            proptest::bool::weighted(0.05),
            proptest::collection::vec((KEYS, proptest::collection::vec(seed(), 6)), 1..4),
        )
            .prop_map(|(writer, target, columns, omit_key, rows)| Op::Insert {
                writer,
                target,
                columns,
                omit_key,
                rows,
            }),
        4 => (
            0..WRITERS.len(),
            table_ref(),
            prop_oneof![
                5 => (column_ref(), seed()).prop_map(|(c, v)| Assign::Value(c, v)),
                1 => KEYS.prop_map(Assign::KeyTo),
                1 => Just(Assign::KeyShift),
            ],
            filter(),
        )
            .prop_map(|(writer, target, assign, filter)| Op::Update {
                writer,
                target,
                assign,
                filter,
            }),
        2 => (0..WRITERS.len(), table_ref(), filter())
            .prop_map(|(writer, target, filter)| Op::Delete { writer, target, filter }),
        3 => (0..WRITERS.len(), table_ref(), filter(), proptest::bool::weighted(0.3))
            .prop_map(|(reader, target, filter, deleted)| Op::Select { reader, target, filter, deleted }),
        1 => (
            table_ref(),
            column_ref(),
            prop_oneof![
                any::<u8>().prop_map(ColumnChange::SetDefault),
                Just(ColumnChange::DropDefault),
                Just(ColumnChange::SetNotNull),
                Just(ColumnChange::DropNotNull),
            ],
        )
            .prop_map(|(target, column, change)| Op::AlterColumn { target, column, change }),
    ]
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        20 => (op(), proptest::bool::weighted(0.1), proptest::bool::weighted(0.1))
            .prop_map(|(op, upper, use_namespace)| Action::Run { op, upper, use_namespace }),
        2 => (op(), op()).prop_map(|(a, b)| Action::Batch(a, b)),
        1 => Just(Action::Reopen),
    ]
}

// ---------------------------------------------------------------------------------------
// What the model predicts for an operation

/// One statement: who runs it, its SQL, the table it names, and the model after it (or
/// the error's kind).
struct Step {
    user: &'static str,
    sql: String,
    table: Option<(&'static str, &'static str)>,
    expect: Result<Model, ErrorKind>,
    /// The rows a query returns.
    rows: Option<Cells>,
}

/// Rows as text, `None` for NULL.
type Cells = Vec<Vec<Option<String>>>;

/// The namespace an operation names.
fn resolve_namespace(model: &Model, ns: &NamespaceRef) -> &'static str {
    match ns {
        NamespaceRef::Existing(i) if !model.namespaces.is_empty() => model
            .namespaces
            .keys()
            .nth(i % model.namespaces.len())
            .expect("in range"),
        NamespaceRef::Existing(i) | NamespaceRef::Named(i) => NAMESPACES[*i],
    }
}

/// The table an operation names: (namespace, table, its model if it exists).
fn resolve<'m>(model: &'m Model, target: &TableRef) -> (&'static str, &'static str, Option<&'m TableModel>) {
    let (ns, t) = match target {
        TableRef::Existing(i) => {
            let tables = model.tables();
            if tables.is_empty() {
                (
                    NAMESPACES[i % NAMESPACES.len()],
                    TABLES[i / NAMESPACES.len() % TABLES.len()],
                )
            } else {
                let (ns, t, _) = tables[i % tables.len()];
                (ns, t)
            }
        }
        TableRef::Named(n, t) => (NAMESPACES[*n], TABLES[*t]),
    };
    (ns, t, model.table(ns, t))
}

fn column_name(table: Option<&TableModel>, column: &ColumnRef) -> &'static str {
    match (column, table) {
        (ColumnRef::Existing(i), Some(table)) => table.columns[i % table.columns.len()].name,
        (ColumnRef::Existing(i), None) => COLUMNS[i % COLUMNS.len()],
        (ColumnRef::Named(i), _) => COLUMNS[*i],
    }
}

/// What a WHERE clause keeps of a row.
type Predicate = Box<dyn Fn(&Row) -> bool>;

/// The condition of a WHERE clause (`None`: no clause) and the predicate it stands for
/// (`Err` when it names a missing column).
fn condition(table: Option<&TableModel>, filter: &Filter) -> (Option<String>, Result<Predicate, ErrorKind>) {
    let pk = table.map_or("id", TableModel::pk);
    fn key(row: &Row) -> i64 {
        match &row[0] {
            Some(Lit::Int(k)) => *k,
            other => panic!("the model holds a row with key {other:?}"),
        }
    }
    let on_key = |sql: String, f: Box<dyn Fn(i64) -> bool>| -> (Option<String>, Result<Predicate, ErrorKind>) {
        (Some(sql), Ok(Box::new(move |row: &Row| f(key(row)))))
    };
    match filter {
        Filter::All => (None, Ok(Box::new(|_| true))),
        &Filter::KeyEq(k) => on_key(format!("{pk} = {k}"), Box::new(move |r| r == k)),
        &Filter::KeyNe(k) => on_key(format!("{pk} <> {k}"), Box::new(move |r| r != k)),
        &Filter::KeyBelow(k) => on_key(format!("{pk} < {k}"), Box::new(move |r| r < k)),
        &Filter::KeyAtLeast(k) => on_key(format!("{pk} >= {k}"), Box::new(move |r| r >= k)),
        &Filter::KeyBetween(a, b) => on_key(format!("{pk} BETWEEN {a} AND {b}"), Box::new(move |r| a <= r && r <= b)),
        &Filter::KeyOutside(a, b) => on_key(format!("({pk} < {a} OR {pk} > {b})"), Box::new(move |r| r < a || r > b)),
        Filter::KeyIn(keys) => {
            let list: Vec<String> = keys.iter().map(i64::to_string).collect();
            let keys = keys.clone();
            on_key(
                format!("{pk} IN ({})", list.join(", ")),
                Box::new(move |r| keys.contains(&r)),
            )
        }
        Filter::IsNull(column) => {
            let name = column_name(table, column);
            let sql = Some(format!("{name} IS NULL"));
            match table.and_then(|t| t.position(name)) {
                Some(i) => (sql, Ok(Box::new(move |r: &Row| r[i].is_none()))),
                None => (sql, Err(ErrorKind::Execution)),
            }
        }
        Filter::ColumnEq(column, seed) => {
            let name = column_name(table, column);
            match table.and_then(|t| t.position(name).map(|i| (i, t.columns[i].ty))) {
                Some((i, ty)) => {
                    let value = ty.value(*seed);
                    let sql = Some(format!("{name} = {}", value.sql()));
                    (sql, Ok(Box::new(move |r: &Row| r[i].as_ref() == Some(&value))))
                }
                None => (
                    Some(format!("{name} = {}", Ty::Int.value(*seed).sql())),
                    Err(ErrorKind::Execution),
                ),
            }
        }
    }
}

fn where_clause(table: Option<&TableModel>, filter: &Filter) -> (String, Result<Predicate, ErrorKind>) {
    let (sql, predicate) = condition(table, filter);
    (sql.map_or_else(String::new, |c| format!(" WHERE {c}")), predicate)
}

/// The table a statement names, for writing it as `USE ns` and an unqualified name.
fn named_table(model: &Model, op: &Op) -> Option<(&'static str, &'static str)> {
    match op {
        Op::CreateNamespace { .. } | Op::DropNamespace { .. } => None,
        Op::CreateTable { ns, table, .. } => Some((resolve_namespace(model, ns), TABLES[*table])),
        Op::DropTable { target, .. }
        | Op::AddColumn { target, .. }
        | Op::DropColumn { target, .. }
        | Op::RenameColumn { target, .. }
        | Op::AlterColumn { target, .. }
        | Op::Insert { target, .. }
        | Op::Update { target, .. }
        | Op::Delete { target, .. }
        | Op::Select { target, .. } => {
            let (ns, t, _) = resolve(model, target);
            Some((ns, t))
        }
    }
}

/// Who runs a DML statement or query on `table`: root for a SHARED table (users may not
/// write one), else the chosen user.
fn actor(table: Option<&TableModel>, user: usize) -> &'static str {
    match table.map(|t| t.kind) {
        Some(Kind::Shared) => ROOT,
        _ => WRITERS[user],
    }
}

impl Step {
    /// A statement `user` runs, expected to give `expect`, returning no rows.
    fn new(user: &'static str, sql: String, expect: Result<Model, ErrorKind>) -> Self {
        Self {
            user,
            sql,
            table: None,
            expect,
            rows: None,
        }
    }
}

fn step(model: &Model, op: &Op) -> Step {
    let table = named_table(model, op);
    let mut step = statement(model, op);
    step.table = table;
    step
}

fn statement(model: &Model, op: &Op) -> Step {
    let root = |sql: String, expect| Step::new(ROOT, sql, expect);
    let mut next = model.clone();
    match op {
        Op::CreateNamespace { ns, if_not_exists } => {
            let ns = NAMESPACES[*ns];
            let ine = if *if_not_exists { "IF NOT EXISTS " } else { "" };
            let expect = if model.namespaces.contains_key(ns) {
                if *if_not_exists {
                    Ok(next)
                } else {
                    Err(ErrorKind::Conflict)
                }
            } else {
                next.namespaces.insert(ns, BTreeMap::new());
                Ok(next)
            };
            root(format!("CREATE NAMESPACE {ine}{ns}"), expect)
        }
        Op::DropNamespace { ns, if_exists, cascade } => {
            let ns = resolve_namespace(model, ns);
            let sql = format!(
                "DROP NAMESPACE {}{ns}{}",
                if *if_exists { "IF EXISTS " } else { "" },
                if *cascade { " CASCADE" } else { "" }
            );
            let expect = match model.namespaces.get(ns) {
                None if *if_exists => Ok(next),
                None => Err(ErrorKind::NotFound),
                Some(tables) if !tables.is_empty() && !cascade => Err(ErrorKind::Conflict),
                Some(_) => {
                    next.namespaces.remove(ns);
                    Ok(next)
                }
            };
            root(sql, expect)
        }
        Op::CreateTable {
            ns,
            table,
            kind,
            syntax,
            pk,
            columns,
            if_not_exists,
        } => {
            let (ns, t) = (resolve_namespace(model, ns), TABLES[*table]);
            let mut defined = vec![ColumnModel {
                name: COLUMNS[*pk],
                ty: Ty::BigInt,
                default: None,
                not_null: true,
            }];
            for spec in columns {
                if defined.iter().all(|c| c.name != COLUMNS[spec.name]) {
                    defined.push(spec.model());
                }
            }
            let body: Vec<String> = defined
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    if i == 0 {
                        format!("{} BIGINT PRIMARY KEY", c.name)
                    } else {
                        c.sql()
                    }
                })
                .collect();
            let (prefix, with) = match (syntax, kind) {
                (2, Kind::Shared) => ("", String::new()),
                (1, _) => ("", format!(" WITH (TYPE = '{}')", kind.sql())),
                _ => (kind.sql(), String::new()),
            };
            let sql = format!(
                "CREATE {prefix}{}TABLE {}{ns}.{t} ({}){with}",
                if prefix.is_empty() { "" } else { " " },
                if *if_not_exists { "IF NOT EXISTS " } else { "" },
                body.join(", ")
            );
            let expect = match model.namespaces.get(ns) {
                None => Err(ErrorKind::NotFound),
                Some(tables) if tables.contains_key(t) => {
                    if *if_not_exists {
                        Ok(next)
                    } else {
                        Err(ErrorKind::Conflict)
                    }
                }
                Some(_) => {
                    next.namespaces.get_mut(ns).expect("checked").insert(
                        t,
                        TableModel {
                            kind: *kind,
                            columns: defined,
                            version: 1,
                            rows: BTreeMap::new(),
                        },
                    );
                    Ok(next)
                }
            };
            root(sql, expect)
        }
        Op::DropTable {
            target,
            if_exists,
            prefix,
        } => {
            let (ns, t, table) = resolve(model, target);
            let sql = format!(
                "DROP {}TABLE {}{ns}.{t}",
                prefix.map_or(String::new(), |k| format!("{} ", k.sql())),
                if *if_exists { "IF EXISTS " } else { "" }
            );
            let expect = match table {
                None if *if_exists => Ok(next),
                None => Err(ErrorKind::NotFound),
                Some(table) if prefix.is_some_and(|k| k != table.kind) => Err(ErrorKind::InvalidSql),
                Some(_) => {
                    next.namespaces.get_mut(ns).expect("checked").remove(t);
                    Ok(next)
                }
            };
            root(sql, expect)
        }
        Op::AddColumn { target, column } => {
            let (ns, t, table) = resolve(model, target);
            let column = column.model();
            let sql = format!("ALTER TABLE {ns}.{t} ADD COLUMN {}", column.sql());
            let expect = match table {
                None => Err(ErrorKind::NotFound),
                Some(table) if table.position(column.name).is_some() => Err(ErrorKind::Conflict),
                Some(table) if column.not_null && column.default.is_none() && table.has_rows() => {
                    Err(ErrorKind::Conflict)
                }
                Some(_) => {
                    let table = next.table_mut(ns, t);
                    for row in table.all_rows_mut() {
                        row.push(column.default.clone());
                    }
                    table.columns.push(column);
                    table.version += 1;
                    Ok(next)
                }
            };
            root(sql, expect)
        }
        Op::DropColumn { target, column } => {
            let (ns, t, table) = resolve(model, target);
            let name = column_name(table, column);
            let sql = format!("ALTER TABLE {ns}.{t} DROP COLUMN {name}");
            let expect = match table.map(|table| table.position(name)) {
                None => Err(ErrorKind::NotFound),
                Some(None) => Err(ErrorKind::Execution),
                Some(Some(0)) => Err(ErrorKind::InvalidSql),
                Some(Some(i)) => {
                    let table = next.table_mut(ns, t);
                    for row in table.all_rows_mut() {
                        row.remove(i);
                    }
                    table.columns.remove(i);
                    table.version += 1;
                    Ok(next)
                }
            };
            root(sql, expect)
        }
        Op::RenameColumn { target, column, to } => {
            let (ns, t, table) = resolve(model, target);
            let (from, to) = (column_name(table, column), COLUMNS[*to]);
            let sql = format!("ALTER TABLE {ns}.{t} RENAME COLUMN {from} TO {to}");
            let expect = match table {
                None => Err(ErrorKind::NotFound),
                Some(table) if table.position(to).is_some() => Err(ErrorKind::Conflict),
                Some(table) => match table.position(from) {
                    None => Err(ErrorKind::Execution),
                    Some(i) => {
                        let table = next.table_mut(ns, t);
                        table.columns[i].name = to;
                        table.version += 1;
                        Ok(next)
                    }
                },
            };
            root(sql, expect)
        }
        Op::AlterColumn { target, column, change } => {
            let (ns, t, table) = resolve(model, target);
            let name = column_name(table, column);
            let position = table.and_then(|table| table.position(name));
            let clause = match (change, table, position) {
                (ColumnChange::SetDefault(seed), Some(table), Some(i)) => {
                    format!("SET DEFAULT {}", table.columns[i].ty.value(*seed).sql())
                }
                (ColumnChange::SetDefault(seed), ..) => format!("SET DEFAULT {}", Ty::Int.value(*seed).sql()),
                (ColumnChange::DropDefault, ..) => "DROP DEFAULT".to_owned(),
                (ColumnChange::SetNotNull, ..) => "SET NOT NULL".to_owned(),
                (ColumnChange::DropNotNull, ..) => "DROP NOT NULL".to_owned(),
            };
            let sql = format!("ALTER TABLE {ns}.{t} ALTER COLUMN {name} {clause}");
            let expect = match (table, position) {
                (None, _) => Err(ErrorKind::NotFound),
                (_, None) => Err(ErrorKind::Execution),
                (Some(_), Some(0)) if matches!(change, ColumnChange::DropNotNull) => Err(ErrorKind::InvalidSql),
                (Some(table), Some(i)) if matches!(change, ColumnChange::SetNotNull) && table.has_null(i) => {
                    Err(ErrorKind::Conflict)
                }
                (Some(_), Some(i)) => {
                    let table = next.table_mut(ns, t);
                    let column = &mut table.columns[i];
                    match change {
                        ColumnChange::SetDefault(seed) => column.default = Some(column.ty.value(*seed)),
                        ColumnChange::DropDefault => column.default = None,
                        ColumnChange::SetNotNull => column.not_null = true,
                        ColumnChange::DropNotNull => column.not_null = false,
                    }
                    table.version += 1;
                    Ok(next)
                }
            };
            root(sql, expect)
        }
        Op::Insert {
            writer,
            target,
            columns,
            omit_key,
            rows,
        } => {
            let (ns, t, table) = resolve(model, target);
            let user = actor(table, *writer);
            // The listed columns: (name, position in the table if it has the column).
            let listed: Vec<(&'static str, Option<usize>)> = match (columns, table) {
                (None, Some(table)) => table
                    .columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (c.name, Some(i)))
                    .collect(),
                (None, None) => vec![("id", None)],
                (Some(refs), table) => {
                    let mut names = Vec::new();
                    if !omit_key {
                        names.push(table.map_or("id", TableModel::pk));
                    }
                    for r in refs {
                        let name = column_name(table, r);
                        if !names.contains(&name) {
                            names.push(name);
                        }
                    }
                    if names.is_empty() {
                        names.push(table.map_or("id", TableModel::pk));
                    }
                    names
                        .into_iter()
                        .map(|n| (n, table.and_then(|t| t.position(n))))
                        .collect()
                }
            };
            let is_key =
                |(name, position): &(&str, Option<usize>)| *position == Some(0) || (table.is_none() && *name == "id");
            let mut values: Vec<Vec<Option<Lit>>> = Vec::new();
            for (key, seeds) in rows {
                let mut seeds = seeds.iter().cycle();
                let row = listed
                    .iter()
                    .map(|column| {
                        if is_key(column) {
                            return Some(Lit::Int(*key));
                        }
                        let ty = match (column.1, table) {
                            (Some(i), Some(table)) => table.columns[i].ty,
                            _ => Ty::Int,
                        };
                        seeds.next().expect("seeds are not empty").map(|s| ty.value(s))
                    })
                    .collect();
                values.push(row);
            }
            let column_list = match columns {
                None => String::new(),
                Some(_) => format!(" ({})", listed.iter().map(|c| c.0).collect::<Vec<_>>().join(", ")),
            };
            let sql = format!(
                "INSERT INTO {ns}.{t}{column_list} VALUES {}",
                values
                    .iter()
                    .map(|row| format!("({})", row.iter().map(sql_value).collect::<Vec<_>>().join(", ")))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let expect = match table {
                None => Err(ErrorKind::NotFound),
                Some(_) if listed.iter().any(|c| c.1.is_none()) => Err(ErrorKind::Execution),
                Some(table) => {
                    let partition = table.partition(user);
                    let mut added: BTreeMap<i64, Row> = BTreeMap::new();
                    let mut failure = None;
                    for given in &values {
                        let mut row: Row = table.columns.iter().map(|c| c.default.clone()).collect();
                        for ((_, position), value) in listed.iter().zip(given) {
                            row[position.expect("checked")] = value.clone();
                        }
                        if table.violates_not_null(&row) {
                            failure = Some(ErrorKind::Conflict);
                            break;
                        }
                        let Some(Lit::Int(key)) = row[0] else {
                            unreachable!("the key is not NULL")
                        };
                        let live = table.rows.get(partition).is_some_and(|p| p.live.contains_key(&key));
                        if live || added.insert(key, row).is_some() {
                            failure = Some(ErrorKind::Conflict);
                            break;
                        }
                    }
                    match failure {
                        Some(kind) => Err(kind),
                        None => {
                            next.clock += 1;
                            let now = next.clock;
                            let rows = next.table_mut(ns, t).rows.entry(partition).or_default();
                            for (key, row) in added {
                                rows.put(key, row, now);
                            }
                            Ok(next)
                        }
                    }
                }
            };
            Step::new(user, sql, expect)
        }
        Op::Update {
            writer,
            target,
            assign,
            filter,
        } => {
            let (ns, t, table) = resolve(model, target);
            let user = actor(table, *writer);
            let pk = table.map_or("id", TableModel::pk);
            // The SET clause, and the assigned position and value (`None` for a key shift).
            let (set, assigned): (String, Result<Option<(usize, Option<Lit>)>, ErrorKind>) = match assign {
                Assign::Value(column, seed) => {
                    let name = column_name(table, column);
                    match table.and_then(|t| t.position(name)) {
                        Some(i) => {
                            let ty = table.expect("has the column").columns[i].ty;
                            let value = seed.map(|s| ty.value(s));
                            (format!("{name} = {}", sql_value(&value)), Ok(Some((i, value))))
                        }
                        None => (
                            format!("{name} = {}", sql_value(&seed.map(|s| Ty::Int.value(s)))),
                            Err(ErrorKind::Execution),
                        ),
                    }
                }
                Assign::KeyTo(k) => (format!("{pk} = {k}"), Ok(Some((0, Some(Lit::Int(*k)))))),
                Assign::KeyShift => (format!("{pk} = {pk} + 1"), Ok(None)),
            };
            let (clause, predicate) = where_clause(table, filter);
            let sql = format!("UPDATE {ns}.{t} SET {set}{clause}");
            let expect = match (table, assigned, predicate) {
                (None, ..) => Err(ErrorKind::NotFound),
                (_, Err(kind), _) | (_, _, Err(kind)) => Err(kind),
                (Some(table), Ok(assigned), Ok(predicate)) => {
                    let partition = table.partition(user);
                    let rows = table.rows.get(partition).map(|p| p.live.clone()).unwrap_or_default();
                    let (matched, kept): (Vec<_>, Vec<_>) = rows.into_iter().partition(|(_, row)| predicate(row));
                    let mut result: BTreeMap<i64, Row> = kept.into_iter().collect();
                    let mut moved = Vec::new();
                    let mut failure = None;
                    for (key, mut row) in matched {
                        let old = row.clone();
                        match &assigned {
                            Some((i, value)) => row[*i] = value.clone(),
                            None => row[0] = Some(Lit::Int(key + 1)),
                        }
                        if table.violates_not_null(&row) {
                            failure = Some(ErrorKind::Conflict);
                            break;
                        }
                        let Some(Lit::Int(new_key)) = row[0] else {
                            unreachable!("the key is not NULL")
                        };
                        if result.insert(new_key, row).is_some() {
                            failure = Some(ErrorKind::Conflict);
                            break;
                        }
                        moved.push((key, old, new_key));
                    }
                    match failure {
                        Some(kind) => Err(kind),
                        None => {
                            next.clock += 1;
                            let now = next.clock;
                            let rows = next.table_mut(ns, t).rows.entry(partition).or_default();
                            for (_, _, new_key) in &moved {
                                rows.put(*new_key, result[new_key].clone(), now);
                            }
                            // A key the statement moved a row away from, and no row into,
                            // keeps a deleted version of the row.
                            for (key, old, _) in moved {
                                if !result.contains_key(&key) {
                                    rows.delete(key, old, now);
                                }
                            }
                            Ok(next)
                        }
                    }
                }
            };
            Step::new(user, sql, expect)
        }
        Op::Delete { writer, target, filter } => {
            let (ns, t, table) = resolve(model, target);
            let user = actor(table, *writer);
            let (clause, predicate) = where_clause(table, filter);
            let sql = format!("DELETE FROM {ns}.{t}{clause}");
            let expect = match (table, predicate) {
                (None, _) => Err(ErrorKind::NotFound),
                (_, Err(kind)) => Err(kind),
                (Some(table), Ok(predicate)) => {
                    let partition = table.partition(user);
                    next.clock += 1;
                    let now = next.clock;
                    if let Some(rows) = next.table_mut(ns, t).rows.get_mut(partition) {
                        let matched: Vec<(i64, Row)> = rows
                            .live
                            .iter()
                            .filter(|(_, row)| predicate(row))
                            .map(|(k, row)| (*k, row.clone()))
                            .collect();
                        for (key, row) in matched {
                            rows.delete(key, row, now);
                        }
                    }
                    Ok(next)
                }
            };
            Step::new(user, sql, expect)
        }
        Op::Select {
            reader,
            target,
            filter,
            deleted,
        } => {
            let (ns, t, table) = resolve(model, target);
            let user = actor(table, *reader);
            let (condition, predicate) = condition(table, filter);
            let condition = match (deleted, condition) {
                (false, None) => String::new(),
                (false, Some(c)) => format!(" WHERE {c}"),
                (true, None) => " WHERE _deleted = true".to_owned(),
                (true, Some(c)) => format!(" WHERE _deleted = true AND {c}"),
            };
            let names: Vec<_> = table.map_or(vec!["id"], |t| t.columns.iter().map(|c| c.name).collect());
            let pk = table.map_or("id", TableModel::pk);
            let sql = format!("SELECT {} FROM {ns}.{t}{condition} ORDER BY {pk}", names.join(", "));
            let (expect, rows) = match (table, predicate) {
                (None, _) => (Err(ErrorKind::NotFound), None),
                (_, Err(kind)) => (Err(kind), None),
                (Some(table), Ok(predicate)) => {
                    let partition = table.rows.get(table.partition(user)).cloned().unwrap_or_default();
                    let rows = if *deleted { &partition.deleted } else { &partition.live };
                    (Ok(next), Some(shown(rows.values().filter(|row| predicate(row)))))
                }
            };
            Step {
                user,
                sql,
                table: None,
                expect,
                rows,
            }
        }
    }
}

/// Rows as a SELECT shows them.
fn shown<'a>(rows: impl IntoIterator<Item = &'a Row>) -> Cells {
    rows.into_iter()
        .map(|row| row.iter().map(|v| v.as_ref().map(Lit::shown)).collect())
        .collect()
}

// ---------------------------------------------------------------------------------------
// The database under test

/// A result's column names and its cells as text, `None` for NULL.
fn cells(outputs: &[StatementOutput]) -> (Vec<String>, Vec<Vec<Option<String>>>) {
    let Some(StatementOutput::Rows { schema, batches }) = outputs.last() else {
        panic!("the statement returned no rows: {outputs:?}");
    };
    let names = schema.fields().iter().map(|f| f.name().clone()).collect();
    let options = FormatOptions::default();
    let mut out = Vec::new();
    for batch in batches {
        let formatters: Vec<_> = batch
            .columns()
            .iter()
            .map(|a| ArrayFormatter::try_new(a.as_ref(), &options).expect("a displayable column"))
            .collect();
        for row in 0..batch.num_rows() {
            out.push(
                batch
                    .columns()
                    .iter()
                    .zip(&formatters)
                    .map(|(a, f)| (!a.is_null(row)).then(|| f.value(row).to_string()))
                    .collect(),
            );
        }
    }
    (names, out)
}

fn some(s: impl Into<String>) -> Option<String> {
    Some(s.into())
}

struct Harness<'r> {
    runtime: &'r Runtime,
    backend: StorageBackend,
    dir: TempDir,
    db: Option<Database>,
    model: Model,
    /// Every statement run, for the failure message.
    log: String,
    /// The `_seq` seen for each row version (table, partition, key, clock).
    seqs: HashMap<String, i64>,
}

impl<'r> Harness<'r> {
    fn new(runtime: &'r Runtime, backend: StorageBackend) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let db = Database::open(backend, dir.path()).expect("open a new database");
        let mut harness = Self {
            runtime,
            backend,
            dir,
            db: Some(db),
            model: Model::default(),
            log: String::new(),
            seqs: HashMap::new(),
        };
        // Users are created once per case (hashing their passwords is slow); one namespace
        // from the start lets most sequences reach tables early.
        let mut setup: Vec<String> = USERS
            .iter()
            .map(|u| format!("CREATE USER {u} WITH PASSWORD 'x' ROLE user"))
            .collect();
        setup.push(format!("CREATE NAMESPACE {}", NAMESPACES[0]));
        let setup = setup.join("; ");
        harness
            .sql(ROOT, &setup)
            .expect("create the users and the first namespace");
        harness.model.namespaces.insert(NAMESPACES[0], BTreeMap::new());
        let _ = writeln!(harness.log, "[root] {setup}");
        harness
    }

    fn sql(&self, user: &str, sql: &str) -> Result<Vec<StatementOutput>, QueryError> {
        let engine = &self.db.as_ref().expect("the database is open").engine;
        let mut session = if user == ROOT {
            Session::root()
        } else {
            engine.session_for(user)?
        };
        self.runtime.block_on(engine.execute(&mut session, sql, &[]))
    }

    /// Rows of a query that must succeed.
    fn rows(&self, user: &str, sql: &str) -> Result<Vec<Vec<Option<String>>>, TestCaseError> {
        Ok(self.query(user, sql)?.1)
    }

    /// Column names and rows of a query that must succeed.
    fn query(&self, user: &str, sql: &str) -> Result<(Vec<String>, Vec<Vec<Option<String>>>), TestCaseError> {
        match self.sql(user, sql) {
            Ok(outputs) => Ok(cells(&outputs)),
            Err(e) => Err(self.fail(format!("{sql} (as {user}) failed: {e} ({:?})", e.kind()))),
        }
    }

    fn fail(&self, what: String) -> TestCaseError {
        TestCaseError::fail(format!(
            "{what}\n--- on {}, after:\n{}--- the model:\n{:#?}",
            self.backend, self.log, self.model
        ))
    }

    fn reopen(&mut self) {
        self.db = None;
        self.db = Some(Database::open(self.backend, self.dir.path()).expect("reopen the database"));
        self.log.push_str("-- reopen\n");
    }

    fn apply(&mut self, action: &Action) -> Result<(), TestCaseError> {
        match action {
            Action::Reopen => {
                self.reopen();
                Ok(())
            }
            Action::Run {
                op,
                upper,
                use_namespace,
            } => {
                let step = step(&self.model, op);
                let (mut sql, mut expect) = (step.sql, step.expect);
                if let (true, Some((ns, t))) = (use_namespace, step.table) {
                    sql = format!("USE {ns}; {}", sql.replace(&format!("{ns}.{t}"), t));
                    if !self.model.namespaces.contains_key(ns) {
                        expect = Err(ErrorKind::NotFound);
                    }
                }
                if *upper {
                    sql = upper_outside_quotes(&sql);
                }
                let after = expect.as_ref().map_or_else(|_| self.model.clone(), Clone::clone);
                self.run(step.user, &sql, expect.map(|_| ()), after, step.rows)
            }
            Action::Batch(first, second) => {
                let first = step(&self.model, first);
                let between = first.expect.as_ref().map_or_else(|_| self.model.clone(), Clone::clone);
                let second = step(&between, second);
                if first.user != second.user || first.rows.is_some() {
                    let after = first.expect.as_ref().map_or_else(|_| self.model.clone(), Clone::clone);
                    self.run(first.user, &first.sql, first.expect.map(|_| ()), after, first.rows)?;
                    let after = second.expect.as_ref().map_or_else(|_| self.model.clone(), Clone::clone);
                    return self.run(second.user, &second.sql, second.expect.map(|_| ()), after, second.rows);
                }
                // The first failure stops the batch; what ran before it stays applied.
                let sql = format!("{}; {}", first.sql, second.sql);
                let (outcome, after) = match (first.expect, second.expect) {
                    (Err(kind), _) => (Err(kind), self.model.clone()),
                    (Ok(_), Err(kind)) => (Err(kind), between),
                    (Ok(_), Ok(after)) => (Ok(()), after),
                };
                self.run(first.user, &sql, outcome, after, second.rows)
            }
        }
    }

    /// Runs `sql` as `user`; the engine must give `outcome` (and `rows`, if any), and then
    /// the model is `after`.
    fn run(
        &mut self,
        user: &str,
        sql: &str,
        outcome: Result<(), ErrorKind>,
        after: Model,
        rows: Option<Cells>,
    ) -> Result<(), TestCaseError> {
        let result = self.sql(user, sql);
        let _ = writeln!(
            self.log,
            "[{user}] {sql}  -> {}",
            match &result {
                Ok(_) => "ok".to_owned(),
                Err(e) => format!("{:?}: {e}", e.kind()),
            }
        );
        if let (Ok(outputs), Some(rows)) = (&result, rows) {
            self.expect_equal(&format!("{sql} as {user}"), cells(outputs).1, rows)?;
        }
        let verdict = match (result, outcome) {
            (Ok(_), Ok(())) => Ok(()),
            (Err(e), Err(kind)) if e.kind() == kind => Ok(()),
            (Err(e), Ok(())) => Err(format!("the model expected success, the engine failed: {e}")),
            (Err(e), Err(kind)) => Err(format!(
                "the model expected a {kind:?} error, the engine gave {:?}: {e}",
                e.kind()
            )),
            (Ok(_), Err(kind)) => Err(format!("the model expected a {kind:?} error, the engine succeeded")),
        };
        match verdict {
            Ok(()) => {
                self.model = after;
                Ok(())
            }
            Err(what) => Err(self.fail(what)),
        }
    }

    fn expect_equal<T: PartialEq + std::fmt::Debug>(
        &self,
        what: &str,
        engine: T,
        model: T,
    ) -> Result<(), TestCaseError> {
        if engine == model {
            Ok(())
        } else {
            Err(self.fail(format!("{what}:\n  engine: {engine:?}\n  model:  {model:?}")))
        }
    }

    fn expect_not_found(&self, sql: &str) -> Result<(), TestCaseError> {
        match self.sql(ROOT, sql) {
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.fail(format!("{sql}: expected NotFound, got {:?}: {e}", e.kind()))),
            Ok(_) => Err(self.fail(format!("{sql}: expected NotFound, it succeeded"))),
        }
    }

    /// Everything the engine shows about the catalog and the rows equals the model.
    fn check(&mut self) -> Result<(), TestCaseError> {
        let model = &self.model.clone();
        let mut seqs = Vec::new();
        let tables = model.tables();

        // Namespaces: system.namespaces and SHOW NAMESPACES, with their table counts.
        let mut namespaces: Vec<Vec<Option<String>>> = vec![vec![some("default"), some("0")]];
        namespaces.extend(
            model
                .namespaces
                .iter()
                .map(|(ns, t)| vec![some(*ns), some(t.len().to_string())]),
        );
        namespaces.sort();
        let mut seen = self.rows(ROOT, "SELECT namespace_id, table_count FROM system.namespaces")?;
        seen.sort();
        self.expect_equal("system.namespaces", seen, namespaces.clone())?;
        let mut seen = self.rows(ROOT, "SHOW NAMESPACES")?;
        seen.sort();
        self.expect_equal("SHOW NAMESPACES", seen, namespaces)?;

        // Tables: system.tables, SHOW TABLES and SHOW TABLES IN ns.
        let listed = |ns: Option<&str>| -> Vec<Vec<Option<String>>> {
            tables
                .iter()
                .filter(|(n, ..)| ns.is_none_or(|ns| ns == *n))
                .map(|(n, t, table)| vec![some(*n), some(*t), some(table.kind.sql())])
                .collect()
        };
        let mut seen = self.rows(
            ROOT,
            "SELECT namespace_id, table_name, table_type, schema_version FROM system.tables",
        )?;
        seen.sort();
        let expected: Vec<_> = tables
            .iter()
            .map(|(n, t, table)| {
                vec![
                    some(*n),
                    some(*t),
                    some(table.kind.sql()),
                    some(table.version.to_string()),
                ]
            })
            .collect();
        self.expect_equal("system.tables", seen, expected)?;
        let mut seen = self.rows(ROOT, "SHOW TABLES")?;
        seen.sort();
        self.expect_equal("SHOW TABLES", seen, listed(None))?;
        for ns in NAMESPACES {
            let sql = format!("SHOW TABLES IN {ns}");
            if model.namespaces.contains_key(ns) {
                let mut seen = self.rows(ROOT, &sql)?;
                seen.sort();
                self.expect_equal(&sql, seen, listed(Some(ns)))?;
            } else {
                self.expect_not_found(&sql)?;
            }
        }

        // Columns: system.columns holds every schema version; the newest equals the model,
        // and so does DESCRIBE.
        let mut versions: BTreeMap<(String, String), BTreeMap<u64, Vec<Vec<Option<String>>>>> = BTreeMap::new();
        for mut row in self.rows(
            ROOT,
            "SELECT namespace_id, table_name, schema_version, column_name, data_type, is_nullable, \
             is_primary_key, default_value, ordinal FROM system.columns ORDER BY ordinal",
        )? {
            let rest = row.split_off(3);
            let key = (row[0].clone().unwrap_or_default(), row[1].clone().unwrap_or_default());
            let version = row[2].as_deref().and_then(|v| v.parse().ok()).unwrap_or(0);
            versions.entry(key).or_default().entry(version).or_default().push(rest);
        }
        let described = |table: &TableModel| -> Vec<Vec<Option<String>>> {
            table
                .columns
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    vec![
                        some(c.name),
                        some(c.ty.sql()),
                        some((i != 0 && !c.not_null).to_string()),
                        some((i == 0).to_string()),
                        c.default.as_ref().map(Lit::sql),
                        some((i + 1).to_string()),
                    ]
                })
                .collect()
        };
        self.expect_equal(
            "the tables of system.columns",
            versions.keys().cloned().collect::<Vec<_>>(),
            tables.iter().map(|(n, t, _)| (n.to_string(), t.to_string())).collect(),
        )?;
        for (ns, t, table) in &tables {
            let mut history = versions[&(ns.to_string(), t.to_string())].clone();
            self.expect_equal(
                &format!("the schema versions of {ns}.{t} in system.columns"),
                history.keys().copied().collect::<Vec<_>>(),
                (1..=table.version).collect(),
            )?;
            let newest = history.pop_last().map(|(_, c)| c).unwrap_or_default();
            self.expect_equal(&format!("system.columns of {ns}.{t}"), newest, described(table))?;
            let describe = self.rows(ROOT, &format!("DESCRIBE TABLE {ns}.{t}"))?;
            self.expect_equal(&format!("DESCRIBE TABLE {ns}.{t}"), describe, described(table))?;
        }

        // DataFusion's catalog and the rows: every table of the model reads back as the
        // model's rows for each reader; every other name is not found.
        for ns in NAMESPACES {
            for t in TABLES {
                let Some(table) = model.table(ns, t) else {
                    self.expect_not_found(&format!("SELECT * FROM {ns}.{t}"))?;
                    self.expect_not_found(&format!("DESCRIBE TABLE {ns}.{t}"))?;
                    continue;
                };
                let names: Vec<_> = table.columns.iter().map(|c| c.name).collect();
                let select = format!("SELECT {}, _seq FROM {ns}.{t}", names.join(", "));
                let readers: &[&'static str] = match table.kind {
                    Kind::User => &WRITERS,
                    Kind::Shared => &[ROOT],
                };
                for reader in readers {
                    let partition = table.rows.get(table.partition(reader)).cloned().unwrap_or_default();
                    let expected = shown(partition.live.values());
                    // The live rows, then the deleted ones (shown when the query asks for them).
                    for (filter, rows) in [("", &partition.live), (" WHERE _deleted = true", &partition.deleted)] {
                        let sql = format!("{select}{filter} ORDER BY {}", table.pk());
                        let mut seen = self.rows(reader, &sql)?;
                        for (row, key) in seen.iter_mut().zip(rows.keys()) {
                            let seq = row.pop().flatten().and_then(|s| s.parse::<i64>().ok());
                            let identity = format!("{ns}.{t} {reader} {key}");
                            seqs.push((partition.written[key], seq, identity));
                        }
                        self.expect_equal(&format!("{sql} as {reader}"), seen, shown(rows.values()))?;
                    }
                    if *reader == ROOT {
                        // SELECT * gives the table's columns, then `_seq` and `_deleted`.
                        let sql = format!("SELECT * FROM {ns}.{t} ORDER BY {}", table.pk());
                        let (fields, mut seen) = self.query(ROOT, &sql)?;
                        let mut names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
                        names.extend(["_seq".to_owned(), "_deleted".to_owned()]);
                        self.expect_equal(&format!("the columns of {sql}"), fields, names)?;
                        for row in &mut seen {
                            row.truncate(table.columns.len());
                        }
                        self.expect_equal(&sql, seen, expected)?;
                    }
                }
            }
        }
        self.check_seqs(seqs)
    }

    /// `_seq` is new for every version of a row and time-ordered: a row written by a later
    /// statement has a larger one, and a row not written again keeps its own.
    fn check_seqs(&mut self, mut seqs: Vec<(u64, Option<i64>, String)>) -> Result<(), TestCaseError> {
        seqs.sort();
        let mut distinct = HashSet::new();
        let mut before: Option<(u64, i64, &str)> = None;
        let mut newest_of_earlier = (0, i64::MIN, "");
        for (written, seq, identity) in &seqs {
            let Some(seq) = *seq else {
                return Err(self.fail(format!("{identity} has no _seq")));
            };
            if !distinct.insert(seq) {
                return Err(self.fail(format!("{identity} has the _seq {seq} of another row version")));
            }
            if let Some(prev) = before
                && prev.0 < *written
                && prev.1 > newest_of_earlier.1
            {
                newest_of_earlier = prev;
            }
            if seq <= newest_of_earlier.1 {
                return Err(self.fail(format!(
                    "{identity}, written by statement {written}, has _seq {seq}, not above {} of {}, \
                     written by statement {}",
                    newest_of_earlier.1, newest_of_earlier.2, newest_of_earlier.0
                )));
            }
            let remembered = self.seqs.entry(format!("{identity} @{written}")).or_insert(seq);
            if *remembered != seq {
                let was = *remembered;
                return Err(self.fail(format!(
                    "{identity} was not written again but its _seq changed from {was} to {seq}"
                )));
            }
            before = Some((*written, seq, identity));
        }
        Ok(())
    }
}

/// SQL with every name and keyword in upper case (names are case-insensitive), string
/// literals unchanged.
fn upper_outside_quotes(sql: &str) -> String {
    let mut quoted = false;
    sql.chars()
        .map(|c| {
            if c == '\'' {
                quoted = !quoted;
            }
            if quoted { c } else { c.to_ascii_uppercase() }
        })
        .collect()
}

fn run_case(runtime: &Runtime, backend: StorageBackend, actions: &[Action]) -> Result<(), TestCaseError> {
    let mut harness = Harness::new(runtime, backend);
    harness.check()?;
    for action in actions {
        harness.apply(action)?;
        harness.check()?;
    }
    if std::env::var_os("CALAMUS_MODEL_LOG").is_some() {
        eprintln!("--- a case on {backend}:\n{}", harness.log);
    }
    Ok(())
}

fn env_number(name: &str, default: u32) -> u32 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn run_model(backend: StorageBackend) {
    let runtime = Runtime::new().expect("a tokio runtime");
    let config = Config {
        cases: env_number("PROPTEST_CASES", 16),
        failure_persistence: None,
        max_shrink_iters: 400,
        ..Config::default()
    };
    let ops = env_number("CALAMUS_MODEL_OPS", 30) as usize;
    let mut runner = TestRunner::new(config);
    let result = runner.run(&proptest::collection::vec(action(), 1..=ops), |ops| {
        run_case(&runtime, backend, &ops)
    });
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, ops)) => panic!("{reason}\n--- shrunk operations: {ops:#?}"),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn catalog_and_rows_match_the_model_on_rocksdb() {
    run_model(StorageBackend::RocksDb);
}

#[test]
fn catalog_and_rows_match_the_model_on_sled() {
    run_model(StorageBackend::Sled);
}

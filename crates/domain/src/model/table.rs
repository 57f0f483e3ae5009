//! Tables: kinds, options, columns and schema versions.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{DomainError, DomainResult};
use crate::ident::{ColumnName, StorageId, TableId};
use crate::types::{DataType, Value};

/// The name of the row-version column every USER, SHARED and STREAM row carries.
pub const SEQ_COLUMN: &str = "_seq";
/// The name of the soft-delete flag every USER and SHARED row carries.
pub const DELETED_COLUMN: &str = "_deleted";

/// The three kinds of table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TableKind {
    /// One partition per user; each user sees only their own rows.
    User,
    /// One partition for the whole table.
    Shared,
    /// Ephemeral per-user events with a TTL and a max row count.
    Stream,
}

impl TableKind {
    /// `USER`, `SHARED` or `STREAM`.
    pub fn as_str(&self) -> &'static str {
        match self {
            TableKind::User => "USER",
            TableKind::Shared => "SHARED",
            TableKind::Stream => "STREAM",
        }
    }

    /// Parses `USER`, `SHARED` or `STREAM` (any case).
    pub fn parse(raw: &str) -> DomainResult<Self> {
        match raw.to_ascii_uppercase().as_str() {
            "USER" => Ok(TableKind::User),
            "SHARED" => Ok(TableKind::Shared),
            "STREAM" => Ok(TableKind::Stream),
            _ => Err(DomainError::InvalidDefinition(format!(
                "unknown table type '{raw}': expected 'USER', 'SHARED' or 'STREAM'"
            ))),
        }
    }

    /// Whether rows are partitioned per user.
    pub fn is_per_user(&self) -> bool {
        matches!(self, TableKind::User | TableKind::Stream)
    }

    /// Whether rows carry the `_deleted` flag (deletes are soft).
    pub fn has_soft_delete(&self) -> bool {
        !matches!(self, TableKind::Stream)
    }
}

impl fmt::Display for TableKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who may read a SHARED table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AccessLevel {
    /// Every user.
    Public,
    /// service, dba and system.
    Private,
    /// service, dba and system.
    Restricted,
}

impl AccessLevel {
    /// `PUBLIC`, `PRIVATE` or `RESTRICTED`.
    pub fn as_str(&self) -> &'static str {
        match self {
            AccessLevel::Public => "PUBLIC",
            AccessLevel::Private => "PRIVATE",
            AccessLevel::Restricted => "RESTRICTED",
        }
    }
}

/// When hot rows are flushed to cold storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct FlushPolicy {
    /// Flush once a partition holds this many hot rows.
    pub rows: Option<u64>,
    /// Flush at least every this many seconds.
    pub interval_seconds: Option<u64>,
}

impl FlushPolicy {
    /// Parses `rows:N`, `interval:S` or both separated by a comma.
    pub fn parse(raw: &str) -> DomainResult<Self> {
        let bad = |why: &str| {
            DomainError::InvalidDefinition(format!(
                "invalid FLUSH_POLICY '{raw}': {why}; expected 'rows:N', 'interval:S' or 'rows:N,interval:S'"
            ))
        };
        let mut policy = FlushPolicy::default();
        for part in raw.split(',') {
            let (key, value) = part.trim().split_once(':').ok_or_else(|| bad("missing ':'"))?;
            let n: u64 = value
                .trim()
                .parse()
                .map_err(|_| bad("the value is not a positive integer"))?;
            if n == 0 {
                return Err(bad("the value must be greater than 0"));
            }
            let slot = match key.trim().to_ascii_lowercase().as_str() {
                "rows" => &mut policy.rows,
                "interval" => &mut policy.interval_seconds,
                other => return Err(bad(&format!("unknown part '{other}'"))),
            };
            if slot.replace(n).is_some() {
                return Err(bad("a part is given twice"));
            }
        }
        Ok(policy)
    }
}

impl fmt::Display for FlushPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(rows) = self.rows {
            parts.push(format!("rows:{rows}"));
        }
        if let Some(interval) = self.interval_seconds {
            parts.push(format!("interval:{interval}"));
        }
        f.write_str(&parts.join(","))
    }
}

/// A table's options (`WITH (...)`), each valid only for some kinds.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TableOptions {
    /// USER, SHARED.
    pub flush_policy: Option<FlushPolicy>,
    /// STREAM (required).
    pub ttl_seconds: Option<u64>,
    /// STREAM: rows kept per user.
    pub max_rows: Option<u64>,
    /// USER, SHARED.
    pub storage_id: Option<StorageId>,
    /// USER, SHARED.
    pub deleted_retention_hours: Option<u64>,
    /// SHARED.
    pub access_level: Option<AccessLevel>,
}

impl TableOptions {
    /// The options as a JSON object text, as `system.tables` shows them.
    pub fn to_json(&self) -> String {
        let mut map = serde_json::Map::new();
        if let Some(p) = &self.flush_policy {
            map.insert("flush_policy".into(), p.to_string().into());
        }
        if let Some(v) = self.ttl_seconds {
            map.insert("ttl_seconds".into(), v.into());
        }
        if let Some(v) = self.max_rows {
            map.insert("max_rows".into(), v.into());
        }
        if let Some(v) = &self.storage_id {
            map.insert("storage_id".into(), v.as_str().into());
        }
        if let Some(v) = self.deleted_retention_hours {
            map.insert("deleted_retention_hours".into(), v.into());
        }
        if let Some(v) = self.access_level {
            map.insert("access_level".into(), v.as_str().into());
        }
        serde_json::Value::Object(map).to_string()
    }

    /// Checks that every option set applies to `kind` and that required ones are present.
    pub fn validate_for(&self, kind: TableKind) -> DomainResult<()> {
        let wrong = |option: &str, kinds: &str| {
            Err(DomainError::InvalidDefinition(format!(
                "option {option} does not apply to {kind} tables (only to {kinds})"
            )))
        };
        if kind == TableKind::Stream {
            if self.flush_policy.is_some() {
                return wrong("FLUSH_POLICY", "USER and SHARED");
            }
            if self.storage_id.is_some() {
                return wrong("STORAGE_ID", "USER and SHARED");
            }
            if self.deleted_retention_hours.is_some() {
                return wrong("DELETED_RETENTION_HOURS", "USER and SHARED");
            }
            match self.ttl_seconds {
                None => {
                    return Err(DomainError::InvalidDefinition(
                        "STREAM tables need the option TTL_SECONDS (for example WITH (TTL_SECONDS = 60))".into(),
                    ));
                }
                Some(0) => {
                    return Err(DomainError::InvalidDefinition(
                        "TTL_SECONDS must be greater than 0".into(),
                    ));
                }
                Some(_) => {}
            }
            if self.max_rows == Some(0) {
                return Err(DomainError::InvalidDefinition("MAX_ROWS must be greater than 0".into()));
            }
        } else {
            if self.ttl_seconds.is_some() {
                return wrong("TTL_SECONDS", "STREAM");
            }
            if self.max_rows.is_some() {
                return wrong("MAX_ROWS", "STREAM");
            }
        }
        if kind != TableKind::Shared && self.access_level.is_some() {
            return wrong("ACCESS_LEVEL", "SHARED");
        }
        Ok(())
    }
}

/// A function a column default calls for each new row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DefaultFunction {
    /// `SNOWFLAKE_ID()`: a time-ordered 64-bit id.
    SnowflakeId,
    /// `UUID_V7()`: a time-ordered UUID.
    UuidV7,
    /// `ULID()`.
    Ulid,
    /// `NOW()` / `CURRENT_TIMESTAMP`.
    Now,
    /// `CURRENT_USER()`: the session user's id.
    CurrentUser,
}

impl DefaultFunction {
    /// The SQL spelling.
    pub fn sql(&self) -> &'static str {
        match self {
            DefaultFunction::SnowflakeId => "SNOWFLAKE_ID()",
            DefaultFunction::UuidV7 => "UUID_V7()",
            DefaultFunction::Ulid => "ULID()",
            DefaultFunction::Now => "NOW()",
            DefaultFunction::CurrentUser => "CURRENT_USER()",
        }
    }
}

/// A column's default value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ColumnDefault {
    /// A constant, kept with the SQL it was written as.
    Literal { sql: String, value: StoredValue },
    /// A function evaluated for each row.
    Function(DefaultFunction),
}

impl ColumnDefault {
    /// The SQL text of the default, as `DESCRIBE` shows it.
    pub fn sql(&self) -> String {
        match self {
            ColumnDefault::Literal { sql, .. } => sql.clone(),
            ColumnDefault::Function(f) => f.sql().to_owned(),
        }
    }
}

/// A [`Value`] in a form the catalog can serialise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StoredValue {
    /// NULL.
    Null,
    /// Booleans.
    Boolean(bool),
    /// Every integer type, the decimal's unscaled value, timestamps, dates, times.
    Integer(i128),
    /// Floats.
    Float(f64),
    /// Text types.
    Text(String),
    /// Bytes.
    Bytes(Vec<u8>),
}

impl StoredValue {
    /// Stores `value`.
    pub fn from_value(value: &Value) -> Self {
        match value {
            Value::Null => StoredValue::Null,
            Value::Boolean(b) => StoredValue::Boolean(*b),
            Value::SmallInt(v) => StoredValue::Integer(*v as i128),
            Value::Int(v) => StoredValue::Integer(*v as i128),
            Value::BigInt(v) | Value::Timestamp(v) | Value::Time(v) => StoredValue::Integer(*v as i128),
            Value::Date(v) => StoredValue::Integer(*v as i128),
            Value::Decimal(v) => StoredValue::Integer(*v),
            Value::Float(v) => StoredValue::Float(*v as f64),
            Value::Double(v) => StoredValue::Float(*v),
            Value::Text(s) => StoredValue::Text(s.clone()),
            Value::Bytes(b) => StoredValue::Bytes(b.clone()),
        }
    }

    /// The value as a column of type `data_type` holds it.
    pub fn to_value(&self, data_type: &DataType) -> Value {
        match (self, data_type) {
            (StoredValue::Null, _) => Value::Null,
            (StoredValue::Boolean(b), _) => Value::Boolean(*b),
            (StoredValue::Integer(v), DataType::SmallInt) => Value::SmallInt(*v as i16),
            (StoredValue::Integer(v), DataType::Int) => Value::Int(*v as i32),
            (StoredValue::Integer(v), DataType::Timestamp) => Value::Timestamp(*v as i64),
            (StoredValue::Integer(v), DataType::Time) => Value::Time(*v as i64),
            (StoredValue::Integer(v), DataType::Date) => Value::Date(*v as i32),
            (StoredValue::Integer(v), DataType::Decimal { .. }) => Value::Decimal(*v),
            (StoredValue::Integer(v), _) => Value::BigInt(*v as i64),
            (StoredValue::Float(v), DataType::Float) => Value::Float(*v as f32),
            (StoredValue::Float(v), _) => Value::Double(*v),
            (StoredValue::Text(s), _) => Value::Text(s.clone()),
            (StoredValue::Bytes(b), _) => Value::Bytes(b.clone()),
        }
    }
}

/// One column of one schema version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnDefinition {
    /// Stable id: kept across renames, never reused after a drop. Rows are encoded by it.
    pub id: u32,
    /// The column's name.
    pub name: ColumnName,
    /// The column's type.
    pub data_type: DataType,
    /// Whether NULL is allowed.
    pub nullable: bool,
    /// The default for rows that give no value.
    pub default: Option<ColumnDefault>,
    /// The schema version that added the column (1 for the table's first columns).
    #[serde(default = "first_version")]
    pub added_in_version: u32,
    /// What rows written before the column existed read in it: the default at the time the
    /// column was added (as in PostgreSQL), or NULL.
    #[serde(default)]
    pub missing_value: Option<StoredValue>,
}

fn first_version() -> u32 {
    1
}

/// The columns of a table at one schema version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableSchema {
    /// The version, starting at 1, one more for every ALTER.
    pub version: u32,
    /// User columns in declaration order.
    pub columns: Vec<ColumnDefinition>,
    /// The primary key column's id, if the table has one.
    pub primary_key: Option<u32>,
    /// When this version was created (microseconds since the epoch).
    pub created_at: i64,
}

impl TableSchema {
    /// The position of the column called `name`.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name.as_str() == name)
    }

    /// The column called `name`.
    pub fn column(&self, name: &str) -> Option<&ColumnDefinition> {
        self.columns.iter().find(|c| c.name.as_str() == name)
    }

    /// The position of the primary key column.
    pub fn primary_key_position(&self) -> Option<usize> {
        let pk = self.primary_key?;
        self.columns.iter().position(|c| c.id == pk)
    }

    /// The primary key column.
    pub fn primary_key_column(&self) -> Option<&ColumnDefinition> {
        self.primary_key_position().map(|i| &self.columns[i])
    }
}

/// A table as the catalog keeps it, with its whole schema history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableDefinition {
    /// Namespace and name.
    pub id: TableId,
    /// A number unique over the server's life: names the table's keyspace, so a table
    /// dropped and created again never sees the old rows.
    pub uid: u64,
    /// USER, SHARED or STREAM.
    pub kind: TableKind,
    /// The options.
    pub options: TableOptions,
    /// Every schema version, oldest first; the last is current.
    pub schemas: Vec<TableSchema>,
    /// The next column id to hand out.
    pub next_column_id: u32,
    /// Creation time (microseconds since the epoch).
    pub created_at: i64,
    /// Last change (microseconds since the epoch).
    pub updated_at: i64,
}

impl TableDefinition {
    /// The current schema.
    pub fn schema(&self) -> &TableSchema {
        self.schemas
            .last()
            .expect("a table always has at least one schema version")
    }

    /// The keyspace holding the table's hot rows.
    pub fn keyspace(&self) -> String {
        format!("t{}", self.uid)
    }

    /// The keyspace of the table's cold key index: for each flushed row, its flushed
    /// version's `_seq` and delete flag.
    pub fn cold_keyspace(&self) -> String {
        format!("t{}c", self.uid)
    }

    /// The storage the table flushes to.
    pub fn storage_id(&self) -> StorageId {
        self.options.storage_id.clone().unwrap_or_else(StorageId::local)
    }
}

//! Storage locations for cold (flushed) rows.

use serde::{Deserialize, Serialize};

use crate::ident::StorageId;

/// Where a table's flushed Parquet files go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StorageDefinition {
    /// Its id.
    pub id: StorageId,
    /// `filesystem`.
    pub storage_type: String,
    /// The folder the templates are relative to; empty means the data directory's `storage/`.
    pub base_directory: String,
    /// Path template for SHARED tables.
    pub shared_tables_template: String,
    /// Path template for USER tables (one folder per user).
    pub user_tables_template: String,
    /// Creation time (microseconds since the epoch).
    pub created_at: i64,
    /// Last change (microseconds since the epoch).
    pub updated_at: i64,
}

impl StorageDefinition {
    /// The `local` storage every server has from its first start.
    pub fn local(now: i64) -> Self {
        Self {
            id: StorageId::local(),
            storage_type: "filesystem".into(),
            base_directory: String::new(),
            shared_tables_template: "{namespace}/{tableName}".into(),
            user_tables_template: "{namespace}/{tableName}/{userId}".into(),
            created_at: now,
            updated_at: now,
        }
    }
}

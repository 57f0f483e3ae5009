//! Namespaces.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ident::NamespaceId;

/// A namespace: a named group of tables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Namespace {
    /// Its name.
    pub id: NamespaceId,
    /// Free-form options (`ALTER NAMESPACE ... SET OPTIONS`).
    pub options: BTreeMap<String, String>,
    /// Creation time (microseconds since the epoch).
    pub created_at: i64,
    /// Last change (microseconds since the epoch).
    pub updated_at: i64,
}

impl Namespace {
    /// The options as JSON object text.
    pub fn options_json(&self) -> String {
        serde_json::to_string(&self.options).unwrap_or_else(|_| "{}".to_owned())
    }
}

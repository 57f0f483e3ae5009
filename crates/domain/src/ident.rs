//! Validated identifiers. Every name that can reach a key or a file path is checked once,
//! here, at construction: it can never hold a separator, `..` or a control character.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{DomainError, DomainResult};

/// The longest identifier accepted, in characters.
pub const MAX_IDENTIFIER_LEN: usize = 64;

/// Namespaces users may not create, drop or write into.
pub const RESERVED_NAMESPACES: &[&str] = &["system", "information_schema", "pg_catalog", "datafusion"];

/// Checks the SQL identifier rules (letters, digits and `_`, starting with a letter or `_`,
/// at most 64 characters) and returns the lowercase form.
fn sql_identifier(kind: &'static str, raw: &str) -> DomainResult<String> {
    let invalid = |reason: &str| DomainError::InvalidIdentifier {
        kind,
        name: printable(raw),
        reason: reason.to_owned(),
    };
    let Some(first) = raw.chars().next() else {
        return Err(invalid("it is empty"));
    };
    if raw.chars().count() > MAX_IDENTIFIER_LEN {
        return Err(invalid("it is longer than 64 characters"));
    }
    if !(first.is_ascii_alphabetic() || first == '_') {
        return Err(invalid("it must start with a letter or '_'"));
    }
    if let Some(bad) = raw.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '_')) {
        return Err(invalid(&format!(
            "it may hold only letters, digits and '_', not {}",
            describe_char(bad)
        )));
    }
    Ok(raw.to_ascii_lowercase())
}

/// A name safe to put in an error message (control characters escaped).
fn printable(raw: &str) -> String {
    raw.chars().flat_map(char::escape_default).take(100).collect()
}

fn describe_char(c: char) -> String {
    if c.is_control() || c.is_whitespace() {
        format!("{:?}", c)
    } else {
        format!("'{c}'")
    }
}

macro_rules! identifier {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $check:path) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates `raw` and builds the identifier (stored lowercase).
            pub fn new(raw: &str) -> DomainResult<Self> {
                $check($kind, raw).map(Self)
            }

            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = DomainError;
            fn try_from(raw: String) -> DomainResult<Self> {
                Self::new(&raw)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

identifier!(
    /// A namespace's name.
    NamespaceId, "namespace", sql_identifier
);
identifier!(
    /// A table's name inside its namespace.
    TableName, "table name", sql_identifier
);
identifier!(
    /// A column's name. Names starting with `_` are reserved for system columns.
    ColumnName, "column name", sql_identifier
);
identifier!(
    /// A user's id (also the user's login name).
    UserId, "user id", sql_identifier
);
identifier!(
    /// A storage location's id.
    StorageId, "storage id", sql_identifier
);

impl NamespaceId {
    /// The namespace every server has from its first start.
    pub fn default_namespace() -> Self {
        Self("default".to_owned())
    }

    /// The namespace of the system tables.
    pub fn system() -> Self {
        Self("system".to_owned())
    }

    /// Whether users are kept out of this namespace.
    pub fn is_reserved(&self) -> bool {
        RESERVED_NAMESPACES.contains(&self.as_str())
    }

    /// Validates a name for a namespace a user creates: a valid identifier, not reserved.
    pub fn new_user_namespace(raw: &str) -> DomainResult<Self> {
        let id = Self::new(raw)?;
        if id.is_reserved() {
            return Err(DomainError::ReservedName {
                kind: "namespace",
                name: id.0,
            });
        }
        Ok(id)
    }
}

impl ColumnName {
    /// Whether the name belongs to the server (`_seq`, `_deleted`, any `_` prefix).
    pub fn is_reserved(&self) -> bool {
        self.0.starts_with('_')
    }

    /// Validates a name for a column a user declares: a valid identifier, not reserved.
    pub fn new_user_column(raw: &str) -> DomainResult<Self> {
        let id = Self::new(raw)?;
        if id.is_reserved() {
            return Err(DomainError::ReservedName {
                kind: "column name",
                name: id.0,
            });
        }
        Ok(id)
    }
}

impl UserId {
    /// The built-in superuser.
    pub fn root() -> Self {
        Self("root".to_owned())
    }
}

impl StorageId {
    /// The storage every server has from its first start: under the data directory.
    pub fn local() -> Self {
        Self("local".to_owned())
    }
}

/// A table's full name: namespace and table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TableId {
    /// The namespace holding the table.
    pub namespace: NamespaceId,
    /// The table's name in it.
    pub table: TableName,
}

impl TableId {
    /// Builds a table id.
    pub fn new(namespace: NamespaceId, table: TableName) -> Self {
        Self { namespace, table }
    }
}

impl fmt::Display for TableId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.namespace, self.table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_lowercases_plain_names() {
        assert_eq!(NamespaceId::new("Chat_1").unwrap().as_str(), "chat_1");
        assert_eq!(TableName::new("_x").unwrap().as_str(), "_x");
    }

    #[test]
    fn rejects_names_that_could_escape_a_key_or_path() {
        for bad in [
            "", "a/b", "..", "a..b", "a\0b", "a\nb", "1abc", "a b", "naïve", "a-b", "a.b", "ｅ",
        ] {
            assert!(NamespaceId::new(bad).is_err(), "{bad:?} accepted");
            assert!(UserId::new(bad).is_err(), "{bad:?} accepted");
        }
        assert!(TableName::new(&"a".repeat(65)).is_err());
        assert!(TableName::new(&"a".repeat(64)).is_ok());
    }

    #[test]
    fn reserved_names_are_refused_where_users_create_them() {
        assert!(NamespaceId::new_user_namespace("system").is_err());
        assert!(NamespaceId::new_user_namespace("SYSTEM").is_err());
        assert!(NamespaceId::new_user_namespace("default").is_ok());
        assert!(ColumnName::new_user_column("_seq").is_err());
        assert!(ColumnName::new_user_column("_anything").is_err());
    }

    #[test]
    fn errors_name_the_identifier() {
        let err = TableName::new("bad/name").unwrap_err().to_string();
        assert!(err.contains("bad/name") && err.contains("'/'"), "{err}");
    }
}

//! Storage locations for cold (flushed) rows.

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{DomainError, DomainResult};
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

/// The placeholders a path template may use.
pub const TEMPLATE_PLACEHOLDERS: [&str; 3] = ["{namespace}", "{tableName}", "{userId}"];

/// The storage types this version writes to.
pub const STORAGE_TYPES: [&str; 1] = ["filesystem"];

impl StorageDefinition {
    /// Checks the definition: a known type, a base directory without `..`, and templates
    /// that stay inside it and name each table's (and, for USER tables, each user's)
    /// folder. The error says what is wrong and what would do.
    pub fn validate(&self) -> DomainResult<()> {
        if !STORAGE_TYPES.contains(&self.storage_type.as_str()) {
            return Err(DomainError::InvalidDefinition(format!(
                "storage type '{}' is not available; this version writes to 'filesystem' storages",
                self.storage_type
            )));
        }
        if self.base_directory.contains('\0')
            || Path::new(&self.base_directory)
                .components()
                .any(|c| c == Component::ParentDir)
        {
            return Err(DomainError::InvalidDefinition(format!(
                "BASE_DIRECTORY '{}' must not contain '..' or NUL",
                self.base_directory
            )));
        }
        check_template("SHARED_TABLES_TEMPLATE", &self.shared_tables_template, false)?;
        check_template("USER_TABLES_TEMPLATE", &self.user_tables_template, true)
    }

    /// The folder of a table's (or one user's) Parquet files, relative to the base
    /// directory: the template with its placeholders filled. Identifiers are validated
    /// at construction, so the result never leaves the base directory.
    pub fn table_folder(&self, namespace: &str, table: &str, user: Option<&str>) -> PathBuf {
        let template = match user {
            Some(_) => &self.user_tables_template,
            None => &self.shared_tables_template,
        };
        let filled = template
            .replace("{namespace}", namespace)
            .replace("{tableName}", table)
            .replace("{userId}", user.unwrap_or_default());
        PathBuf::from(filled)
    }
}

fn check_template(option: &str, template: &str, per_user: bool) -> DomainResult<()> {
    let invalid = |why: String| DomainError::InvalidDefinition(format!("{option} '{template}' {why}"));
    if template.is_empty() {
        return Err(invalid("is empty".into()));
    }
    if template.starts_with('/') || template.starts_with('\\') || template.contains('\0') || template.contains('\\') {
        return Err(invalid(
            "must be a relative path with '/' separators inside the base directory".into(),
        ));
    }
    for segment in template.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err(invalid("must not have empty, '.' or '..' segments".into()));
        }
    }
    // Every `{...}` must be a known placeholder.
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            return Err(invalid("has an unclosed '{'".into()));
        };
        let placeholder = &rest[open..open + close + 1];
        if !TEMPLATE_PLACEHOLDERS.contains(&placeholder) {
            return Err(invalid(format!(
                "uses unknown placeholder {placeholder}; the placeholders are {{namespace}}, {{tableName}} and {{userId}}"
            )));
        }
        rest = &rest[open + close + 1..];
    }
    if rest.contains('}') {
        return Err(invalid("has a '}' without '{'".into()));
    }
    // `{tableName}_{userId}` would let table `t_a` of user `b` and table `t` of user `a_b`
    // share a folder: a placeholder is a whole path segment.
    if let Some(segment) = template
        .split('/')
        .find(|s| s.contains('{') && !TEMPLATE_PLACEHOLDERS.contains(s))
    {
        return Err(invalid(format!(
            "has segment '{segment}': a placeholder must be a whole path segment, such as {{tableName}}"
        )));
    }
    for needed in ["{namespace}", "{tableName}"] {
        if !template.contains(needed) {
            return Err(invalid(format!(
                "must contain {needed}, so tables never share a folder"
            )));
        }
    }
    match (per_user, template.contains("{userId}")) {
        (true, false) => Err(invalid(
            "must contain {userId}: each user's rows have their own folder".into(),
        )),
        (false, true) => Err(invalid("cannot contain {userId}: a SHARED table has no user".into())),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn storage(base: &str, shared: &str, user: &str) -> StorageDefinition {
        StorageDefinition {
            base_directory: base.into(),
            shared_tables_template: shared.into(),
            user_tables_template: user.into(),
            ..StorageDefinition::local(0)
        }
    }

    #[test]
    fn the_local_storage_is_valid_and_fills_its_templates() {
        let local = StorageDefinition::local(0);
        local.validate().unwrap();
        assert_eq!(local.table_folder("app", "t", None), PathBuf::from("app/t"));
        assert_eq!(
            local.table_folder("app", "t", Some("alice")),
            PathBuf::from("app/t/alice")
        );
    }

    #[test]
    fn templates_that_escape_or_collide_are_refused() {
        for (shared, user, words) in [
            (
                "/abs/{namespace}/{tableName}",
                "{namespace}/{tableName}/{userId}",
                "relative",
            ),
            ("{namespace}/../{tableName}", "{namespace}/{tableName}/{userId}", "'..'"),
            ("{namespace}//{tableName}", "{namespace}/{tableName}/{userId}", "empty"),
            (
                "{namespace}/{table}",
                "{namespace}/{tableName}/{userId}",
                "unknown placeholder {table}",
            ),
            ("{namespace}/{tableName", "{namespace}/{tableName}/{userId}", "unclosed"),
            (
                "{namespace}/{tableName}",
                "{namespace}/{tableName}_{userId}",
                "whole path segment",
            ),
            (
                "{namespace}",
                "{namespace}/{tableName}/{userId}",
                "must contain {tableName}",
            ),
            (
                "{namespace}/{tableName}/{userId}",
                "{namespace}/{tableName}/{userId}",
                "cannot contain {userId}",
            ),
            (
                "{namespace}/{tableName}",
                "{namespace}/{tableName}",
                "must contain {userId}",
            ),
            (
                "{namespace}\\{tableName}",
                "{namespace}/{tableName}/{userId}",
                "'/' separators",
            ),
        ] {
            let error = storage("", shared, user).validate().unwrap_err().to_string();
            assert!(error.contains(words), "{shared} | {user}: {error}");
        }
        let error = storage(
            "/data/../etc",
            "{namespace}/{tableName}",
            "{namespace}/{tableName}/{userId}",
        )
        .validate()
        .unwrap_err()
        .to_string();
        assert!(error.contains("'..'"), "{error}");
        let s3 = StorageDefinition {
            storage_type: "s3".into(),
            ..StorageDefinition::local(0)
        };
        assert!(s3.validate().unwrap_err().to_string().contains("'filesystem'"));
    }
}

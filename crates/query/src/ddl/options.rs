//! Table options: `WITH (key = value, ...)` and the older trailing forms.

use calamus_domain::StorageId;
use calamus_domain::model::{AccessLevel, FlushPolicy, TableKind, TableOptions};
use datafusion::sql::sqlparser::ast::{Expr, SqlOption, UnaryOperator, Value};

use crate::error::{QueryError, QueryResult};

/// The options every table kind may take, for error messages.
const KNOWN: &str = "TYPE, FLUSH_POLICY, TTL_SECONDS, MAX_ROWS, STORAGE_ID, DELETED_RETENTION_HOURS, ACCESS_LEVEL";

/// An option's value as text (strings, numbers and bare words are accepted).
fn option_text(key: &str, value: &Expr) -> QueryResult<String> {
    match value {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => Ok(s.clone()),
            Value::Number(n, _) => Ok(n.clone()),
            Value::Boolean(b) => Ok(b.to_string()),
            other => Err(bad_value(key, &other.to_string(), "expected a string or a number")),
        },
        Expr::Identifier(ident) => Ok(ident.value.clone()),
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => Ok(format!("-{}", option_text(key, expr)?)),
        other => Err(bad_value(key, &other.to_string(), "expected a string or a number")),
    }
}

fn bad_value(key: &str, value: &str, why: &str) -> QueryError {
    QueryError::InvalidStatement(format!("invalid value '{value}' for option {key}: {why}"))
}

fn positive(key: &str, text: &str) -> QueryResult<u64> {
    match text.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(bad_value(key, text, "expected a positive integer")),
    }
}

/// Parsed options and the kind `TYPE = '...'` asked for, if any.
pub struct ParsedOptions {
    /// The options.
    pub options: TableOptions,
    /// `TYPE = 'USER' | 'SHARED' | 'STREAM'`.
    pub kind: Option<TableKind>,
}

/// Applies `key = value` to `options`.
pub fn apply_option(
    options: &mut TableOptions,
    kind: &mut Option<TableKind>,
    key: &str,
    value: &Expr,
) -> QueryResult<()> {
    let key = key.to_ascii_uppercase();
    let text = option_text(&key, value)?;
    match key.as_str() {
        "TYPE" | "TABLE_TYPE" => *kind = Some(TableKind::parse(&text)?),
        "FLUSH_POLICY" => options.flush_policy = Some(FlushPolicy::parse(&text)?),
        "TTL_SECONDS" => options.ttl_seconds = Some(positive(&key, &text)?),
        "MAX_ROWS" => options.max_rows = Some(positive(&key, &text)?),
        "STORAGE_ID" => options.storage_id = Some(StorageId::new(&text)?),
        "DELETED_RETENTION_HOURS" => options.deleted_retention_hours = Some(positive(&key, &text)?),
        "ACCESS_LEVEL" => {
            options.access_level = Some(match text.to_ascii_uppercase().as_str() {
                "PUBLIC" => AccessLevel::Public,
                "PRIVATE" => AccessLevel::Private,
                "RESTRICTED" => AccessLevel::Restricted,
                _ => return Err(bad_value(&key, &text, "expected 'PUBLIC', 'PRIVATE' or 'RESTRICTED'")),
            })
        }
        // The older trailing forms.
        "FLUSH_ROWS" => {
            options.flush_policy.get_or_insert_with(FlushPolicy::default).rows = Some(positive("FLUSH ROWS", &text)?)
        }
        "FLUSH_INTERVAL" => {
            options
                .flush_policy
                .get_or_insert_with(FlushPolicy::default)
                .interval_seconds = Some(positive("FLUSH INTERVAL", &text)?)
        }
        "BUFFER_SIZE" => options.max_rows = Some(positive("BUFFER_SIZE", &text)?),
        other => {
            return Err(QueryError::InvalidStatement(format!(
                "unknown table option '{other}'; known options: {KNOWN}"
            )));
        }
    }
    Ok(())
}

/// Parses `WITH (...)` options plus the older trailing forms.
pub fn parse_options(with: &[SqlOption], legacy: &[(String, Expr)]) -> QueryResult<ParsedOptions> {
    let mut options = TableOptions::default();
    let mut kind = None;
    for option in with {
        match option {
            SqlOption::KeyValue { key, value } => apply_option(&mut options, &mut kind, &key.value, value)?,
            other => {
                return Err(QueryError::InvalidStatement(format!(
                    "unsupported table option '{other}'; known options: {KNOWN}"
                )));
            }
        }
    }
    for (key, value) in legacy {
        apply_option(&mut options, &mut kind, key, value)?;
    }
    Ok(ParsedOptions { options, kind })
}

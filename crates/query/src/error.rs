//! The query layer's one error type.

use calamus_domain::DomainError;
use calamus_domain::model::Role;
use datafusion::error::DataFusionError;
use thiserror::Error;

use crate::authorization::rules::GENERIC_REFUSAL;
use crate::engine::CATALOG_NAME;

/// Result of query-layer operations.
pub type QueryResult<T> = Result<T, QueryError>;

/// What kind of failure an error is: the HTTP layer maps each kind to a status and code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The SQL does not parse or is not allowed (400 `INVALID_SQL`).
    InvalidSql,
    /// A table, namespace, user, ... does not exist (404 `NOT_FOUND`).
    NotFound,
    /// Already exists, duplicate key, constraint (409 `CONFLICT`).
    Conflict,
    /// The caller's role does not allow it (403 `PERMISSION_DENIED`).
    PermissionDenied,
    /// Any other failure of a statement: types, unknown column, bad value (400).
    Execution,
    /// A fault of the server (500).
    Internal,
    /// The disk holding the data is full or read-only (507): writes work again once space
    /// is freed or the disk writable.
    InsufficientStorage,
}

/// Everything that can fail while parsing, planning or executing a statement.
#[derive(Debug, Error)]
pub enum QueryError {
    /// The SQL text does not parse.
    #[error("syntax error: {0}")]
    Syntax(String),
    /// The statement parses but is not valid here (bad option, reserved name, ...).
    #[error("{0}")]
    InvalidStatement(String),
    /// The statement is not supported by Calamus.
    #[error("not supported: {0}")]
    Unsupported(String),
    /// The caller may not do this.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// Something the statement names does not exist (a live query, a job).
    #[error("{0}")]
    NotFound(String),
    /// A parameter is missing or malformed.
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    /// The model, the catalog or the row store refused or failed.
    #[error("{0}")]
    Domain(DomainError),
    /// DataFusion failed to plan or run a query.
    #[error("{}", strip_datafusion_prefixes(.0))]
    DataFusion(Box<DataFusionError>),
}

impl From<DomainError> for QueryError {
    fn from(e: DomainError) -> Self {
        QueryError::Domain(e)
    }
}

impl From<arrow::error::ArrowError> for QueryError {
    fn from(e: arrow::error::ArrowError) -> Self {
        QueryError::from(DataFusionError::from(e))
    }
}

impl From<DataFusionError> for QueryError {
    fn from(e: DataFusionError) -> Self {
        // A domain error raised inside a DataFusion plan keeps its own kind.
        match e.find_root() {
            DataFusionError::External(inner) => {
                if let Some(domain) = inner.downcast_ref::<DomainError>() {
                    return QueryError::Domain(domain.clone());
                }
                // A refusal of the statement's catalog (see providers/catalog.rs).
                if let Some(QueryError::PermissionDenied(message)) = inner.downcast_ref::<QueryError>() {
                    return QueryError::PermissionDenied(message.clone());
                }
                QueryError::DataFusion(Box::new(e))
            }
            DataFusionError::Plan(message) if missing_table(message).is_some() => {
                let table = missing_table(message).unwrap_or_default().to_owned();
                QueryError::Domain(DomainError::TableNotFound { table })
            }
            DataFusionError::NotImplemented(message) if is_undecorrelated_subquery(message) => {
                QueryError::Unsupported(UNDECORRELATED_SUBQUERY.to_owned())
            }
            DataFusionError::Plan(message)
                if message.contains("unique expression names") && message.contains("<subquery>") =>
            {
                QueryError::Unsupported(UNNAMED_SUBQUERIES.to_owned())
            }
            _ => QueryError::DataFusion(Box::new(e)),
        }
    }
}

/// The `namespace.table` of DataFusion's "table 'calamus.ns.t' not found" (it names the
/// table with the catalog, which is no name of the user's).
fn missing_table(message: &str) -> Option<&str> {
    let name = message.strip_prefix("table '")?.strip_suffix("' not found")?;
    Some(
        name.strip_prefix(CATALOG_NAME)
            .and_then(|n| n.strip_prefix('.'))
            .unwrap_or(name),
    )
}

/// What a subquery that DataFusion's optimiser could not turn into a join answers.
pub const UNDECORRELATED_SUBQUERY: &str = "this subquery refers to the outer query in a way Calamus cannot run yet: \
     a correlated subquery must be in WHERE (IN, EXISTS or a scalar comparison) and be correlated by equalities \
     (inner.a = outer.a); rewrite it as a join";

/// What two unnamed subqueries in one select list answer.
pub const UNNAMED_SUBQUERIES: &str =
    "two subqueries in one select list have the same name: give each an alias (AS name)";

/// DataFusion plans a subquery expression only after its optimiser has rewritten it into a
/// join; one that is left means the rewrite was not possible.
fn is_undecorrelated_subquery(message: &str) -> bool {
    message.contains("does not support logical expression")
        && ["ScalarSubquery", "InSubquery", "Exists"]
            .iter()
            .any(|kind| message.contains(kind))
}

/// DataFusion's messages carry layer prefixes ("Error during planning: ") that say nothing
/// to a user; keep the message, drop the noise.
fn strip_datafusion_prefixes(e: &DataFusionError) -> String {
    let text = e.to_string();
    let mut rest = text.as_str();
    for prefix in [
        "Error during planning: ",
        "Execution error: ",
        "External error: ",
        "Schema error: ",
        "Arrow error: ",
        "SQL error: ",
        "This feature is not implemented: ",
        "Optimizer rule 'simplify_expressions' failed\ncaused by\n",
    ] {
        while let Some(stripped) = rest.strip_prefix(prefix) {
            rest = stripped;
        }
    }
    rest.trim().to_owned()
}

impl QueryError {
    /// The error as a caller with `role` may read it. For `user` and `service`, a refusal
    /// and a "not found" (of a namespace, table, user or storage) become one and the same
    /// `PermissionDenied` naming nothing, so that a caller cannot tell a table it may not
    /// read from one that does not exist, nor learn a name from an error; other errors,
    /// and every error for dba and system, are returned as they are.
    pub fn redacted_for(self, role: Role) -> QueryError {
        if role >= Role::Dba {
            return self;
        }
        match self.kind() {
            ErrorKind::PermissionDenied | ErrorKind::NotFound => {
                QueryError::PermissionDenied(GENERIC_REFUSAL.to_owned())
            }
            _ => self,
        }
    }

    /// The kind of failure, for mapping to a protocol status.
    pub fn kind(&self) -> ErrorKind {
        match self {
            QueryError::Syntax(_) | QueryError::InvalidStatement(_) | QueryError::Unsupported(_) => {
                ErrorKind::InvalidSql
            }
            QueryError::InvalidParameter(_) => ErrorKind::Execution,
            QueryError::NotFound(_) => ErrorKind::NotFound,
            QueryError::PermissionDenied(_) => ErrorKind::PermissionDenied,
            QueryError::Domain(e) => match e {
                DomainError::NamespaceNotFound { .. }
                | DomainError::TableNotFound { .. }
                | DomainError::UserNotFound { .. }
                | DomainError::StorageNotFound { .. } => ErrorKind::NotFound,
                DomainError::NamespaceExists { .. }
                | DomainError::TableExists { .. }
                | DomainError::UserExists { .. }
                | DomainError::ColumnExists { .. }
                | DomainError::DuplicateKey { .. }
                | DomainError::NamespaceNotEmpty { .. }
                | DomainError::Constraint(_)
                | DomainError::ReadRacedFlush(_) => ErrorKind::Conflict,
                DomainError::InvalidIdentifier { .. }
                | DomainError::ReservedName { .. }
                | DomainError::InvalidDefinition(_) => ErrorKind::InvalidSql,
                DomainError::ColumnNotFound { .. } | DomainError::InvalidValue(_) => ErrorKind::Execution,
                DomainError::KeyspaceNotFound { .. }
                | DomainError::Corrupt(_)
                | DomainError::Storage(_)
                | DomainError::Password(_) => ErrorKind::Internal,
                DomainError::DiskFull(_) | DomainError::DiskReadOnly(_) => ErrorKind::InsufficientStorage,
            },
            QueryError::DataFusion(e) => match e.find_root() {
                DataFusionError::SQL(..) => ErrorKind::InvalidSql,
                DataFusionError::Internal(_) | DataFusionError::IoError(_) | DataFusionError::ResourcesExhausted(_) => {
                    ErrorKind::Internal
                }
                _ => ErrorKind::Execution,
            },
        }
    }
}

/// Runs `run` again (up to five times) while it fails because it overlapped a flush that
/// moved rows it read: such a statement fails rather than miss or overwrite them (see
/// `DomainError::ReadRacedFlush`), and a second run reads them.
pub(crate) async fn retry_when_raced_by_flush<T, F, Fut>(mut run: F) -> QueryResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = QueryResult<T>>,
{
    let mut attempts = 0;
    loop {
        match run().await {
            Err(QueryError::Domain(DomainError::ReadRacedFlush(_))) if attempts < 5 => attempts += 1,
            outcome => return outcome,
        }
    }
}

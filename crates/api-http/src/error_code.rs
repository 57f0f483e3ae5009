//! The one mapping from a failure to an HTTP status and a stable error code (API.md's
//! error table).

use calamus_query::{ErrorKind, QueryError};
use thiserror::Error;

/// The stable error codes of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// Body not JSON, wrong fields (400).
    InvalidInput,
    /// Empty SQL (400).
    EmptySql,
    /// SQL that does not parse or is not allowed (400).
    InvalidSql,
    /// Bad params (400).
    InvalidParameter,
    /// Params given with several statements (400).
    ParamsWithBatch,
    /// Missing table or namespace (404).
    NotFound,
    /// Already exists, duplicate key, constraint (409).
    Conflict,
    /// Other statement failures (400).
    SqlExecutionError,
    /// Not allowed for the caller's role (403).
    PermissionDenied,
    /// Body too large (413).
    PayloadTooLarge,
    /// Rate limit (429).
    RateLimitExceeded,
    /// A fault of the server (500).
    InternalError,
    /// No `Authorization` header (401).
    MissingAuthorization,
    /// Wrong user name or password (401).
    InvalidCredentials,
    /// The token has expired (401).
    TokenExpired,
    /// The token is malformed, tampered with, signed by another secret, or of the wrong type (401).
    InvalidToken,
    /// No such endpoint (404).
    UnknownEndpoint,
    /// The endpoint does not take this method (405).
    MethodNotAllowed,
    /// A feature this version does not have (501).
    NotImplemented,
    /// The disk holding the data is full (507).
    InsufficientStorage,
}

impl ErrorCode {
    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            ErrorCode::InvalidInput
            | ErrorCode::EmptySql
            | ErrorCode::InvalidSql
            | ErrorCode::InvalidParameter
            | ErrorCode::ParamsWithBatch
            | ErrorCode::SqlExecutionError => 400,
            ErrorCode::MissingAuthorization
            | ErrorCode::InvalidCredentials
            | ErrorCode::TokenExpired
            | ErrorCode::InvalidToken => 401,
            ErrorCode::PermissionDenied => 403,
            ErrorCode::NotFound | ErrorCode::UnknownEndpoint => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::NotImplemented => 501,
            ErrorCode::InsufficientStorage => 507,
            ErrorCode::Conflict => 409,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::RateLimitExceeded => 429,
            ErrorCode::InternalError => 500,
        }
    }

    /// The code as the JSON body spells it.
    pub fn as_str(&self) -> &'static str {
        match self {
            ErrorCode::InvalidInput => "INVALID_INPUT",
            ErrorCode::EmptySql => "EMPTY_SQL",
            ErrorCode::InvalidSql => "INVALID_SQL",
            ErrorCode::InvalidParameter => "INVALID_PARAMETER",
            ErrorCode::ParamsWithBatch => "PARAMS_WITH_BATCH",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::Conflict => "CONFLICT",
            ErrorCode::SqlExecutionError => "SQL_EXECUTION_ERROR",
            ErrorCode::PermissionDenied => "PERMISSION_DENIED",
            ErrorCode::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            ErrorCode::RateLimitExceeded => "RATE_LIMIT_EXCEEDED",
            ErrorCode::InternalError => "INTERNAL_ERROR",
            ErrorCode::MissingAuthorization => "MISSING_AUTHORIZATION",
            ErrorCode::InvalidCredentials => "INVALID_CREDENTIALS",
            ErrorCode::TokenExpired => "TOKEN_EXPIRED",
            ErrorCode::InvalidToken => "INVALID_TOKEN",
            ErrorCode::UnknownEndpoint => "NOT_FOUND",
            ErrorCode::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            ErrorCode::NotImplemented => "NOT_IMPLEMENTED",
            ErrorCode::InsufficientStorage => "INSUFFICIENT_STORAGE",
        }
    }

    /// The code for a statement's failure.
    pub fn for_query_error(error: &QueryError) -> Self {
        match (error, error.kind()) {
            (QueryError::InvalidParameter(_), _) => ErrorCode::InvalidParameter,
            (_, ErrorKind::InvalidSql) => ErrorCode::InvalidSql,
            (_, ErrorKind::NotFound) => ErrorCode::NotFound,
            (_, ErrorKind::Conflict) => ErrorCode::Conflict,
            (_, ErrorKind::PermissionDenied) => ErrorCode::PermissionDenied,
            (_, ErrorKind::Execution) => ErrorCode::SqlExecutionError,
            (_, ErrorKind::Internal) => ErrorCode::InternalError,
            (_, ErrorKind::InsufficientStorage) => ErrorCode::InsufficientStorage,
        }
    }
}

/// A failure as the API reports it.
#[derive(Debug, Error)]
#[error("{message}")]
pub struct ApiError {
    /// The code (and so the status).
    pub code: ErrorCode,
    /// What a user reads.
    pub message: String,
    /// More context (the failing statement), when the caller may see it.
    pub details: Option<String>,
}

impl ApiError {
    /// A failure with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: None,
        }
    }

    /// The same failure with `details`.
    pub fn with_details(mut self, details: impl Into<String>) -> Self {
        self.details = Some(details.into());
        self
    }
}

impl From<&QueryError> for ApiError {
    fn from(error: &QueryError) -> Self {
        ApiError::new(ErrorCode::for_query_error(error), error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use calamus_domain::DomainError;

    #[test]
    fn every_error_kind_maps_to_the_status_of_the_error_table() {
        let cases: Vec<(QueryError, u16, &str)> = vec![
            (QueryError::Syntax("x".into()), 400, "INVALID_SQL"),
            (QueryError::InvalidParameter("x".into()), 400, "INVALID_PARAMETER"),
            (
                DomainError::TableNotFound { table: "a.b".into() }.into(),
                404,
                "NOT_FOUND",
            ),
            (
                DomainError::NamespaceNotFound { namespace: "a".into() }.into(),
                404,
                "NOT_FOUND",
            ),
            (
                DomainError::DuplicateKey {
                    table: "a.b".into(),
                    key: "1".into(),
                }
                .into(),
                409,
                "CONFLICT",
            ),
            (DomainError::TableExists { table: "a.b".into() }.into(), 409, "CONFLICT"),
            (QueryError::PermissionDenied("x".into()), 403, "PERMISSION_DENIED"),
            (DomainError::InvalidValue("x".into()).into(), 400, "SQL_EXECUTION_ERROR"),
            (DomainError::Storage("x".into()).into(), 500, "INTERNAL_ERROR"),
            (DomainError::DiskFull("x".into()).into(), 507, "INSUFFICIENT_STORAGE"),
        ];
        for (error, status, code) in cases {
            let api = ApiError::from(&error);
            assert_eq!((api.code.status(), api.code.as_str()), (status, code), "{error}");
        }
    }
}

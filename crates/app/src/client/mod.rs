//! `calamus sql`: a client of a running server over HTTP.
//!
//! - [`SqlClient`]: logs in once (`POST /v1/api/auth/login`) and runs batches of SQL
//!   (`POST /v1/api/sql`) with the Bearer token it got;
//! - [`output`]: the results as an aligned text table, the server's JSON, or CSV;
//! - [`statements`]: where a statement typed at the prompt ends;
//! - [`prompt`]: the interactive loop.
//!
//! [`run_sql`] is the whole of `calamus sql -c`, callable from tests.

pub mod output;
pub mod prompt;
pub mod statements;

use std::fmt;
use std::io::Write;
use std::time::Duration;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use calamus_api_http::ErrorCode;
use calamus_query::Statement;

use crate::error::AppError;
pub use output::{OutputFormat, StatementResult, write_results};

/// Where the server is and who to be there.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// The server's base URL, e.g. `http://127.0.0.1:8080` (`http://` may be left out).
    pub url: String,
    /// The user to log in as.
    pub user: String,
    /// The user's password.
    pub password: String,
    /// A Bearer access token; when set, no login happens and `user`/`password` are unused.
    pub token: Option<String>,
    /// The namespace unqualified table names resolve in (`namespace_id` of each request).
    pub namespace: Option<String>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:8080".into(),
            user: "root".into(),
            password: String::new(),
            token: None,
            namespace: None,
        }
    }
}

impl fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientOptions")
            .field("url", &self.url)
            .field("user", &self.user)
            .field("password", &"<hidden>")
            .field("token", &self.token.as_ref().map(|_| "<hidden>"))
            .field("namespace", &self.namespace)
            .finish()
    }
}

/// The successful answer to one batch of SQL.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlResponse {
    /// One entry per statement, as the server sent it (`schema`/`rows` or `message`).
    pub results: Vec<Value>,
    /// The `results` array exactly as the server wrote it (what `--format json` prints).
    pub results_json: String,
    /// The server's time for the batch, in milliseconds.
    pub took_ms: Option<f64>,
}

/// The fields of the server's answers that the client reads.
#[derive(Debug, Deserialize)]
struct Answer<'a> {
    #[serde(default)]
    status: Option<String>,
    #[serde(borrow, default)]
    results: Option<&'a RawValue>,
    #[serde(default)]
    took: Option<f64>,
    #[serde(default)]
    error: Option<ErrorBody>,
    #[serde(default)]
    access_token: Option<String>,
}

/// `{"code": ..., "message": ..., "details": ...}` of a failure.
#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    details: Option<String>,
}

/// A logged-in connection to a server (HTTP/1.1 with keep-alive).
pub struct SqlClient {
    agent: ureq::Agent,
    base_url: String,
    options: ClientOptions,
    /// The `Authorization` header value.
    authorization: String,
}

impl fmt::Debug for SqlClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlClient").field("base_url", &self.base_url).finish()
    }
}

/// How long to wait for the server to accept a connection; a query itself has no limit.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl SqlClient {
    /// Connects to the server: logs in with `options.user` and `options.password`, unless
    /// `options.token` is given.
    pub fn connect(options: &ClientOptions) -> Result<Self, AppError> {
        let base_url = base_url(&options.url)?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .user_agent(concat!("calamus-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let mut client = Self {
            agent,
            base_url,
            options: options.clone(),
            authorization: String::new(),
        };
        client.authorization = match &options.token {
            Some(token) => format!("Bearer {token}"),
            None => format!("Bearer {}", client.login()?),
        };
        Ok(client)
    }

    /// Runs a batch of one or more statements; a failure of the server or of a statement
    /// is an error (`AppError::ServerRejected` carries the server's code and message).
    pub fn execute(&mut self, sql: &str) -> Result<SqlResponse, AppError> {
        let mut body = json!({ "sql": sql });
        if let Some(namespace) = &self.options.namespace {
            body["namespace_id"] = json!(namespace);
        }
        // An access token expires (an hour by default): a prompt left open that long logs
        // in again, once, when it logged in by itself in the first place.
        let response = match self.execute_once(&body) {
            Err(AppError::ServerRejected { code, .. })
                if code == ErrorCode::TokenExpired.as_str() && self.options.token.is_none() =>
            {
                self.authorization = format!("Bearer {}", self.login()?);
                self.execute_once(&body)
            }
            other => other,
        }?;
        // Every request is a session of its own on the server: a `USE` that ran carries
        // over to the next requests as their `namespace_id`.
        if let Some(namespace) = last_use(sql) {
            self.options.namespace = Some(namespace);
        }
        Ok(response)
    }

    fn execute_once(&self, body: &Value) -> Result<SqlResponse, AppError> {
        let path = "/v1/api/sql";
        let (status, bytes) = self.post(path, body, Some(&self.authorization))?;
        let answer = parse_answer(path, status, &bytes)?;
        let results_json = answer.results.map_or("[]", RawValue::get).to_owned();
        let results = serde_json::from_str(&results_json).map_err(|e| AppError::BadResponse {
            reason: format!("'results' is not an array of results: {e}"),
        })?;
        Ok(SqlResponse {
            results,
            results_json,
            took_ms: answer.took,
        })
    }

    /// Logs in and returns the access token.
    fn login(&self) -> Result<String, AppError> {
        let path = "/v1/api/auth/login";
        let body = json!({ "user": self.options.user, "password": self.options.password });
        let (status, bytes) = self.post(path, &body, None)?;
        parse_answer(path, status, &bytes)?
            .access_token
            .ok_or_else(|| AppError::BadResponse {
                reason: "the login answer has no access_token".into(),
            })
    }

    /// POSTs JSON; returns the status and the body of the answer, whatever the status.
    fn post(&self, path: &str, body: &Value, authorization: Option<&str>) -> Result<(u16, Vec<u8>), AppError> {
        let url = format!("{}{path}", self.base_url);
        let mut request = self.agent.post(&url).header("Content-Type", "application/json");
        if let Some(value) = authorization {
            request = request.header("Authorization", value);
        }
        let unreachable = |reason: String| AppError::Connection {
            url: self.base_url.clone(),
            reason,
        };
        let mut response = request
            .send(body.to_string())
            .map_err(|e| unreachable(connection_reason(&e)))?;
        let bytes = response
            .body_mut()
            .with_config()
            .limit(u64::MAX)
            .read_to_vec()
            .map_err(|e| unreachable(e.to_string()))?;
        Ok((response.status().as_u16(), bytes))
    }
}

/// The answer in `bytes`, if it says success; otherwise the server's error.
fn parse_answer<'a>(path: &str, status: u16, bytes: &'a [u8]) -> Result<Answer<'a>, AppError> {
    let answer: Answer<'a> = serde_json::from_slice(bytes).map_err(|_| AppError::BadResponse {
        reason: format!(
            "{path} answered HTTP {status} with a body that is not JSON: {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
        ),
    })?;
    let failed = !(200..300).contains(&status) || answer.status.as_deref() == Some("error");
    if failed {
        let error = answer.error.unwrap_or_default();
        return Err(AppError::ServerRejected {
            code: error.code.unwrap_or_else(|| "HTTP_ERROR".into()),
            message: error
                .message
                .unwrap_or_else(|| format!("the server answered HTTP {status}")),
            details: error.details,
        });
    }
    Ok(answer)
}

/// The namespace the last `USE` of `sql` chooses, if it has one (read by the server's
/// own parser).
pub fn last_use(sql: &str) -> Option<String> {
    let statements = calamus_query::parser::parse_statements(sql).ok()?;
    statements.iter().rev().find_map(|statement| match statement {
        Statement::Use { namespace } => Some(namespace.value.clone()),
        _ => None,
    })
}

/// The base URL without a trailing `/`; `http://` is added when no scheme is given.
fn base_url(url: &str) -> Result<String, AppError> {
    let url = url.trim().trim_end_matches('/');
    if url.starts_with("https://") {
        return Err(AppError::Connection {
            url: url.to_owned(),
            reason: "this client speaks plain http:// only; put a TLS-terminating proxy in front of it or \
                     use an http:// URL"
                .into(),
        });
    }
    if url.starts_with("http://") {
        Ok(url.to_owned())
    } else if url.contains("://") {
        Err(AppError::Connection {
            url: url.to_owned(),
            reason: "the URL must start with http://".into(),
        })
    } else {
        Ok(format!("http://{url}"))
    }
}

/// Says what to do about the usual failure (nothing listening).
fn connection_reason(error: &ureq::Error) -> String {
    match error {
        ureq::Error::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            "connection refused; is the server running (`calamus serve`), and is --url right?".into()
        }
        other => other.to_string(),
    }
}

/// Runs `sql` as one batch against the server `options` name and writes the results to
/// `out` in `format`: all of `calamus sql -c`. A failure of the server or of a statement
/// is returned (and nothing of it written).
pub fn run_sql(options: &ClientOptions, sql: &str, format: OutputFormat, out: &mut impl Write) -> Result<(), AppError> {
    let mut client = SqlClient::connect(options)?;
    let response = client.execute(sql)?;
    write_results(&response, format, out, &mut std::io::stderr())?;
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests;

//! `POST /v1/api/sql`: run a batch of statements for the caller.
//!
//! Every statement is parsed and authorised before any runs. Results are written as JSON
//! while the statements run, into a buffer that becomes the whole response when it stays
//! small; once it passes [`STREAM_THRESHOLD`] the response starts (200) and the rest is
//! streamed in chunks, waiting for the client to read, so a large result never sits whole
//! in memory. The body therefore ends with its `status`: a failure after streaming began
//! (rare: a runtime error deep into a large result) is reported there, after the rows
//! already sent.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use calamus_domain::model::{Role, User};
use calamus_domain::{NamespaceId, UserId};
use calamus_query::authorization::rules::GENERIC_REFUSAL;
use calamus_query::{QueryEngine, QueryError, ScalarValue, Session, Statement, StreamedStatement, StreamingOutput};
use futures::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::{Response, StatusCode};
use serde::Deserialize;

use crate::json_body::from_object;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::encode::{schema_json, write_rows_as_arrays};
use crate::error_code::{ApiError, ErrorCode};
use crate::response::{Body, JSON, bytes_response, elapsed_ms, error_body, error_response};
use crate::run_to_end::RunToEnd;

/// Bytes of results buffered before the response starts streaming.
pub const STREAM_THRESHOLD: usize = 256 * 1024;
/// Chunks in flight to a streaming client before the statements wait for it.
const CHUNKS_IN_FLIGHT: usize = 4;

/// The request body.
#[derive(Debug, Deserialize)]
pub(crate) struct SqlRequest {
    sql: String,
    #[serde(default)]
    pub(crate) params: Option<Vec<Value>>,
    #[serde(default)]
    pub(crate) namespace_id: Option<String>,
}

/// A request to run, checked and parsed.
struct Batch {
    session: Session,
    statements: Vec<(Statement, Option<String>)>,
    params: Vec<ScalarValue>,
}

/// Limits of the SQL endpoint.
#[derive(Debug, Clone, Copy)]
pub struct SqlLimits {
    /// Rows one result may hold; more are cut and the result says `"truncated": true`.
    pub max_result_rows: Option<u64>,
    /// Statements one request may hold; more are refused before any runs.
    pub max_statements: usize,
}

/// Handles a SQL request of `caller` whose body is `body`; `started` is when it arrived.
pub async fn handle(
    engine: &Arc<QueryEngine>,
    caller: &User,
    body: &[u8],
    limits: SqlLimits,
    started: Instant,
) -> Response<Body> {
    let batch = match prepare(engine, caller, body, limits) {
        Ok(batch) => batch,
        Err(error) => return error_response(&error, elapsed_ms(started)),
    };
    let (decision_tx, mut decision_rx) = oneshot::channel();
    let engine = Arc::clone(engine);
    let role = caller.role;
    let mut running = RunToEnd::new(async move {
        let sink = Sink::new(decision_tx, started);
        run_batch(&engine, batch, role, limits, sink).await;
    });
    // The batch runs on this task until the response starts: most batches end first, and
    // answer without a hand-over to another thread. What is left of a batch whose response
    // started first, or whose request is dropped (the client went away), goes on in a task
    // of its own when `running` is dropped.
    let decision = tokio::select! {
        biased;
        () = &mut running => decision_rx.await,
        decision = &mut decision_rx => decision,
    };
    drop(running);
    match decision {
        Ok(response) => response,
        Err(_) => error_response(
            &ApiError::new(ErrorCode::InternalError, "the statements stopped without an answer"),
            elapsed_ms(started),
        ),
    }
}

/// Decodes, parses and authorises the whole batch.
fn prepare(engine: &QueryEngine, caller: &User, body: &[u8], limits: SqlLimits) -> Result<Batch, ApiError> {
    let invalid = |why: String| {
        ApiError::new(
            ErrorCode::InvalidInput,
            format!(
                "the body must be a JSON object {{\"sql\": \"...\", \"params\": [...], \"namespace_id\": \"...\"}}: {why}"
            ),
        )
    };
    let request: SqlRequest = from_object(body).map_err(invalid)?;
    if request.sql.trim().is_empty() {
        return Err(ApiError::new(ErrorCode::EmptySql, "the request holds no SQL"));
    }
    let mut session = Session::new(caller.id.clone(), caller.role);
    if let Some(namespace) = &request.namespace_id {
        session.namespace = NamespaceId::new(namespace)
            .map_err(|e| ApiError::new(ErrorCode::InvalidInput, format!("namespace_id: {e}")))?;
    }
    let statements = engine
        .prepare_with_text(&session, &request.sql)
        .map_err(|e| statement_error(e, caller.role, None))?;
    if statements.is_empty() {
        return Err(ApiError::new(ErrorCode::EmptySql, "the request holds no statement"));
    }
    if statements.len() > limits.max_statements {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            format!(
                "a request holds at most {} statements (server.max_statements_per_request); this one has {}; \
                 nothing was run",
                limits.max_statements,
                statements.len()
            ),
        ));
    }
    let params = request.params.unwrap_or_default();
    if !params.is_empty() && statements.len() > 1 {
        return Err(ApiError::new(
            ErrorCode::ParamsWithBatch,
            format!(
                "params apply to a single statement; this request holds {}",
                statements.len()
            ),
        ));
    }
    let params = params
        .iter()
        .enumerate()
        .map(|(i, value)| param_value(i + 1, value))
        .collect::<Result<Vec<_>, _>>()?;
    let statements = statements
        .into_iter()
        .map(|(statement, text)| {
            let text = shows_text(&statement).then(|| text.to_owned());
            (statement, text)
        })
        .collect();
    Ok(Batch {
        session,
        statements,
        params,
    })
}

/// A JSON parameter as the value bound to `$index`.
pub(crate) fn param_value(index: usize, value: &Value) -> Result<ScalarValue, ApiError> {
    Ok(match value {
        Value::Null => ScalarValue::Null,
        Value::Bool(b) => ScalarValue::Boolean(Some(*b)),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => ScalarValue::Int64(Some(i)),
            (None, Some(f)) => ScalarValue::Float64(Some(f)),
            (None, None) => {
                return Err(ApiError::new(
                    ErrorCode::InvalidParameter,
                    format!("parameter ${index}: the number {n} is out of range"),
                ));
            }
        },
        Value::String(s) => ScalarValue::Utf8(Some(s.clone())),
        Value::Array(_) | Value::Object(_) => {
            return Err(ApiError::new(
                ErrorCode::InvalidParameter,
                format!("parameter ${index}: arrays and objects are not values; pass JSON as a string"),
            ));
        }
    })
}

/// Whether a failure of `statement` shows its SQL in the error's `details`: standard
/// statements do, Calamus's own do not (their text may hold a password).
fn shows_text(statement: &Statement) -> bool {
    match statement {
        Statement::Sql(_) | Statement::InsertLiteralRows(_) => true,
        Statement::ExecuteAs { statement, .. } => shows_text(statement),
        _ => false,
    }
}

/// A statement's failure as the caller with `role` may see it: for `user` and `service`, a
/// refusal and a "not found" become one generic refusal naming nothing
/// ([`QueryError::redacted_for`]), and then carry no `details` either. `position` is the
/// statement's number, the batch's size and its SQL.
fn statement_error(error: QueryError, role: Role, position: Option<(usize, usize, Option<&str>)>) -> ApiError {
    let error = error.redacted_for(role);
    let generic = matches!(&error, QueryError::PermissionDenied(message) if message == GENERIC_REFUSAL);
    let message = match position {
        Some((n, total, _)) if total > 1 => format!("Statement {n} failed: {error}"),
        _ => error.to_string(),
    };
    let api_error = ApiError::new(ErrorCode::for_query_error(&error), message);
    match position.and_then(|(_, _, text)| text) {
        Some(text) if !generic => api_error.with_details(text),
        _ => api_error,
    }
}

/// How writing one statement's result ended.
enum Written {
    /// The result is in the sink.
    Done,
    /// The statement failed; `open` is the rows result it interrupted (rows written, user).
    Failed {
        error: QueryError,
        open: Option<(u64, UserId)>,
    },
    /// The client went away.
    Gone,
}

/// Runs the batch, writing results into `sink`.
async fn run_batch(engine: &QueryEngine, batch: Batch, role: Role, limits: SqlLimits, mut sink: Sink) {
    let Batch {
        mut session,
        statements,
        params,
    } = batch;
    let total = statements.len();
    sink.push(b"{\"results\":[");
    for (index, (statement, text)) in statements.into_iter().enumerate() {
        if index > 0 {
            sink.push(b",");
        }
        let written = match engine.run_streaming(&mut session, statement, &params).await {
            Ok(streamed) => write_result(&mut sink, streamed, limits).await,
            Err(error) => Written::Failed { error, open: None },
        };
        match written {
            Written::Done => {}
            Written::Gone => return,
            Written::Failed { error, open } => {
                let error = statement_error(error, role, Some((index + 1, total, text.as_deref())));
                return sink.fail(error, open).await;
            }
        }
    }
    sink.succeed().await;
}

/// Writes one statement's result into `sink`, streaming a query's rows as they come.
async fn write_result(sink: &mut Sink, streamed: StreamedStatement, limits: SqlLimits) -> Written {
    let as_user = streamed.as_user;
    let (schema, mut rows) = match streamed.output {
        StreamingOutput::Affected { row_count, message } => {
            let object = serde_json::json!({"row_count": row_count, "message": message, "as_user": as_user.as_str()});
            sink.push(&serde_json::to_vec(&object).unwrap_or_default());
            return if sink.flush().await.is_ok() {
                Written::Done
            } else {
                Written::Gone
            };
        }
        StreamingOutput::Rows { schema, rows } => (schema, rows),
    };
    sink.push(b"{\"schema\":");
    sink.push(&serde_json::to_vec(&schema_json(&schema)).unwrap_or_default());
    sink.push(b",\"rows\":[");
    let mut written: u64 = 0;
    let mut truncated = false;
    while !truncated && let Some(batch) = rows.next().await {
        let mut batch = match batch {
            Ok(batch) => batch,
            Err(error) => {
                return Written::Failed {
                    error,
                    open: Some((written, as_user)),
                };
            }
        };
        if let Some(cap) = limits.max_result_rows {
            let room = cap.saturating_sub(written);
            if batch.num_rows() as u64 > room {
                batch = batch.slice(0, usize::try_from(room).unwrap_or(usize::MAX));
                truncated = true;
            }
        }
        write_rows_as_arrays(sink.buffer(), &batch, written);
        written += batch.num_rows() as u64;
        if sink.flush().await.is_err() {
            return Written::Gone;
        }
    }
    close_rows(sink.buffer(), written, &as_user, truncated);
    if sink.flush().await.is_ok() {
        Written::Done
    } else {
        Written::Gone
    }
}

/// Closes a rows result: the array, `row_count`, `as_user`, and `truncated` when cut.
fn close_rows(out: &mut Vec<u8>, rows: u64, as_user: &UserId, truncated: bool) {
    out.extend_from_slice(b"],\"row_count\":");
    out.extend_from_slice(rows.to_string().as_bytes());
    out.extend_from_slice(b",\"as_user\":");
    let _ = serde_json::to_writer(&mut *out, as_user.as_str());
    if truncated {
        out.extend_from_slice(b",\"truncated\":true");
    }
    out.push(b'}');
}

/// Where the JSON of a response goes: first a buffer, then, once it is large, a stream.
struct Sink {
    started: Instant,
    buffer: Vec<u8>,
    /// Until the response has started: where to send it.
    decision: Option<oneshot::Sender<Response<Body>>>,
    /// After it started: the chunks still to send.
    chunks: Option<mpsc::Sender<Bytes>>,
}

/// The client went away; stop.
struct Gone;

impl Sink {
    fn new(decision: oneshot::Sender<Response<Body>>, started: Instant) -> Self {
        Self {
            started,
            buffer: Vec::with_capacity(4096),
            decision: Some(decision),
            chunks: None,
        }
    }

    fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.buffer
    }

    fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// Sends the buffer once it is large, starting the response if it has not started.
    async fn flush(&mut self) -> Result<(), Gone> {
        if self.buffer.len() < STREAM_THRESHOLD {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buffer));
        if let Some(decision) = self.decision.take() {
            let (tx, rx) = mpsc::channel::<Bytes>(CHUNKS_IN_FLIGHT);
            let first = futures::stream::once(async move { chunk });
            let rest = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
            let frames = first
                .chain(rest)
                .map(|c| Ok::<_, std::convert::Infallible>(Frame::data(c)));
            let mut response = Response::new(StreamBody::new(frames).boxed_unsync());
            response.headers_mut().insert(hyper::header::CONTENT_TYPE, JSON);
            decision.send(response).map_err(|_| Gone)?;
            self.chunks = Some(tx);
            return Ok(());
        }
        match &self.chunks {
            Some(chunks) => chunks.send(chunk).await.map_err(|_| Gone),
            None => Err(Gone),
        }
    }

    /// Ends a successful batch.
    async fn succeed(mut self) {
        let tail = format!("],\"took\":{},\"status\":\"success\"}}", elapsed_ms(self.started));
        self.push(tail.as_bytes());
        self.finish(StatusCode::OK).await;
    }

    /// Ends the batch with `error`; `open` is the rows result it interrupted, if any.
    async fn fail(mut self, error: ApiError, open: Option<(u64, UserId)>) {
        let took = elapsed_ms(self.started);
        if let Some(decision) = self.decision.take() {
            let _ = decision.send(error_response(&error, took));
            return;
        }
        if let Some(open) = open {
            close_rows(&mut self.buffer, open.0, &open.1, false);
        }
        let body = error_body(&error, took);
        let tail = format!(
            "],\"took\":{took},\"status\":\"error\",\"error\":{}}}",
            serde_json::to_string(&body["error"]).unwrap_or_default()
        );
        self.push(tail.as_bytes());
        self.finish(StatusCode::OK).await;
    }

    async fn finish(mut self, status: StatusCode) {
        let rest = Bytes::from(std::mem::take(&mut self.buffer));
        if let Some(decision) = self.decision.take() {
            let _ = decision.send(bytes_response(status, rest, JSON));
        } else if let Some(chunks) = self.chunks.take() {
            let _ = chunks.send(rest).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_params_become_scalar_values() {
        assert_eq!(
            param_value(1, &serde_json::json!(5)).unwrap(),
            ScalarValue::Int64(Some(5))
        );
        assert_eq!(
            param_value(1, &serde_json::json!(0.5)).unwrap(),
            ScalarValue::Float64(Some(0.5))
        );
        assert_eq!(
            param_value(1, &serde_json::json!("x")).unwrap(),
            ScalarValue::Utf8(Some("x".into()))
        );
        assert_eq!(
            param_value(1, &serde_json::json!(true)).unwrap(),
            ScalarValue::Boolean(Some(true))
        );
        assert_eq!(param_value(1, &Value::Null).unwrap(), ScalarValue::Null);
        let error = param_value(2, &serde_json::json!([1])).unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidParameter);
        assert!(error.message.contains("$2"), "{}", error.message);
    }

    #[test]
    fn user_and_service_failures_name_nothing() {
        let error: QueryError = calamus_domain::DomainError::TableNotFound {
            table: "secret.payroll".into(),
        }
        .into();
        let hidden = statement_error(error, Role::User, Some((1, 1, Some("SELECT * FROM secret.payroll"))));
        assert_eq!(hidden.code, ErrorCode::PermissionDenied);
        assert!(!hidden.message.contains("payroll"), "{}", hidden.message);
        assert!(hidden.details.is_none());
        let error: QueryError = calamus_domain::DomainError::TableNotFound {
            table: "secret.payroll".into(),
        }
        .into();
        let shown = statement_error(error, Role::Dba, Some((2, 3, Some("SELECT * FROM secret.payroll"))));
        assert!(shown.message.starts_with("Statement 2 failed: "), "{}", shown.message);
        assert!(shown.message.contains("payroll"));
        assert_eq!(shown.details.as_deref(), Some("SELECT * FROM secret.payroll"));
    }
}

//! Running a statement with its rows as a stream, for callers that send results as they
//! are produced (the HTTP API) instead of holding them whole in memory.

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use calamus_domain::UserId;
use datafusion::scalar::ScalarValue;
use futures::stream::{self, BoxStream, StreamExt};

use crate::engine::{QueryEngine, is_query};
use crate::error::{QueryError, QueryResult};
use crate::output::StatementOutput;
use crate::session::Session;
use crate::statement::Statement;

/// Batches of a query's rows as they are produced; an error ends the stream.
pub type RowStream = BoxStream<'static, QueryResult<RecordBatch>>;

/// What a statement gives back when its rows are streamed.
pub enum StreamingOutput {
    /// A query's rows.
    Rows {
        /// The columns.
        schema: SchemaRef,
        /// The rows, produced while the caller reads them.
        rows: RowStream,
    },
    /// A statement that changed something.
    Affected {
        /// Rows affected (0 for DDL).
        row_count: u64,
        /// A human message: `Inserted 3 row(s)`.
        message: String,
    },
}

impl std::fmt::Debug for StreamingOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StreamingOutput::Rows { schema, .. } => {
                f.debug_struct("Rows").field("schema", schema).finish_non_exhaustive()
            }
            StreamingOutput::Affected { row_count, message } => f
                .debug_struct("Affected")
                .field("row_count", row_count)
                .field("message", message)
                .finish(),
        }
    }
}

impl From<StatementOutput> for StreamingOutput {
    fn from(output: StatementOutput) -> Self {
        match output {
            StatementOutput::Rows { schema, batches } => StreamingOutput::Rows {
                schema,
                rows: stream::iter(batches.into_iter().map(Ok)).boxed(),
            },
            StatementOutput::Affected { row_count, message } => StreamingOutput::Affected { row_count, message },
        }
    }
}

/// A streamed statement's output and the user it ran as (`EXECUTE AS USER` changes it).
#[derive(Debug)]
pub struct StreamedStatement {
    /// The user whose partitions the statement read or wrote.
    pub as_user: UserId,
    /// The output.
    pub output: StreamingOutput,
}

impl QueryEngine {
    /// Runs one parsed statement like [`QueryEngine::run`], but a query's rows are produced
    /// while the caller reads the stream. Other statements run to completion first.
    pub async fn run_streaming(
        &self,
        session: &mut Session,
        statement: Statement,
        params: &[ScalarValue],
    ) -> QueryResult<StreamedStatement> {
        self.authorize(session, &statement)?;
        self.dispatch_streaming(session, statement, params).await
    }

    /// [`Self::run_streaming`] of a statement [`Self::authorize`] has allowed.
    async fn dispatch_streaming(
        &self,
        session: &mut Session,
        statement: Statement,
        params: &[ScalarValue],
    ) -> QueryResult<StreamedStatement> {
        match statement {
            Statement::ExecuteAs { user, statement } => {
                let mut as_user = self.execute_as_session(session, &user)?;
                Box::pin(self.dispatch_streaming(&mut as_user, *statement, params)).await
            }
            Statement::Sql(sql) if is_query(&sql) => {
                let planned = self.plan_session_query(session, &sql, params, None).await?;
                let rows = datafusion::physical_plan::execute_stream(planned.physical, planned.task)?
                    .map(|batch| batch.map_err(QueryError::from))
                    .boxed();
                Ok(StreamedStatement {
                    as_user: session.user.clone(),
                    output: StreamingOutput::Rows {
                        schema: planned.schema,
                        rows,
                    },
                })
            }
            other => {
                let output = self.dispatch(session, other, params).await?;
                Ok(StreamedStatement {
                    as_user: session.user.clone(),
                    output: output.into(),
                })
            }
        }
    }
}

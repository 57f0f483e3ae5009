//! What a statement gives back.

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

/// The result of one statement.
#[derive(Debug, Clone)]
pub enum StatementOutput {
    /// A query's rows (SELECT, SHOW, DESCRIBE, RETURNING).
    Rows {
        /// The columns.
        schema: SchemaRef,
        /// The rows, in batches.
        batches: Vec<RecordBatch>,
    },
    /// A statement that changed something.
    Affected {
        /// Rows affected (0 for DDL).
        row_count: u64,
        /// A human message: `Inserted 3 row(s)`, `Table app.t created successfully`.
        message: String,
    },
}

impl StatementOutput {
    /// An `Affected` output.
    pub fn affected(row_count: u64, message: impl Into<String>) -> Self {
        StatementOutput::Affected {
            row_count,
            message: message.into(),
        }
    }

    /// Number of rows returned or affected.
    pub fn row_count(&self) -> u64 {
        match self {
            StatementOutput::Rows { batches, .. } => batches.iter().map(|b| b.num_rows() as u64).sum(),
            StatementOutput::Affected { row_count, .. } => *row_count,
        }
    }
}

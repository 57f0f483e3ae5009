//! One sqllogictest connection: a [`Session`] of the engine, in-process.
//!
//! The default connection is `root` (role `system`). A `connection NAME` record runs its
//! statement as user NAME: on the first use of NAME the runner, as root, creates the user
//! (`CREATE USER IF NOT EXISTS NAME ... ROLE user`, so a script that created NAME itself
//! keeps the role it chose) and sets its password, then opens a session for it. Every
//! connection keeps its own session, so `USE ns` is per connection.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use calamus_query::{QueryEngine, QueryError, Session, StatementOutput};
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType};

use super::format::{ValueStyle, format_rows};

/// The password the runner gives every user it creates for a `connection` record.
pub const RUNNER_PASSWORD: &str = "slt-runner-password";

/// What root runs before a `connection NAME` record first acts as NAME: the user exists
/// (role `user` unless the script created it with another) with [`RUNNER_PASSWORD`].
pub fn connection_user_setup(user: &str) -> String {
    format!(
        "CREATE USER IF NOT EXISTS {user} WITH PASSWORD '{RUNNER_PASSWORD}' ROLE user; \
         ALTER USER {user} SET PASSWORD '{RUNNER_PASSWORD}'"
    )
}

/// A statement's failure, as the script's `statement error <regex>` sees it: the engine's
/// message (in-process), or the server's `error.message` (over HTTP).
#[derive(Debug, thiserror::Error)]
pub enum SltError {
    /// The engine refused or failed the statement.
    #[error("{0}")]
    Query(#[from] QueryError),
    /// The server refused or failed the statement: its answer's `error`.
    #[error("{message}")]
    Server {
        /// The error's `code` (`NOT_FOUND`, `PERMISSION_DENIED`, ...).
        code: String,
        /// The error's `message`.
        message: String,
    },
    /// The request did not reach the server, or its answer could not be read.
    #[error("HTTP request failed: {0}")]
    Transport(String),
    /// The server's answer is not what the protocol says.
    #[error("unexpected answer from the server: {0}")]
    Protocol(String),
    /// A result could not be turned into text.
    #[error("cannot format the result: {0}")]
    Format(#[from] datafusion::arrow::error::ArrowError),
    /// The runner could not open the connection.
    #[error("connection '{name}': {reason}")]
    Connection {
        /// The connection's name.
        name: String,
        /// Why it failed.
        reason: String,
    },
}

/// A connection of the sqllogictest runner to an in-process engine.
pub struct CalamusConnection {
    engine: Arc<QueryEngine>,
    session: Session,
    style: ValueStyle,
}

impl CalamusConnection {
    /// The default connection: root. Values print in `style`.
    pub fn root(engine: Arc<QueryEngine>, style: ValueStyle) -> Self {
        Self {
            engine,
            session: Session::root(),
            style,
        }
    }

    /// A connection acting as `user`, created (role `user`) if it does not exist yet.
    pub async fn for_user(engine: Arc<QueryEngine>, user: &str, style: ValueStyle) -> Result<Self, SltError> {
        let fail = |e: QueryError| SltError::Connection {
            name: user.to_owned(),
            reason: e.to_string(),
        };
        let mut root = Session::root();
        let setup = connection_user_setup(user);
        engine.execute(&mut root, &setup, &[]).await.map_err(fail)?;
        let session = engine.session_for(user).map_err(fail)?;
        Ok(Self { engine, session, style })
    }
}

#[async_trait]
impl AsyncDB for CalamusConnection {
    type Error = SltError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SltError> {
        let outputs = self.engine.execute(&mut self.session, sql, &[]).await?;
        // A record holding several statements answers with the last one's output.
        Ok(match outputs.into_iter().next_back() {
            None => DBOutput::StatementComplete(0),
            Some(StatementOutput::Affected { row_count, .. }) => DBOutput::StatementComplete(row_count),
            Some(StatementOutput::Rows { schema, batches }) => {
                let (types, rows) = format_rows(&schema, &batches, self.style)?;
                DBOutput::Rows { types, rows }
            }
        })
    }

    async fn shutdown(&mut self) {}

    async fn sleep(duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

//! One sqllogictest connection to a running server, over its SQL endpoint (API.md): each
//! record is one `POST {url}/v1/api/sql` with `Authorization: Basic`.
//!
//! The default connection is `root`, with the password the runner was given. A
//! `connection NAME` record acts as user NAME: on its first use root creates the user and
//! sets its password exactly as the in-process runner does ([`super::CalamusConnection`]),
//! then the connection authenticates as NAME with [`RUNNER_PASSWORD`].
//!
//! A request is a session of its own on the server, so the one piece of session state the
//! scripts rely on, the namespace `USE ns` chose, is kept here per connection and sent as
//! the request's `namespace_id`.
//!
//! Every request authenticates, where an in-process session never does: a script that
//! changes a password (`ALTER USER ursula SET PASSWORD '...'`, also root's own) must not
//! lock its connections out. The runner follows the passwords the statements it ran set,
//! and should a named connection still be refused its credentials, root sets its password
//! back to [`RUNNER_PASSWORD`] and the request is sent once more.
//!
//! Results come back as JSON; [`super::wire`] turns them into Arrow again, so they print
//! through the same formatter as in-process results. A failure's text is the answer's
//! `error.message`: the engine's message, which the server words generically for roles
//! `user` and `service` when it could name something they may not see, and prefixes with
//! `Statement N failed: ` when the record holds several statements.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use calamus_api_http::ErrorCode;
use calamus_query::Statement;
use calamus_query::parser::parse_statements;
use calamus_query::statement::UserChange;
use serde_json::{Value, json};
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType};

use super::connection::{RUNNER_PASSWORD, SltError, connection_user_setup};
use super::format::{ValueStyle, format_rows};
use super::wire::decode_result;
use crate::server::basic;

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

/// Largest answer read.
const MAX_ANSWER_BYTES: u64 = 1 << 30;

/// The user every connection without a `connection` record acts as.
const ROOT: &str = "root";

/// A server the runner talks to: where, and the passwords of the users it acts as.
#[derive(Clone)]
pub struct HttpTarget {
    agent: ureq::Agent,
    base_url: String,
    /// Each user's current password, by lowercase name; shared by every connection.
    passwords: Arc<Mutex<HashMap<String, String>>>,
}

impl std::fmt::Debug for HttpTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTarget")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl HttpTarget {
    /// The server at `url` (`http://host:port`), whose root has `root_password`.
    pub fn new(url: &str, root_password: &str) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(REQUEST_TIMEOUT))
            .build()
            .into();
        let passwords = HashMap::from([(ROOT.to_owned(), root_password.to_owned())]);
        Self {
            agent,
            base_url: url.trim_end_matches('/').to_owned(),
            passwords: Arc::new(Mutex::new(passwords)),
        }
    }

    /// Whether the server answers its health check.
    pub fn check_health(&self) -> Result<(), String> {
        let url = format!("{}/health", self.base_url);
        let mut response = self
            .agent
            .get(&url)
            .call()
            .map_err(|e| format!("cannot reach the server at {}: {e}", self.base_url))?;
        let status = response.status().as_u16();
        if status == 200 {
            return Ok(());
        }
        let text = response.body_mut().read_to_string().unwrap_or_default();
        Err(format!(
            "the server at {} is not healthy: HTTP {status} {text}",
            self.base_url
        ))
    }

    /// Whether the server accepts root's credentials: a file fails at once when it does
    /// not, rather than record by record.
    pub async fn check_root(&self) -> Result<(), String> {
        match self.post(&self.authorization(ROOT), "SELECT 1", None).await {
            Ok(_) => Ok(()),
            Err(e) => Err(format!(
                "root cannot run statements on the server at {} (is root's password right?): {e}",
                self.base_url
            )),
        }
    }

    fn passwords(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.passwords.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `Basic` credentials of `user` with its current password.
    fn authorization(&self, user: &str) -> String {
        let password = self
            .passwords()
            .get(&user.to_ascii_lowercase())
            .cloned()
            .unwrap_or_else(|| RUNNER_PASSWORD.to_owned());
        basic(user, &password)
    }

    /// Records the password of `user`.
    fn set_password(&self, user: &str, password: &str) {
        self.passwords().insert(user.to_ascii_lowercase(), password.to_owned());
    }

    /// Runs `sql` as root (outside any `USE`).
    async fn as_root(&self, sql: &str) -> Result<Vec<Value>, SltError> {
        let results = self.post(&self.authorization(ROOT), sql, None).await?;
        self.follow_passwords(sql);
        Ok(results)
    }

    /// Records the passwords the statements of `sql`, which succeeded, set.
    fn follow_passwords(&self, sql: &str) {
        for (user, password) in password_changes(sql) {
            self.set_password(&user, &password);
        }
    }

    /// Runs `sql` with `authorization` in `namespace`: the answer's `results`, or its error.
    async fn post(&self, authorization: &str, sql: &str, namespace: Option<&str>) -> Result<Vec<Value>, SltError> {
        let mut request = json!({"sql": sql});
        if let Some(namespace) = namespace {
            request["namespace_id"] = Value::String(namespace.to_owned());
        }
        let body = serde_json::to_vec(&request).map_err(|e| SltError::Protocol(e.to_string()))?;
        let agent = self.agent.clone();
        let url = format!("{}/v1/api/sql", self.base_url);
        let authorization = authorization.to_owned();
        let (status, text) = tokio::task::spawn_blocking(move || {
            let mut response = agent
                .post(&url)
                .header("Authorization", &authorization)
                .header("Content-Type", "application/json")
                .send(&body[..])
                .map_err(|e| SltError::Transport(format!("POST {url}: {e}")))?;
            let status = response.status().as_u16();
            let text = response
                .body_mut()
                .with_config()
                .limit(MAX_ANSWER_BYTES)
                .read_to_string()
                .map_err(|e| SltError::Transport(format!("reading the answer of POST {url}: {e}")))?;
            Ok::<_, SltError>((status, text))
        })
        .await
        .map_err(|e| SltError::Transport(format!("the request's thread failed: {e}")))??;
        answer_results(status, &text)
    }
}

/// The `results` of an answer with HTTP `status` and body `text`, or the failure it reports.
fn answer_results(status: u16, text: &str) -> Result<Vec<Value>, SltError> {
    let unexpected = || SltError::Protocol(format!("HTTP {status}: {}", text.trim()));
    let body: Value = serde_json::from_str(text).map_err(|_| unexpected())?;
    // A streamed answer that fails midway is still `200`: its `status` says so.
    if body["status"] == "error" || status >= 400 {
        let error = &body["error"];
        let message = error["message"].as_str().ok_or_else(unexpected)?;
        return Err(SltError::Server {
            code: error["code"].as_str().unwrap_or_default().to_owned(),
            message: message.to_owned(),
        });
    }
    if body["status"] != "success" {
        return Err(unexpected());
    }
    let results = body["results"].as_array().ok_or_else(unexpected)?;
    if results.iter().any(|r| r["truncated"] == true) {
        return Err(SltError::Protocol(
            "the server cut a result short (`truncated`): compare results only without a row cap".into(),
        ));
    }
    Ok(results.clone())
}

/// A connection of the sqllogictest runner to a server over HTTP.
#[derive(Debug)]
pub struct HttpConnection {
    target: HttpTarget,
    /// Who the connection acts as.
    user: String,
    /// The namespace the last `USE` chose; `None`: the server's default.
    namespace: Option<String>,
    style: ValueStyle,
}

impl HttpConnection {
    /// The default connection: root. Values print in `style`.
    pub fn root(target: &HttpTarget, style: ValueStyle) -> Self {
        Self {
            target: target.clone(),
            user: ROOT.to_owned(),
            namespace: None,
            style,
        }
    }

    /// A connection acting as `user`, created by root (role `user`) if it does not exist
    /// yet; its password is set to [`RUNNER_PASSWORD`] either way.
    pub async fn for_user(target: &HttpTarget, user: &str, style: ValueStyle) -> Result<Self, SltError> {
        let setup = connection_user_setup(user);
        // Root's run records the password the setup's ALTER USER sets.
        target.as_root(&setup).await.map_err(|e| SltError::Connection {
            name: user.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            target: target.clone(),
            user: user.to_owned(),
            namespace: None,
            style,
        })
    }

    /// Runs `sql` on this connection, once more after root restored the connection's
    /// password should the server refuse its credentials.
    async fn send(&self, sql: &str) -> Result<Vec<Value>, SltError> {
        let namespace = self.namespace.as_deref();
        let first = self
            .target
            .post(&self.target.authorization(&self.user), sql, namespace)
            .await;
        match first {
            Err(SltError::Server { code, .. })
                if code == ErrorCode::InvalidCredentials.as_str() && self.user != ROOT =>
            {
                let reset = format!("ALTER USER {} SET PASSWORD '{RUNNER_PASSWORD}'", self.user);
                self.target.as_root(&reset).await.map_err(|e| SltError::Connection {
                    name: self.user.clone(),
                    reason: format!("its credentials were refused and cannot be restored: {e}"),
                })?;
                self.target
                    .post(&self.target.authorization(&self.user), sql, namespace)
                    .await
            }
            other => other,
        }
    }
}

#[async_trait]
impl AsyncDB for HttpConnection {
    type Error = SltError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SltError> {
        let results = self.send(sql).await?;
        self.target.follow_passwords(sql);
        if let Some(namespace) = used_namespace(sql) {
            self.namespace = Some(namespace);
        }
        // A record holding several statements answers with the last one's output.
        let Some(last) = results.last() else {
            return Ok(DBOutput::StatementComplete(0));
        };
        if last.get("schema").is_some() {
            let (schema, batch) = decode_result(&last["schema"], &last["rows"]).map_err(SltError::Protocol)?;
            let (types, rows) = format_rows(&schema, &[batch], self.style)?;
            return Ok(DBOutput::Rows { types, rows });
        }
        let row_count = last["row_count"]
            .as_u64()
            .ok_or_else(|| SltError::Protocol(format!("a result without `row_count`: {last}")))?;
        Ok(DBOutput::StatementComplete(row_count))
    }

    async fn shutdown(&mut self) {}

    async fn sleep(duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// The namespace the last `USE [NAMESPACE] name` statement of `sql` chooses (the
/// client's own rule: `calamus sql` follows `USE` the same way).
fn used_namespace(sql: &str) -> Option<String> {
    calamus::client::last_use(sql)
}

/// The passwords the statements of `sql` set, in order: `(user, password)` of each
/// `ALTER USER u SET PASSWORD 'p'` and `CREATE USER u WITH PASSWORD 'p'` (not `IF NOT
/// EXISTS`, which may leave an existing user's password as it was). Read by the server's
/// own parser; a text it cannot parse sets none.
fn password_changes(sql: &str) -> Vec<(String, String)> {
    let statements = parse_statements(sql).unwrap_or_default();
    statements
        .into_iter()
        .filter_map(|statement| match statement {
            Statement::AlterUser {
                name,
                change: UserChange::Password(password),
            } => Some((name.value, password)),
            Statement::CreateUser {
                name,
                if_not_exists: false,
                password: Some(password),
                ..
            } => Some((name.value, password)),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn use_statements_are_found() {
        assert_eq!(used_namespace("USE app").as_deref(), Some("app"));
        assert_eq!(used_namespace("use namespace Chat;").as_deref(), Some("Chat"));
        assert_eq!(used_namespace("USE \"Mixed\"").as_deref(), Some("Mixed"));
        assert_eq!(
            used_namespace("USE a; SELECT 1; -- c\n USE NAMESPACE b").as_deref(),
            Some("b")
        );
        assert_eq!(used_namespace("SELECT 'USE x'"), None);
        assert_eq!(used_namespace("SELECT 1; SELECT use FROM t"), None);
    }

    #[test]
    fn password_changes_are_found() {
        let sql = "ALTER USER ursula SET PASSWORD 'new'; CREATE USER zed WITH PASSWORD 'pw' ROLE service; \
                   CREATE USER IF NOT EXISTS amy WITH PASSWORD 'x'; ALTER USER root SET ROLE dba; \
                   alter user \"Root\" set password 'r00t'";
        assert_eq!(
            password_changes(sql),
            [
                ("ursula".to_owned(), "new".to_owned()),
                ("zed".to_owned(), "pw".to_owned()),
                ("Root".to_owned(), "r00t".to_owned())
            ]
        );
        assert!(password_changes("SELECT 'ALTER USER a SET PASSWORD x'").is_empty());

        let target = HttpTarget::new("http://127.0.0.1:1/", "");
        assert_eq!(target.authorization("root"), basic("root", ""));
        target.follow_passwords(sql);
        assert_eq!(target.authorization("root"), basic("root", "r00t"));
        assert_eq!(target.authorization("URSULA"), basic("URSULA", "new"));
        assert_eq!(target.authorization("nobody"), basic("nobody", RUNNER_PASSWORD));
    }

    #[test]
    fn answers_become_results_or_errors() {
        let ok = r#"{"status":"success","results":[{"row_count":1,"message":"Inserted 1 row(s)"}],"took":1.0}"#;
        assert_eq!(answer_results(200, ok).unwrap().len(), 1);

        let error = r#"{"status":"error","results":[],"took":0.1,"error":{"code":"NOT_FOUND","message":"table 'app.t' does not exist"}}"#;
        let failure = answer_results(404, error).unwrap_err();
        assert_eq!(failure.to_string(), "table 'app.t' does not exist");

        let streamed = r#"{"results":[{"schema":[],"rows":[],"row_count":0}],"took":2,"status":"error","error":{"code":"SQL_EXECUTION_ERROR","message":"Statement 2 failed: boom"}}"#;
        assert_eq!(
            answer_results(200, streamed).unwrap_err().to_string(),
            "Statement 2 failed: boom"
        );

        assert!(matches!(answer_results(502, "Bad Gateway"), Err(SltError::Protocol(_))));
        let truncated = r#"{"status":"success","results":[{"schema":[],"rows":[],"truncated":true}]}"#;
        assert!(matches!(answer_results(200, truncated), Err(SltError::Protocol(_))));
    }
}

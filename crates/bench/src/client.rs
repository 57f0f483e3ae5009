//! The server as its users reach it: SQL over HTTP (`POST /v1/api/sql`, keep-alive, Bearer
//! token) and live queries over WebSocket (`/v1/ws`).

use std::net::TcpStream;
use std::time::Duration;

use serde_json::{Value, json};
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

use crate::error::{BenchError, BenchResult, shorten};

/// How long to wait for the server to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A logged-in HTTP client of one user; cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct HttpClient {
    agent: ureq::Agent,
    base_url: String,
    authorization: String,
}

impl HttpClient {
    /// Logs `user` in at `base_url` (`POST /v1/api/auth/login`).
    pub fn login(base_url: &str, user: &str, password: &str) -> BenchResult<Self> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .user_agent(concat!("calamus-bench/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let base_url = base_url.trim_end_matches('/').to_owned();
        let mut client = Self {
            agent,
            base_url,
            authorization: String::new(),
        };
        let answer = client.post(
            "/v1/api/auth/login",
            &json!({"user": user, "password": password}),
            "login",
        )?;
        let token = answer["access_token"]
            .as_str()
            .ok_or_else(|| BenchError::Protocol(format!("the login answer has no access_token: {answer}")))?;
        client.authorization = format!("Bearer {token}");
        Ok(client)
    }

    /// The same connection pool, logged in as another user.
    pub fn login_as(&self, user: &str, password: &str) -> BenchResult<Self> {
        let mut other = Self::login(&self.base_url, user, password)?;
        other.agent = self.agent.clone();
        Ok(other)
    }

    /// The `Authorization` header value of this client.
    pub fn authorization(&self) -> &str {
        &self.authorization
    }

    /// The server's base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Runs `sql` (one statement, or several without parameters); the server's answer.
    pub fn sql(&self, sql: &str, params: &[Value]) -> BenchResult<Value> {
        let body = if params.is_empty() {
            json!({ "sql": sql })
        } else {
            json!({ "sql": sql, "params": params })
        };
        self.post("/v1/api/sql", &body, sql)
    }

    /// Runs `sql` and returns the rows of its first result.
    pub fn rows(&self, sql: &str, params: &[Value]) -> BenchResult<Vec<Value>> {
        let answer = self.sql(sql, params)?;
        match answer["results"][0]["rows"].as_array() {
            Some(rows) => Ok(rows.clone()),
            None => Err(BenchError::Protocol(format!(
                "`{}` returned no rows: {answer}",
                shorten(sql)
            ))),
        }
    }

    /// Runs `sql` and returns the single integer its first row starts with.
    pub fn scalar(&self, sql: &str) -> BenchResult<i64> {
        let rows = self.rows(sql, &[])?;
        let cell = &rows.first().and_then(|r| r.get(0)).cloned().unwrap_or(Value::Null);
        // Integers beyond JavaScript's safe range arrive as strings.
        cell.as_i64()
            .or_else(|| cell.as_str().and_then(|s| s.parse().ok()))
            .ok_or_else(|| BenchError::Protocol(format!("`{}` returned {cell}, not an integer", shorten(sql))))
    }

    fn post(&self, path: &str, body: &Value, what: &str) -> BenchResult<Value> {
        let url = format!("{}{path}", self.base_url);
        let mut request = self.agent.post(&url).header("Content-Type", "application/json");
        if !self.authorization.is_empty() {
            request = request.header("Authorization", &self.authorization);
        }
        let unreachable = |reason: String| BenchError::Connection {
            url: self.base_url.clone(),
            reason,
        };
        let mut response = request.send(body.to_string()).map_err(|e| unreachable(e.to_string()))?;
        let status = response.status().as_u16();
        let bytes = response
            .body_mut()
            .with_config()
            .limit(u64::MAX)
            .read_to_vec()
            .map_err(|e| unreachable(e.to_string()))?;
        let answer: Value = serde_json::from_slice(&bytes).map_err(|_| {
            BenchError::Protocol(format!(
                "{path} answered HTTP {status} with a body that is not JSON: {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
            ))
        })?;
        if !(200..300).contains(&status) || answer["status"] == "error" {
            return Err(BenchError::Rejected {
                sql: shorten(what),
                code: answer["error"]["code"].as_str().unwrap_or("HTTP_ERROR").to_owned(),
                message: answer["error"]["message"]
                    .as_str()
                    .map_or_else(|| format!("HTTP {status}"), str::to_owned),
            });
        }
        Ok(answer)
    }
}

/// One WebSocket connection to `/v1/ws`, authenticated by the upgrade's header.
pub struct LiveConnection {
    socket: WebSocket<TcpStream>,
}

impl LiveConnection {
    /// Opens a connection as `client`'s user and waits for `auth_success`.
    pub fn open(client: &HttpClient) -> BenchResult<Self> {
        let ws_url = format!("{}/v1/ws", client.base_url().replacen("http", "ws", 1));
        let unreachable = |reason: String| BenchError::Connection {
            url: ws_url.clone(),
            reason,
        };
        let mut request = ws_url
            .as_str()
            .into_client_request()
            .map_err(|e| unreachable(e.to_string()))?;
        let authorization = client
            .authorization()
            .parse()
            .map_err(|_| BenchError::Protocol("the access token is not a valid header value".into()))?;
        request.headers_mut().insert("Authorization", authorization);
        let host = request.uri().authority().map(|a| a.to_string()).unwrap_or_default();
        let stream = TcpStream::connect(&host).map_err(|e| unreachable(e.to_string()))?;
        stream.set_nodelay(true).map_err(|e| unreachable(e.to_string()))?;
        let (socket, _) = tungstenite::client(request, stream).map_err(|e| unreachable(e.to_string()))?;
        let mut connection = Self { socket };
        let hello = connection.recv(Duration::from_secs(10))?;
        if hello["type"] != "auth_success" {
            return Err(BenchError::Protocol(format!("expected auth_success, got {hello}")));
        }
        Ok(connection)
    }

    /// Subscribes to `sql` as `id` and reads the whole snapshot; the number of rows it had.
    pub fn subscribe(&mut self, id: &str, sql: &str) -> BenchResult<usize> {
        self.send(&json!({"type": "subscribe", "subscription": {"id": id, "sql": sql}}))?;
        let ack = self.recv(Duration::from_secs(30))?;
        if ack["type"] != "subscription_ack" {
            return Err(BenchError::Protocol(format!("expected subscription_ack, got {ack}")));
        }
        let total = ack["total_rows"].as_u64().unwrap_or(0) as usize;
        let mut seen = 0;
        while seen < total {
            let batch = self.recv(Duration::from_secs(30))?;
            if batch["type"] != "initial_data_batch" {
                return Err(BenchError::Protocol(format!(
                    "expected initial_data_batch, got {batch}"
                )));
            }
            seen += batch["rows"].as_array().map_or(0, Vec::len);
            if batch["batch_control"]["has_more"] == true {
                self.send(&json!({"type": "next_batch", "subscription_id": id}))?;
            } else {
                break;
            }
        }
        if seen != total {
            return Err(BenchError::Check(format!(
                "the snapshot announced {total} rows and sent {seen}"
            )));
        }
        Ok(seen)
    }

    /// Ends subscription `id` (the server confirms nothing).
    pub fn unsubscribe(&mut self, id: &str) -> BenchResult<()> {
        self.send(&json!({"type": "unsubscribe", "subscription_id": id}))
    }

    /// The next `change` message (pings and pongs skipped).
    pub fn next_change(&mut self, timeout: Duration) -> BenchResult<Value> {
        let message = self.recv(timeout)?;
        if message["type"] != "change" {
            return Err(BenchError::Protocol(format!("expected a change, got {message}")));
        }
        Ok(message)
    }

    fn send(&mut self, message: &Value) -> BenchResult<()> {
        self.socket
            .send(Message::text(message.to_string()))
            .map_err(|e| BenchError::Protocol(format!("sending on the WebSocket: {e}")))
    }

    fn recv(&mut self, timeout: Duration) -> BenchResult<Value> {
        self.socket
            .get_mut()
            .set_read_timeout(Some(timeout))
            .map_err(|e| BenchError::Protocol(e.to_string()))?;
        loop {
            match self.socket.read() {
                Ok(Message::Text(text)) => {
                    return serde_json::from_str(&text)
                        .map_err(|e| BenchError::Protocol(format!("a WebSocket message is not JSON ({e}): {text}")));
                }
                Ok(Message::Close(_)) => return Err(BenchError::Protocol("the server closed the WebSocket".into())),
                Ok(_) => continue,
                Err(e) => {
                    return Err(BenchError::Protocol(format!(
                        "reading the WebSocket (waited up to {timeout:?}): {e}"
                    )));
                }
            }
        }
    }
}

//! A real Calamus server for black-box tests: the whole `calamus serve` composition on an
//! ephemeral loopback port over a temporary data directory, and a small blocking HTTP
//! client speaking to it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use calamus::{Config, StorageBackend};
use serde_json::{Value, json};
use tempfile::TempDir;

/// A running server; dropping it shuts it down gracefully.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its data directory (kept until the server is dropped).
    dir: Option<TempDir>,
    data_dir: PathBuf,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<Result<(), calamus::AppError>>>,
    agent: ureq::Agent,
}

/// An answer: status and JSON body (`Value::Null` when the body is not JSON).
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The body, parsed.
    pub body: Value,
    /// The body as text.
    pub text: String,
}

impl Answer {
    /// The `error.code` of an error body.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// The rows of result `index`, as JSON arrays.
    pub fn rows(&self, index: usize) -> Vec<Value> {
        self.body["results"][index]["rows"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

impl TestServer {
    /// A server with `backend` and the default configuration.
    pub fn start(backend: StorageBackend) -> Self {
        Self::start_with(backend, |_| {})
    }

    /// A server with `backend`, the configuration changed by `configure`.
    pub fn start_with(backend: StorageBackend, configure: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let data_dir = dir.path().join("data");
        let mut server = Self::start_in(backend, &data_dir, configure);
        server.dir = Some(dir);
        server
    }

    /// A server over `data_dir` (which outlives it).
    pub fn start_in(backend: StorageBackend, data_dir: &Path, configure: impl FnOnce(&mut Config)) -> Self {
        Self::try_start_in(backend, data_dir, configure).unwrap_or_else(|e| panic!("the server starts: {e}"))
    }

    /// A server over `data_dir`, or the error that stopped it from starting.
    pub fn try_start_in(
        backend: StorageBackend,
        data_dir: &Path,
        configure: impl FnOnce(&mut Config),
    ) -> Result<Self, calamus::AppError> {
        Self::try_start_layered(backend, data_dir, configure, Box::new(|store| store))
    }

    /// A server over `data_dir` with `layer` over its store (faults injected there), or the
    /// error that stopped it from starting.
    pub fn try_start_layered(
        backend: StorageBackend,
        data_dir: &Path,
        configure: impl FnOnce(&mut Config),
        layer: calamus::StoreLayer,
    ) -> Result<Self, calamus::AppError> {
        let mut config = Config::default();
        config.server.listen = "127.0.0.1:0".parse().expect("an address");
        config.storage.backend = backend;
        config.storage.data_dir = data_dir.to_path_buf();
        config.auth.jwt_secret = Some("test-secret-of-thirty-two-bytes!".into());
        configure(&mut config);
        let (address_tx, address_rx) = mpsc::channel();
        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("calamus-test-server".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("a runtime");
                runtime.block_on(calamus::serve::run_layered(
                    config,
                    layer,
                    async {
                        let _ = shutdown_rx.await;
                    },
                    move |address| {
                        let _ = address_tx.send(address);
                    },
                ))
            })
            .expect("a server thread");
        let addr = match address_rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => addr,
            // The server returned before listening: its error says why.
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(match thread.join() {
                    Ok(Err(error)) => error,
                    Ok(Ok(())) => panic!("the server stopped before it listened, without an error"),
                    Err(_) => panic!("the server thread panicked while starting"),
                });
            }
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("the server did not listen within 60 s"),
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        Ok(Self {
            addr,
            dir: None,
            data_dir: data_dir.to_path_buf(),
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
            agent,
        })
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// `http://addr{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops the server and waits for it.
    pub fn stop(mut self) -> Option<TempDir> {
        self.shutdown_and_join();
        self.dir.take()
    }

    /// Stops the server and waits for it, giving how it stopped: a graceful shutdown syncs
    /// the store, which fails after the disk failed a write.
    pub fn stop_with_result(mut self) -> Result<(), calamus::AppError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.thread.take().map(|thread| thread.join()) {
            Some(Ok(result)) => result,
            Some(Err(_)) => panic!("the server thread panicked"),
            None => Ok(()),
        }
    }

    fn shutdown_and_join(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            match thread.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => panic!("the server stopped with an error: {e}"),
                Err(_) => panic!("the server thread panicked"),
            }
        }
    }

    /// A request with `method` to `path` with optional `authorization` and raw `body`.
    pub fn request(&self, method: &str, path: &str, authorization: Option<&str>, body: Option<&[u8]>) -> Answer {
        let url = self.url(path);
        let result = match (method, body) {
            ("GET", _) => {
                let mut request = self.agent.get(&url);
                if let Some(auth) = authorization {
                    request = request.header("Authorization", auth);
                }
                request.call()
            }
            (_, body) => {
                let mut request = match method {
                    "POST" => self.agent.post(&url),
                    "PUT" => self.agent.put(&url),
                    other => panic!("method {other} is not used by these tests"),
                };
                if let Some(auth) = authorization {
                    request = request.header("Authorization", auth);
                }
                request
                    .header("Content-Type", "application/json")
                    .send(body.unwrap_or_default())
            }
        };
        let mut response = result.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_string()
            .unwrap_or_else(|e| panic!("{method} {url}: reading the answer of HTTP {status}: {e}"));
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer { status, body, text }
    }

    /// `POST /v1/api/sql` with `sql` and `authorization`.
    pub fn sql(&self, authorization: &str, sql: &str) -> Answer {
        self.sql_request(authorization, &json!({"sql": sql}))
    }

    /// `POST /v1/api/sql` with `sql`, which must succeed (set-up steps): a failure shows
    /// the server's answer.
    pub fn sql_ok(&self, authorization: &str, sql: &str) -> Answer {
        let answer = self.sql(authorization, sql);
        assert_eq!(answer.status, 200, "{sql}: {}", answer.text);
        answer
    }

    /// `POST /v1/api/sql` with a whole request body.
    pub fn sql_request(&self, authorization: &str, request: &Value) -> Answer {
        let body = serde_json::to_vec(request).expect("JSON");
        self.request("POST", "/v1/api/sql", Some(authorization), Some(&body))
    }

    /// Logs in, giving the access token.
    pub fn login(&self, user: &str, password: &str) -> String {
        let body = serde_json::to_vec(&json!({"user": user, "password": password})).expect("JSON");
        let answer = self.request("POST", "/v1/api/auth/login", None, Some(&body));
        assert_eq!(answer.status, 200, "login of {user}: {}", answer.text);
        answer.body["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("the login of {user} answered no access token: {}", answer.text))
            .to_owned()
    }

    /// `Bearer <token>` for `user` after logging in.
    pub fn bearer(&self, user: &str, password: &str) -> String {
        format!("Bearer {}", self.login(user, password))
    }

    /// Root's authorization (empty password, from loopback).
    pub fn root(&self) -> String {
        basic("root", "")
    }

    /// Creates `user` with `password` and `role` as root.
    pub fn create_user(&self, user: &str, password: &str, role: &str) {
        self.sql_ok(
            &self.root(),
            &format!("CREATE USER {user} WITH PASSWORD '{password}' ROLE {role}"),
        );
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // A test that already failed must not panic again here.
        if std::thread::panicking() {
            if let Some(tx) = self.shutdown.take() {
                let _ = tx.send(());
            }
            return;
        }
        self.shutdown_and_join();
    }
}

/// `Basic base64(user:password)`.
pub fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

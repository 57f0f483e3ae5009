//! What the tests of the `calamus` binary share: the server as a child process on a free
//! loopback port, and a small blocking HTTP client.

// Each test file compiles this module on its own and uses part of it.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The binary under test.
pub const BINARY: &str = env!("CARGO_BIN_EXE_calamus");

/// A `calamus serve` child process; killed when dropped.
pub struct Server {
    /// The process.
    pub child: Child,
    /// The port it listens on.
    pub port: u16,
}

impl Server {
    /// A server with `backend` over `data_dir`.
    pub fn start(backend: &str, data_dir: &Path) -> Self {
        Self::start_crashing_at(backend, data_dir, None)
    }

    /// A server that aborts at the flush step `crash_at`, if given.
    pub fn start_crashing_at(backend: &str, data_dir: &Path, crash_at: Option<&str>) -> Self {
        Self::spawn(backend, data_dir, crash_at, None)
    }

    /// A server reading the configuration file `config` (its listen address, backend and
    /// data directory are the flags').
    pub fn start_with_config(backend: &str, data_dir: &Path, config: &Path) -> Self {
        Self::spawn(backend, data_dir, None, Some(config))
    }

    fn spawn(backend: &str, data_dir: &Path, crash_at: Option<&str>, config: Option<&Path>) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let child = Command::new(BINARY)
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--storage",
                backend,
                "--data-dir",
            ])
            .arg(data_dir)
            .args(config.map(|path| format!("--config={}", path.display())))
            .env_remove("CALAMUS_ROOT_PASSWORD")
            .env_remove("CALAMUS_CONFIG")
            .env_remove("CALAMUS_CRASH_AT")
            .envs(crash_at.map(|step| ("CALAMUS_CRASH_AT", step)))
            // Where a core file would go, if the system writes them.
            .current_dir(data_dir.parent().expect("the data directory has a parent"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the server starts");
        let mut server = Self { child, port };
        server.wait_until_healthy();
        server
    }

    /// The server's resident memory now and at its peak, in bytes (Linux).
    pub fn memory(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .map_or(0, |kib| kib * 1024)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// Waits until `/health` answers 200.
    pub fn wait_until_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let agent = agent();
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the server exited while starting: {status}");
            }
            if agent
                .get(format!("http://127.0.0.1:{}/health", self.port))
                .call()
                .is_ok_and(|r| r.status().as_u16() == 200)
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the server was not healthy within 60 s");
    }

    /// Kills it with SIGKILL and reaps it.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("the killed server is reaped");
    }

    /// Waits for the process to end by itself (it crashed on purpose).
    pub fn wait_for_exit(mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.child.try_wait().expect("the server's status").is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the server did not stop at its crash point within 30 s");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client that reports every status as an answer.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into()
}

/// A Basic `Authorization` header.
pub fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// `Ok(body)` for a 200, `Err(None)` when the server did not answer (it died), and
/// `Err(Some(body))` for an error answer.
pub fn sql(agent: &ureq::Agent, port: u16, authorization: &str, sql: &str) -> Result<Value, Option<Value>> {
    let body = json!({ "sql": sql }).to_string();
    let mut response = agent
        .post(format!("http://127.0.0.1:{port}/v1/api/sql"))
        .header("Authorization", authorization)
        .send(body.as_bytes())
        .map_err(|_| None)?;
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().map_err(|_| None)?;
    let value: Value = serde_json::from_str(&text).map_err(|_| None)?;
    if status == 200 { Ok(value) } else { Err(Some(value)) }
}

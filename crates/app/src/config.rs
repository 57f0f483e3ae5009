//! The server's configuration: defaults, then a TOML file, then environment variables, then
//! command-line flags; a later source overrides an earlier one, key by key.
//!
//! Every key is checked where it is read, so an error names the key and the source that
//! gave the bad value (`storage.backend (from environment variable CALAMUS_STORAGE)`).
//! `docs/config.md` documents every key.

use std::ffi::OsString;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use calamus_api_http::HttpConfig;
use serde::Deserialize;

use crate::database::StorageBackend;
use crate::error::AppError;

/// The whole configuration of a server.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[server]`: the HTTP listener and its limits.
    pub server: ServerConfig,
    /// `[storage]`: where and how rows are kept.
    pub storage: StorageConfig,
    /// `[auth]`: passwords, tokens, login throttling.
    pub auth: AuthConfig,
    /// `[log]`: what the server logs.
    pub log: LogConfig,
    /// `[jobs]`: background jobs.
    pub jobs: JobsConfig,
}

/// `[server]`: the HTTP listener and its limits.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// The address and port to listen on (`127.0.0.1:8080`).
    pub listen: SocketAddr,
    /// The largest request body accepted, in bytes; larger ones are answered 413 (10 MiB).
    pub body_limit_bytes: usize,
    /// The most connections served at once; further ones wait to be accepted (1024).
    pub max_connections: usize,
    /// The most rows one statement returns; a longer result is cut and marked
    /// `"truncated": true`. `None` (the default): no limit.
    pub max_result_rows: Option<u64>,
    /// Whether `GET /metrics` answers only connections from a loopback address (true).
    pub metrics_loopback_only: bool,
    /// SQL requests each user may make per second; more are answered 429. `None` (the
    /// default): no limit.
    pub rate_limit_per_user: Option<u32>,
    /// Writes a WebSocket connection may have waiting to be sent; a client that falls
    /// further behind is disconnected with an error (1024).
    pub live_queue_capacity: usize,
    /// Subscriptions one WebSocket connection may hold (100).
    pub live_max_subscriptions: usize,
    /// Statements one SQL request may hold; a longer batch is refused before any runs
    /// (1000).
    pub max_statements_per_request: usize,
}

/// The server's own defaults: the ones `HttpConfig` has, on 127.0.0.1:8080.
fn http_defaults() -> HttpConfig {
    HttpConfig::new(SocketAddr::from(([127, 0, 0, 1], 8080)), Vec::new())
}

impl Default for ServerConfig {
    fn default() -> Self {
        let http = http_defaults();
        Self {
            listen: http.listen,
            body_limit_bytes: http.body_limit_bytes,
            max_connections: http.max_connections,
            max_result_rows: http.max_result_rows,
            metrics_loopback_only: http.metrics_loopback_only,
            rate_limit_per_user: http.rate_limit_per_user,
            live_queue_capacity: http.live_queue_capacity,
            live_max_subscriptions: http.live_max_subscriptions,
            max_statements_per_request: http.max_statements_per_request,
        }
    }
}

/// `[storage]`: where and how rows are kept.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// The key-value engine (`rocksdb`).
    pub backend: StorageBackend,
    /// The data directory, created if missing; relative paths are taken from the working
    /// directory (`./data`).
    pub data_dir: PathBuf,
    /// Whether every acknowledged write is fsynced before it is acknowledged, so that an
    /// operating-system crash or power loss loses nothing either (false). A killed process
    /// loses nothing acknowledged either way. sled always syncs each write.
    pub sync_writes: bool,
    /// Writes are refused (`507 INSUFFICIENT_STORAGE`) while the disk holding the data
    /// directory has less free space than this, so the engine never fails a log write for
    /// want of space; 0 turns the check off (64 MiB).
    pub min_free_bytes: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            backend: StorageBackend::RocksDb,
            data_dir: PathBuf::from("./data"),
            sync_writes: false,
            min_free_bytes: DEFAULT_MIN_FREE_BYTES,
        }
    }
}

/// `[auth]`: passwords, tokens, login throttling. Its `Debug` output hides the secrets.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// The HS256 key signing tokens; `None`: the server generates one and keeps it in the
    /// data directory.
    pub jwt_secret: Option<String>,
    /// The password `root` gets at start-up; `None`: root keeps the password it has (at
    /// first start, an empty one usable from loopback only).
    pub root_password: Option<String>,
    /// How long an access token is valid, in seconds (3600).
    pub access_token_ttl_secs: u64,
    /// How long a refresh token is valid, in seconds (604800, a week).
    pub refresh_token_ttl_secs: u64,
    /// Failed logins of a user (or from an address) before further attempts are slowed (5).
    pub login_max_failures: u32,
}

impl Default for AuthConfig {
    fn default() -> Self {
        let http = http_defaults();
        Self {
            jwt_secret: None,
            root_password: None,
            access_token_ttl_secs: http.access_token_ttl.as_secs(),
            refresh_token_ttl_secs: http.refresh_token_ttl.as_secs(),
            login_max_failures: http.login_max_failures,
        }
    }
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |set: bool| if set { "Some(<hidden>)" } else { "None" };
        f.debug_struct("AuthConfig")
            .field("jwt_secret", &format_args!("{}", hidden(self.jwt_secret.is_some())))
            .field(
                "root_password",
                &format_args!("{}", hidden(self.root_password.is_some())),
            )
            .field("access_token_ttl_secs", &self.access_token_ttl_secs)
            .field("refresh_token_ttl_secs", &self.refresh_token_ttl_secs)
            .field("login_max_failures", &self.login_max_failures)
            .finish()
    }
}

/// `[log]`: what the server logs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `off`, `error`, `warn`, `info` (the default), `debug`, `trace`, or a filter with
    /// per-crate levels such as `info,calamus_query=debug`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { level: "info".into() }
    }
}

/// `[jobs]`: background jobs (flushes, stream eviction).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobsConfig {
    /// How long the rows of finished jobs stay in `system.jobs`, in hours (168: a week).
    pub retention_hours: u64,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self { retention_hours: 168 }
    }
}

/// The command-line flags that override the configuration (those of `calamus serve`).
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct ConfigFlags {
    /// The config file (TOML; or the environment variable CALAMUS_CONFIG); without one,
    /// defaults and environment variables only.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The address to listen on (server.listen, e.g. 0.0.0.0:8080).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// The data directory (storage.data_dir).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<String>,
    /// The storage backend, rocksdb or sled (storage.backend).
    #[arg(long, value_name = "BACKEND")]
    pub storage: Option<String>,
    /// The log level or filter (log.level).
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,
}

/// The default floor of free disk space below which writes are refused.
pub const DEFAULT_MIN_FREE_BYTES: u64 = 64 << 20;

/// The environment variables read, and the key each one sets.
pub const ENV_VARS: [(&str, &str); 7] = [
    ("CALAMUS_LISTEN", "server.listen"),
    ("CALAMUS_BODY_LIMIT", "server.body_limit_bytes"),
    ("CALAMUS_STORAGE", "storage.backend"),
    ("CALAMUS_DATA_DIR", "storage.data_dir"),
    ("CALAMUS_JWT_SECRET", "auth.jwt_secret"),
    ("CALAMUS_ROOT_PASSWORD", "auth.root_password"),
    ("CALAMUS_LOG", "log.level"),
];

/// Every key of the file, for checking a whole file at once.
const KEYS: [&str; 20] = [
    "storage.min_free_bytes",
    "jobs.retention_hours",
    "server.max_statements_per_request",
    "storage.sync_writes",
    "server.listen",
    "server.live_queue_capacity",
    "server.live_max_subscriptions",
    "server.rate_limit_per_user",
    "server.body_limit_bytes",
    "server.max_connections",
    "server.max_result_rows",
    "server.metrics_loopback_only",
    "storage.backend",
    "storage.data_dir",
    "auth.jwt_secret",
    "auth.root_password",
    "auth.access_token_ttl_secs",
    "auth.refresh_token_ttl_secs",
    "auth.login_max_failures",
    "log.level",
];

/// The shortest `auth.jwt_secret` accepted: HS256 keys shorter than its 32-byte output
/// make tokens easier to forge.
pub(crate) const MIN_JWT_SECRET_BYTES: usize = 32;

impl Config {
    /// Loads the configuration for `flags`: the file `flags.config` or else
    /// `CALAMUS_CONFIG` (if either is set), then the process's environment, then the flags.
    pub fn load(flags: &ConfigFlags) -> Result<Config, AppError> {
        Self::load_with_env(flags, |name| std::env::var_os(name))
    }

    /// [`Config::load`] with the environment read through `env` (for tests).
    pub fn load_with_env(flags: &ConfigFlags, env: impl Fn(&str) -> Option<OsString>) -> Result<Config, AppError> {
        let file = flags
            .config
            .clone()
            .or_else(|| env("CALAMUS_CONFIG").filter(|v| !v.is_empty()).map(PathBuf::from));
        let mut config = match file {
            Some(path) => Config::from_file(&path)?,
            None => Config::default(),
        };
        config.apply_env(env)?;
        config.apply_flags(flags)?;
        Ok(config)
    }

    /// Reads and checks a TOML config file; keys it leaves out keep their defaults.
    pub fn from_file(path: &Path) -> Result<Config, AppError> {
        let text = std::fs::read_to_string(path).map_err(|e| AppError::ConfigFile {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::from_toml(&text, path)
    }

    /// Parses and checks the text of a TOML config file; `path` only names it in errors.
    pub fn from_toml(text: &str, path: &Path) -> Result<Config, AppError> {
        let file = path.display().to_string();
        let document = toml::de::Deserializer::parse(text).map_err(|e| AppError::ConfigFile {
            path: file.clone(),
            reason: match position(text, e.span()) {
                Some(at) => format!("{at}: {}", e.message()),
                None => e.message().to_owned(),
            },
        })?;
        let config: Config = serde_path_to_error::deserialize(document).map_err(|e| {
            let key = e.path().to_string();
            let inner = e.into_inner();
            AppError::ConfigValue {
                key: key_of(&key),
                origin: match position(text, inner.span()) {
                    Some(at) => format!("config file '{file}', {at}"),
                    None => format!("config file '{file}'"),
                },
                reason: plain_reason(inner.message()),
            }
        })?;
        for key in KEYS {
            config.check(key).map_err(|reason| AppError::ConfigValue {
                key: key.to_owned(),
                origin: format!("config file '{file}'"),
                reason,
            })?;
        }
        if config.auth.refresh_token_ttl_secs < config.auth.access_token_ttl_secs {
            return Err(AppError::ConfigValue {
                key: "auth.refresh_token_ttl_secs".into(),
                origin: format!("config file '{file}'"),
                reason: "must not be shorter than auth.access_token_ttl_secs".into(),
            });
        }
        Ok(config)
    }

    /// Applies the environment variables of [`ENV_VARS`] that `env` knows and that are not
    /// empty.
    pub fn apply_env(&mut self, env: impl Fn(&str) -> Option<OsString>) -> Result<(), AppError> {
        for (var, key) in ENV_VARS {
            let Some(value) = env(var).filter(|v| !v.is_empty()) else {
                continue;
            };
            let origin = format!("environment variable {var}");
            let value = value.into_string().map_err(|_| AppError::ConfigValue {
                key: key.to_owned(),
                origin: origin.clone(),
                reason: "the value is not valid UTF-8".into(),
            })?;
            self.set(key, &value).map_err(|reason| AppError::ConfigValue {
                key: key.to_owned(),
                origin,
                reason,
            })?;
        }
        Ok(())
    }

    /// Applies the flags that are set (`flags.config` is read by [`Config::load`]).
    pub fn apply_flags(&mut self, flags: &ConfigFlags) -> Result<(), AppError> {
        let given = [
            ("--listen", "server.listen", &flags.listen),
            ("--data-dir", "storage.data_dir", &flags.data_dir),
            ("--storage", "storage.backend", &flags.storage),
            ("--log-level", "log.level", &flags.log_level),
        ];
        for (flag, key, value) in given {
            if let Some(value) = value {
                self.set(key, value).map_err(|reason| AppError::ConfigValue {
                    key: key.to_owned(),
                    origin: format!("flag {flag}"),
                    reason,
                })?;
            }
        }
        Ok(())
    }

    /// Sets `key` from text (an environment variable or a flag) and checks it.
    fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        match key {
            "server.listen" => {
                self.server.listen = value
                    .parse()
                    .map_err(|_| format!("'{value}' is not an IP address and port, such as 127.0.0.1:8080"))?;
            }
            "server.body_limit_bytes" => {
                self.server.body_limit_bytes = value
                    .parse()
                    .map_err(|_| format!("'{value}' is not a number of bytes"))?;
            }
            "storage.backend" => self.storage.backend = value.parse().map_err(|e: AppError| e.to_string())?,
            "storage.data_dir" => self.storage.data_dir = PathBuf::from(value),
            "auth.jwt_secret" => self.auth.jwt_secret = Some(value.to_owned()),
            "auth.root_password" => self.auth.root_password = Some(value.to_owned()),
            "log.level" => self.log.level = value.to_owned(),
            _ => return Err(format!("'{key}' cannot be set from the environment or a flag")),
        }
        self.check(key)
    }

    /// Checks the value of one key; the error says what is wrong and what would do.
    fn check(&self, key: &str) -> Result<(), String> {
        let at_least_one = |n: u64| {
            if n == 0 {
                Err("must be at least 1".to_owned())
            } else {
                Ok(())
            }
        };
        match key {
            "server.body_limit_bytes" => at_least_one(self.server.body_limit_bytes as u64),
            "server.max_connections" => at_least_one(self.server.max_connections as u64),
            "server.live_queue_capacity" => at_least_one(self.server.live_queue_capacity as u64),
            "server.max_statements_per_request" => at_least_one(self.server.max_statements_per_request as u64),
            "server.live_max_subscriptions" => at_least_one(self.server.live_max_subscriptions as u64),
            "server.rate_limit_per_user" => match self.server.rate_limit_per_user {
                Some(0) => Err("must be at least 1; leave the key out for no limit".into()),
                _ => Ok(()),
            },
            "server.max_result_rows" => match self.server.max_result_rows {
                Some(0) => Err("must be at least 1; leave the key out for no limit".into()),
                _ => Ok(()),
            },
            "storage.data_dir" if self.storage.data_dir.as_os_str().is_empty() => {
                Err("must not be empty; the default is ./data".into())
            }
            "auth.jwt_secret" => match &self.auth.jwt_secret {
                Some(secret) if secret.len() < MIN_JWT_SECRET_BYTES => Err(format!(
                    "is {} bytes long; use at least {MIN_JWT_SECRET_BYTES} random bytes (e.g. the output \
                     of `openssl rand -hex 32`), or leave it unset to have the server generate one",
                    secret.len()
                )),
                _ => Ok(()),
            },
            "auth.root_password" => match &self.auth.root_password {
                Some(password) if password.is_empty() => {
                    Err("must not be empty; leave it unset to keep root's current password".into())
                }
                _ => Ok(()),
            },
            "auth.access_token_ttl_secs" => at_least_one(self.auth.access_token_ttl_secs),
            "auth.refresh_token_ttl_secs" => at_least_one(self.auth.refresh_token_ttl_secs),
            "auth.login_max_failures" => at_least_one(u64::from(self.auth.login_max_failures)),
            "log.level" => check_log_level(&self.log.level),
            "jobs.retention_hours" => at_least_one(self.jobs.retention_hours),
            _ => Ok(()),
        }
    }
}

/// The level names a bare `log.level` may use; anything with `=` or `,` is a filter.
const LOG_LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// A bare word must be a level (a filter would silently read it as a crate name); a
/// filter must parse.
fn check_log_level(level: &str) -> Result<(), String> {
    let is_filter = level.contains('=') || level.contains(',');
    if !is_filter && !LOG_LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
        return Err(format!(
            "'{level}' is not a log level; use one of {} or a filter such as info,calamus_query=debug",
            LOG_LEVELS.join(", ")
        ));
    }
    tracing_subscriber::EnvFilter::try_new(level)
        .map(|_| ())
        .map_err(|e| format!("'{level}' is not a valid log filter: {e}"))
}

/// `line L, column C` of the start of a byte span of `text`.
fn position(text: &str, span: Option<std::ops::Range<usize>>) -> Option<String> {
    let start = span?.start;
    let before = text.get(..start)?;
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Some(format!("line {line}, column {column}"))
}

/// The key an error is about: the path serde reached (for an unknown key, that key).
fn key_of(path: &str) -> String {
    match path {
        "." | "" => "(top level)".to_owned(),
        path => path.to_owned(),
    }
}

/// Serde's message in the words of a config file: Rust's integer types become what they
/// accept.
fn plain_reason(message: &str) -> String {
    message
        .replace("expected usize", "expected a whole number (0 or more)")
        .replace("expected u64", "expected a whole number (0 or more)")
        .replace("expected u32", "expected a whole number (0 to 4294967295)")
}

#[cfg(test)]
mod tests;

//! The HTTP server's settings.

use std::net::SocketAddr;
use std::time::Duration;

/// Everything the HTTP server is configured with.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Address to listen on (port 0 picks a free one).
    pub listen: SocketAddr,
    /// Largest request body accepted (413 beyond).
    pub body_limit_bytes: usize,
    /// Connections served at once; more wait to be accepted.
    pub max_connections: usize,
    /// Rows one result may hold (`None`: unlimited); a cut result says `"truncated": true`.
    pub max_result_rows: Option<u64>,
    /// Statements one SQL request may hold; more are refused (400) before any runs.
    pub max_statements_per_request: usize,
    /// Whether `/metrics` answers loopback callers only.
    pub metrics_loopback_only: bool,
    /// The HS256 secret tokens are signed with.
    pub jwt_secret: Vec<u8>,
    /// How long an access token lives.
    pub access_token_ttl: Duration,
    /// How long a refresh token lives.
    pub refresh_token_ttl: Duration,
    /// Failed logins per user or address before further attempts are slowed.
    pub login_max_failures: u32,
    /// How long shutdown waits for requests in flight.
    pub shutdown_grace: Duration,
    /// SQL requests each user may make per second (`None`: unlimited); more get 429.
    pub rate_limit_per_user: Option<u32>,
    /// Writes a WebSocket connection's queue holds before its client counts as too slow
    /// and is disconnected.
    pub live_queue_capacity: usize,
    /// Subscriptions one WebSocket connection may hold.
    pub live_max_subscriptions: usize,
    /// How long a WebSocket client without an `Authorization` header has to authenticate.
    pub live_auth_timeout: Duration,
    /// How often an idle WebSocket connection is pinged.
    pub live_ping_interval: Duration,
}

impl HttpConfig {
    /// The defaults of API.md, listening on `listen` with `jwt_secret`.
    pub fn new(listen: SocketAddr, jwt_secret: Vec<u8>) -> Self {
        Self {
            listen,
            body_limit_bytes: 10 * 1024 * 1024,
            max_connections: 1024,
            max_result_rows: None,
            max_statements_per_request: 1000,
            metrics_loopback_only: true,
            jwt_secret,
            access_token_ttl: Duration::from_secs(3600),
            refresh_token_ttl: Duration::from_secs(7 * 24 * 3600),
            login_max_failures: 5,
            shutdown_grace: Duration::from_secs(30),
            rate_limit_per_user: None,
            live_queue_capacity: 1024,
            live_max_subscriptions: 100,
            live_auth_timeout: Duration::from_secs(3),
            live_ping_interval: Duration::from_secs(30),
        }
    }
}

//! The hyper server: accepting connections, routing requests, shutting down gracefully.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use calamus_query::QueryEngine;
use futures::FutureExt;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_LENGTH, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::json;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{Semaphore, watch};

use crate::auth::{Authenticator, LoginThrottle, TokenKeys};
use crate::auth_routes;
use crate::config::HttpConfig;
use crate::error_code::{ApiError, ErrorCode};
use crate::metrics::{Endpoint, Metrics};
use crate::rate_limit::RateLimiter;
use crate::response::{Body, bytes_response, elapsed_ms, error_response, json_response};
use crate::sql::{self, SqlLimits};
use crate::tasks::TaskCount;
use crate::ws;

/// Connections the kernel completes and queues for the server to accept. A burst of
/// clients connecting at once (a thousand reconnecting after a restart) beyond the queue
/// has its handshakes dropped or answered with SYN cookies, and a client whose cookie
/// handshake finds the queue still full sees its first request reset. The kernel lowers
/// it to `net.core.somaxconn`.
const LISTEN_BACKLOG: u32 = 4096;

/// How long a client may take to send a request's headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// What every request handler shares.
#[derive(Debug)]
pub struct ApiState {
    /// The query engine.
    pub engine: Arc<QueryEngine>,
    /// Credentials and tokens.
    pub auth: Authenticator,
    /// Counters.
    pub metrics: Metrics,
    /// Per-user request limits, when configured.
    pub rate_limiter: Option<RateLimiter>,
    /// The configuration.
    pub config: HttpConfig,
    /// Connection tasks (HTTP and WebSocket) still running.
    pub tasks: Arc<TaskCount>,
    shutdown: watch::Sender<bool>,
}

impl ApiState {
    /// The state of a server over `engine` with `config`.
    pub fn new(engine: Arc<QueryEngine>, config: HttpConfig) -> Self {
        let tokens = TokenKeys::new(&config.jwt_secret, config.access_token_ttl, config.refresh_token_ttl);
        let auth = Authenticator::new(
            Arc::clone(&engine),
            tokens,
            LoginThrottle::new(config.login_max_failures),
        );
        Self {
            engine,
            auth,
            metrics: Metrics::default(),
            rate_limiter: config.rate_limit_per_user.map(RateLimiter::new),
            config,
            tasks: Arc::new(TaskCount::default()),
            shutdown: watch::channel(false).0,
        }
    }

    /// Changes once, when the server begins to shut down.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }
}

/// A bound server, ready to serve.
#[derive(Debug)]
pub struct ApiServer {
    listener: TcpListener,
    state: Arc<ApiState>,
}

impl ApiServer {
    /// Binds `config.listen`.
    pub async fn bind(engine: Arc<QueryEngine>, config: HttpConfig) -> std::io::Result<Self> {
        let socket = if config.listen.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.bind(config.listen)?;
        let listener = socket.listen(LISTEN_BACKLOG)?;
        Ok(Self {
            listener,
            state: Arc::new(ApiState::new(engine, config)),
        })
    }

    /// The address it listens on (with the port picked when 0 was asked for).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The shared state (for metrics in tests).
    pub fn state(&self) -> &Arc<ApiState> {
        &self.state
    }

    /// Serves until `shutdown` completes, then stops accepting, lets requests in flight
    /// finish (up to the configured grace period) and returns.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) {
        let Self { listener, state } = self;
        let permits = Arc::new(Semaphore::new(state.config.max_connections.max(1)));
        tokio::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                permit = Arc::clone(&permits).acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
                () = &mut shutdown => break,
            };
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!(%error, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            let connection_state = Arc::clone(&state);
            let service = service_fn(move |request| {
                let state = Arc::clone(&connection_state);
                async move { Ok::<_, std::convert::Infallible>(answer(&state, request, peer).await) }
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            let task_state = Arc::clone(&state);
            let guard = state.tasks.enter();
            task_state.metrics.connection_opened();
            tokio::spawn(async move {
                let _guard = guard;
                let mut shutdown = task_state.shutdown_signal();
                tokio::pin!(connection);
                let ended = tokio::select! {
                    ended = connection.as_mut() => ended,
                    _ = shutdown.changed() => {
                        // Finish the request in flight, then close.
                        connection.as_mut().graceful_shutdown();
                        connection.await
                    }
                };
                if let Err(error) = ended {
                    tracing::debug!(%error, %peer, "connection ended with an error");
                }
                task_state.metrics.connection_closed();
                drop(permit);
            });
        }
        drop(listener);
        tracing::info!("stopped accepting connections; finishing requests in flight");
        let _ = state.shutdown.send(true);
        tokio::select! {
            () = state.tasks.idle() => tracing::info!("all connections closed"),
            () = tokio::time::sleep(state.config.shutdown_grace) => {
                tracing::warn!("requests still in flight after the grace period; stopping anyway");
            }
        }
    }
}

/// The endpoints of API.md, recognised once per request from the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Sql,
    Login,
    Refresh,
    Me,
    Health,
    Metrics,
    LiveQueries,
}

impl Route {
    fn of(path: &str) -> Option<Route> {
        Some(match path {
            "/v1/api/sql" | "/api/sql" => Route::Sql,
            "/v1/api/auth/login" => Route::Login,
            "/v1/api/auth/refresh" => Route::Refresh,
            "/v1/api/auth/me" => Route::Me,
            "/health" | "/v1/api/healthcheck" => Route::Health,
            "/metrics" => Route::Metrics,
            "/v1/ws" => Route::LiveQueries,
            _ => return None,
        })
    }

    /// The one method the endpoint takes.
    fn method(self) -> &'static str {
        match self {
            Route::Sql | Route::Login | Route::Refresh => "POST",
            Route::Me | Route::Health | Route::Metrics | Route::LiveQueries => "GET",
        }
    }

    /// Where its requests are counted.
    fn endpoint(self) -> Endpoint {
        match self {
            Route::Sql => Endpoint::Sql,
            Route::Login | Route::Refresh | Route::Me => Endpoint::Auth,
            Route::Health => Endpoint::Health,
            Route::Metrics => Endpoint::Metrics,
            Route::LiveQueries => Endpoint::Other,
        }
    }
}

/// Answers one request; a panic inside becomes a 500 and the server stays up.
async fn answer(state: &Arc<ApiState>, request: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
    let started = Instant::now();
    let route = Route::of(request.uri().path());
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = answer_or_500(
        &method,
        &path,
        started,
        dispatch(state, route, request, peer.ip(), started),
    )
    .await;
    let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    let endpoint = route.map_or(Endpoint::Other, Route::endpoint);
    state
        .metrics
        .record_request(endpoint, response.status().as_u16(), micros);
    tracing::debug!(%method, %path, status = response.status().as_u16(), micros, "answered");
    response
}

/// The response `handler` gives, or a 500 if it panics (logged with the request's method
/// and path); the connection and the server go on.
async fn answer_or_500(
    method: &hyper::Method,
    path: &str,
    started: Instant,
    handler: impl Future<Output = Response<Body>>,
) -> Response<Body> {
    match AssertUnwindSafe(handler).catch_unwind().await {
        Ok(response) => response,
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("a panic");
            tracing::error!(%method, %path, panic = what, "a request panicked");
            error_response(
                &ApiError::new(ErrorCode::InternalError, "the server failed to answer this request"),
                elapsed_ms(started),
            )
        }
    }
}

async fn dispatch(
    state: &Arc<ApiState>,
    route: Option<Route>,
    request: Request<Incoming>,
    peer: IpAddr,
    started: Instant,
) -> Response<Body> {
    let path = request.uri().path();
    let Some(route) = route else {
        return error_response(
            &ApiError::new(ErrorCode::UnknownEndpoint, format!("no endpoint at {path}")),
            elapsed_ms(started),
        );
    };
    let method = route.method();
    if request.method().as_str() != method {
        let mut response = error_response(
            &ApiError::new(
                ErrorCode::MethodNotAllowed,
                format!("{path} takes {method}, not {}", request.method()),
            ),
            elapsed_ms(started),
        );
        response
            .headers_mut()
            .insert(hyper::header::ALLOW, HeaderValue::from_static(method));
        return response;
    }
    let authorization = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let result = match route {
        Route::Sql => {
            let caller = match state.auth.authenticate(authorization.as_deref(), peer).await {
                Ok(caller) => caller,
                Err(error) => {
                    discard_body(request, state.config.body_limit_bytes).await;
                    return failed_auth(state, &error, started);
                }
            };
            if let Some(limiter) = &state.rate_limiter
                && !limiter.try_acquire(caller.id.as_str())
            {
                discard_body(request, state.config.body_limit_bytes).await;
                let mut response = error_response(
                    &ApiError::new(
                        ErrorCode::RateLimitExceeded,
                        "too many requests: slow down (server.rate_limit_per_user)",
                    ),
                    elapsed_ms(started),
                );
                response
                    .headers_mut()
                    .insert(hyper::header::RETRY_AFTER, HeaderValue::from_static("1"));
                return response;
            }
            let body = match read_body(request, state.config.body_limit_bytes).await {
                Ok(body) => body,
                Err(error) => return error_response(&error, elapsed_ms(started)),
            };
            let limits = SqlLimits {
                max_result_rows: state.config.max_result_rows,
                max_statements: state.config.max_statements_per_request,
            };
            return sql::handle(&state.engine, &caller, &body, limits, started).await;
        }
        Route::Login => match read_body(request, state.config.body_limit_bytes).await {
            Ok(body) => auth_routes::login(&state.auth, &body, peer).await,
            Err(error) => Err(error),
        },
        Route::Refresh => auth_routes::refresh(&state.auth, authorization.as_deref()),
        Route::Me => auth_routes::me(&state.auth, authorization.as_deref()),
        Route::Health => Ok(json!({
            "status": "healthy",
            "version": env!("CARGO_PKG_VERSION"),
            "api_version": "v1",
        })),
        Route::Metrics => {
            if state.config.metrics_loopback_only && !peer.is_loopback() {
                Err(ApiError::new(
                    ErrorCode::PermissionDenied,
                    "metrics are served to this machine only (server.metrics_loopback_only)",
                ))
            } else {
                return bytes_response(
                    StatusCode::OK,
                    state.metrics.render(),
                    HeaderValue::from_static("text/plain; version=0.0.4"),
                );
            }
        }
        Route::LiveQueries => {
            return match ws::upgrade(state, request, peer, authorization.as_deref()).await {
                Ok(response) => response,
                Err(error) if error.code.status() == 401 => failed_auth(state, &error, started),
                Err(error) => error_response(&error, elapsed_ms(started)),
            };
        }
    };
    match result {
        Ok(value) => json_response(StatusCode::OK, &value),
        Err(error) if error.code.status() == 401 => failed_auth(state, &error, started),
        Err(error) => error_response(&error, elapsed_ms(started)),
    }
}

fn failed_auth(state: &ApiState, error: &ApiError, started: Instant) -> Response<Body> {
    if error.code == ErrorCode::InvalidCredentials {
        state.metrics.login_failed();
    }
    let mut response = error_response(error, elapsed_ms(started));
    response.headers_mut().insert(
        hyper::header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer, Basic realm=\"calamus\""),
    );
    response
}

/// How much of a refused body is still read and thrown away, so that a client still
/// sending it reads the 413 instead of a reset connection (closing a socket with unread
/// data resets it). A larger body, or one slower than [`DRAIN_TIME`], gets the connection
/// closed.
const DRAIN_LIMIT: u64 = 64 * 1024 * 1024;
/// How long a refused body is read at most.
const DRAIN_TIME: Duration = Duration::from_secs(10);

/// The whole body, refused past `limit` bytes.
async fn read_body(request: Request<Incoming>, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the body is larger than the limit of {limit} bytes (server.body_limit_bytes)"),
        )
    };
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut body = request.into_body();
    if let Some(length) = declared.filter(|&length| length > limit as u64) {
        if length <= DRAIN_LIMIT {
            drain(&mut body, DRAIN_LIMIT).await;
        }
        return Err(too_large());
    }
    let mut collected = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|error| ApiError::new(ErrorCode::InvalidInput, format!("the body could not be read: {error}")))?;
        if let Ok(data) = frame.into_data() {
            if collected.len() + data.len() > limit {
                drain(&mut body, DRAIN_LIMIT).await;
                return Err(too_large());
            }
            collected.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(collected))
}

/// Reads and throws away the body of a request refused before it was read (bad
/// credentials, rate limit), up to `limit` bytes and [`DRAIN_TIME`]: the client's
/// keep-alive connection then stays usable for its next request. A larger body gets the
/// connection closed.
async fn discard_body(request: Request<Incoming>, limit: usize) {
    drain(&mut request.into_body(), limit as u64).await;
}

/// Reads what is left of a refused body, up to `limit` bytes and [`DRAIN_TIME`].
async fn drain(body: &mut Incoming, limit: u64) {
    let discard = async {
        let mut read = 0u64;
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(data) = frame.into_data() {
                read += data.len() as u64;
                if read > limit {
                    return;
                }
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIME, discard).await;
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    #[tokio::test]
    async fn a_panicking_handler_is_answered_500_and_a_good_one_unchanged() {
        let method = hyper::Method::POST;
        let panicking = answer_or_500(&method, "/v1/api/sql", Instant::now(), async {
            panic!("a bug deep inside a statement")
        })
        .await;
        assert_eq!(panicking.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = panicking.into_body().collect().await.unwrap().to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "INTERNAL_ERROR");
        assert_eq!(body["status"], "error");
        assert!(
            !body.to_string().contains("a bug deep inside"),
            "the panic's text stays in the log"
        );

        let fine = answer_or_500(&method, "/health", Instant::now(), async {
            json_response(StatusCode::OK, &json!({"ok": true}))
        })
        .await;
        assert_eq!(fine.status(), StatusCode::OK);
    }
}

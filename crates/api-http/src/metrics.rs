//! Counters of the server, served as Prometheus text at `GET /metrics`.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// The endpoints counted apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/v1/api/sql`, `/api/sql`.
    Sql,
    /// `/v1/api/auth/*`.
    Auth,
    /// `/health`, `/v1/api/healthcheck`.
    Health,
    /// `/metrics`.
    Metrics,
    /// Anything else.
    Other,
}

impl Endpoint {
    const ALL: [Endpoint; 5] = [
        Endpoint::Sql,
        Endpoint::Auth,
        Endpoint::Health,
        Endpoint::Metrics,
        Endpoint::Other,
    ];

    fn label(self) -> &'static str {
        match self {
            Endpoint::Sql => "sql",
            Endpoint::Auth => "auth",
            Endpoint::Health => "health",
            Endpoint::Metrics => "metrics",
            Endpoint::Other => "other",
        }
    }
}

/// Status classes counted apart: 2xx, 4xx, 5xx, other.
const CLASSES: [&str; 4] = ["2xx", "4xx", "5xx", "other"];

/// The server's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: [[AtomicU64; 4]; 5],
    request_micros: [AtomicU64; 5],
    open_connections: AtomicI64,
    connections_total: AtomicU64,
    open_websockets: AtomicI64,
    login_failures: AtomicU64,
}

impl Metrics {
    /// Counts one answered request.
    pub fn record_request(&self, endpoint: Endpoint, status: u16, micros: u64) {
        let class = match status {
            200..=299 => 0,
            400..=499 => 1,
            500..=599 => 2,
            _ => 3,
        };
        let e = endpoint as usize;
        self.requests[e][class].fetch_add(1, Ordering::Relaxed);
        self.request_micros[e].fetch_add(micros, Ordering::Relaxed);
    }

    /// A connection opened.
    pub fn connection_opened(&self) {
        self.open_connections.fetch_add(1, Ordering::Relaxed);
        self.connections_total.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection closed.
    pub fn connection_closed(&self) {
        self.open_connections.fetch_sub(1, Ordering::Relaxed);
    }

    /// A WebSocket connection opened.
    pub fn websocket_opened(&self) {
        self.open_websockets.fetch_add(1, Ordering::Relaxed);
    }

    /// A WebSocket connection closed.
    pub fn websocket_closed(&self) {
        self.open_websockets.fetch_sub(1, Ordering::Relaxed);
    }

    /// A login failed.
    pub fn login_failed(&self) {
        self.login_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of every counter.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP calamus_http_requests_total HTTP requests answered, by endpoint and status class."
        );
        let _ = writeln!(out, "# TYPE calamus_http_requests_total counter");
        for endpoint in Endpoint::ALL {
            for (class, label) in CLASSES.iter().enumerate() {
                let n = self.requests[endpoint as usize][class].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "calamus_http_requests_total{{endpoint=\"{}\",status=\"{label}\"}} {n}",
                    endpoint.label()
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP calamus_http_request_seconds_sum Time spent answering requests, by endpoint."
        );
        let _ = writeln!(out, "# TYPE calamus_http_request_seconds_sum counter");
        for endpoint in Endpoint::ALL {
            let micros = self.request_micros[endpoint as usize].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "calamus_http_request_seconds_sum{{endpoint=\"{}\"}} {}",
                endpoint.label(),
                micros as f64 / 1e6
            );
        }
        let _ = writeln!(out, "# HELP calamus_http_open_connections Connections open now.");
        let _ = writeln!(out, "# TYPE calamus_http_open_connections gauge");
        let _ = writeln!(
            out,
            "calamus_http_open_connections {}",
            self.open_connections.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP calamus_websocket_open_connections WebSocket connections open now."
        );
        let _ = writeln!(out, "# TYPE calamus_websocket_open_connections gauge");
        let _ = writeln!(
            out,
            "calamus_websocket_open_connections {}",
            self.open_websockets.load(Ordering::Relaxed)
        );
        let _ = writeln!(out, "# HELP calamus_http_connections_total Connections accepted.");
        let _ = writeln!(out, "# TYPE calamus_http_connections_total counter");
        let _ = writeln!(
            out,
            "calamus_http_connections_total {}",
            self.connections_total.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP calamus_login_failures_total Failed logins and failed Basic credentials."
        );
        let _ = writeln!(out, "# TYPE calamus_login_failures_total counter");
        let _ = writeln!(
            out,
            "calamus_login_failures_total {}",
            self.login_failures.load(Ordering::Relaxed)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_as_prometheus_text() {
        let metrics = Metrics::default();
        metrics.record_request(Endpoint::Sql, 200, 1500);
        metrics.record_request(Endpoint::Sql, 404, 500);
        metrics.connection_opened();
        let text = metrics.render();
        assert!(
            text.contains("calamus_http_requests_total{endpoint=\"sql\",status=\"2xx\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("calamus_http_requests_total{endpoint=\"sql\",status=\"4xx\"} 1\n"));
        assert!(text.contains("calamus_http_request_seconds_sum{endpoint=\"sql\"} 0.002\n"));
        assert!(text.contains("calamus_http_open_connections 1\n"));
    }
}

//! A blocking WebSocket client for black-box tests of `/v1/ws`: real frames over a real
//! TCP connection, JSON messages in and out.

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value;
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

/// How long a test waits for a message it expects.
pub const MESSAGE_TIMEOUT: Duration = Duration::from_secs(10);

/// One WebSocket connection to a test server.
pub struct WsClient {
    socket: WebSocket<TcpStream>,
}

/// Why a connection attempt failed: the HTTP status of a refused upgrade.
#[derive(Debug)]
pub struct Refused {
    /// The status.
    pub status: u16,
    /// The body.
    pub body: String,
}

impl WsClient {
    /// Connects to `/v1/ws` at `addr`, with an `Authorization` header if given.
    pub fn connect(addr: SocketAddr, authorization: Option<&str>) -> Result<Self, Refused> {
        let mut request = format!("ws://{addr}/v1/ws")
            .into_client_request()
            .expect("a WebSocket request");
        if let Some(authorization) = authorization {
            request
                .headers_mut()
                .insert("Authorization", authorization.parse().expect("a header value"));
        }
        let stream = TcpStream::connect(addr).expect("the server accepts TCP connections");
        stream.set_read_timeout(Some(MESSAGE_TIMEOUT)).expect("a read timeout");
        match tungstenite::client(request, stream) {
            Ok((socket, _)) => Ok(Self { socket }),
            Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => Err(Refused {
                status: response.status().as_u16(),
                body: String::from_utf8_lossy(response.body().as_deref().unwrap_or_default()).into_owned(),
            }),
            Err(e) => panic!("the WebSocket handshake failed: {e}"),
        }
    }

    /// Connects with a Bearer token and reads the `auth_success`.
    pub fn connect_as(addr: SocketAddr, bearer: &str) -> Self {
        let mut client = Self::connect(addr, Some(bearer)).unwrap_or_else(|r| panic!("refused: {r:?}"));
        let hello = client.recv();
        assert_eq!(hello["type"], "auth_success", "{hello}");
        client
    }

    /// Sends a JSON message.
    pub fn send(&mut self, message: &Value) {
        self.socket
            .send(Message::text(message.to_string()))
            .expect("the message is sent");
    }

    /// Sends raw text.
    pub fn send_text(&mut self, text: &str) {
        self.try_send_text(text).expect("the message is sent");
    }

    /// Sends raw text, giving the error if the connection failed.
    pub fn try_send_text(&mut self, text: &str) -> Result<(), tungstenite::Error> {
        self.socket.send(Message::text(text))
    }

    /// Writes a raw text frame whose payload is not UTF-8 (a client library refuses to).
    pub fn send_invalid_utf8_text(&mut self) {
        use std::io::Write;
        let payload = [0xffu8, 0xfe, 0x80, b'{'];
        let mask = [0x12u8, 0x34, 0x56, 0x78];
        let mut frame = vec![0x81, 0x80 | payload.len() as u8];
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        let stream = self.socket.get_mut();
        stream.write_all(&frame).expect("the frame is written");
        stream.flush().expect("flushed");
    }

    /// The next JSON message (pings and pongs skipped); panics after [`MESSAGE_TIMEOUT`].
    pub fn recv(&mut self) -> Value {
        self.try_recv(MESSAGE_TIMEOUT)
            .unwrap_or_else(|| panic!("no message within {MESSAGE_TIMEOUT:?}"))
    }

    /// The next JSON message within `timeout`, or `None` (also when the server closed).
    pub fn try_recv(&mut self, timeout: Duration) -> Option<Value> {
        self.socket
            .get_mut()
            .set_read_timeout(Some(timeout))
            .expect("a read timeout");
        let deadline = Instant::now() + timeout;
        loop {
            match self.socket.read() {
                Ok(Message::Text(text)) => {
                    return Some(serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")));
                }
                Ok(Message::Close(_)) => return None,
                Ok(_) if Instant::now() < deadline => continue,
                Ok(_) => return None,
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) =>
                {
                    return None;
                }
                Err(_) => return None,
            }
        }
    }

    /// Messages until one of `kind` (inclusive).
    pub fn recv_until(&mut self, kind: &str) -> Vec<Value> {
        let mut seen = Vec::new();
        loop {
            let message = self.recv();
            let done = message["type"] == kind;
            seen.push(message);
            if done {
                return seen;
            }
        }
    }

    /// Subscribes and reads the ack and every initial batch (asking with `next_batch`),
    /// giving the ack and the snapshot's rows.
    pub fn subscribe(&mut self, id: &str, sql: &str, options: Value) -> (Value, Vec<Value>) {
        self.send(
            &serde_json::json!({"type": "subscribe", "subscription": {"id": id, "sql": sql, "options": options}}),
        );
        let ack = self.recv();
        assert_eq!(ack["type"], "subscription_ack", "{ack}");
        let mut rows = Vec::new();
        let mut more = ack["total_rows"].as_u64().unwrap_or(0) > 0;
        while more {
            let batch = self.recv();
            assert_eq!(batch["type"], "initial_data_batch", "{batch}");
            rows.extend(batch["rows"].as_array().cloned().unwrap_or_default());
            more = batch["batch_control"]["has_more"] == true;
            if more {
                self.send(&serde_json::json!({"type": "next_batch", "subscription_id": id}));
            }
        }
        (ack, rows)
    }

    /// Whether the server has closed the connection (reads until close or `timeout`).
    pub fn closed_within(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            self.socket
                .get_mut()
                .set_read_timeout(Some(Duration::from_millis(100)))
                .expect("a read timeout");
            match self.socket.read() {
                Ok(Message::Close(_)) => return true,
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) =>
                {
                    continue;
                }
                Err(_) => return true,
            }
        }
        false
    }

    /// Closes the connection.
    pub fn close(mut self) {
        let _ = self.socket.close(None);
        let _ = self.socket.flush();
    }

    /// The underlying TCP stream (to stop reading, for slow-consumer tests).
    pub fn stream(&mut self) -> &mut TcpStream {
        self.socket.get_mut()
    }
}

//! `GET /v1/ws`: live queries over WebSocket (API.md).
//!
//! One task per connection reads the client's messages, the connection's queue of
//! committed writes, and the shutdown signal, and writes every message itself: the order
//! of a subscription's messages is the order of its writes. The queue is bounded; a client
//! that reads too slowly fills it, and is then sent an error and disconnected, so the
//! server's memory does not grow with a stalled client.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use calamus_domain::UserId;
use calamus_domain::model::{Role, User};
use calamus_query::live::{BatchControl, LiveConnection, LiveEvent, LiveMessage, Subscription, SubscriptionOptions};
use calamus_query::{QueryError, Session};
use futures::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper::header::{CONNECTION, HeaderValue, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role as WsRole, WebSocketConfig};

use crate::auth::TokenType;
use crate::encode::{schema_json, write_rows_as_objects};
use crate::error_code::{ApiError, ErrorCode};
use crate::json_body::{from_object, from_object_value};
use crate::response::Body;
use crate::server::ApiState;

/// The read buffer of a connection.
const READ_BUFFER_BYTES: usize = 4 * 1024;
/// The longest subscription id accepted.
const MAX_SUBSCRIPTION_ID_LEN: usize = 128;
/// How long a last message may take to reach a client being disconnected.
const FAREWELL_TIMEOUT: Duration = Duration::from_secs(1);
/// How long the error telling a slow client why it is disconnected may take to reach it.
const SLOW_CONSUMER_FAREWELL_TIMEOUT: Duration = Duration::from_secs(10);

type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// Answers the upgrade request: 101 and a connection task, or an HTTP error (not a
/// WebSocket request, or a failed `Authorization` header).
pub(crate) async fn upgrade(
    state: &Arc<ApiState>,
    request: Request<Incoming>,
    peer: IpAddr,
    authorization: Option<&str>,
) -> Result<Response<Body>, ApiError> {
    let header = |name| request.headers().get(name).and_then(|v: &HeaderValue| v.to_str().ok());
    let is_upgrade = header(UPGRADE).is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
        && header(CONNECTION).is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade")));
    let Some(key) = header(SEC_WEBSOCKET_KEY).filter(|_| is_upgrade) else {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            "/v1/ws speaks WebSocket: connect with a WebSocket client (Upgrade: websocket)",
        ));
    };
    if header(SEC_WEBSOCKET_VERSION) != Some("13") {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            "only WebSocket version 13 is spoken (Sec-WebSocket-Version: 13)",
        ));
    }
    let accept = derive_accept_key(key.as_bytes());
    // A header, if sent, must be good; without one the first message authenticates.
    let user = match authorization {
        Some(authorization) => Some(state.auth.authenticate(Some(authorization), peer).await?),
        None => None,
    };
    let task_state = Arc::clone(state);
    let guard = state.tasks.enter();
    tokio::spawn(async move {
        let _guard = guard;
        match hyper::upgrade::on(request).await {
            Ok(upgraded) => {
                // Small read buffers: an idle connection should cost kilobytes, not the
                // default 128 KiB; messages from clients are small.
                let config = WebSocketConfig::default()
                    .read_buffer_size(READ_BUFFER_BYTES)
                    .max_message_size(Some(task_state.config.body_limit_bytes))
                    .max_frame_size(Some(task_state.config.body_limit_bytes))
                    .max_write_buffer_size(task_state.config.body_limit_bytes.max(1 << 20) * 2);
                let socket =
                    WebSocketStream::from_raw_socket(TokioIo::new(upgraded), WsRole::Server, Some(config)).await;
                task_state.metrics.websocket_opened();
                serve_connection(&task_state, socket, user).await;
                task_state.metrics.websocket_closed();
            }
            Err(error) => tracing::debug!(%error, "the WebSocket upgrade failed"),
        }
    });
    Ok(Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(UPGRADE, "websocket")
        .header(CONNECTION, "Upgrade")
        .header(SEC_WEBSOCKET_ACCEPT, accept)
        .body(crate::response::full(bytes::Bytes::new()))
        .expect("a valid response"))
}

/// The messages a client sends.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum ClientMessage {
    Authenticate {
        #[serde(default)]
        method: Option<String>,
        token: String,
        #[serde(default)]
        #[allow(dead_code)]
        protocol: Option<Value>,
    },
    Subscribe {
        /// A [`SubscribeRequest`], checked to be an object when it is read.
        subscription: Value,
    },
    NextBatch {
        subscription_id: String,
        #[serde(default)]
        #[allow(dead_code)]
        last_seq_id: Option<Value>,
    },
    Unsubscribe {
        subscription_id: String,
    },
    Ping,
}

#[derive(Debug, Deserialize)]
pub(crate) struct SubscribeRequest {
    id: String,
    sql: String,
    #[serde(default)]
    options: OptionsRequest,
}

#[derive(Debug, Default, Deserialize)]
struct OptionsRequest {
    #[serde(default)]
    batch_size: Option<usize>,
    #[serde(default)]
    last_rows: Option<usize>,
    #[serde(default, deserialize_with = "seq_id")]
    from_seq_id: Option<i64>,
}

/// A `_seq` given as a number or as a string of digits (the protocol writes BIGINT as a
/// string).
fn seq_id<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    match Option::<Value>::deserialize(deserializer)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom("from_seq_id must be a whole number")),
        Some(Value::String(s)) => s
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom("from_seq_id must be a whole number")),
        Some(_) => Err(serde::de::Error::custom("from_seq_id must be a whole number")),
    }
}

/// Why a connection ends.
enum End {
    /// The client closed it, or the socket failed.
    Closed,
    /// The server is shutting down.
    Shutdown,
    /// The client did not read fast enough.
    Overflow,
}

async fn serve_connection(state: &Arc<ApiState>, mut socket: Socket, user: Option<User>) {
    let user = match user {
        Some(user) => user,
        None => match authenticate_first(state, &mut socket).await {
            Some(user) => user,
            None => return,
        },
    };
    if socket.send(auth_success(&user.id, user.role)).await.is_err() {
        return;
    }
    let (connection, events) =
        state
            .engine
            .live_queries()
            .connect(user.id.clone(), user.role, state.config.live_queue_capacity);
    let mut live = LiveSession {
        state,
        session: Session::new(user.id.clone(), user.role),
        connection,
        subscriptions: HashMap::new(),
    };
    let end = live.run(&mut socket, events).await;
    // The subscriptions end now, not when the last words reach (or fail to reach) the client.
    drop(live);
    let farewell = match end {
        End::Closed => None,
        End::Shutdown => Some(CloseFrame {
            code: CloseCode::Away,
            reason: "the server is shutting down".into(),
        }),
        End::Overflow => {
            let message = error_message(
                None,
                "SLOW_CONSUMER",
                "the client did not read its messages fast enough; reconnect and resume with from_seq_id",
            );
            // The client is behind: give it a while to read up to the error.
            let _ = tokio::time::timeout(SLOW_CONSUMER_FAREWELL_TIMEOUT, socket.send(message)).await;
            Some(CloseFrame {
                code: CloseCode::Policy,
                reason: "slow consumer".into(),
            })
        }
    };
    if let Some(frame) = farewell {
        let _ = tokio::time::timeout(FAREWELL_TIMEOUT, socket.close(Some(frame))).await;
    }
}

/// Waits for the first message, which must authenticate, within the configured time.
async fn authenticate_first(state: &ApiState, socket: &mut Socket) -> Option<User> {
    let refusal = |message: &str| Message::text(json!({"type": "auth_error", "message": message}).to_string());
    let first = tokio::time::timeout(state.config.live_auth_timeout, socket.next()).await;
    let outcome = match first {
        Err(_) => Err(format!(
            "no authenticate message within {} s",
            state.config.live_auth_timeout.as_secs_f64()
        )),
        Ok(None | Some(Err(_))) => return None,
        Ok(Some(Ok(Message::Text(text)))) => match from_object::<ClientMessage>(text.as_bytes()) {
            Ok(ClientMessage::Authenticate { method, token, .. }) => {
                if method.as_deref().is_some_and(|m| !m.eq_ignore_ascii_case("jwt")) {
                    Err("only the jwt method is accepted".to_owned())
                } else {
                    state
                        .auth
                        .tokens
                        .verify(&token, TokenType::Access)
                        .and_then(|claims| state.auth.user_of_token(&claims))
                        .map_err(|e| e.message)
                }
            }
            _ => Err(
                "the first message must be {\"type\": \"authenticate\", \"method\": \"jwt\", \"token\": ...}"
                    .to_owned(),
            ),
        },
        Ok(Some(Ok(_))) => Err("the first message must be a text message that authenticates".to_owned()),
    };
    match outcome {
        Ok(user) => Some(user),
        Err(message) => {
            let _ = tokio::time::timeout(FAREWELL_TIMEOUT, socket.send(refusal(&message))).await;
            let _ = tokio::time::timeout(
                FAREWELL_TIMEOUT,
                socket.close(Some(CloseFrame {
                    code: CloseCode::Policy,
                    reason: "authentication failed".into(),
                })),
            )
            .await;
            None
        }
    }
}

fn auth_success(user: &UserId, role: Role) -> Message {
    Message::text(json!({"type": "auth_success", "user": user.as_str(), "role": role.as_str()}).to_string())
}

/// One authenticated connection.
struct LiveSession<'s> {
    state: &'s Arc<ApiState>,
    session: Session,
    connection: LiveConnection,
    /// By subscription id.
    subscriptions: HashMap<String, Subscription>,
}

impl LiveSession<'_> {
    async fn run(&mut self, socket: &mut Socket, mut events: tokio::sync::mpsc::Receiver<LiveEvent>) -> End {
        let mut shutdown = self.state.shutdown_signal();
        let mut ping = tokio::time::interval(self.state.config.live_ping_interval);
        ping.reset();
        loop {
            let outgoing: Vec<Message> = tokio::select! {
                incoming = socket.next() => match incoming {
                    Some(Ok(Message::Text(text))) => self.on_client_message(&text).await,
                    Some(Ok(Message::Binary(_))) => vec![error_message(None, "INVALID_INPUT", "messages are JSON text, not binary")],
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return End::Closed,
                    Some(Ok(_)) => Vec::new(), // Ping and pong frames: tungstenite answers pings itself.
                },
                event = events.recv() => match event {
                    Some(event) => self.on_event(event),
                    None => return End::Closed,
                },
                () = self.connection.overflow() => return End::Overflow,
                _ = shutdown.changed() => return End::Shutdown,
                _ = ping.tick() => vec![Message::Ping(bytes::Bytes::new())],
            };
            for message in outgoing {
                let sent = tokio::select! {
                    sent = socket.send(message) => sent,
                    () = self.connection.overflow() => return End::Overflow,
                };
                if sent.is_err() {
                    return End::Closed;
                }
            }
        }
    }

    async fn on_client_message(&mut self, text: &str) -> Vec<Message> {
        let message = match from_object::<ClientMessage>(text.as_bytes()) {
            Ok(message) => message,
            Err(error) => {
                return vec![error_message(
                    None,
                    "INVALID_INPUT",
                    &format!(
                        "not a message of this protocol ({error}); send subscribe, next_batch, unsubscribe or ping"
                    ),
                )];
            }
        };
        match message {
            ClientMessage::Ping => vec![Message::text(r#"{"type":"pong"}"#)],
            ClientMessage::Authenticate { token, .. } => {
                match self.state.auth.tokens.verify(&token, TokenType::Access) {
                    Ok(claims) if claims.sub == self.session.user.as_str() => {
                        vec![auth_success(&self.session.user, self.session.role)]
                    }
                    _ => vec![error_message(
                        None,
                        "INVALID_TOKEN",
                        "this connection is already authenticated; another user needs its own connection",
                    )],
                }
            }
            ClientMessage::Subscribe { subscription } => match from_object_value::<SubscribeRequest>(subscription) {
                Ok(subscription) => self.subscribe(subscription).await,
                Err(error) => vec![error_message(
                    None,
                    "INVALID_INPUT",
                    &format!("subscription must be an object {{\"id\", \"sql\", \"options\"?}}: {error}"),
                )],
            },
            ClientMessage::NextBatch { subscription_id, .. } => match self.subscriptions.get_mut(&subscription_id) {
                Some(subscription) => {
                    let result = subscription.next_batch();
                    self.messages_of(&subscription_id, result)
                }
                None => vec![unknown_subscription(&subscription_id)],
            },
            ClientMessage::Unsubscribe { subscription_id } => {
                if self.subscriptions.remove(&subscription_id).is_some() {
                    self.connection.unregister(&subscription_id);
                    Vec::new()
                } else {
                    vec![unknown_subscription(&subscription_id)]
                }
            }
        }
    }

    async fn subscribe(&mut self, request: SubscribeRequest) -> Vec<Message> {
        let id = request.id;
        if id.is_empty() || id.len() > MAX_SUBSCRIPTION_ID_LEN || id.chars().any(char::is_control) {
            return vec![error_message(
                None,
                "INVALID_INPUT",
                &format!("a subscription id is 1 to {MAX_SUBSCRIPTION_ID_LEN} characters, without control characters"),
            )];
        }
        if self.subscriptions.contains_key(&id) {
            return vec![error_message(
                Some(&id),
                "INVALID_PARAMETER",
                "this connection already has a subscription with this id; unsubscribe it first",
            )];
        }
        let limit = self.state.config.live_max_subscriptions;
        if self.subscriptions.len() >= limit {
            return vec![error_message(
                Some(&id),
                "INVALID_PARAMETER",
                &format!("a connection holds at most {limit} subscriptions"),
            )];
        }
        let options = SubscriptionOptions {
            batch_size: request.options.batch_size,
            last_rows: request.options.last_rows,
            from_seq_id: request.options.from_seq_id,
        };
        let started = self
            .state
            .engine
            .subscribe(&self.session, &self.connection, &id, &request.sql, options)
            .await;
        let mut subscription = match started {
            Ok(subscription) => subscription,
            Err(error) => return vec![query_error(&id, error, &self.session)],
        };
        let first = subscription.start();
        self.subscriptions.insert(id.clone(), subscription);
        self.messages_of(&id, first)
    }

    fn on_event(&mut self, event: LiveEvent) -> Vec<Message> {
        match event {
            LiveEvent::Changes { live_id, batch } => {
                let Some(id) = self.subscription_of(&live_id) else {
                    return Vec::new(); // Unsubscribed while the write was queued.
                };
                let result = self.subscriptions.get_mut(&id).map(|s| s.on_changes(batch));
                match result {
                    Some(result) => self.messages_of(&id, result),
                    None => Vec::new(),
                }
            }
            LiveEvent::Killed { live_id } => match self.subscription_of(&live_id) {
                Some(id) => {
                    self.subscriptions.remove(&id);
                    vec![error_message(
                        Some(&id),
                        "LIVE_QUERY_KILLED",
                        &format!("live query {live_id} was ended by KILL LIVE QUERY"),
                    )]
                }
                None => Vec::new(),
            },
        }
    }

    /// The subscription an event is for: the same registration, not merely the same id
    /// (an id reused after unsubscribe must not receive its predecessor's queued events).
    fn subscription_of(&self, live_id: &Arc<str>) -> Option<String> {
        self.subscriptions
            .iter()
            .find(|(_, s)| Arc::ptr_eq(&s.entry().live_id, live_id))
            .map(|(id, _)| id.clone())
    }

    /// The protocol messages of `result` for subscription `id`; a failure ends the
    /// subscription with an error message.
    fn messages_of(&mut self, id: &str, result: Result<Vec<LiveMessage>, QueryError>) -> Vec<Message> {
        match result {
            Ok(messages) => messages.iter().map(|m| encode_message(id, m)).collect(),
            Err(error) => {
                self.subscriptions.remove(id);
                self.connection.unregister(id);
                vec![query_error(id, error, &self.session)]
            }
        }
    }
}

fn unknown_subscription(id: &str) -> Message {
    error_message(
        Some(id),
        "NOT_FOUND",
        "this connection has no subscription with this id",
    )
}

fn query_error(id: &str, error: QueryError, session: &Session) -> Message {
    let error = error.redacted_for(session.role);
    let code = ErrorCode::for_query_error(&error);
    error_message(Some(id), code.as_str(), &error.to_string())
}

fn error_message(subscription_id: Option<&str>, code: &str, message: &str) -> Message {
    let mut body = json!({"type": "error", "code": code, "message": message});
    if let Some(id) = subscription_id {
        body["subscription_id"] = Value::String(id.to_owned());
    }
    Message::text(body.to_string())
}

fn control_json(control: &BatchControl) -> Value {
    json!({
        "batch_num": control.batch_num,
        "has_more": control.has_more,
        "status": control.status.as_str(),
        "last_seq_id": control.last_seq_id,
    })
}

/// One message as JSON text; rows are written straight into the text.
fn encode_message(id: &str, message: &LiveMessage) -> Message {
    match message {
        LiveMessage::Ack {
            total_rows,
            control,
            schema,
        } => Message::text(
            json!({
                "type": "subscription_ack",
                "subscription_id": id,
                "total_rows": total_rows,
                "batch_control": control_json(control),
                "schema": schema_json(schema),
            })
            .to_string(),
        ),
        LiveMessage::InitialBatch { rows, control } => {
            let mut out = Vec::with_capacity(256 + rows.get_array_memory_size());
            out.extend_from_slice(br#"{"type":"initial_data_batch","subscription_id":"#);
            out.extend_from_slice(&serde_json::to_vec(id).unwrap_or_default());
            out.extend_from_slice(br#","rows":["#);
            write_rows_as_objects(&mut out, rows);
            out.extend_from_slice(br#"],"batch_control":"#);
            out.extend_from_slice(control_json(control).to_string().as_bytes());
            out.push(b'}');
            text_message(out)
        }
        LiveMessage::Change { kind, rows, old } => {
            let mut out = Vec::with_capacity(256);
            out.extend_from_slice(br#"{"type":"change","subscription_id":"#);
            out.extend_from_slice(&serde_json::to_vec(id).unwrap_or_default());
            out.extend_from_slice(br#","change_type":""#);
            out.extend_from_slice(kind.as_str().as_bytes());
            out.push(b'"');
            if let Some(rows) = rows {
                out.extend_from_slice(br#","rows":["#);
                write_rows_as_objects(&mut out, rows);
                out.push(b']');
            }
            if let Some(old) = old {
                out.extend_from_slice(br#","old_values":["#);
                write_rows_as_objects(&mut out, old);
                out.push(b']');
            }
            out.push(b'}');
            text_message(out)
        }
    }
}

fn text_message(json: Vec<u8>) -> Message {
    // The encoder writes UTF-8 only (serde_json strings, digits, punctuation).
    Message::text(String::from_utf8(json).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

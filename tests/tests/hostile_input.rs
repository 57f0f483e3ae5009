//! Hostile input over HTTP and WebSocket: every malformed, oversized or sly request gets
//! the right 4xx, writes nothing, and leaves the server answering. Each test runs on both
//! backends.

use std::time::Duration;

use calamus::StorageBackend;
use calamus_tests::server::{TestServer, basic};
use calamus_tests::ws_client::WsClient;
use serde_json::{Value, json};

calamus_tests::on_both_backends!(
    malformed_bodies_are_refused,
    oversized_and_overlong_requests_are_refused,
    hostile_identifiers_are_refused,
    comments_and_params_never_smuggle_statements,
    hostile_websocket_frames_leave_the_server_up,
);

/// The body limit of these servers (64 KiB): over it, requests are refused whole.
const BODY_LIMIT: usize = 64 * 1024;

/// A server with `app.sentinel` holding one row of alice's, and the checks that nothing
/// changed.
struct Fixture {
    server: TestServer,
    alice: String,
}

impl Fixture {
    fn new(backend: StorageBackend) -> Self {
        let server = TestServer::start_with(backend, |config| config.server.body_limit_bytes = BODY_LIMIT);
        server.create_user("alice", "alice-password", "user");
        server.sql_ok(
            &server.root(),
            "CREATE NAMESPACE app; CREATE USER TABLE app.sentinel (id BIGINT PRIMARY KEY, name TEXT)",
        );
        let alice = basic("alice", "alice-password");
        server.sql_ok(&alice, "INSERT INTO app.sentinel VALUES (1, 'untouched')");
        Self { server, alice }
    }

    fn post(&self, body: &[u8]) -> calamus_tests::server::Answer {
        self.server
            .request("POST", "/v1/api/sql", Some(&self.alice), Some(body))
    }

    /// The server answers, the sentinel row is as it was, and no namespace or table
    /// appeared.
    fn assert_untouched(&self) {
        let rows = self
            .server
            .sql_ok(&self.alice, "SELECT id, name FROM app.sentinel")
            .rows(0);
        assert_eq!(rows, [json!(["1", "untouched"])]);
        let tables = self
            .server
            .sql_ok(
                &self.server.root(),
                "SELECT namespace_id, table_name FROM system.tables",
            )
            .rows(0);
        assert_eq!(tables, [json!(["app", "sentinel"])]);
        let namespaces = self
            .server
            .sql_ok(&self.server.root(), "SELECT count(*) FROM system.namespaces")
            .rows(0);
        assert_eq!(namespaces, [json!(["2"])], "default and app only");
    }
}

fn expect(answer: &calamus_tests::server::Answer, status: u16, code: &str) {
    assert_eq!(answer.status, status, "{}", answer.text);
    assert_eq!(answer.code(), code, "{}", answer.text);
    assert!(
        !answer.body["error"]["message"].as_str().unwrap_or("").is_empty(),
        "an error says what is wrong: {}",
        answer.text
    );
}

fn malformed_bodies_are_refused(backend: StorageBackend) {
    let f = Fixture::new(backend);
    for body in [
        &b"not json at all"[..],
        b"",
        b"{\"sql\": ",
        b"[\"DELETE FROM app.sentinel\"]",
        b"{\"sql\": 42}",
        b"{\"sql\": [\"DELETE FROM app.sentinel\"]}",
        b"{\"sql\": \"DELETE FROM app.sentinel\", \"params\": \"x\"}",
        b"{\"sql\": \"DELETE FROM app.sentinel\", \"namespace_id\": 7}",
        b"{\"sql\": \"DELETE FROM app.sentinel\" \"\"}",
        // Invalid UTF-8 inside the JSON string.
        b"{\"sql\": \"DELETE FROM app.sentinel WHERE name = '\xff\xfe'\"}",
    ] {
        let answer = f.post(body);
        expect(&answer, 400, "INVALID_INPUT");
    }
    // Deeply nested JSON: refused by the decoder's depth limit, not by a stack overflow.
    let deep = format!(
        "{{\"sql\": \"SELECT 1\", \"params\": {}{}}}",
        "[".repeat(20_000),
        "]".repeat(20_000)
    );
    expect(&f.post(deep.as_bytes()), 400, "INVALID_INPUT");
    // A nested parameter value is refused, not turned into SQL.
    let answer = f.server.sql_request(
        &f.alice,
        &json!({"sql": "SELECT * FROM app.sentinel WHERE name = $1", "params": [{"x": ["DROP TABLE app.sentinel"]}]}),
    );
    expect(&answer, 400, "INVALID_PARAMETER");
    f.assert_untouched();
}

fn oversized_and_overlong_requests_are_refused(backend: StorageBackend) {
    let f = Fixture::new(backend);
    // Over the body limit (10 MiB): refused before it is read whole.
    let huge = format!(
        "{{\"sql\": \"DELETE FROM app.sentinel -- {}\"}}",
        "x".repeat(BODY_LIMIT + 1024)
    );
    expect(&f.post(huge.as_bytes()), 413, "PAYLOAD_TOO_LARGE");
    // Thousands of statements: refused whole, even with a write among them.
    let mut many = vec!["DELETE FROM app.sentinel".to_owned()];
    many.extend((0..5000).map(|i| format!("SELECT {i}")));
    let answer = f.server.sql(&f.alice, &many.join("; "));
    expect(&answer, 400, "INVALID_INPUT");
    assert!(answer.text.contains("at most 1000 statements"), "{}", answer.text);
    // A statement of enormous depth is an error, not a crash.
    let deep_sql = format!("SELECT {}1{}", "(".repeat(5000), ")".repeat(5000));
    let answer = f.server.sql(&f.alice, &deep_sql);
    assert_eq!(answer.status, 400, "{}", answer.text);
    f.assert_untouched();
}

fn hostile_identifiers_are_refused(backend: StorageBackend) {
    let f = Fixture::new(backend);
    let root = f.server.root();
    for (sql, words) in [
        ("CREATE NAMESPACE \"a/b\"", "a/b"),
        ("CREATE NAMESPACE \"..\"", ".."),
        ("CREATE NAMESPACE \"x\u{0}y\"", "x"),
        // Cyrillic 'а' (U+0430) that looks like Latin 'a'.
        ("CREATE NAMESPACE \"\u{0430}pp\"", "pp"),
        ("CREATE USER TABLE app.\"../../etc\" (id INT)", "etc"),
        ("CREATE USER TABLE app.\"t/../x\" (id INT)", "t/"),
        ("CREATE USER \"bob/..\" WITH PASSWORD 'pw-123456' ROLE user", "bob"),
        ("CREATE STORAGE \"s/..\" TYPE 'filesystem' BASE_DIRECTORY 'x'", "s/"),
        ("CREATE USER TABLE app.t (\"a/b\" INT)", "a/b"),
    ] {
        let answer = f.server.sql(&root, sql);
        assert_eq!(answer.status, 400, "{sql}: {}", answer.text);
        assert!(
            matches!(answer.code(), "INVALID_SQL" | "INVALID_INPUT"),
            "{sql}: {}",
            answer.text
        );
        assert!(
            answer.text.contains(words),
            "the error names the identifier: {sql}: {}",
            answer.text
        );
    }
    let users = f
        .server
        .sql_ok(
            &root,
            "SELECT count(*) FROM system.users WHERE user_id <> 'root' AND user_id <> 'alice'",
        )
        .rows(0);
    assert_eq!(users, [json!(["0"])]);
    f.assert_untouched();
}

fn comments_and_params_never_smuggle_statements(backend: StorageBackend) {
    let f = Fixture::new(backend);
    // A statement inside a comment is a comment.
    for sql in [
        "SELECT 1 /* ; DELETE FROM app.sentinel */",
        "SELECT 1 -- ; DELETE FROM app.sentinel",
        "SELECT '; DELETE FROM app.sentinel; --' AS text",
        "SELECT 1 /* nested /* DELETE FROM app.sentinel */ still a comment */",
    ] {
        let answer = f.server.sql_ok(&f.alice, sql);
        assert_eq!(
            answer.body["results"].as_array().map(Vec::len),
            Some(1),
            "{sql}: one statement"
        );
    }
    // Parameters are values, never SQL.
    let injected = "x'; DELETE FROM app.sentinel; --";
    let answer = f.server.sql_request(
        &f.alice,
        &json!({"sql": "SELECT id FROM app.sentinel WHERE name = $1", "params": [injected]}),
    );
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.rows(0), Vec::<Value>::new());
    let answer = f.server.sql_request(
        &f.alice,
        &json!({"sql": "INSERT INTO app.sentinel VALUES (2, $1)", "params": [injected]}),
    );
    assert_eq!(answer.status, 200, "{}", answer.text);
    let stored = f
        .server
        .sql_ok(&f.alice, "SELECT name FROM app.sentinel WHERE id = 2")
        .rows(0);
    assert_eq!(stored, [json!([injected])], "stored as the text it is");
    f.server.sql_ok(&f.alice, "DELETE FROM app.sentinel WHERE id = 2");
    // A placeholder cannot name a table or smuggle a clause.
    let answer = f.server.sql_request(
        &f.alice,
        &json!({"sql": "SELECT * FROM $1", "params": ["app.sentinel"]}),
    );
    assert_eq!(answer.status, 400, "{}", answer.text);
    f.assert_untouched();
}

fn hostile_websocket_frames_leave_the_server_up(backend: StorageBackend) {
    let f = Fixture::new(backend);
    let bearer = f.server.bearer("alice", "alice-password");
    // Deeply nested and wrongly typed JSON: an error message, the connection stays.
    let mut client = WsClient::connect_as(f.server.addr, &bearer);
    let deep = format!(
        "{{\"type\": \"subscribe\", \"subscription\": {}{}}}",
        "[".repeat(20_000),
        "]".repeat(20_000)
    );
    client.send_text(&deep);
    assert_eq!(client.recv()["code"], "INVALID_INPUT");
    client.send(&json!({"type": "subscribe", "subscription": {"id": "x", "sql": ["DELETE FROM app.sentinel"]}}));
    assert_eq!(client.recv()["code"], "INVALID_INPUT");
    client.send(&json!({"type": "subscribe", "subscription": ["x", "SELECT * FROM app.sentinel"]}));
    assert_eq!(
        client.recv()["code"],
        "INVALID_INPUT",
        "an array does not pass for an object"
    );
    client.send(&json!(["subscribe", {"id": "x", "sql": "SELECT * FROM app.sentinel"}]));
    assert_eq!(client.recv()["code"], "INVALID_INPUT");
    client.send(&json!({"type": "subscribe", "subscription": {"id": "x", "sql": "DELETE FROM app.sentinel"}}));
    assert_eq!(client.recv()["code"], "INVALID_SQL");
    client.send(&json!({"type": "ping"}));
    assert_eq!(client.recv()["type"], "pong");
    // A message over the size limit closes that connection only.
    let _ = client.try_send_text(&format!(
        "{{\"type\": \"ping\", \"pad\": \"{}\"}}",
        "x".repeat(BODY_LIMIT * 2)
    ));
    assert!(
        client.closed_within(Duration::from_secs(5)),
        "an oversized message ends the connection"
    );
    // Raw invalid UTF-8 in a text frame: the connection is closed, the server stays up.
    let mut raw = WsClient::connect_as(f.server.addr, &bearer);
    raw.send_invalid_utf8_text();
    assert!(raw.closed_within(Duration::from_secs(5)));
    let mut after = WsClient::connect_as(f.server.addr, &bearer);
    after.send(&json!({"type": "ping"}));
    assert_eq!(after.recv()["type"], "pong");
    f.assert_untouched();
}

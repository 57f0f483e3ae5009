//! Black-box tests of live queries (`GET /v1/ws`, API.md) with a real WebSocket client over
//! TCP, each run once with RocksDB and once with sled.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use calamus::StorageBackend;
use calamus_tests::server::{TestServer, basic};
use calamus_tests::ws_client::WsClient;
use serde_json::{Value, json};

calamus_tests::on_both_backends!(
    snapshot_then_every_kind_of_change,
    users_see_only_their_own_rows,
    shared_and_stream_tables,
    batches_last_rows_and_resume,
    resume_deletes_rows_that_left_the_filter,
    authentication_by_header_or_first_message,
    bad_messages_and_bad_subscriptions_get_errors,
    live_queries_table_kill_and_disconnect,
    writes_during_the_snapshot_arrive_exactly_once,
    a_client_that_does_not_read_is_disconnected,
    stream_rows_expire_and_eviction_is_a_job,
    subscriptions_see_flushed_rows,
);

/// Quiet time after which no further message is expected.
const QUIET: Duration = Duration::from_millis(400);

/// A server with namespace `app`, users alice and bob (role user), and a USER table
/// `app.msgs (id BIGINT PRIMARY KEY, room TEXT, body TEXT)`.
fn server(backend: StorageBackend) -> TestServer {
    server_with(backend, |_| {})
}

fn server_with(backend: StorageBackend, configure: impl FnOnce(&mut calamus::Config)) -> TestServer {
    let server = TestServer::start_with(backend, configure);
    server.create_user("alice", "alice-password", "user");
    server.create_user("bob", "bob-password", "user");
    server.sql_ok(
        &server.root(),
        "CREATE NAMESPACE app; CREATE USER TABLE app.msgs (id BIGINT PRIMARY KEY, room TEXT, body TEXT)",
    );
    server
}

fn alice(_server: &TestServer) -> String {
    basic("alice", "alice-password")
}

fn bob(server: &TestServer) -> String {
    let _ = server;
    basic("bob", "bob-password")
}

fn ids(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .map(|r| r["id"].as_str().unwrap_or("?").to_owned())
        .collect()
}

fn rows_of(message: &Value, key: &str) -> Vec<Value> {
    message[key].as_array().cloned().unwrap_or_default()
}

fn snapshot_then_every_kind_of_change(backend: StorageBackend) {
    let server = server(backend);
    let auth = alice(&server);
    server.sql_ok(
        &auth,
        "INSERT INTO app.msgs VALUES (1, 'a', 'one'), (2, 'b', 'two'), (3, 'a', 'three')",
    );
    let mut client = WsClient::connect_as(server.addr, &server.bearer("alice", "alice-password"));
    let (ack, rows) = client.subscribe("m", "SELECT id, body FROM app.msgs WHERE room = 'a'", json!({}));
    assert_eq!(ack["subscription_id"], "m");
    assert_eq!(ack["total_rows"], 2, "{ack}");
    assert_eq!(ack["batch_control"]["status"], "loading");
    let names: Vec<&str> = ack["schema"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["id", "body", "_seq"], "{ack}");
    assert_eq!(ids(&rows), ["1", "3"]);
    assert!(
        rows[0]["_seq"].as_str().is_some_and(|s| s.parse::<i64>().is_ok()),
        "{rows:?}"
    );
    assert_eq!(rows[0]["body"], "one");

    // A row outside the filter sends nothing; the next one inside does.
    server.sql_ok(&auth, "INSERT INTO app.msgs VALUES (4, 'b', 'four')");
    server.sql_ok(&auth, "INSERT INTO app.msgs VALUES (5, 'a', 'five')");
    let change = client.recv();
    assert_eq!(change["type"], "change", "{change}");
    assert_eq!(change["change_type"], "insert");
    assert_eq!(ids(&rows_of(&change, "rows")), ["5"]);

    // An update inside the filter: new row and old values.
    server.sql_ok(&auth, "UPDATE app.msgs SET body = 'FIVE' WHERE id = 5");
    let change = client.recv();
    assert_eq!(change["change_type"], "update", "{change}");
    assert_eq!(rows_of(&change, "rows")[0]["body"], "FIVE");
    assert_eq!(rows_of(&change, "old_values")[0]["body"], "five");

    // Leaving the filter is a delete; entering it is an insert.
    server.sql_ok(&auth, "UPDATE app.msgs SET room = 'b' WHERE id = 1");
    let change = client.recv();
    assert_eq!(change["change_type"], "delete", "{change}");
    assert_eq!(ids(&rows_of(&change, "old_values")), ["1"]);
    assert!(change.get("rows").is_none(), "{change}");
    server.sql_ok(&auth, "UPDATE app.msgs SET room = 'a' WHERE id = 2");
    let change = client.recv();
    assert_eq!(change["change_type"], "insert", "{change}");
    assert_eq!(ids(&rows_of(&change, "rows")), ["2"]);

    // A primary-key change moves the row: one update.
    server.sql_ok(&auth, "UPDATE app.msgs SET id = 30 WHERE id = 3");
    let change = client.recv();
    assert_eq!(change["change_type"], "update", "{change}");
    assert_eq!(ids(&rows_of(&change, "rows")), ["30"]);
    assert_eq!(ids(&rows_of(&change, "old_values")), ["3"]);

    // A delete; a multi-row statement is one message.
    server.sql_ok(&auth, "DELETE FROM app.msgs WHERE id = 30");
    let change = client.recv();
    assert_eq!(change["change_type"], "delete", "{change}");
    assert_eq!(ids(&rows_of(&change, "old_values")), ["30"]);
    server.sql_ok(
        &auth,
        "INSERT INTO app.msgs VALUES (6, 'a', 'six'), (7, 'b', 'x'), (8, 'a', 'eight')",
    );
    let change = client.recv();
    assert_eq!(ids(&rows_of(&change, "rows")), ["6", "8"], "{change}");

    client.send(&json!({"type": "ping"}));
    assert_eq!(client.recv()["type"], "pong");

    // After unsubscribe, nothing more arrives.
    client.send(&json!({"type": "unsubscribe", "subscription_id": "m"}));
    client.send(&json!({"type": "ping"}));
    assert_eq!(client.recv()["type"], "pong");
    server.sql_ok(&auth, "INSERT INTO app.msgs VALUES (9, 'a', 'nine')");
    assert_eq!(client.try_recv(QUIET), None);
}

fn users_see_only_their_own_rows(backend: StorageBackend) {
    let server = server(backend);
    server.sql_ok(&alice(&server), "INSERT INTO app.msgs VALUES (1, 'a', 'alice secret')");
    server.sql_ok(&bob(&server), "INSERT INTO app.msgs VALUES (2, 'a', 'bob secret')");
    let mut a = WsClient::connect_as(server.addr, &server.bearer("alice", "alice-password"));
    let mut b = WsClient::connect_as(server.addr, &server.bearer("bob", "bob-password"));
    // Filters that would let a shared table's reader see everything.
    for (client, mine) in [(&mut a, "1"), (&mut b, "2")] {
        let (_, rows) = client.subscribe("all", "SELECT * FROM app.msgs", json!({}));
        assert_eq!(ids(&rows), [mine]);
        let (_, rows) = client.subscribe("tricky", "SELECT * FROM app.msgs WHERE 1 = 1 OR id > 0", json!({}));
        assert_eq!(ids(&rows), [mine]);
    }
    server.sql_ok(&bob(&server), "INSERT INTO app.msgs VALUES (3, 'a', 'bob again')");
    server.sql_ok(&alice(&server), "INSERT INTO app.msgs VALUES (4, 'a', 'alice again')");
    for (client, mine) in [(&mut a, "4"), (&mut b, "3")] {
        for _ in 0..2 {
            let change = client.recv();
            assert_eq!(ids(&rows_of(&change, "rows")), [mine], "{change}");
        }
        assert_eq!(client.try_recv(QUIET), None);
    }
    // Another user's deletes and updates reach no one else.
    server.sql_ok(&bob(&server), "UPDATE app.msgs SET body = 'x'; DELETE FROM app.msgs");
    assert_eq!(a.try_recv(QUIET), None);

    // Reading another user's table through a subscription is refused like any query.
    let (ack, _) = {
        a.send(&json!({"type": "subscribe", "subscription": {"id": "sys", "sql": "SELECT * FROM system.users"}}));
        (a.recv(), ())
    };
    assert_eq!(ack["type"], "error", "{ack}");
    assert_eq!(ack["code"], "PERMISSION_DENIED", "{ack}");
}

fn shared_and_stream_tables(backend: StorageBackend) {
    let server = server(backend);
    let root = server.root();
    server.sql_ok(
        &root,
        "CREATE SHARED TABLE app.news (id BIGINT PRIMARY KEY, title TEXT) WITH (ACCESS_LEVEL = 'PUBLIC'); \
         CREATE STREAM TABLE app.typing (room TEXT, who TEXT) WITH (TTL_SECONDS = 60)",
    );
    server.sql_ok(&root, "INSERT INTO app.news VALUES (1, 'hello')");
    let mut a = WsClient::connect_as(server.addr, &server.bearer("alice", "alice-password"));
    let (_, rows) = a.subscribe("news", "SELECT * FROM app.news", json!({}));
    assert_eq!(ids(&rows), ["1"]);
    server.sql_ok(&root, "INSERT INTO app.news VALUES (2, 'world')");
    let change = a.recv();
    assert_eq!(change["subscription_id"], "news");
    assert_eq!(ids(&rows_of(&change, "rows")), ["2"]);

    let (ack, _) = a.subscribe(
        "typing",
        "SELECT room, who FROM app.typing WHERE room = 'r1'",
        json!({}),
    );
    assert_eq!(ack["total_rows"], 0);
    server.sql_ok(&alice(&server), "INSERT INTO app.typing VALUES ('r1', 'alice')");
    server.sql_ok(&bob(&server), "INSERT INTO app.typing VALUES ('r1', 'bob')");
    let change = a.recv();
    assert_eq!(change["subscription_id"], "typing", "{change}");
    assert_eq!(rows_of(&change, "rows")[0]["who"], "alice");
    assert!(rows_of(&change, "rows")[0]["_seq"].is_string());
    assert_eq!(a.try_recv(QUIET), None, "bob's events are bob's");
}

fn batches_last_rows_and_resume(backend: StorageBackend) {
    let server = server(backend);
    let auth = alice(&server);
    let values: Vec<String> = (1..=25).map(|i| format!("({i}, 'a', 'row {i}')")).collect();
    server.sql_ok(&auth, &format!("INSERT INTO app.msgs VALUES {}", values.join(",")));
    let mut client = WsClient::connect_as(server.addr, &server.bearer("alice", "alice-password"));

    // Batches of 10: the client asks for each after the first.
    client.send(&json!({"type": "subscribe", "subscription": {"id": "b", "sql": "SELECT * FROM app.msgs", "options": {"batch_size": 10}}}));
    let ack = client.recv();
    assert_eq!(ack["total_rows"], 25);
    let mut statuses = Vec::new();
    let mut all = Vec::new();
    loop {
        let batch = client.recv();
        assert_eq!(batch["type"], "initial_data_batch", "{batch}");
        statuses.push((
            batch["batch_control"]["batch_num"].as_u64().unwrap(),
            batch["batch_control"]["status"].as_str().unwrap().to_owned(),
        ));
        all.extend(rows_of(&batch, "rows"));
        if batch["batch_control"]["has_more"] == false {
            assert_eq!(
                batch["batch_control"]["last_seq_id"].as_i64(),
                ack["batch_control"]["last_seq_id"].as_i64()
            );
            break;
        }
        // Nothing more comes until asked.
        assert_eq!(client.try_recv(Duration::from_millis(200)), None);
        client.send(&json!({"type": "next_batch", "subscription_id": "b"}));
    }
    assert_eq!(
        statuses,
        [
            (0, "loading_batch".to_owned()),
            (1, "loading_batch".to_owned()),
            (2, "ready".to_owned())
        ]
    );
    assert_eq!(ids(&all), (1..=25).map(|i| i.to_string()).collect::<Vec<_>>());

    // The newest rows only.
    let (ack, rows) = client.subscribe("last", "SELECT * FROM app.msgs", json!({"last_rows": 5}));
    assert_eq!(ack["total_rows"], 5);
    assert_eq!(ids(&rows), ["21", "22", "23", "24", "25"]);

    // Resume: everything changed after a `_seq`, deletes included, nothing before it.
    let resume_from: i64 = all[19]["_seq"].as_str().unwrap().parse().unwrap(); // row 20
    server.sql_ok(&auth, "UPDATE app.msgs SET body = 'changed' WHERE id = 3");
    server.sql_ok(&auth, "DELETE FROM app.msgs WHERE id = 22");
    let messages = client.recv_until("change"); // the live subscriptions see them first
    assert!(!messages.is_empty());
    client.close();
    let mut again = WsClient::connect_as(server.addr, &server.bearer("alice", "alice-password"));
    again.send(&json!({"type": "subscribe", "subscription": {"id": "r", "sql": "SELECT * FROM app.msgs", "options": {"from_seq_id": resume_from.to_string()}}}));
    let ack = again.recv();
    assert_eq!(ack["type"], "subscription_ack", "{ack}");
    let batch = again.recv();
    assert_eq!(ids(&rows_of(&batch, "rows")), ["21", "23", "24", "25", "3"], "{batch}");
    let deletes = again.recv();
    assert_eq!(deletes["change_type"], "delete", "{deletes}");
    assert_eq!(ids(&rows_of(&deletes, "old_values")), ["22"]);
    assert_eq!(again.try_recv(QUIET), None);
}

/// Rows updated out of a filtered subscription's view while the client was away come back
/// as deletes on resume, also when they were deleted afterwards with values that no longer
/// match; rows that never changed are not sent again.
fn resume_deletes_rows_that_left_the_filter(backend: StorageBackend) {
    let server = server(backend);
    let auth = alice(&server);
    server.sql_ok(
        &auth,
        "INSERT INTO app.msgs VALUES (1, 'a', 'one'), (2, 'a', 'two'), (3, 'a', 'three'), (4, 'b', 'four')",
    );
    let sql = "SELECT id, body FROM app.msgs WHERE room = 'a'";
    let mut client = WsClient::connect_as(server.addr, &server.bearer("alice", "alice-password"));
    let (ack, rows) = client.subscribe("f", sql, json!({}));
    assert_eq!(ids(&rows), ["1", "2", "3"], "{ack}");
    let resume_from = ack["batch_control"]["last_seq_id"].as_i64().expect("last_seq_id");
    client.close();

    server.sql_ok(&auth, "UPDATE app.msgs SET room = 'b' WHERE id = 1"); // leaves the filter
    server.sql_ok(&auth, "UPDATE app.msgs SET room = 'b' WHERE id = 2"); // leaves it,
    server.sql_ok(&auth, "DELETE FROM app.msgs WHERE id = 2"); // then is deleted
    server.sql_ok(&auth, "UPDATE app.msgs SET room = 'a' WHERE id = 4"); // enters it

    let mut again = WsClient::connect_as(server.addr, &server.bearer("alice", "alice-password"));
    let (ack, rows) = again.subscribe("f", sql, json!({"from_seq_id": resume_from}));
    assert_eq!(ack["total_rows"], 1, "{ack}");
    assert_eq!(ids(&rows), ["4"]);
    let deletes = again.recv();
    assert_eq!(deletes["change_type"], "delete", "{deletes}");
    assert_eq!(ids(&rows_of(&deletes, "old_values")), ["1", "2"]);
    assert_eq!(again.try_recv(QUIET), None, "row 3 did not change: nothing about it");
}

fn authentication_by_header_or_first_message(backend: StorageBackend) {
    let server = server(backend);
    let token = server.login("alice", "alice-password");

    // The first message authenticates.
    let mut client = WsClient::connect(server.addr, None).expect("upgraded");
    client.send(&json!({"type": "authenticate", "method": "jwt", "token": token, "protocol": {"serialization": "json", "compression": "none"}}));
    let hello = client.recv();
    assert_eq!(hello, json!({"type": "auth_success", "user": "alice", "role": "user"}));
    client.send(&json!({"type": "ping"}));
    assert_eq!(client.recv()["type"], "pong");

    // A bad token: auth_error, then the server closes.
    let mut client = WsClient::connect(server.addr, None).expect("upgraded");
    client.send(&json!({"type": "authenticate", "method": "jwt", "token": "not.a.token"}));
    let refusal = client.recv();
    assert_eq!(refusal["type"], "auth_error", "{refusal}");
    assert!(refusal["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(client.closed_within(Duration::from_secs(2)));

    // Anything else first: auth_error.
    let mut client = WsClient::connect(server.addr, None).expect("upgraded");
    client.send(&json!({"type": "subscribe", "subscription": {"id": "x", "sql": "SELECT * FROM app.msgs"}}));
    assert_eq!(client.recv()["type"], "auth_error");

    // Silence: auth_error after about 3 s.
    let started = Instant::now();
    let mut client = WsClient::connect(server.addr, None).expect("upgraded");
    let refusal = client.recv();
    assert_eq!(refusal["type"], "auth_error", "{refusal}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(2900) && waited < Duration::from_secs(8),
        "{waited:?}"
    );

    // A bad header is refused before the upgrade; a plain GET is told to use WebSocket.
    let refused = WsClient::connect(server.addr, Some("Bearer forged"))
        .err()
        .expect("refused");
    assert_eq!(refused.status, 401, "{refused:?}");
    let plain = server.request("GET", "/v1/ws", None, None);
    assert_eq!(plain.status, 400, "{}", plain.text);
    assert!(plain.text.contains("WebSocket"), "{}", plain.text);

    // Over HTTP, SUBSCRIBE TO says where live queries are served.
    let answer = server.sql(&alice(&server), "SUBSCRIBE TO app.msgs WHERE room = 'a'");
    assert_eq!(answer.status, 400, "{}", answer.text);
    assert!(answer.text.contains("/v1/ws"), "{}", answer.text);
}

fn bad_messages_and_bad_subscriptions_get_errors(backend: StorageBackend) {
    let server = server(backend);
    let mut client = WsClient::connect_as(server.addr, &server.bearer("alice", "alice-password"));
    let error_of = |client: &mut WsClient, message: &str| -> Value {
        client.send_text(message);
        let answer = client.recv();
        assert_eq!(answer["type"], "error", "{message} -> {answer}");
        answer
    };
    assert_eq!(error_of(&mut client, "not json")["code"], "INVALID_INPUT");
    assert_eq!(error_of(&mut client, r#"{"type": "launch"}"#)["code"], "INVALID_INPUT");
    assert_eq!(
        error_of(&mut client, r#"{"type": "subscribe", "subscription": {"id": 7}}"#)["code"],
        "INVALID_INPUT"
    );
    let subscribe =
        |id: &str, sql: &str| json!({"type": "subscribe", "subscription": {"id": id, "sql": sql}}).to_string();
    for (sql, code, words) in [
        ("SELEC * FROM app.msgs", "INVALID_SQL", "syntax"),
        ("SELECT * FROM app.msgs ORDER BY id", "INVALID_SQL", "last_rows"),
        ("SELECT count(*) FROM app.msgs", "INVALID_SQL", "one table"),
        (
            "SELECT * FROM app.msgs a JOIN app.msgs b ON a.id = b.id",
            "INVALID_SQL",
            "one table",
        ),
        (
            "SELECT * FROM app.msgs WHERE id IN (SELECT id FROM app.msgs)",
            "INVALID_SQL",
            "subquer",
        ),
        ("SELECT * FROM app.msgs; SELECT 1", "INVALID_SQL", "exactly one"),
        ("DELETE FROM app.msgs", "INVALID_SQL", "SELECT"),
        ("SELECT * FROM app.nothing", "PERMISSION_DENIED", "not visible to you"),
        ("SELECT nope FROM app.msgs", "SQL_EXECUTION_ERROR", "nope"),
    ] {
        let answer = error_of(&mut client, &subscribe("s", sql));
        assert_eq!(answer["subscription_id"], "s", "{sql}: {answer}");
        assert_eq!(answer["code"], code, "{sql}: {answer}");
        assert!(
            answer["message"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains(&words.to_lowercase()),
            "{sql}: {answer}"
        );
    }
    let answer = error_of(
        &mut client,
        &json!({"type": "subscribe", "subscription": {"id": "big", "sql": "SELECT * FROM app.msgs", "options": {"batch_size": 0}}}).to_string(),
    );
    assert_eq!(answer["code"], "INVALID_PARAMETER", "{answer}");
    assert_eq!(
        error_of(&mut client, &subscribe("", "SELECT * FROM app.msgs"))["code"],
        "INVALID_INPUT"
    );
    let (ack, _) = client.subscribe("dup", "SELECT * FROM app.msgs", json!({}));
    assert_eq!(ack["type"], "subscription_ack");
    assert_eq!(
        error_of(&mut client, &subscribe("dup", "SELECT * FROM app.msgs"))["code"],
        "INVALID_PARAMETER"
    );
    assert_eq!(
        error_of(&mut client, r#"{"type": "next_batch", "subscription_id": "nope"}"#)["code"],
        "NOT_FOUND"
    );
    assert_eq!(
        error_of(&mut client, r#"{"type": "unsubscribe", "subscription_id": "nope"}"#)["code"],
        "NOT_FOUND"
    );
    // Errors leave the connection working, and nothing was written.
    client.send(&json!({"type": "ping"}));
    assert_eq!(client.recv()["type"], "pong");
    let count = server.sql_ok(&alice(&server), "SELECT count(*) AS n FROM app.msgs");
    assert_eq!(count.rows(0), [json!(["0"])]);
}

fn live_query_rows(server: &TestServer, authorization: &str) -> Vec<Value> {
    server
        .sql_ok(
            authorization,
            "SELECT live_id, subscription_id, user_id, namespace_id, table_name, query, changes FROM system.live_queries",
        )
        .rows(0)
}

fn live_queries_table_kill_and_disconnect(backend: StorageBackend) {
    let server = server(backend);
    let mut a = WsClient::connect_as(server.addr, &server.bearer("alice", "alice-password"));
    let mut b = WsClient::connect_as(server.addr, &server.bearer("bob", "bob-password"));
    a.subscribe(
        "one",
        "SELECT * FROM app.msgs WHERE room = 'a'",
        json!({"last_rows": 10}),
    );
    a.subscribe("two", "SELECT * FROM app.msgs", json!({}));
    b.subscribe("mine", "SELECT * FROM app.msgs", json!({}));

    // Everyone sees their own; root sees all.
    let alice_rows = live_query_rows(&server, &alice(&server));
    assert_eq!(alice_rows.len(), 2, "{alice_rows:?}");
    assert!(
        alice_rows
            .iter()
            .all(|r| r[2] == "alice" && r[3] == "app" && r[4] == "msgs")
    );
    assert_eq!(alice_rows[0][5], "SELECT * FROM app.msgs WHERE room = 'a'");
    assert_eq!(live_query_rows(&server, &bob(&server)).len(), 1);
    assert_eq!(live_query_rows(&server, &server.root()).len(), 3);
    let options = server
        .sql_ok(
            &alice(&server),
            "SELECT options FROM system.live WHERE subscription_id = 'one'",
        )
        .rows(0);
    let options: Value = serde_json::from_str(options[0][0].as_str().unwrap()).unwrap();
    assert_eq!(options["last_rows"], 10);

    // The changes counter counts delivered changes.
    server.sql_ok(
        &alice(&server),
        "INSERT INTO app.msgs VALUES (1, 'a', 'x'), (2, 'b', 'y')",
    );
    a.recv();
    a.recv();
    let changes: BTreeMap<String, String> = live_query_rows(&server, &alice(&server))
        .iter()
        .map(|r| (r[1].as_str().unwrap().to_owned(), r[6].to_string()))
        .collect();
    assert_eq!(changes["one"], "\"1\"", "{changes:?}");
    assert_eq!(changes["two"], "\"2\"", "{changes:?}");

    // Bob cannot kill (or see) alice's; alice can; the client is told.
    let live_id = alice_rows[0][0].as_str().unwrap().to_owned();
    let refused = server.sql(&bob(&server), &format!("KILL LIVE QUERY '{live_id}'"));
    assert_eq!(refused.status, 403, "{}", refused.text);
    server.sql_ok(&alice(&server), &format!("KILL LIVE QUERY '{live_id}'"));
    let killed = a.recv();
    assert_eq!(killed["type"], "error", "{killed}");
    assert_eq!(killed["code"], "LIVE_QUERY_KILLED");
    assert_eq!(killed["subscription_id"], "one");
    assert_eq!(live_query_rows(&server, &alice(&server)).len(), 1);
    let missing = server.sql(&server.root(), &format!("KILL LIVE QUERY '{live_id}'"));
    assert_eq!(missing.status, 404, "{}", missing.text);
    // A service may kill anyone's.
    server.create_user("svc", "svc-password", "service");
    let bobs = live_query_rows(&server, &bob(&server))[0][0]
        .as_str()
        .unwrap()
        .to_owned();
    server.sql_ok(&basic("svc", "svc-password"), &format!("KILL LIVE QUERY '{bobs}'"));
    assert_eq!(b.recv()["code"], "LIVE_QUERY_KILLED");

    // A closed connection's rows go within a second.
    a.close();
    let deadline = Instant::now() + Duration::from_secs(1);
    while !live_query_rows(&server, &server.root()).is_empty() {
        assert!(Instant::now() < deadline, "rows of a closed connection stayed");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn writes_during_the_snapshot_arrive_exactly_once(backend: StorageBackend) {
    let server = Arc::new(server(backend));
    let auth = alice(&server);
    let values: Vec<String> = (0..2000).map(|i| format!("({i}, 'a', 'initial {i}')")).collect();
    server.sql_ok(&auth, &format!("INSERT INTO app.msgs VALUES {}", values.join(",")));

    // A writer inserts, updates and deletes while the client subscribes.
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicI64::new(10_000));
    let writer = {
        let (server, stop, next, auth) = (Arc::clone(&server), Arc::clone(&stop), Arc::clone(&next), auth.clone());
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let id = next.fetch_add(1, Ordering::Relaxed);
                server.sql_ok(&auth, &format!("INSERT INTO app.msgs VALUES ({id}, 'a', 'new')"));
                server.sql_ok(
                    &auth,
                    &format!("UPDATE app.msgs SET body = 'edited {id}' WHERE id = {i}"),
                );
                server.sql_ok(&auth, &format!("DELETE FROM app.msgs WHERE id = {}", i + 1000));
                i += 1;
            }
        })
    };
    std::thread::sleep(Duration::from_millis(50));
    let mut client = WsClient::connect_as(server.addr, &server.bearer("alice", "alice-password"));
    let (_, rows) = client.subscribe("all", "SELECT id, body FROM app.msgs", json!({"batch_size": 300}));
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("the writer");

    // The client's view: the snapshot, then every change applied in order.
    let mut view: BTreeMap<String, String> = BTreeMap::new();
    for row in &rows {
        assert!(
            view.insert(row["id"].as_str().unwrap().to_owned(), row["body"].to_string())
                .is_none(),
            "a row twice in the snapshot: {row}"
        );
    }
    while let Some(change) = client.try_recv(Duration::from_millis(1500)) {
        assert_eq!(change["type"], "change", "{change}");
        let kind = change["change_type"].as_str().unwrap();
        for old in rows_of(&change, "old_values") {
            let id = old["id"].as_str().unwrap();
            assert!(view.remove(id).is_some(), "{kind} of row {id} the view does not hold");
        }
        for new in rows_of(&change, "rows") {
            let id = new["id"].as_str().unwrap().to_owned();
            assert!(
                view.insert(id.clone(), new["body"].to_string()).is_none(),
                "{kind} of row {id} the view already holds"
            );
        }
    }
    let table: BTreeMap<String, String> = server
        .sql_ok(&auth, "SELECT id, body FROM app.msgs")
        .rows(0)
        .iter()
        .map(|r| (r[0].as_str().unwrap().to_owned(), r[1].to_string()))
        .collect();
    let missing: BTreeSet<_> = table.keys().filter(|k| !view.contains_key(*k)).collect();
    let extra: BTreeSet<_> = view.keys().filter(|k| !table.contains_key(*k)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, extra {extra:?}"
    );
    assert_eq!(view, table);
}

fn a_client_that_does_not_read_is_disconnected(backend: StorageBackend) {
    let server = server_with(backend, |config| config.server.live_queue_capacity = 4);
    let auth = alice(&server);
    let mut client = WsClient::connect_as(server.addr, &server.bearer("alice", "alice-password"));
    client.subscribe("all", "SELECT * FROM app.msgs", json!({}));
    // The client stops reading; rows of 64 KiB fill its socket, then its queue.
    let body = "x".repeat(64 * 1024);
    let mut disconnected = false;
    for id in 0..2000 {
        server.sql_ok(&auth, &format!("INSERT INTO app.msgs VALUES ({id}, 'a', '{body}')"));
        if id % 50 == 49 {
            let rows = live_query_rows(&server, &server.root());
            if rows.is_empty() {
                disconnected = true;
                break;
            }
        }
    }
    assert!(disconnected, "the server kept a client that read nothing");
    // The writer was never slowed into failing, and the client finds an error at the end.
    let mut last = None;
    while let Some(message) = client.try_recv(Duration::from_secs(2)) {
        last = Some(message);
    }
    let last = last.expect("messages were delivered before the disconnect");
    assert_eq!(last["type"], "error", "{last}");
    assert_eq!(last["code"], "SLOW_CONSUMER", "{last}");
}

fn eviction_job(server: &TestServer) -> Option<Value> {
    server
        .sql_ok(
            &server.root(),
            "SELECT status, rows_affected, message, table_name FROM system.jobs WHERE job_type = 'stream_eviction'",
        )
        .rows(0)
        .into_iter()
        .next()
}

fn stream_rows_expire_and_eviction_is_a_job(backend: StorageBackend) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let data_dir = dir.path().join("data");
    let server = TestServer::start_in(backend, &data_dir, |_| {});
    server.create_user("alice", "alice-password", "user");
    server.sql_ok(
        &server.root(),
        "CREATE NAMESPACE app; CREATE STREAM TABLE app.typing (room TEXT, who TEXT) WITH (TTL_SECONDS = 1)",
    );
    let auth = basic("alice", "alice-password");
    let mut client = WsClient::connect_as(server.addr, &server.bearer("alice", "alice-password"));
    client.subscribe("t", "SELECT * FROM app.typing", json!({}));
    server.sql_ok(
        &auth,
        "INSERT INTO app.typing VALUES ('r', 'a'), ('r', 'b'), ('r', 'c')",
    );
    // Events reach the subscriber as they are inserted.
    let change = client.recv();
    assert_eq!(rows_of(&change, "rows").len(), 3, "{change}");
    let inserted = Instant::now();
    assert_eq!(server.sql_ok(&auth, "SELECT who FROM app.typing").rows(0).len(), 3);

    // Within about a second of expiry the rows are gone, and the job says so.
    let job = loop {
        if let Some(job) = eviction_job(&server).filter(|job| job[1] == "3") {
            break job;
        }
        assert!(
            inserted.elapsed() < Duration::from_secs(4),
            "no eviction recorded: {:?}",
            eviction_job(&server)
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(job[0], "running", "{job}");
    assert_eq!(job[3], "typing");
    assert!(job[2].as_str().unwrap().starts_with("3 rows removed"), "{job}");
    assert!(server.sql_ok(&auth, "SELECT who FROM app.typing").rows(0).is_empty());

    // One row per table and run, not one per tick; completed when the server stops.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        server
            .sql_ok(&server.root(), "SELECT count(*) FROM system.jobs")
            .rows(0),
        [json!(["1"])]
    );
    client.close();
    drop(server);
    let server = TestServer::start_in(backend, &data_dir, |_| {});
    let job = eviction_job(&server).expect("the job row survives a restart");
    assert_eq!(job[0], "completed", "{job}");
}

fn subscriptions_see_flushed_rows(backend: StorageBackend) {
    let server = server(backend);
    let auth = alice(&server);
    server.sql_ok(
        &auth,
        "INSERT INTO app.msgs VALUES (1, 'a', 'one'), (2, 'a', 'two'), (3, 'b', 'three')",
    );
    server.sql_ok(&bob(&server), "INSERT INTO app.msgs VALUES (9, 'a', 'bob')");
    server.sql_ok(&server.root(), "FLUSH TABLE app.msgs");
    server.sql_ok(&auth, "INSERT INTO app.msgs VALUES (4, 'a', 'four')");
    let mut client = WsClient::connect_as(server.addr, &server.bearer("alice", "alice-password"));
    let (ack, rows) = client.subscribe("m", "SELECT id, body FROM app.msgs WHERE room = 'a'", json!({}));
    assert_eq!(ack["total_rows"], 3, "{ack}");
    assert_eq!(ids(&rows), ["1", "2", "4"], "flushed and hot rows, alice's only");
    // Changes to flushed rows carry their previous values.
    server.sql_ok(&auth, "UPDATE app.msgs SET body = 'TWO' WHERE id = 2");
    let change = client.recv();
    assert_eq!(change["change_type"], "update", "{change}");
    assert_eq!(rows_of(&change, "old_values")[0]["body"], "two");
    server.sql_ok(&auth, "DELETE FROM app.msgs WHERE id = 1");
    let change = client.recv();
    assert_eq!(change["change_type"], "delete", "{change}");
    assert_eq!(ids(&rows_of(&change, "old_values")), ["1"]);
    // A flush while subscribed changes nothing in the view, so it sends nothing.
    server.sql_ok(&server.root(), "FLUSH TABLE app.msgs");
    assert_eq!(client.try_recv(QUIET), None);
    let (_, rows) = client.subscribe("again", "SELECT id, body FROM app.msgs WHERE room = 'a'", json!({}));
    assert_eq!(ids(&rows), ["4", "2"], "the newest versions, oldest _seq first");
}

//! Black-box tests of the HTTP API (API.md) over real HTTP on an ephemeral loopback port,
//! each run once with RocksDB and once with sled.

use std::io::{Read, Write};
use std::time::Duration;

use base64::Engine as _;
use calamus::StorageBackend;
use calamus_tests::server::{TestServer, basic};
use serde_json::{Value, json};

calamus_tests::on_both_backends!(
    health_and_metrics_answer,
    login_refresh_and_me,
    every_row_of_the_error_table,
    bodies_over_the_limit_are_refused,
    tokens_expired_tampered_or_foreign_are_refused,
    values_use_the_protocol_encodings,
    ddl_and_dml_answer_messages,
    params_and_namespace_id,
    users_see_only_their_own_rows,
    roles_allow_and_refuse,
    a_batch_with_a_forbidden_statement_applies_nothing,
    large_results_stream_whole,
    many_concurrent_requests_are_all_answered,
    the_other_backend_cannot_open_the_data_directory,
    users_over_the_rate_limit_get_429,
);

fn health_and_metrics_answer(backend: StorageBackend) {
    let server = TestServer::start(backend);
    for path in ["/health", "/v1/api/healthcheck"] {
        let answer = server.request("GET", path, None, None);
        assert_eq!(answer.status, 200, "{path}");
        assert_eq!(answer.body["status"], "healthy");
        assert_eq!(answer.body["api_version"], "v1");
        assert!(answer.body["version"].is_string());
    }
    let _ = server.sql(&server.root(), "SELECT 1");
    let metrics = server.request("GET", "/metrics", None, None);
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .text
            .contains("calamus_http_requests_total{endpoint=\"sql\",status=\"2xx\"} 1"),
        "{}",
        metrics.text
    );
    let unknown = server.request("GET", "/v1/api/nothing", None, None);
    assert_eq!(unknown.status, 404);
    let wrong_method = server.request("GET", "/v1/api/sql", None, None);
    assert_eq!(wrong_method.status, 405);
}

fn login_refresh_and_me(backend: StorageBackend) {
    let server = TestServer::start(backend);
    server.create_user("alice", "alice-pw", "user");
    let body = serde_json::to_vec(&json!({"username": "alice", "password": "alice-pw"})).unwrap();
    let login = server.request("POST", "/v1/api/auth/login", None, Some(&body));
    assert_eq!(login.status, 200, "{}", login.text);
    assert_eq!(login.body["user"]["id"], "alice");
    assert_eq!(login.body["user"]["role"], "user");
    for key in ["access_token", "expires_at", "refresh_token", "refresh_expires_at"] {
        assert!(login.body[key].is_string(), "{key} in {}", login.text);
    }
    let access = format!("Bearer {}", login.body["access_token"].as_str().unwrap());
    let refresh = format!("Bearer {}", login.body["refresh_token"].as_str().unwrap());

    let me = server.request("GET", "/v1/api/auth/me", Some(&access), None);
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(
        (me.body["id"].as_str(), me.body["role"].as_str()),
        (Some("alice"), Some("user"))
    );

    let renewed = server.request("POST", "/v1/api/auth/refresh", Some(&refresh), None);
    assert_eq!(renewed.status, 200, "{}", renewed.text);
    let renewed_access = format!("Bearer {}", renewed.body["access_token"].as_str().unwrap());
    assert_eq!(server.sql(&renewed_access, "SELECT 1").status, 200);

    // Each token does only its own job.
    let wrong = server.request("POST", "/v1/api/auth/refresh", Some(&access), None);
    assert_eq!((wrong.status, wrong.code()), (401, "INVALID_TOKEN"));
    let wrong = server.sql(&refresh, "SELECT 1");
    assert_eq!((wrong.status, wrong.code()), (401, "INVALID_TOKEN"));

    // Wrong passwords, unknown users and root from loopback.
    let bad = serde_json::to_vec(&json!({"user": "alice", "password": "nope"})).unwrap();
    let refused = server.request("POST", "/v1/api/auth/login", None, Some(&bad));
    assert_eq!((refused.status, refused.code()), (401, "INVALID_CREDENTIALS"));
    let ghost = serde_json::to_vec(&json!({"user": "ghost", "password": "x"})).unwrap();
    let unknown = server.request("POST", "/v1/api/auth/login", None, Some(&ghost));
    assert_eq!((unknown.status, unknown.code()), (401, "INVALID_CREDENTIALS"));
    assert_eq!(refused.body["error"]["message"], unknown.body["error"]["message"]);
    assert!(server.login("root", "").len() > 20);

    // Once root has a password, the empty one stops working.
    assert_eq!(
        server.sql(&server.root(), "ALTER USER root SET PASSWORD 'r00t'").status,
        200
    );
    let empty = server.sql(&server.root(), "SELECT 1");
    assert_eq!((empty.status, empty.code()), (401, "INVALID_CREDENTIALS"));
    assert_eq!(server.sql(&basic("root", "r00t"), "SELECT 1").status, 200);
    // A dropped user's token stops working at once.
    assert_eq!(server.sql(&basic("root", "r00t"), "DROP USER alice").status, 200);
    let gone = server.sql(&access, "SELECT 1");
    assert_eq!((gone.status, gone.code()), (401, "INVALID_TOKEN"));
}

fn every_row_of_the_error_table(backend: StorageBackend) {
    let server = TestServer::start(backend);
    let root = server.root();
    server.create_user("alice", "pw", "user");
    let alice = basic("alice", "pw");
    let raw = |body: &[u8]| server.request("POST", "/v1/api/sql", Some(&root), Some(body));

    let cases: Vec<(&str, calamus_tests::server::Answer, u16, &str)> = vec![
        ("not JSON", raw(b"SELECT 1"), 400, "INVALID_INPUT"),
        ("invalid UTF-8", raw(b"{\"sql\": \"\xff\xfe\"}"), 400, "INVALID_INPUT"),
        ("sql not a string", raw(br#"{"sql": 5}"#), 400, "INVALID_INPUT"),
        ("no sql", raw(br#"{"params": []}"#), 400, "INVALID_INPUT"),
        (
            "deep nesting",
            raw(format!(
                "{{\"sql\": \"SELECT 1\", \"params\": {}{}}}",
                "[".repeat(5000),
                "]".repeat(5000)
            )
            .as_bytes()),
            400,
            "INVALID_INPUT",
        ),
        ("empty SQL", server.sql(&root, "   "), 400, "EMPTY_SQL"),
        ("only comments", server.sql(&root, "-- nothing\n;"), 400, "EMPTY_SQL"),
        ("does not parse", server.sql(&root, "SELEC 1"), 400, "INVALID_SQL"),
        (
            "bad params",
            server.sql_request(&root, &json!({"sql": "SELECT $1", "params": [{"a": 1}]})),
            400,
            "INVALID_PARAMETER",
        ),
        (
            "params with a batch",
            server.sql_request(&root, &json!({"sql": "SELECT $1; SELECT 2", "params": [1]})),
            400,
            "PARAMS_WITH_BATCH",
        ),
        (
            "missing table",
            server.sql(&root, "SELECT * FROM nowhere.nothing"),
            404,
            "NOT_FOUND",
        ),
        (
            "missing namespace",
            server.sql(&root, "DROP NAMESPACE nowhere"),
            404,
            "NOT_FOUND",
        ),
        (
            "already exists",
            {
                server.sql_ok(&root, "CREATE NAMESPACE app");
                server.sql(&root, "CREATE NAMESPACE app")
            },
            409,
            "CONFLICT",
        ),
        (
            "duplicate key",
            {
                server.sql_ok(&root, "CREATE SHARED TABLE app.t (id BIGINT PRIMARY KEY, n INT)");
                server.sql_ok(&root, "INSERT INTO app.t (id, n) VALUES (1, 1)");
                server.sql(&root, "INSERT INTO app.t (id, n) VALUES (1, 2)")
            },
            409,
            "CONFLICT",
        ),
        (
            "unknown column",
            server.sql(&root, "SELECT nope FROM app.t"),
            400,
            "SQL_EXECUTION_ERROR",
        ),
        (
            "role",
            server.sql(&alice, "CREATE NAMESPACE mine"),
            403,
            "PERMISSION_DENIED",
        ),
        (
            "no authorization",
            server.request("POST", "/v1/api/sql", None, Some(br#"{"sql":"SELECT 1"}"#)),
            401,
            "MISSING_AUTHORIZATION",
        ),
        (
            "wrong password",
            server.sql(&basic("alice", "wrong"), "SELECT 1"),
            401,
            "INVALID_CREDENTIALS",
        ),
        (
            "garbage token",
            server.sql("Bearer abc.def.ghi", "SELECT 1"),
            401,
            "INVALID_TOKEN",
        ),
    ];
    for (what, answer, status, code) in cases {
        assert_eq!(
            (answer.status, answer.code()),
            (status, code),
            "{what}: {}",
            answer.text
        );
        assert_eq!(answer.body["status"], "error", "{what}");
        assert_eq!(answer.body["results"], json!([]), "{what}");
        assert!(answer.body["took"].is_number(), "{what}");
        assert!(
            answer.body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}"
        );
    }
    // Nothing failed wrote anything.
    let rows = server.sql(&root, "SELECT id, n FROM app.t");
    assert_eq!(rows.rows(0), vec![json!(["1", 1])], "{}", rows.text);

    // A batch stops at its first failure; earlier statements stay applied.
    let batch = server.sql(&root, "INSERT INTO app.t (id, n) VALUES (2, 2); INSERT INTO app.t (id, n) VALUES (1, 9); INSERT INTO app.t (id, n) VALUES (3, 3)");
    assert_eq!((batch.status, batch.code()), (409, "CONFLICT"), "{}", batch.text);
    let message = batch.body["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("Statement 2 failed: "), "{message}");
    assert!(
        batch.body["error"]["details"]
            .as_str()
            .is_some_and(|d| d.contains("VALUES (1, 9)")),
        "{}",
        batch.text
    );
    let rows = server.sql(&root, "SELECT id FROM app.t ORDER BY id");
    assert_eq!(rows.rows(0), vec![json!(["1"]), json!(["2"])]);

    // A user's failures name nothing it may not see.
    let hidden = server.sql(&alice, "SELECT * FROM system.users");
    assert_eq!(hidden.status, 403, "{}", hidden.text);
    assert!(
        !hidden.text.contains("system.users") && !hidden.text.contains("details"),
        "{}",
        hidden.text
    );
}

fn bodies_over_the_limit_are_refused(backend: StorageBackend) {
    let server = TestServer::start_with(backend, |config| config.server.body_limit_bytes = 64 * 1024);
    let root = server.root();
    server.sql_ok(&root, "CREATE NAMESPACE app");
    server.sql_ok(&root, "CREATE SHARED TABLE app.t (id BIGINT PRIMARY KEY, s TEXT)");
    let big = format!("INSERT INTO app.t (id, s) VALUES (1, '{}')", "x".repeat(70 * 1024));
    let answer = server.sql(&root, &big);
    assert_eq!(
        (answer.status, answer.code()),
        (413, "PAYLOAD_TOO_LARGE"),
        "{}",
        answer.text
    );
    // A client still sending a body far larger than the socket buffers reads the 413 too
    // (the server reads and discards the rest rather than reset the connection).
    let huge = format!("INSERT INTO app.t (id, s) VALUES (1, '{}')", "x".repeat(4 << 20));
    let answer = server.sql(&root, &huge);
    assert_eq!(
        (answer.status, answer.code()),
        (413, "PAYLOAD_TOO_LARGE"),
        "{}",
        answer.text
    );
    let rows = server.sql(&root, "SELECT count(*) FROM app.t");
    assert_eq!(rows.rows(0), vec![json!(["0"])]);
    // Just under the limit is fine.
    let fits = format!("INSERT INTO app.t (id, s) VALUES (1, '{}')", "x".repeat(60 * 1024));
    assert_eq!(server.sql(&root, &fits).status, 200);
}

fn tokens_expired_tampered_or_foreign_are_refused(backend: StorageBackend) {
    let server = TestServer::start_with(backend, |config| config.auth.access_token_ttl_secs = 1);
    let token = server.login("root", "");
    assert_eq!(server.sql(&format!("Bearer {token}"), "SELECT 1").status, 200);

    // Tampered: alice's token made out to root, a well-formed payload under alice's
    // signature. Only the signature check can refuse it.
    server.create_user("alice", "a", "user");
    let alices = server.login("alice", "a");
    let parts: Vec<&str> = alices.split('.').collect();
    let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut claims: Value = serde_json::from_slice(&url_safe.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(claims["sub"], "alice");
    claims["sub"] = json!("root");
    claims["role"] = json!("system");
    let forged = url_safe.encode(serde_json::to_vec(&claims).unwrap());
    let tampered = format!("Bearer {}.{forged}.{}", parts[0], parts[2]);
    let answer = server.sql(&tampered, "SELECT count(*) FROM system.users");
    assert_eq!(
        (answer.status, answer.code()),
        (401, "INVALID_TOKEN"),
        "{}",
        answer.text
    );

    // Signed by another server's secret.
    let other = TestServer::start_with(backend, |config| {
        config.auth.jwt_secret = Some("another-secret-entirely-32-bytes".into())
    });
    let foreign = other.login("root", "");
    let answer = server.sql(&format!("Bearer {foreign}"), "SELECT 1");
    assert_eq!((answer.status, answer.code()), (401, "INVALID_TOKEN"));

    std::thread::sleep(Duration::from_millis(2100));
    let answer = server.sql(&format!("Bearer {token}"), "SELECT 1");
    assert_eq!(
        (answer.status, answer.code()),
        (401, "TOKEN_EXPIRED"),
        "{}",
        answer.text
    );
}

fn values_use_the_protocol_encodings(backend: StorageBackend) {
    let server = TestServer::start(backend);
    let root = server.root();
    server.sql_ok(&root, "CREATE NAMESPACE app");
    let create = server.sql(
        &root,
        "CREATE SHARED TABLE app.v (id BIGINT PRIMARY KEY, small SMALLINT, i INT, f FLOAT, d DOUBLE, \
         price DECIMAL(10,2), name TEXT, doc JSON, at TIMESTAMP, day DATE, t TIME, u UUID, ok BOOLEAN, raw BYTES)",
    );
    assert_eq!(create.status, 200, "{}", create.text);
    let insert = server.sql(
        &root,
        "INSERT INTO app.v VALUES (9007199254740993, 7, -3, 1.5, 2.25, 123.45, 'Zoë \"q\"', '{\"a\":1}', \
         TIMESTAMP '2024-01-02 03:04:05.000006', DATE '1970-01-11', TIME '01:00:00', \
         '0190b8a4-1c2d-7e3f-8a9b-0c1d2e3f4a5b', true, X'00FF')",
    );
    assert_eq!(insert.status, 200, "{}", insert.text);
    assert_eq!(insert.body["results"][0]["message"], "Inserted 1 row(s)");
    let answer = server.sql(
        &root,
        "SELECT id, small, i, f, d, price, name, doc, at, day, t, u, ok, raw FROM app.v",
    );
    assert_eq!(answer.status, 200, "{}", answer.text);
    let result = &answer.body["results"][0];
    let types: Vec<Value> = result["schema"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["data_type"].clone())
        .collect();
    assert_eq!(
        types,
        vec![
            json!("BigInt"),
            json!("SmallInt"),
            json!("Int"),
            json!("Float"),
            json!("Double"),
            json!({"Decimal": {"precision": 10, "scale": 2}}),
            json!("Text"),
            json!("Json"),
            json!("Timestamp"),
            json!("Date"),
            json!("Time"),
            json!("Uuid"),
            json!("Boolean"),
            json!("Bytes"),
        ]
    );
    assert_eq!(result["schema"][1]["index"], 1);
    assert_eq!(
        result["rows"][0],
        json!([
            "9007199254740993",
            7,
            -3,
            1.5,
            2.25,
            "123.45",
            "Zoë \"q\"",
            "{\"a\":1}",
            1_704_164_645_000_006_i64,
            10,
            3_600_000_000_i64,
            "0190b8a4-1c2d-7e3f-8a9b-0c1d2e3f4a5b",
            true,
            [0, 255]
        ])
    );
    assert_eq!(result["row_count"], 1);
    assert_eq!(result["as_user"], "root");
    assert!(answer.body["took"].as_f64().is_some());
    assert_eq!(answer.body["status"], "success");
}

fn ddl_and_dml_answer_messages(backend: StorageBackend) {
    let server = TestServer::start(backend);
    let root = server.root();
    let answer = server.sql(
        &root,
        "CREATE NAMESPACE app; CREATE USER TABLE app.notes (id BIGINT PRIMARY KEY DEFAULT SNOWFLAKE_ID(), body TEXT); \
         INSERT INTO app.notes (body) VALUES ('a'), ('b'), ('c'); UPDATE app.notes SET body = 'z' WHERE body <> 'a'; \
         DELETE FROM app.notes WHERE body = 'a'; SELECT body FROM app.notes ORDER BY body",
    );
    assert_eq!(answer.status, 200, "{}", answer.text);
    let results = answer.body["results"].as_array().unwrap();
    let messages: Vec<&str> = results[..5].iter().map(|r| r["message"].as_str().unwrap()).collect();
    assert_eq!(
        messages,
        vec![
            "Namespace 'app' created successfully",
            "Table app.notes created successfully",
            "Inserted 3 row(s)",
            "Updated 2 row(s)",
            "Deleted 1 row(s)"
        ]
    );
    assert_eq!(results[2]["row_count"], 3);
    assert!(results[0].get("rows").is_none() && results[0].get("schema").is_none());
    assert_eq!(results[5]["rows"], json!([["z"], ["z"]]));
}

fn params_and_namespace_id(backend: StorageBackend) {
    let server = TestServer::start(backend);
    let root = server.root();
    server.sql_ok(
        &root,
        "CREATE NAMESPACE app; CREATE SHARED TABLE app.kv (k TEXT PRIMARY KEY, v BIGINT)",
    );
    let insert = server.sql_request(
        &root,
        &json!({"sql": "INSERT INTO kv (k, v) VALUES ($1, $2)", "params": ["a'; DROP TABLE kv; --", 5], "namespace_id": "app"}),
    );
    assert_eq!(insert.status, 200, "{}", insert.text);
    let select = server.sql_request(
        &root,
        &json!({"sql": "SELECT k, v FROM kv WHERE v = $1", "params": [5], "namespace_id": "app"}),
    );
    assert_eq!(
        select.rows(0),
        vec![json!(["a'; DROP TABLE kv; --", "5"])],
        "{}",
        select.text
    );
    let bad_namespace = server.sql_request(&root, &json!({"sql": "SELECT 1", "namespace_id": "../etc"}));
    assert_eq!((bad_namespace.status, bad_namespace.code()), (400, "INVALID_INPUT"));
}

fn users_see_only_their_own_rows(backend: StorageBackend) {
    let server = TestServer::start(backend);
    let root = server.root();
    server.sql_ok(&root, "CREATE NAMESPACE chat; CREATE USER TABLE chat.messages (id BIGINT PRIMARY KEY DEFAULT SNOWFLAKE_ID(), body TEXT)");
    server.create_user("alice", "a", "user");
    server.create_user("bob", "b", "user");
    let alice = server.bearer("alice", "a");
    let bob = basic("bob", "b");
    assert_eq!(
        server
            .sql(
                &alice,
                "INSERT INTO chat.messages (body) VALUES ('alice 1'), ('alice 2')"
            )
            .status,
        200
    );
    assert_eq!(
        server
            .sql(&bob, "INSERT INTO chat.messages (body) VALUES ('bob 1')")
            .status,
        200
    );

    let mine = server.sql(&alice, "SELECT body FROM chat.messages ORDER BY body");
    assert_eq!(mine.rows(0), vec![json!(["alice 1"]), json!(["alice 2"])]);
    assert_eq!(mine.body["results"][0]["as_user"], "alice");
    let theirs = server.sql(&bob, "SELECT body FROM chat.messages");
    assert_eq!(theirs.rows(0), vec![json!(["bob 1"])]);

    // Attempts to reach the other's rows.
    for attack in [
        "SELECT body FROM chat.messages WHERE _deleted OR NOT _deleted",
        "SELECT body FROM chat.messages UNION ALL SELECT body FROM chat.messages",
        "WITH m AS (SELECT * FROM chat.messages) SELECT body FROM m",
        "SELECT a.body FROM chat.messages a JOIN chat.messages b ON a.id <> b.id OR a.id = b.id",
        "SELECT body FROM chat.messages WHERE id IN (SELECT id FROM chat.messages)",
    ] {
        let answer = server.sql(&bob, attack);
        assert_eq!(answer.status, 200, "{attack}: {}", answer.text);
        assert!(!answer.text.contains("alice"), "{attack} leaked: {}", answer.text);
    }
    let update = server.sql(&bob, "UPDATE chat.messages SET body = 'owned'");
    assert_eq!(update.body["results"][0]["row_count"], 1);
    let delete = server.sql(&bob, "DELETE FROM chat.messages WHERE body LIKE 'alice%'");
    assert_eq!(delete.body["results"][0]["row_count"], 0);
    let refused = server.sql(&bob, "EXECUTE AS USER 'alice' (SELECT body FROM chat.messages)");
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert_eq!(
        server.sql(&alice, "SELECT count(*) FROM chat.messages").rows(0),
        vec![json!(["2"])]
    );

    // A dba may read alice's rows, as alice.
    server.create_user("admin", "d", "dba");
    let as_alice = server.sql(
        &basic("admin", "d"),
        "EXECUTE AS USER 'alice' (SELECT count(*) FROM chat.messages)",
    );
    assert_eq!(as_alice.rows(0), vec![json!(["2"])], "{}", as_alice.text);
    assert_eq!(as_alice.body["results"][0]["as_user"], "alice");
}

fn roles_allow_and_refuse(backend: StorageBackend) {
    let server = TestServer::start(backend);
    let root = server.root();
    server.sql_ok(&root, "CREATE NAMESPACE app");
    server.sql_ok(
        &root,
        "CREATE SHARED TABLE app.public_news (id BIGINT PRIMARY KEY, title TEXT) WITH (ACCESS_LEVEL = 'PUBLIC')",
    );
    server.sql_ok(
        &root,
        "CREATE SHARED TABLE app.private_costs (id BIGINT PRIMARY KEY, amount BIGINT) WITH (ACCESS_LEVEL = 'PRIVATE')",
    );
    server.sql_ok(
        &root,
        "INSERT INTO app.public_news VALUES (1, 'hello'); INSERT INTO app.private_costs VALUES (1, 100)",
    );
    server.create_user("u", "u", "user");
    server.create_user("s", "s", "service");
    server.create_user("d", "d", "dba");
    let (user, service, dba) = (basic("u", "u"), basic("s", "s"), basic("d", "d"));
    let expect = |who: &str, auth: &str, sql: &str, status: u16| {
        let answer = server.sql(auth, sql);
        assert_eq!(answer.status, status, "{who}: {sql}: {}", answer.text);
    };
    expect("user", &user, "SELECT title FROM app.public_news", 200);
    expect("user", &user, "SELECT amount FROM app.private_costs", 403);
    expect(
        "user",
        &user,
        "SELECT title FROM app.public_news WHERE id IN (SELECT id FROM app.private_costs)",
        403,
    );
    expect(
        "user",
        &user,
        "WITH c AS (SELECT * FROM app.private_costs) SELECT count(*) FROM c",
        403,
    );
    expect("user", &user, "SELECT count(*) FROM system.users", 403);
    expect("user", &user, "INSERT INTO app.public_news VALUES (2, 'mine')", 403);
    expect("user", &user, "CREATE USER TABLE app.todo (id BIGINT PRIMARY KEY)", 200);
    expect(
        "user",
        &user,
        "CREATE SHARED TABLE app.board (id BIGINT PRIMARY KEY)",
        403,
    );
    expect("user", &user, "DROP TABLE app.todo", 403);
    expect("service", &service, "SELECT amount FROM app.private_costs", 200);
    expect(
        "service",
        &service,
        "INSERT INTO app.public_news VALUES (3, 'svc')",
        200,
    );
    expect(
        "service",
        &service,
        "CREATE SHARED TABLE app.board (id BIGINT PRIMARY KEY)",
        200,
    );
    expect("service", &service, "SELECT count(*) FROM system.tables", 403);
    expect("service", &service, "CREATE NAMESPACE svc", 403);
    expect("dba", &dba, "SELECT count(*) FROM system.users", 200);
    expect("dba", &dba, "CREATE NAMESPACE ops", 200);
    expect("dba", &dba, "DROP TABLE app.board", 200);
    expect("dba", &dba, "CREATE USER e WITH PASSWORD 'e' ROLE user", 200);
}

fn a_batch_with_a_forbidden_statement_applies_nothing(backend: StorageBackend) {
    let server = TestServer::start(backend);
    let root = server.root();
    server.sql_ok(
        &root,
        "CREATE NAMESPACE app; CREATE USER TABLE app.notes (id BIGINT PRIMARY KEY, body TEXT)",
    );
    server.create_user("u", "u", "user");
    let user = basic("u", "u");
    let answer = server.sql(
        &user,
        "INSERT INTO app.notes VALUES (1, 'first'); DROP TABLE app.notes; INSERT INTO app.notes VALUES (2, 'third')",
    );
    assert_eq!(
        (answer.status, answer.code()),
        (403, "PERMISSION_DENIED"),
        "{}",
        answer.text
    );
    let rows = server.sql(&user, "SELECT count(*) FROM app.notes");
    assert_eq!(rows.rows(0), vec![json!(["0"])], "{}", rows.text);
}

fn large_results_stream_whole(backend: StorageBackend) {
    let server = TestServer::start(backend);
    let root = server.root();
    server.sql_ok(
        &root,
        "CREATE NAMESPACE app; CREATE SHARED TABLE app.big (id BIGINT PRIMARY KEY, s TEXT)",
    );
    let answer = server.sql(
        &root,
        "INSERT INTO app.big (id, s) SELECT value, concat('row-', CAST(value AS TEXT)) FROM generate_series(1, 20000)",
    );
    assert_eq!(answer.status, 200, "{}", answer.text);
    // About 600 KB of JSON: past the buffer, so the response streams.
    let all = server.sql(&root, "SELECT id, s, s AS again FROM app.big ORDER BY id");
    assert_eq!(all.status, 200);
    assert!(
        all.text.len() > calamus_api_http::sql::STREAM_THRESHOLD,
        "{}",
        all.text.len()
    );
    assert_eq!(all.body["status"], "success");
    let rows = all.rows(0);
    assert_eq!(rows.len(), 20_000);
    assert_eq!(all.body["results"][0]["row_count"], 20_000);
    assert_eq!(rows[19_999], json!(["20000", "row-20000", "row-20000"]));

    // A cap, when configured, is reported.
    drop(server);
    let capped = TestServer::start_with(backend, |config| config.server.max_result_rows = Some(10));
    let root = capped.root();
    let answer = capped.sql(&root, "SELECT value FROM generate_series(1, 100)");
    assert_eq!(answer.rows(0).len(), 10);
    assert_eq!(answer.body["results"][0]["truncated"], true);
    assert_eq!(answer.body["results"][0]["row_count"], 10);
}

fn many_concurrent_requests_are_all_answered(backend: StorageBackend) {
    let server = TestServer::start(backend);
    let root = server.root();
    server.sql_ok(
        &root,
        "CREATE NAMESPACE app; CREATE USER TABLE app.items (id BIGINT PRIMARY KEY, n BIGINT)",
    );
    server.create_user("alice", "a", "user");
    let alice = server.bearer("alice", "a");
    let server = &server;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..1000)
            .map(|i| {
                let alice = alice.clone();
                scope.spawn(move || {
                    let answer = server.sql(&alice, &format!("INSERT INTO app.items VALUES ({i}, {i}) RETURNING n"));
                    assert_eq!(answer.status, 200, "{}", answer.text);
                    assert_eq!(answer.rows(0), vec![json!([i.to_string()])]);
                })
            })
            .collect();
        for handle in handles {
            handle.join().expect("a request thread");
        }
    });
    let count = server.sql(&alice, "SELECT count(*), sum(n) FROM app.items");
    assert_eq!(count.rows(0), vec![json!(["1000", "499500"])], "{}", count.text);
}

fn the_other_backend_cannot_open_the_data_directory(backend: StorageBackend) {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let server = TestServer::start_in(backend, &data_dir, |_| {});
    server.sql_ok(&server.root(), "CREATE NAMESPACE kept");
    drop(server);
    let other = match backend {
        StorageBackend::RocksDb => StorageBackend::Sled,
        StorageBackend::Sled => StorageBackend::RocksDb,
    };
    let error = TestServer::try_start_in(other, &data_dir, |_| {})
        .err()
        .expect("the other backend is refused");
    let message = error.to_string();
    assert!(
        message.contains(backend.as_str()) && message.contains("--storage"),
        "{message}"
    );
    // Nothing was damaged: the right backend still opens it with its data.
    let server = TestServer::start_in(backend, &data_dir, |_| {});
    let answer = server.sql(&server.root(), "SHOW NAMESPACES");
    assert!(answer.text.contains("kept"), "{}", answer.text);
}

fn users_over_the_rate_limit_get_429(backend: StorageBackend) {
    let server = TestServer::start_with(backend, |config| config.server.rate_limit_per_user = Some(5));
    server.create_user("alice", "a", "user");
    server.create_user("bob", "b", "user");
    let alice = server.bearer("alice", "a");
    let answers: Vec<u16> = (0..20).map(|_| server.sql(&alice, "SELECT 1").status).collect();
    assert!(answers[..5].iter().all(|s| *s == 200), "{answers:?}");
    let limited = server.sql(&alice, "SELECT 1");
    assert_eq!(
        (limited.status, limited.code()),
        (429, "RATE_LIMIT_EXCEEDED"),
        "{}",
        limited.text
    );
    // Another user has their own allowance.
    assert_eq!(server.sql(&server.bearer("bob", "b"), "SELECT 1").status, 200);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(server.sql(&alice, "SELECT 1").status, 200);

    // A refusal (bad credentials, rate limit) keeps the client's connection usable: the
    // body, sent after the headers,
    // is read before the answer, and the next request on the same connection is served.
    let mut socket = std::net::TcpStream::connect(server.addr).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let body = r#"{"sql": "SELECT 1"}"#;
    let head = format!(
        "POST /v1/api/sql HTTP/1.1\r\nHost: localhost\r\nAuthorization: {alice}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let forged = head.replace(alice.as_str(), "Bearer forged");
    socket.write_all(forged.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    socket.write_all(body.as_bytes()).unwrap();
    let mut statuses = vec![read_status(&mut socket)];
    for _ in 0..8 {
        socket.write_all(head.as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        socket.write_all(body.as_bytes()).unwrap();
        statuses.push(read_status(&mut socket));
    }
    assert_eq!(statuses[0], 401, "{statuses:?}");
    assert!(statuses.contains(&429), "{statuses:?}");
}

/// Reads one HTTP/1.1 answer with a Content-Length from `socket`; gives its status.
fn read_status(socket: &mut std::net::TcpStream) -> u16 {
    let mut read = Vec::new();
    let mut byte = [0u8; 1];
    while !read.ends_with(b"\r\n\r\n") {
        let n = socket.read(&mut byte).expect("the answer's head");
        assert_eq!(
            n,
            1,
            "the server closed the connection: {}",
            String::from_utf8_lossy(&read)
        );
        read.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&read).to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().unwrap())
        .expect("a content-length");
    let mut body = vec![0u8; length];
    socket.read_exact(&mut body).expect("the answer's body");
    head[9..12].parse().unwrap()
}

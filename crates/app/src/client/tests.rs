use super::*;
use std::io::Write;

#[test]
fn base_urls_are_normalised() {
    assert_eq!(base_url("http://127.0.0.1:8080/").unwrap(), "http://127.0.0.1:8080");
    assert_eq!(base_url("localhost:9000").unwrap(), "http://localhost:9000");
    assert!(matches!(
        base_url("https://db.example"),
        Err(AppError::Connection { .. })
    ));
    assert!(matches!(base_url("ftp://db.example"), Err(AppError::Connection { .. })));
}

#[test]
fn server_errors_carry_code_and_message() {
    let answer = json!({"status": "error", "results": [], "took": 0.8,
        "error": {"code": "NOT_FOUND", "message": "namespace 'chat' does not exist"}})
    .to_string();
    let error = parse_answer("/v1/api/sql", 404, answer.as_bytes()).unwrap_err();
    assert_eq!(error.to_string(), "ERROR NOT_FOUND: namespace 'chat' does not exist");
    let error = parse_answer("/v1/api/sql", 200, answer.as_bytes()).unwrap_err();
    assert_eq!(error.to_string(), "ERROR NOT_FOUND: namespace 'chat' does not exist");
    let error = parse_answer("/v1/api/sql", 502, b"{}").unwrap_err();
    assert_eq!(error.to_string(), "ERROR HTTP_ERROR: the server answered HTTP 502");
    let error = parse_answer("/v1/api/sql", 502, b"<html>Bad Gateway</html>").unwrap_err();
    assert!(matches!(error, AppError::BadResponse { .. }), "{error}");
}

#[test]
fn nothing_listening_is_a_connection_error() {
    // Port 1 on loopback: reserved, nothing listens there.
    let options = ClientOptions {
        url: "http://127.0.0.1:1".into(),
        ..ClientOptions::default()
    };
    let error = run_sql(&options, "SELECT 1", OutputFormat::Table, &mut Vec::new()).unwrap_err();
    assert!(matches!(error, AppError::Connection { .. }), "{error}");
}

#[test]
fn debug_output_hides_credentials() {
    let options = ClientOptions {
        password: "pw-secret".into(),
        token: Some("tok-secret".into()),
        ..ClientOptions::default()
    };
    let shown = format!("{options:?}");
    assert!(!shown.contains("pw-secret") && !shown.contains("tok-secret"), "{shown}");
}

/// One request as the fake server saw it.
#[derive(Debug)]
struct Seen {
    request_line: String,
    authorization: Option<String>,
    body: Value,
}

/// A server answering each connection's single request with the next of `answers`
/// (status, JSON body), then closing it; returns its URL and what it saw.
fn fake_server(answers: Vec<(u16, Value)>) -> (String, std::thread::JoinHandle<Vec<Seen>>) {
    use std::io::{BufRead, BufReader, Read};

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for (status, answer) in answers {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let (mut length, mut authorization) = (0, None);
            loop {
                let mut header = String::new();
                reader.read_line(&mut header).unwrap();
                let header = header.trim_end();
                if header.is_empty() {
                    break;
                }
                let (name, value) = header.split_once(':').unwrap();
                match name.to_ascii_lowercase().as_str() {
                    "content-length" => length = value.trim().parse().unwrap(),
                    "authorization" => authorization = Some(value.trim().to_owned()),
                    _ => {}
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            seen.push(Seen {
                request_line: request_line.trim_end().to_owned(),
                authorization,
                body: serde_json::from_slice(&body).unwrap(),
            });
            let text = answer.to_string();
            let mut stream = stream;
            write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                text.len()
            )
            .unwrap();
        }
        seen
    });
    (url, handle)
}

fn select_answer() -> Value {
    json!({"status": "success", "took": 1.5, "results": [{
        "schema": [{"name": "id", "data_type": "BigInt", "index": 0}, {"name": "body", "data_type": "Text", "index": 1}],
        "rows": [["1", "hello"]], "row_count": 1, "as_user": "alice"}]})
}

#[test]
fn run_sql_logs_in_then_sends_the_batch_with_the_token() {
    let (url, server) = fake_server(vec![
        (
            200,
            json!({"access_token": "tok-1", "refresh_token": "r", "user": {"id": "alice"}}),
        ),
        (200, select_answer()),
    ]);
    let options = ClientOptions {
        url,
        user: "alice".into(),
        password: "alice-pw".into(),
        namespace: Some("chat".into()),
        ..ClientOptions::default()
    };
    let mut out = Vec::new();
    run_sql(&options, "SELECT id, body FROM messages", OutputFormat::Table, &mut out).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        " id | body\n----+-------\n  1 | hello\n(1 row)\n"
    );
    let seen = server.join().unwrap();
    assert_eq!(seen[0].request_line, "POST /v1/api/auth/login HTTP/1.1");
    assert_eq!(seen[0].body, json!({"user": "alice", "password": "alice-pw"}));
    assert_eq!(seen[0].authorization, None);
    assert_eq!(seen[1].request_line, "POST /v1/api/sql HTTP/1.1");
    assert_eq!(seen[1].authorization.as_deref(), Some("Bearer tok-1"));
    assert_eq!(
        seen[1].body,
        json!({"sql": "SELECT id, body FROM messages", "namespace_id": "chat"})
    );
}

#[test]
fn a_given_token_skips_the_login() {
    let (url, server) = fake_server(vec![(200, select_answer())]);
    let options = ClientOptions {
        url,
        token: Some("given".into()),
        ..ClientOptions::default()
    };
    let mut out = Vec::new();
    run_sql(&options, "SELECT 1", OutputFormat::Csv, &mut out).unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), "id,body\n1,hello\n");
    let seen = server.join().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].authorization.as_deref(), Some("Bearer given"));
    assert_eq!(seen[0].body, json!({"sql": "SELECT 1"}));
}

#[test]
fn a_failed_statement_is_the_servers_error_and_prints_nothing() {
    let (url, server) = fake_server(vec![(
        404,
        json!({"status": "error", "results": [], "took": 0.3,
               "error": {"code": "NOT_FOUND", "message": "table chat.nope does not exist", "details": "SELECT * FROM chat.nope"}}),
    )]);
    let options = ClientOptions {
        url,
        token: Some("t".into()),
        ..ClientOptions::default()
    };
    let mut out = Vec::new();
    let error = run_sql(&options, "SELECT * FROM chat.nope", OutputFormat::Table, &mut out).unwrap_err();
    assert_eq!(
        error.to_string(),
        "ERROR NOT_FOUND: table chat.nope does not exist\nDETAIL: SELECT * FROM chat.nope"
    );
    assert!(out.is_empty());
    server.join().unwrap();
}

#[test]
fn a_failed_login_is_the_servers_error() {
    let (url, server) = fake_server(vec![(
        401,
        json!({"status": "error", "error": {"code": "INVALID_CREDENTIALS", "message": "wrong user or password"}}),
    )]);
    let options = ClientOptions {
        url,
        ..ClientOptions::default()
    };
    let error = SqlClient::connect(&options).unwrap_err();
    assert!(
        matches!(&error, AppError::ServerRejected { code, .. } if code == ErrorCode::InvalidCredentials.as_str()),
        "{error}"
    );
    server.join().unwrap();
}

#[test]
fn an_expired_token_logs_in_again_once() {
    let (url, server) = fake_server(vec![
        (200, json!({"access_token": "old"})),
        (
            401,
            json!({"status": "error", "error": {"code": ErrorCode::TokenExpired.as_str(), "message": "the token has expired"}}),
        ),
        (200, json!({"access_token": "new"})),
        (200, select_answer()),
    ]);
    let options = ClientOptions {
        url,
        ..ClientOptions::default()
    };
    let mut client = SqlClient::connect(&options).unwrap();
    let response = client.execute("SELECT 1").unwrap();
    assert_eq!(response.results.len(), 1);
    assert_eq!(response.took_ms, Some(1.5));
    let seen = server.join().unwrap();
    assert_eq!(seen[1].authorization.as_deref(), Some("Bearer old"));
    assert_eq!(seen[3].authorization.as_deref(), Some("Bearer new"));
}

#[test]
fn a_use_carries_over_to_the_next_requests() {
    let (url, server) = fake_server(vec![
        (
            200,
            json!({"status": "success", "results": [{"row_count": 0, "message": "Using namespace 'chat'"}]}),
        ),
        (200, select_answer()),
    ]);
    let options = ClientOptions {
        url,
        token: Some("given".into()),
        ..ClientOptions::default()
    };
    let mut client = SqlClient::connect(&options).unwrap();
    client.execute("USE chat").unwrap();
    client.execute("SELECT id, body FROM messages").unwrap();
    let seen = server.join().unwrap();
    assert_eq!(seen[0].body, json!({"sql": "USE chat"}));
    assert_eq!(
        seen[1].body,
        json!({"sql": "SELECT id, body FROM messages", "namespace_id": "chat"})
    );
}

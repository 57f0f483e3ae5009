//! The README's quickstart, run as printed against the real `calamus` binary.
//!
//! The server is started as the README's first command does (`calamus serve`, RocksDB),
//! on a free loopback port over a temporary data directory. The quickstart block (between
//! `<!-- quickstart:begin -->` and `<!-- quickstart:end -->`) then runs in bash with two
//! substitutions only: the server's address for `127.0.0.1:8080`, and this build's binary
//! for `./scripts/calamus` (which would otherwise start a nested cargo build). Finally the
//! server is stopped with SIGTERM, must exit cleanly, and the rows must still be there.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_calamus");

fn quickstart_block() -> String {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
        .expect("the README can be read");
    let begin = readme
        .find("<!-- quickstart:begin -->")
        .expect("the README marks its quickstart");
    let end = readme
        .find("<!-- quickstart:end -->")
        .expect("the README ends its quickstart");
    let block = &readme[begin..end];
    let code_start = block.find("```sh\n").expect("the quickstart is a sh block") + "```sh\n".len();
    let code_end = block[code_start..].find("```").expect("the sh block ends") + code_start;
    block[code_start..code_end].to_owned()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_until_healthy(port: u16, server: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = server.try_wait() {
            panic!("the server exited before it was healthy: {status}");
        }
        let health = Command::new("curl")
            .args(["-sf", &format!("http://127.0.0.1:{port}/health")])
            .output()
            .expect("curl runs (scripts/setup.sh installs it)");
        if health.status.success() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the server was not healthy within 60 s");
}

#[test]
fn the_readme_quickstart_runs_as_printed() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let mut server = Server(
        Command::new(BINARY)
            .args(["serve", "--listen", &address, "--data-dir"])
            .arg(&data_dir)
            .env_remove("CALAMUS_ROOT_PASSWORD")
            .env_remove("CALAMUS_STORAGE")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the server starts"),
    );
    wait_until_healthy(port, &mut server.0);

    let script = quickstart_block()
        .replace("127.0.0.1:8080", &address)
        .replace("./scripts/calamus", BINARY);
    let run = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .env("HOME", dir.path())
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    assert!(run.status.success(), "the quickstart failed:\n{stdout}\n{stderr}");

    // Every step answered; each user's SELECT shows their own row only.
    assert!(!stdout.contains("\"status\":\"error\""), "{stdout}");
    assert_eq!(stdout.matches("hello from alice").count(), 1, "{stdout}");
    assert_eq!(stdout.matches("hello from bob").count(), 1, "{stdout}");
    let alice_select = stdout
        .find("\"rows\":[[\"hello from alice\"]]")
        .expect("alice's rows as JSON");
    let bob_select = stdout.find("hello from bob").unwrap();
    assert!(alice_select < bob_select, "{stdout}");
    assert!(stdout.contains("\"as_user\":\"alice\""), "{stdout}");

    // SIGTERM: a graceful stop, and the rows are durable.
    let pid = server.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not stop within 30 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "the server exited with {status}");
    let reread = Command::new(BINARY)
        .args(["exec", "--data-dir"])
        .arg(&data_dir)
        .args(["--user", "alice", "-c", "SELECT body FROM chat.messages"])
        .output()
        .unwrap();
    let reread = String::from_utf8_lossy(&reread.stdout);
    assert!(
        reread.contains("hello from alice") && !reread.contains("hello from bob"),
        "{reread}"
    );
}

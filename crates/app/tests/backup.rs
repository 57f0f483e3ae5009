//! Backup and restore, on each backend: `BACKUP DATABASE TO '<path>'` taken while another
//! task goes on writing, then `calamus restore <path> --data-dir <dir>` (the binary): every
//! table definition and every row of every user comes back, hot and flushed, and the rows
//! written during the backup are a whole prefix of what was acknowledged.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use calamus::{Database, StorageBackend};
use calamus_query::{QueryError, Session, StatementOutput};
use datafusion::arrow::util::pretty::pretty_format_batches;

const BINARY: &str = env!("CARGO_BIN_EXE_calamus");

/// Runs `sql` as `session`, which must succeed; gives each statement's output as text.
async fn run(db: &Database, session: &mut Session, sql: &str) -> Vec<String> {
    try_run(db, session, sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"))
}

async fn try_run(db: &Database, session: &mut Session, sql: &str) -> Result<Vec<String>, QueryError> {
    let outputs = db.engine.execute(session, sql, &[]).await?;
    Ok(outputs
        .into_iter()
        .map(|output| match output {
            StatementOutput::Rows { batches, .. } => pretty_format_batches(&batches).unwrap().to_string(),
            StatementOutput::Affected { message, .. } => message,
        })
        .collect())
}

/// Builds tables of every kind, with rows of two users, flushed segments, updates, deletes
/// and a column added after a flush.
async fn populate(db: &Database) {
    let mut root = Session::root();
    run(
        db,
        &mut root,
        "CREATE NAMESPACE app;
         CREATE USER alice WITH PASSWORD 'alice-pw' ROLE user;
         CREATE USER bob WITH PASSWORD 'bob-pw' ROLE user;
         CREATE USER TABLE app.notes (id BIGINT PRIMARY KEY, body TEXT NOT NULL, score DOUBLE);
         CREATE SHARED TABLE app.config (name TEXT PRIMARY KEY, value TEXT) WITH (ACCESS_LEVEL = 'public');
         CREATE SHARED TABLE app.log (id BIGINT PRIMARY KEY, note TEXT);
         CREATE STREAM TABLE app.events (id BIGINT PRIMARY KEY, kind TEXT) WITH (TTL_SECONDS = 3600);
         INSERT INTO app.config VALUES ('theme', 'dark'), ('lang', 'en')",
    )
    .await;
    for (user, offset) in [("alice", 0), ("bob", 1000)] {
        let mut session = db.engine.session_for(user).unwrap();
        let values: Vec<String> = (0..50)
            .map(|i| format!("({}, '{user} note {i}', {i}.5)", offset + i))
            .collect();
        run(
            db,
            &mut session,
            &format!("INSERT INTO app.notes VALUES {}", values.join(", ")),
        )
        .await;
        run(
            db,
            &mut session,
            &format!("INSERT INTO app.events VALUES ({offset}, 'login')"),
        )
        .await;
    }
    run(db, &mut root, "FLUSH TABLE app.notes; FLUSH TABLE app.config").await;
    for user in ["alice", "bob"] {
        let mut session = db.engine.session_for(user).unwrap();
        run(
            db,
            &mut session,
            &format!(
                "UPDATE app.notes SET body = '{user} edited' WHERE id % 1000 = 3;
                 DELETE FROM app.notes WHERE id % 1000 = 4;
                 INSERT INTO app.notes VALUES ({}, '{user} hot', NULL)",
                if user == "alice" { 500 } else { 1500 }
            ),
        )
        .await;
    }
    run(
        db,
        &mut root,
        "ALTER TABLE app.notes ADD COLUMN tag TEXT DEFAULT 'none';
         FLUSH TABLE app.notes",
    )
    .await;
    let mut alice = db.engine.session_for("alice").unwrap();
    run(
        db,
        &mut alice,
        "INSERT INTO app.notes (id, body, tag) VALUES (600, 'after alter', 'new')",
    )
    .await;
}

/// Everything a restore must bring back, as text: the definitions and every user's rows.
async fn dump(db: &Database) -> Vec<String> {
    let mut out = Vec::new();
    let mut root = Session::root();
    for sql in [
        "SELECT namespace_id FROM system.namespaces ORDER BY namespace_id",
        "SELECT namespace_id, table_name, table_type, schema_version FROM system.tables ORDER BY namespace_id, table_name",
        "SELECT * FROM system.columns ORDER BY namespace_id, table_name, schema_version, ordinal",
        "SELECT user_id, role, email FROM system.users ORDER BY user_id",
        "SELECT * FROM system.storages ORDER BY storage_id",
        "SELECT * FROM app.config ORDER BY name",
        "SELECT * FROM app.notes ORDER BY id",
        "SELECT id, note FROM app.log WHERE id < 0",
    ] {
        out.extend(run(db, &mut root, sql).await);
    }
    for user in ["alice", "bob"] {
        let mut session = db.engine.session_for(user).unwrap();
        for sql in [
            "SELECT * FROM app.notes ORDER BY id",
            "SELECT id, body, _deleted FROM app.notes WHERE _deleted = true ORDER BY id",
            "SELECT id, kind FROM app.events ORDER BY id",
        ] {
            out.extend(run(db, &mut session, sql).await);
        }
        out.push(format!(
            "{user} password works: {}",
            db.engine.session_for(user).is_ok()
        ));
    }
    out
}

/// The ids of `app.log`, ascending.
async fn log_ids(db: &Database) -> Vec<i64> {
    let outputs = db
        .engine
        .execute(&mut Session::root(), "SELECT id FROM app.log ORDER BY id", &[])
        .await
        .unwrap();
    let StatementOutput::Rows { batches, .. } = &outputs[0] else {
        panic!("rows expected");
    };
    batches
        .iter()
        .flat_map(|batch| {
            let ids = batch
                .column(0)
                .as_any()
                .downcast_ref::<datafusion::arrow::array::Int64Array>()
                .unwrap();
            ids.values().to_vec()
        })
        .collect()
}

fn restore_with_binary(backup: &Path, data_dir: &Path) -> std::process::Output {
    Command::new(BINARY)
        .args([
            "restore",
            backup.to_str().unwrap(),
            "--data-dir",
            data_dir.to_str().unwrap(),
        ])
        .output()
        .expect("run calamus restore")
}

async fn a_backup_taken_during_writes_restores_every_table_and_row(backend: StorageBackend) {
    let dir = tempfile::tempdir().unwrap();
    let original = Database::open(backend, &dir.path().join("data")).unwrap();
    populate(&original).await;

    // A writer that goes on while the backup runs: one row per statement, ids ascending.
    let acknowledged = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (engine, acknowledged, stop) = (
            Arc::clone(&original.engine),
            Arc::clone(&acknowledged),
            Arc::clone(&stop),
        );
        tokio::spawn(async move {
            let mut root = Session::root();
            let mut id = 0u64;
            while !stop.load(Ordering::Relaxed) {
                id += 1;
                engine
                    .execute(
                        &mut root,
                        &format!("INSERT INTO app.log VALUES ({id}, 'row {id}')"),
                        &[],
                    )
                    .await
                    .unwrap();
                acknowledged.store(id, Ordering::SeqCst);
            }
        })
    };
    while acknowledged.load(Ordering::SeqCst) < 20 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let backup = dir.path().join("backups").join("monday");
    let before = acknowledged.load(Ordering::SeqCst);
    let message = run(
        &original,
        &mut Session::root(),
        &format!("BACKUP DATABASE TO '{}'", backup.display()),
    )
    .await;
    let after = acknowledged.load(Ordering::SeqCst);
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    assert!(
        message[0].starts_with("Backed up 4 table(s) and 5 segment file(s)"),
        "{message:?}"
    );
    assert!(backup.join("BACKUP.json").exists());

    // The original's state as of now, log aside: nothing else was written since the backup.
    let expected = dump(&original).await;
    let jobs = run(
        &original,
        &mut Session::root(),
        "SELECT job_type, status FROM system.jobs WHERE job_type = 'backup'",
    )
    .await;
    assert!(jobs[0].contains("completed"), "{jobs:?}");
    drop(original);

    let restored_dir = dir.path().join("restored");
    let output = restore_with_binary(&backup, &restored_dir);
    assert!(
        output.status.success(),
        "restore failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        printed.contains("Restored 4 table(s) and 5 segment file(s)"),
        "{printed}"
    );
    assert!(printed.contains(&format!("--storage {backend}")), "{printed}");

    let restored = Database::open(backend, &restored_dir).unwrap();
    assert_eq!(dump(&restored).await, expected);
    // The log rows are a whole prefix of what was acknowledged: every row acknowledged
    // before the backup began, none that was never written.
    let ids = log_ids(&restored).await;
    let count = ids.len() as u64;
    assert_eq!(ids, (1..=count as i64).collect::<Vec<_>>());
    assert!(
        count >= before && count <= after + 1,
        "{count} rows, {before} acknowledged before, {after} after"
    );
    // The backup's own job reads completed in the copy; the restored database takes writes.
    let jobs = run(
        &restored,
        &mut Session::root(),
        "SELECT status FROM system.jobs WHERE job_type = 'backup'",
    )
    .await;
    assert!(jobs[0].contains("completed"), "{jobs:?}");
    let mut alice = restored.engine.session_for("alice").unwrap();
    run(
        &restored,
        &mut alice,
        "INSERT INTO app.notes VALUES (700, 'restored', 1.0, 'r')",
    )
    .await;
    let duplicate = try_run(
        &restored,
        &mut alice,
        "INSERT INTO app.notes VALUES (1, 'flushed key', 1.0, 'r')",
    )
    .await;
    assert!(duplicate.is_err(), "a key of a restored segment must still be unique");
    run(&restored, &mut Session::root(), "FLUSH TABLE app.notes").await;
}

async fn bad_backups_and_restores_are_refused_and_write_nothing(backend: StorageBackend) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(backend, &dir.path().join("data")).unwrap();
    populate(&db).await;
    let mut root = Session::root();

    // Not into a folder that holds something, nor into the live store.
    let busy = dir.path().join("busy");
    std::fs::create_dir_all(&busy).unwrap();
    std::fs::write(busy.join("keep.txt"), "mine").unwrap();
    let error = try_run(&db, &mut root, &format!("BACKUP DATABASE TO '{}'", busy.display()))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("not an empty folder"), "{error}");
    assert_eq!(std::fs::read_dir(&busy).unwrap().count(), 1);
    for target in ["store/inside", "../elsewhere", ""] {
        let error = try_run(&db, &mut root, &format!("BACKUP DATABASE TO '{target}'")).await;
        assert!(error.is_err(), "BACKUP DATABASE TO '{target}' was accepted");
    }
    let error = try_run(&db, &mut root, "BACKUP DATABASE app TO '/tmp/x'")
        .await
        .unwrap_err();
    assert!(error.to_string().contains("whole database"), "{error}");
    // Only dba and system may write files on the server.
    let mut alice = db.engine.session_for("alice").unwrap();
    let target = dir.path().join("by-alice");
    let error = try_run(&db, &mut alice, &format!("BACKUP DATABASE TO '{}'", target.display())).await;
    assert!(error.is_err());
    assert!(!target.exists());
    let failed = run(
        &db,
        &mut root,
        "SELECT count(*) AS failed FROM system.jobs WHERE job_type = 'backup' AND status = 'failed'",
    )
    .await;
    assert!(failed[0].contains("| 4 "), "{failed:?}");

    // A good backup, a relative path landing under the data directory.
    run(&db, &mut root, "BACKUP DATABASE TO 'backups/b1'").await;
    let backup = dir.path().join("data").join("backups").join("b1");
    assert!(backup.join("BACKUP.json").exists());
    drop(db);

    // Restore refuses a non-empty data directory, touching nothing.
    let output = restore_with_binary(&backup, &busy);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("not empty"));
    assert_eq!(std::fs::read_dir(&busy).unwrap().count(), 1);
    // A folder without BACKUP.json (a backup that did not finish) is refused.
    let unfinished = dir.path().join("unfinished");
    std::fs::create_dir_all(unfinished.join("store")).unwrap();
    let output = restore_with_binary(&unfinished, &dir.path().join("r1"));
    assert!(String::from_utf8_lossy(&output.stderr).contains("did not finish"));
    assert!(!dir.path().join("r1").exists());
    // A damaged segment is found before anything is written.
    let segment = walk(&backup.join("cold"))
        .into_iter()
        .next()
        .expect("a segment in the backup");
    let bytes = std::fs::read(&segment).unwrap();
    std::fs::write(&segment, &bytes[..bytes.len() / 2]).unwrap();
    let output = restore_with_binary(&backup, &dir.path().join("r2"));
    assert!(String::from_utf8_lossy(&output.stderr).contains("damaged"));
    assert!(!dir.path().join("r2").exists());
}

/// Every file under `folder`.
fn walk(folder: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(folder).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// Runs `test` on a worker thread with a stack deep enough for planning in a debug build.
fn on_runtime<F: std::future::Future<Output = ()> + Send + 'static>(test: F) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_stack_size(16 << 20)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async { tokio::spawn(test).await.unwrap() });
}

macro_rules! on_each_backend {
    ($($name:ident),* $(,)?) => {
        mod rocksdb {
            $(#[test]
            fn $name() { super::on_runtime(super::$name(calamus::StorageBackend::RocksDb)) })*
        }
        mod sled {
            $(#[test]
            fn $name() { super::on_runtime(super::$name(calamus::StorageBackend::Sled)) })*
        }
    };
}

on_each_backend!(
    a_backup_taken_during_writes_restores_every_table_and_row,
    bad_backups_and_restores_are_refused_and_write_nothing,
);

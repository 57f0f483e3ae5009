//! The cold tier on both backends: flushed rows move to Parquet files per user partition,
//! reads see both tiers as one table, dropping a table removes its files, and random DML
//! interleaved with flushes reads exactly like a twin that never flushes; a query's filters
//! skip the segments whose statistics rule them out, and only those; compaction rewrites a
//! partition's segments as one, keeping each row's newest version.

use std::path::Path;
use std::sync::Arc;

use calamus::{Database, StorageBackend};
use calamus_domain::ids::SnowflakeGenerator;
use calamus_domain::{
    DomainResult, KeyRange, KvEngine, KvIter, KvPair, KvRowStore, NamespaceId, Partition, RowStore, ScanRequest,
    TableId, TableName, UserId, WriteBatch,
};
use calamus_query::{Session, StatementOutput};
use calamus_tests::server::{TestServer, basic};
use proptest::prelude::*;
use serde_json::json;

calamus_tests::on_both_backends!(
    flushed_rows_move_to_parquet_files_per_user,
    dropping_tables_and_namespaces_removes_their_files,
    random_dml_with_flushes_reads_like_a_twin_that_never_flushes,
    flush_policies_and_the_shutdown_flush,
    filters_skip_segments_their_statistics_rule_out,
    segments_read_on_a_wrong_guess_of_the_hot_rows_are_read_again,
    compaction_rewrites_a_partitions_segments_as_one,
    a_compaction_is_committed_whole_or_not_at_all,
);

fn segment_file(data_dir: &Path, user: &str, batch: u64) -> std::path::PathBuf {
    data_dir
        .join("storage/app/notes")
        .join(user)
        .join(format!("batch-{batch}.parquet"))
}

/// A server over `data_dir` with users alice and bob and the USER table `app.notes`, and
/// their credentials.
fn notes_of_alice_and_bob(backend: StorageBackend, data_dir: &Path) -> (TestServer, String, String) {
    let server = TestServer::start_in(backend, data_dir, |_| {});
    server.create_user("alice", "pw-alice", "user");
    server.create_user("bob", "pw-bob", "user");
    server.sql_ok(
        &server.root(),
        "CREATE NAMESPACE app; CREATE USER TABLE app.notes (id BIGINT PRIMARY KEY, body TEXT)",
    );
    (server, basic("alice", "pw-alice"), basic("bob", "pw-bob"))
}

fn flushed_rows_move_to_parquet_files_per_user(backend: StorageBackend) {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let (server, alice, bob) = notes_of_alice_and_bob(backend, &data_dir);
    server.sql_ok(&alice, "INSERT INTO app.notes VALUES (1, 'a1'), (2, 'a2'), (3, 'a3')");
    server.sql_ok(&bob, "INSERT INTO app.notes VALUES (1, 'b1')");
    let answer = server.sql_ok(&server.root(), "FLUSH TABLE app.notes");
    assert_eq!(answer.body["results"][0]["row_count"], 4, "{}", answer.text);
    assert!(segment_file(&data_dir, "alice", 0).is_file());
    assert!(segment_file(&data_dir, "bob", 0).is_file());
    let job = server
        .sql_ok(
            &server.root(),
            "SELECT status, rows_affected, bytes > 0 FROM system.jobs WHERE job_type = 'flush'",
        )
        .rows(0);
    assert_eq!(job, [json!(["completed", "4", true])]);
    // A finished job cannot be killed; the error says what it is.
    let job_id = server
        .sql_ok(
            &server.root(),
            "SELECT job_id FROM system.jobs WHERE job_type = 'flush'",
        )
        .rows(0)[0][0]
        .as_str()
        .unwrap()
        .to_owned();
    let refused = server.sql(&server.root(), &format!("KILL JOB '{job_id}'"));
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert!(
        refused.text.contains("is not running: it is completed"),
        "{}",
        refused.text
    );
    drop(server);

    // The hot tier of each partition is empty; its manifest names the segment.
    {
        let db = Database::open(backend, &data_dir).unwrap();
        let id = TableId::new(NamespaceId::new("app").unwrap(), TableName::new("notes").unwrap());
        let table = Arc::clone(db.engine.catalog().snapshot().table(&id).unwrap());
        let store = KvRowStore::new(Arc::clone(&db.kv), Arc::new(SnowflakeGenerator::new(3, 0)));
        let alice = Partition::User(UserId::new("alice").unwrap());
        let hot = store
            .scan(
                &table,
                &alice,
                ScanRequest {
                    include_deleted: true,
                    ..ScanRequest::all()
                },
            )
            .unwrap()
            .count();
        assert_eq!(hot, 0, "flushed rows left the hot tier");
        let manifest = store.manifest(&table, &alice).unwrap();
        assert_eq!(manifest.segments.len(), 1);
        assert_eq!(manifest.segments[0].rows, 3);
        assert_eq!(manifest.segments[0].path, "app/notes/alice/batch-0.parquet");
        let body = manifest.segments[0]
            .columns
            .iter()
            .find(|c| c.column_id == table.schema().columns[1].id);
        assert_eq!(body.and_then(|c| c.min.clone()).as_deref(), Some("a1"));
        assert_eq!(body.and_then(|c| c.max.clone()).as_deref(), Some("a3"));
    }

    // After a restart the rows read from Parquet, each user's own.
    let server = TestServer::start_in(backend, &data_dir, |_| {});
    let rows = server
        .sql_ok(&alice, "SELECT id, body FROM app.notes ORDER BY id")
        .rows(0);
    assert_eq!(rows, [json!(["1", "a1"]), json!(["2", "a2"]), json!(["3", "a3"])]);
    assert_eq!(
        server.sql_ok(&bob, "SELECT body FROM app.notes").rows(0),
        [json!(["b1"])]
    );
    // A second flush of a partition is its next segment.
    server.sql_ok(&alice, "UPDATE app.notes SET body = 'A2' WHERE id = 2");
    server.sql_ok(&server.root(), "STORAGE FLUSH TABLE app.notes");
    assert!(segment_file(&data_dir, "alice", 1).is_file());
    assert!(
        !segment_file(&data_dir, "bob", 1).exists(),
        "bob had nothing new to flush"
    );
    let rows = server
        .sql_ok(&alice, "SELECT id, body FROM app.notes ORDER BY id")
        .rows(0);
    assert_eq!(rows, [json!(["1", "a1"]), json!(["2", "A2"]), json!(["3", "a3"])]);
}

fn dropping_tables_and_namespaces_removes_their_files(backend: StorageBackend) {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let server = TestServer::start_in(backend, &data_dir, |_| {});
    server.create_user("alice", "pw-alice", "user");
    let root = server.root();
    server.sql_ok(
        &root,
        "CREATE NAMESPACE app; CREATE USER TABLE app.notes (id BIGINT PRIMARY KEY, body TEXT); \
         CREATE SHARED TABLE app.menu (id INT PRIMARY KEY, dish TEXT)",
    );
    server.sql_ok(&basic("alice", "pw-alice"), "INSERT INTO app.notes VALUES (1, 'a1')");
    server.sql_ok(&root, "INSERT INTO app.menu VALUES (1, 'soup')");
    server.sql_ok(&root, "STORAGE FLUSH ALL IN app");
    assert!(segment_file(&data_dir, "alice", 0).is_file());
    let menu = data_dir.join("storage/app/menu/batch-0.parquet");
    assert!(menu.is_file());
    let alice = basic("alice", "pw-alice");
    // Read once flushed, so the segment's Parquet metadata is in the session's cache.
    assert_eq!(
        server.sql_ok(&alice, "SELECT body FROM app.notes").rows(0),
        [json!(["a1"])]
    );
    assert_eq!(
        server
            .sql_ok(&alice, "SELECT id FROM app.notes WHERE body = 'a1'")
            .rows(0),
        [json!(["1"])]
    );

    server.sql_ok(&root, "DROP TABLE app.notes");
    assert!(
        !data_dir.join("storage/app/notes").exists(),
        "the table's folders are gone"
    );
    assert!(menu.is_file(), "other tables keep theirs");
    // A new table of the same name starts empty.
    server.sql_ok(&root, "CREATE USER TABLE app.notes (id BIGINT PRIMARY KEY, body TEXT)");
    assert!(
        server
            .sql_ok(&basic("alice", "pw-alice"), "SELECT * FROM app.notes")
            .rows(0)
            .is_empty()
    );
    // Its first segment has the same path, and here the same size, as the dropped
    // table's: what is read is the new file, not metadata cached for the old one.
    server.sql_ok(&alice, "INSERT INTO app.notes VALUES (1, 'b1')");
    server.sql_ok(&root, "FLUSH TABLE app.notes");
    assert!(segment_file(&data_dir, "alice", 0).is_file());
    assert_eq!(
        server.sql_ok(&alice, "SELECT body FROM app.notes").rows(0),
        [json!(["b1"])]
    );
    // Row groups are skipped by the file's statistics: stale ones would skip this one.
    assert_eq!(
        server
            .sql_ok(&alice, "SELECT id FROM app.notes WHERE body = 'b1'")
            .rows(0),
        [json!(["1"])]
    );

    server.sql_ok(&root, "DROP NAMESPACE app CASCADE");
    assert!(!menu.exists());
    assert!(!data_dir.join("storage/app").exists());
}

/// Waits up to `seconds` for `path` to exist.
fn appears(path: &Path, seconds: u64) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while std::time::Instant::now() < deadline {
        if path.exists() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    false
}

fn flush_policies_and_the_shutdown_flush(backend: StorageBackend) {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let server = TestServer::start_in(backend, &data_dir, |_| {});
    server.create_user("alice", "pw-alice", "user");
    server.sql_ok(
        &server.root(),
        "CREATE NAMESPACE app; \
         CREATE USER TABLE app.by_rows (id BIGINT PRIMARY KEY) WITH (FLUSH_POLICY = 'rows:5'); \
         CREATE USER TABLE app.by_time (id BIGINT PRIMARY KEY) WITH (FLUSH_POLICY = 'interval:1'); \
         CREATE USER TABLE app.at_shutdown (id BIGINT PRIMARY KEY) WITH (FLUSH_POLICY = 'rows:1000'); \
         CREATE USER TABLE app.never (id BIGINT PRIMARY KEY)",
    );
    let alice = basic("alice", "pw-alice");
    let segment = |table: &str| data_dir.join(format!("storage/app/{table}/alice/batch-0.parquet"));
    server.sql_ok(&alice, "INSERT INTO app.by_rows VALUES (1), (2), (3), (4)");
    server.sql_ok(&alice, "INSERT INTO app.at_shutdown VALUES (1), (2), (3)");
    server.sql_ok(&alice, "INSERT INTO app.never VALUES (1)");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert!(!segment("by_rows").exists(), "4 rows are under rows:5");
    server.sql_ok(&alice, "INSERT INTO app.by_rows VALUES (5)");
    assert!(appears(&segment("by_rows"), 5), "the fifth row triggers a flush");
    server.sql_ok(&alice, "INSERT INTO app.by_time VALUES (1)");
    assert!(appears(&segment("by_time"), 5), "interval:1 flushes within seconds");
    assert!(!segment("at_shutdown").exists());
    let rows = server.sql_ok(&alice, "SELECT count(*) FROM app.by_rows").rows(0);
    assert_eq!(rows, [json!(["5"])]);

    // A graceful stop flushes the tables that have a policy, and only those.
    drop(server);
    assert!(segment("at_shutdown").is_file(), "the shutdown flush");
    assert!(
        !data_dir.join("storage/app/never").exists(),
        "no policy, no automatic flush"
    );
    let server = TestServer::start_in(backend, &data_dir, |_| {});
    let rows = server
        .sql_ok(&alice, "SELECT id FROM app.at_shutdown ORDER BY id")
        .rows(0);
    assert_eq!(rows, [json!(["1"]), json!(["2"]), json!(["3"])]);
    let jobs = server
        .sql_ok(
            &server.root(),
            "SELECT table_name, status FROM system.jobs WHERE job_type = 'flush' ORDER BY table_name",
        )
        .rows(0);
    assert!(jobs.iter().all(|j| j[1] == "completed"), "{jobs:?}");
    assert!(jobs.iter().any(|j| j[0] == "at_shutdown"), "{jobs:?}");
    assert!(!jobs.iter().any(|j| j[0] == "never"), "{jobs:?}");
}

/// One step of the random workload: a user's statement, or a flush.
#[derive(Debug, Clone)]
enum Step {
    Insert { user: usize, id: i64, n: i64 },
    Update { user: usize, id: i64, n: i64 },
    Delete { user: usize, id: i64 },
    MoveKey { user: usize, from: i64, to: i64 },
    Flush,
    Compact,
}

fn step() -> impl Strategy<Value = Step> {
    let user = 0..3usize;
    let id = 0..12i64;
    prop_oneof![
        4 => (user.clone(), id.clone(), 0..100i64).prop_map(|(user, id, n)| Step::Insert { user, id, n }),
        3 => (user.clone(), id.clone(), 0..100i64).prop_map(|(user, id, n)| Step::Update { user, id, n }),
        2 => (user.clone(), id.clone()).prop_map(|(user, id)| Step::Delete { user, id }),
        1 => (user, id.clone(), id).prop_map(|(user, from, to)| Step::MoveKey { user, from, to }),
        2 => Just(Step::Flush),
        2 => Just(Step::Compact),
    ]
}

/// What a statement's outcome looks like, for comparing the twins.
fn outcome(result: &calamus_query::QueryResult<Vec<StatementOutput>>) -> String {
    match result {
        Ok(outputs) => format!("ok {}", outputs.iter().map(StatementOutput::row_count).sum::<u64>()),
        Err(e) => format!("error {:?}", e.kind()),
    }
}

fn random_dml_with_flushes_reads_like_a_twin_that_never_flushes(backend: StorageBackend) {
    let runtime = calamus_tests::bench_support::runtime();
    let config = ProptestConfig {
        cases: 16,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(steps in proptest::collection::vec(step(), 1..40))| {
        let dir = tempfile::tempdir().unwrap();
        let flushed = Database::open(backend, &dir.path().join("flushed")).unwrap();
        let twin = Database::open(backend, &dir.path().join("twin")).unwrap();
        let users: Vec<Session> = ["u0", "u1", "u2"]
            .iter()
            .map(|u| Session::new(UserId::new(u).unwrap(), calamus_domain::model::Role::User))
            .collect();
        for db in [&flushed, &twin] {
            runtime
                .block_on(db.engine.execute(
                    &mut Session::root(),
                    "CREATE NAMESPACE app; CREATE USER TABLE app.t (id BIGINT PRIMARY KEY, n BIGINT)",
                    &[],
                ))
                .unwrap();
        }
        for step in &steps {
            let (user, sql) = match step {
                Step::Insert { user, id, n } => (*user, format!("INSERT INTO app.t VALUES ({id}, {n})")),
                Step::Update { user, id, n } => (*user, format!("UPDATE app.t SET n = n + {n} WHERE id = {id}")),
                Step::Delete { user, id } => (*user, format!("DELETE FROM app.t WHERE id = {id}")),
                Step::MoveKey { user, from, to } => (*user, format!("UPDATE app.t SET id = {to} WHERE id = {from}")),
                Step::Flush | Step::Compact => {
                    let sql = if matches!(step, Step::Flush) { "FLUSH TABLE app.t" } else { "STORAGE COMPACT TABLE app.t" };
                    runtime
                        .block_on(flushed.engine.execute(&mut Session::root(), sql, &[]))
                        .unwrap();
                    continue;
                }
            };
            let a = runtime.block_on(flushed.engine.execute(&mut users[user].clone(), &sql, &[]));
            let b = runtime.block_on(twin.engine.execute(&mut users[user].clone(), &sql, &[]));
            prop_assert_eq!(outcome(&a), outcome(&b), "{}", sql);
            for (u, session) in users.iter().enumerate() {
                for query in [
                    "SELECT id, n FROM app.t ORDER BY id",
                    "SELECT count(*), sum(n) FROM app.t WHERE n > 20",
                    "SELECT id FROM app.t WHERE id = 3",
                    "SELECT id, n FROM app.t WHERE _deleted ORDER BY id",
                ] {
                    let read = |db: &Database| -> Vec<String> {
                        let out = runtime.block_on(db.engine.execute(&mut session.clone(), query, &[])).unwrap();
                        match &out[0] {
                            StatementOutput::Rows { batches, .. } => datafusion::arrow::util::pretty::pretty_format_batches(batches)
                                .unwrap()
                                .to_string()
                                .lines()
                                .map(str::to_owned)
                                .collect(),
                            other => panic!("{other:?}"),
                        }
                    };
                    prop_assert_eq!(read(&flushed), read(&twin), "user u{} after {}: {}", u, sql, query);
                }
            }
        }
    });
}

/// Five segments of 100 rows with distinct ranges of `id`, `grp` and `n`, a column added
/// after the third, and hot rows: filters on stored columns open only the segments that
/// may hold a match (`segments_read`), and every answer equals the rows' own count; once a
/// row has two flushed versions the read keeps the newest and still answers right.
fn filters_skip_segments_their_statistics_rule_out(backend: StorageBackend) {
    let open = calamus_tests::OpenDatabase::new(backend);
    let db = &open.db;
    let run = |sql: &str| {
        open.run_as_root(sql);
    };
    // The one value of a one-row, one-column query, as text.
    let single_value = |sql: &str| calamus_tests::cells(&open.run_as_root(sql)[0])[0][0].clone();
    run("CREATE NAMESPACE app; CREATE SHARED TABLE app.t (id BIGINT PRIMARY KEY, grp TEXT, n BIGINT)");
    for segment in 0..5 {
        if segment == 3 {
            run("ALTER TABLE app.t ADD COLUMN tag TEXT DEFAULT 'x'");
        }
        let values: Vec<String> = (segment * 100..segment * 100 + 100)
            .map(|id| format!("({id}, 'g{segment}', {})", id * 10))
            .collect();
        run(&format!("INSERT INTO app.t (id, grp, n) VALUES {}", values.join(", ")));
        run("FLUSH TABLE app.t");
    }
    run("INSERT INTO app.t (id, grp, n) VALUES (500, 'hot', 5000), (501, 'hot', 5010)");
    let opened = |sql: &str, expected: &str| -> u64 {
        let before = db.engine.segments_read();
        assert_eq!(single_value(sql), expected, "{backend}: {sql}");
        db.engine.segments_read() - before
    };
    assert_eq!(opened("SELECT count(*) FROM app.t", "502"), 5);
    assert_eq!(
        opened("SELECT count(*) FROM app.t WHERE id BETWEEN 120 AND 180", "61"),
        1
    );
    assert_eq!(opened("SELECT count(*) FROM app.t WHERE grp = 'g3'", "100"), 1);
    assert_eq!(opened("SELECT count(*) FROM app.t WHERE n >= 4000", "102"), 1);
    assert_eq!(opened("SELECT count(*) FROM app.t WHERE n > 100000", "0"), 0);
    assert_eq!(opened("SELECT count(*) FROM app.t WHERE grp = 'hot'", "2"), 0);
    // Segments written before `tag` existed read it as its default: never skipped by it.
    assert_eq!(opened("SELECT count(*) FROM app.t WHERE tag = 'x'", "502"), 5);
    assert_eq!(opened("SELECT count(*) FROM app.t WHERE id < 50 OR id > 450", "101"), 2);

    // A flushed row updated and flushed again has two flushed versions: the newest wins.
    run("UPDATE app.t SET n = 123456 WHERE id = 150");
    assert_eq!(opened("SELECT count(*) FROM app.t WHERE n = 1500", "0"), 1);
    run("FLUSH TABLE app.t");
    assert_eq!(single_value("SELECT count(*) FROM app.t WHERE n = 1500"), "0");
    assert_eq!(single_value("SELECT n FROM app.t WHERE id = 150"), "123456");
    assert_eq!(single_value("SELECT count(*) FROM app.t"), "502");
}

/// A store that hides the last key of every range from a one-key reverse scan: the
/// probe of a partition's hot row ids, made before its hot rows are read, then finds no
/// hot rows, while a hot row does overlap a segment.
struct HiddenHotRange(Arc<dyn KvEngine>);

impl KvEngine for HiddenHotRange {
    fn backend_name(&self) -> &'static str {
        self.0.backend_name()
    }
    fn create_keyspace(&self, keyspace: &str) -> DomainResult<()> {
        self.0.create_keyspace(keyspace)
    }
    fn drop_keyspace(&self, keyspace: &str) -> DomainResult<()> {
        self.0.drop_keyspace(keyspace)
    }
    fn keyspaces(&self) -> DomainResult<Vec<String>> {
        self.0.keyspaces()
    }
    fn get(&self, keyspace: &str, key: &[u8]) -> DomainResult<Option<Vec<u8>>> {
        self.0.get(keyspace, key)
    }
    fn write(&self, batch: WriteBatch) -> DomainResult<()> {
        self.0.write(batch)
    }
    fn scan<'a>(&'a self, keyspace: &str, range: KeyRange, reverse: bool) -> DomainResult<KvIter<'a>> {
        self.0.scan(keyspace, range, reverse)
    }
    fn scan_limited(&self, keyspace: &str, range: KeyRange, reverse: bool, limit: usize) -> DomainResult<Vec<KvPair>> {
        if reverse && limit == 1 {
            return Ok(Vec::new());
        }
        self.0.scan_limited(keyspace, range, reverse, limit)
    }
    fn sync(&self) -> DomainResult<()> {
        self.0.sync()
    }
    fn compact_range(&self, keyspace: &str, range: KeyRange) -> DomainResult<()> {
        self.0.compact_range(keyspace, range)
    }
    fn checkpoint(&self, target: &Path) -> DomainResult<()> {
        self.0.checkpoint(target)
    }
}

/// Segments are read while the hot rows are when a probe says the hot rows lie apart
/// from them. Here the probe is wrong (a hot row updates a flushed one): the segments
/// read early are dropped and read again, and the flushed version stays hidden.
fn segments_read_on_a_wrong_guess_of_the_hot_rows_are_read_again(backend: StorageBackend) {
    let open = calamus_tests::OpenDatabase::with_layer(backend, Box::new(|kv| Arc::new(HiddenHotRange(kv))));
    let single_value = |sql: &str| calamus_tests::cells(&open.run_as_root(sql)[0])[0][0].clone();
    open.run_as_root("CREATE NAMESPACE app; CREATE SHARED TABLE app.t (id BIGINT PRIMARY KEY, n BIGINT)");
    for segment in 0..3 {
        let values: Vec<String> = (segment * 100..segment * 100 + 100)
            .map(|id| format!("({id}, {id})"))
            .collect();
        open.run_as_root(&format!("INSERT INTO app.t VALUES {}", values.join(", ")));
        open.run_as_root("FLUSH TABLE app.t");
    }
    open.run_as_root("UPDATE app.t SET n = 100000 WHERE id = 150");
    open.run_as_root("INSERT INTO app.t VALUES (1000, 1000)");

    let before = open.db.engine.segments_read();
    // 0 + ... + 299, less the 150 updated, plus its new value and row 1000.
    let expected_sum = (0..300).sum::<i64>() - 150 + 100_000 + 1000;
    assert_eq!(
        single_value("SELECT count(*) || ' ' || sum(n) FROM app.t"),
        format!("301 {expected_sum}"),
        "{backend}"
    );
    assert_eq!(
        open.db.engine.segments_read() - before,
        6,
        "{backend}: the three segments read early are read again"
    );
    assert_eq!(single_value("SELECT count(*) FROM app.t WHERE id = 150"), "1");
    assert_eq!(single_value("SELECT n FROM app.t WHERE id = 150"), "100000");
}

/// Two flushes of alice's rows, the second holding updated and deleted ones, then
/// `STORAGE COMPACT TABLE`: her partition is one segment holding each row's newest version
/// (deletes kept, as the retention has not passed), the replaced files are gone, reads
/// answer as before, bob's single segment is left alone, and the job is recorded.
fn compaction_rewrites_a_partitions_segments_as_one(backend: StorageBackend) {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let (server, alice, bob) = notes_of_alice_and_bob(backend, &data_dir);
    server.sql_ok(&alice, "INSERT INTO app.notes VALUES (1, 'a1'), (2, 'a2'), (3, 'a3')");
    server.sql_ok(&bob, "INSERT INTO app.notes VALUES (1, 'b1')");
    server.sql_ok(&server.root(), "FLUSH TABLE app.notes");
    server.sql_ok(&alice, "UPDATE app.notes SET body = 'a2 again' WHERE id = 2");
    server.sql_ok(&alice, "DELETE FROM app.notes WHERE id = 3");
    server.sql_ok(&alice, "INSERT INTO app.notes VALUES (4, 'a4')");
    server.sql_ok(&server.root(), "FLUSH TABLE app.notes");
    let read = |who| {
        (
            server.sql_ok(who, "SELECT id, body FROM app.notes ORDER BY id").rows(0),
            server
                .sql_ok(who, "SELECT id FROM app.notes WHERE _deleted = true ORDER BY id")
                .rows(0),
        )
    };
    let (alice_before, bob_before) = (read(&alice), read(&bob));
    assert_eq!(
        alice_before.0,
        [json!(["1", "a1"]), json!(["2", "a2 again"]), json!(["4", "a4"])]
    );
    assert!(segment_file(&data_dir, "alice", 1).is_file());

    let answer = server.sql_ok(&server.root(), "STORAGE COMPACT TABLE app.notes");
    assert_eq!(
        answer.body["results"][0]["row_count"], 2,
        "the old versions of rows 2 and 3 are dropped: {}",
        answer.text
    );
    assert!(!segment_file(&data_dir, "alice", 0).exists());
    assert!(!segment_file(&data_dir, "alice", 1).exists());
    assert!(segment_file(&data_dir, "alice", 2).is_file());
    assert!(
        segment_file(&data_dir, "bob", 0).is_file(),
        "one segment is left as it is"
    );
    assert_eq!(read(&alice), alice_before);
    assert_eq!(read(&bob), bob_before);
    assert_eq!(
        alice_before.1,
        [json!(["3"])],
        "the delete is kept within the retention"
    );
    let job = server
        .sql_ok(
            &server.root(),
            "SELECT status, rows_affected, bytes > 0 FROM system.jobs WHERE job_type = 'compact'",
        )
        .rows(0);
    assert_eq!(job, [json!(["completed", "2", true])]);
    // Keys stay unique against the compacted segment; a second compaction has nothing to do.
    let duplicate = server.sql(&alice, "INSERT INTO app.notes VALUES (1, 'again')");
    assert_eq!(duplicate.status, 409, "{}", duplicate.text);
    let again = server.sql_ok(&server.root(), "STORAGE COMPACT TABLE app.notes");
    assert_eq!(again.body["results"][0]["row_count"], 0, "{}", again.text);
    assert!(segment_file(&data_dir, "alice", 2).is_file());
    let stream = server.sql(
        &server.root(),
        "CREATE STREAM TABLE app.events (id BIGINT PRIMARY KEY) WITH (TTL_SECONDS = 60); STORAGE COMPACT TABLE app.events",
    );
    assert_eq!(stream.status, 400, "{}", stream.text);
    assert!(stream.text.contains("no segments to compact"), "{}", stream.text);
}

/// `RowStore::commit_compaction` on its own: a hand-over naming a segment the manifest no
/// longer lists, or a number already taken, changes nothing; a valid one replaces the
/// listed segments, records their files as retired, and takes a dropped delete out of the
/// cold key index only while it is that row's flushed version.
fn a_compaction_is_committed_whole_or_not_at_all(backend: StorageBackend) {
    use calamus_domain::keys::encode_key_value;
    use calamus_domain::model::Segment;

    let open = calamus_tests::OpenDatabase::new(backend);
    open.run_as_root(
        "CREATE NAMESPACE app; CREATE SHARED TABLE app.t (id BIGINT PRIMARY KEY, n BIGINT);
         INSERT INTO app.t VALUES (1, 10), (2, 20); FLUSH TABLE app.t;
         DELETE FROM app.t WHERE id = 1; UPDATE app.t SET n = 21 WHERE id = 2; FLUSH TABLE app.t",
    );
    let table = calamus_tests::bench_support::table_definition(&open.db, "app", "t");
    let rows = open.db.engine.rows();
    let before = rows.manifest(&table, &Partition::Shared).unwrap();
    assert_eq!(before.segments.len(), 2);
    assert_eq!(before.segments[1].deleted, Some(1));
    let key = |id: i64| Partition::Shared.row_key(&encode_key_value(&calamus_domain::Value::BigInt(id)).unwrap());
    let cold_seq = |id: i64| {
        open.db
            .kv
            .get(&table.cold_keyspace(), &key(id))
            .unwrap()
            .map(|bytes| i64::from_be_bytes(bytes[..8].try_into().unwrap()))
    };
    let deleted_seq = cold_seq(1).expect("row 1's flushed delete is indexed");
    let compacted = |batch: u64| Segment {
        batch,
        path: format!("app/t/batch-{batch}.parquet"),
        superseding: Some(0),
        ..before.segments[1].clone()
    };
    let commit = |replaced: Vec<u64>, segment: Option<Segment>, purged: Vec<(Vec<u8>, i64)>| {
        open.block_on(rows.commit_compaction(&table, &Partition::Shared, replaced, segment, purged))
    };
    let row_id = |id: i64| encode_key_value(&calamus_domain::Value::BigInt(id)).unwrap();

    let unlisted = commit(vec![0, 9], Some(compacted(before.next_batch)), Vec::new());
    assert!(unlisted.unwrap_err().to_string().contains("compact again"));
    let taken = commit(vec![0, 1], Some(compacted(1)), Vec::new());
    assert!(taken.is_err());
    assert_eq!(
        rows.manifest(&table, &Partition::Shared).unwrap(),
        before,
        "nothing changed"
    );

    // Row 1's delete is dropped; a stale `_seq` for row 2 leaves its entry alone.
    let stale = cold_seq(2).unwrap() - 1;
    commit(
        vec![0, 1],
        Some(compacted(before.next_batch)),
        vec![(row_id(1), deleted_seq), (row_id(2), stale)],
    )
    .unwrap();
    let after = rows.manifest(&table, &Partition::Shared).unwrap();
    assert_eq!(after.segments, [compacted(before.next_batch)]);
    assert_eq!(after.next_batch, before.next_batch + 1);
    assert_eq!(after.retired, ["app/t/batch-0.parquet", "app/t/batch-1.parquet"]);
    assert_eq!(cold_seq(1), None);
    assert_eq!(cold_seq(2), Some(stale + 1));
}

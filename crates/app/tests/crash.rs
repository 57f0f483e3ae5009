//! Crash safety: the `calamus` binary under a mixed write load from several users, with
//! flushes to Parquet running meanwhile, killed with SIGKILL at random moments and
//! restarted, on each backend.
//!
//! After every restart: each acknowledged write is there with its last acknowledged value;
//! the statement that was in flight when the process died is either wholly applied or not
//! at all (a three-row INSERT leaves three rows or none); the catalog and the system tables
//! agree. The default run is short; `CALAMUS_CRASH_ITERATIONS=200 cargo test -p calamus
//! --test crash -- --nocapture` is the long one. `CALAMUS_CRASH_SEED` replays a run.
//!
//! And at each step of a flush's hand-over (`calamus_query::cold::CRASH_POINTS`) the
//! process is stopped on purpose, then restarted: no row is lost or doubled, the job reads
//! failed, and the next flush and the primary-key checks work. The same at each step of a
//! compaction's hand-over (`calamus_query::cold::COMPACTION_CRASH_POINTS`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use support::{Server, agent, basic, sql};

mod support;

const WRITERS: usize = 3;
const DEFAULT_ITERATIONS: usize = 4;

/// A small deterministic generator (xorshift), seeded per run and printed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn writer(i: usize) -> String {
    format!("w{i}")
}

/// What a statement does to a user's rows (`None` value: deleted).
#[derive(Debug, Clone)]
struct Effect(Vec<(i64, Option<i64>)>);

/// One writer's model: its acknowledged rows, and the statement in flight at the crash.
#[derive(Debug, Default, Clone)]
struct Model {
    rows: BTreeMap<i64, i64>,
    in_flight: Option<Effect>,
    next_id: i64,
}

/// Writes until the server stops answering or `stop` is set; gives the model back.
fn write_load(port: u16, user: String, mut model: Model, seed: u64, stop: Arc<AtomicBool>) -> Model {
    let agent = agent();
    let authorization = basic(&user, "pw");
    let mut rng = Rng(seed | 1);
    while !stop.load(Ordering::Relaxed) {
        let existing: Vec<i64> = model.rows.keys().copied().collect();
        let pick = |rng: &mut Rng| existing[rng.below(existing.len() as u64) as usize];
        let choice = if existing.len() < 3 { 0 } else { rng.below(10) };
        let (statement, effect) = match choice {
            0..=4 => {
                let ids: Vec<i64> = (0..3).map(|k| model.next_id + k).collect();
                model.next_id += 3;
                let values: Vec<String> = ids.iter().map(|id| format!("({id}, 1, 'row {id}')")).collect();
                (
                    format!("INSERT INTO app.ledger (id, v, note) VALUES {}", values.join(", ")),
                    Effect(ids.iter().map(|&id| (id, Some(1))).collect()),
                )
            }
            5..=7 => {
                let id = pick(&mut rng);
                let v = model.rows[&id] + 1;
                (
                    format!("UPDATE app.ledger SET v = {v} WHERE id = {id}"),
                    Effect(vec![(id, Some(v))]),
                )
            }
            _ => {
                let id = pick(&mut rng);
                (
                    format!("DELETE FROM app.ledger WHERE id = {id}"),
                    Effect(vec![(id, None)]),
                )
            }
        };
        match sql(&agent, port, &authorization, &statement) {
            Ok(answer) => {
                // Every statement here changes exactly the rows it names.
                let count = answer["results"][0]["row_count"].as_u64();
                assert_eq!(count, Some(effect.0.len() as u64), "{user}: {statement}: {answer}");
                apply(&mut model.rows, &effect)
            }
            Err(None) => {
                model.in_flight = Some(effect);
                break;
            }
            Err(Some(error)) => panic!("{user}: {statement}: {error}"),
        }
    }
    model
}

fn apply(rows: &mut BTreeMap<i64, i64>, effect: &Effect) {
    for (id, value) in &effect.0 {
        match value {
            Some(v) => rows.insert(*id, *v),
            None => rows.remove(id),
        };
    }
}

/// The user's rows as the server has them.
fn rows_of(port: u16, user: &str) -> BTreeMap<i64, i64> {
    let answer = sql(&agent(), port, &basic(user, "pw"), "SELECT id, v FROM app.ledger")
        .unwrap_or_else(|e| panic!("{user} reads: {e:?}"));
    answer["results"][0]["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            let number = |v: &Value| v.as_str().and_then(|s| s.parse().ok()).expect("a BIGINT");
            (number(&r[0]), number(&r[1]))
        })
        .collect()
}

/// Checks the server's rows against the model: equal, but for the in-flight statement,
/// which must be wholly applied or not at all. Gives the model of what is there.
fn verify(port: u16, user: &str, model: &Model) -> Model {
    let actual = rows_of(port, user);
    let without = model.rows.clone();
    let mut with = model.rows.clone();
    if let Some(effect) = &model.in_flight {
        apply(&mut with, effect);
    }
    assert!(
        actual == without || actual == with,
        "{user}: the rows after the crash are neither the acknowledged state nor it plus the whole \
         in-flight statement {:?}\n  acknowledged: {without:?}\n  actual:       {actual:?}",
        model.in_flight
    );
    Model {
        rows: actual,
        in_flight: None,
        next_id: model.next_id,
    }
}

fn crash_repeatedly(backend: &str) {
    let iterations = std::env::var("CALAMUS_CRASH_ITERATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_ITERATIONS);
    let seed = std::env::var("CALAMUS_CRASH_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64);
    eprintln!("crash test on {backend}: {iterations} iterations, CALAMUS_CRASH_SEED={seed}");
    let mut rng = Rng(seed | 1);
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");

    let server = Server::start(backend, &data_dir);
    let root = basic("root", "");
    let mut setup = vec!["CREATE NAMESPACE app".to_owned()];
    setup.push("CREATE USER TABLE app.ledger (id BIGINT PRIMARY KEY, v BIGINT NOT NULL, note TEXT)".into());
    setup.extend((0..WRITERS).map(|i| format!("CREATE USER {} WITH PASSWORD 'pw' ROLE user", writer(i))));
    sql(&agent(), server.port, &root, &setup.join("; ")).expect("set-up");

    let mut models = vec![Model::default(); WRITERS];
    let mut server = Some(server);
    let mut acknowledged_total = 0;
    for iteration in 0..iterations {
        let running = server.take().expect("a running server");
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = models
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, model)| {
                let (port, stop, seed) = (running.port, Arc::clone(&stop), rng.next());
                std::thread::spawn(move || write_load(port, writer(i), model, seed, stop))
            })
            .collect();
        // Flushes hand rows over to the cold tier while the writers write.
        let flusher = {
            let (port, stop) = (running.port, Arc::clone(&stop));
            std::thread::spawn(move || {
                let agent = agent();
                while !stop.load(Ordering::Relaxed) {
                    match sql(&agent, port, &basic("root", ""), "FLUSH TABLE app.ledger") {
                        Ok(_) => {}
                        Err(None) => return, // The server died.
                        Err(Some(error)) => panic!("a flush failed: {error}"),
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
        };
        std::thread::sleep(Duration::from_millis(200 + rng.below(800)));
        running.kill();
        stop.store(true, Ordering::Relaxed);
        flusher.join().expect("the flusher");
        models = writers.into_iter().map(|w| w.join().expect("a writer")).collect();

        let restarted = Server::start(backend, &data_dir);
        for (i, model) in models.iter_mut().enumerate() {
            *model = verify(restarted.port, &writer(i), model);
            acknowledged_total += model.rows.len();
        }
        // The catalog and the system tables agree after every restart.
        let tables = sql(
            &agent(),
            restarted.port,
            &root,
            "SELECT table_name FROM system.tables WHERE namespace_id = 'app'",
        )
        .expect("system.tables");
        assert_eq!(
            tables["results"][0]["rows"],
            json!([["ledger"]]),
            "iteration {iteration}"
        );
        let users = sql(
            &agent(),
            restarted.port,
            &root,
            "SELECT count(*) FROM system.users WHERE user_id LIKE 'w%'",
        )
        .expect("system.users");
        assert_eq!(users["results"][0]["rows"], json!([[WRITERS.to_string()]]));
        server = Some(restarted);
    }
    eprintln!("crash test on {backend}: {iterations} kills survived; {acknowledged_total} row checks");
}

/// The table and the two users of the hand-over crash tests.
const LEDGER_SETUP: &str = "CREATE NAMESPACE app; \
    CREATE USER TABLE app.ledger (id BIGINT PRIMARY KEY, v BIGINT NOT NULL, note TEXT); \
    CREATE USER w0 WITH PASSWORD 'pw' ROLE user; CREATE USER w1 WITH PASSWORD 'pw' ROLE user";

/// A server over a new data directory (`<dir>/data`) that aborts at `step`, with the
/// ledger table and its two users.
fn start_ledger_crashing_at(backend: &str, step: &str) -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_crashing_at(backend, &dir.path().join("data"), Some(step));
    sql(&agent(), server.port, &basic("root", ""), LEDGER_SETUP).expect("set-up");
    (dir, server)
}

/// Each user's rows (id to `v`) in a hand-over crash test.
type UserRows = BTreeMap<&'static str, BTreeMap<i64, i64>>;

/// Checks that each user reads exactly its expected rows, and counts as many (a row in both
/// tiers, or in two segments, would count twice).
fn check_rows(expected: &UserRows, port: u16, context: &str) {
    for (user, model) in expected {
        assert_eq!(&rows_of(port, user), model, "{context}: {user}'s rows");
        let counted = sql(&agent(), port, &basic(user, "pw"), "SELECT count(*) FROM app.ledger").unwrap();
        assert_eq!(
            counted["results"][0]["rows"],
            json!([[model.len().to_string()]]),
            "{context}: no row doubled"
        );
    }
}

/// The status of every job of `job_type`.
fn job_statuses(port: u16, job_type: &str) -> Value {
    let query = format!("SELECT status FROM system.jobs WHERE job_type = '{job_type}'");
    sql(&agent(), port, &basic("root", ""), &query).unwrap()["results"][0]["rows"].clone()
}

/// How both hand-over crash tests end: keys stay unique across the tiers (a flushed key is
/// refused, a deleted one is free), and every row is there after one more restart.
fn keys_stay_unique_then_restart(
    backend: &str,
    data_dir: &std::path::Path,
    restarted: Server,
    mut expected: UserRows,
    context: &str,
) {
    let agent = agent();
    let duplicate = sql(
        &agent,
        restarted.port,
        &basic("w0", "pw"),
        "INSERT INTO app.ledger VALUES (1, 0, 'again')",
    );
    assert!(matches!(duplicate, Err(Some(_))), "{context}: {duplicate:?}");
    sql(
        &agent,
        restarted.port,
        &basic("w0", "pw"),
        "INSERT INTO app.ledger VALUES (3, 3, 'back')",
    )
    .expect("a deleted key is free");
    drop(restarted);
    let again = Server::start(backend, data_dir);
    expected.get_mut("w0").unwrap().insert(3, 3);
    check_rows(&expected, again.port, &format!("{context} after a second restart"));
}

/// Stops the server at `step` of a flush of two users' partitions, restarts it, and checks
/// every user's rows and their count (a row in both tiers, or in two segments, would count
/// twice), the job's record, a second flush and the primary-key checks.
fn crash_during_flush(backend: &str, step: &str) {
    let (dir, server) = start_ledger_crashing_at(backend, step);
    let data_dir = dir.path().join("data");
    let root = basic("root", "");
    let agent = agent();
    let mut expected = UserRows::new();
    for (user, rows) in [("w0", 6), ("w1", 4)] {
        let values: Vec<String> = (1..=rows).map(|id| format!("({id}, {id}, 'n')")).collect();
        let auth = basic(user, "pw");
        let statements = [
            format!("INSERT INTO app.ledger VALUES {}", values.join(", ")),
            "UPDATE app.ledger SET v = 20 WHERE id = 2".to_owned(),
            "DELETE FROM app.ledger WHERE id = 3".to_owned(),
        ];
        for statement in &statements {
            sql(&agent, server.port, &auth, statement).unwrap_or_else(|e| panic!("{statement}: {e:?}"));
        }
        let mut model: BTreeMap<i64, i64> = (1..=rows).map(|id| (id, id)).collect();
        model.insert(2, 20);
        model.remove(&3);
        expected.insert(user, model);
    }

    let flushed = sql(&agent, server.port, &root, "FLUSH TABLE app.ledger");
    assert!(
        matches!(flushed, Err(None)),
        "{step}: the server stops mid-flush: {flushed:?}"
    );
    server.wait_for_exit();
    let segment_files = |suffix: &str| segment_files(&data_dir, suffix);
    // What the crash left: a temporary file, a renamed one no manifest names, or a
    // committed segment.
    let left = match step {
        "flush-segment-written" => segment_files(".parquet.tmp"),
        _ => segment_files(".parquet"),
    };
    assert_eq!(left, 1, "{backend} {step}: the crash leaves one file");

    let restarted = Server::start(backend, &data_dir);
    check_rows(
        &expected,
        restarted.port,
        &format!("{backend} {step} after the restart"),
    );
    // The start removed the files of the flush cut short; a committed segment stays.
    assert_eq!(segment_files(".parquet.tmp"), 0, "{backend} {step}");
    let committed = usize::from(step == "flush-committed");
    assert_eq!(segment_files(".parquet"), committed, "{backend} {step}");
    assert_eq!(
        job_statuses(restarted.port, "flush"),
        json!([["failed"]]),
        "{backend} {step}"
    );
    sql(&agent, restarted.port, &root, "FLUSH TABLE app.ledger").expect("the next flush");
    check_rows(
        &expected,
        restarted.port,
        &format!("{backend} {step} after the next flush"),
    );
    keys_stay_unique_then_restart(backend, &data_dir, restarted, expected, &format!("{backend} {step}"));
}

/// The `batch-<n>.parquet` files (`suffix` `.parquet`) or temporary ones (`.parquet.tmp`)
/// under the data directory's storage.
fn segment_files(data_dir: &std::path::Path, suffix: &str) -> usize {
    fn walk(folder: &std::path::Path, suffix: &str) -> usize {
        std::fs::read_dir(folder)
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, suffix)
                } else {
                    usize::from(path.to_string_lossy().ends_with(suffix))
                }
            })
            .sum()
    }
    walk(&data_dir.join("storage"), suffix)
}

/// Stops the server at `step` of a compaction of two users' partitions of two segments
/// each, restarts it, and checks every user's rows and their count, the files left, the
/// job's record, a second compaction and the primary-key checks. (Every row has a single
/// flushed version, so the clean-up job at start does not compact on its own.)
fn crash_during_compaction(backend: &str, step: &str) {
    let (dir, server) = start_ledger_crashing_at(backend, step);
    let data_dir = dir.path().join("data");
    let root = basic("root", "");
    let agent = agent();
    let users = [("w0", 6), ("w1", 4)];
    let run = |user: &str, statement: &str| {
        sql(&agent, server.port, &basic(user, "pw"), statement).unwrap_or_else(|e| panic!("{statement}: {e:?}"));
    };
    for (user, rows) in users {
        let values: Vec<String> = (1..=rows).map(|id| format!("({id}, {id}, 'n')")).collect();
        run(user, &format!("INSERT INTO app.ledger VALUES {}", values.join(", ")));
        run(user, "UPDATE app.ledger SET v = 20 WHERE id = 2");
        run(user, "DELETE FROM app.ledger WHERE id = 3");
    }
    sql(&agent, server.port, &root, "FLUSH TABLE app.ledger").expect("first flush");
    for (user, _) in users {
        run(user, "INSERT INTO app.ledger VALUES (7, 7, 'n'), (8, 8, 'n')");
    }
    sql(&agent, server.port, &root, "FLUSH TABLE app.ledger").expect("second flush");
    let mut expected = UserRows::new();
    for (user, rows) in users {
        // Hot rows over the segments: a new one, and a newer version of a flushed one.
        run(user, "INSERT INTO app.ledger VALUES (9, 9, 'hot')");
        run(user, "UPDATE app.ledger SET v = 70 WHERE id = 7");
        let mut model: BTreeMap<i64, i64> = (1..=rows).chain([7, 8, 9]).map(|id| (id, id)).collect();
        model.insert(2, 20);
        model.insert(7, 70);
        model.remove(&3);
        expected.insert(user, model);
    }
    assert_eq!(
        segment_files(&data_dir, ".parquet"),
        4,
        "{backend}: two segments per user"
    );

    let compacted = sql(&agent, server.port, &root, "STORAGE COMPACT TABLE app.ledger");
    assert!(
        matches!(compacted, Err(None)),
        "{step}: the server stops mid-compaction: {compacted:?}"
    );
    server.wait_for_exit();
    // What the crash left in the first partition compacted: a temporary file, a renamed
    // one no manifest names, or a committed segment with the old files still there.
    let (temporary, segments) = match step {
        "compaction-segment-written" => (1, 4),
        _ => (0, 5),
    };
    assert_eq!(segment_files(&data_dir, ".parquet.tmp"), temporary, "{backend} {step}");
    assert_eq!(segment_files(&data_dir, ".parquet"), segments, "{backend} {step}");

    let restarted = Server::start(backend, &data_dir);
    check_rows(
        &expected,
        restarted.port,
        &format!("{backend} {step} after the restart"),
    );
    // The start removed the files no manifest names: the cut-short segment, or the old
    // segments of a committed compaction.
    let committed = step == "compaction-committed";
    assert_eq!(segment_files(&data_dir, ".parquet.tmp"), 0, "{backend} {step}");
    assert_eq!(
        segment_files(&data_dir, ".parquet"),
        if committed { 3 } else { 4 },
        "{backend} {step}"
    );
    assert_eq!(
        job_statuses(restarted.port, "compact"),
        json!([["failed"]]),
        "{backend} {step}"
    );
    sql(&agent, restarted.port, &root, "STORAGE COMPACT TABLE app.ledger").expect("the next compaction");
    assert_eq!(
        segment_files(&data_dir, ".parquet"),
        2,
        "{backend} {step}: one segment per user"
    );
    check_rows(
        &expected,
        restarted.port,
        &format!("{backend} {step} after the next compaction"),
    );
    keys_stay_unique_then_restart(backend, &data_dir, restarted, expected, &format!("{backend} {step}"));
}

#[test]
fn a_crash_at_each_step_of_a_compaction_loses_and_doubles_nothing() {
    for backend in ["rocksdb", "sled"] {
        for step in calamus_query::cold::COMPACTION_CRASH_POINTS {
            crash_during_compaction(backend, step);
        }
    }
}

#[test]
fn a_crash_at_each_step_of_a_flush_loses_and_doubles_nothing() {
    for backend in ["rocksdb", "sled"] {
        for step in calamus_query::cold::CRASH_POINTS {
            crash_during_flush(backend, step);
        }
    }
}

#[test]
fn acknowledged_writes_survive_sigkill_on_rocksdb() {
    crash_repeatedly("rocksdb");
}

#[test]
fn acknowledged_writes_survive_sigkill_on_sled() {
    crash_repeatedly("sled");
}

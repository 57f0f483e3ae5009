//! Queries run again reuse their optimized plans: the answers must be exactly those of
//! planning again, across parameters, users, DDL and time.

use std::time::Duration;

use calamus::{Database, StorageBackend};
use calamus_domain::UserId;
use calamus_domain::model::Role;
use calamus_query::{Session, StatementOutput};
use datafusion::common::ScalarValue;
use tempfile::TempDir;

calamus_tests::on_both_backends!(
    parameters_users_ddl_and_time_are_honoured,
    a_key_lookup_runs_in_one_partition,
    a_kept_lookup_plans_only_its_scan_again,
);

fn cells(outputs: &[StatementOutput]) -> Vec<Vec<String>> {
    calamus_tests::cells(&outputs[0])
}

/// The USER table `app.t (id BIGINT PRIMARY KEY, v TEXT)` holding alice's rows 1 and 2
/// and bob's row 1: their sessions.
fn alice_and_bob(rt: &tokio::runtime::Runtime, db: &Database) -> (Session, Session) {
    let run = |session: &mut Session, sql: &str| {
        rt.block_on(db.engine.execute(session, sql, &[]))
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    };
    run(
        &mut Session::root(),
        "CREATE NAMESPACE app; CREATE USER TABLE app.t (id BIGINT PRIMARY KEY, v TEXT)",
    );
    let mut alice = Session::new(UserId::new("alice").unwrap(), Role::User);
    let mut bob = Session::new(UserId::new("bob").unwrap(), Role::User);
    run(&mut alice, "INSERT INTO app.t VALUES (1, 'a1'), (2, 'a2')");
    run(&mut bob, "INSERT INTO app.t VALUES (1, 'b1')");
    (alice, bob)
}

fn parameters_users_ddl_and_time_are_honoured(backend: StorageBackend) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = TempDir::new().unwrap();
    let db = Database::open(backend, &dir.path().join("data")).unwrap();
    let run = |session: &mut Session, sql: &str, params: &[ScalarValue]| {
        rt.block_on(db.engine.execute(session, sql, params))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    };
    let mut root = Session::root();
    let (mut alice, mut bob) = alice_and_bob(&rt, &db);

    // The same text with other parameters, and as another user.
    let lookup = "SELECT v FROM app.t WHERE id = $1";
    for (id, v) in [(1, "a1"), (2, "a2"), (1, "a1")] {
        assert_eq!(cells(&run(&mut alice, lookup, &[ScalarValue::Int64(Some(id))])), [[v]]);
    }
    assert_eq!(cells(&run(&mut bob, lookup, &[ScalarValue::Int64(Some(1))])), [["b1"]]);
    assert!(cells(&run(&mut bob, lookup, &[ScalarValue::Int64(Some(2))])).is_empty());

    // Rows written since are seen (plans are kept, results never are).
    run(&mut alice, "UPDATE app.t SET v = 'a1 again' WHERE id = 1", &[]);
    assert_eq!(
        cells(&run(&mut alice, lookup, &[ScalarValue::Int64(Some(1))])),
        [["a1 again"]]
    );

    // UPDATE and DELETE read through kept plans too: each user's own rows, by parameter.
    let update = "UPDATE app.t SET v = $2 WHERE id = $1";
    for (is_bob, id, v) in [(true, 1, "b1 new"), (false, 2, "a2 new"), (true, 2, "nobody")] {
        let session = if is_bob { &mut bob } else { &mut alice };
        run(
            session,
            update,
            &[ScalarValue::Int64(Some(id)), ScalarValue::Utf8(Some(v.into()))],
        );
    }
    let values = "SELECT id, v FROM app.t ORDER BY id";
    assert_eq!(
        cells(&run(&mut alice, values, &[])),
        [["1", "a1 again"], ["2", "a2 new"]]
    );
    assert_eq!(cells(&run(&mut bob, values, &[])), [["1", "b1 new"]]);
    let delete = "DELETE FROM app.t WHERE id = $1";
    assert_eq!(run(&mut bob, delete, &[ScalarValue::Int64(Some(2))])[0].row_count(), 0);
    assert_eq!(
        run(&mut alice, delete, &[ScalarValue::Int64(Some(2))])[0].row_count(),
        1
    );
    assert_eq!(cells(&run(&mut alice, values, &[])), [["1", "a1 again"]]);
    assert_eq!(cells(&run(&mut bob, values, &[])), [["1", "b1 new"]]);

    // A column added since is seen by the same `SELECT *`.
    let all = "SELECT * FROM app.t ORDER BY id";
    let before = cells(&run(&mut alice, all, &[]))[0].len();
    run(&mut root, "ALTER TABLE app.t ADD COLUMN extra TEXT DEFAULT 'x'", &[]);
    assert_eq!(
        cells(&run(&mut alice, all, &[]))[0].len(),
        before + 1,
        "the new column appears"
    );

    // A table dropped and created again under the same name is the new table.
    run(
        &mut root,
        "DROP TABLE app.t; CREATE USER TABLE app.t (id BIGINT PRIMARY KEY, v TEXT)",
        &[],
    );
    assert!(cells(&run(&mut alice, lookup, &[ScalarValue::Int64(Some(1))])).is_empty());

    // Time moves: NOW() is never kept folded.
    let now = "SELECT CAST(NOW() AS BIGINT)";
    let first = cells(&run(&mut alice, now, &[]));
    std::thread::sleep(Duration::from_millis(5));
    assert_ne!(first, cells(&run(&mut alice, now, &[])));
}

/// A primary-key lookup gives at most one row: its plan keeps it in one partition (no
/// round-robin repartition, no task per partition) and applies no filter above the key
/// range, while a scan of a whole partition is still spread over the cores.
fn a_key_lookup_runs_in_one_partition(backend: StorageBackend) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = TempDir::new().unwrap();
    let db = Database::open(backend, &dir.path().join("data")).unwrap();
    let mut root = Session::root();
    let mut run = |sql: &str, params: &[ScalarValue]| {
        rt.block_on(db.engine.execute(&mut root, sql, params))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    };
    run(
        "CREATE NAMESPACE app; CREATE SHARED TABLE app.t (id BIGINT PRIMARY KEY, v TEXT); \
         INSERT INTO app.t VALUES (1, 'one'), (2, 'two'), (3, 'three')",
        &[],
    );
    let plan_of = |outputs: Vec<StatementOutput>| cells(&outputs).concat().join("\n");
    let lookup = plan_of(run("EXPLAIN SELECT v FROM app.t WHERE id = 2", &[]));
    assert!(lookup.contains("BoundedScanExec: max_rows=1"), "{lookup}");
    assert!(!lookup.contains("RepartitionExec"), "{lookup}");
    // The key range answers the filter exactly: nothing filters the row again.
    assert!(!lookup.contains("FilterExec"), "{lookup}");
    let scan = plan_of(run("EXPLAIN SELECT v FROM app.t WHERE v LIKE 't%'", &[]));
    assert!(!scan.contains("BoundedScanExec"), "{scan}");
    assert!(scan.contains("RepartitionExec"), "{scan}");
    // The bound changes the plan, not the answer; a value the key range cannot hold (NULL,
    // a fraction) is filtered by the scan itself.
    let texts = |values: &[&str]| -> Vec<Vec<String>> { values.iter().map(|v| vec![(*v).to_owned()]).collect() };
    for (sql, value, want) in [
        (
            "SELECT v FROM app.t WHERE id = $1",
            ScalarValue::Int64(Some(2)),
            texts(&["two"]),
        ),
        (
            "SELECT v FROM app.t WHERE id = $1",
            ScalarValue::Int64(Some(4)),
            texts(&[]),
        ),
        (
            "SELECT v FROM app.t WHERE id = $1",
            ScalarValue::Int64(None),
            texts(&[]),
        ),
        (
            "SELECT v FROM app.t WHERE id = $1",
            ScalarValue::Float64(Some(2.5)),
            texts(&[]),
        ),
        (
            "SELECT v FROM app.t WHERE id > $1 ORDER BY id",
            ScalarValue::Int64(Some(1)),
            texts(&["two", "three"]),
        ),
        (
            "SELECT v FROM app.t WHERE id < $1 ORDER BY id",
            ScalarValue::Float64(Some(2.5)),
            texts(&["one", "two"]),
        ),
        (
            "SELECT v FROM app.t WHERE id >= $1",
            ScalarValue::Int64(None),
            texts(&[]),
        ),
    ] {
        assert_eq!(
            cells(&run(sql, std::slice::from_ref(&value))),
            want,
            "{sql} with {value:?}"
        );
    }
}

/// The physical plan of a lookup by a parameter is kept, and each run plans only its scan
/// with the value bound: the answers are those of planning again, per user, across
/// writes, a flush to the cold tier and DDL; a query with a parameter elsewhere is
/// planned physically each time.
fn a_kept_lookup_plans_only_its_scan_again(backend: StorageBackend) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = TempDir::new().unwrap();
    let db = Database::open(backend, &dir.path().join("data")).unwrap();
    let run = |session: &mut Session, sql: &str, params: &[ScalarValue]| {
        rt.block_on(db.engine.execute(session, sql, params))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    };
    let root = Session::root();
    // (runs from a kept physical plan, runs from a kept logical plan)
    let reuses = || -> (u64, u64) {
        let sql = "SELECT metric_value FROM system.stats \
                   WHERE metric_name IN ('physical_plan_reuses', 'plan_reuses') ORDER BY metric_name";
        let c = cells(&run(&mut root.clone(), sql, &[]));
        (c[0][0].parse().unwrap(), c[1][0].parse().unwrap())
    };
    let physical_reuses = || -> u64 {
        let sql = "SELECT metric_value FROM system.stats WHERE metric_name = 'physical_plan_reuses'";
        cells(&run(&mut root.clone(), sql, &[]))[0][0].parse().unwrap()
    };
    let (mut alice, mut bob) = alice_and_bob(&rt, &db);
    let lookup = "SELECT v FROM app.t WHERE id = $1";
    let int = |n: i64| [ScalarValue::Int64(Some(n))];
    let look = |session: &mut Session, params: &[ScalarValue]| cells(&run(session, lookup, params));

    let before = physical_reuses();
    assert_eq!(
        look(&mut alice, &int(1)),
        [["a1"]],
        "planned, and its physical plan kept"
    );
    assert_eq!(look(&mut alice, &int(2)), [["a2"]]);
    assert!(look(&mut alice, &int(3)).is_empty());
    assert!(
        look(&mut alice, &[ScalarValue::Int64(None)]).is_empty(),
        "NULL matches no key"
    );
    assert!(look(&mut alice, &[ScalarValue::Float64(Some(1.5))]).is_empty());
    assert_eq!(look(&mut alice, &[ScalarValue::Float64(Some(2.0))]), [["a2"]]);
    assert_eq!(look(&mut bob, &int(1)), [["b1"]], "each user's own plan and rows");
    assert_eq!(look(&mut bob, &int(1)), [["b1"]]);
    assert!(look(&mut bob, &int(2)).is_empty(), "alice's row 2 is not bob's");
    let reused = physical_reuses() - before;
    assert!(reused >= 6, "the kept physical plan served the later runs ({reused})");
    let kept = "SELECT metric_value FROM system.stats WHERE metric_name = 'plans_kept'";
    let kept: u64 = cells(&run(&mut Session::root(), kept, &[]))[0][0].parse().unwrap();
    assert!(kept >= 2, "alice's and bob's lookups are kept ({kept})");

    // Writes, a flush moving the rows to the cold tier, and writes after it are all seen.
    run(&mut alice, "UPDATE app.t SET v = 'a1 new' WHERE id = 1", &[]);
    assert_eq!(look(&mut alice, &int(1)), [["a1 new"]]);
    run(&mut Session::root(), "STORAGE FLUSH TABLE app.t", &[]);
    let flushed = |session: &mut Session| {
        for _ in 0..200 {
            let sql = "SELECT count(*) FROM system.jobs WHERE status IN ('queued', 'running')";
            if cells(&run(session, sql, &[]))[0][0] == "0" {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the flush did not finish");
    };
    flushed(&mut Session::root());
    let before = reuses();
    assert_eq!(look(&mut alice, &int(1)), [["a1 new"]], "read from its segment");
    assert_eq!(look(&mut alice, &int(2)), [["a2"]]);
    assert_eq!(look(&mut bob, &int(1)), [["b1"]]);
    run(&mut alice, "UPDATE app.t SET v = 'a2 hot' WHERE id = 2", &[]);
    run(&mut alice, "DELETE FROM app.t WHERE id = 1", &[]);
    assert!(look(&mut alice, &int(1)).is_empty(), "deleted after its flush");
    assert_eq!(look(&mut alice, &int(2)), [["a2 hot"]], "the hot version wins");
    assert_eq!(look(&mut alice, &int(2)), [["a2 hot"]]);
    let after = reuses();
    assert_eq!(after.1, before.1, "no run fell back to physical planning");
    assert!(
        after.0 > before.0,
        "lookups of a flushed partition bind the kept plan too ({before:?} -> {after:?})"
    );

    // A parameter outside a key comparison: planned physically on every run.
    let by_value = "SELECT id FROM app.t WHERE v = $1";
    let before = physical_reuses();
    for _ in 0..3 {
        let found = cells(&run(&mut bob, by_value, &[ScalarValue::Utf8(Some("b1".into()))]));
        assert_eq!(found, [["1"]]);
    }
    assert_eq!(physical_reuses(), before, "no physical plan is kept for it");

    // A table dropped and created again under the same name is the new table.
    run(
        &mut Session::root(),
        "DROP TABLE app.t; CREATE USER TABLE app.t (id BIGINT PRIMARY KEY, v TEXT)",
        &[],
    );
    assert!(look(&mut alice, &int(2)).is_empty());
    run(&mut alice, "INSERT INTO app.t VALUES (2, 'again')", &[]);
    assert_eq!(look(&mut alice, &int(2)), [["again"]]);
}

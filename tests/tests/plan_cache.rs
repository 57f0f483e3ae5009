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
);

fn cells(outputs: &[StatementOutput]) -> Vec<Vec<String>> {
    calamus_tests::cells(&outputs[0])
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
    run(
        &mut root,
        "CREATE NAMESPACE app; CREATE USER TABLE app.t (id BIGINT PRIMARY KEY, v TEXT)",
        &[],
    );
    let mut alice = Session::new(UserId::new("alice").unwrap(), Role::User);
    let mut bob = Session::new(UserId::new("bob").unwrap(), Role::User);
    run(&mut alice, "INSERT INTO app.t VALUES (1, 'a1'), (2, 'a2')", &[]);
    run(&mut bob, "INSERT INTO app.t VALUES (1, 'b1')", &[]);

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

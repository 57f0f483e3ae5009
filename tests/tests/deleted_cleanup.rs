//! `DELETED_RETENTION_HOURS`: rows deleted longer ago than a table's retention are removed
//! for good by the clean-up job, on both backends, from both tiers; a hot deleted row whose
//! flushed version is live stays deleted (removing it would show that version again) until
//! a flush moves it to a segment, where the compaction drops both. Each table cleaned is a
//! `deleted_cleanup` or `compact` row of `system.jobs`.

use calamus::StorageBackend;
use calamus_domain::UserId;
use calamus_domain::ids::now_millis;
use calamus_domain::model::Role;
use calamus_query::jobs::deleted_cleanup::{compact_segments, purge_expired};
use calamus_query::{Session, StatementOutput};

calamus_tests::on_both_backends!(rows_deleted_past_the_retention_are_removed_for_good);

fn cells(outputs: &[StatementOutput]) -> Vec<Vec<String>> {
    calamus_tests::cells(&outputs[0])
}

fn rows_deleted_past_the_retention_are_removed_for_good(backend: StorageBackend) {
    let open = calamus_tests::OpenDatabase::new(backend);
    let db = &open.db;
    let run = |session: &mut Session, sql: &str| open.run(session, sql);
    let mut root = Session::root();
    run(
        &mut root,
        "CREATE NAMESPACE app;
         CREATE USER TABLE app.kept (id BIGINT PRIMARY KEY, v TEXT) WITH (DELETED_RETENTION_HOURS = 24);
         CREATE USER TABLE app.forever (id BIGINT PRIMARY KEY, v TEXT)",
    );
    let mut alice = Session::new(UserId::new("alice").unwrap(), Role::User);
    let mut bob = Session::new(UserId::new("bob").unwrap(), Role::User);
    for table in ["app.kept", "app.forever"] {
        run(
            &mut alice,
            &format!("INSERT INTO {table} VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd')"),
        );
        run(&mut bob, &format!("INSERT INTO {table} VALUES (1, 'bob')"));
    }
    // Rows 1 to 4 are flushed live; 5 and 6 (alice) and 2 (bob) stay hot.
    run(&mut root, "FLUSH TABLE app.kept");
    for table in ["app.kept", "app.forever"] {
        run(&mut alice, &format!("INSERT INTO {table} VALUES (5, 'e'), (6, 'f')"));
        run(&mut bob, &format!("INSERT INTO {table} VALUES (2, 'bob 2')"));
        run(&mut alice, &format!("DELETE FROM {table} WHERE id IN (1, 5)"));
        run(&mut bob, &format!("DELETE FROM {table} WHERE id = 2"));
    }
    let deleted = |session: &mut Session, table: &str| {
        cells(&run(
            session,
            &format!("SELECT id FROM {table} WHERE _deleted = true ORDER BY id"),
        ))
    };
    assert_eq!(deleted(&mut alice, "app.kept"), [["1"], ["5"]]);

    // Within the retention nothing goes.
    assert_eq!(open.block_on(purge_expired(&db.engine, now_millis())).unwrap(), 0);
    assert_eq!(deleted(&mut alice, "app.kept"), [["1"], ["5"]]);

    // A day and an hour later, in the table with a retention only: the deleted rows that
    // were never flushed go; alice's row 1, whose flushed version is live, stays deleted.
    let later = now_millis() + 25 * 3_600_000;
    assert_eq!(open.block_on(purge_expired(&db.engine, later)).unwrap(), 2);
    assert_eq!(deleted(&mut alice, "app.kept"), [["1"]]);
    assert!(deleted(&mut bob, "app.kept").is_empty());
    assert_eq!(
        cells(&run(&mut alice, "SELECT id FROM app.kept ORDER BY id")),
        [["2"], ["3"], ["4"], ["6"]]
    );
    assert_eq!(cells(&run(&mut bob, "SELECT id, v FROM app.kept")), [["1", "bob"]]);
    assert_eq!(deleted(&mut alice, "app.forever"), [["1"], ["5"]]);
    // A purged key is free again, and the job says what it did.
    run(&mut alice, "INSERT INTO app.kept VALUES (5, 'again')");
    let jobs = cells(&run(
        &mut root,
        "SELECT table_name, status, rows_affected FROM system.jobs WHERE job_type = 'deleted_cleanup'",
    ));
    assert_eq!(jobs, [["kept", "completed", "2"]]);
    // A second run finds nothing more.
    assert_eq!(open.block_on(purge_expired(&db.engine, later)).unwrap(), 0);

    // Alice's delete of row 1 is flushed over its live flushed version: both leave the
    // segments once the retention has passed, and the key is free again.
    run(&mut root, "FLUSH TABLE app.kept");
    assert_eq!(deleted(&mut alice, "app.kept"), [["1"]]);
    assert_eq!(
        open.block_on(compact_segments(&db.engine, now_millis())).unwrap(),
        1,
        "a row with two flushed versions is compacted at once, its delete kept"
    );
    assert_eq!(deleted(&mut alice, "app.kept"), [["1"]]);
    assert_eq!(open.block_on(compact_segments(&db.engine, later)).unwrap(), 1);
    assert!(deleted(&mut alice, "app.kept").is_empty());
    assert_eq!(
        cells(&run(&mut alice, "SELECT id FROM app.kept ORDER BY id")),
        [["2"], ["3"], ["4"], ["5"], ["6"]]
    );
    run(&mut alice, "INSERT INTO app.kept VALUES (1, 'again')");
    assert_eq!(cells(&run(&mut bob, "SELECT id, v FROM app.kept")), [["1", "bob"]]);
    let compactions = cells(&run(
        &mut root,
        "SELECT table_name, status FROM system.jobs WHERE job_type = 'compact' ORDER BY created_at",
    ));
    assert_eq!(compactions, [["kept", "completed"], ["kept", "completed"]]);
    assert_eq!(
        open.block_on(compact_segments(&db.engine, later)).unwrap(),
        0,
        "nothing is left to drop"
    );
}

//! Scans longer than one step of the row store's reads (which start at 1,024 rows and
//! double up to 16,384), with deleted rows spread through them, answer exactly: counts,
//! sums, projections, `_deleted`, an ALTERed column and an OFFSET deep inside the scan.

use calamus::StorageBackend;
use calamus_domain::UserId;
use calamus_domain::model::Role;
use calamus_query::{Session, StatementOutput};

calamus_tests::on_both_backends!(long_scans_with_deleted_rows_answer_exactly,);

const ROWS: i64 = 40_000;

fn cells(outputs: &[StatementOutput]) -> Vec<Vec<String>> {
    calamus_tests::cells(&outputs[0])
}

fn long_scans_with_deleted_rows_answer_exactly(backend: StorageBackend) {
    let open = calamus_tests::OpenDatabase::new(backend);
    let run = |session: &mut Session, sql: &str| open.run(session, sql);
    let mut root = Session::root();
    run(
        &mut root,
        "CREATE NAMESPACE app; CREATE SHARED TABLE app.s (id BIGINT PRIMARY KEY, v TEXT); \
         CREATE USER TABLE app.u (id BIGINT PRIMARY KEY, v TEXT)",
    );
    let mut alice = Session::new(UserId::new("alice").unwrap(), Role::User);
    let mut bob = Session::new(UserId::new("bob").unwrap(), Role::User);
    for first in (0..ROWS).step_by(1000) {
        let values: Vec<String> = (first..first + 1000).map(|i| format!("({i}, 'v{i}')")).collect();
        run(&mut root, &format!("INSERT INTO app.s VALUES {}", values.join(",")));
        run(&mut alice, &format!("INSERT INTO app.u VALUES {}", values.join(",")));
    }
    run(&mut bob, "INSERT INTO app.u VALUES (1, 'bob')");
    run(&mut root, "DELETE FROM app.s WHERE id % 7 = 0");
    run(&mut alice, "DELETE FROM app.u WHERE id % 7 = 0");
    run(&mut root, "UPDATE app.s SET v = 'changed' WHERE id % 1000 = 1");
    run(&mut root, "ALTER TABLE app.s ADD COLUMN flag BOOLEAN DEFAULT true");

    let deleted = (0..ROWS).filter(|i| i % 7 == 0).count() as i64;
    let live: Vec<i64> = (0..ROWS).filter(|i| i % 7 != 0).collect();
    let sum: i64 = live.iter().sum();
    assert_eq!(
        cells(&run(&mut root, "SELECT count(*), sum(id), count(flag) FROM app.s")),
        [[live.len().to_string(), sum.to_string(), live.len().to_string()]]
    );
    assert_eq!(
        cells(&run(&mut alice, "SELECT count(*), sum(id) FROM app.u")),
        [[live.len().to_string(), sum.to_string()]],
        "alice's partition, bob's row not in it"
    );
    assert_eq!(cells(&run(&mut bob, "SELECT count(*) FROM app.u")), [["1"]]);
    assert_eq!(
        cells(&run(&mut root, "SELECT count(*) FROM app.s WHERE _deleted")),
        [[deleted.to_string()]]
    );
    assert_eq!(
        cells(&run(&mut root, "SELECT count(*) FROM app.s WHERE v = 'changed'")),
        [[(0..ROWS).filter(|i| i % 1000 == 1 && i % 7 != 0).count().to_string()]]
    );
    let at = 30_000;
    let want: Vec<Vec<String>> = live[at..at + 3]
        .iter()
        .map(|i| {
            let v = if i % 1000 == 1 {
                "changed".to_owned()
            } else {
                format!("v{i}")
            };
            vec![i.to_string(), v, "true".to_owned()]
        })
        .collect();
    assert_eq!(
        cells(&run(
            &mut root,
            &format!("SELECT id, v, flag FROM app.s ORDER BY id LIMIT 3 OFFSET {at}")
        )),
        want
    );
    // `_seq` alone, every row: distinct and present.
    let seqs = cells(&run(&mut root, "SELECT count(DISTINCT _seq) FROM app.s"));
    assert_eq!(seqs, [[live.len().to_string()]]);
}

//! `per_user_select`: one user's rows of a USER table, with 10, 1,000 and 10,000 users
//! present. The cost of a user's query must not grow with the other users.

use super::{BENCH_PASSWORD, Bench, Outcome, setup_bar};
use crate::error::{BenchError, BenchResult};

/// The name of the `i`-th per-user benchmark user.
pub fn per_user_name(i: usize) -> String {
    format!("bench_pu_{i:05}")
}

/// The body of a user's `r`-th row.
pub fn per_user_body(user: usize, r: usize) -> String {
    format!("message {r} of user {user}, as a chat app stores it")
}

/// Creates users `from..to` and their rows, over two connections at once (creating a user
/// hashes its password with Argon2: the slow part).
fn add_users(bench: &Bench, table: &str, from: usize, to: usize) -> BenchResult<()> {
    const USERS_PER_REQUEST: usize = 25;
    let rows = bench.settings.rows_per_user;
    let bar = setup_bar(&format!("{to} users x {rows} rows"), to - from);
    let chunks: Vec<(usize, usize)> = (from..to)
        .step_by(USERS_PER_REQUEST)
        .map(|start| (start, (start + USERS_PER_REQUEST).min(to)))
        .collect();
    let results: Vec<BenchResult<()>> = std::thread::scope(|scope| {
        let workers: Vec<_> = [0, 1]
            .into_iter()
            .map(|half| {
                let (chunks, bar) = (&chunks, &bar);
                scope.spawn(move || {
                    for &(start, end) in chunks.iter().skip(half).step_by(2) {
                        // Users first: a batch is checked whole before it runs, and
                        // EXECUTE AS USER needs its user to exist by then.
                        let (mut users, mut inserts) = (String::new(), String::new());
                        for u in start..end {
                            let name = per_user_name(u);
                            users.push_str(&format!(
                                "CREATE USER IF NOT EXISTS {name} WITH PASSWORD '{BENCH_PASSWORD}' ROLE user;\n"
                            ));
                            let tuples: Vec<String> = (0..rows)
                                .map(|r| format!("({}, '{}')", u * rows + r, per_user_body(u, r)))
                                .collect();
                            inserts.push_str(&format!(
                                "EXECUTE AS USER '{name}' (INSERT INTO {table} (id, body) VALUES {});\n",
                                tuples.join(", ")
                            ));
                        }
                        bench.root.sql(&users, &[])?;
                        bench.root.sql(&inserts, &[])?;
                        bar.inc((end - start) as u64);
                    }
                    Ok(())
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a set-up worker panicked"))
            .collect()
    });
    bar.finish_and_clear();
    results.into_iter().collect()
}

/// One user's `SELECT *` with each user count of the settings.
pub fn per_user_select(bench: &Bench) -> BenchResult<Vec<Outcome>> {
    let table = Bench::table("per_user");
    bench.root.sql(
        &format!("CREATE USER TABLE IF NOT EXISTS {table} (id BIGINT PRIMARY KEY, body TEXT NOT NULL)"),
        &[],
    )?;
    let rows = bench.settings.rows_per_user;
    let sql = format!("SELECT * FROM {table}");
    let mut counts = bench.settings.user_counts.clone();
    counts.sort_unstable();
    counts.dedup();
    let mut outcomes: Vec<Outcome> = Vec::new();
    let mut present = 0;
    for users in counts {
        add_users(bench, &table, present, users)?;
        present = users;
        let queried = users / 2;
        let client = bench.user.login_as(&per_user_name(queried), BENCH_PASSWORD)?;
        let name = format!("per_user_select_{users}");
        let summary = bench.measure(&name, bench.settings.iterations, 1, rows, |_, _| {
            match client.rows(&sql, &[])?.len() {
                n if n == rows => Ok(()),
                n => Err(BenchError::Check(format!("the user saw {n} rows, not its {rows}"))),
            }
        })?;
        let mut outcome = Outcome::new(
            &name,
            &format!("one user's SELECT * ({rows} rows) with {users} users in the table"),
            1,
            summary,
        );
        if let Some(first) = outcomes.first() {
            let ratio = outcome.summary.p50_ms / first.summary.p50_ms;
            outcome = outcome.note(format!("p50 {ratio:.2}x of {} (target: within 1.2x)", first.scenario));
        }
        if let Some(postgres) = &bench.postgres {
            let baseline = postgres.per_user_select(users, rows, queried, bench.settings.iterations)?;
            outcome.postgres_p50_ratio = Some(outcome.summary.p50_ms / baseline.p50_ms);
            outcome.postgres = Some(baseline);
        }
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

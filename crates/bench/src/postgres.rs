//! The baseline users would pick instead: PostgreSQL, one table for every tenant with a
//! tenant column, an index and a row-level-security policy, over its own protocol.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use postgres::{Client, NoTls};

use crate::error::BenchResult;
use crate::scenarios::per_user::{per_user_body, per_user_name};
use crate::stats::Summary;

/// A PostgreSQL server to compare with.
pub struct PostgresBaseline {
    url: String,
    /// Tenants loaded so far.
    loaded: AtomicUsize,
}

/// The role the per-tenant queries run as: not the table's owner, so the policy applies.
const TENANT_ROLE: &str = "calamus_bench_tenant";

impl PostgresBaseline {
    /// Connects to `url` (a role that may create tables and roles) and creates the table.
    pub fn connect(url: &str) -> BenchResult<Self> {
        let mut client = Client::connect(url, NoTls)?;
        client.batch_execute(&format!(
            "DROP TABLE IF EXISTS calamus_bench_per_user;
             CREATE TABLE calamus_bench_per_user (
                 tenant TEXT NOT NULL, id BIGINT NOT NULL, body TEXT NOT NULL,
                 PRIMARY KEY (tenant, id));
             ALTER TABLE calamus_bench_per_user ENABLE ROW LEVEL SECURITY;
             CREATE POLICY tenant_rows ON calamus_bench_per_user
                 USING (tenant = current_setting('app.tenant'));
             DO $$ BEGIN
                 IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{TENANT_ROLE}') THEN
                     CREATE ROLE {TENANT_ROLE};
                 END IF;
             END $$;
             GRANT SELECT ON calamus_bench_per_user TO {TENANT_ROLE};"
        ))?;
        Ok(Self {
            url: url.to_owned(),
            loaded: AtomicUsize::new(0),
        })
    }

    /// One tenant's `SELECT *` with `tenants` tenants of `rows` rows in the table, as
    /// tenant `queried`, `iterations` times on one connection.
    pub fn per_user_select(
        &self,
        tenants: usize,
        rows: usize,
        queried: usize,
        iterations: usize,
    ) -> BenchResult<Summary> {
        let mut client = Client::connect(&self.url, NoTls)?;
        let loaded = self.loaded.load(Ordering::Relaxed);
        if loaded < tenants {
            let copy = "COPY calamus_bench_per_user (tenant, id, body) FROM STDIN";
            let mut writer = client.copy_in(copy)?;
            for u in loaded..tenants {
                let tenant = per_user_name(u);
                for r in 0..rows {
                    writeln!(writer, "{tenant}\t{}\t{}", u * rows + r, per_user_body(u, r))
                        .map_err(|e| postgres_io(&e))?;
                }
            }
            writer.finish()?;
            client.batch_execute("ANALYZE calamus_bench_per_user")?;
            self.loaded.store(tenants, Ordering::Relaxed);
        }
        client.batch_execute(&format!(
            "SET ROLE {TENANT_ROLE}; SET app.tenant = '{}'",
            per_user_name(queried)
        ))?;
        let statement = client.prepare("SELECT * FROM calamus_bench_per_user")?;
        let mut latencies = Vec::with_capacity(iterations);
        let started = Instant::now();
        for _ in 0..iterations {
            let began = Instant::now();
            let found = client.query(&statement, &[])?.len();
            latencies.push(began.elapsed());
            if found != rows {
                return Err(crate::error::BenchError::Check(format!(
                    "PostgreSQL returned {found} rows for the tenant, not {rows}"
                )));
            }
        }
        Ok(Summary::of(
            &mut latencies,
            started.elapsed().max(Duration::from_nanos(1)),
            rows,
        ))
    }
}

fn postgres_io(e: &std::io::Error) -> crate::error::BenchError {
    crate::error::BenchError::Check(format!("writing rows to PostgreSQL: {e}"))
}

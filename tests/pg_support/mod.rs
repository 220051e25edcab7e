//! Helpers of the `pg_*` integration tests: the fresh schema per test,
//! dropped at the end (also when the test panics), from the helper the
//! jobs-postgres tests use (one helper for both); stores whose connections
//! carry an `application_name` of their own (so a test can kill exactly one
//! server's connections); waiting for a condition with a generous deadline;
//! the deadlocks PostgreSQL counted during a test; a PostgreSQL cluster of a
//! test's own, to stop and start.

#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::process::Command;
use std::time::{Duration, Instant};

use sqlx::PgPool;

#[path = "../../jobs-postgres/tests/common/mod.rs"]
mod common;

// Each test binary uses a different part.
#[allow(unused_imports)]
pub use common::{database_url, url_with_app, TestSchema};

/// Terminates every backend whose `application_name` is `app` or starts with
/// `app:` (the store's pool and its listener); how many were terminated.
pub async fn terminate_backends(admin: &PgPool, app: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))
         FROM pg_stat_activity
         WHERE application_name = $1 OR application_name LIKE $1 || ':%'",
    )
    .bind(app)
    .fetch_one(admin)
    .await
    .expect("terminating backends")
}

/// Polls `check` every 100 ms until it returns `Some`, panicking with `what`
/// after `deadline`. Only for "eventually": the deadline is generous and is
/// never the property under test.
pub async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How many deadlocks PostgreSQL has counted in the schema's database.
/// Backends keep their counts in memory and publish them about once a
/// second while idle, and at the latest when they exit: a figure read while
/// the test's connections are open may be behind (see
/// [`assert_no_deadlocks_since`]).
pub async fn deadlocks(schema: &TestSchema) -> i64 {
    // Statistics read earlier in the session are not reused.
    sqlx::query("SELECT pg_stat_clear_snapshot()")
        .execute(&schema.admin)
        .await
        .expect("clearing the statistics snapshot");
    schema
        .scalar("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        .await
}

/// Asserts that PostgreSQL counted no deadlock in the schema's database (one
/// of its own: [`TestSchema::in_own_database`]) since it counted `before`.
/// It first waits until every other session of the database has ended (the
/// test closes or drops its stores and stops its processes), because a
/// backend publishes what it counted at the latest when it exits: the
/// figure is then complete, whatever the timing of the flushes.
pub async fn assert_no_deadlocks_since(schema: &TestSchema, before: i64) {
    eventually(
        "the test's sessions to end",
        Duration::from_secs(60),
        || async {
            let open = schema
                .scalar(
                    "SELECT count(*) FROM pg_stat_activity
                     WHERE datname = current_database() AND backend_type = 'client backend'
                       AND application_name <> 'jobs_test_admin'",
                )
                .await;
            (open == 0).then_some(())
        },
    )
    .await;
    let after = deadlocks(schema).await;
    assert_eq!(
        after - before,
        0,
        "PostgreSQL detected {} deadlocks during the test (pg_stat_database.deadlocks)",
        after - before
    );
}

/// A PostgreSQL cluster of the test's own on another port (Debian's
/// `pg_createcluster`), for tests that stop and start PostgreSQL without
/// disturbing the others; dropped at the end. Each test takes a port and a
/// name of its own.
pub struct OwnCluster {
    version: String,
    name: String,
    port: u16,
}

impl OwnCluster {
    pub fn create(name: &str, port: u16) -> Self {
        let version = std::fs::read_dir("/etc/postgresql")
            .expect("Debian's PostgreSQL (pg_createcluster)")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .max()
            .expect("a PostgreSQL version");
        let cluster = Self {
            version,
            name: name.to_owned(),
            port,
        };
        // A cluster left by an earlier, interrupted run.
        cluster.run("pg_dropcluster", &["--stop"]);
        let port = port.to_string();
        assert!(
            cluster.run("pg_createcluster", &["-p", &port, "--", "--auth=trust"]),
            "pg_createcluster"
        );
        cluster.start();
        cluster
    }

    fn run(&self, tool: &str, extra: &[&str]) -> bool {
        let mut args = vec![self.version.as_str(), self.name.as_str()];
        args.extend_from_slice(extra);
        let mut command = Command::new(tool);
        if tool == "pg_ctlcluster" {
            command.arg("--skip-systemctl-redirect");
        }
        command
            .args(&args)
            .output()
            .map(|out| out.status.success())
            .unwrap_or(false)
    }

    pub fn start(&self) {
        assert!(
            self.run("pg_ctlcluster", &["start"]),
            "starting the cluster"
        );
    }

    pub fn stop(&self) {
        assert!(
            self.run("pg_ctlcluster", &["stop", "-m", "fast"]),
            "stopping the cluster"
        );
    }

    /// Its `postgres` database, with connections named `app`.
    pub fn url(&self, app: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres?application_name={app}",
            self.port
        )
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        self.run("pg_dropcluster", &["--stop"]);
    }
}

//! Helpers of the `pg_*` integration tests: a fresh schema per test, dropped
//! at the end (also when the test panics), stores whose connections carry an
//! `application_name` of their own (so a test can kill exactly one server's
//! connections), and waiting for a condition with a generous deadline.

#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::time::{Duration, Instant};

use jobs::postgres::{PgStore, PgStoreOptions};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

/// The database under test.
pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// The database URL with this `application_name`.
pub fn url_with_app(app: &str) -> String {
    let url = database_url();
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}application_name={app}")
}

/// A fresh schema for one test, and an admin pool on the test database.
/// Call [`TestSchema::drop`] at the end; if the test panics first, `Drop`
/// removes the schema on a thread of its own.
pub struct TestSchema {
    pub name: String,
    pub admin: PgPool,
    dropped: bool,
}

impl TestSchema {
    /// A new, empty schema name (`jobs_it_<random>`); the first store migrates it.
    pub async fn new() -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let name = format!("jobs_it_{}", &id[..16]);
        let admin = PgPoolOptions::new()
            .max_connections(4)
            .connect(&url_with_app("jobs_it_admin"))
            .await
            .expect("PostgreSQL at DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test)");
        Self {
            name,
            admin,
            dropped: false,
        }
    }

    /// A store on this schema, its connections named `app` (the listener's
    /// `app:listener`).
    pub async fn store(&self, app: &str) -> PgStore {
        PgStore::connect_with(
            &url_with_app(app),
            PgStoreOptions::new().schema(self.name.clone()),
        )
        .await
        .expect("a store on the test schema")
    }

    /// `"<schema>.<table>"`, quoted, for the test's own SQL.
    pub fn table(&self, table: &str) -> String {
        format!("\"{}\".\"{}\"", self.name, table)
    }

    /// One `i64` from a query.
    pub async fn scalar(&self, sql: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(&self.admin)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// How many jobs of this schema are in `state`.
    pub async fn count_state(&self, state: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(&format!(
            "SELECT count(*) FROM {} WHERE state = $1",
            self.table("jobs")
        ))
        .bind(state)
        .fetch_one(&self.admin)
        .await
        .expect("counting jobs")
    }

    /// Drops the schema.
    pub async fn drop(mut self) {
        self.dropped = true;
        let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name))
            .execute(&self.admin)
            .await;
        self.admin.close().await;
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        let schema = self.name.clone();
        let url = url_with_app("jobs_it_admin");
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                if let Ok(pool) = PgPoolOptions::new().max_connections(1).connect(&url).await {
                    let _ = sqlx::query("SET lock_timeout = '10s'").execute(&pool).await;
                    let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                        .execute(&pool)
                        .await;
                }
            });
        })
        .join()
        .ok();
    }
}

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

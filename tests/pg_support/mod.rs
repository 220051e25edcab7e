//! Helpers of the `pg_*` integration tests: the fresh schema per test,
//! dropped at the end (also when the test panics), from the helper the
//! jobs-postgres tests use (one helper for both); stores whose connections
//! carry an `application_name` of their own (so a test can kill exactly one
//! server's connections); waiting for a condition with a generous deadline.

#![allow(dead_code, unreachable_pub)]

use std::future::Future;
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

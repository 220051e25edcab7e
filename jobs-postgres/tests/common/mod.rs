//! Helpers shared by the PostgreSQL tests: a fresh schema per test, dropped
//! afterwards, so tests run in parallel on one database.

#![allow(dead_code, unreachable_pub)]

use jobs_postgres::{PgStore, PgStoreOptions};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

/// The database under test.
pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A fresh, unused schema name.
pub fn fresh_schema() -> String {
    format!("jobs_test_{:016x}", fastrand_u64())
}

fn fastrand_u64() -> u64 {
    let uuid = uuid::Uuid::new_v4();
    let bytes = uuid.as_bytes();
    u64::from_le_bytes(bytes[..8].try_into().unwrap())
}

/// A pool on the test database.
pub async fn pool() -> PgPool {
    PgPoolOptions::new()
        .max_connections(5)
        .connect(&database_url())
        .await
        .expect("PostgreSQL at DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test)")
}

/// A migrated store in its own schema, and a guard that drops the schema.
pub async fn store() -> (PgStore, SchemaGuard) {
    store_with(PgStoreOptions::new()).await
}

/// Like [`store`], with options (the schema is replaced by a fresh one).
pub async fn store_with(options: PgStoreOptions) -> (PgStore, SchemaGuard) {
    let schema = fresh_schema();
    let pool = pool().await;
    let store = PgStore::with_options(pool.clone(), options.schema(schema.clone()))
        .await
        .expect("store");
    (store, SchemaGuard { schema })
}

/// Drops its schema when dropped.
pub struct SchemaGuard {
    pub schema: String,
}

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        drop_schema(&self.schema);
    }
}

/// Drops a schema on a connection of its own (works from a drop, outside async).
pub fn drop_schema(schema: &str) {
    let schema = schema.to_owned();
    let url = database_url();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            if let Ok(pool) = PgPoolOptions::new().max_connections(1).connect(&url).await {
                let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                    .execute(&pool)
                    .await;
            }
        });
    })
    .join()
    .ok();
}

/// A store for one conformance case: a fresh schema whose name carries the
/// creation time, so later runs can sweep the schemas of earlier ones (the
/// suite keeps the store to the end of the case and offers no teardown hook).
pub async fn conformance_store() -> PgStore {
    let pool = pool().await;
    sweep_stale_schemas(&pool).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let schema = format!("jobs_conf_{now}_{:08x}", fastrand_u64() as u32);
    PgStore::with_options(pool, PgStoreOptions::new().schema(schema))
        .await
        .expect("store")
}

/// Drops conformance schemas created more than ten minutes ago.
async fn sweep_stale_schemas(pool: &PgPool) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'jobs\\_conf\\_%'",
    )
    .fetch_all(pool)
    .await
    .unwrap_or_default();
    for name in names {
        let created = name.split('_').nth(2).and_then(|t| t.parse::<u64>().ok());
        if created.is_some_and(|t| t + 600 < now) {
            let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
                .execute(pool)
                .await;
        }
    }
}

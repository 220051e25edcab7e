//! The one fresh-schema helper of the PostgreSQL tests, this crate's and the
//! `jobs` crate's (`tests/pg_support` includes this file): every test gets a
//! schema of its own, dropped at its end, also when it panics, so tests run
//! in parallel on one database.

#![allow(dead_code, unreachable_pub)]

use jobs_postgres::{PgStore, PgStoreOptions};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

/// The database under test.
pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// The database URL with this `application_name`.
pub fn url_with_app(app: &str) -> String {
    with_app(&database_url(), app)
}

/// A pool on the test database.
pub async fn pool() -> PgPool {
    PgPoolOptions::new()
        .max_connections(5)
        .connect(&database_url())
        .await
        .expect("PostgreSQL at DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test)")
}

/// `url` with its database replaced by `database` (the query string kept).
pub fn url_with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut url = format!("{}/{database}", &base[..host_end]);
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    url
}

/// `url` with this `application_name`.
fn with_app(url: &str, app: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}application_name={app}")
}

/// A fresh schema for one test, and an admin pool on the test database.
/// Call [`TestSchema::drop`] at the end, or let it go out of scope: `Drop`
/// removes the schema on a thread of its own (and so works while a test
/// unwinds, outside async).
pub struct TestSchema {
    pub name: String,
    pub admin: PgPool,
    /// The test's database: `DATABASE_URL`'s, or one of its own.
    url: String,
    /// The database created for this test alone, dropped with it.
    own_database: Option<String>,
    dropped: bool,
}

impl TestSchema {
    /// A new, empty schema name (`jobs_test_<random>`) in the database at
    /// `DATABASE_URL`; the first store migrates it.
    pub async fn new() -> Self {
        Self::on(database_url(), None).await
    }

    /// Like [`TestSchema::new`], in a database of its own (named like the
    /// schema, dropped with it), for tests that read what PostgreSQL counts
    /// per database (`pg_stat_database.deadlocks`): other tests and other
    /// users of the server then cannot move the figures.
    pub async fn in_own_database() -> Self {
        let database = format!(
            "jobs_test_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..16]
        );
        let main = PgPoolOptions::new()
            .max_connections(1)
            .connect(&url_with_app("jobs_test_admin"))
            .await
            .expect("PostgreSQL at DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test)");
        // From template0, which nobody connects to: CREATE DATABASE fails
        // while its template has other sessions.
        sqlx::query(&format!(
            "CREATE DATABASE \"{database}\" TEMPLATE template0"
        ))
        .execute(&main)
        .await
        .expect("creating the test's own database");
        main.close().await;
        Self::on(
            url_with_database(&database_url(), &database),
            Some(database),
        )
        .await
    }

    async fn on(url: String, own_database: Option<String>) -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let name = format!("jobs_test_{}", &id[..16]);
        let admin = PgPoolOptions::new()
            .max_connections(4)
            .connect(&with_app(&url, "jobs_test_admin"))
            .await
            .expect("PostgreSQL at DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test)");
        Self {
            name,
            admin,
            url,
            own_database,
            dropped: false,
        }
    }

    /// The URL of the test's database, with this `application_name`.
    pub fn url_with_app(&self, app: &str) -> String {
        with_app(&self.url, app)
    }

    /// A store on this schema, its connections named `app` (the listener's
    /// `app:listener`).
    pub async fn store(&self, app: &str) -> PgStore {
        PgStore::connect_with(
            &self.url_with_app(app),
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

    /// Drops the schema (and the test's own database, if it has one).
    pub async fn drop(mut self) {
        self.dropped = true;
        let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name))
            .execute(&self.admin)
            .await;
        self.admin.close().await;
        if let Some(database) = self.own_database.take() {
            if let Ok(main) = PgPoolOptions::new()
                .max_connections(1)
                .connect(&url_with_app("jobs_test_admin"))
                .await
            {
                let _ = sqlx::query(&format!(
                    "DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"
                ))
                .execute(&main)
                .await;
                main.close().await;
            }
        }
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        let schema = self.name.clone();
        let url = self.url_with_app("jobs_test_admin");
        let own_database = self.own_database.take();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                if let Some(database) = own_database {
                    // FORCE ends the sessions a panicking test left behind.
                    let main = url_with_app("jobs_test_admin");
                    if let Ok(pool) = PgPoolOptions::new().max_connections(1).connect(&main).await {
                        let _ = sqlx::query(&format!(
                            "DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"
                        ))
                        .execute(&pool)
                        .await;
                    }
                    return;
                }
                if let Ok(pool) = PgPoolOptions::new().max_connections(1).connect(&url).await {
                    // A connection a panicking test left in a transaction
                    // must not hold the drop forever.
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

/// A migrated store in its own schema, and the schema, dropped with it.
pub async fn store() -> (PgStore, TestSchema) {
    store_with(PgStoreOptions::new()).await
}

/// Like [`store`], with options (the schema is replaced by a fresh one).
pub async fn store_with(options: PgStoreOptions) -> (PgStore, TestSchema) {
    let schema = TestSchema::new().await;
    let store = PgStore::with_options(pool().await, options.schema(schema.name.clone()))
        .await
        .expect("store");
    (store, schema)
}

/// A store for one conformance case. The suite owns the store until the case
/// returns and offers no teardown hook, so the schema is held by a task of
/// the case's runtime: the runtime drops its tasks when the case ends,
/// passed or failed, and the schema goes with them.
pub async fn conformance_store() -> PgStore {
    let (store, schema) = store().await;
    tokio::spawn(async move {
        let _schema = schema;
        std::future::pending::<()>().await;
    });
    store
}

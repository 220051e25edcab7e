//! Migrations, options, transactional enqueue, batch insert, and the
//! LISTEN/NOTIFY listener, against the PostgreSQL at `DATABASE_URL`.

mod common;

use std::time::Duration;

use jobs_core::{Job, JobGetParams, JobInsertManyParams, NewJob, Request, Store, StoreErrorKind};
use jobs_postgres::{Error, PgStore, PgStoreOptions};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use sqlx::Connection;

/// Every migration this build ships, by version.
const ALL_MIGRATIONS: [i32; 16] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];

#[derive(Serialize, Deserialize)]
struct SendMail {
    user_id: i64,
}

impl Job for SendMail {
    const NAME: &'static str = "send_mail";
}

async fn migration_versions(store: &PgStore) -> Vec<i32> {
    sqlx::query_scalar(&format!(
        "SELECT version FROM {}.jobs_migrations ORDER BY version",
        store.schema()
    ))
    .fetch_all(store.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn migrates_from_empty_and_twice_in_a_row() {
    let (store, _guard) = common::store().await;
    assert_eq!(migration_versions(&store).await, ALL_MIGRATIONS);
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    assert_eq!(migration_versions(&store).await, ALL_MIGRATIONS);
    // And a second store on the same schema finds nothing to do.
    let again = PgStore::with_options(
        store.pool().clone(),
        PgStoreOptions::new().schema(store.schema()),
    )
    .await
    .unwrap();
    assert_eq!(migration_versions(&again).await, ALL_MIGRATIONS);
}

#[tokio::test]
async fn migrates_concurrently_from_separate_pools() {
    let guard = common::TestSchema::new().await;
    let schema = guard.name.clone();
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let schema = schema.clone();
        tasks.push(tokio::spawn(async move {
            let pool = PgPoolOptions::new()
                .max_connections(1)
                .connect(&common::database_url())
                .await
                .unwrap();
            PgStore::with_options(pool, PgStoreOptions::new().schema(schema))
                .await
                .map(|_| ())
        }));
    }
    for task in tasks {
        task.await
            .unwrap()
            .expect("every concurrent migrator succeeds");
    }
    let pool = common::pool().await;
    let versions: Vec<i32> =
        sqlx::query_scalar(&format!("SELECT version FROM \"{schema}\".jobs_migrations"))
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(versions, ALL_MIGRATIONS);
}

#[tokio::test]
async fn migration_sql_applies_with_an_outside_tool() {
    let guard = common::TestSchema::new().await;
    let schema = guard.name.clone();
    let sql = PgStore::migration_sql(&schema).unwrap();
    let pool = common::pool().await;
    sqlx::raw_sql(&sql).execute(&pool).await.unwrap();
    let store = PgStore::with_options(pool, PgStoreOptions::new().schema(schema.clone()))
        .await
        .unwrap();
    assert_eq!(migration_versions(&store).await, ALL_MIGRATIONS);
    store
        .job_insert_many(JobInsertManyParams::new(vec![NewJob::new("a", json!({}))]))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_migration_applied_by_a_different_build_is_refused() {
    let (store, _guard) = common::store().await;
    sqlx::query(&format!(
        "UPDATE {}.jobs_migrations SET checksum = 'feedfeedfeedfeed' WHERE version = 1",
        store.schema()
    ))
    .execute(store.pool())
    .await
    .unwrap();
    let err = store.migrate().await.unwrap_err();
    assert!(
        matches!(err, Error::MigrationChanged { version: 1, .. }),
        "{err}"
    );
    let message = err.to_string();
    assert!(message.contains("migration 0001"), "{message}");
    assert!(
        message.contains("stored checksum feedfeedfeedfeed"),
        "{message}"
    );
}

#[tokio::test]
async fn migrations_recorded_without_checksums_get_this_builds() {
    let (store, _guard) = common::store().await;
    let checksums = || async {
        sqlx::query_scalar::<_, Option<String>>(&format!(
            "SELECT checksum FROM {}.jobs_migrations ORDER BY version",
            store.schema()
        ))
        .fetch_all(store.pool())
        .await
        .unwrap()
    };
    let recorded = checksums().await;
    assert!(recorded.iter().all(Option::is_some), "{recorded:?}");
    // A database migrated before the column existed.
    sqlx::query(&format!(
        "ALTER TABLE {}.jobs_migrations DROP COLUMN checksum",
        store.schema()
    ))
    .execute(store.pool())
    .await
    .unwrap();
    store.migrate().await.unwrap();
    assert_eq!(checksums().await, recorded);
    // And one where it exists but is empty.
    sqlx::query(&format!(
        "UPDATE {}.jobs_migrations SET checksum = NULL",
        store.schema()
    ))
    .execute(store.pool())
    .await
    .unwrap();
    store.migrate().await.unwrap();
    assert_eq!(checksums().await, recorded);
}

#[tokio::test]
async fn schema_names_are_validated_before_reaching_sql() {
    for bad in ["x; drop table", "Jobs", "1x", "", "a\"b"] {
        let err = PgStore::migration_sql(bad).unwrap_err();
        assert!(matches!(err, Error::InvalidSchema(_)), "{bad}: {err}");
        let pool = PgPoolOptions::new()
            .connect_lazy(&common::database_url())
            .unwrap();
        let err = PgStore::with_options(pool, PgStoreOptions::new().schema(bad))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidSchema(_)), "{bad}: {err}");
        let err = PgStore::connect_with(
            "postgres://nobody@127.0.0.1:1/x",
            PgStoreOptions::new().schema(bad),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, Error::InvalidSchema(_)), "{bad}: {err}");
    }
}

#[tokio::test]
async fn connect_names_its_connections() {
    let guard = common::TestSchema::new().await;
    let schema = guard.name.clone();
    let store = PgStore::connect_with(
        &common::database_url(),
        PgStoreOptions::new().schema(schema),
    )
    .await
    .unwrap();
    let name: String = sqlx::query_scalar("SELECT current_setting('application_name')")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(name, "jobs");
}

#[tokio::test]
async fn connect_with_sizes_and_names_its_pool_as_told() {
    let guard = common::TestSchema::new().await;
    let store = PgStore::connect_with(
        &common::url_with_app("from_the_url"),
        PgStoreOptions::new()
            .schema(guard.name.clone())
            .max_connections(3)
            .application_name("jobs_test_told"),
    )
    .await
    .unwrap();
    assert_eq!(store.pool().options().get_max_connections(), 3);
    let name: String = sqlx::query_scalar("SELECT current_setting('application_name')")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(name, "jobs_test_told", "the option wins over the URL");
}

#[tokio::test]
async fn a_store_on_a_pool_from_pool_options_enqueues_on_named_connections() {
    let guard = common::TestSchema::new().await;
    let pool = PgStore::pool_options()
        .max_connections(2)
        .connect_with(
            PgStore::connect_options(&common::database_url())
                .unwrap()
                .application_name("jobs_test_app_pool"),
        )
        .await
        .unwrap();
    assert!(
        !pool.options().get_test_before_acquire(),
        "no ping before every statement"
    );
    let store = PgStore::with_options(
        pool.clone(),
        PgStoreOptions::new().schema(guard.name.clone()),
    )
    .await
    .unwrap();
    let id = Request::new(SendMail { user_id: 3 })
        .enqueue(&jobs_core::Jobs::new(store.clone()))
        .await
        .unwrap();
    assert!(store
        .job_get(JobGetParams::new(id))
        .await
        .unwrap()
        .is_some());
    // The application's own queries share the pool and its name.
    let name: String = sqlx::query_scalar("SELECT current_setting('application_name')")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(name, "jobs_test_app_pool");
}

#[test]
fn connect_options_name_connections_jobs_unless_the_url_does() {
    let plain = PgStore::connect_options("postgres://u@127.0.0.1:1/x").unwrap();
    assert_eq!(plain.get_application_name(), Some("jobs"));
    let named =
        PgStore::connect_options("postgres://u@127.0.0.1:1/x?application_name=web").unwrap();
    assert_eq!(named.get_application_name(), Some("web"));
}

#[tokio::test]
async fn an_enqueue_on_an_unreachable_database_is_unavailable_within_its_budget() {
    // Nothing listens on port 1; the pool would retry connecting for its
    // whole acquire timeout (sqlx's default, 30 s) without the budget.
    let pool = PgPoolOptions::new()
        .connect_lazy("postgres://nobody@127.0.0.1:1/x")
        .unwrap();
    let store = PgStore::with_options(
        pool,
        PgStoreOptions::new()
            .migrate(false)
            .enqueue_timeout(Duration::from_millis(200)),
    )
    .await
    .unwrap();
    let err = store
        .job_insert_many(JobInsertManyParams::new(vec![NewJob::new("a", json!({}))]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Unavailable, "{err}");
    let message = err.to_string();
    assert!(message.contains("200ms"), "names the budget: {message}");
    assert!(
        message.contains("PgStoreOptions::enqueue_timeout"),
        "names the setting: {message}"
    );
}

#[tokio::test]
async fn transactional_enqueue_follows_the_transaction() {
    let (store, _guard) = common::store().await;
    let mut conn = store.pool().acquire().await.unwrap();

    let mut tx = conn.begin().await.unwrap();
    let rolled_back = store
        .enqueue_in(&mut tx, Request::new(SendMail { user_id: 1 }))
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert!(store
        .job_get(JobGetParams::new(rolled_back))
        .await
        .unwrap()
        .is_none());

    let mut tx = conn.begin().await.unwrap();
    let committed = store
        .enqueue_many_in(
            &mut tx,
            [
                Request::new(SendMail { user_id: 2 }),
                Request::new(SendMail { user_id: 3 }).queue("mail"),
            ],
        )
        .await
        .unwrap();
    // Not visible outside the transaction before it commits.
    assert!(store
        .job_get(JobGetParams::new(committed[0]))
        .await
        .unwrap()
        .is_none());
    tx.commit().await.unwrap();
    let job = store
        .job_get(JobGetParams::new(committed[1]))
        .await
        .unwrap()
        .unwrap()
        .job;
    assert_eq!(job.name, "send_mail");
    assert_eq!(job.queue, "mail");
    assert_eq!(job.args, json!({ "user_id": 3 }));
}

#[tokio::test]
async fn arguments_over_the_limit_are_refused() {
    let (store, _guard) = common::store_with(PgStoreOptions::new().max_args_bytes(1024)).await;
    let big = NewJob::new("a", json!({ "blob": "x".repeat(2000) }));
    let small = NewJob::new("a", json!({ "blob": "x" }));
    let err = store
        .job_insert_many(JobInsertManyParams::new(vec![small.clone(), big]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Invalid);
    assert!(
        err.to_string().contains("over the limit of 1024 bytes"),
        "{err}"
    );
    // All or none: the small one was not inserted either.
    let count: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {}.jobs", store.schema()))
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(count, 0);
    store
        .job_insert_many(JobInsertManyParams::new(vec![small]))
        .await
        .unwrap();
}

#[tokio::test]
async fn inserts_five_thousand_jobs_in_one_call() {
    let (store, _guard) = common::store().await;
    let jobs: Vec<NewJob> = (0..5000)
        .map(|i| NewJob::new("a", json!({ "i": i, "t": 0 })))
        .collect();
    let ids = store
        .job_insert_many(JobInsertManyParams::new(jobs))
        .await
        .unwrap();
    assert_eq!(ids.len(), 5000);
    assert!(ids.windows(2).all(|w| w[0].id.0 < w[1].id.0));
    // Ids come back in input order.
    let last = store
        .job_get(JobGetParams::new(ids[4999].id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(last.job.args["i"], 4999);
    // One NOTIFY statement, not 5,000 (the payloads are deduplicated anyway).
    let mut conn = store.pool().acquire().await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    store
        .insert_in(
            &mut tx,
            (0..3)
                .map(|i| NewJob::new("a", json!({ "i": i })))
                .collect(),
        )
        .await
        .unwrap();
    tx.rollback().await.unwrap();
}

/// Waits until the signal is raised, or panics after `within`.
async fn raised(rx: &mut tokio::sync::watch::Receiver<u64>, within: Duration) {
    tokio::time::timeout(within, rx.changed())
        .await
        .expect("the signal was raised in time")
        .unwrap();
}

#[tokio::test]
async fn notify_wakes_another_store_and_survives_a_killed_listener() {
    let (store, _guard) = common::store().await;
    // A second store on the same schema, as another process would be, with a
    // recognisable application_name.
    let app = format!("jobs-test-{}", uuid::Uuid::new_v4().simple());
    let options = common::database_url()
        .parse::<sqlx::postgres::PgConnectOptions>()
        .unwrap()
        .application_name(&app);
    let other_pool = PgPoolOptions::new()
        .max_connections(2)
        .connect_with(options)
        .await
        .unwrap();
    let other = PgStore::with_options(other_pool, PgStoreOptions::new().schema(store.schema()))
        .await
        .unwrap();
    let signal = other.job_signal().unwrap();
    let mut rx = signal.subscribe();
    // The listener connects in the background and raises the signal once
    // when it starts listening.
    raised(&mut rx, Duration::from_secs(10)).await;

    // An insert by the first store (a commit elsewhere) wakes the second.
    store
        .job_insert_many(JobInsertManyParams::new(vec![NewJob::new("a", json!({}))]))
        .await
        .unwrap();
    raised(&mut rx, Duration::from_secs(5)).await;

    // Kill the listener's connection; it reconnects on its own.
    let listener_app = format!("{app}:listener");
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
    )
    .bind(&listener_app)
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(killed, vec![true]);
    // It notices (raising the signal, as notifications may have been lost)...
    raised(&mut rx, Duration::from_secs(10)).await;
    // ... and is listening again: wait until it shows up, then insert.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let listening: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'LISTEN%'",
        )
        .bind(&listener_app)
        .fetch_one(store.pool())
        .await
        .unwrap();
        if listening == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the listener did not come back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    rx.borrow_and_update();
    store
        .job_insert_many(JobInsertManyParams::new(vec![NewJob::new("a", json!({}))]))
        .await
        .unwrap();
    raised(&mut rx, Duration::from_secs(5)).await;

    // The listener stops with the last clone of its store.
    drop(signal);
    drop(other);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1")
                .bind(&listener_app)
                .fetch_one(store.pool())
                .await
                .unwrap();
        if left == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the listener outlived its store"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_insert_raises_the_local_signal_without_listening() {
    let (store, _guard) = common::store_with(PgStoreOptions::new().listen(false)).await;
    let mut rx = store.job_signal().unwrap().subscribe();
    store
        .job_insert_many(JobInsertManyParams::new(vec![NewJob::new("a", json!({}))]))
        .await
        .unwrap();
    raised(&mut rx, Duration::from_secs(1)).await;
}

#[tokio::test]
async fn transactional_enqueue_runs_on_spawned_tasks() {
    let (store, _guard) = common::store().await;
    let id = tokio::spawn({
        let store = store.clone();
        async move {
            let mut tx = store.pool().begin().await.unwrap();
            let id = store
                .enqueue_in(&mut tx, Request::new(SendMail { user_id: 7 }))
                .await
                .unwrap();
            tx.commit().await.unwrap();
            id
        }
    })
    .await
    .unwrap();
    assert!(store
        .job_get(JobGetParams::new(id))
        .await
        .unwrap()
        .is_some());
}

/// Regression (reliability issue: a process that enqueues and exits at once,
/// a CLI, usually lost its wake-up, because the notifier that sends it after
/// the insert was a task aborted with the store). The "CLI" here runs on a
/// runtime of its own, dropped right after `close`, as an exiting process
/// drops its runtime and every task on it; a listener elsewhere still gets
/// the NOTIFY.
#[tokio::test]
async fn a_store_closed_right_after_an_enqueue_has_sent_its_wake_up() {
    let schema = common::TestSchema::new().await;
    let mut listener = sqlx::postgres::PgListener::connect(&common::database_url())
        .await
        .unwrap();
    // The channel is the schema's (see `Schema::channel`).
    listener
        .listen(&format!("jobs_wakeup.{}", schema.name))
        .await
        .unwrap();
    let (url, name) = (common::url_with_app("jobs_test_cli"), schema.name.clone());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let store = PgStore::connect_with(&url, PgStoreOptions::new().schema(name))
                .await
                .unwrap();
            store
                .job_insert_many(JobInsertManyParams::new(vec![NewJob::new("a", json!({}))]))
                .await
                .unwrap();
            store.close().await;
        });
        // The runtime, and whatever was still to run on it, ends here.
    })
    .join()
    .unwrap();
    let notification = tokio::time::timeout(Duration::from_secs(30), listener.recv())
        .await
        .expect("the wake-up of the enqueue was sent before the store closed")
        .unwrap();
    assert_eq!(
        notification.channel(),
        format!("jobs_wakeup.{}", schema.name)
    );
    schema.drop().await;
}

/// `close` also stops the listener and closes the pool the store opened;
/// `flush` with nothing enqueued returns at once.
#[tokio::test]
async fn close_stops_the_listener_and_closes_the_pool_the_store_opened() {
    let schema = common::TestSchema::new().await;
    let app = format!("{}_closing", schema.name);
    let store = schema.store(&app).await;
    store.flush().await;
    let mut rx = store.job_signal().unwrap().subscribe();
    // The listener raises the signal once it listens.
    raised(&mut rx, Duration::from_secs(10)).await;
    store.close().await;
    assert!(store.pool().is_closed());
    let left = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE $1 || '%'",
        )
        .bind(&app)
        .fetch_one(&schema.admin)
        .await
        .unwrap()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while left().await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the store's connections outlived close"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A pool the application handed over stays open.
    let pool = common::pool().await;
    let store = PgStore::with_options(
        pool.clone(),
        PgStoreOptions::new().schema(schema.name.clone()),
    )
    .await
    .unwrap();
    store.close().await;
    assert!(!pool.is_closed());
    pool.close().await;
    schema.drop().await;
}

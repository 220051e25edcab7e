//! Transactions end to end, with a `Server`: a rolled-back enqueue never
//! runs and a committed one does, through the store and in the typed form
//! (`EnqueueIn`, `PgJobs`); a job completed in its own transaction
//! commits its effects and its outcome together, and an attempt that is no
//! longer current cannot complete (its effects roll back).
//!
//! Every server of this binary is given the same states: the store and its pool.

#![cfg(feature = "postgres")]

mod pg_support;

use std::time::Duration;

use jobs::postgres::{EnqueueIn, PgJobs, PgStore};
use jobs::{job, JobContext, JobState, Jobs, MemoryStore, Server, State, StoreErrorKind};
use pg_support::{eventually, TestSchema};
use sqlx::PgPool;

const DEADLINE: Duration = Duration::from_secs(60);

async fn start(store: &PgStore, queue: &str) -> Server {
    Server::builder(store.clone())
        .state(store.clone())
        .state(store.pool().clone())
        .queues([queue])
        .concurrency(8)
        .poll_interval(Duration::from_millis(100))
        .lease(Duration::from_secs(1))
        .rescue_interval(Duration::from_millis(500))
        .start()
        .await
        .unwrap()
}

/// Records an effect in the schema's `effects` table, on `conn`.
async fn effect(
    conn: &mut sqlx::PgConnection,
    store: &PgStore,
    name: &str,
    n: i32,
    attempt: i32,
) -> anyhow::Result<()> {
    sqlx::query(&format!(
        "INSERT INTO \"{}\".effects (name, n, attempt) VALUES ($1, $2, $3)",
        store.schema()
    ))
    .bind(name)
    .bind(n)
    .bind(attempt)
    .execute(conn)
    .await?;
    Ok(())
}

async fn setup() -> (TestSchema, PgStore, Jobs) {
    let schema = TestSchema::new().await;
    let store = schema.store(&format!("{}_tx", schema.name)).await;
    sqlx::query(&format!(
        "CREATE TABLE {} (name text NOT NULL, n int4 NOT NULL, attempt int4 NOT NULL)",
        schema.table("effects")
    ))
    .execute(&schema.admin)
    .await
    .unwrap();
    let jobs = Jobs::new(store.clone());
    (schema, store, jobs)
}

#[job(queue = "it_tx_enqueue")]
async fn record_effect(n: i32, store: State<PgStore>, db: State<PgPool>) -> anyhow::Result<()> {
    let mut conn = db.0.acquire().await?;
    effect(&mut conn, &store.0, "enqueue", n, 1).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_back_enqueue_never_runs_and_a_committed_one_does() {
    let (schema, store, _jobs) = setup().await;
    let server = start(&store, "it_tx_enqueue").await;

    let mut tx = store.pool().begin().await.unwrap();
    let rolled_back = store
        .enqueue_in(&mut tx, RecordEffect::new(1))
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    let mut tx = store.pool().begin().await.unwrap();
    let committed = store
        .enqueue_in(&mut tx, RecordEffect::new(2))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    eventually("the committed job to succeed", DEADLINE, || async {
        (schema.count_state("succeeded").await == 1).then_some(())
    })
    .await;
    // Anything enqueued in the same breath would have run by now as well.
    server.shutdown().await;
    let jobs = Jobs::new(store.clone());
    assert!(jobs.get(rolled_back).await.unwrap().is_none());
    assert!(jobs.get(committed).await.unwrap().is_some());
    let effects: Vec<i32> = sqlx::query_scalar(&format!(
        "SELECT n FROM {} ORDER BY n",
        schema.table("effects")
    ))
    .fetch_all(&schema.admin)
    .await
    .unwrap();
    assert_eq!(effects, vec![2], "only the committed job ran");
    schema.drop().await;
}

#[job(queue = "it_tx_typed")]
async fn record_typed_effect(
    n: i32,
    store: State<PgStore>,
    db: State<PgPool>,
) -> anyhow::Result<()> {
    let mut conn = db.0.acquire().await?;
    effect(&mut conn, &store.0, "typed", n, 1).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typed_enqueue_in_a_committed_transaction_is_visible_and_runs() {
    let (schema, store, jobs) = setup().await;
    let server = start(&store, "it_tx_typed").await;

    let mut tx = store.pool().begin().await.unwrap();
    let first = RecordTypedEffect::new(1)
        .enqueue_in(&jobs, &mut tx)
        .await
        .unwrap();
    let second = jobs
        .enqueue_in(&mut tx, RecordTypedEffect::new(2))
        .await
        .unwrap();
    let more = jobs
        .enqueue_many_in(&mut tx, [RecordTypedEffect::new(3)])
        .await
        .unwrap();
    assert!(
        jobs.get(first).await.unwrap().is_none(),
        "not visible before the commit"
    );
    tx.commit().await.unwrap();
    assert!(jobs.get(first).await.unwrap().is_some());

    eventually("the committed jobs to succeed", DEADLINE, || async {
        (schema.count_state("succeeded").await == 3).then_some(())
    })
    .await;
    server.shutdown().await;
    for id in [first, second, more[0]] {
        let job = jobs.get(id).await.unwrap().unwrap().job;
        assert_eq!(job.state, JobState::Succeeded);
    }
    let effects: Vec<i32> = sqlx::query_scalar(&format!(
        "SELECT n FROM {} WHERE name = 'typed' ORDER BY n",
        schema.table("effects")
    ))
    .fetch_all(&schema.admin)
    .await
    .unwrap();
    assert_eq!(effects, vec![1, 2, 3]);
    schema.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typed_enqueue_in_a_rolled_back_transaction_leaves_no_job() {
    let (schema, store, jobs) = setup().await;
    let mut tx = store.pool().begin().await.unwrap();
    let first = RecordTypedEffect::new(1)
        .enqueue_in(&jobs, &mut tx)
        .await
        .unwrap();
    let second = jobs
        .enqueue_in(&mut tx, RecordTypedEffect::new(2))
        .await
        .unwrap();
    tx.rollback().await.unwrap();

    assert!(jobs.get(first).await.unwrap().is_none());
    assert!(jobs.get(second).await.unwrap().is_none());
    let rows = schema
        .scalar(&format!("SELECT count(*) FROM {}", schema.table("jobs")))
        .await;
    assert_eq!(rows, 0);
    schema.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typed_enqueue_in_through_jobs_on_another_store_fails_saying_what_to_use() {
    let (schema, store, _jobs) = setup().await;
    let memory = Jobs::new(MemoryStore::new());
    let mut tx = store.pool().begin().await.unwrap();
    let error = RecordTypedEffect::new(1)
        .enqueue_in(&memory, &mut tx)
        .await
        .unwrap_err();
    assert!(
        matches!(error, jobs::postgres::Error::NotPgStore),
        "{error}"
    );
    let message = error.to_string();
    assert!(message.contains("Jobs::new(pg_store)"), "{message}");
    let error = memory
        .enqueue_in(&mut tx, RecordTypedEffect::new(2))
        .await
        .unwrap_err();
    assert!(matches!(error, jobs::postgres::Error::NotPgStore));
    tx.commit().await.unwrap();
    assert!(memory.pg_store().is_err());
    let rows = schema
        .scalar(&format!("SELECT count(*) FROM {}", schema.table("jobs")))
        .await;
    assert_eq!(rows, 0, "nothing was inserted anywhere");
    assert!(memory.list(jobs::ListJobs::new()).await.unwrap().is_empty());
    schema.drop().await;
}

#[job(queue = "it_tx_complete")]
async fn transfer(
    n: i32,
    store: State<PgStore>,
    db: State<PgPool>,
    ctx: JobContext,
) -> anyhow::Result<()> {
    let mut tx = db.0.begin().await?;
    effect(&mut tx, &store.0, "transfer", n, ctx.attempt()).await?;
    store.0.complete_in(&mut tx, &ctx).await?;
    tx.commit().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_completed_in_its_transaction_commits_effect_and_outcome_together() {
    const JOBS: i32 = 20;
    let (schema, store, jobs) = setup().await;
    let server = start(&store, "it_tx_complete").await;
    let ids = jobs
        .enqueue_many((0..JOBS).map(Transfer::new))
        .await
        .unwrap();
    eventually("every job to succeed", DEADLINE, || async {
        (schema.count_state("succeeded").await == i64::from(JOBS)).then_some(())
    })
    .await;
    server.shutdown().await;

    for id in ids {
        let detail = jobs.get(id).await.unwrap().unwrap();
        assert_eq!(detail.job.attempt, 1);
        let succeeded: Vec<_> = detail
            .history
            .iter()
            .filter(|e| e.state == jobs::JobState::Succeeded)
            .collect();
        assert_eq!(succeeded.len(), 1, "one outcome: {:?}", detail.history);
        assert!(
            succeeded[0].server_id.is_some(),
            "the event names the server"
        );
    }
    let effects = schema
        .scalar(&format!(
            "SELECT count(DISTINCT n) FROM {} WHERE name = 'transfer'",
            schema.table("effects")
        ))
        .await;
    assert_eq!(effects, i64::from(JOBS));
    assert_eq!(
        schema
            .scalar(&format!("SELECT count(*) FROM {}", schema.table("effects")))
            .await,
        i64::from(JOBS),
        "each effect committed once"
    );
    let counted: Vec<(String, i64)> = sqlx::query_as(&format!(
        "SELECT state, sum(n)::int8 FROM {} GROUP BY state",
        schema.table("job_counts")
    ))
    .fetch_all(&schema.admin)
    .await
    .unwrap();
    assert_eq!(
        counted,
        vec![("succeeded".to_owned(), i64::from(JOBS))],
        "the counters count each success once"
    );
    schema.drop().await;
}

#[job(queue = "it_tx_stale", max_attempts = 5)]
async fn stale_transfer(
    n: i32,
    store: State<PgStore>,
    db: State<PgPool>,
    ctx: JobContext,
) -> anyhow::Result<()> {
    let mut tx = db.0.begin().await?;
    effect(&mut tx, &store.0, "stale", n, ctx.attempt()).await?;
    if ctx.attempt() == 1 {
        // What a rescue and another server's claim do while this attempt
        // still runs: the job moves on to attempt 2 under a new claim.
        sqlx::query(&format!(
            "UPDATE \"{}\".jobs SET attempt = attempt + 1, claim_token = claim_token + 1 WHERE id = $1",
            store.0.schema()
        ))
        .bind(ctx.id().0)
        .execute(&db.0)
        .await?;
        let error = store
            .0
            .complete_in(&mut tx, &ctx)
            .await
            .expect_err("a stale attempt cannot complete");
        assert_eq!(error.kind(), StoreErrorKind::Conflict);
        tx.rollback().await?;
        return Err(error.into());
    }
    store.0.complete_in(&mut tx, &ctx).await?;
    tx.commit().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_attempt_cannot_complete_in_its_transaction() {
    let (schema, store, jobs) = setup().await;
    let server = start(&store, "it_tx_stale").await;
    let id = jobs.enqueue(StaleTransfer::new(7)).await.unwrap();
    // The "other server" of attempt 2 never runs it: the lease expires, the
    // job is rescued and runs as attempt 3.
    eventually("the job to succeed", DEADLINE, || async {
        (schema.count_state("succeeded").await == 1).then_some(())
    })
    .await;
    server.shutdown().await;

    let detail = jobs.get(id).await.unwrap().unwrap();
    assert_eq!(detail.job.attempt, 3);
    let effects: Vec<i32> = sqlx::query_scalar(&format!(
        "SELECT attempt FROM {} WHERE name = 'stale'",
        schema.table("effects")
    ))
    .fetch_all(&schema.admin)
    .await
    .unwrap();
    assert_eq!(
        effects,
        vec![3],
        "the stale attempt's effects rolled back; the current one's committed"
    );
    schema.drop().await;
}

//! Faults that used to run a healthy job twice or leave it stuck without a
//! sound, on PostgreSQL: a job that blocks its thread beside normal ones, a
//! pool smaller than the jobs' demand, and a PostgreSQL outage (on a
//! cluster of the test's own, on another port, so that no other test is
//! disturbed).

#![cfg(feature = "postgres")]

mod pg_support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use jobs::postgres::{PgStore, PgStoreOptions};
use jobs::{job, JobState, Jobs, Server, State};
use pg_support::{eventually, OwnCluster, TestSchema};
use sqlx::PgPool;

const DEADLINE: Duration = Duration::from_secs(60);

fn sum(counters: &[AtomicU32]) -> u32 {
    counters.iter().map(|c| c.load(Ordering::SeqCst)).sum()
}

// ---- a job that blocks its thread beside normal ones

static BLOCKING_RUNS: AtomicU32 = AtomicU32::new(0);
static NORMAL_RUNS: [AtomicU32; 20] = [const { AtomicU32::new(0) }; 20];

#[job(queue = "rel_blocking", timeout = "500ms", max_attempts = 1)]
async fn rel_blocks(n: u32) -> anyhow::Result<()> {
    let _ = n;
    BLOCKING_RUNS.fetch_add(1, Ordering::SeqCst);
    // A blocking call inside an async job: it holds its worker thread.
    std::thread::sleep(Duration::from_secs(4));
    Ok(())
}

#[job(queue = "rel_blocking")]
async fn rel_normal(n: usize) -> anyhow::Result<()> {
    NORMAL_RUNS[n].fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_job_beside_normal_ones_runs_once_and_is_reported_stuck() {
    let schema = TestSchema::new().await;
    let store = schema.store("rel_blocking").await;
    let jobs = Jobs::new(store.clone());
    let server = |store: &PgStore| {
        Server::builder(store.clone())
            .queues(["rel_blocking"])
            .concurrency(4)
            .lease(Duration::from_secs(1))
            .rescue_interval(Duration::from_millis(200))
            .cancel_grace(Duration::from_millis(200))
    };
    let first = server(&store).start().await.unwrap();
    let second = server(&store).start().await.unwrap();
    let blocking = RelBlocks::enqueue(&jobs, 0).await.unwrap();
    for n in 0..NORMAL_RUNS.len() {
        RelNormal::enqueue(&jobs, n).await.unwrap();
    }

    let stuck = eventually("the blocking job reported stuck", DEADLINE, || async {
        let d = jobs.get(blocking).await.unwrap().unwrap();
        d.job.stuck_since.is_some().then_some(d)
    })
    .await;
    assert_eq!(stuck.job.state, JobState::Processing);
    eventually("the normal jobs done", DEADLINE, || async {
        (sum(&NORMAL_RUNS) as usize >= NORMAL_RUNS.len()).then_some(())
    })
    .await;
    let ended = eventually("the blocking job ended", DEADLINE, || async {
        let d = jobs.get(blocking).await.unwrap().unwrap();
        d.job.state.is_finished().then_some(d)
    })
    .await;
    first.shutdown().await;
    second.shutdown().await;

    assert_eq!(ended.job.state, JobState::Failed);
    let error = ended.job.last_error.unwrap();
    assert!(error.starts_with("timed out after 500ms"), "{error}");
    assert!(
        ended
            .history
            .iter()
            .any(|e| e.error.as_deref().is_some_and(|e| e.starts_with("stuck:"))),
        "{:?}",
        ended.history
    );
    assert_eq!(BLOCKING_RUNS.load(Ordering::SeqCst), 1, "run twice");
    for (n, runs) in NORMAL_RUNS.iter().enumerate() {
        assert_eq!(runs.load(Ordering::SeqCst), 1, "normal job {n}");
    }
    schema.drop().await;
}

// ---- a pool smaller than the jobs' demand

static POOL_RUNS: [AtomicU32; 6] = [const { AtomicU32::new(0) }; 6];

/// Holds a connection of the store's own pool (as the README's axum example
/// hands it to jobs) for longer than the lease.
#[job(queue = "rel_pool")]
async fn rel_holds_connection(n: usize, db: State<PgPool>) -> anyhow::Result<()> {
    let mut conn = db.0.acquire().await?;
    POOL_RUNS[n].fetch_add(1, Ordering::SeqCst);
    sqlx::query("SELECT pg_sleep(3)")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_smaller_than_the_jobs_demand_does_not_run_a_job_twice() {
    let schema = TestSchema::new().await;
    let store = PgStore::connect_with(
        &pg_support::url_with_app("rel_pool"),
        PgStoreOptions::new()
            .schema(schema.name.clone())
            .max_connections(2),
    )
    .await
    .unwrap();
    let jobs = Jobs::new(store.clone());
    for n in 0..POOL_RUNS.len() {
        RelHoldsConnection::enqueue(&jobs, n).await.unwrap();
    }
    let server = Server::builder(store.clone())
        .queues(["rel_pool"])
        .concurrency(POOL_RUNS.len())
        .state(store.pool().clone())
        .lease(Duration::from_secs(1))
        .rescue_interval(Duration::from_millis(200))
        .start()
        .await
        .unwrap();
    eventually("every job done", DEADLINE, || async {
        let done = schema.count_state("succeeded").await;
        (done as usize == POOL_RUNS.len()).then_some(())
    })
    .await;
    server.shutdown().await;
    for (n, runs) in POOL_RUNS.iter().enumerate() {
        assert_eq!(runs.load(Ordering::SeqCst), 1, "job {n} ran more than once");
    }
    schema.drop().await;
}

// ---- a PostgreSQL outage

static OUTAGE_RUNS: [AtomicU32; 6] = [const { AtomicU32::new(0) }; 6];

#[job(queue = "rel_outage")]
async fn rel_outlives_outage(n: usize) -> anyhow::Result<()> {
    OUTAGE_RUNS[n].fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(10)).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_outage_live_servers_renew_before_anyone_rescues() {
    let cluster = OwnCluster::create(&format!("jobs_outage_{}", std::process::id()), 5491);
    let store = PgStore::connect(&cluster.url("rel_outage")).await.unwrap();
    let jobs = Jobs::new(store.clone());
    let server = || {
        Server::builder(store.clone())
            .queues(["rel_outage"])
            .lease(Duration::from_secs(2))
            .rescue_interval(Duration::from_millis(300))
            .start()
    };
    let first = server().await.unwrap();
    let second = server().await.unwrap();
    for n in 0..OUTAGE_RUNS.len() {
        RelOutlivesOutage::enqueue(&jobs, n).await.unwrap();
    }
    eventually("every job started", DEADLINE, || async {
        (sum(&OUTAGE_RUNS) as usize == OUTAGE_RUNS.len()).then_some(())
    })
    .await;

    // Longer than the lease: every lease expires during the outage.
    cluster.stop();
    tokio::time::sleep(Duration::from_secs(4)).await;
    cluster.start();

    eventually("every job done", DEADLINE, || async {
        let counts = jobs.counts().await.ok()?;
        let done: i64 = counts
            .iter()
            .filter(|c| c.state == JobState::Succeeded)
            .map(|c| c.count)
            .sum();
        (done as usize == OUTAGE_RUNS.len()).then_some(())
    })
    .await;
    first.shutdown().await;
    second.shutdown().await;
    for (n, runs) in OUTAGE_RUNS.iter().enumerate() {
        assert_eq!(runs.load(Ordering::SeqCst), 1, "job {n} ran twice");
    }
    store.pool().close().await;
}

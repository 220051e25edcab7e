//! Servers in separate OS processes on one PostgreSQL schema: every job runs
//! exactly once across three processes, the jobs of a process killed with
//! SIGKILL mid-job run again on another process and complete, and a
//! queue's concurrency and rate limits hold across three processes.
//!
//! The worker processes are this test executable itself: the parent starts
//! it again with `--exact worker_process_entry` and the `JOBS_IT_WORKER_*`
//! variables, and `worker_process_entry` then runs a `Server` until it is
//! killed (without them it returns at once). Jobs record each run in a
//! `runs` table of the test's schema through an injected pool; only worker
//! processes start servers, and each is given that pool.

#![cfg(feature = "postgres")]

mod pg_support;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use jobs::postgres::{PgStore, PgStoreOptions};
use jobs::{job, JobContext, Jobs, Server, State};
use pg_support::{assert_no_deadlocks_since, deadlocks, eventually, TestSchema};
use sqlx::PgPool;

const DEADLINE: Duration = Duration::from_secs(60);
/// The workers' lease and rescue interval: a dead worker's jobs are runnable
/// again within `LEASE + RESCUE_INTERVAL` (3 s).
const LEASE: Duration = Duration::from_secs(2);
const RESCUE_INTERVAL: Duration = Duration::from_secs(1);

const ENV_SCHEMA: &str = "JOBS_IT_WORKER_SCHEMA";
/// The database URL of the worker's store, with its `application_name`.
const ENV_URL: &str = "JOBS_IT_WORKER_URL";
const ENV_QUEUE: &str = "JOBS_IT_WORKER_QUEUE";

/// Records one phase of a run in the test schema's `runs` table.
async fn record(db: &PgPool, n: i32, ctx: &JobContext, phase: &str) -> anyhow::Result<()> {
    let schema = std::env::var(ENV_SCHEMA)?;
    sqlx::query(&format!(
        "INSERT INTO \"{schema}\".runs (n, job_id, pid, attempt, phase) VALUES ($1, $2, $3, $4, $5)"
    ))
    .bind(n)
    .bind(ctx.id().0)
    .bind(i64::from(std::process::id()))
    .bind(ctx.attempt())
    .bind(phase)
    .execute(db)
    .await?;
    Ok(())
}

#[job(queue = "it_proc_once")]
async fn record_run(n: i32, db: State<PgPool>, ctx: JobContext) -> anyhow::Result<()> {
    record(&db.0, n, &ctx, "done").await
}

/// Takes three seconds: long enough to kill its process mid-job.
#[job(queue = "it_proc_slow")]
async fn slow_run(n: i32, db: State<PgPool>, ctx: JobContext) -> anyhow::Result<()> {
    record(&db.0, n, &ctx, "start").await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    record(&db.0, n, &ctx, "done").await
}

/// Takes a little while, so that runs overlap when nothing limits them.
#[job(queue = "it_proc_limited")]
async fn limited_run(n: i32, db: State<PgPool>, ctx: JobContext) -> anyhow::Result<()> {
    record(&db.0, n, &ctx, "start").await?;
    tokio::time::sleep(Duration::from_millis(40)).await;
    record(&db.0, n, &ctx, "done").await
}

/// Quick: a rate limit, not the work, sets the pace.
#[job(queue = "it_proc_rated")]
async fn rated_run(n: i32, db: State<PgPool>, ctx: JobContext) -> anyhow::Result<()> {
    record(&db.0, n, &ctx, "done").await
}

/// The body of a worker process; returns at once in a normal test run.
#[test]
fn worker_process_entry() {
    let (Ok(schema), Ok(url), Ok(queue)) = (
        std::env::var(ENV_SCHEMA),
        std::env::var(ENV_URL),
        std::env::var(ENV_QUEUE),
    ) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let store = PgStore::connect_with(&url, PgStoreOptions::new().schema(schema))
            .await
            .expect("worker: a store");
        let pool = store.pool().clone();
        let _server = Server::builder(store)
            .state(pool)
            .queues([queue])
            .concurrency(8)
            .lease(LEASE)
            .rescue_interval(RESCUE_INTERVAL)
            .heartbeat_interval(Duration::from_secs(1))
            .poll_interval(Duration::from_millis(100))
            .start()
            .await
            .expect("worker: a server");
        // Runs until the parent kills the process.
        std::future::pending::<()>().await;
    });
}

/// A worker process, killed (SIGKILL) and reaped when dropped.
struct Worker {
    child: Child,
}

impl Worker {
    fn spawn(schema: &TestSchema, name: &str, queue: &str) -> Self {
        let child = Command::new(std::env::current_exe().expect("the test executable"))
            .args([
                "--exact",
                "worker_process_entry",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ENV_SCHEMA, &schema.name)
            .env(
                ENV_URL,
                schema.url_with_app(&format!("{}_{name}", schema.name)),
            )
            .env(ENV_QUEUE, queue)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("a worker process");
        Self { child }
    }

    fn pid(&self) -> i64 {
        i64::from(self.child.id())
    }

    /// SIGKILL: the process gets no chance to hand anything back.
    fn kill(mut self) {
        self.child.kill().expect("killing the worker");
        self.child.wait().expect("reaping the worker");
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The test's schema, migrated, with a `runs` table, and a client on it.
async fn setup() -> (TestSchema, Jobs) {
    setup_on(TestSchema::new().await).await
}

/// [`setup`] on this schema.
async fn setup_on(schema: TestSchema) -> (TestSchema, Jobs) {
    let store = schema.store(&format!("{}_client", schema.name)).await;
    sqlx::query(&format!(
        "CREATE TABLE {} (id bigserial PRIMARY KEY, n int4 NOT NULL, job_id int8 NOT NULL,
                          pid int8 NOT NULL, attempt int4 NOT NULL, phase text NOT NULL,
                          at timestamptz NOT NULL DEFAULT now())",
        schema.table("runs")
    ))
    .execute(&schema.admin)
    .await
    .unwrap();
    (schema, Jobs::new(store))
}

async fn wait_for_servers(jobs: &Jobs, n: usize) {
    eventually("the worker processes to start", DEADLINE, || async {
        (jobs.servers().await.ok()?.len() >= n).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_run_each_of_1000_jobs_exactly_once() {
    const JOBS: i32 = 1000;
    let (schema, jobs) = setup().await;
    let workers: Vec<Worker> = (0..3)
        .map(|i| Worker::spawn(&schema, &format!("w{i}"), "it_proc_once"))
        .collect();
    wait_for_servers(&jobs, 3).await;

    jobs.enqueue_many((0..JOBS).map(RecordRun::new))
        .await
        .unwrap();
    eventually("every job to succeed", DEADLINE, || async {
        (schema.count_state("succeeded").await == i64::from(JOBS)).then_some(())
    })
    .await;
    let pids: Vec<i64> = workers.iter().map(Worker::pid).collect();
    for worker in workers {
        worker.kill();
    }

    let runs = schema.table("runs");
    let per_job: Vec<(i32, i64)> = sqlx::query_as(&format!(
        "SELECT n, count(*) FROM {runs} GROUP BY n HAVING count(*) <> 1 ORDER BY n LIMIT 10"
    ))
    .fetch_all(&schema.admin)
    .await
    .unwrap();
    assert!(
        per_job.is_empty(),
        "jobs not run exactly once (n, runs): {per_job:?}"
    );
    assert_eq!(
        schema
            .scalar(&format!("SELECT count(DISTINCT n) FROM {runs}"))
            .await,
        i64::from(JOBS)
    );
    assert_eq!(
        schema
            .scalar(&format!(
                "SELECT count(*) FROM {} WHERE state = 'succeeded' AND attempt = 1",
                schema.table("jobs")
            ))
            .await,
        i64::from(JOBS),
        "every job succeeded at its first attempt"
    );
    let per_pid: BTreeMap<i64, i64> =
        sqlx::query_as(&format!("SELECT pid, count(*) FROM {runs} GROUP BY pid"))
            .fetch_all(&schema.admin)
            .await
            .unwrap()
            .into_iter()
            .collect();
    assert!(
        per_pid.keys().all(|pid| pids.contains(pid)),
        "only the worker processes ran jobs: {per_pid:?} vs {pids:?}"
    );
    assert!(
        per_pid.len() >= 2,
        "several processes shared the work: {per_pid:?}"
    );
    println!("runs per worker process: {per_pid:?}");
    schema.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_of_a_sigkilled_process_run_again_on_another_and_complete() {
    const JOBS: i32 = 4;
    // A database of its own: the deadlock counter is per database.
    let (schema, jobs) = setup_on(TestSchema::in_own_database().await).await;
    let deadlocks_before = deadlocks(&schema).await;
    let doomed = Worker::spawn(&schema, "doomed", "it_proc_slow");
    let doomed_pid = doomed.pid();
    wait_for_servers(&jobs, 1).await;
    let ids = jobs
        .enqueue_many((0..JOBS).map(SlowRun::new))
        .await
        .unwrap();

    let runs = schema.table("runs");
    eventually(
        "every job to be running in the doomed process",
        DEADLINE,
        || async {
            let started = schema
                .scalar(&format!(
                "SELECT count(DISTINCT n) FROM {runs} WHERE phase = 'start' AND pid = {doomed_pid}"
            ))
                .await;
            (started == i64::from(JOBS)).then_some(())
        },
    )
    .await;
    doomed.kill();
    let killed_at: jobs::Timestamp = sqlx::query_scalar("SELECT now()")
        .fetch_one(&schema.admin)
        .await
        .unwrap();
    assert_eq!(
        schema.count_state("processing").await,
        i64::from(JOBS),
        "the killed process still holds its leases"
    );

    let survivor = Worker::spawn(&schema, "survivor", "it_proc_slow");
    let survivor_pid = survivor.pid();
    eventually(
        "every job to succeed on the surviving process",
        DEADLINE,
        || async { (schema.count_state("succeeded").await == i64::from(JOBS)).then_some(()) },
    )
    .await;
    survivor.kill();

    let mut rescued_after = Vec::new();
    for id in ids {
        let detail = jobs.get(id).await.unwrap().expect("the job");
        assert_eq!(detail.job.attempt, 2, "job {id}: run again once");
        let rescue = detail
            .history
            .iter()
            .find(|e| {
                e.error
                    .as_deref()
                    .is_some_and(|e| e.starts_with("lease expired"))
            })
            .unwrap_or_else(|| {
                panic!(
                    "job {id}: the history shows the rescue: {:?}",
                    detail.history
                )
            });
        rescued_after.push((rescue.at - killed_at).num_milliseconds());
    }
    let done: Vec<(i32, i64)> = sqlx::query_as(&format!(
        "SELECT n, pid FROM {runs} WHERE phase = 'done' ORDER BY n"
    ))
    .fetch_all(&schema.admin)
    .await
    .unwrap();
    assert_eq!(
        done,
        (0..JOBS).map(|n| (n, survivor_pid)).collect::<Vec<_>>(),
        "each job completed once, on the surviving process"
    );
    println!(
        "rescued {:?} ms after the SIGKILL (bound: lease {LEASE:?} + rescue interval {RESCUE_INTERVAL:?}, \
         plus the survivor's start-up)",
        rescued_after
    );
    // Regression (reliability issue, deadlocks between a server's own
    // statements): a server's renewal and completions deadlocked under load.
    if let Some(store) = jobs.store_as::<PgStore>() {
        store.close().await;
    }
    drop(jobs);
    assert_no_deadlocks_since(&schema, deadlocks_before).await;
    schema.drop().await;
}

/// The most runs of the test's `runs` table that were between their start
/// and their end at one instant. Each run's recorded span lies inside its
/// claim's (recorded after the claim, before the completion), so a count
/// above a limit is a breach of it.
async fn most_overlapping_runs(schema: &TestSchema) -> i64 {
    let runs = schema.table("runs");
    schema
        .scalar(&format!(
            "WITH s AS (
                SELECT job_id, attempt,
                       min(at) FILTER (WHERE phase = 'start') AS started,
                       max(at) FILTER (WHERE phase = 'done') AS done
                FROM {runs} GROUP BY job_id, attempt
            )
            SELECT coalesce(max((SELECT count(*) FROM s o
                                 WHERE o.started <= s.started AND o.done > s.started)), 0)
            FROM s"
        ))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrency_limit_holds_across_three_processes() {
    const JOBS: i32 = 120;
    const LIMIT: u32 = 4;
    let (schema, jobs) = setup().await;
    jobs.queues()
        .set_limits(
            "it_proc_limited",
            jobs::QueueLimits::none().concurrency(LIMIT),
        )
        .await
        .unwrap();
    // Three processes of 8 slots each: 24 places, of which the limit leaves 4.
    let workers: Vec<Worker> = (0..3)
        .map(|i| Worker::spawn(&schema, &format!("w{i}"), "it_proc_limited"))
        .collect();
    wait_for_servers(&jobs, 3).await;
    jobs.enqueue_many((0..JOBS).map(LimitedRun::new))
        .await
        .unwrap();
    eventually("every limited job to succeed", DEADLINE, || async {
        (schema.count_state("succeeded").await == i64::from(JOBS)).then_some(())
    })
    .await;
    for worker in workers {
        worker.kill();
    }
    let most = most_overlapping_runs(&schema).await;
    assert!(
        most <= i64::from(LIMIT),
        "{most} jobs of the queue ran at once across the processes; the limit is {LIMIT}"
    );
    let processes = schema
        .scalar(&format!(
            "SELECT count(DISTINCT pid) FROM {}",
            schema.table("runs")
        ))
        .await;
    assert!(processes >= 2, "several processes shared the work");
    println!("at most {most} running at once (limit {LIMIT}) on {processes} processes");
    schema.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_holds_across_three_processes() {
    const JOBS: i32 = 30;
    let rate = jobs::RateLimit::new(10, Duration::from_secs(1));
    let (schema, jobs) = setup().await;
    jobs.queues()
        .set_limits("it_proc_rated", jobs::QueueLimits::none().rate(rate))
        .await
        .unwrap();
    let workers: Vec<Worker> = (0..3)
        .map(|i| Worker::spawn(&schema, &format!("w{i}"), "it_proc_rated"))
        .collect();
    wait_for_servers(&jobs, 3).await;
    jobs.enqueue_many((0..JOBS).map(RatedRun::new))
        .await
        .unwrap();
    eventually("every rated job to succeed", DEADLINE, || async {
        (schema.count_state("succeeded").await == i64::from(JOBS)).then_some(())
    })
    .await;
    for worker in workers {
        worker.kill();
    }
    // The claims' own times, on the database's clock: no window of the
    // period holds more starts than the rate.
    let events = schema.table("job_events");
    let most_in_a_period = schema
        .scalar(&format!(
            "SELECT max((SELECT count(*) FROM {events} o
                         WHERE o.state = 'processing' AND o.at >= e.at
                           AND o.at < e.at + interval '1 second'))
            FROM {events} e WHERE e.state = 'processing'"
        ))
        .await;
    assert!(
        most_in_a_period <= i64::from(rate.jobs),
        "{most_in_a_period} jobs started within one second; the rate is {} per second",
        rate.jobs
    );
    let spread_ms = schema
        .scalar(&format!(
            "SELECT (extract(epoch FROM max(at) - min(at)) * 1000)::int8 FROM {events}
             WHERE state = 'processing'"
        ))
        .await;
    assert!(
        spread_ms >= 2000,
        "30 starts at 10 per second take at least two periods, not {spread_ms} ms"
    );
    println!("at most {most_in_a_period} starts in any second; spread over {spread_ms} ms");
    schema.drop().await;
}

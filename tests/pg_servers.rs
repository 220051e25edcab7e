//! Several `Server`s in one process on one PostgreSQL schema: every job runs
//! exactly once when nothing fails; a graceful shutdown hands running jobs
//! back and another server finishes them; killed connections lose nothing
//! (and PostgreSQL detects no deadlock meanwhile); a cancel from another
//! process reaches a running job at once; a recurring schedule fires once
//! per tick across three servers; jobs no running server can take wait and
//! are listed as stranded.
//!
//! Each test has its own schema (dropped at the end) and its own queue and
//! job, so the tests run in parallel. No job here takes a `State<T>`: every
//! `#[job]` of this binary is registered with every server.

#![cfg(feature = "postgres")]

mod pg_support;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use jobs::postgres::PgStore;
use jobs::{
    job, CancelOutcome, JobContext, JobState, Jobs, Misfire, RecurringOptions, Server,
    ServerBuilder, StrandedReason, Timestamp,
};
use pg_support::{
    assert_no_deadlocks_since, deadlocks, eventually, terminate_backends, TestSchema,
};

const DEADLINE: Duration = Duration::from_secs(60);

/// A server on `queue` that polls often (tests should not wait on idle polls).
fn server(store: &PgStore, queue: &str, concurrency: usize) -> ServerBuilder {
    Server::builder(store.clone())
        .queues([queue])
        .concurrency(concurrency)
        .poll_interval(Duration::from_millis(100))
}

fn sum(counters: &[AtomicU32]) -> u64 {
    counters
        .iter()
        .map(|c| u64::from(c.load(Ordering::SeqCst)))
        .sum()
}

// ----------------------------------------------------------- exactly once

const ONCE_JOBS: usize = 3000;
static ONCE_RUNS: [AtomicU32; ONCE_JOBS] = [const { AtomicU32::new(0) }; ONCE_JOBS];

#[job(queue = "it_once")]
async fn count_once(n: u32) -> anyhow::Result<()> {
    ONCE_RUNS[n as usize].fetch_add(1, Ordering::SeqCst);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_servers_run_each_of_3000_jobs_exactly_once() {
    let schema = TestSchema::new().await;
    let mut stores = Vec::new();
    for i in 0..3 {
        stores.push(schema.store(&format!("{}_s{i}", schema.name)).await);
    }
    let jobs = Jobs::new(stores[0].clone());
    let mut servers = Vec::new();
    for store in &stores {
        servers.push(server(store, "it_once", 16).start().await.unwrap());
    }

    for chunk in (0..ONCE_JOBS as u32).collect::<Vec<_>>().chunks(1000) {
        jobs.enqueue_many(chunk.iter().map(|&n| CountOnce::new(n)))
            .await
            .unwrap();
    }
    eventually("every job to succeed", DEADLINE, || async {
        (schema.count_state("succeeded").await == ONCE_JOBS as i64).then_some(())
    })
    .await;
    for server in servers {
        server.shutdown().await;
    }

    let runs: Vec<u32> = ONCE_RUNS.iter().map(|c| c.load(Ordering::SeqCst)).collect();
    let wrong: Vec<(usize, u32)> = runs
        .iter()
        .enumerate()
        .filter(|(_, &r)| r != 1)
        .map(|(n, &r)| (n, r))
        .take(10)
        .collect();
    assert!(
        wrong.is_empty(),
        "jobs that did not run exactly once (n, runs): {wrong:?}"
    );
    let jobs_table = schema.table("jobs");
    let events = schema.table("job_events");
    assert_eq!(
        schema
            .scalar(&format!(
                "SELECT count(*) FROM {jobs_table} WHERE state = 'succeeded' AND attempt = 1"
            ))
            .await,
        ONCE_JOBS as i64,
        "every job succeeded at its first attempt"
    );
    assert_eq!(
        schema
            .scalar(&format!(
                "SELECT count(*) FROM {events} WHERE state = 'processing'"
            ))
            .await,
        ONCE_JOBS as i64,
        "every job was claimed exactly once"
    );
    let per_server: Vec<i64> = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM {events} WHERE state = 'processing' GROUP BY server_id ORDER BY 1"
    ))
    .fetch_all(&schema.admin)
    .await
    .unwrap();
    println!("jobs claimed per server: {per_server:?}");
    schema.drop().await;
}

// ------------------------------------------------------ graceful shutdown

const HANDBACK_JOBS: usize = 100;
static HANDBACK_STARTS: [AtomicU32; HANDBACK_JOBS] = [const { AtomicU32::new(0) }; HANDBACK_JOBS];
static HANDBACK_DONE: [AtomicU32; HANDBACK_JOBS] = [const { AtomicU32::new(0) }; HANDBACK_JOBS];

/// Takes 400 ms, and stops early when asked to.
#[job(queue = "it_handback")]
async fn slow_handback(n: u32, ctx: JobContext) -> anyhow::Result<()> {
    HANDBACK_STARTS[n as usize].fetch_add(1, Ordering::SeqCst);
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_millis(400)) => {}
        _ = ctx.cancelled() => anyhow::bail!("stopped before finishing"),
    }
    HANDBACK_DONE[n as usize].fetch_add(1, Ordering::SeqCst);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn graceful_shutdown_hands_running_jobs_back_and_another_server_finishes_them() {
    let schema = TestSchema::new().await;
    let store = schema.store(&format!("{}_a", schema.name)).await;
    let jobs = Jobs::new(store.clone());
    let first = server(&store, "it_handback", 10)
        .shutdown_timeout(Duration::from_millis(100))
        .cancel_grace(Duration::from_secs(2))
        .start()
        .await
        .unwrap();
    jobs.enqueue_many((0..HANDBACK_JOBS as u32).map(SlowHandback::new))
        .await
        .unwrap();

    // Mid-run: some finished, others running.
    eventually("the first jobs to finish", DEADLINE, || async {
        let running = sum(&HANDBACK_STARTS) > sum(&HANDBACK_DONE);
        (sum(&HANDBACK_DONE) >= 10 && running).then_some(())
    })
    .await;
    first.shutdown().await;

    // Handed back at once: nothing is left leased to the stopped server.
    assert_eq!(schema.count_state("processing").await, 0);
    let released = schema
        .scalar(&format!(
            "SELECT count(DISTINCT job_id) FROM {} WHERE state = 'enqueued' AND error LIKE '%shut down%'",
            schema.table("job_events")
        ))
        .await;
    assert!(released >= 1, "the shutdown handed running jobs back");

    let other = schema.store(&format!("{}_b", schema.name)).await;
    let second = server(&other, "it_handback", 10).start().await.unwrap();
    eventually("every job to succeed", DEADLINE, || async {
        (schema.count_state("succeeded").await == HANDBACK_JOBS as i64).then_some(())
    })
    .await;
    second.shutdown().await;

    for (n, done) in HANDBACK_DONE.iter().enumerate() {
        assert_eq!(done.load(Ordering::SeqCst), 1, "job {n} finished once");
    }
    assert_eq!(
        schema
            .scalar(&format!(
                "SELECT count(*) FROM {} WHERE state = 'succeeded' AND attempt = 1",
                schema.table("jobs")
            ))
            .await,
        HANDBACK_JOBS as i64,
        "a hand-back does not spend an attempt"
    );
    println!(
        "{released} jobs handed back at shutdown; {} starts for {HANDBACK_JOBS} jobs",
        sum(&HANDBACK_STARTS)
    );
    schema.drop().await;
}

// ---------------------------------------------------- killed connections

const FAULT_JOBS: usize = 2000;
static FAULT_RUNS: [AtomicU32; FAULT_JOBS] = [const { AtomicU32::new(0) }; FAULT_JOBS];

#[job(queue = "it_faults")]
async fn count_under_faults(n: u32) -> anyhow::Result<()> {
    FAULT_RUNS[n as usize].fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(5)).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_connections_of_every_server_lose_no_job() {
    // A database of its own: the deadlock counter is per database.
    let schema = TestSchema::in_own_database().await;
    let deadlocks_before = deadlocks(&schema).await;
    let apps: Vec<String> = (0..3).map(|i| format!("{}_k{i}", schema.name)).collect();
    let mut stores = Vec::new();
    for app in &apps {
        stores.push(schema.store(app).await);
    }
    let jobs = Jobs::new(stores[0].clone());
    let mut servers = Vec::new();
    for store in &stores {
        let handle = server(store, "it_faults", 8)
            .lease(Duration::from_secs(3))
            .rescue_interval(Duration::from_secs(1))
            .heartbeat_interval(Duration::from_secs(1))
            .store_timeout(Duration::from_secs(5))
            .start()
            .await
            .unwrap();
        servers.push(handle);
    }
    jobs.enqueue_many((0..FAULT_JOBS as u32).map(CountUnderFaults::new))
        .await
        .unwrap();

    // Kill every connection of one server after another, then of all three
    // at once, while they work.
    let mut killed = 0;
    let mut rounds = 0;
    while rounds < 9 && schema.count_state("succeeded").await < FAULT_JOBS as i64 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if rounds % 4 == 3 {
            for app in &apps {
                killed += terminate_backends(&schema.admin, app).await;
            }
        } else {
            killed += terminate_backends(&schema.admin, &apps[rounds % 3]).await;
        }
        rounds += 1;
    }
    eventually(
        "every job to succeed despite the faults",
        DEADLINE,
        || async { (schema.count_state("succeeded").await == FAULT_JOBS as i64).then_some(()) },
    )
    .await;
    for server in servers {
        server.shutdown().await;
    }
    assert!(
        killed > 0,
        "the test killed connections while servers worked"
    );
    // Regression (reliability issue, deadlocks between a server's own
    // statements): a server's renewal and completions deadlocked under load.
    drop(jobs);
    for store in stores {
        store.close().await;
    }
    assert_no_deadlocks_since(&schema, deadlocks_before).await;

    let runs: Vec<u32> = FAULT_RUNS
        .iter()
        .map(|c| c.load(Ordering::SeqCst))
        .collect();
    let never: Vec<usize> = (0..FAULT_JOBS).filter(|&n| runs[n] == 0).collect();
    assert!(never.is_empty(), "jobs that never ran: {never:?}");
    // At least once: a run whose completion could not be written is run
    // again after its lease expires. A second run needs a second claim,
    // so every run has its own `processing` event.
    let dup: Vec<usize> = (0..FAULT_JOBS).filter(|&n| runs[n] > 1).collect();
    let claims: HashMap<i64, i64> = sqlx::query_as::<_, (i64, i64)>(&format!(
        "SELECT (j.args->>'n')::int8, count(*) FILTER (WHERE e.state = 'processing')
         FROM {} j JOIN {} e ON e.job_id = j.id GROUP BY 1",
        schema.table("jobs"),
        schema.table("job_events")
    ))
    .fetch_all(&schema.admin)
    .await
    .unwrap()
    .into_iter()
    .collect();
    for (n, &ran) in runs.iter().enumerate() {
        let claimed = claims.get(&(n as i64)).copied().unwrap_or(0);
        assert!(
            i64::from(ran) <= claimed,
            "job {n} ran {ran} times under {claimed} claims"
        );
    }
    println!(
        "killed {killed} connections in {rounds} rounds; {} of {FAULT_JOBS} jobs ran more than once: {:?}",
        dup.len(),
        &dup[..dup.len().min(20)]
    );
    schema.drop().await;
}

// ----------------------------------------------------------------- cancel

static CANCEL_STARTS: AtomicU32 = AtomicU32::new(0);

/// Runs until it is cancelled.
#[job(queue = "it_cancel")]
async fn runs_until_cancelled(n: u32, ctx: JobContext) -> anyhow::Result<()> {
    let _ = n;
    CANCEL_STARTS.fetch_add(1, Ordering::SeqCst);
    ctx.cancelled().await;
    anyhow::bail!("stopped, as asked")
}

/// Regression (reliability issue: a cancel reached a running job only at
/// its next lease renewal). The server runs on one store and the cancel
/// comes from another, as from another process: the cancel wake-up travels
/// by NOTIFY, and the server's lease keeper renews at once, which reports
/// the cancel. The lease is ten minutes, so the next renewal is three
/// minutes away, far past the deadline of the wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancel_from_another_process_reaches_a_running_job_long_before_its_next_renewal() {
    let schema = TestSchema::new().await;
    let app = format!("{}_runs", schema.name);
    let running = schema.store(&app).await;
    let other = schema.store(&format!("{}_asks", schema.name)).await;
    let server = server(&running, "it_cancel", 2)
        .lease(Duration::from_secs(600))
        .start()
        .await
        .unwrap();
    let jobs = Jobs::new(other.clone());
    let id = RunsUntilCancelled::new(0).enqueue(&jobs).await.unwrap();
    eventually("the job to run", DEADLINE, || async {
        (CANCEL_STARTS.load(Ordering::SeqCst) == 1).then_some(())
    })
    .await;
    // The server's store listens (a cancel sent before would be caught by
    // the renewal its listener triggers when it starts; wait anyway, so that
    // the NOTIFY is what carries this one).
    eventually("the server's store to listen", DEADLINE, || async {
        let listening = sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_stat_activity
             WHERE application_name = $1 AND query LIKE 'LISTEN%'",
        )
        .bind(format!("{app}:listener"))
        .fetch_one(&schema.admin)
        .await
        .ok()?;
        (listening == 1).then_some(())
    })
    .await;

    assert_eq!(jobs.cancel(id).await.unwrap(), CancelOutcome::Requested);
    let detail = eventually(
        "the cancel to reach the running job (its next renewal is minutes away)",
        DEADLINE,
        || async {
            let detail = jobs.get(id).await.ok()??;
            (detail.job.state == JobState::Cancelled).then_some(detail)
        },
    )
    .await;
    server.shutdown().await;
    assert_eq!(detail.job.attempt, 1);
    assert_eq!(CANCEL_STARTS.load(Ordering::SeqCst), 1, "it ran once");
    schema.drop().await;
}

// -------------------------------------------------------------- recurring

static TICKS: Mutex<Vec<Option<Timestamp>>> = Mutex::new(Vec::new());

#[job(queue = "it_cron")]
async fn every_second(label: String, ctx: JobContext) -> anyhow::Result<()> {
    let _ = label;
    TICKS.lock().unwrap().push(ctx.scheduled_for());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn recurring_job_runs_once_per_tick_across_three_servers() {
    const ID: &str = "it-every-second";
    let schema = TestSchema::new().await;
    let mut stores = Vec::new();
    for i in 0..3 {
        stores.push(schema.store(&format!("{}_c{i}", schema.name)).await);
    }
    let mut servers = Vec::new();
    for store in &stores {
        let handle = server(store, "it_cron", 4)
            .scheduler_interval(Duration::from_millis(200))
            .start()
            .await
            .unwrap();
        servers.push(handle);
    }

    // Every server's start registers the schedule, all at once. Missed
    // ticks (a slow machine) are each run, so none may be missing.
    let options = RecurringOptions::new().misfire(Misfire::RunAll { limit: 100 });
    let mut racers = Vec::new();
    for i in 0..6 {
        let jobs = Jobs::new(stores[i % 3].clone());
        racers.push(tokio::spawn(async move {
            jobs.recurring()
                .add_or_update_with(
                    ID,
                    "*/1 * * * * *",
                    EverySecond::new("tick".to_owned()),
                    options,
                )
                .await
        }));
    }
    for racer in racers {
        racer.await.unwrap().expect("add_or_update");
    }
    let jobs = Jobs::new(stores[0].clone());
    assert_eq!(jobs.recurring().list().await.unwrap().len(), 1, "one entry");

    tokio::time::sleep(Duration::from_secs(7)).await;
    assert!(jobs.recurring().remove(ID).await.unwrap());
    eventually("the last runs to finish", DEADLINE, || async {
        let open = schema
            .scalar(&format!(
                "SELECT count(*) FROM {} WHERE state NOT IN ('succeeded', 'failed')",
                schema.table("jobs")
            ))
            .await;
        (open == 0).then_some(())
    })
    .await;
    for server in servers {
        server.shutdown().await;
    }

    let rows: Vec<(Timestamp, i64)> = sqlx::query_as(&format!(
        "SELECT scheduled_for, count(*) FROM {} WHERE recurring_id = $1
         GROUP BY scheduled_for ORDER BY scheduled_for",
        schema.table("jobs")
    ))
    .bind(ID)
    .fetch_all(&schema.admin)
    .await
    .unwrap();
    assert!(rows.len() >= 4, "several ticks in 7 s: {rows:?}");
    for (tick, n) in &rows {
        assert_eq!(*n, 1, "tick {tick} enqueued once");
    }
    for pair in rows.windows(2) {
        assert_eq!(
            pair[1].0 - pair[0].0,
            chrono::Duration::seconds(1),
            "consecutive ticks, none missing: {} then {}",
            pair[0].0,
            pair[1].0
        );
    }
    let mut ran: BTreeMap<Timestamp, u32> = BTreeMap::new();
    for tick in TICKS.lock().unwrap().iter() {
        *ran.entry(tick.expect("a recurring run knows its tick"))
            .or_default() += 1;
    }
    let expected: BTreeMap<Timestamp, u32> = rows.iter().map(|(t, _)| (*t, 1)).collect();
    assert_eq!(ran, expected, "each tick ran exactly once");
    println!(
        "{} ticks from {} to {}",
        rows.len(),
        rows[0].0,
        rows[rows.len() - 1].0
    );
    schema.drop().await;
}

// --------------------------------------------------------------- stranded

#[job(queue = "it_stranded")]
async fn known_stranded(n: u32) -> anyhow::Result<()> {
    let _ = n;
    Ok(())
}

/// A job no running server registers and a job in a queue no running server
/// serves are never discarded: they stay waiting, and `Jobs::stranded` lists
/// them with the reason, while the server's heartbeat counts it live. Jobs
/// it can take run as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn jobs_no_running_server_can_take_wait_and_are_listed_as_stranded() {
    let schema = TestSchema::new().await;
    let store = schema.store(&format!("{}_st", schema.name)).await;
    let jobs = Jobs::new(store.clone());
    let server = server(&store, "it_stranded", 2).start().await.unwrap();
    let mut renamed = jobs::NewJob::new("it_stranded_renamed", serde_json::json!({}));
    renamed.queue = "it_stranded".to_owned();
    let renamed = jobs.insert(vec![renamed.clone(), renamed]).await.unwrap();
    let unserved = KnownStranded::new(1)
        .queue("it_stranded_nobody")
        .enqueue(&jobs)
        .await
        .unwrap();
    let runs = KnownStranded::enqueue(&jobs, 2).await.unwrap();

    let stranded = eventually("the stranded groups", DEADLINE, || async {
        let stranded = jobs.stranded().await.unwrap();
        (stranded.len() == 2).then_some(stranded)
    })
    .await;
    let mut groups: Vec<(&str, &str, StrandedReason, i64)> = stranded
        .iter()
        .map(|g| (g.queue.as_str(), g.name.as_str(), g.reason, g.count))
        .collect();
    groups.sort_by_key(|g| (g.0, g.1));
    assert_eq!(
        groups,
        vec![
            (
                "it_stranded",
                "it_stranded_renamed",
                StrandedReason::NoServerKnowsName,
                2
            ),
            (
                "it_stranded_nobody",
                "known_stranded",
                StrandedReason::NoServerForQueue,
                1
            ),
        ]
    );
    eventually("the job it knows to succeed", DEADLINE, || async {
        let state = jobs.get(runs).await.unwrap().unwrap().job.state;
        (state == JobState::Succeeded).then_some(())
    })
    .await;
    server.shutdown().await;
    for id in renamed.iter().map(|i| i.id).chain([unserved]) {
        let job = jobs.get(id).await.unwrap().unwrap().job;
        assert_eq!(
            (job.state, job.attempt),
            (JobState::Enqueued, 0),
            "kept waiting: {job:?}"
        );
    }
    schema.drop().await;
}

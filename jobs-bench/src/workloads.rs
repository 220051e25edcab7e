//! One repetition of each workload of PERFORMANCE.md. Every function sets
//! up from a clean store, times only the workload, then checks the store and
//! the handler's count, failing the run on any mismatch.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use jobs::{JobState, Jobs, MemoryStore, Server, Store};
use sqlx::PgPool;
use tokio::io::AsyncReadExt as _;

use crate::args::{Options, StoreKind};
use crate::serve::{self, ServeReport};
use crate::{job, stores};

/// W1: `jobs` single enqueues, one call and one transaction each, from
/// `producers` concurrent tasks. Returns jobs/s.
pub(crate) async fn w1(o: &Options, admin: &PgPool) -> Result<f64> {
    let store = stores::fresh_pg(admin, &o.url, &o.schema).await?;
    stores::warm_pool(&store, o.producers).await?;
    let jobs = Jobs::new(store.clone());
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let producers: Vec<_> = (0..o.producers)
        .map(|_| {
            let (jobs, next, n, unique) = (jobs.clone(), next.clone(), o.jobs, o.unique);
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= n {
                        return Ok::<_, jobs::Error>(());
                    }
                    if unique {
                        job::enqueue_unique(&jobs, i, job::now_us()).await?;
                    } else {
                        job::enqueue(&jobs, i, job::now_us()).await?;
                    }
                }
            })
        })
        .collect();
    for producer in producers {
        producer
            .await
            .context("a producer panicked")?
            .context("enqueue failed")?;
    }
    let elapsed = started.elapsed();
    stores::check_pg("W1", &jobs, admin, &o.schema, JobState::Enqueued, o.jobs).await?;
    Ok(o.jobs as f64 / elapsed.as_secs_f64())
}

/// W1b: `jobs` enqueued through `enqueue_many`, `batch` a call. Returns jobs/s.
pub(crate) async fn w1b(o: &Options, admin: &PgPool) -> Result<f64> {
    let store = stores::fresh_pg(admin, &o.url, &o.schema).await?;
    let jobs = Jobs::new(store.clone());
    let started = Instant::now();
    serve::insert(&jobs, o.jobs, o.batch, o.unique).await?;
    let elapsed = started.elapsed();
    stores::check_pg("W1b", &jobs, admin, &o.schema, JobState::Enqueued, o.jobs).await?;
    Ok(o.jobs as f64 / elapsed.as_secs_f64())
}

/// W2: `jobs` already enqueued, no server running; one server with the
/// given concurrency drains them, in a child process (this binary's hidden
/// `serve` subcommand) so that its peak RSS is its own. Returns the child's
/// report; the store is checked here afterwards.
pub(crate) async fn w2(
    o: &Options,
    store: StoreKind,
    admin: Option<&PgPool>,
) -> Result<ServeReport> {
    if let (StoreKind::Pg, Some(admin)) = (store, admin) {
        let pg = stores::fresh_pg(admin, &o.url, &o.schema).await?;
        let jobs = Jobs::new(pg.clone());
        if o.continuations {
            // Half waiting, `awaiting`: the check after the drain covers them.
            serve::insert_with_continuations(&jobs, o.jobs, o.batch).await?;
        } else if let Some(keys) = o.keys {
            serve::insert_keyed(&jobs, o.jobs, o.batch, keys).await?;
        } else if o.batches {
            // The callbacks are `awaiting`: the check after the drain covers them.
            serve::insert_as_batches(&jobs, o.jobs, o.batch).await?;
        } else {
            serve::insert(&jobs, o.jobs, o.batch, false).await?;
            stores::check_pg(
                "W2 setup",
                &jobs,
                admin,
                &o.schema,
                JobState::Enqueued,
                o.jobs,
            )
            .await?;
        }
        if !o.queue_limits().is_none() {
            jobs.queues()
                .set_limits(jobs::DEFAULT_QUEUE, o.queue_limits())
                .await
                .context("setting the queue's limits")?;
        }
        pg.pool().close().await;
    }
    let mut report = if o.servers > 1 {
        // Every server drains until the store shows every job succeeded:
        // the slowest is the drain's time, and their counts add up.
        combine(run_children(o, store, o.servers).await?)
    } else {
        run_child(o, store, false).await?
    };
    if let (StoreKind::Pg, Some(admin)) = (store, admin) {
        let pg = stores::connect_pg(&o.url, &o.schema).await?;
        let jobs = Jobs::new(pg.clone());
        stores::check_pg("W2", &jobs, admin, &o.schema, JobState::Succeeded, o.jobs).await?;
        pg.pool().close().await;
        report.batching = stores::batching(admin, &o.schema).await;
    }
    if report.completed != o.jobs {
        bail!(
            "check failed (W2): the handler counted {} of {} jobs",
            report.completed,
            o.jobs
        );
    }
    Ok(report)
}

/// Runs `servers` children at once; their reports.
async fn run_children(o: &Options, store: StoreKind, servers: usize) -> Result<Vec<ServeReport>> {
    let mut children = tokio::task::JoinSet::new();
    for _ in 0..servers {
        let o = o.clone();
        children.spawn(async move { run_child(&o, store, true).await });
    }
    let mut reports = Vec::new();
    while let Some(report) = children.join_next().await {
        reports.push(report.context("a W2 server task panicked")??);
    }
    Ok(reports)
}

/// One report for several servers: the slowest's times, the sum of the
/// completions, the largest peak RSS.
fn combine(reports: Vec<ServeReport>) -> ServeReport {
    let mut it = reports.into_iter();
    let mut all = it.next().expect("at least one server");
    for r in it {
        all.handler_s = all.handler_s.max(r.handler_s);
        all.drain_s = all.drain_s.max(r.drain_s);
        all.shutdown_s = all.shutdown_s.max(r.shutdown_s);
        all.completed += r.completed;
        all.rss_kb = all.rss_kb.max(r.rss_kb);
    }
    all
}

async fn run_child(o: &Options, store: StoreKind, shared: bool) -> Result<ServeReport> {
    let exe = std::env::current_exe().context("locating the benchmark binary")?;
    let mut command = tokio::process::Command::new(exe);
    command.arg("serve");
    if shared {
        command.arg("--shared");
    }
    let mut child = command
        .args(["--store", store.name()])
        .args(["--expect", &o.jobs.to_string()])
        .args(["--concurrency", &o.concurrency.to_string()])
        .args(["--batch", &o.batch.to_string()])
        .args(["--schema", &o.schema])
        .env("DATABASE_URL", &o.url)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("starting the W2 server process")?;
    let mut out = String::new();
    child
        .stdout
        .take()
        .context("no stdout from the W2 server process")?
        .read_to_string(&mut out)
        .await?;
    let status = child.wait().await?;
    if !status.success() {
        bail!("the W2 server process failed ({status}); it printed: {out}");
    }
    let line = out
        .lines()
        .last()
        .context("the W2 server process printed nothing")?;
    serde_json::from_str(line).with_context(|| format!("reading the W2 server's report `{line}`"))
}

/// Pickup latencies of W3, in milliseconds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Latency {
    pub(crate) p50: f64,
    pub(crate) p95: f64,
    pub(crate) p99: f64,
    pub(crate) max: f64,
    /// How long the enqueue call itself took (insert and commit).
    pub(crate) enqueue_p50: f64,
    pub(crate) enqueue_p99: f64,
    /// The latency from the enqueue call's return to the handler.
    pub(crate) after_p50: f64,
    pub(crate) after_p99: f64,
}

/// W3: an idle server with the given concurrency; `w3_jobs` single
/// enqueues, `w3_interval_ms` apart; each handler records `now - t`. The
/// `w3_warmup` jobs enqueued the same way first are run but not timed.
pub(crate) async fn w3(o: &Options, store: StoreKind, admin: Option<&PgPool>) -> Result<Latency> {
    match (store, admin) {
        (StoreKind::Pg, Some(admin)) => {
            let pg = stores::fresh_pg(admin, &o.url, &o.schema).await?;
            stores::warm_pool(&pg, 2).await?;
            let jobs = Jobs::new(pg.clone());
            let latency = if o.w3_own_store {
                // The producer's own pool: its enqueues wake the server
                // through NOTIFY, as another process's would.
                let producer = stores::connect_pg(&o.url, &o.schema).await?;
                stores::warm_pool(&producer, 2).await?;
                let latency = w3_on(o, pg.clone(), &Jobs::new(producer.clone())).await;
                producer.pool().close().await;
                latency?
            } else {
                w3_on(o, pg.clone(), &jobs).await?
            };
            stores::check_pg(
                "W3",
                &jobs,
                admin,
                &o.schema,
                JobState::Succeeded,
                o.w3_jobs + o.w3_warmup,
            )
            .await?;
            pg.pool().close().await;
            Ok(latency)
        }
        _ => {
            let memory = MemoryStore::new();
            let jobs = Jobs::new(memory.clone());
            let latency = w3_on(o, memory, &jobs).await?;
            stores::expect_only(
                "W3",
                &stores::counts(&jobs).await?,
                JobState::Succeeded,
                o.w3_jobs + o.w3_warmup,
            )?;
            Ok(latency)
        }
    }
}

async fn w3_on(o: &Options, store: impl Store, jobs: &Jobs) -> Result<Latency> {
    job::reset(true, o.w3_jobs as usize);
    let server = Server::builder(store)
        .concurrency(o.concurrency)
        .start()
        .await
        .context("starting the server")?;
    // Let the server settle into idleness: listener connected, first
    // (empty) claim done, background loops past their first pass.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut ticks = tokio::time::interval(Duration::from_millis(o.w3_interval_ms.max(1)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The warm-up: the same enqueues, run but not timed. The first use of
    // a statement on a connection prepares it (a round trip or two), once
    // per connection of the pool.
    for i in 0..o.w3_warmup {
        ticks.tick().await;
        job::enqueue(jobs, i, job::now_us())
            .await
            .context("enqueue failed")?;
    }
    wait_for_handler(o.w3_warmup).await?;
    job::reset(true, o.w3_jobs as usize);
    // How long each enqueue call took (its commit included): the part of
    // the latency that is the insert's, not the pickup's.
    let mut enqueue_us = Vec::with_capacity(o.w3_jobs as usize);
    for i in 0..o.w3_jobs {
        ticks.tick().await;
        let t = job::now_us();
        job::enqueue(jobs, i, t).await.context("enqueue failed")?;
        enqueue_us.push(job::now_us().saturating_sub(t));
    }
    wait_for_handler(o.w3_jobs).await?;
    let runs = job::take_latencies();
    stores::wait_all_succeeded(
        jobs,
        o.w3_jobs + o.w3_warmup,
        Duration::from_millis(5),
        Duration::from_secs(60),
    )
    .await?;
    server.shutdown().await;
    if job::completed() != o.w3_jobs || runs.len() as u64 != o.w3_jobs {
        bail!(
            "check failed (W3): the handler counted {} runs and {} latencies, expected {}",
            job::completed(),
            runs.len(),
            o.w3_jobs
        );
    }
    let mut latencies: Vec<u64> = runs.iter().map(|&(_, l)| l).collect();
    // Pickup after the enqueue call returned (negative: the job ran before
    // the call returned, counted as 0).
    let mut after_commit: Vec<u64> = runs
        .iter()
        .map(|&(i, l)| l.saturating_sub(enqueue_us[i as usize]))
        .collect();
    latencies.sort_unstable();
    after_commit.sort_unstable();
    enqueue_us.sort_unstable();
    let ms = |v: &[u64], p: f64| percentile(v, p) as f64 / 1000.0;
    Ok(Latency {
        p50: ms(&latencies, 50.0),
        p95: ms(&latencies, 95.0),
        p99: ms(&latencies, 99.0),
        max: ms(&latencies, 100.0),
        enqueue_p50: ms(&enqueue_us, 50.0),
        enqueue_p99: ms(&enqueue_us, 99.0),
        after_p50: ms(&after_commit, 50.0),
        after_p99: ms(&after_commit, 99.0),
    })
}

/// Waits until the handler counted `n` runs (since the last reset).
async fn wait_for_handler(n: u64) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while job::completed() < n {
        if Instant::now() > deadline {
            bail!(
                "W3: the server completed {} of {n} jobs within 60 s",
                job::completed()
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

/// The nearest-rank percentile of sorted values.
pub(crate) fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&[7], 50.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
    }
}

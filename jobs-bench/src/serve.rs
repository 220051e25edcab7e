//! The hidden `serve` subcommand: W2's server, alone in a process so that
//! its peak RSS is the server's. It starts one server with default settings
//! (but the concurrency), waits until the handler counted the expected
//! completions and the store shows them all succeeded, shuts down, and
//! prints one JSON line with its timings and its own `VmHWM`.

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use jobs::{Jobs, MemoryStore, NewBatch, Server, Store};
use serde::{Deserialize, Serialize};

use crate::args::{ServeOptions, StoreKind};
use crate::{job, stores};

/// What the child reports to the parent.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ServeReport {
    /// From just before `start()` to the handler's last completion.
    pub(crate) handler_s: f64,
    /// From just before `start()` to the store showing every job succeeded.
    pub(crate) drain_s: f64,
    /// How long `shutdown()` took afterwards.
    pub(crate) shutdown_s: f64,
    /// Completions the handler counted.
    pub(crate) completed: u64,
    /// Peak resident set of the process, from `/proc/self/status`.
    pub(crate) rss_kb: u64,
    /// Resident set just before the server started (store connected; for
    /// MemoryStore, the jobs inserted): what the server adds is the rest.
    pub(crate) rss_before_start_kb: u64,
    /// The resident set at the end, split into anonymous memory (heaps,
    /// stacks) and file pages (mostly this binary's code).
    pub(crate) rss_anon_kb: u64,
    pub(crate) rss_file_kb: u64,
    /// How the server batched its store calls (PostgreSQL only; the parent fills it in).
    #[serde(skip)]
    pub(crate) batching: Option<stores::Batching>,
}

/// The longest a drain may take before the run counts as failed.
const DRAIN_LIMIT: Duration = Duration::from_secs(600);

/// Runs the child and prints its report.
pub(crate) async fn run(o: ServeOptions) -> Result<()> {
    let report = match o.store {
        StoreKind::Pg => {
            let store = stores::connect_pg(&o.url, &o.schema).await?;
            drain(store, &o).await?
        }
        StoreKind::Memory => {
            let store = MemoryStore::new();
            let jobs = Jobs::new(store.clone());
            insert(&jobs, o.expect, o.batch, false).await?;
            drain(store, &o).await?
        }
    };
    println!("{}", serde_json::to_string(&report)?);
    if !o.shared && report.completed != o.expect {
        bail!(
            "check failed: the handler counted {} completions, expected {}",
            report.completed,
            o.expect
        );
    }
    Ok(())
}

/// Enqueues `n` jobs through the batch API, `batch` a call.
pub(crate) async fn insert(jobs: &Jobs, n: u64, batch: usize, unique: bool) -> Result<()> {
    let mut next = 0;
    while next < n {
        let end = (next + batch as u64).min(n);
        if unique {
            jobs.enqueue_many((next..end).map(job::unique_request))
                .await
                .context("enqueueing the unique jobs")?;
        } else {
            jobs.enqueue_many((next..end).map(job::request))
                .await
                .context("enqueueing the jobs to drain")?;
        }
        next = end;
    }
    Ok(())
}

/// Enqueues `n` jobs through the batch API, `batch` a call, job `i` with
/// the key limit `key:{i % keys}`, one at a time. What `--keys` runs W2 on.
pub(crate) async fn insert_keyed(jobs: &Jobs, n: u64, batch: usize, keys: u64) -> Result<()> {
    let mut next = 0;
    while next < n {
        let end = (next + batch as u64).min(n);
        jobs.enqueue_many((next..end).map(|i| {
            job::request(i).key_limit(jobs::LimitKey::new(format!("key:{}", i % keys), 1))
        }))
        .await
        .context("enqueueing the keyed jobs")?;
        next = end;
    }
    Ok(())
}

/// Enqueues `n` jobs in calls of `batch`: in each, half of them, and then
/// one continuation of each of those (`after`), which the drain's
/// completions release. What `--continuations` runs W2 on.
pub(crate) async fn insert_with_continuations(jobs: &Jobs, n: u64, batch: usize) -> Result<()> {
    let mut next = 0;
    while next < n {
        let end = (next + batch as u64).min(n);
        let half = next + (end - next).div_ceil(2);
        let parents = jobs
            .enqueue_many((next..half).map(job::request))
            .await
            .context("enqueueing the parents")?;
        jobs.enqueue_many(
            (half..end)
                .zip(parents)
                .map(|(i, parent)| job::request(i).after(parent)),
        )
        .await
        .context("enqueueing the continuations")?;
        next = end;
    }
    Ok(())
}

/// Enqueues `n` jobs as batches of `batch`: in each, all but one are
/// members and the last is the batch's callback (on any end), which the
/// last member's completion releases. What `--batches` runs W2 on.
pub(crate) async fn insert_as_batches(jobs: &Jobs, n: u64, batch: usize) -> Result<()> {
    let mut next = 0;
    while next < n {
        let end = (next + batch as u64).min(n);
        let members = NewBatch::new().members((next..end - 1).map(job::request));
        jobs.batches()
            .enqueue(members.on_any_end(job::request(end - 1)))
            .await
            .context("enqueueing a batch")?;
        next = end;
    }
    Ok(())
}

async fn drain(store: impl Store + Clone, o: &ServeOptions) -> Result<ServeReport> {
    let jobs = Jobs::new(store.clone());
    job::reset(false, 0);
    let rss_before_start_kb = proc_status_kb("VmRSS:")?;
    let started = Instant::now();
    let server = Server::builder(store)
        .concurrency(o.concurrency)
        .start()
        .await
        .context("starting the server")?;
    let handler_s = if o.shared {
        // One of several servers: the drain ends when the store shows every
        // job succeeded, whoever ran it; the handler counts only its own.
        None
    } else {
        let deadline = started + DRAIN_LIMIT;
        while job::completed() < o.expect {
            if Instant::now() > deadline {
                bail!(
                    "the server completed {} of {} jobs within {DRAIN_LIMIT:?}",
                    job::completed(),
                    o.expect
                );
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Some(started.elapsed().as_secs_f64())
    };
    // The last completions are still being written: the drain ends when the
    // store shows them. Polled only now (alone, from the start), so the
    // drain itself pays nothing.
    let every = Duration::from_millis(if o.shared { 5 } else { 2 });
    stores::wait_all_succeeded(&jobs, o.expect, every, DRAIN_LIMIT).await?;
    let drain_s = started.elapsed().as_secs_f64();
    let shutdown_started = Instant::now();
    server.shutdown().await;
    let shutdown_s = shutdown_started.elapsed().as_secs_f64();
    Ok(ServeReport {
        handler_s: handler_s.unwrap_or(drain_s),
        drain_s,
        shutdown_s,
        completed: job::completed(),
        rss_kb: proc_status_kb("VmHWM:")?,
        rss_before_start_kb,
        rss_anon_kb: proc_status_kb("RssAnon:")?,
        rss_file_kb: proc_status_kb("RssFile:")?,
        batching: None,
    })
}

/// A field of this process's `/proc/self/status` in kB (`VmHWM:`, the peak
/// resident set; `VmRSS:`, the current one).
fn proc_status_kb(field: &str) -> Result<u64> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .with_context(|| format!("no {field} in /proc/self/status"))?;
    line.split_whitespace()
        .nth(1)
        .context("malformed /proc/self/status line")?
        .parse()
        .context("malformed /proc/self/status value")
}

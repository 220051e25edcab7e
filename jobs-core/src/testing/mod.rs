//! Helpers for your own tests (feature `testing`): see what was enqueued,
//! typed, run everything until nothing is left, with delays and retries
//! elapsing instantly on a paused tokio clock, and run one job inline with
//! [`Perform`] (in `perform.rs`).
//!
//! ```
//! # use jobs_core as jobs;
//! use jobs::{Jobs, MemoryStore, Request};
//! # #[derive(serde::Serialize, serde::Deserialize)]
//! # struct SendMail { user_id: i64 }
//! # impl jobs::Job for SendMail { const NAME: &'static str = "send_mail"; }
//!
//! // In a test marked `#[tokio::test(start_paused = true)]`, so that delays
//! // and backoff take no time:
//! # async fn test() {
//! let store = MemoryStore::new();
//! let jobs = Jobs::new(store.clone());
//! jobs.enqueue(Request::new(SendMail { user_id: 9 })).await.unwrap();
//!
//! jobs::testing::assert_enqueued::<SendMail>(&jobs, |mail| mail.user_id == 9).await;
//! // Then run everything: `jobs::testing::run_until_empty(Server::builder(store)).await`.
//! # }
//! # tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap().block_on(test());
//! ```
//!
//! These helpers are meant for [`MemoryStore`](crate::MemoryStore), whose
//! clock is tokio's: under `#[tokio::test(start_paused = true)]` a job
//! scheduled a day ahead runs at once, because [`run_until_empty`] sleeps
//! straight to the next due job with no server ticking in between. On
//! another store they work, but wait in real time.

mod perform;

use std::time::Duration;

use crate::client::{Jobs, ListJobs};
use crate::error::{Error, Result};
use crate::job::Job;
use crate::model::{JobRow, JobState};
use crate::server::{Server, ServerBuilder};
use crate::store::CronDueParams;

pub use perform::{Perform, Performed};

/// The store's totals once [`run_until_empty`] found nothing left to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct DrainReport {
    /// Jobs in `succeeded`.
    pub succeeded: i64,
    /// Jobs in `failed`.
    pub failed: i64,
    /// Jobs in `cancelled`.
    pub cancelled: i64,
}

/// The longest (tokio) time [`run_until_empty`] runs before it gives up.
const DRAIN_LIMIT: Duration = Duration::from_secs(7 * 24 * 3600);

/// The first and the longest wait for running jobs to finish: short at
/// first, as test jobs mostly finish at once, longer for a job that sleeps.
const FIRST_WAIT: Duration = Duration::from_millis(1);
const LONGEST_WAIT: Duration = Duration::from_secs(1);

/// Starts the server, waits until no job that it can run (a registered job
/// in one of its queues) is scheduled, enqueued or running,
/// shuts the server down and returns the totals. Retries and delays run to
/// their end, so a job that keeps failing ends `failed`.
///
/// When only jobs due later are left, it stops the server and sleeps until
/// the first of them is due, then starts the server again (a clone of
/// `builder`): on a paused tokio clock the sleep ends at once, because no
/// server timer is left to wake for, so a job delayed by a day runs without
/// a day of ticks. On a running clock it waits in real time. Ticks of
/// recurring jobs are not waited for.
///
/// Gives up with an error once the next job is due more than a week of tokio
/// time after the call, or jobs still run after a week, naming how many jobs
/// are still waiting: a job that snoozes forever, say.
pub async fn run_until_empty(builder: ServerBuilder) -> Result<DrainReport> {
    let store = builder.store().clone();
    let jobs = Jobs::from_dyn(store.clone());
    let builder = builder.poll_interval(Duration::from_millis(100));
    let queues = builder.queue_names().to_vec();
    let known: Vec<&str> = crate::job::registered_jobs().map(|r| r.name).collect();
    let started = tokio::time::Instant::now();
    // Started even with nothing to run, so that a misconfigured builder is
    // this call's error.
    let mut server: Option<Server> = Some(builder.clone().start().await?);
    let mut wait = FIRST_WAIT;
    loop {
        // Only jobs this server can run count: others would wait forever.
        let mut pending = Vec::new();
        for state in [
            JobState::Scheduled,
            JobState::Enqueued,
            JobState::Processing,
        ] {
            pending.extend(
                all_in_state(&jobs, state).await?.into_iter().filter(|row| {
                    known.contains(&row.name.as_str()) && queues.contains(&row.queue)
                }),
            );
        }
        if pending.is_empty() {
            if let Some(server) = server.take() {
                server.shutdown().await;
            }
            return report(&jobs).await;
        }
        // The store's clock (tokio's, for MemoryStore), read after the
        // listing, so a job listed as scheduled and due by now counts as
        // runnable. `cron_due` is the one store call that answers with its
        // clock; asked for no entries, it reads nothing else.
        let now = store.cron_due(CronDueParams::new().limit(0)).await?.now;
        let next_due = pending
            .iter()
            .map(|row| (row.state == JobState::Scheduled && row.run_at > now).then_some(row.run_at))
            .collect::<Option<Vec<_>>>()
            .and_then(|later| later.into_iter().min());
        match (next_due, server.take()) {
            // Nothing can run before `at`: stop the server, so that its
            // timers do not tick through the wait, then look again.
            (Some(_), Some(running)) => running.shutdown().await,
            (Some(at), None) => {
                let until = (at - now).to_std().unwrap_or_default();
                if started.elapsed() + until > DRAIN_LIMIT {
                    return Err(Error::DrainTimeout {
                        pending: pending.len() as i64,
                        limit: DRAIN_LIMIT,
                    });
                }
                tokio::time::sleep(until).await;
            }
            (None, None) => {
                server = Some(builder.clone().start().await?);
                wait = FIRST_WAIT;
            }
            (None, Some(running)) => {
                // A job that never ends would keep this loop going forever.
                if started.elapsed() > DRAIN_LIMIT {
                    running.shutdown().await;
                    return Err(Error::DrainTimeout {
                        pending: pending.len() as i64,
                        limit: DRAIN_LIMIT,
                    });
                }
                server = Some(running);
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(LONGEST_WAIT);
            }
        }
    }
}

async fn report(jobs: &Jobs) -> Result<DrainReport> {
    let counts = jobs.counts().await?;
    let total = |state| {
        counts
            .iter()
            .filter(|c| c.state == state)
            .map(|c| c.count)
            .sum()
    };
    Ok(DrainReport {
        succeeded: total(JobState::Succeeded),
        failed: total(JobState::Failed),
        cancelled: total(JobState::Cancelled),
    })
}

/// Every waiting (`scheduled` or `enqueued`) job of type `J`, with its arguments.
pub async fn enqueued<J: Job>(jobs: &Jobs) -> Result<Vec<(JobRow, J)>> {
    let mut found = Vec::new();
    for state in [JobState::Scheduled, JobState::Enqueued] {
        for row in all_in_state(jobs, state).await? {
            if row.name == J::NAME {
                let args = J::deserialize(&row.args).map_err(|error| Error::Deserialize {
                    job: J::NAME,
                    error,
                })?;
                found.push((row, args));
            }
        }
    }
    found.sort_by_key(|(row, _)| row.id);
    Ok(found)
}

/// Panics unless a waiting job of type `J` has arguments matching `predicate`.
/// The panic message lists the waiting jobs of that type.
pub async fn assert_enqueued<J: Job>(jobs: &Jobs, predicate: impl Fn(&J) -> bool) {
    let waiting = enqueued::<J>(jobs)
        .await
        .unwrap_or_else(|error| panic!("could not read the enqueued `{}` jobs: {error}", J::NAME));
    if !waiting.iter().any(|(_, args)| predicate(args)) {
        let shown: Vec<String> = waiting
            .iter()
            .map(|(row, _)| format!("#{} {}", row.id, row.args))
            .collect();
        panic!(
            "expected an enqueued `{}` job matching the predicate; the waiting `{}` jobs are: [{}]",
            J::NAME,
            J::NAME,
            shown.join(", ")
        );
    }
}

/// Panics if any waiting job of type `J` has arguments matching `predicate`.
pub async fn assert_not_enqueued<J: Job>(jobs: &Jobs, predicate: impl Fn(&J) -> bool) {
    let waiting = enqueued::<J>(jobs)
        .await
        .unwrap_or_else(|error| panic!("could not read the enqueued `{}` jobs: {error}", J::NAME));
    if let Some((row, _)) = waiting.iter().find(|(_, args)| predicate(args)) {
        panic!(
            "expected no enqueued `{}` job matching the predicate, found #{} {}",
            J::NAME,
            row.id,
            row.args
        );
    }
}

async fn all_in_state(jobs: &Jobs, state: JobState) -> Result<Vec<JobRow>> {
    let mut rows = Vec::new();
    let mut page = ListJobs::new().state(state).limit(500);
    loop {
        let batch = jobs.list(page.clone()).await?;
        let Some(last) = batch.last().map(|row| row.id) else {
            return Ok(rows);
        };
        let full = batch.len() == 500;
        rows.extend(batch);
        if !full {
            return Ok(rows);
        }
        page = page.before(last);
    }
}

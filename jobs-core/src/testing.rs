//! Helpers for your own tests (feature `testing`): see what was enqueued,
//! typed, and run everything until nothing is left, with delays and retries
//! elapsing instantly on a paused tokio clock.
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
//! scheduled an hour ahead runs at once. On another store they work, but
//! wait in real time.

use std::time::Duration;

use crate::client::{Jobs, ListJobs};
use crate::error::{Error, Result};
use crate::job::Job;
use crate::model::{JobRow, JobState};
use crate::server::ServerBuilder;

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

/// Starts the server, waits until no job that it can run (a registered job
/// in one of its queues) is scheduled, enqueued or running,
/// shuts the server down and returns the totals. Retries and delays run to
/// their end, so a job that keeps failing ends `failed`.
///
/// Gives up with an error after a week of tokio time (instant on a paused
/// clock), naming the jobs still waiting: a job that snoozes forever, say.
pub async fn run_until_empty(builder: ServerBuilder) -> Result<DrainReport> {
    let jobs = Jobs::from_dyn(builder.store().clone());
    let queues = builder.queue_names().to_vec();
    let known: Vec<&str> = crate::job::registered_jobs().map(|r| r.name).collect();
    let server = builder
        .poll_interval(Duration::from_millis(100))
        .start()
        .await?;
    let started = tokio::time::Instant::now();
    loop {
        // Only jobs this server can run count: others would wait forever.
        let mut pending = 0i64;
        for state in [
            JobState::Scheduled,
            JobState::Enqueued,
            JobState::Processing,
        ] {
            pending += all_in_state(&jobs, state)
                .await?
                .iter()
                .filter(|row| known.contains(&row.name.as_str()) && queues.contains(&row.queue))
                .count() as i64;
        }
        if pending == 0 {
            server.shutdown().await;
            let counts = jobs.counts().await?;
            let total = |state| {
                counts
                    .iter()
                    .filter(|c| c.state == state)
                    .map(|c| c.count)
                    .sum()
            };
            return Ok(DrainReport {
                succeeded: total(JobState::Succeeded),
                failed: total(JobState::Failed),
                cancelled: total(JobState::Cancelled),
            });
        }
        if started.elapsed() > DRAIN_LIMIT {
            server.shutdown().await;
            return Err(Error::DrainTimeout {
                pending,
                limit: DRAIN_LIMIT,
            });
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Every waiting (`scheduled` or `enqueued`) job of type `J`, with its arguments.
pub async fn enqueued<J: Job>(jobs: &Jobs) -> Result<Vec<(JobRow, J)>> {
    let mut found = Vec::new();
    for state in [JobState::Scheduled, JobState::Enqueued] {
        for row in all_in_state(jobs, state).await? {
            if row.name == J::NAME {
                let args = J::deserialize(&row.args).map_err(|source| Error::Deserialize {
                    job: J::NAME,
                    source,
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

//! The reads every page of every open tab repeats on each poll, counts by
//! queue and state and the stranded jobs, shared for a moment: at a million
//! jobs each costs a scan of the waiting ones (tens of milliseconds), and a
//! dashboard open in ten tabs refreshing every two seconds would run it
//! five times a second. One request at a time reads the store when the
//! shared answer is older than [`FRESH_FOR`]; the others wait for it and
//! take it. An action (any request that is not a GET) drops it, so the
//! page its redirect shows counts what the action did.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jobs_core::{Jobs, QueueStateCount, StrandedJobs};
use tokio::sync::Mutex;

/// How long a shared answer is served: the shortest refresh interval a
/// page offers.
pub(crate) const FRESH_FOR: Duration = Duration::from_secs(2);

type Slot<T> = Arc<Mutex<Option<(Instant, Arc<T>)>>>;

#[derive(Clone, Default)]
pub(crate) struct ReadCache {
    counts: Slot<Vec<QueueStateCount>>,
    stranded: Slot<Vec<StrandedJobs>>,
}

async fn shared<T, F, Fut>(slot: &Slot<T>, read: F) -> jobs_core::Result<Arc<T>>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = jobs_core::Result<T>>,
{
    let mut held = slot.lock().await;
    if let Some((at, value)) = held.as_ref() {
        if at.elapsed() < FRESH_FOR {
            return Ok(value.clone());
        }
    }
    let value = Arc::new(read().await?);
    *held = Some((Instant::now(), value.clone()));
    Ok(value)
}

impl ReadCache {
    /// `Jobs::counts`, shared.
    pub(crate) async fn counts(&self, jobs: &Jobs) -> jobs_core::Result<Arc<Vec<QueueStateCount>>> {
        shared(&self.counts, || jobs.counts()).await
    }

    /// `Jobs::stranded`, shared.
    pub(crate) async fn stranded(&self, jobs: &Jobs) -> jobs_core::Result<Arc<Vec<StrandedJobs>>> {
        shared(&self.stranded, || jobs.stranded()).await
    }

    /// Forgets the shared answers: after an action.
    pub(crate) async fn clear(&self) {
        *self.counts.lock().await = None;
        *self.stranded.lock().await = None;
    }
}

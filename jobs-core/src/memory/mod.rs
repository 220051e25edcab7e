//! `MemoryStore`: the embedded default store. It keeps everything in the
//! process's memory, behind one mutex, and is **not durable**: jobs are lost
//! when the process exits. It serves the quickstart, users' tests, and as the
//! reference implementation of the [`Store`] contract (it passes the same
//! conformance suite as the PostgreSQL store).
//!
//! # The clock
//!
//! The store reads time as `start_wall + (tokio::time::Instant::now() -
//! start_instant)`, both captured when the store is created. On a normal
//! runtime that is the wall clock. On a paused tokio clock
//! (`tokio::time::pause()`, `#[tokio::test(start_paused = true)]`) the store's
//! time moves with tokio's: delays, backoff, leases and retention elapse as
//! soon as the runtime auto-advances, so tests of retries and schedules run in
//! no real time. The clock never goes backwards, even when the store is
//! created on one runtime and used on another.
//!
//! # Cost
//!
//! Runnable jobs are indexed by queue, priority and run time, so a claim skips
//! jobs that are not due priority by priority instead of scanning them;
//! leases and finished jobs are indexed by time for the rescuer and retention;
//! counts are kept up to date on every transition. The mutex is never held
//! across an `.await` (no method awaits while holding it).
//!
//! # Layout
//!
//! Here: [`MemoryStore`] and its lock. `clock` reads the store's time;
//! `tables` holds what is stored (jobs with their history, servers,
//! recurring entries) and answers reads; `index` keeps the secondary indexes
//! in step with the jobs; `transitions` changes jobs' states (insert, claim,
//! complete, renew, rescue, retry, cancel, delete, prune); `recurring` changes
//! recurring entries; `store` implements [`Store`] on top of these.

mod batches;
mod clock;
mod index;
mod recurring;
mod store;
mod tables;
mod transitions;

#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::model::Timestamp;
use crate::store::JobSignal;
#[cfg(doc)]
use crate::store::Store;

use clock::Clock;
use tables::Tables;

/// An in-memory [`Store`], for the quickstart, for development and for tests.
///
/// **Not durable**: jobs, their history and server records live in this
/// process's memory and are lost when it exits. Use the PostgreSQL store in
/// production.
///
/// Cloning is cheap and every clone shares the same jobs, so a `Jobs` client
/// and a `Server` can be given clones of one store. All methods are safe to
/// call concurrently; a claim is atomic, so a job is never given to two
/// claimers at once.
///
/// # The clock
///
/// The store reads time as `start_wall + (tokio::time::Instant::now() -
/// start_instant)`, both captured when the store is created. On a normal
/// runtime that is the wall clock. On a paused tokio clock
/// (`tokio::time::pause()`, `#[tokio::test(start_paused = true)]`) the
/// store's time moves with tokio's, so delays, backoff, leases and retention
/// elapse as soon as the runtime auto-advances, and tests of retries and
/// schedules take no real time. The clock never goes backwards.
///
/// ```
/// # use jobs_core as jobs;
/// use jobs::{Jobs, MemoryStore, Request, Server};
/// # #[derive(serde::Serialize, serde::Deserialize)]
/// # struct SendMail { user_id: i64 }
/// # impl jobs::Job for SendMail { const NAME: &'static str = "send_mail"; }
///
/// # async fn demo() -> jobs::Result<()> {
/// let store = MemoryStore::new();
/// let jobs = Jobs::new(store.clone()); // enqueue through the client...
/// jobs.enqueue(Request::new(SendMail { user_id: 9 })).await?;
///
/// let server = Server::builder(store).start().await?; // ...run on a clone of the store
/// server.shutdown().await;
/// # Ok(()) }
/// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
/// ```
#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

struct Inner {
    clock: Clock,
    state: Mutex<Tables>,
    signal: JobSignal,
}

impl Default for Inner {
    fn default() -> Self {
        Self {
            clock: Clock::new(),
            state: Mutex::new(Tables::default()),
            signal: JobSignal::new(),
        }
    }
}

impl MemoryStore {
    /// An empty store whose clock starts now (see [the clock](MemoryStore#the-clock)).
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `f` on the state, with the store's current time, under the lock.
    /// Never called across an `.await`.
    fn with_state<R>(&self, f: impl FnOnce(&mut Tables, Timestamp) -> R) -> R {
        let mut state = self.lock();
        let now = state.now(&self.inner.clock);
        let result = f(&mut state, now);
        // Continuations released by whatever ended their parent.
        let released = std::mem::take(&mut state.released);
        drop(state);
        self.wake(released);
        result
    }

    fn lock(&self) -> MutexGuard<'_, Tables> {
        // A panic while holding the lock cannot leave the state half-written:
        // every transition is computed before it is applied.
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Wakes idle servers if a call made jobs runnable.
    fn wake(&self, runnable: bool) {
        if runnable {
            self.inner.signal.notify();
        }
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("MemoryStore")
            .field("jobs", &state.jobs.len())
            .field("servers", &state.servers.len())
            .finish_non_exhaustive()
    }
}

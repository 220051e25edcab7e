//! [`SlowCalls`]: a test double that makes chosen store calls answer late,
//! for tests of how the server behaves when the store is slow. On a paused
//! tokio clock the delays cost no real time and are exact.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::store::{StoreLayer, StoreOperation, StoreResult};

/// A [`StoreLayer`](crate::StoreLayer): claims and recurring fires take the
/// given extra time (a `tokio::time::sleep` before the call), everything else
/// passes at once. It counts how many claims were in flight at once, at most;
/// clones share the count.
///
/// ```ignore
/// let slow = SlowCalls::new().claims(Duration::from_millis(5));
/// let store = Layered::new(MemoryStore::new(), slow.clone());
/// // ... run a server on `store`, then:
/// assert!(slow.most_claims_in_flight() <= 2);
/// ```
#[derive(Debug, Clone, Default)]
pub struct SlowCalls {
    claim: Duration,
    fire: Duration,
    claims: Arc<ClaimCount>,
}

#[derive(Debug, Default)]
struct ClaimCount {
    now: AtomicUsize,
    most: AtomicUsize,
}

/// Counts a claim as in flight until dropped.
struct InFlight<'a>(&'a ClaimCount);

impl<'a> InFlight<'a> {
    fn start(count: &'a ClaimCount) -> Self {
        let now = count.now.fetch_add(1, Ordering::SeqCst) + 1;
        count.most.fetch_max(now, Ordering::SeqCst);
        Self(count)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}

impl SlowCalls {
    /// Passes every call on at once, until told otherwise.
    pub fn new() -> Self {
        Self::default()
    }

    /// The most claims that were in flight at once.
    pub fn most_claims_in_flight(&self) -> usize {
        self.claims.most.load(Ordering::SeqCst)
    }

    /// Every `job_claim` takes this long before it reaches the store.
    pub fn claims(mut self, delay: Duration) -> Self {
        self.claim = delay;
        self
    }

    /// Every `cron_fire` takes this long before it reaches the store.
    pub fn fires(mut self, delay: Duration) -> Self {
        self.fire = delay;
        self
    }
}

impl StoreLayer for SlowCalls {
    async fn around<T, F>(&self, operation: StoreOperation, call: F) -> StoreResult<T>
    where
        F: Future<Output = StoreResult<T>> + Send,
    {
        let (delay, _counted) = match operation {
            StoreOperation::JobClaim => (self.claim, Some(InFlight::start(&self.claims))),
            StoreOperation::CronFire => (self.fire, None),
            _ => (Duration::ZERO, None),
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        call.await
    }
}

//! Per-queue caps on one server's slots (`ServerBuilder::queue_limit`): how
//! many jobs of each capped queue the server holds, claimed ahead or
//! running, and the guard that counts one of them until its attempt ends.
//! A server with no cap has none of this: its claims carry no queue limits
//! and its jobs no guard.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{Notify, OwnedSemaphorePermit};

/// The capped queues of one server.
#[derive(Debug, Default)]
pub(crate) struct QueueCaps {
    caps: Vec<QueueCap>,
    /// Raised when a capped job's attempt ends: the fetch loop, waiting
    /// after a claim the caps cut short, claims again at once.
    pub(crate) freed: Notify,
}

#[derive(Debug)]
struct QueueCap {
    queue: String,
    cap: usize,
    /// Jobs of the queue this server holds: from their claim (ahead of a
    /// slot included) until their attempt ends or they are handed back.
    held: AtomicUsize,
}

impl QueueCaps {
    pub(crate) fn new(limits: &[(String, usize)]) -> Self {
        Self {
            caps: limits
                .iter()
                .map(|(queue, cap)| QueueCap {
                    queue: queue.clone(),
                    cap: *cap,
                    held: AtomicUsize::new(0),
                })
                .collect(),
            freed: Notify::new(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.caps.is_empty()
    }

    /// Each capped queue with how many more of its jobs the server may take.
    pub(crate) fn room(&self) -> impl Iterator<Item = (usize, &str, usize)> + '_ {
        self.caps.iter().enumerate().map(|(i, c)| {
            let held = c.held.load(Ordering::Relaxed);
            (i, c.queue.as_str(), c.cap.saturating_sub(held))
        })
    }

    /// How many capped queues there are.
    pub(crate) fn len(&self) -> usize {
        self.caps.len()
    }

    /// Counts a claimed job of `queue` until the guard is dropped: `None` if
    /// the queue has no cap, `Some(Err(()))` if its cap is full (a store
    /// that returned more than the claim's queue limit).
    pub(crate) fn hold(self: &Arc<Self>, queue: &str) -> Option<Result<QueueSlot, ()>> {
        let index = self.caps.iter().position(|c| c.queue == queue)?;
        let cap = &self.caps[index];
        let held = cap.held.fetch_add(1, Ordering::Relaxed);
        if held >= cap.cap {
            cap.held.fetch_sub(1, Ordering::Relaxed);
            return Some(Err(()));
        }
        Some(Ok(QueueSlot {
            caps: self.clone(),
            index,
        }))
    }
}

/// One held job of a capped queue; dropping it frees its place.
#[derive(Debug)]
pub(crate) struct QueueSlot {
    caps: Arc<QueueCaps>,
    index: usize,
}

impl Drop for QueueSlot {
    fn drop(&mut self) {
        self.caps.caps[self.index]
            .held
            .fetch_sub(1, Ordering::Relaxed);
        self.caps.freed.notify_one();
    }
}

/// What an attempt holds while it runs: its slot of the server's
/// concurrency and, for a capped queue, its place in the cap. Fields drop
/// in order, so the cap is freed before the slot: a claim for the freed
/// slot already sees the room in the cap.
#[derive(Debug)]
pub(crate) struct Slot {
    // Held for their drop only.
    pub(crate) _queue: Option<QueueSlot>,
    pub(crate) _permit: OwnedSemaphorePermit,
}

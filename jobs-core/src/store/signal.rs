//! [`JobSignal`]: how a store tells servers that jobs may be runnable, and
//! that a running job was asked to stop.

use std::fmt;
use std::sync::Arc;

use tokio::sync::watch;

/// Raised by a store when new jobs may be runnable, so idle servers wake at
/// once instead of waiting for their next poll; and, apart, when a running
/// job was asked to cancel, so the server running it renews its leases at
/// once (the renewal reports the cancel) instead of at the next renewal.
/// Each is a counter in a watch channel: a wake-up that lands between a
/// store call and the wait is not lost. Servers poll as well: a signal only
/// makes them faster.
#[derive(Clone)]
pub struct JobSignal {
    jobs: Arc<watch::Sender<u64>>,
    cancels: Arc<watch::Sender<u64>>,
}

impl JobSignal {
    /// A new signal nobody has raised yet.
    pub fn new() -> Self {
        Self {
            jobs: Arc::new(watch::Sender::new(0)),
            cancels: Arc::new(watch::Sender::new(0)),
        }
    }

    /// Wakes every subscriber: jobs may be runnable.
    pub fn notify(&self) {
        self.jobs.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver whose `changed()` resolves after the next [`notify`](Self::notify).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.jobs.subscribe()
    }

    /// Wakes every subscriber of cancels: a running job (of any server) was
    /// asked to cancel. A store raises it from `job_cancel` of a
    /// `processing` job, for its own servers and, if it can, for other
    /// processes'.
    pub fn notify_cancel(&self) {
        self.cancels.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver whose `changed()` resolves after the next
    /// [`notify_cancel`](Self::notify_cancel).
    pub fn subscribe_cancels(&self) -> watch::Receiver<u64> {
        self.cancels.subscribe()
    }
}

impl Default for JobSignal {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for JobSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobSignal").finish_non_exhaustive()
    }
}

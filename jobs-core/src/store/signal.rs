//! [`JobSignal`]: how a store tells idle servers that jobs may be runnable.

use std::fmt;
use std::sync::Arc;

use tokio::sync::watch;

/// Raised by a store when new jobs may be runnable, so idle servers wake at
/// once instead of waiting for their next poll. A counter in a watch channel:
/// a wake-up that lands between a claim and the wait is not lost.
#[derive(Clone)]
pub struct JobSignal {
    sender: Arc<watch::Sender<u64>>,
}

impl JobSignal {
    /// A new signal nobody has raised yet.
    pub fn new() -> Self {
        Self {
            sender: Arc::new(watch::Sender::new(0)),
        }
    }

    /// Wakes every subscriber.
    pub fn notify(&self) {
        self.sender.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver whose `changed()` resolves after the next `notify`.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.sender.subscribe()
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

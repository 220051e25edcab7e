//! Params of the `queue_*` operations: pausing and resuming queues, setting
//! their cluster-wide limits, and listing them.

use crate::limits::QueueLimits;

/// Pause or resume a queue, durably, for every server. A paused queue's
/// jobs stay waiting (`enqueued` or `scheduled`) and no claim takes them;
/// jobs already running finish normally. Resuming raises the store's
/// wake-up signal, in every process the store can reach, so idle servers
/// claim the queue's jobs at once. Pausing a paused queue keeps the time it
/// was first paused; resuming a queue that is not paused changes nothing
/// but the wake-up.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct QueuePauseParams {
    /// The queue.
    pub queue: String,
    /// Paused or not.
    pub paused: bool,
}

impl QueuePauseParams {
    /// Pause the queue `queue`.
    pub fn pause(queue: impl Into<String>) -> Self {
        Self {
            queue: queue.into(),
            paused: true,
        }
    }

    /// Resume the queue `queue`.
    pub fn resume(queue: impl Into<String>) -> Self {
        Self {
            queue: queue.into(),
            paused: false,
        }
    }
}

/// Set the cluster-wide limits of a queue (see [`QueueLimits`]), replacing
/// those it had: `QueueLimits::none()` lifts them. Every server's next
/// claim applies them. A rate limit whose period is unchanged keeps the
/// starts already counted; one with a new period starts counting afresh.
/// Raising or lifting a limit raises the store's wake-up signal, as a
/// resume does, so that idle servers claim what it frees at once.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct QueueLimitParams {
    /// The queue.
    pub queue: String,
    /// Its limits from now on.
    pub limits: QueueLimits,
}

impl QueueLimitParams {
    /// Set the limits of `queue` to `limits`.
    pub fn new(queue: impl Into<String>, limits: QueueLimits) -> Self {
        Self {
            queue: queue.into(),
            limits,
        }
    }
}

/// List the queues the store knows, by name: those that hold jobs (waiting,
/// running or counted as finished) and those that were ever paused or
/// limited, each with whether it is paused, its limits, and the run time of its oldest due job (see
/// [`QueueInfo::oldest_due`](crate::QueueInfo::oldest_due)). Its cost grows
/// with the number of queues and of distinct priorities their waiting jobs
/// have, not with the number of jobs.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct QueueListParams {}

impl QueueListParams {
    /// Every known queue.
    pub fn new() -> Self {
        Self::default()
    }
}

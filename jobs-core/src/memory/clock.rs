//! The store's clock (see [the clock](super::MemoryStore#the-clock)), and
//! time arithmetic that saturates instead of overflowing.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::model::Timestamp;

/// The store's clock: wall time at creation plus tokio time elapsed since.
#[derive(Debug)]
pub(super) struct Clock {
    start_wall: Timestamp,
    start_instant: tokio::time::Instant,
}

impl Clock {
    pub(super) fn new() -> Self {
        Self {
            start_wall: Utc::now(),
            start_instant: tokio::time::Instant::now(),
        }
    }

    pub(super) fn now(&self) -> Timestamp {
        let elapsed = tokio::time::Instant::now().saturating_duration_since(self.start_instant);
        plus(self.start_wall, elapsed)
    }
}

/// `t + d`, saturating at the end of time (a huge delay means "never").
pub(super) fn plus(t: Timestamp, d: Duration) -> Timestamp {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `t - d`, saturating at the beginning of time (a huge age means "nothing is that old").
pub(super) fn minus(t: Timestamp, d: Duration) -> Timestamp {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_sub_signed(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

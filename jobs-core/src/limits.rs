//! Cluster-wide limits of a queue, stored by the store and applied inside
//! every server's claim: at most so many of the queue's jobs running at once
//! ([`QueueLimits::concurrency`]), and at most so many started per period
//! ([`RateLimit`]). A server's own caps (`ServerBuilder::concurrency`,
//! `ServerBuilder::queue_limit`) still apply on top of them.

use std::time::Duration;

use serde::Serialize;

use crate::error::{StoreError, StoreErrorKind, StoreResult};
use crate::model::Timestamp;

/// The limits of one queue across every server of the store, set with
/// [`Queues::set_limits`](crate::Queues::set_limits). Both are enforced by
/// the store inside the claim, so they hold whatever the number of servers,
/// and a change is applied from each server's next claim on, without a
/// restart. `QueueLimits::none()` lifts both.
///
/// ```
/// use std::time::Duration;
/// # use jobs_core as jobs;
/// use jobs::{QueueLimits, RateLimit};
///
/// // At most 16 `mail` jobs running at once in the whole cluster, and at
/// // most 100 started in any minute.
/// let limits = QueueLimits::none()
///     .concurrency(16)
///     .rate(RateLimit::new(100, Duration::from_secs(60)));
/// assert_eq!(limits.concurrency, Some(16));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct QueueLimits {
    /// At most this many jobs of the queue `processing` at once, across all
    /// servers: the jobs running and those claimed ahead of a free slot. A
    /// dead server's jobs count until their leases expire and the rescuer
    /// puts them back, so its places come back with its leases.
    pub concurrency: Option<u32>,
    /// At most so many jobs of the queue started per period, across all
    /// servers.
    pub rate: Option<RateLimit>,
}

impl QueueLimits {
    /// No limit: the queue's jobs are claimed as fast as servers have slots.
    pub fn none() -> Self {
        Self::default()
    }

    /// At most `jobs` of the queue running at once across all servers
    /// (at least 1: to stop a queue, pause it).
    pub fn concurrency(mut self, jobs: u32) -> Self {
        self.concurrency = Some(jobs);
        self
    }

    /// At most `rate.jobs` started per `rate.per` across all servers.
    pub fn rate(mut self, rate: RateLimit) -> Self {
        self.rate = Some(rate);
        self
    }

    /// Whether neither limit is set.
    pub fn is_none(&self) -> bool {
        self.concurrency.is_none() && self.rate.is_none()
    }

    /// `Invalid` for a limit no claim could honour usefully.
    pub fn check(&self) -> StoreResult<()> {
        if self.concurrency == Some(0) {
            return Err(StoreError::new(
                StoreErrorKind::Invalid,
                "a queue's concurrency limit must be at least 1; to stop claiming its jobs, pause it",
            ));
        }
        if let Some(rate) = self.rate {
            rate.check()?;
        }
        Ok(())
    }
}

/// At most `jobs` jobs started in any period of length `per`, across all
/// servers: a sliding window, so a burst at the end of one minute and
/// another at the start of the next cannot together exceed the limit, as
/// they could with a window fixed to the clock (twice the rate across the
/// boundary, which is what a rate-limited API refuses).
///
/// The store keeps, per queue, how many jobs started in each tenth of the
/// period (ten slots and the current one, aligned to the epoch on the
/// store's clock), and a claim takes at most the limit less the starts of
/// the last eleven slots. So any window of length `per` holds at most
/// `jobs` starts, a start counts against the limit for between `per` and
/// 1.1 × `per`, and the state is eleven counters whatever the rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RateLimit {
    /// At most this many starts (at least 1)...
    pub jobs: u32,
    /// ...in any period this long (from 1 s to 31 days). In JSON, as
    /// `per_seconds`.
    #[serde(rename = "per_seconds", serialize_with = "as_seconds")]
    pub per: Duration,
}

fn as_seconds<S: serde::Serializer>(per: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(per.as_secs_f64())
}

/// How many slots a rate limit's period is divided into.
pub const RATE_SLOTS_PER_PERIOD: i64 = 10;

/// The shortest period a rate limit may have.
const SHORTEST_RATE_PERIOD: Duration = Duration::from_secs(1);

/// The longest period a rate limit may have.
const LONGEST_RATE_PERIOD: Duration = Duration::from_secs(31 * 24 * 3600);

impl RateLimit {
    /// At most `jobs` started in any period of length `per`.
    pub fn new(jobs: u32, per: Duration) -> Self {
        Self { jobs, per }
    }

    /// At most `jobs` started in any second.
    pub fn per_second(jobs: u32) -> Self {
        Self::new(jobs, Duration::from_secs(1))
    }

    /// At most `jobs` started in any minute.
    pub fn per_minute(jobs: u32) -> Self {
        Self::new(jobs, Duration::from_secs(60))
    }

    /// At most `jobs` started in any hour.
    pub fn per_hour(jobs: u32) -> Self {
        Self::new(jobs, Duration::from_secs(3600))
    }

    /// The length of one slot, in microseconds (a tenth of the period).
    pub fn slot_micros(&self) -> i64 {
        i64::try_from(self.per.as_micros()).unwrap_or(i64::MAX) / RATE_SLOTS_PER_PERIOD
    }

    /// `Invalid` for no jobs, or a period out of range.
    pub fn check(&self) -> StoreResult<()> {
        if self.jobs == 0 {
            return Err(StoreError::new(
                StoreErrorKind::Invalid,
                "a rate limit must allow at least 1 job per period; to stop claiming a queue's jobs, pause it",
            ));
        }
        if self.per < SHORTEST_RATE_PERIOD || self.per > LONGEST_RATE_PERIOD {
            return Err(StoreError::new(
                StoreErrorKind::Invalid,
                format!(
                    "a rate limit's period must be from 1 s to 31 days, not {:?}",
                    self.per
                ),
            ));
        }
        Ok(())
    }
}

/// At most so many jobs with the same key running at once, across all
/// servers: "one sync at a time per customer", while other customers' syncs
/// proceed. Declared on the job type (`#[job(key_limit(by = [customer_id]))]`,
/// or `#[job(key_limit(by = [customer_id], running = 2))]`), where the key
/// is the job's name and a digest of the chosen arguments, as a unique
/// job's is; or given for one enqueue as a [`LimitKey`] of the caller's
/// choosing ([`Request::key_limit`](crate::Request::key_limit)), which jobs
/// of several types can share.
///
/// A job whose key is busy waits, `enqueued`, without spending an attempt,
/// and the claim takes the jobs behind it: a busy key never holds up the
/// queue. Jobs claimed ahead of a free slot hold their key's place too.
///
/// ```
/// # use jobs_core as jobs;
/// use jobs::KeyLimit;
///
/// // One at a time per customer, whatever else the job takes.
/// const ONE_SYNC_PER_CUSTOMER: KeyLimit = KeyLimit::by_args(&["customer_id"]);
/// // Two at a time per (account, region).
/// const TWO_PER_REGION: KeyLimit = KeyLimit::by_args(&["account_id", "region"]).running(2);
/// # let _ = (ONE_SYNC_PER_CUSTOMER, TWO_PER_REGION);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyLimit {
    args: Option<&'static [&'static str]>,
    running: u32,
}

impl KeyLimit {
    /// One at a time per value of these arguments (by their names in the
    /// `#[job]` function, which `#[job(key_limit(by = [..]))]` checks at
    /// compile time).
    pub const fn by_args(args: &'static [&'static str]) -> Self {
        Self {
            args: Some(args),
            running: 1,
        }
    }

    /// One at a time per value of all the arguments.
    pub const fn by_all_args() -> Self {
        Self {
            args: None,
            running: 1,
        }
    }

    /// At most `running` at once per key, instead of one (0 is taken as 1).
    pub const fn running(mut self, running: u32) -> Self {
        self.running = if running == 0 { 1 } else { running };
        self
    }

    /// The arguments that make the key; `None`: all of them.
    pub fn args(&self) -> Option<&'static [&'static str]> {
        self.args
    }

    /// The key of a job named `name` with these stored arguments. `Err`
    /// names a chosen argument the arguments lack.
    pub fn key_of(&self, name: &str, args: &serde_json::Value) -> Result<LimitKey, String> {
        Ok(LimitKey {
            key: crate::job::args_key(name, args, self.args)?,
            running: self.running,
        })
    }
}

/// What a store keeps of a [`KeyLimit`]: the key, and how many jobs with it
/// may run at once. Given directly for one enqueue
/// ([`Request::key_limit`](crate::Request::key_limit)), the key is whatever
/// the caller chooses: `"customer:7"` shared by a sync and an invoice job
/// makes them run one at a time between them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub struct LimitKey {
    /// The key.
    pub key: String,
    /// At most this many jobs with the key running at once (at least 1).
    pub running: u32,
}

impl LimitKey {
    /// At most `running` jobs with the key `key` at once.
    pub fn new(key: impl Into<String>, running: u32) -> Self {
        Self {
            key: key.into(),
            running,
        }
    }

    /// `Invalid` for an empty key or a limit of 0.
    pub fn check(&self) -> StoreResult<()> {
        if self.key.is_empty() {
            return Err(StoreError::new(
                StoreErrorKind::Invalid,
                "a key limit's key must not be empty",
            ));
        }
        if self.running == 0 {
            return Err(StoreError::new(
                StoreErrorKind::Invalid,
                format!(
                    "the key limit of `{}` must let at least 1 job run",
                    self.key
                ),
            ));
        }
        Ok(())
    }
}

/// The starts of one rate-limited queue by slot, as [`RateLimit`] describes:
/// the state `MemoryStore` keeps (PostgreSQL keeps the same in two arrays of
/// the queue's row).
#[derive(Debug, Clone, Default)]
pub(crate) struct RateWindow {
    /// (slot number since the epoch, starts in it), oldest first, only the
    /// slots that still count.
    slots: Vec<(i64, u64)>,
}

impl RateWindow {
    /// The slot `now` falls in.
    fn slot(rate: &RateLimit, now: Timestamp) -> i64 {
        now.timestamp_micros().div_euclid(rate.slot_micros().max(1))
    }

    /// How many more jobs may start at `now`.
    pub(crate) fn allowance(&self, rate: &RateLimit, now: Timestamp) -> u64 {
        let oldest_counted = Self::slot(rate, now) - RATE_SLOTS_PER_PERIOD;
        let used: u64 = self
            .slots
            .iter()
            .filter(|&&(slot, _)| slot >= oldest_counted)
            .map(|&(_, n)| n)
            .sum();
        u64::from(rate.jobs).saturating_sub(used)
    }

    /// Records `started` starts at `now`, forgetting the slots that no
    /// longer count.
    pub(crate) fn record(&mut self, rate: &RateLimit, now: Timestamp, started: u64) {
        let current = Self::slot(rate, now);
        self.slots
            .retain(|&(slot, _)| slot >= current - RATE_SLOTS_PER_PERIOD);
        if started == 0 {
            return;
        }
        match self.slots.last_mut() {
            Some((slot, n)) if *slot == current => *n += started,
            _ => self.slots.push((current, started)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: f64) -> Timestamp {
        Timestamp::from_timestamp_micros((secs * 1e6) as i64).unwrap()
    }

    #[test]
    fn a_start_counts_for_at_least_the_period_and_at_most_a_tenth_more() {
        let rate = RateLimit::new(5, Duration::from_secs(10));
        let mut window = RateWindow::default();
        assert_eq!(window.allowance(&rate, at(100.5)), 5);
        window.record(&rate, at(100.5), 5);
        // Still counted 10 s later (slot 100 is one of the last eleven)...
        assert_eq!(window.allowance(&rate, at(110.4)), 0);
        assert_eq!(window.allowance(&rate, at(110.99)), 0);
        // ...and forgotten once eleven slots have passed.
        assert_eq!(window.allowance(&rate, at(111.0)), 5);
    }

    #[test]
    fn no_window_of_the_period_holds_more_than_the_limit() {
        let rate = RateLimit::new(3, Duration::from_secs(1));
        let mut window = RateWindow::default();
        let mut starts: Vec<f64> = Vec::new();
        // A claim every 7 ms for 5 s, taking all it may.
        let mut t = 0.0;
        while t < 5.0 {
            let n = window.allowance(&rate, at(1000.0 + t));
            window.record(&rate, at(1000.0 + t), n);
            starts.extend(std::iter::repeat_n(t, n as usize));
            t += 0.007;
        }
        for (i, &first) in starts.iter().enumerate() {
            let within = starts[i..].iter().filter(|&&s| s < first + 1.0).count();
            assert!(within <= 3, "{within} starts within 1 s of {first}");
        }
        assert!(starts.len() >= 12, "the limit is used: {}", starts.len());
    }

    #[test]
    fn limits_that_cannot_be_honoured_are_refused() {
        assert!(QueueLimits::none().concurrency(0).check().is_err());
        assert!(QueueLimits::none().concurrency(1).check().is_ok());
        assert!(QueueLimits::none()
            .rate(RateLimit::per_second(0))
            .check()
            .is_err());
        let too_short = RateLimit::new(1, Duration::from_millis(500));
        let err = QueueLimits::none().rate(too_short).check().unwrap_err();
        assert!(err.to_string().contains("from 1 s to 31 days"), "{err}");
        assert!(QueueLimits::none()
            .rate(RateLimit::new(1, Duration::from_secs(32 * 24 * 3600)))
            .check()
            .is_err());
        assert!(QueueLimits::none().is_none());
    }
}

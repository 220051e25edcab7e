//! [`Server::health`](super::Server::health): what a server saw of the store
//! and of its own loops lately, read from memory, and the verdict drawn from
//! it. The record is [`StoreHealth`], which every loop's store calls update;
//! the rescuer reads it too (see [`StoreHealth::may_rescue`]).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Serialize, Serializer};
use tokio::time::Instant;

use super::{Load, Settings};
use crate::error::{StoreErrorKind, StoreResult};
use crate::model::{ServerId, Timestamp};

/// What a server saw of the store and of its own loops lately: the outcome
/// of its store calls (its own writes and its claims), when its claims,
/// lease renewals and heartbeats last succeeded, and whether it is
/// stopping. Kept in memory, a lock and a few stores per call noted;
/// [`Server::health`](super::Server::health) reads it without a store call.
#[derive(Debug)]
pub(crate) struct StoreHealth {
    /// The last failure of the server's own writes, and the first success
    /// after it: the rescuer's (claims do not count there: they go through
    /// the application's connections, not the server's reserved ones).
    last_failure: Option<Instant>,
    recovered_at: Option<Instant>,

    started: Instant,
    last_success: Option<Instant>,
    failure: Option<Failure>,
    /// The first failure since the last success, while calls fail.
    failing_since: Option<Instant>,
    last_claim: Option<Instant>,
    last_renewal: Option<Instant>,
    /// The last time the lease keeper knew every held lease fresh: a
    /// renewal that succeeded, or a pass with no claim to renew.
    renewal_pass: Option<Instant>,
    last_heartbeat: Option<Instant>,
    /// The fetch loop waits for a slot (every slot taken): it has nothing
    /// to claim for.
    fetch_waits_for_slot: bool,
    /// When it last stopped waiting for a slot.
    fetch_wants_since: Option<Instant>,
    stopping: bool,
    stopped: bool,
}

#[derive(Debug, Clone)]
struct Failure {
    at: Instant,
    error: String,
    kind: StoreErrorKind,
}

impl StoreHealth {
    pub(crate) fn new() -> Self {
        Self {
            last_failure: None,
            recovered_at: None,
            started: Instant::now(),
            last_success: None,
            failure: None,
            failing_since: None,
            last_claim: None,
            last_renewal: None,
            renewal_pass: None,
            last_heartbeat: None,
            fetch_waits_for_slot: false,
            fetch_wants_since: None,
            stopping: false,
            stopped: false,
        }
    }

    /// Notes the result of one of the server's own writes.
    pub(crate) fn note<T>(&mut self, result: &StoreResult<T>) {
        let now = Instant::now();
        match result {
            Ok(_) => {
                if self.last_failure.is_some() && self.recovered_at.is_none() {
                    self.recovered_at = Some(now);
                }
            }
            Err(_) => {
                self.last_failure = Some(now);
                self.recovered_at = None;
            }
        }
        self.note_reach(result, now);
    }

    /// Notes whether a call reached the store (claims come here alone, own
    /// writes through [`note`](Self::note)); whether it succeeded.
    fn note_reach<T>(&mut self, result: &StoreResult<T>, now: Instant) -> bool {
        match result {
            Ok(_) => {
                self.last_success = Some(now);
                self.failing_since = None;
                true
            }
            Err(error) => {
                self.failing_since.get_or_insert(now);
                self.failure = Some(Failure {
                    at: now,
                    error: error.to_string(),
                    kind: error.kind(),
                });
                false
            }
        }
    }

    pub(crate) fn note_claim<T>(&mut self, result: &StoreResult<T>) {
        let now = Instant::now();
        if self.note_reach(result, now) {
            self.last_claim = Some(now);
        }
    }

    pub(crate) fn note_renewal<T>(&mut self, result: &StoreResult<T>) {
        self.note(result);
        if result.is_ok() {
            self.last_renewal = Some(Instant::now());
        }
    }

    pub(crate) fn note_heartbeat<T>(&mut self, result: &StoreResult<T>) {
        self.note(result);
        if result.is_ok() {
            self.last_heartbeat = Some(Instant::now());
        }
    }

    pub(crate) fn note_renewal_pass(&mut self) {
        self.renewal_pass = Some(Instant::now());
    }

    pub(crate) fn note_fetch_waits_for_slot(&mut self, waits: bool) {
        if self.fetch_waits_for_slot && !waits {
            self.fetch_wants_since = Some(Instant::now());
        }
        self.fetch_waits_for_slot = waits;
    }

    pub(crate) fn note_stopping(&mut self) {
        self.stopping = true;
    }

    pub(crate) fn note_stopped(&mut self) {
        self.stopped = true;
    }

    /// Whether rescuing expired leases is fair to the other servers: never
    /// while this server's own writes fail, and after an outage only once
    /// `wait` has passed since they came back. Every server saw the outage
    /// and could not renew during it; rescuing at once would run their
    /// healthy jobs twice. Waiting gives each live server its renewals
    /// (retried at once when the store returns), so that only the jobs of
    /// servers that did not come back are rescued.
    pub(crate) fn may_rescue(&self, wait: Duration) -> bool {
        match (self.last_failure, self.recovered_at) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(_), Some(recovered)) => recovered.elapsed() >= wait,
        }
    }
}

/// How long each sign of trouble may last before the server is unhealthy,
/// derived from its settings (see [`ServerHealth`] for why each).
#[derive(Debug, Clone, Copy)]
pub(crate) struct HealthLimits {
    store_failing: Duration,
    claim: Duration,
    renewal: Duration,
    heartbeat: Duration,
    concurrency: usize,
}

impl HealthLimits {
    pub(crate) fn new(settings: &Settings) -> Self {
        let renewal = settings.renewal_interval();
        Self {
            store_failing: renewal,
            claim: settings.poll_interval + renewal,
            renewal: renewal * 2,
            heartbeat: settings.heartbeat_interval * 2,
            concurrency: settings.concurrency,
        }
    }
}

/// A handle that reads a server's health, for a readiness endpoint: cheap
/// to clone, `Send + Sync + 'static`, and still answering (with "shutting
/// down", then "stopped") while and after [`Server::shutdown`](super::Server::shutdown)
/// runs, which the [`Server`](super::Server) itself cannot, since shutdown
/// consumes it. It holds only the health record, not the store.
///
/// ```
/// # use jobs_core as jobs;
/// use jobs::{MemoryStore, Server};
/// # async fn demo() -> jobs::Result<()> {
/// let server = Server::builder(MemoryStore::new()).start().await?;
/// let probe = server.health_probe(); // give this to the HTTP handlers
/// assert!(probe.health().is_healthy());
/// server.shutdown().await;
/// assert_eq!(probe.health().reason(), Some("stopped"));
/// # Ok(()) }
/// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct HealthProbe {
    server: ServerId,
    record: Arc<Mutex<StoreHealth>>,
    load: Arc<Load>,
    limits: HealthLimits,
}

impl HealthProbe {
    pub(crate) fn new(
        server: ServerId,
        record: Arc<Mutex<StoreHealth>>,
        load: Arc<Load>,
        limits: HealthLimits,
    ) -> Self {
        Self {
            server,
            record,
            load,
            limits,
        }
    }

    /// The server's health now; see [`Server::health`](super::Server::health).
    pub fn health(&self) -> ServerHealth {
        let record = self
            .record
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .snapshot();
        let now = Instant::now();
        let wall = chrono::Utc::now();
        let seen = |at: Instant| LastSeen::new(now.saturating_duration_since(at), wall);
        ServerHealth {
            status: verdict(&record, &self.limits, now),
            server: self.server,
            started: seen(record.started),
            store_reachable: record.failing_since.is_none(),
            store_failing_since: record.failing_since.map(seen),
            last_store_success: record.last_success.map(seen),
            last_store_failure: record.failure.as_ref().map(|f| StoreFailure {
                seen: seen(f.at),
                error: f.error.clone(),
                kind: f.kind,
            }),
            last_claim: record.last_claim.map(seen),
            last_lease_renewal: record.last_renewal.map(seen),
            last_heartbeat: record.last_heartbeat.map(seen),
            running: self.load.running.load(Ordering::Relaxed),
            claimed_ahead: self.load.claimed_ahead.load(Ordering::Relaxed),
            concurrency: self.limits.concurrency,
            shutting_down: record.stopping,
        }
    }
}

/// What [`HealthProbe::health`] reads, copied out of the lock.
struct Snapshot {
    started: Instant,
    last_success: Option<Instant>,
    failure: Option<Failure>,
    failing_since: Option<Instant>,
    last_claim: Option<Instant>,
    last_renewal: Option<Instant>,
    renewal_pass: Option<Instant>,
    last_heartbeat: Option<Instant>,
    fetch_waits_for_slot: bool,
    fetch_wants_since: Option<Instant>,
    stopping: bool,
    stopped: bool,
}

impl StoreHealth {
    fn snapshot(&self) -> Snapshot {
        Snapshot {
            started: self.started,
            last_success: self.last_success,
            failure: self.failure.clone(),
            failing_since: self.failing_since,
            last_claim: self.last_claim,
            last_renewal: self.last_renewal,
            renewal_pass: self.renewal_pass,
            last_heartbeat: self.last_heartbeat,
            fetch_waits_for_slot: self.fetch_waits_for_slot,
            fetch_wants_since: self.fetch_wants_since,
            stopping: self.stopping,
            stopped: self.stopped,
        }
    }
}

/// The first sign of trouble, in the order of [`ServerHealth`]'s rules.
fn verdict(record: &Snapshot, limits: &HealthLimits, now: Instant) -> HealthStatus {
    let unhealthy = |reason: String| HealthStatus::Unhealthy { reason };
    if record.stopped {
        return unhealthy("stopped".to_owned());
    }
    if record.stopping {
        return unhealthy("shutting down".to_owned());
    }
    if let (Some(since), Some(failure)) = (record.failing_since, &record.failure) {
        let failing = now.saturating_duration_since(since);
        if failing >= limits.store_failing {
            let what = if failure.kind == StoreErrorKind::Unavailable {
                "store unreachable"
            } else {
                "store calls failing"
            };
            return unhealthy(format!("{what} for {}: {}", secs(failing), failure.error));
        }
    }
    // Each loop's proof of life counts from the start until it has one.
    let age = |at: Option<Instant>| now.saturating_duration_since(at.unwrap_or(record.started));
    // A loop without its proof, while no other call succeeded either: the
    // store does not answer (calls that hang fail only at the store
    // timeout). While other calls succeed, the loop itself is at fault.
    let silent = age(record.last_success);
    let stale = |what: &str, age: Duration, limit: Duration| {
        let late = format!("no successful {what} for {}", secs(age));
        if silent > limit {
            unhealthy(format!("store not answering for {}: {late}", secs(silent)))
        } else {
            unhealthy(late)
        }
    };
    let renewal = age(record.renewal_pass);
    if renewal > limits.renewal {
        return stale("lease renewal", renewal, limits.renewal);
    }
    if !record.fetch_waits_for_slot {
        let claim = age(record.last_claim.max(record.fetch_wants_since));
        if claim > limits.claim {
            return stale("claim", claim, limits.claim);
        }
    }
    let heartbeat = age(record.last_heartbeat);
    if heartbeat > limits.heartbeat {
        return stale("heartbeat", heartbeat, limits.heartbeat);
    }
    HealthStatus::Healthy
}

/// `12s` from ten seconds up, `1.5s` below.
fn secs(age: Duration) -> String {
    if age >= Duration::from_secs(10) {
        format!("{}s", age.as_secs())
    } else {
        format!("{:.1}s", age.as_secs_f64())
    }
}

/// A server's health as of one reading: the verdict, and what it was drawn
/// from. Returned by [`Server::health`](super::Server::health) and
/// [`HealthProbe::health`]; serializes (serde) to a flat JSON object with
/// ages in seconds, for a readiness endpoint's body.
///
/// # The verdict
///
/// The server is unhealthy on the first of these that holds, with the
/// reason in words:
///
/// 1. `"stopped"`, `"shutting down"`: shutdown has begun; the server claims
///    nothing more.
/// 2. `"store unreachable for 12s: <error>"` (`"store calls failing ..."` for
///    errors other than [`StoreErrorKind::Unavailable`]): every store call since
///    the last success failed, for at least the **lease renewal interval**.
///    Shorter blips (a failover, one timed-out call, retried within a
///    second or two) leave it healthy; failing for that long means a lease
///    renewal was missed, and the leases run out after two more.
/// 3. `"no successful lease renewal for 21s"`: the lease keeper has not
///    known every held lease fresh for **two renewal intervals** (it renews
///    every interval; after two missed, a lease may run out at any moment).
///    A pass with nothing to renew counts, so an idle server is not flagged.
/// 4. `"no successful claim for 11s"`: while the server has a free slot (or
///    room to claim ahead), no claim succeeded for the **poll interval plus
///    the renewal interval**. An idle server on an empty queue claims, and
///    finds nothing, at least every poll interval: its wait for the store's
///    wake-up (NOTIFY) is bounded by the poll interval, since a wake-up only
///    speeds polling up. An empty claim proves the store answers, so the
///    idle server stays healthy. A busy server whose every slot is taken
///    does not claim: the check is skipped until a slot frees up, and counts
///    from then, while the renewals of the jobs it runs are the proof
///    (rule 3).
/// 5. `"no successful heartbeat for 21s"`: no heartbeat was written for
///    **two heartbeat intervals**.
///
/// Rules 3 to 5 catch a loop that stopped or was starved, and a store that
/// does not answer (a call that hangs counts as failed only at the store
/// timeout, 30 s by default); each counts from the server's start until its
/// first success. When no store call at all succeeded for as long, the
/// store is the likely culprit and the reason says so first: `"store not
/// answering for 11s: no successful claim for 11s"`.
/// Ages are measured on tokio's clock (`tokio::time::Instant`), so they are
/// monotonic and follow a paused test clock.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ServerHealth {
    /// The verdict: [`HealthStatus::Healthy`], or unhealthy with the reason.
    #[serde(flatten)]
    pub status: HealthStatus,
    /// The server's identity.
    pub server: ServerId,
    /// When the server started.
    pub started: LastSeen,
    /// Whether the store answered the last of the server's store calls.
    pub store_reachable: bool,
    /// When the calls began to fail, while they fail.
    pub store_failing_since: Option<LastSeen>,
    /// The last store call (claim or own write) that succeeded.
    pub last_store_success: Option<LastSeen>,
    /// The last store call that failed, with its error, even if calls
    /// succeeded since.
    pub last_store_failure: Option<StoreFailure>,
    /// The last claim that succeeded, whether or not it found jobs.
    pub last_claim: Option<LastSeen>,
    /// The last lease renewal that reached the store (`None` while no claim
    /// has needed one).
    pub last_lease_renewal: Option<LastSeen>,
    /// The last heartbeat written.
    pub last_heartbeat: Option<LastSeen>,
    /// Attempts running now.
    pub running: usize,
    /// Jobs claimed ahead, waiting for a slot.
    pub claimed_ahead: usize,
    /// How many jobs the server runs at once.
    pub concurrency: usize,
    /// Shutdown has begun (or ended).
    pub shutting_down: bool,
}

impl ServerHealth {
    /// Whether the verdict is [`HealthStatus::Healthy`].
    pub fn is_healthy(&self) -> bool {
        self.status.is_healthy()
    }

    /// Why the server is unhealthy, in words; `None` when healthy.
    pub fn reason(&self) -> Option<&str> {
        match &self.status {
            HealthStatus::Healthy => None,
            HealthStatus::Unhealthy { reason } => Some(reason),
        }
    }
}

/// A server's verdict on itself (see [`ServerHealth`] for the rules).
/// Serializes as `{"status": "healthy"}` or
/// `{"status": "unhealthy", "reason": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
#[non_exhaustive]
pub enum HealthStatus {
    /// Nothing is wrong that the server can see.
    Healthy,
    /// Something is wrong.
    Unhealthy {
        /// What, in words: "store unreachable for 12s: ...".
        reason: String,
    },
}

impl HealthStatus {
    /// Whether this is [`HealthStatus::Healthy`].
    pub fn is_healthy(&self) -> bool {
        matches!(self, Self::Healthy)
    }
}

impl std::fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Healthy => f.write_str("healthy"),
            Self::Unhealthy { reason } => write!(f, "unhealthy: {reason}"),
        }
    }
}

/// When something last happened, as of a [`ServerHealth`] reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct LastSeen {
    /// How long before the reading, on tokio's monotonic clock; serialized
    /// as `ago_secs`, in (fractional) seconds.
    #[serde(rename = "ago_secs", serialize_with = "as_secs")]
    pub ago: Duration,
    /// When, on this host's clock: the reading's time less `ago`.
    pub at: Timestamp,
}

impl LastSeen {
    fn new(ago: Duration, now: Timestamp) -> Self {
        let at = chrono::Duration::from_std(ago)
            .ok()
            .and_then(|ago| now.checked_sub_signed(ago))
            .unwrap_or(now);
        Self { ago, at }
    }
}

/// The last store call of a server that failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct StoreFailure {
    /// When it failed.
    #[serde(flatten)]
    pub seen: LastSeen,
    /// The store's error message.
    pub error: String,
    /// The kind of failure; serialized in snake case (`"unavailable"`).
    #[serde(serialize_with = "kind_name")]
    pub kind: StoreErrorKind,
}

fn as_secs<S: Serializer>(age: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(age.as_secs_f64())
}

fn kind_name<S: Serializer>(kind: &StoreErrorKind, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(match kind {
        StoreErrorKind::Unavailable => "unavailable",
        StoreErrorKind::Conflict => "conflict",
        StoreErrorKind::NotFound => "not_found",
        StoreErrorKind::Invalid => "invalid",
        StoreErrorKind::Other => "other",
    })
}

//! The fetch loop: claims jobs whenever slots are free (and a few ahead of
//! them while jobs finish faster than a claim's round trip), puts them in the
//! running set, starts each on its own task, and hands back at shutdown the
//! jobs it claimed ahead. Running one attempt is [`attempt`](super::attempt)'s.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tokio::time::Instant;
use tracing::Instrument;

use super::attempt::supervise;
use super::caps::{QueueSlot, Slot};
use super::outcome::CANCELLED_BEFORE_START;
use super::{timeout_call, Running, Shared, StopReason, StopSignal};
use crate::model::JobRow;
use crate::store::{BoxFuture, JobClaimParams, JobCompletion, JobOutcome, StoreResult};

/// How many times the fetch loop yields to let more slots free up before it claims.
const COALESCE_YIELDS: usize = 4;

/// At most this many claims are in flight at once (see [`fetch_loop`]).
const MAX_CLAIMS_IN_FLIGHT: usize = 2;

/// How many claim round trips' worth of jobs are claimed ahead (see [`Throughput`]).
const ROUND_TRIPS_AHEAD: f64 = 4.0;

/// A claim in flight: what it returned, and what it asked for.
type ClaimCall = BoxFuture<'static, (StoreResult<Vec<JobRow>>, Asked)>;

/// What a claim asked for, and how long its round trip took.
struct Asked {
    /// How many jobs.
    limit: usize,
    /// How many of each capped queue (by the index of its cap); empty
    /// without caps.
    per_cap: Vec<usize>,
    /// Whether a cap asked for fewer than `limit` of its queue: a short
    /// answer may then be the cap's doing, and a freed place worth a claim.
    cap_bound: bool,
    round_trip: Duration,
}

/// A claimed job waiting for a slot, with its place in its queue's cap.
type Ahead = (JobRow, Option<QueueSlot>);

/// How fast the server's slots are finishing jobs, measured between the
/// returns of two claims: what decides how many jobs are worth claiming
/// ahead. Measured, not averaged over attempts' durations, so that it
/// follows a change at once: after an idle spell, or when the queue turns
/// from short jobs to long ones, the next measure is near zero.
#[derive(Debug, Default)]
struct Throughput {
    /// When the last claim returned, and the count of attempts ended then.
    last: Option<(Instant, u64)>,
}

impl Throughput {
    /// How many jobs to claim ahead of free slots, as a claim with this round
    /// trip returns: as many as the slots finished lately during four round
    /// trips (two claims may be in flight, and the margin lets the
    /// read-ahead grow until the store is the limit), so that short jobs
    /// never leave a slot idle while the next claim is on its way; none for
    /// jobs that run longer than a round trip, so that a busy server does
    /// not sit on jobs another server could run.
    fn read_ahead(&mut self, shared: &Shared, round_trip: Duration) -> usize {
        let now = Instant::now();
        let finished = shared.finished.load(Ordering::Relaxed);
        let Some((then, finished_then)) = self.last.replace((now, finished)) else {
            return 0;
        };
        let ended = finished.saturating_sub(finished_then) as f64;
        let elapsed = now.duration_since(then).as_secs_f64();
        let ahead = if elapsed > 0.0 {
            ROUND_TRIPS_AHEAD * ended * round_trip.as_secs_f64() / elapsed
        } else if ended > 0.0 {
            // No time passed (a paused test clock): jobs end at once.
            f64::INFINITY
        } else {
            0.0
        };
        if ahead < 1.0 {
            0
        } else {
            (ahead as usize).min(shared.settings.prefetch)
        }
    }
}

/// Claims jobs whenever slots are free, until shutdown stops it; then hands
/// back the jobs it claimed ahead.
///
/// A claim asks for the free slots plus the read-ahead (see [`Throughput`]),
/// less what is already claimed ahead or asked for, and is sent once half of
/// the read-ahead has been started, so that claiming overlaps running. While
/// jobs are claimed ahead, a second claim may be in flight beside the first:
/// a claim spends much of its round trip waiting for its commit to be
/// flushed, and a second one uses that time. Jobs claimed ahead are in the
/// running set from the claim on: their leases are renewed, and a cancel or
/// a lost lease reaches them before they start.
pub(crate) async fn fetch_loop(shared: Arc<Shared>) {
    // Before the first claim, which may be short for a limit's sake; each
    // heartbeat looks again.
    super::background::note_cluster_limits(&shared, shared.store.as_ref()).await;
    let mut signal = shared.store.job_signal().map(|s| s.subscribe());
    let mut ahead: VecDeque<Ahead> = VecDeque::new();
    let mut in_flight: Vec<ClaimCall> = Vec::with_capacity(MAX_CLAIMS_IN_FLIGHT);
    // How many jobs the claims in flight asked for, in all and of each
    // capped queue.
    let mut asked = 0usize;
    let mut asked_caps = vec![0usize; shared.caps.len()];
    // After a short claim that a cap may have cut short: a job of a capped
    // queue ending ends the wait.
    let mut wait_for_cap = false;
    // After a short claim while a served queue has cluster-wide limits: a
    // write of this server's completions ends the wait.
    let mut wait_for_completions = false;
    let mut read_ahead_now = 0usize;
    let mut throughput = Throughput::default();
    // After a short claim or a failure: how long to wait (for a wake-up from
    // the store, or the poll interval; the retry pause after a failure)
    // before claiming again.
    let mut wait: Option<Duration> = None;
    let mut failures = 0u32;
    let mut waits_for_slot = false;
    loop {
        // Fill free slots from the jobs claimed ahead.
        while !ahead.is_empty() {
            let Ok(permit) = shared.slots.clone().try_acquire_owned() else {
                break;
            };
            if let Some((row, queue)) = ahead.pop_front() {
                start_job(
                    &shared,
                    row,
                    Slot {
                        _queue: queue,
                        _permit: permit,
                    },
                );
            }
        }

        if in_flight.is_empty() && wait.is_none() {
            let mut free = shared.slots.available_permits();
            if read_ahead_now == 0 && free > 0 && free < shared.settings.concurrency {
                // Jobs that end together free their slots a moment apart;
                // give them a few turns of the scheduler (microseconds, not
                // a timer) so that one claim fills them all instead of
                // claiming one or two at a time.
                for _ in 0..COALESCE_YIELDS {
                    tokio::task::yield_now().await;
                    free = shared.slots.available_permits();
                    if free == shared.settings.concurrency {
                        break;
                    }
                }
            }
            let want = (free + read_ahead_now).saturating_sub(ahead.len());
            if want > 0 && ahead.len() <= read_ahead_now / 2 {
                // Mark the signal seen before claiming: a wake-up raised
                // from here on is kept for the wait below, never lost.
                if let Some(signal) = signal.as_mut() {
                    signal.borrow_and_update();
                }
                asked = want;
                in_flight.push(claim(&shared, want, &mut asked_caps));
            }
        } else if read_ahead_now > 0 && wait.is_none() && in_flight.len() < MAX_CLAIMS_IN_FLIGHT {
            let free = shared.slots.available_permits();
            let want = (free + read_ahead_now).saturating_sub(ahead.len() + asked);
            if want >= (read_ahead_now / 2).max(1) {
                asked += want;
                in_flight.push(claim(&shared, want, &mut asked_caps));
            }
        }

        // For the heartbeat: what waits claimed ahead while the loop waits.
        let claimed_ahead = &shared.load.claimed_ahead;
        claimed_ahead.store(ahead.len(), Ordering::Relaxed);
        // For `Server::health`: with nothing in flight or to wait for, every
        // slot is taken, and no claim is due until one frees up.
        if waits_for_slot != (in_flight.is_empty() && wait.is_none()) {
            waits_for_slot = !waits_for_slot;
            shared
                .health_record()
                .note_fetch_waits_for_slot(waits_for_slot);
        }

        // What can happen next: the claim returns; a slot frees up (for a
        // job claimed ahead, or for a claim when none is in flight); the wait
        // ends; shutdown.
        let watch_slots = !ahead.is_empty() || (in_flight.is_empty() && wait.is_none());
        let claimed = next_claim(&mut in_flight);
        let slot = async {
            if watch_slots {
                shared.slots.clone().acquire_owned().await
            } else {
                std::future::pending().await
            }
        };
        let waited = async {
            let Some(pause) = wait else {
                return std::future::pending().await;
            };
            if (wait_for_cap || wait_for_completions) && failures == 0 {
                // A place freed in a cap, or in a cluster-wide limit by
                // this server's own completions, ends the wait too.
                let cap_freed = async {
                    if wait_for_cap {
                        shared.caps.freed.notified().await;
                    } else {
                        std::future::pending::<()>().await;
                    }
                };
                let written = async {
                    if wait_for_completions {
                        shared.completions_written.notified().await;
                    } else {
                        std::future::pending::<()>().await;
                    }
                };
                tokio::select! {
                    _ = cap_freed => return,
                    _ = written => return,
                    _ = wait_for(pause, signal.as_mut()) => return,
                }
            }
            match signal.as_mut() {
                // After a failure, only the retry pause.
                Some(signal) if failures == 0 => {
                    tokio::select! {
                        changed = signal.changed() => {
                            if changed.is_err() {
                                tokio::time::sleep(pause).await;
                            }
                        }
                        _ = tokio::time::sleep(pause) => {}
                    }
                }
                _ => tokio::time::sleep(pause).await,
            }
        };
        tokio::select! {
            (result, returned) = claimed => {
                let limit = returned.limit;
                asked = asked.saturating_sub(limit);
                for (asked, of_cap) in asked_caps.iter_mut().zip(&returned.per_cap) {
                    *asked = asked.saturating_sub(*of_cap);
                }
                match result {
                    Ok(rows) => {
                        failures = 0;
                        read_ahead_now = throughput.read_ahead(&shared, returned.round_trip);
                        // A short claim: nothing more is runnable now.
                        if rows.len() < limit {
                            wait = Some(shared.settings.poll_interval);
                            wait_for_cap = returned.cap_bound;
                            wait_for_completions =
                                shared.cluster_limited.load(Ordering::Relaxed);
                        }
                        accept(&shared, rows, limit, &mut ahead);
                    }
                    Err(error) => {
                        failures = failures.saturating_add(1);
                        crate::telemetry::claim_failed();
                        let pause = retry_pause(failures);
                        tracing::warn!(server = %shared.id, %error, retry_in = ?pause, "claiming jobs failed");
                        wait = Some(pause);
                    }
                }
            }
            permit = slot => {
                // With a job waiting, the slot is its; otherwise the loop
                // goes round to claim for it.
                let Ok(permit) = permit else { break };
                if let Some((row, queue)) = ahead.pop_front() {
                    start_job(&shared, row, Slot { _queue: queue, _permit: permit });
                }
            }
            _ = waited => wait = None,
            _ = shared.stop_fetching.cancelled() => break,
        }
    }

    // Shutdown. A claim in flight may already have committed: wait for it
    // (it is bounded by the store timeout) so that its jobs are handed back
    // now rather than rescued when their leases expire.
    for call in in_flight {
        if let (Ok(rows), returned) = call.await {
            accept(&shared, rows, returned.limit, &mut ahead);
        }
    }
    for (row, _queue) in ahead {
        hand_back(&shared, &row, "the server shut down before the job started");
    }
    shared.load.claimed_ahead.store(0, Ordering::Relaxed);
}

/// The next claim in flight to return (never, when none is in flight).
async fn next_claim(in_flight: &mut Vec<ClaimCall>) -> (StoreResult<Vec<JobRow>>, Asked) {
    std::future::poll_fn(|cx| {
        for i in 0..in_flight.len() {
            if let Poll::Ready(returned) = in_flight[i].as_mut().poll(cx) {
                // Dropped only once returned: a claim is never abandoned.
                drop(in_flight.swap_remove(i));
                return Poll::Ready(returned);
            }
        }
        Poll::Pending
    })
    .await
}

/// Sends a claim for up to `limit` jobs; of a capped queue, at most the room
/// its cap has left beside what claims in flight asked of it (`asked_caps`,
/// which this claim adds to).
fn claim(shared: &Arc<Shared>, limit: usize, asked_caps: &mut [usize]) -> ClaimCall {
    let mut params = JobClaimParams::new(shared.id)
        .queues(shared.settings.queues.iter().cloned())
        .names(shared.names.iter().cloned())
        .limit(u32::try_from(limit).unwrap_or(u32::MAX))
        .lease(shared.settings.lease);
    let mut per_cap = Vec::new();
    let mut cap_bound = false;
    if !shared.caps.is_empty() {
        for (i, queue, room) in shared.caps.room() {
            let of_queue = room.saturating_sub(asked_caps[i]).min(limit);
            cap_bound |= of_queue < limit;
            asked_caps[i] += of_queue;
            per_cap.push(of_queue);
            params = params.queue_limit(queue, u32::try_from(of_queue).unwrap_or(u32::MAX));
        }
    }
    let shared = shared.clone();
    Box::pin(async move {
        let sent = Instant::now();
        let call = shared.store.job_claim(params);
        let result = timeout_call(shared.settings.store_timeout, call).await;
        shared.health_record().note_claim(&result);
        let asked = Asked {
            limit,
            per_cap,
            cap_bound,
            round_trip: sent.elapsed(),
        };
        (result, asked)
    })
}

/// Waits `pause`, or until the store's signal, if it has one, is raised.
async fn wait_for(pause: Duration, signal: Option<&mut tokio::sync::watch::Receiver<u64>>) {
    match signal {
        Some(signal) => {
            tokio::select! {
                changed = signal.changed() => {
                    if changed.is_err() {
                        tokio::time::sleep(pause).await;
                    }
                }
                _ = tokio::time::sleep(pause) => {}
            }
        }
        None => tokio::time::sleep(pause).await,
    }
}

/// Puts claimed jobs in the running set (from now on their leases are
/// renewed) and in line for a slot, each of a capped queue holding its
/// place in the cap. A store that returned more than the limit (or than a
/// queue's limit) has a bug: the extra jobs are handed back at once rather
/// than left leased until rescue.
fn accept(shared: &Shared, rows: Vec<JobRow>, limit: usize, ahead: &mut VecDeque<Ahead>) {
    {
        let mut running = shared.running();
        if running.is_empty() && !rows.is_empty() {
            // The watchdog sleeps while nothing runs.
            shared.wake_watchdog.notify_one();
        }
        for row in &rows {
            running.insert(
                row.id,
                Running {
                    claim: row.claim(),
                    name: row.name.clone(),
                    stop: Arc::new(StopSignal::default()),
                    context: None,
                },
            );
        }
    }
    for (i, row) in rows.into_iter().enumerate() {
        let place = if shared.caps.is_empty() {
            None
        } else {
            shared.caps.hold(&row.queue)
        };
        match place {
            _ if i >= limit => {
                tracing::error!(job = %row.id, name = %row.name, queue = %row.queue, attempt = row.attempt, "the store returned more jobs than the claim's limit; handing the extra job back");
                hand_back(shared, &row, "claimed beyond the server's limit");
            }
            Some(Err(())) => {
                tracing::error!(job = %row.id, name = %row.name, queue = %row.queue, attempt = row.attempt, "the store returned more jobs of a queue than the claim's limit for it; handing the extra job back");
                hand_back(
                    shared,
                    &row,
                    "claimed beyond the server's limit for its queue",
                );
            }
            Some(Ok(place)) => ahead.push_back((row, Some(place))),
            None => ahead.push_back((row, None)),
        }
    }
}

/// Growing pause after consecutive store failures: 100 ms doubling to 10 s.
pub(crate) fn retry_pause(failures: u32) -> Duration {
    let exponent = failures.saturating_sub(1).min(7);
    Duration::from_millis(100 * (1u64 << exponent)).min(Duration::from_secs(10))
}

/// Hands a claimed job that never started back as runnable at once, without
/// spending its attempt; it stays in the running set (its lease renewed)
/// until the completer has written that. A cancel that reached it while it
/// waited makes it `cancelled` instead, and a lost lease leaves nothing to
/// write.
fn hand_back(shared: &Shared, row: &JobRow, reason: &str) {
    let stopped = shared.running().get(&row.id).and_then(|r| r.stop.reason());
    let outcome = match stopped {
        Some(StopReason::LeaseLost) => {
            shared.running().remove(&row.id);
            return;
        }
        Some(StopReason::UserCancel) => JobOutcome::Cancelled {
            reason: CANCELLED_BEFORE_START.to_owned(),
        },
        _ => JobOutcome::Released {
            reason: reason.to_owned(),
        },
    };
    if shared
        .completions
        .send(JobCompletion::new(row.claim(), outcome))
        .is_err()
    {
        tracing::error!(
            "the completer has stopped; the job will be rescued when its lease expires"
        );
    }
}

/// Runs a claimed job (already in the running set, see [`accept`]) on its own task.
fn start_job(shared: &Arc<Shared>, row: JobRow, permit: Slot) {
    let stop = shared
        .running()
        .get(&row.id)
        .map(|running| running.stop.clone());
    let Some(stop) = stop else {
        // Only the completer removes claims, after writing their outcome:
        // this job was handed back already.
        return;
    };
    let span = crate::telemetry::run_span(&row);
    tokio::spawn(supervise(shared.clone(), row, stop, permit).instrument(span));
}

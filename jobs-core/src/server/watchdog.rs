//! The watchdog: stops attempts that passed their timeout, and reports as
//! stuck those that were asked to stop and did not (a job that blocks its
//! thread cannot be stopped: no future is dropped while it is being polled).
//!
//! An attempt's own task enforces its timeout and its grace period when it
//! is polled; the watchdog runs beside the attempts (on the server's own
//! thread, see `Keeper`), so it sees the attempts whose task is not polled
//! because they block it. A stuck attempt keeps its slot (its task still
//! runs) and its lease (it stays in the running set, renewed), so it is not
//! run twice while its process lives; when it returns at last, its outcome
//! is that of a timed-out attempt, never a success.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{timeout_call, Shared, StopReason};
use crate::store::LeaseReportStuckParams;

/// How long past its grace period an attempt that was asked to stop may
/// still run before it is reported stuck: the attempt's own task drops it at
/// the end of the grace period, when its thread lets it.
const STUCK_MARGIN: Duration = Duration::from_secs(1);

/// How often the watchdog looks at running attempts with no deadline near:
/// a stop that is not a timeout (a user's cancel, shutdown) does not wake it.
const LOOK_AGAIN: Duration = Duration::from_secs(1);

pub(crate) async fn watchdog(shared: Arc<Shared>) {
    let grace = shared.settings.cancel_grace + STUCK_MARGIN;
    loop {
        let next = check(&shared, grace).await;
        let until = async {
            match next {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = until => {}
            _ = shared.wake_watchdog.notified() => {}
            _ = shared.stop_background.cancelled() => return,
        }
    }
}

/// Stops the attempts past their deadline, reports the stuck ones, and
/// returns when the next attempt will need a look.
async fn check(shared: &Shared, grace: Duration) -> Option<Instant> {
    let now = Instant::now();
    let mut next: Option<Instant> = None;
    let mut stuck = Vec::new();
    for entry in shared.running().values() {
        let mut watch = entry.stop.watch();
        if watch.ended || watch.stuck {
            continue;
        }
        let again = now + LOOK_AGAIN;
        next = Some(next.map_or(again, |n| n.min(again)));
        if let Some(deadline) = watch.deadline {
            if watch.stopped_at.is_none() {
                if deadline <= now {
                    drop(watch);
                    entry.stop.stop(StopReason::Timeout);
                    watch = entry.stop.watch();
                } else {
                    next = Some(next.map_or(deadline, |n| n.min(deadline)));
                    continue;
                }
            }
        }
        let Some(stopped_at) = watch.stopped_at else {
            continue;
        };
        let due = stopped_at + grace;
        if due <= now {
            watch.stuck = true;
            drop(watch);
            stuck.push(Stuck {
                claim: entry.claim,
                name: entry.name.clone(),
                queue: entry.context.as_ref().map(|c| c.queue().to_owned()),
                attempt: entry.context.as_ref().map(|c| c.attempt()),
                reason: entry.stop.reason(),
            });
        } else {
            next = Some(next.map_or(due, |n| n.min(due)));
        }
    }
    if !stuck.is_empty() {
        report(shared, stuck, grace).await;
    }
    next
}

/// An attempt found stuck, with what its report names.
struct Stuck {
    claim: crate::model::Claim,
    name: String,
    /// From the attempt's context (every stuck attempt has started).
    queue: Option<String>,
    attempt: Option<i32>,
    reason: Option<StopReason>,
}

async fn report(shared: &Shared, stuck: Vec<Stuck>, grace: Duration) {
    let mut reports = Vec::with_capacity(stuck.len());
    for Stuck {
        claim,
        name,
        queue,
        attempt,
        reason,
    } in stuck
    {
        let asked = match reason {
            Some(StopReason::Timeout) => "it passed its timeout".to_owned(),
            Some(StopReason::UserCancel) => "a user cancelled it".to_owned(),
            Some(StopReason::Shutdown) => "the server is shutting down".to_owned(),
            Some(StopReason::LeaseLost) => "its lease was lost".to_owned(),
            None => "it was asked to stop".to_owned(),
        };
        let text = format!(
            "stuck: {asked}, and it has not stopped {grace:?} later; it blocks its thread \
             (a job cannot be stopped while it does not yield), keeps its slot and its \
             lease until it returns"
        );
        tracing::warn!(server = %shared.id, job = %claim.job_id, name = %name, queue = queue.as_deref(), attempt, "job {} ({name}) is stuck: {asked}, and it has not stopped {grace:?} later; it keeps its slot and its lease until it returns", claim.job_id);
        reports.push((claim, text));
    }
    let params = LeaseReportStuckParams::new(shared.id, reports);
    let call = shared.own_writes.lease_report_stuck(params);
    let written = timeout_call(shared.settings.store_timeout, call).await;
    shared.note(&written);
    if let Err(error) = written {
        // The warning above stands; the history misses the event.
        tracing::warn!(server = %shared.id, %error, "recording stuck jobs failed");
    }
}

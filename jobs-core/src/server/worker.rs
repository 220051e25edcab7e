//! The fetch loop (claim as many jobs as there are free slots, in one call)
//! and the supervisor of one attempt (panics, timeouts, cancellation, the
//! outcome it reports).

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::OwnedSemaphorePermit;
use tracing::Instrument;

use super::{timeout_call, Running, Shared, StopReason, StopSignal};
use crate::job::{BoxError, Invocation, JobContext, Permanent, Snooze};
use crate::model::JobRow;
use crate::store::{JobClaimParams, JobCompletion, JobOutcome};

/// How many times the fetch loop yields to let more slots free up before it claims.
const COALESCE_YIELDS: usize = 4;

/// Claims jobs whenever slots are free, until shutdown stops it.
pub(crate) async fn fetch_loop(shared: Arc<Shared>) {
    let mut signal = shared.store.job_signal().map(|s| s.subscribe());
    let mut failures = 0u32;
    loop {
        // Wait for one free slot, then take every other free one: one claim per batch.
        let first = tokio::select! {
            permit = shared.slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
            _ = shared.stop_fetching.cancelled() => return,
        };
        let mut permits = vec![first];
        // Jobs that end together free their slots a moment apart; give them
        // a few turns of the scheduler (microseconds, not a timer) so that one
        // claim fills them all instead of claiming one or two at a time.
        for _ in 0..COALESCE_YIELDS {
            while let Ok(permit) = shared.slots.clone().try_acquire_owned() {
                permits.push(permit);
            }
            if permits.len() == shared.settings.concurrency {
                break;
            }
            tokio::task::yield_now().await;
        }
        // Mark the signal seen before claiming: a wake-up raised from here on
        // is kept for the wait below, never lost in between.
        if let Some(signal) = signal.as_mut() {
            signal.borrow_and_update();
        }
        let limit = u32::try_from(permits.len()).unwrap_or(u32::MAX);
        let params = JobClaimParams::new(
            shared.id,
            shared.settings.queues.clone(),
            shared.names.clone(),
            limit,
            shared.settings.lease,
        );
        let claimed = tokio::select! {
            claimed = timeout_call(shared.settings.store_timeout, shared.store.job_claim(params)) => claimed,
            _ = shared.stop_fetching.cancelled() => return,
        };
        match claimed {
            Ok(rows) => {
                failures = 0;
                let full = rows.len() >= permits.len();
                for row in rows {
                    match permits.pop() {
                        Some(permit) => start_job(&shared, row, permit),
                        None => hand_back_excess(&shared, row),
                    }
                }
                drop(permits);
                if full {
                    continue;
                }
            }
            Err(error) => {
                drop(permits);
                failures = failures.saturating_add(1);
                let pause = retry_pause(failures);
                tracing::warn!(server = %shared.id, %error, retry_in = ?pause, "claiming jobs failed");
                tokio::select! {
                    _ = tokio::time::sleep(pause) => continue,
                    _ = shared.stop_fetching.cancelled() => return,
                }
            }
        }
        // Nothing more to claim: wait for a wake-up from the store, or poll.
        let woken = async {
            match signal.as_mut() {
                Some(signal) => {
                    if signal.changed().await.is_err() {
                        std::future::pending::<()>().await
                    }
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = woken => {}
            _ = tokio::time::sleep(shared.settings.poll_interval) => {}
            _ = shared.stop_fetching.cancelled() => return,
        }
    }
}

/// Growing pause after consecutive store failures: 100 ms doubling to 10 s.
pub(crate) fn retry_pause(failures: u32) -> Duration {
    let exponent = failures.saturating_sub(1).min(7);
    Duration::from_millis(100 * (1u64 << exponent)).min(Duration::from_secs(10))
}

/// A store returned more jobs than asked for (a store bug): hand the extra
/// ones back at once rather than leave them leased until rescue.
fn hand_back_excess(shared: &Arc<Shared>, row: JobRow) {
    tracing::error!(job = %row.id, "the store returned more jobs than the claim's limit; handing the extra job back");
    shared.running().insert(
        row.id,
        Running {
            claim: row.claim(),
            stop: Arc::new(StopSignal::default()),
            context: None,
        },
    );
    let outcome = JobOutcome::Released {
        reason: "claimed beyond the server's free slots".to_owned(),
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

fn start_job(shared: &Arc<Shared>, row: JobRow, permit: OwnedSemaphorePermit) {
    let stop = Arc::new(StopSignal::default());
    shared.running().insert(
        row.id,
        Running {
            claim: row.claim(),
            stop: stop.clone(),
            context: None,
        },
    );
    let span = tracing::info_span!("job", id = %row.id, name = %row.name, queue = %row.queue, attempt = row.attempt);
    tokio::spawn(supervise(shared.clone(), row, stop, permit).instrument(span));
}

/// How an attempt's future ended.
enum Ended {
    Returned(Result<(), BoxError>),
    Panicked(String),
    /// Cancelled and still running after the grace period: dropped.
    Aborted,
}

/// Runs one attempt to its end and queues its outcome.
async fn supervise(
    shared: Arc<Shared>,
    row: JobRow,
    stop: Arc<StopSignal>,
    permit: OwnedSemaphorePermit,
) {
    let claim = row.claim();
    let Some(registration) = shared.registry.get(&row.name) else {
        // Claims name only known jobs, so this is a registry race at most:
        // hand the job back for a server that knows it.
        finish(
            &shared,
            JobCompletion::new(
                claim,
                JobOutcome::Released {
                    reason: format!("server {} does not know job `{}`", shared.id, row.name),
                },
            ),
            permit,
        );
        return;
    };
    let options = (registration.options)();
    let context = JobContext::new(
        claim,
        row.name.clone(),
        row.queue.clone(),
        row.attempt,
        row.max_attempts,
        row.recurring.as_ref().map(|r| r.scheduled_for),
        stop.token.clone(),
    );
    if let Some(running) = shared.running().get_mut(&row.id) {
        running.context = Some(context.clone());
    }
    let invocation = Invocation {
        args: row.args,
        context,
        resources: shared.resources.clone(),
    };
    tracing::debug!("job started");
    let mut attempt = CatchUnwind((registration.run)(invocation));
    let timeout = async {
        match options.timeout {
            Some(limit) => tokio::time::sleep(limit).await,
            None => std::future::pending().await,
        }
    };
    let first = tokio::select! {
        ended = &mut attempt => Some(ended),
        _ = timeout => { stop.stop(StopReason::Timeout); None }
        _ = stop.token.cancelled() => None,
    };
    let ended = match first {
        Some(Ok(result)) => Ended::Returned(result),
        Some(Err(panic)) => Ended::Panicked(panic),
        // Asked to stop: the job sees it through its context and gets a
        // grace period to return on its own before it is dropped.
        None => match tokio::time::timeout(shared.settings.cancel_grace, &mut attempt).await {
            Ok(Ok(result)) => Ended::Returned(result),
            Ok(Err(panic)) => Ended::Panicked(panic),
            Err(_) => Ended::Aborted,
        },
    };
    drop(attempt);

    let outcome = decide(
        &row.name,
        row.attempt,
        row.max_attempts,
        &options,
        stop.reason(),
        ended,
    );
    match &outcome {
        None => {
            tracing::warn!("the job's lease was lost (rescued by another server or cancelled); its result is discarded");
            shared.running().remove(&row.id);
            drop(permit);
        }
        Some(outcome) => {
            log_outcome(outcome);
            finish(&shared, JobCompletion::new(claim, outcome.clone()), permit);
        }
    }
}

/// Queues the completion for the completer, then frees the slot. The claim
/// stays in the running set (its lease renewed) until the completion is written.
fn finish(shared: &Shared, completion: JobCompletion, permit: OwnedSemaphorePermit) {
    if shared.completions.send(completion).is_err() {
        tracing::error!(
            "the completer has stopped; the job will be rescued when its lease expires"
        );
    }
    drop(permit);
}

/// The outcome to record, or `None` when the lease was lost and nothing may be written.
fn decide(
    name: &str,
    attempt: i32,
    max_attempts: i32,
    options: &crate::job::JobOptions,
    reason: Option<StopReason>,
    ended: Ended,
) -> Option<JobOutcome> {
    if let Ended::Returned(Ok(())) = ended {
        return Some(JobOutcome::Succeeded);
    }
    let error = match reason {
        Some(StopReason::LeaseLost) => return None,
        Some(StopReason::Shutdown) => {
            return Some(JobOutcome::Released {
                reason: "the server shut down before the job finished".to_owned(),
            })
        }
        Some(StopReason::UserCancel) => {
            return Some(JobOutcome::Cancelled {
                reason: "cancelled by a user while running".to_owned(),
            })
        }
        Some(StopReason::Timeout) => {
            let limit = options.timeout.unwrap_or_default();
            match ended {
                Ended::Aborted => {
                    format!("timed out after {limit:?}; aborted after it ignored cancellation")
                }
                _ => format!("timed out after {limit:?}"),
            }
        }
        None => match ended {
            Ended::Returned(Err(error)) => {
                if let Some(snooze) = error.downcast_ref::<Snooze>() {
                    return Some(JobOutcome::Snooze {
                        after: snooze.after,
                    });
                }
                let text = error_chain(&*error);
                if error.is::<Permanent>() {
                    return Some(JobOutcome::Failed { error: text });
                }
                text
            }
            Ended::Panicked(message) => format!("panicked: {message}"),
            Ended::Returned(Ok(())) | Ended::Aborted => {
                unreachable!("success returns early; abort needs a stop reason")
            }
        },
    };
    if attempt >= max_attempts {
        Some(JobOutcome::Failed { error })
    } else {
        let after = options.backoff.delay(attempt);
        tracing::debug!(job = name, ?after, "retrying after backoff");
        Some(JobOutcome::Retry { error, after })
    }
}

fn log_outcome(outcome: &JobOutcome) {
    match outcome {
        JobOutcome::Succeeded => tracing::debug!("job succeeded"),
        JobOutcome::Retry { error, after } => {
            tracing::warn!(%error, retry_in = ?after, "job failed; it will be retried")
        }
        JobOutcome::Failed { error } => tracing::warn!(%error, "job failed for good"),
        JobOutcome::Snooze { after } => tracing::debug!(?after, "job snoozed"),
        JobOutcome::Cancelled { reason } => tracing::info!(%reason, "job cancelled"),
        JobOutcome::Released { reason } => tracing::info!(%reason, "job handed back"),
    }
}

/// An error and its causes, joined with `: `.
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Some errors repeat their cause in their own message; don't print it twice.
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Turns a panic inside the attempt's future into an error value, so the
/// server, the task and the slot survive it.
struct CatchUnwind(Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>);

impl Future for CatchUnwind {
    type Output = Result<Result<(), BoxError>, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.0;
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(result)) => Poll::Ready(Ok(result)),
            Err(payload) => Poll::Ready(Err(panic_message(payload))),
        }
    }
}

fn panic_message(payload: Box<dyn Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(message) => *message,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(message) => (*message).to_owned(),
            Err(_) => "a panic with a non-string payload".to_owned(),
        },
    }
}
